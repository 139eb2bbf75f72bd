/* adminapi.c — the admin routes of the task side; see adminapi.h and README.md.
 *
 * Views are built fresh on every request from the store. Outputs are shown by size, SHA-256 and their last
 * ADMIN_TAIL bytes (the whole text is one route away), so polling a task with a 200 MB log stays cheap: the digest
 * is cached by the blob until the next write. */
#include "adminapi.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iac/digest.h"
#include "iac/json.h"
#include "iac/log.h"
#include "route.h"

#define ADMIN_TAIL 4096

struct adminapi {
    tasks    *store;
    dispatch *disp;
    faults   *faults;
};

/* ---- views ---- */

/* One state version without its content: {"version", "task_id", "size", "checksum", "created_at"}. */
static cJSON *state_row(const dp_state_version *v)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "version", (double)v->version);
    if (v->task_id)
        cJSON_AddNumberToObject(o, "task_id", v->task_id);
    else
        cJSON_AddNullToObject(o, "task_id");
    cJSON_AddNumberToObject(o, "size", (double)v->size);
    cJSON_AddStringToObject(o, "checksum", v->checksum);
    route_add_time(o, "created_at", v->created_ns);
    return o;
}

static cJSON *workspace_view(tasks *s, const dp_workspace *ws)
{
    cJSON *o = cJSON_CreateObject(), *ids = cJSON_CreateArray();

    cJSON_AddStringToObject(o, "workspace_id", ws->id);
    cJSON_AddStringToObject(o, "name", ws->name);
    cJSON_AddStringToObject(o, "terraform_version", ws->terraform_version);
    cJSON_AddStringToObject(o, "execution_mode", ws->execution_mode);
    cJSON_AddStringToObject(o, "pool_id", ws->pool_id);
    route_add_time(o, "created_at", ws->created_ns);
    cJSON_AddBoolToObject(o, "is_locked", ws->is_locked);
    route_add_str_or_null(o, "locked_by", ws->locked_by);
    route_add_time(o, "locked_at", ws->locked_at_ns);
    route_add_str_or_null(o, "lock_reason", ws->lock_reason);
    cJSON_AddNumberToObject(o, "state_versions", (double)ws->nstates);
    cJSON_AddNumberToObject(o, "max_state_version", (double)tasks_state_max_version(ws));
    cJSON *states = cJSON_AddArrayToObject(o, "states");
    for (size_t i = 0; states && i < ws->nstates; i++)
        cJSON_AddItemToArray(states, state_row(&ws->states[i]));
    cJSON_AddStringToObject(o, "terraform_lock_hcl", ws->terraform_lock_hcl);
    route_add_str_or_null(o, "last_init_hash", ws->last_init_hash);
    route_add_str_or_null(o, "last_init_terraform_version", ws->last_init_terraform_version);
    cJSON_AddItemToObject(o, "tf_code", cJSON_Duplicate(ws->tf_code, true));
    cJSON_AddItemToObject(o, "provider_config", cJSON_Duplicate(ws->provider_config, true));
    cJSON_AddItemToObject(o, "resources", cJSON_Duplicate(ws->resources, true));
    cJSON_AddItemToObject(o, "variables", cJSON_Duplicate(ws->variables, true));
    cJSON_AddItemToObject(o, "outputs", cJSON_Duplicate(ws->outputs, true));
    for (size_t i = 0; i < tasks_task_count(s); i++) {
        const dp_task *t = tasks_task_at(s, i);
        if (t->ws == ws)
            cJSON_AddItemToArray(ids, cJSON_CreateNumber(t->id));
    }
    cJSON_AddItemToObject(o, "tasks", ids);
    return o;
}

/* "<prefix>_bytes", "<prefix>_sha256", "<prefix>_tail" of one output column. */
static void add_output(cJSON *o, const char *prefix, blob *b)
{
    char key[48], hex[DIGEST_SHA256_HEX_LEN + 1];
    strbuf tail = STRBUF_INIT;

    snprintf(key, sizeof key, "%s_bytes", prefix);
    cJSON_AddNumberToObject(o, key, (double)b->len);
    snprintf(key, sizeof key, "%s_sha256", prefix);
    if (blob_sha256(b, hex) == 0)
        cJSON_AddStringToObject(o, key, hex);
    else
        cJSON_AddNullToObject(o, key);
    snprintf(key, sizeof key, "%s_tail", prefix);
    if (blob_tail(b, ADMIN_TAIL, &tail) == 0)
        cJSON_AddStringToObject(o, key, tail.data ? tail.data : "");
    else
        cJSON_AddNullToObject(o, key);
    strbuf_free(&tail);
}

