/* SPDX-License-Identifier: MIT */
/*
 * beat.c: the UDP heartbeat datagram (beat.h).
 */
#include <errno.h>
#include <string.h>

#include "beat.h"

int
beat_seal(struct wire_sender *s, const struct beat *b, uint8_t **out, size_t *outlen)
{
    Drover__Message m = DROVER__MESSAGE__INIT;
    Drover__Heartbeat h = DROVER__HEARTBEAT__INIT;

    h.node = (char *)b->node;
    h.boot_id = (char *)b->boot_id;
    h.generation = b->generation;
    h.digest = b->digest;
    h.counter = b->counter;
    h.takes_summons = b->takes_summons;
    m.body_case = DROVER__MESSAGE__BODY_HEARTBEAT;
    m.heartbeat = &h;
    return wire_seal(s, &m, out, outlen);
}

/* Copy s into dst when it has 1..dstsz-1 characters. */
static int
copy_str(char *dst, size_t dstsz, const char *s)
{
    size_t n = s != NULL ? strnlen(s, dstsz) : 0;

    if (n == 0 || n >= dstsz)
        return -EBADMSG;
    memcpy(dst, s, n + 1);
    return 0;
}

/* Opened thousands of times a second by a controller: unpacked on the
 * stack (wire_open_arena), no malloc. */
int
beat_open(const uint8_t *buf, size_t len, int key, int key_next, struct beat *b)
{
    struct wire_header hdr = {0};
    struct wire_arena a;
    Drover__Message *m = NULL;
    const Drover__Heartbeat *h;
    int rc;

    memset(b, 0, sizeof(*b));
    if (len > BEAT_DATAGRAM_MAX)
        return -EMSGSIZE;
    wire_arena_init(&a);
    if ((rc = wire_open_arena(buf, len, &hdr, &a, &m)) < 0)
        return rc;
    if (hdr.key < 0 || (hdr.key != key && hdr.key != key_next))
        rc = -EKEYREJECTED;
    else if (m->body_case != DROVER__MESSAGE__BODY_HEARTBEAT || (h = m->heartbeat) == NULL)
        rc = -EBADMSG;
    else if (copy_str(b->node, sizeof(b->node), h->node) < 0 ||
             copy_str(b->boot_id, sizeof(b->boot_id), h->boot_id) < 0 ||
             strcmp(hdr.sender, b->node) != 0)
        rc = -EBADMSG;
    else {
        b->generation = h->generation;
        b->digest = h->digest;
        b->counter = h->counter;
        b->takes_summons = h->takes_summons;
    }
    wire_arena_msg_free(&a, m);
    if (rc < 0)
        memset(b, 0, sizeof(*b));
    return rc;
}

int
summons_seal(struct wire_sender *s, const struct summons *sm, uint8_t **out, size_t *outlen)
{
    Drover__Message m = DROVER__MESSAGE__INIT;
    Drover__Summon h = DROVER__SUMMON__INIT;

    h.node = (char *)sm->node;
    h.term = sm->term;
    m.body_case = DROVER__MESSAGE__BODY_SUMMON;
    m.summon = &h;
    return wire_seal(s, &m, out, outlen);
}

int
summons_open(const uint8_t *buf, size_t len, struct summons *sm)
{
    struct wire_header hdr = {0};
    Drover__Message *m = NULL;
    int rc;

    memset(sm, 0, sizeof(*sm));
    if (len > BEAT_DATAGRAM_MAX)
        return -EMSGSIZE;
    if ((rc = wire_open(buf, len, &hdr, &m)) < 0)
        return rc;
    if (!hdr.sealed || hdr.key < 0)
        rc = -EKEYREJECTED;
    else if (m->body_case != DROVER__MESSAGE__BODY_SUMMON || m->summon == NULL ||
             copy_str(sm->node, sizeof(sm->node), m->summon->node) < 0)
        rc = -EBADMSG;
    else
        sm->term = m->summon->term;
    wire_msg_free(m);
    if (rc < 0)
        memset(sm, 0, sizeof(*sm));
    return rc;
}
