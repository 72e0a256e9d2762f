/* SPDX-License-Identifier: MIT */
/*
 * clocks_test.c: liveness runs on the controller's monotonic clock, and a
 * silence the controller caused is not the nodes'.
 *
 *   - steps: the controller's wall clock steps +120 s, then back by 120 s,
 *     in the middle of work (libfaketime's file-controlled offset, the
 *     monotonic clock left alone): no node goes down, nothing moves; a host
 *     killed after the backward step is replaced within node timeout + 2 s.
 *   - stall: the controller is stopped (SIGSTOP) for 10 s with a 2 s node
 *     timeout, then continued: nothing moves and the apps serve throughout;
 *     then one host killed among healthy ones is replaced in time.
 *   - mass silence: two of three hosts go silent at once: one is declared
 *     down, the other waits (a bounded rate), and status says why.
 *
 * Web across three agents on loopback. Controllers 7904-7915; app ports
 * 13500-13949 (150 a test, so that two tests can run at once).
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define FAKETIME_LIB "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
#define NODE_TIMEOUT_MS 2000

static struct h_cluster C;
static char ft_path[320]; /* the libfaketime offset file, outside C.dir */

static void
fini(void)
{
    h_cleanup(&C);
    if (ft_path[0] != '\0')
        unlink(ft_path);
}

TestSuite(clocks, .fini = fini, .timeout = 180);

#define CLI(out, err, ...) h_cli(&C, out, err, (const char *const[]){__VA_ARGS__, NULL})

static const char *app_dir = DROVER_SOURCE_DIR "/tests/integration/app";

static long
mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

struct web {
    char node[32];
    char pid[16];
    int port;
};

/* web instances up, one per node n1..n3, into w (by node). */
static bool
spread(struct web w[3])
{
    struct h_ps ps;

    h_get_ps(&C, "shop", &ps);
    if (ps.n != 3 || h_ps_count(&ps, "web", "up", NULL) != 3)
        return false;
    for (int k = 0; k < 3; k++) {
        char node[8];

        snprintf(node, sizeof(node), "n%d", k + 1);
        if (h_ps_count(&ps, "web", "up", node) != 1)
            return false;
        for (int i = 0; i < ps.n; i++) {
            if (strcmp(j_get(&ps.o[i], "node"), node) == 0) {
                snprintf(w[k].node, sizeof(w[k].node), "%s", node);
                snprintf(w[k].pid, sizeof(w[k].pid), "%s", j_get(&ps.o[i], "pid"));
                w[k].port = atoi(j_get(&ps.o[i], "port"));
            }
        }
    }
    return true;
}

/* A controller (extra env first), three agents, web=3 spread over them. */
static int
cluster(const char *test, int base, const char *const *ctl_env, struct web w[3])
{
    char *out = NULL, *err = NULL;
    int ctl;
    long deadline;

    h_init(&C, test, base);
    ctl = h_start_controller(&C, ctl_env);
    cr_assert(h_wait_log(&C, ctl, "event=ready", 10000), "controller not ready");
    for (int k = 0; k < 3; k++) {
        char node[8], range[32];
        int a, p0 = 13500 + (base - 7904) / 4 * 150 + k * 50;

        snprintf(node, sizeof(node), "n%d", k + 1);
        snprintf(range, sizeof(range), "%d-%d", p0, p0 + 49);
        a = h_start_agent(&C, node, range, (const char *const[]){"DROVER_HEARTBEAT_MS=300", NULL});
        cr_assert(h_wait_log(&C, a, "event=ready", 10000), "agent %s not ready", node);
    }
    cr_assert_eq(CLI(NULL, &err, "apps:create", "shop"), 0, "%s", err);
    free(err);
    cr_assert_eq(CLI(&out, &err, "deploy", "shop", app_dir), 0, "%s %s", out, err);
    free(out);
    free(err);
    cr_assert_eq(CLI(&out, &err, "scale", "shop", "web=3"), 0, "%s", err);
    free(out);
    free(err);
    deadline = mono() + 30000;
    while (!spread(w) && mono() < deadline)
        h_msleep(100);
    cr_assert(spread(w), "web=3 never came up one per node");
    return ctl;
}

