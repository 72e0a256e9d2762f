/* SPDX-License-Identifier: MIT */
/*
 * A version 1 database (instance states as protobuf enum integers) opens in
 * a version 2 controller: migrated in place, every instance comes back with
 * the same state, one-offs and restart marks survive, and the column holds
 * names from then on.
 */
#include <criterion/criterion.h>
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
    strcpy(dir, "/tmp/drover-store-v1-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/drover.db", dir);
}

static void
teardown(void)
{
    rm_rf(dir);
}

TestSuite(store_v1, .init = setup, .fini = teardown);

/* Turn a fresh database back into version 1's format, byte for byte the
 * instances table as version 1 declared it. */
static void
downgrade(void)
{
    static const char sql[] =
        "PRAGMA foreign_keys=OFF;"
        "BEGIN;"
        "CREATE TABLE v1(id INTEGER PRIMARY KEY,"
        " app TEXT NOT NULL REFERENCES apps(name), type TEXT NOT NULL, idx INTEGER NOT NULL,"
        " release INTEGER NOT NULL, node TEXT, port INTEGER NOT NULL, state INTEGER NOT NULL,"
        " stopping INTEGER NOT NULL, restarts INTEGER NOT NULL, pid INTEGER NOT NULL,"
        " exit_code INTEGER NOT NULL, exit_signal INTEGER NOT NULL, since_ms INTEGER NOT NULL,"
        " reason TEXT NOT NULL);"
        "INSERT INTO v1 SELECT id, app, type, idx, release, node, port,"
        " CASE state WHEN 'pending' THEN 1 WHEN 'starting' THEN 2 WHEN 'up' THEN 3"
        " WHEN 'draining' THEN 4 WHEN 'stopped' THEN 5 WHEN 'crashed' THEN 6 WHEN 'lost' THEN 7"
        " WHEN 'failed' THEN 8 ELSE 0 END,"
        " stopping, restarts, pid, exit_code, exit_signal, since_ms, reason FROM instances;"
        "DROP TABLE instances;"
        "ALTER TABLE v1 RENAME TO instances;"
        "CREATE INDEX instances_app ON instances(app);"
        "UPDATE meta SET value = 1 WHERE key = 'schema_version';"
        "COMMIT;";
    sqlite3 *db = NULL;
    char *err = NULL;

    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, &err), SQLITE_OK, "%s", err);
    sqlite3_close(db);
}

static void
column_is(const char *sql, const char *want)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;

    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
    cr_assert_str_eq((const char *)sqlite3_column_text(q, 0), want, "%s", sql);
    sqlite3_finalize(q);
    sqlite3_close(db);
}

Test(store_v1, an_old_database_is_migrated_with_the_same_states, .timeout = 5)
{
    static const Drover__InstanceState states[] = {
        DROVER__INSTANCE_STATE__ST_PENDING, DROVER__INSTANCE_STATE__ST_STARTING,
        DROVER__INSTANCE_STATE__ST_UP,      DROVER__INSTANCE_STATE__ST_CRASHED,
        DROVER__INSTANCE_STATE__ST_LOST,    DROVER__INSTANCE_STATE__ST_FAILED,
    };
    struct ctl_db *st = NULL;
    struct ctl_model *m = ctl_model_new(), *m2 = ctl_model_new();
    struct ctl_app *a = NULL;
    struct ctl_node *n = NULL;
    struct ctl_instance *in;
    size_t i;

    cr_assert_eq(ctl_store_open(path, &st), 0);
    cr_assert_eq(ctl_app_add(m, "shop", 1, &a), 0);
    cr_assert_eq(ctl_node_add(m, "n1", &n), 0);
    cr_assert_eq(ctl_node_set_range(n, 5000, 5099), 0);
    for (i = 0; i < ARRAY_SIZE(states); i++) {
        cr_assert_eq(ctl_inst_new(m, a, "web", (uint32_t)i + 1, 0, 0, &in), 0);
        cr_assert_eq(ctl_inst_place(m, in, n, 0), 0);
        ctl_inst_set_state(m, in, states[i], 100);
    }
    ctl_inst_find(m, 3)->restart = true;
    cr_assert_eq(ctl_inst_new(m, a, "run", 1, 0, 0, &in), 0); /* id 7 */
    in->oneoff = true;
    in->command = strdup("rake db:migrate");
    cr_assert_eq(ctl_store_flush(st, m), 0);
    ctl_store_close(st);
    column_is("SELECT state FROM instances WHERE id = 3", "up");
    downgrade();
    column_is("SELECT typeof(state) FROM instances WHERE id = 3", "integer");

    cr_assert_eq(ctl_store_open(path, &st), 0);
    cr_assert_eq(ctl_store_load(st, m2, 5), 0);
    for (i = 0; i < ARRAY_SIZE(states); i++) {
        in = ctl_inst_find(m2, i + 1);
        cr_assert_not_null(in);
        cr_assert_eq(in->state, states[i], "instance %zu: %s, not %s", i + 1,
                     wire_state_name(in->state), wire_state_name(states[i]));
        cr_assert_eq(in->node, ctl_node_find(m2, "n1"));
    }
    cr_assert(ctl_inst_find(m2, 3)->restart, "the restart mark survives");
    in = ctl_inst_find(m2, 7);
    cr_assert(in != NULL && in->oneoff && strcmp(in->command, "rake db:migrate") == 0,
              "the one-off survives");
    ctl_store_close(st);
    column_is("SELECT value FROM meta WHERE key = 'schema_version'", "2");
    column_is("SELECT state FROM instances WHERE id = 6", "failed");
    column_is("SELECT typeof(state) FROM instances WHERE id = 1", "text");
    ctl_model_free(m);
    ctl_model_free(m2);
}

/* A database from a newer controller is refused, not misread. */
Test(store_v1, a_newer_database_is_refused, .timeout = 5)
{
    struct ctl_db *st = NULL;
    struct ctl_model *m = ctl_model_new();
    sqlite3 *db = NULL;

    cr_assert_eq(ctl_store_open(path, &st), 0);
    ctl_store_close(st);
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "UPDATE meta SET value = 3 WHERE key = 'schema_version'", NULL,
                              NULL, NULL),
                 SQLITE_OK);
    sqlite3_close(db);
    cr_assert_eq(ctl_store_open(path, &st), 0);
    cr_assert_lt(ctl_store_load(st, m, 5), 0);
    ctl_store_close(st);
    ctl_model_free(m);
}
