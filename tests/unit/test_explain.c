/* test_explain.c — "where is task N, or why does it wait?" (coordinator/explain.h) over hand-built pool states.
 *
 * One table of cases. A pool is written as a string, one letter per pod (pod names "<pool>-<index>"); pods have 3
 * slots (slot 0 + 2 plan slots), Ready pods were created an hour ago, busy slots changed 3 minutes ago:
 *   i idle                      r slot 0 reserved for task 598 (apply_pending)
 *   a slot 0 applying task 598   p slot 0 planning plan_and_apply 599
 *   f plan 801 and drift_check 802 on slots 1, 2 (slot 0 idle)
 *   b all busy: slot 0 applying 596, plans 805, 806 on slots 1, 2
 *   d draining, plan 810 on slot 1   c Ready, idle, agent not connected to the plane
 *   s starting (Pending, 12 s old)   S not Ready for 6 min (past the 5 min startup timeout)
 *   n Ready, the agent did not answer /v1/status   x not Ready in phase Failed
 * Each case names the answer it expects and sentences that must appear in the text, in order; every answer's
 * JSON is parsed and checked against the same expectations and the text. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "../../coordinator/explain.h"

#define NOW       1700000000000LL /* epoch ms */
#define MIN_MS    60000LL
#define MAX_WANT  8
#define MAX_POOLS 3

typedef struct {
    const char   *id;
    const char   *pods;         /* letters as above */
    int           extra_replicas; /* spec.replicas = pods not terminating + this */
    bool          not_observed;
    bool          undecided;
    scaler_reason reason;       /* the last decision */
    int           desired;      /* 0: replicas */
    int64_t       need_slot0, free_slot0, need_plan, free_plan;
    int64_t       shortage_for_ms; /* SHORTAGE_WAITING: how long */
    const char   *config_reason, *config_message;
    const char   *cycle_error;
    bool          no_demand_url, demand_failed;
    scaler_demand demand;
    view_waiting  waiting[3];
} pool_spec;

typedef struct {
    const char *what;
    pool_spec   pools[MAX_POOLS];
    uint64_t    task;
    int         want;             /* explain_result */
    const char *want_pool, *want_pod;
    int         want_slot;        /* -1: null */
    const char *want_status;
    const char *want_text[MAX_WANT]; /* in this order in the text */
    const char *not_text;         /* must not appear */
} explain_case;

/* ---- building pool states ---- */

typedef struct {
    poolcfg_pool cfg[MAX_POOLS];
    pool_state   st[MAX_POOLS];
    const pool_state *ptr[MAX_POOLS];
    int          n;
} built;

static void set_slot(view_pod *p, int s, slot_status st, uint64_t task, task_type type, bool apply)
{
    p->slots[s] = (view_slot){ st, task, type, apply, NOW - 3 * MIN_MS };
}

static void build_pod(view_pod *p, const char *pool, int i, char letter)
{
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s-%d", pool, i);
    snprintf(p->ip, sizeof p->ip, "10.0.0.%d", i + 1);
    snprintf(p->phase, sizeof p->phase, "Running");
    p->ready = p->has_status = p->connected = true;
    p->created_ms = NOW - 60 * MIN_MS;
    p->nslots = 3;
    for (int s = 0; s < 3; s++)
        p->slots[s] = (view_slot){ SLOT_IDLE, 0, TASK_TYPE_NONE, false, NOW - 60 * MIN_MS };
    switch (letter) {
    case 'r': set_slot(p, 0, SLOT_RESERVED, 598, TASK_PLAN_AND_APPLY, true); break;
    case 'a': set_slot(p, 0, SLOT_RUNNING, 598, TASK_PLAN_AND_APPLY, true); break;
    case 'p': set_slot(p, 0, SLOT_RUNNING, 599, TASK_PLAN_AND_APPLY, false); break;
    case 'f':
        set_slot(p, 1, SLOT_RUNNING, 801, TASK_PLAN, false);
        set_slot(p, 2, SLOT_RUNNING, 802, TASK_DRIFT_CHECK, false);
        break;
    case 'b':
        set_slot(p, 0, SLOT_RUNNING, 596, TASK_PLAN_AND_APPLY, true);
        set_slot(p, 1, SLOT_RUNNING, 805, TASK_PLAN, false);
        set_slot(p, 2, SLOT_RUNNING, 806, TASK_PLAN, false);
        break;
    case 'd':
        p->draining = true;
        set_slot(p, 1, SLOT_RUNNING, 810, TASK_PLAN, false);
        break;
    case 'c': p->connected = false; break;
    case 's':
    case 'S':
        p->ready = p->has_status = p->connected = false;
        p->nslots = 0;
        p->ip[0] = '\0';
        snprintf(p->phase, sizeof p->phase, "Pending");
        p->created_ms = NOW - (letter == 's' ? 12000 : 6 * MIN_MS);
        break;
    case 'x':
        p->ready = p->has_status = p->connected = false;
        p->nslots = 0;
        snprintf(p->phase, sizeof p->phase, "Failed");
        break;
    case 'n':
        p->has_status = p->connected = false;
        p->nslots = 0;
        snprintf(p->status_error, sizeof p->status_error, "connection refused");
        break;
    default: break;
    }
}

