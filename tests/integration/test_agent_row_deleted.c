/* test_agent_row_deleted.c — when the control plane drops the agent's row (upstream's cleanup job does, ref §3.5),
 * the agent notices (its connection is closed, the old id now gets 403), registers again and reconnects. */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

/* DELETE /admin/agents/{id}: within 2 s a new agent id appears at the devplane, connected and heartbeating, and
 * the agent's /v1/status reports the new id. */
static void deleted_row_leads_to_new_id_within_2s(void **state) {
    harness *h = *state;
    harness_devplane dp = { 0 };
    harness_agent ag;
    char old_id[128], path[256], url[512];
    harness_resp r;
    assert_true(harness_start_pair(h, &dp, &ag, NULL, old_id, sizeof old_id) >= 0);

    snprintf(path, sizeof path, "/admin/agents/%s", old_id);
    harness_devplane_url(&dp, path, url, sizeof url);
    int64_t t0 = harness_now_ms();
    assert_int_equal(harness_http("DELETE", url, NULL, NULL, &r), 200);
    assert_non_null(strstr(r.body, old_id));
    harness_resp_free(&r);

    harness_hb_wait w = { .dp = &dp, .not_id = old_id, .min_heartbeats = 1 };
    int64_t waited = harness_wait_until(harness_pred_heartbeat, &w, 5000);
    int64_t ms = waited < 0 ? -1 : harness_now_ms() - t0;
    print_message("new id %s heartbeating %lld ms after the delete\n", w.found_id, (long long)ms);
    assert_true(waited >= 0);
    assert_true(ms <= 2000);

    harness_status_wait sw = { &ag, w.found_id };
    assert_true(harness_wait_until(harness_pred_agent_connected, &sw, 1000) >= 0);
    /* The old row stays gone: the agent did not resurrect it. */
    cJSON *doc = harness_admin_agents(&dp);
    assert_non_null(doc);
    assert_null(harness_agent_row(doc, old_id));
    cJSON_Delete(doc);
    assert_true(harness_running(ag.proc));
    harness_done(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(deleted_row_leads_to_new_id_within_2s, harness_setup, harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
