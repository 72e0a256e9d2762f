/* SPDX-License-Identifier: MIT */
/*
 * store_pg.c: the controller's state in PostgreSQL (DROVER_DATABASE_URL),
 * for several controllers sharing one database (issue 16, README "High
 * availability").
 *
 * The tables are SQLite's (store.c), plus `leader` (the one row with the
 * term, the leader's advertised endpoints and its lease, leader.c) and
 * `slugs` (each slug in 1 MiB bytea rows, so that any controller can serve
 * any slug). Rows keep their insertion order through a `pos` column where
 * SQLite used its rowid.
 *
 * Schema: created and migrated by whichever controller starts, in one
 * transaction under a transaction-scoped advisory lock, so two controllers
 * starting at once migrate once; a database newer than this controller is
 * refused (-EPROTO). The version is `meta.schema_version`.
 *
 * Fencing: ctl_store_pg_set_term() tells the store the term its controller
 * leads. Every write transaction first reads the leader row FOR KEY SHARE:
 * a newer leader's term bump (which locks that row FOR UPDATE, leader.c)
 * waits for the write to commit, or the write sees the new term and fails
 * with -ESTALE. So a write either precedes the new leader's load (which
 * follows its bump) or is refused: nothing a stale leader writes after the
 * bump takes effect. The leader's lease renewal (a plain UPDATE of a column
 * that is not the key) does not wait for a write, however long the
 * database makes that write wait: a slow write never costs the lease.
 *
 * Never on the loop (commit.c): a change set is recorded on the loop
 * (record: run() appends each statement, with copies of its values, to a
 * batch) and written by exec in the thread pool, on the writer's session of
 * its own; the state is loaded, and drains are written, in the thread pool
 * too (leader.c, drains.c), on the loop's session under st->mu. Every
 * session has statement_timeout and lock_timeout, so that a slow or locked
 * database costs a request at most STMT_TIMEOUT_MS. The leader's session,
 * whose liveness matters most, runs on its own thread (leader.c).
 */
#include <errno.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <pthread.h>

#include "ctl.h"
#include "log.h"
#include "store.h"

#define PG_SCHEMA_VERSION 1
#define PG_MIGRATE_LOCK 0x64726f7601LL /* "drov" 1: schema migration */
#define STMT_TIMEOUT_MS 5000
#define SLUG_ROW_BYTES (1024 * 1024)
#define PARAMS_MAX 16

struct ctl_store {
    PGconn *db;
    char url[4096];
    uint64_t term; /* the term writes are fenced with; 0: not fenced */
    char err[512];
    struct ctl_store_batch *rec; /* run() records into it instead (record) */
    struct ctl_store *w;         /* the writer's session, used by exec only */
    pthread_mutex_t mu;          /* db: the drains' writes run in the thread pool */
};

/* A change set's statements (record, on the loop), written by exec in a
 * worker thread: the SQL texts are literals, the values copies. */
struct stmt {
    const char *sql;
    int n;
    ptrdiff_t off[PARAMS_MAX]; /* into vals; -1: NULL */
};

struct ctl_store_batch {
    struct stmt *v;
    size_t n, cap;
    char *vals;
    size_t len, vcap;
    uint64_t term;
    char err[512];
    bool nomem;
};

/* ---- parameters and statements ---- */

struct params {
    int n;
    const char *v[PARAMS_MAX];
    char buf[PARAMS_MAX][24];
};

static void
p_str(struct params *p, const char *s)
{
    p->v[p->n++] = s;
}

static void
p_i64(struct params *p, int64_t x)
{
    snprintf(p->buf[p->n], sizeof(p->buf[p->n]), "%" PRId64, x);
    p->v[p->n] = p->buf[p->n];
    p->n++;
}

static void
p_null(struct params *p)
{
    p->v[p->n++] = NULL;
}

static void
set_err(struct ctl_store *st, const char *what)
{
    const char *e = st->db != NULL ? PQerrorMessage(st->db) : "no connection";
    size_t n;

    snprintf(st->err, sizeof(st->err), "%s%s%s", what, *e != '\0' ? ": " : "", e);
    n = strlen(st->err);
    while (n > 0 && (st->err[n - 1] == '\n' || st->err[n - 1] == ' '))
        st->err[--n] = '\0';
}

static int
conn_err(const struct ctl_store *st)
{
    return st->db == NULL || PQstatus(st->db) != CONNECTION_OK ? -ENOTCONN : -EIO;
}

static bool
grow(void **v, size_t *cap, size_t want, size_t size)
{
    size_t c = *cap ? *cap : 64;
    void *nv;

    if (want <= *cap)
        return true;
    while (c < want)
        c *= 2;
    if ((nv = realloc(*v, c * size)) == NULL)
        return false;
    *v = nv;
    *cap = c;
    return true;
}

/* record: sql (a literal) with copies of p's values, for exec. */
static int
record_stmt(struct ctl_store_batch *b, const char *sql, const struct params *p)
{
    struct stmt *t;
    int i;

    if (!grow((void **)&b->v, &b->cap, b->n + 1, sizeof(*b->v))) {
        b->nomem = true;
        return -ENOMEM;
    }
    t = &b->v[b->n];
    t->sql = sql;
    t->n = p != NULL ? p->n : 0;
    for (i = 0; i < t->n; i++) {
        size_t l;

        t->off[i] = -1;
        if (p->v[i] == NULL)
            continue;
        l = strlen(p->v[i]) + 1;
        if (!grow((void **)&b->vals, &b->vcap, b->len + l, 1)) {
            b->nomem = true;
            return -ENOMEM;
        }
        memcpy(b->vals + b->len, p->v[i], l);
        t->off[i] = (ptrdiff_t)b->len;
        b->len += l;
    }
    b->n++;
    return 0;
}

/* Run sql with p (NULL: the simple protocol, several statements may be
 * given); *out gets the result when the caller wants rows. While recording
 * (st->rec), a statement with no result wanted is recorded instead. */
static int
run(struct ctl_store *st, const char *sql, const struct params *p, PGresult **out)
{
    PGresult *r;
    ExecStatusType s;

    if (st->rec != NULL && out == NULL)
        return record_stmt(st->rec, sql, p);
    r = p == NULL ? PQexec(st->db, sql)
                  : PQexecParams(st->db, sql, p->n, NULL, p->v, NULL, NULL, 0);
    s = PQresultStatus(r);

    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        int rc = conn_err(st);

        /* 53100: disk full; 57014: statement timeout (-ETIMEDOUT). */
        if (state != NULL && strcmp(state, "53100") == 0)
            rc = -ENOSPC;
        else if (state != NULL && strcmp(state, "57014") == 0)
            rc = -ETIMEDOUT;
        set_err(st, "postgresql");
        log_error("store_error", "sql=%s err=%s", log_q(sql), log_q(st->err));
        PQclear(r);
        return rc;
    }
    if (out != NULL)
        *out = r;
    else
        PQclear(r);
    return 0;
}

static int
exec0(struct ctl_store *st, const char *sql)
{
    return run(st, sql, NULL, NULL);
}

