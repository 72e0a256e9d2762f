/* SPDX-License-Identifier: MIT */
/*
 * Issue 11's shell, CLI and words, met where a user meets them: the real
 * controller, one real agent, the real CLI. Controller ports 7620-7623 (and
 * 7630-7634 for the controller that is not there), app ports 9600-9699.
 *
 * One cluster test walks an app from creation through deploys, one-offs
 * and a rolling release, checking each word on the way; the other tests
 * need no cluster (help, verbs, an unreachable controller).
 */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "pipes.h"

static struct h_cluster C;

static void
fini(void)
{
    h_cleanup(&C);
}

TestSuite(words, .fini = fini, .timeout = 240);

#define CLI(out, err, ...) h_cli(&C, out, err, (const char *const[]){__VA_ARGS__, NULL})
#define RUN(in, out, err, ...)                                                                     \
    p_cli(&C, in, slen(in), out, err, 30000, (const char *const[]){__VA_ARGS__, NULL})

static size_t
slen(const char *s)
{
    return s != NULL ? strlen(s) : 0;
}

static const char *app_dir = DROVER_SOURCE_DIR "/tests/integration/wordsapp";

static void
start_cluster(void)
{
    int idx;

    h_init(&C, "words", 7620);
    idx = h_start_controller(&C, NULL);
    cr_assert(h_wait_log(&C, idx, "event=ready", 10000), "controller not ready");
    idx = h_start_agent(&C, "n1", "9600-9699", NULL);
    cr_assert(h_wait_log(&C, idx, "event=ready", 10000), "agent not ready");
}

/* The instance name of ps --json in state (NULL: any), polled until there. */
static bool
wait_state(const char *name, const char *state, int timeout_ms, struct j_obj *o)
{
    for (long end = p_now_ms() + timeout_ms; p_now_ms() < end; h_msleep(150)) {
        struct h_ps ps;
        const struct j_obj *f;

        h_get_ps(&C, "shop", &ps);
        f = h_ps_find(&ps, name);
        if (f != NULL && (state == NULL || strcmp(j_get(f, "state"), state) == 0)) {
            if (o != NULL)
                *o = *f;
            return true;
        }
    }
    return false;
}

static int
count_releases(void)
{
    char *out = NULL;
    struct j_obj o[64];
    int n;

    cr_assert_eq(CLI(&out, NULL, "releases", "shop", "--json"), 0);
    n = j_parse_array(out, o, 64);
    cr_assert_geq(n, 0, "%s", out);
    free(out);
    return n;
}

/* Wait for the newest release's rollout to end (succeeded). */
static void
wait_deployed(void)
{
    for (long end = p_now_ms() + 60000; p_now_ms() < end; h_msleep(200)) {
        char *out = NULL;
        struct j_obj o[64];
        int n;

        cr_assert_eq(CLI(&out, NULL, "releases", "shop", "--json"), 0);
        n = j_parse_array(out, o, 64);
        free(out);
        cr_assert_gt(n, 0);
        if (strcmp(j_get(&o[0], "status"), "succeeded") == 0)
            return;
        cr_assert(strcmp(j_get(&o[0], "status"), "deploying") == 0, "v%s %s: %s",
                  j_get(&o[0], "version"), j_get(&o[0], "status"), j_get(&o[0], "reason"));
    }
    cr_assert_fail("the rollout did not end");
}

/* The line of text that holds needle, in buf (for messages). */
static const char *
line_with(const char *text, const char *needle, char *buf, size_t bufsz)
{
    const char *p = strstr(text, needle), *s, *e;

    if (p == NULL)
        return NULL;
    for (s = p; s > text && s[-1] != '\n'; s--)
        ;
    e = strchr(p, '\n');
    snprintf(buf, bufsz, "%.*s", (int)(e != NULL ? e - s : (long)strlen(s)), s);
    return buf;
}

