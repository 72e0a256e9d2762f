/* SPDX-License-Identifier: MIT */
/*
 * isolation_test.c: a cgroup per instance and a user per app, on a real
 * cluster through the real CLI. A web that daemonizes a child (double fork,
 * setsid, descriptors closed) leaves nothing behind after a scale-down, a
 * deploy, a drain, or its agent's SIGKILL and restart. Controllers on
 * 7680-7699, app ports 10200-10399.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static struct h_cluster C;
static char *slurp_file(const char *path);
/* Where apps write what the tests read: outside /tmp, which is private to
 * each instance. World-writable; removed in fini. */
static char shared[64];

static void
make_shared(const char *sub, char *out, size_t outsz)
{
    if (!shared[0]) {
        snprintf(shared, sizeof(shared), "/var/tmp/drover-it-iso.XXXXXX");
        cr_assert_not_null(mkdtemp(shared));
        chmod(shared, 0755);
    }
    snprintf(out, outsz, "%s/%s", shared, sub);
    mkdir(out, 0777);
    chmod(out, 0777);
}

static void
fini(void)
{
    h_cleanup(&C); /* it removes the agents' cgroups too */
    if (shared[0]) {
        char cmd[128];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", shared);
        if (system(cmd) != 0)
            cr_log_warn("cannot remove %s", shared);
        shared[0] = '\0';
    }
}

TestSuite(isolation, .fini = fini, .timeout = 180);

#define CLI(out, err, ...) h_cli(&C, out, err, (const char *const[]){__VA_ARGS__, NULL})

static long
mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void
put(const char *dir, const char *name, const char *text)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

static int
agent(const char *log, const char *node, const char *datadir, const char *ports)
{
    char data[320], name[96], join[96], range[64];
    const char *env[] = {data, name, join, range, "DROVER_HEARTBEAT_MS=300", NULL};

    snprintf(data, sizeof(data), "DROVER_DATA_DIR=%s/%s", C.dir, datadir);
    snprintf(name, sizeof(name), "DROVER_NODE_NAME=%s", node);
    snprintf(join, sizeof(join), "DROVER_JOIN=%s", C.join);
    snprintf(range, sizeof(range), "DROVER_PORT_RANGE=%s", ports);
    return h_start(&C, log, "drover-agent", env, NULL);
}

static void
cluster(const char *test, int base)
{
    static const char *const ctl_env[] = {"DROVER_NODE_TIMEOUT_MS=1500", "DROVER_HEARTBEAT_MS=300",
                                          NULL};
    int idx;

    h_init(&C, test, base);
    idx = h_start_controller(&C, ctl_env);
    cr_assert(h_wait_log(&C, idx, "event=ready", 10000), "controller not ready");
}

/* cluster(), then the agent n1 on ports, ready; its index. */
static int
one_node(const char *test, int base, const char *ports)
{
    int n1;

    cluster(test, base);
    n1 = agent("n1", "n1", "agent-n1", ports);
    cr_assert(h_wait_log(&C, n1, "event=ready", 10000));
    return n1;
}

/* C.dir/NAME made, with this Procfile: the app's directory, in dir. */
static void
app_dir(const char *name, const char *procfile, char *dir, size_t dirsz)
{
    snprintf(dir, dirsz, "%s/%s", C.dir, name);
    mkdir(dir, 0755);
    put(dir, "Procfile", procfile);
}

