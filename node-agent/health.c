/* SPDX-License-Identifier: MIT */
/*
 * health.c: is a starting process serving yet?
 *
 *   tcp         a TCP connect to the advertised address and $PORT succeeds
 *   http:/PATH  GET PATH on that port answers 2xx or 3xx
 *   none        the process has stayed alive for 1 s
 *
 * Checks are non-blocking (uv_tcp_connect) and retried every 100 ms until
 * they pass; the caller bounds them with the boot timeout and stops them.
 * One connection at a time: the uv_tcp_t is re-initialised for each attempt
 * only after the previous one has closed. The struct frees itself once it is
 * stopped (or has passed) and its handles are closed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agt.h"
#include "log.h"

#define RETRY_MS 100
#define NONE_ALIVE_MS 1000

struct agt_health {
    uv_loop_t *loop;
    enum agt_health_kind kind;
    struct sockaddr_storage addr;
    char req[512]; /* the HTTP request */
    agt_health_cb cb;
    void *arg;
    bool done; /* stopped or passed: no callback any more */
    uv_timer_t timer;
    uv_tcp_t tcp;
    bool tcp_open;
    uv_connect_t creq;
    uv_write_t wreq;
    char rbuf[64];
    size_t rlen;
    int nopen; /* handles not yet closed */
};

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

static void
retry(struct agt_health *h)
{
    tcp_close(h);
    if (!h->done)
        uv_timer_start(&h->timer, on_timer, RETRY_MS, 0);
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

    if (h->done)
        return;
    if (nread < 0) {
        retry(h);
        return;
    }
    h->rlen += (size_t)nread;
    code = status_code(h->rbuf, h->rlen);
    if (code == 0 && h->rlen < sizeof h->rbuf - 1)
        return;
    uv_read_stop(s);
    if (code >= 200 && code < 400)
        pass(h);
    else
        retry(h);
}

static void
on_write(uv_write_t *w, int status)
{
    struct agt_health *h = w->data;

    if (h->done)
        return;
    if (status < 0)
        retry(h);
}

static void
on_connect(uv_connect_t *c, int status)
{
    struct agt_health *h = c->data;
    uv_buf_t b;

    if (h->done)
        return;
    if (status < 0) {
        retry(h);
        return;
    }
    if (h->kind == AGT_HEALTH_TCP) {
        pass(h);
        return;
    }
    h->rlen = 0;
    b = uv_buf_init(h->req, (unsigned)strlen(h->req));
    if (uv_write(&h->wreq, (uv_stream_t *)&h->tcp, &b, 1, on_write) < 0 ||
        uv_read_start((uv_stream_t *)&h->tcp, on_alloc, on_read) < 0)
        retry(h);
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
        retry(h);
}

struct agt_health *
agt_health_start(uv_loop_t *loop, const struct agt_spec *spec, const char *addr, agt_health_cb cb,
                 void *arg)
{
    struct agt_health *h = calloc(1, sizeof *h);

    if (!h)
        return NULL;
    h->loop = loop;
    h->kind = spec->health;
    h->cb = cb;
    h->arg = arg;
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
        uv_timer_start(&h->timer, on_timer, NONE_ALIVE_MS, 0);
    else
        attempt(h);
    return h;
}

void
agt_health_stop(struct agt_health *h)
{
    if (!h->done)
        finish(h);
}
