/* SPDX-License-Identifier: MIT */
/*
 * spawn.c: start a process without forking the agent.
 *
 * libuv's uv_spawn forks: the kernel copies the agent's page tables (and
 * marks every private page copy-on-write) for each child, only to throw
 * them away at the exec. Measured on the benchmark's agent, that was about
 * 30 % of its time, and it grows with the agent's memory. glibc's
 * posix_spawn runs the child with clone(CLONE_VM | CLONE_VFORK) on a stack
 * of its own: nothing is copied, the cost does not depend on the agent's
 * size, and the parent waits only until the exec.
 *
 * Everything the child needs is said as posix_spawn file actions and
 * attributes: its own session (POSIX_SPAWN_SETSID, so its pid is its
 * process group id), every signal at its default and none blocked (the
 * agent's SIG_IGN must not leak: an ignored SIGPIPE survives an exec), the
 * cwd, descriptors 0..n-1 from the stdio table and nothing else (closefrom:
 * a descriptor the agent forgot to mark close-on-exec still never leaks
 * into an app). What posix_spawn cannot do (cgroups, rlimits, a terminal,
 * a mount namespace, the privilege drop) is the helper's job (exec.c).
 *
 * The stdio table reuses libuv's uv_stdio_container_t so that output.c and
 * pipe.c hand over their streams as they did to uv_spawn: UV_IGNORE is
 * /dev/null, UV_INHERIT_FD a descriptor of ours, UV_CREATE_PIPE a socket
 * pair whose other end is opened on the (initialised) uv_pipe_t after the
 * spawn, as libuv does.
 *
 * The exit is reaped by reaper.c; the caller registers its watcher right
 * after this returns, within the same loop callback.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agt.h"

#define MAX_STDIO 8

static void
close_pairs(int pair[][2], int n)
{
    for (int k = 0; k < n; k++)
        for (int e = 0; e < 2; e++)
            if (pair[k][e] >= 0) {
                close(pair[k][e]);
                pair[k][e] = -1;
            }
}

int
agt_spawn(const struct agt_spawn_req *r, int *pid_out)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, all;
    int pair[MAX_STDIO][2], k, rc, n = r->nstdio;
    pid_t pid = -1;

    if (n < 0 || n > MAX_STDIO)
        return -EINVAL;
    for (k = 0; k < MAX_STDIO; k++)
        pair[k][0] = pair[k][1] = -1;
    for (k = 0; k < n; k++)
        if ((r->stdio[k].flags & UV_CREATE_PIPE) &&
            socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair[k]) < 0) {
            rc = -errno;
            close_pairs(pair, n);
            return rc;
        }
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    rc = 0;
    /* Sources first moved to their places: a source below n would be
     * overwritten by an earlier dup2 (ours are all fresh, above 2). */
    for (k = 0; k < n && rc == 0; k++) {
        const uv_stdio_container_t *c = &r->stdio[k];

        if (c->flags & UV_CREATE_PIPE)
            rc = posix_spawn_file_actions_adddup2(&fa, pair[k][1], k);
        else if (c->flags & UV_INHERIT_FD)
            rc = posix_spawn_file_actions_adddup2(&fa, c->data.fd, k);
        else
            rc = posix_spawn_file_actions_addopen(&fa, k, "/dev/null", O_RDWR, 0);
    }
    if (rc == 0)
        rc = posix_spawn_file_actions_addclosefrom_np(&fa, n);
    if (rc == 0 && r->cwd)
        rc = posix_spawn_file_actions_addchdir_np(&fa, r->cwd);
    sigemptyset(&none);
    sigfillset(&all);
    if (rc == 0)
        rc = posix_spawnattr_setsigmask(&at, &none);
    if (rc == 0)
        rc = posix_spawnattr_setsigdefault(&at, &all);
    if (rc == 0)
        rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                               POSIX_SPAWN_SETSIGDEF);
    if (rc == 0)
        rc = posix_spawn(&pid, r->file, &fa, &at, r->argv, r->envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    for (k = 0; k < n; k++) /* the child's ends: it has its copies */
        if (pair[k][1] >= 0) {
            close(pair[k][1]);
            pair[k][1] = -1;
        }
    if (rc != 0) {
        close_pairs(pair, n);
        return -rc;
    }
    for (k = 0; k < n; k++) {
        if (pair[k][0] < 0)
            continue;
        /* Owned by the stream from here, closed with it. */
        if (uv_pipe_open((uv_pipe_t *)r->stdio[k].data.stream, pair[k][0]) < 0)
            close(pair[k][0]);
        pair[k][0] = -1;
    }
    *pid_out = (int)pid;
    return 0;
}
