/* SPDX-License-Identifier: MIT */
/*
 * health.c: is a starting process serving yet?
 *
 *   tcp         a TCP connect to the advertised address and $PORT succeeds
 *   http:/PATH  GET PATH on that port answers 2xx or 3xx
 *   none        the process is alive (its exit ends the check: supervise.c)
 *
 * A check passes once it has held for the spec's min_healthy_ms without a
 * break (0: at the first success). A process that answers once while it is
 * still warming up, or that accepts and then falls over, is not up yet: so
 * after the first success the check goes on every 100 ms, and a failure
 * starts the window again at the next success. For none the window is just
 * min_healthy_ms of life. Checks are non-blocking (uv_tcp_connect) and
 * retried every 100 ms; the caller bounds the whole thing with the boot
 * timeout and stops it.
 *
 * Listening, seen without a connect: a connect per instance every 100 ms
 * is 10,000 handshakes a second for 1,000 starting instances (and as many
 * accepts the apps must answer). So TCP and HTTP checks first wait for
 * their port in the kernel's list of listening TCP sockets: one sock_diag
 * netlink dump (NETLINK_SOCK_DIAG, inet_diag, LISTEN only, v4 and v6) per
 * tick of LISTEN_TICK_MS serves every waiting check at once. A port that
 * shows up gets one connect (or one GET) to confirm it answers on the
 * advertised address; through the min_healthy window a TCP check then only
 * watches the port stay in the list (gone: the window starts again), and
 * HTTP checks go on with a GET every 100 ms as before. Where the dump is
 * refused, checks connect every 100 ms as they did. The watch is one per
 * agent (struct agt_health_watch, owned by it and handed to every check):
 * the netlink socket, kept open, and the timer with the list of the checks
 * that wait, made when the first one waits and closed when none does, so
 * that an idle watch keeps no loop alive.
 *
 * One connection at a time: the uv_tcp_t is re-initialised for each attempt
 * only after the previous one has closed, so a callback of a closing attempt
 * (uv_is_closing) belongs to an attempt already counted. The struct frees
 * itself once it is stopped (or has passed) and its handles are closed.
 */
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agt.h"
#include "log.h"

#define RETRY_MS 100
#define LISTEN_TICK_MS 50

struct agt_health {
    uv_loop_t *loop;
    struct agt_health_watch *hw; /* borrowed: outlives every check */
    enum agt_health_kind kind;
    struct sockaddr_storage addr;
    char req[512]; /* the HTTP request */
    agt_health_cb cb;
    void *arg;
    uint64_t min_ms;     /* the window: min_healthy_ms */
    bool passing;        /* the last attempt succeeded ... */
    uint64_t pass_since; /* ... and so did every one since this loop time */
    bool done;           /* stopped or passed: no callback any more */
    char path[256];
    uint16_t port;
    uv_timer_t timer;
    uv_tcp_t tcp;
    bool tcp_open;
    uv_connect_t creq;
    uv_write_t wreq;
    char rbuf[64];
    size_t rlen;
    char why[96];                   /* the last failure, for the boot timeout's reason */
    bool answered;                  /* the HTTP check got a status back, not a 2xx or 3xx */
    int nopen;                      /* handles not yet closed */
    struct agt_health *prev, *next; /* in the listen watch, while listed */
    bool listed;
};

/* ---- the listen watch: one dump per tick for every waiting check ---- */

struct agt_health_watch {
    uv_loop_t *loop;
    struct dumper *dumper; /* NULL while no check waits */
    int diag_fd;           /* the netlink socket, kept; -1 before the first dump */
    uint32_t seq;          /* of the last dump request */
    bool diag_broken;      /* refused once (or off): connect every 100 ms instead */
};

/* While any check waits: the timer and the waiting checks. Freed in the
 * timer's close callback, which may come after the last check is gone. */
struct dumper {
    uv_timer_t timer;
    struct agt_health_watch *hw;
    struct agt_health *head;
    uint8_t ports[65536 / 8]; /* listening at the last dump */
    uint64_t dumps;           /* for the tests */
};

