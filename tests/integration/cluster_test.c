/* SPDX-License-Identifier: MIT */
/*
 * The walking skeleton end to end: a real controller and three real agents on
 * loopback, driven only through the real `drover` CLI. Each test has its own
 * ports (controller base port and app port ranges) and its own temp dir, so
 * Criterion may run them in parallel. App ports are 6100-6449, clear of the
 * quick-start cluster's 5000-5299.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>

#include "harness.h"
#include "wire.h"

static struct h_cluster C;

static void
fini(void)
{
    h_cleanup(&C);
}

TestSuite(cluster, .fini = fini, .timeout = 180);

#define CLI(out, err, ...) h_cli(&C, out, err, (const char *const[]){__VA_ARGS__, NULL})

static const char *app_dir = DROVER_SOURCE_DIR "/tests/integration/app";

static void
start_cluster(const char *test, int base, const int app_ports[3])
{
    static const char *const leak[] = {"DROVER_TEST_LEAK=agent-env-must-not-leak", NULL};
    char range[32], name[8];
    int idx;

    h_init(&C, test, base);
    idx = h_start_controller(&C, NULL);
    cr_assert(h_wait_log(&C, idx, "event=ready", 10000), "controller not ready");
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "n%d", i + 1);
        snprintf(range, sizeof(range), "%d-%d", app_ports[i], app_ports[i] + 49);
        idx = h_start_agent(&C, name, range, leak);
        cr_assert(h_wait_log(&C, idx, "event=ready", 10000), "agent %s not ready", name);
    }
}

struct ps {
    int n;
    struct j_obj o[32];
};

static void
get_ps(const char *app, struct ps *ps)
{
    char *out = NULL, *err = NULL;
    int rc = CLI(&out, &err, "ps", app, "--json");
    cr_assert_eq(rc, 0, "ps failed: %s", err);
    ps->n = j_parse_array(out, ps->o, 32);
    cr_assert_geq(ps->n, 0, "ps --json is not a JSON array: %s", out);
    free(out);
    free(err);
}

static int
count(const struct ps *ps, const char *type, const char *state)
{
    int n = 0;
    for (int i = 0; i < ps->n; i++)
        if ((type == NULL || strcmp(j_get(&ps->o[i], "type"), type) == 0) &&
            (state == NULL || strcmp(j_get(&ps->o[i], "state"), state) == 0))
            n++;
    return n;
}

/* Poll ps until exactly web_up web and worker_up worker instances are up and
 * nothing else is listed. */
static bool
wait_formation(const char *app, int web_up, int worker_up, int timeout_ms, struct ps *ps)
{
    for (int waited = 0; waited < timeout_ms; waited += 200) {
        get_ps(app, ps);
        if (count(ps, "web", "up") == web_up && count(ps, "worker", "up") == worker_up &&
            ps->n == web_up + worker_up)
            return true;
        h_msleep(200);
    }
    return false;
}

static long
field_long(const char *body, const char *key)
{
    char k[64];
    snprintf(k, sizeof(k), "%s=", key);
    const char *p = strstr(body, k);
    return p != NULL ? strtol(p + strlen(k), NULL, 10) : -1;
}

static bool
body_has(const char *body, const char *kv)
{
    char line[300];
    snprintf(line, sizeof(line), "\n%s\n", kv);
    return strncmp(body, kv, strlen(kv)) == 0 || strstr(body, line) != NULL;
}

