/* SPDX-License-Identifier: MIT */
/*
 * store_sqlite.c: the controller's state in SQLite, written through from the
 * model; the embedded default behind the store interface (store.h).
 *
 * Settings, and why (README, "Controller restart"):
 *   journal_mode=WAL    a committed transaction is in the WAL file before
 *                       COMMIT returns, so it survives a SIGKILL of the
 *                       process at any moment: nothing the controller
 *                       acknowledged is lost, and a transaction cut short by
 *                       the kill is rolled back whole when the WAL is next
 *                       read (there is no half-applied request).
 *   synchronous=NORMAL  no fsync per commit (only at checkpoints). That trades
 *                       durability across a power loss or kernel crash for not
 *                       blocking the loop on an fsync at every request; the
 *                       database itself stays consistent either way (the last
 *                       few commits may be missing, never half there).
 *   foreign_keys=ON     config, releases, formations and instances cannot
 *                       outlive their app.
 *   wal_autocheckpoint=0 checkpoints (which do fsync) run on a second
 *                       connection in the thread pool every few seconds
 *                       (sq_start), never on the loop thread.
 *
 * Loading gives every node that was not down a fresh grace period (its last
 * sync counts as now): the controller's own absence is not the nodes'. A
 * node that was down stays down until it syncs. A node's admin state (the
 * operator's cordon or drain) is its own column, so that it survives the
 * node going down and coming back.
 *
 * apply writes what the model marked dirty in one transaction
 * (BEGIN IMMEDIATE ... COMMIT), so one request is one commit however many
 * instances it placed. Release config snapshots and process types are rows
 * of their own tables, so the database stays readable with sqlite3(1).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "ctl.h"
#include "log.h"
#include "store.h"

/*
 * 2: instance states are stored by name ('up'), as node and deploy states
 * are, not as protobuf enum integers (migrate_v2 converts a version 1
 * database in place; a version 1 controller refuses a version 2 one).
 */
#define SCHEMA_VERSION 2
#define CHECKPOINT_MS 2000
/*
 * New instance rows are inserted this many to a statement (S_INST_ROWS):
 * measured (issue 15, a standalone program with this table on this
 * machine), 100,000 rows in one transaction took 1.27 us each one to a
 * statement and 0.84 us each 32 to a statement (the statement's run, its
 * reset and the B-tree's cursor move are paid once for 32 rows).
 */
#define INST_ROWS 32
#define INST_COLS 15

enum {
    S_META,
    S_APP,
    S_CONFIG_DEL,
    S_CONFIG_INS,
    S_REL_INS,
    S_REL_STATUS,
    S_RELCFG_INS,
    S_RELTYPE_INS,
    S_FORM_DEL,
    S_FORM_INS,
    S_NODE,
    S_INST,
    S_INST_UPD,
    S_INST_ROWS, /* INST_ROWS new rows at once; its SQL is made at open (inst_rows_sql) */
    S_INST_DEL,
    S_ONEOFF,
    S_RESTART,
    S_RESTART_DEL,
    S_RESTART_ANY,
    S_DESTROYING,
    S_APP_GONE,
    S_NODE_GONE,
    S_COUNT
};

#define INST_INSERT                                                                                \
    "INSERT INTO instances(id, app, type, idx, release, node, port, state, stopping, restarts, "   \
    "pid, exit_code, exit_signal, since_ms, reason) "
#define INST_UPSERT                                                                                \
    "ON CONFLICT(id) DO UPDATE SET node = excluded.node, port = excluded.port, "                   \
    "state = excluded.state, stopping = excluded.stopping, restarts = excluded.restarts, "         \
    "pid = excluded.pid, exit_code = excluded.exit_code, exit_signal = excluded.exit_signal, "     \
    "since_ms = excluded.since_ms, reason = excluded.reason"

