/* test_cc_commands.c — what the control plane says over the C&C socket reaches the agent and is acted on:
 * refresh_credentials rewrites (or removes) the registry credentials file, drain/undrain switch the state, a
 * run_task the agent cannot run is rejected, and malformed frames are dropped without losing the connection. */
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

static long admin(const harness_devplane *dp, const char *method, const char *path, const char *body)
{
    char url[512];
    harness_resp r;
    harness_devplane_url(dp, path, url, sizeof url);
    long status = harness_http(method, url, NULL, body, &r);
    harness_resp_free(&r);
    return status;
}

static long send_frame(const harness_devplane *dp, const char *id, const char *frame)
{
    char path[256];
    snprintf(path, sizeof path, "/admin/agents/%s/send", id);
    return admin(dp, "POST", path, frame);
}

typedef struct {
    const char *path;
    bool        want;
} file_wait;

static bool file_exists_is(void *arg)
{
    file_wait *w = arg;
    return (access(w->path, F_OK) == 0) == w->want;
}

typedef struct {
    const harness_devplane *dp;
    const char *id;
    const char *state;
} state_wait;

static bool heartbeat_state_is(void *arg)
{
    state_wait *w = arg;
    cJSON *doc = harness_admin_agents(w->dp);
    const cJSON *hb = cJSON_GetObjectItemCaseSensitive(harness_agent_row(doc, w->id), "last_heartbeat");
    const char *s = harness_json_str(hb, "state");
    bool ok = s && strcmp(s, w->state) == 0;
    cJSON_Delete(doc);
    return ok;
}

/* The value of one sample line of the agent's /metrics ("name{labels} value"), or -1. */
static double metric(const harness_agent *ag, const char *sample)
{
    char url[256];
    harness_resp r;
    harness_agent_url(ag, "/metrics", url, sizeof url);
    double v = -1;
    if (harness_http("GET", url, NULL, NULL, &r) == 200) {
        size_t n = strlen(sample);
        for (const char *p = r.body; (p = strstr(p, sample)); p += n)
            if ((p == r.body || p[-1] == '\n') && p[n] == ' ') {
                v = strtod(p + n + 1, NULL);
                break;
            }
    }
    harness_resp_free(&r);
    return v;
}

static bool rejected_once(void *arg)
{
    return metric(arg, "iac_agent_tasks_total{outcome=\"rejected\"}") == 1;
}

/* refresh_credentials: the agent fetches the pool's secrets and writes them to $HOME/.terraform.d (file 0600,
 * never logged); when the pool has none left, the same command removes the file. */
static void refresh_credentials_writes_then_removes_the_file(void **state)
{
    harness *h = *state;
    harness_devplane dp = { 0 };
    harness_agent ag;
    char id[128], path[HARNESS_PATH_LEN];
    assert_true(harness_start_pair(h, &dp, &ag, NULL, id, sizeof id) >= 0);
    snprintf(path, sizeof path, "%s/.terraform.d/credentials.tfrc.json", h->home);

    assert_int_equal(admin(&dp, "PUT", "/admin/secrets",
                           "{\"credentials\":{\"registry.example\":{\"token\":\"registry-secret-42\"}}}"), 200);
    assert_int_equal(send_frame(&dp, id, "{\"type\":\"refresh_credentials\",\"payload\":{\"pool_id\":\"x\","
                                          "\"timestamp\":1}}"), 200);
    file_wait present = { path, true };
    assert_true(harness_wait_until(file_exists_is, &present, 2000) >= 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_true(harness_file_contains(path, "registry-secret-42"));
    assert_false(harness_file_contains(ag.proc->err_path, "registry-secret-42"));

    assert_int_equal(admin(&dp, "PUT", "/admin/secrets", "{\"credentials\":{}}"), 200);
    assert_int_equal(send_frame(&dp, id, "{\"type\":\"refresh_credentials\",\"payload\":{}}"), 200);
    file_wait gone = { path, false };
    assert_true(harness_wait_until(file_exists_is, &gone, 2000) >= 0);
    harness_done(h);
}

/* drain and undrain frames do what the local HTTP calls do, and the heartbeat says so within a second. */
static void drain_and_undrain_frames(void **state)
{
    harness *h = *state;
    harness_devplane dp = { 0 };
    harness_agent ag;
    char id[128];
    assert_true(harness_start_pair(h, &dp, &ag, NULL, id, sizeof id) >= 0);
    assert_int_equal(send_frame(&dp, id, "{\"type\":\"drain\",\"payload\":{}}"), 200);
    state_wait w = { &dp, id, "draining" };
    assert_true(harness_wait_until(heartbeat_state_is, &w, 1000) >= 0);
    assert_int_equal(send_frame(&dp, id, "{\"type\":\"undrain\",\"payload\":{}}"), 200);
    w.state = "ready";
    assert_true(harness_wait_until(heartbeat_state_is, &w, 1000) >= 0);
    assert_true(harness_running(ag.proc));
    harness_done(h);
}

/* Frames that are valid JSON but not valid messages are dropped and counted; the connection stays up (same agent
 * id, still answering commands); a run_task while draining is rejected. */
static void malformed_frames_are_dropped_and_counted(void **state)
{
    harness *h = *state;
    harness_devplane dp = { 0 };
    harness_agent ag;
    char id[128];
    assert_true(harness_start_pair(h, &dp, &ag, NULL, id, sizeof id) >= 0);
    static const char *const bad[] = {
        "[\"not an object\"]",
        "{\"type\":5,\"payload\":{}}",
        "{\"type\":\"run_task\",\"payload\":{\"task_id\":\"seven\",\"workspace_id\":\"ws\"}}",
        "{\"type\":\"cancel_task\",\"payload\":\"nope\"}",
        "{\"type\":\"run_task\",\"payload\":{\"task_id\":-1,\"workspace_id\":\"ws\",\"action\":\"plan\"}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(send_frame(&dp, id, bad[i]), 200);
    /* A command after the garbage proves the same connection still works. */
    assert_int_equal(send_frame(&dp, id, "{\"type\":\"drain\",\"payload\":{}}"), 200);
    state_wait w = { &dp, id, "draining" };
    assert_true(harness_wait_until(heartbeat_state_is, &w, 1000) >= 0);
    /* A draining agent takes no task: the run_task is rejected (and returned to the queue). */
    assert_int_equal(send_frame(&dp, id, "{\"type\":\"run_task\",\"payload\":{\"task_id\":41,\"workspace_id\":"
                                          "\"ws-1\",\"action\":\"plan\",\"task_type\":\"plan\"}}"), 200);
    assert_true(harness_wait_until(rejected_once, &ag, 1000) >= 0);
    assert_true(metric(&ag, "iac_agent_cc_frames_total{direction=\"in\",result=\"invalid\"}") == 5);
    assert_true(metric(&ag, "iac_agent_reconnects_total") == 0);
    cJSON *st = harness_agent_status(&ag);
    assert_non_null(st);
    harness_assert_str(harness_json_str(st, "agent_id"), id);
    cJSON_Delete(st);
    harness_done(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(refresh_credentials_writes_then_removes_the_file, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(drain_and_undrain_frames, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(malformed_frames_are_dropped_and_counted, harness_setup, harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
