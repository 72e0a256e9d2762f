/* SPDX-License-Identifier: MIT */
/*
 * Sealed envelopes: AEAD round trip, every byte authenticated, wrong keys,
 * unsealed envelopes, replays and reordering, refusals, key derivation,
 * nonces that never repeat, and what sealing costs.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"
#include "wire.h"

static const char *hex_a = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
static const char *hex_b = "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

static void
ps_msg(Drover__Message *m, Drover__PsReq *req, const char *app)
{
    drover__message__init(m);
    drover__ps_req__init(req);
    req->app = (char *)app;
    m->body_case = DROVER__MESSAGE__BODY_PS_REQ;
    m->ps_req = req;
}

static void
keyed_sender(struct wire_sender *s, const char *id, const char *hex)
{
    uint8_t key[WIRE_KEY_BYTES];

    cr_assert_eq(wire_key_parse_hex(hex, key), 0);
    wire_sender_init(s, id);
    wire_sender_set_key(s, key);
}

static void
seal_ps(struct wire_sender *s, uint8_t **buf, size_t *len)
{
    Drover__Message m;
    Drover__PsReq req;

    ps_msg(&m, &req, "shop");
    cr_assert_eq(wire_seal(s, &m, buf, len), 0);
}

static int
open_rc(const uint8_t *buf, size_t len)
{
    struct wire_header h;
    Drover__Message *m = NULL;
    int rc = wire_open(buf, len, &h, &m);

    wire_msg_free(m);
    return rc;
}

static int
add_key(const char *name, const char *hex)
{
    uint8_t key[WIRE_KEY_BYTES];

    cr_assert_eq(wire_key_parse_hex(hex, key), 0);
    return wire_keyring_add(name, key);
}

TestSuite(seal, .timeout = 20);

Test(seal, round_trip_and_key_slot)
{
    struct wire_sender s;
    struct wire_header h;
    Drover__Message *m;
    uint8_t *buf;
    size_t len;

    cr_assert_eq(add_key("cluster", hex_a), 0);
    cr_assert_eq(add_key("api", hex_b), 1);
    cr_assert_eq(add_key("cluster", hex_a), 0, "same key, same name: same slot");
    cr_assert_eq(add_key("other", hex_a), -EEXIST, "one key, two roles");
    keyed_sender(&s, "n1", hex_b);
    seal_ps(&s, &buf, &len);
    cr_assert_null(memmem(buf, len, "shop", 4), "the body travels in clear");
    cr_assert_eq(wire_open(buf, len, &h, &m), 0);
    cr_assert(h.sealed);
    cr_assert_eq(h.key, 1);
    cr_assert_str_eq(wire_keyring_name(h.key), "api");
    cr_assert_str_eq(h.sender, "n1");
    cr_assert_str_eq(m->ps_req->app, "shop");
    wire_msg_free(m);
    free(buf);
}

/*
 * Flip bits everywhere: the envelope must not open, unless the flip left
 * every decoded field as it was (protobuf varints have a few bits no field
 * holds). The replay state is reset for each try so that only
 * authentication is tested.
 */
Test(seal, every_byte_is_authenticated)
{
    struct wire_sender s;
    struct wire_header h0, h;
    Drover__Message *m;
    uint8_t *buf;
    size_t len;

    add_key("cluster", hex_a);
    keyed_sender(&s, "n1", hex_a);
    seal_ps(&s, &buf, &len);
    cr_assert_eq(wire_open(buf, len, &h0, &m), 0);
    wire_msg_free(m);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            wire_keyring_reset();
            add_key("cluster", hex_a);
            buf[i] ^= (uint8_t)(1u << bit);
            int rc = wire_open(buf, len, &h, &m);
            if (rc == 0) {
                cr_assert(h.version == h0.version && h.counter == h0.counter &&
                              h.key_id == h0.key_id && strcmp(h.sender, h0.sender) == 0 &&
                              strcmp(m->ps_req->app, "shop") == 0,
                          "flipping bit %d of byte %zu changed the message unnoticed", bit, i);
                wire_msg_free(m);
            }
            buf[i] ^= (uint8_t)(1u << bit);
        }
    }
    wire_keyring_reset();
    add_key("cluster", hex_a);
    cr_assert_eq(open_rc(buf, len), 0, "the original opens once");
    cr_assert_eq(open_rc(buf, len), -EALREADY);
    free(buf);
}

