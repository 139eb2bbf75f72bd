/* taskplane.c — task-level helpers for integration scenarios; see taskplane.h. */
#include "taskplane.h"

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

const char *const TP_WORKSPACE_TWO =
    "{\"name\":\"%s\",\"terraform_version\":\"1.6.6\",\"execution_mode\":\"agent\","
    "\"resources\":["
    "{\"resource_id\":\"r1\",\"resource_type\":\"null_resource\",\"resource_name\":\"a\","
    "\"tf_code\":{\"resource\":{\"null_resource\":{\"a\":{\"triggers\":{\"v\":\"1\"}}}}}},"
    "{\"resource_id\":\"r2\",\"resource_type\":\"null_resource\",\"resource_name\":\"b\","
    "\"tf_code\":{\"resource\":{\"null_resource\":{\"b\":{\"triggers\":{\"v\":\"2\"}}}}}}],"
    "\"variables\":[{\"key\":\"greeting\",\"value\":\"hello\",\"variable_type\":\"terraform\","
    "\"value_format\":\"string\",\"sensitive\":false}]}";

const char *const TP_WORKSPACE_EMPTY =
    "{\"name\":\"%s\",\"terraform_version\":\"1.6.6\",\"execution_mode\":\"agent\",\"tf_code\":{}}";

void tp_agent_env(harness *h, harness_agent *ag, const harness_devplane *dp, harness_env *env, const char *name)
{
    harness_agent_env(h, ag, dp, env);
    snprintf(ag->data_dir, sizeof ag->data_dir, "%s/data-%s", h->dir, name);
    mkdir(ag->data_dir, 0700);
    harness_env_set(env, "IAC_AGENT_DATA_DIR", ag->data_dir);
    harness_env_set(env, "IAC_AGENT_NAME", name);
    char rel[PATH_MAX], abs[PATH_MAX];
    harness_bin(h, "fake-terraform", rel, sizeof rel);
    assert_non_null(realpath(rel, abs));
    harness_env_set(env, "IAC_ENGINE_PATH", abs); /* a scenario may set it empty to download instead */
    harness_env_set(env, "IAC_AGENT_INIT_RETRY_WAIT", "100ms");
    harness_env_set(env, "IAC_AGENT_STATE_RETRY_WAIT", "100ms");
}

void tp_agent_start(harness *h, harness_agent *ag, const harness_devplane *dp, const harness_env *env, char *id,
                    size_t idlen)
{
    assert_non_null(harness_agent_start(h, ag, env));
    harness_status_wait sw = { ag, NULL };
    assert_true(harness_wait_until(harness_pred_agent_connected, &sw, 5000) >= 0);
    cJSON *st = harness_agent_status(ag);
    const char *got = harness_json_str(st, "agent_id");
    assert_non_null(got);
    snprintf(id, idlen, "%s", got);
    cJSON_Delete(st);
    harness_hb_wait w = { .dp = dp, .id = id, .min_heartbeats = 1 };
    assert_true(harness_wait_until(harness_pred_heartbeat, &w, 5000) >= 0);
}

cJSON *tp_admin_json(const harness_devplane *dp, const char *method, const char *path, const char *body, long want)
{
    char url[512];
    harness_resp r;
    harness_devplane_url(dp, path, url, sizeof url);
    long status = harness_http(method, url, NULL, body, &r);
    if (status != want)
        fail_msg("%s %s → %ld (want %ld): %.300s", method, path, status, want, r.body);
    cJSON *doc = cJSON_Parse(r.body);
    harness_resp_free(&r);
    assert_non_null(doc);
    return doc;
}

void tp_create_workspace(const harness_devplane *dp, const char *tmpl, const char *name, char *id, size_t idlen)
{
    char body[4096];
    snprintf(body, sizeof body, tmpl, name);
    cJSON *doc = tp_admin_json(dp, "POST", "/admin/workspaces", body, 201);
    const char *ws = harness_json_str(doc, "workspace_id");
    assert_non_null(ws);
    snprintf(id, idlen, "%s", ws);
    cJSON_Delete(doc);
}

long tp_queue_task(const harness_devplane *dp, const char *ws, const char *type)
{
    char path[256], body[128];
    snprintf(path, sizeof path, "/admin/workspaces/%s/tasks", ws);
    snprintf(body, sizeof body, "{\"task_type\":\"%s\"}", type);
    cJSON *doc = tp_admin_json(dp, "POST", path, body, 201);
    long id = (long)harness_json_num(doc, "task_id", -1);
    cJSON_Delete(doc);
    assert_true(id > 0);
    return id;
}

