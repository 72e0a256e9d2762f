/* SPDX-License-Identifier: MIT */
/*
 * undo.c: what a failed apply needs to put the model back as it was.
 *
 * The model is changed first and written to the store after (one
 * transaction per change set: ctl_store_flush). When that write fails (a
 * full disk, a lost database), the store is as it was before the change set,
 * so the model must be too: otherwise memory runs ahead of what was
 * acknowledged and the next successful commit would write a state nobody
 * asked for. The rule every writer keeps is to touch an object before it
 * writes it (ctl_app_touch, ctl_node_touch, ctl_inst_touch, or a model.c
 * setter that does): the first touch of an object in a change set copies it
 * here. Objects made in the change set are recorded as born, objects
 * deleted are kept here (unlinked, not freed) until the change set ends.
 *
 * Why snapshots and not a journal of each write: the writers are many and
 * write plain fields; a copy on first touch needs nothing from them but the
 * order (touch, then write), and costs one copy per object per change set.
 *
 * Restoring copies back the stored fields of each saved object (liveness,
 * usage and the object's links stay as they are: a heartbeat heard during the
 * failed change set was still heard), frees what was born, relinks what was
 * deleted, and then rebuilds every derived index from the objects alone
 * (each app's and node's instance lists, counts, port bitmaps, the unplaced
 * queue, the model's counters): rebuilding is O(model) but runs only on a
 * failure, and cannot get an index subtly wrong the way undoing each list
 * operation could. Every agent is then asked for a full report (its digest is
 * forgotten): states it reported in the failed change set come again.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "log.h"

enum { U_APP, U_NODE, U_INST };

struct rel_snap {
    char status[16];
    char reason[CTL_DEPLOY_REASON_MAX];
};

struct app_snap {
    struct ctl_app a;      /* scalars; its pointers are not used */
    struct ctl_kv *config; /* owned copies */
    size_t nconfig;
    struct ctl_formation *formation;
    size_t nformation;
    size_t nreleases;
    struct rel_snap *rel; /* [nreleases] */
};

/*
 * One record per object touched in the change set: small, because a scale
 * makes one per instance it places (100,000 at once in the benchmark). The
 * copy of a saved object lives in its kind's array of snapshots; an object
 * born in the change set has none (measured, issue 15: with the copy inside
 * every record, 648 bytes each, recording the births of a 100,000-instance
 * scale cost 14 % of the controller's time in that commit).
 */
struct urec {
    void *obj;
    uint32_t snap; /* its copy: 1 + index in the kind's snapshots; 0: none */
    uint8_t kind;
    bool born, gone;
};

/*
 * An instance's copy holds only what restore_inst puts back, its reason in
 * the journal's text (measured, issue 15: the whole 384-byte instance copied
 * at each agent's report of it was a fifth of the controller's time in
 * placing 100,000 instances on 1,000 agents, most of it the copy and the
 * faults of the fresh memory it went to).
 */
struct inst_snap {
    struct ctl_node *node;
    uint64_t since_ms;
    uint32_t release, restarts;
    int32_t pid, exit_code, exit_signal;
    Drover__InstanceState state;
    Drover__InstanceCause cause;
    uint32_t reason; /* 1 + offset in the journal's text; 0: empty */
    uint16_t port;
    bool stopping, restart;
};

/* Grown by doubling, kept between change sets up to UNDO_KEEP bytes each
 * (the reports of a busy loop turn touch thousands of instances: an array
 * given back after every turn was faulted in again by the next). */
#define UNDO_KEEP (4u << 20)

struct ctl_undo {
    struct urec *v;
    size_t n, cap;
    struct app_snap *apps;
    size_t napps, capapps;
    struct ctl_node *nodes;
    size_t nnodes, capnodes;
    struct inst_snap *insts;
    size_t ninsts, capinsts;
    char *text; /* the instances' reasons, each ending in NUL */
    size_t ntext, captext;
    uint64_t next_id; /* the model's when the change set began */
    bool failed;      /* could not record something: a restore is not exact */
};

/* v (n entries of size sz used of *cap) with room for one more, grown by
 * doubling: NULL when there is no memory (v is then as it was). */
static void *
room(void *v, size_t n, size_t *cap, size_t sz)
{
    size_t ncap;

    if (n < *cap)
        return v;
    ncap = *cap ? *cap * 2 : 64;
    if ((v = realloc(v, ncap * sz)) != NULL)
        *cap = ncap;
    return v;
}

/* After a change set: v, or NULL when it was large and is given back. */
static void *
trim(void *v, size_t *cap, size_t sz)
{
    if (*cap * sz <= UNDO_KEEP)
        return v;
    free(v);
    *cap = 0;
    return NULL;
}

