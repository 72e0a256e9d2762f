/* SPDX-License-Identifier: MIT */
/*
 * nodes_test.c: node life that needs no separate hosts, on loopback (so it
 * runs anywhere, root or not): an agent killed with SIGKILL and started
 * again leaves nothing unmanaged; a second agent with a taken name is
 * refused and goes; a scale beyond capacity waits, pending with its reason,
 * and is placed when capacity appears; a leaving agent's last report
 * reaches the controller even when an older request's reply comes first.
 * Each controller binds four ports (API, agents, notify, logs): 7470-7473,
 * 7474-7477, 7520-7523 and 7524-7527. App ports 6500-6899.
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

static struct h_cluster C;

static void
fini(void)
{
    h_cleanup(&C);
}

TestSuite(nodes, .fini = fini, .timeout = 120);

#define CLI(out, err, ...) h_cli(&C, out, err, (const char *const[]){__VA_ARGS__, NULL})

static const char *app_dir = DROVER_SOURCE_DIR "/tests/integration/app";
static const char *const ctl_env[] = {"DROVER_NODE_TIMEOUT_MS=1500", "DROVER_HEARTBEAT_MS=300",
                                      NULL};

static long
mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* An agent, its log named log (unique), its data dir DIR/datadir. */
static int
agent(const char *log, const char *node, const char *datadir, const char *ports,
      const char *capacity)
{
    char data[320], name[96], join[96], range[64], cap[64];
    const char *env[] = {data, name, join, range, cap, "DROVER_HEARTBEAT_MS=300", NULL};

    snprintf(data, sizeof(data), "DROVER_DATA_DIR=%s/%s", C.dir, datadir);
    snprintf(name, sizeof(name), "DROVER_NODE_NAME=%s", node);
    snprintf(join, sizeof(join), "DROVER_JOIN=%s", C.join);
    snprintf(range, sizeof(range), "DROVER_PORT_RANGE=%s", ports);
    snprintf(cap, sizeof(cap), "DROVER_CAPACITY=%s", capacity);
    return h_start(&C, log, "drover-agent", env, NULL);
}

static void
setup(const char *test, int base)
{
    char *out = NULL, *err = NULL;
    int idx;

    h_init(&C, test, base);
    idx = h_start_controller(&C, ctl_env);
    cr_assert(h_wait_log(&C, idx, "event=ready", 10000), "controller not ready");
    cr_assert_eq(CLI(NULL, &err, "apps:create", "shop"), 0, "%s", err);
    free(err);
    cr_assert_eq(CLI(&out, &err, "deploy", "shop", app_dir, "--no-wait"), 0, "%s %s", out, err);
    free(out);
    free(err);
}

static bool
wait_web(int up, int total, int timeout_ms, struct h_ps *ps)
{
    long deadline = mono_ms() + timeout_ms;

    do {
        h_get_ps(&C, "shop", ps);
        if (h_ps_count(ps, "web", "up", NULL) == up && ps->n == total)
            return true;
        h_msleep(100);
    } while (mono_ms() < deadline);
    return false;
}

static long
field_long(const char *body, const char *key)
{
    char k[64];
    const char *p;

    snprintf(k, sizeof(k), "\n%s=", key);
    p = strstr(body, k);
    return p != NULL ? strtol(p + strlen(k), NULL, 10) : -1;
}

/* Agents n1 and n2 (app ports ports1, ports2; capacity 10), ready, and
 * web=2 up; returns n1's proc, ps what ps showed. */
static int
web_on_two_nodes(const char *ports1, const char *ports2, struct h_ps *ps)
{
    char *err = NULL;
    int n1 = agent("n1", "n1", "agent-n1", ports1, "10");

    cr_assert(h_wait_log(&C, n1, "event=ready", 10000));
    cr_assert(h_wait_log(&C, agent("n2", "n2", "agent-n2", ports2, "10"), "event=ready", 10000));
    cr_assert_eq(CLI(NULL, &err, "scale", "shop", "web=2"), 0, "%s", err);
    free(err);
    cr_assert(wait_web(2, 2, 30000, ps), "web=2 never came up");
    return n1;
}

/* Wait for proc idx to exit; its status, or -1 on timeout. */
static int
wait_exit(int idx, int timeout_ms)
{
    long deadline = mono_ms() + timeout_ms;
    int status;

    do {
        if (waitpid(C.procs[idx].pid, &status, WNOHANG) == C.procs[idx].pid) {
            C.procs[idx].pid = 0;
            return status;
        }
        h_msleep(20);
    } while (mono_ms() < deadline);
    return -1;
}

