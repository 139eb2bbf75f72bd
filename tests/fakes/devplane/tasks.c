/* tasks.c — workspaces, tasks and their rules; see tasks.h.
 *
 * Arrays of pointers in creation order: tasks are found by id directly (id i is at index i-1, ids are never
 * reused), workspaces by a linear scan (a test creates a handful). The queue rule and the status update follow
 * upstream's code as ref §6.4 and §2.4 E5 describe it, including what it does not check (no transition is
 * validated except "cancelled is final"). */
#include "tasks.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iac/digest.h"
#include "iac/json.h"
#include "route.h"

struct tasks {
    char          *data_dir;
    char           pool[REG_POOL_MAX + 1];
    dp_workspace **ws;
    size_t         nws, capws;
    dp_task      **tasks;
    size_t         ntasks, captasks;
    uint64_t       next_ws, next_row; /* workspace ids, and the ids of resource/version/variable/output rows */
};

static const char *const type_names[] = {
    [TASKS_PLAN] = "plan",
    [TASKS_PLAN_AND_APPLY] = "plan_and_apply",
    [TASKS_DRIFT_CHECK] = "drift_check",
    [TASKS_APPLY] = "apply",
};

int tasks_type_parse(const char *s, tasks_type *out)
{
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
        if (strcmp(s, type_names[i]) == 0) {
            *out = (tasks_type)i;
            return 0;
        }
    return -1;
}

const char *tasks_type_name(tasks_type t)
{
    return (size_t)t < sizeof type_names / sizeof type_names[0] ? type_names[t] : "unknown";
}

bool tasks_status_terminal(const char *status)
{
    static const char *const terminal[] = { "success", "applied", "planned_and_finished", "failed", "cancelled" };
    for (size_t i = 0; i < sizeof terminal / sizeof terminal[0]; i++)
        if (strcmp(status, terminal[i]) == 0)
            return true;
    return false;
}

int tasks_set_string(char **column, const char *value)
{
    char *copy = NULL;
    if (value && !(copy = strdup(value)))
        return -ENOMEM;
    free(*column);
    *column = copy;
    return 0;
}

/* Grows an array of pointers (or structs) by one slot. 0 or -ENOMEM. */
static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, ncap * elem);
    if (!p)
        return -ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

/* ---- the store ---- */

tasks *tasks_new(const char *data_dir, const char *pool_id)
{
    tasks *s = calloc(1, sizeof *s);
    if (!s || !(s->data_dir = strdup(data_dir))) {
        free(s);
        return NULL;
    }
    snprintf(s->pool, sizeof s->pool, "%s", pool_id);
    return s;
}

static void workspace_free(dp_workspace *ws)
{
    free(ws->name);
    free(ws->terraform_version);
    free(ws->execution_mode);
    cJSON_Delete(ws->tf_code);
    cJSON_Delete(ws->provider_config);
    cJSON_Delete(ws->resources);
    cJSON_Delete(ws->variables);
    cJSON_Delete(ws->outputs);
    free(ws->locked_by);
    free(ws->lock_reason);
    free(ws->terraform_lock_hcl);
    free(ws->last_init_hash);
    free(ws->last_init_terraform_version);
    for (size_t i = 0; i < ws->nstates; i++) {
        cJSON_Delete(ws->states[i].content);
        free(ws->states[i].checksum);
    }
    free(ws->states);
    free(ws);
}

static void task_free(dp_task *t)
{
    free(t->error_message);
    free(t->plan_hash);
    free(t->description);
    cJSON_Delete(t->context);
    blob_free(&t->plan_output);
    blob_free(&t->apply_output);
    free(t->plan_data);
    cJSON_Delete(t->plan_json);
    cJSON_Delete(t->resource_changes);
    cJSON_Delete(t->chunks);
    cJSON_Delete(t->events);
    cJSON_Delete(t->stages);
    cJSON_Delete(t->snap_resource_versions);
    cJSON_Delete(t->snap_variables);
    cJSON_Delete(t->snap_provider_config);
    free(t->apply_confirmed_by);
    free(t->apply_description);
    if (t->live) {
        for (size_t i = 0; i < TASKS_LIVE_LINES; i++)
            free(t->live[i]);
        free(t->live);
    }
    free(t);
}

void tasks_free(tasks *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->ntasks; i++)
        task_free(s->tasks[i]);
    for (size_t i = 0; i < s->nws; i++)
        workspace_free(s->ws[i]);
    free(s->tasks);
    free(s->ws);
    free(s->data_dir);
    free(s);
}

/* ---- workspaces ---- */

static bool id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n < 1 || n >= TASKS_WS_ID_MAX)
        return false;
    for (; *id; id++)
        if (!(*id >= 'a' && *id <= 'z') && !(*id >= 'A' && *id <= 'Z') && !(*id >= '0' && *id <= '9') &&
            *id != '-' && *id != '_' && *id != '.')
            return false;
    return true;
}

/* A string member with a default; -1 with a message naming where (e.g. "variables[2]: ..."). */
static int get_str(const cJSON *o, const char *key, bool required, const char *def, const char **out,
                   const char *where, char *err, size_t errlen)
{
    char tmp[200];
    *out = def;
    if (json_get_string(o, key, required, out, tmp, sizeof tmp) < 0) {
        snprintf(err, errlen, "%s%s", where, tmp);
        return -1;
    }
    return 0;
}

