/* SPDX-License-Identifier: MIT */
/*
 * drain_test.c: the log drains' pure parts (controller/drain_*.c): the URL
 * parser against hostile input, the RFC 5424 formatter and its octet
 * counting, and the buffer's drop accounting (every line is delivered or
 * counted by exactly one marker).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drain.h"

/* ---- URLs ---- */

static int
parse(const char *url, struct drain_url *u, char *err)
{
    return drain_url_parse(url, u, err, 256);
}

Test(drain_url, accepts_the_four_schemes, .timeout = 2)
{
    struct drain_url u;
    char err[256];

    cr_assert_eq(parse("syslog://logs.example.com:514", &u, err), 0, "%s", err);
    cr_assert_eq(u.kind, DRAIN_SYSLOG);
    cr_assert_str_eq(u.host, "logs.example.com");
    cr_assert_eq(u.port, 514);
    cr_assert(!u.host_is_ip);
    cr_assert_eq(parse("syslog+tls://[::1]:6514", &u, err), 0, "%s", err);
    cr_assert_eq(u.kind, DRAIN_SYSLOG_TLS);
    cr_assert_str_eq(u.host, "::1");
    cr_assert(u.host_is_ip && u.loopback);
    cr_assert_eq(parse("syslog+tls://10.1.2.3:6514/", &u, err), 0, "%s", err);
    cr_assert(u.host_is_ip && !u.loopback);
    cr_assert_eq(parse("https://user:p%40ss@logs.example.com/drain?token=abc", &u, err), 0, "%s",
                 err);
    cr_assert_eq(u.kind, DRAIN_HTTPS);
    cr_assert_str_eq(u.host, "logs.example.com");
    cr_assert_eq(u.port, 443);
    cr_assert_eq(parse("https://logs.example.com:8443", &u, err), 0, "%s", err);
    cr_assert_eq(u.port, 8443);
    cr_assert_eq(parse("http://127.0.0.1:8080/logs", &u, err), 0, "%s", err);
    cr_assert_eq(u.kind, DRAIN_HTTP);
    cr_assert_eq(parse("http://localhost/logs", &u, err), 0, "%s", err);
    cr_assert_eq(u.port, 80);
}

Test(drain_url, refuses_hostile_urls_with_the_reason, .timeout = 2)
{
    static const struct {
        const char *url, *why;
    } bad[] = {
        {"", "empty"},
        {"logs.example.com:514", "not a URL"},
        {"ftp://logs.example.com:21", "scheme ftp is not supported"},
        {"file:///etc/passwd", "scheme file is not supported"},
        {"gopher://x:70", "not supported"},
        {"http://logs.example.com/x", "only to a loopback host"},
        {"http://10.0.0.1:80/x", "only to a loopback host"},
        {"http://[::2]:80/x", "only to a loopback host"},
        {"syslog://logs.example.com", "needs a port"},
        {"syslog://logs.example.com:0", "bad port"},
        {"syslog://logs.example.com:65536", "bad port"},
        {"syslog://logs.example.com:51a", "bad port"},
        {"syslog://logs.example.com:", "bad port"},
        {"syslog://logs.example.com:514/path", "no path"},
        {"syslog://logs.example.com:514?x=1", "no path"},
        {"syslog://user@logs.example.com:514", "no user"},
        {"syslog://:514", "no host"},
        {"syslog://999.1.1.1:514", "bad IPv4"},
        {"syslog://1.2.3:514", "bad IPv4"},
        {"syslog://-bad.example.com:514", "bad host name"},
        {"syslog://bad-.example.com:514", "bad host name"},
        {"syslog://a..b:514", "bad host name"},
        {"syslog://ho$t:514", "bad host name"},
        {"syslog+tls://[::1:6514", "unclosed"},
        {"syslog+tls://[::g]:6514", "bad IPv6"},
        {"syslog+tls://[::1]x:6514", "junk after"},
        {"https://logs.example.com/a b", "space"},
        {"https://logs.example.com/a\r\nX-Injected: 1", "control"},
        {"https://logs.example.com/\xc3\xa9", "non-ASCII"},
        {"https://logs.example.com/#frag", "fragment"},
        {"https://logs.example.com/<script>", "'<'"},
        {"https://us er@logs.example.com/", "space"},
        {"https://u\"@logs.example.com/", "'\"'"},
        {"https://@logs.example.com/", "user:password"},
    };
    struct drain_url u;
    char err[256];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        cr_assert_eq(parse(bad[i].url, &u, err), -EINVAL, "accepted %s", bad[i].url);
        cr_assert(strstr(err, bad[i].why) != NULL, "%s: said \"%s\", want \"%s\"", bad[i].url, err,
                  bad[i].why);
    }
    cr_assert_eq(drain_url_parse(NULL, &u, err, sizeof(err)), -EINVAL);
}

