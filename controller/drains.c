/* SPDX-License-Identifier: MIT */
/*
 * drains.c: each app's log drains (syslog over TCP or TLS, HTTPS), fed from
 * the controller's collated stream.
 *
 * Why from the controller: logs.c already receives every line of every
 * instance and the controller's own events, in one place and in each
 * instance's order, so a drain sees exactly what `drover logs` shows, one
 * configuration serves every node, and nothing changes on the agents
 * (Logplex's design). The cost is one hop and the controller's outbound
 * bandwidth: see the README for the limits at 10,000 nodes.
 *
 * Never block the loop: every drain has its own thread, its own sockets and
 * its own bounded buffer (drain_buf.c). The loop only copies a line into
 * the buffer under the drain's mutex and signals its condition variable;
 * when the buffer is full the oldest line is dropped and counted. The loop
 * does not even wait for that mutex: when the drain thread holds it (taking
 * a batch, or preempted while it does), the line goes to a small spill
 * queue only the loop touches, moved into the buffer, in order, at the next
 * line or the next tick (ctl_drains_tick). Only a full spill (SPILL_LINES
 * lines arriving during one hold) makes the loop wait for the lock rather
 * than drop lines out of order. The
 * thread connects, sends, waits out failures with backoff and jitter
 * (capped at 30 s), and publishes its state under the same mutex for
 * `drover drains`. A slow or dead destination therefore costs the loop one
 * memcpy per line and costs the other drains nothing.
 *
 * Lifetime: a drain is held by the registry and by its thread (refs = 2);
 * whichever lets go last frees it, so drains:remove never waits for a
 * thread stuck in a connect. Drains are stored in the store's drains table
 * (they survive restarts; a change needs no release); buffered lines live
 * in memory only.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#include "ctl.h"
#include "drain.h"
#include "store.h"
#include "log.h"

#define DRAINS_PER_APP 10
#define DRAINS_MAX 1000
#define BACKOFF_BASE_MS 500u
#define BACKOFF_CAP_MS 30000u
#define FAILING_AFTER 5 /* consecutive failures before "failing" */
#define SYSLOG_BATCH_MSGS 1000
#define HTTP_BATCH_MSGS 1000
#define BATCH_BYTES (1u << 20)
#define HTTP_LINGER_MS 100 /* let a batch form */
#define TAKE_CHUNK 64      /* messages formatted per hold of a drain's lock */
#define SPILL_LINES 4096   /* lines the loop queues while a drain's lock is held */
#define FINISH_MS 2000     /* at shutdown, time to send what is buffered */

enum drain_state { ST_CONNECTING, ST_CONNECTED, ST_RETRYING, ST_FAILING };

struct drain {
    char id[24];
    char app[APP_NAME_MAX + 2];
    char url[DRAIN_URL_MAX + 1];
    char host[256]; /* HOSTNAME of drover's own events: the controller's */
    char ca_file[4096];
    struct drain_url u;
    uint64_t created_ms;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* lines arrived, or stop/finish */
    /* Under mu: */
    struct drain_buf *buf;
    volatile int stop; /* give up now (removed) */
    bool finish;       /* the controller is stopping: send what is here, then end */
    int refs;
    enum drain_state state;
    char reason[256];
    char last_error[256];
    uint64_t last_error_ms;
    struct drain_conn *conn; /* to cut a blocked call short */
    /* Loop thread only: */
    struct drain *next;      /* the app's drains, in order of creation */
    struct drain_buf *spill; /* lines that came while the lock was held */
};

struct app_drains {
    char name[APP_NAME_MAX + 2];
    struct drain *first;
    size_t n;
};

struct ctl_drains {
    struct ctl *ctl;
    size_t max_lines;
    char ca_file[4096];
    char host[256];
    struct ctl_map *apps; /* name -> struct app_drains */
    size_t total;
    size_t spilled; /* drains whose spill holds lines */
};

/* Threads still running, for a bounded wait at shutdown. */
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t live_cv = PTHREAD_COND_INITIALIZER;
static int live_threads;

