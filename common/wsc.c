/* wsc.c — an RFC 6455 WebSocket client on libuv; see wsc.h for why it is not libwebsockets.
 *
 * A connection is a short story: dial (common/dial) → for wss://, a TLS session (common/tls) between the socket and
 * everything below → the handshake request, and the response head gathered and checked → frames both ways →
 * the close handshake → the socket closed and on_close. Each attempt is a wsc_conn of its own, and the wsc points
 * to the current one. When a connection ends it is detached first (conn->w = NULL) and only then reported, so the
 * owner may connect again from on_close while the old connection's handles are still closing: whatever libuv still
 * delivers to the old one (a cancelled write, the close callback) finds no wsc and only frees it.
 *
 * Memory is never freed under a running callback: a connection goes in its socket's close callback, the wsc in its
 * timer's, both on a later loop turn. So wsc_free() may be called from any of its callbacks; the code that called
 * the callback checks conn->w (or w->freed) when it returns and stops.
 *
 * Writing. Everything for the socket passes through conn->out: the handshake request, then masked frames; for wss
 * the frames are plaintext written into the TLS session and out holds what the session wants sent. One write is in
 * flight at a time (out is swapped into wire and handed to uv_write); the next batch is assembled when it
 * completes. Messages stay counted in the queue's bounds until the write that carries them completes, so
 * wsc_queued() and on_drained mean "written to the socket". Control frames are not queued: a pending pong (only
 * the latest ping is answered, RFC 6455 §5.5.3, which keeps a ping flood from growing anything) and our close frame
 * are emitted when the next batch is assembled. Errors found while assembling a batch (which runs inside
 * wsc_send(), i.e. inside the caller's code) are not reported there: they are parked in conn->fail and the timer
 * reports them from the loop.
 *
 * Reading. Bytes (decrypted, for wss) go through the head parser until the 101 has been checked, then through an
 * incremental frame parser: the header is gathered, checked against a table of rules (each broken rule closes with
 * its code), and the payload is gathered into the message buffer (text) or the control buffer (ping, close).
 *
 * Closing. Whoever starts, a close frame goes out and the socket is closed once both sides have sent one, when the
 * peer drops the connection, or when the timer runs out; on_close then reports why (our reason when we started,
 * "closed by peer (N)" when the peer did). After an error close the input is ignored: it cannot be trusted.
 *
 * The timer: the connect timeout while connecting, the close timeouts while closing, and the deferred report of a
 * failure. Random bytes (the handshake key, frame masks) come from getrandom() into a small pool per wsc. */
#include "iac/wsc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "iac/dial.h"
#include "iac/digest.h"
#include "iac/log.h"
#include "iac/strbuf.h"
#include "iac/tls.h"

#define WSC_DEF_MAX_QUEUE          256
#define WSC_DEF_MAX_QUEUE_BYTES    (4u << 20)
#define WSC_DEF_MAX_FRAME          (1u << 20)
#define WSC_DEF_CONNECT_TIMEOUT_MS 10000
#define WSC_MAX_HEAD               (16 * 1024) /* a handshake response head larger than this is refused */
#define WSC_CLOSE_FLUSH_MS         10000       /* for the queue and our close frame to be written */
#define WSC_CLOSE_WAIT_MS          2000        /* for the peer's close frame after ours */
#define WSC_READ_SIZE              (16 * 1024)
#define WSC_RX_KEEP                (64 * 1024) /* a message buffer larger than this is freed after use */
#define WSC_BATCH_BYTES            (256 * 1024) /* frames assembled into one write */
#define WSC_RANDOM_POOL            256
#define WSC_CONTROL_MAX            125
#define WSC_GUID                   "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" /* RFC 6455 §1.3 */
#define WSC_KEY_LEN                16
#define WSC_MAX_BOUND              ((size_t)1 << 30) /* max_queue_bytes and max_frame are cut to this */

enum { OP_CONT = 0x0, OP_TEXT = 0x1, OP_BINARY = 0x2, OP_CLOSE = 0x8, OP_PING = 0x9, OP_PONG = 0xA };
enum { CLOSE_NORMAL = 1000, CLOSE_PROTOCOL = 1002, CLOSE_UNSUPPORTED = 1003, CLOSE_NO_STATUS = 1005,
       CLOSE_TOO_BIG = 1009, CLOSE_INTERNAL = 1011 };

typedef enum { ST_IDLE, ST_CONNECTING, ST_OPEN, ST_CLOSING } wsc_state;

/* A queued message, already framed and masked. */
typedef struct wsc_msg {
    struct wsc_msg *next;
    size_t          len;  /* payload */
    size_t          flen; /* the whole frame */
    unsigned char   frame[];
} wsc_msg;

typedef struct wsc_conn wsc_conn;

struct wsc {
    uv_loop_t    *loop;
    wsc_opts      opts;
    char         *ca_file;
    wsc_callbacks cb;
    void         *arg;
    uv_timer_t    timer;
    wsc_state     state;
    wsc_conn     *conn;   /* the current connection, NULL when idle */
    bool          freed;

    wsc_msg *qhead, *qtail; /* messages not yet handed to a write */
    size_t   nq, qbytes;    /* messages not yet written (queued and in flight) and their payload bytes */

    uint8_t rnd[WSC_RANDOM_POOL];
    size_t  rnd_left;
};

