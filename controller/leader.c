/* SPDX-License-Identifier: MIT */
/*
 * leader.c: which of several controllers sharing one PostgreSQL database
 * leads (issue 16; README "High availability").
 *
 * Every controller holds a dedicated database session on its own thread
 * (never the loop's: a slow database must not stall the loop, and a stalled
 * loop must not stop the renewals that prove this process alive, or hide
 * that they stopped). On it, it tries pg_try_advisory_lock(LEADER_LOCK)
 * every POLL_MS. The winner increments leader.term in the same step (one
 * UPDATE ... RETURNING, while holding the lock), stores its advertised
 * endpoints and its session's pid, and the loop then loads the model and
 * logs event=leader term=N. The others log event=standby and answer every
 * CLI and agent request with ERR_NOT_LEADER and the leader's endpoint.
 *
 * The lease, on the monotonic clock:
 *   - The leader renews every RENEW_MS: UPDATE leader SET renewed =
 *     clock_timestamp() WHERE term = its term. It may act until LEASE_MS
 *     after the moment it SENT its last successful renewal (t0, taken before
 *     the query, so the lease never starts later than the database saw it).
 *     ctl_leader_acting() checks that at every request, every tick and every
 *     commit; past it, the controller steps down at once.
 *   - A leader whose session is lost (the server ended it, the network cut
 *     it) has lost its advisory lock with it: it steps down as soon as its
 *     thread sees the error, and in any case when its lease runs out.
 *   - A killed leader's session ends with its process: the server releases
 *     the lock at once and a standby takes it within POLL_MS.
 *   - A frozen leader (SIGSTOP, a paused VM) keeps its session and its lock.
 *     A standby that sees leader.renewed older than TAKEOVER_MS on the
 *     database's own clock ends the lock holder's session
 *     (pg_terminate_backend) and takes the lock. Since renewed was written
 *     after the leader's t0, the leader's lease ran out at least
 *     TAKEOVER_MS - LEASE_MS = 2 s earlier: it had stopped acting before the
 *     lock could change hands. The standby compares two readings of the same
 *     clock (the database server's), never its own with another machine's.
 *   - Fencing does not depend on these timings: every write first reads
 *     the term FOR KEY SHARE (store_pg.c) and the term bump locks the row
 *     FOR UPDATE first, so the bump waits for a write under way and a
 *     later write sees the new term; agents refuse a lower term than the
 *     highest they have seen (node-agent/conn.c). The renewal's UPDATE
 *     does not conflict with a write's KEY SHARE: a write the database
 *     keeps waiting (a lock, a slow disk) does not cost the lease.
 * A controller that stops leading exits (EX_TEMPFAIL, 75) instead of
 * dropping its model and every request in flight in place: its supervisor
 * restarts it and it stands by (Kubernetes' controller-manager does the
 * same when it loses its lease).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "ctl.h"
#include "log.h"
#include "store.h"
#include "wire.h"

#define LEADER_LOCK 0x64726f7600LL /* "drov" 0 */
#define POLL_MS 250
#define RENEW_MS 500
#define LEASE_MS 2000
#define TAKEOVER_MS 4000
#define CHECK_MS 100
#define BACKOFF_MAX_MS 5000
#define EXIT_STEPPED_DOWN 75 /* EX_TEMPFAIL: restart me, I stand by */

enum ev { EV_NONE, EV_STANDBY, EV_LEAD, EV_LOST };

struct ctl_leader {
    struct ctl *ctl;
    uv_thread_t thread;
    uv_async_t async;
    uv_timer_t timer;
    uv_mutex_t mu;
    uv_cond_t cond;
    char url[4096];
    char api[256], agent[256]; /* ours, advertised */
    /* Under mu: written by the thread, read by the loop. */
    bool stop;
    enum ev ev;
    uint64_t term;       /* the term we won */
    uint64_t renewed_at; /* mono_ms() when the last good renewal was sent */
    char leader_api[256], leader_agent[256];
    char why[256];
    char peers[1024]; /* API endpoints of the controllers with a session */
    /* The loop's own. */
    bool leading, started;
    bool loading; /* won: the state loads in the thread pool (load_start) */
};

/* ---- the thread ---- */

static void
nap(struct ctl_leader *l, uint64_t ms)
{
    uv_mutex_lock(&l->mu);
    if (!l->stop)
        uv_cond_timedwait(&l->cond, &l->mu, ms * 1000000ull);
    uv_mutex_unlock(&l->mu);
}

