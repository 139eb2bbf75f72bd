/* test_httpc.c — the libcurl-on-libuv client against real servers on loopback, all on one loop.
 *
 * The server is the project's https module on the same loop (ephemeral port), scripted by path: /echo echoes
 * the body, /status/NNN answers NNN, /flaky answers 503 a set number of times before 200, /big?n=N sends N bytes.
 * Two raw sockets stand in for broken peers: a port that was closed (connection refused) and a listener that
 * never accepts (the kernel completes the handshake; nobody answers). A watchdog timer fails any test that
 * would hang; each test ends with the loop running to completion and uv_loop_close() succeeding. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include <libwebsockets.h>
#include <uv.h>

#include "iac/httpc.h"
#include "iac/https.h"

#define NCALLS 8
#define TOKEN  "apt_s3cr3t-token"

typedef struct fixture fixture;

typedef struct {
    fixture *f;
    int      i;
} slot;

/* What a callback received (copies). */
typedef struct {
    int    called;
    int    error;
    long   status;
    char  *errmsg;
    char  *body;
    size_t body_len;
    int    attempts;
    uint64_t at_ms;
} got;

/* What the server's handler saw. */
typedef struct {
    char *method, *path, *authorization, *content_type, *body;
} seen;

struct fixture {
    uv_loop_t     loop;
    uv_timer_t    watchdog, aux;
    bool          timed_out;
    https_server *srv;
    int           port;
    httpc        *c;
    int           outstanding; /* callbacks still expected */
    slot          slots[NCALLS];
    got           got[NCALLS];
    httpc_call   *calls[NCALLS];
    seen          seen[16];
    int           nseen;
    int           flaky_failures; /* /flaky answers 503 this many more times */
    int           hold_fd;        /* listening, never accepting */
    int           hold_port, refused_port;
    uint64_t      t0;
    void        (*on_cb)(fixture *f, int i); /* test hook, run inside the callback */
};

/* ---- the server ---- */

static void handler(const https_request *req, https_response *res, void *arg)
{
    fixture *f = arg;
    if (f->nseen < 16) {
        seen *s = &f->seen[f->nseen++];
        s->method = strdup(req->method);
        s->path = strdup(req->path);
        s->authorization = req->authorization ? strdup(req->authorization) : NULL;
        s->content_type = req->content_type ? strdup(req->content_type) : NULL;
        s->body = strdup(req->body);
    }
    char n[32];
    if (!strcmp(req->path, "/echo")) {
        strbuf_append(&res->body, req->body, req->body_len);
    } else if (!strncmp(req->path, "/status/", 8)) {
        https_reply_error(res, atoi(req->path + 8), "as requested");
    } else if (!strcmp(req->path, "/flaky")) {
        if (f->flaky_failures > 0) {
            f->flaky_failures--;
            https_reply_error(res, 503, "try again");
        } else {
            strbuf_puts(&res->body, "ok");
        }
    } else if (!strcmp(req->path, "/big") && https_query_param(req->query, "n", n, sizeof n) == 0) {
        for (long i = atol(n); i > 0; i--)
            strbuf_putc(&res->body, 'z');
    } else {
        https_reply_error(res, 404, "no such path");
    }
}

/* ---- fixture ---- */

