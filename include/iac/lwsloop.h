/* lwsloop.h — libwebsockets contexts on a foreign libuv loop (the caller's), created and destroyed safely.
 *
 * lws 4.1.6 cannot destroy a context on a foreign loop in one call: it takes two lws_context_destroy() calls with
 * the loop running in between, and the first one leaves lws to close one fd twice (see common/lwsloop.c). Every
 * module that owns a context creates it with lwsloop_create() and hands it to lwsloop_destroy(), which does the
 * whole dance on the loop.
 *
 * Only the devplane (a test fake: its C&C WebSocket server) and tests and benchmarks use libwebsockets; the agent
 * and the coordinator do not link it (their HTTP server and WebSocket client are common/https.c and wsc.c).
 *
 * Ownership: the caller owns the loop and keeps running it (uv_run until it returns) after a destroy; the context
 * belongs to this module from lwsloop_destroy() on. Every call is made on the
 * loop's thread. */
#ifndef IAC_LWSLOOP_H
#define IAC_LWSLOOP_H

#include <uv.h>

struct lws_context;
struct lws_context_creation_info;

/* fd_limit_per_thread when the caller leaves it 0. */
#define LWSLOOP_FD_LIMIT 64

/* Creates a context on loop from a copy of *info, to which it adds what running on a foreign loop needs:
 * LWS_SERVER_OPTION_LIBUV with loop as the one foreign loop (count_threads 1), no lws signal handlers
 * (LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN) and, when info->fd_limit_per_thread is 0, LWSLOOP_FD_LIMIT: left
 * at 0, lws would size its fd tables from `ulimit -n`, megabytes in some containers. Everything else (port,
 * protocols, user, other options) is the caller's. *info is not modified, so it can go on to lws_create_vhost().
 * NULL when lws refuses. */
struct lws_context *lwsloop_create(uv_loop_t *loop, const struct lws_context_creation_info *info);

/* Called once the context is freed: lws makes no callback after it, so what its callbacks use (the context's user
 * data, the owner of per-session data) may be freed here. */
typedef void (*lwsloop_done_cb)(void *arg);

/* Destroys ctx, a context created on loop, and then calls done(arg) if done is not NULL. May be called from
 * anywhere on the loop's thread, including from inside an lws callback of ctx or a handler it runs: nothing
 * happens to ctx until control is back in the loop (an idle handle makes the first step), and lws may still make
 * callbacks until then (and for the connections that step closes: CLOSED, WSI_DESTROY). The caller must keep the
 * loop running until uv_run returns, and must not touch ctx again.
 * 0, or a negative errno (-ENOMEM): then nothing was started and ctx is left as it is (the caller can only leak
 * it, and whatever its callbacks use). */
int lwsloop_destroy(uv_loop_t *loop, struct lws_context *ctx, lwsloop_done_cb done, void *arg);

#endif
