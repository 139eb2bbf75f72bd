/* knobs.c — FAKE_TF_* environment variables into a struct; see knobs.h.
 *
 * Numbers are checked against a table of ranges; the per-command delays default to FAKE_TF_DELAY_MS, so a test
 * can slow every step with one variable and still tune one of them. */
#include "knobs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FT_DAY_MS 86400000L

#define FT_MS "milliseconds from 0 to 86400000"

/* Numeric knobs: default (-1 = "FAKE_TF_DELAY_MS"), range, and what the error message says is allowed. */
static const struct {
    const char *name;
    size_t      off;
    long        def, min, max;
    const char *allowed;
} ft_num_knobs[] = {
    { "FAKE_TF_DELAY_MS", offsetof(ft_knobs, delay_ms), 0, 0, FT_DAY_MS, FT_MS },
    { "FAKE_TF_INIT_DELAY_MS", offsetof(ft_knobs, init_delay_ms), -1, 0, FT_DAY_MS, FT_MS },
    { "FAKE_TF_PLAN_DELAY_MS", offsetof(ft_knobs, plan_delay_ms), -1, 0, FT_DAY_MS, FT_MS },
    { "FAKE_TF_APPLY_DELAY_MS", offsetof(ft_knobs, apply_delay_ms), -1, 0, FT_DAY_MS, FT_MS },
    { "FAKE_TF_OUTPUT_LINES", offsetof(ft_knobs, output_lines), 0, 0, 1000000000L, "a count from 0 to 1000000000" },
    { "FAKE_TF_OUTPUT_LINE_BYTES", offsetof(ft_knobs, output_line_bytes), 100, 1, 16777216L, "1 to 16777216 bytes" },
    { "FAKE_TF_LONG_LINE_BYTES", offsetof(ft_knobs, long_line_bytes), 0, 0, 1073741824L, "a length up to 1073741824" },
    { "FAKE_TF_INIT_FAIL_TIMES", offsetof(ft_knobs, init_fail_times), 0, 0, 1000000L, "a count from 0 to 1000000" },
    { "FAKE_TF_FAIL_AFTER", offsetof(ft_knobs, fail_after), 0, 0, 1000000L, "a count from 0 to 1000000" },
};

static const char *ft_env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static int ft_num(const char *name, long def, long min, long max, const char *allowed, long *out, char *err,
                  size_t errlen)
{
    const char *v = ft_env(name);
    *out = def;
    if (!v)
        return 0;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || *end || end == v || n < min || n > max) {
        snprintf(err, errlen, "fake-terraform: %s=\"%s\" is not allowed: it must be %s", name, v, allowed);
        return -1;
    }
    *out = n;
    return 0;
}

static bool ft_flag_env(const char *name, bool def)
{
    const char *v = ft_env(name);
    if (!v)
        return def;
    return strcmp(v, "0") != 0 && strcmp(v, "false") != 0 && strcmp(v, "no") != 0;
}

int ft_knobs_load(ft_knobs *k, char *err, size_t errlen)
{
    memset(k, 0, sizeof *k);
    for (size_t i = 0; i < sizeof ft_num_knobs / sizeof ft_num_knobs[0]; i++) {
        long *slot = (long *)((char *)k + ft_num_knobs[i].off);
        if (ft_num(ft_num_knobs[i].name, ft_num_knobs[i].def, ft_num_knobs[i].min, ft_num_knobs[i].max,
                   ft_num_knobs[i].allowed, slot, err, errlen) < 0)
            return -1;
    }
    long *per_step[] = { &k->init_delay_ms, &k->plan_delay_ms, &k->apply_delay_ms };
    for (size_t i = 0; i < sizeof per_step / sizeof per_step[0]; i++)
        if (*per_step[i] < 0)
            *per_step[i] = k->delay_ms;

    k->version = ft_env("FAKE_TF_VERSION") ? ft_env("FAKE_TF_VERSION") : "1.6.6";
    k->output_on = ft_env("FAKE_TF_OUTPUT_ON") ? ft_env("FAKE_TF_OUTPUT_ON") : "plan";
    k->state_dir = ft_env("FAKE_TF_STATE_DIR");
    k->fail = ft_env("FAKE_TF_FAIL");
    k->fail_message = ft_env("FAKE_TF_FAIL_MESSAGE");
    k->force_replace = ft_env("FAKE_TF_FORCE_REPLACE");
    k->record_env = ft_env("FAKE_TF_RECORD_ENV");
    k->require_init = ft_flag_env("FAKE_TF_REQUIRE_INIT", true);
    k->debug = ft_flag_env("FAKE_TF_DEBUG", false);

    const char *s = ft_env("FAKE_TF_SIGINT");
    if (!s || strcmp(s, "graceful") == 0) {
        k->sigint = FT_SIGINT_GRACEFUL;
    } else if (strcmp(s, "ignore") == 0) {
        k->sigint = FT_SIGINT_IGNORE;
    } else {
        snprintf(err, errlen, "fake-terraform: FAKE_TF_SIGINT=\"%s\" is not allowed: use graceful or ignore", s);
        return -1;
    }
    for (const char *p = k->version; *p; p++) {
        if (!((*p >= '0' && *p <= '9') || *p == '.' || (*p >= 'a' && *p <= 'z') || *p == '-')) {
            snprintf(err, errlen, "fake-terraform: FAKE_TF_VERSION=\"%s\" is not allowed: use a version like 1.6.6",
                     k->version);
            return -1;
        }
    }
    return 0;
}

bool ft_list_has(const char *list, const char *word, bool star)
{
    if (!list)
        return false;
    size_t wlen = strlen(word);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *start = p;
        while (*p && *p != ',')
            p++;
        const char *end = p;
        while (end > start && end[-1] == ' ')
            end--;
        size_t len = (size_t)(end - start);
        if (len == wlen && memcmp(start, word, len) == 0)
            return true;
        if (star && len == 1 && *start == '*')
            return true;
    }
    return false;
}
