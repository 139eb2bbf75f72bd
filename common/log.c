/* log.c — levelled log lines to stderr, text or JSON, with secrets redacted; see log.h.
 *
 * Each line is built whole in memory and handed to one write(2), so lines from several processes sharing stderr
 * never interleave. Memory is bounded: the message is formatted into a fixed 16 KiB buffer and a longer one is cut
 * and marked "…(truncated)". Redaction runs on the formatted message before anything is written; when the message
 * was cut, a tail that could be the start of a secret is redacted too, so a cut never leaks half a token.
 *
 * The logger's settings and the secret list are the one piece of process-wide state in common/ (see log.h). */
#include "iac/log.h"

#include "iac/strbuf.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOG_MSG_MAX 16384    /* bytes of message kept per line */
/* Lines up to this size are formatted on the stack; longer ones (rare) in heap buffers of LOG_MSG_MAX. Two
 * LOG_MSG_MAX arrays on the stack would make every log call touch 32 KiB of stack, which then stays resident for
 * the life of the process (an idle agent's stack is otherwise a few KiB). */
#define LOG_MSG_SMALL 1024
#define LOG_SECRETS_MAX 16   /* a process holds a handful of tokens */
#define LOG_SECRET_MIN 4     /* shorter strings would redact ordinary words */
#define LOG_TOKEN_HEX_MIN 32 /* a pool token ends in 64 hex digits; half of that is enough to be sure */

static const char redacted[] = "[REDACTED]";
static const char truncated[] = "\xe2\x80\xa6(truncated)"; /* "…(truncated)" */

static struct {
    log_level  min_level;
    log_format format;
    char      *secrets[LOG_SECRETS_MAX];
    size_t     secret_len[LOG_SECRETS_MAX];
    int        nsecrets;
} logger = { LOG_INFO, LOG_FORMAT_TEXT, { NULL }, { 0 }, 0 };

static const struct {
    const char *name;  /* JSON "level" and log_level_parse() */
    const char *label; /* text lines: fixed width so messages line up */
} levels[] = {
    [LOG_DEBUG] = { "debug", "DEBUG" },
    [LOG_INFO] = { "info", "INFO " },
    [LOG_WARN] = { "warn", "WARN " },
    [LOG_ERROR] = { "error", "ERROR" },
};

void log_setup(log_level min_level, log_format format)
{
    logger.min_level = min_level;
    logger.format = format;
}

int log_secret_add(const char *secret)
{
    if (!secret)
        return 0;
    size_t len = strlen(secret);
    if (len < LOG_SECRET_MIN)
        return 0;
    for (int i = 0; i < logger.nsecrets; i++)
        if (strcmp(logger.secrets[i], secret) == 0)
            return 0;
    if (logger.nsecrets == LOG_SECRETS_MAX)
        return -ENOMEM;
    char *copy = strdup(secret);
    if (!copy)
        return -ENOMEM;
    logger.secrets[logger.nsecrets] = copy;
    logger.secret_len[logger.nsecrets] = len;
    logger.nsecrets++;
    return 0;
}

void log_secret_remove(const char *secret)
{
    int kept = 0;
    for (int i = 0; i < logger.nsecrets; i++) {
        if (!secret || strcmp(logger.secrets[i], secret) == 0) {
            free(logger.secrets[i]);
            continue;
        }
        logger.secrets[kept] = logger.secrets[i];
        logger.secret_len[kept] = logger.secret_len[i];
        kept++;
    }
    for (int i = kept; i < logger.nsecrets; i++)
        logger.secrets[i] = NULL;
    logger.nsecrets = kept;
}

static bool is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Bytes that end a word for the pool-token rule: whitespace, quotes and control bytes. */
static bool ends_word(unsigned char c)
{
    return c <= ' ' || c == '"' || c == '\'' || c == '`' || c == 0x7f;
}

/* Length of a pool-token-shaped word at s[0..n): "apt_" then non-space bytes, up to the end of the last run of at
 * least LOG_TOKEN_HEX_MIN hex digits in that word (so "apt_p_<hex>&x=1" keeps "&x=1"). 0 when there is none. At a
 * cut end (`cut`), a word that starts with "apt_" and reaches the cut is taken whole: its tail was lost.
 * *scanned receives how far the word was read: no later "apt_" inside it can match when this one did not. */
static size_t token_match(const char *s, size_t n, bool cut, size_t *scanned)
{
    *scanned = 1;
    if (n < 4 || memcmp(s, "apt_", 4) != 0)
        return 0;
    size_t i = 4, end = 0, hex = 0;
    for (; i < n && !ends_word((unsigned char)s[i]); i++) {
        hex = is_hex((unsigned char)s[i]) ? hex + 1 : 0;
        if (hex >= LOG_TOKEN_HEX_MIN && (i + 1 == n || !is_hex((unsigned char)s[i + 1])))
            end = i + 1;
    }
    *scanned = i;
    if (cut && i == n)
        return n;
    return end;
}

/* Length of the longest registered secret at s[0..n), or 0. At a cut end, a proper prefix of a secret that
 * reaches the cut counts as a match. */
static size_t secret_match(const char *s, size_t n, bool cut)
{
    size_t best = 0;
    for (int k = 0; k < logger.nsecrets; k++) {
        size_t len = logger.secret_len[k];
        if (len <= n) {
            if (len > best && memcmp(s, logger.secrets[k], len) == 0)
                best = len;
        } else if (cut && n > best && memcmp(s, logger.secrets[k], n) == 0) {
            best = n;
        }
    }
    return best;
}

/* Writes s[0..n) into out (capacity outlen > 0, NUL-terminated) with secrets replaced. Returns true when the
 * output had to be shortened. Nothing of a secret is ever copied, so shortening the output cannot leak one. */
