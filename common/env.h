/* SPDX-License-Identifier: MIT */
/*
 * env.h: configuration from DROVER_* environment variables, and nothing else.
 *
 * Every program reads each variable once at start through these functions.
 * Errors do not stop the reading: they are collected in a struct env_errs, so
 * that env_check() can report every bad variable at once and exit 78
 * (EX_CONFIG). getenv() appears in env.c only.
 */
#ifndef DROVER_ENV_H
#define DROVER_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ENV_EX_CONFIG 78
#define ENV_MAX_ERRS 32

struct env_errs {
    int n;
    char msg[ENV_MAX_ERRS][256];
};

/* Add a message (for checks that involve several variables). */
void env_err(struct env_errs *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The raw value, or NULL when unset or empty. */
const char *env_raw(const char *name);

/*
 * String value into out (NUL-terminated), def when unset. Too long: error.
 * Returns 0 or -EINVAL.
 */
int env_str(struct env_errs *e, const char *name, const char *def, char *out, size_t outsz);
/* As env_str, but a variable set to "" stays "" (it turns something off,
 * as DROVER_HTTP_LISTEN= does); only an unset one takes def. */
int env_str_or_off(struct env_errs *e, const char *name, const char *def, char *out, size_t outsz);

/* Unsigned decimal in [min, max]; def when unset. Strict: no sign, no junk. */
int env_u64(struct env_errs *e, const char *name, uint64_t def, uint64_t min, uint64_t max,
            uint64_t *out);

/* "LO-HI" with 1 <= LO <= HI <= 65535; def_lo/def_hi when unset. */
int env_port_range(struct env_errs *e, const char *name, uint16_t def_lo, uint16_t def_hi,
                   uint16_t *lo, uint16_t *hi);

/*
 * A nanomsg TCP endpoint "tcp://HOST:PORT" (HOST may be '*' or an address or
 * name). def when unset. The port is returned in *port if port is not NULL.
 */
int env_endpoint(struct env_errs *e, const char *name, const char *def, char *out, size_t outsz,
                 uint16_t *port);

/*
 * A comma-separated list of 1..max endpoints "tcp://HOST:PORT[,tcp://...]"
 * (DROVER_JOIN, DROVER_CONTROLLER: every controller of a cluster); spaces
 * around the commas are allowed; an empty item, a '*' host (a listen
 * address) or a duplicate is an error. def when unset. *n is the count.
 */
#define ENV_ENDPOINTS_MAX 8
#define ENV_ENDPOINT_MAX 256
int env_endpoints(struct env_errs *e, const char *name, const char *def,
                  char (*out)[ENV_ENDPOINT_MAX], size_t max, size_t *n);

/*
 * A required 256-bit key given as 64 hex digits (DROVER_CLUSTER_KEY). Missing
 * or malformed: an error that says how to make one. The value is never
 * echoed into a log. Returns 0 or -EINVAL.
 */
int env_key(struct env_errs *e, const char *name, uint8_t key[32]);

/*
 * A secret token (DROVER_API_TOKEN): 16..4096 printable ASCII characters,
 * never echoed. required: an error when unset; otherwise out is "" when
 * unset. Returns 0, or -EINVAL (bad value, or missing when required).
 */
int env_token(struct env_errs *e, const char *name, bool required, char *out, size_t outsz);

/*
 * Accept and ignore variables reserved for later issues (checked for length
 * only), so that setting them never breaks a start.
 */
void env_reserved(struct env_errs *e, const char *name);

/*
 * If any error was collected: one log event per error (event=config_error),
 * then exit(78). Otherwise return.
 */
void env_check(const struct env_errs *e);

/* Unit tests and the CLI: parse helpers without the environment. */
int env_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
int env_parse_port_range(const char *s, uint16_t *lo, uint16_t *hi);
int env_parse_endpoint(const char *s, char *host, size_t hostsz, uint16_t *port);
/* As env_endpoints, without the environment: 0, or -EINVAL and why. */
int env_parse_endpoints(const char *s, char (*out)[ENV_ENDPOINT_MAX], size_t max, size_t *n,
                        char *why, size_t whysz);

/*
 * Replace the port in endpoint "tcp://HOST:PORT" with PORT+delta, into out.
 * Used to derive the notify and log endpoints from the agent endpoint.
 */
int env_endpoint_offset(const char *endpoint, int delta, char *out, size_t outsz);

#endif
