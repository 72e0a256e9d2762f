/* SPDX-License-Identifier: MIT */
/*
 * exhaust_test.c: an agent on a host with no ephemeral port left does not
 * die. nanomsg 1.1.5 aborts a process whose dial fails in bind() and is
 * retried (common/dialcheck.c), which is what happens when thousands of
 * connections closed in a row leave the ephemeral range full of TIME_WAIT.
 * Here the host is a network namespace of its own whose ephemeral range is
 * ten ports (10990-10999), all held by a helper process: the agent must say
 * why it cannot dial (event=dial_failed), keep running, and register once
 * the ports are free again; the CLI there says why it cannot dial. And a controller whose
 * descriptors run out (a low RLIMIT_NOFILE, a flood of connections) says so
 * (event=descriptors_low), keeps serving, and says when they are back.
 * Controller ports 7744-7747 (in the namespace) and 7748-7751, app ports
 * 10900-10909 (inside the namespace).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static struct h_cluster C;
static char NS[32];
static pid_t holder = -1;

static void
release_ports(void)
{
    if (holder > 0) {
        kill(holder, SIGKILL);
        waitpid(holder, NULL, 0);
        holder = -1;
    }
}

static void
fini(void)
{
    char cmd[96];

    release_ports();
    h_cleanup(&C);
    if (NS[0] != '\0') {
        snprintf(cmd, sizeof(cmd), "ip netns del %s 2>/dev/null", NS);
        if (system(cmd) != 0)
            fprintf(stderr, "exhaust: could not remove %s\n", NS);
    }
}

TestSuite(exhaust, .fini = fini, .timeout = 90);

static void
sh(const char *cmd)
{
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

/* A namespace with loopback up and a ten-port ephemeral range. */
static void
make_ns(void)
{
    if (geteuid() != 0 || system("command -v ip >/dev/null") != 0)
        cr_skip_test("needs root and ip(8) for a network namespace");
    char cmd[256];

    snprintf(NS, sizeof(NS), "drx%d", (int)getpid());
    snprintf(cmd, sizeof(cmd), "ip netns add %s", NS);
    sh(cmd);
    snprintf(cmd, sizeof(cmd), "ip netns exec %s ip link set lo up", NS);
    sh(cmd);
    snprintf(cmd, sizeof(cmd),
             "ip netns exec %s sysctl -qw net.ipv4.ip_local_port_range='10990 10999'", NS);
    sh(cmd);
}

/* A process in NS binding sockets to port 0 until none is left, holding
 * them until killed; returns how many it holds. */
static int
hold_ports(void)
{
    int p[2], n = 0;

    cr_assert_eq(pipe(p), 0);
    holder = fork();
    cr_assert_geq(holder, 0);
    if (holder == 0) {
        close(p[0]);
        if (h_enter_netns(NS) < 0)
            _exit(1);
        for (;;) {
            struct sockaddr_in sin = {.sin_family = AF_INET};
            int fd = socket(AF_INET, SOCK_STREAM, 0);

            if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
                break;
            n++;
        }
        if (write(p[1], &n, sizeof(n)) != sizeof(n))
            _exit(1);
        pause();
        _exit(0);
    }
    close(p[1]);
    cr_assert_eq(read(p[0], &n, sizeof(n)), (ssize_t)sizeof(n));
    close(p[0]);
    return n;
}

