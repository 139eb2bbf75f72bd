/* wsc.c — a WebSocket client on libwebsockets, running on the caller's libuv loop.
 *
 * Each wsc has at most one client wsi, on a client vhost of its own (no listener) in a context without TLS: a
 * shared context the caller passes in opts.share (common/lwsloop: the agent's status server and C&C client share
 * one, as each context costs lws 4.1.6 about 0.8 ms to create), or else one of its own (libuv foreign loop, a
 * 64-entry fd table). A process that only speaks ws:// so never pays for OpenSSL's global init. The first wss://
 * URL creates a TLS context of the wsc's own (verification always on; opts.ca_file or $SSL_CERT_FILE added to the
 * system store), which from then on also carries ws:// unless the plain context is a shared one; a plain context
 * of the wsc's own is given up then. (A TLS vhost on the shared context would save one context creation, 0.8 ms
 * next to the ~20 ms a TLS context spends parsing the CA store; the private one keeps the TLS path as it was.)
 *
 * Why the indirections:
 *   - lws must not be re-entered from inside its own callbacks in ways it does not expect (connecting a new wsi
 *     while a callback of the old one is on the stack; destroying the context is lwsloop's business). So the
 *     connect itself always runs from a libuv timer (delay 0) — which is what lets on_close call wsc_connect — and
 *     a wsc_free() made inside a callback only marks the wsc, which that callback still reads on its way out; the
 *     same timer frees it once the lws callback has returned.
 *   - The wsi's user pointer is the wsc. Whenever a wsi stops being ours (timeout, free) its user pointer is
 *     cleared, so lws's late callbacks for it (CLOSED, WSI_DESTROY after a libuv handle close) find nothing; our
 *     vhost's user pointer stays NULL. So a wsc on a share can go at once, before the context: wsc_free() then
 *     also kills its connection, which the context would otherwise keep.
 *   - One writer: messages wait in a bounded FIFO and are written one per CLIENT_WRITEABLE callback.
 *
 * What lws 4.1.6 does that this file is built around (each checked in tests/unit/test_wsc.c against a real lws
 * server, or seen with strace):
 *   - A refused upgrade: LWS_CALLBACK_CLIENT_CONNECTION_ERROR arrives with `in` = "HS: ws upgrade unauthorized"
 *     (401) or "HS: ws upgrade response not 101" (any other status), and the header table is still attached, so
 *     lws_http_client_http_response(wsi) returns the status. We rely on that call, with "unauthorized" → 401 as a
 *     fallback. Any other failure (refused, unreachable, TLS) reports 0; for a failed connect() lws only says
 *     "closed before established", but the socket's SO_ERROR is still readable and names the cause.
 *   - -1 from CLIENT_WRITEABLE counts as a failed write: the socket is dropped without a close frame. A clean close
 *     therefore goes through lws_set_timer_usecs() and LWS_CALLBACK_TIMER (lws_close_reason() + -1 there sends the
 *     close frame and waits for the peer's).
 *   - lws re-arms its libuv timer only while servicing something: a timeout set from outside its callbacks waits
 *     for the next socket event unless lws_cancel_service() wakes the context.
 *   - Destroying a context on a foreign loop takes two lws_context_destroy() calls and closes one fd twice:
 *     common/lwsloop.c does it. */
#include "iac/wsc.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/socket.h>

#include <libwebsockets.h>

#include "iac/lwsloop.h"

#define WSC_DEF_MAX_QUEUE 256
#define WSC_DEF_MAX_QUEUE_BYTES (4u << 20)
#define WSC_DEF_MAX_FRAME (1u << 20)
#define WSC_DEF_CONNECT_TIMEOUT_MS 10000
#define WSC_FD_LIMIT 64 /* one client socket plus lws's own needs; keeps the per-thread fd table small */

typedef enum { ST_IDLE, ST_CONNECTING, ST_OPEN, ST_CLOSING } wsc_state;

typedef struct wsc_msg {
    struct wsc_msg *next;
    size_t          len;
    unsigned char   buf[]; /* LWS_PRE bytes of headroom, then the payload */
} wsc_msg;

struct wsc {
    uv_loop_t    *loop;
    wsc_opts      opts;
    wsc_callbacks cb;
    void         *arg;

