/* test_wsc.c — the WebSocket client against a real lws server on the same loop.
 *
 * The server below is a small lws WebSocket server written for these tests: it records the Authorization header,
 * echoes text messages, and on request sends a fragmented message, an oversized message, or closes; paths
 * /refuse/<status> refuse the upgrade with that status and a plain-text body (LWS_CALLBACK_HTTP_CONFIRM_UPGRADE).
 * Everything runs on one libuv loop over 127.0.0.1 with ephemeral ports. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libwebsockets.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "iac/https.h"
#include "iac/lwsloop.h"
#include "iac/wsc.h"

#include "lwsfds.h"

/* ---- the test server ---- */

typedef struct srv_msg {
    struct srv_msg *next;
    int             flags; /* lws_write flags */
    size_t          len;
    unsigned char   buf[];
} srv_msg;

typedef struct {
    srv_msg *head, *tail;
    bool     close_after; /* close with 1000 once the queue is written */
} srv_session;

typedef struct {
    struct lws_context *ctx;
    int                 port;
    char                last_auth[256];
    int                 upgrades;      /* handshakes accepted */
    int                 refusals;      /* handshakes refused */
    int                 peer_close_code; /* code of the client's close frame */
    int                 closed;        /* WebSocket connections that ended */
    int                 n_received;
    int                 order_errors;  /* "m<i>" messages received out of order */
} test_server;

static void srv_push(srv_session *s, int flags, const char *data, size_t len)
{
    srv_msg *m = malloc(sizeof *m + LWS_PRE + len);
    assert_non_null(m);
    m->next = NULL;
    m->flags = flags;
    m->len = len;
    memcpy(m->buf + LWS_PRE, data, len);
    if (s->tail)
        s->tail->next = m;
    else
        s->head = m;
    s->tail = m;
}

static void srv_clear(srv_session *s)
{
    while (s->head) {
        srv_msg *n = s->head->next;
        free(s->head);
        s->head = n;
    }
    s->tail = NULL;
}

/* Refuses the upgrade the way a net/http server does: status, plain-text body, connection closed. */
static int srv_refuse(struct lws *wsi, unsigned status, const char *body)
{
    unsigned char buf[LWS_PRE + 512], *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf;
    size_t blen = strlen(body);

    if (lws_add_http_common_headers(wsi, status, "text/plain; charset=utf-8", blen, &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close", 5, &p, end) ||
        lws_finalize_http_header(wsi, &p, end))
        return -1;
    if (lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_HEADERS) != (int)(p - start))
        return -1;
    memcpy(start, body, blen);
    if (lws_write(wsi, start, blen, LWS_WRITE_HTTP_FINAL) != (int)blen)
        return -1;
    return 1; /* lws: "headers already sent", completes the transaction */
}

static int srv_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    test_server *ts = lws_context_user(lws_get_context(wsi));
    srv_session *s = user;
    char uri[256];

    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        if (lws_hdr_copy(wsi, ts->last_auth, sizeof ts->last_auth, WSI_TOKEN_HTTP_AUTHORIZATION) < 0)
            ts->last_auth[0] = '\0';
        if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) > 0 && strncmp(uri, "/refuse/", 8) == 0) {
            ts->refusals++;
            return srv_refuse(wsi, (unsigned)atoi(uri + 8), "refused by test server\n");
        }
        return 0;

    case LWS_CALLBACK_ESTABLISHED:
        memset(s, 0, sizeof *s);
        ts->upgrades++;
        return 0;

    case LWS_CALLBACK_RECEIVE: {
        char msg[64];
        size_t n = len < sizeof msg - 1 ? len : sizeof msg - 1;
        memcpy(msg, in, n);
        msg[n] = '\0';
        if (msg[0] == 'm') {
            if (atoi(msg + 1) != ts->n_received)
                ts->order_errors++;
            ts->n_received++;
        }
        if (strcmp(msg, "frag") == 0) {
            srv_push(s, lws_write_ws_flags(LWS_WRITE_TEXT, 1, 0), "one|", 4);
            srv_push(s, lws_write_ws_flags(LWS_WRITE_TEXT, 0, 0), "two|", 4);
            srv_push(s, lws_write_ws_flags(LWS_WRITE_TEXT, 0, 1), "three", 5);
        } else if (strncmp(msg, "big:", 4) == 0) {
            size_t big = (size_t)atoi(msg + 4);
            char *b = malloc(big);
            assert_non_null(b);
            memset(b, 'x', big);
            srv_push(s, LWS_WRITE_TEXT, b, big);
            free(b);
        } else if (strcmp(msg, "close") == 0) {
            s->close_after = true;
        } else if (strcmp(msg, "whoami") == 0) {
            srv_push(s, LWS_WRITE_TEXT, ts->last_auth, strlen(ts->last_auth));
        } else {
            srv_push(s, LWS_WRITE_TEXT, in, len);
        }
        lws_callback_on_writable(wsi);
        return 0;
    }

    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (s->head) {
            srv_msg *m = s->head;
            if (lws_write(wsi, m->buf + LWS_PRE, m->len, (enum lws_write_protocol)m->flags) < (int)m->len)
                return -1;
            s->head = m->next;
            if (!s->head)
                s->tail = NULL;
            free(m);
            lws_callback_on_writable(wsi);
            return 0;
        }
        if (s->close_after)
            lws_set_timer_usecs(wsi, 1); /* -1 from WRITEABLE would drop the socket without a close frame */
        return 0;

    case LWS_CALLBACK_TIMER:
        lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)"bye", 3);
        return -1;

    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (len >= 2) {
            const unsigned char *b = in;
            ts->peer_close_code = (b[0] << 8) | b[1];
        }
        return 0;

    case LWS_CALLBACK_CLOSED:
        ts->closed++;
        srv_clear(s);
        return 0;

    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static const struct lws_protocols srv_protocols[] = {
    { "test", srv_cb, sizeof(srv_session), 0, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 },
};

