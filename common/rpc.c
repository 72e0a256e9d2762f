/* SPDX-License-Identifier: MIT */
/*
 * rpc.c: one sealed request at a time over a nanomsg REQ socket on the
 * loop, re-sealed on resend, following the leading controller (rpc.h).
 *
 * The state is small and explicit: IDLE (nothing outstanding), WAITING (a
 * request sent, the timer armed for its timeout) and HOLDING (an ERR_BUSY
 * or a leaderless ERR_NOT_LEADER answer: the timer re-sends it). The
 * request's packed plaintext is kept so that each send is a fresh seal
 * (a new counter and nonce); the owner's Drover__Message is never kept.
 *
 * A timeout moves to the next endpoint (with one endpoint: redials it) only
 * after opts.redial_ms of silence, so that a controller that is slow but
 * there keeps its connection while the request is re-sent.
 */
#include "rpc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>
#include <sodium.h>

#include "log.h"
#include "nnuv.h"

#define NN_RESEND_OFF (24 * 3600 * 1000)
#define RPC_MAX_HOLDS 8        /* ERR_BUSY answers to one request before the owner sees one */
#define RPC_LEADERLESS_MS 250u /* NOT_LEADER with no leader known: wait, then the next */
#define RPC_DISTRUST_MS 1000u  /* a standby naming the controller just left: ask it again */

enum rpc_st { RPC_IDLE, RPC_WAITING, RPC_HOLDING };

struct rpc {
    uv_loop_t *loop;
    struct nnuv *sock;
    struct wire_sender *sender; /* borrowed */
    struct rpc_eps eps;
    size_t cur;
    uint64_t cap_ms;
    uint64_t redial_ms;
    uint32_t resends;
    char name[16];
    rpc_cb cb;
    rpc_move_cb on_move;
    void *arg;
    enum rpc_st st;
    uint8_t *body; /* the request, packed; sealed afresh for every send */
    size_t blen;
    uint64_t base;               /* its timeout */
    uint64_t sent_at;            /* uv_now */
    uint32_t tries;              /* re-sends of this request after a timeout */
    uint32_t hops;               /* NOT_LEADER moves of this request */
    uint32_t holds;              /* ERR_BUSY holds of this request */
    uint32_t misses;             /* timeouts in a row without any reply */
    uint64_t heard_at, moved_at; /* uv_now of the last reply, of the last redial */
    size_t left;                 /* the endpoint last left because it failed */
    uint64_t left_at;            /* uv_now of that; 0: none since the last answer */
    uv_timer_t timer;
    bool closing;
};

size_t
rpc_eps_count(const struct rpc_eps *e)
{
    return e->n + (e->learned ? 1 : 0);
}

size_t
rpc_choose(struct rpc_eps *e, size_t cur, enum rpc_why why, const char *leader)
{
    size_t n = rpc_eps_count(e);
    char host[256];

    if (why == RPC_WHY_NOT_LEADER && leader != NULL && leader[0] != '\0') {
        for (size_t i = 0; i < n; i++) {
            if (strcmp(e->url[i], leader) == 0)
                return i;
        }
        if (strlen(leader) < ENV_ENDPOINT_MAX &&
            env_parse_endpoint(leader, host, sizeof(host), NULL) == 0 && !strchr(host, '*')) {
            memcpy(e->url[e->n], leader, strlen(leader) + 1);
            e->learned = true;
            return e->n;
        }
    }
    return n == 0 ? 0 : (cur + 1) % n;
}

uint64_t
rpc_backoff_ms(uint64_t base, uint32_t n, uint32_t rnd, uint64_t cap)
{
    uint64_t ms = base << (n < 4 ? n : 4);
    uint64_t w = n == 0 ? base : ms + rnd % (ms / 2 + 1);

    return cap > 0 && w > cap ? cap : w;
}

