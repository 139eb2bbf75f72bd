/* agentapi.c — the agent API of the task side; see agentapi.h and ref §2.4.
 *
 * Each route names its auth flavour (ref §2.2); the gate runs the flavour's checks in upstream's order, answers
 * with the middleware's {"code", "message"} bodies when one fails, and otherwise leaves the task or workspace it
 * resolved in the request scope (req_task, req_ws) for the handler. Handlers decode the body with the strict
 * json.h getters — a field of the wrong type is a 400 "invalid request body: …", as Gin's binding answers — and
 * write upstream's bodies and status codes. Every change a task's status can depend on kicks the dispatcher.
 * Between the gate and the handler, and after the handler, the injected faults of faults.h may replace the answer. */
#include "agentapi.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "faults.h"
#include "iac/digest.h"
#include "iac/fsutil.h"
#include "iac/json.h"
#include "iac/log.h"
#include "route.h"

#define AGENTAPI_ENGINE_MAX (512u << 20)
#define AGENTAPI_FILE_MAX 128

enum { AUTH_NONE, AUTH_POOL, AUTH_TASK, AUTH_WORKSPACE };

struct agentapi {
    tasks    *store;
    registry *reg;
    dispatch *disp;
    faults   *faults;
    char      base_url[128]; /* http://host:port */
    /* the engine (E18, E19, /engines/) */
    char     *engine_zip;
    size_t    engine_len;
    char      engine_file[AGENTAPI_FILE_MAX];
    char      engine_version[64];
    char      engine_sum[DIGEST_SHA256_HEX_LEN + 1];
    int64_t   engine_ns;
    /* request scope, set by the gate */
    dp_task      *req_task;
    dp_workspace *req_ws;
};

/* ---- helpers ---- */

/* Go's strconv.ParseUint(s, 10, 32). */
static bool parse_u32(const char *s, uint32_t *out)
{
    uint64_t v = 0;
    if (!*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > UINT32_MAX)
            return false;
    }
    *out = (uint32_t)v;
    return true;
}

/* RFC 3339 ("2026-11-24T10:00:00.123+08:00", "…Z") to Unix ns. 0 or -1. */
static int parse_rfc3339(const char *s, int64_t *ns)
{
    struct tm tm = { 0 };
    int y, mo, d, h, mi, sec, n = 0;
    int64_t frac = 0, off = 0;

    if (sscanf(s, "%4d-%2d-%2d%*[Tt]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19)
        return -1;
    s += n;
    if (*s == '.') {
        int digits = 0;
        for (s++; *s >= '0' && *s <= '9'; s++, digits++)
            if (digits < 9)
                frac = frac * 10 + (*s - '0');
        if (!digits)
            return -1;
        for (; digits < 9; digits++)
            frac *= 10;
    }
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        int oh, om;
        if (sscanf(s + 1, "%2d:%2d%n", &oh, &om, &n) != 2 || n != 5)
            return -1;
        off = (int64_t)(oh * 3600 + om * 60) * (*s == '-' ? -1 : 1);
        s += 6;
    } else {
        return -1;
    }
    if (*s || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    *ns = ((int64_t)timegm(&tm) - off) * 1000000000 + frac;
    return 0;
}

/* A body for a binding: the object, or NULL with 400 "invalid request body: …" written. */
static cJSON *bind_body(const https_request *req, https_response *res)
{
    char err[256];
    cJSON *o = route_body(req, false, err, sizeof err);
    if (!o)
        route_reply_error(res, 400, "invalid request body: %s", err);
    return o;
}

/* Frees body and writes 400 "invalid request body: <err>". */
static void bind_fail(https_response *res, cJSON *body, const char *err)
{
    cJSON_Delete(body);
    route_reply_error(res, 400, "invalid request body: %s", err);
}

/* A required string binding: present and non-empty (Gin's "required" on a string). */
static int get_required(const cJSON *body, const char *key, const char **out, char *err, size_t errlen)
{
    if (json_get_string(body, key, true, out, err, errlen) < 0)
        return -1;
    if (!**out) {
        snprintf(err, errlen, "%s is required", key);
        return -1;
    }
    return 0;
}

/* ---- E3: the task bundle ---- */

static cJSON *bundle_task(const dp_task *t)
{
    cJSON *o = cJSON_CreateObject();
    char when[ROUTE_TIME_MAX];

    cJSON_AddNumberToObject(o, "id", t->id);
    cJSON_AddStringToObject(o, "workspace_id", t->ws->id);
    cJSON_AddStringToObject(o, "task_type", tasks_type_name(t->type));
    cJSON_AddStringToObject(o, "action", tasks_type_name(t->type));
    cJSON_AddItemToObject(o, "context", cJSON_Duplicate(t->context, true));
    route_time(t->created_ns, when);
    cJSON_AddStringToObject(o, "created_at", when);
    if (t->plan_task_id)
        cJSON_AddNumberToObject(o, "plan_task_id", (double)t->plan_task_id);
    else
        cJSON_AddNullToObject(o, "plan_task_id");
    route_add_str_or_null(o, "agent_id", t->agent_id[0] ? t->agent_id : NULL);
    return o;
}

static cJSON *bundle_workspace(const dp_workspace *ws)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "workspace_id", ws->id);
    cJSON_AddStringToObject(o, "name", ws->name);
    cJSON_AddStringToObject(o, "terraform_version", ws->terraform_version);
    cJSON_AddStringToObject(o, "execution_mode", ws->execution_mode);
    cJSON_AddItemToObject(o, "provider_config", cJSON_Duplicate(ws->provider_config, true));
    cJSON_AddItemToObject(o, "tf_code", cJSON_Duplicate(ws->tf_code, true));
    cJSON_AddItemToObject(o, "system_variables", cJSON_CreateObject());
    cJSON_AddStringToObject(o, "terraform_lock_hcl", ws->terraform_lock_hcl);
    return o;
}

