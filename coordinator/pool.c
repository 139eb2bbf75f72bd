/* pool.c — one pool's control loop; see pool.h.
 *
 * A cycle is a short story of stages, each started when every request of the one before has answered:
 *
 *     READ    observe the pool ∥ ask Kubernetes whether RBAC allows each verb we need (SelfSubjectAccessReview)
 *     DECIDE  configuration errors first (reported once per change), then the scaler
 *     ACT     (leader only) deletion costs ∥ scale up ∥ events
 *     REMOVE  (leader only) the safe scale-down of each chosen pod, one after the other:
 *             drain → re-read its status → still idle? cost to the minimum → replicas − 1 : undrain
 *
 * Every request in flight is an op on a list, so that pool_free() can cancel the lot and no callback outlives the
 * pool. Nothing here blocks; the only memory between cycles is the scaler's two stamps, what was last reported,
 * the pods we drained, and counters. */
#include "pool.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "iac/fsutil.h"
#include "iac/json.h"
#include "iac/log.h"
#include "iac/strbuf.h"
#include "observe.h"

#define POOL_COST_MIN      "-2147483648" /* the lowest pod-deletion-cost Kubernetes accepts (int32) */
#define POOL_COST_RESERVED 1000000       /* slot 0 holds an approved plan: the last pod to go */
#define POOL_COST_APPLYING 100000        /* slot 0 runs */
#define POOL_COST_PLAN     10000         /* per plan slot running */
#define POOL_TOKEN_MAX     4096
/* Deletion-cost patches started in one cycle: a coordinator new to a pool of 1,000 pods must not open 1,000
 * connections at once (the default limit is 1,024 files); the rest follow in the next cycles. */
#define POOL_COST_PATCHES_PER_CYCLE 64

typedef enum { STAGE_IDLE, STAGE_READ, STAGE_ACT, STAGE_REMOVE } pool_stage;

/* What the RBAC check asks for: exactly the verbs the coordinator uses (the chart's Role grants these). */
static const struct {
    const char *verb, *group, *resource, *subresource;
    bool        lease; /* in the lease namespace, only with leader election */
} pool_rbac_needs[] = {
    { "get",    "apps",                "deployments", "",      false },
    { "get",    "apps",                "deployments", "scale", false },
    { "patch",  "apps",                "deployments", "scale", false },
    { "list",   "",                    "pods",        "",      false },
    { "get",    "",                    "pods",        "",      false },
    { "patch",  "",                    "pods",        "",      false },
    { "create", "",                    "events",      "",      false },
    { "get",    "coordination.k8s.io", "leases",      "",      true },
    { "create", "coordination.k8s.io", "leases",      "",      true },
    { "update", "coordination.k8s.io", "leases",      "",      true },
};
#define POOL_RBAC_N (sizeof(pool_rbac_needs) / sizeof(pool_rbac_needs[0]))

typedef struct pool_op pool_op;
typedef void (*pool_op_k8s_fn)(pool *p, pool_op *op, const k8s_result *r);
typedef void (*pool_op_http_fn)(pool *p, pool_op *op, const httpc_response *r);

struct pool_op {
    pool           *p;
    k8s_call       *kc;
    httpc_call     *hc;
    pool_op_k8s_fn  on_k8s;
    pool_op_http_fn on_http;
    int             index;    /* an RBAC need, or a pod */
    pool_op        *next;
};

/* The pod being removed by the REMOVE stage. */
typedef struct {
    char     name[VIEW_NAME_MAX];
    char     ip[64];
    int      replicas_before;
} pool_victim;

struct pool {
    pool_deps   d;
    pool_state  st;
    view_pool   next;              /* filled by the running observation */
    observe    *obs;
    pool_op    *ops;
    int         inflight;          /* observation + ops of the current stage */
    pool_stage  stage;
    int64_t     started_mono_ms;
    void      (*done)(pool *p, void *arg);
    void       *done_arg;
    /* READ results */
    observe_result obs_res;
    bool        rbac_denied[POOL_RBAC_N];
    bool        rbac_unknown;      /* the review itself could not be made */
    /* Between cycles */
    int64_t     surplus_since_ms, shortage_since_ms;
    bool        error_evented;     /* the standing config error has its Event */
    char        reported_cycle_error[POOL_TEXT_MAX];
    char        timed_out_reported[8][VIEW_NAME_MAX]; /* startup timeouts already reported (a few suffice) */
    char        drained[VIEW_NAME_MAX]; /* the pod we last drained for removal, to undrain if it stayed */
    /* REMOVE */
    pool_victim victims[SCALER_MAX_REMOVE];
    int         nvictims, victim;
    int         replicas_now;      /* replicas as we last set them this cycle */
    char        token[POOL_TOKEN_MAX];
};

