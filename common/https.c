/* https.c — a small HTTP/1.1 server on libwebsockets, on the caller's libuv loop; see https.h.
 *
 * The server is one vhost listening on host:port, on a context bound to the caller's loop (common/lwsloop): a
 * context of its own, or one the caller shares with other users (https_listen_shared: the agent's status server
 * and C&C client) — creating a context costs about 0.8 ms in lws 4.1.6, a vhost next to nothing. Either way the
 * server finds itself through the vhost's user pointer and holds one reference to the share. Each connection
 * carries a `conn` (lws per-session data) that walks
 *
 *     IDLE --headers--> BODY --body complete--> REPLY --last byte--> IDLE (keep-alive) …
 *               \_________(no body)___________/
 *
 * The handler is called once per request with everything copied out of lws's header storage, and the response
 * goes out from LWS_CALLBACK_HTTP_WRITEABLE: headers first, then the body in HTTPS_CHUNK-sized writes, one write
 * per callback as lws requires, so a megabyte body never sits in lws's own buffers. Requests the server cannot
 * take never reach the handler: a body over max_body (drained, then 413), chunked uploads (411), methods other
 * than GET/POST/PUT/PATCH/DELETE/OPTIONS (405).
 *
 * Facts about lws 4.1.6 this file is built around (checked against the library, see the tests):
 *   - URI arguments arrive already percent-decoded ('+' included) and split at '&'. The raw query is gone, so
 *     req->query is rebuilt by re-encoding each "name=value" fragment; https_query_param() decodes it again.
 *     A name containing an encoded '=' cannot be told apart from its value: such names are not supported.
 *   - If the bind fails inside lws_create_context() on a foreign loop, lws leaves uv handles on the loop that
 *     point into freed memory, and the loop crashes on its next turn. So the context (a share) never has a
 *     listener of its own and the vhost is added with lws_create_vhost(), whose failure leaves a sound context.
 *   - Destroying a context on a foreign loop takes several loop turns (common/lwsloop.c). https_free() marks the
 *     server (no more handler calls: a request that still arrives is answered 503) and drops its reference to the
 *     share, which is safe inside the handler; the server itself is freed once the context is, as lws's closing
 *     callbacks still reach it. With a context of its own that is a few loop turns later; on a shared one, when
 *     the last user lets go (the vhost, and so the listener, stays until then: it goes with the context).
 *   - With fd_limit_per_thread set (lwsloop_create), lws keeps a small fd table searched linearly, which also
 *     accepts fd numbers above the limit.
 *   - A request body is read only when announced by Content-Length; LWS_CALLBACK_HTTP_BODY_COMPLETION never comes
 *     for a body-less request, so the handler runs straight from LWS_CALLBACK_HTTP then. lws does not decode
 *     chunked request bodies (the request just stalls): those get 411 and the connection is closed.
 *
 * lws's logging is process-wide (lws_set_log_level); it is left to main to route or silence it. */
#include "iac/https.h"

#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "iac/lwsloop.h"

#define HTTPS_DEFAULT_MAX_BODY (1u << 20)
#define HTTPS_CHUNK            16384 /* bytes per body write; also lws's tx_packet_size */
#define HTTPS_FD_LIMIT         256
#define HTTPS_CTYPE_MAX        128

struct https_server {
    lwsloop_share      *share;      /* the context: our own or the caller's; one reference is ours */
    https_handler       handler;
    void               *arg;
    size_t              max_body;
    int                 port;
    bool                closing;    /* https_free() was called: no more handler calls */
};

typedef enum { CONN_IDLE = 0, CONN_BODY, CONN_REPLY } conn_state;

/* Per-connection state (lws zero-fills it, which is a valid IDLE conn). Reset after every transaction and on
 * close, so keep-alive connections start each request clean and nothing outlives the socket. */
typedef struct {
    conn_state  state;
    const char *method;
    bool        too_big;       /* body exceeded max_body: drained and answered with 413 */
    bool        close_after;   /* hang up once the response is out */
    bool        has_auth, has_ctype;
    strbuf      path, query, auth, ctype, body;
    char        peer[64];
    /* response */
    int         status;
    char        res_ctype[HTTPS_CTYPE_MAX];
    strbuf      out;
    size_t      sent;
    bool        headers_sent;
} conn;

