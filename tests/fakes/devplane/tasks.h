/* tasks.h — the devplane's workspaces and tasks: what upstream keeps in its workspaces, workspace_tasks,
 * workspace_state_versions, task_logs and workspace_task_resource_changes tables, with the rules that act on them
 * alone — the queue rule that picks a workspace's next task (ref §6.4) and the partial status update (ref E5).
 *
 * Bookkeeping only: no sockets, no timers. A workspace is created from an admin JSON document and shaped at once
 * into the rows the task bundle carries (ref E3: resources with their current version, variables, outputs), so
 * the agent API only assembles them. A task's plan_output and apply_output are anonymous files in the data
 * directory (blob.h). Task ids are 1, 2, … (unsigned 32-bit on the HTTP paths, ref §2.2); workspace ids "ws-1", "ws-2", …
 * unless the admin document names one. Nothing is ever deleted before tasks_free(). Structured columns (JSON in
 * upstream's tables) are cJSON trees owned by their row. */
#ifndef DEVPLANE_TASKS_H
#define DEVPLANE_TASKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "blob.h"
#include "registry.h"

#define TASKS_WS_ID_MAX 65       /* workspace id and NUL: 1-64 of [A-Za-z0-9._-] */
#define TASKS_WORD_MAX 64        /* status and stage strings and NUL */
#define TASKS_MAX 100000
#define TASKS_MAX_WORKSPACES 10000
#define TASKS_EVENTS_MAX 256     /* kept per task; older ones are dropped and counted */
#define TASKS_CHUNKS_MAX 1000    /* log chunk rows kept per task (all are counted) */
#define TASKS_LIVE_LINES 1000    /* the server-side ring of live log lines (ref §3.6, §3.9) */

typedef enum { TASKS_PLAN = 0, TASKS_PLAN_AND_APPLY, TASKS_DRIFT_CHECK, TASKS_APPLY } tasks_type;

typedef struct {
    uint64_t version;
    cJSON   *content;
    char    *checksum;
    int64_t  size;
    uint32_t task_id; /* 0: created by the admin */
    int64_t  created_ns;
} dp_state_version;

typedef struct {
    char   id[TASKS_WS_ID_MAX];
    char  *name;
    char  *terraform_version;
    char  *execution_mode; /* "local" | "agent" | "k8s": only agent and k8s tasks are dispatched */
    char   pool_id[REG_POOL_MAX + 1];
    cJSON *tf_code, *provider_config;      /* objects */
    cJSON *resources, *variables, *outputs; /* arrays, rows shaped as in the bundle */
    bool   is_locked;
    char  *locked_by, *lock_reason;        /* NULL: the column is NULL */
    int64_t locked_at_ns;
    char  *terraform_lock_hcl;             /* "" when none */
    char  *last_init_hash, *last_init_terraform_version;
    dp_state_version *states;              /* oldest first */
    size_t  nstates, capstates;
    int64_t created_ns;
} dp_workspace;

typedef struct {
    uint32_t      id;
    dp_workspace *ws;
    tasks_type    type;
    char          status[TASKS_WORD_MAX];
    char          stage[TASKS_WORD_MAX];
    char          agent_id[REG_ID_MAX]; /* "" = NULL */
    char         *error_message;        /* NULL = "" */
    char         *plan_hash;            /* NULL = "" */
    char         *description;
    int64_t       changes_add, changes_change, changes_destroy, duration;
    uint64_t      plan_task_id;         /* 0 = NULL */
    cJSON        *context;              /* object */
    int64_t       created_ns, started_ns, completed_ns;
    blob          plan_output, apply_output;
    uint8_t      *plan_data;            /* NULL until uploaded */
    size_t        plan_data_len;
    cJSON        *plan_json;            /* NULL until uploaded */
    cJSON        *resource_changes;     /* array of rows */
    cJSON        *chunks;               /* array: the last TASKS_CHUNKS_MAX task_logs rows, without content */
    uint64_t      nchunks;
    cJSON        *events;               /* array: dispatch, rejection, status and C&C history */
    uint64_t      events_dropped;
    char        **live;                 /* ring of the last TASKS_LIVE_LINES live log lines */
    size_t        live_head, live_n;
    uint64_t      live_total;
    /* the snapshot stored at creation (ref §6.1); NULL / 0 = a NULL column */
    cJSON        *snap_resource_versions; /* object: resource_id → {resource_db_id, version_id, version} */
    cJSON        *snap_variables;         /* array of {workspace_id, variable_id, version, variable_type} */
    cJSON        *snap_provider_config;   /* object */
    int64_t       snap_created_ns;
    /* apply confirmation (ref §6.5); apply_confirmed_by NULL = not confirmed */
    char         *apply_confirmed_by;
    int64_t       apply_confirmed_ns;
    char         *apply_description;
    cJSON        *stages;               /* array: every (status, stage) the task went through, oldest first */
    uint64_t      stages_dropped;
    /* dispatch's notes (dispatch.c) */
    unsigned      retry_count;
    int64_t       retry_at_ns;          /* not dispatched before this */
    int64_t       dispatched_ns;
    char          rejected_by[REG_ID_MAX];
    uint64_t      rejected_news;
} dp_task;

