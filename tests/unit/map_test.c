/* SPDX-License-Identifier: MIT */
/*
 * The controller's hash tables (controller/map.c: open addressing, linear
 * probing, deletion by moving the rest of a run back) against a plain
 * array: random puts, replacements and deletions over few keys, so runs
 * form, wrap past the table's end and are cut in the middle, with room
 * made at once now and then (every entry moved); every key checked after
 * each step, and iteration visiting each value once.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

#define NKEYS 300

struct obj {
    char name[16];
    int tag;
};

/* Every present key is found with its value, every absent one is not, and
 * iteration yields each present value exactly once. */
static void
check_all(const struct ctl_map *m, struct obj **ref, bool by_name)
{
    size_t present = 0, pos = 0, seen = 0;
    int visits[NKEYS] = {0};
    struct obj *o;

    for (int k = 0; k < NKEYS; k++) {
        char name[16];
        void *got;

        snprintf(name, sizeof(name), "node-%d", k);
        got = by_name ? ctl_map_get(m, name) : ctl_map_geti(m, (uint64_t)k * 7919);
        cr_assert_eq(got, ref[k], "key %d: %p, want %p", k, got, (void *)ref[k]);
        present += ref[k] != NULL;
    }
    cr_assert_eq(ctl_map_count(m), present);
    while ((o = ctl_map_next(m, &pos)) != NULL) {
        cr_assert(o->tag >= 0 && o->tag < NKEYS && ref[o->tag] == o);
        visits[o->tag]++;
        seen++;
    }
    cr_assert_eq(seen, present);
    for (int k = 0; k < NKEYS; k++)
        cr_assert_eq(visits[k], ref[k] != NULL);
}

static void
churn(bool by_name, unsigned seed, int steps, int live_max)
{
    struct ctl_map *m = ctl_map_new();
    struct obj *ref[NKEYS] = {0};
    int live = 0;

    cr_assert_not_null(m);
    srand(seed);
    for (int i = 0; i < steps; i++) {
        int k = rand() % NKEYS;
        uint64_t id = (uint64_t)k * 7919;

        if (rand() % 50 == 0) /* room made at once: every entry moves */
            cr_assert_eq(ctl_map_reserve(m, (size_t)live + (size_t)(rand() % 600)), 0);
        if (ref[k] == NULL && live < live_max) {
            struct obj *o = calloc(1, sizeof(*o));

            cr_assert_not_null(o);
            snprintf(o->name, sizeof(o->name), "node-%d", k);
            o->tag = k;
            if (by_name)
                cr_assert_eq(ctl_map_put(m, o->name, o), 0);
            else
                cr_assert_eq(rand() % 2 ? ctl_map_puti(m, id, o) : ctl_map_addi(m, id, o), 0);
            ref[k] = o;
            live++;
        } else if (ref[k] != NULL && !by_name && rand() % 8 == 0) {
            /* Only when absent: refused, and the entry stays as it was. */
            struct obj other = *ref[k];

            cr_assert_eq(ctl_map_addi(m, id, &other), -EEXIST);
        } else if (ref[k] != NULL && rand() % 4 == 0) {
            /* A replacement borrows the new value's key: the old value
             * goes (ASan sees a read of its name after this). */
            struct obj *o = calloc(1, sizeof(*o));

            cr_assert_not_null(o);
            *o = *ref[k];
            cr_assert_eq(by_name ? ctl_map_put(m, o->name, o) : ctl_map_puti(m, id, o), 0);
            free(ref[k]);
            ref[k] = o;
        } else if (ref[k] != NULL) {
            void *got = by_name ? ctl_map_del(m, ref[k]->name) : ctl_map_deli(m, id);

            cr_assert_eq(got, ref[k]);
            free(ref[k]);
            ref[k] = NULL;
            live--;
        } else {
            cr_assert_null(by_name ? ctl_map_del(m, "node-absent") : ctl_map_deli(m, id));
        }
        check_all(m, ref, by_name);
    }
    for (int k = 0; k < NKEYS; k++)
        free(ref[k]);
    ctl_map_free(m);
}

Test(map, ids_put_replaced_and_deleted_are_found_as_an_array_has_them, .timeout = 20)
{
    churn(false, 1, 4000, 40);    /* at most 40 live: the first table's 64 slots */
    churn(false, 2, 4000, NKEYS); /* grows through 128, 256, 512 */
}

Test(map, names_put_replaced_and_deleted_are_found_as_an_array_has_them, .timeout = 20)
{
    churn(true, 3, 4000, 40);
    churn(true, 4, 4000, NKEYS);
}

Test(map, a_null_value_is_refused_and_changes_nothing, .timeout = 2)
{
    struct ctl_map *m = ctl_map_new();
    int one = 1;

    cr_assert_not_null(m);
    cr_assert_eq(ctl_map_puti(m, 5, &one), 0);
    cr_assert_eq(ctl_map_puti(m, 5, NULL), -EINVAL);
    cr_assert_eq(ctl_map_put(m, "x", NULL), -EINVAL);
    cr_assert_eq(ctl_map_geti(m, 5), &one);
    cr_assert_null(ctl_map_get(m, "x"));
    cr_assert_eq(ctl_map_count(m), 1);
    ctl_map_free(m);
}

Test(map, a_hundred_thousand_sequential_ids, .timeout = 20)
{
    static int vals[100000];
    struct ctl_map *m = ctl_map_new();
    size_t pos = 0, n = 0;

    cr_assert_not_null(m);
    /* The first thousand, then room for the rest at once (as a placement
     * makes it), then the rest. */
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(ctl_map_addi(m, (uint64_t)i + 1, &vals[i]), 0);
    cr_assert_eq(ctl_map_reserve(m, 100000), 0);
    cr_assert_eq(ctl_map_reserve(m, 10), 0); /* less than it holds: nothing to do */
    for (int i = 1000; i < 100000; i++)
        cr_assert_eq(ctl_map_addi(m, (uint64_t)i + 1, &vals[i]), 0);
    cr_assert_eq(ctl_map_addi(m, 1, &vals[1]), -EEXIST);
    cr_assert_eq(ctl_map_geti(m, 1), &vals[0]);
    cr_assert_eq(ctl_map_count(m), 100000);
    for (int i = 0; i < 100000; i += 2)
        cr_assert_eq(ctl_map_deli(m, (uint64_t)i + 1), &vals[i]);
    for (int i = 0; i < 100000; i++)
        cr_assert_eq(ctl_map_geti(m, (uint64_t)i + 1), i % 2 ? &vals[i] : NULL);
    cr_assert_null(ctl_map_geti(m, 0));
    cr_assert_null(ctl_map_geti(m, 100001));
    while (ctl_map_next(m, &pos) != NULL)
        n++;
    cr_assert_eq(n, 50000);
    ctl_map_free(m);
}