/* Up to n pids of the daemons the webs left, from PIDDIR/d.* files. */
static int
daemons(const char *piddir, pid_t *pids, int max)
{
    DIR *d = opendir(piddir);
    struct dirent *de;
    int n = 0;

    cr_assert_not_null(d);
    while ((de = readdir(d)) != NULL && n < max) {
        char path[600];
        FILE *f;
        int pid = 0;

        if (strncmp(de->d_name, "d.", 2) != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", piddir, de->d_name);
        f = fopen(path, "r");
        if (f && fscanf(f, "%d", &pid) == 1 && pid > 1)
            pids[n++] = pid;
        if (f)
            fclose(f);
    }
    closedir(d);
    return n;
}

static int
alive_count(const pid_t *pids, int n)
{
    int a = 0;

    for (int k = 0; k < n; k++)
        a += h_pid_alive(pids[k]);
    return a;
}

/* Wait until exactly want daemons are alive (and every web up). */
static bool
settle(const char *piddir, int want_up, int want_alive, int timeout_ms)
{
    long deadline = mono_ms() + timeout_ms;
    pid_t pids[256];
    struct h_ps ps;

    do {
        int n = daemons(piddir, pids, 256);

        h_get_ps(&C, "dmn", &ps);
        if (h_ps_count(&ps, "web", "up", NULL) == want_up && ps.n == want_up &&
            alive_count(pids, n) == want_alive)
            return true;
        h_msleep(100);
    } while (mono_ms() < deadline);
    return false;
}

/* A web that leaves a daemon: double fork, setsid, fds closed, the
 * daemon's pid in PIDDIR/d.<web pid>. */
static void
daemon_app(const char *dir, const char *mark)
{
    char text[256];

    mkdir(dir, 0755);
    put(dir, "Procfile", "web: sh web.sh\n");
    put(dir, "web.sh",
        "sh -c 'setsid sh -c \"exec sleep 100000\" </dev/null >/dev/null 2>&1 &"
        " echo $! > \"$PIDDIR/t.$PPID\" && mv \"$PIDDIR/t.$PPID\" \"$PIDDIR/d.$PPID\"'"
        " </dev/null >/dev/null 2>&1\n"
        "exec python3 -m http.server \"$PORT\" --bind 127.0.0.1\n");
    snprintf(text, sizeof(text), "%s\n", mark);
    put(dir, "mark", text);
}

Test(isolation, a_daemonizing_web_leaves_nothing_behind)
{
    char app[300], piddir[300], cfg[400], *out = NULL, *err = NULL;
    pid_t pids[256];
    int n1, n2, n2b, n;

    n1 = one_node("isodaemon", 7680, "10200-10249");
    cr_assert(h_log_has(&C, n1, "event=cgroups "), "this test needs cgroups (run as root)");
    make_shared("pids", piddir, sizeof(piddir));
    snprintf(app, sizeof(app), "%s/dmn", C.dir);
    daemon_app(app, "one");
    snprintf(cfg, sizeof(cfg), "PIDDIR=%s", piddir);
    cr_assert_eq(CLI(NULL, &err, "apps:create", "dmn"), 0, "%s", err);
    free(err);
    cr_assert_eq(CLI(NULL, &err, "config:set", "dmn", cfg), 0, "%s", err);
    free(err);
    cr_assert_eq(CLI(&out, &err, "deploy", "dmn", app, "--no-wait"), 0, "%s %s", out, err);
    free(out);
    free(err);
    cr_assert_eq(CLI(NULL, &err, "settings:set", "dmn", "web", "grace=2s"), 0, "%s", err);
    free(err);
    cr_assert_eq(CLI(NULL, &err, "scale", "dmn", "web=2"), 0, "%s", err);
    free(err);
    cr_assert(settle(piddir, 2, 2, 30000), "two webs with their daemons never came up");
    n = daemons(piddir, pids, 256);
    for (int k = 0; k < n; k++) /* the daemon really left: its own session */
        cr_assert_eq(getsid(pids[k]), pids[k], "daemon %d is not in a session of its own",
                     (int)pids[k]);

    /* Scale-down: the stopped web's daemon goes with it. */
    cr_assert_eq(CLI(NULL, &err, "scale", "dmn", "web=1"), 0, "%s", err);
    free(err);
    cr_assert(settle(piddir, 1, 1, 20000), "a daemon outlived the scale-down");

    /* A deploy replaces the web: the old one's daemon goes too. */
    daemon_app(app, "two");
    cr_assert_eq(CLI(&out, &err, "deploy", "dmn", app), 0, "%s %s", out, err);
    free(out);
    free(err);
    cr_assert(settle(piddir, 1, 1, 30000), "a daemon outlived the deploy");

    /* A drain moves the web to n2: n1's daemon goes with its web. */
    n2 = agent("n2", "n2", "agent-n2", "10250-10299");
    cr_assert(h_wait_log(&C, n2, "event=ready", 10000));
    cr_assert_eq(CLI(&out, &err, "nodes:drain", "n1", "--timeout", "30"), 0, "%s %s", out, err);
    free(out);
    free(err);
    cr_assert(settle(piddir, 1, 1, 30000), "a daemon outlived the drain");

    /* The agent killed with SIGKILL and started again: the cgroup it left
     * is found by its path and drained whole, daemon and all. */
    kill(C.procs[n2].pid, SIGKILL);
    waitpid(C.procs[n2].pid, NULL, 0);
    C.procs[n2].pid = 0;
    n = daemons(piddir, pids, 256);
    cr_assert_eq(alive_count(pids, n), 1, "the daemon should still run while no agent does");
    n2b = agent("n2-2", "n2", "agent-n2", "10250-10299");
    cr_assert(h_wait_log(&C, n2b, "event=ready", 10000), "restarted agent not ready");
    cr_assert(settle(piddir, 1, 1, 30000), "a daemon outlived the agent's SIGKILL and restart");
    cr_assert(h_log_has(&C, n2b, "event=orphan_found"), "the orphan was not found");
}

/* The uid a process runs as, from /proc. */
static unsigned
uid_of(pid_t pid)
{
    char path[64], line[256];
    unsigned uid = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    cr_assert_not_null(f);
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "Uid: %u", &uid) == 1)
            break;
    fclose(f);
    return uid;
}

static pid_t
worker_pid(const char *app)
{
    long deadline = mono_ms() + 30000;
    struct h_ps ps;

    do {
        h_get_ps(&C, app, &ps);
        for (int k = 0; k < ps.n; k++)
            if (strcmp(j_get(&ps.o[k], "state"), "up") == 0 && atoi(j_get(&ps.o[k], "pid")) > 1)
                return (pid_t)atoi(j_get(&ps.o[k], "pid"));
        h_msleep(100);
    } while (mono_ms() < deadline);
    return 0;
}

