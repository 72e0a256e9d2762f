/* SPDX-License-Identifier: MIT */
/*
 * commit.c: writing the model's changes to the store before anything that
 * depends on them is acknowledged.
 *
 * A commit places what waits for capacity (ctl_settle), then writes every
 * marked change in one store transaction (store_front.c). A failed commit
 * changes nothing: the store front puts the model back as the store has it,
 * and the requests that waited for it are refused with ctl_store_why().
 *
 * With SQLite the write is a local append to the WAL and runs on the loop,
 * once per loop turn: a call's reply waits for the end of the turn that
 * handled it (ctl_commits_turn: the check after the sockets were read, or
 * the idle handle for a call that ended elsewhere, in a timer), and one
 * transaction holds what every call of the turn changed. ctl_commit (no
 * caller waiting) writes at once, and answers the waiting calls too.
 * Measured (issue 15, 1,000 agents placing 100,000 instances): one
 * transaction per sync rewrote the same instance pages into the WAL once per
 * agent; the writes were 37 % of the controller's time. With PostgreSQL (a
 * database across the network) the loop never waits for it: a group commit.
 *
 *   - One change set is in flight at a time, written in the thread pool
 *     (ctl_store_flush_work) while the loop goes on: requests are read and
 *     handled, agents heard, timers run.
 *   - Change sets are numbered (epochs): what changes while one is in
 *     flight accumulates as the next, and is written when the one in flight
 *     is done, however many requests made it: one transaction for all.
 *   - A request's reply waits for the epoch that holds what the request
 *     changed or saw (ctl_commit_wait; the call's continuation c->committed
 *     runs then). A request that changed nothing, with nothing in flight,
 *     is answered at once.
 *   - When the store refuses a change set, the model goes back past it and
 *     past the newer changes made on top of it (ctl_store_flush_end), and
 *     every waiting request is refused: none of it was acknowledged.
 */
#include <errno.h>

#include "ctl.h"
#include "http.h"
#include "log.h"

static int start(struct ctl *ctl);
static void release(struct ctl *ctl, int rc, bool all);

static bool
async(const struct ctl *ctl)
{
    return ctl->running && ctl_store_async(ctl->store);
}

/* What every commit does first, and what the store's answer leads to. */
static int
prepare(struct ctl *ctl)
{
    int rc;

    /* HA (leader.c): a standby commits nothing; a leader past its lease
     * steps down inside the check, before writing anything. */
    if (!ctl_leader_acting(ctl->leader))
        return -ESTALE;
    ctl_destroy_reap(ctl);
    rc = ctl_settle(ctl->model, mono_ms());
    if (rc < 0)
        log_error("settle_failed", "err=%d", rc);
    return 0;
}

static int
stored(struct ctl *ctl, int rc)
{
    ctl_inst_lines_end(ctl->model);
    if (rc == -ESTALE && ctl->leader != NULL) /* fenced: a newer leader */
        ctl_leader_lost(ctl->leader, "a write was fenced by a newer term");
    if (rc < 0)
        return rc;
    if (ctl->model->ep_changed) {
        ctl->model->ep_changed = false;
        ctl_endpoints_wake(ctl->endpoints, false);
    }
    return 0;
}

/* ---- on the loop (SQLite) ---- */

static int
commit_here(struct ctl *ctl)
{
    int rc;

    /* A commit inside a commit (a pending call ended by an event of this
     * one's settle): the one under way writes everything. */
    if (ctl->cm.starting)
        return 0;
    ctl->cm.starting = true;
    rc = prepare(ctl);
    if (rc == 0 && ctl_model_dirty(ctl->model)) {
        uint64_t t0 = uv_hrtime();

        rc = ctl_store_flush(ctl->store, ctl->model);
        ctl_metrics_commit(rc, uv_hrtime() - t0);
    }
    ctl->cm.starting = false;
    rc = stored(ctl, rc);
    /* Whatever the waiting calls changed or saw is in this transaction (or
     * was undone with it). */
    release(ctl, rc, true);
    return rc;
}

/* The loop handles the turns need exist (main.c made them). */
static bool
grouped(const struct ctl *ctl)
{
    return ctl->running && ctl->cm.turns;
}

static void
on_idle(uv_idle_t *h)
{
    ctl_commits_turn(h->data);
}

/* c waits for the end of this loop turn. */
static int
wait_turn(struct ctl *ctl, struct ctl_call *c)
{
    TAILQ_INSERT_TAIL(&ctl->cm.waiting, c, wait_link);
    /* An idle handle keeps the loop from sleeping in poll while a call
     * waits (one ended in a timer would wait for the next wake-up). */
    if (!uv_is_active((uv_handle_t *)&ctl->cm.idle))
        uv_idle_start(&ctl->cm.idle, on_idle);
    return 1;
}

/* ---- off the loop (PostgreSQL) ---- */

static void
work(uv_work_t *w)
{
    ctl_store_flush_work(((struct ctl *)w->data)->cm.job);
}

/* Answer the waiting calls: all of them (with rc < 0 their changes are
 * undone; with 0 nothing is left to write), or those whose epoch is stored. */
static void
release(struct ctl *ctl, int rc, bool all)
{
    struct ctl_call_q q = TAILQ_HEAD_INITIALIZER(q);
    struct ctl_call *c;

    TAILQ_CONCAT(&q, &ctl->cm.waiting, wait_link);
    while ((c = TAILQ_FIRST(&q)) != NULL) {
        TAILQ_REMOVE(&q, c, wait_link);
        if (all || c->epoch <= ctl->cm.stored)
            c->committed(c, rc);
        else
            TAILQ_INSERT_TAIL(&ctl->cm.waiting, c, wait_link);
    }
}

