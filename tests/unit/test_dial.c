/* test_dial.c — TCP connections to host:port on a libuv loop: literals, names, refusals, time limits, aborts.
 *
 * Peers are on loopback with ephemeral ports: a libuv listener that accepts, a port that was closed (refused), and
 * a listener whose accept queue is full, so that the kernel drops further SYNs and a connect hangs. Every test ends
 * with the loop running to completion and uv_loop_close() succeeding: nothing of a dial is left behind. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "iac/dial.h"

typedef struct {
    uv_loop_t  loop;
    uv_tcp_t   listener, accepted;
    bool       listening, did_accept;
    int        port;
    /* what the callback saw */
    int        calls, error;
    char       msg[256];
    uv_tcp_t  *tcp;
    bool       in_start;   /* dial_start() is on the stack */
    bool       cb_in_start;
} fixture;

static void on_accept(uv_stream_t *server, int status)
{
    fixture *f = server->data;
    if (status < 0 || f->did_accept)
        return;
    uv_tcp_init(&f->loop, &f->accepted);
    assert_int_equal(uv_accept(server, (uv_stream_t *)&f->accepted), 0);
    f->did_accept = true;
}

/* A listener on addr ("127.0.0.1" or "::1") and an ephemeral port. false when the address is not available. */
static bool listen_on(fixture *f, const char *addr)
{
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    if (strchr(addr, ':'))
        uv_ip6_addr(addr, 0, (struct sockaddr_in6 *)&ss);
    else
        uv_ip4_addr(addr, 0, (struct sockaddr_in *)&ss);
    assert_int_equal(uv_tcp_init(&f->loop, &f->listener), 0);
    f->listener.data = f;
    f->listening = true;
    if (uv_tcp_bind(&f->listener, (struct sockaddr *)&ss, 0) != 0 ||
        uv_listen((uv_stream_t *)&f->listener, 8, on_accept) != 0)
        return false;
    assert_int_equal(uv_tcp_getsockname(&f->listener, (struct sockaddr *)&ss, &sl), 0);
    f->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    return true;
}

/* A port nobody listens on: bound once, then closed. */
static int closed_port(void)
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof sin;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

/* A listener that never accepts, its queue already full with one connection: further SYNs are dropped, so a
 * connect to it neither succeeds nor fails. *fds gets the two sockets to close. */
static int hanging_port(int fds[2])
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof sin;
    fds[0] = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fds[0] >= 0);
    assert_int_equal(bind(fds[0], (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(listen(fds[0], 0), 0);
    assert_int_equal(getsockname(fds[0], (struct sockaddr *)&sin, &sl), 0);
    fds[1] = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fds[1] >= 0);
    assert_int_equal(connect(fds[1], (struct sockaddr *)&sin, sizeof sin), 0);
    return ntohs(sin.sin_port);
}

static void on_dialed(void *arg, uv_tcp_t *tcp, int error, const char *msg)
{
    fixture *f = arg;
    f->calls++;
    f->error = error;
    f->tcp = tcp;
    f->cb_in_start = f->in_start;
    snprintf(f->msg, sizeof f->msg, "%s", msg);
    assert_true(error == DIAL_OK ? tcp != NULL : tcp == NULL);
}

static dial *start(fixture *f, const char *host, int port, uint64_t timeout_ms)
{
    f->in_start = true;
    dial *d = dial_start(&f->loop, host, (uint16_t)port, timeout_ms, on_dialed, f);
    f->in_start = false;
    assert_non_null(d);
    return d;
}

/* Runs the loop until the callback ran (or 5 s pass: a failure). */
static void run_until_called(fixture *f)
{
    uint64_t t0 = uv_now(&f->loop);
    while (f->calls == 0) {
        uv_run(&f->loop, UV_RUN_ONCE);
        uv_update_time(&f->loop);
        assert_true(uv_now(&f->loop) - t0 < 5000);
    }
}

static int setup(void **state)
{
    static fixture f;
    memset(&f, 0, sizeof f);
    assert_int_equal(uv_loop_init(&f.loop), 0);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->tcp)
        uv_close((uv_handle_t *)f->tcp, dial_tcp_closed); /* the caller's from the callback on */
    if (f->listening)
        uv_close((uv_handle_t *)&f->listener, NULL);
    if (f->did_accept)
        uv_close((uv_handle_t *)&f->accepted, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT); /* returns: nothing of the dial is left on the loop */
    assert_int_equal(uv_loop_close(&f->loop), 0);
    return 0;
}

/* An IPv4 literal connects without a lookup; the callback comes after dial_start() has returned and hands over a
 * handle connected to the listener's port. */