    lwsloop_share      *share;     /* plain context: opts.share or our own; NULL once our own gave way to TLS */
    bool                own_share; /* share is ours (created by wsc_new), not the caller's */
    struct lws_vhost   *vh;        /* our client vhost on share, once made */
    struct lws_context *share_ctx; /* share's context, which vh is in (NULL until vh is made) */
    struct lws_context *tls_ctx;   /* our own TLS context, from the first wss:// URL on */
    struct lws_context *ctx;       /* the context of the current attempt: share's or tls_ctx */
    struct lws         *wsi;   /* the current connection, or NULL */
    wsc_state           state;
    unsigned            gen;   /* attempt counter: tells a stale lws_client_connect_via_info() result apart */
    bool                in_connect; /* inside lws_client_connect_via_info(): adopt the wsi of early callbacks */

    /* The parsed URL of the current attempt; lws reads these while connecting. */
    char *url_buf;   /* host, NUL, path?query, NUL */
    const char *host, *path;
    int   port;
    bool  tls;
    char *auth;      /* "Bearer …" or NULL */

    uv_timer_t *timer; /* deferred connect, connect timeout, deferred destroy; heap: closes asynchronously */
    bool        connect_pending;
    bool        freed;  /* wsc_free() was called inside a callback; destroy from the timer */
    int         in_cb;  /* depth of user callbacks on the stack */

    wsc_msg *qhead, *qtail;
    size_t   nq, qbytes;

    char  *rx;
    size_t rx_len, rx_cap;

    int  peer_close_code;  /* from the peer's close frame, 0 when none */
    char close_why[64];    /* our own reason for closing, reported in on_close */
};

/* ---- small helpers ---- */

static void queue_clear(wsc *w)
{
    wsc_msg *m = w->qhead;
    while (m) {
        wsc_msg *next = m->next;
        free(m);
        m = next;
    }
    w->qhead = w->qtail = NULL;
    w->nq = w->qbytes = 0;
}

static void rx_reset(wsc *w)
{
    w->rx_len = 0;
}

/* Frees what belongs to one attempt. */
static void attempt_clear(wsc *w)
{
    free(w->url_buf);
    free(w->auth);
    w->url_buf = w->auth = NULL;
    w->host = w->path = NULL;
    queue_clear(w);
    rx_reset(w);
    w->peer_close_code = 0;
    w->close_why[0] = '\0';
}

/* The connection ended: forget it and tell the owner. The owner may connect again or free us from on_close. */
static void report_close(wsc *w, int http_status, const char *reason)
{
    if (w->wsi)
        lws_set_wsi_user(w->wsi, NULL);
    w->wsi = NULL;
    w->state = ST_IDLE;
    uv_timer_stop(w->timer);
    attempt_clear(w);
    if (w->cb.on_close && !w->freed) {
        w->in_cb++;
        w->cb.on_close(w, http_status, reason, w->arg);
        w->in_cb--;
    }
}

/* ---- lws context ---- */

static int wsc_lws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len);

static const struct lws_protocols wsc_protocols[] = {
    { "wsc", wsc_lws_cb, 0, 0, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 },
};

/* The client vhost on w->share: no listener, our protocol, no extensions (permessage-deflate stays off, ref §3.1).
 * Its user pointer stays NULL: callbacks find the wsc through the wsi's. */
static bool vhost_create(wsc *w)
{
    struct lws_context_creation_info info;
    struct lws_context *ctx = lwsloop_share_context(w->share); /* made now if no user needed it yet */

    if (!ctx)
        return false;
    memset(&info, 0, sizeof info);
    info.vhost_name = "wsc";
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = wsc_protocols;
    w->vh = lws_create_vhost(ctx, &info);
    w->share_ctx = w->vh ? ctx : NULL;
    return w->vh != NULL;
}

static struct lws_context *tls_context_create(wsc *w)
{
    struct lws_context_creation_info info;
    const char *ca = w->opts.ca_file ? w->opts.ca_file : getenv("SSL_CERT_FILE");

    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = wsc_protocols;
    info.fd_limit_per_thread = WSC_FD_LIMIT;
    info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    if (ca && *ca)
        info.client_ssl_ca_filepath = ca;
    return lwsloop_create(w->loop, &info);
}

