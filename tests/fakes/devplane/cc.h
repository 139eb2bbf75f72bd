/* cc.h — the devplane's C&C WebSocket listener (ref §3): handshake checks, one connection per agent, frames decoded
 * with common/proto, heartbeats recorded in the registry.
 *
 * The server owns its connections; the registry's agent->conn points at one while it is open. Every call here is
 * made on the loop's thread, from anywhere (an HTTP handler, a timer). */
#ifndef DEVPLANE_CC_H
#define DEVPLANE_CC_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "iac/proto.h"
#include "registry.h"

#define CC_PATH "/api/v1/agents/control"
#define CC_MAX_QUEUE 256           /* frames waiting to be written to one agent */
#define CC_MAX_QUEUE_BYTES (4u << 20)

/* Close codes (RFC 6455) the plane uses. */
#define CC_CLOSE_NORMAL 1000 /* agent deleted */
#define CC_CLOSE_GOING_AWAY 1001 /* replaced by a newer connection, heartbeat timeout */
#define CC_CLOSE_POLICY 1008 /* token revoked */

typedef struct cc_server cc_server;

/* What the plane does with agents' messages beyond this module's bookkeeping (the task side: dispatch.c). Called on
 * the loop, often from inside lws's callbacks (and from cc_disconnect_agent() and friends): a hook may queue frames
 * (cc_send) but must not close connections or free the server. */
typedef struct {
    /* A frame that decoded, from agent_id's current connection, after a heartbeat has been recorded; m is valid
     * during the call only. */
    void (*frame)(void *arg, const char *agent_id, const proto_msg *m);
    /* agent_id's connection ended or began to close: it no longer counts as connected. */
    void (*disconnected)(void *arg, const char *agent_id);
    void *arg;
} cc_hooks;

/* Listens on host:port (0: ephemeral). NULL with a message in err on failure. */
cc_server *cc_listen(uv_loop_t *loop, const char *host, int port, registry *reg, char *err, size_t errlen);
int cc_port(const cc_server *s);
/* Installs the hooks (copied); NULL removes them (before cc_free, so that closing connections call nothing). */
void cc_set_hooks(cc_server *s, const cc_hooks *h);

/* Closes the agent's connection, if any, with a close frame (code, why). The agent shows as disconnected at once.
 * Returns 1 when a connection was closed, else 0. */
int cc_disconnect_agent(cc_server *s, const char *agent_id, int code, const char *why);
/* Closes every connection that authenticated with the token of this hash. Returns how many. */
size_t cc_disconnect_token(cc_server *s, const char *token_hash, int code, const char *why);
/* Queues a frame, as is, for the agent's connection. 0, -ENOENT (no such agent), -ENOTCONN (not connected),
 * -ENOBUFS (its queue is full), -ENOMEM. */
int cc_send(cc_server *s, const char *agent_id, const char *frame, size_t len);
/* Disconnects every agent whose last ping is older than timeout_ns. Returns how many. */
size_t cc_check_liveness(cc_server *s, int64_t now_ns, int64_t timeout_ns);

/* Drops every connection and frees the server; libuv handles close asynchronously, so the loop must keep running
 * until it has nothing left (uv_run returns). */
void cc_free(cc_server *s);

#endif
