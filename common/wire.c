/* SPDX-License-Identifier: MIT */
/*
 * wire.c: the envelope around every message: seal, open, replay state.
 *
 * The header (version, sender, counter, key id) is checked before anything
 * else, so a peer speaking another protocol version is told so instead of
 * being misread. The body is a separately serialized Message, encrypted with
 * XChaCha20-Poly1305 (libsodium's IETF AEAD) under a 24-byte random nonce,
 * with the header as associated data. Random nonces of that size need no
 * coordination between a sender's sockets or across its restarts. They come
 * from a pool of kernel randomness (wire_nonce), not one getrandom(2) per
 * message: on a virtualized guest a system call costs microseconds, and the
 * controller seals a reply for every request (6 % of its CPU while 10,000
 * agents acknowledged a placement).
 *
 * The replay state is a hash table of (key slot, sender id) -> the
 * WIRE_REPLAY_WINDOW highest counters accepted and a floor below which
 * nothing is accepted: an anti-replay window, as in IPsec and WireGuard, but
 * counted in messages rather than counter values, because counters follow
 * the clock and jump by 65536 a millisecond. It is touched only
 * after a message authenticated, under one mutex: seal and open are called
 * from the loop thread in the daemons, but nothing here relies on it.
 */
#include "wire.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <sodium.h>

#include "pbread.h"
#include "util.h"

#define AD_MAX (4 + 4 + 4 + 8 + 1 + 64)
/* Ten thousand nodes heartbeat a controller: a chain of about one. A bucket
 * untouched is a page never made resident. */
#define BUCKETS 16384

struct key {
    char name[16];
    uint32_t id;
    uint8_t k[WIRE_KEY_BYTES];
};

struct peer {
    struct peer *next;
    uint64_t hash; /* peer_hash's, before the modulo: most misses skip strcmp */
    int slot;
    char id[64];
    uint64_t highest;
    uint64_t floor;                      /* every accepted counter not in recent is <= floor */
    uint64_t recent[WIRE_REPLAY_WINDOW]; /* the highest counters accepted */
    unsigned n;
    uint64_t last_ms; /* our clock when last accepted */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct key keys[WIRE_KEYRING_MAX];
static int nkeys;
static struct peer *buckets[BUCKETS];
static size_t npeers;
static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_ok;

/* Nonces (wire_nonce): per thread, so no lock; bytes [off, NONCE_POOL) are
 * unused. */
#define NONCE_POOL (170 * WIRE_NONCE_BYTES)
static _Thread_local struct {
    uint8_t b[NONCE_POOL];
    size_t off;
} pool = {.off = NONCE_POOL};

/* A forked child holds a copy of the pool of the thread that forked: what
 * it would hand out, the parent hands out too. It starts empty instead. */
static void
pool_forget(void)
{
    pool.off = NONCE_POOL;
}

static void
sodium_setup(void)
{
    sodium_ok = sodium_init() >= 0;
    if (pthread_atfork(NULL, NULL, pool_forget) != 0)
        sodium_ok = 0; /* no way to keep a child from repeating our nonces */
}

static bool
crypto_ready(void)
{
    pthread_once(&sodium_once, sodium_setup);
    return sodium_ok;
}

void
wire_nonce(uint8_t nonce[WIRE_NONCE_BYTES])
{
    size_t got = 0;

    crypto_ready(); /* the fork handler is in place before the first fill */
    if (pool.off + WIRE_NONCE_BYTES > NONCE_POOL) {
        while (got < NONCE_POOL) {
            ssize_t n = getrandom(pool.b + got, NONCE_POOL - got, 0);

            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) { /* no getrandom(2): libsodium's own source */
                randombytes_buf(pool.b + got, NONCE_POOL - got);
                break;
            }
            got += (size_t)n;
        }
        pool.off = 0;
    }
    memcpy(nonce, pool.b + pool.off, WIRE_NONCE_BYTES);
    pool.off += WIRE_NONCE_BYTES;
}

/* ---- keys ---- */

int
wire_key_parse_hex(const char *hex, uint8_t key[WIRE_KEY_BYTES])
{
    size_t n = 0;

    if (hex == NULL || strlen(hex) != 2 * WIRE_KEY_BYTES)
        return -EINVAL;
    if (sodium_hex2bin(key, WIRE_KEY_BYTES, hex, 2 * WIRE_KEY_BYTES, NULL, &n, NULL) != 0 ||
        n != WIRE_KEY_BYTES)
        return -EINVAL;
    return 0;
}

