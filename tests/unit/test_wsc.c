/* test_wsc.c — the WebSocket client against a real libwebsockets server and against scripted raw sockets.
 *
 * The client is our own RFC 6455 implementation on libuv; the main peer is deliberately someone else's: a small lws
 * WebSocket server written for these tests, on the same loop. It records the Authorization header, echoes text
 * messages, and on request sends a fragmented message, an oversized message, a ping (answering with what the pong
 * carried), or closes with a given code; paths /refuse/<status> refuse the upgrade with that status and a
 * plain-text body (LWS_CALLBACK_HTTP_CONFIRM_UPGRADE). wss:// runs against the same server with TLS in a forked
 * child (a certificate generated for 127.0.0.1).
 *
 * What a well-behaved server never sends is scripted on a raw libuv socket: 101 answers with a wrong accept or
 * missing headers, masked or malformed frames, lengths of every size. It computes the accept with OpenSSL (not
 * with our digest module), unmasks and records the client's frames, and answers a close frame with a close frame
 * and the end of the connection.
 *
 * Everything runs over loopback with ephemeral ports; a guard timer fails a scenario that hangs, and each test ends
 * with the loop running to completion and uv_loop_close() succeeding. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "iac/log.h"
#include "iac/strbuf.h"
#include "iac/wsc.h"
#include "testcert.h"

/* ---- the lws test server ---- */

typedef struct srv_msg {
    struct srv_msg *next;
    int             flags; /* lws_write flags */
    size_t          len;
    unsigned char   buf[];
} srv_msg;

typedef struct {
    srv_msg *head, *tail;
    bool     close_after; /* close once the queue is written */
    int      close_code;  /* with this code (0: 1000) */
} srv_session;

typedef struct {
    struct lws_context *ctx;
    int                 port;
    char                last_auth[256];
    int                 upgrades;        /* handshakes accepted */
    int                 refusals;        /* handshakes refused */
    int                 peer_close_code; /* code of the client's close frame */
    int                 closed;          /* WebSocket connections that ended */
    int                 n_received;
    int                 order_errors;    /* "m<i>" messages received out of order */
} test_server;

static void srv_push(srv_session *s, int flags, const void *data, size_t len)
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
        } else if (strncmp(msg, "ping:", 5) == 0) {
            srv_push(s, LWS_WRITE_PING, msg + 5, strlen(msg + 5));
        } else if (strcmp(msg, "close") == 0 || strncmp(msg, "close:", 6) == 0) {
            s->close_after = true;
            s->close_code = msg[5] ? atoi(msg + 6) : 0;
        } else if (strcmp(msg, "whoami") == 0) {
            srv_push(s, LWS_WRITE_TEXT, ts->last_auth, strlen(ts->last_auth));
        } else {
            srv_push(s, LWS_WRITE_TEXT, in, len);
        }
        lws_callback_on_writable(wsi);
        return 0;
    }

    case LWS_CALLBACK_RECEIVE_PONG: {
        char msg[160];
        int n = snprintf(msg, sizeof msg, "pong:%.*s", (int)len, (const char *)in);
        srv_push(s, LWS_WRITE_TEXT, msg, (size_t)n);
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
        lws_close_reason(wsi, s->close_code ? (enum lws_close_status)s->close_code : LWS_CLOSE_STATUS_NORMAL,
                         (unsigned char *)"bye", 3);
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

/* The TLS server in a child process, so that the client's libssl use and the server's do not share a process.
 * Returns the child's pid and its port. */
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

/* ---- the raw scripted server ---- */

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

typedef struct {
    uv_tcp_t listener, peer;
    bool     listening, accepted, peer_open;
    int      port;
    /* the script */
    const char    *response; /* printf format of the answer to the upgrade (its one %s is the right accept), or
                              * NULL: never answer */
    const uint8_t *frames;   /* bytes sent right after the answer */
    size_t         frames_len;
    bool           hang_up;  /* close the connection right after them */
    bool           deaf;     /* ignore the client's close frame (no answer, connection kept) */
    /* what the client sent */
    strbuf   in;
    size_t   head_len;       /* of the request, once complete */
    size_t   parsed;         /* bytes of frames after it already parsed */
    char     host[128], auth[256];
    int      close_code;     /* of the client's close frame: -1 none yet, 0 without a code */
    int      texts;
    size_t   text_len[8];
    uint8_t  text_mask[8][4];
    char     last_text[64];
    int      pongs;
    char     pong[128];
    int      unmasked;       /* client frames without a mask (must stay 0) */
} raw_server;

static void raw_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(size);
    buf->len = buf->base ? size : 0;
}

static void raw_send(raw_server *rs, const void *p, size_t n)
{
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    assert_int_equal(uv_try_write((uv_stream_t *)&rs->peer, &b, 1), (int)n); /* small, over loopback */
}

static void raw_hang_up(raw_server *rs)
{
    if (rs->peer_open) {
        rs->peer_open = false;
        uv_close((uv_handle_t *)&rs->peer, NULL);
    }
}

/* A header's value from the request head (without CR LF), or "". */
static void raw_header(const raw_server *rs, const char *name, char *out, size_t len)
{
    size_t nl = strlen(name);
    out[0] = '\0';
    for (const char *p = strstr(rs->in.data, "\r\n"); p && p < rs->in.data + rs->head_len; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, nl) == 0 && p[2 + nl] == ':') {
            const char *v = p + 3 + nl;
            while (*v == ' ')
                v++;
            snprintf(out, len, "%.*s", (int)strcspn(v, "\r"), v);
            return;
        }
    }
}

