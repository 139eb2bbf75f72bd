/* config.h — table-driven configuration from environment variables and command-line flags.
 *
 * A program describes each setting once in a cfg_option table (environment name, flag, kind, default, limits,
 * help); cfg_parse() fills the destinations from the defaults, then the environment, then the flags (flags win),
 * and validates the value each one ends up with. A bad value produces exactly one message that names the input, the bad value and what
 * is allowed, in the house format:
 *
 *     IAC_AGENT_SLOTS="1" is not allowed: slots must be a whole number from 2 to 64
 *     --log-format="xml" is not allowed: must be one of text, json
 *
 * Secret options (tokens) never have their value quoted in a message. The caller prints the message prefixed with
 * its program name and exits 2. Nothing here allocates: string destinations point into the environment, argv or
 * the table's default, all of which live as long as the process. The one exception is the host of a CFG_HOSTPORT,
 * which must be NUL-terminated: it is copied into a buffer of CFG_HOST_MAX bytes that the caller owns.
 *
 * Each option takes its value from one source, the strongest present — the last flag, else a non-empty
 * environment variable, else the default — and only that value is validated. For CFG_INT and CFG_DURATION,
 * min = max = 0 means "no limits". */
#ifndef IAC_CONFIG_H
#define IAC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CFG_HOST_MAX 256 /* host buffer of a CFG_HOSTPORT, NUL included */

typedef enum {
    CFG_STRING,   /* dst: const char **; min = minimum length (0: empty allowed), max unused */
    CFG_INT,      /* dst: int64_t *; whole number in [min, max] */
    CFG_DURATION, /* dst: int64_t * in milliseconds; "500ms", "30s", "15m", "24h", "1h30m", or bare seconds "30"; in [min, max] ms.
                     Units h, m, s, ms, largest first and each once; a decimal fraction is allowed when it is a whole
                     number of ms ("1.5s", not "1.0005s"); no sign, spaces or other units. */
    CFG_ENUM,     /* dst: int *; index into `allowed`, a "|"-separated list such as "text|json" (exact match) */
    CFG_BOOL,     /* dst: bool *; "1|true|yes|on" / "0|false|no|off" in any case; a bare flag means true */
    CFG_HOSTPORT, /* dst: char[CFG_HOST_MAX] (host part, "0.0.0.0" when empty) and the port in the int64_t at dst2; "host:port", ":port",
                     "[v6addr]:port"; the port as CFG_PORT (min 0 allows 0) */
    CFG_PORT,     /* dst: int64_t *; 1..65535 (0 allowed when min is 0) */
} cfg_kind;

typedef struct {
    const char *env;      /* environment variable, or NULL for flag-only */
    const char *flag;     /* long flag without dashes ("slots" → --slots), or NULL for env-only */
    cfg_kind    kind;
    void       *dst;
    void       *dst2;     /* CFG_HOSTPORT: int64_t * for the port; else NULL */
    const char *def;      /* default as text, or NULL (destination left as it is) */
    int64_t     min, max; /* limits (see cfg_kind) */
    const char *allowed;  /* CFG_ENUM: "a|b|c" */
    const char *what;     /* noun for messages: "slots" → "slots must be a whole number from 2 to 64" */
    const char *help;     /* one line for --help */
    bool        required; /* must end up non-empty (CFG_STRING) */
    bool        secret;   /* never print the value */
} cfg_option;

enum {
    CFG_OK = 0,
    CFG_ERR = -1,     /* bad value or unknown flag: err holds the message */
    CFG_HELP = 1,     /* --help or -h was given */
    CFG_VERSION = 2,  /* --version was given */
};

/* Parses envp (NULL-terminated "NAME=value" array, usually `environ`, or NULL) and argv[1..]. Flags are
 * "--name=value" or "--name value" (a bool flag takes no separate value); any other word starting with "-" except
 * "-h" and a lone "-" is an unknown flag. Positional arguments (the rest, and everything after "--") are left in
 * place: *npos and pos[] receive them when pos is non-NULL (pos has room for argc entries); when pos is NULL a
 * positional argument is an error. Returns CFG_OK, CFG_HELP, CFG_VERSION (these two win over any error), or CFG_ERR
 * with a message in err. */
int cfg_parse(const cfg_option *opts, size_t n, int argc, char **argv, char **envp,
              const char **pos, int *npos, char *err, size_t errlen);

/* Prints one line per option: flag, environment variable, default and help, in aligned columns (a secret's
 * default is shown as "(default set)"), then the lines for --help and --version. */
void cfg_print_help(FILE *out, const cfg_option *opts, size_t n);

/* Quotes a value for a message: "…" with quotes, backslashes and control bytes escaped and a value longer than 80
 * bytes cut with "…". outlen ≥ 16. */
void cfg_quote_value(const char *v, char *out, size_t outlen);

/* Parses a duration as CFG_DURATION does. Returns 0 and *ms, or -1. */
int cfg_parse_duration(const char *s, int64_t *ms);

#endif
