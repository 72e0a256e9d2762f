/* SPDX-License-Identifier: MIT */
/*
 * Issue 12's state in the store: an instance marked for restart stays
 * marked across a controller restart and loses the mark when it is cleared;
 * an app being destroyed is still being destroyed after a restart; a
 * destroyed app and a removed node leave no row behind, and the name can be
 * used again; the release phase's deploy state comes back as
 * "releasing".
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "log.h"

static char dir[64], path[128];

static void
setup(void)
{
    log_set_level(LOG_ERROR);
    strcpy(dir, "/tmp/drover-lcstore-test-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/drover.db", dir);
}

static void
teardown(void)
{
    rm_rf(dir);
}

TestSuite(lifecycle_store, .init = setup, .fini = teardown, .timeout = 5);

static struct ctl_model *
reopen(struct ctl_db **st, struct ctl_model *old)
{
    struct ctl_model *m = ctl_model_new();

    ctl_model_free(old);
    ctl_store_close(*st);
    cr_assert_eq(ctl_store_open(path, st), 0);
    cr_assert_eq(ctl_store_load(*st, m, 5555), 0);
    return m;
}

Test(lifecycle_store, restart_marks_destroyed_apps_and_removed_nodes)
{
    struct ctl_db *st = NULL;
    struct ctl_model *m = ctl_model_new();
    struct ctl_app *a = NULL, *b = NULL;
    struct ctl_node *n = NULL, *gone = NULL;
    struct ctl_instance *i1 = NULL, *i2 = NULL;

    cr_assert_eq(ctl_store_open(path, &st), 0);
    cr_assert_eq(ctl_store_load(st, m, 1), 0);
    cr_assert_eq(ctl_app_add(m, "shop", 1, &a), 0);
    cr_assert_eq(ctl_app_add(m, "gone", 1, &b), 0);
    cr_assert_eq(ctl_node_add(m, "n1", &n), 0);
    cr_assert_eq(ctl_node_set_range(n, 5000, 5010), 0);
    ctl_node_touch(m, n);
    cr_assert_eq(ctl_node_add(m, "n2", &gone), 0);
    cr_assert_eq(ctl_node_set_range(gone, 5000, 5010), 0);
    ctl_node_touch(m, gone);
    a->deploy.state = CTL_DEPLOY_RELEASING;
    a->deploy.release = 3;
    cr_assert_eq(ctl_inst_new(m, a, "web", 1, 0, 0, &i1), 0);
    cr_assert_eq(ctl_inst_new(m, a, "web", 2, 0, 0, &i2), 0);
    cr_assert_eq(ctl_inst_place(m, i1, n, 0), 0);
    cr_assert_eq(ctl_inst_place(m, i2, n, 0), 0);
    i1->restart = true;
    cr_assert_eq(ctl_config_set(b, "K", "v"), 0);
    ctl_app_touch(m, b, true, true, false);
    {
        uint32_t stopped = 9;

        cr_assert_eq(ctl_destroy(m, b, &stopped), 0);
        cr_assert_eq(stopped, 0);
    }
    cr_assert_eq(ctl_store_flush(st, m), 0);

    m = reopen(&st, m);
    a = ctl_app_find(m, "shop");
    cr_assert_not_null(a);
    cr_assert_eq(a->deploy.state, CTL_DEPLOY_RELEASING);
    cr_assert_eq(m->ndeploying, 1);
    i1 = i2 = NULL;
    for (struct ctl_instance *in = LIST_FIRST(&a->instances); in; in = LIST_NEXT(in, app_link))
        *(in->idx == 1 ? &i1 : &i2) = in;
    cr_assert(i1 != NULL && i1->restart, "the restart mark was lost");
    cr_assert(i2 != NULL && !i2->restart);
    cr_assert(ctl_app_find(m, "gone")->destroying, "apps:destroy was forgotten by a restart");
    cr_assert_eq(m->ndestroying, 1);

    /* Clear the mark; destroy "gone" (no instances); remove node n2. */
    i1->restart = false;
    ctl_inst_touch(m, i1);
    cr_assert_eq(ctl_app_remove(m, ctl_app_find(m, "gone")), 0);
    cr_assert_eq(ctl_node_remove(m, ctl_node_find(m, "n2")), 0);
    cr_assert_eq(ctl_app_remove(m, a), -EBUSY, "an app with instances cannot go");
    cr_assert_eq(ctl_store_flush(st, m), 0);

    m = reopen(&st, m);
    a = ctl_app_find(m, "shop");
    cr_assert_not_null(a);
    for (struct ctl_instance *in = LIST_FIRST(&a->instances); in; in = LIST_NEXT(in, app_link))
        cr_assert(!in->restart, "a cleared restart mark came back");
    cr_assert_null(ctl_app_find(m, "gone"));
    cr_assert_null(ctl_node_find(m, "n2"));
    cr_assert_not_null(ctl_node_find(m, "n1"));
    cr_assert_eq(m->nnodes, 1);

    /* The name is free: a new app with no config. */
    cr_assert_eq(ctl_app_add(m, "gone", 2, &b), 0);
    cr_assert_eq(b->nconfig, 0);
    ctl_app_touch(m, b, true, false, false);
    cr_assert_eq(ctl_store_flush(st, m), 0);
    m = reopen(&st, m);
    cr_assert_not_null(ctl_app_find(m, "gone"));
    cr_assert_eq(ctl_app_find(m, "gone")->nconfig, 0);
    ctl_model_free(m);
    ctl_store_close(st);
}

