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
 * heartbeat datagram (common/beat.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "beat.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
    (void)beat_open(data, size, slot, -1, &b);
    if (wire_open(data, size, &h, &m) == 0)
        wire_msg_free(m);
    m = NULL;
    (void)wire_refusal_open(data, size, &code, text, sizeof(text));
    (void)wire_strerror(-(int)(size % 200));

    if (wire_seal_raw(&sender, data, size, &buf, &len) != 0)
        return 0;
    (void)beat_open(buf, len, slot, -1, &b); /* opens it: the replay state has it next */
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
