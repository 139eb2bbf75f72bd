/* view.h — one pool as the coordinator sees it in one cycle, built from ground truth only (DESIGN §5 steps 1–3):
 * the Deployment, its pods as Kubernetes lists them, each Ready pod's agent as its /v1/status describes it, and the
 * demand as the plane reports it. Nothing here is carried from one cycle to the next.
 *
 * The parsers are pure (JSON in, structs out, no I/O) so that every shape Kubernetes, the agent or the plane can
 * send — including wrong ones — is unit-tested; coordinator/observe.c does the fetching.
 *
 * The pod list is read a page at a time (view_parse_pod_page; coordinator/observe.c asks Kubernetes with limit and
 * continue), and each page's items become compact rows before the next page is fetched: a pool of 1,000 pods is
 * about 5 MiB of JSON and four times that once parsed, but under 1 MiB of rows. A row holds what the coordinator
 * uses and no more; its slots sit in the row when there are VIEW_SLOTS_INLINE or fewer (the agent's default is 4),
 * else in one allocation of exactly nslots (view_pod_slots() gives them either way), where a row used to carry
 * room for SLOTS_MAX (64) of them.
 *
 * Ownership: a view_pool owns its pods and waiting arrays, and each row its slots_ext (view_pool_free). Strings
 * are copied into fixed buffers (longer ones are cut, never overflowed). */
#ifndef IAC_COORD_VIEW_H
#define IAC_COORD_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "iac/slots.h"
#include "scaler.h"

#define VIEW_NAME_MAX  254
#define VIEW_ERR_MAX   200
#define VIEW_MAX_PODS  SCALER_MAX_PODS
#define VIEW_MAX_WAITING 4096
#define VIEW_DELETION_COST "controller.kubernetes.io/pod-deletion-cost"
#define VIEW_IP_MAX    46   /* INET6_ADDRSTRLEN */
#define VIEW_SLOTS_INLINE 4 /* slots kept in the row itself: IAC_AGENT_SLOTS' default */
#define VIEW_CONTINUE_MAX 2048 /* a list's continue token (the API server's are a few hundred bytes) */

typedef struct {
    slot_status status;
    uint64_t    task_id;   /* 0 when idle */
    task_type   type;      /* TASK_TYPE_NONE when idle */
    bool        apply;     /* action apply (a reserved slot 0 reports apply) */
    int64_t     since_ms;  /* when the slot last changed, by the agent's clock (epoch ms) */
} view_slot;

typedef struct {
    /* From Kubernetes. */
    char    name[VIEW_NAME_MAX];
    char    ip[VIEW_IP_MAX];    /* status.podIP, "" until assigned */
    char    phase[16];          /* status.phase: Pending, Running, Succeeded, Failed, Unknown */
    bool    ready;              /* condition Ready == True */
    bool    terminating;        /* metadata.deletionTimestamp set */
    int64_t created_ms;         /* metadata.creationTimestamp (epoch ms) */
    bool    has_cost;           /* the deletion-cost annotation is present … */
    int64_t deletion_cost;      /* … with this value (an unparsable value reads as absent) */
    /* From the agent's /v1/status, when has_status. */
    bool      has_status;
    char      status_error[VIEW_ERR_MAX]; /* why not: "connection refused", "HTTP 500", "not Ready" */
    char      agent_id[128];
    char      agent_pool[65];
    bool      draining;        /* state "draining" */
    bool      connected;       /* C&C socket open */
    int        nslots;
    view_slot  slots[VIEW_SLOTS_INLINE]; /* the slots when nslots ≤ VIEW_SLOTS_INLINE and slots_ext is NULL … */
    view_slot *slots_ext;                /* … else all nslots of them here (owned by the row) */
} view_pod;

/* A pod's nslots slots, wherever they are kept. */
static inline const view_slot *view_pod_slots(const view_pod *p) { return p->slots_ext ? p->slots_ext : p->slots; }

