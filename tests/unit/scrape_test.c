/* SPDX-License-Identifier: MIT */
/*
 * scrape_test.c: the agent's small HTTP server (node-agent/scrape.c) on a
 * real loopback socket (127.0.0.1:15050): an answer with its length, a query
 * ignored, garbage and an oversized head refused, the server serving on
 * after each. A client thread talks while the loop runs here.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agt.h"
#include "listen.h"

#define PORT 15050

static void
handler(void *arg, const char *method, const char *path, struct agt_http_answer *a)
{
    (void)arg;
    a->type = "text/plain";
    if (strcmp(method, "GET") != 0) {
        a->status = 405;
        a->extra = "Allow: GET";
        a->body = (char *)"no\n";
    } else if (strcmp(path, "/metrics") == 0) {
        a->status = 200;
        a->owned = a->body = strdup("up 1\n");
    } else {
        a->status = 404;
        a->body = (char *)"not found\n";
    }
    a->len = strlen(a->body);
}

/* One request (raw bytes), the whole answer until the server closes. */
static char *
ask(const char *req, size_t len)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(PORT)};
    char *buf = calloc(1, 65536);
    size_t got = 0;
    ssize_t n;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        return free(buf), close(fd), NULL;
    for (size_t off = 0; off < len;) {
        n = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    while (got < 65535 && (n = read(fd, buf + got, 65535 - got)) > 0)
        got += (size_t)n;
    close(fd);
    return buf;
}

static char *answers[5];
static uv_async_t done;

static void *
client(void *arg)
{
    static char big[8192]; /* the head limit, all of it read: no reset */

    (void)arg;
    answers[0] = ask("GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n", 38);
    answers[1] = ask("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 46);
    answers[2] = ask("\x01\x02 garbage\r\n\r\n", 14);
    memset(big, 'a', sizeof big);
    memcpy(big, "GET /", 5);
    answers[3] = ask(big, sizeof big);
    answers[4] = ask("GET /nothing HTTP/1.0\r\n\r\n", 25);
    uv_async_send(&done);
    return NULL;
}

static void
on_done(uv_async_t *a)
{
    uv_stop(a->loop);
}

Test(scrape, answers_with_a_length_and_refuses_garbage_and_serves_on)
{
    uv_loop_t loop;
    struct agt_http *s;
    pthread_t th;
    int err = 0;

    uv_loop_init(&loop);
    s = agt_http_start(&loop, "127.0.0.1:15050", handler, NULL, &err);
    cr_assert_not_null(s, "cannot listen: %d", err);
    uv_async_init(&loop, &done, on_done);
    cr_assert_eq(pthread_create(&th, NULL, client, NULL), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    for (int k = 0; k < 5; k++)
        cr_assert_not_null(answers[k], "request %d: no connection", k);
    cr_assert(strncmp(answers[0], "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", answers[0]);
    cr_assert_not_null(strstr(answers[0], "\r\nContent-Length: 5\r\n"), "%s", answers[0]);
    cr_assert_not_null(strstr(answers[0], "\r\nConnection: close\r\n\r\nup 1\n"), "%s", answers[0]);
    cr_assert(strncmp(answers[1], "HTTP/1.1 405 ", 13) == 0, "%s", answers[1]);
    cr_assert_not_null(strstr(answers[1], "\r\nAllow: GET\r\n"), "%s", answers[1]);
    cr_assert(strncmp(answers[2], "HTTP/1.1 400 ", 13) == 0, "%s", answers[2]);
    cr_assert(strncmp(answers[3], "HTTP/1.1 431 ", 13) == 0, "%s", answers[3]);
    cr_assert(strncmp(answers[4], "HTTP/1.1 404 ", 13) == 0, "%s", answers[4]);
    for (int k = 0; k < 5; k++)
        free(answers[k]);
    agt_http_stop(s);
    uv_close((uv_handle_t *)&done, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&loop), 0, "a handle left open");
}

Test(scrape, a_bad_address_or_a_taken_port_is_an_error)
{
    uv_loop_t loop;
    struct agt_http *a, *b;
    int err = 0;

    uv_loop_init(&loop);
    cr_assert_null(agt_http_start(&loop, "no-port", handler, NULL, &err));
    cr_assert_eq(err, -EINVAL);
    a = agt_http_start(&loop, "127.0.0.1:15051", handler, NULL, &err);
    cr_assert_not_null(a);
    b = agt_http_start(&loop, "127.0.0.1:15051", handler, NULL, &err);
    cr_assert_null(b);
    cr_assert_eq(err, UV_EADDRINUSE);
    agt_http_stop(a);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&loop), 0);
    cr_assert(listen_is_loopback("127.0.0.1:1") && listen_is_loopback("[::1]:1") &&
              !listen_is_loopback("0.0.0.0:1"));
}
