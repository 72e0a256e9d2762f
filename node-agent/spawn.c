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
 * Descriptors: a clone copies the caller's whole descriptor table, and the
 * exec (or closefrom) then closes every copy again. An agent with 1,000
 * instances holds 2,000 or more descriptors (their output pipes): profiled,
 * copying and closing them was most of each spawn's kernel time, so a spawn
 * grew slower with every instance running (O(n) each, O(n^2) to start n).
 * So the spawns run on a thread of their own that unshared its descriptor
 * table at birth (unshare(CLONE_FILES)) and closed all but 0-2 and its end
 * of a socket pair: the loop thread hands it each spawn's descriptors with
 * SCM_RIGHTS, and the request itself by pointer (memory is shared); the
 * loop waits for the answer, as it waited for the vfork'd child before.
 * Its children are the agent's children all the same (waitpid sees every
 * thread's), and it blocks every signal (libuv's handler writes to a
 * descriptor that only the loop thread's table has). Should the thread not
 * start, spawns run on the loop thread as they are.
 *
 * The exit is reaped by reaper.c; the caller registers its watcher right
 * after this returns, within the same loop callback.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agt.h"

#define MAX_STDIO 8

/* One spawn handed to the thread: the request, the descriptors it must see
 * at 0..n-1 (-1: /dev/null), and the outcome. */
struct job {
    const struct agt_spawn_req *req;
    int n;
    int fds[MAX_STDIO]; /* in the table of whoever runs run_spawn */
    int pid, err;
};

static int
run_spawn(struct job *j)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, all;
    pid_t pid = -1;
    int k, rc = 0;

    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    /* Sources are fresh descriptors above 2 (received or made just now),
     * so no dup2 overwrites a later one's source. */
    for (k = 0; k < j->n && rc == 0; k++)
        rc = j->fds[k] >= 0 ? posix_spawn_file_actions_adddup2(&fa, j->fds[k], k)
                            : posix_spawn_file_actions_addopen(&fa, k, "/dev/null", O_RDWR, 0);
    if (rc == 0)
        rc = posix_spawn_file_actions_addclosefrom_np(&fa, j->n);
    if (rc == 0 && j->req->cwd)
        rc = posix_spawn_file_actions_addchdir_np(&fa, j->req->cwd);
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
        rc = posix_spawn(&pid, j->req->file, &fa, &at, j->req->argv, j->req->envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    j->pid = (int)pid;
    j->err = rc;
    return rc;
}

static int spawner = -1; /* the loop thread's end; -2: the thread failed */

static void *
spawner_main(void *arg)
{
    int sock = (int)(intptr_t)arg;
    sigset_t all;

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    for (;;) {
        struct job *j = NULL;
        union {
            struct cmsghdr h;
            char buf[CMSG_SPACE(sizeof(int) * MAX_STDIO)];
        } u;
        struct iovec iov = {&j, sizeof j};
        struct msghdr m = {0};
        struct cmsghdr *c;
        int got[MAX_STDIO], ngot = 0, k, slot;
        ssize_t r;
        char one = 1;

        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = u.buf;
        m.msg_controllen = sizeof u.buf;
        r = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) /* the agent is going */
            return NULL;
        for (c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                ngot = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
                memcpy(got, CMSG_DATA(c), (size_t)ngot * sizeof(int));
            }
        if (r != sizeof j || !j)
            return NULL;
        /* The descriptors came in order, one for each slot that has one. */
        for (k = 0, slot = 0; k < j->n; k++)
            if (j->fds[k] >= 0)
                j->fds[k] = slot < ngot ? got[slot++] : -1;
        run_spawn(j);
        for (k = 0; k < ngot; k++)
            close(got[k]);
        if (send(sock, &one, 1, MSG_NOSIGNAL) != 1)
            return NULL;
    }
}

/* Unshare the descriptor table, keep 0-2 and the socket, then serve. The
 * loop thread closes its copy of sock once it has our first answer. */
static void *
spawner_boot(void *arg)
{
    int sock = (int)(intptr_t)arg;
    char ok = 0;

    if (unshare(CLONE_FILES) == 0) {
        if (sock != 3 && dup3(sock, 3, O_CLOEXEC) == 3) {
            close(sock);
            sock = 3;
        }
        if (sock == 3 && close_range(4, ~0U, 0) == 0)
            ok = 1;
    }
    if (send(sock, &ok, 1, MSG_NOSIGNAL) != 1 || !ok)
        return NULL;
    return spawner_main((void *)(intptr_t)sock);
}

