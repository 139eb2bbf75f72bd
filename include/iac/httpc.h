/* httpc.h — an asynchronous HTTP client on a libuv loop.
 *
 * Requests never block the loop. http:// goes through h1 (a small HTTP/1.1 exchange of ours; a connection the
 * response leaves open waits up to 15 s for the next request to the same server, and only a request that may be
 * sent twice — GET, HEAD, PUT, DELETE, OPTIONS without a streamed body — takes one); https:// through libcurl's multi interface (sockets watched with uv_poll, curl's timer with uv_timer),
 * and libcurl is loaded with dlopen the first time an https URL comes along: a process that speaks only plain http
 * never pays for libcurl's 39 libraries or OpenSSL's initialisation (bench/README.md). Conventions of the upstream
 * agent (ref §2.1, §2.3):
 *   - every request carries `Content-Type: application/json` (unless httpc_req.content_type names another)
 *     and, when a bearer is given, `Authorization: Bearer <token>`;
 *   - 10 s connect timeout, 60 s for the whole exchange (both overridable in httpc_opts);
 *   - HTTPC_RETRYING: up to 4 attempts; a new attempt after a transport error or a 5xx, never after a 4xx; waits of
 *     1 s, 2 s, 4 s between attempts (uv_timer, not sleep); HTTPC_PLAIN: one attempt;
 *   - TLS peers are always verified; SSL_CERT_FILE (or httpc_opts.ca_file, or ca_pem as bytes) names an extra CA
 *     bundle; a client certificate is optional.
 * Tokens never appear in error messages or logs.
 *
 * Large bodies never sit in memory: a request body can be streamed from a callback (body_read: logs JSON-escaped
 * on the fly), and a 2xx response body can go to a file (sink_path: engine archives).
 *
 * Ownership: httpc_request() copies everything it is given except the body source (body_read/body_rewind/
 * body_arg), which is called until the callback runs (or until httpc_cancel()/httpc_free()), so body_arg must stay
 * valid that long. The response passed to the callback (body included) is valid only during the callback. The
 * callback runs exactly once per request unless the request is cancelled with httpc_cancel() or the client is
 * closed first. */
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
    uint64_t    idle_ms;            /* how long an idle plain-http connection waits for the next request; 0 → 15000 */
    /* TLS material given as bytes or files (the Kubernetes client has both kinds); all copied by httpc_new().
     * ca_pem is a CA bundle in PEM that replaces ca_file and $SSL_CERT_FILE when given. A client certificate
     * and its key (PEM, unencrypted) come as files or as bytes; the bytes win when both are given. */
    const char *ca_pem;
    size_t      ca_pem_len;
    const char *cert_file, *key_file;
    const char *cert_pem, *key_pem;
    size_t      cert_pem_len, key_pem_len;
} httpc_opts;

typedef enum { HTTPC_PLAIN = 0, HTTPC_RETRYING } httpc_mode;

/* A streamed request body. read fills buf with up to n bytes and returns how many (1..n); 0 means the body
 * ended, HTTPC_BODY_ABORT that the source failed (the request fails with HTTPC_E_IO). It is never asked for more
 * than body_size bytes in all, and ending before body_size bytes fails the request (HTTPC_E_IO) rather than
 * leaving the server waiting for the rest. rewind goes back to the first byte for another attempt (0 on
 * success); without it the request makes one attempt whatever its mode. */
#define HTTPC_BODY_ABORT ((size_t)-1)
typedef size_t (*httpc_body_read_fn)(void *buf, size_t n, void *arg);
typedef int (*httpc_body_rewind_fn)(void *arg);

typedef struct {
    const char *method;   /* "GET", "POST", "PUT", "PATCH", "DELETE" */
    const char *url;      /* full URL */
    const char *bearer;   /* token, or NULL for no Authorization header */
    const char *body;     /* NULL for none */
    size_t      body_len;
    httpc_mode  mode;
    /* Optional, instead of body/body_len (giving both is refused): a streamed body of exactly body_size bytes,
     * sent with Content-Length whatever the method. The size is required (body_size < 0 is refused): a chunked
     * upload is not something every server in front of a plane accepts, and every body we stream is a file of
     * known size. */
    httpc_body_read_fn   body_read;
    httpc_body_rewind_fn body_rewind;
    void                *body_arg;
    int64_t              body_size;
    /* Optional: a 2xx response's body goes to this file (created mode 0644, truncated) instead of memory; it is
     * bounded by max_file (0 → no bound; larger → HTTPC_E_TOOBIG), not by max_response, and the callback gets
     * body "" and body_len = bytes written. The body of any other status stays in memory (bounded by
     * max_response) so that the caller can quote it. Each attempt starts the file afresh. After the callback the
     * file holds a 2xx response's whole body; after an error or a non-2xx status it does not exist. */
    const char *sink_path;
    int64_t     max_file;
    long        timeout_ms;       /* whole exchange; 0 → the client's total_timeout_ms (big transfers need more) */
    bool        follow_redirects; /* up to 10, http and https only (release downloads redirect); the bearer is
                                   * sent only to the origin (scheme, host, port) of url; a 303, and a 301 or 302
                                   * answering a POST, turn the request into a GET without body (as curl does) */
    const char *content_type;     /* Content-Type of the request; NULL → "application/json" */
    const char *accept;           /* Accept header; NULL → any type */
} httpc_req;

enum {
    HTTPC_OK = 0,         /* a response was received (any status; check status) */
    HTTPC_E_TRANSPORT = -1, /* connect, TLS, reset, DNS, …: see errmsg */
    HTTPC_E_TIMEOUT = -2,
    HTTPC_E_TOOBIG = -3,
    HTTPC_E_NOMEM = -4,
    HTTPC_E_IO = -5,      /* the body source failed or could not rewind, or the sink file could not be written */
};

typedef struct {
    int         error;    /* HTTPC_OK or HTTPC_E_* of the last attempt */
    long        status;   /* HTTP status of the last attempt; 0 when error != HTTPC_OK */
    const char *errmsg;   /* human text for error != HTTPC_OK ("connection refused to 127.0.0.1:8080"), else "" */
    const char *body;     /* NUL-terminated response body (may be ""), valid during the callback; "" when the
                           * body went to sink_path */
    size_t      body_len; /* bytes of body, in memory or written to sink_path */
    int         attempts; /* how many attempts were made */
} httpc_response;

typedef void (*httpc_cb)(const httpc_response *res, void *arg);

/* Creates a client on loop. NULL when memory runs out. libcurl is not touched here: should it be missing or fail to
 * initialise, each https request fails with HTTPC_E_TRANSPORT and a message that names it. */
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
