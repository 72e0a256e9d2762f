/* SPDX-License-Identifier: MIT */
/*
 * wire.h: the envelope around every message: sealing, opening, replay
 * protection and the version check.
 *
 * Sealing. wire_seal() packs a Drover__Message, encrypts it with the
 * sender's key (libsodium XChaCha20-Poly1305, a random 24-byte nonce) and
 * wraps it in an Envelope whose header (version, sender id, counter, key id)
 * is the associated data: nothing in the header can be changed without the
 * envelope failing to open. The key lives in struct wire_sender, set once at
 * start with wire_sender_set_key(); call sites only ever call
 * wire_seal(&sender, &msg, &buf, &len).
 *
 * Opening. wire_open() looks the envelope's key id up in a process-wide
 * keyring filled once at start with wire_keyring_add() (the controller holds
 * the cluster key and the key derived from the API token; an agent the
 * cluster key; the CLI the API key), decrypts and checks the tag, then checks
 * the counter against the replay state kept here, per (key, sender id):
 *   - a counter above the sender's highest is accepted;
 *   - one below it is accepted once if it is newer than every counter the
 *     receiver has forgotten (it remembers the WIRE_REPLAY_WINDOW highest it
 *     accepted): a sender's messages may arrive reordered across its
 *     sockets, but none is accepted twice;
 *   - the first counter heard from a sender must be within WIRE_FRESH_MS of
 *     this process's clock (counter >> 16 is the sender's unix ms), so a
 *     receiver that forgot a sender (restart, eviction after 2 x
 *     WIRE_FRESH_MS of silence) cannot be fed its old messages.
 * Only messages that authenticate touch the replay state, so junk cannot
 * evict anything. Callers learn which key opened a message (hdr->key) and
 * check it is the one their endpoint accepts.
 *
 * Counters. A sender's counter is max(last + 1, unix_ms << 16): it keeps
 * increasing across the sender's own restarts (as long as the wall clock
 * does not step back past the last message) without any state on disk, and
 * stays within milliseconds of the clock at any rate below 65536 messages
 * per millisecond. A sender id is unique per process: the CLI uses
 * "cli.RANDOM" for each run.
 *
 * Resends. A message is accepted once. nanomsg's REQ socket resends the
 * identical bytes when no reply came; such a resend is refused as replayed
 * (and answered with a refusal). So every REQ user here re-seals and re-sends
 * a request itself when it needs to (agents: conn.c, slugs.c) and sets
 * NN_REQ_RESEND_IVL past its own timeout.
 *
 * Keyless mode. A sender with no key seals nothing (empty nonce); such an
 * envelope opens only in a process whose keyring is empty (unit tests). The
 * daemons refuse to start without keys, so they never accept one.
 *
 * Refusals. A peer whose envelope does not open cannot be answered sealed:
 * wire_refusal() makes an unsealed Error envelope for it and
 * wire_refusal_open() reads one. A refusal is only ever shown to a person or
 * logged, never acted upon: anyone on the path could forge it.
 *
 * Buffers returned by wire_seal() are malloc'd: the caller frees them.
 * Everything here is thread-safe.
 */
#ifndef DROVER_WIRE_H
#define DROVER_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drover.pb-c.h"

#define WIRE_VERSION 2
#define WIRE_MAX_SIZE (8u << 20)     /* largest envelope accepted anywhere */
#define WIRE_SLUG_CHUNK (512u << 10) /* slug transfer chunk size */
#define WIRE_KEY_BYTES 32
#define WIRE_NONCE_BYTES 24
#define WIRE_TAG_BYTES 16
#define WIRE_FRESH_MS (5u * 60 * 1000) /* first counter from a sender: within +-5 min */
#define WIRE_REPLAY_WINDOW 32          /* highest counters remembered per sender */
#define WIRE_SENDERS_MAX 65536         /* replay entries kept; idle ones are evicted */
#define WIRE_KEYRING_MAX 8

struct wire_sender {
    char id[64];      /* node name, "controller", "cli.RANDOM" */
    uint64_t counter; /* last value used */
    bool keyed;
    uint32_t key_id;
    uint8_t key[WIRE_KEY_BYTES];
};

/* counter = 0; no key (keyless) until wire_sender_set_key(). */
void wire_sender_init(struct wire_sender *s, const char *id);
/* Seal everything s sends with key (copied). */
void wire_sender_set_key(struct wire_sender *s, const uint8_t key[WIRE_KEY_BYTES]);

/*
 * Pack and seal msg into a new envelope. *out is malloc'd (caller frees),
 * *outlen its size. Returns 0, -ENOMEM, or -EMSGSIZE when larger than
 * WIRE_MAX_SIZE.
 */
int wire_seal(struct wire_sender *s, const Drover__Message *msg, uint8_t **out, size_t *outlen);
/* The same with body as the (already serialized) plaintext: tests, fuzzing. */
int wire_seal_raw(struct wire_sender *s, const uint8_t *body, size_t blen, uint8_t **out,
                  size_t *outlen);

/* A nonce of fresh kernel randomness, never handed out twice: taken from a
 * per-thread pool that one getrandom(2) fills for 170 of them; a forked
 * child starts with an empty pool, never with its parent's. */
void wire_nonce(uint8_t nonce[WIRE_NONCE_BYTES]);

struct wire_header {
    uint32_t version;
    char sender[64];
    uint64_t counter;
    uint32_t key_id;
    bool sealed; /* carried a nonce */
    int key;     /* keyring slot that opened it; -1 when none did (or keyless) */
};