/* Lets go of the current connection: no callback of it reaches w any more. On a context that outlives us (the
 * caller's share) it is also killed; a context of our own closes it when it is destroyed. */
static void wsi_detach(wsc *w)
{
    struct lws *wsi = w->wsi;

    if (!wsi)
        return;
    lws_set_wsi_user(wsi, NULL);
    w->wsi = NULL;
    if (w->share_ctx && !w->own_share && w->ctx == w->share_ctx) {
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        lws_cancel_service(w->ctx); /* see abandon() */
    }
}

/* Drops our reference to the plain context (a context of our own goes with it; on a caller's share our vhost
 * stays until the context goes). */
static void share_release(wsc *w)
{
    if (!w->share)
        return;
    if (w->share_ctx && w->ctx == w->share_ctx)
        wsi_detach(w);
    lwsloop_share_unref(w->share, NULL, NULL); /* our vhost's user is NULL: nothing of lws reaches w */
    w->share = NULL;
    w->vh = NULL;
    w->share_ctx = NULL;
}

/* Destroys our TLS context. Out of memory, lwsloop_destroy() leaks it; its wsi no longer reaches w, so w can go on
 * without it. */
static void tls_release(wsc *w)
{
    if (!w->tls_ctx)
        return;
    if (w->ctx == w->tls_ctx)
        wsi_detach(w);
    (void)lwsloop_destroy(w->loop, w->tls_ctx, NULL, NULL);
    w->tls_ctx = NULL;
}

static void contexts_release(wsc *w)
{
    share_release(w);
    tls_release(w);
    w->ctx = NULL;
}

/* ---- URL ---- */

/* ws[s]://host[:port][/path][?query] → the fields of w. Port 1..65535; host non-empty. */
static int url_parse(wsc *w, const char *url)
{
    static const struct { const char *prefix; bool tls; int port; } schemes[] = {
        { "ws://", false, 80 },
        { "wss://", true, 443 },
    };
    const char *p = NULL;
    size_t i;

    for (i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        size_t n = strlen(schemes[i].prefix);
        if (strncasecmp(url, schemes[i].prefix, n) == 0) {
            p = url + n;
            w->tls = schemes[i].tls;
            w->port = schemes[i].port;
            break;
        }
    }
    if (!p)
        return WSC_E_URL;

    size_t hlen = strcspn(p, ":/?#");
    if (hlen == 0)
        return WSC_E_URL;
    for (i = 0; i < hlen; i++)
        if ((unsigned char)p[i] <= ' ' || p[i] == '@' || p[i] == '[' || p[i] == ']')
            return WSC_E_URL;
    const char *rest = p + hlen;
    if (*rest == ':') {
        char *end;
        errno = 0;
        long port = strtol(rest + 1, &end, 10);
        if (end == rest + 1 || errno || port < 1 || port > 65535 || (*end && *end != '/' && *end != '?'))
            return WSC_E_URL;
        w->port = (int)port;
        rest = end;
    }
    if (*rest == '#')
        return WSC_E_URL;
    for (const char *q = rest; *q; q++)
        if ((unsigned char)*q <= ' ' || *q == '#')
            return WSC_E_URL;

    /* host NUL "/" (if the path does not start with one) rest NUL */
    size_t rlen = strlen(rest);
    char *buf = malloc(hlen + 1 + 1 + rlen + 1);
    if (!buf)
        return WSC_E_NOMEM;
    memcpy(buf, p, hlen);
    buf[hlen] = '\0';
    char *path = buf + hlen + 1;
    size_t off = 0;
    if (*rest != '/')
        path[off++] = '/';
    memcpy(path + off, rest, rlen + 1);
    w->url_buf = buf;
    w->host = buf;
    w->path = path;
    return WSC_OK;
}

/* ---- connecting ---- */

static void timer_cb(uv_timer_t *t);

