/* test_recovery.c — orphaned work directories and the reports owed after a restart.
 *
 * Cleaning runs on a fresh data dir per test, built with real directories, files and symbolic links (some pointing
 * outside the data dir, which must survive). Reporting runs on a real loop against a fake control plane (the https
 * module on loopback, ephemeral port) that answers PUT …/tasks/{id}/status with a status chosen per task and
 * records what it received; frames go to a recording send function that can refuse (not connected). Every
 * reporting test frees the reporter, client and server and runs the loop to the end, so a leaked handle or a
 * callback that never came fails it (a watchdog ends hangs). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include <libwebsockets.h>
#include <uv.h>

#include "../../agent/recovery.h"
#include "../../agent/store.h"
#include "iac/fsutil.h"
#include "iac/httpc.h"
#include "iac/https.h"
#include "iac/log.h"
#include "iac/proto.h"
#include "iac/slots.h"

#define TOKEN "apt_pool_0123456789abcdef"
#define MAXREQ 32

typedef struct {
    char     path[128];
    char     method[8];
    char     auth[96];
    char     body[512];
} request;

typedef struct {
    uint64_t task_id;
    int      statuses[5]; /* the answer to the n-th request for this task (0: repeat the last non-zero) */
} plan;

typedef struct fixture {
    uv_loop_t     loop;
    uv_timer_t    watchdog, poll;
    bool          timed_out;
    https_server *plane;
    httpc        *http;
    recovery     *rec;
    agent_store   st;
    char          base_url[64];
    char         *token;
    char          dir[64];
    plan          plans[4];
    request       req[MAXREQ];
    int           nreq;
    proto_msg     frames[8];
    char          frame_errors[8][64];
    int           nframes;
    int           refuse_frames;    /* how many send calls fail (not connected) */
    uint64_t      reported[8];
    int           nreported;
    int           expect_reported;  /* finish once this many were reported */
    void        (*during_request)(struct fixture *f);
    void        (*when_idle)(struct fixture *f); /* polled: no request pending */
    bool          finished;
} fixture;

/* ---- the fake plane ---- */

static int answer_for(fixture *f, uint64_t task_id)
{
    int seen = 0;
    char want[64];
    snprintf(want, sizeof want, "/api/v1/agents/tasks/%" PRIu64 "/status", task_id);
    for (int i = 0; i < f->nreq - 1; i++)
        seen += strcmp(f->req[i].path, want) == 0;
    for (int i = 0; i < 4; i++) {
        if (f->plans[i].task_id != task_id)
            continue;
        int status = 200;
        for (int k = 0; k < 5 && k <= seen; k++)
            if (f->plans[i].statuses[k])
                status = f->plans[i].statuses[k];
        return status;
    }
    return 200;
}

static void plane_handler(const https_request *req, https_response *res, void *arg)
{
    fixture *f = arg;
    uint64_t task_id = 0;
    assert_true(f->nreq < MAXREQ);
    request *r = &f->req[f->nreq++];
    snprintf(r->path, sizeof r->path, "%s", req->path);
    snprintf(r->method, sizeof r->method, "%s", req->method);
    snprintf(r->auth, sizeof r->auth, "%s", req->authorization ? req->authorization : "");
    snprintf(r->body, sizeof r->body, "%s", req->body);
    sscanf(req->path, "/api/v1/agents/tasks/%" SCNu64 "/status", &task_id);
    if (f->during_request)
        f->during_request(f);
    res->status = answer_for(f, task_id);
    if (res->status == 200)
        strbuf_printf(&res->body, "{\"message\":\"task status updated\",\"task_id\":%" PRIu64 ",\"status\":\"failed\"}",
                      task_id);
    else if (res->status == 409)
        strbuf_puts(&res->body, "{\"error\":\"task has been cancelled, status update rejected\","
                                "\"current_status\":\"cancelled\"}");
    else
        https_reply_error(res, res->status, res->status == 404 ? "task not found" : "failed to update task");
}

