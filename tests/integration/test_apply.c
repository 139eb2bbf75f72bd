/* test_apply.c — the apply phase and the reservation lifecycle (ref §7.5, §7.8, DESIGN §4.2–4.4): a confirmed apply
 * runs warm on the slot 0 its plan reserved (the seed incident "task 598"), cold elsewhere when that pod is gone;
 * cancellation reaches terraform as SIGINT and a cancelled apply's partial state is kept; reservations end on TTL,
 * on an operator call and when the apply was given to another agent; a restart keeps the reservation and reports
 * the plan it interrupted; SIGTERM lets running work finish or interrupts and reports it. */
#include "taskplane.h"
#include "iac/fsutil.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

typedef struct {
    harness_agent ag;
    char          id[128];
    char          tf_state[HARNESS_PATH_LEN]; /* fake-terraform's invocation log directory */
    harness_env  *env;                        /* kept for restarts; owned by the teardown (envs[]) */
} agent_t;

/* The agents' environments of the running test: the teardown frees them, even when a test fails early (the
 * agent_t themselves live on the test's stack, gone by then). */
static harness_env envs[8];
static int nenvs;

static int apply_teardown(void **state)
{
    for (int i = 0; i < nenvs; i++)
        harness_env_free(&envs[i]);
    nenvs = 0;
    return harness_teardown(state);
}

/* Starts the devplane with up to two extra flags. */
static void plane_start(harness *h, harness_devplane *dp, const char *flag1, const char *flag2)
{
    memset(dp, 0, sizeof *dp);
    harness_devplane_init(h, dp);
    dp->extra_args[0] = flag1;
    dp->extra_args[1] = flag1 ? flag2 : NULL;
    assert_int_equal(harness_devplane_start(h, dp), 0);
}

/* Prepares an agent named `name` (its own data dir and fake-terraform log dir); more variables as NAME, VALUE
 * pairs ending with NULL. The environment stays in a->env so that the agent can be restarted alike. */
static void agent_prepare(harness *h, agent_t *a, const harness_devplane *dp, const char *name, ...)
{
    memset(a, 0, sizeof *a);
    assert_true(nenvs < (int)(sizeof envs / sizeof envs[0]));
    a->env = &envs[nenvs++];
    memset(a->env, 0, sizeof *a->env);
    tp_agent_env(h, &a->ag, dp, a->env, name);
    snprintf(a->tf_state, sizeof a->tf_state, "%s/tf-%s", h->dir, name);
    harness_env_set(a->env, "FAKE_TF_STATE_DIR", a->tf_state);
    va_list ap;
    va_start(ap, name);
    for (const char *k; (k = va_arg(ap, const char *));)
        harness_env_set(a->env, k, va_arg(ap, const char *));
    va_end(ap);
}

static void agent_run(harness *h, agent_t *a, const harness_devplane *dp)
{
    tp_agent_start(h, &a->ag, dp, a->env, a->id, sizeof a->id);
}

static void agent_start(harness *h, agent_t *a, const harness_devplane *dp, const char *name)
{
    agent_prepare(h, a, dp, name, NULL);
    agent_run(h, a, dp);
}

static long plan_until_apply_pending(const harness_devplane *dp, const char *ws)
{
    long id = tp_queue_task(dp, ws, "plan_and_apply");
    cJSON_Delete(tp_wait_task(dp, id, "apply_pending", 15000));
    return id;
}

/* The common opening: a devplane, one agent ("agent-a"), a two-resource workspace and its plan_and_apply planned
 * to apply_pending (slot 0 reserved on the agent). Returns the task id. */
static long one_agent_with_a_pending_apply(harness *h, harness_devplane *dp, agent_t *a, const char *name, char *ws,
                                           size_t wslen)
{
    plane_start(h, dp, NULL, NULL);
    agent_start(h, a, dp, "agent-a");
    tp_create_workspace(dp, TP_WORKSPACE_TWO, name, ws, wslen);
    return plan_until_apply_pending(dp, ws);
}

static void confirm(const harness_devplane *dp, long id)
{
    char path[128];
    snprintf(path, sizeof path, "/admin/tasks/%ld/confirm", id);
    cJSON_Delete(tp_admin_json(dp, "POST", path, "{\"apply_description\":\"integration test\"}", 200));
}