static void build(const explain_case *c, built *b)
{
    memset(b, 0, sizeof *b);
    for (int k = 0; k < MAX_POOLS && c->pools[k].id; k++) {
        const pool_spec *sp = &c->pools[k];
        poolcfg_pool *cfg = &b->cfg[k];
        pool_state *ps = &b->st[k];
        snprintf(cfg->id, sizeof cfg->id, "%s", sp->id);
        snprintf(cfg->namespace_, sizeof cfg->namespace_, "terraform");
        snprintf(cfg->deployment, sizeof cfg->deployment, "iac-agent-%s", sp->id);
        cfg->scale = (scaler_config){ 3, 1, 3, 1, 1, 60000, 300000, 1, 5 * MIN_MS };
        if (!sp->no_demand_url)
            snprintf(cfg->demand_url, sizeof cfg->demand_url, "http://plane/demand");
        ps->cfg = cfg;
        ps->observed = !sp->not_observed;
        int n = (int)strlen(sp->pods ? sp->pods : "");
        if (ps->observed) {
            ps->view.deployment_found = true;
            ps->view.pods = n ? calloc((size_t)n, sizeof(view_pod)) : NULL;
            ps->view.npods = n;
            for (int i = 0; i < n; i++)
                build_pod(&ps->view.pods[i], sp->id, i, sp->pods[i]);
            ps->view.replicas = n + sp->extra_replicas;
            ps->view.demand_ok = !sp->no_demand_url && !sp->demand_failed;
            if (sp->demand_failed)
                snprintf(ps->view.demand_error, sizeof ps->view.demand_error, "HTTP 502");
            ps->view.demand = sp->demand;
            int nw = 0;
            while (nw < 3 && sp->waiting[nw].task_id)
                nw++;
            ps->view.waiting = nw ? calloc((size_t)nw, sizeof(view_waiting)) : NULL;
            for (int i = 0; i < nw; i++)
                ps->view.waiting[i] = sp->waiting[i];
            ps->view.nwaiting = nw;
            ps->decided = !sp->undecided;
            ps->decision.reason = sp->reason;
            ps->decision.desired = sp->desired ? sp->desired : ps->view.replicas;
            ps->decision.need_slot0 = sp->need_slot0;
            ps->decision.free_slot0 = sp->free_slot0;
            ps->decision.need_plan = sp->need_plan;
            ps->decision.free_plan = sp->free_plan;
            ps->decision.shortage_since_ms = sp->shortage_for_ms ? NOW - sp->shortage_for_ms : SCALER_NEVER;
        }
        if (sp->config_reason) {
            ps->config_error = true;
            snprintf(ps->config_reason, sizeof ps->config_reason, "%s", sp->config_reason);
            snprintf(ps->config_message, sizeof ps->config_message, "%s", sp->config_message);
            ps->config_error_since_ms = NOW - 5 * MIN_MS;
        }
        if (sp->cycle_error)
            snprintf(ps->cycle_error, sizeof ps->cycle_error, "%s", sp->cycle_error);
        b->ptr[k] = ps;
        b->n = k + 1;
    }
}

static void unbuild(built *b)
{
    for (int k = 0; k < b->n; k++) {
        free(b->st[k].view.pods);
        free(b->st[k].view.waiting);
    }
}

