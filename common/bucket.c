/* bucket.c — a token bucket; see bucket.h.
 *
 * Tokens accrue continuously (a fraction of a token per millisecond at low rates), so the long-run average is the
 * rate exactly, whatever the granularity of the caller's clock. A clock that goes back (it should not) adds
 * nothing. */
#include "iac/bucket.h"

void bucket_init(bucket *b, double rate, double burst, uint64_t now_ms)
{
    b->rate_per_ms = rate / 1000.0;
    b->burst = burst;
    b->tokens = burst;
    b->last_ms = now_ms;
}

static void bucket_refill(bucket *b, uint64_t now_ms)
{
    if (now_ms <= b->last_ms)
        return;
    b->tokens += (double)(now_ms - b->last_ms) * b->rate_per_ms;
    if (b->tokens > b->burst)
        b->tokens = b->burst;
    b->last_ms = now_ms;
}

bool bucket_ready(bucket *b, uint64_t now_ms)
{
    bucket_refill(b, now_ms);
    return b->tokens >= 1.0;
}

bool bucket_take(bucket *b, uint64_t now_ms)
{
    if (!bucket_ready(b, now_ms))
        return false;
    b->tokens -= 1.0;
    return true;
}
