/* SPDX-License-Identifier: MIT */
/*
 * agent.c: the node agent as a whole: its instances, the assignment set it
 * runs, signals and the graceful shutdown.
 *
 * The instance table is an array kept sorted by id, so that reports and
 * their digest come out in one canonical order. Assignments replace the
 * whole desired set, which is kept (want): reconcile.c decides what to
 * start and drain, now and again whenever an instance is forgotten (room
 * may have appeared; an assigned instance that was stopped may start
 * afresh). An invalid assignment is refused alone and logged. Instances
 * outlive any conversation with the controller: when it cannot be reached,
 * nothing here changes and crashed processes keep being restarted.
 *
 * Start: groups that a killed predecessor left running (orphans.c) are
 * taken back only to be drained, reported as draining until gone; their
 * instances start afresh once the controller assigns them again.
 *
 * Shutdown (SIGTERM or SIGINT) has two phases. Leaving: no more starts;
 * syncs say leaving, so the controller stops placing here and moves the
 * instances away, each taken out of this node's set once its replacement is
 * up elsewhere (and drained here by the usual reconcile). Draining: once the
 * set is empty, or the controller has not answered for a few heartbeats, or
 * DROVER_LEAVE_TIMEOUT_MS has passed, every instance is drained; then one
 * last full sync (waiting for its answer at most a couple of heartbeats),
 * then every handle is closed so that uv_run returns. A second signal
 * SIGKILLs the groups at once. Progress is checked from a 0 ms timer rather
 * than from the callbacks that cause it, so that no socket or instance is
 * closed from inside its own callback.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agt.h"
#include "log.h"
#include "notify.h"
#include "util.h"

struct agt {
    uv_loop_t *loop;
    const struct agt_config *cfg; /* borrowed */
    struct wire_sender sender;
    char boot_id[33];
    char prev_boot_id[64]; /* from DATA_DIR/boot_id */
    struct agt_conn *conn;
    struct agt_slugs *slugs;
    struct agt_logs *logs;           /* NULL once closed */
    struct agt_out *outs;            /* every open output stream (output.c links them) */
    struct agt_pipe *pipes;          /* every attached one-off's pipe (pipe.c links them) */
    struct agt_metrics *metrics;     /* made in agt_start */
    struct agt_health_watch *checks; /* shared by every health check */
    struct agt_runrecs *runrecs;     /* the run-record slot file (orphans.c) */
    struct agt_sweep *sweep;         /* cgroups to SIGTERM next turn (supervise.c) */
    struct agt_inst **insts;         /* sorted by id */
    size_t ninst, cap;
    uint64_t generation;
    struct agt_spec **want; /* the last assignment set, checked; owned */
    size_t nwant;
    /* One-offs this agent ran to their end, most recent last: a one-off runs
     * once, even if a stale set still lists it. Ids are never reused. */
    uint64_t ended[256];
    size_t nended;
    uv_signal_t sigterm, sigint, sigpipe;
    uv_timer_t check;   /* shutdown progress, deferred */
    uv_timer_t lastest; /* bounds the wait for the last sync's answer */
    uv_timer_t leave;   /* bounds the wait for replacements elsewhere */
    uv_idle_t pump;     /* starts ready instances, a few per loop turn */
    uv_timer_t usage;   /* samples each instance's cgroup counters */
    uv_timer_t trim;    /* a burst of changes is over: give free memory back */
    bool pumping;
    enum agt_life_state st; /* states.c's table */
    int nsignals;
    int exit_code;
    struct agt_cgroups cg;
    struct agt_uids *uids; /* cfg->per_app only */
    char helper[PATH_MAX]; /* drover-exec beside us, or /proc/self/exe (--exec) */
    bool views;            /* instances get a writable view */
};

/* ---- the instance table ---- */

