/* observe.h — one observation of a pool: the reads of DESIGN §5 steps 1–3, all asynchronous on the loop.
 *
 * Order: the Deployment (its selector and replicas), then its pods (label selector; in pages, limit and continue,
 * each page made into view rows before the next is asked for, and the list started over once if the API server
 * expired its continue token), then in parallel every Ready pod's agent (GET http://<pod ip>:<agent port>/v1/status,
 * short timeout, at most 64 at once so that a large pool never runs out of sockets) and the plane's demand URL. The
 * result is a view_pool built from these answers only. Nothing fails as a whole: each read that goes wrong leaves
 * its reason in the view (deployment_error, a pod's status_error, demand_error) and in observe_result, and the
 * caller decides what it means. A pod list that cannot be read to its end leaves no pods in the view, never some.
 *
 * Ownership: the caller owns the view it passes (observe fills it, replacing what was there) and the config; both
 * must stay valid until the callback runs or observe_cancel(). The observation frees itself after its callback. */
#ifndef IAC_COORD_OBSERVE_H
#define IAC_COORD_OBSERVE_H

#include <stdint.h>

#include "iac/httpc.h"
#include "k8s.h"
#include "poolcfg.h"
#include "view.h"

typedef struct observe observe;

typedef struct {
    long deployment_status; /* HTTP status of the Deployment GET; 0 when it failed in transport */
    long pods_status;       /* of the pod list; 0 when not reached or failed in transport */
    char k8s_error[VIEW_ERR_MAX]; /* the first Kubernetes read that failed, for a person; "" when none */
    int  agents_asked, agents_answered;
} observe_result;

typedef void (*observe_cb)(const observe_result *r, void *arg);

typedef struct {
    long agent_timeout_ms;  /* per /v1/status request; 0 → 2000 */
    long demand_timeout_ms; /* 0 → 3000 */
} observe_opts;

/* Starts observing cfg's pool into *out. Returns NULL on OOM (no callback). */
observe *observe_start(k8s *kube, httpc *http, const poolcfg_pool *cfg, const observe_opts *opts, view_pool *out,
                       observe_cb cb, void *arg);
/* Abandons the observation (no callback); out keeps whatever was filled. */
void observe_cancel(observe *o);

#endif