static cJSON *task_view(dp_task *t)
{
    cJSON *o = cJSON_CreateObject();
    char hex[DIGEST_SHA256_HEX_LEN + 1];

    cJSON_AddNumberToObject(o, "task_id", t->id);
    cJSON_AddStringToObject(o, "workspace_id", t->ws->id);
    cJSON_AddStringToObject(o, "task_type", tasks_type_name(t->type));
    cJSON_AddStringToObject(o, "status", t->status);
    cJSON_AddStringToObject(o, "stage", t->stage);
    route_add_str_or_null(o, "agent_id", t->agent_id[0] ? t->agent_id : NULL);
    cJSON_AddStringToObject(o, "error_message", t->error_message ? t->error_message : "");
    cJSON_AddNumberToObject(o, "changes_add", (double)t->changes_add);
    cJSON_AddNumberToObject(o, "changes_change", (double)t->changes_change);
    cJSON_AddNumberToObject(o, "changes_destroy", (double)t->changes_destroy);
    cJSON_AddStringToObject(o, "plan_hash", t->plan_hash ? t->plan_hash : "");
    if (t->plan_task_id)
        cJSON_AddNumberToObject(o, "plan_task_id", (double)t->plan_task_id);
    else
        cJSON_AddNullToObject(o, "plan_task_id");
    cJSON_AddNumberToObject(o, "duration", (double)t->duration);
    route_add_str_or_null(o, "description", t->description);
    cJSON_AddItemToObject(o, "context", cJSON_Duplicate(t->context, true));
    route_add_time(o, "created_at", t->created_ns);
    route_add_time(o, "started_at", t->started_ns);
    route_add_time(o, "completed_at", t->completed_ns);
    cJSON_AddNumberToObject(o, "retry_count", t->retry_count);
    add_output(o, "plan_output", &t->plan_output);
    add_output(o, "apply_output", &t->apply_output);
    cJSON_AddBoolToObject(o, "has_plan_data", t->plan_data != NULL);
    cJSON_AddNumberToObject(o, "plan_data_bytes", (double)t->plan_data_len);
    if (t->plan_data) {
        digest_sha256_hex(t->plan_data, t->plan_data_len, hex);
        cJSON_AddStringToObject(o, "plan_data_sha256", hex);
    } else {
        cJSON_AddNullToObject(o, "plan_data_sha256");
    }
    cJSON_AddBoolToObject(o, "has_plan_json", t->plan_json != NULL);
    cJSON_AddItemToObject(o, "resource_changes", cJSON_Duplicate(t->resource_changes, true));
    cJSON_AddNumberToObject(o, "log_chunks", (double)t->nchunks);
    cJSON_AddItemToObject(o, "log_chunk_rows", cJSON_Duplicate(t->chunks, true));
    cJSON_AddNumberToObject(o, "live_log_lines", (double)t->live_total);
    cJSON_AddItemToObject(o, "events", cJSON_Duplicate(t->events, true));
    cJSON_AddNumberToObject(o, "events_dropped", (double)t->events_dropped);
    cJSON_AddItemToObject(o, "stages", cJSON_Duplicate(t->stages, true));
    cJSON_AddNumberToObject(o, "stages_dropped", (double)t->stages_dropped);
    /* apply confirmation (ref §6.5) */
    cJSON_AddBoolToObject(o, "apply_confirmed", t->apply_confirmed_by != NULL);
    route_add_str_or_null(o, "apply_confirmed_by", t->apply_confirmed_by);
    route_add_time(o, "apply_confirmed_at", t->apply_confirmed_ns);
    route_add_str_or_null(o, "apply_description", t->apply_description);
    /* the snapshot (ref §6.1), NULL columns as null */
    route_add_time(o, "snapshot_created_at", t->snap_created_ns);
    cJSON_AddItemToObject(o, "snapshot_resource_versions", t->snap_resource_versions
                                                                ? cJSON_Duplicate(t->snap_resource_versions, true)
                                                                : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "snapshot_variables",
                          t->snap_variables ? cJSON_Duplicate(t->snap_variables, true) : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "snapshot_provider_config", t->snap_provider_config
                                                              ? cJSON_Duplicate(t->snap_provider_config, true)
                                                              : cJSON_CreateNull());
    char why[256];
    bool valid = tasks_snapshot_validate(t, why, sizeof why) == 0;
    cJSON_AddBoolToObject(o, "snapshot_valid", valid);
    route_add_str_or_null(o, "snapshot_error", valid ? NULL : why);
    /* the state versions this task saved (E7) */
    cJSON *states = cJSON_AddArrayToObject(o, "state_versions");
    for (size_t i = 0; states && i < t->ws->nstates; i++)
        if (t->ws->states[i].task_id == t->id)
            cJSON_AddItemToArray(states, state_row(&t->ws->states[i]));
    return o;
}