static cJSON *bundle(const dp_task *t)
{
    const dp_workspace *ws = t->ws;
    const dp_state_version *sv = tasks_state_latest(ws);
    cJSON *o = cJSON_CreateObject(), *res = cJSON_CreateArray(), *item;

    if (!o || !res) {
        cJSON_Delete(o);
        cJSON_Delete(res);
        return NULL;
    }
    cJSON_AddItemToObject(o, "task", bundle_task(t));
    cJSON_AddItemToObject(o, "workspace", bundle_workspace(ws));
    cJSON_ArrayForEach(item, ws->resources) /* only active resources (ref E3) */
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(item, "is_active")))
            cJSON_AddItemToArray(res, cJSON_Duplicate(item, true));
    cJSON_AddItemToObject(o, "resources", res);
    cJSON_AddItemToObject(o, "variables", cJSON_Duplicate(ws->variables, true));
    cJSON_AddItemToObject(o, "outputs", cJSON_Duplicate(ws->outputs, true));
    cJSON_AddNullToObject(o, "remote_data");
    cJSON_AddItemToObject(o, "module_versions", cJSON_CreateObject());
    if (sv) {
        cJSON *s = cJSON_CreateObject();
        cJSON_AddNumberToObject(s, "version", (double)sv->version);
        cJSON_AddItemToObject(s, "content", cJSON_Duplicate(sv->content, true));
        cJSON_AddStringToObject(s, "checksum", sv->checksum);
        cJSON_AddNumberToObject(s, "size", (double)sv->size);
        cJSON_AddItemToObject(o, "state_version", s);
    }
    return o;
}

static void h_task_data(void *ctx, const https_request *req, https_response *res, const char *param)
{
    agentapi *a = ctx;
    (void)req;
    (void)param;
    route_reply_json(res, 200, bundle(a->req_task));
}

/* ---- E4: plan artefacts for an apply ---- */

/* ref E4 "task": optional keys omitted when absent (never null); the three other snapshot columns always present,
 * a NULL column read as {} as upstream's scanner does. */
static cJSON *plan_task_view(agentapi *a, const dp_task *t, const cJSON *snap_resources, const cJSON *snap_vars)
{
    cJSON *o = cJSON_CreateObject(), *ctx = cJSON_Duplicate(t->context, true);
    char when[ROUTE_TIME_MAX];
    const reg_agent *ag = t->agent_id[0] ? registry_agent_find(a->reg, t->agent_id) : NULL;

    if (!o || !ctx) {
        cJSON_Delete(o);
        cJSON_Delete(ctx);
        return NULL;
    }
    cJSON_AddNumberToObject(o, "id", t->id);
    cJSON_AddStringToObject(o, "workspace_id", t->ws->id);
    cJSON_AddStringToObject(o, "task_type", tasks_type_name(t->type));
    route_time(t->created_ns, when);
    cJSON_AddStringToObject(o, "created_at", when);
    cJSON_DeleteItemFromObjectCaseSensitive(ctx, "_snapshot_resources");
    cJSON_DeleteItemFromObjectCaseSensitive(ctx, "_snapshot_variables");
    cJSON_AddItemToObject(ctx, "_snapshot_resources",
                          snap_resources ? cJSON_Duplicate(snap_resources, true) : cJSON_CreateNull());
    cJSON_AddItemToObject(ctx, "_snapshot_variables",
                          snap_vars ? cJSON_Duplicate(snap_vars, true) : cJSON_CreateArray());
    cJSON_AddItemToObject(o, "context", ctx);
    if (t->plan_task_id)
        cJSON_AddNumberToObject(o, "plan_task_id", (double)t->plan_task_id);
    if (t->agent_id[0])
        cJSON_AddStringToObject(o, "agent_id", t->agent_id);
    if (ag)
        cJSON_AddStringToObject(o, "agent_name", ag->name);
    if (t->plan_hash && *t->plan_hash)
        cJSON_AddStringToObject(o, "plan_hash", t->plan_hash);
    if (t->snap_created_ns) {
        route_time(t->snap_created_ns, when);
        cJSON_AddStringToObject(o, "snapshot_created_at", when);
    }
    cJSON_AddItemToObject(o, "snapshot_resource_versions", t->snap_resource_versions
                                                                ? cJSON_Duplicate(t->snap_resource_versions, true)
                                                                : cJSON_CreateObject());
    cJSON_AddItemToObject(o, "snapshot_variables",
                          !t->snap_variables ? cJSON_CreateObject()
                          : snap_vars        ? cJSON_Duplicate(snap_vars, true)
                                             : cJSON_CreateArray());
    cJSON_AddItemToObject(o, "snapshot_provider_config", t->snap_provider_config
                                                              ? cJSON_Duplicate(t->snap_provider_config, true)
                                                              : cJSON_CreateObject());
    return o;
}