void
wire_key_from_token(const char *token, uint8_t key[WIRE_KEY_BYTES])
{
    static const char ctx[] = "drover api token v1";

    crypto_ready();
    /* Keyed BLAKE2b with a fixed context as the key: a domain separator, so
     * the same string used elsewhere never yields this key. */
    crypto_generichash(key, WIRE_KEY_BYTES, (const unsigned char *)token, strlen(token),
                       (const unsigned char *)ctx, sizeof(ctx) - 1);
}

uint32_t
wire_key_id(const uint8_t key[WIRE_KEY_BYTES])
{
    static const char ctx[] = "drover key id v1";
    uint8_t h[16];
    uint32_t id;

    crypto_ready();
    crypto_generichash(h, sizeof(h), key, WIRE_KEY_BYTES, (const unsigned char *)ctx,
                       sizeof(ctx) - 1);
    memcpy(&id, h, sizeof(id));
    return id != 0 ? id : 1; /* 0 means "not sealed" */
}

int
wire_keyring_add(const char *name, const uint8_t key[WIRE_KEY_BYTES])
{
    int i, rc;

    crypto_ready();
    pthread_mutex_lock(&lock);
    for (i = 0; i < nkeys; i++) {
        if (sodium_memcmp(keys[i].k, key, WIRE_KEY_BYTES) == 0) {
            rc = strcmp(keys[i].name, name) == 0 ? i : -EEXIST;
            goto out;
        }
    }
    if (nkeys == WIRE_KEYRING_MAX) {
        rc = -ENOSPC;
        goto out;
    }
    snprintf(keys[nkeys].name, sizeof(keys[nkeys].name), "%s", name);
    memcpy(keys[nkeys].k, key, WIRE_KEY_BYTES);
    keys[nkeys].id = wire_key_id(key);
    rc = nkeys++;
out:
    pthread_mutex_unlock(&lock);
    return rc;
}

const char *
wire_keyring_name(int slot)
{
    return slot >= 0 && slot < nkeys ? keys[slot].name : "none";
}

void
wire_keyring_reset(void)
{
    pthread_mutex_lock(&lock);
    sodium_memzero(keys, sizeof(keys));
    nkeys = 0;
    for (size_t b = 0; b < BUCKETS; b++) {
        while (buckets[b] != NULL) {
            struct peer *p = buckets[b];

            buckets[b] = p->next;
            free(p);
        }
    }
    npeers = 0;
    pthread_mutex_unlock(&lock);
}

/* ---- senders ---- */

void
wire_sender_init(struct wire_sender *s, const char *id)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->id, sizeof(s->id), "%s", id);
}

void
wire_sender_set_key(struct wire_sender *s, const uint8_t key[WIRE_KEY_BYTES])
{
    memcpy(s->key, key, WIRE_KEY_BYTES);
    s->key_id = wire_key_id(key);
    s->keyed = true;
}

/* The associated data: every header field, in a fixed layout. */
static size_t
build_ad(uint8_t *ad, uint32_t version, uint32_t key_id, uint64_t counter, const char *sender)
{
    size_t slen = strnlen(sender, 63), o = 0;

    memcpy(ad + o, "DRV1", 4);
    o += 4;
    for (int i = 0; i < 4; i++)
        ad[o++] = (uint8_t)(version >> (8 * i));
    for (int i = 0; i < 4; i++)
        ad[o++] = (uint8_t)(key_id >> (8 * i));
    for (int i = 0; i < 8; i++)
        ad[o++] = (uint8_t)(counter >> (8 * i));
    ad[o++] = (uint8_t)slen;
    memcpy(ad + o, sender, slen);
    return o + slen;
}

static int
pack_envelope(Drover__Envelope *env, uint8_t **out, size_t *outlen)
{
    size_t elen = drover__envelope__get_packed_size(env);
    uint8_t *buf;

    if (elen > WIRE_MAX_SIZE)
        return -EMSGSIZE;
    if ((buf = malloc(elen)) == NULL)
        return -ENOMEM;
    drover__envelope__pack(env, buf);
    *out = buf;
    *outlen = elen;
    return 0;
}