static void on_watchdog(uv_timer_t *t)
{
    fixture *f = t->data;
    f->timed_out = true;
    uv_stop(&f->loop);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    char err[256];
    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_timer_init(&f->loop, &f->watchdog);
    f->watchdog.data = f;
    uv_timer_start(&f->watchdog, on_watchdog, 4000, 0);
    uv_unref((uv_handle_t *)&f->watchdog); /* does not keep the loop alive by itself */
    uv_timer_init(&f->loop, &f->aux);
    f->aux.data = f;

    https_opts o = { .host = "127.0.0.1", .handler = handler, .arg = f };
    f->srv = https_listen(&f->loop, &o, err, sizeof err);
    assert_non_null(f->srv);
    f->port = https_port(f->srv);

    /* a listener that never accepts */
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t sl = sizeof sa;
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    f->hold_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(f->hold_fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(f->hold_fd, 8), 0);
    getsockname(f->hold_fd, (struct sockaddr *)&sa, &sl);
    f->hold_port = ntohs(sa.sin_port);

    /* a port that was open a moment ago and is now closed */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sa.sin_port = 0;
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    f->refused_port = ntohs(sa.sin_port);
    close(fd);

    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < NCALLS; i++) {
        free(f->got[i].errmsg);
        free(f->got[i].body);
    }
    for (int i = 0; i < f->nseen; i++) {
        free(f->seen[i].method);
        free(f->seen[i].path);
        free(f->seen[i].authorization);
        free(f->seen[i].content_type);
        free(f->seen[i].body);
    }
    if (f->hold_fd >= 0)
        close(f->hold_fd);
    free(f);
    return 0;
}

/* Frees client and server; the loop then has nothing left but closing handles. */
static void finish(fixture *f)
{
    httpc_free(f->c);
    f->c = NULL;
    https_free(f->srv);
    f->srv = NULL;
    uv_timer_stop(&f->aux);
}

static void on_res(const httpc_response *r, void *arg)
{
    slot *s = arg;
    fixture *f = s->f;
    got *g = &f->got[s->i];
    g->called++;
    g->error = r->error;
    g->status = r->status;
    free(g->errmsg);
    g->errmsg = strdup(r->errmsg);
    free(g->body);
    g->body = malloc(r->body_len + 1);
    memcpy(g->body, r->body, r->body_len + 1);
    g->body_len = r->body_len;
    g->attempts = r->attempts;
    uv_update_time(&f->loop);
    g->at_ms = uv_now(&f->loop) - f->t0;
    f->calls[s->i] = NULL;
    if (f->on_cb)
        f->on_cb(f, s->i);
    if (--f->outstanding == 0 && f->c)
        finish(f);
}

static void client(fixture *f, long total_timeout_ms, size_t max_response, uint64_t retry_base_ms)
{
    httpc_opts o = { .total_timeout_ms = total_timeout_ms, .max_response = max_response,
                     .retry_base_ms = retry_base_ms };
    f->c = httpc_new(&f->loop, &o);
    assert_non_null(f->c);
    uv_update_time(&f->loop);
    f->t0 = uv_now(&f->loop);
}

/* Starts request i; target is a path on the test server or a whole URL. */
static httpc_call *req(fixture *f, int i, const char *method, const char *target, const char *bearer,
                       const char *body, httpc_mode mode)
{
    char url[256];
    if (!strncmp(target, "http", 4))
        snprintf(url, sizeof url, "%s", target);
    else
        snprintf(url, sizeof url, "http://127.0.0.1:%d%s", f->port, target);
    httpc_req r = { method, url, bearer, body, body ? strlen(body) : 0, mode };
    f->slots[i] = (slot){ f, i };
    f->calls[i] = httpc_request(f->c, &r, on_res, &f->slots[i]);
    if (f->calls[i])
        f->outstanding++;
    return f->calls[i];
}

