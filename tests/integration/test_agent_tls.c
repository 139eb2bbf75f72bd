/* test_agent_tls.c — an agent speaks https and wss through a TLS terminator (bench/tlsproxy in front of the
 * devplane), verifies the server's certificate, and loads libcurl and libssl only because its URLs need them: an
 * agent on plain http maps neither (httpc sends http:// through h1, wsc speaks ws:// itself). */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

typedef struct {
    int  api_port, cc_port;
    char cert[HARNESS_PATH_LEN];
} tls_front;

/* Starts bench/tlsproxy in front of dp and waits for its ready file. */
static void tls_front_start(harness *h, const harness_devplane *dp, tls_front *t)
{
    char bin[HARNESS_PATH_LEN], ready[HARNESS_PATH_LEN], api[16], cc[16];
    harness_bin(h, "bench/tlsproxy", bin, sizeof bin);
    snprintf(ready, sizeof ready, "%s/tlsproxy.json", h->dir);
    snprintf(t->cert, sizeof t->cert, "%s/tlsproxy-cert.pem", h->dir);
    snprintf(api, sizeof api, "%d", dp->api_port);
    snprintf(cc, sizeof cc, "%d", dp->cc_port);
    char *argv[] = { bin, api, cc, t->cert, ready, NULL };
    assert_non_null(harness_spawn(h, "tlsproxy", argv, NULL));
    for (int64_t end = harness_now_ms() + 10000; harness_now_ms() < end; usleep(10000)) {
        char *txt = harness_read_file(ready, NULL);
        cJSON *doc = txt ? cJSON_Parse(txt) : NULL;
        free(txt);
        if (doc) {
            t->api_port = (int)harness_json_num(doc, "api_port", 0);
            t->cc_port = (int)harness_json_num(doc, "cc_port", 0);
            cJSON_Delete(doc);
            assert_true(t->api_port > 0 && t->cc_port > 0);
            return;
        }
    }
    fail_msg("tlsproxy did not start");
}

/* The agent's environment pointed at the TLS front instead of the devplane itself. */
static void tls_agent_env(harness *h, harness_agent *ag, const harness_devplane *dp, const tls_front *t,
                          harness_env *env)
{
    char port[16];
    harness_agent_env(h, ag, dp, env);
    snprintf(port, sizeof port, "%d", t->api_port);
    harness_env_set(env, "SERVER_PORT", port);
    snprintf(port, sizeof port, "%d", t->cc_port);
    harness_env_set(env, "CC_SERVER_PORT", port);
    harness_env_set(env, "IAC_AGENT_PROTOCOL", "https");
}

/* Whether a process maps a file whose name contains needle. */
static bool maps_contain(pid_t pid, const char *needle)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    return harness_file_contains(path, needle);
}

/* Over https (SSL_CERT_FILE names the front's certificate) the agent registers, connects over wss and
 * heartbeats; it has loaded libcurl (https) and libssl (wss, common/tls.c) for that. A plain-http agent beside it
 * heartbeats too and maps none of them, nor libcrypto or libwebsockets. */
static void https_agent_works_and_only_it_loads_tls_libraries(void **state)
{
    harness *h = *state;
    harness_devplane dp = { 0 };
    harness_agent plain;
    char plain_id[128];
    assert_true(harness_start_pair(h, &dp, &plain, NULL, plain_id, sizeof plain_id) >= 0);

    tls_front t;
    tls_front_start(h, &dp, &t);
    harness_agent tls;
    harness_env env = { 0 };
    tls_agent_env(h, &tls, &dp, &t, &env);
    harness_env_set(&env, "IAC_AGENT_NAME", "agent-tls");
    harness_env_set(&env, "SSL_CERT_FILE", t.cert);
    assert_non_null(harness_agent_start(h, &tls, &env));
    harness_env_free(&env);

    harness_hb_wait w = { .dp = &dp, .not_id = plain_id, .min_heartbeats = 2 };
    assert_true(harness_wait_until(harness_pred_heartbeat, &w, 15000) >= 0);
    cJSON *doc = harness_admin_agents(&dp);
    harness_assert_str(harness_json_str(harness_agent_row(doc, w.found_id), "name"), "agent-tls");
    cJSON_Delete(doc);

    assert_true(maps_contain(tls.proc->pid, "libcurl"));
    assert_true(maps_contain(tls.proc->pid, "libssl.so"));
    static const char *const tls_libs[] = { "libcurl", "libssl", "libcrypto", "libwebsockets" };
    for (size_t i = 0; i < sizeof tls_libs / sizeof tls_libs[0]; i++)
        if (maps_contain(plain.proc->pid, tls_libs[i]))
            fail_msg("the plain-http agent maps %s", tls_libs[i]);
    harness_done(h);
}

/* Without the front's certificate among the trusted ones, the agent does not register: the peer is verified, and
 * the failure says it was the certificate. */
static void https_agent_refuses_an_untrusted_certificate(void **state)
{
    harness *h = *state;
    harness_devplane dp = { 0 };
    harness_devplane_init(h, &dp);
    assert_int_equal(harness_devplane_start(h, &dp), 0);
    tls_front t;
    tls_front_start(h, &dp, &t);

    harness_agent ag;
    harness_env env = { 0 };
    tls_agent_env(h, &ag, &dp, &t, &env);
    harness_env_unset(&env, "SSL_CERT_FILE");
    assert_non_null(harness_agent_start(h, &ag, &env));
    harness_env_free(&env);

    char err[HARNESS_PATH_LEN];
    snprintf(err, sizeof err, "%s/agent.err", h->dir);
    int64_t end = harness_now_ms() + 10000;
    while (harness_now_ms() < end && !harness_file_contains_nocase(err, "certificate"))
        usleep(20000);
    assert_true(harness_file_contains_nocase(err, "certificate"));
    cJSON *doc = harness_admin_agents(&dp);
    assert_null(harness_agent_row(doc, NULL));
    cJSON_Delete(doc);
    harness_done(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(https_agent_works_and_only_it_loads_tls_libraries, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(https_agent_refuses_an_untrusted_certificate, harness_setup,
                                        harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
