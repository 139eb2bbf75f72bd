/* test_reservation.c — the guard of slot 0's reservation on a real loop.
 *
 * A fake control plane (the https module on loopback, ephemeral port) answers E4 (GET …/tasks/{id}/plan-task)
 * with a status and an agent_id the test chooses; it counts requests and may act while a request is in flight
 * (its handler runs before the client gets the answer). The release callback does what the agent does: it ends
 * the reservation in the slot table. Each test ends by freeing the guard, client and server and running the loop
 * until nothing is left, so a leaked handle or a callback that never came fails it (a watchdog ends hangs). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <setjmp.h>
#include <cmocka.h>

#include <libwebsockets.h>
#include <uv.h>

#include "../../agent/reservation.h"
#include "../../agent/store.h"
#include "iac/httpc.h"
#include "iac/https.h"
#include "iac/log.h"
#include "iac/slots.h"

#define TOKEN "apt_pool_0123456789abcdef"
#define TASK  7

typedef struct fixture fixture;

/* What the plane does for the n-th E4 request (the last entry repeats). */
typedef struct {
    int         status;
    const char *agent_id; /* NULL: no agent_id key */
} answer;

struct fixture {
    uv_loop_t     loop;
    uv_timer_t    watchdog, end_timer;
    bool          timed_out;
    https_server *plane;
    httpc        *http;
    reservation  *w;
    agent_store   st;
    char          base_url[64];
    char         *token;
    answer        answers[4];
    int           nanswers;
    int           requests;
    char          last_path[128], last_auth[128];
    int64_t       started_ms, first_request_ms, released_ms;
    int           released;
    uint64_t      released_task;
    char          why[256];
    int           finish_after_requests; /* 0: never from the handler */
    void        (*during_request)(fixture *f); /* runs in the handler, the request in flight */
    bool          finished;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void end_in(fixture *f, uint64_t ms);

/* ---- the fake plane ---- */

static void plane_handler(const https_request *req, https_response *res, void *arg)
{
    fixture *f = arg;
    answer a = f->answers[f->requests < f->nanswers ? f->requests : f->nanswers - 1];
    if (f->requests++ == 0)
        f->first_request_ms = now_ms();
    snprintf(f->last_path, sizeof f->last_path, "%s %s", req->method, req->path);
    snprintf(f->last_auth, sizeof f->last_auth, "%s", req->authorization ? req->authorization : "");
    if (f->during_request)
        f->during_request(f);
    if (f->finish_after_requests && f->requests == f->finish_after_requests)
        end_in(f, 50); /* after the guard has read this answer */
    res->status = a.status;
    if (a.status == 200 && a.agent_id)
        strbuf_printf(&res->body, "{\"task\":{\"id\":%d,\"workspace_id\":\"ws-1\",\"task_type\":\"plan_and_apply\","
                      "\"context\":{},\"agent_id\":\"%s\",\"plan_hash\":\"abc\"},\"snapshot_resources\":null}",
                      TASK, a.agent_id);
    else if (a.status == 200)
        strbuf_printf(&res->body, "{\"task\":{\"id\":%d,\"workspace_id\":\"ws-1\",\"context\":{}}}", TASK);
    else
        https_reply_error(res, a.status, a.status == 404 ? "task not found" : "failed to query task");
}

/* ---- fixture ---- */

static void on_watchdog(uv_timer_t *t)
{
    fixture *f = t->data;
    f->timed_out = true;
    uv_stop(&f->loop);
}

/* Frees the guard, the client and the server; only closing handles are left. */
static void finish(fixture *f)
{
    if (f->finished)
        return;
    f->finished = true;
    reservation_free(f->w);
    f->w = NULL;
    httpc_free(f->http);
    f->http = NULL;
    https_free(f->plane);
    f->plane = NULL;
    uv_timer_stop(&f->end_timer);
}

static void on_end_timer(uv_timer_t *t)
{
    finish(t->data);
}

/* Ends the test after ms (when nothing ended it before). */
static void end_in(fixture *f, uint64_t ms)
{
    uv_timer_start(&f->end_timer, on_end_timer, ms, 0);
}

static void on_release(uint64_t task_id, const char *why, void *arg)
{
    fixture *f = arg;
    f->released++;
    f->released_task = task_id;
    f->released_ms = now_ms();
    snprintf(f->why, sizeof f->why, "%s", why);
    assert_int_equal(slots_release(&f->st.slots, task_id, now_ms()), 0);
    finish(f);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    char err[256];
    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_timer_init(&f->loop, &f->watchdog);
    f->watchdog.data = f;
    uv_timer_start(&f->watchdog, on_watchdog, 10000, 0);
    uv_unref((uv_handle_t *)&f->watchdog);
    uv_timer_init(&f->loop, &f->end_timer);
    f->end_timer.data = f;

    https_opts o = { .host = "127.0.0.1", .handler = plane_handler, .arg = f };
    f->plane = https_listen(&f->loop, &o, err, sizeof err);
    assert_non_null(f->plane);
    snprintf(f->base_url, sizeof f->base_url, "http://127.0.0.1:%d", https_port(f->plane));
    f->http = httpc_new(&f->loop, &(httpc_opts){ .retry_base_ms = 1 });
    assert_non_null(f->http);
    f->token = strdup(TOKEN);

    slots_init(&f->st.slots, 4, now_ms());
    store_set_identity(&f->st, "agent-pool-1-100", "pool-1");
    f->answers[0] = (answer){ 200, "agent-pool-1-100" };
    f->nanswers = 1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    free(f->token);
    free(f);
    return 0;
}

/* Slot 0 reserved for task at since_ms. */
static void reserve(fixture *f, uint64_t task, int64_t since_ms)
{
    assert_int_equal(slots_start(&f->st.slots, 0, task, TASK_PLAN_AND_APPLY, ACTION_PLAN, since_ms), 0);
    assert_int_equal(slots_reserve(&f->st.slots, task, since_ms), 0);
}

static void start(fixture *f, int64_t ttl_ms, int64_t interval_ms)
{
    reservation_config cfg = { .loop = &f->loop, .http = f->http, .base_url = f->base_url, .token = &f->token,
                               .store = &f->st, .slots = &f->st.slots, .ttl_ms = ttl_ms,
                               .check_interval_ms = interval_ms, .release = on_release, .arg = f };
    f->started_ms = now_ms();
    f->w = reservation_new(&cfg);
    assert_non_null(f->w);
}

static void run(fixture *f)
{
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_false(f->timed_out);
    uv_close((uv_handle_t *)&f->watchdog, NULL);
    uv_close((uv_handle_t *)&f->end_timer, NULL);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

/* ---- tests ---- */

/* A TTL shorter than the check interval releases at its expiry, not at the next check, and asks the plane
 * nothing. */
static void ttl_expiry_releases_at_expiry(void **state)
{
    fixture *f = *state;
    int64_t since = now_ms();
    reserve(f, TASK, since);
    start(f, 150, 0);
    run(f);
    assert_int_equal(f->released, 1);
    assert_int_equal(f->released_task, TASK);
    assert_string_equal(f->why, "reservation TTL of 150ms passed");
    assert_true(f->released_ms - since >= 150);
    assert_true(f->released_ms - since < 1000);
    assert_int_equal(f->requests, 0);
    assert_int_equal(f->st.slots.s[0].status, SLOT_IDLE);
}

/* A reservation made after the guard started expires at its TTL once the agent says the slots changed. */
static void new_reservation_expires_at_its_ttl(void **state)
{
    fixture *f = *state;
    start(f, 120, 0);
    int64_t since = now_ms();
    reserve(f, TASK, since);
    reservation_slots_changed(f->w);
    run(f);
    assert_int_equal(f->released, 1);
    assert_true(f->released_ms - since >= 120);
    assert_true(f->released_ms - since < 1000);
    assert_int_equal(f->requests, 0);
}

/* A reservation restored from the store whose TTL passed while the agent was down is released at once. */
static void expired_reservation_is_released_at_start(void **state)
{
    fixture *f = *state;
    reserve(f, TASK, now_ms() - 3 * 3600 * 1000);
    start(f, 2 * 3600 * 1000, 0);
    run(f);
    assert_int_equal(f->released, 1);
    assert_string_equal(f->why, "reservation TTL of 2h passed");
    assert_true(f->released_ms - f->started_ms < 1000);
}

/* When E4 names another agent, the reservation ends; the request is a plain GET of plan-task with the token. */
static void ownership_moved_releases(void **state)
{
    fixture *f = *state;
    f->answers[0] = (answer){ 200, "agent-pool-1-999" };
    reserve(f, TASK, now_ms());
    start(f, 3600000, 0);
    reservation_check_now(f->w);
    run(f);
    assert_int_equal(f->released, 1);
    assert_int_equal(f->released_task, TASK);
    assert_string_equal(f->why, "the apply of task 7 was given to agent agent-pool-1-999");
    assert_int_equal(f->requests, 1);
    assert_string_equal(f->last_path, "GET /api/v1/agents/tasks/7/plan-task");
    assert_string_equal(f->last_auth, "Bearer " TOKEN);
}

/* The current id and every earlier id of this pod (and an answer naming no agent) keep the reservation; the
 * checks repeat at the interval. */
static void own_ids_keep_the_reservation(void **state)
{
    fixture *f = *state;
    store_set_identity(&f->st, "agent-pool-1-200", "pool-1"); /* -100 becomes a past id */
    f->answers[0] = (answer){ 200, "agent-pool-1-100" };
    f->answers[1] = (answer){ 200, "agent-pool-1-200" };
    f->answers[2] = (answer){ 200, NULL };
    f->nanswers = 3;
    f->finish_after_requests = 3;
    reserve(f, TASK, now_ms());
    start(f, 3600000, 40);
    end_in(f, 2000);
    run(f);
    assert_int_equal(f->released, 0);
    assert_true(f->requests >= 3);
    assert_int_equal(f->st.slots.s[0].status, SLOT_RESERVED);
}

/* A task that no longer exists (404) ends the reservation. */
static void gone_task_releases(void **state)
{
    fixture *f = *state;
    f->answers[0] = (answer){ 404, NULL };
    reserve(f, TASK, now_ms());
    start(f, 3600000, 0);
    reservation_check_now(f->w);
    run(f);
    assert_int_equal(f->released, 1);
    assert_string_equal(f->why, "task 7 no longer exists");
}

/* A 500 keeps the reservation (one request per check, no retries); a later check that finds another agent
 * releases it. */
static void server_error_keeps_until_a_later_check(void **state)
{
    fixture *f = *state;
    f->answers[0] = (answer){ 500, NULL };
    f->answers[1] = (answer){ 403, NULL };
    f->answers[2] = (answer){ 200, "agent-pool-1-999" };
    f->nanswers = 3;
    reserve(f, TASK, now_ms());
    start(f, 3600000, 50);
    run(f);
    assert_int_equal(f->released, 1);
    assert_int_equal(f->requests, 3);
    assert_string_equal(f->why, "the apply of task 7 was given to agent agent-pool-1-999");
    assert_true(f->released_ms - f->started_ms >= 150);
}

static void release_and_reserve_another(fixture *f)
{
    assert_int_equal(slots_release(&f->st.slots, TASK, now_ms()), 0);
    reserve(f, TASK + 1, now_ms());
    end_in(f, 200);
}

/* An answer about a reservation that ended while the request was in flight is ignored, even when slot 0 is by
 * then reserved for another task. */
static void answer_after_release_is_ignored(void **state)
{
    fixture *f = *state;
    f->answers[0] = (answer){ 200, "agent-pool-1-999" };
    f->during_request = release_and_reserve_another;
    reserve(f, TASK, now_ms());
    start(f, 3600000, 0);
    reservation_check_now(f->w);
    run(f);
    assert_int_equal(f->requests, 1);
    assert_int_equal(f->released, 0);
    assert_int_equal(f->st.slots.s[0].status, SLOT_RESERVED);
    assert_int_equal(f->st.slots.s[0].task_id, TASK + 1);
}

/* reservation_check_now asks the plane at once, whatever the interval; with slot 0 idle it asks nothing. */
static void check_now_asks_at_once(void **state)
{
    fixture *f = *state;
    f->finish_after_requests = 1;
    reserve(f, TASK, now_ms());
    start(f, 3600000, 0); /* 60 s interval */
    reservation_check_now(f->w);
    assert_int_equal(f->requests, 0); /* from the loop, not from inside the call */
    run(f);
    assert_int_equal(f->requests, 1);
    assert_true(f->first_request_ms - f->started_ms < 1000);
    assert_int_equal(f->released, 0);
}

/* With slot 0 idle, checks ask nothing. */
static void idle_slot_asks_nothing(void **state)
{
    fixture *f = *state;
    start(f, 100, 20);
    reservation_check_now(f->w);
    end_in(f, 150);
    run(f);
    assert_int_equal(f->requests, 0);
    assert_int_equal(f->released, 0);
}

static void free_guard(fixture *f)
{
    reservation_free(f->w);
    f->w = NULL;
    end_in(f, 150);
}

/* Freeing the guard with a request in flight cancels it: no release follows, nothing leaks. */
static void free_with_request_in_flight(void **state)
{
    fixture *f = *state;
    f->answers[0] = (answer){ 404, NULL };
    f->during_request = free_guard;
    reserve(f, TASK, now_ms());
    start(f, 3600000, 0);
    reservation_check_now(f->w);
    run(f);
    assert_int_equal(f->requests, 1);
    assert_int_equal(f->released, 0);
}

static void check_again(fixture *f)
{
    if (f->requests == 1)
        reservation_check_now(f->w);
}

/* A check asked for while a failing request is in flight (a reconnect) runs again right after its answer. */
static void reconnect_during_failure_checks_again(void **state)
{
    fixture *f = *state;
    f->answers[0] = (answer){ 503, NULL };
    f->answers[1] = (answer){ 404, NULL };
    f->nanswers = 2;
    f->during_request = check_again;
    reserve(f, TASK, now_ms());
    start(f, 3600000, 0);
    reservation_check_now(f->w);
    run(f);
    assert_int_equal(f->requests, 2);
    assert_int_equal(f->released, 1);
    assert_true(f->released_ms - f->started_ms < 1000);
}

int main(void)
{
    lws_set_log_level(LLL_ERR, NULL);
    log_setup(LOG_ERROR, LOG_FORMAT_TEXT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(ttl_expiry_releases_at_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(new_reservation_expires_at_its_ttl, setup, teardown),
        cmocka_unit_test_setup_teardown(expired_reservation_is_released_at_start, setup, teardown),
        cmocka_unit_test_setup_teardown(ownership_moved_releases, setup, teardown),
        cmocka_unit_test_setup_teardown(own_ids_keep_the_reservation, setup, teardown),
        cmocka_unit_test_setup_teardown(gone_task_releases, setup, teardown),
        cmocka_unit_test_setup_teardown(server_error_keeps_until_a_later_check, setup, teardown),
        cmocka_unit_test_setup_teardown(answer_after_release_is_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(check_now_asks_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(idle_slot_asks_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(free_with_request_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(reconnect_during_failure_checks_again, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