static void cancel(const harness_devplane *dp, long id, bool force)
{
    char path[128];
    snprintf(path, sizeof path, "/admin/tasks/%ld/cancel%s", id, force ? "?force=true" : "");
    cJSON_Delete(tp_admin_json(dp, "POST", path, NULL, 200));
}

/* The text of a task's stored apply output. */
static char *apply_output(const harness_devplane *dp, long id)
{
    char path[128], url[512];
    harness_resp r;
    snprintf(path, sizeof path, "/admin/tasks/%ld/apply-output", id);
    harness_devplane_url(dp, path, url, sizeof url);
    assert_int_equal(harness_http("GET", url, NULL, NULL, &r), 200);
    return r.body; /* the caller frees */
}

static int state_versions(const harness_devplane *dp, const char *ws, bool *locked)
{
    char path[128];
    snprintf(path, sizeof path, "/admin/workspaces/%s", ws);
    cJSON *doc = tp_admin_json(dp, "GET", path, NULL, 200);
    int n = (int)harness_json_num(doc, "state_versions", -1);
    if (locked)
        *locked = harness_json_true(doc, "is_locked");
    cJSON_Delete(doc);
    return n;
}

typedef struct {
    const char *dir;
    const char *cmd;
    const char *text;
} invoked_wait;

static bool invoked(void *arg)
{
    invoked_wait *w = arg;
    return tp_invoked_with(w->dir, w->cmd, w->text);
}

static void wait_invoked(const char *dir, const char *cmd, const char *text, int timeout_ms)
{
    invoked_wait w = { dir, cmd, text };
    if (harness_wait_until(invoked, &w, timeout_ms) < 0)
        fail_msg("fake-terraform never logged %s with \"%s\"", cmd, text);
}

typedef struct {
    const harness_devplane *dp;
    long                    task;
} applying_wait;

/* The plane records a resource of the task as applying (from the agent's resource_status_update frames). */
static bool a_resource_is_applying(void *arg)
{
    applying_wait *w = arg;
    cJSON *doc = tp_task_doc(w->dp, w->task);
    char *text = doc ? cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(doc, "resource_changes")) : NULL;
    bool ok = text && strstr(text, "\"apply_status\":\"applying\"");
    free(text);
    cJSON_Delete(doc);
    return ok;
}

/* Seed incident "task 598": a plan_and_apply reaches apply_pending on agent A while agent B is idle; confirming
 * it runs the apply on A's slot 0 with init skipped, stores a state version, ends applied, unlocks the workspace
 * and frees A's slot 0. */
static void confirmed_apply_runs_warm_on_the_reserving_agent(void **state)
{
    harness *h = *state;
    harness_devplane dp;
    agent_t a, b;
    plane_start(h, &dp, NULL, NULL);
    agent_start(h, &a, &dp, "agent-a");
    char ws[64];
    tp_create_workspace(&dp, TP_WORKSPACE_TWO, "seed-598", ws, sizeof ws);
    long id = plan_until_apply_pending(&dp, ws);
    agent_start(h, &b, &dp, "agent-b");
    confirm(&dp, id);
    cJSON *doc = tp_wait_task(&dp, id, "applied", 15000);
    harness_assert_str(harness_json_str(doc, "agent_id"), a.id);
    cJSON_Delete(doc);
    char *out = apply_output(&dp, id);
    assert_non_null(strstr(out, "APPLYING BEGIN"));
    assert_null(strstr(out, "INIT BEGIN"));           /* warm: the plan's providers were still there */
    assert_null(strstr(out, "RESTORING_PLAN BEGIN")); /* and its plan.out */
    free(out);
    bool locked = true;
    assert_int_equal(state_versions(&dp, ws, &locked), 1);
    assert_false(locked);
    tp_assert_slot_becomes(&a.ag, 0, "idle");
    assert_false(tp_invoked_with(b.tf_state, "apply", "apply"));
    harness_done(h);
}

/* Pod lost: agent A, holding the reservation, is killed and gone; the confirmed apply runs cold on agent B (init,
 * plan restored from plan_data) and ends applied. */
