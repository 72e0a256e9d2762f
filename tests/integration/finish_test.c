/* SPDX-License-Identifier: MIT */
/*
 * The last gaps of issue 11, each met through the real CLI against a real
 * controller and real agents: a release that crashes at boot runs once, a
 * starting instance promises no restart, events tell a rolling deploy's
 * twins apart, a drain says its one-off is stopping, a killed agent's node
 * is unreachable in `nodes`, and echoed app lines never block an agent
 * whose stdout nobody reads. Controller ports 7720-7731, app ports
 * 10620-10699.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "pipes.h"

static struct h_cluster C;
static char marks[64]; /* world-writable, outside /tmp: where apps leave marks */

static void
fini(void)
{
    h_cleanup(&C);
    h_rm_rf(marks);
}

TestSuite(finish, .fini = fini, .timeout = 240);

#define CLI(out, err, ...) h_cli(&C, out, err, (const char *const[]){__VA_ARGS__, NULL})

static const char *run_app = DROVER_SOURCE_DIR "/tests/integration/runapp";

/* The live instance named name in ps --json: its field key, in buf ("" when
 * absent). */
static const char *
ps_field(const char *app, const char *name, const char *key, char *buf, size_t bufsz)
{
    struct h_ps ps;
    const struct j_obj *o;

    h_get_ps(&C, app, &ps);
    o = h_ps_find(&ps, name);
    snprintf(buf, bufsz, "%s", o != NULL ? j_get(o, key) : "");
    return buf;
}

static bool
wait_state(const char *app, const char *name, const char *state, int timeout_ms)
{
    char buf[64];

    for (long deadline = p_now_ms() + timeout_ms; p_now_ms() < deadline; h_msleep(200))
        if (strcmp(ps_field(app, name, "state", buf, sizeof(buf)), state) == 0)
            return true;
    return false;
}

/* Lines in path (0 when it does not exist). */
static int
count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    int n = 0, ch;

    if (f == NULL)
        return 0;
    while ((ch = fgetc(f)) != EOF)
        n += ch == '\n';
    fclose(f);
    return n;
}

/* ---- items 3, 15, 16: a crashing release runs once; no promise while starting ---- */

#define WEB "web: exec python3 -m http.server $PORT --bind 127.0.0.1\n"

