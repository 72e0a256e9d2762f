/* SPDX-License-Identifier: MIT */
/*
 * settings.c: a process type's settings, as `drover settings:set` gives them.
 *
 *   health           tcp | none | http:/PATH   (web: tcp, others: none)
 *   boot_timeout     1s..1h                    (60s)
 *   grace            0..1h                     (30s)
 *   max_surge        N | P%                    (25%)
 *   max_unavailable  N | P%                    (0)
 *   min_healthy      0..10m                    (1s)
 *   deploy_timeout   1s..24h                   (5m)
 *   shutdown_delay   0..10m                    (web: 1s, others: 0)
 *   memory           4M..1T, none               (none) a hard limit: B, K, M, G, T (binary)
 *   cpu              0.01..1024 cores, none     (none) a quota: 0.5 = half a core
 *   pids             8..4194304, none           (none) the most tasks
 *   nofile           16..1048576, none          (none) the descriptor limit
 *
 * min_healthy must be shorter than boot_timeout, and max_surge and
 * max_unavailable cannot both be 0. Durations are N (seconds), Nms, Ns, Nm or
 * Nh. Values are parsed and checked
 * here, in one place; the CLI sends what the person typed. They apply to
 * instances started from then on (an assignment never changes on an agent)
 * and to the next rollout's batches.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ctl.h"

#define SEC 1000ull
#define HEALTH_PATH_MAX (CTL_HEALTH_MAX - 6)

void
ctl_settings_defaults(struct ctl_formation *f)
{
    bool web = strcmp(f->type, "web") == 0;

    strcpy(f->health, web ? "tcp" : "none");
    f->grace_ms = CTL_DEFAULT_GRACE_MS;
    f->boot_timeout_ms = CTL_DEFAULT_BOOT_TIMEOUT_MS;
    strcpy(f->max_surge, CTL_DEFAULT_MAX_SURGE);
    strcpy(f->max_unavailable, CTL_DEFAULT_MAX_UNAVAILABLE);
    f->min_healthy_ms = CTL_DEFAULT_MIN_HEALTHY_MS;
    f->deploy_timeout_ms = CTL_DEFAULT_DEPLOY_TIMEOUT_MS;
    f->shutdown_delay_ms = web ? CTL_DEFAULT_SHUTDOWN_DELAY_MS : 0;
    /* The release phase's deploy_timeout is its release_timeout. */
    if (strcmp(f->type, ctl_release_type_name) == 0)
        f->deploy_timeout_ms = CTL_DEFAULT_RELEASE_TIMEOUT_MS;
}

/* "30s", "500ms", "2m", "1h", "45" (seconds) into ms within [lo, hi]. */
static int
parse_duration(const char *s, uint64_t lo, uint64_t hi, uint32_t *out)
{
    unsigned long long v, unit;
    char *end;

    if (s[0] < '0' || s[0] > '9')
        return -EINVAL;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || v > 100000000ull)
        return -ERANGE;
    if (*end == '\0' || strcmp(end, "s") == 0)
        unit = SEC;
    else if (strcmp(end, "ms") == 0)
        unit = 1;
    else if (strcmp(end, "m") == 0)
        unit = 60 * SEC;
    else if (strcmp(end, "h") == 0)
        unit = 3600 * SEC;
    else
        return -EINVAL;
    v *= unit;
    if (v < lo || v > hi)
        return -ERANGE;
    *out = (uint32_t)v;
    return 0;
}

/* "N" (0..10000) or "P%" (0..100). */
static int
parse_roll(const char *s, char *out)
{
    unsigned long v;
    char *end;

    if (s[0] < '0' || s[0] > '9' || strlen(s) >= CTL_ROLL_MAX)
        return -EINVAL;
    v = strtoul(s, &end, 10);
    if ((*end != '\0' && strcmp(end, "%") != 0) || (*end == '%' ? v > 100 : v > 10000))
        return -EINVAL;
    snprintf(out, CTL_ROLL_MAX, "%lu%s", v, end);
    return 0;
}