static void apply_runs_cold_elsewhere_when_the_pod_is_gone(void **state)
{
    harness *h = *state;
    harness_devplane dp;
    agent_t a, b;
    plane_start(h, &dp, NULL, NULL);
    agent_start(h, &a, &dp, "agent-a");
    char ws[64];
    tp_create_workspace(&dp, TP_WORKSPACE_TWO, "pod-lost", ws, sizeof ws);
    long id = plan_until_apply_pending(&dp, ws);
    harness_kill(a.ag.proc, SIGKILL);
    assert_int_equal(harness_wait_exit(a.ag.proc, 3000, NULL), -SIGKILL);
    agent_start(h, &b, &dp, "agent-b");
    confirm(&dp, id);
    cJSON *doc = tp_wait_task(&dp, id, "applied", 20000);
    harness_assert_str(harness_json_str(doc, "agent_id"), b.id);
    cJSON_Delete(doc);
    char *out = apply_output(&dp, id);
    assert_non_null(strstr(out, "INIT BEGIN"));
    assert_non_null(strstr(out, "RESTORING_PLAN BEGIN"));
    free(out);
    assert_int_equal(state_versions(&dp, ws, NULL), 1);
    tp_assert_slot_becomes(&b.ag, 0, "idle");
    harness_done(h);
}

/* A second plan_and_apply pushed to an agent whose slot 0 is reserved is rejected (and returned to the queue);
 * it runs on another agent. */
static void plan_and_apply_pushed_to_a_reserved_agent_runs_elsewhere(void **state)
{
    harness *h = *state;
    harness_devplane dp;
    agent_t a, b;
    plane_start(h, &dp, NULL, NULL);
    agent_start(h, &a, &dp, "agent-a");
    char ws1[64], ws2[64], frame[256], path[256];
    tp_create_workspace(&dp, TP_WORKSPACE_TWO, "first", ws1, sizeof ws1);
    long first = plan_until_apply_pending(&dp, ws1);
    tp_create_workspace(&dp, TP_WORKSPACE_TWO, "second", ws2, sizeof ws2);
    long second = tp_queue_task(&dp, ws2, "plan_and_apply");
    /* As an upstream plane that ignores slots would: push it at A anyway. */
    snprintf(frame, sizeof frame,
             "{\"type\":\"run_task\",\"payload\":{\"task_id\":%ld,\"workspace_id\":\"%s\",\"action\":\"plan\"}}",
             second, ws2);
    snprintf(path, sizeof path, "/admin/agents/%s/send", a.id);
    cJSON_Delete(tp_admin_json(&dp, "POST", path, frame, 200));
    agent_start(h, &b, &dp, "agent-b");
    cJSON *doc = tp_wait_task(&dp, second, "apply_pending", 15000);
    harness_assert_str(harness_json_str(doc, "agent_id"), b.id);
    char *events = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(doc, "events"));
    assert_non_null(strstr(events, "reject"));
    free(events);
    cJSON_Delete(doc);
    long task = 0;
    assert_string_equal(tp_slot_status(&a.ag, 0, &task), "reserved");
    assert_int_equal(task, first);
    harness_done(h);
}

/* Cancel during a plan: terraform receives SIGINT, the task ends cancelled and the slot is freed. */
static void cancel_during_plan_interrupts_terraform(void **state)
{
    harness *h = *state;
    harness_devplane dp;
    agent_t a;
    plane_start(h, &dp, NULL, NULL);
    agent_prepare(h, &a, &dp, "agent-a", "FAKE_TF_PLAN_DELAY_MS", "20000", NULL);
    agent_run(h, &a, &dp);
    char ws[64];
    tp_create_workspace(&dp, TP_WORKSPACE_TWO, "cancel-plan", ws, sizeof ws);
    long id = tp_queue_task(&dp, ws, "plan");
    wait_invoked(a.tf_state, "plan", "plan", 10000);
    cancel(&dp, id, false);
    wait_invoked(a.tf_state, "plan", "SIGINT", 3000);
    cJSON_Delete(tp_wait_task(&dp, id, "cancelled", 5000));
    tp_assert_slot_becomes(&a.ag, 1, "idle");
    harness_done(h);
}

/* Cancel during an apply (force): terraform receives SIGINT, stops after the resource in progress and writes its
 * state; the partial state is uploaded, the task ends cancelled and slot 0 is freed. */