static void h_plan_task(void *ctx, const https_request *req, https_response *res, const char *param)
{
    agentapi *a = ctx;
    const dp_task *t = a->req_task;
    cJSON *resources = tasks_snapshot_resources(t), *vars = tasks_snapshot_variables(t);
    cJSON *o = cJSON_CreateObject(), *task = plan_task_view(a, t, resources, vars);
    char *b64 = NULL;

    (void)req;
    (void)param;
    if (t->plan_data_len && (b64 = malloc(digest_base64_encoded_len(t->plan_data_len))))
        digest_base64_encode(t->plan_data, t->plan_data_len, b64);
    if (!o || !task || !vars || (t->plan_data_len && !b64)) {
        cJSON_Delete(o);
        cJSON_Delete(task);
        cJSON_Delete(resources);
        cJSON_Delete(vars);
        free(b64);
        https_reply_error(res, 500, "out of memory");
        return;
    }
    cJSON_AddItemToObject(o, "task", task);
    cJSON_AddItemToObject(o, "snapshot_resources", resources ? resources : cJSON_CreateNull());
    if (b64)
        cJSON_AddStringToObject(o, "plan_data", b64);
    cJSON_Delete(vars);
    free(b64);
    route_reply_json(res, 200, o);
}

/* ---- E5: status ---- */

static int decode_status(const cJSON *b, tasks_status_update *u, char *err, size_t errlen)
{
    const char *completed = NULL;

    memset(u, 0, sizeof *u);
    if (get_required(b, "status", &u->status, err, errlen) < 0 ||
        json_get_string(b, "stage", false, &u->stage, err, errlen) < 0 ||
        json_get_string(b, "error_message", false, &u->error_message, err, errlen) < 0 ||
        json_get_string(b, "plan_hash", false, &u->plan_hash, err, errlen) < 0 ||
        json_get_string(b, "plan_output", false, &u->plan_output, err, errlen) < 0 ||
        json_get_string(b, "apply_output", false, &u->apply_output, err, errlen) < 0 ||
        json_get_i64(b, "changes_add", false, &u->changes_add, err, errlen) < 0 ||
        json_get_i64(b, "changes_change", false, &u->changes_change, err, errlen) < 0 ||
        json_get_i64(b, "changes_destroy", false, &u->changes_destroy, err, errlen) < 0 ||
        json_get_i64(b, "duration", false, &u->duration, err, errlen) < 0 ||
        json_get_object(b, "context", false, &u->context, err, errlen) < 0 ||
        json_get_string(b, "completed_at", false, &completed, err, errlen) < 0)
        return -1;
    int rc = json_get_u64(b, "plan_task_id", false, &u->plan_task_id, err, errlen);
    if (rc < 0)
        return -1;
    u->has_plan_task_id = rc == 0;
    if (completed) {
        if (parse_rfc3339(completed, &u->completed_at_ns) < 0) {
            snprintf(err, errlen, "completed_at: not an RFC 3339 time");
            return -1;
        }
        u->has_completed_at = true;
    }
    u->plan_output_len = u->plan_output ? strlen(u->plan_output) : 0;
    u->apply_output_len = u->apply_output ? strlen(u->apply_output) : 0;
    return 0;
}

