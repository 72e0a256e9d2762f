/* SPDX-License-Identifier: MIT */
/*
 * sprep.c: the REP side of nanomsg's protocol over TCP, on the libuv loop.
 *
 * The bytes are nanomsg's (common/sp.h), so every peer keeps its nanomsg
 * REQ socket. A peer that is not a REQ socket is disconnected, and so is
 * one that sends a message larger than WIRE_MAX_SIZE (as NN_RCVMAXSIZE
 * does); a message without a backtrace (at most SP_MAX_HOPS words) is
 * dropped alone.
 *
 * Why not nanomsg here (issue 15): a raw REP socket moves every message
 * through nanomsg's worker thread, a queue, a lock shared with the loop and
 * an eventfd each way. Measured at 10,000 simulated agents (perf, the
 * controller during a placement): the worker thread 16 % of the
 * controller's time, the loop's sends 14.5 % and receives 6.3 %, a good part
 * of it waiting on that lock (futex) and toggling epoll registrations. Here
 * the loop reads and writes each connection itself: one read for what
 * arrived, one write per reply.
 *
 * What the front ends relied on stays: requests are queued as read and
 * handed on from an idle handle, a batch at a time with the same budget as
 * nnuv.c's nanomsg path (NNUV_BATCH, NNUV_TURN, NNUV_TURN_NS), so timers
 * and the other sockets get their turn under a flood; a REQ peer has one
 * request outstanding, so a newer request on a connection replaces the one
 * still queued from it (shed, counted); sprep_backlog_ms is how long the
 * queue has not been empty. A reply to a connection that closed is dropped
 * (the peer's REQ sends again), and so is one to a peer that stopped reading
 * with more than SPREP_OUT_MAX unread (as nanomsg drops it when its send
 * buffer is full), instead of growing without bound.
 */
#include "sprep.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "log.h"
#include "nnuv.h"
#include "sp.h"
#include "wire.h"

#define SPREP_BACKLOG 4096       /* listen(2) */
#define SPREP_READ 65536         /* the shared read buffer */
#define SPREP_OUT_MAX (4u << 20) /* unread replies a peer may have */
#define SPREP_PART_KEEP 16384    /* a partial-frame buffer kept between frames */
#define SPREP_ACCEPT_LOG_MS 1000 /* at most one accept_failed line a second */
#define SPREP_HELLO_MS 1000      /* a peer has this long to say what it is */
/* An agent's watch is held for minutes with nothing on its connection
 * (controller/ctl.h, CTL_WATCH_HOLD_MAX_MS): a TCP keepalive after this many
 * idle seconds keeps the flow in a NAT or load balancer that forgets idle
 * ones after a few minutes (Azure's default is 4), and tells a peer that
 * vanished from one that is quiet. The kernel sends it; the loop never
 * wakes for it. */
#define SPREP_KEEPALIVE_S 30

TAILQ_HEAD(sprep_q, nnuv_msg);

struct sprep_conn {
    uv_tcp_t tcp;
    struct sprep *srv; /* NULL once the server closed */
    unsigned refs;     /* the handle until closed, each request out there, each write */
    bool dead;         /* closing or closed: replies are dropped */
    uint8_t peer[SP_HDR_LEN];
    size_t peerlen; /* bytes of the peer's header read */
    uint64_t since; /* uv_now when it was taken */
    bool suspect;   /* no header by a sweep past SPREP_HELLO_MS: closed at the next */
    uint8_t *part;  /* a frame not yet whole */
    size_t partlen, partcap;
    struct nnuv_msg *queued; /* its request waiting in the queue, if any */
    LIST_ENTRY(sprep_conn) link;
};

struct sprep {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_idle_t drain;
    uv_timer_t sweep; /* connections that never said what they are */
    struct nnuv *owner;
    sprep_cb cb;
    void *arg;
    struct sprep_q queue;
    LIST_HEAD(, sprep_conn) conns;
    unsigned handles; /* drain, sweep, listener: the struct goes with the last */
    bool started, closing;
    uint64_t full_since; /* uv_hrtime when the queue last became non-empty; 0: empty */
    uint64_t shed;
    uint64_t accept_log;
    uint8_t rbuf[SPREP_READ];
};

struct sprep_write {
    uv_write_t req;
    struct sprep_conn *c;
    uint8_t data[];
};

