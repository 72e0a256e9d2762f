/* SPDX-License-Identifier: MIT */
/*
 * The raw REP sockets bound to TCP (common/sprep.c through nnuv.c): real
 * nanomsg REQ sockets must get their own answers, whatever order they come
 * in; a peer that is not a REQ socket, sends too much or sends garbage loses
 * its connection and nothing else; a newer request on a connection replaces
 * the one still queued; an answer to a peer gone is dropped. Ports
 * 15870-15883, one per test (Criterion runs them side by side).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>
#include <sodium.h>

#include "nnuv.h"
#include "sprep.h"
#include "util.h"
#include "wire.h"

#define MAXGOT 64

struct server {
    uv_loop_t loop;
    struct nnuv *rep;
    struct nnuv_msg *got[MAXGOT];
    int ngot;
    bool echo; /* answer each request at once with "re:" and its body */
};

static void
on_req(struct nnuv *s, struct nnuv_msg *m, void *arg)
{
    struct server *sv = arg;
    char out[256];

    (void)s;
    if (sv->echo) {
        int n = snprintf(out, sizeof(out), "re:%.*s", (int)m->len, (const char *)m->body);

        cr_assert_eq(nnuv_reply(m, out, (size_t)n), 0);
        sv->ngot++;
        return;
    }
    cr_assert_lt(sv->ngot, MAXGOT);
    sv->got[sv->ngot++] = m;
}

static void
serve(struct server *sv, int port, bool echo)
{
    char url[64];
    int rc;

    memset(sv, 0, sizeof(*sv));
    sv->echo = echo;
    cr_assert_eq(uv_loop_init(&sv->loop), 0);
    sv->rep = nnuv_new(&sv->loop, AF_SP_RAW, NN_REP, on_req, sv, &rc);
    cr_assert_not_null(sv->rep);
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", port);
    cr_assert_eq(nnuv_bind(sv->rep, url), 0, "bind %s: %s", url, strerror(-rc));
    cr_assert_eq(nnuv_start(sv->rep), 0);
}