static void cancelled_apply_keeps_its_partial_state(void **state)
{
    harness *h = *state;
    harness_devplane dp;
    agent_t a;
    plane_start(h, &dp, NULL, NULL);
    agent_prepare(h, &a, &dp, "agent-a", "FAKE_TF_APPLY_DELAY_MS", "1500", NULL);
    agent_run(h, &a, &dp);
    char ws[64];
    tp_create_workspace(&dp, TP_WORKSPACE_TWO, "cancel-apply", ws, sizeof ws);
    long id = plan_until_apply_pending(&dp, ws);
    confirm(&dp, id);
    /* Cancel once the plane has heard (resource_status_update) that a resource is being created: its 1.5 s are
     * under way, so terraform saves it before it stops and there is a partial state to keep. */
    applying_wait aw = { &dp, id };
    assert_true(harness_wait_until(a_resource_is_applying, &aw, 10000) >= 0);
    cancel(&dp, id, true);
    wait_invoked(a.tf_state, "apply", "SIGINT", 3000);
    cJSON_Delete(tp_wait_task(&dp, id, "cancelled", 10000));
    tp_assert_slot_becomes(&a.ag, 0, "idle");
    bool locked = true;
    assert_int_equal(state_versions(&dp, ws, &locked), 1); /* the resource applied before the interrupt is recorded */
    assert_false(locked);
    harness_done(h);
}

/* kill -9 of an agent holding a reservation and running a plan: after the restart the reservation is still in its
 * heartbeat and the plan is failed with the restart message. */
static void restart_keeps_the_reservation_and_reports_the_interrupted_plan(void **state)
{
    harness *h = *state;
    harness_devplane dp;
    agent_t a;
    plane_start(h, &dp, NULL, NULL);
    agent_prepare(h, &a, &dp, "agent-a", NULL);
    agent_run(h, &a, &dp);
    char ws1[64], ws2[64];
    tp_create_workspace(&dp, TP_WORKSPACE_TWO, "held", ws1, sizeof ws1);
    long held = plan_until_apply_pending(&dp, ws1);
    harness_kill(a.ag.proc, SIGKILL);
    harness_wait_exit(a.ag.proc, 3000, NULL);
    /* Restart with slow plans, queue one, and kill the agent in the middle of it. */
    harness_env_set(a.env, "FAKE_TF_PLAN_DELAY_MS", "20000");
    agent_run(h, &a, &dp);
    tp_create_workspace(&dp, TP_WORKSPACE_TWO, "running", ws2, sizeof ws2);
    long running = tp_queue_task(&dp, ws2, "plan");
    wait_invoked(a.tf_state, "plan", ws2, 10000);
    harness_kill(a.ag.proc, SIGKILL);
    harness_wait_exit(a.ag.proc, 3000, NULL);
    agent_run(h, &a, &dp);
    tp_reserved_wait rw = { &dp, a.id, held };
    assert_true(harness_wait_until(tp_heartbeat_shows_reservation, &rw, 3000) >= 0);
    cJSON *doc = tp_wait_task(&dp, running, "failed", 5000);
    const char *msg = harness_json_str(doc, "error_message");
    assert_non_null(msg);
    assert_non_null(strstr(msg, "agent restarted during execution"));
    cJSON_Delete(doc);
    harness_done(h);
}

typedef struct {
    const char *data_dir;
    long        task;
} saved_wait;

/* The agent's state.json holds a slot running the task. */
static bool state_names_task(void *arg)
{
    saved_wait *w = arg;
    char path[HARNESS_PATH_LEN + 32], want[64];
    snprintf(path, sizeof path, "%s/state.json", w->data_dir);
    snprintf(want, sizeof want, "\"task_id\":%ld,", w->task);
    char *text = NULL;
    size_t len;
    bool ok = fs_read_file(path, 1 << 20, &text, &len) == 0 && strstr(text, want) && strstr(text, "\"running\"");
    free(text);
    return ok;
}

/* The slot a task takes is saved as its first command starts (right after init is spawned, not when run_task
 * arrives: executor.c, exec_take): an agent killed while init runs still reports the task after its restart. */
