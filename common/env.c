/* SPDX-License-Identifier: MIT */
/*
 * env.c: the only place drover calls getenv().
 *
 * Twelve-factor III: config lives in the environment. Each variable is parsed
 * strictly (no sign, no trailing junk, no silent clamping) and every problem is
 * collected, so that an operator sees all of them in one start, not one per
 * restart.
 */
#include "env.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"
#include "wire.h"

void
env_err(struct env_errs *e, const char *fmt, ...)
{
    va_list ap;

    if (e->n >= ENV_MAX_ERRS)
        return;
    va_start(ap, fmt);
    vsnprintf(e->msg[e->n++], sizeof(e->msg[0]), fmt, ap);
    va_end(ap);
}

const char *
env_raw(const char *name)
{
    const char *v = getenv(name);

    return (v == NULL || v[0] == '\0') ? NULL : v;
}

int
env_str(struct env_errs *e, const char *name, const char *def, char *out, size_t outsz)
{
    const char *v = env_raw(name);

    if (v == NULL)
        v = def != NULL ? def : "";
    if (strlen(v) >= outsz) {
        env_err(e, "%s is too long (at most %zu characters)", name, outsz - 1);
        out[0] = '\0';
        return -EINVAL;
    }
    memcpy(out, v, strlen(v) + 1);
    return 0;
}

int
env_str_or_off(struct env_errs *e, const char *name, const char *def, char *out, size_t outsz)
{
    const char *v = getenv(name);

    if (v != NULL && v[0] == '\0') {
        out[0] = '\0';
        return 0;
    }
    return env_str(e, name, def, out, outsz);
}

int
env_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    const char *p;

    if (s == NULL || *s == '\0')
        return -EINVAL;
    for (p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
            return -ERANGE;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (v < min || v > max)
        return -ERANGE;
    *out = v;
    return 0;
}

int
env_u64(struct env_errs *e, const char *name, uint64_t def, uint64_t min, uint64_t max,
        uint64_t *out)
{
    const char *v = env_raw(name);
    int rc;

    *out = def;
    if (v == NULL)
        return 0;
    rc = env_parse_u64(v, min, max, out);
    if (rc < 0) {
        env_err(e, "%s=%s is not a whole number from %llu to %llu", name, log_q(v),
                (unsigned long long)min, (unsigned long long)max);
        *out = def;
    }
    return rc;
}

int
env_parse_port_range(const char *s, uint16_t *lo, uint16_t *hi)
{
    char buf[32];
    char *dash;
    uint64_t a, b;

    if (s == NULL || strlen(s) >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, s, strlen(s) + 1);
    if ((dash = strchr(buf, '-')) == NULL)
        return -EINVAL;
    *dash = '\0';
    if (env_parse_u64(buf, 1, 65535, &a) < 0 || env_parse_u64(dash + 1, 1, 65535, &b) < 0)
        return -EINVAL;
    if (a > b)
        return -EINVAL;
    *lo = (uint16_t)a;
    *hi = (uint16_t)b;
    return 0;
}

int
env_port_range(struct env_errs *e, const char *name, uint16_t def_lo, uint16_t def_hi, uint16_t *lo,
               uint16_t *hi)
{
    const char *v = env_raw(name);

    *lo = def_lo;
    *hi = def_hi;
    if (v == NULL)
        return 0;
    if (env_parse_port_range(v, lo, hi) < 0) {
        env_err(e, "%s=%s is not a port range LO-HI with 1 <= LO <= HI <= 65535", name, log_q(v));
        *lo = def_lo;
        *hi = def_hi;
        return -EINVAL;
    }
    return 0;
}

int
env_parse_endpoint(const char *s, char *host, size_t hostsz, uint16_t *port)
{
    const char *h, *colon;
    uint64_t p;
    size_t hlen;

    if (s == NULL || strncmp(s, "tcp://", 6) != 0)
        return -EINVAL;
    h = s + 6;
    if ((colon = strrchr(h, ':')) == NULL)
        return -EINVAL;
    hlen = (size_t)(colon - h);
    if (hlen == 0 || hlen >= hostsz)
        return -EINVAL;
    for (size_t i = 0; i < hlen; i++) {
        char c = h[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '*' || c == '[' || c == ']' || c == ':' || c == '_' ||
              c == ';'))
            return -EINVAL;
    }
    if (env_parse_u64(colon + 1, 1, 65535, &p) < 0)
        return -EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    if (port != NULL)
        *port = (uint16_t)p;
    return 0;
}

int
env_endpoint(struct env_errs *e, const char *name, const char *def, char *out, size_t outsz,
             uint16_t *port)
{
    const char *v = env_raw(name);
    char host[256];

    if (v == NULL)
        v = def;
    if (env_parse_endpoint(v, host, sizeof(host), port) < 0) {
        env_err(e, "%s=%s is not an endpoint like tcp://HOST:PORT", name, log_q(v));
        out[0] = '\0';
        return -EINVAL;
    }
    if (strlen(v) >= outsz) {
        env_err(e, "%s is too long", name);
        out[0] = '\0';
        return -EINVAL;
    }
    memcpy(out, v, strlen(v) + 1);
    return 0;
}

