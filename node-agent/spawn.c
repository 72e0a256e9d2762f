/* SPDX-License-Identifier: MIT */
/*
 * spawn.c: start a process without forking the agent, and without waiting
 * for it on the loop.
 *
 * libuv's uv_spawn forks: the kernel copies the agent's page tables (and
 * marks every private page copy-on-write) for each child, only to throw
 * them away at the exec. Measured on the benchmark's agent, that was about
 * 30 % of its time, and it grows with the agent's memory. glibc's
 * posix_spawn runs the child with clone(CLONE_VM | CLONE_VFORK) on a stack
 * of its own: nothing is copied, the cost does not depend on the agent's
 * size, and the caller waits only until the exec.
 *
 * Everything the child needs is said as posix_spawn file actions and
 * attributes: its own session (POSIX_SPAWN_SETSID, so its pid is its
 * process group id), every signal at its default and none blocked (the
 * agent's SIG_IGN must not leak: an ignored SIGPIPE survives an exec), the
 * cwd, descriptors 0..n-1 from the stdio table and nothing else (closefrom;
 * the helper closes everything above 2 once more). What posix_spawn cannot
 * do (cgroups, rlimits, a terminal, a mount namespace, the privilege drop)
 * is the helper's job (exec.c). A request with a v2 cgroup goes the
 * clone3 CLONE_INTO_CGROUP way instead (clone_into, below), the child doing
 * the same steps itself; posix_spawn stays for the rest and for a kernel
 * that refuses it.
 *
 * The stdio table reuses libuv's uv_stdio_container_t so that output.c and
 * pipe.c hand over their streams as they did to uv_spawn: UV_IGNORE is
 * /dev/null, UV_INHERIT_FD a descriptor of ours, UV_CREATE_PIPE a socket
 * pair whose other end is opened on the (initialised) uv_pipe_t at once.
 *
 * The spawner thread (agt_spawn_async). Two costs were left on the loop:
 * - A clone copies the caller's whole descriptor table, and the exec (or
 *   closefrom) closes every copy again. An agent with 1,000 instances holds
 *   2,000 or more descriptors (their output pipes): each spawn grew slower
 *   with every instance running (O(n) each, O(n^2) to start n).
 * - The caller waits for the child's exec. On a busy machine that wait is
 *   mostly the child waiting for a CPU: the agent used 1.3 s of CPU to
 *   start 1,000 instances and took 6 s, one spawn at a time.
 * So spawns run on threads of their own (SPAWNERS) that unshared their
 * descriptor tables at birth (unshare(CLONE_FILES)) and closed all but 0-2
 * and their end of a socket pair. The loop thread sends it each job (a pointer: memory is
 * shared; the request is copied into the job) with the job's descriptors
 * as SCM_RIGHTS, and goes on; the thread spawns, and sends the job back;
 * the loop reads it when the socket is readable and calls the job's
 * callback with the pid. The thread blocks every signal (libuv's handler
 * writes to a descriptor only the loop's table has). Its children are the
 * agent's children all the same (waitpid sees every thread's).
 *
 * The instance's cgroups are made on the thread too (agt_spawn_req.prep,
 * agt_cg_prepare): a cgroup mkdir is a kernel allocation of every
 * controller's state and its files, and with the limit writes and reads
 * around it that was 40 % of the loop thread's CPU at a start of 1,000
 * (perf, hybrid layout: v2 plus v1 memory). Off the loop, the threads do
 * it in parallel and the loop only asks.
 *
 * The helper's steps in the clone child (agt_spawn_req.plan). Every start
 * was two execs: the helper's (exec.c), then the app's. On the benchmark's
 * machine (a guest whose page-table writes are hypercalls, and where every
 * new program's start runs cpuid) an exec of even a small static binary
 * costs milliseconds of CPU: 500 starts of /bin/true took 4.3 ms of CPU
 * each, through the helper 8.1. So where clone3 works, the child does what
 * the helper would (agt_exec_plan_run: the v1 cgroup joins, the limit, the
 * view, the drop to the app's user, the exec of the command, directly when
 * it is plain) before its one exec. It runs on the agent's memory and the
 * spawner thread's stack, so that code allocates nothing, takes no lock and
 * drops privileges by raw system calls; a failing step is said on the
 * instance's stderr and the child exits 127, as the helper did. The
 * helper stays for what the plan does not cover (a terminal, a view in a
 * user namespace, a kernel that refuses clone3): the request keeps its
 * file and argv for that. Measured with `tests/bench/run --spawn-only`:
 * 1,000 listeners up in 2.9 s against 3.8-6.6 s, a deploy's batch of 250
 * 1,156 ms beyond min_healthy against 1,632-1,887.
 *
 * A child may exit before its pid reaches the loop: reaper.c keeps the
 * exits of pids nobody watches for a while (agt_reaper_claim), and the
 * caller claims its pid's exit when the callback comes.
 *
 * agt_spawn_sync does the same on the calling thread and returns the pid:
 * for attached one-offs (their stdio is set up around the pid) and where
 * the thread could not start.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agt.h"
#include "log.h"
#include "util.h"

/* The child of clone_into runs on a stack inside the caller's frame and
 * shares its memory: under AddressSanitizer, the child's frames leave that
 * region poisoned for the caller, which is made whole again afterwards. */
