/* SPDX-License-Identifier: MIT */
/*
 * fuzz_api: every request handler of the controller, API and agent
 * endpoints alike, on a real in-memory controller: its model, its SQLite
 * store and slug store in a temporary directory (on /dev/shm when there is
 * one), its loop and thread pool. Each input is one serialized Message,
 * handed to ctl_api_handle() or ctl_agents_handle() as if it had arrived
 * sealed; async handlers (slug upload, release creation) are run to their
 * reply. Replies go to a socket that is not there, which is fine: the point
 * is that no input crashes, leaks, trips a sanitizer, or breaks the model.
 *
 * Before the first input the controller is given something to work on: a
 * node, an app with a release (uploaded and created through the handlers)
 * and a formation, so that inputs reach deep into the handlers.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nanomsg/nn.h>

#include "ctl.h"
#include "store.h"
#include "log.h"
#include "slug.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ctl ctl;
static uv_loop_t loop;
static char dir[256];

/*
 * main.c's part of the controller (ctl.h): this harness is the main here. A
 * store failure stops the controller; then no more inputs are run.
 */
void
ctl_shutdown(struct ctl *c, int code)
{
    c->stopping = true;
    c->exit_code = code;
}

void
ctl_maybe_close(struct ctl *c)
{
    (void)c;
}

static void
cleanup(void)
{
    if (dir[0] != '\0')
        rm_rf(dir);
}

/* Hand m (owned, as from drover__message__unpack) to its endpoint and run
 * the loop until it has been answered. */
static void
handle(Drover__Message *m)
{
    struct nnuv_msg *req = calloc(1, sizeof(*req));

    if (req == NULL) {
        wire_msg_free(m);
        return;
    }
    req->nn = -1;
    req->body = nn_allocmsg(1, 0);
    /* Long polls would hold their reply past this input: ask for an answer
     * now. Everything else about them is the fuzzer's. */
    if (m->body_case == DROVER__MESSAGE__BODY_LOGS_REQ && m->logs_req != NULL)
        m->logs_req->wait_ms = 0;
    if (m->body_case == DROVER__MESSAGE__BODY_RUN_IO_REQ && m->run_io_req != NULL)
        m->run_io_req->wait_ms = 0;
    if (m->body_case == DROVER__MESSAGE__BODY_RUN_PIPE_REQ && m->run_pipe_req != NULL)
        m->run_pipe_req->poll = false;
    switch (m->body_case) {
    case DROVER__MESSAGE__BODY_REGISTER_REQ:
    case DROVER__MESSAGE__BODY_SYNC_REQ:
    case DROVER__MESSAGE__BODY_SLUG_REQ:
    case DROVER__MESSAGE__BODY_RUN_PIPE_REQ:
        ctl_agents_handle(&ctl, req, m);
        break;
    default:
        ctl_api_handle(&ctl, req, m);
        break;
    }
    while (ctl.inflight > 0)
        uv_run(&loop, UV_RUN_ONCE);
    ctl_notify_flush(&ctl);
}

/* Pack and unpack, so that handle() gets a message it may free. */
static void
handle_built(Drover__Message *m)
{
    size_t len = drover__message__get_packed_size(m);
    uint8_t *buf = malloc(len + 1);
    Drover__Message *u;

    if (buf == NULL)
        abort();
    drover__message__pack(m, buf);
    u = drover__message__unpack(NULL, len, buf);
    free(buf);
    if (u == NULL)
        abort();
    handle(u);
}

