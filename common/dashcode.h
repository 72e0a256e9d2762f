/* SPDX-License-Identifier: MIT */
/*
 * dashcode.h: one-time sign-in codes for the dashboard (`drover dashboard`).
 *
 * The CLI makes a code without asking the controller anything: a random
 * nonce, an expiry (unix ms, 60 s ahead) and a MAC of both under a key
 * derived from DROVER_API_TOKEN. The controller checks the MAC and the
 * expiry, and remembers each nonce it accepted until the code expires, so a
 * code works once. Only a holder of the token can make one; the token itself
 * never appears in a URL.
 */
#ifndef DROVER_DASHCODE_H
#define DROVER_DASHCODE_H

#include <stddef.h>
#include <stdint.h>

#define DASHCODE_TTL_MS 60000u
#define DASHCODE_NONCE 16
#define DASHCODE_LEN (2 * (DASHCODE_NONCE + 8 + 32)) /* hex characters */

/* A code valid until now_ms + DASHCODE_TTL_MS into out (DASHCODE_LEN + 1). */
int dashcode_make(const char *token, uint64_t now_ms, char *out, size_t outsz);
/*
 * 0 when code is genuine and unexpired, with its nonce and expiry;
 * -EINVAL (malformed), -EKEYREJECTED (not made with this token), -ETIME
 * (expired, or further ahead than a code can be).
 */
int dashcode_check(const char *token, const char *code, uint64_t now_ms,
                   uint8_t nonce[DASHCODE_NONCE], uint64_t *expires_ms);

#endif