/* The IPv4 address of interface name, as nanomsg resolves a bind to one. */
static int
iface_addr(const char *name, struct in_addr *out)
{
    struct ifaddrs *all, *i;
    int rc = -ENODEV;

    if (getifaddrs(&all) < 0)
        return -errno;
    for (i = all; i != NULL; i = i->ifa_next) {
        if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET ||
            strcmp(i->ifa_name, name) != 0)
            continue;
        *out = ((const struct sockaddr_in *)i->ifa_addr)->sin_addr;
        rc = 0;
        break;
    }
    freeifaddrs(all);
    return rc;
}

bool
sprep_url(const char *url, struct sockaddr_in *sa)
{
    char host[IF_NAMESIZE + 16];
    const char *h, *colon;
    unsigned long port;
    char *end;
    size_t hlen;

    if (strncmp(url, "tcp://", 6) != 0)
        return false;
    h = url + 6;
    if ((colon = strrchr(h, ':')) == NULL || strchr(h, ';') != NULL)
        return false;
    hlen = (size_t)(colon - h);
    if (hlen == 0 || hlen >= sizeof(host))
        return false;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    errno = 0;
    port = strtoul(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno != 0 || port == 0 || port > 65535)
        return false;
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (strcmp(host, "*") == 0) {
        sa->sin_addr.s_addr = htonl(INADDR_ANY);
        return true;
    }
    if (inet_pton(AF_INET, host, &sa->sin_addr) == 1)
        return true;
    return iface_addr(host, &sa->sin_addr) == 0;
}

/* ---- connections ---- */

static void
conn_unref(struct sprep_conn *c)
{
    if (--c->refs > 0)
        return;
    free(c->part);
    free(c);
}

static void
on_conn_closed(uv_handle_t *h)
{
    conn_unref(h->data);
}

static void
queue_remove(struct sprep *s, struct nnuv_msg *m)
{
    TAILQ_REMOVE(&s->queue, m, qlink);
    if (TAILQ_EMPTY(&s->queue))
        s->full_since = 0;
}

/* Close c: its queued request goes (nobody can read the answer); requests
 * already handed on keep it until they are answered, and their answers are
 * dropped. */
static void
conn_close(struct sprep_conn *c)
{
    if (c->dead)
        return;
    c->dead = true;
    if (c->queued != NULL && c->srv != NULL) {
        struct nnuv_msg *m = c->queued;

        queue_remove(c->srv, m);
        nnuv_msg_free(m); /* clears c->queued */
    }
    if (c->srv != NULL)
        LIST_REMOVE(c, link);
    c->srv = NULL;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void
on_written(uv_write_t *req, int status)
{
    struct sprep_write *w = (struct sprep_write *)req;
    struct sprep_conn *c = w->c;

    if (status < 0 && status != UV_ECANCELED)
        conn_close(c);
    free(w);
    conn_unref(c);
}

/*
 * Bytes to c: written at once when the socket takes them (the common case:
 * no copy, no write request, no callback, and none of the epoll_ctl libuv
 * makes after each queued write), else what is left is copied and queued
 * behind what waits. 0, or a negative errno (c is then closed).
 */
static int
conn_write(struct sprep_conn *c, const void *a, size_t alen, const void *b, size_t blen)
{
    uv_buf_t bufs[2] = {uv_buf_init((char *)a, (unsigned)alen),
                        uv_buf_init((char *)b, (unsigned)blen)};
    struct sprep_write *w;
    size_t done = 0, left;
    uv_buf_t buf;
    int rc;

    rc = uv_try_write((uv_stream_t *)&c->tcp, bufs, blen > 0 ? 2 : 1);
    if (rc >= 0)
        done = (size_t)rc;
    else if (rc != UV_EAGAIN && rc != UV_ENOSYS)
        goto fail;
    if ((left = alen + blen - done) == 0)
        return 0;
    if ((w = malloc(sizeof(*w) + left)) == NULL) {
        if (done > 0) /* half a message went out: nothing may follow it */
            conn_close(c);
        return -ENOMEM;
    }
    if (done < alen) {
        memcpy(w->data, (const uint8_t *)a + done, alen - done);
        if (blen > 0)
            memcpy(w->data + alen - done, b, blen);
    } else {
        memcpy(w->data, (const uint8_t *)b + (done - alen), left);
    }
    w->c = c;
    buf = uv_buf_init((char *)w->data, (unsigned)left);
    c->refs++;
    if ((rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_written)) == 0)
        return 0;
    free(w);
    conn_unref(c);
fail:
    conn_close(c);
    return rc;
}

