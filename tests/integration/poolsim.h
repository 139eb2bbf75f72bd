/* poolsim.h — a simulated agent pool for integration scenarios: kube-fake (the Kubernetes API, pods as real
 * iac-agent processes on 127.0.0.N), iac-coordinator pointed at it through a kubeconfig, and the reads a scenario
 * makes of both. Built on harness.h and taskplane.h; helpers assert (cmocka) instead of returning errors.
 *
 * Every pod's agent talks to the test's devplane and runs fake-terraform, exactly like tp_agent_env's agents;
 * the Deployment template carries upstream's pod environment (ref §5.3) with the token from a Secret. */
#ifndef IAC_TEST_POOLSIM_H
#define IAC_TEST_POOLSIM_H

#include "harness.h"

#define PS_NAMESPACE "terraform"

typedef struct {
    harness_proc *proc;
    int           port;
    char          token[64];               /* the API's bearer token */
    char          kubeconfig[HARNESS_PATH_LEN];
    char          ip_base[32];             /* first pod address */
    int           agent_port;              /* every pod's status port */
} ps_kube;

typedef struct {
    harness_proc *proc;
    int           port;                    /* its API */
    char          identity[32];
} ps_coord;

/* The seed of one Deployment "iac-agent-<pool>" (replicas) with the token Secret, agents pointed at dp; env_extra
 * (NULL-terminated "NAME=value" list, or NULL) goes into the container env too (fake-terraform knobs). Appends to
 * items (a cJSON array). */
void ps_seed_pool(harness *h, cJSON *items, const harness_devplane *dp, const char *pool, int replicas,
                  int agent_port, const char *const *env_extra);

/* Starts kube-fake with the seed items (consumed) and writes a kubeconfig for it. Its kubelet runs each pod's agent
 * on ip_base.N; with ip_base NULL there is none (pods stay objects, as seeded) and kube-fake logs every request. */
void ps_kube_start(harness *h, ps_kube *k, cJSON *items, const char *ip_base, int agent_port);

/* An authenticated request to kube-fake; returns the parsed body (caller frees) or NULL; *status the HTTP status. */
cJSON *ps_kube_call(const ps_kube *k, const char *method, const char *path, const char *ctype, const char *body,
                    long *status);
/* The pods kube-fake lists for the pool (app=iac-agent,pool-id=<pool>); terminating ones only when asked. */
int ps_pod_count(const ps_kube *k, const char *pool, bool with_terminating);
/* spec.replicas of the pool's Deployment, -1 on error. */
int ps_replicas(const ps_kube *k, const char *pool);
/* Events about object name (involvedObject.name) with the reason (NULL: any). */
int ps_event_count(const ps_kube *k, const char *name, const char *reason);

/* Starts a coordinator with the pools file and extra flags (NULL-terminated, or NULL). */
void ps_coord_start(harness *h, ps_coord *c, const ps_kube *k, const char *pools_path, const char *identity,
                    const char *const *extra);
/* GET a coordinator path, parsed (caller frees); NULL unless 200 and JSON. */
cJSON *ps_coord_get(const ps_coord *c, const char *path);
/* The pool object of /v1/pools (in *doc, which the caller frees). */
const cJSON *ps_coord_pool(const ps_coord *c, const char *pool, cJSON **doc);

#endif