static const char *const stmt_sql[S_COUNT] = {
    [S_META] = "INSERT INTO meta(key, value) VALUES(?1, ?2) "
               "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    [S_APP] = "INSERT INTO apps(name, created_ms, current_release, good_release, "
              "deploy_release, deploy_from, deploy_state, deploy_reason, deploy_started_ms, "
              "deploy_finished_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
              "ON CONFLICT(name) DO UPDATE SET current_release = excluded.current_release, "
              "good_release = excluded.good_release, deploy_release = excluded.deploy_release, "
              "deploy_from = excluded.deploy_from, deploy_state = excluded.deploy_state, "
              "deploy_reason = excluded.deploy_reason, "
              "deploy_started_ms = excluded.deploy_started_ms, "
              "deploy_finished_ms = excluded.deploy_finished_ms",
    [S_CONFIG_DEL] = "DELETE FROM config WHERE app = ?1",
    [S_CONFIG_INS] = "INSERT INTO config(app, key, value) VALUES(?1, ?2, ?3)",
    [S_REL_INS] = "INSERT INTO releases(app, version, slug_sha256, slug_size, description, "
                  "created_ms, status, reason) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [S_REL_STATUS] = "UPDATE releases SET status = ?3, reason = ?4 WHERE app = ?1 AND version = ?2",
    [S_RELCFG_INS] = "INSERT INTO release_config(app, version, key, value) VALUES(?1, ?2, ?3, ?4)",
    [S_RELTYPE_INS] = "INSERT INTO release_types(app, version, pos, type, command) "
                      "VALUES(?1, ?2, ?3, ?4, ?5)",
    [S_FORM_DEL] = "DELETE FROM formations WHERE app = ?1",
    [S_FORM_INS] = "INSERT INTO formations(app, type, quantity, health, grace_ms, "
                   "boot_timeout_ms, max_surge, max_unavailable, min_healthy_ms, "
                   "deploy_timeout_ms, shutdown_delay_ms, memory_bytes, cpu_milli, pids, nofile) "
                   "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    [S_NODE] = "INSERT INTO nodes(name, address, port_min, port_max, capacity, state, "
               "generation, boot_id, admin) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
               "ON CONFLICT(name) DO UPDATE SET address = excluded.address, "
               "port_min = excluded.port_min, port_max = excluded.port_max, "
               "capacity = excluded.capacity, state = excluded.state, "
               "generation = excluded.generation, boot_id = excluded.boot_id, "
               "admin = excluded.admin",
    [S_INST] = INST_INSERT "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
                           "?15) " INST_UPSERT,
    /* A row already written: what can change, in place (S_INST's update
     * part, without its insert attempt first). */
    [S_INST_UPD] = "UPDATE instances SET node = ?6, port = ?7, state = ?8, stopping = ?9, "
                   "restarts = ?10, pid = ?11, exit_code = ?12, exit_signal = ?13, "
                   "since_ms = ?14, reason = ?15 WHERE id = ?1",
    [S_INST_DEL] = "DELETE FROM instances WHERE id = ?1",
    [S_ONEOFF] = "INSERT OR IGNORE INTO oneoffs(id, command, ptype, attach, tty) "
                 "VALUES(?1, ?2, ?3, ?4, ?5)",
    [S_RESTART] = "INSERT OR IGNORE INTO restarts(id) VALUES(?1)",
    [S_RESTART_DEL] = "DELETE FROM restarts WHERE id = ?1",
    [S_RESTART_ANY] = "SELECT EXISTS(SELECT 1 FROM restarts)",
    [S_DESTROYING] = "INSERT OR IGNORE INTO destroying(app) VALUES(?1)",
    /* apps:destroy: every row of the app, children first. */
    [S_APP_GONE] = "DELETE FROM instances WHERE app = ?1;",
    [S_NODE_GONE] = "DELETE FROM nodes WHERE name = ?1",
};

/* apps:destroy, after S_APP_GONE: the rest of the app's rows, children first. */
static const char *const app_gone_sql[] = {
    "DELETE FROM destroying WHERE app = ?1",     "DELETE FROM drains WHERE app = ?1",
    "DELETE FROM release_config WHERE app = ?1", "DELETE FROM release_types WHERE app = ?1",
    "DELETE FROM releases WHERE app = ?1",       "DELETE FROM config WHERE app = ?1",
    "DELETE FROM formations WHERE app = ?1",     "DELETE FROM apps WHERE name = ?1",
};

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS apps(name TEXT PRIMARY KEY, created_ms INTEGER NOT NULL,"
    " current_release INTEGER NOT NULL DEFAULT 0, good_release INTEGER NOT NULL DEFAULT 0,"
    " deploy_release INTEGER NOT NULL DEFAULT 0, deploy_from INTEGER NOT NULL DEFAULT 0,"
    " deploy_state TEXT NOT NULL DEFAULT 'none', deploy_reason TEXT NOT NULL DEFAULT '',"
    " deploy_started_ms INTEGER NOT NULL DEFAULT 0,"
    " deploy_finished_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS config(app TEXT NOT NULL REFERENCES apps(name),"
    " key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY(app, key));"
    "CREATE TABLE IF NOT EXISTS releases(app TEXT NOT NULL REFERENCES apps(name),"
    " version INTEGER NOT NULL, slug_sha256 TEXT NOT NULL, slug_size INTEGER NOT NULL,"
    " description TEXT NOT NULL, created_ms INTEGER NOT NULL, status TEXT NOT NULL,"
    " reason TEXT NOT NULL DEFAULT '', PRIMARY KEY(app, version));"
    "CREATE TABLE IF NOT EXISTS release_config(app TEXT NOT NULL, version INTEGER NOT NULL,"
    " key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY(app, version, key),"
    " FOREIGN KEY(app, version) REFERENCES releases(app, version));"
    "CREATE TABLE IF NOT EXISTS release_types(app TEXT NOT NULL, version INTEGER NOT NULL,"
    " pos INTEGER NOT NULL, type TEXT NOT NULL, command TEXT NOT NULL,"
    " PRIMARY KEY(app, version, type),"
    " FOREIGN KEY(app, version) REFERENCES releases(app, version));"
    "CREATE TABLE IF NOT EXISTS formations(app TEXT NOT NULL REFERENCES apps(name),"
    " type TEXT NOT NULL, quantity INTEGER NOT NULL, health TEXT NOT NULL,"
    " grace_ms INTEGER NOT NULL, boot_timeout_ms INTEGER NOT NULL,"
    " max_surge TEXT NOT NULL DEFAULT '25%', max_unavailable TEXT NOT NULL DEFAULT '0',"
    " min_healthy_ms INTEGER NOT NULL DEFAULT 1000,"
    " deploy_timeout_ms INTEGER NOT NULL DEFAULT 300000,"
    " shutdown_delay_ms INTEGER NOT NULL DEFAULT 0,"
    " memory_bytes INTEGER NOT NULL DEFAULT 0, cpu_milli INTEGER NOT NULL DEFAULT 0,"
    " pids INTEGER NOT NULL DEFAULT 0, nofile INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY(app, type));"
    "CREATE TABLE IF NOT EXISTS nodes(name TEXT PRIMARY KEY, address TEXT NOT NULL,"
    " port_min INTEGER NOT NULL, port_max INTEGER NOT NULL, capacity INTEGER NOT NULL,"
    " state TEXT NOT NULL, generation INTEGER NOT NULL, boot_id TEXT NOT NULL,"
    " admin TEXT NOT NULL DEFAULT 'ready');"
    "CREATE TABLE IF NOT EXISTS instances(id INTEGER PRIMARY KEY,"
    " app TEXT NOT NULL REFERENCES apps(name), type TEXT NOT NULL, idx INTEGER NOT NULL,"
    " release INTEGER NOT NULL, node TEXT, port INTEGER NOT NULL, state TEXT NOT NULL,"
    " stopping INTEGER NOT NULL, restarts INTEGER NOT NULL, pid INTEGER NOT NULL,"
    " exit_code INTEGER NOT NULL, exit_signal INTEGER NOT NULL, since_ms INTEGER NOT NULL,"
    " reason TEXT NOT NULL);"
    /* No index on instances(app): only an app's destroy looks rows up by
     * app (one scan then), and the index cost every instance's insert a
     * third of its time (issue 15). Dropped where an older version made it. */
    "DROP INDEX IF EXISTS instances_app;"
    /* One-offs (`drover run`): what makes them one, written once. */
    "CREATE TABLE IF NOT EXISTS oneoffs(id INTEGER PRIMARY KEY"
    " REFERENCES instances(id) ON DELETE CASCADE, command TEXT NOT NULL, ptype TEXT NOT NULL,"
    " attach INTEGER NOT NULL, tty INTEGER NOT NULL);"
    /* Log drains (drains.c): a new table, so no version bump: an older
     * controller ignores it. */
    "CREATE TABLE IF NOT EXISTS drains(id TEXT PRIMARY KEY,"
    " app TEXT NOT NULL REFERENCES apps(name), url TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL, UNIQUE(app, url));"
    /* Instances `drover restart` is replacing (issue 12). */
    "CREATE TABLE IF NOT EXISTS restarts(id INTEGER PRIMARY KEY"
    " REFERENCES instances(id) ON DELETE CASCADE);"
    /* Apps `drover apps:destroy` is stopping (issue 12). */
    "CREATE TABLE IF NOT EXISTS destroying(app TEXT PRIMARY KEY REFERENCES apps(name));";

struct ctl_store {
    sqlite3 *db;
    sqlite3 *ckpt_db; /* used only by the checkpoint work, off the loop */
    sqlite3_stmt *st[S_COUNT];
    char path[4096];
    uv_loop_t *loop;
    uv_timer_t timer;
    uv_work_t work;
    bool ckpt_busy, timer_on, closing;
    bool applying;     /* in sq_apply: errors are the front's to report */
    bool ckpt_failing; /* the last checkpoint failed (logged once) */
    /* The restarts table has no row: an instance written without its
     * restart mark needs no DELETE (two statements a row, most of them
     * for nothing, placing 100,000 instances). Known at the start of each
     * transaction that may need it; only S_RESTART makes it false. */
    bool restarts_empty;
    int ckpt_rc;
};

static const char *
sq_errmsg(const struct ctl_store *st)
{
    return sqlite3_errmsg(st->db);
}

static int
exec(struct ctl_store *st, const char *sql)
{
    char *err = NULL;

    if (sqlite3_exec(st->db, sql, NULL, NULL, &err) != SQLITE_OK) {
        /* While applying, debug only: the front says store_failed once. */
        log_event(st->applying ? LOG_DEBUG : LOG_ERROR, "store_error", "sql=%s err=%s", log_q(sql),
                  log_q(err ? err : "?"));
        sqlite3_free(err);
        return -EIO;
    }
    return 0;
}

/*
 * Columns added after schema version 1 was first shipped, each with a default,
 * so that an older database gains them in place (no version bump needed: an
 * older controller ignores them).
 */
static int
add_missing_columns(struct ctl_store *st)
{
    static const struct {
        const char *table, *column, *sql;
    } cols[] = {
        {"nodes", "admin", "ALTER TABLE nodes ADD COLUMN admin TEXT NOT NULL DEFAULT 'ready';"},
#define ADD(t, c, def) {t, c, "ALTER TABLE " t " ADD COLUMN " c " " def ";"}
        ADD("apps", "good_release", "INTEGER NOT NULL DEFAULT 0"),
        ADD("apps", "deploy_release", "INTEGER NOT NULL DEFAULT 0"),
        ADD("apps", "deploy_from", "INTEGER NOT NULL DEFAULT 0"),
        ADD("apps", "deploy_state", "TEXT NOT NULL DEFAULT 'none'"),
        ADD("apps", "deploy_reason", "TEXT NOT NULL DEFAULT ''"),
        ADD("apps", "deploy_started_ms", "INTEGER NOT NULL DEFAULT 0"),
        ADD("apps", "deploy_finished_ms", "INTEGER NOT NULL DEFAULT 0"),
        ADD("releases", "reason", "TEXT NOT NULL DEFAULT ''"),
        ADD("formations", "max_surge", "TEXT NOT NULL DEFAULT '25%'"),
        ADD("formations", "max_unavailable", "TEXT NOT NULL DEFAULT '0'"),
        ADD("formations", "min_healthy_ms", "INTEGER NOT NULL DEFAULT 1000"),
        ADD("formations", "deploy_timeout_ms", "INTEGER NOT NULL DEFAULT 300000"),
        ADD("formations", "shutdown_delay_ms", "INTEGER NOT NULL DEFAULT 0"),
        ADD("formations", "memory_bytes", "INTEGER NOT NULL DEFAULT 0"),
        ADD("formations", "cpu_milli", "INTEGER NOT NULL DEFAULT 0"),
        ADD("formations", "pids", "INTEGER NOT NULL DEFAULT 0"),
        ADD("formations", "nofile", "INTEGER NOT NULL DEFAULT 0"),
#undef ADD
    };
    sqlite3_stmt *q = NULL;
    size_t i;
    int rc = 0;

    for (i = 0; i < ARRAY_SIZE(cols) && rc == 0; i++) {
        bool have = false;

        if (sqlite3_prepare_v2(st->db, "SELECT name FROM pragma_table_info(?1)", -1, &q, NULL) !=
            SQLITE_OK)
            return -EIO;
        sqlite3_bind_text(q, 1, cols[i].table, -1, SQLITE_STATIC);
        while (sqlite3_step(q) == SQLITE_ROW) {
            const char *name = (const char *)sqlite3_column_text(q, 0);

            have |= name != NULL && strcmp(name, cols[i].column) == 0;
        }
        sqlite3_finalize(q);
        q = NULL;
        if (!have) {
            log_info("store_migrate", "table=%s column=%s", cols[i].table, cols[i].column);
            rc = exec(st, cols[i].sql);
        }
    }
    return rc;
}

static void sq_close(struct ctl_store *st);

/* The stored schema version; 0 when it cannot be read. */
static sqlite3_int64
schema_version(struct ctl_store *st)
{
    sqlite3_stmt *q = NULL;
    sqlite3_int64 v = 0;

    if (sqlite3_prepare_v2(st->db, "SELECT value FROM meta WHERE key = 'schema_version'", -1, &q,
                           NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW)
        v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return v;
}

/*
 * Version 1 stored instance states as protobuf enum integers: rebuild the
 * instances table with their names, in one transaction. Foreign keys are
 * off meanwhile: dropping the old table must not cascade to oneoffs and
 * restarts, whose rows keep their ids and refer to the new table.
 */
static int
migrate_v2(struct ctl_store *st)
{
    static const char sql[] =
        "BEGIN IMMEDIATE;"
        "CREATE TABLE instances_v2(id INTEGER PRIMARY KEY,"
        " app TEXT NOT NULL REFERENCES apps(name), type TEXT NOT NULL, idx INTEGER NOT NULL,"
        " release INTEGER NOT NULL, node TEXT, port INTEGER NOT NULL, state TEXT NOT NULL,"
        " stopping INTEGER NOT NULL, restarts INTEGER NOT NULL, pid INTEGER NOT NULL,"
        " exit_code INTEGER NOT NULL, exit_signal INTEGER NOT NULL, since_ms INTEGER NOT NULL,"
        " reason TEXT NOT NULL);"
        "INSERT INTO instances_v2 SELECT id, app, type, idx, release, node, port,"
        " CASE state WHEN 1 THEN 'pending' WHEN 2 THEN 'starting' WHEN 3 THEN 'up'"
        " WHEN 4 THEN 'draining' WHEN 5 THEN 'stopped' WHEN 6 THEN 'crashed' WHEN 7 THEN 'lost'"
        " WHEN 8 THEN 'failed' ELSE 'unknown' END,"
        " stopping, restarts, pid, exit_code, exit_signal, since_ms, reason FROM instances;"
        "DROP TABLE instances;"
        "ALTER TABLE instances_v2 RENAME TO instances;"
        "UPDATE meta SET value = 2 WHERE key = 'schema_version';"
        "COMMIT;";
    sqlite3_int64 v = schema_version(st);
    int rc;

    if (v != 1)
        return 0;
    log_info("store_migrate", "from=1 to=2 what=%s", log_q("instance states by name"));
    if ((rc = exec(st, "PRAGMA foreign_keys=OFF;")) < 0)
        return rc;
    rc = exec(st, sql);
    if (rc < 0 && !sqlite3_get_autocommit(st->db))
        exec(st, "ROLLBACK;");
    if (exec(st, "PRAGMA foreign_keys=ON;") < 0 && rc == 0)
        rc = -EIO;
    return rc;
}

/* S_INST_ROWS: S_INST's insert with INST_ROWS rows of values. */
static const char *
inst_rows_sql(char *buf, size_t size)
{
    size_t n = (size_t)snprintf(buf, size, "%sVALUES", INST_INSERT);

    for (int p = 1; p <= INST_ROWS * INST_COLS && n < size; p++) {
        const char *before = p % INST_COLS != 1 ? ", " : p > 1 ? ", (" : "(";

        n += (size_t)snprintf(buf + n, size - n, "%s?%d%s", before, p,
                              p % INST_COLS == 0 ? ")" : "");
    }
    if (n < size)
        n += (size_t)snprintf(buf + n, size - n, " %s", INST_UPSERT);
    return n < size ? buf : ""; /* too small: the prepare fails */
}

/*
 * Before SQLite's first use in the process: no count of the memory it holds
 * (nothing here reads sqlite3_memory_used), which took a process-wide mutex
 * around every allocation SQLite made. Measured (issue 15, a standalone
 * program with the instances table on this machine): updating 100,000 rows
 * in transactions of 7,000, 1.42 -> 1.31 us a row. Too late when SQLite is
 * already in use (SQLITE_MISUSE, harmless: it keeps counting).
 */
static void
sq_config(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static int
sq_open(const char *path, struct ctl_store **out)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    struct ctl_store *st = calloc(1, sizeof(*st));
    char rows_sql[INST_ROWS * INST_COLS * 8 + 1024];
    int rc = -ENOMEM, i;

    if (st == NULL)
        goto fail;
    rc = strfmt(st->path, sizeof(st->path), "%s", path);
    if (rc < 0)
        goto fail;
    rc = -EIO;
    pthread_once(&once, sq_config);
    if (sqlite3_open_v2(path, &st->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        log_error("store_open_failed", "path=%s err=%s", log_q(path),
                  log_q(st->db ? sqlite3_errmsg(st->db) : "out of memory"));
        goto fail;
    }
    sqlite3_busy_timeout(st->db, 1000);
    /* See the top of the file for why these. */
    if ((rc = exec(st, "PRAGMA journal_mode=WAL;")) < 0 ||
        (rc = exec(st, "PRAGMA synchronous=NORMAL;")) < 0 ||
        (rc = exec(st, "PRAGMA foreign_keys=ON;")) < 0 ||
        (rc = exec(st, "PRAGMA wal_autocheckpoint=0;")) < 0 ||
        (rc = exec(st, "BEGIN IMMEDIATE;")) < 0)
        goto fail;
    if ((rc = exec(st, schema_sql)) < 0) {
        exec(st, "ROLLBACK;");
        goto fail;
    }
    if ((rc = add_missing_columns(st)) < 0) {
        exec(st, "ROLLBACK;");
        goto fail;
    }
    if ((rc = exec(st, "INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', 2);"
                       "INSERT OR IGNORE INTO meta(key, value) VALUES('next_instance_id', 1);"
                       "COMMIT;")) < 0) {
        exec(st, "ROLLBACK;");
        goto fail;
    }
    if ((rc = migrate_v2(st)) < 0)
        goto fail;
    for (i = 0; i < S_COUNT; i++) {
        const char *sql =
            i == S_INST_ROWS ? inst_rows_sql(rows_sql, sizeof(rows_sql)) : stmt_sql[i];

        if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st->st[i], NULL) !=
            SQLITE_OK) {
            log_error("store_prepare_failed", "err=%s", log_q(sqlite3_errmsg(st->db)));
            rc = -EIO;
            goto fail;
        }
    }
    *out = st;
    return 0;
fail:
    sq_close(st);
    return rc;
}

static void
sq_close(struct ctl_store *st)
{
    int i;

    if (st == NULL)
        return;
    for (i = 0; i < S_COUNT; i++)
        sqlite3_finalize(st->st[i]);
    sqlite3_close(st->ckpt_db);
    sqlite3_close(st->db); /* the last connection checkpoints the WAL */
    free(st);
}

/* ---- load ---- */

static int
schema_check(struct ctl_store *st, struct ctl_model *m)
{
    sqlite3_stmt *q = NULL;
    int rc = -EIO;

    if (sqlite3_prepare_v2(st->db, "SELECT key, value FROM meta", -1, &q, NULL) != SQLITE_OK)
        goto out;
    while (sqlite3_step(q) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(q, 0);
        sqlite3_int64 v = sqlite3_column_int64(q, 1);

        if (k == NULL)
            continue;
        if (strcmp(k, "schema_version") == 0 && v != SCHEMA_VERSION) {
            log_error("store_schema", "version=%lld expected=%d", (long long)v, SCHEMA_VERSION);
            rc = -EPROTO;
            goto out;
        }
        if (strcmp(k, "next_instance_id") == 0 && v > 0)
            m->next_id = (uint64_t)v;
    }
    rc = 0;
out:
    sqlite3_finalize(q);
    return rc;
}

static const char *
col_str(sqlite3_stmt *q, int i)
{
    const char *s = (const char *)sqlite3_column_text(q, i);

    return s != NULL ? s : "";
}

/* What every row function needs. */
struct loader {
    struct ctl_model *m;
    uint64_t now;
};

typedef int (*row_fn)(sqlite3_stmt *q, struct loader *ld);

/* Run sql and hand each row to fn: 0, fn's error, or -EIO. */
static int
each_row(struct ctl_store *st, const char *sql, row_fn fn, struct loader *ld)
{
    sqlite3_stmt *q = NULL;
    int rc = -EIO;

    if (sqlite3_prepare_v2(st->db, sql, -1, &q, NULL) != SQLITE_OK)
        goto out;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW)
        if ((rc = fn(q, ld)) < 0)
            goto out;
    rc = rc == SQLITE_DONE ? 0 : -EIO;
out:
    sqlite3_finalize(q);
    return rc;
}

static int
app_row(sqlite3_stmt *q, struct loader *ld)
{
    struct ctl_app *a;
    int rc = ctl_app_add(ld->m, col_str(q, 0), (uint64_t)sqlite3_column_int64(q, 1), &a);

    if (rc < 0)
        return rc;
    a->current = (uint32_t)sqlite3_column_int64(q, 2);
    a->good = (uint32_t)sqlite3_column_int64(q, 3);
    a->deploy.release = (uint32_t)sqlite3_column_int64(q, 4);
    a->deploy.from = (uint32_t)sqlite3_column_int64(q, 5);
    if (ctl_deploy_state_parse(col_str(q, 6), &a->deploy.state) < 0)
        return -EBADMSG;
    snprintf(a->deploy.reason, sizeof(a->deploy.reason), "%s", col_str(q, 7));
    a->deploy.started_ms = (uint64_t)sqlite3_column_int64(q, 8);
    a->deploy.finished_ms = (uint64_t)sqlite3_column_int64(q, 9);
    /* Stored deadlines are wall clock; the running controller's are
     * monotonic: as long ago as the wall clock says (none if in its future). */
    {
        uint64_t wall = now_ms(), started = a->deploy.started_ms;
        uint64_t ago = wall > started ? wall - started : 0;

        a->deploy.started_mono = ld->now > ago ? ld->now - ago : 0;
    }
    if (a->deploy.state == CTL_DEPLOY_RUNNING || a->deploy.state == CTL_DEPLOY_RELEASING)
        ld->m->ndeploying++;
    /* A store from before deploys were judged: what ran was good. */
    if (a->good == 0 && a->deploy.state == CTL_DEPLOY_NONE)
        a->good = a->current;
    return 0;
}

static int
config_row(sqlite3_stmt *q, struct loader *ld)
{
    struct ctl_app *a = ctl_app_find(ld->m, col_str(q, 0));

    return a == NULL ? -EBADMSG : ctl_config_set(a, col_str(q, 1), col_str(q, 2));
}

static int
kv_push(struct ctl_kv **kv, size_t *n, const char *k, const char *v)
{
    struct ctl_kv *nv = realloc(*kv, (*n + 1) * sizeof(*nv));

    if (nv == NULL)
        return -ENOMEM;
    *kv = nv;
    nv[*n].key = strdup(k);
    nv[*n].value = strdup(v);
    if (nv[*n].key == NULL || nv[*n].value == NULL) {
        free(nv[*n].key);
        free(nv[*n].value);
        return -ENOMEM;
    }
    (*n)++;
    return 0;
}

static int
type_push(struct ctl_release *r, const char *name, const char *command)
{
    struct ctl_ptype *v;

    if (!name_type_valid(name))
        return -EBADMSG;
    v = realloc(r->types, (r->ntypes + 1) * sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    r->types = v;
    strcpy(v[r->ntypes].name, name);
    v[r->ntypes].command = strdup(command);
    if (v[r->ntypes].command == NULL)
        return -ENOMEM;
    r->ntypes++;
    return 0;
}

static struct ctl_release *
find_release(struct ctl_model *m, sqlite3_stmt *q)
{
    struct ctl_app *a = ctl_app_find(m, col_str(q, 0));

    if (a == NULL)
        return NULL;
    return ctl_release_get(a, (uint32_t)sqlite3_column_int64(q, 1));
}

static int
release_row(sqlite3_stmt *q, struct loader *ld)
{
    struct ctl_app *a = ctl_app_find(ld->m, col_str(q, 0));
    struct ctl_release *r;
    int rc;

    if (a == NULL || strlen(col_str(q, 2)) != 64)
        return -EBADMSG;
    if ((r = ctl_release_new()) == NULL)
        return -ENOMEM;
    r->version = (uint32_t)sqlite3_column_int64(q, 1);
    strcpy(r->slug_sha256, col_str(q, 2));
    r->slug_size = (uint64_t)sqlite3_column_int64(q, 3);
    r->description = strdup(col_str(q, 4));
    r->created_ms = (uint64_t)sqlite3_column_int64(q, 5);
    snprintf(r->status, sizeof(r->status), "%s", col_str(q, 6));
    snprintf(r->reason, sizeof(r->reason), "%s", col_str(q, 7));
    r->stored = true;
    rc = r->description == NULL ? -ENOMEM : ctl_release_append(a, r); /* -EINVAL: not 1..N */
    if (rc < 0)
        ctl_release_free(r);
    return rc;
}

static int
release_config_row(sqlite3_stmt *q, struct loader *ld)
{
    struct ctl_release *r = find_release(ld->m, q);

    return r == NULL ? -EBADMSG : kv_push(&r->config, &r->nconfig, col_str(q, 2), col_str(q, 3));
}

static int
release_type_row(sqlite3_stmt *q, struct loader *ld)
{
    struct ctl_release *r = find_release(ld->m, q);

    return r == NULL ? -EBADMSG : type_push(r, col_str(q, 2), col_str(q, 3));
}

static int
formation_row(sqlite3_stmt *q, struct loader *ld)
{
    struct ctl_app *a = ctl_app_find(ld->m, col_str(q, 0));
    struct ctl_formation *f;
    int rc;

    if (a == NULL)
        return -EBADMSG;
    rc = ctl_formation_add(a, col_str(q, 1), (uint32_t)sqlite3_column_int64(q, 2), &f);
    if (rc < 0)
        return rc;
    snprintf(f->health, sizeof(f->health), "%s", col_str(q, 3));
    f->grace_ms = (uint32_t)sqlite3_column_int64(q, 4);
    f->boot_timeout_ms = (uint32_t)sqlite3_column_int64(q, 5);
    snprintf(f->max_surge, sizeof(f->max_surge), "%s", col_str(q, 6));
    snprintf(f->max_unavailable, sizeof(f->max_unavailable), "%s", col_str(q, 7));
    f->min_healthy_ms = (uint32_t)sqlite3_column_int64(q, 8);
    f->deploy_timeout_ms = (uint32_t)sqlite3_column_int64(q, 9);
    f->shutdown_delay_ms = (uint32_t)sqlite3_column_int64(q, 10);
    f->memory_bytes = (uint64_t)sqlite3_column_int64(q, 11);
    f->cpu_milli = (uint32_t)sqlite3_column_int64(q, 12);
    f->pids = (uint32_t)sqlite3_column_int64(q, 13);
    f->nofile = (uint32_t)sqlite3_column_int64(q, 14);
    return 0;
}

static int
node_row(sqlite3_stmt *q, struct loader *ld)
{
    sqlite3_int64 lo = sqlite3_column_int64(q, 2), hi = sqlite3_column_int64(q, 3);
    enum ctl_node_state state, admin;
    struct ctl_node *n;
    int rc;

    if ((rc = ctl_node_add(ld->m, col_str(q, 0), &n)) < 0)
        return rc;
    if (lo < 1 || lo > hi || hi > 65535 || ctl_node_state_parse(col_str(q, 5), &state) < 0 ||
        ctl_node_state_parse(col_str(q, 8), &admin) < 0 || admin == CTL_NODE_DOWN)
        return -EBADMSG;
    /* Leaving is not a column: a node shown draining whose operator did
     * not drain it was leaving. Its agent says so again at its next
     * sync; a new agent on it clears it when it registers. */
    ctl_node_update(ld->m, n, state == CTL_NODE_DOWN, admin,
                    state == CTL_NODE_DRAINING && admin != CTL_NODE_DRAINING);
    snprintf(n->address, sizeof(n->address), "%s", col_str(q, 1));
    snprintf(n->boot_id, sizeof(n->boot_id), "%s", col_str(q, 7));
    n->capacity = (uint32_t)sqlite3_column_int64(q, 4);
    n->generation = (uint64_t)sqlite3_column_int64(q, 6);
    /* A fresh grace period: the controller's own absence is not theirs. */
    n->last_seen_ms = ld->now;
    return ctl_node_set_range(n, (uint16_t)lo, (uint16_t)hi);
}

static int
instance_row(sqlite3_stmt *q, struct loader *ld)
{
    struct ctl_model *m = ld->m;
    struct ctl_app *a = ctl_app_find(m, col_str(q, 1));
    uint64_t next = m->next_id;
    struct ctl_instance *in;
    struct ctl_node *n;
    int rc;

    rc = a == NULL ? -EBADMSG
                   : ctl_inst_new(m, a, col_str(q, 2), (uint32_t)sqlite3_column_int64(q, 3),
                                  (uint32_t)sqlite3_column_int64(q, 4),
                                  (uint64_t)sqlite3_column_int64(q, 0), &in);
    if (rc < 0)
        return rc;
    if (next > m->next_id)
        m->next_id = next;
    if (wire_state_parse(col_str(q, 7), &in->state) < 0)
        return -EBADMSG;
    in->stopping = sqlite3_column_int(q, 8) != 0;
    in->restarts = (uint32_t)sqlite3_column_int64(q, 9);
    in->pid = sqlite3_column_int(q, 10);
    in->exit_code = sqlite3_column_int(q, 11);
    in->exit_signal = sqlite3_column_int(q, 12);
    in->since_ms = (uint64_t)sqlite3_column_int64(q, 13);
    str_copy(in->reason, sizeof(in->reason), col_str(q, 14));
    if (sqlite3_column_type(q, 5) == SQLITE_NULL)
        return 0;
    n = ctl_node_find(m, col_str(q, 5));
    return n == NULL ? -EBADMSG : ctl_inst_place(m, in, n, (uint16_t)sqlite3_column_int(q, 6));
}

static int
oneoff_row(sqlite3_stmt *q, struct loader *ld)
{
    struct ctl_instance *in = ctl_inst_find(ld->m, (uint64_t)sqlite3_column_int64(q, 0));

    if (in == NULL)
        return 0;
    in->oneoff = true;
    free(in->command);
    in->command = strdup(col_str(q, 1));
    snprintf(in->ptype, sizeof(in->ptype), "%s", col_str(q, 2));
    in->attach = sqlite3_column_int(q, 3) != 0;
    in->tty = sqlite3_column_int(q, 4) != 0;
    return in->command == NULL ? -ENOMEM : 0;
}

static int
restart_row(sqlite3_stmt *q, struct loader *ld)
{
    struct ctl_instance *in = ctl_inst_find(ld->m, (uint64_t)sqlite3_column_int64(q, 0));

    if (in != NULL)
        in->restart = true;
    return 0;
}

static int
destroying_row(sqlite3_stmt *q, struct loader *ld)
{
    struct ctl_app *a = ctl_app_find(ld->m, col_str(q, 0));

    if (a != NULL && !a->destroying) {
        a->destroying = true;
        ld->m->ndestroying++;
    }
    return 0;
}

/* In order: each table refers only to rows of the tables before it. */
static const struct {
    const char *sql;
    row_fn fn;
} loads[] = {
    {"SELECT name, created_ms, current_release, good_release, deploy_release, deploy_from, "
     "deploy_state, deploy_reason, deploy_started_ms, deploy_finished_ms FROM apps",
     app_row},
    {"SELECT app, key, value FROM config ORDER BY app, key", config_row},
    {"SELECT app, version, slug_sha256, slug_size, description, created_ms, status, reason "
     "FROM releases ORDER BY app, version",
     release_row},
    {"SELECT app, version, key, value FROM release_config ORDER BY app, version, key",
     release_config_row},
    {"SELECT app, version, type, command FROM release_types ORDER BY app, version, pos",
     release_type_row},
    {"SELECT app, type, quantity, health, grace_ms, boot_timeout_ms, max_surge, "
     "max_unavailable, min_healthy_ms, deploy_timeout_ms, shutdown_delay_ms, memory_bytes, "
     "cpu_milli, pids, nofile FROM formations ORDER BY app, rowid",
     formation_row},
    {"SELECT name, address, port_min, port_max, capacity, state, generation, boot_id, admin "
     "FROM nodes ORDER BY rowid",
     node_row},
    {"SELECT id, app, type, idx, release, node, port, state, stopping, restarts, pid, exit_code, "
     "exit_signal, since_ms, reason FROM instances ORDER BY id",
     instance_row},
    {"SELECT id, command, ptype, attach, tty FROM oneoffs", oneoff_row},
    {"SELECT id FROM restarts", restart_row},
    {"SELECT app FROM destroying", destroying_row},
};

/* Fill an empty model from the store. */
static int
sq_load(struct ctl_store *st, struct ctl_model *m, uint64_t now)
{
    struct loader ld = {.m = m, .now = now};
    int rc;

    m->loading = true;
    rc = schema_check(st, m);
    for (size_t i = 0; rc == 0 && i < ARRAY_SIZE(loads); i++)
        rc = each_row(st, loads[i].sql, loads[i].fn, &ld);
    if (rc < 0)
        log_error("store_load_failed", "err=%d sqlite=%s", rc, log_q(sqlite3_errmsg(st->db)));
    m->loading = false;
    ctl_model_clean(m);
    /* Whatever waited for capacity gets another try, and every app is
     * reconciled once (an eviction may have been waiting on a state that
     * changed while the controller was away). */
    m->capacity_changed = !TAILQ_EMPTY(&m->unplaced);
    if (rc == 0) {
        size_t pos = 0;
        struct ctl_app *a;

        while ((a = ctl_map_next(m->apps, &pos)) != NULL)
            ctl_app_want_reconcile(m, a);
    }
    return rc;
}

/* ---- flush ---- */

static int
step(struct ctl_store *st, sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);

    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc != SQLITE_DONE) {
        /* Debug only: the front says store_failed once per episode. */
        log_debug("store_error", "sql=%s err=%s", log_q(sqlite3_sql(s)),
                  log_q(sqlite3_errmsg(st->db)));
        return -EIO;
    }
    return 0;
}

static void
bind_text(sqlite3_stmt *s, int i, const char *v)
{
    sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
}

static int
flush_release(struct ctl_store *st, const struct ctl_app *a, const struct ctl_release *r)
{
    sqlite3_stmt *s = st->st[S_REL_INS];
    size_t i;
    int rc;

    bind_text(s, 1, a->name);
    sqlite3_bind_int64(s, 2, r->version);
    bind_text(s, 3, r->slug_sha256);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)r->slug_size);
    bind_text(s, 5, r->description);
    sqlite3_bind_int64(s, 6, (sqlite3_int64)r->created_ms);
    bind_text(s, 7, r->status);
    bind_text(s, 8, r->reason);
    if ((rc = step(st, s)) < 0)
        return rc;
    s = st->st[S_RELCFG_INS];
    for (i = 0; i < r->nconfig; i++) {
        bind_text(s, 1, a->name);
        sqlite3_bind_int64(s, 2, r->version);
        bind_text(s, 3, r->config[i].key);
        bind_text(s, 4, r->config[i].value);
        if ((rc = step(st, s)) < 0)
            return rc;
    }
    s = st->st[S_RELTYPE_INS];
    for (i = 0; i < r->ntypes; i++) {
        bind_text(s, 1, a->name);
        sqlite3_bind_int64(s, 2, r->version);
        sqlite3_bind_int64(s, 3, (sqlite3_int64)i);
        bind_text(s, 4, r->types[i].name);
        bind_text(s, 5, r->types[i].command);
        if ((rc = step(st, s)) < 0)
            return rc;
    }
    return 0;
}