static size_t
find_pos(const struct agt *a, uint64_t id)
{
    size_t lo = 0, hi = a->ninst;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (agt_inst_spec(a->insts[mid])->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static struct agt_inst *find(const struct agt *a, uint64_t id);

struct agt_inst *
agt_inst_by_id(struct agt *a, uint64_t id)
{
    return find(a, id);
}

static struct agt_inst *
find(const struct agt *a, uint64_t id)
{
    size_t pos = find_pos(a, id);

    if (pos < a->ninst && agt_inst_spec(a->insts[pos])->id == id)
        return a->insts[pos];
    return NULL;
}

static int
insert(struct agt *a, struct agt_inst *i)
{
    size_t pos = find_pos(a, agt_inst_spec(i)->id);

    if (a->ninst == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        struct agt_inst **p = realloc(a->insts, cap * sizeof *p);

        if (!p)
            return -ENOMEM;
        a->insts = p;
        a->cap = cap;
    }
    memmove(&a->insts[pos + 1], &a->insts[pos], (a->ninst - pos) * sizeof *a->insts);
    a->insts[pos] = i;
    a->ninst++;
    return 0;
}

static bool
oneoff_ended(const struct agt *a, uint64_t id)
{
    size_t n = a->nended < ARRAY_SIZE(a->ended) ? a->nended : ARRAY_SIZE(a->ended);

    for (size_t k = 0; k < n; k++)
        if (a->ended[k] == id)
            return true;
    return false;
}

static void
forget(struct agt *a, size_t pos)
{
    struct agt_inst *i = a->insts[pos];

    if (agt_inst_spec(i)->oneoff)
        a->ended[a->nended++ % ARRAY_SIZE(a->ended)] = agt_inst_spec(i)->id;

    log_info("forgotten", "app=%s inst=%s id=%" PRIu64, agt_inst_spec(i)->app,
             agt_inst_spec(i)->name, agt_inst_spec(i)->id);
    memmove(&a->insts[pos], &a->insts[pos + 1], (a->ninst - pos - 1) * sizeof *a->insts);
    a->ninst--;
    agt_inst_free(i);
    agt_slugs_gc_soon(a->slugs); /* its release may be garbage now */
}

static bool
same_release(const struct agt_spec *s, const char *app, uint32_t release, const char *sha)
{
    return s->release == release && strcmp(s->app, app) == 0 && strcmp(s->sha, sha) == 0;
}

static bool
waits_for_release(const struct agt_inst *i)
{
    enum agt_state st = agt_inst_sup(i)->state;

    return st == AGT_PENDING || st == AGT_FAILED;
}

static void on_check(uv_timer_t *t);

/* Stopping everything here: no starts, no new sets. */
static bool
draining(const struct agt *a)
{
    return a->st >= AGT_LS_DRAINING;
}

static void
arm_check(struct agt *a)
{
    if (draining(a) && a->st != AGT_LS_DONE)
        uv_timer_start(&a->check, on_check, 0, 0);
}

/* ---- assignments ---- */

/*
 * Starting every instance of a large scale in one callback once blocked the
 * agent for 13 s (uv_spawn forked, about 10 ms a start): it missed its
 * syncs and the controller declared the node down and replaced all of it.
 * So an instance whose release is ready stays pending and is started from
 * here, PUMP_BATCH per loop turn, with syncs, heartbeats and exits in
 * between. A stop that comes first finds it pending and ends it at once.
 * A start no longer blocks the loop (spawn.c hands it to the spawner
 * threads), so the batch is 64: at 8, a deploy's batch of 250 took 500 ms
 * to reach the spawners, 32 loop turns each busy with reports and health
 * checks, and the spawners waited (136 ms at 64; a start of 1,000 took
 * 1,450-2,000 ms at 8, about 1,300 at 64, with 15 % less agent CPU:
 * tests/bench/run --spawn-only).
 */
#define PUMP_BATCH 64

static void
on_pump(uv_idle_t *h)
{
    struct agt *a = h->data;
    size_t started = 0;

    /* Instance events never add to or remove from the table. */
    for (size_t k = 0; k < a->ninst && started < PUMP_BATCH; k++)
        if (agt_inst_start_ready(a->insts[k]))
            started++;
    if (started < PUMP_BATCH) {
        uv_idle_stop(&a->pump);
        a->pumping = false;
    }
}

static void
pump_kick(struct agt *a)
{
    if (!a->pumping && a->st != AGT_LS_DONE) {
        uv_idle_start(&a->pump, on_pump);
        a->pumping = true;
    }
}

static void
start_one(struct agt *a, struct agt_spec *spec)
{
    struct agt_inst *i = agt_inst_new(a, spec);
    char dir[PATH_MAX];
    int rc;

    if (!i || insert(a, i) < 0) {
        log_error("start_failed", "app=%s inst=%s err=out_of_memory", spec->app, spec->name);
        if (i)
            agt_inst_free(i);
        else
            agt_spec_free(spec);
        return;
    }
    log_info("assigned", "app=%s inst=%s id=%" PRIu64 " release=%u port=%u", spec->app, spec->name,
             spec->id, (unsigned)spec->release, (unsigned)spec->port);
    rc = agt_slugs_want(a->slugs, spec, dir, sizeof dir);
    if (rc == 1) {
        agt_inst_release_ready(i, dir);
        pump_kick(a);
    } else if (rc < 0) {
        char why[96];

        log_error("release_failed", "app=%s inst=%s err=%s", spec->app, spec->name,
                  log_q(uv_strerror(rc)));
        snprintf(why, sizeof why, "cannot prepare the release: %s", uv_strerror(rc));
        agt_inst_release_failed(i, DROVER__INSTANCE_CAUSE__CAUSE_UNPACK_FAILED, why);
    }
    agt_inst_changed(a, i);
}

static bool
stopping(const struct agt_inst *i)
{
    enum agt_state st = agt_inst_sup(i)->state;

    return st == AGT_DELAYING || st == AGT_DRAINING || st == AGT_STOPPED;
}

/* Make the instances match the kept set (reconcile.c has the rules). */
static void
apply(struct agt *a, bool log_always)
{
    struct agt_have *have = calloc(a->ninst + 1, sizeof *have);
    uint64_t *want = calloc(a->nwant + 1, sizeof *want);
    struct agt_plan plan = {0};

    if (draining(a))
        goto out;
    if (!have || !want) {
        log_error("assign_failed", "generation=%" PRIu64 " err=out_of_memory", a->generation);
        goto out;
    }
    for (size_t k = 0; k < a->ninst; k++) {
        have[k].id = agt_inst_spec(a->insts[k])->id;
        have[k].stopping = stopping(a->insts[k]);
    }
    for (size_t k = 0; k < a->nwant; k++)
        want[k] = a->want[k]->id;
    if (agt_reconcile(have, a->ninst, want, a->nwant, a->cfg->capacity, a->st == AGT_LS_RUNNING,
                      &plan) < 0) {
        log_error("assign_failed", "generation=%" PRIu64 " err=out_of_memory", a->generation);
        goto out;
    }
    if (log_always || plan.nstart || plan.ndrain)
        log_info("assignments", "generation=%" PRIu64 " n=%zu start=%zu drain=%zu wait=%zu",
                 a->generation, a->nwant, plan.nstart, plan.ndrain, plan.nwait);
    if (plan.nwait > 0 && a->st == AGT_LS_RUNNING)
        log_warn("over_capacity", "waiting=%zu capacity=%u", plan.nwait,
                 (unsigned)a->cfg->capacity);
    for (size_t k = 0; k < plan.ndrain; k++) {
        struct agt_inst *i = find(a, plan.drain[k]);

        if (i)
            agt_inst_event(i, AGT_EV_STOP);
    }
    for (size_t k = 0; k < plan.nstart; k++) {
        struct agt_spec *spec;

        if (a->want[plan.start[k]]->oneoff && oneoff_ended(a, want[plan.start[k]]))
            continue;
        spec = agt_spec_ref(a->want[plan.start[k]]); /* never changed: shared */
        start_one(a, spec);                          /* takes this reference */
    }
out:
    free(have);
    free(want);
    agt_plan_fini(&plan);
}

static void
want_free(struct agt *a)
{
    for (size_t k = 0; k < a->nwant; k++)
        agt_spec_free(a->want[k]);
    free(a->want);
    a->want = NULL;
    a->nwant = 0;
}

const Drover__Assignment *
agt_assignment_env(const Drover__Assignment *as, Drover__EnvSet *const *sets, size_t nsets,
                   Drover__Assignment *one)
{
    if (as->env_set == 0)
        return as;
    if (as->env_set > nsets || as->n_env > 0 || sets[as->env_set - 1] == NULL)
        return NULL;
    *one = *as;
    one->env = sets[as->env_set - 1]->env;
    one->n_env = sets[as->env_set - 1]->n_env;
    return one;
}

void
agt_assign(struct agt *a, uint64_t gen, Drover__Assignment *const *as, size_t n,
           Drover__EnvSet *const *sets, size_t nsets)
{
    struct agt_spec **specs;
    size_t nspecs = 0;
    char err[160];

    if (draining(a))
        return;
    specs = n <= 100000 ? calloc(n + 1, sizeof *specs) : NULL;
    if (!specs) {
        log_error("assign_failed", "generation=%" PRIu64 " err=out_of_memory", gen);
        return;
    }
    for (size_t k = 0; k < n; k++) {
        const Drover__Assignment *full;
        Drover__Assignment one;
        struct agt_inst *i;

        if ((full = agt_assignment_env(as[k], sets, nsets, &one)) == NULL)
            snprintf(err, sizeof err, "names a set of config vars the reply does not hold");
        if (full == NULL || agt_spec_new(full, a->cfg, &specs[nspecs], err, sizeof err) < 0) {
            log_warn("bad_assignment", "id=%" PRIu64 " app=%s inst=%s err=%s", as[k]->id,
                     log_q(as[k]->app), log_q(as[k]->name), log_q(err));
            continue;
        }
        /* Running as assigned again: the set shares the instance's spec
         * (one copy per instance, not two). */
        i = find(a, as[k]->id);
        if (i && agt_spec_same(agt_inst_spec(i), specs[nspecs])) {
            agt_spec_free(specs[nspecs]);
            specs[nspecs] = agt_inst_spec_ref(i);
        }
        nspecs++;
    }
    want_free(a);
    a->want = specs;
    a->nwant = nspecs;
    a->generation = gen;
    apply(a, true);
}

void
agt_release_ready(struct agt *a, const char *app, uint32_t release, const char *sha,
                  const char *dir, int err, Drover__InstanceCause cause, const char *reason)
{
    /* Instance events never add to or remove from the table (only
     * agt_acked forgets), so indexing stays valid while they run. */
    for (size_t k = 0; k < a->ninst; k++) {
        struct agt_inst *i = a->insts[k];

        if (!waits_for_release(i) || !same_release(agt_inst_spec(i), app, release, sha))
            continue;
        if (err < 0) {
            log_warn("release_failed", "app=%s inst=%s release=%u err=%s", app,
                     agt_inst_spec(i)->name, (unsigned)release, log_q(reason));
            agt_inst_release_failed(i, cause, reason);
        } else {
            agt_inst_release_ready(i, dir);
            pump_kick(a);
        }
    }
}

bool
agt_release_used(struct agt *a, const char *app, uint32_t release)
{
    for (size_t k = 0; k < a->ninst; k++) {
        const struct agt_spec *s = agt_inst_spec(a->insts[k]);

        if (s->release == release && strcmp(s->app, app) == 0)
            return true;
    }
    return false;
}

bool
agt_release_wanted(struct agt *a, const char *app, uint32_t release, const char *sha)
{
    for (size_t k = 0; k < a->ninst; k++) {
        if (waits_for_release(a->insts[k]) &&
            same_release(agt_inst_spec(a->insts[k]), app, release, sha))
            return true;
    }
    return false;
}

/* ---- reports ---- */

uint64_t
agt_digest(Drover__InstanceReport *const *reps, size_t n)
{
    uint64_t h = FNV1A64_INIT;
    uint8_t stack[512];

    for (size_t k = 0; k < n; k++) {
        size_t len = drover__instance_report__get_packed_size(reps[k]);
        uint8_t *buf = len <= sizeof stack ? stack : malloc(len);

        if (!buf)
            continue;
        drover__instance_report__pack(reps[k], buf);
        h = fnv1a64(h, buf, len);
        if (buf != stack)
            free(buf);
    }
    return h;
}

int
agt_reports(struct agt *a, Drover__InstanceReport ***reps, size_t *n, uint64_t *digest)
{
    Drover__InstanceReport **r = calloc(a->ninst + 1, sizeof *r);
    size_t k;

    *reps = NULL;
    *n = 0;
    if (!r)
        return -ENOMEM;
    for (k = 0; k < a->ninst; k++) {
        r[k] = malloc(sizeof *r[k]);
        if (!r[k]) {
            agt_reports_free(r, k);
            return -ENOMEM;
        }
        drover__instance_report__init(r[k]);
        agt_inst_report(a->insts[k], r[k]);
    }
    *reps = r;
    *n = k;
    *digest = agt_digest(r, k);
    return 0;
}

void
agt_reports_free(Drover__InstanceReport **reps, size_t n)
{
    for (size_t k = 0; reps && k < n; k++)
        free(reps[k]);
    free(reps);
}

void
agt_reports_sent(struct agt *a, uint64_t seq)
{
    for (size_t k = 0; k < a->ninst; k++) {
        struct agt_inst *i = a->insts[k];

        if (agt_inst_sup(i)->state == AGT_STOPPED && agt_inst_stop_seq(i) == 0)
            agt_inst_set_stop_seq(i, seq);
    }
}

void
agt_acked(struct agt *a, uint64_t seq)
{
    bool forgot = false;

    for (size_t k = a->ninst; k-- > 0;) {
        struct agt_inst *i = a->insts[k];
        uint64_t s = agt_inst_stop_seq(i);

        if (agt_inst_sup(i)->state == AGT_STOPPED && s != 0 && s <= seq) {
            forget(a, k);
            forgot = true;
        }
    }
    if (forgot)
        apply(a, false);
    arm_check(a);
}

/*
 * A burst of starts leaves the heap as large as its peak (each start's
 * health check, spawn job and buffers are freed, but the heap's top stays
 * where the last long-lived allocation put it): 1,000 instances held
 * 1.3 MiB of free pages. Once no instance has changed for TRIM_QUIET_MS,
 * the free pages go back to the kernel (malloc_trim; a few hundred
 * microseconds on such a heap), when there are enough to matter.
 */
#define TRIM_QUIET_MS 500
#define TRIM_FREE_MIN (256u << 10)

static void
on_trim(uv_timer_t *t)
{
    struct mallinfo2 mi = mallinfo2();

    (void)t;
    if (mi.fordblks >= TRIM_FREE_MIN)
        malloc_trim(0);
}

void
agt_inst_changed(struct agt *a, struct agt_inst *i)
{
    if (a->conn)
        agt_conn_sync_soon(a->conn);
    arm_check(a);
    if (!uv_is_closing((uv_handle_t *)&a->trim))
        uv_timer_start(&a->trim, on_trim, TRIM_QUIET_MS, 0);
}

/* ---- shutdown ---- */

static void
on_handle_close(uv_handle_t *h)
{
}

static void
close_all(struct agt *a)
{
    log_info("shutdown_done", "node=%s exit_code=%d", a->cfg->node, a->exit_code);
    agt_conn_close(a->conn);
    a->conn = NULL;
    agt_slugs_close(a->slugs);
    a->slugs = NULL;
    for (size_t k = 0; k < a->ninst; k++)
        agt_inst_free(a->insts[k]);
    a->ninst = 0;
    want_free(a);
    agt_out_close_all(a);
    agt_pipe_close_all(a);
    agt_logs_close(a->logs);
    a->logs = NULL;
    agt_reaper_stop();
    agt_spawn_stop();
    agt_metrics_stop(a->metrics);
    notify_watchdog_stop();
    uv_close((uv_handle_t *)&a->sigpipe, on_handle_close);
    uv_close((uv_handle_t *)&a->sigterm, on_handle_close);
    uv_close((uv_handle_t *)&a->sigint, on_handle_close);
    uv_close((uv_handle_t *)&a->check, on_handle_close);
    uv_close((uv_handle_t *)&a->lastest, on_handle_close);
    uv_close((uv_handle_t *)&a->leave, on_handle_close);
    uv_close((uv_handle_t *)&a->pump, on_handle_close);
    uv_close((uv_handle_t *)&a->usage, on_handle_close);
    uv_close((uv_handle_t *)&a->trim, on_handle_close);
}

static void
on_lastest(uv_timer_t *t)
{
    struct agt *a = t->data;

    log_warn("last_sync_timeout", "node=%s", a->cfg->node);
    agt_last_sync_done(a);
}

static void life_apply(struct agt *a, enum agt_life_event ev);

static void
on_check(uv_timer_t *t)
{
    struct agt *a = t->data;

    if (!draining(a) || a->st == AGT_LS_DONE)
        return;
    for (size_t k = 0; k < a->ninst; k++) {
        if (agt_inst_sup(a->insts[k])->state != AGT_STOPPED || agt_inst_running(a->insts[k]))
            return; /* still draining: its exit re-arms this check */
    }
    life_apply(a, AGT_LE_CHECK);
}

void
agt_last_sync_done(struct agt *a)
{
    life_apply(a, AGT_LE_LAST_DONE);
}

static void
on_leave_timeout(uv_timer_t *t)
{
    struct agt *a = t->data;

    log_warn("leave_timeout", "node=%s timeout_ms=%u assigned=%zu", a->cfg->node,
             (unsigned)a->cfg->leave_timeout_ms, a->nwant);
    life_apply(a, AGT_LE_LEAVE_TIMEOUT);
}

/* Why a drain began, in the words of the logs. */
static const char *
drain_reason(enum agt_life_event ev)
{
    switch (ev) {
    case AGT_LE_SIGNAL_AGAIN:
        return "second_signal";
    case AGT_LE_MOVED:
        return "moved";
    case AGT_LE_UNREACHABLE:
        return "controller_unreachable";
    case AGT_LE_REFUSED:
        return "refused";
    default:
        return "leave_timeout";
    }
}

/* Feed ev to the agent's life table (states.c) and do what it says, in
 * the order of the action bits. The state changes first: an action may
 * feed the next event (a connection with nobody to tell ends the last sync
 * at once). */
static void
life_apply(struct agt *a, enum agt_life_event ev)
{
    enum agt_life_state from = a->st;
    enum agt_trans kind;
    unsigned act;

    a->st = agt_life_next(from, ev, &act, &kind);
    if (kind == AGT_T_REFUSE)
        log_warn("life_event_refused", "node=%s state=%s event=%s", a->cfg->node,
                 agt_life_state_name(from), agt_life_event_name(ev));
    if (kind != AGT_T_GO)
        return;
    if (a->st != from)
        log_debug("life_state", "node=%s from=%s to=%s event=%s", a->cfg->node,
                  agt_life_state_name(from), agt_life_state_name(a->st), agt_life_event_name(ev));
    if (act & AGT_LA_LEAVE) {
        if (a->cfg->leave_timeout_ms == 0) {
            life_apply(a, AGT_LE_LEAVE_TIMEOUT);
            return;
        }
        uv_timer_start(&a->leave, on_leave_timeout, a->cfg->leave_timeout_ms, 0);
        agt_conn_leave(a->conn); /* may feed UNREACHABLE at once */
    }
    if (act & AGT_LA_DRAIN) {
        uv_timer_stop(&a->leave);
        log_info("draining", "node=%s reason=%s instances=%zu", a->cfg->node, drain_reason(ev),
                 a->ninst);
        for (size_t k = 0; k < a->ninst; k++)
            agt_inst_event(a->insts[k], AGT_EV_STOP);
        arm_check(a);
    }
    if (act & AGT_LA_KILL) {
        for (size_t k = 0; k < a->ninst; k++)
            agt_inst_event(a->insts[k], AGT_EV_KILL);
    }
    if (act & AGT_LA_LAST) {
        /* Two heartbeats, within [1 s, 5 s]: an unreachable controller
         * must not hold a shutdown for long. */
        uint64_t wait = a->cfg->heartbeat_ms * 2ull;

        wait = wait < 1000 ? 1000 : wait > 5000 ? 5000 : wait;
        uv_timer_start(&a->lastest, on_lastest, wait, 0);
        agt_conn_last_sync(a->conn); /* may feed LAST_DONE at once */
    }
    if (act & AGT_LA_CHECK)
        arm_check(a);
    if (act & AGT_LA_CLOSE)
        close_all(a);
}

bool
agt_leaving(const struct agt *a)
{
    return a->st != AGT_LS_RUNNING;
}

void
agt_leave_acked(struct agt *a)
{
    if (a->nwant == 0)
        life_apply(a, AGT_LE_MOVED);
}

void
agt_leave_unreachable(struct agt *a)
{
    life_apply(a, AGT_LE_UNREACHABLE);
}

void
agt_refused(struct agt *a, const char *why)
{
    if (a->exit_code == 0)
        log_error("register_refused", "node=%s reason=%s", a->cfg->node, log_q(why));
    a->exit_code = 1;
    life_apply(a, AGT_LE_REFUSED);
}

static void
on_signal(uv_signal_t *sig, int signum)
{
    struct agt *a = sig->data;

    if (a->st == AGT_LS_DONE)
        return;
    if (++a->nsignals == 1) {
        notify_send("STOPPING=1");
        log_info("shutdown", "signal=%d instances=%zu leave_timeout_ms=%u", signum, a->ninst,
                 (unsigned)a->cfg->leave_timeout_ms);
        life_apply(a, AGT_LE_SIGNAL);
    } else {
        log_warn("shutdown_kill", "signal=%d instances=%zu", signum, a->ninst);
        life_apply(a, AGT_LE_SIGNAL_AGAIN);
    }
}

/* ---- boot ids and orphans ---- */

static void
boot_id_path(const struct agt *a, char *out, size_t outsz)
{
    if (strfmt(out, outsz, "%s/boot_id", a->cfg->data_dir) < 0)
        out[0] = '\0';
}

static void
read_prev_boot_id(struct agt *a)
{
    char path[PATH_MAX];
    ssize_t n;
    int fd;

    boot_id_path(a, path, sizeof path);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    n = read(fd, a->prev_boot_id, sizeof a->prev_boot_id - 1);
    close(fd);
    a->prev_boot_id[n > 0 ? n : 0] = '\0';
    a->prev_boot_id[strcspn(a->prev_boot_id, "\n")] = '\0';
}

void
agt_registered(struct agt *a)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    size_t len = strlen(a->boot_id);
    int fd, ok;

    boot_id_path(a, path, sizeof path);
    if (strfmt(tmp, sizeof tmp, "%s.tmp", path) < 0)
        return;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    ok = write(fd, a->boot_id, len) == (ssize_t)len;
    close(fd);
    if (!ok || rename(tmp, path) < 0) {
        log_warn("boot_id_save_failed", "path=%s", log_q(path));
        unlink(tmp);
    }
}

/*
 * Cgroups under the node's subtree that no orphan took: empty ones are
 * removed; a populated one whose record is lost (it could not be written)
 * is killed whole, since nothing is known to drain it with.
 */
static void
reap_cgroups(struct agt *a)
{
    const struct agt_cgroups *cg = agt_cgroups(a);
    uint64_t *ids = NULL;
    size_t n = 0;

    if (!cg || agt_cg_list(cg, &ids, &n) < 0)
        return;
    for (size_t k = 0; k < n; k++) {
        if (find(a, ids[k]))
            continue;
        if (agt_cg_populated(cg, ids[k]) > 0) {
            log_warn("orphan_cgroup_killed", "id=%" PRIu64 " reason=%s", ids[k],
                     log_q("no record to drain it with"));
            agt_cg_kill(cg, ids[k]);
        }
        agt_cg_remove(cg, ids[k]); /* a killed one goes at the next start */
    }
    free(ids);
}

/* Take back what a killed predecessor left running, to drain it. */
static int
take_orphans(struct agt *a)
{
    struct agt_runrec *v = NULL;
    size_t n = 0;
    int rc = agt_orphans_find(a->runrecs, agt_cgroups(a), &v, &n);

    if (rc < 0) {
        log_error("orphans_failed", "err=%s", log_q(uv_strerror(rc)));
        return rc;
    }
    for (size_t k = 0; k < n; k++) {
        struct agt_spec *spec = calloc(1, sizeof *spec);
        struct agt_inst *i = NULL;

        if (spec) {
            spec->refs = 1;
            spec->id = v[k].id;
            snprintf(spec->app, sizeof spec->app, "%s", v[k].app);
            snprintf(spec->name, sizeof spec->name, "%s", v[k].name);
            snprintf(spec->type, sizeof spec->type, "%.*s", (int)strcspn(v[k].name, "."),
                     v[k].name);
            spec->release = v[k].release;
            snprintf(spec->sha, sizeof spec->sha, "%s", v[k].sha);
            spec->port = v[k].port;
            spec->grace_ms = v[k].grace_ms ? v[k].grace_ms : AGT_DEFAULT_GRACE_MS;
            spec->boot_timeout_ms = AGT_DEFAULT_BOOT_MS;
            spec->command = strdup("");
            spec->env = calloc(1, sizeof *spec->env);
        }
        if (!spec || !spec->command || !spec->env || find(a, spec->id) ||
            !(i = agt_inst_orphan(a, spec, v[k].pgid)) || insert(a, i) < 0) {
            /* Never leave a group of ours unmanaged: kill it outright. */
            log_error("orphan_failed", "id=%" PRIu64 " pgid=%d action=sigkill", v[k].id, v[k].pgid);
            kill(-v[k].pgid, SIGKILL);
            if (i)
                agt_inst_free(i);
            else
                agt_spec_free(spec);
        }
    }
    if (n > 0)
        log_info("orphans", "node=%s draining=%zu", a->cfg->node, n);
    free(v);
    reap_cgroups(a);
    return 0;
}

static void
on_sigpipe(uv_signal_t *sig, int signum)
{
}

/* ---- cgroups and users ---- */

/*
 * Usage for `drover ps`: every USAGE_MS each instance's memory and its CPU
 * over the period, from its cgroup. A change makes the next sync a full
 * report (the digest covers usage), so the period bounds that cost too.
 */
#define USAGE_MS 5000

static void
on_usage(uv_timer_t *t)
{
    struct agt *a = t->data;
    uint64_t now = uv_hrtime();
    bool changed = false;

    for (size_t k = 0; k < a->ninst; k++)
        changed |= agt_inst_sample(a->insts[k], now);
    if (changed && a->conn)
        agt_conn_sync_soon(a->conn);
}

bool
agt_views(const struct agt *a)
{
    return a->views;
}

/*
 * A child tries what each instance's helper will do first (a mount
 * namespace, / made private, a tmpfs; a user namespace too when not root):
 * even root cannot in a chroot whose / is not a mount point. At start only,
 * so the fork may block.
 */
static void
probe_views(struct agt *a, const char *views)
{
    int pipefd[2], status = 0;
    char why[256] = "";
    pid_t pid;

    a->views = false;
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return;
    pid = fork();
    if (pid == 0) {
        int rc = agt_view_probe(views, why, sizeof why);

        if (rc < 0 && write(pipefd[1], why, strlen(why)) < 0)
            _exit(2);
        _exit(rc < 0 ? 1 : 0);
    }
    close(pipefd[1]);
    if (pid > 0) {
        ssize_t n = read(pipefd[0], why, sizeof why - 1);

        why[n > 0 ? n : 0] = '\0';
        waitpid(pid, &status, 0);
        a->views = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    } else
        snprintf(why, sizeof why, "fork: %s", strerror(errno));
    close(pipefd[0]);
    if (!a->views)
        log_warn("views_unavailable", "reason=%s fallback=release_dir", log_q(why));
}

const char *
agt_helper(const struct agt *a)
{
    return a->helper;
}

/*
 * The exec helper: drover-exec where it is installed (../libexec/drover/
 * from this binary) or beside this binary (a build tree); libc only, so it
 * loads in a fraction of the time. Else this very binary in its --exec mode,
 * through /proc/self/exe so that a binary replaced on disk still works.
 */
static void
find_helper(struct agt *a)
{
    static const char *const where[] = {"/../libexec/drover/drover-exec", "/drover-exec"};
    char exe[PATH_MAX];
    size_t len = sizeof exe, k;
    char *slash;

    snprintf(a->helper, sizeof a->helper, "/proc/self/exe");
    if (uv_exepath(exe, &len) < 0 || (slash = strrchr(exe, '/')) == NULL)
        return;
    *slash = '\0';
    for (k = 0; k < sizeof where / sizeof where[0]; k++)
        if (strfmt(a->helper, sizeof a->helper, "%s%s", exe, where[k]) == 0 &&
            access(a->helper, X_OK) == 0)
            return;
    snprintf(a->helper, sizeof a->helper, "/proc/self/exe");
}

const struct agt_cgroups *
agt_cgroups(const struct agt *a)
{
    return a->cg.ok ? &a->cg : NULL;
}

int
agt_app_ids(struct agt *a, const char *app, uint32_t *uid, uint32_t *gid)
{
    int rc;

    if (!a->cfg->drop)
        return 0;
    if (!a->uids) { /* DROVER_RUN_AS: one user for every app */
        *uid = a->cfg->run_uid;
        *gid = a->cfg->run_gid;
        return 1;
    }
    if ((rc = agt_uids_get(a->uids, app, uid)) < 0)
        return rc;
    *gid = *uid;
    return 1;
}

static int
slurp(const char *path, char *buf, size_t bufsz)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return -errno;
    n = read(fd, buf, bufsz - 1);
    close(fd);
    if (n < 0)
        return -EIO;
    buf[n] = '\0';
    return 0;
}

