/* SPDX-License-Identifier: MIT */
/*
 * drain_buf.c: one drain's bounded buffer, and the drop accounting that lets
 * `drover: N lines dropped (drain buffer full)` count exactly.
 *
 * Every line gets a sequence number. Three marks split them: lines at or
 * below taken_upto are in a batch or delivered; the ring holds what is not
 * yet acked (the oldest first), so the sender can resend a batch's tail
 * after a reconnect; when the ring is full the oldest line leaves it, and
 * only a line no batch holds counts as dropped. The next batch taken starts
 * with one marker for all the lines dropped since the previous one, in the
 * place where they were, so every pushed line is exactly one of: delivered,
 * counted by a marker (delivered or pending), or still waiting.
 *
 * Not thread-safe; drains.c locks around it. Pure otherwise: unit-tested.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "drain.h"

struct line {
    uint64_t seq, ts_ms;
    int severity;
    const char *source, *node;
    size_t len;
    char text[]; /* text, NUL, source, NUL, node, NUL */
};

struct drain_buf {
    struct line **v;
    size_t cap, head, count;
    uint64_t next_seq;
    uint64_t taken_upto;
    uint64_t dropped_pending;
    uint64_t dropped_total;
    uint64_t sent;
};

struct drain_buf *
drain_buf_new(size_t max_lines)
{
    struct drain_buf *b;

    if (max_lines == 0 || (b = calloc(1, sizeof(*b))) == NULL)
        return NULL;
    b->v = calloc(max_lines, sizeof(*b->v));
    if (b->v == NULL) {
        free(b);
        return NULL;
    }
    b->cap = max_lines;
    b->next_seq = 1;
    return b;
}

static void
pop(struct drain_buf *b)
{
    free(b->v[b->head]);
    b->v[b->head] = NULL;
    b->head = (b->head + 1) % b->cap;
    b->count--;
}

void
drain_buf_free(struct drain_buf *b)
{
    if (b == NULL)
        return;
    while (b->count > 0)
        pop(b);
    free(b->v);
    free(b);
}

static struct line *
at(const struct drain_buf *b, size_t i)
{
    return b->v[(b->head + i) % b->cap];
}

/* Append l (takes ownership); when full, the oldest goes first. */
static void
insert(struct drain_buf *b, struct line *l)
{
    if (b->count == b->cap) {
        /* Only a line no batch holds is a drop. */
        if (at(b, 0)->seq > b->taken_upto) {
            b->dropped_pending++;
            b->dropped_total++;
        }
        pop(b);
    }
    l->seq = b->next_seq++;
    b->v[(b->head + b->count) % b->cap] = l;
    b->count++;
}

int
drain_buf_push(struct drain_buf *b, uint64_t ts_ms, int severity, const char *source,
               const char *node, const char *text, size_t len)
{
    size_t ls = strlen(source) + 1, ln = (node ? strlen(node) : 0) + 1;
    struct line *l = malloc(sizeof(*l) + len + 1 + ls + ln);
    char *p;

    if (l == NULL)
        return -ENOMEM;
    l->ts_ms = ts_ms;
    l->severity = severity;
    l->len = len;
    memcpy(l->text, text, len);
    l->text[len] = '\0';
    p = l->text + len + 1;
    l->source = memcpy(p, source, ls);
    p += ls;
    l->node = p;
    if (node != NULL)
        memcpy(p, node, ln);
    else
        *p = '\0';
    insert(b, l);
    return 0;
}

void
drain_buf_move(struct drain_buf *dst, struct drain_buf *src)
{
    /* src only queues (nothing taken from it): its lines keep their order
     * and become dst's newest, numbered by dst. */
    while (src->count > 0) {
        struct line *l = src->v[src->head];

        src->v[src->head] = NULL;
        src->head = (src->head + 1) % src->cap;
        src->count--;
        insert(dst, l);
    }
}

size_t
drain_buf_count(const struct drain_buf *b)
{
    return b->count;
}

bool
drain_buf_full(const struct drain_buf *b)
{
    return b->count == b->cap;
}

