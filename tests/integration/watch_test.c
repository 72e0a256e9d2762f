/* SPDX-License-Identifier: MIT */
/*
 * watch_test.c: a change to a node's assignment set reaches that node at
 * once through its held sync (its watch, controller/watch.c), and wakes no
 * other node; a watch lost with its controller is armed again. The
 * controller's heartbeat is long (4 s: syncs are held that long), so only
 * the watch can make an agent act within a second. Real controller and
 * agents; ps and the controller's /metrics and log say what happened.
 * A rolling deploy moves in whole batches (reconcile.c) even when its
 * instances come up at different times. Controller ports 15020-15035, HTTP
 * 15036-15038, app ports 15300-15499.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static struct h_cluster C;

static void
fini(void)
{
    h_cleanup(&C);
}

TestSuite(watch, .fini = fini, .timeout = 90);

#define CLI(out, err, ...) h_cli(&C, out, err, (const char *const[]){__VA_ARGS__, NULL})
#define HEARTBEAT_MS 4000

static bool
wait_metric(int port, const char *name, long want, int timeout_ms)
{
    for (long end = h_mono_ms() + timeout_ms; h_mono_ms() < end; h_msleep(50))
        if (h_metric(port, name) == want)
            return true;
    return false;
}

/* How often needle occurs in proc idx's log. */
static int
log_count(int idx, const char *needle)
{
    FILE *f = fopen(C.procs[idx].log, "r");
    char line[4096];
    int n = 0;

    if (f == NULL)
        return 0;
    while (fgets(line, sizeof line, f) != NULL)
        if (strstr(line, needle) != NULL)
            n++;
    fclose(f);
    return n;
}

/* ms until proc idx logs needle (polling every 10 ms), or -1. */
static long
time_to_log(int idx, const char *needle, long t0, int timeout_ms)
{
    for (long end = t0 + timeout_ms; h_mono_ms() < end; h_msleep(10))
        if (h_log_has(&C, idx, needle))
            return h_mono_ms() - t0;
    return -1;
}

static void
start(const char *test, int base, int http)
{
    char hl[64];
    const char *env[] = {"DROVER_HEARTBEAT_MS="
                         "4000",
                         hl, NULL};

    snprintf(hl, sizeof hl, "DROVER_HTTP_LISTEN=127.0.0.1:%d", http);
    h_start_cluster(&C, test, base, 2, 15300, 50, env, NULL);
    h_cli_ok(&C, (const char *const[]){"apps:create", "shop", NULL});
    h_cli_ok(&C, (const char *const[]){"deploy", "shop",
                                       h_app_dir(&C, "shop", "worker: exec sleep 600\n"), NULL});
    /* Both agents synced since and hold a watch. */
    cr_assert(wait_metric(http, "drover_watches_held", 2, 3 * HEARTBEAT_MS),
              "the agents hold no watch: drover_watches_held %ld",
              h_metric(http, "drover_watches_held"));
}

/* Which agent (1 or 2) runs worker.N, from ps. */
static int
node_of(const char *inst)
{
    struct h_ps ps;
    const struct j_obj *o;

    h_get_ps(&C, "shop", &ps);
    o = h_ps_find(&ps, inst);
    cr_assert_not_null(o, "%s is not in ps", inst);
    return strcmp(j_get(o, "node"), "n1") == 0 ? 1 : 2;
}

