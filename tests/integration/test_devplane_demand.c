/* test_devplane_demand.c — the devplane's demand document (GET /admin/demand, DESIGN §5 step 3): the tasks that
 * wait for a slot by the queue's own rule, counted by the kind of slot they need, with their ids. Nothing waits on
 * an empty plane; with no agent every dispatchable task waits, and a plan_and_apply queued behind another of its
 * workspace does not; tasks in local mode or of another pool never count; once an agent takes work the demand
 * drops; a confirmed apply that no agent may take yet (its pod is draining) needs a slot 0 again. */
#include "taskplane.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

typedef struct {
    long        id;
    const char *type;
} waiting;

/* The wall clock in seconds as the devplane reads it (CLOCK_REALTIME): time() reads the coarse clock, which lags
 * by up to a tick, so a task created just after a second began could seem to come from the future. */
static long now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long)ts.tv_sec;
}

/* GET /admin/demand reads exactly these counts and tasks (oldest first) for the devplane's pool, the only pool
 * listed; each task waits since its creation, between not_before and not_after (epoch seconds). */
static void assert_demand(const harness_devplane *dp, int pa, int plan, int drift, const waiting *tasks, int n,
                          long not_before, long not_after)
{
    cJSON *doc = tp_admin_json(dp, "GET", "/admin/demand", NULL, 200);
    const cJSON *pools = cJSON_GetObjectItemCaseSensitive(doc, "pools");
    assert_true(cJSON_IsObject(pools));
    assert_int_equal(cJSON_GetArraySize(pools), 1);
    const cJSON *pool = cJSON_GetObjectItemCaseSensitive(pools, dp->pool);
    if (!cJSON_IsObject(pool))
        fail_msg("pool %s missing from the demand document", dp->pool);
    char *text = cJSON_PrintUnformatted(pool);
    print_message("demand: %s\n", text);
    free(text);
    assert_int_equal((int)harness_json_num(pool, "plan_and_apply", -1), pa);
    assert_int_equal((int)harness_json_num(pool, "plan", -1), plan);
    assert_int_equal((int)harness_json_num(pool, "drift_check", -1), drift);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(pool, "tasks");
    assert_true(cJSON_IsArray(list));
    assert_int_equal(cJSON_GetArraySize(list), n);
    for (int i = 0; i < n; i++) {
        const cJSON *t = cJSON_GetArrayItem(list, i);
        assert_int_equal((long)harness_json_num(t, "task_id", 0), tasks[i].id);
        harness_assert_str(harness_json_str(t, "task_type"), tasks[i].type);
        long since = (long)harness_json_num(t, "waiting_since", 0);
        assert_true(since >= not_before && since <= not_after);
    }
    cJSON_Delete(doc);
}

/* The plane's dispatcher sees the agent draining (its heartbeat said so). */
typedef struct {
    const harness_devplane *dp;
    bool                    draining;
} dispatch_wait;

static bool dispatcher_sees_draining(void *arg)
{
    dispatch_wait *w = arg;
    char url[256];
    harness_devplane_url(w->dp, "/admin/dispatch", url, sizeof url);
    cJSON *doc = harness_get_json(url);
    const cJSON *agents = cJSON_GetObjectItemCaseSensitive(doc, "agents");
    bool seen = cJSON_GetArraySize(agents) == 1 &&
                cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(agents, 0), "draining")) ==
                    w->draining;
    cJSON_Delete(doc);
    return seen;
}

static void agent_post(const harness_devplane *dp, const harness_agent *ag, const char *path)
{
    char url[256];
    harness_resp r;
    harness_agent_url(ag, path, url, sizeof url);
    assert_int_equal(harness_http("POST", url, dp->token, NULL, &r), 200);
    harness_resp_free(&r);
}

/* An empty plane reports its pool with zeros. */
static void empty_plane_reports_zero_demand(void **state)
{
    harness *h = *state;
    harness_devplane dp;
    memset(&dp, 0, sizeof dp);
    harness_devplane_init(h, &dp);
    assert_int_equal(harness_devplane_start(h, &dp), 0);
    assert_demand(&dp, 0, 0, 0, NULL, 0, 0, 0);
    cJSON_Delete(tp_admin_json(&dp, "POST", "/admin/demand", NULL, 405));
    harness_done(h);
}

/* Demand follows the queue: every dispatchable task waits while no agent is there, except the plan_and_apply
 * queued behind another of its workspace; the agent takes one plan_and_apply (one slot 0), the plan and the drift
 * check, and the other plan_and_apply still waits; a confirmed apply waits for a slot 0 while its agent drains and
 * stops waiting once the apply is dispatched. */
