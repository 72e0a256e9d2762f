/* SPDX-License-Identifier: MIT */
/*
 * supervise.c: one instance's life, as an explicit state × event table.
 *
 * Like s6-supervise, the whole behaviour is the table below: for each state
 * and event, the next state and the actions to take. agt_sup_apply() is pure
 * (it touches only struct agt_sup, given the clock and a random number), so
 * the unit tests drive every transition without a process. The driver,
 * agt_inst_event(), applies an event, logs the transition and carries out
 * the actions with libuv: spawn, signal the process group, arm the single
 * timer that each waiting state needs (boot timeout, shutdown delay, grace,
 * restart backoff), start the health check.
 *
 * Stopping an instance that is up goes through DELAYING first: the
 * controller has already taken it off the endpoint list that routers follow,
 * and the spec's shutdown_delay_ms gives them time to notice before the
 * process hears SIGTERM. It is reported draining from the start of the
 * delay. A delay of 0 passes through DELAYING within the same event (as a
 * spawn feeds back SPAWNED), so SIGTERM still goes at once. An instance that
 * is not up (nobody routes to it) and an orphan go straight to DRAINING.
 *
 * Process groups: every instance is spawned detached (setsid), so its pid is
 * its process group id and kill(-pgid) reaches every descendant that did not
 * leave the group. When the main process exits, for any reason, the group
 * gets SIGKILL: no grandchild outlives its instance. The group survives its
 * leader while any member remains, so the pgid cannot be reused in between.
 *
 * Spawns go through spawn.c (posix_spawn of the exec helper: the agent is
 * never forked) and exits come from reaper.c's one waitpid(-1) loop, looked
 * up by pid: no process handle per instance, nothing to close.
 *
 * Each live group is recorded under DROVER_DATA_DIR/run (orphans.c) from its
 * spawn until it is gone, so that an agent killed with SIGKILL finds it when
 * it starts again. Such a group comes back as an orphan instance: DRAINING
 * from the start, with no process handle (it is not our child), stopped
 * through the same table as any drain.
 *
 * One-offs (`drover run`) use the same table with one more event: their
 * exit, or a spawn that failed, is DONE, which ends in STOPPED (never
 * CRASHED: a one-off is never restarted). An attached one-off's stdio is a
 * struct agt_pipe instead of two output streams.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "agt.h"
#include "log.h"
#include "util.h"

struct step {
    unsigned char ok; /* 0: the event means nothing in this state */
    unsigned char next;
    unsigned short actions;
};

/* clang-format off */
#define STEP(nx, act) {1, AGT_##nx, (act)}
#define A(x) AGT_A_##x

static const struct step table[AGT_NSTATES][AGT_NEVENTS] = {
    [AGT_PENDING] = {
        [AGT_EV_SLUG_READY]      = STEP(STARTING, A(SPAWN)),
        [AGT_EV_SLUG_FAILED]     = STEP(FAILED, 0),
        [AGT_EV_STOP]            = STEP(STOPPED, 0),
    },
    [AGT_STARTING] = {
        [AGT_EV_SPAWNED]         = STEP(STARTING, A(HEALTH) | A(BOOT)),
        [AGT_EV_SPAWN_FAILED]    = STEP(CRASHED, A(CRASH) | A(BACKOFF)),
        [AGT_EV_HEALTHY]         = STEP(UP, 0),
        [AGT_EV_EXITED]          = STEP(CRASHED, A(KILL) | A(CRASH) | A(BACKOFF)),
        [AGT_EV_STOP]            = STEP(DRAINING, A(TERM) | A(GRACE)),
        [AGT_EV_BOOT_TIMEOUT]    = STEP(STARTING, A(KILL)), /* its exit is the crash */
        [AGT_EV_KILL]            = STEP(STARTING, A(KILL)),
        [AGT_EV_DONE]            = STEP(STOPPED, A(KILL)),
    },
    [AGT_UP] = {
        [AGT_EV_EXITED]          = STEP(CRASHED, A(KILL) | A(CRASH) | A(BACKOFF)),
        [AGT_EV_STOP]            = STEP(DELAYING, A(DELAY)),
        [AGT_EV_KILL]            = STEP(UP, A(KILL)),
        [AGT_EV_DONE]            = STEP(STOPPED, A(KILL)),
    },
    /* Off the endpoint list, not signalled yet. An exit now is the end of
     * the drain come early, never a crash: the rest of the group gets the
     * usual SIGTERM and grace. */
    [AGT_DELAYING] = {
        [AGT_EV_DELAY_EXPIRED]   = STEP(DRAINING, A(TERM) | A(GRACE)),
        [AGT_EV_EXITED]          = STEP(DRAINING, A(TERM) | A(GRACE) | A(WATCH)),
        [AGT_EV_DONE]            = STEP(DRAINING, A(TERM) | A(GRACE) | A(WATCH)),
        [AGT_EV_KILL]            = STEP(DRAINING, A(KILL)),
    },
    /* The leader's exit is not the end of a drain: the rest of the group
     * (say python under `sh -c`) got the same SIGTERM and may still be
     * shutting down. Like Heroku, every process gets the grace period. */
    [AGT_DRAINING] = {
        [AGT_EV_EXITED]          = STEP(DRAINING, A(WATCH)), /* asked for: not a crash */
        [AGT_EV_DONE]            = STEP(DRAINING, A(WATCH)),
        [AGT_EV_GROUP_GONE]      = STEP(STOPPED, 0),
        [AGT_EV_GRACE_EXPIRED]   = STEP(DRAINING, A(KILL)),
        [AGT_EV_KILL]            = STEP(DRAINING, A(KILL)),
    },
    /* AGT_STOPPED: final; every event is ignored. */
    [AGT_CRASHED] = {
        [AGT_EV_BACKOFF_EXPIRED] = STEP(STARTING, A(SPAWN)),
        [AGT_EV_STOP]            = STEP(STOPPED, 0),
    },
    [AGT_FAILED] = {
        [AGT_EV_SLUG_READY]      = STEP(STARTING, A(SPAWN)),
        [AGT_EV_STOP]            = STEP(STOPPED, 0),
    },
};
/* clang-format on */

static const char *const state_names[AGT_NSTATES] = {
    [AGT_PENDING] = "pending",   [AGT_STARTING] = "starting", [AGT_UP] = "up",
    [AGT_DELAYING] = "delaying", [AGT_DRAINING] = "draining", [AGT_STOPPED] = "stopped",
    [AGT_CRASHED] = "crashed",   [AGT_FAILED] = "failed",
};

static const char *const event_names[AGT_NEVENTS] = {
    [AGT_EV_SLUG_READY] = "slug_ready",
    [AGT_EV_SLUG_FAILED] = "slug_failed",
    [AGT_EV_SPAWNED] = "spawned",
    [AGT_EV_SPAWN_FAILED] = "spawn_failed",
    [AGT_EV_HEALTHY] = "healthy",
    [AGT_EV_EXITED] = "exited",
    [AGT_EV_STOP] = "stop",
    [AGT_EV_GRACE_EXPIRED] = "grace_expired",
    [AGT_EV_BACKOFF_EXPIRED] = "backoff_expired",
    [AGT_EV_BOOT_TIMEOUT] = "boot_timeout",
    [AGT_EV_KILL] = "kill",
    [AGT_EV_GROUP_GONE] = "group_gone",
    [AGT_EV_DONE] = "done",
    [AGT_EV_DELAY_EXPIRED] = "delay_expired",
};

