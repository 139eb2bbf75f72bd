/* test_scaler.c — the coordinator's scaling rules (DESIGN §5 step 4, coordinator/scaler.h), one table per rule,
 * plus the upstream failure scenarios of ref §8 entries 16, 17 and 20 run over several cycles.
 *
 * A pool is written as a string, one letter per pod (pod-0 oldest, created at 1 s, pod-1 at 2 s, …):
 *   i idle            a slot 0 running an apply      r slot 0 reserved (apply_pending)
 *   p 2 plans running f all 3 plan slots busy         s starting (not Ready yet)
 *   d draining (idle) n Ready but the agent did not answer /v1/status
 * Pods have 4 slots (slot 0 + 3 plan slots) unless a case says otherwise. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../coordinator/scaler.h"

#define NOW        100000 /* ms; every pod is created before this */
#define MAX_TEST   16
#define NO_CHECK   0      /* want_since: do not check */

typedef struct {
    const char   *what;
    const char   *pool;        /* letters as above */
    int           replicas;    /* −1: one per listed pod */
    scaler_demand demand;
    int           min, max;    /* max 0: 10 */
    int           headroom_slot0, headroom_plan;
    int           max_remove;  /* 0: 1 */
    int64_t       down_window_ms, up_window_ms, startup_ms; /* startup 0: 10 min */
    int64_t       now;         /* 0: NOW */
    int64_t       surplus_since, shortage_since; /* 0: SCALER_NEVER */
    /* expected */
    int           want_desired;
    scaler_reason want_reason;
    const char   *want_removed;   /* "pod-3,pod-2", or NULL for none */
    int           want_timed_out;
    int64_t       want_since;     /* surplus_since of the decision; NO_CHECK to skip */
    const char   *want_text;      /* a substring of the decision text, or NULL */
} scaler_case;

typedef struct {
    scaler_pod pods[MAX_TEST];
    char       names[MAX_TEST][16];
    int        n;
} test_pool;

static void build_pool(test_pool *tp, const char *letters)
{
    memset(tp, 0, sizeof(*tp));
    for (const char *l = letters; *l && tp->n < MAX_TEST; l++) {
        scaler_pod *p = &tp->pods[tp->n];
        snprintf(tp->names[tp->n], sizeof(tp->names[0]), "pod-%d", tp->n);
        *p = (scaler_pod){ .name = tp->names[tp->n], .ready = true, .has_status = true,
                           .created_ms = 1000 * (tp->n + 1), .slot0 = SLOT_IDLE, .plan_idle = 3 };
        switch (*l) {
        case 'a': p->slot0 = SLOT_RUNNING; break;
        case 'r': p->slot0 = SLOT_RESERVED; p->reserved_task_id = 511; p->reserved_age_ms = 30000; break;
        case 'p': p->plan_busy = 2; p->plan_idle = 1; break;
        case 'f': p->plan_busy = 3; p->plan_idle = 0; break;
        case 's': *p = (scaler_pod){ .name = tp->names[tp->n], .starting = true, .created_ms = p->created_ms }; break;
        case 'd': p->draining = true; break;
        case 'n': *p = (scaler_pod){ .name = tp->names[tp->n], .ready = true, .created_ms = p->created_ms }; break;
        default: break;
        }
        tp->n++;
    }
}

static scaler_config config_of(const scaler_case *c)
{
    return (scaler_config){
        .slots_per_pod = 4,
        .min_replicas = c->min,
        .max_replicas = c->max ? c->max : 10,
        .headroom_slot0 = c->headroom_slot0,
        .headroom_plan = c->headroom_plan,
        .scale_up_window_ms = c->up_window_ms,
        .scale_down_window_ms = c->down_window_ms,
        .max_remove_per_cycle = c->max_remove ? c->max_remove : 1,
        .pod_startup_timeout_ms = c->startup_ms ? c->startup_ms : 600000,
    };
}

static void removed_names(const test_pool *tp, const scaler_decision *d, char *buf, size_t len)
{
    buf[0] = '\0';
    for (int k = 0; k < d->nremove; k++) {
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, "%s%s", k ? "," : "", tp->pods[d->remove[k]].name);
    }
}

