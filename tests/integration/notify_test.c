/* SPDX-License-Identifier: MIT */
/*
 * notify_test.c: the daemons speak systemd's notify protocol (Type=notify,
 * WatchdogSec=) to a fake notify socket — a datagram socket this test binds
 * and reads — so no running systemd is needed: READY=1 once the daemon
 * serves (the CLI gets an answer right after it), WATCHDOG=1 at half
 * WATCHDOG_USEC from the event loop, STOPPING=1 on SIGTERM. The real
 * binaries, started by the harness. Controller ports 7644-7655, app ports
 * 9980-9989.
 */
#include <criterion/criterion.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static struct h_cluster C;
static int sock = -1;

static void
fini(void)
{
    if (sock >= 0)
        close(sock);
    sock = -1;
    h_cleanup(&C);
}

TestSuite(notify, .fini = fini, .timeout = 60);

static long
mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Bind the fake notify socket under the test's dir; its path in env. */
static void
fake_socket(char *env, size_t envsz)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    cr_assert(strlen(C.dir) + sizeof "/notify.sock" <= sizeof sa.sun_path);
    memcpy(sa.sun_path, C.dir, strlen(C.dir));
    strcat(sa.sun_path, "/notify.sock");
    sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert(sock >= 0);
    cr_assert(bind(sock, (struct sockaddr *)&sa, sizeof sa) == 0, "bind %s", sa.sun_path);
    snprintf(env, envsz, "NOTIFY_SOCKET=%s", sa.sun_path);
}

/* The next datagram within timeout_ms into buf; false on timeout. */
static bool
next_msg(char *buf, size_t bufsz, int timeout_ms)
{
    struct pollfd p = {.fd = sock, .events = POLLIN};
    ssize_t n;

    if (poll(&p, 1, timeout_ms) <= 0)
        return false;
    n = recv(sock, buf, bufsz - 1, 0);
    if (n < 0)
        return false;
    buf[n] = '\0';
    return true;
}

/* Wait for state (skipping watchdog pings, counted into *pings). */
static bool
wait_state(const char *state, int timeout_ms, int *pings)
{
    long end = mono_ms() + timeout_ms;
    char buf[256];

    while (mono_ms() < end) {
        if (!next_msg(buf, sizeof buf, (int)(end - mono_ms())))
            return false;
        if (strcmp(buf, "WATCHDOG=1") == 0) {
            if (pings)
                (*pings)++;
            continue;
        }
        if (strcmp(buf, state) == 0)
            return true;
        cr_log_info("notify: %s", buf);
    }
    return false;
}

/* Pings seen in ms milliseconds (nothing else may arrive). Pings already
 * waiting in the socket were sent before the window (while the test was busy
 * elsewhere on a loaded machine): they are read and not counted. */
static int
count_pings(int ms)
{
    char buf[256];
    int n = 0;

    while (next_msg(buf, sizeof buf, 0))
        cr_expect_str_eq(buf, "WATCHDOG=1");
    long end = mono_ms() + ms;

    while (mono_ms() < end && next_msg(buf, sizeof buf, (int)(end - mono_ms()))) {
        cr_expect_str_eq(buf, "WATCHDOG=1");
        n++;
    }
    return n;
}

Test(notify, controller_ready_watchdog_stopping)
{
    char nenv[200], *out = NULL;
    int idx, pings = 0, rc;

    h_init(&C, "notify-ctl", 7644);
    fake_socket(nenv, sizeof nenv);
    idx = h_start_controller(&C, (const char *const[]){nenv, "WATCHDOG_USEC=200000", NULL});
    cr_assert(wait_state("READY=1", 20000, &pings), "no READY=1 from the controller");
    /* Ready means serving: the CLI is answered at once. */
    rc = h_cli(&C, &out, NULL, (const char *const[]){"nodes", NULL});
    cr_assert_eq(rc, 0, "nodes right after READY=1: exit %d", rc);
    free(out);
    cr_assert(h_log_has(&C, idx, "event=watchdog interval_ms=100"));
    /* WATCHDOG_USEC=200 ms: a ping every 100 ms, from the loop. */
    pings = count_pings(1000);
    cr_assert(pings >= 5 && pings <= 12, "%d pings in 1 s at 100 ms", pings);
    kill(C.procs[idx].pid, SIGTERM);
    cr_assert(wait_state("STOPPING=1", 5000, NULL), "no STOPPING=1 after SIGTERM");
    cr_assert(h_stop(&C, idx, 10000) == 0, "the controller did not exit 0");
}

Test(notify, agent_ready_watchdog_stopping)
{
    char nenv[200];
    int ctl, agt, pings;

    h_init(&C, "notify-agent", 7648);
    ctl = h_start_controller(&C, NULL);
    cr_assert(h_wait_log(&C, ctl, "event=ready", 20000));
    fake_socket(nenv, sizeof nenv);
    agt = h_start_agent(&C, "n1", "9980-9989",
                        (const char *const[]){nenv, "WATCHDOG_USEC=400000", NULL});
    cr_assert(wait_state("READY=1", 20000, NULL), "no READY=1 from the agent");
    cr_assert(h_log_has(&C, agt, "event=started"), "READY=1 before the agent started");
    pings = count_pings(1000);
    cr_assert(pings >= 2 && pings <= 7, "%d pings in 1 s at 200 ms", pings);
    kill(C.procs[agt].pid, SIGTERM);
    cr_assert(wait_state("STOPPING=1", 5000, NULL), "no STOPPING=1 after SIGTERM");
    cr_assert(h_stop(&C, agt, 30000) == 0, "the agent did not exit 0");
}

Test(notify, watchdog_for_another_pid_is_not_ours)
{
    char nenv[200], buf[256];
    int idx;

    h_init(&C, "notify-pid", 7652);
    fake_socket(nenv, sizeof nenv);
    idx = h_start_controller(
        &C, (const char *const[]){nenv, "WATCHDOG_USEC=100000", "WATCHDOG_PID=1", NULL});
    cr_assert(wait_state("READY=1", 20000, NULL));
    cr_assert_not(next_msg(buf, sizeof buf, 500), "unexpected %s", buf);
    cr_assert_not(h_log_has(&C, idx, "event=watchdog"));
}
