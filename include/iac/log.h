/* log.h — levelled log lines in text or JSON, with secret redaction.
 *
 * One logger per process, configured once by main() (it is the one piece of process-wide state in common/: every
 * module logs, and threading a logger through every call would only add noise). Lines go to stderr, one write(2)
 * per line so that lines from several processes sharing a file do not interleave.
 *
 * Secrets: main() registers every token and secret value with log_secret_add(); every occurrence of a registered
 * secret in a formatted line is replaced by "[REDACTED]" before the line is written. Tokens of the pool-token shape
 * (`apt_<pool>_<64 hex>`) are redacted even when nobody registered them. Modules must still never log a secret on
 * purpose: redaction is the safety net, not the policy.
 *
 * Text:  2026-11-24T10:00:00.123Z INFO  agent: registered agent_id=agent-pool-1
 * JSON:  {"ts":"2026-11-24T10:00:00.123Z","level":"info","module":"agent","msg":"registered agent_id=agent-pool-1"} */
#ifndef IAC_LOG_H
#define IAC_LOG_H

#include <stdarg.h>
#include <stddef.h>

typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;
typedef enum { LOG_FORMAT_TEXT = 0, LOG_FORMAT_JSON } log_format;

/* Sets the minimum level and line format. Default before any call: LOG_INFO, text. */
void log_setup(log_level min_level, log_format format);

/* Registers a secret (copied; strings shorter than 4 bytes are ignored). Returns 0, or -ENOMEM (also when the
 * table's 16 entries are taken). */
int log_secret_add(const char *secret);
/* Forgets one secret (after a token rotation), or all with NULL. */
void log_secret_remove(const char *secret);

/* Copies s into out (capacity outlen, always NUL-terminated, truncated if needed) with every registered secret
 * and every pool-token-shaped word replaced by "[REDACTED]". */
void log_redact(const char *s, char *out, size_t outlen);

/* A message longer than 16 KiB is cut and ends in "…(truncated)". Text lines show a message's control bytes
 * escaped ("\n", "\x01") so that one call is always one line. */
void log_write(log_level level, const char *module, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void log_vwrite(log_level level, const char *module, const char *fmt, va_list ap);

/* "debug", "info", "warn", "error" (also "warning"), in any case → 0 and *out; else -1. */
int log_level_parse(const char *s, log_level *out);
/* "text", "json", in any case → 0 and *out; else -1. */
int log_format_parse(const char *s, log_format *out);

#define log_debug(mod, ...) log_write(LOG_DEBUG, (mod), __VA_ARGS__)
#define log_info(mod, ...) log_write(LOG_INFO, (mod), __VA_ARGS__)
#define log_warn(mod, ...) log_write(LOG_WARN, (mod), __VA_ARGS__)
#define log_error(mod, ...) log_write(LOG_ERROR, (mod), __VA_ARGS__)

#endif