static void raw_answer(raw_server *rs)
{
    char key[64], both[128], accept[64], buf[24 * 1024];
    unsigned char sha[EVP_MAX_MD_SIZE];
    unsigned shalen = 0;

    raw_header(rs, "Sec-WebSocket-Key", key, sizeof key);
    raw_header(rs, "Host", rs->host, sizeof rs->host);
    raw_header(rs, "Authorization", rs->auth, sizeof rs->auth);
    snprintf(both, sizeof both, "%s%s", key, WS_GUID);
    assert_int_equal(EVP_Digest(both, strlen(both), sha, &shalen, EVP_sha1(), NULL), 1);
    EVP_EncodeBlock((unsigned char *)accept, sha, (int)shalen);
    int n = snprintf(buf, sizeof buf, rs->response, accept);
    assert_true(n >= 0 && (size_t)n < sizeof buf);
    if (n > 0)
        raw_send(rs, buf, (size_t)n);
    if (rs->frames_len)
        raw_send(rs, rs->frames, rs->frames_len);
    if (rs->hang_up)
        raw_hang_up(rs);
}

/* The client's frames: each must be masked; texts, pongs and the close code are recorded. A close frame is
 * answered with a close frame and the end of the connection. */
static void raw_parse(raw_server *rs)
{
    for (;;) {
        const uint8_t *p = (const uint8_t *)rs->in.data + rs->head_len + rs->parsed;
        size_t have = rs->in.len - rs->head_len - rs->parsed, h = 2;
        if (have < 2)
            return;
        uint64_t len = p[1] & 0x7f;
        if (len == 126)
            h += 2;
        else if (len == 127)
            h += 8;
        bool masked = p[1] & 0x80;
        if (masked)
            h += 4;
        if (have < h)
            return;
        if (len >= 126) {
            size_t n = len == 126 ? 2 : 8;
            len = 0;
            for (size_t i = 0; i < n; i++)
                len = len << 8 | p[2 + i];
        }
        if (have < h + len)
            return;
        if (!masked)
            rs->unmasked++;
        const uint8_t *mask = p + h - 4;
        uint8_t *payload = malloc(len + 1);
        assert_non_null(payload);
        for (uint64_t i = 0; i < len; i++)
            payload[i] = p[h + i] ^ (masked ? mask[i & 3] : 0);
        payload[len] = '\0';
        switch (p[0] & 0x0f) {
        case 0x1:
            if (rs->texts < 8) {
                rs->text_len[rs->texts] = len;
                memcpy(rs->text_mask[rs->texts], mask, 4);
            }
            rs->texts++;
            snprintf(rs->last_text, sizeof rs->last_text, "%s", (char *)payload);
            break;
        case 0xA:
            rs->pongs++;
            snprintf(rs->pong, sizeof rs->pong, "%s", (char *)payload);
            break;
        case 0x8: {
            rs->close_code = len >= 2 ? payload[0] << 8 | payload[1] : 0;
            if (rs->deaf) {
                rs->parsed += h + len;
                free(payload);
                continue;
            }
            uint8_t echo[4] = { 0x88, 0x02, len >= 2 ? payload[0] : 0, len >= 2 ? payload[1] : 0 };
            if (rs->peer_open)
                raw_send(rs, echo, len >= 2 ? 4 : 2);
            raw_hang_up(rs);
            free(payload);
            return;
        }
        default:
            break;
        }
        free(payload);
        rs->parsed += h + len;
    }
}

static void raw_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    raw_server *rs = s->data;
    if (nread > 0 && rs->peer_open) {
        strbuf_append(&rs->in, buf->base, (size_t)nread);
        if (!rs->head_len) {
            char *end = strstr(rs->in.data, "\r\n\r\n");
            if (end) {
                rs->head_len = (size_t)(end + 4 - rs->in.data);
                if (rs->response)
                    raw_answer(rs);
            }
        }
        if (rs->head_len && rs->peer_open)
            raw_parse(rs);
    } else if (nread < 0) {
        raw_hang_up(rs);
    }
    free(buf->base);
}

static void raw_accept(uv_stream_t *server, int status)
{
    raw_server *rs = server->data;
    if (status < 0 || rs->accepted)
        return;
    assert_int_equal(uv_tcp_init(server->loop, &rs->peer), 0);
    rs->peer.data = rs;
    assert_int_equal(uv_accept(server, (uv_stream_t *)&rs->peer), 0);
    rs->accepted = rs->peer_open = true;
    assert_int_equal(uv_read_start((uv_stream_t *)&rs->peer, raw_alloc, raw_read), 0);
}

/* Listens on addr ("127.0.0.1" or "::1"); false when the address is not available here. */
static bool raw_start(raw_server *rs, uv_loop_t *loop, const char *addr)
{
    struct sockaddr_storage ss;
    int sl = sizeof ss;

    rs->close_code = -1;
    if (strchr(addr, ':'))
        uv_ip6_addr(addr, 0, (struct sockaddr_in6 *)&ss);
    else
        uv_ip4_addr(addr, 0, (struct sockaddr_in *)&ss);
    assert_int_equal(uv_tcp_init(loop, &rs->listener), 0);
    rs->listener.data = rs;
    rs->listening = true;
    if (uv_tcp_bind(&rs->listener, (struct sockaddr *)&ss, 0) != 0 ||
        uv_listen((uv_stream_t *)&rs->listener, 4, raw_accept) != 0)
        return false;
    assert_int_equal(uv_tcp_getsockname(&rs->listener, (struct sockaddr *)&ss, &sl), 0);
    rs->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                              : ((struct sockaddr_in *)&ss)->sin_port);
    return true;
}

static void raw_stop(raw_server *rs)
{
    raw_hang_up(rs);
    if (rs->listening)
        uv_close((uv_handle_t *)&rs->listener, NULL);
    rs->listening = false;
    strbuf_free(&rs->in);
}