/* cert and key: PEM files of a TLS server certificate, or NULL for plain ws. 0 or -1 (no cmocka asserts: this
 * also runs in the forked TLS server). */
static int srv_start_tls(test_server *ts, uv_loop_t *loop, const char *cert, const char *key)
{
    struct lws_context_creation_info info;
    void *loops[1] = { loop };
    struct lws_vhost *vh;

    memset(ts, 0, sizeof *ts);
    memset(&info, 0, sizeof info);
    if (cert) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = cert;
        info.ssl_private_key_filepath = key;
    }
    info.port = 0;
    info.iface = "127.0.0.1";
    info.protocols = srv_protocols;
    info.options |= LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
                    LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN | LWS_SERVER_OPTION_DISABLE_IPV6;
    info.foreign_loops = loops;
    info.fd_limit_per_thread = 64;
    info.user = ts;
    ts->ctx = lws_create_context(&info);
    vh = ts->ctx ? lws_create_vhost(ts->ctx, &info) : NULL;
    ts->port = vh ? lws_get_vhost_listen_port(vh) : -1;
    return ts->port > 0 ? 0 : -1;
}

static void srv_start(test_server *ts, uv_loop_t *loop)
{
    assert_int_equal(srv_start_tls(ts, loop, NULL, NULL), 0);
}

static void count_closing(uv_handle_t *h, void *arg)
{
    if (uv_is_closing(h))
        ++*(int *)arg;
}

/* lws 4.1 on a foreign loop: the first destroy starts closing, the loop runs the close callbacks, the second
 * destroy frees the context. */
static void srv_stop(test_server *ts, uv_loop_t *loop)
{
    int closing;
    lws_context_destroy(ts->ctx);
    do {
        uv_run(loop, UV_RUN_NOWAIT);
        closing = 0;
        uv_walk(loop, count_closing, &closing);
    } while (closing);
    lws_context_destroy(ts->ctx);
    ts->ctx = NULL;
}

/* A TLS server in a child process. lws 4.1.6 keeps per-context OpenSSL ex_data indexes in globals, so of two TLS
 * contexts alive in one process the older one leaks its client SSL_CTX when destroyed; a separate process keeps
 * the test's own process to one TLS context at a time. Returns the child's pid and its port. */
static pid_t tls_server_fork(const char *cert, const char *key, int *port)
{
    int p[2];
    pid_t pid;

    assert_int_equal(pipe(p), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        uv_loop_t loop;
        test_server ts;
        close(p[0]);
        if (uv_loop_init(&loop) != 0 || srv_start_tls(&ts, &loop, cert, key) != 0)
            _exit(1);
        if (write(p[1], &ts.port, sizeof ts.port) != (ssize_t)sizeof ts.port)
            _exit(1);
        close(p[1]);
        uv_run(&loop, UV_RUN_DEFAULT); /* until killed */
        _exit(0);
    }
    close(p[1]);
    assert_int_equal(read(p[0], port, sizeof *port), (ssize_t)sizeof *port);
    close(p[0]);
    return pid;
}

