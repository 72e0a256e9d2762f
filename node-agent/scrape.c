/* SPDX-License-Identifier: MIT */
/*
 * scrape.c: the agent's own small HTTP/1.1 server, for GET /metrics.
 *
 * The controller's HTTP server (common/httpd.c) is libmicrohttpd, which on
 * Debian 12 brings GnuTLS and its chain (p11-kit, nettle, hogweed, gmp,
 * libtasn1, libidn2, libunistring, libffi): about 2.4 MiB resident in every
 * agent, for one plain-text page on loopback. This serves that page on the
 * agent's loop, with no library beyond libuv: a request is read whole (its
 * head within 8 KiB and 10 s, or the connection is closed; a body is not
 * read), answered at once with Content-Length and "Connection: close", and
 * the connection closed when the answer is written. At most 64 connections;
 * more are closed at accept. One timer per connection, for as long as it
 * is open.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agt.h"
#include "listen.h"

#define HEAD_MAX 8192
#define MAX_CONNS 64
#define READ_MS 10000

struct agt_http {
    uv_tcp_t srv;
    agt_http_fn *fn;
    void *arg;
    struct conn *conns;
    int nconns;
    bool stopping;
};

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wr;
    struct agt_http *s;
    struct conn *next, **prev;
    int open_handles;
    bool answered;
    char *out;
    size_t len;
    char head[HEAD_MAX + 1];
};

static void
conn_closed(uv_handle_t *h)
{
    struct conn *c = h->data;

    if (--c->open_handles == 0) {
        free(c->out);
        free(c);
    }
}

static void
conn_close(struct conn *c)
{
    if (uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    if (c->prev) {
        *c->prev = c->next;
        if (c->next)
            c->next->prev = c->prev;
        c->prev = NULL;
        c->s->nconns--;
    }
    uv_close((uv_handle_t *)&c->timer, conn_closed);
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void
on_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

static void
on_written(uv_write_t *w, int status)
{
    (void)status;
    conn_close(w->data);
}

static const char *
reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 431:
        return "Request Header Fields Too Large";
    default:
        return "Internal Server Error";
    }
}

static void
answer(struct conn *c, const struct agt_http_answer *a)
{
    uv_buf_t b;
    int n;

    c->answered = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    n = snprintf(NULL, 0,
                 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                 "Connection: close\r\n%s%s\r\n",
                 a->status, reason(a->status), a->type, a->len, a->extra ? a->extra : "",
                 a->extra ? "\r\n" : "");
    if (n < 0 || (c->out = malloc((size_t)n + 1 + a->len)) == NULL) {
        conn_close(c);
        return;
    }
    snprintf(c->out, (size_t)n + 1,
             "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
             "Connection: close\r\n%s%s\r\n",
             a->status, reason(a->status), a->type, a->len, a->extra ? a->extra : "",
             a->extra ? "\r\n" : "");
    if (a->len)
        memcpy(c->out + n, a->body, a->len);
    c->len = (size_t)n + a->len;
    b = uv_buf_init(c->out, (unsigned)c->len);
    c->wr.data = c;
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0)
        conn_close(c);
}

static void
plain(struct conn *c, int status, const char *text)
{
    struct agt_http_answer a = {status, "text/plain", (char *)text, strlen(text), NULL, NULL};

    answer(c, &a);
}

/* The head is whole: "METHOD SP TARGET SP HTTP/1.x". */
static void
serve(struct conn *c)
{
    char *method = c->head, *target, *version, *q;
    struct agt_http_answer a;

    c->head[strcspn(c->head, "\r\n")] = '\0';
    target = strchr(method, ' ');
    if (!target)
        return plain(c, 400, "bad request\n");
    *target++ = '\0';
    version = strchr(target, ' ');
    if (!version || strncmp(version + 1, "HTTP/1.", 7) != 0 || target[0] != '/')
        return plain(c, 400, "bad request\n");
    *version = '\0';
    if ((q = strchr(target, '?')) != NULL)
        *q = '\0';
    memset(&a, 0, sizeof a);
    c->s->fn(c->s->arg, method, target, &a);
    answer(c, &a);
    free(a.owned);
}

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    struct conn *c = h->data;

    (void)hint;
    *b = uv_buf_init(c->head + c->len, (unsigned)(HEAD_MAX - c->len));
}

static void
on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct conn *c = st->data;

    (void)b;
    if (n < 0) {
        conn_close(c);
        return;
    }
    if (n == 0 || c->answered)
        return;
    c->len += (size_t)n;
    c->head[c->len] = '\0';
    if (strstr(c->head, "\r\n\r\n") || strstr(c->head, "\n\n"))
        serve(c);
    else if (c->len >= HEAD_MAX)
        plain(c, 431, "request head too large\n");
}

static void
on_connection(uv_stream_t *srv, int status)
{
    struct agt_http *s = srv->data;
    struct conn *c;

    if (status < 0 || (c = calloc(1, sizeof *c)) == NULL)
        return;
    c->s = s;
    c->tcp.data = c->timer.data = c;
    uv_tcp_init(srv->loop, &c->tcp);
    uv_timer_init(srv->loop, &c->timer);
    c->open_handles = 2;
    if (uv_accept(srv, (uv_stream_t *)&c->tcp) < 0 || s->nconns >= MAX_CONNS) {
        uv_close((uv_handle_t *)&c->timer, conn_closed);
        uv_close((uv_handle_t *)&c->tcp, conn_closed);
        return;
    }
    c->next = s->conns;
    if (c->next)
        c->next->prev = &c->next;
    c->prev = &s->conns;
    s->conns = c;
    s->nconns++;
    uv_timer_start(&c->timer, on_timeout, READ_MS, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        conn_close(c);
}

static void
srv_closed(uv_handle_t *h)
{
    free(h->data);
}

struct agt_http *
agt_http_start(uv_loop_t *loop, const char *listen, agt_http_fn *fn, void *arg, int *err)
{
    struct sockaddr_storage ss;
    struct agt_http *s;
    bool v6;
    int rc;

    if ((rc = listen_parse(listen, &ss, &v6)) < 0) {
        *err = rc;
        return NULL;
    }
    if ((s = calloc(1, sizeof *s)) == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    s->fn = fn;
    s->arg = arg;
    s->srv.data = s;
    uv_tcp_init(loop, &s->srv);
    rc = uv_tcp_bind(&s->srv, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->srv, 128, on_connection);
    if (rc < 0) {
        *err = rc;
        uv_close((uv_handle_t *)&s->srv, srv_closed);
        return NULL;
    }
    return s;
}

void
agt_http_stop(struct agt_http *s)
{
    if (!s)
        return;
    while (s->conns)
        conn_close(s->conns);
    uv_close((uv_handle_t *)&s->srv, srv_closed);
}