#ifdef DROVER_ASAN
#include <sanitizer/asan_interface.h>
#define stack_whole(p, n) __asan_unpoison_memory_region((p), (n))
#else
#define stack_whole(p, n) ((void)(p), (void)(n))
#endif

#define MAX_STDIO 8
/* Spawner threads, all reading the one socket: most of a spawn's time on a
 * busy machine is its child waiting for a CPU, so a few in parallel keep
 * both cores fed. */
#define SPAWNERS 4
#define SPAWNER_STACK (512 * 1024) /* a clone child's stack is on it: CHILD_STACK */

struct agt_spawn_job {
    agt_spawned_cb cb;
    void *arg; /* NULL once forgotten: what it started is killed */
    char *file, *cwd, **argv, **envp;
    char *cgroup, **argv_join;    /* agt_spawn_req's */
    int refusal;                  /* why the cgroup was not set at the clone; 0 */
    bool has_prep;                /* make the cgroups first (agt_cg_prepare) */
    struct agt_cg_prep prep;      /* on the thread; the callback gets the outcome */
    struct agt_cg_prep *prep_out; /* agt_spawn_sync's request: written back */
    int n;
    int fds[MAX_STDIO]; /* the child's 0..n-1 in the sender's table; -1: /dev/null */
    int pid, err;
    atomic_bool cancelled;      /* the loop gave up on it: do not spawn, or undo */
    struct agt_spawn_job *next; /* in flight, for agt_spawn_stop */
    /* The helper's steps for the clone child (agt_spawn_req.plan): its
     * strings in blob, its view here (pointing there); e2 the child's room
     * for PWD. */
    bool has_plan, planned; /* planned: the child did them (no helper) */
    struct agt_exec_plan plan;
    struct agt_view view;
    char **e2;
    char blob[]; /* file, cwd, argv and envp with their strings */
};

/*
 * Into its cgroup at creation. clone3 with CLONE_INTO_CGROUP puts the child
 * in the cgroup as the kernel makes it, under the read side of the lock
 * that each cgroup.procs write takes for writing (machine-wide, with an RCU
 * grace period per write: 1.5 to 3.5 ms each on the benchmark's machine,
 * one start at a time). The call is posix_spawn's own: CLONE_VM |
 * CLONE_VFORK on a stack of its own (nothing of the agent is copied, we
 * wait only until the exec), the child doing what posix_spawn's file
 * actions and attributes did. CLONE_CLEAR_SIGHAND gives it no handler of
 * ours; what we ignore it sets back to the default itself.
 *
 * The child shares our memory and runs on our thread's TLS while we wait:
 * it calls nothing that allocates or locks, and says its error in c->err.
 */
struct child {
    const struct agt_spawn_job *j;
    const int *fds;
    int err;
};

