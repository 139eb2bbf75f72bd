/* test_bucket.c — the token bucket on a clock the test drives: a full start, the rate over time, the burst cap,
 * fractional accrual and a clock that goes back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "iac/bucket.h"

/* Takes tokens at now_ms until the bucket refuses; how many it gave. */
static int drain(bucket *b, uint64_t now_ms)
{
    int n = 0;
    while (bucket_take(b, now_ms))
        n++;
    return n;
}

/* A new bucket holds its burst and then refuses, without the clock moving. */
static void starts_full_then_refuses(void **state)
{
    (void)state;
    bucket b;
    bucket_init(&b, 10000, 2000, 1000);
    assert_true(bucket_ready(&b, 1000));
    assert_int_equal(drain(&b, 1000), 2000);
    assert_false(bucket_ready(&b, 1000));
    assert_false(bucket_take(&b, 1000));
}

/* Emptied, it gives the rate: 10 tokens per millisecond at 10,000 a second, 10,000 over a second taken in 1 ms
 * steps; asking without taking costs nothing. */
static void refills_at_the_rate(void **state)
{
    (void)state;
    bucket b;
    bucket_init(&b, 10000, 2000, 0);
    drain(&b, 0);
    assert_int_equal(drain(&b, 1), 10);
    int got = 0;
    for (uint64_t t = 2; t <= 1001; t++) {
        assert_true(bucket_ready(&b, t));
        got += drain(&b, t);
    }
    assert_int_equal(got, 10000);
}

/* A long pause fills it up to the burst, not beyond. */
static void a_pause_fills_only_to_the_burst(void **state)
{
    (void)state;
    bucket b;
    bucket_init(&b, 10000, 2000, 0);
    drain(&b, 0);
    assert_int_equal(drain(&b, 60000), 2000);
}

/* At a rate below one a millisecond, tokens accrue in fractions: 5 a second gives one every 200 ms. */
static void low_rates_accrue_fractions(void **state)
{
    (void)state;
    bucket b;
    bucket_init(&b, 5, 1, 0);
    assert_true(bucket_take(&b, 0));
    for (uint64_t t = 1; t < 200; t++)
        assert_false(bucket_take(&b, t));
    assert_true(bucket_take(&b, 200));
    assert_false(bucket_take(&b, 200));
}

/* A clock that goes back adds nothing (and takes nothing). */
static void a_clock_going_back_adds_nothing(void **state)
{
    (void)state;
    bucket b;
    bucket_init(&b, 1000, 10, 5000);
    assert_int_equal(drain(&b, 5000), 10);
    assert_int_equal(drain(&b, 4000), 0);
    assert_int_equal(drain(&b, 5001), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(starts_full_then_refuses),
        cmocka_unit_test(refills_at_the_rate),
        cmocka_unit_test(a_pause_fills_only_to_the_burst),
        cmocka_unit_test(low_rates_accrue_fractions),
        cmocka_unit_test(a_clock_going_back_adds_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
