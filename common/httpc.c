/* httpc.c — asynchronous HTTP client: libcurl's multi interface driven by a libuv loop; see httpc.h.
 *
 * One CURLM per client. curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION → one uv_poll_t per
 * socket) and when to wake it (CURLMOPT_TIMERFUNCTION → one uv_timer_t); libuv tells curl what happened
 * (curl_multi_socket_action), and after every such action finished transfers are collected with
 * curl_multi_info_read. Nothing here ever calls into curl from inside one of curl's callbacks: the socket and
 * timer callbacks only (re)arm libuv handles, and a zero timeout is just a timer due on this loop turn.
 *
 * A request (httpc_call) owns one easy handle for its whole life. A retry removes the handle from the multi,
 * waits on the call's own uv_timer (created on the first retry) and adds the same handle again.
 *
 * Big bodies. A streamed request body goes through on_read, which holds curl to the announced size (a source
 * that ends early fails the request instead of leaving the server waiting for bytes that never come) and is
 * rewound before each new attempt — by us for our retries, by curl (CURLOPT_SEEKFUNCTION) when it resends on a
 * fresh connection. Every method sends it the same way, as curl's POST with a known size (Content-Length) and
 * CUSTOMREQUEST naming the real method; CURLOPT_UPLOAD would do for PUT but not for POST. A response body bound
 * for a file is routed by the status of the response it belongs to, decided at its first byte: a 2xx goes to the
 * file, anything else to memory. File writes are plain write(2) calls on the loop: local disk, one curl buffer
 * (at most 16 KiB) at a time.
 *
 * Lifetimes. libuv handles are freed only in their close callbacks, so every handle we own is counted in
 * c->handles, and a client being freed releases its own memory in the last close callback. Callbacks into the
 * user may call httpc_request(), httpc_cancel() on any call, and httpc_free(): every entry from the loop is
 * bracketed by httpc_enter/leave, and httpc_free() inside such an entry only marks the client; the teardown runs
 * when the outermost entry leaves, and no further user callback runs once the client is marked.
 *
 * The one piece of static state is `curl_ready`: curl_global_init() must run once per process before any other
 * curl call and is not thread-safe; the agent is single-threaded, and a process that uses curl on other threads
 * (a test, say) calls curl_global_init() itself first, which makes ours a no-op.
 *
 * Secrets: the bearer token goes only into the Authorization header; headers are never logged, and error texts
 * come from curl (which never quotes request headers) with the token redacted should it ever appear. A client
 * key given as bytes is wiped before its memory is freed. */
#include "iac/httpc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "iac/strbuf.h"

#define HTTPC_CONNECT_TIMEOUT_MS 10000L
#define HTTPC_TOTAL_TIMEOUT_MS   60000L
#define HTTPC_MAX_RESPONSE       ((size_t)64 << 20)
#define HTTPC_RETRY_BASE_MS      1000u
#define HTTPC_MAX_ATTEMPTS       4  /* ref §2.3: MaxRetries 3 */
#define HTTPC_RETRY_CAP          10 /* the wait is capped at 10 × the base */
#define HTTPC_MAX_REDIRS         10L

typedef struct httpc_sock httpc_sock;

struct httpc {
    uv_loop_t  *loop;
    CURLM      *multi;
    uv_timer_t  timer;          /* curl's single timeout */
    long        connect_timeout_ms, total_timeout_ms;
    size_t      max_response;
    uint64_t    retry_base_ms;
    char       *ca_file;        /* NULL: curl's default store */
    /* TLS material from httpc_opts (copies, NULL when not given); the blobs point into them. The key is wiped
     * before it is freed. */
    char       *ca_pem, *cert_file, *key_file, *cert_pem, *key_pem;
    struct curl_blob ca_blob, cert_blob, key_blob;
    httpc_call *calls;          /* in flight or waiting to retry */
    size_t      ncalls;
    httpc_sock *socks;          /* sockets curl asked us to watch */
    unsigned    handles;        /* our uv handles not yet through their close callback */
    unsigned    depth;          /* nesting of entries from the loop (httpc_enter) */
    bool        freeing;        /* httpc_free() was called */
    bool        torn_down;
};