static void
post(struct ctl_leader *l, enum ev ev, const char *why)
{
    uv_mutex_lock(&l->mu);
    l->ev = ev;
    snprintf(l->why, sizeof(l->why), "%s", why);
    uv_mutex_unlock(&l->mu);
    uv_async_send(&l->async);
}

static PGresult *
q(PGconn *c, const char *sql, int n, const char *const *v)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, v, NULL, NULL, 0);
    ExecStatusType s = PQresultStatus(r);

    if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK)
        return r;
    PQclear(r);
    return NULL;
}

/* Not leading: look at who leads, end a frozen leader's session. */
static void
watch(struct ctl_leader *l, PGconn *c)
{
    char lo[16], hi[16];
    const char *v[2] = {hi, lo};
    PGresult *r;
    int64_t age;

    r = q(c,
          "SELECT api, agent, (EXTRACT(EPOCH FROM clock_timestamp() - renewed) * 1000)::bigint "
          "FROM leader WHERE id = 1",
          0, NULL);
    if (r == NULL || PQntuples(r) != 1) {
        PQclear(r);
        return;
    }
    uv_mutex_lock(&l->mu);
    snprintf(l->leader_api, sizeof(l->leader_api), "%s", PQgetvalue(r, 0, 0));
    snprintf(l->leader_agent, sizeof(l->leader_agent), "%s", PQgetvalue(r, 0, 1));
    uv_mutex_unlock(&l->mu);
    age = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    PQclear(r);
    if (age <= TAKEOVER_MS)
        return;
    snprintf(hi, sizeof(hi), "%u", (unsigned)((uint64_t)LEADER_LOCK >> 32));
    snprintf(lo, sizeof(lo), "%u", (unsigned)((uint64_t)LEADER_LOCK & 0xffffffffu));
    r = q(c,
          "SELECT pid, pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
          "AND classid = $1::bigint::oid AND objid = $2::bigint::oid AND objsubid = 1 "
          "AND granted",
          2, v);
    if (r != NULL && PQntuples(r) > 0)
        log_warn("leader_expired",
                 "renewed_ms_ago=%" PRId64 " lease_ms=%d session_pid=%s "
                 "action=ended_its_session",
                 age, LEASE_MS, PQgetvalue(r, 0, 0));
    PQclear(r);
}

/* Try to lead: 1 won (term set), 0 not, -1 session trouble. */
static int
try_lead(struct ctl_leader *l, PGconn *c)
{
    char lock[24];
    const char *v[2] = {lock, NULL};
    PGresult *r;
    uint64_t t0;
    bool won;

    snprintf(lock, sizeof(lock), "%lld", LEADER_LOCK);
    r = q(c, "SELECT pg_try_advisory_lock($1)", 1, v);
    if (r == NULL)
        return -1;
    won = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!won) {
        watch(l, c);
        return 0;
    }
    v[0] = l->api;
    v[1] = l->agent;
    t0 = mono_ms();
    r = q(c,
          "WITH l AS (SELECT id FROM leader WHERE id = 1 FOR UPDATE) "
          "UPDATE leader SET term = term + 1, api = $1, agent = $2, pid = pg_backend_pid(), "
          "renewed = clock_timestamp() WHERE id = (SELECT id FROM l) RETURNING term",
          2, v);
    if (r == NULL || PQntuples(r) != 1) {
        PQclear(r);
        return -1;
    }
    uv_mutex_lock(&l->mu);
    l->term = (uint64_t)strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    l->renewed_at = t0;
    snprintf(l->leader_api, sizeof(l->leader_api), "%s", l->api);
    snprintf(l->leader_agent, sizeof(l->leader_agent), "%s", l->agent);
    uv_mutex_unlock(&l->mu);
    PQclear(r);
    return 1;
}

/* Who is there: every controller's leader session is named after its
 * advertised API endpoint (application_name drover@ENDPOINT). */
static void
peers(struct ctl_leader *l, PGconn *c)
{
    PGresult *r = q(c,
                    "SELECT string_agg(substr(application_name, 8), ',' ORDER BY application_name) "
                    "FROM pg_stat_activity WHERE application_name LIKE 'drover@%' "
                    "AND datname = current_database()",
                    0, NULL);

    if (r == NULL)
        return;
    uv_mutex_lock(&l->mu);
    snprintf(l->peers, sizeof(l->peers), "%s", PQntuples(r) == 1 ? PQgetvalue(r, 0, 0) : "");
    uv_mutex_unlock(&l->mu);
    PQclear(r);
}

