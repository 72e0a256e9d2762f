/* SPDX-License-Identifier: MIT */
/*
 * fmt.c: small formatting helpers for human output — times, durations,
 * formations, deploy progress, host:port. Machine output (--json) uses RFC 3339
 * with milliseconds from common/util.h instead; these are for eyes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"

void
cli_fmt_time(uint64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    if (ms == 0 || gmtime_r(&t, &tm) == NULL) {
        strcpy(out, "-");
        return;
    }
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void
cli_fmt_ago(uint64_t ms, uint64_t now, char out[32])
{
    uint64_t s;

    if (ms == 0) {
        out[0] = '\0';
        return;
    }
    s = now > ms ? (now - ms) / 1000 : 0;
    if (s < 60)
        snprintf(out, 32, "~ %" PRIu64 "s ago", s);
    else if (s < 3600)
        snprintf(out, 32, "~ %" PRIu64 "m ago", s / 60);
    else if (s < 86400)
        snprintf(out, 32, "~ %" PRIu64 "h ago", s / 3600);
    else
        snprintf(out, 32, "~ %" PRIu64 "d ago", s / 86400);
}

void
cli_fmt_ms(uint64_t ms, char out[32])
{
    if (ms % 1000 == 0)
        snprintf(out, 32, "%" PRIu64 " s", ms / 1000);
    else
        snprintf(out, 32, "%" PRIu64 ".%03" PRIu64 " s", ms / 1000, ms % 1000);
    /* "0.500 s" reads better as "0.5 s" */
    if (strchr(out, '.') != NULL) {
        char *sp = strchr(out, ' ');
        char *p = sp - 1;

        while (*p == '0')
            p--;
        memmove(p + 1, sp, strlen(sp) + 1);
    }
}

/*
 * Minutes only from two whole minutes up: a boot timeout of 60 s reads as
 * "60s" and 90 s as "90s", not "1m" and "1m30s". Every form is one that
 * `settings:set` accepts back.
 */
void
cli_fmt_duration(uint64_t ms, char out[32])
{
    uint64_t s = ms / 1000;

    if (ms % 1000 != 0)
        snprintf(out, 32, "%" PRIu64 "ms", ms);
    else if (s >= 120 && s % 60 == 0)
        snprintf(out, 32, "%" PRIu64 "m", s / 60);
    else
        snprintf(out, 32, "%" PRIu64 "s", s);
}

void
cli_fmt_progress(const Drover__TypeProgress *t, uint32_t release, char *out, size_t outsz)
{
    uint32_t starting = t->created > t->updated ? t->created - t->updated : 0;
    int w;

    w = snprintf(out, outsz, "%s %u/%u on v%u", cli_str(t->type), t->updated, t->desired, release);
    if (w < 0 || (size_t)w >= outsz || (starting == 0 && t->old == 0))
        return;
    if (starting > 0 && t->old > 0)
        snprintf(out + w, outsz - (size_t)w, " (%u starting, %u old)", starting, t->old);
    else if (starting > 0)
        snprintf(out + w, outsz - (size_t)w, " (%u starting)", starting);
    else
        snprintf(out + w, outsz - (size_t)w, " (%u old)", t->old);
}

void
cli_fmt_hostport(const char *host, uint32_t port, char *out, size_t outsz)
{
    host = cli_str(host);
    if (strchr(host, ':') != NULL)
        snprintf(out, outsz, "[%s]:%u", host, port);
    else
        snprintf(out, outsz, "%s:%u", host, port);
}

void
cli_fmt_formation(Drover__FormationEntry **f, size_t n, char *out, size_t outsz)
{
    size_t used = 0;

    out[0] = '\0';
    for (size_t i = 0; i < n && used < outsz; i++) {
        int w = snprintf(out + used, outsz - used, "%s%s=%d", used > 0 ? " " : "",
                         cli_str(f[i]->type), f[i]->quantity);

        if (w < 0)
            break;
        used += (size_t)w;
    }
    if (out[0] == '\0')
        snprintf(out, outsz, "(none)");
}

const char *
cli_str(const char *s)
{
    return s != NULL ? s : "";
}

uint64_t
cli_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void
cli_sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}
