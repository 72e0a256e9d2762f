/* SPDX-License-Identifier: MIT */
/*
 * hosts.c: see hosts.h. The namespaces, bridge and veth pairs are made with
 * `ip` (iproute2), the way an operator would; processes enter a namespace
 * with setns(2) in the forked child (harness.c), so nothing else is needed.
 *
 * The test process makes itself a child subreaper: the processes an agent
 * started are reparented to it when that agent is killed, and it reaps them
 * at cleanup (not every init reaps orphans promptly, and zombies would pile
 * up over a run of the suite).
 */
#include "hosts.h"

#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#define CTL_API "tcp://127.0.0.1:7400"
#define AGENT_PORTS "5000-5099"

/* Run a shell command; its output (stdout and stderr) into out. Exit status. */
static int run(char *out, size_t outsz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
run(char *out, size_t outsz, const char *fmt, ...)
{
    char cmd[512];
    size_t len = 0, n;
    va_list ap;
    FILE *p;
    int st;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd) - 8, fmt, ap);
    va_end(ap);
    strcat(cmd, " 2>&1");
    if (out != NULL && outsz > 0)
        out[0] = '\0';
    if ((p = popen(cmd, "r")) == NULL)
        return -1;
    if (out != NULL && outsz > 1) {
        while (len + 1 < outsz && (n = fread(out + len, 1, outsz - 1 - len, p)) > 0)
            len += n;
        out[len] = '\0';
    } else {
        char sink[512];

        while (fread(sink, 1, sizeof(sink), p) > 0)
            ;
    }
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static bool
have_ip(void)
{
    return run(NULL, 0, "ip -V") == 0;
}

/* Gone, or a zombie (a crashed run's test process may wait to be reaped). */
static bool
pid_dead(long pid)
{
    return pid > 0 && pid != getpid() && !h_pid_alive((pid_t)pid);
}

/* SIGKILL every process in namespace ns; returns how many were signalled. */
static int
kill_in_ns(const char *ns, bool count_only)
{
    char path[128];
    struct stat nst, pst;
    struct dirent *de;
    DIR *d;
    int n = 0;

    snprintf(path, sizeof(path), "/var/run/netns/%s", ns);
    if (stat(path, &nst) < 0 || (d = opendir("/proc")) == NULL)
        return 0;
    while ((de = readdir(d)) != NULL) {
        pid_t pid = (pid_t)atoi(de->d_name);

        if (pid <= 1 || pid == getpid())
            continue;
        snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
        if (stat(path, &pst) < 0 || pst.st_ino != nst.st_ino || pst.st_dev != nst.st_dev)
            continue;
        if (!h_pid_alive(pid))
            continue; /* a zombie runs nothing */
        if (!count_only)
            kill(pid, SIGKILL);
        n++;
    }
    closedir(d);
    return n;
}

static void
empty_ns(const char *ns)
{
    for (int tries = 0; tries < 100 && kill_in_ns(ns, false) > 0; tries++)
        h_msleep(20);
}

/* Whatever a crashed earlier run left: drh* names whose pid is dead, and
 * its directory /tmp/drover-it-drh<pid>-TEST.* (see hn_init). */
static void
remove_stale(void)
{
    char out[8192], *line, *save = NULL;
    glob_t g;

    if (glob("/tmp/drover-it-drh*", 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++) {
            if (!pid_dead(strtol(g.gl_pathv[i] + strlen("/tmp/drover-it-drh"), NULL, 10)))
                continue;
            fprintf(stderr, "hosts: removing %s, left by a run that died\n", g.gl_pathv[i]);
            run(NULL, 0, "rm -rf '%s'", g.gl_pathv[i]);
        }
        globfree(&g);
    }

    if (run(out, sizeof(out), "ip netns list") == 0) {
        for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            char name[64];

            if (sscanf(line, "%63s", name) != 1 || strncmp(name, "drh", 3) != 0 ||
                !pid_dead(strtol(name + 3, NULL, 10)))
                continue;
            fprintf(stderr, "hosts: removing %s, left by a run that died\n", name);
            empty_ns(name);
            run(NULL, 0, "ip netns del %s", name);
        }
    }
    save = NULL;
    if (run(out, sizeof(out), "ip -o link show") == 0) {
        for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            char name[64];
            long pid;

            if (sscanf(line, "%*d: %63[^:@ ]", name) != 1 || strncmp(name, "drh", 3) != 0)
                continue;
            pid = strtol(name + (strncmp(name, "drhbr", 5) == 0 ? 5 : 3), NULL, 10);
            if (!pid_dead(pid))
                continue;
            fprintf(stderr, "hosts: removing link %s, left by a run that died\n", name);
            run(NULL, 0, "ip link del %s", name);
        }
    }
}