enum agt_state
agt_sup_next(enum agt_state st, enum agt_event ev, unsigned *actions, bool *ignored)
{
    const struct step *t;

    *actions = 0;
    *ignored = true;
    if ((unsigned)st >= AGT_NSTATES || (unsigned)ev >= AGT_NEVENTS)
        return st;
    t = &table[st][ev];
    if (!t->ok)
        return st;
    *ignored = false;
    *actions = t->actions;
    return (enum agt_state)t->next;
}

void
agt_sup_init(struct agt_sup *s, uint64_t now)
{
    memset(s, 0, sizeof *s);
    s->state = AGT_PENDING;
    s->exit_code = -1;
    s->since_ms = now;
}

unsigned
agt_sup_apply(struct agt_sup *s, enum agt_event ev, uint64_t now, uint32_t rnd)
{
    unsigned act;
    bool ignored;
    enum agt_state next = agt_sup_next(s->state, ev, &act, &ignored);

    if (ignored)
        return 0;
    if (act & AGT_A_CRASH) {
        uint64_t up = s->up_since_ms && now > s->up_since_ms ? now - s->up_since_ms : 0;

        s->restarts++;
        s->consecutive = agt_backoff_next(s->consecutive, up);
    }
    if (act & AGT_A_BACKOFF) {
        s->backoff_ms = agt_backoff_ms(s->consecutive, rnd);
        if (!s->been_up && s->state != AGT_UP && s->backoff_ms < AGT_NEVER_UP_HOLD_MS)
            s->backoff_ms = AGT_NEVER_UP_HOLD_MS;
    }
    if (next != s->state) {
        s->state = next;
        s->since_ms = now;
        s->up_since_ms = next == AGT_UP ? now : 0;
        if (next == AGT_UP)
            s->been_up = true;
    }
    return act;
}

const char *
agt_state_name(enum agt_state st)
{
    return (unsigned)st < AGT_NSTATES ? state_names[st] : "invalid";
}

const char *
agt_event_name(enum agt_event ev)
{
    return (unsigned)ev < AGT_NEVENTS ? event_names[ev] : "invalid";
}

Drover__InstanceState
agt_state_wire(enum agt_state st)
{
    switch (st) {
    case AGT_PENDING:
        return DROVER__INSTANCE_STATE__ST_PENDING;
    case AGT_STARTING:
        return DROVER__INSTANCE_STATE__ST_STARTING;
    case AGT_UP:
        return DROVER__INSTANCE_STATE__ST_UP;
    case AGT_DELAYING: /* the controller sees one drain, delay included */
    case AGT_DRAINING:
        return DROVER__INSTANCE_STATE__ST_DRAINING;
    case AGT_STOPPED:
        return DROVER__INSTANCE_STATE__ST_STOPPED;
    case AGT_CRASHED:
        return DROVER__INSTANCE_STATE__ST_CRASHED;
    case AGT_FAILED:
        return DROVER__INSTANCE_STATE__ST_FAILED;
    default:
        return DROVER__INSTANCE_STATE__ST_UNKNOWN;
    }
}

/* ---- the driver ---- */

/* What went wrong, kept apart: most instances never need it (a thousand
 * of them on a node would carry 670 bytes each for nothing). */
struct inst_notes {
    char reason[320];    /* why it last crashed or ended */
    char boot_why[96];   /* boot timeout: what the health check last saw */
    char spawn_err[256]; /* why the last spawn was refused */
};

struct agt_inst {
    struct agt *agt;       /* borrowed */
    struct agt_spec *spec; /* owned */
    struct agt_sup sup;
    char *dir;        /* the unpacked release: cwd and HOME (owned; NULL until ready) */
    uv_timer_t timer; /* boot, delay, grace or backoff: one per waiting state */
    enum agt_event timer_ev;
    uv_timer_t watch;        /* draining, leader gone: polls the group */
    uint64_t watch_deadline; /* mono_ms: past it, the group counts as gone */
    uint64_t since_wall;     /* now_ms when sup.state was entered: what reports say */
    unsigned watch_ticks;
    bool orphan;               /* left by a killed agent: no process handle */
    bool ready;                /* its release is ready: the pump will start it */
    bool boot_timed_out;       /* killed for not being healthy within the boot timeout */
    int closing;               /* handles still to close before free */
    int pid;                   /* the live process (reaper.c watches it), or 0 */
    struct agt_spawn_job *job; /* a spawn on its way (spawn.c), or NULL */
    int pending_sig;           /* sent while the pid was on its way: sent again */
    bool sweep_queued;         /* its cgroup hears SIGTERM in the next loop turn */
    int pgid;                  /* its group; kept until the exit has been handled */
    int view_ns;               /* its view, held from the stop to the exit (viewhold.c); -1 */
    struct agt_health *health;
    uint64_t stop_seq;           /* see agt_reports() */
    struct agt_pipe *pipe;       /* attached one-off, until its exit */
    struct inst_notes *notes;    /* why: NULL until something went wrong (notes()) */
    size_t reason_crash;         /* reason's length without its restart plan */
    Drover__InstanceCause cause; /* what reason is about */
    bool cg;                     /* it has a cgroup (i<ID> under the node's subtree) */
    uint64_t oom_base;           /* the cgroup's oom kills when it was spawned */
    bool oom;                    /* its last exit was an oom kill */
    uint64_t mem;                /* usage at the last sample (agt_inst_sample) */
    uint32_t cpu_permille;
    uint64_t cpu_usec, sampled_ns; /* the counter and uv_hrtime at the last sample */
};

/* i's notes, made on first use. Out of memory, a scratch copy takes the
 * writes and the reason is lost (reports say none). */
static struct inst_notes *
notes(struct agt_inst *i)
{
    static struct inst_notes scratch;

    if (!i->notes && !(i->notes = calloc(1, sizeof *i->notes))) {
        memset(&scratch, 0, sizeof scratch);
        return &scratch;
    }
    return i->notes;
}

static const char *
reason_of(const struct agt_inst *i)
{
    return i->notes ? i->notes->reason : "";
}

/* "512 MiB", "1 GiB", "1000000 bytes": a memory limit as people set it. */
static void
bytes_text(uint64_t v, char *out, size_t outsz)
{
    if (v >= (1ull << 30) && v % (1ull << 30) == 0)
        snprintf(out, outsz, "%" PRIu64 " GiB", v >> 30);
    else if (v % (1ull << 20) == 0)
        snprintf(out, outsz, "%" PRIu64 " MiB", v >> 20);
    else if (v % 1024 == 0)
        snprintf(out, outsz, "%" PRIu64 " KiB", v >> 10);
    else
        snprintf(out, outsz, "%" PRIu64 " bytes", v);
}