static void connect_now(wsc *w)
{
    struct lws_client_connect_info ci;
    unsigned gen;
    struct lws *wsi;

    if (w->tls && !w->tls_ctx) {
        w->tls_ctx = tls_context_create(w);
        if (w->tls_ctx && w->own_share)
            share_release(w); /* a TLS context speaks ws:// too: our plain one is not needed any more */
    }
    if (!w->tls && w->share && !w->vh)
        vhost_create(w); /* on a caller's share: made at the first connect (the caller says when lws is needed) */
    w->ctx = w->tls || !w->share ? w->tls_ctx : w->share_ctx;
    if (!w->ctx) {
        report_close(w, 0, "cannot create lws context");
        return;
    }

    memset(&ci, 0, sizeof ci);
    ci.context = w->ctx;
    ci.vhost = w->ctx == w->tls_ctx ? NULL : w->vh; /* NULL: the TLS context's only vhost */
    ci.address = w->host;
    ci.host = w->host;
    ci.port = w->port;
    ci.path = w->path;
    ci.ssl_connection = w->tls ? LCCSCF_USE_SSL : 0;
    ci.alpn = "http/1.1";
    ci.local_protocol_name = wsc_protocols[0].name;
    ci.ietf_version_or_minus_one = -1;
    ci.userdata = w;

    gen = ++w->gen;
    w->in_connect = true;
    w->wsi = NULL;
    uv_timer_start(w->timer, timer_cb, (uint64_t)w->opts.connect_timeout_ms, 0);
    wsi = lws_client_connect_via_info(&ci);
    w->in_connect = false;
    if (gen != w->gen || w->state != ST_CONNECTING)
        return; /* already reported (and maybe reconnecting) from a callback inside the call */
    if (!wsi) {
        report_close(w, 0, "connect failed");
        return;
    }
    w->wsi = wsi;
}

/* Gives up a connection attempt from outside lws's callbacks: detached (no more callbacks reach us) and killed.
 * lws 4.1 re-arms its libuv timer only when it services something, so lws_cancel_service() wakes it up to run the
 * kill now rather than at its next socket event. */
static void abandon(wsc *w, struct lws *wsi)
{
    lws_set_wsi_user(wsi, NULL);
    w->wsi = NULL;
    lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    lws_cancel_service(w->ctx);
}

static void timer_cb(uv_timer_t *t)
{
    wsc *w = t->data;

    if (w->freed) {
        contexts_release(w);
        attempt_clear(w);
        free(w->rx);
        uv_close((uv_handle_t *)w->timer, (uv_close_cb)free);
        free(w);
        return;
    }
    if (w->connect_pending) {
        w->connect_pending = false;
        connect_now(w);
        return;
    }
    if (w->state == ST_CONNECTING) {
        struct lws *wsi = w->wsi;
        if (wsi)
            abandon(w, wsi);
        report_close(w, 0, "connect timeout");
    }
}

/* ---- lws callback ---- */

/* Is this callback about our current connection? During lws_client_connect_via_info() the wsi is not known yet,
 * so the first callback that names one adopts it. */
static bool is_current(wsc *w, struct lws *wsi)
{
    if (w->wsi == wsi)
        return true;
    if (w->in_connect && !w->wsi) {
        w->wsi = wsi;
        return true;
    }
    return false;
}

/* Socket errors lws leaves behind on the fd, in words (lws itself only says "closed before established"). */
static const struct { int err; const char *text; } sock_errors[] = {
    { ECONNREFUSED, "connection refused" },
    { ETIMEDOUT, "connect timed out" },
    { EHOSTUNREACH, "host unreachable" },
    { ENETUNREACH, "network unreachable" },
    { ECONNRESET, "connection reset" },
};

static void failure_reason(struct lws *wsi, const char *in, int *status, char *out, size_t outlen)
{
    /* lws 4.1.6 keeps the header table attached until after CLIENT_CONNECTION_ERROR, so the status line of a
     * refused upgrade is still readable here; "HS: ws upgrade unauthorized" alone also means 401. */
    unsigned int code = lws_http_client_http_response(wsi);
    int fd = lws_get_socket_fd(wsi), err = 0;
    socklen_t sl = sizeof err;

    if (!code && in && strstr(in, "unauthorized"))
        code = 401;
    *status = code >= 200 && code != 101 && code < 600 ? (int)code : 0;
    if (*status) {
        snprintf(out, outlen, "handshake: %d", *status);
        return;
    }
    /* The connect() error is still pending on the socket when lws reports the failure. */
    if (fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) == 0 && err)
        for (size_t i = 0; i < sizeof sock_errors / sizeof sock_errors[0]; i++)
            if (sock_errors[i].err == err) {
                snprintf(out, outlen, "%s", sock_errors[i].text);
                return;
            }
    snprintf(out, outlen, "connect failed: %.80s", in && *in ? in : "unknown error");
}

