/* status.c — the agent's local HTTP endpoints; see status.h. Routes are a table: method, path, whether the pool
 * token is required, handler. */
#include "status.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "iac/https.h"
#include "iac/log.h"
#include "iac/metrics.h"

typedef void (*route_fn)(agent *a, const https_request *req, https_response *res);

/* Compares the bearer token without an early exit, so response time says nothing about the token. */
static bool status_authorized(const agent *a, const char *authorization)
{
    static const char prefix[] = "Bearer ";
    const char *token = a->opt->token;
    if (!authorization || !token || strncmp(authorization, prefix, sizeof prefix - 1) != 0)
        return false;
    const char *given = authorization + sizeof prefix - 1;
    size_t n = strlen(token), m = strlen(given);
    unsigned char diff = (unsigned char)(n != m);
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(token[i] ^ given[i < m ? i : 0]);
    return diff == 0;
}

static const char *status_state(const agent *a)
{
    return a->draining ? "draining" : "ready";
}

void status_write_json(const agent *a, strbuf *b)
{
    strbuf_puts(b, "{\"agent_id\":\"");
    strbuf_json_escape(b, a->store.agent_id, strlen(a->store.agent_id));
    strbuf_puts(b, "\",\"pool_id\":\"");
    strbuf_json_escape(b, a->store.pool_id, strlen(a->store.pool_id));
    strbuf_puts(b, "\",\"name\":\"");
    strbuf_json_escape(b, a->opt->name, strlen(a->opt->name));
    strbuf_printf(b, "\",\"version\":\"%s\",\"state\":\"%s\",\"phase\":\"%s\",\"registered\":%s,\"connected\":%s,"
                  "\"ready\":%s,\"started_at\":%lld,\"slots\":[",
                  IAC_VERSION, status_state(a), agent_phase_name(a->phase), a->registered ? "true" : "false",
                  a->phase == AGENT_CONNECTED ? "true" : "false", agent_ready(a) ? "true" : "false",
                  (long long)(a->started_ms / 1000));
    const slot_table *t = &a->store.slots;
    for (int i = 0; i < t->n; i++) {
        const slot *s = &t->s[i];
        strbuf_printf(b, "%s{\"slot_id\":%d,\"status\":\"%s\",\"since\":%lld", i ? "," : "", i,
                      slots_status_name(s->status), (long long)(s->since_ms / 1000));
        if (s->status == SLOT_IDLE)
            strbuf_puts(b, ",\"task_id\":null}");
        else
            strbuf_printf(b, ",\"task_id\":%" PRIu64 ",\"task_type\":\"%s\",\"action\":\"%s\"}", s->task_id,
                          slots_type_name(s->type),
                          slots_action_name(s->status == SLOT_RESERVED ? ACTION_APPLY : s->action));
    }
    strbuf_puts(b, "]}");
}

