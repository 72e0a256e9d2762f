/* SPDX-License-Identifier: MIT */
/*
 * core_test.c: the controller's core files called directly, on a model
 * alone (no sockets, no store, no stubs): release creation and rollback
 * and scale (releases.c), a node's registration, full report and the
 * node-name rule (nodes.c), one-off placement (oneoffs.c); and the
 * dispatcher (dispatch.c) with a real in-memory store: done runs once, a
 * refusal changes nothing, an agent request on the API is refused; and
 * SQLite's group commits on a running loop (commit.c): the calls of one
 * loop turn are answered together, after one transaction that holds them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <sqlite3.h>

#include "ctl.h"

static const struct ctl_ptype types[] = {{"web", "./web"}, {"worker", "./worker"}};
static const char sha_a[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char sha_b[] = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

static struct ctl_model *m;
static struct ctl_app *app;

static void
setup(void)
{
    m = ctl_model_new();
    cr_assert_not_null(m);
    cr_assert_eq(ctl_app_add(m, "shop", 1, &app), 0);
}

static void
teardown(void)
{
    ctl_model_free(m);
}

static struct ctl_release *
make(const char *sha, const char *desc)
{
    struct ctl_release_spec spec = {sha, 100, desc, types, 2, app->config, app->nconfig};
    struct ctl_release *rel = NULL;

    cr_assert_eq(ctl_release_make(m, app, &spec, 1000, &rel), 0);
    return rel;
}

static struct ctl_node *
node(const char *name, const char *boot, uint64_t mono)
{
    struct ctl_node_reg g = {name, "10.0.0.1", boot, 5000, 5009, 10, NULL, 0};
    struct ctl_node *n = NULL;

    cr_assert_eq(ctl_node_register(m, &g, 1000, mono, &n), 0);
    return n;
}

TestSuite(core, .init = setup, .fini = teardown);

Test(core, release_make_is_current_with_web_1, .timeout = 2)
{
    struct ctl_release *rel = make(sha_a, "first");

    cr_assert_eq(rel->version, 1);
    cr_assert_eq(app->current, 1);
    cr_assert_str_eq(rel->status, "deploying");
    cr_assert_eq(app->deploy.state, CTL_DEPLOY_RUNNING);
    cr_assert_eq(ctl_formation_find(app, "web")->quantity, 1, "web=1 on the first release");
    cr_assert_eq(ctl_formation_find(app, "worker")->quantity, 0);
    cr_assert(app->reconcile, "rolled out by the settle, not by a direct reconcile");
    cr_assert(app->dirty_row && app->dirty_formation, "marked for the store");
}

Test(core, config_change_makes_a_release_only_after_the_first, .timeout = 2)
{
    struct ctl_release *rel = (void *)1;

    cr_assert_eq(ctl_config_set(app, "A", "1"), 0);
    cr_assert_eq(ctl_release_for_config(m, app, "Set A config vars", 1000, &rel), 0);
    cr_assert_null(rel, "before the first release the config only changes");
    make(sha_a, "first");
    cr_assert_eq(ctl_config_set(app, "B", "2"), 0);
    cr_assert_eq(ctl_release_for_config(m, app, "Set B config vars", 1000, &rel), 0);
    cr_assert_eq(rel->version, 2);
    cr_assert_str_eq(rel->slug_sha256, sha_a, "same slug");
    cr_assert_eq(rel->nconfig, 2);
    cr_assert_eq(app->current, 2);
}

Test(core, rollback_goes_to_the_last_succeeded, .timeout = 2)
{
    const struct ctl_release *to;
    struct ctl_release *r1 = make(sha_a, "one"), *rel;
    char err[160];

    cr_assert_eq(ctl_rollback_target(app, 0, &to, err, sizeof(err)), -ENOENT,
                 "nothing succeeded yet");
    ctl_release_set_status(m, app, r1, "succeeded", "");
    app->deploy.state = CTL_DEPLOY_SUCCEEDED; /* as deploys.c ends a good rollout */
    make(sha_b, "two");
    cr_assert_eq(ctl_rollback_target(app, 2, &to, err, sizeof(err)), -EEXIST);
    cr_assert_eq(ctl_rollback_target(app, 9, &to, err, sizeof(err)), -ENOENT);
    cr_assert_eq(ctl_rollback_target(app, 0, &to, err, sizeof(err)), 0);
    cr_assert_eq(to->version, 1);
    cr_assert_eq(ctl_release_rollback(m, app, to, 2000, &rel), 0);
    cr_assert_eq(rel->version, 3);
    cr_assert_str_eq(rel->slug_sha256, sha_a, "v1's slug");
    cr_assert_str_eq(rel->description, "Rollback to v1");
    cr_assert_eq(app->current, 3);
}

