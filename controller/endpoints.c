/* SPDX-License-Identifier: MIT */
/*
 * endpoints.c: where an app's requests may go, for routers to follow.
 *
 * An app's endpoints are its instances that are up and not being stopped,
 * as host:port (the node's advertised address), sorted by type and number.
 * An instance leaves the list the moment the controller decides to stop it,
 * before its agent hears of it; the agent then waits the type's
 * shutdown_delay before SIGTERM, so a router following the list has time
 * to stop sending it requests.
 *
 * The list's version is a 64-bit FNV-1a digest of its content cut to 53
 * bits (a JSON reader in JavaScript holds it exactly), not a counter, so
 * that it means the same across controller restarts. A watcher
 * (`drover endpoints --watch`) sends the version it has with wait_ms: the
 * request is held until the list differs or the wait is over. The model
 * bumps an app's ep_gen on any change that may move its list (ctl_inst_stop,
 * ctl_inst_set_state, ctl_inst_delete); after each commit, and on the
 * controller's tick, held requests of apps whose ep_gen moved are checked
 * again.
 */
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "log.h"

#define WAIT_MAX_MS 60000u
/* The digest keeps 53 bits, so that the version in --json is a number a
 * JavaScript reader holds exactly (Number.MAX_SAFE_INTEGER is 2^53 - 1). */
#define ENDPOINTS_VERSION_MASK ((1ull << 53) - 1)

struct ep_waiter {
    LIST_ENTRY(ep_waiter) link;
    struct ctl_call *c; /* pending until answered */
    char app[APP_NAME_MAX + 2];
    char type[TYPE_NAME_MAX + 2];
    uint64_t version;
    uint64_t gen; /* the app's ep_gen when last checked */
    uint64_t deadline;
};

struct ctl_endpoints {
    struct ctl *ctl;
    LIST_HEAD(, ep_waiter) waiters;
};

struct ctl_endpoints *
ctl_endpoints_new(struct ctl *ctl)
{
    struct ctl_endpoints *e = calloc(1, sizeof(*e));

    if (e == NULL)
        return NULL;
    e->ctl = ctl;
    LIST_INIT(&e->waiters);
    return e;
}

static void
waiter_free(struct ep_waiter *w)
{
    LIST_REMOVE(w, link);
    if (w->c != NULL)
        ctl_call_end_error(w->c, DROVER__ERROR_CODE__ERR_UNAVAILABLE, "the controller is stopping");
    free(w);
}

void
ctl_endpoints_free(struct ctl_endpoints *e)
{
    if (e == NULL)
        return;
    while (!LIST_EMPTY(&e->waiters))
        waiter_free(LIST_FIRST(&e->waiters));
    free(e);
}

static bool
listed(const struct ctl_instance *in, const char *type)
{
    return !in->stopping && !in->oneoff && in->node != NULL &&
           in->state == DROVER__INSTANCE_STATE__ST_UP &&
           (type[0] == '\0' || strcmp(in->type, type) == 0);
}

/*
 * Does the app have this type: in its current release's Procfile, or in its
 * formation (a type a newer Procfile dropped may still be running down)?
 * Before the first release every valid type is accepted, so that a router
 * follower may start before the first deploy. Types compare exactly, as
 * Heroku's do ("Web" is not "web").
 */
static bool
has_type(const struct ctl_app *a, const char *type)
{
    const struct ctl_release *rel = ctl_release_current(a);

    if (rel == NULL || ctl_formation_find(a, type) != NULL)
        return true;
    for (size_t i = 0; i < rel->ntypes; i++)
        if (strcmp(rel->types[i].name, type) == 0)
            return true;
    return false;
}

static int
by_type_idx(const void *x, const void *y)
{
    const struct ctl_instance *a = *(const struct ctl_instance *const *)x;
    const struct ctl_instance *b = *(const struct ctl_instance *const *)y;
    int c = strcmp(a->type, b->type);

    if (c != 0)
        return c;
    if (a->idx != b->idx)
        return a->idx < b->idx ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

static uint64_t
fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;

    while (n-- > 0) {
        h ^= *c++;
        h *= 1099511628211ull;
    }
    return h;
}

/* The list, sorted (malloc'd, *n entries), and its digest. */
static struct ctl_instance **
list(const struct ctl_app *a, const char *type, size_t *n, uint64_t *version)
{
    struct ctl_instance **v = malloc((a->ninstances + 1) * sizeof(*v)), *in;
    uint64_t h = 14695981039346656037ull;
    size_t k = 0, i;

    if (v == NULL)
        return NULL;
    LIST_FOREACH (in, &a->instances, app_link) {
        if (listed(in, type))
            v[k++] = in;
    }
    qsort(v, k, sizeof(*v), by_type_idx);
    for (i = 0; i < k; i++) {
        h = fnv(h, &v[i]->id, sizeof(v[i]->id));
        h = fnv(h, v[i]->node->address, strlen(v[i]->node->address) + 1);
        h = fnv(h, &v[i]->port, sizeof(v[i]->port));
    }
    *n = k;
    *version = h & ENDPOINTS_VERSION_MASK;
    return v;
}