/* ---- fixture ---- */

static void on_watchdog(uv_timer_t *t)
{
    fixture *f = t->data;
    f->timed_out = true;
    uv_stop(&f->loop);
}

static void finish(fixture *f)
{
    if (f->finished)
        return;
    f->finished = true;
    recovery_free(f->rec);
    f->rec = NULL;
    httpc_free(f->http);
    f->http = NULL;
    https_free(f->plane);
    f->plane = NULL;
    uv_timer_stop(&f->poll);
}

static void on_poll(uv_timer_t *t)
{
    fixture *f = t->data;
    if (!f->finished && f->when_idle && httpc_pending(f->http) == 0)
        f->when_idle(f);
}

static int send_frame(const proto_msg *m, void *arg)
{
    fixture *f = arg;
    if (f->refuse_frames > 0) {
        f->refuse_frames--;
        return -1;
    }
    assert_true(f->nframes < 8);
    f->frames[f->nframes] = *m;
    snprintf(f->frame_errors[f->nframes], sizeof f->frame_errors[0], "%s", m->u.task_failed.error);
    f->frames[f->nframes].u.task_failed.error = f->frame_errors[f->nframes];
    f->nframes++;
    return 0;
}

/* What the agent does: forget the task (and save, not needed here). */
static void on_reported(uint64_t task_id, void *arg)
{
    fixture *f = arg;
    f->reported[f->nreported++] = task_id;
    store_forget_interrupted(&f->st, task_id);
    if (f->expect_reported && f->nreported == f->expect_reported)
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
    uv_timer_init(&f->loop, &f->poll);
    f->poll.data = f;

    https_opts o = { .host = "127.0.0.1", .handler = plane_handler, .arg = f };
    f->plane = https_listen(&f->loop, &o, err, sizeof err);
    assert_non_null(f->plane);
    snprintf(f->base_url, sizeof f->base_url, "http://127.0.0.1:%d", https_port(f->plane));
    f->http = httpc_new(&f->loop, &(httpc_opts){ .retry_base_ms = 1 });
    assert_non_null(f->http);
    f->token = strdup(TOKEN);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_recovery-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    slots_init(&f->st.slots, 4, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (!f->finished) { /* a cleaning test: the loop was never run */
        finish(f);
        uv_close((uv_handle_t *)&f->watchdog, NULL);
        uv_close((uv_handle_t *)&f->poll, NULL);
        uv_run(&f->loop, UV_RUN_DEFAULT);
        uv_loop_close(&f->loop);
    }
    free(f->token);
    fs_rm_rf(f->dir);
    free(f);
    return 0;
}

static void interrupted(fixture *f, uint64_t task_id)
{
    f->st.interrupted[f->st.n_interrupted++] = (store_task){ task_id, TASK_PLAN, ACTION_PLAN };
}

static void start(fixture *f)
{
    recovery_config cfg = { .http = f->http, .base_url = f->base_url, .token = &f->token, .store = &f->st,
                            .send = send_frame, .reported = on_reported, .arg = f };
    f->rec = recovery_new(&cfg);
    assert_non_null(f->rec);
    uv_timer_start(&f->poll, on_poll, 5, 5);
}

static void run(fixture *f)
{
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_false(f->timed_out);
    uv_close((uv_handle_t *)&f->watchdog, NULL);
    uv_close((uv_handle_t *)&f->poll, NULL);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static int count_requests(const fixture *f, uint64_t task_id)
{
    char want[64];
    int n = 0;
    snprintf(want, sizeof want, "/api/v1/agents/tasks/%" PRIu64 "/status", task_id);
    for (int i = 0; i < f->nreq; i++)
        n += strcmp(f->req[i].path, want) == 0;
    return n;
}

static bool was_reported(const fixture *f, uint64_t task_id)
{
    for (int i = 0; i < f->nreported; i++)
        if (f->reported[i] == task_id)
            return true;
    return false;
}

/* ---- files ---- */

static void path_of(const fixture *f, char *out, size_t n, const char *rel)
{
    snprintf(out, n, "%s/%s", f->dir, rel);
}

static void mkdirs(const fixture *f, const char *rel)
{
    char p[256];
    path_of(f, p, sizeof p, rel);
    assert_int_equal(fs_mkdir_p(p, 0700), 0);
}

static void put_file(const fixture *f, const char *rel)
{
    char p[256];
    path_of(f, p, sizeof p, rel);
    assert_int_equal(fs_write_atomic(p, "x\n", 2, 0600), 0);
}

static void link_to(const fixture *f, const char *target_rel, const char *rel)
{
    char p[256], t[256];
    path_of(f, p, sizeof p, rel);
    path_of(f, t, sizeof t, target_rel);
    assert_int_equal(symlink(t, p), 0);
}

static bool exists(const fixture *f, const char *rel)
{
    char p[256];
    struct stat st;
    path_of(f, p, sizeof p, rel);
    return lstat(p, &st) == 0;
}

/* ---- cleaning ---- */

/* Work directories of tasks holding no slot go, with workspace directories left empty; the reserved task's
 * directory, engines/ and files outside workspaces/ stay. */
static void orphans_removed_reserved_kept(void **state)
{
    fixture *f = *state;
    assert_int_equal(slots_start(&f->st.slots, 0, 7, TASK_PLAN_AND_APPLY, ACTION_PLAN, 0), 0);
    assert_int_equal(slots_reserve(&f->st.slots, 7, 0), 0);
    mkdirs(f, "workspaces/ws-a/7/.terraform");
    put_file(f, "workspaces/ws-a/7/plan.out");
    mkdirs(f, "workspaces/ws-a/8/.terraform");
    put_file(f, "workspaces/ws-a/8/main.tf.json");
    mkdirs(f, "workspaces/ws-b/9");
    put_file(f, "workspaces/ws-b/9/.iac-task.log");
    mkdirs(f, "workspaces/ws-c");
    mkdirs(f, "engines/1.6.6");
    put_file(f, "engines/1.6.6/terraform");
    put_file(f, "state.json");

    assert_int_equal(recovery_clean_orphans(f->dir, &f->st.slots), 2);
    assert_true(exists(f, "workspaces/ws-a/7/plan.out"));
    assert_true(exists(f, "workspaces/ws-a/7/.terraform"));
    assert_false(exists(f, "workspaces/ws-a/8"));
    assert_false(exists(f, "workspaces/ws-b"));
    assert_false(exists(f, "workspaces/ws-c"));
    assert_true(exists(f, "engines/1.6.6/terraform"));
    assert_true(exists(f, "state.json"));
    assert_true(exists(f, "workspaces"));
}

/* Symbolic links under workspaces/ are removed as links: what they point to, outside the data dir's work area,
 * survives — even a link named after the reserved task, and a link standing where a workspace directory goes. */
static void symlinks_are_not_followed(void **state)
{
    fixture *f = *state;
    assert_int_equal(slots_start(&f->st.slots, 0, 7, TASK_PLAN_AND_APPLY, ACTION_PLAN, 0), 0);
    assert_int_equal(slots_reserve(&f->st.slots, 7, 0), 0);
    mkdirs(f, "outside/a");
    put_file(f, "outside/a/precious");
    mkdirs(f, "outside/b/5");
    put_file(f, "outside/b/5/precious");
    mkdirs(f, "workspaces/ws-a");
    link_to(f, "outside/a", "workspaces/ws-a/5");
    link_to(f, "outside/a", "workspaces/ws-a/7");
    link_to(f, "outside/b", "workspaces/ws-link");

    assert_int_equal(recovery_clean_orphans(f->dir, &f->st.slots), 3);
    assert_true(exists(f, "outside/a/precious"));
    assert_true(exists(f, "outside/b/5/precious"));
    assert_false(exists(f, "workspaces/ws-a"));
    assert_false(exists(f, "workspaces/ws-link"));
}

/* A first start (no workspaces/ yet) has nothing to clean; a workspaces/ that is a link is refused. */
static void missing_or_linked_workspaces_dir(void **state)
{
    fixture *f = *state;
    assert_int_equal(recovery_clean_orphans(f->dir, &f->st.slots), 0);
    mkdirs(f, "outside/ws-a/8");
    link_to(f, "outside", "workspaces");
    assert_true(recovery_clean_orphans(f->dir, &f->st.slots) < 0);
    assert_true(exists(f, "outside/ws-a/8"));
}

/* ---- reporting ---- */

/* Each interrupted task gets one PUT …/status with exactly the failed body (retrying mode, the pool token) and a
 * task_failed frame with the restart message; then the agent is told to forget it. */
static void report_sends_status_and_frame(void **state)
{
    fixture *f = *state;
    interrupted(f, 11);
    interrupted(f, 12);
    f->expect_reported = 2;
    start(f);
    assert_int_equal(recovery_report(f->rec), 2);
    run(f);
    assert_int_equal(f->nreq, 2);
    for (int i = 0; i < 2; i++) {
        uint64_t id = 11 + (uint64_t)i;
        char want[64];
        snprintf(want, sizeof want, "/api/v1/agents/tasks/%" PRIu64 "/status", id);
        const request *r = strcmp(f->req[0].path, want) == 0 ? &f->req[0] : &f->req[1];
        assert_string_equal(r->path, want);
        assert_string_equal(r->method, "PUT");
        assert_string_equal(r->auth, "Bearer " TOKEN);
        const char *prefix = "{\"status\":\"failed\",\"error_message\":\"agent restarted during execution\","
                             "\"completed_at\":\"";
        assert_int_equal(strncmp(r->body, prefix, strlen(prefix)), 0);
        const char *ts = r->body + strlen(prefix);
        /* 2026-01-02T03:04:05.678Z"} */
        assert_int_equal(strlen(ts), 24 + 2);
        assert_true(ts[4] == '-' && ts[7] == '-' && ts[10] == 'T' && ts[13] == ':' && ts[16] == ':' &&
                    ts[19] == '.' && ts[23] == 'Z');
        assert_string_equal(ts + 24, "\"}");
        assert_true(was_reported(f, id));
    }
    assert_int_equal(f->nframes, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(f->frames[i].type, MSG_TASK_FAILED);
        assert_string_equal(f->frames[i].u.task_failed.error, "agent restarted during execution");
    }
    assert_true(f->frames[0].u.task_failed.task_id != f->frames[1].u.task_failed.task_id);
    assert_int_equal(f->st.n_interrupted, 0);
}

/* A 409 (cancelled meanwhile) and a 404 (task gone) count as reported; the cancelled task still gets its
 * task_failed frame, the missing one none. */
static void conflict_and_gone_count_as_reported(void **state)
{
    fixture *f = *state;
    interrupted(f, 21);
    interrupted(f, 22);
    f->plans[0] = (plan){ 21, { 409 } };
    f->plans[1] = (plan){ 22, { 404 } };
    f->expect_reported = 2;
    start(f);
    recovery_report(f->rec);
    run(f);
    assert_int_equal(count_requests(f, 21), 1);
    assert_int_equal(count_requests(f, 22), 1);
    assert_true(was_reported(f, 21));
    assert_true(was_reported(f, 22));
    assert_int_equal(f->nframes, 1);
    assert_int_equal(f->frames[0].u.task_failed.task_id, 21);
}

static void report_again_when_idle(fixture *f)
{
    /* The retrying PUT gave up after its 4 attempts: still owed, nothing reported, no frame. */
    assert_int_equal(count_requests(f, 31), 4);
    assert_int_equal(f->nreported, 0);
    assert_int_equal(f->nframes, 0);
    assert_int_equal(f->st.n_interrupted, 1);
    f->when_idle = NULL;
    f->expect_reported = 1;
    assert_int_equal(recovery_report(f->rec), 1); /* the next reconnect */
}

/* A 5xx that outlasts the retries keeps the task owed; the next call reports it. */
static void server_error_keeps_the_task(void **state)
{
    fixture *f = *state;
    interrupted(f, 31);
    f->plans[0] = (plan){ 31, { 500, 502, 503, 500, 200 } };
    f->when_idle = report_again_when_idle;
    start(f);
    assert_int_equal(recovery_report(f->rec), 1);
    run(f);
    assert_int_equal(count_requests(f, 31), 5);
    assert_int_equal(f->nreported, 1);
    assert_int_equal(f->nframes, 1);
}

static void report_from_the_handler(fixture *f)
{
    assert_int_equal(recovery_report(f->rec), 1); /* still in flight: nothing new */
}

/* Calls while a report is in flight start nothing new: one PUT, one frame, one reported. */
static void no_duplicates_while_in_flight(void **state)
{
    fixture *f = *state;
    interrupted(f, 41);
    f->expect_reported = 1;
    f->during_request = report_from_the_handler;
    start(f);
    assert_int_equal(recovery_report(f->rec), 1);
    assert_int_equal(recovery_report(f->rec), 1);
    run(f);
    assert_int_equal(count_requests(f, 41), 1);
    assert_int_equal(f->nframes, 1);
    assert_int_equal(f->nreported, 1);
}

static void reconnect_after_frame_refused(fixture *f)
{
    assert_int_equal(count_requests(f, 51), 1);
    assert_int_equal(f->nreported, 0);
    f->when_idle = NULL;
    f->expect_reported = 1;
    recovery_report(f->rec); /* connected again: the frame goes, the PUT is not repeated */
}

/* When the frame cannot be queued (not connected), the task stays owed; the next call sends only the frame. */
static void refused_frame_is_sent_later_without_a_second_put(void **state)
{
    fixture *f = *state;
    interrupted(f, 51);
    f->refuse_frames = 1;
    f->when_idle = reconnect_after_frame_refused;
    start(f);
    recovery_report(f->rec);
    run(f);
    assert_int_equal(count_requests(f, 51), 1);
    assert_int_equal(f->nframes, 1);
    assert_int_equal(f->frames[0].u.task_failed.task_id, 51);
    assert_int_equal(f->nreported, 1);
}

static void free_in_handler(fixture *f)
{
    recovery_free(f->rec);
    f->rec = NULL;
    f->when_idle = finish;
}

/* Freeing the reporter with requests in flight calls nothing back and leaks nothing. */
static void free_with_requests_in_flight(void **state)
{
    fixture *f = *state;
    interrupted(f, 61);
    f->during_request = free_in_handler;
    start(f);
    recovery_report(f->rec);
    run(f);
    assert_int_equal(f->nreq, 1);
    assert_int_equal(f->nreported, 0);
    assert_int_equal(f->nframes, 0);
}

int main(void)
{
    lws_set_log_level(LLL_ERR, NULL);
    log_setup(LOG_ERROR, LOG_FORMAT_TEXT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(orphans_removed_reserved_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(symlinks_are_not_followed, setup, teardown),
        cmocka_unit_test_setup_teardown(missing_or_linked_workspaces_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(report_sends_status_and_frame, setup, teardown),
        cmocka_unit_test_setup_teardown(conflict_and_gone_count_as_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(server_error_keeps_the_task, setup, teardown),
        cmocka_unit_test_setup_teardown(no_duplicates_while_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(refused_frame_is_sent_later_without_a_second_put, setup, teardown),
        cmocka_unit_test_setup_teardown(free_with_requests_in_flight, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
