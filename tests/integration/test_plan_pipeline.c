/* test_plan_pipeline.c — the plan pipeline end to end: iac-devplane queues tasks of real workspaces, iac-agent runs
 * fake-terraform through init, plan and show -json, uploads plan, plan JSON, resource changes, status and log, and
 * keeps slot 0 reserved for a plan_and_apply that has changes (ref §7.4, DESIGN §4.2, §4.4). Every scenario runs
 * twice: with the devplane pushing tasks, and in pull mode where it sends run_task only in answer to the agent's
 * task_request (DESIGN §6). */
#include "harness.h"

#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* Two null_resources and a terraform variable: a plan of this workspace has 2 to add. */
static const char *const WORKSPACE_TWO =
    "{\"name\":\"%s\",\"terraform_version\":\"1.6.6\",\"execution_mode\":\"agent\","
    "\"resources\":["
    "{\"resource_id\":\"r1\",\"resource_type\":\"null_resource\",\"resource_name\":\"a\","
    "\"tf_code\":{\"resource\":{\"null_resource\":{\"a\":{\"triggers\":{\"v\":\"1\"}}}}}},"
    "{\"resource_id\":\"r2\",\"resource_type\":\"null_resource\",\"resource_name\":\"b\","
    "\"tf_code\":{\"resource\":{\"null_resource\":{\"b\":{\"triggers\":{\"v\":\"2\"}}}}}}],"
    "\"variables\":[{\"key\":\"greeting\",\"value\":\"hello\",\"variable_type\":\"terraform\","
    "\"value_format\":\"string\",\"sensitive\":false}]}";

/* No resources at all: nothing to change. */
static const char *const WORKSPACE_EMPTY =
    "{\"name\":\"%s\",\"terraform_version\":\"1.6.6\",\"execution_mode\":\"agent\",\"tf_code\":{}}";

/* "--dispatch=push" or "--dispatch=pull": the mode of the group being run. */
static const char *dispatch_mode;

typedef struct {
    harness_devplane dp;
    harness_agent    ag;
    harness_env      env;
    char             agent_id[128];
} pipeline;

/* Starts a devplane (extra flags optional) and an agent that runs build/fake-terraform; more agent variables may be
 * given as NAME, VALUE pairs ending with NULL. */
static void pipeline_start(harness *h, pipeline *p, const char *dp_flag, ...)
{
    memset(p, 0, sizeof *p);
    harness_devplane_init(h, &p->dp);
    p->dp.extra_args[0] = dispatch_mode;
    p->dp.extra_args[1] = dp_flag;
    harness_agent_env(h, &p->ag, &p->dp, &p->env);
    char rel[PATH_MAX], abs[PATH_MAX];
    harness_bin(h, "fake-terraform", rel, sizeof rel);
    assert_non_null(realpath(rel, abs));
    harness_env_set(&p->env, "IAC_ENGINE_PATH", abs); /* a scenario may set it empty to download instead */
    harness_env_set(&p->env, "IAC_AGENT_INIT_RETRY_WAIT", "100ms");
    va_list ap;
    va_start(ap, dp_flag);
    for (const char *name; (name = va_arg(ap, const char *));)
        harness_env_set(&p->env, name, va_arg(ap, const char *));
    va_end(ap);
    assert_true(harness_start_pair(h, &p->dp, &p->ag, &p->env, p->agent_id, sizeof p->agent_id) >= 0);
    harness_env_free(&p->env);
}

static cJSON *admin_json(const pipeline *p, const char *method, const char *path, const char *body, long want)
{
    char url[512];
    harness_resp r;
    harness_devplane_url(&p->dp, path, url, sizeof url);
    long status = harness_http(method, url, NULL, body, &r);
    if (status != want)
        fail_msg("%s %s → %ld (want %ld): %.300s", method, path, status, want, r.body);
    cJSON *doc = cJSON_Parse(r.body);
    harness_resp_free(&r);
    assert_non_null(doc);
    return doc;
}

