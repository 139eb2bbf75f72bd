/* h1.c — one HTTP/1.1 exchange over plain TCP on libuv; see h1.h for why it exists.
 *
 * An exchange is a straight line: dial (common/dial: resolve unless the host is an address literal, connect to each
 * address in turn until one answers) → write the head and the body → read the response through a small parser →
 * on_done. Reading starts as soon as the connection is up, so a server that answers before it has read the whole body
 * (a 413, say) is heard: a failed write only matters if no response follows it.
 *
 * The parser is a state machine fed with whatever arrives: the head is gathered (at most H1_MAX_HEAD bytes) and
 * parsed whole; the body is handed on in the pieces it arrived in, framed by Content-Length, by chunked transfer
 * coding (extensions and trailers skipped), or by the end of the connection.
 *
 * Lifetimes: the exchange owns its timer (the whole exchange's limit; the dial keeps the connect limit), the dial
 * while it runs (aborted if the exchange ends first) and then the TCP handle the dial hands over (or the pool
 * lends). `pending` counts the handles that have not come back (close callbacks, or the connection handed to the
 * pool); once the exchange is over (`over`: on_done called or h1_abort()) the last one to come back frees it. No
 * callback reaches the caller after `over` is set.
 *
 * Keep-alive: when a response that leaves the connection reusable has arrived whole and nothing followed its last
 * byte, the connection goes to the pool before on_done runs — so that a request the callback starts can take it.
 * An idle connection in the pool keeps reading: an end, an error or a stray byte closes it.
 * A request sent over a connection taken from the pool that ends without a byte of answer was most likely sent as
 * the server closed that connection for idleness: it is sent once more, on a new connection. */
#include "iac/h1.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "iac/dial.h"
#include "iac/strbuf.h"

#define H1_MAX_HEAD    (64 * 1024) /* a response head larger than this is refused */
#define H1_READ_CHUNK  (16 * 1024) /* one read, and one piece of a streamed request body */
#define H1_MAX_CHUNK   ((uint64_t)1 << 60)

typedef enum {
    P_HEAD,       /* gathering the status line and headers */
    P_BODY_LEN,   /* Content-Length bytes left in `left` */
    P_BODY_EOF,   /* the body ends with the connection */
    P_CHUNK_SIZE, /* reading a chunk-size line (hex digits, then maybe extensions) */
    P_CHUNK_DATA, /* `left` bytes of chunk data */
    P_CHUNK_END,  /* the CRLF after chunk data */
    P_TRAILER,    /* trailer lines up to the blank one */
} parse_state;

struct h1_exchange {
    uv_loop_t       *loop;
    h1_callbacks     cb;
    void            *arg;
    char            *host;
    uint16_t         port;
    char            *out;          /* head, then the in-memory body */
    size_t           out_len;
    int64_t          body_size, body_sent; /* streamed body */
    bool             head_only;
    uint64_t         connect_timeout_ms, timeout_ms;

    uv_timer_t       total_timer;
    dial            *dial;         /* the connection being made, or NULL */
    uv_tcp_t        *tcp;          /* the dial's handle once connected; NULL once closing */
    uv_write_t       write_req;
    int              write_error;  /* a failed write, reported only if no response comes */
    unsigned         pending;
    bool             over;
    h1_pool         *pool;
    bool             reuse;        /* may take an idle connection of the pool (h1_request.reuse) */
    bool             reused;       /* the connection came from the pool and has not answered yet */
    bool             keep;         /* the response leaves the connection reusable (head_parse) */
    bool             write_done;   /* the whole request is written */
    bool             finished_ok;  /* finish(H1_OK) */
    size_t           trailing;     /* bytes of the last read after the response's end (set before finish) */

    parse_state      ps;
    strbuf           headbuf;
    int              status;
    int64_t          left;
    uint64_t         chunk_size;
    bool             chunk_digits, chunk_ext;
    size_t           trailer_line;
    bool             got_head;
    char             rbuf[H1_READ_CHUNK];
    char             sbuf[H1_READ_CHUNK];
};

/* ---- the pool of idle connections ---- */

typedef struct h1_idle h1_idle;

struct h1_idle {
    h1_pool  *pool;
    uv_tcp_t *tcp;
    char     *host;
    uint16_t  port;
    uint64_t  since;         /* uv_now when it went idle */
    h1_idle  *newer, *older;
};

