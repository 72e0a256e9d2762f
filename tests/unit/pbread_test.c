/* SPDX-License-Identifier: MIT */
/*
 * The hand-written protobuf readers (common/pbread.h) held against
 * protobuf-c: every envelope (wire.c) and heartbeat (beat.c) protobuf-c
 * writes is read to the same values, with unknown fields, repeated fields
 * and strings holding a NUL; and of thousands of mutated ones, none is read
 * to values protobuf-c would not read (the readers may refuse more, never
 * accept otherwise).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "beat.h"
#include "pbread.h"
#include "wire.h"

static uint8_t key[WIRE_KEY_BYTES];
static int slot;

static void
setup(void)
{
    wire_keyring_reset();
    memset(key, 5, sizeof(key));
    slot = wire_keyring_add("cluster", key);
    cr_assert_geq(slot, 0);
}

static void
teardown(void)
{
    wire_keyring_reset();
}

TestSuite(pbread, .init = setup, .fini = teardown);

/* xorshift: the same cases every run. */
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t
rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* A value of every size a varint takes. */
static uint64_t
rnd_value(void)
{
    return rnd() >> (rnd() % 64);
}

static void
rnd_bytes(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)rnd();
}

/* Appends an unknown field (number 7..200, each wire type a reader skips). */
static size_t
unknown_field(uint8_t *p)
{
    uint32_t num = 7 + (uint32_t)(rnd() % 194);
    unsigned type = (unsigned[]){PB_VARINT, PB_I64, PB_LEN, PB_I32}[rnd() % 4];
    uint64_t tag = (uint64_t)num << 3 | type;
    size_t o = 0, n;

    do {
        p[o++] = (uint8_t)(tag & 0x7f) | (tag > 0x7f ? 0x80 : 0);
        tag >>= 7;
    } while (tag != 0);
    switch (type) {
    case PB_VARINT:
        p[o++] = 0x96;
        p[o++] = 0x01;
        break;
    case PB_I64:
    case PB_I32:
        n = type == PB_I64 ? 8 : 4;
        rnd_bytes(p + o, n);
        o += n;
        break;
    default:
        n = rnd() % 20;
        p[o++] = (uint8_t)n;
        rnd_bytes(p + o, n);
        o += n;
    }
    return o;
}

/* What protobuf-c reads of an envelope, held against wire_read_envelope:
 * true when both read it, and to the same values. */
static bool
same_envelope(const uint8_t *buf, size_t len, bool *ours)
{
    Drover__Envelope *e = drover__envelope__unpack(NULL, len, buf);
    struct wire_header h;
    size_t slen = 0, nlen = 0, blen = 0;
    bool same;

    *ours = wire_read_envelope(buf, len, &h, &slen, &nlen, &blen) == 0;
    if (!*ours || e == NULL) {
        same = !*ours;
    } else {
        size_t cs = strlen(e->sender);

        same = h.version == e->version && h.counter == e->counter && h.key_id == e->key_id &&
               slen == cs && strncmp(h.sender, e->sender, 63) == 0 && nlen == e->nonce.len &&
               blen == e->body.len && h.sealed == (e->nonce.len > 0);
    }
    drover__envelope__free_unpacked(e, NULL);
    return same;
}

/* A random envelope as protobuf-c packs it, with extra fields at times. */
static size_t
rnd_envelope(uint8_t *buf, size_t cap)
{
    Drover__Envelope e = DROVER__ENVELOPE__INIT;
    char sender[100];
    uint8_t nonce[40], body[300];
    size_t n, len, slen = rnd() % 80;

    for (size_t i = 0; i < slen; i++)
        sender[i] = (char)(rnd() % 20 == 0 ? 0 : 'a' + rnd() % 26);
    sender[slen] = '\0';
    e.version = rnd() % 4 == 0 ? (uint32_t)rnd_value() : WIRE_VERSION;
    e.sender = sender; /* packed as C reads it: up to a NUL */
    e.counter = rnd_value();
    e.key_id = (uint32_t)rnd_value();
    e.nonce.len = rnd() % 3 == 0 ? 0 : rnd() % 2 ? WIRE_NONCE_BYTES : rnd() % sizeof(nonce);
    e.nonce.data = nonce;
    rnd_bytes(nonce, sizeof(nonce));
    e.body.len = rnd() % sizeof(body);
    e.body.data = body;
    rnd_bytes(body, sizeof(body));
    len = drover__envelope__pack(&e, buf);
    /* Unknown fields, and a field again (the last wins), at times. */
    for (n = rnd() % 3; n > 0 && len + 64 < cap; n--)
        len += unknown_field(buf + len);
    if (rnd() % 4 == 0 && len + 16 < cap) {
        uint64_t c = rnd_value();

        buf[len++] = 3 << 3; /* counter, varint */
        do {
            buf[len++] = (uint8_t)(c & 0x7f) | (c > 0x7f ? 0x80 : 0);
            c >>= 7;
        } while (c != 0);
    }
    return len;
}

Test(pbread, every_envelope_protobuf_c_writes_reads_the_same)
{
    uint8_t buf[1024];

    for (int i = 0; i < 5000; i++) {
        size_t len = rnd_envelope(buf, sizeof(buf));
        bool ours;

        cr_assert(same_envelope(buf, len, &ours), "case %d", i);
        cr_assert(ours, "case %d: a well-formed envelope refused", i);
    }
}

