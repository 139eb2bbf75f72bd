/* explain.c — where a task is, or why it waits; see explain.h.
 *
 * Three passes over the pools' last observations: the slots of every agent that answered (held), the plane's
 * waiting lists (waiting), else nothing (unknown). The reasons are tables of small rules tried in order, most
 * specific first; every rule that applies adds one or more sentences, so a person sees the whole story ("no free
 * slot 0; scaling 3→4; pod X pending 12 s") and the first line is the one to act on. Only view fields, the last
 * decision and the reported errors are read: nothing here guesses what the pool did between observations. */
#include "explain.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define EXPLAIN_MAX_HOLDINGS 8 /* slots holding one task: one normally, two when a reservation went stale */
#define EXPLAIN_MAX_NAMED    5 /* pods named one by one in a list of reasons; the rest are counted */

typedef struct {
    const pool_state *ps;
    const view_pod   *pod;
    int               slot;
} holding;

typedef struct {
    uint64_t                 task;
    int64_t                  now;
    const pool_state *const *pools;
    int                      npools;
    strbuf                   reasons; /* each reason followed by a NUL */
    int                      nreasons;
} explain_ctx;

/* What the answer says, whatever the case. */
typedef struct {
    explain_result    result;
    const pool_state *ps;      /* NULL when unknown */
    const view_pod   *pod;     /* held only */
    int               slot;    /* held only, else -1 */
    const char       *status;  /* "running" | "reserved" | "waiting" | "unknown" */
    task_type         type;
    int64_t           since_ms; /* 0: not known */
    strbuf            phase;
} answer;