Test(seal, wrong_key_unsealed_and_keyless)
{
    struct wire_sender s, plain;
    uint8_t *buf;
    size_t len;

    /* Keyless process: plain envelopes open, sealed ones cannot. */
    wire_sender_init(&plain, "t");
    seal_ps(&plain, &buf, &len);
    cr_assert_eq(open_rc(buf, len), 0);
    free(buf);
    keyed_sender(&s, "n1", hex_b);
    seal_ps(&s, &buf, &len);
    cr_assert_eq(open_rc(buf, len), -EKEYREJECTED);
    free(buf);

    /* Once a key is registered, nothing unsealed opens. */
    add_key("cluster", hex_a);
    seal_ps(&plain, &buf, &len);
    cr_assert_eq(open_rc(buf, len), -ENOKEY);
    free(buf);
    seal_ps(&s, &buf, &len);
    cr_assert_eq(open_rc(buf, len), -EKEYREJECTED);
    cr_assert(wire_err_auth(-EKEYREJECTED));
    cr_assert_not(wire_err_auth(-EBADMSG));
    free(buf);
}

Test(seal, replays_reordering_and_stale_counters)
{
    struct wire_sender s, other;
    enum { N = 43 };
    uint8_t *buf[N];
    size_t len[N];

    add_key("cluster", hex_a);
    keyed_sender(&s, "n1", hex_a);
    keyed_sender(&other, "n2", hex_a);
    for (int i = 0; i < N; i++)
        seal_ps(&s, &buf[i], &len[i]);
    /* Out of order: each accepted exactly once, however far apart in time. */
    int order[] = {1, 4, 2, 8, 3, 7, 5, 6};
    for (int k = 0; k < 8; k++)
        cr_assert_eq(open_rc(buf[order[k]], len[order[k]]), 0, "message %d", order[k]);
    for (int k = 0; k < 8; k++)
        cr_assert_eq(open_rc(buf[order[k]], len[order[k]]), -EALREADY, "replay of %d", order[k]);
    /* Another sender's counters are its own. */
    uint8_t *ob;
    size_t ol;
    seal_ps(&other, &ob, &ol);
    cr_assert_eq(open_rc(ob, ol), 0);
    free(ob);
    /* 9, then 11..40, skipping 10: the receiver remembers the 32 highest it
     * accepted (8, 9, 11..40) and refuses everything at or below the floor
     * (7): message 0, never seen, is too old to tell from a replay. Message
     * 10 is above the floor: accepted once. */
    cr_assert_eq(open_rc(buf[9], len[9]), 0);
    for (int i = 11; i <= 40; i++)
        cr_assert_eq(open_rc(buf[i], len[i]), 0, "message %d", i);
    cr_assert_eq(open_rc(buf[0], len[0]), -ESTALE);
    cr_assert_eq(open_rc(buf[7], len[7]), -ESTALE);
    cr_assert_eq(open_rc(buf[8], len[8]), -EALREADY);
    cr_assert_eq(open_rc(buf[10], len[10]), 0);
    cr_assert_eq(open_rc(buf[10], len[10]), -EALREADY);
    cr_assert_eq(open_rc(buf[40], len[40]), -EALREADY);
    /* 10 went in between 9 and 11 (8, the smallest, became the floor): two
     * more at the top forget the two smallest, 9 then 10, and 11 is still
     * remembered. */
    cr_assert_eq(open_rc(buf[41], len[41]), 0);
    cr_assert_eq(open_rc(buf[42], len[42]), 0);
    cr_assert_eq(open_rc(buf[9], len[9]), -ESTALE);
    cr_assert_eq(open_rc(buf[10], len[10]), -ESTALE);
    cr_assert_eq(open_rc(buf[11], len[11]), -EALREADY);
    for (int i = 0; i < N; i++)
        free(buf[i]);

    /* A sender heard for the first time must be near our clock. */
    struct wire_sender fut;
    uint8_t *xb;
    size_t xl;
    keyed_sender(&fut, "n3", hex_a);
    fut.counter = (now_ms() + 2ull * WIRE_FRESH_MS) << 16;
    seal_ps(&fut, &xb, &xl);
    cr_assert_eq(open_rc(xb, xl), -ESTALE);
    free(xb);
}

Test(seal, counters_follow_the_clock_across_restarts)
{
    struct wire_sender a, b;
    uint8_t *buf;
    size_t len;
    uint64_t first;

    add_key("cluster", hex_a);
    keyed_sender(&a, "n1", hex_a);
    seal_ps(&a, &buf, &len);
    cr_assert_eq(open_rc(buf, len), 0);
    free(buf);
    first = a.counter;
    cr_assert_geq(first >> 16, now_ms() - 1000);
    /* "Restart": a fresh sender with the same id, a moment later. */
    struct timespec ts = {0, 3 * 1000 * 1000};
    nanosleep(&ts, NULL);
    keyed_sender(&b, "n1", hex_a);
    seal_ps(&b, &buf, &len);
    cr_assert_gt(b.counter, first);
    cr_assert_eq(open_rc(buf, len), 0, "the restarted sender is accepted");
    free(buf);
}

