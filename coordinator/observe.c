/* observe.c — one observation of a pool; see observe.h.
 *
 * A small state machine: deployment → pods → (agents ∥ demand) → done. The fan-out keeps one counter of requests
 * in flight; each answer fills its own part of the view, so the order in which they come back does not matter. */
#include "observe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "iac/json.h"
#include "iac/strbuf.h"

/* Agents asked at once: a pool of 1,000 pods must not need 1,000 sockets (the default limit is 1,024 files),
 * and 64 keep a cycle short (each answer takes a millisecond or two on a cluster network). */
#define OBSERVE_AGENTS_AT_ONCE 64

typedef struct observe_agent {
    observe    *o;
    int         pod;   /* index into out->pods */
    httpc_call *call;
} observe_agent;

struct observe {
    k8s                *kube;
    httpc              *http;
    const poolcfg_pool *cfg;
    observe_opts        opts;
    view_pool          *out;
    observe_cb          cb;
    void               *arg;
    observe_result      res;
    k8s_call           *kcall;
    observe_agent      *agents;   /* one per pod asked */
    int                 nagents;
    int                 next_agent; /* the first not yet started */
    int                 agents_in_flight; /* at most OBSERVE_AGENTS_AT_ONCE */
    httpc_call         *demand_call;
    int                 inflight;
};

static int64_t observe_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void observe_finish(observe *o)
{
    o->out->observed_ms = observe_wall_ms();
    observe_cb cb = o->cb;
    void *arg = o->arg;
    observe_result res = o->res;
    free(o->agents);
    free(o);
    cb(&res, arg);
}

static void observe_k8s_error(observe *o, const char *what, const k8s_result *r)
{
    if (o->res.k8s_error[0])
        return;
    if (r->error)
        strbuf_fixed_printf(o->res.k8s_error, sizeof o->res.k8s_error, "%s: %s", what, r->errmsg);
    else
        strbuf_fixed_printf(o->res.k8s_error, sizeof o->res.k8s_error, "%s: HTTP %ld %s", what, r->status, r->errmsg);
}

static void observe_fanout_done(observe *o)
{
    if (--o->inflight == 0)
        observe_finish(o);
}

static void observe_start_agents(observe *o);

static void observe_on_agent(const httpc_response *res, void *arg)
{
    observe_agent *a = arg;
    observe *o = a->o;
    view_pod *pod = &o->out->pods[a->pod];
    a->call = NULL;
    o->agents_in_flight--;
    char err[128];
    if (res->error != HTTPC_OK) {
        strbuf_fixed_printf(pod->status_error, sizeof pod->status_error, "%s", res->errmsg);
    } else if (res->status != 200) {
        strbuf_fixed_printf(pod->status_error, sizeof pod->status_error, "/v1/status answered HTTP %ld", res->status);
    } else {
        cJSON *doc = json_parse_object(res->body, res->body_len, err, sizeof err);
        if (!doc || view_parse_agent_status(doc, pod, err, sizeof err) < 0)
            strbuf_fixed_printf(pod->status_error, sizeof pod->status_error, "/v1/status: %s", err);
        else
            o->res.agents_answered++;
        cJSON_Delete(doc);
    }
    observe_start_agents(o);
    observe_fanout_done(o);
}

static void observe_on_demand(const httpc_response *res, void *arg)
{
    observe *o = arg;
    view_pool *v = o->out;
    o->demand_call = NULL;
    char err[128];
    if (res->error != HTTPC_OK) {
        strbuf_fixed_printf(v->demand_error, sizeof v->demand_error, "demand URL: %s", res->errmsg);
    } else if (res->status != 200) {
        strbuf_fixed_printf(v->demand_error, sizeof v->demand_error, "demand URL answered HTTP %ld", res->status);
    } else {
        cJSON *doc = json_parse_object(res->body, res->body_len, err, sizeof err);
        if (!doc || view_parse_demand(doc, o->cfg->id, v, err, sizeof err) < 0)
            strbuf_fixed_printf(v->demand_error, sizeof v->demand_error, "demand URL: %s", err);
        else
            v->demand_ok = true;
        cJSON_Delete(doc);
    }
    observe_fanout_done(o);
}

/* Starts agent requests until OBSERVE_AGENTS_AT_ONCE are in flight or none is left; each answer starts the next. */
static void observe_start_agents(observe *o)
{
    while (o->next_agent < o->nagents && o->agents_in_flight < OBSERVE_AGENTS_AT_ONCE) {
        observe_agent *a = &o->agents[o->next_agent++];
        view_pod *p = &o->out->pods[a->pod];
        char url[160];
        bool v6 = strchr(p->ip, ':') != NULL;
        snprintf(url, sizeof url, "http://%s%s%s:%d/v1/status", v6 ? "[" : "", p->ip, v6 ? "]" : "",
                 o->cfg->agent_port);
        httpc_req req = { .method = "GET", .url = url, .mode = HTTPC_PLAIN, .timeout_ms = o->opts.agent_timeout_ms };
        a->call = httpc_request(o->http, &req, observe_on_agent, a);
        if (a->call) {
            o->agents_in_flight++;
        } else {
            strbuf_fixed_printf(p->status_error, sizeof p->status_error, "out of memory");
            o->inflight--; /* counted in observe_fanout; never answered */
        }
    }
}

