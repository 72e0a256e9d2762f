/* SPDX-License-Identifier: MIT */
/*
 * hosts.h: a cluster of separate hosts for integration tests, made of
 * network namespaces. Host 0 runs the controller, hosts 1..N one agent each;
 * every host has its own network stack and one address in 198.18.0.0/15 on
 * a veth pair whose other end is a port of one bridge. Built on harness.h:
 * the processes, logs and CLI are the same, the CLI runs inside host 0.
 *
 * Names carry the test process's pid so that concurrent runs never meet:
 * namespaces drh<pid>-c and drh<pid>-n<i>, bridge drhbr<pid>, veth ends
 * drh<pid>h<i>, addresses 198.18.<pid-derived>.0/24 (the bridge has no
 * address, so even equal subnets of two runs could not collide), temp dir
 * /tmp/drover-it-drh<pid>-TEST.*. hn_init first removes whatever a crashed
 * earlier run left (drh* names and dirs whose pid is dead or a zombie);
 * hn_cleanup, called from the suite's .fini, removes everything of this run
 * even when an assertion failed. When the machine cannot do it
 * (not root, no `ip`, no network namespaces) hn_init says why and skips the
 * test (cr_skip_test): a skip, never a pass.
 */
#ifndef DROVER_HOSTS_H
#define DROVER_HOSTS_H

#include <stdbool.h>

#include "harness.h"

#define HN_MAX_HOSTS 6

struct hn_host {
    char ns[32];   /* network namespace */
    char veth[32]; /* the bridge-side end of its veth pair (at most 15 chars) */
    char addr[48]; /* its address (no prefix length) */
    char node[16]; /* agent hosts: the node name, n<i> */
    int proc;      /* index in h.procs of its daemon, -1 when none runs */
    int starts;    /* daemons started here so far (log names) */
};

struct hn_cluster {
    struct h_cluster h;
    char bridge[32]; /* at most 15 chars */
    char net[32];    /* "198.18.X" */
    int nhosts;      /* host 0 is the controller's */
    struct hn_host hosts[HN_MAX_HOSTS];
    bool made; /* something was created: cleanup has work */
};

/* Make 1 + nagents hosts (skips the test when impossible). */
void hn_init(struct hn_cluster *c, const char *test, int nagents);

/* Start the controller on host 0 (API tcp://127.0.0.1:7400 there, agents'
 * endpoint tcp://0.0.0.0:7401) and wait for event=ready. extra_env may be
 * NULL. Starting it again after hn_kill_host(c, 0) restarts it on the same
 * data dir. Returns the proc index. */
int hn_start_controller(struct hn_cluster *c, const char *const *extra_env);
/* Start the agent of host i (1..N) and wait until it is registered. */
int hn_start_agent(struct hn_cluster *c, int i, const char *const *extra_env);

/* The CLI, inside host 0. */
int hn_cli(struct hn_cluster *c, char **out, char **err, const char *const *args);

/* HTTP GET / on addr:port from inside host `from`; malloc'd body or NULL. */
char *hn_http_get(struct hn_cluster *c, int from, const char *addr, int port, int timeout_ms);

/* Which host has this address or node name; -1 when none. */
int hn_host_by_addr(const struct hn_cluster *c, const char *addr);
int hn_host_by_node(const struct hn_cluster *c, const char *node);

/* "Kill a host": SIGKILL every process in its namespace (its daemon and
 * everything that daemon started) and reap its daemon. */
void hn_kill_host(struct hn_cluster *c, int i);
/* "Cut a host off": its veth end on the bridge goes down; heal: up again. */
void hn_cut(struct hn_cluster *c, int i);
void hn_heal(struct hn_cluster *c, int i);

/* Processes (not zombies) in host i's namespace. */
int hn_count_in(const struct hn_cluster *c, int i);

/* Remove everything this run made. Idempotent. */
void hn_cleanup(struct hn_cluster *c);

#endif
