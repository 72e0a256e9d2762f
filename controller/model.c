/* SPDX-License-Identifier: MIT */
/*
 * model.c: the controller's working set (apps, config, releases, formations,
 * nodes, instances) and the indexes that keep every request cheap.
 *
 * The store (SQLite) is the truth across restarts; this model is the truth
 * while the process runs, and every change to it is written through before
 * the request that caused it is answered. To make that one transaction per
 * request, every mutator here marks what it touched: apps, nodes and
 * instances go on dirty queues, deleted instance ids on a list; the store
 * writes exactly those and ctl_model_clean() forgets them after the commit.
 *
 * Indexes: apps and nodes by name, instances by id (map.c); each app lists
 * its instances and each node the instances it holds, so that a reconcile
 * costs O(instances of the app) and a node's assignment set O(instances on
 * the node). A node holds an instance (and its port) from placement until
 * the instance is deleted; a stopping instance is still held but is no
 * longer in the assignment set and no longer counts against capacity.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ctl.h"
#include "http.h"
#include "log.h"
#include "procfile.h"

struct ctl_model *
ctl_model_new(void)
{
    struct ctl_model *m = calloc(1, sizeof(*m));

    if (m == NULL)
        return NULL;
    m->apps = ctl_map_new();
    m->nodes = ctl_map_new();
    m->insts = ctl_map_new();
    if (m->apps == NULL || m->nodes == NULL || m->insts == NULL) {
        ctl_model_free(m);
        return NULL;
    }
    m->next_id = 1;
    TAILQ_INIT(&m->dirty_apps);
    TAILQ_INIT(&m->reconcile);
    TAILQ_INIT(&m->dirty_nodes);
    TAILQ_INIT(&m->dirty_insts);
    TAILQ_INIT(&m->unplaced);
    TAILQ_INIT(&m->notify);
    return m;
}

static void
kv_free(struct ctl_kv *kv, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}

void
ctl_app_free(struct ctl_app *a)
{
    size_t i;

    kv_free(a->config, a->nconfig);
    for (i = 0; i < a->nreleases; i++)
        ctl_release_free(a->releases[i]);
    free(a->releases);
    free(a->formation);
    free(a);
}

static void
gone_clear(struct ctl_model *m)
{
    size_t i;

    for (i = 0; i < m->ngone_apps; i++)
        free(m->gone_apps[i]);
    for (i = 0; i < m->ngone_nodes; i++)
        free(m->gone_nodes[i]);
    free(m->gone_apps);
    free(m->gone_nodes);
    m->gone_apps = m->gone_nodes = NULL;
    m->ngone_apps = m->ngone_nodes = 0;
}

/* Append a copy of name to *v (for the store to delete its rows). */
static int
gone_push(char ***v, size_t *n, const char *name)
{
    char **nv = realloc(*v, (*n + 1) * sizeof(**v));

    if (nv == NULL)
        return -ENOMEM;
    *v = nv;
    if ((nv[*n] = strdup(name)) == NULL)
        return -ENOMEM;
    (*n)++;
    return 0;
}

/* Out of the model's queues (and its map when in_map); not freed. */
void
ctl_app_unlink(struct ctl_model *m, struct ctl_app *a, bool in_map)
{
    if (a->queued)
        TAILQ_REMOVE(&m->dirty_apps, a, dirty_link);
    if (a->reconcile)
        TAILQ_REMOVE(&m->reconcile, a, reconcile_link);
    a->queued = a->reconcile = false;
    if (in_map)
        ctl_map_del(m->apps, a->name);
}

int
ctl_app_remove(struct ctl_model *m, struct ctl_app *a)
{
    int rc;

    if (a->ninstances > 0)
        return -EBUSY;
    if ((rc = gone_push(&m->gone_apps, &m->ngone_apps, a->name)) < 0)
        return rc;
    if ((a->deploy.state == CTL_DEPLOY_RUNNING || a->deploy.state == CTL_DEPLOY_RELEASING) &&
        m->ndeploying > 0)
        m->ndeploying--;
    ctl_undo_save_app(m, a);
    ctl_app_unlink(m, a, true);
    if (!ctl_undo_gone_app(m, a))
        ctl_app_free(a);
    return 0;
}

void
ctl_node_free(struct ctl_node *n)
{
    if (n == NULL)
        return;
    ctl_ports_free(n->ports);
    free(n);
}

/* Out of the model's queues, node_v (and its map when in_map); not freed. */
void
ctl_node_unlink(struct ctl_model *m, struct ctl_node *n, bool in_map)
{
    size_t i;

    if (n->queued)
        TAILQ_REMOVE(&m->dirty_nodes, n, dirty_link);
    if (n->notify)
        TAILQ_REMOVE(&m->notify, n, notify_link);
    n->queued = n->dirty = n->notify = false;
    for (i = 0; i < m->nnodes && m->node_v[i] != n; i++)
        ;
    if (i < m->nnodes) {
        memmove(&m->node_v[i], &m->node_v[i + 1], (m->nnodes - i - 1) * sizeof(*m->node_v));
        m->nnodes--;
        m->nodes_gen++;
    }
    if (in_map)
        ctl_map_del(m->nodes, n->name);
}

/* n into the nodes' map and node_v (grown by doubling), a move of
 * nodes_gen (the scheduler's ranks): 0, or a negative errno with nothing
 * changed. */
static int
node_link(struct ctl_model *m, struct ctl_node *n)
{
    int rc;

    if (m->nnodes == m->node_cap) {
        size_t cap = m->node_cap ? m->node_cap * 2 : 16;
        struct ctl_node **v = realloc(m->node_v, cap * sizeof(*v));

        if (v == NULL)
            return -ENOMEM;
        m->node_v = v;
        m->node_cap = cap;
    }
    if ((rc = ctl_map_put(m->nodes, n->name, n)) < 0)
        return rc;
    m->node_v[m->nnodes++] = n;
    m->nodes_gen++;
    return 0;
}

/* A removed node comes back (undo.c). */
void
ctl_node_relink(struct ctl_model *m, struct ctl_node *n)
{
    int rc = node_link(m, n);

    if (rc < 0)
        log_error("node_relink_failed", "node=%s err=%d", log_q(n->name), rc);
}

