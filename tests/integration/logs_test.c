/* SPDX-License-Identifier: MIT */
/*
 * `drover logs` and crash restarts end to end: a real controller and three
 * real agents on loopback, the real CLI. Controller ports 7484-7487, app
 * ports 8250-8399.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "pipes.h"

static struct h_cluster C;

static void
fini(void)
{
    h_cleanup(&C);
}

TestSuite(logs, .fini = fini, .timeout = 240);

#define CLI(out, err, ...) h_cli(&C, out, err, (const char *const[]){__VA_ARGS__, NULL})

static const char *app_dir = DROVER_SOURCE_DIR "/tests/integration/runapp";

static void
start_cluster(const char *test, int base, int port0)
{
    /* Room for the whole flood in the history; a controller stopped for a
     * few seconds on purpose must not declare its nodes down; a CLI killed
     * on purpose is given up on after 3 s. */
    static const char *const ctl_env[] = {"DROVER_LOG_LINES=100000", "DROVER_NODE_TIMEOUT_MS=20000",
                                          "DROVER_RUN_TIMEOUT_MS=3000", NULL};
    char range[32], name[8];
    int idx;

    h_init(&C, test, base);
    idx = h_start_controller(&C, ctl_env);
    cr_assert(h_wait_log(&C, idx, "event=ready", 10000), "controller not ready");
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "n%d", i + 1);
        snprintf(range, sizeof(range), "%d-%d", port0 + 50 * i, port0 + 50 * i + 49);
        /* The flood's end is seen in the agents' own output. */
        idx = h_start_agent(&C, name, range, (const char *const[]){"DROVER_ECHO_APP_LOGS=1", NULL});
        cr_assert(h_wait_log(&C, idx, "event=ready", 10000), "agent %s not ready", name);
    }
    cr_assert_eq(CLI(NULL, NULL, "apps:create", "shop"), 0);
    char *err = NULL;
    cr_assert_eq(CLI(NULL, &err, "deploy", "shop", app_dir), 0, "deploy: %s", err);
    free(err);
}

/* One instance's object from ps --json; false when absent. */
static bool
ps_one(const char *name, struct j_obj *o)
{
    char *out = NULL;
    struct j_obj all[32];
    int n;

    cr_assert_eq(CLI(&out, NULL, "ps", "shop", "--json"), 0);
    n = j_parse_array(out, all, 32);
    cr_assert_geq(n, 0, "%s", out);
    free(out);
    for (int i = 0; i < n; i++) {
        if (strcmp(j_get(&all[i], "name"), name) == 0) {
            *o = all[i];
            return true;
        }
    }
    return false;
}

/* Wait until name is up with a pid other than old_pid; its pid. */
static int
wait_up(const char *name, int old_pid, int timeout_ms, struct j_obj *o)
{
    for (long deadline = p_now_ms() + timeout_ms; p_now_ms() < deadline; h_msleep(50)) {
        if (ps_one(name, o) && strcmp(j_get(o, "state"), "up") == 0 && atoi(j_get(o, "pid")) > 0 &&
            atoi(j_get(o, "pid")) != old_pid)
            return atoi(j_get(o, "pid"));
    }
    cr_assert_fail("%s never came (back) up", name);
    return -1;
}

/* in_ms of the agent's restart_scheduled event for restarts=n. */
static long
scheduled_delay(const char *inst, int n)
{
    char needle[96];

    snprintf(needle, sizeof(needle),
             "event=restart_scheduled app=shop inst=%s restarts=%d in_ms=", inst, n);
    for (int i = 1; i < C.nprocs; i++) {
        FILE *f = fopen(C.procs[i].log, "r");
        char line[1024];
        long v = -1;

        while (f != NULL && fgets(line, sizeof(line), f) != NULL)
            if (strstr(line, needle) != NULL)
                v = atol(strstr(line, needle) + strlen(needle));
        if (f != NULL)
            fclose(f);
        if (v >= 0)
            return v;
    }
    return -1;
}

