/* https.c — a small HTTP/1.1 server on uv_tcp; see https.h for what it speaks and why it is not libwebsockets.
 *
 * A server is a listening uv_tcp_t and one uv_timer_t; each connection is one uv_tcp_t with a `conn` around it.
 * A connection walks
 *
 *     HEAD --head parsed--> BODY or CHUNK_* --body complete--> REPLY --written--> HEAD (keep-alive) …
 *        \_____________(no body)____________________________/        \--> LINGER (the response ends it)
 *
 * Input is read into one buffer of HTTPS_MAX_HEAD bytes, which holds at most one request head and is the unit of
 * every limit: a head that does not fit is refused with 431. The head is parsed whole and the fields the handler
 * needs are copied out (`meta`); body bytes are moved from the buffer into `body` as they arrive, de-chunked, never
 * more than max_body. Once the request is complete the handler runs, reading pauses, and the response — head and
 * body — goes out in one uv_write; bytes of a pipelined next request wait in the buffer until it is written, so
 * requests on a connection are answered strictly one at a time, in order.
 *
 * A refused request (400, 413, 431, 501, 505) is answered and the connection then lingers: our side is shut down
 * and whatever the client still sends is read and dropped until it hangs up or HTTPS_LINGER_MS pass. Closing at
 * once would make the kernel answer the unread bytes with a reset, which can destroy the response before the
 * client has read it. Responses to "Connection: close" and HTTP/1.0 end the same way.
 *
 * Timeouts: each connection waiting for a request (or lingering) has a deadline in loop time; the server's one
 * timer is armed for the earliest and sweeps the connection list when it fires. A response being written has no
 * deadline. With no connection waiting the timer is idle, so an idle server costs no wake-ups.
 *
 * Lifetimes: https_free() closes the listener, the timer and every connection; `handles` and `nconns` count those
 * not yet back from uv_close, and the last close callback frees the server. A handler that frees its server finds
 * its connection closing when it returns: the response is dropped, and the conn's memory lives until its close
 * callback, which libuv runs only after the current callback has returned. */
#include "iac/https.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define HTTPS_DEFAULT_MAX_BODY (1u << 20)
#define HTTPS_DEFAULT_IDLE_MS  30000u
#define HTTPS_LINGER_MS        2000u       /* at most, after the last response, for the client to hang up */
#define HTTPS_MAX_HEAD         (16 * 1024) /* request line and headers; also the read buffer */
#define HTTPS_MAX_CONNS        512u
#define HTTPS_BACKLOG          511
#define HTTPS_CTYPE_MAX        128
#define HTTPS_NONE             SIZE_MAX    /* a meta offset for a header that was absent */

typedef enum {
    C_HEAD,       /* gathering a request line and headers */
    C_BODY,       /* `left` bytes of a Content-Length body to come */
    C_CHUNK_SIZE, /* a chunk-size line (hex digits, maybe extensions) */
    C_CHUNK_DATA, /* `left` bytes of chunk data */
    C_CHUNK_END,  /* the CRLF after chunk data */
    C_TRAILER,    /* trailer lines up to the blank one */
    C_REPLY,      /* the response is being written; reading is paused */
    C_LINGER,     /* the last response is out and our side shut down: reading and dropping until the client goes */
} conn_state;

typedef struct conn conn;
struct conn {
    uv_tcp_t      tcp;          /* data → this conn, as are the requests' */
    https_server *srv;
    conn         *prev, *next;  /* the server's connections that are not closing */
    conn_state    state;
    bool          reading, closing;
    uint64_t      deadline;     /* loop time by which the current wait must end; 0 while a response is written */
    char          peer[INET6_ADDRSTRLEN];

    char         *in;           /* HTTPS_MAX_HEAD bytes while there is something in it or a read under way */
    size_t        in_len;

    /* the request being read */
    bool          http10, head_only, close_after;
    uint64_t      left;         /* body or chunk bytes still to come */
    size_t        trailer_len;
    strbuf        meta;         /* method, path, query, authorization, content type, each NUL-terminated */
    size_t        at_path, at_query, at_auth, at_ctype; /* offsets into meta (method is at 0) */
    strbuf        body;

    /* the response */
    char          head[HTTPS_CTYPE_MAX + 192];
    strbuf        out;
    uv_write_t    write_req, continue_req;
    bool          continue_pending;
    uv_shutdown_t shutdown_req;
};