Test(nodes, agent_killed_and_restarted_leaves_nothing_unmanaged)
{
    struct h_ps ps;
    const struct j_obj *w;
    char *body;
    pid_t old_pid = 0, grandchild;
    int n1, n1b, port = 0;
    bool settled = false;

    setup("agentkill", 7470);
    n1 = web_on_two_nodes("6500-6549", "6550-6599", &ps);
    for (int i = 0; i < ps.n; i++) {
        if (strcmp(j_get(&ps.o[i], "node"), "n1") == 0) {
            old_pid = atoi(j_get(&ps.o[i], "pid"));
            port = atoi(j_get(&ps.o[i], "port"));
        }
    }
    cr_assert_gt(old_pid, 0);
    body = h_http_get("127.0.0.1", port, 2000);
    cr_assert_not_null(body);
    grandchild = (pid_t)field_long(body, "GRANDCHILD");
    free(body);
    cr_assert_gt(grandchild, 0);

    /* SIGKILL the agent alone: its processes are left behind, unmanaged. */
    kill(C.procs[n1].pid, SIGKILL);
    waitpid(C.procs[n1].pid, NULL, 0);
    C.procs[n1].pid = 0;
    cr_assert(h_pid_alive(old_pid) && h_pid_alive(grandchild));

    /* Back with the same data dir: it takes its name back at once, stops
     * what its predecessor left and starts the instance afresh. */
    n1b = agent("n1-2", "n1", "agent-n1", "6500-6549", "10");
    cr_assert(h_wait_log(&C, n1b, "event=ready", 10000), "restarted agent not ready");
    cr_assert(h_log_has(&C, n1b, "event=orphan_found"), "the orphan was not found");
    for (long t0 = mono_ms(); !settled && mono_ms() - t0 < 15000;) {
        h_get_ps(&C, "shop", &ps);
        w = NULL;
        for (int i = 0; i < ps.n; i++)
            if (strcmp(j_get(&ps.o[i], "node"), "n1") == 0)
                w = &ps.o[i];
        settled = h_ps_count(&ps, "web", "up", NULL) == 2 && ps.n == 2 && w != NULL &&
                  atoi(j_get(w, "pid")) != old_pid && !h_pid_alive(old_pid) &&
                  !h_pid_alive(grandchild) && h_count_procs(C.dir, "python3") == 2;
        if (!settled)
            h_msleep(100);
    }
    cr_assert(settled, "no clean restart: old pid %s, grandchild %s, %d python running",
              h_pid_alive(old_pid) ? "alive" : "gone", h_pid_alive(grandchild) ? "alive" : "gone",
              h_count_procs(C.dir, "python3"));
    cr_assert_not(h_log_has(&C, 0, "event=node_conflict"));
}

Test(nodes, a_taken_node_name_is_refused_with_a_clear_message)
{
    struct h_ps before, after;
    struct j_obj nodes[4];
    char *err = NULL;
    int n1, impostor, st;

    setup("conflict", 7474);
    n1 = agent("n1", "n1", "agent-n1", "6600-6649", "10");
    cr_assert(h_wait_log(&C, n1, "event=ready", 10000));
    cr_assert_eq(CLI(NULL, &err, "scale", "shop", "web=1"), 0, "%s", err);
    free(err);
    cr_assert(wait_web(1, 1, 30000, &before), "web=1 never came up");

    /* Another host (its own data dir) that claims the same name. */
    impostor = agent("impostor", "n1", "agent-impostor", "6650-6699", "10");
    st = wait_exit(impostor, 10000);
    cr_assert(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 1,
              "the second agent named n1 did not exit 1 (status %d)", st);
    cr_assert(h_log_has(&C, impostor, "event=register_refused"));
    cr_assert(h_log_has(&C, impostor, "already taken by a live agent"),
              "the refusal does not say why");
    cr_assert(h_log_has(&C, 0, "event=node_conflict"));
    /* The rightful agent and its instance are untouched. */
    cr_assert(h_pid_alive(C.procs[n1].pid));
    cr_assert_eq(h_get_nodes(&C, nodes, 4), 1);
    cr_assert_str_eq(j_get(&nodes[0], "state"), "ready");
    h_get_ps(&C, "shop", &after);
    cr_assert_eq(after.n, 1);
    cr_assert_str_eq(j_get(&after.o[0], "pid"), j_get(&before.o[0], "pid"));
    cr_assert_str_eq(j_get(&after.o[0], "state"), "up");
}

