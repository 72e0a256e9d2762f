/* SPDX-License-Identifier: MIT */
/*
 * `drover run` end to end: a real controller and three real agents on
 * loopback, the real CLI. Controller ports 7480-7483, app ports 8100-8249.
 * One test, one cluster: each step is quick and the cluster is not.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nanomsg/nn.h>
#include <nanomsg/pipeline.h>

#include "ask.h"
#include "harness.h"
#include "pipes.h"
#include "wire.h"

static struct h_cluster C;

static void
fini(void)
{
    h_cleanup(&C);
}

TestSuite(run, .fini = fini, .timeout = 240);

#define CLI(out, err, ...) h_cli(&C, out, err, (const char *const[]){__VA_ARGS__, NULL})
#define RUN(in, out, err, ...)                                                                     \
    p_cli(&C, in, slen(in), out, err, 30000, (const char *const[]){__VA_ARGS__, NULL})

static size_t
slen(const char *s)
{
    return s != NULL ? strlen(s) : 0;
}

static const char *app_dir = DROVER_SOURCE_DIR "/tests/integration/runapp";

static void
start_cluster(const char *test, int base, int port0)
{
    char range[32], name[8];
    int idx;

    h_init(&C, test, base);
    idx = h_start_controller(&C, NULL);
    cr_assert(h_wait_log(&C, idx, "event=ready", 10000), "controller not ready");
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "n%d", i + 1);
        snprintf(range, sizeof(range), "%d-%d", port0 + 50 * i, port0 + 50 * i + 49);
        idx = h_start_agent(&C, name, range, NULL);
        cr_assert(h_wait_log(&C, idx, "event=ready", 10000), "agent %s not ready", name);
    }
    cr_assert_eq(CLI(NULL, NULL, "apps:create", "shop"), 0);
    cr_assert_eq(CLI(NULL, NULL, "config:set", "shop", "GREETING=howdy"), 0);
    char *err = NULL;
    cr_assert_eq(CLI(NULL, &err, "deploy", "shop", app_dir), 0, "deploy: %s", err);
    free(err);
}

/* The run.N lines of ps --json, as objects. */
static int
runs_in_ps(struct j_obj *o, int max)
{
    char *out = NULL;
    struct j_obj all[32];
    int n, k = 0;

    cr_assert_eq(CLI(&out, NULL, "ps", "shop", "--json"), 0);
    n = j_parse_array(out, all, 32);
    cr_assert_geq(n, 0, "%s", out);
    for (int i = 0; i < n; i++)
        if (strcmp(j_get(&all[i], "type"), "run") == 0 && k < max)
            o[k++] = all[i];
    free(out);
    return k;
}

/* Send m to endpoint on a REQ socket; the reply must be an Error. */
static void
expect_error(const char *endpoint, Drover__Message *m, const char *what)
{
    struct wire_sender snd;
    Drover__Message *rep = NULL;
    int rc;

    wire_sender_init(&snd, "test");
    rc = h_ask(endpoint, &snd, m, 5000, &rep);
    cr_assert_neq(rc, -ETIMEDOUT, "no reply to %s", what);
    cr_assert_eq(rc, 0, "the reply to %s does not open: %s", what, wire_strerror(rc));
    cr_assert_eq(rep->body_case, DROVER__MESSAGE__BODY_ERROR, "%s was not refused", what);
    wire_msg_free(rep);
}

