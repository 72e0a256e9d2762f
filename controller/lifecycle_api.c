/* SPDX-License-Identifier: MIT */
/*
 * lifecycle_api.c: the API side of lifecycle.c's verbs (restart, ps:stop,
 * apps:destroy, nodes:remove): a handler per request that validates it and
 * applies the rule (dispatch.c commits and replies); and the end of
 * apps:destroy, once the
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
    const struct ctl_app *a;

    while ((a = ctl_map_next(m->apps, &pos)) != NULL) {
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

    if (m->ndestroying == 0)
        return;
    while ((a = ctl_map_next(m->apps, &pos)) != NULL && n < ARRAY_SIZE(done)) {
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

/* ---- the handlers ---- */

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

int
ctl_h_restart(struct ctl_call *c)
{
    const Drover__RestartReq *r = c->req->restart_req;
    static char names[CTL_QUANTITY_MAX][48]; /* the loop thread only */
    Drover__RestartRep *rr = ctl_arena_alloc(c->ar, sizeof(*rr));
    char **namev = ctl_arena_alloc(c->ar, 64 * sizeof(*namev));
    struct ctl_app *a = ctl_call_app(c, r->app);
    char err[320] = "";
    size_t nn = 0;
    int rc;

    if (a == NULL)
        return -1;
    if (rr == NULL || namev == NULL)
        return ctl_oom(c);
    if (!ctl_str_ok(r->target, 64))
        return ctl_fail(c, DROVER__ERROR_CODE__ERR_BAD_REQUEST, "target too long");
    rc = ctl_restart(c->ctl->model, a, r->target, mono_ms(), names, ARRAY_SIZE(names), &nn, err,
                     sizeof(err));
    if (rc < 0)
        return ctl_fail(c, code_of(rc), "%s", err);
    drover__restart_rep__init(rr);
    rr->release = a->current;
    for (size_t i = 0; i < nn && i < 64; i++)
        namev[i] = names[i];
    rr->names = namev;
    rr->n_names = nn < 64 ? nn : 64;
    c->rep.body_case = DROVER__MESSAGE__BODY_RESTART_REP;
    c->rep.restart_rep = rr;
    return 0;
}

int
ctl_h_ps_stop(struct ctl_call *c)
{
    const Drover__PsStopReq *r = c->req->ps_stop_req;
    Drover__PsStopRep *pr = ctl_arena_alloc(c->ar, sizeof(*pr));
    struct ctl_app *a = ctl_call_app(c, r->app);
    bool restarted = false;
    char err[320] = "";
    int rc;

    if (a == NULL)
        return -1;
    if (pr == NULL)
        return ctl_oom(c);
    if (!ctl_str_ok(r->name, 64))
        return ctl_fail(c, DROVER__ERROR_CODE__ERR_BAD_REQUEST, "instance name too long");
    rc = ctl_ps_stop(c->ctl->model, a, r->name, &restarted, err, sizeof(err));
    if (rc < 0)
        return ctl_fail(c, code_of(rc), "%s", err);
    drover__ps_stop_rep__init(pr);
    pr->name = r->name;
    pr->restarted = restarted;
    c->rep.body_case = DROVER__MESSAGE__BODY_PS_STOP_REP;
    c->rep.ps_stop_rep = pr;
    return 0;
}

int
ctl_h_app_destroy(struct ctl_call *c)
{
    const Drover__AppDestroyReq *r = c->req->app_destroy_req;
    Drover__AppDestroyRep *dr = ctl_arena_alloc(c->ar, sizeof(*dr));
    struct ctl_app *a = ctl_call_app(c, r->app);
    int rc;

    if (a == NULL)
        return -1;
    if (dr == NULL)
        return ctl_oom(c);
    if (!ctl_str_ok(r->confirm, APP_NAME_MAX) || strcmp(r->confirm, a->name) != 0)
        return ctl_fail(c, DROVER__ERROR_CODE__ERR_BAD_REQUEST,
                        "to destroy %s and everything of it, confirm with its name", a->name);
    drover__app_destroy_rep__init(dr);
    dr->app = r->app;
    dr->releases = (uint32_t)a->nreleases;
    rc = ctl_destroy(c->ctl->model, a, &dr->instances);
    if (rc < 0)
        return ctl_fail(c, code_of(rc), "cannot destroy %s", r->app);
    c->rep.body_case = DROVER__MESSAGE__BODY_APP_DESTROY_REP;
    c->rep.app_destroy_rep = dr;
    return 0;
}

int
ctl_h_node_remove(struct ctl_call *c)
{
    const Drover__NodeRemoveReq *r = c->req->node_remove_req;
    Drover__NodeRemoveRep *nr = ctl_arena_alloc(c->ar, sizeof(*nr));
    struct ctl_node *n;
    char err[320] = "";
    int rc;

    if (nr == NULL)
        return ctl_oom(c);
    if (!ctl_str_ok(r->node, NODE_NAME_MAX) || !name_node_valid(r->node))
        return ctl_fail(c, DROVER__ERROR_CODE__ERR_BAD_REQUEST, "invalid node name");
    if ((n = ctl_node_find(c->ctl->model, r->node)) == NULL)
        return ctl_fail(c, DROVER__ERROR_CODE__ERR_NOT_FOUND, "no node %s", r->node);
    rc = ctl_node_forget(c->ctl->model, n, err, sizeof(err));
    if (rc < 0)
        return ctl_fail(c, code_of(rc), "%s", err);
    drover__node_remove_rep__init(nr);
    nr->node = r->node;
    c->rep.body_case = DROVER__MESSAGE__BODY_NODE_REMOVE_REP;
    c->rep.node_remove_rep = nr;
    return 0;
}