static int64_t pool_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t pool_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pool_rfc3339(int64_t ms, char *out, size_t n)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- ops: every request in flight ---- */

static void pool_stage_next(pool *p);

static pool_op *pool_op_new(pool *p, int index)
{
    pool_op *op = calloc(1, sizeof(*op));
    if (!op)
        return NULL;
    op->p = p;
    op->index = index;
    op->next = p->ops;
    p->ops = op;
    p->inflight++;
    return op;
}

static void pool_op_end(pool *p, pool_op *op)
{
    for (pool_op **pp = &p->ops; *pp; pp = &(*pp)->next)
        if (*pp == op) {
            *pp = op->next;
            break;
        }
    free(op);
    if (--p->inflight == 0)
        pool_stage_next(p);
}

static void pool_op_on_k8s(const k8s_result *r, void *arg)
{
    pool_op *op = arg;
    op->kc = NULL;
    if (op->on_k8s)
        op->on_k8s(op->p, op, r);
    pool_op_end(op->p, op);
}

static void pool_op_on_http(const httpc_response *r, void *arg)
{
    pool_op *op = arg;
    op->hc = NULL;
    if (op->on_http)
        op->on_http(op->p, op, r);
    pool_op_end(op->p, op);
}

/* Starts a Kubernetes request as an op. A request that cannot start ends its op at once (from the caller's
 * stack, so the caller must hold the stage open: see pool_hold). */
static void pool_k8s(pool *p, int index, const char *method, const char *path, const char *ctype, const char *body,
                     pool_op_k8s_fn fn)
{
    pool_op *op = pool_op_new(p, index);
    if (!op)
        return;
    op->on_k8s = fn;
    op->kc = k8s_request(p->d.kube, method, path, ctype, body, pool_op_on_k8s, op);
    if (!op->kc)
        pool_op_end(p, op);
}

static void pool_http(pool *p, int index, const char *method, const char *url, const char *bearer,
                      pool_op_http_fn fn)
{
    pool_op *op = pool_op_new(p, index);
    if (!op)
        return;
    op->on_http = fn;
    httpc_req req = { .method = method, .url = url, .bearer = bearer, .mode = HTTPC_PLAIN, .timeout_ms = 3000 };
    op->hc = httpc_request(p->d.http, &req, pool_op_on_http, op);
    if (!op->hc)
        pool_op_end(p, op);
}

/* A stage starts its requests between pool_hold and pool_release, so that an answer (or a failure to start)
 * cannot end the stage before every request of it is started. */
static void pool_hold(pool *p) { p->inflight++; }
static void pool_release(pool *p)
{
    if (--p->inflight == 0)
        pool_stage_next(p);
}

/* ---- paths and small writers ---- */

static void pool_deploy_path(const pool *p, const char *suffix, char *out, size_t n)
{
    char ns[200], name[POOLCFG_NAME_MAX * 3];
    k8s_escape(p->d.cfg->namespace_, ns, sizeof ns);
    k8s_escape(p->d.cfg->deployment, name, sizeof name);
    strbuf_fixed_printf(out, n, "/apis/apps/v1/namespaces/%s/deployments/%s%s", ns, name, suffix);
}

static void pool_pod_path(const pool *p, const char *pod, char *out, size_t n)
{
    char ns[200], name[VIEW_NAME_MAX * 3];
    k8s_escape(p->d.cfg->namespace_, ns, sizeof ns);
    k8s_escape(pod, name, sizeof name);
    strbuf_fixed_printf(out, n, "/api/v1/namespaces/%s/pods/%s", ns, name);
}

static void pool_agent_url(const pool *p, const char *ip, const char *path, char *out, size_t n)
{
    bool v6 = strchr(ip, ':') != NULL;
    strbuf_fixed_printf(out, n, "http://%s%s%s:%d%s", v6 ? "[" : "", ip, v6 ? "]" : "", p->d.cfg->agent_port, path);
}