struct https_server {
    uv_loop_t    *loop;
    uv_tcp_t      listener;
    uv_timer_t    timer;        /* the earliest deadline of a connection */
    uint64_t      timer_due;    /* when it fires, while it is active */
    https_handler handler;
    void         *arg;
    size_t        max_body;
    uint64_t      idle_ms;
    int           port;
    conn         *conns;        /* not closing */
    unsigned      nconns;       /* connections whose handle has not come back from uv_close */
    unsigned      handles;      /* the listener and the timer, until they come back from uv_close */
    bool          closing;      /* https_free() was called (or https_listen failed) */
    bool          accept_stalled; /* a connection was left in the backlog for lack of memory: retry on a close */
};

/* ---- small things ---- */

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = tolower(ch);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* RFC 9110 token characters (method and header names). */
static bool is_tchar(unsigned char ch)
{
    return isalnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static bool is_ows(char ch) { return ch == ' ' || ch == '\t'; }

/* Reason phrases for the status line; others get an empty one, which HTTP allows. */
static const struct {
    int         status;
    const char *reason;
} reasons[] = {
    { 100, "Continue" },                        { 200, "OK" },
    { 201, "Created" },                         { 202, "Accepted" },
    { 204, "No Content" },                      { 301, "Moved Permanently" },
    { 302, "Found" },                           { 303, "See Other" },
    { 304, "Not Modified" },                    { 307, "Temporary Redirect" },
    { 400, "Bad Request" },                     { 401, "Unauthorized" },
    { 403, "Forbidden" },                       { 404, "Not Found" },
    { 405, "Method Not Allowed" },              { 406, "Not Acceptable" },
    { 409, "Conflict" },                        { 410, "Gone" },
    { 411, "Length Required" },                 { 412, "Precondition Failed" },
    { 413, "Content Too Large" },               { 415, "Unsupported Media Type" },
    { 422, "Unprocessable Content" },           { 423, "Locked" },
    { 429, "Too Many Requests" },               { 431, "Request Header Fields Too Large" },
    { 500, "Internal Server Error" },           { 501, "Not Implemented" },
    { 502, "Bad Gateway" },                     { 503, "Service Unavailable" },
    { 504, "Gateway Timeout" },                 { 505, "HTTP Version Not Supported" },
};

static const char *reason_of(int status)
{
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        if (reasons[i].status == status)
            return reasons[i].reason;
    return "";
}

/* Why a request is refused, for the JSON error body. */
static void refusal_text(const conn *c, int status, char *buf, size_t len)
{
    switch (status) {
    case 413:
        snprintf(buf, len, "request body larger than %zu bytes", c->srv->max_body);
        break;
    case 431:
        snprintf(buf, len, "request head larger than %d bytes", HTTPS_MAX_HEAD);
        break;
    case 501:
        snprintf(buf, len, "unsupported transfer encoding: only chunked is understood");
        break;
    case 505:
        snprintf(buf, len, "HTTP version not supported: send HTTP/1.1 or HTTP/1.0");
        break;
    default:
        snprintf(buf, len, "malformed request");
        break;
    }
}

/* ---- timeouts ---- */

static void on_timer(uv_timer_t *t);

static void timer_arm(https_server *s, uint64_t due)
{
    if (uv_is_active((uv_handle_t *)&s->timer) && s->timer_due <= due)
        return;
    uint64_t now = uv_now(s->loop);
    s->timer_due = due;
    uv_timer_start(&s->timer, on_timer, due > now ? due - now : 0, 0);
}

/* The connection is waiting for the client (a request, or its hang-up) for at most ms from now. */
static void wait_start(conn *c, uint64_t ms)
{
    c->deadline = uv_now(c->srv->loop) + ms;
    timer_arm(c->srv, c->deadline);
}

/* A stale timer only sweeps and finds nothing due. */
static void wait_stop(conn *c) { c->deadline = 0; }

/* ---- connection lifetime ---- */

static void server_maybe_free(https_server *s)
{
    if (s->closing && s->handles == 0 && s->nconns == 0)
        free(s);
}

static void server_accept(https_server *s);

static void on_conn_closed(uv_handle_t *h)
{
    conn *c = h->data;
    https_server *s = c->srv;
    free(c->in);
    strbuf_free(&c->meta);
    strbuf_free(&c->body);
    strbuf_free(&c->out);
    free(c);
    s->nconns--;
    if (s->closing)
        server_maybe_free(s);
    else if (s->accept_stalled)
        server_accept(s);
}

/* Closes at once; pending writes come back cancelled before the close callback. */
static void conn_close(conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    c->deadline = 0;
    https_server *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_timer(uv_timer_t *t)
{
    https_server *s = t->data;
    uint64_t now = uv_now(s->loop), next = 0;
    for (conn *c = s->conns, *nx; c; c = nx) {
        nx = c->next; /* conn_close unlinks c only */
        if (!c->deadline)
            continue;
        if (c->deadline <= now)
            conn_close(c);
        else if (!next || c->deadline < next)
            next = c->deadline;
    }
    if (next)
        timer_arm(s, next);
}

/* ---- reading ---- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    conn *c = h->data;
    (void)hint;
    if (!c->in)
        c->in = malloc(HTTPS_MAX_HEAD);
    /* The parser never leaves the buffer full while it reads (see the steps); a zero length is ENOBUFS. */
    buf->base = c->in ? c->in + c->in_len : NULL;
    buf->len = c->in ? HTTPS_MAX_HEAD - c->in_len : 0;
}

static void conn_run(conn *c);

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    conn *c = st->data;
    (void)buf;
    if (n == 0)
        return;
    if (n < 0) { /* the end, a reset, or no buffer */
        conn_close(c);
        return;
    }
    if (c->state == C_LINGER)
        return; /* dropped: in_len stays 0 */
    c->in_len += (size_t)n;
    if (c->state != C_REPLY)
        conn_run(c);
}

