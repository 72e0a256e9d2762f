/* SPDX-License-Identifier: MIT */
/*
 * reconcile.c: make an app's instances match its formation for its current
 * release.
 *
 * For each type of the current release: the wanted quantity is the
 * formation's; instances of the current release that are not stopping are
 * what the app has. Missing instances are created as TYPE.N with the lowest N
 * not held by a live instance of the type and release, and placed by the
 * scheduler; surplus ones are stopped from the highest N down (after any
 * second holder of a name, see stop_surplus). What fits nowhere stays
 * pending, unplaced, and is placed by ctl_place_unplaced() when capacity
 * appears. Instances of types the release no longer has stop at once; with
 * no current release at all (a first deploy that failed), everything stops.
 *
 * Rolling. Instances of the type from other releases ("old") are replaced in
 * batches, by the pure planner ctl_roll_plan(): at most max_surge instances
 * above the formation at any time, at most max_unavailable below it among
 * those that are up. Old instances that are not up are the first to stop, but
 * only within the same budget, so old ones that are still starting are not
 * all killed at once; an old instance that is up stops only when enough new
 * ones are up (the agent reports up only after health has passed for
 * min_healthy).
 * Whole batches (issue 15): while new instances of the batch in flight are
 * placed and still pending or starting, nothing more is stopped or created;
 * once the last of them is up, the pass stops and creates as much as the
 * bounds allow, in one change to each node's set (and the node's held sync
 * takes it at once, watch.c). Without this the rollout slid forward a few
 * instances per agent sync round, each step a whole assignment set sent
 * and each new instance waiting its own min_healthy. Unplaced ones do not
 * hold a batch (the capacity they wait for comes from the stops), nor do
 * crashed or failed ones (the deploy is judged failed by deploys.c).
 * Because each pass re-plans from the instances' states, the same rule
 * rolls a deploy forward, rolls a failed one back (deploys.c makes the last
 * good release current again), and survives a controller restart.
 *
 * Eviction. An instance marked for eviction (today: live on a draining node,
 * ctl_inst_evicted) does not count towards the formation, so a replacement
 * is created and placed elsewhere under the same name; but it keeps running
 * until its replacement is up, and only then is it stopped. Precisely
 * (ctl_evict_choose): of a type's evicted instances, as many keep running as
 * the formation still lacks up instances that are not evicted; the rest stop
 * at once. Capacity never drops below the formation because of an eviction:
 * a replacement that fits nowhere holds its evicted instance, and a drain
 * waits. One exception: an instance on a node whose agent is leaving (it
 * will stop anyway, soon) is kept only while a replacement is placed and on
 * its way.
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

/* Within the commit's budget of lines (model.c's ctl_inst_line). */
static void
log_placed(struct ctl_model *m, const struct ctl_instance *in)
{
    enum log_level lvl = LOG_INFO;

    if (!ctl_inst_line(m)) {
        m->quiet_placed++;
        lvl = LOG_DEBUG;
    }
    log_event(lvl, "placed", "app=%s inst=%s.%u id=%llu release=%u node=%s port=%u", in->app->name,
              in->type, in->idx, (unsigned long long)in->id, in->release, in->node->name, in->port);
}

/* v[0..k) onto nodes[0..k) as the scheduler chose them for one app and
 * type; v[k..n) fit nowhere and say why. */
static int
place_on(struct ctl_model *m, struct ctl_instance **v, size_t n, struct ctl_node **nodes, size_t k)
{
    char why[CTL_REASON_MAX];
    size_t i;
    int rc = 0;

    for (i = 0; i < k; i++) {
        rc = ctl_inst_place(m, v[i], nodes[i], 0);
        if (rc < 0) {
            /* The scheduler saw a free port: a broken invariant, not input. */
            log_error("place_failed", "app=%s inst=%s.%u node=%s err=%d", v[i]->app->name,
                      v[i]->type, v[i]->idx, nodes[i]->name, rc);
            break;
        }
        log_placed(m, v[i]);
    }
    if (i < n)
        ctl_sched_why(m, why, sizeof(why));
    for (; i < n; i++) {
        if (strcmp(v[i]->reason, why) != 0) {
            snprintf(v[i]->reason, sizeof(v[i]->reason), "%s", why);
            ctl_inst_touch(m, v[i]);
        }
    }
    if (k < n)
        log_warn("unplaced", "app=%s type=%s count=%zu reason=%s", v[0]->app->name, v[0]->type,
                 n - k, log_q(why));
    return rc;
}

