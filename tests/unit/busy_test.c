/* SPDX-License-Identifier: MIT */
/*
 * busy_test.c: a busy heartbeat's retry_after_ms (controller/front.c) and
 * what the agent makes of it (common/rpc.c): held agents are never judged
 * down, however long the backlog, nor summoned before their wait is over.
 */
#include <criterion/criterion.h>

#include "ctl.h"
#include "log.h"
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

/* A node answered ERR_BUSY is not summoned (controller/beat.c) before the
 * longest wait its agent may choose is over: a summons would make it sync
 * at once and undo the shedding. Otherwise a node heard by UDP with no
 * watch and no sync for two heartbeats is summoned, at most once a
 * heartbeat. */
Test(busy, no_summons_while_a_told_agent_waits, .timeout = 5)
{
    struct ctl ctl = {.cfg = {.heartbeat_ms = 1000, .node_timeout_ms = 5000}};
    const uint64_t now = 1000000;
    struct ctl_node *n;

    log_set_level(LOG_ERROR);
    for (uint32_t ra = 10; ra <= 60000; ra = ra * 3 + 7) {
        uint64_t worst = rpc_hold_ms(ra, UINT32_MAX - (UINT32_MAX % (ra / 2 + 1)) - 1);

        cr_assert_geq(rpc_hold_max_ms(ra), worst, "retry_after %u: quiet %llu, agent waits %llu",
                      ra, (unsigned long long)rpc_hold_max_ms(ra), (unsigned long long)worst);
    }
    cr_assert_not_null(ctl.model = ctl_model_new());
    cr_assert_eq(ctl_node_add(ctl.model, "n1", &n), 0);
    ctl_node_update(ctl.model, n, false, CTL_NODE_READY, false);
    n->takes_summons = true;
    n->sync_ms = now - 3000;
    cr_assert(ctl_beat_wants_summons(&ctl, n, now), "no watch, no sync for 3 s: summoned");
    cr_assert_not(ctl_beat_wants_summons(&ctl, n, now + 500), "at most once a heartbeat");
    n->summoned_ms = 0;
    n->quiet_until_ms = now + rpc_hold_max_ms(1600);
    cr_assert_not(ctl_beat_wants_summons(&ctl, n, now + 1000));
    cr_assert_not(ctl_beat_wants_summons(&ctl, n, now + 2399), "its agent may still be waiting");
    cr_assert(ctl_beat_wants_summons(&ctl, n, now + 2400));
    n->summoned_ms = 0;
    n->watch_held = true;
    cr_assert_not(ctl_beat_wants_summons(&ctl, n, now + 5000), "a held watch: nothing to summon");
    n->watch_held = false;
    n->sync_ms = now + 4500;
    cr_assert_not(ctl_beat_wants_summons(&ctl, n, now + 5000), "a sync half a second ago");
    n->takes_summons = false;
    cr_assert_not(ctl_beat_wants_summons(&ctl, n, now + 9000), "an agent that takes none");
    ctl_model_free(ctl.model);
}