/* ---- workspaces ---- */

static void h_ws_create(void *ctx, const https_request *req, https_response *res, const char *param)
{
    adminapi *a = ctx;
    char err[256];
    dp_workspace *ws;
    cJSON *body;
    int rc;

    (void)param;
    if (!(body = route_body(req, false, err, sizeof err))) {
        route_reply_error(res, 400, "invalid request body: %s", err);
        return;
    }
    rc = tasks_workspace_create(a->store, body, route_now_ns(), &ws, err, sizeof err);
    cJSON_Delete(body);
    if (rc < 0) {
        https_reply_error(res, rc == -EEXIST ? 409 : rc == -EINVAL ? 400 : rc == -ENOSPC ? 507 : 500, err);
        return;
    }
    log_info("admin", "workspace %s created (%d resource(s), %d variable(s), mode %s)", ws->id,
             cJSON_GetArraySize(ws->resources), cJSON_GetArraySize(ws->variables), ws->execution_mode);
    route_reply_json(res, 201, workspace_view(a->store, ws));
}

static void h_ws_list(void *ctx, const https_request *req, https_response *res, const char *param)
{
    adminapi *a = ctx;
    cJSON *o = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(o, "workspaces");
    (void)req;
    (void)param;
    for (size_t i = 0; i < tasks_workspace_count(a->store); i++)
        cJSON_AddItemToArray(list, workspace_view(a->store, tasks_workspace_at(a->store, i)));
    route_reply_json(res, 200, o);
}

/* The workspace of the path, or NULL with a 404. */
static dp_workspace *path_ws(adminapi *a, https_response *res, const char *id)
{
    dp_workspace *ws = tasks_workspace_find(a->store, id);
    if (!ws)
        https_reply_error(res, 404, "workspace not found");
    return ws;
}

static void h_ws_get(void *ctx, const https_request *req, https_response *res, const char *id)
{
    adminapi *a = ctx;
    dp_workspace *ws = path_ws(a, res, id);
    (void)req;
    if (ws)
        route_reply_json(res, 200, workspace_view(a->store, ws));
}

/* Queue a task (ref §6.1: a locked workspace refuses with 423). */
static void h_ws_task(void *ctx, const https_request *req, https_response *res, const char *id)
{
    adminapi *a = ctx;
    dp_workspace *ws = path_ws(a, res, id);
    const char *type_name = NULL, *description = NULL;
    const cJSON *context = NULL;
    tasks_type type;
    char err[256];
    dp_task *t;
    cJSON *body, *o, *e;
    int rc;

    if (!ws)
        return;
    if (!(body = route_body(req, false, err, sizeof err))) {
        route_reply_error(res, 400, "invalid request body: %s", err);
        return;
    }
    if (json_get_string(body, "task_type", true, &type_name, err, sizeof err) < 0 ||
        json_get_string(body, "description", false, &description, err, sizeof err) < 0 ||
        json_get_object(body, "context", false, &context, err, sizeof err) < 0 ||
        tasks_type_parse(type_name, &type) < 0 || type == TASKS_APPLY) {
        cJSON_Delete(body);
        https_reply_error(res, 400, type_name ? "task_type must be plan, plan_and_apply or drift_check" : err);
        return;
    }
    if (ws->is_locked) {
        cJSON_Delete(body);
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "error", "Workspace is locked");
        route_add_str_or_null(o, "locked_by", ws->locked_by);
        route_add_str_or_null(o, "lock_reason", ws->lock_reason);
        route_reply_json(res, 423, o);
        return;
    }
    rc = tasks_task_create(a->store, ws, type, context ? cJSON_Duplicate(context, true) : NULL, description,
                           route_now_ns(), &t);
    cJSON_Delete(body);
    if (rc < 0) {
        https_reply_error(res, rc == -ENOSPC ? 507 : 500, rc == -ENOSPC ? "too many tasks" : "out of memory");
        return;
    }
    if ((e = tasks_event(t, t->created_ns, "created")))
        cJSON_AddStringToObject(e, "task_type", tasks_type_name(type));
    log_info("admin", "task %u (%s) queued for workspace %s", t->id, tasks_type_name(type), ws->id);
    o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "task_id", t->id);
    cJSON_AddStringToObject(o, "workspace_id", ws->id);
    cJSON_AddStringToObject(o, "task_type", tasks_type_name(type));
    cJSON_AddStringToObject(o, "status", t->status);
    route_reply_json(res, 201, o);
    dispatch_kick(a->disp);
}

