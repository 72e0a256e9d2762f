/* SPDX-License-Identifier: MIT */
/*
 * reaper.c: every child of the agent is reaped here, in O(1) each.
 *
 * The agent spawns its instances itself (spawn.c: posix_spawn, never
 * libuv's uv_spawn), so no one else waits for its children: on SIGCHLD one
 * waitpid(-1, WNOHANG) loop collects every exit there is, and a hash from
 * pid to the watcher (agt_reaper_watch) hands each to its instance. No scan
 * of every child per signal: 1,000 exits cost 1,000 waitpid calls and
 * 1,000 lookups, whatever else is running.
 *
 * The agent is also a child subreaper (PR_SET_CHILD_SUBREAPER), so a
 * process orphaned inside an instance (a daemonising grandchild, a worker
 * whose parent died) is reparented to the agent, not to the machine's init,
 * and the same loop reaps it promptly: a drain ends when the group is
 * really gone, not when some init gets round to reaping its zombies.
 *
 * Races: a child may exit before its spawner has called agt_reaper_watch.
 * A synchronous spawn cannot lose its exit: SIGCHLD reaches us through
 * uv_signal_t, so the waitpid loop runs on the loop thread, never between
 * the spawn returning and the watch being set (both within one callback).
 * A spawn on the spawner thread (spawn.c) reaches the loop later, and its
 * child may be reaped first: so the last UNCLAIMED exits of pids nobody
 * watched are kept, and the spawner's callback claims its pid's
 * (agt_reaper_claim). Adopted orphans pass through the same ring; 256 of
 * them would have to end within the few milliseconds a spawn takes to be
 * reported before an exit could be pushed out. Code that
 * forks and waits for its own child synchronously on the loop thread
 * (agent.c's view probe) is safe for the same reason; a thread must not.
 *
 * The hash is open addressing with linear probing and backward-shift
 * deletion (no tombstones), kept at most half full.
 *
 * This state stays file-level, not in struct agt (the agent's context):
 * SIGCHLD, waitpid(-1) and the subreaper bit belong to the process, so there
 * is one reaper per process whatever holds it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "agt.h"
#include "log.h"

struct slot {
    int pid; /* 0: empty */
    agt_exit_cb cb;
    void *arg;
};

static uv_signal_t sigchld;
static bool started;
#define UNCLAIMED 256

static struct slot *tab; /* loop thread only */
static struct {
    int pid, code, sig;
} unclaimed[UNCLAIMED]; /* a ring; pid 0: empty */
static size_t unclaimed_next;
static size_t nused, cap; /* cap: a power of two, or 0 */

static size_t
home_of(int pid)
{
    uint32_t h = (uint32_t)pid * 2654435761u; /* Knuth's multiplicative hash */

    return (size_t)h & (cap - 1);
}

static struct slot *
find(int pid)
{
    if (cap == 0)
        return NULL;
    for (size_t k = home_of(pid);; k = (k + 1) & (cap - 1)) {
        if (tab[k].pid == pid)
            return &tab[k];
        if (tab[k].pid == 0)
            return NULL;
    }
}

static void
put(struct slot s)
{
    size_t k = home_of(s.pid);

    while (tab[k].pid != 0 && tab[k].pid != s.pid)
        k = (k + 1) & (cap - 1);
    if (tab[k].pid == 0)
        nused++;
    tab[k] = s;
}

static int
grow(void)
{
    size_t old = cap, ncap = cap ? cap * 2 : 64;
    struct slot *otab = tab, *t = calloc(ncap, sizeof *t);

    if (!t)
        return -ENOMEM;
    tab = t;
    cap = ncap;
    nused = 0;
    for (size_t k = 0; k < old; k++)
        if (otab[k].pid != 0)
            put(otab[k]);
    free(otab);
    return 0;
}

int
agt_reaper_watch(int pid, agt_exit_cb cb, void *arg)
{
    struct slot s = {pid, cb, arg};

    if (pid <= 0)
        return -EINVAL;
    if ((nused + 1) * 2 > cap && grow() < 0)
        return -ENOMEM;
    put(s);
    return 0;
}

void
agt_reaper_unwatch(int pid)
{
    struct slot *s = find(pid);
    size_t hole, k;

    if (!s)
        return;
    /* Backward shift: move up every later member of the run that may sit
     * in the hole, so lookups never stop early at it. */
    hole = (size_t)(s - tab);
    tab[hole].pid = 0;
    nused--;
    for (k = (hole + 1) & (cap - 1); tab[k].pid != 0; k = (k + 1) & (cap - 1)) {
        size_t h = home_of(tab[k].pid);

        /* Stays where it is when its home lies cyclically in (hole, k]. */
        if (hole <= k ? (hole < h && h <= k) : (hole < h || h <= k))
            continue;
        tab[hole] = tab[k];
        tab[k].pid = 0;
        hole = k;
    }
}

int
agt_reaper_claim(int pid, int *code, int *sig)
{
    for (size_t k = 0; k < UNCLAIMED; k++)
        if (unclaimed[k].pid == pid && pid > 0) {
            *code = unclaimed[k].code;
            *sig = unclaimed[k].sig;
            unclaimed[k].pid = 0;
            return 1;
        }
    return 0;
}

size_t
agt_reaper_watched(void)
{
    return nused;
}

int
agt_reaper_sweep(void)
{
    int pid, status, n = 0;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        struct slot *s = find(pid);
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;

        n++;
        if (!s) { /* an adopted orphan, or a spawn not yet reported */
            log_debug("reaped", "pid=%d code=%d signal=%d", pid, code, sig);
            unclaimed[unclaimed_next].pid = pid;
            unclaimed[unclaimed_next].code = sig ? 0 : code;
            unclaimed[unclaimed_next].sig = sig;
            unclaimed_next = (unclaimed_next + 1) % UNCLAIMED;
            continue;
        }
        {
            agt_exit_cb cb = s->cb;
            void *arg = s->arg;

            agt_reaper_unwatch(pid); /* before the callback: it may spawn */
            cb(arg, pid, sig ? 0 : code, sig);
        }
    }
    return n;
}

static void
on_sigchld(uv_signal_t *s, int signum)
{
    agt_reaper_sweep();
}

int
agt_reaper_start(uv_loop_t *loop)
{
    int rc;

    /* Orphans then go to init, as before: worth a warning, no more. Our
     * own children are still ours to reap. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
        log_warn("subreaper_failed", "err=%s", log_q(strerror(errno)));
    if ((rc = uv_signal_init(loop, &sigchld)) < 0)
        return rc;
    if ((rc = uv_signal_start(&sigchld, on_sigchld, SIGCHLD)) < 0) {
        uv_close((uv_handle_t *)&sigchld, NULL);
        return rc;
    }
    started = true;
    agt_reaper_sweep(); /* what exited before the handler was there */
    return 0;
}

void
agt_reaper_stop(void)
{
    if (!started)
        return;
    started = false;
    uv_close((uv_handle_t *)&sigchld, NULL);
}

void
agt_reaper_free(void)
{
    free(tab);
    tab = NULL;
    nused = cap = 0;
}