static void create_workspace(const pipeline *p, const char *tmpl, const char *name, char *id, size_t idlen)
{
    char body[4096];
    snprintf(body, sizeof body, tmpl, name);
    cJSON *doc = admin_json(p, "POST", "/admin/workspaces", body, 201);
    const char *ws = harness_json_str(doc, "workspace_id");
    assert_non_null(ws);
    snprintf(id, idlen, "%s", ws);
    cJSON_Delete(doc);
}

static long queue_task(const pipeline *p, const char *ws, const char *type)
{
    char path[256], body[128];
    snprintf(path, sizeof path, "/admin/workspaces/%s/tasks", ws);
    snprintf(body, sizeof body, "{\"task_type\":\"%s\"}", type);
    cJSON *doc = admin_json(p, "POST", path, body, 201);
    long id = (long)harness_json_num(doc, "task_id", -1);
    cJSON_Delete(doc);
    assert_true(id > 0);
    return id;
}

static cJSON *task_doc(const pipeline *p, long id)
{
    char path[128], url[512];
    snprintf(path, sizeof path, "/admin/tasks/%ld", id);
    harness_devplane_url(&p->dp, path, url, sizeof url);
    return harness_get_json(url);
}

typedef struct {
    const pipeline *p;
    long            id;
    const char     *status;
} task_wait;

static bool task_status_is(void *arg)
{
    task_wait *w = arg;
    cJSON *doc = task_doc(w->p, w->id);
    const char *s = harness_json_str(doc, "status");
    bool ok = s && strcmp(s, w->status) == 0;
    cJSON_Delete(doc);
    return ok;
}

/* Waits for the task's status and returns its document (caller frees). */
static cJSON *wait_task(const pipeline *p, long id, const char *status, int timeout_ms)
{
    task_wait w = { p, id, status };
    if (harness_wait_until(task_status_is, &w, timeout_ms) < 0) {
        cJSON *doc = task_doc(p, id);
        char *text = doc ? cJSON_PrintUnformatted(doc) : NULL;
        print_message("task %ld: %.2000s\n", id, text ? text : "(no document)");
        free(text);
        cJSON_Delete(doc);
        fail_msg("task %ld did not reach %s within %d ms", id, status, timeout_ms);
    }
    return task_doc(p, id);
}

/* Slot i of the agent's /v1/status: its status and task id. */
static const char *slot_status(const pipeline *p, int i, long *task)
{
    static char buf[32];
    cJSON *st = harness_agent_status(&p->ag);
    const cJSON *slot = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(st, "slots"), i);
    snprintf(buf, sizeof buf, "%s", harness_json_str(slot, "status") ? harness_json_str(slot, "status") : "?");
    if (task)
        *task = (long)harness_json_num(slot, "task_id", 0);
    cJSON_Delete(st);
    return buf;
}

typedef struct {
    const pipeline *p;
    long            task;
} reserved_wait;

/* The devplane's last heartbeat of the agent shows slot 0 reserved for the task, with apply_running false. */
static bool heartbeat_shows_reservation(void *arg)
{
    reserved_wait *w = arg;
    cJSON *agents = harness_admin_agents(&w->p->dp);
    const cJSON *hb = cJSON_GetObjectItemCaseSensitive(harness_agent_row(agents, w->p->agent_id), "last_heartbeat");
    const cJSON *s0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(hb, "slots"), 0);
    const char *status = harness_json_str(s0, "status");
    bool ok = status && strcmp(status, "reserved") == 0 && (long)harness_json_num(s0, "task_id", 0) == w->task &&
              cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(hb, "apply_running"));
    cJSON_Delete(agents);
    return ok;
}

typedef struct {
    const pipeline *p;
    int             slot;
    const char     *status;
} slot_wait;

static bool slot_is(void *arg)
{
    slot_wait *w = arg;
    return strcmp(slot_status(w->p, w->slot, NULL), w->status) == 0;
}

/* The slot reaches the status soon: a task frees its slot after its last report (the log upload), which may come
 * a moment after the plane recorded the final status. */