Test(core, scale_sets_quantities_and_asks_a_settle, .timeout = 2)
{
    struct ctl_scale v[] = {{"web", 3}, {"worker", 2}};
    char what[64];

    make(sha_a, "one");
    app->reconcile = false;
    TAILQ_INIT(&m->reconcile);
    cr_assert_eq(ctl_app_scale(m, app, v, 2, what, sizeof(what)), 0);
    cr_assert_str_eq(what, " web=3 worker=2");
    cr_assert_eq(ctl_formation_find(app, "web")->quantity, 3);
    cr_assert_eq(ctl_formation_find(app, "worker")->quantity, 2);
    cr_assert(app->reconcile);
    cr_assert_eq(ctl_settle(m, 1000), 0);
    cr_assert_eq(app->ninstances, 5, "the settle made them (no node: unplaced)");
}

Test(core, node_name_rule, .timeout = 2)
{
    struct ctl_node *n = node("n1", "boot-a", 10000);

    /* Another boot while the holder is live: taken. */
    cr_assert(ctl_node_name_taken(n, "boot-b", "", 11000, 5000));
    /* The same boot, or one that names it as its previous: not taken. */
    cr_assert_not(ctl_node_name_taken(n, "boot-a", "", 11000, 5000));
    cr_assert_not(ctl_node_name_taken(n, "boot-b", "boot-a", 11000, 5000));
    /* Silent past the timeout: free again. */
    cr_assert_not(ctl_node_name_taken(n, "boot-b", "", 15001, 5000));
    /* Down: free. */
    ctl_node_update(m, n, true, n->admin, false);
    cr_assert_not(ctl_node_name_taken(n, "boot-b", "", 11000, 5000));
    cr_assert_not(ctl_node_name_taken(NULL, "boot-b", "", 11000, 5000));
}

Test(core, apply_report_moves_states_and_forgets_the_stopped, .timeout = 2)
{
    struct ctl_node *n = node("n1", "boot-a", 1);
    Drover__InstanceReport r[2], *v[2] = {&r[0], &r[1]};
    struct ctl_instance *a, *b;
    uint64_t ida, idb;

    make(sha_a, "one");
    cr_assert_eq(ctl_settle(m, 1000), 0);
    cr_assert_eq(ctl_app_scale(m, app, &(struct ctl_scale){"web", 2}, 1, (char[64]){0}, 64), 0);
    cr_assert_eq(ctl_settle(m, 1000), 0);
    cr_assert_eq(n->nlive, 2);
    a = LIST_FIRST(&n->instances);
    b = LIST_NEXT(a, node_link);
    ida = a->id;
    idb = b->id;
    ctl_inst_stop(m, b);
    for (int i = 0; i < 2; i++) {
        drover__instance_report__init(&r[i]);
        r[i].app = "shop";
        r[i].name = "web.1";
        r[i].reason = "";
    }
    r[0].id = ida;
    r[0].state = DROVER__INSTANCE_STATE__ST_UP;
    r[0].pid = 42;
    r[0].since_ms = 1500;
    r[1].id = idb;
    r[1].state = DROVER__INSTANCE_STATE__ST_STOPPED;
    ctl_node_apply_report(m, n, v, 2, 2000);
    cr_assert_eq(a->state, DROVER__INSTANCE_STATE__ST_UP);
    cr_assert_eq(a->pid, 42);
    cr_assert(a->dirty, "marked for the store");
    cr_assert_null(ctl_inst_find(m, idb), "a stopping instance reported stopped is gone");
    /* Absent from the next full report: pending again, pid cleared. */
    ctl_node_apply_report(m, n, NULL, 0, 3000);
    cr_assert_eq(a->state, DROVER__INSTANCE_STATE__ST_PENDING);
    cr_assert_eq(a->pid, 0);
}

