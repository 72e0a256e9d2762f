/* SPDX-License-Identifier: MIT */
/*
 * evict_test.c: the controller's rule for moving instances off a node
 * (controller/reconcile.c): an instance marked for eviction keeps running
 * until its replacement is up, then it is stopped; cordon, drain, an agent
 * leaving, a node down while draining; and what a cancelled drain leaves.
 * First the pure rule, then the same through the model.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "log.h"

/* ---- the pure rule ---- */

static size_t
stopped_idx(const struct ctl_evictee *v, size_t n, uint32_t idx)
{
    size_t c = 0;

    for (size_t i = 0; i < n; i++)
        c += v[i].idx == idx && v[i].stop;
    return c;
}

Test(evict_rule, nothing_stops_before_a_replacement_is_up, .timeout = 2)
{
    struct ctl_evictee v[3] = {{.pos = 0, .idx = 1}, {.pos = 1, .idx = 2}, {.pos = 2, .idx = 3}};

    cr_assert_eq(ctl_evict_choose(v, 3, 3, 0, 3), 0);
    for (size_t i = 0; i < 3; i++)
        cr_assert_not(v[i].stop);
}

Test(evict_rule, each_replacement_up_frees_one_the_one_it_replaces_first, .timeout = 2)
{
    struct ctl_evictee v[3] = {
        {.pos = 0, .idx = 1}, {.pos = 1, .idx = 2, .slot_up = true}, {.pos = 2, .idx = 3}};

    cr_assert_eq(ctl_evict_choose(v, 3, 3, 1, 2), 1);
    cr_assert_eq(stopped_idx(v, 3, 2), 1, "web.2's replacement is up: web.2 goes");
    cr_assert_eq(stopped_idx(v, 3, 1) + stopped_idx(v, 3, 3), 0);
}

Test(evict_rule, all_stop_once_the_formation_is_up_elsewhere, .timeout = 2)
{
    struct ctl_evictee v[2] = {{.pos = 0, .idx = 1}, {.pos = 1, .idx = 2}};

    cr_assert_eq(ctl_evict_choose(v, 2, 2, 2, 0), 2);
    cr_assert_eq(ctl_evict_choose(v, 2, 2, 5, 0), 2, "more up than wanted");
    cr_assert_eq(ctl_evict_choose(v, 2, 0, 0, 0), 2, "scaled to zero");
}

Test(evict_rule, nowhere_to_go_holds_the_original, .timeout = 2)
{
    struct ctl_evictee v[2] = {{.pos = 0, .idx = 1}, {.pos = 1, .idx = 2}};

    /* Replacements exist but fit nowhere (coming 0): a drain waits. */
    cr_assert_eq(ctl_evict_choose(v, 2, 2, 0, 0), 0);
}

Test(evict_rule, a_leaving_node_waits_only_for_replacements_on_their_way, .timeout = 2)
{
    struct ctl_evictee v[3] = {{.pos = 0, .idx = 1, .leaving = true},
                               {.pos = 1, .idx = 2, .leaving = true},
                               {.pos = 2, .idx = 3, .leaving = true}};

    cr_assert_eq(ctl_evict_choose(v, 3, 3, 0, 0), 3, "nowhere to go: no point waiting");
    cr_assert_eq(ctl_evict_choose(v, 3, 3, 0, 1), 2, "one on its way: one waits for it");
}

Test(evict_rule, a_draining_node_is_kept_before_a_leaving_one, .timeout = 2)
{
    struct ctl_evictee v[2] = {{.pos = 0, .idx = 1, .leaving = true}, {.pos = 1, .idx = 2}};

    cr_assert_eq(ctl_evict_choose(v, 2, 2, 1, 1), 1);
    for (size_t i = 0; i < 2; i++)
        cr_assert_eq(v[i].stop, v[i].leaving, "the leaving one goes first");
}

/* ---- through the model ---- */

static struct ctl_model *m;
static struct ctl_app *app;

static void
setup(void)
{
    struct ctl_release *r;

    log_set_level(LOG_ERROR);
    m = ctl_model_new();
    cr_assert_not_null(m);
    cr_assert_eq(ctl_app_add(m, "shop", 1, &app), 0);
    r = ctl_release_new();
    r->version = 1;
    memset(r->slug_sha256, '0', 64);
    r->description = strdup("test");
    r->types = calloc(1, sizeof(*r->types));
    strcpy(r->types[0].name, "web");
    r->types[0].command = strdup("./web");
    r->ntypes = 1;
    cr_assert_eq(ctl_release_append(app, r), 0);
    app->current = 1;
    cr_assert_eq(ctl_formation_add(app, "web", 0, NULL), 0);
}

