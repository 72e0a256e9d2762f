/* SPDX-License-Identifier: MIT */
/*
 * dispatch.c: the controller's one request path. A table maps each request
 * type, of either endpoint, to its handler (redis's command table and
 * call() are the picture); the dispatcher runs the handler over the model,
 * commits what it changed in one store transaction, and only then gives
 * the reply (or an Error) to the front end's done callback.
 *
 *   front end (front.c: API and agent REP sockets; HTTP) -- opened Message
 *      -> ctl_call / ctl_call_ep: look up the route, check the endpoint
 *      -> handler(call): validate, call a core function, build the reply
 *           0: reply ready | -1: ctl_fail said why | CTL_PENDING: ends later
 *      -> finish(call, rep): commit (commit.c), then answer: view, done(arg, rep),
 *         free; with PostgreSQL the answer may come later, when the change
 *         set that holds what the call changed or saw is stored
 *
 * A pending handler (slug upload and read, release creation in the thread
 * pool; logs tail, endpoints watch, run io and pipe long polls) keeps its
 * call and ends it with ctl_call_end (call.c), which runs the same finish:
 * nothing else commits or replies for a request. done runs exactly once per
 * call: a call that arrives while the controller stops is answered
 * ERR_UNAVAILABLE at once, and the owners of held calls answer them when
 * they stop (logs.c, endpoints.c, runs.c); work in the thread pool always
 * completes (main.c waits for it).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "http.h"
#include "log.h"

struct route {
    Drover__Message__BodyCase type;
    unsigned eps; /* CTL_EP_* it is taken on */
    const char *name;
    ctl_handler *fn;
};

#define API CTL_EP_API
#define AGENT CTL_EP_AGENT

static const struct route routes[] = {
    /* the CLI (and HTTP) */
    {DROVER__MESSAGE__BODY_APPS_REQ, API, "apps", ctl_h_apps},
    {DROVER__MESSAGE__BODY_APP_CREATE_REQ, API, "app_create", ctl_h_app_create},
    {DROVER__MESSAGE__BODY_APP_DESTROY_REQ, API, "app_destroy", ctl_h_app_destroy},
    {DROVER__MESSAGE__BODY_CONFIG_REQ, API, "config", ctl_h_config},
    {DROVER__MESSAGE__BODY_CONFIG_SET_REQ, API, "config_set", ctl_h_config_set},
    {DROVER__MESSAGE__BODY_CONFIG_UNSET_REQ, API, "config_unset", ctl_h_config_unset},
    {DROVER__MESSAGE__BODY_SLUG_PUT_REQ, API, "slug_put", ctl_h_slug_put},
    {DROVER__MESSAGE__BODY_RELEASE_CREATE_REQ, API, "release_create", ctl_h_release_create},
    {DROVER__MESSAGE__BODY_RELEASES_REQ, API, "releases", ctl_h_releases},
    {DROVER__MESSAGE__BODY_ROLLBACK_REQ, API, "rollback", ctl_h_rollback},
    {DROVER__MESSAGE__BODY_DEPLOY_REQ, API, "deploy", ctl_h_deploy},
    {DROVER__MESSAGE__BODY_SCALE_REQ, API, "scale", ctl_h_scale},
    {DROVER__MESSAGE__BODY_SETTINGS_REQ, API, "settings", ctl_h_settings},
    {DROVER__MESSAGE__BODY_SETTINGS_SET_REQ, API, "settings_set", ctl_h_settings_set},
    {DROVER__MESSAGE__BODY_PS_REQ, API, "ps", ctl_h_ps},
    {DROVER__MESSAGE__BODY_RESTART_REQ, API, "restart", ctl_h_restart},
    {DROVER__MESSAGE__BODY_PS_STOP_REQ, API, "ps_stop", ctl_h_ps_stop},
    {DROVER__MESSAGE__BODY_RUN_REQ, API, "run", ctl_h_run},
    {DROVER__MESSAGE__BODY_RUN_IO_REQ, API, "run_io", ctl_h_run_io},
    {DROVER__MESSAGE__BODY_LOGS_REQ, API, "logs", ctl_h_logs},
    {DROVER__MESSAGE__BODY_DRAINS_REQ, API, "drains", ctl_h_drains},
    {DROVER__MESSAGE__BODY_DRAIN_ADD_REQ, API, "drain_add", ctl_h_drains},
    {DROVER__MESSAGE__BODY_DRAIN_REMOVE_REQ, API, "drain_remove", ctl_h_drains},
    {DROVER__MESSAGE__BODY_ENDPOINTS_REQ, API, "endpoints", ctl_h_endpoints},
    {DROVER__MESSAGE__BODY_NODES_REQ, API, "nodes", ctl_h_nodes},
    {DROVER__MESSAGE__BODY_NODE_STATE_REQ, API, "node_state", ctl_h_node_state},
    {DROVER__MESSAGE__BODY_NODE_REMOVE_REQ, API, "node_remove", ctl_h_node_remove},
    {DROVER__MESSAGE__BODY_STATUS_REQ, API, "status", ctl_h_status},
    /* the agents */
    {DROVER__MESSAGE__BODY_REGISTER_REQ, AGENT, "register", ctl_h_register},
    {DROVER__MESSAGE__BODY_SYNC_REQ, AGENT, "sync", ctl_h_sync},
    {DROVER__MESSAGE__BODY_SLUG_REQ, AGENT, "slug_req", ctl_h_slug_read},
    {DROVER__MESSAGE__BODY_RUN_PIPE_REQ, AGENT, "run_pipe", ctl_h_run_pipe},
};

