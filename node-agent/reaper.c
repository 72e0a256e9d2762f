/* SPDX-License-Identifier: MIT */
/*
 * reaper.c: the agent is a child subreaper (PR_SET_CHILD_SUBREAPER), so a
 * process orphaned inside an instance (a daemonising grandchild, a worker
 * whose parent died) is reparented to the agent, not to the machine's init.
 * Its exit is then ours to reap, promptly: a drain ends when the group is
 * really gone, not when some init gets round to reaping its zombies.
 *
 * libuv reaps the processes it spawned itself, each by its pid
 * (waitpid(pid, WNOHANG) in its SIGCHLD handler). Reaping anything else with
 * waitpid(-1) would steal their exit statuses. So the processes libuv spawned
 * are tracked here (agt_reaper_track from the moment uv_spawn returns, until
 * their exit callback), and on every SIGCHLD the agent's children are listed
 * from /proc/self/task/TID/children; each one not tracked is an adopted
 * orphan and is reaped by its own pid with WNOHANG (still running: nothing
 * happens). The set is a sorted array: lookups are a binary search.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "agt.h"
#include "log.h"

static uv_signal_t sigchld;
static bool started;
static int *pids; /* sorted; loop thread only */
static size_t npids, cap;

static size_t
find_pos(int pid)
{
    size_t lo = 0, hi = npids;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (pids[mid] < pid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool
tracked(int pid)
{
    size_t pos = find_pos(pid);

    return pos < npids && pids[pos] == pid;
}

void
agt_reaper_track(int pid)
{
    size_t pos = find_pos(pid);

    if (pos < npids && pids[pos] == pid)
        return;
    if (npids == cap) {
        size_t ncap = cap ? cap * 2 : 64;
        int *p = realloc(pids, ncap * sizeof *p);

        if (!p) {
            /* Untracked, it might be reaped here first: libuv would then
             * never see its exit. Refuse to reap anything instead. */
            log_error("reaper_oom", "pid=%d", pid);
            agt_reaper_stop();
            return;
        }
        pids = p;
        cap = ncap;
    }
    memmove(&pids[pos + 1], &pids[pos], (npids - pos) * sizeof *pids);
    pids[pos] = pid;
    npids++;
}

void
agt_reaper_untrack(int pid)
{
    size_t pos = find_pos(pid);

    if (pos < npids && pids[pos] == pid) {
        memmove(&pids[pos], &pids[pos + 1], (npids - pos - 1) * sizeof *pids);
        npids--;
    }
}

/* Reap every exited child listed in one children file that libuv does not
 * own. Returns how many were reaped. */
static int
reap_listed(const char *path)
{
    FILE *f = fopen(path, "re");
    int pid, status, n = 0;

    if (!f)
        return 0;
    while (fscanf(f, "%d", &pid) == 1) {
        if (pid <= 1 || tracked(pid))
            continue;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            n++;
            log_debug("reaped", "pid=%d code=%d signal=%d", pid,
                      WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                      WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        }
    }
    fclose(f);
    return n;
}

void
agt_reaper_sweep(void)
{
    char path[64];
    struct dirent *de;
    DIR *d;

    if (!started)
        return;
    d = opendir("/proc/self/task");
    if (!d)
        return;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/self/task/%.20s/children", de->d_name);
        reap_listed(path);
    }
    closedir(d);
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

    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
        /* Orphans then go to init, as before: worth a warning, no more. */
        log_warn("subreaper_failed", "err=%s", log_q(strerror(errno)));
        return 0;
    }
    if ((rc = uv_signal_init(loop, &sigchld)) < 0)
        return rc;
    if ((rc = uv_signal_start(&sigchld, on_sigchld, SIGCHLD)) < 0) {
        uv_close((uv_handle_t *)&sigchld, NULL);
        return rc;
    }
    started = true;
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
    free(pids);
    pids = NULL;
    npids = cap = 0;
}
