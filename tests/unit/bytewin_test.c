/* SPDX-License-Identifier: MIT */
/* bytewin_test.c: the byte-stream window both relays use (common/bytewin.c):
 * repeats and gaps add nothing, acknowledgements let go, the bound holds,
 * and a random conversation of lost, repeated and reordered messages
 * delivers the stream exactly once, in order. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "bytewin.h"

Test(bytewin, take_keeps_only_what_is_beyond_the_end, .timeout = 2)
{
    struct bytewin w;
    uint8_t *d;
    uint64_t off;

    bytewin_init(&w, 0);
    cr_assert_eq(bytewin_take(&w, 0, "hello", 5), 5);
    cr_assert_eq(bytewin_take(&w, 0, "hello", 5), 0, "a repeat adds nothing");
    cr_assert_eq(bytewin_take(&w, 3, "lo wor", 6), 4, "an overlap adds its new part");
    cr_assert_eq(bytewin_end(&w), 9);
    cr_assert_eq(bytewin_take(&w, 20, "x", 1), 0, "a gap adds nothing");
    cr_assert_eq(bytewin_from(&w, 0, 100, &off, &d), 9);
    cr_assert_eq(off, 0);
    cr_assert(memcmp(d, "hello wor", 9) == 0);
    bytewin_fini(&w);
}

Test(bytewin, ack_lets_go_and_from_is_clamped, .timeout = 2)
{
    struct bytewin w;
    uint8_t *d;
    uint64_t off;

    bytewin_init(&w, 0);
    cr_assert_eq(bytewin_append(&w, "abcdefgh", 8), 0);
    bytewin_ack(&w, 3);
    cr_assert_eq(w.base, 3);
    cr_assert_eq(bytewin_from(&w, 0, 100, &off, &d), 5, "from below base starts at base");
    cr_assert_eq(off, 3);
    cr_assert(memcmp(d, "defgh", 5) == 0);
    cr_assert_eq(bytewin_from(&w, 5, 2, &off, &d), 2, "at most chunk");
    cr_assert(memcmp(d, "fg", 2) == 0);
    cr_assert_eq(bytewin_from(&w, 99, 100, &off, &d), 0, "past the end: nothing");
    cr_assert_eq(off, 8);
    bytewin_ack(&w, 2); /* old news */
    cr_assert_eq(w.base, 3);
    bytewin_ack(&w, 1000); /* clamped */
    cr_assert_eq(w.base, 8);
    cr_assert_eq(w.len, 0);
    bytewin_fini(&w);
}

Test(bytewin, the_bound_holds, .timeout = 2)
{
    struct bytewin w;

    bytewin_init(&w, 10);
    cr_assert_eq(bytewin_take(&w, 0, "0123456789abcdef", 16), 10);
    cr_assert_eq(bytewin_take(&w, 10, "abcdef", 6), 0, "full");
    bytewin_ack(&w, 4);
    cr_assert_eq(bytewin_take(&w, 10, "abcdef", 6), 4);
    cr_assert_eq(bytewin_end(&w), 14);
    cr_assert_eq(bytewin_append(&w, "x", 1), -ENOBUFS);
    bytewin_ack(&w, 14);
    cr_assert_eq(bytewin_append(&w, "xyz", 3), 0);
    bytewin_fini(&w);
}

Test(bytewin, discard_moves_base_to_the_end, .timeout = 2)
{
    struct bytewin w;

    bytewin_init(&w, 0);
    bytewin_append(&w, "abc", 3);
    bytewin_discard(&w);
    cr_assert_eq(w.base, 3);
    cr_assert_eq(w.len, 0);
    cr_assert_eq(bytewin_take(&w, 3, "d", 1), 1);
    bytewin_fini(&w);
}

/* A sender window relays a stream to a receiver window through messages
 * that are lost, repeated or delivered late; the receiver acknowledges
 * what it has. The receiver ends with the stream exactly. */
Test(bytewin, a_lossy_conversation_delivers_the_stream_once_in_order, .timeout = 5)
{
    enum { TOTAL = 200000 };
    static uint8_t stream[TOTAL], got[TOTAL];
    struct bytewin tx, rx;
    uint32_t seed = 12345;
    size_t written = 0, consumed = 0;
    struct {
        uint64_t off;
        size_t n;
        uint8_t buf[4096];
    } late = {0};
    bool have_late = false;

    for (size_t i = 0; i < TOTAL; i++)
        stream[i] = (uint8_t)(i * 31 + (i >> 8));
    bytewin_init(&tx, 0);
    bytewin_init(&rx, 8192);
    while (consumed < TOTAL) {
        uint8_t *d;
        uint64_t off;
        size_t n;

        seed = seed * 1103515245 + 12345;
        if (written < TOTAL) {
            size_t k = (seed >> 8) % 3000;

            k = k > TOTAL - written ? TOTAL - written : k;
            cr_assert_eq(bytewin_append(&tx, stream + written, k), 0);
            written += k;
        }
        n = bytewin_from(&tx, rx.base + rx.len, 4096, &off, &d);
        switch ((seed >> 20) % 4) {
        case 0: /* lost */
            break;
        case 1: /* kept for later */
            if (n > 0)
                memcpy(late.buf, d, n);
            late.off = off;
            late.n = n;
            have_late = true;
            break;
        default:
            bytewin_take(&rx, off, d, n);
            bytewin_take(&rx, off, d, n); /* repeated */
        }
        if (have_late && (seed >> 24) % 3 == 0) {
            bytewin_take(&rx, late.off, late.buf, late.n);
            have_late = false;
        }
        /* the reader consumes some, and says how far it has got */
        n = bytewin_from(&rx, rx.base, (seed >> 4) % 5000, &off, &d);
        if (n > 0)
            memcpy(got + off, d, n);
        cr_assert_eq(off, consumed);
        consumed += n;
        bytewin_ack(&rx, consumed);
        bytewin_ack(&tx, consumed);
        cr_assert_leq(rx.len, 8192);
    }
    cr_assert(memcmp(got, stream, TOTAL) == 0);
    bytewin_fini(&tx);
    bytewin_fini(&rx);
}