void status_write_metrics(const agent *a, strbuf *b)
{
    const char *build[] = { "version", IAC_VERSION, NULL };
    metrics_family(b, "iac_agent_build_info", METRIC_GAUGE, "Build of this agent.");
    metrics_sample(b, "iac_agent_build_info", build, 1);
    metrics_family(b, "iac_agent_registered", METRIC_GAUGE, "1 when the agent holds an agent id from the plane.");
    metrics_sample(b, "iac_agent_registered", NULL, a->registered);
    metrics_family(b, "iac_agent_connected", METRIC_GAUGE, "1 while the C&C WebSocket is open.");
    metrics_sample(b, "iac_agent_connected", NULL, a->phase == AGENT_CONNECTED);
    metrics_family(b, "iac_agent_draining", METRIC_GAUGE, "1 while the agent accepts no new tasks.");
    metrics_sample(b, "iac_agent_draining", NULL, a->draining);
    const struct { const char *name, *help; uint64_t v; } counters[] = {
        { "iac_agent_registrations_total", "Successful registrations.", a->n.registrations },
        { "iac_agent_registration_errors_total", "Failed registration attempts.", a->n.registration_errors },
        { "iac_agent_connects_total", "C&C connections opened.", a->n.connects },
        { "iac_agent_reconnects_total", "C&C connections opened after the first.", a->n.reconnects },
        { "iac_agent_heartbeats_sent_total", "Heartbeats queued on the C&C socket.", a->n.heartbeats_sent },
        { "iac_agent_token_rejections_total", "HTTP 401 answers from the control plane.", a->n.token_rejections },
        { "iac_agent_credentials_refreshes_total", "Registry credential fetches.", a->n.credentials_refreshes },
    };
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
        metrics_family(b, counters[i].name, METRIC_COUNTER, counters[i].help);
        metrics_sample(b, counters[i].name, NULL, (double)counters[i].v);
    }
    if (a->cc) {
        const cc_counters *c = cc_stats(a->cc);
        metrics_family(b, "iac_agent_cc_frames_total", METRIC_COUNTER, "C&C frames by direction and result.");
        const char *rx[] = { "direction", "in", "result", "ok", NULL };
        const char *bad[] = { "direction", "in", "result", "invalid", NULL };
        const char *tx[] = { "direction", "out", "result", "ok", NULL };
        const char *drop[] = { "direction", "out", "result", "dropped", NULL };
        metrics_sample(b, "iac_agent_cc_frames_total", rx, (double)(c->frames_received - c->frames_invalid));
        metrics_sample(b, "iac_agent_cc_frames_total", bad, (double)c->frames_invalid);
        metrics_sample(b, "iac_agent_cc_frames_total", tx, (double)c->frames_sent);
        metrics_sample(b, "iac_agent_cc_frames_total", drop, (double)c->frames_dropped);
    }
    int by_status[3] = { 0, 0, 0 };
    for (int i = 0; i < a->store.slots.n; i++)
        by_status[a->store.slots.s[i].status]++;
    metrics_family(b, "iac_agent_slots", METRIC_GAUGE, "Slots by status.");
    for (int s = SLOT_IDLE; s <= SLOT_RESERVED; s++) {
        const char *labels[] = { "status", slots_status_name((slot_status)s), NULL };
        metrics_sample(b, "iac_agent_slots", labels, by_status[s]);
    }
    static const char *const outcomes[TASK_OUTCOME__N] = { "success", "failed", "cancelled", "rejected" };
    metrics_family(b, "iac_agent_tasks_total", METRIC_COUNTER, "Tasks by outcome.");
    for (int o = 0; o < TASK_OUTCOME__N; o++) {
        const char *labels[] = { "outcome", outcomes[o], NULL };
        metrics_sample(b, "iac_agent_tasks_total", labels, (double)a->n.tasks[o]);
    }
    if (a->exec) {
        const executor_counters *x = executor_stats(a->exec);
        static const char *const exec_outcomes[EXEC__OUTCOMES] = { "success", "failed", "cancelled", "rejected" };
        metrics_family(b, "iac_agent_task_runs_total", METRIC_COUNTER, "Task runs by type and outcome.");
        for (int ty = TASK_PLAN; ty <= TASK_DRIFT_CHECK; ty++)
            for (int o = 0; o < EXEC__OUTCOMES; o++) {
                const char *labels[] = { "type", slots_type_name((task_type)ty), "outcome", exec_outcomes[o], NULL };
                metrics_sample(b, "iac_agent_task_runs_total", labels, (double)x->tasks[ty][o]);
            }
        metrics_family(b, "iac_agent_stage_duration_seconds", METRIC_HISTOGRAM, "Duration of pipeline stages.");
        for (int st = 0; executor_stage_name(st); st++) {
            const char *labels[] = { "stage", executor_stage_name(st), NULL };
            metrics_histogram(b, "iac_agent_stage_duration_seconds", labels, executor_stage_bounds, x->stage_hist[st],
                              7, x->stage_seconds[st]);
        }
        metrics_family(b, "iac_agent_log_lines_total", METRIC_COUNTER, "Lines terraform printed.");
        metrics_sample(b, "iac_agent_log_lines_total", NULL, (double)x->log_lines);
        metrics_family(b, "iac_agent_live_frames_dropped_total", METRIC_COUNTER,
                       "Live log frames dropped because the C&C socket was slow or down (the full log is kept).");
        metrics_sample(b, "iac_agent_live_frames_dropped_total", NULL, (double)x->live_frames_dropped);
    }
    const slot *s0 = &a->store.slots.s[0];
    metrics_family(b, "iac_agent_reservation_age_seconds", METRIC_GAUGE,
                   "Age of slot 0's reservation (0 when none).");
    double age = s0->status == SLOT_RESERVED ? (double)(agent_now_ms() - s0->since_ms) / 1000.0 : 0;
    metrics_sample(b, "iac_agent_reservation_age_seconds", NULL, age < 0 ? 0 : age);
}

