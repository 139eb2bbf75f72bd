/* test_lwsloop.c — lws contexts created and destroyed on the test's own libuv loop, with real loopback sockets.
 *
 * Every scenario ends the same way: the loop must run to completion by itself (uv_run returns), with no handle
 * left and uv_loop_close() == 0. A 2 s watchdog (unreferenced: it does not keep the loop alive) stops a loop that
 * would not end, and the scenario then fails. */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include <libwebsockets.h>
#include <uv.h>

#include "iac/lwsloop.h"


#define MAX_PIPES 32

typedef struct {
    int        fds_before;  /* open fds before the loop was made */
    uv_loop_t  loop;
    uv_timer_t watchdog;
    bool       timed_out;
    int        expect_done; /* destroys that must have finished when the loop ends */
    int        done;        /* done callbacks so far */
    /* destroy_from_inside_a_callback */
    int        http_calls;
    int        done_inside_call; /* done callbacks seen when lwsloop_destroy() returned */
    int        uri_after_call;   /* length of the request's URI, read from its wsi after that */
    bool       in_http;          /* inside lwsloop_destroy() in the HTTP callback */
    int        closed_calls, closed_inside_call; /* LWS_CALLBACK_CLOSED_HTTP: in all, and nested in that call */
    /* an_fd_opened_after_the_destroy_starts_is_left_alone */
    uv_check_t opener;
    int        turns;
    int        pipes[MAX_PIPES][2];
    ino_t      ino[MAX_PIPES];
    int        n_pipes;
} fixture;

static void watchdog_cb(uv_timer_t *t)
{
    fixture *f = t->data;
    f->timed_out = true;
    uv_stop(&f->loop);
}

static void on_done(void *arg)
{
    fixture *f = arg;
    f->done++;
}

static void count_handle(uv_handle_t *h, void *arg)
{
    (void)h;
    ++*(int *)arg;
}