/* ---- the cases ---- */

#define WAIT_PAA(id)   { (id), TASK_PLAN_AND_APPLY, NOW - 45000 }
#define WAIT_PLAN(id)  { (id), TASK_PLAN, NOW - 45000 }

static const explain_case cases[] = {
    /* held */
    { .what = "apply_pending names pod, slot 0 and the reservation's age",
      .pools = { { .id = "pool-a", .pods = "ir" } }, .task = 598, .want = EXPLAIN_HELD, .want_pool = "pool-a",
      .want_pod = "pool-a-1", .want_slot = 0, .want_status = "reserved",
      .want_text = { "task 598: pool pool-a, pod pool-a-1, slot 0 (reserved)",
                     "apply_pending: plan done, slot 0 reserved for the apply 3 min ago, waiting for confirmation" } },
    { .what = "a running apply is applying",
      .pools = { { .id = "pool-a", .pods = "a" } }, .task = 598, .want = EXPLAIN_HELD, .want_pool = "pool-a",
      .want_pod = "pool-a-0", .want_slot = 0, .want_status = "running",
      .want_text = { "applying: the apply runs on slot 0 for 3 min" }, .not_text = "  - " },
    { .what = "the plan phase of a plan_and_apply",
      .pools = { { .id = "pool-a", .pods = "ip" } }, .task = 599, .want = EXPLAIN_HELD, .want_pod = "pool-a-1",
      .want_slot = 0, .want_status = "running",
      .want_text = { "planning: the plan of this plan_and_apply runs on slot 0 for 3 min" } },
    { .what = "a plan on a plan slot, in the second pool",
      .pools = { { .id = "pool-a", .pods = "i" }, { .id = "pool-b", .pods = "if" } }, .task = 801,
      .want = EXPLAIN_HELD, .want_pool = "pool-b", .want_pod = "pool-b-1", .want_slot = 1, .want_status = "running",
      .want_text = { "planning: the plan runs on slot 1 for 3 min" } },
    { .what = "a drift check",
      .pools = { { .id = "pool-a", .pods = "f" } }, .task = 802, .want = EXPLAIN_HELD, .want_slot = 2,
      .want_text = { "drift checking: the drift check runs on slot 2" } },
    { .what = "a task on a draining pod says the pod drains",
      .pools = { { .id = "pool-a", .pods = "d" } }, .task = 810, .want = EXPLAIN_HELD, .want_slot = 1,
      .want_text = { "planning", "pod pool-a-0 is draining" } },
    { .what = "incident 598: reserved for the task while the plane lists it as waiting for a free slot",
      .pools = { { .id = "pool-a", .pods = "ir", .waiting = { WAIT_PAA(598) } } }, .task = 598,
      .want = EXPLAIN_HELD, .want_pod = "pool-a-1", .want_slot = 0, .want_status = "reserved",
      .want_text = { "apply_pending", "the plane lists this task as waiting",
                     "reserved for it: the apply must be sent to that pod" } },
    { .what = "a running apply wins over a stale reservation on another pod, which is named",
      .pools = { { .id = "pool-a", .pods = "ra" } }, .task = 598, .want = EXPLAIN_HELD, .want_pod = "pool-a-1",
      .want_slot = 0, .want_status = "running",
      .want_text = { "applying", "slot 0 of pod pool-a-0 (pool pool-a) also holds it, reserved for 3 min",
                     "stale reservation" } },
    /* waiting */
    { .what = "no free slot 0, scaling up, a pod starting: the design's example, in that order",
      .pools = { { .id = "pool-a", .pods = "rrs", .reason = SCALER_SCALE_UP, .desired = 4, .need_slot0 = 2,
                   .free_slot0 = 1, .waiting = { WAIT_PAA(1001) } } },
      .task = 1001, .want = EXPLAIN_WAITING, .want_pool = "pool-a", .want_slot = -1, .want_status = "waiting",
      .want_text = { "task 1001: pool pool-a, waiting for a slot 0 (plan_and_apply) for 45 s",
                     "no free slot 0: of 2 pods taking work, slot 0 runs a task on 0 and is reserved for an apply "
                     "(apply_pending) on 2; the pool needs 2 free slot 0s and has 1 counting pods starting",
                     "scaling 3\u21924", "pod pool-a-2 pending 12 s" } },
    { .what = "at max replicas",
      .pools = { { .id = "pool-a", .pods = "aba", .reason = SCALER_AT_MAX, .waiting = { WAIT_PAA(1002) } } },
      .task = 1002, .want = EXPLAIN_WAITING,
      .want_text = { "no free slot 0", "at max replicas (3): the pool cannot grow" }, .not_text = "scaling" },
    { .what = "a configuration error comes first and is quoted",
      .pools = { { .id = "pool-a", .pods = "r", .reason = SCALER_STEADY, .config_reason = "rbac_denied",
                   .config_message = "RBAC: cannot patch deployments/scale in terraform",
                   .waiting = { WAIT_PAA(1003) } } },
      .task = 1003, .want = EXPLAIN_WAITING,
      .want_text = { "  - configuration error (rbac_denied) for 5 min: RBAC: cannot patch deployments/scale in "
                     "terraform\n  - no free slot 0" } },
    { .what = "a plan waits for a plan slot with the counts",
      .pools = { { .id = "pool-a", .pods = "b", .reason = SCALER_SCALE_UP, .desired = 2, .need_plan = 2,
                   .free_plan = 0, .waiting = { WAIT_PAA(1), WAIT_PLAN(1004) } } },
      .task = 1004, .want = EXPLAIN_WAITING, .want_status = "waiting",
      .want_text = { "waiting for a plan slot (plan) for 45 s",
                     "no free plan slot: all 2 plan slots of 1 pod taking work are busy; the pool needs 2 free plan "
                     "slots and has 0 counting pods starting", "scaling 1\u21922" },
      .not_text = "no free slot 0" },
    { .what = "the scale-up window holds the shortage back",
      .pools = { { .id = "pool-a", .pods = "r", .reason = SCALER_SHORTAGE_WAITING, .shortage_for_ms = 20000,
                   .waiting = { WAIT_PAA(1005) } } },
      .task = 1005, .want = EXPLAIN_WAITING,
      .want_text = { "short of capacity for 20 s; scale-up waits for the window of 60 s" } },
    { .what = "a pod past the startup timeout is named as replaced, not as starting",
      .pools = { { .id = "pool-a", .pods = "rS", .reason = SCALER_SCALE_UP, .desired = 3,
                   .waiting = { WAIT_PAA(1006) } } },
      .task = 1006, .want = EXPLAIN_WAITING,
      .want_text = { "scaling 2\u21923", "pod pool-a-1 pending 6 min, past the startup timeout of 5 min" },
      .not_text = "pod pool-a-1 pending 6 min\n" },
    { .what = "a pod that ended is named as no capacity, not as starting",
      .pools = { { .id = "pool-a", .pods = "rx", .reason = SCALER_STEADY, .waiting = { WAIT_PAA(1014) } } },
      .task = 1014, .want = EXPLAIN_WAITING,
      .want_text = { "pod pool-a-1 is in phase Failed: it is no capacity and not coming" },
      .not_text = "not Ready for" },
    { .what = "replicas not yet turned into pods are counted",
      .pools = { { .id = "pool-a", .pods = "r", .extra_replicas = 2, .reason = SCALER_STEADY,
                   .waiting = { WAIT_PAA(1007) } } },
      .task = 1007, .want = EXPLAIN_WAITING, .want_text = { "2 pods requested but not created yet" } },
    { .what = "room exists: the wait is on the plane's side",
      .pools = { { .id = "pool-a", .pods = "ri", .reason = SCALER_STEADY, .waiting = { WAIT_PAA(1008) } } },
      .task = 1008, .want = EXPLAIN_WAITING,
      .want_text = { "slot 0 is free on 1 pod (first: pool-a-1): the coordinator sees room" },
      .not_text = "no free slot 0" },
    { .what = "room for a plan exists: the free plan slots are counted",
      .pools = { { .id = "pool-a", .pods = "bi", .reason = SCALER_STEADY, .waiting = { WAIT_PLAN(1013) } } },
      .task = 1013, .want = EXPLAIN_WAITING,
      .want_text = { "2 plan slots are free (first on pod pool-a-1): the coordinator sees room" },
      .not_text = "no free" },
    { .what = "agents that did not answer and agents not connected are named",
      .pools = { { .id = "pool-a", .pods = "rnc", .reason = SCALER_STEADY, .waiting = { WAIT_PAA(1009) } } },
      .task = 1009, .want = EXPLAIN_WAITING,
      .want_text = { "the agent on pod pool-a-1 did not answer /v1/status (connection refused): its slots are not "
                     "known and not counted",
                     "the agent on pod pool-a-2 is not connected to the plane: no task reaches it",
                     "slot 0 is free on 1 pod (first: pool-a-2)" } },
    { .what = "no decision yet",
      .pools = { { .id = "pool-a", .pods = "r", .undecided = true, .waiting = { WAIT_PAA(1010) } } },
      .task = 1010, .want = EXPLAIN_WAITING, .want_text = { "no scaling decision yet" } },
    { .what = "a waiting task in a pool without pods at all",
      .pools = { { .id = "pool-a", .pods = "", .reason = SCALER_SCALE_UP, .desired = 1,
                   .waiting = { WAIT_PAA(1011) } } },
      .task = 1011, .want = EXPLAIN_WAITING,
      .want_text = { "no free slot 0: no pod takes work (0 listed, none Ready with an answering agent)",
                     "scaling 0\u21921" } },
    { .what = "the scaler's refusal is quoted",
      .pools = { { .id = "pool-a", .pods = "r", .reason = SCALER_BAD_INPUT, .waiting = { WAIT_PAA(1012) } } },
      .task = 1012, .want = EXPLAIN_WAITING, .want_text = { "the scaler refused its input" } },
    /* unknown */
    { .what = "incident 511: a task nobody holds names the pool whose configuration is broken",
      .pools = { { .id = "pool-a", .pods = "i", .reason = SCALER_STEADY },
                 { .id = "pool-b", .not_observed = true, .config_reason = "deployment_not_found",
                   .config_message = "deployment terraform/iac-agent-pool-b not found (check --namespace and "
                                     "--deployment)" } },
      .task = 4242, .want = EXPLAIN_UNKNOWN, .want_slot = -1, .want_status = "unknown",
      .want_text = { "task 4242 holds no slot on any pod and no pool lists it as waiting\n",
                     "  - pool pool-b: configuration error (deployment_not_found) for 5 min: deployment "
                     "terraform/iac-agent-pool-b not found",
                     "  - pool pool-b: no observation has completed yet" },
      .not_text = "pool pool-a:" },
    { .what = "what could hide an unknown task: silent agents, unread or unlisted demand, no demand URL",
      .pools = { { .id = "pool-a", .pods = "in", .demand_failed = true },
                 { .id = "pool-b", .pods = "i", .demand = { 2, 1, 0 } },
                 { .id = "pool-c", .pods = "i", .no_demand_url = true, .cycle_error = "listing pods: HTTP 500" } },
      .task = 4243, .want = EXPLAIN_UNKNOWN,
      .want_text = { "pool pool-a: the agent on pod pool-a-1 did not answer /v1/status (connection refused): its "
                     "slots are not known, the task may be there",
                     "pool pool-a: demand unknown (HTTP 502)",
                     "pool pool-b: the plane reports 3 tasks waiting (2 plan_and_apply, 1 plan, 0 drift_check) "
                     "without listing their ids",
                     "pool pool-c: the last cycle had trouble: listing pods: HTTP 500",
                     "pool pool-c: no demand_url is configured" } },
    { .what = "no pools at all",
      .pools = { { 0 } }, .task = 7, .want = EXPLAIN_UNKNOWN,
      .want_text = { "task 7 holds no slot on any pod and no pool lists it as waiting\n" }, .not_text = "  - " },
};

