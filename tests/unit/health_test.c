/* SPDX-License-Identifier: MIT */
/*
 * health_test.c: the agent's health checks (node-agent/health.c) against a
 * real listener on loopback, in a loop of the test's own, and the
 * min_healthy window: a check passes only once it has held that long, and a
 * failure inside the window starts it again. Each test's checks share a
 * listen watch of their own, as an agent's do. Ports 12000-12099 are this
 * file's.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "agt.h"

struct server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    bool http;     /* answer GET with a status line, else just accept */
    bool failing;  /* http: 500 instead of 200 */
    int accepted;  /* connections */
    int failures;  /* 500s sent */
    bool healthy;  /* the check's callback ran */
    uint64_t t0;   /* loop time at the check's start */
    uint64_t took; /* ms from t0 to the callback */
};

struct client {
    uv_tcp_t tcp;
    uv_write_t w;
    struct server *srv;
    char buf[512];
};

static void
free_client(uv_handle_t *h)
{
    free(h->data);
}

static void
on_written(uv_write_t *w, int status)
{
    struct client *c = w->data;

    (void)status;
    uv_close((uv_handle_t *)&c->tcp, free_client);
}

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct client *c = h->data;

    (void)hint;
    *buf = uv_buf_init(c->buf, sizeof c->buf);
}

/* The request is small: its first read is all of it (or enough). */
static void
on_request(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    static char ok[] = "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
    static char bad[] = "HTTP/1.0 500 Oops\r\nContent-Length: 0\r\n\r\n";
    struct client *c = s->data;
    uv_buf_t b;

    (void)buf;
    if (n == 0)
        return;
    uv_read_stop(s);
    if (n < 0) {
        uv_close((uv_handle_t *)&c->tcp, free_client);
        return;
    }
    if (c->srv->failing)
        c->srv->failures++;
    b = c->srv->failing ? uv_buf_init(bad, sizeof bad - 1) : uv_buf_init(ok, sizeof ok - 1);
    c->w.data = c;
    cr_assert_eq(uv_write(&c->w, s, &b, 1, on_written), 0);
}

static void
on_connection(uv_stream_t *l, int status)
{
    struct server *srv = l->data;
    struct client *c = calloc(1, sizeof *c);

    cr_assert_eq(status, 0);
    cr_assert_not_null(c);
    c->srv = srv;
    uv_tcp_init(srv->loop, &c->tcp);
    c->tcp.data = c;
    cr_assert_eq(uv_accept(l, (uv_stream_t *)&c->tcp), 0);
    srv->accepted++;
    if (srv->http)
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_request);
    else
        uv_close((uv_handle_t *)&c->tcp, free_client);
}

static void
listen_on(struct server *srv, uv_loop_t *loop, int port)
{
    struct sockaddr_in sa;

    srv->loop = loop;
    uv_ip4_addr("127.0.0.1", port, &sa);
    uv_tcp_init(loop, &srv->listener);
    srv->listener.data = srv;
    cr_assert_eq(uv_tcp_bind(&srv->listener, (const struct sockaddr *)&sa, 0), 0, "port %d", port);
    cr_assert_eq(uv_listen((uv_stream_t *)&srv->listener, 16, on_connection), 0);
}

