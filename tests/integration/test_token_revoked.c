/* test_token_revoked.c — a revoked pool token stops the agent loudly (exit 3, cause on stderr, token never
 * printed) instead of retrying forever (ref §8 entry 41); with a token file, rotating the token keeps the agent
 * connected without a restart. */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

/* Neither of the agent's logs contains the token, nor its random part (a log that strips the "apt_" prefix or
 * quotes only the tail would still leak the secret). */
static void assert_token_not_logged(const harness_proc *p, const char *token) {
    const char *tail = strrchr(token, '_');
    assert_false(harness_file_contains(p->err_path, token));
    assert_false(harness_file_contains(p->out_path, token));
    assert_false(harness_file_contains(p->err_path, tail + 1));
    assert_false(harness_file_contains(p->out_path, tail + 1));
}

static void post(const harness_devplane *dp, const char *path, const char *body) {
    char url[256];
    harness_resp r;
    harness_devplane_url(dp, path, url, sizeof url);
    long status = harness_http("POST", url, NULL, body, &r);
    if (status != 200) print_message("POST %s → %ld %s\n", path, status, r.body);
    harness_resp_free(&r);
    assert_int_equal(status, 200);
}

/* POST /admin/tokens/revoke: the agent exits with status 3 within 3 s; stderr names the cause ("401", "token")
 * and never the token. */
static void revoked_token_exits_3_within_3s(void **state) {
    harness *h = *state;
    harness_devplane dp = { 0 };
    harness_agent ag;
    assert_true(harness_start_pair(h, &dp, &ag, NULL, NULL, 0) >= 0);

    int64_t t0 = harness_now_ms();
    post(&dp, "/admin/tokens/revoke", NULL);
    int code = harness_wait_exit(ag.proc, 5000, NULL);
    int64_t ms = harness_now_ms() - t0;
    print_message("agent exit %d %lld ms after the revocation\n", code, (long long)ms);
    assert_int_equal(code, 3);
    assert_true(ms <= 3000);
    assert_true(harness_file_contains(ag.proc->err_path, "401"));
    assert_true(harness_file_contains_nocase(ag.proc->err_path, "token"));
    assert_token_not_logged(ag.proc, dp.token);
    harness_done(h);
}

typedef struct {
    const harness_devplane *dp;
    const char *id;
    int after; /* heartbeats the row had before the revocation */
} rotated_wait;

/* The agent's row is connected again and has heartbeated since the revocation (which closed its connection), or
 * it registered anew under another id and heartbeats there: either way it authenticated with the new token, the
 * only active one. */
static bool reconnected_after_revoke(void *arg) {
    rotated_wait *w = arg;
    cJSON *doc = harness_admin_agents(w->dp);
    const cJSON *agents = doc ? cJSON_GetObjectItemCaseSensitive(doc, "agents") : NULL, *row;
    bool ok = false;
    cJSON_ArrayForEach(row, agents) {
        const char *id = harness_json_str(row, "agent_id");
        int min = id && strcmp(id, w->id) == 0 ? w->after + 1 : 1;
        if (harness_json_true(row, "connected") && harness_json_num(row, "heartbeats", 0) >= min) ok = true;
    }
    cJSON_Delete(doc);
    return ok;
}

/* With IAC_AGENT_TOKEN_FILE: add a new token, write it into the file, revoke the old one → the agent keeps
 * running and is connected again (with the new token) within 3 s; neither token is ever logged. */
static void token_file_rotation_reconnects_within_3s(void **state) {
    harness *h = *state;
    harness_devplane dp = { 0 };
    harness_agent ag;
    harness_env env = { .n = 0 };
    char file[HARNESS_PATH_LEN + 16], id[128], line[160], body[256], new_token[128];

    harness_devplane_init(h, &dp);
    snprintf(file, sizeof file, "%s/pool-token", h->dir);
    snprintf(line, sizeof line, "%s\n", dp.token);
    assert_int_equal(harness_write_file(file, line, strlen(line)), 0);
    harness_agent_env(h, &ag, &dp, &env);
    harness_env_unset(&env, "IAC_AGENT_TOKEN");
    harness_env_set(&env, "IAC_AGENT_TOKEN_FILE", file);
    int64_t started = harness_start_pair(h, &dp, &ag, &env, id, sizeof id);
    harness_env_free(&env);
    assert_true(started >= 0);

    cJSON *doc = harness_admin_agents(&dp);
    rotated_wait w = { &dp, id, (int)harness_json_num(harness_agent_row(doc, id), "heartbeats", 0) };
    cJSON_Delete(doc);

    harness_make_token(dp.pool, new_token, sizeof new_token);
    snprintf(body, sizeof body, "{\"token\":\"%s\"}", new_token);
    post(&dp, "/admin/tokens", body);
    snprintf(line, sizeof line, "%s\n", new_token);
    assert_int_equal(harness_write_file(file, line, strlen(line)), 0);
    snprintf(body, sizeof body, "{\"token\":\"%s\"}", dp.token);
    int64_t t0 = harness_now_ms();
    post(&dp, "/admin/tokens/revoke", body);

    int64_t waited = harness_wait_until(reconnected_after_revoke, &w, 5000);
    int64_t ms = waited < 0 ? -1 : harness_now_ms() - t0;
    print_message("agent reconnected with the new token %lld ms after the revocation\n", (long long)ms);
    assert_true(harness_running(ag.proc));
    assert_true(waited >= 0);
    assert_true(ms <= 3000);
    assert_token_not_logged(ag.proc, dp.token);
    assert_token_not_logged(ag.proc, new_token);
    harness_done(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(revoked_token_exits_3_within_3s, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(token_file_rotation_reconnects_within_3s, harness_setup, harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
