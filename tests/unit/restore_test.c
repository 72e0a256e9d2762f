/* SPDX-License-Identifier: MIT */
/*
 * A failed commit changes nothing (undo.c, store_front.c): the store refuses a
 * change set (here: another connection holds the write lock, a real
 * SQLITE_BUSY), and the model reads exactly as before the change set,
 * whatever it did (scale, config, a new release, new, placed, stopped and
 * deleted instances, a new app, a new node, a removed node, a cordon). The
 * next change set then commits, and what the store holds reads back equal.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "ctl.h"
#include "log.h"

static char dir[64];
static char path[128];

static void
setup(void)
{
    log_set_level(LOG_ERROR);
    strcpy(dir, "/tmp/drover-restore-test-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/drover.db", dir);
}

static void
teardown(void)
{
    rm_rf(dir);
}

TestSuite(restore, .init = setup, .fini = teardown);

struct dump {
    char *buf;
    size_t len, cap;
};

static void __attribute__((format(printf, 2, 3))) put(struct dump *d, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (d->len + (size_t)n + 1 > d->cap) {
        d->cap = (d->len + (size_t)n + 1) * 2;
        d->buf = realloc(d->buf, d->cap);
    }
    va_start(ap, fmt);
    vsnprintf(d->buf + d->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    d->len += (size_t)n;
}

static int
node_cmp(const void *x, const void *y)
{
    return strcmp((*(struct ctl_node *const *)x)->name, (*(struct ctl_node *const *)y)->name);
}

/* Everything stored, and every index, as text (run with live: also what is
 * not stored but must be consistent). */
static char *
dump(const struct ctl_model *m, bool live)
{
    struct dump d = {0};
    size_t n = 0, i, k;
    struct ctl_app **apps = ctl_apps_sorted(m, &n);
    struct ctl_node **nodes = calloc(m->nnodes + 1, sizeof(*nodes));

    put(&d, "next_id=%llu nnodes=%zu\n", (unsigned long long)m->next_id, m->nnodes);
    for (i = 0; i < n; i++) {
        const struct ctl_app *a = apps[i];

        put(&d, "app %s cur=%u good=%u deploy=%s/%u/%u destroying=%d ninst=%zu\n", a->name,
            a->current, a->good, ctl_deploy_state_name(a->deploy.state), a->deploy.release,
            a->deploy.from, a->destroying, a->ninstances);
        for (k = 0; k < a->nconfig; k++)
            put(&d, "  config %s=%s\n", a->config[k].key, a->config[k].value);
        for (k = 0; k < a->nformation; k++)
            put(&d, "  formation %s=%u grace=%u\n", a->formation[k].type, a->formation[k].quantity,
                a->formation[k].grace_ms);
        for (k = 0; k < a->nreleases; k++)
            put(&d, "  release v%u %s %s\n", a->releases[k]->version, a->releases[k]->status,
                a->releases[k]->reason);
    }
    memcpy(nodes, m->node_v, m->nnodes * sizeof(*nodes));
    qsort(nodes, m->nnodes, sizeof(*nodes), node_cmp);
    for (i = 0; i < m->nnodes; i++) {
        const struct ctl_node *nd = nodes[i];

        put(&d, "node %s %s admin=%s gen=%llu addr=%s ports=%u-%u cap=%u\n", nd->name,
            ctl_node_state_name(nd->state), ctl_node_state_name(nd->admin),
            (unsigned long long)nd->generation, nd->address, nd->port_min, nd->port_max,
            nd->capacity);
        if (live)
            put(&d, "  ninst=%u nlive=%u used=%u\n", nd->ninst, nd->nlive,
                ctl_ports_used(nd->ports));
    }
    for (uint64_t id = 1; id < m->next_id; id++) {
        const struct ctl_instance *in = ctl_inst_find(m, id);

        if (in == NULL)
            continue;
        put(&d,
            "inst %llu %s %s.%u v%u node=%s port=%u state=%d stopping=%d restarts=%u pid=%d "
            "reason=%s\n",
            (unsigned long long)id, in->app->name, in->type, in->idx, in->release,
            in->node != NULL ? in->node->name : "-", in->port, (int)in->state, in->stopping,
            in->restarts, in->pid, in->reason);
    }
    if (live) {
        const struct ctl_instance *in;

        TAILQ_FOREACH (in, &m->unplaced, unplaced_link)
            put(&d, "unplaced %llu\n", (unsigned long long)in->id);
        put(&d, "ndraining=%u ndeploying=%u\n", m->ndraining, m->ndeploying);
    }
    free(apps);
    free(nodes);
    return d.buf;
}

