/* config.c — table-driven configuration from the environment and command-line flags; see config.h.
 *
 * Each option takes its value from exactly one source, the strongest present: a flag (the last one given), else a
 * non-empty environment variable, else the table's default. Only that value is validated, so an environment value
 * that a flag overrides is never judged. Every kind has one parser and one sentence that says what it allows; the
 * error message is assembled from the input's name, its value (never for secrets) and that sentence, so every
 * message has the same house form.
 *
 * Nothing is allocated. The one value that cannot point into its source is the host of a CFG_HOSTPORT (it must be
 * NUL-terminated where the source has ":port"): it is copied into the caller's CFG_HOST_MAX buffer. */
#include "iac/config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- durations ---- */

static const struct {
    const char *suffix;
    int64_t     ms;
} units[] = {
    /* Largest first: a duration names each unit at most once, in this order ("1h30m", not "30m1h"). */
    { "h", 3600000 },
    { "m", 60000 },
    { "s", 1000 },
    { "ms", 1 },
};
#define NUNITS (sizeof units / sizeof units[0])

/* Which unit starts at s: "ms" must win over "m". Returns the index or -1. */
static int unit_at(const char *s, size_t *len)
{
    int best = -1;
    size_t best_len = 0;
    for (size_t i = 0; i < NUNITS; i++) {
        size_t l = strlen(units[i].suffix);
        if (l > best_len && strncmp(s, units[i].suffix, l) == 0) {
            best = (int)i;
            best_len = l;
        }
    }
    *len = best_len;
    return best;
}

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

/* Whole number from a run of digits; false on overflow. */
static bool digits_value(const char *s, size_t n, int64_t *out)
{
    int64_t v = 0;
    for (size_t i = 0; i < n; i++)
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, s[i] - '0', &v))
            return false;
    *out = v;
    return true;
}

int cfg_parse_duration(const char *s, int64_t *ms)
{
    if (!s || !*s)
        return -1;
    if (all_digits(s)) { /* bare seconds */
        int64_t v;
        if (!digits_value(s, strlen(s), &v) || __builtin_mul_overflow(v, 1000, &v))
            return -1;
        *ms = v;
        return 0;
    }
    int64_t total = 0;
    int next_unit = 0; /* units must come largest first, each once */
    while (*s) {
        const char *int_start = s;
        while (isdigit((unsigned char)*s))
            s++;
        size_t int_len = (size_t)(s - int_start);
        if (int_len == 0)
            return -1;
        const char *frac_start = s;
        size_t frac_len = 0;
        if (*s == '.') {
            frac_start = ++s;
            while (isdigit((unsigned char)*s))
                s++;
            frac_len = (size_t)(s - frac_start);
            if (frac_len == 0 || frac_len > 9)
                return -1;
        }
        size_t ulen;
        int u = unit_at(s, &ulen);
        if (u < next_unit)
            return -1;
        s += ulen;
        next_unit = u + 1;

        int64_t whole, part, frac = 0, scale = 1;
        if (!digits_value(int_start, int_len, &whole) || __builtin_mul_overflow(whole, units[u].ms, &part))
            return -1;
        if (frac_len) {
            digits_value(frac_start, frac_len, &frac); /* at most 9 digits: cannot overflow */
            for (size_t i = 0; i < frac_len; i++)
                scale *= 10;
            int64_t f = frac * units[u].ms; /* frac < 10^9 and ms per unit < 2^22: no overflow */
            if (f % scale != 0) /* finer than a millisecond */
                return -1;
            if (__builtin_add_overflow(part, f / scale, &part))
                return -1;
        }
        if (__builtin_add_overflow(total, part, &total))
            return -1;
    }
    *ms = total;
    return 0;
}

/* The shortest text cfg_parse_duration() reads back as ms: "1h30m", "1m30s500ms", "0s". */
static void format_duration(int64_t ms, char *out, size_t outlen)
{
    size_t o = 0;
    out[0] = '\0';
    if (ms == 0) {
        snprintf(out, outlen, "0s");
        return;
    }
    for (size_t i = 0; i < NUNITS && o < outlen; i++) {
        int64_t n = ms / units[i].ms;
        ms %= units[i].ms;
        if (n)
            o += (size_t)snprintf(out + o, outlen - o, "%" PRId64 "%s", n, units[i].suffix);
    }
}

