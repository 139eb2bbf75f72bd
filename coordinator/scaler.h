/* scaler.h — the coordinator's scaling decision (DESIGN §5 step 4).
 *
 * Pure: (view, demand, config, now) → decision. No I/O, no allocation, no hidden state: the caller owns every
 * struct, builds the view from ground truth each cycle, and carries the two "since" timestamps of the decision
 * into the next cycle's view (they are the only memory between cycles).
 *
 * Capacity model. Each pod has one slot 0 (plan_and_apply) and slots_per_pod − 1 plan slots (plan, drift_check).
 * A pod counts as capacity only when it is Ready, not draining and its agent answered /v1/status; a Ready pod
 * whose agent did not answer counts as coming capacity until the startup timeout (then as nothing) and is never
 * removable. A pod still
 * starting counts as coming capacity (every slot free) until pod_startup_timeout_ms after its creation; then it is
 * reported in timed_out[] and counts as nothing, so the shortfall it leaves is covered by a new pod. Replicas of
 * the Deployment not yet listed as pods also count as coming. A reserved slot 0 (apply_pending) is not free.
 *
 * Needs: free slot 0s ≥ plan_and_apply waiting + headroom_slot0; free plan slots ≥ plan + drift_check waiting +
 * headroom_plan. A shortfall scales up at once (after scale_up_window_ms, 0 = at once) by the pods that cover both
 * needs together. A surplus — a pod that could go while the needs stay covered — removes pods only after it has
 * lasted scale_down_window_ms, at most max_remove_per_cycle per cycle, never below min_replicas, and only pods with
 * every slot idle and no reservation. Among removable pods the youngest goes first: older pods have warm engine
 * and provider caches, and it is also Kubernetes' own tie-break, so a failed deletion-cost patch still removes
 * the pod we chose. Result clamped to [min_replicas, max_replicas]. */
#ifndef IAC_COORD_SCALER_H
#define IAC_COORD_SCALER_H

#include <stdbool.h>
#include <stdint.h>

#include "iac/slots.h"

#define SCALER_MAX_PODS   2048
#define SCALER_MAX_REMOVE 16
#define SCALER_NEVER      (-1) /* a "since" timestamp that is not running */
#define SCALER_TEXT_MAX   320

typedef struct {
    int     slots_per_pod;          /* 2..SLOTS_MAX */
    int     min_replicas;           /* 0 ≤ min ≤ max */
    int     max_replicas;           /* ≥ 1 */
    int     headroom_slot0;         /* idle slot 0s to keep ready */
    int     headroom_plan;          /* idle plan slots to keep ready */
    int64_t scale_up_window_ms;     /* a shortfall must last this long before scaling up; 0 = at once */
    int64_t scale_down_window_ms;   /* a surplus must last this long before any pod is removed */
    int     max_remove_per_cycle;   /* 1..SCALER_MAX_REMOVE */
    int64_t pod_startup_timeout_ms; /* a pod not Ready this long after creation counts as not coming */
} scaler_config;

typedef struct {
    const char *name;            /* borrowed; only echoed in the decision text */
    bool        ready;           /* Kubernetes Ready condition */
    bool        starting;        /* created, not Ready yet */
    bool        draining;        /* agent state draining, or the pod is terminating */
    bool        has_status;      /* the agent answered /v1/status this cycle */
    int64_t     created_ms;
    slot_status slot0;
    uint64_t    reserved_task_id; /* task holding slot 0's reservation, 0 when none */
    int64_t     reserved_age_ms;
    int         plan_busy;        /* plan slots running or reserved */
    int         plan_idle;
} scaler_pod;

typedef struct {
    const scaler_pod *pods;      /* npods entries, 0 ≤ npods ≤ SCALER_MAX_PODS */
    int               npods;
    int               replicas;  /* the Deployment's spec.replicas */
    int64_t           surplus_since_ms;  /* from the previous decision; SCALER_NEVER at first */
    int64_t           shortage_since_ms; /* likewise */
} scaler_view;

/* Tasks waiting for a slot, by kind. Negative counts are read as 0. */
typedef struct {
    int plan_and_apply;
    int plan;
    int drift_check;
} scaler_demand;

typedef enum {
    SCALER_STEADY = 0,       /* needs covered, nothing to remove */
    SCALER_SCALE_UP,
    SCALER_AT_MAX,           /* needed capacity blocked by max_replicas */
    SCALER_SHORTAGE_WAITING, /* shortfall seen, scale-up window not over */
    SCALER_BELOW_MIN,        /* raised to min_replicas */
    SCALER_ABOVE_MAX,        /* lowered towards max_replicas */
    SCALER_SCALE_DOWN,
    SCALER_SURPLUS_WAITING,  /* removable surplus seen, scale-down window not over */
    SCALER_BAD_INPUT,        /* config or view invalid; desired = replicas */
} scaler_reason;

typedef struct {
    int           desired;                   /* replicas to set */
    scaler_reason reason;
    char          text[SCALER_TEXT_MAX];     /* for a person: log line, Event, explain */
    int           remove[SCALER_MAX_REMOVE]; /* indexes into view->pods, youngest first */
    int           nremove;                   /* desired == replicas − nremove when nremove > 0 */
    int           timed_out[SCALER_MAX_PODS]; /* indexes of pods past the startup timeout */
    int           ntimed_out;
    int64_t       surplus_since_ms;          /* carry into the next view */
    int64_t       shortage_since_ms;
    /* The measurements behind the decision, for metrics and explain. */
    int64_t free_slot0, free_plan, need_slot0, need_plan;
    int     coming_pods;                     /* starting within the timeout, plus replicas not yet listed */
} scaler_decision;

/* Decide. Returns 0, or -EINVAL when the config or view is invalid (out->reason SCALER_BAD_INPUT, out->text says
 * what, out->desired = replicas, nothing removed, timestamps reset). */
int scaler_decide(const scaler_view *v, const scaler_demand *d, const scaler_config *c, int64_t now_ms,
                  scaler_decision *out);

const char *scaler_reason_name(scaler_reason r);

/* now − t in ms, never negative and never overflowing, whatever timestamps (clock skew, agents' clocks) come in. */
int64_t scaler_elapsed_ms(int64_t now, int64_t t);

#endif