struct httpc_sock {
    httpc         *c;
    curl_socket_t  fd;
    uv_poll_t      poll;
    httpc_sock    *prev, *next;
};

typedef enum { CALL_RUNNING, CALL_WAITING, CALL_DONE } call_state;

/* Where the response body of the current attempt goes, decided at its first byte (sink_path calls only). */
typedef enum { SINK_UNDECIDED, SINK_FILE, SINK_MEMORY } sink_route;

struct httpc_call {
    httpc             *c;
    httpc_call        *prev, *next;
    call_state         state;
    CURL              *easy;
    struct curl_slist *headers;
    char              *method, *url, *body, *bearer;
    char              *content_type, *accept; /* whole header lines */
    size_t             body_len;
    httpc_mode         mode;
    httpc_cb           cb;
    void              *arg;
    int                attempts;
    strbuf             resp;
    bool               too_big, oom;
    bool               has_timer;
    /* streamed request body */
    httpc_body_read_fn   body_read;
    httpc_body_rewind_fn body_rewind;
    void                *body_arg;
    int64_t              body_size, body_sent;
    /* response body to a file */
    char              *sink_path;
    int64_t            max_file, sink_len;
    int                sink_fd;      /* open during an attempt that routes to the file, else -1 */
    sink_route         route;
    bool               sink_opened;  /* this attempt opened (and so truncated) the file */
    bool               sink_touched; /* some attempt did */
    long               timeout_ms;
    bool               follow_redirects;
    const char        *io_error;     /* what failed for HTTPC_E_IO (static text), NULL if nothing */
    int                io_errno;
    bool               io_on_sink;   /* io_error concerns sink_path (named in the message) */
    uv_timer_t         retry;
    char               errbuf[CURL_ERROR_SIZE];
};

static bool curl_ready;

static void httpc_teardown(httpc *c);
static void httpc_memory_free(httpc *c);

/* ---- lifetimes ---- */

static void httpc_enter(httpc *c) { c->depth++; }

static void httpc_leave(httpc *c)
{
    if (--c->depth == 0 && c->freeing && !c->torn_down)
        httpc_teardown(c);
}

/* Every close callback of ours ends here; the last one after httpc_free() releases the client. */
static void httpc_handle_gone(httpc *c)
{
    if (--c->handles == 0 && c->torn_down)
        httpc_memory_free(c);
}

static void timer_closed(uv_handle_t *h) { httpc_handle_gone(h->data); }

/* ---- sockets and timer: curl → libuv ---- */

static void on_poll(uv_poll_t *h, int status, int events);

static void sock_closed(uv_handle_t *h)
{
    httpc_sock *s = h->data;
    httpc *c = s->c;
    free(s);
    httpc_handle_gone(c);
}

static void sock_release(httpc_sock *s)
{
    httpc *c = s->c;
    if (s->prev)
        s->prev->next = s->next;
    else
        c->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, sock_closed);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    httpc *c = userp;
    httpc_sock *s = socketp;

    if (what == CURL_POLL_REMOVE) {
        if (s)
            sock_release(s); /* curl forgets the socket's assignment itself */
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s)
            return -1; /* curl fails the transfer */
        if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->c = c;
        s->fd = fd;
        s->poll.data = s;
        s->next = c->socks;
        if (c->socks)
            c->socks->prev = s;
        c->socks = s;
        c->handles++;
        curl_multi_assign(c->multi, fd, s);
    }
    int events = (what == CURL_POLL_IN || what == CURL_POLL_INOUT ? UV_READABLE : 0) |
                 (what == CURL_POLL_OUT || what == CURL_POLL_INOUT ? UV_WRITABLE : 0);
    return uv_poll_start(&s->poll, events, on_poll) == 0 ? 0 : -1;
}

static void on_timeout(uv_timer_t *t);

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    httpc *c = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_timeout, (uint64_t)timeout_ms, 0); /* 0: due on this loop turn, not now */
    return 0;
}

/* ---- one attempt ends ---- */

