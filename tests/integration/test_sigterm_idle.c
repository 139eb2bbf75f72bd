/* test_sigterm_idle.c — draining: SIGTERM makes an idle agent tell the control plane it is draining and exit 0 at
 * once; POST /v1/drain and /v1/undrain (pool token required) switch the state both locally and in heartbeats. */
#include "harness.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

typedef struct {
    const harness_devplane *dp;
    const char *id;
    const char *state;  /* expected heartbeat state */
    int plan_limit;     /* expected plan_limit, or -1 for any */
} hb_state_wait;

/* The devplane's last heartbeat of the agent has the expected state (and plan_limit). */
static bool last_heartbeat_is(void *arg) {
    hb_state_wait *w = arg;
    cJSON *doc = harness_admin_agents(w->dp);
    const cJSON *hb = cJSON_GetObjectItemCaseSensitive(harness_agent_row(doc, w->id), "last_heartbeat");
    const char *state = harness_json_str(hb, "state");
    bool ok = state && strcmp(state, w->state) == 0 &&
              (w->plan_limit < 0 || harness_json_num(hb, "plan_limit", -1) == w->plan_limit);
    cJSON_Delete(doc);
    return ok;
}

static long agent_post(const harness_agent *ag, const char *path, const char *bearer) {
    char url[256];
    harness_resp r;
    harness_agent_url(ag, path, url, sizeof url);
    long status = harness_http("POST", url, bearer, NULL, &r);
    harness_resp_free(&r);
    return status;
}

static void assert_status_state(const harness_agent *ag, const char *state) {
    cJSON *st = harness_agent_status(ag);
    assert_non_null(st);
    harness_assert_str(harness_json_str(st, "state"), state);
    cJSON_Delete(st);
}

/* SIGTERM to an idle connected agent: exit 0 within 1 s, and its last heartbeat at the devplane says
 * "draining" (sent before it closed). */
static void sigterm_idle_exits_0_within_1s_after_draining_heartbeat(void **state) {
    harness *h = *state;
    harness_devplane dp = { 0 };
    harness_agent ag;
    char id[128];
    assert_true(harness_start_pair(h, &dp, &ag, NULL, id, sizeof id) >= 0);

    assert_int_equal(harness_kill(ag.proc, SIGTERM), 0);
    int64_t ms;
    int code = harness_wait_exit(ag.proc, 3000, &ms);
    print_message("agent exit %d %lld ms after SIGTERM\n", code, (long long)ms);
    assert_int_equal(code, 0);
    assert_true(ms <= 1000);

    /* The frame was on the wire before the agent exited; give the devplane a moment to have read it. */
    hb_state_wait w = { &dp, id, "draining", -1 };
    assert_true(harness_wait_until(last_heartbeat_is, &w, 500) >= 0);
    harness_done(h);
}

/* POST /v1/drain with the pool token: /v1/status says draining and a heartbeat with state draining and
 * plan_limit 0 reaches the devplane within 1 s; without (or with a wrong) token → 401 and nothing changes;
 * POST /v1/undrain brings back "ready" and plan_limit 3. */
static void http_drain_and_undrain_need_pool_token(void **state) {
    harness *h = *state;
    harness_devplane dp = { 0 };
    harness_agent ag;
    char id[128], wrong[128];
    assert_true(harness_start_pair(h, &dp, &ag, NULL, id, sizeof id) >= 0);
    harness_make_token(dp.pool, wrong, sizeof wrong);

    assert_int_equal(agent_post(&ag, "/v1/drain", NULL), 401);
    assert_int_equal(agent_post(&ag, "/v1/drain", wrong), 401);
    assert_status_state(&ag, "ready");

    int64_t t0 = harness_now_ms();
    long status = agent_post(&ag, "/v1/drain", dp.token);
    assert_true(status >= 200 && status < 300);
    assert_status_state(&ag, "draining");
    hb_state_wait w = { &dp, id, "draining", 0 };
    int64_t waited = harness_wait_until(last_heartbeat_is, &w, 2000);
    print_message("draining heartbeat %lld ms after POST /v1/drain\n", (long long)(harness_now_ms() - t0));
    assert_true(waited >= 0 && waited <= 1000);

    assert_int_equal(agent_post(&ag, "/v1/undrain", NULL), 401);
    assert_status_state(&ag, "draining");
    status = agent_post(&ag, "/v1/undrain", dp.token);
    assert_true(status >= 200 && status < 300);
    assert_status_state(&ag, "ready");
    hb_state_wait r = { &dp, id, "ready", 3 };
    waited = harness_wait_until(last_heartbeat_is, &r, 2000);
    assert_true(waited >= 0 && waited <= 1000);
    assert_true(harness_running(ag.proc));
    harness_done(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(sigterm_idle_exits_0_within_1s_after_draining_heartbeat, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(http_drain_and_undrain_need_pool_token, harness_setup, harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