/* The store skips the per-row DELETE of restart marks while it knows the
 * table empty (store_sqlite.c): within one session, a mark written and
 * then cleared is still deleted, and a mark survives the writes of other
 * instances. */
Test(lifecycle_store, a_restart_mark_cleared_in_the_same_session_is_deleted)
{
    struct ctl_db *st = NULL;
    struct ctl_model *m = ctl_model_new();
    struct ctl_app *a = NULL;
    struct ctl_node *n = NULL;
    struct ctl_instance *i1 = NULL, *i2 = NULL;

    cr_assert_eq(ctl_store_open(path, &st), 0);
    cr_assert_eq(ctl_store_load(st, m, 1), 0);
    cr_assert_eq(ctl_app_add(m, "shop", 1, &a), 0);
    cr_assert_eq(ctl_node_add(m, "n1", &n), 0);
    cr_assert_eq(ctl_node_set_range(n, 5000, 5010), 0);
    ctl_node_touch(m, n);
    cr_assert_eq(ctl_inst_new(m, a, "web", 1, 0, 0, &i1), 0);
    cr_assert_eq(ctl_inst_new(m, a, "web", 2, 0, 0, &i2), 0);
    cr_assert_eq(ctl_inst_place(m, i1, n, 0), 0);
    cr_assert_eq(ctl_inst_place(m, i2, n, 0), 0);
    cr_assert_eq(ctl_store_flush(st, m), 0); /* no mark: the table is empty */
    i1->restart = true;
    ctl_inst_touch(m, i1);
    cr_assert_eq(ctl_store_flush(st, m), 0);
    i2->pid = 42; /* another instance written: i1's mark stays */
    ctl_inst_touch(m, i2);
    cr_assert_eq(ctl_store_flush(st, m), 0);
    m = reopen(&st, m);
    a = ctl_app_find(m, "shop");
    i1 = i2 = NULL;
    for (struct ctl_instance *in = LIST_FIRST(&a->instances); in; in = LIST_NEXT(in, app_link))
        *(in->idx == 1 ? &i1 : &i2) = in;
    cr_assert(i1 != NULL && i1->restart, "the mark was deleted by another instance's write");
    cr_assert(i2 != NULL && !i2->restart);
    cr_assert_eq(i2->pid, 42);
    /* Cleared, in the session that read it, then once more after a write
     * of its own: the row goes. */
    i1->restart = false;
    ctl_inst_touch(m, i1);
    cr_assert_eq(ctl_store_flush(st, m), 0);
    i1->restart = true;
    ctl_inst_touch(m, i1);
    cr_assert_eq(ctl_store_flush(st, m), 0);
    i1->restart = false;
    ctl_inst_touch(m, i1);
    cr_assert_eq(ctl_store_flush(st, m), 0);
    m = reopen(&st, m);
    a = ctl_app_find(m, "shop");
    for (struct ctl_instance *in = LIST_FIRST(&a->instances); in; in = LIST_NEXT(in, app_link))
        cr_assert(!in->restart, "a cleared restart mark came back");
    ctl_model_free(m);
    ctl_store_close(st);
}
