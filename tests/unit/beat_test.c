/* SPDX-License-Identifier: MIT */
/*
 * UDP heartbeats (common/beat.c, controller/beat.c): a datagram opens only
 * when sealed with the cluster key and well formed; garbage, a wrong key, a
 * replay, a counter not above the last accepted, an unknown node or boot are
 * refused and change nothing; an accepted one marks its node heard and asks
 * for a sync when the agent's generation or digest differ.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "beat.h"
#include "ctl.h"
#include "log.h"

static struct ctl_model *m;
static int slot;
static uint8_t cluster[WIRE_KEY_BYTES], other[WIRE_KEY_BYTES];

static void
setup(void)
{
    log_set_level(LOG_ERROR);
    wire_keyring_reset();
    memset(cluster, 7, sizeof(cluster));
    memset(other, 9, sizeof(other));
    slot = wire_keyring_add("cluster", cluster);
    cr_assert_geq(slot, 0);
    m = ctl_model_new();
}

static void
teardown(void)
{
    ctl_model_free(m);
    wire_keyring_reset();
}

TestSuite(beat, .init = setup, .fini = teardown);

static struct ctl_node *
node(const char *name, const char *boot)
{
    struct ctl_node *n = NULL;

    cr_assert_eq(ctl_node_add(m, name, &n), 0);
    ctl_node_update(m, n, false, CTL_NODE_READY, false);
    snprintf(n->boot_id, sizeof(n->boot_id), "%s", boot);
    n->generation = 5;
    n->digest = 77;
    n->have_digest = true;
    n->last_seen_ms = 1;
    return n;
}

/* One heartbeat of node/boot sealed by s: opened and applied at now. */
static int
beat(struct wire_sender *s, const char *nodename, const char *boot, uint64_t counter, uint64_t gen,
     uint64_t now, bool *wake)
{
    struct beat b = {0}, got;
    struct ctl_node *n;
    uint8_t *buf;
    size_t len;
    int rc;

    snprintf(b.node, sizeof(b.node), "%s", nodename);
    snprintf(b.boot_id, sizeof(b.boot_id), "%s", boot);
    b.generation = gen;
    b.digest = 77;
    b.counter = counter;
    cr_assert_eq(beat_seal(s, &b, &buf, &len), 0);
    rc = beat_open(buf, len, slot, -1, &got);
    free(buf);
    if (rc < 0)
        return rc;
    cr_assert_eq(got.counter, counter);
    return ctl_beat_apply(m, &got, now, &n, wake);
}

Test(beat, accepted_marks_heard_and_wakes_only_on_a_difference)
{
    struct ctl_node *n = node("n1", "boot-a");
    struct wire_sender s;
    bool wake = true;

    wire_sender_init(&s, "n1");
    wire_sender_set_key(&s, cluster);
    cr_assert_eq(beat(&s, "n1", "boot-a", 1, 5, 1000, &wake), 0);
    cr_assert_eq(n->last_seen_ms, 1000);
    cr_assert_not(wake);
    cr_assert(ctl_beat_recent(n, 1500, 1000));
    cr_assert_not(ctl_beat_recent(n, 3000, 1000));
    /* Another generation: once may be a datagram overtaking a sync; twice in
     * a row asks for a sync. */
    cr_assert_eq(beat(&s, "n1", "boot-a", 2, 6, 2000, &wake), 0);
    cr_assert_not(wake);
    cr_assert_eq(beat(&s, "n1", "boot-a", 3, 6, 3000, &wake), 0);
    cr_assert(wake);
    cr_assert_eq(beat(&s, "n1", "boot-a", 4, 5, 4000, &wake), 0);
    cr_assert_not(wake);
}

Test(beat, replayed_or_old_counter_unknown_node_or_boot_refused)
{
    struct ctl_node *n = node("n1", "boot-a");
    struct wire_sender s, s2;
    struct beat b = {0}, got;
    uint8_t *buf;
    size_t len;
    bool wake;

    wire_sender_init(&s, "n1");
    wire_sender_set_key(&s, cluster);
    snprintf(b.node, sizeof(b.node), "n1");
    snprintf(b.boot_id, sizeof(b.boot_id), "boot-a");
    b.counter = 10;
    cr_assert_eq(beat_seal(&s, &b, &buf, &len), 0);
    cr_assert_eq(beat_open(buf, len, slot, -1, &got), 0);
    cr_assert_eq(ctl_beat_apply(m, &got, 500, &(struct ctl_node *){NULL}, &wake), 0);
    cr_assert_eq(beat_open(buf, len, slot, -1, &got), -EALREADY); /* the same bytes again */
    free(buf);
    /* freshly sealed, but a counter not above the last accepted */
    cr_assert_eq(beat(&s, "n1", "boot-a", 10, 5, 600, &wake), -EALREADY);
    cr_assert_eq(beat(&s, "n1", "boot-a", 3, 5, 600, &wake), -EALREADY);
    cr_assert_eq(n->last_seen_ms, 500);
    cr_assert_eq(beat(&s, "n1", "boot-b", 11, 5, 700, &wake), -ENOENT); /* another boot */
    wire_sender_init(&s2, "n9");
    wire_sender_set_key(&s2, cluster);
    cr_assert_eq(beat(&s2, "n9", "boot-a", 1, 5, 700, &wake), -ENOENT); /* unknown node */
    cr_assert_eq(n->last_seen_ms, 500);
    /* a new boot of the node starts its counter again */
    snprintf(n->boot_id, sizeof(n->boot_id), "boot-b");
    cr_assert_eq(beat(&s, "n1", "boot-b", 1, 5, 800, &wake), 0);
    cr_assert_eq(n->last_seen_ms, 800);
}

