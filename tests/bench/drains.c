/* SPDX-License-Identifier: MIT */
/*
 * drains.c (bench-drains): what a log drain costs, per line.
 *
 *   push   the loop's share: lock, copy a 100-byte line into a full
 *          10,000-line buffer (the oldest dropped), unlock
 *   format the drain thread's share: take batches of 1,000 as octet-counted
 *          RFC 5424 messages and ack them
 *   syslog push + take + write over a real TCP connection on loopback to a
 *          reader that discards, one thread sending
 *   feed   what one line costs the loop while the drain thread builds
 *          batches of 1,000 (64 messages a hold, as drains.c does): a
 *          trylock, else the line goes to the loop's spill queue, moved
 *          into the buffer at the next line that gets the lock
 *
 * Prints one line per figure; not a timed test.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "drain.h"

#define LINE                                                                                       \
    "GET /products/42 200 12ms user=7f3a9c request_id=5b1e8a42-9d7c-4f31-a0e2-1c3d5e7f9a0b ok"

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *
discard(void *arg)
{
    int fd = accept(*(int *)arg, NULL, NULL);
    char buf[65536];

    while (fd >= 0 && read(fd, buf, sizeof(buf)) > 0)
        ;
    if (fd >= 0)
        close(fd);
    return NULL;
}

#define PUSHES 300000

struct contend {
    pthread_mutex_t mu;
    struct drain_buf *b;
    volatile int done;
    double *wait; /* each push's wait for the lock, s */
};

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static void *
pusher(void *arg)
{
    struct contend *c = arg;
    size_t len = strlen(LINE);

    struct drain_buf *spill = drain_buf_new(4096);

    for (int i = 0; i < PUSHES; i++) {
        double t = now_s();

        if (pthread_mutex_trylock(&c->mu) != 0) {
            if (!drain_buf_full(spill)) {
                drain_buf_push(spill, 1795514400123ull, DRAIN_SEV_INFO, "web.12", "node-0042", LINE,
                               len);
                c->wait[i] = now_s() - t;
                continue;
            }
            pthread_mutex_lock(&c->mu);
        }
        drain_buf_move(c->b, spill);
        drain_buf_push(c->b, 1795514400123ull, DRAIN_SEV_INFO, "web.12", "node-0042", LINE, len);
        pthread_mutex_unlock(&c->mu);
        c->wait[i] = now_s() - t;
    }
    drain_buf_free(spill);
    c->done = 1;
    return NULL;
}

/* What each line cost the pusher while batches of 1,000 are taken chunk
 * messages per hold: print the 99th, 99.9th percentile and the worst. */
static void
contend(size_t chunk)
{
    struct contend c = {.mu = PTHREAD_MUTEX_INITIALIZER,
                        .b = drain_buf_new(10000),
                        .wait = calloc(PUSHES, sizeof(double))};
    struct drain_batch bt;
    pthread_t th;

    memset(&bt, 0, sizeof(bt));
    pthread_create(&th, NULL, pusher, &c);
    while (!c.done) {
        long n = 0, more;

        do {
            pthread_mutex_lock(&c.mu);
            more = drain_buf_take(c.b, &bt, "ctl", "shop", chunk, 1u << 20, 0);
            pthread_mutex_unlock(&c.mu);
            if (more <= n)
                break;
            n = more;
        } while (n < 1000);
        pthread_mutex_lock(&c.mu);
        drain_buf_ack(c.b, &bt, bt.n);
        pthread_mutex_unlock(&c.mu);
    }
    pthread_join(th, NULL);
    drain_batch_fini(&bt);
    drain_buf_free(c.b);
    qsort(c.wait, PUSHES, sizeof(double), cmp_double);
    printf("feed (%4zu a hold): a line cost the loop p99 %.1f us, p99.9 %.1f us, worst %.0f us\n",
           chunk, c.wait[PUSHES * 99 / 100] * 1e6, c.wait[PUSHES * 999 / 1000] * 1e6,
           c.wait[PUSHES - 1] * 1e6);
    free(c.wait);
}

int
main(void)
{
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    struct drain_buf *b = drain_buf_new(10000);
    struct drain_batch bt;
    const size_t n = 2000000, len = strlen(LINE);
    double t0, t;
    size_t i, done = 0;

    memset(&bt, 0, sizeof(bt));
    t0 = now_s();
    for (i = 0; i < n; i++) {
        pthread_mutex_lock(&mu);
        drain_buf_push(b, 1795514400123ull + i, DRAIN_SEV_INFO, "web.12", "node-0042", LINE, len);
        pthread_mutex_unlock(&mu);
    }
    t = now_s() - t0;
    printf("push: %.0f ns/line (%zu lines into a full 10,000-line buffer)\n", t * 1e9 / (double)n,
           n);

    t0 = now_s();
    for (done = 0; done < n;) {
        if (drain_buf_pending(b) == 0)
            for (i = 0; i < 10000; i++)
                drain_buf_push(b, 1795514400123ull, DRAIN_SEV_INFO, "web.12", "node-0042", LINE,
                               len);
        long k = drain_buf_take(b, &bt, "ctl", "shop", 1000, 1u << 20, 0);
        drain_buf_ack(b, &bt, (size_t)k);
        done += (size_t)k;
    }
    t = now_s() - t0;
    printf("push+format: %.0f ns/line, %.2f M lines/s, %zu bytes a message\n",
           t * 1e9 / (double)done, (double)done / t / 1e6, bt.v[0].end);

    /* A real socket. */
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t al = sizeof(a);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    pthread_t th;
    char port[8], err[256];
    struct drain_url u;
    volatile int stop = 0;
    struct drain_conn *k = NULL;
    bool perm;

    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 1) < 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &al) < 0) {
        perror("listen");
        return 1;
    }
    snprintf(port, sizeof(port), "%u", ntohs(a.sin_port));
    char url[64];
    snprintf(url, sizeof(url), "syslog://127.0.0.1:%s", port);
    if (drain_url_parse(url, &u, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    pthread_create(&th, NULL, discard, &lfd);
    struct drain_ctx c = {.url = &u, .url_text = url, .ca_file = "", .stop = &stop};
    if (drain_syslog_open(&c, &k, err, sizeof(err), &perm) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    t0 = now_s();
    for (done = 0; done < n;) {
        if (drain_buf_pending(b) == 0)
            for (i = 0; i < 10000; i++)
                drain_buf_push(b, 1795514400123ull, DRAIN_SEV_INFO, "web.12", "node-0042", LINE,
                               len);
        long m = drain_buf_take(b, &bt, "ctl", "shop", 1000, 1u << 20, 0);
        if (drain_syslog_dead(k) ||
            drain_syslog_write(k, bt.bytes.p, bt.bytes.len, err, sizeof(err)) != bt.bytes.len) {
            fprintf(stderr, "write: %s\n", err);
            return 1;
        }
        drain_buf_ack(b, &bt, (size_t)m);
        done += (size_t)m;
    }
    t = now_s() - t0;
    printf("syslog over TCP on loopback: %.2f M lines/s (%.0f MB/s)\n", (double)done / t / 1e6,
           (double)done * (double)bt.v[0].end / t / 1e6);
    drain_syslog_close(k);
    pthread_join(th, NULL);
    contend(64);
    close(lfd);
    drain_batch_fini(&bt);
    drain_buf_free(b);
    return 0;
}