/* Said once at start: where instances' cgroups live, or why there are none. */
static void
probe_cgroups(struct agt *a)
{
    static char mounts[1 << 16], self[4096];
    char why[512] = "";
    int rc = slurp("/proc/self/mounts", mounts, sizeof mounts);

    if (rc == 0)
        rc = slurp("/proc/self/cgroup", self, sizeof self);
    if (a->cfg->cgroups_off) {
        rc = -ENOTSUP;
        snprintf(why, sizeof why, "turned off by DROVER_CGROUPS=off");
    } else if (rc < 0)
        snprintf(why, sizeof why, "cannot read /proc/self: %s", strerror(-rc));
    else if (geteuid() != 0 && !a->cfg->cgroup_root[0])
        snprintf(why, sizeof why, "the agent is not root and DROVER_CGROUP_ROOT is not set");
    else {
        /* The subtree is this agent's alone, found again by the next agent
         * with the same data dir: NODE-HASH, where HASH is of the data dir
         * (one host may run several agents, say for tests). */
        char sub[96];
        uint64_t h = fnv1a64(FNV1A64_INIT, a->cfg->data_dir, strlen(a->cfg->data_dir));

        snprintf(sub, sizeof sub, "%s-%08" PRIx32, a->cfg->node, (uint32_t)(h ^ (h >> 32)));
        rc = agt_cg_probe(&a->cg, mounts, self, a->cfg->cgroup_root, sub, why, sizeof why);
    }
    if (rc < 0 || !a->cg.ok) {
        a->cg.ok = false;
        log_warn("cgroups_unavailable", "reason=%s fallback=process_groups limits=refused",
                 log_q(why));
        return;
    }
    {
        char where[AGT_CG_NCTL][PATH_MAX + 4];

        for (int k = 0; k < AGT_CG_NCTL; k++)
            snprintf(where[k], sizeof where[k], "%s",
                     a->cg.v2ctl[k]   ? "v2"
                     : a->cg.v1[k][0] ? a->cg.v1[k]
                                      : "none");
        log_info("cgroups", "track=%s kill=%s memory=%s cpu=%s pids=%s", log_q(a->cg.track),
                 a->cg.has_kill ? "cgroup.kill" : "sigkill_each", log_q(where[AGT_CG_MEMORY]),
                 log_q(where[AGT_CG_CPU]), log_q(where[AGT_CG_PIDS]));
    }
}