Test(cluster, deploy_scale_serve_and_drain)
{
    static const int ports[3] = {6100, 6150, 6200};
    struct ps ps;
    char *out = NULL, *err = NULL;
    pid_t web_pids[3] = {0}, grandchildren[3] = {0};
    char names[3][16];

    start_cluster("deploy", 7450, ports);

    cr_assert_eq(CLI(NULL, &err, "apps:create", "shop"), 0, "%s", err);
    free(err);
    /* Config set before the first deploy is kept for it. */
    cr_assert_eq(CLI(NULL, &err, "config:set", "shop", "GREETING=howdy", "EXTRA=a=b"), 0, "%s",
                 err);
    free(err);
    cr_assert_eq(CLI(&out, &err, "deploy", "shop", app_dir), 0, "deploy: %s %s", out, err);
    free(out);
    free(err);
    cr_assert_eq(CLI(&out, &err, "scale", "shop", "web=3", "worker=2"), 0, "scale: %s", err);
    free(out);
    free(err);

    cr_assert(wait_formation("shop", 3, 2, 30000, &ps), "formation web=3 worker=2 never came up");

    /* Spread: one type's instances on different nodes. */
    const char *web_nodes[3];
    int w = 0;
    for (int i = 0; i < ps.n; i++) {
        const struct j_obj *o = &ps.o[i];
        if (strcmp(j_get(o, "type"), "web") != 0)
            continue;
        cr_assert_eq(atoi(j_get(o, "release")), 1);
        web_nodes[w] = j_get(o, "node");
        snprintf(names[w], sizeof(names[w]), "%s", j_get(o, "name"));
        w++;
    }
    cr_assert_eq(w, 3);
    cr_assert(strcmp(web_nodes[0], web_nodes[1]) && strcmp(web_nodes[1], web_nodes[2]) &&
                  strcmp(web_nodes[0], web_nodes[2]),
              "web instances not spread over three nodes");

    /* Every web answers on its host:port with its own DYNO and the config. */
    w = 0;
    for (int i = 0; i < ps.n; i++) {
        const struct j_obj *o = &ps.o[i];
        if (strcmp(j_get(o, "type"), "web") != 0)
            continue;
        const char *host = j_get(o, "host");
        int port = atoi(j_get(o, "port"));
        char *body = h_http_get(host, port, 3000);
        cr_assert_not_null(body, "%s at %s:%d does not answer", j_get(o, "name"), host, port);
        char want[64];
        snprintf(want, sizeof(want), "DYNO=%s", j_get(o, "name"));
        cr_assert(body_has(body, want), "%s answered:\n%s", want, body);
        snprintf(want, sizeof(want), "PORT=%d", port);
        cr_assert(body_has(body, want), "wrong PORT:\n%s", body);
        cr_assert(body_has(body, "GREETING=howdy"), "config not applied:\n%s", body);
        cr_assert(body_has(body, "DROVER_APP=shop"), "%s", body);
        cr_assert(body_has(body, "DROVER_RELEASE=1"), "%s", body);
        cr_assert(body_has(body, "DROVER_TEST_LEAK="), "the agent's environment leaked:\n%s", body);
        cr_assert(strstr(body, "EXTRA") != NULL, "%s", body);
        web_pids[w] = (pid_t)field_long(body, "PID");
        grandchildren[w] = (pid_t)field_long(body, "GRANDCHILD");
        cr_assert(h_pid_alive(grandchildren[w]));
        w++;
        free(body);
    }

    /* Ports are unique per node, and ps reports the pid. */
    for (int i = 0; i < ps.n; i++)
        for (int j = i + 1; j < ps.n; j++)
            if (strcmp(j_get(&ps.o[i], "node"), j_get(&ps.o[j], "node")) == 0)
                cr_assert_neq(atoi(j_get(&ps.o[i], "port")), atoi(j_get(&ps.o[j], "port")));

    /* Scale down: two webs drain with SIGTERM and their grandchildren go. */
    cr_assert_eq(CLI(&out, &err, "scale", "shop", "web=1"), 0, "%s", err);
    free(out);
    free(err);
    cr_assert(wait_formation("shop", 1, 2, 30000, &ps), "web=1 never settled");
    const char *kept = NULL;
    for (int i = 0; i < ps.n; i++)
        if (strcmp(j_get(&ps.o[i], "type"), "web") == 0)
            kept = j_get(&ps.o[i], "name");
    cr_assert_str_eq(kept, "web.1", "scale down must stop the highest-numbered");
    int gone = 0;
    for (int i = 0; i < 3; i++) {
        if (strcmp(names[i], "web.1") == 0) {
            cr_assert(h_pid_alive(grandchildren[i]), "web.1's grandchild died");
            continue;
        }
        for (int waited = 0; waited < 5000 && h_pid_alive(grandchildren[i]); waited += 50)
            h_msleep(50);
        cr_assert_not(h_pid_alive(grandchildren[i]), "grandchild %d of %s outlived it",
                      grandchildren[i], names[i]);
        cr_assert_not(h_pid_alive(web_pids[i]));
        gone++;
    }
    cr_assert_eq(gone, 2);
    /* They got SIGTERM (the app says so in its output, which reaches the
     * app's log stream; agents no longer echo it on their own stdout). */
    int termed = 0;
    for (int waited = 0; waited < 5000 && termed != 2; waited += 100) {
        char *logs = NULL;
        cr_assert_eq(CLI(&logs, NULL, "logs", "shop", "-n", "1000"), 0);
        termed = (strstr(logs, "web.2 got SIGTERM") != NULL) +
                 (strstr(logs, "web.3 got SIGTERM") != NULL);
        free(logs);
        if (termed != 2)
            h_msleep(100);
    }
    cr_assert_eq(termed, 2, "drained webs did not report SIGTERM");

    /* nodes --json: three ready nodes with their counts. */
    cr_assert_eq(CLI(&out, &err, "nodes", "--json"), 0, "%s", err);
    struct j_obj nodes[8];
    int nn = j_parse_array(out, nodes, 8);
    cr_assert_eq(nn, 3, "%s", out);
    int total = 0;
    for (int i = 0; i < nn; i++) {
        cr_assert_str_eq(j_get(&nodes[i], "state"), "ready");
        cr_assert_str_eq(j_get(&nodes[i], "address"), "127.0.0.1");
        total += atoi(j_get(&nodes[i], "instances"));
    }
    cr_assert_eq(total, 3, "%s", out);
    free(out);
    free(err);

    /* The agents drain on SIGTERM and exit 0; nothing of the app is left. */
    for (int i = C.nprocs - 1; i >= 1; i--) {
        int st = h_stop(&C, i, 40000);
        cr_assert(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "agent %d exit %d", i, st);
    }
    cr_assert_not(h_pid_alive(grandchildren[0]), "web.1's grandchild survived its agent");
    int st = h_stop(&C, 0, 10000);
    cr_assert(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "controller exit %d", st);
}