static void assert_slot_becomes(const pipeline *p, int slot, const char *status)
{
    slot_wait w = { p, slot, status };
    if (harness_wait_until(slot_is, &w, 3000) < 0)
        fail_msg("slot %d is %s, not %s", slot, slot_status(p, slot, NULL), status);
}

static void assert_task_counts(const cJSON *doc, int add, int change, int destroy)
{
    assert_int_equal((int)harness_json_num(doc, "changes_add", -1), add);
    assert_int_equal((int)harness_json_num(doc, "changes_change", -1), change);
    assert_int_equal((int)harness_json_num(doc, "changes_destroy", -1), destroy);
}

/* A plan task ends success with its counts, plan file, plan JSON, resource changes and full log stored; slot 1 ran
 * it and is idle again. */
static void plan_task_succeeds_with_everything_stored(void **state)
{
    harness *h = *state;
    pipeline p;
    pipeline_start(h, &p, NULL, NULL);
    char ws[64];
    create_workspace(&p, WORKSPACE_TWO, "plan-ws", ws, sizeof ws);
    long id = queue_task(&p, ws, "plan");
    cJSON *doc = wait_task(&p, id, "success", 10000);
    harness_assert_str(harness_json_str(doc, "stage"), "completed");
    assert_task_counts(doc, 2, 0, 0);
    assert_true(harness_json_true(doc, "has_plan_data"));
    assert_true(harness_json_true(doc, "has_plan_json"));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "resource_changes")), 2);
    assert_true(harness_json_num(doc, "plan_output_bytes", 0) > 0);
    const char *hash = harness_json_str(doc, "plan_hash");
    assert_non_null(hash);
    assert_int_equal(strlen(hash), 64);
    harness_assert_str(harness_json_str(doc, "agent_id"), p.agent_id);
    cJSON_Delete(doc);
    assert_slot_becomes(&p, 1, "idle");
    harness_done(h);
}

/* plan_and_apply with changes: apply_pending, workspace locked, slot 0 reserved for the task in /v1/status and in
 * the heartbeat; the same without changes ends planned_and_finished with slot 0 idle. */
static void plan_and_apply_reserves_slot_zero_only_with_changes(void **state)
{
    harness *h = *state;
    pipeline p;
    pipeline_start(h, &p, NULL, NULL);
    char ws[64], empty[64];
    create_workspace(&p, WORKSPACE_TWO, "pa-ws", ws, sizeof ws);
    long id = queue_task(&p, ws, "plan_and_apply");
    cJSON *doc = wait_task(&p, id, "apply_pending", 10000);
    harness_assert_str(harness_json_str(doc, "stage"), "apply_pending");
    assert_task_counts(doc, 2, 0, 0);
    assert_int_equal((long)harness_json_num(doc, "plan_task_id", 0), id);
    cJSON_Delete(doc);
    char path[128];
    snprintf(path, sizeof path, "/admin/workspaces/%s", ws);
    doc = admin_json(&p, "GET", path, NULL, 200);
    assert_true(harness_json_true(doc, "is_locked"));
    cJSON_Delete(doc);
    long task = 0;
    assert_string_equal(slot_status(&p, 0, &task), "reserved");
    assert_int_equal(task, id);
    /* The plane sees the reservation in a heartbeat within 100 ms of the change (allow 1 s for a loaded machine). */
    reserved_wait rw = { &p, id };
    assert_true(harness_wait_until(heartbeat_shows_reservation, &rw, 1000) >= 0);

    /* Slot 0 is taken: a plan_and_apply of another workspace cannot run here; free it first. */
    char url[256];
    harness_resp r;
    char workdir[HARNESS_PATH_LEN + 96];
    snprintf(workdir, sizeof workdir, "%s/workspaces/%s/%ld/plan.out", p.ag.data_dir, ws, id);
    assert_int_equal(access(workdir, F_OK), 0); /* the warm work directory is kept for the apply */
    harness_agent_url(&p.ag, "/v1/slots/0/reservation", url, sizeof url);
    assert_int_equal(harness_http("DELETE", url, p.dp.token, NULL, &r), 200);
    harness_resp_free(&r);
    assert_int_not_equal(access(workdir, F_OK), 0); /* and removed with the reservation */
    create_workspace(&p, WORKSPACE_EMPTY, "pa-empty", empty, sizeof empty);
    long id2 = queue_task(&p, empty, "plan_and_apply");
    doc = wait_task(&p, id2, "planned_and_finished", 10000);
    assert_task_counts(doc, 0, 0, 0);
    cJSON_Delete(doc);
    assert_slot_becomes(&p, 0, "idle");
    harness_done(h);
}