static const char ok_101[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             "Sec-WebSocket-Accept: %s\r\n\r\n";

/* ---- harness ---- */

typedef struct {
    uv_loop_t    loop;
    test_server  srv;
    raw_server   raw;
    wsc         *w;
    char         url[128];
    /* what happened */
    int          opens, closes, messages, drains;
    int          close_status;
    char         close_reason[256];
    char         last_msg[256];
    size_t       last_len, msg_len[8];
    size_t       queued_at_drain;
    bool         done;
    /* scenario knobs */
    int          to_send, sent, saw_full, reconnects_left, echoed_in_order;
    const char  *first_send; /* sent from on_open */
    uv_timer_t   guard;
    pid_t        child; /* a forked server, killed in teardown */
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
    assert_int_equal(srv_start_tls(&f->srv, &f->loop, NULL, NULL), 0);
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
    raw_stop(&f->raw);
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
    if (f->first_send)
        assert_int_equal(wsc_send(w, f->first_send, strlen(f->first_send)), WSC_OK);
}

static void on_message(wsc *w, const char *data, size_t len, void *arg)
{
    fixture *f = arg;
    (void)w;
    if (f->messages < 8)
        f->msg_len[f->messages] = len;
    f->messages++;
    f->last_len = len;
    assert_int_equal(data[len], '\0');
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

/* Closes after the first message. */
static void close_message(wsc *w, const char *data, size_t len, void *arg)
{
    on_message(w, data, len, arg);
    wsc_close(w);
}

static void port_url(char *url, size_t len, const char *host, int port)
{
    snprintf(url, len, "ws://%s:%d/x", host, port);
}

/* ---- handshake ---- */

/* A message sent after open comes back from an echo server, the server saw the Bearer header, and a clean close
 * from our side ends with on_close(0, "closed (1000)") after the server got our 1000. */
static void open_echo_round_trip_with_authorization(void **state)
{
    fixture *f = *state;
    wsc_callbacks cb = { on_open, close_message, on_close, NULL };
    wsc *w = client(f, NULL, &cb);

    f->first_send = "hello";
    assert_int_equal(wsc_connect(w, f->url, "tok-123"), WSC_OK);
    assert_int_equal(wsc_connect(w, f->url, "tok-123"), WSC_E_BUSY);
    run_until_done(f);
    assert_int_equal(f->opens, 1);
    assert_int_equal(f->messages, 1);
    assert_string_equal(f->last_msg, "hello");
    assert_string_equal(f->srv.last_auth, "Bearer tok-123");
    assert_int_equal(f->closes, 1);
    assert_int_equal(f->close_status, 0);
    assert_string_equal(f->close_reason, "closed (1000)");
    assert_int_equal(f->srv.peer_close_code, 1000);
}

/* No bearer → no Authorization header at all. */
static void no_bearer_sends_no_authorization(void **state)
{
    fixture *f = *state;
    wsc_callbacks cb = { on_open, close_message, on_close, NULL };
    wsc *w = client(f, NULL, &cb);

    f->first_send = "hello";
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
        char url[160], want[32];
        snprintf(url, sizeof url, "ws://127.0.0.1:%d/refuse/%d?agent_id=a", f->srv.port, statuses[i]);
        f->done = false;
        assert_int_equal(wsc_connect(w, url, "tok"), WSC_OK);
        run_until_done(f);
        assert_int_equal(f->close_status, statuses[i]);
        snprintf(want, sizeof want, "handshake: %d", statuses[i]);
        assert_string_equal(f->close_reason, want);
    }
    assert_int_equal(f->opens, 0);
    assert_int_equal(f->srv.refusals, 3);
}

/* A 101 is not enough: each answer below breaks RFC 6455 §4.1 (or is not HTTP at all) and fails the handshake with
 * http_status 0 and a reason that says what was wrong; on_open is never called. */
static void bad_101_answers_are_refused(void **state)
{
    fixture *f = *state;
    static char big[24 * 1024];
    static const struct {
        const char *response, *reason;
        bool        hang_up;
    } cases[] = {
        { "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Accept: dGhlIHNhbXBsZSBub25jZQ==%.0s\r\n\r\n",
          "handshake: wrong Sec-WebSocket-Accept", false },
        { "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n%.0s",
          "handshake: wrong Sec-WebSocket-Accept", false },
        { "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
          "handshake: no \"Upgrade: websocket\" in the 101", false },
        { "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
          "handshake: no \"Upgrade: websocket\" in the 101", false },
        { "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n"
          "Sec-WebSocket-Accept: %s\r\n\r\n",
          "handshake: no \"Connection: Upgrade\" in the 101", false },
        { "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Accept: %s\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
          "handshake: the server chose an extension that was not offered", false },
        { "SSH-2.0-OpenSSH_9.2\r\n\r\n%.0s", "handshake: the answer is not an HTTP/1.x response", false },
        { "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n%.0s",
          "handshake: the server closed the connection", true },
        { big, "handshake: the response head is larger than 16 KiB", false },
    };
    snprintf(big, sizeof big, "HTTP/1.1 101 Switching Protocols\r\nX-Pad: %0*d\r\n\r\n%%.0s", 20000, 0);

    wsc *w = client(f, NULL, NULL);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char url[64];
        memset(&f->raw, 0, sizeof f->raw);
        assert_true(raw_start(&f->raw, &f->loop, "127.0.0.1"));
        f->raw.response = cases[i].response;
        f->raw.hang_up = cases[i].hang_up;
        port_url(url, sizeof url, "127.0.0.1", f->raw.port);
        f->done = false;
        assert_int_equal(wsc_connect(w, url, NULL), WSC_OK);
        run_until_done(f);
        assert_int_equal(f->close_status, 0);
        assert_string_equal(f->close_reason, cases[i].reason);
        raw_stop(&f->raw);
        uv_run(&f->loop, UV_RUN_NOWAIT);
    }
    assert_int_equal(f->opens, 0);
}

/* The request is what RFC 6455 §4.1 asks for, to an IPv6 literal too: the Host header carries the brackets and
 * the port, and the handshake completes. Skipped where the host has no ::1. */