static int on_receive(wsc *w, struct lws *wsi, const char *in, size_t len)
{
    size_t remaining = lws_remaining_packet_payload(wsi);

    if (lws_frame_is_binary(wsi)) {
        snprintf(w->close_why, sizeof w->close_why, "binary frame (1003)");
        lws_close_reason(wsi, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE, NULL, 0);
        return -1;
    }
    /* Refuse as early as we know: what we hold + this piece + what is left of this frame. */
    if (w->rx_len + len > w->opts.max_frame || w->rx_len + len + remaining > w->opts.max_frame) {
        snprintf(w->close_why, sizeof w->close_why, "message too large (1009)");
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, NULL, 0);
        rx_reset(w);
        return -1;
    }
    if (w->rx_len + len + 1 > w->rx_cap) {
        size_t cap = w->rx_cap ? w->rx_cap : 4096;
        while (cap < w->rx_len + len + 1)
            cap *= 2;
        if (cap > w->opts.max_frame + 1)
            cap = w->opts.max_frame + 1;
        char *nrx = realloc(w->rx, cap);
        if (!nrx) {
            snprintf(w->close_why, sizeof w->close_why, "out of memory");
            lws_close_reason(wsi, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, NULL, 0);
            return -1;
        }
        w->rx = nrx;
        w->rx_cap = cap;
    }
    if (len)
        memcpy(w->rx + w->rx_len, in, len);
    w->rx_len += len;
    w->rx[w->rx_len] = '\0';

    if (!lws_is_final_fragment(wsi) || remaining)
        return 0;

    size_t n = w->rx_len;
    rx_reset(w);
    if (w->cb.on_message) {
        w->in_cb++;
        w->cb.on_message(w, w->rx, n, w->arg);
        w->in_cb--;
    }
    /* Freed from inside on_message: drop the connection now, the timer destroys the context. */
    return w->freed ? -1 : 0;
}

static int on_writeable(wsc *w, struct lws *wsi)
{
    wsc_msg *m = w->qhead;

    if (m) {
        int n = lws_write(wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT);
        if (n < 0 || (size_t)n < m->len) {
            snprintf(w->close_why, sizeof w->close_why, "write failed");
            return -1;
        }
        w->qhead = m->next;
        if (!w->qhead)
            w->qtail = NULL;
        w->nq--;
        w->qbytes -= m->len;
        free(m);
        if (w->qhead) {
            lws_callback_on_writable(wsi);
            return 0;
        }
        if (w->cb.on_drained && w->state == ST_OPEN) {
            w->in_cb++;
            w->cb.on_drained(w, w->arg);
            w->in_cb--;
            if (w->freed)
                return -1;
            if (w->qhead) /* on_drained queued more */
                return 0;
        }
    }
    if (w->state == ST_CLOSING && !w->qhead)
        lws_set_timer_usecs(wsi, 1); /* the close itself happens in LWS_CALLBACK_TIMER, see there */
    return 0;
}

/* The reasons we handle; for each of them `user` is the wsi's user pointer. (Not for all reasons: the OpenSSL ones
 * pass an SSL_CTX or X509_STORE_CTX there.) */
static bool reason_is_ours(enum lws_callback_reasons reason)
{
    static const enum lws_callback_reasons ours[] = {
        LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER, LWS_CALLBACK_CLIENT_ESTABLISHED,
        LWS_CALLBACK_CLIENT_CONNECTION_ERROR,        LWS_CALLBACK_CLIENT_RECEIVE,
        LWS_CALLBACK_CLIENT_WRITEABLE,               LWS_CALLBACK_TIMER,
        LWS_CALLBACK_WS_PEER_INITIATED_CLOSE,        LWS_CALLBACK_CLIENT_CLOSED,
        LWS_CALLBACK_WSI_DESTROY,
    };
    for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++)
        if (ours[i] == reason)
            return true;
    return false;
}

