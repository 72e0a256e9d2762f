/* SPDX-License-Identifier: MIT */
/*
 * drain_url.c: the drain URLs drains:add accepts, and why it refuses others.
 *
 *   syslog://HOST:PORT       RFC 5424 over TCP, octet counting
 *   syslog+tls://HOST:PORT   the same over TLS (RFC 5425)
 *   https://[USER:PASS@]HOST[:PORT][/PATH][?QUERY]   Logplex-style POSTs
 *   http://...               the same, loopback hosts only (plain text)
 *
 * The parser is strict on purpose: the URL is stored, shown to everyone who
 * runs `drover drains`, handed to libcurl and to getaddrinfo on the drain's
 * thread, so anything odd (control bytes, spaces, fragments, a host that is
 * neither a name nor an address, a port out of range) is refused here with
 * the reason rather than discovered later. Pure: no I/O, no resolution.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "drain.h"

static int refuse(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
refuse(char *err, size_t errsz, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

const char *
drain_kind_name(enum drain_kind k)
{
    switch (k) {
    case DRAIN_SYSLOG:
        return "syslog";
    case DRAIN_SYSLOG_TLS:
        return "syslog+tls";
    case DRAIN_HTTPS:
        return "https";
    case DRAIN_HTTP:
        return "http";
    }
    return "?";
}

static bool
hostname_ok(const char *h)
{
    size_t label = 0, n = strlen(h);
    char prev = '.';

    if (n == 0 || n > DRAIN_HOST_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = h[i];

        if (c == '.') {
            if (label == 0 || prev == '-')
                return false;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '_') {
            if (label == 0 && c == '-')
                return false;
            if (++label > 63)
                return false;
        } else {
            return false;
        }
        prev = c;
    }
    return prev != '-';
}

static bool
all_digits_dots(const char *h)
{
    for (; *h != '\0'; h++)
        if (!((*h >= '0' && *h <= '9') || *h == '.'))
            return false;
    return true;
}

/* Characters RFC 3986 allows in userinfo (pct-encoded included). */
static bool
userinfo_ok(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strchr(
                "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~%!$&'()*+,;=:",
                p[i]) == NULL)
            return false;
    return n > 0;
}

static int
parse_host(const char *p, size_t n, struct drain_url *u, char *err, size_t errsz)
{
    char h[DRAIN_HOST_MAX + 3];
    unsigned char a[16];

    if (n == 0)
        return refuse(err, errsz, "no host");
    if (n >= sizeof(h))
        return refuse(err, errsz, "host longer than %d characters", DRAIN_HOST_MAX);
    memcpy(h, p, n);
    h[n] = '\0';
    if (h[0] == '[') {
        if (h[n - 1] != ']')
            return refuse(err, errsz, "unclosed [ in the host");
        h[n - 1] = '\0';
        if (inet_pton(AF_INET6, h + 1, a) != 1)
            return refuse(err, errsz, "bad IPv6 address %s", h + 1);
        snprintf(u->host, sizeof(u->host), "%s", h + 1);
        u->host_is_ip = true;
        u->loopback = strcmp(u->host, "::1") == 0;
        return 0;
    }
    if (all_digits_dots(h)) {
        if (inet_pton(AF_INET, h, a) != 1)
            return refuse(err, errsz, "bad IPv4 address %s", h);
        u->host_is_ip = true;
        u->loopback = a[0] == 127;
    } else if (!hostname_ok(h)) {
        return refuse(err, errsz, "bad host name (want letters, digits, '-' and dots)");
    } else {
        u->loopback = strcasecmp(h, "localhost") == 0;
    }
    snprintf(u->host, sizeof(u->host), "%s", h);
    return 0;
}

static int
parse_port(const char *p, size_t n, uint16_t *port, char *err, size_t errsz)
{
    unsigned long v = 0;

    if (n == 0 || n > 5)
        return refuse(err, errsz, "bad port (want 1..65535)");
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return refuse(err, errsz, "bad port (want 1..65535)");
        v = v * 10 + (unsigned long)(p[i] - '0');
    }
    if (v == 0 || v > 65535)
        return refuse(err, errsz, "bad port (want 1..65535)");
    *port = (uint16_t)v;
    return 0;
}