static void run_cases(const scaler_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const scaler_case *c = &cases[i];
        test_pool tp;
        build_pool(&tp, c->pool);
        scaler_view v = {
            .pods = tp.pods,
            .npods = tp.n,
            .replicas = c->replicas < 0 ? tp.n : c->replicas,
            .surplus_since_ms = c->surplus_since ? c->surplus_since : SCALER_NEVER,
            .shortage_since_ms = c->shortage_since ? c->shortage_since : SCALER_NEVER,
        };
        scaler_config cfg = config_of(c);
        scaler_decision d;
        int rc = scaler_decide(&v, &c->demand, &cfg, c->now ? c->now : NOW, &d);
        char removed[256];
        removed_names(&tp, &d, removed, sizeof(removed));
        const char *want_removed = c->want_removed ? c->want_removed : "";
        bool ok = rc == 0 && d.desired == c->want_desired && d.reason == c->want_reason &&
                  strcmp(removed, want_removed) == 0 && d.ntimed_out == c->want_timed_out &&
                  (c->want_since == NO_CHECK || d.surplus_since_ms == c->want_since) &&
                  (!c->want_text || strstr(d.text, c->want_text));
        if (!ok) {
            print_message("case \"%s\": rc %d desired %d (want %d) reason %s (want %s) removed \"%s\" (want \"%s\") "
                          "timed out %d (want %d) surplus_since %lld\n  text: %s\n",
                          c->what, rc, d.desired, c->want_desired, scaler_reason_name(d.reason),
                          scaler_reason_name(c->want_reason), removed, want_removed, d.ntimed_out,
                          c->want_timed_out, (long long)d.surplus_since_ms, d.text);
            fail();
        }
    }
}

#define RUN(table) run_cases(table, sizeof(table) / sizeof(table[0]))

/* Demand and headroom are covered in one step: the new pods cover slot 0 and plan-slot needs together (the larger
 * of the two shortfalls, not their sum), and headroom alone sizes an empty pool. */
static void demand_and_headroom_are_covered_at_once(void **state)
{
    (void)state;
    static const scaler_case cases[] = {
        { .what = "3 applies + 1 idle slot 0 on 2 idle pods", .pool = "ii", .replicas = -1,
          .demand = { .plan_and_apply = 3 }, .headroom_slot0 = 1,
          .want_desired = 4, .want_reason = SCALER_SCALE_UP, .want_text = "scaling 2\u21924" },
        { .what = "7 plans on 6 free plan slots", .pool = "ii", .replicas = -1, .demand = { .plan = 7 },
          .want_desired = 3, .want_reason = SCALER_SCALE_UP },
        { .what = "3 applies and 12 plans: 2 pods cover both", .pool = "ii", .replicas = -1,
          .demand = { .plan_and_apply = 3, .plan = 8, .drift_check = 4 },
          .want_desired = 4, .want_reason = SCALER_SCALE_UP },
        { .what = "headroom alone on an empty pool", .pool = "", .replicas = 0, .headroom_slot0 = 1,
          .headroom_plan = 3, .want_desired = 1, .want_reason = SCALER_SCALE_UP },
        { .what = "demand already covered", .pool = "ii", .replicas = -1, .demand = { .plan_and_apply = 2 },
          .want_desired = 2, .want_reason = SCALER_STEADY },
    };
    RUN(cases);
}

/* plan_and_apply needs a free slot 0; plan and drift_check need plan slots; the two do not stand in for each
 * other. */
static void apply_demand_needs_slot_zeros(void **state)
{
    (void)state;
    static const scaler_case cases[] = {
        { .what = "plans busy, slot 0s free: 2 applies fit", .pool = "pp", .replicas = -1,
          .demand = { .plan_and_apply = 2 }, .want_desired = 2, .want_reason = SCALER_STEADY },
        { .what = "slot 0s running, plan slots free: 1 apply needs a pod", .pool = "aa", .replicas = -1,
          .demand = { .plan_and_apply = 1 }, .want_desired = 3, .want_reason = SCALER_SCALE_UP },
        { .what = "plan slots full, slot 0s free: 1 drift check needs a pod", .pool = "ff", .replicas = -1,
          .demand = { .drift_check = 1 }, .want_desired = 3, .want_reason = SCALER_SCALE_UP },
        { .what = "plan slots full, slot 0s free: 2 applies fit", .pool = "ff", .replicas = -1,
          .demand = { .plan_and_apply = 2 }, .want_desired = 2, .want_reason = SCALER_STEADY },
    };
    RUN(cases);
}