void
ctl_leader_controllers(struct ctl_leader *l, char *buf, size_t bufsz)
{
    uv_mutex_lock(&l->mu);
    snprintf(buf, bufsz, "%s", l->peers);
    uv_mutex_unlock(&l->mu);
}

const char *
ctl_leader_api(const struct ctl_leader *l)
{
    return l->api;
}

/* Leading: 0 renewed, -ESTALE another term, -ENOTCONN session trouble. */
static int
renew(struct ctl_leader *l, PGconn *c)
{
    char term[24];
    const char *v[1] = {term};
    uint64_t t0 = mono_ms();
    PGresult *r;
    int rows;

    snprintf(term, sizeof(term), "%" PRIu64, l->term);
    r = q(c, "UPDATE leader SET renewed = clock_timestamp() WHERE id = 1 AND term = $1", 1, v);
    if (r == NULL)
        return -ENOTCONN;
    rows = atoi(PQcmdTuples(r));
    PQclear(r);
    if (rows != 1)
        return -ESTALE;
    uv_mutex_lock(&l->mu);
    l->renewed_at = t0;
    uv_mutex_unlock(&l->mu);
    peers(l, c);
    return 0;
}

static bool
stopping(struct ctl_leader *l)
{
    bool s;

    uv_mutex_lock(&l->mu);
    s = l->stop;
    uv_mutex_unlock(&l->mu);
    return s;
}

static void
thread_main(void *arg)
{
    struct ctl_leader *l = arg;
    uint64_t backoff = 100;
    bool won = false, said = false;
    PGconn *c = NULL;
    char err[512], app[300];
    int rc;

    /* application_name is at most 63 bytes: a longer endpoint is cut. */
    snprintf(app, sizeof(app), "drover@%s", l->api);
    while (!stopping(l)) {
        if (c == NULL) {
            c = ctl_pg_connect(l->url, app, err, sizeof(err));
            if (c == NULL) {
                if (won) { /* the session held the lock: it is gone */
                    post(l, EV_LOST, "lost the database session");
                    break;
                }
                log_warn("leader_db_unreachable", "err=%s retry_ms=%" PRIu64, log_q(err), backoff);
                nap(l, backoff);
                backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
                continue;
            }
            backoff = 100;
        }
        if (!won) {
            rc = try_lead(l, c);
            if (rc == 1) {
                won = true;
                post(l, EV_LEAD, "");
                nap(l, RENEW_MS);
            } else {
                if (rc == 0 && !said) {
                    said = true;
                    post(l, EV_STANDBY, "");
                }
                if (rc < 0 && PQstatus(c) != CONNECTION_OK) {
                    PQfinish(c);
                    c = NULL;
                }
                nap(l, POLL_MS);
            }
            continue;
        }
        rc = renew(l, c);
        if (rc == -ESTALE) {
            post(l, EV_LOST, "a newer term is stored");
            break;
        }
        if (rc < 0 && PQstatus(c) != CONNECTION_OK) {
            post(l, EV_LOST, "lost the database session");
            break;
        }
        nap(l, RENEW_MS); /* a failed renewal on a live session: the lease decides */
    }
    PQfinish(c); /* ends the session: the lock goes with it */
}

/* ---- the loop's side ---- */

static void
step_down(struct ctl_leader *l, const char *why)
{
    log_error("step_down", "term=%" PRIu64 " reason=%s action=exit code=%d", l->term, log_q(why),
              EXIT_STEPPED_DOWN);
    /* Nothing more from this process: no reply, no assignment, no write.
     * Its sessions close with it, which releases the lock if it still
     * held it. */
    fflush(stdout);
    _exit(EXIT_STEPPED_DOWN);
}

void
ctl_leader_lost(struct ctl_leader *l, const char *why)
{
    step_down(l, why);
}

bool
ctl_leader_acting(struct ctl_leader *l)
{
    uint64_t at;

    if (l == NULL)
        return true; /* SQLite: the only controller */
    if (!l->leading)
        return false;
    uv_mutex_lock(&l->mu);
    at = l->renewed_at;
    uv_mutex_unlock(&l->mu);
    if (mono_ms() - at >= LEASE_MS)
        step_down(l, "lease expired");
    return true;
}