static int64_t
col_i64(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static const char *
col_str(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col);
}

/* ---- schema ---- */

/* migrations[v] takes a database at version v to v + 1. */
static const char *const migrations[PG_SCHEMA_VERSION] = {
    "CREATE TABLE apps(name TEXT PRIMARY KEY, created_ms BIGINT NOT NULL,"
    " current_release BIGINT NOT NULL DEFAULT 0, good_release BIGINT NOT NULL DEFAULT 0,"
    " deploy_release BIGINT NOT NULL DEFAULT 0, deploy_from BIGINT NOT NULL DEFAULT 0,"
    " deploy_state TEXT NOT NULL DEFAULT 'none', deploy_reason TEXT NOT NULL DEFAULT '',"
    " deploy_started_ms BIGINT NOT NULL DEFAULT 0, deploy_finished_ms BIGINT NOT NULL DEFAULT 0);"
    "CREATE TABLE config(app TEXT NOT NULL REFERENCES apps(name), key TEXT NOT NULL,"
    " value TEXT NOT NULL, PRIMARY KEY(app, key));"
    "CREATE TABLE releases(app TEXT NOT NULL REFERENCES apps(name), version BIGINT NOT NULL,"
    " slug_sha256 TEXT NOT NULL, slug_size BIGINT NOT NULL, description TEXT NOT NULL,"
    " created_ms BIGINT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '',"
    " PRIMARY KEY(app, version));"
    "CREATE TABLE release_config(app TEXT NOT NULL, version BIGINT NOT NULL, key TEXT NOT NULL,"
    " value TEXT NOT NULL, PRIMARY KEY(app, version, key),"
    " FOREIGN KEY(app, version) REFERENCES releases(app, version));"
    "CREATE TABLE release_types(app TEXT NOT NULL, version BIGINT NOT NULL, pos BIGINT NOT NULL,"
    " type TEXT NOT NULL, command TEXT NOT NULL, PRIMARY KEY(app, version, type),"
    " FOREIGN KEY(app, version) REFERENCES releases(app, version));"
    "CREATE TABLE formations(pos BIGSERIAL, app TEXT NOT NULL REFERENCES apps(name),"
    " type TEXT NOT NULL, quantity BIGINT NOT NULL, health TEXT NOT NULL,"
    " grace_ms BIGINT NOT NULL, boot_timeout_ms BIGINT NOT NULL, max_surge TEXT NOT NULL,"
    " max_unavailable TEXT NOT NULL, min_healthy_ms BIGINT NOT NULL,"
    " deploy_timeout_ms BIGINT NOT NULL, shutdown_delay_ms BIGINT NOT NULL,"
    " memory_bytes BIGINT NOT NULL, cpu_milli BIGINT NOT NULL, pids BIGINT NOT NULL,"
    " nofile BIGINT NOT NULL, PRIMARY KEY(app, type));"
    "CREATE TABLE nodes(pos BIGSERIAL, name TEXT PRIMARY KEY, address TEXT NOT NULL,"
    " port_min INTEGER NOT NULL, port_max INTEGER NOT NULL, capacity BIGINT NOT NULL,"
    " state TEXT NOT NULL, generation BIGINT NOT NULL, boot_id TEXT NOT NULL,"
    " admin TEXT NOT NULL DEFAULT 'ready');"
    "CREATE TABLE instances(id BIGINT PRIMARY KEY, app TEXT NOT NULL REFERENCES apps(name),"
    " type TEXT NOT NULL, idx BIGINT NOT NULL, release BIGINT NOT NULL, node TEXT,"
    " port INTEGER NOT NULL, state TEXT NOT NULL, stopping INTEGER NOT NULL,"
    " restarts BIGINT NOT NULL, pid INTEGER NOT NULL, exit_code INTEGER NOT NULL,"
    " exit_signal INTEGER NOT NULL, since_ms BIGINT NOT NULL, reason TEXT NOT NULL);"
    "CREATE INDEX instances_app ON instances(app);"
    "CREATE TABLE oneoffs(id BIGINT PRIMARY KEY REFERENCES instances(id) ON DELETE CASCADE,"
    " command TEXT NOT NULL, ptype TEXT NOT NULL, attach INTEGER NOT NULL, tty INTEGER NOT NULL);"
    "CREATE TABLE drains(id TEXT PRIMARY KEY, app TEXT NOT NULL REFERENCES apps(name),"
    " url TEXT NOT NULL, created_ms BIGINT NOT NULL, UNIQUE(app, url));"
    "CREATE TABLE restarts(id BIGINT PRIMARY KEY REFERENCES instances(id) ON DELETE CASCADE);"
    "CREATE TABLE destroying(app TEXT PRIMARY KEY REFERENCES apps(name));"
    /* The leader (leader.c): one row. term counts leaderships; renewed is
     * the leader's last lease renewal on the database's clock; pid is its
     * leader session's backend, which a standby ends once that lease has
     * run out (a frozen leader still holds its advisory lock). */
    "CREATE TABLE leader(id INTEGER PRIMARY KEY CHECK (id = 1), term BIGINT NOT NULL,"
    " api TEXT NOT NULL DEFAULT '', agent TEXT NOT NULL DEFAULT '',"
    " pid INTEGER NOT NULL DEFAULT 0, renewed TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp());"
    "INSERT INTO leader(id, term) VALUES(1, 0);"
    "CREATE TABLE slugs(sha256 TEXT NOT NULL, seq INTEGER NOT NULL, data BYTEA NOT NULL,"
    " PRIMARY KEY(sha256, seq));"
    "INSERT INTO meta(key, value) VALUES('next_instance_id', 1);",
};

static int
schema_version(struct ctl_store *st, int64_t *v)
{
    PGresult *r = NULL;
    int rc = run(st, "SELECT value FROM meta WHERE key = 'schema_version'", NULL, &r);

    if (rc < 0)
        return rc;
    *v = PQntuples(r) > 0 ? col_i64(r, 0, 0) : 0;
    PQclear(r);
    return 0;
}

/*
 * Versioned, in one transaction, under a transaction-scoped advisory lock:
 * a second controller starting at the same moment waits here, then finds
 * the schema current.
 */