static void
drain_unref(struct drain *d)
{
    int refs;

    pthread_mutex_lock(&d->mu);
    refs = --d->refs;
    pthread_mutex_unlock(&d->mu);
    if (refs > 0)
        return;
    drain_buf_free(d->buf);
    drain_buf_free(d->spill);
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

/* ---- the drain's thread ---- */

/* Wait on d->cv until deadline (monotonic ms). d->mu held. */
static void
wait_until(struct drain *d, uint64_t deadline)
{
    struct timespec ts = {.tv_sec = (time_t)(deadline / 1000),
                          .tv_nsec = (long)(deadline % 1000) * 1000000L};

    pthread_cond_timedwait(&d->cv, &d->mu, &ts);
}

static void
set_state(struct drain *d, enum drain_state st, const char *reason)
{
    pthread_mutex_lock(&d->mu);
    d->state = st;
    snprintf(d->reason, sizeof(d->reason), "%s", reason ? reason : "");
    pthread_mutex_unlock(&d->mu);
}

/* A failed attempt: say why, then wait with backoff and jitter. Returns
 * true when the drain should end instead (removed, or the controller is
 * stopping: no more attempts then). */
static bool
failed(struct drain *d, const char *err, bool permanent, unsigned fails)
{
    uint64_t base = BACKOFF_BASE_MS << (fails > 7 ? 7 : fails - 1), delay, deadline;
    enum drain_state st = permanent || fails >= FAILING_AFTER ? ST_FAILING : ST_RETRYING;
    bool end;

    if (base > BACKOFF_CAP_MS)
        base = BACKOFF_CAP_MS;
    delay = base / 2 + randombytes_uniform((uint32_t)(base / 2) + 1);
    log_warn("drain_failed", "app=%s drain=%s attempt=%u retry_in_ms=%llu err=%s", d->app, d->id,
             fails, (unsigned long long)delay, log_q(err));
    pthread_mutex_lock(&d->mu);
    d->state = st;
    snprintf(d->reason, sizeof(d->reason), "%s", err);
    snprintf(d->last_error, sizeof(d->last_error), "%s", err);
    d->last_error_ms = now_ms();
    deadline = mono_ms() + delay;
    while (!d->stop && !d->finish && mono_ms() < deadline)
        wait_until(d, deadline);
    end = d->stop || d->finish;
    pthread_mutex_unlock(&d->mu);
    return end;
}

/* Take a new batch once the last one is all acked: wait up to wait_ms for
 * lines. Returns the number of messages in bt (0: none), -1 when the drain
 * should end (stopped, or finishing with nothing left). */
static long
next_batch(struct drain *d, struct drain_batch *bt, size_t max_msgs, int wait_ms, int linger_ms)
{
    uint64_t deadline = mono_ms() + (uint64_t)wait_ms;
    long n = 0;

    pthread_mutex_lock(&d->mu);
    while (!d->stop && !d->finish && drain_buf_pending(d->buf) == 0 && mono_ms() < deadline)
        wait_until(d, deadline);
    if (linger_ms > 0 && !d->stop && !d->finish && drain_buf_pending(d->buf) > 0) {
        deadline = mono_ms() + (uint64_t)linger_ms;
        while (!d->stop && !d->finish && drain_buf_pending(d->buf) < max_msgs &&
               mono_ms() < deadline)
            wait_until(d, deadline);
    }
    if (d->stop)
        n = -1;
    else if (drain_buf_pending(d->buf) > 0)
        n = drain_buf_take(d->buf, bt, d->host, d->app, TAKE_CHUNK, BATCH_BYTES, now_ms());
    else if (d->finish)
        n = -1;
    pthread_mutex_unlock(&d->mu);
    /* Formatting costs about a microsecond a line: the rest of a big batch
     * is taken a chunk at a time, letting the loop's pushes in between. */
    while (n > 0 && (size_t)n < max_msgs && bt->bytes.len < BATCH_BYTES) {
        long more;

        pthread_mutex_lock(&d->mu);
        more = d->stop || drain_buf_pending(d->buf) == 0
                   ? n
                   : drain_buf_take(d->buf, bt, d->host, d->app,
                                    max_msgs - (size_t)n < TAKE_CHUNK ? max_msgs - (size_t)n
                                                                      : TAKE_CHUNK,
                                    BATCH_BYTES, now_ms());
        pthread_mutex_unlock(&d->mu);
        if (more <= n)
            break;
        n = more;
    }
    if (n < -1)
        n = 0; /* out of memory: try again later */
    return n;
}

static void
ack(struct drain *d, struct drain_batch *bt, size_t n)
{
    pthread_mutex_lock(&d->mu);
    drain_buf_ack(d->buf, bt, n);
    pthread_mutex_unlock(&d->mu);
}

static bool
should_end(struct drain *d, const struct drain_batch *bt)
{
    bool end;

    pthread_mutex_lock(&d->mu);
    end = d->stop || (d->finish && bt->acked == bt->n && drain_buf_pending(d->buf) == 0);
    pthread_mutex_unlock(&d->mu);
    return end;
}

static void
set_conn(struct drain *d, struct drain_conn *k)
{
    pthread_mutex_lock(&d->mu);
    d->conn = k;
    pthread_mutex_unlock(&d->mu);
}

static void
run_syslog(struct drain *d, const struct drain_ctx *c, struct drain_batch *bt)
{
    struct drain_conn *k = NULL;
    unsigned fails = 0;
    char err[256];
    bool permanent, ever = false;

    while (!should_end(d, bt)) {
        if (k == NULL) {
            if (drain_syslog_open(c, &k, err, sizeof(err), &permanent) < 0) {
                k = NULL;
                if (failed(d, err, permanent, ++fails))
                    break;
                continue;
            }
            set_conn(d, k);
            if (fails > 0 || !ever)
                log_info("drain_connected", "app=%s drain=%s after_failures=%u", d->app, d->id,
                         fails);
            set_state(d, ST_CONNECTED, NULL);
            fails = 0;
            ever = true;
        }
        if (bt->acked == bt->n && next_batch(d, bt, SYSLOG_BATCH_MSGS, 1000, 0) <= 0) {
            /* Idle: notice a server that went away before a line needs it. */
            if (drain_syslog_dead(k))
                goto lost;
            continue;
        }
        if (drain_syslog_dead(k))
            goto lost;
        size_t want = bt->bytes.len - bt->acked_off;
        size_t wrote = drain_syslog_write(k, bt->bytes.p + bt->acked_off, want, err, sizeof(err));
        size_t upto = bt->acked_off + wrote, n = bt->acked;

        while (n < bt->n && bt->v[n].end <= upto)
            n++;
        ack(d, bt, n);
        if (wrote == want)
            continue;
        set_conn(d, NULL);
        drain_syslog_close(k);
        k = NULL;
        if (failed(d, err, false, ++fails))
            break;
        continue;
    lost:
        set_conn(d, NULL);
        drain_syslog_close(k);
        k = NULL;
        if (failed(d, "the server closed the connection", false, ++fails))
            break;
    }
    set_conn(d, NULL);
    drain_syslog_close(k);
}

static void
run_http(struct drain *d, const struct drain_ctx *c, struct drain_batch *bt)
{
    struct drain_http *h = drain_http_new(c, d->id);
    unsigned fails = 0;
    char err[256];
    bool permanent;

    if (h == NULL) {
        set_state(d, ST_FAILING, "out of memory");
        return;
    }
    while (!should_end(d, bt)) {
        if (bt->acked == bt->n && next_batch(d, bt, HTTP_BATCH_MSGS, 1000, HTTP_LINGER_MS) <= 0)
            continue;
        if (drain_http_post(h, bt, err, sizeof(err), &permanent) < 0) {
            if (failed(d, err, permanent, ++fails))
                break;
            continue;
        }
        ack(d, bt, bt->n);
        if (fails > 0)
            log_info("drain_connected", "app=%s drain=%s after_failures=%u", d->app, d->id, fails);
        set_state(d, ST_CONNECTED, NULL);
        fails = 0;
    }
    drain_http_free(h);
}

static void *
drain_main(void *arg)
{
    struct drain *d = arg;
    struct drain_ctx c = {
        .url = &d->u, .url_text = d->url, .ca_file = d->ca_file, .stop = &d->stop};
    struct drain_batch bt;
    size_t unsent;
    sigset_t pipe;

    /* A write to a closed TLS or HTTPS connection raises SIGPIPE in the
     * writing thread: blocked here, the write fails with EPIPE instead of
     * killing the controller. */
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, NULL);
    memset(&bt, 0, sizeof(bt));
    if (d->u.kind == DRAIN_SYSLOG || d->u.kind == DRAIN_SYSLOG_TLS)
        run_syslog(d, &c, &bt);
    else
        run_http(d, &c, &bt);
    pthread_mutex_lock(&d->mu);
    unsent = bt.n - bt.acked + drain_buf_pending(d->buf);
    pthread_mutex_unlock(&d->mu);
    if (unsent > 0)
        log_warn("drain_unsent", "app=%s drain=%s messages=%zu", d->app, d->id, unsent);
    drain_batch_fini(&bt);
    drain_unref(d);
    pthread_mutex_lock(&live_mu);
    live_threads--;
    pthread_cond_broadcast(&live_cv);
    pthread_mutex_unlock(&live_mu);
    return NULL;
}

