/* explain.h — "where is task N, or why does nothing hold it?", for GET /v1/explain and `iac-coordinator explain`.
 *
 * Upstream operators answered this with SQL and log greps (incident "task 598": an approved apply whose slot 0
 * was reserved on a pod, while the dispatcher looked only for idle slots). Here the answer comes from the pools'
 * last observations (pool_state), which are ground truth: the agents' own slot tables and the plane's list of
 * waiting tasks.
 *
 * Pure: pool states and a clock in, JSON and text out; no I/O, nothing kept. The answer is one of three:
 *   held     a slot of some pod's agent holds the task: pool, pod, slot and the phase in words (running a plan,
 *            running an apply, or apply_pending with slot 0 reserved since when);
 *   waiting  a pool's plane demand lists the task: why it waits, most specific reason first (configuration
 *            error, demand unknown, no free slot 0 / plan slot with the counts, scaling N→M, at max replicas,
 *            pods starting with their age, startup timeouts, the scale-up window);
 *   unknown  neither: said so, plus what could hide it (each pool's configuration error — incident "task 511" —,
 *            agents that did not answer, demand that was not read or not itemised).
 *
 * JSON (one object):
 *   {"task_id":N, "found":bool, "pool":"…"|null, "pod":"…"|null, "slot":N|null, "status":"running|reserved|
 *    waiting|unknown", "task_type":"…"|null, "phase":"…", "since":<epoch s>|null, "waiting":bool,
 *    "reasons":["…", …], "text":"…"}
 * text: the same for a person, a few lines ending in '\n'. */
#ifndef IAC_COORD_EXPLAIN_H
#define IAC_COORD_EXPLAIN_H

#include <stdint.h>

#include "iac/strbuf.h"
#include "pool.h"

typedef enum {
    EXPLAIN_HELD = 0,    /* a pod's slot holds the task (running or reserved) */
    EXPLAIN_WAITING = 1, /* a pool lists it as waiting for a slot */
    EXPLAIN_UNKNOWN = 2, /* neither */
} explain_result;

/* Explains task_id over pools[0..npools) (a NULL entry is skipped) at now_ms (epoch ms, the clock the agents' slot
 * "since" and the plane's "waiting_since" use). Appends the JSON object to json and the text to text; either may
 * be NULL. Returns an explain_result, -EINVAL for task_id 0 or a bad pools/npools pair (nothing appended), or
 * -ENOMEM when a buffer could not grow (its contents are then truncated). */
int explain_task(const pool_state *const *pools, int npools, uint64_t task_id, int64_t now_ms, strbuf *json,
                 strbuf *text);

#endif
