/* SPDX-License-Identifier: MIT */
/*
 * logring.h: a bounded buffer of log lines, with honest overflow.
 *
 * Two uses, one structure. The controller keeps each app's recent history in
 * an overwriting ring: when full, the oldest line goes, and the ring numbers
 * every line it ever took (seq 1, 2, ...) so that a reader that fell behind
 * knows how many it missed. The agent queues lines on their way to the
 * controller in a refusing ring: when full (lines or bytes), a new line is
 * refused rather than blocking the app or growing without bound; the caller
 * counts refusals in a struct logring_drops and logring_push_counted() puts
 * one line "N lines dropped" in their place as soon as there is room. Such
 * markers may use a small reserve above the line limit, so a marker is only
 * ever lost when the reserve is full too, and that is counted
 * (logring_lost_markers) for the owner to report.
 *
 * Lines are copied in; pointers from logring_at() stay valid until the line
 * is popped or evicted. Not thread-safe: the loop thread only.
 */
#ifndef DROVER_LOGRING_H
#define DROVER_LOGRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct logring_line {
    uint64_t seq;
    uint64_t ts_ms;
    const char *app;
    const char *source;
    const char *node;
    const char *text;
    size_t size; /* bytes it counts against max_bytes */
};

struct logring;

/* Refused lines of one source since its last successful push. */
struct logring_drops {
    uint64_t dropped;
};

/*
 * max_lines >= 1; max_bytes 0 for no byte limit. overwrite: evict the oldest
 * to make room (history); else refuse new lines when full (queue).
 */
struct logring *logring_new(size_t max_lines, size_t max_bytes, bool overwrite);
void logring_free(struct logring *r);

/*
 * Copy a line in (text[0..len), need not be NUL-terminated; app, source and
 * node are NUL-terminated, node may be NULL). Returns 0, -ENOBUFS when a
 * refusing ring is full, -EINVAL for a line larger than max_bytes, -ENOMEM.
 */
int logring_push(struct logring *r, uint64_t ts_ms, const char *app, const char *source,
                 const char *node, const char *text, size_t len);

/*
 * Push with drop accounting: when d->dropped > 0, first a marker line
 * "drover: N lines dropped (log buffer full)" from the same source, then the
 * line. A refused line is counted in d and -ENOBUFS returned.
 */
int logring_push_counted(struct logring *r, struct logring_drops *d, uint64_t ts_ms,
                         const char *app, const char *source, const char *node, const char *text,
                         size_t len);

/* A source ends: push its pending marker now (from the reserve if needed).
 * 0, or -ENOBUFS when even the reserve is full (counted as a lost marker). */
int logring_flush_drops(struct logring *r, struct logring_drops *d, uint64_t ts_ms, const char *app,
                        const char *source, const char *node);

size_t logring_count(const struct logring *r);
size_t logring_bytes(const struct logring *r);
/* i-th line from the oldest (0), or NULL past the end. */
const struct logring_line *logring_at(const struct logring *r, size_t i);
/* Drop the n oldest lines (a queue that sent them). */
void logring_pop(struct logring *r, size_t n);
/* seq of the oldest line kept (== logring_next_seq when empty). */
uint64_t logring_first_seq(const struct logring *r);
/* seq the next line will get; every line ever taken had a lower one. */
uint64_t logring_next_seq(const struct logring *r);
/* Index of the first kept line with seq > after (logring_count when none). */
size_t logring_index_after(const struct logring *r, uint64_t after);
/* Markers that could not be queued at all (reserve full). */
uint64_t logring_lost_markers(const struct logring *r);

#endif
