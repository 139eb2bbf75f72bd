/* cc.c — the devplane's C&C WebSocket listener; see cc.h and ref §3.
 *
 * Its own lws context on the caller's libuv loop, one protocol that sees both the HTTP phase and the WebSocket
 * phase of a connection:
 *   - LWS_CALLBACK_HTTP_CONFIRM_UPGRADE runs the checks of ref §3.1 in their order and refuses with upstream's
 *     status and plain-text body (written here, then return 1: lws 4.1 completes the transaction);
 *   - LWS_CALLBACK_ESTABLISHED runs the same checks again to learn the agent and token (lws rebinds the protocol
 *     at the upgrade, which gives the connection fresh per-session data; the headers are still there), then
 *     registers the connection, replacing an older one of the same agent;
 *   - every message is reassembled up to PROTO_MAX_FRAME, decoded with common/proto, and heartbeats are recorded;
 *     a frame that does not decode closes that connection;
 *   - outgoing frames wait in a bounded per-connection queue written one per SERVER_WRITEABLE.
 *
 * Closing a connection from outside its callbacks (admin API, liveness timer) goes through lws_set_timer_usecs():
 * the close itself happens in LWS_CALLBACK_TIMER with lws_close_reason() and -1, which lws 4.1 turns into a proper
 * close frame (returning -1 from a WRITEABLE callback would drop the socket without one). lws_cancel_service()
 * then wakes the context, or lws 4.1 would not look at its timers until its next socket event.
 *
 * Shutdown hands the context to lwsloop_destroy() (common/lwsloop.c: lws 4.1 needs several loop turns to destroy a
 * context on a foreign loop); the server is freed once the context is. It only happens when the process exits. */
#include "cc.h"

#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <libwebsockets.h>

#include "iac/json.h"
#include "iac/log.h"
#include "iac/lwsloop.h"
#include "iac/proto.h"

#define CC_FD_LIMIT (REG_MAX_AGENTS + 64)
#define CC_AUTH_MAX 1024 /* longer Authorization headers cannot hold one of our tokens */

typedef struct cc_msg {
    struct cc_msg *next;
    size_t         len;
    unsigned char  buf[]; /* LWS_PRE headroom, then the frame */
} cc_msg;

/* Per-session data (lws allocates and zeroes it). srv is set once the connection is registered. */
typedef struct cc_conn {
    struct cc_conn *next, *prev;
    cc_server      *srv;
    struct lws     *wsi;
    char            agent_id[REG_ID_MAX];
    char            token_hash[REG_HASH_SIZE];
    int64_t         last_ping_ns;
    cc_msg         *qhead, *qtail;
    size_t          nq, qbytes;
    char           *rx;
    size_t          rx_len, rx_cap;
    bool            closing;
    int             close_code;
    char            close_why[64];
} cc_conn;

