/* SPDX-License-Identifier: MIT */
/*
 * Liveness (liveness.c): a silent node is down after the node timeout; a
 * stall of the controller's own loop gives every node a fresh grace; most
 * nodes silent at once are declared down at a bounded rate, and status says
 * why; a minority silent is declared down at once.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "ctl.h"
#include "log.h"

#define TIMEOUT 2000

static struct ctl_model *m;
static struct ctl_liveness lv;

static void
setup(void)
{
    log_set_level(LOG_ERROR);
    m = ctl_model_new();
    memset(&lv, 0, sizeof(lv));
}

static void
teardown(void)
{
    ctl_model_free(m);
}

TestSuite(liveness, .init = setup, .fini = teardown);

static struct ctl_node *
node(const char *name, uint64_t seen)
{
    struct ctl_node *n = NULL;

    cr_assert_eq(ctl_node_add(m, name, &n), 0);
    ctl_node_update(m, n, false, CTL_NODE_READY, false);
    n->last_seen_ms = seen;
    return n;
}

/* One tick as agents.c runs it: what comes back is marked down. */
static size_t
tick(uint64_t now, struct ctl_node **down)
{
    size_t n = ctl_liveness_tick(&lv, m, now, TIMEOUT, down, 8);

    for (size_t i = 0; i < n; i++)
        ctl_node_update(m, down[i], true, down[i]->admin, false);
    return n;
}

Test(liveness, one_silent_node_among_live_ones_is_down_after_the_timeout, .timeout = 2)
{
    struct ctl_node *down[8], *n1, *n2, *n3;

    n1 = node("n1", 1000);
    n2 = node("n2", 1000);
    n3 = node("n3", 1000);
    for (uint64_t t = 1000; t <= 3000; t += 250) {
        n1->last_seen_ms = n2->last_seen_ms = t;
        cr_assert_eq(tick(t, down), 0, "not before the timeout");
    }
    n1->last_seen_ms = n2->last_seen_ms = 3001;
    cr_assert_eq(tick(3001, down), 1);
    cr_assert_eq(down[0], n3);
    cr_assert_eq(m->nodes_health[0], '\0');
}

Test(liveness, a_stall_of_the_controller_is_not_a_death, .timeout = 2)
{
    struct ctl_node *down[8];

    node("n1", 1000);
    node("n2", 1000);
    node("n3", 1000);
    cr_assert_eq(tick(1250, down), 0);
    /* SIGSTOP for 10 s: the next tick comes 10 s later. */
    cr_assert_eq(tick(11250, down), 0, "a stall declared nodes down");
    for (size_t i = 0; i < m->nnodes; i++) {
        cr_assert_eq(m->node_v[i]->state, CTL_NODE_READY);
        cr_assert_eq(m->node_v[i]->last_seen_ms, 11250, "a fresh grace");
    }
    /* Still silent after that grace: then they are down (a minority rule
     * does not apply: all three are silent, so one at a time). */
    cr_assert_eq(tick(11500, down), 0);
    cr_assert_eq(tick(13251, down), 1);
}

Test(liveness, most_nodes_silent_at_once_go_down_at_a_bounded_rate, .timeout = 2)
{
    struct ctl_node *down[8], *n2, *n3;
    uint64_t t;

    node("n1", 1000);
    n2 = node("n2", 1000);
    n3 = node("n3", 1100);
    for (t = 1000; t <= 3000; t += 250) {
        ctl_node_find(m, "n1")->last_seen_ms = t;
        cr_assert_eq(tick(t, down), 0);
    }
    ctl_node_find(m, "n1")->last_seen_ms = 3250;
    cr_assert_eq(tick(3250, down), 1, "the longest silent goes first");
    cr_assert_eq(down[0], n2);
    cr_assert_not_null(strstr(m->nodes_health, "suspecting this controller or its network"), "%s",
                       m->nodes_health);
    for (t = 3500; t < 3250 + CTL_SUSPECT_INTERVAL_MS; t += 250) {
        ctl_node_find(m, "n1")->last_seen_ms = t;
        cr_assert_eq(tick(t, down), 0, "a second one at %llu", (unsigned long long)t);
    }
    ctl_node_find(m, "n1")->last_seen_ms = t;
    cr_assert_eq(tick(t, down), 1);
    cr_assert_eq(down[0], n3);
    /* n2 and n3 come back: the suspicion is over. */
    ctl_node_update(m, n2, false, CTL_NODE_READY, false);
    ctl_node_update(m, n3, false, CTL_NODE_READY, false);
    n2->last_seen_ms = n3->last_seen_ms = t + 250;
    ctl_node_find(m, "n1")->last_seen_ms = t + 250;
    cr_assert_eq(tick(t + 250, down), 0);
    cr_assert_eq(m->nodes_health[0], '\0', "%s", m->nodes_health);
}

Test(liveness, small_clusters_are_never_suspected, .timeout = 2)
{
    struct ctl_node *down[8];

    node("n1", 1000);
    node("n2", 1000);
    cr_assert_eq(tick(2000, down), 0);
    cr_assert_eq(tick(3001, down), 2);
    cr_assert_eq(m->nodes_health[0], '\0');
}

Test(liveness, agents_that_left_are_not_a_mass_silence, .timeout = 2)
{
    struct ctl_node *down[8], *n1, *n2, *n3;

    /* n1's agent said it is shutting down, then went quiet; n2 dies a
     * moment later; n3 lives on. Only one unexpected silence among the two
     * nodes that should be talking: no suspicion, both are down in time. */
    n1 = node("n1", 1000);
    n2 = node("n2", 1200);
    n3 = node("n3", 1000);
    ctl_node_update(m, n1, false, CTL_NODE_DRAINING, true);
    for (uint64_t t = 1000; t <= 3400; t += 100) {
        size_t ndown;

        n3->last_seen_ms = t;
        ndown = tick(t, down);
        if (t <= 3000)
            cr_assert_eq(ndown, 0, "not before the timeout (t=%llu)", (unsigned long long)t);
    }
    cr_assert_eq(n1->state, CTL_NODE_DOWN, "the agent that left is down after the timeout");
    cr_assert_eq(n2->state, CTL_NODE_DOWN, "the dead one is down at once, not at a bounded rate");
    cr_assert_eq(m->nodes_health[0], '\0', "no mass silence is said");
}