Test(finish, a_crashing_release_runs_once_and_a_starting_instance_promises_nothing)
{
    char *out = NULL, *err = NULL, procfile[512], ran[128], buf[160];
    int rc;

    /* Outside /tmp, writable by the apps' user (nobody when run as root). */
    h_shared_dir(marks, sizeof(marks), "finish");
    snprintf(ran, sizeof(ran), "%s/ran", marks);

    h_start_cluster(&C, "finish-crash", 7720, 1, 10620, 20, NULL, NULL);
    cr_assert_eq(CLI(NULL, NULL, "apps:create", "shop"), 0);
    rc = CLI(NULL, &err, "deploy", "shop", h_app_dir(&C, "good", WEB));
    cr_assert_eq(rc, 0, "deploy: %s", err);
    free(err);
    cr_assert(wait_state("shop", "web.1", "up", 20000));
    cr_assert_eq(CLI(NULL, NULL, "settings:set", "shop", "web", "boot_timeout=8s"), 0);

    /* Item 3: v2 crashes at once, every time it starts. The deploy fails at
     * its first crash and the agent does not start it again before the
     * controller has heard of that crash: its code runs exactly once. */
    snprintf(procfile, sizeof(procfile), "web: echo \"ran $$\" >> %s; exit 3\n", ran);
    rc = CLI(&out, &err, "deploy", "shop", h_app_dir(&C, "crashy", procfile));
    cr_assert_eq(rc, 1, "a release that crashes deployed: %s%s", out, err);
    cr_assert(strstr(err, "web.1 crashed (exit code 3)") != NULL, "%s", err);
    free(out), free(err);
    h_msleep(2 * 2000 + 1000); /* twice the agent's hold, and then some */
    cr_assert_eq(count_lines(ran), 1, "the crashing release ran %d times", count_lines(ran));
    /* Item 15: the new web.1 shares its name and node with the old one:
     * the release tells them apart. */
    cr_assert(h_wait_logs(&C, "shop", "-> crashed (exit code 3; not restarted: its deploy failed)",
                          5000, &out),
              "%s", out);
    cr_assert(strstr(out, "web.1@n1 (v2) pending -> ") != NULL, "%s", out);
    free(out);
    cr_assert(wait_state("shop", "web.1", "up", 10000), "v1 is not back");
    cr_assert_str_eq(ps_field("shop", "web.1", "release", buf, sizeof(buf)), "1");

    /* Item 15: a rolling deploy that works; its replacement is named with
     * its release while the original is there. */
    rc = CLI(NULL, &err, "deploy", "shop", h_app_dir(&C, "good3", WEB "boots: sleep 1; exit 3\n"));
    cr_assert_eq(rc, 0, "deploy: %s", err);
    free(err);
    cr_assert(h_wait_logs(&C, "shop", "web.1@n1 (v3) starting -> up", 5000, &out), "%s", out);
    cr_assert(strstr(out, "web.1@n1 (v1) up -> draining") != NULL ||
                  strstr(out, "web.1@n1 (v1) up -> stopped") != NULL,
              "%s", out);
    free(out);

    /* Item 16: an instance that crashes at boot, again and again. While
     * crashed it says when it restarts; once starting again, its reason
     * (the agent's own text, as ps --json shows it) promises nothing. */
    cr_assert_eq(CLI(NULL, NULL, "scale", "shop", "boots=1"), 0);
    bool crashed_seen = false, starting_seen = false;
    for (long end = p_now_ms() + 20000; p_now_ms() < end && !(crashed_seen && starting_seen);
         h_msleep(100)) {
        struct h_ps ps;
        const struct j_obj *o;

        h_get_ps(&C, "shop", &ps);
        if ((o = h_ps_find(&ps, "boots.1")) == NULL)
            continue;
        const char *st = j_get(o, "state"), *why = j_get(o, "reason");
        int restarts = atoi(j_get(o, "restarts"));

        if (strcmp(st, "crashed") == 0 && strstr(why, "restart ") != NULL) {
            cr_assert(strstr(why, " in 2.0 s") != NULL || strstr(why, " in ") != NULL, "%s", why);
            crashed_seen = true;
        }
        if (strcmp(st, "starting") == 0 && restarts >= 1) {
            cr_assert(strstr(why, "restart") == NULL, "a starting instance's reason: %s", why);
            starting_seen = true;
        }
    }
    cr_assert(crashed_seen, "never seen crashed with its restart plan");
    cr_assert(starting_seen, "never seen starting after a crash");
}

/* ---- items 4 and 6: a drain's one-off, a killed agent's node ---- */

