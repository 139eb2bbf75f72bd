/* dispatch.c — the devplane's task dispatcher; see dispatch.h.
 *
 * One pass visits every workspace in creation order and dispatches at most one task of each — its next executable
 * task (ref §6.4) — to the first connected agent, in a rotating order (upstream: Go's random map order), that can
 * take it. A pass that dispatched anything asks for another one, so a burst of tasks drains in a few loop turns.
 * Passes run every second (upstream's pending-task monitor runs every 10 s; its event triggers are the same) and
 * on the next loop turn after a kick.
 *
 * The capacity of an agent is what its last heartbeat said, with two corrections that upstream lacks and that keep
 * a slot-aware plane from pushing work an agent can only reject:
 *   - in flight: a task dispatched to the agent less than DISPATCH_INFLIGHT_NS ago that its last heartbeat does not
 *     list yet (in slots or current_tasks) counts as taking the capacity it needs — otherwise every pass before
 *     the next heartbeat would see the same free slot (ref §4.7: "bursts can exceed the limits");
 *   - after a rejection: a task that agent A rejected is not offered to A again until A has said something new
 *     (a heartbeat or a task_request), or A and the plane would trade the same task in a loop.
 * An agent that has not sent a heartbeat yet has upstream's initial status: plan_running 0, plan_limit 3,
 * apply_running false (ref §3.1).
 *
 * Confirmed applies (ref §6.5 step 4, §8 entry 8) are re-tried on every pass, like upstream's ExecuteConfirmedApply
 * and its 10 s monitor: an apply_pending task with apply_confirmed_by set goes (slot-aware) to the agent whose
 * slot 0 is reserved for it — the warm path — else to any agent whose slot 0 is idle — the cold path, rebuilt
 * from the snapshot and plan_data; never to one whose slot 0 runs something or holds another reservation. With
 * --apply-dispatch upstream it goes to the next agent in the rotation whose heartbeat says apply_running false,
 * as upstream's IsAgentAvailable does (ref §4.7) — which may well be another agent than the reserved one.
 *
 * The C&C side follows ref §3.11 and §3.6: task_completed, task_failed and task_rejected are recorded in the task's
 * events and re-check the queue (the status itself only changes through E5); log_stream lines go to the task's
 * ring of live lines and resource_status_update lines to its resource changes (ref §3.9); when an agent's
 * connection ends, its running tasks fail with "Agent <id> disconnected unexpectedly".
 *
 * The demand document (DESIGN §5 step 3) is read off the same gates as a pass — the workspace's mode and pool, the
 * queue rule of tasks_held_back(), confirmed applies — so that what it calls waiting is what a pass would send. */
#include "dispatch.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "iac/json.h"
#include "iac/log.h"
#include "route.h"

#define DISPATCH_TICK_MS 1000
#define DISPATCH_INFLIGHT_NS (30 * INT64_C(1000000000))
#define DISPATCH_SLOTS_MAX 64
#define DISPATCH_CURRENT_MAX 256 /* current_tasks ids kept from a heartbeat */
#define DISPATCH_RESERVED_MAX 16 /* task_request reservations kept */

typedef enum { SLOT_OTHER = 0, SLOT_IDLE, SLOT_RUNNING, SLOT_RESERVED } slot_state;

/* What the plane knows of one connected agent. Dropped when its connection ends: a new connection starts from
 * upstream's initial status again. */
typedef struct {
    char     agent_id[REG_ID_MAX];
    int64_t  plan_running, plan_limit;
    bool     apply_running;
    bool     draining;
    bool     has_slots;
    int      nslots;
    struct {
        int        id;
        slot_state state;
        uint64_t   task_id;
    } slots[DISPATCH_SLOTS_MAX];
    uint64_t current[DISPATCH_CURRENT_MAX];
    size_t   ncurrent;
    uint64_t news;    /* stamp of its last heartbeat or task_request (unique across agents) */
    bool     asked;   /* pull: a task_request stands */
    int64_t  free_pa; /* pull: what it still asks for */
    int64_t  free_plan;
    uint64_t reserved[DISPATCH_RESERVED_MAX]; /* pull: the reservations it announced */
    size_t   nreserved;
} dp_agent;

struct dispatch {
    uv_loop_t     *loop;
    tasks         *store;
    registry      *reg;
    cc_server     *cc;
    dispatch_mode  mode;
    dispatch_choice plan_choice, apply_choice;
    uv_timer_t     tick, soon;
    int            open_handles;
    bool           closing;
    dp_agent     **agents;
    size_t         nagents, capagents;
    size_t         rr;       /* where the next scan of the registry starts */
    uint64_t       news_seq;
};

/* ---- agents ---- */

static dp_agent *agent_find(dispatch *d, const char *id)
{
    for (size_t i = 0; i < d->nagents; i++)
        if (strcmp(d->agents[i]->agent_id, id) == 0)
            return d->agents[i];
    return NULL;
}

