/* SPDX-License-Identifier: MIT */
/*
 * viewhold.c: an instance's view is taken down after its sockets close,
 * not before.
 *
 * An instance's view is a mount namespace of its own (view.c), and the
 * instance's process holds its only reference. When that process exits,
 * the kernel drops the namespace in exit_task_namespaces: it unmounts the
 * copy of the host's mount table and the view's own mounts (tmpfs, overlay)
 * and waits for an RCU grace period, and the superblocks are shut down in
 * the exiting task's task_work, which runs before the task_work that closes
 * its files (LIFO). So every port a stopped app listened on refused
 * connections only after its view was gone: a stop of 1,000 took 300 ms
 * against 187 ms without views (tests/bench/run --spawn-only), perf showing
 * 36 % of the listeners' exit in cleanup_mnt and put_mnt_ns.
 *
 * So when the agent stops an instance, it first takes a reference of its
 * own to the namespace (an open /proc/PID/ns/mnt). The process then exits
 * with nothing to take down: its sockets close at once. When the agent has
 * reaped it, it hands the descriptor to a thread of its own that closes it,
 * at the lowest priority (nice 19): the teardown is the same work, done
 * where no port and no start waits for it. The descriptor is always given
 * back, so a namespace never outlives its instance by more than the
 * thread's backlog.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agt.h"
#include "log.h"
#include "util.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int feed[2] = {-1, -1}; /* descriptors to close, written as ints */
static ino_t own_ns;           /* the agent's own mount namespace */

/* Close what came, once nothing more has come for QUIET_MS: a stop of many
 * instances exits them together, and the teardowns (each holds the kernel's
 * mount lock, and waits for an RCU grace period with IPIs to every CPU)
 * then wait until the burst is over rather than slow its exits. A backlog
 * of MAX_HELD, or one held for MAX_WAIT_MS, is closed at once regardless. */
#define QUIET_MS 100
#define MAX_WAIT_MS 2000
#define MAX_HELD 1024

static void *
closer(void *arg)
{
    static int held[MAX_HELD];
    struct pollfd p = {.events = POLLIN};
    uint64_t first = 0;
    int n = 0, fd;

    (void)arg;
    p.fd = feed[0];
    /* Per thread on Linux: the nice value of this thread alone. */
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
    for (;;) {
        int wait = n == 0 ? -1 : QUIET_MS, rc = poll(&p, 1, wait);
        ssize_t got = 0;

        if (rc < 0 && errno != EINTR)
            break;
        if (rc > 0) {
            got = read(feed[0], &fd, sizeof fd);
            if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN))
                break;
            if (got == (ssize_t)sizeof fd) {
                if (n == 0)
                    first = mono_ms();
                held[n++] = fd;
            }
        }
        if (n > 0 && (rc == 0 || n == MAX_HELD || mono_ms() - first >= MAX_WAIT_MS)) {
            while (n > 0)
                close(held[--n]);
        }
    }
    while (n > 0)
        close(held[--n]);
    return NULL;
}

static void
start(void)
{
    struct stat st;
    pthread_attr_t at;
    pthread_t t;
    sigset_t all, old;
    int rc;

    if (stat("/proc/self/ns/mnt", &st) < 0)
        return;
    own_ns = st.st_ino;
    if (pipe2(feed, O_CLOEXEC) < 0)
        return;
    /* Never block the loop: a full pipe (thousands waiting) closes inline. */
    if (fcntl(feed[1], F_SETFL, O_NONBLOCK) < 0)
        goto fail;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&at, 256 * 1024);
    /* No signal is handled on it (libuv's handlers write to the loop). */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    rc = pthread_create(&t, &at, closer, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&at);
    if (rc == 0)
        return;
    log_warn("viewhold", "err=%s", log_q(strerror(rc)));
fail:
    close(feed[0]);
    close(feed[1]);
    feed[0] = feed[1] = -1;
}

int
agt_viewhold_take(int pid)
{
    char path[64];
    struct stat st;
    int fd;

    pthread_once(&once, start);
    if (feed[1] < 0 || pid <= 0)
        return -1;
    snprintf(path, sizeof path, "/proc/%d/ns/mnt", pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    /* Not in a view (yet, or at all): nothing of its own to hold. */
    if (fstat(fd, &st) < 0 || st.st_ino == own_ns) {
        close(fd);
        return -1;
    }
    return fd;
}

void
agt_viewhold_give(int fd)
{
    if (fd < 0)
        return;
    if (feed[1] < 0 || write(feed[1], &fd, sizeof fd) != (ssize_t)sizeof fd)
        close(fd);
}
