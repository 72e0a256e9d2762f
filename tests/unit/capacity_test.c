/* SPDX-License-Identifier: MIT */
/*
 * A node's real limit is min(capacity, ports in its range), and what fits
 * nowhere is told which of the two ran out (issue 11, item 7).
 */
#include <criterion/criterion.h>
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
    r->types = calloc(1, sizeof(*r->types));
    strcpy(r->types[0].name, "worker");
    r->types[0].command = strdup("./work");
    r->ntypes = 1;
    cr_assert_eq(ctl_release_append(app, r), 0);
    app->current = 1;
    cr_assert_eq(ctl_formation_add(app, "worker", 0, NULL), 0);
}

static void
teardown(void)
{
    ctl_model_free(m);
}

TestSuite(capacity, .init = setup, .fini = teardown);

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

/* Scale worker to q; the reason of the pending ones (all the same), and how
 * many are pending. */
static size_t
scale(uint32_t q, char *why, size_t whysz)
{
    struct ctl_instance *in;
    size_t pending = 0;

    ctl_formation_find(app, "worker")->quantity = q;
    ctl_app_want_reconcile(m, app);
    m->capacity_changed = true; /* a node may have joined: place what waits */
    cr_assert_eq(ctl_settle(m, 1000), 0);
    why[0] = '\0';
    LIST_FOREACH (in, &app->instances, app_link) {
        if (in->node != NULL)
            continue;
        if (pending++ > 0)
            cr_assert_str_eq(in->reason, why);
        snprintf(why, whysz, "%s", in->reason);
    }
    return pending;
}

Test(capacity, the_limit_is_the_smaller_of_capacity_and_ports, .timeout = 2)
{
    cr_assert_eq(ctl_node_limit(node("a", 256, 5000, 5099)), 100);
    cr_assert_eq(ctl_node_limit(node("b", 3, 5000, 5099)), 3);
    cr_assert_eq(ctl_node_limit(node("c", 1, 6000, 6000)), 1);
}

Test(capacity, pending_names_the_ports_when_they_ran_out, .timeout = 2)
{
    char why[CTL_REASON_MAX];

    node("a", 20, 5000, 5009);
    cr_assert_eq(scale(14, why, sizeof(why)), 4);
    cr_assert_str_eq(why, "no free port in 5000-5009");
}

Test(capacity, pending_names_capacity_when_it_ran_out, .timeout = 2)
{
    char why[CTL_REASON_MAX];

    node("a", 5, 5000, 5099);
    cr_assert_eq(scale(7, why, sizeof(why)), 2);
    cr_assert_str_eq(why, "no ready node with free capacity");
}

Test(capacity, several_nodes_out_of_ports_are_said_as_such, .timeout = 2)
{
    char why[CTL_REASON_MAX];

    node("a", 20, 5000, 5001);
    node("b", 20, 6000, 6001);
    cr_assert_eq(scale(6, why, sizeof(why)), 2);
    cr_assert_str_eq(why, "no free port on any ready node");
    /* One node full by capacity, one by ports: capacity is said. */
    node("c", 1, 7000, 7099);
    cr_assert_eq(scale(8, why, sizeof(why)), 3);
    cr_assert_str_eq(why, "no ready node with free capacity");
}
