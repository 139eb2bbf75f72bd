/* backoff.c — exponential backoff with full jitter; see backoff.h.
 *
 * The random source is xorshift64* kept in the struct: no global generator, reproducible in tests, and good enough
 * for spreading reconnects (this is not cryptography). Ceilings are computed without ever shifting past 63 bits, so
 * a loop that has failed a million times still gets the cap, never an overflowed zero. */
#include "iac/backoff.h"

#include <limits.h>

#define BACKOFF_SEED_ZERO 0x9e3779b97f4a7c15ULL /* xorshift state must never be 0 */

static uint64_t xorshift64star(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dULL;
}

void backoff_init(backoff *b, uint64_t base_ms, uint64_t cap_ms, uint64_t seed)
{
    b->base_ms = base_ms;
    b->cap_ms = cap_ms;
    b->attempt = 0;
    b->rng = seed ? seed : BACKOFF_SEED_ZERO;
}

uint64_t backoff_ceiling(const backoff *b)
{
    if (b->base_ms == 0 || b->base_ms >= b->cap_ms)
        return b->base_ms < b->cap_ms ? b->base_ms : b->cap_ms;
    /* base < cap here, so base << attempt stays below cap until it would pass it: compare before shifting. */
    if (b->attempt >= 64 || b->base_ms > (b->cap_ms >> b->attempt))
        return b->cap_ms;
    uint64_t c = b->base_ms << b->attempt;
    return c < b->cap_ms ? c : b->cap_ms;
}

uint64_t backoff_next(backoff *b)
{
    uint64_t ceiling = backoff_ceiling(b);
    if (b->rng == 0)
        b->rng = BACKOFF_SEED_ZERO;
    uint64_t r = xorshift64star(&b->rng);
    if (b->attempt < UINT_MAX)
        b->attempt++;
    /* Uniform in [0, ceiling]; the modulo bias is below 2^-40 for any ceiling a caller would use. */
    return ceiling == UINT64_MAX ? r : r % (ceiling + 1);
}

void backoff_reset(backoff *b) { b->attempt = 0; }