/* ---- checks ---- */

static void check_text_order(const char *what, const char *text, const char *const *want, const char *not_text)
{
    const char *at = text;
    for (int i = 0; i < MAX_WANT && want[i]; i++) {
        const char *hit = strstr(at, want[i]);
        if (!hit)
            fail_msg("%s: \"%s\" not found (in order) in:\n%s", what, want[i], text);
        at = hit + strlen(want[i]);
    }
    if (not_text && strstr(text, not_text))
        fail_msg("%s: \"%s\" should not appear in:\n%s", what, not_text, text);
}

static const char *json_str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void check_json(const explain_case *c, const char *json, const char *text)
{
    cJSON *j = cJSON_Parse(json);
    if (!j)
        fail_msg("%s: not JSON: %s", c->what, json);
    assert_true(cJSON_GetObjectItem(j, "task_id")->valuedouble == (double)c->task);
    assert_int_equal(cJSON_IsTrue(cJSON_GetObjectItem(j, "found")), c->want == EXPLAIN_HELD);
    assert_int_equal(cJSON_IsTrue(cJSON_GetObjectItem(j, "waiting")), c->want == EXPLAIN_WAITING);
    if (c->want_pool)
        assert_string_equal(json_str(j, "pool"), c->want_pool);
    if (c->want == EXPLAIN_UNKNOWN)
        assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "pool")));
    if (c->want_pod)
        assert_string_equal(json_str(j, "pod"), c->want_pod);
    if (c->want != EXPLAIN_HELD)
        assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "pod")));
    const cJSON *slot = cJSON_GetObjectItem(j, "slot");
    if (c->want == EXPLAIN_HELD)
        assert_int_equal(slot->valueint, c->want_slot);
    else
        assert_true(cJSON_IsNull(slot));
    if (c->want_status)
        assert_string_equal(json_str(j, "status"), c->want_status);
    assert_non_null(json_str(j, "phase"));
    const cJSON *since = cJSON_GetObjectItem(j, "since");
    if (c->want == EXPLAIN_HELD)
        assert_true(since->valuedouble == (double)((NOW - 3 * MIN_MS) / 1000));
    else if (c->want == EXPLAIN_WAITING)
        assert_true(since->valuedouble == (double)((NOW - 45000) / 1000));
    else
        assert_true(cJSON_IsNull(since));
    assert_string_equal(json_str(j, "text"), text);
    /* every reason is in the text, in order */
    const cJSON *r;
    const char *at = text;
    assert_true(cJSON_IsArray(cJSON_GetObjectItem(j, "reasons")));
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(j, "reasons")) {
        assert_true(cJSON_IsString(r));
        const char *hit = strstr(at, r->valuestring);
        if (!hit)
            fail_msg("%s: reason \"%s\" not in the text", c->what, r->valuestring);
        at = hit + strlen(r->valuestring);
    }
    cJSON_Delete(j);
}

