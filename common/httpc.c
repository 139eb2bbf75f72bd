/* httpc.c — asynchronous HTTP client on a libuv loop: http:// through h1 (our own HTTP/1.1 exchange), https://
 * through libcurl's multi interface, loaded on first use; see httpc.h.
 *
 * Two transports, one request. Everything a caller sees — retries, the sink file, the streamed body, the size
 * limits, the error texts — lives here, above the transport; a transport only carries one hop of one attempt and
 * reports (status, body bytes, end). Why two: Debian's libcurl brings 39 shared libraries whose loading costs an
 * agent ~4 MiB of RSS and ~3.3 ms at every start, and curl_global_init initialises OpenSSL (~2 MiB more), although
 * an agent talking plain http to its control plane needs none of it (bench/README.md). libcurl is therefore not
 * linked: the first https hop dlopens it (common/dynlib), and a process that never meets an https URL never loads
 * it or OpenSSL's TLS state.
 *
 * h1 knows no proxies: when http_proxy is set, libcurl carries http:// too, so that the proxy and no_proxy apply
 * exactly as they did before h1 existed.
 *
 * An attempt is one or more hops: an http hop that answers a redirect the caller wants followed starts the next
 * hop itself (h1 knows nothing of redirects); a hop to https hands the rest to curl, which follows further
 * redirects itself. The bearer token goes only to the origin of the request's own URL, whichever transport
 * carries the hop.
 *
 * libcurl's side. One CURLM per client, created with the first https hop. curl tells us which sockets to watch
 * (CURLMOPT_SOCKETFUNCTION → one uv_poll_t per socket) and when to wake it (CURLMOPT_TIMERFUNCTION → one uv_timer_t);
 * libuv tells curl what happened (curl_multi_socket_action), and after every such action finished transfers are
 * collected with curl_multi_info_read. Nothing here ever calls into curl from inside one of curl's callbacks: the
 * socket and timer callbacks only (re)arm libuv handles, and a zero timeout is just a timer due on this loop turn.
 * A curl hop owns one easy handle, made for it and cleaned up when it ends.
 *
 * Big bodies. A streamed request body is pulled through body_pull, which holds the source to the announced size
 * (a source that ends early fails the request instead of leaving the server waiting for bytes that never come)
 * and is rewound before each new attempt — by us for our retries and 307/308 redirects, by curl
 * (CURLOPT_SEEKFUNCTION) when it resends on a fresh connection. A response body bound for a file is routed by the
 * status of the response it belongs to, decided at its first byte: a 2xx goes to the file, anything else to
 * memory. File writes are plain write(2) calls on the loop: local disk, one read buffer (at most 16 KiB) at a time.
 *
 * Lifetimes. libuv handles are freed only in their close callbacks, so every handle we own is counted in
 * c->handles, and a client being freed releases its own memory in the last close callback. Callbacks into the
 * user may call httpc_request(), httpc_cancel() on any call, and httpc_free(): every entry from the loop is
 * bracketed by httpc_enter/leave, and httpc_free() inside such an entry only marks the client; the teardown runs
 * when the outermost entry leaves, and no further user callback runs once the client is marked. A failure found
 * while an attempt starts is reported from the call's timer on a later loop turn, never from inside
 * httpc_request().
 *
 * Static state: libcurl's function table and library handle (a process has one libcurl), and `curl_ready`:
 * curl_global_init() must run once per process before any other curl call and is not thread-safe; the agent is
 * single-threaded, and a process that uses curl on other threads (a test, say) calls curl_global_init() itself
 * first, which makes ours a no-op.
 *
 * Secrets: the bearer token goes only into the Authorization header; headers are never logged, and error texts
 * come from curl or h1 (which never quote request headers) with the token redacted should it ever appear. A
 * client key given as bytes is wiped before its memory is freed. */
#include "iac/httpc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "iac/dynlib.h"
#include "iac/h1.h"
#include "iac/strbuf.h"

#define HTTPC_CONNECT_TIMEOUT_MS 10000L
#define HTTPC_TOTAL_TIMEOUT_MS   60000L
#define HTTPC_MAX_RESPONSE       ((size_t)64 << 20)
#define HTTPC_RETRY_BASE_MS      1000u
/* Idle plain-http connections kept for the next request to the same server (h1_pool): a few, for a while — less
 * than the idle timeouts of common servers and balancers (60 s and more), so that they close them rarely first. */
