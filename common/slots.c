/* slots.c — the pod's slot table; see slots.h and DESIGN §4.2.
 *
 * Two tables carry the rules. `placement` says which slots a (type, action) may use; `moves` says which slot
 * states each transition starts from and leads to. Everything else is argument checking and a loop over slots.
 *
 * Invariants: a task id appears in at most one slot (start refuses an id the table already holds, except slot 0's
 * apply taking over its own reservation); only slot 0 is ever reserved; an idle slot has task 0 and no type.
 *
 * Decisions the header leaves open:
 *   - A plan_and_apply plan while slot 0 is reserved is refused with SLOTS_E_RESERVED even when the reservation is
 *     its own: the slot is held for an apply, and a second plan must not overwrite the warm work directory. A
 *     plan or drift_check whose id holds that reservation is refused the same way (one task, one slot).
 *   - slots_start does not look at `draining`: slots_place is the gate, and a placement decided just before a
 *     drain began may still be started.
 *   - Transitions return 0 on success. */
#include "iac/slots.h"

#include <string.h>

/* Which slots a (type, action) may use: slot 0 alone, or the lowest idle of 1..n-1. Apply exists only for
 * plan_and_apply; a pair missing here is SLOTS_E_INVALID. */
static const struct {
    task_type   type;
    task_action action;
    bool        slot0; /* true: slot 0 only; false: slots 1..n-1 */
} placement[] = {
    { TASK_PLAN_AND_APPLY, ACTION_PLAN, true },
    { TASK_PLAN_AND_APPLY, ACTION_APPLY, true },
    { TASK_PLAN, ACTION_PLAN, false },
    { TASK_DRIFT_CHECK, ACTION_PLAN, false },
};

static int slots_rule(task_type type, task_action action)
{
    for (size_t k = 0; k < sizeof placement / sizeof placement[0]; k++)
        if (placement[k].type == type && placement[k].action == action)
            return (int)k;
    return -1;
}

static bool slots_table_ok(const slot_table *t)
{
    return t && t->n >= SLOTS_MIN && t->n <= SLOTS_MAX;
}

void slots_init(slot_table *t, int n, int64_t now_ms)
{
    memset(t, 0, sizeof *t);
    /* Configuration validates the count with a message; clamping here keeps a bad caller from indexing out of
     * the array. */
    t->n = n < SLOTS_MIN ? SLOTS_MIN : n > SLOTS_MAX ? SLOTS_MAX : n;
    for (int i = 0; i < SLOTS_MAX; i++)
        t->s[i].since_ms = now_ms;
}

int slots_find(const slot_table *t, uint64_t task_id)
{
    if (!slots_table_ok(t) || task_id == 0)
        return -1;
    for (int i = 0; i < t->n; i++)
        if (t->s[i].status != SLOT_IDLE && t->s[i].task_id == task_id)
            return i;
    return -1;
}

/* Slot 0 for plan_and_apply. Its state against the action, in the order the header states the rules. */
static int slots_place_slot0(const slot_table *t, task_action action, uint64_t task_id)
{
    const slot *s0 = &t->s[0];
    switch (s0->status) {
    case SLOT_IDLE:
        return 0; /* a plan, or a cold apply */
    case SLOT_RESERVED:
        return action == ACTION_APPLY && s0->task_id == task_id ? 0 : SLOTS_E_RESERVED;
    case SLOT_RUNNING:
        break;
    }
    return SLOTS_E_NO_SLOT;
}

int slots_place(const slot_table *t, task_type type, task_action action, uint64_t task_id)
{
    int rule = slots_rule(type, action);
    if (!slots_table_ok(t) || rule < 0 || task_id == 0)
        return SLOTS_E_INVALID;
    int at = slots_find(t, task_id);
    if (at >= 0 && t->s[at].status == SLOT_RUNNING)
        return SLOTS_E_DUPLICATE;
    if (t->draining)
        return SLOTS_E_DRAINING;
    if (placement[rule].slot0)
        return slots_place_slot0(t, action, task_id);
    if (at >= 0)
        return SLOTS_E_RESERVED; /* the id holds slot 0's reservation; one task, one slot */
    for (int i = 1; i < t->n; i++)
        if (t->s[i].status == SLOT_IDLE)
            return i;
    return SLOTS_E_NO_SLOT;
}

static void slots_set(slot *s, slot_status status, uint64_t task_id, task_type type, task_action action,
                      int64_t now_ms)
{
    s->status = status;
    s->task_id = task_id;
    s->type = type;
    s->action = action;
    s->since_ms = now_ms;
}

int slots_start(slot_table *t, int i, uint64_t task_id, task_type type, task_action action, int64_t now_ms)
{
    int rule = slots_rule(type, action);
    if (!slots_table_ok(t) || rule < 0 || task_id == 0 || i < 0 || i >= t->n || placement[rule].slot0 != (i == 0))
        return SLOTS_E_INVALID;
    slot *s = &t->s[i];
    bool own_reservation = i == 0 && s->status == SLOT_RESERVED && s->task_id == task_id && action == ACTION_APPLY;
    if (s->status != SLOT_IDLE && !own_reservation)
        return SLOTS_E_STATE;
    if (!own_reservation && slots_find(t, task_id) >= 0)
        return SLOTS_E_STATE; /* one task, one slot */
    slots_set(s, SLOT_RUNNING, task_id, type, action, now_ms);
    return 0;
}

