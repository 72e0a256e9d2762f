/* SPDX-License-Identifier: MIT */
/*
 * util.h: small things every program needs: name rules, time, strings.
 */
#ifndef DROVER_UTIL_H
#define DROVER_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define APP_NAME_MAX 30
#define TYPE_NAME_MAX 30
#define NODE_NAME_MAX 63
#define CONFIG_KEY_MAX 255
#define CONFIG_VALUE_MAX 32768
#define CONFIG_MAX_VARS 1000

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* DROVER_ASAN: built with AddressSanitizer (GCC says so with
 * __SANITIZE_ADDRESS__, clang with __has_feature). */
#if defined(__SANITIZE_ADDRESS__)
#define DROVER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DROVER_ASAN 1
#endif
#endif

/* [a-z][a-z0-9-]{0,29} */
bool name_app_valid(const char *s);
/* [A-Za-z0-9_-]{1,30}, case-sensitive (as Heroku) */
bool name_type_valid(const char *s);
/* [A-Za-z_][A-Za-z0-9_]{0,254} */
bool name_config_key_valid(const char *s);
/* Why a config key may not be set (drover sets it for every process), or
 * NULL: PORT, DYNO, PS and DROVER_*. */
const char *name_config_key_reserved(const char *s);
/* [A-Za-z0-9][A-Za-z0-9._-]{0,62} */
bool name_node_valid(const char *s);
/* "web.1": a valid type, '.', a positive decimal. */
bool name_instance_valid(const char *s);

/* Wall clock in unix milliseconds: only for what a person reads and what must
 * survive a restart (stored times). Every duration, timeout, deadline and
 * backoff uses mono_ms() (or uv_now() on a loop). */
uint64_t now_ms(void);
/* CLOCK_MONOTONIC in milliseconds: never steps with the wall clock. */
uint64_t mono_ms(void);
/* RFC 3339 UTC with milliseconds: "2026-11-24T10:00:00.123Z" (25 bytes). */
void fmt_time_ms(uint64_t ms, char out[32]);
/* s into out, cut short to outsz - 1 bytes and terminated, as snprintf's
 * "%s" does, without its cost (outsz > 0). */
void str_copy(char *out, size_t outsz, const char *s);
/* v in decimal into out, terminated, without printf's cost; its length. */
size_t u32_dec(uint32_t v, char out[11]);

/* snprintf that reports truncation: 0 or -ENAMETOOLONG. */
int strfmt(char *out, size_t outsz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Read fd until len bytes or end of file, again after EINTR: how many were
 * read (a short count at end of file or at an error). */
size_t read_full(int fd, void *buf, size_t len);

/* mkdir -p; 0 or negative errno. */
int mkdir_p(const char *path, unsigned mode);
/* rm -rf; 0 or negative errno (ENOENT is success). */
int rm_rf(const char *path);

/* 64-bit FNV-1a, for digests that need no cryptographic strength. */
uint64_t fnv1a64(uint64_t h, const void *data, size_t len);
#define FNV1A64_INIT 0xcbf29ce484222325ull

#endif