/* Enough for the helper's steps (agt_exec_plan_run: the view's paths and
 * the direct exec's buffers are about 50 KiB of frames), with room for a
 * sanitizer's redzones. On the spawner thread's stack (SPAWNER_STACK). */
#define CHILD_STACK (160 * 1024)
#ifndef CLONE_CLEAR_SIGHAND
#define CLONE_CLEAR_SIGHAND 0x100000000ULL
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

static int
child_main(void *arg)
{
    struct child *c = arg;
    const struct agt_spawn_job *j = c->j;
    struct sigaction dfl;
    sigset_t none;
    int k, fd;

    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (k = 1; k < NSIG; k++)
        if (k != SIGKILL && k != SIGSTOP)
            (void)sigaction(k, &dfl, NULL); /* glibc's own two say EINVAL: default anyway */
    if (setsid() < 0)
        goto fail;
    for (k = 0; k < j->n; k++) {
        fd = c->fds[k] >= 0 ? c->fds[k] : open("/dev/null", O_RDWR | O_CLOEXEC);
        if (fd < 0)
            goto fail;
        if (fd == k) { /* already there: keep it across the exec */
            if (fcntl(k, F_SETFD, 0) < 0)
                goto fail;
            continue;
        }
        if (dup2(fd, k) < 0)
            goto fail;
        if (c->fds[k] < 0)
            close(fd);
    }
    if (close_range((unsigned)j->n, ~0U, 0) < 0)
        goto fail;
    if (j->cwd && chdir(j->cwd) < 0)
        goto fail;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (j->has_plan) {
        /* What the helper would do, done here: a failure is said on
         * stderr and ends the child with 127, as it ends the helper. */
        agt_exec_plan_run(&j->plan, j->e2);
        _exit(127);
    }
    execve(j->file, j->argv, j->envp);
fail:
    c->err = errno ? errno : EINVAL;
    _exit(127);
}

/* Some kernels refuse it for good: older than 5.7 (EINVAL, or E2BIG for
 * the argument's size), or clone3 filtered (ENOSYS, EPERM). Then nobody
 * asks again. Any other refusal is about this cgroup (EBADF: not a v2
 * one, EBUSY, EACCES, ENODEV ...): the helper joins it instead, this once. */
static atomic_bool clone3_off;
static atomic_uint_least64_t placed_at_clone, placed_joined;
static atomic_int last_refusal;

static bool
refused_for_good(int err)
{
    return err == ENOSYS || err == EINVAL || err == E2BIG || err == EPERM;
}

/* 0 with j->pid; or the kernel's refusal (> 0) to place it so, nothing
 * started; or -errno when the child could not exec. */