/* ---- the registry (loop thread) ---- */

struct ctl_drains *
ctl_drains_new(struct ctl *ctl, size_t max_lines, const char *ca_file)
{
    struct ctl_drains *ds = calloc(1, sizeof(*ds));

    if (ds == NULL)
        return NULL;
    ds->ctl = ctl;
    ds->max_lines = max_lines;
    snprintf(ds->ca_file, sizeof(ds->ca_file), "%s", ca_file ? ca_file : "");
    if (gethostname(ds->host, sizeof(ds->host)) < 0 || ds->host[0] == '\0')
        snprintf(ds->host, sizeof(ds->host), "drover");
    ds->host[sizeof(ds->host) - 1] = '\0';
    ds->apps = ctl_map_new();
    if (ds->apps == NULL) {
        free(ds);
        return NULL;
    }
    /* Before any thread: curl's global state is not thread-safe to set up. */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return ds;
}

/* app's drains, made when it has none yet; NULL on ENOMEM. */
static struct app_drains *
app_drains(struct ctl_drains *ds, const char *app)
{
    struct app_drains *ad = ctl_map_get(ds->apps, app);

    if (ad != NULL)
        return ad;
    if ((ad = calloc(1, sizeof(*ad))) == NULL)
        return NULL;
    snprintf(ad->name, sizeof(ad->name), "%s", app);
    if (ctl_map_put(ds->apps, ad->name, ad) < 0) {
        free(ad);
        return NULL;
    }
    return ad;
}