Test(core, oneoff_placement, .timeout = 2)
{
    struct ctl_oneoff_spec q = {"echo hi", "", "", false, false, 0, 0};
    struct ctl_instance *in = NULL, *in2 = NULL;
    struct ctl_node *n;
    char err[160];

    cr_assert_eq(ctl_oneoff_start(m, app, &q, 1000, &in, err, sizeof(err)), -EAGAIN,
                 "no release yet");
    make(sha_a, "one");
    cr_assert_eq(ctl_oneoff_start(m, app, &q, 1000, &in, err, sizeof(err)), -EBUSY, "no node");
    n = node("n1", "boot-a", 1);
    q.node = "n2";
    cr_assert_eq(ctl_oneoff_start(m, app, &q, 1000, &in, err, sizeof(err)), -EBUSY);
    cr_assert_str_eq(err, "no node n2");
    q.node = "";
    q.type = "nope";
    cr_assert_eq(ctl_oneoff_start(m, app, &q, 1000, &in, err, sizeof(err)), -ENOENT);
    q.type = "worker";
    q.command = "";
    cr_assert_eq(ctl_oneoff_start(m, app, &q, 1000, &in, err, sizeof(err)), 0);
    cr_assert(in->oneoff);
    cr_assert_str_eq(in->type, "run");
    cr_assert_eq(in->idx, 1);
    cr_assert_str_eq(in->command, "./worker", "the type's command");
    cr_assert_eq(in->node, n);
    cr_assert(in->port >= 5000 && in->port <= 5009);
    cr_assert_eq(ctl_oneoff_start(m, app, &q, 1000, &in2, err, sizeof(err)), 0);
    cr_assert_eq(in2->idx, 2, "run.2 next to a live run.1");
    /* A stopping run.1 is still listed by ps: its name is not given again
     * until it is gone. */
    ctl_inst_stop(m, in);
    cr_assert(in->stopping);
    cr_assert_eq(ctl_oneoff_start(m, app, &q, 1000, &in2, err, sizeof(err)), 0);
    cr_assert_eq(in2->idx, 3, "run.1 stopping and run.2 live: the next is run.3");
    ctl_node_set_admin(m, n, CTL_NODE_CORDONED);
    q.node = "n1";
    cr_assert_eq(ctl_oneoff_start(m, app, &q, 1000, &in2, err, sizeof(err)), -EBUSY);
    cr_assert_str_eq(err, "node n1 is cordoned");
}

/* ---- the dispatcher ---- */

struct seen {
    int calls;
    Drover__Message__BodyCase body;
    Drover__ErrorCode code;
    uint64_t version; /* of an EndpointsRep */
};

static void
seen_done(void *arg, const Drover__Message *rep)
{
    struct seen *s = arg;

    s->calls++;
    s->body = rep->body_case;
    s->code = rep->body_case == DROVER__MESSAGE__BODY_ERROR ? rep->error->code : 0;
    if (rep->body_case == DROVER__MESSAGE__BODY_ENDPOINTS_REP)
        s->version = rep->endpoints_rep->version;
}

static Drover__Message *
request(Drover__Message__BodyCase body, void *sub)
{
    Drover__Message *req = calloc(1, sizeof(*req));
    size_t len;
    uint8_t *buf;

    drover__message__init(req);
    req->body_case = body;
    req->apps_req = sub; /* the oneof shares one pointer */
    len = drover__message__get_packed_size(req);
    buf = malloc(len + 1);
    drover__message__pack(req, buf);
    free(req);
    req = drover__message__unpack(NULL, len, buf);
    free(buf);
    cr_assert_not_null(req);
    return req;
}

/* A test's own controller over an in-memory store, its model loaded from
 * it in place of the suite's (teardown frees it as m). */
static void
own_controller(struct ctl *ctl)
{
    ctl_model_free(m);
    m = NULL;
    cr_assert_eq(ctl_store_open(":memory:", &ctl->store), 0);
    ctl->model = ctl_model_new();
    cr_assert_eq(ctl_store_load(ctl->store, ctl->model, 1), 0);
    m = ctl->model;
}

Test(core, dispatch_commits_once_and_refuses_cleanly, .timeout = 5)
{
    static struct ctl ctl;
    Drover__AppCreateReq ac = DROVER__APP_CREATE_REQ__INIT;
    Drover__SyncReq sy = DROVER__SYNC_REQ__INIT;
    struct seen s = {0};

    own_controller(&ctl);
    ac.app = "web-shop";
    ctl_call(&ctl, request(DROVER__MESSAGE__BODY_APP_CREATE_REQ, &ac), seen_done, &s);
    cr_assert_eq(s.calls, 1);
    cr_assert_eq(s.body, DROVER__MESSAGE__BODY_APP_REP);
    cr_assert_not_null(ctl_app_find(ctl.model, "web-shop"));
    cr_assert_not(ctl_app_find(ctl.model, "web-shop")->dirty_row, "committed before done");
    /* The same again: refused, one done, nothing changed. */
    ctl_call(&ctl, request(DROVER__MESSAGE__BODY_APP_CREATE_REQ, &ac), seen_done, &s);
    cr_assert_eq(s.calls, 2);
    cr_assert_eq(s.code, DROVER__ERROR_CODE__ERR_CONFLICT);
    /* An agent's request on the API endpoint: refused. */
    sy.node = "n1";
    sy.boot_id = "b";
    ctl_call(&ctl, request(DROVER__MESSAGE__BODY_SYNC_REQ, &sy), seen_done, &s);
    cr_assert_eq(s.calls, 3);
    cr_assert_eq(s.code, DROVER__ERROR_CODE__ERR_BAD_REQUEST);
    /* Stopping: ERR_UNAVAILABLE at once. */
    ctl.stopping = true;
    ctl_call(&ctl, request(DROVER__MESSAGE__BODY_APP_CREATE_REQ, &ac), seen_done, &s);
    cr_assert_eq(s.calls, 4);
    cr_assert_eq(s.code, DROVER__ERROR_CODE__ERR_UNAVAILABLE);
    cr_assert_eq(ctl_calls_pending(&ctl), 0);
    ctl_store_close(ctl.store);
}