Test(watch, a_change_reaches_its_node_at_once_and_wakes_no_other)
{
    const int http = 15036;
    long t0, ms, woken0;
    int on, other;

    start("watch-one", 15020, http);
    woken0 = h_metric(http, "drover_watch_wakes_total");
    cr_assert_geq(woken0, 0);

    t0 = h_mono_ms();
    h_cli_ok(&C, (const char *const[]){"scale", "shop", "worker=1", NULL});
    on = node_of("worker.1");
    other = 3 - on;
    ms = time_to_log(on, "inst=worker.1 ", t0, 3 * HEARTBEAT_MS);
    cr_assert(ms >= 0, "worker.1 never spawned on n%d", on);
    cr_assert_lt(ms, 1500, "worker.1 took %ld ms to reach n%d (heartbeat %d ms): not woken", ms, on,
                 HEARTBEAT_MS);
    /* Exactly the one node was woken, once, for this change. */
    cr_assert(wait_metric(http, "drover_watch_wakes_total", woken0 + 1, 2000),
              "wakes %ld, want %ld", h_metric(http, "drover_watch_wakes_total"), woken0 + 1);
    cr_assert_eq(log_count(0, on == 1 ? "event=node_woken node=n1 " : "event=node_woken node=n2 "),
                 1);
    cr_assert_eq(
        log_count(0, other == 1 ? "event=node_woken node=n1 " : "event=node_woken node=n2 "), 0,
        "n%d was woken for a change that was not its own", other);

    /* The second instance goes to the other node (spread): it alone is woken. */
    t0 = h_mono_ms();
    h_cli_ok(&C, (const char *const[]){"scale", "shop", "worker=2", NULL});
    cr_assert_eq(node_of("worker.2"), other);
    ms = time_to_log(other, "inst=worker.2 ", t0, 3 * HEARTBEAT_MS);
    cr_assert(ms >= 0 && ms < 1500, "worker.2 reached n%d after %ld ms", other, ms);
    cr_assert(wait_metric(http, "drover_watch_wakes_total", woken0 + 2, 2000));
    cr_assert_eq(log_count(0, on == 1 ? "event=node_woken node=n1 " : "event=node_woken node=n2 "),
                 1, "n%d was woken again for n%d's change", on, other);
}

Test(watch, a_watch_lost_with_a_restarted_controller_is_armed_again)
{
    const int http = 15037;
    long t0, ms;
    int idx, on;

    start("watch-restart", 15024, http);
    /* The controller goes away with both watches and comes back. */
    cr_assert_eq(h_stop(&C, 0, 10000), 0, "controller did not stop cleanly");
    idx = h_start_controller_as(&C, "controller2",
                                (const char *const[]){"DROVER_HEARTBEAT_MS=4000",
                                                      "DROVER_HTTP_LISTEN=127.0.0.1:15037", NULL});
    cr_assert(wait_metric(http, "drover_watches_held", 2, 4 * HEARTBEAT_MS),
              "the agents did not watch the restarted controller: held %ld",
              h_metric(http, "drover_watches_held"));
    t0 = h_mono_ms();
    h_cli_ok(&C, (const char *const[]){"scale", "shop", "worker=1", NULL});
    on = node_of("worker.1");
    ms = time_to_log(on, "inst=worker.1 ", t0, 3 * HEARTBEAT_MS);
    cr_assert(ms >= 0 && ms < 1500, "worker.1 reached n%d after %ld ms", on, ms);
    cr_assert_eq(log_count(idx, "event=node_woken"), 1);
}

/* A burst of reports (40 instances starting, each state change a full
 * report answered at once) must not end the watch: the agents watch again
 * after each answer, so a change right after the burst reaches them at
 * once. (Counting those answers as "answered without being held" once made
 * an agent give up its watch after three, until its next heartbeat.) */
Test(watch, a_burst_of_reports_keeps_the_watch)
{
    const int http = 15038;
    struct h_ps ps;
    long t0, ms;

    start("watch-burst", 15032, http);
    h_cli_ok(&C, (const char *const[]){"scale", "shop", "worker=40", NULL});
    for (long end = h_mono_ms() + 30000;; h_msleep(20)) {
        h_get_ps(&C, "shop", &ps);
        if (h_ps_count(&ps, "worker", "up", NULL) == 40)
            break;
        cr_assert_lt(h_mono_ms(), end, "worker=40 never came up");
    }
    /* Within a second of the last report, far short of a 4 s heartbeat. */
    cr_assert(wait_metric(http, "drover_watches_held", 2, 1000),
              "the agents stopped watching after the burst: held %ld",
              h_metric(http, "drover_watches_held"));
    t0 = h_mono_ms();
    h_cli_ok(&C, (const char *const[]){"scale", "shop", "worker=0", NULL});
    for (int i = 1; i <= 2; i++) {
        ms = time_to_log(i, "on=stop", t0, 3 * HEARTBEAT_MS);
        cr_assert(ms >= 0 && ms < 1500, "the scale to 0 reached n%d after %ld ms (heartbeat %d ms)",
                  i, ms, HEARTBEAT_MS);
    }
}

