/* test_metrics.c — the Prometheus text format writers: exact family and sample text, label and HELP escaping,
 * number formatting (integers, shortest round trip, infinities, NaN) and cumulative histograms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iac/metrics.h"

/* A family is HELP and TYPE lines, then one line per sample with its labels in the given order. */
static void family_with_labels_has_exact_text(void **state)
{
    (void)state;
    strbuf b = STRBUF_INIT;
    metrics_family(&b, "iac_agent_slots", METRIC_GAUGE, "Slots by state.");
    const char *const idle[] = { "state", "idle", "pool", "pool-a", NULL };
    const char *const busy[] = { "state", "running", "pool", "pool-a", NULL };
    metrics_sample(&b, "iac_agent_slots", idle, 3);
    metrics_sample(&b, "iac_agent_slots", busy, 1);
    metrics_family(&b, "iac_agent_up", METRIC_COUNTER, "Starts.");
    metrics_sample(&b, "iac_agent_up", NULL, 1);
    const char *const none[] = { NULL };
    metrics_sample(&b, "iac_agent_up", none, 2);
    assert_false(b.oom);
    assert_string_equal(b.data, "# HELP iac_agent_slots Slots by state.\n"
                                "# TYPE iac_agent_slots gauge\n"
                                "iac_agent_slots{state=\"idle\",pool=\"pool-a\"} 3\n"
                                "iac_agent_slots{state=\"running\",pool=\"pool-a\"} 1\n"
                                "# HELP iac_agent_up Starts.\n"
                                "# TYPE iac_agent_up counter\n"
                                "iac_agent_up 1\n"
                                "iac_agent_up 2\n");
    strbuf_free(&b);
}

/* Label values escape backslash, double quote and newline; HELP escapes backslash and newline but not quotes. */
static void label_values_and_help_are_escaped(void **state)
{
    (void)state;
    strbuf b = STRBUF_INIT;
    const char *const labels[] = { "path", "C:\\dir \"x\"\nnext", NULL };
    metrics_sample(&b, "m", labels, 1);
    assert_string_equal(b.data, "m{path=\"C:\\\\dir \\\"x\\\"\\nnext\"} 1\n");
    strbuf_reset(&b);
    metrics_family(&b, "m", METRIC_COUNTER, "a \"quoted\" back\\slash\nline");
    assert_string_equal(b.data, "# HELP m a \"quoted\" back\\\\slash\\nline\n# TYPE m counter\n");
    strbuf_free(&b);
}

/* Whole numbers print without a fraction; others in the shortest text that reads back as the same double;
 * infinities and NaN by their Prometheus names. */
static void numbers_are_formatted_as_prometheus_expects(void **state)
{
    (void)state;
    static const struct {
        double      v;
        const char *text;
    } cases[] = {
        { 3, "3" },
        { 0, "0" },
        { -0.0, "0" },
        { -2, "-2" },
        { 1234567890123.0, "1234567890123" },
        { 9007199254740991.0, "9007199254740991" },
        { 0.5, "0.5" },
        { 0.1, "0.1" },
        { 2.5e-3, "0.0025" },
        { 1.0 / 3.0, "0.3333333333333333" },
        { 0.1 + 0.2, "0.30000000000000004" },
        { 1e20, "1e+20" },
        { -1.5e-7, "-1.5e-07" },
        { INFINITY, "+Inf" },
        { -INFINITY, "-Inf" },
        { NAN, "NaN" },
    };
    strbuf b = STRBUF_INIT;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        strbuf_reset(&b);
        metrics_sample(&b, "x", NULL, cases[i].v);
        char want[64];
        snprintf(want, sizeof want, "x %s\n", cases[i].text);
        assert_string_equal(b.data, want);
        if (isfinite(cases[i].v))
            assert_true(strtod(b.data + 2, NULL) == cases[i].v);
    }
    strbuf_free(&b);
}

/* A histogram writes cumulative _bucket lines with "le" after the given labels, a +Inf bucket holding every
 * observation, then _sum and _count. */
static void histogram_has_cumulative_buckets_sum_and_count(void **state)
{
    (void)state;
    strbuf b = STRBUF_INIT;
    const double bounds[] = { 0.5, 1, 2.5 };
    const uint64_t counts[] = { 2, 0, 3, 1 }; /* the last is the overflow */
    const char *const labels[] = { "action", "plan", NULL };
    metrics_family(&b, "iac_task_seconds", METRIC_HISTOGRAM, "Task duration.");
    metrics_histogram(&b, "iac_task_seconds", labels, bounds, counts, 3, 7.25);
    assert_string_equal(b.data, "# HELP iac_task_seconds Task duration.\n"
                                "# TYPE iac_task_seconds histogram\n"
                                "iac_task_seconds_bucket{action=\"plan\",le=\"0.5\"} 2\n"
                                "iac_task_seconds_bucket{action=\"plan\",le=\"1\"} 2\n"
                                "iac_task_seconds_bucket{action=\"plan\",le=\"2.5\"} 5\n"
                                "iac_task_seconds_bucket{action=\"plan\",le=\"+Inf\"} 6\n"
                                "iac_task_seconds_sum{action=\"plan\"} 7.25\n"
                                "iac_task_seconds_count{action=\"plan\"} 6\n");
    strbuf_free(&b);
}

/* Without labels, "le" is the only label; with no bounds there is just the +Inf bucket. */
static void histogram_without_labels_or_bounds(void **state)
{
    (void)state;
    strbuf b = STRBUF_INIT;
    const double bounds[] = { 10 };
    const uint64_t counts[] = { 1, 1 };
    metrics_histogram(&b, "h", NULL, bounds, counts, 1, 12);
    assert_string_equal(b.data, "h_bucket{le=\"10\"} 1\n"
                                "h_bucket{le=\"+Inf\"} 2\n"
                                "h_sum 12\n"
                                "h_count 2\n");
    strbuf_reset(&b);
    const uint64_t only[] = { 4 };
    metrics_histogram(&b, "h", NULL, NULL, only, 0, 0.5);
    assert_string_equal(b.data, "h_bucket{le=\"+Inf\"} 4\nh_sum 0.5\nh_count 4\n");
    strbuf_free(&b);
}

/* Counts beyond 2^53 are written exactly (they are not passed through a double). */
static void histogram_counts_are_exact_integers(void **state)
{
    (void)state;
    strbuf b = STRBUF_INIT;
    const uint64_t counts[] = { 9007199254740993ULL };
    metrics_histogram(&b, "h", NULL, NULL, counts, 0, 0);
    assert_non_null(strstr(b.data, "h_count 9007199254740993\n"));
    strbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(family_with_labels_has_exact_text),
        cmocka_unit_test(label_values_and_help_are_escaped),
        cmocka_unit_test(numbers_are_formatted_as_prometheus_expects),
        cmocka_unit_test(histogram_has_cumulative_buckets_sum_and_count),
        cmocka_unit_test(histogram_without_labels_or_bounds),
        cmocka_unit_test(histogram_counts_are_exact_integers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
