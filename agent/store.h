/* store.h — the agent's persisted state: identity, slot table, and tasks interrupted by a restart.
 *
 * Upstream keeps nothing on the pod (ref §1.3), so a restart loses every reservation and leaves running tasks
 * `running` forever. We keep, in {data_dir}/state.json, written atomically on every change (durably, except when
 * a task merely starts: see store_save):
 *   - the current agent id and pool id, and the ids this pod had before (upstream issues a new id at every
 *     registration; the ownership check of DESIGN §4.2 must recognise all of them);
 *   - every slot that is not idle (reservations survive restarts; running tasks become "interrupted");
 *   - tasks interrupted by a restart that still have to be reported as failed.
 * A file that cannot be parsed is moved aside (state.json.corrupt-<unix seconds>) and reported; the agent starts
 * fresh rather than crash or refuse to start.
 *
 * Ownership: the caller owns the agent_store struct; everything in it is fixed-size, nothing is allocated. */
#ifndef IAC_AGENT_STORE_H
#define IAC_AGENT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iac/slots.h"

#define STORE_ID_MAX 160        /* agent ids are "agent-{pool}-{nanos}" */
#define STORE_PAST_IDS 16       /* earlier agent ids remembered, newest first */
#define STORE_INTERRUPTED_MAX SLOTS_MAX

typedef struct {
    uint64_t    task_id;
    task_type   type;
    task_action action;
} store_task;

/* What store_save() wrote last: the rule that decides which saves are fsync'd compares with it (store.c). */
typedef struct {
    uint64_t running[SLOTS_MAX]; /* the task each slot was running, 0 for none */
    uint64_t rest;               /* a hash of the rest of the document; 0: nothing written since the load */
    bool     durable;            /* that save was fsync'd (a save that only took slots is not) */
} store_written;

typedef struct {
    char       agent_id[STORE_ID_MAX];  /* "" before the first registration */
    char       pool_id[STORE_ID_MAX];
    char       past_ids[STORE_PAST_IDS][STORE_ID_MAX];
    int        n_past_ids;
    slot_table slots;                    /* slots.n set by the caller before store_load */
    store_task interrupted[STORE_INTERRUPTED_MAX]; /* running when the agent stopped; to report as failed */
    int        n_interrupted;
    store_written written;               /* store_save()'s own; zeroed with the struct and by store_load */
} agent_store;

enum {
    STORE_LOADED = 0,    /* state read */
    STORE_FRESH = 1,     /* no state file: a first start */
    STORE_CORRUPT = 2,   /* unreadable file moved aside; msg says where */
};

/* Loads {dir}/state.json into st (st->slots must be initialised with the configured slot count and the start time,
 * which idle slots keep as their `since`). Slots that were
 * running become idle and their tasks are appended to st->interrupted; a reservation is kept if slot 0 exists.
 * Returns STORE_LOADED, STORE_FRESH, STORE_CORRUPT (with a message in msg), or -errno when the directory itself
 * is unusable (message in msg). */
int store_load(const char *dir, agent_store *st, char *msg, size_t msglen);

/* Writes st to {dir}/state.json atomically (mode 0600) and records what it wrote in st->written. A save whose only
 * change since the last one is slots taken (idle → running: a task starting) is not fsync'd — it is made as
 * terraform's first command starts, and store.c explains why a crash can afford to lose it; every other save is
 * fsync'd, file and directory. A save that would write what the last durable one wrote writes nothing. 0 or
 * -errno. */
int store_save(const char *dir, agent_store *st);

/* Records a new agent id from a registration; the previous one moves to past_ids (deduplicated, bounded). */
void store_set_identity(agent_store *st, const char *agent_id, const char *pool_id);

/* Whether id is the current agent id or one of the earlier ones. */
bool store_is_own_id(const agent_store *st, const char *id);

/* Removes task_id from the interrupted list (after it was reported). */
void store_forget_interrupted(agent_store *st, uint64_t task_id);

#endif