/* Frees what the row holds outside itself (slots_ext) and zeroes it: for a row that is not in a view_pool. */
void view_pod_free(view_pod *p);

typedef struct {
    uint64_t  task_id;
    task_type type;
    int64_t   waiting_since_ms; /* 0 when the plane did not say */
} view_waiting;

typedef struct {
    /* Deployment */
    bool    deployment_found;
    char    deployment_error[VIEW_ERR_MAX]; /* "" or why it could not be read */
    int     replicas;          /* spec.replicas (Kubernetes defaults it to 1) */
    int     ready_replicas;    /* status.readyReplicas */
    char    selector[512];     /* spec.selector.matchLabels as a label selector "a=b,c=d" (unescaped) */
    /* Pods (every pod the selector lists, terminating ones too) */
    view_pod *pods;
    int       npods;
    /* Demand */
    bool          demand_ok;      /* the demand URL answered (always false without one) */
    char          demand_error[VIEW_ERR_MAX];
    scaler_demand demand;
    view_waiting *waiting;        /* tasks waiting for a slot, oldest first, when the plane lists them */
    int           nwaiting;
    int64_t       observed_ms;    /* when the cycle's reads finished */
} view_pool;

void view_pool_free(view_pool *v); /* frees pods and waiting, zeroes the struct */
void view_pool_free_pods(view_pool *v); /* frees the pods only (npods 0): a pod list started again */

/* A Deployment object → found, replicas, ready_replicas, selector. -1 with err when a field has the wrong type or
 * the selector is missing or uses matchExpressions (not supported: say so). */
int view_parse_deployment(const cJSON *deploy, view_pool *v, char *err, size_t errlen);

/* A PodList → v->pods (replacing them), at most VIEW_MAX_PODS (more: -1). Items that are not objects or lack a
 * name are skipped. */
int view_parse_pods(const cJSON *list, view_pool *v, char *err, size_t errlen);

/* One page of a PodList asked for in chunks (limit, continue) → its pods appended to v->pods (a list's first page
 * goes into a view without pods), at most VIEW_MAX_PODS in all (more: -1); items as view_parse_pods. The page's
 * metadata.continue goes into cont ("" when the list is complete; cont_len ≥ 1); a token that is not a string or
 * does not fit is -1. -1 appends nothing; error paths are the page's ("items[3].status.phase: …"). */
int view_parse_pod_page(const cJSON *page, view_pool *v, char *cont, size_t cont_len, char *err, size_t errlen);

/* An agent's /v1/status body → the agent fields of pod (has_status true). -1 with err for a body that is not the
 * agent's shape (missing slots, a slot status or type that is not one of ours, more than SLOTS_MAX slots), and
 * pod->has_status stays false. */
int view_parse_agent_status(const cJSON *status, view_pod *pod, char *err, size_t errlen);

/* The plane's demand document {"pools": {"<pool>": {"plan_and_apply": n, "plan": m, "drift_check": k,
 * "tasks": [{"task_id": N, "task_type": "...", "waiting_since": <epoch s>}]}}} → v->demand and v->waiting for
 * pool. A pool absent from the document has no demand (ok, zero). Counts must be whole numbers ≥ 0. */
int view_parse_demand(const cJSON *doc, const char *pool, view_pool *v, char *err, size_t errlen);

/* Turns a pod into the scaler's input (borrowing the name): terminating → draining; Ready and not terminating →
 * ready (capacity when its agent answered); not Ready, not terminating, phase Pending or Running → starting;
 * Succeeded or Failed → neither (not capacity). Slot 0 and the plan slots come from the agent's status. */
void view_to_scaler_pod(const view_pod *p, scaler_pod *out, int64_t now_ms);

/* Where is task_id on this pool? The pod index and slot index, or -1. */
int view_find_task(const view_pool *v, uint64_t task_id, int *slot_out);

#endif
