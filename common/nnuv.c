/* SPDX-License-Identifier: MIT */
/*
 * nnuv.c: nanomsg sockets on a libuv loop.
 *
 * nanomsg exposes readiness through NN_RCVFD, an eventfd-like descriptor that
 * stays readable while a message can be received. We poll it with a
 * uv_poll_t and, on each wake-up, drain with NN_DONTWAIT until EAGAIN, so one
 * wake-up never leaves a message waiting for the next one.
 *
 * Raw REP sockets (AF_SP_RAW) hand us each request's routing header as
 * control data (NN_MSG-allocated); keeping it with the body lets a handler
 * reply later, from another callback, which cooked REP sockets cannot do.
 *
 * Dialling (nnuv_connect) never lets nanomsg abort the process: nanomsg
 * 1.1.5 does when a dial's bind() finds no free ephemeral port and it
 * retries (common/dialcheck.c). So nanomsg never retries a dial on its own
 * (NN_RECONNECT_IVL a day out); a timer here finds a dialled socket without
 * a connection and dials it again itself, only after dial_check() found a
 * descriptor and a local port, with exponential backoff and jitter while
 * that fails (event=dial_failed says why). A connection broken by the
 * peer's restart is dialled again within DIAL_TICK_MS.
 */
#include "nnuv.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>
#include <sodium.h>

#include "dialcheck.h"
#include "log.h"
#include "sprep.h"
#include "wire.h"

#define DIAL_TICK_MS 250       /* how often a dialled socket is looked at */
#define DIAL_BASE_MS 500       /* a dial has this long to connect, doubling */
#define DIAL_CAP_MS 10000      /* up to this, while dials keep failing */
#define NN_REDIAL_OFF 86400000 /* nanomsg's own reconnect: never, in effect */

struct nnuv {
    uv_poll_t poll; /* poll.data points back here */
    uv_loop_t *loop;
    int nn;
    int raw;
    int protocol;
    struct sprep *tcp; /* a raw REP bound to TCP: served by sprep.c */
    int polling;
    int closing;
    nnuv_recv_cb cb;
    void *arg;
    /* nnuv_connect: the one URL dialled, its endpoint, the redial timer */
    char *url;
    int ep;
    uv_timer_t dial;
    uint64_t dial_next; /* uv_now before which the dial is left alone */
    uint32_t dial_fails;
    int open;            /* handles still to close: poll (when polling), dial timer */
    uint64_t shed;       /* stale requests dropped (on_readable) */
    uint64_t full_since; /* uv_hrtime when the queue was last seen non-empty
                            after being empty; 0: it was drained empty */
};

static void on_readable(uv_poll_t *h, int status, int events);