/* The agent's entry, created with upstream's initial status. NULL on OOM. */
static dp_agent *agent_get(dispatch *d, const char *id)
{
    dp_agent *ag = agent_find(d, id);

    if (ag)
        return ag;
    if (d->nagents == d->capagents) {
        size_t cap = d->capagents ? d->capagents * 2 : 16;
        dp_agent **n = realloc(d->agents, cap * sizeof *n);
        if (!n)
            return NULL;
        d->agents = n;
        d->capagents = cap;
    }
    if (!(ag = calloc(1, sizeof *ag)))
        return NULL;
    snprintf(ag->agent_id, sizeof ag->agent_id, "%s", id);
    ag->plan_limit = 3;
    ag->news = ++d->news_seq;
    d->agents[d->nagents++] = ag;
    return ag;
}

static void agent_drop(dispatch *d, const char *id)
{
    for (size_t i = 0; i < d->nagents; i++)
        if (strcmp(d->agents[i]->agent_id, id) == 0) {
            free(d->agents[i]);
            d->agents[i] = d->agents[--d->nagents];
            return;
        }
}

/* Does the agent's last heartbeat list the task (in a slot or in current_tasks)? */
static bool agent_lists(const dp_agent *ag, uint64_t task_id)
{
    for (int i = 0; i < ag->nslots; i++)
        if (ag->slots[i].task_id == task_id)
            return true;
    for (size_t i = 0; i < ag->ncurrent; i++)
        if (ag->current[i] == task_id)
            return true;
    return false;
}

/* Tasks dispatched to the agent that its heartbeats do not show yet, of the plan_and_apply kind or of the plan kind
 * (plan, drift_check). See the top comment. */
static int in_flight(dispatch *d, const dp_agent *ag, bool plan_and_apply, int64_t now)
{
    int n = 0;
    for (size_t i = 0; i < tasks_task_count(d->store); i++) {
        const dp_task *t = tasks_task_at(d->store, i);
        if (strcmp(t->status, "running") != 0 || strcmp(t->agent_id, ag->agent_id) != 0 ||
            now - t->dispatched_ns > DISPATCH_INFLIGHT_NS || (t->type == TASKS_PLAN_AND_APPLY) != plan_and_apply ||
            agent_lists(ag, t->id))
            continue;
        n++;
    }
    return n;
}

/* Push: can the agent take t now? DESIGN §6 slots when the heartbeat has them, else ref §4.7. */
static bool can_take(dispatch *d, const dp_agent *ag, const dp_task *t, int64_t now)
{
    bool pa = t->type == TASKS_PLAN_AND_APPLY;
    int busy, idle = 0;

    if (t->type == TASKS_APPLY || ag->draining) /* upstream never finds an agent for a bare apply */
        return false;
    busy = in_flight(d, ag, pa, now);
    if (!ag->has_slots || d->plan_choice == DISPATCH_UPSTREAM)
        return pa ? !ag->apply_running && busy == 0 : ag->plan_running + busy < ag->plan_limit;
    for (int i = 0; i < ag->nslots; i++)
        if (ag->slots[i].state == SLOT_IDLE && (pa ? ag->slots[i].id == 0 : ag->slots[i].id >= 1))
            idle++;
    return idle > busy;
}

/* The state of the agent's slot 0 by its last heartbeat, and the task it holds; SLOT_OTHER without slots. */
static slot_state slot0(const dp_agent *ag, uint64_t *task_id)
{
    *task_id = 0;
    for (int i = 0; ag->has_slots && i < ag->nslots; i++)
        if (ag->slots[i].id == 0) {
            *task_id = ag->slots[i].task_id;
            return ag->slots[i].state;
        }
    return SLOT_OTHER;
}

/* Push, slot-aware: does slot 0 hold t here (the warm path)? Reserved for it — or still running it: the agent
 * reserves slot 0 as its plan phase ends, and its heartbeat saying so can reach the plane after the E5 that made
 * the task apply_pending (and after a quick confirmation). */
static bool reserved_for(const dp_agent *ag, const dp_task *t)
{
    uint64_t id;
    slot_state st = slot0(ag, &id);
    return (st == SLOT_RESERVED || st == SLOT_RUNNING) && id == t->id;
}

/* Push: can the agent run t's apply cold? Slot-aware: slot 0 idle (judged by ref §4.7 without slots); upstream:
 * apply_running false. Either way nothing of the plan_and_apply kind in flight to it. */
static bool can_apply(dispatch *d, const dp_agent *ag, int64_t now)
{
    uint64_t id;
    if (ag->draining || in_flight(d, ag, true, now) > 0)
        return false;
    if (d->apply_choice == DISPATCH_UPSTREAM || !ag->has_slots)
        return !ag->apply_running;
    return slot0(ag, &id) == SLOT_IDLE;
}

/* Pull: did the agent announce a reservation for t? */
static bool asked_reserved(const dp_agent *ag, const dp_task *t)
{
    for (size_t i = 0; ag->asked && i < ag->nreserved; i++)
        if (ag->reserved[i] == t->id)
            return true;
    return false;
}