/* Runs the loop to the end: no hang, nothing left open. */
static void run(fixture *f)
{
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_false(f->timed_out);
    uv_close((uv_handle_t *)&f->watchdog, NULL);
    uv_close((uv_handle_t *)&f->aux, NULL);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static void url_of(char *buf, size_t len, int port, const char *path)
{
    snprintf(buf, len, "http://127.0.0.1:%d%s", port, path);
}

/* ---- round trips ---- */

/* Issues the next request of round_trip_each_method from the previous one's callback (one at a time, so the
 * server sees them in order). */
static void round_trip_next(fixture *f, int i)
{
    static const char *methods[] = { "GET", "POST", "PUT", "PATCH", "DELETE", "POST" };
    static const char *bodies[] = { NULL, "{\"post\":1}", "{\"put\":2}", "{\"patch\":3}", NULL, "" };
    if (i + 1 < 6)
        req(f, i + 1, methods[i + 1], "/echo", i + 1 == 5 ? NULL : TOKEN, bodies[i + 1], HTTPC_RETRYING);
}

/* GET, POST, PUT, PATCH and DELETE reach the server with their bodies, Content-Type: application/json and the
 * bearer token; without a bearer no Authorization header is sent; the response body comes back. */
static void round_trip_each_method(void **state)
{
    fixture *f = *state;
    static const char *methods[] = { "GET", "POST", "PUT", "PATCH", "DELETE", "POST" };
    static const char *bodies[] = { "", "{\"post\":1}", "{\"put\":2}", "{\"patch\":3}", "", "" };
    client(f, 0, 0, 10);
    f->on_cb = round_trip_next;
    req(f, 0, "GET", "/echo", TOKEN, NULL, HTTPC_RETRYING);
    run(f);

    assert_int_equal(f->nseen, 6);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(f->got[i].called, 1);
        assert_int_equal(f->got[i].error, HTTPC_OK);
        assert_int_equal(f->got[i].status, 200);
        assert_int_equal(f->got[i].attempts, 1);
        assert_string_equal(f->got[i].errmsg, "");
        assert_string_equal(f->got[i].body, bodies[i]);
        assert_string_equal(f->seen[i].method, methods[i]);
        assert_string_equal(f->seen[i].body, bodies[i]);
        assert_string_equal(f->seen[i].content_type, "application/json");
        if (i == 5)
            assert_null(f->seen[i].authorization);
        else
            assert_string_equal(f->seen[i].authorization, "Bearer " TOKEN);
    }
}

/* A body goes with any method it is given to (GET and DELETE keep their names), and a HEAD request completes
 * without waiting for the body its answer announces. */
static void bodies_go_with_any_method(void **state)
{
    fixture *f = *state;
    client(f, 0, 0, 10);
    req(f, 0, "GET", "/echo", NULL, "{\"get\":1}", HTTPC_PLAIN);
    req(f, 1, "DELETE", "/echo", NULL, "{\"delete\":1}", HTTPC_PLAIN);
    req(f, 2, "HEAD", "/echo", NULL, NULL, HTTPC_PLAIN);
    run(f);
    assert_string_equal(f->got[0].body, "{\"get\":1}");
    assert_string_equal(f->got[1].body, "{\"delete\":1}");
    assert_int_equal(f->got[2].error, HTTPC_OK);
    assert_int_equal(f->got[2].status, 405); /* the https module refuses HEAD */
    assert_int_equal(f->got[2].body_len, 0);
    assert_true(f->got[2].at_ms < 1000);
    assert_int_equal(f->nseen, 2);
    for (int i = 0; i < 2; i++)
        assert_string_equal(f->seen[i].method, !strcmp(f->seen[i].body, "{\"get\":1}") ? "GET" : "DELETE");
}

/* Several requests in flight at once all complete, each with its own response. */
static void concurrent_requests_complete(void **state)
{
    fixture *f = *state;
    char body[NCALLS][24];
    client(f, 0, 0, 10);
    for (int i = 0; i < NCALLS; i++) {
        snprintf(body[i], sizeof body[i], "{\"n\":%d}", i);
        req(f, i, "POST", "/echo", TOKEN, body[i], HTTPC_PLAIN);
    }
    assert_int_equal(httpc_pending(f->c), NCALLS);
    run(f);
    for (int i = 0; i < NCALLS; i++) {
        assert_int_equal(f->got[i].status, 200);
        assert_string_equal(f->got[i].body, body[i]);
    }
}

/* ---- retries ---- */