struct wsc_conn {
    wsc         *w;    /* NULL once the connection is over */
    dial        *dial; /* while connecting the socket */
    uv_tcp_t    *tcp;  /* the socket once connected */
    tls_session *tls;  /* wss:// */
    char        *host;
    uint16_t     port;
    bool         use_tls;
    strbuf       request;   /* the handshake request (with the bearer: wiped once sent) */
    char         accept[32]; /* the Sec-WebSocket-Accept we expect */
    bool         open;      /* the 101 was accepted */
    strbuf       head;      /* the response head, while it arrives */
    char         fail[192]; /* a failure waiting for the timer to report it */

    /* writing */
    strbuf     out, wire;  /* bytes for the socket; the bytes of the write in flight */
    uv_write_t wreq;
    bool       writing;
    size_t     wire_msgs, wire_bytes; /* messages (and their payload bytes) in the write in flight */
    bool       wire_close;            /* our close frame is in it */
    bool       pong_pending;
    uint8_t    pong[WSC_CONTROL_MAX];
    size_t     pong_len;

    /* closing */
    int  close_code;    /* of our close frame; 0 until we close, -1: a close frame without a code */
    bool close_now;     /* send it at once, dropping the queue (an error, or the answer to the peer's) */
    bool close_emitted, close_sent, peer_closed;
    bool discard;       /* ignore further input */
    char why[96];       /* the reason on_close will give */

    /* reading */
    uint8_t  hdr[10];
    size_t   hdr_have, hdr_need;
    bool     fin;
    unsigned opcode;
    uint64_t left;      /* payload bytes still to come in this frame */
    bool     in_msg;    /* a text message is being gathered (fragmented) */
    uint8_t  ctl[WSC_CONTROL_MAX];
    size_t   ctl_len;
    char    *rx;
    size_t   rx_len, rx_cap;
    char     rbuf[WSC_READ_SIZE];
    char     pbuf[WSC_READ_SIZE]; /* decrypted bytes (wss) */
};

static void pump(wsc_conn *c);

/* ---- random bytes ---- */

/* n bytes (at most the pool's size) from the pool, refilled from the kernel in one call when it runs low. */
static int rand_take(wsc *w, uint8_t *out, size_t n)
{
    if (w->rnd_left < n) {
        size_t got = 0;
        while (got < sizeof w->rnd) {
            ssize_t r = getrandom(w->rnd + got, sizeof w->rnd - got, 0);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0)
                return -errno;
            got += (size_t)r;
        }
        w->rnd_left = sizeof w->rnd;
    }
    uint8_t *p = w->rnd + sizeof w->rnd - w->rnd_left;
    memcpy(out, p, n);
    explicit_bzero(p, n); /* a used mask never lingers */
    w->rnd_left -= n;
    return 0;
}

/* ---- frames ---- */

static size_t frame_header_len(size_t len) { return 2 + (len < 126 ? 0 : len < 65536 ? 2 : 8) + 4; }