static int
flush_app(struct ctl_store *st, const struct ctl_app *a)
{
    sqlite3_stmt *s;
    size_t i;
    int rc;

    if (a->dirty_row) {
        s = st->st[S_APP];
        bind_text(s, 1, a->name);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)a->created_ms);
        sqlite3_bind_int64(s, 3, a->current);
        sqlite3_bind_int64(s, 4, a->good);
        sqlite3_bind_int64(s, 5, a->deploy.release);
        sqlite3_bind_int64(s, 6, a->deploy.from);
        bind_text(s, 7, ctl_deploy_state_name(a->deploy.state));
        bind_text(s, 8, a->deploy.reason);
        sqlite3_bind_int64(s, 9, (sqlite3_int64)a->deploy.started_ms);
        sqlite3_bind_int64(s, 10, (sqlite3_int64)a->deploy.finished_ms);
        if ((rc = step(st, s)) < 0)
            return rc;
        if (a->destroying) { /* apps:destroy goes on after a restart */
            bind_text(st->st[S_DESTROYING], 1, a->name);
            if ((rc = step(st, st->st[S_DESTROYING])) < 0)
                return rc;
        }
    }
    if (a->dirty_config) {
        bind_text(st->st[S_CONFIG_DEL], 1, a->name);
        if ((rc = step(st, st->st[S_CONFIG_DEL])) < 0)
            return rc;
        s = st->st[S_CONFIG_INS];
        for (i = 0; i < a->nconfig; i++) {
            bind_text(s, 1, a->name);
            bind_text(s, 2, a->config[i].key);
            bind_text(s, 3, a->config[i].value);
            if ((rc = step(st, s)) < 0)
                return rc;
        }
    }
    for (i = a->nreleases; i > 0 && !a->releases[i - 1]->stored; i--)
        ;
    for (size_t j = 0; j < i; j++) {
        const struct ctl_release *r = a->releases[j];

        if (!r->status_dirty)
            continue;
        s = st->st[S_REL_STATUS];
        bind_text(s, 1, a->name);
        sqlite3_bind_int64(s, 2, r->version);
        bind_text(s, 3, r->status);
        bind_text(s, 4, r->reason);
        if ((rc = step(st, s)) < 0)
            return rc;
    }
    for (; i < a->nreleases; i++) {
        if ((rc = flush_release(st, a, a->releases[i])) < 0)
            return rc;
    }
    if (a->dirty_formation) {
        bind_text(st->st[S_FORM_DEL], 1, a->name);
        if ((rc = step(st, st->st[S_FORM_DEL])) < 0)
            return rc;
        s = st->st[S_FORM_INS];
        for (i = 0; i < a->nformation; i++) {
            const struct ctl_formation *f = &a->formation[i];

            bind_text(s, 1, a->name);
            bind_text(s, 2, f->type);
            sqlite3_bind_int64(s, 3, f->quantity);
            bind_text(s, 4, f->health);
            sqlite3_bind_int64(s, 5, f->grace_ms);
            sqlite3_bind_int64(s, 6, f->boot_timeout_ms);
            bind_text(s, 7, f->max_surge);
            bind_text(s, 8, f->max_unavailable);
            sqlite3_bind_int64(s, 9, f->min_healthy_ms);
            sqlite3_bind_int64(s, 10, f->deploy_timeout_ms);
            sqlite3_bind_int64(s, 11, f->shutdown_delay_ms);
            sqlite3_bind_int64(s, 12, (sqlite3_int64)f->memory_bytes);
            sqlite3_bind_int64(s, 13, f->cpu_milli);
            sqlite3_bind_int64(s, 14, f->pids);
            sqlite3_bind_int64(s, 15, f->nofile);
            if ((rc = step(st, s)) < 0)
                return rc;
        }
    }
    return 0;
}

