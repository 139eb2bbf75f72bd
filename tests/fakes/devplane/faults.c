/* faults.c — injected failures of the agent API; see faults.h.
 *
 * A short list scanned in order: tests add a rule or two. Route names are checked against the names of the
 * routes agentapi.c serves, so that a typo in a test fails at the admin call instead of silently injecting
 * nothing. */
#include "faults.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iac/json.h"

#define FAULT_NAME_MAX 64

typedef struct {
    char       route[FAULT_NAME_MAX];
    int        status;
    int64_t    times; /* 0: every call */
    fault_when when;
    uint64_t   task_id; /* 0: any */
    uint64_t   hits;
} fault_rule;

struct faults {
    fault_rule rules[FAULTS_MAX];
    size_t     n;
};

/* The short names agentapi.c's routes have (faults_route_name of each pattern). */
static const char *const known[] = { "data",        "status",    "logs/chunk",  "state",
                                     "plan-data",   "plan-json", "parse-plan-changes", "plan-task",
                                     "lock",        "unlock",    "max-version", "fields",
                                     "terraform-lock-hcl", "terraform-versions", "engines" };

faults *faults_new(void)
{
    return calloc(1, sizeof(faults));
}

void faults_free(faults *f)
{
    free(f);
}

void faults_route_name(const char *pattern, char *out, size_t outlen)
{
    const char *p = strstr(pattern, "*/"), *slash;
    char *cut;

    if (p) {
        p += 2;
        if ((slash = strrchr(p, '/')) && strcmp(slash, "/max-version") == 0)
            p = slash + 1; /* "state/max-version": "state" is E7's */
        snprintf(out, outlen, "%s", p);
        return;
    }
    p = strncmp(pattern, "/api/v1/agents/", 15) == 0 ? pattern + 15 : pattern + (*pattern == '/');
    snprintf(out, outlen, "%s", p);
    size_t n = strlen(out);
    if (n >= 2 && strcmp(out + n - 2, "/*") == 0)
        out[n - 2] = '\0';
    if ((cut = strchr(out, '/')) && strcmp(cut, "/default") == 0)
        *cut = '\0'; /* terraform-versions/default: one name for E18 and E19 */
}

static cJSON *rule_view(const fault_rule *r)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "route", r->route);
    cJSON_AddNumberToObject(o, "status", r->status);
    cJSON_AddNumberToObject(o, "times", (double)r->times);
    cJSON_AddStringToObject(o, "when", r->when == FAULT_AFTER ? "after" : "before");
    if (r->task_id)
        cJSON_AddNumberToObject(o, "task_id", (double)r->task_id);
    else
        cJSON_AddNullToObject(o, "task_id");
    cJSON_AddNumberToObject(o, "hits", (double)r->hits);
    if (r->times)
        cJSON_AddNumberToObject(o, "left", (double)((uint64_t)r->times > r->hits ? (uint64_t)r->times - r->hits : 0));
    else
        cJSON_AddNullToObject(o, "left");
    return o;
}

int faults_add(faults *f, const cJSON *spec, cJSON **view, char *err, size_t errlen)
{
    const char *route = NULL, *when = "before";
    int64_t status = 0, times = 1;
    uint64_t task_id = 0;
    bool ok = false;
    fault_rule *r;

    if (view)
        *view = NULL;
    if (json_get_string(spec, "route", true, &route, err, errlen) < 0 ||
        json_get_i64(spec, "status", true, &status, err, errlen) < 0 ||
        json_get_i64(spec, "times", false, &times, err, errlen) < 0 ||
        json_get_string(spec, "when", false, &when, err, errlen) < 0 ||
        json_get_u64(spec, "task_id", false, &task_id, err, errlen) < 0)
        return -EINVAL;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        ok = ok || strcmp(route, known[i]) == 0;
    if (!ok) {
        snprintf(err, errlen, "route must be one of data, status, logs/chunk, state, plan-data, plan-json, "
                              "parse-plan-changes, plan-task, lock, unlock, max-version, fields, terraform-lock-hcl, "
                              "terraform-versions, engines");
        return -EINVAL;
    }
    if (status < 400 || status > 599 || times < 0 || (strcmp(when, "before") != 0 && strcmp(when, "after") != 0)) {
        snprintf(err, errlen, status < 400 || status > 599 ? "status must be 400 to 599"
                              : times < 0                  ? "times must be 0 (every call) or more"
                                                           : "when must be before or after");
        return -EINVAL;
    }
    if (f->n >= FAULTS_MAX) {
        snprintf(err, errlen, "too many fault rules (%d)", FAULTS_MAX);
        return -ENOSPC;
    }
    r = &f->rules[f->n++];
    memset(r, 0, sizeof *r);
    snprintf(r->route, sizeof r->route, "%s", route);
    r->status = (int)status;
    r->times = times;
    r->when = strcmp(when, "after") == 0 ? FAULT_AFTER : FAULT_BEFORE;
    r->task_id = task_id;
    if (view)
        *view = rule_view(r);
    return 0;
}

void faults_clear(faults *f)
{
    f->n = 0;
}

int faults_take(faults *f, const char *name, uint64_t task_id, fault_when when)
{
    for (size_t i = 0; i < f->n; i++) {
        fault_rule *r = &f->rules[i];
        if (r->when != when || strcmp(r->route, name) != 0 || (r->task_id && r->task_id != task_id) ||
            (r->times && r->hits >= (uint64_t)r->times))
            continue;
        r->hits++;
        return r->status;
    }
    return 0;
}

cJSON *faults_view(const faults *f)
{
    cJSON *o = cJSON_CreateObject(), *list = o ? cJSON_AddArrayToObject(o, "faults") : NULL;

    if (!list) {
        cJSON_Delete(o);
        return NULL;
    }
    for (size_t i = 0; i < f->n; i++)
        cJSON_AddItemToArray(list, rule_view(&f->rules[i]));
    return o;
}
