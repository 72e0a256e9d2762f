/* SPDX-License-Identifier: MIT */
/*
 * probe_lib.c: connect probes. A blocking connect to loopback answers at
 * once (accepted, or refused with ECONNREFUSED); SO_LINGER 0 makes close
 * send a reset, so thousands of probes a second leave no TIME_WAIT behind to
 * exhaust the ephemeral ports.
 */
#include <netinet/in.h>
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

bool
probe_accepts(unsigned port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                             .sin_port = htons((unsigned short)port)};
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok;

    if (s < 0)
        return false;
    ok = connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(s);
    return ok;
}

uint64_t
probe_wait(unsigned lo, unsigned hi, unsigned want, bool up, unsigned timeout_ms)
{
    unsigned n = hi - lo + 1, reached = 0, i;
    unsigned char *done = calloc(n, 1);
    uint64_t end = probe_now_ns() + (uint64_t)timeout_ms * 1000000, t = 0;
    struct timespec pause = {.tv_nsec = 1000000};

    if (done == NULL)
        return 0;
    for (;;) {
        for (i = 0; i < n; i++) {
            if (!done[i] && probe_accepts(lo + i) == up) {
                done[i] = 1;
                reached++;
            }
        }
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
