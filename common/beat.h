/* SPDX-License-Identifier: MIT */
/*
 * beat.h: the UDP heartbeat datagram (issue 15; docs/protocol.md, "UDP
 * heartbeats").
 *
 * A heartbeat is a Drover__Message whose body is a Heartbeat (node, boot_id,
 * generation, digest, a per-boot counter), sealed by wire_seal() with the
 * sender's key exactly as a nanomsg envelope is, and sent as one datagram to
 * the controller's agent endpoint (same address and port, UDP). The agent
 * sends one per heartbeat; nothing answers it, but a controller that hears
 * a node it holds no watch of may send a summons back (below).
 *
 * beat_open() is the whole parse: anything that is not an envelope sealed
 * with one of the accepted key slots, replayed (wire_open's replay state),
 * not a Heartbeat, from a sender other than the node it names, or with
 * strings out of bounds is refused with a negative errno and changes
 * nothing. The replay check per node and boot (counter above the last one
 * accepted) is the controller's (controller/beat.c), which knows the nodes.
 */
#ifndef DROVER_BEAT_H
#define DROVER_BEAT_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"
#include "wire.h"

#define BEAT_DATAGRAM_MAX 1024 /* a heartbeat is ~150 bytes; larger is refused */
/* The longest watch an agent that sends heartbeats asks for, in heartbeats
 * (node-agent/conn.c), and in ms when the controller summons it. */
#define BEAT_UDP_HOLD_BEATS 4
#define BEAT_SUMMON_HOLD_MAX_MS 300000u

struct beat {
    char node[NODE_NAME_MAX + 1];
    char boot_id[64];
    uint64_t generation;
    uint64_t digest;
    uint64_t counter;
    bool takes_summons; /* the agent acts on summonses */
};

/*
 * A summons: the controller's "sync with me now", one sealed datagram
 * (Summon: node, term) to the source address of the node's heartbeat.
 */
struct summons {
    char node[NODE_NAME_MAX + 1];
    uint64_t term;
};

/* Seal b as one datagram; *out is malloc'd. Returns as wire_seal(). */
int beat_seal(struct wire_sender *s, const struct beat *b, uint8_t **out, size_t *outlen);

/*
 * Open one received datagram: 0 with b filled, or a negative errno:
 * wire_open()'s errors, -EKEYREJECTED when a key other than key or
 * key_next (-1: none) opened it, -EMSGSIZE when over BEAT_DATAGRAM_MAX,
 * -EBADMSG when it is not a well-formed Heartbeat from the node it names.
 */
int beat_open(const uint8_t *buf, size_t len, int key, int key_next, struct beat *b);

int summons_seal(struct wire_sender *s, const struct summons *m, uint8_t **out, size_t *outlen);
/* As beat_open, for a Summon sealed with any key of the keyring (an agent's
 * keyring holds the cluster keys only). */
int summons_open(const uint8_t *buf, size_t len, struct summons *m);

#endif