static void
after(uv_work_t *w, int status)
{
    struct ctl *ctl = w->data;
    struct ctl_store_job *job = ctl->cm.job;
    int rc;

    (void)status; /* never cancelled */
    ctl->cm.job = NULL;
    ctl_work_done(ctl);
    rc = ctl_store_flush_end(ctl->store, ctl->model, job);
    ctl_metrics_commit(rc, uv_hrtime() - ctl->cm.t0);
    rc = stored(ctl, rc);
    if (rc < 0) {
        release(ctl, rc, true);
    } else {
        ctl->cm.stored = ctl->cm.epoch;
        release(ctl, 0, false);
        /* What changed meanwhile is the next change set (unless a call
         * answered just now has started it). */
        if (ctl->cm.job == NULL && (!TAILQ_EMPTY(&ctl->cm.waiting) || ctl_model_dirty(ctl->model)))
            start(ctl);
    }
    if (ctl->stopping)
        ctl_maybe_close(ctl);
}

/*
 * Begin writing what the model holds: 0 with a change set in flight, or
 * with nothing to write; < 0 when it was refused before it left the loop.
 * Unless a change set is in flight on return, the waiting calls are
 * answered.
 */
static int
start(struct ctl *ctl)
{
    struct ctl_store_job *job = NULL;
    int rc;

    ctl->cm.starting = true;
    rc = prepare(ctl);
    if (rc == 0)
        rc = ctl_store_flush_begin(ctl->store, ctl->model, &job);
    ctl->cm.starting = false;
    if (rc == 0 && job != NULL) {
        ctl->cm.job = job;
        ctl->cm.t0 = uv_hrtime();
        ctl->cm.epoch = ctl->cm.open++;
        ctl->cm.work.data = ctl;
        ctl->inflight++;
        if (uv_queue_work(ctl->loop, &ctl->cm.work, work, after) == 0)
            return 0;
        /* Cannot happen with a running loop: write it here. */
        ctl_store_flush_work(job);
        ctl->cm.job = NULL;
        ctl_work_done(ctl);
        rc = ctl_store_flush_end(ctl->store, ctl->model, job);
        if (rc == 0)
            ctl->cm.stored = ctl->cm.epoch;
    }
    rc = stored(ctl, rc);
    release(ctl, rc, true);
    return rc;
}

/* ---- the interface ---- */

void
ctl_commits_init(struct ctl *ctl)
{
    TAILQ_INIT(&ctl->cm.waiting);
    ctl->cm.open = 1;
}

static bool
async_ready(struct ctl *ctl)
{
    if (!async(ctl))
        return false;
    if (ctl->cm.open == 0) /* a struct ctl made without ctl_commits_init */
        ctl_commits_init(ctl);
    return true;
}

/*
 * Write what is marked, with nobody waiting for it (timers, the start):
 * with SQLite it is done on return; with PostgreSQL it is in flight (or
 * follows the one in flight) and a refusal is logged by the store front.
 */
void
ctl_commits_start(struct ctl *ctl)
{
    uv_idle_init(ctl->loop, &ctl->cm.idle);
    ctl->cm.idle.data = ctl;
    ctl->cm.turns = true;
}

/* The end of a loop turn (SQLite): the calls waiting for it are written and
 * answered. */
void
ctl_commits_turn(struct ctl *ctl)
{
    if (!grouped(ctl) || async(ctl))
        return;
    if (!TAILQ_EMPTY(&ctl->cm.waiting))
        commit_here(ctl);
    if (TAILQ_EMPTY(&ctl->cm.waiting))
        uv_idle_stop(&ctl->cm.idle);
}

/* Answer what waits, and close the idle handle (shutdown.c). */
void
ctl_commits_close(struct ctl *ctl)
{
    if (!ctl->cm.turns)
        return;
    ctl_commits_turn(ctl);
    ctl->cm.turns = false;
    uv_close((uv_handle_t *)&ctl->cm.idle, NULL);
}

int
ctl_commit(struct ctl *ctl)
{
    if (!async_ready(ctl))
        return commit_here(ctl);
    if (ctl->cm.job != NULL || ctl->cm.starting)
        return 0; /* the one in flight starts the next when it ends */
    return start(ctl);
}

/*
 * A call is about to be answered: 0 when everything it changed or saw is in
 * the store (answer now), 1 when c waits (c->committed runs once its epoch
 * is stored, or refused), < 0 when the store refused the change set.
 */
int
ctl_commit_wait(struct ctl *ctl, struct ctl_call *c)
{
    int rc;

    if (!async_ready(ctl))
        return grouped(ctl) ? wait_turn(ctl, c) : commit_here(ctl);
    if (ctl->cm.job == NULL && !ctl->cm.starting) {
        if ((rc = start(ctl)) < 0)
            return rc;
        if (ctl->cm.job == NULL)
            return 0;
        c->epoch = ctl->cm.epoch;
    } else if (ctl->cm.starting || ctl_model_dirty(ctl->model)) {
        c->epoch = ctl->cm.open; /* the change set after the one in flight */
    } else {
        c->epoch = ctl->cm.epoch; /* it saw what is in flight */
    }
    TAILQ_INSERT_TAIL(&ctl->cm.waiting, c, wait_link);
    return 1;
}
