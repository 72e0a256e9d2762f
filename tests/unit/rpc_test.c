/* SPDX-License-Identifier: MIT */
/*
 * rpc_test.c: the one RPC client (common/rpc.c) alone: the pure choices
 * (backoff, hold, which endpoint next) and, against small fake controllers
 * (nanomsg REP sockets on loopback, ports 7680-7689, polled from the test's
 * loop), timeout, resend with a fresh seal, cancel, a late reply ignored,
 * following ERR_NOT_LEADER, holding on ERR_BUSY, moving on a timeout.
 */
#include <criterion/criterion.h>
#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>
#include <string.h>
#include <uv.h>

#include "env.h"
#include "rpc.h"
#include "wire.h"

/* ---- pure ---- */

Test(rpc, backoff_is_base_then_doubling_with_jitter_and_capped, .timeout = 2)
{
    cr_assert_eq(rpc_backoff_ms(1000, 0, 0xffffffffu, 0), 1000);
    for (uint32_t n = 1; n < 40; n++) {
        uint64_t lo = 1000ull << (n < 4 ? n : 4), min = UINT64_MAX, max = 0;

        for (uint32_t k = 0; k < 2000; k++) {
            uint64_t w = rpc_backoff_ms(1000, n, k * 2654435761u, 0);

            cr_assert(w >= lo && w <= lo + lo / 2, "n=%u w=%llu", n, (unsigned long long)w);
            min = w < min ? w : min;
            max = w > max ? w : max;
        }
        cr_assert(max - min > lo / 4, "jitter spreads the waits (n=%u)", n);
    }
    cr_assert_eq(rpc_backoff_ms(1000, 9, 12345, 5000), 5000);
    cr_assert_eq(rpc_backoff_ms(1000, 0, 12345, 500), 500);
}

Test(rpc, hold_is_retry_after_plus_up_to_half, .timeout = 2)
{
    for (uint32_t k = 0; k < 1000; k++) {
        uint64_t w = rpc_hold_ms(200, k * 2654435761u);

        cr_assert(w >= 200 && w <= 300);
    }
    cr_assert(rpc_hold_ms(0, 0) == 1000);
    cr_assert(rpc_hold_ms(1, 0) == 10);
    cr_assert(rpc_hold_ms(1000000, 0) == 60000);
}

static void
eps3(struct rpc_eps *e)
{
    memset(e, 0, sizeof(*e));
    e->n = 3;
    strcpy(e->url[0], "tcp://10.0.0.1:7401");
    strcpy(e->url[1], "tcp://10.0.0.2:7401");
    strcpy(e->url[2], "tcp://10.0.0.3:7401");
}

Test(rpc, timeout_moves_to_the_next_endpoint_cyclically, .timeout = 2)
{
    struct rpc_eps e;

    eps3(&e);
    cr_assert_eq(rpc_choose(&e, 0, RPC_WHY_TIMEOUT, NULL), 1);
    cr_assert_eq(rpc_choose(&e, 1, RPC_WHY_TIMEOUT, NULL), 2);
    cr_assert_eq(rpc_choose(&e, 2, RPC_WHY_TIMEOUT, NULL), 0);
    e.n = 1;
    cr_assert_eq(rpc_choose(&e, 0, RPC_WHY_TIMEOUT, NULL), 0, "one endpoint: stay");
}

Test(rpc, not_leader_moves_to_the_named_leader_in_the_list, .timeout = 2)
{
    struct rpc_eps e;

    eps3(&e);
    cr_assert_eq(rpc_choose(&e, 0, RPC_WHY_NOT_LEADER, "tcp://10.0.0.3:7401"), 2);
    cr_assert_eq(rpc_choose(&e, 2, RPC_WHY_NOT_LEADER, "tcp://10.0.0.1:7401"), 0);
    cr_assert(!e.learned);
}

