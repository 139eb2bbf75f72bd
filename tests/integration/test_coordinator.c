/* test_coordinator.c — iac-coordinator scaling a simulated pool: kube-fake runs each pod as a real iac-agent on its
 * own 127.0.0.N, the devplane queues and dispatches the tasks, fake-terraform plans and applies.
 *
 * Scenarios (issue 3):
 *   - six plan_and_apply tasks on a pool of one pod: the pool grows until each has a slot 0 and all six reach
 *     apply_pending; explain names the pod and slot of an apply_pending task, and why a seventh waits;
 *   - scale-down takes idle pods one per cycle down to min, never one with a reservation or a running apply;
 *   - meanwhile a pool whose Deployment does not exist is reported once: one log line and one Event in over 60 s;
 *   - two coordinators: exactly one acts; when it is killed the other takes over within 20 s;
 *   - RBAC refusing a verb is reported once, and lifting it lets the pool scale again;
 *   - a pool of 250 pods is listed in pages; a continue token that expires once starts the list over within the
 *     cycle, one that keeps expiring is the cycle's error, named. */
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "poolsim.h"
#include "taskplane.h"

#define NTASKS 6

/* Writes the coordinator's pools file: the simulated pool, and optionally a pool with no Deployment. */
static void write_pools(harness *h, const harness_devplane *dp, const ps_kube *k, int min, int max, bool ghost,
                        char *path, size_t pathlen)
{
    char token_file[HARNESS_PATH_LEN], text[4096];
    snprintf(token_file, sizeof token_file, "%s/pool-token", h->dir);
    assert_int_equal(harness_write_file(token_file, dp->token, strlen(dp->token)), 0);
    int n = snprintf(text, sizeof text,
                     "{\"pools\": [{\"id\": \"%s\", \"namespace\": \"" PS_NAMESPACE "\", \"deployment\": "
                     "\"iac-agent-%s\", \"agent_port\": %d, \"slots_per_pod\": 4, \"min_replicas\": %d, "
                     "\"max_replicas\": %d, \"headroom\": {\"slot0\": 0, \"plan\": 0}, \"scale_down_window\": \"2s\", "
                     "\"max_remove_per_cycle\": 1, \"pod_startup_timeout\": \"60s\", "
                     "\"demand_url\": \"http://127.0.0.1:%d/admin/demand\", \"token_file\": \"%s\"}%s]}",
                     dp->pool, dp->pool, k->agent_port, min, max, dp->api_port, token_file,
                     ghost ? ", {\"id\": \"pool-ghost\", \"namespace\": \"" PS_NAMESPACE "\", \"deployment\": "
                             "\"iac-agent-pool-ghost\", \"min_replicas\": 1, \"max_replicas\": 3}" : "");
    snprintf(path, pathlen, "%s/pools.json", h->dir);
    assert_int_equal(harness_write_file(path, text, (size_t)n), 0);
}

typedef struct {
    const ps_kube *k;
    const char    *pool;
    int            want;
} pods_wait;

static bool pods_are(void *arg)
{
    pods_wait *w = arg;
    return ps_pod_count(w->k, w->pool, true) == w->want;
}

static bool replicas_are(void *arg)
{
    pods_wait *w = arg;
    return ps_replicas(w->k, w->pool) == w->want;
}

/* The pods' slot-0 task ids as the coordinator sees them: "pod name" → task id, in out (n entries). */
typedef struct {
    char name[128];
    long slot0_task;
    char slot0_status[16];
} pod_row;

static int coord_pods(const ps_coord *c, const char *pool, pod_row *out, int max)
{
    cJSON *doc = NULL;
    const cJSON *p = ps_coord_pool(c, pool, &doc);
    int n = 0;
    const cJSON *pod;
    cJSON_ArrayForEach(pod, cJSON_GetObjectItem(p, "pods")) {
        if (n == max)
            break;
        pod_row *r = &out[n++];
        memset(r, 0, sizeof *r);
        snprintf(r->name, sizeof r->name, "%s", harness_json_str(pod, "name") ? harness_json_str(pod, "name") : "");
        const cJSON *s0 = cJSON_GetArrayItem(cJSON_GetObjectItem(pod, "slots"), 0);
        r->slot0_task = (long)harness_json_num(s0, "task_id", 0);
        const char *st = harness_json_str(s0, "status");
        snprintf(r->slot0_status, sizeof r->slot0_status, "%s", st ? st : "");
    }
    cJSON_Delete(doc);
    return n;
}

