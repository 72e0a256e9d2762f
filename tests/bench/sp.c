/* SPDX-License-Identifier: MIT */
/*
 * sp.c: a REQ socket of the scalability protocols over TCP, without
 * libnanomsg, for the simulated agents (worker.c).
 *
 * The bytes are nanomsg's (common/sp.h): a request's backtrace is its one
 * 32-bit id, top bit set; a reply whose id is not the request's in flight
 * (a request sent again) is dropped, as nanomsg's REQ drops it.
 *
 * Why not libnanomsg: a nanomsg socket moves every message through the
 * library's worker thread (a queue, a lock and an eventfd each way), and
 * 10,000 simulated agents on the controller's own two cores spent that
 * twice per request; a real agent does it on its own machine. One
 * non-blocking TCP socket per agent, read and written by the worker's own
 * loop, is what a cluster's controller sees on the wire, at a fraction of
 * the simulator's CPU. The controller keeps its real nanomsg REP socket.
 *
 * Like nanomsg's REQ: the connection is made again when it drops (after
 * SP_RECONNECT_MS), and the request in flight, if any, is sent again on
 * the new one; a request sent while the connection is not up waits for it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "bench.h"
#include "sp.h"
#include "util.h"
#include "wire.h"

#define SP_RECONNECT_MS 100

static uint32_t
get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int
parse_ipv4(const char *s, size_t len, struct sockaddr_in *sa, bool want_port)
{
    char buf[64];
    const char *colon;
    unsigned long port = 0;
    char *end;

    if (len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    if (want_port) {
        if ((colon = strrchr(buf, ':')) == NULL)
            return -1;
        port = strtoul(colon + 1, &end, 10);
        if (*end != '\0' || colon[1] == '\0' || port == 0 || port > 65535)
            return -1;
        buf[colon - buf] = '\0';
        sa->sin_port = htons((uint16_t)port);
    }
    return inet_pton(AF_INET, buf, &sa->sin_addr) == 1 ? 0 : -1;
}

int
bench_sp_init(struct bench_sp *s, const char *url)
{
    const char *p, *semi;

    memset(s, 0, sizeof(*s));
    s->fd = -1;
    if (strncmp(url, "tcp://", 6) != 0)
        return -EINVAL;
    p = url + 6;
    if ((semi = strchr(p, ';')) != NULL) {
        if (parse_ipv4(p, (size_t)(semi - p), &s->src, false) < 0)
            return -EINVAL;
        s->have_src = true;
        p = semi + 1;
    }
    if (parse_ipv4(p, strlen(p), &s->dst, true) < 0)
        return -EINVAL;
    return 0;
}

/* Append len bytes to what waits to be written. */
static int
queue(struct bench_sp *s, const void *buf, size_t len)
{
    if (s->outoff > 0 && s->outoff == s->outlen)
        s->outoff = s->outlen = 0;
    if (s->outlen + len > s->outcap) {
        size_t cap = s->outcap != 0 ? s->outcap : 1024;
        uint8_t *p;

        if (s->outoff > 0) { /* room at the front first */
            memmove(s->out, s->out + s->outoff, s->outlen - s->outoff);
            s->outlen -= s->outoff;
            s->outoff = 0;
        }
        while (cap < s->outlen + len)
            cap *= 2;
        if (cap != s->outcap) {
            if ((p = realloc(s->out, cap)) == NULL)
                return -ENOMEM;
            s->out = p;
            s->outcap = cap;
        }
    }
    memcpy(s->out + s->outlen, buf, len);
    s->outlen += len;
    return 0;
}

/* The request in flight, framed, after what waits. */
static int
queue_request(struct bench_sp *s)
{
    uint8_t hdr[12];
    uint32_t id = s->id | 0x80000000u;

    sp_put_be64(hdr, (uint64_t)s->reqlen + 4);
    hdr[8] = (uint8_t)(id >> 24);
    hdr[9] = (uint8_t)(id >> 16);
    hdr[10] = (uint8_t)(id >> 8);
    hdr[11] = (uint8_t)id;
    if (queue(s, hdr, sizeof(hdr)) < 0 || queue(s, s->req, s->reqlen) < 0)
        return -ENOMEM;
    return 0;
}

static void
drop(struct bench_sp *s, uint64_t now_ms)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    s->state = BENCH_SP_DOWN;
    s->outoff = s->outlen = s->inlen = 0;
    s->retry_ms = now_ms + SP_RECONNECT_MS;
    s->drops++;
}

int
bench_sp_connect(struct bench_sp *s)
{
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    uint8_t hello[SP_HDR_LEN];

    if (fd < 0)
        return -errno;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (s->have_src && bind(fd, (const struct sockaddr *)&s->src, sizeof(s->src)) < 0) {
        int e = errno;

        close(fd);
        return -e;
    }
    if (connect(fd, (const struct sockaddr *)&s->dst, sizeof(s->dst)) < 0 && errno != EINPROGRESS) {
        int e = errno;

        close(fd);
        return -e;
    }
    s->fd = fd;
    s->state = BENCH_SP_CONNECTING;
    s->outoff = s->outlen = s->inlen = 0;
    sp_hello(hello, SP_PROTO_REQ);
    if (queue(s, hello, sizeof(hello)) < 0)
        return -ENOMEM;
    return 0;
}

