/* SPDX-License-Identifier: MIT */
/*
 * bytewin.c: a window of a byte stream named by offsets (bytewin.h). The
 * bytes are kept contiguous, acknowledged ones moved out at once: windows
 * are small (a relay holds at most a few hundred KiB per stream) and a
 * contiguous window is what a message carries, with no copy.
 */
#include "bytewin.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void
bytewin_init(struct bytewin *w, size_t max)
{
    memset(w, 0, sizeof(*w));
    w->max = max;
}

void
bytewin_fini(struct bytewin *w)
{
    free(w->data);
    w->data = NULL;
    w->len = w->cap = 0;
}

uint64_t
bytewin_end(const struct bytewin *w)
{
    return w->base + w->len;
}

static int
reserve(struct bytewin *w, size_t add)
{
    size_t cap = w->cap ? w->cap : 16384;
    uint8_t *nd;

    if (w->len + add <= w->cap)
        return 0;
    while (cap < w->len + add)
        cap *= 2;
    if ((nd = realloc(w->data, cap)) == NULL)
        return -ENOMEM;
    w->data = nd;
    w->cap = cap;
    return 0;
}

int
bytewin_append(struct bytewin *w, const void *d, size_t n)
{
    int rc;

    if (w->max > 0 && n > w->max - (w->len < w->max ? w->len : w->max))
        return -ENOBUFS;
    if ((rc = reserve(w, n)) < 0)
        return rc;
    if (n > 0)
        memcpy(w->data + w->len, d, n);
    w->len += n;
    return 0;
}

size_t
bytewin_take(struct bytewin *w, uint64_t off, const void *d, size_t n)
{
    uint64_t end = bytewin_end(w);
    size_t skip, add;

    if (off > end || off + n <= end)
        return 0;
    skip = (size_t)(end - off);
    add = n - skip;
    if (w->max > 0) {
        if (w->len >= w->max)
            return 0;
        if (add > w->max - w->len)
            add = w->max - w->len;
    }
    if (reserve(w, add) < 0)
        return 0;
    memcpy(w->data + w->len, (const uint8_t *)d + skip, add);
    w->len += add;
    return add;
}

void
bytewin_ack(struct bytewin *w, uint64_t have)
{
    size_t n;

    if (have <= w->base)
        return;
    if (have > bytewin_end(w))
        have = bytewin_end(w);
    n = (size_t)(have - w->base);
    memmove(w->data, w->data + n, w->len - n);
    w->len -= n;
    w->base = have;
}

size_t
bytewin_from(const struct bytewin *w, uint64_t from, size_t chunk, uint64_t *off, uint8_t **data)
{
    size_t n;

    if (from < w->base)
        from = w->base;
    if (from > bytewin_end(w))
        from = bytewin_end(w);
    *off = from;
    *data = w->data != NULL ? w->data + (size_t)(from - w->base) : NULL;
    n = (size_t)(bytewin_end(w) - from);
    return n < chunk ? n : chunk;
}

void
bytewin_discard(struct bytewin *w)
{
    w->base += w->len;
    w->len = 0;
}