/* The name of the pod whose slot 0 holds task, or "" (out has room for 128). */
static void pod_of_task(const ps_coord *c, const char *pool, long task, char *out)
{
    pod_row rows[32];
    int n = coord_pods(c, pool, rows, 32);
    out[0] = '\0';
    for (int i = 0; i < n; i++)
        if (rows[i].slot0_task == task)
            memcpy(out, rows[i].name, sizeof rows[i].name);
}

/* Whether kube-fake still lists the pod, and not as terminating. */
static bool pod_alive(const ps_kube *k, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "/api/v1/namespaces/" PS_NAMESPACE "/pods/%s", name);
    long status = 0;
    cJSON *doc = ps_kube_call(k, "GET", path, NULL, NULL, &status);
    bool alive = status == 200 && !cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "metadata"), "deletionTimestamp");
    cJSON_Delete(doc);
    return alive;
}

typedef struct {
    const ps_coord *c;
    long            task;
    const char     *needle; /* in the explain text */
    const char     *status; /* explain's "status", or NULL for any */
    char            pod[128]; /* filled: the pod explain names */
    long            slot;
} explain_wait;

static bool explain_says(void *arg)
{
    explain_wait *w = arg;
    char path[64];
    snprintf(path, sizeof path, "/v1/explain?task_id=%ld", w->task);
    cJSON *doc = ps_coord_get(w->c, path);
    const char *text = harness_json_str(doc, "text");
    const char *status = harness_json_str(doc, "status");
    const char *pod = harness_json_str(doc, "pod");
    bool ok = text && (!w->needle || strstr(text, w->needle)) &&
              (!w->status || (status && strcmp(status, w->status) == 0));
    if (ok) {
        snprintf(w->pod, sizeof w->pod, "%s", pod ? pod : "");
        w->slot = (long)harness_json_num(doc, "slot", -1);
    }
    cJSON_Delete(doc);
    return ok;
}

static void print_explain(const ps_coord *c, long task)
{
    char path[64];
    snprintf(path, sizeof path, "/v1/explain?task_id=%ld", task);
    cJSON *doc = ps_coord_get(c, path);
    char *s = doc ? cJSON_Print(doc) : NULL;
    print_message("explain %ld: %s\n", task, s ? s : "(no answer)");
    free(s);
    cJSON_Delete(doc);
}

/* The pool grows to one pod per apply_pending task, explain tells where they are and why a seventh waits, idle
 * pods go one per cycle down to min and never a busy or reserved one, and a pool without a Deployment is reported
 * exactly once over the whole run. */