static struct ctl_release *
release(struct ctl_app *a, uint32_t version)
{
    struct ctl_release *r = ctl_release_new();

    r->version = version;
    memset(r->slug_sha256, 'a' + (int)version, 64);
    r->description = strdup("Deploy");
    strcpy(r->status, "succeeded");
    r->types = calloc(1, sizeof(*r->types));
    strcpy(r->types[0].name, "web");
    r->types[0].command = strdup("./web");
    r->ntypes = 1;
    cr_assert_eq(ctl_kv_copy(a->config, a->nconfig, &r->config), 0);
    r->nconfig = a->nconfig;
    return r;
}

static struct ctl_node *
node(struct ctl_model *m, const char *name, uint16_t lo)
{
    struct ctl_node *n = NULL;

    cr_assert_eq(ctl_node_add(m, name, &n), 0);
    ctl_node_touch(m, n);
    strcpy(n->address, "198.18.0.5");
    strcpy(n->boot_id, "boot");
    n->capacity = 10;
    n->generation = 1;
    cr_assert_eq(ctl_node_set_range(n, lo, (uint16_t)(lo + 9)), 0);
    ctl_node_update(m, n, false, CTL_NODE_READY, false);
    return n;
}

/* Every kind of change a request or a tick makes, on the model as built. */
static void
change_everything(struct ctl_model *m)
{
    struct ctl_app *a = ctl_app_find(m, "shop"), *c = NULL;
    struct ctl_node *n1 = ctl_node_find(m, "n1"), *n3;
    struct ctl_instance *in, *w1 = ctl_inst_find(m, 1), *w2 = ctl_inst_find(m, 2);

    ctl_app_touch(m, a, true, true, true);
    ctl_formation_find(a, "web")->quantity = 7;
    ctl_formation_find(a, "web")->grace_ms = 1;
    cr_assert_eq(ctl_config_set(a, "NEW", "1"), 0);
    ctl_config_unset(a, "KEEP");
    cr_assert_eq(ctl_release_append(a, release(a, 2)), 0);
    a->current = 2;
    ctl_deploy_start(m, a, 1000);
    ctl_release_set_status(m, a, ctl_release_get(a, 1), "superseded", "why not");
    cr_assert_eq(ctl_inst_new(m, a, "web", 3, 2, 0, &in), 0);
    cr_assert_eq(ctl_inst_place(m, in, n1, 0), 0);
    ctl_inst_set_state(m, w1, DROVER__INSTANCE_STATE__ST_CRASHED, 2000);
    strcpy(w1->reason, "exited with status 3"); /* the journal keeps the one before */
    ctl_inst_touch(m, w2);
    w2->reason[0] = '\0';
    ctl_inst_stop(m, w2);
    ctl_inst_delete(m, ctl_inst_find(m, 3)); /* placed on n2 */
    ctl_inst_delete(m, ctl_inst_find(m, 4)); /* unplaced */
    cr_assert_eq(ctl_node_remove(m, ctl_node_find(m, "n2")), 0);
    n3 = node(m, "n3", 30000);
    cr_assert_eq(ctl_inst_new(m, a, "web", 4, 2, 0, &in), 0);
    cr_assert_eq(ctl_inst_place(m, in, n3, 0), 0);
    ctl_node_update(m, n1, false, CTL_NODE_CORDONED, false);
    cr_assert_eq(ctl_app_add(m, "blog", 5, &c), 0);
    cr_assert_eq(ctl_inst_new(m, c, "web", 1, 0, 0, &in), 0);
}