static void restart_reports_a_task_killed_during_init(void **state)
{
    harness *h = *state;
    harness_devplane dp;
    agent_t a;
    plane_start(h, &dp, NULL, NULL);
    agent_prepare(h, &a, &dp, "agent-a", NULL);
    harness_env_set(a.env, "FAKE_TF_INIT_DELAY_MS", "20000");
    agent_run(h, &a, &dp);
    char ws[64];
    tp_create_workspace(&dp, TP_WORKSPACE_TWO, "in-init", ws, sizeof ws);
    long task = tp_queue_task(&dp, ws, "plan");
    wait_invoked(a.tf_state, "init", ws, 10000);
    /* the take is saved a moment after the spawn (executor.c, exec_take), not at the frame nor at the plan */
    saved_wait sw = { a.ag.data_dir, task };
    if (harness_wait_until(state_names_task, &sw, 3000) < 0)
        fail_msg("state.json never named task %ld while its init ran", task);
    harness_kill(a.ag.proc, SIGKILL);
    harness_wait_exit(a.ag.proc, 3000, NULL);
    agent_run(h, &a, &dp);
    cJSON *doc = tp_wait_task(&dp, task, "failed", 5000);
    const char *msg = harness_json_str(doc, "error_message");
    assert_non_null(msg);
    assert_non_null(strstr(msg, "agent restarted during execution"));
    cJSON_Delete(doc);
    harness_done(h);
}

/* Reservation TTL expiry frees slot 0 and removes the work directory. */
static void reservation_ttl_frees_slot_zero(void **state)
{
    harness *h = *state;
    harness_devplane dp;
    agent_t a;
    plane_start(h, &dp, NULL, NULL);
    agent_prepare(h, &a, &dp, "agent-a", "IAC_AGENT_RESERVATION_TTL", "2s", NULL);
    agent_run(h, &a, &dp);
    char ws[64], dir[HARNESS_PATH_LEN + 128];
    tp_create_workspace(&dp, TP_WORKSPACE_TWO, "ttl", ws, sizeof ws);
    long id = plan_until_apply_pending(&dp, ws);
    snprintf(dir, sizeof dir, "%s/workspaces/%s/%ld", a.ag.data_dir, ws, id);
    assert_int_equal(access(dir, F_OK), 0);
    tp_assert_slot_becomes(&a.ag, 0, "idle"); /* within 3 s of a 2 s TTL */
    assert_int_not_equal(access(dir, F_OK), 0);
    harness_done(h);
}

/* The apply of A's reserved task given to agent B (an upstream plane picks any agent whose apply_running is
 * false; A is draining here so it is B): B applies cold, and A's ownership check releases A's slot 0 within 70 s. */
static void apply_given_to_another_agent_releases_the_reservation(void **state)
{
    harness *h = *state;
    harness_devplane dp;
    agent_t a, b;
    plane_start(h, &dp, "--apply-dispatch=upstream", NULL);
    agent_start(h, &a, &dp, "agent-a");
    char ws[64], url[256];
    tp_create_workspace(&dp, TP_WORKSPACE_TWO, "moved", ws, sizeof ws);
    long id = plan_until_apply_pending(&dp, ws);
    harness_resp r;
    harness_agent_url(&a.ag, "/v1/drain", url, sizeof url);
    assert_int_equal(harness_http("POST", url, dp.token, NULL, &r), 200);
    harness_resp_free(&r);
    agent_start(h, &b, &dp, "agent-b");
    confirm(&dp, id);
    cJSON *doc = tp_wait_task(&dp, id, "applied", 20000);
    harness_assert_str(harness_json_str(doc, "agent_id"), b.id);
    cJSON_Delete(doc);
    int64_t t0 = harness_now_ms();
    tp_assert_slot_becomes(&a.ag, 0, "reserved");
    harness_agent_url(&a.ag, "/v1/undrain", url, sizeof url);
    assert_int_equal(harness_http("POST", url, dp.token, NULL, &r), 200);
    harness_resp_free(&r);
    while (strcmp(tp_slot_status(&a.ag, 0, NULL), "idle") != 0 && harness_now_ms() - t0 < 70000)
        usleep(200 * 1000);
    print_message("A released slot 0 %lld ms after B's apply\n", (long long)(harness_now_ms() - t0));
    assert_string_equal(tp_slot_status(&a.ag, 0, NULL), "idle");
    harness_done(h);
}

/* SIGTERM with a running plan that finishes within the drain budget: the task succeeds, then the agent exits 0. */
static void sigterm_lets_a_running_plan_finish(void **state)
{
    harness *h = *state;
    harness_devplane dp;
    agent_t a;
    plane_start(h, &dp, NULL, NULL);
    agent_prepare(h, &a, &dp, "agent-a", "FAKE_TF_PLAN_DELAY_MS", "1500", NULL);
    agent_run(h, &a, &dp);
    char ws[64];
    tp_create_workspace(&dp, TP_WORKSPACE_TWO, "drain-ok", ws, sizeof ws);
    long id = tp_queue_task(&dp, ws, "plan");
    wait_invoked(a.tf_state, "plan", "plan", 10000);
    harness_kill(a.ag.proc, SIGTERM);
    assert_int_equal(harness_wait_exit(a.ag.proc, 10000, NULL), 0);
    cJSON *doc = tp_task_doc(&dp, id);
    harness_assert_str(harness_json_str(doc, "status"), "success"); /* reported before the exit */
    cJSON_Delete(doc);
    harness_done(h);
}

