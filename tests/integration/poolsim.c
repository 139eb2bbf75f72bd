/* poolsim.c — kube-fake + iac-coordinator for pool scenarios; see poolsim.h. */
#include "poolsim.h"

#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

static void ps_env(cJSON *env, const char *name, const char *value)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "name", name);
    cJSON_AddStringToObject(e, "value", value);
    cJSON_AddItemToArray(env, e);
}

static void ps_env_from(cJSON *env, const char *name, const char *json)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "name", name);
    cJSON_AddItemToObject(e, "valueFrom", cJSON_Parse(json));
    cJSON_AddItemToArray(env, e);
}

void ps_seed_pool(harness *h, cJSON *items, const harness_devplane *dp, const char *pool, int replicas,
                  int agent_port, const char *const *env_extra)
{
    char buf[2048], rel[PATH_MAX], abs[PATH_MAX];
    snprintf(buf, sizeof buf,
             "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"iac-agent-token-%s\","
             "\"namespace\":\"" PS_NAMESPACE "\"},\"type\":\"Opaque\",\"stringData\":{\"token\":\"%s\"}}",
             pool, dp->token);
    cJSON *secret = cJSON_Parse(buf);
    assert_non_null(secret);
    cJSON_AddItemToArray(items, secret);

    snprintf(buf, sizeof buf,
             "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"iac-agent-%s\","
             "\"namespace\":\"" PS_NAMESPACE "\",\"labels\":{\"app\":\"iac-agent\",\"pool-id\":\"%s\"}},"
             "\"spec\":{\"replicas\":%d,\"selector\":{\"matchLabels\":{\"app\":\"iac-agent\",\"pool-id\":\"%s\"}},"
             "\"template\":{\"metadata\":{\"labels\":{\"app\":\"iac-agent\",\"pool-id\":\"%s\"}},"
             "\"spec\":{\"terminationGracePeriodSeconds\":10,\"containers\":[{\"name\":\"agent\","
             "\"image\":\"iac-agent:test\",\"ports\":[{\"name\":\"status\",\"containerPort\":%d}],"
             "\"readinessProbe\":{\"httpGet\":{\"path\":\"/readyz\",\"port\":\"status\"}},\"env\":[]}]}}}}",
             pool, pool, replicas, pool, pool, agent_port);
    cJSON *deploy = cJSON_Parse(buf);
    assert_non_null(deploy);
    cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(
                    cJSON_GetObjectItem(deploy, "spec"), "template"), "spec"), "containers"), 0);
    cJSON *env = cJSON_GetObjectItem(c0, "env");
    ps_env(env, "POOL_ID", pool);
    ps_env(env, "POOL_TYPE", "k8s");
    ps_env_from(env, "IAC_AGENT_NAME", "{\"fieldRef\":{\"fieldPath\":\"metadata.name\"}}");
    snprintf(buf, sizeof buf, "{\"secretKeyRef\":{\"name\":\"iac-agent-token-%s\",\"key\":\"token\"}}", pool);
    ps_env_from(env, "IAC_AGENT_TOKEN", buf);
    ps_env(env, "IAC_API_ENDPOINT", "127.0.0.1");
    ps_env(env, "PLATFORM_HOST", "127.0.0.1");
    snprintf(buf, sizeof buf, "%d", dp->api_port);
    ps_env(env, "SERVER_PORT", buf);
    snprintf(buf, sizeof buf, "%d", dp->cc_port);
    ps_env(env, "CC_SERVER_PORT", buf);
    ps_env(env, "IAC_AGENT_PROTOCOL", "http");
    harness_bin(h, "fake-terraform", rel, sizeof rel);
    assert_non_null(realpath(rel, abs));
    ps_env(env, "IAC_ENGINE_PATH", abs);
    ps_env(env, "IAC_AGENT_INIT_RETRY_WAIT", "100ms");
    ps_env(env, "IAC_AGENT_STATE_RETRY_WAIT", "100ms");
    for (int i = 0; env_extra && env_extra[i]; i++) {
        const char *eq = strchr(env_extra[i], '=');
        assert_non_null(eq);
        snprintf(buf, sizeof buf, "%.*s", (int)(eq - env_extra[i]), env_extra[i]);
        ps_env(env, buf, eq + 1);
    }
    cJSON_AddItemToArray(items, deploy);
}

