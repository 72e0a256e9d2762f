/* SPDX-License-Identifier: MIT */
/*
 * watch.c: "sync now" for one node, at O(1) per change (issue 15).
 *
 * An agent's quiet sync is a long poll (Nomad clients' blocking
 * Node.GetClientAllocs with an index is the picture): it carries watch_ms
 * and the generation the agent runs, and when the controller has nothing
 * new for it (same generation, no full report wanted, nothing of the node
 * left to write) it holds the call (pending, ended with ctl_call_end)
 * instead of answering "nothing new" at once. The held call is answered,
 * through the sync's own view (agents.c: the whole set when the generation
 * moved), when the node's generation changes, or when watch_ms is over
 * (capped at one heartbeat; for a node heard by UDP heartbeats (beat.c),
 * at half the node timeout, or, when it takes summonses, at
 * CTL_WATCH_HOLD_MAX_MS: hold_max; the agent's resend wait is never
 * reached). The answer has watched set: the agent sends its next sync at
 * once, so a watch is out nearly all the time, on
 * the one REQ socket the agent already has (a REQ socket has one request
 * outstanding; a second socket per agent would double the controller's
 * connections).
 *
 * A change costs one write, to the one node whose set changed: once per
 * loop turn (ctl_notify_flush's uv_check) the model's notify queue (nodes
 * whose generation moved) is walked and each node's held sync, found by
 * name in a map, is answered with its new set. The PUB socket of earlier
 * controllers (every notify written to every subscriber's connection,
 * O(nodes) per change) now only serves agents that predate watches: a node
 * with no sync held is published to as before, which costs a seal and no
 * write when no SUB socket is connected.
 *
 * One held sync per node: a newer sync from the node (the agent had
 * something to report: its REQ socket dropped the held one) ends the older
 * one with an error nobody reads. Held syncs are kept in a binary heap by
 * deadline (a long hold ends at a random point of its last quarter, so a
 * list kept in order took a walk of thousands of steps per insertion at
 * 10,000 nodes: 39 % of the controller's CPU while the watches taken by a
 * placement ended) and one timer fires for the earliest. A stopping
 * controller answers every held sync ERR_UNAVAILABLE (the agent's next
 * heartbeat syncs again, wherever the leader is: the watch is the sync,
 * and follows the leader as the sync does); a controller that loses the
 * lead exits (leader.c), which drops the held syncs with its connections.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ctl.h"
#include "log.h"

#define WATCH_HOLD_MIN_MS 100u
/* Deadlines are rounded up to a multiple of a tick, a tenth of a heartbeat
 * between these bounds: the timer fires once per tick for every hold that
 * ends in it, not once per agent (10,000 agents beating once a second
 * spread their deadlines a tenth of a millisecond apart: a loop turn, a
 * commit turn and a timer per answer). An answer at most a tick late is far
 * inside the agent's resend wait (the hold and two heartbeats). Measured at
 * 1,000 agents (bench, CPU per quiet heartbeat): 15.9 us with a tick of
 * 20 ms, 11.2-11.6 us with 100 ms, the wakeups fewer. */
#define WATCH_TICK_MIN_MS 10u
#define WATCH_TICK_MAX_MS 100u

struct watch {
    struct ctl_call *c; /* pending until answered */
    char node[NODE_NAME_MAX + 2];
    uint64_t gen;
    uint64_t deadline; /* uv_now */
    uint64_t seq;      /* equal deadlines end in the order they were held */
    size_t at;         /* index in the heap */
};

struct ctl_watches {
    struct ctl *ctl;
    struct ctl_map *by_node; /* name -> held watch */
    struct watch **heap;     /* min-heap by (deadline, seq) */
    size_t nheld, cap;
    uint64_t seq;
    uint64_t tick; /* deadlines are multiples of it */
    uv_timer_t timer;
    uint64_t woken, expired; /* answered because of a change / the hold ended */
};