static bool status_2xx(long status) { return status >= 200 && status <= 299; }

static void io_fail(httpc_call *call, const char *what, int err, bool on_sink)
{
    if (!call->io_error) { /* the first failure is the one worth reporting */
        call->io_error = what;
        call->io_errno = err;
        call->io_on_sink = on_sink;
    }
}

/* Appends to the sink file, opening (and truncating) it at this attempt's first byte. */
static bool sink_write(httpc_call *call, const char *p, size_t len)
{
    if (call->max_file > 0 && (int64_t)len > call->max_file - call->sink_len) {
        call->too_big = true;
        return false;
    }
    if (call->sink_fd < 0) {
        call->sink_fd = open(call->sink_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (call->sink_fd < 0) {
            io_fail(call, "cannot create", errno, true);
            return false;
        }
        call->sink_opened = call->sink_touched = true;
        if (fchmod(call->sink_fd, 0644) < 0) { /* exactly 0644, whatever the umask */
            io_fail(call, "cannot set the mode of", errno, true);
            return false;
        }
    }
    while (len > 0) {
        ssize_t w = write(call->sink_fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            io_fail(call, "cannot write", w < 0 ? errno : EIO, true);
            return false;
        }
        p += w;
        len -= (size_t)w;
        call->sink_len += w;
    }
    return true;
}

static void sink_close(httpc_call *call)
{
    if (call->sink_fd >= 0 && close(call->sink_fd) < 0)
        io_fail(call, "cannot write", errno, true); /* NFS and friends report late */
    call->sink_fd = -1;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    httpc_call *call = arg;
    size_t len = size * n;
    if (call->sink_path && call->route == SINK_UNDECIDED) {
        long status = 0;
        curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status);
        call->route = status_2xx(status) ? SINK_FILE : SINK_MEMORY;
    }
    if (call->route == SINK_FILE)
        return sink_write(call, p, len) ? len : 0;
    if (len > call->c->max_response - call->resp.len) {
        call->too_big = true;
        return 0; /* anything but len aborts the transfer */
    }
    strbuf_append(&call->resp, p, len);
    if (call->resp.oom) {
        call->oom = true;
        return 0;
    }
    return len;
}

/* curl asks for the next piece of a streamed body. Held to the announced size both ways: never more than
 * body_size bytes, and an early end is an error (curl would otherwise stop sending and the server wait on). */
static size_t on_read(char *buf, size_t size, size_t n, void *arg)
{
    httpc_call *call = arg;
    size_t want = size * n;
    int64_t left = call->body_size - call->body_sent;
    if (left <= 0)
        return 0;
    if ((uint64_t)left < want)
        want = (size_t)left;
    size_t got = call->body_read(buf, want, call->body_arg);
    if (got == HTTPC_BODY_ABORT || got > want) {
        io_fail(call, "the request body source failed", 0, false);
        return CURL_READFUNC_ABORT;
    }
    if (got == 0) {
        io_fail(call, "the request body source ended before body_size bytes", 0, false);
        return CURL_READFUNC_ABORT;
    }
    call->body_sent += (int64_t)got;
    return got;
}

/* curl resends a body from the start (a reused connection that turned out dead); nothing else is supported. */
static int on_seek(void *arg, curl_off_t offset, int origin)
{
    httpc_call *call = arg;
    if (offset != 0 || origin != SEEK_SET || !call->body_rewind || call->body_rewind(call->body_arg) != 0)
        return CURL_SEEKFUNC_CANTSEEK;
    call->body_sent = 0;
    return CURL_SEEKFUNC_OK;
}

static void call_unlink(httpc_call *call)
{
    httpc *c = call->c;
    if (call->prev)
        call->prev->next = call->next;
    else if (c->calls == call)
        c->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    call->prev = call->next = NULL;
    c->ncalls--;
}

static void call_memory_free(httpc_call *call)
{
    free(call->method);
    free(call->url);
    free(call->body);
    free(call->sink_path);
    free(call->content_type);
    free(call->accept);
    if (call->bearer) {
        memset(call->bearer, 0, strlen(call->bearer));
        free(call->bearer);
    }
    strbuf_free(&call->resp);
    free(call);
}

