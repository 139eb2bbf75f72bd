/* wsc.h — a WebSocket client on libwebsockets, running on the caller's libuv loop.
 *
 * One connection at a time per wsc. Text frames only. Exactly one writer: every outgoing message goes through a
 * bounded queue drained from lws's writeable callback, so frames are never interleaved and the socket is never
 * closed while a write is in progress (ref §3.8, failure mode 1). Incoming fragments are reassembled up to
 * max_frame; a larger message closes the connection with 1009 and is reported through on_close. No
 * permessage-deflate (ref §3.1).
 *
 * Ownership: the wsc is owned by the caller. wsc_send() copies the data. Callbacks run on the loop; after
 * on_close the wsc may be connected again (wsc_connect) from inside the callback or later. The lws context for
 * ws:// is the wsc's own (made by wsc_new), or a share the caller passes in opts.share (common/lwsloop.h): then
 * the wsc holds one reference of its own from wsc_new() to wsc_free() and, at its first ws:// connect, adds a
 * client vhost to the context (making the context if no user has yet), which stays there until the context goes;
 * the caller keeps (and eventually drops) its own reference. wss:// always runs on a TLS context of the wsc's own,
 * created on first use. */
#ifndef IAC_WSC_H
#define IAC_WSC_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "iac/lwsloop.h"

typedef struct wsc wsc;

typedef struct {
    /* The handshake completed (HTTP 101). */
    void (*on_open)(wsc *w, void *arg);
    /* One complete text message. data is valid during the call only. */
    void (*on_message)(wsc *w, const char *data, size_t len, void *arg);
    /* The connection attempt failed or an open connection ended. http_status is the handshake's HTTP status when
     * the server answered the upgrade with something other than 101 (401, 403, 400, …), else 0. reason is a
     * short human text ("connection refused", "closed by peer (1000)", "handshake: 403"). */
    void (*on_close)(wsc *w, int http_status, const char *reason, void *arg);
    /* The outgoing queue became empty (everything queued was written to the socket). Optional. */
    void (*on_drained)(wsc *w, void *arg);
} wsc_callbacks;

typedef struct {
    const char    *ca_file;            /* extra CA bundle for wss; NULL → $SSL_CERT_FILE if set, else system store */
    size_t         max_queue;          /* messages waiting to be written; 0 → 256 */
    size_t         max_queue_bytes;    /* their total size; 0 → 4 MiB */
    size_t         max_frame;          /* largest incoming message; 0 → 1 MiB */
    int            connect_timeout_ms; /* 0 → 10000: TCP + TLS + handshake */
    lwsloop_share *share;              /* NULL → a context of the wsc's own for ws://; else this share (same loop) */
} wsc_opts;

enum {
    WSC_OK = 0,
    WSC_E_CLOSED = -1, /* not connected: message not queued */
    WSC_E_FULL = -2,   /* queue full: message dropped */
    WSC_E_NOMEM = -3,
    WSC_E_URL = -4,    /* URL not ws:// or wss:// host[:port]/path[?query] */
    WSC_E_BUSY = -5,   /* already connecting or connected */
};

/* NULL on failure (out of memory; no lws context of its own could be made on this loop; opts.share on another
 * loop). TLS is initialised only when the first wss:// URL is used. */
wsc *wsc_new(uv_loop_t *loop, const wsc_opts *opts, const wsc_callbacks *cb, void *arg);
/* Starts connecting to url (ws:// or wss://) sending `Authorization: Bearer <bearer>` when bearer is non-NULL.
 * Asynchronous: on_open or on_close follows. */
int wsc_connect(wsc *w, const char *url, const char *bearer);
/* Queues a text message. WSC_E_CLOSED when not open, WSC_E_FULL when the queue is at its bound. */
int wsc_send(wsc *w, const char *data, size_t len);
bool wsc_is_open(const wsc *w);
/* Messages waiting in the queue. */
size_t wsc_queued(const wsc *w);
/* Starts a clean close (1000, after the queue is written); on_close follows. No-op when not connected. */
void wsc_close(wsc *w);
/* Drops the connection at once (no callbacks) and frees everything, its reference to a share included; safe inside
 * a callback. libuv handles close asynchronously and lws needs a few loop turns to let go of a context, so the loop
 * must keep running (uv_run until it returns) before it is closed. */
void wsc_free(wsc *w);

#endif