/* Pull: does t fit in what the agent asked for? */
static bool asked_for(const dp_agent *ag, const dp_task *t)
{
    if (!ag->asked || t->type == TASKS_APPLY)
        return false;
    return t->type == TASKS_PLAN_AND_APPLY ? ag->free_pa > 0 : ag->free_plan > 0;
}

/* The agent t goes to, or NULL. */
static dp_agent *pick(dispatch *d, const dp_task *t, int64_t now)
{
    size_t n = registry_agent_count(d->reg);

    for (size_t k = 0; k < n; k++) {
        size_t i = (d->rr + k) % n;
        reg_agent *ra = registry_agent_at(d->reg, i);
        dp_agent *ag;
        if (!ra->conn || !(ag = agent_get(d, ra->id)))
            continue;
        if (strcmp(t->rejected_by, ag->agent_id) == 0 && t->rejected_news == ag->news)
            continue;
        if (d->mode == DISPATCH_PULL ? asked_for(ag, t) : can_take(d, ag, t, now)) {
            d->rr = (i + 1) % n;
            return ag;
        }
    }
    return NULL;
}

/* Why an apply went where it went (for the task's events). */
static const char *const apply_why[] = { "slot 0 reserved for it", "slot 0 idle", "apply_running false",
                                         "task_request reservation", "task_request free slot 0" };
enum { WHY_RESERVED, WHY_IDLE, WHY_UPSTREAM, WHY_ASKED_RESERVED, WHY_ASKED_FREE };

typedef enum { FIT_NONE = 0, FIT_COLD, FIT_WARM } apply_fit;

/* How the agent suits t's apply, and why: FIT_WARM (it holds t's reservation: taken at once), FIT_COLD (it can
 * run it from the snapshot), FIT_NONE. Upstream's choice has no warm fit: any available agent will do. */
static apply_fit fit_apply(dispatch *d, const dp_agent *ag, const dp_task *t, int64_t now, int *why)
{
    bool slot_aware = d->apply_choice == DISPATCH_SLOT_AWARE;
    bool warm = d->mode == DISPATCH_PULL ? asked_reserved(ag, t) : reserved_for(ag, t);
    bool cold = d->mode == DISPATCH_PULL ? ag->asked && ag->free_pa > 0 : can_apply(d, ag, now);

    if (slot_aware && warm) {
        *why = d->mode == DISPATCH_PULL ? WHY_ASKED_RESERVED : WHY_RESERVED;
        return FIT_WARM;
    }
    if (!cold)
        return FIT_NONE;
    *why = d->mode == DISPATCH_PULL ? WHY_ASKED_FREE : slot_aware ? WHY_IDLE : WHY_UPSTREAM;
    return FIT_COLD;
}

/* The agent a confirmed apply goes to, or NULL; *why says which rule chose it. Slot-aware: the agent holding the
 * reservation wherever it is in the rotation, else the first that can run it cold; upstream: the first available
 * one in the rotation. */
static dp_agent *pick_apply(dispatch *d, const dp_task *t, int64_t now, int *why)
{
    size_t n = registry_agent_count(d->reg), best_i = 0;
    dp_agent *best = NULL;

    for (size_t k = 0; k < n; k++) {
        size_t i = (d->rr + k) % n;
        reg_agent *ra = registry_agent_at(d->reg, i);
        dp_agent *ag;
        int w = 0;
        apply_fit fit;
        if (!ra->conn || !(ag = agent_get(d, ra->id)) || ag->draining ||
            (strcmp(t->rejected_by, ag->agent_id) == 0 && t->rejected_news == ag->news))
            continue;
        if ((fit = fit_apply(d, ag, t, now, &w)) == FIT_NONE || (fit == FIT_COLD && best))
            continue;
        best = ag;
        best_i = i;
        *why = w;
        if (fit == FIT_WARM || d->apply_choice == DISPATCH_UPSTREAM)
            break;
    }
    if (best)
        d->rr = (best_i + 1) % n;
    return best;
}

/* ---- dispatch (ref §6.7 steps 6 and 7) ---- */

static int send_task_frame(dispatch *d, const char *agent_id, const proto_msg *m)
{
    size_t len;
    char *frame = proto_encode(m, &len);
    int rc = frame ? cc_send(d->cc, agent_id, frame, len) : -ENOMEM;
    free(frame);
    return rc;
}

/* Sends t to ag: the plan phase of a pending task, or the apply of a confirmed apply_pending one. why: for the
 * event (NULL for a plan). 0, or the send error (the row is rolled back and retried later). */
