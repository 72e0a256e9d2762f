/* SPDX-License-Identifier: MIT */
/*
 * views.c: the model as the API shows it: a node, an instance, the nodes
 * sorted by name, and the one-screen status of the whole cluster.
 *
 * Views are built in the reply's arena and borrow strings from the model, so
 * they live exactly as long as the reply being built. Some of what they show
 * is derived here rather than stored: a node's counts of draining, evicting
 * and lost instances, and the reason an evicted or lost instance gets in ps.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

void
ctl_view_node(const struct ctl_node *n, Drover__NodeInfo *ni)
{
    const struct ctl_instance *in;

    drover__node_info__init(ni);
    ni->name = (char *)n->name;
    ni->address = (char *)n->address;
    ni->state = (char *)ctl_node_state_name(n->state);
    ni->instances = n->ninst;
    ni->capacity = n->capacity;
    ni->limit = ctl_node_limit(n);
    ni->port_min = n->port_min;
    ni->port_max = n->port_max;
    /* Heard on the monotonic clock; shown as a wall-clock time. */
    ni->last_seen_ms = now_ms() - (mono_ms() - n->last_seen_ms);
    ni->leaving = n->leaving && n->state != CTL_NODE_DOWN;
    if (n->unreachable && n->state != CTL_NODE_DOWN && mono_ms() > n->last_seen_ms)
        ni->unreachable_ms = mono_ms() - n->last_seen_ms;
    LIST_FOREACH (in, &n->instances, node_link) {
        if (in->stopping && in->state == DROVER__INSTANCE_STATE__ST_LOST)
            ni->lost++;
        else if (in->stopping && in->oneoff)
            ni->oneoffs_stopping++;
        else if (in->stopping)
            ni->draining++;
        else if (ctl_inst_evicted(in) && !in->oneoff)
            ni->evicting++;
    }
}

static int
node_cmp(const void *x, const void *y)
{
    const struct ctl_node *const *a = x, *const *b = y;

    return strcmp((*a)->name, (*b)->name);
}

Drover__NodeInfo **
ctl_view_nodes(struct ctl_arena *ar, const struct ctl_model *m, size_t *n)
{
    struct ctl_node **v = ctl_arena_alloc(ar, (m->nnodes + 1) * sizeof(*v));
    Drover__NodeInfo *ni = ctl_arena_alloc(ar, (m->nnodes + 1) * sizeof(*ni));
    Drover__NodeInfo **out = ctl_arena_alloc(ar, (m->nnodes + 1) * sizeof(*out));
    size_t i;

    if (v == NULL || ni == NULL || out == NULL)
        return NULL;
    if (m->nnodes > 0)
        memcpy(v, m->node_v, m->nnodes * sizeof(*v));
    qsort(v, m->nnodes, sizeof(*v), node_cmp);
    for (i = 0; i < m->nnodes; i++) {
        ctl_view_node(v[i], &ni[i]);
        out[i] = &ni[i];
    }
    *n = m->nnodes;
    return out;
}

/* Its node has not been heard from for a while: what it last said may no
 * longer be true (an agent killed with SIGKILL leaves its processes serving
 * until it comes back; a dead machine does not). */
static bool
unreachable(const struct ctl_instance *in)
{
    return in->node != NULL && in->node->unreachable && !in->stopping;
}

/* Why an instance is as it is, when the model knows better than its row. */
static const char *
inst_reason(struct ctl_arena *ar, const struct ctl_instance *in)
{
    if (ctl_inst_evicted(in))
        return ctl_arena_printf(ar, "node %s is draining: runs until its replacement is up",
                                in->node->name);
    if (in->stopping && in->state == DROVER__INSTANCE_STATE__ST_LOST && in->node != NULL)
        return in->oneoff
                   ? ctl_arena_printf(ar, "node %s is down", in->node->name)
                   : ctl_arena_printf(ar, "node %s is down: replaced elsewhere", in->node->name);
    if (unreachable(in))
        return ctl_arena_printf(
            ar, "node %s unreachable for %.0f s; last reported %s", in->node->name,
            (double)(mono_ms() - in->node->last_seen_ms) / 1000.0, ctl_inst_state_name(in));
    return in->reason;
}

int
ctl_view_inst(struct ctl_arena *ar, const struct ctl_instance *in, Drover__InstanceInfo *ii)
{
    const struct ctl_release *rel = ctl_release_get(in->app, in->release);
    const struct ctl_ptype *pt = rel != NULL ? ctl_release_type(rel, in->type) : NULL;

    drover__instance_info__init(ii);
    ii->id = in->id;
    ii->name = ctl_arena_inst_name(ar, in->type, in->idx);
    ii->type = (char *)in->type;
    ii->state = unreachable(in) ? "unknown" : (char *)ctl_inst_state_name(in);
    ii->node = in->node != NULL ? in->node->name : "";
    ii->host = in->node != NULL ? in->node->address : "";
    ii->port = in->port;
    ii->release = in->release;
    ii->restarts = in->restarts;
    ii->pid = in->pid;
    ii->exit_code = in->exit_code;
    ii->exit_signal = in->exit_signal;
    ii->since_ms = in->since_ms;
    ii->memory_bytes = in->memory_bytes;
    ii->cpu_permille = in->cpu_permille;
    ii->reason = (char *)inst_reason(ar, in);
    ii->command = in->oneoff && in->command != NULL ? in->command : pt != NULL ? pt->command : "";
    return ii->name != NULL && ii->reason != NULL ? 0 : -ENOMEM;
}