/* SIGTERM with a plan that does not finish within the drain budget: it is interrupted and reported failed, then
 * the agent exits 0. */
static void sigterm_interrupts_a_plan_past_the_budget(void **state)
{
    harness *h = *state;
    harness_devplane dp;
    agent_t a;
    plane_start(h, &dp, NULL, NULL);
    agent_prepare(h, &a, &dp, "agent-a", "FAKE_TF_PLAN_DELAY_MS", "30000", "IAC_AGENT_DRAIN_TIMEOUT", "1s",
                  "IAC_AGENT_CANCEL_GRACE", "2s", NULL);
    agent_run(h, &a, &dp);
    char ws[64];
    tp_create_workspace(&dp, TP_WORKSPACE_TWO, "drain-late", ws, sizeof ws);
    long id = tp_queue_task(&dp, ws, "plan");
    wait_invoked(a.tf_state, "plan", "plan", 10000);
    harness_kill(a.ag.proc, SIGTERM);
    assert_int_equal(harness_wait_exit(a.ag.proc, 15000, NULL), 0);
    assert_true(tp_invoked_with(a.tf_state, "plan", "SIGINT"));
    cJSON *doc = tp_task_doc(&dp, id);
    harness_assert_str(harness_json_str(doc, "status"), "failed");
    const char *msg = harness_json_str(doc, "error_message");
    assert_non_null(msg);
    assert_non_null(strstr(msg, "shutting down"));
    cJSON_Delete(doc);
    harness_done(h);
}

/* State upload failing with 5xx for the first attempts, then succeeding, creates exactly one state version. */
static void state_upload_retries_create_one_version(void **state)
{
    harness *h = *state;
    harness_devplane dp;
    agent_t a;
    char ws[64];
    long id = one_agent_with_a_pending_apply(h, &dp, &a, "state-retry", ws, sizeof ws);
    cJSON_Delete(tp_admin_json(&dp, "POST", "/admin/faults", "{\"route\":\"state\",\"status\":500,\"times\":2}", 201));
    confirm(&dp, id);
    cJSON_Delete(tp_wait_task(&dp, id, "applied", 20000));
    bool locked = true;
    assert_int_equal(state_versions(&dp, ws, &locked), 1);
    assert_false(locked);
    harness_done(h);
}

/* The first state upload is stored by the plane but answered 500 (the response was lost): the agent sees from the
 * max version that it landed and does not post it again — exactly one state version (E7 is not idempotent). */
static void state_upload_that_landed_is_not_repeated(void **state)
{
    harness *h = *state;
    harness_devplane dp;
    agent_t a;
    char ws[64];
    long id = one_agent_with_a_pending_apply(h, &dp, &a, "state-landed", ws, sizeof ws);
    cJSON_Delete(tp_admin_json(&dp, "POST", "/admin/faults",
                               "{\"route\":\"state\",\"status\":502,\"times\":1,\"when\":\"after\"}", 201));
    confirm(&dp, id);
    cJSON_Delete(tp_wait_task(&dp, id, "applied", 20000));
    assert_int_equal(state_versions(&dp, ws, NULL), 1);
    harness_done(h);
}

/* A failed apply: its partial state is uploaded, the workspace unlocked, the task failed with terraform's error. */
static void failed_apply_uploads_partial_state_and_unlocks(void **state)
{
    harness *h = *state;
    harness_devplane dp;
    agent_t a;
    plane_start(h, &dp, NULL, NULL);
    agent_prepare(h, &a, &dp, "agent-a", "FAKE_TF_FAIL", "apply", "FAKE_TF_FAIL_AFTER", "1", NULL);
    agent_run(h, &a, &dp);
    char ws[64];
    tp_create_workspace(&dp, TP_WORKSPACE_TWO, "apply-fails", ws, sizeof ws);
    long id = plan_until_apply_pending(&dp, ws);
    confirm(&dp, id);
    cJSON *doc = tp_wait_task(&dp, id, "failed", 20000);
    const char *msg = harness_json_str(doc, "error_message");
    assert_non_null(msg);
    assert_true(strncmp(msg, "Error:", 6) == 0);
    cJSON_Delete(doc);
    bool locked = true;
    assert_int_equal(state_versions(&dp, ws, &locked), 1); /* the resource applied before the failure */
    assert_false(locked);
    tp_assert_slot_becomes(&a.ag, 0, "idle");
    harness_done(h);
}