static int dispatch_task(dispatch *d, dp_task *t, dp_agent *ag, bool apply, const char *why, int64_t now)
{
    static const int64_t retry_s[] = { 5, 10, 20, 40, 60 }; /* indexed by retry_count after the increment */
    const char *action = apply ? "apply" : "plan";
    proto_msg m = { .type = MSG_RUN_TASK };
    cJSON *e;
    int rc;

    if (apply && !t->apply_confirmed_by) { /* ref §6.7 step 1, §8 entry 6: never without a confirmation */
        log_error("dispatch", "task %u: refusing to dispatch an unconfirmed apply", t->id);
        return -EPERM;
    }
    /* The row is saved before the frame goes out, so the agent's first E3 already sees its agent_id. */
    tasks_set_status(t, "running", apply ? "applying" : "planning", now, "dispatch");
    snprintf(t->agent_id, sizeof t->agent_id, "%s", ag->agent_id);
    t->started_ns = t->dispatched_ns = now;
    if (apply)
        t->plan_task_id = t->id;
    m.u.run_task.task_id = t->id;
    m.u.run_task.workspace_id = t->ws->id;
    m.u.run_task.action = (char *)action;
    m.u.run_task.task_type = (char *)tasks_type_name(t->type);
    rc = send_task_frame(d, ag->agent_id, &m);
    if (rc < 0) {
        /* Roll the row back and retry later by upstream's backoff. */
        tasks_set_status(t, apply ? "apply_pending" : "pending", "", now, "dispatch");
        t->agent_id[0] = '\0';
        t->started_ns = t->dispatched_ns = 0;
        t->retry_count++;
        t->retry_at_ns = now + retry_s[t->retry_count < 4 ? t->retry_count : 4] * INT64_C(1000000000);
        if ((e = tasks_event(t, now, "send_failed"))) {
            cJSON_AddStringToObject(e, "agent_id", ag->agent_id);
            cJSON_AddStringToObject(e, "action", action);
            cJSON_AddStringToObject(e, "error", strerror(-rc));
        }
        log_warn("dispatch", "task %u: run_task (%s) to %s failed (%s); retry %u", t->id, action, ag->agent_id,
                 strerror(-rc), t->retry_count);
        return rc;
    }
    t->retry_count = 0;
    if ((e = tasks_event(t, now, "dispatched"))) {
        cJSON_AddStringToObject(e, "agent_id", ag->agent_id);
        cJSON_AddStringToObject(e, "action", action);
        cJSON_AddStringToObject(e, "mode", d->mode == DISPATCH_PULL ? "pull" : "push");
        if (why)
            cJSON_AddStringToObject(e, "why", why);
    }
    log_info("dispatch", "task %u (%s %s, workspace %s) → %s (%s%s%s)", t->id, tasks_type_name(t->type), action,
             t->ws->id, ag->agent_id, d->mode == DISPATCH_PULL ? "pull" : "push", why ? ": " : "", why ? why : "");
    return 0;
}

static bool dispatchable_mode(const dp_workspace *ws)
{
    return strcmp(ws->execution_mode, "agent") == 0 || strcmp(ws->execution_mode, "k8s") == 0;
}

static void pass(dispatch *d)
{
    int64_t now = route_now_ns();
    bool sent = false;

    for (size_t i = 0; i < tasks_workspace_count(d->store); i++) {
        dp_workspace *ws = tasks_workspace_at(d->store, i);
        dp_task *t;
        dp_agent *ag;
        if (!dispatchable_mode(ws) || strcmp(ws->pool_id, registry_pool(d->reg)) != 0)
            continue;
        if (!(t = tasks_next_executable(d->store, ws)) || t->retry_at_ns > now)
            continue;
        if ((ag = pick(d, t, now)) && dispatch_task(d, t, ag, false, NULL, now) == 0) {
            if (d->mode == DISPATCH_PULL)
                --*(t->type == TASKS_PLAN_AND_APPLY ? &ag->free_pa : &ag->free_plan);
            sent = true;
        }
    }
    /* Confirmed applies (ExecuteConfirmedApply, and upstream's monitor every 10 s: here every pass). The
     * workspace lock is the task's own (taken when it reached apply_pending): it does not hold the apply back. */
    for (size_t i = 0; i < tasks_task_count(d->store); i++) {
        dp_task *t = tasks_task_at(d->store, i);
        dp_agent *ag;
        int why = 0;
        if (strcmp(t->status, "apply_pending") != 0 || !t->apply_confirmed_by || t->retry_at_ns > now ||
            !dispatchable_mode(t->ws) || strcmp(t->ws->pool_id, registry_pool(d->reg)) != 0)
            continue;
        if (!(ag = pick_apply(d, t, now, &why)) || dispatch_task(d, t, ag, true, apply_why[why], now) < 0)
            continue;
        if (why == WHY_ASKED_FREE)
            ag->free_pa--;
        else if (why == WHY_ASKED_RESERVED)
            for (size_t k = 0; k < ag->nreserved; k++)
                if (ag->reserved[k] == t->id)
                    ag->reserved[k] = ag->reserved[--ag->nreserved];
        sent = true;
    }
    if (sent)
        dispatch_kick(d);
}

static void tick_cb(uv_timer_t *h)
{
    pass(h->data);
}

void dispatch_kick(dispatch *d)
{
    if (!d->closing && !uv_is_active((uv_handle_t *)&d->soon))
        uv_timer_start(&d->soon, tick_cb, 0, 0);
}

/* ---- the agents' messages ---- */

typedef void (*frame_fn)(dispatch *d, const char *agent_id, const proto_msg *m, int64_t now);