static void on_drain(uv_idle_t *h);

/* A whole request from c: queued, replacing c's older one still waiting. */
static void
enqueue(struct sprep_conn *c, const uint8_t *body, size_t len)
{
    struct sprep *s = c->srv;
    struct nnuv_msg *m;
    size_t bt = 0;

    /* The backtrace: words up to the one with its top bit set. */
    for (;;) {
        if (bt + 4 > len || bt / 4 >= SP_MAX_HOPS)
            return; /* malformed: dropped, as nanomsg drops it */
        bt += 4;
        if (body[bt - 4] & 0x80)
            break;
    }
    if ((m = calloc(1, sizeof(*m))) == NULL || (m->body = malloc(len - bt + 1)) == NULL) {
        free(m);
        return; /* the peer sends it again */
    }
    memcpy(m->body, body + bt, len - bt);
    m->len = len - bt;
    memcpy(m->bt, body, bt);
    m->btlen = (uint8_t)bt;
    m->sock = s->owner;
    m->nn = -1;
    m->conn = c;
    c->refs++;
    if (TAILQ_EMPTY(&s->queue))
        s->full_since = uv_hrtime();
    TAILQ_INSERT_TAIL(&s->queue, m, qlink);
    if (c->queued != NULL) { /* its REQ socket gave up on the older one */
        struct nnuv_msg *old = c->queued;

        TAILQ_REMOVE(&s->queue, old, qlink); /* not the last: m is behind it */
        nnuv_msg_free(old);
        s->shed++;
    }
    c->queued = m;
    if (s->started && !uv_is_active((uv_handle_t *)&s->drain))
        uv_idle_start(&s->drain, on_drain);
}

/* Parse what c sent, from p: the bytes used; c may be closed on return
 * (c->dead). */
static size_t
consume(struct sprep_conn *c, const uint8_t *p, size_t n)
{
    size_t used = 0;

    while (!c->dead && used < n) {
        uint64_t size;

        if (c->peerlen < SP_HDR_LEN) {
            size_t k = SP_HDR_LEN - c->peerlen < n - used ? SP_HDR_LEN - c->peerlen : n - used;

            memcpy(c->peer + c->peerlen, p + used, k);
            c->peerlen += k;
            used += k;
            if (c->peerlen == SP_HDR_LEN && !sp_hello_is(c->peer, SP_PROTO_REQ))
                conn_close(c); /* not a REQ socket */
            continue;
        }
        if (n - used < 8)
            break;
        size = sp_get_be64(p + used);
        if (size > WIRE_MAX_SIZE) {
            conn_close(c); /* as NN_RCVMAXSIZE */
            break;
        }
        if (n - used - 8 < size)
            break;
        enqueue(c, p + used + 8, (size_t)size);
        used += 8 + (size_t)size;
    }
    return used;
}

/* Keep p[0..n) for the next read; -1 when there is no memory (c closed). */
static int
keep(struct sprep_conn *c, const uint8_t *p, size_t n)
{
    size_t need = c->partlen + n;

    if (need > c->partcap) {
        size_t cap = c->partcap != 0 ? c->partcap : 4096;
        uint8_t *q;

        while (cap < need)
            cap *= 2;
        /* The frame's whole size when its size is at hand: one allocation
         * (kept bytes always start at a frame). */
        if (c->partlen >= 8 || (c->partlen == 0 && n >= 8)) {
            uint64_t whole = 8 + sp_get_be64(c->partlen >= 8 ? c->part : p);

            if (whole > cap && whole <= WIRE_MAX_SIZE + 8)
                cap = (size_t)whole;
        }
        if ((q = realloc(c->part, cap)) == NULL) {
            conn_close(c);
            return -1;
        }
        c->part = q;
        c->partcap = cap;
    }
    memmove(c->part + c->partlen, p, n);
    c->partlen = need;
    return 0;
}

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct sprep_conn *c = h->data;

    (void)hint;
    *buf = uv_buf_init((char *)c->srv->rbuf, sizeof(c->srv->rbuf));
}