Test(drain_url, refuses_too_long_urls_and_hosts, .timeout = 2)
{
    struct drain_url u;
    char err[256], *url = malloc(DRAIN_URL_MAX + 64), label[64];

    strcpy(url, "https://logs.example.com/");
    memset(url + strlen(url), 'a', DRAIN_URL_MAX);
    url[DRAIN_URL_MAX + 1] = '\0';
    cr_assert_eq(parse(url, &u, err), -EINVAL);
    cr_assert(strstr(err, "longer than") != NULL, "%s", err);
    url[DRAIN_URL_MAX] = '\0';
    cr_assert_eq(parse(url, &u, err), 0, "%s", err);
    /* A 64-byte label, and a host over 253 bytes. */
    memset(label, 'a', 64);
    label[64 - 1] = '\0';
    snprintf(url, DRAIN_URL_MAX, "syslog://%s:514", label);
    cr_assert_eq(parse(url, &u, err), 0, "63-byte label: %s", err);
    snprintf(url, DRAIN_URL_MAX, "syslog://%sb:514", label);
    cr_assert_eq(parse(url, &u, err), -EINVAL);
    snprintf(url, DRAIN_URL_MAX, "syslog://%s.%s.%s.%s.x:514", label, label, label, label);
    cr_assert_eq(parse(url, &u, err), -EINVAL);
    cr_assert(strstr(err, "host") != NULL, "%s", err);
    free(url);
}

/* ---- RFC 5424 and octet counting ---- */

Test(drain_fmt, formats_rfc5424_with_octet_counting, .timeout = 2)
{
    struct drain_bytes b = {0};
    const char *want = "<14>1 2026-11-24T10:00:00.123Z n1 shop web.1 - - GET / 200";
    char head[16];

    /* 2026-11-24T10:00:00.123Z */
    cr_assert_eq(drain_frame_append(&b, DRAIN_SEV_INFO, 1795514400123ull, "n1", "shop", "web.1",
                                    "GET / 200", 9),
                 0);
    snprintf(head, sizeof(head), "%zu ", strlen(want));
    cr_assert_eq(b.len, strlen(head) + strlen(want));
    cr_assert(memcmp(b.p, head, strlen(head)) == 0, "%.*s", (int)b.len, b.p);
    cr_assert(memcmp(b.p + strlen(head), want, strlen(want)) == 0, "%.*s", (int)b.len, b.p);
    drain_bytes_fini(&b);
}

Test(drain_fmt, severity_and_sanitized_header_fields, .timeout = 2)
{
    struct drain_bytes b = {0};
    char app[80];
    /* "é" is two bytes: the count is in octets, not characters. */
    const char *msg = "caf\xc3\xa9 \"quoted\" \t tab";

    memset(app, 'a', sizeof(app) - 1);
    app[sizeof(app) - 1] = '\0';
    cr_assert_eq(drain_frame_append(&b, DRAIN_SEV_NOTICE, 0, "", app, "we b\x01", msg, strlen(msg)),
                 0);
    b.p[b.len] = '\0'; /* room: the buffer has capacity */
    char *sp = strchr(b.p, ' ');
    cr_assert_not_null(sp);
    cr_assert_eq((size_t)atol(b.p), b.len - (size_t)(sp + 1 - b.p), "%s", b.p);
    cr_assert(strncmp(sp + 1, "<13>1 1970-01-01T00:00:00.000Z - ", 33) == 0, "%s", b.p);
    /* APP-NAME cut to 48, PROCID's space and control byte made '_'. */
    char want[128];
    snprintf(want, sizeof(want), " %.48s we_b_ - - %s", app, msg);
    cr_assert(strstr(b.p, want) != NULL, "%s", b.p);
    cr_assert_eq(drain_frame_append(&b, DRAIN_SEV_ERR, 0, "h", "a", "p", "", 0), 0);
    cr_assert(strstr(b.p, "<11>1 ") != NULL || memmem(b.p, b.len, "<11>1 ", 6) != NULL);
    drain_bytes_fini(&b);
}