static void pool_noted(pool *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pool_noted(pool *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->st.last_action, sizeof p->st.last_action, fmt, ap);
    va_end(ap);
    p->st.last_action_ms = pool_wall_ms();
    log_info("pool", "pool \"%s\": %s", p->d.cfg->id, p->st.last_action);
}

/* A Kubernetes Event on the pool's Deployment. Only the leader writes to the cluster. */
static void pool_event(pool *p, const char *type, const char *reason, const char *message)
{
    char now[40];
    pool_rfc3339(pool_wall_ms(), now, sizeof now);
    strbuf b = { 0 };
    strbuf_puts(&b, "{\"apiVersion\":\"v1\",\"kind\":\"Event\",\"metadata\":{\"generateName\":\"");
    strbuf_json_escape(&b, p->d.cfg->deployment, strlen(p->d.cfg->deployment));
    strbuf_puts(&b, ".\",\"namespace\":\"");
    strbuf_json_escape(&b, p->d.cfg->namespace_, strlen(p->d.cfg->namespace_));
    strbuf_puts(&b, "\"},\"involvedObject\":{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"name\":\"");
    strbuf_json_escape(&b, p->d.cfg->deployment, strlen(p->d.cfg->deployment));
    strbuf_puts(&b, "\",\"namespace\":\"");
    strbuf_json_escape(&b, p->d.cfg->namespace_, strlen(p->d.cfg->namespace_));
    strbuf_printf(&b, "\"},\"type\":\"%s\",\"reason\":\"%s\",\"message\":\"", type, reason);
    strbuf_json_escape(&b, message, strlen(message));
    strbuf_printf(&b, "\",\"source\":{\"component\":\"iac-coordinator\"},\"reportingComponent\":\"iac-coordinator\","
                      "\"firstTimestamp\":\"%s\",\"lastTimestamp\":\"%s\",\"count\":1}", now, now);
    if (!b.data)
        return;
    char ns[200], path[400];
    k8s_escape(p->d.cfg->namespace_, ns, sizeof ns);
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/events", ns);
    pool_k8s(p, -1, "POST", path, NULL, b.data, NULL);
    p->st.events_created++;
    strbuf_free(&b);
}

/* ---- READ ---- */

static void pool_on_review(pool *p, pool_op *op, const k8s_result *r)
{
    const cJSON *status = r->obj ? cJSON_GetObjectItemCaseSensitive(r->obj, "status") : NULL;
    const cJSON *allowed = status ? cJSON_GetObjectItemCaseSensitive(status, "allowed") : NULL;
    if (r->error || r->status / 100 != 2 || !cJSON_IsBool(allowed)) {
        p->rbac_unknown = true; /* not the pool's fault: the cycle error says so, nothing is refused for it */
        return;
    }
    p->rbac_denied[op->index] = cJSON_IsFalse(allowed);
}

static void pool_review(pool *p, int i)
{
    const char *ns = pool_rbac_needs[i].lease && p->d.lease_namespace ? p->d.lease_namespace : p->d.cfg->namespace_;
    strbuf b = { 0 };
    strbuf_puts(&b, "{\"apiVersion\":\"authorization.k8s.io/v1\",\"kind\":\"SelfSubjectAccessReview\","
                    "\"spec\":{\"resourceAttributes\":{\"namespace\":\"");
    strbuf_json_escape(&b, ns, strlen(ns));
    strbuf_printf(&b, "\",\"verb\":\"%s\",\"group\":\"%s\",\"resource\":\"%s\",\"subresource\":\"%s\"}}}",
                  pool_rbac_needs[i].verb, pool_rbac_needs[i].group, pool_rbac_needs[i].resource,
                  pool_rbac_needs[i].subresource);
    if (b.data)
        pool_k8s(p, i, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", NULL, b.data,
                 pool_on_review);
    strbuf_free(&b);
}

static void pool_on_observed(const observe_result *r, void *arg)
{
    pool *p = arg;
    p->obs = NULL;
    p->obs_res = *r;
    pool_release(p);
}

