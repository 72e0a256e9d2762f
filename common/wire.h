/* SPDX-License-Identifier: MIT */
/*
 * wire.h: the envelope around every message, and its version check.
 *
 * wire_seal() packs a Drover__Message into an Envelope carrying the protocol
 * version, the sender's id and its next counter value; wire_open() checks a
 * received buffer (size, version) and unpacks the Message. The envelope has a
 * nonce field and the header is kept apart from the body so that the security
 * issue can encrypt the body with the header as associated data without
 * changing callers.
 *
 * Buffers returned by wire_seal() are malloc'd: the caller frees them.
 */
#ifndef DROVER_WIRE_H
#define DROVER_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "drover.pb-c.h"

#define WIRE_VERSION 1
#define WIRE_MAX_SIZE (8u << 20)     /* largest envelope accepted anywhere */
#define WIRE_SLUG_CHUNK (512u << 10) /* slug transfer chunk size */

struct wire_sender {
    char id[64];      /* node name, "controller", "cli" */
    uint64_t counter; /* last value used */
};

void wire_sender_init(struct wire_sender *s, const char *id);

/*
 * Pack msg into a new envelope. *out is malloc'd (caller frees), *outlen its
 * size. Returns 0, -ENOMEM, or -EMSGSIZE when larger than WIRE_MAX_SIZE.
 */
int wire_seal(struct wire_sender *s, const Drover__Message *msg, uint8_t **out, size_t *outlen);

struct wire_header {
    uint32_t version;
    char sender[64];
    uint64_t counter;
};

/*
 * Check and unpack a received buffer. On success *msg is set (free it with
 * wire_msg_free) and hdr filled. Errors:
 *   -EMSGSIZE          larger than WIRE_MAX_SIZE
 *   -EBADMSG           not an envelope, or a body that is not a Message, or a
 *                      Message whose oneof is not set
 *   -EPROTONOSUPPORT   version != WIRE_VERSION (hdr->version says which)
 * hdr is filled as far as it could be decoded, even on error.
 */
int wire_open(const uint8_t *buf, size_t len, struct wire_header *hdr, Drover__Message **msg);
void wire_msg_free(Drover__Message *msg);

/* Human text for a wire_open() error, for logs and Error replies. */
const char *wire_strerror(int err);

/*
 * Convenience: seal an Error message. Returns as wire_seal().
 */
int wire_seal_error(struct wire_sender *s, Drover__ErrorCode code, const char *text, uint8_t **out,
                    size_t *outlen);

/* "ok", "pending", ... for an InstanceState; "unknown" for anything else. */
const char *wire_state_name(Drover__InstanceState st);

#endif