/* ---- the buffer and its drop accounting ---- */

struct parsed {
    int n;
    char procid[64][32];
    char msg[64][128];
};

/* Split a batch's bytes back into messages, checking every count. */
static void
unframe(const struct drain_batch *bt, size_t from, struct parsed *p)
{
    size_t off = from == 0 ? 0 : bt->v[from - 1].end;

    p->n = 0;
    while (off < bt->bytes.len) {
        char *end;
        size_t len = strtoul(bt->bytes.p + off, &end, 10);
        const char *m = end + 1, *f = m;

        cr_assert_eq(*end, ' ');
        cr_assert_leq((size_t)(m - bt->bytes.p) + len, bt->bytes.len);
        /* fields: PRI+VER TS HOST APP PROCID MSGID SD MSG */
        for (int k = 0; k < 4; k++)
            f = memchr(f, ' ', len) + 1;
        const char *pe = memchr(f, ' ', len);
        snprintf(p->procid[p->n], 32, "%.*s", (int)(pe - f), f);
        f = pe + 5; /* " - - " */
        snprintf(p->msg[p->n], 128, "%.*s", (int)(m + len - f), f);
        p->n++;
        off = (size_t)(m - bt->bytes.p) + len;
    }
}

static void
push(struct drain_buf *b, int i)
{
    char t[32];

    snprintf(t, sizeof(t), "line %d", i);
    cr_assert_eq(drain_buf_push(b, 1000, DRAIN_SEV_INFO, "web.1", "n1", t, strlen(t)), 0);
}

Test(drain_buf, full_buffer_drops_oldest_and_one_marker_counts_them, .timeout = 2)
{
    struct drain_buf *b = drain_buf_new(4);
    struct drain_batch bt = {0};
    struct drain_stats s;
    struct parsed p;

    for (int i = 1; i <= 10; i++)
        push(b, i);
    drain_buf_stats(b, &s);
    cr_assert_eq(s.dropped, 6);
    cr_assert_eq(s.buffered, 4);
    cr_assert_eq(drain_buf_take(b, &bt, "ctl", "shop", 100, 1 << 20, 5000), 5);
    cr_assert_eq(strlen(bt.frame_id), 32);
    unframe(&bt, 0, &p);
    cr_assert_eq(p.n, 5);
    cr_assert_str_eq(p.procid[0], "drover");
    cr_assert_str_eq(p.msg[0], "drover: 6 lines dropped (drain buffer full)");
    for (int i = 1; i < 5; i++) {
        char want[32];
        snprintf(want, sizeof(want), "line %d", i + 6);
        cr_assert_str_eq(p.msg[i], want);
        cr_assert_str_eq(p.procid[i], "web.1");
    }
    drain_buf_ack(b, &bt, 5);
    drain_buf_stats(b, &s);
    cr_assert_eq(s.sent, 4);
    cr_assert_eq(s.buffered, 0);
    cr_assert_eq(drain_buf_take(b, &bt, "ctl", "shop", 100, 1 << 20, 5000), 0);
    drain_batch_fini(&bt);
    drain_buf_free(b);
}

