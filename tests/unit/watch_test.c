/* SPDX-License-Identifier: MIT */
/*
 * Held syncs (controller/watch.c): each is answered once, by the timer no
 * earlier than its deadline and in deadline order, or at once when a newer
 * sync of its node supersedes it or its node's datagrams stop (cut); the
 * deadline queue stays in order through removals from its middle.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "log.h"

#define NODES 300
#define TICK_MS 100 /* watch.c's tick at a heartbeat of 10 s */

struct held {
    struct ctl_call call;
    Drover__Message req, rep;
    Drover__SyncReq sreq;
    Drover__SyncRep srep;
    uint64_t deadline; /* uv_now at which the timer may answer it */
    int ended;         /* times finish was called */
    bool by_timer;     /* expected to end by the timer */
    Drover__ErrorCode code;
};

static uv_loop_t loop;
static struct ctl ctl;
static struct held *calls[2 * NODES];
static size_t ncalls;
static uint64_t order[2 * NODES]; /* deadlines of the calls the timer ended, in order */
static size_t nordered;

static void
finish(struct ctl_call *c, const Drover__Message *rep)
{
    struct held *h = (struct held *)c;

    h->ended++;
    h->code = rep != NULL ? DROVER__ERROR_CODE__ERR_NONE : c->code;
    if (rep != NULL && h->by_timer) {
        cr_expect_geq(uv_now(&loop), h->deadline, "answered at %llu, before its deadline %llu",
                      (unsigned long long)uv_now(&loop), (unsigned long long)h->deadline);
        order[nordered++] = h->deadline;
    }
}

static void
setup(void)
{
    log_set_level(LOG_ERROR);
    cr_assert_eq(uv_loop_init(&loop), 0);
    memset(&ctl, 0, sizeof(ctl));
    ctl.loop = &loop;
    ctl.cfg.heartbeat_ms = 10000; /* no UDP: the hold is capped at one heartbeat */
    ctl.cfg.node_timeout_ms = 50000;
    cr_assert_not_null(ctl.model = ctl_model_new());
    cr_assert_not_null(ctl.watches = ctl_watches_new(&ctl));
    ncalls = nordered = 0;
}

static void
teardown(void)
{
    ctl_watches_close(ctl.watches);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    ctl_model_free(ctl.model);
    for (size_t i = 0; i < ncalls; i++)
        free(calls[i]);
}

TestSuite(watch, .init = setup, .fini = teardown);

/* A sync of n from an agent that runs generation gen, asking for watch_ms:
 * held (true) or answered at once. */
static struct held *
sync_of(struct ctl_node *n, uint64_t gen, uint32_t watch_ms, bool *held)
{
    struct held *h = calloc(1, sizeof(*h));
    int rc;

    cr_assert_not_null(h);
    drover__message__init(&h->req);
    drover__message__init(&h->rep);
    drover__sync_req__init(&h->sreq);
    drover__sync_rep__init(&h->srep);
    h->sreq.watch_ms = watch_ms;
    h->sreq.generation = gen;
    h->req.sync_req = &h->sreq;
    h->rep.sync_rep = &h->srep;
    h->call.ctl = &ctl;
    h->call.req = &h->req;
    h->call.rep = h->rep;
    h->call.rep.sync_rep = &h->srep;
    h->call.finish = finish;
    h->deadline = (uv_now(&loop) + watch_ms + TICK_MS - 1) / TICK_MS * TICK_MS;
    calls[ncalls++] = h;
    rc = ctl_sync_hold(&h->call, n);
    *held = rc == CTL_PENDING;
    return h;
}

