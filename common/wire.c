/* SPDX-License-Identifier: MIT */
/*
 * wire.c: the envelope around every message.
 *
 * The header (version, sender, counter) is checked before the body is
 * unpacked, so a peer speaking another protocol version is told so instead of
 * being misread. The body is a separately serialized Message: the security
 * issue will seal it (AEAD, header as associated data) without touching any
 * caller.
 */
#include "wire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
wire_sender_init(struct wire_sender *s, const char *id)
{
    snprintf(s->id, sizeof(s->id), "%s", id);
    s->counter = 0;
}

int
wire_seal(struct wire_sender *s, const Drover__Message *msg, uint8_t **out, size_t *outlen)
{
    Drover__Envelope env = DROVER__ENVELOPE__INIT;
    uint8_t *body = NULL, *buf = NULL;
    size_t blen, elen;
    int rc = -ENOMEM;

    *out = NULL;
    *outlen = 0;
    blen = drover__message__get_packed_size(msg);
    if (blen > WIRE_MAX_SIZE - 256) {
        rc = -EMSGSIZE;
        goto out;
    }
    if ((body = malloc(blen ? blen : 1)) == NULL)
        goto out;
    drover__message__pack(msg, body);
    env.version = WIRE_VERSION;
    env.sender = s->id;
    env.counter = ++s->counter;
    env.body.data = body;
    env.body.len = blen;
    elen = drover__envelope__get_packed_size(&env);
    if ((buf = malloc(elen)) == NULL)
        goto out;
    drover__envelope__pack(&env, buf);
    *out = buf;
    *outlen = elen;
    buf = NULL;
    rc = 0;
out:
    free(body);
    free(buf);
    return rc;
}

int
wire_open(const uint8_t *buf, size_t len, struct wire_header *hdr, Drover__Message **msg)
{
    Drover__Envelope *env = NULL;
    Drover__Message *m = NULL;
    int rc;

    *msg = NULL;
    memset(hdr, 0, sizeof(*hdr));
    if (len > WIRE_MAX_SIZE)
        return -EMSGSIZE;
    if ((env = drover__envelope__unpack(NULL, len, buf)) == NULL)
        return -EBADMSG;
    hdr->version = env->version;
    snprintf(hdr->sender, sizeof(hdr->sender), "%s", env->sender ? env->sender : "");
    hdr->counter = env->counter;
    if (env->version != WIRE_VERSION) {
        rc = -EPROTONOSUPPORT;
        goto out;
    }
    m = drover__message__unpack(NULL, env->body.len, env->body.data);
    if (m == NULL || m->body_case == DROVER__MESSAGE__BODY__NOT_SET) {
        rc = -EBADMSG;
        goto out;
    }
    *msg = m;
    m = NULL;
    rc = 0;
out:
    if (m != NULL)
        drover__message__free_unpacked(m, NULL);
    drover__envelope__free_unpacked(env, NULL);
    return rc;
}

void
wire_msg_free(Drover__Message *msg)
{
    if (msg != NULL)
        drover__message__free_unpacked(msg, NULL);
}

const char *
wire_strerror(int err)
{
    switch (err) {
    case 0:
        return "ok";
    case -EMSGSIZE:
        return "message too large";
    case -EBADMSG:
        return "malformed message";
    case -EPROTONOSUPPORT:
        return "unsupported protocol version";
    case -ENOMEM:
        return "out of memory";
    default:
        return "wire error";
    }
}

int
wire_seal_error(struct wire_sender *s, Drover__ErrorCode code, const char *text, uint8_t **out,
                size_t *outlen)
{
    Drover__Message m = DROVER__MESSAGE__INIT;
    Drover__Error e = DROVER__ERROR__INIT;

    e.code = code;
    e.message = (char *)text;
    m.body_case = DROVER__MESSAGE__BODY_ERROR;
    m.error = &e;
    return wire_seal(s, &m, out, outlen);
}

const char *
wire_state_name(Drover__InstanceState st)
{
    switch (st) {
    case DROVER__INSTANCE_STATE__ST_PENDING:
        return "pending";
    case DROVER__INSTANCE_STATE__ST_STARTING:
        return "starting";
    case DROVER__INSTANCE_STATE__ST_UP:
        return "up";
    case DROVER__INSTANCE_STATE__ST_DRAINING:
        return "draining";
    case DROVER__INSTANCE_STATE__ST_STOPPED:
        return "stopped";
    case DROVER__INSTANCE_STATE__ST_CRASHED:
        return "crashed";
    case DROVER__INSTANCE_STATE__ST_LOST:
        return "lost";
    case DROVER__INSTANCE_STATE__ST_FAILED:
        return "failed";
    default:
        return "unknown";
    }
}