struct cc_server {
    uv_loop_t          *loop;
    registry           *reg;
    struct lws_context *ctx;
    int                 port;
    cc_conn            *conns;
    cc_hooks            hooks;
    bool                freed; /* cc_free() was called */
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- handshake (ref §3.1) ---- */

typedef enum { HS_OK, HS_PATH, HS_AUTH_HEADER, HS_TOKEN, HS_AGENT_ID, HS_AGENT } hs_result;

/* Upstream's answers (http.Error: the text and a newline). */
static const struct {
    unsigned    status;
    const char *body;
} hs_answers[] = {
    [HS_PATH] = { 404, "404 page not found\n" },
    [HS_AUTH_HEADER] = { 401, "Unauthorized: missing or invalid Authorization header\n" },
    [HS_TOKEN] = { 401, "Unauthorized: invalid or inactive token\n" },
    [HS_AGENT_ID] = { 400, "agent_id is required\n" },
    [HS_AGENT] = { 403, "Forbidden: agent not found or not authorized for this pool\n" },
};

/* The checks, in upstream's order. On HS_OK, agent_id and hash name the agent and its token. */
static hs_result handshake_check(cc_server *s, struct lws *wsi, char agent_id[REG_ID_MAX],
                                 char hash[REG_HASH_SIZE])
{
    char uri[sizeof CC_PATH + 1], auth[CC_AUTH_MAX], args[512];
    const char *v;
    int n;

    if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) <= 0 || strcmp(uri, CC_PATH) != 0)
        return HS_PATH;
    n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (n <= 0 || n >= (int)sizeof auth || lws_hdr_copy(wsi, auth, sizeof auth, WSI_TOKEN_HTTP_AUTHORIZATION) < 0)
        return n >= (int)sizeof auth ? HS_TOKEN : HS_AUTH_HEADER;
    if (strncmp(auth, "Bearer ", 7) != 0)
        return HS_AUTH_HEADER;
    registry_token_hash(auth + 7, hash);
    memset(auth, 0, sizeof auth);
    if (!registry_token_active(s->reg, hash))
        return HS_TOKEN;
    /* lws hands query arguments over already percent-decoded; the value follows "agent_id=" inside args. */
    v = lws_get_urlarg_by_name(wsi, "agent_id=", args, sizeof args);
    if (!v || !*v)
        return HS_AGENT_ID;
    n = (int)strlen(v);
    if (n >= (int)REG_ID_MAX) /* longer than any id of ours: not found */
        return HS_AGENT;
    memcpy(agent_id, v, (size_t)n + 1);
    if (!registry_agent_find(s->reg, agent_id))
        return HS_AGENT;
    return HS_OK;
}

/* Writes a complete plain-text response (headers and body) like Go's http.Error. 0 or -1. */
static int reply_plain(struct lws *wsi, unsigned status, const char *body)
{
    unsigned char buf[LWS_PRE + 512], *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf;
    size_t blen = strlen(body);

    if (lws_add_http_common_headers(wsi, status, "text/plain; charset=utf-8", blen, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"x-content-type-options:",
                                    (const unsigned char *)"nosniff", 7, &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close", 5, &p, end) ||
        lws_finalize_http_header(wsi, &p, end))
        return -1;
    if (lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_HEADERS) != (int)(p - start))
        return -1;
    if (blen > (size_t)(end - start))
        return -1;
    memcpy(start, body, blen);
    if (lws_write(wsi, start, blen, LWS_WRITE_HTTP_FINAL) != (int)blen)
        return -1;
    return 0;
}

/* ---- connections ---- */

static void queue_clear(cc_conn *c)
{
    while (c->qhead) {
        cc_msg *n = c->qhead->next;
        free(c->qhead);
        c->qhead = n;
    }
    c->qtail = NULL;
    c->nq = c->qbytes = 0;
}

/* The agent no longer has this connection. */
static void agent_detach(cc_conn *c)
{
    reg_agent *a = registry_agent_find(c->srv->reg, c->agent_id);
    if (a && a->conn == c) {
        a->conn = NULL;
        a->online = false;
        a->last_ping_at_ns = now_ns(); /* upstream stamps the disconnect (ref §3.6) */
        if (c->srv->hooks.disconnected)
            c->srv->hooks.disconnected(c->srv->hooks.arg, c->agent_id);
    }
}

/* Starts a clean close of c from anywhere; see the top comment. Returns 1 if c was open. */
static int conn_close(cc_conn *c, int code, const char *why)
{
    if (c->closing)
        return 0;
    c->closing = true;
    c->close_code = code;
    snprintf(c->close_why, sizeof c->close_why, "%s", why);
    agent_detach(c);
    log_info("cc", "agent %s: closing connection (%d %s)", c->agent_id, code, why);
    lws_set_timer_usecs(c->wsi, 1);
    /* lws 4.1 re-arms its libuv timer only when it services something; from outside its callbacks (an HTTP
     * handler, our own timer) nothing would, so wake it up. */
    lws_cancel_service(lws_get_context(c->wsi));
    return 1;
}