static int
clone_into(struct agt_spawn_job *j, const int *fds)
{
    _Alignas(16) char stack[CHILD_STACK];
    struct agt_clone_args ca;
    struct child c = {j, fds, 0};
    sigset_t all, old;
    long pid;
    int cgfd;

    if (atomic_load(&clone3_off))
        return ENOSYS;
    cgfd = j->cgroup ? open(j->cgroup, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
    if (j->cgroup && cgfd < 0)
        return errno;
    memset(&ca, 0, sizeof ca);
    ca.flags = CLONE_VM | CLONE_VFORK | CLONE_CLEAR_SIGHAND;
    ca.exit_signal = SIGCHLD;
    ca.stack = (uint64_t)(uintptr_t)stack;
    ca.stack_size = sizeof stack;
    if (cgfd >= 0) {
        ca.flags |= CLONE_INTO_CGROUP;
        ca.cgroup = (uint64_t)cgfd;
    }
    /* No handler of ours may run on the child's stack before it clears them. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pid = agt_clone3_run(&ca, sizeof ca, child_main, &c);
    stack_whole(stack, sizeof stack); /* the child has exec'd or exited (CLONE_VFORK) */
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (cgfd >= 0)
        close(cgfd);
    if (pid < 0) {
        if (refused_for_good((int)-pid))
            atomic_store(&clone3_off, true);
        return (int)-pid;
    }
    if (c.err) { /* it exited 127: reap it (or the reaper did) */
        while (waitpid((pid_t)pid, NULL, 0) < 0 && errno == EINTR)
            ;
        j->pid = 0;
        j->err = c.err;
        return -c.err;
    }
    j->pid = (int)pid;
    j->err = 0;
    return 0;
}

void
agt_spawn_placements(uint64_t *at_clone, uint64_t *joined, int *last)
{
    *at_clone = atomic_load(&placed_at_clone);
    *joined = atomic_load(&placed_joined);
    *last = atomic_load(&last_refusal);
}

static int
run_posix_spawn(struct agt_spawn_job *j, const int *fds, char **argv)
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
        rc = fds[k] >= 0 ? posix_spawn_file_actions_adddup2(&fa, fds[k], k)
                         : posix_spawn_file_actions_addopen(&fa, k, "/dev/null", O_RDWR, 0);
    if (rc == 0)
        rc = posix_spawn_file_actions_addclosefrom_np(&fa, j->n);
    if (rc == 0 && j->cwd)
        rc = posix_spawn_file_actions_addchdir_np(&fa, j->cwd);
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
        rc = posix_spawn(&pid, j->file, &fa, &at, argv, j->envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    j->pid = rc == 0 ? (int)pid : 0;
    j->err = rc;
    return rc;
}

/* 0, or a positive errno (posix_spawn's convention). */
static int
run_spawn(struct agt_spawn_job *j, const int *fds)
{
    int rc;

    if (j->has_prep) { /* the instance's cgroups: a mkdir and writes each */
        agt_cg_prepare(&j->prep);
        if (j->prep.rc < 0) {
            j->pid = 0;
            j->err = -j->prep.rc;
            return j->err;
        }
    }
    if (!j->cgroup && !j->has_plan)
        return run_posix_spawn(j, fds, j->argv);
    j->planned = j->has_plan;
    rc = clone_into(j, fds);
    if (rc == 0) {
        if (j->cgroup)
            atomic_fetch_add(&placed_at_clone, 1);
        return 0;
    }
    if (rc < 0)
        return -rc;
    j->planned = false; /* nothing started: the helper's way, below */
    if (!j->cgroup)
        return run_posix_spawn(j, fds, j->argv);
    j->refusal = rc;
    atomic_store(&last_refusal, rc);
    atomic_fetch_add(&placed_joined, 1);
    return run_posix_spawn(j, fds, j->argv_join);
}

/* ---- the job: the request copied, so the caller's buffers may go ---- */

static size_t
strs_size(char **v, size_t *count)
{
    size_t n = 0, sz = 0;

    for (; v && v[n]; n++)
        sz += strlen(v[n]) + 1;
    *count = n;
    return sz;
}

static char *
put_str(char **at, const char *s)
{
    char *p = *at;
    size_t len = strlen(s) + 1;

    memcpy(p, s, len);
    *at += len;
    return p;
}

static struct agt_spawn_job *
job_new(const struct agt_spawn_req *r)
{
    size_t na, ne, nj, npe = 0, npj = 0,
                       sz = strlen(r->file) + 1 + (r->cwd ? strlen(r->cwd) + 1 : 0);
    char **join = r->cgroup ? r->argv_join : NULL;
    const struct agt_exec_plan *p = r->plan;
    struct agt_spawn_job *j;
    char *at;

    sz += strs_size(r->argv, &na) + strs_size(r->envp, &ne) + strs_size(join, &nj);
    sz += (na + 1 + ne + 1 + nj + 1) * sizeof(char *);
    sz += r->cgroup ? strlen(r->cgroup) + 1 : 0;
    if (p) { /* its env, its joins, and e2: env's room plus two */
        sz += strs_size(p->env, &npe) + strs_size(p->join, &npj) + strlen(p->script) + 1;
        if (p->view)
            sz += strlen(p->view->release) + strlen(p->view->views) + strlen(p->view->hide) + 3;
        sz += (npe + 1 + npj + 1 + npe + 2) * sizeof(char *);
    }
    if ((j = calloc(1, sizeof *j + sz)) == NULL)
        return NULL;
    j->argv = (char **)(void *)j->blob;
    j->envp = j->argv + na + 1;
    j->argv_join = j->envp + ne + 1;
    at = (char *)(j->argv_join + nj + 1);
    if (p) {
        j->has_plan = true;
        j->plan = *p;
        j->plan.env = (char **)(void *)at;
        j->plan.join = j->plan.env + npe + 1;
        j->e2 = j->plan.join + npj + 1;
        at = (char *)(j->e2 + npe + 2);
        for (size_t k = 0; k < npe; k++)
            j->plan.env[k] = put_str(&at, p->env[k]);
        for (size_t k = 0; k < npj; k++)
            j->plan.join[k] = put_str(&at, p->join[k]);
        j->plan.script = put_str(&at, p->script);
        if (p->view) {
            j->view.release = put_str(&at, p->view->release);
            j->view.views = put_str(&at, p->view->views);
            j->view.hide = put_str(&at, p->view->hide);
            j->plan.view = &j->view;
        }
    }
    for (size_t k = 0; k < na; k++)
        j->argv[k] = put_str(&at, r->argv[k]);
    for (size_t k = 0; k < ne; k++)
        j->envp[k] = put_str(&at, r->envp[k]);
    for (size_t k = 0; k < nj; k++)
        j->argv_join[k] = put_str(&at, join[k]);
    j->file = put_str(&at, r->file);
    j->cwd = r->cwd ? put_str(&at, r->cwd) : NULL;
    j->cgroup = r->cgroup ? put_str(&at, r->cgroup) : NULL;
    j->n = r->nstdio;
    if (r->prep) {
        j->has_prep = true;
        j->prep = *r->prep;
        j->prep_out = r->prep;
    }
    for (int k = 0; k < MAX_STDIO; k++)
        j->fds[k] = -1;
    return j;
}

/* Socket pairs for UV_CREATE_PIPE (the child's ends into j->fds, ours
 * opened on the streams), inherited descriptors into j->fds. */
static int
job_stdio(struct agt_spawn_job *j, const struct agt_spawn_req *r, int pair[][2])
{
    int k;

    for (k = 0; k < MAX_STDIO; k++)
        pair[k][0] = pair[k][1] = -1;
    for (k = 0; k < r->nstdio; k++) {
        const uv_stdio_container_t *c = &r->stdio[k];

        if (c->flags & UV_CREATE_PIPE) {
            if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair[k]) < 0)
                return -errno;
            j->fds[k] = pair[k][1];
        } else if (c->flags & UV_INHERIT_FD)
            j->fds[k] = c->data.fd;
    }
    return 0;
}

