/* SPDX-License-Identifier: MIT */
/*
 * reply.c: what both endpoints do around their handlers: open a request's
 * envelope (answering a bad one with an Error), and seal and send replies
 * (commit.c writes the model's changes before anything is acknowledged).
 *
 * Every request on the raw REP sockets ends in exactly one nnuv_reply(),
 * which also frees the request: the functions here that take a struct
 * nnuv_msg always consume it.
 *
 * Keys: the agent endpoint accepts only envelopes sealed with the cluster
 * key, the API endpoint only those sealed with the key derived from
 * DROVER_API_TOKEN; a reply is sealed with the key of the endpoint it goes
 * out on. An envelope that does not open (not sealed, a wrong key, forged,
 * replayed, junk, another version) changes nothing: it is logged as
 * event=refused or event=bad_message with the reason, the sender id it
 * claims and the address it came from (peer=, for an endpoint bound to a
 * TCP address: common/sprep.c; nanomsg's endpoints do not say), and answered
 * with an unsealed refusal (wire_refusal), the only answer a peer without the
 * key can read.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ctl.h"
#include "store.h"
#include "version.h"
#include "log.h"

/* The sender whose key the peer of req holds. */
static struct wire_sender *
sender_for(struct ctl *ctl, const struct nnuv_msg *req)
{
    return ctl->api != NULL && req->sock == ctl->api ? &ctl->api_sender : &ctl->sender;
}

int
ctl_keys_init(struct ctl *ctl)
{
    uint8_t api_key[WIRE_KEY_BYTES], r[4];
    char id[32];

    /* Each controller a sender of its own: a peer's replay check keeps
     * counters per sender, and two controllers sealing in the same
     * millisecond (a standby's redirect, then the leader's answer) would
     * otherwise look like one message replayed. */
    randombytes_buf(r, sizeof(r));
    snprintf(id, sizeof(id), "controller.%02x%02x%02x%02x", r[0], r[1], r[2], r[3]);
    wire_sender_init(&ctl->sender, id);
    wire_sender_init(&ctl->api_sender, id);
    wire_key_from_token(ctl->cfg.api_token, api_key);
    wire_sender_set_key(&ctl->sender, ctl->cfg.cluster_key);
    wire_sender_set_key(&ctl->api_sender, api_key);
    ctl->key_cluster = wire_keyring_add("cluster", ctl->cfg.cluster_key);
    ctl->key_api = wire_keyring_add("api", api_key);
    ctl->key_cluster_next = -1;
    if (ctl->cfg.has_key_next)
        ctl->key_cluster_next = wire_keyring_add("cluster", ctl->cfg.cluster_key_next);
    memset(api_key, 0, sizeof(api_key));
    if (ctl->key_cluster < 0)
        return ctl->key_cluster;
    if (ctl->cfg.has_key_next && ctl->key_cluster_next < 0)
        return ctl->key_cluster_next;
    return ctl->key_api < 0 ? ctl->key_api : 0;
}

/* Answer req (consumed) with an unsealed Error. */
static void
refuse(struct nnuv_msg *req, Drover__ErrorCode code, const char *text)
{
    uint8_t *buf = NULL;
    size_t len = 0;

    if (wire_refusal(code, text, &buf, &len) < 0) {
        nnuv_msg_free(req);
        return;
    }
    if (nnuv_reply(req, buf, len) < 0)
        log_warn("reply_failed", "what=refusal");
    free(buf);
}

void
ctl_reply(struct ctl *ctl, struct nnuv_msg *req, const Drover__Message *rep)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc;

    rc = wire_seal(sender_for(ctl, req), rep, &buf, &len);
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
    if (wire_seal_error(sender_for(ctl, req), code, text, &buf, &len) < 0) {
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
ctl_open(struct ctl *ctl, struct nnuv_msg *req, const char *sock, struct ctl_arena *ar)
{
    bool api = strcmp(sock, "api") == 0;
    int want = api ? ctl->key_api : ctl->key_cluster;
    struct wire_header hdr = {0};
    ProtobufCAllocator al = ctl_arena_allocator(ar);
    Drover__Message *m = NULL;
    char text[256], peer[64];
    int rc;

    rc = wire_open_al(req->body, req->len, &hdr, &al, &m);
    if (rc == 0 && hdr.key != want && (api || hdr.key != ctl->key_cluster_next)) {
        /* Sealed with the other role's key: an agent on the API, say (its
         * memory goes with ar). */
        m = NULL;
        rc = -EKEYREJECTED;
    }
    if (rc == 0)
        return m;
    nnuv_msg_peer(req, peer, sizeof(peer));
    if (rc == -EPROTONOSUPPORT) {
        log_warn("bad_message", "sock=%s reason=version version=%u expected=%d sender=%s peer=%s",
                 sock, hdr.version, WIRE_VERSION, log_q(hdr.sender), log_q(peer));
        snprintf(text, sizeof(text),
                 "protocol version %u, expected %d: this controller runs drover %s; run the "
                 "same drover version here (upgrade the controller first, then each agent)",
                 hdr.version, WIRE_VERSION, DROVER_VERSION);
        refuse(req, DROVER__ERROR_CODE__ERR_VERSION, text);
        return NULL;
    }
    if (wire_err_auth(rc)) {
        log_warn("refused", "sock=%s reason=%s sender=%s key_id=%08x counter=%llu len=%zu peer=%s",
                 sock, log_q(wire_strerror(rc)), log_q(hdr.sender), (unsigned)hdr.key_id,
                 (unsigned long long)hdr.counter, req->len, log_q(peer));
        if (rc == -ENOKEY)
            snprintf(text, sizeof(text), "%s",
                     api ? "this controller requires an API token (DROVER_API_TOKEN)"
                         : "this controller requires messages sealed with the cluster key");
        else if (rc == -EKEYREJECTED || rc == -EBADE)
            snprintf(text, sizeof(text), "%s",
                     api ? "the API token was refused"
                         : "the cluster key was refused (check DROVER_CLUSTER_KEY)");
        else
            snprintf(text, sizeof(text), "message refused: %s", wire_strerror(rc));
        refuse(req, DROVER__ERROR_CODE__ERR_UNAUTHORIZED, text);
        return NULL;
    }
    log_warn("bad_message", "sock=%s reason=%s len=%zu sender=%s peer=%s", sock,
             log_q(wire_strerror(rc)), req->len, log_q(hdr.sender), log_q(peer));
    refuse(req, DROVER__ERROR_CODE__ERR_BAD_REQUEST, wire_strerror(rc));
    return NULL;
}