/* An optional object member, duplicated ({} when absent). NULL with a message. */
static cJSON *get_object_copy(const cJSON *o, const char *key, const char *where, char *err, size_t errlen)
{
    const cJSON *v = NULL;
    char tmp[200];
    cJSON *copy;

    if (json_get_object(o, key, false, &v, tmp, sizeof tmp) < 0) {
        snprintf(err, errlen, "%s%s", where, tmp);
        return NULL;
    }
    copy = v ? cJSON_Duplicate(v, true) : cJSON_CreateObject();
    if (!copy)
        snprintf(err, errlen, "out of memory");
    return copy;
}

/* Is s one of the "|"-separated words of allowed? */
static bool one_of(const char *s, const char *allowed)
{
    size_t n = strlen(s);
    for (const char *p = allowed; *p;) {
        size_t w = strcspn(p, "|");
        if (w == n && strncmp(p, s, n) == 0)
            return true;
        p += w + (p[w] == '|');
    }
    return false;
}

/* The bundle shape of one admin resource: {"id", "workspace_id", "resource_id", …, "current_version": {…}}. */
static cJSON *resource_row(tasks *s, const dp_workspace *ws, const cJSON *in, int i, char *err, size_t errlen)
{
    const char *rid, *rtype, *rname, *desc;
    char where[48], when[ROUTE_TIME_MAX];
    bool active = true;
    const cJSON *code = NULL;
    char tmp[200];
    cJSON *row, *ver;

    snprintf(where, sizeof where, "resources[%d]: ", i);
    if (!cJSON_IsObject(in)) {
        snprintf(err, errlen, "%sexpected an object", where);
        return NULL;
    }
    if (get_str(in, "resource_id", true, NULL, &rid, where, err, errlen) < 0 ||
        get_str(in, "resource_type", false, "", &rtype, where, err, errlen) < 0 ||
        get_str(in, "resource_name", false, "", &rname, where, err, errlen) < 0 ||
        get_str(in, "description", false, "", &desc, where, err, errlen) < 0)
        return NULL;
    if (json_get_object(in, "tf_code", true, &code, tmp, sizeof tmp) < 0 ||
        json_get_bool(in, "is_active", false, &active, tmp, sizeof tmp) < 0) {
        snprintf(err, errlen, "%s%s", where, tmp);
        return NULL;
    }
    for (int j = 0; j < cJSON_GetArraySize(ws->resources); j++) {
        const cJSON *other = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(ws->resources, j), "resource_id");
        if (cJSON_IsString(other) && strcmp(other->valuestring, rid) == 0) {
            snprintf(err, errlen, "%sresource_id \"%s\" appears twice", where, rid);
            return NULL;
        }
    }
    uint64_t db_id = ++s->next_row, ver_id = ++s->next_row;
    route_time(ws->created_ns, when);
    row = cJSON_CreateObject();
    ver = cJSON_CreateObject();
    if (!row || !ver) {
        cJSON_Delete(row);
        cJSON_Delete(ver);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    cJSON_AddNumberToObject(row, "id", (double)db_id);
    cJSON_AddStringToObject(row, "workspace_id", ws->id);
    cJSON_AddStringToObject(row, "resource_id", rid);
    cJSON_AddStringToObject(row, "resource_type", rtype);
    cJSON_AddStringToObject(row, "resource_name", rname);
    cJSON_AddNumberToObject(row, "current_version_id", (double)ver_id);
    cJSON_AddBoolToObject(row, "is_active", active);
    cJSON_AddStringToObject(row, "description", desc);
    cJSON_AddItemToObject(row, "tags", cJSON_CreateObject());
    cJSON_AddStringToObject(row, "created_at", when);
    cJSON_AddStringToObject(row, "updated_at", when);
    cJSON_AddNumberToObject(ver, "id", (double)ver_id);
    cJSON_AddNumberToObject(ver, "resource_id", (double)db_id);
    cJSON_AddNumberToObject(ver, "version", 1);
    cJSON_AddBoolToObject(ver, "is_latest", true);
    cJSON_AddItemToObject(ver, "tf_code", cJSON_Duplicate(code, true));
    cJSON_AddItemToObject(ver, "variables", cJSON_CreateObject());
    cJSON_AddStringToObject(ver, "change_summary", "");
    cJSON_AddStringToObject(ver, "change_type", "create");
    cJSON_AddStringToObject(ver, "created_at", when);
    cJSON_AddItemToObject(row, "current_version", ver);
    return row;
}