int
wire_seal_raw(struct wire_sender *s, const uint8_t *body, size_t blen, uint8_t **out,
              size_t *outlen)
{
    Drover__Envelope env = DROVER__ENVELOPE__INIT;
    uint8_t nonce[WIRE_NONCE_BYTES], ad[AD_MAX];
    uint8_t *ct = NULL;
    unsigned long long clen = 0;
    uint64_t floor;
    size_t adlen;
    int rc;

    *out = NULL;
    *outlen = 0;
    if (blen > WIRE_MAX_SIZE - 256)
        return -EMSGSIZE;
    floor = now_ms() << 16;
    s->counter = s->counter + 1 > floor ? s->counter + 1 : floor;
    env.version = WIRE_VERSION;
    env.sender = s->id;
    env.counter = s->counter;
    if (!s->keyed) {
        env.body.data = (uint8_t *)body;
        env.body.len = blen;
        return pack_envelope(&env, out, outlen);
    }
    if (!crypto_ready())
        return -ENOMEM;
    if ((ct = malloc(blen + WIRE_TAG_BYTES)) == NULL)
        return -ENOMEM;
    wire_nonce(nonce);
    env.key_id = s->key_id;
    adlen = build_ad(ad, env.version, env.key_id, env.counter, s->id);
    crypto_aead_xchacha20poly1305_ietf_encrypt(ct, &clen, body, blen, ad, adlen, NULL, nonce,
                                               s->key);
    env.nonce.data = nonce;
    env.nonce.len = sizeof(nonce);
    env.body.data = ct;
    env.body.len = (size_t)clen;
    rc = pack_envelope(&env, out, outlen);
    free(ct);
    return rc;
}

int
wire_seal(struct wire_sender *s, const Drover__Message *msg, uint8_t **out, size_t *outlen)
{
    uint8_t *body;
    size_t blen;
    int rc;

    *out = NULL;
    *outlen = 0;
    blen = drover__message__get_packed_size(msg);
    if (blen > WIRE_MAX_SIZE - 256)
        return -EMSGSIZE;
    if ((body = malloc(blen ? blen : 1)) == NULL)
        return -ENOMEM;
    drover__message__pack(msg, body);
    rc = wire_seal_raw(s, body, blen, out, outlen);
    sodium_memzero(body, blen);
    free(body);
    return rc;
}

/* ---- replay state (lock held) ---- */

static uint64_t
peer_hash(int slot, const char *id)
{
    return fnv1a64(FNV1A64_INIT ^ (uint64_t)slot, id, strlen(id));
}

/* Drop entries silent for 2 x WIRE_FRESH_MS: their old messages are stale
 * by the freshness rule anyway. */
static void
evict_idle(uint64_t now)
{
    for (size_t b = 0; b < BUCKETS; b++) {
        struct peer **pp = &buckets[b];

        while (*pp != NULL) {
            struct peer *p = *pp;

            if (now - p->last_ms > 2ull * WIRE_FRESH_MS) {
                *pp = p->next;
                free(p);
                npeers--;
            } else {
                pp = &p->next;
            }
        }
    }
}

/* Remember c; when full, forget the smallest remembered, which becomes the
 * floor: all counters up to it are refused from then on. */
static void
remember(struct peer *p, uint64_t c)
{
    unsigned min = 0;

    if (p->n < WIRE_REPLAY_WINDOW) {
        p->recent[p->n++] = c;
        return;
    }
    for (unsigned i = 1; i < p->n; i++)
        if (p->recent[i] < p->recent[min])
            min = i;
    if (p->recent[min] > p->floor)
        p->floor = p->recent[min];
    p->recent[min] = c;
}

static bool
fresh(uint64_t counter, uint64_t now)
{
    uint64_t sent = counter >> 16;

    return sent + WIRE_FRESH_MS >= now && sent <= now + WIRE_FRESH_MS;
}

/*
 * Accept counter from (slot, id) once; 0 or -EALREADY/-ESTALE/-EUSERS/-ENOMEM.
 * Above the highest: accepted. Below it: accepted once if above the floor,
 * not remembered, and fresh. Sealing ties counters to the clock, so it is
 * the number of messages (not of counter values) that bounds reordering.
 */
