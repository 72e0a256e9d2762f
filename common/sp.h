/* SPDX-License-Identifier: MIT */
/*
 * sp.h: the framing of nanomsg's scalability protocols over TCP (the SP TCP
 * mapping, sp-tcp-mapping-01; request/reply, sp-request-reply-01), shared
 * by the controller's REP endpoints (sprep.c) and the benchmark's simulated
 * agents (tests/bench/sp.c).
 *
 * A connection opens with SP_HDR_LEN bytes each way: "\0SP\0", the sender's
 * protocol (big-endian) and two zero bytes. Then every message is its size
 * (8 bytes, big-endian) and its body; a request's body starts with its
 * backtrace, 32-bit words up to the first with its top bit set (the request
 * id), which the reply carries back in front of its own body.
 */
#ifndef DROVER_SP_H
#define DROVER_SP_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define SP_HDR_LEN 8
#define SP_PROTO_REQ 48
#define SP_PROTO_REP 49
#define SP_MAX_HOPS 8 /* backtrace words, as nanomsg's NN_MAXTTL */

static inline void
sp_put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static inline uint64_t
sp_get_be64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* The header a socket of protocol proto opens with. */
static inline void
sp_hello(uint8_t out[SP_HDR_LEN], uint16_t proto)
{
    static const uint8_t head[4] = {0, 'S', 'P', 0};

    memcpy(out, head, 4);
    out[4] = (uint8_t)(proto >> 8);
    out[5] = (uint8_t)proto;
    out[6] = out[7] = 0;
}

/* Is h the header of a socket of protocol proto? */
static inline bool
sp_hello_is(const uint8_t h[SP_HDR_LEN], uint16_t proto)
{
    uint8_t want[SP_HDR_LEN];

    sp_hello(want, proto);
    return memcmp(h, want, 6) == 0; /* the reserved bytes are not checked */
}

#endif