Test(isolation, an_app_cannot_reach_another_apps_secrets_code_slug_or_processes)
{
    char dir[300], script[2048], *out = NULL, *err = NULL;
    const char *apps[] = {"alpha", "beta"};
    pid_t beta;
    unsigned ua, ub;

    if (geteuid() != 0)
        cr_skip_test("a user per app needs a root agent");
    one_node("isousers", 7684, "10300-10349");
    app_dir("sleeper", "worker: sleep 100000\n", dir, sizeof(dir));
    put(dir, "code.txt", "beta's code\n");
    for (int k = 0; k < 2; k++) {
        char secret[96];

        snprintf(secret, sizeof(secret), "DATABASE_URL=postgres://secret-of-%s", apps[k]);
        cr_assert_eq(CLI(NULL, &err, "apps:create", apps[k]), 0, "%s", err);
        free(err);
        cr_assert_eq(CLI(NULL, &err, "config:set", apps[k], secret), 0, "%s", err);
        free(err);
        cr_assert_eq(CLI(&out, &err, "deploy", apps[k], dir, "--no-wait"), 0, "%s %s", out, err);
        free(out);
        free(err);
        cr_assert_eq(CLI(NULL, &err, "scale", apps[k], "worker=1"), 0, "%s", err);
        free(err);
    }
    beta = worker_pid("beta");
    cr_assert_gt(beta, 1);
    ua = uid_of(worker_pid("alpha"));
    ub = uid_of(beta);
    cr_assert(ua >= 61184 && ua <= 65519 && ub >= 61184 && ub <= 65519 && ua != ub,
              "alpha runs as %u, beta as %u", ua, ub);

    /* A one-off of alpha, as a curious tenant would try. */
    snprintf(script, sizeof(script),
             "echo uid=$(id -u);"
             "cat /proc/%d/environ >/dev/null 2>&1 && echo environ=read || echo environ=denied;"
             "cat %s/agent-n1/releases/beta/*/code.txt >/dev/null 2>&1 && echo code=read ||"
             " echo code=denied;"
             "cat %s/agent-n1/slugs/* >/dev/null 2>&1 && echo slug=read || echo slug=denied;"
             "kill -0 %d 2>/dev/null && echo signal=sent || echo signal=denied;"
             "echo x 2>/dev/null > /proc/%d/cwd/evil && echo view=written || echo view=denied;"
             "ls /proc/%d/root/ >/dev/null 2>&1 && echo root=listed || echo root=denied;"
             "cat code.txt >/dev/null && echo own=read",
             (int)beta, C.dir, C.dir, (int)beta, (int)beta, (int)beta);
    cr_assert_eq(CLI(&out, &err, "run", "alpha", "--", "sh", "-c", script), 0, "%s %s", out, err);
    char want[32];
    snprintf(want, sizeof(want), "uid=%u\n", ua);
    cr_assert(strstr(out, want) != NULL, "the one-off does not run as alpha (%u): %s", ua, out);
    cr_assert(strstr(out, "environ=denied") != NULL, "%s", out);
    cr_assert(strstr(out, "code=denied") != NULL, "%s", out);
    cr_assert(strstr(out, "slug=denied") != NULL, "%s", out);
    cr_assert(strstr(out, "signal=denied") != NULL, "%s", out);
    cr_assert(strstr(out, "view=denied") != NULL, "%s", out);
    cr_assert(strstr(out, "root=denied") != NULL, "%s", out);
    cr_assert(strstr(out, "own=read") != NULL, "alpha cannot read its own code: %s", out);
    free(out);
    free(err);
    cr_assert(h_pid_alive(beta));
}

/* The instance's cgroup directory, under the subtree the agent logged. */
static void
cgroup_dir(int agent_idx, const char *id, char *out, size_t outsz)
{
    char line[2048], track[1024] = "";
    FILE *f = fopen(C.procs[agent_idx].log, "r");

    cr_assert_not_null(f);
    while (fgets(line, sizeof(line), f)) {
        char *p = strstr(line, "event=cgroups track=");

        if (p && sscanf(p, "event=cgroups track=%1023s", track) == 1)
            break;
    }
    fclose(f);
    cr_assert(track[0] == '/', "no event=cgroups in the agent's log");
    snprintf(out, outsz, "%s/i%s", track, id);
}

static long long
cpu_usec(const char *dir)
{
    char path[700], key[64];
    long long v = -1, x;
    FILE *f;

    snprintf(path, sizeof(path), "%s/cpu.stat", dir);
    f = fopen(path, "r");
    if (!f)
        return -1;
    while (fscanf(f, "%63s %lld", key, &x) == 2)
        if (strcmp(key, "usage_usec") == 0)
            v = x;
    fclose(f);
    return v;
}