static int
replay_check(int slot, const char *id, uint64_t counter)
{
    uint64_t now = now_ms();
    uint64_t hash = peer_hash(slot, id);
    size_t h = (size_t)(hash % BUCKETS);
    struct peer *p;

    for (p = buckets[h]; p != NULL; p = p->next)
        if (p->hash == hash && p->slot == slot && strcmp(p->id, id) == 0)
            break;
    if (p == NULL) {
        if (!fresh(counter, now))
            return -ESTALE;
        if (npeers >= WIRE_SENDERS_MAX) {
            evict_idle(now);
            if (npeers >= WIRE_SENDERS_MAX)
                return -EUSERS;
        }
        if ((p = calloc(1, sizeof(*p))) == NULL)
            return -ENOMEM;
        p->hash = hash;
        p->slot = slot;
        snprintf(p->id, sizeof(p->id), "%s", id);
        p->highest = counter;
        p->recent[p->n++] = counter;
        p->last_ms = now;
        p->next = buckets[h];
        buckets[h] = p;
        npeers++;
        return 0;
    }
    if (counter <= p->highest) {
        if (counter <= p->floor || !fresh(counter, now))
            return -ESTALE;
        for (unsigned i = 0; i < p->n; i++)
            if (p->recent[i] == counter)
                return -EALREADY;
    } else {
        p->highest = counter;
    }
    remember(p, counter);
    p->last_ms = now;
    return 0;
}

/* ---- opening ---- */

static int
find_key(uint32_t id, uint8_t k[WIRE_KEY_BYTES])
{
    for (int i = 0; i < nkeys; i++) {
        if (keys[i].id == id) {
            memcpy(k, keys[i].k, WIRE_KEY_BYTES);
            return i;
        }
    }
    return -1;
}

/* ---- arenas ---- */

static void *
arena_alloc(void *data, size_t size)
{
    struct wire_arena *a = data;
    size_t need = (size + 15) & ~(size_t)15;

    if (need >= size && need <= sizeof(a->buf) - a->used) {
        void *p = a->buf + a->used;

        a->used += need;
        return p;
    }
    a->spilled++;
    return malloc(size);
}

static void
arena_free(void *data, void *p)
{
    struct wire_arena *a = data;

    if (p != NULL && ((uint8_t *)p < a->buf || (uint8_t *)p >= a->buf + sizeof(a->buf)))
        free(p);
}

void
wire_arena_init(struct wire_arena *a)
{
    a->al.alloc = arena_alloc;
    a->al.free = arena_free;
    a->al.allocator_data = a;
    a->used = a->spilled = 0;
}

/* al == NULL: malloc's. */
static void *
al_alloc(ProtobufCAllocator *al, size_t size)
{
    return al != NULL ? al->alloc(al->allocator_data, size) : malloc(size);
}

static void
al_free(ProtobufCAllocator *al, void *p)
{
    if (al != NULL)
        al->free(al->allocator_data, p);
    else
        free(p);
}

/*
 * An envelope as protobuf-c's unpack reads it, without its allocations: the
 * nonce and body point into the buffer (pbread.h). sender holds up to 63
 * characters of the sender (as C reads protobuf-c's copy: up to a NUL),
 * sender_len its whole length.
 */
struct env_view {
    uint32_t version, key_id;
    uint64_t counter;
    char sender[64];
    size_t sender_len;
    const uint8_t *nonce, *body;
    size_t nonce_len, body_len;
};

static int
env_parse(const uint8_t *buf, size_t len, struct env_view *e)
{
    struct pb_in in = {buf, buf + len};
    struct pb_field f;
    size_t n;
    int rc;

    memset(e, 0, sizeof(*e));
    while ((rc = pb_next(&in, &f)) > 0) {
        switch (f.num) {
        case 1: /* version */
        case 3: /* counter */
        case 6: /* key_id */
            if (f.type != PB_VARINT)
                return -EBADMSG;
            if (f.num == 3)
                e->counter = f.v;
            else if (f.num == 1)
                e->version = (uint32_t)f.v;
            else
                e->key_id = (uint32_t)f.v;
            break;
        case 2: /* sender */
            if (f.type != PB_LEN)
                return -EBADMSG;
            e->sender_len = pb_strlen(&f);
            n = e->sender_len < sizeof(e->sender) ? e->sender_len : sizeof(e->sender) - 1;
            memcpy(e->sender, f.data, n);
            e->sender[n] = '\0';
            break;
        case 4: /* nonce */
        case 5: /* body */
            if (f.type != PB_LEN)
                return -EBADMSG;
            if (f.num == 4) {
                e->nonce = f.data;
                e->nonce_len = f.len;
            } else {
                e->body = f.data;
                e->body_len = f.len;
            }
            break;
        default: /* unknown: skipped */
            break;
        }
    }
    return rc < 0 ? -EBADMSG : 0;
}