static void h_task_status(void *ctx, const https_request *req, https_response *res, const char *param)
{
    agentapi *a = ctx;
    dp_task *t = a->req_task;
    tasks_status_update u;
    char err[256];
    cJSON *body, *o, *e;
    int rc;

    (void)param;
    if (!(body = bind_body(req, res)))
        return;
    if (decode_status(body, &u, err, sizeof err) < 0) {
        bind_fail(res, body, err);
        return;
    }
    char was_status[TASKS_WORD_MAX], was_stage[TASKS_WORD_MAX];
    snprintf(was_status, sizeof was_status, "%s", t->status);
    snprintf(was_stage, sizeof was_stage, "%s", t->stage);
    rc = tasks_update_status(t, &u, route_now_ns());
    if (rc == -ECANCELED) {
        log_info("agentapi", "task %u: status %s rejected: the task was cancelled", t->id, u.status);
        cJSON_Delete(body);
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "error", "task has been cancelled, status update rejected");
        cJSON_AddStringToObject(o, "current_status", "cancelled");
        route_reply_json(res, 409, o);
        return;
    }
    if (rc < 0) {
        cJSON_Delete(body);
        route_reply_error(res, 500, "failed to update task: %s", rc == -ERANGE ? "value too long" : strerror(-rc));
        return;
    }
    if ((e = tasks_event(t, route_now_ns(), "status"))) {
        cJSON_AddStringToObject(e, "status", t->status);
        cJSON_AddStringToObject(e, "stage", t->stage);
    }
    log_info("agentapi", "task %u: status %s, stage %s", t->id, t->status, t->stage);
    /* A running task put back in the queue by its agent (DESIGN §4.2 rejection: a plan to pending, an apply to
     * apply_pending): the dispatcher must not hand it straight back to the same agent. */
    if (strcmp(was_status, "running") == 0 &&
        (strcmp(t->status, "pending") == 0 ||
         (strcmp(t->status, "apply_pending") == 0 && strcmp(was_stage, "applying") == 0)))
        dispatch_returned(a->disp, t);
    cJSON_Delete(body);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "message", "task status updated");
    cJSON_AddNumberToObject(o, "task_id", t->id);
    cJSON_AddStringToObject(o, "status", t->status);
    route_reply_json(res, 200, o);
    dispatch_kick(a->disp);
}

/* ---- E6: log chunk ---- */

static void h_log_chunk(void *ctx, const https_request *req, https_response *res, const char *param)
{
    agentapi *a = ctx;
    const char *phase, *content, *checksum = NULL;
    int64_t offset = 0;
    char err[256];
    cJSON *body, *o;
    size_t len;
    int rc;

    (void)param;
    if (!(body = bind_body(req, res)))
        return;
    if (get_required(body, "phase", &phase, err, sizeof err) < 0 ||
        get_required(body, "content", &content, err, sizeof err) < 0 ||
        json_get_i64(body, "offset", false, &offset, err, sizeof err) < 0 ||
        json_get_string(body, "checksum", false, &checksum, err, sizeof err) < 0) {
        bind_fail(res, body, err);
        return;
    }
    len = strlen(content);
    rc = tasks_log_chunk(a->req_task, phase, content, len, offset, route_now_ns());
    cJSON_Delete(body);
    if (rc < 0) {
        route_reply_error(res, 500, "failed to save log chunk: %s", strerror(-rc));
        return;
    }
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "ok");
    cJSON_AddNumberToObject(o, "next_offset", (double)(offset + (int64_t)len));
    cJSON_AddNumberToObject(o, "saved_bytes", (double)len);
    route_reply_json(res, 200, o);
}

/* ---- E7: state ---- */

static void h_state(void *ctx, const https_request *req, https_response *res, const char *param)
{
    agentapi *a = ctx;
    dp_task *t = a->req_task;
    const cJSON *content;
    const char *checksum;
    int64_t size = 0;
    uint64_t version;
    char err[256];
    cJSON *body, *o, *e;

    (void)param;
    if (!(body = bind_body(req, res)))
        return;
    if (json_get_object(body, "content", true, &content, err, sizeof err) < 0 ||
        get_required(body, "checksum", &checksum, err, sizeof err) < 0 ||
        json_get_i64(body, "size", true, &size, err, sizeof err) < 0) {
        bind_fail(res, body, err);
        return;
    }
    if (size == 0) { /* Gin's "required" on a number */
        bind_fail(res, body, "size is required");
        return;
    }
    if (tasks_state_add(t->ws, cJSON_Duplicate(content, true), checksum, size, t->id, route_now_ns(), &version) < 0) {
        cJSON_Delete(body);
        route_reply_error(res, 500, "failed to save state: out of memory");
        return;
    }
    cJSON_Delete(body);
    if ((e = tasks_event(t, route_now_ns(), "state_saved")))
        cJSON_AddNumberToObject(e, "version", (double)version);
    log_info("agentapi", "task %u: state version %" PRIu64 " of workspace %s", t->id, version, t->ws->id);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "message", "state saved successfully");
    cJSON_AddNumberToObject(o, "version", (double)version);
    route_reply_json(res, 200, o);
}

/* ---- E8, E9, E10: plan artefacts ---- */

static bool b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* Where Go's decoder would stop on malformed input: the first byte that cannot be there. */
static size_t b64_bad_offset(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && b64_char(s[i]))
        i++;
    if (i < len && s[i] == '=' && len % 4 == 0 && len - i <= 2 && (len - i == 1 || s[i + 1] == '='))
        return len; /* the padding is fine: the length is what is wrong */
    return i;
}