static void
teardown(void)
{
    ctl_model_free(m);
}

TestSuite(evict, .init = setup, .fini = teardown);

static struct ctl_node *
node(const char *name, uint32_t cap)
{
    struct ctl_node *n = NULL;

    cr_assert_eq(ctl_node_add(m, name, &n), 0);
    cr_assert_eq(ctl_node_set_range(n, 5000, 5099), 0);
    n->capacity = cap;
    ctl_node_update(m, n, false, CTL_NODE_READY, false);
    return n;
}

static void
scale(uint32_t q)
{
    ctl_formation_find(app, "web")->quantity = q;
    cr_assert_eq(ctl_reconcile_app(m, app, 1000), 0);
    cr_assert_eq(ctl_settle(m, 1000), 0);
}

static void
all_up(void)
{
    struct ctl_instance *in;

    LIST_FOREACH (in, &app->instances, app_link) {
        if (in->node != NULL && !in->stopping)
            ctl_inst_set_state(m, in, DROVER__INSTANCE_STATE__ST_UP, 1);
    }
}

/* What agents.c does when a report says an instance came up. */
static void
report_up(struct ctl_instance *in)
{
    ctl_inst_set_state(m, in, DROVER__INSTANCE_STATE__ST_UP, 2);
    if (m->ndraining > 0)
        ctl_app_want_reconcile(m, in->app);
    cr_assert_eq(ctl_settle(m, 2000), 0);
}

static size_t
count(const struct ctl_node *n, bool stopping)
{
    struct ctl_instance *in;
    size_t c = 0;

    LIST_FOREACH (in, &app->instances, app_link)
        c += (n == NULL || in->node == n) && in->stopping == stopping;
    return c;
}

static struct ctl_instance *
find(uint32_t idx, const struct ctl_node *on, bool stopping)
{
    struct ctl_instance *in;

    LIST_FOREACH (in, &app->instances, app_link) {
        if (in->idx == idx && in->node == on && in->stopping == stopping)
            return in;
    }
    return NULL;
}

/* Three nodes a, b, c and web=3 up, one on each: a's, which is returned. */
static struct ctl_instance *
spread_three(struct ctl_node **a, struct ctl_node **b, struct ctl_node **c)
{
    *a = node("a", 10);
    *b = node("b", 10);
    *c = node("c", 10);
    scale(3);
    all_up();
    cr_assert_not_null(LIST_FIRST(&(*a)->instances), "spread: a holds one");
    return LIST_FIRST(&(*a)->instances);
}

/* The instance with orig's name that is not orig, or NULL. */
static struct ctl_instance *
replacement(const struct ctl_instance *orig)
{
    struct ctl_instance *in, *r = NULL;

    LIST_FOREACH (in, &app->instances, app_link) {
        if (in != orig && in->idx == orig->idx)
            r = in;
    }
    return r;
}

Test(evict, drain_places_replacements_elsewhere_and_stops_each_once_it_is_up, .timeout = 2)
{
    struct ctl_node *a, *b, *c;
    struct ctl_instance *orig = spread_three(&a, &b, &c), *repl;

    cr_assert_eq(a->nlive, 1);

    ctl_node_update(m, a, false, CTL_NODE_DRAINING, false);
    cr_assert_eq(a->state, CTL_NODE_DRAINING);
    cr_assert(ctl_inst_evicted(orig));
    cr_assert_eq(ctl_settle(m, 2000), 0);
    /* A replacement with the same name, elsewhere; the original runs on. */
    repl = replacement(orig);
    cr_assert_not_null(repl, "no replacement");
    cr_assert(repl->node == b || repl->node == c, "the replacement must not go to a");
    cr_assert_not(orig->stopping, "stopped before its replacement was up");
    cr_assert_eq(count(NULL, false), 4);
    /* Reconciling again changes nothing while it is not up. */
    ctl_app_want_reconcile(m, app);
    cr_assert_eq(ctl_settle(m, 2000), 0);
    cr_assert_not(orig->stopping);
    cr_assert_eq(count(NULL, false), 4);

    report_up(repl);
    cr_assert(orig->stopping, "its replacement is up: it goes");
    cr_assert_eq(a->nlive, 0);
    cr_assert_eq(count(NULL, false), 3);
    cr_assert_str_eq(ctl_inst_state_name(orig), "draining");
}

