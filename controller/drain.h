/* SPDX-License-Identifier: MIT */
/*
 * drain.h: the log drains' private header, grouped by file. ctl.h holds only
 * the entry points the rest of the controller calls (ctl_drains_*); the
 * pieces here (URL parser, RFC 5424 formatter and framing, the bounded
 * buffer with its drop accounting, the senders) are pure or thread-local and
 * tested alone (tests/unit/drain_test.c).
 */
#ifndef DROVER_DRAIN_H
#define DROVER_DRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DRAIN_URL_MAX 2048
#define DRAIN_HOST_MAX 253
#define DRAIN_MARKER_FMT "drover: %llu lines dropped (drain buffer full)"

/* ---- drain_url.c: what drains:add accepts ---- */

enum drain_kind { DRAIN_SYSLOG, DRAIN_SYSLOG_TLS, DRAIN_HTTPS, DRAIN_HTTP };

struct drain_url {
    enum drain_kind kind;
    char host[DRAIN_HOST_MAX + 3]; /* without the brackets of an IPv6 literal */
    uint16_t port;
    bool host_is_ip;
    bool loopback;
};

/* Parse and judge url; on refusal, -EINVAL and the reason in err. */
int drain_url_parse(const char *url, struct drain_url *out, char *err, size_t errsz);
const char *drain_kind_name(enum drain_kind k);

/* ---- drain_fmt.c: RFC 5424 messages, octet-counted (RFC 6587 3.4.1) ---- */

enum { DRAIN_SEV_ERR = 3, DRAIN_SEV_NOTICE = 5, DRAIN_SEV_INFO = 6 };
#define DRAIN_FACILITY_USER 1

/* A growable byte string. */
struct drain_bytes {
    char *p;
    size_t len, cap;
};
void drain_bytes_fini(struct drain_bytes *b);

/*
 * Append "LEN SP <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID - - MSG" to b.
 * host, app and procid are cut to RFC 5424's lengths and anything outside
 * PRINTUSASCII becomes '_' ("-" when empty). 0 or -ENOMEM.
 */
int drain_frame_append(struct drain_bytes *b, int severity, uint64_t ts_ms, const char *host,
                       const char *app, const char *procid, const char *msg, size_t msglen);

/* ---- drain_buf.c: one drain's bounded buffer and its drop accounting ---- */

/*
 * Lines wait in a ring of at most max_lines; when full, the oldest line not
 * yet taken is dropped and counted. A sender takes a batch (formatted frames,
 * with a marker "drover: N lines dropped (drain buffer full)" first when
 * lines were dropped since the last take), sends it, and acks the messages
 * that went out; the rest of the batch is retried as is (same bytes, same
 * frame id). A batch keeps its own copy, so lines that leave the ring while
 * it is in flight are not counted as dropped. Not thread-safe: drains.c
 * holds its drain's lock around every call.
 */
struct drain_buf;

struct drain_msg {
    size_t end;    /* offset in the batch's bytes just past this frame */
    uint64_t upto; /* acking it means every line up to this seq is done */
    bool marker;   /* a drop marker, not a line of the stream */
};

struct drain_batch {
    struct drain_bytes bytes;
    struct drain_msg *v;
    size_t n, cap;
    size_t acked;      /* messages done */
    size_t acked_off;  /* bytes of them */
    char frame_id[33]; /* HTTPS: the same on every retry of this batch */
};

struct drain_stats {
    uint64_t sent;     /* lines delivered (markers not counted) */
    uint64_t buffered; /* lines waiting or in flight */
    uint64_t dropped;  /* lines dropped since the drain was made */
};

struct drain_buf *drain_buf_new(size_t max_lines);
void drain_buf_free(struct drain_buf *b);
/* Copy a line in; the oldest untaken line goes when full. 0 or -ENOMEM. */
int drain_buf_push(struct drain_buf *b, uint64_t ts_ms, int severity, const char *source,
                   const char *node, const char *text, size_t len);
/* Move every line of src (a buffer used only as a queue) to the end of dst,
 * in order, as pushes would (dst drops and counts its oldest when full). */
void drain_buf_move(struct drain_buf *dst, struct drain_buf *src);
size_t drain_buf_count(const struct drain_buf *b);
bool drain_buf_full(const struct drain_buf *b);
/* Lines waiting that no batch holds. */
size_t drain_buf_pending(const struct drain_buf *b);
/* Take up to max_msgs more frames, until the batch holds about max_bytes:
 * into a new batch (with a new frame id) when bt is empty or all acked,
 * else appended to bt (nothing of it acked yet; same frame id), so that a
 * big batch is built a little at a time without holding the lock long.
 * Returns the messages now in bt (0: nothing to send), -ENOMEM, or -EINVAL
 * for a batch partly acked. */
long drain_buf_take(struct drain_buf *b, struct drain_batch *bt, const char *host, const char *app,
                    size_t max_msgs, size_t max_bytes, uint64_t now);
/* The first n messages of bt are delivered (cumulative: n >= bt->acked). */
void drain_buf_ack(struct drain_buf *b, struct drain_batch *bt, size_t n);
void drain_buf_stats(const struct drain_buf *b, struct drain_stats *s);
void drain_batch_reset(struct drain_batch *bt);
void drain_batch_fini(struct drain_batch *bt);

/* ---- drain_syslog.c / drain_http.c: one connection's sending, blocking,
 * on the drain's own thread ---- */

struct drain_conn;
struct drain_ctx {
    const struct drain_url *url;
    const char *url_text;
    const char *ca_file; /* "" : system CAs only */
    volatile int *stop;  /* set by the controller: give up at once */
};
/* Connect (and handshake, verifying the server). On failure, the reason in
 * err and *permanent when retrying as is cannot help (untrusted cert). */
int drain_syslog_open(const struct drain_ctx *c, struct drain_conn **out, char *err, size_t errsz,
                      bool *permanent);
/* Has the server closed (or sent anything)? Then the connection is done. */
bool drain_syslog_dead(struct drain_conn *k);
/* Write bytes; returns how many went out (maybe fewer than len, then err). */
size_t drain_syslog_write(struct drain_conn *k, const char *p, size_t len, char *err, size_t errsz);
void drain_syslog_close(struct drain_conn *k);
/* Interrupt blocking I/O from another thread. */
void drain_syslog_abort(struct drain_conn *k);

struct drain_http;
struct drain_http *drain_http_new(const struct drain_ctx *c, const char *drain_id);
void drain_http_free(struct drain_http *h);
/* POST one batch; 0 when a 2xx came back, else -EIO with the reason. */
int drain_http_post(struct drain_http *h, const struct drain_batch *bt, char *err, size_t errsz,
                    bool *permanent);

#endif