static void ipv6_literal_in_brackets(void **state)
{
    fixture *f = *state;
    char url[64], want[64];
    wsc_callbacks cb = { on_open, close_message, on_close, NULL };

    if (!raw_start(&f->raw, &f->loop, "::1"))
        skip();
    f->raw.response = ok_101;
    static const uint8_t hi[] = { 0x81, 0x02, 'h', 'i' };
    f->raw.frames = hi;
    f->raw.frames_len = sizeof hi;
    snprintf(url, sizeof url, "ws://[::1]:%d/api?x=1", f->raw.port);
    wsc *w = client(f, NULL, &cb);
    assert_int_equal(wsc_connect(w, url, NULL), WSC_OK);
    run_until_done(f);
    assert_int_equal(f->opens, 1);
    assert_string_equal(f->last_msg, "hi");
    snprintf(want, sizeof want, "[::1]:%d", f->raw.port);
    assert_string_equal(f->raw.host, want);
    assert_memory_equal(f->raw.in.data, "GET /api?x=1 HTTP/1.1\r\n", 23);
    assert_string_equal(f->close_reason, "closed (1000)");
    assert_int_equal(f->raw.close_code, 1000);
}

/* ---- connecting ---- */

/* A closed port is reported with http_status 0 and a reason naming host, port and cause. */
static void connection_refused_reports_zero(void **state)
{
    fixture *f = *state;
    uv_tcp_t tcp;
    struct sockaddr_storage ss;
    struct sockaddr_in sin;
    int sl = sizeof ss, port;
    char url[64], want[128];

    uv_ip4_addr("127.0.0.1", 0, &sin);
    assert_int_equal(uv_tcp_init(&f->loop, &tcp), 0);
    assert_int_equal(uv_tcp_bind(&tcp, (struct sockaddr *)&sin, 0), 0);
    assert_int_equal(uv_tcp_getsockname(&tcp, (struct sockaddr *)&ss, &sl), 0);
    port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    port_url(url, sizeof url, "127.0.0.1", port);
    uv_close((uv_handle_t *)&tcp, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);

    wsc *w = client(f, NULL, NULL);
    assert_int_equal(wsc_connect(w, url, "tok"), WSC_OK);
    run_until_done(f);
    assert_int_equal(f->opens, 0);
    assert_int_equal(f->closes, 1);
    assert_int_equal(f->close_status, 0);
    snprintf(want, sizeof want, "cannot connect to 127.0.0.1 port %d: connection refused", port);
    assert_string_equal(f->close_reason, want);
}

/* A listener that accepts TCP but never answers the upgrade trips the connect timeout, and the socket is dropped
 * right away (the server reads end-of-file). */
static void silent_server_times_out(void **state)
{
    fixture *f = *state;
    char url[64];
    wsc_opts opts = { .connect_timeout_ms = 200 };

    assert_true(raw_start(&f->raw, &f->loop, "127.0.0.1"));
    port_url(url, sizeof url, "127.0.0.1", f->raw.port);

    wsc *w = client(f, &opts, NULL);
    uv_update_time(&f->loop);
    uint64_t t0 = uv_now(&f->loop);
    assert_int_equal(wsc_connect(w, url, "tok"), WSC_OK);
    run_until_done(f);
    uv_update_time(&f->loop);
    assert_true(uv_now(&f->loop) - t0 >= 190);
    assert_int_equal(f->opens, 0);
    assert_int_equal(f->close_status, 0);
    assert_string_equal(f->close_reason, "connect timeout");
    uint64_t t1 = uv_now(&f->loop);
    for (int i = 0; i < 100 && f->raw.peer_open; i++)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_update_time(&f->loop);
    assert_true(f->raw.accepted);
    assert_false(f->raw.peer_open); /* it read end-of-file */
    assert_true(uv_now(&f->loop) - t1 < 1000);
}

/* wsc_close() while connecting drops the attempt and reports it before returning; nothing follows. */
static void close_while_connecting(void **state)
{
    fixture *f = *state;
    char url[64];

    assert_true(raw_start(&f->raw, &f->loop, "127.0.0.1"));
    port_url(url, sizeof url, "127.0.0.1", f->raw.port);
    wsc *w = client(f, NULL, NULL);
    assert_int_equal(wsc_connect(w, url, NULL), WSC_OK);
    for (int i = 0; i < 5; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    wsc_close(w);
    assert_int_equal(f->closes, 1);
    assert_string_equal(f->close_reason, "closed before open");
    for (int i = 0; i < 10; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->closes, 1);
    assert_int_equal(f->opens, 0);
}

/* Sending while not open is refused, and URLs outside ws[s]://host[:port][/path][?query] are rejected, as is a
 * bearer that would break the header. */
static void send_when_closed_and_bad_urls(void **state)
{
    fixture *f = *state;
    static const char *bad[] = {
        "http://127.0.0.1/x", "ws://", "ws:///x", "ws://h:0/x", "ws://h:70000/", "ws://h:x/", "ws://h/a b",
        "ws://u@h/", "ws://h/#frag", "", "ws://[::1/x", "ws://[nothex]/", "ws://h/\r\nX: y", "ws://h:/",
    };
    wsc *w = client(f, NULL, NULL);

    assert_int_equal(wsc_send(w, "x", 1), WSC_E_CLOSED);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(wsc_connect(w, bad[i], NULL), WSC_E_URL);
    assert_int_equal(wsc_connect(w, NULL, NULL), WSC_E_URL);
    assert_int_equal(wsc_connect(w, f->url, "tok\r\nX-Evil: 1"), WSC_E_URL);
    assert_false(wsc_is_open(w));
    wsc_close(w); /* no-op */
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->closes, 0);
}

/* ---- the queue ---- */

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
    fixture *f = arg;
    f->drains++;
    assert_int_equal(wsc_queued(w), 0);
    pump(w, f);
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

/* With max_queue 8 the ninth send is refused with WSC_E_FULL; on_drained comes when everything queued has been
 * written (wsc_queued() is 0 then), and refilling from it, 300 messages reach the server and come back in the
 * order they were sent. */