static void
pump(struct server *sv, int ms)
{
    for (uint64_t end = mono_ms() + (uint64_t)ms; mono_ms() < end;) {
        uv_run(&sv->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
}

/* Pump until n requests were delivered (or 3 s passed). */
static void
pump_until(struct server *sv, int n)
{
    for (uint64_t end = mono_ms() + 3000; mono_ms() < end && sv->ngot < n;) {
        uv_run(&sv->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    cr_assert_eq(sv->ngot, n, "%d requests delivered, not %d", sv->ngot, n);
}

static void
finish(struct server *sv)
{
    for (int i = 0; i < sv->ngot; i++)
        if (!sv->echo && sv->got[i] != NULL)
            nnuv_msg_free(sv->got[i]);
    nnuv_close(sv->rep);
    uv_run(&sv->loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&sv->loop), 0);
}

static int
req_socket(int port)
{
    char url[64];
    int s = nn_socket(AF_SP, NN_REQ);

    cr_assert_geq(s, 0);
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", port);
    cr_assert_geq(nn_connect(s, url), 0);
    return s;
}

/* The reply on nanomsg REQ socket s, pumping the server meanwhile. */
static char *
req_reply(struct server *sv, int s)
{
    for (uint64_t end = mono_ms() + 3000; mono_ms() < end;) {
        char *buf = NULL, *out;
        int n = nn_recv(s, &buf, NN_MSG, NN_DONTWAIT);

        if (n >= 0) {
            out = strndup(buf, (size_t)n);
            nn_freemsg(buf);
            return out;
        }
        uv_run(&sv->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    return NULL;
}

/* A plain TCP client: connected (the kernel completes it), blocking. */
static int
raw_client(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "%s", strerror(errno));
    return fd;
}

static const uint8_t req_hello[8] = {0, 'S', 'P', 0, 0, 48, 0, 0};

/* One framed request: size, then a request id (top bit set), then body. */
static size_t
frame(uint8_t *out, uint32_t id, const char *body)
{
    size_t n = strlen(body) + 4;

    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
    id |= 0x80000000u;
    out[8] = (uint8_t)(id >> 24);
    out[9] = (uint8_t)(id >> 16);
    out[10] = (uint8_t)(id >> 8);
    out[11] = (uint8_t)id;
    memcpy(out + 12, body, strlen(body));
    return 12 + strlen(body);
}

/* Is fd closed by the peer (EOF or reset) within ms? Data before it is
 * skipped. */
static bool
closed_within(struct server *sv, int fd, int ms)
{
    for (uint64_t end = mono_ms() + (uint64_t)ms; mono_ms() < end;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        uint8_t buf[4096];

        uv_run(&sv->loop, UV_RUN_NOWAIT);
        if (poll(&p, 1, 1) == 1) {
            ssize_t k = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

            if (k == 0 || (k < 0 && errno != EAGAIN))
                return true;
        }
    }
    return false;
}

Test(sprep, urls_it_serves_and_those_it_leaves_to_nanomsg)
{
    struct sockaddr_in sa;

    cr_assert(sprep_url("tcp://127.0.0.1:7401", &sa));
    cr_assert_eq(ntohs(sa.sin_port), 7401);
    cr_assert_eq(sa.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    cr_assert(sprep_url("tcp://*:7401", &sa));
    cr_assert_eq(sa.sin_addr.s_addr, htonl(INADDR_ANY));
    cr_assert(sprep_url("tcp://0.0.0.0:7401", &sa));
    cr_assert(sprep_url("tcp://lo:7401", &sa), "an interface, as nanomsg binds to one");
    cr_assert_eq(sa.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    cr_assert_not(sprep_url("tcp://[::1]:7401", &sa));
    cr_assert_not(sprep_url("tcp://no-such-interface:7401", &sa));
    cr_assert_not(sprep_url("tcp://127.0.0.1;127.0.0.2:7401", &sa));
    cr_assert_not(sprep_url("tcp://127.0.0.1:0", &sa));
    cr_assert_not(sprep_url("tcp://127.0.0.1:65536", &sa));
    cr_assert_not(sprep_url("tcp://127.0.0.1:", &sa));
    cr_assert_not(sprep_url("tcp://127.0.0.1", &sa));
    cr_assert_not(sprep_url("ipc:///tmp/x", &sa));
    cr_assert_not(sprep_url("inproc://x", &sa));
}

Test(sprep, nanomsg_req_sockets_each_get_their_own_answer)
{
    struct server sv;
    int s[5];
    char body[32], want[32], *r;

    serve(&sv, 15870, true);
    for (int i = 0; i < 5; i++) {
        s[i] = req_socket(15870);
        snprintf(body, sizeof(body), "hello-%d", i);
        cr_assert_eq(nn_send(s[i], body, strlen(body), NN_DONTWAIT), (int)strlen(body));
    }
    for (int i = 0; i < 5; i++) {
        snprintf(want, sizeof(want), "re:hello-%d", i);
        cr_assert_str_eq(r = req_reply(&sv, s[i]), want);
        free(r);
        /* And again on the same connection. */
        snprintf(body, sizeof(body), "again-%d", i);
        cr_assert_eq(nn_send(s[i], body, strlen(body), NN_DONTWAIT), (int)strlen(body));
        snprintf(want, sizeof(want), "re:again-%d", i);
        cr_assert_str_eq(r = req_reply(&sv, s[i]), want);
        free(r);
        nn_close(s[i]);
    }
    finish(&sv);
}

Test(sprep, answers_held_and_given_out_of_order_reach_their_senders)
{
    struct server sv;
    int a, b;
    char *r;

    serve(&sv, 15871, false);
    a = req_socket(15871);
    b = req_socket(15871);
    cr_assert_eq(nn_send(a, "first", 5, NN_DONTWAIT), 5);
    pump_until(&sv, 1);
    cr_assert_eq(nn_send(b, "second", 6, NN_DONTWAIT), 6);
    pump_until(&sv, 2);
    cr_assert_eq(sv.got[1]->len, 6);
    cr_assert_arr_eq(sv.got[1]->body, "second", 6);
    /* The later one first (a held watch answered after other calls). */
    cr_assert_eq(nnuv_reply(sv.got[1], "to-b", 4), 0);
    sv.got[1] = NULL;
    cr_assert_str_eq(r = req_reply(&sv, b), "to-b");
    free(r);
    cr_assert_eq(nnuv_reply(sv.got[0], "to-a", 4), 0);
    sv.got[0] = NULL;
    cr_assert_str_eq(r = req_reply(&sv, a), "to-a");
    free(r);
    nn_close(a);
    nn_close(b);
    finish(&sv);
}

Test(sprep, a_newer_request_replaces_the_one_still_queued_from_its_connection)
{
    struct server sv;
    uint8_t buf[256], rep[256];
    size_t n;
    int fd;

    serve(&sv, 15872, false);
    nnuv_stop(sv.rep); /* nothing handed on: both wait in the queue */
    fd = raw_client(15872);
    cr_assert_eq(write(fd, req_hello, 8), 8);
    n = frame(buf, 1, "old");
    n += frame(buf + n, 2, "new");
    cr_assert_eq(write(fd, buf, n), (ssize_t)n);
    pump(&sv, 100);
    cr_assert_eq(sv.ngot, 0);
    cr_assert_geq(nnuv_backlog_ms(sv.rep), 50, "the queue has waited");
    cr_assert_eq(nnuv_start(sv.rep), 0);
    pump_until(&sv, 1);
    cr_assert_eq(sv.got[0]->len, 3);
    cr_assert_arr_eq(sv.got[0]->body, "new", 3);
    cr_assert_eq(nnuv_shed(sv.rep), 1);
    cr_assert_eq(nnuv_backlog_ms(sv.rep), 0, "drained");
    /* The answer carries the newer request's id back. */
    cr_assert_eq(nnuv_reply(sv.got[0], "ok", 2), 0);
    sv.got[0] = NULL;
    pump(&sv, 20);
    cr_assert_eq(recv(fd, rep, 8, MSG_WAITALL), 8); /* REP's header */
    cr_assert_eq(rep[5], 49);
    cr_assert_eq(recv(fd, rep, 14, MSG_WAITALL), 14);
    cr_assert_eq(rep[7], 6); /* the size: id + "ok" */
    cr_assert_eq(rep[11], 2);
    cr_assert_eq(rep[8], 0x80);
    cr_assert_arr_eq(rep + 12, "ok", 2);
    close(fd);
    finish(&sv);
}

Test(sprep, a_peer_that_is_not_a_req_socket_is_disconnected)
{
    static const uint8_t pub[8] = {0, 'S', 'P', 0, 0, 32, 0, 0};
    static const uint8_t http[8] = {'G', 'E', 'T', ' ', '/', ' ', 'H', 'T'};
    struct server sv;
    uint8_t buf[64];
    size_t n;
    int fd;

    serve(&sv, 15873, true);
    fd = raw_client(15873);
    cr_assert_eq(write(fd, pub, 8), 8);
    n = frame(buf, 1, "hi");
    write(fd, buf, n);
    cr_assert(closed_within(&sv, fd, 2000));
    close(fd);
    fd = raw_client(15873);
    cr_assert_eq(write(fd, http, 8), 8);
    cr_assert(closed_within(&sv, fd, 2000));
    close(fd);
    cr_assert_eq(sv.ngot, 0);
    finish(&sv);
}

Test(sprep, a_message_larger_than_the_wire_allows_drops_its_connection_alone)
{
    static const uint8_t big[8] = {0, 0, 0, 0, 0x7f, 0, 0, 0}; /* 2 GiB */
    struct server sv;
    int fd, s;
    char *r;

    serve(&sv, 15874, true);
    s = req_socket(15874);
    fd = raw_client(15874);
    cr_assert_eq(write(fd, req_hello, 8), 8);
    cr_assert_eq(write(fd, big, 8), 8);
    cr_assert(closed_within(&sv, fd, 2000));
    close(fd);
    /* The others are served as before. */
    cr_assert_eq(nn_send(s, "still", 5, NN_DONTWAIT), 5);
    cr_assert_str_eq(r = req_reply(&sv, s), "re:still");
    free(r);
    nn_close(s);
    finish(&sv);
}

Test(sprep, a_request_without_a_backtrace_is_dropped_and_the_connection_kept)
{
    struct server sv;
    uint8_t buf[64], rep[64];
    size_t n;
    int fd;

    serve(&sv, 15875, true);
    fd = raw_client(15875);
    cr_assert_eq(write(fd, req_hello, 8), 8);
    /* Size 6, a word without its top bit, then 2 bytes: no request id. */
    n = frame(buf, 7, "xy");
    buf[8] &= 0x7f;
    cr_assert_eq(write(fd, buf, n), (ssize_t)n);
    pump(&sv, 50);
    cr_assert_eq(sv.ngot, 0);
    /* Then a good one, written a byte at a time. */
    n = frame(buf, 8, "ok");
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(write(fd, buf + i, 1), 1);
        pump(&sv, 2);
    }
    pump_until(&sv, 1);
    cr_assert_eq(recv(fd, rep, 8 + 8 + 4 + 5, MSG_WAITALL), 25);
    cr_assert_arr_eq(rep + 20, "re:ok", 5);
    close(fd);
    finish(&sv);
}

Test(sprep, garbage_after_the_header_never_crashes_the_server)
{
    struct server sv;
    uint8_t junk[4096];
    int s;
    char *r;

    serve(&sv, 15876, true);
    for (int round = 0; round < 50; round++) {
        int fd = raw_client(15876);

        if (round % 2 == 0)
            cr_assert_eq(write(fd, req_hello, 8), 8);
        randombytes_buf(junk, sizeof(junk));
        /* Sizes small enough to be taken as frames, now and then. */
        if (round % 5 == 0)
            memset(junk, 0, 7);
        write(fd, junk, 1 + randombytes_uniform(sizeof(junk)));
        pump(&sv, 2);
        close(fd);
    }
    pump(&sv, 50);
    s = req_socket(15876);
    cr_assert_eq(nn_send(s, "alive", 5, NN_DONTWAIT), 5);
    cr_assert_str_eq(r = req_reply(&sv, s), "re:alive");
    free(r);
    nn_close(s);
    finish(&sv);
}

Test(sprep, an_answer_to_a_peer_gone_is_dropped)
{
    struct server sv;
    int s;

    serve(&sv, 15877, false);
    s = req_socket(15877);
    cr_assert_eq(nn_send(s, "bye", 3, NN_DONTWAIT), 3);
    pump_until(&sv, 1);
    nn_close(s);
    pump(&sv, 100); /* the connection's end is read */
    cr_assert_eq(nnuv_reply(sv.got[0], "late", 4), 0);
    sv.got[0] = NULL;
    pump(&sv, 20);
    finish(&sv);
}

/* A peer that reset its connection with two answers owed: neither write
 * may raise SIGPIPE (which kills a process that does not handle it), and
 * the server goes on serving others. */
Test(sprep, answers_owed_to_a_peer_that_reset_raise_no_sigpipe)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    struct server sv;
    uint8_t buf[256];
    size_t n;
    char *r;
    int fd, s;

    serve(&sv, 15882, false);
    fd = raw_client(15882);
    cr_assert_eq(write(fd, req_hello, 8), 8);
    n = frame(buf, 1, "one");
    cr_assert_eq(write(fd, buf, n), (ssize_t)n);
    pump_until(&sv, 1);
    n = frame(buf, 2, "two");
    cr_assert_eq(write(fd, buf, n), (ssize_t)n);
    pump_until(&sv, 2);
    cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    close(fd); /* a reset, not read by the server before it answers */
    usleep(20 * 1000);
    cr_assert_eq(nnuv_reply(sv.got[0], "late-1", 6), 0);
    sv.got[0] = NULL;
    cr_assert_eq(nnuv_reply(sv.got[1], "late-2", 6), 0);
    sv.got[1] = NULL;
    pump(&sv, 20);
    sv.echo = true;
    s = req_socket(15882);
    cr_assert_eq(nn_send(s, "next", 4, NN_DONTWAIT), 4);
    cr_assert_str_eq(r = req_reply(&sv, s), "re:next");
    free(r);
    nn_close(s);
    finish(&sv);
}

Test(sprep, requests_held_past_the_close_are_answered_into_nothing)
{
    struct server sv;
    struct nnuv_msg *held;
    int s;

    serve(&sv, 15878, false);
    s = req_socket(15878);
    cr_assert_eq(nn_send(s, "held", 4, NN_DONTWAIT), 4);
    pump_until(&sv, 1);
    held = sv.got[0];
    sv.got[0] = NULL;
    /* The server closes with the request still held (a watch, at a
     * controller's stop); its answer comes after. */
    nnuv_close(sv.rep);
    uv_run(&sv.loop, UV_RUN_NOWAIT);
    cr_assert_eq(nnuv_reply(held, "gone", 4), 0);
    uv_run(&sv.loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&sv.loop), 0);
    nn_close(s);
}

Test(sprep, a_large_request_and_answer_arrive_whole)
{
    struct server sv;
    size_t big = 3u << 20;
    char *body = malloc(big), *out = NULL;
    int s = -1, n = -1;

    serve(&sv, 15879, false);
    for (size_t i = 0; i < big; i++)
        body[i] = (char)('a' + i % 26);
    s = req_socket(15879);
    n = (int)WIRE_MAX_SIZE; /* as nnuv_new sets it: nanomsg's default is 1 MiB */
    cr_assert_eq(nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVMAXSIZE, &n, sizeof(n)), 0);
    n = -1;
    cr_assert_eq(nn_send(s, body, big, NN_DONTWAIT), (int)big);
    pump_until(&sv, 1);
    cr_assert_eq(sv.got[0]->len, big);
    cr_assert_arr_eq(sv.got[0]->body, body, big);
    cr_assert_eq(nnuv_reply(sv.got[0], body, big), 0);
    sv.got[0] = NULL;
    for (uint64_t end = mono_ms() + 3000; mono_ms() < end && n < 0;) {
        n = nn_recv(s, &out, NN_MSG, NN_DONTWAIT);
        uv_run(&sv.loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    cr_assert_eq(n, (int)big);
    cr_assert_arr_eq(out, body, big);
    nn_freemsg(out);
    nn_close(s);
    free(body);
    finish(&sv);
}

Test(sprep, a_port_in_use_is_an_error_at_bind)
{
    struct server sv, other;
    int rc;

    serve(&sv, 15880, true);
    cr_assert_eq(uv_loop_init(&other.loop), 0);
    other.rep = nnuv_new(&other.loop, AF_SP_RAW, NN_REP, on_req, &other, &rc);
    cr_assert_eq(nnuv_bind(other.rep, "tcp://127.0.0.1:15880"), -EADDRINUSE);
    nnuv_close(other.rep);
    uv_run(&other.loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&other.loop), 0);
    finish(&sv);
}

Test(sprep, a_peer_that_never_says_what_it_is_is_disconnected)
{
    struct server sv;
    int fd;

    serve(&sv, 15881, true);
    fd = raw_client(15881);
    /* Connected, and silent: closed within 2-3 s (two sweeps). */
    cr_assert(closed_within(&sv, fd, 5000));
    close(fd);
    finish(&sv);
}

/* The server's end of the connection whose client end is cfd. */
static int
server_end(int cfd, int port)
{
    struct sockaddr_in me, a, b;
    socklen_t len = sizeof(me);

    cr_assert_eq(getsockname(cfd, (struct sockaddr *)&me, &len), 0);
    for (int fd = 3; fd < 1024; fd++) {
        socklen_t la = sizeof(a), lb = sizeof(b);

        if (fd == cfd || getsockname(fd, (struct sockaddr *)&a, &la) < 0 ||
            getpeername(fd, (struct sockaddr *)&b, &lb) < 0 || a.sin_family != AF_INET)
            continue;
        if (ntohs(a.sin_port) == port && b.sin_port == me.sin_port)
            return fd;
    }
    return -1;
}

/* A watch is held for minutes on a connection that carries nothing
 * meanwhile: the server's end sends TCP keepalives well inside the idle
 * timeouts of NATs and load balancers (a few minutes). */
Test(sprep, an_idle_connection_is_kept_alive)
{
    struct server sv;
    int fd, sfd = -1, on = 0, idle = 0;
    socklen_t len = sizeof(on);

    serve(&sv, 15883, true);
    fd = raw_client(15883);
    for (uint64_t end = mono_ms() + 2000; sfd < 0 && mono_ms() < end;) {
        pump(&sv, 10);
        sfd = server_end(fd, 15883);
    }
    cr_assert_geq(sfd, 0, "the server never accepted the connection");
    cr_assert_eq(getsockopt(sfd, SOL_SOCKET, SO_KEEPALIVE, &on, &len), 0);
    cr_assert_eq(on, 1, "no TCP keepalive on the server's end");
    len = sizeof(idle);
    cr_assert_eq(getsockopt(sfd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, &len), 0);
    cr_assert(idle > 0 && idle <= 60, "keepalive after %d s idle", idle);
    close(fd);
    finish(&sv);
}