uint64_t
ctl_leader_term(const struct ctl_leader *l)
{
    return l != NULL && l->leading ? l->term : 0;
}

/*
 * The state is loaded in the thread pool, into a model of its own, so that
 * the loop never waits for the database: meanwhile the controller is not
 * acting yet (requests are answered "no leader is known yet, try again",
 * timers do nothing) and nothing reads that model. Then it replaces the
 * empty one and the controller acts.
 */
struct load {
    uv_work_t work;
    struct ctl_leader *l;
    struct ctl_model *m;
    struct ctl_drain_rows *drains;
    uint64_t now;
    int rc;
};

static void
load_work(uv_work_t *w)
{
    struct load *ld = w->data;

    ld->rc = ctl_store_load(ld->l->ctl->store, ld->m, ld->now);
    if (ld->rc == 0)
        ld->rc = ctl_drains_read(ld->l->ctl->store, &ld->drains);
}

static void
load_after(uv_work_t *w, int status)
{
    struct load *ld = w->data;
    struct ctl_leader *l = ld->l;
    struct ctl *ctl = l->ctl;
    struct ctl_model *old = ctl->model;
    int rc;

    (void)status;
    ctl_work_done(ctl);
    l->loading = false;
    if (ld->rc < 0)
        step_down(l, "cannot load the state");
    ld->m->event = old->event;
    ld->m->event_arg = old->event_arg;
    ctl->model = ld->m;
    ctl_model_free(old);
    l->leading = true;
    rc = ctl_take_lead_loaded(ctl, ld->drains);
    free(ld);
    if (rc < 0)
        step_down(l, "cannot load the state");
    ctl_leader_acting(l); /* the load took longer than the lease? */
    log_info("leading", "term=%" PRIu64 " apps=%zu nodes=%zu instances=%zu", l->term,
             ctl_map_count(ctl->model->apps), ctl->model->nnodes, ctl_map_count(ctl->model->insts));
}

static void
load_start(struct ctl_leader *l)
{
    struct load *ld = calloc(1, sizeof(*ld));

    if (ld == NULL || (ld->m = ctl_model_new()) == NULL)
        step_down(l, "out of memory");
    ld->l = l;
    ld->now = mono_ms();
    ld->work.data = ld;
    l->loading = true;
    if (uv_queue_work(l->ctl->loop, &ld->work, load_work, load_after) < 0)
        step_down(l, "cannot load the state");
    l->ctl->inflight++;
}

static void
on_async(uv_async_t *a)
{
    struct ctl_leader *l = a->data;
    enum ev ev;
    char why[256];

    uv_mutex_lock(&l->mu);
    ev = l->ev;
    l->ev = EV_NONE;
    snprintf(why, sizeof(why), "%s", l->why);
    uv_mutex_unlock(&l->mu);
    if (ev == EV_LOST)
        step_down(l, why);
    if (ev == EV_STANDBY && !l->leading) {
        uv_mutex_lock(&l->mu);
        snprintf(why, sizeof(why), "%s", l->leader_api);
        uv_mutex_unlock(&l->mu);
        log_info("standby", "leader=%s", why[0] != '\0' ? why : "unknown");
        return;
    }
    if (ev != EV_LEAD || l->leading || l->loading)
        return;
    ctl_store_pg_set_term(ctl_store_backend(l->ctl->store), l->term);
    log_info("leader", "term=%" PRIu64 " api=%s agent=%s", l->term, l->api, l->agent);
    load_start(l);
}

static void
on_tick(uv_timer_t *t)
{
    struct ctl_leader *l = t->data;

    if (l->leading)
        ctl_leader_acting(l); /* steps down once the lease has run out */
}

/*
 * A standby's answer to any request: ERR_NOT_LEADER with the endpoint of
 * the leader for the socket it came in on (Error.leader). Takes req.
 */
uint32_t
ctl_leader_where(struct ctl_leader *l, bool api, char *where, size_t wheresz)
{
    uv_mutex_lock(&l->mu);
    snprintf(where, wheresz, "%s", api ? l->leader_api : l->leader_agent);
    uv_mutex_unlock(&l->mu);
    if (strcmp(where, api ? l->api : l->agent) == 0)
        where[0] = '\0'; /* the row still names us: we are not leading */
    return where[0] != '\0' ? 0 : POLL_MS;
}

