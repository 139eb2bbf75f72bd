/* agent.h — the agent's lifecycle (DESIGN §4.3): register → credentials while connecting → ready → draining → exit.
 *
 * One struct owns everything the agent process has: options, persisted store (with the slot table), the HTTP
 * client, the C&C session, the status server, timers and signals. Each step starts one asynchronous operation and
 * names the next in its completion callback; failures go back to the step that can repair them (a 403 on the C&C
 * handshake means "register again", a 401 means "re-read the token file or exit 3", anything else means "retry
 * with backoff").
 * main() owns the struct and the loop; agent_start() arms everything; the loop returns when the agent has
 * finished (exit code in a->exit_code).
 *
 * After a registration the registry credentials (ref E2) are fetched while the C&C socket connects, instead of
 * before (ref §1.3 runs them in turn): E2 needs no agent id and changes nothing at the plane. What the order
 * guaranteed — credentials on disk before any task starts — is kept by holding every C&C message that arrives
 * before the first fetch has ended (written, unchanged or failed) and handling them then, in order: to the agent
 * it is as if the socket had opened after the credentials. The heartbeat goes out at once, so the plane sees the
 * agent ready one round trip earlier.
 *
 * The status server (status.c) reads this struct and calls agent_drain()/agent_undrain()/
 * agent_release_reservation(); nothing else reaches inside. */
#ifndef IAC_AGENT_AGENT_H
#define IAC_AGENT_AGENT_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "cc.h"
#include "executor.h"
#include "recovery.h"
#include "reservation.h"
#include "iac/backoff.h"
#include "iac/httpc.h"
#include "iac/bucket.h"
#include "iac/https.h"
#include "options.h"
#include "store.h"

typedef enum {
    AGENT_REGISTERING = 0, /* registration in flight or waiting to retry */
    AGENT_CONNECTING,      /* registered; C&C connection (and credentials) in flight, or waiting to retry */
    AGENT_CONNECTED,       /* C&C open: ready */
    AGENT_STOPPING,        /* closing down */
} agent_phase;

enum { TASK_OUTCOME_SUCCESS = 0, TASK_OUTCOME_FAILED, TASK_OUTCOME_CANCELLED, TASK_OUTCOME_REJECTED, TASK_OUTCOME__N };

typedef struct {
    uint64_t registrations;      /* successful registrations */
    uint64_t registration_errors;
    uint64_t connects;           /* C&C connections opened */
    uint64_t reconnects;         /* connections opened after the first */
    uint64_t heartbeats_sent;
    uint64_t token_rejections;   /* 401 answers */
    uint64_t credentials_refreshes;
    uint64_t tasks[TASK_OUTCOME__N];
} agent_counters;

typedef struct agent {
    uv_loop_t     *loop;
    agent_options *opt;
    httpc         *http;
    cc_session    *cc;
    https_server  *status;
    executor      *exec;       /* runs tasks in store.slots */
    reservation   *resv;       /* ends slot 0's reservation on TTL or when its apply went elsewhere */
    recovery      *recov;      /* reports tasks a restart interrupted */
    agent_store    store;      /* identity and the slot table (store.slots) */
    agent_phase    phase;
    bool           registered;
    bool           draining;   /* no new work; set by SIGTERM, /v1/drain or a drain message */
    bool           exiting;    /* SIGTERM received: exit once idle and reported */
    bool           creds_settled;   /* the first credentials fetch has ended: C&C messages are handled at once */
    bool           heap_trimmed;     /* start-up's freed heap pages were handed back (once, see cc_drained) */
    bool           identity_unsaved; /* registered, state.json not yet written: saved once the first frames are
                                      * out (cc on_drained), so that its fsync is not on the way to the heartbeat */
    struct held_msg *held;          /* C&C messages received before creds_settled, oldest first (agent.c) */
    struct held_msg **held_tail;
    int            n_held;
    int            exit_code;
    int64_t        started_ms; /* Unix ms */
    char           base_url[600];
    backoff        reg_backoff;
    backoff        cc_backoff;
    uv_timer_t     retry_timer;     /* next registration or connection attempt */
    uv_timer_t     hb_timer;        /* every 10 s while connected */
    uv_timer_t     hb_soon_timer;   /* coalesces the slot changes of one loop turn into one heartbeat */
    uv_timer_t     creds_timer;     /* registry credentials every 5 minutes */
    uv_timer_t     exit_timer;      /* hard deadline for the final flush */
    uv_timer_t     drain_timer;     /* IAC_AGENT_DRAIN_TIMEOUT: then running tasks are interrupted */
    uv_signal_t    sig_term;
    uv_signal_t    sig_int;
    void         (*retry_step)(struct agent *a); /* what retry_timer runs */
    int            refused_403;     /* consecutive 403 handshakes without an open in between */
    httpc_call    *reg_call;
    httpc_call    *creds_call;
    int            creds_why;       /* CREDS_* of the call in flight (agent.c) */
    agent_counters n;
    bucket         live;            /* the rate of live log frames (agent.c, exec_live_ready) */
    int            handles_open;    /* libuv handles of this struct not yet closed */
} agent;

/* Prepares a: loads the store (a corrupt file is reported and moved aside), creates the HTTP client and the C&C
 * session. 0, or -1 with a message in err (the caller exits 1). */
int agent_init(agent *a, uv_loop_t *loop, agent_options *opt, char *err, size_t errlen);
/* Starts the status server, signals and the first registration. The status server comes first: an agent that
 * cannot serve its status (address in use, not local) does not register. 0, or -1 with a message in err (nothing
 * was sent to the plane). */
int agent_start(agent *a, char *err, size_t errlen);
/* Frees what agent_init/agent_start created; call after uv_run() returned. */
void agent_dispose(agent *a);

/* Stop accepting work (heartbeat says "draining"); with exit, also exit once idle. A second exit request forces
 * the exit at once. */
void agent_drain(agent *a, bool exit);
/* Accept work again (not after an exit request). Returns false when an exit is under way. */
bool agent_undrain(agent *a);
/* Ends slot 0's reservation (operator request). Returns the task id released, or 0 when there was none. */
uint64_t agent_release_reservation(agent *a, const char *why);

bool agent_ready(const agent *a);
const char *agent_phase_name(agent_phase p);
int64_t agent_now_ms(void);

#endif