static void
close_pairs(int pair[][2], int end)
{
    for (int k = 0; k < MAX_STDIO; k++)
        for (int e = 0; e < 2; e++)
            if ((end < 0 || e == end) && pair[k][e] >= 0) {
                close(pair[k][e]);
                pair[k][e] = -1;
            }
}

/* Our ends onto the streams: owned by them from here, closed with them. */
static void
open_streams(const struct agt_spawn_req *r, int pair[][2])
{
    for (int k = 0; k < r->nstdio; k++) {
        if (pair[k][0] < 0)
            continue;
        if (uv_pipe_open((uv_pipe_t *)r->stdio[k].data.stream, pair[k][0]) < 0)
            close(pair[k][0]);
        pair[k][0] = -1;
    }
}

/* On the loop thread, once a process: the first child placed at its
 * creation, and the first that was not (the helper joined instead); the
 * first that did the helper's steps itself. */
static void
say_placement(const struct agt_spawn_job *j)
{
    static bool said_clone, said_refusal, said_planned;

    if (j->planned && j->pid > 0 && !said_planned) {
        said_planned = true;
        log_info("spawn_steps", "by=clone_child helper=none");
    }
    if (!j->cgroup || j->pid <= 0)
        return;
    if (!j->refusal && !said_clone) {
        said_clone = true;
        log_info("spawn_cgroup", "placed=at_clone");
    } else if (j->refusal && !said_refusal) {
        said_refusal = true;
        log_warn("spawn_cgroup", "placed=joined refused=%s cgroup=%s", log_q(strerror(j->refusal)),
                 log_q(j->cgroup));
    }
}