struct h1_pool {
    uv_loop_t *loop;
    unsigned   max_idle, n;
    uint64_t   idle_ms;
    h1_idle   *newest, *oldest;
    uv_timer_t timer;        /* the oldest one's end */
    unsigned   handles;      /* the timer and the connections being closed */
    bool       freed;
    char       sink[64];     /* what an idle connection reads is dropped, and the connection with it */
};

static void pool_came_back(h1_pool *p)
{
    if (--p->handles == 0 && p->freed)
        free(p);
}

static void pool_timer_closed(uv_handle_t *h) { pool_came_back(h->data); }

static void idle_closed(uv_handle_t *h)
{
    h1_idle *e = h->data;
    h1_pool *p = e->pool;
    free(h); /* the dial made it (dial.h) */
    free(e->host);
    free(e);
    pool_came_back(p);
}

static void idle_unlink(h1_pool *p, h1_idle *e)
{
    *(e->newer ? &e->newer->older : &p->newest) = e->older;
    *(e->older ? &e->older->newer : &p->oldest) = e->newer;
    p->n--;
}

static void idle_close(h1_pool *p, h1_idle *e)
{
    idle_unlink(p, e);
    p->handles++;
    uv_close((uv_handle_t *)e->tcp, idle_closed);
}

static void on_pool_timer(uv_timer_t *t);

/* The timer runs while something is idle, for the oldest one's end. */
static void pool_arm(h1_pool *p)
{
    if (!p->oldest) {
        uv_timer_stop(&p->timer);
        return;
    }
    uint64_t now = uv_now(p->loop), due = p->oldest->since + p->idle_ms;
    uv_timer_start(&p->timer, on_pool_timer, due > now ? due - now : 0, 0);
}

static void on_pool_timer(uv_timer_t *t)
{
    h1_pool *p = t->data;
    uint64_t now = uv_now(p->loop);
    while (p->oldest && p->oldest->since + p->idle_ms <= now)
        idle_close(p, p->oldest);
    pool_arm(p);
}

static void idle_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    h1_idle *e = h->data;
    *buf = uv_buf_init(e->pool->sink, sizeof e->pool->sink);
}

static void idle_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    h1_idle *e = s->data;
    if (nread != 0) /* the server closed it, it broke, or it says something no request asked for */
        idle_close(e->pool, e);
}

/* Takes tcp (connected, reading with the exchange's callbacks, no write in flight) as an idle connection to
 * host:port. false when the pool cannot: the caller closes it. */
static bool pool_put(h1_pool *p, uv_tcp_t *tcp, const char *host, uint16_t port)
{
    if (p->freed || p->max_idle == 0)
        return false;
    h1_idle *e = calloc(1, sizeof *e);
    if (!e || !(e->host = strdup(host))) {
        free(e);
        return false;
    }
    uv_read_stop((uv_stream_t *)tcp);
    tcp->data = e;
    if (uv_read_start((uv_stream_t *)tcp, idle_alloc, idle_read) < 0) {
        free(e->host);
        free(e);
        return false;
    }
    if (p->n == p->max_idle)
        idle_close(p, p->oldest);
    e->pool = p;
    e->tcp = tcp;
    e->port = port;
    e->since = uv_now(p->loop);
    e->older = p->newest;
    *(p->newest ? &p->newest->newer : &p->oldest) = e;
    p->newest = e;
    p->n++;
    uv_unref((uv_handle_t *)tcp);
    if (!uv_is_active((uv_handle_t *)&p->timer))
        pool_arm(p);
    return true;
}

/* The connection to host:port that went idle last, no longer reading; NULL when there is none. */
static uv_tcp_t *pool_take(h1_pool *p, const char *host, uint16_t port)
{
    for (h1_idle *e = p->newest; e; e = e->older) {
        if (e->port != port || strcmp(e->host, host) != 0)
            continue;
        uv_tcp_t *tcp = e->tcp;
        idle_unlink(p, e);
        uv_read_stop((uv_stream_t *)tcp);
        uv_ref((uv_handle_t *)tcp);
        free(e->host);
        free(e);
        if (!p->oldest)
            uv_timer_stop(&p->timer);
        return tcp;
    }
    return NULL;
}

h1_pool *h1_pool_new(uv_loop_t *loop, unsigned max_idle, uint64_t idle_ms)
{
    h1_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->loop = loop;
    p->max_idle = max_idle;
    p->idle_ms = idle_ms;
    uv_timer_init(loop, &p->timer);
    p->timer.data = p;
    uv_unref((uv_handle_t *)&p->timer);
    p->handles = 1;
    return p;
}

