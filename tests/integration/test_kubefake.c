/* test_kubefake.c — kube-fake, the Kubernetes API and pod simulator the coordinator scenarios run against: kubectl
 * can drive it, its pods are real iac-agent processes on their own 127.0.0.N addresses that register at the
 * devplane under their pod names, it scales down in Kubernetes' order, and its RBAC switch, Lease concurrency and
 * error answers are the real API server's. */
#include "harness.h"

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <curl/curl.h>

#define NS        "terraform"
#define POOL_DEP  "iac-agent-pool-it"
#define POD_LABEL "app%3Diac-agent"

typedef struct {
    harness_proc *proc;
    int           port;
    char          token[64]; /* "" when started without --token */
} kubefake;

/* ---- kube-fake ---- */

static bool file_exists(void *arg) { return access((const char *)arg, F_OK) == 0; }

/* Starts kube-fake with seed (the JSON text of {"items": [...]}) and extra flags (NULL-terminated, or NULL); the
 * pods' commands come from the build directory. */
static void kf_start(harness *h, kubefake *kf, const char *seed, const char *token, const char *const *extra)
{
    char seed_path[HARNESS_PATH_LEN], ready[HARNESS_PATH_LEN], work[HARNESS_PATH_LEN], bin[PATH_MAX];
    char bindir[PATH_MAX], tok[96];
    memset(kf, 0, sizeof *kf);
    snprintf(seed_path, sizeof seed_path, "%s/kf-seed.json", h->dir);
    snprintf(ready, sizeof ready, "%s/kf-ready.json", h->dir);
    snprintf(work, sizeof work, "%s/kf", h->dir);
    assert_int_equal(harness_write_file(seed_path, seed, strlen(seed)), 0);
    harness_bin(h, "kube-fake", bin, sizeof bin);
    assert_non_null(realpath(h->build, bindir));
    char *argv[32] = { bin, "--port=0", "--ready-file", ready, "--seed", seed_path, "--bin-dir", bindir,
                       "--work-dir", work, "--readiness-interval=100ms", "--log-level=debug" };
    int argc = 12;
    if (token) {
        snprintf(kf->token, sizeof kf->token, "%s", token);
        snprintf(tok, sizeof tok, "--token=%s", token);
        argv[argc++] = tok;
    }
    for (int i = 0; extra && extra[i] && argc < 31; i++)
        argv[argc++] = (char *)extra[i];
    argv[argc] = NULL;
    kf->proc = harness_spawn(h, "kube-fake", argv, NULL);
    assert_non_null(kf->proc);
    assert_true(harness_wait_until(file_exists, ready, 5000) >= 0);
    char *text = harness_read_file(ready, NULL);
    cJSON *doc = cJSON_Parse(text);
    free(text);
    kf->port = (int)harness_json_num(doc, "port", -1);
    assert_int_equal((int)harness_json_num(doc, "pid", -1), (int)kf->proc->pid);
    cJSON_Delete(doc);
    assert_true(kf->port > 0);
}

typedef struct {
    char  *data;
    size_t len;
} buf;

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
    buf *b = arg;
    char *grown = realloc(b->data, b->len + size * n + 1);
    if (!grown)
        return 0;
    b->data = grown;
    memcpy(b->data + b->len, p, size * n);
    b->len += size * n;
    b->data[b->len] = '\0';
    return size * n;
}

/* One request to kube-fake with a content type of our choice (harness_http always says application/json) and
 * the bearer (NULL: none). Returns the parsed body (caller frees; NULL when not JSON); *status the HTTP status. */
static cJSON *kf_call(const kubefake *kf, const char *method, const char *path, const char *ctype, const char *body,
                      const char *bearer, long *status)
{
    char url[1024], auth[160], ct[160];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", kf->port, path);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    struct curl_slist *hdrs = curl_slist_append(NULL, "Expect:");
    if (bearer) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", bearer);
        hdrs = curl_slist_append(hdrs, auth);
    }
    if (body) {
        snprintf(ct, sizeof ct, "Content-Type: %s", ctype ? ctype : "application/json");
        hdrs = curl_slist_append(hdrs, ct);
    }
    buf b = { 0 };
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    long code = -1;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    *status = code;
    cJSON *doc = b.data ? cJSON_Parse(b.data) : NULL;
    free(b.data);
    return doc;
}

/* kf_call with kube-fake's own token. */
static cJSON *kf_api(const kubefake *kf, const char *method, const char *path, const char *ctype, const char *body,
                     long *status)
{
    return kf_call(kf, method, path, ctype, body, kf->token[0] ? kf->token : NULL, status);
}

/* An API call that must answer want; the body (caller frees). */
static cJSON *kf_must(const kubefake *kf, const char *method, const char *path, const char *ctype, const char *body,
                      long want)
{
    long status;
    cJSON *doc = kf_api(kf, method, path, ctype, body, &status);
    if (status != want) {
        char *text = doc ? cJSON_PrintUnformatted(doc) : NULL;
        fail_msg("%s %s answered %ld (wanted %ld): %s", method, path, status, want, text ? text : "(no JSON)");
    }
    return doc;
}

/* A Status answer with this code and reason. */
static void assert_status(const cJSON *doc, long status, long code, const char *reason)
{
    assert_int_equal(status, code);
    harness_assert_str(harness_json_str(doc, "kind"), "Status");
    harness_assert_str(harness_json_str(doc, "status"), "Failure");
    harness_assert_str(harness_json_str(doc, "reason"), reason);
    assert_int_equal((long)harness_json_num(doc, "code", -1), code);
}

static const cJSON *jget(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }

static bool pod_ready(const cJSON *pod)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, jget(jget(pod, "status"), "conditions"))
    {
        const char *t = harness_json_str(c, "type"), *s = harness_json_str(c, "status");
        if (t && strcmp(t, "Ready") == 0)
            return s && strcmp(s, "True") == 0;
    }
    return false;
}

/* The pool's pods as kube-fake lists them (caller frees the list document). */
static cJSON *pool_pods(const kubefake *kf)
{
    return kf_must(kf, "GET", "/api/v1/namespaces/" NS "/pods?labelSelector=" POD_LABEL, NULL, NULL, 200);
}