/* d's thread; 0 or -errno (then d is freed). */
static int
drain_thread_start(struct drain *d)
{
    pthread_condattr_t ca;
    pthread_attr_t ta;
    pthread_t th;
    int rc;

    pthread_mutex_init(&d->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cv, &ca);
    pthread_condattr_destroy(&ca);
    d->refs = 2;
    pthread_attr_init(&ta);
    pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&ta, 256u << 10);
    pthread_mutex_lock(&live_mu);
    live_threads++;
    pthread_mutex_unlock(&live_mu);
    rc = pthread_create(&th, &ta, drain_main, d);
    pthread_attr_destroy(&ta);
    if (rc != 0) {
        pthread_mutex_lock(&live_mu);
        live_threads--;
        pthread_mutex_unlock(&live_mu);
        d->refs = 1;
        drain_unref(d);
        return -rc;
    }
    return 0;
}

static int
drain_add(struct ctl_drains *ds, const char *id, const char *app, const char *url,
          const struct drain_url *u, uint64_t created_ms)
{
    struct app_drains *ad = app_drains(ds, app);
    struct drain *d = calloc(1, sizeof(*d)), **tail;
    int rc;

    if (d == NULL || ad == NULL) {
        free(d);
        return -ENOMEM;
    }
    snprintf(d->id, sizeof(d->id), "%s", id);
    snprintf(d->app, sizeof(d->app), "%s", app);
    snprintf(d->url, sizeof(d->url), "%s", url);
    snprintf(d->host, sizeof(d->host), "%s", ds->host);
    snprintf(d->ca_file, sizeof(d->ca_file), "%s", ds->ca_file);
    d->u = *u;
    d->created_ms = created_ms;
    d->buf = drain_buf_new(ds->max_lines);
    d->spill = drain_buf_new(SPILL_LINES);
    if (d->buf == NULL || d->spill == NULL) {
        drain_buf_free(d->buf);
        drain_buf_free(d->spill);
        free(d);
        return -ENOMEM;
    }
    if ((rc = drain_thread_start(d)) < 0)
        return rc;
    for (tail = &ad->first; *tail != NULL; tail = &(*tail)->next)
        ;
    *tail = d;
    ad->n++;
    ds->total++;
    return 0;
}

/* Unlink d from its app and let its thread go (it frees d when done). */
static void
drain_remove(struct ctl_drains *ds, struct app_drains *ad, struct drain *d)
{
    struct drain **pp;

    for (pp = &ad->first; *pp != d; pp = &(*pp)->next)
        ;
    *pp = d->next;
    if (drain_buf_count(d->spill) > 0)
        ds->spilled--;
    ad->n--;
    ds->total--;
    pthread_mutex_lock(&d->mu);
    d->stop = 1;
    drain_syslog_abort(d->conn);
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    drain_unref(d);
}