/* The reply of c: v[0..n) (from list(), NULL when it failed); frees v. */
static int
fill_list(struct ctl_call *c, struct ctl_instance **v, size_t n, uint64_t version)
{
    Drover__EndpointsRep *rep = ctl_arena_alloc(c->ar, sizeof(*rep));
    Drover__Endpoint *ep = ctl_arena_alloc(c->ar, (n + 1) * sizeof(*ep));
    size_t i;

    if (rep != NULL)
        drover__endpoints_rep__init(rep);
    if (rep == NULL || ep == NULL || v == NULL ||
        (rep->endpoints = ctl_arena_alloc(c->ar, (n + 1) * sizeof(*rep->endpoints))) == NULL) {
        free(v);
        return ctl_oom(c);
    }
    rep->version = version;
    for (i = 0; i < n; i++) {
        drover__endpoint__init(&ep[i]);
        ep[i].id = v[i]->id;
        ep[i].name = ctl_arena_inst_name(c->ar, v[i]->type, v[i]->idx);
        ep[i].type = v[i]->type;
        ep[i].host = v[i]->node->address;
        ep[i].port = v[i]->port;
        ep[i].release = v[i]->release;
        rep->endpoints[i] = &ep[i];
        if (ep[i].name == NULL) {
            free(v);
            return ctl_oom(c);
        }
    }
    free(v);
    rep->n_endpoints = n;
    c->rep.body_case = DROVER__MESSAGE__BODY_ENDPOINTS_REP;
    c->rep.endpoints_rep = rep;
    return 0;
}

static const char *
request_invalid(struct ctl_call *c, const Drover__EndpointsReq *r, const char *type,
                const struct ctl_app **a)
{
    if ((*a = ctl_call_app(c, r->app)) == NULL)
        return c->err;
    if (type[0] != '\0' && !name_type_valid(type))
        return "invalid process type";
    if (type[0] != '\0' && !has_type(*a, type)) {
        ctl_fail(c, DROVER__ERROR_CODE__ERR_NOT_FOUND, "app %s has no process type '%s'",
                 (*a)->name, type);
        return c->err;
    }
    if (r->wait_ms > WAIT_MAX_MS)
        return "wait at most 60000 ms";
    return NULL;
}

/* EndpointsReq: answered now, or pending until the list changes. */
int
ctl_h_endpoints(struct ctl_call *c)
{
    struct ctl_endpoints *e = c->ctl->endpoints;
    const Drover__EndpointsReq *r = c->req->endpoints_req;
    const char *type = r->type != NULL ? r->type : "";
    const struct ctl_app *a = NULL;
    const char *why = request_invalid(c, r, type, &a);
    struct ctl_instance **v;
    struct ep_waiter *w;
    uint64_t version = 0;
    size_t n = 0;

    if (why == c->err)
        return -1;
    if (why != NULL)
        return ctl_fail(c, DROVER__ERROR_CODE__ERR_BAD_REQUEST, "%s", why);
    v = list(a, type, &n, &version);
    if (v != NULL && r->wait_ms > 0 && version == r->version &&
        (w = calloc(1, sizeof(*w))) != NULL) {
        free(v);
        w->c = c;
        snprintf(w->app, sizeof(w->app), "%s", r->app);
        snprintf(w->type, sizeof(w->type), "%s", type);
        w->version = version;
        w->gen = a->ep_gen;
        w->deadline = mono_ms() + r->wait_ms;
        LIST_INSERT_HEAD(&e->waiters, w, link);
        return CTL_PENDING;
    }
    return fill_list(c, v, n, version);
}

/* Answer w: its list (v from list(), or NULL when its app is gone). */
static void
answer(struct ep_waiter *w, const struct ctl_app *a, struct ctl_instance **v, size_t n,
       uint64_t version)
{
    struct ctl_call *c = w->c;

    w->c = NULL;
    waiter_free(w);
    if (a == NULL)
        ctl_call_end_error(c, DROVER__ERROR_CODE__ERR_NOT_FOUND, "no app %s",
                           c->req->endpoints_req->app);
    else
        ctl_call_end(c, fill_list(c, v, n, version) < 0 ? NULL : &c->rep);
}

void
ctl_endpoints_wake(struct ctl_endpoints *e, bool force)
{
    struct ep_waiter *w, *next;
    uint64_t now = mono_ms();

    if (e == NULL || LIST_EMPTY(&e->waiters))
        return;
    for (w = LIST_FIRST(&e->waiters); w != NULL; w = next) {
        const struct ctl_app *a = ctl_app_find(e->ctl->model, w->app);
        struct ctl_instance **v = NULL;
        uint64_t version = 0;
        size_t n = 0;

        next = LIST_NEXT(w, link);
        if (a != NULL && !force && now < w->deadline) {
            if (a->ep_gen == w->gen)
                continue;
            w->gen = a->ep_gen;
            if ((v = list(a, w->type, &n, &version)) == NULL)
                continue;
            if (version == w->version) {
                free(v);
                continue;
            }
        } else if (a != NULL) {
            v = list(a, w->type, &n, &version);
        }
        answer(w, a, v, n, version);
        next = LIST_FIRST(&e->waiters); /* answering may have answered others */
    }
}