void h1_pool_free(h1_pool *p)
{
    if (!p)
        return;
    p->freed = true;
    while (p->newest)
        idle_close(p, p->newest);
    uv_close((uv_handle_t *)&p->timer, pool_timer_closed);
}

unsigned h1_pool_idle(const h1_pool *p)
{
    return p ? p->n : 0;
}

/* ---- lifetimes ---- */

static void x_free(h1_exchange *x)
{
    strbuf_free(&x->headbuf);
    free(x->host);
    free(x->out);
    free(x);
}

static void x_came_back(h1_exchange *x)
{
    if (--x->pending == 0 && x->over)
        x_free(x);
}

static void on_closed(uv_handle_t *h) { x_came_back(h->data); }

static void on_tcp_closed(uv_handle_t *h)
{
    h1_exchange *x = h->data;
    dial_tcp_closed(h);
    x_came_back(x);
}

/* Stops everything; the memory goes when the last handle is back. */
static void x_stop(h1_exchange *x)
{
    x->over = true;
    x->pending++; /* held until the end of this function, so that nothing frees x under us */
    if (x->dial) {
        dial_abort(x->dial);
        x->dial = NULL;
    }
    if (x->tcp && x->finished_ok && x->keep && x->write_done && x->trailing == 0 && x->pool &&
        pool_put(x->pool, x->tcp, x->host, x->port)) {
        x->tcp = NULL;
        x->pending--; /* the handle is the pool's now; held above, so x stays */
    } else if (x->tcp) {
        uv_close((uv_handle_t *)x->tcp, on_tcp_closed);
        x->tcp = NULL;
    }
    uv_close((uv_handle_t *)&x->total_timer, on_closed);
    x_came_back(x);
}

static void finish(h1_exchange *x, int error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Ends the exchange with on_done (once). */
static void finish(h1_exchange *x, int error, const char *fmt, ...)
{
    if (x->over)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    x->pending++; /* the callback runs before x can go */
    x->finished_ok = error == H1_OK;
    x_stop(x);
    x->cb.on_done(x->arg, error, msg);
    x_came_back(x);
}

void h1_abort(h1_exchange *x)
{
    if (x && !x->over)
        x_stop(x);
}

/* ---- the response ---- */

static bool deliver(h1_exchange *x, const char *p, size_t n)
{
    if (n == 0)
        return true;
    if (!x->cb.on_body(x->arg, p, n)) {
        finish(x, H1_E_ABORTED, "stopped by the receiver");
        return false;
    }
    return true;
}

/* Header names compared without case; the value with surrounding blanks trimmed. */
static bool header_is(const char *line, size_t len, const char *name, const char **value, size_t *vlen)
{
    size_t n = strlen(name);
    if (len <= n || strncasecmp(line, name, n) || line[n] != ':')
        return false;
    const char *v = line + n + 1, *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *value = v;
    *vlen = (size_t)(end - v);
    return true;
}

/* Parses the head in x->headbuf (ending with the blank line). 1: a final response, the body state is set and
 * location (malloc'd or NULL) returned; 0: an interim 1xx, skipped; -1: broken (finish() was called). */
static int head_parse(h1_exchange *x, char **location)
{
    char *p = x->headbuf.data, *end = p + x->headbuf.len;
    int major, minor, status, used = 0;
    if (sscanf(p, "HTTP/%d.%d %3d%n", &major, &minor, &status, &used) != 3 || major != 1 || status < 100 ||
        status > 999 || (p[used] != ' ' && p[used] != '\r' && p[used] != '\n')) {
        finish(x, H1_E_PROTOCOL, "the answer is not an HTTP/1.x response");
        return -1;
    }
    if (status >= 100 && status <= 199) {
        if (status == 101) {
            finish(x, H1_E_PROTOCOL, "the server switched protocols (101), which was not asked for");
            return -1;
        }
        return 0;
    }
    int64_t length = -1;
    bool chunked = false, close = false;
    *location = NULL;
    for (char *line = memchr(p, '\n', (size_t)(end - p)); line && ++line < end;) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t len = (size_t)((nl ? nl : end) - line);
        if (len > 0 && line[len - 1] == '\r')
            len--;
        const char *v;
        size_t vlen;
        if (header_is(line, len, "Content-Length", &v, &vlen)) {
            char num[24];
            char *stop;
            if (vlen == 0 || vlen >= sizeof num || !isdigit((unsigned char)v[0]))
                goto bad_length;
            memcpy(num, v, vlen);
            num[vlen] = '\0';
            long long n = strtoll(num, &stop, 10);
            if (*stop || n < 0 || (length >= 0 && n != length))
                goto bad_length;
            length = n;
        } else if (header_is(line, len, "Transfer-Encoding", &v, &vlen)) {
            /* chunked must be the last coding; anything else we cannot decode */
            chunked = vlen >= 7 && !strncasecmp(v + vlen - 7, "chunked", 7);
            if (!chunked) {
                free(*location);
                finish(x, H1_E_PROTOCOL, "the response uses a transfer coding this client does not decode");
                return -1;
            }
        } else if (header_is(line, len, "Connection", &v, &vlen)) {
            for (size_t i = 0; i + 5 <= vlen; i++) /* a "close" token among the values */
                if (!strncasecmp(v + i, "close", 5) && (i == 0 || v[i - 1] == ',' || v[i - 1] == ' ') &&
                    (i + 5 == vlen || v[i + 5] == ',' || v[i + 5] == ' '))
                    close = true;
        } else if (header_is(line, len, "Location", &v, &vlen) && !*location) {
            if (!(*location = strndup(v, vlen))) {
                finish(x, H1_E_NOMEM, "out of memory");
                return -1;
            }
        }
        line = nl;
    }
    x->status = status;
    if (x->head_only || status == 204 || status == 304)
        x->left = 0, x->ps = P_BODY_LEN;
    else if (chunked)
        x->ps = P_CHUNK_SIZE;
    else if (length >= 0)
        x->left = length, x->ps = P_BODY_LEN;
    else
        x->ps = P_BODY_EOF;
    x->keep = minor >= 1 && !close && x->ps != P_BODY_EOF;
    return 1;

bad_length:
    free(*location);
    *location = NULL;
    finish(x, H1_E_PROTOCOL, "the response has an invalid Content-Length");
    return -1;
}

