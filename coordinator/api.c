/* api.c — the coordinator's read API; see api.h for the routes and documents.
 *
 * A table of routes over common/https. Every answer is rendered from the pools' states at request time (the
 * states live in the pools and change only between loop turns, so one request sees one consistent picture).
 * Metrics are rendered the same way: each family once, with a sample per pool, so there is no registry to keep
 * in step with the pools. Label cardinality stays bounded by the pools: reservation age is the oldest per pool,
 * not one series per pod. */
#include "api.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "explain.h"
#include "iac/https.h"
#include "iac/metrics.h"

struct api {
    https_server *srv;
    api_source    src;
    char          identity[256];
};

/* ---- reading the source ---- */

static int64_t api_now(const api *a)
{
    if (a->src.now_ms)
        return a->src.now_ms(a->src.arg);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const pool_state *api_pool(const api *a, int i) { return a->src.pool(a->src.arg, i); }

static bool api_leader(const api *a) { return a->src.is_leader ? a->src.is_leader(a->src.arg) : true; }

static const char *api_holder(const api *a)
{
    const char *h = a->src.holder ? a->src.holder(a->src.arg) : (api_leader(a) ? a->identity : "");
    return h ? h : "";
}

static const char *api_pool_id(const pool_state *ps)
{
    return ps->cfg ? ps->cfg->id : "";
}

static int64_t api_elapsed(int64_t now, int64_t t) { return t >= now ? 0 : now - t; }

/* ---- what each pool's slots add up to ---- */

enum { KIND_SLOT0, KIND_PLAN, KIND__N };
enum { STATE_FREE, STATE_BUSY, STATE_RESERVED, STATE__N };
static const char *const kind_names[KIND__N] = { "slot0", "plan" };
static const char *const state_names[STATE__N] = { "free", "busy", "reserved" };

typedef struct {
    int     ready, starting;
    int     slots[KIND__N][STATE__N];
    int     reservations;      /* reserved slot 0s */
    int64_t oldest_reserved_ms; /* age of the oldest reservation, 0 when none */
} pool_tally;

static bool takes_work(const view_pod *p)
{
    return p->ready && p->has_status && !p->draining && !p->terminating;
}

static void tally_pool(const pool_state *ps, int64_t now, pool_tally *t)
{
    memset(t, 0, sizeof *t);
    if (!ps)
        return;
    for (int i = 0; i < ps->view.npods; i++) {
        const view_pod *p = &ps->view.pods[i];
        t->ready += p->ready && !p->terminating;
        /* Starting as the scaler counts it: not Ready, not terminating, in a phase that leads to Ready. */
        t->starting += !p->ready && !p->terminating && (!strcmp(p->phase, "Pending") || !strcmp(p->phase, "Running"));
        if (!p->has_status)
            continue;
        for (int s = 0; s < p->nslots && s < SLOTS_MAX; s++) {
            const view_slot *sl = &view_pod_slots(p)[s];
            int kind = s == 0 ? KIND_SLOT0 : KIND_PLAN;
            if (sl->status == SLOT_IDLE) {
                /* An idle slot on a pod on its way out is no capacity. */
                t->slots[kind][STATE_FREE] += takes_work(p);
            } else if (sl->status == SLOT_RUNNING) {
                t->slots[kind][STATE_BUSY]++;
            } else {
                t->slots[kind][STATE_RESERVED]++;
                if (s == 0) {
                    int64_t age = api_elapsed(now, sl->since_ms);
                    t->reservations++;
                    if (age > t->oldest_reserved_ms)
                        t->oldest_reserved_ms = age;
                }
            }
        }
    }
}

/* ---- JSON ---- */

static void json_str(strbuf *b, const char *s)
{
    strbuf_putc(b, '"');
    strbuf_json_escape(b, s, strlen(s));
    strbuf_putc(b, '"');
}

/* A string, or null when empty. */
static void json_str_or_null(strbuf *b, const char *s)
{
    if (!s || !s[0])
        strbuf_puts(b, "null");
    else
        json_str(b, s);
}

static void json_secs_or_null(strbuf *b, int64_t ms)
{
    if (ms > 0)
        strbuf_printf(b, "%lld", (long long)(ms / 1000));
    else
        strbuf_puts(b, "null");
}

static void write_pod(strbuf *b, const view_pod *p, int64_t now)
{
    strbuf_puts(b, "{\"name\":");
    json_str(b, p->name);
    strbuf_puts(b, ",\"ip\":");
    json_str_or_null(b, p->ip);
    strbuf_puts(b, ",\"phase\":");
    json_str_or_null(b, p->phase);
    strbuf_printf(b, ",\"ready\":%s,\"terminating\":%s,\"created\":", p->ready ? "true" : "false",
                  p->terminating ? "true" : "false");
    json_secs_or_null(b, p->created_ms);
    strbuf_printf(b, ",\"age\":%lld,\"deletion_cost\":", (long long)(api_elapsed(now, p->created_ms) / 1000));
    if (p->has_cost)
        strbuf_printf(b, "%lld", (long long)p->deletion_cost);
    else
        strbuf_puts(b, "null");
    strbuf_puts(b, ",\"agent_state\":");
    json_str_or_null(b, p->has_status ? (p->draining ? "draining" : "ready") : NULL);
    strbuf_puts(b, ",\"agent_error\":");
    json_str_or_null(b, p->has_status ? NULL : p->status_error);
    strbuf_puts(b, ",\"agent_id\":");
    json_str_or_null(b, p->has_status ? p->agent_id : NULL);
    strbuf_printf(b, ",\"connected\":%s,\"slots\":[", p->has_status && p->connected ? "true" : "false");
    for (int s = 0; p->has_status && s < p->nslots && s < SLOTS_MAX; s++) {
        const view_slot *sl = &view_pod_slots(p)[s];
        strbuf_printf(b, "%s{\"slot_id\":%d,\"status\":\"%s\",", s ? "," : "", s, slots_status_name(sl->status));
        if (sl->status == SLOT_IDLE)
            strbuf_puts(b, "\"task_id\":null,\"task_type\":null,\"action\":null");
        else
            strbuf_printf(b, "\"task_id\":%" PRIu64 ",\"task_type\":\"%s\",\"action\":\"%s\"", sl->task_id,
                          slots_type_name(sl->type), sl->apply ? "apply" : "plan");
        strbuf_puts(b, ",\"since\":");
        json_secs_or_null(b, sl->since_ms);
        strbuf_putc(b, '}');
    }
    strbuf_puts(b, "]}");
}

static void write_config(strbuf *b, const poolcfg_pool *c)
{
    static const poolcfg_pool none;
    if (!c)
        c = &none;
    strbuf_puts(b, "\"id\":");
    json_str(b, c->id);
    strbuf_puts(b, ",\"namespace\":");
    json_str(b, c->namespace_);
    strbuf_puts(b, ",\"deployment\":");
    json_str(b, c->deployment);
    strbuf_printf(b, ",\"min_replicas\":%d,\"max_replicas\":%d,\"slots_per_pod\":%d,"
                     "\"headroom\":{\"slot0\":%d,\"plan\":%d}",
                  c->scale.min_replicas, c->scale.max_replicas, c->scale.slots_per_pod, c->scale.headroom_slot0,
                  c->scale.headroom_plan);
}

static void write_decision(strbuf *b, const pool_state *ps)
{
    if (!ps->decided) {
        strbuf_puts(b, "null");
        return;
    }
    const scaler_decision *d = &ps->decision;
    strbuf_puts(b, "{\"reason\":");
    json_str(b, scaler_reason_name(d->reason));
    strbuf_puts(b, ",\"text\":");
    json_str(b, d->text);
    strbuf_printf(b, ",\"free_slot0\":%" PRId64 ",\"need_slot0\":%" PRId64 ",\"free_plan\":%" PRId64
                     ",\"need_plan\":%" PRId64 ",\"coming_pods\":%d}",
                  d->free_slot0, d->need_slot0, d->free_plan, d->need_plan, d->coming_pods);
}

static void write_demand(strbuf *b, const view_pool *v)
{
    strbuf_printf(b, "{\"ok\":%s,\"error\":", v->demand_ok ? "true" : "false");
    json_str_or_null(b, v->demand_error);
    strbuf_printf(b, ",\"plan_and_apply\":%d,\"plan\":%d,\"drift_check\":%d,\"waiting\":[", v->demand.plan_and_apply,
                  v->demand.plan, v->demand.drift_check);
    for (int i = 0; i < v->nwaiting; i++) {
        const view_waiting *w = &v->waiting[i];
        strbuf_printf(b, "%s{\"task_id\":%" PRIu64 ",\"task_type\":", i ? "," : "", w->task_id);
        json_str_or_null(b, slots_type_name(w->type));
        strbuf_puts(b, ",\"since\":");
        json_secs_or_null(b, w->waiting_since_ms);
        strbuf_putc(b, '}');
    }
    strbuf_puts(b, "]}");
}

static void write_pool(strbuf *b, const pool_state *ps, int64_t now)
{
    pool_tally t;
    tally_pool(ps, now, &t);
    strbuf_putc(b, '{');
    write_config(b, ps->cfg);
    strbuf_printf(b, ",\"observed\":%s,\"observed_at\":", ps->observed ? "true" : "false");
    json_secs_or_null(b, ps->observed ? ps->observed_at_ms : 0);
    strbuf_printf(b, ",\"leader\":%s,\"deployment_found\":%s,\"deployment_error\":", ps->leader ? "true" : "false",
                  ps->view.deployment_found ? "true" : "false");
    json_str_or_null(b, ps->view.deployment_error);
    strbuf_printf(b, ",\"replicas\":%d,\"ready_replicas\":%d,\"desired\":%d,\"starting_pods\":%d,\"slots\":{",
                  ps->view.replicas, ps->view.ready_replicas, ps->decided ? ps->decision.desired : ps->view.replicas,
                  t.starting);
    for (int k = 0; k < KIND__N; k++) {
        strbuf_printf(b, "%s\"%s\":{", k ? "," : "", kind_names[k]);
        for (int s = 0; s < STATE__N; s++)
            strbuf_printf(b, "%s\"%s\":%d", s ? "," : "", state_names[s], t.slots[k][s]);
        strbuf_putc(b, '}');
    }
    strbuf_puts(b, "},\"decision\":");
    write_decision(b, ps);
    strbuf_puts(b, ",\"demand\":");
    write_demand(b, &ps->view);
    strbuf_puts(b, ",\"config_error\":");
    if (ps->config_error) {
        strbuf_puts(b, "{\"reason\":");
        json_str(b, ps->config_reason);
        strbuf_puts(b, ",\"message\":");
        json_str(b, ps->config_message);
        strbuf_puts(b, ",\"since\":");
        json_secs_or_null(b, ps->config_error_since_ms);
        strbuf_putc(b, '}');
    } else {
        strbuf_puts(b, "null");
    }
    strbuf_puts(b, ",\"cycle_error\":");
    json_str_or_null(b, ps->cycle_error);
    strbuf_puts(b, ",\"last_action\":");
    if (ps->last_action[0]) {
        strbuf_puts(b, "{\"text\":");
        json_str(b, ps->last_action);
        strbuf_puts(b, ",\"at\":");
        json_secs_or_null(b, ps->last_action_ms);
        strbuf_putc(b, '}');
    } else {
        strbuf_puts(b, "null");
    }
    strbuf_printf(b, ",\"counters\":{\"cycles\":%" PRIu64 ",\"scale_ups\":%" PRIu64 ",\"scale_downs\":%" PRIu64
                     ",\"scale_down_aborted\":%" PRIu64 ",\"events_created\":%" PRIu64 ",\"cost_patches\":%" PRIu64
                     ",\"startup_timeouts\":%" PRIu64 ",\"cycle_duration_ms\":%lld},\"pods\":[",
                  ps->cycles, ps->scale_ups, ps->scale_downs, ps->scale_down_aborted, ps->events_created,
                  ps->cost_patches, ps->startup_timeouts, (long long)ps->cycle_duration_ms);
    for (int i = 0; i < ps->view.npods; i++) {
        if (i)
            strbuf_putc(b, ',');
        write_pod(b, &ps->view.pods[i], now);
    }
    strbuf_puts(b, "]}");
}

/* ---- metrics ---- */

typedef double (*pool_value)(const pool_state *ps, const pool_tally *t);

static double v_desired(const pool_state *ps, const pool_tally *t)
{
    (void)t;
    return ps->decided ? ps->decision.desired : ps->view.replicas;
}
static double v_current(const pool_state *ps, const pool_tally *t) { (void)t; return ps->view.replicas; }
static double v_ready(const pool_state *ps, const pool_tally *t) { (void)ps; return t->ready; }
static double v_starting(const pool_state *ps, const pool_tally *t) { (void)ps; return t->starting; }
static double v_reservations(const pool_state *ps, const pool_tally *t) { (void)ps; return t->reservations; }
static double v_res_age(const pool_state *ps, const pool_tally *t)
{
    (void)ps;
    return (double)t->oldest_reserved_ms / 1000.0;
}
static double v_cycle(const pool_state *ps, const pool_tally *t)
{
    (void)t;
    return (double)ps->cycle_duration_ms / 1000.0;
}
static double v_observed(const pool_state *ps, const pool_tally *t) { (void)t; return ps->observed; }
static double v_cycles(const pool_state *ps, const pool_tally *t) { (void)t; return (double)ps->cycles; }
static double v_timeouts(const pool_state *ps, const pool_tally *t) { (void)t; return (double)ps->startup_timeouts; }

/* Families with the pool label only. */
static const struct {
    const char *name;
    metric_type type;
    const char *help;
    pool_value  value;
} pool_families[] = {
    { "iac_pool_observed", METRIC_GAUGE, "1 once the pool has completed an observation.", v_observed },
    { "iac_pool_desired_pods", METRIC_GAUGE, "Replicas the last decision wants.", v_desired },
    { "iac_pool_current_pods", METRIC_GAUGE, "The Deployment's spec.replicas.", v_current },
    { "iac_pool_ready_pods", METRIC_GAUGE, "Pods Ready and not terminating.", v_ready },
    { "iac_pool_starting_pods", METRIC_GAUGE, "Pods created and not Ready yet.", v_starting },
    { "iac_pool_reservations", METRIC_GAUGE, "Slot 0s reserved for an apply (apply_pending tasks).",
      v_reservations },
    { "iac_pool_reservation_age_seconds", METRIC_GAUGE,
      "Age of the pool's oldest slot 0 reservation (0 when none).", v_res_age },
    { "iac_pool_cycle_duration_seconds", METRIC_GAUGE, "Duration of the pool's last cycle.", v_cycle },
    { "iac_pool_cycles_total", METRIC_COUNTER, "Cycles run.", v_cycles },
    { "iac_pool_startup_timeouts_total", METRIC_COUNTER, "Pods reported past the startup timeout.", v_timeouts },
};

static void write_metrics(const api *a, int64_t now, strbuf *b)
{
    int n = a->src.npools;
    const pool_state **ps = calloc((size_t)(n ? n : 1), sizeof *ps);
    pool_tally *t = calloc((size_t)(n ? n : 1), sizeof *t);
    if (!ps || !t) {
        free(ps);
        free(t);
        b->oom = true;
        return;
    }
    for (int i = 0; i < n; i++) {
        ps[i] = api_pool(a, i);
        tally_pool(ps[i], now, &t[i]);
    }

    const char *build[] = { "version", IAC_VERSION, NULL };
    metrics_family(b, "iac_coordinator_build_info", METRIC_GAUGE, "Build of this coordinator.");
    metrics_sample(b, "iac_coordinator_build_info", build, 1);
    metrics_family(b, "iac_coordinator_leader", METRIC_GAUGE, "1 while this replica holds the Lease and acts.");
    metrics_sample(b, "iac_coordinator_leader", NULL, api_leader(a));

    for (size_t f = 0; f < sizeof pool_families / sizeof pool_families[0]; f++) {
        metrics_family(b, pool_families[f].name, pool_families[f].type, pool_families[f].help);
        for (int i = 0; i < n; i++) {
            if (!ps[i])
                continue;
            const char *labels[] = { "pool", api_pool_id(ps[i]), NULL };
            metrics_sample(b, pool_families[f].name, labels, pool_families[f].value(ps[i], &t[i]));
        }
    }

    metrics_family(b, "iac_pool_slots", METRIC_GAUGE,
                   "Slots by kind (slot0: plan_and_apply; plan: plan and drift_check) and state; free counts only "
                   "pods that take work.");
    for (int i = 0; i < n; i++)
        for (int k = 0; ps[i] && k < KIND__N; k++)
            for (int s = 0; s < STATE__N; s++) {
                const char *labels[] = { "pool", api_pool_id(ps[i]), "kind", kind_names[k], "state", state_names[s],
                                         NULL };
                metrics_sample(b, "iac_pool_slots", labels, t[i].slots[k][s]);
            }

    metrics_family(b, "iac_pool_waiting_tasks", METRIC_GAUGE, "Tasks waiting for a slot, as the plane reports.");
    for (int i = 0; i < n; i++) {
        if (!ps[i])
            continue;
        const struct { const char *kind; int n; } w[] = {
            { "plan_and_apply", ps[i]->view.demand.plan_and_apply },
            { "plan", ps[i]->view.demand.plan },
            { "drift_check", ps[i]->view.demand.drift_check },
        };
        for (size_t k = 0; k < sizeof w / sizeof w[0]; k++) {
            const char *labels[] = { "pool", api_pool_id(ps[i]), "kind", w[k].kind, NULL };
            metrics_sample(b, "iac_pool_waiting_tasks", labels, w[k].n);
        }
    }

    metrics_family(b, "iac_pool_scale_events_total", METRIC_COUNTER,
                   "Scale changes made: up, down, and aborted scale-downs (work slipped in after the drain).");
    for (int i = 0; i < n; i++) {
        if (!ps[i])
            continue;
        const struct { const char *dir; uint64_t n; } e[] = {
            { "up", ps[i]->scale_ups }, { "down", ps[i]->scale_downs }, { "aborted", ps[i]->scale_down_aborted },
        };
        for (size_t k = 0; k < sizeof e / sizeof e[0]; k++) {
            const char *labels[] = { "pool", api_pool_id(ps[i]), "direction", e[k].dir, NULL };
            metrics_sample(b, "iac_pool_scale_events_total", labels, (double)e[k].n);
        }
    }

    metrics_family(b, "iac_pool_config_error", METRIC_GAUGE,
                   "1 with the reason while the pool's configuration error stands; one series with reason=\"\" "
                   "and value 0 when the configuration is fine.");
    for (int i = 0; i < n; i++) {
        if (!ps[i])
            continue;
        const char *labels[] = { "pool", api_pool_id(ps[i]), "reason", ps[i]->config_error ? ps[i]->config_reason : "",
                                 NULL };
        metrics_sample(b, "iac_pool_config_error", labels, ps[i]->config_error);
    }
    free(ps);
    free(t);
}

/* ---- routes ---- */

typedef void (*route_fn)(api *a, const https_request *req, https_response *res);

static void route_pools(api *a, const https_request *req, https_response *res)
{
    (void)req;
    int64_t now = api_now(a);
    strbuf *b = &res->body;
    strbuf_printf(b, "{\"leader\":%s,\"identity\":", api_leader(a) ? "true" : "false");
    json_str(b, a->identity);
    strbuf_puts(b, ",\"holder\":");
    json_str(b, api_holder(a));
    strbuf_puts(b, ",\"pools\":[");
    bool first = true;
    for (int i = 0; i < a->src.npools; i++) {
        const pool_state *ps = api_pool(a, i);
        if (!ps)
            continue;
        if (!first)
            strbuf_putc(b, ',');
        first = false;
        write_pool(b, ps, now);
    }
    strbuf_puts(b, "]}");
}

static void route_pool(api *a, const https_request *req, https_response *res)
{
    const char *id = req->path + strlen("/v1/pools/");
    for (int i = 0; i < a->src.npools; i++) {
        const pool_state *ps = api_pool(a, i);
        if (ps && ps->cfg && strcmp(ps->cfg->id, id) == 0) {
            write_pool(&res->body, ps, api_now(a));
            return;
        }
    }
    char msg[160];
    snprintf(msg, sizeof msg, "no pool \"%.64s\" (GET /v1/pools lists them)", id);
    https_reply_error(res, 404, msg);
}

/* "N" with 1 ≤ N < 2^64, digits only. */
static int parse_task_id(const char *s, uint64_t *out)
{
    if (!s[0] || strspn(s, "0123456789") != strlen(s) || strlen(s) > 20)
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno || v == 0)
        return -1;
    *out = v;
    return 0;
}

