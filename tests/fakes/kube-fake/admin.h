/* admin.h — kube-fake's test-only admin API under /admin/ (no authentication: a test tool on loopback).
 *
 *   POST /admin/rbac {"deny": ["patch:deployments/scale", …]}  replaces the deny list → {"deny": […]}
 *   GET  /admin/rbac                                            → {"deny": […]}
 *   GET  /admin/pods                                            → every pod's process: {"pods": [{namespace, name,
 *        pid, ip, port, phase, ready, deleting, deployment, dir, waiting?, message?}], "gone": [{namespace, name,
 *        pid, ip, exit_code, signal, deleted, finished}]} (the last 64 processes that ended, oldest first)
 *   POST /admin/pods/<ns>/<name>/signal {"signal": 9}           signals a running pod's process group (a crash)
 *   POST /admin/compact {"expire_next": N} (body optional)      a compaction: continue tokens issued so far expire
 *        (410 Expired), and so do the next N presented (-1: all) → {"compacted": "<resourceVersion>",
 *        "expire_next": N}
 *   GET  /admin/healthz                                         → {"ok": true}
 *
 * Errors are {"error": "..."} with 400, 404 or 405. */
#ifndef KUBEFAKE_ADMIN_H
#define KUBEFAKE_ADMIN_H

#include <stdbool.h>

#include "iac/https.h"
#include "kubelet.h"
#include "rbac.h"
#include "store.h"

typedef struct {
    store   *st;
    kubelet *k;
    rbac    *rb;
} admin;

/* Whether path belongs to the admin API. */
bool admin_path(const char *path);
/* An https_handler for /admin/… (arg: an admin). */
void admin_handle(const https_request *req, https_response *res, void *arg);

#endif
