/* test_devplane_restart.c — a control plane that dies and comes back on the same ports (with no memory of the
 * agent) gets the agent back quickly: the agent sees 403 for its old id, registers again and reconnects. */
#include "harness.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

/* After SIGKILL and an immediate restart of the devplane on the same ports, the agent is connected and
 * heartbeating under a new id within 2 s of the new devplane being ready, and its /v1/status says so. */
static void agent_heartbeats_within_2s_of_devplane_restart(void **state) {
    harness *h = *state;
    harness_devplane dp = { 0 };
    harness_agent ag;
    char old_id[128];
    assert_true(harness_start_pair(h, &dp, &ag, NULL, old_id, sizeof old_id) >= 0);

    assert_int_equal(harness_kill(dp.proc, SIGKILL), 0);
    assert_int_equal(harness_wait_exit(dp.proc, 2000, NULL), -SIGKILL);
    assert_int_equal(harness_devplane_start(h, &dp), 0);

    harness_hb_wait w = { .dp = &dp, .min_heartbeats = 1 };
    int64_t waited = harness_wait_until(harness_pred_heartbeat, &w, 5000);
    int64_t ms = waited < 0 ? -1 : harness_now_ms() - dp.ready_ms;
    print_message("agent heartbeating %lld ms after the devplane's return\n", (long long)ms);
    assert_true(waited >= 0);
    assert_true(ms <= 2000);
    assert_string_not_equal(w.found_id, old_id);
    assert_true(harness_running(ag.proc));

    harness_status_wait sw = { &ag, w.found_id };
    assert_true(harness_wait_until(harness_pred_agent_connected, &sw, 1000) >= 0);
    harness_done(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(agent_heartbeats_within_2s_of_devplane_restart, harness_setup,
                                        harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