int
drain_url_parse(const char *url, struct drain_url *out, char *err, size_t errsz)
{
    static const struct {
        const char *prefix;
        enum drain_kind kind;
        uint16_t port;
    } schemes[] = {{"syslog://", DRAIN_SYSLOG, 0},
                   {"syslog+tls://", DRAIN_SYSLOG_TLS, 0},
                   {"https://", DRAIN_HTTPS, 443},
                   {"http://", DRAIN_HTTP, 80}};
    struct drain_url u;
    const char *p, *auth, *end, *at, *colon;
    size_t n, i;
    int rc;

    memset(&u, 0, sizeof(u));
    if (url == NULL || url[0] == '\0')
        return refuse(err, errsz, "empty URL");
    n = strnlen(url, DRAIN_URL_MAX + 1);
    if (n > DRAIN_URL_MAX)
        return refuse(err, errsz, "URL longer than %d bytes", DRAIN_URL_MAX);
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)url[i];

        if (c <= ' ' || c >= 0x7f)
            return refuse(err, errsz, "URL holds a space, a control or a non-ASCII byte at %zu", i);
        if (c == '#')
            return refuse(err, errsz, "URL holds a fragment (#)");
        if (c == '\\' || c == '"' || c == '<' || c == '>' || c == '`' || c == '{' || c == '}' ||
            c == '|' || c == '^')
            return refuse(err, errsz, "URL holds '%c', which URLs do not allow", c);
    }
    for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
        if (strncasecmp(url, schemes[i].prefix, strlen(schemes[i].prefix)) == 0)
            break;
    if (i == sizeof(schemes) / sizeof(schemes[0])) {
        if (strstr(url, "://") == NULL)
            return refuse(err, errsz, "not a URL (want syslog://, syslog+tls:// or https://)");
        return refuse(err, errsz,
                      "scheme %.*s is not supported (want syslog://, syslog+tls:// "
                      "or https://)",
                      (int)(strstr(url, "://") - url) > 32 ? 32 : (int)(strstr(url, "://") - url),
                      url);
    }
    u.kind = schemes[i].kind;
    u.port = schemes[i].port;
    auth = url + strlen(schemes[i].prefix);
    end = auth + strcspn(auth, "/?");
    /* userinfo: for HTTP(S) basic auth only. */
    at = NULL;
    for (p = auth; p < end; p++)
        if (*p == '@')
            at = p;
    if (at != NULL) {
        if (u.kind != DRAIN_HTTPS && u.kind != DRAIN_HTTP)
            return refuse(err, errsz, "a syslog URL carries no user or password");
        if (!userinfo_ok(auth, (size_t)(at - auth)))
            return refuse(err, errsz, "bad user:password part");
        auth = at + 1;
    }
    /* host[:port], the host maybe [v6] */
    p = auth;
    if (*p == '[') {
        const char *close = memchr(p, ']', (size_t)(end - p));

        if (close == NULL)
            return refuse(err, errsz, "unclosed [ in the host");
        colon = close + 1 < end ? close + 1 : NULL;
        if (colon != NULL && *colon != ':')
            return refuse(err, errsz, "junk after ]");
        rc = parse_host(p, (size_t)(close + 1 - p), &u, err, errsz);
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
        rc = parse_host(p, (size_t)((colon ? colon : end) - p), &u, err, errsz);
    }
    if (rc < 0)
        return rc;
    if (colon != NULL &&
        (rc = parse_port(colon + 1, (size_t)(end - colon - 1), &u.port, err, errsz)) < 0)
        return rc;
    if (u.port == 0)
        return refuse(err, errsz, "a syslog URL needs a port (syslog://HOST:PORT)");
    if ((u.kind == DRAIN_SYSLOG || u.kind == DRAIN_SYSLOG_TLS) && *end != '\0' &&
        strcmp(end, "/") != 0)
        return refuse(err, errsz, "a syslog URL has no path or query");
    if (u.kind == DRAIN_HTTP && !u.loopback)
        return refuse(err, errsz,
                      "http:// sends logs in plain text: only to a loopback host "
                      "(use https://)");
    *out = u;
    return 0;
}
