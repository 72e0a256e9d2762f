/* SPDX-License-Identifier: MIT */
/*
 * map.c: chained hash tables, keyed by a borrowed string or by a u64.
 *
 * The controller looks apps, nodes and instances up by name or id on every
 * request; at 100,000 instances a linear scan per request would dominate.
 * Chaining keeps deletion trivial. A string key is borrowed: it must be the
 * key stored in the value itself (app->name), which outlives its entry.
 * The table doubles at a load factor of 1 and never shrinks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

struct map_entry {
    struct map_entry *next;
    uint64_t hash;
    uint64_t ikey;
    const char *skey; /* NULL for u64 keys */
    void *val;
};

struct ctl_map {
    struct map_entry **b;
    size_t nb, count;
};

static uint64_t
hash_u64(uint64_t x)
{
    /* splitmix64 finalizer: ids are sequential, buckets must not be. */
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
    m->b = calloc(m->nb, sizeof(*m->b));
    if (m->b == NULL) {
        free(m);
        return NULL;
    }
    return m;
}

void
ctl_map_free(struct ctl_map *m)
{
    size_t i;
    struct map_entry *e, *next;

    if (m == NULL)
        return;
    for (i = 0; i < m->nb; i++) {
        for (e = m->b[i]; e != NULL; e = next) {
            next = e->next;
            free(e);
        }
    }
    free(m->b);
    free(m);
}

size_t
ctl_map_count(const struct ctl_map *m)
{
    return m->count;
}

static struct map_entry **
map_slot(const struct ctl_map *m, uint64_t h, const char *skey, uint64_t ikey)
{
    struct map_entry **pe = &m->b[h & (m->nb - 1)];

    for (; *pe != NULL; pe = &(*pe)->next) {
        struct map_entry *e = *pe;

        if (e->hash != h)
            continue;
        if (skey != NULL ? (e->skey != NULL && strcmp(e->skey, skey) == 0)
                         : (e->skey == NULL && e->ikey == ikey))
            return pe;
    }
    return pe;
}

static void
map_grow(struct ctl_map *m)
{
    size_t nb = m->nb * 2, i;
    struct map_entry **b = calloc(nb, sizeof(*b));
    struct map_entry *e, *next;

    if (b == NULL)
        return; /* keep the longer chains; still correct */
    for (i = 0; i < m->nb; i++) {
        for (e = m->b[i]; e != NULL; e = next) {
            next = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
        }
    }
    free(m->b);
    m->b = b;
    m->nb = nb;
}

static int
map_put(struct ctl_map *m, uint64_t h, const char *skey, uint64_t ikey, void *val)
{
    struct map_entry **pe = map_slot(m, h, skey, ikey), *e;

    if (*pe != NULL) {
        (*pe)->val = val;
        return 0;
    }
    e = malloc(sizeof(*e));
    if (e == NULL)
        return -ENOMEM;
    e->next = NULL;
    e->hash = h;
    e->skey = skey;
    e->ikey = ikey;
    e->val = val;
    *pe = e;
    if (++m->count > m->nb)
        map_grow(m);
    return 0;
}

static void *
map_del(struct ctl_map *m, uint64_t h, const char *skey, uint64_t ikey)
{
    struct map_entry **pe = map_slot(m, h, skey, ikey), *e = *pe;
    void *val;

    if (e == NULL)
        return NULL;
    *pe = e->next;
    val = e->val;
    free(e);
    m->count--;
    return val;
}

void *
ctl_map_get(const struct ctl_map *m, const char *key)
{
    struct map_entry *e = *map_slot(m, hash_str(key), key, 0);

    return e != NULL ? e->val : NULL;
}

int
ctl_map_put(struct ctl_map *m, const char *key, void *val)
{
    return map_put(m, hash_str(key), key, 0, val);
}

void *
ctl_map_del(struct ctl_map *m, const char *key)
{
    return map_del(m, hash_str(key), key, 0);
}

void *
ctl_map_geti(const struct ctl_map *m, uint64_t key)
{
    struct map_entry *e = *map_slot(m, hash_u64(key), NULL, key);

    return e != NULL ? e->val : NULL;
}

int
ctl_map_puti(struct ctl_map *m, uint64_t key, void *val)
{
    return map_put(m, hash_u64(key), NULL, key, val);
}

void *
ctl_map_deli(struct ctl_map *m, uint64_t key)
{
    return map_del(m, hash_u64(key), NULL, key);
}

void *
ctl_map_next(const struct ctl_map *m, size_t *pos, void **cursor)
{
    struct map_entry *e = *cursor;

    if (e != NULL && e->next != NULL) {
        *cursor = e->next;
        return e->next->val;
    }
    if (e != NULL)
        (*pos)++;
    for (; *pos < m->nb; (*pos)++) {
        if (m->b[*pos] != NULL) {
            *cursor = m->b[*pos];
            return m->b[*pos]->val;
        }
    }
    *cursor = NULL;
    return NULL;
}
