/* mergepatch.h — JSON merge patch (RFC 7386), and the subset of strategic merge patch kube-fake accepts.
 *
 * A merge patch is an object whose members replace the target's, recursively; null removes a member; any
 * non-object value (arrays included) replaces the target's value whole. A strategic merge patch is the same for
 * everything kube-fake's clients send (metadata, spec.replicas); what it adds — lists merged by key, "$patch"
 * and "$setElementOrder/…" directives — is not implemented: keys starting with '$' are dropped, lists are
 * replaced. Pure: no I/O. */
#ifndef KUBEFAKE_MERGEPATCH_H
#define KUBEFAKE_MERGEPATCH_H

#include <stdbool.h>

#include <cjson/cJSON.h>

/* Applies patch to *target (replaced or modified in place; the result may be a new tree, in which case the old
 * one is freed). strategic drops '$' directive keys. 0, or -1 on OOM (then *target is unchanged or partly
 * patched, still a valid tree). */
int mergepatch_apply(cJSON **target, const cJSON *patch, bool strategic);

#endif
