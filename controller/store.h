/* SPDX-License-Identifier: MIT */
/*
 * store.h: the interface between the model and a store. SQLite (store_sqlite.c,
 * the embedded default) and PostgreSQL (store_pg.c, DROVER_DATABASE_URL)
 * each provide one struct ctl_store_ops; the rest of the controller calls
 * only the functions below, never a backend directly.
 *
 * The change set is what the model marked since the last apply (the
 * ctl_*_touch marks and the list of gone objects): apply writes all of it in
 * one transaction, or nothing. When apply fails, the store is as it was and
 * the caller restores the model (model.c keeps what it needs for that); the
 * store never changes the model except in load.
 *
 * Every function returns 0 or a negative errno (-EIO for a database error,
 * -ENOSPC for a full disk, -ENOTCONN for a lost database session, -ESTALE
 * for a write fenced off by a newer leader's term); errmsg says more.
 */
#ifndef DROVER_CTL_STORE_H
#define DROVER_CTL_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

struct ctl_store;
struct ctl_model;
struct ctl_store_batch;

typedef bool ctl_store_drain_fn(void *arg, const char *id, const char *app, const char *url,
                                uint64_t created_ms);

struct ctl_store_ops {
    const char *name; /* "sqlite", "postgresql" */
    /* where: a file path (sqlite) or a libpq connection URI (postgresql). */
    int (*open)(const char *where, struct ctl_store **out);
    void (*close)(struct ctl_store *st);
    /* Fill an empty model; now is the monotonic clock (ms) for deadlines. */
    int (*load)(struct ctl_store *st, struct ctl_model *m, uint64_t now);
    /* Write the model's marked changes in one transaction. */
    int (*apply)(struct ctl_store *st, struct ctl_model *m);
    /* Periodic housekeeping on the loop (checkpoints); stop undoes start. */
    int (*start)(struct ctl_store *st, uv_loop_t *loop);
    void (*stop)(struct ctl_store *st);
    const char *(*errmsg)(const struct ctl_store *st);
    /* Log drains, written at once, outside the model's change sets. */
    int (*drain_put)(struct ctl_store *st, const char *id, const char *app, const char *url,
                     uint64_t created_ms);
    int (*drain_del)(struct ctl_store *st, const char *id);
    int (*drains_each)(struct ctl_store *st, ctl_store_drain_fn *fn, void *arg);
    /*
     * Optional, for a backend whose writes must not block the loop (a
     * database across the network): apply in two halves. record (on the
     * loop) turns the model's marked changes into a batch of statements
     * that owns copies of every value (*out NULL: nothing to write); exec
     * (in a worker thread, one batch at a time) writes it in one
     * transaction on a session of its own, touching neither st's loop
     * session nor the model; done (on the loop) takes exec's error message
     * into errmsg and frees the batch. A backend without them applies on
     * the loop (SQLite: a local write to the WAL, no fsync per commit).
     */
    int (*record)(struct ctl_store *st, struct ctl_model *m, struct ctl_store_batch **out);
    int (*exec)(struct ctl_store *st, struct ctl_store_batch *b);
    void (*done)(struct ctl_store *st, struct ctl_store_batch *b);
};

extern const struct ctl_store_ops ctl_store_sqlite_ops;
extern const struct ctl_store_ops ctl_store_pg_ops;

#endif