static void pool_start_read(pool *p)
{
    p->stage = STAGE_READ;
    memset(p->rbac_denied, 0, sizeof p->rbac_denied);
    p->rbac_unknown = false;
    memset(&p->obs_res, 0, sizeof p->obs_res);
    pool_hold(p);
    pool_hold(p); /* the observation */
    p->obs = observe_start(p->d.kube, p->d.http, p->d.cfg, NULL, &p->next, pool_on_observed, p);
    if (!p->obs) {
        snprintf(p->obs_res.k8s_error, sizeof p->obs_res.k8s_error, "out of memory");
        p->inflight--;
    }
    for (size_t i = 0; i < POOL_RBAC_N; i++)
        if (!pool_rbac_needs[i].lease || p->d.check_leases)
            pool_review(p, (int)i);
    pool_release(p);
}

/* ---- DECIDE ---- */

/* The configuration error that stands this cycle, most fundamental first; false when none. */
static bool pool_config_error(pool *p, char *reason, size_t rn, char *msg, size_t mn)
{
    const poolcfg_pool *c = p->d.cfg;
    char why[POOL_TEXT_MAX];
    if (poolcfg_check(c, reason, rn, why, sizeof why) < 0) {
        strbuf_fixed_printf(msg, mn, "pool \"%s\": %s", c->id, why);
        return true;
    }
    if (p->obs_res.deployment_status == 404) {
        strbuf_fixed_printf(reason, rn, "deployment_not_found");
        strbuf_fixed_printf(msg, mn, "pool \"%s\": deployment %s/%s not found (check \"namespace\" and \"deployment\" of this "
                 "pool in the coordinator's configuration)", c->id, c->namespace_, c->deployment);
        return true;
    }
    for (size_t i = 0; i < POOL_RBAC_N; i++) {
        if (!p->rbac_denied[i])
            continue;
        const char *ns = pool_rbac_needs[i].lease && p->d.lease_namespace ? p->d.lease_namespace : c->namespace_;
        strbuf_fixed_printf(reason, rn, "rbac_denied");
        strbuf_fixed_printf(msg, mn, "pool \"%s\": RBAC does not allow %s %s%s%s in namespace %s (grant it to the "
                 "coordinator's service account; the chart's Role lists every verb needed)", c->id,
                 pool_rbac_needs[i].verb, pool_rbac_needs[i].resource, pool_rbac_needs[i].subresource[0] ? "/" : "",
                 pool_rbac_needs[i].subresource, ns);
        return true;
    }
    if (p->obs_res.deployment_status == 403 || p->obs_res.pods_status == 403) {
        strbuf_fixed_printf(reason, rn, "rbac_denied");
        strbuf_fixed_printf(msg, mn, "pool \"%s\": Kubernetes refused to %s (%s)", c->id,
                 p->obs_res.deployment_status == 403 ? "read the deployment" : "list the pods", p->obs_res.k8s_error);
        return true;
    }
    if (p->obs_res.deployment_status == 200 && !p->st.view.deployment_found) {
        strbuf_fixed_printf(reason, rn, "deployment_unusable");
        strbuf_fixed_printf(msg, mn, "pool \"%s\": deployment %s/%s: %s", c->id, c->namespace_, c->deployment,
                 p->st.view.deployment_error);
        return true;
    }
    return false;
}

/* Reports the configuration error (or its end) once per change: a log line, an Event, the state. */
static void pool_report_config(pool *p, bool has, const char *reason, const char *msg)
{
    pool_state *s = &p->st;
    bool changed = has != s->config_error || (has && strcmp(msg, s->config_message) != 0);
    if (changed) {
        if (has) {
            log_error("pool", "%s", msg);
            strbuf_fixed_printf(s->config_reason, sizeof s->config_reason, "%s", reason);
            strbuf_fixed_printf(s->config_message, sizeof s->config_message, "%s", msg);
            s->config_error_since_ms = pool_wall_ms();
        } else {
            log_info("pool", "pool \"%s\": configuration error resolved (was: %s)", p->d.cfg->id, s->config_reason);
            s->config_reason[0] = s->config_message[0] = '\0';
            s->config_error_since_ms = 0;
        }
        s->config_error = has;
        p->error_evented = false;
    }
    if (has && !p->error_evented && s->leader) {
        pool_event(p, "Warning", "PoolConfigError", msg);
        p->error_evented = true;
    }
}