/* What hdr says of the envelope read into env. */
static void
header_of(const struct env_view *env, struct wire_header *hdr)
{
    hdr->version = env->version;
    memcpy(hdr->sender, env->sender, strlen(env->sender));
    hdr->counter = env->counter;
    hdr->key_id = env->key_id;
    hdr->sealed = env->nonce_len > 0;
}

/* Authenticate and decrypt a sealed envelope's body with k into *plain,
 * from al (NULL: malloc): the one place that knows the associated data's
 * layout. */
static int
decrypt_body(const struct env_view *env, const uint8_t k[WIRE_KEY_BYTES], ProtobufCAllocator *al,
             uint8_t **plain, size_t *plen)
{
    uint8_t ad[AD_MAX];
    unsigned long long n = 0;
    size_t adlen;

    if (env->nonce_len != WIRE_NONCE_BYTES || env->body_len < WIRE_TAG_BYTES)
        return -EBADMSG;
    if ((*plain = al_alloc(al, env->body_len)) == NULL)
        return -ENOMEM;
    adlen = build_ad(ad, env->version, env->key_id, env->counter, env->sender);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(*plain, &n, NULL, env->body, env->body_len, ad,
                                                   adlen, env->nonce, k) != 0) {
        al_free(al, *plain);
        *plain = NULL;
        return -EBADE;
    }
    *plen = (size_t)n;
    return 0;
}

/* Decrypt env's body into *plain, from al; the lock is held. */
static int
open_body(const struct env_view *env, struct wire_header *hdr, ProtobufCAllocator *al,
          uint8_t **plain, size_t *plen)
{
    uint8_t k[WIRE_KEY_BYTES];
    int slot, rc;

    if (env->nonce_len == 0) {
        if (nkeys > 0)
            return -ENOKEY;
        *plain = NULL; /* keyless: the body is the plaintext, borrowed */
        *plen = env->body_len;
        return 0;
    }
    if (env->nonce_len != WIRE_NONCE_BYTES || env->body_len < WIRE_TAG_BYTES)
        return -EBADMSG;
    if ((slot = find_key(env->key_id, k)) < 0)
        return -EKEYREJECTED;
    rc = decrypt_body(env, k, al, plain, plen);
    sodium_memzero(k, sizeof(k));
    if (rc < 0)
        return rc;
    rc = replay_check(slot, env->sender, env->counter);
    if (rc < 0) {
        al_free(al, *plain);
        *plain = NULL;
        return rc;
    }
    hdr->key = slot;
    return 0;
}

/*
 * The envelope in buf checked and opened: *plain is its body's plaintext,
 * from al when it was sealed (the caller zeroes and frees it), else the
 * body itself, in buf (keyless).
 */
static int
open_plain(const uint8_t *buf, size_t len, struct wire_header *hdr, ProtobufCAllocator *al,
           const uint8_t **plain, size_t *plen)
{
    struct env_view env;
    uint8_t *p = NULL;
    int rc;

    *plain = NULL;
    *plen = 0;
    memset(hdr, 0, sizeof(*hdr));
    hdr->key = -1;
    if (len > WIRE_MAX_SIZE)
        return -EMSGSIZE;
    if (env_parse(buf, len, &env) < 0)
        return -EBADMSG;
    header_of(&env, hdr);
    if (env.version != WIRE_VERSION)
        return -EPROTONOSUPPORT;
    if (env.sender_len >= sizeof(hdr->sender))
        return -EBADMSG;
    if (!crypto_ready())
        return -ENOMEM;
    pthread_mutex_lock(&lock);
    rc = open_body(&env, hdr, al, &p, plen);
    pthread_mutex_unlock(&lock);
    if (rc < 0)
        return rc;
    *plain = p != NULL ? p : env.body;
    return 0;
}

/* Zero and give back what open_plain decrypted (nothing when it lent buf). */
static void
plain_free(ProtobufCAllocator *al, const uint8_t *buf, size_t len, const uint8_t *plain,
           size_t plen)
{
    if (plain == NULL || (plain >= buf && plain < buf + len))
        return;
    sodium_memzero((void *)plain, plen);
    al_free(al, (void *)plain);
}