static void
seed_state(void)
{
    char app[300], path[400], sha[65], err[256];
    uint64_t size;
    Drover__Message m = DROVER__MESSAGE__INIT;
    FILE *f;

    /* A node. */
    Drover__RegisterReq reg = DROVER__REGISTER_REQ__INIT;
    reg.node = "n1";
    reg.address = "127.0.0.1";
    reg.port_min = 5000;
    reg.port_max = 5099;
    reg.capacity = 64;
    reg.boot_id = "boot1";
    m.body_case = DROVER__MESSAGE__BODY_REGISTER_REQ;
    m.register_req = &reg;
    handle_built(&m);

    /* An app with a slug, a release and a formation. */
    Drover__AppCreateReq ac = DROVER__APP_CREATE_REQ__INIT;
    ac.app = "shop";
    m.body_case = DROVER__MESSAGE__BODY_APP_CREATE_REQ;
    m.app_create_req = &ac;
    handle_built(&m);
    snprintf(app, sizeof(app), "%s/app", dir);
    mkdir_p(app, 0755);
    snprintf(path, sizeof(path), "%s/Procfile", app);
    f = fopen(path, "w");
    fputs("web: python3 web.py\nworker: sh worker.sh\n", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/slug.tgz", dir);
    if (slug_pack_dir(app, path, err, sizeof(err)) < 0 || slug_sha256_file(path, sha, &size) < 0)
        abort();
    Drover__SlugPutReq put = DROVER__SLUG_PUT_REQ__INIT;
    put.sha256 = sha;
    put.total = size;
    put.data.len = size;
    put.data.data = malloc(size);
    f = fopen(path, "rb");
    if (put.data.data == NULL || f == NULL || fread(put.data.data, 1, size, f) != size)
        abort();
    fclose(f);
    m.body_case = DROVER__MESSAGE__BODY_SLUG_PUT_REQ;
    m.slug_put_req = &put;
    handle_built(&m);
    free(put.data.data);
    Drover__ReleaseCreateReq rc = DROVER__RELEASE_CREATE_REQ__INIT;
    rc.app = "shop";
    rc.slug_sha256 = sha;
    rc.description = "seed";
    m.body_case = DROVER__MESSAGE__BODY_RELEASE_CREATE_REQ;
    m.release_create_req = &rc;
    handle_built(&m);
    Drover__ScaleReq sc = DROVER__SCALE_REQ__INIT;
    Drover__FormationEntry fe = DROVER__FORMATION_ENTRY__INIT, *fes[1] = {&fe};
    fe.type = "web";
    fe.quantity = 2;
    sc.app = "shop";
    sc.entries = fes;
    sc.n_entries = 1;
    m.body_case = DROVER__MESSAGE__BODY_SCALE_REQ;
    m.scale_req = &sc;
    handle_built(&m);
    if (ctl_app_find(ctl.model, "shop") == NULL || ctl_app_find(ctl.model, "shop")->current != 1)
        abort(); /* the seed did not take: the harness would fuzz nothing deep */
}

static void
setup(void)
{
    static int done;
    char path[400];
    int null;

    if (done)
        return;
    done = 1;
    /* The controller logs every refusal: keep stdout quiet for speed. */
    null = open("/dev/null", O_WRONLY);
    dup2(null, STDOUT_FILENO);
    close(null);
    log_init("controller");
    snprintf(dir, sizeof(dir), "/dev/shm/drover-fuzz-api.XXXXXX");
    if (mkdtemp(dir) == NULL) {
        snprintf(dir, sizeof(dir), "/tmp/drover-fuzz-api.XXXXXX");
        if (mkdtemp(dir) == NULL)
            abort();
    }
    atexit(cleanup);
    if (uv_loop_init(&loop) < 0)
        abort();
    ctl.loop = &loop;
    snprintf(ctl.cfg.data_dir, sizeof(ctl.cfg.data_dir), "%s", dir);
    ctl.cfg.node_timeout_ms = 5000;
    ctl.cfg.heartbeat_ms = 1000;
    memset(ctl.cfg.cluster_key, 0x42, sizeof(ctl.cfg.cluster_key));
    snprintf(ctl.cfg.api_token, sizeof(ctl.cfg.api_token), "fuzz-api-token-0123456789");
    if (ctl_keys_init(&ctl) < 0)
        abort();
    snprintf(path, sizeof(path), "%s/drover.db", dir);
    ctl.sops = &ctl_store_sqlite_ops;
    if (ctl_store_open(path, &ctl.store) < 0 || (ctl.model = ctl_model_new()) == NULL ||
        ctl_store_load(ctl.store, ctl.model, now_ms()) < 0 ||
        ctl_slugs_new(&ctl, dir, &ctl.slugs) < 0)
        abort();
    /* As main.c builds them; their timers are not started: nothing here
     * waits for a session to expire. */
    ctl.logs = ctl_logs_new(&ctl, 1500);
    ctl.runs = ctl_runs_new(&ctl);
    ctl.endpoints = ctl_endpoints_new(&ctl); /* EndpointsReq needs it */
    if (ctl.logs == NULL || ctl.runs == NULL || ctl.endpoints == NULL)
        abort();
    ctl.model->event = ctl_logs_text;
    ctl.model->event_arg = ctl.logs;
    seed_state();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Drover__Message *m;

    setup();
    if (ctl.stopping)
        return 0; /* a store failure stops the controller: nothing more to test */
    m = drover__message__unpack(NULL, size, data);
    if (m == NULL)
        return 0;
    if (m->body_case == DROVER__MESSAGE__BODY__NOT_SET) {
        wire_msg_free(m);
        return 0;
    }
    handle(m);
    return 0;
}