static void route_explain(api *a, const https_request *req, https_response *res)
{
    char val[64], msg[160];
    uint64_t task = 0;
    if (https_query_param(req->query, "task_id", val, sizeof val) < 0) {
        https_reply_error(res, 400, "task_id is required: GET /v1/explain?task_id=N");
        return;
    }
    if (parse_task_id(val, &task) < 0) {
        snprintf(msg, sizeof msg, "task_id \"%.24s\" is not a task id: give a whole number from 1", val);
        https_reply_error(res, 400, msg);
        return;
    }
    int n = a->src.npools;
    const pool_state **ps = calloc((size_t)(n ? n : 1), sizeof *ps);
    if (!ps) {
        https_reply_error(res, 500, "out of memory");
        return;
    }
    for (int i = 0; i < n; i++)
        ps[i] = api_pool(a, i);
    int rc = explain_task(ps, n, task, api_now(a), &res->body, NULL);
    free(ps);
    if (rc < 0)
        https_reply_error(res, 500, rc == -ENOMEM ? "out of memory" : "cannot explain this task");
}

static void route_metrics(api *a, const https_request *req, https_response *res)
{
    (void)req;
    res->content_type = "text/plain; version=0.0.4";
    write_metrics(a, api_now(a), &res->body);
}

static void route_healthz(api *a, const https_request *req, https_response *res)
{
    (void)a, (void)req;
    strbuf_puts(&res->body, "{\"ok\":true}");
}

