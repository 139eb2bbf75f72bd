/* pool.h — one pool's control loop: each cycle observe (coordinator/observe), check the configuration, decide
 * (coordinator/scaler) and, on the leader only, act through the Kubernetes API (DESIGN §5 steps 4–6).
 *
 * Acting means: keep every pod's pod-deletion-cost in step with its work; scale up through the Deployment's scale
 * subresource; scale down only safely — drain the chosen agent, re-read its status, and only if it is still idle
 * set its deletion cost to the minimum and lower replicas by one (if work slipped in: undrain and skip); and a
 * Kubernetes Event on the Deployment for every scale decision. A configuration error (static checks, the
 * Deployment missing, RBAC refusing a verb we need) is reported once per change — one log line, one Event, the
 * iac_pool_config_error metric, explain — and never stops the other pools.
 *
 * The state below is what the read side (coordinator/api: /v1/pools, explain, metrics) shows. It is rebuilt every
 * cycle from ground truth; only the scaler's two "since" stamps, the reported error and the counters carry over.
 *
 * Ownership: the pool borrows its dependencies (loop, clients, config), which outlive it. pool_state() returns
 * a pointer into the pool, valid until the next cycle completes or pool_free(). */
#ifndef IAC_COORD_POOL_H
#define IAC_COORD_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "iac/httpc.h"
#include "k8s.h"
#include "poolcfg.h"
#include "scaler.h"
#include "view.h"

#define POOL_TEXT_MAX 400

typedef struct pool pool;

typedef struct {
    const poolcfg_pool *cfg;
    view_pool           view;        /* the last completed observation */
    bool                observed;    /* at least one observation completed */
    int64_t             observed_at_ms; /* wall clock (epoch ms) of that observation */
    scaler_decision     decision;    /* the last decision (valid when decided) */
    bool                decided;
    bool                leader;      /* this replica acted in the last cycle */

    /* Configuration error, as last reported (config_error false when none). */
    bool    config_error;
    char    config_reason[64];       /* short label: "deployment_not_found", "rbac_denied", "min_above_max", … */
    char    config_message[POOL_TEXT_MAX];
    int64_t config_error_since_ms;   /* epoch ms */

    /* Kubernetes API or agent trouble that is not the pool's configuration ("" when none). */
    char    cycle_error[POOL_TEXT_MAX];

    /* What the last action was, for a person. */
    char    last_action[POOL_TEXT_MAX];
    int64_t last_action_ms;          /* epoch ms, 0 = none yet */

    /* Counters since start. */
    uint64_t cycles;
    uint64_t scale_ups, scale_downs;       /* Deployment replicas changed up / down by us */
    uint64_t scale_down_aborted;           /* work slipped in after the drain: undrained */
    uint64_t events_created;
    uint64_t cost_patches;                 /* pod-deletion-cost annotations written */
    uint64_t startup_timeouts;             /* pods reported past the startup timeout */
    int64_t  cycle_duration_ms;            /* of the last cycle */
} pool_state;

typedef struct {
    uv_loop_t          *loop;
    k8s                *kube;        /* the Kubernetes client */
    httpc              *http;        /* for the agents and the demand URL */
    const poolcfg_pool *cfg;
    const char         *lease_namespace; /* for the RBAC check of leases; NULL → the pool's namespace */
    bool                check_leases;    /* leader election is on: leases get/create/update are needed */
    /* Whether this replica may act now (leader election); NULL → always. Read at the start of each cycle. */
    bool (*is_leader)(void *arg);
    void *leader_arg;
} pool_deps;

pool *pool_new(const pool_deps *deps);
/* Starts one cycle; done(p, arg) runs when it has finished (observed, decided, acted). Returns 0, or -EBUSY when
 * the previous cycle is still running (nothing started, done not called). */
int pool_cycle(pool *p, void (*done)(pool *p, void *arg), void *arg);
const pool_state *pool_get_state(const pool *p);
/* Cancels a running cycle (its done is not called) and frees the pool. */
void pool_free(pool *p);

#endif