/* An envelope holding a PsReq, with the given protocol version. */
static void
seal_ps(uint8_t **out, size_t *outlen, uint32_t version)
{
    Drover__Message m = DROVER__MESSAGE__INIT;
    Drover__PsReq req = DROVER__PS_REQ__INIT;
    Drover__Envelope env = DROVER__ENVELOPE__INIT;
    uint8_t body[64];

    req.app = "shop";
    m.body_case = DROVER__MESSAGE__BODY_PS_REQ;
    m.ps_req = &req;
    env.version = version;
    env.sender = "test";
    env.counter = 1;
    env.body.data = body;
    env.body.len = drover__message__pack(&m, body);
    *outlen = drover__envelope__get_packed_size(&env);
    *out = malloc(*outlen);
    drover__envelope__pack(&env, *out);
}

/* Send buf on a REQ socket; the reply must be a well-formed Error. */
static void
expect_error_reply(const char *endpoint, const void *buf, size_t len, const char *what)
{
    int s = nn_socket(AF_SP, NN_REQ), tmo = 5000;
    void *reply = NULL;
    struct wire_header h;
    Drover__Message *m;

    cr_assert_geq(s, 0);
    nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVTIMEO, &tmo, sizeof(tmo));
    nn_setsockopt(s, NN_SOL_SOCKET, NN_SNDTIMEO, &tmo, sizeof(tmo));
    cr_assert_geq(nn_connect(s, endpoint), 0);
    cr_assert_geq(nn_send(s, buf, len, 0), 0);
    int n = nn_recv(s, &reply, NN_MSG, 0);
    cr_assert_geq(n, 0, "%s: no reply to %s (%s)", endpoint, what, nn_strerror(nn_errno()));
    /* What does not open is answered with an unsealed refusal. */
    Drover__ErrorCode code;
    char text[256];
    cr_assert_eq(wire_refusal_open(reply, (size_t)n, &code, text, sizeof(text)), 0,
                 "%s: %s was not refused", endpoint, what);
    cr_assert_neq(code, DROVER__ERROR_CODE__ERR_NONE);
    cr_assert(text[0] != '\0');
    (void)h;
    (void)m;
    nn_freemsg(reply);
    nn_close(s);
}