int
agt_spawn_sync(const struct agt_spawn_req *r, int *pid_out)
{
    struct agt_spawn_job *j;
    int pair[MAX_STDIO][2], rc;

    if (r->nstdio < 0 || r->nstdio > MAX_STDIO)
        return -EINVAL;
    if ((j = job_new(r)) == NULL)
        return -ENOMEM;
    rc = job_stdio(j, r, pair);
    if (rc == 0)
        rc = -run_spawn(j, j->fds);
    if (j->has_prep)
        *j->prep_out = j->prep;
    close_pairs(pair, 1); /* the child has its copies */
    if (rc < 0)
        close_pairs(pair, -1);
    else {
        open_streams(r, pair);
        *pid_out = j->pid;
        say_placement(j);
    }
    free(j);
    return rc;
}

/* ---- the spawner thread ---- */

static void *
spawner_main(int sock)
{
    for (;;) {
        struct agt_spawn_job *j = NULL;
        union {
            struct cmsghdr h;
            char buf[CMSG_SPACE(sizeof(int) * MAX_STDIO)];
        } u;
        struct iovec iov = {&j, sizeof j};
        struct msghdr m = {0};
        struct cmsghdr *c;
        int got[MAX_STDIO], fds[MAX_STDIO], ngot = 0, k, slot;
        ssize_t r;

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
        /* They came in order, one for each slot that has one. */
        for (k = 0, slot = 0; k < j->n; k++)
            fds[k] = j->fds[k] < 0 ? -1 : slot < ngot ? got[slot++] : -1;
        if (!atomic_load(&j->cancelled))
            run_spawn(j, fds);
        else
            j->err = ECANCELED;
        if (j->pid > 0 && atomic_load(&j->cancelled)) { /* nobody would own it */
            kill(-j->pid, SIGKILL);
            kill(j->pid, SIGKILL);
        }
        for (k = 0; k < ngot; k++)
            close(got[k]);
        while ((r = send(sock, &j, sizeof j, MSG_NOSIGNAL)) < 0 && errno == EINTR)
            ;
        if (r != sizeof j)
            return NULL;
    }
}

/* Unshare the descriptor table, keep 0-2 and the socket (as 3), say so,
 * then serve. The loop thread closes its copy of our end once told. */
static void *
spawner_boot(void *arg)
{
    int sock = (int)(intptr_t)arg;
    sigset_t all;
    char ok = 0;

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
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
    return spawner_main(sock);
}

/* The spawner threads are the process's, as the reaper is (reaper.c): their
 * children are the agent process's children, whichever agent context asked. */
static struct {
    int sock; /* the loop's end; -1: not started, -2: unavailable */
    uv_poll_t poll;
    bool polling;
    struct agt_spawn_job *flight; /* sent, not back */
} sp = {-1, {0}, false, NULL};

static void
finish(struct agt_spawn_job *j)
{
    struct agt_spawn_job **p;

    for (p = &sp.flight; *p && *p != j; p = &(*p)->next)
        ;
    if (*p)
        *p = j->next;
    say_placement(j);
    if (j->arg)
        j->cb(j->arg, j->pid, -j->err, j->has_prep ? &j->prep : NULL);
    else if (j->pid > 0) { /* its owner went meanwhile: nothing may run unowned */
        kill(-j->pid, SIGKILL);
        kill(j->pid, SIGKILL);
    }
    free(j);
}

static void
on_back(uv_poll_t *h, int status, int events)
{
    struct agt_spawn_job *j;
    ssize_t r;

    (void)h;
    (void)status;
    (void)events;
    while ((r = recv(sp.sock, &j, sizeof j, MSG_DONTWAIT)) == sizeof j)
        finish(j);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
        agt_spawn_stop(); /* the thread is gone: spawn on the loop from now */
}