static struct ctl_undo *
undo_get(struct ctl_model *m)
{
    if (m->undo == NULL)
        m->undo = calloc(1, sizeof(*m->undo));
    return m->undo;
}

static uint32_t *
ix_of(int kind, void *obj)
{
    switch (kind) {
    case U_APP:
        return &((struct ctl_app *)obj)->undo_ix;
    case U_NODE:
        return &((struct ctl_node *)obj)->undo_ix;
    default:
        return &((struct ctl_instance *)obj)->undo_ix;
    }
}

/* The object's record, made (empty) when it has none. NULL: no memory. */
static struct urec *
rec(struct ctl_model *m, int kind, void *obj, bool *fresh)
{
    struct ctl_undo *u = undo_get(m);
    uint32_t *ix = ix_of(kind, obj);
    struct urec *r, *v;

    *fresh = false;
    if (u == NULL)
        return NULL;
    if (*ix != 0)
        return &u->v[*ix - 1];
    if (u->n == 0)
        u->next_id = m->next_id;
    if ((v = room(u->v, u->n, &u->cap, sizeof(*v))) == NULL) {
        u->failed = true;
        return NULL;
    }
    u->v = v;
    r = &u->v[u->n++];
    *r = (struct urec){.obj = obj, .kind = (uint8_t)kind};
    *ix = (uint32_t)u->n;
    *fresh = true;
    return r;
}