/* Whether fake-terraform's invocation log has a plan whose arguments include (or not) `flag`. */
static bool plan_invoked_with(const char *state_dir, const char *flag)
{
    char path[HARNESS_PATH_LEN + 32];
    snprintf(path, sizeof path, "%s/invocations.log", state_dir);
    char *text = harness_read_file(path, NULL);
    bool found = false;
    for (char *line = text ? strtok(text, "\n") : NULL; line && !found; line = strtok(NULL, "\n")) {
        cJSON *inv = cJSON_Parse(line);
        const char *cmd = harness_json_str(inv, "cmd");
        char *args = cmd && strcmp(cmd, "plan") == 0
                         ? cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(inv, "args")) : NULL;
        found = args && strstr(args, flag);
        free(args);
        cJSON_Delete(inv);
    }
    free(text);
    return found;
}

/* drift_check runs terraform plan with -refresh-only (seen by terraform itself) and ends success; a plain plan
 * does not get the flag. */
static void drift_check_runs_refresh_only(void **state)
{
    harness *h = *state;
    pipeline p;
    char tf_state[HARNESS_PATH_LEN];
    snprintf(tf_state, sizeof tf_state, "%s/fake-tf-state", h->dir);
    pipeline_start(h, &p, NULL, "FAKE_TF_STATE_DIR", tf_state, NULL);
    char ws[64];
    create_workspace(&p, WORKSPACE_TWO, "drift-ws", ws, sizeof ws);
    long id = queue_task(&p, ws, "plan");
    cJSON_Delete(wait_task(&p, id, "success", 10000));
    assert_false(plan_invoked_with(tf_state, "-refresh-only"));
    id = queue_task(&p, ws, "drift_check");
    cJSON *doc = wait_task(&p, id, "success", 10000);
    harness_assert_str(harness_json_str(doc, "stage"), "completed");
    cJSON_Delete(doc);
    assert_true(plan_invoked_with(tf_state, "-refresh-only"));
    harness_done(h);
}

/* Two transient init failures (registry unreachable) are retried; the third attempt succeeds and so does the task. */
static void transient_init_failures_are_retried(void **state)
{
    harness *h = *state;
    pipeline p;
    char counter[HARNESS_PATH_LEN];
    snprintf(counter, sizeof counter, "%s/fake-tf-state", h->dir);
    pipeline_start(h, &p, NULL, "FAKE_TF_INIT_FAIL_TIMES", "2", "FAKE_TF_STATE_DIR", counter, NULL);
    char ws[64];
    create_workspace(&p, WORKSPACE_TWO, "init-ws", ws, sizeof ws);
    long id = queue_task(&p, ws, "plan");
    cJSON *doc = wait_task(&p, id, "success", 15000);
    cJSON_Delete(doc);
    harness_done(h);
}