/* A final, masked frame of opcode with payload into out (frame_header_len(len) + len bytes). */
static size_t frame_build(uint8_t *out, unsigned opcode, const void *payload, size_t len, const uint8_t mask[4])
{
    size_t h = 0;
    out[h++] = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        out[h++] = (uint8_t)(0x80 | len);
    } else if (len < 65536) {
        out[h++] = 0x80 | 126;
        out[h++] = (uint8_t)(len >> 8);
        out[h++] = (uint8_t)len;
    } else {
        out[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            out[h++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    memcpy(out + h, mask, 4);
    h += 4;
    const uint8_t *p = payload;
    for (size_t i = 0; i < len; i++)
        out[h + i] = p[i] ^ mask[i & 3];
    return h + len;
}

/* ---- the queue ---- */

static void queue_drop(wsc *w)
{
    while (w->qhead) {
        wsc_msg *m = w->qhead;
        w->qhead = m->next;
        w->nq--;
        w->qbytes -= m->len;
        free(m);
    }
    w->qtail = NULL;
}

/* ---- the end of a connection ---- */

static void wipe(strbuf *b)
{
    if (b->data)
        explicit_bzero(b->data, b->cap);
    strbuf_free(b);
}

static void conn_free(wsc_conn *c)
{
    if (c->tls)
        tls_session_free(c->tls);
    wipe(&c->request);
    wipe(&c->out);
    wipe(&c->wire);
    strbuf_free(&c->head);
    free(c->rx);
    free(c->host);
    free(c);
}

static void on_conn_closed(uv_handle_t *h)
{
    wsc_conn *c = h->data;
    dial_tcp_closed(h);
    conn_free(c);
}

/* Detaches c from its wsc: nothing of it reaches the owner any more; its memory goes once its socket is closed. */
static void conn_end(wsc_conn *c)
{
    c->w = NULL;
    if (c->dial) {
        dial_abort(c->dial);
        c->dial = NULL;
    }
    if (c->tcp)
        uv_close((uv_handle_t *)c->tcp, on_conn_closed); /* a write in flight is cancelled first */
    else
        conn_free(c);
}

static void finish(wsc_conn *c, int http_status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The connection is over: drop it and tell the owner, who may connect again or free the wsc from on_close. Only
 * from the loop's callbacks (never from inside a call of the owner's); the caller touches neither c nor w after. */
static void finish(wsc_conn *c, int http_status, const char *fmt, ...)
{
    wsc *w = c->w;
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap); /* first: the arguments may point into c */
    va_end(ap);
    conn_end(c);
    w->conn = NULL;
    w->state = ST_IDLE;
    uv_timer_stop(&w->timer);
    queue_drop(w);
    w->nq = w->qbytes = 0; /* messages of a write in flight are lost with the connection */
    log_debug("wsc", "connection ended: %s", reason);
    if (w->cb.on_close && !w->freed)
        w->cb.on_close(w, http_status, reason, w->arg);
}

static void on_timer(uv_timer_t *t);

/* A failure found inside the owner's call (wsc_send → pump): reported from the loop by the timer. */
static void fail_later(wsc_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail_later(wsc_conn *c, const char *fmt, ...)
{
    if (c->fail[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->fail, sizeof c->fail, fmt, ap);
    va_end(ap);
    uv_timer_start(&c->w->timer, on_timer, 0, 0);
}

/* (Re)starts the timer, unless a failure is waiting for it. */
static void timer_arm(wsc_conn *c, uint64_t ms)
{
    if (!c->fail[0])
        uv_timer_start(&c->w->timer, on_timer, ms, 0);
}

static void on_timer(uv_timer_t *t)
{
    wsc *w = t->data;
    wsc_conn *c = w->conn;

    if (!c)
        return;
    if (c->fail[0]) {
        finish(c, 0, "%s", c->fail);
        return;
    }
    if (w->state == ST_CONNECTING)
        finish(c, 0, "connect timeout");
    else if (w->state == ST_CLOSING)
        finish(c, 0, "%s",
               c->close_sent || c->peer_closed || c->close_now ? c->why : "close timed out: the queue was not written");
}

/* Starts our side of the close: code (-1: none) in a close frame, after the queue unless now. */
static void close_start(wsc_conn *c, int code, bool now, const char *why)
{
    wsc *w = c->w;
    w->state = ST_CLOSING;
    if (c->close_emitted)
        return;
    c->close_code = code;
    c->close_now = now;
    snprintf(c->why, sizeof c->why, "%s", why);
    if (now)
        queue_drop(w); /* what is in flight stays counted until its write completes */
    timer_arm(c, WSC_CLOSE_FLUSH_MS);
    pump(c);
}

/* Fails the WebSocket connection (RFC 6455 §7.1.7): a close frame with code, no more input. */
static void ws_fail(wsc_conn *c, int code, const char *why)
{
    char reason[96];
    snprintf(reason, sizeof reason, "%s (%d)", why, code);
    c->discard = true;
    close_start(c, code, true, reason);
}

/* ---- writing ---- */

/* Plaintext for the peer: as is for ws://, through the TLS session for wss://. */
static void emit(wsc_conn *c, const void *p, size_t n)
{
    if (!c->tls) {
        strbuf_append(&c->out, p, n);
        return;
    }
    int rc = tls_session_write(c->tls, p, n);
    if (rc < 0)
        fail_later(c, "TLS: %s", rc == TLS_E_NOMEM ? "out of memory" : tls_session_error(c->tls));
}

static void emit_control(wsc_conn *c, unsigned opcode, const void *payload, size_t len)
{
    uint8_t frame[2 + 4 + WSC_CONTROL_MAX], mask[4];
    if (rand_take(c->w, mask, sizeof mask) < 0) {
        fail_later(c, "no random bytes for a frame mask: %s", strerror(errno));
        return;
    }
    emit(c, frame, frame_build(frame, opcode, payload, len, mask));
}

static void on_write(uv_write_t *req, int status);

/* Assembles the next write — the handshake request, or a pending pong, queued messages and our close frame — and
 * starts it, unless one is in flight. */
static void pump(wsc_conn *c)
{
    wsc *w = c->w;

    if (!w || c->writing || !c->tcp || c->fail[0])
        return;
    if (c->open) {
        if (c->pong_pending && !c->close_emitted) {
            c->pong_pending = false;
            emit_control(c, OP_PONG, c->pong, c->pong_len);
        }
        size_t batch = 0;
        while (w->qhead && !c->close_now && !c->close_emitted && batch < WSC_BATCH_BYTES) {
            wsc_msg *m = w->qhead;
            w->qhead = m->next;
            if (!w->qhead)
                w->qtail = NULL;
            emit(c, m->frame, m->flen);
            c->wire_msgs++;
            c->wire_bytes += m->len;
            batch += m->flen;
            free(m);
        }
        if (c->close_code && !c->close_emitted && (c->close_now || !w->qhead)) {
            uint8_t code[2] = { (uint8_t)(c->close_code >> 8), (uint8_t)c->close_code };
            emit_control(c, OP_CLOSE, code, c->close_code > 0 ? 2 : 0);
            c->close_emitted = c->wire_close = true;
        }
    }
    if (c->tls && tls_session_output(c->tls, &c->out) < 0)
        fail_later(c, "out of memory");
    if (c->out.oom)
        fail_later(c, "out of memory");
    if (c->fail[0] || c->out.len == 0)
        return;
    strbuf t = c->wire; /* empty while no write is in flight; swapped to keep its allocation */
    c->wire = c->out;
    c->out = t;
    uv_buf_t b = uv_buf_init(c->wire.data, (unsigned)c->wire.len);
    c->wreq.data = c;
    int rc = uv_write(&c->wreq, (uv_stream_t *)c->tcp, &b, 1, on_write);
    if (rc < 0) {
        fail_later(c, "connection lost: %s", uv_strerror(rc));
        return;
    }
    c->writing = true;
}

static void on_write(uv_write_t *req, int status)
{
    wsc_conn *c = req->data;
    c->writing = false;
    if (!c->open)
        explicit_bzero(c->wire.data, c->wire.len); /* the request carries the bearer */
    strbuf_reset(&c->wire);
    wsc *w = c->w;
    if (!w)
        return;
    if (status < 0) {
        if (c->close_emitted || c->peer_closed)
            finish(c, 0, "%s", c->why);
        else
            finish(c, 0, "connection lost: %s", uv_strerror(status));
        return;
    }
    size_t written = c->wire_msgs;
    w->nq -= written;
    w->qbytes -= c->wire_bytes;
    c->wire_msgs = c->wire_bytes = 0;
    if (c->wire_close) {
        c->wire_close = false;
        c->close_sent = true;
        if (c->peer_closed) {
            finish(c, 0, "%s", c->why);
            return;
        }
        timer_arm(c, WSC_CLOSE_WAIT_MS);
    }
    if (written && w->nq == 0 && w->state == ST_OPEN && w->cb.on_drained) {
        w->cb.on_drained(w, w->arg);
        if (!c->w)
            return;
    }
    pump(c);
}

/* ---- the handshake response ---- */

typedef enum {
    HDR_TOKEN,   /* the value is this token */
    HDR_LIST,    /* the value is a comma list holding this token */
    HDR_ACCEPT,  /* the value is the accept we computed */
    HDR_ABSENT,  /* the header must not be there: we offered nothing of the kind */
} hdr_rule_kind;

/* What a 101 must say (RFC 6455 §4.1, the client's checks). Each broken rule fails the handshake. */
static const struct {
    const char   *name;
    hdr_rule_kind kind;
    const char   *token;
    const char   *why;
} hdr_rules[] = {
    { "Upgrade", HDR_TOKEN, "websocket", "handshake: no \"Upgrade: websocket\" in the 101" },
    { "Connection", HDR_LIST, "upgrade", "handshake: no \"Connection: Upgrade\" in the 101" },
    { "Sec-WebSocket-Accept", HDR_ACCEPT, NULL, "handshake: wrong Sec-WebSocket-Accept" },
    { "Sec-WebSocket-Extensions", HDR_ABSENT, NULL, "handshake: the server chose an extension that was not offered" },
    { "Sec-WebSocket-Protocol", HDR_ABSENT, NULL, "handshake: the server chose a subprotocol that was not offered" },
};
#define N_HDR_RULES (sizeof hdr_rules / sizeof hdr_rules[0])

static bool list_has_token(const char *v, size_t n, const char *token)
{
    size_t tl = strlen(token);
    for (size_t i = 0; i < n;) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == tl && strncasecmp(v + s, token, tl) == 0)
            return true;
    }
    return false;
}

static bool hdr_value_ok(const wsc_conn *c, size_t rule, const char *v, size_t n)
{
    switch (hdr_rules[rule].kind) {
    case HDR_TOKEN:
        return n == strlen(hdr_rules[rule].token) && strncasecmp(v, hdr_rules[rule].token, n) == 0;
    case HDR_LIST:
        return list_has_token(v, n, hdr_rules[rule].token);
    case HDR_ACCEPT:
        return n == strlen(c->accept) && memcmp(v, c->accept, n) == 0;
    case HDR_ABSENT:
        return false;
    }
    return false;
}

/* Checks the whole head in c->head (ending with the blank line). true: the connection is open. false: finish()
 * was called. */
static bool head_check(wsc_conn *c)
{
    const char *p = c->head.data, *end = p + c->head.len;
    int major, minor, status, used = 0;
    bool found[N_HDR_RULES] = { false }, ok[N_HDR_RULES] = { false };

    if (sscanf(p, "HTTP/%d.%d %3d%n", &major, &minor, &status, &used) != 3 || major != 1 || status < 100 ||
        status > 999 || (p[used] != ' ' && p[used] != '\r')) {
        finish(c, 0, "handshake: the answer is not an HTTP/1.x response");
        return false;
    }
    if (status != 101) {
        finish(c, status, "handshake: %d", status);
        return false;
    }
    for (const char *line = memchr(p, '\n', (size_t)(end - p)); line && ++line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t len = (size_t)((nl ? nl : end) - line);
        if (len > 0 && line[len - 1] == '\r')
            len--;
        const char *colon = memchr(line, ':', len);
        for (size_t r = 0; colon && r < N_HDR_RULES; r++) {
            size_t nlen = strlen(hdr_rules[r].name);
            if ((size_t)(colon - line) != nlen || strncasecmp(line, hdr_rules[r].name, nlen) != 0)
                continue;
            const char *v = colon + 1, *ve = line + len;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            found[r] = true;
            ok[r] = ok[r] || hdr_value_ok(c, r, v, (size_t)(ve - v));
        }
        line = nl;
    }
    for (size_t r = 0; r < N_HDR_RULES; r++) {
        if (hdr_rules[r].kind == HDR_ABSENT ? found[r] : !ok[r]) {
            finish(c, 0, "%s", hdr_rules[r].why);
            return false;
        }
    }
    return true;
}

/* Takes head bytes from p. Returns how many were used (the rest are frames), or 0 after finish(). */
static size_t feed_head(wsc_conn *c, const char *p, size_t n)
{
    size_t old = c->head.len, want = n;
    if (want > WSC_MAX_HEAD + 4 - old)
        want = WSC_MAX_HEAD + 4 - old;
    strbuf_append(&c->head, p, want);
    if (c->head.oom) {
        finish(c, 0, "out of memory");
        return 0;
    }
    size_t from = old >= 3 ? old - 3 : 0;
    const char *end = memmem(c->head.data + from, c->head.len - from, "\r\n\r\n", 4);
    if (!end) {
        if (c->head.len > WSC_MAX_HEAD) {
            finish(c, 0, "handshake: the response head is larger than %d KiB", WSC_MAX_HEAD / 1024);
            return 0;
        }
        return want;
    }
    size_t head_len = (size_t)(end + 4 - c->head.data);
    c->head.len = head_len;
    c->head.data[head_len] = '\0';
    if (!head_check(c))
        return 0;
    strbuf_free(&c->head);

    wsc *w = c->w;
    c->open = true;
    w->state = ST_OPEN;
    uv_timer_stop(&w->timer);
    log_debug("wsc", "open: %s port %u", c->host, c->port);
    if (w->cb.on_open) {
        w->cb.on_open(w, w->arg);
        if (!c->w)
            return 0;
    }
    return head_len - old;
}

/* ---- frames in ---- */

typedef struct {
    bool     fin, masked;
    unsigned rsv, opcode;
    uint64_t len;
} frame_head;

static bool is_control(unsigned opcode) { return opcode & 0x8; }

/* The rules' tests: each says whether frame f, arriving on c, is broken that way. */
static bool rsv_set(const wsc_conn *c, const frame_head *f) { (void)c; return f->rsv != 0; }
static bool masked(const wsc_conn *c, const frame_head *f) { (void)c; return f->masked; }
static bool unknown_opcode(const wsc_conn *c, const frame_head *f)
{
    (void)c;
    return !(f->opcode <= OP_BINARY || (f->opcode >= OP_CLOSE && f->opcode <= OP_PONG));
}
static bool control_fragmented(const wsc_conn *c, const frame_head *f)
{
    (void)c;
    return is_control(f->opcode) && !f->fin;
}
static bool control_too_long(const wsc_conn *c, const frame_head *f)
{
    (void)c;
    return is_control(f->opcode) && f->len > WSC_CONTROL_MAX;
}
static bool stray_continuation(const wsc_conn *c, const frame_head *f) { return f->opcode == OP_CONT && !c->in_msg; }
static bool message_in_message(const wsc_conn *c, const frame_head *f)
{
    return (f->opcode == OP_TEXT || f->opcode == OP_BINARY) && c->in_msg;
}
static bool length_out_of_range(const wsc_conn *c, const frame_head *f) { (void)c; return f->len >> 63; }
static bool binary(const wsc_conn *c, const frame_head *f) { (void)c; return f->opcode == OP_BINARY; }
/* The message so far plus this frame would exceed max_frame: refused before any of its payload is read. */
static bool too_large(const wsc_conn *c, const frame_head *f)
{
    return !is_control(f->opcode) && f->len > c->w->opts.max_frame - (f->opcode == OP_CONT ? c->rx_len : 0);
}

/* What a frame from the server must not be, in the order checked (RFC 6455 §5). */
static const struct {
    bool (*broken)(const wsc_conn *c, const frame_head *f);
    int         code;
    const char *why;
} frame_rules[] = {
    { rsv_set, CLOSE_PROTOCOL, "protocol error: reserved bits set" },
    { masked, CLOSE_PROTOCOL, "protocol error: masked frame from the server" },
    { unknown_opcode, CLOSE_PROTOCOL, "protocol error: unknown opcode" },
    { control_fragmented, CLOSE_PROTOCOL, "protocol error: fragmented control frame" },
    { control_too_long, CLOSE_PROTOCOL, "protocol error: control frame longer than 125 bytes" },
    { stray_continuation, CLOSE_PROTOCOL, "protocol error: continuation frame without a message" },
    { message_in_message, CLOSE_PROTOCOL, "protocol error: new message inside a fragmented one" },
    { length_out_of_range, CLOSE_PROTOCOL, "protocol error: frame length out of range" },
    { binary, CLOSE_UNSUPPORTED, "binary frame" },
    { too_large, CLOSE_TOO_BIG, "message too large" },
};

/* The header in c->hdr is complete: check it and get ready for the payload. false: the connection is failing. */
static bool frame_begin(wsc_conn *c)
{
    frame_head f = {
        .fin = c->hdr[0] & 0x80,
        .rsv = (c->hdr[0] >> 4) & 0x7,
        .opcode = c->hdr[0] & 0x0f,
        .masked = c->hdr[1] & 0x80,
        .len = c->hdr[1] & 0x7f,
    };
    if (f.len >= 126) {
        size_t n = f.len == 126 ? 2 : 8;
        f.len = 0;
        for (size_t i = 0; i < n; i++)
            f.len = f.len << 8 | c->hdr[2 + i];
    }
    for (size_t i = 0; i < sizeof frame_rules / sizeof frame_rules[0]; i++) {
        if (frame_rules[i].broken(c, &f)) {
            ws_fail(c, frame_rules[i].code, frame_rules[i].why);
            return false;
        }
    }
    c->fin = f.fin;
    c->opcode = f.opcode;
    c->left = f.len;
    if (is_control(f.opcode)) {
        c->ctl_len = 0;
        return true;
    }
    if (f.opcode == OP_TEXT) {
        c->in_msg = true;
        c->rx_len = 0;
    }
    /* Room for the whole frame now: its length is known and within max_frame. */
    size_t need = c->rx_len + (size_t)f.len + 1;
    if (need > c->rx_cap) {
        size_t cap = c->rx_cap ? c->rx_cap : 4096;
        while (cap < need)
            cap *= 2;
        if (cap > c->w->opts.max_frame + 1)
            cap = c->w->opts.max_frame + 1;
        char *rx = realloc(c->rx, cap);
        if (!rx) {
            ws_fail(c, CLOSE_INTERNAL, "out of memory");
            return false;
        }
        c->rx = rx;
        c->rx_cap = cap;
    }
    return true;
}

/* Whether a close frame may carry code (RFC 6455 §7.4): the defined codes a peer may send, and the ranges for
 * libraries (3000–3999) and applications (4000–4999). 1005, 1006 and 1015 are only ever reported, never sent. */
static bool close_code_valid(int code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) || (code >= 3000 && code <= 4999);
}

