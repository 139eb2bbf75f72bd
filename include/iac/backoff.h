/* backoff.h — exponential backoff with full jitter and a cap.
 *
 * The n-th delay (n from 0) is uniform in [0, min(cap, base × 2^n)] ("full jitter", so that a pool of agents that
 * lost the same control plane does not reconnect in lock-step). Pure: the caller owns the struct and the timer; the
 * random state is inside the struct, seeded by the caller (tests pass a fixed seed). */
#ifndef IAC_BACKOFF_H
#define IAC_BACKOFF_H

#include <stdint.h>

typedef struct {
    uint64_t base_ms;
    uint64_t cap_ms;
    unsigned attempt;  /* delays handed out since the last reset */
    uint64_t rng;      /* xorshift64* state, never 0 */
} backoff;

void backoff_init(backoff *b, uint64_t base_ms, uint64_t cap_ms, uint64_t seed);
/* The ceiling of the next delay: min(cap, base × 2^attempt). */
uint64_t backoff_ceiling(const backoff *b);
/* Returns the next delay in ms and advances. */
uint64_t backoff_next(backoff *b);
/* After a success: the next delay starts from base again. */
void backoff_reset(backoff *b);

#endif