/* Takes head bytes from p; returns how many were used (the rest belongs to the body), or -1 after finish(). */
static ssize_t feed_head(h1_exchange *x, const char *p, size_t n)
{
    size_t old = x->headbuf.len, want = n;
    if (want > H1_MAX_HEAD + 4 - old)
        want = H1_MAX_HEAD + 4 - old;
    strbuf_append(&x->headbuf, p, want);
    if (x->headbuf.oom) {
        finish(x, H1_E_NOMEM, "out of memory");
        return -1;
    }
    size_t from = old >= 3 ? old - 3 : 0;
    char *end = memmem(x->headbuf.data + from, x->headbuf.len - from, "\r\n\r\n", 4);
    if (!end) {
        if (x->headbuf.len > H1_MAX_HEAD) {
            finish(x, H1_E_PROTOCOL, "the response head is larger than %d KiB", H1_MAX_HEAD / 1024);
            return -1;
        }
        return (ssize_t)want;
    }
    size_t head_len = (size_t)(end + 4 - x->headbuf.data);
    size_t used = head_len - old;
    x->headbuf.len = head_len;
    x->headbuf.data[head_len] = '\0';

    char *location = NULL;
    int rc = head_parse(x, &location);
    strbuf_reset(&x->headbuf);
    if (rc <= 0)
        return rc < 0 ? -1 : (ssize_t)used; /* an interim response: the next head follows */
    x->got_head = true;
    bool go_on = x->cb.on_head(x->arg, x->status, location);
    free(location);
    if (!go_on) {
        finish(x, H1_E_ABORTED, "stopped by the receiver");
        return -1;
    }
    if (x->ps == P_BODY_LEN && x->left == 0) {
        x->trailing = n - used;
        finish(x, H1_OK, "%s", "");
    }
    return (ssize_t)used;
}