struct ctl_watches *
ctl_watches_new(struct ctl *ctl)
{
    struct ctl_watches *ws = calloc(1, sizeof(*ws));

    if (ws == NULL || (ws->by_node = ctl_map_new()) == NULL) {
        free(ws);
        return NULL;
    }
    ws->ctl = ctl;
    ws->tick = ctl->cfg.heartbeat_ms / 10;
    ws->tick = ws->tick < WATCH_TICK_MIN_MS ? WATCH_TICK_MIN_MS : ws->tick;
    ws->tick = ws->tick > WATCH_TICK_MAX_MS ? WATCH_TICK_MAX_MS : ws->tick;
    uv_timer_init(ctl->loop, &ws->timer);
    ws->timer.data = ws;
    return ws;
}

static bool
earlier(const struct watch *a, const struct watch *b)
{
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void
place(struct ctl_watches *ws, struct watch *w, size_t i)
{
    ws->heap[i] = w;
    w->at = i;
}

static void
sift_up(struct ctl_watches *ws, struct watch *w, size_t i)
{
    while (i > 0 && earlier(w, ws->heap[(i - 1) / 2])) {
        place(ws, ws->heap[(i - 1) / 2], i);
        i = (i - 1) / 2;
    }
    place(ws, w, i);
}

static void
sift_down(struct ctl_watches *ws, struct watch *w, size_t i)
{
    for (;;) {
        size_t k = 2 * i + 1;

        if (k >= ws->nheld)
            break;
        if (k + 1 < ws->nheld && earlier(ws->heap[k + 1], ws->heap[k]))
            k++;
        if (!earlier(ws->heap[k], w))
            break;
        place(ws, ws->heap[k], i);
        i = k;
    }
    place(ws, w, i);
}

static struct watch *
first(const struct ctl_watches *ws)
{
    return ws->nheld > 0 ? ws->heap[0] : NULL;
}

static void on_timer(uv_timer_t *t);

static void
rearm(struct ctl_watches *ws)
{
    struct watch *w = first(ws);
    uint64_t now = uv_now(ws->ctl->loop);

    if (w == NULL) {
        uv_timer_stop(&ws->timer);
        return;
    }
    uv_timer_start(&ws->timer, on_timer, w->deadline > now ? w->deadline - now : 0, 0);
}

static void
unlink_watch(struct ctl_watches *ws, struct watch *w)
{
    struct ctl_node *n = ctl_node_find(ws->ctl->model, w->node);
    struct watch *last = ws->heap[--ws->nheld];

    /* The last leaf takes w's place, and moves up or down from there. */
    if (last != w) {
        if (w->at > 0 && earlier(last, ws->heap[(w->at - 1) / 2]))
            sift_up(ws, last, w->at);
        else
            sift_down(ws, last, w->at);
    }
    ctl_map_del(ws->by_node, w->node);
    if (n == NULL)
        return;
    n->watch_held = n->watch_long = false;
    /* Its answer is on the way (a woken watch's may wait for the next
     * commit first) and the agent syncs again when it has it: as for a
     * sync answered, no summons for two heartbeats (beat.c). Measured at
     * 10,000 agents: the datagrams heard while the woken watches of a
     * placement waited for their commit summoned thousands of nodes that
     * were about to sync anyway (8.7 % of the controller's time in the
     * placement's first second; a real agent syncs twice). */
    n->sync_ms = mono_ms();
}

/* The held sync's answer: its view (agents.c) builds it as it is now;
 * w is freed. */
static void
answer(struct ctl_watches *ws, struct watch *w)
{
    struct ctl_call *c = w->c;

    unlink_watch(ws, w);
    free(w);
    ctl_call_end(c, &c->rep);
}

/* Answer w now, out of deadline order: the timer follows the new first. */
static void
answer_now(struct ctl_watches *ws, struct watch *w)
{
    bool was_first = first(ws) == w;

    answer(ws, w);
    if (was_first)
        rearm(ws);
}

/* Superseded: its agent's REQ socket dropped it, so the answer is never
 * read; an error ends it without a commit. */
static void
drop(struct ctl_watches *ws, struct watch *w)
{
    struct ctl_call *c = w->c;

    unlink_watch(ws, w);
    free(w);
    c->logged = true; /* not a bad request */
    ctl_call_end_error(c, DROVER__ERROR_CODE__ERR_UNAVAILABLE, "superseded by a newer sync");
}

static void
on_timer(uv_timer_t *t)
{
    struct ctl_watches *ws = t->data;
    uint64_t now = uv_now(ws->ctl->loop);
    struct watch *w;

    while ((w = first(ws)) != NULL && w->deadline <= now) {
        ws->expired++;
        answer(ws, w);
    }
    rearm(ws);
}

/* Into the heap: -1 when it cannot grow. */
static int
insert(struct ctl_watches *ws, struct watch *w)
{
    if (ws->nheld == ws->cap) {
        size_t cap = ws->cap != 0 ? 2 * ws->cap : 64;
        struct watch **h = realloc(ws->heap, cap * sizeof(*h));

        if (h == NULL)
            return -1;
        ws->heap = h;
        ws->cap = cap;
    }
    w->seq = ws->seq++;
    sift_up(ws, w, ws->nheld++);
    return 0;
}

bool
ctl_watch_held_long(const struct ctl *ctl, const struct ctl_node *n)
{
    return ctl_beat_recent(n, mono_ms(), 2 * ctl->cfg.heartbeat_ms);
}

/*
 * The longest hold for n: a node whose UDP heartbeats (beat.c) were heard
 * within two heartbeats may be held up to half the node timeout (its agent
 * asks for four heartbeats), so a node whose datagrams stop still syncs,
 * and is heard, well within the timeout; one whose datagrams say it takes
 * summonses, up to CTL_WATCH_HOLD_MAX_MS (node_tick answers it as soon as
 * its datagrams stop, and a controller that finds it without a watch
 * summons it); any other, one heartbeat (its syncs are its heartbeats).
 */
static uint32_t
hold_max(const struct ctl *ctl, const struct ctl_node *n)
{
    uint64_t max = ctl->cfg.heartbeat_ms;

    if (ctl_watch_held_long(ctl, n))
        max = n->takes_summons ? ctl_summon_watch_ms(ctl) : ctl_beat_watch_ms(ctl);
    return max > CTL_WATCH_HOLD_MAX_MS ? CTL_WATCH_HOLD_MAX_MS : (uint32_t)max;
}

/*
 * From ctl_h_sync, its reply and view ready: 0 to answer now, or
 * CTL_PENDING when the sync is a watch with nothing new to say (see the
 * top of the file). Any sync from n ends n's older held one.
 */
int
ctl_sync_hold(struct ctl_call *c, struct ctl_node *n)
{
    const Drover__SyncReq *r = c->req->sync_req;
    struct ctl_watches *ws = c->ctl->watches;
    Drover__SyncRep *sr = c->rep.sync_rep;
    uint32_t hold = r->watch_ms, max;
    struct watch *w;

    if (ws == NULL)
        return 0;
    if ((w = ctl_map_get(ws->by_node, n->name)) != NULL) {
        bool was_first = first(ws) == w;

        drop(ws, w);
        if (was_first)
            rearm(ws);
    }
    if (hold == 0)
        return 0;
    sr->watched = true;
    if (r->full || r->leaving || sr->want_full || n->generation != r->generation || n->queued ||
        n->dirty || n->state == CTL_NODE_DOWN)
        return 0;
    if ((w = calloc(1, sizeof(*w))) == NULL)
        return 0; /* answered now: the agent asks again */
    hold = hold < WATCH_HOLD_MIN_MS ? WATCH_HOLD_MIN_MS : hold;
    max = hold_max(c->ctl, n);
    hold = hold > max ? max : hold;
    /* A long hold ends up to a quarter early, at random: watches taken
     * together (every node after a placement or a failover) would
     * otherwise all end in the same tick, and 10,000 answers and 10,000
     * new syncs in one burst kept the loop from reading the heartbeat
     * datagrams (2,496 dropped for a full receive buffer in a bench run). */
    if (n->takes_summons && hold > 4 * c->ctl->cfg.heartbeat_ms)
        hold -= randombytes_uniform(hold / 4);
    w->c = c;
    snprintf(w->node, sizeof(w->node), "%s", n->name);
    w->gen = r->generation;
    w->deadline = (uv_now(c->ctl->loop) + hold + ws->tick - 1) / ws->tick * ws->tick;
    if (ctl_map_put(ws->by_node, w->node, w) < 0) {
        free(w);
        return 0;
    }
    if (insert(ws, w) < 0) {
        ctl_map_del(ws->by_node, w->node);
        free(w);
        return 0;
    }
    c->what = "watch";
    n->watch_held = true;
    n->watch_long = hold > ctl_beat_watch_ms(c->ctl) && hold > c->ctl->cfg.heartbeat_ms;
    if (first(ws) == w)
        rearm(ws);
    return CTL_PENDING;
}

/* n's set changed: answer its watch. False when it has none held (the
 * caller then publishes, for an agent that predates watches). */
bool
ctl_watch_wake(struct ctl_watches *ws, const struct ctl_node *n)
{
    struct watch *w = ws != NULL ? ctl_map_get(ws->by_node, n->name) : NULL;

    if (w == NULL)
        return false;
    if (w->gen == n->generation) /* changed and changed back: nothing new */
        return true;
    ws->woken++;
    /* Within the commit's budget of lines (model.c), like the instances'. */
    if (ctl_inst_line(ws->ctl->model)) {
        log_info("node_woken", "node=%s generation=%llu", n->name,
                 (unsigned long long)n->generation);
    } else {
        ws->ctl->model->quiet_woken++;
        log_debug("node_woken", "node=%s generation=%llu", n->name,
                  (unsigned long long)n->generation);
    }
    answer_now(ws, w);
    return true;
}

/* n's agent has something to sync (its UDP heartbeat says another
 * generation or digest): its held watch, if any, is answered now. */
void
ctl_watch_poke(struct ctl_watches *ws, const struct ctl_node *n)
{
    struct watch *w = ws != NULL ? ctl_map_get(ws->by_node, n->name) : NULL;

    /* Held with another generation than the node's: ctl_watch_wake
     * answers it (this loop turn). */
    if (w == NULL || w->gen != n->generation)
        return;
    answer_now(ws, w);
}

void
ctl_watch_cut(struct ctl_watches *ws, struct ctl_node *n)
{
    struct watch *w = ws != NULL ? ctl_map_get(ws->by_node, n->name) : NULL;

    if (w == NULL) {
        n->watch_held = n->watch_long = false;
        return;
    }
    answer_now(ws, w);
}

size_t
ctl_watches_held(const struct ctl_watches *ws)
{
    return ws != NULL ? ws->nheld : 0;
}

uint64_t
ctl_watches_woken(const struct ctl_watches *ws)
{
    return ws != NULL ? ws->woken : 0;
}

/* Stopping: every held sync is answered ERR_UNAVAILABLE (the agent
 * syncs again at its next heartbeat). */
void
ctl_watches_stop(struct ctl_watches *ws)
{
    struct watch *w;

    if (ws == NULL)
        return;
    uv_timer_stop(&ws->timer);
    while ((w = first(ws)) != NULL) {
        struct ctl_call *c = w->c;

        unlink_watch(ws, w);
        free(w);
        ctl_call_end_error(c, DROVER__ERROR_CODE__ERR_UNAVAILABLE, "the controller is stopping");
    }
}

static void
on_close(uv_handle_t *h)
{
    struct ctl_watches *ws = h->data;

    ctl_map_free(ws->by_node);
    free(ws->heap);
    free(ws);
}

/* After ctl_watches_stop; frees in the timer's close callback. */
void
ctl_watches_close(struct ctl_watches *ws)
{
    if (ws == NULL)
        return;
    ctl_watches_stop(ws);
    uv_close((uv_handle_t *)&ws->timer, on_close);
}