Test(rpc, not_leader_outside_the_list_is_learned_when_valid, .timeout = 2)
{
    struct rpc_eps e;

    eps3(&e);
    cr_assert_eq(rpc_choose(&e, 1, RPC_WHY_NOT_LEADER, "tcp://10.0.0.9:7401"), 3);
    cr_assert(e.learned);
    cr_assert_str_eq(e.url[3], "tcp://10.0.0.9:7401");
    cr_assert_eq(rpc_eps_count(&e), 4);
    /* a timeout at the learned one goes round the list again */
    cr_assert_eq(rpc_choose(&e, 3, RPC_WHY_TIMEOUT, NULL), 0);
    /* another learned leader replaces it */
    cr_assert_eq(rpc_choose(&e, 0, RPC_WHY_NOT_LEADER, "tcp://10.0.0.8:7401"), 3);
    cr_assert_str_eq(e.url[3], "tcp://10.0.0.8:7401");
}

Test(rpc, not_leader_unknown_or_junk_goes_to_the_next, .timeout = 2)
{
    struct rpc_eps e;

    eps3(&e);
    cr_assert_eq(rpc_choose(&e, 0, RPC_WHY_NOT_LEADER, ""), 1);
    cr_assert_eq(rpc_choose(&e, 0, RPC_WHY_NOT_LEADER, NULL), 1);
    cr_assert_eq(rpc_choose(&e, 1, RPC_WHY_NOT_LEADER, "10.0.0.9:7401"), 2);
    cr_assert_eq(rpc_choose(&e, 2, RPC_WHY_NOT_LEADER, "tcp://*:7401"), 0);
    cr_assert_eq(rpc_choose(&e, 2, RPC_WHY_NOT_LEADER, "tcp://x:99999"), 0);
    cr_assert(!e.learned);
}

