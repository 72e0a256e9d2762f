/* SPDX-License-Identifier: MIT */
/*
 * hosts_test.c: drover on separate hosts (hosts.h: network namespaces on a
 * bridge), when hosts fail. Each test has its own hosts, so Criterion may run
 * them in parallel; inside its namespaces a test may use any port.
 *
 *   kill a host              its instances are replaced elsewhere and accept
 *                            within node timeout + 2 s of its death;
 *   cut a host off           its processes keep serving inside it; healed,
 *                            its duplicates are drained within seconds;
 *   SIGKILL the controller   the apps answer throughout, nothing restarts,
 *                            no node is declared down for the controller's
 *                            absence, and a kill at any moment of a scale
 *                            leaves exactly one formation running;
 *   cordon, drain            no new placements; a drain moves everything,
 *                            never running fewer than the formation;
 *   SIGTERM an agent         it leaves the same way and exits 0.
 *
 * The node timeout and heartbeat are small (1500 / 300 ms) so the suite is
 * fast; targets are asserted relative to them.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hosts.h"

#define TIMEOUT_MS 1500
#define HEARTBEAT_MS 300

static struct hn_cluster C;

static void
fini(void)
{
    hn_cleanup(&C);
}

TestSuite(hosts, .fini = fini, .timeout = 150);

#define CLI(out, err, ...) hn_cli(&C, out, err, (const char *const[]){__VA_ARGS__, NULL})

static const char *const ctl_env[] = {"DROVER_NODE_TIMEOUT_MS=1500", "DROVER_HEARTBEAT_MS=300",
                                      NULL};
static const char *const agent_env[] = {"DROVER_HEARTBEAT_MS=300", NULL};
static const char *app_dir = DROVER_SOURCE_DIR "/tests/integration/app";

static long
mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Controller and nagents agents; the app "shop" deployed at web=0. */
static void
setup(const char *test, int nagents)
{
    char *out = NULL, *err = NULL;

    hn_init(&C, test, nagents);
    hn_start_controller(&C, ctl_env);
    for (int i = 1; i <= nagents; i++)
        hn_start_agent(&C, i, agent_env);
    cr_assert_eq(CLI(NULL, &err, "apps:create", "shop"), 0, "%s", err);
    free(err);
    cr_assert_eq(CLI(&out, &err, "deploy", "shop", app_dir, "--no-wait"), 0, "deploy: %s %s", out,
                 err);
    free(out);
    free(err);
}

static void
scale(const char *what1, const char *what2)
{
    char *err = NULL;

    if (what2 != NULL)
        cr_assert_eq(CLI(NULL, &err, "scale", "shop", what1, what2), 0, "scale: %s", err);
    else
        cr_assert_eq(CLI(NULL, &err, "scale", "shop", what1), 0, "scale: %s", err);
    free(err);
}

/* Exactly web webs and worker workers, all up, nothing else listed. */
static bool
formation_up(const struct h_ps *ps, int web, int worker)
{
    return h_ps_count(ps, "web", "up", NULL) == web &&
           h_ps_count(ps, "worker", "up", NULL) == worker && ps->n == web + worker;
}

static bool
wait_formation(int web, int worker, int timeout_ms, struct h_ps *ps)
{
    long deadline = mono_ms() + timeout_ms;

    do {
        h_get_ps(&C.h, "shop", ps);
        if (formation_up(ps, web, worker))
            return true;
        h_msleep(100);
    } while (mono_ms() < deadline);
    return false;
}

/* What ps lists, for a failure's message: "web.1 up n2, ..." (static). */
static const char *
listed(const struct h_ps *ps)
{
    static char buf[2048];
    size_t len = 0;

    buf[0] = '\0';
    for (int i = 0; i < ps->n && len < sizeof(buf); i++)
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s %s %s", i ? ", " : "",
                                j_get(&ps->o[i], "name"), j_get(&ps->o[i], "state"),
                                j_get(&ps->o[i], "node"));
    return buf;
}

/* Does every up web of ps answer on its host:port, asked from host `from`? */
static bool
webs_answer(const struct h_ps *ps, int from)
{
    for (int i = 0; i < ps->n; i++) {
        const struct j_obj *o = &ps->o[i];
        char *body;

        if (strcmp(j_get(o, "type"), "web") != 0 || strcmp(j_get(o, "state"), "up") != 0)
            continue;
        body = hn_http_get(&C, from, j_get(o, "host"), atoi(j_get(o, "port")), 1000);
        if (body == NULL)
            return false;
        free(body);
    }
    return true;
}