Test(drain_buf, lines_in_flight_are_not_drops_and_retries_resend_the_same_bytes, .timeout = 2)
{
    struct drain_buf *b = drain_buf_new(3);
    struct drain_batch bt = {0};
    struct drain_stats s;
    struct parsed p;
    char id[33];

    push(b, 1);
    push(b, 2);
    cr_assert_eq(drain_buf_take(b, &bt, "ctl", "shop", 100, 1 << 20, 0), 2);
    snprintf(id, sizeof(id), "%s", bt.frame_id);
    /* While 1 and 2 are in flight, 3..5 push them out of the ring: not
     * dropped (the batch holds them), and the batch is unchanged. */
    push(b, 3);
    push(b, 4);
    push(b, 5);
    drain_buf_stats(b, &s);
    cr_assert_eq(s.dropped, 0);
    cr_assert_str_eq(bt.frame_id, id);
    /* The first message went out; the second is retried from the batch. */
    drain_buf_ack(b, &bt, 1);
    unframe(&bt, bt.acked, &p);
    cr_assert_eq(p.n, 1);
    cr_assert_str_eq(p.msg[0], "line 2");
    drain_buf_ack(b, &bt, 2);
    /* 6 pushes 3 out: that one was never taken, so it is a drop. */
    push(b, 6);
    drain_buf_stats(b, &s);
    cr_assert_eq(s.dropped, 1);
    cr_assert_eq(s.sent, 2);
    cr_assert_eq(drain_buf_take(b, &bt, "ctl", "shop", 100, 1 << 20, 0), 4);
    unframe(&bt, 0, &p);
    cr_assert_str_eq(p.msg[0], "drover: 1 lines dropped (drain buffer full)");
    cr_assert_str_eq(p.msg[1], "line 4");
    cr_assert_str_eq(p.msg[3], "line 6");
    cr_assert_str_neq(bt.frame_id, id);
    drain_batch_fini(&bt);
    drain_buf_free(b);
}

/* Random pushes, takes, partial acks and abandoned retries: every pushed
 * line is delivered once, in order, or counted by exactly one marker. */
Test(drain_buf, every_line_is_delivered_or_counted_exactly, .timeout = 10)
{
    for (unsigned seed = 1; seed <= 200; seed++) {
        size_t cap = 1 + seed % 17;
        struct drain_buf *b = drain_buf_new(cap);
        struct drain_batch bt = {0};
        struct drain_stats s;
        struct parsed p;
        int pushed = 0, last = 0, counted = 0, delivered = 0;
        unsigned r = seed;

        for (int step = 0; step < 400; step++) {
            r = r * 1103515245u + 12345u;
            unsigned op = (r >> 16) % 4;

            if (op <= 1) {
                push(b, ++pushed);
            } else if (bt.acked == bt.n) {
                drain_buf_take(b, &bt, "ctl", "shop", 1 + (r >> 8) % 7, 1 << 20, 0);
            } else {
                /* Deliver a prefix of what is left (maybe nothing). */
                size_t n = bt.acked + (r >> 4) % (bt.n - bt.acked + 1);

                if (n > bt.acked) {
                    struct drain_batch part = bt;

                    part.bytes.len = bt.v[n - 1].end;
                    unframe(&part, bt.acked, &p);
                    for (int k = 0; k < p.n; k++) {
                        unsigned long long m;
                        int i;

                        if (sscanf(p.msg[k], "drover: %llu lines dropped", &m) == 1) {
                            counted += (int)m;
                            last += (int)m; /* the dropped come first */
                        } else {
                            cr_assert_eq(sscanf(p.msg[k], "line %d", &i), 1);
                            cr_assert_eq(i, last + 1, "seed %u: line %d after %d", seed, i, last);
                            last = i;
                            delivered++;
                        }
                    }
                }
                drain_buf_ack(b, &bt, n);
            }
        }
        /* Drain everything left. */
        for (int guard = 0; guard < 1000; guard++) {
            if (bt.acked == bt.n && drain_buf_take(b, &bt, "ctl", "shop", 5, 1 << 20, 0) == 0)
                break;
            unframe(&bt, bt.acked, &p);
            for (int k = 0; k < p.n; k++) {
                unsigned long long m;
                int i;

                if (sscanf(p.msg[k], "drover: %llu lines dropped", &m) == 1) {
                    counted += (int)m;
                    last += (int)m;
                } else {
                    cr_assert_eq(sscanf(p.msg[k], "line %d", &i), 1);
                    cr_assert_eq(i, last + 1, "seed %u: line %d after %d", seed, i, last);
                    last = i;
                    delivered++;
                }
            }
            drain_buf_ack(b, &bt, bt.n);
        }
        drain_buf_stats(b, &s);
        cr_assert_eq(delivered + counted, pushed, "seed %u: %d + %d != %d", seed, delivered,
                     counted, pushed);
        cr_assert_eq(s.dropped, (uint64_t)counted, "seed %u", seed);
        cr_assert_eq(s.sent, (uint64_t)delivered, "seed %u", seed);
        cr_assert_eq(s.buffered, 0);
        drain_batch_fini(&bt);
        drain_buf_free(b);
    }
}

