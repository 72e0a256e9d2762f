/* SPDX-License-Identifier: MIT */
/*
 * Ports: the per-node bitmap (controller/ports.c) and how the model hands
 * ports to instances: lowest free first, never two holders, stopping
 * instances keep theirs until deleted.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "log.h"

Test(ports, lowest_free_first_then_exhausted, .timeout = 2)
{
    struct ctl_ports *p = ctl_ports_new(5000, 5002);
    uint16_t port = 0;

    cr_assert_not_null(p);
    cr_assert_eq(ctl_ports_size(p), 3);
    cr_assert_eq(ctl_ports_take(p, &port), 0);
    cr_assert_eq(port, 5000);
    cr_assert_eq(ctl_ports_take(p, &port), 0);
    cr_assert_eq(port, 5001);
    cr_assert_eq(ctl_ports_take(p, &port), 0);
    cr_assert_eq(port, 5002);
    cr_assert_eq(ctl_ports_take(p, &port), -ENOSPC);
    cr_assert_eq(ctl_ports_used(p), 3);
    ctl_ports_free(p);
}

Test(ports, released_port_is_reused_lowest_first, .timeout = 2)
{
    struct ctl_ports *p = ctl_ports_new(6000, 6099);
    uint16_t port = 0;
    int i;

    for (i = 0; i < 100; i++)
        cr_assert_eq(ctl_ports_take(p, &port), 0);
    cr_assert_eq(ctl_ports_take(p, &port), -ENOSPC);
    ctl_ports_release(p, 6070);
    ctl_ports_release(p, 6003);
    ctl_ports_release(p, 6003); /* twice: no effect */
    cr_assert_eq(ctl_ports_used(p), 98);
    cr_assert_eq(ctl_ports_take(p, &port), 0);
    cr_assert_eq(port, 6003);
    cr_assert_eq(ctl_ports_take(p, &port), 0);
    cr_assert_eq(port, 6070);
    cr_assert_eq(ctl_ports_take(p, &port), -ENOSPC);
    ctl_ports_free(p);
}

Test(ports, take_at_refuses_held_and_out_of_range, .timeout = 2)
{
    struct ctl_ports *p = ctl_ports_new(7000, 7010);
    uint16_t port = 0;

    cr_assert_eq(ctl_ports_take_at(p, 7000), 0);
    cr_assert_eq(ctl_ports_take_at(p, 7000), -EEXIST);
    cr_assert_eq(ctl_ports_take_at(p, 6999), -ERANGE);
    cr_assert_eq(ctl_ports_take_at(p, 7011), -ERANGE);
    cr_assert(ctl_ports_held(p, 7000));
    cr_assert_not(ctl_ports_held(p, 7001));
    cr_assert_eq(ctl_ports_take(p, &port), 0);
    cr_assert_eq(port, 7001, "the port taken by take_at is skipped");
    ctl_ports_free(p);
}

Test(ports, odd_sized_range_never_leaks_past_its_end, .timeout = 2)
{
    /* 65 ports: one full word and one bit of the next. */
    struct ctl_ports *p = ctl_ports_new(10, 74);
    uint16_t port = 0, last = 0;
    int i;

    for (i = 0; i < 65; i++) {
        cr_assert_eq(ctl_ports_take(p, &port), 0);
        cr_assert_eq(port, 10 + i);
        last = port;
    }
    cr_assert_eq(last, 74);
    cr_assert_eq(ctl_ports_take(p, &port), -ENOSPC);
    cr_assert_null(ctl_ports_new(0, 10), "port 0 is not a port");
    cr_assert_null(ctl_ports_new(20, 10), "an empty range is refused");
    ctl_ports_free(p);
}

