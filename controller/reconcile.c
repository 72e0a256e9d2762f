/* SPDX-License-Identifier: MIT */
/*
 * reconcile.c: make an app's instances match its formation for its current
 * release.
 *
 * For each type of the current release: the wanted quantity is the
 * formation's; instances of the current release that are not stopping are
 * what the app has. Instances of older releases and of types the release no
 * longer has are stopped all at once (rolling deploys are a later issue).
 * Missing instances are created as TYPE.N with the lowest N not held by a
 * live instance of the type and placed by the scheduler; surplus ones are
 * stopped from the highest N down. What fits nowhere stays pending, unplaced,
 * and is placed by ctl_place_unplaced() when capacity appears.
 *
 * Reconciling is idempotent and cheap (O(instances of the app) per type), so
 * callers run it after anything that may matter rather than working out
 * whether it does.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "log.h"

#define REASON_NO_NODE "no ready node with free capacity"

static void
log_placed(const struct ctl_instance *in)
{
    log_info("placed", "app=%s inst=%s.%u id=%llu release=%u node=%s port=%u", in->app->name,
             in->type, in->idx, (unsigned long long)in->id, in->release, in->node->name, in->port);
}

/* Place v[0..n), all of one app and type, as one scheduler batch. */
static int
place_batch(struct ctl_model *m, struct ctl_instance **v, size_t n)
{
    struct ctl_node **nodes;
    size_t k, i;
    int rc = 0;

    if (n == 0)
        return 0;
    nodes = malloc(n * sizeof(*nodes));
    if (nodes == NULL)
        return -ENOMEM;
    k = ctl_sched_choose(m, v[0]->app, v[0]->type, n, nodes);
    for (i = 0; i < k; i++) {
        rc = ctl_inst_place(m, v[i], nodes[i], 0);
        if (rc < 0) {
            /* The scheduler saw a free port: a broken invariant, not input. */
            log_error("place_failed", "app=%s inst=%s.%u node=%s err=%d", v[i]->app->name,
                      v[i]->type, v[i]->idx, nodes[i]->name, rc);
            break;
        }
        log_placed(v[i]);
    }
    for (; i < n; i++) {
        if (strcmp(v[i]->reason, REASON_NO_NODE) != 0) {
            strcpy(v[i]->reason, REASON_NO_NODE);
            ctl_inst_touch(m, v[i]);
        }
    }
    if (k < n)
        log_warn("unplaced", "app=%s type=%s count=%zu reason=%s", v[0]->app->name, v[0]->type,
                 n - k, log_q(REASON_NO_NODE));
    free(nodes);
    return rc;
}

static int
idx_desc(const void *x, const void *y)
{
    const struct ctl_instance *const *a = x, *const *b = y;

    return (*a)->idx < (*b)->idx ? 1 : (*a)->idx > (*b)->idx ? -1 : 0;
}

static int
reconcile_type(struct ctl_model *m, struct ctl_app *a, const struct ctl_release *rel,
               const char *type, uint64_t now)
{
    const struct ctl_formation *f = ctl_formation_find(a, type);
    size_t want = f != NULL ? f->quantity : 0, have = 0, need, i, made = 0;
    struct ctl_instance **v = NULL, *in;
    unsigned char *used = NULL;
    uint32_t idx = 1;
    int rc = -ENOMEM;

    v = malloc((a->ninstances + want + 1) * sizeof(*v));
    if (v == NULL)
        goto out;
    LIST_FOREACH(in, &a->instances, app_link)
    {
        if (!in->stopping && in->release == rel->version && strcmp(in->type, type) == 0)
            v[have++] = in;
    }
    rc = 0;
    if (have > want) {
        qsort(v, have, sizeof(*v), idx_desc);
        for (i = 0; i < have - want; i++)
            ctl_inst_stop(m, v[i]);
        goto out;
    }
    need = want - have;
    if (need == 0)
        goto out;
    rc = -ENOMEM;
    used = calloc(want + 2, 1);
    if (used == NULL)
        goto out;
    for (i = 0; i < have; i++) {
        if (v[i]->idx <= want)
            used[v[i]->idx] = 1;
    }
    for (made = 0; made < need; made++) {
        while (used[idx])
            idx++;
        rc = ctl_inst_new(m, a, type, idx, rel->version, 0, &v[made]);
        if (rc < 0)
            goto out;
        v[made]->since_ms = now;
        used[idx] = 1;
    }
    rc = place_batch(m, v, made);
out:
    free(used);
    free(v);
    return rc;
}

int
ctl_reconcile_app(struct ctl_model *m, struct ctl_app *a, uint64_t now)
{
    const struct ctl_release *rel = ctl_release_current(a);
    struct ctl_instance *in, *next;
    size_t i;
    int rc = 0, r;

    a->reconcile = false;
    if (rel == NULL)
        return 0;
    for (in = LIST_FIRST(&a->instances); in != NULL; in = next) {
        next = LIST_NEXT(in, app_link);
        /* A one-off runs to its end in its own release. */
        if (!in->stopping && !in->oneoff &&
            (in->release != rel->version || ctl_release_type(rel, in->type) == NULL))
            ctl_inst_stop(m, in); /* may free in */
    }
    for (i = 0; i < rel->ntypes; i++) {
        r = reconcile_type(m, a, rel, rel->types[i].name, now);
        if (r < 0 && rc == 0)
            rc = r;
    }
    return rc;
}

static int
unplaced_cmp(const void *x, const void *y)
{
    const struct ctl_instance *const *a = x, *const *b = y;
    int c = strcmp((*a)->app->name, (*b)->app->name);

    if (c == 0)
        c = strcmp((*a)->type, (*b)->type);
    if (c == 0)
        c = (*a)->id < (*b)->id ? -1 : (*a)->id > (*b)->id;
    return c;
}

/* Capacity appeared (a node came, an instance went): place what waits. */
int
ctl_place_unplaced(struct ctl_model *m)
{
    struct ctl_instance **v = NULL, *in;
    size_t n = 0, cap = 0, i, j;
    int rc = 0;

    if (!m->capacity_changed)
        return 0;
    m->capacity_changed = false;
    TAILQ_FOREACH(in, &m->unplaced, unplaced_link)
    cap++;
    if (cap == 0)
        return 0;
    v = malloc(cap * sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    TAILQ_FOREACH(in, &m->unplaced, unplaced_link)
    v[n++] = in;
    qsort(v, n, sizeof(*v), unplaced_cmp);
    for (i = 0; i < n; i = j) {
        for (j = i + 1; j < n; j++) {
            if (v[j]->app != v[i]->app || strcmp(v[j]->type, v[i]->type) != 0)
                break;
        }
        rc = place_batch(m, v + i, j - i);
        if (rc < 0)
            break;
    }
    free(v);
    return rc;
}

int
ctl_settle(struct ctl_model *m, uint64_t now)
{
    (void)now;
    return ctl_place_unplaced(m);
}
