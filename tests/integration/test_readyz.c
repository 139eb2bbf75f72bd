/* test_readyz.c — readiness means "registered and connected": 503 while the control plane is away, 200 once the
 * agent is connected; liveness (/healthz) is 200 all along, so Kubernetes never restarts a waiting agent. */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

typedef struct {
    const harness_agent *ag;
    int healthz_failures; /* polls where /healthz was not 200 */
    long readyz;          /* the last /readyz status */
} probe;

static long get_status(const harness_agent *ag, const char *path) {
    char url[256];
    harness_resp r;
    harness_agent_url(ag, path, url, sizeof url);
    long status = harness_http("GET", url, NULL, NULL, &r);
    harness_resp_free(&r);
    return status;
}

/* Probes both endpoints like a kubelet would; true once /readyz is 200. */
static bool probe_ready(void *arg) {
    probe *p = arg;
    if (get_status(p->ag, "/healthz") != 200) p->healthz_failures++;
    p->readyz = get_status(p->ag, "/readyz");
    return p->readyz == 200;
}

static bool healthz_up(void *arg) { return get_status(arg, "/healthz") == 200; }

/* With no devplane running, /readyz answers 503 (and /healthz 200); once the devplane starts, /readyz turns 200
 * within 5 s (the register backoff's ceiling after a few failures, 0.5 s doubling, bounds it) with /healthz 200 on
 * every probe in between. */
static void readyz_503_until_connected_then_200(void **state) {
    harness *h = *state;
    harness_devplane dp;
    harness_agent ag;
    harness_env env = { .n = 0 };
    harness_devplane_init(h, &dp);
    harness_agent_env(h, &ag, &dp, &env);
    assert_non_null(harness_agent_start(h, &ag, &env));
    harness_env_free(&env);

    int64_t up = harness_wait_until(healthz_up, (void *)&ag, 2000);
    print_message("status server up %lld ms after start\n", (long long)up);
    assert_true(up >= 0);
    probe p = { .ag = &ag };
    for (int i = 0; i < 5; i++) {
        assert_false(probe_ready(&p));
        assert_int_equal(p.readyz, 503);
    }
    assert_int_equal(p.healthz_failures, 0);
    cJSON *st = harness_agent_status(&ag);
    assert_non_null(st);
    assert_false(harness_json_true(st, "connected"));
    cJSON_Delete(st);

    assert_int_equal(harness_devplane_start(h, &dp), 0);
    int64_t waited = harness_wait_until(probe_ready, &p, 8000);
    int64_t ms = waited < 0 ? -1 : harness_now_ms() - dp.ready_ms;
    print_message("/readyz 200 %lld ms after the devplane was ready (last /readyz %ld)\n", (long long)ms, p.readyz);
    assert_true(waited >= 0);
    assert_true(ms <= 5000);
    assert_int_equal(p.healthz_failures, 0);
    harness_status_wait sw = { &ag, NULL };
    assert_true(harness_pred_agent_connected(&sw));
    harness_done(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(readyz_503_until_connected_then_200, harness_setup, harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