/* A 4xx is final even in retrying mode: one attempt, the status and body reported as a response. */
static void client_error_is_not_retried(void **state)
{
    fixture *f = *state;
    client(f, 0, 0, 10);
    req(f, 0, "POST", "/status/409", TOKEN, "{}", HTTPC_RETRYING);
    run(f);
    assert_int_equal(f->got[0].error, HTTPC_OK);
    assert_int_equal(f->got[0].status, 409);
    assert_int_equal(f->got[0].attempts, 1);
    assert_string_equal(f->got[0].body, "{\"error\":\"as requested\"}");
    assert_int_equal(f->nseen, 1);
}

/* A 5xx is retried until four attempts have been made, waiting base × 1, 2, 4 between them, and the last
 * answer is reported. */
static void server_error_is_retried_four_times(void **state)
{
    fixture *f = *state;
    client(f, 0, 0, 10);
    req(f, 0, "GET", "/status/500", TOKEN, NULL, HTTPC_RETRYING);
    run(f);
    assert_int_equal(f->got[0].called, 1);
    assert_int_equal(f->got[0].error, HTTPC_OK);
    assert_int_equal(f->got[0].status, 500);
    assert_int_equal(f->got[0].attempts, 4);
    assert_int_equal(f->nseen, 4);
    assert_true(f->got[0].at_ms >= 10 + 20 + 40);
}

/* Two 5xx answers then a 200: success on the third attempt. */
static void recovers_after_two_server_errors(void **state)
{
    fixture *f = *state;
    f->flaky_failures = 2;
    client(f, 0, 0, 10);
    req(f, 0, "PUT", "/flaky", TOKEN, "{\"status\":\"running\"}", HTTPC_RETRYING);
    run(f);
    assert_int_equal(f->got[0].error, HTTPC_OK);
    assert_int_equal(f->got[0].status, 200);
    assert_int_equal(f->got[0].attempts, 3);
    assert_string_equal(f->got[0].body, "ok");
    assert_int_equal(f->nseen, 3);
    assert_string_equal(f->seen[2].body, "{\"status\":\"running\"}");
}

/* Plain mode makes one attempt, whatever the answer. */
static void plain_mode_makes_one_attempt(void **state)
{
    fixture *f = *state;
    char url[64];
    url_of(url, sizeof url, f->refused_port, "/x");
    client(f, 0, 0, 10);
    req(f, 0, "GET", "/status/503", NULL, NULL, HTTPC_PLAIN);
    req(f, 1, "GET", url, NULL, NULL, HTTPC_PLAIN);
    run(f);
    assert_int_equal(f->got[0].status, 503);
    assert_int_equal(f->got[0].attempts, 1);
    assert_int_equal(f->got[1].error, HTTPC_E_TRANSPORT);
    assert_int_equal(f->got[1].attempts, 1);
}

/* ---- failures ---- */

/* A refused connection is a transport error, retried in retrying mode; the message says what failed and never
 * contains the token (nor the URL's query). */
static void refused_connection_is_transport_error(void **state)
{
    fixture *f = *state;
    char url[96];
    url_of(url, sizeof url, f->refused_port, "/api/v1/agents?token=" TOKEN);
    client(f, 0, 0, 10);
    req(f, 0, "POST", url, TOKEN, "{}", HTTPC_RETRYING);
    run(f);
    assert_int_equal(f->got[0].error, HTTPC_E_TRANSPORT);
    assert_int_equal(f->got[0].status, 0);
    assert_int_equal(f->got[0].attempts, 4);
    assert_string_equal(f->got[0].body, "");
    assert_true(strlen(f->got[0].errmsg) > 0);
    assert_non_null(strstr(f->got[0].errmsg, "127.0.0.1"));
    assert_null(strstr(f->got[0].errmsg, TOKEN));
    assert_null(strstr(f->got[0].errmsg, "?"));
}