/* Methods lws recognises, by the header token that carries the URI. */
static const struct {
    enum lws_token_indexes token;
    const char            *name;
} methods[] = {
    { WSI_TOKEN_GET_URI, "GET" },       { WSI_TOKEN_POST_URI, "POST" },     { WSI_TOKEN_PUT_URI, "PUT" },
    { WSI_TOKEN_PATCH_URI, "PATCH" },   { WSI_TOKEN_DELETE_URI, "DELETE" }, { WSI_TOKEN_OPTIONS_URI, "OPTIONS" },
};

static void conn_reset(conn *c)
{
    strbuf_free(&c->path);
    strbuf_free(&c->query);
    strbuf_free(&c->auth);
    strbuf_free(&c->ctype);
    strbuf_free(&c->body);
    strbuf_free(&c->out);
    memset(c, 0, sizeof *c);
}

/* Copies header h into b; false when absent (or empty). */
static bool hdr_copy(struct lws *wsi, enum lws_token_indexes h, strbuf *b)
{
    int len = lws_hdr_total_length(wsi, h);
    if (len <= 0)
        return false;
    char *tmp = malloc((size_t)len + 1);
    if (!tmp) {
        b->oom = true;
        return true;
    }
    int n = lws_hdr_copy(wsi, tmp, len + 1, h);
    if (n > 0)
        strbuf_append(b, tmp, (size_t)n);
    free(tmp);
    return n > 0;
}

/* Characters kept as they are when rebuilding the query; everything else is %XX. '&', '=', '+' and '%' must be
 * encoded so that https_query_param() splits and decodes the rebuilt string exactly as the client meant it. */
static bool query_safe(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("-._~:/,@!$'()*;", ch));
}

static void query_encode(strbuf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (query_safe(ch)) {
            strbuf_putc(b, (char)ch);
        } else {
            char esc[3] = { '%', hex[ch >> 4], hex[ch & 15] };
            strbuf_append(b, esc, 3);
        }
    }
}

/* Rebuilds the query from lws's decoded "name=value" fragments (see the top comment). */
static void query_rebuild(struct lws *wsi, strbuf *q)
{
    int total = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS);
    if (total <= 0)
        return;
    char *frag = malloc((size_t)total + 1);
    if (!frag) {
        q->oom = true;
        return;
    }
    for (int i = 0;; i++) {
        int n = lws_hdr_copy_fragment(wsi, frag, total + 1, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0)
            break; /* no fragment i */
        if (n == 0)
            continue; /* "a=1&&b=2" */
        if (q->len)
            strbuf_putc(q, '&');
        char *eq = memchr(frag, '=', (size_t)n);
        if (!eq) {
            query_encode(q, frag, (size_t)n);
            continue;
        }
        query_encode(q, frag, (size_t)(eq - frag));
        strbuf_putc(q, '=');
        query_encode(q, eq + 1, (size_t)(frag + n - eq - 1));
    }
    free(frag);
}

/* Bytes of request body announced by Content-Length (0 when none); BODY_CHUNKED for chunked transfer encoding,
 * which lws 4.1 does not decode on the server side (it delivers no LWS_CALLBACK_HTTP_BODY for it at all). */
#define BODY_CHUNKED SIZE_MAX
static size_t body_expected(struct lws *wsi)
{
    char buf[32];
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0)
        return BODY_CHUNKED;
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0 ||
        lws_hdr_copy(wsi, buf, sizeof buf, WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0)
        return 0;
    unsigned long long n = strtoull(buf, NULL, 10); /* lws has already refused a malformed length */
    return n >= SIZE_MAX ? SIZE_MAX - 1 : (size_t)n;
}

static void conn_reply_error(conn *c, int status, const char *msg)
{
    https_response res = { status, "application/json", STRBUF_INIT };
    https_reply_error(&res, status, msg);
    c->status = status;
    snprintf(c->res_ctype, sizeof c->res_ctype, "%s", res.content_type);
    c->out = res.body;
    c->state = CONN_REPLY;
}