static void read_on(conn *c)
{
    if (c->reading || c->closing)
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
        conn_close(c);
        return;
    }
    c->reading = true;
}

static void read_off(conn *c)
{
    if (!c->reading)
        return;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
}

static void consume(conn *c, size_t n)
{
    if (!n)
        return;
    memmove(c->in, c->in + n, c->in_len - n);
    c->in_len -= n;
}

/* ---- writing ---- */

static void on_shut_down(uv_shutdown_t *req, int status)
{
    conn *c = req->data;
    if (status < 0 && !c->closing)
        conn_close(c);
}

/* After the last response: see the top comment. */
static void conn_linger(conn *c)
{
    c->state = C_LINGER;
    c->in_len = 0;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shut_down) < 0) {
        conn_close(c);
        return;
    }
    wait_start(c, c->srv->idle_ms < HTTPS_LINGER_MS ? c->srv->idle_ms : HTTPS_LINGER_MS);
    read_on(c);
}

/* Forgets the request just answered; the buffer goes too when nothing of a next request is in it. */
static void request_reset(conn *c)
{
    strbuf_free(&c->meta);
    strbuf_free(&c->body);
    c->http10 = c->head_only = c->close_after = false;
    c->left = 0;
    c->trailer_len = 0;
    if (!c->in_len && !c->reading) {
        free(c->in);
        c->in = NULL;
    }
}

static void on_written(uv_write_t *req, int status)
{
    conn *c = req->data;
    strbuf_free(&c->out);
    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->close_after) {
        conn_linger(c);
        return;
    }
    request_reset(c);
    c->state = C_HEAD;
    wait_start(c, c->srv->idle_ms);
    conn_run(c); /* a pipelined request may be waiting in the buffer */
}

/* Sends a response, taking body; reading pauses until it is written. */
static void conn_respond(conn *c, int status, const char *ctype, strbuf *body)
{
    c->state = C_REPLY;
    read_off(c);
    wait_stop(c);
    c->out = *body;
    *body = (strbuf)STRBUF_INIT;
    bool bodiless = status == 204 || status == 304;
    size_t len = bodiless ? 0 : c->out.len;
    const char *connection = c->close_after ? "Connection: close\r\n"
                             : c->http10    ? "Connection: keep-alive\r\n"
                                            : "";
    int n = snprintf(c->head, sizeof c->head, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n",
                     status, reason_of(status), ctype, len, connection);
    if (n < 0 || (size_t)n >= sizeof c->head) { /* cannot happen: ctype is checked to be short */
        conn_close(c);
        return;
    }
    uv_buf_t bufs[2] = { { .base = c->head, .len = (size_t)n }, { .base = c->out.data, .len = len } };
    unsigned nbufs = c->head_only || !len ? 1 : 2;
    if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, bufs, nbufs, on_written) < 0)
        conn_close(c);
}

/* Answers a request the handler never sees, then ends the connection. */
static void conn_refuse(conn *c, int status)
{
    char msg[96];
    https_response res = { status, "application/json", STRBUF_INIT };
    refusal_text(c, status, msg, sizeof msg);
    https_reply_error(&res, status, msg);
    c->close_after = true;
    conn_respond(c, status, res.content_type, &res.body);
}

static const char continue_line[] = "HTTP/1.1 100 Continue\r\n\r\n";

static void on_continue_written(uv_write_t *req, int status)
{
    conn *c = req->data;
    c->continue_pending = false;
    if (status < 0 && !c->closing)
        conn_close(c);
}

