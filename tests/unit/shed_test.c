/* SPDX-License-Identifier: MIT */
/*
 * shed_test.c: a raw REP (common/nnuv.c) hands on only each sender's
 * newest waiting request; the stale ones (cancelled by their REQ, whose
 * reply it would throw away) are shed, and the newest is answered and
 * reaches its sender. Real nanomsg sockets over inproc.
 */
#include <criterion/criterion.h>
#include <string.h>
#include <unistd.h>

#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>

#include "nnuv.h"

struct seen {
    int n;
    char last[16];
    char all[64]; /* every body handed on, each followed by a space */
};

static void
on_req(struct nnuv *s, struct nnuv_msg *m, void *arg)
{
    struct seen *seen = arg;

    (void)s;
    seen->n++;
    snprintf(seen->last, sizeof(seen->last), "%.*s", (int)m->len, (char *)m->body);
    snprintf(seen->all + strlen(seen->all), sizeof(seen->all) - strlen(seen->all), "%s ",
             seen->last);
    cr_assert_eq(nnuv_reply(m, "ok", 2), 0);
}

/*
 * One request with its SP header (request id id), from a raw REQ: unlike a
 * REQ, which keeps only its newest request while it has no pipe yet, a raw
 * REQ sends each message as it is, in order, blocking until a pipe exists,
 * so every request really reaches the REP: the same stream a REQ that
 * re-sends and cancels puts on the wire under load.
 */
static void
send_req(int s, const char *body, uint8_t id)
{
    uint8_t hdr[4] = {0x80, 0, 0, id}; /* the top bit marks the request id */
    size_t sz = sizeof(hdr);
    char ctl[NN_CMSG_SPACE(sizeof(size_t) + sizeof(hdr))];
    struct nn_cmsghdr *c = (struct nn_cmsghdr *)(void *)ctl;
    struct nn_iovec iov = {(void *)body, strlen(body)};
    struct nn_msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl)};

    memset(ctl, 0, sizeof(ctl));
    c->cmsg_len = NN_CMSG_LEN(sizeof(size_t) + sizeof(hdr));
    c->cmsg_level = PROTO_SP;
    c->cmsg_type = SP_HDR;
    memcpy(NN_CMSG_DATA(c), &sz, sizeof(sz));
    memcpy(NN_CMSG_DATA(c) + sizeof(sz), hdr, sizeof(hdr));
    cr_assert_eq(nn_sendmsg(s, &mh, 0), (int)strlen(body));
}

Test(shed, only_the_newest_request_of_each_sender_is_answered, .timeout = 10)
{
    uv_loop_t loop;
    struct seen seen = {0};
    int err = 0, a, b, t = 2000;
    struct nnuv *rep;
    char buf[16];

    cr_assert_eq(uv_loop_init(&loop), 0);
    rep = nnuv_new(&loop, AF_SP_RAW, NN_REP, on_req, &seen, &err);
    cr_assert_not_null(rep);
    cr_assert_eq(nnuv_bind(rep, "inproc://drover-shed-test"), 0);
    a = nn_socket(AF_SP_RAW, NN_REQ);
    b = nn_socket(AF_SP_RAW, NN_REQ);
    cr_assert(a >= 0 && b >= 0);
    nn_setsockopt(a, NN_SOL_SOCKET, NN_RCVTIMEO, &t, sizeof(t));
    nn_setsockopt(b, NN_SOL_SOCKET, NN_RCVTIMEO, &t, sizeof(t));
    nn_setsockopt(a, NN_SOL_SOCKET, NN_SNDTIMEO, &t, sizeof(t));
    nn_setsockopt(b, NN_SOL_SOCKET, NN_SNDTIMEO, &t, sizeof(t));
    cr_assert_geq(nn_connect(a, "inproc://drover-shed-test"), 0);
    cr_assert_geq(nn_connect(b, "inproc://drover-shed-test"), 0);
    /* a sends three requests, as a REQ that re-sent twice does; b one. */
    send_req(a, "a1", 1);
    send_req(a, "a2", 2);
    send_req(a, "a3", 3);
    send_req(b, "b1", 1);
    usleep(100 * 1000); /* inproc hands them to the REP's queue */
    cr_assert_eq(nnuv_start(rep), 0);
    for (int i = 0; i < 50 && seen.n < 2; i++)
        uv_run(&loop, UV_RUN_NOWAIT), usleep(10 * 1000);
    cr_assert_eq(seen.n, 2, "handled %d requests", seen.n);
    /* a's newest and b's only request, in whichever order they came. */
    cr_assert(strstr(seen.all, "a3 ") && strstr(seen.all, "b1 ") && !strstr(seen.all, "a1 ") &&
                  !strstr(seen.all, "a2 "),
              "handed on: %s", seen.all);
    cr_assert_eq(nnuv_shed(rep), 2, "shed %d", (int)nnuv_shed(rep));
    /* The answers reach both senders: a's is to its newest request. */
    cr_assert_eq(nn_recv(a, buf, sizeof(buf), 0), 2);
    cr_assert_eq(nn_recv(b, buf, sizeof(buf), 0), 2);
    nn_close(a);
    nn_close(b);
    nnuv_close(rep);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
}