Test(drain_buf, a_batch_grows_a_chunk_at_a_time_with_one_frame_id, .timeout = 2)
{
    struct drain_buf *b = drain_buf_new(4);
    struct drain_batch bt = {0};
    struct parsed p;
    char id[33];

    for (int i = 1; i <= 3; i++)
        push(b, i);
    cr_assert_eq(drain_buf_take(b, &bt, "ctl", "shop", 2, 1 << 20, 0), 2);
    snprintf(id, sizeof(id), "%s", bt.frame_id);
    /* Meanwhile 4..7 arrive: 3 is pushed out before it was taken. */
    for (int i = 4; i <= 7; i++)
        push(b, i);
    cr_assert_eq(drain_buf_take(b, &bt, "ctl", "shop", 2, 1 << 20, 0), 4);
    cr_assert_str_eq(bt.frame_id, id);
    cr_assert_eq(drain_buf_take(b, &bt, "ctl", "shop", 10, 1 << 20, 0), 7);
    unframe(&bt, 0, &p);
    cr_assert_eq(p.n, 7);
    cr_assert_str_eq(p.msg[1], "line 2");
    cr_assert_str_eq(p.msg[2], "drover: 1 lines dropped (drain buffer full)");
    cr_assert_str_eq(p.msg[3], "line 4");
    cr_assert_str_eq(p.msg[6], "line 7");
    /* Once part of it went out, it no longer grows. */
    drain_buf_ack(b, &bt, 1);
    push(b, 8);
    cr_assert_eq(drain_buf_take(b, &bt, "ctl", "shop", 10, 1 << 20, 0), -EINVAL);
    drain_buf_ack(b, &bt, 7);
    cr_assert_eq(drain_buf_take(b, &bt, "ctl", "shop", 10, 1 << 20, 0), 1);
    cr_assert_str_neq(bt.frame_id, id);
    drain_batch_fini(&bt);
    drain_buf_free(b);
}

Test(drain_buf, a_spill_moves_in_order_and_drops_count_in_place, .timeout = 2)
{
    struct drain_buf *b = drain_buf_new(4), *spill = drain_buf_new(8);
    struct drain_batch bt = {0};
    struct drain_stats s;
    struct parsed p;

    for (int i = 1; i <= 3; i++)
        push(b, i);
    for (int i = 4; i <= 6; i++)
        push(spill, i);
    cr_assert(!drain_buf_full(spill));
    drain_buf_move(b, spill);
    cr_assert_eq(drain_buf_count(spill), 0);
    cr_assert_eq(drain_buf_count(b), 4);
    drain_buf_stats(b, &s);
    cr_assert_eq(s.dropped, 2);
    cr_assert_eq(drain_buf_take(b, &bt, "ctl", "shop", 10, 1 << 20, 0), 5);
    unframe(&bt, 0, &p);
    cr_assert_str_eq(p.msg[0], "drover: 2 lines dropped (drain buffer full)");
    for (int i = 1; i < 5; i++) {
        char want[32];
        snprintf(want, sizeof(want), "line %d", i + 2);
        cr_assert_str_eq(p.msg[i], want);
    }
    for (int i = 0; i < 8; i++)
        push(spill, i);
    cr_assert(drain_buf_full(spill));
    drain_batch_fini(&bt);
    drain_buf_free(b);
    drain_buf_free(spill);
}