/* One byte of a chunk-size line or of the CRLF after chunk data or of the trailer. false after finish(). */
static bool feed_chunk_byte(h1_exchange *x, char c)
{
    switch (x->ps) {
    case P_CHUNK_SIZE:
        if (c == '\n') {
            if (!x->chunk_digits)
                break;
            if (x->chunk_size == 0) {
                x->ps = P_TRAILER;
                x->trailer_line = 0;
            } else {
                x->ps = P_CHUNK_DATA;
                x->left = (int64_t)x->chunk_size;
            }
            x->chunk_size = 0;
            x->chunk_digits = x->chunk_ext = false;
            return true;
        }
        if (x->chunk_ext || c == '\r')
            return true;
        if (c == ';' || c == ' ' || c == '\t') {
            x->chunk_ext = x->chunk_digits;
            if (!x->chunk_ext)
                break;
            return true;
        }
        if (!isxdigit((unsigned char)c) || x->chunk_size >= H1_MAX_CHUNK / 16)
            break;
        x->chunk_size = x->chunk_size * 16 + (uint64_t)(isdigit((unsigned char)c) ? c - '0' : (c | 0x20) - 'a' + 10);
        x->chunk_digits = true;
        return true;
    case P_CHUNK_END:
        if (c == '\r')
            return true;
        if (c != '\n')
            break;
        x->ps = P_CHUNK_SIZE;
        return true;
    case P_TRAILER:
        if (c == '\r')
            return true;
        if (c == '\n') {
            if (x->trailer_line == 0) {
                finish(x, H1_OK, "%s", "");
                return false;
            }
            x->trailer_line = 0;
        } else {
            x->trailer_line++;
        }
        return true;
    default:
        break;
    }
    finish(x, H1_E_PROTOCOL, "the response's chunked body is malformed");
    return false;
}