/* A state that cannot be uploaded after every attempt is kept on the pod, the task fails saying where, and the
 * workspace stays locked (never unlocked over unsaved state). */
static void unsaved_state_is_kept_and_the_workspace_stays_locked(void **state)
{
    harness *h = *state;
    harness_devplane dp;
    agent_t a;
    char ws[64];
    long id = one_agent_with_a_pending_apply(h, &dp, &a, "state-lost", ws, sizeof ws);
    cJSON_Delete(tp_admin_json(&dp, "POST", "/admin/faults", "{\"route\":\"state\",\"status\":503,\"times\":0}", 201));
    confirm(&dp, id);
    cJSON *doc = tp_wait_task(&dp, id, "failed", 20000);
    const char *msg = harness_json_str(doc, "error_message");
    assert_non_null(msg);
    print_message("error_message: %s\n", msg);
    const char *at = strstr(msg, "kept at ");
    assert_non_null(at);
    char path[HARNESS_PATH_LEN + 256];
    snprintf(path, sizeof path, "%s", at + 8);
    char *end = strstr(path, " on this pod");
    assert_non_null(end);
    *end = '\0';
    assert_int_equal(access(path, R_OK), 0);
    cJSON_Delete(doc);
    bool locked = false;
    assert_int_equal(state_versions(&dp, ws, &locked), 0);
    assert_true(locked);
    harness_done(h);
}

/* IAC_AGENT_TASK_TIMEOUT: a plan that runs past it is interrupted (terraform gets SIGINT) and reported failed. */
static void task_timeout_interrupts_and_fails_the_task(void **state)
{
    harness *h = *state;
    harness_devplane dp;
    agent_t a;
    plane_start(h, &dp, NULL, NULL);
    agent_prepare(h, &a, &dp, "agent-a", "FAKE_TF_PLAN_DELAY_MS", "30000", "IAC_AGENT_TASK_TIMEOUT", "2s", NULL);
    agent_run(h, &a, &dp);
    char ws[64];
    tp_create_workspace(&dp, TP_WORKSPACE_TWO, "timeout", ws, sizeof ws);
    long id = tp_queue_task(&dp, ws, "plan");
    cJSON *doc = tp_wait_task(&dp, id, "failed", 15000);
    const char *msg = harness_json_str(doc, "error_message");
    assert_non_null(msg);
    assert_non_null(strstr(msg, "timed out"));
    cJSON_Delete(doc);
    assert_true(tp_invoked_with(a.tf_state, "plan", "SIGINT"));
    tp_assert_slot_becomes(&a.ag, 1, "idle");
    harness_done(h);
}

/* Task data that cannot be loaded (E3 answers 500 through every retry): the task is set failed with the reason
 * through E5 (upstream leaves it running, ref §8 entry 31), and the agent takes the next task. */
static void unloadable_task_data_fails_the_task(void **state)
{
    harness *h = *state;
    harness_devplane dp;
    agent_t a;
    plane_start(h, &dp, NULL, NULL);
    agent_start(h, &a, &dp, "agent-a");
    char ws[64];
    tp_create_workspace(&dp, TP_WORKSPACE_TWO, "no-data", ws, sizeof ws);
    cJSON_Delete(tp_admin_json(&dp, "POST", "/admin/faults", "{\"route\":\"data\",\"status\":500,\"times\":4}", 201));
    long id = tp_queue_task(&dp, ws, "plan");
    cJSON *doc = tp_wait_task(&dp, id, "failed", 20000);
    const char *msg = harness_json_str(doc, "error_message");
    assert_non_null(msg);
    assert_non_null(strstr(msg, "Failed to load task data"));
    cJSON_Delete(doc);
    long next = tp_queue_task(&dp, ws, "plan");
    cJSON_Delete(tp_wait_task(&dp, next, "success", 15000));
    harness_done(h);
}

