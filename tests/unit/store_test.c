/* SPDX-License-Identifier: MIT */
/*
 * Store: everything written through from the model comes back equal after the
 * store is closed and reopened; deletions stay deleted; instance ids are
 * never reused across a restart.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "../pgtest.h"
#include "ctl.h"
#include "log.h"
#include "store.h"

static char dir[64];
static char path[128];
/* The backend under test and where its data is (issue 16: every case runs
 * against SQLite, suite store, and PostgreSQL, suite store_pg). */
static const struct ctl_store_ops *OPS;
static const char *WHERE;
static struct pgt PG;

static void
setup(void)
{
    log_set_level(LOG_ERROR);
    strcpy(dir, "/tmp/drover-store-test-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/drover.db", dir);
    OPS = &ctl_store_sqlite_ops;
    WHERE = path;
}

static void
teardown(void)
{
    rm_rf(dir);
}

/* A private server per case (tests/pg.sh), on the case's own port. */
static void
setup_pg(int port)
{
    int rc;

    log_set_level(LOG_ERROR);
    dir[0] = '\0';
    rc = pgt_start(&PG, port);
    if (rc == 77)
        cr_skip_test("PostgreSQL cannot run here: %s", PG.why);
    cr_assert_eq(rc, 0, "the test's PostgreSQL did not start: %s", PG.why);
    OPS = &ctl_store_pg_ops;
    WHERE = PG.url;
}

static void
teardown_pg(void)
{
    pgt_stop(&PG);
}