Test(nodes, scale_beyond_capacity_waits_pending_and_is_placed_when_capacity_appears)
{
    struct h_ps ps;
    char *out = NULL, *err = NULL;
    int pending = 0, idx;

    setup("capacity", 7520);
    cr_assert(
        h_wait_log(&C, agent("n1", "n1", "agent-n1", "6700-6749", "2"), "event=ready", 10000));
    cr_assert(
        h_wait_log(&C, agent("n2", "n2", "agent-n2", "6750-6799", "2"), "event=ready", 10000));
    cr_assert_eq(CLI(&out, &err, "scale", "shop", "web=6"), 0, "%s", err);
    free(out);
    free(err);
    cr_assert(wait_web(4, 6, 30000, &ps), "4 of 6 never came up");
    for (int i = 0; i < ps.n; i++) {
        const struct j_obj *o = &ps.o[i];

        if (strcmp(j_get(o, "state"), "pending") != 0)
            continue;
        pending++;
        cr_assert_str_eq(j_get(o, "node"), "null", "a pending instance has a node");
        cr_assert_str_eq(j_get(o, "reason"), "no ready node with free capacity");
    }
    cr_assert_eq(pending, 2);
    cr_assert_eq(CLI(&out, NULL, "ps", "shop"), 0);
    cr_assert(strstr(out, "no ready node with free capacity") != NULL, "ps:\n%s", out);
    free(out);
    cr_assert_eq(CLI(&out, NULL, "status"), 0);
    cr_assert(strstr(out, "2 pending") != NULL, "status:\n%s", out);
    cr_assert(strstr(out, "no ready node with free capacity") != NULL, "status:\n%s", out);
    free(out);
    cr_assert_eq(CLI(&out, NULL, "status", "--json"), 0);
    cr_assert(strstr(out, "\"pending\": 2") != NULL, "status --json:\n%s", out);
    free(out);

    /* Capacity appears: a third node. The two waiting ones go there. */
    idx = agent("n3", "n3", "agent-n3", "6800-6849", "2");
    cr_assert(h_wait_log(&C, idx, "event=ready", 10000));
    cr_assert(wait_web(6, 6, 30000, &ps), "the pending instances were never placed");
    cr_assert_eq(h_ps_count(&ps, "web", "up", "n3"), 2);
    cr_assert_eq(h_count_procs(C.dir, "python3"), 6);
}

/*
 * A leaving agent's last sync waits for the request already in flight; the
 * reply to that one, built before its instance stopped, is not the answer
 * to the last report. The controller is stopped from before the instance
 * stops until just after, so a request built earlier is always in flight
 * when the last sync is wanted (a heartbeat goes out within 300 ms of the
 * stop, and each one unanswered is replaced at once by a fresh one).
 */
Test(nodes, a_leaving_agent_s_last_report_is_not_taken_as_answered_by_an_older_reply)
{
    struct h_ps ps;
    int n1, ctl = 0, st;
    long mark;

    setup("lastsync", 7524);
    n1 = web_on_two_nodes("6850-6874", "6875-6899", &ps);
    cr_assert_eq(h_ps_count(&ps, "web", "up", "n1"), 1, "web=2 is not spread over both nodes");

    /* SIGTERM: the replacement comes up on n2, then n1 drains its web, which
     * takes its shutdown delay (1 s) to stop. */
    mark = h_log_size(&C, n1);
    kill(C.procs[n1].pid, SIGTERM);
    cr_assert(h_wait_log(&C, n1, "reason=moved", 20000), "n1 never drained");
    cr_assert_eq(h_log_after(&C, n1, "on=group_gone", mark), -1,
                 "the web stopped before its shutdown delay");
    cr_assert_eq(kill(C.procs[ctl].pid, SIGSTOP), 0);
    {
        bool gone = h_wait_log(&C, n1, "on=group_gone", 10000);

        kill(C.procs[ctl].pid, SIGCONT);
        cr_assert(gone, "n1's web never stopped");
    }
    st = wait_exit(n1, 10000);
    /* At once, before n1's silence could make it down: the controller has
     * the last report, which says the web stopped. */
    h_get_ps(&C, "shop", &ps);
    cr_assert(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "n1 exit status %d", st);
    cr_assert_not(h_log_has(&C, n1, "event=last_sync_timeout"),
                  "the last sync went unanswered for its whole wait");
    cr_assert_eq(h_ps_count(&ps, NULL, NULL, "n1"), 0,
                 "the controller never heard that n1's web stopped (%d listed on n1)",
                 h_ps_count(&ps, NULL, NULL, "n1"));
    cr_assert(wait_web(2, 2, 5000, &ps), "web=2 is not what is left");
}