/* ---- one parser and one "what is allowed" sentence per kind ---- */

void cfg_quote_value(const char *v, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    const size_t shown_max = 80;
    size_t o = 0, i = 0;
    out[o++] = '"';
    for (; v[i] && i < shown_max && o + 8 < outlen; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            out[o++] = (char)c;
        }
    }
    if (v[i] && o + 5 < outlen) {
        memcpy(out + o, "\xe2\x80\xa6", 3); /* "…" */
        o += 3;
    }
    out[o++] = '"';
    out[o] = '\0';
}

static bool limits_unset(const cfg_option *o) { return o->min == 0 && o->max == 0; }

static void allowed_int(const cfg_option *o, char *out, size_t outlen)
{
    if (limits_unset(o) || (o->min == INT64_MIN && o->max == INT64_MAX))
        snprintf(out, outlen, "be a whole number");
    else if (o->max == INT64_MAX)
        snprintf(out, outlen, "be a whole number of at least %" PRId64, o->min);
    else if (o->min == INT64_MIN)
        snprintf(out, outlen, "be a whole number of at most %" PRId64, o->max);
    else
        snprintf(out, outlen, "be a whole number from %" PRId64 " to %" PRId64, o->min, o->max);
}

static void allowed_duration(const cfg_option *o, char *out, size_t outlen)
{
    char lo[48], hi[48];
    int n = snprintf(out, outlen, "be a duration such as 500ms, 30s, 15m or 1h30m");
    if (n < 0 || (size_t)n >= outlen || limits_unset(o))
        return;
    format_duration(o->min, lo, sizeof lo);
    format_duration(o->max, hi, sizeof hi);
    if (o->max == INT64_MAX)
        snprintf(out + n, outlen - (size_t)n, ", at least %s", lo);
    else
        snprintf(out + n, outlen - (size_t)n, ", from %s to %s", lo, hi);
}

static void allowed_enum(const cfg_option *o, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "be one of ");
    if (n < 0 || (size_t)n >= outlen)
        return;
    size_t len = (size_t)n;
    for (const char *p = o->allowed ? o->allowed : ""; *p && len + 3 < outlen; p++) {
        if (*p == '|') {
            out[len++] = ',';
            out[len++] = ' ';
        } else {
            out[len++] = *p;
        }
    }
    out[len] = '\0';
}

static void allowed_bool(const cfg_option *o, char *out, size_t outlen)
{
    (void)o;
    snprintf(out, outlen, "be one of true, false, 1, 0, yes, no, on, off");
}

static void allowed_port(const cfg_option *o, char *out, size_t outlen)
{
    snprintf(out, outlen, "be a port number from %d to 65535", o->min == 0 ? 0 : 1);
}

static void allowed_hostport(const cfg_option *o, char *out, size_t outlen)
{
    snprintf(out, outlen, "be host:port or :port with a port from %d to 65535", o->min == 0 ? 0 : 1);
}

static void allowed_string(const cfg_option *o, char *out, size_t outlen)
{
    if (o->min <= 1)
        snprintf(out, outlen, "not be empty");
    else
        snprintf(out, outlen, "be at least %" PRId64 " characters long", o->min);
}

static int parse_port_text(const cfg_option *o, const char *s, int64_t *port)
{
    int64_t v;
    if (!all_digits(s) || strlen(s) > 5 || !digits_value(s, strlen(s), &v))
        return -1;
    if (v > 65535 || v < (o->min == 0 ? 0 : 1))
        return -1;
    *port = v;
    return 0;
}

static int parse_string(const cfg_option *o, const char *s)
{
    if ((int64_t)strlen(s) < o->min)
        return -1;
    *(const char **)o->dst = s;
    return 0;
}

static int parse_int(const cfg_option *o, const char *s)
{
    const char *d = *s == '-' ? s + 1 : s;
    int64_t v;
    if (!all_digits(d) || !digits_value(d, strlen(d), &v))
        return -1; /* also rejects INT64_MIN itself: no option needs it */
    if (*s == '-')
        v = -v;
    if (!limits_unset(o) && (v < o->min || v > o->max))
        return -1;
    *(int64_t *)o->dst = v;
    return 0;
}