/* One dump of family's listening TCP sockets into ports. 0 or -errno. */
static int
dump_family(struct agt_health_watch *hw, int family, uint8_t *ports)
{
    struct {
        struct nlmsghdr nlh;
        struct inet_diag_req_v2 r;
    } req;
    uint32_t seq = ++hw->seq;
    char buf[32768];
    struct sockaddr_nl nl = {.nl_family = AF_NETLINK};

    memset(&req, 0, sizeof req);
    req.nlh.nlmsg_len = sizeof req;
    req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.nlh.nlmsg_seq = seq;
    req.r.sdiag_family = (uint8_t)family;
    req.r.sdiag_protocol = IPPROTO_TCP;
    req.r.idiag_states = 1u << TCP_LISTEN;
    if (sendto(hw->diag_fd, &req, sizeof req, 0, (struct sockaddr *)&nl, sizeof nl) < 0)
        return -errno;
    for (;;) {
        ssize_t n = recv(hw->diag_fd, buf, sizeof buf, 0);
        struct nlmsghdr *h;

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
            const struct inet_diag_msg *m;
            unsigned port;

            if (h->nlmsg_seq != seq)
                continue;
            if (h->nlmsg_type == NLMSG_DONE)
                return 0;
            if (h->nlmsg_type == NLMSG_ERROR)
                return -EPROTO;
            if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof *m))
                continue;
            m = NLMSG_DATA(h);
            port = ntohs(m->id.idiag_sport);
            ports[port / 8] |= (uint8_t)(1u << (port % 8));
        }
    }
}

static int
dump_listening(struct agt_health_watch *hw, uint8_t *ports)
{
    int rc;

    memset(ports, 0, 65536 / 8);
    if (hw->diag_fd < 0) {
        hw->diag_fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
        if (hw->diag_fd < 0)
            return -errno;
    }
    if ((rc = dump_family(hw, AF_INET, ports)) < 0)
        return rc;
    rc = dump_family(hw, AF_INET6, ports);
    return rc == -EAFNOSUPPORT ? 0 : rc; /* no IPv6: v4 says it all */
}

static bool
listening(const struct dumper *d, uint16_t port)
{
    return d->ports[port / 8] & (1u << (port % 8));
}

static void
unlist(struct agt_health *h)
{
    struct dumper *d = h->hw->dumper;

    if (!h->listed)
        return;
    if (h->prev)
        h->prev->next = h->next;
    else
        d->head = h->next;
    if (h->next)
        h->next->prev = h->prev;
    h->prev = h->next = NULL;
    h->listed = false;
    if (!d->head) { /* nobody waits: no timer, no loop kept alive */
        uv_close((uv_handle_t *)&d->timer, (uv_close_cb)free);
        h->hw->dumper = NULL;
    }
}

static void on_watch_tick(uv_timer_t *t);

/* Wait for the port in the dumps. false when there is no watch here. */
static bool
list(struct agt_health *h)
{
    struct agt_health_watch *hw = h->hw;

    if (hw->diag_broken)
        return false;
    if (!hw->dumper) {
        struct dumper *d = calloc(1, sizeof *d);

        if (!d || uv_timer_init(hw->loop, &d->timer) < 0) {
            free(d);
            return false;
        }
        d->hw = hw;
        d->timer.data = d;
        uv_timer_start(&d->timer, on_watch_tick, LISTEN_TICK_MS, LISTEN_TICK_MS);
        hw->dumper = d;
    }
    if (h->listed)
        return true;
    h->next = hw->dumper->head;
    if (hw->dumper->head)
        hw->dumper->head->prev = h;
    hw->dumper->head = h;
    h->listed = true;
    return true;
}

static void attempt(struct agt_health *h);

static void
maybe_free(struct agt_health *h)
{
    if (h->done && h->nopen == 0)
        free(h);
}

static void
on_handle_close(uv_handle_t *hd)
{
    struct agt_health *h = hd->data;

    if (hd == (uv_handle_t *)&h->tcp)
        h->tcp_open = false;
    h->nopen--;
    maybe_free(h);
}

static void
tcp_close(struct agt_health *h)
{
    if (h->tcp_open && !uv_is_closing((uv_handle_t *)&h->tcp))
        uv_close((uv_handle_t *)&h->tcp, on_handle_close);
}

static void
finish(struct agt_health *h)
{
    h->done = true;
    unlist(h);
    tcp_close(h);
    if (!uv_is_closing((uv_handle_t *)&h->timer))
        uv_close((uv_handle_t *)&h->timer, on_handle_close);
}

static void
pass(struct agt_health *h)
{
    agt_health_cb cb = h->cb;
    void *arg = h->arg;

    finish(h);
    cb(arg);
}

