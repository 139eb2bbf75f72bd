/* taskplane.h — task-level helpers for integration scenarios: workspaces and tasks on iac-devplane, agents that run
 * fake-terraform, and waits on what the plane and the agents report. Built on harness.h; every helper asserts
 * (cmocka) instead of returning errors, because a scenario cannot continue without its setup. */
#ifndef IAC_TEST_TASKPLANE_H
#define IAC_TEST_TASKPLANE_H

#include "harness.h"

/* Two null_resources and a terraform variable ("%s" is the name): a plan has 2 to add. */
extern const char *const TP_WORKSPACE_TWO;
/* No resources: nothing to change. */
extern const char *const TP_WORKSPACE_EMPTY;

/* harness_agent_env plus what task scenarios need: agent name, its own data dir under the test dir, fake-terraform
 * as the engine (IAC_ENGINE_PATH), and short retry waits. */
void tp_agent_env(harness *h, harness_agent *ag, const harness_devplane *dp, harness_env *env, const char *name);
/* Starts an agent with env and waits for it to heartbeat at the plane; id receives its agent id. */
void tp_agent_start(harness *h, harness_agent *ag, const harness_devplane *dp, const harness_env *env, char *id,
                    size_t idlen);

/* An admin call that must answer `want`; returns the parsed body (caller frees). */
cJSON *tp_admin_json(const harness_devplane *dp, const char *method, const char *path, const char *body, long want);
void tp_create_workspace(const harness_devplane *dp, const char *tmpl, const char *name, char *id, size_t idlen);
long tp_queue_task(const harness_devplane *dp, const char *ws, const char *type);
cJSON *tp_task_doc(const harness_devplane *dp, long id);
/* Waits for the task's status; its document (caller frees), or a test failure that prints it. */
cJSON *tp_wait_task(const harness_devplane *dp, long id, const char *status, int timeout_ms);
void tp_assert_task_counts(const cJSON *doc, int add, int change, int destroy);

/* Slot i of the agent's own /v1/status ("?" when unreadable); *task (optional) its task id. */
const char *tp_slot_status(const harness_agent *ag, int i, long *task);
/* The slot reaches the status within 3 s (a task frees its slot after its last report). */
void tp_assert_slot_becomes(const harness_agent *ag, int slot, const char *status);

/* Predicate: the plane's last heartbeat of agent_id shows slot 0 reserved for task, apply_running false. */
typedef struct {
    const harness_devplane *dp;
    const char             *agent_id;
    long                    task;
} tp_reserved_wait;
bool tp_heartbeat_shows_reservation(void *arg);

/* Whether fake-terraform's invocation log (FAKE_TF_STATE_DIR) has a `cmd` run whose record contains `text`. */
bool tp_invoked_with(const char *state_dir, const char *cmd, const char *text);

#endif