/* A new state version from a terraform.tfstate document (the body). */
static void h_ws_state_add(void *ctx, const https_request *req, https_response *res, const char *id)
{
    adminapi *a = ctx;
    dp_workspace *ws = path_ws(a, res, id);
    char err[256], hex[DIGEST_SHA256_HEX_LEN + 1];
    uint64_t version;
    cJSON *body;

    if (!ws)
        return;
    if (!(body = route_body(req, false, err, sizeof err))) {
        route_reply_error(res, 400, "invalid request body: %s", err);
        return;
    }
    digest_sha256_hex(req->body, req->body_len, hex);
    if (tasks_state_add(ws, body, hex, (int64_t)req->body_len, 0, route_now_ns(), &version) < 0) {
        https_reply_error(res, 500, "out of memory");
        return;
    }
    log_info("admin", "workspace %s: state version %" PRIu64, ws->id, version);
    strbuf_printf(&res->body, "{\"version\":%" PRIu64 "}", version);
}

static void h_ws_state_get(void *ctx, const https_request *req, https_response *res, const char *id)
{
    adminapi *a = ctx;
    dp_workspace *ws = path_ws(a, res, id);
    const dp_state_version *v;
    cJSON *o;

    (void)req;
    if (!ws)
        return;
    if (!(v = tasks_state_latest(ws))) {
        https_reply_error(res, 404, "no state");
        return;
    }
    o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "version", (double)v->version);
    cJSON_AddStringToObject(o, "checksum", v->checksum);
    cJSON_AddNumberToObject(o, "size", (double)v->size);
    if (v->task_id)
        cJSON_AddNumberToObject(o, "task_id", v->task_id);
    else
        cJSON_AddNullToObject(o, "task_id");
    route_add_time(o, "created_at", v->created_ns);
    cJSON_AddItemToObject(o, "content", cJSON_Duplicate(v->content, true));
    route_reply_json(res, 200, o);
}

static void h_ws_unlock(void *ctx, const https_request *req, https_response *res, const char *id)
{
    adminapi *a = ctx;
    dp_workspace *ws = path_ws(a, res, id);
    (void)req;
    if (!ws)
        return;
    tasks_workspace_unlock(ws);
    log_info("admin", "workspace %s unlocked", ws->id);
    strbuf_puts(&res->body, "{\"unlocked\":true}");
    dispatch_kick(a->disp);
}

/* ---- tasks ---- */

/* The task of the path, or NULL with a 404. */
static dp_task *path_task(adminapi *a, https_response *res, const char *id)
{
    char *end;
    unsigned long long n = strtoull(id, &end, 10);
    dp_task *t = *id >= '0' && *id <= '9' && !*end ? tasks_task_find(a->store, n) : NULL;
    if (!t)
        https_reply_error(res, 404, "task not found");
    return t;
}

static void h_task_list(void *ctx, const https_request *req, https_response *res, const char *param)
{
    adminapi *a = ctx;
    char ws[TASKS_WS_ID_MAX + 1];
    bool filter = https_query_param(req->query, "workspace_id", ws, sizeof ws) == 0;
    cJSON *o = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(o, "tasks");

    (void)param;
    for (size_t i = 0; i < tasks_task_count(a->store); i++) {
        dp_task *t = tasks_task_at(a->store, i);
        if (!filter || strcmp(t->ws->id, ws) == 0)
            cJSON_AddItemToArray(list, task_view(t));
    }
    route_reply_json(res, 200, o);
}

