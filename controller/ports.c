/* SPDX-License-Identifier: MIT */
/*
 * ports.c: which ports of one node's range are held.
 *
 * One bit per port in the range, plus the index of the lowest word that may
 * have a clear bit. Taking the lowest free port scans from that hint, so a
 * node that fills up from the bottom pays O(1) amortized per placement, and
 * releasing a port only moves the hint down. A 65,535-port range is 1,024
 * words: 10,000 nodes cost at most 80 MB and usually a few KB each.
 */
#include <errno.h>
#include <stdlib.h>

#include "ctl.h"

struct ctl_ports {
    uint16_t lo, hi;
    uint32_t size, used;
    uint32_t hint; /* no word below this one has a clear bit */
    uint32_t nwords;
    uint64_t words[];
};

struct ctl_ports *
ctl_ports_new(uint16_t lo, uint16_t hi)
{
    struct ctl_ports *p;
    uint32_t size, nwords;

    if (lo == 0 || lo > hi)
        return NULL;
    size = (uint32_t)hi - lo + 1;
    nwords = (size + 63) / 64;
    p = calloc(1, sizeof(*p) + nwords * sizeof(uint64_t));
    if (p == NULL)
        return NULL;
    p->lo = lo;
    p->hi = hi;
    p->size = size;
    p->nwords = nwords;
    /* Bits past the end of the range are set so the scan never returns them. */
    if (size % 64 != 0)
        p->words[nwords - 1] = ~0ull << (size % 64);
    return p;
}

void
ctl_ports_free(struct ctl_ports *p)
{
    free(p);
}

int
ctl_ports_take(struct ctl_ports *p, uint16_t *port)
{
    uint32_t w;

    for (w = p->hint; w < p->nwords; w++) {
        if (p->words[w] != ~0ull) {
            int bit = __builtin_ctzll(~p->words[w]);

            p->words[w] |= 1ull << bit;
            p->used++;
            p->hint = w;
            *port = (uint16_t)(p->lo + w * 64 + (uint32_t)bit);
            return 0;
        }
    }
    p->hint = p->nwords;
    return -ENOSPC;
}

int
ctl_ports_take_at(struct ctl_ports *p, uint16_t port)
{
    uint32_t off;

    if (port < p->lo || port > p->hi)
        return -ERANGE;
    off = (uint32_t)port - p->lo;
    if (p->words[off / 64] & (1ull << (off % 64)))
        return -EEXIST;
    p->words[off / 64] |= 1ull << (off % 64);
    p->used++;
    return 0;
}

void
ctl_ports_release(struct ctl_ports *p, uint16_t port)
{
    uint32_t off;

    if (port < p->lo || port > p->hi)
        return;
    off = (uint32_t)port - p->lo;
    if (!(p->words[off / 64] & (1ull << (off % 64))))
        return;
    p->words[off / 64] &= ~(1ull << (off % 64));
    p->used--;
    if (off / 64 < p->hint)
        p->hint = off / 64;
}

bool
ctl_ports_held(const struct ctl_ports *p, uint16_t port)
{
    uint32_t off;

    if (port < p->lo || port > p->hi)
        return false;
    off = (uint32_t)port - p->lo;
    return (p->words[off / 64] & (1ull << (off % 64))) != 0;
}

uint32_t
ctl_ports_used(const struct ctl_ports *p)
{
    return p->used;
}

uint32_t
ctl_ports_size(const struct ctl_ports *p)
{
    return p->size;
}