static void route_readyz(api *a, const https_request *req, https_response *res)
{
    (void)req;
    char why[256] = "";
    bool ready = a->src.ready ? a->src.ready(a->src.arg, why, sizeof why) : true;
    if (ready && !why[0])
        for (int i = 0; i < a->src.npools; i++) {
            const pool_state *ps = api_pool(a, i);
            if (!ps || !ps->observed) {
                snprintf(why, sizeof why, "pool %s has not completed an observation yet",
                         ps && ps->cfg ? ps->cfg->id : "?");
                ready = false;
                break;
            }
        }
    if (!ready && !why[0])
        snprintf(why, sizeof why, "not ready");
    res->status = ready ? 200 : 503;
    strbuf_printf(&res->body, "{\"ready\":%s", ready ? "true" : "false");
    if (!ready) {
        strbuf_puts(&res->body, ",\"reason\":");
        json_str(&res->body, why);
    }
    strbuf_putc(&res->body, '}');
}

static const struct {
    const char *path;
    bool        prefix; /* path is a prefix: /v1/pools/{id} */
    route_fn    fn;
} routes[] = {
    { "/v1/pools", false, route_pools }, { "/v1/pools/", true, route_pool }, { "/v1/explain", false, route_explain },
    { "/metrics", false, route_metrics }, { "/healthz", false, route_healthz }, { "/readyz", false, route_readyz },
};

