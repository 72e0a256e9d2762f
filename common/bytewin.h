/* SPDX-License-Identifier: MIT */
/*
 * bytewin.h: a window of a byte stream, named by offsets: the bytes from
 * base (the first one the reader has not acknowledged) to end (the last
 * one received), and nothing else.
 *
 * Both relays of an attached one-off keep their streams so (the agent's
 * output in node-agent/pipe.c; stdin, stdout and stderr in the controller,
 * controller/runs.c): every message says where its bytes start and every
 * acknowledgement how far the reader has got, so a lost, repeated or
 * cancelled message changes nothing. bytewin_take() keeps only the bytes
 * beyond the end (a repeat adds nothing, a gap adds nothing),
 * bytewin_ack() lets go of what the reader has, bytewin_from() says what
 * to send next.
 *
 * Embedded: bytewin_init/bytewin_fini. Not thread-safe.
 */
#ifndef DROVER_BYTEWIN_H
#define DROVER_BYTEWIN_H

#include <stddef.h>
#include <stdint.h>

struct bytewin {
    uint8_t *data;
    size_t len, cap;
    uint64_t base; /* stream offset of data[0] */
    size_t max;    /* most bytes held; 0: no bound */
};

void bytewin_init(struct bytewin *w, size_t max);
void bytewin_fini(struct bytewin *w);
uint64_t bytewin_end(const struct bytewin *w);
/* Append n bytes at the end: 0, -ENOBUFS (over max: nothing taken) or
 * -ENOMEM. */
int bytewin_append(struct bytewin *w, const void *d, size_t n);
/* Take the part of [off, off+n) beyond the end, as far as max allows; a
 * message that starts past the end (a gap) adds nothing. Returns the
 * bytes taken (0 when out of memory: the sender tries again). */
size_t bytewin_take(struct bytewin *w, uint64_t off, const void *d, size_t n);
/* The reader has everything below have (clamped to the end): let it go. */
void bytewin_ack(struct bytewin *w, uint64_t have);
/* The bytes from `from` on (clamped to [base, end]), at most chunk: their
 * offset in *off, a pointer into the window (valid until the next change)
 * in *data; returns their count. */
size_t bytewin_from(const struct bytewin *w, uint64_t from, size_t chunk, uint64_t *off,
                    uint8_t **data);
/* Forget what is held: base moves to the end. */
void bytewin_discard(struct bytewin *w);

#endif