static void pool_grows_for_applies_and_shrinks_safely(void **state)
{
    harness *h = *state;
    harness_devplane dp = { 0 };
    harness_devplane_init(h, &dp);
    assert_int_equal(harness_devplane_start(h, &dp), 0);

    int agent_port = harness_free_port();
    cJSON *items = cJSON_CreateArray();
    /* Applies take long enough (two resources × 6 s) to be running while idle pods are removed. */
    const char *knobs[] = { "FAKE_TF_APPLY_DELAY_MS=6000", NULL };
    ps_seed_pool(h, items, &dp, dp.pool, 1, agent_port, knobs);
    ps_kube k;
    ps_kube_start(h, &k, items, "127.0.0.20", agent_port);

    char pools[HARNESS_PATH_LEN];
    write_pools(h, &dp, &k, 1, NTASKS, true, pools, sizeof pools);
    ps_coord c;
    const char *flags[] = { "--cycle", "1s", "--leader-elect=false", NULL };
    ps_coord_start(h, &c, &k, pools, "coord-a", flags);
    int64_t coord_started = harness_now_ms();

    /* One pod, Ready, its agent connected. */
    pods_wait one = { &k, dp.pool, 1 };
    assert_true(harness_wait_until(pods_are, &one, 10000) >= 0);
    harness_hb_wait hb = { .dp = &dp, .min_heartbeats = 1 };
    assert_true(harness_wait_until(harness_pred_heartbeat, &hb, 15000) >= 0);

    /* Six plan_and_apply tasks, one per workspace. */
    long task[NTASKS + 1];
    char ws[NTASKS + 1][64];
    for (int i = 0; i <= NTASKS; i++) {
        char name[32];
        snprintf(name, sizeof name, "ws%d", i);
        tp_create_workspace(&dp, TP_WORKSPACE_TWO, name, ws[i], sizeof ws[i]);
    }
    for (int i = 0; i < NTASKS; i++)
        task[i] = tp_queue_task(&dp, ws[i], "plan_and_apply");
    for (int i = 0; i < NTASKS; i++)
        cJSON_Delete(tp_wait_task(&dp, task[i], "apply_pending", 90000));
    assert_int_equal(ps_replicas(&k, dp.pool), NTASKS);

    /* Each apply_pending task holds slot 0 of its own pod, as explain and the pool view both say. */
    char holder[NTASKS][128];
    for (int i = 0; i < NTASKS; i++) {
        explain_wait ew = { .c = &c, .task = task[i], .needle = "apply_pending", .status = "reserved" };
        if (harness_wait_until(explain_says, &ew, 15000) < 0) {
            print_explain(&c, task[i]);
            fail_msg("explain does not place task %ld on a reserved slot 0", task[i]);
        }
        assert_int_equal(ew.slot, 0);
        assert_true(ew.pod[0] != '\0');
        assert_non_null(strstr(ew.pod, "iac-agent-"));
        memcpy(holder[i], ew.pod, sizeof holder[i]);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(holder[i], holder[j]);
        char in_view[128];
        pod_of_task(&c, dp.pool, task[i], in_view);
        assert_string_equal(in_view, holder[i]);
    }
    print_explain(&c, task[0]);

    /* A seventh waits: every slot 0 is reserved and the pool is at max. */
    task[NTASKS] = tp_queue_task(&dp, ws[NTASKS], "plan_and_apply");
    explain_wait at_max = { .c = &c, .task = task[NTASKS], .needle = "max", .status = "waiting" };
    if (harness_wait_until(explain_says, &at_max, 10000) < 0) {
        print_explain(&c, task[NTASKS]);
        fail_msg("explain does not say why task %ld waits", task[NTASKS]);
    }
    print_explain(&c, task[NTASKS]);
    char path[128];
    snprintf(path, sizeof path, "/admin/tasks/%ld/cancel", task[NTASKS]);
    cJSON_Delete(tp_admin_json(&dp, "POST", path, NULL, 200));

    /* Task 0 applies (running for ~12 s); tasks 1–3 are cancelled (their reservations end); 4 and 5 stay
     * reserved. The pods of 1–3 go, one per cycle; the pods of 0, 4 and 5 never do. */
    snprintf(path, sizeof path, "/admin/tasks/%ld/confirm", task[0]);
    cJSON_Delete(tp_admin_json(&dp, "POST", path, "{\"apply_description\": \"go\"}", 200));
    cJSON_Delete(tp_wait_task(&dp, task[0], "running", 10000));
    for (int i = 1; i <= 3; i++) {
        snprintf(path, sizeof path, "/admin/tasks/%ld/cancel", task[i]);
        cJSON_Delete(tp_admin_json(&dp, "POST", path, NULL, 200));
    }
    int last = ps_replicas(&k, dp.pool);
    int64_t deadline = harness_now_ms() + 30000;
    while (harness_now_ms() < deadline && ps_pod_count(&k, dp.pool, true) != 3) {
        int now = ps_replicas(&k, dp.pool);
        assert_true(now >= last - 1); /* never two pods in one cycle (polled 5× per cycle) */
        last = now;
        assert_true(pod_alive(&k, holder[0]));
        assert_true(pod_alive(&k, holder[4]));
        assert_true(pod_alive(&k, holder[5]));
        usleep(200 * 1000);
    }
    assert_int_equal(ps_pod_count(&k, dp.pool, true), 3);
    assert_true(pod_alive(&k, holder[0]) && pod_alive(&k, holder[4]) && pod_alive(&k, holder[5]));
    cJSON *t0 = tp_task_doc(&dp, task[0]);
    harness_assert_str(harness_json_str(t0, "status"), "running"); /* the apply was running all along */
    cJSON_Delete(t0);
    char deploy[96];
    snprintf(deploy, sizeof deploy, "iac-agent-%s", dp.pool);
    assert_true(ps_event_count(&k, deploy, "ScaledDown") >= 3);

    /* The apply finishes, the last reservations are cancelled: down to min (1). */
    cJSON_Delete(tp_wait_task(&dp, task[0], "applied", 60000));
    for (int i = 4; i <= 5; i++) {
        snprintf(path, sizeof path, "/admin/tasks/%ld/cancel", task[i]);
        cJSON_Delete(tp_admin_json(&dp, "POST", path, NULL, 200));
    }
    pods_wait at_min = { &k, dp.pool, 1 };
    assert_true(harness_wait_until(pods_are, &at_min, 30000) >= 0);
    assert_int_equal(ps_replicas(&k, dp.pool), 1);

    /* The pool without a Deployment: one log line and one Event, however many cycles ran (over 60 s). */
    int64_t ran = harness_now_ms() - coord_started;
    if (ran < 61000)
        usleep((useconds_t)(61000 - ran) * 1000);
    assert_int_equal(harness_count_substr(c.proc->err_path, "pool \"pool-ghost\""), 1);
    assert_true(harness_file_contains(c.proc->err_path, "deployment " PS_NAMESPACE "/iac-agent-pool-ghost not found"));
    assert_int_equal(ps_event_count(&k, "iac-agent-pool-ghost", NULL), 1);
    cJSON *ghost_doc = NULL;
    const cJSON *ghost = ps_coord_pool(&c, "pool-ghost", &ghost_doc);
    assert_non_null(ghost);
    cJSON_Delete(ghost_doc);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", c.port);
    harness_resp r = { 0 };
    assert_int_equal(harness_http("GET", url, NULL, NULL, &r), 200);
    assert_non_null(strstr(r.body, "iac_pool_config_error{pool=\"pool-ghost\",reason=\"deployment_not_found\"} 1"));
    harness_resp_free(&r);
    harness_done(h);
}