/* A long poll is pending (no done yet) and ends once: by the line it
 * waits for, or, for a watch, with ERR_UNAVAILABLE when its owner goes. */
Test(core, pending_calls_end_exactly_once, .timeout = 5)
{
    static struct ctl ctl;
    Drover__AppCreateReq ac = DROVER__APP_CREATE_REQ__INIT;
    Drover__LogsReq lr = DROVER__LOGS_REQ__INIT;
    Drover__EndpointsReq er = DROVER__ENDPOINTS_REQ__INIT;
    struct seen s = {0}, tail = {0}, watch = {0}, now = {0};

    own_controller(&ctl);
    ctl.logs = ctl_logs_new(&ctl, 100);
    ctl.endpoints = ctl_endpoints_new(&ctl);
    ctl.model->event = ctl_logs_text;
    ctl.model->event_arg = ctl.logs;
    ac.app = "shop";
    ctl_call(&ctl, request(DROVER__MESSAGE__BODY_APP_CREATE_REQ, &ac), seen_done, &s);
    cr_assert_eq(s.body, DROVER__MESSAGE__BODY_APP_REP);

    lr.app = "shop";
    lr.wait_ms = 5000;
    ctl_call(&ctl, request(DROVER__MESSAGE__BODY_LOGS_REQ, &lr), seen_done, &tail);
    cr_assert_eq(tail.calls, 0, "waits for a line");
    cr_assert_eq(ctl_calls_pending(&ctl), 1);
    ctl_logs_event(ctl.logs, "shop", "hello");
    cr_assert_eq(tail.calls, 1);
    cr_assert_eq(tail.body, DROVER__MESSAGE__BODY_LOGS_REP);

    er.app = "shop";
    ctl_call(&ctl, request(DROVER__MESSAGE__BODY_ENDPOINTS_REQ, &er), seen_done, &now);
    cr_assert_eq(now.body, DROVER__MESSAGE__BODY_ENDPOINTS_REP);
    er.wait_ms = 5000;
    er.version = now.version; /* nothing changed since: held */
    ctl_call(&ctl, request(DROVER__MESSAGE__BODY_ENDPOINTS_REQ, &er), seen_done, &watch);
    cr_assert_eq(watch.calls, 0);
    cr_assert_eq(ctl_calls_pending(&ctl), 1);
    ctl_endpoints_free(ctl.endpoints);
    ctl.endpoints = NULL;
    cr_assert_eq(watch.calls, 1);
    cr_assert_eq(watch.code, DROVER__ERROR_CODE__ERR_UNAVAILABLE);
    cr_assert_eq(ctl_calls_pending(&ctl), 0);
    ctl.model->event = NULL;
    ctl_logs_free(ctl.logs);
    ctl_store_close(ctl.store);
}

static int
stored_apps(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    int n = -1;

    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM apps", -1, &q, NULL), SQLITE_OK);
    if (sqlite3_step(q) == SQLITE_ROW)
        n = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return n;
}

struct later {
    struct ctl *ctl;
    Drover__AppCreateReq ac;
    struct seen s;
};

static void
call_later(uv_timer_t *t)
{
    struct later *l = t->data;

    ctl_call(l->ctl, request(DROVER__MESSAGE__BODY_APP_CREATE_REQ, &l->ac), seen_done, &l->s);
    uv_close((uv_handle_t *)t, NULL);
}

/* With a running loop, SQLite's commits are once per loop turn: calls
 * handled in one turn wait (nothing stored, nothing answered), then one
 * transaction stores every one of them and each is answered once; a call
 * that ends in a timer, with no socket to wake the loop, is answered in
 * the same turn (the idle handle keeps poll from sleeping). */