/* Ready pods older than a minute whose agent does not answer /v1/status: most often a wrong "agent_port". */
static bool pool_silent_agents(pool *p, char *out, size_t n)
{
    const view_pool *v = &p->st.view;
    int64_t now = pool_wall_ms();
    int silent = 0;
    const char *first = NULL;
    for (int i = 0; i < v->npods; i++) {
        const view_pod *pod = &v->pods[i];
        if (pod->ready && !pod->terminating && !pod->has_status && now - pod->created_ms > 60000) {
            silent++;
            first = first ? first : pod->name;
        }
    }
    if (!silent)
        return false;
    strbuf_fixed_printf(out, n, "the agents of %d Ready pods do not answer GET /v1/status on port %d (e.g. pod %s); "
                        "check \"agent_port\" against the agents' IAC_AGENT_LISTEN", silent, p->d.cfg->agent_port,
                        first);
    return true;
}

/* Trouble that is not configuration (the API or the plane unreachable), also logged once per change. */
static void pool_report_cycle(pool *p)
{
    pool_state *s = &p->st;
    s->cycle_error[0] = '\0';
    if (p->obs_res.k8s_error[0] && !s->config_error)
        strbuf_fixed_printf(s->cycle_error, sizeof s->cycle_error, "Kubernetes API: %s", p->obs_res.k8s_error);
    else if (p->rbac_unknown)
        strbuf_fixed_printf(s->cycle_error, sizeof s->cycle_error, "could not review RBAC permissions "
                 "(SelfSubjectAccessReview failed)");
    else if (pool_silent_agents(p, s->cycle_error, sizeof s->cycle_error))
        ;
    else if (p->st.view.demand_error[0])
        strbuf_fixed_printf(s->cycle_error, sizeof s->cycle_error, "%s (scaling on headroom alone)", p->st.view.demand_error);
    if (strcmp(s->cycle_error, p->reported_cycle_error) != 0) {
        if (s->cycle_error[0])
            log_warn("pool", "pool \"%s\": %s", p->d.cfg->id, s->cycle_error);
        else if (p->reported_cycle_error[0])
            log_info("pool", "pool \"%s\": recovered (was: %s)", p->d.cfg->id, p->reported_cycle_error);
        strbuf_fixed_printf(p->reported_cycle_error, sizeof p->reported_cycle_error, "%s", s->cycle_error);
    }
}

static void pool_decide(pool *p)
{
    pool_state *s = &p->st;
    view_pool *v = &s->view;
    int64_t now = pool_wall_ms();
    scaler_pod *sp = calloc(v->npods ? (size_t)v->npods : 1, sizeof(*sp));
    if (!sp) {
        s->decided = false;
        return;
    }
    for (int i = 0; i < v->npods; i++)
        view_to_scaler_pod(&v->pods[i], &sp[i], now);
    scaler_view sv = { .pods = sp, .npods = v->npods, .replicas = v->replicas,
                       .surplus_since_ms = p->surplus_since_ms, .shortage_since_ms = p->shortage_since_ms };
    scaler_demand none = { 0 };
    scaler_decide(&sv, v->demand_ok ? &v->demand : &none, &p->d.cfg->scale, now, &s->decision);
    p->surplus_since_ms = s->decision.surplus_since_ms;
    p->shortage_since_ms = s->decision.shortage_since_ms;
    s->decided = true;
    free(sp);
}

/* ---- ACT ---- */

static int64_t pool_cost_of(const view_pod *pod)
{
    int64_t cost = 0;
    for (int i = 0; i < pod->nslots; i++) {
        const view_slot *sl = &view_pod_slots(pod)[i];
        if (sl->status == SLOT_RESERVED)
            cost += POOL_COST_RESERVED;
        else if (sl->status == SLOT_RUNNING)
            cost += i == 0 ? POOL_COST_APPLYING : POOL_COST_PLAN;
    }
    return cost;
}

static void pool_patch_cost(pool *p, const char *pod, const char *value)
{
    char path[800], body[200];
    pool_pod_path(p, pod, path, sizeof path);
    snprintf(body, sizeof body, "{\"metadata\":{\"annotations\":{\"" VIEW_DELETION_COST "\":\"%s\"}}}", value);
    pool_k8s(p, -1, "PATCH", path, "application/merge-patch+json", body, NULL);
    p->st.cost_patches++;
}

/* Deletion costs track the work on each pod, so that whatever removes pods (us, a person, a rollout) takes the
 * idle ones first. Only pods whose agent answered: without its slots we do not know the work. At most
 * POOL_COST_PATCHES_PER_CYCLE per cycle. */