/* ---- harness ---- */

typedef struct {
    uv_loop_t    loop;
    test_server  srv;
    wsc         *w;
    char         url[128];
    /* what happened */
    int          opens, closes, messages;
    int          close_status;
    char         close_reason[128];
    char         last_msg[256];
    size_t       last_len;
    bool         done;
    /* scenario knobs */
    int          to_send, sent, saw_full, reconnects_left, echoed_in_order;
    uv_timer_t   guard;
    pid_t        child; /* a forked server, killed in teardown */
    lwsloop_share *share;  /* a shared context (the fixture's reference), or NULL */
    https_server  *status; /* a status server on it */
} fixture;

static void on_open(wsc *w, void *arg);
static void on_message(wsc *w, const char *data, size_t len, void *arg);
static void on_close(wsc *w, int http_status, const char *reason, void *arg);

static const wsc_callbacks basic_cb = { on_open, on_message, on_close, NULL };

static void guard_cb(uv_timer_t *t)
{
    fixture *f = t->data;
    f->done = true; /* the assertions that follow fail with what was (not) seen */
    fail_msg("scenario did not finish in time (opens=%d closes=%d messages=%d)", f->opens, f->closes, f->messages);
}

/* Runs the loop until the scenario sets done (or 5 s pass: a failure). */
static void run_until_done(fixture *f)
{
    uv_timer_start(&f->guard, guard_cb, 5000, 0);
    while (!f->done)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_timer_stop(&f->guard);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(uv_timer_init(&f->loop, &f->guard), 0);
    f->guard.data = f;
    srv_start(&f->srv, &f->loop);
    snprintf(f->url, sizeof f->url, "ws://127.0.0.1:%d/echo", f->srv.port);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->child > 0) {
        kill(f->child, SIGKILL);
        waitpid(f->child, NULL, 0);
    }
    if (f->w)
        wsc_free(f->w);
    https_free(f->status);
    if (f->share)
        lwsloop_share_unref(f->share, NULL, NULL);
    uv_close((uv_handle_t *)&f->guard, NULL);
    srv_stop(&f->srv, &f->loop);
    uv_run(&f->loop, UV_RUN_DEFAULT); /* must return: nothing of lws or wsc left on the loop */
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

static wsc *client(fixture *f, const wsc_opts *opts, const wsc_callbacks *cb)
{
    f->w = wsc_new(&f->loop, opts, cb ? cb : &basic_cb, f);
    assert_non_null(f->w);
    return f->w;
}

static void on_open(wsc *w, void *arg)
{
    fixture *f = arg;
    f->opens++;
    assert_true(wsc_is_open(w));
}

static void on_message(wsc *w, const char *data, size_t len, void *arg)
{
    fixture *f = arg;
    (void)w;
    f->messages++;
    f->last_len = len;
    snprintf(f->last_msg, sizeof f->last_msg, "%.*s", (int)len, data);
}

static void on_close(wsc *w, int http_status, const char *reason, void *arg)
{
    fixture *f = arg;
    assert_false(wsc_is_open(w));
    f->closes++;
    f->close_status = http_status;
    snprintf(f->close_reason, sizeof f->close_reason, "%s", reason);
    f->done = true;
}

/* ---- scenarios ---- */

static void echo_open(wsc *w, void *arg)
{
    on_open(w, arg);
    assert_int_equal(wsc_send(w, "hello", 5), WSC_OK);
}

static void echo_message(wsc *w, const char *data, size_t len, void *arg)
{
    on_message(w, data, len, arg);
    wsc_close(w);
}

/* A message sent after open comes back from an echo server, the server saw the Bearer header, and a clean close
 * from our side ends with on_close(0). */
static void open_echo_round_trip_with_authorization(void **state)
{
    fixture *f = *state;
    wsc_callbacks cb = { echo_open, echo_message, on_close, NULL };
    wsc *w = client(f, NULL, &cb);

    assert_int_equal(wsc_connect(w, f->url, "tok-123"), WSC_OK);
    assert_int_equal(wsc_connect(w, f->url, "tok-123"), WSC_E_BUSY);
    run_until_done(f);
    assert_int_equal(f->opens, 1);
    assert_int_equal(f->messages, 1);
    assert_string_equal(f->last_msg, "hello");
    assert_string_equal(f->srv.last_auth, "Bearer tok-123");
    assert_int_equal(f->closes, 1);
    assert_int_equal(f->close_status, 0);
    assert_int_equal(f->srv.peer_close_code, 1000);
}