static const struct j_obj *
wait_inst(const char *app, const char *type, const char *state, struct h_ps *ps, int timeout_ms)
{
    long deadline = mono_ms() + timeout_ms;

    do {
        h_get_ps(&C, app, ps);
        for (int k = 0; k < ps->n; k++)
            if (strcmp(j_get(&ps->o[k], "type"), type) == 0 &&
                (!state || strcmp(j_get(&ps->o[k], "state"), state) == 0))
                return &ps->o[k];
        h_msleep(100);
    } while (mono_ms() < deadline);
    return NULL;
}

Test(isolation, memory_cpu_and_pids_limits_hold_and_usage_shows)
{
    char dir[300], cg[700], *out = NULL, *err = NULL;
    const struct j_obj *o;
    struct h_ps ps;
    int n1;

    if (geteuid() != 0)
        cr_skip_test("limits need cgroups, which need a root agent");
    n1 = one_node("isolimits", 7688, "10350-10399");
    app_dir("lim",
            "hog: python3 hog.py\n"
            "spin: while :; do :; done\n"
            "bomb: python3 bomb.py\n"
            "fds: echo \"nofile=$(ulimit -n)\"; exec sleep 100000\n",
            dir, sizeof(dir));
    put(dir, "hog.py",
        "import time\n"
        "a = []\n"
        "while True:\n"
        "    a.append(bytearray(b'x' * (4 << 20)))\n"
        "    time.sleep(0.01)\n");
    put(dir, "bomb.py",
        "import os, time\n"
        "ok = fail = 0\n"
        "for _ in range(100):\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError:\n"
        "        fail += 1\n"
        "        continue\n"
        "    if pid == 0:\n"
        "        time.sleep(600)\n"
        "        os._exit(0)\n"
        "    ok += 1\n"
        "print('bomb forked=%d failed=%d' % (ok, fail), flush=True)\n"
        "time.sleep(100000)\n");
    cr_assert_eq(CLI(NULL, &err, "apps:create", "lim"), 0, "%s", err);
    free(err);
    cr_assert_eq(CLI(&out, &err, "deploy", "lim", dir, "--no-wait"), 0, "%s %s", out, err);
    free(out);
    free(err);
    /* Hostile values are refused with the reason and change nothing. */
    cr_assert_eq(CLI(&out, &err, "settings:set", "lim", "hog", "memory=-64M"), 1);
    cr_assert(strstr(err, "memory: want a size") != NULL, "%s", err);
    free(out);
    free(err);
    cr_assert_eq(CLI(&out, &err, "settings:set", "lim", "hog", "memory=64Q"), 1);
    free(out);
    free(err);
    cr_assert_eq(CLI(NULL, &err, "settings:set", "lim", "hog", "memory=64M"), 0, "%s", err);
    free(err);
    cr_assert_eq(CLI(NULL, &err, "settings:set", "lim", "spin", "cpu=0.2"), 0, "%s", err);
    free(err);
    cr_assert_eq(CLI(NULL, &err, "settings:set", "lim", "bomb", "pids=32"), 0, "%s", err);
    free(err);
    cr_assert_eq(CLI(NULL, &err, "settings:set", "lim", "fds", "nofile=64"), 0, "%s", err);
    free(err);
    cr_assert_eq(CLI(&out, &err, "settings", "lim", "--json"), 0, "%s", err);
    cr_assert(strstr(out, "\"memory_bytes\": 67108864") != NULL, "%s", out);
    cr_assert(strstr(out, "\"cpu_milli\": 200") != NULL, "%s", out);
    cr_assert(strstr(out, "\"pids\": 32") != NULL, "%s", out);
    free(out);
    free(err);
    cr_assert_eq(CLI(NULL, &err, "scale", "lim", "hog=1", "spin=1", "bomb=1", "fds=1"), 0, "%s",
                 err);
    free(err);

    /* memory=64M: killed, said so, restarted. */
    {
        long deadline = mono_ms() + 30000;
        bool seen = false;

        while (!seen && mono_ms() < deadline) {
            h_get_ps(&C, "lim", &ps);
            for (int k = 0; k < ps.n; k++)
                if (strcmp(j_get(&ps.o[k], "type"), "hog") == 0 &&
                    atoi(j_get(&ps.o[k], "restarts")) >= 1 && j_get(&ps.o[k], "reason") &&
                    strstr(j_get(&ps.o[k], "reason"), "memory limit 64 MiB exceeded (oom kill)"))
                    seen = true;
            if (!seen)
                h_msleep(100);
        }
        cr_assert(seen, "no oom kill of hog reported in ps --json");
    }
    cr_assert_eq(CLI(&out, &err, "logs", "lim", "-n", "200"), 0, "%s", err);
    cr_assert(strstr(out, "memory limit 64 MiB exceeded (oom kill)") != NULL, "%s", out);
    free(out);
    free(err);

    /* cpu=0.2: a busy loop stays near 20 % of a core, by the cgroup's count. */
    o = wait_inst("lim", "spin", "up", &ps, 20000);
    cr_assert_not_null(o, "spin never came up");
    cgroup_dir(n1, j_get(o, "id"), cg, sizeof(cg));
    {
        long long u0 = cpu_usec(cg), u1;
        long t0 = mono_ms(), t1;
        double pct;

        cr_assert_geq(u0, 0, "no cpu.stat in %s", cg);
        h_msleep(3000);
        u1 = cpu_usec(cg);
        t1 = mono_ms();
        pct = (double)(u1 - u0) / 10.0 / (double)(t1 - t0);
        cr_assert(pct >= 12.0 && pct <= 26.0, "spin used %.1f %% of a core, not about 20 %%", pct);
    }
    /* Usage in ps --json, from the agent's reports (sampled every 5 s). */
    {
        long deadline = mono_ms() + 15000;
        double pct = 0;
        long long mem = 0;

        while (mono_ms() < deadline) {
            o = wait_inst("lim", "spin", "up", &ps, 5000);
            cr_assert_not_null(o);
            pct = atof(j_get(o, "cpu_percent"));
            mem = atoll(j_get(o, "memory_bytes"));
            if (pct > 0)
                break;
            h_msleep(250);
        }
        cr_assert(pct >= 10.0 && pct <= 30.0, "ps --json cpu_percent %.1f", pct);
        cr_assert_gt(mem, 0, "ps --json memory_bytes is 0");
        cr_assert_eq(CLI(&out, &err, "ps", "lim"), 0, "%s", err);
        cr_assert(strstr(out, "cpu=") != NULL && strstr(out, "mem=") != NULL, "%s", out);
        free(out);
        free(err);
    }

    /* pids=32: the fork bomb fails inside its instance; the node is fine. */
    {
        long deadline = mono_ms() + 20000;
        char *p = NULL;

        while (mono_ms() < deadline) {
            cr_assert_eq(CLI(&out, &err, "logs", "lim", "-n", "500"), 0, "%s", err);
            free(err);
            if ((p = strstr(out, "bomb forked=")) != NULL)
                break;
            free(out);
            out = NULL;
            h_msleep(200);
        }
        cr_assert_not_null(p, "the bomb never said how it went");
        cr_assert(strstr(out, "nofile=64") != NULL, "nofile=64 not applied:\n%s", out);
        int ok = -1, fail = -1;
        cr_assert_eq(sscanf(p, "bomb forked=%d failed=%d", &ok, &fail), 2);
        cr_assert(ok < 32 && fail > 0, "forked %d, failed %d under pids=32", ok, fail);
        free(out);
    }
    {
        char buf[64];

        cr_assert_str_eq(h_node_state(&C, "n1", buf, sizeof(buf)), "ready");
    }
    cr_assert_not_null(wait_inst("lim", "spin", "up", &ps, 5000), "the node stopped serving");

    /* ps --watch refreshes until Ctrl-C. */
    {
        char cmd[1024], path[400], *text;
        int n = 0;

        snprintf(path, sizeof(path), "%s/watch.out", C.dir);
        snprintf(cmd, sizeof(cmd),
                 "DROVER_CONTROLLER='%s' DROVER_API_TOKEN='%s' timeout -s INT 5 '%s/drover' ps lim "
                 "--watch > '%s' 2>&1",
                 C.api, H_API_TOKEN, h_bin_dir(), path);
        (void)!system(cmd);
        text = slurp_file(path);
        cr_assert_not_null(text);
        for (const char *p = text; (p = strstr(p, "=== spin")) != NULL; p++)
            n++;
        cr_assert_geq(n, 2, "ps --watch did not refresh:\n%s", text);
    }
}

