/* SPDX-License-Identifier: MIT */
/*
 * httpd.h: an HTTP server (libmicrohttpd) on a libuv loop, for the
 * controller's API, metrics and dashboard and the agent's metrics.
 *
 * libmicrohttpd runs in its "external" epoll mode: no thread of its own; its
 * one epoll descriptor is watched by a uv_poll_t and its timeouts by a
 * uv_timer_t, so every callback below runs on the loop thread and may touch
 * the loop's state. A request is handed to the handler once it is whole
 * (headers and a body within the size cap); the handler answers it at once
 * or later (httpd_respond), or streams (server-sent events): meanwhile the
 * connection is suspended and costs nothing.
 *
 * Limits: headers within 2 * HTTPD_HEADER_MAX, the connection buffer (else
 * 431), bodies within
 * HTTPD_BODY_MAX (else 413), at most HTTPD_CONN_MAX connections (more are
 * refused at accept), and a request must arrive whole within
 * HTTPD_REQUEST_MS of its connection's start or the previous response (a
 * client sending a byte a second is cut: it never held a thread anyway).
 */
#ifndef DROVER_HTTPD_H
#define DROVER_HTTPD_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#define HTTPD_HEADER_MAX (16 * 1024)
#define HTTPD_BODY_MAX (64 * 1024)
#define HTTPD_CONN_MAX 256
#define HTTPD_REQUEST_MS 10000

struct httpd;
struct httpd_req;

/* A whole request; r is the handler's until it answers (or the stream ends). */
typedef void httpd_handler(void *arg, struct httpd_req *r);

struct httpd_opts {
    const char *listen;   /* HOST:PORT */
    const char *tls_cert; /* PEM text, or NULL for plain HTTP */
    const char *tls_key;
    const char *name; /* for logs: "http", "metrics" */
};

/* NULL with *err (negative errno) on failure, logged. */
struct httpd *httpd_start(uv_loop_t *loop, const struct httpd_opts *o, httpd_handler *h, void *arg,
                          int *err);
/* Answer every pending request 503, close, free. */
void httpd_stop(struct httpd *s);

/* ---- the request (borrowed strings, valid until it is answered) ---- */
const char *httpd_method(const struct httpd_req *r);
const char *httpd_path(const struct httpd_req *r);
const char *httpd_header(const struct httpd_req *r, const char *name);
const char *httpd_query(const struct httpd_req *r, const char *name);
const char *httpd_cookie(const struct httpd_req *r, const char *name);
const char *httpd_body(const struct httpd_req *r, size_t *len); /* NUL-terminated */

/*
 * Answer r (body copied) and give it back. extra_headers: NULL or
 * "Name: value" strings ending in NULL.
 */
void httpd_respond(struct httpd_req *r, unsigned status, const char *ctype, const char *body,
                   size_t len, const char *const *extra_headers);

/*
 * Streams (server-sent events): start answers 200 with ctype and keeps the
 * connection; send queues bytes (copied); end finishes the response. After
 * the client is gone, send returns -EPIPE: then call httpd_stream_end.
 * closed (may be NULL) runs once when the client goes away mid-stream.
 */
int httpd_stream_start(struct httpd_req *r, const char *ctype, void (*closed)(void *), void *arg);
int httpd_stream_send(struct httpd_req *r, const char *data, size_t len);
void httpd_stream_end(struct httpd_req *r);

#endif