/* The bundle shape of one variable (ref E3: "value" omitted when empty). */
static cJSON *variable_row(tasks *s, const dp_workspace *ws, const cJSON *in, int i, char *err, size_t errlen)
{
    const char *key, *value, *vtype, *format, *desc;
    char where[48], when[ROUTE_TIME_MAX], tmp[200], vid[32];
    bool sensitive = false;
    cJSON *row;

    snprintf(where, sizeof where, "variables[%d]: ", i);
    if (!cJSON_IsObject(in)) {
        snprintf(err, errlen, "%sexpected an object", where);
        return NULL;
    }
    if (get_str(in, "key", true, NULL, &key, where, err, errlen) < 0 ||
        get_str(in, "value", false, "", &value, where, err, errlen) < 0 ||
        get_str(in, "variable_type", false, "terraform", &vtype, where, err, errlen) < 0 ||
        get_str(in, "value_format", false, "string", &format, where, err, errlen) < 0 ||
        get_str(in, "description", false, "", &desc, where, err, errlen) < 0)
        return NULL;
    if (json_get_bool(in, "sensitive", false, &sensitive, tmp, sizeof tmp) < 0) {
        snprintf(err, errlen, "%s%s", where, tmp);
        return NULL;
    }
    if (!*key || !one_of(vtype, "terraform|environment") || !one_of(format, "string|hcl")) {
        snprintf(err, errlen, "%s%s", where,
                 !*key ? "key must not be empty"
                       : !one_of(vtype, "terraform|environment") ? "variable_type must be terraform or environment"
                                                                 : "value_format must be string or hcl");
        return NULL;
    }
    uint64_t id = ++s->next_row;
    snprintf(vid, sizeof vid, "var-%" PRIu64, id);
    route_time(ws->created_ns, when);
    if (!(row = cJSON_CreateObject())) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    cJSON_AddNumberToObject(row, "id", (double)id);
    cJSON_AddStringToObject(row, "variable_id", vid);
    cJSON_AddStringToObject(row, "workspace_id", ws->id);
    cJSON_AddStringToObject(row, "key", key);
    cJSON_AddNumberToObject(row, "version", 1);
    if (*value)
        cJSON_AddStringToObject(row, "value", value);
    cJSON_AddStringToObject(row, "variable_type", vtype);
    cJSON_AddStringToObject(row, "value_format", format);
    cJSON_AddBoolToObject(row, "sensitive", sensitive);
    cJSON_AddStringToObject(row, "description", desc);
    cJSON_AddBoolToObject(row, "is_deleted", false);
    cJSON_AddStringToObject(row, "created_at", when);
    cJSON_AddStringToObject(row, "updated_at", when);
    cJSON_AddStringToObject(row, "created_by", "devplane");
    return row;
}

/* One output: the admin's object with the row keys filled in where it left them out. */
static cJSON *output_row(tasks *s, const dp_workspace *ws, const cJSON *in, int i, char *err, size_t errlen)
{
    static const char *const strings[] = { "output_value", "resource_name", "description" };
    const char *name, *v;
    char where[48], tmp[200], oid[32];
    bool sensitive = false;
    cJSON *row;

    snprintf(where, sizeof where, "outputs[%d]: ", i);
    if (!cJSON_IsObject(in)) {
        snprintf(err, errlen, "%sexpected an object", where);
        return NULL;
    }
    if (get_str(in, "output_name", true, NULL, &name, where, err, errlen) < 0)
        return NULL;
    for (size_t k = 0; k < sizeof strings / sizeof strings[0]; k++)
        if (get_str(in, strings[k], false, "", &v, where, err, errlen) < 0)
            return NULL;
    if (json_get_bool(in, "sensitive", false, &sensitive, tmp, sizeof tmp) < 0) {
        snprintf(err, errlen, "%s%s", where, tmp);
        return NULL;
    }
    if (!(row = cJSON_Duplicate(in, true))) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    uint64_t id = ++s->next_row;
    snprintf(oid, sizeof oid, "out-%" PRIu64, id);
    if (!cJSON_GetObjectItemCaseSensitive(row, "id"))
        cJSON_AddNumberToObject(row, "id", (double)id);
    cJSON_DeleteItemFromObjectCaseSensitive(row, "workspace_id");
    cJSON_AddStringToObject(row, "workspace_id", ws->id);
    if (!cJSON_GetObjectItemCaseSensitive(row, "output_id"))
        cJSON_AddStringToObject(row, "output_id", oid);
    for (size_t k = 0; k < sizeof strings / sizeof strings[0]; k++)
        if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(row, strings[k]))) {
            cJSON_DeleteItemFromObjectCaseSensitive(row, strings[k]); /* a JSON null */
            cJSON_AddStringToObject(row, strings[k], "");
        }
    if (!cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(row, "sensitive"))) {
        cJSON_DeleteItemFromObjectCaseSensitive(row, "sensitive");
        cJSON_AddBoolToObject(row, "sensitive", false);
    }
    (void)name;
    return row;
}

typedef cJSON *(*row_fn)(tasks *s, const dp_workspace *ws, const cJSON *in, int i, char *err, size_t errlen);

/* Builds ws->{key} from the admin array spec[key] row by row. 0, or -1 with a message. */
static int build_rows(tasks *s, dp_workspace *ws, const cJSON *spec, const char *key, cJSON **dst, row_fn fn,
                      char *err, size_t errlen)
{
    const cJSON *arr = NULL, *item;
    char tmp[200];
    int i = 0;

    if (json_get_array(spec, key, false, &arr, tmp, sizeof tmp) < 0) {
        snprintf(err, errlen, "%s", tmp);
        return -1;
    }
    if (!(*dst = cJSON_CreateArray())) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    cJSON_ArrayForEach(item, arr)
    {
        cJSON *row = fn(s, ws, item, i++, err, errlen);
        if (!row)
            return -1;
        cJSON_AddItemToArray(*dst, row);
    }
    return 0;
}