Test(finish, a_drain_says_its_one_off_stops_and_a_killed_agent_is_unreachable)
{
    char *out = NULL, *err = NULL, name[32], want[96], buf[64];
    int rc;

    h_start_cluster(&C, "finish-drain", 7724, 2, 10640, 20, NULL, NULL);
    cr_assert_eq(CLI(NULL, NULL, "apps:create", "shop"), 0);
    cr_assert_eq(CLI(NULL, &err, "deploy", "shop", run_app), 0, "%s", err);
    free(err);

    /* Item 4: a one-off slow to stop (4 s of its grace): the drain's
     * progress says it is stopping and is never replaced. */
    rc = CLI(&out, &err, "run", "shop", "--detach", "--node", "n2", "--",
             "trap 'sleep 4; exit 0' TERM; while :; do sleep 0.2; done");
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(sscanf(out, "%31s", name), 1);
    cr_assert(strncmp(name, "run.", 4) == 0, "%s", out);
    free(out), free(err);
    cr_assert(wait_state("shop", name, "up", 20000), "%s never ran", name);
    long t0 = p_now_ms();
    rc = CLI(&out, &err, "nodes:drain", "n2", "--timeout", "30");
    cr_assert_eq(rc, 0, "drain: %s%s", out, err);
    cr_assert(strstr(out, "1 one-off stopping (never replaced)") != NULL, "%s", out);
    cr_assert(strstr(out, "until replaced") == NULL, "%s", out);
    cr_assert_geq(p_now_ms() - t0, 3000, "the drain did not wait for the one-off's end");
    free(out), free(err);
    snprintf(want, sizeof(want), "%s stopped: n2 drained", name);
    cr_assert(h_wait_logs(&C, "shop", want, 5000, &out), "%s", out);
    free(out);

    /* Item 6: n1's agent is killed; its orphans keep serving, and both ps
     * and nodes say the node cannot be reached, until it is down. */
    cr_assert_eq(CLI(NULL, NULL, "scale", "shop", "crasher=1"), 0);
    cr_assert(wait_state("shop", "crasher.1", "up", 20000));
    kill(-C.procs[1].pid, SIGKILL);
    bool said = false;
    for (long end = p_now_ms() + 10000; !said && p_now_ms() < end; h_msleep(200)) {
        cr_assert_eq(CLI(&out, NULL, "nodes"), 0);
        said = strstr(out, "ready (unreachable ") != NULL;
        if (!said)
            free(out);
    }
    cr_assert(said, "nodes does not say n1 is unreachable");
    char *row = strstr(out, "\nn1 ");
    cr_assert(row != NULL && strstr(row, "ready (unreachable ") != NULL, "%s", out);
    free(out);
    struct j_obj nodes[4];
    int n = h_get_nodes(&C, nodes, 4);
    bool json = false;
    for (int i = 0; i < n; i++)
        if (strcmp(j_get(&nodes[i], "name"), "n1") == 0)
            json = atoll(j_get(&nodes[i], "unreachable_ms")) >= 3000;
        else
            cr_assert_str_eq(j_get(&nodes[i], "unreachable_ms"), "0");
    cr_assert(json, "nodes --json has no unreachable_ms for n1");
    cr_assert_eq(CLI(&out, NULL, "status"), 0);
    cr_assert(strstr(out, "(1 unreachable)") != NULL, "%s", out);
    free(out);
    cr_assert(strstr(ps_field("shop", "crasher.1", "reason", buf, sizeof(buf)),
                     "node n1 unreachable") != NULL,
              "%s", buf);
    /* Down: no longer "unreachable", its instances are lost. */
    for (long end = p_now_ms() + 15000; p_now_ms() < end; h_msleep(200))
        if (strcmp(h_node_state(&C, "n1", buf, sizeof(buf)), "down") == 0)
            break;
    cr_assert_str_eq(buf, "down");
    cr_assert_eq(CLI(&out, NULL, "nodes"), 0);
    cr_assert(strstr(out, "unreachable") == NULL, "%s", out);
    free(out);
}

/* ---- Also: echoed app lines never block an agent whose stdout stalls ---- */

/* The child of parent whose comm is comm, or 0. */
static int
child_named(int parent, const char *comm)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    int found = 0;

    cr_assert_not_null(d);
    while (found == 0 && (de = readdir(d)) != NULL) {
        int pid = atoi(de->d_name), ppid = 0;
        char path[64], text[512], *rp, name[32] = "";
        FILE *f;
        size_t n;

        if (pid <= 0)
            continue;
        snprintf(path, sizeof(path), "/proc/%d/stat", pid);
        if ((f = fopen(path, "r")) == NULL)
            continue;
        n = fread(text, 1, sizeof(text) - 1, f);
        fclose(f);
        text[n] = '\0';
        if ((rp = strrchr(text, ')')) == NULL || sscanf(rp + 2, "%*c %d", &ppid) != 1 ||
            ppid != parent)
            continue;
        snprintf(path, sizeof(path), "/proc/%d/comm", pid);
        if ((f = fopen(path, "r")) != NULL) {
            if (fgets(name, sizeof(name), f) == NULL)
                name[0] = '\0';
            fclose(f);
        }
        name[strcspn(name, "\n")] = '\0';
        if (strcmp(name, comm) == 0)
            found = pid;
    }
    closedir(d);
    return found;
}