/* Place v[0..n), all of one app and type, as one scheduler batch. */
static int
place_batch(struct ctl_model *m, struct ctl_instance **v, size_t n)
{
    struct ctl_node **nodes;
    size_t k;
    int rc;

    if (n == 0)
        return 0;
    nodes = malloc(n * sizeof(*nodes));
    if (nodes == NULL)
        return -ENOMEM;
    k = ctl_sched_choose(m, v[0]->app, v[0]->type, n, nodes);
    rc = place_on(m, v, n, nodes, k);
    free(nodes);
    return rc;
}

/*
 * The order in which to make new instances whose nodes are chosen: each
 * node's together (by its place in node_v, which ctl_sched_choose has just
 * numbered), in the scheduler's order within a node, and those that fit
 * nowhere (k..n) last. Names still go round the nodes as the scheduler
 * chose (TYPE.1 and TYPE.2 on different nodes, so that a scale down from
 * the highest N keeps the spread); only the ids, given in creation order,
 * follow the nodes. An agent's report then updates rows that are neighbours
 * in the store's table (one or two pages, where round-robin ids put each on
 * a page of its own), and a node's instances are neighbours in memory.
 */
static int
node_order(const struct ctl_model *m, struct ctl_node **nodes, size_t k, size_t n, size_t *order)
{
    size_t *at = calloc(m->nnodes + 1, sizeof(*at)), i;

    if (at == NULL)
        return -ENOMEM;
    for (i = 0; i < k; i++)
        at[nodes[i]->sched_ix + 1]++;
    for (i = 1; i <= m->nnodes; i++)
        at[i] += at[i - 1];
    for (i = 0; i < k; i++)
        order[at[nodes[i]->sched_ix]++] = i;
    for (i = k; i < n; i++)
        order[i] = i;
    free(at);
    return 0;
}

/* Make n instances of the type, named TYPE.idx[i], and place them. */
static int
create_batch(struct ctl_model *m, struct ctl_app *a, const struct ctl_release *rel,
             const char *type, const uint32_t *idx, size_t n, struct ctl_instance **v)
{
    struct ctl_node **nodes = malloc(n * sizeof(*nodes)), **on = malloc(n * sizeof(*on));
    size_t *order = malloc(n * sizeof(*order)), k, made;
    int rc = -ENOMEM;

    if (nodes == NULL || on == NULL || order == NULL)
        goto out;
    k = ctl_sched_choose(m, a, type, n, nodes);
    if ((rc = node_order(m, nodes, k, n, order)) < 0)
        goto out;
    for (made = 0; made < n; made++) {
        size_t i = order[made];

        rc = ctl_inst_new(m, a, type, idx[i], rel->version, 0, &v[made]);
        if (rc < 0)
            goto out;
        v[made]->since_ms = now_ms(); /* wall: ps shows it */
        on[made] = i < k ? nodes[i] : NULL;
    }
    rc = place_on(m, v, n, on, k);
out:
    free(order);
    free(on);
    free(nodes);
    return rc;
}

/*
 * Surplus. A slot (TYPE.N) is normally held by one instance; it is held
 * twice when an eviction ends before its replacement took over (a drain
 * cancelled by uncordon). Stop a slot's extra holders first, the least
 * useful first (not placed, then not up, then the newest), and only then
 * whole slots, from the highest N down, so that names stay 1..N and what
 * serves keeps serving.
 */