static uint32_t
rnd32(void)
{
    uint32_t r = 0;

    if (uv_random(NULL, NULL, &r, sizeof r, 0, NULL) < 0)
        r = (uint32_t)uv_hrtime();
    return r;
}

static void
on_timer(uv_timer_t *t)
{
    struct agt_inst *i = t->data;

    agt_inst_event(i, i->timer_ev);
}

/* Shutdown delays end on a grid of the loop's clock. A formation stopped at
 * once (a scale down, a deploy's batch) arms its timers over a few ms, one
 * instance after another; off the grid they expire over as many loop
 * passes, each also handling the exits of those signalled just before
 * (reaping, reports, cgroups), and the last SIGTERM of 1,000 went out
 * 160 ms after the first. On the grid they expire in one pass: every
 * SIGTERM goes out before any exit is handled. The delay is a least wait
 * for routers to catch up, so ending it up to DELAY_GRID_MS later keeps
 * its meaning. */
#define DELAY_GRID_MS 20

static uint64_t
delay_on_grid(const struct agt_inst *i, uint64_t ms)
{
    uint64_t rem = (uv_now(agt_loop(i->agt)) + ms) % DELAY_GRID_MS;

    return rem ? ms + DELAY_GRID_MS - rem : ms;
}

static void
arm(struct agt_inst *i, uint64_t ms, enum agt_event ev)
{
    i->timer_ev = ev;
    uv_timer_start(&i->timer, on_timer, ms, 0);
}

/*
 * A group is gone when kill(-pgid, 0) finds no member. That counts zombies
 * too, which their new parent may not reap promptly (not every init does),
 * so every tenth tick a /proc scan (agt_group_alive) decides without them.
 * And past the grace period (when SIGKILL has been sent and nothing can
 * still be running) plus 2 s, the group counts as gone whatever is left.
 */
static void
on_watch(uv_timer_t *t)
{
    struct agt_inst *i = t->data;
    const struct agt_cgroups *cg = agt_cgroups(i->agt);
    bool alive;

    if (i->cg && cg) /* the cgroup says it exactly: no zombie counts */
        alive = agt_cg_populated(cg, i->spec->id) != 0;
    else {
        alive = i->pgid > 1 && kill(-i->pgid, 0) == 0;
        if (alive && ++i->watch_ticks % 10 == 1)
            alive = agt_group_alive(i->pgid);
    }
    if (alive && mono_ms() < i->watch_deadline)
        return;
    uv_timer_stop(&i->watch);
    agt_inst_event(i, AGT_EV_GROUP_GONE);
}

static void
watch_group(struct agt_inst *i)
{
    i->watch_deadline = i->sup.since_ms + i->spec->grace_ms + 2000;
    i->watch_ticks = 0;
    uv_timer_start(&i->watch, on_watch, 0, 20);
}

/* Remember the group under DATA_DIR/run until it is gone (orphans.c). */
static void
record_group(struct agt_inst *i)
{
    struct agt_runrec r = {0};
    int rc;

    r.id = i->spec->id;
    r.pgid = i->pgid;
    r.grace_ms = i->spec->grace_ms;
    r.port = i->spec->port;
    r.release = i->spec->release;
    snprintf(r.app, sizeof r.app, "%s", i->spec->app);
    snprintf(r.name, sizeof r.name, "%s", i->spec->name);
    snprintf(r.sha, sizeof r.sha, "%s", i->spec->sha);
    rc = agt_runrec_start_time(i->pgid, &r.start);
    if (rc == 0)
        rc = agt_runrec_save(agt_runrecs(i->agt), &r);
    if (rc < 0) /* gone already, or the disk refuses: only a restart would miss it */
        log_warn("runrec_failed", "app=%s inst=%s pid=%d err=%s", i->spec->app, i->spec->name,
                 i->pgid, log_q(strerror(-rc)));
}

/* The group is gone or has been sent SIGKILL: nothing left to find later. */
static void
remove_cgroup(struct agt_inst *i)
{
    const struct agt_cgroups *cg = agt_cgroups(i->agt);

    /* EBUSY while killed members are still exiting: tried again when the
     * instance is freed, and by the next agent's start. */
    if (i->cg && cg && agt_cg_remove(cg, i->spec->id) == 0)
        i->cg = false;
}

static void
forget_group(struct agt_inst *i)
{
    remove_cgroup(i);
    if (i->pgid == 0)
        return;
    agt_runrec_remove(agt_runrecs(i->agt), i->spec->id);
    i->pgid = 0;
}

static void
on_healthy(void *arg)
{
    struct agt_inst *i = arg;

    i->health = NULL; /* it frees itself after this callback */
    agt_inst_event(i, AGT_EV_HEALTHY);
}

static void
health_stop(struct agt_inst *i)
{
    if (i->health)
        agt_health_stop(i->health);
    i->health = NULL;
}

static void
signal_cgroup(struct agt_inst *i, int sig)
{
    const struct agt_cgroups *cg = agt_cgroups(i->agt);
    int rc;

    if (!i->cg || !cg)
        return;
    rc = sig == SIGKILL ? agt_cg_kill(cg, i->spec->id) : agt_cg_signal(cg, i->spec->id, sig);
    if (rc < 0 && rc != -ENOENT)
        log_warn("cgroup_kill_failed", "app=%s inst=%s sig=%d err=%s", i->spec->app, i->spec->name,
                 sig, log_q(strerror(-rc)));
}

/*
 * SIGTERM to a cgroup's members is a read of its cgroup.procs and a kill
 * each: at a stop of 1,000 that was half of the time until the last group
 * heard SIGTERM. The process group (the app and what it did not move out)
 * hears it at once; the sweep of the cgroup for members that left the group
 * follows in the next loop turn, for every instance stopped in this one.
 */
struct agt_sweep {
    struct agt_inst **v;
    size_t n, cap;
    uv_timer_t *timer; /* one turn of the loop; NULL while nothing waits */
};

struct agt_sweep *
agt_sweep_new(void)
{
    return calloc(1, sizeof(struct agt_sweep));
}

void
agt_sweep_free(struct agt_sweep *sw)
{
    if (sw != NULL)
        free(sw->v);
    free(sw);
}

static void
on_sweep(uv_timer_t *t)
{
    struct agt_sweep *sw = t->data;

    for (size_t k = 0; k < sw->n; k++) {
        sw->v[k]->sweep_queued = false;
        signal_cgroup(sw->v[k], SIGTERM);
    }
    sw->n = 0;
    uv_close((uv_handle_t *)t, (uv_close_cb)free);
    sw->timer = NULL;
}

