#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "backoff.h"
#include "tbucket.h"

/* --- backoff ------------------------------------------------------------- */

static const struct {
    uint32_t min_ms, max_ms;
    uint64_t seed;
    uint32_t eff_min, eff_max; /* after backoff_init()'s clamping */
} backoff_rows[] = {
    { 1000, 30000, 1, 1000, 30000 },
    { 100, 1000, 42, 100, 1000 },
    { 100, 1000, 0, 100, 1000 },             /* seed 0 still jitters */
    { 1, 1, 7, 1, 1 },
    { 1, 1u << 31, 7, 1, 1u << 31 },
    { 3, 10, 0xdeadbeef, 3, 10 },
    { 500, 500, 9, 500, 500 },
    { 2000, 1000, 5, 2000, 2000 },          /* max below min: min wins */
    { 0, 8, 3, 1, 8 },                       /* zero would never grow */
    { 3000000000u, UINT32_MAX, 11, 3000000000u, UINT32_MAX },
    { UINT32_MAX, UINT32_MAX, 12, UINT32_MAX, UINT32_MAX },
};

START_TEST(test_backoff_bounds_and_doubling)
{
    struct backoff b;
    uint32_t cur;

    backoff_init(&b, backoff_rows[_i].min_ms, backoff_rows[_i].max_ms,
                 backoff_rows[_i].seed);
    ck_assert_uint_eq(b.min_ms, backoff_rows[_i].eff_min);
    ck_assert_uint_eq(b.max_ms, backoff_rows[_i].eff_max);
    cur = b.min_ms;
    for (int round = 0; round < 2; round++) {
        for (int k = 0; k < 80; k++) {
            uint32_t d = backoff_next(&b);
            if (d < cur / 2 || d > cur)
                ck_abort_msg("row %d step %d: %u outside [%u, %u]", _i, k, d,
                             cur / 2, cur);
            cur = cur > b.max_ms / 2 ? b.max_ms : cur * 2;
            if (b.cur_ms != cur)
                ck_abort_msg("row %d step %d: cur %u, expected %u", _i, k,
                             b.cur_ms, cur);
        }
        ck_assert_uint_eq(b.cur_ms, b.max_ms);
        backoff_reset(&b);
        ck_assert_uint_eq(b.cur_ms, b.min_ms);
        cur = b.min_ms;
    }
}
END_TEST

START_TEST(test_backoff_sequence)
{
    static const uint32_t ceiling[] = { 1000, 2000, 4000, 8000, 16000,
                                        30000, 30000, 30000 };
    struct backoff b;

    backoff_init(&b, 1000, 30000, 99);
    for (size_t k = 0; k < sizeof ceiling / sizeof ceiling[0]; k++) {
        uint32_t d = backoff_next(&b);
        ck_assert_uint_ge(d, ceiling[k] / 2);
        ck_assert_uint_le(d, ceiling[k]);
    }
    backoff_reset(&b);
    ck_assert_uint_le(backoff_next(&b), 1000);
    ck_assert_uint_le(backoff_next(&b), 2000);
}
END_TEST

START_TEST(test_backoff_jitter)
{
    /* At the cap the delay spreads over [max/2, max]: both ends of the
     * range are reached, and the same seed repeats the same delays. */
    struct backoff a, b;
    uint32_t lo = UINT32_MAX, hi = 0;
    int distinct_from_first = 0;

    backoff_init(&a, 10000, 10000, 1234);
    backoff_init(&b, 10000, 10000, 1234);
    uint32_t first = backoff_next(&a);
    ck_assert_uint_eq(backoff_next(&b), first);
    for (int k = 0; k < 10000; k++) {
        uint32_t d = backoff_next(&a);
        ck_assert_uint_eq(backoff_next(&b), d);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
        distinct_from_first += d != first;
    }
    ck_assert_uint_ge(lo, 5000);
    ck_assert_uint_lt(lo, 5100);
    ck_assert_uint_le(hi, 10000);
    ck_assert_uint_gt(hi, 9900);
    ck_assert_int_gt(distinct_from_first, 9000);

    backoff_init(&b, 10000, 10000, 4321);
    int same = 0;
    backoff_init(&a, 10000, 10000, 1234);
    for (int k = 0; k < 100; k++)
        same += backoff_next(&a) == backoff_next(&b);
    ck_assert_int_lt(same, 10);
}
END_TEST

/* --- token bucket -------------------------------------------------------- */

struct step {
    uint64_t now_ms;
    int takes;   /* how many tbucket_take() calls at now_ms */
    int granted; /* how many of them must succeed (the first ones) */
};