static int wsc_lws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    wsc *w = user;
    char why[128];
    int status;

    if (!reason_is_ours(reason))
        return 0;
    if (!w || w->freed) {
        /* Not ours (any more). Keep lws from adding anything to a dying connection. */
        if (reason == LWS_CALLBACK_CLIENT_RECEIVE || reason == LWS_CALLBACK_CLIENT_WRITEABLE)
            return -1;
        return 0;
    }

    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
        if (!is_current(w, wsi) || !w->auth)
            return 0;
        {
            unsigned char **p = (unsigned char **)in, *end = *p + len;
            if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, (const unsigned char *)w->auth,
                                             (int)strlen(w->auth), p, end))
                return -1;
        }
        return 0;

    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (!is_current(w, wsi))
            return -1;
        uv_timer_stop(w->timer);
        w->state = ST_OPEN;
        if (w->cb.on_open) {
            w->in_cb++;
            w->cb.on_open(w, w->arg);
            w->in_cb--;
            if (w->freed)
                return -1;
        }
        if (w->qhead || w->state == ST_CLOSING)
            lws_callback_on_writable(wsi);
        return 0;

    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (!is_current(w, wsi) || w->state != ST_CONNECTING)
            return 0;
        failure_reason(wsi, in, &status, why, sizeof why);
        report_close(w, status, why);
        return 0;

    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (!is_current(w, wsi))
            return -1;
        return on_receive(w, wsi, in, len);

    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (!is_current(w, wsi))
            return -1;
        return on_writeable(w, wsi);

    case LWS_CALLBACK_TIMER:
        /* Our clean close. lws 4.1 treats -1 from CLIENT_WRITEABLE as a failed write (socket marked unusable, no
         * close frame), but -1 from the timer callback goes through the normal close: the close frame with our
         * reason is sent and the peer's answer awaited. */
        if (!is_current(w, wsi) || w->state != ST_CLOSING)
            return 0;
        snprintf(w->close_why, sizeof w->close_why, "closed (1000)");
        lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
        return -1;

    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (is_current(w, wsi) && in && len >= 2) {
            const unsigned char *b = in;
            w->peer_close_code = (b[0] << 8) | b[1];
        } else if (is_current(w, wsi)) {
            w->peer_close_code = LWS_CLOSE_STATUS_NO_STATUS;
        }
        return 0;

    case LWS_CALLBACK_CLIENT_CLOSED:
    case LWS_CALLBACK_WSI_DESTROY:
        /* CLOSED for an established connection; WSI_DESTROY catches any path where lws ends a connecting wsi
         * without CONNECTION_ERROR. Whichever comes first reports, the other finds the wsi no longer current. */
        if (wsi != w->wsi || w->state == ST_IDLE)
            return 0;
        if (w->close_why[0])
            snprintf(why, sizeof why, "%s", w->close_why);
        else if (w->peer_close_code)
            snprintf(why, sizeof why, "closed by peer (%d)", w->peer_close_code);
        else if (w->state == ST_CONNECTING)
            snprintf(why, sizeof why, "connect failed");
        else
            snprintf(why, sizeof why, "connection lost");
        report_close(w, 0, why);
        return 0;

    default:
        return 0;
    }
}

/* ---- public API ---- */

