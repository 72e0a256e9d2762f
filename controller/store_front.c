/* SPDX-License-Identifier: MIT */
/*
 * store_front.c: the store front. It picks a backend (SQLite, the embedded
 * default; PostgreSQL when DROVER_DATABASE_URL is set), and it is the one
 * place that commits the model's change set:
 * apply it, then either forget the marks (ctl_model_clean) or, when the
 * store refused it, put the model back as the store still has it
 * (ctl_model_restore, undo.c).
 *
 * A failing store stops nothing: reads, heartbeats that change nothing,
 * endpoints and running apps carry on from the model; each write is tried
 * and refused with a clear reason (ctl_store_why) until the store takes one
 * again. The logs say so once per episode (event=store_failed, then
 * event=store_recovered), and status shows it meanwhile (m->store_health).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "log.h"
#include "store.h"

struct ctl_db {
    const struct ctl_store_ops *ops;
    struct ctl_store *st;
    bool failing;
    int err;                /* the last failure's */
    uint64_t failures;      /* refused change sets in this episode */
    uint64_t since_wall_ms; /* when the episode began, for people */
    uint64_t since_mono_ms;
    char why[256]; /* what a refused request is told */
};

int
ctl_store_open_with(const struct ctl_store_ops *ops, const char *where, struct ctl_db **out)
{
    struct ctl_db *db = calloc(1, sizeof(*db));
    int rc;

    if (db == NULL)
        return -ENOMEM;
    db->ops = ops;
    if ((rc = ops->open(where, &db->st)) < 0) {
        free(db);
        return rc;
    }
    *out = db;
    return 0;
}

struct ctl_store *
ctl_store_backend(struct ctl_db *db)
{
    return db->st;
}

const char *
ctl_store_backend_name(const struct ctl_db *db)
{
    return db->ops->name;
}

int
ctl_store_open(const char *path, struct ctl_db **out)
{
    return ctl_store_open_with(&ctl_store_sqlite_ops, path, out);
}

int
ctl_store_open_cfg(const struct ctl_config *cfg, struct ctl_db **out)
{
    char path[4200];

    if (cfg->database_url[0] != '\0') /* main.c retries it while unreachable */
        return ctl_store_open_with(&ctl_store_pg_ops, cfg->database_url, out);
    if (strfmt(path, sizeof(path), "%s/drover.db", cfg->data_dir) < 0)
        return -ENAMETOOLONG;
    return ctl_store_open(path, out);
}

void
ctl_store_close(struct ctl_db *db)
{
    if (db == NULL)
        return;
    db->ops->close(db->st);
    free(db);
}

int
ctl_store_load(struct ctl_db *db, struct ctl_model *m, uint64_t now)
{
    return db->ops->load(db->st, m, now);
}

static void
say_failing(struct ctl_db *db, struct ctl_model *m, int rc)
{
    uint64_t wall = now_ms();

    db->failures++;
    db->err = rc;
    if (rc == -ENOSPC)
        snprintf(db->why, sizeof(db->why),
                 "the controller's disk is full (DROVER_DATA_DIR); nothing was changed: free "
                 "some space and try again");
    else
        snprintf(db->why, sizeof(db->why),
                 "the controller cannot write its store (%s); nothing was changed: try again",
                 db->ops->errmsg(db->st));
    if (!db->failing) {
        db->failing = true;
        db->since_wall_ms = wall;
        db->since_mono_ms = mono_ms();
        log_error("store_failed", "store=%s err=%s reason=%s", db->ops->name,
                  log_q(rc == -ENOSPC ? "disk full" : "write failed"),
                  log_q(db->ops->errmsg(db->st)));
    }
    time_t t = (time_t)(db->since_wall_ms / 1000);
    struct tm tm;
    char when[32] = "?";

    if (gmtime_r(&t, &tm) != NULL)
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(m->store_health, sizeof(m->store_health),
             "store failing since %s (%llu writes refused): %s; writes are refused, everything "
             "else carries on",
             when, (unsigned long long)db->failures,
             rc == -ENOSPC ? "the controller's disk is full" : db->ops->errmsg(db->st));
}