/* Bad input to the new requests and the log socket changes nothing. */
static void
bad_input(void)
{
    Drover__Message m = DROVER__MESSAGE__INIT;
    Drover__RunIoReq io = DROVER__RUN_IO_REQ__INIT;
    Drover__RunReq rr = DROVER__RUN_REQ__INIT;
    Drover__LogsReq lr = DROVER__LOGS_REQ__INIT;
    char logs_ep[64], cmd[200];
    uint8_t junk[2000];

    io.id = 424242;
    m.body_case = DROVER__MESSAGE__BODY_RUN_IO_REQ;
    m.run_io_req = &io;
    expect_error(C.api, &m, "a RunIoReq for no session");
    rr.app = "shop";
    rr.command = "true";
    rr.node = "../etc";
    m.body_case = DROVER__MESSAGE__BODY_RUN_REQ;
    m.run_req = &rr;
    expect_error(C.api, &m, "a RunReq with a bad node name");
    rr.node = "";
    rr.rows = 70000;
    expect_error(C.api, &m, "a RunReq with a silly window");
    lr.app = "shop";
    lr.source = "no spaces allowed";
    m.body_case = DROVER__MESSAGE__BODY_LOGS_REQ;
    m.logs_req = &lr;
    expect_error(C.api, &m, "a LogsReq with a bad source");
    lr.source = "";
    lr.wait_ms = 999999;
    expect_error(C.api, &m, "a LogsReq waiting too long");
    cr_assert_eq(CLI(NULL, NULL, "logs", "nope"), 1);
    cr_assert_eq(CLI(NULL, NULL, "logs", "shop", "--source", "a b"), 2);
    cr_assert_eq(CLI(NULL, NULL, "logs", "shop", "-n", "x"), 2);
    cr_assert_eq(CLI(NULL, NULL, "run", "shop"), 2);
    /* Junk on the log endpoint: through nanomsg, and as raw TCP. */
    snprintf(logs_ep, sizeof(logs_ep), "tcp://127.0.0.1:%d", C.base_port + 3);
    int s = nn_socket(AF_SP, NN_PUSH), tmo = 2000;
    nn_setsockopt(s, NN_SOL_SOCKET, NN_SNDTIMEO, &tmo, sizeof(tmo));
    cr_assert_geq(nn_connect(s, logs_ep), 0);
    srand(11);
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)rand();
    cr_assert_geq(nn_send(s, junk, sizeof(junk), 0), 0);
    nn_close(s);
    snprintf(cmd, sizeof(cmd),
             "bash -c 'head -c 3000 /dev/urandom > /dev/tcp/127.0.0.1/%d' 2>/dev/null",
             C.base_port + 3);
    (void)!system(cmd);
    cr_assert_eq(CLI(NULL, NULL, "ps", "shop"), 0, "the controller stopped serving");
}