Test(core, sqlite_commits_once_per_loop_turn, .timeout = 10)
{
    static struct ctl ctl;
    static uv_loop_t loop;
    static uv_timer_t timer;
    static struct later l;
    char dir[] = "/tmp/drover-core-XXXXXX", path[64];
    Drover__AppCreateReq ac[3] = {DROVER__APP_CREATE_REQ__INIT, DROVER__APP_CREATE_REQ__INIT,
                                  DROVER__APP_CREATE_REQ__INIT};
    const char *names[3] = {"one", "two", "three"};
    struct seen s[3] = {0};
    int i;

    ctl_model_free(m);
    m = NULL;
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/state.db", dir);
    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(ctl_store_open(path, &ctl.store), 0);
    ctl.model = ctl_model_new();
    cr_assert_eq(ctl_store_load(ctl.store, ctl.model, 1), 0);
    m = ctl.model;
    ctl.loop = &loop;
    ctl.running = true;
    ctl_commits_init(&ctl);
    ctl_commits_start(&ctl);
    for (i = 0; i < 3; i++) {
        ac[i].app = (char *)names[i];
        ctl_call(&ctl, request(DROVER__MESSAGE__BODY_APP_CREATE_REQ, &ac[i]), seen_done, &s[i]);
        cr_assert_eq(s[i].calls, 0, "answered before its turn ended");
    }
    cr_assert_eq(ctl_calls_pending(&ctl), 3);
    cr_assert_eq(stored_apps(path), 0, "written before the turn ended");
    ctl_commits_turn(&ctl); /* the check after the sockets were read */
    for (i = 0; i < 3; i++) {
        cr_assert_eq(s[i].calls, 1);
        cr_assert_eq(s[i].body, DROVER__MESSAGE__BODY_APP_REP);
    }
    cr_assert_eq(stored_apps(path), 3);
    cr_assert_eq(ctl_calls_pending(&ctl), 0);
    /* A refusal waits for nothing. */
    ctl_call(&ctl, request(DROVER__MESSAGE__BODY_APP_CREATE_REQ, &ac[0]), seen_done, &s[0]);
    cr_assert_eq(s[0].calls, 2);
    cr_assert_eq(s[0].code, DROVER__ERROR_CODE__ERR_CONFLICT);
    /* From a timer: the loop runs until it is answered, and then has nothing
     * left to run (uv_run returns: the idle handle stopped). */
    l.ctl = &ctl;
    drover__app_create_req__init(&l.ac);
    l.ac.app = "four";
    uv_timer_init(&loop, &timer);
    timer.data = &l;
    uv_timer_start(&timer, call_later, 10, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(l.s.calls, 1);
    cr_assert_eq(l.s.body, DROVER__MESSAGE__BODY_APP_REP);
    cr_assert_eq(stored_apps(path), 4);
    ctl_commits_close(&ctl);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&loop), 0);
    ctl_store_close(ctl.store); /* the model goes in teardown */
    snprintf(path, sizeof(path), "rm -rf %s", dir);
    cr_assert_eq(system(path), 0);
}

