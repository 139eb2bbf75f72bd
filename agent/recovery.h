/* recovery.h — what the agent owes the plane after a restart (DESIGN §4.2, issue 7).
 *
 * Upstream keeps nothing on the pod, so a task that was running when its agent died stays `running` forever. Our
 * store remembers those tasks (agent_store.interrupted) and the reservation of slot 0; after a restart this module
 *   - removes the work directories nobody will use again ({data_dir}/workspaces/<ws>/<task> of tasks that hold
 *     no slot), keeping the reserved task's directory for its warm apply;
 *   - reports every interrupted task as failed, the way the upstream agent reports a failure (ref §3.11, E5):
 *     PUT …/tasks/{id}/status {"status":"failed","error_message":"agent restarted during execution",
 *     "completed_at":"<RFC 3339>"} in retrying mode, then a task_failed frame with the same message.
 *
 * A task counts as reported when the PUT is answered 2xx, 409 (it was cancelled meanwhile: the plane already has
 * a final status) or 404 (it no longer exists; no frame is sent for a task that does not exist), and the frame,
 * if any, was queued. Anything else keeps it owed: the agent calls recovery_report() again after each reconnect.
 * A PUT already accepted is not repeated when only the frame is missing. A call while requests are in flight
 * starts nothing new for those tasks, so reports are never duplicated.
 *
 * Ownership: the agent owns the reporter and what its config points to (store, token), which must outlive it;
 * base_url is copied. The reporter only reads the store: forgetting a reported task (store_forget_interrupted +
 * save) is the agent's job, in the reported callback. */
#ifndef IAC_AGENT_RECOVERY_H
#define IAC_AGENT_RECOVERY_H

#include <stdint.h>

#include "iac/httpc.h"
#include "iac/proto.h"
#include "iac/slots.h"
#include "store.h"

#define RECOVERY_MESSAGE "agent restarted during execution"

/* Removes {data_dir}/workspaces/<ws>/<task> entries whose task holds no slot in slots (after a restart only
 * slot 0's reservation does), and <ws> directories left empty. Symbolic links are removed as links, never
 * followed; engines/ and everything outside workspaces/ is left alone. Blocking (meant for start-up). Returns how
 * many entries were removed (0 when there is no workspaces/ directory), or -errno when workspaces/ cannot be
 * read. */
int recovery_clean_orphans(const char *data_dir, const slot_table *slots);

typedef struct recovery recovery;

typedef struct {
    httpc             *http;
    const char        *base_url; /* http[s]://endpoint:port (copied) */
    char *const       *token;    /* where the current pool token lives (read at each request) */
    const agent_store *store;    /* interrupted: the tasks to report */
    /* Sends a C&C frame; non-zero when it could not be queued (not connected). */
    int  (*send)(const proto_msg *m, void *arg);
    /* task_id is reported: forget it and persist. May run from inside recovery_report(); may call
     * recovery_free() (e.g. to exit once everything is reported). */
    void (*reported)(uint64_t task_id, void *arg);
    void *arg;
} recovery_config;

/* NULL on bad configuration (no client, base URL, token, store, send or reported; a base URL over 500 bytes) or
 * OOM. */
recovery *recovery_new(const recovery_config *cfg);
/* Reports every task of store->interrupted that is not already being reported. Returns how many tasks are still
 * owed after the call (in flight or waiting for the next call). */
int recovery_report(recovery *r);
/* Cancels requests in flight (no callbacks after it) and frees the reporter. NULL is fine; safe from inside the
 * reported callback. */
void recovery_free(recovery *r);

#endif