/* One case, two suites: store (SQLite) and store_pg (PostgreSQL). */
#define CASE(name, pgport)                                                                         \
    static void name##_body(void);                                                                 \
    Test(store, name, .init = setup, .fini = teardown, .timeout = 5)                               \
    {                                                                                              \
        name##_body();                                                                             \
    }                                                                                              \
    static void name##_pg_init(void)                                                               \
    {                                                                                              \
        setup_pg(pgport);                                                                          \
    }                                                                                              \
    Test(store_pg, name, .init = name##_pg_init, .fini = teardown_pg, .timeout = 60)               \
    {                                                                                              \
        name##_body();                                                                             \
    }                                                                                              \
    static void name##_body(void)

static struct ctl_release *
release(uint32_t version, const char *cmd, const struct ctl_app *a)
{
    struct ctl_release *r = ctl_release_new();

    r->version = version;
    memset(r->slug_sha256, 'a' + (int)version, 64);
    r->slug_sha256[64] = '\0';
    r->slug_size = 1234 * version;
    r->description = strdup("Deploy with \"quotes\", commas and = signs");
    r->created_ms = 1700000000000ull + version;
    strcpy(r->status, "succeeded");
    r->types = calloc(2, sizeof(*r->types));
    strcpy(r->types[0].name, "web");
    r->types[0].command = strdup(cmd);
    strcpy(r->types[1].name, "worker");
    r->types[1].command = strdup("./work --queue=default");
    r->ntypes = 2;
    cr_assert_eq(ctl_kv_copy(a->config, a->nconfig, &r->config), 0);
    r->nconfig = a->nconfig;
    return r;
}

/* What the store front does after a backend wrote a change set: forget the
 * marks (a failed one is restored instead; store_front.c). */
static int
apply(struct ctl_store *st, struct ctl_model *m)
{
    int rc = OPS->apply(st, m);

    if (rc == 0)
        ctl_model_clean(m);
    return rc;
}

static struct ctl_model *
reopen(struct ctl_store **st)
{
    struct ctl_model *m = ctl_model_new();

    OPS->close(*st);
    cr_assert_eq(OPS->open(WHERE, st), 0);
    cr_assert_eq(OPS->load(*st, m, 5555), 0);
    return m;
}

CASE(round_trip_of_everything, 5442)
{
    struct ctl_store *st = NULL;
    struct ctl_model *m = ctl_model_new(), *m2;
    struct ctl_app *a = NULL, *b = NULL, *a2;
    struct ctl_node *n = NULL, *n2;
    struct ctl_instance *i1 = NULL, *i2 = NULL, *i3 = NULL, *j;
    struct ctl_formation *f = NULL;
    struct ctl_release *r;

    cr_assert_eq(OPS->open(WHERE, &st), 0);
    cr_assert_eq(ctl_app_add(m, "shop", 111, &a), 0);
    cr_assert_eq(ctl_app_add(m, "blog", 222, &b), 0);
    cr_assert_eq(ctl_config_set(a, "DATABASE_URL", "postgres://u:p@h/db?x=1"), 0);
    cr_assert_eq(ctl_config_set(a, "EMPTY", ""), 0);
    cr_assert_eq(ctl_config_set(a, "MULTI", "line one\nline two"), 0);
    cr_assert_eq(ctl_release_append(a, release(1, "./web --port $PORT", a)), 0);
    cr_assert_eq(ctl_config_set(a, "EXTRA", "yes"), 0);
    cr_assert_eq(ctl_release_append(a, release(2, "./web2", a)), 0);
    a->current = 2;
    cr_assert_eq(ctl_formation_add(a, "web", 3, &f), 0);
    f->grace_ms = 12345;
    cr_assert_eq(ctl_formation_add(a, "worker", 1, NULL), 0);
    ctl_app_touch(m, a, true, true, true);

    cr_assert_eq(ctl_node_add(m, "node-1.example", &n), 0);
    strcpy(n->address, "198.18.0.5");
    strcpy(n->boot_id, "boot-abc");
    n->capacity = 50;
    n->state = CTL_NODE_READY;
    n->generation = 41;
    cr_assert_eq(ctl_node_set_range(n, 20000, 20099), 0);

    cr_assert_eq(ctl_inst_new(m, a, "web", 1, 2, 0, &i1), 0);
    cr_assert_eq(ctl_inst_place(m, i1, n, 0), 0);
    i1->state = DROVER__INSTANCE_STATE__ST_UP;
    i1->pid = 4242;
    i1->restarts = 3;
    i1->exit_code = 1;
    i1->exit_signal = 9;
    i1->since_ms = 1700000000999ull;
    cr_assert_eq(ctl_inst_new(m, a, "worker", 1, 1, 0, &i2), 0);
    cr_assert_eq(ctl_inst_place(m, i2, n, 0), 0);
    ctl_inst_stop(m, i2);
    cr_assert_eq(ctl_inst_new(m, a, "web", 2, 2, 0, &i3), 0);
    strcpy(i3->reason, "no ready node with free capacity");
    cr_assert_eq(apply(st, m), 0);
    cr_assert(TAILQ_EMPTY(&m->dirty_insts), "clean after a flush");

    m2 = reopen(&st);
    cr_assert_eq(ctl_map_count(m2->apps), 2);
    a2 = ctl_app_find(m2, "shop");
    cr_assert_not_null(a2);
    cr_assert_eq(a2->created_ms, 111);
    cr_assert_eq(a2->current, 2);
    cr_assert_eq(ctl_app_find(m2, "blog")->current, 0);
    cr_assert_eq(a2->nconfig, 4);
    cr_assert_str_eq(ctl_config_find(a2, "DATABASE_URL")->value, "postgres://u:p@h/db?x=1");
    cr_assert_str_eq(ctl_config_find(a2, "EMPTY")->value, "");
    cr_assert_str_eq(ctl_config_find(a2, "MULTI")->value, "line one\nline two");

    cr_assert_eq(a2->nreleases, 2);
    r = ctl_release_get(a2, 1);
    cr_assert_eq(r->version, 1);
    cr_assert_str_eq(r->slug_sha256, a->releases[0]->slug_sha256);
    cr_assert_eq(r->slug_size, 1234);
    cr_assert_str_eq(r->description, "Deploy with \"quotes\", commas and = signs");
    cr_assert_eq(r->created_ms, 1700000000001ull);
    cr_assert_str_eq(r->status, "succeeded");
    cr_assert_eq(r->nconfig, 3, "v1 snapshot has no EXTRA");
    cr_assert_eq(r->ntypes, 2);
    cr_assert_str_eq(r->types[0].name, "web");
    cr_assert_str_eq(r->types[0].command, "./web --port $PORT");
    cr_assert_str_eq(r->types[1].command, "./work --queue=default");
    r = ctl_release_get(a2, 2);
    cr_assert_eq(r->nconfig, 4);
    cr_assert_str_eq(r->types[0].command, "./web2");

    cr_assert_eq(a2->nformation, 2);
    cr_assert_eq(ctl_formation_find(a2, "web")->quantity, 3);
    cr_assert_eq(ctl_formation_find(a2, "web")->grace_ms, 12345);
    cr_assert_str_eq(ctl_formation_find(a2, "web")->health, "tcp");
    cr_assert_str_eq(ctl_formation_find(a2, "worker")->health, "none");
    cr_assert_eq(ctl_formation_find(a2, "worker")->boot_timeout_ms, 60000);

    n2 = ctl_node_find(m2, "node-1.example");
    cr_assert_not_null(n2);
    cr_assert_str_eq(n2->address, "198.18.0.5");
    cr_assert_str_eq(n2->boot_id, "boot-abc");
    cr_assert_eq(n2->capacity, 50);
    cr_assert_eq(n2->state, CTL_NODE_READY);
    cr_assert_eq(n2->port_min, 20000);
    cr_assert_eq(n2->port_max, 20099);
    cr_assert_eq(n2->generation, n->generation, "generation survives a restart");
    cr_assert_eq(n2->last_seen_ms, 5555, "fresh grace period from the load time");
    cr_assert_eq(n2->ninst, 2);
    cr_assert_eq(n2->nlive, 1);

    j = ctl_inst_find(m2, i1->id);
    cr_assert_not_null(j);
    cr_assert_eq(j->app, a2);
    cr_assert_str_eq(j->type, "web");
    cr_assert_eq(j->idx, 1);
    cr_assert_eq(j->release, 2);
    cr_assert_eq(j->node, n2);
    cr_assert_eq(j->port, i1->port);
    cr_assert(ctl_ports_held(n2->ports, j->port));
    cr_assert_eq(j->state, DROVER__INSTANCE_STATE__ST_UP);
    cr_assert_eq(j->pid, 4242);
    cr_assert_eq(j->restarts, 3);
    cr_assert_eq(j->exit_code, 1);
    cr_assert_eq(j->exit_signal, 9);
    cr_assert_eq(j->since_ms, 1700000000999ull);
    j = ctl_inst_find(m2, i2->id);
    cr_assert(j->stopping);
    cr_assert_str_eq(ctl_inst_state_name(j), "draining");
    j = ctl_inst_find(m2, i3->id);
    cr_assert_null(j->node);
    cr_assert(j->unplaced);
    cr_assert_str_eq(j->reason, "no ready node with free capacity");
    cr_assert(m2->capacity_changed, "unplaced instances get another try");
    cr_assert_eq(m2->next_id, m->next_id);

    ctl_model_free(m);
    ctl_model_free(m2);
    OPS->close(st);
}

CASE(deletes_stay_deleted_and_ids_are_not_reused, 5443)
{
    struct ctl_store *st = NULL;
    struct ctl_model *m = ctl_model_new(), *m2;
    struct ctl_app *a = NULL;
    struct ctl_instance *x = NULL, *y = NULL, *z = NULL;
    uint64_t xid, yid;

    cr_assert_eq(OPS->open(WHERE, &st), 0);
    cr_assert_eq(ctl_app_add(m, "shop", 1, &a), 0);
    cr_assert_eq(ctl_inst_new(m, a, "web", 1, 1, 0, &x), 0);
    cr_assert_eq(ctl_inst_new(m, a, "web", 2, 1, 0, &y), 0);
    xid = x->id;
    yid = y->id;
    cr_assert_eq(apply(st, m), 0);
    ctl_inst_delete(m, y);
    cr_assert_eq(ctl_config_set(a, "K", "v"), 0);
    ctl_app_touch(m, a, false, true, false);
    cr_assert_eq(apply(st, m), 0);
    ctl_config_unset(a, "K");
    ctl_app_touch(m, a, false, true, false);
    cr_assert_eq(apply(st, m), 0);

    m2 = reopen(&st);
    cr_assert_not_null(ctl_inst_find(m2, xid));
    cr_assert_null(ctl_inst_find(m2, yid), "deleted instance came back");
    cr_assert_eq(ctl_app_find(m2, "shop")->nconfig, 0, "unset config came back");
    cr_assert_eq(ctl_inst_new(m2, ctl_app_find(m2, "shop"), "web", 2, 1, 0, &z), 0);
    cr_assert_gt(z->id, yid, "instance ids are never reused");
    cr_assert_eq(apply(st, m2), 0);
    ctl_model_free(m);
    ctl_model_free(m2);
    OPS->close(st);
}

CASE(unflushed_changes_are_not_there, 5444)
{
    struct ctl_store *st = NULL;
    struct ctl_model *m = ctl_model_new(), *m2;
    struct ctl_app *a = NULL;

    cr_assert_eq(OPS->open(WHERE, &st), 0);
    cr_assert_eq(ctl_app_add(m, "shop", 1, &a), 0);
    cr_assert_eq(apply(st, m), 0);
    cr_assert_eq(ctl_app_add(m, "later", 2, &a), 0);
    m2 = reopen(&st);
    cr_assert_not_null(ctl_app_find(m2, "shop"));
    cr_assert_null(ctl_app_find(m2, "later"));
    ctl_model_free(m);
    ctl_model_free(m2);
    OPS->close(st);
}

static struct ctl_node *
stored_node(struct ctl_model *m, const char *name)
{
    struct ctl_node *n = NULL;

    cr_assert_eq(ctl_node_add(m, name, &n), 0);
    strcpy(n->address, "198.18.0.9");
    strcpy(n->boot_id, "boot");
    n->capacity = 5;
    cr_assert_eq(ctl_node_set_range(n, 5000, 5009), 0);
    return n;
}

/* A controller restart keeps what operators chose and what was down; it
 * gives the rest a grace period; a leaving agent's node stays draining. */
CASE(node_states_survive_a_restart, 5445)
{
    struct ctl_store *st = NULL;
    struct ctl_model *m = ctl_model_new(), *m2;
    struct ctl_node *n;

    cr_assert_eq(OPS->open(WHERE, &st), 0);
    ctl_node_update(m, stored_node(m, "up"), false, CTL_NODE_READY, false);
    ctl_node_update(m, stored_node(m, "cordoned"), false, CTL_NODE_CORDONED, false);
    ctl_node_update(m, stored_node(m, "drained"), false, CTL_NODE_DRAINING, false);
    ctl_node_update(m, stored_node(m, "down"), true, CTL_NODE_READY, false);
    ctl_node_update(m, stored_node(m, "down-cordoned"), true, CTL_NODE_CORDONED, false);
    ctl_node_update(m, stored_node(m, "leaving"), false, CTL_NODE_READY, true);
    cr_assert_eq(apply(st, m), 0);

    m2 = reopen(&st);
    n = ctl_node_find(m2, "up");
    cr_assert_eq(n->state, CTL_NODE_READY);
    cr_assert_eq(n->last_seen_ms, 5555, "a grace period from the load");
    cr_assert_eq(ctl_node_find(m2, "cordoned")->state, CTL_NODE_CORDONED);
    cr_assert_eq(ctl_node_find(m2, "drained")->state, CTL_NODE_DRAINING);
    cr_assert_eq(ctl_node_find(m2, "drained")->admin, CTL_NODE_DRAINING);
    cr_assert_eq(ctl_node_find(m2, "down")->state, CTL_NODE_DOWN, "down stays down");
    n = ctl_node_find(m2, "down-cordoned");
    cr_assert_eq(n->state, CTL_NODE_DOWN);
    cr_assert_eq(n->admin, CTL_NODE_CORDONED, "cordon survives being down");
    n = ctl_node_find(m2, "leaving");
    cr_assert_eq(n->state, CTL_NODE_DRAINING, "a leaving node gets nothing new meanwhile");
    cr_assert_eq(n->admin, CTL_NODE_READY);
    cr_assert(n->leaving);
    cr_assert_eq(m2->ndraining, 2);
    ctl_model_free(m);
    ctl_model_free(m2);
    OPS->close(st);
}

/* An instance written again and again (placed, then each report): the last
 * write is what a restart finds, in the process that wrote it and in one
 * that loaded it (SQLite updates such a row in place). */
CASE(an_instance_written_again_keeps_its_last_state, 5453)
{
    struct ctl_store *st = NULL;
    struct ctl_model *m = ctl_model_new(), *m2, *m3;
    struct ctl_app *a = NULL;
    struct ctl_node *n;
    struct ctl_instance *in = NULL, *j;
    uint64_t id;

    cr_assert_eq(OPS->open(WHERE, &st), 0);
    cr_assert_eq(ctl_app_add(m, "shop", 1, &a), 0);
    n = stored_node(m, "n1");
    cr_assert_eq(ctl_inst_new(m, a, "web", 1, 1, 0, &in), 0);
    id = in->id;
    cr_assert_not(in->stored);
    cr_assert_eq(apply(st, m), 0);
    cr_assert(in->stored, "written by a commit");
    cr_assert_eq(ctl_inst_place(m, in, n, 0), 0);
    cr_assert_eq(apply(st, m), 0);
    ctl_inst_set_state(m, in, DROVER__INSTANCE_STATE__ST_STARTING, 100);
    cr_assert_eq(apply(st, m), 0);
    ctl_inst_touch(m, in);
    in->state = DROVER__INSTANCE_STATE__ST_UP;
    in->pid = 777;
    in->since_ms = 200;
    strcpy(in->reason, "healthy");
    cr_assert_eq(apply(st, m), 0);

    m2 = reopen(&st);
    j = ctl_inst_find(m2, id);
    cr_assert_not_null(j);
    cr_assert(j->stored, "a loaded instance has its row");
    cr_assert_not_null(j->node);
    cr_assert_str_eq(j->node->name, "n1");
    cr_assert_eq(j->port, in->port);
    cr_assert_eq(j->state, DROVER__INSTANCE_STATE__ST_UP);
    cr_assert_eq(j->pid, 777);
    cr_assert_eq(j->since_ms, 200);
    cr_assert_str_eq(j->reason, "healthy");
    /* Written again by the process that loaded it. */
    ctl_inst_touch(m2, j);
    j->state = DROVER__INSTANCE_STATE__ST_CRASHED;
    j->exit_code = 3;
    j->restarts = 1;
    cr_assert_eq(apply(st, m2), 0);

    m3 = reopen(&st);
    j = ctl_inst_find(m3, id);
    cr_assert_not_null(j);
    cr_assert_eq(j->state, DROVER__INSTANCE_STATE__ST_CRASHED);
    cr_assert_eq(j->exit_code, 3);
    cr_assert_eq(j->restarts, 1);
    cr_assert_str_eq(j->type, "web");
    cr_assert_eq(j->idx, 1);
    ctl_model_free(m);
    ctl_model_free(m2);
    ctl_model_free(m3);
    OPS->close(st);
}

/* A placement's new rows, many in one change set (SQLite writes them 32 to
 * a statement): each comes back with its own values, whether it went in a
 * group of 32, among the few left over, or one by one after a restart mark
 * or beside a one-off. */
CASE(many_new_instances_come_back_each_with_its_own_row, 5454)
{
    enum { N = 75 };
    struct ctl_store *st = NULL;
    struct ctl_model *m = ctl_model_new(), *m2;
    struct ctl_app *a = NULL, *b = NULL;
    struct ctl_node *n1, *n2;
    struct ctl_instance *in[N], *j;

    cr_assert_eq(OPS->open(WHERE, &st), 0);
    cr_assert_eq(ctl_app_add(m, "shop", 1, &a), 0);
    cr_assert_eq(ctl_app_add(m, "blog", 2, &b), 0);
    n1 = stored_node(m, "n1");
    n2 = stored_node(m, "n2");
    cr_assert_eq(ctl_node_set_range(n1, 5000, 5099), 0);
    cr_assert_eq(ctl_node_set_range(n2, 6000, 6099), 0);
    cr_assert_eq(apply(st, m), 0);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(ctl_inst_new(m, i % 3 == 0 ? b : a, i % 2 ? "web" : "worker", (uint32_t)i + 1,
                                  (uint32_t)(i % 4) + 1, 0, &in[i]),
                     0);
        if (i == 20) /* a one-off's row is written with its own */
            cr_assert_eq(ctl_inst_make_oneoff(m, in[i], "rake db:migrate", "web"), 0);
        if (i % 5 != 0) /* every fifth one waits for a node */
            cr_assert_eq(ctl_inst_place(m, in[i], i % 2 ? n1 : n2, 0), 0);
        in[i]->state = i % 2 ? DROVER__INSTANCE_STATE__ST_STARTING : DROVER__INSTANCE_STATE__ST_UP;
        in[i]->pid = 1000 + i;
        in[i]->restarts = (uint32_t)i % 7;
        in[i]->exit_code = i % 11;
        in[i]->exit_signal = i % 13;
        in[i]->since_ms = 1700000000000ull + (uint64_t)i;
        snprintf(in[i]->reason, sizeof(in[i]->reason), "reason %d", i);
    }
    ctl_inst_set_restart(m, in[50], true); /* the ones after it: one by one */
    cr_assert_eq(apply(st, m), 0);

    m2 = reopen(&st);
    for (int i = 0; i < N; i++) {
        j = ctl_inst_find(m2, in[i]->id);
        cr_assert_not_null(j, "instance %d has no row", i);
        cr_assert_str_eq(j->app->name, in[i]->app->name, "instance %d", i);
        cr_assert_str_eq(j->type, in[i]->type, "instance %d", i);
        cr_assert_eq(j->idx, (uint32_t)i + 1, "instance %d", i);
        cr_assert_eq(j->release, in[i]->release, "instance %d", i);
        if (in[i]->node == NULL) {
            cr_assert_null(j->node, "instance %d", i);
        } else {
            cr_assert_not_null(j->node, "instance %d", i);
            cr_assert_str_eq(j->node->name, in[i]->node->name, "instance %d", i);
        }
        cr_assert_eq(j->port, in[i]->port, "instance %d", i);
        cr_assert_eq(j->state, in[i]->state, "instance %d", i);
        cr_assert_eq(j->pid, 1000 + i, "instance %d", i);
        cr_assert_eq(j->restarts, (uint32_t)i % 7, "instance %d", i);
        cr_assert_eq(j->exit_code, i % 11, "instance %d", i);
        cr_assert_eq(j->exit_signal, i % 13, "instance %d", i);
        cr_assert_eq(j->since_ms, 1700000000000ull + (uint64_t)i, "instance %d", i);
        cr_assert_str_eq(j->reason, in[i]->reason, "instance %d", i);
        cr_assert_eq(j->oneoff, i == 20, "instance %d", i);
        cr_assert_eq(j->restart, i == 50, "instance %d", i);
    }
    cr_assert_str_eq(ctl_inst_find(m2, in[20]->id)->command, "rake db:migrate");
    ctl_model_free(m);
    ctl_model_free(m2);
    OPS->close(st);
}