/* The peer's close frame: answered with ours (unless we sent one already), then the socket goes. */
static bool on_peer_close(wsc_conn *c)
{
    int code = c->ctl_len >= 2 ? c->ctl[0] << 8 | c->ctl[1] : CLOSE_NO_STATUS;
    if (c->ctl_len == 1) {
        ws_fail(c, CLOSE_PROTOCOL, "protocol error: close frame with a 1-byte payload");
        return false;
    }
    if (c->ctl_len >= 2 && !close_code_valid(code)) {
        ws_fail(c, CLOSE_PROTOCOL, "protocol error: a close code the peer may not send");
        return false;
    }
    c->peer_closed = true;
    c->discard = true; /* nothing may follow a close frame */
    if (c->close_sent) {
        finish(c, 0, "%s", c->why);
        return false;
    }
    if (c->close_emitted)
        return false; /* our close frame is being written: on_write finishes */
    char why[64];
    snprintf(why, sizeof why, "closed by peer (%d)", code);
    close_start(c, code == CLOSE_NO_STATUS ? -1 : code, true, why);
    return false;
}

/* The frame's payload is complete. false: stop reading (the connection ended or is closing for an error). */
static bool frame_end(wsc_conn *c)
{
    wsc *w = c->w;

    switch (c->opcode) {
    case OP_PING:
        memcpy(c->pong, c->ctl, c->ctl_len);
        c->pong_len = c->ctl_len;
        c->pong_pending = true;
        pump(c);
        return true;
    case OP_PONG:
        return true;
    case OP_CLOSE:
        return on_peer_close(c);
    default:
        break;
    }
    if (!c->fin)
        return true;
    size_t n = c->rx_len;
    c->in_msg = false;
    c->rx_len = 0;
    if (w->cb.on_message) {
        c->rx[n] = '\0';
        w->cb.on_message(w, c->rx, n, w->arg);
    }
    if (c->rx_cap > WSC_RX_KEEP) { /* a rare big message does not stay resident for the connection's life */
        free(c->rx);
        c->rx = NULL;
        c->rx_cap = 0;
    }
    return c->w != NULL;
}