/* Every case of the table: the answer, the sentences in order, and the JSON agreeing with the text. */
static void explain_answers_every_case(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const explain_case *c = &cases[i];
        built b;
        build(c, &b);
        strbuf json = STRBUF_INIT, text = STRBUF_INIT;
        int rc = explain_task(b.ptr, b.n, c->task, NOW, &json, &text);
        if (rc != c->want)
            fail_msg("%s: result %d, want %d\n%s", c->what, rc, c->want, text.data ? text.data : "");
        assert_non_null(text.data);
        assert_int_equal(text.data[text.len - 1], '\n');
        check_text_order(c->what, text.data, c->want_text, c->not_text);
        check_json(c, json.data, text.data);
        strbuf_free(&json);
        strbuf_free(&text);
        unbuild(&b);
    }
}

/* Task 0 and a pools array that is missing are refused, and nothing is written. */
static void explain_refuses_bad_arguments(void **state)
{
    (void)state;
    strbuf json = STRBUF_INIT, text = STRBUF_INIT;
    assert_int_equal(explain_task(NULL, 0, 0, NOW, &json, &text), -EINVAL);
    assert_int_equal(explain_task(NULL, 2, 5, NOW, &json, &text), -EINVAL);
    assert_int_equal(explain_task(NULL, -1, 5, NOW, &json, &text), -EINVAL);
    assert_int_equal(json.len + text.len, 0);
}

