/* SPDX-License-Identifier: MIT */
/*
 * nnuv.h: a nanomsg socket joined to a libuv loop.
 *
 * The socket's NN_RCVFD is watched with a uv_poll_t; when it is readable every
 * waiting message is drained with NN_DONTWAIT until EAGAIN and handed to the
 * callback. Server sockets are opened raw (AF_SP_RAW REP) so that a request
 * may be answered later, from another callback (after uv_queue_work, say):
 * each received message carries its routing header, and nnuv_reply() sends
 * the answer back along it. A raw REP socket bound to a TCP address that
 * sprep.c can serve (an IPv4 address, "*" or an interface) is served by it,
 * on the loop, with the same bytes on the wire and the same semantics
 * (sprep.c says why); nanomsg serves any other.
 *
 * Lifetime: nnuv_new() allocates; nnuv_close() stops polling, closes the
 * nanomsg socket and frees the struct in the uv_poll close callback. A
 * struct nnuv_msg is owned by whoever holds it and must be given to
 * nnuv_reply() or nnuv_msg_free() exactly once.
 */
#ifndef DROVER_NNUV_H
#define DROVER_NNUV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <uv.h>

/* A wake-up's budget: messages are handed on NNUV_BATCH at a time, up to
 * NNUV_TURN batches, and no new batch once it took NNUV_TURN_NS (the rest
 * wait for the next loop turn: timers and other sockets get theirs). */
#define NNUV_BATCH 256
#define NNUV_TURN 4
#define NNUV_TURN_NS 20000000

struct nnuv;
struct sprep_conn;

struct nnuv_msg {
    struct nnuv *sock; /* borrowed; may be closed before the reply */
    int nn;            /* nanomsg socket id, for the reply; -1: served by sprep.c */
    void *body;        /* nn_allocmsg'd, or malloc'd (sprep.c) */
    size_t len;
    void *control; /* routing header of a raw REP request, or NULL */
    /* sprep.c: the connection (a reference) and the request's backtrace */
    struct sprep_conn *conn;
    uint8_t bt[32];
    uint8_t btlen;
    TAILQ_ENTRY(nnuv_msg) qlink;
};

/* msg: owned by the callback from here on. */
typedef void (*nnuv_recv_cb)(struct nnuv *s, struct nnuv_msg *msg, void *arg);

/*
 * domain: AF_SP or AF_SP_RAW; protocol: NN_REP, NN_REQ, NN_PUB, NN_SUB,
 * NN_PUSH, NN_PULL. cb may be NULL for send-only sockets. Sets NN_RCVMAXSIZE
 * to WIRE_MAX_SIZE. Returns NULL with *err set (negative errno) on failure.
 */
struct nnuv *nnuv_new(uv_loop_t *loop, int domain, int protocol, nnuv_recv_cb cb, void *arg,
                      int *err);
int nnuv_bind(struct nnuv *s, const char *url);
/* Dial url (one per socket) and keep it dialled: a dial that cannot start
 * now (no descriptor or local port: event=dial_failed) or loses its
 * connection is made again, with backoff, never by nanomsg itself (nnuv.c
 * says why). Returns 0, or a negative errno for a URL nanomsg refuses. */
int nnuv_connect(struct nnuv *s, const char *url);
/* Drop the connection and dial again at once (a silent peer). */
int nnuv_redial(struct nnuv *s);
/* Dial url instead of the URL dialled so far (a controller that says
 * another one leads), at once; the same URL: as nnuv_redial. 0, -EINVAL for
 * a URL nanomsg refuses, -ENOTCONN when never connected. */
int nnuv_retarget(struct nnuv *s, const char *url);
const char *nnuv_url(const struct nnuv *s); /* "" when not connected */
/* Requests a raw REP dropped because a newer one from the same sender
 * (the same connection) was waiting behind them (nnuv.c). */
uint64_t nnuv_shed(const struct nnuv *s);
/* How long (ms) the socket's receive queue has not been empty: since the
 * first message received after it was last drained to empty; 0 when it was
 * drained empty. The age of the backlog, the front ends' overload signal. */
uint64_t nnuv_backlog_ms(const struct nnuv *s);
int nnuv_sock(const struct nnuv *s); /* the nanomsg socket, for setsockopt */
void *nnuv_data(const struct nnuv *s);

/* Start or stop delivering received messages to the callback. */
int nnuv_start(struct nnuv *s);
void nnuv_stop(struct nnuv *s);

/*
 * Send buf (copied). NN_DONTWAIT: returns 0, -EAGAIN when it cannot be
 * queued now (a PUSH with no peer, a REQ...), or another negative errno.
 */
int nnuv_send(struct nnuv *s, const void *buf, size_t len);

/* Send two parts as one message (topic + envelope on PUB). */
int nnuv_send2(struct nnuv *s, const void *a, size_t alen, const void *b, size_t blen);

/*
 * Reply to a request received on a raw REP socket and free msg. Returns 0 or
 * a negative errno (the peer is gone, the socket closed); msg is freed either
 * way.
 */
int nnuv_reply(struct nnuv_msg *msg, const void *buf, size_t len);
void nnuv_msg_free(struct nnuv_msg *msg);
/* The network address a request came from, "IP:PORT" in buf, where it is
 * known (a request served by sprep.c, its connection still open); else "".
 * Returns buf. */
const char *nnuv_msg_peer(const struct nnuv_msg *msg, char *buf, size_t bufsz);

void nnuv_close(struct nnuv *s);

#endif