static void call_timer_closed(uv_handle_t *h)
{
    httpc_call *call = h->data;
    httpc *c = call->c;
    call_memory_free(call);
    httpc_handle_gone(c);
}

/* Releases a call that is already unlinked and out of the multi handle. A sink file it wrote and did not hand
 * over with a 2xx is removed: a partial download must not look like a whole one. */
static void call_destroy(httpc_call *call, bool keep_sink)
{
    sink_close(call);
    if (call->sink_touched && !keep_sink)
        unlink(call->sink_path);
    if (call->easy)
        curl_easy_cleanup(call->easy);
    curl_slist_free_all(call->headers); /* holds the token: after the easy handle that points to it */
    call->easy = NULL;
    call->headers = NULL;
    if (call->has_timer) {
        uv_timer_stop(&call->retry);
        uv_close((uv_handle_t *)&call->retry, call_timer_closed);
    } else {
        call_memory_free(call);
    }
}

/* The attempt's outcome as an HTTPC_E_* code. */
static int attempt_error(const httpc_call *call, CURLcode rc)
{
    if (rc == CURLE_OK)
        return HTTPC_OK;
    if (call->too_big)
        return HTTPC_E_TOOBIG;
    if (call->io_error)
        return HTTPC_E_IO;
    if (call->oom || rc == CURLE_OUT_OF_MEMORY)
        return HTTPC_E_NOMEM;
    if (rc == CURLE_OPERATION_TIMEDOUT)
        return HTTPC_E_TIMEOUT;
    return HTTPC_E_TRANSPORT;
}

/* Which outcomes earn another attempt in HTTPC_RETRYING mode (ref §2.3): transport errors, timeouts, 5xx.
 * Never a 2xx–4xx answer; never a body too big or an allocation failure, which would fail the same way again. */
static bool attempt_retryable(int error, long status)
{
    switch (error) {
    case HTTPC_E_TRANSPORT:
    case HTTPC_E_TIMEOUT:
        return true;
    case HTTPC_OK:
        return status >= 500 && status <= 599;
    default:
        return false;
    }
}

/* errmsg for the callback: "METHOD URL: what went wrong", with curl's detailed text when it left one. The URL
 * is shown without user info, query or fragment, and the token is cut out should it ever appear. */
static void attempt_errmsg(httpc_call *call, CURLcode rc, char *out, size_t outlen)
{
    char io[512] = "";
    if (call->io_error)
        snprintf(io, sizeof io, "%s%s%s%s%s", call->io_error, call->io_on_sink ? " " : "",
                 call->io_on_sink ? call->sink_path : "", call->io_errno ? ": " : "",
                 call->io_errno ? strerror(call->io_errno) : "");
    const char *msg = call->too_big ? (call->route == SINK_FILE ? "response body larger than max_file"
                                                                : "response body larger than the client's max_response")
                      : call->io_error  ? io
                      : call->errbuf[0] ? call->errbuf
                                        : curl_easy_strerror(rc);
    const char *url = call->url, *sep = strstr(url, "://");
    const char *authority = sep ? sep + 3 : url;
    const char *at = memchr(authority, '@', strcspn(authority, "/?#"));
    const char *host = at ? at + 1 : authority;
    snprintf(out, outlen, "%s %.*s%.*s: %s", call->method, (int)(authority - url), url,
             (int)strcspn(host, "?#"), host, msg);

    size_t n = call->bearer ? strlen(call->bearer) : 0;
    if (n >= 4) /* each pass shortens the text, so this ends */
        for (char *t; (t = strstr(out, call->bearer));) {
            memcpy(t, "***", 3);
            memmove(t + 3, t + n, strlen(t + n) + 1);
        }
}

static void on_retry(uv_timer_t *t);

