/* SPDX-License-Identifier: MIT */
/*
 * overload_test.c: a controller behind on its agent endpoint answers
 * heartbeats Error{ERR_BUSY, retry_after_ms} (controller/front.c); real
 * agents hold them and send again (common/rpc.c), stay up, and what was
 * scaled meanwhile is placed and acknowledged, each instance once.
 *
 * The backlog comes from a flood: a thread with 300 REQ connections (one
 * message waits per connection in nanomsg, so a full batch of the
 * controller's drain needs that many), each re-sending a sealed full sync of
 * an unknown node. The real agents are heard by UDP heartbeats, so their
 * watches are held, not told busy; the flood's own node "beat", registered
 * leaving (nothing is placed on it) and heard only by its TCP heartbeats
 * (quiet syncs without a watch, as an agent without UDP sends them), is
 * what gets ERR_BUSY. Controller 15000-15003, app ports 15100-15299.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>

#include "env.h"
#include "harness.h"
#include "wire.h"

#define FLOOD_SOCKETS 300
#define FLOOD_REPORTS 300

static struct h_cluster C;

static void
fini(void)
{
    h_cleanup(&C);
}

TestSuite(overload, .fini = fini, .timeout = 120);

#define CLI(out, err, ...) h_cli(&C, out, err, (const char *const[]){__VA_ARGS__, NULL})

static const char *app_dir = DROVER_SOURCE_DIR "/tests/integration/app";

static long
mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

struct flood {
    const char *url;
    int ms;
    int rc;             /* 0: it ran */
    unsigned long sent; /* requests that went out */
    unsigned long busy; /* the beat node's heartbeats answered ERR_BUSY */
    unsigned long beats;
};

/* Seal m on sock, and open the reply (waited for up to 5 s): NULL when none
 * came or it did not open. */
static Drover__Message *
ask(int sock, struct wire_sender *snd, const uint8_t *key, const Drover__Message *m)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    void *in = NULL;
    int n, tmo = 5000;
    Drover__Message *rep = NULL;

    nn_setsockopt(sock, NN_SOL_SOCKET, NN_RCVTIMEO, &tmo, sizeof(tmo));
    if (wire_seal(snd, m, &buf, &len) < 0 || nn_send(sock, buf, len, 0) < 0) {
        free(buf);
        return NULL;
    }
    free(buf);
    if ((n = nn_recv(sock, &in, NN_MSG, 0)) >= 0) {
        if (wire_open_key(in, (size_t)n, key, &rep) < 0)
            rep = NULL;
        nn_freemsg(in);
    }
    return rep;
}

/* The flood's node "beat": registered, and its first (full, empty) report
 * taken, leaving; *sync is its quiet heartbeat from then on. */
static int
beat_node(const char *url, const uint8_t *key, struct wire_sender *snd, int *sock,
          Drover__SyncReq *sync)
{
    Drover__RegisterReq rr = DROVER__REGISTER_REQ__INIT;
    Drover__Message m = DROVER__MESSAGE__INIT, *rep;
    bool ok;

    wire_sender_init(snd, "beat");
    wire_sender_set_key(snd, key);
    if ((*sock = nn_socket(AF_SP, NN_REQ)) < 0 || nn_connect(*sock, url) < 0)
        return -1;
    rr.node = "beat";
    rr.address = "127.0.0.1";
    rr.port_min = rr.port_max = 15300;
    rr.capacity = 1;
    rr.boot_id = "beat-boot";
    m.body_case = DROVER__MESSAGE__BODY_REGISTER_REQ;
    m.register_req = &rr;
    rep = ask(*sock, snd, key, &m);
    ok = rep != NULL && rep->body_case == DROVER__MESSAGE__BODY_REGISTER_REP;
    wire_msg_free(rep);
    if (!ok)
        return -1;
    sync->node = "beat";
    sync->boot_id = "beat-boot";
    sync->digest = 42; /* of no instances, as this node counts them */
    sync->leaving = true;
    sync->full = true;
    m.body_case = DROVER__MESSAGE__BODY_SYNC_REQ;
    m.sync_req = sync;
    rep = ask(*sock, snd, key, &m);
    ok = rep != NULL && rep->body_case == DROVER__MESSAGE__BODY_SYNC_REP;
    if (ok)
        sync->generation = rep->sync_rep->generation;
    wire_msg_free(rep);
    sync->full = false;
    return ok ? 0 : -1;
}

