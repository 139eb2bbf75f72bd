/* test_api.c — the coordinator's read API (coordinator/api.h) over real loopback HTTP.
 *
 * The api serves hand-built pool states on 127.0.0.1 (ephemeral port); common/httpc queries it on the same loop.
 * Each request runs the loop until its callback stops it; an unref'd watchdog fails a test that would hang. The
 * clock is fixed through the source's now_ms, so ages are exact. Two pools:
 *   pool-a  observed, 3 pods: pod-a-0 slot 0 reserved for task 598 (3 min), pod-a-1 planning task 801 on
 *           slot 1, pod-a-2 Pending for 12 s; decision scale up 3→4; task 1001 waiting for a slot 0;
 *   pool-b  not observed yet, configuration error deployment_not_found. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <libwebsockets.h>
#include <uv.h>

#include "../../coordinator/api.h"
#include "iac/httpc.h"

#define NOW    1700000000000LL
#define MIN_MS 60000LL

typedef struct {
    uv_loop_t    loop;
    uv_timer_t   watchdog;
    bool         timed_out;
    api         *srv;
    httpc       *client;
    poolcfg_pool cfg[2];
    pool_state   st[2];
    int          npools;
    bool         leader;
    const char  *holder;      /* NULL: no holder callback */
    const char  *not_ready;   /* main's readiness says no with this */
    /* the last response */
    bool   done;
    int    error;
    long   status;
    char  *body;
} fixture;

/* ---- the source ---- */

static const pool_state *src_pool(void *arg, int i) { return &((fixture *)arg)->st[i]; }
static bool src_leader(void *arg) { return ((fixture *)arg)->leader; }
static const char *src_holder(void *arg) { return ((fixture *)arg)->holder; }
static int64_t src_now(void *arg) { (void)arg; return NOW; }
static bool src_ready(void *arg, char *why, size_t n)
{
    fixture *f = arg;
    if (f->not_ready)
        snprintf(why, n, "%s", f->not_ready);
    return !f->not_ready;
}

static void slot_set(view_pod *p, int s, slot_status st, uint64_t task, task_type type, bool apply, int64_t since)
{
    p->slots[s] = (view_slot){ st, task, type, apply, since };
}

static void pod_init(view_pod *p, const char *name, int i)
{
    snprintf(p->name, sizeof p->name, "%s", name);
    snprintf(p->ip, sizeof p->ip, "10.0.0.%d", i + 1);
    snprintf(p->phase, sizeof p->phase, "Running");
    snprintf(p->agent_id, sizeof p->agent_id, "agent-%d", i);
    p->ready = p->has_status = p->connected = true;
    p->created_ms = NOW - 60 * MIN_MS;
    p->has_cost = true;
    p->deletion_cost = 100 * i;
    p->nslots = 3;
    for (int s = 0; s < 3; s++)
        slot_set(p, s, SLOT_IDLE, 0, TASK_TYPE_NONE, false, NOW - 60 * MIN_MS);
}