/* "512M", "1G", "64Mi", "1048576" (bytes), "none" (0) into [lo, hi]. */
static int
parse_memory(const char *s, uint64_t *out)
{
    static const char units[] = "BKMGT";
    unsigned long long v;
    const char *u;
    char *end;
    int shift;

    if (strcmp(s, "none") == 0) {
        *out = 0;
        return 0;
    }
    if (s[0] < '0' || s[0] > '9')
        return -EINVAL;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || v > (1ull << 40))
        return -ERANGE;
    if (*end == '\0')
        shift = 0;
    else if ((u = strchr(units, toupper((unsigned char)end[0]))) != NULL && *u != '\0') {
        shift = (int)(u - units) * 10;
        end++;
        if (shift &&
            (strcasecmp(end, "i") == 0 || strcasecmp(end, "iB") == 0 || strcasecmp(end, "B") == 0))
            end += strlen(end);
        if (*end != '\0')
            return -EINVAL;
    } else
        return -EINVAL;
    if (v > ((1ull << 40) >> shift))
        return -ERANGE;
    v <<= shift;
    if (v < (4ull << 20) || v > (1ull << 40))
        return -ERANGE;
    *out = v;
    return 0;
}

/* "0.5", "2", "0.25" cores into thousandths, 0.01..1024; "none" (0). */
static int
parse_cpu(const char *s, uint32_t *out)
{
    unsigned long whole = 0, frac = 0;
    int digits = 0;
    const char *p = s;

    if (strcmp(s, "none") == 0) {
        *out = 0;
        return 0;
    }
    if (*p < '0' || *p > '9')
        return -EINVAL;
    while (*p >= '0' && *p <= '9' && whole <= 100000)
        whole = whole * 10 + (unsigned long)(*p++ - '0');
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9' && digits < 3) {
            frac = frac * 10 + (unsigned long)(*p++ - '0');
            digits++;
        }
        if (digits == 0)
            return -EINVAL;
        for (; digits < 3; digits++)
            frac *= 10;
    }
    if (*p != '\0')
        return -EINVAL;
    if (whole > 1024 || whole * 1000 + frac < 10 || whole * 1000 + frac > 1024000)
        return -ERANGE;
    *out = (uint32_t)(whole * 1000 + frac);
    return 0;
}

static int
parse_count(const char *s, uint64_t lo, uint64_t hi, uint32_t *out)
{
    unsigned long long v;
    char *end;

    if (strcmp(s, "none") == 0) {
        *out = 0;
        return 0;
    }
    if (s[0] < '0' || s[0] > '9')
        return -EINVAL;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (*end != '\0')
        return -EINVAL;
    if (errno != 0 || v < lo || v > hi)
        return -ERANGE;
    *out = (uint32_t)v;
    return 0;
}

/* memory, cpu, pids, nofile: 1 when key is not one of them. */
static int
set_limit(struct ctl_formation *f, const char *key, const char *value, char *err, size_t errsz)
{
    if (strcmp(key, "memory") == 0) {
        if (parse_memory(value, &f->memory_bytes) == 0)
            return 0;
        snprintf(err, errsz,
                 "memory: want a size from 4M to 1T like 512M or 1G (units B, K, M, G, T; "
                 "binary), or none, not \"%.40s\"",
                 value);
        return -EINVAL;
    }
    if (strcmp(key, "cpu") == 0) {
        if (parse_cpu(value, &f->cpu_milli) == 0)
            return 0;
        snprintf(err, errsz,
                 "cpu: want cores from 0.01 to 1024 like 0.5 or 2 (at most 3 decimals), or "
                 "none, not \"%.40s\"",
                 value);
        return -EINVAL;
    }
    if (strcmp(key, "pids") == 0) {
        if (parse_count(value, 8, 4194304, &f->pids) == 0)
            return 0;
        snprintf(err, errsz, "pids: want a count from 8 to 4194304, or none, not \"%.40s\"", value);
        return -EINVAL;
    }
    if (strcmp(key, "nofile") == 0) {
        if (parse_count(value, 16, 1048576, &f->nofile) == 0)
            return 0;
        snprintf(err, errsz, "nofile: want a count from 16 to 1048576, or none, not \"%.40s\"",
                 value);
        return -EINVAL;
    }
    return 1;
}

static bool
health_ok(const char *s)
{
    const char *p;

    if (strcmp(s, "tcp") == 0 || strcmp(s, "none") == 0)
        return true;
    if (strncmp(s, "http:/", 6) != 0 || strlen(s + 5) > HEALTH_PATH_MAX)
        return false;
    for (p = s + 5; *p != '\0'; p++) {
        if (*p <= ' ' || *p >= 0x7f)
            return false;
    }
    return true;
}

