/* resources.h — the Kubernetes resources kube-fake serves, their verbs, and the discovery documents built from them.
 *
 * One table describes every resource (group, version, kind, scope, verbs, short names, its one subresource); the
 * router resolves paths against it, RBAC names verbs from it and discovery (/api, /apis, /apis/<g>/<v>) is
 * written from it, so the three can never disagree. Pure: no I/O, no state. */
#ifndef KUBEFAKE_RESOURCES_H
#define KUBEFAKE_RESOURCES_H

#include <stdbool.h>

#include "iac/strbuf.h"

typedef enum {
    RES_NAMESPACES = 0,
    RES_PODS,
    RES_EVENTS,
    RES_SECRETS,
    RES_DEPLOYMENTS,
    RES_LEASES,
    RES_SSAR, /* selfsubjectaccessreviews: create only, never stored */
    RES_COUNT
} res_id;

typedef enum {
    VERB_GET = 0,
    VERB_LIST,
    VERB_WATCH,
    VERB_CREATE,
    VERB_UPDATE,
    VERB_PATCH,
    VERB_DELETE,
    VERB_DELETECOLLECTION,
    VERB_COUNT
} verb;

#define VB(v) (1u << (v))

typedef struct {
    res_id      id;
    const char *plural;      /* "deployments" */
    const char *singular;    /* "deployment" */
    const char *kind;        /* "Deployment" */
    const char *list_kind;   /* "DeploymentList" */
    const char *group;       /* "" for the core group */
    const char *version;     /* "v1" */
    bool        namespaced;
    unsigned    verbs;       /* VB() bits the server implements */
    const char *short_names; /* comma-separated, "" for none */
    bool        category_all;
    /* the one subresource, if any (deployments/scale) */
    const char *sub;         /* "scale" or NULL */
    const char *sub_group, *sub_version, *sub_kind;
    unsigned    sub_verbs;
} resource_def;

const resource_def *resources_get(res_id id);
/* The resource served at /api/v1 (group "") or /apis/<group>/<version> with this plural name; NULL if none. */
const resource_def *resources_find(const char *group, const char *version, const char *plural);

const char *verb_name(verb v);
/* "get" → VERB_GET; -1 when unknown. */
int verb_parse(const char *s, size_t len);

/* "deployments.apps" or "pods": how Kubernetes names a resource in messages. */
void resources_qualified(const resource_def *r, char *out, size_t outlen);
/* "apps/v1" or "v1". */
void resources_api_version(const resource_def *r, char *out, size_t outlen);

/* Writes the discovery document served at path (/version, /api, /api/v1, /apis, /apis/<g>, /apis/<g>/<v>) into
 * out and returns true; false when path is not a discovery path. server is "host:port" for
 * serverAddressByClientCIDRs. */
bool resources_discovery(const char *path, const char *server, strbuf *out);

#endif
