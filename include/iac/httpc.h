/* httpc.h — an asynchronous HTTP client: libcurl's multi interface driven by a libuv loop.
 *
 * Requests never block the loop: sockets are watched with uv_poll, curl's timer with uv_timer
 * (curl_multi_socket_action). Conventions of the upstream agent (ref §2.1, §2.3):
 *   - every request carries `Content-Type: application/json` and, when a bearer is given,
 *     `Authorization: Bearer <token>`;
 *   - 10 s connect timeout, 60 s for the whole exchange (both overridable in httpc_opts);
 *   - HTTPC_RETRYING: up to 4 attempts; a new attempt after a transport error or a 5xx, never after a 4xx; waits of
 *     1 s, 2 s, 4 s between attempts (uv_timer, not sleep); HTTPC_PLAIN: one attempt;
 *   - TLS peers are always verified; SSL_CERT_FILE (or httpc_opts.ca_file) names an extra CA bundle.
 * Tokens never appear in error messages or logs.
 *
 * Ownership: httpc_request() copies everything it is given; the response passed to the callback (body included)
 * is valid only during the callback. The callback runs exactly once per request unless the request is cancelled
 * with httpc_cancel() or the client is closed first. */
#ifndef IAC_HTTPC_H
#define IAC_HTTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

typedef struct httpc httpc;
typedef struct httpc_call httpc_call;

typedef struct {
    const char *ca_file;            /* extra CA bundle; NULL → $SSL_CERT_FILE if set, else the system store */
    long        connect_timeout_ms; /* 0 → 10000 */
    long        total_timeout_ms;   /* 0 → 60000 */
    size_t      max_response;       /* bytes of body kept; larger bodies fail with HTTPC_E_TOOBIG; 0 → 64 MiB */
    uint64_t    retry_base_ms;      /* 0 → 1000 (tests shorten it) */
} httpc_opts;

typedef enum { HTTPC_PLAIN = 0, HTTPC_RETRYING } httpc_mode;

typedef struct {
    const char *method;   /* "GET", "POST", "PUT", "PATCH", "DELETE" */
    const char *url;      /* full URL */
    const char *bearer;   /* token, or NULL for no Authorization header */
    const char *body;     /* NULL for none */
    size_t      body_len;
    httpc_mode  mode;
} httpc_req;

enum {
    HTTPC_OK = 0,         /* a response was received (any status; check status) */
    HTTPC_E_TRANSPORT = -1, /* connect, TLS, reset, DNS, …: see errmsg */
    HTTPC_E_TIMEOUT = -2,
    HTTPC_E_TOOBIG = -3,
    HTTPC_E_NOMEM = -4,
};

typedef struct {
    int         error;    /* HTTPC_OK or HTTPC_E_* of the last attempt */
    long        status;   /* HTTP status of the last attempt; 0 when error != HTTPC_OK */
    const char *errmsg;   /* human text for error != HTTPC_OK ("connection refused to 127.0.0.1:8080"), else "" */
    const char *body;     /* NUL-terminated response body (may be ""), valid during the callback */
    size_t      body_len;
    int         attempts; /* how many attempts were made */
} httpc_response;

typedef void (*httpc_cb)(const httpc_response *res, void *arg);

/* Creates a client on loop. NULL on failure (curl could not initialise). */
httpc *httpc_new(uv_loop_t *loop, const httpc_opts *opts);
/* Starts a request. Returns a handle usable with httpc_cancel() until the callback runs, or NULL on OOM (the
 * callback will not run). */
httpc_call *httpc_request(httpc *c, const httpc_req *req, httpc_cb cb, void *arg);
/* Abandons a request; its callback will not run. */
void httpc_cancel(httpc_call *call);
/* Number of requests in flight or waiting to retry. */
size_t httpc_pending(const httpc *c);
/* Cancels every request (no callbacks) and releases the client; its libuv handles are closed asynchronously, so
 * the loop must run once more before it is closed. */
void httpc_free(httpc *c);

#endif