static size_t ext_len(uint8_t b1)
{
    b1 &= 0x7f;
    return b1 == 126 ? 2 : b1 == 127 ? 8 : 0;
}

/* Takes frame bytes from p. Returns how many were used, or 0 when reading must stop. */
static size_t feed_frames(wsc_conn *c, const uint8_t *p, size_t n)
{
    size_t used = 0;

    if (c->hdr_need == 0)
        c->hdr_need = 2;
    if (c->hdr_have < c->hdr_need) {
        while (used < n && c->hdr_have < c->hdr_need) {
            c->hdr[c->hdr_have++] = p[used++];
            if (c->hdr_have == 2)
                c->hdr_need = 2 + ext_len(c->hdr[1]);
        }
        if (c->hdr_have < c->hdr_need)
            return used;
        if (!frame_begin(c))
            return 0;
    }
    size_t take = (uint64_t)(n - used) < c->left ? n - used : (size_t)c->left;
    if (is_control(c->opcode)) {
        memcpy(c->ctl + c->ctl_len, p + used, take);
        c->ctl_len += take;
    } else if (take) {
        memcpy(c->rx + c->rx_len, p + used, take);
        c->rx_len += take;
    }
    used += take;
    c->left -= take;
    if (c->left == 0) {
        c->hdr_have = c->hdr_need = 0;
        if (!frame_end(c))
            return 0;
    }
    return used;
}

