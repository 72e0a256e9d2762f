/* SPDX-License-Identifier: MIT */
/*
 * Scheduler and reconcile: filter (ready, capacity, free port), then spread
 * one app+type across nodes, then least loaded, then name; formation changes
 * create, place and stop the right instances.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "log.h"

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
    strcpy(r->slug_sha256, "0000000000000000000000000000000000000000000000000000000000000000");
    r->description = strdup("test");
    r->types = calloc(2, sizeof(*r->types));
    strcpy(r->types[0].name, "web");
    r->types[0].command = strdup("./web");
    strcpy(r->types[1].name, "worker");
    r->types[1].command = strdup("./work");
    r->ntypes = 2;
    cr_assert_eq(ctl_release_append(app, r), 0);
    app->current = 1;
    cr_assert_eq(ctl_formation_add(app, "web", 0, NULL), 0);
    cr_assert_eq(ctl_formation_add(app, "worker", 0, NULL), 0);
}

static void
teardown(void)
{
    ctl_model_free(m);
}

static struct ctl_node *
node(const char *name, uint32_t cap, uint16_t lo, uint16_t hi)
{
    struct ctl_node *n = NULL;

    cr_assert_eq(ctl_node_add(m, name, &n), 0);
    cr_assert_eq(ctl_node_set_range(n, lo, hi), 0);
    n->capacity = cap;
    n->state = CTL_NODE_READY;
    return n;
}

/* Place one instance of type on n directly, as if scheduled earlier. */
static struct ctl_instance *
put(const char *type, uint32_t idx, struct ctl_node *n)
{
    struct ctl_instance *in = NULL;

    cr_assert_eq(ctl_inst_new(m, app, type, idx, 1, 0, &in), 0);
    cr_assert_eq(ctl_inst_place(m, in, n, 0), 0);
    return in;
}

static size_t
count_type_on(const char *type, const struct ctl_node *n, bool live_only)
{
    struct ctl_instance *in;
    size_t c = 0;

    LIST_FOREACH (in, &n->instances, node_link) {
        if (strcmp(in->type, type) == 0 && (!live_only || !in->stopping))
            c++;
    }
    return c;
}

static void
scale(const char *type, uint32_t q)
{
    ctl_formation_find(app, type)->quantity = q;
    cr_assert_eq(ctl_reconcile_app(m, app, 1000), 0);
}

TestSuite(scheduler, .init = setup, .fini = teardown);

Test(scheduler, spreads_one_type_across_nodes, .timeout = 2)
{
    struct ctl_node *a = node("a", 10, 5000, 5099), *b = node("b", 10, 5000, 5099),
                    *c = node("c", 10, 5000, 5099), *out[6];

    cr_assert_eq(ctl_sched_choose(m, app, "web", 6, out), 6);
    /* Round robin by name: spread first, then the name breaks ties. */
    cr_assert_eq(out[0], a);
    cr_assert_eq(out[1], b);
    cr_assert_eq(out[2], c);
    cr_assert_eq(out[3], a);
    cr_assert_eq(out[4], b);
    cr_assert_eq(out[5], c);
    /* Pure: nothing changed, and the same question gets the same answer
     * (its scratch lives in its own table, not in the nodes). */
    cr_assert_eq(a->nlive + b->nlive + c->nlive, 0);
    {
        struct ctl_node *again[6];

        cr_assert_eq(ctl_sched_choose(m, app, "web", 6, again), 6);
        cr_assert_eq(memcmp(again, out, sizeof(out)), 0);
    }
}

Test(scheduler, spread_counts_only_the_same_app_and_type, .timeout = 2)
{
    struct ctl_node *a = node("a", 10, 5000, 5099), *b = node("b", 10, 5000, 5099), *out[2];

    /* a already runs web.1; b runs two workers (more loaded, but no web). */
    put("web", 1, a);
    put("worker", 1, b);
    put("worker", 2, b);
    cr_assert_eq(ctl_sched_choose(m, app, "web", 1, out), 1);
    cr_assert_eq(out[0], b, "spread beats load");
    cr_assert_eq(ctl_sched_choose(m, app, "worker", 1, out), 1);
    cr_assert_eq(out[0], a, "a holds no worker");
}