static void
kv_free(struct ctl_kv *kv, size_t n)
{
    if (kv == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}

static int
app_snap(struct app_snap *s, const struct ctl_app *a)
{
    size_t i;

    s->a = *a;
    if (ctl_kv_copy(a->config, a->nconfig, &s->config) < 0)
        return -ENOMEM;
    s->nconfig = a->nconfig;
    s->formation = malloc((a->nformation + 1) * sizeof(*s->formation));
    s->rel = malloc((a->nreleases + 1) * sizeof(*s->rel));
    if (s->formation == NULL || s->rel == NULL)
        return -ENOMEM;
    if (a->nformation > 0)
        memcpy(s->formation, a->formation, a->nformation * sizeof(*s->formation));
    s->nformation = a->nformation;
    for (i = 0; i < a->nreleases; i++) {
        memcpy(s->rel[i].status, a->releases[i]->status, sizeof(s->rel[i].status));
        memcpy(s->rel[i].reason, a->releases[i]->reason, sizeof(s->rel[i].reason));
    }
    s->nreleases = a->nreleases;
    return 0;
}

static void
app_snap_free(struct app_snap *s)
{
    kv_free(s->config, s->nconfig);
    free(s->formation);
    free(s->rel);
    s->config = NULL;
    s->formation = NULL;
    s->rel = NULL;
}

/* The instance's stored fields into the journal's next snapshot: false
 * when there is no memory for it. */
static bool
inst_snap(struct ctl_undo *u, const struct ctl_instance *in)
{
    size_t len = strnlen(in->reason, sizeof(in->reason) - 1);
    struct inst_snap *insts;
    uint32_t reason = 0;

    if ((insts = room(u->insts, u->ninsts, &u->capinsts, sizeof(*insts))) == NULL)
        return false;
    u->insts = insts;
    if (len > 0) {
        char *text;

        while (u->ntext + len + 1 > u->captext) {
            if ((text = room(u->text, u->captext, &u->captext, 1)) == NULL)
                return false;
            u->text = text;
        }
        memcpy(u->text + u->ntext, in->reason, len);
        u->text[u->ntext + len] = '\0';
        reason = (uint32_t)u->ntext + 1;
        u->ntext += len + 1;
    }
    insts[u->ninsts] = (struct inst_snap){
        .node = in->node,
        .since_ms = in->since_ms,
        .release = in->release,
        .restarts = in->restarts,
        .pid = in->pid,
        .exit_code = in->exit_code,
        .exit_signal = in->exit_signal,
        .state = in->state,
        .cause = in->cause,
        .reason = reason,
        .port = in->port,
        .stopping = in->stopping,
        .restart = in->restart,
    };
    u->ninsts++;
    return true;
}

static void
save(struct ctl_model *m, int kind, void *obj)
{
    struct app_snap *apps;
    struct ctl_node *nodes;
    struct ctl_undo *u;
    struct urec *r;
    bool fresh;

    if (m->loading)
        return;
    r = rec(m, kind, obj, &fresh);
    if (r == NULL || !fresh)
        return;
    u = m->undo;
    switch (kind) {
    case U_APP:
        if ((apps = room(u->apps, u->napps, &u->capapps, sizeof(*apps))) == NULL)
            break;
        u->apps = apps;
        memset(&u->apps[u->napps], 0, sizeof(*u->apps));
        if (app_snap(&u->apps[u->napps], obj) < 0) {
            app_snap_free(&u->apps[u->napps]);
            break;
        }
        r->snap = (uint32_t)++u->napps;
        return;
    case U_NODE:
        if ((nodes = room(u->nodes, u->nnodes, &u->capnodes, sizeof(*nodes))) == NULL)
            break;
        u->nodes = nodes;
        u->nodes[u->nnodes] = *(struct ctl_node *)obj;
        r->snap = (uint32_t)++u->nnodes;
        return;
    default:
        if (!inst_snap(u, obj))
            break;
        r->snap = (uint32_t)u->ninsts;
        return;
    }
    u->failed = true;
}

void
ctl_undo_save_app(struct ctl_model *m, struct ctl_app *a)
{
    save(m, U_APP, a);
}

void
ctl_undo_save_node(struct ctl_model *m, struct ctl_node *n)
{
    save(m, U_NODE, n);
}

void
ctl_undo_save_inst(struct ctl_model *m, struct ctl_instance *in)
{
    save(m, U_INST, in);
}

static void
born(struct ctl_model *m, int kind, void *obj)
{
    struct urec *r;
    bool fresh;

    if (m->loading)
        return;
    r = rec(m, kind, obj, &fresh);
    if (r != NULL)
        r->born = true;
}

void
ctl_undo_born_app(struct ctl_model *m, struct ctl_app *a)
{
    born(m, U_APP, a);
}

void
ctl_undo_born_node(struct ctl_model *m, struct ctl_node *n)
{
    born(m, U_NODE, n);
}

void
ctl_undo_born_inst(struct ctl_model *m, struct ctl_instance *in)
{
    born(m, U_INST, in);
}

/* The object was unlinked from the model: true when the journal keeps it
 * (the caller must not free it), false when the caller frees it now. */
static bool
gone(struct ctl_model *m, int kind, void *obj)
{
    struct urec *r;
    bool fresh;

    if (m->loading)
        return false;
    save(m, kind, obj);
    r = rec(m, kind, obj, &fresh);
    if (r == NULL)
        return false;
    r->gone = true;
    return true;
}

bool
ctl_undo_gone_app(struct ctl_model *m, struct ctl_app *a)
{
    return gone(m, U_APP, a);
}

bool
ctl_undo_gone_node(struct ctl_model *m, struct ctl_node *n)
{
    return gone(m, U_NODE, n);
}

bool
ctl_undo_gone_inst(struct ctl_model *m, struct ctl_instance *in)
{
    return gone(m, U_INST, in);
}

static void
obj_free(int kind, void *obj)
{
    switch (kind) {
    case U_APP:
        ctl_app_free(obj);
        break;
    case U_NODE:
        ctl_node_free(obj);
        break;
    default:
        ctl_inst_free(obj);
        break;
    }
}

/* The journal's change set is over: forget its records and copies (what an
 * app's copy holds is freed), and give back the arrays a large one grew. */
static void
snaps_end(struct ctl_undo *u)
{
    for (size_t i = 0; i < u->napps; i++)
        app_snap_free(&u->apps[i]);
    u->napps = u->nnodes = u->ninsts = u->ntext = 0;
    u->n = 0;
    u->failed = false;
    u->v = trim(u->v, &u->cap, sizeof(*u->v));
    u->apps = trim(u->apps, &u->capapps, sizeof(*u->apps));
    u->nodes = trim(u->nodes, &u->capnodes, sizeof(*u->nodes));
    u->insts = trim(u->insts, &u->capinsts, sizeof(*u->insts));
    u->text = trim(u->text, &u->captext, 1);
}

static void
undo_destroy(struct ctl_undo *u)
{
    if (u == NULL)
        return;
    snaps_end(u);
    free(u->v);
    free(u->apps);
    free(u->nodes);
    free(u->insts);
    free(u->text);
    free(u);
}

/* The change set of u is in the store: free its copies and what it deleted;
 * with forget, the live objects' records too (a detached journal's are the
 * newer journal's by now). */
static void
stored(struct ctl_undo *u, bool forget)
{
    for (size_t i = 0; i < u->n; i++) {
        struct urec *r = &u->v[i];

        if (r->gone)
            obj_free(r->kind, r->obj);
        else if (forget)
            *ix_of(r->kind, r->obj) = 0;
    }
    snaps_end(u);
}

/* The change set is in the store: forget the copies, free what was deleted. */
void
ctl_undo_commit(struct ctl_model *m)
{
    if (m->undo != NULL)
        stored(m->undo, true);
}

void
ctl_undo_free(struct ctl_model *m)
{
    ctl_undo_commit(m);
    undo_destroy(m->undo);
    m->undo = NULL;
}

/*
 * An asynchronous commit (commit.c) takes the change set's journal with it:
 * the objects' records are forgotten here (their undo_ix), so that what
 * changes while the commit is in flight starts a journal of its own, whose
 * snapshots are the model as that commit leaves it. Restoring the newer
 * journal and then the detached one therefore puts the model back as the
 * store still has it.
 */
struct ctl_undo *
ctl_undo_detach(struct ctl_model *m)
{
    struct ctl_undo *u = m->undo;

    m->undo = NULL;
    if (u == NULL)
        return NULL;
    for (size_t i = 0; i < u->n; i++)
        if (u->v[i].obj != NULL)
            *ix_of(u->v[i].kind, u->v[i].obj) = 0;
    return u;
}

/* The detached change set is in the store: free its copies and what it
 * deleted. The live objects' undo_ix belong to the newer journal now. */
void
ctl_undo_settle(struct ctl_undo *u)
{
    if (u == NULL)
        return;
    stored(u, false);
    undo_destroy(u);
}

/* ---- restore ---- */

static void
restore_app(struct ctl_app *a, struct app_snap *s)
{
    size_t i;

    a->created_ms = s->a.created_ms;
    a->current = s->a.current;
    a->good = s->a.good;
    a->rolling = s->a.rolling;
    a->destroying = s->a.destroying;
    a->deploy = s->a.deploy;
    kv_free(a->config, a->nconfig);
    a->config = s->config;
    a->nconfig = s->nconfig;
    s->config = NULL;
    free(a->formation);
    a->formation = s->formation;
    a->nformation = s->nformation;
    s->formation = NULL;
    for (i = s->nreleases; i < a->nreleases; i++)
        ctl_release_free(a->releases[i]);
    if (a->nreleases > s->nreleases)
        a->nreleases = s->nreleases;
    for (i = 0; i < a->nreleases; i++) {
        memcpy(a->releases[i]->status, s->rel[i].status, sizeof(s->rel[i].status));
        memcpy(a->releases[i]->reason, s->rel[i].reason, sizeof(s->rel[i].reason));
    }
    a->ep_gen++; /* watchers look again */
}

static void
restore_node(struct ctl_node *n, const struct ctl_node *s)
{
    memcpy(n->address, s->address, sizeof(n->address));
    n->port_min = s->port_min;
    n->port_max = s->port_max;
    n->capacity = s->capacity;
    n->state = s->state;
    n->admin = s->admin;
    n->leaving = s->leaving;
    n->generation = s->generation;
    memcpy(n->boot_id, s->boot_id, sizeof(n->boot_id));
}

static void
restore_inst(struct ctl_instance *in, const struct inst_snap *s, const char *text)
{
    in->release = s->release;
    in->node = s->node;
    in->port = s->port;
    in->state = s->state;
    in->stopping = s->stopping;
    in->restarts = s->restarts;
    in->pid = s->pid;
    in->exit_code = s->exit_code;
    in->exit_signal = s->exit_signal;
    in->since_ms = s->since_ms;
    if (s->reason != 0)
        str_copy(in->reason, sizeof(in->reason), text + s->reason - 1);
    else
        in->reason[0] = '\0';
    in->restart = s->restart;
    in->cause = s->cause;
}

static int
id_cmp(const void *x, const void *y)
{
    const struct ctl_instance *const *a = x, *const *b = y;

    return (*a)->id < (*b)->id ? -1 : (*a)->id > (*b)->id;
}

/* Rebuild every index derived from the objects themselves. */
static void
reindex(struct ctl_model *m)
{
    size_t pos = 0, n = 0, i, count = ctl_map_count(m->insts);
    struct ctl_instance **v = malloc((count + 1) * sizeof(*v)), *in;
    struct ctl_app *a;

    m->ndraining = m->ndeploying = m->ndestroying = 0;
    while ((a = ctl_map_next(m->apps, &pos)) != NULL) {
        LIST_INIT(&a->instances);
        a->ninstances = 0;
        m->ndeploying +=
            a->deploy.state == CTL_DEPLOY_RUNNING || a->deploy.state == CTL_DEPLOY_RELEASING;
        m->ndestroying += a->destroying;
    }
    for (i = 0; i < m->nnodes; i++) {
        struct ctl_node *nd = m->node_v[i];
        struct ctl_ports *p = ctl_ports_new(nd->port_min, nd->port_max);

        LIST_INIT(&nd->instances);
        nd->list_gen++;
        nd->ninst = nd->nlive = 0;
        nd->have_digest = false; /* its agent sends a full report again */
        m->ndraining += nd->state == CTL_NODE_DRAINING;
        if (p != NULL) {
            ctl_ports_free(nd->ports);
            nd->ports = p;
        }
    }
    if (v == NULL) {
        log_error("restore_failed", "err=ENOMEM");
        return;
    }
    pos = 0;
    while ((in = ctl_map_next(m->insts, &pos)) != NULL && n < count)
        v[n++] = in;
    qsort(v, n, sizeof(*v), id_cmp);
    for (i = 0; i < n; i++) {
        in = v[i];
        LIST_INSERT_HEAD(&in->app->instances, in, app_link);
        in->app->ninstances++;
        if (in->node == NULL) {
            in->unplaced = true;
            TAILQ_INSERT_TAIL(&m->unplaced, in, unplaced_link);
            continue;
        }
        LIST_INSERT_HEAD(&in->node->instances, in, node_link);
        in->node->ninst++;
        in->node->nlive += !in->stopping;
        if (in->node->ports != NULL)
            ctl_ports_take_at(in->node->ports, in->port);
    }
    free(v);
}

/*
 * The apply failed: put every recorded object back as it was when the
 * change set began. The caller then forgets the dirty marks.
 */
void
ctl_undo_restore(struct ctl_model *m)
{
    struct ctl_undo *u = m->undo;
    struct ctl_instance *in;
    size_t i;

    if (u == NULL || u->n == 0)
        return;
    if (u->failed)
        log_error("restore_inexact", "reason=%s", log_q("out of memory while recording"));
    /* The unplaced queue is rebuilt (reindex): empty it before freeing. */
    while ((in = TAILQ_FIRST(&m->unplaced)) != NULL) {
        TAILQ_REMOVE(&m->unplaced, in, unplaced_link);
        in->unplaced = false;
    }
    /* Relink what was deleted (and was not born in this change set). */
    for (i = 0; i < u->n; i++) {
        struct urec *r = &u->v[i];

        if (!r->gone || r->born)
            continue;
        if (r->kind == U_APP)
            ctl_map_put(m->apps, ((struct ctl_app *)r->obj)->name, r->obj);
        else if (r->kind == U_NODE)
            ctl_node_relink(m, r->obj);
        else
            ctl_map_puti(m->insts, ((struct ctl_instance *)r->obj)->id, r->obj);
        r->gone = false;
    }
    /* Born instances first: born apps and nodes may hold them. */
    for (i = 0; i < u->n; i++) {
        struct urec *r = &u->v[i];

        if (r->born && r->kind == U_INST) {
            if (!r->gone)
                ctl_map_deli(m->insts, ((struct ctl_instance *)r->obj)->id);
            ctl_inst_free(r->obj);
            r->obj = NULL;
        }
    }
    for (i = 0; i < u->n; i++) {
        struct urec *r = &u->v[i];

        if (r->obj == NULL || r->born || r->snap == 0)
            continue;
        if (r->kind == U_APP)
            restore_app(r->obj, &u->apps[r->snap - 1]);
        else if (r->kind == U_NODE)
            restore_node(r->obj, &u->nodes[r->snap - 1]);
        else
            restore_inst(r->obj, &u->insts[r->snap - 1], u->text);
    }
    for (i = 0; i < u->n; i++) {
        struct urec *r = &u->v[i];

        if (r->obj == NULL || !r->born)
            continue;
        if (r->kind == U_APP)
            ctl_app_unlink(m, r->obj, !r->gone);
        else if (r->kind == U_NODE)
            ctl_node_unlink(m, r->obj, !r->gone);
        obj_free(r->kind, r->obj);
        r->obj = NULL;
    }
    for (i = 0; i < u->n; i++) {
        struct urec *r = &u->v[i];

        if (r->obj != NULL)
            *ix_of(r->kind, r->obj) = 0;
    }
    m->next_id = u->next_id;
    snaps_end(u);
    reindex(m);
    m->ep_changed = true;
    m->capacity_changed = true;
}

/* The detached change set was refused: the newer journal goes first (it
 * was recorded on top of the detached one), then the detached one. */
void
ctl_undo_unwind(struct ctl_model *m, struct ctl_undo *u)
{
    struct ctl_undo *cur;

    ctl_undo_restore(m);
    if (u == NULL)
        return;
    cur = m->undo;
    m->undo = u;
    ctl_undo_restore(m);
    m->undo = cur;
    undo_destroy(u);
}
