/* h1.h — one HTTP/1.1 exchange over a plain TCP connection on a libuv loop.
 *
 * Why not libcurl for this: Debian's libcurl brings 39 shared libraries (gnutls, krb5, ldap, ssh2, …) whose loading
 * and constructors cost an agent about 4 MiB of RSS and 3.3 ms at every start, and curl_global_init initialises
 * OpenSSL (another 2 MiB) even when no URL needs TLS (bench/README.md, "what each library costs"). Over plain
 * http the agent needs none of it, so httpc sends http:// requests through this module and loads libcurl only when
 * an https:// URL comes along.
 *
 * The exchange is deliberately small: the request head built by the caller, a body from memory or pulled from the
 * caller, and a response read as it arrives: the status and the Location header go to on_head, the body
 * (Content-Length, chunked, or up to the end of the connection) to on_body in pieces. No redirects, retries,
 * cookies or proxies: httpc does what it needs of those. A connection is made by common/dial (a host name is
 * resolved by getaddrinfo on a thread that lives only as long as the lookup; an address literal needs none) and
 * closed at the end ("Connection: close"), unless the exchange shares an h1_pool: then a connection the response
 * leaves reusable waits there for the next exchange to the same host and port, which saves that one the connect,
 * the server's accept and a turn of each loop (bench/README.md, row 3: the bundle fetch).
 *
 * Ownership: h1_start() copies host, head and an in-memory body; the exchange frees itself after on_done returns
 * (or, after h1_abort(), once its handles are closed — the loop must run on). Every callback runs on the loop;
 * after on_done or h1_abort() none runs again. A callback must not call h1_abort() on its own exchange: it returns
 * false instead. */
#ifndef IAC_H1_H
#define IAC_H1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

typedef struct h1_exchange h1_exchange;
typedef struct h1_pool h1_pool;

enum {
    H1_OK = 0,
    H1_E_CONNECT = -1,  /* the host could not be resolved or reached */
    H1_E_TIMEOUT = -2,  /* connect_timeout_ms or timeout_ms passed */
    H1_E_PROTOCOL = -3, /* the peer's bytes are not an HTTP/1.x response, or the connection broke mid-way */
    H1_E_ABORTED = -4,  /* a callback returned false (read_body: H1_BODY_ABORT) */
    H1_E_NOMEM = -5,
};

/* read_body's way of saying the source failed. */
#define H1_BODY_ABORT ((size_t)-1)

typedef struct {
    /* The status line and headers have arrived (interim 1xx responses are skipped). location: the Location header,
     * NUL-terminated, or NULL; valid during the call. false aborts the exchange. */
    bool (*on_head)(void *arg, int status, const char *location);
    /* The next piece of the response body (never empty). false aborts the exchange. */
    bool (*on_body)(void *arg, const char *p, size_t n);
    /* Fills buf with the next 1..n bytes of a streamed request body; H1_BODY_ABORT when the source failed. Never
     * asked for more than body_size bytes in all; 0 (or less than body_size in all) is the caller's problem to
     * report: the exchange fails with H1_E_ABORTED rather than leave the server waiting. */
    size_t (*read_body)(void *arg, char *buf, size_t n);
    /* The end: H1_OK once the whole response has arrived, else an H1_E_* with a human text ("cannot connect to
     * 127.0.0.1 port 9: connection refused") valid during the call. */
    void (*on_done)(void *arg, int error, const char *msg);
} h1_callbacks;

typedef struct {
    const char *host;          /* a name or an address literal (IPv6 without brackets) */
    uint16_t    port;
    /* The request line and header lines, each ending in CRLF, and the blank line that ends the head. The caller
     * includes Host, Content-Length and "Connection: close"; nothing is added. */
    const char *head;
    size_t      head_len;
    const char *body;          /* an in-memory body (copied), or NULL */
    size_t      body_len;
    int64_t     body_size;     /* > 0 with read_body set: a streamed body of exactly this many bytes */
    bool        head_only;     /* a HEAD request: the response has no body whatever its headers say */
    uint64_t    connect_timeout_ms; /* 0: no limit of its own */
    uint64_t    timeout_ms;    /* the whole exchange; 0: no limit */
    /* NULL: a connection of its own, closed at the end (the head says "Connection: close"). Else the head must not
     * say it, and the connection goes to the pool at the end when the response allows it: HTTP/1.1, no
     * "Connection: close", a body framed by length or chunks and read whole, the request written whole, nothing
     * after the response. */
    h1_pool    *pool;
    /* The request may go over an idle connection of the pool. Only for one that may be sent twice — an idempotent
     * method with no streamed body: a connection the server closed just as it was taken (no byte of answer) is
     * given up and the request sent again on a new one. */
    bool        reuse;
} h1_request;

/* Starts an exchange. NULL when memory runs out or the request is malformed (no host or head); then no callback
 * runs. Otherwise exactly one of on_done or h1_abort() ends it. */
h1_exchange *h1_start(uv_loop_t *loop, const h1_request *req, const h1_callbacks *cb, void *arg);

/* Ends an exchange at once; no callback runs again. Not from inside one of its own callbacks. */
void h1_abort(h1_exchange *x);

/* A pool of idle connections for the exchanges that share it (one client's). At most max_idle wait (the one idle
 * longest is closed for a newer one), each for at most idle_ms; one that the server closes or writes to meanwhile
 * is closed at once. Idle connections and the pool's timer are unreferenced: they never keep the loop alive. NULL
 * on OOM. */
h1_pool *h1_pool_new(uv_loop_t *loop, unsigned max_idle, uint64_t idle_ms);
/* Closes the idle connections; the pool's memory goes when their handles are closed (the loop must run on). Every
 * exchange that names the pool must have ended (on_done, or h1_abort()) before. NULL is a no-op. */
void h1_pool_free(h1_pool *p);
/* Connections waiting in the pool now. */
unsigned h1_pool_idle(const h1_pool *p);

/* The parts of an http:// or https:// URL. */
typedef struct {
    bool     https;
    char     host[256];   /* without brackets; lower case is not enforced */
    uint16_t port;        /* the URL's, or 80 / 443 */
    bool     port_given;
    const char *target;   /* into the URL: path and query ("/" when the URL has none); the fragment is cut off by
                           * target_len */
    size_t   target_len;
} h1_url;

/* Splits url. 0, or -1 when it is not an absolute http(s) URL this client can use (another scheme, user info,
 * an empty or too long host, a bad port, spaces or control characters). out->target points into url. */
int h1_url_parse(const char *url, h1_url *out);

/* Resolves a Location header against the URL it came with (absolute, scheme-relative "//host/…", absolute-path
 * "/…" or relative "…"), into a malloc'd absolute URL. NULL on OOM or when base is not parseable. */
char *h1_url_resolve(const char *base, const char *location);

#endif