typedef struct tasks tasks;

/* data_dir holds the output files (it must exist and outlive the store); pool_id is the pool of workspaces that do not name one. NULL on
 * OOM. */
tasks *tasks_new(const char *data_dir, const char *pool_id);
/* Frees everything; the output files, unnamed, go with their descriptors. */
void tasks_free(tasks *s);

/* "plan" etc. → 0 and *out; -1 for anything else. */
int tasks_type_parse(const char *s, tasks_type *out);
const char *tasks_type_name(tasks_type t);
/* success, applied, planned_and_finished, failed, cancelled (ref §6.2). */
bool tasks_status_terminal(const char *status);

/* ---- workspaces ---- */

/* Creates a workspace from the admin document (see README.md). 0 and *out; -EINVAL with the reason in err; -EEXIST
 * (the id is taken); -ENOSPC; -ENOMEM. */
int tasks_workspace_create(tasks *s, const cJSON *spec, int64_t now_ns, dp_workspace **out, char *err,
                           size_t errlen);
dp_workspace *tasks_workspace_find(tasks *s, const char *id);
size_t tasks_workspace_count(const tasks *s);
/* i-th workspace, oldest first. */
dp_workspace *tasks_workspace_at(tasks *s, size_t i);

/* E12 / E13. lock: reason NULL or "" leaves the old reason (upstream writes it only when non-empty). 0 or -ENOMEM. */
int tasks_workspace_lock(dp_workspace *ws, const char *user_id, const char *reason, int64_t now_ns);
void tasks_workspace_unlock(dp_workspace *ws);
/* Replaces a string column (NULL stays NULL for the nullable ones). 0 or -ENOMEM. */
int tasks_set_string(char **column, const char *value);

/* E7: a new state version max+1 (content consumed, also on error). 0 and *version, or -ENOMEM. */
int tasks_state_add(dp_workspace *ws, cJSON *content, const char *checksum, int64_t size, uint32_t task_id,
                    int64_t now_ns, uint64_t *version);
/* The newest state version, NULL when none; the highest version number, 0 when none (E14). */
const dp_state_version *tasks_state_latest(const dp_workspace *ws);
uint64_t tasks_state_max_version(const dp_workspace *ws);

/* ---- tasks ---- */

/* A pending task (status and stage "pending", ref §6.1) with context (consumed; NULL → {}). 0 and *out, -ENOSPC or
 * -ENOMEM. */
int tasks_task_create(tasks *s, dp_workspace *ws, tasks_type type, cJSON *context, const char *description,
                      int64_t now_ns, dp_task **out);
dp_task *tasks_task_find(tasks *s, uint64_t id);
size_t tasks_task_count(const tasks *s);
/* i-th task, oldest first (= by id). */
dp_task *tasks_task_at(tasks *s, size_t i);

/* ref §6.4 GetNextExecutableTask: the task the workspace runs next, or NULL. */
dp_task *tasks_next_executable(tasks *s, const dp_workspace *ws);
/* The queue rule of tasks_next_executable for one pending task: is it held back by its workspace — locked, or
 * (plan_and_apply) behind a lower-id plan_and_apply that is pending, running or apply_pending? Plans and drift
 * checks are held back only by the lock; a bare apply task always is (the queue never dispatches one). A task
 * not held back runs as soon as an agent has room for it (one per workspace and pass). */