Test(scheduler, least_loaded_breaks_ties_then_name, .timeout = 2)
{
    struct ctl_node *b = node("b", 10, 5000, 5099), *a = node("a", 10, 5000, 5099),
                    *c = node("c", 10, 5000, 5099), *out[3];

    /* No web anywhere; loads: a=2, b=1, c=1 (other type). */
    put("worker", 1, a);
    put("worker", 2, a);
    put("worker", 3, b);
    put("worker", 4, c);
    cr_assert_eq(ctl_sched_choose(m, app, "web", 3, out), 3);
    cr_assert_eq(out[0], b, "least loaded, then b before c by name");
    cr_assert_eq(out[1], c);
    cr_assert_eq(out[2], a);
    /* Same input, same answer. */
    cr_assert_eq(ctl_sched_choose(m, app, "web", 3, out), 3);
    cr_assert_eq(out[0], b);
    cr_assert_eq(out[1], c);
    cr_assert_eq(out[2], a);
}

/* Ties go by name whatever the order the nodes came in, and still do after
 * nodes came and went between two batches (the ranks are kept). */
Test(scheduler, name_order_holds_as_nodes_come_and_go, .timeout = 2)
{
    struct ctl_node *d = node("d", 10, 5000, 5099), *b = node("b", 10, 5000, 5099), *out[3];
    struct ctl_node *e, *a;

    cr_assert_eq(ctl_sched_choose(m, app, "web", 2, out), 2);
    cr_assert_eq(out[0], b);
    cr_assert_eq(out[1], d);
    e = node("e", 10, 5000, 5099);
    cr_assert_eq(ctl_sched_choose(m, app, "web", 3, out), 3);
    cr_assert_eq(out[0], b);
    cr_assert_eq(out[1], d);
    cr_assert_eq(out[2], e, "a node that came later is ranked by its name");
    cr_assert_eq(ctl_node_remove(m, b), 0);
    a = node("a", 10, 5000, 5099);
    cr_assert_eq(ctl_sched_choose(m, app, "web", 3, out), 3);
    cr_assert_eq(out[0], a);
    cr_assert_eq(out[1], d);
    cr_assert_eq(out[2], e);
    /* Loads still come before names: d carries one more than a and e. */
    put("worker", 1, a);
    put("worker", 2, e);
    put("worker", 3, d);
    put("worker", 4, d);
    cr_assert_eq(ctl_sched_choose(m, app, "web", 3, out), 3);
    cr_assert_eq(out[0], a);
    cr_assert_eq(out[1], e);
    cr_assert_eq(out[2], d);
}

Test(scheduler, respects_capacity_and_free_ports, .timeout = 2)
{
    struct ctl_node *a = node("a", 2, 5000, 5099), *b = node("b", 10, 6000, 6000), *out[10];
    size_t i, on_a = 0, on_b = 0;

    cr_assert_eq(ctl_sched_choose(m, app, "web", 10, out), 3, "a has capacity 2, b has one port");
    for (i = 0; i < 3; i++) {
        on_a += out[i] == a;
        on_b += out[i] == b;
    }
    cr_assert_eq(on_a, 2);
    cr_assert_eq(on_b, 1);
}

Test(scheduler, skips_nodes_that_are_not_ready, .timeout = 2)
{
    struct ctl_node *a = node("a", 10, 5000, 5099), *b = node("b", 10, 5000, 5099), *out[4];

    a->state = CTL_NODE_DOWN;
    cr_assert_eq(ctl_sched_choose(m, app, "web", 4, out), 4);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(out[i], b);
    b->state = CTL_NODE_CORDONED;
    cr_assert_eq(ctl_sched_choose(m, app, "web", 4, out), 0);
}