/* ---- life ---- */

struct agt *
agt_new(uv_loop_t *loop, const struct agt_config *cfg, int *err)
{
    struct agt *a = calloc(1, sizeof *a);
    uint8_t rnd[16];
    char dir[PATH_MAX];
    int rc = -ENOMEM;

    if (!a)
        goto out;
    a->loop = loop;
    a->cfg = cfg;
    wire_sender_init(&a->sender, cfg->node);
    wire_sender_set_key(&a->sender, cfg->cluster_key);
    rc = wire_keyring_add("cluster", cfg->cluster_key);
    /* A key rotation: the controller may still seal with the other key. */
    if (rc >= 0 && cfg->has_key_next)
        rc = wire_keyring_add("cluster", cfg->cluster_key_next);
    if (rc < 0)
        goto out;
    rc = uv_random(NULL, NULL, rnd, sizeof rnd, 0, NULL);
    if (rc < 0)
        goto out;
    for (size_t k = 0; k < sizeof rnd; k++)
        snprintf(&a->boot_id[2 * k], 3, "%02x", rnd[k]);
    rc = strfmt(dir, sizeof dir, "%s/releases", cfg->data_dir);
    if (rc == 0)
        rc = mkdir_p(dir, 0755);
    if (rc < 0)
        goto out;
    /* Where each instance's view is mounted, in its own namespace. */
    if ((rc = strfmt(dir, sizeof dir, "%s/views", cfg->data_dir)) == 0)
        rc = mkdir_p(dir, 0755);
    if (rc < 0)
        goto out;
    probe_views(a, dir);
    if (cfg->per_app && cfg->drop) {
        a->uids = agt_uids_new(cfg->data_dir, cfg->uid_min, cfg->uid_max, &rc);
        if (!a->uids)
            goto out;
    }
    probe_cgroups(a);
    find_helper(a);
    a->checks = agt_health_watch_new(loop, true);
    a->runrecs = agt_runrecs_new(cfg->data_dir);
    a->sweep = agt_sweep_new();
    if (!a->checks || !a->runrecs || !a->sweep) {
        rc = -ENOMEM;
        goto out;
    }
    a->slugs = agt_slugs_new(a, &rc);
    if (!a->slugs)
        goto out;
    a->conn = agt_conn_new(a, &rc);
    if (!a->conn)
        goto out;
    uv_signal_init(loop, &a->sigterm);
    uv_signal_init(loop, &a->sigint);
    uv_signal_init(loop, &a->sigpipe);
    uv_timer_init(loop, &a->check);
    uv_timer_init(loop, &a->lastest);
    uv_timer_init(loop, &a->leave);
    uv_idle_init(loop, &a->pump);
    a->pump.data = a;
    uv_timer_init(loop, &a->usage);
    a->usage.data = a;
    uv_timer_init(loop, &a->trim);
    a->sigterm.data = a->sigint.data = a->sigpipe.data = a;
    a->check.data = a->lastest.data = a->leave.data = a;
    read_prev_boot_id(a);
out:
    if (rc < 0 && a) {
        /* Only sockets were opened; they close with the loop. */
        if (a->slugs)
            agt_slugs_close(a->slugs);
        agt_uids_free(a->uids);
        agt_health_watch_free(a->checks);
        agt_runrecs_free(a->runrecs);
        agt_sweep_free(a->sweep);
        free(a);
        a = NULL;
    }
    *err = rc;
    return a;
}

