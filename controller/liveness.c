/* SPDX-License-Identifier: MIT */
/*
 * liveness.c: which silent nodes are down, judged on the monotonic clock.
 *
 * A node silent for longer than the node timeout is down (agents.c then
 * marks its instances lost and the reconciler replaces them). Two
 * exceptions, because a silence the controller caused is not the nodes':
 *
 *   - A stall of the controller itself (SIGSTOP, a paused VM, a swap storm)
 *     longer than the node timeout: when the gap between two ticks of its
 *     own loop exceeds the node timeout, every node gets a fresh grace
 *     period, as a restart does (store load). Their heartbeats were sent;
 *     the controller was not there to hear them.
 *
 *   - Most nodes silent at once: with at least CTL_SUSPECT_MIN_NODES live
 *     nodes, when one is silent past the timeout and more than half of them
 *     have been silent for half of it ("at once": within half a timeout), the
 *     likelier cause is this controller's network (or the controller), not
 *     that many hosts died in the same second. Kubernetes stops evictions in
 *     a fully disrupted zone; Nomad #3840 is what happens without such a
 *     rule. drover then declares at most one node down per
 *     max(CTL_SUSPECT_INTERVAL_MS, node timeout), the longest silent first,
 *     says so in the log (event=mass_silence, then event=mass_silence_over)
 *     and in status (m->nodes_health), until no node is silent any more or
 *     fewer than half of the nodes live when it began are silent or down.
 *
 * Agents that said they are leaving (SIGTERM) are not counted: their
 * silence is expected, and they go down after the timeout as usual.
 *
 * The rule is a pure function of the model and the clock: unit-tested alone
 * (liveness_test.c).
 */
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "log.h"

static bool
silent(const struct ctl_node *n, uint64_t now, uint64_t timeout)
{
    return n->state != CTL_NODE_DOWN && now > n->last_seen_ms && now - n->last_seen_ms > timeout;
}

/* A gap in the controller's own loop: every live node starts afresh. */
static void
stalled(struct ctl_liveness *lv, struct ctl_model *m, uint64_t now)
{
    log_warn("controller_stalled", "gap_ms=%llu nodes=%zu reason=%s",
             (unsigned long long)(now - lv->last_tick), m->nnodes,
             log_q("this controller did not run for longer than the node timeout: every node "
                   "gets a fresh grace period"));
    for (size_t i = 0; i < m->nnodes; i++) {
        if (m->node_v[i]->state != CTL_NODE_DOWN)
            m->node_v[i]->last_seen_ms = now;
    }
}

static uint64_t
interval(uint64_t timeout)
{
    return timeout > CTL_SUSPECT_INTERVAL_MS ? timeout : CTL_SUSPECT_INTERVAL_MS;
}

static void
suspect_say(struct ctl_liveness *lv, struct ctl_model *m, size_t nsilent, uint64_t timeout)
{
    snprintf(m->nodes_health, sizeof(m->nodes_health),
             "%zu of %u nodes went silent at once: suspecting this controller or its network, "
             "not the nodes; declaring at most one node down every %llu s (%u so far)",
             nsilent + lv->downed, lv->total, (unsigned long long)(interval(timeout) / 1000),
             lv->downed);
}

size_t
ctl_liveness_tick(struct ctl_liveness *lv, struct ctl_model *m, uint64_t now, uint64_t timeout,
                  struct ctl_node **down, size_t max)
{
    struct ctl_node *oldest = NULL;
    size_t i, live = 0, nsilent = 0, nquiet = 0, n = 0;

    if (lv->last_tick != 0 && now > lv->last_tick && now - lv->last_tick > timeout)
        stalled(lv, m, now);
    lv->last_tick = now;
    for (i = 0; i < m->nnodes; i++) {
        struct ctl_node *nd = m->node_v[i];

        if (nd->state == CTL_NODE_DOWN)
            continue;
        /* An agent that said it is shutting down was expected to go quiet:
         * its silence says nothing of the network, and it is down as usual. */
        if (nd->leaving) {
            if (silent(nd, now, timeout) && n < max)
                down[n++] = nd;
            continue;
        }
        live++;
        /* Going silent (half the timeout): "at once" means within that. */
        nquiet += silent(nd, now, timeout / 2);
        if (!silent(nd, now, timeout))
            continue;
        nsilent++;
        if (oldest == NULL || nd->last_seen_ms < oldest->last_seen_ms)
            oldest = nd;
    }
    if (!lv->suspect && nsilent > 0 && live >= CTL_SUSPECT_MIN_NODES && 2 * nquiet > live) {
        lv->suspect = true;
        lv->total = (uint32_t)live;
        lv->downed = 0;
        lv->last_down = 0;
        log_warn("mass_silence", "silent=%zu live=%zu interval_ms=%llu reason=%s", nquiet, live,
                 (unsigned long long)interval(timeout),
                 log_q("most nodes went silent at once: replacing at a bounded rate"));
    } else if (lv->suspect && (nsilent == 0 || 2 * (nsilent + lv->downed) <= lv->total)) {
        log_info("mass_silence_over", "silent=%zu downed=%u of=%u", nsilent, lv->downed, lv->total);
        lv->suspect = false;
        m->nodes_health[0] = '\0';
    }
    if (lv->suspect) {
        if (oldest != NULL && n < max &&
            (lv->last_down == 0 || now - lv->last_down >= interval(timeout))) {
            down[n++] = oldest;
            lv->downed++;
            lv->last_down = now;
            nsilent--;
        }
        suspect_say(lv, m, nsilent, timeout);
        return n;
    }
    for (i = 0; i < m->nnodes && n < max; i++) {
        if (!m->node_v[i]->leaving && silent(m->node_v[i], now, timeout))
            down[n++] = m->node_v[i];
    }
    return n;
}
