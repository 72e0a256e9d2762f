/* SPDX-License-Identifier: MIT */
/* dashcode.c: one-time dashboard sign-in codes (dashcode.h says how). */
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "dashcode.h"

static void
derive(const char *token, uint8_t key[crypto_auth_KEYBYTES])
{
    static const uint8_t ctx[] = "drover dashboard sign-in code v1";

    crypto_generichash(key, crypto_auth_KEYBYTES, (const uint8_t *)token, strlen(token), ctx,
                       sizeof(ctx) - 1);
}

int
dashcode_make(const char *token, uint64_t now_ms, char *out, size_t outsz)
{
    uint8_t raw[DASHCODE_NONCE + 8 + crypto_auth_BYTES], key[crypto_auth_KEYBYTES];
    uint64_t exp = now_ms + DASHCODE_TTL_MS;

    if (outsz < DASHCODE_LEN + 1 || sodium_init() < 0)
        return -EINVAL;
    randombytes_buf(raw, DASHCODE_NONCE);
    for (int i = 0; i < 8; i++)
        raw[DASHCODE_NONCE + i] = (uint8_t)(exp >> (56 - 8 * i));
    derive(token, key);
    crypto_auth(raw + DASHCODE_NONCE + 8, raw, DASHCODE_NONCE + 8, key);
    sodium_memzero(key, sizeof(key));
    sodium_bin2hex(out, outsz, raw, sizeof(raw));
    return 0;
}

int
dashcode_check(const char *token, const char *code, uint64_t now_ms, uint8_t nonce[DASHCODE_NONCE],
               uint64_t *expires_ms)
{
    uint8_t raw[DASHCODE_NONCE + 8 + crypto_auth_BYTES], key[crypto_auth_KEYBYTES];
    size_t n = 0;
    uint64_t exp = 0;
    int rc;

    if (sodium_init() < 0 || strlen(code) != DASHCODE_LEN ||
        sodium_hex2bin(raw, sizeof(raw), code, DASHCODE_LEN, NULL, &n, NULL) != 0 ||
        n != sizeof(raw))
        return -EINVAL;
    derive(token, key);
    rc = crypto_auth_verify(raw + DASHCODE_NONCE + 8, raw, DASHCODE_NONCE + 8, key);
    sodium_memzero(key, sizeof(key));
    if (rc != 0)
        return -EKEYREJECTED;
    for (int i = 0; i < 8; i++)
        exp = exp << 8 | raw[DASHCODE_NONCE + i];
    if (exp < now_ms || exp > now_ms + 2 * DASHCODE_TTL_MS)
        return -ETIME;
    memcpy(nonce, raw, DASHCODE_NONCE);
    *expires_ms = exp;
    return 0;
}