#define HTTPC_IDLE_MAX           8u
#define HTTPC_IDLE_MS            15000u
#define HTTPC_MAX_ATTEMPTS       4  /* ref §2.3: MaxRetries 3 */
#define HTTPC_RETRY_CAP          10 /* the wait is capped at 10 × the base */
#define HTTPC_MAX_REDIRS         10L
#define HTTPC_CURL_LIB           "libcurl.so.4" /* Debian's libcurl4 */

/* The libcurl functions used here, each found by its name and typed by its declaration in curl.h. */
#define HTTPC_CURL_FUNCS(X)                                                                                       \
    X(curl_global_init) X(curl_multi_init) X(curl_multi_setopt) X(curl_multi_socket_action)                       \
    X(curl_multi_info_read) X(curl_multi_add_handle) X(curl_multi_remove_handle) X(curl_multi_assign)             \
    X(curl_multi_cleanup) X(curl_easy_init) X(curl_easy_setopt) X(curl_easy_getinfo) X(curl_easy_cleanup)        \
    X(curl_easy_strerror) X(curl_slist_append) X(curl_slist_free_all)

static struct {
#define X(f) __typeof__(f) *f;
    HTTPC_CURL_FUNCS(X)
#undef X
} lc;

static const dynlib_sym curl_syms[] = {
#define X(f) { #f, offsetof(__typeof__(lc), f) },
    HTTPC_CURL_FUNCS(X)
#undef X
};

static uv_lib_t curl_lib;
static bool     curl_loaded, curl_ready;

typedef struct httpc_sock httpc_sock;