Test(seal, refusals_are_readable_without_keys)
{
    uint8_t *buf;
    size_t len;
    Drover__ErrorCode code;
    char text[64];

    add_key("cluster", hex_a);
    cr_assert_eq(wire_refusal(DROVER__ERROR_CODE__ERR_UNAUTHORIZED, "no", &buf, &len), 0);
    cr_assert_eq(open_rc(buf, len), -ENOKEY, "a refusal is never a trusted message");
    cr_assert_eq(wire_refusal_open(buf, len, &code, text, sizeof(text)), 0);
    cr_assert_eq(code, DROVER__ERROR_CODE__ERR_UNAUTHORIZED);
    cr_assert_str_eq(text, "no");
    cr_assert_eq(wire_refusal_open(buf, len / 2, &code, text, sizeof(text)), -EBADMSG);
    free(buf);
    struct wire_sender s;
    keyed_sender(&s, "n1", hex_a);
    seal_ps(&s, &buf, &len);
    cr_assert_eq(wire_refusal_open(buf, len, &code, text, sizeof(text)), -EBADMSG);
    free(buf);
}

Test(seal, keys_from_hex_and_tokens)
{
    uint8_t a[WIRE_KEY_BYTES], b[WIRE_KEY_BYTES];

    cr_assert_eq(wire_key_parse_hex(hex_a, a), 0);
    cr_assert_eq(a[1], 1);
    cr_assert_eq(wire_key_parse_hex("00", a), -EINVAL);
    cr_assert_eq(
        wire_key_parse_hex("zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", a),
        -EINVAL);
    wire_key_from_token("correct horse battery staple", a);
    wire_key_from_token("correct horse battery staple", b);
    cr_assert_eq(memcmp(a, b, sizeof(a)), 0);
    wire_key_from_token("correct horse battery staplf", b);
    cr_assert_neq(memcmp(a, b, sizeof(a)), 0);
    cr_assert_neq(wire_key_id(a), wire_key_id(b));
    cr_assert_neq(wire_key_id(a), 0);
}

static double
mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int
nonce_cmp(const void *a, const void *b)
{
    return memcmp(a, b, WIRE_NONCE_BYTES);
}

/* Nonces come from a pool of kernel randomness: none repeats over several
 * refills, and a child forked with the pool half used (holding a copy of
 * it) hands out none of its parent's. */
Test(seal, nonces_never_repeat_across_refills_and_forks)
{
    enum { N = 1000 }; /* about six pools */
    static uint8_t v[N + 1][WIRE_NONCE_BYTES];
    uint8_t child[WIRE_NONCE_BYTES];
    int fds[2], st;
    pid_t pid;

    for (int i = 0; i < N; i++)
        wire_nonce(v[i]);
    cr_assert_eq(pipe(fds), 0);
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        wire_nonce(child);
        _exit(write(fds[1], child, sizeof(child)) == sizeof(child) ? 0 : 1);
    }
    wire_nonce(v[N]);
    cr_assert_eq(read(fds[0], child, sizeof(child)), (ssize_t)sizeof(child));
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(fds[0]);
    close(fds[1]);
    qsort(v, N + 1, WIRE_NONCE_BYTES, nonce_cmp);
    for (int i = 0; i <= N; i++) {
        cr_assert(i == 0 || memcmp(v[i - 1], v[i], WIRE_NONCE_BYTES) != 0,
                  "a nonce was handed out twice");
        cr_assert_neq(memcmp(child, v[i], WIRE_NONCE_BYTES), 0,
                      "the forked child handed out one of its parent's nonces");
    }
}

Test(seal, costs_microseconds)
{
    struct wire_sender s;
    Drover__Message m, *out;
    Drover__SyncReq req = DROVER__SYNC_REQ__INIT;
    struct wire_header h;
    uint8_t *buf;
    size_t len;
    const int n = 2000;
    double t0, seal_us = 0, open_us = 0;

    add_key("cluster", hex_a);
    keyed_sender(&s, "n1", hex_a);
    drover__message__init(&m);
    req.node = "n1";
    req.boot_id = "0123456789abcdef0123456789abcdef";
    req.generation = 42;
    req.digest = 0x1234;
    m.body_case = DROVER__MESSAGE__BODY_SYNC_REQ;
    m.sync_req = &req;
    for (int i = 0; i < n; i++) {
        t0 = mono_us();
        cr_assert_eq(wire_seal(&s, &m, &buf, &len), 0);
        seal_us += mono_us() - t0;
        t0 = mono_us();
        cr_assert_eq(wire_open(buf, len, &h, &out), 0);
        open_us += mono_us() - t0;
        wire_msg_free(out);
        free(buf);
    }
    seal_us /= n;
    open_us /= n;
    cr_log_info("heartbeat SyncReq: seal %.2f us, open %.2f us (%zu bytes)", seal_us, open_us, len);
    fprintf(stderr, "seal_test: heartbeat seal %.2f us, open %.2f us\n", seal_us, open_us);
    /* Generous, so that a sanitizer build on a slow machine passes too. */
    cr_assert_lt(seal_us + open_us, 500.0);
}

