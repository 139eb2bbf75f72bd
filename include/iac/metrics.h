/* metrics.h — the Prometheus text exposition format (version 0.0.4), written into a strbuf.
 *
 * Metrics are not kept here: each program keeps plain counters in its own structs and renders a page on demand
 * with these writers, so a scrape costs one pass and there is no registry to keep in sync. The writers escape
 * label values (backslash, double quote, newline) and format numbers as Prometheus expects (integers without a
 * fraction, +Inf/-Inf/NaN spelled out). */
#ifndef IAC_METRICS_H
#define IAC_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "iac/strbuf.h"

typedef enum { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM } metric_type;

/* "# HELP name help\n# TYPE name type\n". Call once per metric family, before its samples. */
void metrics_family(strbuf *b, const char *name, metric_type type, const char *help);

/* One sample line. labels is a NULL-terminated array of alternating names and values ({"slot", "0", NULL}), or
 * NULL for none. */
void metrics_sample(strbuf *b, const char *name, const char *const *labels, double value);

/* A histogram with fixed bucket bounds (ascending, without +Inf): counts[i] is the number of observations
 * ≤ bounds[i] (not cumulative; the writer accumulates), plus the overflow in counts[nbounds]. Writes _bucket lines
 * with "le" added after the given labels, then _sum and _count. */
void metrics_histogram(strbuf *b, const char *name, const char *const *labels, const double *bounds,
                       const uint64_t *counts, size_t nbounds, double sum);

#endif