/* The plaintext lives in scratch (this frame's); the message is unpacked
 * with al (NULL: malloc). */
static int
open_with(const uint8_t *buf, size_t len, struct wire_header *hdr, ProtobufCAllocator *al,
          Drover__Message **msg)
{
    struct wire_arena scratch;
    Drover__Message *m = NULL;
    const uint8_t *plain = NULL;
    size_t plen = 0;
    int rc;

    *msg = NULL;
    wire_arena_init(&scratch);
    if ((rc = open_plain(buf, len, hdr, &scratch.al, &plain, &plen)) < 0)
        return rc;
    m = drover__message__unpack(al, plen, plain);
    if (m == NULL || m->body_case == DROVER__MESSAGE__BODY__NOT_SET) {
        if (m != NULL)
            drover__message__free_unpacked(m, al);
        rc = -EBADMSG;
    } else {
        *msg = m;
    }
    plain_free(&scratch.al, buf, len, plain, plen);
    return rc;
}

int
wire_open(const uint8_t *buf, size_t len, struct wire_header *hdr, Drover__Message **msg)
{
    return open_with(buf, len, hdr, NULL, msg);
}

int
wire_open_al(const uint8_t *buf, size_t len, struct wire_header *hdr, ProtobufCAllocator *al,
             Drover__Message **msg)
{
    return open_with(buf, len, hdr, al, msg);
}

int
wire_read_envelope(const uint8_t *buf, size_t len, struct wire_header *hdr, size_t *sender_len,
                   size_t *nonce_len, size_t *body_len)
{
    struct env_view env;

    memset(hdr, 0, sizeof(*hdr));
    hdr->key = -1;
    if (len > WIRE_MAX_SIZE || env_parse(buf, len, &env) < 0)
        return -EBADMSG;
    header_of(&env, hdr);
    *sender_len = env.sender_len;
    *nonce_len = env.nonce_len;
    *body_len = env.body_len;
    return 0;
}

int
wire_open_plain(const uint8_t *buf, size_t len, struct wire_header *hdr, struct wire_arena *a,
                const uint8_t **plain, size_t *plen)
{
    return open_plain(buf, len, hdr, &a->al, plain, plen);
}

void
wire_plain_free(struct wire_arena *a, const uint8_t *buf, size_t len, const uint8_t *plain,
                size_t plen)
{
    plain_free(&a->al, buf, len, plain, plen);
}

int
wire_open_key(const uint8_t *buf, size_t len, const uint8_t key[WIRE_KEY_BYTES],
              Drover__Message **msg)
{
    struct env_view env;
    Drover__Message *m = NULL;
    uint8_t *plain = NULL;
    size_t plen = 0;
    int rc = -EBADMSG;

    *msg = NULL;
    if (len > WIRE_MAX_SIZE)
        return -EMSGSIZE;
    if (env_parse(buf, len, &env) < 0)
        return -EBADMSG;
    if (env.version != WIRE_VERSION)
        rc = -EPROTONOSUPPORT;
    else if (env.nonce_len == 0)
        rc = -ENOKEY; /* a refusal: the caller may read it with wire_refusal_open */
    else if (env.key_id != wire_key_id(key))
        rc = -EKEYREJECTED;
    else if (!crypto_ready())
        rc = -ENOMEM;
    else
        rc = decrypt_body(&env, key, NULL, &plain, &plen);
    if (rc < 0)
        goto out;
    m = drover__message__unpack(NULL, plen, plain);
    if (m == NULL || m->body_case == DROVER__MESSAGE__BODY__NOT_SET) {
        rc = -EBADMSG;
        goto out;
    }
    *msg = m;
    m = NULL;
out:
    if (m != NULL)
        drover__message__free_unpacked(m, NULL);
    if (plain != NULL) {
        sodium_memzero(plain, plen);
        free(plain);
    }
    return rc;
}