/* Runs the loop until it ends by itself; then nothing may be left on it. */
static void run_to_completion(fixture *f)
{
    int left = 0;

    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_false(f->timed_out);
    assert_int_equal(f->done, f->expect_done);
    uv_close((uv_handle_t *)&f->watchdog, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    uv_walk(&f->loop, count_handle, &left);
    assert_int_equal(left, 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    assert_non_null(d);
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        n += de->d_name[0] >= '0' && de->d_name[0] <= '9';
    closedir(d);
    return n - 1; /* the directory's own fd */
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->fds_before = open_fds();
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(uv_timer_init(&f->loop, &f->watchdog), 0);
    f->watchdog.data = f;
    assert_int_equal(uv_timer_start(&f->watchdog, watchdog_cb, 2000, 0), 0);
    uv_unref((uv_handle_t *)&f->watchdog);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

/* ---- contexts ---- */

static int server_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    fixture *f = lws_context_user(lws_get_context(wsi));

    if (!f)
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        f->http_calls++;
        f->in_http = true;
        assert_int_equal(lwsloop_destroy(&f->loop, lws_get_context(wsi), on_done, f), 0);
        f->in_http = false;
        f->done_inside_call = f->done;
        f->uri_after_call = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI); /* the request is still there */
        return 0; /* no answer: the destroy drops the connection */
    case LWS_CALLBACK_CLOSED_HTTP:
        f->closed_calls++;
        f->closed_inside_call += f->in_http;
        break;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols server_protocols[] = {
    { "http", server_cb, 0, 0, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 },
};

static const struct lws_protocols client_protocols[] = {
    { "none", lws_callback_http_dummy, 0, 0, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 },
};

/* A context that listens on an ephemeral loopback port; *port is set. */
static struct lws_context *server(fixture *f, int *port)
{
    struct lws_context_creation_info info;
    struct lws_context *ctx;

    memset(&info, 0, sizeof info);
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    info.iface = "127.0.0.1";
    info.port = 0;
    info.protocols = server_protocols;
    info.user = f;
    ctx = lwsloop_create(&f->loop, &info);
    assert_non_null(ctx);
    *port = lws_get_vhost_listen_port(lws_get_vhost_by_name(ctx, "default"));
    assert_true(*port > 0);
    return ctx;
}

/* A context with no listener, as a client would have. */
static struct lws_context *client(fixture *f)
{
    struct lws_context_creation_info info;
    struct lws_context *ctx;

    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = client_protocols;
    ctx = lwsloop_create(&f->loop, &info);
    assert_non_null(ctx);
    return ctx;
}

/* A blocking loopback connection to port that has sent one HTTP request; reads time out after 1 s. */
static int http_request(int port)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    struct timeval tv = { .tv_sec = 1 };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    assert_int_equal(send(fd, req, sizeof req - 1, MSG_NOSIGNAL), (ssize_t)(sizeof req - 1));
    return fd;
}

/* ---- scenarios ---- */

/* A context destroyed from inside its own HTTP callback, with that connection open: the call returns at once,
 * without re-entering lws (no CLOSED_HTTP nested in it, the callback's wsi intact, done later), then the connection
 * is closed from the loop (CLOSED_HTTP once, the client sees the socket closed) and the loop runs to completion. */
static void destroy_from_inside_a_callback(void **state)
{
    fixture *f = *state;
    int port, fd;
    char buf[64];

    f->expect_done = 1;
    server(f, &port);
    fd = http_request(port);
    run_to_completion(f);

    assert_int_equal(f->http_calls, 1);
    assert_int_equal(f->done_inside_call, 0);
    assert_int_equal(f->uri_after_call, 1); /* "/" */
    assert_int_equal(f->closed_calls, 1);
    assert_int_equal(f->closed_inside_call, 0);
    assert_true(recv(fd, buf, sizeof buf, 0) <= 0); /* closed by the server, nothing answered */
    close(fd);
}

/* Two contexts created and destroyed back to back on one loop (the second created while the first is still being
 * destroyed) both finish, and leave no handle and no fd behind. */
static void two_contexts_back_to_back_leave_nothing_behind(void **state)
{
    fixture *f = *state;

    f->expect_done = 2;
    assert_int_equal(lwsloop_destroy(&f->loop, client(f), on_done, f), 0);
    assert_int_equal(lwsloop_destroy(&f->loop, client(f), on_done, f), 0);
    run_to_completion(f);

    assert_int_equal(open_fds(), f->fds_before);
}

/* Opens pipes on each of the first loop turns after the destroy starts, i.e. while lws is between its first close
 * of the event fd and its second one. */
static void opener_cb(uv_check_t *h)
{
    fixture *f = h->data;
    struct stat st;

    if (++f->turns > 8) {
        uv_check_stop(h);
        return;
    }
    for (int i = 0; i < 4 && f->n_pipes < MAX_PIPES; i++) {
        int *p = f->pipes[f->n_pipes];
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        assert_int_equal(fstat(p[0], &st), 0);
        f->ino[f->n_pipes++] = st.st_ino;
    }
}

static void opener_done(void *arg)
{
    fixture *f = arg;
    uv_close((uv_handle_t *)&f->opener, NULL);
    on_done(f);
}

/* lws 4.1.6 closes its event fd twice; fds the test opens right after the destroy starts — which would get that
 * number — are all still open and still the test's own when the loop is over. */
static void an_fd_opened_after_the_destroy_starts_is_left_alone(void **state)
{
    fixture *f = *state;
    struct stat st;

    f->expect_done = 1;
    assert_int_equal(uv_check_init(&f->loop, &f->opener), 0);
    f->opener.data = f;
    assert_int_equal(lwsloop_destroy(&f->loop, client(f), opener_done, f), 0);
    assert_int_equal(uv_check_start(&f->opener, opener_cb), 0);
    run_to_completion(f);

    assert_true(f->n_pipes > 0);
    for (int i = 0; i < f->n_pipes; i++)
        for (int end = 0; end < 2; end++) {
            int fd = f->pipes[i][end];
            if (fstat(fd, &st) != 0 || st.st_ino != f->ino[i])
                fail_msg("pipe %d: fd %d was closed under the test", i, fd);
        }
    for (int i = 0; i < f->n_pipes; i++) {
        close(f->pipes[i][0]);
        close(f->pipes[i][1]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(destroy_from_inside_a_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(two_contexts_back_to_back_leave_nothing_behind, setup, teardown),
        cmocka_unit_test_setup_teardown(an_fd_opened_after_the_destroy_starts_is_left_alone, setup, teardown),
    };
    /* TEST_LWSLOOP_LWS_LOG=1 shows lws's own log. */
    lws_set_log_level(getenv("TEST_LWSLOOP_LWS_LOG") ? LLL_ERR | LLL_WARN | LLL_NOTICE | LLL_INFO : 0, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