typedef struct {
    const ps_coord *c;
} leader_wait;

static bool is_leader(void *arg)
{
    const ps_coord *c = arg;
    cJSON *doc = ps_coord_get(c, "/v1/pools");
    bool yes = harness_json_true(doc, "leader");
    cJSON_Delete(doc);
    return yes;
}

static long scale_ups(const ps_coord *c, const char *pool)
{
    cJSON *doc = NULL;
    const cJSON *p = ps_coord_pool(c, pool, &doc);
    const cJSON *counters = cJSON_GetObjectItem(p, "counters");
    long n = (long)harness_json_num(counters ? counters : p, "scale_ups", -1);
    cJSON_Delete(doc);
    return n;
}

/* Two coordinators share a Lease: exactly one acts; killed, it is replaced by the other within 20 s. */
static void one_leader_acts_and_the_other_takes_over(void **state)
{
    harness *h = *state;
    harness_devplane dp = { 0 };
    harness_devplane_init(h, &dp);
    assert_int_equal(harness_devplane_start(h, &dp), 0);
    int agent_port = harness_free_port();
    cJSON *items = cJSON_CreateArray();
    ps_seed_pool(h, items, &dp, dp.pool, 1, agent_port, NULL);
    ps_kube k;
    ps_kube_start(h, &k, items, "127.0.0.40", agent_port);
    char pools[HARNESS_PATH_LEN];
    write_pools(h, &dp, &k, 2, 4, false, pools, sizeof pools);

    ps_coord a, b;
    const char *flags[] = { "--cycle", "1s", "--lease-namespace", PS_NAMESPACE, NULL };
    ps_coord_start(h, &a, &k, pools, "coord-a", flags);
    assert_true(harness_wait_until(is_leader, &a, 10000) >= 0);
    ps_coord_start(h, &b, &k, pools, "coord-b", flags);

    /* min 2 > replicas 1: the leader scales up; the other only watches. */
    pods_wait two = { &k, dp.pool, 2 };
    assert_true(harness_wait_until(pods_are, &two, 15000) >= 0);
    usleep(3000 * 1000);
    assert_true(is_leader(&a));
    assert_false(is_leader(&b));
    assert_int_equal(scale_ups(&a, dp.pool), 1);
    assert_int_equal(scale_ups(&b, dp.pool), 0);
    char deploy[96], scale_path[256];
    snprintf(deploy, sizeof deploy, "iac-agent-%s", dp.pool);
    assert_int_equal(ps_event_count(&k, deploy, "ScaledUp"), 1);

    /* Kill the leader without a chance to release: the other takes over within 20 s and acts. */
    int64_t killed = harness_now_ms();
    harness_kill(a.proc, SIGKILL);
    harness_wait_exit(a.proc, 5000, NULL);
    assert_true(harness_wait_until(is_leader, &b, 20000) >= 0);
    print_message("takeover after %lld ms\n", (long long)(harness_now_ms() - killed));
    assert_true(harness_now_ms() - killed <= 20000);
    long status = 0;
    snprintf(scale_path, sizeof scale_path, "/apis/apps/v1/namespaces/" PS_NAMESPACE "/deployments/%s/scale", deploy);
    cJSON_Delete(ps_kube_call(&k, "PATCH", scale_path, "application/merge-patch+json", "{\"spec\":{\"replicas\":1}}",
                              &status));
    assert_int_equal(status, 200);
    assert_true(harness_wait_until(replicas_are, &two, 15000) >= 0);
    assert_true(scale_ups(&b, dp.pool) >= 1);
    harness_done(h);
}

