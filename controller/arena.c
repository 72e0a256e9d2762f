/* SPDX-License-Identifier: MIT */
/*
 * arena.c: a bump allocator for building one reply.
 *
 * A reply (a ps listing, an assignment set) is a tree of small protobuf-c
 * structs that live exactly as long as it takes to pack them. Allocating them
 * from one arena and freeing it after sealing means no handler has to free a
 * tree field by field, and no error path can leak half of one. Strings are
 * usually borrowed from the model instead of copied: the arena is freed before
 * control returns to the loop, while the model cannot change.
 *
 * A request from an endpoint is unpacked into its call's arena too
 * (ctl_arena_allocator): a report of a hundred instances is a hundred
 * structs and their strings, which protobuf-c would otherwise malloc one by
 * one and free one by one when the call ends (measured, issue 15: the
 * frees alone were 6 % of the controller's instructions in a placement).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

/*
 * Blocks grow from a page to 64 KiB, doubling. Measured (issue 15, 10,000
 * agents): every held watch is a call with its arena, and a first block of
 * 64 KiB each was 640 MiB of heap for 10,000 of them (resident only where
 * touched, but each answer touched fresh pages of its own block: page
 * faults were 12 % of the controller's time while a placement's sets went
 * out, and transparent huge pages made the whole 640 MiB resident).
 */
#define ARENA_FIRST_BLOCK 4000u /* with malloc's header, within a page */
#define ARENA_MAX_BLOCK (64u << 10)
/*
 * First blocks of freed arenas kept for the next calls, up to this many per
 * thread. Measured (issue 15, 10,000 agents acknowledging a placement):
 * malloc for the blocks that requests are unpacked into was 4 % of the
 * controller's time, a third of it faults of heap pages given back to the
 * system between calls and taken again. Not under AddressSanitizer, which
 * should see a block used after its arena was freed.
 */
#define ARENA_CACHE 256u

struct arena_block {
    struct arena_block *next;
    size_t used, size;
    _Alignas(max_align_t) unsigned char data[];
};

struct ctl_arena {
    struct arena_block *head;
    size_t next; /* the size of the next block; 0: the first */
};

#define FIRST_SIZE (ARENA_FIRST_BLOCK - sizeof(struct arena_block))

static _Thread_local struct arena_block *cache;
static _Thread_local unsigned ncache;

static struct arena_block *
block_new(size_t size)
{
    struct arena_block *b = cache;

    if (size == FIRST_SIZE && b != NULL) {
        cache = b->next;
        ncache--;
        return b;
    }
    return malloc(sizeof(*b) + size);
}

static void
block_free(struct arena_block *b)
{
#ifndef DROVER_ASAN
    if (b->size == FIRST_SIZE && ncache < ARENA_CACHE) {
        b->next = cache;
        cache = b;
        ncache++;
        return;
    }
#endif
    free(b);
}

struct ctl_arena *
ctl_arena_new(void)
{
    return calloc(1, sizeof(struct ctl_arena));
}

void
ctl_arena_free(struct ctl_arena *a)
{
    struct arena_block *b, *next;

    if (a == NULL)
        return;
    for (b = a->head; b != NULL; b = next) {
        next = b->next;
        block_free(b);
    }
    free(a);
}

void *
ctl_arena_alloc(struct ctl_arena *a, size_t size)
{
    struct arena_block *b = a->head;
    size_t need = (size + 15) & ~(size_t)15;
    void *p;

    if (need < size)
        return NULL;
    if (b == NULL || b->size - b->used < need) {
        size_t bsz = a->next != 0 ? a->next : FIRST_SIZE;

        if (bsz < need)
            bsz = need;
        b = block_new(bsz);
        if (b == NULL)
            return NULL;
        b->used = 0;
        b->size = bsz;
        b->next = a->head;
        a->head = b;
        a->next = bsz >= ARENA_MAX_BLOCK / 2 ? ARENA_MAX_BLOCK : 2 * bsz;
    }
    p = b->data + b->used;
    b->used += need;
    memset(p, 0, size);
    return p;
}

static void *
pb_alloc(void *data, size_t size)
{
    return ctl_arena_alloc(data, size);
}

static void
pb_free(void *data, void *p)
{
    (void)data;
    (void)p;
}

ProtobufCAllocator
ctl_arena_allocator(struct ctl_arena *a)
{
    return (ProtobufCAllocator){.alloc = pb_alloc, .free = pb_free, .allocator_data = a};
}

char *
ctl_arena_inst_name(struct ctl_arena *a, const char *type, uint32_t idx)
{
    char digits[11];
    size_t tlen = strlen(type), n = u32_dec(idx, digits);
    char *s;

    if ((s = ctl_arena_alloc(a, tlen + 1 + n + 1)) == NULL)
        return NULL;
    memcpy(s, type, tlen);
    s[tlen] = '.';
    memcpy(s + tlen + 1, digits, n);
    return s; /* zeroed: terminated */
}

char *
ctl_arena_printf(struct ctl_arena *a, const char *fmt, ...)
{
    va_list ap;
    int n;
    char *s;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    s = ctl_arena_alloc(a, (size_t)n + 1);
    if (s == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}