static int
ctl_proc(void)
{
    return C.hosts[0].proc;
}

static pid_t
agent_pid(int host)
{
    return C.hosts[host].proc >= 0 ? C.h.procs[C.hosts[host].proc].pid : 0;
}

/* The python processes really running, on every host. */
static int
webs_running(void)
{
    return h_count_procs(C.h.dir, "python3");
}

/* ---- a watcher: the fewest up instances of a type seen while it ran ---- */

struct watcher {
    pid_t pid;
    int fd;
};

/*
 * Fork a child that runs `ps` every 100 ms and remembers the fewest up
 * instances of type seen (as ps shows them: an evicted instance still up
 * counts; one being stopped does not). watch_stop() returns that minimum.
 */
static void
watch_start(struct watcher *w, const char *type)
{
    int fd[2];

    cr_assert_eq(pipe(fd), 0);
    w->pid = fork();
    cr_assert_geq(w->pid, 0);
    if (w->pid == 0) {
        static struct h_ps ps;
        volatile sig_atomic_t stop = 0;
        int min = 1 << 30;
        sigset_t set;

        close(fd[0]);
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigprocmask(SIG_BLOCK, &set, NULL);
        while (!stop) {
            struct timespec zero = {0, 0};
            int n;

            h_get_ps(&C.h, "shop", &ps);
            n = h_ps_count(&ps, type, "up", NULL);
            if (n < min)
                min = n;
            h_msleep(100);
            if (sigtimedwait(&set, NULL, &zero) == SIGTERM)
                stop = 1;
        }
        (void)!write(fd[1], &min, sizeof(min));
        _exit(0);
    }
    close(fd[1]);
    w->fd = fd[0];
}

static int
watch_stop(struct watcher *w)
{
    int min = -1;

    kill(w->pid, SIGTERM);
    if (read(w->fd, &min, sizeof(min)) != (ssize_t)sizeof(min))
        min = -1;
    close(w->fd);
    waitpid(w->pid, NULL, 0);
    return min;
}

/* ---- tests ---- */

Test(hosts, kill_a_host_and_its_instances_are_replaced_in_time)
{
    struct h_ps ps;
    const struct j_obj *w1;
    char node[16], buf[32], *out = NULL;
    int victim, webs_elsewhere = 0;
    long t0, t1 = 0;

    setup("kill", 3);
    scale("web=3", NULL);
    cr_assert(wait_formation(3, 0, 30000, &ps), "web=3 never came up");
    cr_assert(webs_answer(&ps, 0));
    w1 = h_ps_find(&ps, "web.1");
    cr_assert_not_null(w1);
    snprintf(node, sizeof(node), "%s", j_get(w1, "node"));
    victim = hn_host_by_node(&C, node);
    cr_assert_geq(victim, 1);
    webs_elsewhere = h_ps_count(&ps, "web", "up", NULL) - h_ps_count(&ps, "web", "up", node);

    /* SIGKILL the agent and everything it started: the host is dead. */
    t0 = mono_ms();
    hn_kill_host(&C, victim);
    cr_assert_eq(hn_count_in(&C, victim), 0);
    for (;;) {
        h_get_ps(&C.h, "shop", &ps);
        if (h_ps_count(&ps, "web", "up", NULL) - h_ps_count(&ps, "web", "up", node) == 3 &&
            webs_answer(&ps, 0)) {
            t1 = mono_ms();
            break;
        }
        if (mono_ms() - t0 > TIMEOUT_MS + 10000)
            break;
        h_msleep(50);
    }
    cr_assert_neq(t1, 0, "the dead host's web was never replaced");
    fprintf(stderr, "hosts: replacement accepting %ld ms after the host died (target %d ms)\n",
            t1 - t0, TIMEOUT_MS + 2000);
    cr_assert_leq(t1 - t0, TIMEOUT_MS + 2000,
                  "replacement took %ld ms, more than node timeout + 2 s", t1 - t0);
    cr_assert_eq(webs_elsewhere, 2);
    cr_assert_str_eq(h_node_state(&C.h, node, buf, sizeof(buf)), "down");
    /* The replacement went elsewhere, spread, and the lost one is shown. */
    cr_assert_eq(h_ps_count(&ps, "web", "lost", node), 1, "the dead host's web is shown lost");
    cr_assert_eq(CLI(&out, NULL, "status"), 0);
    cr_assert(strstr(out, "lost") != NULL && strstr(out, "down") != NULL, "status:\n%s", out);
    free(out);
    cr_assert_eq(webs_running(), 3, "exactly the formation runs");

    /* The host comes back (its agent restarted): it rejoins, the lost entry
     * goes, and the cluster runs exactly the formation, no more. */
    hn_start_agent(&C, victim, agent_env);
    for (t0 = mono_ms(); mono_ms() - t0 < 5000; h_msleep(100)) {
        h_get_ps(&C.h, "shop", &ps);
        if (formation_up(&ps, 3, 0))
            break;
    }
    cr_assert(formation_up(&ps, 3, 0), "after the rejoin: %d listed", ps.n);
    cr_assert_str_eq(h_node_state(&C.h, node, buf, sizeof(buf)), "ready");
    cr_assert_eq(webs_running(), 3, "a duplicate after the rejoin");
}

