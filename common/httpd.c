/* SPDX-License-Identifier: MIT */
/*
 * httpd.c: libmicrohttpd on the libuv loop (httpd.h says what it offers).
 *
 * Shape: MHD_USE_EPOLL without MHD_USE_INTERNAL_POLLING_THREAD makes
 * libmicrohttpd a library of callbacks driven by MHD_run(); its epoll
 * descriptor is readable whenever one of its sockets is ready, so one
 * uv_poll_t on it and one uv_timer_t for MHD_get_timeout() drive it all.
 *
 * A request that waits (a reply that comes later from the loop, a stream
 * with nothing to send) suspends its connection; answering resumes it and
 * kicks MHD_run() through the zero timer. A suspended connection is not
 * polled, so a client that leaves is noticed when it is next written to.
 *
 * Ownership of a struct httpd_req: libmicrohttpd's (from the first callback
 * to the completion notice) and the handler's (from the handler call to
 * httpd_respond or httpd_stream_end). It is freed when both have let go.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "httpd.h"
#include "listen.h"
#include "log.h"
#include "util.h"

/* One TCP connection: its start, for the whole-request deadline. */
struct conn {
    LIST_ENTRY(conn) link;
    int fd;
    uint64_t since; /* start, or the end of its previous request */
    bool exempt;    /* a whole request is in: it waits on us, not the client */
    bool cut;
};

struct httpd_req {
    LIST_ENTRY(httpd_req) link;
    struct httpd *s; /* NULL once the server is gone */
    struct MHD_Connection *c;
    struct conn *conn;
    const char *method, *path; /* libmicrohttpd's, valid for the request */
    char *body;
    size_t len, cap;
    bool too_big;
    bool dispatched; /* handed to the handler */
    bool owned;      /* the handler holds it */
    bool gone;       /* libmicrohttpd is done with it */
    bool suspended;
    unsigned status;
    struct MHD_Response *resp; /* to queue when resumed */
    /* streams */
    bool streaming, stream_end;
    char *sbuf;
    size_t slen, scap;
    void (*closed)(void *);
    void *closed_arg;
};

struct httpd {
    uv_loop_t *loop;
    struct MHD_Daemon *d;
    uv_poll_t poll;
    uv_timer_t timer; /* MHD_get_timeout, and kicks */
    uv_timer_t reaper;
    httpd_handler *handler;
    void *arg;
    char name[16];
    bool stopping;
    int nclose;
    LIST_HEAD(, conn) conns;
    LIST_HEAD(, httpd_req) reqs;
};

static void run(struct httpd *s);
static void on_timer(uv_timer_t *t);

static void
kick(struct httpd *s)
{
    if (s != NULL && !s->stopping)
        uv_timer_start(&s->timer, on_timer, 0, 0);
}

static void
req_free(struct httpd_req *r)
{
    if (r->s != NULL)
        LIST_REMOVE(r, link);
    if (r->resp != NULL)
        MHD_destroy_response(r->resp);
    free(r->body);
    free(r->sbuf);
    free(r);
}

static void
resume(struct httpd_req *r)
{
    if (r->suspended && r->s != NULL) {
        r->suspended = false;
        MHD_resume_connection(r->c);
        kick(r->s);
    }
}

/* ---- answers ---- */

static struct MHD_Response *
make_response(const char *ctype, const char *body, size_t len, const char *const *extra)
{
    struct MHD_Response *resp;

    resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (resp == NULL)
        return NULL;
    if (ctype != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        char name[64];
        const char *colon = strchr(extra[i], ':');
        size_t n = colon != NULL ? (size_t)(colon - extra[i]) : 0;

        if (n == 0 || n >= sizeof(name))
            continue;
        memcpy(name, extra[i], n);
        name[n] = '\0';
        MHD_add_response_header(resp, name, colon + 1 + strspn(colon + 1, " "));
    }
    return resp;
}