static bool
sweep_later(struct agt_inst *i)
{
    struct agt_sweep *sw = agt_sweep(i->agt);

    if (i->sweep_queued)
        return true;
    if (!sw->timer) {
        if ((sw->timer = malloc(sizeof *sw->timer)) == NULL)
            return false;
        uv_timer_init(agt_loop(i->agt), sw->timer);
        sw->timer->data = sw;
        uv_timer_start(sw->timer, on_sweep, 0, 0);
    }
    if (sw->n == sw->cap) {
        size_t nc = sw->cap ? sw->cap * 2 : 64;
        struct agt_inst **nv = realloc(sw->v, nc * sizeof *nv);

        if (!nv)
            return false;
        sw->v = nv;
        sw->cap = nc;
    }
    sw->v[sw->n++] = i;
    i->sweep_queued = true;
    return true;
}

static void
sweep_forget(struct agt_inst *i)
{
    struct agt_sweep *sw = agt_sweep(i->agt);

    for (size_t k = 0; i->sweep_queued && k < sw->n; k++)
        if (sw->v[k] == i) {
            sw->v[k] = sw->v[--sw->n];
            i->sweep_queued = false;
        }
}

static void
signal_group(struct agt_inst *i, int sig)
{
    /* Its view is held from now to the reap, so that the exit does not wait
     * for the view's teardown (viewhold.c). */
    if (i->pid > 0 && i->view_ns < 0 && agt_views(i->agt))
        i->view_ns = agt_viewhold_take(i->pid);
    /* A cgroup holds every descendant, setsid or not: signal each; at
     * SIGKILL, kill the cgroup whole. The group as well, for what started
     * before the agent had cgroups. */
    if (sig != SIGTERM || i->pgid <= 1 || !sweep_later(i))
        signal_cgroup(i, sig);
    if (i->job && (sig == SIGKILL || !i->pending_sig))
        i->pending_sig = sig; /* the pid is on its way: spawned() sends it */
    if (i->pgid <= 1)
        return;
    if (kill(-i->pgid, sig) < 0 && errno != ESRCH)
        log_warn("kill_failed", "app=%s inst=%s pgid=%d sig=%d err=%s", i->spec->app, i->spec->name,
                 i->pgid, sig, log_q(strerror(errno)));
}

static void
on_exit_cb(void *arg, int pid, int status, int sig)
{
    struct agt_inst *i = arg;

    if (pid != i->pid) /* cannot happen: reaper.c forgets the old watch */
        return;
    i->pid = 0;
    agt_viewhold_give(i->view_ns);
    i->view_ns = -1;
    i->sup.exit_code = sig ? -1 : (int32_t)status;
    i->sup.exit_signal = sig;
    i->oom = false;
    if (i->cg && agt_cgroups(i->agt) && i->spec->limits.memory) {
        uint64_t n = 0;

        if (agt_cg_oom_kills(agt_cgroups(i->agt), i->spec->id, &n) == 0 && n > i->oom_base) {
            char text[128], mem[32];
            struct logring_drops d = {0};
            int len;

            i->oom = true;
            i->oom_base = n;
            bytes_text(i->spec->limits.memory, mem, sizeof mem);
            len = snprintf(text, sizeof text, "drover: memory limit %s exceeded (oom kill)", mem);
            agt_logs_line(agt_logs(i->agt), i->spec->app, i->spec->name, true, text, (size_t)len,
                          &d);
            log_info("oom_kill", "app=%s inst=%s limit=%" PRIu64, i->spec->app, i->spec->name,
                     i->spec->limits.memory);
        }
    }
    log_info("exited", "app=%s inst=%s pid=%d code=%d signal=%d", i->spec->app, i->spec->name,
             i->pgid, (int)i->sup.exit_code, sig);
    if (i->pipe != NULL) {
        agt_pipe_exited(i->pipe, status, sig);
        i->pipe = NULL;
    }
    agt_inst_event(i, i->spec->oneoff ? AGT_EV_DONE : AGT_EV_EXITED);
}

/* env ("K=V" strings, NULL-terminated) written NUL after NUL into a memfd,
 * rewound, in *fd. 0 or -errno. */
static int
env_memfd(char **env, int *fd)
{
    int f = memfd_create("drover-env", MFD_CLOEXEC);

    if (f < 0)
        return -errno;
    for (size_t k = 0; env[k]; k++) {
        size_t len = strlen(env[k]) + 1;

        if (write(f, env[k], len) != (ssize_t)len) {
            close(f);
            return -EIO;
        }
    }
    if (lseek(f, 0, SEEK_SET) < 0) {
        close(f);
        return -errno;
    }
    *fd = f;
    return 0;
}

/*
 * Before the spawn: the instance's cgroup with its limits, made or reused
 * (a restart at once reuses the one its killed predecessor is leaving) by
 * the spawner thread (agt_cg_prepare, from prep); here only the
 * cgroup.procs paths the helper joins, which follow from the limits.
 * A limit that no cgroup can enforce here is refused, never ignored.
 */
static int
prepare_cgroup(struct agt_inst *i, struct agt_cg_prep *prep, char procs[][PATH_MAX], size_t max,
               int *nprocs)
{
    const struct agt_cgroups *cg = agt_cgroups(i->agt);
    const struct agt_limits *l = &i->spec->limits;
    static const char *const what[AGT_CG_NCTL] = {"memory", "cpu", "pids"};
    bool want[AGT_CG_NCTL] = {l->memory != 0, l->cpu_milli != 0, l->pids != 0};
    int k, rc;

    *nprocs = 0;
    memset(prep, 0, sizeof *prep);
    for (k = 0; k < AGT_CG_NCTL; k++)
        if (want[k] && (!cg || !agt_cg_can_limit(cg, (enum agt_cg_ctl)k))) {
            snprintf(notes(i)->spawn_err, sizeof i->notes->spawn_err,
                     "the %s limit cannot be enforced on this node (%s)", what[k],
                     cg ? "no such cgroup controller" : "cgroups unavailable");
            return -ENOTSUP;
        }
    if (!cg)
        return 0;
    rc = agt_cg_procs(cg, i->spec->id, l, procs, max);
    if (rc < 0)
        return rc;
    *nprocs = rc;
    prep->cg = cg;
    prep->id = i->spec->id;
    prep->limits = *l;
    prep->rc = -EINPROGRESS;
    return 0;
}

/* The spawn's outcome for the cgroup (prep: NULL when it had none): 0, or
 * its error (why in spawn_err). */
static int
cgroup_made(struct agt_inst *i, const struct agt_cg_prep *prep)
{
    if (!prep || !prep->cg || prep->rc == -EINPROGRESS)
        return 0;
    if (prep->rc < 0) {
        snprintf(notes(i)->spawn_err, sizeof i->notes->spawn_err, "%s", prep->err);
        return prep->rc;
    }
    i->cg = true;
    i->oom_base = prep->oom_base;
    return 0;
}

/* The helper's steps for instance i (exec.c): its script, environment,
 * ids, limit and view; the cgroups to join are the caller's. 0, or -errno
 * with the reason in the instance's notes. */
static int
exec_plan(struct agt_inst *i, char *script, char **env, char views[2][PATH_MAX],
          struct agt_view *view, struct agt_exec_plan *p)
{
    int rc;

