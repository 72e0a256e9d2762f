/* SPDX-License-Identifier: MIT */
/*
 * The benchmark's own SP client (tests/bench/sp.c) against a real nanomsg
 * REP socket: the simulated agents' bytes must be nanomsg's, or the
 * placement benchmark measures a controller answering nothing. Ports
 * 15860-15864, one per test (Criterion runs them side by side).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>

#include "../bench/bench.h"
#include "util.h"

static int
rep_socket(const char *url)
{
    int s = nn_socket(AF_SP, NN_REP), ms = 5000;

    cr_assert_geq(s, 0);
    cr_assert_geq(nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVTIMEO, &ms, sizeof(ms)), 0);
    cr_assert_geq(nn_bind(s, url), 0, "bind %s: %s", url, nn_strerror(nn_errno()));
    return s;
}

/* Drive c until it has a reply or 5 s pass: the reply's bytes, as a string. */
static char *
reply(struct bench_sp *c)
{
    uint64_t end = mono_ms() + 5000;

    while (mono_ms() < end) {
        struct pollfd p = {.fd = c->fd, .events = POLLIN | POLLOUT};
        const uint8_t *msg;
        size_t len;

        if (c->fd < 0) {
            bench_sp_tick(c, mono_ms());
            usleep(10000);
            continue;
        }
        poll(&p, 1, 50);
        if (bench_sp_next(c, mono_ms(), &msg, &len) > 0)
            return strndup((const char *)msg, len);
    }
    return NULL;
}

/* Drive c until its connection is up (its request, if any, then sent). */
static void
up(struct bench_sp *c)
{
    for (uint64_t end = mono_ms() + 2000; mono_ms() < end && c->state != BENCH_SP_UP;) {
        const uint8_t *m;
        size_t l;

        usleep(5000);
        if (c->fd < 0)
            bench_sp_tick(c, mono_ms());
        else
            cr_assert_eq(bench_sp_next(c, mono_ms(), &m, &l), 0);
    }
    cr_assert_eq(c->state, BENCH_SP_UP);
}

static void
serve(int rep, const char *want, const char *answer)
{
    char *buf = NULL;
    int n = nn_recv(rep, &buf, NN_MSG, 0);

    cr_assert_geq(n, 0, "recv: %s", nn_strerror(nn_errno()));
    cr_assert_eq((size_t)n, strlen(want));
    cr_assert_arr_eq(buf, want, (size_t)n);
    nn_freemsg(buf);
    cr_assert_eq(nn_send(rep, answer, strlen(answer), 0), (int)strlen(answer));
}

Test(bench_sp, a_request_sent_before_the_connection_is_up_is_answered_by_nanomsg_rep)
{
    struct bench_sp c;
    int rep = rep_socket("tcp://127.0.0.1:15860");
    char *r;

    cr_assert_eq(bench_sp_init(&c, "tcp://127.0.0.1;127.0.0.1:15860"), 0);
    cr_assert(c.have_src);
    cr_assert_eq(bench_sp_connect(&c), 0);
    cr_assert_eq(bench_sp_send(&c, (const uint8_t *)"ping", 4), 0);
    /* The request goes once the handshake is done. */
    up(&c);
    serve(rep, "ping", "pong");
    cr_assert_str_eq(r = reply(&c), "pong");
    free(r);
    /* And the next one, on the same connection. */
    cr_assert_eq(bench_sp_send(&c, (const uint8_t *)"again", 5), 0);
    serve(rep, "again", "yes");
    cr_assert_str_eq(r = reply(&c), "yes");
    free(r);
    cr_assert_eq(c.drops, 0);
    bench_sp_close(&c);
    nn_close(rep);
}

Test(bench_sp, the_reply_to_a_request_sent_again_is_dropped)
{
    struct bench_sp c;
    int rep = rep_socket("tcp://127.0.0.1:15861");
    char *buf = NULL, *r;

    cr_assert_eq(bench_sp_init(&c, "tcp://127.0.0.1:15861"), 0);
    cr_assert_eq(bench_sp_connect(&c), 0);
    cr_assert_eq(bench_sp_send(&c, (const uint8_t *)"first", 5), 0);
    up(&c);
    cr_assert_eq(nn_recv(rep, &buf, NN_MSG, 0), 5);
    nn_freemsg(buf);
    /* A second request before the first's reply: the first's reply comes
     * and is not the second's. */
    cr_assert_eq(bench_sp_send(&c, (const uint8_t *)"second", 6), 0);
    cr_assert_eq(nn_send(rep, "stale", 5, 0), 5);
    serve(rep, "second", "fresh");
    cr_assert_str_eq(r = reply(&c), "fresh");
    free(r);
    bench_sp_close(&c);
    nn_close(rep);
}