/* retry_after_ms as the hold's base: 1 s when 0, within [10 ms, 60 s]. */
static uint64_t
hold_base(uint32_t retry_after_ms)
{
    uint64_t ms = retry_after_ms == 0 ? 1000 : retry_after_ms;

    return ms < 10 ? 10 : ms > 60000 ? 60000 : ms;
}

uint64_t
rpc_hold_ms(uint32_t retry_after_ms, uint32_t rnd)
{
    uint64_t ms = hold_base(retry_after_ms);

    return ms + rnd % (ms / 2 + 1);
}

uint64_t
rpc_hold_max_ms(uint32_t retry_after_ms)
{
    uint64_t ms = hold_base(retry_after_ms);

    return ms + ms / 2;
}

static void on_timer(uv_timer_t *t);

/* Seal the kept request afresh and send it; arm the timer. A send the
 * socket refuses counts as lost: the timeout re-sends it. */
static void
transmit(struct rpc *r)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc;

    rc = wire_seal_raw(r->sender, r->body, r->blen, &buf, &len);
    if (rc == 0)
        rc = nnuv_send(r->sock, buf, len);
    free(buf);
    if (rc < 0)
        log_debug("rpc_send_failed", "rpc=%s endpoint=%s err=%s", r->name, log_q(rpc_endpoint(r)),
                  log_q(strerror(-rc)));
    r->st = RPC_WAITING;
    r->sent_at = uv_now(r->loop);
    uv_timer_start(&r->timer, on_timer,
                   rpc_backoff_ms(r->base, r->misses, randombytes_random(), r->cap_ms), 0);
}

static void
move_to(struct rpc *r, size_t next)
{
    bool moved = next != r->cur;
    int rc;

    r->cur = next;
    if ((rc = nnuv_retarget(r->sock, r->eps.url[next])) < 0)
        log_warn("redial_failed", "rpc=%s endpoint=%s err=%s", r->name, log_q(r->eps.url[next]),
                 log_q(strerror(-rc)));
    if (moved) {
        log_info("controller_moved", "rpc=%s endpoint=%s", r->name, log_q(r->eps.url[next]));
        if (r->on_move)
            r->on_move(r, r->eps.url[next], r->arg);
    }
}

/* Leave the current endpoint because it failed (a timeout, a broken
 * connection): a standby that still names it as the leader in the next
 * RPC_DISTRUST_MS has not yet seen it go (a standby polls the lease every
 * 250 ms; a killed leader's lock is free at once), so it is asked again
 * rather than believed. */
static void
leave(struct rpc *r)
{
    size_t from = r->cur;

    r->moved_at = uv_now(r->loop);
    move_to(r, rpc_choose(&r->eps, r->cur, RPC_WHY_TIMEOUT, NULL));
    if (r->cur != from) {
        r->left = from;
        r->left_at = r->moved_at ? r->moved_at : 1;
    }
}

static void
hold(struct rpc *r, uint64_t ms)
{
    r->st = RPC_HOLDING;
    uv_timer_start(&r->timer, on_timer, ms, 0);
}

static void
on_timer(uv_timer_t *t)
{
    struct rpc *r = t->data;
    struct rpc_reply rep = {.result = RPC_TIMEOUT, .err = -ETIMEDOUT};
    uint64_t now = uv_now(r->loop);

    if (r->closing)
        return;
    if (r->st == RPC_HOLDING) {
        transmit(r);
        return;
    }
    if (r->st != RPC_WAITING)
        return;
    r->misses++;
    if (now - r->heard_at >= r->redial_ms && now - r->moved_at >= r->redial_ms)
        leave(r);
    if (r->resends == UINT32_MAX || r->tries < r->resends) {
        r->tries++;
        log_debug("rpc_resend", "rpc=%s endpoint=%s misses=%u", r->name, log_q(rpc_endpoint(r)),
                  (unsigned)r->misses);
        transmit(r);
        return;
    }
    r->st = RPC_IDLE;
    rep.endpoint = rpc_endpoint(r);
    r->cb(r, &rep, r->arg);
}

