/* SPDX-License-Identifier: MIT */
/*
 * lifecycle_api.c: the API side of lifecycle.c's verbs (restart, ps:stop,
 * apps:destroy, nodes:remove): one handler that decodes a request, applies
 * the rule, commits once and replies; and the end of apps:destroy, once the
 * app has nothing left: the model, the store, the slug store and, through
 * the agents' next assignment sets, their disks.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "log.h"

#define FORGET_KEEP_MS (10 * 60 * 1000) /* agents told about a destroy for this long */

/* ---- the end of apps:destroy ---- */

static bool
slug_used_elsewhere(const struct ctl_model *m, const struct ctl_app *self, const char *sha)
{
    size_t pos = 0, i;
    void *cur = NULL;
    const struct ctl_app *a;

    while ((a = ctl_map_next(m->apps, &pos, &cur)) != NULL) {
        if (a == self)
            continue;
        for (i = 0; i < a->nreleases; i++)
            if (strcmp(a->releases[i]->slug_sha256, sha) == 0)
                return true;
    }
    return false;
}

static void
forget_push(char ***v, size_t *n, const char *s)
{
    char **nv = realloc(*v, (*n + 1) * sizeof(**v));

    if (nv == NULL)
        return; /* the agents keep a stale file: the disk collector's job */
    *v = nv;
    if ((nv[*n] = strdup(s)) != NULL)
        (*n)++;
}

static void
forget_clear(struct ctl_model *m)
{
    for (size_t i = 0; i < m->nforget_apps; i++)
        free(m->forget_apps[i]);
    for (size_t i = 0; i < m->nforget_slugs; i++)
        free(m->forget_slugs[i]);
    free(m->forget_apps);
    free(m->forget_slugs);
    m->forget_apps = m->forget_slugs = NULL;
    m->nforget_apps = m->nforget_slugs = 0;
}

/* The app has nothing left anywhere: forget it for good. */
static void
reap(struct ctl *ctl, struct ctl_app *a)
{
    struct ctl_model *m = ctl->model;
    uint32_t nrel = (uint32_t)a->nreleases, nslugs = 0;
    char name[APP_NAME_MAX + 2], path[4200];
    size_t i, j;

    snprintf(name, sizeof(name), "%s", a->name);
    if (m->nforget_apps > 0 && mono_ms() > m->forget_until)
        forget_clear(m);
    for (i = 0; i < a->nreleases; i++) {
        const char *sha = a->releases[i]->slug_sha256;

        for (j = 0; j < i && strcmp(a->releases[j]->slug_sha256, sha) != 0; j++)
            ;
        if (j < i || slug_used_elsewhere(m, a, sha))
            continue;
        forget_push(&m->forget_slugs, &m->nforget_slugs, sha);
        /* One unlink per slug: quick enough for the loop thread. */
        if (ctl_slug_path(ctl->slugs, sha, path, sizeof(path)) == 0 && unlink(path) == 0)
            nslugs++;
    }
    forget_push(&m->forget_apps, &m->nforget_apps, name);
    m->forget_until = mono_ms() + FORGET_KEEP_MS;
    if (ctl_app_remove(m, a) < 0) {
        log_error("app_destroy_failed", "app=%s err=ENOMEM", name);
        return;
    }
    m->ndestroying--;
    ctl_logs_forget(ctl->logs, name);
    ctl_drains_forget_app(ctl->drains, name);
    /* A fresh assignment set for every node carries the news. */
    for (i = 0; i < m->nnodes; i++)
        ctl_node_changed(m, m->node_v[i]);
    log_info("app_destroyed", "app=%s releases=%u slugs_deleted=%u", name, nrel, nslugs);
}

void
ctl_destroy_reap(struct ctl *ctl)
{
    struct ctl_model *m = ctl->model;
    struct ctl_app *a, *done[16];
    size_t pos = 0, n = 0;
    void *cur = NULL;

    if (m->ndestroying == 0)
        return;
    while ((a = ctl_map_next(m->apps, &pos, &cur)) != NULL && n < ARRAY_SIZE(done)) {
        if (a->destroying && a->ninstances == 0)
            done[n++] = a;
    }
    for (size_t i = 0; i < n; i++)
        reap(ctl, done[i]);
}

void
ctl_destroy_view(struct ctl_model *m, Drover__SyncRep *sr)
{
    if (m->nforget_apps == 0)
        return;
    if (mono_ms() > m->forget_until) {
        forget_clear(m);
        return;
    }
    sr->destroyed_apps = m->forget_apps;
    sr->n_destroyed_apps = m->nforget_apps;
    sr->forget_slugs = m->forget_slugs;
    sr->n_forget_slugs = m->nforget_slugs;
}

void
ctl_destroy_unforget(struct ctl_model *m, const char *app)
{
    for (size_t i = 0; i < m->nforget_apps; i++) {
        if (strcmp(m->forget_apps[i], app) != 0)
            continue;
        free(m->forget_apps[i]);
        m->forget_apps[i] = m->forget_apps[--m->nforget_apps];
        return;
    }
}

/* ---- the API ---- */

static Drover__ErrorCode
code_of(int rc)
{
    switch (rc) {
    case -EINVAL:
        return DROVER__ERROR_CODE__ERR_BAD_REQUEST;
    case -ENOENT:
        return DROVER__ERROR_CODE__ERR_NOT_FOUND;
    case -EBUSY:
        return DROVER__ERROR_CODE__ERR_CONFLICT;
    default:
        return DROVER__ERROR_CODE__ERR_INTERNAL;
    }
}

static bool
arg_ok(const char *s, size_t max)
{
    return s != NULL && strnlen(s, max + 1) <= max;
}

