/* SPDX-License-Identifier: MIT */
/*
 * scheduler.c: where new instances go. Pure: it reads the model and changes
 * nothing, so that it can be tested without a loop, a store or a socket.
 *
 * Filter: the node is ready, its live (not stopping) instances are below its
 * capacity, and its range has a free port: every instance takes a port, so a
 * node's real limit is the smaller of its capacity and its range
 * (ctl_node_limit), and what fits nowhere is told which one ran out
 * (ctl_sched_why). Score, lowest first: instances of
 * the same app and type already on the node (spread), then live instances on
 * the node (least loaded), then the node's name (deterministic).
 *
 * A batch of n placements for one app and type is planned at once: one pass
 * over the app's instances counts the group per node, one pass over the nodes
 * builds a binary heap of the eligible ones, and each placement pops the best
 * node, charges it one instance and sifts it back. That is O(N + n log N) per
 * batch instead of O(N) per placement, which is what placing 100,000
 * instances over 10,000 nodes needs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

/*
 * The scheduler's own table: one slot per node for the length of one call
 * (how many instances of the app's type it holds: its group; how many this
 * call gave it: taken). Nothing of it lives in the shared node structs.
 */
struct slot {
    struct ctl_node *n;
    uint32_t group, taken;
};

static bool
slot_eligible(const struct slot *s)
{
    const struct ctl_node *n = s->n;

    return n->state == CTL_NODE_READY && n->ports != NULL && n->nlive + s->taken < n->capacity &&
           ctl_ports_used(n->ports) + s->taken < ctl_ports_size(n->ports);
}

static bool
slot_better(const struct slot *a, const struct slot *b)
{
    uint32_t la = a->n->nlive + a->taken, lb = b->n->nlive + b->taken;

    if (a->group != b->group)
        return a->group < b->group;
    if (la != lb)
        return la < lb;
    return strcmp(a->n->name, b->n->name) < 0;
}

static void
heap_down(struct slot **h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, best = i;
        struct slot *t;

        if (l < n && slot_better(h[l], h[best]))
            best = l;
        if (r < n && slot_better(h[r], h[best]))
            best = r;
        if (best == i)
            return;
        t = h[i];
        h[i] = h[best];
        h[best] = t;
        i = best;
    }
}

static int
by_node(const void *x, const void *y)
{
    const struct ctl_node *a = ((const struct slot *)x)->n, *b = ((const struct slot *)y)->n;

    return a < b ? -1 : a > b;
}

size_t
ctl_sched_choose(struct ctl_model *m, const struct ctl_app *a, const char *type, size_t n,
                 struct ctl_node **out)
{
    struct ctl_instance *in;
    struct slot *slots = NULL, **heap = NULL, key, *s;
    size_t hn = 0, i, placed = 0;

    if (n == 0 || m->nnodes == 0)
        return 0;
    slots = calloc(m->nnodes, sizeof(*slots));
    heap = malloc(m->nnodes * sizeof(*heap));
    if (slots == NULL || heap == NULL)
        goto out; /* nothing placed: the instances stay pending */
    for (i = 0; i < m->nnodes; i++)
        slots[i].n = m->node_v[i];
    qsort(slots, m->nnodes, sizeof(*slots), by_node);
    LIST_FOREACH (in, &a->instances, app_link) {
        if (in->node == NULL || in->stopping || strcmp(in->type, type) != 0)
            continue;
        key.n = in->node;
        s = bsearch(&key, slots, m->nnodes, sizeof(*slots), by_node);
        if (s != NULL)
            s->group++;
    }
    for (i = 0; i < m->nnodes; i++) {
        if (slot_eligible(&slots[i]))
            heap[hn++] = &slots[i];
    }
    for (i = hn / 2; i-- > 0;)
        heap_down(heap, hn, i);
    while (placed < n && hn > 0) {
        struct slot *best = heap[0];

        out[placed++] = best->n;
        best->group++;
        best->taken++;
        if (!slot_eligible(best))
            heap[0] = heap[--hn];
        heap_down(heap, hn, 0);
    }
out:
    free(heap);
    free(slots);
    return placed;
}

uint32_t
ctl_node_limit(const struct ctl_node *n)
{
    uint32_t ports = n->port_max >= n->port_min ? (uint32_t)(n->port_max - n->port_min) + 1 : 0;

    return ports < n->capacity ? ports : n->capacity;
}

void
ctl_sched_why(const struct ctl_model *m, char *out, size_t outsz)
{
    size_t ready = 0, by_ports = 0, i;
    uint16_t lo = 0, hi = 0;
    bool one_range = true;

    for (i = 0; i < m->nnodes; i++) {
        const struct ctl_node *n = m->node_v[i];

        if (n->state != CTL_NODE_READY || n->ports == NULL)
            continue;
        ready++;
        if (n->nlive >= n->capacity || ctl_ports_used(n->ports) < ctl_ports_size(n->ports))
            continue;
        if (by_ports++ == 0) {
            lo = n->port_min;
            hi = n->port_max;
        } else if (lo != n->port_min || hi != n->port_max) {
            one_range = false;
        }
    }
    if (ready > 0 && by_ports == ready && one_range)
        snprintf(out, outsz, "no free port in %u-%u", (unsigned)lo, (unsigned)hi);
    else if (ready > 0 && by_ports == ready)
        snprintf(out, outsz, "no free port on any ready node");
    else
        snprintf(out, outsz, "%s", CTL_REASON_NO_NODE);
}
