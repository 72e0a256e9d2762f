/* SPDX-License-Identifier: MIT */
/*
 * busy_test.c: a busy heartbeat's retry_after_ms (controller/front.c) and
 * what the agent makes of it (common/rpc.c): held agents are never judged
 * down, however long the backlog.
 */
#include <criterion/criterion.h>

#include "ctl.h"
#include "rpc.h"

Test(busy, retry_after_is_a_heartbeat_plus_the_backlog, .timeout = 2)
{
    struct ctl_config cfg = {.heartbeat_ms = 1000, .node_timeout_ms = 5000};

    cr_assert_eq(ctl_busy_retry_ms(&cfg, 100), 1100);
    cr_assert_eq(ctl_busy_retry_ms(&cfg, 500), 1500);
    cr_assert_eq(ctl_busy_retry_ms(&cfg, 0), 1000);
    cr_assert_eq(ctl_busy_retry_ms(&cfg, 5000), 1600, "capped at 2/5 of 5000 - 1000");
}

Test(busy, a_held_agent_is_heard_again_within_the_node_timeout, .timeout = 2)
{
    static const uint64_t hb[] = {10, 200, 1000, 1000, 3000};
    static const uint64_t to[] = {100, 3000, 5000, 60000, 3100};

    for (size_t i = 0; i < sizeof(hb) / sizeof(hb[0]); i++) {
        struct ctl_config cfg = {.heartbeat_ms = hb[i], .node_timeout_ms = to[i]};

        for (uint64_t backlog = 0; backlog < 100000; backlog = backlog * 2 + 1) {
            uint64_t ra = ctl_busy_retry_ms(&cfg, backlog);

            /* the longest wait the agent chooses: rnd at its maximum */
            uint64_t worst =
                rpc_hold_ms((uint32_t)ra, UINT32_MAX - (UINT32_MAX % (ra / 2 + 1)) - 1);

            cr_assert_geq(ra, 10);
            cr_assert_lt(worst + hb[i], to[i], "hb %llu timeout %llu backlog %llu: held %llu ms",
                         (unsigned long long)hb[i], (unsigned long long)to[i],
                         (unsigned long long)backlog, (unsigned long long)worst);
        }
    }
}
