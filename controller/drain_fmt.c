/* SPDX-License-Identifier: MIT */
/*
 * drain_fmt.c: one line of an app's stream as an RFC 5424 message, framed
 * with octet counting (RFC 6587 section 3.4.1, the framing RFC 5425 uses
 * over TLS and Logplex uses in its HTTPS bodies):
 *
 *   83 <14>1 2026-11-24T10:00:00.123Z n1 shop web.1 - - GET / 200
 *
 * PRI is facility user (1) times 8 plus the severity; the header fields are
 * cut to RFC 5424's limits (HOSTNAME 255, APP-NAME 48, PROCID 128) and may
 * hold only PRINTUSASCII, so anything else becomes '_'; MSG is the line as
 * it is (octet counting needs no escaping). Pure.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "drain.h"

void
drain_bytes_fini(struct drain_bytes *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

static int
reserve(struct drain_bytes *b, size_t more)
{
    size_t cap = b->cap ? b->cap : 4096;
    char *p;

    if (b->len + more <= b->cap)
        return 0;
    while (cap < b->len + more)
        cap *= 2;
    p = realloc(b->p, cap);
    if (p == NULL)
        return -ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

/* An RFC 5424 header field: PRINTUSASCII, at most max, "-" when empty. */
static size_t
field(char *out, const char *s, size_t max)
{
    size_t n = 0;

    for (; s != NULL && s[n] != '\0' && n < max; n++)
        out[n] = (s[n] > ' ' && s[n] < 0x7f) ? s[n] : '_';
    if (n == 0)
        out[n++] = '-';
    out[n] = '\0';
    return n;
}

/* Per thread: every drain formats on its own thread. */
static _Thread_local time_t cache_sec;
static _Thread_local char cache_ts[40];

int
drain_frame_append(struct drain_bytes *b, int severity, uint64_t ts_ms, const char *host,
                   const char *app, const char *procid, const char *msg, size_t msglen)
{
    char h[256], a[49], pid[129], head[512], ts[40], num[24];
    time_t sec = (time_t)(ts_ms / 1000);
    struct tm tm;
    int hn, nn;
    size_t mlen;

    field(h, host, 255);
    field(a, app, 48);
    field(pid, procid, 128);
    /* Lines of a batch mostly share their second: format it once. */
    if (sec != cache_sec || cache_ts[0] == '\0') {
        gmtime_r(&sec, &tm);
        strftime(cache_ts, sizeof(cache_ts), "%Y-%m-%dT%H:%M:%S", &tm);
        cache_sec = sec;
    }
    memcpy(ts, cache_ts, sizeof(ts));
    hn = snprintf(head, sizeof(head), "<%d>1 %s.%03uZ %s %s %s - - ",
                  DRAIN_FACILITY_USER * 8 + severity, ts, (unsigned)(ts_ms % 1000), h, a, pid);
    if (hn < 0 || (size_t)hn >= sizeof(head))
        return -EINVAL;
    mlen = (size_t)hn + msglen;
    nn = snprintf(num, sizeof(num), "%zu ", mlen);
    if (reserve(b, (size_t)nn + mlen) < 0)
        return -ENOMEM;
    memcpy(b->p + b->len, num, (size_t)nn);
    memcpy(b->p + b->len + nn, head, (size_t)hn);
    memcpy(b->p + b->len + nn + hn, msg, msglen);
    b->len += (size_t)nn + mlen;
    return 0;
}