/* Plaintext from the peer. false when the connection ended (c may not be used beyond its w field). */
static bool feed(wsc_conn *c, const char *p, size_t n)
{
    while (n > 0 && c->w && !c->discard) {
        size_t used = c->open ? feed_frames(c, (const uint8_t *)p, n) : feed_head(c, p, n);
        if (used == 0)
            break;
        p += used;
        n -= used;
    }
    return c->w != NULL;
}

/* ---- the socket ---- */

static void on_eof(wsc_conn *c, int err)
{
    wsc *w = c->w;
    const char *detail = err == UV_EOF ? "" : uv_strerror(err);
    const char *sep = err == UV_EOF ? "" : ": ";

    if (w->state == ST_CONNECTING)
        finish(c, 0, "handshake: the server closed the connection%s%s", sep, detail);
    else if (c->close_emitted || c->peer_closed)
        finish(c, 0, "%s", c->why);
    else
        finish(c, 0, "connection lost%s%s", sep, detail);
}

static void on_tls_error(wsc_conn *c, int rc)
{
    const char *e = rc == TLS_E_NOMEM ? "out of memory" : tls_session_error(c->tls);
    if (!tls_session_ready(c->tls))
        finish(c, 0, "TLS handshake failed: %s", e);
    else
        finish(c, 0, "TLS: %s", e);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    wsc_conn *c = h->data;
    *buf = uv_buf_init(c->rbuf, sizeof c->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    wsc_conn *c = s->data;

    if (!c->w || nread == 0)
        return;
    if (nread < 0) {
        on_eof(c, (int)nread);
        return;
    }
    if (!c->tls) {
        feed(c, buf->base, (size_t)nread);
        return;
    }
    int rc = tls_session_input(c->tls, buf->base, (size_t)nread);
    if (rc < 0) {
        on_tls_error(c, rc);
        return;
    }
    for (;;) {
        ssize_t got = tls_session_read(c->tls, c->pbuf, sizeof c->pbuf);
        if (got == 0)
            break;
        if (got == TLS_E_CLOSED) {
            on_eof(c, UV_EOF);
            return;
        }
        if (got < 0) {
            on_tls_error(c, (int)got);
            return;
        }
        if (!feed(c, c->pbuf, (size_t)got))
            return;
    }
    pump(c); /* whatever the session wants sent (handshake records, the request once it is done) */
}

static void on_dialed(void *arg, uv_tcp_t *tcp, int error, const char *msg)
{
    wsc_conn *c = arg;
    char err[256];

    c->dial = NULL;
    if (error != DIAL_OK) {
        finish(c, 0, "%s", msg);
        return;
    }
    c->tcp = tcp;
    tcp->data = c;
    uv_tcp_nodelay(tcp, 1);
    if (c->use_tls) {
        c->tls = tls_session_new(c->host, c->w->ca_file, err, sizeof err);
        if (!c->tls) {
            finish(c, 0, "%s", err);
            return;
        }
    }
    int rc = uv_read_start((uv_stream_t *)tcp, on_alloc, on_read);
    if (rc < 0) {
        finish(c, 0, "cannot read from %s port %u: %s", c->host, c->port, uv_strerror(rc));
        return;
    }
    emit(c, c->request.data, c->request.len); /* for wss, kept by the session until its handshake is done */
    wipe(&c->request);
    pump(c);
}

/* ---- URLs and the request ---- */

typedef struct {
    bool        tls;
    char        host[256]; /* without brackets */
    bool        ipv6;
    uint16_t    port;
    bool        port_given;
    const char *target;    /* path and query, into the URL ("" → "/") */
} wsc_url;

static bool printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || *s == 0x7f)
            return false;
    return true;
}