/* Nothing moved: the same pid on the same node, each up and serving. */
static void
assert_unmoved(const struct web before[3], const char *when)
{
    struct web now[3];

    cr_assert(spread(now), "%s: web is not 3 up one per node any more", when);
    for (int k = 0; k < 3; k++) {
        char *body = h_http_get("127.0.0.1", before[k].port, 2000);

        cr_assert_str_eq(now[k].pid, before[k].pid, "%s: web on %s restarted", when,
                         before[k].node);
        cr_assert_not_null(body, "%s: web on %s does not serve", when, before[k].node);
        free(body);
    }
}

static void
set_offset(const char *file, const char *offset)
{
    FILE *f = fopen(file, "w");

    cr_assert_not_null(f);
    fprintf(f, "%s\n", offset);
    fclose(f);
}

static int
agent_idx(const char *node)
{
    for (int i = 0; i < C.nprocs; i++)
        if (strcmp(C.procs[i].name, node) == 0)
            return i;
    return -1;
}

/* SIGKILL a host's agent (its processes stay, as on a dead host's
 * network); returns when it is gone. */
static void
kill_host(const char *node)
{
    int i = agent_idx(node);

    cr_assert_geq(i, 0);
    kill(-C.procs[i].pid, SIGKILL);
    waitpid(C.procs[i].pid, NULL, 0);
    C.procs[i].pid = 0;
}

/* ms until node is down and web=3 are placed on the other nodes. */
static long
time_to_replace(const char *node, long limit_ms)
{
    long t0 = mono();
    char st[32];

    while (mono() - t0 < limit_ms) {
        struct h_ps ps;
        int elsewhere = 0;

        h_get_ps(&C, "shop", &ps);
        for (int i = 0; i < ps.n; i++) {
            const char *s = j_get(&ps.o[i], "state");

            if (strcmp(j_get(&ps.o[i], "node"), node) != 0 && strcmp(s, "lost") != 0 &&
                strcmp(s, "draining") != 0)
                elsewhere++;
        }
        if (elsewhere == 3 && strcmp(h_node_state(&C, node, st, sizeof(st)), "down") == 0)
            return mono() - t0;
        h_msleep(50);
    }
    return -1;
}

Test(clocks, wall_clock_steps_move_nothing_and_a_dead_host_is_still_replaced)
{
    char *file = ft_path, ft_file[360], asan[1024];
    const char *env[] = {"LD_PRELOAD=" FAKETIME_LIB,
                         ft_file,
                         "FAKETIME_NO_CACHE=1",
                         "DONT_FAKE_MONOTONIC=1",
                         "DROVER_NODE_TIMEOUT_MS=2000",
                         "DROVER_HEARTBEAT_MS=300",
                         NULL};
    struct web w[3];
    long took;
    int ctl;

    if (access(FAKETIME_LIB, R_OK) != 0)
        cr_skip_test("libfaketime is not installed");
    /* Under ASan, the preloaded libfaketime comes before the ASan runtime:
     * the harness hands this process's ASAN_OPTIONS to its children (this
     * test runs in a process of its own). */
    if (getenv("ASAN_OPTIONS") != NULL) {
        snprintf(asan, sizeof(asan), "%s:verify_asan_link_order=0", getenv("ASAN_OPTIONS"));
        setenv("ASAN_OPTIONS", asan, 1);
    }
    /* The offset file lives outside the cluster dir (made by h_init). */
    snprintf(ft_path, sizeof(ft_path), "/tmp/drover-faketime-%d", (int)getpid());
    snprintf(ft_file, sizeof(ft_file), "FAKETIME_TIMESTAMP_FILE=%s", file);
    set_offset(file, "+0");
    ctl = cluster("clocks", 7904, env, w);

    set_offset(file, "+120");
    h_msleep(NODE_TIMEOUT_MS + 1500);
    assert_unmoved(w, "after +120 s");
    set_offset(file, "+0");
    h_msleep(NODE_TIMEOUT_MS + 1500);
    assert_unmoved(w, "after -120 s");
    cr_assert_not(h_log_has(&C, ctl, "event=node_down"), "a healthy node went down");

    kill_host("n3");
    took = time_to_replace("n3", 20000);
    cr_assert_geq(took, 0, "n3 was never replaced");
    cr_assert_leq(took, NODE_TIMEOUT_MS + 2000, "n3 replaced after %ld ms", took);
}