Test(evict, a_drain_with_nowhere_to_go_waits, .timeout = 2)
{
    struct ctl_node *a = node("a", 10), *b = node("b", 1);
    struct ctl_instance *on_a, *pending = NULL, *in;

    scale(2);
    all_up();
    cr_assert_eq(a->nlive, 1);
    cr_assert_eq(b->nlive, 1, "b is full");
    on_a = LIST_FIRST(&a->instances);
    ctl_node_update(m, a, false, CTL_NODE_DRAINING, false);
    cr_assert_eq(ctl_settle(m, 2000), 0);
    LIST_FOREACH (in, &app->instances, app_link) {
        if (in->node == NULL)
            pending = in;
    }
    cr_assert_not_null(pending, "the replacement waits, pending");
    cr_assert_str_eq(pending->reason, "no ready node with free capacity");
    cr_assert_not(on_a->stopping, "nowhere to go: the original must keep running");
    /* Capacity appears: the replacement is placed, comes up, a is freed. */
    b->capacity = 2;
    m->capacity_changed = true;
    cr_assert_eq(ctl_settle(m, 3000), 0);
    cr_assert_eq(pending->node, b);
    cr_assert_not(on_a->stopping);
    report_up(pending);
    cr_assert(on_a->stopping);
}

Test(evict, a_leaving_agent_is_not_held_by_replacements_with_nowhere_to_go, .timeout = 2)
{
    struct ctl_node *a = node("a", 10);
    struct ctl_instance *in;

    scale(2);
    all_up();
    ctl_node_update(m, a, false, CTL_NODE_READY, true);
    cr_assert_eq(a->state, CTL_NODE_DRAINING, "a leaving agent's node is draining");
    cr_assert_eq(ctl_settle(m, 2000), 0);
    LIST_FOREACH (in, &a->instances, node_link) {
        cr_assert(in->stopping, "nothing can replace it: it stops now");
    }
    cr_assert_eq(count(a, true), 2, "both of a's instances are stopping, still on a");
    cr_assert_eq(count(a, false), 0);
}

Test(evict, a_cordoned_node_gets_nothing_new, .timeout = 2)
{
    struct ctl_node *a = node("a", 10), *b = node("b", 10);

    ctl_node_update(m, a, false, CTL_NODE_CORDONED, false);
    scale(4);
    cr_assert_eq(a->nlive, 0);
    cr_assert_eq(b->nlive, 4);
    /* Cordon is not drain: what runs there stays. */
    ctl_node_update(m, a, false, CTL_NODE_READY, false);
    scale(6);
    cr_assert_eq(a->nlive, 2, "uncordoned: it takes the new ones (spread)");
    ctl_node_update(m, a, false, CTL_NODE_CORDONED, false);
    cr_assert_eq(ctl_settle(m, 2000), 0);
    cr_assert_eq(a->nlive, 2);
    cr_assert_eq(count(NULL, true), 0);
}

Test(evict, uncordon_mid_drain_keeps_the_originals_and_drops_the_doubles, .timeout = 2)
{
    struct ctl_node *a = node("a", 2), *b = node("b", 1);

    scale(3);
    all_up();
    cr_assert_eq(a->nlive, 2);
    cr_assert_eq(b->nlive, 1);
    ctl_node_update(m, a, false, CTL_NODE_DRAINING, false);
    cr_assert_eq(ctl_settle(m, 2000), 0);
    cr_assert_eq(count(NULL, false), 5, "2 originals on a, 2 pending replacements, 1 on b");
    /* The drain is cancelled: every name is held once again, by what runs. */
    ctl_node_update(m, a, false, CTL_NODE_READY, false);
    cr_assert_eq(ctl_settle(m, 3000), 0);
    cr_assert_eq(count(NULL, false), 3);
    cr_assert_eq(count(NULL, true), 0, "nothing running was stopped");
    for (uint32_t idx = 1; idx <= 3; idx++) {
        struct ctl_instance *in;
        size_t holders = 0;

        LIST_FOREACH (in, &app->instances, app_link)
            holders += in->idx == idx && !in->stopping;
        cr_assert_eq(holders, 1, "web.%u held %zu times", idx, holders);
    }
    cr_assert_eq(a->nlive, 2);
}