static void on_heartbeat(dispatch *d, const char *agent_id, const proto_msg *m, int64_t now)
{
    const proto_heartbeat *h = &m->u.heartbeat;
    dp_agent *ag = agent_get(d, agent_id);

    (void)now;
    if (!ag)
        return;
    ag->plan_running = h->plan_running;
    ag->plan_limit = h->plan_limit;
    ag->apply_running = h->apply_running;
    ag->draining = h->state && strcmp(h->state, "draining") == 0;
    ag->has_slots = h->has_slots;
    ag->nslots = h->n_slots < DISPATCH_SLOTS_MAX ? (int)h->n_slots : DISPATCH_SLOTS_MAX;
    for (int i = 0; i < ag->nslots; i++) {
        static const char *const states[] = { [SLOT_IDLE] = "idle", [SLOT_RUNNING] = "running",
                                              [SLOT_RESERVED] = "reserved" };
        ag->slots[i].id = h->slots[i].slot_id;
        ag->slots[i].state = SLOT_OTHER;
        for (int k = SLOT_IDLE; k <= SLOT_RESERVED; k++)
            if (h->slots[i].status && strcmp(h->slots[i].status, states[k]) == 0)
                ag->slots[i].state = (slot_state)k;
        ag->slots[i].task_id = h->slots[i].task_id;
    }
    if (!h->current_tasks_null) { /* null leaves the old list, as upstream */
        ag->ncurrent = h->n_current_tasks < DISPATCH_CURRENT_MAX ? h->n_current_tasks : DISPATCH_CURRENT_MAX;
        if (ag->ncurrent)
            memcpy(ag->current, h->current_tasks, ag->ncurrent * sizeof ag->current[0]);
    }
    ag->news = ++d->news_seq;
    dispatch_kick(d);
}

static void on_task_request(dispatch *d, const char *agent_id, const proto_msg *m, int64_t now)
{
    const proto_task_request *r = &m->u.task_request;
    dp_agent *ag = agent_get(d, agent_id);

    (void)now;
    if (!ag)
        return;
    ag->asked = true;
    ag->free_pa = r->free_plan_and_apply > 0 ? r->free_plan_and_apply : 0;
    ag->free_plan = r->free_plan > 0 ? r->free_plan : 0;
    ag->nreserved = r->n_reserved < DISPATCH_RESERVED_MAX ? r->n_reserved : DISPATCH_RESERVED_MAX;
    if (ag->nreserved)
        memcpy(ag->reserved, r->reserved, ag->nreserved * sizeof ag->reserved[0]);
    ag->news = ++d->news_seq;
    log_info("dispatch", "agent %s asks for work: plan_and_apply %lld, plan %lld, %zu reservation(s)%s", agent_id,
             (long long)ag->free_pa, (long long)ag->free_plan, r->n_reserved,
             d->mode == DISPATCH_PULL ? "" : " (push mode: noted only)");
    dispatch_kick(d);
}

/* The task a frame names, or NULL (logged: an agent talking about a task the plane does not have). */
static dp_task *frame_task(dispatch *d, const char *agent_id, const proto_msg *m, uint64_t task_id)
{
    dp_task *t = tasks_task_find(d->store, task_id);
    if (!t)
        log_warn("dispatch", "agent %s: %s for unknown task %" PRIu64, agent_id, proto_type_name(m->type), task_id);
    return t;
}

static void on_task_rejected(dispatch *d, const char *agent_id, const proto_msg *m, int64_t now)
{
    const proto_task_rejected *r = &m->u.task_rejected;
    dp_task *t = frame_task(d, agent_id, m, r->task_id);
    dp_agent *ag = agent_get(d, agent_id);
    cJSON *e;

    log_warn("dispatch", "agent %s rejected task %" PRIu64 " (%s): %s", agent_id, r->task_id,
             r->action ? r->action : "?", r->reason ? r->reason : "");
    if (!t)
        return;
    if ((e = tasks_event(t, now, "rejected"))) {
        cJSON_AddStringToObject(e, "agent_id", agent_id);
        route_add_str_or_null(e, "action", r->action);
        route_add_str_or_null(e, "reason", r->reason);
    }
    snprintf(t->rejected_by, sizeof t->rejected_by, "%s", agent_id);
    t->rejected_news = ag ? ag->news : 0;
    dispatch_kick(d);
}

static void on_task_completed(dispatch *d, const char *agent_id, const proto_msg *m, int64_t now)
{
    dp_task *t = frame_task(d, agent_id, m, m->u.task_ref.task_id);
    cJSON *e;

    log_info("dispatch", "agent %s: task %" PRIu64 " completed", agent_id, m->u.task_ref.task_id);
    if (t && (e = tasks_event(t, now, "task_completed")))
        cJSON_AddStringToObject(e, "agent_id", agent_id);
    dispatch_kick(d);
}

static void on_task_failed(dispatch *d, const char *agent_id, const proto_msg *m, int64_t now)
{
    const proto_task_failed *f = &m->u.task_failed;
    dp_task *t = frame_task(d, agent_id, m, f->task_id);
    cJSON *e;

    log_info("dispatch", "agent %s: task %" PRIu64 " failed: %s", agent_id, f->task_id, f->error ? f->error : "");
    if (t && (e = tasks_event(t, now, "task_failed"))) {
        cJSON_AddStringToObject(e, "agent_id", agent_id);
        route_add_str_or_null(e, "error", f->error);
    }
    dispatch_kick(d);
}