static int
count(const char *hay, const char *needle)
{
    int n = 0;

    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* Routine per-instance lines (model.c): 64 a commit at info, the rest
 * counted in one instances_summary line at the commit's end; a crash is
 * always said by itself; the next commit has its 64 again. */
Test(core, routine_instance_lines_past_64_a_commit_are_summed_up, .timeout = 5)
{
    static char out[65536];
    struct ctl_instance *in = NULL;
    int p[2], saved;
    ssize_t k;
    size_t len = 0;

    cr_assert_eq(pipe(p), 0);
    saved = dup(STDOUT_FILENO);
    cr_assert_geq(saved, 0);
    cr_assert_eq(dup2(p[1], STDOUT_FILENO), STDOUT_FILENO);
    for (uint32_t i = 1; i <= 100; i++) {
        cr_assert_eq(ctl_inst_new(m, app, "web", i, 0, 0, &in), 0);
        ctl_inst_set_state(m, in, DROVER__INSTANCE_STATE__ST_UP, 1000);
    }
    ctl_inst_set_state(m, in, DROVER__INSTANCE_STATE__ST_CRASHED, 1000);
    ctl_inst_lines_end(m);
    ctl_inst_set_state(m, in, DROVER__INSTANCE_STATE__ST_UP, 1000);
    ctl_inst_lines_end(m); /* within the budget: no summary */
    dup2(saved, STDOUT_FILENO);
    close(saved);
    close(p[1]);
    while (len < sizeof(out) - 1 && (k = read(p[0], out + len, sizeof(out) - 1 - len)) > 0)
        len += (size_t)k;
    close(p[0]);
    out[len] = '\0';
    cr_assert_eq(count(out, "event=instance_state "), 64 + 1 + 1, "%s", out);
    cr_assert_eq(count(out, "to=crashed"), 1);
    cr_assert_eq(count(out, "event=instances_summary more_than=64 up=36\n"), 1, "%s", out);
    cr_assert_eq(count(out, "event=instances_summary"), 1);
}

/* The reply arena (arena.c): blocks grow from a page, and every allocation,
 * small or larger than the biggest block, is zeroed, 16-byte aligned and
 * its own, also from a block a freed arena left for reuse; a formatted
 * string fits exactly. */
Test(core, arena_allocations_are_zeroed_aligned_and_distinct, .timeout = 5)
{
    struct ctl_arena *a = ctl_arena_new();
    unsigned char *prev = NULL, *p;
    const size_t sizes[] = {1, 24, 200, 3000, 5000, 70000, 16, 300000, 8};
    char *s;

    cr_assert_not_null(a);
    for (int round = 0; round < 20; round++) {
        for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
            p = ctl_arena_alloc(a, sizes[i]);
            cr_assert_not_null(p);
            cr_assert_eq((uintptr_t)p % 16, 0, "allocation of %zu not aligned", sizes[i]);
            for (size_t k = 0; k < sizes[i]; k++)
                cr_assert_eq(p[k], 0, "byte %zu of %zu not zeroed", k, sizes[i]);
            memset(p, 0xa5, sizes[i]); /* the next must not see it */
            cr_assert_neq(p, prev);
            prev = p;
        }
    }
    s = ctl_arena_printf(a, "%s.%u", "web", 12345u);
    cr_assert_str_eq(s, "web.12345");
    /* An instance's name, as printf would write it. */
    const uint32_t idx[] = {0, 1, 9, 10, 99, 100, 12345, 4294967295u};
    for (size_t i = 0; i < ARRAY_SIZE(idx); i++) {
        char want[64];

        snprintf(want, sizeof(want), "%s.%u", "worker-long_name", idx[i]);
        cr_assert_str_eq(ctl_arena_inst_name(a, "worker-long_name", idx[i]), want);
    }
    cr_assert_str_eq(ctl_arena_inst_name(a, "", 7), ".7");
    ctl_arena_free(a);

    /* Arenas made after others were freed (their first blocks are kept for
     * reuse): still zeroed, and two live ones never share memory. */
    for (int round = 0; round < 3; round++) {
        struct ctl_arena *x = ctl_arena_new(), *y = ctl_arena_new();
        unsigned char *px = ctl_arena_alloc(x, 3000), *py = ctl_arena_alloc(y, 3000);

        cr_assert(px != NULL && py != NULL);
        for (size_t k = 0; k < 3000; k++)
            cr_assert(px[k] == 0 && py[k] == 0, "byte %zu not zeroed", k);
        cr_assert(px + 3000 <= py || py + 3000 <= px, "two live arenas overlap");
        memset(px, 0xa5, 3000);
        memset(py, 0x5a, 3000);
        ctl_arena_free(x);
        ctl_arena_free(y);
    }
}

/* A request unpacked into its call's arena (ctl_arena_allocator): whole,
 * and nothing to free field by field (ASan would see a double free or a
 * leak in either direction). */
Test(core, a_request_unpacks_into_an_arena, .timeout = 5)
{
    Drover__Message msg = DROVER__MESSAGE__INIT, *got;
    Drover__SyncReq sr = DROVER__SYNC_REQ__INIT;
    Drover__InstanceReport st[50], *pst[50];
    struct ctl_arena *a = ctl_arena_new();
    ProtobufCAllocator al = ctl_arena_allocator(a);
    char names[50][16];
    uint8_t *buf;
    size_t len;

    for (int i = 0; i < 50; i++) {
        drover__instance_report__init(&st[i]);
        st[i].id = 1000 + (uint64_t)i;
        snprintf(names[i], sizeof(names[i]), "web.%d", i + 1);
        st[i].name = names[i];
        pst[i] = &st[i];
    }
    sr.node = "node-1";
    sr.full = true;
    sr.instances = pst;
    sr.n_instances = 50;
    msg.body_case = DROVER__MESSAGE__BODY_SYNC_REQ;
    msg.sync_req = &sr;
    len = drover__message__get_packed_size(&msg);
    buf = malloc(len);
    drover__message__pack(&msg, buf);
    got = drover__message__unpack(&al, len, buf);
    free(buf);
    cr_assert_not_null(got);
    cr_assert_str_eq(got->sync_req->node, "node-1");
    cr_assert_eq(got->sync_req->n_instances, 50);
    cr_assert_eq(got->sync_req->instances[49]->id, 1049);
    cr_assert_str_eq(got->sync_req->instances[49]->name, "web.50");
    ctl_arena_free(a);
}

static void
said(void *arg, const char *app_name, const char *text)
{
    snprintf(arg, 128, "%s: %s", app_name, text);
}

/* An instance's label in the app's log: its name and node, and its release
 * only when another release's instance of the same name is on that node
 * (a rollout's replacement beside its original). The node's "two releases
 * here" answer is cached: it must follow every change of the node's list. */