static int
spawner_start(uv_loop_t *loop)
{
    int sv[2], k, started = 0;
    pthread_attr_t attr;

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, SPAWNER_STACK);
    for (k = 0; k < SPAWNERS; k++) {
        pthread_t th;
        char ok = 0;

        if (pthread_create(&th, &attr, spawner_boot, (void *)(intptr_t)sv[1]) != 0)
            break;
        /* Its table is its own once it answers. */
        if (recv(sv[0], &ok, 1, 0) != 1 || !ok)
            break;
        started++;
    }
    pthread_attr_destroy(&attr);
    close(sv[1]); /* our copy of their end: theirs are in their tables */
    if (started == 0 || uv_poll_init(loop, &sp.poll, sv[0]) < 0) {
        close(sv[0]); /* a thread that runs sees EOF and ends */
        return -ENOSYS;
    }
    sp.sock = sv[0];
    uv_poll_start(&sp.poll, UV_READABLE, on_back);
    sp.polling = true;
    return 0;
}

int
agt_spawn_async(uv_loop_t *loop, const struct agt_spawn_req *r, agt_spawned_cb cb, void *arg,
                struct agt_spawn_job **out)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int) * MAX_STDIO)];
    } u;
    struct agt_spawn_job *j;
    struct iovec iov;
    struct msghdr m = {0};
    struct cmsghdr *c;
    int pair[MAX_STDIO][2], fds[MAX_STDIO], n = 0, k, rc;
    ssize_t sent;

    if (r->nstdio < 0 || r->nstdio > MAX_STDIO)
        return -EINVAL;
    if (sp.sock == -1 && spawner_start(loop) < 0)
        sp.sock = -2;
    if (sp.sock < 0)
        return -ENOSYS;
    if ((j = job_new(r)) == NULL)
        return -ENOMEM;
    j->cb = cb;
    j->arg = arg;
    if ((rc = job_stdio(j, r, pair)) < 0) {
        close_pairs(pair, -1);
        free(j);
        return rc;
    }
    for (k = 0; k < j->n; k++)
        if (j->fds[k] >= 0)
            fds[n++] = j->fds[k];
    memset(&u, 0, sizeof u);
    iov.iov_base = &j;
    iov.iov_len = sizeof j;
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
    /* The socket is non-blocking (uv_poll made it so): when the thread is
     * that far behind, wait for room here. That is the backpressure. */
    for (;;) {
        struct pollfd pfd = {sp.sock, POLLOUT, 0};

        sent = sendmsg(sp.sock, &m, MSG_NOSIGNAL);
        if (sent >= 0 || (errno != EINTR && errno != EAGAIN))
            break;
        if (errno == EAGAIN && poll(&pfd, 1, 5000) <= 0)
            break; /* no room for 5 s: the thread is stuck */
    }
    close_pairs(pair, 1); /* in flight: the message holds them now */
    if (sent != sizeof j) {
        close_pairs(pair, -1);
        free(j);
        agt_spawn_stop();
        return -ENOSYS;
    }
    open_streams(r, pair);
    j->next = sp.flight;
    sp.flight = j;
    *out = j;
    return 0;
}

void
agt_spawn_forget(struct agt_spawn_job *j)
{
    j->arg = NULL;
}

void
agt_spawn_stop(void)
{
    /* Shutdown, or the thread gone. Jobs in flight are told they were
     * cancelled (their instances see a failed spawn) and kept, never
     * freed: the thread may still hold one. What it still starts goes
     * unowned into the node's cgroup subtree, which the next start drains. */
    if (sp.sock < 0)
        return;
    if (sp.polling)
        uv_close((uv_handle_t *)&sp.poll, NULL);
    sp.polling = false;
    close(sp.sock);
    sp.sock = -2;
    for (struct agt_spawn_job *j = sp.flight; j; j = j->next) {
        atomic_store(&j->cancelled, true);
        if (j->arg) {
            void *arg = j->arg;

            j->arg = NULL;
            j->cb(arg, 0, -ECANCELED, NULL); /* the thread may hold j->prep */
        }
    }
}
