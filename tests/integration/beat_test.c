/* SPDX-License-Identifier: MIT */
/*
 * beat_test.c: sealed UDP heartbeats (issue 15; controller/beat.c,
 * node-agent/conn.c). With them the controller hears every agent once a
 * heartbeat by UDP while holding each agent's watch (its TCP sync) longer,
 * so syncs are rarer and nodes stay up; garbage datagrams are refused and
 * counted; a killed agent is still declared down within the node timeout;
 * and a node whose UDP heartbeats are dropped (an nft rule inside the
 * controller's network namespace) is never declared down: its syncs prove
 * it alive as before; a watch answer lost on a connection that died without
 * a sign is followed by a summons, seconds after, not at the 300 s hold's
 * end. Real controller and agents, the controller's /metrics and log.
 * Controller ports 15780-15783, HTTP 15784, app ports 16500-16649; the nft
 * cases use hosts.c's private namespaces.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "hosts.h"

#define HEARTBEAT_MS 300
#define TIMEOUT_MS 3000
#define HTTP 15784

static struct h_cluster C;
static struct hn_cluster H;

static void
fini(void)
{
    h_cleanup(&C);
    hn_cleanup(&H);
}

TestSuite(beat, .fini = fini, .timeout = 90);

#define ACCEPTED "drover_heartbeats_udp_total{result=\"accepted\"}"
#define REFUSED "drover_heartbeats_udp_total{result=\"refused\"}"
#define SUMMONSES "drover_summonses_total"
#define SYNCS "drover_agent_syncs_total"
#define WATCHES "drover_agent_watches_total"

/* One datagram to the controller's agent port. */
static void
send_datagram(int port, const void *buf, size_t len)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    cr_assert_geq(fd, 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(sendto(fd, buf, len, 0, (struct sockaddr *)&sa, sizeof sa), (ssize_t)len);
    close(fd);
}

static bool
node_down(struct h_cluster *c, const char *node)
{
    char st[64];
    const char *s = h_node_state(c, node, st, sizeof st);

    return s != NULL && strcmp(s, "down") == 0;
}

Test(beat, udp_heartbeats_keep_nodes_up_with_rarer_syncs_and_garbage_is_refused)
{
    const char *env[] = {"DROVER_HEARTBEAT_MS=300", "DROVER_NODE_TIMEOUT_MS=3000",
                         "DROVER_HTTP_LISTEN=127.0.0.1:15784", NULL};
    const char *agent_env[] = {"DROVER_HEARTBEAT_MS=300", NULL};
    long a0, s0, a1, s1, r0, t0, window = 6000;
    unsigned char junk[200];

    h_start_cluster(&C, "beat-up", 15780, 3, 16500, 50, env, agent_env);
    cr_assert(h_wait_log(&C, 0, "event=udp_heartbeats enabled=1", 1000));
    h_msleep(2 * HEARTBEAT_MS * 4); /* past the first syncs: watches held long */
    a0 = h_metric(HTTP, ACCEPTED);
    s0 = h_metric(HTTP, SYNCS) + h_metric(HTTP, WATCHES);
    cr_assert_geq(a0, 0, "no drover_heartbeats_udp_total");
    h_msleep((int)window);
    a1 = h_metric(HTTP, ACCEPTED);
    s1 = h_metric(HTTP, SYNCS) + h_metric(HTTP, WATCHES);
    /* Three agents, one datagram each a heartbeat: 60 in 6 s (some slack
     * for a loaded machine). */
    cr_assert_geq(a1 - a0, 42, "UDP heartbeats accepted in %ld ms: %ld", window, a1 - a0);
    /* Without UDP a quiet sync is held one heartbeat: 60 syncs. With it,
     * agents that take summonses (beat.c) are held 30 s while their
     * datagrams come: no watch taken after the first syncs ends in the
     * window. */
    cr_assert_leq(s1 - s0, 3, "syncs in %ld ms: %ld (UDP heartbeats: %ld)", window, s1 - s0,
                  a1 - a0);
    cr_assert_eq(h_metric(HTTP, SUMMONSES), 0, "a quiet cluster summoned its nodes");
    cr_assert_not(node_down(&C, "n1"));
    cr_assert_not(node_down(&C, "n2"));
    cr_assert_not(node_down(&C, "n3"));
    cr_assert_not(h_log_has(&C, 0, "event=node_down"));

    /* Garbage is counted as refused, and the controller carries on. */
    r0 = h_metric(HTTP, REFUSED);
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(i * 37 + 1);
    send_datagram(15781, junk, sizeof junk);
    send_datagram(15781, "", 0);
    for (t0 = h_mono_ms(); h_metric(HTTP, REFUSED) < r0 + 2 && h_mono_ms() - t0 < 2000;)
        h_msleep(50);
    cr_assert_geq(h_metric(HTTP, REFUSED), r0 + 2, "refused %ld, was %ld", h_metric(HTTP, REFUSED),
                  r0);
    cr_assert(h_pid_alive(C.procs[0].pid));

    /* A killed agent is down within the node timeout (its UDP heartbeats
     * stop with it). One node of three: a minority, judged at once
     * (liveness.c). */
    kill(-C.procs[3].pid, SIGKILL);
    t0 = h_mono_ms();
    cr_assert(h_wait_log(&C, 0, "event=node_down node=n3", TIMEOUT_MS + 1500),
              "n3 not declared down %ld ms after its agent was killed", h_mono_ms() - t0);
    cr_assert_lt(h_mono_ms() - t0, TIMEOUT_MS + 1500);
    cr_assert_not(h_log_has(&C, 0, "event=node_down node=n1"));
    cr_assert_not(h_log_has(&C, 0, "event=node_down node=n2"));
}