static void h_task_get(void *ctx, const https_request *req, https_response *res, const char *id)
{
    adminapi *a = ctx;
    dp_task *t = path_task(a, res, id);
    (void)req;
    if (t)
        route_reply_json(res, 200, task_view(t));
}

/* ref §6.8 steps 1 and 2 here, the rest in dispatch_cancel(). */
static void cancel(adminapi *a, dp_task *t, const https_request *req, https_response *res)
{
    static const char *const final[] = { "success", "applied", "failed", "cancelled" };
    char force[8];
    cJSON *o;

    for (size_t i = 0; i < sizeof final / sizeof final[0]; i++)
        if (strcmp(t->status, final[i]) == 0) {
            https_reply_error(res, 400, "Cannot cancel completed, failed or already cancelled tasks");
            return;
        }
    if (strcmp(t->stage, "applying") == 0 &&
        !(https_query_param(req->query, "force", force, sizeof force) == 0 && strcmp(force, "true") == 0)) {
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "error", "Task is applying; cancelling it may leave resources half-changed: "
                                            "repeat with ?force=true");
        cJSON_AddBoolToObject(o, "requires_force", true);
        cJSON_AddStringToObject(o, "stage", "applying");
        route_reply_json(res, 409, o);
        return;
    }
    dispatch_cancel(a->disp, t);
    o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "task_id", t->id);
    cJSON_AddStringToObject(o, "status", t->status);
    route_reply_json(res, 200, o);
}

static void h_task_cancel(void *ctx, const https_request *req, https_response *res, const char *id)
{
    adminapi *a = ctx;
    dp_task *t = path_task(a, res, id);
    if (t)
        cancel(a, t, req, res);
}

/* ref §6.5: checks, snapshot validation, then the confirmation; the dispatcher sends the apply. */
static void confirm(adminapi *a, dp_task *t, const https_request *req, https_response *res, const char *user)
{
    const char *description = "";
    char err[256];
    cJSON *body = route_body(req, false, err, sizeof err), *o, *e;
    int64_t now = route_now_ns();

    if (!body || json_get_string(body, "apply_description", false, &description, err, sizeof err) < 0) {
        cJSON_Delete(body);
        https_reply_error(res, 400, "apply_description is required");
        return;
    }
    if (t->type != TASKS_PLAN_AND_APPLY) {
        cJSON_Delete(body);
        https_reply_error(res, 400, "Only plan_and_apply tasks can be confirmed for apply");
        return;
    }
    if (strcmp(t->status, "apply_pending") != 0) {
        cJSON_Delete(body);
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "error", "Task is not waiting for apply confirmation");
        cJSON_AddStringToObject(o, "current_status", t->status);
        route_reply_json(res, 400, o);
        return;
    }
    if (!t->plan_task_id)
        t->plan_task_id = t->id;
    if (tasks_snapshot_validate(t, err, sizeof err) < 0) {
        cJSON_Delete(body);
        log_info("admin", "task %u: confirm refused: %s", t->id, err);
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "error", "Resources have changed since plan");
        cJSON_AddStringToObject(o, "details", err);
        route_reply_json(res, 409, o);
        return;
    }
    if (tasks_confirm(t, user, description, now) < 0) {
        cJSON_Delete(body);
        https_reply_error(res, 500, "out of memory");
        return;
    }
    if ((e = tasks_event(t, now, "confirmed"))) {
        cJSON_AddStringToObject(e, "by", user);
        cJSON_AddStringToObject(e, "apply_description", description);
    }
    cJSON_Delete(body);
    log_info("admin", "task %u: apply confirmed by %s", t->id, user);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "message", "Apply confirmed, starting execution");
    cJSON_AddNumberToObject(o, "task_id", t->id);
    cJSON_AddStringToObject(o, "status", t->status);
    route_reply_json(res, 200, o);
    dispatch_kick(a->disp);
}

static void h_task_confirm(void *ctx, const https_request *req, https_response *res, const char *id)
{
    adminapi *a = ctx;
    dp_task *t = path_task(a, res, id);
    if (t)
        confirm(a, t, req, res, "admin");
}