/* NULL entries in the pools array are skipped, and either output may be left out. */
static void explain_skips_null_pools_and_outputs(void **state)
{
    (void)state;
    explain_case c = { .pools = { { .id = "pool-a", .pods = "r" } } };
    built b;
    build(&c, &b);
    const pool_state *arr[3] = { NULL, b.ptr[0], NULL };
    strbuf text = STRBUF_INIT, json = STRBUF_INIT;
    assert_int_equal(explain_task(arr, 3, 598, NOW, NULL, &text), EXPLAIN_HELD);
    assert_non_null(strstr(text.data, "pod pool-a-0, slot 0"));
    assert_int_equal(explain_task(arr, 3, 598, NOW, &json, NULL), EXPLAIN_HELD);
    assert_non_null(strstr(json.data, "\"found\":true"));
    assert_int_equal(explain_task(arr, 3, 598, NOW, NULL, NULL), EXPLAIN_HELD);
    strbuf_free(&text);
    strbuf_free(&json);
    unbuild(&b);
}

/* Names with quotes and control bytes come out as valid JSON, and a slot whose clock is ahead of ours reads as
 * age 0 rather than a negative age. */
static void explain_escapes_names_and_clamps_clock_skew(void **state)
{
    (void)state;
    explain_case c = { .pools = { { .id = "pool-a", .pods = "r" } } };
    built b;
    build(&c, &b);
    snprintf(b.st[0].view.pods[0].name, VIEW_NAME_MAX, "pod\"with\\odd\nname");
    b.st[0].view.pods[0].slots[0].since_ms = NOW + 90000;
    strbuf json = STRBUF_INIT;
    assert_int_equal(explain_task(b.ptr, 1, 598, NOW, &json, NULL), EXPLAIN_HELD);
    cJSON *j = cJSON_Parse(json.data);
    assert_non_null(j);
    assert_string_equal(json_str(j, "pod"), "pod\"with\\odd\nname");
    assert_non_null(strstr(json_str(j, "phase"), "reserved for the apply 0 s ago"));
    cJSON_Delete(j);
    strbuf_free(&json);
    unbuild(&b);
}

