/* SPDX-License-Identifier: MIT */
/*
 * storefail_test.c: a failed commit changes nothing and stops nothing. The
 * controller's data dir is a small tmpfs; in the middle of work the test
 * fills it: scale and config:set are refused with "the controller's disk is
 * full", ps and config read as before, the app keeps serving, status and the
 * log say the store is failing (once); once space is free the next write
 * works, with no restart. Needs root (mount); skipped otherwise.
 * Controller ports 7640-7643; app ports 10500-10549.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static struct h_cluster C;
static char mnt[320];

static void
fini(void)
{
    /* The controller first (it holds files there), then the mount. */
    for (int i = 0; i < C.nprocs; i++) {
        if (C.procs[i].pid > 0) {
            kill(-C.procs[i].pid, SIGKILL);
            waitpid(C.procs[i].pid, NULL, 0);
            C.procs[i].pid = 0;
        }
    }
    if (mnt[0] != '\0')
        umount2(mnt, MNT_DETACH);
    mnt[0] = '\0';
    h_cleanup(&C);
}

TestSuite(storefail, .fini = fini, .timeout = 180);

#define CLI(out, err, ...) h_cli(&C, out, err, (const char *const[]){__VA_ARGS__, NULL})

static const char *app_dir = DROVER_SOURCE_DIR "/tests/integration/app";

static long
mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static bool
wait_web(int up, int total, int timeout_ms, struct h_ps *ps)
{
    long deadline = mono() + timeout_ms;

    do {
        h_get_ps(&C, "shop", ps);
        if (h_ps_count(ps, "web", "up", NULL) == up && ps->n == total)
            return true;
        h_msleep(100);
    } while (mono() < deadline);
    return false;
}

/* Fill the file system under dir until it is full; returns bytes written. */
static long
fill(const char *path)
{
    static char block[65536];
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    long total = 0;
    ssize_t n;

    cr_assert_geq(fd, 0);
    memset(block, 'x', sizeof(block));
    for (size_t sz = sizeof(block); sz > 0; sz /= 2) {
        while ((n = write(fd, block, sz)) > 0)
            total += n;
    }
    close(fd);
    return total;
}

static char *
slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    char *all = NULL;
    size_t len = 0;

    if (f == NULL)
        return strdup("");
    while ((n = getline(&buf, &cap, f)) > 0) {
        all = realloc(all, len + (size_t)n + 1);
        memcpy(all + len, buf, (size_t)n + 1);
        len += (size_t)n;
    }
    free(buf);
    fclose(f);
    return all != NULL ? all : strdup("");
}