static int flush(struct bench_sp *s);

int
bench_sp_send(struct bench_sp *s, const uint8_t *buf, size_t len)
{
    uint8_t *p;

    if (len > s->reqcap) {
        if ((p = realloc(s->req, len)) == NULL)
            return -ENOMEM;
        s->req = p;
        s->reqcap = len;
    }
    memcpy(s->req, buf, len);
    s->reqlen = len;
    s->id = (s->id + 1) & 0x7fffffffu;
    s->inflight = true;
    /* Not up yet: the handshake's end sends it. */
    if (s->state != BENCH_SP_UP)
        return 0;
    if (queue_request(s) < 0)
        return -ENOMEM;
    /* What the socket does not take now goes when it says it can
     * (EPOLLOUT, edge-triggered: bench_sp_next). */
    if (flush(s) < 0)
        drop(s, mono_ms());
    return 0;
}

static int
flush(struct bench_sp *s)
{
    while (s->outoff < s->outlen) {
        ssize_t k = send(s->fd, s->out + s->outoff, s->outlen - s->outoff, MSG_NOSIGNAL);

        if (k < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -errno;
        s->outoff += (size_t)k;
    }
    return 0;
}

/* Bytes in: the peer's header, then whole messages. 1 with a reply in
 * *msg (valid until the next call), 0 when none is complete, < 0 when the
 * connection is over. */
static int
parse(struct bench_sp *s, const uint8_t **msg, size_t *len)
{
    for (;;) {
        uint64_t size;

        if (s->state == BENCH_SP_CONNECTING) {
            if (s->inlen - s->inoff < SP_HDR_LEN)
                return 0;
            if (!sp_hello_is(s->in + s->inoff, SP_PROTO_REP))
                return -EPROTO;
            s->inoff += SP_HDR_LEN;
            s->state = BENCH_SP_UP;
            /* Sent before the connection was up, or lost with the last one. */
            if (s->inflight && queue_request(s) < 0)
                return -ENOMEM;
            continue;
        }
        if (s->inlen - s->inoff < 8)
            return 0;
        size = sp_get_be64(s->in + s->inoff);
        if (size < 4 || size > WIRE_MAX_SIZE + 4)
            return -EMSGSIZE;
        if (s->inlen - s->inoff < 8 + size)
            return 0;
        s->inoff += 8 + (size_t)size;
        /* Not the request in flight (one sent again, or none): dropped. */
        if (!s->inflight || get_be32(s->in + s->inoff - size) != (s->id | 0x80000000u))
            continue;
        s->inflight = false;
        *msg = s->in + s->inoff - size + 4;
        *len = (size_t)size - 4;
        return 1;
    }
}

int
bench_sp_next(struct bench_sp *s, uint64_t now_ms, const uint8_t **msg, size_t *len)
{
    int rc;

    if (s->fd < 0)
        return 0;
    if (s->state == BENCH_SP_CONNECTING && s->inlen == 0) {
        int err = 0;
        socklen_t sl = sizeof(err);

        if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &sl) == 0 && err != 0) {
            drop(s, now_ms);
            return 0;
        }
    }
    for (;;) {
        ssize_t k;

        if ((rc = parse(s, msg, len)) != 0)
            break;
        if ((rc = flush(s)) < 0)
            break;
        /* Room for what was parsed, and for the next message whole. */
        if (s->inoff > 0) {
            memmove(s->in, s->in + s->inoff, s->inlen - s->inoff);
            s->inlen -= s->inoff;
            s->inoff = 0;
        }
        if (s->incap - s->inlen < 65536) {
            size_t cap = s->incap != 0 ? s->incap * 2 : 65536;
            uint8_t *p;

            if (s->inlen >= 8 && 8 + sp_get_be64(s->in) <= WIRE_MAX_SIZE + 12) {
                while (cap < 8 + sp_get_be64(s->in) + 65536)
                    cap *= 2;
            }
            if ((p = realloc(s->in, cap)) == NULL) {
                rc = -ENOMEM;
                break;
            }
            s->in = p;
            s->incap = cap;
        }
        k = recv(s->fd, s->in + s->inlen, s->incap - s->inlen, 0);
        if (k == 0) {
            rc = -ECONNRESET;
            break;
        }
        if (k < 0) {
            rc = errno == EAGAIN || errno == EINTR ? 0 : -errno;
            if (rc == 0 && (rc = flush(s)) == 0)
                return 0;
            break;
        }
        s->inlen += (size_t)k;
    }
    if (rc < 0) {
        drop(s, now_ms);
        return 0;
    }
    return rc;
}

int
bench_sp_tick(struct bench_sp *s, uint64_t now_ms)
{
    int rc;

    if (s->state != BENCH_SP_DOWN || now_ms < s->retry_ms)
        return 0;
    if ((rc = bench_sp_connect(s)) < 0) {
        s->retry_ms = now_ms + SP_RECONNECT_MS;
        return rc;
    }
    return 1;
}

void
bench_sp_close(struct bench_sp *s)
{
    if (s->fd >= 0)
        close(s->fd);
    free(s->out);
    free(s->in);
    free(s->req);
    memset(s, 0, sizeof(*s));
    s->fd = -1;
}