static void
say_recovered(struct ctl_db *db, struct ctl_model *m)
{
    if (!db->failing)
        return;
    log_info("store_recovered", "store=%s refused=%llu failing_ms=%llu", db->ops->name,
             (unsigned long long)db->failures, (unsigned long long)(mono_ms() - db->since_mono_ms));
    db->failing = false;
    db->failures = 0;
    m->store_health[0] = '\0';
}

/*
 * Write the model's change set in one transaction. On success the marks
 * are forgotten; on failure the model is restored to what the store holds
 * (nothing of the change set stays) and the error is returned: -ENOSPC for
 * a full disk, another negative errno otherwise; ctl_store_why says it to
 * people.
 */
int
ctl_store_flush(struct ctl_db *db, struct ctl_model *m)
{
    int rc;

    if (!ctl_model_dirty(m)) { /* nothing to write: no news of the store */
        ctl_model_clean(m);
        return 0;
    }
    rc = db->ops->apply(db->st, m);
    if (rc < 0) {
        ctl_model_restore(m);
        say_failing(db, m, rc);
        return rc;
    }
    ctl_model_clean(m);
    say_recovered(db, m);
    return 0;
}

/* ---- the same, off the loop ---- */

struct ctl_store_job {
    struct ctl_db *db;
    struct ctl_store_batch *batch;
    struct ctl_undo *undo; /* the change set's journal */
    int rc;
};

bool
ctl_store_async(const struct ctl_db *db)
{
    return db->ops->record != NULL;
}

int
ctl_store_flush_begin(struct ctl_db *db, struct ctl_model *m, struct ctl_store_job **job)
{
    struct ctl_store_batch *b = NULL;
    struct ctl_store_job *j;
    int rc;

    *job = NULL;
    if (!ctl_model_dirty(m)) {
        ctl_model_clean(m);
        return 0;
    }
    if ((j = calloc(1, sizeof(*j))) == NULL || (rc = db->ops->record(db->st, m, &b)) < 0) {
        rc = j == NULL ? -ENOMEM : rc;
        free(j);
        ctl_model_restore(m);
        say_failing(db, m, rc);
        return rc;
    }
    j->db = db;
    j->batch = b;
    j->undo = ctl_model_detach(m);
    *job = j;
    return 0;
}

void
ctl_store_flush_work(struct ctl_store_job *job)
{
    job->rc = job->batch != NULL ? job->db->ops->exec(job->db->st, job->batch) : 0;
}

int
ctl_store_flush_end(struct ctl_db *db, struct ctl_model *m, struct ctl_store_job *job)
{
    int rc = job->rc;

    if (job->batch != NULL)
        db->ops->done(db->st, job->batch);
    if (rc < 0) {
        ctl_model_unwind(m, job->undo);
        say_failing(db, m, rc);
    } else {
        ctl_undo_settle(job->undo);
        say_recovered(db, m);
    }
    free(job);
    return rc;
}

const char *
ctl_store_why(const struct ctl_db *db)
{
    return db->why[0] != '\0' ? db->why : "the controller cannot write its store";
}

bool
ctl_store_failing(const struct ctl_db *db)
{
    return db->failing;
}

int
ctl_store_start(struct ctl_db *db, uv_loop_t *loop)
{
    return db->ops->start(db->st, loop);
}

void
ctl_store_stop(struct ctl_db *db)
{
    db->ops->stop(db->st);
}

const char *
ctl_store_errmsg(const struct ctl_db *db)
{
    return db->ops->errmsg(db->st);
}

int
ctl_store_drain_put(struct ctl_db *db, const char *id, const char *app, const char *url,
                    uint64_t created_ms)
{
    return db->ops->drain_put(db->st, id, app, url, created_ms);
}

int
ctl_store_drain_del(struct ctl_db *db, const char *id)
{
    return db->ops->drain_del(db->st, id);
}

int
ctl_store_drains_each(struct ctl_db *db, ctl_store_drain_fn *fn, void *arg)
{
    return db->ops->drains_each(db->st, fn, arg);
}