static struct ctl_app *
find_app(struct ctl *ctl, const char *name, char *err, size_t errsz, int *rc)
{
    struct ctl_app *a;

    *rc = -EINVAL;
    if (!arg_ok(name, APP_NAME_MAX) || !name_app_valid(name)) {
        snprintf(err, errsz, "invalid app name (want [a-z][a-z0-9-], at most 30 characters)");
        return NULL;
    }
    *rc = -ENOENT;
    if ((a = ctl_app_find(ctl->model, name)) == NULL)
        snprintf(err, errsz, "no app %s", name);
    return a;
}

void
ctl_lifecycle_handle(struct ctl *ctl, struct nnuv_msg *req, Drover__Message *m)
{
    Drover__Message rep = DROVER__MESSAGE__INIT;
    Drover__RestartRep rr = DROVER__RESTART_REP__INIT;
    Drover__PsStopRep pr = DROVER__PS_STOP_REP__INIT;
    Drover__AppDestroyRep dr = DROVER__APP_DESTROY_REP__INIT;
    Drover__NodeRemoveRep nr = DROVER__NODE_REMOVE_REP__INIT;
    static char names[CTL_QUANTITY_MAX][48]; /* the loop thread only */
    char *namev[64], err[320] = "", node[NODE_NAME_MAX + 2];
    struct ctl_app *a = NULL;
    struct ctl_node *n;
    const char *what = "?";
    size_t nn = 0;
    bool restarted = false;
    int rc = -EINVAL;

    switch (m->body_case) {
    case DROVER__MESSAGE__BODY_RESTART_REQ:
        what = "restart";
        if ((a = find_app(ctl, m->restart_req->app, err, sizeof(err), &rc)) == NULL)
            break;
        if (!arg_ok(m->restart_req->target, 64)) {
            rc = -EINVAL;
            snprintf(err, sizeof(err), "target too long");
            break;
        }
        rc = ctl_restart(ctl->model, a, m->restart_req->target, mono_ms(), names, ARRAY_SIZE(names),
                         &nn, err, sizeof(err));
        if (rc < 0)
            break;
        rr.release = a->current;
        for (size_t i = 0; i < nn && i < ARRAY_SIZE(namev); i++)
            namev[i] = names[i];
        rr.names = namev;
        rr.n_names = nn < ARRAY_SIZE(namev) ? nn : ARRAY_SIZE(namev);
        rep.body_case = DROVER__MESSAGE__BODY_RESTART_REP;
        rep.restart_rep = &rr;
        break;
    case DROVER__MESSAGE__BODY_PS_STOP_REQ:
        what = "ps_stop";
        if ((a = find_app(ctl, m->ps_stop_req->app, err, sizeof(err), &rc)) == NULL)
            break;
        if (!arg_ok(m->ps_stop_req->name, 64)) {
            rc = -EINVAL;
            snprintf(err, sizeof(err), "instance name too long");
            break;
        }
        rc = ctl_ps_stop(ctl->model, a, m->ps_stop_req->name, &restarted, err, sizeof(err));
        pr.name = m->ps_stop_req->name;
        pr.restarted = restarted;
        rep.body_case = DROVER__MESSAGE__BODY_PS_STOP_REP;
        rep.ps_stop_rep = &pr;
        break;
    case DROVER__MESSAGE__BODY_APP_DESTROY_REQ:
        what = "app_destroy";
        if ((a = find_app(ctl, m->app_destroy_req->app, err, sizeof(err), &rc)) == NULL)
            break;
        if (!arg_ok(m->app_destroy_req->confirm, APP_NAME_MAX) ||
            strcmp(m->app_destroy_req->confirm, a->name) != 0) {
            rc = -EINVAL;
            snprintf(err, sizeof(err), "to destroy %s and everything of it, confirm with its name",
                     a->name);
            break;
        }
        dr.app = m->app_destroy_req->app;
        dr.releases = (uint32_t)a->nreleases;
        rc = ctl_destroy(ctl->model, a, &dr.instances);
        rep.body_case = DROVER__MESSAGE__BODY_APP_DESTROY_REP;
        rep.app_destroy_rep = &dr;
        break;
    case DROVER__MESSAGE__BODY_NODE_REMOVE_REQ:
        what = "node_remove";
        if (!arg_ok(m->node_remove_req->node, NODE_NAME_MAX) ||
            !name_node_valid(m->node_remove_req->node)) {
            snprintf(err, sizeof(err), "invalid node name");
            break;
        }
        snprintf(node, sizeof(node), "%s", m->node_remove_req->node);
        rc = -ENOENT;
        if ((n = ctl_node_find(ctl->model, node)) == NULL) {
            snprintf(err, sizeof(err), "no node %s", node);
            break;
        }
        rc = ctl_node_forget(ctl->model, n, err, sizeof(err));
        nr.node = node;
        rep.body_case = DROVER__MESSAGE__BODY_NODE_REMOVE_REP;
        rep.node_remove_rep = &nr;
        break;
    default:
        snprintf(err, sizeof(err), "message type %d is not a lifecycle request", (int)m->body_case);
        break;
    }
    if (rc < 0) {
        log_warn("bad_request", "sock=api msg=%s reason=%s", what, log_q(err));
        ctl_reply_error(ctl, req, code_of(rc), "%s", err);
    } else if (ctl_commit(ctl) < 0) {
        ctl_reply_error(ctl, req, DROVER__ERROR_CODE__ERR_INTERNAL, "%s",
                        ctl_store_why(ctl->store));
    } else {
        ctl_reply(ctl, req, &rep);
    }
    wire_msg_free(m);
}