int
agt_start(struct agt *a)
{
    int rc = 0;

    a->metrics = agt_metrics_new(a);
    if (a->metrics == NULL)
        rc = -ENOMEM;
    if (rc == 0)
        rc = uv_signal_start(&a->sigterm, on_signal, SIGTERM);
    if (rc == 0)
        rc = uv_signal_start(&a->sigint, on_signal, SIGINT);
    /* A one-off that closed its stdin makes our write fail with EPIPE,
     * not kill the agent. */
    if (rc == 0)
        rc = uv_signal_start(&a->sigpipe, on_sigpipe, SIGPIPE);
    if (rc == 0)
        rc = agt_reaper_start(a->loop);
    if (rc == 0)
        a->logs = agt_logs_new(a, &rc);
    if (rc == 0)
        rc = take_orphans(a);
    if (rc == 0 && a->cg.ok)
        rc = uv_timer_start(&a->usage, on_usage, USAGE_MS, USAGE_MS);
    if (rc == 0)
        rc = agt_slugs_start(a->slugs);
    if (rc == 0)
        rc = agt_conn_start(a->conn);
    if (rc == 0)
        rc = agt_metrics_start(a->metrics, a->cfg->metrics_listen);
    if (rc == 0 && (uint32_t)(a->cfg->port_max - a->cfg->port_min) + 1 < a->cfg->capacity)
        log_warn("capacity_over_ports", "node=%s capacity=%u ports=%u-%u limit=%u msg=%s",
                 a->cfg->node, (unsigned)a->cfg->capacity, (unsigned)a->cfg->port_min,
                 (unsigned)a->cfg->port_max, (unsigned)(a->cfg->port_max - a->cfg->port_min) + 1,
                 log_q("every instance takes a port: DROVER_PORT_RANGE limits this node, not "
                       "DROVER_CAPACITY"));
    if (rc == 0)
        log_info("started",
                 "node=%s join=%s advertise=%s ports=%u-%u capacity=%u boot_id=%s run_as=%s",
                 a->cfg->node, log_q(a->cfg->join), a->cfg->advertise, (unsigned)a->cfg->port_min,
                 (unsigned)a->cfg->port_max, (unsigned)a->cfg->capacity, a->boot_id,
                 !a->cfg->drop ? "self"
                 : a->uids     ? "app_user"
                               : a->cfg->run_as);
    return rc;
}