int tasks_workspace_create(tasks *s, const cJSON *spec, int64_t now_ns, dp_workspace **out, char *err,
                           size_t errlen)
{
    const char *id = NULL, *name, *version, *mode, *pool, *lock_hcl;
    const cJSON *state = NULL;
    char tmp[200], genid[TASKS_WS_ID_MAX];
    dp_workspace *ws;
    int rc = -EINVAL;

    if (s->nws >= TASKS_MAX_WORKSPACES) {
        snprintf(err, errlen, "too many workspaces (%d)", TASKS_MAX_WORKSPACES);
        return -ENOSPC;
    }
    if (get_str(spec, "workspace_id", false, NULL, &id, "", err, errlen) < 0 ||
        get_str(spec, "name", false, NULL, &name, "", err, errlen) < 0 ||
        get_str(spec, "terraform_version", false, "latest", &version, "", err, errlen) < 0 ||
        get_str(spec, "execution_mode", false, "agent", &mode, "", err, errlen) < 0 ||
        get_str(spec, "pool_id", false, s->pool, &pool, "", err, errlen) < 0 ||
        get_str(spec, "terraform_lock_hcl", false, "", &lock_hcl, "", err, errlen) < 0)
        return -EINVAL;
    if (json_get_object(spec, "state", false, &state, tmp, sizeof tmp) < 0) {
        snprintf(err, errlen, "%s", tmp);
        return -EINVAL;
    }
    if (!id) {
        snprintf(genid, sizeof genid, "ws-%" PRIu64, ++s->next_ws);
        while (tasks_workspace_find(s, genid)) /* an admin took it by name */
            snprintf(genid, sizeof genid, "ws-%" PRIu64, ++s->next_ws);
        id = genid;
    }
    if (!id_ok(id)) {
        snprintf(err, errlen, "workspace_id must be 1 to %d letters, digits, '.', '_' or '-'", TASKS_WS_ID_MAX - 1);
        return -EINVAL;
    }
    if (tasks_workspace_find(s, id)) {
        snprintf(err, errlen, "workspace %s already exists", id);
        return -EEXIST;
    }
    if (!one_of(mode, "local|agent|k8s")) {
        snprintf(err, errlen, "execution_mode must be local, agent or k8s");
        return -EINVAL;
    }
    if (strlen(pool) > REG_POOL_MAX) {
        snprintf(err, errlen, "pool_id is longer than %d bytes", REG_POOL_MAX);
        return -EINVAL;
    }
    if (!(ws = calloc(1, sizeof *ws))) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    snprintf(ws->id, sizeof ws->id, "%s", id);
    snprintf(ws->pool_id, sizeof ws->pool_id, "%s", pool);
    ws->created_ns = now_ns;
    if (!(ws->name = strdup(name ? name : id)) || !(ws->terraform_version = strdup(version)) ||
        !(ws->execution_mode = strdup(mode)) || !(ws->terraform_lock_hcl = strdup(lock_hcl))) {
        snprintf(err, errlen, "out of memory");
        rc = -ENOMEM;
        goto fail;
    }
    if (!(ws->tf_code = get_object_copy(spec, "tf_code", "", err, errlen)) ||
        !(ws->provider_config = get_object_copy(spec, "provider_config", "", err, errlen)) ||
        build_rows(s, ws, spec, "resources", &ws->resources, resource_row, err, errlen) < 0 ||
        build_rows(s, ws, spec, "variables", &ws->variables, variable_row, err, errlen) < 0 ||
        build_rows(s, ws, spec, "outputs", &ws->outputs, output_row, err, errlen) < 0)
        goto fail;
    if (state) {
        /* The checksum an agent would send: of the file bytes, here the compact text. */
        char *text = cJSON_PrintUnformatted(state), hex[DIGEST_SHA256_HEX_LEN + 1];
        uint64_t v;
        if (!text) {
            snprintf(err, errlen, "out of memory");
            rc = -ENOMEM;
            goto fail;
        }
        digest_sha256_hex(text, strlen(text), hex);
        rc = tasks_state_add(ws, cJSON_Duplicate(state, true), hex, (int64_t)strlen(text), 0, now_ns, &v);
        cJSON_free(text);
        if (rc < 0) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    if (grow((void **)&s->ws, &s->capws, s->nws, sizeof *s->ws) < 0) {
        snprintf(err, errlen, "out of memory");
        rc = -ENOMEM;
        goto fail;
    }
    s->ws[s->nws++] = ws;
    *out = ws;
    return 0;
fail:
    workspace_free(ws);
    return rc;
}

dp_workspace *tasks_workspace_find(tasks *s, const char *id)
{
    for (size_t i = 0; i < s->nws; i++)
        if (strcmp(s->ws[i]->id, id) == 0)
            return s->ws[i];
    return NULL;
}

size_t tasks_workspace_count(const tasks *s)
{
    return s->nws;
}

dp_workspace *tasks_workspace_at(tasks *s, size_t i)
{
    return i < s->nws ? s->ws[i] : NULL;
}

int tasks_workspace_lock(dp_workspace *ws, const char *user_id, const char *reason, int64_t now_ns)
{
    if (tasks_set_string(&ws->locked_by, user_id) < 0 ||
        (reason && *reason && tasks_set_string(&ws->lock_reason, reason) < 0))
        return -ENOMEM;
    ws->is_locked = true;
    ws->locked_at_ns = now_ns;
    return 0;
}

void tasks_workspace_unlock(dp_workspace *ws)
{
    ws->is_locked = false;
    tasks_set_string(&ws->locked_by, NULL);
    tasks_set_string(&ws->lock_reason, NULL);
    ws->locked_at_ns = 0;
}

int tasks_state_add(dp_workspace *ws, cJSON *content, const char *checksum, int64_t size, uint32_t task_id,
                    int64_t now_ns, uint64_t *version)
{
    dp_state_version *v;
    char *sum = strdup(checksum);

    if (!content || !sum || grow((void **)&ws->states, &ws->capstates, ws->nstates, sizeof *ws->states) < 0) {
        cJSON_Delete(content);
        free(sum);
        return -ENOMEM;
    }
    v = &ws->states[ws->nstates];
    v->version = tasks_state_max_version(ws) + 1;
    v->content = content;
    v->checksum = sum;
    v->size = size;
    v->task_id = task_id;
    v->created_ns = now_ns;
    ws->nstates++;
    *version = v->version;
    return 0;
}

const dp_state_version *tasks_state_latest(const dp_workspace *ws)
{
    const dp_state_version *best = NULL;
    for (size_t i = 0; i < ws->nstates; i++)
        if (!best || ws->states[i].version > best->version)
            best = &ws->states[i];
    return best;
}

uint64_t tasks_state_max_version(const dp_workspace *ws)
{
    const dp_state_version *v = tasks_state_latest(ws);
    return v ? v->version : 0;
}

/* ---- tasks ---- */

/* Appends {"at", "status", "stage", "by"} to the stage history when the pair differs from the last entry. */
static void stage_note(dp_task *t, int64_t now_ns, const char *by)
{
    const cJSON *last = cJSON_GetArrayItem(t->stages, cJSON_GetArraySize(t->stages) - 1);
    const char *ls = last ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(last, "status")) : NULL;
    const char *lg = last ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(last, "stage")) : NULL;
    char when[ROUTE_TIME_MAX];
    cJSON *e;

    if (!t->stages || (ls && lg && strcmp(ls, t->status) == 0 && strcmp(lg, t->stage) == 0))
        return;
    if (cJSON_GetArraySize(t->stages) >= TASKS_EVENTS_MAX) {
        cJSON_DeleteItemFromArray(t->stages, 0);
        t->stages_dropped++;
    }
    if (!(e = cJSON_CreateObject()))
        return;
    route_time(now_ns, when);
    cJSON_AddStringToObject(e, "at", when);
    cJSON_AddStringToObject(e, "status", t->status);
    cJSON_AddStringToObject(e, "stage", t->stage);
    cJSON_AddStringToObject(e, "by", by);
    cJSON_AddItemToArray(t->stages, e);
}