static void h_plan_data(void *ctx, const https_request *req, https_response *res, const char *param)
{
    agentapi *a = ctx;
    dp_task *t = a->req_task;
    const char *data;
    char err[256];
    uint8_t *bytes;
    size_t n = 0, blen;
    cJSON *body, *o;
    char *clean;
    int rc;

    (void)param;
    if (!(body = bind_body(req, res)))
        return;
    if (get_required(body, "plan_data", &data, err, sizeof err) < 0) {
        bind_fail(res, body, err);
        return;
    }
    /* Go's StdEncoding skips \r and \n. */
    blen = strlen(data);
    if (!(clean = malloc(blen + 1))) {
        cJSON_Delete(body);
        https_reply_error(res, 500, "out of memory");
        return;
    }
    for (size_t i = 0; i < blen; i++)
        if (data[i] != '\r' && data[i] != '\n')
            clean[n++] = data[i];
    cJSON_Delete(body);
    rc = digest_base64_decode(clean, n, &bytes, &blen);
    if (rc < 0) {
        if (rc == -ENOMEM)
            https_reply_error(res, 500, "out of memory");
        else
            route_reply_error(res, 400, "invalid base64 encoding: illegal base64 data at input byte %zu",
                              b64_bad_offset(clean, n));
        free(clean);
        return;
    }
    free(clean);
    free(t->plan_data);
    t->plan_data = bytes;
    t->plan_data_len = blen;
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "message", "plan_data uploaded successfully");
    cJSON_AddNumberToObject(o, "size", (double)blen);
    route_reply_json(res, 200, o);
}

static void h_plan_json(void *ctx, const https_request *req, https_response *res, const char *param)
{
    agentapi *a = ctx;
    const cJSON *plan;
    char err[256];
    cJSON *body, *copy;

    (void)param;
    if (!(body = bind_body(req, res)))
        return;
    if (json_get_object(body, "plan_json", true, &plan, err, sizeof err) < 0) {
        bind_fail(res, body, err);
        return;
    }
    copy = cJSON_Duplicate(plan, true);
    cJSON_Delete(body);
    if (!copy) {
        https_reply_error(res, 500, "out of memory");
        return;
    }
    cJSON_Delete(a->req_task->plan_json);
    a->req_task->plan_json = copy;
    strbuf_puts(&res->body, "{\"message\":\"plan_json uploaded successfully\"}");
}

/* One E10 element as a workspace_task_resource_changes row, or NULL with a message. */
static cJSON *change_row(const dp_task *t, const cJSON *in, int i, int64_t now, char *err, size_t errlen)
{
    static const char *const strings[] = { "resource_address", "resource_type", "resource_name", "module_address",
                                           "action" };
    char tmp[128], when[ROUTE_TIME_MAX];
    const char *v;
    cJSON *row;

    if (!cJSON_IsObject(in)) {
        snprintf(err, errlen, "resource_changes[%d]: expected an object", i);
        return NULL;
    }
    if (!(row = cJSON_CreateObject())) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    cJSON_AddNumberToObject(row, "task_id", t->id);
    cJSON_AddStringToObject(row, "workspace_id", t->ws->id);
    for (size_t k = 0; k < sizeof strings / sizeof strings[0]; k++) {
        v = "";
        if (json_get_string(in, strings[k], false, &v, tmp, sizeof tmp) < 0) {
            snprintf(err, errlen, "resource_changes[%d]: %s", i, tmp);
            cJSON_Delete(row);
            return NULL;
        }
        cJSON_AddStringToObject(row, strings[k], v);
    }
    for (size_t k = 0; k < 2; k++) {
        const char *key = k ? "changes_after" : "changes_before";
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(in, key);
        cJSON_AddItemToObject(row, key, c ? cJSON_Duplicate(c, true) : cJSON_CreateNull());
    }
    route_time(now, when);
    cJSON_AddStringToObject(row, "apply_status", "pending");
    cJSON_AddNullToObject(row, "apply_started_at");
    cJSON_AddNullToObject(row, "apply_completed_at");
    cJSON_AddStringToObject(row, "created_at", when);
    cJSON_AddStringToObject(row, "updated_at", when);
    return row;
}

static void h_plan_changes(void *ctx, const https_request *req, https_response *res, const char *param)
{
    agentapi *a = ctx;
    dp_task *t = a->req_task;
    const cJSON *list = NULL, *item;
    int64_t now = route_now_ns();
    char err[256];
    cJSON *body, *rows, *o;
    int i = 0;

    (void)param;
    if (!(body = bind_body(req, res)))
        return;
    if (json_get_array(body, "resource_changes", false, &list, err, sizeof err) < 0) {
        bind_fail(res, body, err);
        return;
    }
    if (!(rows = cJSON_CreateArray())) {
        cJSON_Delete(body);
        https_reply_error(res, 500, "out of memory");
        return;
    }
    cJSON_ArrayForEach(item, list)
    {
        cJSON *row = change_row(t, item, i++, now, err, sizeof err);
        if (!row) {
            cJSON_Delete(rows);
            bind_fail(res, body, err);
            return;
        }
        cJSON_AddItemToArray(rows, row);
    }
    cJSON_Delete(body);
    cJSON_Delete(t->resource_changes);
    t->resource_changes = rows;
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "message", "resource changes saved");
    cJSON_AddNumberToObject(o, "count", cJSON_GetArraySize(rows));
    route_reply_json(res, 200, o);
}