Test(watch, held_syncs_end_once_in_deadline_order_through_removals)
{
    struct ctl_node *nodes[NODES];
    struct held *first[NODES];
    bool held;

    srand(15);
    for (int i = 0; i < NODES; i++) {
        char name[16];

        snprintf(name, sizeof(name), "n%03d", i);
        cr_assert_eq(ctl_node_add(ctl.model, name, &nodes[i]), 0);
        ctl_node_update(ctl.model, nodes[i], false, CTL_NODE_READY, false);
        nodes[i]->generation = 3;
        nodes[i]->dirty = nodes[i]->queued = false; /* as after its commit */
        first[i] = sync_of(nodes[i], 3, 100 + (uint32_t)(rand() % 600), &held);
        cr_assert(held, "a quiet sync of %s is held", name);
        first[i]->by_timer = true;
    }
    cr_assert_eq(ctl_watches_held(ctl.watches), NODES);
    /* Every third node syncs again (its older watch is superseded: ended
     * now, with an error), every seventh is cut: both leave the middle of
     * the queue. */
    for (int i = 0; i < NODES; i++) {
        if (i % 3 == 0) {
            struct held *again = sync_of(nodes[i], 3, 100 + (uint32_t)(rand() % 600), &held);

            cr_assert(held);
            again->by_timer = true;
            first[i]->by_timer = false;
            cr_assert_eq(first[i]->ended, 1, "superseded: ended at once");
            cr_assert_eq(first[i]->code, DROVER__ERROR_CODE__ERR_UNAVAILABLE);
        } else if (i % 7 == 0) {
            first[i]->by_timer = false;
            ctl_watch_cut(ctl.watches, nodes[i]);
            cr_assert_eq(first[i]->ended, 1, "cut: answered at once");
            cr_assert_eq(first[i]->code, DROVER__ERROR_CODE__ERR_NONE);
            cr_assert_not(nodes[i]->watch_held);
        }
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(ctl_watches_held(ctl.watches), 0);
    for (size_t i = 0; i < ncalls; i++)
        cr_assert_eq(calls[i]->ended, 1, "call %zu ended %d times", i, calls[i]->ended);
    cr_assert_gt(nordered, NODES / 2);
    for (size_t i = 1; i < nordered; i++)
        cr_assert_leq(order[i - 1], order[i], "the timer answered deadline %llu before %llu",
                      (unsigned long long)order[i - 1], (unsigned long long)order[i]);
}

Test(watch, a_sync_with_news_is_answered_at_once_and_ends_the_held_one)
{
    struct ctl_node *n;
    struct held *h, *again;
    bool held;

    cr_assert_eq(ctl_node_add(ctl.model, "solo", &n), 0);
    ctl_node_update(ctl.model, n, false, CTL_NODE_READY, false);
    n->generation = 3;
    n->dirty = n->queued = false;
    h = sync_of(n, 3, 500, &held);
    cr_assert(held);
    cr_assert(n->watch_held);
    n->generation = 4; /* the agent runs 3: its next sync has news to get */
    again = sync_of(n, 3, 500, &held);
    cr_assert_not(held, "a sync behind the node's generation is answered now");
    cr_assert_eq(h->ended, 1);
    cr_assert_eq(h->code, DROVER__ERROR_CODE__ERR_UNAVAILABLE);
    cr_assert_eq(again->ended, 0, "answered by its caller, not through finish");
    cr_assert_eq(ctl_watches_held(ctl.watches), 0);
    cr_assert_not(n->watch_held);
}

/* A held watch answered (here woken by a new generation) counts as a sync
 * answered: its agent is about to sync, and is not summoned for two
 * heartbeats though its reply may still wait for a commit
 * (controller/beat.c). */
Test(watch, a_woken_watch_is_not_summoned)
{
    const uint64_t hb = ctl.cfg.heartbeat_ms;
    struct ctl_node *n;
    struct held *h;
    bool held;

    cr_assert_eq(ctl_node_add(ctl.model, "woken", &n), 0);
    ctl_node_update(ctl.model, n, false, CTL_NODE_READY, false);
    n->generation = 3;
    n->dirty = n->queued = false;
    n->takes_summons = true;
    n->sync_ms = 1; /* its watch came long ago */
    h = sync_of(n, 3, 500, &held);
    cr_assert(held);
    cr_assert_not(ctl_beat_wants_summons(&ctl, n, 1 + 3 * hb), "a held watch: no summons");
    n->generation = 4;
    cr_assert(ctl_watch_wake(ctl.watches, n));
    cr_assert_eq(h->ended, 1, "woken: answered");
    cr_assert_not(n->watch_held);
    cr_assert_not(ctl_beat_wants_summons(&ctl, n, mono_ms()), "woken a moment ago: no summons");
    cr_assert(ctl_beat_wants_summons(&ctl, n, mono_ms() + 2 * hb), "silent after it: summoned");
}
