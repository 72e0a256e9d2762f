/* SPDX-License-Identifier: MIT */
/*
 * front.c: the two nanomsg front ends of the request path, the API endpoint
 * (the CLI) and the agent endpoint. Each request that arrives on a raw REP
 * socket is opened (reply.c: the right key, the right version, else an
 * unsealed refusal), handed to the dispatcher with ctl_call_ep, and its
 * reply is sealed with the endpoint's key and sent back in done. Nothing
 * here knows a request type: dispatch.c's table does.
 */
#include <stdlib.h>
#include <string.h>

#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>

#include "ctl.h"
#include "log.h"

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

static void
recv_on(struct ctl *ctl, struct nnuv_msg *req, enum ctl_ep ep)
{
    struct front_req *f;
    Drover__Message *m;

    if (ctl->stopping) {
        nnuv_msg_free(req);
        return;
    }
    m = ctl_open(ctl, req, ep == CTL_EP_API ? "api" : "agent");
    if (m == NULL)
        return;
    if ((f = calloc(1, sizeof(*f))) == NULL) {
        ctl_reply_error(ctl, req, DROVER__ERROR_CODE__ERR_INTERNAL, "out of memory");
        wire_msg_free(m);
        return;
    }
    f->ctl = ctl;
    f->req = req;
    ctl_call_ep(ctl, ep, m, nn_done, f);
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