static int
flush_node(struct ctl_store *st, const struct ctl_node *n)
{
    sqlite3_stmt *s = st->st[S_NODE];

    bind_text(s, 1, n->name);
    bind_text(s, 2, n->address);
    sqlite3_bind_int(s, 3, n->port_min);
    sqlite3_bind_int(s, 4, n->port_max);
    sqlite3_bind_int64(s, 5, n->capacity);
    bind_text(s, 6, ctl_node_state_name(n->state));
    sqlite3_bind_int64(s, 7, (sqlite3_int64)n->generation);
    bind_text(s, 8, n->boot_id);
    bind_text(s, 9, ctl_node_state_name(n->admin));
    return step(st, s);
}

/* The columns S_INST and S_INST_UPD share (?6 to ?15, after b more). */
static void
bind_inst_state(sqlite3_stmt *s, int b, const struct ctl_instance *in)
{
    if (in->node != NULL)
        bind_text(s, b + 6, in->node->name);
    else
        sqlite3_bind_null(s, b + 6);
    sqlite3_bind_int(s, b + 7, in->port);
    bind_text(s, b + 8, wire_state_name(in->state));
    sqlite3_bind_int(s, b + 9, in->stopping);
    sqlite3_bind_int64(s, b + 10, in->restarts);
    sqlite3_bind_int(s, b + 11, in->pid);
    sqlite3_bind_int(s, b + 12, in->exit_code);
    sqlite3_bind_int(s, b + 13, in->exit_signal);
    sqlite3_bind_int64(s, b + 14, (sqlite3_int64)in->since_ms);
    bind_text(s, b + 15, in->reason);
}