/* The task of a user route's "ws-id/task-id", or NULL with a 404 (also for a task of another workspace). */
static dp_task *user_task(adminapi *a, https_response *res, const char *param)
{
    const char *slash = strchr(param, '/');
    dp_task *t = NULL;
    char *end;

    if (slash && slash[1] >= '0' && slash[1] <= '9') {
        unsigned long long n = strtoull(slash + 1, &end, 10);
        t = !*end ? tasks_task_find(a->store, n) : NULL;
        if (t && (strlen(t->ws->id) != (size_t)(slash - param) || strncmp(t->ws->id, param, (size_t)(slash - param))))
            t = NULL;
    }
    if (!t)
        https_reply_error(res, 404, "task not found");
    return t;
}

static void h_user_confirm(void *ctx, const https_request *req, https_response *res, const char *param)
{
    adminapi *a = ctx;
    dp_task *t = user_task(a, res, param);
    if (t)
        confirm(a, t, req, res, "user");
}

static void h_user_cancel(void *ctx, const https_request *req, https_response *res, const char *param)
{
    adminapi *a = ctx;
    dp_task *t = user_task(a, res, param);
    if (t)
        cancel(a, t, req, res);
}

/* Test knob: damage the snapshot so that confirm answers 409 and E4 carries the damage (ref §8 entries 9, 28). */
static void h_task_corrupt(void *ctx, const https_request *req, https_response *res, const char *id)
{
    adminapi *a = ctx;
    dp_task *t = path_task(a, res, id);
    const char *what = "created_at";
    char err[256];
    cJSON *body, *o;

    if (!t)
        return;
    if (!(body = route_body(req, true, err, sizeof err)) ||
        json_get_string(body, "what", false, &what, err, sizeof err) < 0 ||
        tasks_snapshot_corrupt(t, what, err, sizeof err) < 0) {
        cJSON_Delete(body);
        route_reply_error(res, 400, "%s", err);
        return;
    }
    o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "task_id", t->id);
    cJSON_AddStringToObject(o, "corrupted", what);
    cJSON_Delete(body);
    bool valid = tasks_snapshot_validate(t, err, sizeof err) == 0;
    cJSON_AddBoolToObject(o, "snapshot_valid", valid);
    route_add_str_or_null(o, "snapshot_error", valid ? NULL : err);
    log_info("admin", "task %u: snapshot damaged (%s)", t->id,
             cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "corrupted")));
    route_reply_json(res, 200, o);
}

/* ---- faults ---- */

static void h_faults_add(void *ctx, const https_request *req, https_response *res, const char *param)
{
    adminapi *a = ctx;
    char err[512];
    cJSON *body, *view = NULL;
    int rc;

    (void)param;
    if (!(body = route_body(req, false, err, sizeof err))) {
        route_reply_error(res, 400, "invalid request body: %s", err);
        return;
    }
    rc = faults_add(a->faults, body, &view, err, sizeof err);
    cJSON_Delete(body);
    if (rc < 0) {
        https_reply_error(res, rc == -ENOSPC ? 507 : 400, err);
        return;
    }
    if (view)
        log_info("admin", "fault added: %s answers %d",
                 cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(view, "route")),
                 (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(view, "status")));
    route_reply_json(res, 201, view);
}

static void h_faults_get(void *ctx, const https_request *req, https_response *res, const char *param)
{
    adminapi *a = ctx;
    (void)req;
    (void)param;
    route_reply_json(res, 200, faults_view(a->faults));
}

static void h_faults_clear(void *ctx, const https_request *req, https_response *res, const char *param)
{
    adminapi *a = ctx;
    (void)req;
    (void)param;
    faults_clear(a->faults);
    strbuf_puts(&res->body, "{\"cleared\":true}");
}

static void reply_output(https_response *res, blob *b)
{
    int rc = blob_read(b, &res->body);
    if (rc < 0) {
        strbuf_free(&res->body);
        route_reply_error(res, 500, "cannot read the output: %s", strerror(-rc));
        return;
    }
    res->content_type = "text/plain; charset=utf-8";
}

static void h_task_plan_output(void *ctx, const https_request *req, https_response *res, const char *id)
{
    adminapi *a = ctx;
    dp_task *t = path_task(a, res, id);
    (void)req;
    if (t)
        reply_output(res, &t->plan_output);
}