/* ref §3.9: a resource_status_update line {"resource_address", "apply_status", …} updates the task's rows of that
 * address. */
static void resource_status(dp_task *t, const char *line, int64_t now)
{
    const char *addr = NULL, *status = NULL;
    char err[128], when[ROUTE_TIME_MAX];
    cJSON *o = json_parse_object(line, strlen(line), err, sizeof err), *row;

    if (!o || json_get_string(o, "resource_address", false, &addr, err, sizeof err) < 0 ||
        json_get_string(o, "apply_status", false, &status, err, sizeof err) < 0 || !addr || !*addr || !status ||
        !*status) {
        cJSON_Delete(o);
        return;
    }
    route_time(now, when);
    cJSON_ArrayForEach(row, t->resource_changes)
    {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(row, "resource_address");
        if (!cJSON_IsString(a) || strcmp(a->valuestring, addr) != 0)
            continue;
        cJSON_ReplaceItemInObjectCaseSensitive(row, "apply_status", cJSON_CreateString(status));
        cJSON_ReplaceItemInObjectCaseSensitive(row, "updated_at", cJSON_CreateString(when));
        if (strcmp(status, "applying") == 0)
            cJSON_ReplaceItemInObjectCaseSensitive(row, "apply_started_at", cJSON_CreateString(when));
        else if (strcmp(status, "completed") == 0)
            cJSON_ReplaceItemInObjectCaseSensitive(row, "apply_completed_at", cJSON_CreateString(when));
    }
    cJSON_Delete(o);
}

static void on_log_stream(dispatch *d, const char *agent_id, const proto_msg *m, int64_t now)
{
    const proto_log_stream *l = &m->u.log_stream;
    dp_task *t = tasks_task_find(d->store, l->task_id);

    (void)agent_id;
    if (!t) /* too frequent to log each one */
        return;
    tasks_live_line(t, l->line ? l->line : "");
    if (l->type && strcmp(l->type, "resource_status_update") == 0 && l->line)
        resource_status(t, l->line, now);
}

static const frame_fn frame_handlers[MSG__COUNT] = {
    [MSG_HEARTBEAT] = on_heartbeat,           [MSG_TASK_REQUEST] = on_task_request,
    [MSG_TASK_REJECTED] = on_task_rejected,   [MSG_TASK_COMPLETED] = on_task_completed,
    [MSG_TASK_FAILED] = on_task_failed,       [MSG_LOG_STREAM] = on_log_stream,
};

void dispatch_frame(void *arg, const char *agent_id, const proto_msg *m)
{
    dispatch *d = arg;
    if ((size_t)m->type < MSG__COUNT && frame_handlers[m->type])
        frame_handlers[m->type](d, agent_id, m, route_now_ns());
}

/* ref §3.6 step 2. */
void dispatch_disconnected(void *arg, const char *agent_id)
{
    dispatch *d = arg;
    int64_t now = route_now_ns();
    char msg[sizeof "Agent  disconnected unexpectedly" + REG_ID_MAX];
    cJSON *e;

    agent_drop(d, agent_id);
    snprintf(msg, sizeof msg, "Agent %s disconnected unexpectedly", agent_id);
    for (size_t i = 0; i < tasks_task_count(d->store); i++) {
        dp_task *t = tasks_task_at(d->store, i);
        if (strcmp(t->status, "running") != 0 || strcmp(t->agent_id, agent_id) != 0)
            continue;
        if (tasks_live_to_output(t) < 0)
            log_warn("dispatch", "task %u: cannot keep the live log", t->id);
        tasks_set_status(t, "failed", NULL, now, "disconnect");
        tasks_set_string(&t->error_message, msg);
        t->completed_ns = now;
        if ((e = tasks_event(t, now, "agent_disconnected")))
            cJSON_AddStringToObject(e, "agent_id", agent_id);
        log_warn("dispatch", "task %u failed: %s", t->id, msg);
    }
    dispatch_kick(d);
}

/* ---- cancel (ref §6.8) ---- */

/* Does the lock reason name this task ("Locked for apply (task #<id>)…")? The id must end there: #1 is not #12. */
static bool lock_names_task(const char *reason, uint32_t id)
{
    char needle[32];
    int n = snprintf(needle, sizeof needle, "task #%u", id);
    for (const char *p = reason ? strstr(reason, needle) : NULL; p; p = strstr(p + 1, needle))
        if (!(p[n] >= '0' && p[n] <= '9'))
            return true;
    return false;
}

static void send_ref(dispatch *d, const char *agent_id, msg_type type, uint32_t task_id)
{
    proto_msg m = { .type = type };
    int rc;

    m.u.task_ref.task_id = task_id;
    if ((rc = send_task_frame(d, agent_id, &m)) < 0)
        log_warn("dispatch", "task %u: %s to %s not sent: %s", task_id, proto_type_name(type), agent_id,
                 strerror(-rc));
    else
        log_info("dispatch", "task %u: %s sent to %s", task_id, proto_type_name(type), agent_id);
}