    memset(p, 0, sizeof *p);
    p->script = script;
    p->env = env;
    rc = agt_app_ids(i->agt, i->spec->app, &p->uid, &p->gid);
    if (rc < 0) {
        snprintf(notes(i)->spawn_err, sizeof i->notes->spawn_err, "no user for the app: %s",
                 strerror(-rc));
        return rc;
    }
    p->drop = rc == 1;
    p->nofile = i->spec->limits.nofile;
    if (views[0][0]) {
        view->release = i->dir;
        view->views = views[0];
        view->hide = views[1];
        p->view = view;
    }
    return 0;
}

/*
 * The helper's command line for plan p (exec.c): drover-agent --exec
 * [--cgroup FILE]... [--uid U --gid G] [--nofile N] [--tty] [--view ...]
 * -- SCRIPT, joining procs[0..nprocs-1]. strs holds the numbers' text;
 * argv points into it, into procs and into p's strings.
 */
static void
helper_args(const struct agt_exec_plan *p, char *exe, char procs[][PATH_MAX], int nprocs,
            char strs[3][24], char **argv)
{
    static char o_exec[] = "--exec", o_cg[] = "--cgroup", o_uid[] = "--uid", o_gid[] = "--gid",
                o_nofile[] = "--nofile", o_tty[] = "--tty", o_end[] = "--", o_view[] = "--view",
                o_views[] = "--views", o_hide[] = "--hide", o_envfd[] = "--env-fd", o_three[] = "3";
    int n = 0, k;

    argv[n++] = exe;
    argv[n++] = o_exec;
    argv[n++] = o_envfd; /* the app's environment: see spawn() */
    argv[n++] = o_three;
    for (k = 0; k < nprocs; k++) {
        argv[n++] = o_cg;
        argv[n++] = procs[k];
    }
    if (p->drop) {
        snprintf(strs[0], 24, "%" PRIu32, p->uid);
        snprintf(strs[1], 24, "%" PRIu32, p->gid);
        argv[n++] = o_uid;
        argv[n++] = strs[0];
        argv[n++] = o_gid;
        argv[n++] = strs[1];
    }
    if (p->nofile) {
        snprintf(strs[2], 24, "%" PRIu32, p->nofile);
        argv[n++] = o_nofile;
        argv[n++] = strs[2];
    }
    if (p->tty)
        argv[n++] = o_tty;
    if (p->view) {
        argv[n++] = o_view;
        argv[n++] = (char *)p->view->release;
        argv[n++] = o_views;
        argv[n++] = (char *)p->view->views;
        argv[n++] = o_hide;
        argv[n++] = (char *)p->view->hide;
    }
    argv[n++] = o_end;
    argv[n++] = (char *)p->script;
    argv[n] = NULL;
}

/* pid runs: watch its exit, record its group. 0, or -ENOMEM with it killed. */
static int
started(struct agt_inst *i, int pid)
{
    int rc = agt_reaper_watch(pid, on_exit_cb, i);

    if (rc < 0) {
        /* Its exit could not be told: never leave it running unowned. */
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        return rc;
    }
    i->pid = pid;
    i->pgid = pid;
    record_group(i);
    log_info("spawned", "app=%s inst=%s id=%" PRIu64 " pid=%d port=%u release=%u", i->spec->app,
             i->spec->name, i->spec->id, i->pgid, (unsigned)i->spec->port,
             (unsigned)i->spec->release);
    return 0;
}

/*
 * The spawner thread's answer (spawn.c). The instance went on as spawned
 * (STARTING, its health check running) while the pid was on its way; what
 * happened meanwhile is caught up here: a signal it was sent, or the exit,
 * which reaper.c may have reaped before the pid was known.
 */
static void
spawned(void *arg, int pid, int err, const struct agt_cg_prep *prep)
{
    struct agt_inst *i = arg;
    int code, sig, pending = i->pending_sig;
    bool prep_failed;

    i->job = NULL;
    i->pending_sig = 0;
    prep_failed = cgroup_made(i, prep) < 0;
    if (err == 0 && agt_reaper_claim(pid, &code, &sig)) {
        /* Gone before we knew its pid: nothing to watch or record. */
        i->pid = i->pgid = pid;
        log_info("spawned", "app=%s inst=%s id=%" PRIu64 " pid=%d port=%u release=%u", i->spec->app,
                 i->spec->name, i->spec->id, pid, (unsigned)i->spec->port,
                 (unsigned)i->spec->release);
        on_exit_cb(i, pid, code, sig);
        return;
    }
    if (err == 0 && started(i, pid) < 0)
        err = -ENOMEM;
    if (err < 0) {
        log_error("spawn_failed", "app=%s inst=%s err=%s", i->spec->app, i->spec->name,
                  log_q(uv_strerror(err)));
        if (!prep_failed) /* else spawn_err says what the cgroup refused */
            snprintf(notes(i)->spawn_err, sizeof i->notes->spawn_err, "could not start: %s",
                     uv_strerror(err));
        i->sup.exit_code = 127;
        i->sup.exit_signal = 0;
        agt_inst_event(i, i->spec->oneoff                ? AGT_EV_DONE
                          : i->sup.state == AGT_STARTING ? AGT_EV_SPAWN_FAILED
                                                         : AGT_EV_EXITED);
        return;
    }
    if (i->sup.state == AGT_STOPPED || i->sup.state == AGT_CRASHED || i->sup.state == AGT_FAILED)
        pending = SIGKILL; /* it should not run any more */
    if (pending)
        signal_group(i, pending);
}