Test(evict, a_node_down_while_draining_holds_nothing, .timeout = 2)
{
    struct ctl_node *a = node("a", 10), *b = node("b", 10);
    struct ctl_instance *in, *next;

    scale(2);
    all_up();
    ctl_node_update(m, a, false, CTL_NODE_DRAINING, false);
    cr_assert_eq(ctl_settle(m, 2000), 0);
    /* a goes silent: what it held is lost (agents.c, node_down). */
    ctl_node_update(m, a, true, a->admin, a->leaving);
    for (in = LIST_FIRST(&a->instances); in != NULL; in = next) {
        next = LIST_NEXT(in, node_link);
        ctl_inst_stop(m, in);
        ctl_inst_set_state(m, in, DROVER__INSTANCE_STATE__ST_LOST, 3);
    }
    cr_assert_eq(a->ninst, 1);
    ctl_node_forget_lost(m, a);
    cr_assert_eq(a->ninst, 0, "lost instances of a drained down node are forgotten");
    cr_assert_eq(ctl_settle(m, 3000), 0);
    cr_assert_eq(b->nlive, 2);
    cr_assert_null(find(1, a, false));
}

/* As agents.c's node_down: down, and what was not stopping is lost. */
static void
node_down(struct ctl_node *n)
{
    struct ctl_instance *in;

    ctl_node_update(m, n, true, n->admin, n->leaving);
    LIST_FOREACH (in, &n->instances, node_link) {
        if (in->stopping)
            continue;
        ctl_inst_stop(m, in);
        ctl_inst_set_state(m, in, DROVER__INSTANCE_STATE__ST_LOST, 3);
    }
    ctl_node_forget_lost(m, n);
}

/* An agent that said it was leaving and went silent stopped everything it
 * ran before it exited (its last report lost on the way): nothing of it is
 * listed on. A node that died without a word shows its lost instance. */
Test(evict, a_node_down_after_leaving_holds_nothing, .timeout = 2)
{
    struct ctl_node *a, *b, *c;
    struct ctl_instance *orig = spread_three(&a, &b, &c), *repl;

    ctl_node_update(m, a, false, a->admin, true);
    cr_assert_eq(ctl_settle(m, 2000), 0);
    repl = replacement(orig);
    cr_assert_not_null(repl, "no replacement");
    report_up(repl);
    cr_assert(orig->stopping, "its replacement is up: it goes");
    node_down(a);
    cr_assert_eq(a->ninst, 0, "a left: its draining instance is forgotten");
    cr_assert_eq(count(NULL, true), 0);

    /* c dies without leaving: its web is lost, shown, and replaced. */
    node_down(c);
    cr_assert_eq(c->ninst, 1, "a dead node's instance is shown lost");
    cr_assert_str_eq(ctl_inst_state_name(LIST_FIRST(&c->instances)), "lost");
    cr_assert_eq(ctl_settle(m, 3000), 0);
    cr_assert_eq(b->nlive, 3);
}

Test(evict, node_state_is_derived_and_admin_survives_down, .timeout = 2)
{
    struct ctl_node *a = node("a", 10);

    ctl_node_update(m, a, false, CTL_NODE_CORDONED, false);
    cr_assert_eq(a->state, CTL_NODE_CORDONED);
    ctl_node_update(m, a, true, a->admin, false);
    cr_assert_eq(a->state, CTL_NODE_DOWN);
    cr_assert_eq(a->admin, CTL_NODE_CORDONED);
    ctl_node_update(m, a, false, a->admin, false);
    cr_assert_eq(a->state, CTL_NODE_CORDONED, "back up, still cordoned");
    ctl_node_update(m, a, false, a->admin, true);
    cr_assert_eq(a->state, CTL_NODE_DRAINING, "leaving");
    cr_assert_eq(m->ndraining, 1);
    ctl_node_update(m, a, false, CTL_NODE_READY, false);
    cr_assert_eq(a->state, CTL_NODE_READY);
    cr_assert_eq(m->ndraining, 0);
    cr_assert_str_eq(ctl_node_state_name(a->state), "ready");
}