/* Should a row the model believes written be missing (removed behind its
 * back), the next write inserts it whole rather than updating nothing. */
Test(store, a_missing_row_is_written_whole, .init = setup, .fini = teardown, .timeout = 5)
{
    struct ctl_store *st = NULL;
    struct ctl_model *m = ctl_model_new(), *m2;
    struct ctl_app *a = NULL;
    struct ctl_instance *in = NULL, *j;
    sqlite3 *db;

    cr_assert_eq(OPS->open(WHERE, &st), 0);
    cr_assert_eq(ctl_app_add(m, "shop", 1, &a), 0);
    cr_assert_eq(ctl_inst_new(m, a, "worker", 2, 1, 0, &in), 0);
    cr_assert_eq(apply(st, m), 0);
    cr_assert(in->stored);
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "DELETE FROM instances", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    ctl_inst_touch(m, in);
    in->state = DROVER__INSTANCE_STATE__ST_UP;
    cr_assert_eq(apply(st, m), 0);

    m2 = reopen(&st);
    j = ctl_inst_find(m2, in->id);
    cr_assert_not_null(j, "the row was not written again");
    cr_assert_eq(j->state, DROVER__INSTANCE_STATE__ST_UP);
    cr_assert_str_eq(j->type, "worker");
    cr_assert_eq(j->idx, 2);
    ctl_model_free(m);
    ctl_model_free(m2);
    OPS->close(st);
}