static bool
load_one(void *arg, const char *id, const char *app, const char *url, uint64_t created_ms)
{
    struct ctl_drains *ds = arg;
    struct drain_url u;
    char err[256];
    int rc;

    if (drain_url_parse(url, &u, err, sizeof(err)) < 0) {
        log_warn("drain_skipped", "app=%s drain=%s reason=%s", app, id, log_q(err));
        return true;
    }
    rc = drain_add(ds, id, app, url, &u, created_ms);
    if (rc < 0)
        log_error("drain_start_failed", "app=%s drain=%s err=%s", app, id, strerror(-rc));
    return rc >= 0;
}

/* The stored drains, read where the store may be used (the thread pool
 * with PostgreSQL), started on the loop (ctl_drains_start_rows). */
struct ctl_drain_rows {
    struct ctl_drain_row {
        char id[24];
        char app[APP_NAME_MAX + 1];
        char url[DRAIN_URL_MAX + 1];
        uint64_t created_ms;
    } * v;
    size_t n, cap;
    bool nomem;
};

static bool
read_one(void *arg, const char *id, const char *app, const char *url, uint64_t created_ms)
{
    struct ctl_drain_rows *r = arg;
    struct ctl_drain_row *v;

    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;

        if ((v = realloc(r->v, cap * sizeof(*v))) == NULL) {
            r->nomem = true;
            return false;
        }
        r->v = v;
        r->cap = cap;
    }
    v = &r->v[r->n++];
    snprintf(v->id, sizeof(v->id), "%s", id);
    snprintf(v->app, sizeof(v->app), "%s", app);
    snprintf(v->url, sizeof(v->url), "%s", url);
    v->created_ms = created_ms;
    return true;
}