static void api_handle(const https_request *req, https_response *res, void *arg)
{
    api *a = arg;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        bool match = routes[i].prefix ? strncmp(req->path, routes[i].path, strlen(routes[i].path)) == 0
                                      : strcmp(req->path, routes[i].path) == 0;
        if (!match)
            continue;
        if (strcmp(req->method, "GET") != 0) {
            https_reply_error(res, 405, "method not allowed: this API is read-only (GET)");
            return;
        }
        routes[i].fn(a, req, res);
        if (res->body.oom)
            https_reply_error(res, 500, "out of memory");
        return;
    }
    https_reply_error(res, 404, "not found: see GET /v1/pools, /v1/explain?task_id=N, /metrics");
}

api *api_start(uv_loop_t *loop, const char *host, int port, const api_source *src, char *err, size_t errlen)
{
    if (!src || !src->pool || src->npools < 0) {
        snprintf(err, errlen, "api: no pools to serve (the source needs a pool callback and npools >= 0)");
        return NULL;
    }
    api *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "api: out of memory");
        return NULL;
    }
    a->src = *src;
    snprintf(a->identity, sizeof a->identity, "%s", src->identity ? src->identity : "");
    a->src.identity = a->identity;
    https_opts o = { .host = host, .port = port, .max_body = 4096, .handler = api_handle, .arg = a };
    a->srv = https_listen(loop, &o, err, errlen);
    if (!a->srv) {
        free(a);
        return NULL;
    }
    return a;
}

int api_port(const api *a) { return https_port(a->srv); }

void api_free(api *a)
{
    if (!a)
        return;
    https_free(a->srv);
    free(a);
}