Test(pbread, a_mutated_envelope_is_never_read_otherwise)
{
    uint8_t buf[1024];
    unsigned read = 0, refused = 0;

    for (int i = 0; i < 20000; i++) {
        size_t len = rnd_envelope(buf, sizeof(buf));
        bool ours;

        for (unsigned k = 1 + rnd() % 3; k > 0 && len > 0; k--) {
            switch (rnd() % 4) {
            case 0: /* a byte changed */
                buf[rnd() % len] = (uint8_t)rnd();
                break;
            case 1: /* a bit flipped */
                buf[rnd() % len] ^= (uint8_t)(1u << (rnd() % 8));
                break;
            case 2: /* cut short */
                len = rnd() % len;
                break;
            default: /* a continuation bit set */
                buf[rnd() % len] |= 0x80;
            }
        }
        cr_assert(same_envelope(buf, len, &ours), "mutation %d", i);
        if (ours)
            read++;
        else
            refused++;
    }
    /* Both outcomes were exercised. */
    cr_assert_gt(read, 1000);
    cr_assert_gt(refused, 1000);
}

Test(pbread, edges_protobuf_c_reads_or_refuses_alike)
{
    static const struct {
        uint8_t b[16];
        size_t n;
        bool ok;
    } cases[] = {
        {{0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 11, true},
        {{0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 12, false},
        {{0x09, 1, 2, 3, 4, 5, 6, 7, 8}, 9, false},             /* version as fixed64 */
        {{0x0a, 0x00}, 2, false},                               /* version as bytes */
        {{0x00, 0x01}, 2, false},                               /* field 0 */
        {{0x7b, 0x7c}, 2, false},                               /* a group */
        {{0x7d, 1, 2, 3, 4}, 5, true},                          /* unknown fixed32 */
        {{0x79, 1, 2, 3}, 4, false},                            /* fixed64 cut short */
        {{0x12, 0x05, 'a', 'b'}, 4, false},                     /* sender cut short */
        {{0x12, 0x03, 'a', 0, 'b'}, 5, true},                   /* sender "a" */
        {{0xf8, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01}, 7, false}, /* a 6-byte tag */
        /* an unknown field's length in 10 bytes (found by fuzz_envelope) */
        {{0x8a, 0x06, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 12, false},
        {{0}, 0, true}, /* empty: every field its default */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool ours;

        cr_assert(same_envelope(cases[i].b, cases[i].n, &ours), "case %zu", i);
        cr_assert_eq(ours, cases[i].ok, "case %zu", i);
    }
}

/* beat_open of plaintext p sealed by a sender named as its node, held
 * against protobuf-c's reading of p. */
static bool
same_beat(const uint8_t *p, size_t n, const char *sender_id, bool *ours)
{
    struct wire_sender s;
    Drover__Message *m = drover__message__unpack(NULL, n, p);
    uint8_t *buf = NULL;
    size_t len = 0;
    struct beat b;
    bool same;

    wire_sender_init(&s, sender_id);
    wire_sender_set_key(&s, key);
    cr_assert_eq(wire_seal_raw(&s, p, n, &buf, &len), 0);
    *ours = beat_open(buf, len, slot, -1, &b) == 0;
    if (!*ours) {
        same = true;
    } else {
        const Drover__Heartbeat *h =
            m != NULL && m->body_case == DROVER__MESSAGE__BODY_HEARTBEAT ? m->heartbeat : NULL;

        same = h != NULL && strcmp(h->node, b.node) == 0 && strcmp(h->boot_id, b.boot_id) == 0 &&
               h->generation == b.generation && h->digest == b.digest && h->counter == b.counter &&
               h->takes_summons == b.takes_summons;
    }
    free(buf);
    drover__message__free_unpacked(m, NULL);
    return same;
}

static size_t
rnd_heartbeat(uint8_t *buf, char *node)
{
    Drover__Message m = DROVER__MESSAGE__INIT;
    Drover__Heartbeat h = DROVER__HEARTBEAT__INIT;
    char boot[80];
    size_t nlen = 1 + rnd() % 20, blen = rnd() % 70;

    for (size_t i = 0; i < nlen; i++)
        node[i] = (char)('a' + rnd() % 26);
    node[nlen] = '\0';
    for (size_t i = 0; i < blen; i++)
        boot[i] = (char)('0' + rnd() % 10);
    boot[blen] = '\0';
    h.node = node;
    h.boot_id = boot;
    h.generation = rnd_value();
    h.digest = rnd_value();
    h.counter = rnd_value();
    h.takes_summons = rnd() % 2;
    m.body_case = DROVER__MESSAGE__BODY_HEARTBEAT;
    m.heartbeat = &h;
    return drover__message__pack(&m, buf);
}

Test(pbread, every_heartbeat_protobuf_c_writes_opens_the_same)
{
    uint8_t buf[512];
    char node[32];
    unsigned opened = 0;

    for (int i = 0; i < 2000; i++) {
        size_t n = rnd_heartbeat(buf, node);
        bool ours;

        cr_assert(same_beat(buf, n, node, &ours), "case %d", i);
        opened += ours;
    }
    /* Refused: only an empty boot id (1 in 70) and a boot id of 64 or more. */
    cr_assert_gt(opened, 1500);
}

Test(pbread, a_mutated_heartbeat_is_never_read_otherwise)
{
    uint8_t buf[512];
    char node[32];
    unsigned opened = 0;

    for (int i = 0; i < 6000; i++) {
        size_t n = rnd_heartbeat(buf, node);
        bool ours;

        for (unsigned k = 1 + rnd() % 2; k > 0 && n > 0; k--) {
            if (rnd() % 3 == 0)
                n = rnd() % n;
            else
                buf[rnd() % n] ^= (uint8_t)(1u << (rnd() % 8));
        }
        cr_assert(same_beat(buf, n, node, &ours), "mutation %d", i);
        opened += ours;
    }
    cr_assert_gt(opened, 100);
}
