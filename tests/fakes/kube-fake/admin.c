/* admin.c — the admin API (see admin.h): a table of routes, each a small handler. */
#include "admin.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iac/json.h"
#include "iac/jsonw.h"
#include "iac/log.h"

static void reply_json(https_response *res, int status, cJSON *doc)
{
    if (!doc) {
        https_reply_error(res, 500, "out of memory");
        return;
    }
    res->status = status;
    strbuf_reset(&res->body);
    jsonw_write(&res->body, doc, 0);
    cJSON_Delete(doc);
}

static cJSON *deny_doc(const rbac *rb)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(doc, "deny");
    for (size_t i = 0; i < rbac_count(rb); i++)
        cJSON_AddItemToArray(arr, cJSON_CreateString(rbac_rule(rb, i)));
    return doc;
}

static void rbac_get(admin *ad, const https_request *req, https_response *res, const char *ns, const char *name)
{
    (void)req, (void)ns, (void)name;
    reply_json(res, 200, deny_doc(ad->rb));
}

/* Replaces the deny list: every rule is checked before any is applied, so a bad list changes nothing. */
static void rbac_set(admin *ad, const https_request *req, https_response *res, const char *ns, const char *name)
{
    (void)ns, (void)name;
    char err[256];
    const cJSON *deny, *it;
    cJSON *doc = json_parse_object(req->body, req->body_len, err, sizeof err);
    if (!doc || json_get_array(doc, "deny", true, &deny, err, sizeof err) < 0) {
        cJSON_Delete(doc);
        https_reply_error(res, 400, err);
        return;
    }
    int n = 0;
    cJSON_ArrayForEach(it, deny)
    {
        if (!cJSON_IsString(it)) {
            https_reply_error(res, 400, "deny: every rule must be a string such as \"patch:deployments/scale\"");
            cJSON_Delete(doc);
            return;
        }
        if (rbac_check_rule(it->valuestring, err, sizeof err) < 0 || ++n > RBAC_MAX_RULES) {
            if (n > RBAC_MAX_RULES)
                snprintf(err, sizeof err, "at most %d deny rules", RBAC_MAX_RULES);
            https_reply_error(res, 400, err);
            cJSON_Delete(doc);
            return;
        }
    }
    rbac_clear(ad->rb);
    cJSON_ArrayForEach(it, deny) rbac_deny(ad->rb, it->valuestring, err, sizeof err);
    cJSON_Delete(doc);
    log_info("admin", "deny list replaced: %zu rule(s)", rbac_count(ad->rb));
    reply_json(res, 200, deny_doc(ad->rb));
}

static void pods_get(admin *ad, const https_request *req, https_response *res, const char *ns, const char *name)
{
    (void)req, (void)ns, (void)name;
    reply_json(res, 200, kubelet_admin_json(ad->k));
}

static void healthz(admin *ad, const https_request *req, https_response *res, const char *ns, const char *name)
{
    (void)ad, (void)req, (void)ns, (void)name;
    strbuf_puts(&res->body, "{\"ok\":true}");
}

/* Signal names a test may use, besides numbers. */
static const struct {
    const char *name;
    int         sig;
} signals[] = { { "TERM", SIGTERM }, { "KILL", SIGKILL }, { "INT", SIGINT }, { "HUP", SIGHUP },
                { "STOP", SIGSTOP }, { "CONT", SIGCONT }, { "USR1", SIGUSR1 }, { "USR2", SIGUSR2 } };