/* A thread (nanomsg's own threads would not survive a fork): FLOOD_SOCKETS
 * ghosts re-sending, for f->ms, a sealed full sync of an unknown node with
 * FLOOD_REPORTS instance reports (the controller unpacks them all before it
 * says "register again": slow to take in, quick to seal, so the controller
 * falls behind). */
static void *
flood(void *arg)
{
    struct flood *f = arg;
    static struct wire_sender snd[FLOOD_SOCKETS];
    static Drover__InstanceReport rep[FLOOD_REPORTS], *rv[FLOOD_REPORTS];
    static struct wire_sender bsnd;
    Drover__SyncReq r = DROVER__SYNC_REQ__INIT, bsync = DROVER__SYNC_REQ__INIT;
    Drover__Message bm = DROVER__MESSAGE__INIT;
    int bsock = -1;
    long bsent = 0; /* when the beat node's request in flight went out */
    Drover__Message m = DROVER__MESSAGE__INIT;
    int socks[FLOOD_SOCKETS];
    struct env_errs e = {0};
    uint8_t key[WIRE_KEY_BYTES], *body;
    long end = mono_ms() + f->ms;
    char name[32];
    size_t blen;

    setenv("DROVER_CLUSTER_KEY", H_CLUSTER_KEY, 1);
    f->rc = -1;
    if (env_key(&e, "DROVER_CLUSTER_KEY", key) < 0)
        return NULL;
    for (int i = 0; i < FLOOD_REPORTS; i++) {
        drover__instance_report__init(&rep[i]);
        rep[i].id = (uint64_t)i + 1;
        rep[i].app = "ghost";
        rep[i].name = "web.1";
        rep[i].state = DROVER__INSTANCE_STATE__ST_UP;
        rv[i] = &rep[i];
    }
    r.node = "ghost";
    r.boot_id = "ghost";
    r.full = true;
    r.n_instances = FLOOD_REPORTS;
    r.instances = rv;
    m.body_case = DROVER__MESSAGE__BODY_SYNC_REQ;
    m.sync_req = &r;
    blen = drover__message__get_packed_size(&m);
    if ((body = malloc(blen)) == NULL)
        return NULL;
    drover__message__pack(&m, body);
    for (int i = 0; i < FLOOD_SOCKETS; i++) {
        snprintf(name, sizeof(name), "ghost%03d", i);
        wire_sender_init(&snd[i], name);
        wire_sender_set_key(&snd[i], key);
        if ((socks[i] = nn_socket(AF_SP, NN_REQ)) < 0 || nn_connect(socks[i], f->url) < 0)
            return NULL;
    }
    if (beat_node(f->url, key, &bsnd, &bsock, &bsync) < 0)
        return NULL;
    bm.body_case = DROVER__MESSAGE__BODY_SYNC_REQ;
    bm.sync_req = &bsync;
    while (mono_ms() < end) {
        uint8_t *bbuf = NULL;
        size_t blen2 = 0;
        void *bin = NULL;
        int bn;

        /* The beat node: its answers counted, its next heartbeat sent. */
        while ((bn = nn_recv(bsock, &bin, NN_MSG, NN_DONTWAIT)) >= 0) {
            Drover__Message *a = NULL;

            if (wire_open_key(bin, (size_t)bn, key, &a) < 0)
                a = NULL;
            else if (a->body_case == DROVER__MESSAGE__BODY_ERROR &&
                     a->error->code == DROVER__ERROR_CODE__ERR_BUSY)
                f->busy++;
            else if (a->body_case == DROVER__MESSAGE__BODY_SYNC_REP)
                bsync.generation = a->sync_rep->generation; /* as an agent follows it */
            wire_msg_free(a);
            nn_freemsg(bin);
            bsent = 0; /* answered: the next goes now */
        }
        /* One at a time, as an agent's REQ socket has it (a new request
         * would cancel the one in flight, and its answer with it). */
        if ((bsent == 0 || mono_ms() - bsent > 2000) && wire_seal(&bsnd, &bm, &bbuf, &blen2) == 0 &&
            nn_send(bsock, bbuf, blen2, NN_DONTWAIT) >= 0) {
            f->beats++;
            bsent = mono_ms();
        }
        free(bbuf);
        for (int i = 0; i < FLOOD_SOCKETS; i++) {
            uint8_t *buf = NULL;
            size_t len = 0;
            void *in = NULL;

            while (nn_recv(socks[i], &in, NN_MSG, NN_DONTWAIT) >= 0)
                nn_freemsg(in);
            if (wire_seal_raw(&snd[i], body, blen, &buf, &len) == 0 &&
                nn_send(socks[i], buf, len, NN_DONTWAIT) >= 0)
                f->sent++;
            free(buf);
        }
        usleep(1000);
    }
    /* No nn_close: closing a REQ mid-request can abort inside nanomsg
     * 1.1.5 (tests/bench/worker.c); the test's process exit closes them. */
    free(body);
    f->rc = 0;
    return NULL;
}