static void
build(struct ctl_model *m)
{
    struct ctl_app *a = NULL;
    struct ctl_node *n1, *n2;
    struct ctl_instance *in;

    cr_assert_eq(ctl_app_add(m, "shop", 1, &a), 0);
    cr_assert_eq(ctl_config_set(a, "KEEP", "yes"), 0);
    cr_assert_eq(ctl_release_append(a, release(a, 1)), 0);
    a->current = 1;
    a->good = 1;
    cr_assert_eq(ctl_formation_add(a, "web", 3, NULL), 0);
    n1 = node(m, "n1", 10000);
    n2 = node(m, "n2", 20000);
    cr_assert_eq(ctl_inst_new(m, a, "web", 1, 1, 0, &in), 0); /* id 1 */
    cr_assert_eq(ctl_inst_place(m, in, n1, 0), 0);
    ctl_inst_set_state(m, in, DROVER__INSTANCE_STATE__ST_UP, 10);
    strcpy(in->reason, "up since the first start");
    cr_assert_eq(ctl_inst_new(m, a, "web", 2, 1, 0, &in), 0); /* id 2 */
    cr_assert_eq(ctl_inst_place(m, in, n1, 0), 0);
    strcpy(in->reason, "a reason restored whole");
    cr_assert_eq(ctl_inst_new(m, a, "web", 3, 1, 0, &in), 0); /* id 3 */
    cr_assert_eq(ctl_inst_place(m, in, n2, 0), 0);
    cr_assert_eq(ctl_inst_new(m, a, "web", 5, 1, 0, &in), 0); /* id 4: unplaced */
    strcpy(in->reason, CTL_REASON_NO_NODE);
}