static void pool_track_costs(pool *p)
{
    const view_pool *v = &p->st.view;
    int written = 0;
    for (int i = 0; i < v->npods && written < POOL_COST_PATCHES_PER_CYCLE; i++) {
        const view_pod *pod = &v->pods[i];
        if (!pod->has_status || pod->terminating || pod->draining)
            continue;
        int64_t want = pool_cost_of(pod);
        if (pod->has_cost && pod->deletion_cost == want)
            continue;
        written++;
        char value[32];
        snprintf(value, sizeof value, "%" PRId64, want);
        pool_patch_cost(p, pod->name, value);
    }
}

static void pool_on_scaled(pool *p, pool_op *op, const k8s_result *r)
{
    (void)op;
    if (r->error || r->status / 100 != 2)
        log_warn("pool", "pool \"%s\": could not scale: %s", p->d.cfg->id, r->errmsg);
}

static void pool_patch_replicas(pool *p, int replicas, pool_op_k8s_fn fn)
{
    char path[800], body[80];
    pool_deploy_path(p, "/scale", path, sizeof path);
    snprintf(body, sizeof body, "{\"spec\":{\"replicas\":%d}}", replicas);
    pool_k8s(p, -1, "PATCH", path, "application/merge-patch+json", body, fn);
}

static bool pool_timed_out_reported(pool *p, const char *name, bool mark)
{
    size_t n = sizeof p->timed_out_reported / sizeof p->timed_out_reported[0];
    for (size_t i = 0; i < n; i++)
        if (strcmp(p->timed_out_reported[i], name) == 0)
            return true;
    if (mark) {
        memmove(p->timed_out_reported[1], p->timed_out_reported[0], (n - 1) * sizeof p->timed_out_reported[0]);
        snprintf(p->timed_out_reported[0], sizeof p->timed_out_reported[0], "%s", name);
    }
    return false;
}

/* A pod we drained for removal that is still here, not terminating, a cycle later (Kubernetes removed another,
 * or the scale patch failed) would never take work again: give it back. */
static void pool_undrain_leftover(pool *p)
{
    if (!p->drained[0])
        return;
    const view_pool *v = &p->st.view;
    for (int i = 0; i < v->npods; i++) {
        const view_pod *pod = &v->pods[i];
        if (strcmp(pod->name, p->drained) != 0)
            continue;
        if (!pod->terminating && pod->has_status && pod->draining && p->token[0]) {
            char url[200];
            pool_agent_url(p, pod->ip, "/v1/undrain", url, sizeof url);
            pool_http(p, -1, "POST", url, p->token, NULL);
            pool_noted(p, "undrained %s: it was drained for removal but is still running", pod->name);
        }
    }
    p->drained[0] = '\0';
}

static int pool_read_token(pool *p)
{
    p->token[0] = '\0';
    if (!p->d.cfg->token_file[0])
        return -1;
    char *data = NULL;
    size_t len = 0;
    if (fs_read_file(p->d.cfg->token_file, POOL_TOKEN_MAX - 1, &data, &len) < 0)
        return -1;
    while (len && (data[len - 1] == '\n' || data[len - 1] == '\r' || data[len - 1] == ' '))
        len--;
    memcpy(p->token, data, len);
    p->token[len] = '\0';
    free(data);
    if (p->token[0])
        log_secret_add(p->token);
    return p->token[0] ? 0 : -1;
}