Test(bench_sp, a_dropped_connection_is_made_again_and_the_request_in_flight_sent_again)
{
    struct bench_sp c;
    int rep = rep_socket("tcp://127.0.0.1:15862");
    char *buf = NULL, *r;

    cr_assert_eq(bench_sp_init(&c, "tcp://127.0.0.1:15862"), 0);
    cr_assert_eq(bench_sp_connect(&c), 0);
    cr_assert_eq(bench_sp_send(&c, (const uint8_t *)"lost", 4), 0);
    up(&c);
    cr_assert_eq(nn_recv(rep, &buf, NN_MSG, 0), 4);
    nn_freemsg(buf);
    /* The server goes away with the request unanswered, and comes back. */
    nn_close(rep);
    usleep(100000);
    {
        const uint8_t *m;
        size_t l;

        cr_assert_eq(bench_sp_next(&c, mono_ms(), &m, &l), 0);
    }
    cr_assert_eq(c.state, BENCH_SP_DOWN);
    cr_assert_eq(c.drops, 1);
    rep = rep_socket("tcp://127.0.0.1:15862");
    up(&c); /* connected again (bench_sp_tick), and the request sent again */
    serve(rep, "lost", "found");
    cr_assert_str_eq(r = reply(&c), "found");
    free(r);
    bench_sp_close(&c);
    nn_close(rep);
}

/* A peer that is not a REP socket, or sends garbage: the connection is
 * dropped, nothing is delivered, nothing crashes. */
static void
raw_peer(unsigned port, const uint8_t *say, size_t len)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    char url[64];
    struct bench_sp c;
    int one = 1, l = socket(AF_INET, SOCK_STREAM, 0), a;
    const uint8_t *m;
    size_t ml;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    cr_assert_eq(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0, "bind: %s", strerror(errno));
    cr_assert_eq(listen(l, 4), 0);
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%u", port);
    cr_assert_eq(bench_sp_init(&c, url), 0);
    cr_assert_eq(bench_sp_connect(&c), 0);
    cr_assert_eq(bench_sp_send(&c, (const uint8_t *)"hello", 5), 0);
    cr_assert_geq(a = accept(l, NULL, NULL), 0);
    cr_assert_eq(write(a, say, len), (ssize_t)len);
    for (uint64_t end = mono_ms() + 2000; mono_ms() < end && c.state != BENCH_SP_DOWN;) {
        usleep(5000);
        cr_assert_eq(bench_sp_next(&c, mono_ms(), &m, &ml), 0);
    }
    cr_assert_eq(c.state, BENCH_SP_DOWN);
    cr_assert_eq(c.drops, 1);
    close(a);
    close(l);
    bench_sp_close(&c);
}

Test(bench_sp, a_peer_of_another_protocol_is_dropped)
{
    static const uint8_t pub[8] = {0, 'S', 'P', 0, 0, 32, 0, 0}; /* NN_PUB */

    raw_peer(15863, pub, sizeof(pub));
}

Test(bench_sp, a_message_larger_than_the_wire_allows_is_dropped)
{
    /* REP's header, then a size of 2^40 bytes. */
    static const uint8_t big[16] = {0, 'S', 'P', 0, 0, 49, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0};

    raw_peer(15864, big, sizeof(big));
}

Test(bench_sp, urls_other_than_tcp_ipv4_are_refused)
{
    struct bench_sp c;

    cr_assert_eq(bench_sp_init(&c, "ipc:///tmp/x"), -EINVAL);
    cr_assert_eq(bench_sp_init(&c, "tcp://localhost:7500"), -EINVAL);
    cr_assert_eq(bench_sp_init(&c, "tcp://127.0.0.1"), -EINVAL);
    cr_assert_eq(bench_sp_init(&c, "tcp://127.0.0.1:0"), -EINVAL);
    cr_assert_eq(bench_sp_init(&c, "tcp://127.0.0.1:70000"), -EINVAL);
    cr_assert_eq(bench_sp_init(&c, "tcp://nowhere;127.0.0.1:7500"), -EINVAL);
    cr_assert_eq(bench_sp_init(&c, "tcp://127.0.0.1:7500"), 0);
}