/* x->trailing is set before each step that may end the response: what of this read follows it. */
static void feed(h1_exchange *x, const char *p, size_t n)
{
    while (n > 0 && !x->over) {
        size_t take;
        switch (x->ps) {
        case P_HEAD: {
            ssize_t used = feed_head(x, p, n);
            if (used < 0)
                return;
            take = (size_t)used;
            break;
        }
        case P_BODY_LEN:
        case P_CHUNK_DATA:
            take = (uint64_t)x->left < n ? (size_t)x->left : n;
            if (!deliver(x, p, take))
                return;
            x->left -= (int64_t)take;
            if (x->left == 0) {
                if (x->ps == P_BODY_LEN) {
                    x->trailing = n - take;
                    finish(x, H1_OK, "%s", "");
                    return;
                }
                x->ps = P_CHUNK_END;
            }
            break;
        case P_BODY_EOF:
            take = n;
            if (!deliver(x, p, take))
                return;
            break;
        default:
            take = 1;
            x->trailing = n - 1;
            if (!feed_chunk_byte(x, *p))
                return;
            break;
        }
        p += take;
        n -= take;
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    h1_exchange *x = h->data;
    *buf = uv_buf_init(x->rbuf, sizeof x->rbuf);
}

static void on_dialed(void *arg, uv_tcp_t *tcp, int error, const char *msg);

/* A connection from the pool ended without a byte of answer: the server most likely closed it for idleness as it
 * was taken. The request is sent again on a new connection (only requests that may be sent twice take one). */
static void redial(h1_exchange *x)
{
    uv_close((uv_handle_t *)x->tcp, on_tcp_closed);
    x->tcp = NULL;
    x->reused = false;
    x->write_error = 0;
    x->write_done = false;
    x->dial = dial_start(x->loop, x->host, x->port, x->connect_timeout_ms, on_dialed, x);
    if (!x->dial)
        finish(x, H1_E_NOMEM, "out of memory");
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    h1_exchange *x = s->data;
    if (x->over)
        return;
    if (nread > 0) {
        x->reused = false; /* it answered */
        feed(x, buf->base, (size_t)nread);
        return;
    }
    if (nread == 0)
        return;
    if (x->reused && !x->got_head && x->headbuf.len == 0)
        redial(x);
    else if (nread == UV_EOF && x->ps == P_BODY_EOF)
        finish(x, H1_OK, "%s", "");
    else if (!x->got_head && x->write_error)
        finish(x, H1_E_PROTOCOL, "cannot send the request to %s port %u: %s", x->host, x->port,
               uv_strerror(x->write_error));
    else if (nread == UV_EOF && !x->got_head && x->headbuf.len == 0)
        finish(x, H1_E_PROTOCOL, "%s port %u closed the connection without an answer", x->host, x->port);
    else if (nread == UV_EOF)
        finish(x, H1_E_PROTOCOL, "%s port %u closed the connection before the whole response arrived", x->host,
               x->port);
    else
        finish(x, H1_E_PROTOCOL, "the connection to %s port %u broke: %s", x->host, x->port, uv_strerror((int)nread));
}

/* ---- the request ---- */

static void send_more(h1_exchange *x);

static void on_written(uv_write_t *w, int status)
{
    h1_exchange *x = w->data;
    if (x->over || status == UV_ECANCELED || w->handle != (uv_stream_t *)x->tcp)
        return; /* ended, or a write on a connection given up (redial) */
    if (status < 0) {
        x->write_error = status; /* the answer, if one comes, says why; else on_read reports this */
        return;
    }
    send_more(x);
}

/* Sends the next piece of a streamed body, if any is left. */
static void send_more(h1_exchange *x)
{
    if (!x->cb.read_body || x->body_sent >= x->body_size) {
        x->write_done = true;
        return;
    }
    size_t want = sizeof x->sbuf;
    if ((uint64_t)(x->body_size - x->body_sent) < want)
        want = (size_t)(x->body_size - x->body_sent);
    size_t got = x->cb.read_body(x->arg, x->sbuf, want);
    if (x->over)
        return;
    if (got == H1_BODY_ABORT || got == 0 || got > want) {
        finish(x, H1_E_ABORTED, "the request body source failed");
        return;
    }
    x->body_sent += (int64_t)got;
    uv_buf_t b = uv_buf_init(x->sbuf, (unsigned)got);
    int rc = uv_write(&x->write_req, (uv_stream_t *)x->tcp, &b, 1, on_written);
    if (rc < 0)
        x->write_error = rc;
}

/* Makes tcp the exchange's connection: reading at once, then the request. 0, or a libuv error with the
 * connection closed. */
static int x_attach(h1_exchange *x, uv_tcp_t *tcp)
{
    x->tcp = tcp;
    tcp->data = x;
    x->pending++;
    int rc = uv_read_start((uv_stream_t *)tcp, on_alloc, on_read);
    uv_buf_t b = uv_buf_init(x->out, (unsigned)x->out_len);
    if (rc == 0)
        rc = uv_write(&x->write_req, (uv_stream_t *)tcp, &b, 1, on_written);
    if (rc < 0) {
        uv_close((uv_handle_t *)tcp, on_tcp_closed);
        x->tcp = NULL;
    }
    return rc;
}

/* The dial's end: a connected handle (read at once, then the request), or why there is none. */
static void on_dialed(void *arg, uv_tcp_t *tcp, int error, const char *msg)
{
    /* What each dial failure is to the caller. */
    static const struct { int dial; int h1; } errors[] = {
        { DIAL_E_RESOLVE, H1_E_CONNECT },
        { DIAL_E_CONNECT, H1_E_CONNECT },
        { DIAL_E_TIMEOUT, H1_E_TIMEOUT },
        { DIAL_E_NOMEM, H1_E_NOMEM },
    };
    h1_exchange *x = arg;
    x->dial = NULL;
    if (error != DIAL_OK) {
        int h1_error = H1_E_CONNECT;
        for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
            if (errors[i].dial == error)
                h1_error = errors[i].h1;
        finish(x, h1_error, "%s", msg);
        return;
    }
    uv_tcp_nodelay(tcp, 1); /* a pooled connection keeps it */
    int rc = x_attach(x, tcp);
    if (rc < 0)
        finish(x, H1_E_CONNECT, "cannot talk to %s port %u: %s", x->host, x->port, uv_strerror(rc));
}

static void on_total_timeout(uv_timer_t *t)
{
    h1_exchange *x = t->data;
    finish(x, H1_E_TIMEOUT, "no complete response from %s port %u within %llu ms", x->host, x->port,
           (unsigned long long)x->timeout_ms);
}

h1_exchange *h1_start(uv_loop_t *loop, const h1_request *req, const h1_callbacks *cb, void *arg)
{
    if (!loop || !req || !cb || !req->host || !req->host[0] || !req->head || !req->head_len || !cb->on_head ||
        !cb->on_body || !cb->on_done || (req->body_size > 0 && (!cb->read_body || req->body)))
        return NULL;
    h1_exchange *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    x->loop = loop;
    x->cb = *cb;
    x->arg = arg;
    x->port = req->port;
    x->host = strdup(req->host);
    x->out_len = req->head_len + (req->body ? req->body_len : 0);
    x->out = malloc(x->out_len);
    if (!x->host || !x->out) {
        x_free(x);
        return NULL;
    }
    memcpy(x->out, req->head, req->head_len);
    if (req->body && req->body_len)
        memcpy(x->out + req->head_len, req->body, req->body_len);
    if (!cb->read_body || req->body_size <= 0)
        x->cb.read_body = NULL;
    x->body_size = x->cb.read_body ? req->body_size : 0;
    x->head_only = req->head_only;
    x->connect_timeout_ms = req->connect_timeout_ms;
    x->timeout_ms = req->timeout_ms;
    x->write_req.data = x;
    x->pool = req->pool;
    x->reuse = req->pool && req->reuse && !x->cb.read_body;
    if (uv_timer_init(loop, &x->total_timer) < 0) {
        x_free(x);
        return NULL;
    }
    x->total_timer.data = x;
    x->pending = 1;
    if (x->timeout_ms)
        uv_timer_start(&x->total_timer, on_total_timeout, x->timeout_ms, 0);
    /* An idle connection takes the request at once (its answer, or its failure, comes on a later loop turn). */
    uv_tcp_t *idle = x->reuse ? pool_take(x->pool, x->host, x->port) : NULL;
    if (idle && x_attach(x, idle) == 0) {
        x->reused = true;
        return x;
    }
    /* The dial calls back on a later loop turn, so that even a failure at once reaches on_done after h1_start()
     * has returned the handle. */
    x->dial = dial_start(loop, x->host, x->port, x->connect_timeout_ms, on_dialed, x);
    if (!x->dial) {
        x_stop(x); /* no callback will run; the memory goes with the timer */
        return NULL;
    }
    return x;
}

/* ---- URLs ---- */

static bool url_chars_ok(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || *s == 0x7f)
            return false;
    return true;
}