/* A digest of a tree: every path, and every file's content. */
static void
tree_hash(const char *dir, char *out, size_t outsz)
{
    char cmd[700];
    FILE *p;

    snprintf(cmd, sizeof(cmd),
             "cd '%s' && (find . | LC_ALL=C sort; find . -type f -print0 | LC_ALL=C sort -z |"
             " xargs -0 sha256sum) | sha256sum",
             dir);
    p = popen(cmd, "r");
    cr_assert_not_null(p);
    cr_assert_not_null(fgets(out, (int)outsz, p));
    pclose(p);
}

static char *
slurp_file(const char *path)
{
    static char buf[8192];
    FILE *f = fopen(path, "r");
    size_t n;

    if (!f)
        return NULL;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* OUT/NAME.PID.WHEN as the view app wrote it; NULL until it has. */
static char *
view_report(const char *out, const char *name, int pid, const char *when)
{
    char path[600];

    snprintf(path, sizeof(path), "%s/%s.%d.%s", out, name, pid, when);
    return slurp_file(path);
}

static void
check_run(const char *outdir, const char *name, const char *other, int pid)
{
    char *t;
    char own[64], theirs[64];
    long deadline = mono_ms() + 15000;

    while (!view_report(outdir, name, pid, "after") && mono_ms() < deadline)
        h_msleep(100);
    t = view_report(outdir, name, pid, "before");
    cr_assert_not_null(t, "%s (pid %d) did not report", name, pid);
    cr_assert(strstr(t, ".cwd") == NULL && strstr(t, ".home") == NULL && strstr(t, ".tmp") == NULL,
              "%s started with files already there:\n%s", name, t);
    t = view_report(outdir, name, pid, "after");
    cr_assert_not_null(t, "%s (pid %d) could not write in its view", name, pid);
    snprintf(own, sizeof(own), "%s.cwd", name);
    cr_assert(strstr(t, own) != NULL, "%s:\n%s", own, t);
    snprintf(own, sizeof(own), "%s.home", name);
    cr_assert(strstr(t, own) != NULL, "%s:\n%s", own, t);
    snprintf(own, sizeof(own), "%s.tmp", name);
    cr_assert(strstr(t, own) != NULL, "%s:\n%s", own, t);
    snprintf(theirs, sizeof(theirs), "%s.", other);
    cr_assert(strstr(t, theirs) == NULL, "%s sees %s's files:\n%s", name, other, t);
}

Test(isolation, each_instance_writes_its_own_ephemeral_view)
{
    char dir[300], outdir[300], cfg[400], rel[400], h0[128], h1[128], *out = NULL, *err = NULL;
    const struct j_obj *o;
    struct h_ps ps;
    int pid1 = 0, pid2 = 0, pid1b = 0;

    if (geteuid() != 0)
        cr_skip_test("a view per instance needs a root agent");
    one_node("isoview", 7692, "10360-10369");
    app_dir("viewapp", "worker: sh w.sh\n", dir, sizeof(dir));
    put(dir, "w.sh",
        "ls -a . /tmp > \"$OUT/$DYNO.$$.before\"\n"
        "echo x > \"$DYNO.cwd\" && echo x > \"$HOME/$DYNO.home\" && echo x > \"/tmp/$DYNO.tmp\"\n"
        "sleep 2\n"
        "ls -a . /tmp > \"$OUT/$DYNO.$$.part\" && mv \"$OUT/$DYNO.$$.part\" "
        "\"$OUT/$DYNO.$$.after\"\n"
        "exec sleep 100000\n");
    make_shared("out", outdir, sizeof(outdir));
    snprintf(cfg, sizeof(cfg), "OUT=%s", outdir);
    cr_assert_eq(CLI(NULL, &err, "apps:create", "views"), 0, "%s", err);
    free(err);
    cr_assert_eq(CLI(NULL, &err, "config:set", "views", cfg), 0, "%s", err);
    free(err);
    cr_assert_eq(CLI(&out, &err, "deploy", "views", dir, "--no-wait"), 0, "%s %s", out, err);
    free(out);
    free(err);
    cr_assert_eq(CLI(NULL, &err, "scale", "views", "worker=2"), 0, "%s", err);
    free(err);
    {
        long deadline = mono_ms() + 30000;

        while ((pid1 == 0 || pid2 == 0) && mono_ms() < deadline) {
            h_get_ps(&C, "views", &ps);
            for (int k = 0; k < ps.n; k++) {
                int pid = atoi(j_get(&ps.o[k], "pid"));

                if (strcmp(j_get(&ps.o[k], "name"), "worker.1") == 0)
                    pid1 = pid;
                if (strcmp(j_get(&ps.o[k], "name"), "worker.2") == 0)
                    pid2 = pid;
            }
            h_msleep(100);
        }
    }
    cr_assert(pid1 > 1 && pid2 > 1, "two workers never ran");
    check_run(outdir, "worker.1", "worker.2", pid1);
    check_run(outdir, "worker.2", "worker.1", pid2);

    /* The release itself is untouched: the same tree, byte for byte. */
    snprintf(rel, sizeof(rel), "%s/agent-n1/releases/views", C.dir);
    tree_hash(rel, h0, sizeof(h0));

    /* A restart starts from the release again: the files are gone. */
    kill(pid1, SIGKILL);
    {
        long deadline = mono_ms() + 20000;

        while (pid1b == 0 && mono_ms() < deadline) {
            o = NULL;
            h_get_ps(&C, "views", &ps);
            for (int k = 0; k < ps.n; k++)
                if (strcmp(j_get(&ps.o[k], "name"), "worker.1") == 0)
                    o = &ps.o[k];
            if (o && atoi(j_get(o, "pid")) > 1 && atoi(j_get(o, "pid")) != pid1)
                pid1b = atoi(j_get(o, "pid"));
            else
                h_msleep(100);
        }
    }
    cr_assert_gt(pid1b, 1, "worker.1 was not restarted");
    check_run(outdir, "worker.1", "worker.2", pid1b);
    tree_hash(rel, h1, sizeof(h1));
    cr_assert_str_eq(h0, h1, "the release changed");
    {
        /* Nothing of the views on the host: no file the workers wrote. */
        char cmd[600];

        snprintf(cmd, sizeof(cmd),
                 "find '%s/agent-n1' /tmp -name 'worker.*.cwd' 2>/dev/null | grep -q .", C.dir);
        cr_assert_neq(system(cmd), 0, "a view's file is visible on the host");
    }
}

/*
 * An agent that is not root (nobody, through setpriv): no cgroups, so it
 * says so once and refuses a limit with the reason; instances still get a
 * writable view, in a user namespace of their own.
 */
Test(isolation, an_unprivileged_agent_refuses_limits_and_still_gives_views)
{
    char dir[300], data[320], join[96], key[128], outdir[300], cfg[400], rel[400], h0[128], h1[128],
        agent_bin[512], *out = NULL, *err = NULL;
    const char *env[] = {data,
                         "DROVER_NODE_NAME=n1",
                         join,
                         "DROVER_PORT_RANGE=10370-10379",
                         "DROVER_HEARTBEAT_MS=300",
                         key,
                         NULL};
    const char *argv[] = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
                          "--clear-groups",   agent_bin,       NULL};
    const struct j_obj *o;
    struct h_ps ps;
    int n1, pid = 0;

    if (geteuid() != 0)
        cr_skip_test("needs root to start the agent as nobody");
    cluster("isonoroot", 7696);
    snprintf(data, sizeof(data), "DROVER_DATA_DIR=%s/agent-n1", C.dir);
    snprintf(dir, sizeof(dir), "%s/agent-n1", C.dir);
    mkdir(dir, 0755);
    cr_assert_eq(chown(dir, 65534, 65534), 0);
    snprintf(join, sizeof(join), "DROVER_JOIN=%s", C.join);
    snprintf(key, sizeof(key), "DROVER_CLUSTER_KEY=%s", H_CLUSTER_KEY);
    /* The agent and its helpers where nobody can reach them, as an install
     * puts them: a build under /root (mode 0700) is out of its reach. */
    make_shared("bin", dir, sizeof(dir));
    for (size_t i = 0; i < 3; i++) {
        static const char *const progs[] = {"drover-agent", "drover-exec", "drover-unpack"};
        char cmd[1200];

        snprintf(cmd, sizeof(cmd), "cp '%s/%s' '%s/'", h_bin_dir(), progs[i], dir);
        cr_assert_eq(system(cmd), 0, "%s", cmd);
    }
    snprintf(agent_bin, sizeof(agent_bin), "%s/drover-agent", dir);
    n1 = h_start_cmd(&C, "n1", argv, env);
    cr_assert(h_wait_log(&C, n1, "event=ready", 10000), "the agent as nobody did not start");
    cr_assert(h_log_has(&C, n1, "event=cgroups_unavailable reason=\"the agent is not root"),
              "no event=cgroups_unavailable at start");
    cr_assert_not(h_log_has(&C, n1, "event=views_unavailable"), "no user namespaces here?");

    app_dir("noroot", "capped: exec sleep 100000\nworker: sh w.sh\n", dir, sizeof(dir));
    put(dir, "w.sh",
        "ls -a . /tmp > \"$OUT/$DYNO.$$.before\"\n"
        "echo x > \"$DYNO.cwd\" && echo x > \"$HOME/$DYNO.home\" && echo x > \"/tmp/$DYNO.tmp\"\n"
        "ls -a . /tmp > \"$OUT/$DYNO.$$.part\" && mv \"$OUT/$DYNO.$$.part\" "
        "\"$OUT/$DYNO.$$.after\"\n"
        "exec sleep 100000\n");
    make_shared("out", outdir, sizeof(outdir));
    snprintf(cfg, sizeof(cfg), "OUT=%s", outdir);
    cr_assert_eq(CLI(NULL, &err, "apps:create", "noroot"), 0, "%s", err);
    free(err);
    cr_assert_eq(CLI(NULL, &err, "config:set", "noroot", cfg), 0, "%s", err);
    free(err);
    cr_assert_eq(CLI(&out, &err, "deploy", "noroot", dir, "--no-wait"), 0, "%s %s", out, err);
    free(out);
    free(err);
    cr_assert_eq(CLI(NULL, &err, "settings:set", "noroot", "capped", "memory=128M"), 0, "%s", err);
    free(err);
    cr_assert_eq(CLI(NULL, &err, "scale", "noroot", "capped=1", "worker=1"), 0, "%s", err);
    free(err);

    /* The worker writes in its view; the release does not change. */
    o = wait_inst("noroot", "worker", "up", &ps, 20000);
    cr_assert_not_null(o, "the worker never came up");
    pid = atoi(j_get(o, "pid"));
    check_run(outdir, "worker.1", "capped.1", pid);
    snprintf(rel, sizeof(rel), "%s/agent-n1/releases/noroot", C.dir);
    tree_hash(rel, h0, sizeof(h0));
    {
        char cmd[600];

        snprintf(cmd, sizeof(cmd), "find '%s' /tmp -name 'worker.*.cwd' 2>/dev/null | grep -q .",
                 C.dir);
        cr_assert_neq(system(cmd), 0, "a view's file is visible on the host");
    }

    /* A limit it cannot enforce: never started, and ps says why. */
    {
        long deadline = mono_ms() + 20000;
        const char *why = NULL;

        while (mono_ms() < deadline) {
            o = wait_inst("noroot", "capped", NULL, &ps, 5000);
            cr_assert_not_null(o);
            why = j_get(o, "reason");
            if (why && strstr(why, "the memory limit cannot be enforced on this node") != NULL)
                break;
            why = NULL;
            h_msleep(100);
        }
        cr_assert_not_null(why, "no reason for the refused limit in ps --json");
        cr_assert(strstr(why, "cgroups unavailable") != NULL, "%s", why);
        cr_assert_neq(strcmp(j_get(o, "state"), "up"), 0, "an unenforceable limit ran anyway");
    }
    tree_hash(rel, h1, sizeof(h1));
    cr_assert_str_eq(h0, h1, "the release changed");
}

