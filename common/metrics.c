/* metrics.c — writers for the Prometheus text exposition format 0.0.4; see metrics.h.
 *
 * Numbers are written the way Prometheus' own clients write them: whole values without a fraction ("3", not
 * "3.000000"), others in the shortest form that reads back as the same double, and +Inf, -Inf, NaN by name.
 * Label values escape backslash, double quote and newline; HELP text escapes backslash and newline. */
#include "iac/metrics.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const type_names[] = {
    [METRIC_COUNTER] = "counter",
    [METRIC_GAUGE] = "gauge",
    [METRIC_HISTOGRAM] = "histogram",
};

/* Escapes backslash and newline, and the double quote too when `quote` (label values). */
static void escape(strbuf *b, const char *s, int quote)
{
    size_t run = 0, i = 0;
    for (; s[i]; i++) {
        const char *rep = NULL;
        if (s[i] == '\\')
            rep = "\\\\";
        else if (s[i] == '\n')
            rep = "\\n";
        else if (s[i] == '"' && quote)
            rep = "\\\"";
        if (!rep)
            continue;
        strbuf_append(b, s + run, i - run);
        strbuf_puts(b, rep);
        run = i + 1;
    }
    strbuf_append(b, s + run, i - run);
}

/* 2^53: every whole number below it is exactly representable and prints exactly as an integer. */
#define EXACT_INT_MAX 9007199254740992.0

/* Formats v into buf (NUMBER_LEN bytes). */
#define NUMBER_LEN 40
static void format_number(double v, char *buf)
{
    if (isnan(v)) {
        strcpy(buf, "NaN");
    } else if (isinf(v)) {
        strcpy(buf, v > 0 ? "+Inf" : "-Inf");
    } else if (v == floor(v) && fabs(v) < EXACT_INT_MAX) {
        snprintf(buf, NUMBER_LEN, "%" PRId64, (int64_t)v); /* also turns -0 into "0" */
    } else {
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(buf, NUMBER_LEN, "%.*g", prec, v);
            if (strtod(buf, NULL) == v)
                break;
        }
    }
}

static void put_number(strbuf *b, double v)
{
    char buf[NUMBER_LEN];
    format_number(v, buf);
    strbuf_puts(b, buf);
}

/* {a="x",b="y"} with an optional extra pair last (the histogram's "le"); nothing when there are no labels. */
static void put_labels(strbuf *b, const char *const *labels, const char *extra_name, const char *extra_value)
{
    int n = 0;
    for (size_t i = 0; labels && labels[i] && labels[i + 1]; i += 2, n++) {
        strbuf_putc(b, n ? ',' : '{');
        strbuf_puts(b, labels[i]);
        strbuf_puts(b, "=\"");
        escape(b, labels[i + 1], 1);
        strbuf_putc(b, '"');
    }
    if (extra_name) {
        strbuf_putc(b, n++ ? ',' : '{');
        strbuf_puts(b, extra_name);
        strbuf_puts(b, "=\"");
        escape(b, extra_value, 1);
        strbuf_putc(b, '"');
    }
    if (n)
        strbuf_putc(b, '}');
}

void metrics_family(strbuf *b, const char *name, metric_type type, const char *help)
{
    strbuf_printf(b, "# HELP %s ", name);
    escape(b, help ? help : "", 0);
    strbuf_printf(b, "\n# TYPE %s %s\n", name,
                  (unsigned)type < sizeof type_names / sizeof type_names[0] ? type_names[type] : "untyped");
}

void metrics_sample(strbuf *b, const char *name, const char *const *labels, double value)
{
    strbuf_puts(b, name);
    put_labels(b, labels, NULL, NULL);
    strbuf_putc(b, ' ');
    put_number(b, value);
    strbuf_putc(b, '\n');
}

void metrics_histogram(strbuf *b, const char *name, const char *const *labels, const double *bounds,
                       const uint64_t *counts, size_t nbounds, double sum)
{
    uint64_t cumulative = 0;
    char le[NUMBER_LEN];
    for (size_t i = 0; i <= nbounds; i++) {
        cumulative += counts[i];
        if (i < nbounds)
            format_number(bounds[i], le);
        else
            strcpy(le, "+Inf");
        strbuf_printf(b, "%s_bucket", name);
        put_labels(b, labels, "le", le);
        strbuf_printf(b, " %" PRIu64 "\n", cumulative);
    }
    strbuf_printf(b, "%s_sum", name);
    put_labels(b, labels, NULL, NULL);
    strbuf_putc(b, ' ');
    put_number(b, sum);
    strbuf_printf(b, "\n%s_count", name);
    put_labels(b, labels, NULL, NULL);
    strbuf_printf(b, " %" PRIu64 "\n", cumulative);
}