/* Index of the first line no batch holds. */
static size_t
first_untaken(const struct drain_buf *b)
{
    uint64_t first;

    if (b->count == 0)
        return 0;
    first = at(b, 0)->seq;
    if (b->taken_upto < first)
        return 0;
    if (b->taken_upto - first + 1 >= b->count)
        return b->count;
    return (size_t)(b->taken_upto - first + 1);
}

size_t
drain_buf_pending(const struct drain_buf *b)
{
    return b->count - first_untaken(b) + (b->dropped_pending > 0);
}

static int
msg_push(struct drain_batch *bt, uint64_t upto, bool marker)
{
    if (bt->n == bt->cap) {
        size_t cap = bt->cap ? bt->cap * 2 : 64;
        struct drain_msg *v = realloc(bt->v, cap * sizeof(*v));

        if (v == NULL)
            return -ENOMEM;
        bt->v = v;
        bt->cap = cap;
    }
    bt->v[bt->n].end = bt->bytes.len;
    bt->v[bt->n].upto = upto;
    bt->v[bt->n].marker = marker;
    bt->n++;
    return 0;
}

void
drain_batch_reset(struct drain_batch *bt)
{
    bt->bytes.len = 0;
    bt->n = bt->acked = bt->acked_off = 0;
    bt->frame_id[0] = '\0';
}

void
drain_batch_fini(struct drain_batch *bt)
{
    drain_bytes_fini(&bt->bytes);
    free(bt->v);
    memset(bt, 0, sizeof(*bt));
}

long
drain_buf_take(struct drain_buf *b, struct drain_batch *bt, const char *host, const char *app,
               size_t max_msgs, size_t max_bytes, uint64_t now)
{
    size_t i = first_untaken(b);
    unsigned char id[16];
    bool fresh = bt->acked == bt->n;

    if (!fresh && bt->acked > 0)
        return -EINVAL; /* only a batch nothing of which went out may grow */
    if (fresh)
        drain_batch_reset(bt);
    max_msgs += bt->n;
    if (b->dropped_pending > 0) {
        char text[96];
        int n =
            snprintf(text, sizeof(text), DRAIN_MARKER_FMT, (unsigned long long)b->dropped_pending);
        uint64_t upto = i < b->count ? at(b, i)->seq - 1 : b->next_seq - 1;

        if (drain_frame_append(&bt->bytes, DRAIN_SEV_NOTICE, now, host, app, "drover", text,
                               (size_t)n) < 0 ||
            msg_push(bt, upto, true) < 0)
            return -ENOMEM;
        b->dropped_pending = 0;
        b->taken_upto = upto;
    }
    for (; i < b->count && bt->n < max_msgs && bt->bytes.len < max_bytes; i++) {
        const struct line *l = at(b, i);

        if (drain_frame_append(&bt->bytes, l->severity, l->ts_ms,
                               l->node[0] != '\0' ? l->node : host, app, l->source, l->text,
                               l->len) < 0 ||
            msg_push(bt, l->seq, false) < 0)
            return -ENOMEM;
        b->taken_upto = l->seq;
    }
    if (fresh && bt->n > 0) {
        randombytes_buf(id, sizeof(id));
        sodium_bin2hex(bt->frame_id, sizeof(bt->frame_id), id, sizeof(id));
    }
    return (long)bt->n;
}

void
drain_buf_ack(struct drain_buf *b, struct drain_batch *bt, size_t n)
{
    uint64_t upto;

    if (n > bt->n)
        n = bt->n;
    if (n <= bt->acked)
        return;
    for (size_t k = bt->acked; k < n; k++)
        b->sent += !bt->v[k].marker;
    upto = bt->v[n - 1].upto;
    while (b->count > 0 && at(b, 0)->seq <= upto)
        pop(b);
    bt->acked = n;
    bt->acked_off = bt->v[n - 1].end;
}

void
drain_buf_stats(const struct drain_buf *b, struct drain_stats *s)
{
    s->sent = b->sent;
    s->buffered = b->count;
    s->dropped = b->dropped_total;
}