/* S_INST's columns of a new row (?1 to ?15, after b more). */
static void
bind_inst(sqlite3_stmt *s, int b, const struct ctl_instance *in)
{
    sqlite3_bind_int64(s, b + 1, (sqlite3_int64)in->id);
    bind_text(s, b + 2, in->app->name);
    bind_text(s, b + 3, in->type);
    sqlite3_bind_int64(s, b + 4, in->idx);
    sqlite3_bind_int64(s, b + 5, in->release);
    bind_inst_state(s, b, in);
}

static int
flush_inst(struct ctl_store *st, const struct ctl_instance *in)
{
    sqlite3_stmt *s = st->st[S_INST_UPD];
    int rc;

    /* A row a commit wrote is updated in place; a new one (or, should the
     * mark ever be wrong, a row the update did not find) is inserted. */
    if (in->stored) {
        sqlite3_bind_int64(s, 1, (sqlite3_int64)in->id);
        bind_inst_state(s, 0, in);
        if ((rc = step(st, s)) < 0)
            return rc;
    }
    if (!in->stored || sqlite3_changes(st->db) == 0) {
        s = st->st[S_INST];
        bind_inst(s, 0, in);
        if ((rc = step(st, s)) < 0)
            return rc;
    }
    /* A failed restart clears the mark of what it did not replace. */
    if (!in->restart && st->restarts_empty)
        goto oneoff;
    if (in->restart)
        st->restarts_empty = false;
    s = st->st[in->restart ? S_RESTART : S_RESTART_DEL];
    sqlite3_bind_int64(s, 1, (sqlite3_int64)in->id);
    if ((rc = step(st, s)) < 0)
        return rc;
oneoff:
    if (!in->oneoff)
        return 0;
    s = st->st[S_ONEOFF];
    sqlite3_bind_int64(s, 1, (sqlite3_int64)in->id);
    bind_text(s, 2, in->command != NULL ? in->command : "");
    bind_text(s, 3, in->ptype);
    sqlite3_bind_int(s, 4, in->attach);
    sqlite3_bind_int(s, 5, in->tty);
    return step(st, s);
}