/* A content type the handler chose, if it is safe to put in a header line. */
static const char *ctype_ok(const char *t)
{
    if (!t || !*t || strlen(t) >= HTTPS_CTYPE_MAX)
        return NULL;
    for (const char *p = t; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return NULL;
    return t;
}

/* Runs the handler on a complete request and queues the response. */
static void conn_dispatch(https_server *s, struct lws *wsi, conn *c)
{
    if (c->path.oom || c->query.oom || c->auth.oom || c->ctype.oom || c->body.oom) {
        conn_reply_error(c, 500, "out of memory");
    } else if (s->closing) {
        conn_reply_error(c, 503, "server is shutting down");
    } else {
        https_request req = {
            .method = c->method,
            .path = c->path.data ? c->path.data : "/",
            .query = c->query.data ? c->query.data : "",
            .authorization = c->has_auth ? c->auth.data : NULL,
            .content_type = c->has_ctype ? c->ctype.data : NULL,
            .body = c->body.data ? c->body.data : "",
            .body_len = c->body.len,
            .peer = c->peer,
        };
        https_response res = { 200, "application/json", STRBUF_INIT };
        s->handler(&req, &res, s->arg);
        const char *ctype = ctype_ok(res.content_type);
        if (res.body.oom) {
            strbuf_free(&res.body);
            conn_reply_error(c, 500, "out of memory");
        } else if (res.status < 100 || res.status > 599 || !ctype) {
            strbuf_free(&res.body);
            conn_reply_error(c, 500, "handler produced an invalid response");
        } else {
            c->status = res.status;
            snprintf(c->res_ctype, sizeof c->res_ctype, "%s", ctype);
            c->out = res.body;
            c->state = CONN_REPLY;
        }
    }
    strbuf_free(&c->body); /* the request is answered; only the response is kept */
    lws_callback_on_writable(wsi);
}

/* LWS_CALLBACK_HTTP: a request line and headers are in. */
static int conn_begin(https_server *s, struct lws *wsi, conn *c, const char *uri)
{
    conn_reset(c);
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (lws_hdr_total_length(wsi, methods[i].token) > 0) {
            c->method = methods[i].name;
            break;
        }
    lws_get_peer_simple(wsi, c->peer, sizeof c->peer);
    if (!c->method) {
        conn_reply_error(c, 405, "method not allowed");
        c->close_after = true; /* any body it has would be read as the next request */
        lws_callback_on_writable(wsi);
        return 0;
    }
    strbuf_puts(&c->path, uri ? uri : "/");
    query_rebuild(wsi, &c->query);
    c->has_auth = hdr_copy(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, &c->auth);
    c->has_ctype = hdr_copy(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, &c->ctype);

    size_t expect = body_expected(wsi);
    if (expect == BODY_CHUNKED) {
        /* The chunks would be read as the next request: answer, then hang up. */
        conn_reply_error(c, 411, "chunked request bodies are not supported: send Content-Length");
        c->close_after = true;
        lws_callback_on_writable(wsi);
    } else if (expect == 0) {
        conn_dispatch(s, wsi, c);
    } else {
        c->state = CONN_BODY;
        c->too_big = expect > s->max_body; /* drained unread, then answered with 413 */
    }
    return 0;
}

static void conn_body(https_server *s, conn *c, const void *in, size_t len)
{
    if (c->state != CONN_BODY || c->too_big)
        return;
    if (len > s->max_body - c->body.len) {
        c->too_big = true;
        strbuf_free(&c->body);
        return;
    }
    strbuf_append(&c->body, in, len);
}

static void conn_body_done(https_server *s, struct lws *wsi, conn *c)
{
    if (c->state != CONN_BODY)
        return;
    if (c->too_big) {
        char msg[80];
        snprintf(msg, sizeof msg, "request body larger than %zu bytes", s->max_body);
        conn_reply_error(c, 413, msg);
        lws_callback_on_writable(wsi);
        return;
    }
    conn_dispatch(s, wsi, c);
}

/* LWS_CALLBACK_HTTP_WRITEABLE: one write per call — the headers, then body chunks. Returns lws's verdict. */
static int conn_write(struct lws *wsi, conn *c)
{
    if (c->state != CONN_REPLY)
        return 0;
    if (!c->headers_sent) {
        unsigned char buf[LWS_PRE + 512], *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf;
        if (lws_add_http_common_headers(wsi, (unsigned)c->status, c->res_ctype, c->out.len, &p, end) ||
            lws_finalize_write_http_header(wsi, start, &p, end))
            return -1;
        c->headers_sent = true;
        if (c->out.len) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    } else {
        unsigned char buf[LWS_PRE + HTTPS_CHUNK];
        size_t n = c->out.len - c->sent;
        if (n > HTTPS_CHUNK)
            n = HTTPS_CHUNK;
        bool last = c->sent + n == c->out.len;
        memcpy(buf + LWS_PRE, c->out.data + c->sent, n);
        if (lws_write(wsi, buf + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < (int)n)
            return -1;
        c->sent += n;
        if (!last) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    }
    bool close_after = c->close_after;
    conn_reset(c);
    if (close_after)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int https_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    conn *c = user;
    struct lws_vhost *vh = lws_get_vhost(wsi);
    https_server *s = vh ? lws_vhost_user(vh) : NULL; /* the context may be shared: the vhost is ours */

    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return c && s ? conn_begin(s, wsi, c, in) : -1;
    case LWS_CALLBACK_HTTP_BODY:
        if (c && s)
            conn_body(s, c, in, len);
        return 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (c && s)
            conn_body_done(s, wsi, c);
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return c ? conn_write(wsi, c) : 0;
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_WSI_DESTROY:
        if (c)
            conn_reset(c);
        break;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols https_protocols[] = {
    { .name = "http", .callback = https_callback, .per_session_data_size = sizeof(conn),
      .tx_packet_size = HTTPS_CHUNK },
    { .name = NULL },
};

/* Binds (and closes) a plain socket on host:port: NULL when that works, else why not (address in use, not local,
 * permission). lws itself only says that it failed. */
static const char *probe_bind(const char *host, int port)
{
    char portstr[16];
    struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM }, *ai = NULL;
    const char *why = NULL;
    snprintf(portstr, sizeof portstr, "%d", port);
    int rc = getaddrinfo(host, portstr, &hints, &ai);
    if (rc)
        return gai_strerror(rc);
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
        why = strerror(errno);
    } else {
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0)
            why = strerror(errno);
        close(fd);
    }
    freeaddrinfo(ai);
    return why;
}