Test(ports, whole_port_space_without_collision, .timeout = 5)
{
    struct ctl_ports *p = ctl_ports_new(1, 65535);
    unsigned char *seen = calloc(65536, 1);
    uint16_t port = 0;
    uint32_t i;

    for (i = 0; i < 65535; i++) {
        cr_assert_eq(ctl_ports_take(p, &port), 0);
        cr_assert_eq(seen[port], 0, "port %u handed out twice", port);
        seen[port] = 1;
    }
    cr_assert_eq(ctl_ports_take(p, &port), -ENOSPC);
    for (i = 65535; i >= 1000; i -= 997)
        ctl_ports_release(p, (uint16_t)i);
    /* 65 ports released: 65535 - k * 997 for k = 0..64. */
    for (i = 0; i < 65; i++) {
        cr_assert_eq(ctl_ports_take(p, &port), 0);
        cr_assert_eq(port, 65535 - (64 - i) * 997, "released ports come back lowest first");
    }
    cr_assert_eq(ctl_ports_take(p, &port), -ENOSPC);
    free(seen);
    ctl_ports_free(p);
}

/* ---- through the model ---- */

static struct ctl_node *
ready_node(struct ctl_model *m, const char *name, uint16_t lo, uint16_t hi, uint32_t cap)
{
    struct ctl_node *n = NULL;

    cr_assert_eq(ctl_node_add(m, name, &n), 0);
    cr_assert_eq(ctl_node_set_range(n, lo, hi), 0);
    n->capacity = cap;
    n->state = CTL_NODE_READY;
    return n;
}

Test(ports, instances_on_a_node_never_share_a_port, .init = NULL, .timeout = 2)
{
    struct ctl_model *m = ctl_model_new();
    struct ctl_node *n;
    struct ctl_app *a = NULL;
    struct ctl_instance *in[4], *again = NULL;
    int i;

    log_set_level(LOG_ERROR);
    n = ready_node(m, "n1", 5000, 5003, 10);
    cr_assert_eq(ctl_app_add(m, "shop", 1, &a), 0);
    for (i = 0; i < 4; i++) {
        cr_assert_eq(ctl_inst_new(m, a, "web", (uint32_t)i + 1, 1, 0, &in[i]), 0);
        cr_assert_eq(ctl_inst_place(m, in[i], n, 0), 0);
        cr_assert_eq(in[i]->port, 5000 + i);
    }
    cr_assert_eq(ctl_inst_new(m, a, "web", 5, 1, 0, &again), 0);
    cr_assert_eq(ctl_inst_place(m, again, n, 0), -ENOSPC, "the range is full");

    /* A stopping instance still holds its port... */
    ctl_inst_stop(m, in[1]);
    cr_assert(in[1]->stopping);
    cr_assert_eq(ctl_inst_place(m, again, n, 0), -ENOSPC);
    cr_assert_eq(n->nlive, 3);
    cr_assert_eq(n->ninst, 4);
    /* ...until it is gone. */
    ctl_inst_delete(m, in[1]);
    cr_assert_eq(ctl_inst_place(m, again, n, 0), 0);
    cr_assert_eq(again->port, 5001);
    cr_assert_eq(ctl_inst_place(m, in[0], n, 5002), -EINVAL, "already placed");
    ctl_model_free(m);
}

Test(ports, range_change_keeps_held_ports, .timeout = 2)
{
    struct ctl_model *m = ctl_model_new();
    struct ctl_node *n = ready_node(m, "n1", 5000, 5009, 10);
    struct ctl_app *a = NULL;
    struct ctl_instance *x = NULL, *y = NULL;

    cr_assert_eq(ctl_app_add(m, "shop", 1, &a), 0);
    cr_assert_eq(ctl_inst_new(m, a, "web", 1, 1, 0, &x), 0);
    cr_assert_eq(ctl_inst_place(m, x, n, 5004), 0);
    cr_assert_eq(ctl_node_set_range(n, 5004, 5005), 0);
    cr_assert_eq(ctl_inst_new(m, a, "web", 2, 1, 0, &y), 0);
    cr_assert_eq(ctl_inst_place(m, y, n, 0), 0);
    cr_assert_eq(y->port, 5005, "5004 is still held after the range changed");
    ctl_model_free(m);
}
