/* test_plan_pipeline.c — the plan pipeline end to end: iac-devplane queues tasks of real workspaces, iac-agent runs
 * fake-terraform through init, plan and show -json, uploads plan, plan JSON, resource changes, status and log, and
 * keeps slot 0 reserved for a plan_and_apply that has changes (ref §7.4, DESIGN §4.2, §4.4). Every scenario runs
 * twice: with the devplane pushing tasks, and in pull mode where it sends run_task only in answer to the agent's
 * task_request (DESIGN §6). */
#include "taskplane.h"

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

#define WORKSPACE_TWO TP_WORKSPACE_TWO
#define WORKSPACE_EMPTY TP_WORKSPACE_EMPTY

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
    tp_agent_env(h, &p->ag, &p->dp, &p->env, "agent-it");
    va_list ap;
    va_start(ap, dp_flag);
    for (const char *name; (name = va_arg(ap, const char *));)
        harness_env_set(&p->env, name, va_arg(ap, const char *));
    va_end(ap);
    assert_true(harness_start_pair(h, &p->dp, &p->ag, &p->env, p->agent_id, sizeof p->agent_id) >= 0);
    harness_env_free(&p->env);
}

static bool path_gone(void *path) { return access(path, F_OK) != 0; }
static bool path_there(void *path) { return access(path, F_OK) == 0; }

/* A plan task ends success with its counts, plan file, plan JSON, resource changes and full log stored; slot 1 ran
 * it and is idle again. */
