/* SPDX-License-Identifier: MIT */
/*
 * rotation_test.c: a cluster key rotated without stopping the cluster, as
 * the README's guide does it, while an app keeps serving: the controller
 * restarted with DROVER_CLUSTER_KEY_NEXT=NEW, then each agent in turn
 * restarted with DROVER_CLUSTER_KEY=NEW and DROVER_CLUSTER_KEY_NEXT=OLD,
 * then the controller restarted with NEW alone. Afterwards an agent holding
 * only the old key is refused, and says so. Controller ports 7656-7659, app
 * ports 9990-9999.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "version.h"
#include "wire.h"
#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>

static struct h_cluster C;

static void
fini(void)
{
    h_cleanup(&C);
}

TestSuite(rotation, .fini = fini, .timeout = 180);

#define OLD H_CLUSTER_KEY
#define NEW "a11ce0ffee0ddba11a11ce0ffee0ddba11a11ce0ffee0ddba11a11ce0ffee0dd"
#define CLI(out, err, ...) h_cli(&C, out, err, (const char *const[]){__VA_ARGS__, NULL})
#define OK(...)                                                                                    \
    do {                                                                                           \
        char *o_ = NULL, *e_ = NULL;                                                               \
        int rc_ = CLI(&o_, &e_, __VA_ARGS__);                                                      \
        cr_assert_eq(rc_, 0, "exit %d: %s", rc_, e_ ? e_ : "");                                    \
        free(o_);                                                                                  \
        free(e_);                                                                                  \
    } while (0)

static const char *app_dir = DROVER_SOURCE_DIR "/tests/integration/app";

static int
controller(const char *name, const char *key, const char *next)
{
    char data[320], api[96], agents[96], k[128], n[128];
    const char *env[] = {data, api, agents, k, next ? n : NULL, NULL};
    int idx;

    snprintf(data, sizeof data, "DROVER_DATA_DIR=%s/controller", C.dir);
    snprintf(api, sizeof api, "DROVER_API_LISTEN=%s", C.api);
    snprintf(agents, sizeof agents, "DROVER_AGENT_LISTEN=%s", C.join);
    snprintf(k, sizeof k, "DROVER_CLUSTER_KEY=%s", key);
    snprintf(n, sizeof n, "DROVER_CLUSTER_KEY_NEXT=%s", next ? next : "");
    idx = h_start(&C, name, "drover-controller", env, NULL);
    cr_assert(h_wait_log(&C, idx, "event=ready", 10000), "%s not ready", name);
    return idx;
}

static int
agent(const char *name, const char *node, const char *range, const char *key, const char *next)
{
    char data[320], nn[96], join[96], r[64], k[128], n[128];
    const char *env[] = {data, nn, join, r, "DROVER_LEAVE_TIMEOUT_MS=20000", k, next ? n : NULL,
                         NULL};

    snprintf(data, sizeof data, "DROVER_DATA_DIR=%s/agent-%s", C.dir, node);
    snprintf(nn, sizeof nn, "DROVER_NODE_NAME=%s", node);
    snprintf(join, sizeof join, "DROVER_JOIN=%s", C.join);
    snprintf(r, sizeof r, "DROVER_PORT_RANGE=%s", range);
    snprintf(k, sizeof k, "DROVER_CLUSTER_KEY=%s", key);
    snprintf(n, sizeof n, "DROVER_CLUSTER_KEY_NEXT=%s", next ? next : "");
    return h_start(&C, name, "drover-agent", env, NULL);
}

/* Until node is ready per `nodes` (true), or timeout. */
static bool
node_ready(const char *node, int timeout_ms)
{
    char st[32];

    for (int waited = 0; waited < timeout_ms; waited += 200) {
        if (strcmp(h_node_state(&C, node, st, sizeof st), "ready") == 0)
            return true;
        h_msleep(200);
    }
    return false;
}

/* Web instances up that answer HTTP right now. */
static int
webs_serving(void)
{
    struct h_ps ps;
    int n = 0;

    h_get_ps(&C, "shop", &ps);
    for (int i = 0; i < ps.n; i++) {
        const char *type = j_get(&ps.o[i], "type"), *state = j_get(&ps.o[i], "state");
        char *body;

        if (!type || !state || strcmp(type, "web") != 0 || strcmp(state, "up") != 0)
            continue;
        body = h_http_get(j_get(&ps.o[i], "host"), atoi(j_get(&ps.o[i], "port")), 2000);
        n += body != NULL;
        free(body);
    }
    return n;
}

/* Both webs up and serving within timeout. */
static bool
app_whole(int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 250) {
        if (webs_serving() == 2)
            return true;
        h_msleep(250);
    }
    return false;
}

/* SIGTERM an agent (it leaves: its web is replaced on the other node first)
 * while checking the app never stops serving; then its exit status. */