/* No bearer → no Authorization header at all. */
static void no_bearer_sends_no_authorization(void **state)
{
    fixture *f = *state;
    wsc_callbacks cb = { echo_open, echo_message, on_close, NULL };
    wsc *w = client(f, NULL, &cb);

    assert_int_equal(wsc_connect(w, f->url, NULL), WSC_OK);
    run_until_done(f);
    assert_int_equal(f->opens, 1);
    assert_string_equal(f->srv.last_auth, "");
}

/* 401, 403 and 400 answers to the upgrade reach on_close as http_status (the agent's revoked-token vs
 * register-again decision depends on it), and on_open is never called. */
static void refused_upgrade_reports_http_status(void **state)
{
    fixture *f = *state;
    static const int statuses[] = { 401, 403, 400 };
    wsc *w = client(f, NULL, NULL);

    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
        char url[160];
        snprintf(url, sizeof url, "ws://127.0.0.1:%d/refuse/%d?agent_id=a", f->srv.port, statuses[i]);
        f->done = false;
        assert_int_equal(wsc_connect(w, url, "tok"), WSC_OK);
        run_until_done(f);
        assert_int_equal(f->close_status, statuses[i]);
        char want[32];
        snprintf(want, sizeof want, "handshake: %d", statuses[i]);
        assert_string_equal(f->close_reason, want);
    }
    assert_int_equal(f->opens, 0);
    assert_int_equal(f->srv.refusals, 3);
}

/* A closed port is reported with http_status 0. */
static void connection_refused_reports_zero(void **state)
{
    fixture *f = *state;
    uv_tcp_t tcp;
    struct sockaddr_storage ss;
    struct sockaddr_in sin;
    int sl = sizeof ss;
    char url[64];

    uv_ip4_addr("127.0.0.1", 0, &sin);
    assert_int_equal(uv_tcp_init(&f->loop, &tcp), 0);
    assert_int_equal(uv_tcp_bind(&tcp, (struct sockaddr *)&sin, 0), 0);
    assert_int_equal(uv_tcp_getsockname(&tcp, (struct sockaddr *)&ss, &sl), 0);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/x", ntohs(((struct sockaddr_in *)&ss)->sin_port));
    uv_close((uv_handle_t *)&tcp, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);

    wsc *w = client(f, NULL, NULL);
    assert_int_equal(wsc_connect(w, url, "tok"), WSC_OK);
    run_until_done(f);
    assert_int_equal(f->opens, 0);
    assert_int_equal(f->closes, 1);
    assert_int_equal(f->close_status, 0);
    assert_string_equal(f->close_reason, "connection refused");
}

/* A TCP server that accepts and reads but never answers: the handshake never completes. */
typedef struct {
    uv_tcp_t listener;
    uv_tcp_t peer;
    bool     accepted, peer_eof;
} silent_server;

static void silent_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    static char scratch[4096];
    (void)h;
    (void)size;
    *buf = uv_buf_init(scratch, sizeof scratch);
}

static void silent_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    silent_server *ss = s->data;
    (void)buf;
    if (nread < 0) {
        ss->peer_eof = true;
        uv_read_stop(s);
    }
}

static void silent_accept(uv_stream_t *server, int status)
{
    silent_server *ss = server->data;
    if (status < 0 || ss->accepted)
        return;
    uv_tcp_init(server->loop, &ss->peer);
    ss->peer.data = ss;
    if (uv_accept(server, (uv_stream_t *)&ss->peer) == 0) {
        ss->accepted = true;
        uv_read_start((uv_stream_t *)&ss->peer, silent_alloc, silent_read);
    }
}

/* A server that accepts TCP but never answers the upgrade trips the connect timeout, and the socket is dropped
 * right away (the server reads end-of-file). */