wsc *wsc_new(uv_loop_t *loop, const wsc_opts *opts, const wsc_callbacks *cb, void *arg)
{
    wsc *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->loop = loop;
    if (opts)
        w->opts = *opts;
    if (!w->opts.max_queue)
        w->opts.max_queue = WSC_DEF_MAX_QUEUE;
    if (!w->opts.max_queue_bytes)
        w->opts.max_queue_bytes = WSC_DEF_MAX_QUEUE_BYTES;
    if (!w->opts.max_frame)
        w->opts.max_frame = WSC_DEF_MAX_FRAME;
    if (w->opts.connect_timeout_ms <= 0)
        w->opts.connect_timeout_ms = WSC_DEF_CONNECT_TIMEOUT_MS;
    if (cb)
        w->cb = *cb;
    w->arg = arg;

    w->timer = malloc(sizeof *w->timer);
    if (!w->timer || uv_timer_init(loop, w->timer) != 0) {
        free(w->timer);
        free(w);
        return NULL;
    }
    w->timer->data = w;
    if (w->opts.share && lwsloop_share_loop(w->opts.share) != loop) {
        uv_close((uv_handle_t *)w->timer, (uv_close_cb)free);
        free(w);
        return NULL;
    }
    if (w->opts.share) {
        w->share = lwsloop_share_ref(w->opts.share) == 0 ? w->opts.share : NULL;
    } else {
        w->share = lwsloop_share_new(loop, WSC_FD_LIMIT);
        w->own_share = true;
    }
    /* A context of our own is made at once (wsc_new fails if lws refuses); on a caller's share, at the first
     * connect. */
    if (!w->share || (w->own_share && !vhost_create(w))) {
        share_release(w);
        uv_close((uv_handle_t *)w->timer, (uv_close_cb)free);
        free(w);
        return NULL;
    }
    return w;
}

int wsc_connect(wsc *w, const char *url, const char *bearer)
{
    int rc;

    if (w->freed)
        return WSC_E_CLOSED;
    if (w->state != ST_IDLE || w->connect_pending)
        return WSC_E_BUSY;
    if (!url)
        return WSC_E_URL;
    attempt_clear(w);
    rc = url_parse(w, url);
    if (rc != WSC_OK)
        return rc;
    if (bearer) {
        size_t n = strlen(bearer);
        w->auth = malloc(n + sizeof "Bearer ");
        if (!w->auth) {
            attempt_clear(w);
            return WSC_E_NOMEM;
        }
        memcpy(w->auth, "Bearer ", 7);
        memcpy(w->auth + 7, bearer, n + 1);
    }
    /* Always from the loop, never from inside a callback that may be lws's (reconnect from on_close). */
    w->state = ST_CONNECTING;
    w->connect_pending = true;
    uv_timer_start(w->timer, timer_cb, 0, 0);
    return WSC_OK;
}

int wsc_send(wsc *w, const char *data, size_t len)
{
    wsc_msg *m;

    if (w->state != ST_OPEN || !w->wsi)
        return WSC_E_CLOSED;
    if (w->nq >= w->opts.max_queue || len > w->opts.max_queue_bytes - w->qbytes)
        return WSC_E_FULL;
    m = malloc(sizeof *m + LWS_PRE + len);
    if (!m)
        return WSC_E_NOMEM;
    m->next = NULL;
    m->len = len;
    if (len)
        memcpy(m->buf + LWS_PRE, data, len);
    if (w->qtail)
        w->qtail->next = m;
    else
        w->qhead = m;
    w->qtail = m;
    w->nq++;
    w->qbytes += len;
    lws_callback_on_writable(w->wsi);
    return WSC_OK;
}

bool wsc_is_open(const wsc *w)
{
    return w->state == ST_OPEN;
}

size_t wsc_queued(const wsc *w)
{
    return w->nq;
}

void wsc_close(wsc *w)
{
    if (w->freed)
        return;
    switch (w->state) {
    case ST_OPEN:
        w->state = ST_CLOSING;
        if (w->wsi)
            lws_callback_on_writable(w->wsi);
        break;
    case ST_CONNECTING:
        /* Nothing to flush: abandon the attempt. */
        w->connect_pending = false;
        if (w->wsi)
            abandon(w, w->wsi);
        report_close(w, 0, "closed before open");
        break;
    default:
        break;
    }
}

void wsc_free(wsc *w)
{
    if (!w || w->freed)
        return;
    w->freed = true;
    if (w->in_cb > 0) {
        /* An lws callback is on the stack: finish from the loop (timer_cb). The connection itself is dropped by
         * returning -1 from that callback; whatever lws still does with it (close, destroy) no longer reaches us. */
        if (w->wsi)
            lws_set_wsi_user(w->wsi, NULL);
        w->wsi = NULL;
        attempt_clear(w);
        w->connect_pending = false;
        uv_timer_start(w->timer, timer_cb, 0, 0);
        return;
    }
    contexts_release(w);
    attempt_clear(w);
    free(w->rx);
    uv_close((uv_handle_t *)w->timer, (uv_close_cb)free);
    free(w);
}