typedef struct {
    const kubefake *kf;
    int             n;
} ready_wait;

/* Exactly n pods, none terminating, all Ready. */
static bool pods_ready(void *arg)
{
    ready_wait *w = arg;
    cJSON *doc = pool_pods(w->kf);
    const cJSON *it;
    int total = 0, ready = 0;
    cJSON_ArrayForEach(it, jget(doc, "items"))
    {
        total++;
        if (pod_ready(it) && !jget(jget(it, "metadata"), "deletionTimestamp"))
            ready++;
    }
    cJSON_Delete(doc);
    return total == w->n && ready == w->n;
}

/* ---- the pool: a devplane, and kube-fake with a Deployment of real agents ---- */

/* Upstream's pod environment (ref §5.3) on a Deployment of `replicas` agents pointed at dp, the token from a
 * Secret, a `status` container port and a /readyz readiness probe on it. */
static char *pool_seed(const harness_devplane *dp, int replicas, int agent_port)
{
    char *s = malloc(8192);
    assert_non_null(s);
    snprintf(s, 8192,
             "{\"items\":["
             "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"" POOL_DEP "\","
             "\"namespace\":\"" NS "\"},\"spec\":{\"replicas\":%d,\"selector\":{\"matchLabels\":{\"app\":\"iac-agent\"}},"
             "\"template\":{\"metadata\":{\"labels\":{\"app\":\"iac-agent\",\"pool-id\":\"%s\"}},\"spec\":{"
             "\"terminationGracePeriodSeconds\":10,\"containers\":[{\"name\":\"agent\",\"image\":\"iac-agent:test\","
             "\"ports\":[{\"name\":\"status\",\"containerPort\":%d}],"
             "\"readinessProbe\":{\"httpGet\":{\"path\":\"/readyz\",\"port\":\"status\"}},"
             "\"env\":["
             "{\"name\":\"POOL_ID\",\"value\":\"%s\"},{\"name\":\"POOL_TYPE\",\"value\":\"k8s\"},"
             "{\"name\":\"IAC_AGENT_NAME\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"metadata.name\"}}},"
             "{\"name\":\"IAC_AGENT_TOKEN\",\"valueFrom\":{\"secretKeyRef\":{\"name\":\"iac-agent-token-%s\","
             "\"key\":\"token\"}}},"
             "{\"name\":\"IAC_API_ENDPOINT\",\"value\":\"127.0.0.1\"},{\"name\":\"SERVER_PORT\",\"value\":\"%d\"},"
             "{\"name\":\"CC_SERVER_PORT\",\"value\":\"%d\"},{\"name\":\"IAC_AGENT_PROTOCOL\",\"value\":\"http\"},"
             "{\"name\":\"IAC_AGENT_LOG_LEVEL\",\"value\":\"debug\"}]}]}}}},"
             /* after the Deployment in the file: kube-fake seeds Secrets first */
             "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"iac-agent-token-%s\","
             "\"namespace\":\"" NS "\"},\"stringData\":{\"token\":\"%s\"}}]}",
             replicas, dp->pool, agent_port, dp->pool, dp->pool, dp->api_port, dp->cc_port, dp->pool, dp->token);
    return s;
}

typedef struct {
    harness_devplane dp;
    kubefake         kf;
    int              agent_port;
} pool;

/* Devplane + kube-fake with `replicas` agent pods, all Ready. */
static void pool_start(harness *h, pool *p, int replicas)
{
    memset(p, 0, sizeof *p);
    harness_devplane_init(h, &p->dp);
    assert_int_equal(harness_devplane_start(h, &p->dp), 0);
    p->agent_port = harness_free_port();
    char *seed = pool_seed(&p->dp, replicas, p->agent_port);
    kf_start(h, &p->kf, seed, NULL, NULL);
    free(seed);
    ready_wait w = { &p->kf, replicas };
    int64_t ms = harness_wait_until(pods_ready, &w, 10000);
    assert_true(ms >= 0);
    print_message("%d agent pods Ready %lld ms after kube-fake was ready\n", replicas, (long long)ms);
}

/* kube-fake's admin view of its pod processes (caller frees). */
static cJSON *admin_pods(const kubefake *kf)
{
    return kf_must(kf, "GET", "/admin/pods", NULL, NULL, 200);
}

/* The admin row of pod name in list "pods" or "gone". */
static const cJSON *admin_row(const cJSON *doc, const char *list, const char *name)
{
    const cJSON *row;
    cJSON_ArrayForEach(row, jget(doc, list))
    {
        const char *n = harness_json_str(row, "name");
        if (n && strcmp(n, name) == 0)
            return row;
    }
    return NULL;
}

/* ---- kubectl ---- */

/* kubectl's path on PATH, or false. */
static bool find_kubectl(char *out, size_t outlen)
{
    const char *path = getenv("PATH");
    for (const char *p = path ? path : ""; *p;) {
        size_t n = strcspn(p, ":");
        snprintf(out, outlen, "%.*s/kubectl", (int)n, p);
        if (n && access(out, X_OK) == 0)
            return true;
        p += n;
        if (*p)
            p++;
    }
    return false;
}

/* Runs kubectl with args (NULL-terminated) against kf; its exit code, and its stdout in *out (caller frees). */
static int kubectl(harness *h, const char *bin, const kubefake *kf, const char *const *args, char **out)
{
    char server[64], token[96], home[HARNESS_PATH_LEN];
    snprintf(server, sizeof server, "--server=http://127.0.0.1:%d", kf->port);
    snprintf(token, sizeof token, "--token=%s", "not-sent-over-http");
    snprintf(home, sizeof home, "%s/kubectl-home", h->dir);
    mkdir(home, 0700);
    char *argv[24] = { (char *)bin, server, token };
    int argc = 3;
    for (int i = 0; args[i] && argc < 23; i++)
        argv[argc++] = (char *)args[i];
    argv[argc] = NULL;
    harness_env env = { .n = 0 };
    harness_env_set(&env, "HOME", home);
    harness_env_set(&env, "KUBECONFIG", "/dev/null");
    harness_proc *p = harness_spawn(h, "kubectl", argv, &env);
    harness_env_free(&env);
    assert_non_null(p);
    int code = harness_wait_exit(p, 30000, NULL);
    *out = harness_read_file(p->out_path, NULL);
    if (code != 0) {
        char *err = harness_read_file(p->err_path, NULL);
        print_message("kubectl %s exited %d:\n%s%s\n", args[0], code, *out ? *out : "", err ? err : "");
        free(err);
    }
    return code;
}