void
agt_free(struct agt *a)
{
    /* After uv_run has returned: every handle is closed. */
    agt_reaper_free();
    agt_runrecs_free(a->runrecs);
    agt_metrics_free(a->metrics);
    agt_health_watch_free(a->checks);
    agt_sweep_free(a->sweep);
    free(a->insts);
    want_free(a);
    agt_uids_free(a->uids);
    if (a->cg.ok) { /* the node's subtree, if nothing is left in it */
        rmdir(a->cg.v2);
        for (int k = 0; k < AGT_CG_NCTL; k++)
            if (a->cg.v1[k][0])
                rmdir(a->cg.v1[k]);
        if (a->cg.cpuacct[0])
            rmdir(a->cg.cpuacct);
    }
    free(a);
}

struct agt_logs *
agt_logs(const struct agt *a)
{
    return a->logs;
}

struct agt_out **
agt_outs(struct agt *a)
{
    return &a->outs;
}

struct agt_pipe **
agt_pipes(struct agt *a)
{
    return &a->pipes;
}

struct agt_metrics *
agt_metrics(const struct agt *a)
{
    return a->metrics;
}

struct agt_sweep *
agt_sweep(const struct agt *a)
{
    return a->sweep;
}

struct agt_health_watch *
agt_health_watch(const struct agt *a)
{
    return a->checks;
}