int
ctl_drains_read(struct ctl_db *db, struct ctl_drain_rows **out)
{
    struct ctl_drain_rows *r = calloc(1, sizeof(*r));
    int rc;

    *out = NULL;
    if (r == NULL)
        return -ENOMEM;
    rc = ctl_store_drains_each(db, read_one, r);
    if (rc == 0 && r->nomem)
        rc = -ENOMEM;
    if (rc < 0) {
        ctl_drain_rows_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void
ctl_drain_rows_free(struct ctl_drain_rows *r)
{
    if (r == NULL)
        return;
    free(r->v);
    free(r);
}

void
ctl_drains_start_rows(struct ctl_drains *ds, struct ctl_drain_rows *r)
{
    for (size_t i = 0; r != NULL && i < r->n; i++)
        load_one(ds, r->v[i].id, r->v[i].app, r->v[i].url, r->v[i].created_ms);
    ctl_drain_rows_free(r);
}

int
ctl_drains_start(struct ctl_drains *ds)
{
    struct ctl_drain_rows *r;
    int rc = ctl_drains_read(ds->ctl->store, &r);

    if (rc == 0)
        ctl_drains_start_rows(ds, r);
    return rc;
}

void
ctl_drains_line(struct ctl_drains *ds, const char *app, uint64_t ts_ms, const char *source,
                const char *node, bool err, const char *text, size_t len)
{
    struct app_drains *ad;
    int sev;

    if (ds == NULL || (ad = ctl_map_get(ds->apps, app)) == NULL)
        return;
    sev = strcmp(source, "drover") == 0 ? DRAIN_SEV_NOTICE : err ? DRAIN_SEV_ERR : DRAIN_SEV_INFO;
    for (struct drain *d = ad->first; d != NULL; d = d->next) {
        bool had = drain_buf_count(d->spill) > 0;

        if (pthread_mutex_trylock(&d->mu) != 0) {
            if (!drain_buf_full(d->spill)) {
                if (drain_buf_push(d->spill, ts_ms, sev, source, node, text, len) == 0 && !had)
                    ds->spilled++;
                continue;
            }
            pthread_mutex_lock(&d->mu); /* a full spill: wait rather than reorder */
        }
        drain_buf_move(d->buf, d->spill);
        drain_buf_push(d->buf, ts_ms, sev, source, node, text, len);
        pthread_cond_signal(&d->cv);
        pthread_mutex_unlock(&d->mu);
        if (had)
            ds->spilled--;
    }
}

/* Move spilled lines into their buffers when the lock is free (logs.c's
 * tick, every 100 ms): a spill never waits for the next line. */
void
ctl_drains_tick(struct ctl_drains *ds)
{
    size_t pos = 0;
    struct app_drains *ad;

    if (ds == NULL || ds->spilled == 0)
        return;
    while ((ad = ctl_map_next(ds->apps, &pos)) != NULL) {
        for (struct drain *d = ad->first; d != NULL; d = d->next) {
            if (drain_buf_count(d->spill) == 0 || pthread_mutex_trylock(&d->mu) != 0)
                continue;
            drain_buf_move(d->buf, d->spill);
            pthread_cond_signal(&d->cv);
            pthread_mutex_unlock(&d->mu);
            ds->spilled--;
        }
    }
}

void
ctl_drains_free(struct ctl_drains *ds)
{
    size_t pos = 0;
    struct app_drains *ad;
    struct timespec ts;
    int left;

    if (ds == NULL)
        return;
    /* Send what is buffered for a moment, then give up on the rest. */
    while ((ad = ctl_map_next(ds->apps, &pos)) != NULL) {
        for (struct drain *d = ad->first; d != NULL; d = d->next) {
            pthread_mutex_lock(&d->mu);
            drain_buf_move(d->buf, d->spill);
            d->finish = true;
            pthread_cond_broadcast(&d->cv);
            pthread_mutex_unlock(&d->mu);
        }
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += FINISH_MS / 1000;
    pthread_mutex_lock(&live_mu);
    while (live_threads > 0 && pthread_cond_timedwait(&live_cv, &live_mu, &ts) == 0)
        ;
    pthread_mutex_unlock(&live_mu);
    pos = 0;
    while ((ad = ctl_map_next(ds->apps, &pos)) != NULL) {
        while (ad->first != NULL)
            drain_remove(ds, ad, ad->first);
        free(ad);
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 1;
    pthread_mutex_lock(&live_mu);
    while (live_threads > 0 && pthread_cond_timedwait(&live_cv, &live_mu, &ts) == 0)
        ;
    left = live_threads;
    pthread_mutex_unlock(&live_mu);
    if (left > 0)
        log_warn("drains_abandoned", "threads=%d", left);
    ctl_map_free(ds->apps);
    free(ds);
}

/* ---- the CLI's requests ---- */

static const char *
state_text(struct ctl_arena *ar, const struct drain *d)
{
    switch (d->state) {
    case ST_CONNECTING:
        return "connecting";
    case ST_CONNECTED:
        return "connected";
    case ST_RETRYING:
        return ctl_arena_printf(ar, "retrying: %s", d->reason);
    case ST_FAILING:
        return ctl_arena_printf(ar, "failing: %s", d->reason);
    }
    return "?";
}

static int
fill_list(struct ctl_call *c, struct ctl_drains *ds, const char *app)
{
    Drover__DrainsRep *rep = ctl_arena_alloc(c->ar, sizeof(*rep));
    struct app_drains *ad = ctl_map_get(ds->apps, app);
    struct ctl_arena *ar = c->ar;
    size_t n = ad ? ad->n : 0, i = 0;

    if (rep == NULL)
        return ctl_oom(c);
    drover__drains_rep__init(rep);
    rep->app = (char *)app;
    if ((rep->drains = ctl_arena_alloc(ar, (n + 1) * sizeof(*rep->drains))) == NULL)
        return ctl_oom(c);
    for (struct drain *d = ad ? ad->first : NULL; d != NULL; d = d->next, i++) {
        Drover__DrainInfo *di = ctl_arena_alloc(ar, sizeof(*di));
        struct drain_stats s;

        if (di == NULL)
            return ctl_oom(c);
        drover__drain_info__init(di);
        di->id = d->id;
        di->url = d->url;
        di->created_ms = d->created_ms;
        pthread_mutex_lock(&d->mu);
        drain_buf_stats(d->buf, &s);
        di->state = (char *)state_text(ar, d);
        di->last_error = ctl_arena_printf(ar, "%s", d->last_error);
        di->last_error_ms = d->last_error_ms;
        pthread_mutex_unlock(&d->mu);
        di->sent = s.sent;
        di->buffered = s.buffered + drain_buf_count(d->spill);
        di->dropped = s.dropped;
        if (di->state == NULL || di->last_error == NULL)
            return ctl_oom(c);
        rep->drains[i] = di;
    }
    rep->n_drains = n;
    c->rep.body_case = DROVER__MESSAGE__BODY_DRAINS_REP;
    c->rep.drains_rep = rep;
    return 0;
}

static struct drain *
find(struct app_drains *ad, const char *what)
{
    for (struct drain *d = ad ? ad->first : NULL; d != NULL; d = d->next)
        if (strcmp(d->id, what) == 0 || strcmp(d->url, what) == 0)
            return d;
    return NULL;
}

/*
 * drains:add and drains:remove write the drain's row, then start or stop
 * it. With PostgreSQL the row is written in the thread pool (the store's
 * session is never used on the loop once it leads: issue 16) and the call
 * ends when it is done; with SQLite, here.
 */
struct drain_op {
    uv_work_t work;
    struct ctl_call *c;
    struct ctl_drains *ds;
    bool add;
    char id[24];
    char app[APP_NAME_MAX + 1];
    char url[DRAIN_URL_MAX + 1];
    uint64_t now;
    int rc;
};

static void drain_op_end(struct drain_op *op);

static int
store_why(char *why, size_t whysz, int rc)
{
    snprintf(why, whysz, "%s", rc == -ENOSPC ? "the controller's disk is full" : "store failure");
    return rc;
}

static void
op_work(uv_work_t *w)
{
    struct drain_op *op = w->data;
    struct ctl_db *db = op->ds->ctl->store;

    op->rc = op->add ? ctl_store_drain_put(db, op->id, op->app, op->url, op->now)
                     : ctl_store_drain_del(db, op->id);
}

static void
op_after(uv_work_t *w, int status)
{
    struct drain_op *op = w->data;

    (void)status;
    ctl_work_done(op->ds->ctl);
    drain_op_end(op);
}

/* The row is written (op->rc): start or stop the drain, then answer. */
static int
op_apply(struct drain_op *op, char *why, size_t whysz)
{
    struct ctl_drains *ds = op->ds;
    struct app_drains *ad;
    struct drain_url u;
    struct drain *d;
    char err[256];
    int rc;

    if (op->rc < 0)
        return store_why(why, whysz, op->rc);
    if (!op->add) {
        ad = ctl_map_get(ds->apps, op->app);
        if ((d = find(ad, op->id)) != NULL) /* not removed meanwhile */
            drain_remove(ds, ad, d);
        log_info("drain_removed", "app=%s drain=%s", op->app, op->id);
        ctl_model_event(ds->ctl->model, op->app, "drain %s removed", op->id);
        return 0;
    }
    if (drain_url_parse(op->url, &u, err, sizeof(err)) < 0)
        return snprintf(why, whysz, "refused %s URL: %s", "drain", err), -EINVAL;
    if ((rc = drain_add(ds, op->id, op->app, op->url, &u, op->now)) < 0) {
        ctl_store_drain_del(ds->ctl->store, op->id);
        return snprintf(why, whysz, "cannot start the drain: %s", strerror(-rc)), rc;
    }
    log_info("drain_added", "app=%s drain=%s kind=%s host=%s port=%u", op->app, op->id,
             drain_kind_name(u.kind), log_q(u.host), u.port);
    ctl_model_event(ds->ctl->model, op->app, "drain %s added (%s://%s:%u)", op->id,
                    drain_kind_name(u.kind), u.host, u.port);
    return 0;
}

static int
add_req(struct ctl_drains *ds, struct drain_op *op, const char *url, char *why, size_t whysz)
{
    struct app_drains *ad = ctl_map_get(ds->apps, op->app);
    struct drain_url u;
    struct drain *old;
    unsigned char rnd[6];
    char err[256];

    if (drain_url_parse(url, &u, err, sizeof(err)) < 0)
        return snprintf(why, whysz, "refused %s URL: %s", "drain", err), -EINVAL;
    if ((old = find(ad, url)) != NULL)
        return snprintf(why, whysz, "%s already drains to this URL (%s)", op->app, old->id),
               -EEXIST;
    if (ad != NULL && ad->n >= DRAINS_PER_APP)
        return snprintf(why, whysz, "an app has at most %d drains", DRAINS_PER_APP), -ENOSPC;
    if (ds->total >= DRAINS_MAX)
        return snprintf(why, whysz, "the controller runs at most %d drains", DRAINS_MAX), -ENOSPC;
    randombytes_buf(rnd, sizeof(rnd));
    snprintf(op->id, sizeof(op->id), "d.%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3],
             rnd[4], rnd[5]);
    snprintf(op->url, sizeof(op->url), "%s", url);
    op->add = true;
    op->now = now_ms();
    return 0;
}

static int
remove_req(struct ctl_drains *ds, struct drain_op *op, const char *what, char *why, size_t whysz)
{
    struct drain *d = find(ctl_map_get(ds->apps, op->app), what);

    if (d == NULL)
        return snprintf(why, whysz, "%s has no drain %s", op->app, what), -ENOENT;
    snprintf(op->id, sizeof(op->id), "%s", d->id);
    op->add = false;
    return 0;
}

/* apps:destroy: the app's drains stop (their rows go with the app's in the
 * same commit, app_gone_sql in store_sqlite.c). ds may be NULL (no drains). */
void
ctl_drains_forget_app(struct ctl_drains *ds, const char *app)
{
    struct app_drains *ad;

    if (ds == NULL || (ad = ctl_map_get(ds->apps, app)) == NULL)
        return;
    while (ad->first != NULL)
        drain_remove(ds, ad, ad->first);
    log_info("drains_forgotten", "app=%s", app);
}

static const char *
app_of(const Drover__Message *m)
{
    switch (m->body_case) {
    case DROVER__MESSAGE__BODY_DRAINS_REQ:
        return m->drains_req->app;
    case DROVER__MESSAGE__BODY_DRAIN_ADD_REQ:
        return m->drain_add_req->app;
    case DROVER__MESSAGE__BODY_DRAIN_REMOVE_REQ:
        return m->drain_remove_req->app;
    default:
        return NULL;
    }
}

/* DrainsReq, DrainAddReq, DrainRemoveReq: each replies with the list. */
static int
fail_as(struct ctl_call *c, int rc, const char *why)
{
    return ctl_fail(c,
                    rc == -ENOENT                    ? DROVER__ERROR_CODE__ERR_NOT_FOUND
                    : rc == -EEXIST                  ? DROVER__ERROR_CODE__ERR_CONFLICT
                    : rc == -EINVAL || rc == -ENOSPC ? DROVER__ERROR_CODE__ERR_BAD_REQUEST
                                                     : DROVER__ERROR_CODE__ERR_INTERNAL,
                    "%s", why);
}

/* The row is written: act on it and end the call (pending or not). */
static int
drain_op_finish(struct drain_op *op)
{
    struct ctl_call *c = op->c;
    char why[512] = "";
    int rc = op_apply(op, why, sizeof(why));

    free(op);
    return rc < 0 ? fail_as(c, rc, why) : fill_list(c, c->ctl->drains, app_of(c->req));
}

static void
drain_op_end(struct drain_op *op)
{
    struct ctl_call *c = op->c;

    ctl_call_end(c, drain_op_finish(op) < 0 ? NULL : &c->rep);
}

int
ctl_h_drains(struct ctl_call *c)
{
    struct ctl_drains *ds = c->ctl->drains;
    const Drover__Message *m = c->req;
    const char *app = app_of(m), *d;
    struct drain_op *op;
    char why[512] = "";
    int rc = 0;

    if (ds == NULL) /* a controller built without drains (the API fuzzer's) */
        return ctl_fail(c, DROVER__ERROR_CODE__ERR_UNAVAILABLE, "drains are not running");
    if (ctl_call_app(c, app) == NULL)
        return -1;
    if (m->body_case == DROVER__MESSAGE__BODY_DRAINS_REQ)
        return fill_list(c, ds, app);
    if ((op = calloc(1, sizeof(*op))) == NULL)
        return ctl_oom(c);
    op->c = c;
    op->ds = ds;
    snprintf(op->app, sizeof(op->app), "%s", app);
    if (m->body_case == DROVER__MESSAGE__BODY_DRAIN_ADD_REQ) {
        rc = add_req(ds, op, m->drain_add_req->url, why, sizeof(why));
    } else {
        d = m->drain_remove_req->drain;
        if (d == NULL || d[0] == '\0' || strlen(d) > DRAIN_URL_MAX)
            rc = -EINVAL, snprintf(why, sizeof(why), "give a drain's URL or id");
        else
            rc = remove_req(ds, op, d, why, sizeof(why));
    }
    if (rc < 0) {
        free(op);
        return fail_as(c, rc, why);
    }
    op->work.data = op;
    if (ctl_store_async(c->ctl->store) && c->ctl->running &&
        uv_queue_work(c->ctl->loop, &op->work, op_work, op_after) == 0) {
        c->ctl->inflight++;
        return CTL_PENDING;
    }
    op_work(&op->work);
    return drain_op_finish(op);
}