static void pool_start_act(pool *p)
{
    pool_state *s = &p->st;
    const view_pool *v = &s->view;
    const scaler_decision *d = &s->decision;
    pool_read_token(p);
    pool_undrain_leftover(p);
    pool_track_costs(p);

    for (int k = 0; k < d->ntimed_out; k++) {
        const view_pod *pod = &v->pods[d->timed_out[k]];
        if (pool_timed_out_reported(p, pod->name, true))
            continue;
        char msg[POOL_TEXT_MAX];
        strbuf_fixed_printf(msg, sizeof msg, "pod %s is not Ready %lld s after creation (pod startup timeout); it no longer "
                 "counts as capacity", pod->name, (long long)((pool_wall_ms() - pod->created_ms) / 1000));
        log_warn("pool", "pool \"%s\": %s", p->d.cfg->id, msg);
        pool_event(p, "Warning", "PodStartupTimeout", msg);
        s->startup_timeouts++;
    }

    if (d->desired > v->replicas) {
        pool_patch_replicas(p, d->desired, pool_on_scaled);
        s->scale_ups++;
        pool_noted(p, "scaled up %d\u2192%d: %s", v->replicas, d->desired, d->text);
        pool_event(p, "Normal", "ScaledUp", s->last_action);
    } else if (d->nremove > 0) {
        bool starting = false;
        for (int i = 0; i < v->npods; i++) {
            const view_pod *pod = &v->pods[i];
            bool alive = strcmp(pod->phase, "Pending") == 0 || strcmp(pod->phase, "Running") == 0;
            starting |= alive && !pod->ready && !pod->terminating;
        }
        if (!p->token[0]) {
            strbuf_fixed_printf(s->cycle_error, sizeof s->cycle_error, "cannot remove idle pods: no pool token to drain them "
                     "(set \"token_file\" for this pool)");
        } else if (starting) {
            /* Kubernetes removes a pod that is not Ready before any other, whatever its cost: wait for it. */
            log_debug("pool", "pool \"%s\": scale-down waits for starting pods", p->d.cfg->id);
        } else {
            for (int k = 0; k < d->nremove; k++) {
                const view_pod *pod = &v->pods[d->remove[k]];
                pool_victim *vic = &p->victims[p->nvictims++];
                snprintf(vic->name, sizeof vic->name, "%s", pod->name);
                snprintf(vic->ip, sizeof vic->ip, "%s", pod->ip);
            }
            p->replicas_now = v->replicas;
        }
    }
}

/* ---- REMOVE: drain → re-read → cost → replicas − 1, one pod after the other ---- */

static void pool_remove_next(pool *p);

static void pool_on_removed(pool *p, pool_op *op, const k8s_result *r)
{
    (void)op;
    pool_victim *vic = &p->victims[p->victim];
    if (r->error || r->status / 100 != 2) {
        log_warn("pool", "pool \"%s\": could not lower replicas for %s: %s", p->d.cfg->id, vic->name, r->errmsg);
        p->replicas_now++;
        p->nvictims = p->victim + 1; /* no further removal this cycle; the drained pod is undrained next cycle */
        return;
    }
    p->st.scale_downs++;
    pool_noted(p, "scaled down %d\u2192%d: removed idle pod %s (drained, re-checked idle)", vic->replicas_before,
               vic->replicas_before - 1, vic->name);
    pool_event(p, "Normal", "ScaledDown", p->st.last_action);
}

static void pool_on_recheck(pool *p, pool_op *op, const httpc_response *r)
{
    (void)op;
    pool_victim *vic = &p->victims[p->victim];
    view_pod now = { 0 };
    char err[VIEW_ERR_MAX] = "";
    bool read = false;
    if (r->error == HTTPC_OK && r->status == 200) {
        cJSON *doc = json_parse_object(r->body, r->body_len, err, sizeof err);
        read = doc && view_parse_agent_status(doc, &now, err, sizeof err) == 0;
        cJSON_Delete(doc);
    }
    bool idle = read;
    uint64_t task = 0;
    for (int i = 0; read && i < now.nslots; i++)
        if (view_pod_slots(&now)[i].status != SLOT_IDLE) {
            idle = false;
            task = view_pod_slots(&now)[i].task_id;
        }
    view_pod_free(&now);
    char url[200];
    if (!idle) {
        pool_agent_url(p, vic->ip, "/v1/undrain", url, sizeof url);
        pool_http(p, -1, "POST", url, p->token, NULL);
        p->st.scale_down_aborted++;
        p->drained[0] = '\0';
        if (read)
            pool_noted(p, "kept %s: task %" PRIu64 " reached it while it was drained; undrained", vic->name, task);
        else
            pool_noted(p, "kept %s: its status could not be re-read after the drain; undrained", vic->name);
        pool_event(p, "Normal", "ScaleDownAborted", p->st.last_action);
        return;
    }
    char path[800], body[200];
    pool_pod_path(p, vic->name, path, sizeof path);
    snprintf(body, sizeof body, "{\"metadata\":{\"annotations\":{\"" VIEW_DELETION_COST "\":\"" POOL_COST_MIN "\"}}}");
    pool_k8s(p, -1, "PATCH", path, "application/merge-patch+json", body, NULL);
    p->st.cost_patches++;
    vic->replicas_before = p->replicas_now;
    p->replicas_now--;
    pool_patch_replicas(p, p->replicas_now, pool_on_removed);
}