struct holder {
    struct ctl_instance *in;
    int quality; /* 0 not placed, 1 placed, 2 up */
    bool best;   /* the one that keeps its slot */
};

static int
holder_quality(const struct ctl_instance *in)
{
    if (in->node == NULL)
        return 0;
    return in->state == DROVER__INSTANCE_STATE__ST_UP ? 2 : 1;
}

/* By slot; in each, the best holder first (quality, then oldest). */
static int
slot_order(const void *x, const void *y)
{
    const struct holder *a = x, *b = y;

    if (a->in->idx != b->in->idx)
        return a->in->idx < b->in->idx ? -1 : 1;
    if (a->quality != b->quality)
        return b->quality - a->quality;
    return a->in->id < b->in->id ? -1 : a->in->id > b->in->id;
}

static int
stop_order(const void *x, const void *y)
{
    const struct holder *a = x, *b = y;

    if (a->best != b->best)
        return a->best ? 1 : -1;
    if (!a->best) {
        if (a->quality != b->quality)
            return a->quality - b->quality;
        return a->in->id < b->in->id ? 1 : a->in->id > b->in->id ? -1 : 0;
    }
    return a->in->idx < b->in->idx ? 1 : a->in->idx > b->in->idx ? -1 : 0;
}

static int
stop_surplus(struct ctl_model *m, struct ctl_instance **v, size_t have, size_t want)
{
    struct holder *h = malloc(have * sizeof(*h));
    size_t i;

    if (h == NULL)
        return -ENOMEM;
    for (i = 0; i < have; i++) {
        h[i].in = v[i];
        h[i].quality = holder_quality(v[i]);
    }
    qsort(h, have, sizeof(*h), slot_order);
    for (i = 0; i < have; i++)
        h[i].best = i == 0 || h[i].in->idx != h[i - 1].in->idx;
    qsort(h, have, sizeof(*h), stop_order);
    for (i = 0; i < have - want; i++)
        ctl_inst_stop(m, h[i].in); /* may free it: not used again */
    free(h);
    return 0;
}

/* ---- rolling ---- */