/* Is the restarts table empty now? (Asked again once a mark was written.) */
static int
restarts_check(struct ctl_store *st)
{
    sqlite3_stmt *s = st->st[S_RESTART_ANY];
    int rc;

    if (st->restarts_empty)
        return 0;
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        st->restarts_empty = sqlite3_column_int(s, 0) == 0;
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? 0 : -EIO;
}

/* New rows with nothing else to write (flush_all): INST_ROWS of them in one
 * statement, fewer one by one. */
static int
flush_rows(struct ctl_store *st, struct ctl_instance **rows, size_t *n)
{
    sqlite3_stmt *s = st->st[S_INST_ROWS];
    size_t i;
    int rc;

    if (*n == INST_ROWS) {
        for (i = 0; i < INST_ROWS; i++)
            bind_inst(s, (int)i * INST_COLS, rows[i]);
        *n = 0;
        return step(st, s);
    }
    for (i = 0; i < *n; i++) {
        bind_inst(st->st[S_INST], 0, rows[i]);
        if ((rc = step(st, st->st[S_INST])) < 0)
            return rc;
    }
    *n = 0;
    return 0;
}

static int
flush_all(struct ctl_store *st, struct ctl_model *m)
{
    struct ctl_instance *rows[INST_ROWS];
    struct ctl_app *a;
    struct ctl_node *n;
    struct ctl_instance *in;
    size_t i, nrows = 0;
    int rc;

    if (!TAILQ_EMPTY(&m->dirty_insts) && (rc = restarts_check(st)) < 0)
        return rc;

    TAILQ_FOREACH (a, &m->dirty_apps, dirty_link) {
        if ((rc = flush_app(st, a)) < 0)
            return rc;
    }
    TAILQ_FOREACH (n, &m->dirty_nodes, dirty_link) {
        if ((rc = flush_node(st, n)) < 0)
            return rc;
    }
    TAILQ_FOREACH (in, &m->dirty_insts, dirty_link) {
        /* A new row and nothing else (most of a placement): in a group. */
        if (!in->stored && !in->oneoff && !in->restart && st->restarts_empty) {
            rows[nrows++] = in;
            if (nrows == INST_ROWS && (rc = flush_rows(st, rows, &nrows)) < 0)
                return rc;
            continue;
        }
        if ((rc = flush_inst(st, in)) < 0)
            return rc;
    }
    if ((rc = flush_rows(st, rows, &nrows)) < 0)
        return rc;
    for (i = 0; i < m->ndeleted; i++) {
        sqlite3_bind_int64(st->st[S_INST_DEL], 1, (sqlite3_int64)m->deleted[i]);
        if ((rc = step(st, st->st[S_INST_DEL])) < 0)
            return rc;
    }
    if (m->next_id_dirty) {
        bind_text(st->st[S_META], 1, "next_instance_id");
        sqlite3_bind_int64(st->st[S_META], 2, (sqlite3_int64)m->next_id);
        if ((rc = step(st, st->st[S_META])) < 0)
            return rc;
    }
    return 0;
}

