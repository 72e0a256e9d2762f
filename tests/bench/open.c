/* SPDX-License-Identifier: MIT */
/*
 * open.c: what every part of the load program needs: opening the
 * controller's sealed replies, the clock, and reading a process's CPU time
 * and memory from /proc.
 *
 * bench_open() authenticates exactly as wire_open() does (the associated
 * data is the header in the layout of docs/protocol.md, "Sealing"), but
 * keeps no replay state: see bench.h for why a process hosting many agents
 * cannot use one replay window for the controller's counter. Replies come
 * over loopback from the controller this run started, so nothing is lost by
 * not checking their freshness.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <time.h>

#include <sodium.h>

#include "bench.h"

#define AD_MAX (4 + 4 + 4 + 8 + 1 + 64)

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

int
bench_open(const uint8_t *buf, size_t len, const uint8_t key[WIRE_KEY_BYTES], Drover__Message **msg)
{
    Drover__Envelope *env = NULL;
    Drover__Message *m = NULL;
    uint8_t *plain = NULL, ad[AD_MAX];
    unsigned long long n = 0;
    int rc = -EBADMSG;

    *msg = NULL;
    if (len > WIRE_MAX_SIZE)
        return -EMSGSIZE;
    if ((env = drover__envelope__unpack(NULL, len, buf)) == NULL)
        return -EBADMSG;
    if (env->version != WIRE_VERSION) {
        rc = -EPROTONOSUPPORT;
        goto out;
    }
    if (env->nonce.len == 0) {
        rc = -ENOKEY; /* a refusal: the caller may read it with wire_refusal_open */
        goto out;
    }
    if (env->sender == NULL || env->nonce.len != WIRE_NONCE_BYTES || env->body.len < WIRE_TAG_BYTES)
        goto out;
    if (env->key_id != wire_key_id(key)) {
        rc = -EKEYREJECTED;
        goto out;
    }
    if ((plain = malloc(env->body.len)) == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            plain, &n, NULL, env->body.data, env->body.len, ad,
            build_ad(ad, env->version, env->key_id, env->counter, env->sender), env->nonce.data,
            key) != 0) {
        rc = -EBADE;
        goto out;
    }
    m = drover__message__unpack(NULL, (size_t)n, plain);
    if (m == NULL || m->body_case == DROVER__MESSAGE__BODY__NOT_SET) {
        rc = -EBADMSG;
        goto out;
    }
    *msg = m;
    m = NULL;
    rc = 0;
out:
    if (m != NULL)
        drover__message__free_unpacked(m, NULL);
    free(plain);
    drover__envelope__free_unpacked(env, NULL);
    return rc;
}

uint64_t
bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int64_t
bench_cpu_ms(pid_t pid)
{
    char path[64], buf[2048], *p;
    unsigned long long ut = 0, st = 0;
    long hz = sysconf(_SC_CLK_TCK);
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command may hold spaces and parentheses: fields start after the
     * last ')'. utime and stime are fields 14 and 15. */
    if ((p = strrchr(buf, ')')) == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (int64_t)((ut + st) * 1000 / (unsigned long long)(hz > 0 ? hz : 100));
}

int64_t
bench_rss_kib(pid_t pid)
{
    char path[64], line[256];
    long long kib = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %lld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

void
bench_raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}