/* Items 13, 18, 20: deploying, before and after the app exists. */
static void
deploy_words(void)
{
    char *out = NULL, *err = NULL;

    /* 13: a missing app is named, with the command that makes it. */
    cr_assert_eq(CLI(&out, &err, "deploy", "shop", app_dir), 1);
    cr_assert(strstr(err, "no app shop: run drover apps:create shop first") != NULL, "%s", err);
    cr_assert(strstr(out, "Uploading") == NULL, "uploaded before checking: %s", out);
    free(out), free(err);
    cr_assert_eq(CLI(NULL, NULL, "apps:create", "shop"), 0);

    /* 18: no release yet: deploy first, not a scale that fails. */
    cr_assert_eq(CLI(&out, NULL, "ps", "shop"), 0);
    cr_assert(strstr(out, "shop has no release yet: deploy first") != NULL, "%s", out);
    cr_assert(strstr(out, "scale") == NULL, "%s", out);
    free(out);

    /* 20: the Procfile is a symlink inside the slug; Heroku's type names. */
    cr_assert_eq(CLI(&out, &err, "deploy", "shop", app_dir), 0, "%s", err);
    cr_assert(strstr(out, "Released v1 (types: web, Worker-2_x, worker-2_x, quits, dotted)") !=
                  NULL,
              "%s", out);
    free(out), free(err);

    /* 13: --create makes the app first. */
    cr_assert_eq(CLI(&out, &err, "deploy", "fresh", app_dir, "--create", "--no-wait"), 0, "%s",
                 err);
    cr_assert(strstr(out, "Created fresh\n") != NULL && strstr(out, "Released v1") != NULL, "%s",
              out);
    free(out), free(err);
    cr_assert_eq(CLI(&out, NULL, "apps"), 0);
    cr_assert(strstr(out, "fresh") != NULL, "%s", out);
    free(out);
    cr_assert_eq(CLI(NULL, NULL, "scale", "fresh", "web=0"), 0);

    /* 20: a Procfile linked outside the directory is refused before upload. */
    char dir[400], path[500];
    snprintf(dir, sizeof(dir), "%s/out", C.dir);
    cr_assert_eq(mkdir(dir, 0755), 0);
    snprintf(path, sizeof(path), "%s/Procfile.real", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("web: sleep 1\n", f);
    fclose(f);
    snprintf(dir, sizeof(dir), "%s/out/app", C.dir);
    cr_assert_eq(mkdir(dir, 0755), 0);
    snprintf(path, sizeof(path), "%s/Procfile", dir);
    cr_assert_eq(symlink("../Procfile.real", path), 0);
    cr_assert_eq(CLI(&out, &err, "deploy", "shop", dir), 1);
    cr_assert(strstr(err, "is a symlink to") != NULL && strstr(err, "outside") != NULL, "%s", err);
    free(out), free(err);
    cr_assert_eq(count_releases(), 1);
}

/* Item 1: one CMD argument is a shell command line as it is. */
static void
builtins(void)
{
    char *out = NULL, *err = NULL;
    int rc;

    rc = RUN(NULL, &out, &err, "run", "shop", "--", "exit 4");
    cr_assert_eq(rc, 4, "exit 4 gave %d: %s", rc, err);
    cr_assert(strstr(err, "not found") == NULL, "%s", err);
    free(out), free(err);

    cr_assert_eq(RUN(NULL, &out, &err, "run", "shop", "--", "cd /tmp && pwd"), 0, "%s", err);
    cr_assert_str_eq(out, "/tmp\n");
    free(out), free(err);

    cr_assert_eq(RUN(NULL, &out, &err, "run", "shop", "--", "ulimit -n"), 0, "%s", err);
    cr_assert((out[0] >= '0' && out[0] <= '9' && strspn(out, "0123456789") == strlen(out) - 1) ||
                  strcmp(out, "unlimited\n") == 0,
              "ulimit -n: %s", out);
    free(out), free(err);

    cr_assert_eq(RUN(NULL, &out, &err, "run", "shop", "--", "umask"), 0, "%s", err);
    cr_assert(strlen(out) == 5 && out[0] == '0' && strspn(out, "01234567") == 4, "umask: %s", out);
    free(out), free(err);

    cr_assert_eq(RUN(NULL, &out, &err, "run", "shop", "--", "export X_WORDS=1; env"), 0, "%s", err);
    cr_assert(strstr(out, "\nX_WORDS=1\n") != NULL || strncmp(out, "X_WORDS=1\n", 10) == 0, "%s",
              out);
    free(out), free(err);

    cr_assert_eq(RUN("hello\n", &out, &err, "run", "shop", "--", "read x; echo \"got $x\""), 0,
                 "%s", err);
    cr_assert_str_eq(out, "got hello\n");
    free(out), free(err);
    /* read alone: its status is the shell's, 0 with a line, 1 at EOF. */
    cr_assert_eq(RUN("line\n", NULL, NULL, "run", "shop", "--", "read x"), 0);
    cr_assert_eq(RUN(NULL, NULL, NULL, "run", "shop", "--", "read x"), 1);

    cr_assert_eq(RUN(NULL, &out, &err, "run", "shop", "--", ". ./script.sh"), 0, "%s", err);
    cr_assert(strncmp(out, "sourced in /", 12) == 0, "%s", out);
    free(out), free(err);
    cr_assert_eq(RUN(NULL, &out, &err, "run", "shop", "--", ". ./script.sh; echo $SOURCED"), 0,
                 "%s", err);
    cr_assert(strstr(out, "\nyes\n") != NULL, "%s", out);
    free(out), free(err);

    /* Several arguments are quoted words: 'exit' '5' is still the builtin. */
    cr_assert_eq(RUN(NULL, NULL, NULL, "run", "shop", "--", "exit", "5"), 5);
    /* A program by name still runs (and is exec'd: its exit is its own). */
    cr_assert_eq(RUN(NULL, &out, NULL, "run", "shop", "--", "sh -c 'exit 6'"), 6);
    free(out);

    /* The same rule for Procfile commands: "quits: exit 3". */
    rc = RUN(NULL, &out, &err, "run", "shop", "--type", "quits");
    cr_assert_eq(rc, 3, "quits gave %d: %s", rc, err);
    free(out), free(err);
}

/* Item 12: unset of a key that is not set. */
static void
unset_words(void)
{
    char *out = NULL, *err = NULL;
    int before;

    cr_assert_eq(CLI(NULL, NULL, "config:set", "shop", "KEPT=1"), 0);
    before = count_releases();
    cr_assert_eq(CLI(&out, &err, "config:unset", "shop", "NOPE"), 1);
    cr_assert(strstr(err, "NOPE is not set on shop") != NULL, "%s", err);
    cr_assert(strstr(out, "done") == NULL, "%s", out);
    free(out), free(err);
    /* One unknown key among set ones: nothing changes. */
    cr_assert_eq(CLI(&out, &err, "config:unset", "shop", "KEPT", "NOPE"), 1);
    cr_assert(strstr(err, "NOPE is not set") != NULL, "%s", err);
    free(out), free(err);
    cr_assert_eq(count_releases(), before, "a refused unset made a release");
    cr_assert_eq(CLI(&out, NULL, "config", "shop", "--json"), 0);
    cr_assert(strstr(out, "\"KEPT\": \"1\"") != NULL, "%s", out);
    free(out);
    cr_assert_eq(CLI(NULL, NULL, "config:unset", "shop", "KEPT"), 0);
    cr_assert_eq(count_releases(), before + 1);
}

/* Items 15, 16, 17: names, headings, endpoints. */
static void
ps_and_endpoints(void)
{
    char *out = NULL, *err = NULL, line[512];
    struct j_obj o;

    wait_deployed();
    cr_assert_eq(CLI(NULL, NULL, "scale", "shop", "Worker-2_x=1", "dotted=1"), 0);
    cr_assert(wait_state("web.1", "up", 30000, NULL), "web.1 never up");
    cr_assert(wait_state("Worker-2_x.1", "up", 30000, NULL), "Worker-2_x.1 never up");
    /* 1: a Procfile command that starts with a builtin runs as written. */
    cr_assert(wait_state("dotted.1", "up", 30000, &o), "dotted.1 never up");
    cr_assert_eq(atoi(j_get(&o, "restarts")), 0);
    cr_assert_eq(CLI(&out, NULL, "logs", "shop", "--source", "dotted.1"), 0);
    cr_assert(strstr(out, "dotted.1 sourced dotted.sh") != NULL, "%s", out);
    free(out);

    /* 15: events name the node. */
    cr_assert_eq(CLI(&out, NULL, "logs", "shop", "--source", "drover", "-n", "1000"), 0);
    cr_assert(strstr(out, "drover: web.1@n1 starting -> up") != NULL, "%s", out);
    cr_assert(strstr(out, "drover: Worker-2_x.1@n1 starting -> up") != NULL, "%s", out);
    free(out);

    /* 16: headings show the quantity; case-distinct types stay apart. */
    cr_assert_eq(CLI(&out, NULL, "ps", "shop"), 0);
    cr_assert(strstr(out, "=== web (1): python3 -m http.server $PORT\n") != NULL, "%s", out);
    cr_assert(strstr(out, "=== Worker-2_x (1): exec sleep 600\n") != NULL, "%s", out);
    cr_assert(strstr(out, "=== worker-2_x") == NULL, "%s", out);
    cr_assert(strstr(out, "=== dotted (1): . ./dotted.sh\n") != NULL, "%s", out);
    free(out);

    /* 16: an instance that restarted does not promise a restart. Slow to
     * become up (min_healthy), it is killed while starting and restarts at
     * once; ps must not show it "starting ... restart 1 in 0.0 s". */
    cr_assert_eq(CLI(NULL, NULL, "settings:set", "shop", "worker-2_x", "min_healthy=40s"), 0);
    cr_assert_eq(CLI(NULL, NULL, "scale", "shop", "worker-2_x=1"), 0);
    cr_assert(wait_state("worker-2_x.1", "starting", 30000, &o), "worker-2_x.1 never started");
    for (long end = p_now_ms() + 10000; atoi(j_get(&o, "pid")) <= 0 && p_now_ms() < end;)
        wait_state("worker-2_x.1", "starting", 1000, &o);
    pid_t pid = atoi(j_get(&o, "pid"));
    cr_assert_gt(pid, 0);
    cr_assert_eq(kill(pid, SIGKILL), 0);
    bool restarted = false;
    for (long end = p_now_ms() + 20000; !restarted && p_now_ms() < end; h_msleep(150))
        restarted = wait_state("worker-2_x.1", "starting", 1000, &o) &&
                    atoi(j_get(&o, "restarts")) >= 1 && atoi(j_get(&o, "pid")) != pid;
    cr_assert(restarted, "worker-2_x.1 did not restart");
    /* Nor does its reason, at the source (ps --json has the agent's text). */
    cr_assert(strstr(j_get(&o, "reason"), "restart") == NULL, "a starting instance's reason: %s",
              j_get(&o, "reason"));
    cr_assert_eq(CLI(&out, NULL, "ps", "shop"), 0);
    cr_assert_not_null(line_with(out, "worker-2_x.1:", line, sizeof(line)), "%s", out);
    cr_assert(strstr(line, "starting") != NULL, "%s", line);
    cr_assert(strstr(line, "restart 1 in") == NULL, "a starting instance promises: %s", line);
    cr_assert(strstr(out, "=== worker-2_x (1): sleep 600\n") != NULL, "%s", out);
    free(out);

    /* 17: a type the app does not have is an error; types are exact. */
    cr_assert_eq(CLI(&out, &err, "endpoints", "shop", "nosuch"), 1);
    cr_assert(strstr(err, "app shop has no process type 'nosuch'") != NULL, "%s", err);
    free(out), free(err);
    cr_assert_eq(CLI(&out, &err, "endpoints", "shop", "WEB"), 1);
    free(out), free(err);
    cr_assert_eq(CLI(&out, &err, "endpoints", "shop", "web"), 0, "%s", err);
    cr_assert(strncmp(out, "127.0.0.1:96", 12) == 0 && strchr(out, '\n') == out + strlen(out) - 1,
              "%s", out);
    free(out), free(err);
    /* A type with nothing up is an empty list, not an error. */
    cr_assert_eq(CLI(&out, NULL, "endpoints", "shop", "quits"), 0);
    cr_assert_str_eq(out, "");
    free(out);
    /* 17: --json's version is a number JavaScript holds exactly. */
    cr_assert_eq(CLI(&out, NULL, "endpoints", "shop", "--json"), 0);
    const char *v = strstr(out, "\"version\": ");
    cr_assert_not_null(v, "%s", out);
    unsigned long long version = strtoull(v + 11, NULL, 10);
    cr_assert(version > 0 && version < (1ull << 53), "version %llu", version);
    free(out);

    /* 16: during a rolling deploy the heading says so, with the quantity. */
    cr_assert_eq(CLI(NULL, NULL, "settings:set", "shop", "web", "min_healthy=30s"), 0);
    cr_assert_eq(CLI(NULL, NULL, "config:set", "shop", "ROLL=1"), 0);
    bool seen = false;
    for (long end = p_now_ms() + 20000; !seen && p_now_ms() < end; h_msleep(200)) {
        cr_assert_eq(CLI(&out, NULL, "ps", "shop"), 0);
        seen = strstr(out, "=== web (1 wanted, 2 running: deploy in progress): ") != NULL;
        if (!seen && p_now_ms() >= end - 200)
            cr_assert_fail("no deploy heading: %s", out);
        free(out);
    }
}

/* Item 19: SIGTERM to an attached run says what became of the process. */
static void
sigterm_run(void)
{
    struct p_child ch;
    char name[32] = "";
    const char *at;
    struct h_ps ps;
    long t0;
    int rc;

    /* It takes a second to stop, and writes while it does: drover waits
     * for its end, relays the last words, and says how it ended. */
    p_spawn_cli(&C, &ch,
                (const char *const[]){"run", "shop", "--",
                                      "trap 'sleep 1; echo bye; exit 7' TERM; echo ready; "
                                      "while :; do sleep 0.2; done",
                                      NULL});
    cr_assert(p_wait_out(&ch, "ready\n", 20000), "the one-off never started: %s", ch.ebuf);
    t0 = p_now_ms();
    p_kill(&ch, SIGTERM);
    rc = p_wait_exit(&ch, 10000);
    cr_assert_eq(rc, 128 + SIGTERM, "exit %d", rc);
    cr_assert_geq(p_now_ms() - t0, 900, "drover did not wait for the end");
    cr_assert(strstr(ch.obuf, "bye\n") != NULL, "the last words were lost: %s", ch.obuf);
    cr_assert(ch.ebuf != NULL &&
                  (at = strstr(ch.ebuf, "drover: got SIGTERM: stopped run.")) != NULL,
              "%s", ch.ebuf ? ch.ebuf : "");
    cr_assert(strstr(ch.ebuf, " (exit code 7)\n") != NULL, "%s", ch.ebuf);
    cr_assert(strstr(ch.ebuf, "no attached session") == NULL, "%s", ch.ebuf);
    cr_assert_eq(sscanf(at, "drover: got SIGTERM: stopped %31[^ ]", name), 1);
    /* Really ended: ps no longer has it running. */
    h_get_ps(&C, "shop", &ps);
    const struct j_obj *o = h_ps_find(&ps, name);
    cr_assert(o == NULL || strcmp(j_get(o, "state"), "up") != 0, "%s still up", name);
    p_free(&ch);

    /* One that dies of the SIGTERM says so. */
    p_spawn_cli(&C, &ch,
                (const char *const[]){"run", "shop", "--", "echo ready; exec sleep 60", NULL});
    cr_assert(p_wait_out(&ch, "ready\n", 20000), "the one-off never started: %s", ch.ebuf);
    p_kill(&ch, SIGTERM);
    rc = p_wait_exit(&ch, 10000);
    cr_assert_eq(rc, 128 + SIGTERM, "exit %d", rc);
    cr_assert(ch.ebuf != NULL && strstr(ch.ebuf, "drover: got SIGTERM: stopped run.") != NULL &&
                  strstr(ch.ebuf, " (killed by signal 15)\n") != NULL,
              "%s", ch.ebuf ? ch.ebuf : "");
    p_free(&ch);
}

Test(words, an_app_met_through_the_cli)
{
    start_cluster();
    deploy_words();
    builtins();
    unset_words();
    sigterm_run();
    ps_and_endpoints();
}

/* Item 8: nothing listens: said at once. A controller that accepts and does
 * not answer still gets the whole DROVER_TIMEOUT_MS. */
Test(words, a_stopped_controller_is_said_at_once)
{
    static const char *const refused[] = {"DROVER_CONTROLLER=tcp://127.0.0.1:7630", NULL};
    static const char *const silent[] = {"DROVER_CONTROLLER=tcp://127.0.0.1:7634",
                                         "DROVER_TIMEOUT_MS=1500", NULL};
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(7634), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    char *out = NULL, *err = NULL;
    long t0, ms;
    int one = 1, s;

    h_init(&C, "words-unreachable", 7630);
    t0 = p_now_ms();
    cr_assert_eq(h_cli_env(&C, &out, &err, refused, (const char *const[]){"apps", NULL}), 1);
    ms = p_now_ms() - t0;
    cr_assert(strstr(err, "cannot reach the controller at tcp://127.0.0.1:7630: connection "
                          "refused") != NULL,
              "%s", err);
    cr_assert_lt(ms, 1000, "took %ld ms", ms);
    free(out), free(err);
    /* Every verb that talks to the controller goes the same way. */
    t0 = p_now_ms();
    cr_assert_eq(h_cli_env(&C, NULL, &err, refused, (const char *const[]){"ps", "shop", NULL}), 1);
    cr_assert_lt(p_now_ms() - t0, 1000);
    cr_assert(strstr(err, "connection refused") != NULL, "%s", err);
    free(err);

    /* Something accepts (the kernel completes the handshake for a socket
     * that listens) but never answers: the whole timeout, then timed out. */
    s = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(s, 0);
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    cr_assert_eq(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(listen(s, 16), 0);
    t0 = p_now_ms();
    cr_assert_eq(h_cli_env(&C, &out, &err, silent, (const char *const[]){"apps", NULL}), 1);
    ms = p_now_ms() - t0;
    cr_assert(strstr(err, "timed out after 1.5 s") != NULL, "%s", err);
    cr_assert_geq(ms, 1400, "gave up after %ld ms", ms);
    free(out), free(err);
    close(s);
}

/* Items 11 and 14: help's words, a mistyped verb, a bare drover. */
Test(words, help_and_mistyped_verbs)
{
    char *out = NULL, *err = NULL;

    h_init(&C, "words-help", 7630);
    cr_assert_eq(CLI(&out, NULL, "help"), 0);
    cr_assert(strstr(out, "ignored") == NULL, "%s", out);
    cr_assert(strstr(out, "DROVER_API_TOKEN    the controller's API token (required") != NULL, "%s",
              out);
    free(out);
    cr_assert_eq(CLI(&out, NULL, "deploy", "--help"), 0);
    cr_assert(strstr(out, "--create") != NULL, "%s", out);
    free(out);

    cr_assert_eq(CLI(&out, &err, "scael", "shop", "web=1"), 2);
    cr_assert(strstr(err, "unknown verb 'scael': did you mean 'scale'?") != NULL, "%s", err);
    free(out), free(err);
    cr_assert_eq(CLI(&out, &err, "help", "deplyo"), 2);
    cr_assert(strstr(err, "did you mean 'deploy'?") != NULL, "%s", err);
    free(out), free(err);
    cr_assert_eq(CLI(&out, &err, "frobnicate"), 2);
    cr_assert(strstr(err, "unknown verb 'frobnicate'\n") != NULL, "%s", err);
    free(out), free(err);

    cr_assert_eq(h_cli(&C, &out, &err, (const char *const[]){NULL}), 2);
    cr_assert(strstr(out, "Usage: drover VERB [ARGS]") != NULL && strstr(out, "Verbs:") != NULL,
              "%s", out);
    free(out), free(err);
}
