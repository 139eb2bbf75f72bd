/* rbac.h — what the fake's client may not do: a deny list of verb:resource rules.
 *
 * Real RBAC grants; tests want the opposite — everything allowed except what a scenario takes away — so the rule
 * set is a deny list: "patch:deployments/scale", "list:pods", "create:events", with '*' for any verb or any
 * resource ("*:leases", "delete:*"). A resource with a subresource is written "deployments/scale"; a rule for
 * "deployments" does not cover "deployments/scale", as in Kubernetes. The same rules answer
 * SelfSubjectAccessReviews and gate every request. Pure: no I/O.
 *
 * Ownership: the caller owns the rbac; it copies the rules it is given. */
#ifndef KUBEFAKE_RBAC_H
#define KUBEFAKE_RBAC_H

#include <stdbool.h>
#include <stddef.h>

#define RBAC_MAX_RULES 64
#define RBAC_RULE_MAX  128 /* bytes of "verb:resource/sub" and its NUL */

typedef struct rbac rbac;

rbac *rbac_new(void);
void rbac_free(rbac *r);

/* Checks one rule's syntax: verb one of get, list, watch, create, update, patch, delete, deletecollection or '*';
 * resource lowercase letters, digits, '.', '-' with an optional "/subresource", or '*'. 0, or -1 with a message. */
int rbac_check_rule(const char *rule, char *err, size_t errlen);
/* Adds a rule (duplicates are kept once). 0, or -1 with a message (bad syntax, RBAC_MAX_RULES reached). */
int rbac_deny(rbac *r, const char *rule, char *err, size_t errlen);
void rbac_clear(rbac *r);

/* Whether verb on resource (with sub NULL or "" for none) is allowed. */
bool rbac_allowed(const rbac *r, const char *verb, const char *resource, const char *sub);

size_t rbac_count(const rbac *r);
const char *rbac_rule(const rbac *r, size_t i);

#endif
