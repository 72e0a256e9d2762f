/* SPDX-License-Identifier: MIT */
/*
 * map.c: hash tables keyed by a borrowed string or by a u64.
 *
 * The controller looks apps, nodes and instances up by name or id on every
 * request; at 100,000 instances a linear scan per request would dominate.
 * A string key is borrowed: it must be the key stored in the value itself
 * (app->name), which outlives its entry.
 *
 * Open addressing with linear probing: a slot holds the hash, the key and
 * the value, so a lookup reads one slot (most often one cache line) where
 * chaining read a bucket and then an entry malloc'd elsewhere. Measured
 * (issue 15, `perf record` on the controller placing 100,000 instances on
 * 10,000 simulated agents): the chained table's lookups were 8.5 % of the
 * controller's samples, an instance looked up by id for every line of
 * every report, each a bucket and an entry missed in cache (and in the
 * TLB: on this guest a miss walks two page tables). The table doubles past
 * three quarters full and never shrinks; a deletion moves the rest of its
 * run back (no tombstones).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

/* An empty slot has no value (a value is never NULL). A u64 key is kept as
 * its hash alone: hash_u64 is a bijection, so equal hashes are equal keys. */
struct slot {
    uint64_t hash;
    const char *skey; /* NULL for u64 keys */
    void *val;
};

struct ctl_map {
    struct slot *s;
    size_t nb, count; /* nb a power of two, count at most 3/4 of it */
};

static uint64_t
hash_u64(uint64_t x)
{
    /* splitmix64 finalizer: ids are sequential, slots must not be. Each
     * step is invertible, so no two keys share a hash. */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

static uint64_t
hash_str(const char *s)
{
    return fnv1a64(FNV1A64_INIT, s, strlen(s));
}

struct ctl_map *
ctl_map_new(void)
{
    struct ctl_map *m = calloc(1, sizeof(*m));

    if (m == NULL)
        return NULL;
    m->nb = 64;
    m->s = calloc(m->nb, sizeof(*m->s));
    if (m->s == NULL) {
        free(m);
        return NULL;
    }
    return m;
}

void
ctl_map_free(struct ctl_map *m)
{
    if (m == NULL)
        return;
    free(m->s);
    free(m);
}

size_t
ctl_map_count(const struct ctl_map *m)
{
    return m->count;
}

/* The key's slot, or the empty slot that ends its probe. */
static struct slot *
map_slot(const struct ctl_map *m, uint64_t h, const char *skey)
{
    size_t mask = m->nb - 1, i = h & mask;

    for (;; i = (i + 1) & mask) {
        struct slot *s = &m->s[i];

        if (s->val == NULL)
            return s;
        if (s->hash == h &&
            (skey != NULL ? s->skey != NULL && strcmp(s->skey, skey) == 0 : s->skey == NULL))
            return s;
    }
}

/* Move every entry into a table of nb slots (a power of two, more than
 * the entries need). */
static int
map_resize(struct ctl_map *m, size_t nb)
{
    struct ctl_map big = {.nb = nb};

    big.s = calloc(big.nb, sizeof(*big.s));
    if (big.s == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < m->nb; i++)
        if (m->s[i].val != NULL)
            *map_slot(&big, m->s[i].hash, m->s[i].skey) = m->s[i];
    free(m->s);
    m->s = big.s;
    m->nb = big.nb;
    return 0;
}

/* May a table of nb slots hold n entries (at most three quarters full)? */
static bool
map_room(size_t nb, size_t n)
{
    return n * 4 <= nb * 3;
}

/* Room for n entries in all, made at once (reconcile.c's reserve_ids):
 * one move of every entry instead of a doubling after another. */
int
ctl_map_reserve(struct ctl_map *m, size_t n)
{
    size_t nb = m->nb;

    while (!map_room(nb, n)) {
        if (nb > SIZE_MAX / 8)
            return -ENOMEM;
        nb *= 2;
    }
    return nb == m->nb ? 0 : map_resize(m, nb);
}

/* Put val under the key (replacing, or only when absent: -EEXIST). */
static int
map_put(struct ctl_map *m, uint64_t h, const char *skey, void *val, bool replace)
{
    struct slot *s;
    int rc;

    if (val == NULL)
        return -EINVAL;
    s = map_slot(m, h, skey);
    if (s->val != NULL && !replace)
        return -EEXIST;
    if (s->val == NULL && !map_room(m->nb, m->count + 1)) {
        if ((rc = map_resize(m, m->nb * 2)) < 0)
            return rc;
        s = map_slot(m, h, skey);
    }
    if (s->val == NULL)
        m->count++;
    *s = (struct slot){.hash = h, .skey = skey, .val = val};
    return 0;
}

/* Linear probing's deletion: each later slot of the run whose home is not
 * between the hole and itself moves back into the hole, so every probe
 * still finds its key before an empty slot. */
static void *
map_del(struct ctl_map *m, uint64_t h, const char *skey)
{
    size_t mask = m->nb - 1, hole, j;
    struct slot *s = map_slot(m, h, skey);
    void *val = s->val;

    if (val == NULL)
        return NULL;
    hole = (size_t)(s - m->s);
    for (j = (hole + 1) & mask; m->s[j].val != NULL; j = (j + 1) & mask) {
        size_t home = m->s[j].hash & mask;
        bool stays = hole <= j ? hole < home && home <= j : hole < home || home <= j;

        if (stays)
            continue;
        m->s[hole] = m->s[j];
        hole = j;
    }
    m->s[hole] = (struct slot){0};
    m->count--;
    return val;
}

void *
ctl_map_get(const struct ctl_map *m, const char *key)
{
    return map_slot(m, hash_str(key), key)->val;
}

int
ctl_map_put(struct ctl_map *m, const char *key, void *val)
{
    return map_put(m, hash_str(key), key, val, true);
}

void *
ctl_map_del(struct ctl_map *m, const char *key)
{
    return map_del(m, hash_str(key), key);
}

void *
ctl_map_geti(const struct ctl_map *m, uint64_t key)
{
    return map_slot(m, hash_u64(key), NULL)->val;
}

int
ctl_map_puti(struct ctl_map *m, uint64_t key, void *val)
{
    return map_put(m, hash_u64(key), NULL, val, true);
}

int
ctl_map_addi(struct ctl_map *m, uint64_t key, void *val)
{
    return map_put(m, hash_u64(key), NULL, val, false);
}

void *
ctl_map_deli(struct ctl_map *m, uint64_t key)
{
    return map_del(m, hash_u64(key), NULL);
}

void *
ctl_map_next(const struct ctl_map *m, size_t *pos)
{
    while (*pos < m->nb) {
        void *val = m->s[(*pos)++].val;

        if (val != NULL)
            return val;
    }
    return NULL;
}
