/* SPDX-License-Identifier: MIT */
/*
 * fuzz_envelope: hostile bytes at wire_open(), the first thing every socket
 * does with what it receives, and at the Message decoder behind it.
 *
 * Each input is tried three ways: as a whole envelope (what a peer without
 * the key can send: it must be refused without a crash or a leak); as a
 * refusal (what the CLI and agents read unsealed); and as the plaintext body
 * of an envelope sealed with the right key (what a peer with the key can
 * send: every decoded Message must seal again). Both the hostile bytes and
 * the sealed body also go to beat_open(), the controller's parse of a UDP
 * heartbeat datagram (common/beat.h). Both hand-written readers behind them
 * (common/pbread.h: the envelope's and the heartbeat's) are held against
 * protobuf-c: what they read, protobuf-c must read to the same values, or
 * the harness aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "beat.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* wire.c's envelope reader against protobuf-c. */
static void
envelope_agrees(const uint8_t *data, size_t size)
{
    Drover__Envelope *e;
    struct wire_header h;
    size_t slen, nlen, blen;

    if (wire_read_envelope(data, size, &h, &slen, &nlen, &blen) != 0)
        return;
    if ((e = drover__envelope__unpack(NULL, size, data)) == NULL)
        abort();
    if (h.version != e->version || h.counter != e->counter || h.key_id != e->key_id ||
        slen != strlen(e->sender) || strncmp(h.sender, e->sender, 63) != 0 ||
        nlen != e->nonce.len || blen != e->body.len)
        abort();
    drover__envelope__free_unpacked(e, NULL);
}

/* beat.c's heartbeat reader, which opened plaintext p into b, against
 * protobuf-c. */
static void
beat_agrees(const uint8_t *p, size_t n, const struct beat *b)
{
    Drover__Message *m = drover__message__unpack(NULL, n, p);
    const Drover__Heartbeat *hb;

    if (m == NULL || m->body_case != DROVER__MESSAGE__BODY_HEARTBEAT)
        abort();
    hb = m->heartbeat;
    if (strcmp(hb->node, b->node) != 0 || strcmp(hb->boot_id, b->boot_id) != 0 ||
        hb->generation != b->generation || hb->digest != b->digest || hb->counter != b->counter ||
        hb->takes_summons != b->takes_summons)
        abort();
    drover__message__free_unpacked(m, NULL);
}

static struct wire_sender sender;
static int slot;

static void
setup(void)
{
    static int done;
    uint8_t key[WIRE_KEY_BYTES];

    if (done)
        return;
    done = 1;
    memset(key, 0x42, sizeof(key));
    slot = wire_keyring_add("cluster", key);
    wire_sender_init(&sender, "fuzz");
    wire_sender_set_key(&sender, key);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wire_header h;
    Drover__Message *m = NULL, *again = NULL;
    Drover__ErrorCode code;
    char text[128];
    uint8_t *buf = NULL, *buf2 = NULL;
    size_t len = 0, len2 = 0;
    struct beat b;

    setup();
    envelope_agrees(data, size);
    (void)beat_open(data, size, slot, -1, &b);
    if (wire_open(data, size, &h, &m) == 0)
        wire_msg_free(m);
    m = NULL;
    (void)wire_refusal_open(data, size, &code, text, sizeof(text));
    (void)wire_strerror(-(int)(size % 200));

    if (wire_seal_raw(&sender, data, size, &buf, &len) != 0)
        return 0;
    if (beat_open(buf, len, slot, -1, &b) == 0) /* opens it: the replay state has it next */
        beat_agrees(data, size, &b);
    free(buf);
    buf = NULL;
    if (wire_seal_raw(&sender, data, size, &buf, &len) != 0)
        return 0;
    if (wire_open(buf, len, &h, &m) == 0) {
        /*
         * A decoded Message seals again. (It need not open to the same
         * thing: protobuf-c keeps unknown fields with number 0 and writes
         * them back in a form it then refuses; drover never re-sends what it
         * received.)
         */
        if (wire_seal(&sender, m, &buf2, &len2) != 0)
            abort();
        if (wire_open(buf2, len2, &h, &again) == 0)
            wire_msg_free(again);
        wire_msg_free(m);
    }
    free(buf);
    free(buf2);
    return 0;
}