/* "Expect: 100-continue": libcurl holds a larger body back for a second unless told to go on. */
static void send_continue(conn *c)
{
    if (c->continue_pending)
        return; /* the client will send the body after its own wait */
    uv_buf_t b = { .base = (char *)continue_line, .len = sizeof continue_line - 1 };
    if (uv_write(&c->continue_req, (uv_stream_t *)&c->tcp, &b, 1, on_continue_written) == 0)
        c->continue_pending = true;
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

/* The request is complete: runs the handler and sends what it answered. */
static void conn_dispatch(conn *c)
{
    https_server *s = c->srv;
    c->state = C_REPLY;
    read_off(c);
    wait_stop(c);
    if (c->meta.oom || c->body.oom) {
        https_response res = { 500, "application/json", STRBUF_INIT };
        https_reply_error(&res, 500, "out of memory");
        strbuf_free(&c->body);
        conn_respond(c, 500, res.content_type, &res.body);
        return;
    }
    const char *m = c->meta.data;
    https_request req = {
        .method = m,
        .path = m + c->at_path,
        .query = m + c->at_query,
        .authorization = c->at_auth != HTTPS_NONE ? m + c->at_auth : NULL,
        .content_type = c->at_ctype != HTTPS_NONE ? m + c->at_ctype : NULL,
        .body = c->body.data ? c->body.data : "",
        .body_len = c->body.len,
        .peer = c->peer,
    };
    https_response res = { 200, "application/json", STRBUF_INIT };
    s->handler(&req, &res, s->arg);
    strbuf_free(&c->body); /* answered: only the response is kept */
    if (c->closing) {      /* the handler freed the server */
        strbuf_free(&res.body);
        return;
    }
    const char *ctype = ctype_ok(res.content_type);
    if (res.body.oom || res.status < 200 || res.status > 599 || !ctype) {
        https_reply_error(&res, 500, res.body.oom ? "out of memory" : "handler produced an invalid response");
        if (res.body.oom) { /* no room for even the error text */
            strbuf_free(&res.body);
            res.body = (strbuf)STRBUF_INIT;
        }
        ctype = res.content_type;
    }
    conn_respond(c, res.status, ctype, &res.body);
}

/* ---- the request head ---- */

/* What the headers said, while they are parsed. */
typedef struct {
    bool        has_length, chunked, close, keep_alive, expect_continue;
    uint64_t    length;
    const char *auth, *ctype;
    size_t      auth_len, ctype_len;
} head_info;

/* Calls fn on each comma-separated element of a header value (trimmed, never empty); stops at its first non-zero
 * answer and returns it. */
static int list_each(const char *v, size_t n, head_info *h, int (*fn)(head_info *h, const char *e, size_t len))
{
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && v[j] != ',')
            j++;
        size_t a = i, b = j;
        while (a < b && is_ows(v[a]))
            a++;
        while (b > a && is_ows(v[b - 1]))
            b--;
        if (b > a) {
            int rc = fn(h, v + a, b - a);
            if (rc)
                return rc;
        }
        i = j + 1;
    }
    return 0;
}

static bool token_is(const char *e, size_t len, const char *word)
{
    return len == strlen(word) && strncasecmp(e, word, len) == 0;
}

static int hdr_content_length(head_info *h, const char *v, size_t n)
{
    uint64_t len = 0;
    if (n == 0)
        return 400;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return 400;
        len = len > UINT64_MAX / 10 - 1 ? UINT64_MAX : len * 10 + (uint64_t)(v[i] - '0'); /* huge stays huge: 413 */
    }
    if (h->has_length && h->length != len)
        return 400;
    h->has_length = true;
    h->length = len;
    return 0;
}

static int coding(head_info *h, const char *e, size_t len)
{
    if (!token_is(e, len, "chunked"))
        return 501;
    if (h->chunked)
        return 400; /* chunked twice */
    h->chunked = true;
    return 0;
}

static int hdr_transfer_encoding(head_info *h, const char *v, size_t n)
{
    int rc = list_each(v, n, h, coding);
    return rc ? rc : h->chunked ? 0 : 400;
}

static int connection_option(head_info *h, const char *e, size_t len)
{
    if (token_is(e, len, "close"))
        h->close = true;
    else if (token_is(e, len, "keep-alive"))
        h->keep_alive = true;
    return 0;
}

static int hdr_connection(head_info *h, const char *v, size_t n) { return list_each(v, n, h, connection_option); }

static int hdr_expect(head_info *h, const char *v, size_t n)
{
    if (token_is(v, n, "100-continue"))
        h->expect_continue = true;
    return 0;
}

static int hdr_authorization(head_info *h, const char *v, size_t n)
{
    if (!h->auth) {
        h->auth = v;
        h->auth_len = n;
    }
    return 0;
}

static int hdr_content_type(head_info *h, const char *v, size_t n)
{
    if (!h->ctype) {
        h->ctype = v;
        h->ctype_len = n;
    }
    return 0;
}