/* kubectl 1.32 lists the seeded Deployment and its pods (by label) and scales the Deployment through the scale
 * subresource; the subresource then reads 3. kubectl never sends credentials over plain HTTP, so this kube-fake
 * runs without --token (the --token given to kubectl is ignored by kubectl itself). */
static void kubectl_lists_and_scales(void **state)
{
    harness *h = *state;
    char bin[PATH_MAX];
    if (!find_kubectl(bin, sizeof bin)) {
        print_message("kubectl is not on PATH: skipping the kubectl scenario\n");
        skip();
    }
    kubefake kf;
    kf_start(h, &kf,
             "{\"items\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\","
             "\"namespace\":\"" NS "\"},\"spec\":{\"replicas\":2,\"selector\":{\"matchLabels\":{\"app\":\"web\"}},"
             "\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},\"spec\":{\"terminationGracePeriodSeconds\":2,"
             "\"containers\":[{\"name\":\"web\",\"image\":\"busybox\",\"command\":[\"/bin/sh\",\"-c\","
             "\"exec sleep 60\"]}]}}}}]}",
             NULL, NULL);
    char *out = NULL;
    const char *get_deploy[] = { "get", "deployments", "-n", NS, NULL };
    assert_int_equal(kubectl(h, bin, &kf, get_deploy, &out), 0);
    assert_non_null(out);
    assert_non_null(strstr(out, "NAME"));
    assert_non_null(strstr(out, "\nweb "));
    free(out);

    const char *get_pods[] = { "get", "pods", "-n", NS, "-l", "app=web", NULL };
    assert_int_equal(kubectl(h, bin, &kf, get_pods, &out), 0);
    assert_non_null(out);
    int n = 0;
    for (const char *p = out; (p = strstr(p, "\nweb-")); p++)
        n++;
    print_message("kubectl get pods:\n%s", out);
    assert_int_equal(n, 2);
    free(out);

    const char *scale[] = { "scale", "deployment", "web", "--replicas=3", "-n", NS, NULL };
    assert_int_equal(kubectl(h, bin, &kf, scale, &out), 0);
    assert_non_null(strstr(out, "deployment.apps/web scaled"));
    free(out);

    cJSON *s = kf_must(&kf, "GET", "/apis/apps/v1/namespaces/" NS "/deployments/web/scale", NULL, NULL, 200);
    harness_assert_str(harness_json_str(s, "kind"), "Scale");
    harness_assert_str(harness_json_str(s, "apiVersion"), "autoscaling/v1");
    assert_int_equal((int)harness_json_num(jget(s, "spec"), "replicas", -1), 3);
    harness_assert_str(harness_json_str(jget(s, "status"), "selector"), "app=web");
    cJSON_Delete(s);
    harness_done(h);
}

/* A Deployment of 2 with upstream's pod environment becomes 2 Ready pods, each running a real iac-agent on its
 * own 127.0.0.N at the same port, registered and connected at the devplane under its pod name; the Deployment's
 * status says 2 ready. */
static void pods_run_real_agents_on_their_own_addresses(void **state)
{
    harness *h = *state;
    pool p;
    pool_start(h, &p, 2);

    cJSON *pods = pool_pods(&p.kf);
    const cJSON *it;
    char names[2][128] = { "", "" }, ips[2][32] = { "", "" };
    int i = 0;
    cJSON_ArrayForEach(it, jget(pods, "items"))
    {
        assert_true(i < 2);
        snprintf(names[i], sizeof names[i], "%s", harness_json_str(jget(it, "metadata"), "name"));
        const char *ip = harness_json_str(jget(it, "status"), "podIP");
        assert_non_null(ip);
        assert_int_equal(strncmp(ip, "127.0.0.", 8), 0);
        snprintf(ips[i], sizeof ips[i], "%s", ip);
        harness_assert_str(harness_json_str(jget(it, "status"), "phase"), "Running");
        assert_int_equal(strncmp(names[i], POOL_DEP "-", strlen(POOL_DEP) + 1), 0);
        const cJSON *labels = jget(jget(it, "metadata"), "labels");
        assert_non_null(harness_json_str(labels, "pod-template-hash"));
        i++;
    }
    cJSON_Delete(pods);
    assert_int_equal(i, 2);
    assert_string_not_equal(ips[0], ips[1]);

    /* Each agent answers on its pod address and knows itself by its pod name. */
    for (i = 0; i < 2; i++) {
        char url[128];
        snprintf(url, sizeof url, "http://%s:%d/v1/status", ips[i], p.agent_port);
        cJSON *st = harness_get_json(url);
        assert_non_null(st);
        harness_assert_str(harness_json_str(st, "name"), names[i]);
        assert_true(harness_json_true(st, "connected"));
        cJSON_Delete(st);
    }

    /* The devplane has both, connected, under the pod names. */
    cJSON *agents = harness_admin_agents(&p.dp);
    assert_non_null(agents);
    int found = 0;
    cJSON_ArrayForEach(it, jget(agents, "agents"))
    {
        const char *name = harness_json_str(it, "name");
        for (i = 0; i < 2; i++)
            if (name && strcmp(name, names[i]) == 0 && harness_json_true(it, "connected"))
                found++;
    }
    cJSON_Delete(agents);
    assert_int_equal(found, 2);

    cJSON *d = kf_must(&p.kf, "GET", "/apis/apps/v1/namespaces/" NS "/deployments/" POOL_DEP, NULL, NULL, 200);
    assert_int_equal((int)harness_json_num(jget(d, "status"), "readyReplicas", -1), 2);
    assert_int_equal((int)harness_json_num(jget(d, "status"), "replicas", -1), 2);
    cJSON_Delete(d);
    harness_done(h);
}