Test(cluster, bad_input_is_refused_and_changes_nothing)
{
    static const int ports[3] = {6300, 6350, 6400};
    struct ps before, after;
    char *out = NULL, *err = NULL;
    char dir[400], path[500];

    start_cluster("badinput", 7460, ports);
    cr_assert_eq(CLI(NULL, NULL, "apps:create", "shop"), 0);
    cr_assert_eq(CLI(NULL, &err, "deploy", "shop", app_dir), 0, "%s", err);
    free(err);
    cr_assert_eq(CLI(NULL, NULL, "scale", "shop", "web=1"), 0);
    cr_assert(wait_formation("shop", 1, 0, 30000, &before));

    /* Bad usage: exit 2. */
    cr_assert_eq(CLI(NULL, NULL, "scale", "shop", "web=-1"), 2);
    cr_assert_eq(CLI(NULL, NULL, "scale", "shop", "web=abc"), 2);
    cr_assert_eq(CLI(NULL, NULL, "scale", "shop", "web="), 2);
    cr_assert_eq(CLI(NULL, NULL, "scale", "shop"), 2);
    cr_assert_eq(CLI(NULL, NULL, "apps:create", "Bad_Name"), 2);
    cr_assert_eq(CLI(NULL, NULL, "no-such-verb"), 2);
    /* Failures: exit 1 with a one-line reason. */
    cr_assert_eq(CLI(NULL, &err, "scale", "nope", "web=1"), 1);
    cr_assert(strstr(err, "nope") != NULL, "reason should name the app: %s", err);
    free(err);
    cr_assert_eq(CLI(NULL, &err, "scale", "shop", "bogus=1"), 1);
    cr_assert(strstr(err, "bogus") != NULL, "reason should name the type: %s", err);
    free(err);
    cr_assert_eq(CLI(NULL, &err, "apps:create", "shop"), 1, "duplicate app accepted");
    free(err);

    snprintf(dir, sizeof(dir), "%s/noprocfile", C.dir);
    mkdir(dir, 0755);
    int rc = CLI(NULL, &err, "deploy", "shop", dir);
    cr_assert(rc == 1 || rc == 2, "deploy without Procfile gave %d", rc);
    cr_assert(strstr(err, "Procfile") != NULL, "%s", err);
    free(err);
    snprintf(dir, sizeof(dir), "%s/badprocfile", C.dir);
    mkdir(dir, 0755);
    snprintf(path, sizeof(path), "%s/Procfile", dir);
    FILE *f = fopen(path, "w");
    fputs("web: python3 web.py\nworker:\n", f);
    fclose(f);
    rc = CLI(NULL, &err, "deploy", "shop", dir);
    cr_assert(rc == 1 || rc == 2, "deploy with an empty command gave %d", rc);
    cr_assert(strstr(err, "command") != NULL, "%s", err);
    free(err);

    /* Nothing changed: same release, same instance. */
    cr_assert_eq(CLI(&out, NULL, "releases", "shop", "--json"), 0);
    cr_assert(strstr(out, "\"version\":2") == NULL && strstr(out, "\"version\": 2") == NULL,
              "a refused deploy made a release: %s", out);
    free(out);
    get_ps("shop", &after);
    cr_assert_eq(after.n, 1);
    cr_assert_str_eq(j_get(&after.o[0], "pid"), j_get(&before.o[0], "pid"));

    /* Garbage on every socket: each request socket answers an Error, raw TCP
     * junk is dropped, and the daemons keep serving. */
    const char *endpoints[] = {C.api, C.join};
    for (int e = 0; e < 2; e++) {
        uint8_t junk[3000];
        srand(7 + e);
        for (size_t i = 0; i < sizeof(junk); i++)
            junk[i] = (uint8_t)rand();
        expect_error_reply(endpoints[e], junk, sizeof(junk), "random bytes");
        expect_error_reply(endpoints[e], junk, 1, "one byte");
        uint8_t *env;
        size_t len;
        seal_ps(&env, &len, WIRE_VERSION + 7);
        expect_error_reply(endpoints[e], env, len, "another protocol version");
        free(env);
        seal_ps(&env, &len, WIRE_VERSION);
        expect_error_reply(endpoints[e], env, len / 2, "a truncated envelope");
        if (e == 1) /* an API request on the agents' endpoint */
            expect_error_reply(endpoints[e], env, len, "a request of the wrong kind");
        free(env);
    }
    for (int port = 7460; port <= 7463; port++) {
        char cmd[200];
        snprintf(cmd, sizeof(cmd),
                 "bash -c 'head -c 3000 /dev/urandom > /dev/tcp/127.0.0.1/%d' 2>/dev/null", port);
        (void)!system(cmd);
    }
    cr_assert_eq(CLI(&out, &err, "apps", "--json"), 0, "controller stopped serving: %s", err);
    cr_assert(strstr(out, "shop") != NULL);
    free(out);
    free(err);
    cr_assert(h_log_has(&C, 1, "event=ready"));
    get_ps("shop", &after);
    cr_assert_eq(count(&after, "web", "up"), 1);
}