/* The headers the server reads; the others are skipped. Each answers 0 or the status to refuse with. */
static const struct {
    const char *name;
    int (*fn)(head_info *h, const char *v, size_t n);
} header_rules[] = {
    { "content-length", hdr_content_length }, { "transfer-encoding", hdr_transfer_encoding },
    { "connection", hdr_connection },         { "expect", hdr_expect },
    { "authorization", hdr_authorization },   { "content-type", hdr_content_type },
};

static int header_line(head_info *h, const char *p, size_t n)
{
    size_t name = 0;
    while (name < n && is_tchar((unsigned char)p[name]))
        name++;
    if (name == 0 || name == n || p[name] != ':')
        return 400; /* also a folded line (leading white space) or white space before the colon */
    const char *v = p + name + 1, *end = p + n;
    while (v < end && is_ows(*v))
        v++;
    while (end > v && is_ows(end[-1]))
        end--;
    for (const char *q = v; q < end; q++)
        if (((unsigned char)*q < 0x20 && *q != '\t') || *q == 0x7f)
            return 400;
    for (size_t i = 0; i < sizeof header_rules / sizeof header_rules[0]; i++)
        if (token_is(p, name, header_rules[i].name))
            return header_rules[i].fn(h, v, (size_t)(end - v));
    return 0;
}

/* Appends the path, percent-decoded ('+' is itself in a path). A %00 is refused: the path is a C string. */
static int path_decode(strbuf *b, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (p[i] == '%' && i + 2 < n && (hi = hexval((unsigned char)p[i + 1])) >= 0 &&
            (lo = hexval((unsigned char)p[i + 2])) >= 0) {
            if (hi == 0 && lo == 0)
                return 400;
            strbuf_putc(b, (char)(hi << 4 | lo));
            i += 2;
        } else {
            strbuf_putc(b, p[i]);
        }
    }
    return 0;
}

/* "GET /path?query HTTP/1.1": method, path and query go to meta. */
static int request_line(conn *c, const char *p, size_t n)
{
    const char *end = p + n, *sp1, *sp2;
    size_t m = 0;
    while (m < n && is_tchar((unsigned char)p[m]))
        m++;
    if (m == 0 || m == n || p[m] != ' ')
        return 400;
    sp1 = p + m;
    sp2 = sp1 + 1;
    while (sp2 < end && (unsigned char)*sp2 > 0x20 && *sp2 != 0x7f)
        sp2++;
    if (sp2 == sp1 + 1 || sp2 == end || *sp2 != ' ')
        return 400;
    const char *ver = sp2 + 1;
    if (end - ver != 8 || strncmp(ver, "HTTP/", 5) != 0 || !isdigit((unsigned char)ver[5]) || ver[6] != '.' ||
        !isdigit((unsigned char)ver[7]))
        return 400;
    if (ver[5] != '1')
        return 505;
    c->http10 = ver[7] == '0';

    /* The target: origin form "/a?b", absolute form "http://host/a?b" (its authority dropped), or "*". */
    const char *t = sp1 + 1, *tend = sp2;
    const char *hash = memchr(t, '#', (size_t)(tend - t));
    if (hash)
        tend = hash;
    size_t scheme = tend - t > 7 && strncasecmp(t, "http://", 7) == 0    ? 7
                    : tend - t > 8 && strncasecmp(t, "https://", 8) == 0 ? 8
                                                                          : 0;
    if (scheme) {
        t += scheme;
        while (t < tend && *t != '/' && *t != '?')
            t++;
    } else if (*t != '/' && !(tend - t == 1 && *t == '*')) {
        return 400;
    }
    const char *q = memchr(t, '?', (size_t)(tend - t));
    const char *pend = q ? q : tend;

    c->head_only = m == 4 && memcmp(p, "HEAD", 4) == 0;
    if (c->head_only)
        strbuf_puts(&c->meta, "GET");
    else
        strbuf_append(&c->meta, p, m);
    strbuf_putc(&c->meta, '\0');
    c->at_path = c->meta.len;
    if (pend == t)
        strbuf_putc(&c->meta, '/'); /* "http://host" or "http://host?x" */
    else if (path_decode(&c->meta, t, (size_t)(pend - t)))
        return 400;
    strbuf_putc(&c->meta, '\0');
    c->at_query = c->meta.len;
    if (q)
        strbuf_append(&c->meta, q + 1, (size_t)(tend - q - 1));
    strbuf_putc(&c->meta, '\0');
    return 0;
}

/* Length of the head at the start of p (up to and including the blank line), or 0 if it is not all there. Lines
 * end in CRLF, or LF alone as RFC 9112 lets a server accept. */