Test(beat, wrong_key_other_sender_garbage_and_other_messages_refused)
{
    struct wire_sender s, liar;
    Drover__Message msg = DROVER__MESSAGE__INIT;
    Drover__Ok ok = DROVER__OK__INIT;
    struct beat b = {0}, got;
    uint8_t *buf, junk[600];
    size_t len, i;
    bool wake;

    node("n1", "boot-a");
    wire_sender_init(&s, "n1");
    wire_sender_set_key(&s, other);
    cr_assert_eq(beat(&s, "n1", "boot-a", 1, 5, 100, &wake), -EKEYREJECTED);
    /* sealed right, but by a sender that is not the node it names */
    wire_sender_init(&liar, "n2");
    wire_sender_set_key(&liar, cluster);
    cr_assert_eq(beat(&liar, "n1", "boot-a", 1, 5, 100, &wake), -EBADMSG);
    /* sealed right, not a heartbeat */
    msg.body_case = DROVER__MESSAGE__BODY_OK;
    msg.ok = &ok;
    wire_sender_set_key(&s, cluster);
    cr_assert_eq(wire_seal(&s, &msg, &buf, &len), 0);
    cr_assert_eq(beat_open(buf, len, slot, -1, &got), -EBADMSG);
    free(buf);
    /* empty strings */
    cr_assert_eq(beat_seal(&s, &b, &buf, &len), 0);
    cr_assert_eq(beat_open(buf, len, slot, -1, &got), -EBADMSG);
    /* every truncation and one flipped bit of a good one */
    snprintf(b.node, sizeof(b.node), "n1");
    snprintf(b.boot_id, sizeof(b.boot_id), "boot-a");
    b.counter = 1;
    free(buf);
    cr_assert_eq(beat_seal(&s, &b, &buf, &len), 0);
    for (i = 0; i < len; i++)
        cr_assert_lt(beat_open(buf, i, slot, -1, &got), 0);
    buf[len / 2] ^= 1;
    cr_assert_lt(beat_open(buf, len, slot, -1, &got), 0);
    free(buf);
    for (i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 131 + 7);
    cr_assert_lt(beat_open(junk, sizeof(junk), slot, -1, &got), 0);
    cr_assert_eq(beat_open(junk, BEAT_DATAGRAM_MAX + 1, slot, -1, &got), -EMSGSIZE);
}

Test(beat, a_summons_opens_once_with_the_cluster_key_and_nothing_else_does)
{
    struct wire_sender ctl, wrong;
    struct summons sm = {.term = 7}, got;
    struct beat b = {0};
    uint8_t *buf, *beatbuf;
    size_t len, beatlen, i;

    snprintf(sm.node, sizeof(sm.node), "n1");
    wire_sender_init(&ctl, "controller");
    wire_sender_set_key(&ctl, cluster);
    cr_assert_eq(summons_seal(&ctl, &sm, &buf, &len), 0);
    cr_assert_eq(summons_open(buf, len, &got), 0);
    cr_assert_str_eq(got.node, "n1");
    cr_assert_eq(got.term, 7);
    /* the same datagram again: a replay */
    cr_assert_lt(summons_open(buf, len, &got), 0);
    cr_assert_str_eq(got.node, "");
    /* every truncation and one flipped bit of a fresh one */
    free(buf);
    cr_assert_eq(summons_seal(&ctl, &sm, &buf, &len), 0);
    for (i = 0; i < len; i++)
        cr_assert_lt(summons_open(buf, i, &got), 0);
    buf[len / 2] ^= 1;
    cr_assert_lt(summons_open(buf, len, &got), 0);
    free(buf);
    /* another key */
    wire_sender_init(&wrong, "controller2");
    wire_sender_set_key(&wrong, other);
    cr_assert_eq(summons_seal(&wrong, &sm, &buf, &len), 0);
    cr_assert_lt(summons_open(buf, len, &got), 0);
    free(buf);
    /* a heartbeat is not a summons, nor a summons a heartbeat; no node */
    snprintf(b.node, sizeof(b.node), "n1");
    snprintf(b.boot_id, sizeof(b.boot_id), "boot-a");
    b.counter = 1;
    b.takes_summons = true;
    wire_sender_init(&wrong, "n1");
    wire_sender_set_key(&wrong, cluster);
    cr_assert_eq(beat_seal(&wrong, &b, &beatbuf, &beatlen), 0);
    cr_assert_eq(summons_open(beatbuf, beatlen, &got), -EBADMSG);
    free(beatbuf);
    cr_assert_eq(summons_seal(&ctl, &sm, &buf, &len), 0);
    cr_assert_eq(beat_open(buf, len, slot, -1, &b), -EBADMSG);
    free(buf);
    sm.node[0] = '\0';
    cr_assert_eq(summons_seal(&ctl, &sm, &buf, &len), 0);
    cr_assert_eq(summons_open(buf, len, &got), -EBADMSG);
    free(buf);
}