static void route_healthz(agent *a, const https_request *req, https_response *res)
{
    (void)a, (void)req;
    strbuf_puts(&res->body, "{\"ok\":true}");
}

static void route_readyz(agent *a, const https_request *req, https_response *res)
{
    (void)req;
    bool ready = agent_ready(a);
    res->status = ready ? 200 : 503;
    strbuf_printf(&res->body, "{\"ready\":%s,\"phase\":\"%s\"}", ready ? "true" : "false",
                  agent_phase_name(a->phase));
}

static void route_metrics(agent *a, const https_request *req, https_response *res)
{
    (void)req;
    res->content_type = "text/plain; version=0.0.4";
    status_write_metrics(a, &res->body);
}

static void route_status(agent *a, const https_request *req, https_response *res)
{
    (void)req;
    status_write_json(a, &res->body);
}

static void route_drain(agent *a, const https_request *req, https_response *res)
{
    log_info("status", "drain requested from %s", req->peer ? req->peer : "?");
    agent_drain(a, false);
    status_write_json(a, &res->body);
}

static void route_undrain(agent *a, const https_request *req, https_response *res)
{
    log_info("status", "undrain requested from %s", req->peer ? req->peer : "?");
    if (!agent_undrain(a)) {
        https_reply_error(res, 409, "the agent is shutting down and cannot be undrained");
        return;
    }
    status_write_json(a, &res->body);
}

static void route_release(agent *a, const https_request *req, https_response *res)
{
    char why[128];
    snprintf(why, sizeof why, "operator request from %s", req->peer ? req->peer : "?");
    uint64_t task = agent_release_reservation(a, why);
    if (!task) {
        https_reply_error(res, 404, "slot 0 holds no reservation");
        return;
    }
    strbuf_printf(&res->body, "{\"released\":%" PRIu64 "}", task);
}

static const struct {
    const char *method;
    const char *path;
    bool        needs_token;
    route_fn    fn;
} routes[] = {
    { "GET", "/healthz", false, route_healthz },
    { "GET", "/readyz", false, route_readyz },
    { "GET", "/metrics", false, route_metrics },
    { "GET", "/v1/status", false, route_status },
    { "POST", "/v1/drain", true, route_drain },
    { "POST", "/v1/undrain", true, route_undrain },
    { "DELETE", "/v1/slots/0/reservation", true, route_release },
};

static void status_handle(const https_request *req, https_response *res, void *arg)
{
    agent *a = arg;
    bool path_known = false;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (strcmp(req->path, routes[i].path) != 0)
            continue;
        path_known = true;
        if (strcmp(req->method, routes[i].method) != 0)
            continue;
        if (routes[i].needs_token && !status_authorized(a, req->authorization)) {
            https_reply_error(res, 401, "this call needs the pool token: Authorization: Bearer <token>");
            return;
        }
        routes[i].fn(a, req, res);
        return;
    }
    https_reply_error(res, path_known ? 405 : 404, path_known ? "method not allowed" : "not found");
}

int status_start(agent *a, char *err, size_t errlen)
{
    https_opts o = { .host = a->opt->listen_host, .port = (int)a->opt->listen_port, .max_body = 64 * 1024,
                     .handler = status_handle, .arg = a };
    a->status = https_listen(a->loop, &o, err, errlen);
    if (!a->status)
        return -1;
    log_info("status", "status server on %s:%d", a->opt->listen_host, https_port(a->status));
    return 0;
}

void status_stop(agent *a)
{
    if (a->status)
        https_free(a->status);
    a->status = NULL;
}
