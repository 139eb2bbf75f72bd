/* slots.h — the pod's slot table (DESIGN §4.2).
 *
 * Pure logic, no I/O: the agent asks where a task may run and tells the table what happened. Slot 0 runs
 * plan_and_apply and stays reserved between its plan and its apply; slots 1..n-1 run plan and drift_check. The
 * table is owned by the caller (embed it or allocate it); nothing here allocates. Times are milliseconds of
 * whatever clock the caller uses (the agent uses Unix time so that `since` means something on the wire). */
#ifndef IAC_SLOTS_H
#define IAC_SLOTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SLOTS_MIN 2
#define SLOTS_MAX 64

typedef enum { TASK_TYPE_NONE = 0, TASK_PLAN, TASK_PLAN_AND_APPLY, TASK_DRIFT_CHECK } task_type;
typedef enum { ACTION_PLAN = 0, ACTION_APPLY } task_action;
typedef enum { SLOT_IDLE = 0, SLOT_RUNNING, SLOT_RESERVED } slot_status;

typedef struct {
    slot_status status;
    uint64_t    task_id;  /* 0 when idle */
    task_type   type;     /* TASK_TYPE_NONE when idle */
    task_action action;   /* meaningful while running */
    int64_t     since_ms; /* when the status last changed */
} slot;

typedef struct {
    slot s[SLOTS_MAX];
    int  n;
    bool draining; /* no new placement while set */
} slot_table;

/* Why a placement was refused. Negative so that slots_place() can return a slot index or a reason. */
enum {
    SLOTS_E_DRAINING = -1,  /* the agent is draining: nothing new starts */
    SLOTS_E_NO_SLOT = -2,   /* no idle slot of the kind this task needs */
    SLOTS_E_RESERVED = -3,  /* slot 0 is reserved for another task */
    SLOTS_E_DUPLICATE = -4, /* this task is already running here (ref §8 entry 33): ignore, do not reject */
    SLOTS_E_INVALID = -5,   /* bad arguments: unknown type, apply for a type that has none, task id 0, bad slot */
    SLOTS_E_STATE = -6,     /* the transition does not fit the slot's current state */
};

void slots_init(slot_table *t, int n, int64_t now_ms);

/* Where may this run start? Returns the slot index, or a SLOTS_E_* reason. Rules:
 *   plan_and_apply + plan  → slot 0 if idle;
 *   plan_and_apply + apply → slot 0 if reserved for this task, or idle (cold apply); else SLOTS_E_RESERVED or
 *                            SLOTS_E_NO_SLOT;
 *   plan / drift_check + plan → the lowest idle slot ≥ 1;
 *   a task already running in any slot → SLOTS_E_DUPLICATE (checked first, even while draining);
 *   draining → SLOTS_E_DRAINING for everything else. */
int slots_place(const slot_table *t, task_type type, task_action action, uint64_t task_id);

/* The transitions below return 0, SLOTS_E_INVALID for bad arguments (task id 0, slot out of range or of the wrong
 * kind for the type), or SLOTS_E_STATE when the slot's current state does not allow the move. */
/* Marks slot i running task_id (slot idle, or slot 0 reserved for this same task when action is apply). */
int slots_start(slot_table *t, int i, uint64_t task_id, task_type type, task_action action, int64_t now_ms);
/* The plan phase of slot 0's plan_and_apply ended with changes: running → reserved for the same task. */
int slots_reserve(slot_table *t, uint64_t task_id, int64_t now_ms);
/* A run ended (any outcome, no reservation): running → idle. */
int slots_finish(slot_table *t, uint64_t task_id, int64_t now_ms);
/* A reservation ended without an apply here (released, cancelled, TTL, ownership moved, operator): reserved →
 * idle. SLOTS_E_STATE when task_id holds no reservation. */
int slots_release(slot_table *t, uint64_t task_id, int64_t now_ms);

/* The slot holding task_id (running or reserved), or -1. */
int slots_find(const slot_table *t, uint64_t task_id);

/* Upstream heartbeat fields (ref §3.4) computed as DESIGN §4.2 says, plus free capacity for task_request. */
typedef struct {
    int  plan_running;        /* running slots ≥ 1 */
    int  plan_limit;          /* n - 1, or 0 while draining */
    bool apply_running;       /* slot 0 running, or draining */
    int  free_plan_and_apply; /* 1 when slot 0 is idle and not draining */
    int  free_plan;           /* idle slots ≥ 1, 0 while draining */
    int  running;             /* all running slots */
    int  reserved;            /* reserved slots */
} slots_summary;

void slots_summarize(const slot_table *t, slots_summary *out);

const char *slots_status_name(slot_status s);  /* "idle" | "running" | "reserved" */
const char *slots_type_name(task_type t);      /* "plan" | "plan_and_apply" | "drift_check" | "" */
const char *slots_action_name(task_action a);  /* "plan" | "apply" */
/* "plan", "plan_and_apply", "drift_check" → 0 and *out; anything else (including "apply") → -1. */
int slots_type_parse(const char *s, task_type *out);
/* "apply" → ACTION_APPLY; anything else → ACTION_PLAN (ref §3.3). */
task_action slots_action_parse(const char *s);
/* "no idle slot for plan" … one short phrase per SLOTS_E_* for task_rejected reasons and logs. */
const char *slots_strerror(int code);

#endif