/* A server that accepts and never answers ends in HTTPC_E_TIMEOUT once total_timeout_ms has passed. */
static void unanswered_request_times_out(void **state)
{
    fixture *f = *state;
    char url[64];
    url_of(url, sizeof url, f->hold_port, "/slow");
    client(f, 200, 0, 10);
    req(f, 0, "GET", url, TOKEN, NULL, HTTPC_PLAIN);
    run(f);
    assert_int_equal(f->got[0].error, HTTPC_E_TIMEOUT);
    assert_int_equal(f->got[0].status, 0);
    assert_true(f->got[0].at_ms >= 190 && f->got[0].at_ms < 2000);
    assert_null(strstr(f->got[0].errmsg, TOKEN));
}

/* A response body larger than max_response fails with HTTPC_E_TOOBIG (not retried); one of exactly
 * max_response bytes is delivered. */
static void oversized_response_is_too_big(void **state)
{
    fixture *f = *state;
    client(f, 0, 1000, 10);
    req(f, 0, "GET", "/big?n=5000", NULL, NULL, HTTPC_RETRYING);
    req(f, 1, "GET", "/big?n=1000", NULL, NULL, HTTPC_RETRYING);
    run(f);
    assert_int_equal(f->got[0].error, HTTPC_E_TOOBIG);
    assert_int_equal(f->got[0].attempts, 1);
    assert_int_equal(f->got[0].body_len, 0);
    assert_int_equal(f->got[1].error, HTTPC_OK);
    assert_int_equal(f->got[1].body_len, 1000);
}

/* Requests that could inject headers or are not requests at all are refused up front (NULL, no callback). */
static void malformed_requests_are_refused(void **state)
{
    fixture *f = *state;
    client(f, 0, 0, 10);
    assert_null(req(f, 0, "GET", "/echo", "tok\r\nX-Evil: 1", NULL, HTTPC_PLAIN));
    assert_null(req(f, 1, "get", "/echo", NULL, NULL, HTTPC_PLAIN));
    assert_null(req(f, 2, "GE T", "/echo", NULL, NULL, HTTPC_PLAIN));
    assert_null(httpc_request(f->c, &(httpc_req){ .method = "GET" }, on_res, &f->slots[3]));
    assert_int_equal(httpc_pending(f->c), 0);
    finish(f);
    run(f);
    for (int i = 0; i < 4; i++)
        assert_int_equal(f->got[i].called, 0);
}

/* ---- cancel and free ---- */

static void cancel_both(uv_timer_t *t)
{
    fixture *f = t->data;
    httpc_cancel(f->calls[0]); /* in flight, waiting for an answer */
    httpc_cancel(f->calls[1]); /* waiting to retry */
    f->outstanding -= 2;
    assert_int_equal(httpc_pending(f->c), 0);
    finish(f);
}

/* A cancelled call never calls back, whether it is in flight or waiting for its next attempt, and leaves no
 * timer behind (the retry wait here is 5 s; the loop ends at once). */
static void cancelled_calls_never_call_back(void **state)
{
    fixture *f = *state;
    char url[64];
    url_of(url, sizeof url, f->hold_port, "/slow");
    client(f, 0, 0, 5000);
    req(f, 0, "GET", url, TOKEN, NULL, HTTPC_PLAIN);
    req(f, 1, "GET", "/status/502", TOKEN, NULL, HTTPC_RETRYING);
    assert_int_equal(httpc_pending(f->c), 2);
    uv_timer_start(&f->aux, cancel_both, 200, 0);
    run(f);
    assert_int_equal(f->got[0].called, 0);
    assert_int_equal(f->got[1].called, 0);
    assert_int_equal(f->nseen, 1); /* the 502's first attempt happened; no second one */
}

static void free_now(uv_timer_t *t) { finish(t->data); }

/* httpc_free with calls in flight, waiting to retry, or not yet started runs no callback, releases everything
 * (checked by the sanitizer build) and lets the loop finish. */
