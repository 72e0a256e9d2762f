/* SPDX-License-Identifier: MIT */
/* resend_test.c: how long the agent waits before re-sending an unanswered
 * request, or redialling (agt_resend_wait_ms, node-agent/conn.c). */
#include <criterion/criterion.h>

#include "agt.h"

Test(resend, first_resend_after_the_base_exactly)
{
    cr_assert_eq(agt_resend_wait_ms(3000, 0, 0), 3000);
    cr_assert_eq(agt_resend_wait_ms(3000, 0, 0xffffffffu), 3000);
}

Test(resend, doubles_with_up_to_half_again_of_jitter_capped_at_16x)
{
    for (uint32_t n = 1; n <= 10; n++) {
        uint64_t ms = 3000ull << (n < 4 ? n : 4), lo = UINT64_MAX, hi = 0;

        for (uint32_t r = 0; r < 20000; r++) {
            uint64_t w = agt_resend_wait_ms(3000, n, r * 2654435761u);

            lo = w < lo ? w : lo;
            hi = w > hi ? w : hi;
        }
        cr_assert_geq(lo, ms, "n=%u", n);
        cr_assert_leq(hi, ms + ms / 2, "n=%u", n);
        cr_assert_gt(hi - lo, ms / 4, "n=%u: the jitter spreads (%llu..%llu)", n,
                     (unsigned long long)lo, (unsigned long long)hi);
    }
}