/* Does text hold "NAME@nK" + what (K one digit: the nodes are n1..n3)? */
static bool
has_event(const char *text, const char *name, const char *what)
{
    char at[64];
    size_t n;

    n = (size_t)snprintf(at, sizeof(at), "%s@n", name);
    for (const char *p = strstr(text, at); p != NULL; p = strstr(p + 1, at))
        if (strncmp(p + n + 1, what, strlen(what)) == 0)
            return true;
    return false;
}

Test(logs, tail_is_live_and_crashes_back_off)
{
    struct p_child tail;
    struct j_obj o;
    char *out = NULL, *err = NULL;

    start_cluster("logs", 7484, 8250);
    cr_assert_eq(CLI(NULL, &err, "scale", "shop", "worker=1", "crasher=1", "flood=1"), 0, "%s",
                 err);
    free(err);

    /* --tail shows each new worker line within a second of its writing
     * (the line carries the time it was written). */
    p_spawn_cli(
        &C, &tail,
        (const char *const[]){"logs", "shop", "--tail", "-n", "0", "--source", "worker.1", NULL});
    int fresh = 0;
    long worst = 0;
    size_t seen = 0;
    for (long deadline = p_now_ms() + 30000; p_now_ms() < deadline && fresh < 8;) {
        p_pump(&tail, 50);
        while (tail.obuf != NULL && strchr(tail.obuf + seen, '\n') != NULL) {
            char *line = tail.obuf + seen, *nl = strchr(line, '\n');
            char *t = strstr(line, " t=");
            long now = p_now_ms();

            seen = (size_t)(nl - tail.obuf) + 1;
            cr_assert(strstr(line, "worker.1@") != NULL, "--source let through: %.*s",
                      (int)(nl - line), line);
            if (t == NULL || t > nl)
                continue;
            long lag = now - atol(t + 3);
            worst = lag > worst ? lag : worst;
            fresh++;
        }
    }
    cr_assert_geq(fresh, 8, "--tail showed %d lines: %s / %s", fresh, tail.obuf ? tail.obuf : "",
                  tail.ebuf ? tail.ebuf : "");
    cr_assert_lt(worst, 1000, "a worker line took %ld ms to show", worst);
    p_free(&tail);

    /* -n, --type and the controller's own events. */
    cr_assert_eq(CLI(&out, NULL, "logs", "shop", "-n", "3", "--type", "worker"), 0);
    int lines = 0;
    for (char *p = out; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    cr_assert_eq(lines, 3, "-n 3 gave:\n%s", out);
    cr_assert(strstr(out, "crasher") == NULL && strstr(out, "drover:") == NULL, "%s", out);
    free(out);
    cr_assert_eq(CLI(&out, NULL, "logs", "shop", "--source", "drover", "-n", "1000"), 0);
    cr_assert(strstr(out, "drover: release v1 created") != NULL, "%s", out);
    cr_assert(strstr(out, "drover: deploy of v1 started") != NULL, "%s", out);
    cr_assert(strstr(out, "drover: scaled worker=1 crasher=1 flood=1") != NULL, "%s", out);
    /* Events name the node: "worker.1@n2 starting -> up". */
    cr_assert(has_event(out, "drover: worker.1", " starting -> up"), "%s", out);
    free(out);

    /* SIGKILL the crasher three times: it comes back each time, restarts
     * counted, the first at once and then with a growing delay. */
    int pid = wait_up("crasher.1", 0, 20000, &o);
    for (int n = 1; n <= 3; n++) {
        cr_assert_eq(kill(pid, SIGKILL), 0);
        pid = wait_up("crasher.1", pid, 20000, &o);
        cr_assert_eq(atoi(j_get(&o, "restarts")), n, "restarts after %d kills: %s", n,
                     j_get(&o, "restarts"));
        cr_assert_str_eq(j_get(&o, "exit_signal"), "9");
    }
    long d1 = scheduled_delay("crasher.1", 1), d2 = scheduled_delay("crasher.1", 2),
         d3 = scheduled_delay("crasher.1", 3);
    cr_assert_eq(d1, 0, "first restart after %ld ms", d1);
    cr_assert(d2 >= 500 && d2 <= 1000, "second restart after %ld ms", d2);
    cr_assert(d3 >= 1000 && d3 <= 2000, "third restart after %ld ms", d3);
    /* ps (human) shows restarts and the last exit; the log says why. */
    cr_assert_eq(CLI(&out, NULL, "ps", "shop"), 0);
    cr_assert(strstr(out, "restarts=3") != NULL && strstr(out, "last exit: signal 9") != NULL, "%s",
              out);
    free(out);
    cr_assert_eq(CLI(&out, NULL, "logs", "shop", "--source", "drover", "-n", "1000"), 0);
    cr_assert(has_event(out, "crasher.1", " up -> crashed (signal 9; restart 2 in "), "%s", out);
    free(out);

    /* Nothing is dropped silently: while the controller does not read, a
     * 20 MB flood overflows the agent's queue and the sockets; the lines
     * that arrive plus those the markers count are every line. */
    int fpid = wait_up("flood.1", 0, 20000, &o);
    struct p_child ft;
    p_spawn_cli(
        &C, &ft,
        (const char *const[]){"logs", "shop", "--tail", "-n", "1", "--source", "flood.1", NULL});
    cr_assert(p_wait_out(&ft, "flood.1 ready", 20000), "tail: %s", ft.ebuf ? ft.ebuf : "");
    cr_assert_eq(kill(C.procs[0].pid, SIGSTOP), 0);
    cr_assert_eq(kill(fpid, SIGUSR1), 0);
    bool done = false;
    for (long deadline = p_now_ms() + 10000; p_now_ms() < deadline && !done; h_msleep(100))
        for (int i = 1; i < C.nprocs && !done; i++)
            done = h_log_has(&C, i, "inst=flood.1 stream=stdout line=\"n=19999 ");
    kill(C.procs[0].pid, SIGCONT);
    cr_assert(done, "the flood never finished");
    /* The marker comes once the queue has room again; only then is the
     * end written, so that it cannot be one of the dropped lines. */
    cr_assert(p_wait_out(&ft, " dropped (log buffer full)\n", 60000),
              "no drop marker arrived after a 20 MB flood");
    cr_assert_eq(kill(fpid, SIGUSR2), 0);
    cr_assert(p_wait_out(&ft, ": flood-done\n", 30000), "flood-done never arrived");
    long numbered = 0, dropped = 0, markers = 0;
    for (char *p = ft.obuf, *nl; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
        const char *t = memmem(p, (size_t)(nl - p), ": ", 2);

        if (t == NULL)
            continue;
        if (strncmp(t + 2, "n=", 2) == 0)
            numbered++;
        else if (strncmp(t + 2, "drover: ", 8) == 0 &&
                 memmem(t, (size_t)(nl - t), " dropped (log buffer full)", 26) != NULL) {
            dropped += atol(t + 10);
            markers++;
        }
    }
    p_free(&ft);
    cr_log_info("flood: %ld lines arrived, %ld dropped (%ld markers); worst tail lag %ld ms",
                numbered, dropped, markers, worst);
    cr_assert_gt(markers, 0, "20 MB and nothing dropped? %ld lines", numbered);
    cr_assert_eq(numbered + dropped, 20000, "%ld lines arrived, markers count %ld dropped",
                 numbered, dropped);

    /* An attached one-off whose CLI dies without a word is stopped. */
    struct p_child run;
    p_spawn_cli(&C, &run,
                (const char *const[]){"run", "shop", "--", "echo started; sleep 600", NULL});
    cr_assert(p_wait_out(&run, "started", 20000), "one-off never started");
    cr_assert(ps_one("run.1", &o), "run.1 not in ps");
    p_kill(&run, SIGKILL);
    p_free(&run);
    bool gone = false;
    for (long deadline = p_now_ms() + 40000; p_now_ms() < deadline && !gone; h_msleep(200))
        gone = !ps_one("run.1", &o);
    cr_assert(gone, "the one-off outlived its CLI");
    cr_assert_eq(CLI(&out, NULL, "logs", "shop", "--source", "drover", "-n", "1000"), 0);
    /* Named with its node, as every event: "run.1@n2 stopped: ...". */
    cr_assert(has_event(out, "run.1", " stopped: the CLI went away"), "%s", out);
    free(out);
}