Test(hosts, cut_a_host_off_it_keeps_serving_then_heals_without_duplicates)
{
    struct h_ps ps;
    const struct j_obj *w1;
    char node[16], addr[32], buf[32], *body;
    int victim, port, old_pid;
    long t0, deadline;
    bool replaced = false, settled = false;

    setup("cut", 3);
    scale("web=3", NULL);
    cr_assert(wait_formation(3, 0, 30000, &ps), "web=3 never came up");
    w1 = h_ps_find(&ps, "web.1");
    snprintf(node, sizeof(node), "%s", j_get(w1, "node"));
    snprintf(addr, sizeof(addr), "%s", j_get(w1, "host"));
    port = atoi(j_get(w1, "port"));
    old_pid = atoi(j_get(w1, "pid"));
    victim = hn_host_by_node(&C, node);
    cr_assert_geq(victim, 1);

    hn_cut(&C, victim);
    t0 = mono_ms();
    /* Replaced elsewhere, like a dead host... */
    while (!replaced && mono_ms() - t0 < TIMEOUT_MS + 10000) {
        h_get_ps(&C.h, "shop", &ps);
        replaced = h_ps_count(&ps, "web", "up", NULL) - h_ps_count(&ps, "web", "up", node) == 3 &&
                   webs_answer(&ps, 0);
        if (!replaced)
            h_msleep(100);
    }
    cr_assert(replaced, "the cut-off host's web was never replaced");
    cr_assert_str_eq(h_node_state(&C.h, node, buf, sizeof(buf)), "down");
    /* ...but inside, cut off, its agent and its process go on serving. */
    cr_assert(h_pid_alive(agent_pid(victim)), "the cut-off agent died");
    body = hn_http_get(&C, victim, addr, port, 2000);
    cr_assert_not_null(body, "the cut-off host's web stopped serving inside it");
    cr_assert(strstr(body, "DYNO=web.1") != NULL, "%s", body);
    free(body);
    cr_assert_null(hn_http_get(&C, 0, addr, port, 500), "the host is not cut off");
    h_msleep(TIMEOUT_MS); /* a while longer: still serving */
    body = hn_http_get(&C, victim, addr, port, 2000);
    cr_assert_not_null(body, "the cut-off host's web stopped serving inside it");
    free(body);
    cr_assert_eq(webs_running(), 4, "during the partition: 3 replacing + 1 cut off");

    /* Heal: within a few seconds, exactly the formation, no duplicate. */
    hn_heal(&C, victim);
    t0 = mono_ms();
    deadline = t0 + 5000;
    while (!settled && mono_ms() < deadline) {
        h_get_ps(&C.h, "shop", &ps);
        settled = formation_up(&ps, 3, 0) && webs_running() == 3 && !h_pid_alive(old_pid);
        if (!settled)
            h_msleep(100);
    }
    cr_assert(settled, "5 s after healing: %d listed, %d webs running, old pid %s", ps.n,
              webs_running(), h_pid_alive(old_pid) ? "alive" : "gone");
    fprintf(stderr, "hosts: duplicates drained %ld ms after the partition healed\n",
            mono_ms() - t0);
    cr_assert_str_eq(h_node_state(&C.h, node, buf, sizeof(buf)), "ready");
    cr_assert(webs_answer(&ps, 0));
}