static bool ps_file_exists(void *arg)
{
    return access((const char *)arg, F_OK) == 0;
}

void ps_kube_start(harness *h, ps_kube *k, cJSON *items, const char *ip_base, int agent_port)
{
    char seed[HARNESS_PATH_LEN], ready[HARNESS_PATH_LEN], work[HARNESS_PATH_LEN], bin[PATH_MAX], bindir[PATH_MAX];
    memset(k, 0, sizeof *k);
    snprintf(k->token, sizeof k->token, "kube-fake-token-%d", (int)getpid());
    snprintf(k->ip_base, sizeof k->ip_base, "%s", ip_base ? ip_base : "");
    k->agent_port = agent_port;
    snprintf(seed, sizeof seed, "%s/kube-seed.json", h->dir);
    snprintf(ready, sizeof ready, "%s/kube-ready.json", h->dir);
    snprintf(work, sizeof work, "%s/kube", h->dir);
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddItemToObject(doc, "items", items);
    char *text = cJSON_PrintUnformatted(doc);
    assert_int_equal(harness_write_file(seed, text, strlen(text)), 0);
    free(text);
    cJSON_Delete(doc);

    harness_bin(h, "kube-fake", bin, sizeof bin);
    assert_non_null(realpath(h->build, bindir));
    char *run_pods[] = { bin, "--port", "0", "--ready-file", ready, "--token", k->token, "--seed", seed,
                         "--bin-dir", bindir, "--work-dir", work, "--pod-ip-base", k->ip_base,
                         "--readiness-interval", "200ms", NULL };
    char *bare[] = { bin, "--port", "0", "--ready-file", ready, "--token", k->token, "--seed", seed, "--work-dir",
                     work, "--no-kubelet", "--log-level", "debug", NULL };
    k->proc = harness_spawn(h, "kube-fake", ip_base ? run_pods : bare, NULL);
    assert_non_null(k->proc);
    assert_true(harness_wait_until(ps_file_exists, ready, 5000) >= 0);
    char *rd = harness_read_file(ready, NULL);
    cJSON *r = cJSON_Parse(rd);
    free(rd);
    k->port = (int)harness_json_num(r, "port", -1);
    cJSON_Delete(r);
    assert_true(k->port > 0);

    snprintf(k->kubeconfig, sizeof k->kubeconfig, "%s/kubeconfig", h->dir);
    char kc[1024];
    int n = snprintf(kc, sizeof kc,
                     "apiVersion: v1\nkind: Config\nclusters:\n- name: kube-fake\n  cluster:\n"
                     "    server: http://127.0.0.1:%d\ncontexts:\n- name: kube-fake\n  context:\n"
                     "    cluster: kube-fake\n    user: tester\n    namespace: " PS_NAMESPACE "\n"
                     "current-context: kube-fake\nusers:\n- name: tester\n  user:\n    token: %s\n",
                     k->port, k->token);
    assert_int_equal(harness_write_file(k->kubeconfig, kc, (size_t)n), 0);
}

typedef struct {
    char  *data;
    size_t len;
} ps_buf;

static size_t ps_collect(char *p, size_t size, size_t n, void *arg)
{
    ps_buf *b = arg;
    char *grown = realloc(b->data, b->len + size * n + 1);
    if (!grown)
        return 0;
    b->data = grown;
    memcpy(b->data + b->len, p, size * n);
    b->len += size * n;
    b->data[b->len] = '\0';
    return size * n;
}

cJSON *ps_kube_call(const ps_kube *k, const char *method, const char *path, const char *ctype, const char *body,
                    long *status)
{
    char url[1024], auth[128], ct[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", k->port, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", k->token);
    snprintf(ct, sizeof ct, "Content-Type: %s", ctype ? ctype : "application/json");
    CURL *c = curl_easy_init();
    assert_non_null(c);
    struct curl_slist *hdrs = curl_slist_append(NULL, auth);
    hdrs = curl_slist_append(hdrs, ct);
    ps_buf b = { 0 };
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, ps_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    long code = -1;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    if (status)
        *status = code;
    cJSON *doc = b.data ? cJSON_Parse(b.data) : NULL;
    free(b.data);
    return doc;
}