static int
migrate(struct ctl_store *st)
{
    struct params p = {0};
    int64_t v = 0;
    int rc;

    if ((rc = exec0(st, "BEGIN")) < 0)
        return rc;
    p_i64(&p, PG_MIGRATE_LOCK);
    if ((rc = run(st, "SELECT pg_advisory_xact_lock($1)", &p, NULL)) < 0 ||
        (rc = exec0(st, "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY,"
                        " value BIGINT NOT NULL)")) < 0 ||
        (rc = schema_version(st, &v)) < 0)
        goto out;
    if (v > PG_SCHEMA_VERSION) {
        snprintf(st->err, sizeof(st->err),
                 "the database's schema is version %" PRId64
                 ", newer than this controller's %d: upgrade this controller",
                 v, PG_SCHEMA_VERSION);
        rc = -EPROTO;
        goto out;
    }
    for (; v < PG_SCHEMA_VERSION; v++) {
        log_info("store_migrate", "backend=postgresql from=%" PRId64 " to=%" PRId64, v, v + 1);
        if ((rc = exec0(st, migrations[v])) < 0)
            goto out;
        p.n = 0;
        p_i64(&p, v + 1);
        if ((rc = run(st,
                      "INSERT INTO meta(key, value) VALUES('schema_version', $1) "
                      "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                      &p, NULL)) < 0)
            goto out;
    }
    rc = exec0(st, "COMMIT");
out:
    if (rc < 0)
        exec0(st, "ROLLBACK");
    return rc;
}

/* ---- open and close ---- */

/* 0 when url is a libpq connection URI drover takes; else -EINVAL and why. */
int
ctl_store_pg_check_url(const char *url, char *err, size_t errsz)
{
    PQconninfoOption *o;
    char *e = NULL;

    if (strncmp(url, "postgresql://", 13) != 0 && strncmp(url, "postgres://", 11) != 0) {
        snprintf(err, errsz, "not a postgresql:// URL");
        return -EINVAL;
    }
    o = PQconninfoParse(url, &e);
    if (o == NULL) {
        size_t n;

        snprintf(err, errsz, "%s", e != NULL ? e : "out of memory");
        n = strlen(err);
        while (n > 0 && err[n - 1] == '\n')
            err[--n] = '\0';
        PQfreemem(e);
        return -EINVAL;
    }
    PQconninfoFree(o);
    return 0;
}

/*
 * A session with drover's settings: the statement and lock timeouts bound
 * how long the loop can wait; a session left idle inside a transaction (a
 * frozen controller) is ended by the server, so its row locks cannot hold up
 * a new leader's term bump.
 */
PGconn *
ctl_pg_connect(const char *url, const char *app, char *err, size_t errsz)
{
    static const char *const keys[] = {"dbname",
                                       "connect_timeout",
                                       "keepalives_idle",
                                       "keepalives_interval",
                                       "keepalives_count",
                                       "options",
                                       "application_name",
                                       "tcp_user_timeout",
                                       NULL};
    /* tcp_user_timeout: a query whose server stopped answering (a cut
     * network) fails after 3 s, not after TCP's minutes of retries. */
    static const char *const vals[] = {NULL,
                                       "3",
                                       "2",
                                       "1",
                                       "2",
                                       "-c statement_timeout=5000 -c lock_timeout=3000 "
                                       "-c idle_in_transaction_session_timeout=3000",
                                       "drover-controller",
                                       "3000",
                                       NULL};
    const char *v[ARRAY_SIZE(vals)];
    PGconn *c;
    size_t i, n;

    memcpy(v, vals, sizeof(v));
    v[0] = url; /* expand_dbname: the URL's own settings win over ours */
    if (app != NULL)
        v[6] = app;
    c = PQconnectdbParams(keys, v, 1);
    if (c != NULL && PQstatus(c) == CONNECTION_OK) {
        PQclear(PQexec(c, "SET client_min_messages = warning"));
        return c;
    }
    snprintf(err, errsz, "%s", c != NULL ? PQerrorMessage(c) : "out of memory");
    for (n = strlen(err); n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' ');)
        err[--n] = '\0';
    for (i = 0; err[i] != '\0'; i++)
        if (err[i] == '\n')
            err[i] = ' ';
    PQfinish(c);
    return NULL;
}

static int
pg_open(const char *url, struct ctl_store **out)
{
    struct ctl_store *st = calloc(1, sizeof(*st));
    int rc;

    if (st == NULL)
        return -ENOMEM;
    snprintf(st->url, sizeof(st->url), "%s", url);
    pthread_mutex_init(&st->mu, NULL);
    st->db = ctl_pg_connect(url, NULL, st->err, sizeof(st->err));
    if (st->db == NULL) {
        log_error("store_open_failed", "backend=postgresql err=%s", log_q(st->err));
        free(st);
        return -ENOTCONN;
    }
    rc = migrate(st);
    if (rc == 0 && (st->w = calloc(1, sizeof(*st->w))) == NULL)
        rc = -ENOMEM;
    if (rc < 0) {
        log_error("store_open_failed", "backend=postgresql err=%s", log_q(st->err));
        PQfinish(st->db);
        free(st);
        return rc;
    }
    snprintf(st->w->url, sizeof(st->w->url), "%s", url);
    *out = st;
    return 0;
}

static void
pg_close(struct ctl_store *st)
{
    if (st == NULL)
        return;
    if (st->w != NULL)
        PQfinish(st->w->db);
    free(st->w);
    PQfinish(st->db);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

static const char *
pg_errmsg(const struct ctl_store *st)
{
    return st->err[0] != '\0' ? st->err : "no error";
}

void
ctl_store_pg_set_term(struct ctl_store *st, uint64_t term)
{
    st->term = term;
}

/*
 * Begin a write: the session is re-established if it was lost (the
 * database restarted), and the write is fenced by the term (see the top).
 */
static int
begin_fenced(struct ctl_store *st)
{
    struct params p = {0};
    PGresult *r = NULL;
    int64_t term;
    int rc;

    if (PQstatus(st->db) != CONNECTION_OK) {
        PQreset(st->db);
        if (PQstatus(st->db) != CONNECTION_OK) {
            set_err(st, "the database is unreachable");
            return -ENOTCONN;
        }
        log_info("store_reconnected", "backend=postgresql");
    }
    if ((rc = exec0(st, "BEGIN")) < 0)
        return rc;
    if (st->term == 0)
        return 0;
    (void)p;
    if ((rc = run(st, "SELECT term FROM leader WHERE id = 1 FOR KEY SHARE", NULL, &r)) < 0)
        goto fail;
    term = PQntuples(r) == 1 ? col_i64(r, 0, 0) : -1;
    PQclear(r);
    if (term != (int64_t)st->term) {
        snprintf(st->err, sizeof(st->err),
                 "fenced: this controller leads term %" PRIu64
                 " but the database is at term %" PRId64,
                 st->term, term);
        log_error("store_fenced", "term=%" PRIu64 " stored_term=%" PRId64, st->term, term);
        rc = -ESTALE;
        goto fail;
    }
    return 0;
fail:
    exec0(st, "ROLLBACK");
    return rc;
}

static int
commit_or_rollback(struct ctl_store *st, int rc)
{
    if (rc == 0)
        rc = exec0(st, "COMMIT");
    if (rc < 0 && PQstatus(st->db) == CONNECTION_OK && PQtransactionStatus(st->db) != PQTRANS_IDLE)
        exec0(st, "ROLLBACK");
    return rc;
}

/* ---- load ---- */

struct loader {
    struct ctl_model *m;
    uint64_t now;
};

typedef int (*row_fn)(const PGresult *r, int i, struct loader *ld);

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
app_row(const PGresult *r, int i, struct loader *ld)
{
    struct ctl_app *a;
    int rc = ctl_app_add(ld->m, col_str(r, i, 0), (uint64_t)col_i64(r, i, 1), &a);

    if (rc < 0)
        return rc;
    a->current = (uint32_t)col_i64(r, i, 2);
    a->good = (uint32_t)col_i64(r, i, 3);
    a->deploy.release = (uint32_t)col_i64(r, i, 4);
    a->deploy.from = (uint32_t)col_i64(r, i, 5);
    if (ctl_deploy_state_parse(col_str(r, i, 6), &a->deploy.state) < 0)
        return -EBADMSG;
    snprintf(a->deploy.reason, sizeof(a->deploy.reason), "%s", col_str(r, i, 7));
    a->deploy.started_ms = (uint64_t)col_i64(r, i, 8);
    a->deploy.finished_ms = (uint64_t)col_i64(r, i, 9);
    /* Stored deadlines are wall clock; the running controller's are
     * monotonic: as long ago as the wall clock says (none if in its future). */
    {
        uint64_t wall = now_ms(), started = a->deploy.started_ms;
        uint64_t ago = wall > started ? wall - started : 0;

        a->deploy.started_mono = ld->now > ago ? ld->now - ago : 0;
    }
    if (a->deploy.state == CTL_DEPLOY_RUNNING || a->deploy.state == CTL_DEPLOY_RELEASING)
        ld->m->ndeploying++;
    return 0;
}

static int
config_row(const PGresult *r, int i, struct loader *ld)
{
    struct ctl_app *a = ctl_app_find(ld->m, col_str(r, i, 0));

    return a == NULL ? -EBADMSG : ctl_config_set(a, col_str(r, i, 1), col_str(r, i, 2));
}

static struct ctl_release *
find_release(struct ctl_model *m, const PGresult *r, int i)
{
    struct ctl_app *a = ctl_app_find(m, col_str(r, i, 0));

    return a == NULL ? NULL : ctl_release_get(a, (uint32_t)col_i64(r, i, 1));
}

static int
release_row(const PGresult *r, int i, struct loader *ld)
{
    struct ctl_app *a = ctl_app_find(ld->m, col_str(r, i, 0));
    struct ctl_release *rel;
    int rc;

    if (a == NULL || strlen(col_str(r, i, 2)) != 64)
        return -EBADMSG;
    if ((rel = ctl_release_new()) == NULL)
        return -ENOMEM;
    rel->version = (uint32_t)col_i64(r, i, 1);
    strcpy(rel->slug_sha256, col_str(r, i, 2));
    rel->slug_size = (uint64_t)col_i64(r, i, 3);
    rel->description = strdup(col_str(r, i, 4));
    rel->created_ms = (uint64_t)col_i64(r, i, 5);
    snprintf(rel->status, sizeof(rel->status), "%s", col_str(r, i, 6));
    snprintf(rel->reason, sizeof(rel->reason), "%s", col_str(r, i, 7));
    rel->stored = true;
    rc = rel->description == NULL ? -ENOMEM : ctl_release_append(a, rel);
    if (rc < 0)
        ctl_release_free(rel);
    return rc;
}

static int
release_config_row(const PGresult *r, int i, struct loader *ld)
{
    struct ctl_release *rel = find_release(ld->m, r, i);

    return rel == NULL ? -EBADMSG
                       : kv_push(&rel->config, &rel->nconfig, col_str(r, i, 2), col_str(r, i, 3));
}

static int
release_type_row(const PGresult *r, int i, struct loader *ld)
{
    struct ctl_release *rel = find_release(ld->m, r, i);
    const char *name = col_str(r, i, 2);
    struct ctl_ptype *v;

    if (rel == NULL || !name_type_valid(name))
        return -EBADMSG;
    v = realloc(rel->types, (rel->ntypes + 1) * sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    rel->types = v;
    strcpy(v[rel->ntypes].name, name);
    v[rel->ntypes].command = strdup(col_str(r, i, 3));
    if (v[rel->ntypes].command == NULL)
        return -ENOMEM;
    rel->ntypes++;
    return 0;
}

static int
formation_row(const PGresult *r, int i, struct loader *ld)
{
    struct ctl_app *a = ctl_app_find(ld->m, col_str(r, i, 0));
    struct ctl_formation *f;
    int rc;

    if (a == NULL)
        return -EBADMSG;
    rc = ctl_formation_add(a, col_str(r, i, 1), (uint32_t)col_i64(r, i, 2), &f);
    if (rc < 0)
        return rc;
    snprintf(f->health, sizeof(f->health), "%s", col_str(r, i, 3));
    f->grace_ms = (uint32_t)col_i64(r, i, 4);
    f->boot_timeout_ms = (uint32_t)col_i64(r, i, 5);
    snprintf(f->max_surge, sizeof(f->max_surge), "%s", col_str(r, i, 6));
    snprintf(f->max_unavailable, sizeof(f->max_unavailable), "%s", col_str(r, i, 7));
    f->min_healthy_ms = (uint32_t)col_i64(r, i, 8);
    f->deploy_timeout_ms = (uint32_t)col_i64(r, i, 9);
    f->shutdown_delay_ms = (uint32_t)col_i64(r, i, 10);
    f->memory_bytes = (uint64_t)col_i64(r, i, 11);
    f->cpu_milli = (uint32_t)col_i64(r, i, 12);
    f->pids = (uint32_t)col_i64(r, i, 13);
    f->nofile = (uint32_t)col_i64(r, i, 14);
    return 0;
}

static int
node_row(const PGresult *r, int i, struct loader *ld)
{
    int64_t lo = col_i64(r, i, 2), hi = col_i64(r, i, 3);
    enum ctl_node_state state, admin;
    struct ctl_node *n;
    int rc;

    if ((rc = ctl_node_add(ld->m, col_str(r, i, 0), &n)) < 0)
        return rc;
    if (lo < 1 || lo > hi || hi > 65535 || ctl_node_state_parse(col_str(r, i, 5), &state) < 0 ||
        ctl_node_state_parse(col_str(r, i, 8), &admin) < 0 || admin == CTL_NODE_DOWN)
        return -EBADMSG;
    /* As store.c: leaving is not a column. */
    ctl_node_update(ld->m, n, state == CTL_NODE_DOWN, admin,
                    state == CTL_NODE_DRAINING && admin != CTL_NODE_DRAINING);
    snprintf(n->address, sizeof(n->address), "%s", col_str(r, i, 1));
    snprintf(n->boot_id, sizeof(n->boot_id), "%s", col_str(r, i, 7));
    n->capacity = (uint32_t)col_i64(r, i, 4);
    n->generation = (uint64_t)col_i64(r, i, 6);
    /* A fresh grace period: the old leader's absence is not the nodes'. */
    n->last_seen_ms = ld->now;
    return ctl_node_set_range(n, (uint16_t)lo, (uint16_t)hi);
}

static int
instance_row(const PGresult *r, int i, struct loader *ld)
{
    struct ctl_model *m = ld->m;
    struct ctl_app *a = ctl_app_find(m, col_str(r, i, 1));
    uint64_t next = m->next_id;
    struct ctl_instance *in;
    struct ctl_node *n;
    int rc;

    rc = a == NULL ? -EBADMSG
                   : ctl_inst_new(m, a, col_str(r, i, 2), (uint32_t)col_i64(r, i, 3),
                                  (uint32_t)col_i64(r, i, 4), (uint64_t)col_i64(r, i, 0), &in);
    if (rc < 0)
        return rc;
    if (next > m->next_id)
        m->next_id = next;
    if (wire_state_parse(col_str(r, i, 7), &in->state) < 0)
        return -EBADMSG;
    in->stopping = col_i64(r, i, 8) != 0;
    in->restarts = (uint32_t)col_i64(r, i, 9);
    in->pid = (int)col_i64(r, i, 10);
    in->exit_code = (int)col_i64(r, i, 11);
    in->exit_signal = (int)col_i64(r, i, 12);
    in->since_ms = (uint64_t)col_i64(r, i, 13);
    str_copy(in->reason, sizeof(in->reason), col_str(r, i, 14));
    if (PQgetisnull(r, i, 5))
        return 0;
    n = ctl_node_find(m, col_str(r, i, 5));
    return n == NULL ? -EBADMSG : ctl_inst_place(m, in, n, (uint16_t)col_i64(r, i, 6));
}

static int
oneoff_row(const PGresult *r, int i, struct loader *ld)
{
    struct ctl_instance *in = ctl_inst_find(ld->m, (uint64_t)col_i64(r, i, 0));

    if (in == NULL)
        return 0;
    in->oneoff = true;
    free(in->command);
    in->command = strdup(col_str(r, i, 1));
    snprintf(in->ptype, sizeof(in->ptype), "%s", col_str(r, i, 2));
    in->attach = col_i64(r, i, 3) != 0;
    in->tty = col_i64(r, i, 4) != 0;
    return in->command == NULL ? -ENOMEM : 0;
}

static int
restart_row(const PGresult *r, int i, struct loader *ld)
{
    struct ctl_instance *in = ctl_inst_find(ld->m, (uint64_t)col_i64(r, i, 0));

    if (in != NULL)
        in->restart = true;
    return 0;
}

static int
destroying_row(const PGresult *r, int i, struct loader *ld)
{
    struct ctl_app *a = ctl_app_find(ld->m, col_str(r, i, 0));

    if (a != NULL && !a->destroying) {
        a->destroying = true;
        ld->m->ndestroying++;
    }
    return 0;
}

static int
meta_row(const PGresult *r, int i, struct loader *ld)
{
    if (strcmp(col_str(r, i, 0), "next_instance_id") == 0 && col_i64(r, i, 1) > 0)
        ld->m->next_id = (uint64_t)col_i64(r, i, 1);
    return 0;
}

/* In order: each table refers only to rows of the tables before it. */
static const struct {
    const char *sql;
    row_fn fn;
} loads[] = {
    {"SELECT key, value FROM meta", meta_row},
    {"SELECT name, created_ms, current_release, good_release, deploy_release, deploy_from, "
     "deploy_state, deploy_reason, deploy_started_ms, deploy_finished_ms FROM apps ORDER BY name",
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
     "cpu_milli, pids, nofile FROM formations ORDER BY app, pos",
     formation_row},
    {"SELECT name, address, port_min, port_max, capacity, state, generation, boot_id, admin "
     "FROM nodes ORDER BY pos",
     node_row},
    {"SELECT id, app, type, idx, release, node, port, state, stopping, restarts, pid, exit_code, "
     "exit_signal, since_ms, reason FROM instances ORDER BY id",
     instance_row},
    {"SELECT id, command, ptype, attach, tty FROM oneoffs ORDER BY id", oneoff_row},
    {"SELECT id FROM restarts ORDER BY id", restart_row},
    {"SELECT app FROM destroying ORDER BY app", destroying_row},
};

/* One snapshot (REPEATABLE READ): what one leader committed, whole. */
static int
pg_load_locked(struct ctl_store *st, struct ctl_model *m, uint64_t now)
{
    struct loader ld = {.m = m, .now = now};
    PGresult *r = NULL;
    size_t k;
    int rc, i;

    m->loading = true;
    rc = exec0(st, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    for (k = 0; rc == 0 && k < ARRAY_SIZE(loads); k++) {
        if ((rc = run(st, loads[k].sql, NULL, &r)) < 0)
            break;
        for (i = 0; rc == 0 && i < PQntuples(r); i++)
            rc = loads[k].fn(r, i, &ld);
        PQclear(r);
    }
    commit_or_rollback(st, rc);
    if (rc < 0)
        log_error("store_load_failed", "backend=postgresql err=%d msg=%s", rc, log_q(st->err));
    m->loading = false;
    ctl_model_clean(m);
    m->capacity_changed = !TAILQ_EMPTY(&m->unplaced);
    if (rc == 0) {
        size_t pos = 0;
        struct ctl_app *a;

        while ((a = ctl_map_next(m->apps, &pos)) != NULL)
            ctl_app_want_reconcile(m, a);
    }
    return rc;
}

static int
pg_load(struct ctl_store *st, struct ctl_model *m, uint64_t now)
{
    int rc;

    pthread_mutex_lock(&st->mu);
    rc = pg_load_locked(st, m, now);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* ---- apply ---- */

static int
apply_release(struct ctl_store *st, const struct ctl_app *a, const struct ctl_release *r)
{
    struct params p = {0};
    size_t i;
    int rc;

    p_str(&p, a->name);
    p_i64(&p, r->version);
    p_str(&p, r->slug_sha256);
    p_i64(&p, (int64_t)r->slug_size);
    p_str(&p, r->description);
    p_i64(&p, (int64_t)r->created_ms);
    p_str(&p, r->status);
    p_str(&p, r->reason);
    if ((rc = run(st,
                  "INSERT INTO releases(app, version, slug_sha256, slug_size, description, "
                  "created_ms, status, reason) VALUES($1, $2, $3, $4, $5, $6, $7, $8)",
                  &p, NULL)) < 0)
        return rc;
    for (i = 0; i < r->nconfig; i++) {
        p.n = 0;
        p_str(&p, a->name);
        p_i64(&p, r->version);
        p_str(&p, r->config[i].key);
        p_str(&p, r->config[i].value);
        if ((rc = run(st,
                      "INSERT INTO release_config(app, version, key, value) "
                      "VALUES($1, $2, $3, $4)",
                      &p, NULL)) < 0)
            return rc;
    }
    for (i = 0; i < r->ntypes; i++) {
        p.n = 0;
        p_str(&p, a->name);
        p_i64(&p, r->version);
        p_i64(&p, (int64_t)i);
        p_str(&p, r->types[i].name);
        p_str(&p, r->types[i].command);
        if ((rc = run(st,
                      "INSERT INTO release_types(app, version, pos, type, command) "
                      "VALUES($1, $2, $3, $4, $5)",
                      &p, NULL)) < 0)
            return rc;
    }
    return 0;
}

static int
apply_app_row(struct ctl_store *st, const struct ctl_app *a)
{
    struct params p = {0};
    int rc;

    p_str(&p, a->name);
    p_i64(&p, (int64_t)a->created_ms);
    p_i64(&p, a->current);
    p_i64(&p, a->good);
    p_i64(&p, a->deploy.release);
    p_i64(&p, a->deploy.from);
    p_str(&p, ctl_deploy_state_name(a->deploy.state));
    p_str(&p, a->deploy.reason);
    p_i64(&p, (int64_t)a->deploy.started_ms);
    p_i64(&p, (int64_t)a->deploy.finished_ms);
    rc = run(st,
             "INSERT INTO apps(name, created_ms, current_release, good_release, deploy_release, "
             "deploy_from, deploy_state, deploy_reason, deploy_started_ms, deploy_finished_ms) "
             "VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT(name) DO UPDATE SET "
             "current_release = excluded.current_release, good_release = excluded.good_release, "
             "deploy_release = excluded.deploy_release, deploy_from = excluded.deploy_from, "
             "deploy_state = excluded.deploy_state, deploy_reason = excluded.deploy_reason, "
             "deploy_started_ms = excluded.deploy_started_ms, "
             "deploy_finished_ms = excluded.deploy_finished_ms",
             &p, NULL);
    if (rc < 0 || !a->destroying)
        return rc;
    p.n = 0;
    p_str(&p, a->name);
    return run(st, "INSERT INTO destroying(app) VALUES($1) ON CONFLICT DO NOTHING", &p, NULL);
}

static int
apply_config(struct ctl_store *st, const struct ctl_app *a)
{
    struct params p = {0};
    size_t i;
    int rc;

    p_str(&p, a->name);
    if ((rc = run(st, "DELETE FROM config WHERE app = $1", &p, NULL)) < 0)
        return rc;
    for (i = 0; i < a->nconfig; i++) {
        p.n = 0;
        p_str(&p, a->name);
        p_str(&p, a->config[i].key);
        p_str(&p, a->config[i].value);
        if ((rc = run(st, "INSERT INTO config(app, key, value) VALUES($1, $2, $3)", &p, NULL)) < 0)
            return rc;
    }
    return 0;
}

static int
apply_formation(struct ctl_store *st, const struct ctl_app *a)
{
    struct params p = {0};
    size_t i;
    int rc;

    p_str(&p, a->name);
    if ((rc = run(st, "DELETE FROM formations WHERE app = $1", &p, NULL)) < 0)
        return rc;
    for (i = 0; i < a->nformation; i++) {
        const struct ctl_formation *f = &a->formation[i];

        p.n = 0;
        p_str(&p, a->name);
        p_str(&p, f->type);
        p_i64(&p, f->quantity);
        p_str(&p, f->health);
        p_i64(&p, f->grace_ms);
        p_i64(&p, f->boot_timeout_ms);
        p_str(&p, f->max_surge);
        p_str(&p, f->max_unavailable);
        p_i64(&p, f->min_healthy_ms);
        p_i64(&p, f->deploy_timeout_ms);
        p_i64(&p, f->shutdown_delay_ms);
        p_i64(&p, (int64_t)f->memory_bytes);
        p_i64(&p, f->cpu_milli);
        p_i64(&p, f->pids);
        p_i64(&p, f->nofile);
        if ((rc = run(st,
                      "INSERT INTO formations(app, type, quantity, health, grace_ms, "
                      "boot_timeout_ms, max_surge, max_unavailable, min_healthy_ms, "
                      "deploy_timeout_ms, shutdown_delay_ms, memory_bytes, cpu_milli, pids, "
                      "nofile) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, "
                      "$14, $15)",
                      &p, NULL)) < 0)
            return rc;
    }
    return 0;
}

static int
apply_app(struct ctl_store *st, const struct ctl_app *a)
{
    struct params p = {0};
    size_t i, j;
    int rc;

    if (a->dirty_row && (rc = apply_app_row(st, a)) < 0)
        return rc;
    if (a->dirty_config && (rc = apply_config(st, a)) < 0)
        return rc;
    for (i = a->nreleases; i > 0 && !a->releases[i - 1]->stored; i--)
        ;
    for (j = 0; j < i; j++) {
        const struct ctl_release *r = a->releases[j];

        if (!r->status_dirty)
            continue;
        p.n = 0;
        p_str(&p, a->name);
        p_i64(&p, r->version);
        p_str(&p, r->status);
        p_str(&p, r->reason);
        if ((rc = run(st,
                      "UPDATE releases SET status = $3, reason = $4 WHERE app = $1 AND "
                      "version = $2",
                      &p, NULL)) < 0)
            return rc;
    }
    for (; i < a->nreleases; i++)
        if ((rc = apply_release(st, a, a->releases[i])) < 0)
            return rc;
    if (a->dirty_formation && (rc = apply_formation(st, a)) < 0)
        return rc;
    return 0;
}

static int
apply_node(struct ctl_store *st, const struct ctl_node *n)
{
    struct params p = {0};

    p_str(&p, n->name);
    p_str(&p, n->address);
    p_i64(&p, n->port_min);
    p_i64(&p, n->port_max);
    p_i64(&p, n->capacity);
    p_str(&p, ctl_node_state_name(n->state));
    p_i64(&p, (int64_t)n->generation);
    p_str(&p, n->boot_id);
    p_str(&p, ctl_node_state_name(n->admin));
    return run(st,
               "INSERT INTO nodes(name, address, port_min, port_max, capacity, state, "
               "generation, boot_id, admin) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9) "
               "ON CONFLICT(name) DO UPDATE SET address = excluded.address, "
               "port_min = excluded.port_min, port_max = excluded.port_max, "
               "capacity = excluded.capacity, state = excluded.state, "
               "generation = excluded.generation, boot_id = excluded.boot_id, "
               "admin = excluded.admin",
               &p, NULL);
}

static int
apply_inst(struct ctl_store *st, const struct ctl_instance *in)
{
    struct params p = {0};
    int rc;

    p_i64(&p, (int64_t)in->id);
    p_str(&p, in->app->name);
    p_str(&p, in->type);
    p_i64(&p, in->idx);
    p_i64(&p, in->release);
    if (in->node != NULL)
        p_str(&p, in->node->name);
    else
        p_null(&p);
    p_i64(&p, in->port);
    p_str(&p, wire_state_name(in->state)); /* by name, as everywhere */
    p_i64(&p, in->stopping);
    p_i64(&p, in->restarts);
    p_i64(&p, in->pid);
    p_i64(&p, in->exit_code);
    p_i64(&p, in->exit_signal);
    p_i64(&p, (int64_t)in->since_ms);
    p_str(&p, in->reason);
    if ((rc = run(st,
                  "INSERT INTO instances(id, app, type, idx, release, node, port, state, "
                  "stopping, restarts, pid, exit_code, exit_signal, since_ms, reason) "
                  "VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) "
                  "ON CONFLICT(id) DO UPDATE SET node = excluded.node, port = excluded.port, "
                  "state = excluded.state, stopping = excluded.stopping, "
                  "restarts = excluded.restarts, pid = excluded.pid, "
                  "exit_code = excluded.exit_code, exit_signal = excluded.exit_signal, "
                  "since_ms = excluded.since_ms, reason = excluded.reason",
                  &p, NULL)) < 0)
        return rc;
    p.n = 0;
    p_i64(&p, (int64_t)in->id);
    /* A failed restart clears the mark of what it did not replace. */
    if ((rc = run(st,
                  in->restart ? "INSERT INTO restarts(id) VALUES($1) ON CONFLICT DO NOTHING"
                              : "DELETE FROM restarts WHERE id = $1",
                  &p, NULL)) < 0)
        return rc;
    if (!in->oneoff)
        return 0;
    p_str(&p, in->command != NULL ? in->command : "");
    p_str(&p, in->ptype);
    p_i64(&p, in->attach);
    p_i64(&p, in->tty);
    return run(st,
               "INSERT INTO oneoffs(id, command, ptype, attach, tty) VALUES($1, $2, $3, $4, $5) "
               "ON CONFLICT DO NOTHING",
               &p, NULL);
}

/* apps:destroy: every row of the app, children first. */
static const char *const app_gone_sql[] = {
    "DELETE FROM instances WHERE app = $1",     "DELETE FROM destroying WHERE app = $1",
    "DELETE FROM drains WHERE app = $1",        "DELETE FROM release_config WHERE app = $1",
    "DELETE FROM release_types WHERE app = $1", "DELETE FROM releases WHERE app = $1",
    "DELETE FROM config WHERE app = $1",        "DELETE FROM formations WHERE app = $1",
    "DELETE FROM apps WHERE name = $1",
};

static int
apply_gone(struct ctl_store *st, const struct ctl_model *m)
{
    struct params p = {0};
    size_t i, k;
    int rc;

    for (i = 0; i < m->ngone_apps; i++) {
        for (k = 0; k < ARRAY_SIZE(app_gone_sql); k++) {
            p.n = 0;
            p_str(&p, m->gone_apps[i]);
            if ((rc = run(st, app_gone_sql[k], &p, NULL)) < 0)
                return rc;
        }
    }
    for (i = 0; i < m->ngone_nodes; i++) {
        p.n = 0;
        p_str(&p, m->gone_nodes[i]);
        if ((rc = run(st, "DELETE FROM nodes WHERE name = $1", &p, NULL)) < 0)
            return rc;
    }
    return 0;
}

static int
apply_all(struct ctl_store *st, struct ctl_model *m)
{
    struct params p = {0};
    struct ctl_app *a;
    struct ctl_node *n;
    struct ctl_instance *in;
    size_t i;
    int rc;

    TAILQ_FOREACH (a, &m->dirty_apps, dirty_link) {
        if ((rc = apply_app(st, a)) < 0)
            return rc;
    }
    TAILQ_FOREACH (n, &m->dirty_nodes, dirty_link) {
        if ((rc = apply_node(st, n)) < 0)
            return rc;
    }
    TAILQ_FOREACH (in, &m->dirty_insts, dirty_link) {
        if ((rc = apply_inst(st, in)) < 0)
            return rc;
    }
    for (i = 0; i < m->ndeleted; i++) {
        p.n = 0;
        p_i64(&p, (int64_t)m->deleted[i]);
        if ((rc = run(st, "DELETE FROM instances WHERE id = $1", &p, NULL)) < 0)
            return rc;
    }
    if (m->next_id_dirty) {
        p.n = 0;
        p_i64(&p, (int64_t)m->next_id);
        if ((rc = run(st,
                      "INSERT INTO meta(key, value) VALUES('next_instance_id', $1) "
                      "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                      &p, NULL)) < 0)
            return rc;
    }
    return 0;
}

static int
pg_apply_locked(struct ctl_store *st, struct ctl_model *m)
{
    int rc;

    if (TAILQ_EMPTY(&m->dirty_apps) && TAILQ_EMPTY(&m->dirty_nodes) &&
        TAILQ_EMPTY(&m->dirty_insts) && m->ndeleted == 0 && !m->next_id_dirty &&
        m->ngone_apps == 0 && m->ngone_nodes == 0)
        return 0;
    if ((rc = begin_fenced(st)) < 0)
        return rc;
    rc = apply_gone(st, m);
    if (rc == 0)
        rc = apply_all(st, m);
    if ((rc = commit_or_rollback(st, rc)) < 0)
        return rc;
    ctl_model_clean(m);
    return 0;
}

static int
pg_apply(struct ctl_store *st, struct ctl_model *m)
{
    int rc;

    pthread_mutex_lock(&st->mu);
    rc = pg_apply_locked(st, m);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* ---- apply off the loop (store.h: record, exec, done) ---- */

static void
batch_free(struct ctl_store_batch *b)
{
    if (b == NULL)
        return;
    free(b->v);
    free(b->vals);
    free(b);
}

/* On the loop: the statements pg_apply would run, recorded by run(). */
static int
pg_record(struct ctl_store *st, struct ctl_model *m, struct ctl_store_batch **out)
{
    struct ctl_store_batch *b;
    int rc;

    *out = NULL;
    if ((b = calloc(1, sizeof(*b))) == NULL)
        return -ENOMEM;
    b->term = st->term;
    st->rec = b;
    rc = apply_gone(st, m);
    if (rc == 0)
        rc = apply_all(st, m);
    st->rec = NULL;
    if (rc < 0 || b->n == 0) {
        if (rc < 0)
            snprintf(st->err, sizeof(st->err), "out of memory recording a change set");
        batch_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

/*
 * In a worker thread: the batch in one fenced transaction, on the writer's
 * own session (opened at the first batch, re-established by begin_fenced
 * when lost), so that the loop's session is never used by two threads.
 */
static int
pg_exec(struct ctl_store *st, struct ctl_store_batch *b)
{
    struct ctl_store *w = st->w;
    struct params p;
    size_t i;
    int rc, k;

    if (w == NULL) {
        snprintf(b->err, sizeof(b->err), "out of memory");
        return -ENOMEM;
    }
    if (w->db == NULL && (w->db = ctl_pg_connect(w->url, NULL, w->err, sizeof(w->err))) == NULL) {
        memcpy(b->err, w->err, sizeof(b->err));
        return -ENOTCONN;
    }
    w->term = b->term;
    w->err[0] = '\0';
    rc = begin_fenced(w);
    for (i = 0; rc == 0 && i < b->n; i++) {
        p.n = b->v[i].n;
        for (k = 0; k < p.n; k++)
            p.v[k] = b->v[i].off[k] < 0 ? NULL : b->vals + b->v[i].off[k];
        rc = run(w, b->v[i].sql, &p, NULL);
    }
    rc = commit_or_rollback(w, rc);
    if (rc < 0)
        snprintf(b->err, sizeof(b->err), "%s", w->err);
    return rc;
}

/* On the loop: the writer's error becomes the store's. */
static void
pg_done(struct ctl_store *st, struct ctl_store_batch *b)
{
    if (b->err[0] != '\0')
        snprintf(st->err, sizeof(st->err), "%s", b->err);
    batch_free(b);
}

/* Nothing periodic: PostgreSQL checkpoints itself. */
static int
pg_start(struct ctl_store *st, uv_loop_t *loop)
{
    (void)st;
    (void)loop;
    return 0;
}

static void
pg_stop(struct ctl_store *st)
{
    (void)st;
}

/* ---- log drains: fenced like every other write ---- */

static int
pg_drain_put_locked(struct ctl_store *st, const char *id, const char *app, const char *url,
                    uint64_t created_ms)
{
    struct params p = {0};
    int rc;

    if ((rc = begin_fenced(st)) < 0)
        return rc;
    p_str(&p, id);
    p_str(&p, app);
    p_str(&p, url);
    p_i64(&p, (int64_t)created_ms);
    rc = run(st, "INSERT INTO drains(id, app, url, created_ms) VALUES($1, $2, $3, $4)", &p, NULL);
    return commit_or_rollback(st, rc);
}

static int
pg_drain_put(struct ctl_store *st, const char *id, const char *app, const char *url,
             uint64_t created_ms)
{
    int rc;

    pthread_mutex_lock(&st->mu);
    rc = pg_drain_put_locked(st, id, app, url, created_ms);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static int
pg_drain_del_locked(struct ctl_store *st, const char *id)
{
    struct params p = {0};
    int rc;

    if ((rc = begin_fenced(st)) < 0)
        return rc;
    p_str(&p, id);
    rc = run(st, "DELETE FROM drains WHERE id = $1", &p, NULL);
    return commit_or_rollback(st, rc);
}

static int
pg_drain_del(struct ctl_store *st, const char *id)
{
    int rc;

    pthread_mutex_lock(&st->mu);
    rc = pg_drain_del_locked(st, id);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static int
pg_drains_each_locked(struct ctl_store *st, ctl_store_drain_fn *fn, void *arg)
{
    PGresult *r = NULL;
    int rc, i;

    rc = run(st, "SELECT id, app, url, created_ms FROM drains ORDER BY created_ms, id", NULL, &r);
    if (rc < 0)
        return rc;
    for (i = 0; i < PQntuples(r); i++)
        if (!fn(arg, col_str(r, i, 0), col_str(r, i, 1), col_str(r, i, 2),
                (uint64_t)col_i64(r, i, 3)))
            break;
    PQclear(r);
    return 0;
}

static int
pg_drains_each(struct ctl_store *st, ctl_store_drain_fn *fn, void *arg)
{
    int rc;

    pthread_mutex_lock(&st->mu);
    rc = pg_drains_each_locked(st, fn, arg);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* ---- slugs in the database (slugs.c) ---- */

/*
 * These run in the thread pool (slugs.c's work functions), so each opens a
 * session of its own: a libpq session is never shared between threads.
 */

/*
 * Store the file at path as slug sha, in SLUG_ROW_BYTES rows, in one
 * transaction (a slug is there whole or not at all). Not fenced: a slug is
 * content-addressed, so a stale leader's copy is the same bytes.
 */
int
ctl_pg_slug_put(const char *url, const char *sha, const char *path)
{
    const char *v[3] = {sha, NULL, NULL};
    int len[3] = {0, 0, 0}, fmt[3] = {0, 0, 1};
    struct ctl_store st = {0};
    char seqs[16];
    uint8_t *buf = NULL;
    FILE *f = NULL;
    int rc, seq = 0;
    size_t n;

    if ((f = fopen(path, "rb")) == NULL)
        return -errno;
    rc = -ENOMEM;
    if ((buf = malloc(SLUG_ROW_BYTES)) == NULL)
        goto out;
    rc = -ENOTCONN;
    if ((st.db = ctl_pg_connect(url, NULL, st.err, sizeof(st.err))) == NULL)
        goto out;
    if ((rc = exec0(&st, "BEGIN")) < 0)
        goto out;
    if ((rc = run(&st, "DELETE FROM slugs WHERE sha256 = $1", &(struct params){.n = 1, .v = {sha}},
                  NULL)) < 0)
        goto out;
    while ((n = fread(buf, 1, SLUG_ROW_BYTES, f)) > 0) {
        PGresult *r;

        snprintf(seqs, sizeof(seqs), "%d", seq++);
        v[1] = seqs;
        v[2] = (const char *)buf;
        len[2] = (int)n;
        r = PQexecParams(st.db, "INSERT INTO slugs(sha256, seq, data) VALUES($1, $2, $3)", 3, NULL,
                         v, len, fmt, 0);
        rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : conn_err(&st);
        PQclear(r);
        if (rc < 0)
            goto out;
    }
    rc = ferror(f) ? -EIO : 0;
out:
    if (st.db != NULL)
        rc = commit_or_rollback(&st, rc);
    if (rc < 0)
        log_error("slug_db_put_failed", "sha256=%s err=%s", sha, log_q(st.err));
    PQfinish(st.db);
    free(buf);
    fclose(f);
    return rc;
}

/* Write slug sha from the database to path (a temp file, then renamed):
 * 0, -ENOENT when the database has no such slug, or another -errno. */
int
ctl_pg_slug_get(const char *url, const char *sha, const char *path)
{
    struct ctl_store st = {0};
    char tmp[4200];
    PGresult *r = NULL;
    FILE *f = NULL;
    int rc, i, fd;

    if ((st.db = ctl_pg_connect(url, NULL, st.err, sizeof(st.err))) == NULL)
        return -ENOTCONN;
    rc = run(&st, "SELECT data FROM slugs WHERE sha256 = $1 ORDER BY seq",
             &(struct params){.n = 1, .v = {sha}}, &r);
    if (rc < 0)
        goto out;
    if (PQntuples(r) == 0) {
        rc = -ENOENT;
        goto out;
    }
    if (strfmt(tmp, sizeof(tmp), "%s.db-XXXXXX", path) < 0) {
        rc = -ENAMETOOLONG;
        goto out;
    }
    if ((fd = mkstemp(tmp)) < 0 || (f = fdopen(fd, "wb")) == NULL) {
        rc = -errno;
        goto out;
    }
    /* Text results: bytea comes hex-escaped; PQunescapeBytea decodes it. */
    for (i = 0; rc == 0 && i < PQntuples(r); i++) {
        size_t n = 0;
        unsigned char *b = PQunescapeBytea((const unsigned char *)PQgetvalue(r, i, 0), &n);

        if (b == NULL || fwrite(b, 1, n, f) != n)
            rc = -EIO;
        PQfreemem(b);
    }
    if (fclose(f) != 0 && rc == 0)
        rc = -EIO;
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
    if (rc == 0)
        log_info("slug_fetched", "sha256=%s from=database", sha);
out:
    PQclear(r);
    PQfinish(st.db);
    return rc;
}

const struct ctl_store_ops ctl_store_pg_ops = {
    .name = "postgresql",
    .open = pg_open,
    .close = pg_close,
    .load = pg_load,
    .apply = pg_apply,
    .start = pg_start,
    .stop = pg_stop,
    .errmsg = pg_errmsg,
    .drain_put = pg_drain_put,
    .drain_del = pg_drain_del,
    .drains_each = pg_drains_each,
    .record = pg_record,
    .exec = pg_exec,
    .done = pg_done,
};