/* Kill the controller and start it again on the same data dir. */
static void
restart_controller(void)
{
    struct h_proc *p = &C.h.procs[ctl_proc()];

    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    p->pid = 0;
    hn_start_controller(&C, ctl_env);
}

Test(hosts, sigkill_the_controller_apps_answer_throughout_and_nothing_doubles)
{
    struct h_ps before, ps;
    int old_web = 3;
    long t0;

    setup("ctlkill", 3);
    scale("web=3", "worker=2");
    cr_assert(wait_formation(3, 2, 30000, &before), "web=3 worker=2 never came up");

    /* Away for twice the node timeout: the apps answer all along. */
    kill(C.h.procs[ctl_proc()].pid, SIGKILL);
    waitpid(C.h.procs[ctl_proc()].pid, NULL, 0);
    C.h.procs[ctl_proc()].pid = 0;
    t0 = mono_ms();
    while (mono_ms() - t0 < 2 * TIMEOUT_MS) {
        cr_assert(webs_answer(&before, 0),
                  "an app stopped answering while the controller was away");
        h_msleep(100);
    }
    hn_start_controller(&C, ctl_env);
    /* Back: a grace period, not a verdict. For twice the timeout nothing is
     * declared down, restarted or started twice. */
    t0 = mono_ms();
    while (mono_ms() - t0 < 2 * TIMEOUT_MS) {
        cr_assert(webs_answer(&before, 0), "an app stopped answering after the restart");
        h_msleep(100);
    }
    cr_assert_not(h_log_has(&C.h, ctl_proc(), "event=node_down"),
                  "the restarted controller declared a node down");
    cr_assert(wait_formation(3, 2, 10000, &ps));
    for (int i = 0; i < before.n; i++) {
        const struct j_obj *o = h_ps_find(&ps, j_get(&before.o[i], "name"));

        cr_assert_not_null(o);
        cr_assert_str_eq(j_get(o, "pid"), j_get(&before.o[i], "pid"), "%s was restarted",
                         j_get(o, "name"));
    }
    cr_assert_eq(webs_running(), 3);

    /* SIGKILL at any moment of a scale: acknowledged means kept, and once
     * settled exactly one formation runs. */
    srand((unsigned)getpid());
    for (int round = 0; round < 5; round++) {
        int target = round % 2 == 0 ? 5 : 2, status = 0, want_any[2] = {old_web, target};
        char what[16];
        bool acked, settled = false;
        pid_t cli;

        snprintf(what, sizeof(what), "web=%d", target);
        cli = fork();
        cr_assert_geq(cli, 0);
        if (cli == 0)
            _exit(CLI(NULL, NULL, "scale", "shop", what) == 0 ? 0 : 1);
        h_msleep(rand() % 400); /* before, during or after the reply, or mid-start */
        restart_controller();
        waitpid(cli, &status, 0);
        acked = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        for (t0 = mono_ms(); !settled && mono_ms() - t0 < 20000;) {
            int web;

            h_get_ps(&C.h, "shop", &ps);
            web = h_ps_count(&ps, "web", "up", NULL);
            settled = (web == target || (!acked && web == want_any[0])) &&
                      formation_up(&ps, web, 2) && webs_running() == web;
            if (settled)
                old_web = web;
            else
                h_msleep(100);
        }
        cr_assert(settled, "round %d (web=%d, %s): never settled; %d listed, %d webs running",
                  round, target, acked ? "acknowledged" : "not acknowledged", ps.n, webs_running());
        fprintf(stderr, "hosts: kill during scale web=%d: %s, web=%d settled in %ld ms\n", target,
                acked ? "acknowledged" : "not acknowledged", old_web, mono_ms() - t0);
        for (int i = 1; i <= old_web; i++) {
            char name[16];

            snprintf(name, sizeof(name), "web.%d", i);
            cr_assert_not_null(h_ps_find(&ps, name), "round %d: no %s", round, name);
        }
    }
}