static void call_finish(httpc_call *call, int error, long status, const char *errmsg)
{
    bool to_file = error == HTTPC_OK && call->sink_path && status_2xx(status);
    httpc_response res = {
        .error = error,
        .status = error == HTTPC_OK ? status : 0,
        .errmsg = error == HTTPC_OK ? "" : errmsg,
        .body = error == HTTPC_OK && !to_file && call->resp.data ? call->resp.data : "",
        .body_len = error != HTTPC_OK ? 0 : to_file ? (size_t)call->sink_len : call->resp.len,
        .attempts = call->attempts,
    };
    call->state = CALL_DONE;
    call_unlink(call);
    /* The file is settled before the callback: whole after a 2xx, gone otherwise. */
    sink_close(call);
    if (call->sink_touched && !to_file) {
        unlink(call->sink_path);
        call->sink_touched = false;
    }
    if (!call->c->freeing)
        call->cb(&res, call->arg);
    call_destroy(call, to_file);
}

/* A 2xx whose body went to the file is final only once the file is: an empty body still creates it, and a
 * failed close turns into HTTPC_E_IO. */
static int sink_settle(httpc_call *call, int error, long status)
{
    if (!call->sink_path || error != HTTPC_OK || !status_2xx(status))
        return error;
    if (!call->sink_opened) {
        call->route = SINK_FILE;
        if (!sink_write(call, "", 0))
            return HTTPC_E_IO;
    }
    sink_close(call);
    return call->io_error ? HTTPC_E_IO : HTTPC_OK;
}

static uint64_t retry_delay(const httpc *c, int attempts)
{
    uint64_t d = c->retry_base_ms << (attempts - 1); /* attempts 1, 2, 3 → base × 1, 2, 4 */
    uint64_t cap = c->retry_base_ms * HTTPC_RETRY_CAP;
    return d < cap ? d : cap;
}

/* A transfer finished (CURLMSG_DONE): retry it or report it. */
static void attempt_done(httpc_call *call, CURLcode rc)
{
    httpc *c = call->c;
    long status = 0;
    curl_multi_remove_handle(c->multi, call->easy);
    int error = attempt_error(call, rc);
    if (error == HTTPC_OK)
        curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status);
    sink_close(call);

    /* A streamed body that cannot be rewound cannot be sent twice. */
    bool can_resend = !call->body_read || call->body_rewind;
    if (call->mode == HTTPC_RETRYING && call->attempts < HTTPC_MAX_ATTEMPTS && can_resend &&
        attempt_retryable(error, status)) {
        if (!call->has_timer) {
            uv_timer_init(c->loop, &call->retry);
            call->retry.data = call;
            call->has_timer = true;
            c->handles++;
        }
        call->state = CALL_WAITING;
        uv_timer_start(&call->retry, on_retry, retry_delay(c, call->attempts), 0);
        return;
    }
    error = sink_settle(call, error, status);
    char errmsg[CURL_ERROR_SIZE + 1024] = "";
    if (error != HTTPC_OK)
        attempt_errmsg(call, rc, errmsg, sizeof errmsg);
    call_finish(call, error, status, errmsg);
}