int
ctl_leader_start(struct ctl *ctl, const char *url, struct ctl_leader **out)
{
    struct ctl_leader *l = calloc(1, sizeof(*l));
    int rc;

    if (l == NULL)
        return -ENOMEM;
    l->ctl = ctl;
    snprintf(l->url, sizeof(l->url), "%s", url);
    snprintf(l->api, sizeof(l->api), "%s", ctl->cfg.advertise_api);
    snprintf(l->agent, sizeof(l->agent), "%s", ctl->cfg.advertise_agent);
    if ((rc = uv_mutex_init(&l->mu)) < 0)
        goto fail;
    if ((rc = uv_cond_init(&l->cond)) < 0)
        goto fail;
    uv_async_init(ctl->loop, &l->async, on_async);
    uv_timer_init(ctl->loop, &l->timer);
    l->async.data = l->timer.data = l;
    l->started = true;
    uv_timer_start(&l->timer, on_tick, CHECK_MS, CHECK_MS);
    if ((rc = uv_thread_create(&l->thread, thread_main, l)) < 0)
        goto fail;
    *out = l;
    return 0;
fail:
    free(l);
    return rc;
}

/* Stop the thread (its session ends: a leader gives the lock up at once). */
void
ctl_leader_stop(struct ctl_leader *l)
{
    if (l == NULL || !l->started)
        return;
    l->started = false;
    uv_mutex_lock(&l->mu);
    l->stop = true;
    uv_cond_signal(&l->cond);
    uv_mutex_unlock(&l->mu);
    uv_thread_join(&l->thread);
    uv_close((uv_handle_t *)&l->async, NULL);
    uv_close((uv_handle_t *)&l->timer, NULL);
}

void
ctl_leader_free(struct ctl_leader *l)
{
    if (l == NULL)
        return;
    uv_mutex_destroy(&l->mu);
    uv_cond_destroy(&l->cond);
    free(l);
}

/* `drover status`: the store, and with PostgreSQL the term, the leader and
 * the controllers. 0 or -ENOMEM. */
int
ctl_status_ha(struct ctl *ctl, struct ctl_arena *ar, Drover__StatusRep *sr)
{
    char all[1024], *save = NULL, *tok;
    size_t n = 0;

    sr->store = (char *)ctl_store_backend_name(ctl->store);
    if (ctl->leader == NULL)
        return 0;
    sr->term = ctl_leader_term(ctl->leader);
    sr->leader = (char *)ctl->leader->api;
    ctl_leader_controllers(ctl->leader, all, sizeof(all));
    sr->controllers = ctl_arena_alloc(ar, 16 * sizeof(char *));
    if (sr->controllers == NULL)
        return -ENOMEM;
    for (tok = strtok_r(all, ",", &save); tok != NULL && n < 16; tok = strtok_r(NULL, ",", &save))
        if ((sr->controllers[n] = ctl_arena_printf(ar, "%s", tok)) != NULL)
            n++;
    sr->n_controllers = n;
    return 0;
}

/*
 * Load the state into the (empty) model and act on it: at start with SQLite,
 * on winning the election with PostgreSQL (leader.c). Every node gets a
 * fresh grace period from here (the store's load): the old leader's absence
 * is not the nodes'.
 */
int
ctl_take_lead(struct ctl *ctl)
{
    int rc;

    rc = ctl_store_load(ctl->store, ctl->model, mono_ms());
    if (rc < 0) {
        log_error("start_failed", "what=store_load err=%d", rc);
        return rc;
    }
    return ctl_take_lead_loaded(ctl, NULL);
}

/* The rest of taking the lead, once the model is loaded (PostgreSQL: in the
 * thread pool, leader.c's load). */
int
ctl_take_lead_loaded(struct ctl *ctl, struct ctl_drain_rows *rows)
{
    int rc = 0;

    if (rows != NULL)
        ctl_drains_start_rows(ctl->drains, rows);
    else
        rc = ctl_drains_start(ctl->drains);
    if (rc < 0) {
        log_error("start_failed", "what=drains err=%d", rc);
        return rc;
    }
    ctl_runs_orphans(ctl->runs);
    /* Placements that waited across a restart, committed before serving. A
     * store that refuses them (a full disk) stops nothing: the controller
     * serves what it has and tries again at the next change (store_front.c). */
    if (ctl_commit(ctl) < 0)
        log_warn("start_degraded", "what=store reason=%s", log_q(ctl_store_why(ctl->store)));
    return 0;
}