void tasks_set_status(dp_task *t, const char *status, const char *stage, int64_t now_ns, const char *by)
{
    if (status != t->status)
        snprintf(t->status, sizeof t->status, "%s", status);
    if (stage)
        snprintf(t->stage, sizeof t->stage, "%s", stage);
    stage_note(t, now_ns, by);
}

int tasks_task_create(tasks *s, dp_workspace *ws, tasks_type type, cJSON *context, const char *description,
                      int64_t now_ns, dp_task **out)
{
    dp_task *t;

    if (s->ntasks >= TASKS_MAX) {
        cJSON_Delete(context);
        return -ENOSPC;
    }
    if (!(t = calloc(1, sizeof *t)) || grow((void **)&s->tasks, &s->captasks, s->ntasks, sizeof *s->tasks) < 0) {
        free(t);
        cJSON_Delete(context);
        return -ENOMEM;
    }
    t->id = (uint32_t)s->ntasks + 1;
    t->ws = ws;
    t->type = type;
    t->created_ns = now_ns;
    t->context = context ? context : cJSON_CreateObject();
    t->resource_changes = cJSON_CreateArray();
    t->chunks = cJSON_CreateArray();
    t->events = cJSON_CreateArray();
    t->stages = cJSON_CreateArray();
    blob_init(&t->plan_output, s->data_dir);
    blob_init(&t->apply_output, s->data_dir);
    if (!t->context || !t->resource_changes || !t->chunks || !t->events || !t->stages ||
        (description && !(t->description = strdup(description)))) {
        task_free(t);
        return -ENOMEM;
    }
    tasks_set_status(t, "pending", "pending", now_ns, "created");
    (void)tasks_snapshot_take(t, now_ns); /* upstream only logs a failure: the columns stay NULL */
    s->tasks[s->ntasks++] = t;
    *out = t;
    return 0;
}

dp_task *tasks_task_find(tasks *s, uint64_t id)
{
    return id >= 1 && id <= s->ntasks ? s->tasks[id - 1] : NULL;
}

size_t tasks_task_count(const tasks *s)
{
    return s->ntasks;
}

dp_task *tasks_task_at(tasks *s, size_t i)
{
    return i < s->ntasks ? s->tasks[i] : NULL;
}

/* Is there a plan_and_apply of ws with a lower id than t that is pending, running or apply_pending? */
static bool earlier_plan_and_apply_active(tasks *s, const dp_workspace *ws, const dp_task *t)
{
    static const char *const active[] = { "pending", "running", "apply_pending" };
    for (size_t i = 0; i + 1 < t->id; i++) {
        const dp_task *o = s->tasks[i];
        if (o->ws != ws || o->type != TASKS_PLAN_AND_APPLY)
            continue;
        for (size_t k = 0; k < sizeof active / sizeof active[0]; k++)
            if (strcmp(o->status, active[k]) == 0)
                return true;
    }
    return false;
}

/* The oldest pending task of ws of this type (ids grow with creation time). */
static dp_task *oldest_pending(tasks *s, const dp_workspace *ws, tasks_type type)
{
    for (size_t i = 0; i < s->ntasks; i++) {
        dp_task *t = s->tasks[i];
        if (t->ws == ws && t->type == type && strcmp(t->status, "pending") == 0)
            return t;
    }
    return NULL;
}

