/* faults.h — injected failures of the agent API, a test knob: "the first N calls of route R answer status S".
 *
 * A rule names an agent route by its short name (the path after the task or workspace id: "state", "status",
 * "data", "plan-task", "logs/chunk", "max-version", …; see faults_route_names), a status, how many calls it hits
 * (0: every call until cleared) and when: "before" the handler runs (nothing is written — a plane that failed)
 * or "after" it (the write happened, the answer is lost — what makes a retried E7 create a second version, ref
 * E7). An optional task_id limits a rule to one task's routes. Rules are tried oldest first; the first one that
 * matches a call and still has hits left answers it. Pure bookkeeping: agentapi.c asks, adminapi.c configures. */
#ifndef DEVPLANE_FAULTS_H
#define DEVPLANE_FAULTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define FAULTS_MAX 64

typedef enum { FAULT_BEFORE = 0, FAULT_AFTER } fault_when;

typedef struct faults faults;

faults *faults_new(void); /* NULL on OOM */
void faults_free(faults *f);

/* Adds a rule from {"route", "status" (400-599), "times"? (default 1; 0 = every call), "when"? ("before" |
 * "after"), "task_id"?}. 0 and the rule as the admin view shows it in *view (caller deletes; may be NULL), or
 * -EINVAL with the reason in err, -ENOSPC (FAULTS_MAX rules). */
int faults_add(faults *f, const cJSON *spec, cJSON **view, char *err, size_t errlen);
void faults_clear(faults *f);

/* A call of route name (the short name) for task_id (0: a route without a task) at phase when: the status to
 * answer instead, counted as a hit, or 0. */
int faults_take(faults *f, const char *name, uint64_t task_id, fault_when when);

/* {"faults": [{"route", "status", "times", "when", "task_id", "hits", "left"}]}; NULL on OOM. */
cJSON *faults_view(const faults *f);

/* The short name of an agent route pattern: "/api/v1/agents/tasks/ * /logs/chunk" → "logs/chunk",
 * "/api/v1/agents/workspaces/ * /state/max-version" → "max-version", "/api/v1/agents/terraform-versions/ *" →
 * "terraform-versions". out holds at least 64 bytes. */
void faults_route_name(const char *pattern, char *out, size_t outlen);

#endif