static int parse_duration(const cfg_option *o, const char *s)
{
    int64_t v;
    if (cfg_parse_duration(s, &v) < 0)
        return -1;
    if (!limits_unset(o) && (v < o->min || v > o->max))
        return -1;
    *(int64_t *)o->dst = v;
    return 0;
}

static int parse_enum(const cfg_option *o, const char *s)
{
    const char *p = o->allowed ? o->allowed : "";
    size_t len = strlen(s);
    for (int i = 0; *p; i++) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && strncmp(p, s, n) == 0) {
            *(int *)o->dst = i;
            return 0;
        }
        if (!bar)
            break;
        p = bar + 1;
    }
    return -1;
}

static int parse_bool(const cfg_option *o, const char *s)
{
    static const struct {
        const char *text;
        bool        value;
    } words[] = {
        { "1", true }, { "true", true }, { "yes", true }, { "on", true },
        { "0", false }, { "false", false }, { "no", false }, { "off", false },
    };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        if (strcasecmp(s, words[i].text) == 0) {
            *(bool *)o->dst = words[i].value;
            return 0;
        }
    }
    return -1;
}

static int parse_port(const cfg_option *o, const char *s)
{
    return parse_port_text(o, s, (int64_t *)o->dst);
}

static bool host_char(unsigned char c)
{
    return isalnum(c) || c == '.' || c == '-' || c == '_' || c == ':' || c == '%';
}

/* "host:port", ":port", "[v6]:port". */
static int parse_hostport(const cfg_option *o, const char *s)
{
    const char *colon, *host = s;
    size_t hlen;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return -1;
        host = s + 1;
        hlen = (size_t)(close - host);
        colon = close + 1;
        if (hlen == 0)
            return -1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -1;
        hlen = (size_t)(colon - s);
        if (memchr(s, ':', hlen)) /* a bare IPv6 address needs brackets */
            return -1;
    }
    for (size_t i = 0; i < hlen; i++)
        if (!host_char((unsigned char)host[i]))
            return -1;
    int64_t port;
    if (parse_port_text(o, colon + 1, &port) < 0)
        return -1;
    if (hlen >= CFG_HOST_MAX)
        return -1;
    char *dst = o->dst;
    if (hlen) {
        memcpy(dst, host, hlen);
        dst[hlen] = '\0';
    } else {
        strcpy(dst, "0.0.0.0");
    }
    if (o->dst2)
        *(int64_t *)o->dst2 = port;
    return 0;
}

static const struct {
    int (*parse)(const cfg_option *o, const char *s);
    void (*allowed)(const cfg_option *o, char *out, size_t outlen); /* what follows "must": "be one of a, b" */
    const char *metavar; /* for --help */
} kinds[] = {
    [CFG_STRING] = { parse_string, allowed_string, "VALUE" },
    [CFG_INT] = { parse_int, allowed_int, "N" },
    [CFG_DURATION] = { parse_duration, allowed_duration, "DURATION" },
    [CFG_ENUM] = { parse_enum, allowed_enum, NULL /* the allowed list */ },
    [CFG_BOOL] = { parse_bool, allowed_bool, NULL /* a bare flag */ },
    [CFG_HOSTPORT] = { parse_hostport, allowed_hostport, "HOST:PORT" },
    [CFG_PORT] = { parse_port, allowed_port, "PORT" },
};
#define NKINDS (sizeof kinds / sizeof kinds[0])

/* ---- messages ---- */

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* `source` is how the input is named: "IAC_AGENT_SLOTS", "--slots", "default of --slots". */
static void bad_value(const cfg_option *o, const char *source, const char *value, char *err, size_t errlen)
{
    char allowed[256], quoted[128];
    if ((size_t)o->kind < NKINDS)
        kinds[o->kind].allowed(o, allowed, sizeof allowed);
    else
        snprintf(allowed, sizeof allowed, "be of a known kind");
    const char *what = o->what && *o->what ? o->what : NULL;
    if (o->secret) {
        set_err(err, errlen, "%s is not allowed: %s%smust %s", source, what ? what : "", what ? " " : "", allowed);
        return;
    }
    cfg_quote_value(value, quoted, sizeof quoted);
    set_err(err, errlen, "%s=%s is not allowed: %s%smust %s", source, quoted, what ? what : "", what ? " " : "",
            allowed);
}

