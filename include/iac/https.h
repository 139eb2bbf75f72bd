/* https.h — a small HTTP/1.1 server on libwebsockets, running on the caller's libuv loop.
 *
 * For status endpoints and fakes: each request is handed to one handler with its method, path, query,
 * Authorization header and whole body (bounded by max_body; larger bodies get 413 without reaching the handler),
 * and the handler fills the response synchronously. Not a general web server: no keep-alive tricks, no TLS (the
 * agent's status port is local to the pod), no chunked uploads beyond what lws reassembles.
 *
 * Ownership: the server is created and freed by the caller; request fields are valid during the handler call
 * only; the handler appends the response body to res->body, which the server frees after sending. The lws context
 * is the server's own (https_listen), or a share the caller passes to https_listen_shared (common/lwsloop.h): then
 * the server holds one reference of its own until https_free(), and the caller keeps its own (and drops it when it
 * is done) — the context is destroyed when its last user lets go. */
#ifndef IAC_HTTPS_H
#define IAC_HTTPS_H

#include <stddef.h>

#include <uv.h>

#include "iac/lwsloop.h"
#include "iac/strbuf.h"

typedef struct https_server https_server;

typedef struct {
    const char *method;        /* "GET", "POST", "PUT", "PATCH", "DELETE", … */
    const char *path;          /* without the query, e.g. "/v1/status" */
    const char *query;         /* after '?', "" when none (not decoded) */
    const char *authorization; /* the Authorization header, or NULL */
    const char *content_type;  /* or NULL */
    const char *body;          /* NUL-terminated, "" when none */
    size_t      body_len;
    const char *peer;          /* client address "127.0.0.1", for logs */
} https_request;

typedef struct {
    int         status;       /* default 200 */
    const char *content_type; /* default "application/json" */
    strbuf      body;
} https_response;

typedef void (*https_handler)(const https_request *req, https_response *res, void *arg);

typedef struct {
    const char   *host;     /* address to bind, "0.0.0.0" or "127.0.0.5"; NULL → all */
    int           port;     /* 0 → an ephemeral port (see https_port) */
    size_t        max_body; /* 0 → 1 MiB */
    https_handler handler;
    void         *arg;
} https_opts;

/* Starts listening. NULL with a message in err ("cannot listen on 127.0.0.1:9180: address in use") on failure. */
https_server *https_listen(uv_loop_t *loop, const https_opts *opts, char *err, size_t errlen);
/* The same on a shared lws context (on its loop): the server is a vhost of it and costs no context of its own. */
https_server *https_listen_shared(lwsloop_share *share, const https_opts *opts, char *err, size_t errlen);
/* Whether https_listen could bind host:port now: a plain socket is bound and closed at once. 0, or -1 with the
 * message https_listen would give ("cannot listen on 127.0.0.1:9180: Address already in use"). For a caller that
 * must know before it does something else: the agent checks its status address before it registers, and listens
 * once the registration is on its way. (Another process may still take the port in between.) */
int https_probe(const char *host, int port, char *err, size_t errlen);
/* The bound port. */
int https_port(const https_server *s);
/* Stops handling requests and frees the server; safe inside the handler. With a context of its own the server
 * stops listening and drops its connections a few loop turns later; on a share it keeps listening and answers 503
 * until the share's last user lets go: its vhost goes with the context. Either way libuv handles close
 * asynchronously, so the loop must keep running (uv_run until it returns) before it is closed. */
void https_free(https_server *s);

/* Helpers for handlers. */
/* Value of query parameter name (percent-decoded) into out; 0 if found, -1 if absent or too long. */
int https_query_param(const char *query, const char *name, char *out, size_t outlen);
/* Sets status and a JSON body {"error": "<msg>"}. */
void https_reply_error(https_response *res, int status, const char *msg);

#endif