static bool connected(dispatch *d, const char *agent_id)
{
    const reg_agent *ra = registry_agent_find(d->reg, agent_id);
    return ra && ra->conn;
}

/* DESIGN §6: an apply_pending task leaves without an apply — every agent whose heartbeat shows slot 0 reserved for
 * it frees it, and so does the agent that ran its plan (its heartbeat may not show the reservation yet; a
 * release for a task it does not hold is ignored). */
static void release_reservations(dispatch *d, const dp_task *t)
{
    bool plan_agent_told = false;

    for (size_t i = 0; i < d->nagents; i++) {
        const dp_agent *ag = d->agents[i];
        if (!reserved_for(ag, t) || !connected(d, ag->agent_id))
            continue;
        send_ref(d, ag->agent_id, MSG_RELEASE_RESERVATION, t->id);
        plan_agent_told = plan_agent_told || strcmp(ag->agent_id, t->agent_id) == 0;
    }
    if (t->agent_id[0] && !plan_agent_told && connected(d, t->agent_id))
        send_ref(d, t->agent_id, MSG_RELEASE_RESERVATION, t->id);
}

void dispatch_cancel(dispatch *d, dp_task *t)
{
    int64_t now = route_now_ns();

    if (strcmp(t->status, "running") == 0 && t->agent_id[0])
        send_ref(d, t->agent_id, MSG_CANCEL_TASK, t->id);
    else if (strcmp(t->status, "apply_pending") == 0)
        release_reservations(d, t);
    if (tasks_live_to_output(t) < 0)
        log_warn("dispatch", "task %u: cannot keep the live log", t->id);
    tasks_set_status(t, "cancelled", NULL, now, "cancel");
    t->completed_ns = now;
    tasks_set_string(&t->error_message, "Task cancelled by user");
    tasks_event(t, now, "cancelled");
    if (t->type == TASKS_PLAN_AND_APPLY && t->ws->is_locked && lock_names_task(t->ws->lock_reason, t->id)) {
        tasks_workspace_unlock(t->ws);
        log_info("dispatch", "task %u cancelled: workspace %s unlocked", t->id, t->ws->id);
    }
    log_info("dispatch", "task %u cancelled", t->id);
    dispatch_kick(d);
}

void dispatch_returned(dispatch *d, dp_task *t)
{
    const dp_agent *ag = t->agent_id[0] ? agent_find(d, t->agent_id) : NULL;

    if (!ag)
        return;
    snprintf(t->rejected_by, sizeof t->rejected_by, "%s", ag->agent_id);
    t->rejected_news = ag->news;
    log_info("dispatch", "task %u handed back by %s (%s): not offered to it again before its next heartbeat", t->id,
             ag->agent_id, t->status);
    dispatch_kick(d);
}

cJSON *dispatch_view(dispatch *d)
{
    cJSON *o = cJSON_CreateObject(), *list;

    cJSON_AddStringToObject(o, "mode", d->mode == DISPATCH_PULL ? "pull" : "push");
    cJSON_AddStringToObject(o, "plan_dispatch", d->plan_choice == DISPATCH_UPSTREAM ? "upstream" : "slot-aware");
    cJSON_AddStringToObject(o, "apply_dispatch", d->apply_choice == DISPATCH_UPSTREAM ? "upstream" : "slot-aware");
    list = cJSON_AddArrayToObject(o, "agents");
    for (size_t i = 0; i < d->nagents; i++) {
        const dp_agent *ag = d->agents[i];
        cJSON *e = cJSON_CreateObject(), *slots = NULL, *cur = cJSON_CreateArray(), *free_counts = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "agent_id", ag->agent_id);
        cJSON_AddNumberToObject(e, "plan_running", (double)ag->plan_running);
        cJSON_AddNumberToObject(e, "plan_limit", (double)ag->plan_limit);
        cJSON_AddBoolToObject(e, "apply_running", ag->apply_running);
        cJSON_AddBoolToObject(e, "draining", ag->draining);
        if (ag->has_slots && (slots = cJSON_CreateArray()))
            for (int k = 0; k < ag->nslots; k++) {
                static const char *const names[] = { "other", "idle", "running", "reserved" };
                cJSON *s = cJSON_CreateObject();
                cJSON_AddNumberToObject(s, "slot_id", ag->slots[k].id);
                cJSON_AddStringToObject(s, "status", names[ag->slots[k].state]);
                cJSON_AddBoolToObject(s, "idle", ag->slots[k].state == SLOT_IDLE);
                if (ag->slots[k].task_id)
                    cJSON_AddNumberToObject(s, "task_id", (double)ag->slots[k].task_id);
                else
                    cJSON_AddNullToObject(s, "task_id");
                cJSON_AddItemToArray(slots, s);
            }
        cJSON_AddItemToObject(e, "slots", slots ? slots : cJSON_CreateNull());
        for (size_t k = 0; k < ag->ncurrent; k++)
            cJSON_AddItemToArray(cur, cJSON_CreateNumber((double)ag->current[k]));
        cJSON_AddItemToObject(e, "current_tasks", cur);
        cJSON_AddBoolToObject(e, "asked", ag->asked);
        cJSON_AddNumberToObject(free_counts, "plan_and_apply", (double)ag->free_pa);
        cJSON_AddNumberToObject(free_counts, "plan", (double)ag->free_plan);
        cJSON_AddItemToObject(e, "free", free_counts);
        cJSON *res = cJSON_AddArrayToObject(e, "reserved");
        for (size_t k = 0; res && k < ag->nreserved; k++)
            cJSON_AddItemToArray(res, cJSON_CreateNumber((double)ag->reserved[k]));
        cJSON_AddItemToArray(list, e);
    }
    return o;
}

