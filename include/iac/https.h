/* https.h — a small HTTP/1.1 server written directly on libuv (uv_tcp), running on the caller's loop.
 *
 * For status endpoints, the coordinator's API and the test fakes: each request is handed to one handler with its
 * method, path, query, Authorization and Content-Type headers and whole body (bounded by max_body), and the
 * handler fills the response synchronously on the loop. It used to be a libwebsockets vhost; it is written on
 * libuv because the agent must not load libwebsockets, which links libssl and libcrypto: about 2 ms and 1.5 MiB of
 * RSS at every process start (bench/README.md). Plain HTTP only: the agent's status port is local to the pod.
 *
 * What it speaks: HTTP/1.1 and 1.0; keep-alive (the default in 1.1, "Connection: close" honoured; in 1.0 only when
 * the client asks); pipelined requests, answered in order; request bodies framed by Content-Length or chunked
 * (reassembled); "Expect: 100-continue" answered with 100 Continue; HEAD, which the handler sees as "GET" and
 * whose answer is the head alone. Every response carries Content-Length and Content-Type.
 *
 * Limits, answered without reaching the handler and followed by closing the connection: a body over max_body →
 * 413, a request head over 16 KiB → 431, a malformed request → 400, a Transfer-Encoding other than chunked → 501,
 * an HTTP major version other than 1 → 505. At most 512 connections at once: more are closed as soon as they are
 * accepted. A connection that has not delivered a complete request within the idle timeout (30 s unless
 * https_set_idle_timeout says otherwise) of being accepted or of its last response is closed; there is no limit
 * while a response is being written (it goes out in one uv_write, and a failed write closes the connection).
 *
 * Ownership: the server is created and freed by the caller; request fields are valid during the handler call
 * only; the handler appends the response body to res->body, which the server frees after sending. No threads, no
 * global state: everything lives in the server and its connections. */
#ifndef IAC_HTTPS_H
#define IAC_HTTPS_H

#include <stddef.h>

#include <uv.h>

#include "iac/strbuf.h"

typedef struct https_server https_server;

typedef struct {
    const char *method;        /* "GET", "POST", "PUT", "PATCH", "DELETE", … as sent ("GET" for HEAD) */
    const char *path;          /* percent-decoded, without the query, e.g. "/v1/status" */
    const char *query;         /* after '?', "" when none (not decoded: see https_query_param) */
    const char *authorization; /* the Authorization header, or NULL */
    const char *content_type;  /* or NULL */
    const char *body;          /* NUL-terminated, "" when none */
    size_t      body_len;
    const char *peer;          /* client address "127.0.0.1" (IPv4 clients of a dual-stack socket too), for logs */
} https_request;

typedef struct {
    int         status;       /* default 200; outside 200..599 the client gets 500 */
    const char *content_type; /* default "application/json"; one with control characters gives 500 */
    strbuf      body;         /* not sent for HEAD, 204 and 304 */
} https_response;

typedef void (*https_handler)(const https_request *req, https_response *res, void *arg);

typedef struct {
    const char   *host;     /* address to bind: "0.0.0.0", "127.0.0.5", "::1" ([::1] too), or a name resolved
                             * once; NULL → all addresses, IPv6 and IPv4 (dual-stack "::", or "0.0.0.0" where
                             * the system has no IPv6) */
    int           port;     /* 0 → an ephemeral port (see https_port) */
    size_t        max_body; /* 0 → 1 MiB */
    https_handler handler;
    void         *arg;
} https_opts;

/* Starts listening (SO_REUSEADDR, as libuv sets it). NULL with a message in err ("cannot listen on
 * 127.0.0.1:9180: Address already in use") on failure; what the failed attempt put on the loop closes by itself
 * as the loop runs. */
https_server *https_listen(uv_loop_t *loop, const https_opts *opts, char *err, size_t errlen);
/* The bound port. */
int https_port(const https_server *s);
/* How long a connection may take to deliver a complete request, counted from its accept or its last response;
 * 0 → 30000 ms. It applies to waits that start after the call (call it right after https_listen). For tests and
 * callers that must shed idle clients sooner. */
void https_set_idle_timeout(https_server *s, unsigned ms);
/* Stops listening, closes every connection and frees the server; safe inside the handler, whose response is then
 * dropped (its connection is closed unanswered). libuv handles close asynchronously, so the loop must keep running
 * (uv_run until it returns) before it is closed. */
void https_free(https_server *s);

/* Helpers for handlers. */
/* Value of query parameter name (percent-decoded) into out; 0 if found, -1 if absent or too long. */
int https_query_param(const char *query, const char *name, char *out, size_t outlen);
/* Sets status and a JSON body {"error": "<msg>"}. */
void https_reply_error(https_response *res, int status, const char *msg);

#endif