void
httpd_respond(struct httpd_req *r, unsigned status, const char *ctype, const char *body, size_t len,
              const char *const *extra)
{
    r->owned = false;
    if (r->gone) {
        req_free(r);
        return;
    }
    if (r->resp != NULL)
        MHD_destroy_response(r->resp);
    r->resp = make_response(ctype, body, len, extra);
    r->status = status;
    resume(r);
}

static enum MHD_Result
queue(struct httpd_req *r)
{
    enum MHD_Result ok;

    if (r->resp == NULL) /* out of memory making it */
        r->resp = make_response("text/plain", "", 0, NULL);
    if (r->resp == NULL)
        return MHD_NO;
    ok = MHD_queue_response(r->c, r->status, r->resp);
    MHD_destroy_response(r->resp);
    r->resp = NULL;
    return ok;
}

static void
answer_now(struct httpd_req *r, unsigned status, const char *json_error)
{
    char body[160];
    int n = snprintf(body, sizeof(body), "{\"error\": \"%s\"}\n", json_error);

    r->resp = make_response("application/json", body, (size_t)n, NULL);
    r->status = status;
}

/* ---- streams ---- */

static ssize_t
stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct httpd_req *r = cls;
    size_t n;

    if (r->slen > 0) {
        n = r->slen < max ? r->slen : max;
        memcpy(buf, r->sbuf, n);
        memmove(r->sbuf, r->sbuf + n, r->slen - n);
        r->slen -= n;
        return (ssize_t)n;
    }
    if (r->stream_end || r->s == NULL || r->s->stopping)
        return MHD_CONTENT_READER_END_OF_STREAM;
    /* Nothing to send: sleep until httpd_stream_send (libmicrohttpd's way). */
    r->suspended = true;
    MHD_suspend_connection(r->c);
    return 0;
}

int
httpd_stream_start(struct httpd_req *r, const char *ctype, void (*closed)(void *), void *arg)
{
    if (r->gone)
        return -EPIPE;
    r->resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, r, NULL);
    if (r->resp == NULL)
        return -ENOMEM;
    MHD_add_response_header(r->resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(r->resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    r->status = 200;
    r->streaming = true;
    r->closed = closed;
    r->closed_arg = arg;
    resume(r);
    return 0;
}

int
httpd_stream_send(struct httpd_req *r, const char *data, size_t len)
{
    if (r->gone)
        return -EPIPE;
    if (r->slen + len > 1024 * 1024)
        return -ENOBUFS; /* a reader that does not read */
    if (r->slen + len > r->scap) {
        size_t cap = r->scap == 0 ? 4096 : r->scap;
        char *b;

        while (cap < r->slen + len)
            cap *= 2;
        if ((b = realloc(r->sbuf, cap)) == NULL)
            return -ENOMEM;
        r->sbuf = b;
        r->scap = cap;
    }
    memcpy(r->sbuf + r->slen, data, len);
    r->slen += len;
    resume(r);
    return 0;
}

void
httpd_stream_end(struct httpd_req *r)
{
    r->owned = false;
    r->closed = NULL;
    if (r->gone) {
        req_free(r);
        return;
    }
    r->stream_end = true;
    resume(r);
}

/* ---- libmicrohttpd's callbacks ---- */

static struct conn *
conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    return ci != NULL ? ci->socket_context : NULL;
}

static void
on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
              enum MHD_ConnectionNotificationCode toe)
{
    struct httpd *s = cls;
    struct conn *k = *socket_context;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);

        if ((k = calloc(1, sizeof(*k))) == NULL)
            return;
        k->fd = ci != NULL ? ci->connect_fd : -1;
        k->since = mono_ms();
        LIST_INSERT_HEAD(&s->conns, k, link);
        *socket_context = k;
    } else if (k != NULL) {
        LIST_REMOVE(k, link);
        free(k);
        *socket_context = NULL;
    }
}