Test(core, a_label_names_the_release_only_beside_a_twin, .timeout = 5)
{
    struct ctl_model *mm = ctl_model_new();
    struct ctl_app *a = NULL, *b = NULL;
    struct ctl_node *n = NULL;
    struct ctl_instance *w1 = NULL, *w2 = NULL, *w1v2 = NULL, *o = NULL;
    char l[128];

    cr_assert_eq(ctl_app_add(mm, "shop", 1, &a), 0);
    cr_assert_eq(ctl_app_add(mm, "blog", 1, &b), 0);
    cr_assert_eq(ctl_node_add(mm, "n1", &n), 0);
    cr_assert_eq(ctl_node_set_range(n, 20000, 20009), 0);
    cr_assert_eq(ctl_inst_new(mm, a, "web", 1, 1, 0, &w1), 0);
    cr_assert_eq(ctl_inst_place(mm, w1, n, 0), 0);
    cr_assert_eq(ctl_inst_new(mm, a, "web", 2, 1, 0, &w2), 0);
    cr_assert_eq(ctl_inst_place(mm, w2, n, 0), 0);
    /* Another app's other release on the node is no twin of shop's. */
    cr_assert_eq(ctl_inst_new(mm, b, "web", 1, 7, 0, &o), 0);
    cr_assert_eq(ctl_inst_place(mm, o, n, 0), 0);
    ctl_inst_label(w1, l, sizeof(l));
    cr_assert_str_eq(l, "web.1@n1");
    ctl_inst_label(o, l, sizeof(l));
    cr_assert_str_eq(l, "web.1@n1");
    /* The replacement of web.1 in release 2 comes beside it. */
    cr_assert_eq(ctl_inst_new(mm, a, "web", 1, 2, 0, &w1v2), 0);
    cr_assert_eq(ctl_inst_place(mm, w1v2, n, 0), 0);
    ctl_inst_label(w1, l, sizeof(l));
    cr_assert_str_eq(l, "web.1@n1 (v1)");
    ctl_inst_label(w1v2, l, sizeof(l));
    cr_assert_str_eq(l, "web.1@n1 (v2)");
    ctl_inst_label(w2, l, sizeof(l));
    cr_assert_str_eq(l, "web.2@n1");
    /* The original goes: the name is alone again. */
    ctl_inst_delete(mm, w1);
    ctl_inst_label(w1v2, l, sizeof(l));
    cr_assert_str_eq(l, "web.1@n1");
    /* Cut short as snprintf would; unplaced: no node. */
    {
        char small[7];
        struct ctl_instance *u = NULL;

        ctl_inst_label(w2, small, sizeof(small));
        cr_assert_str_eq(small, "web.2@");
        cr_assert_eq(ctl_inst_new(mm, a, "worker", 4294967295u, 2, 0, &u), 0);
        ctl_inst_label(u, l, sizeof(l));
        cr_assert_str_eq(l, "worker.4294967295");
    }
    /* The app's log line of a routine state change. */
    mm->event = said;
    mm->event_arg = l;
    cr_assert_eq(ctl_inst_set_state(mm, w2, DROVER__INSTANCE_STATE__ST_STARTING, 1), 0);
    cr_assert_str_eq(l, "shop: web.2@n1 pending -> starting");
    ctl_model_free(mm);
}

/* A reason longer than the controller keeps is kept cut short, once: the
 * same report again changes nothing (it was written again at every sync). */
