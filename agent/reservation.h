/* reservation.h — the guard that ends slot 0's reservation when nobody will use it (DESIGN §4.2).
 *
 * Between a plan_and_apply's plan and its apply, slot 0 stays reserved for the task and its work directory is
 * kept. Two things can leave that reservation waiting for an apply that never comes here, and this guard watches
 * for both:
 *   - the TTL passes (now − since_ms ≥ ttl_ms): the guard wakes exactly at expiry, not only at the periodic checks
 *     (its timer is always set to min(next check, expiry));
 *   - the task's apply went elsewhere: every check_interval_ms (and on reservation_check_now(), which the agent
 *     calls after each reconnect) it reads GET {base}/api/v1/agents/tasks/{T}/plan-task (E4 — not E3, which mints
 *     remote-state tokens on every call), plain mode, and compares task.agent_id with the pod's own ids, current
 *     and past (store_is_own_id: upstream issues a new id at each registration).
 * Verdicts: 2xx with an agent_id that is not ours → release; 404 → release (the task is gone); anything else
 * (transport error, 5xx, 401, 403, a body that does not parse, no agent_id) → keep and ask again at the next
 * check, with a warning logged once per run of failures.
 *
 * The guard never changes the slot table itself: it calls cfg.release(T, why), and the agent ends the reservation
 * (slots_release, removes the work directory, persists, heartbeats). An answer that arrives after the reservation
 * it asked about has ended (or changed: another task, another since_ms) is ignored.
 *
 * Ownership: the agent owns the guard and everything the config points to (store, slot table, token), which must
 * outlive it; base_url is copied. reservation_free() cancels a request in flight; no callback runs after it. Its
 * timer closes asynchronously, so the loop must run once more before it is closed. */
#ifndef IAC_AGENT_RESERVATION_H
#define IAC_AGENT_RESERVATION_H

#include <stdint.h>

#include <uv.h>

#include "iac/httpc.h"
#include "iac/slots.h"
#include "store.h"

#define RESERVATION_CHECK_INTERVAL_MS 60000

typedef struct reservation reservation;

typedef struct {
    uv_loop_t         *loop;
    httpc             *http;
    const char        *base_url;          /* http[s]://endpoint:port (copied) */
    char *const       *token;             /* where the current pool token lives (read at each request) */
    const agent_store *store;             /* own ids, current and past */
    const slot_table  *slots;             /* slot 0 is the one watched; since_ms is Unix ms */
    int64_t            ttl_ms;            /* ≤ 0: no TTL */
    int64_t            check_interval_ms; /* 0 → RESERVATION_CHECK_INTERVAL_MS */
    /* End the reservation of task_id (why is a sentence for logs); called from the loop, never from inside
     * reservation_* calls. It may call reservation_free(). */
    void (*release)(uint64_t task_id, const char *why, void *arg);
    void *arg;
} reservation_config;

/* Starts watching. NULL on bad configuration (no loop, client, base URL, token, store, slots or release; a base
 * URL over 500 bytes) or OOM. */
reservation *reservation_new(const reservation_config *cfg);
/* Checks at once: TTL, then the ownership request (unless one is in flight; then its answer is followed by
 * another check when it was not conclusive). Call after each reconnect. The verdict arrives on the loop. */
void reservation_check_now(reservation *w);
/* The slot table changed (a reservation started or ended): re-arms the timer so that a new reservation's TTL is
 * honoured at its exact expiry even when it is shorter than the check interval. No request is made. Optional:
 * without it a new reservation is noticed at the next periodic check. */
void reservation_slots_changed(reservation *w);
/* Stops watching and frees the guard (asynchronously; NULL is fine). No callback after it. */
void reservation_free(reservation *w);

#endif