static void check_done(httpc *c)
{
    CURLMsg *msg;
    int left;
    while (!c->freeing && (msg = curl_multi_info_read(c->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        char *priv = NULL;
        CURLcode rc = msg->data.result; /* msg is invalid once the handle is removed */
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        if (priv)
            attempt_done((httpc_call *)priv, rc);
    }
}

/* ---- libuv → curl ---- */

static void on_poll(uv_poll_t *h, int status, int events)
{
    httpc_sock *s = h->data;
    httpc *c = s->c;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR; /* libuv has stopped the poll; curl will find the error and drop the socket */
    else
        flags = (events & UV_READABLE ? CURL_CSELECT_IN : 0) | (events & UV_WRITABLE ? CURL_CSELECT_OUT : 0);
    int running;
    httpc_enter(c);
    curl_multi_socket_action(c->multi, s->fd, flags, &running); /* may release s (closed, not yet freed) */
    check_done(c);
    httpc_leave(c);
}

static void on_timeout(uv_timer_t *t)
{
    httpc *c = t->data;
    int running;
    httpc_enter(c);
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(c);
    httpc_leave(c);
}

/* Starts an attempt: the easy handle (re)joins the multi; curl arms its timer, and the loop does the rest. */
static CURLMcode attempt_start(httpc_call *call)
{
    call->attempts++;
    call->state = CALL_RUNNING;
    call->too_big = call->oom = false;
    call->errbuf[0] = '\0';
    call->io_error = NULL;
    call->io_errno = 0;
    call->io_on_sink = false;
    call->body_sent = 0;
    call->sink_len = 0;
    call->route = SINK_UNDECIDED;
    call->sink_opened = false;
    strbuf_free(&call->resp);
    return curl_multi_add_handle(call->c->multi, call->easy);
}

static void on_retry(uv_timer_t *t)
{
    httpc_call *call = t->data;
    httpc *c = call->c;
    httpc_enter(c);
    if (call->body_read && call->body_rewind(call->body_arg) != 0) {
        char errmsg[1024];
        io_fail(call, "cannot rewind the request body source", 0, false);
        attempt_errmsg(call, CURLE_OK, errmsg, sizeof errmsg);
        call_finish(call, HTTPC_E_IO, 0, errmsg);
    } else if (attempt_start(call) != CURLM_OK) {
        call_finish(call, HTTPC_E_NOMEM, 0, "cannot restart the transfer");
    }
    httpc_leave(c);
}

/* ---- requests ---- */

/* Methods that always send a body (Content-Length: 0 when none is given); the others send one only if given. */
static const char *const body_methods[] = { "POST", "PUT", "PATCH" };

/* Header values must not be able to start another header line. */
static bool header_safe(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

static bool method_ok(const char *m)
{
    size_t n = 0;
    for (; m[n]; n++)
        if (m[n] < 'A' || m[n] > 'Z')
            return false;
    return n > 0 && n <= 16;
}

/* "Name: value", malloc'd. */
static char *header_line(const char *name, const char *value)
{
    strbuf b = STRBUF_INIT;
    strbuf_printf(&b, "%s: %s", name, value);
    if (b.oom) {
        strbuf_free(&b);
        return NULL;
    }
    return strbuf_detach(&b, NULL);
}

static bool call_header(httpc_call *call, const char *line)
{
    struct curl_slist *h = curl_slist_append(call->headers, line);
    if (!h)
        return false;
    call->headers = h;
    return true;
}

static bool call_setup(httpc_call *call)
{
    httpc *c = call->c;
    CURL *e = call->easy;
    bool sends_body = call->body != NULL || call->body_read != NULL;
    for (size_t i = 0; i < sizeof body_methods / sizeof body_methods[0]; i++)
        sends_body = sends_body || !strcmp(body_methods[i], call->method);

    if (!call_header(call, call->content_type) || !call_header(call, "Expect:"))
        return false; /* "Expect:" (empty) spares a 100-continue round trip before each body */
    if (call->accept && !call_header(call, call->accept))
        return false;
    if (call->bearer) {
        strbuf auth = STRBUF_INIT;
        strbuf_printf(&auth, "Authorization: Bearer %s", call->bearer);
        bool ok = !auth.oom && call_header(call, auth.data);
        if (auth.data)
            memset(auth.data, 0, auth.len);
        strbuf_free(&auth);
        if (!ok)
            return false;
    }

    CURLcode rc = CURLE_OK;
#define SET(opt, val) (rc = rc != CURLE_OK ? rc : curl_easy_setopt(e, opt, val))
    SET(CURLOPT_URL, call->url);
    SET(CURLOPT_HTTPHEADER, call->headers);
    SET(CURLOPT_PRIVATE, (void *)call);
    SET(CURLOPT_ERRORBUFFER, call->errbuf);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, (void *)call);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    SET(CURLOPT_TIMEOUT_MS, call->timeout_ms > 0 ? call->timeout_ms : c->total_timeout_ms);
    SET(CURLOPT_FOLLOWLOCATION, call->follow_redirects ? 1L : 0L);
    SET(CURLOPT_MAXREDIRS, HTTPC_MAX_REDIRS);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
#if LIBCURL_VERSION_NUM >= 0x075500
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    SET(CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    if (c->ca_pem) /* like CAINFO, as bytes (curl ≥ 7.77 with OpenSSL) */
        SET(CURLOPT_CAINFO_BLOB, &c->ca_blob);
    else if (c->ca_file) /* replaces curl's CA file; its CA directory (Debian: /etc/ssl/certs) still applies */
        SET(CURLOPT_CAINFO, c->ca_file);
    if (c->cert_pem)
        SET(CURLOPT_SSLCERT_BLOB, &c->cert_blob);
    else if (c->cert_file)
        SET(CURLOPT_SSLCERT, c->cert_file);
    if (c->key_pem)
        SET(CURLOPT_SSLKEY_BLOB, &c->key_blob);
    else if (c->key_file)
        SET(CURLOPT_SSLKEY, c->key_file);
    /* curl's own verbs are POST (with a body) and GET (without); anything else is named with CUSTOMREQUEST. */
    if (call->body_read) { /* POST without POSTFIELDS: curl reads the body, announcing its size */
        SET(CURLOPT_POST, 1L);
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body_size);
        SET(CURLOPT_READFUNCTION, on_read);
        SET(CURLOPT_READDATA, (void *)call);
        SET(CURLOPT_SEEKFUNCTION, on_seek);
        SET(CURLOPT_SEEKDATA, (void *)call);
    } else if (sends_body) {
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body_len);
        SET(CURLOPT_POSTFIELDS, call->body ? call->body : "");
    } else if (!strcmp(call->method, "HEAD")) {
        SET(CURLOPT_NOBODY, 1L); /* or curl would wait for the body Content-Length announces */
    } else {
        SET(CURLOPT_HTTPGET, 1L);
    }
    if (strcmp(call->method, sends_body ? "POST" : "GET") && strcmp(call->method, "HEAD"))
        SET(CURLOPT_CUSTOMREQUEST, call->method);
#undef SET
    return rc == CURLE_OK;
}

httpc_call *httpc_request(httpc *c, const httpc_req *req, httpc_cb cb, void *arg)
{
    if (!c || c->freeing || !req || !req->url || !cb)
        return NULL;
    const char *method = req->method ? req->method : "GET";
    if (!method_ok(method) || !header_safe(req->url) || (req->bearer && !header_safe(req->bearer)) ||
        (req->content_type && (!req->content_type[0] || !header_safe(req->content_type))) ||
        (req->accept && (!req->accept[0] || !header_safe(req->accept))))
        return NULL;
    if (req->body_read && (req->body || req->body_size < 0))
        return NULL; /* two bodies, or a size we cannot announce (see httpc_req) */
    if (req->sink_path && (!req->sink_path[0] || req->max_file < 0))
        return NULL;

    httpc_call *call = calloc(1, sizeof *call);
    if (!call)
        return NULL;
    call->sink_fd = -1;
    call->c = c;
    call->mode = req->mode;
    call->cb = cb;
    call->arg = arg;
    call->method = strdup(method);
    call->url = strdup(req->url);
    call->bearer = req->bearer ? strdup(req->bearer) : NULL;
    if (req->body) {
        call->body = malloc(req->body_len ? req->body_len : 1);
        if (call->body)
            memcpy(call->body, req->body, req->body_len);
        call->body_len = req->body_len;
    }
    call->body_read = req->body_read;
    call->body_rewind = req->body_rewind;
    call->body_arg = req->body_arg;
    call->body_size = req->body_size;
    call->sink_path = req->sink_path ? strdup(req->sink_path) : NULL;
    call->max_file = req->max_file;
    call->timeout_ms = req->timeout_ms;
    call->follow_redirects = req->follow_redirects;
    call->content_type = header_line("Content-Type", req->content_type ? req->content_type : "application/json");
    call->accept = req->accept ? header_line("Accept", req->accept) : NULL;
    call->easy = curl_easy_init();
    if (!call->method || !call->url || (req->bearer && !call->bearer) || (req->body && !call->body) ||
        (req->sink_path && !call->sink_path) || !call->content_type || (req->accept && !call->accept) ||
        !call->easy || !call_setup(call) ||
        attempt_start(call) != CURLM_OK) {
        call_destroy(call, false);
        return NULL;
    }
    call->next = c->calls;
    if (c->calls)
        c->calls->prev = call;
    c->calls = call;
    c->ncalls++;
    return call;
}

void httpc_cancel(httpc_call *call)
{
    if (!call || call->state == CALL_DONE)
        return; /* inside its own callback: it is already finished */
    httpc *c = call->c;
    if (call->state == CALL_RUNNING)
        curl_multi_remove_handle(c->multi, call->easy); /* also drops a DONE message not yet read */
    call->state = CALL_DONE;
    call_unlink(call);
    call_destroy(call, false);
}

size_t httpc_pending(const httpc *c) { return c ? c->ncalls : 0; }

/* ---- client ---- */

/* Copies PEM bytes for curl (NULL or empty: not given). curl reads them in place (CURL_BLOB_NOCOPY): they live
 * as long as the client, longer than any easy handle or connection. */
static bool tls_blob(const char *pem, size_t len, char **copy, struct curl_blob *blob)
{
    if (!pem || len == 0)
        return true;
    if (!(*copy = malloc(len)))
        return false;
    memcpy(*copy, pem, len);
    *blob = (struct curl_blob){ .data = *copy, .len = len, .flags = CURL_BLOB_NOCOPY };
    return true;
}

static void httpc_memory_free(httpc *c)
{
    free(c->ca_file);
    free(c->ca_pem);
    free(c->cert_file);
    free(c->key_file);
    free(c->cert_pem);
    if (c->key_pem) {
        memset(c->key_pem, 0, c->key_blob.len);
        free(c->key_pem);
    }
    free(c);
}

httpc *httpc_new(uv_loop_t *loop, const httpc_opts *opts)
{
    static const httpc_opts defaults;
    if (!loop)
        return NULL;
    if (!opts)
        opts = &defaults;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return NULL;
        curl_ready = true;
    }
    httpc *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->loop = loop;
    c->connect_timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : HTTPC_CONNECT_TIMEOUT_MS;
    c->total_timeout_ms = opts->total_timeout_ms > 0 ? opts->total_timeout_ms : HTTPC_TOTAL_TIMEOUT_MS;
    c->max_response = opts->max_response ? opts->max_response : HTTPC_MAX_RESPONSE;
    c->retry_base_ms = opts->retry_base_ms ? opts->retry_base_ms : HTTPC_RETRY_BASE_MS;
    bool ca_bytes = opts->ca_pem && opts->ca_pem_len > 0;
    const char *ca = ca_bytes ? NULL : opts->ca_file ? opts->ca_file : getenv("SSL_CERT_FILE");
    bool ok = (!ca || !*ca || (c->ca_file = strdup(ca))) &&
              tls_blob(opts->ca_pem, opts->ca_pem_len, &c->ca_pem, &c->ca_blob) &&
              tls_blob(opts->cert_pem, opts->cert_pem_len, &c->cert_pem, &c->cert_blob) &&
              tls_blob(opts->key_pem, opts->key_pem_len, &c->key_pem, &c->key_blob) &&
              (!opts->cert_file || (c->cert_file = strdup(opts->cert_file))) &&
              (!opts->key_file || (c->key_file = strdup(opts->key_file))) && (c->multi = curl_multi_init());
    if (!ok) {
        httpc_memory_free(c);
        return NULL;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->handles = 1;
    return c;
}

/* Cancels everything, closes every handle; the client's memory goes in the last close callback. */
static void httpc_teardown(httpc *c)
{
    c->torn_down = true;
    while (c->calls)
        httpc_cancel(c->calls);
    curl_multi_cleanup(c->multi); /* closes cached connections, telling on_curl_socket to drop their polls */
    c->multi = NULL;
    while (c->socks)
        sock_release(c->socks);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, timer_closed);
}

void httpc_free(httpc *c)
{
    if (!c || c->freeing)
        return;
    c->freeing = true;
    if (c->depth == 0)
        httpc_teardown(c);
}