/* How many descriptors of pid's are links to a mount namespace, and whether
 * one of them is ns (a readlink of some /proc/P/ns/mnt; "" for none). */
static int
mnt_links(pid_t pid, const char *ns, bool *has)
{
    char dir[64], path[384], link[128];
    struct dirent *e;
    DIR *d;
    int n = 0;

    *has = false;
    snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
    d = opendir(dir);
    cr_assert_not_null(d, "%s", dir);
    while ((e = readdir(d)) != NULL) {
        ssize_t len;

        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        len = readlink(path, link, sizeof(link) - 1);
        if (len <= 0)
            continue;
        link[len] = '\0';
        if (strncmp(link, "mnt:[", 5) != 0)
            continue;
        n++;
        if (ns[0] && strcmp(link, ns) == 0)
            *has = true;
    }
    closedir(d);
    return n;
}

/*
 * A stopped instance's view is not taken down by its exit (which would
 * hold its sockets open until it was: viewhold.c): the agent holds the
 * view's namespace from the SIGTERM to the exit, then lets it go. The
 * worker takes 2 s to stop, so the hold is seen; once it has exited the
 * agent holds no namespace at all.
 */
Test(isolation, a_stopped_instances_view_is_held_until_its_exit_then_let_go)
{
    char dir[300], ns[128] = "", path[64], *err = NULL;
    struct h_ps ps;
    pid_t agent_pid;
    int n1, pid = 0;
    bool has = false;
    long deadline;

    if (geteuid() != 0)
        cr_skip_test("a view per instance needs a root agent");
    n1 = one_node("isohold", 15744, "16710-16719");
    agent_pid = C.procs[n1].pid;
    app_dir("holdapp", "worker: sh w.sh\n", dir, sizeof(dir));
    /* Every member of the group hears the SIGTERM: a sleep it kills only
     * ends one turn of a loop. */
    put(dir, "w.sh",
        "trap 'stop=1' TERM\n"
        "while [ -z \"$stop\" ]; do sleep 0.1; done\n"
        "n=0; while [ $n -lt 20 ]; do sleep 0.1; n=$((n + 1)); done\n");
    cr_assert_eq(CLI(NULL, &err, "apps:create", "hold"), 0, "%s", err);
    free(err);
    cr_assert_eq(CLI(NULL, &err, "deploy", "hold", dir, "--no-wait"), 0, "%s", err);
    free(err);
    cr_assert_eq(CLI(NULL, &err, "scale", "hold", "worker=1"), 0, "%s", err);
    free(err);
    for (deadline = mono_ms() + 30000; !ns[0] && mono_ms() < deadline; h_msleep(100)) {
        h_get_ps(&C, "hold", &ps);
        for (int k = 0; k < ps.n; k++)
            if (strcmp(j_get(&ps.o[k], "state"), "up") == 0)
                pid = atoi(j_get(&ps.o[k], "pid"));
        if (pid > 1) {
            ssize_t len;

            snprintf(path, sizeof(path), "/proc/%d/ns/mnt", pid);
            len = readlink(path, ns, sizeof(ns) - 1);
            ns[len > 0 ? len : 0] = '\0';
        }
    }
    cr_assert(ns[0], "the worker never came up");
    cr_assert_eq(mnt_links(agent_pid, ns, &has), 0, "a namespace held before any stop");

    cr_assert_eq(CLI(NULL, &err, "scale", "hold", "worker=0"), 0, "%s", err);
    free(err);
    for (deadline = mono_ms() + 1500; !has && mono_ms() < deadline; h_msleep(50))
        mnt_links(agent_pid, ns, &has);
    cr_assert(has, "the agent did not hold the stopping worker's view (%s)", ns);
    cr_assert(h_pid_alive(pid), "the worker stopped before its 2 s");

    /* Exited: let go (after the closer's quiet 100 ms), and nothing else held. */
    for (deadline = mono_ms() + 10000; mono_ms() < deadline; h_msleep(100))
        if (!h_pid_alive(pid) && mnt_links(agent_pid, "", &has) == 0)
            break;
    cr_assert_not(h_pid_alive(pid), "the worker did not exit");
    cr_assert_eq(mnt_links(agent_pid, "", &has), 0, "the agent still holds a view");
}