/* 0, or a negative errno with the reason logged. */
static int
spawn(struct agt_inst *i)
{
    uv_loop_t *loop = agt_loop(i->agt);
    char *script = agt_shell_command(i->spec->command);
    char *args[AGT_CG_NCTL * 2 + 28], *args_join[AGT_CG_NCTL * 2 + 28], cgdir[PATH_MAX];
    char procs[AGT_CG_NCTL + 2][PATH_MAX], strs[3][24], views[2][PATH_MAX], home[PATH_MAX];
    char exe[] = "drover-exec";
    char *no_env[] = {NULL};
    int envfd = -1;
    char **env = NULL;
    struct agt_out *out = NULL, *err = NULL;
    struct agt_pipe *pipe = NULL;
    struct agt_spawn_req o;
    struct agt_cg_prep prep = {0};
    struct agt_exec_plan plan = {0};
    struct agt_view view;
    char *plan_join[AGT_CG_NCTL + 3]; /* procs, and the NULL */
    uv_stdio_container_t io[4];
    bool tty = false;
    int rc, nprocs = 0, pid = 0, v2 = 0, k;

    if (i->notes)
        i->notes->spawn_err[0] = '\0';
    i->oom = false;
    rc = -ENOMEM;
    if (!script || !i->dir)
        goto out;
    /* A writable view (view.c) is cwd and HOME, where the node has them. */
    views[0][0] = views[1][0] = '\0';
    snprintf(home, sizeof home, "%s", i->dir);
    if (agt_views(i->agt)) {
        const char *data = agt_cfg(i->agt)->data_dir;

        if (strfmt(views[0], PATH_MAX, "%s/views", data) < 0 ||
            strfmt(views[1], PATH_MAX, "%s/releases", data) < 0 ||
            strfmt(home, sizeof home, "%s/views/app", data) < 0) {
            rc = -ENAMETOOLONG;
            goto out;
        }
    }
    rc = agt_env_build(i->spec, home, &env);
    if (rc < 0)
        goto out;
    if ((rc = prepare_cgroup(i, &prep, procs, sizeof procs / sizeof procs[0], &nprocs)) < 0)
        goto out;
    rc = -ENOMEM;
    memset(&o, 0, sizeof o);
    if (i->spec->attach) {
        pipe = agt_pipe_new(i->agt, i->spec, &rc);
        if (!pipe)
            goto out;
        agt_pipe_stdio(pipe, io);
        tty = agt_pipe_tty(pipe); /* the helper makes the terminal the controlling one */
    } else {
        out = agt_out_new(i->agt, i->spec, false);
        err = agt_out_new(i->agt, i->spec, true);
        if (!out || !err)
            goto out;
        io[0].flags = UV_IGNORE; /* /dev/null (spawn.c) */
        io[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
        io[1].data.stream = (uv_stream_t *)agt_out_pipe(out);
        io[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
        io[2].data.stream = (uv_stream_t *)agt_out_pipe(err);
    }
    /* With a tty: an interactive shell, as typed. */
    if ((rc = exec_plan(i, tty ? i->spec->command : script, env, views, &view, &plan)) < 0)
        goto out;
    plan.tty = tty;
    helper_args(&plan, exe, procs, nprocs, strs, args_join);
    /* With a v2 hierarchy (its cgroup.procs first), the child starts in its
     * v2 cgroup (spawn.c: clone3 CLONE_INTO_CGROUP) and the helper joins
     * only the v1 ones, if any; args_join is for a kernel that refuses. */
    if (nprocs > 0 && agt_cgroups(i->agt)->v2[0] &&
        strncmp(procs[0], agt_cgroups(i->agt)->v2, strlen(agt_cgroups(i->agt)->v2)) == 0) {
        v2 = 1;
        snprintf(cgdir, sizeof cgdir, "%.*s", (int)(strlen(procs[0]) - strlen("/cgroup.procs")),
                 procs[0]);
        helper_args(&plan, exe, procs + 1, nprocs - 1, strs, args);
        o.cgroup = cgdir;
        o.argv_join = args_join;
    } else
        memcpy(args, args_join, sizeof args);
    o.file = agt_helper(i->agt); /* drover-exec, or this binary (agent.c) */
    o.argv = args;
    /* The helper starts as the agent's user (root): the app's environment
     * must not reach its dynamic loader (LD_PRELOAD, LD_LIBRARY_PATH ...),
     * so it comes on descriptor 3 and only /bin/sh gets it, after the drop.
     * Never NULL: that would pass the agent's own environment. */
    if ((rc = env_memfd(env, &envfd)) < 0)
        goto out;
    io[3].flags = UV_INHERIT_FD;
    io[3].data.fd = envfd;
    o.envp = no_env;
    o.cwd = i->dir;
    /* Its own session and process group (spawn.c). The helper runs as the
     * agent's user (root: it joins the cgroups, then drops to the app's). */
    o.nstdio = 4;
    o.stdio = io;
    o.prep = prep.cg ? &prep : NULL;
    /* The helper's steps in the clone child, one exec less (spawn.c): not
     * with a terminal, nor for a view that needs a user namespace. The
     * child joins what the helper of args would: all but the v2 cgroup. */
    if (!pipe && (geteuid() == 0 || !plan.view)) {
        for (k = v2; k < nprocs; k++)
            plan_join[k - v2] = procs[k];
        plan_join[nprocs - v2] = NULL;
        plan.join = plan_join;
        o.plan = &plan;
    }
    /* A one-off's stdio is set up around its pid: spawned here. The rest
     * go to the spawner thread, and the loop goes on (spawned()). */
    rc = pipe ? -ENOSYS : agt_spawn_async(loop, &o, spawned, i, &i->job);
    if (rc == -ENOSYS) {
        rc = agt_spawn_sync(&o, &pid);
        if (cgroup_made(i, o.prep) < 0)
            rc = prep.rc;
    } else if (rc == 0) {
        agt_metrics_spawned(agt_metrics(i->agt), rc); /* drover_agent_spawns_total */
        if (agt_out_start(out) < 0 || agt_out_start(err) < 0)
            log_warn("output_failed", "app=%s inst=%s", i->spec->app, i->spec->name);
        out = err = NULL;
        goto out;
    }
    agt_metrics_spawned(agt_metrics(i->agt), rc);
    if (rc < 0) {
        if (pipe)
            agt_pipe_spawned(pipe, 0, rc); /* reports exit 127 */
        pipe = NULL;
        goto out;
    }
    if (pipe) {
        agt_pipe_spawned(pipe, pid, 0);
        i->pipe = pipe;
        pipe = NULL;
    } else if (agt_out_start(out) < 0 || agt_out_start(err) < 0) {
        /* Output is best effort: a pipe that cannot be read is only logged. */
        log_warn("output_failed", "app=%s inst=%s", i->spec->app, i->spec->name);
    }
    out = err = NULL;
    if ((rc = started(i, pid)) < 0)
        goto out;
out:
    if (rc < 0)
        log_error("spawn_failed", "app=%s inst=%s err=%s", i->spec->app, i->spec->name,
                  log_q(uv_strerror(rc)));
    if (envfd >= 0)
        close(envfd); /* the helper has its copy */
    agt_env_free(env);
    free(script);
    if (out)
        agt_out_close(out);
    if (err)
        agt_out_close(err);
    if (pipe) /* made, never spawned */
        agt_pipe_spawned(pipe, 0, rc);
    return rc;
}

/* "exit code 7", "signal 9", "did not start". */
static void
exit_text(const struct agt_inst *i, char *out, size_t outsz)
{
    if (i->sup.exit_signal > 0)
        snprintf(out, outsz, "signal %d", (int)i->sup.exit_signal);
    else if (i->sup.exit_code >= 0)
        snprintf(out, outsz, "exit code %d", (int)i->sup.exit_code);
    else
        snprintf(out, outsz, "did not start");
}

/* The boot timeout fired: remember what the health check last saw, and
 * whether the process answered (wrongly) or not at all. */
static void
boot_timeout_seen(struct agt_inst *i)
{
    bool answered = false;
    const char *why = i->health ? agt_health_why(i->health, &answered) : "";

    if (i->sup.state != AGT_STARTING)
        return;
    snprintf(notes(i)->boot_why, sizeof i->notes->boot_why, "%s", why);
    i->boot_timed_out = true; /* said in the reason of the crash it causes */
    i->cause = answered ? DROVER__INSTANCE_CAUSE__CAUSE_HEALTH_FAILED
                        : DROVER__INSTANCE_CAUSE__CAUSE_BOOT_TIMEOUT;
}

/* Why beyond the exit status: the memory limit, or a spawn refused. */
static void
cause_text(const struct agt_inst *i, char *out, size_t outsz)
{
    char mem[32];

    if (i->oom) {
        bytes_text(i->spec->limits.memory, mem, sizeof mem);
        snprintf(out, outsz, "memory limit %s exceeded (oom kill)", mem);
    } else if (i->notes && i->notes->spawn_err[0])
        snprintf(out, outsz, "%s", i->notes->spawn_err);
}

/* Carry out a transition's actions, except SPAWN (agt_inst_event spawns,
 * then feeds the outcome back as the next event). */
static void
act(struct agt_inst *i, unsigned acts)
{
    if (acts & AGT_A_KILL) {
        health_stop(i);
        signal_group(i, SIGKILL);
    }
    if (acts & AGT_A_TERM)
        signal_group(i, SIGTERM);
    if ((acts & AGT_A_DELAY) && i->spec->shutdown_delay_ms > 0) /* 0: agt_inst_event */
        arm(i, delay_on_grid(i, i->spec->shutdown_delay_ms), AGT_EV_DELAY_EXPIRED);
    if (acts & AGT_A_GRACE)
        arm(i, i->spec->grace_ms, AGT_EV_GRACE_EXPIRED);
    if (acts & AGT_A_BOOT)
        arm(i, i->spec->boot_timeout_ms, AGT_EV_BOOT_TIMEOUT);
    if (acts & AGT_A_HEALTH) {
        health_stop(i);
        i->health = agt_health_start(agt_health_watch(i->agt), i->spec, agt_cfg(i->agt)->advertise,
                                     on_healthy, i);
        if (!i->health)
            log_error("health_failed", "app=%s inst=%s", i->spec->app, i->spec->name);
    }
    if (acts & AGT_A_WATCH)
        watch_group(i);
    if (acts & AGT_A_BACKOFF) {
        /* The exit itself is in exit_code / exit_signal; a cause beyond it
         * (the memory limit, a spawn refused) leads the reason. */
        char next[48], cause[256] = "";
        struct inst_notes *n = notes(i);

        if (i->sup.backoff_ms == 0)
            snprintf(next, sizeof next, "restarting");
        else
            snprintf(next, sizeof next, "restart %u in %.1f s", (unsigned)i->sup.restarts,
                     (double)i->sup.backoff_ms / 1000.0);
        cause_text(i, cause, sizeof cause);
        if (cause[0])
            snprintf(n->reason, sizeof n->reason, "%s", cause);
        else if (i->boot_timed_out)
            snprintf(n->reason, sizeof n->reason, "not healthy within %.1f s%s%.50s (killed)",
                     (double)i->spec->boot_timeout_ms / 1000.0, n->boot_why[0] ? ": " : "",
                     n->boot_why);
        else if (i->cause == DROVER__INSTANCE_CAUSE__CAUSE_SPAWN_FAILED)
            snprintf(n->reason, sizeof n->reason, "could not start");
        else
            n->reason[0] = '\0';
        /* The plan holds only while it waits: restarted, it is cut off. */
        i->reason_crash = strlen(n->reason);
        snprintf(n->reason + i->reason_crash, sizeof n->reason - i->reason_crash, "%s%.40s",
                 i->reason_crash > 0 ? "; " : "", next);
        i->boot_timed_out = false;
        arm(i, i->sup.backoff_ms, AGT_EV_BACKOFF_EXPIRED);
        log_info("restart_scheduled", "app=%s inst=%s restarts=%u in_ms=%" PRIu64, i->spec->app,
                 i->spec->name, (unsigned)i->sup.restarts, i->sup.backoff_ms);
    }
}

void
agt_inst_event(struct agt_inst *i, enum agt_event ev)
{
    for (;;) {
        enum agt_state from = i->sup.state;
        bool ignored;
        unsigned acts;

        agt_sup_next(from, ev, &acts, &ignored);
        if (!ignored && (acts & AGT_A_CRASH))
            i->cause = ev == AGT_EV_SPAWN_FAILED ? DROVER__INSTANCE_CAUSE__CAUSE_SPAWN_FAILED
                       : i->boot_timed_out       ? i->cause /* set by boot_timeout_seen */
                       : i->oom                  ? DROVER__INSTANCE_CAUSE__CAUSE_MEMORY_LIMIT
                                                 : DROVER__INSTANCE_CAUSE__CAUSE_CRASHED;
        if (ignored) {
            log_debug("event_ignored", "app=%s inst=%s state=%s event=%s", i->spec->app,
                      i->spec->name, agt_state_name(from), agt_event_name(ev));
            return;
        }
        if (ev == AGT_EV_BOOT_TIMEOUT)
            boot_timeout_seen(i); /* before act() stops the check */
        /* The table runs on the monotonic clock (sup.since_ms, the crash
         * count's reset after a long enough run); reports say wall time. */
        acts = agt_sup_apply(&i->sup, ev, mono_ms(), rnd32());
        if (i->sup.state != from) {
            i->since_wall = now_ms();
            log_info("instance_state", "app=%s inst=%s id=%" PRIu64 " from=%s to=%s on=%s",
                     i->spec->app, i->spec->name, i->spec->id, agt_state_name(from),
                     agt_state_name(i->sup.state), agt_event_name(ev));
            /* Each waiting state owns the timer and the health check anew. */
            uv_timer_stop(&i->timer);
            uv_timer_stop(&i->watch);
            health_stop(i);
        }
        if (from == AGT_CRASHED && i->sup.state == AGT_STARTING && i->notes &&
            i->reason_crash < sizeof i->notes->reason)
            i->notes->reason[i->reason_crash] = '\0'; /* "restart 1 in 2.0 s" is past */
        act(i, acts);
        if (i->sup.state == AGT_UP) {
            free(i->notes); /* up: no reason left, and its spawn went well */
            i->notes = NULL;
            i->cause = DROVER__INSTANCE_CAUSE__CAUSE_NONE;
        }
        if (ev == AGT_EV_DONE && i->sup.state == AGT_STOPPED) {
            char last[48], cause[256] = "";

            exit_text(i, last, sizeof last);
            cause_text(i, cause, sizeof cause);
            if (cause[0])
                snprintf(notes(i)->reason, sizeof i->notes->reason, "%s", cause);
            else
                snprintf(notes(i)->reason, sizeof i->notes->reason, "exited: %s", last);
            i->cause = DROVER__INSTANCE_CAUSE__CAUSE_EXITED;
        }
        /* Outside a drain the leader's exit got the group killed: it is gone
         * or going. A drain keeps the group until GROUP_GONE. */
        if (i->sup.state == AGT_STOPPED || (ev == AGT_EV_EXITED && i->sup.state != AGT_DRAINING))
            forget_group(i);
        agt_inst_changed(i->agt, i);
        if ((acts & AGT_A_DELAY) && i->spec->shutdown_delay_ms == 0) {
            ev = AGT_EV_DELAY_EXPIRED; /* no delay: SIGTERM now */
            continue;
        }
        if (!(acts & AGT_A_SPAWN))
            return;
        if (spawn(i) == 0)
            ev = AGT_EV_SPAWNED;
        else if (i->spec->oneoff) {
            i->sup.exit_code = 127;
            ev = AGT_EV_DONE;
        } else
            ev = AGT_EV_SPAWN_FAILED;
    }
}

struct agt_inst *
agt_inst_new(struct agt *a, struct agt_spec *spec)
{
    struct agt_inst *i = calloc(1, sizeof *i);

    if (!i)
        return NULL;
    i->agt = a;
    i->spec = spec;
    agt_sup_init(&i->sup, mono_ms());
    i->since_wall = now_ms();
    i->view_ns = -1;
    uv_timer_init(agt_loop(a), &i->timer);
    i->timer.data = i;
    uv_timer_init(agt_loop(a), &i->watch);
    i->watch.data = i;
    return i;
}

struct agt_inst *
agt_inst_orphan(struct agt *a, struct agt_spec *spec, int pgid)
{
    struct agt_inst *i = agt_inst_new(a, spec);

    if (!i)
        return NULL;
    i->orphan = true;
    i->pgid = pgid;
    /* Its cgroup, if it has one, holds what left the group too. */
    i->cg = agt_cgroups(a) && agt_cg_populated(agt_cgroups(a), spec->id) > 0;
    i->sup.state = AGT_DRAINING;
    log_info("orphan_found", "app=%s inst=%s id=%" PRIu64 " pgid=%d grace_ms=%u", spec->app,
             spec->name, spec->id, pgid, (unsigned)spec->grace_ms);
    signal_group(i, SIGTERM);
    arm(i, spec->grace_ms, AGT_EV_GRACE_EXPIRED);
    watch_group(i);
    return i;
}

static void
on_inst_close(uv_handle_t *h)
{
    struct agt_inst *i = h->data;

    if (--i->closing > 0)
        return;
    agt_spec_free(i->spec);
    free(i->notes);
    free(i->dir);
    free(i);
}

void
agt_inst_free(struct agt_inst *i)
{
    if (i->pid) {
        /* A broken invariant, but never leave a running group unowned. */
        log_error("inst_free_running", "app=%s inst=%s pid=%d", i->spec->app, i->spec->name,
                  i->pgid);
        signal_group(i, SIGKILL);
        agt_reaper_unwatch(i->pid); /* reaped as an orphan */
        i->pid = 0;
    }
    agt_viewhold_give(i->view_ns);
    i->view_ns = -1;
    sweep_forget(i);
    if (i->job) /* spawn.c kills what it started */
        agt_spawn_forget(i->job);
    i->job = NULL;
    if (i->pipe != NULL) /* it exits on its own once the process is gone */
        agt_pipe_exited(i->pipe, -1, SIGKILL);
    i->pipe = NULL;
    health_stop(i);
    remove_cgroup(i);
    i->closing = 2;
    uv_close((uv_handle_t *)&i->timer, on_inst_close);
    uv_close((uv_handle_t *)&i->watch, on_inst_close);
}

void
agt_inst_release_failed(struct agt_inst *i, Drover__InstanceCause cause, const char *why)
{
    i->cause = cause;
    snprintf(notes(i)->reason, sizeof i->notes->reason, "%s", why);
    agt_inst_event(i, AGT_EV_SLUG_FAILED);
}

void
agt_inst_release_ready(struct agt_inst *i, const char *dir)
{
    char *d = strdup(dir);

    if (!d) { /* cannot happen at this size; the start is then refused */
        agt_inst_release_failed(i, DROVER__INSTANCE_CAUSE__CAUSE_SPAWN_FAILED, "out of memory");
        return;
    }
    free(i->dir);
    i->dir = d;
    i->ready = true; /* agent.c's pump starts it: agt_inst_start_ready() */
}

bool
agt_inst_start_ready(struct agt_inst *i)
{
    if (!i->ready)
        return false;
    i->ready = false;
    agt_inst_event(i, AGT_EV_SLUG_READY); /* ignored if it was stopped meanwhile */
    return true;
}

const struct agt_spec *
agt_inst_spec(const struct agt_inst *i)
{
    return i->spec;
}

struct agt_spec *
agt_inst_spec_ref(struct agt_inst *i)
{
    return agt_spec_ref(i->spec);
}

const struct agt_sup *
agt_inst_sup(const struct agt_inst *i)
{
    return &i->sup;
}

bool
agt_inst_running(const struct agt_inst *i)
{
    return i->pid != 0 || i->job != NULL;
}

void
agt_inst_report(const struct agt_inst *i, Drover__InstanceReport *r)
{
    r->id = i->spec->id;
    r->app = (char *)i->spec->app; /* borrowed for the time of one pack */
    r->name = (char *)i->spec->name;
    r->release = i->spec->release;
    r->state = agt_state_wire(i->sup.state);
    r->pid = i->pid || i->orphan ? i->pgid : 0;
    r->port = i->spec->port;
    r->restarts = i->sup.restarts;
    r->exit_code = i->sup.exit_code;
    r->exit_signal = i->sup.exit_signal;
    r->since_ms = i->since_wall;
    r->reason = (char *)reason_of(i); /* borrowed, as above */
    r->cause = i->cause;
    r->memory_bytes = i->mem;
    r->cpu_permille = i->cpu_permille;
}

bool
agt_inst_sample(struct agt_inst *i, uint64_t now_ns)
{
    const struct agt_cgroups *cg = agt_cgroups(i->agt);
    uint64_t mem = 0, cpu = 0, old_mem = i->mem;
    uint32_t old_cpu = i->cpu_permille;

    if (!cg || !i->cg || (!i->pid && !i->orphan) || agt_cg_usage(cg, i->spec->id, &mem, &cpu) < 0) {
        i->mem = 0;
        i->cpu_permille = 0;
        i->sampled_ns = 0;
        return old_mem != 0 || old_cpu != 0;
    }
    i->mem = mem;
    if (i->sampled_ns && now_ns > i->sampled_ns && cpu >= i->cpu_usec) {
        uint64_t wall_us = (now_ns - i->sampled_ns) / 1000;

        i->cpu_permille = wall_us ? (uint32_t)((cpu - i->cpu_usec) * 1000 / wall_us) : 0;
    }
    i->cpu_usec = cpu;
    i->sampled_ns = now_ns;
    return i->mem != old_mem || i->cpu_permille != old_cpu;
}

const char *
agt_inst_reason(const struct agt_inst *i)
{
    return reason_of(i);
}

uint64_t
agt_inst_stop_seq(const struct agt_inst *i)
{
    return i->stop_seq;
}

void
agt_inst_set_stop_seq(struct agt_inst *i, uint64_t seq)
{
    i->stop_seq = seq;
}

uint64_t
agt_inst_cpu_usec(const struct agt_inst *i)
{
    return i->cpu_usec;
}