/* Releases what the connection holds; safe to call twice (CLOSED, then WSI_DESTROY). */
static void conn_release(cc_conn *c)
{
    if (!c->srv)
        return;
    agent_detach(c);
    if (c->prev)
        c->prev->next = c->next;
    else if (c->srv->conns == c)
        c->srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    queue_clear(c);
    free(c->rx);
    c->rx = NULL;
    log_info("cc", "agent %s: disconnected%s%s", c->agent_id, c->closing ? " by us: " : "",
             c->closing ? c->close_why : "");
    c->srv = NULL;
}

static int conn_established(cc_server *s, struct lws *wsi, cc_conn *c)
{
    hs_result r = handshake_check(s, wsi, c->agent_id, c->token_hash);
    reg_agent *a;

    if (r != HS_OK) /* the agent went away between the upgrade request and now */
        return -1;
    a = registry_agent_find(s->reg, c->agent_id);
    c->srv = s;
    c->wsi = wsi;
    c->last_ping_ns = now_ns();
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    if (a->conn)
        conn_close(a->conn, CC_CLOSE_GOING_AWAY, "replaced by a new connection");
    a->conn = c;
    a->online = true;
    a->last_ping_at_ns = c->last_ping_ns;
    log_info("cc", "agent %s: connected", c->agent_id);
    return 0;
}

/* One complete frame from the agent. -1 closes the connection (close reason set). */
static int conn_frame(cc_conn *c, const char *data, size_t len)
{
    proto_msg m;
    char err[256];
    int rc = proto_decode(data, len, &m, err, sizeof err);

    if (rc != PROTO_OK) {
        log_warn("cc", "agent %s: malformed frame, closing the connection: %s", c->agent_id, err);
        snprintf(c->close_why, sizeof c->close_why, "malformed frame");
        lws_close_reason(c->wsi, LWS_CLOSE_STATUS_INVALID_PAYLOAD, (unsigned char *)"malformed frame", 15);
        proto_msg_free(&m);
        return -1;
    }
    if (m.type == MSG_HEARTBEAT) {
        reg_agent *a = registry_agent_find(c->srv->reg, c->agent_id);
        cJSON *root = json_parse_object(data, len, err, sizeof err);
        char *payload = root ? cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(root, "payload")) : NULL;
        c->last_ping_ns = now_ns();
        if (a && a->conn == c && payload &&
            registry_agent_heartbeat(a, payload, strlen(payload), c->last_ping_ns) == 0)
            log_debug("cc", "agent %s: heartbeat %llu", c->agent_id, (unsigned long long)a->heartbeats);
        cJSON_free(payload);
        cJSON_Delete(root);
    } else if (m.type == MSG_LOG_STREAM) {
        log_debug("cc", "agent %s: log_stream task %llu", c->agent_id,
                  (unsigned long long)m.u.log_stream.task_id);
    } else {
        log_info("cc", "agent %s: %s", c->agent_id, m.type_name ? m.type_name : proto_type_name(m.type));
    }
    if (c->srv->hooks.frame)
        c->srv->hooks.frame(c->srv->hooks.arg, c->agent_id, &m);
    proto_msg_free(&m);
    return 0;
}

static int conn_receive(cc_conn *c, struct lws *wsi, const char *in, size_t len)
{
    size_t remaining = lws_remaining_packet_payload(wsi);

    if (c->rx_len + len + remaining > PROTO_MAX_FRAME) {
        log_warn("cc", "agent %s: frame over %u bytes, closing the connection", c->agent_id, PROTO_MAX_FRAME);
        snprintf(c->close_why, sizeof c->close_why, "frame too large");
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, NULL, 0);
        return -1;
    }
    if (c->rx_len + len + 1 > c->rx_cap) {
        size_t cap = c->rx_cap ? c->rx_cap : 4096;
        while (cap < c->rx_len + len + 1)
            cap *= 2;
        char *n = realloc(c->rx, cap);
        if (!n)
            return -1;
        c->rx = n;
        c->rx_cap = cap;
    }
    memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += len;
    if (!lws_is_final_fragment(wsi) || remaining)
        return 0;
    size_t n = c->rx_len;
    c->rx_len = 0;
    if (c->closing)
        return 0; /* going away: nothing it says matters */
    return conn_frame(c, c->rx, n);
}