static void build_pools(fixture *f)
{
    for (int k = 0; k < 2; k++) {
        poolcfg_pool *c = &f->cfg[k];
        snprintf(c->id, sizeof c->id, "pool-%c", 'a' + k);
        snprintf(c->namespace_, sizeof c->namespace_, "terraform");
        snprintf(c->deployment, sizeof c->deployment, "iac-agent-pool-%c", 'a' + k);
        c->scale = (scaler_config){ 3, 1, 5, 1, 2, 0, 300000, 1, 5 * MIN_MS };
        snprintf(c->demand_url, sizeof c->demand_url, "http://plane/demand");
        f->st[k].cfg = c;
    }
    pool_state *a = &f->st[0];
    a->observed = true;
    a->observed_at_ms = NOW - 2000;
    a->leader = true;
    a->view.deployment_found = true;
    a->view.replicas = 3;
    a->view.ready_replicas = 2;
    a->view.npods = 3;
    a->view.pods = calloc(3, sizeof(view_pod));
    pod_init(&a->view.pods[0], "pod-a-0", 0);
    pod_init(&a->view.pods[1], "pod-a-1", 1);
    pod_init(&a->view.pods[2], "pod-a-2", 2);
    slot_set(&a->view.pods[0], 0, SLOT_RESERVED, 598, TASK_PLAN_AND_APPLY, true, NOW - 3 * MIN_MS);
    slot_set(&a->view.pods[1], 1, SLOT_RUNNING, 801, TASK_PLAN, false, NOW - MIN_MS);
    view_pod *starting = &a->view.pods[2];
    starting->ready = starting->has_status = starting->connected = starting->has_cost = false;
    starting->nslots = 0;
    starting->ip[0] = '\0';
    snprintf(starting->phase, sizeof starting->phase, "Pending");
    snprintf(starting->status_error, sizeof starting->status_error, "not Ready");
    starting->created_ms = NOW - 12000;
    a->view.demand_ok = true;
    a->view.demand = (scaler_demand){ 1, 0, 0 };
    a->view.nwaiting = 1;
    a->view.waiting = calloc(1, sizeof(view_waiting));
    a->view.waiting[0] = (view_waiting){ 1001, TASK_PLAN_AND_APPLY, NOW - 45000 };
    a->decided = true;
    a->decision.reason = SCALER_SCALE_UP;
    a->decision.desired = 4;
    snprintf(a->decision.text, sizeof a->decision.text, "demand 1 plan_and_apply; scaling 3\u21924");
    a->decision.need_slot0 = 2;
    a->decision.free_slot0 = 1;
    a->decision.need_plan = 2;
    a->decision.free_plan = 4;
    a->decision.coming_pods = 1;
    snprintf(a->last_action, sizeof a->last_action, "scaled 3\u21924");
    a->last_action_ms = NOW - 5000;
    a->cycles = 12;
    a->scale_ups = 2;
    a->scale_downs = 1;
    a->scale_down_aborted = 1;
    a->cycle_duration_ms = 250;

    pool_state *b = &f->st[1];
    b->config_error = true;
    snprintf(b->config_reason, sizeof b->config_reason, "deployment_not_found");
    snprintf(b->config_message, sizeof b->config_message,
             "deployment terraform/iac-agent-pool-b not found (check --namespace and --deployment)");
    b->config_error_since_ms = NOW - 5 * MIN_MS;
    snprintf(b->cycle_error, sizeof b->cycle_error, "GET deployments: HTTP 404");
    f->npools = 2;
}

/* ---- fixture ---- */

static void on_watchdog(uv_timer_t *t)
{
    fixture *f = t->data;
    f->timed_out = true;
    uv_stop(&f->loop);
}