typedef struct {
    const kubefake *kf;
    const char     *name;
} gone_wait;

/* The pod's process is gone and the pod object too. */
static bool pod_gone(void *arg)
{
    gone_wait *w = arg;
    char path[512];
    long status;
    snprintf(path, sizeof path, "/api/v1/namespaces/" NS "/pods/%s", w->name);
    cJSON *doc = kf_api(w->kf, "GET", path, NULL, NULL, &status);
    cJSON_Delete(doc);
    if (status != 404)
        return false;
    cJSON *adm = admin_pods(w->kf);
    bool gone = admin_row(adm, "gone", w->name) != NULL;
    cJSON_Delete(adm);
    return gone;
}

/* With two Ready agent pods, the older one given a lower controller.kubernetes.io/pod-deletion-cost (merge patch;
 * the newer one gets cost 0 by strategic merge patch, and a label removed by a null) is the one a scale-down to 1
 * deletes, although Kubernetes deletes the newer pod first when costs are equal: it is marked terminating, its agent gets SIGTERM and exits 0, the object goes; the other pod keeps
 * its process and stays Ready. */
static void scale_down_deletes_the_pod_with_the_lowest_deletion_cost(void **state)
{
    harness *h = *state;
    pool p;
    pool_start(h, &p, 2);

    /* /admin/pods lists pods oldest first. The victim is the older one: the rule "newer before older" alone would
     * keep it, so only its lower deletion cost can make it go first. */
    cJSON *adm = admin_pods(&p.kf);
    char names[2][128];
    for (int i = 0; i < 2; i++)
        snprintf(names[i], sizeof names[i], "%s", harness_json_str(cJSON_GetArrayItem(jget(adm, "pods"), i), "name"));
    cJSON_Delete(adm);
    const char *victim = names[0], *keeper = names[1];

    char path[512];
    snprintf(path, sizeof path, "/api/v1/namespaces/" NS "/pods/%s", victim);
    cJSON *doc = kf_must(&p.kf, "PATCH", path, "application/merge-patch+json",
                         "{\"metadata\":{\"annotations\":{\"controller.kubernetes.io/pod-deletion-cost\":\"-100\"}}}",
                         200);
    harness_assert_str(harness_json_str(jget(jget(doc, "metadata"), "annotations"),
                                        "controller.kubernetes.io/pod-deletion-cost"),
                       "-100");
    cJSON_Delete(doc);
    snprintf(path, sizeof path, "/api/v1/namespaces/" NS "/pods/%s", keeper);
    cJSON_Delete(kf_must(&p.kf, "PATCH", path, "application/strategic-merge-patch+json",
                         "{\"metadata\":{\"labels\":{\"extra\":\"x\"},\"annotations\":"
                         "{\"controller.kubernetes.io/pod-deletion-cost\":\"0\"}}}",
                         200));
    doc = kf_must(&p.kf, "PATCH", path, "application/merge-patch+json", "{\"metadata\":{\"labels\":{\"extra\":null}}}",
                  200);
    assert_null(jget(jget(jget(doc, "metadata"), "labels"), "extra"));
    assert_non_null(harness_json_str(jget(jget(doc, "metadata"), "labels"), "app"));
    cJSON_Delete(doc);

    adm = admin_pods(&p.kf);
    int keeper_pid = (int)harness_json_num(admin_row(adm, "pods", keeper), "pid", 0);
    int victim_pid = (int)harness_json_num(admin_row(adm, "pods", victim), "pid", 0);
    cJSON_Delete(adm);
    assert_true(keeper_pid > 0 && victim_pid > 0);

    doc = kf_must(&p.kf, "PATCH", "/apis/apps/v1/namespaces/" NS "/deployments/" POOL_DEP "/scale",
                  "application/merge-patch+json", "{\"spec\":{\"replicas\":1}}", 200);
    assert_int_equal((int)harness_json_num(jget(doc, "spec"), "replicas", -1), 1);
    cJSON_Delete(doc);

    gone_wait w = { &p.kf, victim };
    assert_true(harness_wait_until(pod_gone, &w, 10000) >= 0);
    adm = admin_pods(&p.kf);
    const cJSON *g = admin_row(adm, "gone", victim);
    assert_non_null(g);
    assert_true(harness_json_true(g, "deleted"));
    assert_int_equal((int)harness_json_num(g, "pid", -1), victim_pid);
    assert_int_equal((int)harness_json_num(g, "exit_code", -1), 0); /* SIGTERM: the agent drained and exited 0 */
    const cJSON *k = admin_row(adm, "pods", keeper);
    assert_non_null(k);
    assert_int_equal((int)harness_json_num(k, "pid", -1), keeper_pid);
    assert_true(harness_json_true(k, "ready"));
    assert_false(harness_json_true(k, "deleting"));
    assert_int_equal(cJSON_GetArraySize(jget(adm, "pods")), 1);
    cJSON_Delete(adm);
    harness_done(h);
}

static const char *const APP_SEED =
    "{\"items\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"app\","
    "\"namespace\":\"" NS "\"},\"spec\":{\"replicas\":0,\"selector\":{\"matchLabels\":{\"app\":\"app\"}},"
    "\"template\":{\"metadata\":{\"labels\":{\"app\":\"app\"}},\"spec\":{\"containers\":[{\"name\":\"app\","
    "\"image\":\"app\"}]}}}}]}";

#define SCALE_PATH "/apis/apps/v1/namespaces/" NS "/deployments/app/scale"

static cJSON *ssar(const kubefake *kf, const char *verb, const char *sub)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"apiVersion\":\"authorization.k8s.io/v1\",\"kind\":\"SelfSubjectAccessReview\",\"spec\":"
             "{\"resourceAttributes\":{\"namespace\":\"" NS "\",\"verb\":\"%s\",\"group\":\"apps\","
             "\"resource\":\"deployments\",\"subresource\":\"%s\",\"name\":\"app\"}}}",
             verb, sub);
    return kf_must(kf, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", NULL, body, 201);
}