static void pod_signal(admin *ad, const https_request *req, https_response *res, const char *ns, const char *name)
{
    char err[256];
    cJSON *doc = json_parse_object(req->body, req->body_len, err, sizeof err);
    const cJSON *s = doc ? cJSON_GetObjectItemCaseSensitive(doc, "signal") : NULL;
    int sig = 0;
    if (cJSON_IsNumber(s) && s->valuedouble >= 1 && s->valuedouble <= 64)
        sig = (int)s->valuedouble;
    for (size_t i = 0; cJSON_IsString(s) && i < sizeof signals / sizeof signals[0]; i++)
        if (strcmp(s->valuestring, signals[i].name) == 0)
            sig = signals[i].sig;
    cJSON_Delete(doc);
    if (!sig) {
        https_reply_error(res, 400, "signal: a number from 1 to 64 or one of TERM, KILL, INT, HUP, STOP, CONT, USR1, "
                                    "USR2");
        return;
    }
    kobj *o = store_find(ad->st, RES_PODS, ns, name);
    if (!o) {
        https_reply_error(res, 404, "no such pod");
        return;
    }
    if (kubelet_signal(ad->k, o, sig) < 0) {
        https_reply_error(res, 409, "the pod has no running process");
        return;
    }
    strbuf_printf(&res->body, "{\"signalled\":%d}", sig);
}

/* A compaction now: every continue token issued so far is expired (its list answers 410 Expired). With
 * "expire_next": N, so is each of the next N tokens presented, whenever it was issued (-1: every one until armed
 * again; 0: none) — a test cannot time a compaction between two chunks of someone else's list. */
static void compact(admin *ad, const https_request *req, https_response *res, const char *ns, const char *name)
{
    (void)ns, (void)name;
    char err[256];
    int64_t n = store_compact_armed(ad->st);
    cJSON *doc = req->body_len ? json_parse_object(req->body, req->body_len, err, sizeof err) : cJSON_CreateObject();
    int rc = doc ? json_get_i64(doc, "expire_next", false, &n, err, sizeof err) : -1;
    cJSON_Delete(doc);
    if (rc < 0 || n < -1 || n > INT32_MAX) {
        https_reply_error(res, 400, rc < 0 ? err : "expire_next: a whole number from -1 (every token) up");
        return;
    }
    store_compact(ad->st);
    store_compact_arm(ad->st, (int)n);
    log_info("admin", "compacted at resourceVersion %" PRIu64 "; the next %d continue tokens expire",
             store_compacted(ad->st), store_compact_armed(ad->st));
    strbuf_printf(&res->body, "{\"compacted\":\"%" PRIu64 "\",\"expire_next\":%d}", store_compacted(ad->st),
                  store_compact_armed(ad->st));
}

typedef void (*admin_fn)(admin *ad, const https_request *req, https_response *res, const char *ns,
                         const char *name);

/* Patterns: "*" takes one segment (a namespace, then a name). */
static const struct {
    const char *method;
    const char *pattern;
    admin_fn    fn;
} routes[] = {
    { "GET", "/admin/rbac", rbac_get },       { "POST", "/admin/rbac", rbac_set },
    { "PUT", "/admin/rbac", rbac_set },       { "GET", "/admin/pods", pods_get },
    { "GET", "/admin/healthz", healthz },     { "POST", "/admin/pods/*/*/signal", pod_signal },
    { "POST", "/admin/compact", compact },
};

/* Matches path against pattern, capturing up to two "*" segments. */
static bool match(const char *pattern, const char *path, char caps[2][STORE_NAME_MAX])
{
    int c = 0;
    while (*pattern && *path) {
        if (*pattern == '*') {
            size_t n = strcspn(path, "/");
            if (n == 0 || n >= STORE_NAME_MAX || c == 2)
                return false;
            memcpy(caps[c], path, n);
            caps[c++][n] = '\0';
            path += n;
            pattern++;
        } else if (*pattern++ != *path++) {
            return false;
        }
    }
    return !*pattern && (!*path || strcmp(path, "/") == 0);
}

bool admin_path(const char *path) { return strncmp(path, "/admin/", 7) == 0 || strcmp(path, "/admin") == 0; }

void admin_handle(const https_request *req, https_response *res, void *arg)
{
    admin *ad = arg;
    char caps[2][STORE_NAME_MAX] = { "", "" };
    bool known = false;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (!match(routes[i].pattern, req->path, caps))
            continue;
        known = true;
        if (strcmp(routes[i].method, req->method) == 0) {
            routes[i].fn(ad, req, res, caps[0], caps[1]);
            return;
        }
    }
    https_reply_error(res, known ? 405 : 404, known ? "method not allowed" : "no such admin route");
}