/* ---- status ---- */

static Drover__TypeStatus *
type_status(struct ctl_arena *ar, Drover__AppStatus *as, const char *type)
{
    Drover__TypeStatus *ts;
    size_t i;

    for (i = 0; i < as->n_types; i++) {
        if (strcmp(as->types[i]->type, type) == 0)
            return as->types[i];
    }
    ts = ctl_arena_alloc(ar, sizeof(*ts));
    if (ts == NULL)
        return NULL;
    drover__type_status__init(ts);
    ts->type = (char *)type;
    as->types[as->n_types++] = ts;
    return ts;
}

static void
count_inst(Drover__TypeStatus *ts, const struct ctl_instance *in)
{
    if (in->stopping) {
        if (in->state == DROVER__INSTANCE_STATE__ST_LOST)
            ts->lost++;
        else
            ts->draining++;
        return;
    }
    if (ctl_inst_evicted(in))
        ts->evicting++;
    switch (in->state) {
    case DROVER__INSTANCE_STATE__ST_UP:
        ts->up++;
        break;
    case DROVER__INSTANCE_STATE__ST_STARTING:
        ts->starting++;
        break;
    case DROVER__INSTANCE_STATE__ST_CRASHED:
    case DROVER__INSTANCE_STATE__ST_FAILED:
        ts->crashed++;
        break;
    case DROVER__INSTANCE_STATE__ST_DRAINING:
        ts->draining++;
        break;
    default:
        ts->pending++;
        break;
    }
}

static bool
wants_attention(const struct ctl_instance *in)
{
    if (in->stopping)
        return in->state == DROVER__INSTANCE_STATE__ST_LOST;
    return ctl_inst_evicted(in) || in->state == DROVER__INSTANCE_STATE__ST_PENDING ||
           in->state == DROVER__INSTANCE_STATE__ST_CRASHED ||
           in->state == DROVER__INSTANCE_STATE__ST_FAILED;
}

static Drover__AppStatus *
app_status(struct ctl_arena *ar, const struct ctl_app *a)
{
    const struct ctl_release *rel = ctl_release_current(a);
    Drover__AppStatus *as = ctl_arena_alloc(ar, sizeof(*as));
    const struct ctl_instance *in;
    size_t ntypes = a->nformation + a->ninstances + 1, i;

    if (as == NULL)
        return NULL;
    drover__app_status__init(as);
    as->name = (char *)a->name;
    as->release = a->current;
    as->types = ctl_arena_alloc(ar, ntypes * sizeof(*as->types));
    as->attention = ctl_arena_alloc(ar, (a->ninstances + 1) * sizeof(*as->attention));
    if (as->types == NULL || as->attention == NULL)
        return NULL;
    /* The current release's types first, in Procfile order, with the
     * formation's quantity; then any other type that still has instances. */
    for (i = 0; rel != NULL && i < rel->ntypes; i++) {
        const struct ctl_formation *f = ctl_formation_find(a, rel->types[i].name);
        Drover__TypeStatus *ts;

        if (strcmp(rel->types[i].name, ctl_release_type_name) == 0)
            continue; /* not a formation type: shown only while it runs */
        if ((ts = type_status(ar, as, rel->types[i].name)) == NULL)
            return NULL;
        ts->desired = f != NULL ? f->quantity : 0;
    }
    LIST_FOREACH (in, &a->instances, app_link) {
        /* One-offs are no process type: no row of their own. */
        Drover__TypeStatus *ts = in->oneoff ? NULL : type_status(ar, as, in->type);
        Drover__InstanceInfo *ii;

        if (ts == NULL && !in->oneoff)
            return NULL;
        if (ts != NULL)
            count_inst(ts, in);
        if (!wants_attention(in))
            continue;
        ii = ctl_arena_alloc(ar, sizeof(*ii));
        if (ii == NULL || ctl_view_inst(ar, in, ii) < 0)
            return NULL;
        as->attention[as->n_attention++] = ii;
    }
    return as;
}

int
ctl_view_status(struct ctl_arena *ar, const struct ctl_model *m, Drover__StatusRep *sr)
{
    struct ctl_app **apps;
    size_t n = 0, i;
    int rc = 0;

    drover__status_rep__init(sr);
    sr->nodes = ctl_view_nodes(ar, m, &sr->n_nodes);
    if (sr->nodes == NULL)
        return -ENOMEM;
    apps = ctl_apps_sorted(m, &n);
    if (apps == NULL)
        return -ENOMEM;
    sr->apps = ctl_arena_alloc(ar, (n + 1) * sizeof(*sr->apps));
    if (sr->apps == NULL)
        rc = -ENOMEM;
    for (i = 0; rc == 0 && i < n; i++) {
        sr->apps[i] = app_status(ar, apps[i]);
        if (sr->apps[i] == NULL)
            rc = -ENOMEM;
    }
    sr->n_apps = rc == 0 ? n : 0;
    free(apps);
    sr->warnings = ctl_arena_alloc(ar, 2 * sizeof(*sr->warnings));
    if (sr->warnings == NULL)
        return -ENOMEM;
    if (m->store_health[0] != '\0')
        sr->warnings[sr->n_warnings++] = (char *)m->store_health;
    if (m->nodes_health[0] != '\0')
        sr->warnings[sr->n_warnings++] = (char *)m->nodes_health;
    return rc;
}