Test(scheduler, stopping_instances_free_capacity_but_not_ports, .timeout = 2)
{
    struct ctl_node *a = node("a", 1, 5000, 5001), *out[2];
    struct ctl_instance *in = put("web", 1, a);

    cr_assert_eq(ctl_sched_choose(m, app, "web", 1, out), 0, "capacity 1 is used");
    ctl_inst_stop(m, in);
    cr_assert_eq(ctl_sched_choose(m, app, "web", 2, out), 1, "capacity freed; one free port");
    cr_assert_eq(out[0], a);
}

Test(scheduler, reconcile_places_names_and_ports, .timeout = 2)
{
    struct ctl_node *a = node("a", 10, 5000, 5099), *b = node("b", 10, 5000, 5099);
    struct ctl_instance *in;
    unsigned names = 0;

    scale("web", 4);
    cr_assert_eq(app->ninstances, 4);
    cr_assert_eq(count_type_on("web", a, true), 2);
    cr_assert_eq(count_type_on("web", b, true), 2);
    LIST_FOREACH (in, &app->instances, app_link) {
        cr_assert_not_null(in->node);
        cr_assert(in->idx >= 1 && in->idx <= 4);
        names |= 1u << in->idx;
        cr_assert(in->port == 5000 || in->port == 5001, "lowest ports first");
    }
    cr_assert_eq(names, 0x1e, "web.1..web.4, each once");
    cr_assert(a->generation > 0 && b->generation > 0, "assignment sets changed");

    /* Scale down stops the highest numbers. */
    scale("web", 2);
    LIST_FOREACH (in, &app->instances, app_link)
        cr_assert_eq(in->stopping, in->idx > 2, "web.%u stopping=%d", in->idx, in->stopping);

    /* Scale up again reuses the lowest free names among live instances. */
    scale("web", 3);
    names = 0;
    LIST_FOREACH (in, &app->instances, app_link) {
        if (!in->stopping)
            names |= 1u << in->idx;
    }
    cr_assert_eq(names, 0xe, "web.1..web.3 live");
}

/*
 * Names go round the nodes as the scheduler chose (a scale down from the
 * highest N keeps the spread); ids follow the nodes, each node's new
 * instances numbered together, in node_v's order, those that fit nowhere
 * last.
 */
Test(scheduler, new_ids_follow_the_nodes_while_names_go_round_them, .timeout = 2)
{
    struct ctl_node *b = node("b", 3, 5000, 5099), *a = node("a", 3, 5000, 5099),
                    *c = node("c", 3, 5000, 5099);
    const struct ctl_node *want_node[12] = {NULL, a, b, c, a, b, c, a, b, c, NULL, NULL};
    /* b came first (node_v[0]): web.2, .5, .8; then a: .1, .4, .7; then c. */
    const uint64_t want_id[12] = {0, 4, 1, 7, 5, 2, 8, 6, 3, 9, 10, 11};
    struct ctl_instance *in;
    unsigned seen = 0;

    scale("web", 11);
    cr_assert_eq(app->ninstances, 11);
    LIST_FOREACH (in, &app->instances, app_link) {
        cr_assert(in->idx >= 1 && in->idx <= 11);
        cr_assert_eq(in->node, want_node[in->idx], "web.%u on %s", in->idx,
                     in->node != NULL ? in->node->name : "no node");
        cr_assert_eq(in->id, want_id[in->idx], "web.%u has id %llu, want %llu", in->idx,
                     (unsigned long long)in->id, (unsigned long long)want_id[in->idx]);
        seen |= 1u << in->idx;
    }
    cr_assert_eq(seen, 0xffe, "web.1..web.11, each once");

    /* Scaling down from the highest N keeps two on each node. */
    scale("web", 6);
    cr_assert_eq(count_type_on("web", a, true), 2);
    cr_assert_eq(count_type_on("web", b, true), 2);
    cr_assert_eq(count_type_on("web", c, true), 2);
}

