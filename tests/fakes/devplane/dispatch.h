/* dispatch.h — the devplane's task dispatcher: upstream's TryExecuteNextTask and pushTaskToAgent for workspaces in
 * agent (or k8s) mode (ref §6.4, §6.7), the server side of the agent's C&C messages (ref §3.3, §3.6, §3.9, §3.11)
 * and the pull mode of DESIGN §6.
 *
 * What an agent can take is read from its last heartbeat: the DESIGN §6 `slots` when present (an idle slot ≥ 1 for
 * plan and drift_check, slot 0 idle for plan_and_apply), else ref §4.7 (plan_running < plan_limit; apply_running
 * false). A confirmed apply_pending task (ref §6.5) goes preferably to the agent whose slot 0 is reserved for it,
 * else to one whose slot 0 is idle; never an unconfirmed one (ref §8 entry 6). In push mode the queue of every workspace is re-checked every second and soon after every event that can
 * change the answer (a new task, a status update, a heartbeat, task_completed/failed/rejected, task_request); in
 * pull mode run_task goes only to an agent that asked with task_request, within the free counts it announced.
 *
 * The dispatcher owns two timers on the loop and nothing else; the store, registry and C&C server are the
 * caller's and must outlive it. Every call is made on the loop's thread. */
#ifndef DEVPLANE_DISPATCH_H
#define DEVPLANE_DISPATCH_H

#include <stdint.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "cc.h"
#include "iac/proto.h"
#include "registry.h"
#include "tasks.h"

typedef enum { DISPATCH_PUSH = 0, DISPATCH_PULL } dispatch_mode;

/* How a target is chosen in push mode. Slot-aware reads the DESIGN §6 slots of the heartbeat (an agent without
 * them is judged by ref §4.7); upstream ignores them and applies ref §4.7 alone — plan_running < plan_limit for
 * plans, apply_running false for plan_and_apply and for confirmed applies — so that tests can make the plane push
 * what a real upstream plane would push (a plan_and_apply to a pod whose slot 0 is reserved, the apply of A's
 * reserved task to B). */
typedef enum { DISPATCH_SLOT_AWARE = 0, DISPATCH_UPSTREAM } dispatch_choice;

typedef struct {
    dispatch_mode   mode;
    dispatch_choice plan_choice;  /* pending tasks (the plan phase) */
    dispatch_choice apply_choice; /* confirmed apply_pending tasks */
} dispatch_opts;

typedef struct dispatch dispatch;

/* Starts the one-second queue check. NULL on OOM. */
dispatch *dispatch_new(uv_loop_t *loop, tasks *store, registry *reg, cc_server *cc, const dispatch_opts *opts);
/* Re-checks the queue on the next loop turn (calls within one turn are coalesced). */
void dispatch_kick(dispatch *d);

/* The C&C hooks (cc.h): a decoded frame from agent_id, and the end of agent_id's connection. */
void dispatch_frame(void *arg, const char *agent_id, const proto_msg *m);
void dispatch_disconnected(void *arg, const char *agent_id);

/* User cancel (ref §6.8 steps 3, 5, 6, 7) of a task that is not success, applied, failed or cancelled: sends
 * cancel_task to a running task's agent (and, DESIGN §6, release_reservation to every connected agent whose last
 * heartbeat shows slot 0 reserved for an apply_pending one, and to its plan's agent), marks the task cancelled,
 * unlocks a plan_and_apply's workspace lock and re-checks the queue. */
void dispatch_cancel(dispatch *d, dp_task *t);

/* The running task t was handed back by its agent (E5 pending, or apply_pending from stage applying): it is not
 * offered to that agent again until the agent sends a new heartbeat or task_request, as after task_rejected. */
void dispatch_returned(dispatch *d, dp_task *t);

/* What the dispatcher knows of each connected agent, for the admin API: {"mode", "plan_dispatch",
 * "apply_dispatch", "agents": [{"agent_id", "plan_running", "plan_limit", "apply_running", "draining", "slots":
 * [{"slot_id", "status", "idle", "task_id"}] | null, "current_tasks", "asked", "free": {"plan_and_apply", "plan"},
 * "reserved"}]}. NULL on OOM. */
cJSON *dispatch_view(dispatch *d);

/* The tasks waiting for a slot (DESIGN §5 step 3), for the coordinator: {"pools": {"<pool>": {"plan_and_apply": n,
 * "plan": m, "drift_check": k, "tasks": [{"task_id", "task_type", "waiting_since": <epoch s of creation>}]}}},
 * oldest first, the devplane's pool only (always present). A task waits when the queue would dispatch it as soon
 * as an agent had room: pending, not held back by the queue rule (tasks_held_back), in a workspace of this pool in
 * agent or k8s mode; a confirmed apply_pending task not yet dispatched waits for a slot 0 (plan_and_apply). NULL on
 * OOM. */
cJSON *dispatch_demand(dispatch *d);

/* Stops the timers; the dispatcher frees itself once they are closed (keep running the loop). */
void dispatch_close(dispatch *d);

#endif
