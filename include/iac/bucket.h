/* bucket.h — a token bucket: at most `rate` events a second on average, in bursts of up to `burst`.
 *
 * For work that is best-effort and must not flood its receiver: the agent's live log frames (agent.c). Time is the
 * caller's (milliseconds of a monotonic clock, e.g. uv_now), so the bucket holds no clock of its own and the tests
 * drive it exactly. The bucket starts full. Plain data: the caller owns it (no allocation). */
#ifndef IAC_BUCKET_H
#define IAC_BUCKET_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    double   tokens;
    double   rate_per_ms;
    double   burst;
    uint64_t last_ms; /* when tokens were last topped up */
} bucket;

/* rate: tokens a second (> 0); burst: the most that can pile up (≥ 1). */
void bucket_init(bucket *b, double rate, double burst, uint64_t now_ms);
/* Whether a token is there at now_ms (the bucket is topped up first; nothing is taken). */
bool bucket_ready(bucket *b, uint64_t now_ms);
/* Takes a token if there is one at now_ms. */
bool bucket_take(bucket *b, uint64_t now_ms);

#endif
