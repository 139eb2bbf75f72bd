/* heartbeat.h — the heartbeat payload from the slot table (ref §3.4, DESIGN §4.2 and §6).
 *
 * Pure apart from heartbeat_mem_usage(), which reads /proc/meminfo. The upstream fields are computed so that an
 * unmodified Terranova control plane makes the right decisions (plan_limit = n-1, 0 while draining; plan_running =
 * busy slots ≥ 1; apply_running = slot 0 running, true while draining — a reserved slot 0 reports false so that
 * the confirmed apply comes back here); our extensions carry the real slot table and state.
 *
 * heartbeat_frame holds the message and the arrays it points to; the caller owns it (usually on the stack). */
#ifndef IAC_AGENT_HEARTBEAT_H
#define IAC_AGENT_HEARTBEAT_H

#include <stdbool.h>
#include <stdint.h>

#include "iac/proto.h"
#include "iac/slots.h"

typedef struct {
    proto_msg  msg;
    proto_slot slots[SLOTS_MAX];
    uint64_t   tasks[SLOTS_MAX];
    char      *caps[3];
} heartbeat_frame;

/* Fills f->msg (type MSG_HEARTBEAT). Strings point to constants or to `version`, which must outlive f. */
void heartbeat_build(heartbeat_frame *f, const slot_table *t, bool draining, int64_t now_s, double mem_usage,
                     const char *version);

/* (MemTotal − MemAvailable) / MemTotal × 100 from /proc/meminfo; 0 when unreadable (as upstream). */
double heartbeat_mem_usage(void);
/* The same computed from the text of /proc/meminfo; 0 when either line is missing or the values make no sense. */
double heartbeat_parse_meminfo(const char *text);

#endif