static const struct route *
route_find(Drover__Message__BodyCase type)
{
    for (size_t i = 0; i < ARRAY_SIZE(routes); i++)
        if (routes[i].type == type)
            return &routes[i];
    return NULL;
}

static const char *
ep_name(enum ctl_ep ep)
{
    return ep == CTL_EP_AGENT ? "agent" : "api";
}

/* A refusal, as each endpoint has always logged it. */
static void
log_refusal(const struct ctl_call *c)
{
    if (c->logged || (c->code == DROVER__ERROR_CODE__ERR_UNAVAILABLE && c->ctl->stopping))
        return;
    if (c->ep == CTL_EP_AGENT)
        log_warn("bad_message", "sock=agent msg=%s reason=%s", c->what, log_q(c->err));
    else
        log_warn("bad_request", "sock=api msg=%s reason=%s", c->what, log_q(c->err));
}

/* Answer the call (its error, or rep after the view) and free it. */
static void
answer(struct ctl_call *c, const Drover__Message *rep)
{
    struct ctl *ctl = c->ctl;
    Drover__Message em = DROVER__MESSAGE__INIT;
    Drover__Error e = DROVER__ERROR__INIT;

    if (c->code == DROVER__ERROR_CODE__ERR_NONE && c->view != NULL && c->view(c) < 0 &&
        c->code == DROVER__ERROR_CODE__ERR_NONE)
        ctl_oom(c);
    if (c->code != DROVER__ERROR_CODE__ERR_NONE) {
        e.code = c->code;
        e.message = c->err;
        e.leader = c->leader;
        e.retry_after_ms = c->retry_after_ms;
        em.body_case = DROVER__MESSAGE__BODY_ERROR;
        em.error = &e;
        rep = &em;
    } else if (c->view != NULL) {
        rep = &c->rep;
    }
    LIST_REMOVE(c, link);
    ctl->ncalls--;
    ctl_metrics_call(c->what, c->ep == CTL_EP_API, c->code, uv_hrtime() - c->t0);
    c->done(c->arg, rep);
    if (c->held != NULL)
        drover__message__free_unpacked(c->held, NULL);
    if (!c->req_in_ar)
        wire_msg_free(c->req);
    ctl_arena_free(c->ar);
    free(c);
}

/* The commit its reply waited for is over (commit.c). */
static void
committed(struct ctl_call *c, int rc)
{
    if (rc < 0)
        ctl_fail(c, DROVER__ERROR_CODE__ERR_INTERNAL, "%s", ctl_store_why(c->ctl->store));
    answer(c, c->held != NULL ? c->held : &c->rep);
}

/* A copy of a reply, through the wire format, owned by the call. */
static int
hold(struct ctl_call *c, const Drover__Message *rep)
{
    size_t len = drover__message__get_packed_size(rep);
    uint8_t *buf = malloc(len ? len : 1);

    if (buf == NULL)
        return -ENOMEM;
    drover__message__pack(rep, buf);
    c->held = drover__message__unpack(NULL, len, buf);
    free(buf);
    return c->held != NULL ? 0 : -ENOMEM;
}

/*
 * The one end of every call: its changes, and what it saw, are stored
 * first (commit.c), then it is answered. A refused request changes
 * nothing, so it waits for nothing (what a handler marked before it
 * refused goes with the next commit, as before).
 */