/* Denying patch:deployments/scale through the admin API turns the scale PATCH into 403 Forbidden (with the API
 * server's message) and makes a SelfSubjectAccessReview answer allowed false, while get stays allowed; a rule
 * given with --deny at start applies from the first request; a request without the bearer token, or with a wrong
 * one, is 401 Unauthorized. */
static void rbac_switch_forbids_and_token_is_required(void **state)
{
    harness *h = *state;
    kubefake kf;
    const char *extra[] = { "--deny=create:events", NULL };
    kf_start(h, &kf, APP_SEED, "kf-token-1", extra);
    long status;

    /* --deny at start (the admin API below replaces the whole list). */
    cJSON *doc = kf_api(&kf, "POST", "/api/v1/namespaces/" NS "/events", NULL,
                 "{\"metadata\":{\"generateName\":\"x.\"},\"involvedObject\":{\"name\":\"app\"},\"reason\":\"R\"}",
                 &status);
    assert_status(doc, status, 403, "Forbidden");
    cJSON_Delete(doc);
    cJSON_Delete(kf_must(&kf, "PATCH", SCALE_PATH, "application/merge-patch+json", "{\"spec\":{\"replicas\":0}}", 200));
    doc = ssar(&kf, "patch", "scale");
    assert_true(harness_json_true(jget(doc, "status"), "allowed"));
    cJSON_Delete(doc);

    cJSON_Delete(kf_must(&kf, "POST", "/admin/rbac", NULL, "{\"deny\":[\"patch:deployments/scale\"]}", 200));
    doc = kf_api(&kf, "PATCH", SCALE_PATH, "application/merge-patch+json", "{\"spec\":{\"replicas\":1}}", &status);
    assert_status(doc, status, 403, "Forbidden");
    const char *msg = harness_json_str(doc, "message");
    assert_non_null(msg);
    assert_non_null(strstr(msg, "deployments.apps \"app\" is forbidden: User \""));
    assert_non_null(strstr(msg, "cannot patch resource \"deployments/scale\" in API group \"apps\""));
    cJSON_Delete(doc);
    doc = ssar(&kf, "patch", "scale");
    assert_false(harness_json_true(jget(doc, "status"), "allowed"));
    assert_non_null(harness_json_str(jget(doc, "status"), "reason"));
    cJSON_Delete(doc);
    doc = ssar(&kf, "get", "scale");
    assert_true(harness_json_true(jget(doc, "status"), "allowed"));
    cJSON_Delete(doc);
    cJSON_Delete(kf_must(&kf, "GET", SCALE_PATH, NULL, NULL, 200));

    /* No token, a wrong token. */
    doc = kf_call(&kf, "GET", "/apis/apps/v1/namespaces/" NS "/deployments", NULL, NULL, NULL, &status);
    assert_status(doc, status, 401, "Unauthorized");
    cJSON_Delete(doc);
    doc = kf_call(&kf, "GET", "/api/v1/namespaces/" NS "/pods", NULL, NULL, "wrong-token", &status);
    assert_status(doc, status, 401, "Unauthorized");
    cJSON_Delete(doc);

    /* Lifting the rules restores access. */
    cJSON_Delete(kf_must(&kf, "POST", "/admin/rbac", NULL, "{\"deny\":[]}", 200));
    cJSON_Delete(kf_must(&kf, "PATCH", SCALE_PATH, "application/merge-patch+json", "{\"spec\":{\"replicas\":0}}", 200));
    harness_done(h);
}

#define LEASES "/apis/coordination.k8s.io/v1/namespaces/" NS "/leases"

/* A Lease is created (201), updated with its current resourceVersion (200, a new resourceVersion), refused with
 * the stale one (409 Conflict) and left as the successful update wrote it; a second create of the same name is 409
 * AlreadyExists; delete removes it. */
static void lease_updates_need_the_current_resource_version(void **state)
{
    harness *h = *state;
    kubefake kf;
    kf_start(h, &kf, "{\"items\":[]}", "kf-token-2", NULL);
    long status;
    const char *create = "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\",\"metadata\":{\"name\":"
                         "\"leader\"},\"spec\":{\"holderIdentity\":\"a\",\"leaseDurationSeconds\":15,"
                         "\"renewTime\":\"2026-11-24T10:00:00.000000Z\",\"leaseTransitions\":0}}";
    cJSON *doc = kf_must(&kf, "POST", LEASES, NULL, create, 201);
    char rv1[32];
    snprintf(rv1, sizeof rv1, "%s", harness_json_str(jget(doc, "metadata"), "resourceVersion"));
    assert_true(rv1[0] != '\0');
    harness_assert_str(harness_json_str(jget(doc, "metadata"), "namespace"), NS);
    cJSON_Delete(doc);

    char body[512];
    snprintf(body, sizeof body,
             "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\",\"metadata\":{\"name\":\"leader\","
             "\"resourceVersion\":\"%s\"},\"spec\":{\"holderIdentity\":\"b\",\"leaseDurationSeconds\":15,"
             "\"leaseTransitions\":1}}",
             rv1);
    doc = kf_must(&kf, "PUT", LEASES "/leader", NULL, body, 200);
    const char *rv2 = harness_json_str(jget(doc, "metadata"), "resourceVersion");
    assert_non_null(rv2);
    assert_string_not_equal(rv1, rv2);
    harness_assert_str(harness_json_str(jget(doc, "spec"), "holderIdentity"), "b");
    cJSON_Delete(doc);

    snprintf(body, sizeof body,
             "{\"metadata\":{\"name\":\"leader\",\"resourceVersion\":\"%s\"},\"spec\":{\"holderIdentity\":\"c\"}}",
             rv1);
    doc = kf_api(&kf, "PUT", LEASES "/leader", NULL, body, &status);
    assert_status(doc, status, 409, "Conflict");
    assert_non_null(strstr(harness_json_str(doc, "message"), "the object has been modified"));
    cJSON_Delete(doc);
    doc = kf_must(&kf, "GET", LEASES "/leader", NULL, NULL, 200);
    harness_assert_str(harness_json_str(jget(doc, "spec"), "holderIdentity"), "b");
    cJSON_Delete(doc);

    doc = kf_api(&kf, "POST", LEASES, NULL, create, &status);
    assert_status(doc, status, 409, "AlreadyExists");
    cJSON_Delete(doc);
    cJSON_Delete(kf_must(&kf, "DELETE", LEASES "/leader", NULL, NULL, 200));
    doc = kf_api(&kf, "GET", LEASES "/leader", NULL, NULL, &status);
    assert_status(doc, status, 404, "NotFound");
    harness_assert_str(harness_json_str(doc, "message"), "leases.coordination.k8s.io \"leader\" not found");
    cJSON_Delete(doc);
    harness_done(h);
}

