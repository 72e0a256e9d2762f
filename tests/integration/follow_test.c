/* SPDX-License-Identifier: MIT */
/*
 * follow_test.c: DROVER_JOIN and DROVER_CONTROLLER take a list of
 * controllers (issue 16). An agent whose list starts with a controller that
 * is not there moves to the next one (event=controller_moved), registers,
 * runs what it is given and ships its lines through the log socket that
 * followed it; the CLI skips a controller that refuses connections; bad
 * lists are refused at start with the reason. (Following a standby's
 * ERR_NOT_LEADER is tested against a fake controller in
 * tests/unit/rpc_test.c; the controller side is the HA issue's.) The real
 * binaries; controller ports 7920-7935, app ports 11000-11019.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"

static struct h_cluster C;

static void
fini(void)
{
    h_cleanup(&C);
}

TestSuite(follow, .fini = fini, .timeout = 90);

/* The dead controller: nothing listens at 7928 (API) or 7929-7931 (agent
 * endpoint, notify, logs). */
#define DEAD_API "tcp://127.0.0.1:7928"
#define DEAD_JOIN "tcp://127.0.0.1:7929"

static int
cli_list(char **out, char **err, const char *const *args)
{
    static char ctl[160];

    snprintf(ctl, sizeof ctl, "DROVER_CONTROLLER=%s,%s", DEAD_API, C.api);
    return h_cli_env(&C, out, err, (const char *const[]){ctl, NULL}, args);
}

Test(follow, a_dead_first_controller_is_skipped_by_the_agent_and_the_cli)
{
    static char join[160];
    char *out = NULL, *err = NULL;
    bool seen = false;
    int ctl, agent;

    h_init(&C, "follow", 7920);
    ctl = h_start_controller(&C, NULL);
    cr_assert(h_wait_log(&C, ctl, "event=ready", 10000), "controller not ready");
    snprintf(join, sizeof join, "DROVER_JOIN=%s,%s", DEAD_JOIN, C.join);
    agent = h_start_agent(&C, "n1", "11000-11019",
                          (const char *const[]){join, "DROVER_HEARTBEAT_MS=200", NULL});
    cr_assert(h_wait_log(&C, agent, "event=ready", 20000), "agent not ready");
    cr_assert(h_log_has(&C, agent, "event=controller_moved"), "the agent never moved");

    /* The CLI: the first controller refuses connections, the second serves. */
    cr_assert_eq(cli_list(&out, &err, (const char *const[]){"nodes", NULL}), 0, "%s", err);
    cr_assert(strstr(out, "n1") != NULL, "%s", out);
    free(out), free(err);
    cr_assert_eq(cli_list(NULL, &err, (const char *const[]){"apps:create", "shop", NULL}), 0, "%s",
                 err);
    free(err);
    cr_assert_eq(
        cli_list(NULL, &err,
                 (const char *const[]){"deploy", "shop",
                                       DROVER_SOURCE_DIR "/tests/integration/runapp", NULL}),
        0, "deploy: %s", err);
    free(err);
    cr_assert_eq(cli_list(NULL, &err, (const char *const[]){"scale", "shop", "worker=1", NULL}), 0,
                 "%s", err);
    free(err);

    /* Its lines reach the controller: the log socket followed the agent's
     * move (port + 2 of the live controller, not of the dead one). */
    for (int i = 0; i < 100 && !seen; i++) {
        out = NULL;
        cr_assert_eq(cli_list(&out, NULL, (const char *const[]){"logs", "shop", "-n", "50", NULL}),
                     0);
        seen = strstr(out, "worker.1 tick") != NULL;
        free(out);
        if (!seen)
            h_msleep(200);
    }
    cr_assert(seen, "no line of worker.1 reached the controller");
}

/* Wait up to timeout_ms for procs[idx] to exit; its status, or -1. */
static int
wait_exit(int idx, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 50) {
        int st;

        if (waitpid(C.procs[idx].pid, &st, WNOHANG) == C.procs[idx].pid) {
            C.procs[idx].pid = 0; /* reaped: nothing for the cleanup */
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        h_msleep(50);
    }
    return -1;
}

