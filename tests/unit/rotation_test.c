/* SPDX-License-Identifier: MIT */
/*
 * Key rotation (DROVER_CLUSTER_KEY_NEXT): a keyring holding the cluster key
 * and the next one opens envelopes sealed with either, says which slot
 * opened each, keeps one replay state per key, and still refuses a key it
 * does not hold; once the old key is dropped, its envelopes are refused.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>

#include "wire.h"

static const char *hex_old = "0101010101010101010101010101010101010101010101010101010101010101";
static const char *hex_new = "0202020202020202020202020202020202020202020202020202020202020202";
static const char *hex_other = "0303030303030303030303030303030303030303030303030303030303030303";

static void
fini(void)
{
    wire_keyring_reset();
}

TestSuite(rotation, .fini = fini, .timeout = 5);

static void
key(const char *hex, uint8_t k[WIRE_KEY_BYTES])
{
    cr_assert_eq(wire_key_parse_hex(hex, k), 0);
}

/* Seal a Ps request from sender id with hex's key; open it; its rc and slot. */
static int
round_trip(const char *id, const char *hex, int *slot)
{
    struct wire_sender s;
    uint8_t k[WIRE_KEY_BYTES], *buf = NULL;
    size_t len = 0;
    Drover__Message m, *got = NULL;
    Drover__PsReq req;
    struct wire_header h = {0};
    int rc;

    key(hex, k);
    wire_sender_init(&s, id);
    wire_sender_set_key(&s, k);
    drover__message__init(&m);
    drover__ps_req__init(&req);
    req.app = "shop";
    m.body_case = DROVER__MESSAGE__BODY_PS_REQ;
    m.ps_req = &req;
    cr_assert_eq(wire_seal(&s, &m, &buf, &len), 0);
    rc = wire_open(buf, len, &h, &got);
    *slot = h.key;
    wire_msg_free(got);
    free(buf);
    return rc;
}

Test(rotation, both_keys_open_and_say_which)
{
    uint8_t k[WIRE_KEY_BYTES];
    int old_slot, new_slot, slot;

    wire_keyring_reset();
    key(hex_old, k);
    old_slot = wire_keyring_add("cluster", k);
    key(hex_new, k);
    new_slot = wire_keyring_add("cluster", k);
    cr_assert(old_slot >= 0 && new_slot >= 0 && old_slot != new_slot);
    cr_assert_eq(round_trip("node1", hex_old, &slot), 0);
    cr_assert_eq(slot, old_slot);
    cr_assert_eq(round_trip("node2", hex_new, &slot), 0);
    cr_assert_eq(slot, new_slot);
    /* The same sender moving to the new key mid-stream: its own replay state. */
    cr_assert_eq(round_trip("node1", hex_new, &slot), 0);
    cr_assert_eq(slot, new_slot);
    cr_assert_eq(round_trip("node3", hex_other, &slot), -EKEYREJECTED);
}

Test(rotation, after_the_rotation_the_old_key_is_refused)
{
    uint8_t k[WIRE_KEY_BYTES];
    int slot;

    wire_keyring_reset();
    key(hex_new, k);
    cr_assert_geq(wire_keyring_add("cluster", k), 0);
    cr_assert_eq(round_trip("node1", hex_new, &slot), 0);
    cr_assert_eq(round_trip("node2", hex_old, &slot), -EKEYREJECTED);
}

Test(rotation, the_next_key_may_not_be_another_roles_key)
{
    uint8_t k[WIRE_KEY_BYTES];

    wire_keyring_reset();
    key(hex_old, k);
    cr_assert_geq(wire_keyring_add("api", k), 0);
    cr_assert_eq(wire_keyring_add("cluster", k), -EEXIST);
}