static size_t head_end(const char *p, size_t n)
{
    const char *q = p, *end = p + n;
    while ((q = memchr(q, '\n', (size_t)(end - q))) != NULL) {
        q++;
        if (q < end && *q == '\r')
            q++;
        if (q < end && *q == '\n')
            return (size_t)(q + 1 - p);
        if (q >= end)
            return 0;
    }
    return 0;
}

/* Parses the head p[0..n) (which ends with its blank line) into c and h. 0, or the status to refuse with. */
static int head_parse(conn *c, const char *p, size_t n, head_info *h)
{
    const char *end = p + n;
    bool first = true;
    for (const char *line = p; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t len = (size_t)(nl - line);
        if (len && line[len - 1] == '\r')
            len--;
        if (memchr(line, '\0', len) || memchr(line, '\r', len))
            return 400;
        int rc = first ? request_line(c, line, len) : len ? header_line(h, line, len) : 0;
        if (rc)
            return rc;
        if (!first && !len)
            break;
        first = false;
        line = nl + 1;
    }
    c->at_auth = c->at_ctype = HTTPS_NONE;
    if (h->auth) {
        c->at_auth = c->meta.len;
        strbuf_append(&c->meta, h->auth, h->auth_len);
        strbuf_putc(&c->meta, '\0');
    }
    if (h->ctype) {
        c->at_ctype = c->meta.len;
        strbuf_append(&c->meta, h->ctype, h->ctype_len);
        strbuf_putc(&c->meta, '\0');
    }
    if (h->chunked && h->has_length)
        return 400; /* a smuggling attempt, or a broken client: either way the framing is unsure */
    return 0;
}

/* ---- the request, step by step ---- */

/* What a step returns besides an HTTP status to refuse with. */
enum { STEP_NEXT = 0, STEP_MORE = 1 };

static int step_head(conn *c)
{
    if (!c->in_len)
        return STEP_MORE;
    size_t skip = 0; /* blank lines before a request line are allowed (some clients end a body with an extra CRLF) */
    while (skip < c->in_len && (c->in[skip] == '\r' || c->in[skip] == '\n'))
        skip++;
    consume(c, skip);
    size_t n = head_end(c->in, c->in_len);
    if (!n)
        return c->in_len >= HTTPS_MAX_HEAD ? 431 : STEP_MORE;
    head_info h = { 0 };
    int rc = head_parse(c, c->in, n, &h);
    consume(c, n); /* h's strings pointed into it: they are in meta now */
    if (rc)
        return rc;
    c->close_after = h.close || (c->http10 && !h.keep_alive);
    if (h.chunked) {
        c->state = C_CHUNK_SIZE;
    } else if (h.length > 0) {
        if (h.length > c->srv->max_body)
            return 413;
        c->left = h.length;
        c->state = C_BODY;
    } else {
        conn_dispatch(c);
        return STEP_NEXT;
    }
    if (h.expect_continue && !c->http10 && !c->in_len)
        send_continue(c);
    return STEP_NEXT;
}

/* Moves up to `left` buffered bytes into the body. */
static void body_take(conn *c)
{
    if (!c->in_len)
        return;
    size_t n = c->in_len < c->left ? c->in_len : (size_t)c->left;
    strbuf_append(&c->body, c->in, n);
    consume(c, n);
    c->left -= n;
}

static int step_body(conn *c)
{
    body_take(c);
    if (c->left)
        return STEP_MORE;
    conn_dispatch(c);
    return STEP_NEXT;
}

/* One line of chunked framing at the start of the buffer: its length without the line end, and the bytes to
 * consume with it; false when it is not all there yet. */
static bool framing_line(const conn *c, size_t *len, size_t *used)
{
    const char *nl = c->in_len ? memchr(c->in, '\n', c->in_len) : NULL;
    if (!nl)
        return false;
    *used = (size_t)(nl - c->in) + 1;
    *len = *used - 1;
    if (*len && c->in[*len - 1] == '\r')
        (*len)--;
    return true;
}

static int step_chunk_size(conn *c)
{
    size_t len, used, i = 0;
    if (!framing_line(c, &len, &used))
        return c->in_len >= HTTPS_MAX_HEAD ? 400 : STEP_MORE;
    uint64_t size = 0;
    int d;
    for (; i < len && (d = hexval((unsigned char)c->in[i])) >= 0; i++) {
        if (size > c->srv->max_body)
            return 413; /* before it could overflow */
        size = size << 4 | (uint64_t)d;
    }
    while (i < len && is_ows(c->in[i]))
        i++;
    if (i == 0 || (i < len && c->in[i] != ';') || memchr(c->in, '\r', len) || memchr(c->in, '\0', len))
        return 400;
    consume(c, used);
    if (size > c->srv->max_body - c->body.len)
        return 413;
    c->left = size;
    c->state = size ? C_CHUNK_DATA : C_TRAILER;
    return STEP_NEXT;
}