static bool redact(const char *s, size_t n, bool cut, char *out, size_t outlen)
{
    size_t o = 0, room = outlen - 1;
    size_t no_token_before = 0; /* keeps the token scan linear on input such as "apt_apt_apt_…" */
    for (size_t i = 0; i < n;) {
        size_t m = secret_match(s + i, n - i, cut);
        if (i >= no_token_before) {
            size_t scanned, t = token_match(s + i, n - i, cut, &scanned);
            if (!t)
                no_token_before = i + scanned;
            if (t > m)
                m = t;
        }
        if (m) {
            size_t r = sizeof redacted - 1;
            if (r > room - o) {
                out[o] = '\0';
                return true;
            }
            memcpy(out + o, redacted, r);
            o += r;
            i += m;
            continue;
        }
        if (o == room) {
            out[o] = '\0';
            return true;
        }
        out[o++] = s[i++];
    }
    out[o] = '\0';
    return false;
}

void log_redact(const char *s, char *out, size_t outlen)
{
    if (!out || outlen == 0)
        return;
    if (!s) {
        out[0] = '\0';
        return;
    }
    redact(s, strlen(s), false, out, outlen);
}

/* Drops an incomplete UTF-8 sequence at the end of s[0..n) (left by a cut), so JSON lines stay valid UTF-8. */
static size_t utf8_trim(const char *s, size_t n)
{
    size_t i = n, cont = 0;
    while (i > 0 && cont < 4 && ((unsigned char)s[i - 1] & 0xc0) == 0x80) {
        i--;
        cont++;
    }
    if (i == 0)
        return n;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead >= 0xf0 ? 3 : lead >= 0xe0 ? 2 : lead >= 0xc0 ? 1 : 0;
    if (need > cont)
        return i - 1;
    return n;
}

/* Text lines stay one line: newlines and other control bytes in a message are shown escaped. */
static void text_escape(strbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 0x20 && c != 0x7f) || c == '\t')
            continue;
        strbuf_append(b, s + run, i - run);
        run = i + 1;
        if (c == '\n') {
            strbuf_puts(b, "\\n");
        } else if (c == '\r') {
            strbuf_puts(b, "\\r");
        } else {
            char esc[4] = { '\\', 'x', hex[c >> 4], hex[c & 15] };
            strbuf_append(b, esc, sizeof esc);
        }
    }
    strbuf_append(b, s + run, n - run);
}

static void format_time(char *out, size_t outlen)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, outlen, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, outlen - n, ".%03ldZ", ts.tv_nsec / 1000000L);
}

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* nowhere left to report it */
        }
        p += w;
        n -= (size_t)w;
    }
}

void log_vwrite(log_level level, const char *module, const char *fmt, va_list ap)
{
    if (level < logger.min_level)
        return;
    if ((unsigned)level > LOG_ERROR)
        level = LOG_ERROR;

    char raw_small[LOG_MSG_SMALL], msg_small[LOG_MSG_SMALL];
    char *raw = raw_small, *msg = msg_small, *big = NULL;
    size_t cap = sizeof raw_small;
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(raw, cap, fmt ? fmt : "", ap);
    if (n >= 0 && (size_t)n >= cap && (big = malloc(2 * (LOG_MSG_MAX + 1)))) {
        raw = big; /* without memory the line is kept cut to the small buffer */
        msg = big + LOG_MSG_MAX + 1;
        cap = LOG_MSG_MAX + 1;
        vsnprintf(raw, cap, fmt ? fmt : "", again);
    }
    va_end(again);
    if (n < 0)
        n = 0;
    bool cut = (size_t)n > cap - 1;
    size_t rawlen = cut ? cap - 1 : (size_t)n;
    if (redact(raw, rawlen, cut, msg, cap))
        cut = true;
    size_t msglen = strlen(msg);
    if (cut)
        msglen = utf8_trim(msg, msglen);

    char ts[40];
    format_time(ts, sizeof ts);
    const char *mod = module && *module ? module : NULL;

    strbuf line = STRBUF_INIT;
    if (logger.format == LOG_FORMAT_JSON) {
        strbuf_printf(&line, "{\"ts\":\"%s\",\"level\":\"%s\"", ts, levels[level].name);
        if (mod) {
            strbuf_puts(&line, ",\"module\":\"");
            strbuf_json_escape(&line, mod, strlen(mod));
            strbuf_putc(&line, '"');
        }
        strbuf_puts(&line, ",\"msg\":\"");
        strbuf_json_escape(&line, msg, msglen);
        if (cut)
            strbuf_puts(&line, truncated);
        strbuf_puts(&line, "\"}\n");
    } else {
        strbuf_printf(&line, "%s %s ", ts, levels[level].label);
        if (mod) {
            text_escape(&line, mod, strlen(mod));
            strbuf_puts(&line, ": ");
        }
        text_escape(&line, msg, msglen);
        if (cut)
            strbuf_puts(&line, truncated);
        strbuf_putc(&line, '\n');
    }
    if (!line.oom)
        write_all(line.data, line.len);
    strbuf_free(&line);
    free(big);
}

void log_write(log_level level, const char *module, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(level, module, fmt, ap);
    va_end(ap);
}

int log_level_parse(const char *s, log_level *out)
{
    if (!s)
        return -1;
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
        if (strcasecmp(s, levels[i].name) == 0) {
            *out = (log_level)i;
            return 0;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = LOG_WARN;
        return 0;
    }
    return -1;
}

int log_format_parse(const char *s, log_format *out)
{
    static const char *const names[] = { [LOG_FORMAT_TEXT] = "text", [LOG_FORMAT_JSON] = "json" };
    if (!s)
        return -1;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(s, names[i]) == 0) {
            *out = (log_format)i;
            return 0;
        }
    }
    return -1;
}
