/* SPDX-License-Identifier: MIT */
/*
 * spawn_test.c: what an instance gets from the agent's spawn path
 * (drover-exec from the spawner thread, created in its v2 cgroup by clone3
 * CLONE_INTO_CGROUP, node-agent/spawn.c)
 * and how its exits are seen (one waitpid(-1) loop, node-agent/reaper.c),
 * on a real cluster through the real CLI.
 *
 * The app reports, before it opens anything itself, its pid, session,
 * process group, ids, descriptors (/proc/self/fd), initial environment
 * (/proc/self/environ, as exec'd: python changes only its own copy) and
 * cgroups, then serves that report on $PORT. Needs root and cgroups (run it
 * in the host's network namespace, or with nsenter --net, which keeps /sys).
 * Controllers on 7940-7943, app ports 11500-11999.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

static struct h_cluster C;

static void
fini(void)
{
    h_cleanup(&C);
}

TestSuite(spawn, .fini = fini, .timeout = 120);

#define CLI(out, err, ...) h_cli(&C, out, err, (const char *const[]){__VA_ARGS__, NULL})

static const char report_py[] =
    "import os, socketserver, http.server\n"
    "me = os.getpid()\n"
    "lines = ['pid=%d' % me, 'sid=%d' % os.getsid(0), 'pgid=%d' % os.getpgid(0),\n"
    "         'uid=%d' % os.getuid(), 'gid=%d' % os.getgid(),\n"
    "         'groups=%s' % ','.join(str(g) for g in os.getgroups())]\n"
    "fds = []\n"
    "for name in sorted(os.listdir('/proc/self/fd'), key=int):\n"
    "    try:\n"
    "        target = os.readlink('/proc/self/fd/' + name)\n"
    "    except OSError:\n"
    "        continue  # the listing's own descriptor, closed by now\n"
    "    if target.startswith('/proc/') and target.endswith('/fd'):\n"
    "        continue\n"
    "    fds.append(name + ':' + (target.split(':')[0]))\n"
    "lines.append('fds=' + ','.join(fds))\n"
    "with open('/proc/self/environ', 'rb') as f:\n"
    "    env = [e.decode() for e in f.read().split(b'\\0') if e]\n"
    "lines += ['env:' + e for e in sorted(env)]\n"
    "with open('/proc/self/cgroup') as f:\n"
    "    lines += ['cgroup:' + l.strip() for l in f]\n"
    "body = ('\\n'.join(lines) + '\\n').encode()\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        self.send_response(200)\n"
    "        self.end_headers()\n"
    "        self.wfile.write(body)\n"
    "    def log_message(self, *a):\n"
    "        pass\n"
    "socketserver.TCPServer.allow_reuse_address = True\n"
    "socketserver.TCPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n";

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

/* web.1 up with a pid other than not_pid: fills ps, returns its entry. */
static const struct j_obj *
wait_up(struct h_ps *ps, int not_pid, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 100) {
        const struct j_obj *o;

        h_get_ps(&C, "spawnenv", ps);
        o = h_ps_find(ps, "web.1");
        if (o && strcmp(j_get(o, "state"), "up") == 0 && atoi(j_get(o, "pid")) > 1 &&
            atoi(j_get(o, "pid")) != not_pid)
            return o;
        h_msleep(100);
    }
    return NULL;
}

/* The value of "key=" on its own line of text, in buf. */
static const char *
field(const char *text, const char *key, char *buf, size_t bufsz)
{
    char needle[64];
    const char *p;
    size_t n;

    snprintf(needle, sizeof(needle), "\n%s=", key);
    p = strstr(text, needle);
    cr_assert_not_null(p, "no %s in the report:\n%s", key, text);
    p += strlen(needle);
    n = strcspn(p, "\n");
    snprintf(buf, bufsz, "%.*s", (int)(n < bufsz ? n : bufsz - 1), p);
    return buf;
}

/* How many lines of the agent's log hold every one of the needles. */
static int
log_count(int idx, const char *a, const char *b)
{
    char line[4096];
    int n = 0;
    FILE *f = fopen(C.procs[idx].log, "r");

    cr_assert_not_null(f);
    while (fgets(line, sizeof(line), f))
        n += strstr(line, a) != NULL && strstr(line, b) != NULL;
    fclose(f);
    return n;
}