Test(core, a_long_reason_is_cut_once_and_the_same_report_changes_nothing, .timeout = 5)
{
    struct ctl_model *mm = ctl_model_new();
    struct ctl_app *a = NULL;
    struct ctl_instance *in = NULL;
    Drover__InstanceReport r = DROVER__INSTANCE_REPORT__INIT;
    char longer[CTL_REASON_MAX + 40];

    memset(longer, 'x', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    cr_assert_eq(ctl_app_add(mm, "shop", 1, &a), 0);
    cr_assert_eq(ctl_inst_new(mm, a, "web", 1, 1, 0, &in), 0);
    ctl_model_clean(mm);
    r.pid = 42;
    r.reason = longer;
    ctl_inst_set_report(mm, in, &r);
    cr_assert(in->dirty);
    cr_assert_eq(strlen(in->reason), CTL_REASON_MAX - 1);
    cr_assert_eq(strncmp(in->reason, longer, CTL_REASON_MAX - 1), 0);
    ctl_model_clean(mm);
    ctl_inst_set_report(mm, in, &r);
    cr_assert_not(in->dirty);
    r.reason = "exit code 7";
    ctl_inst_set_report(mm, in, &r);
    cr_assert(in->dirty);
    cr_assert_str_eq(in->reason, "exit code 7");
    ctl_model_free(mm);
}

/* A sync's assignments: an agent that reads env sets (SyncReq.env_sets) gets
 * each release's config vars once, every assignment naming them; one that
 * does not gets them inline in every assignment, as before. */
static void
sync_rep_done(void *arg, const Drover__Message *rep)
{
    uint8_t **packed = arg;
    size_t len = drover__message__get_packed_size(rep);

    cr_assert_eq(rep->body_case, DROVER__MESSAGE__BODY_SYNC_REP);
    *packed = malloc(len + sizeof(size_t));
    memcpy(*packed, &len, sizeof(size_t));
    drover__message__pack(rep, *packed + sizeof(size_t));
}

static Drover__SyncRep *
sync_of(struct ctl *ctl, const char *boot, bool env_sets, Drover__Message **msg)
{
    Drover__SyncReq sy = DROVER__SYNC_REQ__INIT;
    uint8_t *packed = NULL;
    size_t len;

    sy.node = "n1";
    sy.boot_id = (char *)boot;
    sy.env_sets = env_sets;
    ctl_call_ep(ctl, CTL_EP_AGENT, request(DROVER__MESSAGE__BODY_SYNC_REQ, &sy), NULL,
                sync_rep_done, &packed);
    cr_assert_not_null(packed, "answered at once");
    memcpy(&len, packed, sizeof(size_t));
    *msg = drover__message__unpack(NULL, len, packed + sizeof(size_t));
    free(packed);
    cr_assert_not_null(*msg);
    return (*msg)->sync_rep;
}

Test(core, a_release_s_config_vars_go_once_a_reply_to_an_agent_that_reads_env_sets, .timeout = 5)
{
    static struct ctl ctl;
    struct ctl_scale v[] = {{"web", 3}, {"worker", 2}};
    struct ctl_app *plain = NULL;
    struct ctl_release_spec spec = {sha_b, 100, "plain", types, 2, NULL, 0};
    struct ctl_release *rel = NULL;
    struct ctl_node *n;
    Drover__Message *msg;
    Drover__SyncRep *sr;
    char what[64];
    size_t shop = 0;

    own_controller(&ctl);
    cr_assert_eq(ctl_app_add(m, "shop", 1, &app), 0);
    cr_assert_eq(ctl_config_set(app, "DATABASE_URL", "postgres://db/shop"), 0);
    cr_assert_eq(ctl_config_set(app, "SECRET", "s3cr3t"), 0);
    make(sha_a, "one");
    cr_assert_eq(ctl_app_add(m, "blog", 1, &plain), 0); /* no config vars */
    cr_assert_eq(ctl_release_make(m, plain, &spec, 1000, &rel), 0);
    n = node("n1", "boot-a", 1);
    cr_assert_eq(ctl_app_scale(m, app, v, 2, what, sizeof(what)), 0);
    cr_assert_eq(ctl_app_scale(m, plain, v, 1, what, sizeof(what)), 0);
    cr_assert_eq(ctl_settle(m, 1000), 0);
    cr_assert_eq(n->nlive, 8);

    sr = sync_of(&ctl, "boot-a", true, &msg);
    cr_assert_eq(sr->n_assignments, 8);
    cr_assert_eq(sr->n_env_sets, 1, "one release with config vars: one set");
    cr_assert_eq(sr->env_sets[0]->n_env, 2);
    cr_assert_str_eq(sr->env_sets[0]->env[0]->key, "DATABASE_URL");
    cr_assert_str_eq(sr->env_sets[0]->env[0]->value, "postgres://db/shop");
    for (size_t i = 0; i < sr->n_assignments; i++) {
        const Drover__Assignment *a = sr->assignments[i];

        cr_assert_eq(a->n_env, 0, "nothing inline");
        if (strcmp(a->app, "shop") == 0) {
            cr_assert_eq(a->env_set, 1);
            shop++;
        } else {
            cr_assert_eq(a->env_set, 0, "no config vars: no set");
        }
    }
    cr_assert_eq(shop, 5);
    drover__message__free_unpacked(msg, NULL);

    sr = sync_of(&ctl, "boot-a", false, &msg);
    cr_assert_eq(sr->n_assignments, 8);
    cr_assert_eq(sr->n_env_sets, 0, "an older agent: no sets");
    for (size_t i = 0; i < sr->n_assignments; i++) {
        const Drover__Assignment *a = sr->assignments[i];

        cr_assert_eq(a->env_set, 0);
        cr_assert_eq(a->n_env, strcmp(a->app, "shop") == 0 ? 2 : 0, "inline, as before");
    }
    drover__message__free_unpacked(msg, NULL);
    ctl_store_close(ctl.store);
}