#define MAX_STEPS 8

static const struct {
    long rate, burst;
    uint64_t start_ms;
    struct step steps[MAX_STEPS];
    const char *what;
} tb_rows[] = {
    { 10, 3, 0, { { 0, 4, 3 }, { 99, 1, 0 }, { 100, 2, 1 }, { 350, 3, 2 },
                  { 10000, 5, 3 } },
      "burst, then 10 per second, capped at the burst" },
    { 100, 200, 5000, { { 5000, 201, 200 }, { 5010, 2, 1 }, { 5020, 2, 1 },
                        { 6000, 300, 98 } },
      "the defaults: 100 per second, burst 200" },
    { 1, 1, 0, { { 0, 2, 1 }, { 500, 1, 0 }, { 999, 1, 0 }, { 1000, 1, 1 },
                 { 1000, 1, 0 } },
      "one per second" },
    { 1, 1, 0, { { 0, 1, 1 }, { 700, 1, 0 }, { 900, 1, 0 }, { 1000, 1, 1 } },
      "fractions adding up to one token exactly" },
    { 1000, 5, 0, { { 0, 6, 5 }, { 1, 2, 1 }, { 3, 3, 2 }, { 1000000, 9, 5 } },
      "one per millisecond" },
    { 3, 2, 0, { { 0, 2, 2 }, { 333, 1, 0 }, { 334, 1, 1 }, { 666, 1, 0 },
                 { 667, 1, 1 }, { 1000, 1, 1 }, { 1000, 1, 0 } },
      "a rate that does not divide 1000" },
    { 10, 2, 1000, { { 1000, 2, 2 }, { 500, 1, 0 }, { 600, 1, 1 } },
      "a clock that steps back refills nothing, then counts from there" },
    { 10, 2, 0, { { 0, 2, 2 }, { UINT64_C(1) << 40, 3, 2 } },
      "a huge gap only fills up to the burst" },
    { 0, 2, 0, { { 0, 3, 2 }, { 100000, 1, 0 } },
      "rate 0: the burst, then nothing" },
    { 10, 0, 0, { { 0, 1, 0 }, { 100000, 1, 0 } },
      "burst 0: nothing ever" },
};

START_TEST(test_tbucket)
{
    struct tbucket tb;

    tbucket_init(&tb, tb_rows[_i].burst, tb_rows[_i].start_ms);
    for (int s = 0; s < MAX_STEPS && tb_rows[_i].steps[s].takes; s++) {
        const struct step *st = &tb_rows[_i].steps[s];
        for (int k = 0; k < st->takes; k++) {
            bool ok = tbucket_take(&tb, tb_rows[_i].rate, tb_rows[_i].burst,
                                   st->now_ms);
            if (ok != (k < st->granted))
                ck_abort_msg("row %d (%s), step %d, take %d: %s", _i,
                             tb_rows[_i].what, s, k,
                             ok ? "granted" : "refused");
        }
    }
}
END_TEST

START_TEST(test_tbucket_burst_lowered)
{
    /* A reload that lowers the burst takes effect on the next call. */
    struct tbucket tb;
    int granted = 0;

    tbucket_init(&tb, 100, 0);
    for (int k = 0; k < 10; k++)
        granted += tbucket_take(&tb, 10, 3, 0);
    ck_assert_int_eq(granted, 3);
}
END_TEST

START_TEST(test_tbucket_long_run)
{
    /* Over a simulated minute of one attempt per millisecond, the grants
     * are the burst plus rate per second, neither more nor fewer. */
    struct tbucket tb;
    long granted = 0;

    tbucket_init(&tb, 200, 0);
    for (uint64_t t = 0; t <= 60000; t++)
        granted += tbucket_take(&tb, 100, 200, t);
    ck_assert_int_eq(granted, 200 + 100 * 60);
}
END_TEST

static Suite *misc_suite(void)
{
    Suite *s = suite_create("misc");
    TCase *tc;

    tc = tcase_create("backoff");
    tcase_add_loop_test(tc, test_backoff_bounds_and_doubling, 0,
                        (int)(sizeof backoff_rows / sizeof backoff_rows[0]));
    tcase_add_test(tc, test_backoff_sequence);
    tcase_add_test(tc, test_backoff_jitter);
    suite_add_tcase(s, tc);

    tc = tcase_create("tbucket");
    tcase_add_loop_test(tc, test_tbucket, 0,
                        (int)(sizeof tb_rows / sizeof tb_rows[0]));
    tcase_add_test(tc, test_tbucket_burst_lowered);
    tcase_add_test(tc, test_tbucket_long_run);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(misc_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
