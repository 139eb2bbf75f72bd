/* test_backoff.c — exponential backoff with full jitter: bounds, doubling to the cap, reset, the distribution of
 * delays, determinism from the seed, and no overflow however long the failures last. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "iac/backoff.h"

#define SEED 0x1234abcdULL

/* Every delay lies in [0, ceiling], where the ceiling is the one in force before the draw. */
static void every_delay_lies_within_its_ceiling(void **state)
{
    (void)state;
    backoff b;
    backoff_init(&b, 500, 30000, SEED);
    for (int round = 0; round < 200; round++) {
        for (int i = 0; i < 12; i++) {
            uint64_t ceiling = backoff_ceiling(&b);
            uint64_t d = backoff_next(&b);
            assert_true(d <= ceiling);
        }
        backoff_reset(&b);
    }
}

/* Ceilings double from the base up to the cap and stay there; attempt counts the delays handed out. */
static void ceilings_double_to_the_cap_and_stay(void **state)
{
    (void)state;
    static const uint64_t want[] = { 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000 };
    backoff b;
    backoff_init(&b, 500, 30000, SEED);
    for (unsigned i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_int_equal(b.attempt, i);
        assert_int_equal(backoff_ceiling(&b), want[i]);
        backoff_next(&b);
    }
}

/* After a reset the next ceiling is the base again. */
static void reset_returns_to_base(void **state)
{
    (void)state;
    backoff b;
    backoff_init(&b, 250, 10000, SEED);
    for (int i = 0; i < 20; i++)
        backoff_next(&b);
    assert_int_equal(backoff_ceiling(&b), 10000);
    backoff_reset(&b);
    assert_int_equal(b.attempt, 0);
    assert_int_equal(backoff_ceiling(&b), 250);
    assert_true(backoff_next(&b) <= 250);
    assert_int_equal(backoff_ceiling(&b), 500);
}

/* Full jitter: the mean of many draws is near half the ceiling, and both ends of the range are reached. */
static void mean_of_many_draws_is_near_half_the_ceiling(void **state)
{
    (void)state;
    backoff b;
    backoff_init(&b, 1000, 1000, SEED);
    const int n = 200000;
    uint64_t sum = 0, lo = UINT64_MAX, hi = 0;
    for (int i = 0; i < n; i++) {
        uint64_t d = backoff_next(&b);
        sum += d;
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    double mean = (double)sum / n;
    assert_true(mean > 495.0 && mean < 505.0);
    assert_int_equal(lo, 0);
    assert_int_equal(hi, 1000);
}

/* The same seed gives the same delays; another seed gives others; seed 0 still gives varied delays. */
static void seed_determines_the_sequence(void **state)
{
    (void)state;
    backoff a, b, c, z;
    backoff_init(&a, 100, 100000, 42);
    backoff_init(&b, 100, 100000, 42);
    backoff_init(&c, 100, 100000, 43);
    backoff_init(&z, 1000, 1000, 0);
    int differ = 0;
    uint64_t first_z = backoff_next(&z);
    int z_varies = 0;
    for (int i = 0; i < 30; i++) {
        uint64_t da = backoff_next(&a), db = backoff_next(&b), dc = backoff_next(&c);
        assert_int_equal(da, db);
        differ += da != dc;
        z_varies += backoff_next(&z) != first_z;
    }
    assert_true(differ > 20);
    assert_true(z_varies > 20);
    assert_true(z.rng != 0);
}

/* A thousand failures in a row, and extreme bases and caps, never overflow: the ceiling stays the cap. */
static void no_overflow_after_a_thousand_attempts(void **state)
{
    (void)state;
    static const struct {
        uint64_t base, cap;
    } cases[] = {
        { 1, 30000 },
        { 500, UINT64_MAX },
        { UINT64_MAX / 3, UINT64_MAX },
        { UINT64_MAX, UINT64_MAX },
        { 60000, 1000 }, /* a base above the cap is capped from the first delay */
        { 0, 1000 },     /* a zero base never grows */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        backoff b;
        backoff_init(&b, cases[k].base, cases[k].cap, SEED + k);
        uint64_t prev = 0;
        for (int i = 0; i < 1000; i++) {
            uint64_t ceiling = backoff_ceiling(&b);
            assert_true(ceiling <= cases[k].cap);
            assert_true(ceiling >= prev); /* never shrinks, never wraps */
            prev = ceiling;
            assert_true(backoff_next(&b) <= ceiling);
        }
        uint64_t want = cases[k].base == 0 ? 0 : cases[k].cap;
        assert_true(backoff_ceiling(&b) == want);
        assert_int_equal(b.attempt, 1000);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_delay_lies_within_its_ceiling),
        cmocka_unit_test(ceilings_double_to_the_cap_and_stay),
        cmocka_unit_test(reset_returns_to_base),
        cmocka_unit_test(mean_of_many_draws_is_near_half_the_ceiling),
        cmocka_unit_test(seed_determines_the_sequence),
        cmocka_unit_test(no_overflow_after_a_thousand_attempts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
