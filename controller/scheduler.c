/* SPDX-License-Identifier: MIT */
/*
 * scheduler.c: where new instances go. Pure: it reads the model and changes
 * nothing in it but its own cache of the nodes' order (rank_nodes), so that
 * it can be tested without a loop, a store or a socket.
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
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

/*
 * The scheduler's own table, for the length of one call: a slot per eligible
 * node (how many instances of the app's type it holds: its group; how many
 * this call gave it: taken; its live instances with those: load), kept as a
 * binary heap. A slot carries the node's place in name order (rank), so that
 * comparing two is three integer comparisons and never a look into the node:
 * at 10,000 nodes the nodes' structs and names do not fit in the cache, and
 * most comparisons of a batch are ties broken by name.
 */
struct slot {
    struct ctl_node *n;
    uint32_t group, taken, load, rank;
};

static bool
slot_eligible(const struct slot *s)
{
    const struct ctl_node *n = s->n;

    return n->state == CTL_NODE_READY && n->ports != NULL && s->load < n->capacity &&
           ctl_ports_used(n->ports) + s->taken < ctl_ports_size(n->ports);
}

static bool
slot_better(const struct slot *a, const struct slot *b)
{
    if (a->group != b->group)
        return a->group < b->group;
    if (a->load != b->load)
        return a->load < b->load;
    return a->rank < b->rank;
}

static void
heap_down(struct slot *h, size_t n, size_t i)
{
    struct slot t = h[i];

    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, best;

        if (l >= n)
            break;
        best = r < n && slot_better(&h[r], &h[l]) ? r : l;
        if (!slot_better(&h[best], &t))
            break;
        h[i] = h[best];
        i = best;
    }
    h[i] = t;
}

static int
by_name(const void *x, const void *y)
{
    const struct ctl_node *a = *(const struct ctl_node *const *)x;
    const struct ctl_node *b = *(const struct ctl_node *const *)y;

    return strcmp(a->name, b->name);
}

/*
 * Each node's place in name order (n->sched_rank) and in node_v
 * (n->sched_ix), worked out again only when a node came or went since the
 * last time (m->nodes_gen): a sort of every node's name per batch would cost
 * what the heap saves.
 */
static int
rank_nodes(struct ctl_model *m)
{
    struct ctl_node **v;
    size_t i;

    if (m->ranked_gen == m->nodes_gen)
        return 0;
    v = malloc(m->nnodes * sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    memcpy(v, m->node_v, m->nnodes * sizeof(*v));
    for (i = 0; i < m->nnodes; i++)
        v[i]->sched_ix = (uint32_t)i;
    qsort(v, m->nnodes, sizeof(*v), by_name);
    for (i = 0; i < m->nnodes; i++)
        v[i]->sched_rank = (uint32_t)i;
    free(v);
    m->ranked_gen = m->nodes_gen;
    return 0;
}

size_t
ctl_sched_choose(struct ctl_model *m, const struct ctl_app *a, const char *type, size_t n,
                 struct ctl_node **out)
{
    struct ctl_instance *in;
    struct slot *heap = NULL;
    uint32_t *group = NULL; /* by index in node_v */
    size_t hn = 0, i, placed = 0;

    if (n == 0 || m->nnodes == 0)
        return 0;
    group = calloc(m->nnodes, sizeof(*group));
    heap = malloc(m->nnodes * sizeof(*heap));
    if (group == NULL || heap == NULL || rank_nodes(m) < 0)
        goto out; /* nothing placed: the instances stay pending */
    LIST_FOREACH (in, &a->instances, app_link) {
        uint32_t ix;

        if (in->node == NULL || in->stopping || strcmp(in->type, type) != 0)
            continue;
        ix = in->node->sched_ix;
        if (ix < m->nnodes && m->node_v[ix] == in->node) /* else not a node of the model */
            group[ix]++;
    }
    for (i = 0; i < m->nnodes; i++) {
        struct ctl_node *nd = m->node_v[i];
        struct slot s = {.n = nd, .group = group[i], .load = nd->nlive, .rank = nd->sched_rank};

        if (slot_eligible(&s))
            heap[hn++] = s;
    }
    for (i = hn / 2; i-- > 0;)
        heap_down(heap, hn, i);
    while (placed < n && hn > 0) {
        struct slot *best = &heap[0];

        out[placed++] = best->n;
        best->group++;
        best->taken++;
        best->load++;
        if (!slot_eligible(best))
            heap[0] = heap[--hn];
        if (hn > 0)
            heap_down(heap, hn, 0);
    }
out:
    free(heap);
    free(group);
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