/* ---- E12–E17: workspace ---- */

static void h_lock(void *ctx, const https_request *req, https_response *res, const char *param)
{
    agentapi *a = ctx;
    const char *user = NULL, *reason = NULL;
    char err[256];
    cJSON *body;

    (void)param;
    body = route_body(req, false, err, sizeof err);
    if (!body || get_required(body, "user_id", &user, err, sizeof err) < 0 ||
        json_get_string(body, "reason", false, &reason, err, sizeof err) < 0) {
        cJSON_Delete(body);
        https_reply_error(res, 400, "invalid request body");
        return;
    }
    if (tasks_workspace_lock(a->req_ws, user, reason, route_now_ns()) < 0) {
        cJSON_Delete(body);
        https_reply_error(res, 500, "failed to lock workspace");
        return;
    }
    log_info("agentapi", "workspace %s locked by %s: %s", a->req_ws->id, user, reason ? reason : "");
    cJSON_Delete(body);
    strbuf_puts(&res->body, "{\"message\":\"workspace locked\"}");
}

static void h_unlock(void *ctx, const https_request *req, https_response *res, const char *param)
{
    agentapi *a = ctx;
    (void)req;
    (void)param;
    tasks_workspace_unlock(a->req_ws);
    log_info("agentapi", "workspace %s unlocked", a->req_ws->id);
    strbuf_puts(&res->body, "{\"message\":\"workspace unlocked\"}");
    dispatch_kick(a->disp);
}

static void h_max_version(void *ctx, const https_request *req, https_response *res, const char *param)
{
    agentapi *a = ctx;
    (void)req;
    (void)param;
    strbuf_printf(&res->body, "{\"max_version\":%" PRIu64 "}", tasks_state_max_version(a->req_ws));
}

/* E15: only three columns may be written. */
static void h_fields(void *ctx, const https_request *req, https_response *res, const char *param)
{
    static const char *const kept[] = { "last_init_hash", "last_init_terraform_version", "terraform_lock_hcl" };
    agentapi *a = ctx;
    dp_workspace *ws = a->req_ws;
    char **columns[] = { &ws->last_init_hash, &ws->last_init_terraform_version, &ws->terraform_lock_hcl };
    char err[256];
    cJSON *body, *updated, *o;

    (void)param;
    if (!(body = bind_body(req, res)))
        return;
    if (!(updated = cJSON_CreateObject())) {
        cJSON_Delete(body);
        https_reply_error(res, 500, "out of memory");
        return;
    }
    for (size_t k = 0; k < sizeof kept / sizeof kept[0]; k++) {
        const char *v = NULL;
        if (json_get_string(body, kept[k], false, &v, err, sizeof err) != 0 || tasks_set_string(columns[k], v) < 0)
            continue;
        cJSON_AddStringToObject(updated, kept[k], v);
    }
    cJSON_Delete(body);
    if (cJSON_GetArraySize(updated) == 0) {
        cJSON_Delete(updated);
        https_reply_error(res, 400, "no valid fields to update");
        return;
    }
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "message", "workspace fields updated");
    cJSON_AddItemToObject(o, "updated_fields", updated);
    route_reply_json(res, 200, o);
}

static void h_lock_hcl_get(void *ctx, const https_request *req, https_response *res, const char *param)
{
    agentapi *a = ctx;
    cJSON *o = cJSON_CreateObject();
    (void)req;
    (void)param;
    cJSON_AddStringToObject(o, "terraform_lock_hcl", a->req_ws->terraform_lock_hcl);
    route_reply_json(res, 200, o);
}

static void h_lock_hcl_put(void *ctx, const https_request *req, https_response *res, const char *param)
{
    agentapi *a = ctx;
    const char *hcl;
    char err[256];
    cJSON *body;

    (void)param;
    if (!(body = bind_body(req, res)))
        return;
    if (get_required(body, "terraform_lock_hcl", &hcl, err, sizeof err) < 0) {
        bind_fail(res, body, err);
        return;
    }
    if (tasks_set_string(&a->req_ws->terraform_lock_hcl, hcl) < 0) {
        cJSON_Delete(body);
        https_reply_error(res, 500, "out of memory");
        return;
    }
    cJSON_Delete(body);
    strbuf_puts(&res->body, "{\"message\":\"terraform lock hcl saved successfully\"}");
}

/* ---- E18, E19 and the engine download ---- */