static void pool_on_drained(pool *p, pool_op *op, const httpc_response *r)
{
    (void)op;
    pool_victim *vic = &p->victims[p->victim];
    if (r->error != HTTPC_OK || r->status / 100 != 2) {
        log_warn("pool", "pool \"%s\": could not drain %s (%s); not removing it", p->d.cfg->id, vic->name,
                 r->error != HTTPC_OK ? r->errmsg : "the agent refused");
        vic->name[0] = '\0'; /* skipped */
        return;
    }
    snprintf(p->drained, sizeof p->drained, "%s", vic->name);
    char url[200];
    pool_agent_url(p, vic->ip, "/v1/status", url, sizeof url);
    pool_http(p, -1, "GET", url, NULL, pool_on_recheck);
}

static void pool_remove_next(pool *p)
{
    pool_victim *vic = &p->victims[p->victim];
    char url[200];
    pool_agent_url(p, vic->ip, "/v1/drain", url, sizeof url);
    pool_hold(p);
    pool_http(p, -1, "POST", url, p->token, pool_on_drained);
    pool_release(p);
}

/* ---- the cycle ---- */

static void pool_finish(pool *p)
{
    p->stage = STAGE_IDLE;
    p->st.cycle_duration_ms = pool_mono_ms() - p->started_mono_ms;
    void (*done)(pool *, void *) = p->done;
    p->done = NULL;
    if (done)
        done(p, p->done_arg);
}

/* After the reads: configuration, decision, and (leader only) the actions of ACT, all under one hold so that the
 * stage ends when its last request has answered. */
static void pool_after_read(pool *p)
{
    pool_state *s = &p->st;
    p->stage = STAGE_ACT;
    p->nvictims = p->victim = 0;
    pool_hold(p);
    view_pool_free(&s->view);
    s->view = p->next;
    memset(&p->next, 0, sizeof p->next);
    s->observed = true;
    s->observed_at_ms = s->view.observed_ms;
    char reason[64] = "", msg[POOL_TEXT_MAX] = "";
    bool bad = pool_config_error(p, reason, sizeof reason, msg, sizeof msg);
    pool_report_config(p, bad, reason, msg);
    s->decided = false;
    if (!bad && s->view.deployment_found)
        pool_decide(p);
    pool_report_cycle(p);
    if (s->leader && s->decided)
        pool_start_act(p);
    pool_release(p);
}

/* Called whenever the current stage has no request left in flight. */
static void pool_stage_next(pool *p)
{
    switch (p->stage) {
    case STAGE_READ:
        pool_after_read(p);
        return;
    case STAGE_REMOVE:
        p->victim++; /* the one just handled, removed or kept */
        /* fall through */
    case STAGE_ACT:
        while (p->victim < p->nvictims && !p->victims[p->victim].name[0])
            p->victim++;
        if (p->victim < p->nvictims) {
            p->stage = STAGE_REMOVE;
            pool_remove_next(p);
            return;
        }
        pool_finish(p);
        return;
    case STAGE_IDLE:
        return;
    }
}

pool *pool_new(const pool_deps *deps)
{
    pool *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->d = *deps;
    p->st.cfg = deps->cfg;
    p->surplus_since_ms = SCALER_NEVER;
    p->shortage_since_ms = SCALER_NEVER;
    return p;
}

int pool_cycle(pool *p, void (*done)(pool *p, void *arg), void *arg)
{
    if (p->stage != STAGE_IDLE)
        return -EBUSY;
    p->done = done;
    p->done_arg = arg;
    p->started_mono_ms = pool_mono_ms();
    p->st.cycles++;
    p->st.leader = p->d.is_leader ? p->d.is_leader(p->d.leader_arg) : true;
    pool_start_read(p);
    return 0;
}

const pool_state *pool_get_state(const pool *p) { return &p->st; }

void pool_free(pool *p)
{
    if (!p)
        return;
    p->stage = STAGE_IDLE; /* no stage advances while we cancel */
    p->done = NULL;
    observe_cancel(p->obs);
    while (p->ops) {
        pool_op *op = p->ops;
        p->ops = op->next;
        if (op->kc)
            k8s_cancel(op->kc);
        if (op->hc)
            httpc_cancel(op->hc);
        free(op);
    }
    view_pool_free(&p->next);
    view_pool_free(&p->st.view);
    if (p->token[0])
        log_secret_remove(p->token);
    free(p);
}