static void h_task_apply_output(void *ctx, const https_request *req, https_response *res, const char *id)
{
    adminapi *a = ctx;
    dp_task *t = path_task(a, res, id);
    (void)req;
    if (t)
        reply_output(res, &t->apply_output);
}

static void h_task_plan_json(void *ctx, const https_request *req, https_response *res, const char *id)
{
    adminapi *a = ctx;
    dp_task *t = path_task(a, res, id);
    (void)req;
    if (!t)
        return;
    if (!t->plan_json) {
        https_reply_error(res, 404, "no plan JSON uploaded");
        return;
    }
    route_reply_json(res, 200, cJSON_Duplicate(t->plan_json, true));
}

static void h_task_plan_data(void *ctx, const https_request *req, https_response *res, const char *id)
{
    adminapi *a = ctx;
    dp_task *t = path_task(a, res, id);
    (void)req;
    if (!t)
        return;
    if (!t->plan_data) {
        https_reply_error(res, 404, "no plan data uploaded");
        return;
    }
    res->content_type = "application/octet-stream";
    strbuf_append(&res->body, t->plan_data, t->plan_data_len);
}

static void h_dispatch(void *ctx, const https_request *req, https_response *res, const char *param)
{
    adminapi *a = ctx;
    (void)req;
    (void)param;
    route_reply_json(res, 200, dispatch_view(a->disp));
}

static void h_demand(void *ctx, const https_request *req, https_response *res, const char *param)
{
    adminapi *a = ctx;
    (void)req;
    (void)param;
    route_reply_json(res, 200, dispatch_demand(a->disp));
}

/* ---- routing ---- */

static const route routes[] = {
    { "POST", "/admin/workspaces", 0, h_ws_create },
    { "GET", "/admin/workspaces", 0, h_ws_list },
    { "GET", "/admin/workspaces/*", 0, h_ws_get },
    { "POST", "/admin/workspaces/*/tasks", 0, h_ws_task },
    { "POST", "/admin/workspaces/*/state", 0, h_ws_state_add },
    { "GET", "/admin/workspaces/*/state", 0, h_ws_state_get },
    { "POST", "/admin/workspaces/*/unlock", 0, h_ws_unlock },
    { "GET", "/admin/tasks", 0, h_task_list },
    { "GET", "/admin/tasks/*", 0, h_task_get },
    { "POST", "/admin/tasks/*/cancel", 0, h_task_cancel },
    { "POST", "/admin/tasks/*/confirm", 0, h_task_confirm },
    { "POST", "/admin/tasks/*/corrupt-snapshot", 0, h_task_corrupt },
    { "POST", "/admin/faults", 0, h_faults_add },
    { "GET", "/admin/faults", 0, h_faults_get },
    { "DELETE", "/admin/faults", 0, h_faults_clear },
    /* upstream's user routes (no auth here) */
    { "POST", "/api/v1/workspaces/*/tasks/*/confirm-apply", 0, h_user_confirm },
    { "POST", "/api/v1/workspaces/*/tasks/*/cancel", 0, h_user_cancel },
    { "GET", "/admin/tasks/*/plan-output", 0, h_task_plan_output },
    { "GET", "/admin/tasks/*/apply-output", 0, h_task_apply_output },
    { "GET", "/admin/tasks/*/plan-json", 0, h_task_plan_json },
    { "GET", "/admin/tasks/*/plan-data", 0, h_task_plan_data },
    { "GET", "/admin/dispatch", 0, h_dispatch },
    { "GET", "/admin/demand", 0, h_demand },
};

bool adminapi_handle(void *arg, const https_request *req, https_response *res)
{
    char param[ROUTE_PARAM_MAX];
    bool known;
    const route *r = route_find(routes, sizeof routes / sizeof routes[0], req, param, sizeof param, &known);

    if (!r) {
        if (known)
            https_reply_error(res, 405, "method not allowed");
        return known;
    }
    r->fn(arg, req, res, param);
    return true;
}

adminapi *adminapi_new(tasks *store, dispatch *disp, faults *faults)
{
    adminapi *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->store = store;
    a->disp = disp;
    a->faults = faults;
    return a;
}

void adminapi_free(adminapi *a)
{
    free(a);
}