static int
spawner_start(void)
{
    int sv[2];
    pthread_t th;
    pthread_attr_t attr;

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    /* The thread unshares and cleans its table before anything else, so
     * it sees sv[1] (passed by value) and its own copies of 0-2 only. */
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    if (pthread_create(&th, &attr, spawner_boot, (void *)(intptr_t)sv[1]) != 0) {
        pthread_attr_destroy(&attr);
        close(sv[0]);
        close(sv[1]);
        return -EAGAIN;
    }
    pthread_attr_destroy(&attr);
    {
        char ok = 0;

        /* Its table is its own once it answers: our copy of its end goes. */
        if (recv(sv[0], &ok, 1, 0) != 1 || !ok) {
            close(sv[0]);
            close(sv[1]);
            return -ENOSYS;
        }
    }
    close(sv[1]);
    spawner = sv[0];
    return 0;
}
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

/* Hand the job to the thread: 0 when it ran (its outcome is in j), or
 * -errno when the thread cannot be reached (then spawn here). */
static int
via_thread(struct job *j)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int) * MAX_STDIO)];
    } u;
    struct iovec iov = {&j, sizeof j};
    struct msghdr m = {0};
    struct cmsghdr *c;
    int fds[MAX_STDIO], n = 0, k;
    char done;
    ssize_t r;

    if (spawner == -1 && spawner_start() < 0)
        spawner = -2;
    if (spawner < 0)
        return -ENOSYS;
    for (k = 0; k < j->n; k++)
        if (j->fds[k] >= 0)
            fds[n++] = j->fds[k];
    memset(&u, 0, sizeof u);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    if (n > 0) {
        m.msg_control = u.buf;
        m.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n);
        c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)n);
    }
    while ((r = sendmsg(spawner, &m, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    if (r != sizeof j)
        goto broken;
    /* Blocks as the vfork'd child's exec did: about a millisecond. */
    while ((r = recv(spawner, &done, 1, 0)) < 0 && errno == EINTR)
        ;
    if (r != 1)
        goto broken;
    return 0;
broken:
    close(spawner);
    spawner = -2;
    return -EPIPE;
}

int
agt_spawn(const struct agt_spawn_req *r, int *pid_out)
{
    int pair[MAX_STDIO][2], k, n = r->nstdio;
    struct job j;

    if (n < 0 || n > MAX_STDIO)
        return -EINVAL;
    memset(&j, 0, sizeof j);
    j.req = r;
    j.n = n;
    for (k = 0; k < MAX_STDIO; k++)
        pair[k][0] = pair[k][1] = -1;
    for (k = 0; k < n; k++) {
        const uv_stdio_container_t *c = &r->stdio[k];

        j.fds[k] = -1;
        if (c->flags & UV_CREATE_PIPE) {
            if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair[k]) < 0) {
                int rc = -errno;

                close_pairs(pair, n);
                return rc;
            }
            j.fds[k] = pair[k][1];
        } else if (c->flags & UV_INHERIT_FD)
            j.fds[k] = c->data.fd;
    }
    if (via_thread(&j) < 0) {
        for (k = 0; k < n; k++) /* via_thread renumbered nothing: j.fds are ours */
            j.fds[k] = (r->stdio[k].flags & UV_CREATE_PIPE)  ? pair[k][1]
                       : (r->stdio[k].flags & UV_INHERIT_FD) ? r->stdio[k].data.fd
                                                             : -1;
        run_spawn(&j);
    }
    for (k = 0; k < n; k++) /* the child's ends: it has its copies */
        if (pair[k][1] >= 0) {
            close(pair[k][1]);
            pair[k][1] = -1;
        }
    if (j.err != 0) {
        close_pairs(pair, n);
        return -j.err;
    }
    for (k = 0; k < n; k++) {
        if (pair[k][0] < 0)
            continue;
        /* Owned by the stream from here, closed with it. */
        if (uv_pipe_open((uv_pipe_t *)r->stdio[k].data.stream, pair[k][0]) < 0)
            close(pair[k][0]);
        pair[k][0] = -1;
    }
    *pid_out = j.pid;
    return 0;
}