int
wire_refusal(Drover__ErrorCode code, const char *text, uint8_t **out, size_t *outlen)
{
    Drover__Envelope env = DROVER__ENVELOPE__INIT;
    Drover__Message m = DROVER__MESSAGE__INIT;
    Drover__Error e = DROVER__ERROR__INIT;
    uint8_t body[600];
    size_t blen;

    *out = NULL;
    *outlen = 0;
    e.code = code;
    e.message = (char *)text;
    if (strlen(text) > 512)
        e.message = "refused";
    m.body_case = DROVER__MESSAGE__BODY_ERROR;
    m.error = &e;
    blen = drover__message__pack(&m, body);
    env.version = WIRE_VERSION;
    env.sender = "refusal";
    env.body.data = body;
    env.body.len = blen;
    return pack_envelope(&env, out, outlen);
}

int
wire_refusal_open(const uint8_t *buf, size_t len, Drover__ErrorCode *code, char *text,
                  size_t textsz)
{
    Drover__Envelope *env;
    Drover__Message *m = NULL;
    int rc = -EBADMSG;

    if (len > WIRE_MAX_SIZE || (env = drover__envelope__unpack(NULL, len, buf)) == NULL)
        return -EBADMSG;
    if (env->version == WIRE_VERSION && env->nonce.len == 0)
        m = drover__message__unpack(NULL, env->body.len, env->body.data);
    if (m != NULL && m->body_case == DROVER__MESSAGE__BODY_ERROR && m->error != NULL) {
        *code = m->error->code;
        snprintf(text, textsz, "%s", m->error->message ? m->error->message : "");
        rc = 0;
    }
    if (m != NULL)
        drover__message__free_unpacked(m, NULL);
    drover__envelope__free_unpacked(env, NULL);
    return rc;
}

bool
wire_err_auth(int err)
{
    switch (err) {
    case -ENOKEY:
    case -EKEYREJECTED:
    case -EBADE:
    case -EALREADY:
    case -ESTALE:
    case -EUSERS:
        return true;
    default:
        return false;
    }
}

void
wire_msg_free(Drover__Message *msg)
{
    if (msg != NULL)
        drover__message__free_unpacked(msg, NULL);
}

const char *
wire_strerror(int err)
{
    switch (err) {
    case 0:
        return "ok";
    case -EMSGSIZE:
        return "message too large";
    case -EBADMSG:
        return "malformed message";
    case -EPROTONOSUPPORT:
        return "unsupported protocol version";
    case -ENOMEM:
        return "out of memory";
    case -ENOKEY:
        return "not sealed";
    case -EKEYREJECTED:
        return "sealed with an unknown key";
    case -EBADE:
        return "does not authenticate";
    case -EALREADY:
        return "replayed";
    case -ESTALE:
        return "stale counter (replayed, or clocks apart)";
    case -EUSERS:
        return "too many senders";
    default:
        return "wire error";
    }
}

int
wire_seal_error(struct wire_sender *s, Drover__ErrorCode code, const char *text, uint8_t **out,
                size_t *outlen)
{
    Drover__Message m = DROVER__MESSAGE__INIT;
    Drover__Error e = DROVER__ERROR__INIT;

    e.code = code;
    e.message = (char *)text;
    m.body_case = DROVER__MESSAGE__BODY_ERROR;
    m.error = &e;
    return wire_seal(s, &m, out, outlen);
}

const char *
wire_state_name(Drover__InstanceState st)
{
    switch (st) {
    case DROVER__INSTANCE_STATE__ST_PENDING:
        return "pending";
    case DROVER__INSTANCE_STATE__ST_STARTING:
        return "starting";
    case DROVER__INSTANCE_STATE__ST_UP:
        return "up";
    case DROVER__INSTANCE_STATE__ST_DRAINING:
        return "draining";
    case DROVER__INSTANCE_STATE__ST_STOPPED:
        return "stopped";
    case DROVER__INSTANCE_STATE__ST_CRASHED:
        return "crashed";
    case DROVER__INSTANCE_STATE__ST_LOST:
        return "lost";
    case DROVER__INSTANCE_STATE__ST_FAILED:
        return "failed";
    default:
        return "unknown";
    }
}

int
wire_state_parse(const char *s, Drover__InstanceState *st)
{
    for (int i = DROVER__INSTANCE_STATE__ST_UNKNOWN; i <= DROVER__INSTANCE_STATE__ST_FAILED; i++) {
        if (strcmp(s, wire_state_name((Drover__InstanceState)i)) == 0) {
            *st = (Drover__InstanceState)i;
            return 0;
        }
    }
    return -EINVAL;
}