struct nnuv *
nnuv_new(uv_loop_t *loop, int domain, int protocol, nnuv_recv_cb cb, void *arg, int *err)
{
    struct nnuv *s = NULL;
    int maxsz = (int)WIRE_MAX_SIZE, linger = 0;

    if ((s = calloc(1, sizeof(*s))) == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    s->loop = loop;
    s->raw = domain == AF_SP_RAW;
    s->protocol = protocol;
    s->cb = cb;
    s->arg = arg;
    if ((s->nn = nn_socket(domain, protocol)) < 0) {
        *err = -nn_errno();
        free(s);
        return NULL;
    }
    nn_setsockopt(s->nn, NN_SOL_SOCKET, NN_RCVMAXSIZE, &maxsz, sizeof(maxsz));
    nn_setsockopt(s->nn, NN_SOL_SOCKET, NN_LINGER, &linger, sizeof(linger));
    s->poll.data = s;
    *err = 0;
    return s;
}

static void
on_sprep(struct nnuv_msg *msg, void *arg)
{
    struct nnuv *s = arg;

    s->cb(s, msg, s->arg);
}

int
nnuv_bind(struct nnuv *s, const char *url)
{
    struct sockaddr_in sa;
    int rc;

    if (s->raw && s->protocol == NN_REP && s->tcp == NULL && s->cb != NULL && sprep_url(url, &sa)) {
        s->tcp = sprep_new(s->loop, &sa, s, on_sprep, s, &rc);
        return s->tcp != NULL ? 0 : rc;
    }
    return nn_bind(s->nn, url) < 0 ? -nn_errno() : 0;
}

/* How long a dial has before the next one, after n failures in a row:
 * DIAL_BASE_MS doubled n times, capped, then a random point in its upper
 * half, so that many agents refused at once do not come back in step. */
static uint64_t
dial_wait_ms(uint32_t n)
{
    uint64_t ms = DIAL_BASE_MS;

    while (n-- > 0 && ms < DIAL_CAP_MS)
        ms *= 2;
    if (ms > DIAL_CAP_MS)
        ms = DIAL_CAP_MS;
    return ms / 2 + randombytes_uniform((uint32_t)(ms / 2 + 1));
}

/* Drop the endpoint and dial again, if dial_check() says nanomsg can. */
static int
dial(struct nnuv *s)
{
    int rc;

    if (s->ep >= 0)
        nn_shutdown(s->nn, s->ep);
    s->ep = -1;
    s->dial_next = uv_now(s->loop) + dial_wait_ms(s->dial_fails);
    if ((rc = dial_check(s->url)) < 0) {
        log_warn("dial_failed", "url=%s err=%s retry_ms=%llu hint=%s", log_q(s->url),
                 log_q(strerror(-rc)), (unsigned long long)(s->dial_next - uv_now(s->loop)),
                 log_q(rc == -EMFILE || rc == -ENFILE ? "no free file descriptor (RLIMIT_NOFILE)"
                       : rc == -EADDRINUSE            ? "no free ephemeral port "
                                                        "(net.ipv4.ip_local_port_range, TIME_WAIT)"
                                                      : "the local address cannot be bound"));
        return rc;
    }
    if ((s->ep = nn_connect(s->nn, s->url)) < 0)
        return -nn_errno();
    return 0;
}

static void
on_dial_tick(uv_timer_t *t)
{
    struct nnuv *s = t->data;

    if (s->ep >= 0 && nn_get_statistic(s->nn, NN_STAT_CURRENT_CONNECTIONS) > 0) {
        s->dial_fails = 0;
        return;
    }
    if (uv_now(s->loop) < s->dial_next)
        return;
    s->dial_fails++;
    dial(s);
}

int
nnuv_connect(struct nnuv *s, const char *url)
{
    int ivl = NN_REDIAL_OFF, rc;

    if (s->url != NULL) /* one URL per socket */
        return -EISCONN;
    if ((rc = dial_check(url)) == -EINVAL)
        return rc;
    if (nn_setsockopt(s->nn, NN_SOL_SOCKET, NN_RECONNECT_IVL, &ivl, sizeof(ivl)) < 0)
        return -nn_errno();
    if ((s->url = strdup(url)) == NULL)
        return -ENOMEM;
    s->ep = -1;
    if ((rc = dial(s)) < 0 && rc != -EMFILE && rc != -ENFILE && rc != -EADDRINUSE &&
        rc != -EADDRNOTAVAIL) {
        free(s->url);
        s->url = NULL;
        return rc;
    }
    /* A dial that could not start now is tried again by the timer. */
    uv_timer_init(s->loop, &s->dial);
    s->dial.data = s;
    uv_timer_start(&s->dial, on_dial_tick, DIAL_TICK_MS, DIAL_TICK_MS);
    uv_unref((uv_handle_t *)&s->dial); /* it alone keeps no loop running */
    s->open++;
    return 0;
}

int
nnuv_redial(struct nnuv *s)
{
    if (s->url == NULL)
        return -ENOTCONN;
    s->dial_fails = 0;
    return dial(s);
}

int
nnuv_retarget(struct nnuv *s, const char *url)
{
    char *u;

    if (s->url == NULL)
        return -ENOTCONN;
    if (strcmp(s->url, url) != 0) {
        if (dial_check(url) == -EINVAL)
            return -EINVAL;
        if ((u = strdup(url)) == NULL)
            return -ENOMEM;
        free(s->url);
        s->url = u;
    }
    s->dial_fails = 0;
    return dial(s);
}

const char *
nnuv_url(const struct nnuv *s)
{
    return s->url != NULL ? s->url : "";
}

int
nnuv_sock(const struct nnuv *s)
{
    return s->nn;
}

void *
nnuv_data(const struct nnuv *s)
{
    return s->arg;
}

int
nnuv_start(struct nnuv *s)
{
    int fd;
    size_t sz = sizeof(fd);
    int rc;

    if (s->polling)
        return 0;
    if (s->cb == NULL)
        return -EINVAL;
    if (s->tcp != NULL) {
        sprep_start(s->tcp);
        return 0;
    }
    if (nn_getsockopt(s->nn, NN_SOL_SOCKET, NN_RCVFD, &fd, &sz) < 0)
        return -nn_errno();
    if ((rc = uv_poll_init(s->loop, &s->poll, fd)) < 0)
        return rc;
    s->poll.data = s;
    s->polling = 1;
    s->open++;
    if ((rc = uv_poll_start(&s->poll, UV_READABLE, on_readable)) < 0)
        return rc;
    return 0;
}

void
nnuv_stop(struct nnuv *s)
{
    if (s->tcp != NULL)
        sprep_stop(s->tcp);
    if (s->polling)
        uv_poll_stop(&s->poll);
}

/* Receive one message without blocking; 0, -EAGAIN, or another error. */
static int
recv_one(struct nnuv *s, struct nnuv_msg **out)
{
    struct nn_msghdr hdr;
    struct nn_iovec iov;
    void *body = NULL, *control = NULL;
    struct nnuv_msg *m;
    int n;

    memset(&hdr, 0, sizeof(hdr));
    iov.iov_base = &body;
    iov.iov_len = NN_MSG;
    hdr.msg_iov = &iov;
    hdr.msg_iovlen = 1;
    if (s->raw) {
        hdr.msg_control = &control;
        hdr.msg_controllen = NN_MSG;
    }
    if ((n = nn_recvmsg(s->nn, &hdr, NN_DONTWAIT)) < 0)
        return -nn_errno();
    if ((m = calloc(1, sizeof(*m))) == NULL) {
        nn_freemsg(body);
        if (control != NULL)
            nn_freemsg(control);
        return -ENOMEM;
    }
    m->sock = s;
    m->nn = s->nn;
    m->body = body;
    m->len = (size_t)n;
    m->control = control;
    *out = m;
    return 0;
}

/* The sender of a raw REP request: its routing header less the request id
 * (the last 4 bytes), which names the connection (the pipe) it came in on.
 * NULL when there is none. nanomsg writes the header first in the control
 * data: a cmsghdr, then a size_t length, then the header itself. */
static const uint8_t *
sender_of(const struct nnuv_msg *m, size_t *len)
{
    const struct nn_cmsghdr *c = m->control;
    const uint8_t *p;
    size_t sz;

    if (c == NULL || c->cmsg_level != PROTO_SP || c->cmsg_type != SP_HDR ||
        c->cmsg_len < NN_CMSG_LEN(sizeof(size_t)))
        return NULL;
    p = NN_CMSG_DATA(c);
    memcpy(&sz, p, sizeof(sz));
    if (sz <= 4 || sz > c->cmsg_len - NN_CMSG_LEN(sizeof(size_t)))
        return NULL;
    *len = sz - 4;
    return p + sizeof(size_t);
}

/* Mark in stale[] each request of the batch that a later one from the same
 * sender replaced: one pass from the newest, with the senders seen so far
 * in an open-addressing set (O(batch), where comparing every pair was
 * O(batch^2): 32,640 comparisons for a full batch of distinct agents). */
static void
mark_superseded(struct nnuv_msg **batch, size_t n, bool *stale)
{
    const uint8_t *key[2 * NNUV_BATCH];
    size_t klen[2 * NNUV_BATCH];
    size_t i, la, h;
    const uint8_t *a;

    memset(key, 0, sizeof(key));
    for (i = n; i-- > 0;) {
        stale[i] = false;
        if ((a = sender_of(batch[i], &la)) == NULL)
            continue;
        h = 2166136261u;
        for (size_t j = 0; j < la; j++)
            h = (h ^ a[j]) * 16777619u;
        for (h %= 2 * NNUV_BATCH; key[h] != NULL; h = (h + 1) % (2 * NNUV_BATCH)) {
            if (klen[h] == la && memcmp(key[h], a, la) == 0) {
                stale[i] = true;
                break;
            }
        }
        if (!stale[i]) {
            key[h] = a;
            klen[h] = la;
        }
    }
}

static void
on_readable(uv_poll_t *h, int status, int events)
{
    struct nnuv *s = h->data;
    struct nnuv_msg *batch[NNUV_BATCH];
    bool stale[NNUV_BATCH];
    size_t n = 0, i;
    unsigned turn = 0;
    uint64_t t0 = uv_hrtime();
    int rc = 0;

    /* Drain what is waiting, a batch at a time, up to NNUV_TURN batches and
     * no new one after NNUV_TURN_NS (the descriptor stays readable: the next
     * loop turn drains on, after the timers, the checks and the other
     * sockets had theirs: a flood on the agent endpoint leaves the API
     * answered); the callback may close s. A REQ
     * peer keeps one request outstanding: when it sent a newer one, the
     * older was cancelled and a reply to it would be thrown away, so on a
     * raw REP only each sender's newest request of the batch is handed on
     * and the rest are shed (counted in s->shed): under load the queue holds
     * stale re-sends, and answering them is pure waste. full_since records
     * how long the queue has not been empty (nnuv_backlog_ms). */
    while (!s->closing && rc != -EAGAIN && turn++ < NNUV_TURN &&
           (turn == 1 || uv_hrtime() - t0 < NNUV_TURN_NS)) {
        for (n = 0; n < NNUV_BATCH && (rc = recv_one(s, &batch[n])) != -EAGAIN;) {
            if (rc == -ENOMEM)
                continue; /* dropped; the peer will resend or time out */
            if (rc < 0)
                break;
            if (s->full_since == 0)
                s->full_since = uv_hrtime();
            n++;
        }
        if (rc == -EAGAIN)
            s->full_since = 0;
        if (s->raw)
            mark_superseded(batch, n, stale);
        for (i = 0; i < n; i++) {
            if (s->closing || (s->raw && stale[i])) {
                s->shed += !s->closing;
                nnuv_msg_free(batch[i]);
                continue;
            }
            s->cb(s, batch[i], s->arg);
        }
        if (rc < 0 && rc != -EAGAIN)
            break; /* EINTR or worse: the next wake-up drains the rest */
    }
}

uint64_t
nnuv_backlog_ms(const struct nnuv *s)
{
    if (s->tcp != NULL)
        return sprep_backlog_ms(s->tcp);
    return s->full_since == 0 ? 0 : (uv_hrtime() - s->full_since) / 1000000;
}

uint64_t
nnuv_shed(const struct nnuv *s)
{
    if (s->tcp != NULL)
        return sprep_shed(s->tcp);
    return s->shed;
}

int
nnuv_send(struct nnuv *s, const void *buf, size_t len)
{
    return nn_send(s->nn, buf, len, NN_DONTWAIT) < 0 ? -nn_errno() : 0;
}

int
nnuv_send2(struct nnuv *s, const void *a, size_t alen, const void *b, size_t blen)
{
    char *m;
    int rc = 0;

    if ((m = nn_allocmsg(alen + blen, 0)) == NULL)
        return -ENOMEM;
    memcpy(m, a, alen);
    memcpy(m + alen, b, blen);
    /* With NN_MSG, nanomsg takes ownership of m only on success. */
    if (nn_send(s->nn, &m, NN_MSG, NN_DONTWAIT) < 0) {
        rc = -nn_errno();
        nn_freemsg(m);
    }
    return rc;
}

int
nnuv_reply(struct nnuv_msg *msg, const void *buf, size_t len)
{
    struct nn_msghdr hdr;
    struct nn_iovec iov;
    int rc = 0;

    if (msg->conn != NULL)
        return sprep_reply(msg, buf, len);
    memset(&hdr, 0, sizeof(hdr));
    iov.iov_base = (void *)buf;
    iov.iov_len = len;
    hdr.msg_iov = &iov;
    hdr.msg_iovlen = 1;
    if (msg->control != NULL) {
        hdr.msg_control = &msg->control;
        hdr.msg_controllen = NN_MSG;
    }
    if (nn_sendmsg(msg->nn, &hdr, NN_DONTWAIT) < 0)
        rc = -nn_errno();
    else
        msg->control = NULL; /* nanomsg took the header */
    nnuv_msg_free(msg);
    return rc;
}

const char *
nnuv_msg_peer(const struct nnuv_msg *msg, char *buf, size_t bufsz)
{
    if (msg->conn != NULL)
        return sprep_msg_peer(msg, buf, bufsz);
    if (bufsz > 0)
        buf[0] = '\0'; /* nanomsg does not say */
    return buf;
}

void
nnuv_msg_free(struct nnuv_msg *msg)
{
    if (msg == NULL)
        return;
    if (msg->conn != NULL) {
        sprep_msg_release(msg);
        free(msg);
        return;
    }
    if (msg->body != NULL)
        nn_freemsg(msg->body);
    if (msg->control != NULL)
        nn_freemsg(msg->control);
    free(msg);
}

/* The descriptor polled belongs to nanomsg: close the nanomsg socket only
 * once libuv has let go of it, or epoll would watch a closed descriptor. */
static void
on_close(uv_handle_t *h)
{
    struct nnuv *s = h->data;

    if (--s->open > 0)
        return;
    nn_close(s->nn);
    free(s->url);
    free(s);
}

void
nnuv_close(struct nnuv *s)
{
    if (s == NULL || s->closing)
        return;
    s->closing = 1;
    sprep_close(s->tcp); /* its requests out there keep their connections */
    s->tcp = NULL;
    if (s->open == 0) {
        nn_close(s->nn);
        free(s->url);
        free(s);
        return;
    }
    if (s->polling) {
        uv_poll_stop(&s->poll);
        uv_close((uv_handle_t *)&s->poll, on_close);
    }
    if (s->url != NULL) {
        uv_timer_stop(&s->dial);
        uv_close((uv_handle_t *)&s->dial, on_close);
    }
}
