/* SPDX-License-Identifier: MIT */
/*
 * bench.h: the private header of drover-bench-load, grouped by file.
 *
 * The load program simulates many agents in a few worker processes, each
 * worker driving its agents' REQ sockets (TCP sockets speaking SP
 * themselves: sp.c) from one thread with epoll. The
 * parent process drives the controller's API and collects what the workers
 * report over a socketpair, one text line per event.
 */
#ifndef DROVER_BENCH_H
#define DROVER_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/types.h>

#include "wire.h"

#define BENCH_PER_WORKER 400 /* agents (REQ sockets) per worker process */

struct bench_cfg {
    char join[256];   /* the controller's agent endpoint */
    char notify[256]; /* its notify endpoint */
    char api[256];    /* its API endpoint */
    uint8_t cluster_key[WIRE_KEY_BYTES];
    uint8_t api_key[WIRE_KEY_BYTES];
    unsigned agents;
    unsigned first; /* index of this worker's first agent */
    unsigned count; /* agents in this worker */
    unsigned capacity;
    unsigned run_id; /* makes boot ids and names of this run unique */
};

/* open.c: clock and /proc readings (replies open with wire_open_key) */
/* Monotonic clock in ns: one clock for every process of the run. */
uint64_t bench_now_ns(void);
/* A controller process's CPU time (user + system) in ms; -1 when gone. */
int64_t bench_cpu_ms(pid_t pid);
/* Its resident set in KiB (VmRSS); -1 when gone. */
int64_t bench_rss_kib(pid_t pid);
/* Raise RLIMIT_NOFILE to its hard limit. */
void bench_raise_nofile(void);
/* url dialled from a loopback source address of its own, 127.0.0.<host>
 * ("tcp://127.0.0.H;127.0.0.1:P"), when url is a tcp:// URL on 127.x;
 * else url as it is. Each address has the whole ephemeral range: the
 * connections of one worker never wait for another's TIME_WAIT. */
void bench_source_url(const char *url, unsigned host, char *out, size_t outsz);
/* Dial url on nanomsg socket s once dial_check() says nanomsg can (else it
 * aborts: common/dialcheck.c), waiting up to wait_ms for a port or a
 * descriptor; says why on stderr. The endpoint id, or -errno. */
int bench_dial(int s, const char *url, unsigned wait_ms);
/* Why a dial failed with rc (-errno), for its message: no port, no
 * descriptor, or the local address. */
const char *bench_dial_why(int rc);

/* worker.c: simulated agents in one process */
/* Run until told to quit on cmd_fd; events go out on ev_fd. Never returns. */
void bench_worker_main(const struct bench_cfg *cfg, int cmd_fd, int ev_fd)
    __attribute__((noreturn));

/* sp.c: a REQ socket speaking SP over TCP itself (see the file's top) */
enum bench_sp_state { BENCH_SP_DOWN, BENCH_SP_CONNECTING, BENCH_SP_UP };

struct bench_sp {
    int fd; /* -1 while down */
    enum bench_sp_state state;
    struct sockaddr_in src, dst;
    bool have_src;
    uint32_t id;   /* the request in flight's id, without the top bit */
    bool inflight; /* a request waits for its reply */
    uint8_t *req;  /* its body, to send again on a new connection */
    size_t reqlen, reqcap;
    uint8_t *out; /* bytes not yet written */
    size_t outoff, outlen, outcap;
    uint8_t *in; /* bytes read, not yet parsed */
    size_t inoff, inlen, incap;
    uint64_t retry_ms; /* down: connect again at this time (mono_ms) */
    uint64_t drops;    /* connections lost */
};

/* From "tcp://[SRC;]HOST:PORT" (IPv4 addresses); -EINVAL for any other. */
int bench_sp_init(struct bench_sp *s, const char *url);
/* Start connecting (non-blocking): 0, or -errno. Watch s->fd with
 * EPOLLIN | EPOLLOUT | EPOLLET and call bench_sp_next on every event. */
int bench_sp_connect(struct bench_sp *s);
/* Send a request (a copy is kept), replacing the one in flight: its reply,
 * if one comes, is dropped. Sent once the connection is up. 0 or -ENOMEM. */
int bench_sp_send(struct bench_sp *s, const uint8_t *buf, size_t len);
/* Read and write what the socket allows: 1 with the reply to the request
 * in flight in *msg and *len (valid until the next call), 0 when nothing
 * more comes now (call again on the next event). A connection that fails
 * is closed, and bench_sp_tick makes the next. */
int bench_sp_next(struct bench_sp *s, uint64_t now_ms, const uint8_t **msg, size_t *len);
/* Down for long enough: connect again; 1 with a new s->fd to watch, 0 with
 * nothing to do, -errno when it could not (tried again later). */
int bench_sp_tick(struct bench_sp *s, uint64_t now_ms);
void bench_sp_close(struct bench_sp *s);

/* echo.c: the raw nanomsg request rate, the limit beside placement */
int bench_echo_server(const char *url);
/* Child: ping-pong on `count` REQ sockets for ms; writes "E N\n" to ev_fd. */
void bench_echo_worker(const char *url, unsigned count, unsigned ms, unsigned worker, int ev_fd)
    __attribute__((noreturn));

#endif
