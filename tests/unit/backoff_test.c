/* SPDX-License-Identifier: MIT */
/* backoff_test.c: the agent's restart schedule (node-agent/backoff.c). */
#include <criterion/criterion.h>

#include "agt.h"

Test(backoff, first_crash_restarts_at_once, .timeout = 2)
{
    cr_assert_eq(agt_backoff_ms(0, 12345), 0);
    cr_assert_eq(agt_backoff_ms(1, 0), 0);
    cr_assert_eq(agt_backoff_ms(1, UINT32_MAX), 0);
}

Test(backoff, doubles_from_one_second, .timeout = 2)
{
    /* The top of each range is the base: 1 s, 2 s, 4 s ... */
    uint64_t base = 1000;

    for (uint32_t n = 2; n <= 9; n++, base *= 2) {
        /* rnd = half picks the top of [base/2, base]; 0 the bottom. */
        cr_assert_eq(agt_backoff_ms(n, (uint32_t)(base / 2)), base, "n=%u", n);
        cr_assert_eq(agt_backoff_ms(n, 0), base / 2, "n=%u", n);
    }
}

Test(backoff, jitter_stays_within_half_and_full, .timeout = 2)
{
    for (uint32_t n = 2; n <= 40; n++) {
        uint64_t lo = UINT64_MAX, hi = 0;

        for (uint32_t r = 0; r < 5000; r++) {
            uint64_t d = agt_backoff_ms(n, r * 2654435761u);

            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
        }
        uint64_t base = n >= 11 ? AGT_BACKOFF_CAP_MS : 1000ull << (n - 2);

        if (base > AGT_BACKOFF_CAP_MS)
            base = AGT_BACKOFF_CAP_MS;
        cr_assert_geq(lo, base / 2, "n=%u lo=%llu", n, (unsigned long long)lo);
        cr_assert_leq(hi, base, "n=%u hi=%llu", n, (unsigned long long)hi);
        cr_assert_gt(hi, lo, "n=%u: no jitter", n);
    }
}

Test(backoff, capped_at_five_minutes, .timeout = 2)
{
    cr_assert_leq(agt_backoff_ms(10, UINT32_MAX), AGT_BACKOFF_CAP_MS);
    cr_assert_eq(agt_backoff_ms(11, 150000), AGT_BACKOFF_CAP_MS);
    cr_assert_leq(agt_backoff_ms(1000, UINT32_MAX), AGT_BACKOFF_CAP_MS);
    cr_assert_leq(agt_backoff_ms(UINT32_MAX, UINT32_MAX), AGT_BACKOFF_CAP_MS);
    cr_assert_geq(agt_backoff_ms(UINT32_MAX, 0), AGT_BACKOFF_CAP_MS / 2);
}

Test(backoff, reset_after_ten_minutes_up, .timeout = 2)
{
    cr_assert_eq(agt_backoff_next(0, 0), 1);
    cr_assert_eq(agt_backoff_next(5, 0), 6);
    cr_assert_eq(agt_backoff_next(5, AGT_BACKOFF_RESET_MS - 1), 6);
    cr_assert_eq(agt_backoff_next(5, AGT_BACKOFF_RESET_MS), 1);
    cr_assert_eq(agt_backoff_next(UINT32_MAX, 0), UINT32_MAX);
    /* After a reset the next restart is immediate again. */
    cr_assert_eq(agt_backoff_ms(agt_backoff_next(7, 11 * 60 * 1000), 99), 0);
}
