/* SPDX-License-Identifier: MIT */
/*
 * echo.c: the limit beside the placement figures: how many nanomsg
 * request/reply round trips per second the load program's own machinery
 * (REQ sockets on epoll, one worker process per BENCH_PER_WORKER sockets)
 * gets from a REP server that does nothing but echo. No sealing, no
 * protobuf: any figure the controller reaches is bounded by this one.
 *
 * The server is a raw REP socket in a blocking loop, as trivial as a REP can
 * be; it runs until SIGTERM.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>

#include "bench.h"

#define ECHO_BYTES 200 /* about a quiet heartbeat's envelope */

int
bench_echo_server(const char *url)
{
    int s = nn_socket(AF_SP_RAW, NN_REP);

    if (s < 0 || nn_bind(s, url) < 0) {
        fprintf(stderr, "bench: echo server cannot bind %s: %s\n", url, nn_strerror(nn_errno()));
        return 1;
    }
    printf("event=ready url=%s\n", url);
    fflush(stdout);
    for (;;) {
        void *body = NULL, *control = NULL;
        struct nn_iovec iov = {.iov_base = &body, .iov_len = NN_MSG};
        struct nn_msghdr hdr = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = NN_MSG};

        if (nn_recvmsg(s, &hdr, 0) < 0) {
            if (nn_errno() == EINTR)
                continue;
            return 1;
        }
        /* nn_sendmsg takes both the body and the routing header. */
        iov.iov_base = &body;
        hdr.msg_control = &control;
        if (nn_sendmsg(s, &hdr, 0) < 0) {
            nn_freemsg(body);
            nn_freemsg(control);
        }
    }
}

void
bench_echo_worker(const char *url, unsigned count, unsigned ms, unsigned worker, int ev_fd)
{
    char src[300];
    static char payload[ECHO_BYTES];
    int *socks = calloc(count, sizeof(*socks));
    int ep = epoll_create1(EPOLL_CLOEXEC), ivl = 24 * 3600 * 1000;
    struct epoll_event ev = {.events = EPOLLIN}, evs[256];
    unsigned long long replies = 0;
    uint64_t start = 0, end;
    char line[64];
    size_t sz;
    int fd, n;

    if (socks == NULL || ep < 0)
        _exit(4);
    memset(payload, 'x', sizeof(payload));
    /* Past the placement workers' addresses (bench_source_url). */
    bench_source_url(url, 100 + worker, src, sizeof(src));
    for (unsigned i = 0; i < count; i++) {
        sz = sizeof(fd);
        if ((socks[i] = nn_socket(AF_SP, NN_REQ)) < 0 ||
            nn_setsockopt(socks[i], NN_REQ, NN_REQ_RESEND_IVL, &ivl, sizeof(ivl)) < 0 ||
            bench_dial(socks[i], src, 60000) < 0 ||
            nn_getsockopt(socks[i], NN_SOL_SOCKET, NN_RCVFD, &fd, &sz) < 0)
            _exit(4);
        ev.data.u32 = i;
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        nn_send(socks[i], payload, sizeof(payload), NN_DONTWAIT);
    }
    /* Count from the first reply on, so that connecting is not timed. */
    for (;;) {
        n = epoll_wait(ep, evs, (int)(sizeof(evs) / sizeof(evs[0])), 5);
        if (start != 0 && bench_now_ns() >= start + (uint64_t)ms * 1000000)
            break;
        for (int i = 0; i < n; i++) {
            unsigned k = evs[i].data.u32;
            void *buf = NULL;

            while (nn_recv(socks[k], &buf, NN_MSG, NN_DONTWAIT) >= 0) {
                nn_freemsg(buf);
                if (start == 0)
                    start = bench_now_ns();
                else
                    replies++;
                nn_send(socks[k], payload, sizeof(payload), NN_DONTWAIT);
            }
        }
    }
    end = bench_now_ns();
    n = snprintf(line, sizeof(line), "E %llu %llu\n", replies,
                 (unsigned long long)((end - start) / 1000000));
    if (write(ev_fd, line, (size_t)n) != n)
        _exit(3);
    /* No nn_close: closing a REQ with a request in flight can abort inside
     * nanomsg 1.1.5 (chunk.c:231 from nn_req_term, seen at the end of a
     * run); the process exit closes every connection. */
    _exit(0);
}