/* Many pods starting are named up to a bound and the rest counted, so one answer stays readable. */
static void explain_bounds_long_pod_lists(void **state)
{
    (void)state;
    explain_case c = { .pools = { { .id = "pool-a", .pods = "rsssssssss", .reason = SCALER_SCALE_UP, .desired = 12,
                                    .waiting = { WAIT_PAA(77) } } } };
    built b;
    build(&c, &b);
    strbuf text = STRBUF_INIT;
    assert_int_equal(explain_task(b.ptr, 1, 77, NOW, NULL, &text), EXPLAIN_WAITING);
    assert_non_null(strstr(text.data, "pod pool-a-5 pending 12 s"));
    assert_null(strstr(text.data, "pod pool-a-6 pending"));
    assert_non_null(strstr(text.data, "and 4 more pods starting"));
    strbuf_free(&text);
    unbuild(&b);
}

/* Ages read as a person would say them, from seconds to days. */
static void explain_ages_read_naturally(void **state)
{
    (void)state;
    static const struct { int64_t age_ms; const char *want; } ages[] = {
        { 0, "0 s ago" },           { 119999, "119 s ago" },        { 120000, "2 min ago" },
        { 7199999, "119 min ago" }, { 7200000, "2 h 0 min ago" },   { 9000000, "2 h 30 min ago" },
        { 172800000, "2 d 0 h ago" }, { 200000000, "2 d 7 h ago" },
    };
    explain_case c = { .pools = { { .id = "pool-a", .pods = "r" } } };
    built b;
    build(&c, &b);
    for (size_t i = 0; i < sizeof ages / sizeof ages[0]; i++) {
        b.st[0].view.pods[0].slots[0].since_ms = NOW - ages[i].age_ms;
        strbuf text = STRBUF_INIT;
        explain_task(b.ptr, 1, 598, NOW, NULL, &text);
        if (!strstr(text.data, ages[i].want))
            fail_msg("age %lld ms: want \"%s\" in %s", (long long)ages[i].age_ms, ages[i].want, text.data);
        strbuf_free(&text);
    }
    unbuild(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(explain_answers_every_case),
        cmocka_unit_test(explain_refuses_bad_arguments),
        cmocka_unit_test(explain_skips_null_pools_and_outputs),
        cmocka_unit_test(explain_escapes_names_and_clamps_clock_skew),
        cmocka_unit_test(explain_bounds_long_pod_lists),
        cmocka_unit_test(explain_ages_read_naturally),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