/*
 * Write everything the model marked dirty in one transaction, then forget the
 * marks. On failure the transaction is rolled back and the marks are kept.
 */
/* Apps destroyed and nodes removed since the last flush (issue 12). */
static int
flush_gone(struct ctl_store *st, struct ctl_model *m)
{
    sqlite3_stmt *q;
    size_t i, k;
    int rc;

    for (i = 0; i < m->ngone_apps; i++) {
        bind_text(st->st[S_APP_GONE], 1, m->gone_apps[i]);
        if ((rc = step(st, st->st[S_APP_GONE])) < 0)
            return rc;
        for (k = 0; k < ARRAY_SIZE(app_gone_sql); k++) {
            if (sqlite3_prepare_v2(st->db, app_gone_sql[k], -1, &q, NULL) != SQLITE_OK)
                return -EIO;
            bind_text(q, 1, m->gone_apps[i]);
            rc = sqlite3_step(q) == SQLITE_DONE ? 0 : -EIO;
            sqlite3_finalize(q);
            if (rc < 0)
                return rc;
        }
    }
    for (i = 0; i < m->ngone_nodes; i++) {
        bind_text(st->st[S_NODE_GONE], 1, m->gone_nodes[i]);
        if ((rc = step(st, st->st[S_NODE_GONE])) < 0)
            return rc;
    }
    return 0;
}