Test(scheduler, unplaced_instances_wait_for_capacity, .timeout = 2)
{
    struct ctl_node *a = node("a", 1, 5000, 5099), *b;
    struct ctl_instance *in;
    size_t unplaced = 0;

    scale("web", 3);
    LIST_FOREACH (in, &app->instances, app_link) {
        if (in->node == NULL) {
            unplaced++;
            cr_assert_eq(in->state, DROVER__INSTANCE_STATE__ST_PENDING);
            cr_assert_str_eq(in->reason, "no ready node with free capacity");
        }
    }
    cr_assert_eq(unplaced, 2);
    cr_assert_eq(a->nlive, 1);

    b = node("b", 5, 6000, 6099);
    m->capacity_changed = true;
    cr_assert_eq(ctl_place_unplaced(m), 0);
    cr_assert_eq(b->nlive, 2);
    cr_assert(TAILQ_EMPTY(&m->unplaced));
    LIST_FOREACH (in, &app->instances, app_link)
        cr_assert_str_eq(in->reason, "");

    /* Scaling down deletes unplaced instances at once instead of draining. */
    b->state = CTL_NODE_DOWN;
    scale("worker", 1);
    cr_assert_eq(app->ninstances, 4);
    scale("worker", 0);
    cr_assert_eq(app->ninstances, 3, "an unplaced worker has nothing to drain");
}

Test(scheduler, new_release_stops_removed_types_and_rolls_the_rest, .timeout = 2)
{
    struct ctl_node *a = node("a", 10, 5000, 5099);
    struct ctl_release *r2 = ctl_release_new();
    struct ctl_instance *in;
    size_t old_web = 0, old_worker = 0, fresh = 0;

    scale("web", 2);
    scale("worker", 1);
    r2->version = 2;
    strcpy(r2->slug_sha256, app->releases[0]->slug_sha256);
    r2->description = strdup("v2");
    r2->types = calloc(1, sizeof(*r2->types));
    strcpy(r2->types[0].name, "web");
    r2->types[0].command = strdup("./web2");
    r2->ntypes = 1;
    cr_assert_eq(ctl_release_append(app, r2), 0);
    app->current = 2;
    cr_assert_eq(ctl_reconcile_app(m, app, 2000), 0);
    LIST_FOREACH (in, &app->instances, app_link) {
        if (in->release == 1 && strcmp(in->type, "worker") == 0) {
            cr_assert(in->stopping, "worker is not in v2: it stops at once");
            old_worker++;
        } else if (in->release == 1) {
            /* Not up yet, and nothing new is up: it keeps running (rolling). */
            cr_assert_not(in->stopping, "%s.%u of v1 must wait for its replacement", in->type,
                          in->idx);
            old_web++;
        } else {
            cr_assert_str_eq(in->type, "web");
            cr_assert_not(in->stopping);
            fresh++;
        }
    }
    cr_assert_eq(old_worker, 1);
    cr_assert_eq(old_web, 2);
    cr_assert_eq(fresh, 1, "max_surge 25%% of 2 is 1");
    cr_assert_eq(a->nlive, 3);
    cr_assert_eq(a->ninst, 4, "the draining worker still holds its port");
}

Test(scheduler, many_nodes_batch_is_balanced, .timeout = 5)
{
    char name[16];
    size_t i, n = 1000, k = 10000;
    struct ctl_node **out = malloc(k * sizeof(*out));

    for (i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "n%04zu", i);
        node(name, 100, 10000, 10199);
    }
    uint32_t *taken = calloc(n, sizeof(*taken));

    cr_assert_eq(ctl_sched_choose(m, app, "web", k, out), k);
    for (i = 0; i < k; i++) {
        size_t j = (size_t)atoi(out[i]->name + 1); /* "n0042": node_v[42] */

        cr_assert_eq(m->node_v[j], out[i]);
        taken[j]++;
    }
    for (i = 0; i < n; i++)
        cr_assert_eq(taken[i], 10, "node %s", m->node_v[i]->name);
    free(taken);
    free(out);
}