/* ---- demand ---- */

/* What a waiting task needs, by the key of the demand document; NULL when it waits for no slot. */
static const char *demand_kind(tasks *store, const dp_task *t)
{
    static const char *const keys[] = { [TASKS_PLAN] = "plan", [TASKS_PLAN_AND_APPLY] = "plan_and_apply",
                                        [TASKS_DRIFT_CHECK] = "drift_check" };
    if (strcmp(t->status, "pending") == 0 && !tasks_held_back(store, t))
        return (size_t)t->type < sizeof keys / sizeof keys[0] ? keys[t->type] : NULL;
    /* A confirmed apply not yet dispatched needs a slot 0: the one holding its reservation, or any idle one. */
    if (strcmp(t->status, "apply_pending") == 0 && t->apply_confirmed_by)
        return keys[TASKS_PLAN_AND_APPLY];
    return NULL;
}

cJSON *dispatch_demand(dispatch *d)
{
    const char *pool = registry_pool(d->reg);
    cJSON *doc = cJSON_CreateObject(), *pools = cJSON_AddObjectToObject(doc, "pools");
    cJSON *entry = cJSON_AddObjectToObject(pools, pool);
    int counts[3] = { 0, 0, 0 };
    static const char *const order[] = { "plan_and_apply", "plan", "drift_check" };
    cJSON *list = cJSON_CreateArray();
    bool ok = doc && pools && entry && list;

    for (size_t i = 0; ok && i < tasks_task_count(d->store); i++) {
        const dp_task *t = tasks_task_at(d->store, i);
        const char *kind;
        cJSON *row;
        /* The same gates as pass(): only tasks the dispatcher would ever send to this pool's agents. */
        if (!dispatchable_mode(t->ws) || strcmp(t->ws->pool_id, pool) != 0 || !(kind = demand_kind(d->store, t)))
            continue;
        for (size_t k = 0; k < sizeof order / sizeof order[0]; k++)
            counts[k] += strcmp(kind, order[k]) == 0;
        ok = (row = cJSON_CreateObject()) && cJSON_AddNumberToObject(row, "task_id", t->id) &&
             cJSON_AddStringToObject(row, "task_type", tasks_type_name(t->type)) &&
             cJSON_AddNumberToObject(row, "waiting_since", (double)(t->created_ns / INT64_C(1000000000)));
        if (!ok || !cJSON_AddItemToArray(list, row)) {
            cJSON_Delete(row);
            ok = false;
        }
    }
    for (size_t k = 0; ok && k < sizeof order / sizeof order[0]; k++)
        ok = cJSON_AddNumberToObject(entry, order[k], counts[k]) != NULL;
    if (ok && cJSON_AddItemToObject(entry, "tasks", list))
        return doc;
    cJSON_Delete(list);
    cJSON_Delete(doc);
    return NULL;
}

/* ---- lifetime ---- */

dispatch *dispatch_new(uv_loop_t *loop, tasks *store, registry *reg, cc_server *cc, const dispatch_opts *opts)
{
    dispatch *d = calloc(1, sizeof *d);

    if (!d)
        return NULL;
    d->loop = loop;
    d->store = store;
    d->reg = reg;
    d->cc = cc;
    d->mode = opts->mode;
    d->plan_choice = opts->plan_choice;
    d->apply_choice = opts->apply_choice;
    uv_timer_init(loop, &d->tick);
    uv_timer_init(loop, &d->soon);
    d->tick.data = d->soon.data = d;
    d->open_handles = 2;
    uv_timer_start(&d->tick, tick_cb, DISPATCH_TICK_MS, DISPATCH_TICK_MS);
    return d;
}

static void timer_closed(uv_handle_t *h)
{
    dispatch *d = h->data;
    if (--d->open_handles > 0)
        return;
    for (size_t i = 0; i < d->nagents; i++)
        free(d->agents[i]);
    free(d->agents);
    free(d);
}

void dispatch_close(dispatch *d)
{
    if (!d || d->closing)
        return;
    d->closing = true;
    uv_timer_stop(&d->tick);
    uv_timer_stop(&d->soon);
    uv_close((uv_handle_t *)&d->tick, timer_closed);
    uv_close((uv_handle_t *)&d->soon, timer_closed);
}
