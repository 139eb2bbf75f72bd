/* lwsloop.h — libwebsockets contexts on a foreign libuv loop (the caller's), created and destroyed safely.
 *
 * lws 4.1.6 cannot destroy a context on a foreign loop in one call: it takes two lws_context_destroy() calls with
 * the loop running in between, and the first one leaves lws to close one fd twice (see common/lwsloop.c). Every
 * module that owns a context creates it with lwsloop_create() and hands it to lwsloop_destroy(), which does the
 * whole dance on the loop.
 *
 * A context can also be shared (lwsloop_share): creating one costs about 0.8 ms, because lws 4.1.6 lists its
 * library directory for event-loop plugins every time, so a process that runs a server and a client (the agent:
 * status server and C&C WebSocket) gives both one context, each user adding its own vhost. The share counts its
 * users and is destroyed, with the same dance, when the last one lets go.
 *
 * Ownership: the caller owns the loop and keeps running it (uv_run until it returns) after a destroy; the context
 * belongs to this module from lwsloop_destroy() (or the last lwsloop_share_unref()) on. Every call is made on the
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

/* ---- a context shared by several users ---- */

typedef struct lwsloop_share lwsloop_share;

/* A share of a context on loop with no vhost of its own and no TLS (OpenSSL's global init is not done): each user
 * adds the vhost it needs with lws_create_vhost() — a listener, or a client vhost (port CONTEXT_PORT_NO_LISTEN)
 * named in lws_client_connect_info.vhost — and finds its own state through lws_vhost_user(), never
 * lws_context_user(). fd_limit is the context's fd_limit_per_thread, shared by every user (0 → LWSLOOP_FD_LIMIT).
 * The context itself is made on first use (lwsloop_share_context), so that users can hold the share before anyone
 * needs lws: the agent starts registering first and pays for the context while the plane answers. The caller
 * holds the first reference. NULL when memory runs out. */
lwsloop_share *lwsloop_share_new(uv_loop_t *loop, unsigned fd_limit);
/* The context, made now if it was not yet. NULL when lws refuses (the next call tries again). */
struct lws_context *lwsloop_share_context(lwsloop_share *sh);
uv_loop_t *lwsloop_share_loop(const lwsloop_share *sh);
/* One more user. 0, or -ENOMEM (no reference taken). */
int lwsloop_share_ref(lwsloop_share *sh);
/* Drops one reference (every reference is dropped exactly once; sh may be gone when this returns). When the last
 * one goes, the context is destroyed as by lwsloop_destroy() — safe inside an lws callback of the context — and
 * once it is freed, every done callback given here (NULL: none) runs, in the order the references were dropped:
 * until that moment lws may still call any user's callbacks (closing connections), so what they reach must stay.
 * A share whose context was never made is freed, and its done callbacks run, at once.
 * A user whose callbacks reach nothing of its own any more (a client that detached its wsi) may free itself at
 * once; a listener's vhost keeps listening until the context goes. Never fails: everything the destroy needs was
 * allocated by lwsloop_share_new() and lwsloop_share_ref(). */
void lwsloop_share_unref(lwsloop_share *sh, lwsloop_done_cb done, void *arg);

#endif