bool tasks_held_back(tasks *s, const dp_task *t);

/* Appends an event {"at", "event": kind} to the task's history and returns it for the caller to add fields to
 * (NULL on OOM). */
cJSON *tasks_event(dp_task *t, int64_t now_ns, const char *kind);

/* The request of E5 as decoded: presence and values. Strings are NULL when absent. */
typedef struct {
    const char  *status; /* required, non-empty */
    const char  *stage, *error_message, *plan_hash;
    const char  *plan_output, *apply_output;
    size_t       plan_output_len, apply_output_len;
    int64_t      changes_add, changes_change, changes_destroy, duration;
    const cJSON *context;
    bool         has_plan_task_id;
    uint64_t     plan_task_id;
    bool         has_completed_at;
    int64_t      completed_at_ns;
} tasks_status_update;

/* E5's partial update (ref §2.4). 0; -ECANCELED when the stored status is cancelled (nothing written); -ERANGE when
 * status or stage is longer than TASKS_WORD_MAX - 1; -errno of the output files; -ENOMEM. */
int tasks_update_status(dp_task *t, const tasks_status_update *u, int64_t now_ns);

/* E6: records a task_logs row and appends content to plan_output (phase "plan") or apply_output ("apply"). 0 or
 * -errno. */
int tasks_log_chunk(dp_task *t, const char *phase, const char *content, size_t len, int64_t offset,
                    int64_t now_ns);

/* A live log line (log_stream): kept in the ring. */
void tasks_live_line(dp_task *t, const char *line);
/* ref §3.6: the ring replaces plan_output (types plan and plan_and_apply) or apply_output (apply); drift_check
 * keeps both, as upstream. */
int tasks_live_to_output(dp_task *t);

/* Sets status and stage (short literals of the plane; stage NULL keeps it) and records the change in the stage
 * history, by whom ("dispatch", "cancel", "disconnect", …). */
void tasks_set_status(dp_task *t, const char *status, const char *stage, int64_t now_ns, const char *by);

/* ---- snapshot (ref §6.1) and confirmation (ref §6.5) ---- */

/* Stores the snapshot of t's workspace as it is now: active resources' versions, references to the variables,
 * the provider configuration, the time. Called by tasks_task_create(); a failure leaves the columns NULL (upstream
 * only logs it). 0 or -ENOMEM. */
int tasks_snapshot_take(dp_task *t, int64_t now_ns);

/* Upstream's snapshot validation, with the checks against the database that the agent skips: 0, or -1 with the
 * reason in err ("no snapshot data (snapshot_created_at is nil)", …). */
int tasks_snapshot_validate(const dp_task *t, char *err, size_t errlen);

/* Test knob: damages the snapshot. how: "created_at" (NULL time), "resource_version" (the first resource entry
 * names a version that does not exist), "resource_entry" (its version becomes a string), "variables" (NULL
 * variables). 0, or -EINVAL with the reason in err. */
int tasks_snapshot_corrupt(dp_task *t, const char *how, char *err, size_t errlen);

/* ref E4's snapshot_resources: for each resource_versions entry the resource and that version's code, {"id",
 * "workspace_id", "resource_id", "is_active", "current_version": {"id", "version", "tf_code"}}; missing ones
 * skipped. NULL when there are none (a Go nil slice) or on OOM. */
cJSON *tasks_snapshot_resources(const dp_task *t);

/* ref E4's snapshot_variables: each reference expanded to {"workspace_id", "variable_id", "version",
 * "variable_type", "key", "value", "sensitive", "description", "value_format"}; references that no longer resolve
 * are skipped. An empty array when there are none; NULL on OOM. */
cJSON *tasks_snapshot_variables(const dp_task *t);

/* ref §6.5 step 3: records who confirmed (user), when, the description; plan_task_id = own id; stage
 * apply_pending. The caller has checked type, status and snapshot. 0 or -ENOMEM. */
int tasks_confirm(dp_task *t, const char *user, const char *description, int64_t now_ns);

#endif