/* ---- the walk over argv ---- */

enum { ARG_END, ARG_FLAG, ARG_POSITIONAL, ARG_HELP, ARG_VERSION, ARG_UNKNOWN, ARG_NO_VALUE };

typedef struct {
    int  i;               /* next argv index */
    bool only_positional; /* after "--" */
} arg_walk;

typedef struct {
    size_t      opt;     /* ARG_FLAG, ARG_NO_VALUE: index into opts */
    const char *value;   /* ARG_FLAG: the value, NULL for a bare bool flag; ARG_POSITIONAL: the argument */
    const char *name;    /* ARG_UNKNOWN: the flag as given, up to any "=" */
    size_t      namelen;
} arg_step;

static int arg_next(const cfg_option *opts, size_t n, int argc, char **argv, arg_walk *w, arg_step *st)
{
    while (w->i < argc) {
        const char *a = argv[w->i++];
        if (!a)
            continue;
        if (w->only_positional || a[0] != '-' || strcmp(a, "-") == 0) {
            st->value = a;
            return ARG_POSITIONAL;
        }
        if (strcmp(a, "--") == 0) {
            w->only_positional = true;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            return ARG_HELP;
        if (strcmp(a, "--version") == 0)
            return ARG_VERSION;
        const char *name = a[1] == '-' ? a + 2 : a + 1;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        st->name = a;
        st->namelen = (size_t)(name - a) + len;
        if (a[1] != '-' || len == 0)
            return ARG_UNKNOWN; /* single-dash flags other than -h are typos, not positionals */
        size_t k;
        for (k = 0; k < n; k++)
            if (opts[k].flag && strlen(opts[k].flag) == len && strncmp(opts[k].flag, name, len) == 0)
                break;
        if (k == n)
            return ARG_UNKNOWN;
        st->opt = k;
        if (eq) {
            st->value = eq + 1;
        } else if (opts[k].kind == CFG_BOOL) {
            st->value = NULL;
        } else if (w->i < argc && argv[w->i]) {
            st->value = argv[w->i++];
        } else {
            return ARG_NO_VALUE;
        }
        return ARG_FLAG;
    }
    return ARG_END;
}

static const char *env_lookup(char **envp, const char *name)
{
    if (!envp || !name)
        return NULL;
    size_t len = strlen(name);
    for (char **e = envp; *e; e++)
        if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
            return *e + len + 1;
    return NULL;
}

/* Applies one option from its strongest source. Returns CFG_OK or CFG_ERR. */
static int apply_option(const cfg_option *opts, size_t n, size_t k, int argc, char **argv, char **envp, char *err,
                        size_t errlen)
{
    const cfg_option *o = &opts[k];
    if ((size_t)o->kind >= NKINDS || !o->dst) {
        set_err(err, errlen, "option %s is misconfigured", o->flag ? o->flag : o->env ? o->env : "?");
        return CFG_ERR;
    }
    char source[160];
    const char *value = NULL;
    bool given = false;

    /* The last flag wins. */
    arg_walk w = { 1, false };
    arg_step st;
    int r;
    while ((r = arg_next(opts, n, argc, argv, &w, &st)) != ARG_END) {
        if (r == ARG_FLAG && st.opt == k) {
            value = st.value ? st.value : "true"; /* a bare bool flag */
            given = true;
        }
    }
    if (given) {
        snprintf(source, sizeof source, "--%s", o->flag);
    } else if ((value = env_lookup(envp, o->env)) && *value) {
        snprintf(source, sizeof source, "%s", o->env);
        given = true;
    } else if (o->def) {
        value = o->def;
        snprintf(source, sizeof source, "default of %s%s", o->flag ? "--" : "", o->flag ? o->flag : o->env);
        given = true;
    }

    if (given && kinds[o->kind].parse(o, value) < 0) {
        bad_value(o, source, value, err, errlen);
        return CFG_ERR;
    }
    if (o->required) {
        bool empty = !given;
        if (o->kind == CFG_STRING || o->kind == CFG_HOSTPORT) {
            const char *s = *(const char **)o->dst;
            empty = !s || !*s;
        }
        if (empty) {
            const char *name = o->env ? o->env : o->flag;
            set_err(err, errlen, "%s%s is required: %s", o->env ? "" : "--", name ? name : "?",
                    o->help ? o->help : "no default");
            return CFG_ERR;
        }
    }
    return CFG_OK;
}

int cfg_parse(const cfg_option *opts, size_t n, int argc, char **argv, char **envp, const char **pos, int *npos,
              char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (npos)
        *npos = 0;

    /* First the shape of the command line: --help and --version win over any mistake beside them. */
    arg_walk w = { 1, false };
    arg_step st;
    int r, first_error = ARG_END;
    arg_step bad = { 0, NULL, NULL, 0 };
    int positionals = 0;
    while ((r = arg_next(opts, n, argc, argv, &w, &st)) != ARG_END) {
        if (r == ARG_HELP)
            return CFG_HELP;
        if (r == ARG_VERSION)
            return CFG_VERSION;
        if (r == ARG_POSITIONAL) {
            if (pos) {
                pos[positionals++] = st.value;
                continue;
            }
            r = ARG_POSITIONAL;
        }
        if (r != ARG_FLAG && first_error == ARG_END) {
            first_error = r;
            bad = st;
        }
        if (r == ARG_NO_VALUE)
            break;
    }
    if (npos)
        *npos = positionals;
    switch (first_error) {
    case ARG_UNKNOWN:
        set_err(err, errlen, "unknown flag %.*s (see --help)", (int)bad.namelen, bad.name);
        return CFG_ERR;
    case ARG_NO_VALUE:
        set_err(err, errlen, "--%s needs a value (see --help)", opts[bad.opt].flag);
        return CFG_ERR;
    case ARG_POSITIONAL: {
        char quoted[128];
        cfg_quote_value(bad.value, quoted, sizeof quoted);
        set_err(err, errlen, "unexpected argument %s (see --help)", quoted);
        return CFG_ERR;
    }
    }

    for (size_t k = 0; k < n; k++)
        if (apply_option(opts, n, k, argc, argv, envp, err, errlen) != CFG_OK)
            return CFG_ERR;
    return CFG_OK;
}

void cfg_print_help(FILE *out, const cfg_option *opts, size_t n)
{
    enum { COL = 128 };
    char flagcol[COL], defcol[COL];
    int wflag = (int)strlen("--help, -h"), wenv = 0, wdef = 0;

    /* Two passes: measure the columns, then print. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t k = 0; k < n; k++) {
            const cfg_option *o = &opts[k];
            const char *meta = (size_t)o->kind < NKINDS ? kinds[o->kind].metavar : NULL;
            if (!o->flag)
                snprintf(flagcol, sizeof flagcol, "-");
            else if (o->kind == CFG_ENUM)
                snprintf(flagcol, sizeof flagcol, "--%s=%s", o->flag, o->allowed ? o->allowed : "");
            else if (meta)
                snprintf(flagcol, sizeof flagcol, "--%s=%s", o->flag, meta);
            else
                snprintf(flagcol, sizeof flagcol, "--%s", o->flag);
            if (o->secret && o->def)
                snprintf(defcol, sizeof defcol, "(default set)");
            else if (o->def && *o->def)
                snprintf(defcol, sizeof defcol, "(default %s)", o->def);
            else if (o->required)
                snprintf(defcol, sizeof defcol, "(required)");
            else
                defcol[0] = '\0';
            const char *env = o->env ? o->env : "-";
            if (pass == 0) {
                if ((int)strlen(flagcol) > wflag)
                    wflag = (int)strlen(flagcol);
                if ((int)strlen(env) > wenv)
                    wenv = (int)strlen(env);
                if ((int)strlen(defcol) > wdef)
                    wdef = (int)strlen(defcol);
                continue;
            }
            fprintf(out, "  %-*s  %-*s  %-*s  %s\n", wflag, flagcol, wenv, env, wdef, defcol, o->help ? o->help : "");
        }
    }
    fprintf(out, "  %-*s  %-*s  %-*s  %s\n", wflag, "--help, -h", wenv, "", wdef, "", "print this help and exit");
    fprintf(out, "  %-*s  %-*s  %-*s  %s\n", wflag, "--version", wenv, "", wdef, "", "print the version and exit");
}