/* A database from before the admin column gains it in place. */
Test(store, an_older_database_is_migrated, .init = setup, .fini = teardown, .timeout = 5)
{
    struct ctl_store *st = NULL;
    struct ctl_model *m = ctl_model_new(), *m2;
    sqlite3 *db = NULL;

    cr_assert_eq(OPS->open(WHERE, &st), 0);
    ctl_node_update(m, stored_node(m, "old"), false, CTL_NODE_CORDONED, false);
    cr_assert_eq(apply(st, m), 0);
    OPS->close(st);
    st = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "ALTER TABLE nodes DROP COLUMN admin;", NULL, NULL, NULL),
                 SQLITE_OK);
    sqlite3_close(db);

    cr_assert_eq(OPS->open(WHERE, &st), 0);
    m2 = reopen(&st);
    cr_assert_not_null(ctl_node_find(m2, "old"));
    /* Controllers without the column had no cordon or drain: ready. */
    cr_assert_eq(ctl_node_find(m2, "old")->admin, CTL_NODE_READY);
    cr_assert_eq(ctl_node_find(m2, "old")->state, CTL_NODE_READY);
    ctl_node_update(m2, ctl_node_find(m2, "old"), false, CTL_NODE_DRAINING, false);
    cr_assert_eq(apply(st, m2), 0);
    ctl_model_free(m2);
    m2 = reopen(&st);
    cr_assert_eq(ctl_node_find(m2, "old")->admin, CTL_NODE_DRAINING);
    ctl_model_free(m);
    ctl_model_free(m2);
    OPS->close(st);
}

