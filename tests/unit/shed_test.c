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
};

static void
on_req(struct nnuv *s, struct nnuv_msg *m, void *arg)
{
    struct seen *seen = arg;

    (void)s;
    seen->n++;
    snprintf(seen->last, sizeof(seen->last), "%.*s", (int)m->len, (char *)m->body);
    cr_assert_eq(nnuv_reply(m, "ok", 2), 0);
}

Test(shed, only_the_newest_request_of_each_sender_is_answered, .timeout = 10)
{
    uv_loop_t loop;
    struct seen seen = {0};
    int err = 0, a, b, ivl = 3600000, t = 2000;
    struct nnuv *rep;
    char buf[16];

    cr_assert_eq(uv_loop_init(&loop), 0);
    rep = nnuv_new(&loop, AF_SP_RAW, NN_REP, on_req, &seen, &err);
    cr_assert_not_null(rep);
    cr_assert_eq(nnuv_bind(rep, "inproc://drover-shed-test"), 0);
    a = nn_socket(AF_SP, NN_REQ);
    b = nn_socket(AF_SP, NN_REQ);
    cr_assert(a >= 0 && b >= 0);
    nn_setsockopt(a, NN_REQ, NN_REQ_RESEND_IVL, &ivl, sizeof(ivl));
    nn_setsockopt(a, NN_SOL_SOCKET, NN_RCVTIMEO, &t, sizeof(t));
    nn_setsockopt(b, NN_SOL_SOCKET, NN_RCVTIMEO, &t, sizeof(t));
    cr_assert_geq(nn_connect(a, "inproc://drover-shed-test"), 0);
    cr_assert_geq(nn_connect(b, "inproc://drover-shed-test"), 0);
    /* a sends three requests, each cancelling the one before; b one. */
    cr_assert_eq(nn_send(a, "a1", 2, 0), 2);
    cr_assert_eq(nn_send(a, "a2", 2, 0), 2);
    cr_assert_eq(nn_send(a, "a3", 2, 0), 2);
    cr_assert_eq(nn_send(b, "b1", 2, 0), 2);
    usleep(100 * 1000); /* all four queued at the REP */
    cr_assert_eq(nnuv_start(rep), 0);
    for (int i = 0; i < 50 && seen.n < 2; i++)
        uv_run(&loop, UV_RUN_NOWAIT), usleep(10 * 1000);
    cr_assert_eq(seen.n, 2, "handled %d requests", seen.n);
    cr_assert_eq(nnuv_shed(rep), 2);
    /* The answers reach both senders: a's is to its newest request. */
    cr_assert_eq(nn_recv(a, buf, sizeof(buf), 0), 2);
    cr_assert_eq(nn_recv(b, buf, sizeof(buf), 0), 2);
    nn_close(a);
    nn_close(b);
    nnuv_close(rep);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
}