/* A pod whose slot 0 is reserved (apply_pending) offers no free slot 0 and is never chosen for removal. */
static void reserved_slot_zero_is_neither_free_nor_removable(void **state)
{
    (void)state;
    static const scaler_case cases[] = {
        { .what = "reserved pod, 1 apply waiting", .pool = "r", .replicas = -1,
          .demand = { .plan_and_apply = 1 }, .want_desired = 2, .want_reason = SCALER_SCALE_UP },
        { .what = "reserved youngest pod: the idle one goes", .pool = "ir", .replicas = -1,
          .want_desired = 1, .want_reason = SCALER_SCALE_DOWN, .want_removed = "pod-0" },
        { .what = "reserved pod alone, min 0", .pool = "r", .replicas = -1,
          .want_desired = 1, .want_reason = SCALER_STEADY },
    };
    RUN(cases);
}

/* Starting pods and replicas not yet listed count as coming capacity; a pod past the startup timeout is reported
 * and counts as nothing, so a pod is added in its place; a starting pod is never removed. */
static void starting_pods_count_as_coming_until_timeout(void **state)
{
    (void)state;
    static const scaler_case cases[] = {
        { .what = "starting pod covers the waiting apply", .pool = "as", .replicas = -1,
          .demand = { .plan_and_apply = 1 }, .want_desired = 2, .want_reason = SCALER_STEADY },
        { .what = "starting pod past the timeout is replaced", .pool = "as", .replicas = -1,
          .demand = { .plan_and_apply = 1 }, .startup_ms = 60000,
          .want_desired = 3, .want_reason = SCALER_SCALE_UP, .want_timed_out = 1, .want_text = "startup timeout" },
        { .what = "2 replicas not listed yet cover 2 applies", .pool = "a", .replicas = 3,
          .demand = { .plan_and_apply = 2 }, .want_desired = 3, .want_reason = SCALER_STEADY },
        { .what = "starting youngest pod is not removed", .pool = "is", .replicas = -1,
          .want_desired = 1, .want_reason = SCALER_SCALE_DOWN, .want_removed = "pod-0" },
    };
    RUN(cases);
}

/* Scale-down waits for the surplus to last the window, removes the youngest idle pods, at most
 * max_remove_per_cycle, never below min, never a pod with work, and keeps the headroom. */
static void scale_down_after_window_within_limits(void **state)
{
    (void)state;
    static const scaler_case cases[] = {
        { .what = "surplus seen first", .pool = "iii", .replicas = -1, .down_window_ms = 60000,
          .want_desired = 3, .want_reason = SCALER_SURPLUS_WAITING, .want_since = NOW },
        { .what = "surplus for half the window", .pool = "iii", .replicas = -1, .down_window_ms = 60000,
          .surplus_since = NOW - 30000,
          .want_desired = 3, .want_reason = SCALER_SURPLUS_WAITING, .want_since = NOW - 30000 },
        { .what = "surplus for the whole window", .pool = "iii", .replicas = -1, .down_window_ms = 60000,
          .surplus_since = NOW - 60000, .want_desired = 2, .want_reason = SCALER_SCALE_DOWN,
          .want_removed = "pod-2", .want_since = NOW - 60000, .want_text = "scaling 3\u21922" },
        { .what = "two per cycle, youngest first", .pool = "iiii", .replicas = -1, .max_remove = 2,
          .want_desired = 2, .want_reason = SCALER_SCALE_DOWN, .want_removed = "pod-3,pod-2" },
        { .what = "never below min", .pool = "iiii", .replicas = -1, .min = 3, .max_remove = 5,
          .want_desired = 3, .want_reason = SCALER_SCALE_DOWN, .want_removed = "pod-3" },
        { .what = "only the idle pod among busy ones", .pool = "apfir", .replicas = -1, .max_remove = 5,
          .want_desired = 4, .want_reason = SCALER_SCALE_DOWN, .want_removed = "pod-3" },
        { .what = "keeps one idle slot 0 of headroom", .pool = "ii", .replicas = -1, .headroom_slot0 = 1,
          .max_remove = 2, .want_desired = 1, .want_reason = SCALER_SCALE_DOWN, .want_removed = "pod-1" },
        { .what = "keeps the plan slots waiting plans need", .pool = "ii", .replicas = -1,
          .demand = { .plan = 4 }, .want_desired = 2, .want_reason = SCALER_STEADY },
        { .what = "surplus gone resets the clock", .pool = "a", .replicas = -1, .surplus_since = NOW - 5000,
          .want_desired = 1, .want_reason = SCALER_STEADY, .want_since = SCALER_NEVER },
    };
    RUN(cases);
}