static void demand_counts_what_waits_for_a_slot(void **state)
{
    harness *h = *state;
    harness_devplane dp;
    memset(&dp, 0, sizeof dp);
    harness_devplane_init(h, &dp);
    assert_int_equal(harness_devplane_start(h, &dp), 0);

    char a[64], b[64], c[64], local[64], other[64];
    tp_create_workspace(&dp, TP_WORKSPACE_TWO, "ws-a", a, sizeof a);
    tp_create_workspace(&dp, TP_WORKSPACE_TWO, "ws-b", b, sizeof b);
    tp_create_workspace(&dp, TP_WORKSPACE_TWO, "ws-c", c, sizeof c);
    tp_create_workspace(&dp, "{\"name\":\"%s\",\"execution_mode\":\"local\",\"tf_code\":{}}", "ws-local", local,
                        sizeof local);
    tp_create_workspace(&dp, "{\"name\":\"%s\",\"pool_id\":\"pool-other\",\"tf_code\":{}}", "ws-other", other,
                        sizeof other);
    long before = now_s();
    long pa1 = tp_queue_task(&dp, a, "plan_and_apply");
    long pa2 = tp_queue_task(&dp, b, "plan_and_apply");
    long plan = tp_queue_task(&dp, c, "plan");
    long drift = tp_queue_task(&dp, c, "drift_check");
    long behind = tp_queue_task(&dp, a, "plan_and_apply"); /* behind pa1 in its workspace */
    tp_queue_task(&dp, local, "plan");                     /* never dispatched: local mode */
    tp_queue_task(&dp, other, "plan");                     /* never dispatched: another pool */
    long after = now_s();

    const waiting all[] = { { pa1, "plan_and_apply" }, { pa2, "plan_and_apply" }, { plan, "plan" },
                            { drift, "drift_check" } };
    assert_demand(&dp, 2, 1, 1, all, 4, before, after);

    /* An agent with 4 slots takes pa1 (slot 0), the plan and the drift check; pa1 ends its plan with changes and
     * holds slot 0, so pa2 still waits, and `behind` waits for pa1 (and its workspace's lock). */
    harness_agent ag;
    harness_env env = { 0 };
    char agent_id[128];
    tp_agent_env(h, &ag, &dp, &env, "agent-demand");
    tp_agent_start(h, &ag, &dp, &env, agent_id, sizeof agent_id);
    harness_env_free(&env);
    cJSON_Delete(tp_wait_task(&dp, pa1, "apply_pending", 15000));
    cJSON_Delete(tp_wait_task(&dp, plan, "success", 15000));
    cJSON_Delete(tp_wait_task(&dp, drift, "success", 15000));
    const waiting second[] = { { pa2, "plan_and_apply" } };
    assert_demand(&dp, 1, 0, 0, second, 1, before, after);
    cJSON *doc = tp_task_doc(&dp, behind);
    harness_assert_str(harness_json_str(doc, "status"), "pending");
    cJSON_Delete(doc);

    /* The agent drains; pa1's apply is confirmed but no agent may take it: it needs a slot 0 again. */
    agent_post(&dp, &ag, "/v1/drain");
    dispatch_wait dw = { &dp, true };
    assert_true(harness_wait_until(dispatcher_sees_draining, &dw, 5000) >= 0);
    char path[64];
    snprintf(path, sizeof path, "/admin/tasks/%ld/confirm", pa1);
    cJSON_Delete(tp_admin_json(&dp, "POST", path, "{\"apply_description\":\"demand\"}", 200));
    const waiting with_apply[] = { { pa1, "plan_and_apply" }, { pa2, "plan_and_apply" } };
    assert_demand(&dp, 2, 0, 0, with_apply, 2, before, after);
    doc = tp_task_doc(&dp, pa1);
    harness_assert_str(harness_json_str(doc, "status"), "apply_pending");
    cJSON_Delete(doc);

    /* Cancelled tasks wait for nothing; the undrained agent takes the apply into its reserved slot 0, and once it
     * is applied nothing is left (the agent ends idle, so it exits at once on SIGTERM). */
    snprintf(path, sizeof path, "/admin/tasks/%ld/cancel", pa2);
    cJSON_Delete(tp_admin_json(&dp, "POST", path, NULL, 200));
    snprintf(path, sizeof path, "/admin/tasks/%ld/cancel", behind);
    cJSON_Delete(tp_admin_json(&dp, "POST", path, NULL, 200));
    const waiting only_apply[] = { { pa1, "plan_and_apply" } };
    assert_demand(&dp, 1, 0, 0, only_apply, 1, before, after);
    agent_post(&dp, &ag, "/v1/undrain");
    cJSON_Delete(tp_wait_task(&dp, pa1, "applied", 20000));
    assert_demand(&dp, 0, 0, 0, NULL, 0, 0, 0);
    tp_assert_slot_becomes(&ag, 0, "idle");
    harness_done(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(empty_plane_reports_zero_demand, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(demand_counts_what_waits_for_a_slot, harness_setup, harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