bool tasks_held_back(tasks *s, const dp_task *t)
{
    if (t->ws->is_locked) /* rule 0: a locked workspace runs nothing */
        return true;
    if (t->type == TASKS_PLAN_AND_APPLY) /* rule 1: one plan_and_apply of a workspace at a time */
        return earlier_plan_and_apply_active(s, t->ws, t);
    return t->type == TASKS_APPLY; /* rules 2, 3: plans and drift checks wait for nothing; a bare apply never runs */
}

dp_task *tasks_next_executable(tasks *s, const dp_workspace *ws)
{
    /* Rules 1–3 in order: the oldest pending task of each kind, if the queue rule lets it go. apply_pending tasks
     * never come from here. */
    static const tasks_type order[] = { TASKS_PLAN_AND_APPLY, TASKS_PLAN, TASKS_DRIFT_CHECK };
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
        dp_task *t = oldest_pending(s, ws, order[k]);
        if (t && !tasks_held_back(s, t))
            return t;
    }
    return NULL;
}

cJSON *tasks_event(dp_task *t, int64_t now_ns, const char *kind)
{
    char when[ROUTE_TIME_MAX];
    cJSON *e;

    if (cJSON_GetArraySize(t->events) >= TASKS_EVENTS_MAX) {
        cJSON_DeleteItemFromArray(t->events, 0);
        t->events_dropped++;
    }
    if (!(e = cJSON_CreateObject()))
        return NULL;
    route_time(now_ns, when);
    cJSON_AddStringToObject(e, "at", when);
    cJSON_AddStringToObject(e, "event", kind);
    cJSON_AddItemToArray(t->events, e);
    return e;
}

int tasks_update_status(dp_task *t, const tasks_status_update *u, int64_t now_ns)
{
    int rc;

    if (strcmp(t->status, "cancelled") == 0)
        return -ECANCELED;
    if (strlen(u->status) >= TASKS_WORD_MAX || (u->stage && strlen(u->stage) >= TASKS_WORD_MAX))
        return -ERANGE;
    /* Upstream writes a field only when it carries something: non-empty strings, counts when one is > 0, a
     * duration > 0, context and plan_task_id when present. */
    if (u->plan_output && u->plan_output_len && (rc = blob_set(&t->plan_output, u->plan_output, u->plan_output_len)) < 0)
        return rc;
    if (u->apply_output && u->apply_output_len &&
        (rc = blob_set(&t->apply_output, u->apply_output, u->apply_output_len)) < 0)
        return rc;
    if ((u->error_message && *u->error_message && tasks_set_string(&t->error_message, u->error_message) < 0) ||
        (u->plan_hash && *u->plan_hash && tasks_set_string(&t->plan_hash, u->plan_hash) < 0))
        return -ENOMEM;
    if (u->context) {
        cJSON *copy = cJSON_Duplicate(u->context, true);
        if (!copy)
            return -ENOMEM;
        cJSON_Delete(t->context);
        t->context = copy;
    }
    tasks_set_status(t, u->status, u->stage && *u->stage ? u->stage : NULL, now_ns, "agent");
    if (u->changes_add > 0 || u->changes_change > 0 || u->changes_destroy > 0) {
        t->changes_add = u->changes_add;
        t->changes_change = u->changes_change;
        t->changes_destroy = u->changes_destroy;
    }
    if (u->duration > 0)
        t->duration = u->duration;
    if (u->has_plan_task_id)
        t->plan_task_id = u->plan_task_id;
    if (u->has_completed_at)
        t->completed_ns = u->completed_at_ns;
    else if (strcmp(u->status, "success") == 0 || strcmp(u->status, "failed") == 0 ||
             strcmp(u->status, "applied") == 0)
        t->completed_ns = now_ns;
    return 0;
}

int tasks_log_chunk(dp_task *t, const char *phase, const char *content, size_t len, int64_t offset,
                    int64_t now_ns)
{
    blob *b = strcmp(phase, "plan") == 0 ? &t->plan_output : strcmp(phase, "apply") == 0 ? &t->apply_output : NULL;
    char hex[DIGEST_SHA256_HEX_LEN + 1], when[ROUTE_TIME_MAX];
    int rc;
    cJSON *row;

    if (b && (rc = blob_append(b, content, len)) < 0)
        return rc;
    t->nchunks++;
    if (cJSON_GetArraySize(t->chunks) >= TASKS_CHUNKS_MAX)
        cJSON_DeleteItemFromArray(t->chunks, 0);
    if (!(row = cJSON_CreateObject()))
        return -ENOMEM;
    digest_sha256_hex(content, len, hex);
    route_time(now_ns, when);
    cJSON_AddStringToObject(row, "phase", phase);
    cJSON_AddNumberToObject(row, "offset", (double)offset);
    cJSON_AddNumberToObject(row, "bytes", (double)len);
    cJSON_AddStringToObject(row, "sha256", hex);
    cJSON_AddStringToObject(row, "level", "info");
    cJSON_AddStringToObject(row, "created_at", when);
    cJSON_AddItemToArray(t->chunks, row);
    return 0;
}