Test(rpc, endpoint_lists_parse_strictly, .timeout = 2)
{
    char out[ENV_ENDPOINTS_MAX][ENV_ENDPOINT_MAX], why[256];
    size_t n;

    cr_assert_eq(env_parse_endpoints("tcp://a:1", out, ENV_ENDPOINTS_MAX, &n, why, sizeof why), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(env_parse_endpoints("tcp://a:1, tcp://b:2 ,tcp://10.0.0.3:7401", out,
                                     ENV_ENDPOINTS_MAX, &n, why, sizeof why),
                 0);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(out[1], "tcp://b:2");
    cr_assert_str_eq(out[2], "tcp://10.0.0.3:7401");
    cr_assert_lt(env_parse_endpoints("", out, ENV_ENDPOINTS_MAX, &n, why, sizeof why), 0);
    cr_assert_lt(
        env_parse_endpoints("tcp://a:1,,tcp://b:2", out, ENV_ENDPOINTS_MAX, &n, why, sizeof why),
        0);
    cr_assert(strstr(why, "empty"));
    cr_assert_lt(env_parse_endpoints("tcp://a:1,", out, ENV_ENDPOINTS_MAX, &n, why, sizeof why), 0);
    cr_assert_lt(
        env_parse_endpoints("tcp://a:1,tcp://a:1", out, ENV_ENDPOINTS_MAX, &n, why, sizeof why), 0);
    cr_assert(strstr(why, "twice"));
    cr_assert_lt(env_parse_endpoints("tcp://*:1", out, ENV_ENDPOINTS_MAX, &n, why, sizeof why), 0);
    cr_assert_lt(
        env_parse_endpoints("tcp://a:1,http://b:2", out, ENV_ENDPOINTS_MAX, &n, why, sizeof why),
        0);
    cr_assert(strstr(why, "http://b:2"));
    cr_assert_lt(env_parse_endpoints("tcp://a:1,tcp://b:2,tcp://c:3", out, 2, &n, why, sizeof why),
                 0);
    cr_assert(strstr(why, "more than 2"));
}

/* ---- against fake controllers ---- */

/* FK_STALE: a standby that names the old leader twice, then leads. */
enum fake_mode { FK_OK, FK_SILENT, FK_NOT_LEADER, FK_BUSY_ONCE, FK_LATE, FK_STALE };

struct fake {
    int sock;
    char url[64];
    enum fake_mode mode;
    const char *leader;
    int got;              /* requests received */
    uint64_t counters[8]; /* their envelope counters */
    uint64_t held_at;     /* FK_LATE: when the request came */
    bool held;
};

struct world {
    uv_loop_t loop;
    uv_timer_t poll;
    struct fake fake[2];
    int nfake;
    struct wire_sender ctl, agent;
    struct rpc *rpc;
    int calls;
    enum rpc_result last;
    Drover__Message__BodyCase last_body;
    char last_endpoint[ENV_ENDPOINT_MAX];
    uint64_t replied_at, sent_at;
    int moves;
    bool stop_after_reply;
};

static void
fake_answer(struct world *w, struct fake *f, Drover__Message__BodyCase body)
{
    Drover__Message m = DROVER__MESSAGE__INIT;
    Drover__Ok ok = DROVER__OK__INIT;
    Drover__Error er = DROVER__ERROR__INIT;
    uint8_t *buf = NULL;
    size_t len = 0;

    m.body_case = body;
    if (body == DROVER__MESSAGE__BODY_OK) {
        m.ok = &ok;
    } else {
        m.error = &er;
        er.message = "no";
        if (f->mode == FK_NOT_LEADER || f->mode == FK_STALE) {
            er.code = DROVER__ERROR_CODE__ERR_NOT_LEADER;
            er.leader = (char *)f->leader;
        } else {
            er.code = DROVER__ERROR_CODE__ERR_BUSY;
            er.retry_after_ms = 100;
        }
    }
    cr_assert_eq(wire_seal(&w->ctl, &m, &buf, &len), 0);
    cr_assert_geq(nn_send(f->sock, buf, len, 0), 0, "send: %s", nn_strerror(nn_errno()));
    free(buf);
}

static void
fake_poll(struct world *w, struct fake *f)
{
    void *in = NULL;
    int n;

    /* A REP socket forgets the request it holds at its next nn_recv. */
    if (f->held && uv_now(&w->loop) - f->held_at < 300)
        return;
    if (f->held) {
        f->held = false;
        fake_answer(w, f, DROVER__MESSAGE__BODY_OK);
    }
    if (f->sock < 0 || (n = nn_recv(f->sock, &in, NN_MSG, NN_DONTWAIT)) < 0)
        return;
    {
        struct wire_header hdr;
        Drover__Message *m = NULL;

        cr_assert_eq(wire_open(in, (size_t)n, &hdr, &m), 0);
        wire_msg_free(m);
        if (f->got < 8)
            f->counters[f->got] = hdr.counter;
    }
    nn_freemsg(in);
    f->got++;
    switch (f->mode) {
    case FK_OK:
        fake_answer(w, f, DROVER__MESSAGE__BODY_OK);
        break;
    case FK_SILENT:
        if (f->got >= 2) /* the resend is answered */
            fake_answer(w, f, DROVER__MESSAGE__BODY_OK);
        break;
    case FK_NOT_LEADER:
        fake_answer(w, f, DROVER__MESSAGE__BODY_ERROR);
        break;
    case FK_BUSY_ONCE:
        fake_answer(w, f, f->got == 1 ? DROVER__MESSAGE__BODY_ERROR : DROVER__MESSAGE__BODY_OK);
        break;
    case FK_STALE:
        fake_answer(w, f, f->got <= 2 ? DROVER__MESSAGE__BODY_ERROR : DROVER__MESSAGE__BODY_OK);
        break;
    case FK_LATE:
        f->held = true;
        f->held_at = uv_now(&w->loop);
        break;
    }
}

static void
on_poll(uv_timer_t *t)
{
    struct world *w = t->data;

    for (int i = 0; i < w->nfake; i++)
        fake_poll(w, &w->fake[i]);
}

static void
on_rpc(struct rpc *r, struct rpc_reply *rep, void *arg)
{
    struct world *w = arg;

    w->calls++;
    w->last = rep->result;
    w->last_body = rep->msg ? rep->msg->body_case : DROVER__MESSAGE__BODY__NOT_SET;
    snprintf(w->last_endpoint, sizeof w->last_endpoint, "%s", rep->endpoint);
    w->replied_at = uv_now(&w->loop);
    if (w->stop_after_reply)
        uv_stop(&w->loop);
}

static void
on_move(struct rpc *r, const char *ep, void *arg)
{
    struct world *w = arg;

    w->moves++;
}

static void
on_deadline(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static void
world_init(struct world *w, int nfake, const int *ports, const bool *bound)
{
    memset(w, 0, sizeof(*w));
    wire_keyring_reset();
    wire_sender_init(&w->ctl, "controller");
    wire_sender_init(&w->agent, "node1");
    cr_assert_eq(uv_loop_init(&w->loop), 0);
    w->nfake = nfake;
    for (int i = 0; i < nfake; i++) {
        struct fake *f = &w->fake[i];

        snprintf(f->url, sizeof f->url, "tcp://127.0.0.1:%d", ports[i]);
        f->sock = -1;
        if (!bound[i])
            continue;
        f->sock = nn_socket(AF_SP, NN_REP);
        cr_assert_geq(f->sock, 0);
        cr_assert_geq(nn_bind(f->sock, f->url), 0, "bind %s", f->url);
    }
    uv_timer_init(&w->loop, &w->poll);
    w->poll.data = w;
    uv_timer_start(&w->poll, on_poll, 2, 2);
}

static void
world_rpc(struct world *w, uint32_t resends)
{
    char eps[2][ENV_ENDPOINT_MAX];
    struct rpc_opts o = {0};
    int err;

    for (int i = 0; i < w->nfake; i++)
        snprintf(eps[i], sizeof eps[i], "%s", w->fake[i].url);
    o.endpoints = (const char(*)[ENV_ENDPOINT_MAX])eps;
    o.nendpoints = (size_t)w->nfake;
    o.sender = &w->agent;
    o.resends = resends;
    o.name = "test";
    o.cb = on_rpc;
    o.on_move = on_move;
    o.arg = w;
    w->rpc = rpc_new(&w->loop, &o, &err);
    cr_assert_not_null(w->rpc, "rpc_new: %d", err);
    cr_assert_eq(rpc_start(w->rpc), 0);
}

static void
world_send(struct world *w, uint64_t timeout_ms)
{
    Drover__Message m = DROVER__MESSAGE__INIT;
    Drover__Ok ok = DROVER__OK__INIT;

    m.body_case = DROVER__MESSAGE__BODY_OK;
    m.ok = &ok;
    w->sent_at = uv_now(&w->loop);
    cr_assert_eq(rpc_send(w->rpc, &m, timeout_ms), 0);
}

static void
world_run(struct world *w, uint64_t ms)
{
    uv_timer_t deadline;

    uv_timer_init(&w->loop, &deadline);
    uv_timer_start(&deadline, on_deadline, ms, 0);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&deadline, NULL);
    uv_run(&w->loop, UV_RUN_NOWAIT);
}

static void
world_fini(struct world *w)
{
    rpc_close(w->rpc);
    uv_close((uv_handle_t *)&w->poll, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
    for (int i = 0; i < w->nfake; i++)
        if (w->fake[i].sock >= 0)
            nn_close(w->fake[i].sock);
}

Test(rpc, a_reply_reaches_the_owner, .timeout = 5)
{
    struct world w;
    int ports[] = {7680};
    bool bound[] = {true};

    world_init(&w, 1, ports, bound);
    world_rpc(&w, 0);
    w.stop_after_reply = true;
    world_send(&w, 2000);
    world_run(&w, 3000);
    cr_assert_eq(w.calls, 1);
    cr_assert_eq(w.last, RPC_REPLY);
    cr_assert_eq(w.last_body, DROVER__MESSAGE__BODY_OK);
    cr_assert(!rpc_busy(w.rpc));
    world_fini(&w);
}

Test(rpc, unanswered_is_a_timeout_after_its_wait, .timeout = 5)
{
    struct world w;
    int ports[] = {7681};
    bool bound[] = {false}; /* nobody listens */

    world_init(&w, 1, ports, bound);
    world_rpc(&w, 0);
    w.stop_after_reply = true;
    world_send(&w, 200);
    world_run(&w, 3000);
    cr_assert_eq(w.calls, 1);
    cr_assert_eq(w.last, RPC_TIMEOUT);
    cr_assert_geq(w.replied_at - w.sent_at, 200);
    cr_assert_lt(w.replied_at - w.sent_at, 1000);
    cr_assert_eq(rpc_misses(w.rpc), 1);
    world_fini(&w);
}

Test(rpc, resend_is_sealed_afresh_and_waits_longer, .timeout = 5)
{
    struct world w;
    int ports[] = {7682};
    bool bound[] = {true};

    world_init(&w, 1, ports, bound);
    w.fake[0].mode = FK_SILENT;
    world_rpc(&w, 3);
    w.stop_after_reply = true;
    world_send(&w, 200);
    world_run(&w, 3000);
    cr_assert_eq(w.calls, 1);
    cr_assert_eq(w.last, RPC_REPLY);
    /* (a redial may make nanomsg itself repeat the first on the new
     * connection before the resend replaces it) */
    cr_assert_geq(w.fake[0].got, 2);
    cr_assert_neq(w.fake[0].counters[0], w.fake[0].counters[w.fake[0].got - 1],
                  "a fresh seal: a new counter");
    /* the first wait was 200 ms, the second at least 400 */
    cr_assert_geq(w.replied_at - w.sent_at, 200);
    world_fini(&w);
}

Test(rpc, a_late_reply_to_a_cancelled_request_is_ignored, .timeout = 5)
{
    struct world w;
    int ports[] = {7683};
    bool bound[] = {true};

    world_init(&w, 1, ports, bound);
    w.fake[0].mode = FK_LATE; /* answers 300 ms after it is asked */
    world_rpc(&w, 0);
    world_send(&w, 2000);
    world_run(&w, 100);
    cr_assert_eq(w.fake[0].got, 1);
    cr_assert(rpc_busy(w.rpc));
    rpc_cancel(w.rpc);
    cr_assert(!rpc_busy(w.rpc));
    world_run(&w, 2500); /* the answer comes, the timeout would have too */
    cr_assert(!w.fake[0].held, "the fake did answer");
    cr_assert_eq(w.calls, 0, "neither the late reply nor a timeout reaches the owner");
    world_fini(&w);
}

Test(rpc, a_new_send_replaces_the_outstanding_one, .timeout = 5)
{
    struct world w;
    int ports[] = {7684};
    bool bound[] = {true};

    world_init(&w, 1, ports, bound);
    w.fake[0].mode = FK_LATE;
    world_rpc(&w, 0);
    world_send(&w, 2000);
    world_run(&w, 50);
    world_send(&w, 2000);
    world_run(&w, 1500);
    cr_assert_eq(w.calls, 1, "one answer, to the newer request");
    cr_assert_eq(w.last, RPC_REPLY);
    world_fini(&w);
}

Test(rpc, not_leader_is_followed_to_the_leader, .timeout = 5)
{
    struct world w;
    int ports[] = {7685, 7686};
    bool bound[] = {true, true};

    world_init(&w, 2, ports, bound);
    w.fake[0].mode = FK_NOT_LEADER;
    w.fake[0].leader = "tcp://127.0.0.1:7686";
    world_rpc(&w, 0);
    w.stop_after_reply = true;
    world_send(&w, 2000);
    world_run(&w, 3000);
    cr_assert_eq(w.calls, 1);
    cr_assert_eq(w.last, RPC_REPLY);
    cr_assert_eq(w.last_body, DROVER__MESSAGE__BODY_OK, "the owner never sees NOT_LEADER");
    cr_assert_str_eq(w.last_endpoint, "tcp://127.0.0.1:7686");
    cr_assert_eq(w.fake[0].got, 1);
    cr_assert_eq(w.fake[1].got, 1);
    cr_assert_eq(w.moves, 1);
    world_fini(&w);
}

Test(rpc, not_leader_everywhere_ends_with_the_error, .timeout = 8)
{
    struct world w;
    int ports[] = {7687, 7688};
    bool bound[] = {true, true};

    world_init(&w, 2, ports, bound);
    w.fake[0].mode = w.fake[1].mode = FK_NOT_LEADER;
    w.fake[0].leader = w.fake[1].leader = ""; /* an election: nobody leads */
    world_rpc(&w, 0);
    w.stop_after_reply = true;
    world_send(&w, 2000);
    world_run(&w, 6000);
    cr_assert_eq(w.calls, 1);
    cr_assert_eq(w.last, RPC_REPLY);
    cr_assert_eq(w.last_body, DROVER__MESSAGE__BODY_ERROR);
    cr_assert_geq(w.fake[0].got + w.fake[1].got, 4, "went round the list");
    world_fini(&w);
}

Test(rpc, busy_holds_then_resends_to_the_same_endpoint, .timeout = 5)
{
    struct world w;
    int ports[] = {7689};
    bool bound[] = {true};

    world_init(&w, 1, ports, bound);
    w.fake[0].mode = FK_BUSY_ONCE; /* retry_after_ms = 100 */
    world_rpc(&w, 0);
    w.stop_after_reply = true;
    world_send(&w, 2000);
    world_run(&w, 3000);
    cr_assert_eq(w.calls, 1);
    cr_assert_eq(w.last_body, DROVER__MESSAGE__BODY_OK);
    cr_assert_eq(w.fake[0].got, 2);
    cr_assert_geq(w.replied_at - w.sent_at, 100);
    cr_assert_neq(w.fake[0].counters[0], w.fake[0].counters[1]);
    world_fini(&w);
}

Test(rpc, a_timeout_moves_to_the_next_controller, .timeout = 5)
{
    struct world w;
    int ports[] = {7690, 7691};
    bool bound[] = {false, true}; /* the first is gone */

    world_init(&w, 2, ports, bound);
    world_rpc(&w, 1);
    w.stop_after_reply = true;
    world_send(&w, 200);
    world_run(&w, 3000);
    cr_assert_eq(w.calls, 1);
    cr_assert_eq(w.last, RPC_REPLY);
    cr_assert_str_eq(w.last_endpoint, "tcp://127.0.0.1:7691");
    cr_assert_eq(w.moves, 1);
    world_fini(&w);
}

/* The leader was killed: its standby, asked next, names it for a moment
 * more (it has not polled the lease yet). The client asks the standby
 * again instead of going back to the dead one and waiting there. */
Test(rpc, a_standby_naming_the_controller_just_left_is_asked_again, .timeout = 5)
{
    struct world w;
    int ports[] = {15740, 15741};
    bool bound[] = {false, true}; /* the first is gone */

    world_init(&w, 2, ports, bound);
    w.fake[1].mode = FK_STALE;
    w.fake[1].leader = "tcp://127.0.0.1:15740";
    world_rpc(&w, UINT32_MAX);
    w.stop_after_reply = true;
    world_send(&w, 200);
    world_run(&w, 4000);
    cr_assert_eq(w.calls, 1);
    cr_assert_eq(w.last_body, DROVER__MESSAGE__BODY_OK);
    cr_assert_str_eq(w.last_endpoint, "tcp://127.0.0.1:15741");
    cr_assert_eq(w.fake[1].got, 3);
    cr_assert_eq(w.moves, 1, "went back to the dead controller");
    cr_assert_lt(w.replied_at - w.sent_at, 1500);
    world_fini(&w);
}