/* A terraform error fails the task with the extracted "Error:" block as error_message; the slot is idle again. */
static void terraform_error_fails_with_extracted_message(void **state)
{
    harness *h = *state;
    pipeline p;
    pipeline_start(h, &p, NULL, "FAKE_TF_FAIL", "plan", NULL);
    char ws[64];
    create_workspace(&p, WORKSPACE_TWO, "fail-ws", ws, sizeof ws);
    long id = queue_task(&p, ws, "plan");
    cJSON *doc = wait_task(&p, id, "failed", 10000);
    const char *msg = harness_json_str(doc, "error_message");
    assert_non_null(msg);
    print_message("error_message: %s\n", msg);
    assert_true(strncmp(msg, "Error: Reference to undeclared resource", 39) == 0);
    assert_null(strstr(msg, "[")); /* agent log lines are not part of the message */
    cJSON_Delete(doc);
    assert_slot_becomes(&p, 1, "idle");
    harness_done(h);
}

typedef struct {
    const pipeline *p;
    int             running;
} slots_wait;

static bool all_slots_running(void *arg)
{
    slots_wait *w = arg;
    int n = 0;
    for (int i = 0; i < 4; i++)
        n += strcmp(slot_status(w->p, i, NULL), "running") == 0;
    return n == w->running;
}

/* Three plans and one plan_and_apply at once on a 4-slot agent run concurrently, the plan_and_apply in slot 0; a
 * fifth task pushed while all slots are busy is rejected and returned to the queue, and runs once a slot frees. */
static void four_tasks_run_at_once_and_a_fifth_waits(void **state)
{
    harness *h = *state;
    pipeline p;
    pipeline_start(h, &p, NULL, "FAKE_TF_PLAN_DELAY_MS", "1500", NULL);
    static const char *const types[] = { "plan", "plan", "plan", "plan_and_apply", "plan" };
    long ids[5];
    for (int i = 0; i < 5; i++) {
        char name[32], ws[64];
        snprintf(name, sizeof name, "conc-%d", i);
        create_workspace(&p, WORKSPACE_TWO, name, ws, sizeof ws);
        ids[i] = queue_task(&p, ws, types[i]);
        if (i == 3) {
            slots_wait w = { &p, 4 };
            assert_true(harness_wait_until(all_slots_running, &w, 5000) >= 0);
        }
    }
    long task = 0;
    assert_string_equal(slot_status(&p, 0, &task), "running");
    assert_int_equal(task, ids[3]);
    /* Push the fifth task at the busy agent as an upstream plane with a stale heartbeat would. */
    char frame[256], path[256];
    snprintf(frame, sizeof frame,
             "{\"type\":\"run_task\",\"payload\":{\"task_id\":%ld,\"workspace_id\":\"x\",\"action\":\"plan\"}}",
             ids[4]);
    snprintf(path, sizeof path, "/admin/agents/%s/send", p.agent_id);
    cJSON_Delete(admin_json(&p, "POST", path, frame, 200));
    for (int i = 0; i < 5; i++) {
        cJSON *doc = wait_task(&p, ids[i], i == 3 ? "apply_pending" : "success", 15000);
        if (i == 4) {
            char *text = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(doc, "events"));
            assert_non_null(text);
            assert_non_null(strstr(text, "reject"));
            free(text);
        }
        cJSON_Delete(doc);
    }
    harness_done(h);
}

/* Writes a zip holding `file` under the name "terraform" (mode 0755), as a release archive is laid out. */
static void make_engine_zip(const char *file, const char *zip_path)
{
    struct archive *a = archive_write_new();
    assert_int_equal(archive_write_set_format_zip(a), ARCHIVE_OK);
    assert_int_equal(archive_write_open_filename(a, zip_path), ARCHIVE_OK);
    size_t len = 0;
    char *data = harness_read_file(file, &len);
    assert_non_null(data);
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, "terraform");
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0755);
    archive_entry_set_size(e, (la_int64_t)len);
    assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
    assert_int_equal(archive_write_data(a, data, len), (la_ssize_t)len);
    archive_entry_free(e);
    free(data);
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
}

/* Without IAC_ENGINE_PATH the agent resolves the workspace's version (E19), downloads the zip the plane serves,
 * checks its SHA-256, unpacks it into the data dir and runs it; a second task uses the cached binary. */