/*
 * A failed statement may already have rolled the transaction back (SQLite
 * does on SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM): ROLLBACK only when one
 * is still open. What failed decides the error: a full disk is -ENOSPC
 * (fail_errno, also for the drains' own statements).
 */
static int
fail_errno(const struct ctl_store *st)
{
    return sqlite3_errcode(st->db) == SQLITE_FULL || sqlite3_system_errno(st->db) == ENOSPC
               ? -ENOSPC
               : -EIO;
}

static int
fail_rc(struct ctl_store *st)
{
    int rc = fail_errno(st); /* before ROLLBACK replaces the error */

    if (!sqlite3_get_autocommit(st->db))
        exec(st, "ROLLBACK;");
    return rc;
}

static int
sq_apply(struct ctl_store *st, struct ctl_model *m)
{
    int rc;

    if (!ctl_model_dirty(m))
        return 0;
    st->applying = true;
    rc = exec(st, "BEGIN IMMEDIATE;");
    if (rc == 0)
        rc = flush_gone(st, m);
    if (rc == 0)
        rc = flush_all(st, m);
    if (rc == 0)
        rc = exec(st, "COMMIT;");
    if (rc < 0)
        rc = fail_rc(st);
    st->applying = false;
    return rc; /* the caller forgets the marks (ctl_model_clean) */
}

/* ---- checkpoints off the loop ---- */

static void
ckpt_work(uv_work_t *w)
{
    struct ctl_store *st = w->data;
    int rc;

    if (st->ckpt_db == NULL) {
        rc = sqlite3_open_v2(st->path, &st->ckpt_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                             NULL);
        if (rc != SQLITE_OK) {
            sqlite3_close(st->ckpt_db);
            st->ckpt_db = NULL;
            st->ckpt_rc = rc;
            return;
        }
        sqlite3_busy_timeout(st->ckpt_db, 100);
    }
    st->ckpt_rc =
        sqlite3_wal_checkpoint_v2(st->ckpt_db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
}

static void
ckpt_done(uv_work_t *w, int status)
{
    struct ctl_store *st = w->data;

    st->ckpt_busy = false;
    if (status != 0 || st->ckpt_rc == SQLITE_BUSY)
        return;
    /* Once per episode: a full disk fails every checkpoint until freed. */
    if (st->ckpt_rc != SQLITE_OK && !st->ckpt_failing)
        log_warn("checkpoint_failed", "err=%s", log_q(sqlite3_errstr(st->ckpt_rc)));
    else if (st->ckpt_rc == SQLITE_OK && st->ckpt_failing)
        log_info("checkpoint_recovered", "store=sqlite");
    st->ckpt_failing = st->ckpt_rc != SQLITE_OK;
}

static void
ckpt_tick(uv_timer_t *t)
{
    struct ctl_store *st = t->data;

    if (st->ckpt_busy)
        return;
    st->work.data = st;
    if (uv_queue_work(st->loop, &st->work, ckpt_work, ckpt_done) == 0)
        st->ckpt_busy = true;
}

static int
sq_start(struct ctl_store *st, uv_loop_t *loop)
{
    int rc;

    st->loop = loop;
    rc = uv_timer_init(loop, &st->timer);
    if (rc < 0)
        return rc;
    st->timer.data = st;
    st->timer_on = true;
    return uv_timer_start(&st->timer, ckpt_tick, CHECKPOINT_MS, CHECKPOINT_MS);
}

/* Stop checkpointing; a running checkpoint finishes (uv_run waits for it). */
static void
sq_stop(struct ctl_store *st)
{
    if (st->timer_on) {
        st->timer_on = false;
        uv_close((uv_handle_t *)&st->timer, NULL);
    }
}

/* ---- log drains: a few rows, written when drains:add or drains:remove
 * asks, in their own (autocommit) transaction, like one config change ---- */

static int
sq_drain_put(struct ctl_store *st, const char *id, const char *app, const char *url,
             uint64_t created_ms)
{
    sqlite3_stmt *q = NULL;
    int rc = -EIO;

    if (sqlite3_prepare_v2(st->db,
                           "INSERT INTO drains(id, app, url, created_ms) VALUES(?1, ?2, ?3, ?4)",
                           -1, &q, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, app, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, url, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 4, (sqlite3_int64)created_ms);
    rc = sqlite3_step(q) == SQLITE_DONE ? 0 : fail_errno(st);
out:
    if (rc < 0)
        log_error("store_error", "what=drain_put err=%s", log_q(sqlite3_errmsg(st->db)));
    sqlite3_finalize(q);
    return rc;
}

static int
sq_drain_del(struct ctl_store *st, const char *id)
{
    sqlite3_stmt *q = NULL;
    int rc = -EIO;

    if (sqlite3_prepare_v2(st->db, "DELETE FROM drains WHERE id = ?1", -1, &q, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(q) == SQLITE_DONE ? 0 : fail_errno(st);
out:
    if (rc < 0)
        log_error("store_error", "what=drain_del err=%s", log_q(sqlite3_errmsg(st->db)));
    sqlite3_finalize(q);
    return rc;
}

static int
sq_drains_each(struct ctl_store *st, ctl_store_drain_fn *fn, void *arg)
{
    sqlite3_stmt *q = NULL;
    int rc = -EIO, r;

    if (sqlite3_prepare_v2(st->db,
                           "SELECT id, app, url, created_ms FROM drains ORDER BY created_ms, id",
                           -1, &q, NULL) != SQLITE_OK)
        goto out;
    while ((r = sqlite3_step(q)) == SQLITE_ROW) {
        if (!fn(arg, col_str(q, 0), col_str(q, 1), col_str(q, 2),
                (uint64_t)sqlite3_column_int64(q, 3)))
            break;
    }
    rc = r == SQLITE_DONE || r == SQLITE_ROW ? 0 : -EIO;
out:
    if (rc < 0)
        log_error("store_error", "what=drains_load err=%s", log_q(sqlite3_errmsg(st->db)));
    sqlite3_finalize(q);
    return rc;
}

const struct ctl_store_ops ctl_store_sqlite_ops = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .load = sq_load,
    .apply = sq_apply,
    .start = sq_start,
    .stop = sq_stop,
    .errmsg = sq_errmsg,
    .drain_put = sq_drain_put,
    .drain_del = sq_drain_del,
    .drains_each = sq_drains_each,
};