Test(run, exit_codes_streams_stdin_node_config_detach_pty)
{
    char *out = NULL, *err = NULL;
    int rc;

    start_cluster("run", 7480, 8100);
    bad_input();

    /* Exit codes: the command's own, and 128+9 for one killed by SIGKILL. */
    rc = RUN(NULL, &out, &err, "run", "shop", "--", "true");
    cr_assert_eq(rc, 0, "true: %d %s", rc, err);
    free(out), free(err);
    rc = RUN(NULL, &out, &err, "run", "shop", "--", "sh", "-c",
             "echo to-out; echo to-err >&2; exit 7");
    cr_assert_eq(rc, 7, "exit 7 gave %d (%s)", rc, err);
    /* stdout and stderr arrive apart. */
    cr_assert_str_eq(out, "to-out\n");
    cr_assert(strstr(err, "to-err\n") != NULL && strstr(out, "to-err") == NULL, "err: %s", err);
    free(out), free(err);
    rc = RUN(NULL, NULL, NULL, "run", "shop", "--", "kill -9 $$");
    cr_assert_eq(rc, 128 + 9, "a SIGKILLed one-off gave %d", rc);

    /* The release's config, a PORT, DYNO=run.N. */
    rc = RUN(NULL, &out, &err, "run", "shop", "--", "echo G=$GREETING D=$DYNO P=$PORT");
    cr_assert_eq(rc, 0, "%s", err);
    int port = -1;
    char dyno[32] = "";
    cr_assert(strstr(out, "G=howdy ") != NULL, "config not seen: %s", out);
    cr_assert_eq(sscanf(strstr(out, "D="), "D=%31s P=%d", dyno, &port), 2, "%s", out);
    cr_assert(strncmp(dyno, "run.", 4) == 0, "DYNO=%s", dyno);
    cr_assert(port >= 8100 && port <= 8249, "PORT=%d", port);
    free(out), free(err);

    /* --node: HOME is the release directory under that node's agent. */
    for (int i = 1; i <= 3; i++) {
        char node[8], want[32];
        snprintf(node, sizeof(node), "n%d", i);
        snprintf(want, sizeof(want), "/agent-%s/", node);
        rc = RUN(NULL, &out, &err, "run", "shop", "--node", node, "--", "echo $HOME");
        cr_assert_eq(rc, 0, "--node %s: %s", node, err);
        cr_assert(strstr(out, want) != NULL, "--node %s ran in %s", node, out);
        free(out), free(err);
    }
    cr_assert_eq(RUN(NULL, NULL, &err, "run", "shop", "--node", "nope", "--", "true"), 1);
    cr_assert(strstr(err, "nope") != NULL, "%s", err);
    free(err);

    /* Piped stdin, past the relay's chunk and buffer sizes. */
    rc = RUN("hello stdin\n", &out, &err, "run", "shop", "--", "tr", "a-z", "A-Z");
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_str_eq(out, "HELLO STDIN\n");
    free(out), free(err);
    size_t big = 3u << 20;
    char *blob = malloc(big + 1);
    for (size_t i = 0; i < big; i++)
        blob[i] = (char)('a' + i % 26);
    memcpy(blob + 1000, "SECRET-STDIN-7f3a", 17); /* must not land on any disk */
    blob[big] = '\0';
    rc = RUN(blob, &out, &err, "run", "shop", "--", "wc", "-c");
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(atol(out), (long)big, "wc -c saw %s", out);
    free(out), free(err);
    free(blob);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "grep -rl SECRET-STDIN-7f3a '%s' >/dev/null 2>&1", C.dir);
    cr_assert_neq(system(cmd), 0, "stdin was written to disk under %s", C.dir);

    /* Ctrl-C without a terminal: SIGINT reaches the process. */
    struct p_child ch;
    p_spawn_cli(&C, &ch,
                (const char *const[]){"run", "shop", "--",
                                      "trap 'echo got-INT; exit 5' INT; echo ready; "
                                      "while :; do sleep 0.1; done",
                                      NULL});
    cr_assert(p_wait_out(&ch, "ready", 20000), "never ready: %s", ch.ebuf ? ch.ebuf : "");
    kill(ch.pid, SIGINT);
    rc = p_wait_exit(&ch, 20000);
    cr_assert(strstr(ch.obuf, "got-INT") != NULL, "SIGINT did not arrive: %s", ch.obuf);
    cr_assert(rc == 5 || rc == 128 + 2, "after SIGINT: %d", rc);
    p_free(&ch);

    /* --detach: the name comes back at once; ps shows it while it runs;
     * its output and its exit go to the logs. */
    rc = RUN(NULL, &out, &err, "run", "shop", "--detach", "--", "echo detached-marker; sleep 2");
    cr_assert_eq(rc, 0, "%s", err);
    char name[32];
    cr_assert_eq(sscanf(out, "%31s", name), 1);
    cr_assert(strncmp(name, "run.", 4) == 0, "%s", out);
    free(out), free(err);
    struct j_obj runs[4];
    int n = runs_in_ps(runs, 4);
    cr_assert_eq(n, 1, "ps does not show the detached one-off");
    cr_assert_str_eq(j_get(&runs[0], "name"), name);
    cr_assert(strstr(j_get(&runs[0], "command"), "detached-marker") != NULL);
    char want[64];
    snprintf(want, sizeof(want), "%s@", name);
    bool seen = false, exited = false;
    for (long deadline = p_now_ms() + 20000; p_now_ms() < deadline && !(seen && exited);) {
        /* Earlier one-offs were run.N too: look after the marker only. */
        cr_assert_eq(CLI(&out, NULL, "logs", "shop", "-n", "200"), 0);
        char *at = strstr(out, "detached-marker\n");
        seen = at != NULL && at - out > (long)strlen(want) &&
               strstr(at - strlen(want) - 4, want) != NULL &&
               strstr(at - strlen(want) - 4, want) < at;
        /* Events name the node: "run.3@n2 exited: exit code 0" (n1..n3). */
        snprintf(cmd, sizeof(cmd), "drover: %s@n", name);
        /* Its other events (starting -> up) may land after its output under
         * load: look at each of them for the exit. */
        exited = false;
        for (const char *ev = seen ? strstr(at, cmd) : NULL; ev != NULL && !exited;
             ev = strstr(ev + 1, cmd))
            exited = strncmp(ev + strlen(cmd) + 1, " exited: exit code 0", 20) == 0;
        free(out);
        if (!(seen && exited))
            h_msleep(200);
    }
    cr_assert(seen, "the detached output never reached the logs");
    cr_assert(exited, "its exit never reached the logs");
    cr_assert_eq(runs_in_ps(runs, 4), 0, "a finished one-off stays in ps");

    /* One-offs are never restarted: none of the above came back. */
    cr_assert_not(h_log_has(&C, 1, "inst=run.1 restarts=") ||
                  h_log_has(&C, 2, "inst=run.1 restarts=") ||
                  h_log_has(&C, 3, "inst=run.1 restarts="));

    /* With a terminal on stdin (script(1) gives it one): a pty session. */
    char script_cmd[1024];
    static char ctl[96];

    snprintf(ctl, sizeof(ctl), "DROVER_CONTROLLER=%s", C.api);
    snprintf(script_cmd, sizeof(script_cmd),
             "stty rows 31 cols 101; exec %s/bin/drover run shop -- "
             "'tty; stty size; printf ready; read x; echo got:$x; exit 3'",
             DROVER_BIN_DIR);
    const char *argv[] = {"/usr/bin/script", "-eqfc", script_cmd, "/dev/null", NULL};
    const char *env[] = {"PATH=/usr/bin:/bin", ctl, "DROVER_TIMEOUT_MS=5000",
                         "DROVER_API_TOKEN=" H_API_TOKEN, NULL};
    p_spawn(&C, &ch, argv, env, true);
    cr_assert(p_wait_out(&ch, "ready", 20000), "no prompt: %s", ch.obuf ? ch.obuf : "");
    /* Raw mode here: only the remote terminal can echo what we type. */
    cr_assert(strstr(ch.obuf, "/dev/pts/") != NULL, "no pseudo-terminal: %s", ch.obuf);
    cr_assert(strstr(ch.obuf, "31 101") != NULL, "window size not passed: %s", ch.obuf);
    p_write(&ch, "abc\r", 4);
    cr_assert(p_wait_out(&ch, "got:abc", 20000), "no answer: %s", ch.obuf);
    char *prompt = strstr(ch.obuf, "ready");
    char *echo = strstr(prompt, "abc");
    cr_assert(echo != NULL && echo < strstr(ch.obuf, "got:abc"), "input not echoed: %s", ch.obuf);
    rc = p_wait_exit(&ch, 20000);
    cr_assert_eq(rc, 3, "exit code through the pty: %d (%s)", rc, ch.obuf);
    p_free(&ch);

    /* --type: with no CMD, the type's Procfile command, as a one-off. */
    cr_assert_eq(RUN(NULL, NULL, &err, "run", "shop", "--type", "nope", "--", "true"), 1);
    cr_assert(strstr(err, "nope") != NULL, "%s", err);
    free(err);
    cr_assert_eq(RUN(NULL, &out, NULL, "run", "shop", "--type", "worker", "--detach"), 0);
    free(out);
    cr_assert_eq(runs_in_ps(runs, 4), 1);
    cr_assert_str_eq(j_get(&runs[0], "command"), "sh worker.sh");
}