struct lag {
    int n;
    uint64_t backlog[16]; /* nnuv_backlog_ms as each request was handed on */
};

static void
on_slow(struct nnuv *s, struct nnuv_msg *m, void *arg)
{
    struct lag *l = arg;

    if (l->n < 16)
        l->backlog[l->n] = nnuv_backlog_ms(s);
    l->n++;
    usleep(30 * 1000); /* a handler that takes its time */
    nnuv_msg_free(m);
}

/*
 * The overload signal (controller/front.c): the backlog's age grows while
 * the queue is never found empty and is 0 once it was drained empty; a
 * wake-up starts no new batch once it took 20 ms (here: one batch each, as
 * the handler takes 30 ms), then the loop's timers and other sockets run.
 */
Test(shed, the_backlog_age_grows_until_the_queue_is_empty, .timeout = 20)
{
    uv_loop_t loop;
    struct lag l = {0};
    int err = 0, a, t = 5000;
    struct nnuv *rep;
    char body[8];

    cr_assert_eq(uv_loop_init(&loop), 0);
    rep = nnuv_new(&loop, AF_SP_RAW, NN_REP, on_slow, &l, &err);
    cr_assert_not_null(rep);
    cr_assert_eq(nnuv_bind(rep, "inproc://drover-backlog-test"), 0);
    a = nn_socket(AF_SP_RAW, NN_REQ);
    cr_assert(a >= 0);
    nn_setsockopt(a, NN_SOL_SOCKET, NN_SNDTIMEO, &t, sizeof(t));
    cr_assert_geq(nn_connect(a, "inproc://drover-backlog-test"), 0);
    /* 6 batches' worth from one sender: each batch hands on its newest. */
    for (int i = 0; i < 6 * 256 - 100; i++) {
        snprintf(body, sizeof(body), "%d", i);
        send_req(a, body, (uint8_t)i);
    }
    usleep(200 * 1000);
    cr_assert_eq(nnuv_backlog_ms(rep), 0, "nothing received yet");
    cr_assert_eq(nnuv_start(rep), 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_eq(l.n, 1, "one wake-up handed on %d batches' requests", l.n);
    cr_assert_lt(l.backlog[0], 30, "first: %llu ms", (unsigned long long)l.backlog[0]);
    cr_assert_geq(nnuv_backlog_ms(rep), 30, "the queue is not empty yet");
    for (int i = 0; i < 50 && l.n < 6; i++)
        uv_run(&loop, UV_RUN_NOWAIT), usleep(10 * 1000);
    cr_assert_eq(l.n, 6, "handed on %d", l.n);
    cr_assert_geq(l.backlog[3], 90, "fourth: %llu ms", (unsigned long long)l.backlog[3]);
    cr_assert_geq(l.backlog[4], 120, "fifth: %llu ms", (unsigned long long)l.backlog[4]);
    cr_assert_eq(l.backlog[5], 0, "the last batch emptied the queue before it was handed on");
    cr_assert_eq(nnuv_backlog_ms(rep), 0);
    nn_close(a);
    nnuv_close(rep);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
}