static void silent_server_times_out(void **state)
{
    fixture *f = *state;
    silent_server srv = { 0 };
    struct sockaddr_storage ss;
    struct sockaddr_in sin;
    int sl = sizeof ss;
    char url[64];
    wsc_opts opts = { .connect_timeout_ms = 200 };

    uv_ip4_addr("127.0.0.1", 0, &sin);
    assert_int_equal(uv_tcp_init(&f->loop, &srv.listener), 0);
    srv.listener.data = &srv;
    assert_int_equal(uv_tcp_bind(&srv.listener, (struct sockaddr *)&sin, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&srv.listener, 4, silent_accept), 0);
    assert_int_equal(uv_tcp_getsockname(&srv.listener, (struct sockaddr *)&ss, &sl), 0);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/x", ntohs(((struct sockaddr_in *)&ss)->sin_port));

    wsc *w = client(f, &opts, NULL);
    uint64_t t0 = uv_now(&f->loop);
    assert_int_equal(wsc_connect(w, url, "tok"), WSC_OK);
    run_until_done(f);
    uv_update_time(&f->loop);
    assert_true(uv_now(&f->loop) - t0 >= 150);
    assert_int_equal(f->opens, 0);
    assert_int_equal(f->close_status, 0);
    assert_string_equal(f->close_reason, "connect timeout");
    uint64_t t1 = uv_now(&f->loop);
    for (int i = 0; i < 100 && !srv.peer_eof; i++)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_update_time(&f->loop);
    assert_true(srv.accepted);
    assert_true(srv.peer_eof);
    assert_true(uv_now(&f->loop) - t1 < 1000);

    uv_close((uv_handle_t *)&srv.listener, NULL);
    uv_close((uv_handle_t *)&srv.peer, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

/* Sending while not open is refused, and URLs outside ws[s]://host[:port][/path][?query] are rejected. */
static void send_when_closed_and_bad_urls(void **state)
{
    fixture *f = *state;
    static const char *bad[] = {
        "http://127.0.0.1/x", "ws://", "ws:///x", "ws://h:0/x", "ws://h:70000/", "ws://h:x/", "ws://h/a b",
        "ws://u@h/", "ws://h/#frag", "",
    };
    wsc *w = client(f, NULL, NULL);

    assert_int_equal(wsc_send(w, "x", 1), WSC_E_CLOSED);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(wsc_connect(w, bad[i], NULL), WSC_E_URL);
    assert_false(wsc_is_open(w));
    wsc_close(w); /* no-op */
    assert_int_equal(f->closes, 0);
}

static void pump(wsc *w, fixture *f)
{
    while (f->sent < f->to_send) {
        char m[32];
        int n = snprintf(m, sizeof m, "m%d", f->sent);
        int rc = wsc_send(w, m, (size_t)n);
        if (rc == WSC_E_FULL) {
            f->saw_full++;
            return;
        }
        assert_int_equal(rc, WSC_OK);
        f->sent++;
    }
}

static void order_open(wsc *w, void *arg)
{
    fixture *f = arg;
    on_open(w, arg);
    pump(w, f);
    assert_int_equal(wsc_queued(w), 8);
}

static void order_drained(wsc *w, void *arg)
{
    pump(w, arg);
}

static void order_message(wsc *w, const char *data, size_t len, void *arg)
{
    fixture *f = arg;
    char want[32];
    snprintf(want, sizeof want, "m%d", f->messages);
    if (len == strlen(want) && memcmp(data, want, len) == 0)
        f->echoed_in_order++;
    f->messages++;
    if (f->messages == f->to_send)
        wsc_close(w);
}

/* With max_queue 8 the ninth send is refused with WSC_E_FULL; refilling from on_drained, 300 messages reach the
 * server and come back in the order they were sent. */
static void queue_bound_and_order(void **state)
{
    fixture *f = *state;
    wsc_opts opts = { .max_queue = 8 };
    wsc_callbacks cb = { order_open, order_message, on_close, order_drained };
    wsc *w = client(f, &opts, &cb);

    f->to_send = 300;
    assert_int_equal(wsc_connect(w, f->url, NULL), WSC_OK);
    run_until_done(f);
    assert_true(f->saw_full > 0);
    assert_int_equal(f->sent, 300);
    assert_int_equal(f->srv.n_received, 300);
    assert_int_equal(f->srv.order_errors, 0);
    assert_int_equal(f->echoed_in_order, 300);
    assert_int_equal(f->close_status, 0);
}

static void bytes_open(wsc *w, void *arg)
{
    char buf[64];
    on_open(w, arg);
    memset(buf, 'b', sizeof buf);
    assert_int_equal(wsc_send(w, buf, 60), WSC_OK);
    assert_int_equal(wsc_send(w, buf, 50), WSC_E_FULL);
    assert_int_equal(wsc_send(w, buf, 40), WSC_OK);
    assert_int_equal(wsc_send(w, buf, 1), WSC_E_FULL);
    assert_int_equal(wsc_queued(w), 2);
    wsc_close(w);
    assert_int_equal(wsc_send(w, buf, 1), WSC_E_CLOSED);
}

/* max_queue_bytes bounds the total size of queued messages; a closing connection accepts nothing more. */
static void queue_byte_bound(void **state)
{
    fixture *f = *state;
    wsc_opts opts = { .max_queue_bytes = 100 };
    wsc_callbacks cb = { bytes_open, on_message, on_close, NULL };
    wsc *w = client(f, &opts, &cb);

    assert_int_equal(wsc_connect(w, f->url, NULL), WSC_OK);
    run_until_done(f);
    assert_int_equal(f->opens, 1);
    assert_int_equal(f->srv.peer_close_code, 1000);
}

static void frag_open(wsc *w, void *arg)
{
    on_open(w, arg);
    assert_int_equal(wsc_send(w, "frag", 4), WSC_OK);
}

/* A message the server sends in three frames arrives as one message. */
static void fragmented_message_reassembled(void **state)
{
    fixture *f = *state;
    wsc_callbacks cb = { frag_open, echo_message, on_close, NULL };
    wsc *w = client(f, NULL, &cb);

    assert_int_equal(wsc_connect(w, f->url, NULL), WSC_OK);
    run_until_done(f);
    assert_int_equal(f->messages, 1);
    assert_string_equal(f->last_msg, "one|two|three");
}

static void big_open(wsc *w, void *arg)
{
    on_open(w, arg);
    assert_int_equal(wsc_send(w, "big:5000", 8), WSC_OK);
}

/* An incoming message over max_frame closes the connection with 1009 and is never delivered. */
static void oversized_message_closes(void **state)
{
    fixture *f = *state;
    wsc_opts opts = { .max_frame = 1000 };
    wsc_callbacks cb = { big_open, on_message, on_close, NULL };
    wsc *w = client(f, &opts, &cb);

    assert_int_equal(wsc_connect(w, f->url, NULL), WSC_OK);
    run_until_done(f);
    assert_int_equal(f->messages, 0);
    assert_int_equal(f->closes, 1);
    assert_int_equal(f->close_status, 0);
    assert_non_null(strstr(f->close_reason, "1009"));
    assert_int_equal(f->srv.peer_close_code, 1009);
}

static void close_open(wsc *w, void *arg)
{
    on_open(w, arg);
    assert_int_equal(wsc_send(w, "close", 5), WSC_OK);
}

static void reconnect_close(wsc *w, int http_status, const char *reason, void *arg)
{
    fixture *f = arg;
    f->closes++;
    f->close_status = http_status;
    snprintf(f->close_reason, sizeof f->close_reason, "%s", reason);
    if (f->reconnects_left-- > 0) {
        assert_int_equal(wsc_connect(w, f->url, "again"), WSC_OK);
        return;
    }
    f->done = true;
}

/* A close by the server is reported as "closed by peer (1000)", and on_close may connect again at once: the new
 * connection opens (and is closed by the server again). */
static void reconnect_from_on_close(void **state)
{
    fixture *f = *state;
    wsc_callbacks cb = { close_open, on_message, reconnect_close, NULL };
    wsc *w = client(f, NULL, &cb);

    f->reconnects_left = 2;
    assert_int_equal(wsc_connect(w, f->url, "first"), WSC_OK);
    run_until_done(f);
    assert_int_equal(f->opens, 3);
    assert_int_equal(f->closes, 3);
    assert_int_equal(f->srv.upgrades, 3);
    assert_string_equal(f->srv.last_auth, "Bearer again");
    assert_string_equal(f->close_reason, "closed by peer (1000)");
}

static void stop_open(wsc *w, void *arg)
{
    fixture *f = arg;
    on_open(w, arg);
    f->done = true;
}

/* wsc_free with an open connection (and messages queued): no callback after it, the server sees the connection
 * go, and the loop runs to completion (checked in teardown). */
static void free_while_open(void **state)
{
    fixture *f = *state;
    wsc_callbacks cb = { stop_open, on_message, on_close, NULL };
    wsc *w = client(f, NULL, &cb);

    assert_int_equal(wsc_connect(w, f->url, NULL), WSC_OK);
    run_until_done(f);
    assert_int_equal(f->opens, 1);
    assert_int_equal(wsc_send(w, "pending", 7), WSC_OK);
    wsc_free(w);
    f->w = NULL;
    for (int i = 0; i < 20; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->closes, 0);
    assert_int_equal(f->messages, 0);
}

static void free_message(wsc *w, const char *data, size_t len, void *arg)
{
    fixture *f = arg;
    on_message(w, data, len, arg);
    wsc_free(w);
    f->w = NULL;
    f->done = true;
}

/* wsc_free from inside on_message is safe and final: on_close is never called. */
static void free_from_callback(void **state)
{
    fixture *f = *state;
    wsc_callbacks cb = { echo_open, free_message, on_close, NULL };
    wsc *w = client(f, NULL, &cb);

    assert_int_equal(wsc_connect(w, f->url, NULL), WSC_OK);
    run_until_done(f);
    for (int i = 0; i < 20; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->messages, 1);
    assert_int_equal(f->closes, 0);
}

/* wsc_free while still connecting leaves nothing behind either. */
static void free_while_connecting(void **state)
{
    fixture *f = *state;
    wsc *w = client(f, NULL, NULL);

    assert_int_equal(wsc_connect(w, f->url, NULL), WSC_OK);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    wsc_free(w);
    f->w = NULL;
    for (int i = 0; i < 20; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->opens, 0);
    assert_int_equal(f->closes, 0);
}

/* ---- on a shared context ---- */

static void status_handler(const https_request *req, https_response *res, void *arg)
{
    (void)req;
    (void)arg;
    strbuf_puts(&res->body, "{}");
}

/* The agent's shape: a status server and a client on one shared context. */
static void share_with_status_server(fixture *f)
{
    char err[128];
    f->share = lwsloop_share_new(&f->loop, 0);
    assert_non_null(f->share);
    https_opts o = { .host = "127.0.0.1", .port = 0, .handler = status_handler };
    f->status = https_listen_shared(f->share, &o, err, sizeof err);
    assert_non_null(f->status);
}

/* A client on a share next to a status server opens no lws context of its own — still one /dev/urandom descriptor
 * for the two of them, where a client of its own would add one — and works as usual: echo, Bearer, clean close. */
static void client_and_status_server_share_one_context(void **state)
{
    fixture *f = *state;
    wsc_callbacks cb = { echo_open, echo_message, on_close, NULL };
    int before = lwsfds_urandom(0);

    share_with_status_server(f);
    assert_int_equal(lwsfds_urandom(0), before + 1);
    wsc_opts opts = { .share = f->share };
    wsc *w = client(f, &opts, &cb);
    assert_int_equal(lwsfds_urandom(0), before + 1);

    assert_int_equal(wsc_connect(w, f->url, "tok-shared"), WSC_OK);
    run_until_done(f);
    assert_int_equal(f->opens, 1);
    assert_string_equal(f->last_msg, "hello");
    assert_string_equal(f->srv.last_auth, "Bearer tok-shared");
    assert_int_equal(f->close_status, 0);
    assert_int_equal(f->srv.peer_close_code, 1000);

    /* The control: a client of its own costs a context. */
    wsc *own = wsc_new(&f->loop, NULL, &basic_cb, f);
    assert_non_null(own);
    assert_int_equal(lwsfds_urandom(0), before + 2);
    wsc_free(own);
}

static void closed_count_reached(uv_timer_t *t)
{
    fixture *f = t->data;
    if (f->srv.closed > 0)
        f->done = true;
}

/* wsc_free of an open client on a share that lives on (the status server still uses it) drops the connection at
 * once: the server sees it end although the context stays, and the client hears nothing more. */
static void free_on_a_share_drops_the_connection(void **state)
{
    fixture *f = *state;
    wsc_callbacks cb = { stop_open, on_message, on_close, NULL };
    uv_timer_t poll;

    share_with_status_server(f);
    wsc_opts opts = { .share = f->share };
    wsc *w = client(f, &opts, &cb);
    assert_int_equal(wsc_connect(w, f->url, NULL), WSC_OK);
    run_until_done(f);
    assert_int_equal(f->opens, 1);
    assert_int_equal(f->srv.closed, 0);

    wsc_free(w);
    f->w = NULL;
    f->done = false;
    assert_int_equal(uv_timer_init(&f->loop, &poll), 0);
    poll.data = f;
    assert_int_equal(uv_timer_start(&poll, closed_count_reached, 5, 5), 0);
    run_until_done(f);
    uv_close((uv_handle_t *)&poll, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT); /* poll lives on this stack: let it close */
    assert_int_equal(f->srv.closed, 1);
    assert_int_equal(f->closes, 0);
}

/* ---- TLS ---- */

/* A self-signed P-256 certificate for 127.0.0.1 (SAN DNS and IP), written as PEM files into dir. */
static void make_cert(const char *dir, char *cert, char *key, size_t len)
{
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *name;
    X509V3_CTX v3;
    X509_EXTENSION *ext;
    FILE *fp;

    assert_non_null(pk);
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, pk);
    name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"127.0.0.1", -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:127.0.0.1,IP:127.0.0.1");
    assert_non_null(ext);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    assert_true(X509_sign(x, pk, EVP_sha256()) > 0);

    snprintf(cert, len, "%s/cert.pem", dir);
    snprintf(key, len, "%s/key.pem", dir);
    fp = fopen(cert, "w");
    assert_non_null(fp);
    PEM_write_X509(fp, x);
    fclose(fp);
    fp = fopen(key, "w");
    assert_non_null(fp);
    PEM_write_PrivateKey(fp, pk, NULL, NULL, 0, NULL, NULL);
    fclose(fp);
    X509_free(x);
    EVP_PKEY_free(pk);
}

static void whoami_open(wsc *w, void *arg)
{
    on_open(w, arg);
    assert_int_equal(wsc_send(w, "whoami", 6), WSC_OK);
}

/* wss:// works against a server whose certificate comes from opts.ca_file, and the same server is refused when
 * the CA is not trusted (verification is always on); both through the TLS context created on first use. */
static void wss_verifies_the_server(void **state)
{
    fixture *f = *state;
    char dir[] = "/tmp/test_wsc.XXXXXX", cert[128], key[128], url[128];
    int port = 0;

    assert_non_null(mkdtemp(dir));
    make_cert(dir, cert, key, sizeof cert);
    f->child = tls_server_fork(cert, key, &port);
    snprintf(url, sizeof url, "wss://127.0.0.1:%d/echo", port);
    unsetenv("SSL_CERT_FILE");

    /* untrusted: no CA given, the system store does not know this certificate */
    wsc *w = client(f, NULL, NULL);
    assert_int_equal(wsc_connect(w, url, "tok"), WSC_OK);
    run_until_done(f);
    assert_int_equal(f->opens, 0);
    assert_int_equal(f->close_status, 0);
    wsc_free(w);
    f->w = NULL;
    /* Let its context be reaped before the next TLS context exists (see tls_server_fork). */
    for (int i = 0; i < 10; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);

    /* trusted through ca_file; the server saw our bearer */
    wsc_opts opts = { .ca_file = cert };
    wsc_callbacks cb = { whoami_open, echo_message, on_close, NULL };
    f->done = false;
    client(f, &opts, &cb);
    assert_int_equal(wsc_connect(f->w, url, "tls-tok"), WSC_OK);
    run_until_done(f);
    assert_int_equal(f->opens, 1);
    assert_string_equal(f->last_msg, "Bearer tls-tok");
    assert_int_equal(f->close_status, 0);
    assert_string_equal(f->close_reason, "closed (1000)");

    unlink(cert);
    unlink(key);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(open_echo_round_trip_with_authorization, setup, teardown),
        cmocka_unit_test_setup_teardown(no_bearer_sends_no_authorization, setup, teardown),
        cmocka_unit_test_setup_teardown(refused_upgrade_reports_http_status, setup, teardown),
        cmocka_unit_test_setup_teardown(connection_refused_reports_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(silent_server_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(send_when_closed_and_bad_urls, setup, teardown),
        cmocka_unit_test_setup_teardown(queue_bound_and_order, setup, teardown),
        cmocka_unit_test_setup_teardown(queue_byte_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(fragmented_message_reassembled, setup, teardown),
        cmocka_unit_test_setup_teardown(oversized_message_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(reconnect_from_on_close, setup, teardown),
        cmocka_unit_test_setup_teardown(free_while_open, setup, teardown),
        cmocka_unit_test_setup_teardown(free_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(free_while_connecting, setup, teardown),
        cmocka_unit_test_setup_teardown(wss_verifies_the_server, setup, teardown),
        cmocka_unit_test_setup_teardown(client_and_status_server_share_one_context, setup, teardown),
        cmocka_unit_test_setup_teardown(free_on_a_share_drops_the_connection, setup, teardown),
    };
    /* TEST_WSC_LWS_LOG=1 shows lws's own log (info level needs no rebuild of lws: Debian builds it in). */
    lws_set_log_level(getenv("TEST_WSC_LWS_LOG") ? LLL_ERR | LLL_WARN | LLL_NOTICE | LLL_INFO : 0, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