int
ctl_node_remove(struct ctl_model *m, struct ctl_node *n)
{
    int rc;

    if (n->ninst > 0)
        return -EBUSY;
    if ((rc = gone_push(&m->gone_nodes, &m->ngone_nodes, n->name)) < 0)
        return rc;
    if (n->state == CTL_NODE_DRAINING && m->ndraining > 0)
        m->ndraining--;
    ctl_undo_save_node(m, n);
    ctl_node_unlink(m, n, true);
    if (!ctl_undo_gone_node(m, n))
        ctl_node_free(n);
    m->capacity_changed = true;
    return 0;
}

void
ctl_model_free(struct ctl_model *m)
{
    size_t pos = 0, i;
    struct ctl_instance *in;
    struct ctl_app *a;

    if (m == NULL)
        return;
    ctl_undo_free(m); /* frees what it kept of deleted objects */
    if (m->insts != NULL) {
        while ((in = ctl_map_next(m->insts, &pos)) != NULL)
            ctl_inst_free(in);
    }
    if (m->apps != NULL) {
        pos = 0;
        while ((a = ctl_map_next(m->apps, &pos)) != NULL)
            ctl_app_free(a);
    }
    for (i = 0; i < m->nnodes; i++)
        ctl_node_free(m->node_v[i]);
    free(m->node_v);
    free(m->deleted);
    gone_clear(m);
    for (i = 0; i < m->nforget_apps; i++)
        free(m->forget_apps[i]);
    for (i = 0; i < m->nforget_slugs; i++)
        free(m->forget_slugs[i]);
    free(m->forget_apps);
    free(m->forget_slugs);
    ctl_map_free(m->apps);
    ctl_map_free(m->nodes);
    ctl_map_free(m->insts);
    free(m);
}

/* ---- apps ---- */

struct ctl_app *
ctl_app_find(const struct ctl_model *m, const char *name)
{
    return ctl_map_get(m->apps, name);
}

int
ctl_app_add(struct ctl_model *m, const char *name, uint64_t created_ms, struct ctl_app **out)
{
    struct ctl_app *a = NULL;
    int rc = -EINVAL;

    if (!name_app_valid(name))
        goto out;
    rc = -EEXIST;
    if (ctl_app_find(m, name) != NULL)
        goto out;
    rc = -ENOMEM;
    a = calloc(1, sizeof(*a));
    if (a == NULL)
        goto out;
    strcpy(a->name, name);
    a->created_ms = created_ms;
    LIST_INIT(&a->instances);
    rc = ctl_map_put(m->apps, a->name, a);
    if (rc < 0)
        goto out;
    ctl_undo_born_app(m, a);
    ctl_app_touch(m, a, true, false, false);
    *out = a;
    a = NULL;
out:
    free(a);
    return rc;
}

void
ctl_app_touch(struct ctl_model *m, struct ctl_app *a, bool row, bool config, bool formation)
{
    ctl_undo_save_app(m, a);
    a->dirty_row |= row;
    a->dirty_config |= config;
    a->dirty_formation |= formation;
    if (!a->queued) {
        a->queued = true;
        TAILQ_INSERT_TAIL(&m->dirty_apps, a, dirty_link);
    }
}

void
ctl_app_want_reconcile(struct ctl_model *m, struct ctl_app *a)
{
    if (!a->reconcile) {
        a->reconcile = true;
        TAILQ_INSERT_TAIL(&m->reconcile, a, reconcile_link);
    }
}

int
ctl_config_replace(struct ctl_model *m, struct ctl_app *a, const struct ctl_kv *src, size_t n)
{
    struct ctl_kv *kv = NULL;
    int rc;

    if (src == a->config)
        return 0;
    if ((rc = ctl_kv_copy(src, n, &kv)) < 0)
        return rc;
    ctl_app_touch(m, a, false, true, false);
    kv_free(a->config, a->nconfig);
    a->config = kv;
    a->nconfig = n;
    return 0;
}

static int
app_cmp(const void *x, const void *y)
{
    const struct ctl_app *const *a = x, *const *b = y;

    return strcmp((*a)->name, (*b)->name);
}

struct ctl_app **
ctl_apps_sorted(const struct ctl_model *m, size_t *n)
{
    size_t pos = 0, i = 0, count = ctl_map_count(m->apps);
    struct ctl_app **v = malloc((count + 1) * sizeof(*v)), *a;

    if (v == NULL)
        return NULL;
    while ((a = ctl_map_next(m->apps, &pos)) != NULL && i < count)
        v[i++] = a;
    qsort(v, i, sizeof(*v), app_cmp);
    *n = i;
    return v;
}

/* ---- config ---- */