Test(clocks, a_stalled_controller_moves_nothing_and_still_replaces_a_dead_host)
{
    const char *env[] = {"DROVER_NODE_TIMEOUT_MS=2000", "DROVER_HEARTBEAT_MS=300", NULL};
    struct web w[3];
    long t0, took;
    int ctl, served = 0, failed = 0;

    ctl = cluster("stall", 7908, env, w);
    cr_assert_eq(kill(C.procs[ctl].pid, SIGSTOP), 0);
    for (t0 = mono(); mono() - t0 < 10000;) {
        for (int k = 0; k < 3; k++) {
            char *body = h_http_get("127.0.0.1", w[k].port, 1000);

            if (body != NULL)
                served++;
            else
                failed++;
            free(body);
        }
        h_msleep(200);
    }
    cr_assert_eq(kill(C.procs[ctl].pid, SIGCONT), 0);
    cr_assert_eq(failed, 0, "the apps stopped serving during the stall (%d of %d)", failed,
                 served + failed);
    cr_assert(h_wait_log(&C, ctl, "event=controller_stalled", 5000), "the stall was not seen");
    h_msleep(NODE_TIMEOUT_MS + 1500);
    assert_unmoved(w, "after the stall");
    cr_assert_not(h_log_has(&C, ctl, "event=node_down"), "a node went down after the stall");

    kill_host("n2");
    took = time_to_replace("n2", 20000);
    cr_assert_geq(took, 0, "n2 was never replaced");
    cr_assert_leq(took, NODE_TIMEOUT_MS + 2000, "n2 replaced after %ld ms", took);
}

Test(clocks, most_hosts_silent_at_once_are_replaced_at_a_bounded_rate)
{
    const char *env[] = {"DROVER_NODE_TIMEOUT_MS=2000", "DROVER_HEARTBEAT_MS=300", NULL};
    struct web w[3];
    char st2[32], st3[32], *out = NULL, *err = NULL;
    int ctl, down;

    ctl = cluster("mass", 7912, env, w);
    kill_host("n2");
    kill_host("n3");
    if (!h_wait_log(&C, ctl, "event=mass_silence", 10000)) {
        char cmd[600];

        snprintf(cmd, sizeof(cmd), "grep -v 'level=debug\\|instance_state' %s | tail -30 >&2",
                 C.procs[ctl].log);
        cr_assert_eq(system(cmd), 0);
        cr_assert_fail("no mass_silence");
    }
    cr_assert(h_wait_log(&C, ctl, "event=node_down", 5000), "no node went down");
    h_msleep(NODE_TIMEOUT_MS * 3);
    h_node_state(&C, "n2", st2, sizeof(st2));
    h_node_state(&C, "n3", st3, sizeof(st3));
    down = (strcmp(st2, "down") == 0) + (strcmp(st3, "down") == 0);
    cr_assert_eq(down, 1, "%d of the 2 silent nodes are down (n2 %s, n3 %s)", down, st2, st3);
    cr_assert_eq(CLI(&out, &err, "status"), 0, "%s", err);
    cr_assert_not_null(strstr(out, "suspecting this controller or its network"), "status: %s", out);
    free(out);
    free(err);
}