static void
on_timer(uv_timer_t *t)
{
    struct agt_health *h = t->data;

    if (h->done)
        return;
    if (h->kind == AGT_HEALTH_NONE)
        pass(h);
    else if (h->tcp_open) /* the last attempt is still closing */
        uv_timer_start(&h->timer, on_timer, RETRY_MS, 0);
    else
        attempt(h);
}

/* This attempt is over: the next one in ms. */
static void
again(struct agt_health *h, uint64_t ms)
{
    tcp_close(h);
    if (!h->done)
        uv_timer_start(&h->timer, on_timer, ms, 0);
}

/* An attempt failed (why: a few words, said by agt_health_why): the window
 * starts again at the next success. */
static void
retry(struct agt_health *h, const char *why)
{
    snprintf(h->why, sizeof h->why, "%s", why);
    h->passing = false;
    tcp_close(h);
    if (!h->done && !list(h)) /* wait for it to listen (again) */
        uv_timer_start(&h->timer, on_timer, RETRY_MS, 0);
}

/* An attempt succeeded: pass once successes have held for the window. The
 * last attempt of the window comes as soon as the window is over. */
static void
succeeded(struct agt_health *h)
{
    uint64_t now = uv_now(h->loop), held;

    if (!h->passing) {
        h->passing = true;
        h->pass_since = now;
    }
    held = now - h->pass_since;
    if (held >= h->min_ms)
        pass(h);
    else if (h->kind == AGT_HEALTH_TCP && (tcp_close(h), list(h)))
        ; /* through the window, the dumps watch it listen */
    else
        again(h, h->min_ms - held < RETRY_MS ? h->min_ms - held : RETRY_MS);
}

/* A failure that is not an HTTP status: "GET /p: connection refused" or
 * "port 5001: connection refused". */
static void
fail_text(struct agt_health *h, const char *what)
{
    char why[96];

    if (h->kind == AGT_HEALTH_HTTP)
        snprintf(why, sizeof why, "GET %.40s: %s", h->path, what);
    else
        snprintf(why, sizeof why, "port %u: %s", (unsigned)h->port, what);
    retry(h, why);
}

/* A callback of an attempt that has already been counted (closing). */
static bool
stale(struct agt_health *h)
{
    return h->done || uv_is_closing((uv_handle_t *)&h->tcp);
}

static void
on_alloc(uv_handle_t *hd, size_t hint, uv_buf_t *buf)
{
    struct agt_health *h = hd->data;

    buf->base = h->rbuf + h->rlen;
    buf->len = sizeof h->rbuf - 1 - h->rlen;
}

/* "HTTP/1.1 204 ..." → 204; 0 while incomplete; -1 when not HTTP. */
static int
status_code(const char *s, size_t n)
{
    int code = 0;

    if (n < 12)
        return 0;
    if (strncmp(s, "HTTP/1.", 7) != 0 || s[8] != ' ')
        return -1;
    for (int k = 9; k < 12; k++) {
        if (s[k] < '0' || s[k] > '9')
            return -1;
        code = code * 10 + (s[k] - '0');
    }
    return code;
}

static void
on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct agt_health *h = s->data;
    int code;

    if (stale(h))
        return;
    if (nread < 0) {
        fail_text(h, nread == UV_EOF ? "closed the connection without an answer"
                                     : uv_strerror((int)nread));
        return;
    }
    h->rlen += (size_t)nread;
    code = status_code(h->rbuf, h->rlen);
    if (code == 0 && h->rlen < sizeof h->rbuf - 1)
        return;
    uv_read_stop(s);
    if (code >= 200 && code < 400) {
        succeeded(h);
    } else if (code > 0) {
        char why[96];

        snprintf(why, sizeof why, "GET %.64s answered %d", h->path, code);
        h->answered = true;
        retry(h, why);
    } else {
        fail_text(h, "answered something that is not HTTP");
    }
}

static void
on_write(uv_write_t *w, int status)
{
    struct agt_health *h = w->data;

    if (stale(h))
        return;
    if (status < 0)
        fail_text(h, uv_strerror(status));
}

static void
on_connect(uv_connect_t *c, int status)
{
    struct agt_health *h = c->data;
    uv_buf_t b;

    if (stale(h))
        return;
    if (status < 0) {
        fail_text(h, uv_strerror(status));
        return;
    }
    if (h->kind == AGT_HEALTH_TCP) {
        succeeded(h);
        return;
    }
    h->rlen = 0;
    b = uv_buf_init(h->req, (unsigned)strlen(h->req));
    if (uv_write(&h->wreq, (uv_stream_t *)&h->tcp, &b, 1, on_write) < 0 ||
        uv_read_start((uv_stream_t *)&h->tcp, on_alloc, on_read) < 0)
        fail_text(h, "cannot send the request");
}