struct httpc {
    uv_loop_t  *loop;
    CURLM      *multi;          /* NULL until the first https hop */
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
    h1_pool    *pool;           /* idle plain-http connections (h1 keep-alive) */
    unsigned    handles;        /* our uv handles not yet through their close callback */
    unsigned    depth;          /* nesting of entries from the loop (httpc_enter) */
    bool        http_via_curl;  /* http_proxy is set: curl carries http too, and applies the proxy and no_proxy */
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

/* Which transport carries the current hop. */
typedef enum { HOP_NONE, HOP_H1, HOP_CURL } hop_kind;

struct httpc_call {
    httpc             *c;
    httpc_call        *prev, *next;
    call_state         state;
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
    uv_timer_t         retry;        /* the wait before a retry, or the turn before a failure at start is told */
    /* the current hop */
    hop_kind           hop;
    char              *hop_url;      /* NULL: url */
    bool               hop_get;      /* a redirect turned the request into a GET without body */
    int                redirects;
    uint64_t           attempt_start_ms;
    h1_exchange       *x;            /* HOP_H1 */
    long               h1_status;    /* HOP_H1: status of the response being read */
    bool               h1_follow;    /* HOP_H1: it is a redirect with a Location, to be followed */
    char              *redirect_to;  /* HOP_H1: the next hop, when this response is a redirect to follow */
    CURL              *easy;         /* HOP_CURL */
    struct curl_slist *headers;
    char               errbuf[CURL_ERROR_SIZE];
    /* a failure found while an attempt started, told from the timer */
    int                late_error;
    char               late_msg[256];
};

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

/* ---- libcurl, loaded on first use ---- */

static int curl_load(char *err, size_t errlen)
{
    if (!curl_loaded) {
        if (dynlib_load(&curl_lib, HTTPC_CURL_LIB, "libcurl4", "carries https requests", curl_syms,
                        sizeof curl_syms / sizeof curl_syms[0], &lc, err, errlen) < 0)
            return -1;
        curl_loaded = true;
    }
    if (!curl_ready) {
        if (lc.curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            snprintf(err, errlen, "libcurl could not initialise");
            return -1;
        }
        curl_ready = true;
    }
    return 0;
}

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
        lc.curl_multi_assign(c->multi, fd, s);
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

/* The client's multi handle, made at its first https hop. */
static bool multi_ready(httpc *c)
{
    if (c->multi)
        return true;
    if (!(c->multi = lc.curl_multi_init()))
        return false;
    (lc.curl_multi_setopt)(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    (lc.curl_multi_setopt)(c->multi, CURLMOPT_SOCKETDATA, c);
    (lc.curl_multi_setopt)(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    (lc.curl_multi_setopt)(c->multi, CURLMOPT_TIMERDATA, c);
    return true;
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

/* A piece of the response body of status `status`, whichever transport read it. false stops the attempt (the
 * reason is in the call's flags). */
static bool body_take(httpc_call *call, long status, const char *p, size_t len)
{
    if (call->sink_path && call->route == SINK_UNDECIDED)
        call->route = status_2xx(status) ? SINK_FILE : SINK_MEMORY;
    if (call->route == SINK_FILE)
        return sink_write(call, p, len);
    if (len > call->c->max_response - call->resp.len) {
        call->too_big = true;
        return false;
    }
    strbuf_append(&call->resp, p, len);
    if (call->resp.oom) {
        call->oom = true;
        return false;
    }
    return true;
}

/* The next piece of a streamed request body, held to the announced size both ways: never more than body_size
 * bytes, and an early end is an error (the transport would otherwise stop sending and the server wait on).
 * 0 once body_size bytes were given; HTTPC_BODY_ABORT on failure (the reason is in io_error). */
static size_t body_pull(httpc_call *call, char *buf, size_t want)
{
    int64_t left = call->body_size - call->body_sent;
    if (left <= 0)
        return 0;
    if ((uint64_t)left < want)
        want = (size_t)left;
    size_t got = call->body_read(buf, want, call->body_arg);
    if (got == HTTPC_BODY_ABORT || got > want) {
        io_fail(call, "the request body source failed", 0, false);
        return HTTPC_BODY_ABORT;
    }
    if (got == 0) {
        io_fail(call, "the request body source ended before body_size bytes", 0, false);
        return HTTPC_BODY_ABORT;
    }
    call->body_sent += (int64_t)got;
    return got;
}

static int body_rewind(httpc_call *call)
{
    if (!call->body_read || call->body_sent == 0)
        return 0;
    if (!call->body_rewind || call->body_rewind(call->body_arg) != 0)
        return -1;
    call->body_sent = 0;
    return 0;
}

/* ---- curl's callbacks for one hop ---- */

static size_t on_curl_body(char *p, size_t size, size_t n, void *arg)
{
    httpc_call *call = arg;
    long status = 0;
    (lc.curl_easy_getinfo)(call->easy, CURLINFO_RESPONSE_CODE, &status);
    return body_take(call, status, p, size * n) ? size * n : 0; /* anything but the length aborts the transfer */
}

static size_t on_curl_read(char *buf, size_t size, size_t n, void *arg)
{
    size_t got = body_pull(arg, buf, size * n);
    return got == HTTPC_BODY_ABORT ? CURL_READFUNC_ABORT : got;
}

/* curl resends a body from the start (a reused connection that turned out dead); nothing else is supported. */
static int on_curl_seek(void *arg, curl_off_t offset, int origin)
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
    free(call->hop_url);
    free(call->redirect_to);
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

/* Ends the current hop's transport, whatever it is (nothing is reported). */
static void hop_release(httpc_call *call)
{
    if (call->x) {
        h1_abort(call->x);
        call->x = NULL;
    }
    if (call->easy) {
        if (call->hop == HOP_CURL && call->c->multi)
            lc.curl_multi_remove_handle(call->c->multi, call->easy); /* also drops a DONE message not yet read */
        lc.curl_easy_cleanup(call->easy);
        call->easy = NULL;
    }
    if (call->headers) {
        lc.curl_slist_free_all(call->headers); /* holds the token: after the easy handle that points to it */
        call->headers = NULL;
    }
    call->hop = HOP_NONE;
}

/* Releases a call that is already unlinked. A sink file it wrote and did not hand over with a 2xx is removed: a
 * partial download must not look like a whole one. */
static void call_destroy(httpc_call *call, bool keep_sink)
{
    hop_release(call);
    sink_close(call);
    if (call->sink_touched && !keep_sink)
        unlink(call->sink_path);
    if (call->has_timer) {
        uv_timer_stop(&call->retry);
        uv_close((uv_handle_t *)&call->retry, call_timer_closed);
    } else {
        call_memory_free(call);
    }
}

/* The attempt's outcome as an HTTPC_E_* code, from the transport's verdict (HTTPC_OK, _TRANSPORT, _TIMEOUT or
 * _NOMEM) and what our own callbacks found: a transfer we stopped fails for the reason we stopped it. */
static int attempt_error(const httpc_call *call, int transport)
{
    if (transport == HTTPC_OK)
        return HTTPC_OK;
    if (call->too_big)
        return HTTPC_E_TOOBIG;
    if (call->io_error)
        return HTTPC_E_IO;
    if (call->oom)
        return HTTPC_E_NOMEM;
    return transport;
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

/* errmsg for the callback: "METHOD URL: what went wrong", with the transport's text (msg) unless one of our own
 * findings explains it better. The URL is shown without user info, query or fragment, and the token is cut out
 * should it ever appear. */
static void attempt_errmsg(httpc_call *call, const char *msg, char *out, size_t outlen)
{
    char io[512] = "";
    if (call->io_error)
        snprintf(io, sizeof io, "%s%s%s%s%s", call->io_error, call->io_on_sink ? " " : "",
                 call->io_on_sink ? call->sink_path : "", call->io_errno ? ": " : "",
                 call->io_errno ? strerror(call->io_errno) : "");
    const char *why = call->too_big ? (call->route == SINK_FILE ? "response body larger than max_file"
                                                                : "response body larger than the client's max_response")
                      : call->io_error     ? io
                      : msg && msg[0]      ? msg
                                           : "the request failed";
    const char *url = call->url, *sep = strstr(url, "://");
    const char *authority = sep ? sep + 3 : url;
    const char *at = memchr(authority, '@', strcspn(authority, "/?#"));
    const char *host = at ? at + 1 : authority;
    snprintf(out, outlen, "%s %.*s%.*s: %s", call->method, (int)(authority - url), url,
             (int)strcspn(host, "?#"), host, why);

    size_t n = call->bearer ? strlen(call->bearer) : 0;
    if (n >= 4) /* each pass shortens the text, so this ends */
        for (char *t; (t = strstr(out, call->bearer));) {
            memcpy(t, "***", 3);
            memmove(t + 3, t + n, strlen(t + n) + 1);
        }
}

static void on_call_timer(uv_timer_t *t);

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

/* The call's own timer: for retry waits and for failures found while an attempt started. */
static void call_timer_start(httpc_call *call, uint64_t ms)
{
    if (!call->has_timer) {
        uv_timer_init(call->c->loop, &call->retry);
        call->retry.data = call;
        call->has_timer = true;
        call->c->handles++;
    }
    call->state = CALL_WAITING;
    uv_timer_start(&call->retry, on_call_timer, ms, 0);
}

/* An attempt ended with the transport's verdict (an HTTPC_ code), the status of its last response and the
 * transport's text for a failure: retry it or report it. The hop's transport is already released. */
static void attempt_end(httpc_call *call, int transport, long status, const char *msg)
{
    httpc *c = call->c;
    int error = attempt_error(call, transport);
    if (error != HTTPC_OK)
        status = 0;
    sink_close(call);

    /* A streamed body that cannot be rewound cannot be sent twice. */
    bool can_resend = !call->body_read || call->body_rewind;
    if (call->mode == HTTPC_RETRYING && call->attempts < HTTPC_MAX_ATTEMPTS && can_resend &&
        attempt_retryable(error, status)) {
        call_timer_start(call, retry_delay(c, call->attempts));
        return;
    }
    error = sink_settle(call, error, status);
    char errmsg[CURL_ERROR_SIZE + 1024] = "";
    if (error != HTTPC_OK)
        attempt_errmsg(call, msg, errmsg, sizeof errmsg);
    call_finish(call, error, status, errmsg);
}

/* A failure found while a hop started: told from the call's timer on a later turn (we may be inside
 * httpc_request()), and final: trying again would fail the same way. */
static void attempt_fail_later(httpc_call *call, int error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void attempt_fail_later(httpc_call *call, int error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(call->late_msg, sizeof call->late_msg, fmt, ap);
    va_end(ap);
    hop_release(call);
    call->late_error = error;
    call_timer_start(call, 0);
}

/* ---- curl hops ---- */

/* A curl hop's transfer finished (CURLMSG_DONE). */
static void curl_hop_done(httpc_call *call, CURLcode rc)
{
    long status = 0;
    if (rc == CURLE_OK)
        (lc.curl_easy_getinfo)(call->easy, CURLINFO_RESPONSE_CODE, &status);
    char msg[CURL_ERROR_SIZE + 64];
    snprintf(msg, sizeof msg, "%s", call->errbuf[0] ? call->errbuf : lc.curl_easy_strerror(rc));
    int transport = rc == CURLE_OK                  ? HTTPC_OK
                    : rc == CURLE_OPERATION_TIMEDOUT ? HTTPC_E_TIMEOUT
                    : rc == CURLE_OUT_OF_MEMORY      ? HTTPC_E_NOMEM
                                                     : HTTPC_E_TRANSPORT;
    hop_release(call);
    attempt_end(call, transport, status, msg);
}

static void check_done(httpc *c)
{
    CURLMsg *msg;
    int left;
    while (!c->freeing && (msg = lc.curl_multi_info_read(c->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        char *priv = NULL;
        CURLcode rc = msg->data.result; /* msg is invalid once the handle is removed */
        (lc.curl_easy_getinfo)(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        if (priv)
            curl_hop_done((httpc_call *)priv, rc);
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
    lc.curl_multi_socket_action(c->multi, s->fd, flags, &running); /* may release s (closed, not yet freed) */
    check_done(c);
    httpc_leave(c);
}

static void on_timeout(uv_timer_t *t)
{
    httpc *c = t->data;
    int running;
    httpc_enter(c);
    if (c->multi) {
        lc.curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        check_done(c);
    }
    httpc_leave(c);
}

/* Methods that always send a body (Content-Length: 0 when none is given); the others send one only if given. */
static const char *const body_methods[] = { "POST", "PUT", "PATCH" };

/* RFC 9110 §9.2.2: a request with one of these methods may be repeated without a different effect. */
static bool method_idempotent(const char *method)
{
    static const char *const idempotent[] = { "GET", "HEAD", "PUT", "DELETE", "OPTIONS" };
    for (size_t i = 0; i < sizeof idempotent / sizeof idempotent[0]; i++)
        if (!strcmp(method, idempotent[i]))
            return true;
    return false;
}

/* The method this hop uses, and whether it sends a body. */
static const char *hop_method(const httpc_call *call, bool *sends_body)
{
    if (call->hop_get) {
        *sends_body = false;
        return "GET";
    }
    bool body = call->body != NULL || call->body_read != NULL;
    for (size_t i = 0; i < sizeof body_methods / sizeof body_methods[0]; i++)
        body = body || !strcmp(body_methods[i], call->method);
    *sends_body = body;
    return call->method;
}

static bool call_header(httpc_call *call, const char *line)
{
    struct curl_slist *h = lc.curl_slist_append(call->headers, line);
    if (!h)
        return false;
    call->headers = h;
    return true;
}

/* The Authorization line, wiped by the caller after use. */
static bool bearer_line(const httpc_call *call, strbuf *b)
{
    strbuf_printf(b, "Authorization: Bearer %s", call->bearer);
    return !b->oom;
}

static bool curl_setup(httpc_call *call, const char *url, bool with_bearer)
{
    httpc *c = call->c;
    CURL *e = call->easy;
    bool sends_body;
    const char *method = hop_method(call, &sends_body);

    if (!call_header(call, call->content_type) || !call_header(call, "Expect:"))
        return false; /* "Expect:" (empty) spares a 100-continue round trip before each body */
    if (call->accept && !call_header(call, call->accept))
        return false;
    if (with_bearer) {
        strbuf auth = STRBUF_INIT;
        bool ok = bearer_line(call, &auth) && call_header(call, auth.data);
        if (auth.data)
            memset(auth.data, 0, auth.len);
        strbuf_free(&auth);
        if (!ok)
            return false;
    }

    CURLcode rc = CURLE_OK;
#define SET(opt, val) (rc = rc != CURLE_OK ? rc : (lc.curl_easy_setopt)(e, opt, val))
    SET(CURLOPT_URL, url);
    SET(CURLOPT_HTTPHEADER, call->headers);
    SET(CURLOPT_PRIVATE, (void *)call);
    SET(CURLOPT_ERRORBUFFER, call->errbuf);
    SET(CURLOPT_WRITEFUNCTION, on_curl_body);
    SET(CURLOPT_WRITEDATA, (void *)call);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    long total = call->timeout_ms > 0 ? call->timeout_ms : c->total_timeout_ms;
    long spent = (long)(uv_now(c->loop) - call->attempt_start_ms);
    SET(CURLOPT_TIMEOUT_MS, total - spent > 1 ? total - spent : 1L); /* the attempt's whole time, hops included */
    SET(CURLOPT_FOLLOWLOCATION, call->follow_redirects ? 1L : 0L);
    SET(CURLOPT_MAXREDIRS, HTTPC_MAX_REDIRS - call->redirects);
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
    if (sends_body && call->body_read) { /* POST without POSTFIELDS: curl reads the body, announcing its size */
        SET(CURLOPT_POST, 1L);
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body_size);
        SET(CURLOPT_READFUNCTION, on_curl_read);
        SET(CURLOPT_READDATA, (void *)call);
        SET(CURLOPT_SEEKFUNCTION, on_curl_seek);
        SET(CURLOPT_SEEKDATA, (void *)call);
    } else if (sends_body) {
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body_len);
        SET(CURLOPT_POSTFIELDS, call->body ? call->body : "");
    } else if (!strcmp(method, "HEAD")) {
        SET(CURLOPT_NOBODY, 1L); /* or curl would wait for the body Content-Length announces */
    } else {
        SET(CURLOPT_HTTPGET, 1L);
    }
    if (strcmp(method, sends_body ? "POST" : "GET") && strcmp(method, "HEAD"))
        SET(CURLOPT_CUSTOMREQUEST, method);
#undef SET
    return rc == CURLE_OK;
}

static void curl_hop(httpc_call *call, const char *url, bool with_bearer)
{
    char err[512];
    if (curl_load(err, sizeof err) < 0) {
        attempt_fail_later(call, HTTPC_E_TRANSPORT, "%s", err);
        return;
    }
    call->hop = HOP_CURL;
    call->errbuf[0] = '\0';
    if (!multi_ready(call->c) || !(call->easy = lc.curl_easy_init()) || !curl_setup(call, url, with_bearer) ||
        lc.curl_multi_add_handle(call->c->multi, call->easy) != CURLM_OK)
        attempt_fail_later(call, HTTPC_E_NOMEM, "cannot start the transfer");
}

/* ---- h1 hops ---- */

static bool is_redirect(long status)
{
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

static bool on_h1_head(void *arg, int status, const char *location)
{
    httpc_call *call = arg;
    call->h1_status = status;
    call->h1_follow = call->follow_redirects && is_redirect(status) && location;
    if (!call->h1_follow || call->redirects >= HTTPC_MAX_REDIRS)
        return true; /* a final answer, or one redirect too many (reported when the response ends) */
    call->redirect_to = h1_url_resolve(call->hop_url ? call->hop_url : call->url, location);
    if (!call->redirect_to)
        call->oom = true;
    return call->redirect_to != NULL;
}

static bool on_h1_body(void *arg, const char *p, size_t n)
{
    httpc_call *call = arg;
    if (call->h1_follow)
        return true; /* a followed redirect's own body is not the answer */
    return body_take(call, call->h1_status, p, n);
}

static size_t on_h1_read(void *arg, char *buf, size_t n)
{
    size_t got = body_pull(arg, buf, n);
    return got == HTTPC_BODY_ABORT ? H1_BODY_ABORT : got;
}

static void hop_start(httpc_call *call, const char *url);

/* The next hop after a redirect: a 303 (and a POST answered with 301 or 302) becomes a GET without body, as
 * curl and browsers do; a 307 or 308 repeats the request, body included. */
static void redirect_follow(httpc_call *call, long status)
{
    char *to = call->redirect_to;
    call->redirect_to = NULL;
    call->redirects++;
    if ((status == 303 && strcmp(call->method, "HEAD")) ||
        ((status == 301 || status == 302) && !strcmp(call->method, "POST")))
        call->hop_get = true;
    if (!call->hop_get && body_rewind(call) < 0) {
        free(to);
        io_fail(call, "cannot rewind the request body source", 0, false);
        attempt_end(call, HTTPC_E_IO, 0, NULL);
        return;
    }
    free(call->hop_url);
    call->hop_url = to;
    hop_start(call, to);
}

static void on_h1_done(void *arg, int error, const char *msg)
{
    httpc_call *call = arg;
    httpc *c = call->c;
    call->x = NULL;
    call->hop = HOP_NONE;
    httpc_enter(c);
    if (error == H1_OK && call->redirect_to) {
        redirect_follow(call, call->h1_status);
    } else if (error == H1_OK && call->h1_follow) {
        attempt_end(call, HTTPC_E_TRANSPORT, 0, "too many redirects (at most 10 are followed)");
    } else {
        int transport = error == H1_OK          ? HTTPC_OK
                        : error == H1_E_TIMEOUT ? HTTPC_E_TIMEOUT
                        : error == H1_E_NOMEM   ? HTTPC_E_NOMEM
                                                : HTTPC_E_TRANSPORT;
        attempt_end(call, transport, call->h1_status, msg);
    }
    httpc_leave(c);
}

static const h1_callbacks h1_cbs = {
    .on_head = on_h1_head, .on_body = on_h1_body, .read_body = on_h1_read, .on_done = on_h1_done,
};

static void h1_hop(httpc_call *call, const h1_url *u, bool with_bearer)
{
    httpc *c = call->c;
    bool sends_body;
    const char *method = hop_method(call, &sends_body);
    bool v6 = strchr(u->host, ':') != NULL;
    strbuf head = STRBUF_INIT;
    strbuf_printf(&head, "%s %s%.*s HTTP/1.1\r\nHost: %s%s%s", method, u->target[0] == '/' ? "" : "/",
                  (int)u->target_len, u->target, v6 ? "[" : "", u->host, v6 ? "]" : "");
    if (u->port_given && u->port != 80)
        strbuf_printf(&head, ":%u", (unsigned)u->port);
    strbuf_printf(&head, "\r\n%s\r\n%s\r\n", call->content_type, call->accept ? call->accept : "Accept: */*");
    if (with_bearer) {
        bearer_line(call, &head);
        strbuf_puts(&head, "\r\n");
    }
    if (sends_body)
        strbuf_printf(&head, "Content-Length: %lld\r\n",
                      (long long)(call->body_read ? call->body_size : (int64_t)call->body_len));
    strbuf_puts(&head, "\r\n"); /* HTTP/1.1 keeps the connection: the pool takes it if the response allows */

    long total = call->timeout_ms > 0 ? call->timeout_ms : c->total_timeout_ms;
    long spent = (long)(uv_now(c->loop) - call->attempt_start_ms);
    h1_request r = {
        .host = u->host,
        .port = u->port,
        .head = head.data,
        .head_len = head.len,
        .body = sends_body && !call->body_read ? call->body : NULL,
        .body_len = sends_body && !call->body_read ? call->body_len : 0,
        .body_size = sends_body && call->body_read ? call->body_size : 0,
        .head_only = !strcmp(method, "HEAD"),
        .connect_timeout_ms = (uint64_t)c->connect_timeout_ms,
        .timeout_ms = (uint64_t)(total - spent > 1 ? total - spent : 1),
        .pool = c->pool,
        .reuse = method_idempotent(method) && !call->body_read, /* may be sent twice (h1_request.reuse) */
    };
    call->hop = HOP_H1;
    call->h1_status = 0;
    call->h1_follow = false;
    call->x = head.oom ? NULL : h1_start(c->loop, &r, &h1_cbs, call);
    if (head.data)
        memset(head.data, 0, head.len); /* it holds the token */
    strbuf_free(&head);
    if (!call->x)
        attempt_fail_later(call, HTTPC_E_NOMEM, "cannot start the request");
}

/* Same scheme, host and port: the bearer token may go there. */
static bool same_origin(const h1_url *a, const h1_url *b)
{
    return a->https == b->https && a->port == b->port && !strcasecmp(a->host, b->host);
}

/* Starts a hop to url with the transport its scheme needs. */
static void hop_start(httpc_call *call, const char *url)
{
    h1_url u, origin;
    if (h1_url_parse(url, &u) < 0) {
        attempt_fail_later(call, HTTPC_E_TRANSPORT, "not a URL this client can use (http:// or https://, no user "
                                                    "info, a host and a valid port)");
        return;
    }
    bool with_bearer = call->bearer && (url == call->url || (h1_url_parse(call->url, &origin) == 0 &&
                                                             same_origin(&u, &origin)));
    if (u.https || call->c->http_via_curl)
        curl_hop(call, url, with_bearer);
    else
        h1_hop(call, &u, with_bearer);
}

/* Starts an attempt from the request's own URL. */
static void attempt_start(httpc_call *call)
{
    call->attempts++;
    call->state = CALL_RUNNING;
    call->too_big = call->oom = false;
    call->io_error = NULL;
    call->io_errno = 0;
    call->io_on_sink = false;
    call->body_sent = 0;
    call->sink_len = 0;
    call->route = SINK_UNDECIDED;
    call->sink_opened = false;
    call->hop_get = false;
    call->redirects = 0;
    free(call->hop_url);
    call->hop_url = NULL;
    free(call->redirect_to);
    call->redirect_to = NULL;
    call->attempt_start_ms = uv_now(call->c->loop);
    strbuf_free(&call->resp);
    hop_start(call, call->url);
}

static void on_call_timer(uv_timer_t *t)
{
    httpc_call *call = t->data;
    httpc *c = call->c;
    httpc_enter(c);
    if (call->late_error) {
        char errmsg[1024];
        attempt_errmsg(call, call->late_msg, errmsg, sizeof errmsg);
        call_finish(call, call->late_error, 0, errmsg);
    } else if (body_rewind(call) != 0) {
        char errmsg[1024];
        io_fail(call, "cannot rewind the request body source", 0, false);
        attempt_errmsg(call, NULL, errmsg, sizeof errmsg);
        call_finish(call, HTTPC_E_IO, 0, errmsg);
    } else {
        attempt_start(call);
    }
    httpc_leave(c);
}

/* ---- requests ---- */

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
    if (!call->method || !call->url || (req->bearer && !call->bearer) || (req->body && !call->body) ||
        (req->sink_path && !call->sink_path) || !call->content_type || (req->accept && !call->accept)) {
        call_destroy(call, false);
        return NULL;
    }
    call->next = c->calls;
    if (c->calls)
        c->calls->prev = call;
    c->calls = call;
    c->ncalls++;
    attempt_start(call);
    return call;
}

void httpc_cancel(httpc_call *call)
{
    if (!call || call->state == CALL_DONE)
        return; /* inside its own callback: it is already finished */
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
    httpc *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->loop = loop;
    c->connect_timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : HTTPC_CONNECT_TIMEOUT_MS;
    c->total_timeout_ms = opts->total_timeout_ms > 0 ? opts->total_timeout_ms : HTTPC_TOTAL_TIMEOUT_MS;
    c->max_response = opts->max_response ? opts->max_response : HTTPC_MAX_RESPONSE;
    c->retry_base_ms = opts->retry_base_ms ? opts->retry_base_ms : HTTPC_RETRY_BASE_MS;
    const char *proxy = getenv("http_proxy"); /* the variable curl reads for http (lower case only) */
    c->http_via_curl = proxy && *proxy;
    bool ca_bytes = opts->ca_pem && opts->ca_pem_len > 0;
    const char *ca = ca_bytes ? NULL : opts->ca_file ? opts->ca_file : getenv("SSL_CERT_FILE");
    bool ok = (!ca || !*ca || (c->ca_file = strdup(ca))) &&
              tls_blob(opts->ca_pem, opts->ca_pem_len, &c->ca_pem, &c->ca_blob) &&
              tls_blob(opts->cert_pem, opts->cert_pem_len, &c->cert_pem, &c->cert_blob) &&
              tls_blob(opts->key_pem, opts->key_pem_len, &c->key_pem, &c->key_blob) &&
              (!opts->cert_file || (c->cert_file = strdup(opts->cert_file))) &&
              (!opts->key_file || (c->key_file = strdup(opts->key_file)));
    if (!ok || !(c->pool = h1_pool_new(loop, HTTPC_IDLE_MAX, opts->idle_ms ? opts->idle_ms : HTTPC_IDLE_MS))) {
        httpc_memory_free(c);
        return NULL;
    }
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
    if (c->multi)
        lc.curl_multi_cleanup(c->multi); /* closes cached connections, telling on_curl_socket to drop their polls */
    c->multi = NULL;
    while (c->socks)
        sock_release(c->socks);
    h1_pool_free(c->pool); /* every h1 exchange was aborted above */
    c->pool = NULL;
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