static void queue_bound_drained_and_order(void **state)
{
    fixture *f = *state;
    wsc_opts opts = { .max_queue = 8 };
    wsc_callbacks cb = { order_open, order_message, on_close, order_drained };
    wsc *w = client(f, &opts, &cb);

    f->to_send = 300;
    assert_int_equal(wsc_connect(w, f->url, NULL), WSC_OK);
    run_until_done(f);
    assert_true(f->saw_full > 0);
    assert_true(f->drains > 0);
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

/* max_queue_bytes bounds the total size of queued messages; a closing connection accepts nothing more, and the
 * queue is written before the close frame. */
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
    assert_string_equal(f->close_reason, "closed (1000)");
}

static void masks_open(wsc *w, void *arg)
{
    static char big[70000];
    on_open(w, arg);
    memset(big, 'z', sizeof big);
    assert_int_equal(wsc_send(w, "same", 4), WSC_OK);
    assert_int_equal(wsc_send(w, "same", 4), WSC_OK);
    assert_int_equal(wsc_send(w, big, 300), WSC_OK);
    assert_int_equal(wsc_send(w, big, sizeof big), WSC_OK);
    wsc_close(w);
}

/* Every frame the client sends is masked, each with a fresh key (two equal messages look different on the wire),
 * and lengths of each encoding (7-bit, 16-bit, 64-bit) arrive intact. */
static void outgoing_frames_masked_with_fresh_keys(void **state)
{
    fixture *f = *state;
    char url[64];
    wsc_callbacks cb = { masks_open, on_message, on_close, NULL };

    assert_true(raw_start(&f->raw, &f->loop, "127.0.0.1"));
    f->raw.response = ok_101;
    port_url(url, sizeof url, "127.0.0.1", f->raw.port);
    wsc *w = client(f, NULL, &cb);
    assert_int_equal(wsc_connect(w, url, NULL), WSC_OK);
    run_until_done(f);
    assert_int_equal(f->raw.unmasked, 0);
    assert_int_equal(f->raw.texts, 4);
    assert_int_equal(f->raw.text_len[0], 4);
    assert_int_equal(f->raw.text_len[2], 300);
    assert_int_equal(f->raw.text_len[3], 70000);
    assert_memory_not_equal(f->raw.text_mask[0], f->raw.text_mask[1], 4);
    assert_int_equal(f->raw.close_code, 1000);
    assert_string_equal(f->close_reason, "closed (1000)");
}

/* ---- frames in ---- */

/* A message the lws server sends in three frames arrives as one message. */
static void fragmented_message_reassembled(void **state)
{
    fixture *f = *state;
    wsc_callbacks cb = { on_open, close_message, on_close, NULL };
    wsc *w = client(f, NULL, &cb);

    f->first_send = "frag";
    assert_int_equal(wsc_connect(w, f->url, NULL), WSC_OK);
    run_until_done(f);
    assert_int_equal(f->messages, 1);
    assert_string_equal(f->last_msg, "one|two|three");
}

static void count_message(wsc *w, const char *data, size_t len, void *arg)
{
    fixture *f = arg;
    on_message(w, data, len, arg);
    if (f->messages == f->to_send)
        wsc_close(w);
}

/* A ping between the fragments of a message is answered at once with its payload and does not disturb the
 * message; frame lengths of each encoding (7-bit, 16-bit, 64-bit) and an empty message arrive intact. */
static void fragments_with_ping_and_all_lengths(void **state)
{
    fixture *f = *state;
    char url[64];
    wsc_callbacks cb = { on_open, count_message, on_close, NULL };
    static uint8_t frames[16 + 300 + 70000 + 64];
    size_t n = 0;

    static const uint8_t head[] = {
        0x01, 0x02, 'a', 'b',      /* text, not final */
        0x89, 0x01, 'p',           /* ping in between */
        0x00, 0x02, 'c', 'd',      /* continuation */
        0x80, 0x02, 'e', 'f',      /* final continuation */
        0x8A, 0x01, 'q',           /* an unsolicited pong: ignored */
        0x81, 0x00,                /* an empty message */
        0x81, 0x7E, 0x01, 0x2C,    /* 300 bytes */
    };
    memcpy(frames, head, sizeof head);
    n = sizeof head;
    memset(frames + n, 'y', 300);
    n += 300;
    static const uint8_t len64[] = { 0x81, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x11, 0x70 }; /* 70000 bytes */
    memcpy(frames + n, len64, sizeof len64);
    n += sizeof len64;
    memset(frames + n, 'z', 70000);
    n += 70000;

    assert_true(raw_start(&f->raw, &f->loop, "127.0.0.1"));
    f->raw.response = ok_101;
    f->raw.frames = frames;
    f->raw.frames_len = n;
    port_url(url, sizeof url, "127.0.0.1", f->raw.port);
    f->to_send = 4; /* messages expected */
    wsc *w = client(f, NULL, &cb);
    assert_int_equal(wsc_connect(w, url, NULL), WSC_OK);
    run_until_done(f);
    assert_int_equal(f->messages, 4);
    assert_int_equal(f->msg_len[0], 6);
    assert_int_equal(f->msg_len[1], 0);
    assert_int_equal(f->msg_len[2], 300);
    assert_int_equal(f->msg_len[3], 70000);
    assert_int_equal(f->raw.pongs, 1);
    assert_string_equal(f->raw.pong, "p");
    assert_string_equal(f->close_reason, "closed (1000)");
}

/* The lws server's ping is answered with a pong carrying the same payload (the server says what it got). */
static void ping_answered_with_pong(void **state)
{
    fixture *f = *state;
    wsc_callbacks cb = { on_open, close_message, on_close, NULL };
    wsc *w = client(f, NULL, &cb);

    f->first_send = "ping:are-you-there";
    assert_int_equal(wsc_connect(w, f->url, NULL), WSC_OK);
    run_until_done(f);
    assert_int_equal(f->messages, 1);
    assert_string_equal(f->last_msg, "pong:are-you-there");
}