/* Asks every Ready pod's agent for its slots (a bounded number at once), and the plane for its demand. */
static void observe_fanout(observe *o)
{
    view_pool *v = o->out;
    o->inflight = 1; /* held until every request is started, so an early answer cannot finish us */
    o->agents = calloc(v->npods ? (size_t)v->npods : 1, sizeof(*o->agents));
    for (int i = 0; o->agents && i < v->npods; i++) {
        view_pod *p = &v->pods[i];
        if (!p->ready || p->terminating || !p->ip[0]) {
            strbuf_fixed_printf(p->status_error, sizeof p->status_error, "%s",
                                p->terminating ? "terminating" : !p->ready ? "not Ready" : "no pod IP");
            continue;
        }
        observe_agent *a = &o->agents[o->nagents++];
        a->o = o;
        a->pod = i;
        o->inflight++;
        o->res.agents_asked++;
    }
    if (o->cfg->demand_url[0]) {
        httpc_req req = { .method = "GET", .url = o->cfg->demand_url, .mode = HTTPC_PLAIN,
                          .timeout_ms = o->opts.demand_timeout_ms };
        o->inflight++;
        o->demand_call = httpc_request(o->http, &req, observe_on_demand, o);
        if (!o->demand_call) {
            o->inflight--;
            strbuf_fixed_printf(v->demand_error, sizeof v->demand_error, "out of memory");
        }
    }
    if (o->agents)
        observe_start_agents(o);
    observe_fanout_done(o);
}

static void observe_on_pods(const k8s_result *r, void *arg)
{
    observe *o = arg;
    o->kcall = NULL;
    o->res.pods_status = r->status;
    char err[128];
    if (r->error || r->status != 200 || !r->obj) {
        observe_k8s_error(o, "list pods", r);
        observe_finish(o);
        return;
    }
    if (view_parse_pods(r->obj, o->out, err, sizeof err) < 0) {
        strbuf_fixed_printf(o->res.k8s_error, sizeof o->res.k8s_error, "list pods: %s", err);
        observe_finish(o);
        return;
    }
    observe_fanout(o);
}

static void observe_on_deployment(const k8s_result *r, void *arg)
{
    observe *o = arg;
    view_pool *v = o->out;
    o->kcall = NULL;
    o->res.deployment_status = r->status;
    char err[128];
    if (r->error || r->status != 200 || !r->obj) {
        observe_k8s_error(o, "get deployment", r);
        strbuf_fixed_printf(v->deployment_error, sizeof v->deployment_error, "%s", o->res.k8s_error);
        observe_finish(o);
        return;
    }
    if (view_parse_deployment(r->obj, v, err, sizeof err) < 0) {
        strbuf_fixed_printf(v->deployment_error, sizeof v->deployment_error, "%s", err);
        strbuf_fixed_printf(o->res.k8s_error, sizeof o->res.k8s_error, "deployment %.20s/%.40s: %s", o->cfg->namespace_,
                 o->cfg->deployment, err);
        observe_finish(o);
        return;
    }
    char ns[200], sel[1600], path[2048];
    if (k8s_escape(o->cfg->namespace_, ns, sizeof ns) < 0 || k8s_escape(v->selector, sel, sizeof sel) < 0) {
        strbuf_fixed_printf(o->res.k8s_error, sizeof o->res.k8s_error, "deployment selector too long");
        observe_finish(o);
        return;
    }
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/pods?labelSelector=%s", ns, sel);
    o->kcall = k8s_request(o->kube, "GET", path, NULL, NULL, observe_on_pods, o);
    if (!o->kcall) {
        strbuf_fixed_printf(o->res.k8s_error, sizeof o->res.k8s_error, "list pods: out of memory");
        observe_finish(o);
    }
}

observe *observe_start(k8s *kube, httpc *http, const poolcfg_pool *cfg, const observe_opts *opts, view_pool *out,
                       observe_cb cb, void *arg)
{
    observe *o = calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    o->kube = kube;
    o->http = http;
    o->cfg = cfg;
    if (opts)
        o->opts = *opts;
    if (o->opts.agent_timeout_ms <= 0)
        o->opts.agent_timeout_ms = 2000;
    if (o->opts.demand_timeout_ms <= 0)
        o->opts.demand_timeout_ms = 3000;
    o->out = out;
    o->cb = cb;
    o->arg = arg;
    view_pool_free(out);

    char ns[200], name[POOLCFG_NAME_MAX * 3], path[1024];
    if (k8s_escape(cfg->namespace_, ns, sizeof ns) < 0 || k8s_escape(cfg->deployment, name, sizeof name) < 0) {
        free(o);
        return NULL;
    }
    snprintf(path, sizeof path, "/apis/apps/v1/namespaces/%s/deployments/%s", ns, name);
    o->kcall = k8s_request(kube, "GET", path, NULL, NULL, observe_on_deployment, o);
    if (!o->kcall) {
        free(o);
        return NULL;
    }
    return o;
}

void observe_cancel(observe *o)
{
    if (!o)
        return;
    if (o->kcall)
        k8s_cancel(o->kcall);
    for (int i = 0; i < o->nagents; i++)
        if (o->agents[i].call)
            httpc_cancel(o->agents[i].call);
    if (o->demand_call)
        httpc_cancel(o->demand_call);
    free(o->agents);
    free(o);
}