Test(hosts, cordon_and_drain_a_node)
{
    struct h_ps ps, before;
    struct watcher w;
    char buf[32], *out = NULL, *err = NULL;
    int on_n1, min_up;

    setup("drain", 3);
    scale("web=3", "worker=1");
    cr_assert(wait_formation(3, 1, 30000, &before), "web=3 worker=1 never came up");

    /* Cordon: nothing new lands there, what runs there stays. */
    cr_assert_eq(CLI(&out, &err, "nodes:cordon", "n1"), 0, "%s", err);
    cr_assert(strstr(out, "cordoned") != NULL, "%s", out);
    free(out);
    free(err);
    cr_assert_str_eq(h_node_state(&C.h, "n1", buf, sizeof(buf)), "cordoned");
    on_n1 = h_ps_count(&before, NULL, NULL, "n1");
    scale("web=6", NULL);
    cr_assert(wait_formation(6, 1, 30000, &ps), "web=6 never came up");
    cr_assert_eq(h_ps_count(&ps, NULL, NULL, "n1"), on_n1, "a cordoned node got new instances");
    cr_assert_eq(CLI(NULL, &err, "nodes:uncordon", "n1"), 0, "%s", err);
    free(err);
    cr_assert_str_eq(h_node_state(&C.h, "n1", buf, sizeof(buf)), "ready");
    cr_assert_eq(CLI(NULL, &err, "nodes:cordon", "nope"), 1, "an unknown node");
    cr_assert(strstr(err, "nope") != NULL, "%s", err);
    free(err);
    cr_assert_eq(CLI(NULL, NULL, "nodes:drain"), 2, "no NODE is bad usage");

    /* Drain n2: the command returns once it is empty, and meanwhile the
     * app never ran fewer than its formation (replacements first). */
    cr_assert_gt(h_ps_count(&ps, NULL, NULL, "n2"), 0);
    watch_start(&w, "web");
    cr_assert_eq(CLI(&out, &err, "nodes:drain", "n2", "--timeout", "60"), 0, "drain: %s %s", out,
                 err);
    min_up = watch_stop(&w);
    fprintf(stderr, "hosts: drain output:\n%s", out);
    cr_assert(strstr(out, "n2 is drained") != NULL, "%s", out);
    free(out);
    free(err);
    cr_assert_geq(min_up, 6, "fewer than 6 webs up during the drain (%d)", min_up);
    cr_assert(wait_formation(6, 1, 10000, &ps));
    cr_assert_eq(h_ps_count(&ps, NULL, NULL, "n2"), 0, "n2 still holds instances");
    cr_assert_str_eq(h_node_state(&C.h, "n2", buf, sizeof(buf)), "draining");
    cr_assert_eq(webs_running(), 6);
    cr_assert(webs_answer(&ps, 0));
    cr_assert_eq(CLI(&out, NULL, "status"), 0);
    cr_assert(strstr(out, "draining") != NULL, "status:\n%s", out);
    free(out);
    /* Undrained, it takes instances again. */
    cr_assert_eq(CLI(NULL, NULL, "nodes:uncordon", "n2"), 0);
    scale("web=9", NULL);
    cr_assert(wait_formation(9, 1, 30000, &ps), "web=9 never came up");
    cr_assert_gt(h_ps_count(&ps, NULL, NULL, "n2"), 0, "an uncordoned node got nothing");
}

Test(hosts, sigterm_an_agent_it_leaves_replacements_first_and_exits_0)
{
    struct h_ps ps;
    struct watcher w;
    const struct j_obj *w2;
    char node[16];
    int victim, st, min_up;

    setup("leave", 3);
    scale("web=3", NULL);
    cr_assert(wait_formation(3, 0, 30000, &ps), "web=3 never came up");
    w2 = h_ps_find(&ps, "web.2");
    snprintf(node, sizeof(node), "%s", j_get(w2, "node"));
    victim = hn_host_by_node(&C, node);

    watch_start(&w, "web");
    st = h_stop(&C.h, C.hosts[victim].proc, 30000);
    min_up = watch_stop(&w);
    cr_assert(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "agent exit status %d", st);
    cr_assert(h_log_has(&C.h, C.hosts[victim].proc, "reason=moved"),
              "the agent drained before its instances were moved");
    C.hosts[victim].proc = -1;
    cr_assert_geq(min_up, 3, "fewer than 3 webs up while the agent left (%d)", min_up);
    cr_assert(wait_formation(3, 0, 10000, &ps), "not web=3 alone: %s", listed(&ps));
    cr_assert_eq(h_ps_count(&ps, NULL, NULL, node), 0);
    cr_assert_eq(hn_count_in(&C, victim), 0, "something is left running on the host");
    cr_assert_eq(webs_running(), 3);
    cr_assert(webs_answer(&ps, 0));
}
