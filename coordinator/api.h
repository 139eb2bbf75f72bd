/* api.h — iac-coordinator's read API over HTTP (DESIGN §5 "API"), served by every replica, leader or not.
 *
 *   GET /v1/pools            {"leader": bool, "identity": "…", "holder": "…", "pools": [<pool>, …]}
 *   GET /v1/pools/{id}       <pool>; 404 {"error": …} for an id no pool has
 *   GET /v1/explain?task_id=N  coordinator/explain's JSON; 400 for a missing or non-numeric task_id
 *   GET /metrics             Prometheus text (iac_pool_*, iac_coordinator_*; docs in the page's HELP lines)
 *   GET /healthz             200 while the loop turns (the handler runs on it)
 *   GET /readyz              200 once every pool has completed an observation (and main's own condition, if
 *                            any, holds); 503 {"ready": false, "reason": "…"} before
 * Any other method on these paths → 405, any other path → 404, both as {"error": "…"}.
 *
 * <pool> = {"id", "namespace", "deployment", "min_replicas", "max_replicas", "slots_per_pod",
 *   "headroom": {"slot0", "plan"}, "observed", "observed_at", "leader", "deployment_found", "deployment_error",
 *   "replicas", "ready_replicas", "desired", "starting_pods",
 *   "slots": {"slot0": {"free", "busy", "reserved"}, "plan": {…}},
 *   "decision": {"reason", "text", "free_slot0", "need_slot0", "free_plan", "need_plan", "coming_pods"} | null,
 *   "demand": {"ok", "error", "plan_and_apply", "plan", "drift_check", "waiting": [{"task_id", "task_type",
 *   "since"}]}, "config_error": {"reason", "message", "since"} | null, "cycle_error": "…" | null,
 *   "last_action": {"text", "at"} | null, "counters": {…},
 *   "pods": [{"name", "ip", "phase", "ready", "terminating", "created", "age", "deletion_cost", "agent_state",
 *   "agent_error", "agent_id", "connected", "slots": [{"slot_id", "status", "task_id", "task_type", "action",
 *   "since"}]}]}
 * Times are epoch seconds ("since", "at", "created", "observed_at") or seconds ("age"); absent values are null.
 * "free" slots are idle slots of pods that take work (Ready, agent answering, not draining or terminating).
 *
 * Nothing here is kept between requests: every answer is built from the pools' states at that moment.
 *
 * Ownership: the api copies the source struct and the identity; everything the callbacks return is borrowed
 * for the duration of one request. */
#ifndef IAC_COORD_API_H
#define IAC_COORD_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "pool.h"

typedef struct api api;

/* Where the API reads from; main fills it. Only npools and pool are required. */
typedef struct {
    int npools;
    /* Pool i's state (0 ≤ i < npools), read at each request; NULL reads as a pool not yet observed. With an
     * array of pool *: return pool_get_state(pools[i]). */
    const pool_state *(*pool)(void *arg, int i);
    /* Whether this replica leads now; NULL → true (no leader election: this replica acts). */
    bool (*is_leader)(void *arg);
    /* The Lease holder's identity as last read; NULL → identity when leading, else "". */
    const char *(*holder)(void *arg);
    /* main's own readiness condition besides the pools' first observations; NULL → none. false with why
     * filled → /readyz answers 503 with it. */
    bool (*ready)(void *arg, char *why, size_t whylen);
    /* The wall clock in epoch ms (ages, "for 3 min"); NULL → CLOCK_REALTIME. Tests fix it. */
    int64_t (*now_ms)(void *arg);
    const char *identity; /* this replica (copied), NULL → "" */
    void       *arg;      /* passed to every callback */
} api_source;

/* Listens on host:port (port 0 → an ephemeral port, see api_port). NULL with a message in err when the source is
 * unusable (no pool callback, npools < 0) or the address cannot be bound. */
api *api_start(uv_loop_t *loop, const char *host, int port, const api_source *src, char *err, size_t errlen);
/* The bound port. */
int api_port(const api *a);
/* Stops listening and frees the api; handles close asynchronously, so the loop must run once more. */
void api_free(api *a);

#endif