/* Fencing (issue 16): once a newer leader has bumped the term, a write of
 * the older term fails with -ESTALE and changes nothing (drains too). */
static void
fence_init(void)
{
    setup_pg(5449);
}

static void
set_term(const char *term)
{
    char err[256], sql[64];
    struct pg_conn *c = ctl_pg_connect(WHERE, NULL, err, sizeof(err));

    cr_assert_not_null(c, "%s", err);
    snprintf(sql, sizeof(sql), "UPDATE leader SET term = %s", term);
    PQclear(PQexec(c, sql));
    PQfinish(c);
}

Test(store_pg, a_write_from_an_older_term_is_fenced, .init = fence_init, .fini = teardown_pg,
     .timeout = 60)
{
    struct ctl_store *old = NULL, *cur = NULL;
    struct ctl_model *m = ctl_model_new(), *m2 = ctl_model_new();
    struct ctl_app *a = NULL;

    cr_assert_eq(OPS->open(WHERE, &old), 0);
    set_term("1");
    ctl_store_pg_set_term(old, 1);
    cr_assert_eq(ctl_app_add(m, "shop", 1, &a), 0);
    cr_assert_eq(apply(old, m), 0, "the leader of the stored term writes");

    set_term("2"); /* another controller took the lead */
    cr_assert_eq(ctl_app_add(m, "late", 2, &a), 0);
    cr_assert_eq(OPS->apply(old, m), -ESTALE);
    cr_assert(strstr(OPS->errmsg(old), "fenced") != NULL, "%s", OPS->errmsg(old));
    cr_assert_eq(OPS->drain_put(old, "d.1", "shop", "syslog://x:514", 1), -ESTALE);

    cr_assert_eq(OPS->open(WHERE, &cur), 0);
    ctl_store_pg_set_term(cur, 2);
    cr_assert_eq(OPS->load(cur, m2, 1), 0);
    cr_assert_not_null(ctl_app_find(m2, "shop"));
    cr_assert_null(ctl_app_find(m2, "late"), "a fenced write took effect");
    cr_assert_eq(ctl_map_count(m2->apps), 1);
    OPS->close(old);
    OPS->close(cur);
    ctl_model_free(m);
    ctl_model_free(m2);
}

/* Two controllers starting at once on an empty database: the migration runs
 * once, under its advisory lock, and both open the same schema. */
static void
migrate_init(void)
{
    setup_pg(5450);
}

static void *
open_one(void *arg)
{
    struct ctl_store **st = arg;

    return (void *)(intptr_t)OPS->open(WHERE, st);
}

Test(store_pg, two_controllers_starting_at_once_migrate_once, .init = migrate_init,
     .fini = teardown_pg, .timeout = 60)
{
    struct ctl_store *st[4] = {NULL};
    pthread_t th[4];
    void *rc;
    int i;

    for (i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, open_one, &st[i]), 0);
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], &rc);
        cr_assert_eq((intptr_t)rc, 0, "open %d failed", i);
    }
    for (i = 0; i < 4; i++)
        OPS->close(st[i]);
}