/* An Error the client answers itself (another leader, busy): true when it
 * did. */
static bool
redirected(struct rpc *r, const Drover__Error *e)
{
    size_t n = rpc_eps_count(&r->eps);

    if (e->code == DROVER__ERROR_CODE__ERR_NOT_LEADER && r->hops < 2 * n + 2) {
        bool known = e->leader != NULL && e->leader[0] != '\0';
        size_t next = rpc_choose(&r->eps, r->cur, RPC_WHY_NOT_LEADER, e->leader);

        r->hops++;
        if (known && next == r->left && r->left_at != 0 &&
            uv_now(r->loop) - r->left_at < RPC_DISTRUST_MS) {
            log_debug("rpc_stale_leader", "rpc=%s endpoint=%s leader=%s", r->name,
                      log_q(rpc_endpoint(r)), log_q(e->leader));
            hold(r, rpc_hold_ms(RPC_LEADERLESS_MS, randombytes_random()));
            return true;
        }
        move_to(r, next);
        if (known && strcmp(e->leader, rpc_endpoint(r)) == 0)
            transmit(r);
        else /* no leader yet (an election), or one we cannot dial */
            hold(r, rpc_hold_ms(RPC_LEADERLESS_MS, randombytes_random()));
        return true;
    }
    if (e->code == DROVER__ERROR_CODE__ERR_BUSY && r->holds < RPC_MAX_HOLDS) {
        r->holds++;
        hold(r, rpc_hold_ms(e->retry_after_ms, randombytes_random()));
        return true;
    }
    return false;
}

static void
on_msg(struct nnuv *sock, struct nnuv_msg *nm, void *arg)
{
    struct rpc *r = arg;
    struct rpc_reply rep = {.result = RPC_REPLY};
    int rc;

    if (r->closing || r->st != RPC_WAITING) {
        /* A reply to a cancelled request: nobody asked any more. */
        nnuv_msg_free(nm);
        return;
    }
    rc = wire_open(nm->body, nm->len, &rep.hdr, &rep.msg);
    r->misses = 0;
    r->heard_at = uv_now(r->loop);
    if (rc == 0 && rep.msg->body_case == DROVER__MESSAGE__BODY_ERROR && rep.msg->error != NULL &&
        redirected(r, rep.msg->error)) {
        wire_msg_free(rep.msg);
        nnuv_msg_free(nm);
        return;
    }
    uv_timer_stop(&r->timer);
    r->st = RPC_IDLE;
    r->left_at = 0; /* an answer: whoever names a leader now is believed */
    if (rc < 0) {
        rep.result = RPC_UNOPENED;
        rep.err = rc;
        rep.msg = NULL;
    }
    rep.raw = nm->body;
    rep.len = nm->len;
    rep.endpoint = rpc_endpoint(r);
    r->cb(r, &rep, r->arg);
    if (rep.msg != NULL)
        wire_msg_free(rep.msg);
    nnuv_msg_free(nm);
}

struct rpc *
rpc_new(uv_loop_t *loop, const struct rpc_opts *o, int *err)
{
    struct rpc *r = calloc(1, sizeof(*r));
    int ivl = NN_RESEND_OFF, rc = -ENOMEM;

    if (r == NULL)
        goto fail;
    rc = -EINVAL;
    if (o->nendpoints == 0 || o->nendpoints > ENV_ENDPOINTS_MAX || o->first >= o->nendpoints ||
        o->cb == NULL || o->sender == NULL)
        goto fail;
    r->loop = loop;
    r->sender = o->sender;
    r->eps.n = o->nendpoints;
    for (size_t i = 0; i < o->nendpoints; i++)
        snprintf(r->eps.url[i], sizeof(r->eps.url[i]), "%s", o->endpoints[i]);
    r->cur = o->first;
    r->cap_ms = o->cap_ms;
    r->redial_ms = o->redial_ms;
    r->resends = o->resends;
    snprintf(r->name, sizeof(r->name), "%s", o->name ? o->name : "rpc");
    r->cb = o->cb;
    r->on_move = o->on_move;
    r->arg = o->arg;
    r->sock = nnuv_new(loop, AF_SP, NN_REQ, on_msg, r, &rc);
    if (r->sock == NULL)
        goto fail;
    if (nn_setsockopt(nnuv_sock(r->sock), NN_REQ, NN_REQ_RESEND_IVL, &ivl, sizeof(ivl)) < 0) {
        rc = -nn_errno();
        goto fail;
    }
    if ((rc = nnuv_connect(r->sock, r->eps.url[r->cur])) < 0)
        goto fail;
    uv_timer_init(loop, &r->timer);
    r->timer.data = r;
    *err = 0;
    return r;
fail:
    if (r != NULL && r->sock != NULL)
        nnuv_close(r->sock);
    free(r);
    *err = rc;
    return NULL;
}