typedef struct {
    const ps_coord *c;
    const char     *pool;
    const char     *reason; /* config_error.reason wanted, NULL for none */
} config_wait;

static bool config_error_is(void *arg)
{
    config_wait *w = arg;
    cJSON *doc = NULL;
    const cJSON *p = ps_coord_pool(w->c, w->pool, &doc);
    const cJSON *err = cJSON_GetObjectItem(p, "config_error");
    const char *reason = harness_json_str(err, "reason");
    bool ok = p && harness_json_true(p, "observed") &&
              (w->reason ? reason && strcmp(reason, w->reason) == 0 : (!err || cJSON_IsNull(err)));
    cJSON_Delete(doc);
    return ok;
}

/* RBAC refusing the scale subresource is a configuration error of the pool: reported once (a log line naming the
 * verb and resource), nothing is scaled while it stands, and lifting it lets the pool scale. */
static void rbac_refusal_is_reported_once_and_lifting_it_resumes_scaling(void **state)
{
    harness *h = *state;
    harness_devplane dp = { 0 };
    harness_devplane_init(h, &dp);
    assert_int_equal(harness_devplane_start(h, &dp), 0);
    int agent_port = harness_free_port();
    cJSON *items = cJSON_CreateArray();
    ps_seed_pool(h, items, &dp, dp.pool, 1, agent_port, NULL);
    ps_kube k;
    ps_kube_start(h, &k, items, "127.0.0.60", agent_port);
    long status = 0;
    cJSON_Delete(ps_kube_call(&k, "POST", "/admin/rbac", NULL, "{\"deny\": [\"patch:deployments/scale\"]}", &status));
    assert_int_equal(status, 200);

    char pools[HARNESS_PATH_LEN];
    write_pools(h, &dp, &k, 2, 4, false, pools, sizeof pools); /* min 2: the pool wants to grow */
    ps_coord c;
    const char *flags[] = { "--cycle", "500ms", "--leader-elect=false", NULL };
    ps_coord_start(h, &c, &k, pools, "coord-a", flags);

    config_wait denied = { &c, dp.pool, "rbac_denied" };
    assert_true(harness_wait_until(config_error_is, &denied, 10000) >= 0);
    usleep(3000 * 1000); /* six more cycles */
    assert_int_equal(harness_count_substr(c.proc->err_path, "RBAC does not allow patch deployments/scale"), 1);
    assert_int_equal(ps_replicas(&k, dp.pool), 1);
    char deploy[96];
    snprintf(deploy, sizeof deploy, "iac-agent-%s", dp.pool);
    assert_int_equal(ps_event_count(&k, deploy, "PoolConfigError"), 1);

    cJSON_Delete(ps_kube_call(&k, "POST", "/admin/rbac", NULL, "{\"deny\": []}", &status));
    assert_int_equal(status, 200);
    config_wait fine = { &c, dp.pool, NULL };
    assert_true(harness_wait_until(config_error_is, &fine, 10000) >= 0);
    pods_wait two = { &k, dp.pool, 2 };
    assert_true(harness_wait_until(replicas_are, &two, 10000) >= 0);
    assert_true(harness_file_contains(c.proc->err_path, "configuration error resolved"));
    harness_done(h);
}