static void
skip(struct hn_cluster *c, const char *why, const char *detail)
{
    fprintf(stderr, "hosts: multi-host test skipped: %s%s%s\n", why, detail[0] ? ": " : "", detail);
    hn_cleanup(c);
    cr_skip_test("multi-host harness unavailable: %s", why);
}

static void
make_host(struct hn_cluster *c, int i)
{
    struct hn_host *h = &c->hosts[i];
    char out[512];

    if (run(out, sizeof(out), "ip netns add %s", h->ns) != 0) {
        skip(c, "cannot create a network namespace (ip netns add)", out);
        return;
    }
    c->made = true;
    if (run(out, sizeof(out), "ip -n %s link set lo up", h->ns) != 0 ||
        run(out, sizeof(out), "ip link add %s type veth peer name eth0 netns %s", h->veth, h->ns) !=
            0 ||
        run(out, sizeof(out), "ip link set %s master %s up", h->veth, c->bridge) != 0 ||
        run(out, sizeof(out), "ip -n %s addr add %s/24 dev eth0", h->ns, h->addr) != 0 ||
        run(out, sizeof(out), "ip -n %s link set eth0 up", h->ns) != 0)
        skip(c, "cannot wire a host (veth pair on a bridge)", out);
}

void
hn_init(struct hn_cluster *c, const char *test, int nagents)
{
    long pid = (long)getpid(); /* at most 7 digits (pid_max <= 2^22) */
    unsigned sub = (unsigned)(pid % 512);
    char out[512], name[96];

    memset(c, 0, sizeof(*c));
    for (int i = 0; i < HN_MAX_HOSTS; i++)
        c->hosts[i].proc = -1;
    if (geteuid() != 0)
        skip(c, "not root (network namespaces need CAP_SYS_ADMIN)", "");
    if (!have_ip())
        skip(c, "no `ip` command (install iproute2)", "");
    cr_assert_lt(nagents + 1, HN_MAX_HOSTS + 1);
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    remove_stale();

    snprintf(name, sizeof(name), "drh%ld-%s", pid, test);
    h_init(&c->h, name, 7400);
    c->nhosts = nagents + 1;
    snprintf(c->bridge, sizeof(c->bridge), "drhbr%ld", pid);
    snprintf(c->net, sizeof(c->net), "198.%u.%u", 18 + sub / 256, sub % 256);
    for (int i = 0; i < c->nhosts; i++) {
        struct hn_host *h = &c->hosts[i];

        if (i == 0)
            snprintf(h->ns, sizeof(h->ns), "drh%ld-c", pid);
        else
            snprintf(h->ns, sizeof(h->ns), "drh%ld-n%d", pid, i);
        snprintf(h->veth, sizeof(h->veth), "drh%ldh%d", pid, i);
        snprintf(h->addr, sizeof(h->addr), "%s.%d", c->net, i == 0 ? 1 : 10 + i);
        if (i > 0)
            snprintf(h->node, sizeof(h->node), "n%d", i);
        cr_assert_leq(strlen(h->veth), 15, "interface name %s too long", h->veth);
    }
    snprintf(c->h.api, sizeof(c->h.api), "%s", CTL_API);
    snprintf(c->h.join, sizeof(c->h.join), "tcp://%s:7401", c->hosts[0].addr);
    snprintf(c->h.netns, sizeof(c->h.netns), "%s", c->hosts[0].ns);

    if (run(out, sizeof(out), "ip link add %s type bridge", c->bridge) != 0)
        skip(c, "cannot create a bridge (ip link add type bridge)", out);
    c->made = true;
    if (run(out, sizeof(out), "ip link set %s up", c->bridge) != 0)
        skip(c, "cannot bring the bridge up", out);
    for (int i = 0; i < c->nhosts; i++)
        make_host(c, i);
}

static bool
wait_ready(struct hn_cluster *c, int idx)
{
    return h_wait_log(&c->h, idx, "event=ready", 15000);
}