static void
on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
    struct httpd_req *r = *con_cls;
    struct conn *k = conn_of(c);

    if (k != NULL) {
        k->since = mono_ms();
        k->exempt = false;
    }
    if (r == NULL)
        return;
    *con_cls = NULL;
    r->gone = true;
    if (r->owned && r->streaming && r->closed != NULL) {
        void (*closed)(void *) = r->closed;

        r->closed = NULL;
        closed(r->closed_arg);
    }
    if (!r->owned)
        req_free(r);
}

static bool
append(struct httpd_req *r, const char *data, size_t n)
{
    if (r->too_big || r->len + n > HTTPD_BODY_MAX) {
        r->too_big = true;
        return false;
    }
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap == 0 ? 1024 : r->cap;
        char *b;

        while (cap < r->len + n + 1)
            cap *= 2;
        if ((b = realloc(r->body, cap)) == NULL) {
            r->too_big = true;
            return false;
        }
        r->body = b;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
    return true;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
           const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    struct httpd *s = cls;
    struct httpd_req *r = *con_cls;

    if (r == NULL) {
        if ((r = calloc(1, sizeof(*r))) == NULL)
            return MHD_NO;
        r->s = s;
        r->c = c;
        r->conn = conn_of(c);
        r->method = method;
        r->path = url;
        LIST_INSERT_HEAD(&s->reqs, r, link);
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        append(r, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->resp != NULL)
        return queue(r);
    if (r->dispatched) {
        if (s->stopping) {
            answer_now(r, 503, "the server is stopping");
            return queue(r);
        }
        r->suspended = true; /* woken early: keep waiting */
        MHD_suspend_connection(c);
        return MHD_YES;
    }
    r->dispatched = true;
    if (r->conn != NULL)
        r->conn->exempt = true;
    if (r->body == NULL && append(r, "", 0) == false) {
        answer_now(r, 500, "out of memory");
        return queue(r);
    }
    if (r->too_big) {
        answer_now(r, 413, "the request body is larger than 65536 bytes");
        return queue(r);
    }
    if (s->stopping) {
        answer_now(r, 503, "the server is stopping");
        return queue(r);
    }
    r->owned = true;
    s->handler(s->arg, r);
    if (r->resp != NULL)
        return queue(r);
    r->suspended = true;
    MHD_suspend_connection(c);
    return MHD_YES;
}

/* ---- the loop ---- */

static void
run(struct httpd *s)
{
    MHD_UNSIGNED_LONG_LONG t = 0;

    if (s->d == NULL)
        return;
    MHD_run(s->d);
    if (s->stopping)
        return;
    if (MHD_get_timeout(s->d, &t) == MHD_YES)
        uv_timer_start(&s->timer, on_timer, t, 0);
    else
        uv_timer_stop(&s->timer);
}

static void
on_poll(uv_poll_t *p, int status, int events)
{
    run(p->data);
}

static void
on_timer(uv_timer_t *t)
{
    run(t->data);
}

/* Cut connections whose request has not arrived whole in time. */
static void
on_reap(uv_timer_t *t)
{
    struct httpd *s = t->data;
    uint64_t now = mono_ms();
    struct conn *k;
    bool any = false;

    LIST_FOREACH (k, &s->conns, link) {
        if (k->exempt || k->cut || k->fd < 0 || now - k->since < HTTPD_REQUEST_MS)
            continue;
        log_warn("http_slow_client", "server=%s fd=%d waited_ms=%llu", s->name, k->fd,
                 (unsigned long long)(now - k->since));
        shutdown(k->fd, SHUT_RDWR);
        k->cut = true;
        any = true;
    }
    if (any)
        run(s);
}

struct httpd *
httpd_start(uv_loop_t *loop, const struct httpd_opts *o, httpd_handler *h, void *arg, int *err)
{
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
    struct sockaddr_storage ss;
    const union MHD_DaemonInfo *di;
    struct httpd *s = NULL;
    bool v6 = false;
    int rc;

    if ((rc = listen_parse(o->listen, &ss, &v6)) < 0) {
        log_error("bind_failed", "server=%s listen=%s reason=%s", o->name, log_q(o->listen),
                  log_q("want HOST:PORT"));
        goto fail;
    }
    if ((s = calloc(1, sizeof(*s))) == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    s->loop = loop;
    s->handler = h;
    s->arg = arg;
    snprintf(s->name, sizeof(s->name), "%s", o->name);
    LIST_INIT(&s->conns);
    LIST_INIT(&s->reqs);
    if (v6)
        flags |= MHD_USE_IPv6;
    if (o->tls_cert != NULL)
        flags |= MHD_USE_TLS;
    s->d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTPD_CONN_MAX, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)HTTPD_CONN_MAX, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTPD_HEADER_MAX * 2,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        s, MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
        o->tls_cert != NULL ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, o->tls_cert,
        MHD_OPTION_HTTPS_MEM_KEY, o->tls_key, MHD_OPTION_END);
    if (s->d == NULL) {
        rc = -EADDRINUSE;
        log_error("bind_failed", "server=%s listen=%s reason=%s", o->name, log_q(o->listen),
                  log_q("cannot listen (address in use, or a bad TLS certificate or key)"));
        goto fail;
    }
    di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_EPOLL_FD);
    if (di == NULL || (rc = uv_poll_init(loop, &s->poll, di->epoll_fd)) < 0) {
        rc = -EIO;
        goto fail;
    }
    s->poll.data = s;
    uv_timer_init(loop, &s->timer);
    uv_timer_init(loop, &s->reaper);
    s->timer.data = s;
    s->reaper.data = s;
    uv_poll_start(&s->poll, UV_READABLE, on_poll);
    uv_timer_start(&s->reaper, on_reap, 1000, 1000);
    uv_unref((uv_handle_t *)&s->reaper);
    run(s);
    return s;