static void
close_one(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void
on_healthy(void *arg)
{
    struct server *srv = arg;

    srv->healthy = true;
    srv->took = uv_now(srv->loop) - srv->t0;
    /* Client structs free themselves; the rest is closed here. */
    uv_walk(srv->loop, close_one, NULL);
}

/* Start the check of spec against 127.0.0.1 and run until it passes. */
static void
run_check(uv_loop_t *loop, struct server *srv, struct agt_spec *spec)
{
    struct agt_health_watch *hw = agt_health_watch_new(loop, true); /* as the agent's */

    cr_assert_not_null(hw);
    srv->loop = loop;
    uv_update_time(loop);
    srv->t0 = uv_now(loop);
    cr_assert_not_null(agt_health_start(hw, spec, "127.0.0.1", on_healthy, srv));
    uv_run(loop, UV_RUN_DEFAULT);
    cr_assert(srv->healthy);
    cr_assert_eq(uv_loop_close(loop), 0, "every handle closed");
    agt_health_watch_free(hw);
}

static void
spec_init(struct agt_spec *s, enum agt_health_kind kind, uint16_t port, uint32_t min_ms)
{
    memset(s, 0, sizeof *s);
    s->health = kind;
    s->port = port;
    s->min_healthy_ms = min_ms;
    strcpy(s->http_path, "/healthz");
}

Test(health, none_waits_for_min_healthy, .timeout = 5)
{
    uv_loop_t loop;
    struct server srv = {0};
    struct agt_spec s;

    uv_loop_init(&loop);
    spec_init(&s, AGT_HEALTH_NONE, 12000, 300);
    run_check(&loop, &srv, &s);
    cr_assert(srv.took >= 300 && srv.took < 1000, "took %llu ms", (unsigned long long)srv.took);
}

Test(health, none_with_zero_window_is_up_at_once, .timeout = 5)
{
    uv_loop_t loop;
    struct server srv = {0};
    struct agt_spec s;

    uv_loop_init(&loop);
    spec_init(&s, AGT_HEALTH_NONE, 12000, 0);
    run_check(&loop, &srv, &s);
    cr_assert(srv.took < 100, "took %llu ms", (unsigned long long)srv.took);
}

Test(health, tcp_zero_window_passes_at_the_first_connect, .timeout = 5)
{
    uv_loop_t loop;
    struct server srv = {0};
    struct agt_spec s;

    uv_loop_init(&loop);
    listen_on(&srv, &loop, 12001);
    spec_init(&s, AGT_HEALTH_TCP, 12001, 0);
    run_check(&loop, &srv, &s);
    cr_assert(srv.took < 100, "took %llu ms", (unsigned long long)srv.took);
    cr_assert_eq(srv.accepted, 1);
}

/* One connect confirms the listener; through the window the sock_diag
 * dumps watch the port, with no connect per 100 ms. */
Test(health, tcp_confirms_once_then_watches_the_port_through_the_window, .timeout = 5)
{
    uv_loop_t loop;
    struct server srv = {0};
    struct agt_spec s;

    uv_loop_init(&loop);
    listen_on(&srv, &loop, 12002);
    spec_init(&s, AGT_HEALTH_TCP, 12002, 350);
    run_check(&loop, &srv, &s);
    cr_assert(srv.took >= 350 && srv.took < 1000, "took %llu ms", (unsigned long long)srv.took);
    cr_assert_eq(srv.accepted, 1, "one connect to confirm: %d", srv.accepted);
}

static void
on_relisten(uv_timer_t *t)
{
    struct server *srv = t->data;

    listen_on(srv, srv->loop, 12006);
    uv_close((uv_handle_t *)t, NULL);
}

static void
on_unlisten(uv_timer_t *t)
{
    struct server *srv = t->data;

    uv_close((uv_handle_t *)&srv->listener, NULL);
    uv_timer_start(t, on_relisten, 200, 0);
}

/* Gone from the listening list inside the window: the window starts again
 * at the next listener, confirmed by a connect of its own. */
Test(health, tcp_a_port_that_stops_listening_restarts_the_window, .timeout = 5)
{
    uv_loop_t loop;
    uv_timer_t t;
    struct server srv = {0};
    struct agt_spec s;

    uv_loop_init(&loop);
    listen_on(&srv, &loop, 12006);
    spec_init(&s, AGT_HEALTH_TCP, 12006, 400);
    uv_timer_init(&loop, &t);
    t.data = &srv;
    uv_timer_start(&t, on_unlisten, 150, 0);
    run_check(&loop, &srv, &s);
    cr_assert(srv.took >= 750 && srv.took < 3000, "took %llu ms", (unsigned long long)srv.took);
    /* A confirm before the close (unless a loaded machine ran the first
     * tick only after it) and one after. */
    cr_assert(srv.accepted >= 1 && srv.accepted <= 2, "confirms: %d", srv.accepted);
}

static void
on_fail_start(uv_timer_t *t)
{
    struct server *srv = t->data;

    srv->failing = true;
}

static void
on_fail_end(uv_timer_t *t)
{
    struct server *srv = t->data;

    srv->failing = false;
}

Test(health, http_failure_inside_the_window_restarts_it, .timeout = 5)
{
    uv_loop_t loop;
    uv_timer_t start, end;
    struct server srv = {.http = true};
    struct agt_spec s;

    uv_loop_init(&loop);
    listen_on(&srv, &loop, 12003);
    spec_init(&s, AGT_HEALTH_HTTP, 12003, 400);
    /* 200 from 0 to 150 ms, 500 until 350 ms (two checks at least), then 200
     * again. Without the restart it would pass at about 400 ms; with it, not
     * before 350 + 400. */
    uv_timer_init(&loop, &start);
    uv_timer_init(&loop, &end);
    start.data = end.data = &srv;
    uv_timer_start(&start, on_fail_start, 150, 0);
    uv_timer_start(&end, on_fail_end, 350, 0);
    run_check(&loop, &srv, &s);
    cr_assert(srv.failures >= 1, "a check failed inside the window");
    cr_assert(srv.took >= 750 && srv.took < 1500, "took %llu ms", (unsigned long long)srv.took);
}

Test(health, http_error_is_not_healthy, .timeout = 5)
{
    uv_loop_t loop;
    uv_timer_t end;
    struct server srv = {.http = true, .failing = true};
    struct agt_spec s;

    uv_loop_init(&loop);
    listen_on(&srv, &loop, 12004);
    spec_init(&s, AGT_HEALTH_HTTP, 12004, 0);
    uv_timer_init(&loop, &end);
    end.data = &srv;
    uv_timer_start(&end, on_fail_end, 250, 0);
    run_check(&loop, &srv, &s);
    cr_assert(srv.failures >= 2);
    cr_assert(srv.took >= 250, "took %llu ms", (unsigned long long)srv.took);
}