static int conn_writeable(cc_conn *c, struct lws *wsi)
{
    cc_msg *m = c->qhead;

    if (!m || c->closing)
        return 0;
    if (lws_write(wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT) < (int)m->len)
        return -1;
    c->qhead = m->next;
    if (!c->qhead)
        c->qtail = NULL;
    c->nq--;
    c->qbytes -= m->len;
    free(m);
    if (c->qhead)
        lws_callback_on_writable(wsi);
    return 0;
}

static int cc_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    cc_server *s = lws_context_user(lws_get_context(wsi));
    cc_conn *c = user;
    char agent_id[REG_ID_MAX], hash[REG_HASH_SIZE];
    hs_result r;

    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        if (strcmp((const char *)in, "websocket") != 0)
            return reply_plain(wsi, 400, "Bad Request\n") ? -1 : 1;
        r = handshake_check(s, wsi, agent_id, hash);
        if (r == HS_OK)
            return 0;
        log_info("cc", "handshake refused: %u %.*s", hs_answers[r].status,
                 (int)strlen(hs_answers[r].body) - 1, hs_answers[r].body);
        return reply_plain(wsi, hs_answers[r].status, hs_answers[r].body) ? -1 : 1;

    case LWS_CALLBACK_HTTP:
        /* A plain request: upstream runs its checks, then the upgrade itself fails with 400. */
        r = handshake_check(s, wsi, agent_id, hash);
        if (reply_plain(wsi, r == HS_OK ? 400 : hs_answers[r].status, r == HS_OK ? "Bad Request\n" :
                        hs_answers[r].body))
            return -1;
        return lws_http_transaction_completed(wsi) ? -1 : 0;

    case LWS_CALLBACK_ESTABLISHED:
        return conn_established(s, wsi, c);

    case LWS_CALLBACK_RECEIVE:
        return c->srv ? conn_receive(c, wsi, in, len) : -1;

    case LWS_CALLBACK_SERVER_WRITEABLE:
        return c->srv ? conn_writeable(c, wsi) : 0;

    case LWS_CALLBACK_TIMER:
        if (!c->srv || !c->closing)
            return 0;
        lws_close_reason(wsi, (enum lws_close_status)c->close_code, (unsigned char *)c->close_why,
                         strlen(c->close_why));
        return -1;

    case LWS_CALLBACK_CLOSED:
    case LWS_CALLBACK_WSI_DESTROY:
        if (c)
            conn_release(c);
        return 0;

    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static const struct lws_protocols cc_protocols[] = {
    { "iac-cc", cc_callback, sizeof(cc_conn), 0, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 },
};

/* ---- server ---- */

/* lws 4.1.6 does not fail cleanly when its listener cannot bind: it returns a context without its vhost, and
 * destroying that context crashes in a libuv callback. So a plain socket tries the address first, which also gives
 * the reason lws does not. 0, or -errno. */
static int probe_bind(const char *host, int port)
{
    struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM };
    struct addrinfo *ai = NULL;
    char portstr[16];
    int fd, one = 1, rc = 0;

    snprintf(portstr, sizeof portstr, "%d", port);
    if (getaddrinfo(host, portstr, &hints, &ai) != 0)
        return -EADDRNOTAVAIL;
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        rc = -errno;
    else {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one); /* as lws does */
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0)
            rc = -errno;
        close(fd);
    }
    freeaddrinfo(ai);
    return rc;
}

