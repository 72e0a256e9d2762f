/* SPDX-License-Identifier: MIT */
/*
 * rpc.h: the one client of a sealed request/reply conversation with the
 * controller (the agent's sync, slug fetch and pipe; the CLI).
 *
 * One request is outstanding at a time. The request is packed once and
 * sealed afresh for every send (wire.h: the controller accepts a counter
 * once, so a resend of identical bytes would be refused as a replay);
 * nanomsg's own resend is off. A request unanswered for its timeout is
 * re-sealed and re-sent (up to opts.resends times; the default is none:
 * the owner hears RPC_TIMEOUT and decides), each wait longer than the last
 * (rpc_backoff_ms: doubling, with jitter, so that the agents of an
 * overloaded controller come back out of step). Every wait is on the
 * loop's monotonic clock (uv_now). A timeout after a silence of
 * opts.redial_ms also redials the socket (most often a connection that died
 * silently: a controller host gone, a NAT that forgot us, which TCP notices
 * only at its own timeouts).
 *
 * Several controllers. The client holds the list of endpoints (DROVER_JOIN,
 * DROVER_CONTROLLER) and talks to one. A reply Error{ERR_NOT_LEADER,
 * leader} moves it to the leader (rpc_choose) and re-sends there; a
 * timeout moves it to the next endpoint of the list. Error{ERR_BUSY,
 * retry_after_ms} holds the request that long (plus jitter) and re-sends it
 * to the same endpoint. The owner sees neither: it sees the reply of the
 * controller that leads, or a timeout, or (after too many hops or holds)
 * the Error itself.
 *
 * Cancelling. rpc_send() while a request is outstanding cancels it (the
 * REQ socket drops the older one); rpc_cancel() drops it without a new one.
 * A reply that arrives for a cancelled request is ignored.
 *
 * Lifetime: rpc_new() allocates; rpc_close() frees in the close callbacks
 * (safe from inside the reply callback).
 */
#ifndef DROVER_RPC_H
#define DROVER_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "env.h"
#include "wire.h"

struct rpc;

/* The endpoints: the given list, and one slot for a leader named by a
 * standby that the list did not hold. */
struct rpc_eps {
    size_t n; /* given, >= 1 */
    bool learned;
    char url[ENV_ENDPOINTS_MAX + 1][ENV_ENDPOINT_MAX];
};

enum rpc_why { RPC_WHY_TIMEOUT, RPC_WHY_NOT_LEADER };

/* Pure: the endpoint index to use after why happened at cur. TIMEOUT: the
 * next one (cyclic). NOT_LEADER: leader's index when the list holds it;
 * else, when leader is a valid endpoint, it goes in the learned slot and
 * that is the answer; else (unknown, "" or junk) the next one. */
size_t rpc_choose(struct rpc_eps *e, size_t cur, enum rpc_why why, const char *leader);
size_t rpc_eps_count(const struct rpc_eps *e);

/* Pure: how long the n-th send in a row without a reply may wait: base for
 * n = 0, then base doubled n times (at most 16 times) plus up to half of
 * that again chosen by rnd; never more than cap (0: no cap). */
uint64_t rpc_backoff_ms(uint64_t base, uint32_t n, uint32_t rnd, uint64_t cap);
/* Pure: an ERR_BUSY answer's wait: retry_after_ms (1 s when 0, within
 * [10 ms, 60 s]) plus up to half of it again chosen by rnd. */
uint64_t rpc_hold_ms(uint32_t retry_after_ms, uint32_t rnd);
/* Pure: the longest rpc_hold_ms can choose for retry_after_ms. */
uint64_t rpc_hold_max_ms(uint32_t retry_after_ms);

enum rpc_result {
    RPC_REPLY,    /* msg: the reply (an Error too) */
    RPC_UNOPENED, /* the reply did not open: err (wire_strerror), raw and hdr */
    RPC_TIMEOUT,  /* no reply within the timeout (after opts.resends re-sends) */
};

struct rpc_reply {
    enum rpc_result result;
    int err;
    Drover__Message *msg; /* RPC_REPLY; the callback may take it (set it NULL) */
    const void *raw;      /* the bytes received (borrowed), for wire_refusal_open */
    size_t len;
    struct wire_header hdr;
    const char *endpoint; /* where it came from (borrowed) */
};

/* rep: borrowed for the call. The callback may send, cancel or close. */
typedef void (*rpc_cb)(struct rpc *r, struct rpc_reply *rep, void *arg);
/* The client moved to another endpoint (a failover). */
typedef void (*rpc_move_cb)(struct rpc *r, const char *endpoint, void *arg);

struct rpc_opts {
    const char (*endpoints)[ENV_ENDPOINT_MAX]; /* copied */
    size_t nendpoints;
    size_t first;               /* the index to start with */
    struct wire_sender *sender; /* borrowed: seals every send */
    uint64_t cap_ms;            /* longest wait for one send; 0: no cap */
    uint32_t resends;           /* re-sends of one request on timeout; UINT32_MAX: forever */
    uint64_t redial_ms;         /* a timeout redials (or moves to the next endpoint) only
                                   when nothing was heard, and no redial made, for this
                                   long; 0: at every timeout */
    const char *name;           /* for the logs: "agent", "slug", "pipe", "cli" */
    rpc_cb cb;
    rpc_move_cb on_move; /* may be NULL */
    void *arg;
};

struct rpc *rpc_new(uv_loop_t *loop, const struct rpc_opts *o, int *err);
int rpc_start(struct rpc *r);
/* Seal and send m (packed now: m is not kept), cancelling any outstanding
 * request; timeout_ms is its base wait. Returns 0 or a negative errno (then
 * nothing is outstanding). A send the socket cannot take now is retried at
 * the timeout as if it was lost. */
int rpc_send(struct rpc *r, const Drover__Message *m, uint64_t timeout_ms);
void rpc_cancel(struct rpc *r);
bool rpc_busy(const struct rpc *r);        /* a request is outstanding (or held) */
uint64_t rpc_sent_at(const struct rpc *r); /* uv_now of the last send */
uint32_t rpc_misses(const struct rpc *r);  /* timeouts in a row without a reply */
const char *rpc_endpoint(const struct rpc *r);
/* The nanomsg socket, for an owner's own options (the CLI lets nanomsg
 * reconnect by itself: its poll(2) loops do not turn the loop's timers). */
int rpc_sock(const struct rpc *r);
/* Drop the connection and dial the current endpoint again now (with the
 * socket's options as they are now). 0 or a negative errno. */
int rpc_redial(struct rpc *r);
/* The current controller is gone (its connection broke under a request,
 * or it fell silent): dial the next of the list now (a standby sends the
 * request on to the leader), or the only one again. */
int rpc_next(struct rpc *r);
/* The endpoints known (the given list, then a learned leader): the i-th, or
 * NULL past the end. */
const char *rpc_endpoint_at(const struct rpc *r, size_t i);
/* A controller at url (one of rpc_endpoint_at's) says it leads: dial it now
 * (the current one: dial it again). 0 or a negative errno. */
int rpc_follow(struct rpc *r, const char *url);
void rpc_close(struct rpc *r);

#endif
