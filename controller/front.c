/* SPDX-License-Identifier: MIT */
/*
 * front.c: the two REP front ends of the request path, the API endpoint
 * (the CLI) and the agent endpoint (raw REP sockets, common/nnuv.c: served
 * on the loop by common/sprep.c when bound to TCP). Each request that
 * arrives on a raw REP socket is opened (reply.c: the right key, the right
 * version, else an unsealed refusal), handed to the dispatcher with
 * ctl_call_ep, and its reply is sealed with the endpoint's key and sent
 * back in done. Nothing here knows a request type: dispatch.c's table does.
 *
 * Overload. nnuv.c already sheds every request a newer one from the same
 * sender replaced. When the agent endpoint's receive queue has not been
 * empty for DROVER_BUSY_MS (nnuv_backlog_ms: the loop is behind by at
 * least that much), heartbeats (ctl_agent_may_wait; but not the watches
 * of nodes heard by UDP, which are held as usual) are not answered as
 * usual: they get Error{ERR_BUSY, retry_after_ms}, one heartbeat plus the
 * backlog's age (at most half of what the node timeout leaves after a
 * heartbeat, so that a held agent is never judged down), and the agent's
 * RPC client (common/rpc.c) holds the request that long plus jitter before
 * it sends it again: the heartbeat rate falls while the backlog lasts.
 * Registers, syncs that carry reports or fetch assignments, and every API
 * request, are always served. Measured by calls pending, loop lag and
 * queue depth, the backlog's age was the signal that tracks the
 * acknowledgement latency the agents see (README, Performance).
 */
#include <stdlib.h>
#include <string.h>

#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>

#include "ctl.h"
#include "log.h"
#include "rpc.h"

#define BUSY_LOG_MS 1000 /* at most one event=busy line per second */

struct front_req {
    struct ctl *ctl;
    struct nnuv_msg *req;
};

/* done: rep is sealed and sent; the raw request goes with the reply. */
static void
nn_done(void *arg, const Drover__Message *rep)
{
    struct front_req *f = arg;

    ctl_reply(f->ctl, f->req, rep);
    free(f);
}

uint64_t
ctl_busy_retry_ms(const struct ctl_config *cfg, uint64_t backlog)
{
    uint64_t ms = cfg->heartbeat_ms + backlog,
             cap = (cfg->node_timeout_ms - cfg->heartbeat_ms) * 2 / 5;

    if (ms > cap)
        ms = cap;
    return ms < 10 ? 10 : ms; /* rpc_hold_ms waits at least 10 ms */
}

/* Answer req ERR_BUSY if the agent endpoint is behind and m may wait. */
static bool
busy(struct ctl *ctl, struct nnuv_msg *req, const Drover__Message *m)
{
    static uint64_t said, last_log;
    Drover__Message em = DROVER__MESSAGE__INIT;
    Drover__Error e = DROVER__ERROR__INIT;
    uint64_t backlog = nnuv_backlog_ms(req->sock), now;
    struct ctl_node *n;

    if (ctl->cfg.busy_ms == 0 || backlog < ctl->cfg.busy_ms ||
        (n = ctl_agent_may_wait(ctl, m)) == NULL)
        return false;
    now = mono_ms();
    /* A watch of a node heard by UDP is held (watch.c): it costs nothing
     * until its node changes or its hold ends, half the node timeout or
     * more away, longer than any retry_after. Told busy, it cost a reply now
     * and the same request again: measured at 10,000 agents, the watches
     * sent again after a placement's acknowledgements drew 10,000-13,000
     * busy answers, and the controller's CPU over the placement and its
     * tail fell by 18 % (its context switches by half; one pair of runs)
     * when they were held instead. A node heard only by its syncs (no
     * UDP) is told busy: its watch is held for one heartbeat at most,
     * shorter than the wait. */
    if (m->sync_req->watch_ms > 0 && ctl->watches != NULL && ctl_watch_held_long(ctl, n))
        return false;
    e.code = DROVER__ERROR_CODE__ERR_BUSY;
    e.message = "the controller is busy; try again after retry_after_ms";
    e.retry_after_ms = (uint32_t)ctl_busy_retry_ms(&ctl->cfg, backlog);
    /* No summons (beat.c) calls the agent back while it waits, up to the
     * longest hold its RPC client may choose (common/rpc.c): measured at the end of a placement on
     * 10,000 agents, thousands of summonses a second went to nodes just told to wait, and undid the
     * shedding. */
    n->quiet_until_ms = now + rpc_hold_max_ms(e.retry_after_ms);
    em.body_case = DROVER__MESSAGE__BODY_ERROR;
    em.error = &e;
    ctl_reply(ctl, req, &em);
    said++;
    if (now - last_log >= BUSY_LOG_MS) {
        log_info("busy", "backlog_ms=%llu answered=%llu retry_after_ms=%u",
                 (unsigned long long)backlog, (unsigned long long)said, e.retry_after_ms);
        last_log = now;
    }
    return true;
}

static void
recv_on(struct ctl *ctl, struct nnuv_msg *req, enum ctl_ep ep)
{
    struct ctl_arena *ar;
    struct front_req *f;
    Drover__Message *m;

    if (ctl->stopping) {
        nnuv_msg_free(req);
        return;
    }
    /* The request is unpacked into the arena its call answers from. */
    if ((ar = ctl_arena_new()) == NULL) {
        ctl_reply_error(ctl, req, DROVER__ERROR_CODE__ERR_INTERNAL, "out of memory");
        return;
    }
    m = ctl_open(ctl, req, ep == CTL_EP_API ? "api" : "agent", ar);
    if (m == NULL || (ep == CTL_EP_AGENT && ctl_leader_acting(ctl->leader) && busy(ctl, req, m))) {
        ctl_arena_free(ar);
        return;
    }
    if ((f = calloc(1, sizeof(*f))) == NULL) {
        ctl_reply_error(ctl, req, DROVER__ERROR_CODE__ERR_INTERNAL, "out of memory");
        ctl_arena_free(ar);
        return;
    }
    f->ctl = ctl;
    f->req = req;
    ctl_call_ep(ctl, ep, m, ar, nn_done, f);
}

static void
api_recv(struct nnuv *s, struct nnuv_msg *req, void *arg)
{
    (void)s;
    recv_on(arg, req, CTL_EP_API);
}

static void
agent_recv(struct nnuv *s, struct nnuv_msg *req, void *arg)
{
    (void)s;
    recv_on(arg, req, CTL_EP_AGENT);
}

static int
rep_start(struct ctl *ctl, struct nnuv **out, nnuv_recv_cb cb, const char *listen)
{
    int rc = 0;

    *out = nnuv_new(ctl->loop, AF_SP_RAW, NN_REP, cb, ctl, &rc);
    if (*out == NULL)
        return rc;
    if ((rc = nnuv_bind(*out, listen)) < 0) {
        log_error("bind_failed", "endpoint=%s err=%s", listen, strerror(-rc));
        return rc;
    }
    return nnuv_start(*out);
}

int
ctl_front_start(struct ctl *ctl)
{
    int rc = rep_start(ctl, &ctl->api, api_recv, ctl->cfg.api_listen);

    return rc < 0 ? rc : rep_start(ctl, &ctl->agents, agent_recv, ctl->cfg.agent_listen);
}