int
env_parse_endpoints(const char *s, char (*out)[ENV_ENDPOINT_MAX], size_t max, size_t *n, char *why,
                    size_t whysz)
{
    char host[256], item[ENV_ENDPOINT_MAX];
    const char *p = s, *end;
    size_t len;

    *n = 0;
    why[0] = '\0';
    if (s == NULL || *s == '\0') {
        snprintf(why, whysz, "no endpoint");
        return -EINVAL;
    }
    for (;;) {
        while (*p == ' ')
            p++;
        end = strchr(p, ',');
        len = end ? (size_t)(end - p) : strlen(p);
        while (len > 0 && p[len - 1] == ' ')
            len--;
        if (len == 0) {
            snprintf(why, whysz, "an empty item in the list");
            return -EINVAL;
        }
        if (len >= sizeof(item)) {
            snprintf(why, whysz, "endpoint %zu is too long", *n + 1);
            return -EINVAL;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        if (env_parse_endpoint(item, host, sizeof(host), NULL) < 0 || strchr(host, '*')) {
            snprintf(why, whysz, "'%.*s' is not an endpoint like tcp://HOST:PORT", 200, item);
            return -EINVAL;
        }
        for (size_t i = 0; i < *n; i++) {
            if (strcmp(out[i], item) == 0) {
                snprintf(why, whysz, "'%.*s' is listed twice", 200, item);
                return -EINVAL;
            }
        }
        if (*n == max) {
            snprintf(why, whysz, "more than %zu endpoints", max);
            return -EINVAL;
        }
        memcpy(out[(*n)++], item, len + 1);
        if (end == NULL)
            return 0;
        p = end + 1;
    }
}

int
env_endpoints(struct env_errs *e, const char *name, const char *def, char (*out)[ENV_ENDPOINT_MAX],
              size_t max, size_t *n)
{
    const char *v = env_raw(name);
    char why[256];

    if (v == NULL)
        v = def;
    if (env_parse_endpoints(v, out, max, n, why, sizeof(why)) < 0) {
        env_err(e, "%s=%s: %s (a comma-separated list of tcp://HOST:PORT)", name, log_q(v), why);
        *n = 0;
        return -EINVAL;
    }
    return 0;
}

int
env_endpoint_offset(const char *endpoint, int delta, char *out, size_t outsz)
{
    char host[256];
    uint16_t port;
    long p;

    if (env_parse_endpoint(endpoint, host, sizeof(host), &port) < 0)
        return -EINVAL;
    p = (long)port + delta;
    if (p < 1 || p > 65535)
        return -ERANGE;
    return strfmt(out, outsz, "tcp://%s:%ld", host, p);
}

int
env_key(struct env_errs *e, const char *name, uint8_t key[32])
{
    const char *v = env_raw(name);

    if (v == NULL) {
        env_err(e,
                "%s is not set: it must be 64 hex characters shared by the controller and "
                "every agent (make one with: openssl rand -hex 32)",
                name);
        return -EINVAL;
    }
    if (wire_key_parse_hex(v, key) < 0) {
        env_err(e, "%s is malformed: it must be exactly 64 hex characters (%zu given)", name,
                strlen(v));
        return -EINVAL;
    }
    return 0;
}

int
env_token(struct env_errs *e, const char *name, bool required, char *out, size_t outsz)
{
    const char *v = env_raw(name);
    size_t n;

    out[0] = '\0';
    if (v == NULL) {
        if (!required)
            return 0;
        env_err(e,
                "%s is not set: the API token the CLI must present (make one with: openssl "
                "rand -hex 32)",
                name);
        return -EINVAL;
    }
    n = strlen(v);
    if (n < 16 || n > 4096 || n >= outsz) {
        env_err(e, "%s must be 16 to %zu characters (%zu given)", name,
                outsz - 1 < 4096 ? outsz - 1 : (size_t)4096, n);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (v[i] <= ' ' || v[i] > '~') {
            env_err(e, "%s must be printable ASCII without spaces", name);
            return -EINVAL;
        }
    }
    memcpy(out, v, n + 1);
    return 0;
}

void
env_reserved(struct env_errs *e, const char *name)
{
    const char *v = env_raw(name);

    if (v != NULL && strlen(v) > 4096)
        env_err(e, "%s is too long", name);
}

void
env_check(const struct env_errs *e)
{
    if (e->n == 0)
        return;
    for (int i = 0; i < e->n; i++)
        log_error("config_error", "reason=%s", log_q(e->msg[i]));
    log_fatal(ENV_EX_CONFIG, "exit", "code=%d reason=%s", ENV_EX_CONFIG,
              log_q("bad configuration; see the config_error events above"));
}
