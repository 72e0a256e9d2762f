/* SPDX-License-Identifier: MIT */
/*
 * probe_lib.c: connect probes. A connect to loopback answers at once
 * (accepted, or refused with ECONNREFUSED) unless the listener's queue is
 * full (probe_pass); SO_LINGER 0 makes close send a reset, so thousands of
 * probes a second leave no TIME_WAIT behind to exhaust the ephemeral ports.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "probe.h"

uint64_t
probe_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct sockaddr_in
loopback(unsigned port)
{
    return (struct sockaddr_in){.sin_family = AF_INET,
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                                .sin_port = htons((unsigned short)port)};
}

/* Closed with a reset: no TIME_WAIT left behind. */
static void
probe_close(int s)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};

    setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(s);
}

bool
probe_accepts(unsigned port)
{
    struct sockaddr_in sa = loopback(port);
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok;

    if (s < 0)
        return false;
    ok = connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    probe_close(s);
    return ok;
}

/*
 * One pass over the ports not yet done, BATCH at a time: a nonblocking
 * connect to each, then the answers collected with poll for at most
 * ANSWER_MS. A port whose listener has stopped accepting (its process is
 * exiting) keeps its queue full of our earlier probes, and the kernel drops
 * a new SYN: a blocking connect then waits for the SYN's retransmission,
 * 1 s, and the figure with it (a stop measured at 1,101 ms once, its last
 * instance exited at 241 ms). Such a port has not answered either way: it
 * is not refusing yet, nor accepting, and it is probed again next pass.
 */
#define BATCH 256
#define ANSWER_MS 20

static void
probe_pass(unsigned lo, unsigned n, unsigned char *done, bool up, unsigned *reached)
{
    struct pollfd pf[BATCH];
    unsigned port[BATCH], i = 0;

    while (i < n) {
        int k = 0, left = 0;

        for (; i < n && k < BATCH; i++) {
            struct sockaddr_in sa = loopback(lo + i);
            int s;

            if (done[i])
                continue;
            s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
            if (s < 0)
                continue;
            if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EINPROGRESS) {
                pf[k] = (struct pollfd){.fd = s, .events = POLLOUT};
                port[k++] = i;
                left++;
            } else {
                if (!up) { /* refused at once */
                    done[i] = 1;
                    (*reached)++;
                }
                close(s);
            }
        }
        for (uint64_t end = probe_now_ns() + ANSWER_MS * 1000000ull; left > 0;) {
            int64_t wait_ns = (int64_t)(end - probe_now_ns());
            int rc = poll(pf, (nfds_t)k, wait_ns > 0 ? (int)(wait_ns / 1000000) + 1 : 0);

            if (rc <= 0)
                break;
            for (int j = 0; j < k; j++) {
                int err = 0;
                socklen_t len = sizeof err;

                if (pf[j].fd < 0 || !pf[j].revents)
                    continue;
                getsockopt(pf[j].fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if ((err == 0) == up) {
                    done[port[j]] = 1;
                    (*reached)++;
                }
                probe_close(pf[j].fd);
                pf[j].fd = -1;
                left--;
            }
        }
        for (int j = 0; j < k; j++) /* no answer in time: neither */
            if (pf[j].fd >= 0)
                probe_close(pf[j].fd);
    }
}

uint64_t
probe_wait(unsigned lo, unsigned hi, unsigned want, bool up, unsigned timeout_ms)
{
    unsigned n = hi - lo + 1, reached = 0;
    unsigned char *done = calloc(n, 1);
    uint64_t end = probe_now_ns() + (uint64_t)timeout_ms * 1000000, t = 0;
    struct timespec pause = {.tv_nsec = 1000000};

    if (done == NULL)
        return 0;
    for (;;) {
        probe_pass(lo, n, done, up, &reached);
        if (up ? reached >= want : reached == n) {
            t = probe_now_ns();
            break;
        }
        if (probe_now_ns() > end)
            break;
        nanosleep(&pause, NULL);
    }
    free(done);
    return t;
}