/* ---- the pod list in pages ---- */

#define BIG_POOL "pool-big"
#define BIG_PODS 250

/* The Deployment of BIG_POOL (replicas BIG_PODS) and its BIG_PODS pods, Running but not Ready: the coordinator
 * lists them and asks no agent. */
static cJSON *big_pool_seed(void)
{
    char text[1024];
    cJSON *items = cJSON_CreateArray();
    snprintf(text, sizeof text,
             "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"iac-agent-" BIG_POOL "\","
             "\"namespace\":\"" PS_NAMESPACE "\"},\"spec\":{\"replicas\":%d,\"selector\":{\"matchLabels\":"
             "{\"pool-id\":\"" BIG_POOL "\"}},\"template\":{\"metadata\":{\"labels\":{\"pool-id\":\"" BIG_POOL "\"}},"
             "\"spec\":{\"containers\":[{\"name\":\"agent\",\"image\":\"iac-agent\"}]}}}}",
             BIG_PODS);
    cJSON_AddItemToArray(items, cJSON_Parse(text));
    for (int i = 0; i < BIG_PODS; i++) {
        snprintf(text, sizeof text,
                 "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"iac-agent-" BIG_POOL "-%03d\","
                 "\"namespace\":\"" PS_NAMESPACE "\",\"labels\":{\"pool-id\":\"" BIG_POOL "\"}},"
                 "\"spec\":{\"containers\":[{\"name\":\"agent\",\"image\":\"iac-agent\"}]},"
                 "\"status\":{\"phase\":\"Running\",\"podIP\":\"127.0.9.%d\"}}",
                 i, 1 + i % 250);
        cJSON_AddItemToArray(items, cJSON_Parse(text));
    }
    return items;
}

typedef struct {
    const ps_coord *c;
    long            after;  /* a view of a cycle after this one */
    int             pods;   /* … listing this many pods */
    const char     *error;  /* … with a cycle error containing this, or NULL for none */
    long            cycles; /* filled: the cycle of the view that matched */
} big_wait;

static bool big_view_is(void *arg)
{
    big_wait *w = arg;
    cJSON *doc = NULL;
    const cJSON *p = ps_coord_pool(w->c, BIG_POOL, &doc);
    const cJSON *err = cJSON_GetObjectItem(p, "cycle_error");
    long cycles = (long)harness_json_num(cJSON_GetObjectItem(p, "counters"), "cycles", -1);
    bool ok = p && harness_json_true(p, "observed") && cycles > w->after &&
              cJSON_GetArraySize(cJSON_GetObjectItem(p, "pods")) == w->pods &&
              (w->error ? cJSON_IsString(err) && strstr(err->valuestring, w->error)
                        : !err || cJSON_IsNull(err));
    if (ok)
        w->cycles = cycles;
    cJSON_Delete(doc);
    return ok;
}

static void compact(const ps_kube *k, int expire_next)
{
    char body[64];
    long status = 0;
    snprintf(body, sizeof body, "{\"expire_next\": %d}", expire_next);
    cJSON_Delete(ps_kube_call(k, "POST", "/admin/compact", NULL, body, &status));
    assert_int_equal(status, 200);
}