static api *start_api(fixture *f, int port, char *err, size_t errlen)
{
    api_source src = { .npools = f->npools, .pool = src_pool, .is_leader = src_leader,
                       .holder = f->holder ? src_holder : NULL, .ready = src_ready, .now_ms = src_now,
                       .identity = "coord-1", .arg = f };
    return api_start(&f->loop, "127.0.0.1", port, &src, err, errlen);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_timer_init(&f->loop, &f->watchdog);
    f->watchdog.data = f;
    uv_timer_start(&f->watchdog, on_watchdog, 5000, 0);
    uv_unref((uv_handle_t *)&f->watchdog);
    build_pools(f);
    f->leader = true;
    char err[256];
    f->srv = start_api(f, 0, err, sizeof err);
    if (!f->srv)
        fail_msg("api_start: %s", err);
    httpc_opts o = { .connect_timeout_ms = 2000, .total_timeout_ms = 4000 };
    f->client = httpc_new(&f->loop, &o);
    assert_non_null(f->client);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    api_free(f->srv);
    httpc_free(f->client);
    uv_close((uv_handle_t *)&f->watchdog, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    for (int k = 0; k < 2; k++) {
        free(f->st[k].view.pods);
        free(f->st[k].view.waiting);
    }
    free(f->body);
    free(f);
    return 0;
}

static void on_response(const httpc_response *r, void *arg)
{
    fixture *f = arg;
    f->done = true;
    f->error = r->error;
    f->status = r->status;
    free(f->body);
    f->body = strdup(r->body);
    uv_stop(&f->loop);
}

/* One request; returns the status, the body in f->body. */
static long fetch(fixture *f, const char *method, const char *path)
{
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", api_port(f->srv), path);
    httpc_req r = { .method = method, .url = url, .mode = HTTPC_PLAIN };
    f->done = false;
    assert_non_null(httpc_request(f->client, &r, on_response, f));
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_false(f->timed_out);
    assert_true(f->done);
    assert_int_equal(f->error, HTTPC_OK);
    return f->status;
}

static cJSON *fetch_json(fixture *f, const char *path, long want_status)
{
    long st = fetch(f, "GET", path);
    if (st != want_status)
        fail_msg("GET %s: HTTP %ld, want %ld: %s", path, st, want_status, f->body);
    cJSON *j = cJSON_Parse(f->body);
    if (!j)
        fail_msg("GET %s: not JSON: %s", path, f->body);
    return j;
}

static const cJSON *get(const cJSON *o, const char *path)
{
    /* "a.b.0.c": members and array indexes */
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *cur = o;
    for (char *save = NULL, *tok = strtok_r(buf, ".", &save); tok && cur; tok = strtok_r(NULL, ".", &save))
        cur = (*tok >= '0' && *tok <= '9') ? cJSON_GetArrayItem(cur, atoi(tok))
                                           : cJSON_GetObjectItemCaseSensitive(cur, tok);
    if (!cur)
        fail_msg("no %s", path);
    return cur;
}

static const char *str_at(const cJSON *o, const char *path)
{
    const cJSON *v = get(o, path);
    if (!cJSON_IsString(v))
        fail_msg("%s is not a string", path);
    return v->valuestring;
}

static double num_at(const cJSON *o, const char *path)
{
    const cJSON *v = get(o, path);
    if (!cJSON_IsNumber(v))
        fail_msg("%s is not a number", path);
    return v->valuedouble;
}

/* ---- tests ---- */

/* /v1/pools carries the replica's identity and leadership and every pool: configuration summary, replicas,
 * decision with its counts, and every pod with its slots. */
static void pools_lists_every_pool_with_pods_and_slots(void **state)
{
    fixture *f = *state;
    cJSON *j = fetch_json(f, "/v1/pools", 200);
    assert_true(cJSON_IsTrue(get(j, "leader")));
    assert_string_equal(str_at(j, "identity"), "coord-1");
    assert_string_equal(str_at(j, "holder"), "coord-1");
    assert_int_equal(cJSON_GetArraySize(get(j, "pools")), 2);
    const cJSON *a = get(j, "pools.0");
    assert_string_equal(str_at(a, "id"), "pool-a");
    assert_string_equal(str_at(a, "namespace"), "terraform");
    assert_string_equal(str_at(a, "deployment"), "iac-agent-pool-a");
    assert_int_equal(num_at(a, "min_replicas"), 1);
    assert_int_equal(num_at(a, "max_replicas"), 5);
    assert_int_equal(num_at(a, "slots_per_pod"), 3);
    assert_int_equal(num_at(a, "headroom.slot0"), 1);
    assert_int_equal(num_at(a, "headroom.plan"), 2);
    assert_true(cJSON_IsTrue(get(a, "observed")));
    assert_int_equal(num_at(a, "replicas"), 3);
    assert_int_equal(num_at(a, "ready_replicas"), 2);
    assert_int_equal(num_at(a, "desired"), 4);
    assert_int_equal(num_at(a, "starting_pods"), 1);
    assert_string_equal(str_at(a, "decision.reason"), "scale up");
    assert_non_null(strstr(str_at(a, "decision.text"), "scaling 3\u21924"));
    assert_int_equal(num_at(a, "decision.need_slot0"), 2);
    assert_int_equal(num_at(a, "decision.free_slot0"), 1);
    assert_int_equal(num_at(a, "decision.coming_pods"), 1);
    assert_int_equal(num_at(a, "slots.slot0.free"), 1);
    assert_int_equal(num_at(a, "slots.slot0.reserved"), 1);
    assert_int_equal(num_at(a, "slots.plan.busy"), 1);
    assert_int_equal(num_at(a, "slots.plan.free"), 3);
    assert_int_equal(num_at(a, "demand.plan_and_apply"), 1);
    assert_int_equal(num_at(a, "demand.waiting.0.task_id"), 1001);
    assert_string_equal(str_at(a, "demand.waiting.0.task_type"), "plan_and_apply");
    assert_true(cJSON_IsNull(get(a, "config_error")));
    assert_true(cJSON_IsNull(get(a, "cycle_error")));
    assert_string_equal(str_at(a, "last_action.text"), "scaled 3\u21924");
    assert_int_equal(num_at(a, "counters.cycles"), 12);
    assert_int_equal(num_at(a, "counters.scale_down_aborted"), 1);
    assert_int_equal(num_at(a, "counters.cycle_duration_ms"), 250);
    /* pods */
    assert_int_equal(cJSON_GetArraySize(get(a, "pods")), 3);
    const cJSON *p0 = get(a, "pods.0");
    assert_string_equal(str_at(p0, "name"), "pod-a-0");
    assert_string_equal(str_at(p0, "ip"), "10.0.0.1");
    assert_string_equal(str_at(p0, "phase"), "Running");
    assert_true(cJSON_IsTrue(get(p0, "ready")));
    assert_true(cJSON_IsFalse(get(p0, "terminating")));
    assert_int_equal(num_at(p0, "age"), 3600);
    assert_int_equal(num_at(p0, "deletion_cost"), 0);
    assert_string_equal(str_at(p0, "agent_state"), "ready");
    assert_string_equal(str_at(p0, "agent_id"), "agent-0");
    assert_int_equal(cJSON_GetArraySize(get(p0, "slots")), 3);
    assert_int_equal(num_at(p0, "slots.0.slot_id"), 0);
    assert_string_equal(str_at(p0, "slots.0.status"), "reserved");
    assert_int_equal(num_at(p0, "slots.0.task_id"), 598);
    assert_string_equal(str_at(p0, "slots.0.task_type"), "plan_and_apply");
    assert_string_equal(str_at(p0, "slots.0.action"), "apply");
    assert_int_equal(num_at(p0, "slots.0.since"), (NOW - 3 * MIN_MS) / 1000);
    assert_string_equal(str_at(p0, "slots.1.status"), "idle");
    assert_true(cJSON_IsNull(get(p0, "slots.1.task_id")));
    assert_string_equal(str_at(a, "pods.1.slots.1.action"), "plan");
    const cJSON *p2 = get(a, "pods.2");
    assert_string_equal(str_at(p2, "phase"), "Pending");
    assert_int_equal(num_at(p2, "age"), 12);
    assert_true(cJSON_IsNull(get(p2, "ip")));
    assert_true(cJSON_IsNull(get(p2, "deletion_cost")));
    assert_true(cJSON_IsNull(get(p2, "agent_state")));
    assert_string_equal(str_at(p2, "agent_error"), "not Ready");
    assert_int_equal(cJSON_GetArraySize(get(p2, "slots")), 0);
    cJSON_Delete(j);
}

/* /v1/pools/{id} answers one pool, including a broken one's configuration error; an unknown id is a 404 JSON
 * error. */
static void pool_by_id_and_unknown_pool(void **state)
{
    fixture *f = *state;
    cJSON *j = fetch_json(f, "/v1/pools/pool-b", 200);
    assert_string_equal(str_at(j, "id"), "pool-b");
    assert_true(cJSON_IsFalse(get(j, "observed")));
    assert_true(cJSON_IsNull(get(j, "decision")));
    assert_string_equal(str_at(j, "config_error.reason"), "deployment_not_found");
    assert_non_null(strstr(str_at(j, "config_error.message"), "iac-agent-pool-b not found"));
    assert_int_equal(num_at(j, "config_error.since"), (NOW - 5 * MIN_MS) / 1000);
    assert_string_equal(str_at(j, "cycle_error"), "GET deployments: HTTP 404");
    assert_int_equal(cJSON_GetArraySize(get(j, "pods")), 0);
    cJSON_Delete(j);

    j = fetch_json(f, "/v1/pools/pool-zz", 404);
    assert_non_null(strstr(str_at(j, "error"), "no pool \"pool-zz\""));
    cJSON_Delete(j);
    j = fetch_json(f, "/v1/pools/", 404);
    assert_non_null(get(j, "error"));
    cJSON_Delete(j);
}

/* /v1/explain answers where a task is (pod and slot of an apply_pending task) and why another waits. */
static void explain_names_the_slot_or_the_reason(void **state)
{
    fixture *f = *state;
    cJSON *j = fetch_json(f, "/v1/explain?task_id=598", 200);
    assert_true(cJSON_IsTrue(get(j, "found")));
    assert_string_equal(str_at(j, "pool"), "pool-a");
    assert_string_equal(str_at(j, "pod"), "pod-a-0");
    assert_int_equal(num_at(j, "slot"), 0);
    assert_string_equal(str_at(j, "status"), "reserved");
    assert_non_null(strstr(str_at(j, "phase"), "apply_pending"));
    cJSON_Delete(j);

    j = fetch_json(f, "/v1/explain?task_id=1001", 200);
    assert_true(cJSON_IsFalse(get(j, "found")));
    assert_true(cJSON_IsTrue(get(j, "waiting")));
    const char *text = str_at(j, "text");
    assert_non_null(strstr(text, "scaling 3\u21924"));
    assert_non_null(strstr(text, "pod pod-a-2 pending 12 s"));
    cJSON_Delete(j);

    /* nobody has it: the broken pool says so (incident 511) */
    j = fetch_json(f, "/v1/explain?task_id=77", 200);
    assert_non_null(strstr(str_at(j, "text"), "pool pool-b: configuration error (deployment_not_found)"));
    cJSON_Delete(j);
}

/* A missing, empty, non-numeric, zero or overflowing task_id is a 400 with a message that says what to give. */
static void explain_refuses_bad_task_ids(void **state)
{
    fixture *f = *state;
    static const struct { const char *path, *want; } bad[] = {
        { "/v1/explain", "task_id is required" },
        { "/v1/explain?other=1", "task_id is required" },
        { "/v1/explain?task_id=", "is not a task id" },
        { "/v1/explain?task_id=abc", "task_id \"abc\" is not a task id" },
        { "/v1/explain?task_id=12x", "is not a task id" },
        { "/v1/explain?task_id=-5", "is not a task id" },
        { "/v1/explain?task_id=0", "is not a task id" },
        { "/v1/explain?task_id=99999999999999999999999", "is not a task id" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *j = fetch_json(f, bad[i].path, 400);
        if (!strstr(str_at(j, "error"), bad[i].want))
            fail_msg("%s: error \"%s\", want \"%s\"", bad[i].path, str_at(j, "error"), bad[i].want);
        cJSON_Delete(j);
    }
}

static void assert_line(const char *page, const char *line)
{
    char want[512];
    snprintf(want, sizeof want, "\n%s\n", line);
    if (!strstr(page, want))
        fail_msg("metric line \"%s\" missing from:\n%s", line, page);
}

/* /metrics has every family the issue names, per pool, with bounded labels; a broken pool's config error is 1
 * with its reason and a sound pool's is 0 with reason "". */
static void metrics_show_pods_slots_reservations_and_errors(void **state)
{
    fixture *f = *state;
    assert_int_equal(fetch(f, "GET", "/metrics"), 200);
    const char *m = f->body;
    assert_line(m, "iac_coordinator_build_info{version=\"" IAC_VERSION "\"} 1");
    assert_line(m, "iac_coordinator_leader 1");
    assert_line(m, "iac_pool_desired_pods{pool=\"pool-a\"} 4");
    assert_line(m, "iac_pool_current_pods{pool=\"pool-a\"} 3");
    assert_line(m, "iac_pool_ready_pods{pool=\"pool-a\"} 2");
    assert_line(m, "iac_pool_starting_pods{pool=\"pool-a\"} 1");
    assert_line(m, "iac_pool_slots{pool=\"pool-a\",kind=\"slot0\",state=\"free\"} 1");
    assert_line(m, "iac_pool_slots{pool=\"pool-a\",kind=\"slot0\",state=\"reserved\"} 1");
    assert_line(m, "iac_pool_slots{pool=\"pool-a\",kind=\"slot0\",state=\"busy\"} 0");
    assert_line(m, "iac_pool_slots{pool=\"pool-a\",kind=\"plan\",state=\"free\"} 3");
    assert_line(m, "iac_pool_slots{pool=\"pool-a\",kind=\"plan\",state=\"busy\"} 1");
    assert_line(m, "iac_pool_reservations{pool=\"pool-a\"} 1");
    assert_line(m, "iac_pool_reservation_age_seconds{pool=\"pool-a\"} 180");
    assert_line(m, "iac_pool_reservation_age_seconds{pool=\"pool-b\"} 0");
    assert_line(m, "iac_pool_scale_events_total{pool=\"pool-a\",direction=\"up\"} 2");
    assert_line(m, "iac_pool_scale_events_total{pool=\"pool-a\",direction=\"down\"} 1");
    assert_line(m, "iac_pool_scale_events_total{pool=\"pool-a\",direction=\"aborted\"} 1");
    assert_line(m, "iac_pool_cycle_duration_seconds{pool=\"pool-a\"} 0.25");
    assert_line(m, "iac_pool_waiting_tasks{pool=\"pool-a\",kind=\"plan_and_apply\"} 1");
    assert_line(m, "iac_pool_waiting_tasks{pool=\"pool-a\",kind=\"drift_check\"} 0");
    assert_line(m, "iac_pool_config_error{pool=\"pool-a\",reason=\"\"} 0");
    assert_line(m, "iac_pool_config_error{pool=\"pool-b\",reason=\"deployment_not_found\"} 1");
    assert_line(m, "iac_pool_observed{pool=\"pool-b\"} 0");
    assert_line(m, "# TYPE iac_pool_scale_events_total counter");
    /* one family header each, however many pools */
    const char *first = strstr(m, "# TYPE iac_pool_slots gauge");
    assert_non_null(first);
    assert_null(strstr(first + 1, "# TYPE iac_pool_slots gauge"));
    /* bounded labels: no per-pod series */
    assert_null(strstr(m, "pod=\""));
}

/* /healthz answers while the loop turns; /readyz waits for every pool's first observation, and for main's own
 * condition. */
static void readiness_waits_for_every_pool(void **state)
{
    fixture *f = *state;
    cJSON *j = fetch_json(f, "/healthz", 200);
    cJSON_Delete(j);
    j = fetch_json(f, "/readyz", 503);
    assert_true(cJSON_IsFalse(get(j, "ready")));
    assert_string_equal(str_at(j, "reason"), "pool pool-b has not completed an observation yet");
    cJSON_Delete(j);

    f->st[1].observed = true;
    j = fetch_json(f, "/readyz", 200);
    assert_true(cJSON_IsTrue(get(j, "ready")));
    cJSON_Delete(j);

    f->not_ready = "kubernetes credentials not loaded";
    j = fetch_json(f, "/readyz", 503);
    assert_string_equal(str_at(j, "reason"), "kubernetes credentials not loaded");
    cJSON_Delete(j);
}

/* A follower says so, names the holder, and exports leader 0. */
static void follower_names_the_holder(void **state)
{
    fixture *f = *state;
    f->leader = false;
    f->holder = "coord-2";
    api_free(f->srv);
    char err[256];
    f->srv = start_api(f, 0, err, sizeof err);
    assert_non_null(f->srv);
    cJSON *j = fetch_json(f, "/v1/pools", 200);
    assert_true(cJSON_IsFalse(get(j, "leader")));
    assert_string_equal(str_at(j, "identity"), "coord-1");
    assert_string_equal(str_at(j, "holder"), "coord-2");
    cJSON_Delete(j);
    assert_int_equal(fetch(f, "GET", "/metrics"), 200);
    assert_line(f->body, "iac_coordinator_leader 0");
}

/* The API is read-only: other methods on its paths are 405, other paths 404, both as JSON errors. */
static void other_methods_and_paths_are_refused(void **state)
{
    fixture *f = *state;
    static const struct { const char *method, *path; long status; } cases[] = {
        { "POST", "/v1/pools", 405 },  { "DELETE", "/v1/pools/pool-a", 405 }, { "PUT", "/v1/explain", 405 },
        { "POST", "/metrics", 405 },   { "GET", "/", 404 },                   { "GET", "/v1/pool", 404 },
        { "GET", "/v1/poolsx", 404 },  { "GET", "/v2/pools", 404 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        long st = fetch(f, cases[i].method, cases[i].path);
        if (st != cases[i].status)
            fail_msg("%s %s: HTTP %ld, want %ld", cases[i].method, cases[i].path, st, cases[i].status);
        cJSON *j = cJSON_Parse(f->body);
        assert_non_null(j);
        assert_true(cJSON_IsString(cJSON_GetObjectItem(j, "error")));
        cJSON_Delete(j);
    }
}

/* A source without pools is refused, and a port already taken is reported, both without crashing. */
static void start_reports_bad_source_and_busy_port(void **state)
{
    fixture *f = *state;
    char err[256] = "";
    api_source none = { .npools = 1 };
    assert_null(api_start(&f->loop, "127.0.0.1", 0, &none, err, sizeof err));
    assert_non_null(strstr(err, "pool callback"));
    assert_null(api_start(&f->loop, "127.0.0.1", 0, NULL, err, sizeof err));
    err[0] = '\0';
    assert_null(start_api(f, api_port(f->srv), err, sizeof err));
    assert_true(err[0] != '\0');
}

int main(void)
{
    lws_set_log_level(0, NULL); /* lws reports the busy port on stderr itself */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(pools_lists_every_pool_with_pods_and_slots, setup, teardown),
        cmocka_unit_test_setup_teardown(pool_by_id_and_unknown_pool, setup, teardown),
        cmocka_unit_test_setup_teardown(explain_names_the_slot_or_the_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(explain_refuses_bad_task_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(metrics_show_pods_slots_reservations_and_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(readiness_waits_for_every_pool, setup, teardown),
        cmocka_unit_test_setup_teardown(follower_names_the_holder, setup, teardown),
        cmocka_unit_test_setup_teardown(other_methods_and_paths_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(start_reports_bad_source_and_busy_port, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