cJSON *tp_task_doc(const harness_devplane *dp, long id)
{
    char path[128], url[512];
    snprintf(path, sizeof path, "/admin/tasks/%ld", id);
    harness_devplane_url(dp, path, url, sizeof url);
    return harness_get_json(url);
}

typedef struct {
    const harness_devplane *dp;
    long                    id;
    const char             *status;
} task_wait;

static bool task_status_is(void *arg)
{
    task_wait *w = arg;
    cJSON *doc = tp_task_doc(w->dp, w->id);
    const char *s = harness_json_str(doc, "status");
    bool ok = s && strcmp(s, w->status) == 0;
    cJSON_Delete(doc);
    return ok;
}

/* Waits for the task's status and returns its document (caller frees). */
cJSON *tp_wait_task(const harness_devplane *dp, long id, const char *status, int timeout_ms)
{
    task_wait w = { dp, id, status };
    if (harness_wait_until(task_status_is, &w, timeout_ms) < 0) {
        cJSON *doc = tp_task_doc(dp, id);
        char *text = doc ? cJSON_PrintUnformatted(doc) : NULL;
        print_message("task %ld: %.2000s\n", id, text ? text : "(no document)");
        free(text);
        cJSON_Delete(doc);
        fail_msg("task %ld did not reach %s within %d ms", id, status, timeout_ms);
    }
    return tp_task_doc(dp, id);
}

/* Slot i of the agent's /v1/status: its status and task id. */
const char *tp_slot_status(const harness_agent *ag, int i, long *task)
{
    static char buf[32];
    cJSON *st = harness_agent_status(ag);
    const cJSON *slot = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(st, "slots"), i);
    snprintf(buf, sizeof buf, "%s", harness_json_str(slot, "status") ? harness_json_str(slot, "status") : "?");
    if (task)
        *task = (long)harness_json_num(slot, "task_id", 0);
    cJSON_Delete(st);
    return buf;
}

bool tp_heartbeat_shows_reservation(void *arg)
{
    tp_reserved_wait *w = arg;
    cJSON *agents = harness_admin_agents(w->dp);
    const cJSON *hb = cJSON_GetObjectItemCaseSensitive(harness_agent_row(agents, w->agent_id), "last_heartbeat");
    const cJSON *s0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(hb, "slots"), 0);
    const char *status = harness_json_str(s0, "status");
    bool ok = status && strcmp(status, "reserved") == 0 && (long)harness_json_num(s0, "task_id", 0) == w->task &&
              cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(hb, "apply_running"));
    cJSON_Delete(agents);
    return ok;
}

typedef struct {
    const harness_agent *ag;
    int                  slot;
    const char          *status;
} slot_wait;

static bool slot_is(void *arg)
{
    slot_wait *w = arg;
    return strcmp(tp_slot_status(w->ag, w->slot, NULL), w->status) == 0;
}

/* The slot reaches the status soon: a task frees its slot after its last report (the log upload), which may come
 * a moment after the plane recorded the final status. */
void tp_assert_slot_becomes(const harness_agent *ag, int slot, const char *status)
{
    slot_wait w = { ag, slot, status };
    if (harness_wait_until(slot_is, &w, 3000) < 0)
        fail_msg("slot %d is %s, not %s", slot, tp_slot_status(ag, slot, NULL), status);
}

void tp_assert_task_counts(const cJSON *doc, int add, int change, int destroy)
{
    assert_int_equal((int)harness_json_num(doc, "changes_add", -1), add);
    assert_int_equal((int)harness_json_num(doc, "changes_change", -1), change);
    assert_int_equal((int)harness_json_num(doc, "changes_destroy", -1), destroy);
}

bool tp_invoked_with(const char *state_dir, const char *cmd, const char *text)
{
    char path[HARNESS_PATH_LEN + 32];
    snprintf(path, sizeof path, "%s/invocations.log", state_dir);
    char *log = harness_read_file(path, NULL);
    bool found = false;
    char *save = NULL;
    for (char *line = log ? strtok_r(log, "\n", &save) : NULL; line && !found; line = strtok_r(NULL, "\n", &save)) {
        cJSON *inv = cJSON_Parse(line);
        const char *c = harness_json_str(inv, "cmd");
        found = c && strcmp(c, cmd) == 0 && strstr(line, text);
        cJSON_Delete(inv);
    }
    free(log);
    return found;
}