static cJSON *version_row(const agentapi *a)
{
    cJSON *o = cJSON_CreateObject(), *v = cJSON_CreateObject();
    char url[sizeof a->base_url + sizeof "/engines/" + AGENTAPI_FILE_MAX], when[ROUTE_TIME_MAX];

    snprintf(url, sizeof url, "%s/engines/%s", a->base_url, a->engine_file);
    route_time(a->engine_ns, when);
    cJSON_AddNumberToObject(v, "id", 1);
    cJSON_AddStringToObject(v, "version", a->engine_version);
    cJSON_AddStringToObject(v, "download_url", url);
    cJSON_AddStringToObject(v, "checksum", a->engine_sum);
    cJSON_AddBoolToObject(v, "enabled", true);
    cJSON_AddBoolToObject(v, "deprecated", false);
    cJSON_AddBoolToObject(v, "is_default", true);
    cJSON_AddStringToObject(v, "created_at", when);
    cJSON_AddStringToObject(v, "updated_at", when);
    cJSON_AddItemToObject(o, "version", v);
    return o;
}

static void h_version_default(void *ctx, const https_request *req, https_response *res, const char *param)
{
    agentapi *a = ctx;
    (void)req;
    (void)param;
    if (!a->engine_zip) {
        https_reply_error(res, 404, "no default terraform version configured");
        return;
    }
    route_reply_json(res, 200, version_row(a));
}

static void h_version(void *ctx, const https_request *req, https_response *res, const char *version)
{
    agentapi *a = ctx;
    (void)req;
    if (!a->engine_zip || strcmp(version, a->engine_version) != 0) {
        route_reply_error(res, 404, "terraform version %s not found or not enabled", version);
        return;
    }
    route_reply_json(res, 200, version_row(a));
}

static void h_engine_file(void *ctx, const https_request *req, https_response *res, const char *file)
{
    agentapi *a = ctx;
    (void)req;
    if (!a->engine_zip || strcmp(file, a->engine_file) != 0) {
        https_reply_error(res, 404, "not found");
        return;
    }
    res->content_type = "application/zip";
    strbuf_append(&res->body, a->engine_zip, a->engine_len);
    log_info("agentapi", "engine %s sent (%zu bytes)", a->engine_file, a->engine_len);
}

/* ---- routing ---- */

static const route routes[] = {
    { "GET", "/api/v1/agents/tasks/*/data", AUTH_TASK, h_task_data },
    { "GET", "/api/v1/agents/tasks/*/plan-task", AUTH_TASK, h_plan_task },
    { "PUT", "/api/v1/agents/tasks/*/status", AUTH_TASK, h_task_status },
    { "POST", "/api/v1/agents/tasks/*/logs/chunk", AUTH_TASK, h_log_chunk },
    { "POST", "/api/v1/agents/tasks/*/state", AUTH_TASK, h_state },
    { "POST", "/api/v1/agents/tasks/*/plan-data", AUTH_TASK, h_plan_data },
    { "POST", "/api/v1/agents/tasks/*/plan-json", AUTH_TASK, h_plan_json },
    { "POST", "/api/v1/agents/tasks/*/parse-plan-changes", AUTH_TASK, h_plan_changes },
    { "POST", "/api/v1/agents/workspaces/*/lock", AUTH_WORKSPACE, h_lock },
    { "POST", "/api/v1/agents/workspaces/*/unlock", AUTH_WORKSPACE, h_unlock },
    { "GET", "/api/v1/agents/workspaces/*/state/max-version", AUTH_WORKSPACE, h_max_version },
    { "PATCH", "/api/v1/agents/workspaces/*/fields", AUTH_WORKSPACE, h_fields },
    { "GET", "/api/v1/agents/workspaces/*/terraform-lock-hcl", AUTH_WORKSPACE, h_lock_hcl_get },
    { "PUT", "/api/v1/agents/workspaces/*/terraform-lock-hcl", AUTH_WORKSPACE, h_lock_hcl_put },
    { "GET", "/api/v1/agents/terraform-versions/default", AUTH_POOL, h_version_default },
    { "GET", "/api/v1/agents/terraform-versions/*", AUTH_POOL, h_version },
    { "GET", "/engines/*", AUTH_NONE, h_engine_file },
};

/* ref §2.2: the flavour's checks in upstream's order. false when it has answered. */
static bool gate(agentapi *a, int flavour, const https_request *req, https_response *res, const char *param)
{
    const char *pool = registry_pool(a->reg), *denied;
    char msg[sizeof "Pool does not have access to workspace " + ROUTE_PARAM_MAX];
    uint32_t id;

    a->req_task = NULL;
    a->req_ws = NULL;
    if (flavour == AUTH_NONE)
        return true;
    if ((denied = api_pool_auth(a->reg, req->authorization))) {
        route_reply_code(res, 401, denied);
        return false;
    }
    if (flavour == AUTH_TASK) {
        if (!parse_u32(param, &id)) {
            route_reply_code(res, 400, "Invalid task ID format");
            return false;
        }
        if (!(a->req_task = tasks_task_find(a->store, id))) {
            route_reply_code(res, 404, "Task not found");
            return false;
        }
        if (strcmp(a->req_task->ws->pool_id, pool) != 0) {
            route_reply_code(res, 403, "Pool does not have access to this task's workspace");
            return false;
        }
        a->req_ws = a->req_task->ws;
    } else if (flavour == AUTH_WORKSPACE) {
        a->req_ws = tasks_workspace_find(a->store, param);
        if (!a->req_ws || strcmp(a->req_ws->pool_id, pool) != 0) {
            snprintf(msg, sizeof msg, "Pool does not have access to workspace %s", param);
            route_reply_code(res, 403, msg);
            return false;
        }
    }
    return true;
}