int
hn_start_controller(struct hn_cluster *c, const char *const *extra_env)
{
    struct hn_host *h = &c->hosts[0];
    const char *env[32];
    char data[320], name[32];
    int n = 0, idx;

    /* extra_env first: the first of two settings of a variable wins. */
    for (; extra_env != NULL && *extra_env != NULL && n < 28; extra_env++)
        env[n++] = *extra_env;
    snprintf(data, sizeof(data), "DROVER_DATA_DIR=%s/controller", c->h.dir);
    env[n++] = data;
    env[n++] = "DROVER_API_LISTEN=" CTL_API;
    env[n++] = "DROVER_AGENT_LISTEN=tcp://0.0.0.0:7401";
    env[n] = NULL;
    snprintf(name, sizeof(name), h->starts == 0 ? "controller" : "controller-%d", h->starts + 1);
    h->starts++;
    idx = h_start(&c->h, name, "drover-controller", env, h->ns);
    h->proc = idx;
    cr_assert(wait_ready(c, idx), "controller on %s not ready", h->ns);
    return idx;
}

int
hn_start_agent(struct hn_cluster *c, int i, const char *const *extra_env)
{
    struct hn_host *h = &c->hosts[i];
    char data[320], node[64], join[96], adv[64], name[32];
    const char *env[32];
    int n = 0, idx;

    cr_assert(i >= 1 && i < c->nhosts);
    snprintf(data, sizeof(data), "DROVER_DATA_DIR=%s/agent-%s", c->h.dir, h->node);
    snprintf(node, sizeof(node), "DROVER_NODE_NAME=%s", h->node);
    snprintf(join, sizeof(join), "DROVER_JOIN=%s", c->h.join);
    snprintf(adv, sizeof(adv), "DROVER_ADVERTISE=%s", h->addr);
    env[n++] = data;
    env[n++] = node;
    env[n++] = join;
    env[n++] = adv;
    env[n++] = "DROVER_PORT_RANGE=" AGENT_PORTS;
    for (; extra_env != NULL && *extra_env != NULL && n < 31; extra_env++)
        env[n++] = *extra_env;
    env[n] = NULL;
    snprintf(name, sizeof(name), h->starts == 0 ? "%s" : "%s-%d", h->node, h->starts + 1);
    h->starts++;
    idx = h_start(&c->h, name, "drover-agent", env, h->ns);
    h->proc = idx;
    cr_assert(wait_ready(c, idx), "agent %s not ready", h->node);
    return idx;
}

int
hn_cli(struct hn_cluster *c, char **out, char **err, const char *const *args)
{
    return h_cli(&c->h, out, err, args);
}

char *
hn_http_get(struct hn_cluster *c, int from, const char *addr, int port, int timeout_ms)
{
    return h_http_get_in(c->hosts[from].ns, addr, port, timeout_ms);
}

int
hn_host_by_addr(const struct hn_cluster *c, const char *addr)
{
    for (int i = 0; i < c->nhosts; i++)
        if (addr != NULL && strcmp(c->hosts[i].addr, addr) == 0)
            return i;
    return -1;
}

int
hn_host_by_node(const struct hn_cluster *c, const char *node)
{
    for (int i = 1; i < c->nhosts; i++)
        if (node != NULL && strcmp(c->hosts[i].node, node) == 0)
            return i;
    return -1;
}

void
hn_kill_host(struct hn_cluster *c, int i)
{
    struct hn_host *h = &c->hosts[i];

    empty_ns(h->ns);
    if (h->proc >= 0 && c->h.procs[h->proc].pid > 0) {
        waitpid(c->h.procs[h->proc].pid, NULL, 0);
        c->h.procs[h->proc].pid = 0;
    }
    h->proc = -1;
}

void
hn_cut(struct hn_cluster *c, int i)
{
    char out[256];

    cr_assert_eq(run(out, sizeof(out), "ip link set %s down", c->hosts[i].veth), 0, "%s", out);
}

void
hn_heal(struct hn_cluster *c, int i)
{
    char out[256];

    cr_assert_eq(run(out, sizeof(out), "ip link set %s up", c->hosts[i].veth), 0, "%s", out);
}

int
hn_count_in(const struct hn_cluster *c, int i)
{
    return kill_in_ns(c->hosts[i].ns, true);
}

void
hn_cleanup(struct hn_cluster *c)
{
    if (c->made) {
        for (int i = 0; i < c->nhosts; i++)
            empty_ns(c->hosts[i].ns);
    }
    h_cleanup(&c->h);
    if (c->made) {
        for (int i = 0; i < c->nhosts; i++) {
            run(NULL, 0, "ip netns del %s", c->hosts[i].ns);
            run(NULL, 0, "ip link del %s", c->hosts[i].veth); /* gone with its peer, usually */
        }
        run(NULL, 0, "ip link del %s", c->bridge);
        c->made = false;
    }
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ; /* orphans reparented to us (see the top of the file) */
}
