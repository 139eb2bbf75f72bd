/* podenv.h — what a pod's first container runs: its command line, its environment, its ports and its readiness
 * probe, read from the pod object as a kubelet would.
 *
 * The environment is the image's defaults (PATH, HOME and TMPDIR in the pod's directory, HOSTNAME, the sanitizer
 * settings kube-fake itself runs with) plus the pod-network stand-ins IAC_AGENT_DATA_DIR=<pod dir>/data and
 * IAC_AGENT_LISTEN=<pod IP>:<status port>, then the container's env in order: literal values with $(VAR)
 * references expanded against the variables defined before them (Kubernetes' rule: "$$" is a literal '$', an
 * unknown reference stays as written), valueFrom.fieldRef (metadata.name, .namespace, .uid, .labels['k'],
 * .annotations['k'], spec.nodeName, spec.serviceAccountName, status.podIP(s), status.hostIP(s)) and
 * valueFrom.secretKeyRef (from the store; optional ones may be missing). A later definition of a name wins. The
 * command is container.command (default: the image entrypoint "iac-agent") plus args, both $(VAR)-expanded against
 * the whole container environment; a command without '/' is looked up in the bin directory (or the pod's PATH).
 *
 * The status port is the container port named "status", else the readiness probe's httpGet port, else 9180.
 *
 * Ownership: podenv_build() fills a podenv whose strings belong to it until podenv_free(). */
#ifndef KUBEFAKE_PODENV_H
#define KUBEFAKE_PODENV_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "store.h"

#define PODENV_DEFAULT_PORT  9180
#define PODENV_ENTRYPOINT    "iac-agent"
#define PODENV_MAX_VARS      512
#define PODENV_MAX_ARGS      256

typedef struct {
    const char  *pod_ip;    /* "127.0.0.10" */
    const char  *pod_dir;   /* the pod's directory: HOME, TMPDIR, default working directory */
    const char  *bin_dir;   /* where commands without '/' are found; NULL: the pod's PATH */
    const char  *node_name; /* spec.nodeName */
    const char  *host_path; /* the image's PATH (kube-fake's own) */
    char *const *inherit;   /* extra "NAME=value" image defaults, NULL-terminated (may be NULL) */
    const store *secrets;   /* for secretKeyRef */
} podenv_ctx;

typedef struct {
    char  **env;            /* "NAME=value", NULL-terminated */
    char  **argv;           /* NULL-terminated */
    char   *exe;            /* the resolved executable */
    char   *workdir;
    int     status_port;
    bool    probe;          /* an httpGet readiness probe is configured */
    int     probe_port;
    char   *probe_path;
    char   *probe_host;     /* httpGet.host, or NULL for the pod IP */
    int     probe_timeout_ms;
    int     probe_failure_threshold;
} podenv;

/* Builds everything for pod. 0, or -1 with Kubernetes' waiting reason ("CreateContainerConfigError",
 * "RunContainerError") in reason and a message in err (which never quotes a secret's value). */
int podenv_build(const cJSON *pod, const podenv_ctx *ctx, podenv *out, char *reason, size_t reasonlen, char *err,
                 size_t errlen);
void podenv_free(podenv *e);

/* Expands $(VAR) references in s the way Kubernetes does, looking names up in env ("NAME=value" entries, n of
 * them). Returns a malloc'd string, or NULL on OOM. */
char *podenv_expand(const char *s, char *const *env, size_t n);

/* terminationGracePeriodSeconds of a pod spec (default 30) in milliseconds. */
int64_t podenv_grace_ms(const cJSON *pod);

#endif