/* Desired replicas stay within [min, max]; max blocking needed capacity is reported as "at max replicas"; above
 * max only idle pods go. */
static void clamp_to_min_and_max(void **state)
{
    (void)state;
    static const scaler_case cases[] = {
        { .what = "empty pool below min", .pool = "", .replicas = 0, .min = 2,
          .want_desired = 2, .want_reason = SCALER_BELOW_MIN },
        { .what = "5 applies, max 3", .pool = "a", .replicas = -1, .max = 3, .demand = { .plan_and_apply = 5 },
          .want_desired = 3, .want_reason = SCALER_AT_MAX, .want_text = "at max replicas 3" },
        { .what = "already at max", .pool = "aaa", .replicas = -1, .max = 3, .demand = { .plan_and_apply = 1 },
          .want_desired = 3, .want_reason = SCALER_AT_MAX },
        { .what = "idle pods above max go without a window", .pool = "iiiii", .replicas = -1, .max = 3,
          .down_window_ms = 60000, .want_desired = 4, .want_reason = SCALER_ABOVE_MAX, .want_removed = "pod-4" },
        { .what = "busy pods above max stay", .pool = "aaaaa", .replicas = -1, .max = 3,
          .want_desired = 5, .want_reason = SCALER_ABOVE_MAX },
    };
    RUN(cases);
}

/* Draining pods count as neither capacity nor removal candidates. */
static void draining_pods_are_neither_capacity_nor_removable(void **state)
{
    (void)state;
    static const scaler_case cases[] = {
        { .what = "draining pod, 1 apply waiting", .pool = "d", .replicas = -1,
          .demand = { .plan_and_apply = 1 }, .want_desired = 2, .want_reason = SCALER_SCALE_UP },
        { .what = "draining youngest: the idle one goes", .pool = "id", .replicas = -1,
          .want_desired = 1, .want_reason = SCALER_SCALE_DOWN, .want_removed = "pod-0" },
        { .what = "draining alone", .pool = "d", .replicas = -1, .want_desired = 1, .want_reason = SCALER_STEADY },
    };
    RUN(cases);
}

/* A Ready pod whose agent did not answer /v1/status is never removable (we cannot know its slots); it counts as
 * coming capacity until the startup timeout — so pods whose agents never answer cannot make every cycle add a
 * pod — and as nothing after it. */
static void pods_without_status_are_neither_capacity_nor_removable(void **state)
{
    (void)state;
    static const scaler_case cases[] = {
        { .what = "old silent pod, 1 apply waiting", .pool = "n", .replicas = -1, .startup_ms = 50000,
          .demand = { .plan_and_apply = 1 }, .want_desired = 2, .want_reason = SCALER_SCALE_UP },
        { .what = "young silent pod, 1 apply waiting: coming", .pool = "n", .replicas = -1,
          .demand = { .plan_and_apply = 1 }, .want_desired = 1, .want_reason = SCALER_STEADY },
        { .what = "young silent pods cover headroom", .pool = "nn", .replicas = -1, .headroom_slot0 = 2,
          .want_desired = 2, .want_reason = SCALER_STEADY },
        { .what = "silent youngest: the idle one goes", .pool = "in", .replicas = -1, .startup_ms = 50000,
          .want_desired = 1, .want_reason = SCALER_SCALE_DOWN, .want_removed = "pod-0" },
        { .what = "silent alone", .pool = "n", .replicas = -1, .want_desired = 1, .want_reason = SCALER_STEADY },
    };
    RUN(cases);
}