int
rpc_start(struct rpc *r)
{
    r->heard_at = r->moved_at = uv_now(r->loop);
    return nnuv_start(r->sock);
}

int
rpc_send(struct rpc *r, const Drover__Message *m, uint64_t timeout_ms)
{
    size_t blen = drover__message__get_packed_size(m);
    uint8_t *body;

    if (r->closing)
        return -ESHUTDOWN;
    if (blen > WIRE_MAX_SIZE - 256)
        return -EMSGSIZE;
    if ((body = malloc(blen ? blen : 1)) == NULL)
        return -ENOMEM;
    drover__message__pack(m, body);
    rpc_cancel(r);
    r->body = body;
    r->blen = blen;
    r->base = timeout_ms ? timeout_ms : 1;
    r->tries = r->hops = r->holds = 0;
    transmit(r);
    return 0;
}

void
rpc_cancel(struct rpc *r)
{
    if (r->st != RPC_IDLE)
        uv_timer_stop(&r->timer);
    r->st = RPC_IDLE;
    if (r->body != NULL)
        sodium_memzero(r->body, r->blen);
    free(r->body);
    r->body = NULL;
    r->blen = 0;
}

bool
rpc_busy(const struct rpc *r)
{
    return r->st != RPC_IDLE;
}

uint64_t
rpc_sent_at(const struct rpc *r)
{
    return r->sent_at;
}

uint32_t
rpc_misses(const struct rpc *r)
{
    return r->misses;
}

const char *
rpc_endpoint(const struct rpc *r)
{
    return r->eps.url[r->cur];
}

int
rpc_sock(const struct rpc *r)
{
    return nnuv_sock(r->sock);
}

int
rpc_redial(struct rpc *r)
{
    return r->closing ? -ESHUTDOWN : nnuv_retarget(r->sock, rpc_endpoint(r));
}

int
rpc_next(struct rpc *r)
{
    if (r->closing)
        return -ESHUTDOWN;
    if (rpc_eps_count(&r->eps) < 2)
        return rpc_redial(r);
    leave(r);
    return 0;
}

const char *
rpc_endpoint_at(const struct rpc *r, size_t i)
{
    return i < rpc_eps_count(&r->eps) ? r->eps.url[i] : NULL;
}

int
rpc_follow(struct rpc *r, const char *url)
{
    size_t n = rpc_eps_count(&r->eps);

    if (r->closing)
        return -ESHUTDOWN;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(r->eps.url[i], url) != 0)
            continue;
        if (i == r->cur)
            return rpc_redial(r);
        r->moved_at = uv_now(r->loop);
        move_to(r, i);
        return 0;
    }
    return -ENOENT;
}

static void
on_close(uv_handle_t *h)
{
    struct rpc *r = h->data;

    free(r);
}

void
rpc_close(struct rpc *r)
{
    if (r == NULL || r->closing)
        return;
    rpc_cancel(r);
    r->closing = true;
    nnuv_close(r->sock);
    r->sock = NULL;
    uv_close((uv_handle_t *)&r->timer, on_close);
}
