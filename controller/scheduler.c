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

static bool
node_eligible(const struct ctl_node *n)
{
    return n->state == CTL_NODE_READY && n->ports != NULL &&
           n->nlive + n->sched_taken < n->capacity &&
           ctl_ports_used(n->ports) + n->sched_taken < ctl_ports_size(n->ports);
}

/* Is a a better place than b? */
static bool
node_better(const struct ctl_node *a, const struct ctl_node *b)
{
    uint32_t la = a->nlive + a->sched_taken, lb = b->nlive + b->sched_taken;

    if (a->sched_group != b->sched_group)
        return a->sched_group < b->sched_group;
    if (la != lb)
        return la < lb;
    return strcmp(a->name, b->name) < 0;
}

static void
heap_down(struct ctl_node **h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, best = i;
        struct ctl_node *t;

        if (l < n && node_better(h[l], h[best]))
            best = l;
        if (r < n && node_better(h[r], h[best]))
            best = r;
        if (best == i)
            return;
        t = h[i];
        h[i] = h[best];
        h[best] = t;
        i = best;
    }
}

/*
 * Fill out[0..n) with the node for each of n new instances of a/type, in
 * order, as if each were placed before the next is chosen. Returns how many
 * found a node; the rest fit nowhere.
 */
size_t
ctl_sched_choose(struct ctl_model *m, const struct ctl_app *a, const char *type, size_t n,
                 struct ctl_node **out)
{
    struct ctl_instance *in;
    struct ctl_node **heap = NULL;
    size_t hn = 0, i, placed = 0;

    if (n == 0 || m->nnodes == 0)
        return 0;
    heap = malloc(m->nnodes * sizeof(*heap));
    if (heap == NULL)
        return 0; /* nothing placed: the instances stay pending */
    LIST_FOREACH(in, &a->instances, app_link)
    {
        if (in->node != NULL && !in->stopping && strcmp(in->type, type) == 0)
            in->node->sched_group++;
    }
    for (i = 0; i < m->nnodes; i++) {
        if (node_eligible(m->node_v[i]))
            heap[hn++] = m->node_v[i];
    }
    for (i = hn / 2; i-- > 0;)
        heap_down(heap, hn, i);
    while (placed < n && hn > 0) {
        struct ctl_node *best = heap[0];

        out[placed++] = best;
        best->sched_group++;
        best->sched_taken++;
        if (!node_eligible(best))
            heap[0] = heap[--hn];
        heap_down(heap, hn, 0);
    }
    /* Leave the scratch counters at zero for the next call. */
    LIST_FOREACH(in, &a->instances, app_link)
    {
        if (in->node != NULL)
            in->node->sched_group = 0;
    }
    for (i = 0; i < placed; i++)
        out[i]->sched_group = out[i]->sched_taken = 0;
    free(heap);
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