int h1_url_parse(const char *url, h1_url *out)
{
    memset(out, 0, sizeof *out);
    const char *p;
    if (!url || !url_chars_ok(url))
        return -1;
    if (!strncasecmp(url, "http://", 7))
        p = url + 7;
    else if (!strncasecmp(url, "https://", 8))
        p = url + 8, out->https = true;
    else
        return -1;
    size_t alen = strcspn(p, "/?#");
    const char *aend = p + alen, *host = p, *hend;
    if (memchr(p, '@', alen))
        return -1;
    if (*p == '[') {
        host = p + 1;
        hend = memchr(host, ']', (size_t)(aend - host));
        if (!hend)
            return -1;
        p = hend + 1;
    } else {
        hend = memchr(p, ':', alen);
        if (!hend)
            hend = aend;
        p = hend;
    }
    size_t hlen = (size_t)(hend - host);
    if (hlen == 0 || hlen >= sizeof out->host)
        return -1;
    memcpy(out->host, host, hlen);
    out->port = out->https ? 443 : 80;
    if (p < aend) {
        if (*p != ':' || p + 1 == aend)
            return -1;
        unsigned long port = 0;
        for (p++; p < aend; p++) {
            if (!isdigit((unsigned char)*p) || (port = port * 10 + (unsigned long)(*p - '0')) > 65535)
                return -1;
        }
        if (port == 0)
            return -1;
        out->port = (uint16_t)port;
        out->port_given = true;
    }
    out->target = aend;
    out->target_len = strcspn(aend, "#");
    return 0;
}

char *h1_url_resolve(const char *base, const char *location)
{
    h1_url u;
    if (!location || h1_url_parse(base, &u) < 0)
        return NULL;
    strbuf b = STRBUF_INIT;
    if (!strncasecmp(location, "http://", 7) || !strncasecmp(location, "https://", 8)) {
        strbuf_puts(&b, location);
    } else if (location[0] == '/' && location[1] == '/') {
        strbuf_printf(&b, "%s:%s", u.https ? "https" : "http", location);
    } else {
        strbuf_append(&b, base, (size_t)(u.target - base)); /* scheme and authority */
        if (location[0] == '/') {
            strbuf_puts(&b, location);
        } else {
            size_t plen = strcspn(u.target, "?#");
            const char *slash = NULL;
            for (size_t i = 0; i < plen; i++)
                if (u.target[i] == '/')
                    slash = u.target + i;
            if (slash)
                strbuf_append(&b, u.target, (size_t)(slash + 1 - u.target));
            else
                strbuf_putc(&b, '/');
            strbuf_puts(&b, location);
        }
    }
    if (b.oom) {
        strbuf_free(&b);
        return NULL;
    }
    return strbuf_detach(&b, NULL);
}