static void free_with_calls_in_flight(void **state)
{
    fixture *f = *state;
    char url[64];
    url_of(url, sizeof url, f->hold_port, "/slow");
    client(f, 0, 0, 5000);
    req(f, 0, "GET", url, TOKEN, NULL, HTTPC_RETRYING);
    req(f, 1, "GET", "/status/500", TOKEN, NULL, HTTPC_RETRYING);
    uv_timer_start(&f->aux, free_now, 200, 0);
    run(f);
    assert_int_equal(f->got[0].called, 0);
    assert_int_equal(f->got[1].called, 0);
}

/* Freed right after the requests were made, before the loop ever ran. */
static void free_before_loop_runs(void **state)
{
    fixture *f = *state;
    client(f, 0, 0, 10);
    req(f, 0, "POST", "/echo", TOKEN, "{}", HTTPC_RETRYING);
    req(f, 1, "GET", "/echo", TOKEN, NULL, HTTPC_PLAIN);
    finish(f);
    run(f);
    assert_int_equal(f->got[0].called, 0);
    assert_int_equal(f->got[1].called, 0);
}

static void chain_and_cancel(fixture *f, int i)
{
    if (i != 0)
        return;
    httpc_cancel(f->calls[1]); /* another call, still in flight */
    f->outstanding--;
    assert_non_null(req(f, 2, "POST", "/echo", TOKEN, "{\"second\":true}", HTTPC_PLAIN));
}

/* From inside a callback a new request can be made and another call cancelled. */
static void callback_may_request_and_cancel(void **state)
{
    fixture *f = *state;
    char url[64];
    url_of(url, sizeof url, f->hold_port, "/slow");
    client(f, 0, 0, 10);
    f->on_cb = chain_and_cancel;
    req(f, 0, "GET", "/echo", TOKEN, NULL, HTTPC_PLAIN);
    req(f, 1, "GET", url, TOKEN, NULL, HTTPC_PLAIN);
    run(f);
    assert_int_equal(f->got[0].called, 1);
    assert_int_equal(f->got[1].called, 0);
    assert_int_equal(f->got[2].called, 1);
    assert_string_equal(f->got[2].body, "{\"second\":true}");
}

static void free_inside(fixture *f, int i)
{
    (void)i;
    finish(f); /* httpc_free from inside the callback */
}

/* A callback may free the client: the other calls' callbacks then never run, and the loop finishes. */
static void callback_may_free_client(void **state)
{
    fixture *f = *state;
    char url[64];
    url_of(url, sizeof url, f->hold_port, "/slow");
    client(f, 0, 0, 10);
    f->on_cb = free_inside;
    req(f, 0, "GET", "/echo", TOKEN, NULL, HTTPC_PLAIN);
    req(f, 1, "GET", url, TOKEN, NULL, HTTPC_PLAIN);
    req(f, 2, "GET", "/status/500", TOKEN, NULL, HTTPC_RETRYING);
    run(f);
    assert_int_equal(f->got[0].called + f->got[2].called, 1); /* whichever came first freed the client */
    assert_int_equal(f->got[1].called, 0);
}

int main(void)
{
    lws_set_log_level(LLL_ERR, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(round_trip_each_method, setup, teardown),
        cmocka_unit_test_setup_teardown(bodies_go_with_any_method, setup, teardown),
        cmocka_unit_test_setup_teardown(concurrent_requests_complete, setup, teardown),
        cmocka_unit_test_setup_teardown(client_error_is_not_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(server_error_is_retried_four_times, setup, teardown),
        cmocka_unit_test_setup_teardown(recovers_after_two_server_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(plain_mode_makes_one_attempt, setup, teardown),
        cmocka_unit_test_setup_teardown(refused_connection_is_transport_error, setup, teardown),
        cmocka_unit_test_setup_teardown(unanswered_request_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(oversized_response_is_too_big, setup, teardown),
        cmocka_unit_test_setup_teardown(malformed_requests_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(cancelled_calls_never_call_back, setup, teardown),
        cmocka_unit_test_setup_teardown(free_with_calls_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(free_before_loop_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(callback_may_request_and_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(callback_may_free_client, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