static size_t
config_lower_bound(const struct ctl_app *a, const char *key)
{
    size_t lo = 0, hi = a->nconfig;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (strcmp(a->config[mid].key, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const struct ctl_kv *
ctl_config_find(const struct ctl_app *a, const char *key)
{
    size_t i = config_lower_bound(a, key);

    if (i < a->nconfig && strcmp(a->config[i].key, key) == 0)
        return &a->config[i];
    return NULL;
}

int
ctl_config_set(struct ctl_app *a, const char *key, const char *value)
{
    size_t i = config_lower_bound(a, key);
    char *k = NULL, *v = NULL;
    struct ctl_kv *nv;
    int rc = -ENOMEM;

    v = strdup(value);
    if (v == NULL)
        goto out;
    if (i < a->nconfig && strcmp(a->config[i].key, key) == 0) {
        free(a->config[i].value);
        a->config[i].value = v;
        return 0;
    }
    k = strdup(key);
    if (k == NULL)
        goto out;
    nv = realloc(a->config, (a->nconfig + 1) * sizeof(*nv));
    if (nv == NULL)
        goto out;
    a->config = nv;
    memmove(&nv[i + 1], &nv[i], (a->nconfig - i) * sizeof(*nv));
    nv[i].key = k;
    nv[i].value = v;
    a->nconfig++;
    return 0;
out:
    free(k);
    free(v);
    return rc;
}

bool
ctl_config_unset(struct ctl_app *a, const char *key)
{
    size_t i = config_lower_bound(a, key);

    if (i >= a->nconfig || strcmp(a->config[i].key, key) != 0)
        return false;
    free(a->config[i].key);
    free(a->config[i].value);
    memmove(&a->config[i], &a->config[i + 1], (a->nconfig - i - 1) * sizeof(a->config[0]));
    a->nconfig--;
    return true;
}

int
ctl_kv_copy(const struct ctl_kv *src, size_t n, struct ctl_kv **out)
{
    struct ctl_kv *kv = calloc(n + 1, sizeof(*kv));
    size_t i;

    if (kv == NULL)
        return -ENOMEM;
    for (i = 0; i < n; i++) {
        kv[i].key = strdup(src[i].key);
        kv[i].value = strdup(src[i].value);
        if (kv[i].key == NULL || kv[i].value == NULL) {
            kv_free(kv, i + 1);
            return -ENOMEM;
        }
    }
    *out = kv;
    return 0;
}

/* ---- releases ---- */

struct ctl_release *
ctl_release_get(const struct ctl_app *a, uint32_t version)
{
    if (version == 0 || version > a->nreleases)
        return NULL;
    return a->releases[version - 1];
}

struct ctl_release *
ctl_release_current(const struct ctl_app *a)
{
    return ctl_release_get(a, a->current);
}

const struct ctl_ptype *
ctl_release_type(const struct ctl_release *r, const char *type)
{
    size_t i;

    for (i = 0; i < r->ntypes; i++) {
        if (strcmp(r->types[i].name, type) == 0)
            return &r->types[i];
    }
    return NULL;
}

struct ctl_release *
ctl_release_new(void)
{
    return calloc(1, sizeof(struct ctl_release));
}

void
ctl_release_free(struct ctl_release *r)
{
    size_t i;

    if (r == NULL)
        return;
    free(r->description);
    kv_free(r->config, r->nconfig);
    for (i = 0; i < r->ntypes; i++)
        free(r->types[i].command);
    free(r->types);
    free(r->pb_kv);
    free(r->pb_env);
    free(r);
}

int
ctl_release_append(struct ctl_app *a, struct ctl_release *r)
{
    struct ctl_release **v;

    if (r->version != a->nreleases + 1)
        return -EINVAL;
    v = realloc(a->releases, (a->nreleases + 1) * sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    a->releases = v;
    v[a->nreleases++] = r;
    return 0;
}

/* ---- setters: every write to an app's deploy, releases and flags goes
 * through one of these, which touch (for the store and undo.c) first ---- */

void
ctl_app_set_current(struct ctl_model *m, struct ctl_app *a, uint32_t version)
{
    ctl_app_touch(m, a, true, false, false);
    a->current = version;
}

void
ctl_app_set_good(struct ctl_model *m, struct ctl_app *a, uint32_t version)
{
    ctl_app_touch(m, a, true, false, false);
    a->good = version;
}

/* Not stored: what the last reconcile left (undo.c still restores it). */
void
ctl_app_set_rolling(struct ctl_model *m, struct ctl_app *a, bool rolling)
{
    if (a->rolling == rolling)
        return;
    ctl_undo_save_app(m, a);
    a->rolling = rolling;
}

void
ctl_app_set_destroying(struct ctl_model *m, struct ctl_app *a)
{
    ctl_app_touch(m, a, true, false, false);
    if (!a->destroying)
        m->ndestroying++;
    a->destroying = true;
}

/* Off the reconcile queue: its reconcile is running now. */
void
ctl_app_reconcile_taken(struct ctl_model *m, struct ctl_app *a)
{
    if (a->reconcile) {
        a->reconcile = false;
        TAILQ_REMOVE(&m->reconcile, a, reconcile_link);
    }
}

void
ctl_release_set_status(struct ctl_model *m, struct ctl_app *a, struct ctl_release *r,
                       const char *status, const char *reason)
{
    if (r == NULL || (strcmp(r->status, status) == 0 && strcmp(r->reason, reason) == 0))
        return;
    ctl_app_touch(m, a, true, false, false);
    snprintf(r->status, sizeof(r->status), "%s", status);
    snprintf(r->reason, sizeof(r->reason), "%s", reason);
    r->status_dirty = true;
}

static bool
deploy_live(enum ctl_deploy_state st)
{
    return st == CTL_DEPLOY_RUNNING || st == CTL_DEPLOY_RELEASING;
}

/* The deploy's state; one that ends gets its (wall-clock) end time. */
void
ctl_deploy_set_state(struct ctl_model *m, struct ctl_app *a, enum ctl_deploy_state st)
{
    ctl_app_touch(m, a, true, false, false);
    if (deploy_live(a->deploy.state) && m->ndeploying > 0)
        m->ndeploying--;
    if (deploy_live(st))
        m->ndeploying++;
    else
        a->deploy.finished_ms = now_ms(); /* wall: for people */
    a->deploy.state = st;
}

/* A new deploy of release (replacing from) starts in state st; now is
 * the monotonic clock its timeout counts from. */
void
ctl_deploy_begin(struct ctl_model *m, struct ctl_app *a, uint32_t release, uint32_t from,
                 enum ctl_deploy_state st, uint64_t now)
{
    struct ctl_deploy *d = &a->deploy;

    ctl_app_touch(m, a, true, false, false);
    d->release = release;
    d->from = from;
    d->reason[0] = '\0';
    d->started_ms = now_ms(); /* wall: for people */
    d->started_mono = now;
    d->finished_ms = 0;
    if (!deploy_live(d->state) || !deploy_live(st))
        ctl_deploy_set_state(m, a, st);
    else
        d->state = st;
}

void
ctl_deploy_set_reason(struct ctl_model *m, struct ctl_app *a, const char *fmt, ...)
{
    va_list ap;

    ctl_app_touch(m, a, true, false, false);
    va_start(ap, fmt);
    vsnprintf(a->deploy.reason, sizeof(a->deploy.reason), fmt, ap);
    va_end(ap);
}

void
ctl_inst_set_restart(struct ctl_model *m, struct ctl_instance *in, bool restart)
{
    if (in->restart == restart)
        return;
    ctl_inst_touch(m, in);
    in->restart = restart;
}

/* A new instance becomes a one-off running command with ptype's settings. */
int
ctl_inst_make_oneoff(struct ctl_model *m, struct ctl_instance *in, const char *command,
                     const char *ptype)
{
    char *c = strdup(command);

    if (c == NULL)
        return -ENOMEM;
    ctl_inst_touch(m, in);
    free(in->command);
    in->command = c;
    in->oneoff = true;
    in->since_ms = now_ms();
    snprintf(in->ptype, sizeof(in->ptype), "%s", ptype);
    return 0;
}

/* ---- formations ---- */

struct ctl_formation *
ctl_formation_find(const struct ctl_app *a, const char *type)
{
    size_t i;

    for (i = 0; i < a->nformation; i++) {
        if (strcmp(a->formation[i].type, type) == 0)
            return &a->formation[i];
    }
    return NULL;
}

int
ctl_formation_add(struct ctl_app *a, const char *type, uint32_t quantity,
                  struct ctl_formation **out)
{
    struct ctl_formation *v, *f;

    if (!name_type_valid(type))
        return -EINVAL;
    if (ctl_formation_find(a, type) != NULL)
        return -EEXIST;
    v = realloc(a->formation, (a->nformation + 1) * sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    a->formation = v;
    f = &v[a->nformation++];
    memset(f, 0, sizeof(*f));
    strcpy(f->type, type);
    f->quantity = quantity;
    ctl_settings_defaults(f);
    if (out != NULL)
        *out = f;
    return 0;
}

/* ---- nodes ---- */

struct ctl_node *
ctl_node_find(const struct ctl_model *m, const char *name)
{
    return ctl_map_get(m->nodes, name);
}

int
ctl_node_add(struct ctl_model *m, const char *name, struct ctl_node **out)
{
    struct ctl_node *n = NULL;
    int rc = -EINVAL;

    if (!name_node_valid(name))
        goto out;
    rc = -EEXIST;
    if (ctl_node_find(m, name) != NULL)
        goto out;
    rc = -ENOMEM;
    n = calloc(1, sizeof(*n));
    if (n == NULL)
        goto out;
    strcpy(n->name, name);
    n->state = CTL_NODE_DOWN;
    n->admin = CTL_NODE_READY;
    n->port_min = n->port_max = 0;
    LIST_INIT(&n->instances);
    if ((rc = node_link(m, n)) < 0)
        goto out;
    ctl_undo_born_node(m, n);
    ctl_node_touch(m, n);
    *out = n;
    n = NULL;
out:
    free(n);
    return rc;
}

/*
 * A node may re-register with another port range: rebuild its bitmap from the
 * instances it holds. A held port outside the new range stays with its
 * instance (it is not in the bitmap, so it is never handed out twice: new
 * ports only come from the range).
 */
int
ctl_node_set_range(struct ctl_node *n, uint16_t lo, uint16_t hi)
{
    struct ctl_ports *p;
    struct ctl_instance *in;

    if (n->ports != NULL && n->port_min == lo && n->port_max == hi)
        return 0;
    p = ctl_ports_new(lo, hi);
    if (p == NULL)
        return -ENOMEM;
    LIST_FOREACH (in, &n->instances, node_link) {
        if (ctl_ports_take_at(p, in->port) < 0 && (in->port >= lo && in->port <= hi))
            log_warn("port_conflict", "node=%s port=%u inst=%s.%u", n->name, in->port, in->type,
                     in->idx);
    }
    ctl_ports_free(n->ports);
    n->ports = p;
    n->port_min = lo;
    n->port_max = hi;
    return 0;
}

void
ctl_node_touch(struct ctl_model *m, struct ctl_node *n)
{
    ctl_undo_save_node(m, n);
    n->dirty = true;
    if (!n->queued) {
        n->queued = true;
        TAILQ_INSERT_TAIL(&m->dirty_nodes, n, dirty_link);
    }
}

void
ctl_node_changed(struct ctl_model *m, struct ctl_node *n)
{
    if (m->loading)
        return;
    ctl_node_touch(m, n);
    n->generation++;
    if (!n->notify) {
        n->notify = true;
        TAILQ_INSERT_TAIL(&m->notify, n, notify_link);
    }
}

void
ctl_node_update(struct ctl_model *m, struct ctl_node *n, bool down, enum ctl_node_state admin,
                bool leaving)
{
    enum ctl_node_state was = n->state, st;
    struct ctl_instance *in;

    st = down ? CTL_NODE_DOWN : leaving ? CTL_NODE_DRAINING : admin;
    if (n->admin == admin && n->leaving == leaving && was == st)
        return;
    ctl_undo_save_node(m, n); /* leaving is not stored, but a restore puts it back */
    if (n->admin != admin || was != st)
        ctl_node_touch(m, n);
    n->admin = admin;
    n->leaving = leaving;
    n->state = st;
    if (was == st)
        return;
    if (!m->loading)
        log_info("node_state", "node=%s from=%s to=%s admin=%s leaving=%d", n->name,
                 ctl_node_state_name(was), ctl_node_state_name(st), ctl_node_state_name(admin),
                 (int)leaving);
    if (was == CTL_NODE_DRAINING && m->ndraining > 0)
        m->ndraining--;
    if (st == CTL_NODE_DRAINING)
        m->ndraining++;
    if (st == CTL_NODE_READY)
        m->capacity_changed = true;
    /* Whether its live instances are evicted changed: their apps decide again. */
    if (was == CTL_NODE_DRAINING || st == CTL_NODE_DRAINING) {
        LIST_FOREACH (in, &n->instances, node_link)
            ctl_app_want_reconcile(m, in->app);
    }
}

void
ctl_node_forget_lost(struct ctl_model *m, struct ctl_node *n)
{
    struct ctl_instance *in, *next;

    if (n->state != CTL_NODE_DOWN || (n->admin != CTL_NODE_DRAINING && !n->leaving))
        return;
    for (in = LIST_FIRST(&n->instances); in != NULL; in = next) {
        next = LIST_NEXT(in, node_link);
        if (!in->stopping)
            continue;
        log_info("instance_forgotten", "app=%s inst=%s.%u id=%llu node=%s reason=%s", in->app->name,
                 in->type, in->idx, (unsigned long long)in->id, n->name,
                 n->leaving ? "left" : "drained_while_down");
        ctl_inst_delete(m, in);
    }
}

static const char *const node_states[] = {
    [CTL_NODE_READY] = "ready",
    [CTL_NODE_CORDONED] = "cordoned",
    [CTL_NODE_DRAINING] = "draining",
    [CTL_NODE_DOWN] = "down",
};

const char *
ctl_node_state_name(enum ctl_node_state st)
{
    if ((unsigned)st < ARRAY_SIZE(node_states))
        return node_states[st];
    return "unknown";
}

int
ctl_node_state_parse(const char *s, enum ctl_node_state *st)
{
    size_t i;

    for (i = 0; i < ARRAY_SIZE(node_states); i++) {
        if (strcmp(s, node_states[i]) == 0) {
            *st = (enum ctl_node_state)i;
            return 0;
        }
    }
    return -EINVAL;
}

/* ---- instances ---- */

/*
 * Instances come from slabs of INST_SLAB, mapped with MAP_POPULATE (their
 * pages faulted in by one call), and a freed one goes on a free list for
 * the next, never back to the system. Measured (issue 15, perf over a
 * scale to 100,000 instances on 10,000 simulated agents): calloc's walk of
 * the heap and the faults of the fresh pages it handed out were 14 % of the
 * scale call. Under AddressSanitizer they are calloc and free, so that a
 * use after free is still caught. Any thread may take or give one (a lock:
 * the loop's is the only caller in practice).
 */
#ifndef DROVER_ASAN
#define INST_SLAB 1024

struct inst_free {
    struct inst_free *next;
};

static pthread_mutex_t inst_lock = PTHREAD_MUTEX_INITIALIZER;
static struct inst_free *inst_free_list;

/* A new slab's instances onto the free list; false when no memory. */
static bool
inst_slab(void)
{
    size_t len = INST_SLAB * sizeof(struct ctl_instance);
    char *p =
        mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

    if (p == MAP_FAILED)
        return false;
    for (size_t i = INST_SLAB; i-- > 0;) {
        struct inst_free *f = (struct inst_free *)(p + i * sizeof(struct ctl_instance));

        f->next = inst_free_list;
        inst_free_list = f;
    }
    return true;
}
#endif

static struct ctl_instance *
inst_alloc(void)
{
#ifdef DROVER_ASAN
    return calloc(1, sizeof(struct ctl_instance));
#else
    struct inst_free *f;

    pthread_mutex_lock(&inst_lock);
    if (inst_free_list == NULL && !inst_slab()) {
        pthread_mutex_unlock(&inst_lock);
        return NULL;
    }
    f = inst_free_list;
    inst_free_list = f->next;
    pthread_mutex_unlock(&inst_lock);
    memset(f, 0, sizeof(struct ctl_instance));
    return (struct ctl_instance *)f;
#endif
}

static void
inst_release(struct ctl_instance *in)
{
#ifdef DROVER_ASAN
    free(in);
#else
    struct inst_free *f = (struct inst_free *)in;

    pthread_mutex_lock(&inst_lock);
    f->next = inst_free_list;
    inst_free_list = f;
    pthread_mutex_unlock(&inst_lock);
#endif
}

struct ctl_instance *
ctl_inst_find(const struct ctl_model *m, uint64_t id)
{
    return ctl_map_geti(m->insts, id);
}

/*
 * id 0: the next cluster-unique id (never reused: next_id only grows and is
 * stored with the instance in the same transaction). A non-zero id is a
 * stored one being loaded.
 */
int
ctl_inst_new(struct ctl_model *m, struct ctl_app *a, const char *type, uint32_t idx,
             uint32_t release, uint64_t id, struct ctl_instance **out)
{
    struct ctl_instance *in;
    int rc;

    if (!name_type_valid(type) || idx == 0)
        return -EINVAL;
    if (id == 0)
        id = m->next_id;
    in = inst_alloc();
    if (in == NULL)
        return -ENOMEM;
    in->id = id;
    in->app = a;
    strcpy(in->type, type);
    in->idx = idx;
    in->release = release;
    in->state = DROVER__INSTANCE_STATE__ST_PENDING;
    in->exit_code = -1;
    in->stored = m->loading;
    rc = ctl_map_addi(m->insts, id, in); /* -EEXIST when the id is taken */
    if (rc < 0) {
        inst_release(in);
        return rc;
    }
    if (id >= m->next_id) {
        m->next_id = id + 1;
        m->next_id_dirty = true;
    }
    ctl_undo_born_inst(m, in);
    LIST_INSERT_HEAD(&a->instances, in, app_link);
    a->ninstances++;
    in->unplaced = true;
    TAILQ_INSERT_TAIL(&m->unplaced, in, unplaced_link);
    ctl_inst_touch(m, in);
    *out = in;
    return 0;
}

int
ctl_inst_place(struct ctl_model *m, struct ctl_instance *in, struct ctl_node *n, uint16_t port)
{
    int rc;

    if (in->node != NULL || n->ports == NULL)
        return -EINVAL;
    if (port == 0)
        rc = ctl_ports_take(n->ports, &port);
    else
        rc = ctl_ports_take_at(n->ports, port);
    if (rc < 0)
        return rc;
    ctl_inst_touch(m, in);
    in->node = n;
    in->port = port;
    if (!m->loading)
        ctl_metrics_placement();
    LIST_INSERT_HEAD(&n->instances, in, node_link);
    n->list_gen++;
    n->ninst++;
    if (!in->stopping) {
        n->nlive++;
        ctl_node_changed(m, n);
    }
    if (in->unplaced) {
        in->unplaced = false;
        TAILQ_REMOVE(&m->unplaced, in, unplaced_link);
    }
    /* Placed now, it no longer waits for capacity; a row loaded from the
     * store keeps the reason it was written with (a crash's, a failure's). */
    if (!m->loading)
        in->reason[0] = '\0';
    return 0;
}

/*
 * Take the instance out of its node's assignment set; the agent drains it and
 * a later full report deletes it. Unplaced instances have nothing to drain
 * and are deleted at once: the caller must not use in afterwards.
 */
void
ctl_inst_stop(struct ctl_model *m, struct ctl_instance *in)
{
    if (in->stopping)
        return;
    if (in->node == NULL) {
        ctl_inst_delete(m, in);
        return;
    }
    ctl_inst_touch(m, in);
    in->stopping = true;
    in->node->nlive--;
    if (in->state == DROVER__INSTANCE_STATE__ST_UP && !m->loading)
        ctl_app_endpoints_changed(m, in->app);
    ctl_node_changed(m, in->node);
    m->capacity_changed = true;
}

void
ctl_inst_delete(struct ctl_model *m, struct ctl_instance *in)
{
    struct ctl_node *n = in->node;

    ctl_undo_save_inst(m, in);
    if (n != NULL) {
        if (n->ports != NULL && ctl_ports_held(n->ports, in->port))
            ctl_ports_release(n->ports, in->port);
        LIST_REMOVE(in, node_link);
        n->list_gen++;
        n->ninst--;
        if (!in->stopping) {
            n->nlive--;
            ctl_node_changed(m, n);
        }
        m->capacity_changed = true;
    }
    if (in->unplaced)
        TAILQ_REMOVE(&m->unplaced, in, unplaced_link);
    if (in->dirty)
        TAILQ_REMOVE(&m->dirty_insts, in, dirty_link);
    LIST_REMOVE(in, app_link);
    in->app->ninstances--;
    ctl_map_deli(m->insts, in->id);
    if (m->ndeleted == m->deleted_cap) {
        size_t cap = m->deleted_cap ? m->deleted_cap * 2 : 64;
        uint64_t *v = realloc(m->deleted, cap * sizeof(*v));

        if (v != NULL) {
            m->deleted = v;
            m->deleted_cap = cap;
        }
    }
    if (m->ndeleted < m->deleted_cap)
        m->deleted[m->ndeleted++] = in->id;
    else
        log_error("store_leak", "inst_id=%llu reason=ENOMEM", (unsigned long long)in->id);
    in->dirty = in->unplaced = false;
    if (!ctl_undo_gone_inst(m, in))
        ctl_inst_free(in);
}

void
ctl_inst_free(struct ctl_instance *in)
{
    if (in == NULL)
        return;
    free(in->command);
    inst_release(in);
}

void
ctl_inst_touch(struct ctl_model *m, struct ctl_instance *in)
{
    ctl_undo_save_inst(m, in);
    if (!in->dirty) {
        in->dirty = true;
        TAILQ_INSERT_TAIL(&m->dirty_insts, in, dirty_link);
    }
}

/*
 * The state changes, with what the model itself keeps in step (the dirty
 * mark, the endpoint generation, the reconcile flag). What it means for a
 * deploy is not decided here: the result says so (CTL_SAW_CRASH) and the
 * caller acts on it in one place (deploys.c's ctl_inst_report), so that
 * setting a state never rolls back a release from inside the model.
 */
unsigned
ctl_inst_set_state(struct ctl_model *m, struct ctl_instance *in, Drover__InstanceState st,
                   uint64_t since_ms)
{
    Drover__InstanceState from = in->state;
    unsigned saw = 0;

    if (from == st)
        return 0;
    /* A crash, a failure or a loss is always said; a routine move past the
     * commit's budget is counted for ctl_inst_lines_end. */
    if (st == DROVER__INSTANCE_STATE__ST_CRASHED || st == DROVER__INSTANCE_STATE__ST_FAILED ||
        st == DROVER__INSTANCE_STATE__ST_LOST || ctl_inst_line(m)) {
        log_info("instance_state", "app=%s inst=%s.%u id=%llu from=%s to=%s", in->app->name,
                 in->type, in->idx, (unsigned long long)in->id, wire_state_name(from),
                 wire_state_name(st));
    } else {
        m->quiet_states[st]++;
        log_debug("instance_state", "app=%s inst=%s.%u id=%llu from=%s to=%s", in->app->name,
                  in->type, in->idx, (unsigned long long)in->id, wire_state_name(from),
                  wire_state_name(st));
    }
    ctl_inst_touch(m, in);
    in->state = st;
    in->since_ms = since_ms;
    if (m->loading)
        return 0;
    if (from == DROVER__INSTANCE_STATE__ST_UP || st == DROVER__INSTANCE_STATE__ST_UP) {
        ctl_app_endpoints_changed(m, in->app);
        saw |= CTL_SAW_ENDPOINTS;
    }
    /* A rollout's next batch (forward or back), or a deploy's end, may hang
     * on this; otherwise a state change needs no reconcile. */
    if (!in->oneoff && (in->app->rolling || in->app->deploy.state == CTL_DEPLOY_RUNNING)) {
        ctl_app_want_reconcile(m, in->app);
        if (st == DROVER__INSTANCE_STATE__ST_CRASHED || st == DROVER__INSTANCE_STATE__ST_FAILED)
            saw |= CTL_SAW_CRASH;
    }
    /* A crash that may fail its deploy is said once the deploy is judged
     * (by the caller, ctl_inst_report): the line says whether it restarts. */
    if (!(saw & CTL_SAW_CRASH))
        ctl_inst_say_state(m, in, from);
    return saw;
}

/*
 * Routine per-instance lines (placed, and instance_state to pending,
 * starting, up, draining or stopped; watch.c's node_woken) go out at info up to
 * CTL_INST_LINES_MAX per commit; past that, one instances_summary line at
 * the commit's end counts them. Measured (issue 15): placing 100,000
 * instances wrote 200,000 lines, 14 % of the controller's time.
 */
#define CTL_INST_LINES_MAX 64

bool
ctl_inst_line(struct ctl_model *m)
{
    if (m->inst_lines >= CTL_INST_LINES_MAX)
        return false;
    m->inst_lines++;
    return true;
}

void
ctl_inst_lines_end(struct ctl_model *m)
{
    char buf[256];
    size_t len = 0;
    int n;

    m->inst_lines = 0;
    if (m->quiet_placed > 0) {
        n = snprintf(buf, sizeof(buf), " placed=%u", m->quiet_placed);
        len += n > 0 ? (size_t)n : 0;
    }
    if (m->quiet_woken > 0 && len < sizeof(buf)) {
        n = snprintf(buf + len, sizeof(buf) - len, " nodes_woken=%u", m->quiet_woken);
        len += n > 0 ? (size_t)n : 0;
    }
    for (size_t i = 0; i < ARRAY_SIZE(m->quiet_states); i++) {
        if (m->quiet_states[i] == 0 || len >= sizeof(buf))
            continue;
        n = snprintf(buf + len, sizeof(buf) - len, " %s=%u",
                     wire_state_name((Drover__InstanceState)i), m->quiet_states[i]);
        len += n > 0 ? (size_t)n : 0;
    }
    if (len == 0)
        return;
    log_info("instances_summary", "more_than=%u%s", CTL_INST_LINES_MAX, buf);
    m->quiet_placed = m->quiet_woken = 0;
    memset(m->quiet_states, 0, sizeof(m->quiet_states));
}

/* A bounded line written without printf (a label and a state line are
 * written for every state change: 200,000 at a placement of 100,000, and
 * two printf passes were most of their cost). Cut short as snprintf would. */
struct line {
    char *p;
    size_t left; /* room for characters, the terminator not counted */
};

static void
put_str(struct line *l, const char *s)
{
    size_t n = strnlen(s, l->left);

    memcpy(l->p, s, n);
    l->p += n;
    l->left -= n;
    *l->p = '\0';
}

static void
put_u32(struct line *l, uint32_t v)
{
    char d[11];

    u32_dec(v, d);
    put_str(l, d);
}

static struct line
line_at(char *out, size_t outsz)
{
    *out = '\0';
    return (struct line){out, outsz - 1};
}

/* The app's log line for in's move from from to its state. */
void
ctl_inst_say_state(struct ctl_model *m, struct ctl_instance *in, Drover__InstanceState from)
{
    Drover__InstanceState st = in->state;
    const char *tail = in->reason;
    char name[TYPE_NAME_MAX + NODE_NAME_MAX + 32];

    if (m->event == NULL || m->loading)
        return;
    ctl_inst_label(in, name, sizeof(name));
    /* The crash that failed its deploy: it is stopped, not restarted,
     * whatever the agent planned. */
    if (st == DROVER__INSTANCE_STATE__ST_CRASHED && in->app->deploy.state == CTL_DEPLOY_FAILED &&
        in->app->deploy.release == in->release)
        tail = "not restarted: its deploy failed";
    if (st == DROVER__INSTANCE_STATE__ST_CRASHED && in->exit_signal > 0)
        ctl_model_event(m, in->app->name, "%s %s -> %s (signal %d; %s)", name,
                        wire_state_name(from), wire_state_name(st), (int)in->exit_signal, tail);
    else if (st == DROVER__INSTANCE_STATE__ST_CRASHED)
        ctl_model_event(m, in->app->name, "%s %s -> %s (exit code %d; %s)", name,
                        wire_state_name(from), wire_state_name(st), (int)in->exit_code, tail);
    else if (st == DROVER__INSTANCE_STATE__ST_FAILED && in->reason[0] != '\0')
        ctl_model_event(m, in->app->name, "%s %s -> %s (%s)", name, wire_state_name(from),
                        wire_state_name(st), in->reason);
    else if (m->event != NULL) {
        char text[sizeof(name) + 64];
        struct line l = line_at(text, sizeof(text));

        put_str(&l, name);
        put_str(&l, " ");
        put_str(&l, wire_state_name(from));
        put_str(&l, " -> ");
        put_str(&l, wire_state_name(st));
        m->event(m->event_arg, in->app->name, text);
    }
}

void
ctl_app_endpoints_changed(struct ctl_model *m, struct ctl_app *a)
{
    a->ep_gen++;
    m->ep_changed = true;
}

void
ctl_model_event(struct ctl_model *m, const char *app, const char *fmt, ...)
{
    char text[1024];
    va_list ap;

    if (m->event == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    m->event(m->event_arg, app, text);
}

void
ctl_inst_name(const struct ctl_instance *in, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s.%u", in->type, in->idx);
}

/* Does some app have instances of two releases on n? Cached until n's
 * instance list changes: one pass, then a label costs no scan of the node
 * (a full report of a node's instances labels each of them). */
static bool
node_mixed(struct ctl_node *n)
{
    static uint64_t stamp;
    struct ctl_instance *o;

    if (n->mixed_known && n->mixed_gen == n->list_gen)
        return n->mixed;
    stamp++;
    n->mixed = false;
    LIST_FOREACH (o, &n->instances, node_link) {
        if (o->app->label_stamp != stamp) {
            o->app->label_stamp = stamp;
            o->app->label_rel = o->release;
        } else if (o->app->label_rel != o->release) {
            n->mixed = true;
            break;
        }
    }
    n->mixed_gen = n->list_gen;
    n->mixed_known = true;
    return n->mixed;
}

void
ctl_inst_label(const struct ctl_instance *in, char *out, size_t outsz)
{
    struct line l = line_at(out, outsz);
    const struct ctl_instance *o;
    bool twin = false;

    put_str(&l, in->type);
    put_str(&l, ".");
    put_u32(&l, in->idx);
    if (in->node == NULL)
        return;
    /* A rolling deploy's replacement may take its original's name on the
     * same node: then the release tells the two apart. */
    if (node_mixed(in->node)) {
        LIST_FOREACH (o, &in->node->instances, node_link) {
            if (o != in && o->app == in->app && !o->oneoff && o->idx == in->idx &&
                o->release != in->release && strcmp(o->type, in->type) == 0) {
                twin = true;
                break;
            }
        }
    }
    put_str(&l, "@");
    put_str(&l, in->node->name);
    if (twin) {
        put_str(&l, " (v");
        put_u32(&l, in->release);
        put_str(&l, ")");
    }
}

bool
ctl_inst_evicted(const struct ctl_instance *in)
{
    return !in->stopping && in->node != NULL && in->node->state == CTL_NODE_DRAINING;
}

const char *
ctl_inst_state_name(const struct ctl_instance *in)
{
    if (in->stopping)
        return in->state == DROVER__INSTANCE_STATE__ST_LOST ? "lost" : "draining";
    return wire_state_name(in->state);
}

/* Forget the dirty marks; stored: the change set was written. */
static void
marks_clear(struct ctl_model *m, bool stored)
{
    struct ctl_app *a;
    struct ctl_node *n;
    struct ctl_instance *in;
    size_t i;

    while ((a = TAILQ_FIRST(&m->dirty_apps)) != NULL) {
        TAILQ_REMOVE(&m->dirty_apps, a, dirty_link);
        a->queued = a->dirty_row = a->dirty_config = a->dirty_formation = false;
        for (i = 0; i < a->nreleases; i++)
            a->releases[i]->status_dirty = false;
        for (i = a->nreleases; stored && i > 0 && !a->releases[i - 1]->stored; i--)
            a->releases[i - 1]->stored = true;
    }
    while ((n = TAILQ_FIRST(&m->dirty_nodes)) != NULL) {
        TAILQ_REMOVE(&m->dirty_nodes, n, dirty_link);
        n->queued = n->dirty = false;
    }
    while ((in = TAILQ_FIRST(&m->dirty_insts)) != NULL) {
        TAILQ_REMOVE(&m->dirty_insts, in, dirty_link);
        in->dirty = false;
        in->stored |= stored;
    }
    m->ndeleted = 0;
    m->next_id_dirty = false;
    gone_clear(m);
}

/* ---- setters used by the core files ---- */
/* Each marks its object with the object's touch before it writes: the
 * store then knows what to write, and undo.c what to restore when the
 * commit fails. */

void
ctl_formation_set_quantity(struct ctl_model *m, struct ctl_app *a, struct ctl_formation *f,
                           uint32_t quantity)
{
    ctl_app_touch(m, a, false, false, true);
    f->quantity = quantity;
}

void
ctl_formation_set(struct ctl_model *m, struct ctl_app *a, struct ctl_formation *f,
                  const struct ctl_formation *next)
{
    ctl_app_touch(m, a, false, false, true);
    *f = *next;
}

void
ctl_inst_set_report(struct ctl_model *m, struct ctl_instance *in, const Drover__InstanceReport *r)
{
    if (in->pid != r->pid || in->restarts != r->restarts || in->exit_code != r->exit_code ||
        in->exit_signal != r->exit_signal || in->since_ms != r->since_ms ||
        strncmp(in->reason, r->reason, sizeof(in->reason) - 1) != 0) {
        ctl_inst_touch(m, in);
        in->pid = r->pid;
        in->restarts = r->restarts;
        in->exit_code = r->exit_code;
        in->exit_signal = r->exit_signal;
        in->since_ms = r->since_ms;
        str_copy(in->reason, sizeof(in->reason), r->reason);
    }
    in->cause = (Drover__InstanceCause)r->cause; /* not stored: the deploy reads it now */
    in->memory_bytes = r->memory_bytes;          /* live: never stored */
    in->cpu_permille = r->cpu_permille;
}

void
ctl_inst_set_pid(struct ctl_model *m, struct ctl_instance *in, int32_t pid)
{
    if (in->pid == pid)
        return;
    ctl_inst_touch(m, in);
    in->pid = pid;
}

uint64_t
ctl_model_next_epoch(struct ctl_model *m)
{
    return ++m->epoch;
}

void
ctl_model_capacity_changed(struct ctl_model *m)
{
    m->capacity_changed = true;
}

void
ctl_node_set_identity(struct ctl_model *m, struct ctl_node *n, const char *address,
                      const char *boot_id, uint32_t capacity)
{
    ctl_node_touch(m, n);
    if (n->generation == 0)
        n->generation = 1; /* a new node's first assignment set */
    snprintf(n->address, sizeof(n->address), "%s", address);
    snprintf(n->boot_id, sizeof(n->boot_id), "%s", boot_id);
    n->capacity = capacity;
}

void
ctl_node_heard(struct ctl_node *n, uint64_t mono_now)
{
    n->last_seen_ms = n->heard_ms = mono_now; /* liveness: monotonic */
    n->unreachable = false;
}

void
ctl_node_set_digest(struct ctl_node *n, bool have, uint64_t digest)
{
    n->have_digest = have;
    n->digest = digest;
}

int
ctl_inst_set_oneoff(struct ctl_model *m, struct ctl_instance *in, const struct ctl_oneoff_spec *q,
                    const char *command, uint64_t now)
{
    char *copy = strdup(command);

    if (copy == NULL)
        return -ENOMEM;
    ctl_inst_touch(m, in);
    in->oneoff = true;
    in->attach = q->attach;
    in->tty = q->attach && q->tty;
    in->rows = q->rows;
    in->cols = q->cols;
    in->since_ms = now;
    snprintf(in->ptype, sizeof(in->ptype), "%s", q->type);
    free(in->command);
    in->command = copy;
    return 0;
}

/* The release's config as protobuf, built once per release and kept. */
Drover__KeyValue **
ctl_release_env(struct ctl_release *rel)
{
    size_t i;

    if (rel->pb_env != NULL || rel->nconfig == 0)
        return rel->pb_env;
    rel->pb_kv = calloc(rel->nconfig, sizeof(*rel->pb_kv));
    rel->pb_env = calloc(rel->nconfig, sizeof(*rel->pb_env));
    if (rel->pb_kv == NULL || rel->pb_env == NULL) {
        free(rel->pb_kv);
        free(rel->pb_env);
        rel->pb_kv = NULL;
        rel->pb_env = NULL;
        return NULL;
    }
    for (i = 0; i < rel->nconfig; i++) {
        drover__key_value__init(&rel->pb_kv[i]);
        rel->pb_kv[i].key = rel->config[i].key;
        rel->pb_kv[i].value = rel->config[i].value;
        rel->pb_env[i] = &rel->pb_kv[i];
    }
    return rel->pb_env;
}

void
ctl_inst_seen(struct ctl_instance *in, uint64_t epoch)
{
    in->seen_epoch = epoch; /* full-report bookkeeping: not stored */
}

bool
ctl_model_dirty(const struct ctl_model *m)
{
    return !TAILQ_EMPTY(&m->dirty_apps) || !TAILQ_EMPTY(&m->dirty_nodes) ||
           !TAILQ_EMPTY(&m->dirty_insts) || m->ndeleted > 0 || m->next_id_dirty ||
           m->ngone_apps > 0 || m->ngone_nodes > 0;
}

void
ctl_model_clean(struct ctl_model *m)
{
    marks_clear(m, true);
    ctl_undo_commit(m);
}

/*
 * The store refused the change set: the model goes back to what the store
 * holds (undo.c). The marks go first: a restore frees what the change set
 * made, and the dirty queues must not point at it.
 */
void
ctl_model_restore(struct ctl_model *m)
{
    marks_clear(m, false);
    ctl_undo_restore(m);
}

struct ctl_undo *
ctl_model_detach(struct ctl_model *m)
{
    marks_clear(m, true);
    return ctl_undo_detach(m);
}

void
ctl_model_unwind(struct ctl_model *m, struct ctl_undo *u)
{
    marks_clear(m, false);
    ctl_undo_unwind(m, u);
}