/* An incoming message over max_frame closes the connection with 1009 and is never delivered. */
static void oversized_message_closes_1009(void **state)
{
    fixture *f = *state;
    wsc_opts opts = { .max_frame = 1000 };
    wsc *w = client(f, &opts, NULL);

    f->first_send = "big:5000";
    assert_int_equal(wsc_connect(w, f->url, NULL), WSC_OK);
    run_until_done(f);
    assert_int_equal(f->messages, 0);
    assert_int_equal(f->closes, 1);
    assert_int_equal(f->close_status, 0);
    assert_string_equal(f->close_reason, "message too large (1009)");
    assert_int_equal(f->srv.peer_close_code, 1009);
}

/* Frames a server must never send fail the connection: our close frame carries the code, on_close says why, and
 * nothing is delivered. */
static void forbidden_frames_fail_the_connection(void **state)
{
    fixture *f = *state;
    static const uint8_t ctl126[4 + 126] = { 0x89, 0x7E, 0x00, 0x7E };
    const struct {
        const uint8_t *frames;
        size_t         len;
        int            code;
        const char    *reason;
    } cases[] = {
        { (const uint8_t[]){ 0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2 }, 8, 1002,
          "protocol error: masked frame from the server (1002)" },
        { (const uint8_t[]){ 0xC1, 0x02, 'h', 'i' }, 4, 1002, "protocol error: reserved bits set (1002)" },
        { (const uint8_t[]){ 0x83, 0x00 }, 2, 1002, "protocol error: unknown opcode (1002)" },
        { (const uint8_t[]){ 0x09, 0x00 }, 2, 1002, "protocol error: fragmented control frame (1002)" },
        { ctl126, sizeof ctl126, 1002, "protocol error: control frame longer than 125 bytes (1002)" },
        { (const uint8_t[]){ 0x80, 0x01, 'x' }, 3, 1002,
          "protocol error: continuation frame without a message (1002)" },
        { (const uint8_t[]){ 0x01, 0x01, 'a', 0x81, 0x01, 'b' }, 6, 1002,
          "protocol error: new message inside a fragmented one (1002)" },
        { (const uint8_t[]){ 0x88, 0x01, 0x03 }, 3, 1002, "protocol error: close frame with a 1-byte payload (1002)" },
        { (const uint8_t[]){ 0x82, 0x01, 'x' }, 3, 1003, "binary frame (1003)" },
    };
    wsc *w = client(f, NULL, NULL);

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char url[64];
        memset(&f->raw, 0, sizeof f->raw);
        assert_true(raw_start(&f->raw, &f->loop, "127.0.0.1"));
        f->raw.response = ok_101;
        f->raw.frames = cases[i].frames;
        f->raw.frames_len = cases[i].len;
        port_url(url, sizeof url, "127.0.0.1", f->raw.port);
        f->done = false;
        assert_int_equal(wsc_connect(w, url, NULL), WSC_OK);
        run_until_done(f);
        assert_int_equal(f->close_status, 0);
        assert_string_equal(f->close_reason, cases[i].reason);
        assert_int_equal(f->raw.close_code, cases[i].code);
        raw_stop(&f->raw);
        uv_run(&f->loop, UV_RUN_NOWAIT);
    }
    assert_int_equal(f->opens, (int)(sizeof cases / sizeof cases[0]));
    assert_int_equal(f->messages, 0);
}

/* Garbage never crashes, hangs or leaks: random bytes as the answer to the upgrade, or as frames after a good
 * 101, each followed by the end of the connection, always end in exactly one on_close. */
static void garbage_always_ends_in_on_close(void **state)
{
    fixture *f = *state;
    uint32_t seed = 12345;
    uint8_t junk[64];
    wsc *w = client(f, NULL, NULL);

    for (int i = 0; i < 100; i++) {
        char url[64];
        size_t n = 1 + (seed = seed * 1103515245 + 12345) % sizeof junk;
        for (size_t k = 0; k < n; k++)
            junk[k] = (uint8_t)((seed = seed * 1103515245 + 12345) >> 16);
        if (i % 4 == 0)
            junk[0] = 0x81; /* often a text frame header, so that lengths and payloads get parsed too */
        memset(&f->raw, 0, sizeof f->raw);
        assert_true(raw_start(&f->raw, &f->loop, "127.0.0.1"));
        f->raw.response = i % 2 ? "%.0s" : ok_101;
        f->raw.frames = junk;
        f->raw.frames_len = n;
        f->raw.hang_up = true;
        port_url(url, sizeof url, "127.0.0.1", f->raw.port);
        f->done = false;
        assert_int_equal(wsc_connect(w, url, NULL), WSC_OK);
        run_until_done(f);
        assert_int_equal(f->closes, i + 1);
        raw_stop(&f->raw);
        uv_run(&f->loop, UV_RUN_NOWAIT);
    }
}

/* ---- closing ---- */

/* The server closes with its own code: on_close says "closed by peer (4001)". */
static void server_close_code_reported(void **state)
{
    fixture *f = *state;
    wsc *w = client(f, NULL, NULL);

    f->first_send = "close:4001";
    assert_int_equal(wsc_connect(w, f->url, NULL), WSC_OK);
    run_until_done(f);
    assert_int_equal(f->close_status, 0);
    assert_string_equal(f->close_reason, "closed by peer (4001)");
}

/* A close frame from the server is answered with one carrying the same code (none for none, reported as 1005,
 * "no status"), and the connection ends with "closed by peer (N)"; a code a peer may not send (1006, below 1000,
 * 5000 and up; RFC 6455 §7.4) is a protocol error, answered with 1002. */
