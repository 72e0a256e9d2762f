/* SPDX-License-Identifier: MIT */
/*
 * beat.c: the UDP heartbeat datagram (beat.h).
 */
#include <errno.h>
#include <string.h>

#include "beat.h"
#include "pbread.h"

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
copy_cstr(char *dst, size_t dstsz, const char *s)
{
    size_t n = s != NULL ? strnlen(s, dstsz) : 0;

    if (n == 0 || n >= dstsz)
        return -EBADMSG;
    memcpy(dst, s, n + 1);
    return 0;
}

/* A string field into dst when it has 1..dstsz-1 characters (up to a
 * NUL, as C reads protobuf-c's copy). */
static int
copy_str(char *dst, size_t dstsz, const struct pb_field *f)
{
    size_t n = pb_strlen(f);

    if (n == 0 || n >= dstsz)
        return -EBADMSG;
    memcpy(dst, f->data, n);
    dst[n] = '\0';
    return 0;
}

/* A Heartbeat's fields into b (a field repeated: the last wins). */
static int
heartbeat_read(const uint8_t *p, size_t len, struct beat *b, bool *named)
{
    struct pb_in in = {p, p + len};
    struct pb_field f;
    int rc;

    while ((rc = pb_next(&in, &f)) > 0) {
        if (f.num == 1 || f.num == 2) { /* node, boot_id */
            if (f.type != PB_LEN)
                return -EBADMSG;
            if (f.num == 1 ? copy_str(b->node, sizeof(b->node), &f) < 0
                           : copy_str(b->boot_id, sizeof(b->boot_id), &f) < 0)
                return -EBADMSG;
            named[f.num - 1] = true;
        } else if (f.num >= 3 && f.num <= 6) {
            if (f.type != PB_VARINT)
                return -EBADMSG;
            if (f.num == 3)
                b->generation = f.v;
            else if (f.num == 4)
                b->digest = f.v;
            else if (f.num == 5)
                b->counter = f.v;
            else
                b->takes_summons = f.v != 0;
        }
    }
    return rc < 0 ? -EBADMSG : 0;
}

/*
 * The plaintext, a Message whose body is a Heartbeat (field 190), read by
 * hand (pbread.h): a Message with any other field is refused, stricter than
 * protobuf-c (which skips unknown fields), as no agent sends one. A body
 * sent twice: the last one, whole (protobuf-c replaces a oneof's message
 * rather than merging into it).
 */
static int
message_read(const uint8_t *p, size_t len, struct beat *b)
{
    struct pb_in in = {p, p + len};
    struct pb_field f;
    bool named[2] = {false, false}, seen = false;
    int rc;

    while ((rc = pb_next(&in, &f)) > 0) {
        if (f.num != DROVER__MESSAGE__BODY_HEARTBEAT || f.type != PB_LEN)
            return -EBADMSG;
        memset(b, 0, sizeof(*b));
        named[0] = named[1] = false;
        if (heartbeat_read(f.data, f.len, b, named) < 0)
            return -EBADMSG;
        seen = true;
    }
    return rc < 0 || !seen || !named[0] || !named[1] ? -EBADMSG : 0;
}

/* Opened thousands of times a second by a controller: the plaintext in a
 * stack arena (wire_open_plain), read without protobuf-c, no malloc. */
int
beat_open(const uint8_t *buf, size_t len, int key, int key_next, struct beat *b)
{
    struct wire_header hdr = {0};
    struct wire_arena a;
    const uint8_t *plain = NULL;
    size_t plen = 0;
    int rc;

    memset(b, 0, sizeof(*b));
    if (len > BEAT_DATAGRAM_MAX)
        return -EMSGSIZE;
    wire_arena_init(&a);
    if ((rc = wire_open_plain(buf, len, &hdr, &a, &plain, &plen)) < 0)
        return rc;
    if (hdr.key < 0 || (hdr.key != key && hdr.key != key_next))
        rc = -EKEYREJECTED;
    else if (message_read(plain, plen, b) < 0 || strcmp(hdr.sender, b->node) != 0)
        rc = -EBADMSG;
    wire_plain_free(&a, buf, len, plain, plen);
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
             copy_cstr(sm->node, sizeof(sm->node), m->summon->node) < 0)
        rc = -EBADMSG;
    else
        sm->term = m->summon->term;
    wire_msg_free(m);
    if (rc < 0)
        memset(sm, 0, sizeof(*sm));
    return rc;
}