/* The controller's event=replaced lines (an old instance stopped by the
 * rollout), grouped by time: stops less than 100 ms apart are one group.
 * The sizes, in order, go to sizes; returns how many groups. */
static int
replaced_groups(int idx, int *sizes, int max)
{
    FILE *f = fopen(C.procs[idx].log, "r");
    char line[4096];
    long last = -1000000;
    int n = 0;

    cr_assert_not_null(f);
    while (fgets(line, sizeof line, f) != NULL) {
        int hh, mm, ss, ms;
        const char *t = strstr(line, "ts=");
        long at;

        if (strstr(line, "event=replaced") == NULL || t == NULL ||
            sscanf(t, "ts=%*d-%*d-%*dT%d:%d:%d.%dZ", &hh, &mm, &ss, &ms) != 4)
            continue;
        at = ((hh * 60L + mm) * 60 + ss) * 1000 + ms;
        if (at - last >= 100 && n < max)
            sizes[n++] = 0;
        sizes[n - 1]++;
        last = at;
    }
    fclose(f);
    return n;
}

Test(watch, a_rolling_deploy_moves_in_whole_batches)
{
    /* Each web waits 0, 1 or 2 s (by its number) before it listens, so a
     * batch comes up over 2 s, in several agent reports. */
    const char *procfile =
        "web: sh -c 'sleep $(( ${DYNO#web.} % 3 )); exec python3 -m http.server $PORT'\n";
    int sizes[16], n;
    struct h_ps ps;

    h_start_cluster(&C, "watch-batches", 15028, 2, 15400, 50, NULL, NULL);
    h_cli_ok(&C, (const char *const[]){"apps:create", "shop", NULL});
    h_cli_ok(&C, (const char *const[]){"deploy", "shop", h_app_dir(&C, "shop", procfile), NULL});
    h_cli_ok(&C, (const char *const[]){"settings:set", "shop", "web", "max_surge=4",
                                       "min_healthy=500ms", "shutdown_delay=0", NULL});
    h_cli_ok(&C, (const char *const[]){"scale", "shop", "web=8", NULL});
    for (long end = h_mono_ms() + 30000;; h_msleep(200)) {
        h_get_ps(&C, "shop", &ps);
        if (h_ps_count(&ps, "web", "up", NULL) == 8)
            break;
        cr_assert_lt(h_mono_ms(), end, "web=8 never came up");
    }
    /* A new release: the rollout replaces 8 in batches of 4. */
    h_cli_ok(&C, (const char *const[]){"config:set", "shop", "ROUND=2", NULL});
    for (long end = h_mono_ms() + 60000;; h_msleep(200)) {
        if (log_count(0, "event=deploy_succeeded") >= 2) /* v1's, then v2's */
            break;
        cr_assert_lt(h_mono_ms(), end, "the rollout did not end: %d replaced",
                     log_count(0, "event=replaced"));
    }
    n = replaced_groups(0, sizes, 16);
    cr_assert_eq(n, 2, "old instances stopped in %d groups (want 2 batches of 4): %d %d %d", n,
                 sizes[0], n > 1 ? sizes[1] : 0, n > 2 ? sizes[2] : 0);
    cr_assert_eq(sizes[0], 4);
    cr_assert_eq(sizes[1], 4);
}