static void listen_error(const char *host, int port, char *err, size_t errlen)
{
    const char *why = probe_bind(host, port);
    if (err && errlen)
        snprintf(err, errlen, "cannot listen on %s:%d: %s", host ? host : "0.0.0.0", port,
                 why ? why : "libwebsockets could not start the listener");
}

int https_probe(const char *host, int port, char *err, size_t errlen)
{
    if (port < 0 || port > 65535) {
        if (err && errlen)
            snprintf(err, errlen, "https_probe: the port must be from 0 to 65535");
        return -1;
    }
    const char *why = probe_bind(host, port);
    if (!why)
        return 0;
    if (err && errlen)
        snprintf(err, errlen, "cannot listen on %s:%d: %s", host ? host : "0.0.0.0", port, why);
    return -1;
}

/* share: the caller's, or NULL for one of the server's own. */
static https_server *listen_on(uv_loop_t *loop, lwsloop_share *share, const https_opts *opts, char *err,
                               size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!loop || !opts || !opts->handler || opts->port < 0 || opts->port > 65535) {
        if (err && errlen)
            snprintf(err, errlen, "https_listen: a loop, a handler and a port from 0 to 65535 are required");
        return NULL;
    }
    https_server *s = calloc(1, sizeof *s);
    if (!s) {
        if (err && errlen)
            snprintf(err, errlen, "https_listen: out of memory");
        return NULL;
    }
    s->handler = opts->handler;
    s->arg = opts->arg;
    s->max_body = opts->max_body ? opts->max_body : HTTPS_DEFAULT_MAX_BODY;
    if (share)
        s->share = lwsloop_share_ref(share) == 0 ? share : NULL;
    else
        s->share = lwsloop_share_new(loop, HTTPS_FD_LIMIT);
    struct lws_context *ctx = s->share ? lwsloop_share_context(s->share) : NULL;
    if (!ctx) {
        if (err && errlen)
            snprintf(err, errlen, "cannot listen on %s:%d: libwebsockets could not initialise",
                     opts->host ? opts->host : "0.0.0.0", opts->port);
        lwsloop_share_unref(s->share, NULL, NULL);
        free(s);
        return NULL;
    }

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.vhost_name = "https";
    if (!opts->host || !strchr(opts->host, ':'))
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6; /* an IPv4 address (or all of them); a vhost option */
    /* "0.0.0.0" is every interface, which NULL says too: lws then skips its two getifaddrs() (~0.15 ms at start)
     * that look for an interface of that name. */
    info.iface = opts->host && strcmp(opts->host, "0.0.0.0") != 0 ? opts->host : NULL;
    info.port = opts->port;
    info.protocols = https_protocols;
    info.user = s;
    struct lws_vhost *vh = lws_create_vhost(ctx, &info);
    s->port = vh ? lws_get_vhost_listen_port(vh) : -1;
    if (s->port <= 0) {
        listen_error(opts->host, opts->port, err, errlen);
        s->closing = true;
        if (vh) { /* a vhost without a port: it still points to s, which must outlive the context */
            lwsloop_share_unref(s->share, free, s);
            return NULL;
        }
        /* No vhost of ours in the context, so no callback can reach s: it goes now, and the reference with it (a
         * context of our own is destroyed on the loop as usual). */
        lwsloop_share_unref(s->share, NULL, NULL);
        free(s);
        return NULL;
    }
    return s;
}