Test(follow, bad_lists_are_refused_with_the_reason)
{
    char *err = NULL;
    int agent;

    h_init(&C, "follow-bad", 7924);
    agent =
        h_start_agent(&C, "n1", "11020-11029",
                      (const char *const[]){"DROVER_JOIN=tcp://127.0.0.1:7925,,tcp://x:1", NULL});
    cr_assert_eq(wait_exit(agent, 10000), 78, "a bad DROVER_JOIN must exit 78");
    cr_assert(h_log_has(&C, agent, "DROVER_JOIN"), "the agent did not say which variable");
    cr_assert(h_log_has(&C, agent, "empty item"), "the agent did not say why");

    cr_assert_eq(h_cli_env(&C, NULL, &err,
                           (const char *const[]){
                               "DROVER_CONTROLLER=tcp://127.0.0.1:7924,tcp://127.0.0.1:7924", NULL},
                           (const char *const[]){"apps", NULL}),
                 2);
    cr_assert(strstr(err, "listed twice") != NULL, "%s", err);
    free(err);
    err = NULL;
    cr_assert_eq(
        h_cli_env(&C, NULL, &err,
                  (const char *const[]){"DROVER_CONTROLLER=tcp://127.0.0.1:7924,ftp://x:1", NULL},
                  (const char *const[]){"apps", NULL}),
        2);
    cr_assert(strstr(err, "ftp://x:1") != NULL, "%s", err);
    free(err);
}

/* How many of the ports 11030-11039 the watch has printed, within
 * timeout_ms: at least want? */
static bool
wait_ports(int idx, int want, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 200) {
        int seen = 0;

        for (int p = 11030; p <= 11039; p++) {
            char hp[32];

            snprintf(hp, sizeof hp, "127.0.0.1:%d", p);
            seen += h_log_has(&C, idx, hp);
        }
        if (seen >= want)
            return true;
        h_msleep(200);
    }
    return false;
}

/* `endpoints --watch` turns the client's loop only when its socket is
 * readable: the connection must come back by itself when the controller
 * restarts, and the watch go on without a word (a router follows it). */
Test(follow, endpoints_watch_goes_on_across_a_controller_restart)
{
    static char data[320], api[96], agents[96], ctl_env[160], path[512];
    char *err = NULL;
    int ctl, agent, watch, ctl2;

    h_init(&C, "follow-watch", 7932);
    ctl = h_start_controller(&C, NULL);
    cr_assert(h_wait_log(&C, ctl, "event=ready", 10000), "controller not ready");
    agent = h_start_agent(&C, "n1", "11030-11039", NULL);
    cr_assert(h_wait_log(&C, agent, "event=ready", 10000), "agent not ready");
    cr_assert_eq(h_cli(&C, NULL, &err, (const char *const[]){"apps:create", "shop", NULL}), 0, "%s",
                 err);
    free(err);
    cr_assert_eq(h_cli(&C, NULL, &err,
                       (const char *const[]){"deploy", "shop",
                                             DROVER_SOURCE_DIR "/tests/integration/app", NULL}),
                 0, "deploy: %s", err);
    free(err);

    cr_assert_eq(h_cli(&C, NULL, &err, (const char *const[]){"scale", "shop", "web=1", NULL}), 0,
                 "%s", err);
    free(err);

    snprintf(ctl_env, sizeof ctl_env, "DROVER_CONTROLLER=%s", C.api);
    snprintf(path, sizeof path, "%s/drover", h_bin_dir());
    watch = h_start_cmd(&C, "watch",
                        (const char *const[]){path, "endpoints", "shop", "web", "--watch", NULL},
                        (const char *const[]){ctl_env, "DROVER_TIMEOUT_MS=5000",
                                              "DROVER_API_TOKEN=" H_API_TOKEN, NULL});
    cr_assert(wait_ports(watch, 1, 30000), "the watch never showed web.1");

    /* SIGKILL the controller, start it again on the same data. */
    kill(-C.procs[ctl].pid, SIGKILL);
    waitpid(C.procs[ctl].pid, NULL, 0);
    C.procs[ctl].pid = 0;
    snprintf(data, sizeof data, "DROVER_DATA_DIR=%s/controller", C.dir);
    snprintf(api, sizeof api, "DROVER_API_LISTEN=%s", C.api);
    snprintf(agents, sizeof agents, "DROVER_AGENT_LISTEN=%s", C.join);
    ctl2 = h_start(&C, "controller2", "drover-controller",
                   (const char *const[]){data, api, agents, NULL}, NULL);
    cr_assert(h_wait_log(&C, ctl2, "event=ready", 10000), "controller not ready again");
    cr_assert_eq(h_cli(&C, NULL, &err, (const char *const[]){"scale", "shop", "web=2", NULL}), 0,
                 "%s", err);
    free(err);
    /* Well within the watch's own give-up (25 s wait + 5 s timeout). */
    cr_assert(wait_ports(watch, 2, 20000), "the watch did not go on after the restart");
    cr_assert(!h_log_has(&C, watch, "lost the controller"));
}