static void plan_task_succeeds_with_everything_stored(void **state)
{
    harness *h = *state;
    pipeline p;
    pipeline_start(h, &p, NULL, NULL);
    char ws[64];
    tp_create_workspace(&p.dp, WORKSPACE_TWO, "plan-ws", ws, sizeof ws);
    long id = tp_queue_task(&p.dp, ws, "plan");
    cJSON *doc = tp_wait_task(&p.dp, id, "success", 10000);
    harness_assert_str(harness_json_str(doc, "stage"), "completed");
    tp_assert_task_counts(doc, 2, 0, 0);
    assert_true(harness_json_true(doc, "has_plan_data"));
    assert_true(harness_json_true(doc, "has_plan_json"));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "resource_changes")), 2);
    assert_true(harness_json_num(doc, "plan_output_bytes", 0) > 0);
    const char *hash = harness_json_str(doc, "plan_hash");
    assert_non_null(hash);
    assert_int_equal(strlen(hash), 64);
    harness_assert_str(harness_json_str(doc, "agent_id"), p.agent_id);
    cJSON_Delete(doc);
    tp_assert_slot_becomes(&p.ag, 1, "idle");
    /* The work directory goes (off the loop, through workdir-pool/gone-…), and a spare stands ready for the next. */
    char dir[HARNESS_PATH_LEN + 96], spare[HARNESS_PATH_LEN + 96];
    snprintf(dir, sizeof dir, "%s/workspaces/%s/%ld", p.ag.data_dir, ws, id);
    snprintf(spare, sizeof spare, "%s/workdir-pool/spare-0/.iac-task.log", p.ag.data_dir);
    assert_true(harness_wait_until(path_gone, dir, 3000) >= 0);
    assert_true(harness_wait_until(path_there, spare, 3000) >= 0);
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
    tp_create_workspace(&p.dp, WORKSPACE_TWO, "pa-ws", ws, sizeof ws);
    long id = tp_queue_task(&p.dp, ws, "plan_and_apply");
    cJSON *doc = tp_wait_task(&p.dp, id, "apply_pending", 10000);
    harness_assert_str(harness_json_str(doc, "stage"), "apply_pending");
    tp_assert_task_counts(doc, 2, 0, 0);
    assert_int_equal((long)harness_json_num(doc, "plan_task_id", 0), id);
    cJSON_Delete(doc);
    char path[128];
    snprintf(path, sizeof path, "/admin/workspaces/%s", ws);
    doc = tp_admin_json(&p.dp, "GET", path, NULL, 200);
    assert_true(harness_json_true(doc, "is_locked"));
    cJSON_Delete(doc);
    long task = 0;
    assert_string_equal(tp_slot_status(&p.ag, 0, &task), "reserved");
    assert_int_equal(task, id);
    /* The plane sees the reservation in a heartbeat within 100 ms of the change (allow 1 s for a loaded machine). */
    tp_reserved_wait rw = { &p.dp, p.agent_id, id };
    assert_true(harness_wait_until(tp_heartbeat_shows_reservation, &rw, 1000) >= 0);

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
    tp_create_workspace(&p.dp, WORKSPACE_EMPTY, "pa-empty", empty, sizeof empty);
    long id2 = tp_queue_task(&p.dp, empty, "plan_and_apply");
    doc = tp_wait_task(&p.dp, id2, "planned_and_finished", 10000);
    tp_assert_task_counts(doc, 0, 0, 0);
    cJSON_Delete(doc);
    tp_assert_slot_becomes(&p.ag, 0, "idle");
    harness_done(h);
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
    tp_create_workspace(&p.dp, WORKSPACE_TWO, "drift-ws", ws, sizeof ws);
    long id = tp_queue_task(&p.dp, ws, "plan");
    cJSON_Delete(tp_wait_task(&p.dp, id, "success", 10000));
    assert_false(tp_invoked_with(tf_state, "plan", "-refresh-only"));
    id = tp_queue_task(&p.dp, ws, "drift_check");
    cJSON *doc = tp_wait_task(&p.dp, id, "success", 10000);
    harness_assert_str(harness_json_str(doc, "stage"), "completed");
    cJSON_Delete(doc);
    assert_true(tp_invoked_with(tf_state, "plan", "-refresh-only"));
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
    tp_create_workspace(&p.dp, WORKSPACE_TWO, "init-ws", ws, sizeof ws);
    long id = tp_queue_task(&p.dp, ws, "plan");
    cJSON *doc = tp_wait_task(&p.dp, id, "success", 15000);
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
    tp_create_workspace(&p.dp, WORKSPACE_TWO, "fail-ws", ws, sizeof ws);
    long id = tp_queue_task(&p.dp, ws, "plan");
    cJSON *doc = tp_wait_task(&p.dp, id, "failed", 10000);
    const char *msg = harness_json_str(doc, "error_message");
    assert_non_null(msg);
    print_message("error_message: %s\n", msg);
    assert_true(strncmp(msg, "Error: Reference to undeclared resource", 39) == 0);
    assert_null(strstr(msg, "[")); /* agent log lines are not part of the message */
    cJSON_Delete(doc);
    tp_assert_slot_becomes(&p.ag, 1, "idle");
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
        n += strcmp(tp_slot_status(&w->p->ag, i, NULL), "running") == 0;
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
        tp_create_workspace(&p.dp, WORKSPACE_TWO, name, ws, sizeof ws);
        ids[i] = tp_queue_task(&p.dp, ws, types[i]);
        if (i == 3) {
            slots_wait w = { &p, 4 };
            assert_true(harness_wait_until(all_slots_running, &w, 5000) >= 0);
        }
    }
    long task = 0;
    assert_string_equal(tp_slot_status(&p.ag, 0, &task), "running");
    assert_int_equal(task, ids[3]);
    /* Push the fifth task at the busy agent as an upstream plane with a stale heartbeat would. */
    char frame[256], path[256];
    snprintf(frame, sizeof frame,
             "{\"type\":\"run_task\",\"payload\":{\"task_id\":%ld,\"workspace_id\":\"x\",\"action\":\"plan\"}}",
             ids[4]);
    snprintf(path, sizeof path, "/admin/agents/%s/send", p.agent_id);
    cJSON_Delete(tp_admin_json(&p.dp, "POST", path, frame, 200));
    for (int i = 0; i < 5; i++) {
        cJSON *doc = tp_wait_task(&p.dp, ids[i], i == 3 ? "apply_pending" : "success", 15000);
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
    tp_create_workspace(&p.dp, WORKSPACE_TWO, "engine-ws", ws, sizeof ws);
    long id = tp_queue_task(&p.dp, ws, "plan");
    cJSON *doc = tp_wait_task(&p.dp, id, "success", 15000);
    tp_assert_task_counts(doc, 2, 0, 0);
    cJSON_Delete(doc);
    char bin[HARNESS_PATH_LEN + 64];
    snprintf(bin, sizeof bin, "%s/engines/1.6.6/terraform", p.ag.data_dir);
    struct stat st;
    assert_int_equal(stat(bin, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0755);
    id = tp_queue_task(&p.dp, ws, "plan");
    cJSON_Delete(tp_wait_task(&p.dp, id, "success", 15000));
    /* One download for both tasks: the devplane served the zip once. */
    assert_int_equal(harness_count_substr(p.dp.proc->err_path, "GET /engines/"), 1);
    harness_done(h);
}

/* A task printing 200 MB of output finishes with the whole log uploaded while the agent's peak RSS stays under
 * 32 MiB: the log goes to the spill file and is streamed from it, never held in memory. The live stream is bounded
 * by the agent's rate (agent.c: bursts of 2,000 frames, 10,000 a second), whatever the socket could take. */
static void huge_output_is_streamed_not_held(void **state)
{
    harness *h = *state;
    pipeline p;
    /* Under AddressSanitizer (make check-asan) freed memory waits in a quarantine of up to 256 MiB, which counts in
     * the agent's RSS; the bound is about the agent's own memory, so the quarantine is kept small. Other builds
     * ignore the variable. */
    char asan[512];
    const char *base = getenv("ASAN_OPTIONS");
    snprintf(asan, sizeof asan, "%s%squarantine_size_mb=4", base ? base : "", base && *base ? ":" : "");
    pipeline_start(h, &p, NULL, "FAKE_TF_OUTPUT_LINES", "2000000", "FAKE_TF_OUTPUT_LINE_BYTES", "100",
                   "ASAN_OPTIONS", asan, NULL);
    char ws[64];
    tp_create_workspace(&p.dp, WORKSPACE_TWO, "big-ws", ws, sizeof ws);
    int64_t t0 = harness_now_ms();
    long id = tp_queue_task(&p.dp, ws, "plan");
    cJSON *doc = tp_wait_task(&p.dp, id, "success", 120000);
    int64_t elapsed = harness_now_ms() - t0;
    assert_true(harness_json_num(doc, "plan_output_bytes", 0) >= 200e6);
    double live = harness_json_num(doc, "live_log_lines", -1);
    print_message("%.0f live lines in %lld ms\n", live, (long long)elapsed);
    assert_true(live > 0 && live <= 2000 + 10.0 * (double)elapsed);
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