void tasks_live_line(dp_task *t, const char *line)
{
    char *copy;

    if (!t->live && !(t->live = calloc(TASKS_LIVE_LINES, sizeof *t->live)))
        return;
    if (!(copy = strdup(line)))
        return;
    size_t slot = (t->live_head + t->live_n) % TASKS_LIVE_LINES;
    if (t->live_n == TASKS_LIVE_LINES) {
        slot = t->live_head;
        t->live_head = (t->live_head + 1) % TASKS_LIVE_LINES;
    } else {
        t->live_n++;
    }
    free(t->live[slot]);
    t->live[slot] = copy;
    t->live_total++;
}

int tasks_live_to_output(dp_task *t)
{
    blob *b = t->type == TASKS_APPLY ? &t->apply_output
              : t->type == TASKS_DRIFT_CHECK ? NULL : &t->plan_output;
    strbuf text = STRBUF_INIT;
    int rc;

    if (!b)
        return 0;
    for (size_t i = 0; i < t->live_n; i++) {
        strbuf_puts(&text, t->live[(t->live_head + i) % TASKS_LIVE_LINES]);
        strbuf_putc(&text, '\n');
    }
    if (text.oom) {
        strbuf_free(&text);
        return -ENOMEM;
    }
    rc = blob_set(b, text.data ? text.data : "", text.len);
    strbuf_free(&text);
    return rc;
}

/* ---- snapshot and confirmation ---- */

/* The workspace's resource row of resource_id, or NULL. */
static const cJSON *resource_by_id(const dp_workspace *ws, const char *rid)
{
    const cJSON *row;
    cJSON_ArrayForEach(row, ws->resources)
    {
        const char *r = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "resource_id"));
        if (r && strcmp(r, rid) == 0)
            return row;
    }
    return NULL;
}

/* The code version `version` of a resource row, or NULL. Resources keep one version here (the admin cannot edit
 * them), so the lookup is of the current one. */
static const cJSON *resource_version(const cJSON *row, double version)
{
    const cJSON *cv = cJSON_GetObjectItemCaseSensitive(row, "current_version");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cv, "version");
    return cJSON_IsNumber(v) && v->valuedouble == version ? cv : NULL;
}

/* The variable row with this variable_id and version, or NULL. */
static const cJSON *variable_by_ref(const dp_workspace *ws, const char *vid, double version)
{
    const cJSON *row;
    cJSON_ArrayForEach(row, ws->variables)
    {
        const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "variable_id"));
        const cJSON *ver = cJSON_GetObjectItemCaseSensitive(row, "version");
        if (v && strcmp(v, vid) == 0 && cJSON_IsNumber(ver) && ver->valuedouble == version)
            return row;
    }
    return NULL;
}

int tasks_snapshot_take(dp_task *t, int64_t now_ns)
{
    const dp_workspace *ws = t->ws;
    cJSON *versions = cJSON_CreateObject(), *vars = cJSON_CreateArray(), *pc = cJSON_Duplicate(ws->provider_config, true);
    const cJSON *row;

    if (!versions || !vars || !pc)
        goto oom;
    cJSON_ArrayForEach(row, ws->resources)
    {
        const char *rid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "resource_id"));
        const cJSON *cv = cJSON_GetObjectItemCaseSensitive(row, "current_version");
        cJSON *e;
        if (!rid || !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(row, "is_active")) || !(e = cJSON_CreateObject()))
            continue;
        cJSON_AddItemToObject(e, "resource_db_id", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(row, "id"), true));
        cJSON_AddItemToObject(e, "version_id", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(cv, "id"), true));
        cJSON_AddItemToObject(e, "version", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(cv, "version"), true));
        cJSON_AddItemToObject(versions, rid, e);
    }
    cJSON_ArrayForEach(row, ws->variables) /* the latest non-deleted version of each: there is one here */
    {
        cJSON *e = cJSON_CreateObject();
        if (!e)
            goto oom;
        cJSON_AddStringToObject(e, "workspace_id", ws->id);
        cJSON_AddItemToObject(e, "variable_id", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(row, "variable_id"), true));
        cJSON_AddItemToObject(e, "version", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(row, "version"), true));
        cJSON_AddItemToObject(e, "variable_type",
                              cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(row, "variable_type"), true));
        cJSON_AddItemToArray(vars, e);
    }
    cJSON_Delete(t->snap_resource_versions);
    cJSON_Delete(t->snap_variables);
    cJSON_Delete(t->snap_provider_config);
    t->snap_resource_versions = versions;
    t->snap_variables = vars;
    t->snap_provider_config = pc;
    t->snap_created_ns = now_ns;
    return 0;
oom:
    cJSON_Delete(versions);
    cJSON_Delete(vars);
    cJSON_Delete(pc);
    return -ENOMEM;
}