static void literal_connects_after_start_returns(void **state)
{
    fixture *f = *state;
    assert_true(listen_on(f, "127.0.0.1"));
    start(f, "127.0.0.1", f->port, 1000);
    assert_int_equal(f->calls, 0);
    run_until_called(f);
    assert_false(f->cb_in_start);
    assert_int_equal(f->error, DIAL_OK);
    assert_string_equal(f->msg, "");
    struct sockaddr_in peer;
    int sl = sizeof peer;
    assert_int_equal(uv_tcp_getpeername(f->tcp, (struct sockaddr *)&peer, &sl), 0);
    assert_int_equal(ntohs(peer.sin_port), f->port);
}

/* An IPv6 literal (no brackets) connects too. Skipped where the host has no ::1. */
static void ipv6_literal_connects(void **state)
{
    fixture *f = *state;
    if (!listen_on(f, "::1"))
        skip();
    start(f, "::1", f->port, 1000);
    run_until_called(f);
    assert_int_equal(f->error, DIAL_OK);
}

/* A closed port fails with DIAL_E_CONNECT and a text that names host, port and the reason. */
static void refused_port_names_host_and_port(void **state)
{
    fixture *f = *state;
    int port = closed_port();
    char want[128];
    start(f, "127.0.0.1", port, 1000);
    run_until_called(f);
    assert_int_equal(f->error, DIAL_E_CONNECT);
    snprintf(want, sizeof want, "cannot connect to 127.0.0.1 port %d: connection refused", port);
    assert_string_equal(f->msg, want);
}

/* A name is resolved and each of its addresses tried in turn: "localhost" may give ::1 first, where nothing
 * listens on this port, and 127.0.0.1 answers. */
static void name_is_resolved_and_each_address_tried(void **state)
{
    fixture *f = *state;
    assert_true(listen_on(f, "127.0.0.1"));
    start(f, "localhost", f->port, 3000);
    run_until_called(f);
    assert_int_equal(f->error, DIAL_OK);
}

/* A connect that hangs ends with DIAL_E_TIMEOUT after connect_timeout_ms, and the text says so. */
static void hanging_connect_times_out(void **state)
{
    fixture *f = *state;
    int fds[2], port = hanging_port(fds);
    char want[128];
    uv_update_time(&f->loop);
    uint64_t t0 = uv_now(&f->loop);
    start(f, "127.0.0.1", port, 200);
    run_until_called(f);
    uv_update_time(&f->loop);
    assert_true(uv_now(&f->loop) - t0 >= 190);
    assert_int_equal(f->error, DIAL_E_TIMEOUT);
    snprintf(want, sizeof want, "no connection to 127.0.0.1 port %d within 200 ms", port);
    assert_string_equal(f->msg, want);
    close(fds[1]);
    close(fds[0]);
}

/* dial_abort() right after the start, or while a connect hangs, means no callback ever; the loop then runs to its
 * end (teardown). */
static void abort_means_no_callback(void **state)
{
    fixture *f = *state;
    int fds[2], port = hanging_port(fds);

    dial_abort(start(f, "127.0.0.1", port, 0));
    dial *d = start(f, "127.0.0.1", port, 0);
    for (int i = 0; i < 5; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT); /* the connect is under way */
    dial_abort(d);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(f->calls, 0);
    close(fds[1]);
    close(fds[0]);
}

/* A dial aborted while its name is being looked up never calls back; the lookup's answer is dropped when it
 * comes, and the loop ends once it has. */
static void abort_during_lookup(void **state)
{
    fixture *f = *state;
    dial *d = start(f, "localhost", 80, 0);
    uv_run(&f->loop, UV_RUN_NOWAIT); /* the lookup thread starts */
    dial_abort(d);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(f->calls, 0);
}

/* An empty host is refused up front, with no callback. */
static void empty_host_is_refused(void **state)
{
    fixture *f = *state;
    assert_null(dial_start(&f->loop, "", 80, 0, on_dialed, f));
    assert_null(dial_start(&f->loop, NULL, 80, 0, on_dialed, f));
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->calls, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(literal_connects_after_start_returns, setup, teardown),
        cmocka_unit_test_setup_teardown(ipv6_literal_connects, setup, teardown),
        cmocka_unit_test_setup_teardown(refused_port_names_host_and_port, setup, teardown),
        cmocka_unit_test_setup_teardown(name_is_resolved_and_each_address_tried, setup, teardown),
        cmocka_unit_test_setup_teardown(hanging_connect_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(abort_means_no_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(abort_during_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(empty_host_is_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