static const struct duration_key {
    const char *key;
    size_t off;
    uint64_t lo, hi;
    const char *range;
} durations[] = {
    {"boot_timeout", offsetof(struct ctl_formation, boot_timeout_ms), SEC, 3600 * SEC, "1s..1h"},
    {"grace", offsetof(struct ctl_formation, grace_ms), 0, 3600 * SEC, "0..1h"},
    {"min_healthy", offsetof(struct ctl_formation, min_healthy_ms), 0, 600 * SEC, "0..10m"},
    {"deploy_timeout", offsetof(struct ctl_formation, deploy_timeout_ms), SEC, 86400 * SEC,
     "1s..24h"},
    {"shutdown_delay", offsetof(struct ctl_formation, shutdown_delay_ms), 0, 600 * SEC, "0..10m"},
};

int
ctl_settings_set(struct ctl_formation *f, const char *key, const char *value, char *err,
                 size_t errsz)
{
    bool release = strcmp(f->type, ctl_release_type_name) == 0;
    size_t i;
    int rc;

    /* Type release keeps its release_timeout where others keep their
     * deploy_timeout: it is never rolled out, and the store needs no column. */
    if (strcmp(key, "release_timeout") == 0) {
        if (!release) {
            snprintf(err, errsz, "release_timeout is a setting of type release only");
            return -EINVAL;
        }
        key = "deploy_timeout";
    } else if (release && strcmp(key, "deploy_timeout") == 0) {
        snprintf(err, errsz, "type release has release_timeout, not deploy_timeout");
        return -EINVAL;
    }
    for (i = 0; i < ARRAY_SIZE(durations); i++) {
        const struct duration_key *d = &durations[i];

        if (strcmp(key, d->key) != 0)
            continue;
        if (parse_duration(value, d->lo, d->hi, (uint32_t *)((char *)f + d->off)) == 0)
            return 0;
        snprintf(err, errsz, "%s: want a duration in %s like 30s, 500ms or 2m, not \"%.40s\"", key,
                 d->range, value);
        return -EINVAL;
    }
    if (strcmp(key, "health") == 0) {
        if (health_ok(value)) {
            snprintf(f->health, sizeof(f->health), "%s", value);
            return 0;
        }
        snprintf(err, errsz,
                 "health: want tcp, none or http:/PATH (at most %d characters, no "
                 "spaces), not \"%.40s\"",
                 HEALTH_PATH_MAX, value);
        return -EINVAL;
    }
    if (strcmp(key, "max_surge") == 0 || strcmp(key, "max_unavailable") == 0) {
        char *out = key[4] == 's' ? f->max_surge : f->max_unavailable;

        if (parse_roll(value, out) == 0)
            return 0;
        snprintf(err, errsz,
                 "%s: want a count (0..10000) or a percentage (0%%..100%%), not "
                 "\"%.40s\"",
                 key, value);
        return -EINVAL;
    }
    if ((rc = set_limit(f, key, value, err, errsz)) <= 0)
        return rc;
    snprintf(err, errsz,
             "unknown setting \"%.40s\" (want health, boot_timeout, grace, max_surge, "
             "max_unavailable, min_healthy, deploy_timeout, shutdown_delay, memory, cpu, pids, "
             "nofile, or release_timeout for type release)",
             key);
    return -EINVAL;
}

static bool
roll_zero(const char *s)
{
    return strtoul(s, NULL, 10) == 0;
}

int
ctl_settings_check(const struct ctl_formation *f, char *err, size_t errsz)
{
    if (roll_zero(f->max_surge) && roll_zero(f->max_unavailable)) {
        snprintf(err, errsz,
                 "max_surge and max_unavailable cannot both be 0: a rollout could "
                 "never replace an instance");
        return -EINVAL;
    }
    if (f->min_healthy_ms >= f->boot_timeout_ms) {
        snprintf(err, errsz,
                 "min_healthy (%u ms) must be shorter than boot_timeout (%u ms): an instance "
                 "could never come up in time",
                 f->min_healthy_ms, f->boot_timeout_ms);
        return -EINVAL;
    }
    return 0;
}

void
ctl_view_settings(const struct ctl_formation *f, Drover__TypeSettings *ts)
{
    ts->type = (char *)f->type;
    ts->quantity = f->quantity;
    ts->health = (char *)f->health;
    ts->boot_timeout_ms = f->boot_timeout_ms;
    ts->grace_ms = f->grace_ms;
    ts->max_surge = (char *)f->max_surge;
    ts->max_unavailable = (char *)f->max_unavailable;
    ts->min_healthy_ms = f->min_healthy_ms;
    ts->deploy_timeout_ms = f->deploy_timeout_ms;
    ts->shutdown_delay_ms = f->shutdown_delay_ms;
    ts->memory_bytes = f->memory_bytes;
    ts->cpu_milli = f->cpu_milli;
    ts->pids = f->pids;
    ts->nofile = f->nofile;
}
