/* SPDX-License-Identifier: MIT */
/*
 * beat_test.c: sealed UDP heartbeats (issue 15; controller/beat.c,
 * node-agent/conn.c). With them the controller hears every agent once a
 * heartbeat by UDP while holding each agent's watch (its TCP sync) longer,
 * so syncs are rarer and nodes stay up; garbage datagrams are refused and
 * counted; a killed agent is still declared down within the node timeout;
 * and a node whose UDP heartbeats are dropped (an nft rule inside the
 * controller's network namespace) is never declared down: its syncs prove
 * it alive as before. Real controller and agents, the controller's
 * /metrics and log. Controller ports 15780-15783, HTTP 15784, app ports
 * 16500-16649; the nft case uses hosts.c's private namespaces.
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