/* ws[s]://host[:port][/path][?query]; IPv6 literals in brackets. No user info, no fragment. */
static int url_parse(const char *url, wsc_url *u)
{
    static const struct { const char *prefix; bool tls; uint16_t port; } schemes[] = {
        { "ws://", false, 80 },
        { "wss://", true, 443 },
    };
    const char *p = NULL;

    memset(u, 0, sizeof *u);
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        size_t n = strlen(schemes[i].prefix);
        if (strncasecmp(url, schemes[i].prefix, n) == 0) {
            p = url + n;
            u->tls = schemes[i].tls;
            u->port = schemes[i].port;
            break;
        }
    }
    if (!p || !printable(p) || strchr(p, '#'))
        return WSC_E_URL;
    size_t alen = strcspn(p, "/?");
    const char *aend = p + alen, *host = p, *hend;
    if (memchr(p, '@', alen))
        return WSC_E_URL;
    if (*p == '[') {
        host = p + 1;
        hend = memchr(host, ']', (size_t)(aend - host));
        if (!hend)
            return WSC_E_URL;
        p = hend + 1;
        u->ipv6 = true;
    } else {
        hend = memchr(p, ':', alen);
        if (!hend)
            hend = aend;
        p = hend;
    }
    size_t hlen = (size_t)(hend - host);
    if (hlen == 0 || hlen >= sizeof u->host || memchr(host, '[', hlen) || memchr(host, ']', hlen))
        return WSC_E_URL;
    memcpy(u->host, host, hlen);
    struct sockaddr_in6 sa6;
    if (u->ipv6 && uv_ip6_addr(u->host, 0, &sa6) != 0)
        return WSC_E_URL;
    if (p < aend) {
        if (*p != ':' || p + 1 == aend)
            return WSC_E_URL;
        unsigned long port = 0;
        for (p++; p < aend; p++)
            if (*p < '0' || *p > '9' || (port = port * 10 + (unsigned long)(*p - '0')) > 65535)
                return WSC_E_URL;
        if (port == 0)
            return WSC_E_URL;
        u->port = (uint16_t)port;
        u->port_given = true;
    }
    u->target = aend;
    return WSC_OK;
}