/* A workspace id that cannot name a directory — ".." would put the work directory beside workspaces/, in the data
 * directory itself — fails the task with a message that says what an id may be, and nothing is made for it. */
static void a_workspace_id_that_is_not_a_directory_name_fails_the_task(void **state)
{
    harness *h = *state;
    harness_devplane dp;
    agent_t a;
    plane_start(h, &dp, NULL, NULL);
    agent_start(h, &a, &dp, "agent-a");
    char ws[64], dir[HARNESS_PATH_LEN + 64];
    tp_create_workspace(&dp, "{\"workspace_id\":\"%s\",\"name\":\"dots\",\"terraform_version\":\"1.6.6\","
                        "\"execution_mode\":\"agent\"}", "..", ws, sizeof ws);
    assert_string_equal(ws, "..");
    long id = tp_queue_task(&dp, ws, "plan");
    cJSON *doc = tp_wait_task(&dp, id, "failed", 15000);
    const char *msg = harness_json_str(doc, "error_message");
    assert_non_null(msg);
    assert_non_null(strstr(msg, "task.workspace_id \"..\" cannot name a directory"));
    assert_non_null(strstr(msg, "starting with a letter or digit"));
    cJSON_Delete(doc);
    snprintf(dir, sizeof dir, "%s/%ld", a.ag.data_dir, id);
    assert_int_not_equal(access(dir, F_OK), 0);
    snprintf(dir, sizeof dir, "%s/workspaces/../%ld", a.ag.data_dir, id);
    assert_int_not_equal(access(dir, F_OK), 0);
    char good[64];
    tp_create_workspace(&dp, TP_WORKSPACE_TWO, "fine", good, sizeof good);
    cJSON_Delete(tp_wait_task(&dp, tp_queue_task(&dp, good, "plan"), "success", 15000));
    harness_done(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(confirmed_apply_runs_warm_on_the_reserving_agent, harness_setup,
                                        apply_teardown),
        cmocka_unit_test_setup_teardown(apply_runs_cold_elsewhere_when_the_pod_is_gone, harness_setup,
                                        apply_teardown),
        cmocka_unit_test_setup_teardown(plan_and_apply_pushed_to_a_reserved_agent_runs_elsewhere, harness_setup,
                                        apply_teardown),
        cmocka_unit_test_setup_teardown(cancel_during_plan_interrupts_terraform, harness_setup, apply_teardown),
        cmocka_unit_test_setup_teardown(cancelled_apply_keeps_its_partial_state, harness_setup, apply_teardown),
        cmocka_unit_test_setup_teardown(restart_keeps_the_reservation_and_reports_the_interrupted_plan,
                                        harness_setup, apply_teardown),
        cmocka_unit_test_setup_teardown(restart_reports_a_task_killed_during_init, harness_setup, apply_teardown),
        cmocka_unit_test_setup_teardown(reservation_ttl_frees_slot_zero, harness_setup, apply_teardown),
        cmocka_unit_test_setup_teardown(sigterm_lets_a_running_plan_finish, harness_setup, apply_teardown),
        cmocka_unit_test_setup_teardown(sigterm_interrupts_a_plan_past_the_budget, harness_setup, apply_teardown),
        cmocka_unit_test_setup_teardown(state_upload_retries_create_one_version, harness_setup, apply_teardown),
        cmocka_unit_test_setup_teardown(state_upload_that_landed_is_not_repeated, harness_setup, apply_teardown),
        cmocka_unit_test_setup_teardown(failed_apply_uploads_partial_state_and_unlocks, harness_setup,
                                        apply_teardown),
        cmocka_unit_test_setup_teardown(unsaved_state_is_kept_and_the_workspace_stays_locked, harness_setup,
                                        apply_teardown),
        cmocka_unit_test_setup_teardown(task_timeout_interrupts_and_fails_the_task, harness_setup, apply_teardown),
        cmocka_unit_test_setup_teardown(unloadable_task_data_fails_the_task, harness_setup, apply_teardown),
        cmocka_unit_test_setup_teardown(a_workspace_id_that_is_not_a_directory_name_fails_the_task, harness_setup,
                                        apply_teardown),
        cmocka_unit_test_setup_teardown(apply_given_to_another_agent_releases_the_reservation, harness_setup,
                                        apply_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