/* A pool of 250 pods is listed in pages (limit and continue, as client-go's pager asks); a continue token that
 * expires (410, the API server compacted) starts the list over within the same cycle, which sees every pod and
 * no error; a token that expires again is the cycle's error, naming the 410, and the cycle shows no partial list;
 * once tokens last again, so does the pool's view. */
static void pod_list_comes_in_pages_and_an_expired_token_starts_it_over(void **state)
{
    harness *h = *state;
    ps_kube k;
    ps_kube_start(h, &k, big_pool_seed(), NULL, 0);
    char pools[HARNESS_PATH_LEN], text[1024];
    snprintf(pools, sizeof pools, "%s/pools.json", h->dir);
    int n = snprintf(text, sizeof text,
                     "{\"pools\": [{\"id\": \"" BIG_POOL "\", \"namespace\": \"" PS_NAMESPACE "\", \"deployment\": "
                     "\"iac-agent-" BIG_POOL "\", \"slots_per_pod\": 4, \"min_replicas\": %d, \"max_replicas\": %d, "
                     "\"headroom\": {\"slot0\": 0, \"plan\": 0}, \"pod_startup_timeout\": \"10m\"}]}",
                     BIG_PODS, BIG_PODS);
    assert_int_equal(harness_write_file(pools, text, (size_t)n), 0);
    ps_coord c;
    const char *flags[] = { "--cycle", "300ms", "--leader-elect=false", NULL };
    ps_coord_start(h, &c, &k, pools, "coord-a", flags);

    /* Every pod, in pages: the first without a token, the others with the token of the page before. */
    big_wait all = { .c = &c, .after = 0, .pods = BIG_PODS };
    assert_true(harness_wait_until(big_view_is, &all, 10000) >= 0);
    const char *list = "GET /api/v1/namespaces/" PS_NAMESPACE "/pods?labelSelector=pool-id%3D" BIG_POOL "&limit=";
    assert_true(harness_count_substr(k.proc->err_path, list) >= 3);
    assert_true(harness_count_substr(k.proc->err_path, "&continue=") >= 2);
    assert_int_equal(harness_count_substr(k.proc->err_path, "-> 410"), 0);

    /* The next token presented expires: that cycle starts the list over and sees every pod, without an error. */
    compact(&k, 1);
    big_wait after = { .c = &c, .after = all.cycles + 3, .pods = BIG_PODS };
    assert_true(harness_wait_until(big_view_is, &after, 10000) >= 0);
    assert_int_equal(harness_count_substr(k.proc->err_path, "-> 410"), 1);
    assert_int_equal(harness_count_substr(c.proc->err_path, "list pods"), 0); /* no cycle error, ever */

    /* Every token expires: a second expiry is the cycle's error, and the view holds no partial list. */
    compact(&k, -1);
    big_wait failing = { .c = &c, .after = after.cycles, .pods = 0, .error = "HTTP 410 Expired" };
    assert_true(harness_wait_until(big_view_is, &failing, 10000) >= 0);
    cJSON *doc = NULL;
    const cJSON *p = ps_coord_pool(&c, BIG_POOL, &doc);
    const char *why = harness_json_str(p, "cycle_error");
    print_message("cycle error: %s\n", why ? why : "(none)");
    assert_non_null(why);
    assert_non_null(strstr(why, "list pods"));
    assert_non_null(strstr(why, "started over"));
    cJSON_Delete(doc);
    assert_int_equal(harness_count_substr(c.proc->err_path, "HTTP 410 Expired"), 1); /* logged once */

    /* Tokens last again: every pod, no error. */
    compact(&k, 0);
    big_wait healed = { .c = &c, .after = failing.cycles, .pods = BIG_PODS };
    assert_true(harness_wait_until(big_view_is, &healed, 10000) >= 0);
    assert_int_equal(ps_replicas(&k, BIG_POOL), BIG_PODS);
    harness_done(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(pool_grows_for_applies_and_shrinks_safely, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(one_leader_acts_and_the_other_takes_over, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(rbac_refusal_is_reported_once_and_lifting_it_resumes_scaling, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(pod_list_comes_in_pages_and_an_expired_token_starts_it_over, harness_setup,
                                        harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