https_server *https_listen(uv_loop_t *loop, const https_opts *opts, char *err, size_t errlen)
{
    return listen_on(loop, NULL, opts, err, errlen);
}

https_server *https_listen_shared(lwsloop_share *share, const https_opts *opts, char *err, size_t errlen)
{
    return listen_on(share ? lwsloop_share_loop(share) : NULL, share, opts, err, errlen);
}

int https_port(const https_server *s) { return s ? s->port : -1; }

void https_free(https_server *s)
{
    if (!s || s->closing)
        return;
    s->closing = true;
    /* s goes once the context is gone: until then lws's callbacks still reach it. */
    lwsloop_share_unref(s->share, free, s);
}

/* One decoded byte of a query component ('+' is a space, %XY a byte, a stray '%' itself), -1 at end. */
static int pct_next(const char **p, const char *end)
{
    static const char hex[] = "0123456789abcdef";
    if (*p >= end)
        return -1;
    unsigned char ch = (unsigned char)*(*p)++;
    if (ch == '+')
        return ' ';
    if (ch != '%' || end - *p < 2)
        return ch;
    const char *hi = (*p)[0] ? strchr(hex, tolower((unsigned char)(*p)[0])) : NULL;
    const char *lo = (*p)[1] ? strchr(hex, tolower((unsigned char)(*p)[1])) : NULL;
    if (!hi || !lo)
        return ch;
    *p += 2;
    return (int)((hi - hex) << 4 | (lo - hex));
}

static bool key_is(const char *k, const char *kend, const char *name)
{
    int ch;
    while ((ch = pct_next(&k, kend)) >= 0)
        if (ch == 0 || (unsigned char)*name++ != ch)
            return false;
    return *name == '\0';
}

int https_query_param(const char *query, const char *name, char *out, size_t outlen)
{
    if (!query || !name || !*name || !out || !outlen)
        return -1;
    for (const char *p = query; *p;) {
        const char *end = p + strcspn(p, "&");
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (key_is(p, eq ? eq : end, name)) {
            const char *v = eq ? eq + 1 : end;
            size_t n = 0;
            int ch;
            while ((ch = pct_next(&v, end)) >= 0) {
                if (ch == 0 || n + 1 >= outlen)
                    return -1; /* %00 cannot be returned in a C string; or too long */
                out[n++] = (char)ch;
            }
            out[n] = '\0';
            return 0;
        }
        p = *end ? end + 1 : end;
    }
    return -1;
}

void https_reply_error(https_response *res, int status, const char *msg)
{
    if (!res)
        return;
    if (!msg)
        msg = "";
    res->status = status;
    res->content_type = "application/json";
    strbuf_reset(&res->body);
    strbuf_puts(&res->body, "{\"error\":\"");
    strbuf_json_escape(&res->body, msg, strlen(msg));
    strbuf_puts(&res->body, "\"}");
}
