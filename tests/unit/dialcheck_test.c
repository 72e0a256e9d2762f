/* SPDX-License-Identifier: MIT */
/*
 * dialcheck_test.c: common/dialcheck.c, and the nanomsg abort it exists
 * for. Each test runs in a network namespace of its own (unshare, as root;
 * skipped otherwise), with a tiny ephemeral port range that it fills with
 * sockets bound to port 0, as TIME_WAIT leftovers of thousands of closed
 * connections fill the real one. (The abort itself cannot be shown here:
 * Criterion runs nanomsg in this process, and a forked child's nanomsg has no
 * worker threads; tests/integration/exhaust_test.c shows it on the agent.)
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dialcheck.h"

#define RANGE_LO 10990
#define RANGE_HI 10999

/* A private network namespace whose ephemeral range is RANGE_LO..RANGE_HI. */
static void
private_net(void)
{
    int fd;

    if (geteuid() != 0 || unshare(CLONE_NEWNET) < 0)
        cr_skip_test("needs root and network namespaces");
    fd = open("/proc/sys/net/ipv4/ip_local_port_range", O_WRONLY);
    cr_assert(fd >= 0);
    cr_assert(dprintf(fd, "%d %d\n", RANGE_LO, RANGE_HI) > 0);
    close(fd);
}

/* Bind sockets to port 0 until the kernel has none left; returns how many
 * are held (their descriptors in fds). */
static int
fill_ports(int *fds, int max)
{
    int n = 0;

    while (n < max) {
        struct sockaddr_in sin = {.sin_family = AF_INET};
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        cr_assert(fd >= 0);
        if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
            cr_assert_eq(errno, EADDRINUSE);
            close(fd);
            break;
        }
        fds[n++] = fd;
    }
    return n;
}

Test(dialcheck, not_tcp_or_bad_url)
{
    cr_assert_eq(dial_check("ipc:///tmp/x"), 0);
    cr_assert_eq(dial_check("inproc://x"), 0);
    cr_assert_eq(dial_check("tcp://no-port"), -EINVAL);
    cr_assert_eq(dial_check("tcp://not-an-address;127.0.0.1:7750"), -EINVAL);
}

Test(dialcheck, sees_ports_run_out_and_come_back, .timeout = 10)
{
    int fds[64], n;

    private_net();
    cr_assert_eq(dial_check("tcp://127.0.0.1:7750"), 0);
    n = fill_ports(fds, 64);
    cr_assert(n > 0 && n <= RANGE_HI - RANGE_LO + 1, "held %d", n);
    cr_assert_eq(dial_check("tcp://127.0.0.1:7750"), -EADDRINUSE);
    cr_assert_eq(dial_check("tcp://*;127.0.0.1:7750"), -EADDRINUSE);
    close(fds[--n]);
    cr_assert_eq(dial_check("tcp://127.0.0.1:7750"), 0);
    while (n > 0)
        close(fds[--n]);
}

Test(dialcheck, sees_descriptors_run_out, .timeout = 10)
{
    struct rlimit rl = {.rlim_cur = 0, .rlim_max = 0};
    int fd;

    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    /* Exactly the descriptors open now: the next socket() fails. */
    for (fd = 0; fcntl(fd, F_GETFD) >= 0 || fd < 3; fd++)
        ;
    rl.rlim_cur = (rlim_t)fd;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    cr_assert_eq(dial_check("tcp://127.0.0.1:7750"), -EMFILE);
}

Test(dialcheck, fds_low_sees_the_top_of_the_limit_taken, .timeout = 10)
{
    struct rlimit rl = {.rlim_cur = 0, .rlim_max = 0};
    int fd;

    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    for (fd = 0; fcntl(fd, F_GETFD) >= 0 || fd < 3; fd++)
        ;
    rl.rlim_cur = (rlim_t)fd + 100; /* 100 free: plenty */
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    cr_assert(!fds_low(16));
    rl.rlim_cur = (rlim_t)fd + 4; /* 4 free: low */
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    cr_assert(fds_low(16));
}
