/* wsc.h — an RFC 6455 WebSocket client written directly on libuv (uv_tcp), for the agent's C&C connection.
 *
 * Why not libwebsockets: Debian's libwebsockets links libssl and libcrypto, and merely loading them costs every agent
 * start about 2 ms and 1.5 MiB of resident pages (bench/README.md), although an agent whose plane is plain http never
 * speaks TLS. So ws:// is a TCP connection of our own (common/dial) and wss:// runs the same bytes through a TLS
 * session (include/iac/tls.h) on libssl loaded with dlopen at the first wss:// URL. What we need of the protocol is
 * small: the opening handshake, text messages, ping/pong and the close handshake. No extensions (no
 * permessage-deflate, ref §3.1) and no subprotocols.
 *
 * One connection at a time per wsc. Text messages only: a binary frame closes the connection with 1003. Exactly one
 * writer: every outgoing message goes through a bounded queue and the socket has at most one write in flight, so
 * frames are never interleaved and the socket is never closed while a write is in progress (ref §3.8, failure mode
 * 1). Incoming fragments are reassembled up to max_frame; a larger message closes the connection with 1009 and is
 * reported through on_close. A ping is answered with a pong carrying its payload; pongs are ignored. Frames the
 * protocol forbids (masked by the server, reserved bits, unknown opcodes, broken fragmentation, oversized control
 * frames, a close code a peer may not send) close the connection with 1002. Text is not checked for valid UTF-8 (RFC 6455 would close with 1007): the
 * agent's JSON decoder rejects what it cannot read.
 *
 * Ownership: the wsc is owned by the caller. wsc_send() copies the data. Callbacks run on the loop; after
 * on_close the wsc may be connected again (wsc_connect) from inside the callback or later. The bearer is sent in
 * the handshake only; it never appears in a log line or a reason. */
#ifndef IAC_WSC_H
#define IAC_WSC_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

typedef struct wsc wsc;

typedef struct {
    /* The handshake completed (HTTP 101). */
    void (*on_open)(wsc *w, void *arg);
    /* One complete text message. data is valid during the call only. */
    void (*on_message)(wsc *w, const char *data, size_t len, void *arg);
    /* The connection attempt failed or an open connection ended. http_status is the handshake's HTTP status when
     * the server answered the upgrade with something other than 101 (401, 403, 400, …), else 0. reason is a
     * short human text: "cannot connect to 10.0.0.1 port 8081: connection refused", "connect timeout",
     * "handshake: 403", "handshake: wrong Sec-WebSocket-Accept", "TLS handshake failed: certificate verify failed:
     * …", "closed (1000)" after wsc_close(), "closed by peer (1000)", "message too large (1009)", "protocol error:
     * masked frame from the server (1002)", "connection lost". */
    void (*on_close)(wsc *w, int http_status, const char *reason, void *arg);
    /* The outgoing queue became empty (everything queued was written to the socket) while the connection is open.
     * Optional. */
    void (*on_drained)(wsc *w, void *arg);
} wsc_callbacks;

typedef struct {
    const char *ca_file;            /* CA bundle trusted for wss (copied), instead of the default store; NULL →
                                     * $SSL_CERT_FILE if set, else the system store */
    size_t      max_queue;          /* messages waiting to be written; 0 → 256 */
    size_t      max_queue_bytes;    /* their total payload size; 0 → 4 MiB */
    size_t      max_frame;          /* largest incoming message; 0 → 1 MiB */
    int         connect_timeout_ms; /* 0 → 10000: TCP + TLS + handshake */
} wsc_opts;

enum {
    WSC_OK = 0,
    WSC_E_CLOSED = -1, /* not connected: message not queued */
    WSC_E_FULL = -2,   /* queue full: message dropped */
    WSC_E_NOMEM = -3,  /* out of memory (or, never seen on Linux >= 3.17, no random bytes from the kernel) */
    WSC_E_URL = -4,    /* URL not ws:// or wss:// host[:port]/path[?query] (IPv6 in brackets), or a bearer with
                        * control characters */
    WSC_E_BUSY = -5,   /* already connecting or connected */
};

/* NULL when memory runs out. libssl is loaded only when the first wss:// URL is used. */
wsc *wsc_new(uv_loop_t *loop, const wsc_opts *opts, const wsc_callbacks *cb, void *arg);
/* Starts connecting to url (ws:// or wss://) sending `Authorization: Bearer <bearer>` when bearer is non-NULL.
 * Asynchronous: on_open or on_close follows, never from inside this call. A host name is resolved on a short-lived
 * thread (common/dial); an address literal is not. */
int wsc_connect(wsc *w, const char *url, const char *bearer);
/* Queues a text message (one unfragmented frame, masked as RFC 6455 requires). WSC_E_CLOSED when not open (also
 * while closing), WSC_E_FULL when the queue is at its bound: max_queue messages or max_queue_bytes bytes not yet
 * written to the socket. */
int wsc_send(wsc *w, const char *data, size_t len);
bool wsc_is_open(const wsc *w);
/* Messages not yet written to the socket. */
size_t wsc_queued(const wsc *w);
/* Starts a clean close: the queue is written, then a close frame (1000); the peer's close frame is awaited for a
 * short while (2 s) before the socket is closed, and the queue gets 10 s. on_close follows ("closed (1000)").
 * While connecting: the attempt is dropped and on_close("closed before open") is called before this returns.
 * No-op when idle or already closing. */
void wsc_close(wsc *w);
/* Drops the connection at once (no close frame, no callbacks) and frees everything; safe inside any of its
 * callbacks. libuv closes handles asynchronously and the memory goes with the last of them, so the loop must keep
 * running (uv_run until it returns) before it is closed. */
void wsc_free(wsc *w);

#endif
