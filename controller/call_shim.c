/* SPDX-License-Identifier: MIT */
/*
 * call_shim.c: TEMPORARY ctl_call() until i13-dispatch's dispatcher is
 * merged; the coordinator deletes this file (and the two hook lines in
 * reply.c that call ctl_call_shim_reply) at that merge.
 *
 * It runs the request through the API endpoint's own handlers
 * (ctl_api_handle), with a stand-in for the nanomsg request: a struct
 * nnuv_msg with no socket, recognised by ctl_reply/ctl_reply_error, which
 * then hand the reply to done instead of sealing it. A handler that drops a
 * held request without replying (only at shutdown) frees the stand-in with
 * nnuv_msg_free, which frees it whole (it has no body or header): done then
 * never runs, and the HTTP server closes its connections as it stops.
 */
#include <stdlib.h>

#include "ctl.h"
#include "http.h"
#include "dispatch.h"
#include "log.h"

#define SHIM_NN (-0x5157) /* marks a stand-in request: no nanomsg socket has it */

struct shim_req {
    struct nnuv_msg msg; /* first: nnuv_msg_free(&msg) frees the whole */
    ctl_call_done *done;
    void *arg;
};

static void
answer_error(ctl_call_done *done, void *arg, Drover__ErrorCode code, const char *text)
{
    Drover__Message m = DROVER__MESSAGE__INIT;
    Drover__Error e = DROVER__ERROR__INIT;

    e.code = code;
    e.message = (char *)text;
    m.body_case = DROVER__MESSAGE__BODY_ERROR;
    m.error = &e;
    done(arg, &m);
}

void
ctl_call(struct ctl *ctl, Drover__Message *req, ctl_call_done *done, void *arg)
{
    struct shim_req *s;

    if (ctl->stopping) {
        answer_error(done, arg, DROVER__ERROR_CODE__ERR_UNAVAILABLE, "the controller is stopping");
        wire_msg_free(req);
        return;
    }
    if ((s = calloc(1, sizeof(*s))) == NULL) {
        answer_error(done, arg, DROVER__ERROR_CODE__ERR_INTERNAL, "out of memory");
        wire_msg_free(req);
        return;
    }
    s->msg.nn = SHIM_NN;
    s->done = done;
    s->arg = arg;
    ctl_api_handle(ctl, &s->msg, req);
}

bool
ctl_call_shim_reply(struct nnuv_msg *req, const Drover__Message *rep, Drover__ErrorCode code,
                    const char *text)
{
    struct shim_req *s = (struct shim_req *)req;

    if (req->sock != NULL || req->nn != SHIM_NN)
        return false;
    if (rep != NULL)
        s->done(s->arg, rep);
    else
        answer_error(s->done, s->arg, code, text);
    free(s);
    return true;
}