/*
 * An attached one-off whose controller is killed has lost its terminal: the
 * session lived in that controller. The restarted controller stops it
 * (event=run_orphaned) instead of keeping a process nobody can reach.
 * Controller ports 7944-7947, app ports 14200-14349.
 */
Test(run, a_restarted_controller_stops_the_attached_one_offs_it_cannot_relay)
{
    char path[512], ctl_env[160], token[160];
    struct j_obj runs[4];
    pid_t pid = 0;
    int cli, n;

    start_cluster("run-orphan", 7944, 14200);
    snprintf(path, sizeof(path), "%s/drover", h_bin_dir());
    snprintf(ctl_env, sizeof(ctl_env), "DROVER_CONTROLLER=%s", C.api);
    snprintf(token, sizeof(token), "DROVER_API_TOKEN=%s", H_API_TOKEN);
    cli = h_start_cmd(&C, "cli-run",
                      (const char *const[]){path, "run", "shop", "--", "sleep 300", NULL},
                      (const char *const[]){ctl_env, token, NULL});
    cr_assert_geq(cli, 0);
    for (int w = 0; w < 20000 && pid <= 1; w += 200) {
        n = runs_in_ps(runs, 4);
        if (n == 1 && strcmp(j_get(&runs[0], "state"), "up") == 0)
            pid = (pid_t)atoi(j_get(&runs[0], "pid"));
        if (pid <= 1)
            h_msleep(200);
    }
    cr_assert_gt(pid, 1, "the attached one-off never ran");
    cr_assert(h_pid_alive(pid));

    kill(-C.procs[0].pid, SIGKILL);
    for (int w = 0; w < 5000 && h_pid_alive(C.procs[0].pid); w += 100)
        h_msleep(100);
    int again = h_start_controller_as(&C, "controller-2", NULL);
    cr_assert(h_wait_log(&C, again, "event=run_orphaned", 10000),
              "the restarted controller kept the orphaned session's one-off");
    for (int w = 0; w < 20000 && h_pid_alive(pid); w += 200)
        h_msleep(200);
    cr_assert_not(h_pid_alive(pid), "the orphaned one-off still runs");
}