int ps_pod_count(const ps_kube *k, const char *pool, bool with_terminating)
{
    char path[512];
    snprintf(path, sizeof path, "/api/v1/namespaces/" PS_NAMESPACE "/pods?labelSelector=app%%3Diac-agent%%2Cpool-id%%3D%s",
             pool);
    long status = 0;
    cJSON *doc = ps_kube_call(k, "GET", path, NULL, NULL, &status);
    if (!doc || status != 200) {
        cJSON_Delete(doc);
        return -1;
    }
    int n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(doc, "items")) {
        bool terminating = cJSON_GetObjectItem(cJSON_GetObjectItem(it, "metadata"), "deletionTimestamp") != NULL;
        n += with_terminating || !terminating;
    }
    cJSON_Delete(doc);
    return n;
}

int ps_replicas(const ps_kube *k, const char *pool)
{
    char path[512];
    snprintf(path, sizeof path, "/apis/apps/v1/namespaces/" PS_NAMESPACE "/deployments/iac-agent-%s/scale", pool);
    long status = 0;
    cJSON *doc = ps_kube_call(k, "GET", path, NULL, NULL, &status);
    int n = status == 200 ? (int)harness_json_num(cJSON_GetObjectItem(doc, "spec"), "replicas", -1) : -1;
    cJSON_Delete(doc);
    return n;
}

int ps_event_count(const ps_kube *k, const char *name, const char *reason)
{
    long status = 0;
    cJSON *doc = ps_kube_call(k, "GET", "/api/v1/namespaces/" PS_NAMESPACE "/events", NULL, NULL, &status);
    if (!doc || status != 200) {
        cJSON_Delete(doc);
        return -1;
    }
    int n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(doc, "items")) {
        const char *about = harness_json_str(cJSON_GetObjectItem(it, "involvedObject"), "name");
        const char *why = harness_json_str(it, "reason");
        n += about && strcmp(about, name) == 0 && (!reason || (why && strcmp(why, reason) == 0));
    }
    cJSON_Delete(doc);
    return n;
}

typedef struct {
    const ps_coord *c;
} ps_coord_wait;

static bool ps_coord_up(void *arg)
{
    const ps_coord *c = arg;
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", c->port);
    harness_resp r = { 0 };
    long st = harness_http("GET", url, NULL, NULL, &r);
    harness_resp_free(&r);
    return st == 200;
}

void ps_coord_start(harness *h, ps_coord *c, const ps_kube *k, const char *pools_path, const char *identity,
                    const char *const *extra)
{
    char bin[PATH_MAX], listen[64];
    memset(c, 0, sizeof *c);
    c->port = harness_free_port();
    snprintf(c->identity, sizeof c->identity, "%s", identity);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", c->port);
    harness_bin(h, "iac-coordinator", bin, sizeof bin);
    char *argv[32] = { bin, "--config", (char *)pools_path, "--kubeconfig", (char *)k->kubeconfig, "--listen", listen,
                       "--identity", c->identity };
    int n = 9;
    for (int i = 0; extra && extra[i] && n < 31; i++)
        argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    c->proc = harness_spawn(h, identity, argv, NULL);
    assert_non_null(c->proc);
    assert_true(harness_wait_until(ps_coord_up, c, 5000) >= 0);
}

cJSON *ps_coord_get(const ps_coord *c, const char *path)
{
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", c->port, path);
    return harness_get_json(url);
}

const cJSON *ps_coord_pool(const ps_coord *c, const char *pool, cJSON **doc)
{
    *doc = ps_coord_get(c, "/v1/pools");
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(*doc, "pools")) {
        const char *id = harness_json_str(it, "id");
        if (!id)
            id = harness_json_str(cJSON_GetObjectItem(it, "config"), "id");
        if (id && strcmp(id, pool) == 0)
            return it;
    }
    return NULL;
}