static void server_close_is_echoed(void **state)
{
    fixture *f = *state;
    static const struct {
        uint8_t     frame[4];
        size_t      len;
        int         echoed; /* 0: a close frame without a code */
        const char *reason;
    } cases[] = {
        { { 0x88, 0x02, 0x0F, 0xA1 }, 4, 4001, "closed by peer (4001)" },
        { { 0x88, 0x00 }, 2, 0, "closed by peer (1005)" },
        { { 0x88, 0x02, 0x03, 0xEE }, 4, 1002, "protocol error: a close code the peer may not send (1002)" },
        { { 0x88, 0x02, 0x03, 0xE7 }, 4, 1002, "protocol error: a close code the peer may not send (1002)" },
        { { 0x88, 0x02, 0x13, 0x88 }, 4, 1002, "protocol error: a close code the peer may not send (1002)" },
    };
    wsc *w = client(f, NULL, NULL);

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char url[64];
        memset(&f->raw, 0, sizeof f->raw);
        assert_true(raw_start(&f->raw, &f->loop, "127.0.0.1"));
        f->raw.response = ok_101;
        f->raw.frames = cases[i].frame;
        f->raw.frames_len = cases[i].len;
        port_url(url, sizeof url, "127.0.0.1", f->raw.port);
        f->done = false;
        assert_int_equal(wsc_connect(w, url, NULL), WSC_OK);
        run_until_done(f);
        assert_string_equal(f->close_reason, cases[i].reason);
        for (int turns = 0; turns < 100 && f->raw.peer_open; turns++)
            uv_run(&f->loop, UV_RUN_ONCE); /* until the server has read all we sent, and the end */
        assert_int_equal(f->raw.close_code, cases[i].echoed);
        raw_stop(&f->raw);
        uv_run(&f->loop, UV_RUN_NOWAIT);
    }
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
    wsc_callbacks cb = { on_open, on_message, reconnect_close, NULL };
    wsc *w = client(f, NULL, &cb);

    f->first_send = "close";
    f->reconnects_left = 2;
    assert_int_equal(wsc_connect(w, f->url, "first"), WSC_OK);
    run_until_done(f);
    assert_int_equal(f->opens, 3);
    assert_int_equal(f->closes, 3);
    assert_int_equal(f->srv.upgrades, 3);
    assert_string_equal(f->srv.last_auth, "Bearer again");
    assert_string_equal(f->close_reason, "closed by peer (1000)");
}

static void close_at_open(wsc *w, void *arg)
{
    on_open(w, arg);
    wsc_close(w);
}

/* A peer that never answers our close frame does not keep the connection: after the short wait (2 s) the socket is
 * closed and on_close reports the close we asked for. */
static void unanswered_close_ends_after_the_wait(void **state)
{
    fixture *f = *state;
    char url[64];
    wsc_callbacks cb = { close_at_open, on_message, on_close, NULL };

    assert_true(raw_start(&f->raw, &f->loop, "127.0.0.1"));
    f->raw.response = ok_101;
    f->raw.deaf = true;
    port_url(url, sizeof url, "127.0.0.1", f->raw.port);
    wsc *w = client(f, NULL, &cb);
    assert_int_equal(wsc_connect(w, url, NULL), WSC_OK);
    uv_update_time(&f->loop);
    uint64_t t0 = uv_now(&f->loop);
    run_until_done(f);
    uv_update_time(&f->loop);
    assert_true(uv_now(&f->loop) - t0 >= 1900);
    assert_string_equal(f->close_reason, "closed (1000)");
    assert_int_equal(f->raw.close_code, 1000);
    for (int i = 0; i < 100 && f->raw.peer_open; i++)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_false(f->raw.peer_open); /* the server read the end of the connection */
}

/* ---- freeing ---- */

static void stop_open(wsc *w, void *arg)
{
    fixture *f = arg;
    on_open(w, arg);
    f->done = true;
}

static void closed_count_reached(uv_timer_t *t)
{
    fixture *f = t->data;
    if (f->srv.closed > 0)
        f->done = true;
}

/* wsc_free with an open connection (and a message queued): no callback after it, the server sees the connection
 * go, and the loop runs to completion (checked in teardown). */
static void free_while_open(void **state)
{
    fixture *f = *state;
    wsc_callbacks cb = { stop_open, on_message, on_close, NULL };
    wsc *w = client(f, NULL, &cb);
    uv_timer_t poll;

    assert_int_equal(wsc_connect(w, f->url, NULL), WSC_OK);
    run_until_done(f);
    assert_int_equal(f->opens, 1);
    assert_int_equal(wsc_send(w, "pending", 7), WSC_OK);
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
    wsc_callbacks cb = { on_open, free_message, on_close, NULL };
    wsc *w = client(f, NULL, &cb);

    f->first_send = "hello";
    assert_int_equal(wsc_connect(w, f->url, NULL), WSC_OK);
    run_until_done(f);
    for (int i = 0; i < 20; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->messages, 1);
    assert_int_equal(f->closes, 0);
}

static void free_open(wsc *w, void *arg)
{
    fixture *f = arg;
    on_open(w, arg);
    assert_int_equal(wsc_send(w, "x", 1), WSC_OK);
    wsc_free(w);
    f->w = NULL;
    f->done = true;
}