/* A shortfall waits for the scale-up window when one is configured (still raising to min at once). */
static void scale_up_waits_for_its_window(void **state)
{
    (void)state;
    static const scaler_case cases[] = {
        { .what = "shortfall seen first", .pool = "a", .replicas = -1, .up_window_ms = 10000,
          .demand = { .plan_and_apply = 1 }, .want_desired = 1, .want_reason = SCALER_SHORTAGE_WAITING },
        { .what = "shortfall for the window", .pool = "a", .replicas = -1, .up_window_ms = 10000,
          .shortage_since = NOW - 10000, .demand = { .plan_and_apply = 1 },
          .want_desired = 2, .want_reason = SCALER_SCALE_UP },
        { .what = "below min while waiting", .pool = "", .replicas = 0, .min = 1, .up_window_ms = 10000,
          .demand = { .plan_and_apply = 3 }, .want_desired = 1, .want_reason = SCALER_BELOW_MIN },
    };
    RUN(cases);
}

/* Ref §8 entry 20: 0 pods, min 0, max 3, one plan waiting → one pod in the next cycle. */
static void cold_start_one_plan_creates_one_pod(void **state)
{
    (void)state;
    static const scaler_case cases[] = {
        { .what = "cold start", .pool = "", .replicas = 0, .min = 0, .max = 3, .demand = { .plan = 1 },
          .want_desired = 1, .want_reason = SCALER_SCALE_UP, .want_text = "scaling 0\u21921" },
    };
    RUN(cases);
}

/* Run cycles: the caller removes the chosen pods, sets replicas and carries the surplus clock. Returns the
 * replica counts per cycle in out[]. */
static void run_cycles(test_pool *tp, int replicas, const scaler_config *cfg, const scaler_demand *dem, int cycles,
                       int *out)
{
    int64_t surplus = SCALER_NEVER, shortage = SCALER_NEVER;
    for (int k = 0; k < cycles; k++) {
        scaler_view v = { .pods = tp->pods, .npods = tp->n, .replicas = replicas,
                          .surplus_since_ms = surplus, .shortage_since_ms = shortage };
        scaler_decision d;
        assert_int_equal(scaler_decide(&v, dem, cfg, NOW + 5000 * k, &d), 0);
        /* The chosen pods go away before the next cycle, as the Deployment controller would remove them. */
        for (int r = 0; r < d.nremove; r++) {
            int idx = d.remove[r];
            tp->pods[idx].draining = true; /* marked, then dropped below */
        }
        int kept = 0;
        for (int i = 0; i < tp->n; i++)
            if (!tp->pods[i].draining)
                tp->pods[kept++] = tp->pods[i];
        tp->n = kept;
        replicas = d.desired;
        surplus = d.surplus_since_ms;
        shortage = d.shortage_since_ms;
        out[k] = replicas;
    }
}

/* Ref §8 entry 16: a second waiting plan_and_apply beside a running one gets a second pod; a pod running 2 plans
 * with nothing pending is kept; once all slots are idle the pool shrinks by one per cycle down to min. */
static void entry16_sizes_by_slots_and_shrinks_one_per_cycle(void **state)
{
    (void)state;
    static const scaler_case cases[] = {
        { .what = "one pod running an apply, one more waiting", .pool = "a", .replicas = -1, .max = 5,
          .demand = { .plan_and_apply = 1 }, .want_desired = 2, .want_reason = SCALER_SCALE_UP },
        { .what = "one idle pod, two applies waiting", .pool = "i", .replicas = -1, .max = 5,
          .demand = { .plan_and_apply = 2 }, .want_desired = 2, .want_reason = SCALER_SCALE_UP },
        { .what = "one pod running 2 plans, nothing pending", .pool = "p", .replicas = -1, .max = 5,
          .want_desired = 1, .want_reason = SCALER_STEADY },
    };
    RUN(cases);

    test_pool tp;
    build_pool(&tp, "iiiii");
    scaler_config cfg = config_of(&(scaler_case){ .min = 2, .max = 5 });
    scaler_demand none = { 0 };
    int seen[6];
    run_cycles(&tp, 5, &cfg, &none, 6, seen);
    static const int want[6] = { 4, 3, 2, 2, 2, 2 };
    for (int k = 0; k < 6; k++)
        assert_int_equal(seen[k], want[k]);
}