Test(finish, echoed_app_lines_never_block_an_agent_whose_stdout_stalls)
{
    char agent[600], data[320], join[96], state[32], *out = NULL, *err = NULL;
    int idx, rc;

    h_init(&C, "finish-echo", 7728);
    idx = h_start_controller(&C, NULL);
    cr_assert(h_wait_log(&C, idx, "event=ready", 10000), "controller not ready");
    /* The agent's stdout is a pipe into a process that never reads it. */
    snprintf(agent, sizeof(agent), "'%s/drover-agent' | exec sleep 100000", h_bin_dir());
    snprintf(data, sizeof(data), "DROVER_DATA_DIR=%s/agent-n1", C.dir);
    snprintf(join, sizeof(join), "DROVER_JOIN=%s", C.join);
    const char *env[] = {data,
                         "DROVER_NODE_NAME=n1",
                         join,
                         "DROVER_PORT_RANGE=10680-10699",
                         "DROVER_CLUSTER_KEY=" H_CLUSTER_KEY,
                         "DROVER_ECHO_APP_LOGS=1",
                         NULL};
    idx = h_start_cmd(&C, "n1", (const char *const[]){"/bin/sh", "-c", agent, NULL}, env);
    bool ready = false;
    for (long end = p_now_ms() + 10000; !ready && p_now_ms() < end; h_msleep(200))
        ready = strcmp(h_node_state(&C, "n1", state, sizeof(state)), "ready") == 0;
    cr_assert(ready, "the agent never joined");
    int agent_pid = child_named(C.procs[idx].pid, "drover-agent");
    int reader = child_named(C.procs[idx].pid, "sleep");
    cr_assert_gt(agent_pid, 0);
    cr_assert_gt(reader, 0);

    /* About 1 MB of lines at once (the pipe holds 64 KiB), then, after a
     * pause, a last line. */
    cr_assert_eq(CLI(NULL, NULL, "apps:create", "shop"), 0);
    rc = CLI(
        NULL, &err, "deploy", "shop",
        h_app_dir(&C, "flood",
                  "flood: i=0; while [ $i -lt 5000 ]; do echo \"flood $i "
                  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                  "aaaaaaaaaaaa\"; i=$((i+1)); done; sleep 2; echo FLOOD-END; exec sleep 600\n"
                  "other: exec sleep 600\n"));
    cr_assert_eq(rc, 0, "deploy: %s", err);
    free(err);
    cr_assert_eq(CLI(NULL, NULL, "scale", "shop", "flood=1"), 0);
    /* The app's lines reach its stream... */
    cr_assert(h_wait_logs(&C, "shop", "FLOOD-END", 40000, &out), "the flood's end never arrived");
    free(out);
    /* ...and the agent still does its work: it starts another instance
     * and reports it (its own events go to the same stalled pipe). */
    for (int round = 0; round < 2; round++) { /* a few KiB of the agent's own events */
        cr_assert_eq(CLI(NULL, NULL, "scale", "shop", "other=3"), 0);
        for (int k = 1; k <= 3; k++) {
            char name[16];

            snprintf(name, sizeof(name), "other.%d", k);
            cr_assert(wait_state("shop", name, "up", 20000), "the agent stopped answering");
        }
        cr_assert_eq(CLI(NULL, NULL, "scale", "shop", "other=0"), 0);
        bool gone = false;
        for (long end = p_now_ms() + 20000; !gone && p_now_ms() < end; h_msleep(200)) {
            struct h_ps ps;

            h_get_ps(&C, "shop", &ps);
            gone = h_ps_count(&ps, "other", NULL, NULL) == 0;
        }
        cr_assert(gone, "the agent stopped answering: other still runs");
    }

    /* The pipe: echoed lines filled about half of it, no more, so the
     * agent's own events still had room. */
    char path[64];
    int queued = -1, size, fd;
    snprintf(path, sizeof(path), "/proc/%d/fd/0", reader);
    fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
    size = fcntl(fd, F_GETPIPE_SZ);
    cr_assert_eq(ioctl(fd, FIONREAD, &queued), 0);
    close(fd);
    cr_log_info("agent stdout pipe: %d of %d bytes queued", queued, size);
    cr_assert_geq(queued, size / 2 - 4096, "the app's lines were not echoed (%d of %d)", queued,
                  size);
    cr_assert_lt(queued, size, "the pipe is full: the agent's next event would block");
    char wchan[64] = "";
    snprintf(path, sizeof(path), "/proc/%d/wchan", agent_pid);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    if (fgets(wchan, sizeof(wchan), f) == NULL)
        wchan[0] = '\0';
    fclose(f);
    cr_assert(strstr(wchan, "pipe_write") == NULL, "the agent is stuck writing: %s", wchan);
}