Test(exhaust, agent_waits_for_a_port_instead_of_aborting)
{
    char data[320], api[96], agents[96], adata[320], join[96], state[64];
    int ctl, agt, held;

    make_ns();
    h_init(&C, "exhaust", 7744);
    snprintf(C.netns, sizeof(C.netns), "%s", NS);
    snprintf(data, sizeof(data), "DROVER_DATA_DIR=%s/controller", C.dir);
    snprintf(api, sizeof(api), "DROVER_API_LISTEN=%s", C.api);
    snprintf(agents, sizeof(agents), "DROVER_AGENT_LISTEN=%s", C.join);
    ctl = h_start(&C, "controller", "drover-controller",
                  (const char *const[]){data, api, agents, "DROVER_HEARTBEAT_MS=300", NULL}, NS);
    cr_assert(h_wait_log(&C, ctl, "event=ready", 15000), "the controller did not start");

    held = hold_ports();
    cr_assert(held >= 1 && held <= 10, "held %d ephemeral ports", held);

    snprintf(adata, sizeof(adata), "DROVER_DATA_DIR=%s/agent-n1", C.dir);
    snprintf(join, sizeof(join), "DROVER_JOIN=%s", C.join);
    agt = h_start(&C, "n1", "drover-agent",
                  (const char *const[]){adata, join, "DROVER_NODE_NAME=n1",
                                        "DROVER_PORT_RANGE=10900-10909", "DROVER_HEARTBEAT_MS=300",
                                        NULL},
                  NS);
    /* Unguarded, nanomsg retries the dial after 100 ms and aborts. */
    h_msleep(2000);
    cr_assert(h_pid_alive(C.procs[agt].pid) && !h_log_has(&C, agt, "Assertion failed"),
              "the agent died without a port");
    cr_assert(h_wait_log(&C, agt, "event=dial_failed", 10000), "the agent did not say why");
    cr_assert(h_log_has(&C, agt, "no free ephemeral port"));
    /* The CLI, on the same host, says why it cannot dial and exits. */
    char *err = NULL;
    int cli = h_cli(&C, NULL, &err, (const char *const[]){"nodes", NULL});
    cr_assert(cli != 0 && err != NULL && strstr(err, "no free local port") != NULL,
              "cli exit %d: %s", cli, err ? err : "");
    free(err);
    cr_assert(!h_log_has(&C, agt, "event=ready"), "registered with no port to dial from?");

    release_ports();
    cr_assert(h_wait_log(&C, agt, "event=ready", 20000),
              "the agent did not register once ports were free");
    cr_assert_str_eq(h_node_state(&C, "n1", state, sizeof(state)), "ready");
    cr_assert(h_pid_alive(C.procs[agt].pid));
}

Test(exhaust, controller_out_of_descriptors_says_so_and_serves)
{
    char data[320], api[96], agents[96], *out = NULL;
    const char *prlimit = "/usr/bin/prlimit";
    int ctl, fds[200], n = 0;

    if (access(prlimit, X_OK) != 0)
        cr_skip_test("needs prlimit (util-linux)");
    h_init(&C, "exhaust-fd", 7748);
    snprintf(data, sizeof(data), "DROVER_DATA_DIR=%s/controller", C.dir);
    snprintf(api, sizeof(api), "DROVER_API_LISTEN=%s", C.api);
    snprintf(agents, sizeof(agents), "DROVER_AGENT_LISTEN=%s", C.join);
    char path[512];
    snprintf(path, sizeof(path), "%s/drover-controller", h_bin_dir());
    ctl = h_start_cmd(&C, "controller", (const char *const[]){prlimit, "--nofile=64", path, NULL},
                      (const char *const[]){data, api, agents, "DROVER_CLUSTER_KEY=" H_CLUSTER_KEY,
                                            "DROVER_API_TOKEN=" H_API_TOKEN, NULL});
    cr_assert(h_wait_log(&C, ctl, "event=ready", 15000), "the controller did not start");
    cr_assert(!h_log_has(&C, ctl, "event=descriptors_low"));

    /* More connections than it has descriptors left. */
    for (n = 0; n < 100; n++) {
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(7749)};

        inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
        fds[n] = socket(AF_INET, SOCK_STREAM, 0);
        cr_assert_geq(fds[n], 0);
        cr_assert_eq(connect(fds[n], (struct sockaddr *)&sin, sizeof(sin)), 0, "%s",
                     strerror(errno));
    }
    cr_assert(h_wait_log(&C, ctl, "event=descriptors_low", 10000), "no word of the shortage");
    cr_assert(h_log_has(&C, ctl, "RLIMIT_NOFILE"));
    h_msleep(1000);
    cr_assert(h_pid_alive(C.procs[ctl].pid), "the controller died out of descriptors");
    while (n > 0)
        close(fds[--n]);
    cr_assert(h_wait_log(&C, ctl, "event=descriptors_ok", 10000), "no word of the recovery");
    cr_assert_eq(h_cli(&C, &out, NULL, (const char *const[]){"nodes", NULL}), 0);
    free(out);
    cr_assert(h_pid_alive(C.procs[ctl].pid));
    cr_assert(!h_log_has(&C, ctl, "Assertion failed"));
}
