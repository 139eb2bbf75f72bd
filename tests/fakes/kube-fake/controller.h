/* controller.h — the Deployment controller, folded with the ReplicaSet controller it would drive.
 *
 * For every Deployment, spec.replicas is turned into pods: the pods it owns that are neither terminating nor
 * finished count; missing ones are created at once from spec.template (name <deployment>-<pod-template-hash>-
 * <5 random>, labels + pod-template-hash, an ownerReference to the ReplicaSet <deployment>-<hash>), extra ones are
 * deleted gracefully in Kubernetes' order (victim_rules in controller.c): Pending before Running, not Ready before
 * Ready, lower controller.kubernetes.io/pod-deletion-cost first, newer before older, then by name. A pod whose
 * process ended (Succeeded/Failed) no longer counts and is replaced — immediately the first time, then with a
 * backoff (0.5 s doubling to 30 s) while the Deployment has no Ready pod, so a crash-looping container does not
 * spin; the last CONTROLLER_KEEP_FINISHED finished pods per Deployment stay visible, older ones are removed. Pods
 * of a Deployment that is gone are deleted. status (replicas, updatedReplicas, readyReplicas, availableReplicas,
 * unavailableReplicas, observedGeneration, the Available and Progressing conditions) is kept current.
 *
 * The controller runs on the loop one turn after anything changed (controller_kick, which main calls from the
 * store's hook), never re-entrantly. */
#ifndef KUBEFAKE_CONTROLLER_H
#define KUBEFAKE_CONTROLLER_H

#include <stdbool.h>

#include <uv.h>

#include "kubelet.h"
#include "store.h"

#define CONTROLLER_KEEP_FINISHED 5
#define CONTROLLER_BURST         500 /* pods created per Deployment per pass, as the ReplicaSet controller's burst */

typedef struct controller controller;

/* k NULL (kube-fake --no-kubelet): no pod is made or removed; each Deployment's status is still written (it owns
 * no pods, so it counts none). */
controller *controller_new(uv_loop_t *loop, store *st, kubelet *k);
/* Schedules a pass on the next loop turn (no-op while a pass runs: it sees the change itself). */
void controller_kick(controller *c);
/* kubelet_finished_cb: a pod's process ended on its own (arg is the controller). */
void controller_pod_finished(void *arg, kobj *pod);
/* The pod-template-hash of a Deployment's template (10 characters and a NUL). */
void controller_template_hash(const cJSON *deployment, char out[11]);
/* Stops for good and frees the controller once its timer is closed (run the loop). */
void controller_free(controller *c);

#endif