Test(storefail, a_full_disk_refuses_writes_changes_nothing_and_stops_nothing)
{
    char data[400], filler[400], *out = NULL, *err = NULL, *cfg_before = NULL, *log;
    char big[20000];
    struct h_ps ps, ps2;
    const char *env[] = {data, "DROVER_NODE_TIMEOUT_MS=3000", "DROVER_HEARTBEAT_MS=300", NULL};
    int ctl, agt, port, rc;
    char *body;

    if (geteuid() != 0)
        cr_skip_test("needs root to mount a tmpfs");
    h_init(&C, "storefail", 7640);
    snprintf(mnt, sizeof(mnt), "%s/ctldata", C.dir);
    cr_assert_eq(mkdir(mnt, 0750), 0);
    cr_assert_eq(mount("tmpfs", mnt, "tmpfs", 0, "size=6m,mode=0750"), 0, "mount: %s",
                 strerror(errno));
    snprintf(data, sizeof(data), "DROVER_DATA_DIR=%s", mnt);
    snprintf(filler, sizeof(filler), "%s/filler", mnt);
    ctl = h_start_controller(&C, env);
    cr_assert(h_wait_log(&C, ctl, "event=ready", 10000), "controller not ready");
    agt = h_start_agent(&C, "n1", "10500-10549",
                        (const char *const[]){"DROVER_HEARTBEAT_MS=300", NULL});
    cr_assert(h_wait_log(&C, agt, "event=ready", 10000), "agent not ready");
    cr_assert_eq(CLI(NULL, &err, "apps:create", "shop"), 0, "%s", err);
    free(err);
    cr_assert_eq(CLI(&out, &err, "deploy", "shop", app_dir), 0, "%s %s", out, err);
    free(out);
    free(err);
    cr_assert_eq(CLI(&out, &err, "config:set", "shop", "GREETING=hello"), 0, "%s", err);
    free(out);
    free(err);
    cr_assert(wait_web(1, 1, 30000, &ps), "web.1 never came up");
    cr_assert_eq(CLI(&cfg_before, &err, "config", "shop"), 0, "%s", err);
    free(err);

    /* The disk fills in the middle of work. */
    cr_assert_gt(fill(filler), 0);
    rc = CLI(&out, &err, "scale", "shop", "web=3");
    cr_assert_eq(rc, 1, "scale on a full disk: exit %d, %s %s", rc, out, err);
    cr_assert_not_null(strstr(err, "the controller's disk is full"), "scale said: %s", err);
    free(out);
    free(err);
    memset(big, 'v', sizeof(big) - 1);
    memcpy(big, "BIG=", 4);
    big[sizeof(big) - 1] = '\0';
    rc = CLI(&out, &err, "config:set", "shop", big);
    cr_assert_eq(rc, 1, "config:set on a full disk: exit %d", rc);
    cr_assert_not_null(strstr(err, "the controller's disk is full"), "config:set said: %s", err);
    free(out);
    free(err);

    /* Nothing changed, nothing stopped: reads, the app, the agent. */
    h_get_ps(&C, "shop", &ps2);
    cr_assert_eq(ps2.n, 1, "ps changed: %d instances", ps2.n);
    cr_assert_eq(h_ps_count(&ps2, "web", "up", NULL), 1);
    cr_assert_str_eq(j_get(&ps2.o[0], "pid"), j_get(&ps.o[0], "pid"));
    cr_assert_eq(CLI(&out, &err, "config", "shop"), 0, "%s", err);
    cr_assert_str_eq(out, cfg_before, "config changed:\n%s", out);
    free(out);
    free(err);
    port = atoi(j_get(&ps2.o[0], "port"));
    body = h_http_get("127.0.0.1", port, 2000);
    cr_assert_not_null(body, "the app stopped serving");
    free(body);
    cr_assert_eq(CLI(&out, &err, "endpoints", "shop"), 0, "endpoints: %s", err);
    cr_assert_not_null(strstr(out, j_get(&ps2.o[0], "port")), "endpoints: %s", out);
    free(out);
    free(err);
    cr_assert_eq(CLI(&out, &err, "status"), 0, "%s", err);
    log = slurp(C.procs[ctl].log);
    cr_assert_not_null(strstr(out, "store failing"), "status: %s\nlog: %s", out, log);
    free(log);
    cr_assert_not_null(strstr(out, "disk is full"), "status: %s", out);
    free(out);
    free(err);
    /* The app crashes meanwhile: its agent restarts it and reports it; the
     * report cannot be stored, so ps still says what the store has. */
    cr_assert_eq(kill((pid_t)atoi(j_get(&ps.o[0], "pid")), SIGKILL), 0);
    h_msleep(1500); /* heartbeats go on meanwhile: the node stays ready */
    h_get_ps(&C, "shop", &ps2);
    cr_assert_str_eq(j_get(&ps2.o[0], "pid"), j_get(&ps.o[0], "pid"),
                     "ps moved ahead of the store");
    cr_assert_eq(CLI(&out, &err, "nodes"), 0, "%s", err);
    cr_assert_not_null(strstr(out, "ready"), "nodes: %s", out);
    free(out);
    free(err);
    cr_assert(h_pid_alive(C.procs[ctl].pid), "the controller died");

    /* Space again: the next write works, no restart. */
    cr_assert_eq(unlink(filler), 0);
    rc = CLI(&out, &err, "scale", "shop", "web=2");
    cr_assert_eq(rc, 0, "scale after freeing space: %s %s", out, err);
    free(out);
    free(err);
    cr_assert(wait_web(2, 2, 30000, &ps2), "web=2 never came up");
    /* The crash reported while the disk was full comes again (the agent
     * is asked for a full report): web.1 has its new pid and a restart. */
    {
        const struct j_obj *w1 = NULL;
        long deadline = mono() + 10000;

        do {
            h_get_ps(&C, "shop", &ps2);
            w1 = h_ps_find(&ps2, "web.1");
            if (w1 != NULL && strcmp(j_get(w1, "pid"), j_get(&ps.o[0], "pid")) != 0 &&
                atoi(j_get(w1, "restarts")) >= 1)
                break;
            h_msleep(100);
        } while (mono() < deadline);
        cr_assert(w1 != NULL && strcmp(j_get(w1, "pid"), j_get(&ps.o[0], "pid")) != 0 &&
                      atoi(j_get(w1, "restarts")) >= 1,
                  "the crash reported during the failure never reached ps");
    }
    cr_assert_eq(CLI(&out, &err, "config:set", "shop", "AFTER=1"), 0, "%s", err);
    free(out);
    free(err);
    cr_assert(h_wait_log(&C, ctl, "event=store_recovered", 5000), "no store_recovered");
    cr_assert_eq(CLI(&out, &err, "status"), 0, "%s", err);
    cr_assert_null(strstr(out, "store failing"), "status still failing: %s", out);
    free(out);
    free(err);
    log = slurp(C.procs[ctl].log);
    cr_assert_eq(h_count(log, "event=store_failed"), 1, "store_failed not once per episode");
    cr_assert_eq(h_count(log, "event=store_recovered"), 1);
    free(log);
    free(cfg_before);
    cr_assert(h_pid_alive(C.procs[ctl].pid), "the controller died");
}