/* Ref §8 entry 17: a pod holding an apply_pending reservation survives 10 cycles with min 0 and no window. */
static void entry17_reserved_pod_survives_ten_cycles(void **state)
{
    (void)state;
    test_pool tp;
    build_pool(&tp, "r");
    scaler_config cfg = config_of(&(scaler_case){ .min = 0, .max = 5 });
    scaler_demand none = { 0 };
    int seen[10];
    run_cycles(&tp, 1, &cfg, &none, 10, seen);
    for (int k = 0; k < 10; k++)
        assert_int_equal(seen[k], 1);
    assert_int_equal(tp.n, 1);
}

/* An invalid config or view is refused with a reason naming it, and nothing changes; negative demand reads as 0. */
static void bad_input_is_refused_without_change(void **state)
{
    (void)state;
    test_pool tp;
    build_pool(&tp, "ii");
    scaler_view v = { .pods = tp.pods, .npods = 2, .replicas = 2,
                      .surplus_since_ms = SCALER_NEVER, .shortage_since_ms = SCALER_NEVER };
    scaler_demand none = { 0 };
    scaler_config good = config_of(&(scaler_case){ .min = 2 });
    static const struct { const char *field; scaler_config cfg; } bad[] = {
        { "slots_per_pod", { .slots_per_pod = 1, .max_replicas = 3, .max_remove_per_cycle = 1 } },
        { "max_replicas", { .slots_per_pod = 4, .max_replicas = 0, .max_remove_per_cycle = 1 } },
        { "min_replicas", { .slots_per_pod = 4, .min_replicas = 4, .max_replicas = 3, .max_remove_per_cycle = 1 } },
        { "max_remove_per_cycle", { .slots_per_pod = 4, .max_replicas = 3, .max_remove_per_cycle = 0 } },
        { "headroom", { .slots_per_pod = 4, .max_replicas = 3, .max_remove_per_cycle = 1, .headroom_plan = -1 } },
    };
    scaler_decision d;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(scaler_decide(&v, &none, &bad[i].cfg, NOW, &d), -EINVAL);
        assert_int_equal(d.reason, SCALER_BAD_INPUT);
        assert_int_equal(d.desired, 2);
        assert_int_equal(d.nremove, 0);
        assert_non_null(strstr(d.text, bad[i].field));
    }
    scaler_view too_many = v;
    too_many.npods = SCALER_MAX_PODS + 1;
    assert_int_equal(scaler_decide(&too_many, &none, &good, NOW, &d), -EINVAL);
    scaler_demand negative = { .plan_and_apply = -5, .plan = -1, .drift_check = -9 };
    assert_int_equal(scaler_decide(&v, &negative, &good, NOW, &d), 0);
    assert_int_equal(d.desired, 2);
    assert_int_equal(d.reason, SCALER_STEADY);
    /* Absurd demand clamps at max instead of overflowing. */
    scaler_demand huge = { .plan_and_apply = INT32_MAX, .plan = INT32_MAX, .drift_check = INT32_MAX };
    assert_int_equal(scaler_decide(&v, &huge, &good, INT64_MAX, &d), 0);
    assert_int_equal(d.desired, 10);
    assert_int_equal(d.reason, SCALER_AT_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(demand_and_headroom_are_covered_at_once),
        cmocka_unit_test(apply_demand_needs_slot_zeros),
        cmocka_unit_test(reserved_slot_zero_is_neither_free_nor_removable),
        cmocka_unit_test(starting_pods_count_as_coming_until_timeout),
        cmocka_unit_test(scale_down_after_window_within_limits),
        cmocka_unit_test(clamp_to_min_and_max),
        cmocka_unit_test(draining_pods_are_neither_capacity_nor_removable),
        cmocka_unit_test(pods_without_status_are_neither_capacity_nor_removable),
        cmocka_unit_test(scale_up_waits_for_its_window),
        cmocka_unit_test(cold_start_one_plan_creates_one_pod),
        cmocka_unit_test(entry16_sizes_by_slots_and_shrinks_one_per_cycle),
        cmocka_unit_test(entry17_reserved_pod_survives_ten_cycles),
        cmocka_unit_test(bad_input_is_refused_without_change),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
