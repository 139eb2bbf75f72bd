/* executor.h — runs tasks in slots: the plan pipeline of ref §7.4 as a chain of asynchronous steps.
 *
 * The agent hands every run_task to the executor. A task is placed by the slot rules (DESIGN §4.2: the type comes
 * from run_task.task_type when the plane sends it, else from the bundle — fetch first, place second), then walks
 * its steps: fetch bundle → engine → render → init (3 attempts) → plan → show -json → upload plan → resource
 * changes → decide (lock + reserve slot 0 for a plan_and_apply with changes) → status → log → done. Each step starts
 * one asynchronous operation and its completion names the next; a failure anywhere takes the failure path of ref
 * §7.7 (status failed with the extracted error message, full log uploaded, task_failed). A task that cannot be
 * placed is rejected: task_rejected plus PUT …/status back to pending, so any plane re-dispatches it.
 *
 * The log of a task never sits in memory: lines go to the spill file in the work directory and uploads stream it.
 *
 * Ownership: the agent owns the executor and the slot table it points to; the executor owns its tasks and tells
 * the agent about every slot change (to persist and heartbeat) and every finished task. */
#ifndef IAC_AGENT_EXECUTOR_H
#define IAC_AGENT_EXECUTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "iac/httpc.h"
#include "iac/proto.h"
#include "iac/slots.h"
#include "iac/strbuf.h"

typedef struct executor executor;

enum { EXEC_SUCCESS = 0, EXEC_FAILED, EXEC_CANCELLED, EXEC_REJECTED, EXEC__OUTCOMES };

typedef struct {
    uv_loop_t   *loop;
    httpc       *http;
    const char  *base_url;         /* http[s]://endpoint:port */
    char *const *token;            /* the agent's current pool token (it may be replaced after a 401) */
    const char  *data_dir;
    const char  *engine_path;      /* IAC_ENGINE_PATH or NULL */
    const char  *plugin_cache_dir; /* TF_PLUGIN_CACHE_DIR or NULL */
    char *const *environ;          /* the agent's environment, the base of every child's */
    int64_t      init_retry_wait_ms;
    int64_t      state_retry_wait_ms; /* first wait between state upload attempts; then 2×, 3×, 4× (ref §7.5) */
    int64_t      task_timeout_ms;
    int64_t      cancel_grace_ms;
    slot_table  *slots;
    /* Sends a C&C frame; non-zero when it could not be queued. */
    int  (*send)(const proto_msg *m, void *arg);
    /* Optional probe: whether send would queue a live log frame (log_stream) now. When it says no, the frame is
     * counted as dropped without being built — per line of output, when terraform floods the bounded queue. It must
     * not say no when send would take the frame (e.g. the C&C socket is open and the live share of its queue has
     * room). NULL: every frame is built and offered to send. */
    bool (*live_ready)(void *arg);
    /* The slot table changed (persist it, heartbeat soon). A slot a task takes is announced once the task's first
     * command is spawned, or when it ends before that, rather than when it is taken (executor.c, exec_take). */
    void (*slots_changed)(void *arg);
    /* A task ended with an EXEC_* outcome (the slot is already updated). */
    void (*finished)(uint64_t task_id, int outcome, void *arg);
    void *arg;
} executor_config;

typedef struct {
    uint64_t tasks[4][EXEC__OUTCOMES]; /* by task_type (index = task_type) and outcome */
    uint64_t log_lines;
    uint64_t live_frames_dropped;
    uint64_t stage_count[8];           /* per executor stage (see executor_stage_name) */
    double   stage_seconds[8];
    uint64_t stage_hist[8][8];         /* per stage, buckets of executor_stage_bounds */
} executor_counters;

executor *executor_new(const executor_config *cfg);
/* Starts a run_task. Returns 0 when the executor took it (it may still be rejected after the bundle fetch), 1 when
 * it is a duplicate of a task already here (ignored), or a SLOTS_E_* reason when it cannot be placed (the caller
 * rejects it with executor_reject). */
int executor_run(executor *x, uint64_t task_id, const char *workspace_id, task_action action, const char *type_name);
/* Refuses a task: task_rejected to the plane, and PUT …/status back to pending (apply_pending for an apply) so that
 * any plane dispatches it again (DESIGN §4.2). */
void executor_reject(executor *x, uint64_t task_id, task_action action, const char *reason);
/* Cancels a task (cancel_task): SIGINT to terraform's process group, SIGKILL after the grace. false if unknown. */
bool executor_cancel(executor *x, uint64_t task_id, const char *why);
/* The agent is stopping: every task ends at once — terraform gets SIGINT (SIGKILL after the cancel grace, or at
 * once with now) — and takes the failure path with `why` (a static string), so every outcome is still reported. */
void executor_interrupt_all(executor *x, const char *why, bool now);
/* Tasks in progress (fetching or running). */
size_t executor_active(const executor *x);
/* Removes a work directory no task uses any more (a released reservation's) as a finished task's is: out of its
 * path at once, removed off the loop (workdir.h, workdir_discard). x may be NULL (the agent is stopping): removed
 * here and now. A failure is logged. */
void executor_discard_workdir(executor *x, const char *dir);
const executor_counters *executor_stats(const executor *x);
/* Stage names and histogram bounds for the metrics page. */
const char *executor_stage_name(int stage);
extern const double executor_stage_bounds[7];
/* Interrupts everything and frees the executor; no callbacks after it. */
void executor_free(executor *x);

#endif
