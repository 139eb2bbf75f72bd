/* api.h — kube-fake's Kubernetes API: authentication, RBAC, routing and the handlers of every resource.
 *
 * Paths are the real ones (/api/v1/namespaces/<ns>/pods/<name>, /apis/apps/v1/namespaces/<ns>/deployments/<name>/
 * scale, …), answers are the real JSON shapes, errors are Status objects (kstatus.h). Order of checks, as the API
 * server's filter chain: authentication (--token; 401), discovery, routing (404), authorization (the deny list;
 * 403), method (405), content type (415), body (400), validation (422), preconditions (409).
 *
 * Ownership: the api borrows the store, kubelet and rbac (they outlive it) and copies its strings. */
#ifndef KUBEFAKE_API_H
#define KUBEFAKE_API_H

#include <stdbool.h>

#include "iac/https.h"
#include "kubelet.h"
#include "rbac.h"
#include "store.h"

typedef struct api api;

typedef struct {
    const char *token;      /* NULL or "": no authentication */
    const char *user;       /* the user named in Forbidden messages */
    bool        no_kubelet; /* --no-kubelet: pods are not run; a created Pod keeps the status it was given */
} api_opts;

api *api_new(store *st, kubelet *k, rbac *rb, const api_opts *opts);
void api_free(api *a);
/* "host:port" clients reach us at (for /api's serverAddressByClientCIDRs). */
void api_set_server(api *a, const char *server);
/* An https_handler for every path that is not /admin/… (arg: the api). */
void api_handle(const https_request *req, https_response *res, void *arg);

/* Creates an object as POST would (validation, defaults, kubelet for pods), for --seed. 0, or -1 with a message. */
int api_seed_object(api *a, cJSON *obj, char *err, size_t errlen);

#endif