cc_server *cc_listen(uv_loop_t *loop, const char *host, int port, registry *reg, char *err, size_t errlen)
{
    struct lws_vhost *vh;
    cc_server *s;
    int rc;

    if ((rc = probe_bind(host, port)) < 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port, strerror(-rc));
        return NULL;
    }
    if (!(s = calloc(1, sizeof *s))) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->loop = loop;
    s->reg = reg;

    /* No extensions: permessage-deflate stays off, as upstream's upgrader (ref §3.1). */
    const struct lws_context_creation_info info = {
        .options = strchr(host, ':') ? 0 : LWS_SERVER_OPTION_DISABLE_IPV6,
        .iface = host, .port = port, .protocols = cc_protocols, .user = s, .fd_limit_per_thread = CC_FD_LIMIT,
    };
    s->ctx = lwsloop_create(loop, &info);
    vh = s->ctx ? lws_get_vhost_by_name(s->ctx, "default") : NULL;
    s->port = vh ? lws_get_vhost_listen_port(vh) : -1;
    if (s->port <= 0) {
        /* Lost a race for the port after the probe. The half-made context cannot be destroyed safely (see
         * probe_bind): it is left as it is, and the caller exits. */
        snprintf(err, errlen, "cannot listen on %s:%d: libwebsockets could not start the listener", host, port);
        if (!s->ctx)
            free(s);
        return NULL;
    }
    return s;
}

int cc_port(const cc_server *s)
{
    return s->port;
}

void cc_set_hooks(cc_server *s, const cc_hooks *h)
{
    if (h)
        s->hooks = *h;
    else
        memset(&s->hooks, 0, sizeof s->hooks);
}

int cc_disconnect_agent(cc_server *s, const char *agent_id, int code, const char *why)
{
    reg_agent *a = registry_agent_find(s->reg, agent_id);
    return a && a->conn ? conn_close(a->conn, code, why) : 0;
}

size_t cc_disconnect_token(cc_server *s, const char *token_hash, int code, const char *why)
{
    size_t n = 0;
    for (cc_conn *c = s->conns; c; c = c->next)
        if (strcmp(c->token_hash, token_hash) == 0)
            n += (size_t)conn_close(c, code, why);
    return n;
}

int cc_send(cc_server *s, const char *agent_id, const char *frame, size_t len)
{
    reg_agent *a = registry_agent_find(s->reg, agent_id);
    cc_conn *c;
    cc_msg *m;

    if (!a)
        return -ENOENT;
    c = a->conn;
    if (!c || c->closing)
        return -ENOTCONN;
    if (c->nq >= CC_MAX_QUEUE || len > CC_MAX_QUEUE_BYTES - c->qbytes)
        return -ENOBUFS;
    m = malloc(sizeof *m + LWS_PRE + len);
    if (!m)
        return -ENOMEM;
    m->next = NULL;
    m->len = len;
    memcpy(m->buf + LWS_PRE, frame, len);
    if (c->qtail)
        c->qtail->next = m;
    else
        c->qhead = m;
    c->qtail = m;
    c->nq++;
    c->qbytes += len;
    lws_callback_on_writable(c->wsi);
    return 0;
}

size_t cc_check_liveness(cc_server *s, int64_t now, int64_t timeout_ns)
{
    size_t n = 0;
    for (cc_conn *c = s->conns; c; c = c->next)
        if (!c->closing && now - c->last_ping_ns > timeout_ns)
            n += (size_t)conn_close(c, CC_CLOSE_GOING_AWAY, "heartbeat timeout");
    return n;
}

/* ---- shutdown ---- */

/* The server is freed with the context: the connections lws closes on the way still reach it. */
void cc_free(cc_server *s)
{
    if (!s || s->freed)
        return;
    s->freed = true;
    if (lwsloop_destroy(s->loop, s->ctx, free, s) < 0)
        log_warn("cc", "out of memory: the C&C server is left as it is");
}