static void
stop_agent_serving(int idx)
{
    kill(C.procs[idx].pid, SIGTERM);
    while (h_pid_alive(C.procs[idx].pid)) {
        cr_assert_geq(webs_serving(), 1, "the app stopped serving while %s left",
                      C.procs[idx].name);
        h_msleep(200);
    }
    cr_assert_eq(h_stop(&C, idx, 30000), 0, "%s did not exit 0", C.procs[idx].name);
}

/* An agent's Register in an envelope of the next protocol version. */
static void
refused_as_another_version(void)
{
    Drover__Message m = DROVER__MESSAGE__INIT;
    Drover__RegisterReq req = DROVER__REGISTER_REQ__INIT;
    Drover__Envelope env = DROVER__ENVELOPE__INIT;
    Drover__ErrorCode code;
    uint8_t body[256], buf[512];
    char text[256];
    void *reply = NULL;
    int s = nn_socket(AF_SP, NN_REQ), tmo = 5000, n;
    size_t len;

    req.node = "future";
    m.body_case = DROVER__MESSAGE__BODY_REGISTER_REQ;
    m.register_req = &req;
    env.version = WIRE_VERSION + 1;
    env.sender = "future";
    env.counter = 1;
    env.body.data = body;
    env.body.len = drover__message__pack(&m, body);
    len = drover__envelope__pack(&env, buf);
    cr_assert_geq(s, 0);
    nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVTIMEO, &tmo, sizeof tmo);
    cr_assert_geq(nn_connect(s, C.join), 0);
    cr_assert_geq(nn_send(s, buf, len, 0), 0);
    n = nn_recv(s, &reply, NN_MSG, 0);
    cr_assert_geq(n, 0, "no answer to another protocol version");
    cr_assert_eq(wire_refusal_open(reply, (size_t)n, &code, text, sizeof text), 0);
    cr_assert_eq(code, DROVER__ERROR_CODE__ERR_VERSION);
    cr_assert(strstr(text, "runs drover " DROVER_VERSION) != NULL, "%s", text);
    cr_assert(strstr(text, "upgrade the controller first") != NULL, "%s", text);
    nn_freemsg(reply);
    nn_close(s);
}

Test(rotation, agents_move_one_by_one_while_the_app_serves)
{
    const char *ranges[] = {"9990-9993", "9994-9997"}, *nodes[] = {"n1", "n2"};
    char name[32];
    int ctl, a[2];

    h_init(&C, "rotation", 7656);
    ctl = controller("controller", OLD, NULL);
    for (int i = 0; i < 2; i++) {
        a[i] = agent(nodes[i], nodes[i], ranges[i], OLD, NULL);
        cr_assert(node_ready(nodes[i], 10000), "%s not ready", nodes[i]);
    }
    OK("apps:create", "shop");
    OK("deploy", "shop", app_dir);
    OK("scale", "shop", "web=2");
    cr_assert(app_whole(30000), "web=2 never served");

    /* 1. The controller learns the next key (agents and app run on). */
    cr_assert_eq(h_stop(&C, ctl, 10000), 0);
    ctl = controller("controller-next", OLD, NEW);
    cr_assert_geq(webs_serving(), 1);

    /* 2. Each agent in turn: the new key, the old one still accepted. */
    for (int i = 0; i < 2; i++) {
        stop_agent_serving(a[i]);
        snprintf(name, sizeof name, "%s-new", nodes[i]);
        a[i] = agent(name, nodes[i], ranges[i], NEW, OLD);
        cr_assert(node_ready(nodes[i], 15000), "%s with the new key is not ready", nodes[i]);
        cr_assert(app_whole(30000), "the app is not whole after %s moved", nodes[i]);
    }

    /* 3. The controller drops the old key. */
    cr_assert_eq(h_stop(&C, ctl, 10000), 0);
    ctl = controller("controller-new", NEW, NULL);
    cr_assert(node_ready("n1", 15000) && node_ready("n2", 15000), "agents lost after the rotation");
    cr_assert(app_whole(30000), "the app is not whole after the rotation");

    /* An agent that still holds only the old key is refused and says why. */
    a[0] = agent("n3", "n3", "9998-9999", OLD, NULL);
    cr_assert(h_wait_log(&C, a[0], "event=refused_by_controller", 10000), "n3 was not refused");
    cr_assert(h_log_has(&C, a[0], "the cluster key was refused"));
    cr_assert(h_wait_log(&C, ctl, "reason=\"sealed with an unknown key\"", 5000) ||
              h_log_has(&C, ctl, "event=refused"));
    cr_assert_not(node_ready("n3", 1000), "n3 joined with the old key");

    /* Mixed versions during an upgrade: a peer of the same protocol version
     * works (every test here); one of another protocol version is refused
     * and told what to run. */
    refused_as_another_version();
}