/* "25%" of want, rounded up (surge) or down (unavailable); or a count. */
static uint32_t
roll_resolve(const char *spec, uint32_t want, bool round_up)
{
    char *end;
    unsigned long v = strtoul(spec, &end, 10);

    if (end == spec)
        return 0;
    if (*end == '%') {
        uint64_t x = (uint64_t)want * (v > 100 ? 100 : v);

        return (uint32_t)(round_up ? (x + 99) / 100 : x / 100);
    }
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

void
ctl_roll_limits(const char *max_surge, const char *max_unavailable, uint32_t want, uint32_t *surge,
                uint32_t *unavailable)
{
    *surge = roll_resolve(max_surge, want, true);
    *unavailable = roll_resolve(max_unavailable, want, false);
    if (*surge == 0 && *unavailable == 0)
        *surge = 1; /* else a rollout could never start */
}

void
ctl_roll_plan(struct ctl_roll *r)
{
    uint32_t min_up, old_left, max_total, target;
    uint64_t budget;

    r->create = r->stop_old = 0;
    if (r->old_live == 0) {
        r->create = r->want > r->new_live ? r->want - r->new_live : 0;
        return;
    }
    if (r->new_starting > 0)
        return; /* a batch in flight: the next goes whole, once it is up */
    /*
     * Old instances may stop while what stays up is at least min_up,
     * counting every old one that is not up as stopping first (as
     * Kubernetes does): old ones that are starting are not killed before
     * anything else is up, and crashing ones go as soon as others carry the
     * load.
     */
    min_up = r->want > r->unavailable ? r->want - r->unavailable : 0;
    budget = (uint64_t)r->new_up + r->old_live;
    budget = budget > min_up ? budget - min_up : 0;
    r->stop_old = budget < r->old_live ? (uint32_t)budget : r->old_live;
    old_left = r->old_live - r->stop_old;
    max_total = r->want + r->surge;
    target = max_total > old_left ? max_total - old_left : 0;
    if (target > r->want)
        target = r->want;
    r->create = target > r->new_live ? target - r->new_live : 0;
}

/* Stop first: not placed, then not up, then evicted, then the highest N. */
static int
old_stop_order(const void *x, const void *y)
{
    const struct ctl_instance *a = *(const struct ctl_instance *const *)x;
    const struct ctl_instance *b = *(const struct ctl_instance *const *)y;
    int qa = holder_quality(a), qb = holder_quality(b);
    bool ea = ctl_inst_evicted(a), eb = ctl_inst_evicted(b);

    if (qa != qb)
        return qa - qb;
    if (ea != eb)
        return ea ? -1 : 1;
    if (a->idx != b->idx)
        return a->idx < b->idx ? 1 : -1;
    return a->id < b->id ? -1 : a->id > b->id;
}

static void
stop_old(struct ctl_model *m, struct ctl_instance **v, size_t n, size_t count)
{
    size_t i;

    qsort(v, n, sizeof(*v), old_stop_order);
    for (i = 0; i < count && i < n; i++) {
        log_info("replaced", "app=%s inst=%s.%u id=%llu release=%u", v[i]->app->name, v[i]->type,
                 v[i]->idx, (unsigned long long)v[i]->id, v[i]->release);
        ctl_inst_stop(m, v[i]); /* may free it: not used again */
    }
}

static int
reconcile_type(struct ctl_model *m, struct ctl_app *a, const struct ctl_release *rel,
               const char *type, uint64_t now)
{
    const struct ctl_formation *f = ctl_formation_find(a, type);
    struct ctl_roll r = {.want = f != NULL ? f->quantity : 0};
    size_t have = 0, nold = 0, i, made = 0;
    struct ctl_instance **v = NULL, **old = NULL, *in;
    unsigned char *used = NULL;
    uint32_t idx = 1, *idxs = NULL;
    int rc = -ENOMEM;

    v = malloc((a->ninstances + r.want + 1) * sizeof(*v));
    old = malloc((a->ninstances + 1) * sizeof(*old));
    if (v == NULL || old == NULL)
        goto out;
    LIST_FOREACH (in, &a->instances, app_link) {
        if (in->stopping || in->oneoff || strcmp(in->type, type) != 0)
            continue;
        if (ctl_inst_outdated(in, rel->version)) {
            old[nold++] = in;
            r.old_up += in->state == DROVER__INSTANCE_STATE__ST_UP;
        } else if (!ctl_inst_evicted(in)) {
            v[have++] = in;
            r.new_up += in->state == DROVER__INSTANCE_STATE__ST_UP;
            r.new_starting +=
                in->node != NULL && (in->state == DROVER__INSTANCE_STATE__ST_PENDING ||
                                     in->state == DROVER__INSTANCE_STATE__ST_STARTING);
        }
    }
    r.new_live = (uint32_t)have;
    r.old_live = (uint32_t)nold;
    if (f != NULL)
        ctl_roll_limits(f->max_surge, f->max_unavailable, r.want, &r.surge, &r.unavailable);
    ctl_roll_plan(&r);
    stop_old(m, old, nold, r.stop_old);
    if (nold > r.stop_old)
        ctl_app_set_rolling(m, a, true);
    rc = 0;
    if (have > r.want) {
        rc = stop_surplus(m, v, have, r.want);
        goto out;
    }
    if (r.create == 0)
        goto out;
    rc = -ENOMEM;
    used = calloc(have + r.create + 2, 1);
    idxs = malloc(r.create * sizeof(*idxs));
    if (used == NULL || idxs == NULL)
        goto out;
    for (i = 0; i < have; i++) {
        if (v[i]->idx <= have + r.create)
            used[v[i]->idx] = 1;
    }
    for (made = 0; made < r.create; made++) {
        while (used[idx])
            idx++;
        idxs[made] = idx;
        used[idx] = 1;
    }
    rc = create_batch(m, a, rel, type, idxs, r.create, v);
out:
    free(idxs);
    free(used);
    free(old);
    free(v);
    return rc;
}

/* Keep first: not leaving, then slot not yet up, then lowest idx. */
static int
evictee_keep_first(const void *x, const void *y)
{
    const struct ctl_evictee *a = x, *b = y;

    if (a->leaving != b->leaving)
        return a->leaving ? 1 : -1;
    if (a->slot_up != b->slot_up)
        return a->slot_up ? 1 : -1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

size_t
ctl_evict_choose(struct ctl_evictee *v, size_t n, size_t want, size_t up, size_t coming)
{
    size_t keep = want > up ? want - up : 0, kept = 0, kept_leaving = 0, stopped = 0, i;

    qsort(v, n, sizeof(*v), evictee_keep_first);
    for (i = 0; i < n; i++) {
        v[i].stop = true;
        if (kept < keep && (!v[i].leaving || kept_leaving < coming)) {
            v[i].stop = false;
            kept++;
            kept_leaving += v[i].leaving;
        }
        stopped += v[i].stop;
    }
    return stopped;
}

static int
evictee_by_idx(const void *x, const void *y)
{
    const struct ctl_evictee *a = x, *b = y;

    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static size_t
evictee_lower_bound(const struct ctl_evictee *v, size_t n, uint32_t idx)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (v[mid].idx < idx)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Apply the eviction rule to the live instances of (rel, type). */
static int
evict_type(struct ctl_model *m, struct ctl_app *a, const struct ctl_release *rel, const char *type)
{
    const struct ctl_formation *f = ctl_formation_find(a, type);
    size_t want = f != NULL ? f->quantity : 0, up = 0, coming = 0, n = 0, i;
    struct ctl_instance **ins = NULL, *in;
    struct ctl_evictee *ev = NULL;
    int rc = -ENOMEM;

    /* Only an instance on a draining node is evicted: with none, nothing to
     * walk (a scale to 100,000 walked them all once more, 2-3 % of the
     * controller's samples at 1,000 simulated agents). */
    if (m->ndraining == 0)
        return 0;
    LIST_FOREACH (in, &a->instances, app_link) {
        if (in->stopping || ctl_inst_outdated(in, rel->version) || strcmp(in->type, type) != 0)
            continue;
        if (ctl_inst_evicted(in))
            n++;
        else if (in->state == DROVER__INSTANCE_STATE__ST_UP)
            up++;
        else if (in->node != NULL)
            coming++;
    }
    if (n == 0)
        return 0;
    ins = malloc(n * sizeof(*ins));
    ev = calloc(n, sizeof(*ev));
    if (ins == NULL || ev == NULL)
        goto out;
    n = 0;
    LIST_FOREACH (in, &a->instances, app_link) {
        if (in->stopping || ctl_inst_outdated(in, rel->version) || strcmp(in->type, type) != 0 ||
            !ctl_inst_evicted(in))
            continue;
        ins[n] = in;
        ev[n].pos = n;
        ev[n].idx = in->idx;
        ev[n].leaving = in->node->leaving;
        n++;
    }
    /* slot_up: ev sorted by idx, one binary search per up instance. */
    qsort(ev, n, sizeof(*ev), evictee_by_idx);
    LIST_FOREACH (in, &a->instances, app_link) {
        if (in->stopping || ctl_inst_evicted(in) || in->state != DROVER__INSTANCE_STATE__ST_UP ||
            ctl_inst_outdated(in, rel->version) || strcmp(in->type, type) != 0)
            continue;
        for (i = evictee_lower_bound(ev, n, in->idx); i < n && ev[i].idx == in->idx; i++)
            ev[i].slot_up = true;
    }
    ctl_evict_choose(ev, n, want, up, coming);
    for (i = 0; i < n; i++) {
        if (!ev[i].stop)
            continue;
        in = ins[ev[i].pos];
        log_info("evicted", "app=%s inst=%s.%u id=%llu node=%s", a->name, in->type, in->idx,
                 (unsigned long long)in->id, in->node->name);
        ctl_inst_stop(m, in); /* placed: never frees */
    }
    rc = 0;
out:
    free(ins);
    free(ev);
    return rc;
}

/*
 * A one-off on a draining node (nodes:drain, or its agent leaving) is never
 * replaced, so nothing would ever let the drain finish: it is stopped now
 * (SIGTERM, then SIGKILL after its grace), and its app's log says why.
 */
static void
oneoff_drained(struct ctl_model *m, struct ctl_instance *in)
{
    char name[48];

    ctl_inst_name(in, name, sizeof(name));
    log_info("oneoff_drained", "app=%s inst=%s id=%llu node=%s", in->app->name, name,
             (unsigned long long)in->id, in->node->name);
    ctl_model_event(m, in->app->name, "%s stopped: %s %s", name, in->node->name,
                    in->node->admin == CTL_NODE_DRAINING ? "drained" : "is shutting down");
    ctl_inst_stop(m, in);
}

/*
 * Room in the id table for the instances the formation has beyond what the
 * app holds, before its types are reconciled one by one: scaled from
 * nothing to 100,000 instances of ten types, the table otherwise doubled
 * type after type, moving every entry each time (measured, issue 15: 6 %
 * of the controller's samples while 1,000 simulated agents took their
 * first 100,000 instances). Only a hint: a type that makes more than this
 * (replacing stopped or old ones) grows the table as it goes.
 */
static void
reserve_ids(struct ctl_model *m, const struct ctl_app *a, const struct ctl_release *rel)
{
    size_t want = 0, i;

    for (i = 0; i < rel->ntypes; i++) {
        const struct ctl_formation *f = ctl_formation_find(a, rel->types[i].name);

        want += f != NULL ? f->quantity : 0;
    }
    if (want > a->ninstances)
        (void)ctl_map_reserve(m->insts, ctl_map_count(m->insts) + (want - a->ninstances));
}

int
ctl_reconcile_app(struct ctl_model *m, struct ctl_app *a, uint64_t now)
{
    const struct ctl_release *rel = ctl_release_current(a);
    struct ctl_instance *in, *next;
    size_t i;
    int rc = 0, r;

    ctl_app_reconcile_taken(m, a);
    for (in = LIST_FIRST(&a->instances); in != NULL; in = next) {
        next = LIST_NEXT(in, app_link);
        /* A one-off runs to its end in its own release. */
        if (!in->stopping && !in->oneoff &&
            (rel == NULL || ctl_release_type(rel, in->type) == NULL))
            ctl_inst_stop(m, in); /* may free in */
        else if (!in->stopping && in->oneoff && in->node != NULL &&
                 in->node->state == CTL_NODE_DRAINING)
            oneoff_drained(m, in); /* may free in */
    }
    if (rel == NULL)
        return 0;
    reserve_ids(m, a, rel);
    ctl_app_set_rolling(m, a, false); /* reconcile_type says if old instances are left */
    for (i = 0; i < rel->ntypes; i++) {
        r = reconcile_type(m, a, rel, rel->types[i].name, now);
        if (r == 0)
            r = evict_type(m, a, rel, rel->types[i].name);
        if (r < 0 && rc == 0)
            rc = r;
    }
    ctl_deploy_check(m, a, now);
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
    TAILQ_FOREACH (in, &m->unplaced, unplaced_link)
        cap++;
    if (cap == 0)
        return 0;
    v = malloc(cap * sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    TAILQ_FOREACH (in, &m->unplaced, unplaced_link)
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
    struct ctl_app *a;
    int rc = 0, r;

    while ((a = TAILQ_FIRST(&m->reconcile)) != NULL) {
        r = ctl_reconcile_app(m, a, now); /* takes a off the queue */
        if (r < 0) {
            log_error("reconcile_failed", "app=%s err=%d", a->name, r);
            if (rc == 0)
                rc = r;
        }
    }
    r = ctl_place_unplaced(m);
    return rc < 0 ? rc : r;
}