/* An injected failure (faults.h): the status with {"error": "injected fault: …"}. */
static void reply_fault(https_response *res, const char *name, int status, const char *when)
{
    log_info("agentapi", "%s: injected fault %d (%s the handler)", name, status, when);
    route_reply_error(res, status, "injected fault: %s answers %d (%s the handler)", name, status, when);
}

bool agentapi_handle(void *arg, const https_request *req, https_response *res)
{
    agentapi *a = arg;
    char param[ROUTE_PARAM_MAX];
    bool known;
    const route *r = route_find(routes, sizeof routes / sizeof routes[0], req, param, sizeof param, &known);

    if (!r) {
        if (known)
            https_reply_error(res, 405, "method not allowed");
        return known;
    }
    if (gate(a, r->tag, req, res, param)) {
        char name[64];
        uint64_t task_id = a->req_task ? a->req_task->id : 0;
        int status;
        faults_route_name(r->pattern, name, sizeof name);
        if ((status = faults_take(a->faults, name, task_id, FAULT_BEFORE))) {
            reply_fault(res, name, status, "before");
        } else {
            r->fn(a, req, res, param);
            if ((status = faults_take(a->faults, name, task_id, FAULT_AFTER))) {
                strbuf_free(&res->body);
                res->content_type = NULL;
                reply_fault(res, name, status, "after");
            }
        }
    }
    a->req_task = NULL;
    a->req_ws = NULL;
    return true;
}

/* ---- lifetime ---- */

agentapi *agentapi_new(tasks *store, registry *reg, dispatch *disp, faults *faults)
{
    agentapi *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->store = store;
    a->reg = reg;
    a->disp = disp;
    a->faults = faults;
    snprintf(a->base_url, sizeof a->base_url, "http://127.0.0.1");
    return a;
}

static bool file_name_ok(const char *s)
{
    if (!*s || strlen(s) >= AGENTAPI_FILE_MAX)
        return false;
    for (; *s; s++)
        if (!(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z') && !(*s >= '0' && *s <= '9') && *s != '-' &&
            *s != '_' && *s != '.')
            return false;
    return true;
}

int agentapi_engine_check(const char *zip_path, char *err, size_t errlen)
{
    const char *base = strrchr(zip_path, '/');
    struct stat st;

    base = base ? base + 1 : zip_path;
    if (!file_name_ok(base)) {
        snprintf(err, errlen, "the file name must be 1 to %d letters, digits, '.', '_' or '-'", AGENTAPI_FILE_MAX - 1);
        return -1;
    }
    if (stat(zip_path, &st) < 0 || access(zip_path, R_OK) < 0) {
        snprintf(err, errlen, "must be a readable file (%s)", strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "must be a readable file (not a regular file)");
        return -1;
    }
    if ((uint64_t)st.st_size > AGENTAPI_ENGINE_MAX) {
        snprintf(err, errlen, "larger than %u MiB", AGENTAPI_ENGINE_MAX >> 20);
        return -1;
    }
    return 0;
}

int agentapi_set_engine(agentapi *a, const char *zip_path, const char *version, char *err, size_t errlen)
{
    const char *base = strrchr(zip_path, '/');
    char *data;
    size_t len;
    int rc;

    base = base ? base + 1 : zip_path;
    if (!file_name_ok(base)) {
        snprintf(err, errlen, "the file name must be 1 to %d letters, digits, '.', '_' or '-'", AGENTAPI_FILE_MAX - 1);
        return -EINVAL;
    }
    if ((rc = fs_read_file(zip_path, AGENTAPI_ENGINE_MAX, &data, &len)) < 0) {
        snprintf(err, errlen, "cannot read it: %s", strerror(-rc));
        return rc;
    }
    free(a->engine_zip);
    a->engine_zip = data;
    a->engine_len = len;
    snprintf(a->engine_file, sizeof a->engine_file, "%s", base);
    snprintf(a->engine_version, sizeof a->engine_version, "%s", version);
    digest_sha256_hex(data, len, a->engine_sum);
    a->engine_ns = route_now_ns();
    return 0;
}

void agentapi_set_address(agentapi *a, const char *host, int port)
{
    /* A wildcard address is not one to connect to: advertise loopback then. */
    if (strcmp(host, "0.0.0.0") == 0)
        host = "127.0.0.1";
    else if (strcmp(host, "::") == 0)
        host = "::1";
    if (strchr(host, ':'))
        snprintf(a->base_url, sizeof a->base_url, "http://[%s]:%d", host, port);
    else
        snprintf(a->base_url, sizeof a->base_url, "http://%s:%d", host, port);
}

void agentapi_free(agentapi *a)
{
    if (!a)
        return;
    free(a->engine_zip);
    free(a);
}