static int
count_in(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    int n = 0;

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

Test(overload, busy_heartbeats_wait_and_retry_and_everything_is_placed_once)
{
    const char *const ctl_env[] = {"DROVER_BUSY_MS=20", "DROVER_HEARTBEAT_MS=200",
                                   "DROVER_NODE_TIMEOUT_MS=5000", NULL};
    const char *const agent_env[] = {"DROVER_HEARTBEAT_MS=200", NULL};
    char *out = NULL, *err = NULL, log[512], buf[64];
    struct h_ps ps;
    long deadline;
    struct flood f = {0};
    pthread_t t;
    int busy;

    h_start_cluster(&C, "overload", 15000, 2, 15100, 100, ctl_env, agent_env);
    cr_assert_eq(CLI(NULL, &err, "apps:create", "shop"), 0, "%s", err);
    free(err);
    cr_assert_eq(CLI(&out, &err, "deploy", "shop", app_dir, "--no-wait"), 0, "%s %s", out, err);
    free(out);
    free(err);
    h_msleep(1000); /* the agents' heartbeats are quiet now */
    f.url = C.join;
    f.ms = 5000;
    cr_assert_eq(pthread_create(&t, NULL, flood, &f), 0);
    h_msleep(1500);
    /* The API is always served; the agents get the new sets while busy. */
    cr_assert_eq(CLI(NULL, &err, "scale", "shop", "web=6"), 0, "%s", err);
    free(err);
    cr_assert_eq(pthread_join(t, NULL), 0);
    cr_assert(f.rc == 0 && f.sent > 0, "the flood failed");
    snprintf(log, sizeof(log), "%s", C.procs[0].log);
    busy = count_in(log, "event=busy");
    cr_assert_gt(busy, 0, "the controller never said busy (log %s)", log);
    cr_assert_gt(f.busy, 0, "the beat node's %lu heartbeats were never told busy", f.beats);
    /* Everything placed and acknowledged up, each name once, no node lost. */
    deadline = mono_ms() + 30000;
    do {
        h_get_ps(&C, "shop", &ps);
        if (h_ps_count(&ps, "web", "up", NULL) == 6 && ps.n == 6)
            break;
        h_msleep(200);
    } while (mono_ms() < deadline);
    cr_assert_eq(h_ps_count(&ps, "web", "up", NULL), 6, "%d of 6 up",
                 h_ps_count(&ps, "web", "up", NULL));
    cr_assert_eq(ps.n, 6);
    for (int i = 1; i <= 6; i++) {
        char nm[16];
        int seen = 0;

        snprintf(nm, sizeof(nm), "web.%d", i);
        for (int k = 0; k < ps.n; k++)
            seen += strcmp(j_get(&ps.o[k], "name") ? j_get(&ps.o[k], "name") : "", nm) == 0;
        cr_assert_eq(seen, 1, "%s listed %d times", nm, seen);
    }
    /* The flood's node goes silent with it and may be judged down. */
    cr_assert_eq(count_in(log, "event=node_down node=n1 ") +
                     count_in(log, "event=node_down node=n2 "),
                 0, "a held agent was judged down");
    cr_assert_str_eq(h_node_state(&C, "n1", buf, sizeof(buf)), "ready");
    cr_assert_str_eq(h_node_state(&C, "n2", buf, sizeof(buf)), "ready");
}
