/* kubelet.h — the pod simulator: runs each pod's first container as a real process and keeps the pod's status
 * true to it.
 *
 * A pod gets the lowest free address of the pod range (127.0.0.N: Linux routes all of 127/8 to lo, so each pod
 * listens on its own IP at the same port, like pods in a cluster), a directory <work dir>/pods/<name>/ (HOME,
 * TMPDIR, data/, and `log` with the process's stdout and stderr), and its container's command line and
 * environment (podenv.h). The process runs in its own process group (setsid) and dies with kube-fake
 * (PR_SET_PDEATHSIG, set by a small exec trampoline: kube-fake re-executes itself with --pod-exec, because
 * uv_spawn runs no code between fork and exec). Status follows the process: Pending → Running once spawned →
 * Succeeded/Failed when it exits while not being deleted. Readiness: every probe interval an HTTP GET of the
 * readiness probe (httpGet path, default /readyz, on the pod IP): 2xx/3xx → Ready; failureThreshold failures in a
 * row → not Ready; no readiness probe → Ready while running. Deleting a pod sets deletionTimestamp, sends SIGTERM
 * to its group and SIGKILL after the grace period; the object is removed once the process is gone. A pod whose
 * process cannot start (missing secret, missing executable, no free IP) stays Pending with the reason in its
 * container status and is retried with backoff (1 s doubling to 30 s).
 *
 * Everything runs on the caller's libuv loop: uv_spawn, uv_timer, and common/httpc for probes. */
#ifndef KUBEFAKE_KUBELET_H
#define KUBEFAKE_KUBELET_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "store.h"

#define KUBELET_NODE        "kube-fake"
#define KUBELET_IP_LAST     250   /* 127.0.0.250 is the last pod address */
#define KUBELET_STOP_GRACE  3000  /* ms between SIGTERM and SIGKILL at shutdown, by default */
#define KUBELET_GONE_KEPT   64    /* finished processes remembered for the admin API */

typedef struct kubelet kubelet;

typedef struct {
    const char *bin_dir;           /* NULL: commands without '/' are looked up on PATH */
    const char *work_dir;          /* pods live in work_dir/pods/<name>/ */
    const char *self_exe;          /* kube-fake itself, for the --pod-exec trampoline */
    int         ip_first;          /* last octet of the first pod address (10 → 127.0.0.10) */
    int64_t     probe_interval_ms;
    int64_t     stop_grace_ms;     /* 0 → KUBELET_STOP_GRACE */
    const char *host_path;         /* the pods' default PATH */
    char *const *inherit;          /* "NAME=value" passed into every pod (sanitizer settings), NULL-terminated */
} kubelet_opts;

/* Called when a pod's process exits while the pod is not being deleted (phase Succeeded or Failed). */
typedef void (*kubelet_finished_cb)(void *arg, kobj *pod);

/* NULL on OOM or when httpc cannot start. Strings in opts are copied. */
kubelet *kubelet_new(uv_loop_t *loop, store *st, const kubelet_opts *opts);
void kubelet_set_finished(kubelet *k, kubelet_finished_cb cb, void *arg);

/* Takes charge of a new pod object (phase Pending) and starts its container. 0 or -ENOMEM. */
int kubelet_run(kubelet *k, kobj *pod);

enum { KUBELET_REMOVED = 0, KUBELET_TERMINATING = 1 };
/* Deletes a pod gracefully: grace_ms < 0 → the pod's terminationGracePeriodSeconds. Returns KUBELET_REMOVED when
 * the object is already gone (no process was running: pod is freed, don't touch it), KUBELET_TERMINATING when the
 * process was signalled and the object will go when it exits (a second delete may shorten the grace). */
int kubelet_delete(kubelet *k, kobj *pod, int64_t grace_ms);
/* Sends sig to a running pod's process group (the admin API's crash simulation). 0, -ESRCH (not running). */
int kubelet_signal(kubelet *k, kobj *pod, int sig);

/* The admin view: {"pods":[{namespace,name,pid,ip,port,phase,ready,deleting,owner,dir}],"gone":[…]}. */
cJSON *kubelet_admin_json(const kubelet *k);

/* Stops every process (SIGTERM to each group, SIGKILL after the stop grace) and calls done(arg) from the
 * loop once none is left. No pod is removed or reported finished from then on. */
void kubelet_shutdown(kubelet *k, void (*done)(void *arg), void *arg);
/* Detaches every pod from its object and frees the kubelet once its handles are closed (run the loop). */
void kubelet_free(kubelet *k);

#endif