/* wsc_free from inside on_open, with the 101 and a frame in the same read, is safe too. */
static void free_from_on_open(void **state)
{
    fixture *f = *state;
    char url[64];
    static const uint8_t hi[] = { 0x81, 0x02, 'h', 'i' };
    wsc_callbacks cb = { free_open, on_message, on_close, NULL };

    assert_true(raw_start(&f->raw, &f->loop, "127.0.0.1"));
    f->raw.response = ok_101;
    f->raw.frames = hi;
    f->raw.frames_len = sizeof hi;
    port_url(url, sizeof url, "127.0.0.1", f->raw.port);
    wsc *w = client(f, NULL, &cb);
    assert_int_equal(wsc_connect(w, url, NULL), WSC_OK);
    run_until_done(f);
    for (int i = 0; i < 20; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->opens, 1);
    assert_int_equal(f->messages, 0);
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

/* ---- secrets ---- */

/* The bearer reaches the server and nothing else: with debug logging on, no log line and no reason carries it,
 * whether the upgrade succeeds or is refused. */
static void bearer_sent_and_never_logged(void **state)
{
    fixture *f = *state;
    static const char bearer[] = "wsc-bearer-5e1f0c9a";
    char path[] = "/tmp/test_wsc_log.XXXXXX", url[160], logged[16384];
    wsc_callbacks cb = { on_open, close_message, on_close, NULL };
    int fd = mkstemp(path), saved = dup(2);

    assert_true(fd >= 0 && saved >= 0);
    log_setup(LOG_DEBUG, LOG_FORMAT_TEXT);
    assert_true(dup2(fd, 2) == 2);

    f->first_send = "whoami";
    wsc *w = client(f, NULL, &cb);
    assert_int_equal(wsc_connect(w, f->url, bearer), WSC_OK);
    run_until_done(f);
    char seen[256];
    snprintf(seen, sizeof seen, "%s", f->last_msg);
    assert_null(strstr(f->close_reason, bearer));
    f->done = false;
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/refuse/401", f->srv.port);
    assert_int_equal(wsc_connect(w, url, bearer), WSC_OK);
    run_until_done(f);
    assert_null(strstr(f->close_reason, bearer));

    dup2(saved, 2);
    close(saved);
    log_setup(LOG_INFO, LOG_FORMAT_TEXT);
    ssize_t n = pread(fd, logged, sizeof logged - 1, 0);
    close(fd);
    unlink(path);
    assert_true(n > 0); /* debug logging did say something */
    logged[n] = '\0';
    assert_non_null(strstr(logged, "wsc"));
    assert_null(strstr(logged, bearer));
    assert_string_equal(seen, "Bearer wsc-bearer-5e1f0c9a");
    assert_int_equal(f->close_status, 401);
}

/* ---- TLS ---- */

/* A self-signed P-256 certificate for 127.0.0.1 (SAN DNS and IP), written as PEM files into dir. */
static void make_cert(const char *dir, char *cert, char *key, size_t len)
{
    snprintf(cert, len, "%s/cert.pem", dir);
    snprintf(key, len, "%s/key.pem", dir);
    assert_int_equal(testcert_write(cert, key, "127.0.0.1", "DNS:127.0.0.1,IP:127.0.0.1"), 0);
}

/* wss:// works against a server whose certificate comes from opts.ca_file (or $SSL_CERT_FILE), with the same
 * echo, Bearer and clean close as ws://; the same server is refused when its CA is not trusted (verification is
 * always on) and the reason says why. */
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
    assert_non_null(strstr(f->close_reason, "TLS handshake failed: certificate verify failed"));
    wsc_free(w);
    f->w = NULL;

    /* trusted through ca_file; the server saw our bearer */
    wsc_opts opts = { .ca_file = cert };
    wsc_callbacks cb = { on_open, close_message, on_close, NULL };
    f->first_send = "whoami";
    f->done = false;
    client(f, &opts, &cb);
    assert_int_equal(wsc_connect(f->w, url, "tls-tok"), WSC_OK);
    run_until_done(f);
    assert_int_equal(f->opens, 1);
    assert_string_equal(f->last_msg, "Bearer tls-tok");
    assert_int_equal(f->close_status, 0);
    assert_string_equal(f->close_reason, "closed (1000)");
    wsc_free(f->w);

    /* trusted through $SSL_CERT_FILE */
    setenv("SSL_CERT_FILE", cert, 1);
    f->first_send = "frag";
    f->done = false;
    client(f, NULL, &cb);
    assert_int_equal(wsc_connect(f->w, url, NULL), WSC_OK);
    run_until_done(f);
    unsetenv("SSL_CERT_FILE");
    assert_int_equal(f->opens, 2);
    assert_string_equal(f->last_msg, "one|two|three");
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
        cmocka_unit_test_setup_teardown(bad_101_answers_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(ipv6_literal_in_brackets, setup, teardown),
        cmocka_unit_test_setup_teardown(connection_refused_reports_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(silent_server_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(close_while_connecting, setup, teardown),
        cmocka_unit_test_setup_teardown(send_when_closed_and_bad_urls, setup, teardown),
        cmocka_unit_test_setup_teardown(queue_bound_drained_and_order, setup, teardown),
        cmocka_unit_test_setup_teardown(queue_byte_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(outgoing_frames_masked_with_fresh_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(fragmented_message_reassembled, setup, teardown),
        cmocka_unit_test_setup_teardown(fragments_with_ping_and_all_lengths, setup, teardown),
        cmocka_unit_test_setup_teardown(ping_answered_with_pong, setup, teardown),
        cmocka_unit_test_setup_teardown(oversized_message_closes_1009, setup, teardown),
        cmocka_unit_test_setup_teardown(forbidden_frames_fail_the_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(garbage_always_ends_in_on_close, setup, teardown),
        cmocka_unit_test_setup_teardown(server_close_code_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(server_close_is_echoed, setup, teardown),
        cmocka_unit_test_setup_teardown(reconnect_from_on_close, setup, teardown),
        cmocka_unit_test_setup_teardown(unanswered_close_ends_after_the_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(free_while_open, setup, teardown),
        cmocka_unit_test_setup_teardown(free_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(free_from_on_open, setup, teardown),
        cmocka_unit_test_setup_teardown(free_while_connecting, setup, teardown),
        cmocka_unit_test_setup_teardown(bearer_sent_and_never_logged, setup, teardown),
        cmocka_unit_test_setup_teardown(wss_verifies_the_server, setup, teardown),
    };
    /* TEST_WSC_LWS_LOG=1 shows the lws server's own log. */
    lws_set_log_level(getenv("TEST_WSC_LWS_LOG") ? LLL_ERR | LLL_WARN | LLL_NOTICE | LLL_INFO : 0, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