Test(seal, open_with_a_given_key_keeps_no_replay_state)
{
    struct wire_sender s;
    uint8_t key_a[WIRE_KEY_BYTES], key_b[WIRE_KEY_BYTES], *buf, *tampered;
    Drover__Message *m = NULL;
    size_t len;

    cr_assert_eq(wire_key_parse_hex(hex_a, key_a), 0);
    cr_assert_eq(wire_key_parse_hex(hex_b, key_b), 0);
    keyed_sender(&s, "controller", hex_a);
    seal_ps(&s, &buf, &len);
    /* The same bytes open twice: no replay window here, by design. */
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(wire_open_key(buf, len, key_a, &m), 0);
        cr_assert_str_eq(m->ps_req->app, "shop");
        wire_msg_free(m);
    }
    cr_assert_eq(wire_open_key(buf, len, key_b, &m), -EKEYREJECTED);
    cr_assert_null(m);
    /* One bit of the sealed body flipped: the tag no longer matches. */
    Drover__Envelope *env = drover__envelope__unpack(NULL, len, buf);
    cr_assert_not_null(env);
    env->body.data[0] ^= 1;
    size_t tlen = drover__envelope__get_packed_size(env);
    tampered = malloc(tlen);
    drover__envelope__pack(env, tampered);
    drover__envelope__free_unpacked(env, NULL);
    cr_assert_eq(wire_open_key(tampered, tlen, key_a, &m), -EBADE, "a tampered body opened");
    cr_assert_eq(wire_open_key(buf, len / 2, key_a, &m), -EBADMSG);
    free(tampered);
    free(buf);
}

/* wire_open_plain: a heartbeat-sized message's plaintext is decrypted into
 * the caller's arena with no malloc; a larger one spills to malloc and is
 * given back (the ASan run's leak check); a refused one leaves nothing
 * behind. */
Test(seal, an_arena_opens_a_small_message_in_place_and_spills_a_large_one)
{
    struct wire_sender s;
    struct wire_header h;
    struct wire_arena a;
    Drover__Message m, *got;
    Drover__PsReq req;
    const uint8_t *plain;
    uint8_t *buf;
    size_t len, plen;
    char *big;

    cr_assert_eq(add_key("cluster", hex_a), 0);
    keyed_sender(&s, "n1", hex_a);
    seal_ps(&s, &buf, &len);
    wire_arena_init(&a);
    cr_assert_eq(wire_open_plain(buf, len, &h, &a, &plain, &plen), 0);
    cr_assert_str_eq(h.sender, "n1");
    cr_assert_eq(a.spilled, 0, "a small message fits the arena");
    cr_assert(plain >= a.buf && plain < a.buf + sizeof(a.buf));
    cr_assert_not_null(got = drover__message__unpack(NULL, plen, plain));
    cr_assert_str_eq(got->ps_req->app, "shop");
    drover__message__free_unpacked(got, NULL);
    wire_plain_free(&a, buf, len, plain, plen);
    free(buf);

    cr_assert_not_null(big = malloc(3 * WIRE_ARENA_BYTES + 1));
    memset(big, 'x', 3 * WIRE_ARENA_BYTES);
    big[3 * WIRE_ARENA_BYTES] = '\0';
    ps_msg(&m, &req, big);
    cr_assert_eq(wire_seal(&s, &m, &buf, &len), 0);
    wire_arena_init(&a);
    cr_assert_eq(wire_open_plain(buf, len, &h, &a, &plain, &plen), 0);
    cr_assert_gt(a.spilled, 0);
    cr_assert_not_null(got = drover__message__unpack(NULL, plen, plain));
    cr_assert_str_eq(got->ps_req->app, big);
    drover__message__free_unpacked(got, NULL);
    wire_plain_free(&a, buf, len, plain, plen);
    /* Replayed: refused after the envelope was read and decrypted. */
    wire_arena_init(&a);
    cr_assert_eq(wire_open_plain(buf, len, &h, &a, &plain, &plen), -EALREADY);
    cr_assert_null(plain);
    free(buf);
    free(big);
}
