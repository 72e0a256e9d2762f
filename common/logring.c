/* SPDX-License-Identifier: MIT */
/*
 * logring.c: see logring.h. A circular array of pointers to lines; each line
 * is one allocation (the struct followed by its strings), so a push is one
 * malloc and an eviction one free.
 */
#include "logring.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct logring {
    struct logring_line **v;
    size_t cap;       /* slots: max_lines + reserve */
    size_t max_lines; /* for ordinary lines */
    size_t max_bytes;
    size_t head, count, bytes;
    uint64_t next_seq;
    uint64_t lost_markers;
    bool overwrite;
};

struct logring *
logring_new(size_t max_lines, size_t max_bytes, bool overwrite)
{
    struct logring *r;

    if (max_lines == 0)
        return NULL;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->max_lines = max_lines;
    r->cap = overwrite ? max_lines : max_lines + max_lines / 8 + 8;
    r->max_bytes = max_bytes;
    r->overwrite = overwrite;
    r->next_seq = 1;
    r->v = calloc(r->cap, sizeof(*r->v));
    if (r->v == NULL) {
        free(r);
        return NULL;
    }
    return r;
}

void
logring_free(struct logring *r)
{
    if (r == NULL)
        return;
    logring_pop(r, r->count);
    free(r->v);
    free(r);
}

static struct logring_line *
line_new(uint64_t ts_ms, const char *app, const char *source, const char *node, const char *text,
         size_t len)
{
    size_t la = strlen(app) + 1, ls = strlen(source) + 1, ln = node ? strlen(node) + 1 : 1;
    struct logring_line *l = malloc(sizeof(*l) + la + ls + ln + len + 1);
    char *p;

    if (l == NULL)
        return NULL;
    p = (char *)(l + 1);
    l->ts_ms = ts_ms;
    l->app = memcpy(p, app, la);
    p += la;
    l->source = memcpy(p, source, ls);
    p += ls;
    l->node = p;
    if (node != NULL)
        memcpy(p, node, ln);
    else
        *p = '\0';
    p += ln;
    l->text = p;
    memcpy(p, text, len);
    p[len] = '\0';
    l->size = la + ls + ln + len + 1;
    return l;
}

/* marker: may use the reserve slots of a refusing ring. */
static int
push(struct logring *r, uint64_t ts_ms, const char *app, const char *source, const char *node,
     const char *text, size_t len, bool marker)
{
    struct logring_line *l;
    size_t limit = marker ? r->cap : r->max_lines;

    l = line_new(ts_ms, app, source, node, text, len);
    if (l == NULL)
        return -ENOMEM;
    if (r->max_bytes != 0 && l->size > r->max_bytes) {
        free(l);
        return -EINVAL;
    }
    if (r->overwrite) {
        while (r->count > 0 &&
               (r->count >= limit || (r->max_bytes != 0 && r->bytes + l->size > r->max_bytes)))
            logring_pop(r, 1);
    } else if (r->count >= limit ||
               (!marker && r->max_bytes != 0 && r->bytes + l->size > r->max_bytes)) {
        free(l);
        return -ENOBUFS;
    }
    l->seq = r->next_seq++;
    r->v[(r->head + r->count) % r->cap] = l;
    r->count++;
    r->bytes += l->size;
    return 0;
}

int
logring_push(struct logring *r, uint64_t ts_ms, const char *app, const char *source,
             const char *node, const char *text, size_t len)
{
    return push(r, ts_ms, app, source, node, text, len, false);
}

static int
push_marker(struct logring *r, struct logring_drops *d, uint64_t ts_ms, const char *app,
            const char *source, const char *node)
{
    char text[96];
    int n = snprintf(text, sizeof(text), "drover: %llu line%s dropped (log buffer full)",
                     (unsigned long long)d->dropped, d->dropped == 1 ? "" : "s");
    int rc = push(r, ts_ms, app, source, node, text, (size_t)n, true);

    if (rc == 0)
        d->dropped = 0;
    return rc;
}

int
logring_push_counted(struct logring *r, struct logring_drops *d, uint64_t ts_ms, const char *app,
                     const char *source, const char *node, const char *text, size_t len)
{
    int rc;

    /* The marker goes in only if the line itself will fit after it, so
     * that markers never eat the room that lines need. */
    if (d->dropped > 0) {
        if (!r->overwrite && (r->count >= r->max_lines ||
                              (r->max_bytes != 0 && r->bytes + len + 64 > r->max_bytes))) {
            d->dropped++;
            return -ENOBUFS;
        }
        if ((rc = push_marker(r, d, ts_ms, app, source, node)) < 0) {
            d->dropped++;
            return rc == -ENOMEM ? rc : -ENOBUFS;
        }
    }
    rc = logring_push(r, ts_ms, app, source, node, text, len);
    if (rc == -ENOBUFS || rc == -EINVAL)
        d->dropped++;
    return rc;
}

int
logring_flush_drops(struct logring *r, struct logring_drops *d, uint64_t ts_ms, const char *app,
                    const char *source, const char *node)
{
    int rc;

    if (d->dropped == 0)
        return 0;
    rc = push_marker(r, d, ts_ms, app, source, node);
    if (rc < 0) {
        r->lost_markers++;
        d->dropped = 0;
    }
    return rc;
}

size_t
logring_count(const struct logring *r)
{
    return r->count;
}

size_t
logring_bytes(const struct logring *r)
{
    return r->bytes;
}

const struct logring_line *
logring_at(const struct logring *r, size_t i)
{
    return i < r->count ? r->v[(r->head + i) % r->cap] : NULL;
}

void
logring_pop(struct logring *r, size_t n)
{
    while (n-- > 0 && r->count > 0) {
        struct logring_line *l = r->v[r->head];

        r->v[r->head] = NULL;
        r->bytes -= l->size;
        free(l);
        r->head = (r->head + 1) % r->cap;
        r->count--;
    }
}

uint64_t
logring_first_seq(const struct logring *r)
{
    return r->count > 0 ? r->v[r->head]->seq : r->next_seq;
}

uint64_t
logring_next_seq(const struct logring *r)
{
    return r->next_seq;
}

size_t
logring_index_after(const struct logring *r, uint64_t after)
{
    uint64_t first = logring_first_seq(r);

    /* seqs are consecutive within the ring */
    if (after < first)
        return 0;
    if (after - first + 1 >= r->count)
        return r->count;
    return (size_t)(after - first + 1);
}

uint64_t
logring_lost_markers(const struct logring *r)
{
    return r->lost_markers;
}