struct agt_runrecs *
agt_runrecs(const struct agt *a)
{
    return a->runrecs;
}

uv_loop_t *
agt_loop(const struct agt *a)
{
    return a->loop;
}

const struct agt_config *
agt_cfg(const struct agt *a)
{
    return a->cfg;
}

struct wire_sender *
agt_sender(struct agt *a)
{
    return &a->sender;
}

const char *
agt_boot_id(const struct agt *a)
{
    return a->boot_id;
}

uint64_t
agt_generation(const struct agt *a)
{
    return a->generation;
}

const char *
agt_previous_boot_id(const struct agt *a)
{
    return a->prev_boot_id;
}

int
agt_exit_code(const struct agt *a)
{
    return a->exit_code;
}

/* ---- apps:destroy (issue 12) ---- */

void
agt_forget_destroyed(struct agt *a, char **apps, size_t napps, char **shas, size_t nshas)
{
    size_t i, k;

    for (i = 0; i < napps; i++) {
        bool busy = false;

        if (apps[i] == NULL || !name_app_valid(apps[i]))
            continue;
        for (k = 0; k < a->ninst && !busy; k++)
            busy = strcmp(agt_inst_spec(a->insts[k])->app, apps[i]) == 0;
        for (k = 0; k < a->nwant && !busy; k++)
            busy = strcmp(a->want[k]->app, apps[i]) == 0;
        if (!busy) /* an app of that name again, or still stopping: not now */
            agt_slugs_forget_app(a->slugs, apps[i]);
    }
    for (i = 0; i < nshas; i++) {
        bool busy = false;

        if (shas[i] == NULL || strlen(shas[i]) != 64 || strspn(shas[i], "0123456789abcdef") != 64)
            continue;
        for (k = 0; k < a->ninst && !busy; k++)
            busy = strcmp(agt_inst_spec(a->insts[k])->sha, shas[i]) == 0;
        if (!busy)
            agt_slugs_forget_slug(a->slugs, shas[i]);
    }
}
