/* SPDX-License-Identifier: MIT */
/*
 * reply.c: what both endpoints do around their handlers: open a request's
 * envelope (answering a bad one with an Error), commit the model's changes to
 * the store before anything is acknowledged, and seal and send replies.
 *
 * Every request on the raw REP sockets ends in exactly one nnuv_reply(),
 * which also frees the request: the functions here that take a struct
 * nnuv_msg always consume it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "ctl.h"
#include "log.h"

void
ctl_reply(struct ctl *ctl, struct nnuv_msg *req, const Drover__Message *rep)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc;

    rc = wire_seal(&ctl->sender, rep, &buf, &len);
    if (rc < 0) {
        log_error("reply_failed", "err=%s", log_q(wire_strerror(rc)));
        ctl_reply_error(ctl, req, DROVER__ERROR_CODE__ERR_INTERNAL,
                        rc == -EMSGSIZE ? "reply too large" : "cannot encode the reply");
        return;
    }
    rc = nnuv_reply(req, buf, len);
    if (rc < 0)
        log_warn("reply_failed", "err=%d", rc);
    free(buf);
}

void
ctl_reply_error(struct ctl *ctl, struct nnuv_msg *req, Drover__ErrorCode code, const char *fmt, ...)
{
    char text[512];
    uint8_t *buf = NULL;
    size_t len = 0;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (wire_seal_error(&ctl->sender, code, text, &buf, &len) < 0) {
        nnuv_msg_free(req);
        return;
    }
    if (nnuv_reply(req, buf, len) < 0)
        log_warn("reply_failed", "what=error");
    free(buf);
}

/*
 * Check and unpack a request. NULL when it is not one we can handle: then it
 * has been logged and answered (and req consumed).
 */
Drover__Message *
ctl_open(struct ctl *ctl, struct nnuv_msg *req, const char *sock)
{
    struct wire_header hdr = {0};
    Drover__Message *m = NULL;
    int rc;

    rc = wire_open(req->body, req->len, &hdr, &m);
    if (rc == 0)
        return m;
    if (rc == -EPROTONOSUPPORT) {
        log_warn("bad_message", "sock=%s reason=version version=%u expected=%d sender=%s", sock,
                 hdr.version, WIRE_VERSION, log_q(hdr.sender));
        ctl_reply_error(ctl, req, DROVER__ERROR_CODE__ERR_VERSION,
                        "protocol version %u, expected %d", hdr.version, WIRE_VERSION);
        return NULL;
    }
    log_warn("bad_message", "sock=%s reason=%s len=%zu", sock, log_q(wire_strerror(rc)), req->len);
    ctl_reply_error(ctl, req, DROVER__ERROR_CODE__ERR_BAD_REQUEST, "%s", wire_strerror(rc));
    return NULL;
}

/*
 * Place what waits for capacity, then write every change to the store. Called
 * before a reply is sent, so nothing acknowledged can be lost. A failed
 * commit leaves memory ahead of the store: the controller then stops (exit
 * 1) so that a restart reloads the last consistent state; the request that
 * caused it is answered ERR_INTERNAL and was never acknowledged.
 */
int
ctl_commit(struct ctl *ctl)
{
    int rc;

    rc = ctl_settle(ctl->model, now_ms());
    if (rc < 0)
        log_error("settle_failed", "err=%d", rc);
    rc = ctl_store_flush(ctl->store, ctl->model);
    if (rc < 0) {
        log_error("store_failed", "err=%s", log_q(ctl_store_errmsg(ctl->store)));
        ctl_shutdown(ctl, 1);
    }
    return rc;
}

void
ctl_work_done(struct ctl *ctl)
{
    ctl->inflight--;
    ctl_maybe_close(ctl);
}