/* The three transitions that end or pause a run, as rows: the state the task's slot must be in, what else must
 * hold, and the state it moves to. */
typedef enum { MOVE_RESERVE, MOVE_FINISH, MOVE_RELEASE } slots_move;

static const struct {
    slot_status from;
    bool        plan_of_slot0; /* only the plan phase of slot 0's plan_and_apply */
    slot_status to;
} moves[] = {
    [MOVE_RESERVE] = { SLOT_RUNNING, true, SLOT_RESERVED },
    [MOVE_FINISH] = { SLOT_RUNNING, false, SLOT_IDLE },
    [MOVE_RELEASE] = { SLOT_RESERVED, false, SLOT_IDLE },
};

static int slots_move_task(slot_table *t, slots_move mv, uint64_t task_id, int64_t now_ms)
{
    if (!slots_table_ok(t) || task_id == 0)
        return SLOTS_E_INVALID;
    int i = slots_find(t, task_id);
    if (i < 0 || t->s[i].status != moves[mv].from)
        return SLOTS_E_STATE;
    slot *s = &t->s[i];
    if (moves[mv].plan_of_slot0 && (i != 0 || s->type != TASK_PLAN_AND_APPLY || s->action != ACTION_PLAN))
        return SLOTS_E_STATE;
    if (moves[mv].to == SLOT_IDLE)
        slots_set(s, SLOT_IDLE, 0, TASK_TYPE_NONE, ACTION_PLAN, now_ms);
    else
        slots_set(s, moves[mv].to, s->task_id, s->type, s->action, now_ms);
    return 0;
}

int slots_reserve(slot_table *t, uint64_t task_id, int64_t now_ms)
{
    return slots_move_task(t, MOVE_RESERVE, task_id, now_ms);
}

int slots_finish(slot_table *t, uint64_t task_id, int64_t now_ms)
{
    return slots_move_task(t, MOVE_FINISH, task_id, now_ms);
}

int slots_release(slot_table *t, uint64_t task_id, int64_t now_ms)
{
    return slots_move_task(t, MOVE_RELEASE, task_id, now_ms);
}

/* DESIGN §4.2: upstream reads plan_limit/plan_running/apply_running; a reserved slot 0 must read as not applying,
 * or an upstream plane would send the confirmed apply elsewhere. Draining reads as full. */
void slots_summarize(const slot_table *t, slots_summary *out)
{
    memset(out, 0, sizeof *out);
    if (!slots_table_ok(t))
        return;
    for (int i = 0; i < t->n; i++) {
        slot_status st = t->s[i].status;
        out->running += st == SLOT_RUNNING;
        out->reserved += st == SLOT_RESERVED;
        if (i >= 1) {
            out->plan_running += st == SLOT_RUNNING;
            out->free_plan += st == SLOT_IDLE;
        }
    }
    out->plan_limit = t->draining ? 0 : t->n - 1;
    out->apply_running = t->draining || t->s[0].status == SLOT_RUNNING;
    out->free_plan_and_apply = !t->draining && t->s[0].status == SLOT_IDLE;
    if (t->draining)
        out->free_plan = 0;
}

const char *slots_status_name(slot_status s)
{
    static const char *const names[] = { [SLOT_IDLE] = "idle", [SLOT_RUNNING] = "running",
                                         [SLOT_RESERVED] = "reserved" };
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "unknown";
}

static const char *const type_names[] = {
    [TASK_TYPE_NONE] = "", [TASK_PLAN] = "plan", [TASK_PLAN_AND_APPLY] = "plan_and_apply",
    [TASK_DRIFT_CHECK] = "drift_check",
};

const char *slots_type_name(task_type t)
{
    return (unsigned)t < sizeof type_names / sizeof type_names[0] ? type_names[t] : "";
}

const char *slots_action_name(task_action a) { return a == ACTION_APPLY ? "apply" : "plan"; }

int slots_type_parse(const char *s, task_type *out)
{
    if (!s)
        return -1;
    for (int t = TASK_PLAN; t < (int)(sizeof type_names / sizeof type_names[0]); t++) {
        if (strcmp(s, type_names[t]) == 0) {
            *out = (task_type)t;
            return 0;
        }
    }
    return -1;
}

task_action slots_action_parse(const char *s)
{
    return s && strcmp(s, "apply") == 0 ? ACTION_APPLY : ACTION_PLAN;
}

const char *slots_strerror(int code)
{
    static const char *const msgs[] = {
        [0] = "ok",
        [-SLOTS_E_DRAINING] = "the agent is draining",
        [-SLOTS_E_NO_SLOT] = "no idle slot for this task",
        [-SLOTS_E_RESERVED] = "slot 0 is reserved for an apply",
        [-SLOTS_E_DUPLICATE] = "the task is already running here",
        [-SLOTS_E_INVALID] = "invalid slot request",
        [-SLOTS_E_STATE] = "the slot is not in a state that allows this",
    };
    if (code > 0 || code <= -(int)(sizeof msgs / sizeof msgs[0]))
        return "unknown slot error";
    return msgs[-code];
}