/* The handshake request (RFC 6455 §4.1) and the accept value it calls for. */
static int request_build(wsc *w, wsc_conn *c, const wsc_url *u, const char *bearer)
{
    uint8_t key[WSC_KEY_LEN], sha[DIGEST_SHA1_LEN];
    char key64[32], both[32 + sizeof WSC_GUID];

    if (rand_take(w, key, sizeof key) < 0)
        return WSC_E_NOMEM;
    digest_base64_encode(key, sizeof key, key64);
    snprintf(both, sizeof both, "%s%s", key64, WSC_GUID);
    digest_sha1(both, strlen(both), sha);
    digest_base64_encode(sha, sizeof sha, c->accept);

    strbuf *r = &c->request;
    strbuf_printf(r, "GET %s%s HTTP/1.1\r\n", u->target[0] == '/' ? "" : "/", u->target);
    strbuf_printf(r, "Host: %s%s%s", u->ipv6 ? "[" : "", u->host, u->ipv6 ? "]" : "");
    if (u->port_given && u->port != (u->tls ? 443 : 80))
        strbuf_printf(r, ":%u", (unsigned)u->port);
    strbuf_printf(r, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n", key64);
    if (bearer)
        strbuf_printf(r, "Authorization: Bearer %s\r\n", bearer);
    strbuf_puts(r, "\r\n");
    return r->oom ? WSC_E_NOMEM : WSC_OK;
}

/* ---- public API ---- */

static void on_wsc_closed(uv_handle_t *h)
{
    wsc *w = h->data;
    queue_drop(w);
    free(w->ca_file);
    explicit_bzero(w->rnd, sizeof w->rnd);
    free(w);
}

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
    /* Bounds far beyond any use, so that size arithmetic on them cannot wrap and a write's length fits libuv's
     * unsigned. */
    if (w->opts.max_queue_bytes > WSC_MAX_BOUND)
        w->opts.max_queue_bytes = WSC_MAX_BOUND;
    if (w->opts.max_frame > WSC_MAX_BOUND)
        w->opts.max_frame = WSC_MAX_BOUND;
    if (w->opts.ca_file && !(w->ca_file = strdup(w->opts.ca_file))) {
        free(w);
        return NULL;
    }
    w->opts.ca_file = NULL; /* ours is w->ca_file */
    if (cb)
        w->cb = *cb;
    w->arg = arg;
    if (uv_timer_init(loop, &w->timer) < 0) {
        free(w->ca_file);
        free(w);
        return NULL;
    }
    w->timer.data = w;
    return w;
}

int wsc_connect(wsc *w, const char *url, const char *bearer)
{
    wsc_url u;
    int rc;

    if (w->freed)
        return WSC_E_CLOSED;
    if (w->state != ST_IDLE)
        return WSC_E_BUSY;
    if (!url || url_parse(url, &u) != WSC_OK || (bearer && !printable(bearer)))
        return WSC_E_URL;
    wsc_conn *c = calloc(1, sizeof *c);
    if (!c)
        return WSC_E_NOMEM;
    c->w = w;
    c->port = u.port;
    c->use_tls = u.tls;
    c->host = strdup(u.host);
    rc = c->host ? request_build(w, c, &u, bearer) : WSC_E_NOMEM;
    if (rc == WSC_OK && !(c->dial = dial_start(w->loop, c->host, c->port, 0, on_dialed, c)))
        rc = WSC_E_NOMEM;
    if (rc != WSC_OK) {
        conn_free(c);
        return rc;
    }
    w->conn = c;
    w->state = ST_CONNECTING;
    uv_timer_start(&w->timer, on_timer, (uint64_t)w->opts.connect_timeout_ms, 0);
    log_debug("wsc", "connecting to %s://%s%s%s port %u", u.tls ? "wss" : "ws", u.ipv6 ? "[" : "", u.host,
              u.ipv6 ? "]" : "", (unsigned)u.port);
    return WSC_OK;
}

int wsc_send(wsc *w, const char *data, size_t len)
{
    uint8_t mask[4];

    if (w->freed || w->state != ST_OPEN)
        return WSC_E_CLOSED;
    if (w->nq >= w->opts.max_queue || len > w->opts.max_queue_bytes - w->qbytes)
        return WSC_E_FULL;
    size_t flen = frame_header_len(len) + len;
    wsc_msg *m = malloc(sizeof *m + flen);
    if (!m || rand_take(w, mask, sizeof mask) < 0) {
        free(m);
        return WSC_E_NOMEM;
    }
    m->next = NULL;
    m->len = len;
    m->flen = frame_build(m->frame, OP_TEXT, data, len, mask);
    if (w->qtail)
        w->qtail->next = m;
    else
        w->qhead = m;
    w->qtail = m;
    w->nq++;
    w->qbytes += len;
    pump(w->conn);
    return WSC_OK;
}

bool wsc_is_open(const wsc *w) { return w->state == ST_OPEN; }

size_t wsc_queued(const wsc *w) { return w->nq; }

void wsc_close(wsc *w)
{
    if (w->freed || !w->conn)
        return;
    if (w->state == ST_CONNECTING)
        finish(w->conn, 0, "closed before open");
    else if (w->state == ST_OPEN)
        close_start(w->conn, CLOSE_NORMAL, false, "closed (1000)");
}

void wsc_free(wsc *w)
{
    if (!w || w->freed)
        return;
    w->freed = true;
    if (w->conn) {
        conn_end(w->conn);
        w->conn = NULL;
    }
    w->state = ST_IDLE;
    uv_close((uv_handle_t *)&w->timer, on_wsc_closed);
}
