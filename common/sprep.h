/* SPDX-License-Identifier: MIT */
/*
 * sprep.h: the REP side of nanomsg's protocol over TCP, served on the libuv
 * loop itself (nnuv.c uses it for the raw REP sockets it binds to a TCP
 * address; sprep.c says why and how).
 */
#ifndef DROVER_SPREP_H
#define DROVER_SPREP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct nnuv;
struct nnuv_msg;
struct sprep;

/* A request, owned by the callback from here on (nnuv_reply or
 * nnuv_msg_free). */
typedef void (*sprep_cb)(struct nnuv_msg *msg, void *arg);

/* Can sprep serve url? "tcp://HOST:PORT" with HOST an IPv4 address, "*"
 * (every IPv4 address, as nanomsg's default) or the name of a network
 * interface with an IPv4 address; *sa is where to listen. */
bool sprep_url(const char *url, struct sockaddr_in *sa);

/* Listen on sa (connections are taken and read from now on; requests are
 * delivered once sprep_start is called). owner is what msg->sock says. */
struct sprep *sprep_new(uv_loop_t *loop, const struct sockaddr_in *sa, struct nnuv *owner,
                        sprep_cb cb, void *arg, int *err);
void sprep_start(struct sprep *s);
void sprep_stop(struct sprep *s);
/* As nnuv_backlog_ms and nnuv_shed. */
uint64_t sprep_backlog_ms(const struct sprep *s);
uint64_t sprep_shed(const struct sprep *s);
/* Reply to msg (consumed): 0, also when its connection is gone (the answer
 * is dropped, as nanomsg drops it), or -ENOMEM. */
int sprep_reply(struct nnuv_msg *msg, const void *buf, size_t len);
/* The address msg came from, "IP:PORT" in buf; "" once its connection
 * closed. Returns buf. */
const char *sprep_msg_peer(const struct nnuv_msg *msg, char *buf, size_t bufsz);
/* What nnuv_msg_free does for a request of a sprep. */
void sprep_msg_release(struct nnuv_msg *msg);
/* Stop listening, close every connection, free what is queued; the struct
 * goes with the last handle. Replies after this are dropped. */
void sprep_close(struct sprep *s);

#endif