static void
on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct sprep_conn *c = st->data;
    const uint8_t *p = (const uint8_t *)buf->base;
    size_t n = nread > 0 ? (size_t)nread : 0, used;

    if (nread < 0) {
        conn_close(c); /* EOF or an error */
        return;
    }
    if (c->dead || n == 0)
        return;
    if (c->partlen == 0) {
        used = consume(c, p, n);
        if (!c->dead && used < n)
            keep(c, p + used, n - used);
        return;
    }
    /* A frame began in an earlier read: on with it in c->part. */
    if (keep(c, p, n) < 0)
        return;
    used = consume(c, c->part, c->partlen);
    if (c->dead)
        return;
    memmove(c->part, c->part + used, c->partlen - used);
    c->partlen -= used;
    if (c->partlen == 0 && c->partcap > SPREP_PART_KEEP) {
        free(c->part);
        c->part = NULL;
        c->partcap = 0;
    }
}

static void
on_connection(uv_stream_t *l, int status)
{
    struct sprep *s = l->data;
    struct sprep_conn *c;
    uint8_t hello[SP_HDR_LEN];
    int rc;

    if (status < 0) { /* EMFILE and the like: libuv shed the connection */
        uint64_t now = uv_now(s->loop);

        if (now - s->accept_log >= SPREP_ACCEPT_LOG_MS || s->accept_log == 0) {
            log_warn("accept_failed", "err=%s hint=%s", log_q(uv_strerror(status)),
                     log_q(status == UV_EMFILE || status == UV_ENFILE
                               ? "no free file descriptor (RLIMIT_NOFILE)"
                               : "the connection was dropped"));
            s->accept_log = now;
        }
        return;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return; /* stays in the backlog until there is memory */
    if (uv_tcp_init(s->loop, &c->tcp) < 0) {
        free(c);
        return;
    }
    c->tcp.data = c;
    c->srv = s;
    c->refs = 1;
    c->since = uv_now(s->loop);
    LIST_INSERT_HEAD(&s->conns, c, link);
    if ((rc = uv_accept(l, (uv_stream_t *)&c->tcp)) < 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, SPREP_KEEPALIVE_S);
    sp_hello(hello, SP_PROTO_REP);
    if (conn_write(c, hello, sizeof(hello), NULL, 0) < 0)
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        conn_close(c);
}

/* A connection whose peer has not sent its header within SPREP_HELLO_MS is
 * closed, as nanomsg closes it: an idle connection would hold a descriptor
 * for nothing. Not at the first sweep that finds it late but at the next
 * (2-3 s in all): a loop turn that ran long may have left its header unread
 * in the socket, and the loop reads every socket between two sweeps. */
static void
on_sweep(uv_timer_t *t)
{
    struct sprep *s = t->data;
    struct sprep_conn *c, *next;
    uint64_t now = uv_now(s->loop);

    for (c = LIST_FIRST(&s->conns); c != NULL; c = next) {
        next = LIST_NEXT(c, link);
        if (c->peerlen == SP_HDR_LEN || now - c->since < SPREP_HELLO_MS)
            continue;
        if (c->suspect)
            conn_close(c);
        else
            c->suspect = true;
    }
}

/* ---- the queue ---- */

static void
on_drain(uv_idle_t *h)
{
    struct sprep *s = h->data;
    uint64_t t0 = uv_hrtime();
    unsigned turn = 0, k;
    struct nnuv_msg *m;

    /* As nnuv.c's nanomsg path: up to NNUV_TURN batches of NNUV_BATCH, and
     * no new batch after NNUV_TURN_NS; the callback may close s. */
    while (s->started && !s->closing && !TAILQ_EMPTY(&s->queue) && turn++ < NNUV_TURN &&
           (turn == 1 || uv_hrtime() - t0 < NNUV_TURN_NS)) {
        for (k = 0;
             k < NNUV_BATCH && s->started && !s->closing && (m = TAILQ_FIRST(&s->queue)) != NULL;
             k++) {
            queue_remove(s, m);
            m->conn->queued = NULL;
            s->cb(m, s->arg);
        }
    }
    if (!s->closing && (TAILQ_EMPTY(&s->queue) || !s->started))
        uv_idle_stop(&s->drain);
}

/* ---- the server ---- */

struct sprep *
sprep_new(uv_loop_t *loop, const struct sockaddr_in *sa, struct nnuv *owner, sprep_cb cb, void *arg,
          int *err)
{
    struct sprep *s = calloc(1, sizeof(*s));
    int rc;

    if (s == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    s->loop = loop;
    s->owner = owner;
    s->cb = cb;
    s->arg = arg;
    TAILQ_INIT(&s->queue);
    LIST_INIT(&s->conns);
    uv_idle_init(loop, &s->drain);
    s->drain.data = s;
    uv_timer_init(loop, &s->sweep);
    s->sweep.data = s;
    s->handles = 2;
    uv_timer_start(&s->sweep, on_sweep, SPREP_HELLO_MS, SPREP_HELLO_MS);
    uv_unref((uv_handle_t *)&s->sweep); /* it alone keeps no loop running */
    if ((rc = uv_tcp_init(loop, &s->listener)) < 0) {
        sprep_close(s);
        *err = rc;
        return NULL;
    }
    s->listener.data = s;
    s->handles++;
    if ((rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)sa, 0)) < 0 ||
        (rc = uv_listen((uv_stream_t *)&s->listener, SPREP_BACKLOG, on_connection)) < 0) {
        sprep_close(s);
        *err = rc;
        return NULL;
    }
    *err = 0;
    return s;
}