static void
attempt(struct agt_health *h)
{
    if (uv_tcp_init(h->loop, &h->tcp) < 0) {
        uv_timer_start(&h->timer, on_timer, RETRY_MS, 0);
        return;
    }
    h->tcp.data = h;
    h->tcp_open = true;
    h->nopen++;
    if (uv_tcp_connect(&h->creq, &h->tcp, (const struct sockaddr *)&h->addr, on_connect) < 0)
        fail_text(h, "cannot connect");
}

static void
on_watch_tick(uv_timer_t *t)
{
    struct dumper *d = t->data;
    struct agt_health_watch *hw = d->hw;
    struct agt_health *h, *next;
    uint64_t now = uv_now(hw->loop);
    int rc = dump_listening(hw, d->ports);

    d->dumps++;
    if (rc < 0) {
        /* Refused (a kernel without inet_diag): connect as before. */
        log_warn("listen_watch_unavailable", "err=%s", log_q(strerror(-rc)));
        hw->diag_broken = true;
    }
    /* A check may finish (and unlist itself, ending the dumper) inside the
     * loop: take next first, and stop once the dumper is gone. */
    for (h = d->head; h && hw->dumper == d; h = next) {
        next = h->next;
        if (hw->diag_broken) {
            unlist(h);
            attempt(h);
        } else if (!listening(d, h->port)) {
            if (h->passing) {
                h->passing = false; /* it stopped listening: the window restarts */
                snprintf(h->why, sizeof h->why, "port %u: no longer listening", (unsigned)h->port);
            } else
                snprintf(h->why, sizeof h->why, "port %u: nothing listening", (unsigned)h->port);
        } else if (h->tcp_open) {
            continue; /* the last attempt is still closing */
        } else if (!h->passing) {
            unlist(h); /* listening: one connect to confirm */
            attempt(h);
        } else if (now - h->pass_since >= h->min_ms) {
            unlist(h);
            pass(h);
        }
    }
}

struct agt_health_watch *
agt_health_watch_new(uv_loop_t *loop, bool dumps)
{
    struct agt_health_watch *hw = calloc(1, sizeof *hw);

    if (!hw)
        return NULL;
    hw->loop = loop;
    hw->diag_fd = -1;
    hw->diag_broken = !dumps;
    return hw;
}

void
agt_health_watch_free(struct agt_health_watch *hw)
{
    if (!hw)
        return;
    if (hw->diag_fd >= 0)
        close(hw->diag_fd);
    free(hw);
}

struct agt_health *
agt_health_start(struct agt_health_watch *hw, const struct agt_spec *spec, const char *addr,
                 agt_health_cb cb, void *arg)
{
    struct agt_health *h = calloc(1, sizeof *h);
    uv_loop_t *loop = hw->loop;

    if (!h)
        return NULL;
    h->loop = loop;
    h->hw = hw;
    h->kind = spec->health;
    h->cb = cb;
    h->arg = arg;
    h->min_ms = spec->min_healthy_ms;
    snprintf(h->path, sizeof h->path, "%s", spec->http_path);
    h->port = spec->port;
    h->creq.data = h;
    h->wreq.data = h;
    if (uv_ip4_addr(addr, spec->port, (struct sockaddr_in *)&h->addr) < 0 &&
        uv_ip6_addr(addr, spec->port, (struct sockaddr_in6 *)&h->addr) < 0) {
        free(h);
        return NULL;
    }
    snprintf(h->req, sizeof h->req,
             "GET %s HTTP/1.0\r\nHost: %s:%u\r\nUser-Agent: drover-agent\r\n\r\n", spec->http_path,
             addr, (unsigned)spec->port);
    uv_timer_init(loop, &h->timer);
    h->timer.data = h;
    h->nopen = 1;
    if (h->kind == AGT_HEALTH_NONE)
        uv_timer_start(&h->timer, on_timer, h->min_ms, 0); /* never cb from here */
    else if (!list(h))
        attempt(h);
    return h;
}

const char *
agt_health_why(const struct agt_health *h, bool *answered)
{
    *answered = h->answered;
    return h->why;
}

void
agt_health_stop(struct agt_health *h)
{
    if (!h->done)
        finish(h);
}