Test(restore, failed_commit_leaves_the_model_as_it_was, .timeout = 20)
{
    struct ctl_db *st = NULL;
    struct ctl_model *m = ctl_model_new(), *m2 = ctl_model_new();
    sqlite3 *lock = NULL;
    char *before, *before_live, *after, *after_live, *stored, *loaded;

    cr_assert_eq(ctl_store_open(path, &st), 0);
    build(m);
    ctl_app_touch(m, ctl_app_find(m, "shop"), true, true, true);
    cr_assert_eq(ctl_store_flush(st, m), 0);
    before = dump(m, false);
    before_live = dump(m, true);

    /* Another connection holds the write lock: the apply is refused. */
    cr_assert_eq(sqlite3_open(path, &lock), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(lock, "BEGIN IMMEDIATE;", NULL, NULL, NULL), SQLITE_OK);
    change_everything(m);
    after = dump(m, false);
    cr_assert_neq(strcmp(after, before), 0, "the change set changed something");
    free(after);
    cr_assert_lt(ctl_store_flush(st, m), 0);
    cr_assert(ctl_store_failing(st));
    cr_assert_not_null(strstr(m->store_health, "store failing"));
    after = dump(m, false);
    after_live = dump(m, true);
    cr_assert_str_eq(after, before, "restored:\n%s\nbefore:\n%s", after, before);
    cr_assert_str_eq(after_live, before_live, "indexes:\n%s\nbefore:\n%s", after_live, before_live);
    cr_assert(TAILQ_EMPTY(&m->dirty_insts) && TAILQ_EMPTY(&m->dirty_apps));

    /* Free again: the same change set commits, and reads back equal. */
    cr_assert_eq(sqlite3_exec(lock, "ROLLBACK;", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(lock);
    change_everything(m);
    cr_assert_eq(ctl_store_flush(st, m), 0);
    cr_assert_not(ctl_store_failing(st));
    cr_assert_eq(m->store_health[0], '\0');
    stored = dump(m, false);
    ctl_store_close(st);
    cr_assert_eq(ctl_store_open(path, &st), 0);
    cr_assert_eq(ctl_store_load(st, m2, 5), 0);
    loaded = dump(m2, false);
    cr_assert_str_eq(loaded, stored);
    free(before);
    free(before_live);
    free(after);
    free(after_live);
    free(stored);
    free(loaded);
    ctl_model_free(m);
    ctl_model_free(m2);
    ctl_store_close(st);
}

/* Deleted objects are kept until the commit, and freed then (ASan checks). */
Test(restore, commit_frees_what_was_deleted, .timeout = 10)
{
    struct ctl_db *st = NULL;
    struct ctl_model *m = ctl_model_new();

    cr_assert_eq(ctl_store_open(path, &st), 0);
    build(m);
    cr_assert_eq(ctl_store_flush(st, m), 0);
    change_everything(m);
    cr_assert_eq(ctl_store_flush(st, m), 0);
    cr_assert_null(ctl_inst_find(m, 3));
    cr_assert_null(ctl_node_find(m, "n2"));
    ctl_model_free(m);
    ctl_store_close(st);
}

/* On top of change_everything, while it is "in flight": objects it made,
 * changed and deleted are changed again (commit.c's second journal). */
static void
change_more(struct ctl_model *m)
{
    struct ctl_app *a = ctl_app_find(m, "shop"), *blog = ctl_app_find(m, "blog");
    struct ctl_node *n3 = ctl_node_find(m, "n3");
    struct ctl_instance *in;

    ctl_app_touch(m, a, true, true, true);
    ctl_formation_find(a, "web")->quantity = 9;
    cr_assert_eq(ctl_config_set(a, "MORE", "2"), 0);
    ctl_inst_set_state(m, ctl_inst_find(m, 1), DROVER__INSTANCE_STATE__ST_UP, 3000);
    in = LIST_FIRST(&blog->instances); /* made by the change set in flight */
    cr_assert_not_null(in);
    ctl_inst_delete(m, in);
    ctl_node_update(m, n3, false, CTL_NODE_CORDONED, false);
    cr_assert_eq(ctl_inst_new(m, a, "web", 6, 2, 0, &in), 0);
    cr_assert_eq(ctl_inst_place(m, in, n3, 0), 0);
}

/* A change set in flight that the store refuses (commit.c): the model goes
 * back past it and past what changed on top of it meanwhile. */
Test(restore, a_refused_change_set_in_flight_unwinds_both_journals, .timeout = 10)
{
    struct ctl_model *m = ctl_model_new();
    char *before, *before_live, *after, *after_live;
    struct ctl_undo *u;

    build(m);
    ctl_model_clean(m); /* as if stored */
    before = dump(m, false);
    before_live = dump(m, true);
    change_everything(m);
    u = ctl_model_detach(m);
    cr_assert_not(ctl_model_dirty(m), "the marks went with the change set");
    change_more(m);
    cr_assert(ctl_model_dirty(m));
    ctl_model_unwind(m, u);
    after = dump(m, false);
    after_live = dump(m, true);
    cr_assert_str_eq(after, before, "restored:\n%s\nbefore:\n%s", after, before);
    cr_assert_str_eq(after_live, before_live, "indexes:\n%s\nbefore:\n%s", after_live, before_live);
    cr_assert_not(ctl_model_dirty(m));
    free(before);
    free(before_live);
    free(after);
    free(after_live);
    ctl_model_free(m);
}

/* The change set in flight is stored: the newer changes stay marked (they
 * are the next change set) and a refusal of those undoes only them. */
Test(restore, a_stored_change_set_in_flight_keeps_the_newer_one, .timeout = 10)
{
    struct ctl_model *m = ctl_model_new();
    char *mid, *after;
    struct ctl_undo *u;

    build(m);
    ctl_model_clean(m);
    change_everything(m);
    u = ctl_model_detach(m);
    mid = dump(m, false);
    change_more(m);
    ctl_undo_settle(u); /* stored: frees what it deleted (ASan checks) */
    cr_assert(ctl_model_dirty(m), "the newer changes lost their marks");
    cr_assert_null(ctl_node_find(m, "n2"));
    ctl_model_restore(m); /* the next change set is refused */
    after = dump(m, false);
    cr_assert_str_eq(after, mid, "restored:\n%s\nstored:\n%s", after, mid);
    free(mid);
    free(after);
    ctl_model_free(m);
}
