/* cc.h — the agent's C&C session: one WebSocket to the control plane, messages in and out.
 *
 * Builds the C&C URL from the upstream rule (ref §1.2: ws[s]://{endpoint}:{cc port}/api/v1/agents/control
 * ?agent_id=…, Bearer pool token), decodes every incoming frame with common/proto and hands valid messages to the
 * owner; a malformed frame is logged, counted and dropped (WebSocket framing keeps message boundaries, so one bad
 * message does not desynchronise the stream). Outgoing messages are encoded and queued on the wsc's single writer.
 * Reconnection policy is the owner's (it depends on why the socket closed: 401, 403, or a network fault).
 *
 * Ownership: the owner creates and frees the session; callbacks run on the loop. */
#ifndef IAC_AGENT_CC_H
#define IAC_AGENT_CC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "iac/proto.h"

typedef struct cc_session cc_session;

typedef struct {
    void (*on_open)(void *arg);
    /* http_status: the handshake's status when the upgrade was refused (401, 403, …), else 0. */
    void (*on_close)(int http_status, const char *reason, void *arg);
    /* A decoded message; valid during the call only. MSG_UNKNOWN included (the owner ignores it). */
    void (*on_message)(const proto_msg *m, void *arg);
    /* Everything queued has been written. */
    void (*on_drained)(void *arg);
} cc_handlers;

typedef struct {
    uint64_t frames_received;
    uint64_t frames_invalid;
    uint64_t frames_sent;
    uint64_t frames_dropped; /* could not be queued (closed or queue full) */
} cc_counters;

cc_session *cc_new(uv_loop_t *loop, const cc_handlers *h, void *arg);
/* Connects to ws[s]://host:port/api/v1/agents/control?agent_id=<agent_id, URL-encoded>. 0 or a WSC_E_* code. */
int cc_connect(cc_session *s, bool tls, const char *host, int port, const char *agent_id, const char *token);
/* Encodes and queues m. 0, or a WSC_E_* code (the message is dropped and counted). */
int cc_send(cc_session *s, const proto_msg *m);
bool cc_is_open(const cc_session *s);
size_t cc_queued(const cc_session *s);
const cc_counters *cc_stats(const cc_session *s);
/* Clean close after the queue is written; on_close follows. */
void cc_close(cc_session *s);
void cc_free(cc_session *s);

#endif
