/* SPDX-License-Identifier: MIT */
/*
 * pbread.h: reading protobuf's wire format by hand, for the two small
 * messages every peer's traffic is made of (wire.c: the Envelope around
 * every message; beat.c: a UDP Heartbeat, thousands a second).
 *
 * protobuf-c's generic unpack spent about 4,400 instructions on one
 * 130-byte heartbeat (its envelope and its body: field descriptors searched,
 * the message allocated and zeroed, strings copied), as many as
 * authenticating and decrypting it (callgrind, a controller hearing 1,000
 * agents). A reader written for one message is a loop over its fields.
 *
 * What these readers accept they read as protobuf-c does (the last of a
 * repeated scalar wins, an unknown field of wire type 0, 1, 2 or 5 is
 * skipped, a uint32 keeps the low 32 bits of its varint); they are stricter
 * about what no encoder writes: a varint longer than 10 bytes or with bits
 * past the 64th, a tag or a length longer than 5 bytes, a field past
 * 2^29 - 1, field 0, groups, and a known field of the wrong wire type are
 * all refused.
 * tests/unit/pbread_test.c and tests/fuzz/fuzz_envelope.c check both
 * against protobuf-c.
 */
#ifndef DROVER_PBREAD_H
#define DROVER_PBREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum { PB_VARINT = 0, PB_I64 = 1, PB_LEN = 2, PB_I32 = 5 };

struct pb_in {
    const uint8_t *p, *end;
};

/* A varint at in->p; false when truncated or malformed (above). */
static inline bool
pb_varint(struct pb_in *in, uint64_t *v)
{
    uint64_t x = 0;

    for (unsigned i = 0; i < 10; i++) {
        uint8_t b;

        if (in->p >= in->end)
            return false;
        b = *in->p++;
        if (i == 9 && b > 1)
            return false;
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

/*
 * The next field: its number and wire type, and for PB_VARINT its value,
 * for PB_LEN its bytes (pointing into the input), the other two skipped.
 * Returns 1, 0 at the end of the input, -1 when malformed.
 */
struct pb_field {
    uint32_t num;
    unsigned type;
    uint64_t v;
    const uint8_t *data;
    size_t len;
};

static inline int
pb_next(struct pb_in *in, struct pb_field *f)
{
    const uint8_t *tag0 = in->p;
    uint64_t tag;

    if (in->p >= in->end)
        return 0;
    if (!pb_varint(in, &tag) || in->p - tag0 > 5 || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffff)
        return -1;
    f->num = (uint32_t)(tag >> 3);
    f->type = (unsigned)(tag & 7);
    f->data = NULL;
    f->len = 0;
    f->v = 0;
    switch (f->type) {
    case PB_VARINT:
        return pb_varint(in, &f->v) ? 1 : -1;
    case PB_I64:
    case PB_I32: {
        size_t n = f->type == PB_I64 ? 8 : 4;

        if ((size_t)(in->end - in->p) < n)
            return -1;
        in->p += n;
        return 1;
    }
    case PB_LEN: { /* a length of at most 5 bytes, as protobuf-c reads one */
        const uint8_t *len0 = in->p;

        if (!pb_varint(in, &f->v) || in->p - len0 > 5 || f->v > (uint64_t)(in->end - in->p))
            return -1;
        f->data = in->p;
        f->len = (size_t)f->v;
        in->p += f->len;
        return 1;
    }
    default: /* groups (3, 4) and the unused 6, 7 */
        return -1;
    }
}

/* A string field as C reads protobuf-c's copy of it: up to its first NUL. */
static inline size_t
pb_strlen(const struct pb_field *f)
{
    const uint8_t *nul = f->len > 0 ? memchr(f->data, 0, f->len) : NULL;

    return nul != NULL ? (size_t)(nul - f->data) : f->len;
}

#endif