static int step_chunk_data(conn *c)
{
    body_take(c);
    if (c->left)
        return STEP_MORE;
    c->state = C_CHUNK_END;
    return STEP_NEXT;
}

static int step_chunk_end(conn *c)
{
    size_t len, used;
    if (!framing_line(c, &len, &used))
        return c->in_len >= 2 ? 400 : STEP_MORE;
    if (len)
        return 400;
    consume(c, used);
    c->state = C_CHUNK_SIZE;
    return STEP_NEXT;
}

static int step_trailer(conn *c)
{
    size_t len, used;
    if (!framing_line(c, &len, &used))
        return c->in_len >= HTTPS_MAX_HEAD ? 431 : STEP_MORE;
    c->trailer_len += used;
    if (c->trailer_len > HTTPS_MAX_HEAD)
        return 431;
    consume(c, used); /* trailer fields are not passed on */
    if (len)
        return STEP_NEXT;
    conn_dispatch(c);
    return STEP_NEXT;
}

static int (*const steps[])(conn *c) = {
    [C_HEAD] = step_head,
    [C_BODY] = step_body,
    [C_CHUNK_SIZE] = step_chunk_size,
    [C_CHUNK_DATA] = step_chunk_data,
    [C_CHUNK_END] = step_chunk_end,
    [C_TRAILER] = step_trailer,
};

/* Feeds the buffered bytes to the request's steps until they need more (then reads on), a response is under way,
 * or the connection is closing. */
static void conn_run(conn *c)
{
    while (!c->closing && c->state < C_REPLY) {
        int rc = steps[c->state](c);
        if (rc == STEP_MORE) {
            read_on(c);
            return;
        }
        if (rc != STEP_NEXT) {
            conn_refuse(c, rc);
            return;
        }
    }
}

/* ---- accepting ---- */

static void peer_name(conn *c)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    c->peer[0] = '\0';
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) < 0)
        return;
    if (ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, c->peer, sizeof c->peer);
    } else if (ss.ss_family == AF_INET6) {
        const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) /* an IPv4 client of a dual-stack socket */
            inet_ntop(AF_INET, &a->s6_addr[12], c->peer, sizeof c->peer);
        else
            inet_ntop(AF_INET6, a, c->peer, sizeof c->peer);
    }
}

static void on_rejected(uv_handle_t *h) { free(h); }

/* Takes the pending connection off the backlog and closes it. */
static void reject(https_server *s)
{
    uv_tcp_t *t = malloc(sizeof *t);
    if (!t || uv_tcp_init(s->loop, t) < 0) {
        free(t);
        s->accept_stalled = true; /* libuv stops watching the listener until the next uv_accept */
        return;
    }
    (void)uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)t);
    uv_close((uv_handle_t *)t, on_rejected);
}

static void server_accept(https_server *s)
{
    s->accept_stalled = false;
    conn *c = s->nconns < HTTPS_MAX_CONNS ? calloc(1, sizeof *c) : NULL;
    if (!c || uv_tcp_init(s->loop, &c->tcp) < 0) {
        free(c);
        reject(s);
        return;
    }
    c->tcp.data = c->write_req.data = c->continue_req.data = c->shutdown_req.data = c;
    c->srv = s;
    s->nconns++;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    if (uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return;
    }
    peer_name(c);
    uv_tcp_nodelay(&c->tcp, 1); /* a response is one write: nothing to gain from Nagle, a delayed ACK to lose */
    c->state = C_HEAD;
    wait_start(c, s->idle_ms);
    read_on(c);
}

static void on_connection(uv_stream_t *l, int status)
{
    https_server *s = l->data;
    if (status < 0 || s->closing)
        return;
    server_accept(s);
}

/* ---- listening ---- */

/* The address to bind for host:port. NULL is every address: "::" (dual-stack: libuv clears IPV6_V6ONLY), and
 * *fallback is set so that the caller tries "0.0.0.0" where the system has no IPv6. A literal needs no lookup; a
 * name is resolved once. 0, or -1 with *why. */