/* Events are created with a generated name and listed back with what a test counts (involvedObject.name, reason,
 * message, type), also through a field selector. */
static void events_are_created_and_listed(void **state)
{
    harness *h = *state;
    kubefake kf;
    kf_start(h, &kf, "{\"items\":[]}", NULL, NULL);
    for (int i = 0; i < 3; i++) {
        char body[512];
        snprintf(body, sizeof body,
                 "{\"metadata\":{\"generateName\":\"pool-a.\"},\"involvedObject\":{\"kind\":\"Deployment\","
                 "\"name\":\"%s\",\"namespace\":\"" NS "\"},\"reason\":\"PoolConfigError\",\"message\":\"m%d\","
                 "\"type\":\"Warning\"}",
                 i < 2 ? "pool-a" : "pool-b", i);
        cJSON *doc = kf_must(&kf, "POST", "/api/v1/namespaces/" NS "/events", NULL, body, 201);
        const char *name = harness_json_str(jget(doc, "metadata"), "name");
        assert_non_null(name);
        assert_int_equal(strncmp(name, "pool-a.", 7), 0);
        assert_int_equal(strlen(name), 12);
        cJSON_Delete(doc);
    }
    cJSON *list = kf_must(&kf, "GET", "/api/v1/namespaces/" NS "/events", NULL, NULL, 200);
    harness_assert_str(harness_json_str(list, "kind"), "EventList");
    assert_int_equal(cJSON_GetArraySize(jget(list, "items")), 3);
    int a = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, jget(list, "items"))
    {
        const char *who = harness_json_str(jget(it, "involvedObject"), "name");
        a += who && strcmp(who, "pool-a") == 0;
        harness_assert_str(harness_json_str(it, "reason"), "PoolConfigError");
        harness_assert_str(harness_json_str(it, "type"), "Warning");
        assert_non_null(harness_json_str(it, "message"));
    }
    assert_int_equal(a, 2);
    cJSON_Delete(list);
    list = kf_must(&kf, "GET", "/api/v1/namespaces/" NS "/events?fieldSelector=involvedObject.name%3Dpool-b", NULL,
                   NULL, 200);
    assert_int_equal(cJSON_GetArraySize(jget(list, "items")), 1);
    cJSON_Delete(list);
    harness_done(h);
}

/* Bad requests get Status answers with the API server's codes — malformed JSON 400, a wrongly typed field 400, a
 * negative replica count 422 Invalid, an unknown path 404, an unsupported patch type 415, a verb the resource does
 * not take 405 — and the server goes on serving. */