/* Run an nft script inside namespace ns; 0 on success. */
static int
nft_in(const char *ns, const char *script)
{
    char cmd[1024];

    snprintf(cmd, sizeof cmd,
             "nsenter --net=/var/run/netns/%s nft -f - >/dev/null 2>&1 <<'EOF'\n%s\nEOF", ns,
             script);
    return system(cmd);
}

/* Packets the rule's counter saw, or -1. */
static long
nft_dropped(const char *ns)
{
    char cmd[256], line[512];
    const char *p;
    long v = -1;
    FILE *f;

    snprintf(cmd, sizeof cmd,
             "nsenter --net=/var/run/netns/%s nft list table inet beat 2>/dev/null", ns);
    if ((f = popen(cmd, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if ((p = strstr(line, "counter packets ")) != NULL)
            v = strtol(p + strlen("counter packets "), NULL, 10);
    pclose(f);
    return v;
}

Test(beat, a_node_whose_udp_heartbeats_are_dropped_is_never_declared_down)
{
    const char *ctl_env[] = {"DROVER_HEARTBEAT_MS=300", "DROVER_NODE_TIMEOUT_MS=1500", NULL};
    const char *agent_env[] = {"DROVER_HEARTBEAT_MS=300", NULL};
    char st[64];

    if (system("command -v nft >/dev/null 2>&1") != 0)
        cr_skip_test("nft (package nftables) is not installed: cannot drop UDP in a namespace");
    hn_init(&H, "beat-drop", 1);
    hn_start_controller(&H, ctl_env);
    hn_start_agent(&H, 1, agent_env);
    h_msleep(1000);
    /* Every UDP datagram to the agent endpoint's port is dropped on the
     * controller's host from now on; TCP is untouched. */
    cr_assert_eq(nft_in(H.hosts[0].ns, "table inet beat {\n"
                                       "  chain in {\n"
                                       "    type filter hook input priority 0; policy accept;\n"
                                       "    udp dport 7401 counter drop\n"
                                       "  }\n"
                                       "}"),
                 0, "nft refused the rule");
    /* Four node timeouts: the held watch of a node last heard by UDP ends
     * within half a timeout, and from then on it is held one heartbeat. */
    h_msleep(4 * 1500);
    cr_assert_not(h_log_has(&H.h, H.hosts[0].proc, "event=node_down"),
                  "the node was declared down with only its UDP heartbeats dropped");
    cr_assert_str_neq(h_node_state(&H.h, "n1", st, sizeof st), "down");
    /* And the rule did drop the agent's heartbeats. */
    cr_assert_gt(nft_dropped(H.hosts[0].ns), 4, "the nft rule dropped %ld datagrams",
                 nft_dropped(H.hosts[0].ns));
}

/* The agent's connections to the controller's agent endpoint (port 7401 on
 * ctl_addr), as the agent's host sees them: their local ports, as an nft
 * set ("{ 1, 2 }") in set; how many. */
static int
agent_conn_ports(const char *ns, const char *ctl_addr, char *set, size_t setsz)
{
    char cmd[512], line[512];
    size_t off = 0;
    int n = 0;
    FILE *f;

    snprintf(cmd, sizeof cmd,
             "nsenter --net=/var/run/netns/%s ss -Htn state established dst %s:7401 2>/dev/null",
             ns, ctl_addr);
    if ((f = popen(cmd, "r")) == NULL)
        return 0;
    off += (size_t)snprintf(set, setsz, "{ ");
    while (fgets(line, sizeof line, f) != NULL && off < setsz) {
        char local[128];
        const char *colon;

        /* Recv-Q Send-Q Local:Port Peer:Port */
        if (sscanf(line, "%*s %*s %127s", local) == 1 && (colon = strrchr(local, ':')) != NULL)
            off +=
                (size_t)snprintf(set + off, setsz - off, "%s%d", n++ ? ", " : "", atoi(colon + 1));
    }
    pclose(f);
    if (off < setsz)
        snprintf(set + off, setsz - off, " }");
    return n;
}

static bool
workers_up(int n, int timeout_ms)
{
    long deadline = h_mono_ms() + timeout_ms;
    struct h_ps ps;

    do {
        h_get_ps(&H.h, "shop", &ps);
        if (h_ps_count(&ps, "worker", "up", NULL) == n && ps.n == n)
            return true;
        h_msleep(100);
    } while (h_mono_ms() < deadline);
    return false;
}

/*
 * The watch of a node that takes summonses is held 300 s (controller/ctl.h):
 * what finds a connection that died without a sign is not the hold's end
 * but the summons that follows an answer no sync followed. Here every
 * packet from the controller to the agent's open connections is dropped (an
 * nft rule on the controller's host, matching their ports only, so a new
 * connection passes), then a scale changes the node's set: the answer to
 * its watch is lost. The agent must be summoned, dial again and run the new
 * instance within seconds, not at the hold's end.
 */
Test(beat, a_watch_answer_lost_on_a_dead_connection_is_followed_by_a_summons)
{
    const char *ctl_env[] = {"DROVER_HEARTBEAT_MS=300", "DROVER_NODE_TIMEOUT_MS=3000", NULL};
    const char *agent_env[] = {"DROVER_HEARTBEAT_MS=300", NULL};
    const char *app_dir = DROVER_SOURCE_DIR "/tests/integration/app";
    char *out = NULL, *err = NULL, rule[512], ports[128];
    long t0, assigned, summoned, silent;
    int agent;

    if (system("command -v nft >/dev/null 2>&1") != 0)
        cr_skip_test("nft (package nftables) is not installed: cannot drop a connection's packets");
    hn_init(&H, "beat-lost", 1);
    hn_start_controller(&H, ctl_env);
    agent = hn_start_agent(&H, 1, agent_env);
    cr_assert_eq(hn_cli(&H, NULL, &err, (const char *const[]){"apps:create", "shop", NULL}), 0,
                 "%s", err);
    free(err);
    cr_assert_eq(
        hn_cli(&H, &out, &err, (const char *const[]){"deploy", "shop", app_dir, "--no-wait", NULL}),
        0, "deploy: %s %s", out, err);
    free(out);
    free(err);
    cr_assert_eq(
        hn_cli(&H, NULL, &err, (const char *const[]){"scale", "shop", "web=0", "worker=1", NULL}),
        0, "%s", err);
    free(err);
    cr_assert(workers_up(1, 20000), "worker=1 never came up");
    h_msleep(1500); /* the agent's quiet sync is a held watch now */
    cr_assert_gt(agent_conn_ports(H.hosts[1].ns, H.hosts[0].addr, ports, sizeof ports), 0,
                 "the agent's connections to %s:7401 were not found", H.hosts[0].addr);
    snprintf(rule, sizeof rule,
             "table inet beat {\n"
             "  chain out {\n"
             "    type filter hook output priority 0; policy accept;\n"
             "    ip daddr %s tcp sport 7401 tcp dport %s counter drop\n"
             "  }\n"
             "}",
             H.hosts[1].addr, ports);
    cr_assert_eq(nft_in(H.hosts[0].ns, rule), 0, "nft refused the rule");
    t0 = h_mono_ms();
    cr_assert_eq(hn_cli(&H, NULL, &err, (const char *const[]){"scale", "shop", "worker=2", NULL}),
                 0, "%s", err);
    free(err);
    cr_assert(workers_up(2, 10000), "worker=2 not up %ld ms after the scale (the hold is 300 s)",
              h_mono_ms() - t0);
    cr_log_info("beat: a lost watch answer: worker=2 up %ld ms after the scale", h_mono_ms() - t0);
    /* And it was the summons that brought it: the agent's own silence
     * check (a report unanswered past its wait: conn.c, on_silent) would
     * redial too, seconds later. */
    assigned = h_log_at(&H.h, agent, "event=assigned app=shop inst=worker.2");
    summoned = h_log_at(&H.h, agent, "event=summoned");
    silent = h_log_at(&H.h, agent, "event=controller_silent");
    cr_assert_geq(assigned, 0, "worker.2 was never assigned in the agent's log");
    cr_assert(summoned >= 0 && summoned < assigned,
              "the agent was not summoned before worker.2 reached it (at %ld, %ld)", summoned,
              assigned);
    cr_assert(silent < 0 || silent > assigned,
              "the agent's own silence check, not the summons, found the lost answer");
    cr_assert_gt(nft_dropped(H.hosts[0].ns), 0, "the rule dropped nothing: no answer was lost");
}