void
sprep_start(struct sprep *s)
{
    s->started = true;
    if (!TAILQ_EMPTY(&s->queue))
        uv_idle_start(&s->drain, on_drain);
}

void
sprep_stop(struct sprep *s)
{
    s->started = false;
    uv_idle_stop(&s->drain);
}

uint64_t
sprep_backlog_ms(const struct sprep *s)
{
    return s->full_since == 0 ? 0 : (uv_hrtime() - s->full_since) / 1000000;
}

uint64_t
sprep_shed(const struct sprep *s)
{
    return s->shed;
}

int
sprep_reply(struct nnuv_msg *msg, const void *buf, size_t len)
{
    struct sprep_conn *c = msg->conn;
    uint8_t head[8 + 4 * SP_MAX_HOPS];
    int rc = 0;

    /* Gone, or not reading what it was sent: dropped (its REQ socket
     * sends the request again). */
    if (!c->dead && uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) <= SPREP_OUT_MAX) {
        sp_put_be64(head, (uint64_t)msg->btlen + len);
        memcpy(head + 8, msg->bt, msg->btlen);
        rc = conn_write(c, head, 8 + (size_t)msg->btlen, buf, len);
        if (rc != -ENOMEM)
            rc = 0; /* a connection that failed is closed: as gone */
    }
    nnuv_msg_free(msg);
    return rc;
}

const char *
sprep_msg_peer(const struct nnuv_msg *msg, char *buf, size_t bufsz)
{
    struct sockaddr_in sa;
    int len = sizeof(sa);
    char ip[INET_ADDRSTRLEN];

    buf[0] = '\0';
    if (!msg->conn->dead &&
        uv_tcp_getpeername(&msg->conn->tcp, (struct sockaddr *)&sa, &len) == 0 &&
        sa.sin_family == AF_INET && inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof(ip)) != NULL)
        snprintf(buf, bufsz, "%s:%u", ip, (unsigned)ntohs(sa.sin_port));
    return buf;
}

void
sprep_msg_release(struct nnuv_msg *msg)
{
    struct sprep_conn *c = msg->conn;

    if (c->queued == msg) /* freed while queued (sprep_close, a newer one) */
        c->queued = NULL;
    free(msg->body);
    msg->body = NULL;
    msg->conn = NULL;
    conn_unref(c);
}

static void
on_server_closed(uv_handle_t *h)
{
    struct sprep *s = h->data;

    if (--s->handles == 0)
        free(s);
}

void
sprep_close(struct sprep *s)
{
    struct sprep_conn *c;
    struct nnuv_msg *m;

    if (s == NULL || s->closing)
        return;
    s->closing = true;
    s->started = false;
    while ((m = TAILQ_FIRST(&s->queue)) != NULL) {
        queue_remove(s, m);
        nnuv_msg_free(m);
    }
    while ((c = LIST_FIRST(&s->conns)) != NULL)
        conn_close(c);
    uv_idle_stop(&s->drain);
    uv_close((uv_handle_t *)&s->drain, on_server_closed);
    uv_close((uv_handle_t *)&s->sweep, on_server_closed);
    if (s->handles > 2)
        uv_close((uv_handle_t *)&s->listener, on_server_closed);
}