static void bad_input_gets_status_errors_and_the_server_keeps_serving(void **state)
{
    harness *h = *state;
    kubefake kf;
    kf_start(h, &kf, APP_SEED, NULL, NULL);
    long status;
    static const struct {
        const char *method, *path, *ctype, *body;
        long        code;
        const char *reason;
    } cases[] = {
        { "POST", "/apis/apps/v1/namespaces/" NS "/deployments", NULL, "{\"metadata\":", 400, "BadRequest" },
        { "POST", "/apis/apps/v1/namespaces/" NS "/deployments", NULL, "[1,2]", 400, "BadRequest" },
        { "PUT", SCALE_PATH, NULL, "{\"spec\":{\"replicas\":\"3\"}}", 400, "BadRequest" },
        { "PATCH", SCALE_PATH, "application/merge-patch+json", "{\"spec\":{\"replicas\":-1}}", 422, "Invalid" },
        { "PATCH", SCALE_PATH, "application/json-patch+json", "[]", 415, "UnsupportedMediaType" },
        { "PATCH", SCALE_PATH, "application/merge-patch+json", "not json", 400, "BadRequest" },
        { "GET", "/apis/nope.example.com/v1/namespaces/" NS "/things", NULL, NULL, 404, "NotFound" },
        { "GET", "/api/v1/namespaces/" NS "/pods/missing", NULL, NULL, 404, "NotFound" },
        { "POST", "/api/v1/namespaces/" NS "/pods/x", NULL, "{}", 405, "MethodNotAllowed" },
        { "GET", "/api/v1/namespaces/" NS "/pods?labelSelector=a%20in%20(", NULL, NULL, 400, "BadRequest" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *doc = kf_api(&kf, cases[i].method, cases[i].path, cases[i].ctype, cases[i].body, &status);
        if (status != cases[i].code)
            print_message("case %zu: %s %s answered %ld\n", i, cases[i].method, cases[i].path, status);
        assert_status(doc, status, cases[i].code, cases[i].reason);
        cJSON_Delete(doc);
    }
    cJSON *doc = kf_must(&kf, "GET", "/version", NULL, NULL, 200);
    harness_assert_str(harness_json_str(doc, "major"), "1");
    cJSON_Delete(doc);
    doc = kf_must(&kf, "GET", SCALE_PATH, NULL, NULL, 200);
    assert_int_equal((int)harness_json_num(jget(doc, "spec"), "replicas", -1), 0);
    cJSON_Delete(doc);
    cJSON_Delete(kf_must(&kf, "GET", "/admin/healthz", NULL, NULL, 200));
    assert_true(harness_running(kf.proc));
    harness_done(h);
}

/* --no-kubelet (the coordinator benchmark's 1,000 pods): a seeded pod keeps the status it was given and runs no
 * process, and a Deployment's replicas are not turned into pods. */
static void no_kubelet_keeps_seeded_pods_and_runs_nothing(void **state)
{
    harness *h = *state;
    static const char seed[] =
        "{\"items\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"app\","
        "\"namespace\":\"" NS "\"},\"spec\":{\"replicas\":3,\"selector\":{\"matchLabels\":{\"app\":\"app\"}},"
        "\"template\":{\"metadata\":{\"labels\":{\"app\":\"app\"}},\"spec\":{\"containers\":[{\"name\":\"app\","
        "\"image\":\"app\"}]}}}},"
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"app-1\",\"namespace\":\"" NS "\","
        "\"labels\":{\"app\":\"app\"}},\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":\"app\"}]},"
        "\"status\":{\"phase\":\"Running\",\"podIP\":\"127.0.3.3\",\"conditions\":[{\"type\":\"Ready\","
        "\"status\":\"True\"}]}}]}";
    kubefake kf;
    const char *extra[] = { "--no-kubelet", NULL };
    kf_start(h, &kf, seed, NULL, extra);
    usleep(500 * 1000); /* several controller passes */
    cJSON *list = kf_must(&kf, "GET", "/api/v1/namespaces/" NS "/pods?labelSelector=app%3Dapp", NULL, NULL, 200);
    assert_int_equal(cJSON_GetArraySize(jget(list, "items")), 1);
    const cJSON *pod = cJSON_GetArrayItem(jget(list, "items"), 0);
    harness_assert_str(harness_json_str(jget(pod, "status"), "podIP"), "127.0.3.3");
    harness_assert_str(harness_json_str(jget(pod, "status"), "phase"), "Running");
    assert_true(pod_ready(pod));
    cJSON_Delete(list);
    cJSON *admin = admin_pods(&kf);
    const cJSON *row = admin_row(admin, "pods", "app-1");
    assert_non_null(row);
    assert_int_equal((int)harness_json_num(row, "pid", -1), 0);
    cJSON_Delete(admin);
    harness_done(h);
}

/* ---- lists in chunks ---- */

/* Five bare pods, four of them app=chunk in NS and one in default, without a kubelet: nothing runs. */
static const char CHUNK_SEED[] =
    "{\"items\":["
    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"c-4\",\"namespace\":\"" NS "\","
    "\"labels\":{\"app\":\"chunk\"}},\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"a\"}]}},"
    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"c-1\",\"namespace\":\"" NS "\","
    "\"labels\":{\"app\":\"chunk\"}},\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"a\"}]}},"
    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"c-3\",\"namespace\":\"" NS "\","
    "\"labels\":{\"app\":\"chunk\"}},\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"a\"}]}},"
    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"c-2\",\"namespace\":\"" NS "\","
    "\"labels\":{\"app\":\"chunk\"}},\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"a\"}]}},"
    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"c-0\",\"namespace\":\"default\","
    "\"labels\":{\"app\":\"chunk\"}},\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"a\"}]}}]}";

/* GET path with limit and, unless NULL, continue added to its query; the list document (caller frees). */
static cJSON *chunk_get(const kubefake *kf, const char *path, int limit, const char *cont, long want)
{
    char url[2048];
    snprintf(url, sizeof url, "%s%climit=%d%s%s", path, strchr(path, '?') ? '&' : '?', limit,
             cont ? "&continue=" : "", cont ? cont : "");
    return kf_must(kf, "GET", url, NULL, NULL, want);
}

/* A list read chunk by chunk. */
typedef struct {
    int  chunks, items;
    bool counted;     /* every chunk but the last told remainingItemCount, and it was never less than the rest */
    char names[512];  /* in order, comma-separated */
} chunked;

/* Follows a list's chunks of `limit` to its end; every chunk must have the first one's resourceVersion. */
static void chunks_all(const kubefake *kf, const char *path, int limit, chunked *c)
{
    char cont[1024] = "", rv[32] = "";
    long told = -1;
    memset(c, 0, sizeof *c);
    c->counted = true;
    do {
        cJSON *doc = chunk_get(kf, path, limit, c->chunks ? cont : NULL, 200);
        const cJSON *meta = jget(doc, "metadata"), *it;
        const char *this_rv = harness_json_str(meta, "resourceVersion"), *next = harness_json_str(meta, "continue");
        assert_non_null(this_rv);
        if (!c->chunks)
            snprintf(rv, sizeof rv, "%s", this_rv);
        harness_assert_str(this_rv, rv);
        int n = cJSON_GetArraySize(jget(doc, "items"));
        assert_true(n <= limit);
        if (told >= 0)
            assert_true(told >= n);
        cJSON_ArrayForEach(it, jget(doc, "items"))
        {
            size_t len = strlen(c->names);
            snprintf(c->names + len, sizeof c->names - len, "%s%s", len ? "," : "",
                     harness_json_str(jget(it, "metadata"), "name"));
        }
        c->items += n;
        told = next ? (long)harness_json_num(meta, "remainingItemCount", -1) : -1;
        if (next && told < 0)
            c->counted = false;
        assert_true(!next || strlen(next) < sizeof cont);
        snprintf(cont, sizeof cont, "%s", next ? next : "");
        c->chunks++;
        cJSON_Delete(doc);
        assert_true(c->chunks <= 10);
    } while (cont[0]);
}

/* A list asked for in chunks (limit, continue) comes whole, in order, every chunk at the first one's
 * resourceVersion, with remainingItemCount unless a selector was given; kubectl --chunk-size=2 lists all five pods
 * through it. A token that is not one of ours is 400; after a compaction the token is 410 Expired with a token
 * that goes on; an armed compaction expires the next token once, and the list started again then succeeds. */
static void lists_come_in_chunks_and_expired_tokens_get_410(void **state)
{
    harness *h = *state;
    kubefake kf;
    const char *extra[] = { "--no-kubelet", NULL };
    kf_start(h, &kf, CHUNK_SEED, NULL, extra);
    chunked c;

    /* All namespaces, no selector: chunks of 2, 2 and 1, counted. */
    chunks_all(&kf, "/api/v1/pods", 2, &c);
    assert_int_equal(c.chunks, 3);
    assert_int_equal(c.items, 5);
    harness_assert_str(c.names, "c-0,c-1,c-2,c-3,c-4");
    assert_true(c.counted);
    /* A label selector in one namespace: chunks of 3 and 1, not counted (nor does the API server count them). */
    chunks_all(&kf, "/api/v1/namespaces/" NS "/pods?labelSelector=app%3Dchunk", 3, &c);
    assert_int_equal(c.chunks, 2);
    harness_assert_str(c.names, "c-1,c-2,c-3,c-4");
    assert_false(c.counted);
    /* Limit 0 (none), or one the list does not exceed: one chunk, no continue, no count. */
    cJSON *doc;
    for (int limit = 0; limit <= 5; limit += 5) {
        doc = chunk_get(&kf, "/api/v1/pods", limit, NULL, 200);
        assert_int_equal(cJSON_GetArraySize(jget(doc, "items")), 5);
        assert_null(jget(jget(doc, "metadata"), "continue"));
        assert_null(jget(jget(doc, "metadata"), "remainingItemCount"));
        cJSON_Delete(doc);
    }
    /* Every list is chunked: namespaces (default, kube-system, terraform) too. */
    doc = chunk_get(&kf, "/api/v1/namespaces", 1, NULL, 200);
    assert_int_equal(cJSON_GetArraySize(jget(doc, "items")), 1);
    assert_int_equal((int)harness_json_num(jget(doc, "metadata"), "remainingItemCount", -1), 2);
    cJSON_Delete(doc);

    /* Bad limits and tokens: 400 Status answers. */
    long status;
    static const char *const bad[] = {
        "/api/v1/pods?limit=two",
        "/api/v1/pods?limit=2&continue=not-a-token!",
        "/api/v1/pods?limit=2&continue=eyJ2IjoxfQ", /* base64url of {"v":1}: JSON, but not a token */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        doc = kf_api(&kf, "GET", bad[i], NULL, NULL, &status);
        assert_status(doc, status, 400, "BadRequest");
        if (i > 0)
            assert_non_null(strstr(harness_json_str(doc, "message"), "invalid continue token"));
        cJSON_Delete(doc);
    }

    /* A token from before a compaction: 410 Expired, and the token in the Status goes on from the same key. */
    doc = chunk_get(&kf, "/api/v1/pods", 2, NULL, 200);
    char cont[1024];
    snprintf(cont, sizeof cont, "%s", harness_json_str(jget(doc, "metadata"), "continue"));
    cJSON_Delete(doc);
    char path[1200];
    snprintf(path, sizeof path, "/api/v1/pods?limit=2&continue=%s&resourceVersion=7", cont);
    doc = kf_api(&kf, "GET", path, NULL, NULL, &status);
    assert_status(doc, status, 400, "BadRequest");
    cJSON_Delete(doc);
    cJSON_Delete(kf_must(&kf, "POST", "/admin/compact", NULL, NULL, 200));
    snprintf(path, sizeof path, "/api/v1/pods?limit=2&continue=%s", cont);
    doc = kf_api(&kf, "GET", path, NULL, NULL, &status);
    assert_status(doc, status, 410, "Expired");
    const char *onward = harness_json_str(jget(doc, "metadata"), "continue");
    assert_non_null(onward);
    cJSON *rest = chunk_get(&kf, "/api/v1/pods", 10, onward, 200);
    assert_int_equal(cJSON_GetArraySize(jget(rest, "items")), 3);
    harness_assert_str(harness_json_str(jget(cJSON_GetArrayItem(jget(rest, "items"), 0), "metadata"), "name"), "c-2");
    cJSON_Delete(rest);
    cJSON_Delete(doc);

    /* Armed once: the next token presented expires, whenever it was issued; a list started again is whole. */
    cJSON *armed = kf_must(&kf, "POST", "/admin/compact", NULL, "{\"expire_next\": 1}", 200);
    assert_int_equal((int)harness_json_num(armed, "expire_next", -2), 1);
    cJSON_Delete(armed);
    doc = chunk_get(&kf, "/api/v1/pods", 2, NULL, 200);
    snprintf(cont, sizeof cont, "%s", harness_json_str(jget(doc, "metadata"), "continue"));
    cJSON_Delete(doc);
    cJSON_Delete(chunk_get(&kf, "/api/v1/pods", 2, cont, 410));
    chunks_all(&kf, "/api/v1/pods", 2, &c);
    harness_assert_str(c.names, "c-0,c-1,c-2,c-3,c-4");
    doc = kf_must(&kf, "POST", "/admin/compact", NULL, "{\"expire_next\": -2}", 400);
    cJSON_Delete(doc);

    /* kubectl --chunk-size=2 (its default is 500) lists all five pods, following the tokens. */
    char bin[PATH_MAX];
    if (!find_kubectl(bin, sizeof bin)) {
        print_message("kubectl is not on PATH: not trying kubectl --chunk-size\n");
    } else {
        char *out = NULL;
        const char *get_pods[] = { "get", "pods", "--all-namespaces", "--chunk-size=2", NULL };
        int before = harness_count_substr(kf.proc->err_path, "continue=");
        assert_int_equal(kubectl(h, bin, &kf, get_pods, &out), 0);
        assert_non_null(out);
        print_message("kubectl get pods --all-namespaces --chunk-size=2:\n%s", out);
        for (int i = 0; i < 5; i++) {
            char row[16];
            snprintf(row, sizeof row, " c-%d ", i);
            assert_non_null(strstr(out, row));
        }
        free(out);
        assert_true(harness_count_substr(kf.proc->err_path, "continue=") - before >= 2);
    }
    harness_done(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(kubectl_lists_and_scales, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(pods_run_real_agents_on_their_own_addresses, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(scale_down_deletes_the_pod_with_the_lowest_deletion_cost, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(rbac_switch_forbids_and_token_is_required, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(lease_updates_need_the_current_resource_version, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(events_are_created_and_listed, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(no_kubelet_keeps_seeded_pods_and_runs_nothing, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(lists_come_in_chunks_and_expired_tokens_get_410, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(bad_input_gets_status_errors_and_the_server_keeps_serving, harness_setup,
                                        harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