fail:
    if (s != NULL && s->d != NULL)
        MHD_stop_daemon(s->d);
    free(s);
    *err = rc;
    return NULL;
}

static void
on_closed(uv_handle_t *h)
{
    struct httpd *s = h->data;

    if (--s->nclose == 0)
        free(s);
}

void
httpd_stop(struct httpd *s)
{
    struct httpd_req *r;

    if (s == NULL)
        return;
    s->stopping = true;
    LIST_FOREACH (r, &s->reqs, link) {
        if (r->suspended) {
            r->suspended = false;
            MHD_resume_connection(r->c);
        }
    }
    MHD_run(s->d); /* the resumed ones are answered 503 or ended */
    MHD_stop_daemon(s->d);
    s->d = NULL;
    /* What a handler still holds is its own now. */
    while ((r = LIST_FIRST(&s->reqs)) != NULL) {
        LIST_REMOVE(r, link);
        r->s = NULL;
        r->gone = true;
        if (!r->owned) {
            if (r->resp != NULL)
                MHD_destroy_response(r->resp);
            r->resp = NULL;
            free(r->body);
            free(r->sbuf);
            free(r);
        }
    }
    s->nclose = 3;
    uv_close((uv_handle_t *)&s->poll, on_closed);
    uv_close((uv_handle_t *)&s->timer, on_closed);
    uv_close((uv_handle_t *)&s->reaper, on_closed);
}

/* ---- request accessors ---- */

const char *
httpd_method(const struct httpd_req *r)
{
    return r->method;
}

const char *
httpd_path(const struct httpd_req *r)
{
    return r->path;
}

const char *
httpd_header(const struct httpd_req *r, const char *name)
{
    return r->gone ? NULL : MHD_lookup_connection_value(r->c, MHD_HEADER_KIND, name);
}

const char *
httpd_query(const struct httpd_req *r, const char *name)
{
    return r->gone ? NULL : MHD_lookup_connection_value(r->c, MHD_GET_ARGUMENT_KIND, name);
}

const char *
httpd_cookie(const struct httpd_req *r, const char *name)
{
    return r->gone ? NULL : MHD_lookup_connection_value(r->c, MHD_COOKIE_KIND, name);
}

const char *
httpd_body(const struct httpd_req *r, size_t *len)
{
    *len = r->len;
    return r->body != NULL ? r->body : "";
}