static void engine_is_downloaded_verified_and_cached(void **state)
{
    harness *h = *state;
    char rel[PATH_MAX], zip[HARNESS_PATH_LEN + 32], zip_flag[HARNESS_PATH_LEN + 64];
    harness_bin(h, "fake-terraform", rel, sizeof rel);
    snprintf(zip, sizeof zip, "%s/terraform_1.6.6_linux_amd64.zip", h->dir);
    make_engine_zip(rel, zip);
    snprintf(zip_flag, sizeof zip_flag, "--engine-zip=%s", zip);
    pipeline p;
    memset(&p, 0, sizeof p);
    harness_devplane_init(h, &p.dp);
    p.dp.extra_args[0] = dispatch_mode;
    p.dp.extra_args[1] = zip_flag;
    p.dp.extra_args[2] = "--engine-version=1.6.6";
    harness_agent_env(h, &p.ag, &p.dp, &p.env);
    assert_true(harness_start_pair(h, &p.dp, &p.ag, &p.env, p.agent_id, sizeof p.agent_id) >= 0);
    harness_env_free(&p.env);
    char ws[64];
    create_workspace(&p, WORKSPACE_TWO, "engine-ws", ws, sizeof ws);
    long id = queue_task(&p, ws, "plan");
    cJSON *doc = wait_task(&p, id, "success", 15000);
    assert_task_counts(doc, 2, 0, 0);
    cJSON_Delete(doc);
    char bin[HARNESS_PATH_LEN + 64];
    snprintf(bin, sizeof bin, "%s/engines/1.6.6/terraform", p.ag.data_dir);
    struct stat st;
    assert_int_equal(stat(bin, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0755);
    id = queue_task(&p, ws, "plan");
    cJSON_Delete(wait_task(&p, id, "success", 15000));
    /* One download for both tasks: the devplane served the zip once. */
    assert_int_equal(harness_count_substr(p.dp.proc->err_path, "GET /engines/"), 1);
    harness_done(h);
}

/* A task printing 200 MB of output finishes with the whole log uploaded while the agent's peak RSS stays under
 * 32 MiB: the log goes to the spill file and is streamed from it, never held in memory. */
static void huge_output_is_streamed_not_held(void **state)
{
    harness *h = *state;
    pipeline p;
    pipeline_start(h, &p, NULL, "FAKE_TF_OUTPUT_LINES", "2000000", "FAKE_TF_OUTPUT_LINE_BYTES", "100", NULL);
    char ws[64];
    create_workspace(&p, WORKSPACE_TWO, "big-ws", ws, sizeof ws);
    long id = queue_task(&p, ws, "plan");
    cJSON *doc = wait_task(&p, id, "success", 120000);
    assert_true(harness_json_num(doc, "plan_output_bytes", 0) >= 200e6);
    cJSON_Delete(doc);
    char status_path[64];
    snprintf(status_path, sizeof status_path, "/proc/%d/status", (int)p.ag.proc->pid);
    char *text = harness_read_file(status_path, NULL);
    assert_non_null(text);
    const char *hwm = strstr(text, "VmHWM:");
    assert_non_null(hwm);
    long kib = strtol(hwm + 6, NULL, 10);
    free(text);
    print_message("agent peak RSS %ld KiB\n", kib);
    assert_true(kib < 32 * 1024);
    harness_done(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(plan_task_succeeds_with_everything_stored, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(plan_and_apply_reserves_slot_zero_only_with_changes, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(drift_check_runs_refresh_only, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(transient_init_failures_are_retried, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(terraform_error_fails_with_extracted_message, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(four_tasks_run_at_once_and_a_fifth_waits, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(engine_is_downloaded_verified_and_cached, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(huge_output_is_streamed_not_held, harness_setup, harness_teardown),
    };
    dispatch_mode = "--dispatch=push";
    int failed = cmocka_run_group_tests_name("push", tests, NULL, NULL);
    dispatch_mode = "--dispatch=pull";
    failed += cmocka_run_group_tests_name("pull", tests, NULL, NULL);
    return failed;
}