Test(spawn, an_instance_gets_exactly_its_environment_descriptors_user_session_and_cgroup)
{
    char app[320], *out = NULL, *err = NULL, *body, *text, buf[512], want[512], pidtext[32];
    static const char *const ctl_env[] = {"DROVER_HEARTBEAT_MS=300", NULL};
    static const char *const agt_env[] = {"DROVER_HEARTBEAT_MS=300", NULL};
    const struct j_obj *o;
    struct h_ps ps;
    int ag, pid, port, pid2;
    unsigned long long id;

    h_init(&C, "spawnenv", 7940);
    cr_assert(h_wait_log(&C, h_start_controller(&C, ctl_env), "event=ready", 10000));
    ag = h_start_agent(&C, "n1", "11500-11509", agt_env);
    cr_assert(h_wait_log(&C, ag, "event=ready", 10000), "agent not ready");
    cr_assert(geteuid() == 0, "this test needs root (users and cgroups)");
    cr_assert(h_log_has(&C, ag, "event=cgroups "), "this test needs cgroups (host /sys)");

    snprintf(app, sizeof(app), "%s/app", C.dir);
    mkdir(app, 0755);
    put(app, "Procfile", "web: python3 report.py\ncrasher: /bin/false\n");
    put(app, "report.py", report_py);
    cr_assert_eq(CLI(NULL, &err, "apps:create", "spawnenv"), 0, "%s", err);
    free(err);
    cr_assert_eq(CLI(NULL, &err, "config:set", "spawnenv", "GREETING=hello world"), 0, "%s", err);
    free(err);
    cr_assert_eq(CLI(&out, &err, "deploy", "spawnenv", app, "--timeout", "60"), 0, "%s %s", out,
                 err);
    free(out);
    free(err);
    o = wait_up(&ps, 0, 30000);
    cr_assert_not_null(o, "web.1 never came up");
    pid = atoi(j_get(o, "pid"));
    port = atoi(j_get(o, "port"));
    id = strtoull(j_get(o, "id"), NULL, 10);
    body = h_http_get("127.0.0.1", port, 5000);
    cr_assert_not_null(body, "no report on port %d", port);
    text = malloc(strlen(body) + 2); /* a "\n" before the first line, for field() */
    cr_assert_not_null(text);
    text[0] = '\n';
    strcpy(text + 1, body);

    /* The pid the agent saw is the app's; it leads its session and group. */
    snprintf(pidtext, sizeof(pidtext), "%d", pid);
    cr_assert_str_eq(field(text, "pid", buf, sizeof buf), pidtext);
    cr_assert_str_eq(field(text, "sid", buf, sizeof buf), pidtext, "not a session leader");
    cr_assert_str_eq(field(text, "pgid", buf, sizeof buf), pidtext, "not its group's leader");

    /* Its app's own user (DROVER_UID_RANGE), no supplementary groups. */
    cr_assert_geq(atoi(field(text, "uid", buf, sizeof buf)), 61184, "uid %s", buf);
    cr_assert_leq(atoi(buf), 65519, "uid %s", buf);
    cr_assert_str_eq(field(text, "groups", buf, sizeof buf), "");

    /* 0 is /dev/null, 1 and 2 the output pipes, and nothing else. */
    field(text, "fds", buf, sizeof buf);
    cr_assert_str_eq(buf, "0:/dev/null,1:socket,2:socket", "descriptors: %s", buf);

    /* Exactly the documented environment (and PWD, which /bin/sh adds). */
    {
        static const char *const keys[] = {"DROVER_APP=spawnenv",
                                           "DROVER_RELEASE=",
                                           "DYNO=web.1",
                                           "GREETING=hello world",
                                           "HOME=",
                                           "LANG=C.UTF-8",
                                           "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:"
                                           "/usr/bin:/sbin:/bin",
                                           "PORT=",
                                           "PS=web.1",
                                           "PWD="};
        const char *p = text;
        size_t k = 0;

        while ((p = strstr(p, "\nenv:")) != NULL) {
            p += 5;
            snprintf(want, sizeof(want), "%.*s", (int)strcspn(p, "\n"), p);
            cr_assert_lt(k, sizeof keys / sizeof keys[0], "unexpected variable %s", want);
            cr_assert(strncmp(want, keys[k], strlen(keys[k])) == 0, "got %s, wanted %s...", want,
                      keys[k]);
            k++;
        }
        cr_assert_eq(k, sizeof keys / sizeof keys[0], "%zu variables:\n%s", k, text);
        snprintf(want, sizeof(want), "\nenv:PORT=%d\n", port);
        cr_assert_not_null(strstr(text, want), "%s", text);
        snprintf(want, sizeof(want), "\nenv:DROVER_RELEASE=%s\n", j_get(o, "release"));
        cr_assert_not_null(strstr(text, want), "%s", text);
    }

    /* Its own cgroup, in the tracking hierarchy: .../drover.n1-.../i<ID>. */
    {
        const char *line = strstr(text, "\ncgroup:0::");
        size_t n;

        cr_assert_not_null(line, "no v2 line:\n%s", text);
        line += 1;
        n = strcspn(line, "\n");
        snprintf(buf, sizeof buf, "%.*s", (int)n, line);
        snprintf(want, sizeof(want), "/i%llu", id);
        cr_assert_not_null(strstr(buf, "/drover.n1"), "not in the node's subtree: %s", buf);
        cr_assert(n > strlen(want) && strcmp(buf + n - strlen(want), want) == 0,
                  "not in its own cgroup %s: %s", want, buf);
        /* Put there as the kernel made it (clone3 CLONE_INTO_CGROUP), not
         * by a write of the helper's; and, without a memory limit, in no v1
         * memory cgroup of its own (that join takes a machine-wide lock:
         * only an instance with a limit makes it, isolation_test). */
#if defined(__x86_64__)
        cr_assert(h_log_has(&C, ag, "event=spawn_cgroup placed=at_clone"),
                  "not placed at its creation");
        cr_assert(!h_log_has(&C, ag, "placed=joined"), "the helper joined its v2 cgroup");
        /* And the helper's steps (the view, the drop to the app's user,
         * the exec of the command) done by the clone child itself: no
         * helper was exec'd (spawn.c), and all of the above still holds. */
        cr_assert(h_log_has(&C, ag, "event=spawn_steps by=clone_child"),
                  "the helper's steps were not done in the clone child");
#endif
        if (access("/sys/fs/cgroup/memory/cgroup.procs", F_OK) == 0) {
            snprintf(want, sizeof want, "/i%llu\n", id);
            line = strstr(text, ":memory:/");
            cr_assert(line && !(strstr(line, want) && strstr(line, want) < strchr(line, '\n') + 1),
                      "in a v1 memory cgroup of its own without a limit:\n%s", text);
        }
    }
    free(body);
    free(text);

    /* A crash: its exit is seen exactly once, and it restarts as before. */
    cr_assert_eq(kill(pid, SIGKILL), 0);
    o = wait_up(&ps, pid, 30000);
    cr_assert_not_null(o, "web.1 was not restarted");
    pid2 = atoi(j_get(o, "pid"));
    cr_assert_neq(pid2, pid);
    cr_assert_eq(atoi(j_get(o, "restarts")), 1, "restarts %s", j_get(o, "restarts"));
    snprintf(want, sizeof(want), "event=exited app=spawnenv inst=web.1 pid=%d ", pid);
    cr_assert_eq(log_count(ag, want, "signal=9"), 1, "the exit of %d was not seen exactly once",
                 pid);
    snprintf(want, sizeof(want), "event=spawned app=spawnenv inst=web.1 ");
    cr_assert_eq(log_count(ag, want, "pid="), 2, "two spawns: the first and the restart");

    /* A scale-down: one more exit, one only, and nothing left running. */
    cr_assert_eq(CLI(NULL, &err, "scale", "spawnenv", "web=0"), 0, "%s", err);
    free(err);
    for (int waited = 0; waited < 20000 && h_pid_alive(pid2); waited += 100)
        h_msleep(100);
    cr_assert(!h_pid_alive(pid2), "web.1 still runs after the scale-down");
    h_msleep(500);
    snprintf(want, sizeof(want), "event=exited app=spawnenv inst=web.1 pid=%d ", pid2);
    cr_assert_eq(log_count(ag, want, "signal="), 1, "the exit of %d was not seen exactly once",
                 pid2);

    /* A process that ends at once, often before its spawn has reached the
     * loop: every spawn's exit is still seen, once. */
    cr_assert_eq(CLI(NULL, &err, "scale", "spawnenv", "crasher=1"), 0, "%s", err);
    free(err);
    for (int waited = 0;; waited += 100) {
        h_get_ps(&C, "spawnenv", &ps);
        o = h_ps_find(&ps, "crasher.1");
        if (o && atoi(j_get(o, "restarts")) >= 2)
            break;
        cr_assert_lt(waited, 30000, "crasher.1 was not restarted twice");
        h_msleep(100);
    }
    cr_assert_eq(CLI(NULL, &err, "scale", "spawnenv", "crasher=0"), 0, "%s", err);
    free(err);
    h_msleep(1500);
    {
        int spawns = log_count(ag, "event=spawned app=spawnenv inst=crasher.1 ", "pid=");
        int exits = log_count(ag, "event=exited app=spawnenv inst=crasher.1 ", "code=1 ");

        cr_assert_geq(spawns, 2, "%d spawns", spawns);
        cr_assert_eq(exits, spawns, "%d spawns but %d exits seen", spawns, exits);
    }
}