static int bind_addr(const char *host, int port, struct sockaddr_storage *ss, bool *fallback, const char **why)
{
    memset(ss, 0, sizeof *ss);
    *fallback = false;
    if (!host) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_any;
        a->sin6_port = htons((uint16_t)port);
        *fallback = true;
        return 0;
    }
    char name[256], portstr[8];
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') /* "[::1]" */
        snprintf(name, sizeof name, "%.*s", (int)(n - 2), host + 1);
    else
        snprintf(name, sizeof name, "%s", host);
    snprintf(portstr, sizeof portstr, "%d", port);
    struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM }, *ai = NULL;
    int rc = getaddrinfo(name, portstr, &hints, &ai);
    if (rc) {
        *why = gai_strerror(rc);
        return -1;
    }
    memcpy(ss, ai->ai_addr, ai->ai_addrlen < sizeof *ss ? ai->ai_addrlen : sizeof *ss);
    freeaddrinfo(ai);
    return 0;
}

static void ipv4_any(struct sockaddr_storage *ss, int port)
{
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    memset(ss, 0, sizeof *ss);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_ANY);
    a->sin_port = htons((uint16_t)port);
}

static void listen_error(char *err, size_t errlen, const char *host, int port, const char *why)
{
    if (err && errlen)
        snprintf(err, errlen, "cannot listen on %s:%d: %s", host ? host : "0.0.0.0", port, why);
}

static void on_server_handle_closed(uv_handle_t *h)
{
    https_server *s = h->data;
    s->handles--;
    server_maybe_free(s);
}

/* Binds and listens on the server's listener; 0 or a libuv error (EADDRINUSE shows at uv_listen). */
static int listener_start(https_server *s, const struct sockaddr_storage *ss)
{
    int rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)ss, 0);
    return rc ? rc : uv_listen((uv_stream_t *)&s->listener, HTTPS_BACKLOG, on_connection);
}

https_server *https_listen(uv_loop_t *loop, const https_opts *opts, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!loop || !opts || !opts->handler || opts->port < 0 || opts->port > 65535) {
        if (err && errlen)
            snprintf(err, errlen, "https_listen: a loop, a handler and a port from 0 to 65535 are required");
        return NULL;
    }
    struct sockaddr_storage ss;
    bool fallback;
    const char *why = NULL;
    if (bind_addr(opts->host, opts->port, &ss, &fallback, &why) < 0) {
        listen_error(err, errlen, opts->host, opts->port, why);
        return NULL;
    }
    https_server *s = calloc(1, sizeof *s);
    if (!s || uv_tcp_init(loop, &s->listener) < 0) {
        free(s);
        if (err && errlen)
            snprintf(err, errlen, "https_listen: out of memory");
        return NULL;
    }
    s->loop = loop;
    s->handler = opts->handler;
    s->arg = opts->arg;
    s->max_body = opts->max_body ? opts->max_body : HTTPS_DEFAULT_MAX_BODY;
    s->idle_ms = HTTPS_DEFAULT_IDLE_MS;
    s->listener.data = s->timer.data = s;
    s->handles = 1;
    uv_timer_init(loop, &s->timer); /* cannot fail */
    s->handles++;

    int rc = listener_start(s, &ss);
    if (rc == UV_EAFNOSUPPORT && fallback) { /* no IPv6 here; the listener has no socket yet, so it can try again */
        ipv4_any(&ss, opts->port);
        rc = listener_start(s, &ss);
    }
    struct sockaddr_storage bound;
    int len = sizeof bound;
    if (!rc)
        rc = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len);
    if (rc) {
        listen_error(err, errlen, opts->host, opts->port, strerror(-rc));
        s->closing = true;
        uv_close((uv_handle_t *)&s->listener, on_server_handle_closed);
        uv_close((uv_handle_t *)&s->timer, on_server_handle_closed);
        return NULL;
    }
    s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                 : ((struct sockaddr_in *)&bound)->sin_port);
    return s;
}

int https_port(const https_server *s) { return s ? s->port : -1; }

void https_set_idle_timeout(https_server *s, unsigned ms)
{
    if (s)
        s->idle_ms = ms ? ms : HTTPS_DEFAULT_IDLE_MS;
}

void https_free(https_server *s)
{
    if (!s || s->closing)
        return;
    s->closing = true;
    uv_close((uv_handle_t *)&s->listener, on_server_handle_closed);
    uv_close((uv_handle_t *)&s->timer, on_server_handle_closed);
    while (s->conns)
        conn_close(s->conns);
}

/* ---- helpers for handlers ---- */

/* One decoded byte of a query component ('+' is a space, %XY a byte, a stray '%' itself), -1 at end. */
static int pct_next(const char **p, const char *end)
{
    if (*p >= end)
        return -1;
    unsigned char ch = (unsigned char)*(*p)++;
    if (ch == '+')
        return ' ';
    if (ch != '%' || end - *p < 2)
        return ch;
    int hi = hexval((unsigned char)(*p)[0]), lo = hexval((unsigned char)(*p)[1]);
    if (hi < 0 || lo < 0)
        return ch;
    *p += 2;
    return hi << 4 | lo;
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
