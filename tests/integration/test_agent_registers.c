/* test_agent_registers.c — an agent started against a running devplane registers, connects and sends its first
 * heartbeat at once, and reports the same identity on its own status server. */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

/* Whether a Prometheus page has a sample (not a comment) whose metric name contains word. */
static bool metrics_has_sample(const char *page, const char *word) {
    for (const char *line = page; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (*line == '#' || *line == '\n') continue;
        size_t name_len = strcspn(line, "{ \n");
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(name_len < sizeof name ? name_len : sizeof name - 1), line);
        if (strstr(name, word)) return true;
    }
    return false;
}

/* The first heartbeat (4 idle slots, plan_limit 3, state "ready") reaches the devplane within 1 s of the agent's
 * start; /v1/status shows the id the devplane issued and connected true; /metrics has a connection-state metric
 * and a heartbeat counter. */
static void first_heartbeat_reaches_devplane_within_1s(void **state) {
    harness *h = *state;
    harness_devplane dp = { 0 };
    harness_agent ag;
    char id[128];
    int64_t ms = harness_start_pair(h, &dp, &ag, NULL, id, sizeof id);
    assert_true(ms >= 0);
    print_message("first heartbeat visible %lld ms after the agent's start\n", (long long)ms);
    assert_true(ms <= 1000);

    cJSON *doc = harness_admin_agents(&dp);
    const cJSON *row = harness_agent_row(doc, id);
    assert_non_null(row);
    harness_assert_str(harness_json_str(row, "name"), "agent-it");
    harness_assert_str(harness_json_str(row, "pool_id"), dp.pool);
    const cJSON *hb = cJSON_GetObjectItemCaseSensitive(row, "last_heartbeat");
    assert_true(cJSON_IsObject(hb));
    const cJSON *slots = cJSON_GetObjectItemCaseSensitive(hb, "slots");
    assert_true(cJSON_IsArray(slots));
    assert_int_equal(cJSON_GetArraySize(slots), 4);
    const cJSON *slot;
    int i = 0;
    cJSON_ArrayForEach(slot, slots) {
        assert_int_equal((int)harness_json_num(slot, "slot_id", -1), i++);
        harness_assert_str(harness_json_str(slot, "status"), "idle");
    }
    assert_int_equal((int)harness_json_num(hb, "plan_limit", -1), 3);
    assert_int_equal((int)harness_json_num(hb, "plan_running", -1), 0);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(hb, "apply_running")));
    harness_assert_str(harness_json_str(hb, "state"), "ready");
    cJSON_Delete(doc);

    cJSON *st = harness_agent_status(&ag);
    assert_non_null(st);
    harness_assert_str(harness_json_str(st, "agent_id"), id);
    harness_assert_str(harness_json_str(st, "pool_id"), dp.pool);
    harness_assert_str(harness_json_str(st, "name"), "agent-it");
    harness_assert_str(harness_json_str(st, "state"), "ready");
    assert_true(harness_json_true(st, "registered"));
    assert_true(harness_json_true(st, "connected"));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(st, "slots")), 4);
    cJSON_Delete(st);

    char url[256];
    harness_resp r;
    harness_agent_url(&ag, "/metrics", url, sizeof url);
    assert_int_equal(harness_http("GET", url, NULL, NULL, &r), 200);
    bool conn = metrics_has_sample(r.body, "connect"), beats = metrics_has_sample(r.body, "heartbeat");
    if (!conn || !beats) print_message("/metrics:\n%s\n", r.body);
    harness_resp_free(&r);
    assert_true(conn);
    assert_true(beats);
    harness_done(h);
}

static bool file_exists(void *path) { return access(path, F_OK) == 0; }

/* The pool's registry credentials (set at the devplane) land in $HOME/.terraform.d/credentials.tfrc.json, mode
 * 0600, by the time the agent is connected. */
static void pool_secrets_become_credentials_file(void **state) {
    harness *h = *state;
    harness_devplane dp = { 0 };
    harness_agent ag;
    harness_devplane_init(h, &dp);
    assert_int_equal(harness_devplane_start(h, &dp), 0);
    char url[256];
    harness_resp r;
    harness_devplane_url(&dp, "/admin/secrets", url, sizeof url);
    assert_int_equal(harness_http("PUT", url, NULL,
                                  "{\"credentials\":{\"app.terraform.io\":{\"token\":\"cred-it-7d1c\"}}}", &r), 200);
    harness_resp_free(&r);
    assert_true(harness_start_pair(h, &dp, &ag, NULL, NULL, 0) >= 0);

    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/.terraform.d/credentials.tfrc.json", h->home);
    /* Written before the C&C connection (lifecycle order); the wait only absorbs a slow file system. */
    assert_true(harness_wait_until(file_exists, path, 1000) >= 0);
    char *text = harness_read_file(path, NULL);
    assert_non_null(text);
    cJSON *doc = cJSON_Parse(text);
    free(text);
    const cJSON *host = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "credentials"),
                                                         "app.terraform.io");
    harness_assert_str(harness_json_str(host, "token"), "cred-it-7d1c");
    cJSON_Delete(doc);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    harness_done(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(first_heartbeat_reaches_devplane_within_1s, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(pool_secrets_become_credentials_file, harness_setup, harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