static void
finish(struct ctl_call *c, const Drover__Message *rep)
{
    struct ctl *ctl = c->ctl;
    int rc;

    if (rep == NULL && c->code == DROVER__ERROR_CODE__ERR_NONE)
        ctl_fail(c, DROVER__ERROR_CODE__ERR_INTERNAL, "no reply");
    if (c->code != DROVER__ERROR_CODE__ERR_NONE) {
        log_refusal(c);
        answer(c, NULL);
        return;
    }
    c->committed = committed;
    rc = ctl_commit_wait(ctl, c);
    if (rc == 1) {
        /* The reply points into the model (and a long poll's into its
         * caller's stack), which changes before the commit ends: a copy.
         * A view builds its reply when the call is answered. */
        if (c->view == NULL && hold(c, rep) < 0)
            ctl_oom(c); /* still answered when the commit ends: refused */
        return;
    }
    if (rc < 0)
        ctl_fail(c, DROVER__ERROR_CODE__ERR_INTERNAL, "%s", ctl_store_why(ctl->store));
    answer(c, rep);
}

/* A standby (leader.c) serves nothing: it says where the leader is. */
static void
not_leader(struct ctl_call *c)
{
    c->retry_after_ms =
        ctl_leader_where(c->ctl->leader, c->ep == CTL_EP_API, c->leader, sizeof(c->leader));
    c->logged = true; /* not a bad request */
    if (c->leader[0] != '\0')
        ctl_fail(c, DROVER__ERROR_CODE__ERR_NOT_LEADER, "not the leader; the leader is at %s",
                 c->leader);
    else
        ctl_fail(c, DROVER__ERROR_CODE__ERR_NOT_LEADER,
                 "not the leader; no leader is known yet, try again");
}

/* Run the handler; a call it keeps ends later through c->finish. */
static void
run(struct ctl_call *c, const struct route *r)
{
    int rc;

    if (c->ctl->stopping) {
        ctl_fail(c, DROVER__ERROR_CODE__ERR_UNAVAILABLE, "the controller is stopping");
    } else if (!ctl_leader_acting(c->ctl->leader)) {
        not_leader(c);
    } else if (r == NULL || (r->eps & c->ep) == 0) {
        c->what = r != NULL ? r->name : "unknown";
        c->logged = true;
        log_warn("bad_message", "sock=%s reason=unexpected_type type=%d", ep_name(c->ep),
                 (int)c->req->body_case);
        ctl_fail(c, DROVER__ERROR_CODE__ERR_BAD_REQUEST,
                 "message type %d is not handled on the %s endpoint", (int)c->req->body_case,
                 c->ep == CTL_EP_AGENT ? "agent" : "API");
    } else if (c->ar == NULL && (c->ar = ctl_arena_new()) == NULL) {
        ctl_oom(c);
    } else {
        c->what = r->name;
        rc = r->fn(c);
        if (rc == CTL_PENDING)
            return;
        if (rc < 0 && c->code == DROVER__ERROR_CODE__ERR_NONE)
            ctl_fail(c, DROVER__ERROR_CODE__ERR_INTERNAL, "%s failed", r->name);
    }
    finish(c, c->code == DROVER__ERROR_CODE__ERR_NONE ? &c->rep : NULL);
}

void
ctl_call_ep(struct ctl *ctl, enum ctl_ep ep, Drover__Message *req, struct ctl_arena *ar,
            ctl_call_done *done, void *arg)
{
    struct ctl_call *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        Drover__Message em = DROVER__MESSAGE__INIT;
        Drover__Error e = DROVER__ERROR__INIT;

        e.code = DROVER__ERROR_CODE__ERR_INTERNAL;
        e.message = "out of memory";
        em.body_case = DROVER__MESSAGE__BODY_ERROR;
        em.error = &e;
        done(arg, &em);
        if (ar == NULL)
            wire_msg_free(req);
        ctl_arena_free(ar);
        return;
    }
    c->ctl = ctl;
    c->ep = ep;
    c->ar = ar;
    c->req_in_ar = ar != NULL;
    c->t0 = uv_hrtime();
    c->what = "?";
    c->req = req;
    drover__message__init(&c->rep);
    c->finish = finish;
    c->done = done;
    c->arg = arg;
    LIST_INSERT_HEAD(&ctl->calls, c, link);
    ctl->ncalls++;
    run(c, route_find(req->body_case));
}

void
ctl_call(struct ctl *ctl, Drover__Message *req, ctl_call_done *done, void *arg)
{
    ctl_call_ep(ctl, CTL_EP_API, req, NULL, done, arg);
}

unsigned
ctl_calls_pending(const struct ctl *ctl)
{
    return ctl->ncalls;
}