/*
 * Check, open and unpack a received buffer. On success *msg is set (free it
 * with wire_msg_free) and hdr filled. Errors:
 *   -EMSGSIZE          larger than WIRE_MAX_SIZE
 *   -EBADMSG           not an envelope, or a body that is not a Message, or a
 *                      Message whose oneof is not set
 *   -EPROTONOSUPPORT   version != WIRE_VERSION (hdr->version says which)
 *   -ENOKEY            not sealed, and this process requires sealing
 *   -EKEYREJECTED      sealed with a key not in the keyring (a wrong key)
 *   -EBADE             does not authenticate (tampered, or forged)
 *   -EALREADY          replayed: this sender's counter was already accepted
 *   -ESTALE            a counter too old to check (below the replay window,
 *                      or a first message more than WIRE_FRESH_MS away from
 *                      this clock): replayed, or the clocks are apart
 *   -EUSERS            WIRE_SENDERS_MAX senders heard recently: refused
 * hdr is filled as far as it could be decoded, even on error.
 */
int wire_open(const uint8_t *buf, size_t len, struct wire_header *hdr, Drover__Message **msg);
void wire_msg_free(Drover__Message *msg);
/* wire_open, with the message's memory from al (a caller's arena, given
 * back all at once with it: never wire_msg_free such a message). */
int wire_open_al(const uint8_t *buf, size_t len, struct wire_header *hdr, ProtobufCAllocator *al,
                 Drover__Message **msg);

/*
 * Memory for one small message that lives no longer than its caller's
 * frame (a UDP heartbeat, opened and forgotten thousands of times a
 * second): decrypting into it costs no malloc. What does not fit in buf
 * comes from malloc, and wire_plain_free gives it back.
 */
#define WIRE_ARENA_BYTES 2048
struct wire_arena {
    ProtobufCAllocator al;
    size_t used;
    size_t spilled; /* allocations that did not fit: from malloc */
    _Alignas(16) uint8_t buf[WIRE_ARENA_BYTES];
};
void wire_arena_init(struct wire_arena *a);
/* The envelope's header as wire_open reads it (pbread.h), its sender's
 * whole length (up to a NUL) and its nonce's and body's: for tests and
 * fuzzing, which hold it against protobuf-c. 0 or -EBADMSG. */
int wire_read_envelope(const uint8_t *buf, size_t len, struct wire_header *hdr, size_t *sender_len,
                       size_t *nonce_len, size_t *body_len);
/*
 * wire_open without the unpack, for a caller that reads the body itself
 * (beat.c: pbread.h): *plain is the body's plaintext, authenticated and
 * checked against replay when sealed, in a's memory (or, keyless, in buf).
 * Errors as wire_open's, but for a body that is not a Message (unread
 * here). Give it back with wire_plain_free, which zeroes it.
 */
int wire_open_plain(const uint8_t *buf, size_t len, struct wire_header *hdr, struct wire_arena *a,
                    const uint8_t **plain, size_t *plen);
void wire_plain_free(struct wire_arena *a, const uint8_t *buf, size_t len, const uint8_t *plain,
                     size_t plen);

/*
 * Open with this key only, keeping no replay state: for load generators that
 * host many peers in one process (tests/bench), where one replay window
 * cannot follow a counter reordered across hundreds of sockets. Daemons use
 * wire_open(). Errors as wire_open(); -ENOKEY for an unsealed envelope.
 */
int wire_open_key(const uint8_t *buf, size_t len, const uint8_t key[WIRE_KEY_BYTES],
                  Drover__Message **msg);

/* Is err one of the refusals of a sender's credentials (not sealed, wrong
 * key, not authentic, replayed, stale, too many senders)? */
bool wire_err_auth(int err);

/* Human text for a wire_open() error, for logs and Error replies. */
const char *wire_strerror(int err);

/*
 * Convenience: seal an Error message. Returns as wire_seal().
 */
int wire_seal_error(struct wire_sender *s, Drover__ErrorCode code, const char *text, uint8_t **out,
                    size_t *outlen);

/*
 * An unsealed Error envelope (sender "refusal", counter 0) for a peer whose
 * message did not open. Returns as wire_seal().
 */
int wire_refusal(Drover__ErrorCode code, const char *text, uint8_t **out, size_t *outlen);
/*
 * Is buf an unsealed Error envelope of our version? 0 with code and text
 * (truncated to textsz) filled, else -EBADMSG. Untrusted: show, never act.
 */
int wire_refusal_open(const uint8_t *buf, size_t len, Drover__ErrorCode *code, char *text,
                      size_t textsz);

/* ---- keys ---- */

/*
 * Add key to this process's keyring under name ("cluster", "api"); returns
 * its slot (>= 0), or -ENOSPC, or -EEXIST when the same key is already there
 * (under any name: two roles must not share a key).
 */
int wire_keyring_add(const char *name, const uint8_t key[WIRE_KEY_BYTES]);
/* The name of a slot, or "none". */
const char *wire_keyring_name(int slot);
/* Forget every key and all replay state (tests). */
void wire_keyring_reset(void);

/* 64 hex digits into 32 bytes; 0 or -EINVAL. */
int wire_key_parse_hex(const char *hex, uint8_t key[WIRE_KEY_BYTES]);
/* The API key: BLAKE2b-256 of the token under a fixed drover context. */
void wire_key_from_token(const char *token, uint8_t key[WIRE_KEY_BYTES]);
/* The public id of a key: 32 bits of a keyed hash, never 0. */
uint32_t wire_key_id(const uint8_t key[WIRE_KEY_BYTES]);

/* "ok", "pending", ... for an InstanceState; "unknown" for anything else. */
const char *wire_state_name(Drover__InstanceState st);
/* The state named s (as wire_state_name writes it): 0, or -EINVAL. */
int wire_state_parse(const char *s, Drover__InstanceState *st);

#endif