static void reason_add(explain_ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reason_add(explain_ctx *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(&x->reasons, fmt, ap);
    va_end(ap);
    strbuf_putc(&x->reasons, '\0');
    x->nreasons++;
}


/* "12 s", "4 min", "3 h 20 min", "2 d 3 h". */
static void age_words(int64_t ms, char *out, size_t n)
{
    long long s = ms < 0 ? 0 : (long long)(ms / 1000);
    if (s < 120)
        snprintf(out, n, "%lld s", s);
    else if (s < 7200)
        snprintf(out, n, "%lld min", s / 60);
    else if (s < 172800)
        snprintf(out, n, "%lld h %lld min", s / 3600, s / 60 % 60);
    else
        snprintf(out, n, "%lld d %lld h", s / 86400, s / 3600 % 24);
}

/* The plural ending for n things: "1 pod", "2 pods". */
static const char *plural(long long n) { return n == 1 ? "" : "s"; }

static const char *pool_id(const pool_state *ps)
{
    return ps->cfg && ps->cfg->id[0] ? ps->cfg->id : "(unnamed pool)";
}

/* ---- counting what a pool can take now ---- */

/* A pod whose slots are capacity: Ready, its agent answered, not on its way out. */
static bool takes_work(const view_pod *p)
{
    return p->ready && p->has_status && !p->draining && !p->terminating;
}

/* A pod whose phase still leads to Ready (view_to_scaler_pod's rule). */
static bool phase_coming(const view_pod *p)
{
    return !strcmp(p->phase, "Pending") || !strcmp(p->phase, "Running");
}

/* A pod Kubernetes is still bringing up (view_to_scaler_pod's "starting"). */
static bool starting(const view_pod *p)
{
    return !p->ready && !p->terminating && phase_coming(p);
}

typedef struct {
    int working;                                   /* pods that take work */
    int slot0_free, slot0_running, slot0_reserved; /* over working pods */
    int plan_free, plan_busy;
    int listed;                                    /* pods not terminating */
    int first_free0, first_free_plan;              /* pod indexes, -1 */
} pool_counts;

static void count_pool(const view_pool *v, pool_counts *c)
{
    memset(c, 0, sizeof *c);
    c->first_free0 = c->first_free_plan = -1;
    for (int i = 0; i < v->npods; i++) {
        const view_pod *p = &v->pods[i];
        c->listed += !p->terminating;
        if (!takes_work(p) || p->nslots < 1)
            continue;
        c->working++;
        const view_slot *slots = view_pod_slots(p);
        switch (slots[0].status) {
        case SLOT_IDLE:
            c->slot0_free++;
            if (c->first_free0 < 0)
                c->first_free0 = i;
            break;
        case SLOT_RUNNING: c->slot0_running++; break;
        case SLOT_RESERVED: c->slot0_reserved++; break;
        }
        for (int s = 1; s < p->nslots && s < SLOTS_MAX; s++) {
            if (slots[s].status == SLOT_IDLE) {
                c->plan_free++;
                if (c->first_free_plan < 0)
                    c->first_free_plan = i;
            } else {
                c->plan_busy++;
            }
        }
    }
}

static bool wants_slot0(task_type t) { return t == TASK_PLAN_AND_APPLY || t == TASK_TYPE_NONE; }
static bool wants_plan(task_type t) { return t == TASK_PLAN || t == TASK_DRIFT_CHECK || t == TASK_TYPE_NONE; }

/* ---- rules: each adds its sentences when it applies ---- */

/* prefix is "" when the answer is about one pool, "pool P: " when it lists every pool. w is NULL then. */
typedef void (*explain_rule)(explain_ctx *x, const pool_state *ps, const view_waiting *w, const char *prefix);

static void rule_config_error(explain_ctx *x, const pool_state *ps, const view_waiting *w, const char *prefix)
{
    (void)w;
    if (!ps->config_error)
        return;
    char age[32] = "";
    if (ps->config_error_since_ms > 0)
        age_words(scaler_elapsed_ms(x->now, ps->config_error_since_ms), age, sizeof age);
    reason_add(x, "%sconfiguration error (%s)%s%s: %s", prefix, ps->config_reason[0] ? ps->config_reason : "unknown",
               age[0] ? " for " : "", age, ps->config_message[0] ? ps->config_message : "(no message)");
}

static void rule_not_observed(explain_ctx *x, const pool_state *ps, const view_waiting *w, const char *prefix)
{
    (void)w;
    if (!ps->observed)
        reason_add(x, "%sno observation has completed yet: its pods and slots are not known", prefix);
}

static void rule_cycle_error(explain_ctx *x, const pool_state *ps, const view_waiting *w, const char *prefix)
{
    (void)w;
    if (ps->cycle_error[0])
        reason_add(x, "%sthe last cycle had trouble: %s", prefix, ps->cycle_error);
}

/* The Deployment could not be read but no configuration error says so (reported errors come first). */
static void rule_deployment(explain_ctx *x, const pool_state *ps, const view_waiting *w, const char *prefix)
{
    (void)w;
    if (ps->observed && !ps->config_error && !ps->view.deployment_found)
        reason_add(x, "%sthe Deployment %s/%s could not be read%s%s", prefix, ps->cfg ? ps->cfg->namespace_ : "?",
                   ps->cfg ? ps->cfg->deployment : "?", ps->view.deployment_error[0] ? ": " : "",
                   ps->view.deployment_error);
}

static void rule_demand_unknown(explain_ctx *x, const pool_state *ps, const view_waiting *w, const char *prefix)
{
    (void)w;
    if (!ps->observed || !ps->cfg)
        return;
    if (!ps->cfg->demand_url[0])
        reason_add(x, "%sno demand_url is configured: the coordinator does not see which tasks wait for this pool "
                      "and sizes it on headroom alone", prefix);
    else if (!ps->view.demand_ok)
        reason_add(x, "%sdemand unknown (%s): the pool is sized on headroom alone", prefix,
                   ps->view.demand_error[0] ? ps->view.demand_error : "the demand URL did not answer");
}

/* The plane gave counts but no task list, so a waiting task cannot be named. */
static void rule_demand_not_listed(explain_ctx *x, const pool_state *ps, const view_waiting *w, const char *prefix)
{
    (void)w;
    const scaler_demand *d = &ps->view.demand;
    int n = (d->plan_and_apply > 0 ? d->plan_and_apply : 0) + (d->plan > 0 ? d->plan : 0) +
            (d->drift_check > 0 ? d->drift_check : 0);
    if (ps->observed && ps->view.demand_ok && n > 0 && ps->view.nwaiting == 0)
        reason_add(x, "%sthe plane reports %d tasks waiting (%d plan_and_apply, %d plan, %d drift_check) without "
                      "listing their ids", prefix, n, d->plan_and_apply, d->plan, d->drift_check);
}

/* Ready pods whose agent did not answer: their slots (and maybe this task) are not known. */
static void rule_unanswered(explain_ctx *x, const pool_state *ps, const view_waiting *w, const char *prefix)
{
    int named = 0, more = 0;
    for (int i = 0; i < ps->view.npods; i++) {
        const view_pod *p = &ps->view.pods[i];
        if (!p->ready || p->has_status || p->terminating)
            continue;
        if (named++ >= EXPLAIN_MAX_NAMED) {
            more++;
            continue;
        }
        reason_add(x, "%sthe agent on pod %s did not answer /v1/status (%s): its slots are not known%s", prefix,
                   p->name, p->status_error[0] ? p->status_error : "no answer",
                   w ? " and not counted" : ", the task may be there");
    }
    if (more)
        reason_add(x, "%s%d more pod%s whose agent did not answer", prefix, more, plural(more));
}

static void rule_no_free_slot0(explain_ctx *x, const pool_state *ps, const view_waiting *w, const char *prefix)
{
    pool_counts c;
    count_pool(&ps->view, &c);
    if (!wants_slot0(w->type) || c.slot0_free > 0 || !ps->observed)
        return;
    strbuf s = STRBUF_INIT;
    if (c.working == 0)
        strbuf_printf(&s, "no free slot 0: no pod takes work (%d listed, none Ready with an answering agent)",
                      c.listed);
    else
        strbuf_printf(&s, "no free slot 0: of %d pod%s taking work, slot 0 runs a task on %d and is reserved for "
                          "an apply (apply_pending) on %d", c.working, plural(c.working), c.slot0_running,
                      c.slot0_reserved);
    if (ps->decided)
        strbuf_printf(&s, "; the pool needs %" PRId64 " free slot 0s and has %" PRId64 " counting pods starting",
                      ps->decision.need_slot0, ps->decision.free_slot0);
    reason_add(x, "%s%s", prefix, s.data ? s.data : "");
    strbuf_free(&s);
}

static void rule_no_free_plan(explain_ctx *x, const pool_state *ps, const view_waiting *w, const char *prefix)
{
    pool_counts c;
    count_pool(&ps->view, &c);
    if (!wants_plan(w->type) || c.plan_free > 0 || !ps->observed)
        return;
    strbuf s = STRBUF_INIT;
    if (c.working == 0)
        strbuf_printf(&s, "no free plan slot: no pod takes work (%d listed, none Ready with an answering agent)",
                      c.listed);
    else
        strbuf_printf(&s, "no free plan slot: all %d plan slots of %d pod%s taking work are busy", c.plan_busy,
                      c.working, plural(c.working));
    if (ps->decided)
        strbuf_printf(&s, "; the pool needs %" PRId64 " free plan slots and has %" PRId64 " counting pods starting",
                      ps->decision.need_plan, ps->decision.free_plan);
    reason_add(x, "%s%s", prefix, s.data ? s.data : "");
    strbuf_free(&s);
}

/* What the scaler decided about the shortfall. */
static void rule_decision(explain_ctx *x, const pool_state *ps, const view_waiting *w, const char *prefix)
{
    (void)w;
    if (!ps->observed)
        return;
    if (!ps->decided) {
        reason_add(x, "%sno scaling decision yet", prefix);
        return;
    }
    const scaler_decision *d = &ps->decision;
    int max = ps->cfg ? ps->cfg->scale.max_replicas : d->desired;
    char waited[32], window[32];
    switch (d->reason) {
    case SCALER_SCALE_UP:
        reason_add(x, "%sscaling %d\u2192%d", prefix, ps->view.replicas, d->desired);
        break;
    case SCALER_BELOW_MIN:
        reason_add(x, "%sscaling %d\u2192%d to reach min replicas", prefix, ps->view.replicas, d->desired);
        break;
    case SCALER_AT_MAX:
        reason_add(x, "%sat max replicas (%d): the pool cannot grow until slots free up or max_replicas is raised",
                   prefix, max);
        break;
    case SCALER_SHORTAGE_WAITING:
        age_words(d->shortage_since_ms == SCALER_NEVER ? 0 : scaler_elapsed_ms(x->now, d->shortage_since_ms), waited,
                  sizeof waited);
        age_words(ps->cfg ? ps->cfg->scale.scale_up_window_ms : 0, window, sizeof window);
        reason_add(x, "%sshort of capacity for %s; scale-up waits for the window of %s", prefix, waited, window);
        break;
    case SCALER_BAD_INPUT:
        reason_add(x, "%sthe scaler refused its input: %s", prefix, d->text[0] ? d->text : "(no detail)");
        break;
    default:
        break; /* steady or shrinking: nothing the scaler holds back */
    }
}

static void starting_words(const view_pod *p, int64_t age_ms, char *out, size_t n)
{
    char age[32];
    age_words(age_ms, age, sizeof age);
    if (!strcmp(p->phase, "Pending"))
        strbuf_fixed_printf(out, n, "pod %s pending %s", p->name, age);
    else
        strbuf_fixed_printf(out, n, "pod %s not Ready for %s (phase %s)", p->name, age, p->phase);
}

/* Pods on their way up, named with their age; replicas not yet turned into pods. */
static void rule_pods_starting(explain_ctx *x, const pool_state *ps, const view_waiting *w, const char *prefix)
{
    (void)w;
    int64_t timeout = ps->cfg ? ps->cfg->scale.pod_startup_timeout_ms : INT64_MAX;
    int named = 0, more = 0, listed = 0;
    for (int i = 0; i < ps->view.npods; i++) {
        const view_pod *p = &ps->view.pods[i];
        listed += !p->terminating;
        int64_t age = scaler_elapsed_ms(x->now, p->created_ms);
        if (!starting(p) || age >= timeout)
            continue;
        if (named++ >= EXPLAIN_MAX_NAMED) {
            more++;
            continue;
        }
        char words[VIEW_NAME_MAX + 64];
        starting_words(p, age, words, sizeof words);
        reason_add(x, "%s%s", prefix, words);
    }
    if (more)
        reason_add(x, "%sand %d more pod%s starting", prefix, more, plural(more));
    if (ps->observed && ps->view.deployment_found && ps->view.replicas > listed)
        reason_add(x, "%s%d pod%s requested but not created yet", prefix, ps->view.replicas - listed,
                   plural(ps->view.replicas - listed));
}

static void rule_startup_timeouts(explain_ctx *x, const pool_state *ps, const view_waiting *w, const char *prefix)
{
    (void)w;
    if (!ps->cfg)
        return;
    int64_t timeout = ps->cfg->scale.pod_startup_timeout_ms;
    int named = 0, more = 0;
    for (int i = 0; i < ps->view.npods; i++) {
        const view_pod *p = &ps->view.pods[i];
        int64_t age = scaler_elapsed_ms(x->now, p->created_ms);
        if (!starting(p) || age < timeout)
            continue;
        if (named++ >= EXPLAIN_MAX_NAMED) {
            more++;
            continue;
        }
        char words[VIEW_NAME_MAX + 64], limit[32];
        starting_words(p, age, words, sizeof words);
        age_words(timeout, limit, sizeof limit);
        reason_add(x, "%s%s, past the startup timeout of %s: it no longer counts as coming capacity and a new pod "
                      "replaces it", prefix, words, limit);
    }
    if (more)
        reason_add(x, "%sand %d more pod%s past the startup timeout", prefix, more, plural(more));
}

/* Pods that ended (Failed, Succeeded, Unknown) are neither capacity nor coming. */
static void rule_pods_ended(explain_ctx *x, const pool_state *ps, const view_waiting *w, const char *prefix)
{
    (void)w;
    for (int i = 0; i < ps->view.npods; i++) {
        const view_pod *p = &ps->view.pods[i];
        if (!p->ready && !p->terminating && !phase_coming(p))
            reason_add(x, "%spod %s is in phase %s: it is no capacity and not coming", prefix, p->name,
                       p->phase[0] ? p->phase : "(none)");
    }
}

static void rule_not_connected(explain_ctx *x, const pool_state *ps, const view_waiting *w, const char *prefix)
{
    (void)w;
    for (int i = 0; i < ps->view.npods; i++) {
        const view_pod *p = &ps->view.pods[i];
        if (takes_work(p) && !p->connected)
            reason_add(x, "%sthe agent on pod %s is not connected to the plane: no task reaches it", prefix, p->name);
    }
}

static void rule_draining(explain_ctx *x, const pool_state *ps, const view_waiting *w, const char *prefix)
{
    (void)w;
    for (int i = 0; i < ps->view.npods; i++) {
        const view_pod *p = &ps->view.pods[i];
        if (p->draining || p->terminating)
            reason_add(x, "%spod %s is %s: it takes no new task", prefix, p->name,
                       p->terminating ? "terminating" : "draining");
    }
}

/* Room exists now: the wait is on the plane's side (it has not dispatched, or dispatched elsewhere). */
static void rule_free_capacity(explain_ctx *x, const pool_state *ps, const view_waiting *w, const char *prefix)
{
    pool_counts c;
    count_pool(&ps->view, &c);
    if (wants_slot0(w->type) && c.slot0_free > 0)
        reason_add(x, "%sslot 0 is free on %d pod%s (first: %s): the coordinator sees room, the plane has not "
                      "dispatched the task yet", prefix, c.slot0_free, plural(c.slot0_free),
                   ps->view.pods[c.first_free0].name);
    else if (wants_plan(w->type) && c.plan_free > 0)
        reason_add(x, "%s%d plan slot%s free (first on pod %s): the coordinator sees room, the plane has not "
                      "dispatched the task yet", prefix, c.plan_free, c.plan_free == 1 ? " is" : "s are",
                   ps->view.pods[c.first_free_plan].name);
}

/* Why a listed task waits, most specific first. */
static const explain_rule waiting_rules[] = {
    rule_config_error,  rule_not_observed,     rule_deployment, rule_cycle_error,   rule_demand_unknown,
    rule_no_free_slot0, rule_no_free_plan,     rule_decision,   rule_pods_starting, rule_startup_timeouts,
    rule_pods_ended,    rule_unanswered,       rule_not_connected, rule_draining,   rule_free_capacity,
};

/* What could hide a task nobody lists, per pool. */
static const explain_rule unknown_rules[] = {
    rule_config_error, rule_not_observed, rule_deployment, rule_cycle_error, rule_unanswered, rule_demand_unknown,
    rule_demand_not_listed,
};

/* ---- held ---- */

/* Phase in words by (status, type, action); the first matching row wins. %1$d is the slot, %2$s the age. */
static const struct {
    slot_status status;
    task_type   type;  /* TASK_TYPE_NONE: any */
    int         apply; /* -1: any */
    const char *fmt;
} phases[] = {
    { SLOT_RESERVED, TASK_PLAN_AND_APPLY, -1,
      "apply_pending: plan done, slot %1$d reserved for the apply %2$s ago, waiting for confirmation" },
    { SLOT_RESERVED, TASK_TYPE_NONE, -1, "reserved: slot %1$d reserved for it %2$s ago" },
    { SLOT_RUNNING, TASK_PLAN_AND_APPLY, 1, "applying: the apply runs on slot %1$d for %2$s" },
    { SLOT_RUNNING, TASK_PLAN_AND_APPLY, 0,
      "planning: the plan of this plan_and_apply runs on slot %1$d for %2$s; the slot stays reserved for its apply "
      "if the plan has changes" },
    { SLOT_RUNNING, TASK_PLAN, -1, "planning: the plan runs on slot %1$d for %2$s" },
    { SLOT_RUNNING, TASK_DRIFT_CHECK, -1, "drift checking: the drift check runs on slot %1$d for %2$s" },
    { SLOT_RUNNING, TASK_TYPE_NONE, -1, "running on slot %1$d for %2$s" },
};

static void phase_words(const view_slot *s, int slot, int64_t age_ms, strbuf *out)
{
    char age[32];
    age_words(age_ms, age, sizeof age);
    for (size_t i = 0; i < sizeof phases / sizeof phases[0]; i++) {
        if (phases[i].status != s->status || (phases[i].type != TASK_TYPE_NONE && phases[i].type != s->type) ||
            (phases[i].apply >= 0 && phases[i].apply != (int)s->apply))
            continue;
        strbuf_printf(out, phases[i].fmt, slot, age);
        return;
    }
    strbuf_printf(out, "%s on slot %d for %s", slots_status_name(s->status), slot, age);
}

static int find_holdings(const explain_ctx *x, holding *out, int max)
{
    int n = 0;
    for (int i = 0; i < x->npools; i++) {
        const pool_state *ps = x->pools[i];
        if (!ps || !ps->observed)
            continue;
        for (int k = 0; k < ps->view.npods; k++) {
            const view_pod *p = &ps->view.pods[k];
            if (!p->has_status)
                continue;
            const view_slot *slots = view_pod_slots(p);
            for (int s = 0; s < p->nslots && s < SLOTS_MAX; s++)
                if (slots[s].status != SLOT_IDLE && slots[s].task_id == x->task && n < max)
                    out[n++] = (holding){ ps, p, s };
        }
    }
    return n;
}

static const view_waiting *find_waiting(const explain_ctx *x, const pool_state **ps_out)
{
    for (int i = 0; i < x->npools; i++) {
        const pool_state *ps = x->pools[i];
        if (!ps || !ps->observed)
            continue;
        for (int k = 0; k < ps->view.nwaiting; k++)
            if (ps->view.waiting[k].task_id == x->task) {
                *ps_out = ps;
                return &ps->view.waiting[k];
            }
    }
    return NULL;
}

static void explain_held(explain_ctx *x, const holding *h, int nh, answer *a)
{
    /* A running slot is where the task is now; a reservation elsewhere is then stale. */
    int primary = 0;
    for (int i = 0; i < nh; i++)
        if (view_pod_slots(h[i].pod)[h[i].slot].status == SLOT_RUNNING) {
            primary = i;
            break;
        }
    const holding *p = &h[primary];
    const view_slot *s = &view_pod_slots(p->pod)[p->slot];
    a->result = EXPLAIN_HELD;
    a->ps = p->ps;
    a->pod = p->pod;
    a->slot = p->slot;
    a->status = slots_status_name(s->status);
    a->type = s->type;
    a->since_ms = s->since_ms;
    phase_words(s, p->slot, scaler_elapsed_ms(x->now, s->since_ms), &a->phase);

    if (p->pod->terminating)
        reason_add(x, "pod %s is terminating: its agent has the grace period to finish", p->pod->name);
    else if (p->pod->draining)
        reason_add(x, "pod %s is draining: it finishes this work but takes no new task", p->pod->name);
    if (!p->pod->connected)
        reason_add(x, "the agent on pod %s is not connected to the plane right now", p->pod->name);
    const pool_state *wps = NULL;
    if (s->status == SLOT_RESERVED && find_waiting(x, &wps))
        reason_add(x, "the plane lists this task as waiting for a slot in pool %s although slot %d of pod %s is "
                      "reserved for it: the apply must be sent to that pod (a reserved slot is not a free slot)",
                   pool_id(wps), p->slot, p->pod->name);
    for (int i = 0; i < nh; i++) {
        if (i == primary)
            continue;
        const view_slot *o = &view_pod_slots(h[i].pod)[h[i].slot];
        char age[32];
        age_words(scaler_elapsed_ms(x->now, o->since_ms), age, sizeof age);
        reason_add(x, "slot %d of pod %s (pool %s) also holds it, %s for %s%s", h[i].slot, h[i].pod->name,
                   pool_id(h[i].ps), slots_status_name(o->status), age,
                   o->status == SLOT_RESERVED && s->status == SLOT_RUNNING
                       ? ": a stale reservation, the agent releases it once it sees the apply ran elsewhere"
                       : "");
    }
}

static void explain_waiting(explain_ctx *x, const pool_state *ps, const view_waiting *w, answer *a)
{
    a->result = EXPLAIN_WAITING;
    a->ps = ps;
    a->status = "waiting";
    a->type = w->type;
    a->since_ms = w->waiting_since_ms;
    strbuf_puts(&a->phase, w->type == TASK_PLAN_AND_APPLY ? "waiting for a slot 0"
                           : w->type == TASK_TYPE_NONE    ? "waiting for a slot"
                                                          : "waiting for a plan slot");
    if (w->type != TASK_TYPE_NONE)
        strbuf_printf(&a->phase, " (%s)", slots_type_name(w->type));
    if (w->waiting_since_ms > 0) {
        char age[32];
        age_words(scaler_elapsed_ms(x->now, w->waiting_since_ms), age, sizeof age);
        strbuf_printf(&a->phase, " for %s", age);
    }
    for (size_t i = 0; i < sizeof waiting_rules / sizeof waiting_rules[0]; i++)
        waiting_rules[i](x, ps, w, "");
    if (x->nreasons == 0)
        reason_add(x, "nothing the coordinator sees explains the wait");
}

static void explain_unknown(explain_ctx *x, answer *a)
{
    a->result = EXPLAIN_UNKNOWN;
    a->status = "unknown";
    a->type = TASK_TYPE_NONE;
    strbuf_puts(&a->phase, "unknown");
    reason_add(x, "task %" PRIu64 " holds no slot on any pod and no pool lists it as waiting", x->task);
    for (int i = 0; i < x->npools; i++) {
        const pool_state *ps = x->pools[i];
        if (!ps)
            continue;
        char prefix[POOLCFG_ID_MAX + 16];
        snprintf(prefix, sizeof prefix, "pool %s: ", pool_id(ps));
        for (size_t r = 0; r < sizeof unknown_rules / sizeof unknown_rules[0]; r++)
            unknown_rules[r](x, ps, NULL, prefix);
    }
}

/* ---- output ---- */

static void json_string_or_null(strbuf *b, const char *s)
{
    if (!s) {
        strbuf_puts(b, "null");
        return;
    }
    strbuf_putc(b, '"');
    strbuf_json_escape(b, s, strlen(s));
    strbuf_putc(b, '"');
}

static void write_text(const explain_ctx *x, const answer *a, strbuf *t)
{
    const char *phase = a->phase.data ? a->phase.data : "";
    const char *r = x->reasons.data, *end = r ? r + x->reasons.len : NULL;
    switch (a->result) {
    case EXPLAIN_HELD:
        strbuf_printf(t, "task %" PRIu64 ": pool %s, pod %s, slot %d (%s)\n  %s\n", x->task, pool_id(a->ps),
                      a->pod->name, a->slot, a->status, phase);
        break;
    case EXPLAIN_WAITING:
        strbuf_printf(t, "task %" PRIu64 ": pool %s, %s\n", x->task, pool_id(a->ps), phase);
        break;
    case EXPLAIN_UNKNOWN:
        if (r && r < end) {
            strbuf_printf(t, "%s\n", r); /* the first reason is the headline */
            r += strlen(r) + 1;
        }
        break;
    }
    for (; r && r < end; r += strlen(r) + 1)
        strbuf_printf(t, "  - %s\n", r);
}

static void write_json(const explain_ctx *x, const answer *a, const strbuf *text, strbuf *j)
{
    strbuf_printf(j, "{\"task_id\":%" PRIu64 ",\"found\":%s,\"pool\":", x->task,
                  a->result == EXPLAIN_HELD ? "true" : "false");
    json_string_or_null(j, a->ps ? pool_id(a->ps) : NULL);
    strbuf_puts(j, ",\"pod\":");
    json_string_or_null(j, a->pod ? a->pod->name : NULL);
    if (a->slot >= 0)
        strbuf_printf(j, ",\"slot\":%d", a->slot);
    else
        strbuf_puts(j, ",\"slot\":null");
    strbuf_puts(j, ",\"status\":");
    json_string_or_null(j, a->status);
    strbuf_puts(j, ",\"task_type\":");
    json_string_or_null(j, a->type != TASK_TYPE_NONE ? slots_type_name(a->type) : NULL);
    strbuf_puts(j, ",\"phase\":");
    json_string_or_null(j, a->phase.data ? a->phase.data : "");
    if (a->since_ms > 0)
        strbuf_printf(j, ",\"since\":%lld", (long long)(a->since_ms / 1000));
    else
        strbuf_puts(j, ",\"since\":null");
    strbuf_printf(j, ",\"waiting\":%s,\"reasons\":[", a->result == EXPLAIN_WAITING ? "true" : "false");
    const char *r = x->reasons.data, *end = r ? r + x->reasons.len : NULL;
    for (int n = 0; r && r < end; r += strlen(r) + 1, n++) {
        if (n)
            strbuf_putc(j, ',');
        json_string_or_null(j, r);
    }
    strbuf_puts(j, "],\"text\":");
    json_string_or_null(j, text->data ? text->data : "");
    strbuf_putc(j, '}');
}

int explain_task(const pool_state *const *pools, int npools, uint64_t task_id, int64_t now_ms, strbuf *json,
                 strbuf *text)
{
    if (task_id == 0 || npools < 0 || (npools > 0 && !pools))
        return -EINVAL;
    explain_ctx x = { .task = task_id, .now = now_ms, .pools = pools, .npools = npools, .reasons = STRBUF_INIT };
    answer a = { .slot = -1, .phase = STRBUF_INIT };

    holding h[EXPLAIN_MAX_HOLDINGS];
    int nh = find_holdings(&x, h, EXPLAIN_MAX_HOLDINGS);
    const pool_state *wps = NULL;
    const view_waiting *w = NULL;
    if (nh > 0)
        explain_held(&x, h, nh, &a);
    else if ((w = find_waiting(&x, &wps)) != NULL)
        explain_waiting(&x, wps, w, &a);
    else
        explain_unknown(&x, &a);

    strbuf t = STRBUF_INIT;
    write_text(&x, &a, &t);
    bool oom = x.reasons.oom || a.phase.oom || t.oom;
    if (text) {
        strbuf_append(text, t.data ? t.data : "", t.len);
        oom |= text->oom;
    }
    if (json) {
        write_json(&x, &a, &t, json);
        oom |= json->oom;
    }
    strbuf_free(&t);
    strbuf_free(&a.phase);
    strbuf_free(&x.reasons);
    return oom ? -ENOMEM : (int)a.result;
}
