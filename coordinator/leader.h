/* leader.h — leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it.
 *
 * Several coordinator replicas may run; only the holder of the Lease acts on the cluster, every replica serves
 * reads. The rules (client-go's, with its defaults 15 s / 10 s / 2 s):
 *   - every retry_period a replica reads the Lease. A Lease that does not exist is created with us as holder
 *     (POST; a 409 means someone else won the race). A Lease held by another identity whose renewTime is older
 *     than leaseDurationSeconds (measured on OUR clock from when we last saw its renewTime or holder change, never
 *     by comparing clocks) is taken over (PUT with its resourceVersion; 409 = lost the race), leaseTransitions + 1.
 *   - the holder renews (PUT renewTime with the resourceVersion it read) every retry_period; when no renewal has
 *     succeeded for renew_deadline it stops acting at once (on_change(false)) and competes again like anybody.
 *   - leader_release() while leading releases the Lease (holderIdentity cleared, leaseDurationSeconds 1) so that a
 *     clean shutdown hands over at once; a killed leader is replaced after lease_duration.
 * Times are Lease MicroTime strings ("2026-11-24T10:00:00.000000Z").
 *
 * Ownership: the elector borrows the k8s client (which must outlive it) and copies its strings. */
#ifndef IAC_COORD_LEADER_H
#define IAC_COORD_LEADER_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "k8s.h"

typedef struct leader leader;

typedef void (*leader_change_cb)(bool leading, void *arg);

typedef struct {
    const char *namespace_;       /* Lease namespace */
    const char *name;             /* Lease name */
    const char *identity;         /* this replica, unique (pod name) */
    int64_t     lease_duration_ms; /* 0 → 15000 */
    int64_t     renew_deadline_ms; /* 0 → 10000; < lease_duration */
    int64_t     retry_period_ms;   /* 0 → 2000; < renew_deadline */
    leader_change_cb on_change;   /* called on every transition, never twice with the same value */
    void       *arg;
} leader_opts;

/* Starts competing at once. NULL on OOM or bad durations. */
leader *leader_start(uv_loop_t *loop, k8s *client, const leader_opts *opts);
bool leader_is_leader(const leader *l);
/* The identity of the current holder as last read ("" when unknown or none). */
const char *leader_holder(const leader *l);
/* Stops competing and, when leading, releases the Lease (one PUT, best effort); done(arg) runs once that PUT is
 * answered or failed, or at once (from the loop) when there was nothing to release. on_change is not called. */
void leader_release(leader *l, void (*done)(void *arg), void *arg);
/* Frees the elector (cancels anything in flight, no callbacks). Handles close asynchronously: run the loop once
 * more. */
void leader_free(leader *l);

#endif
