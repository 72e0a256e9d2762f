/* SPDX-License-Identifier: MIT */
/*
 * fuzz_api: every request handler of the controller, API and agent
 * endpoints alike, through the dispatch table (ctl_call_ep, dispatch.c) as
 * a front end calls it, on a real controller: its model, an SQLite store,
 * a slug store, its loop and thread pool. No part of the controller is
 * stubbed. Each input is one serialized Message; pending handlers (slug
 * upload and read, release creation) are run to their end, and done must
 * be called exactly once per input.
 *
 * Memory stays bounded: every input gets a fresh model, built by the core
 * functions (nodes.c, releases.c) with a node, an app with a release of two
 * types and a formation, and a fresh in-memory store; both are freed after
 * the input, with the logs, runs and endpoints state. Only the slug store
 * (a temporary directory) lives across inputs. So libFuzzer's leak
 * detection stays on, and a long run (tests/fuzz/README.md) holds well
 * under 512 MB.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "store.h"
#include "log.h"
#include "slug.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ctl ctl;
static uv_loop_t loop;
static char dir[256], sha[65];
static uint64_t slug_size;
static unsigned dones;

static void
cleanup(void)
{
    if (dir[0] != '\0')
        rm_rf(dir);
}

static void
done(void *arg, const Drover__Message *rep)
{
    (void)arg;
    if (rep == NULL)
        abort(); /* done always has a reply or an Error */
    dones++;
}

/* The state every input starts from, made by the core functions. */
static void
seed_model(void)
{
    static const struct ctl_ptype types[] = {{"web", "python3 web.py"}, {"worker", "sh w.sh"}};
    struct ctl_node_reg g = {"n1", "127.0.0.1", "boot1", 5000, 5099, 64, NULL, 0};
    struct ctl_release_spec spec = {sha, slug_size, "seed", types, 2, NULL, 0};
    struct ctl_scale web = {"web", 2};
    struct ctl_release *rel;
    struct ctl_node *n;
    struct ctl_app *a;
    char what[64];

    if (ctl_node_register(ctl.model, &g, now_ms(), mono_ms(), &n) < 0 ||
        ctl_app_add(ctl.model, "shop", now_ms(), &a) < 0 ||
        ctl_release_make(ctl.model, a, &spec, now_ms(), &rel) < 0 ||
        ctl_app_scale(ctl.model, a, &web, 1, what, sizeof(what)) < 0 || ctl_commit(&ctl) < 0 ||
        a->current != 1)
        abort(); /* the seed did not take: the harness would fuzz nothing deep */
}

static void
controller_up(void)
{
    if (ctl_store_open(":memory:", &ctl.store) < 0 || (ctl.model = ctl_model_new()) == NULL ||
        ctl_store_load(ctl.store, ctl.model, now_ms()) < 0)
        abort();
    /* As main.c builds them; their timers are not started. */
    ctl.logs = ctl_logs_new(&ctl, 1500);
    ctl.runs = ctl_runs_new(&ctl);
    ctl.endpoints = ctl_endpoints_new(&ctl);
    if (ctl.logs == NULL || ctl.runs == NULL || ctl.endpoints == NULL)
        abort();
    ctl.model->event = ctl_logs_text;
    ctl.model->event_arg = ctl.logs;
    seed_model();
}

/* Held calls are answered (ERR_UNAVAILABLE) as their owners go. */
static void
controller_down(void)
{
    ctl_runs_free(ctl.runs);
    ctl_endpoints_free(ctl.endpoints);
    ctl.model->event = NULL;
    ctl_logs_free(ctl.logs);
    ctl_store_close(ctl.store);
    ctl_model_free(ctl.model);
    ctl.runs = NULL;
    ctl.endpoints = NULL;
    ctl.logs = NULL;
    ctl.store = NULL;
    ctl.model = NULL;
}

static void
make_slug(void)
{
    char app[300], path[400], err[256];
    FILE *f;

    snprintf(app, sizeof(app), "%s/app", dir);
    mkdir_p(app, 0755);
    snprintf(path, sizeof(path), "%s/Procfile", app);
    if ((f = fopen(path, "w")) == NULL)
        abort();
    fputs("web: python3 web.py\nworker: sh w.sh\n", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/slug.tgz", dir);
    if (slug_pack_dir(app, path, err, sizeof(err)) < 0 ||
        slug_sha256_file(path, sha, &slug_size) < 0)
        abort();
    if (ctl_slug_path(ctl.slugs, sha, app, sizeof(app)) < 0 || rename(path, app) < 0)
        abort();
}

static void
setup(void)
{
    static int ready;
    int null;

    if (ready)
        return;
    ready = 1;
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
    ctl.cfg.slugs_keep = 50;
    memset(ctl.cfg.cluster_key, 0x42, sizeof(ctl.cfg.cluster_key));
    snprintf(ctl.cfg.api_token, sizeof(ctl.cfg.api_token), "fuzz-api-token-0123456789");
    if (ctl_keys_init(&ctl) < 0 || ctl_slugs_new(&ctl, dir, &ctl.slugs) < 0)
        abort();
    make_slug();
}

static enum ctl_ep
endpoint_of(const Drover__Message *m)
{
    switch (m->body_case) {
    case DROVER__MESSAGE__BODY_REGISTER_REQ:
    case DROVER__MESSAGE__BODY_SYNC_REQ:
    case DROVER__MESSAGE__BODY_SLUG_REQ:
    case DROVER__MESSAGE__BODY_RUN_PIPE_REQ:
        return CTL_EP_AGENT;
    default:
        return CTL_EP_API;
    }
}

/* Long polls would hold their reply past this input: ask for an answer
 * now. Everything else about them is the fuzzer's. */
static void
no_waits(Drover__Message *m)
{
    if (m->body_case == DROVER__MESSAGE__BODY_LOGS_REQ && m->logs_req != NULL)
        m->logs_req->wait_ms = 0;
    if (m->body_case == DROVER__MESSAGE__BODY_ENDPOINTS_REQ && m->endpoints_req != NULL)
        m->endpoints_req->wait_ms = 0;
    if (m->body_case == DROVER__MESSAGE__BODY_RUN_IO_REQ && m->run_io_req != NULL)
        m->run_io_req->wait_ms = 0;
    if (m->body_case == DROVER__MESSAGE__BODY_RUN_PIPE_REQ && m->run_pipe_req != NULL)
        m->run_pipe_req->poll = false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ProtobufCAllocator al;
    struct ctl_arena *ar;
    Drover__Message *m;

    setup();
    if (ctl.stopping)
        return 0; /* a store failure stops the controller: nothing more to test */
    /* As the front end does (front.c): the request in its call's arena. */
    if ((ar = ctl_arena_new()) == NULL)
        return 0;
    al = ctl_arena_allocator(ar);
    m = drover__message__unpack(&al, size, data);
    if (m == NULL || m->body_case == DROVER__MESSAGE__BODY__NOT_SET) {
        ctl_arena_free(ar);
        return 0;
    }
    no_waits(m);
    controller_up();
    dones = 0;
    ctl_call_ep(&ctl, endpoint_of(m), m, ar, done, NULL);
    while (ctl.inflight > 0)
        uv_run(&loop, UV_RUN_ONCE);
    ctl_notify_flush(&ctl);
    controller_down();
    if (dones != 1 || ctl_calls_pending(&ctl) != 0)
        abort(); /* done runs exactly once per call */
    return 0;
}