int tasks_snapshot_validate(const dp_task *t, char *err, size_t errlen)
{
    const cJSON *e;

    if (!t->snap_created_ns) {
        snprintf(err, errlen, "no snapshot data (snapshot_created_at is nil)");
        return -1;
    }
    if (!cJSON_IsObject(t->snap_resource_versions) || !cJSON_IsArray(t->snap_variables)) {
        snprintf(err, errlen, "no snapshot data (%s is nil)",
                 !cJSON_IsObject(t->snap_resource_versions) ? "snapshot_resource_versions" : "snapshot_variables");
        return -1;
    }
    cJSON_ArrayForEach(e, t->snap_resource_versions)
    {
        const cJSON *db = cJSON_GetObjectItemCaseSensitive(e, "resource_db_id");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, "version");
        const cJSON *row;
        if (!cJSON_IsObject(e) || !cJSON_IsNumber(db) || !cJSON_IsNumber(v)) {
            snprintf(err, errlen, "invalid snapshot data for resource %s", e->string);
            return -1;
        }
        if (!(row = resource_by_id(t->ws, e->string)) || !resource_version(row, v->valuedouble)) {
            snprintf(err, errlen, "resource %s version %.0f no longer exists", e->string, v->valuedouble);
            return -1;
        }
    }
    cJSON_ArrayForEach(e, t->snap_variables)
    {
        const char *vid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "variable_id"));
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, "version");
        if (!vid || !cJSON_IsNumber(v) || !variable_by_ref(t->ws, vid, v->valuedouble)) {
            snprintf(err, errlen, "variable %s version %.0f no longer exists", vid ? vid : "?",
                     cJSON_IsNumber(v) ? v->valuedouble : 0.0);
            return -1;
        }
    }
    return 0;
}

int tasks_snapshot_corrupt(dp_task *t, const char *how, char *err, size_t errlen)
{
    cJSON *first = t->snap_resource_versions ? t->snap_resource_versions->child : NULL;

    if (strcmp(how, "created_at") == 0) {
        t->snap_created_ns = 0;
    } else if (strcmp(how, "variables") == 0) {
        cJSON_Delete(t->snap_variables);
        t->snap_variables = NULL;
    } else if (strcmp(how, "resource_version") == 0 || strcmp(how, "resource_entry") == 0) {
        if (!cJSON_IsObject(first)) {
            snprintf(err, errlen, "the snapshot has no resource entry to damage");
            return -EINVAL;
        }
        bool version = strcmp(how, "resource_version") == 0;
        cJSON_ReplaceItemInObjectCaseSensitive(first, "version",
                                               version ? cJSON_CreateNumber(999999) : cJSON_CreateString("1"));
    } else {
        snprintf(err, errlen, "what must be created_at, resource_version, resource_entry or variables");
        return -EINVAL;
    }
    return 0;
}

cJSON *tasks_snapshot_resources(const dp_task *t)
{
    cJSON *list = cJSON_CreateArray();
    const cJSON *e;

    if (!list)
        return NULL;
    cJSON_ArrayForEach(e, t->snap_resource_versions)
    {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, "version"), *row, *cv;
        cJSON *r, *ver;
        if (!cJSON_IsNumber(v) || !(row = resource_by_id(t->ws, e->string)) || !(cv = resource_version(row, v->valuedouble)))
            continue; /* upstream skips what it cannot find */
        if (!(r = cJSON_CreateObject()) || !(ver = cJSON_CreateObject())) {
            cJSON_Delete(r);
            continue;
        }
        cJSON_AddItemToObject(r, "id", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(row, "id"), true));
        cJSON_AddStringToObject(r, "workspace_id", t->ws->id);
        cJSON_AddStringToObject(r, "resource_id", e->string);
        cJSON_AddItemToObject(r, "is_active", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(row, "is_active"), true));
        cJSON_AddItemToObject(ver, "id", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(cv, "id"), true));
        cJSON_AddItemToObject(ver, "version", cJSON_Duplicate(v, true));
        cJSON_AddItemToObject(ver, "tf_code", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(cv, "tf_code"), true));
        cJSON_AddItemToObject(r, "current_version", ver);
        cJSON_AddItemToArray(list, r);
    }
    if (cJSON_GetArraySize(list) == 0) {
        cJSON_Delete(list);
        return NULL;
    }
    return list;
}

cJSON *tasks_snapshot_variables(const dp_task *t)
{
    static const char *const copied[] = { "key", "value", "sensitive", "description", "value_format" };
    cJSON *list = cJSON_CreateArray();
    const cJSON *e;

    if (!list)
        return NULL;
    cJSON_ArrayForEach(e, t->snap_variables)
    {
        const char *vid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "variable_id"));
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, "version"), *row;
        cJSON *x;
        if (!vid || !cJSON_IsNumber(v) || !(row = variable_by_ref(t->ws, vid, v->valuedouble)) ||
            !(x = cJSON_CreateObject()))
            continue;
        cJSON_AddStringToObject(x, "workspace_id", t->ws->id);
        cJSON_AddStringToObject(x, "variable_id", vid);
        cJSON_AddNumberToObject(x, "version", v->valuedouble);
        cJSON_AddItemToObject(x, "variable_type",
                              cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(row, "variable_type"), true));
        for (size_t k = 0; k < sizeof copied / sizeof copied[0]; k++) {
            const cJSON *c = cJSON_GetObjectItemCaseSensitive(row, copied[k]);
            /* the bundle row leaves out an empty value; the expanded snapshot always has one */
            cJSON_AddItemToObject(x, copied[k], c ? cJSON_Duplicate(c, true) : cJSON_CreateString(""));
        }
        cJSON_AddItemToArray(list, x);
    }
    return list;
}

int tasks_confirm(dp_task *t, const char *user, const char *description, int64_t now_ns)
{
    if (tasks_set_string(&t->apply_confirmed_by, user) < 0 ||
        tasks_set_string(&t->apply_description, description ? description : "") < 0)
        return -ENOMEM;
    t->apply_confirmed_ns = now_ns;
    t->plan_task_id = t->id;
    tasks_set_status(t, t->status, "apply_pending", now_ns, "confirm");
    return 0;
}
