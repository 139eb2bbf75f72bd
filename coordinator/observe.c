/* observe.c — one observation of a pool; see observe.h.
 *
 * A small state machine: deployment → pods, a page at a time → (agents ∥ demand) → done. The fan-out keeps one
 * counter of requests in flight; each answer fills its own part of the view, so the order in which they come back
 * does not matter.
 *
 * The pod list is the cycle's one large read, so it comes in pages (`limit`, then `continue` with the token each
 * page gives), as client-go's pager and kubectl ask for it, and each page becomes view rows before the next is
 * asked for: the coordinator never holds more than a page of JSON. A page whose continue token has expired (410,
 * the API server compacted its storage meanwhile) starts the list again from the first page, once per
 * observation; client-go's pager then lists everything in one request instead, which is the memory we page to
 * avoid. A second expiry is the cycle's error, named as such. */
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

/* Pods per page of the pod list. A pod of the chart's shape is about 5 KiB of JSON and about 20 KiB once cJSON
 * has parsed it (a node and a key string per member), and both live until the page's rows are made. Measured on
 * 1,000 such pods (bench row 5): peak RSS 17 MiB with pages of 50, 19 with 100, 22 with 200, 34 with 500 (what
 * client-go's pager and kubectl ask for) and 55 with the list read whole. 100 keeps the list near the libraries'
 * floor in 10 requests for 1,000 pods, each about 10 ms on loopback: the list takes no longer than in one. */
#define OBSERVE_PODS_PAGE 100

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
    char                pods_path[2048]; /* the pod list without continue: namespace, selector, limit */
    char                pods_continue[VIEW_CONTINUE_MAX]; /* the next page's token, "" for the first page */
    int                 pods_page;       /* pages read so far */
    bool                pods_restarted;  /* the list was started again after an expired token */
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

static void observe_on_pods(const k8s_result *r, void *arg);

/* The pod list could not be read to its end: the pages read so far are dropped, so that the view holds no pods
 * rather than some (the scaler counts the Deployment's replicas not listed as pods as coming), as when the list was
 * read in one request. k8s_error says why. */
static void observe_pods_failed(observe *o)
{
    view_pool_free_pods(o->out);
    observe_finish(o);
}

/* Asks for the next page of the pod list (the first when pods_continue is ""). false after finishing the
 * observation with the reason. */
static bool observe_list_pods(observe *o)
{
    strbuf path = STRBUF_INIT;
    strbuf_puts(&path, o->pods_path);
    if (o->pods_continue[0]) {
        char cont[VIEW_CONTINUE_MAX * 3];
        if (k8s_escape(o->pods_continue, cont, sizeof cont) < 0) { /* cannot happen: 3 bytes per byte at most */
            strbuf_free(&path);
            strbuf_fixed_printf(o->res.k8s_error, sizeof o->res.k8s_error, "list pods: continue token too long");
            observe_pods_failed(o);
            return false;
        }
        strbuf_printf(&path, "&continue=%s", cont);
    }
    o->kcall = path.oom ? NULL : k8s_request(o->kube, "GET", path.data, NULL, NULL, observe_on_pods, o);
    strbuf_free(&path);
    if (!o->kcall) {
        strbuf_fixed_printf(o->res.k8s_error, sizeof o->res.k8s_error, "list pods: out of memory");
        observe_pods_failed(o);
        return false;
    }
    return true;
}

static void observe_on_pods(const k8s_result *r, void *arg)
{
    observe *o = arg;
    o->kcall = NULL;
    o->res.pods_status = r->status;
    char err[128];
    bool expired = !r->error && r->status == 410 && o->pods_continue[0];
    if (expired && !o->pods_restarted) {
        /* Rows of the pages before are from a list the server can no longer continue: start it again. */
        o->pods_restarted = true;
        o->pods_continue[0] = '\0';
        o->pods_page = 0;
        view_pool_free_pods(o->out);
        observe_list_pods(o);
        return;
    }
    if (expired) {
        strbuf_fixed_printf(o->res.k8s_error, sizeof o->res.k8s_error,
                            "list pods: HTTP 410 %s on page %d: the continue token expired again after the list was "
                            "started over (%s)", r->reason, o->pods_page + 1, r->errmsg);
        observe_pods_failed(o);
        return;
    }
    if (r->error || r->status != 200 || !r->obj) {
        observe_k8s_error(o, "list pods", r);
        observe_pods_failed(o);
        return;
    }
    o->pods_page++;
    if (view_parse_pod_page(r->obj, o->out, o->pods_continue, sizeof o->pods_continue, err, sizeof err) < 0) {
        if (o->pods_page > 1)
            strbuf_fixed_printf(o->res.k8s_error, sizeof o->res.k8s_error, "list pods, page %d: %s", o->pods_page,
                                err);
        else
            strbuf_fixed_printf(o->res.k8s_error, sizeof o->res.k8s_error, "list pods: %s", err);
        observe_pods_failed(o);
        return;
    }
    if (o->pods_continue[0])
        observe_list_pods(o); /* this page's JSON is freed when we return: one page at a time */
    else
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
    char ns[200], sel[1600];
    if (k8s_escape(o->cfg->namespace_, ns, sizeof ns) < 0 || k8s_escape(v->selector, sel, sizeof sel) < 0) {
        strbuf_fixed_printf(o->res.k8s_error, sizeof o->res.k8s_error, "deployment selector too long");
        observe_finish(o);
        return;
    }
    snprintf(o->pods_path, sizeof o->pods_path, "/api/v1/namespaces/%s/pods?labelSelector=%s&limit=%d", ns, sel,
             OBSERVE_PODS_PAGE);
    observe_list_pods(o);
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
