/* SPDX-License-Identifier: MIT */
/*
 * api.c: the CLI endpoint. One handler per request type, dispatched by a
 * switch on the Message oneof.
 *
 * A handler validates every field first and either fills the reply or sets
 * an error (code and one line for a person) without having changed anything;
 * then the dispatcher commits the model's changes to the store and only then
 * sends the reply, so an acknowledged change is never lost. Replies are built
 * in an arena (arena.c) and borrow strings from the model.
 *
 * Two requests do blocking work and answer later from an after-work callback:
 * the slug upload (slugs.c) and release creation, which reads and parses the
 * slug's Procfile in the thread pool.
 *
 * Choices worth knowing:
 *   - every new current release is a deploy (deploys.c): a deploy, a config
 *     change, a rollback; its status says how the rollout went;
 *   - rollback makes a new release with the old one's slug, types and config
 *     (the app's config becomes that config), as on Heroku; without a
 *     version it goes to the newest succeeded release before the current one;
 *   - the first release of an app with no formation at all starts web=1, as
 *     on Heroku; every other new type starts at 0;
 *   - config:set / config:unset before the first release only change the
 *     config (the first deploy snapshots it); after it they also make release
 *     vN+1 with the same slug and types. An unset of a key that is not
 *     set is refused (ERR_NOT_FOUND) and makes no release.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>

#include "ctl.h"
#include "log.h"
#include "procfile.h"
#include "slug.h"

#define SCALE_ENTRIES_MAX PROCFILE_MAX_TYPES

struct api_req {
    struct ctl *ctl;
    struct ctl_arena *ar;
    const char *what;
    Drover__Message rep;
    Drover__ErrorCode code;
    char err[512];
};

enum { API_ASYNC = 1 };

static int fail(struct api_req *q, Drover__ErrorCode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(struct api_req *q, Drover__ErrorCode code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(q->err, sizeof(q->err), fmt, ap);
    va_end(ap);
    q->code = code;
    return -1;
}

static bool
str_ok(const char *s, size_t max)
{
    return s != NULL && strnlen(s, max + 1) <= max;
}

static struct ctl_app *
find_app(struct api_req *q, const char *name)
{
    struct ctl_app *a;

    if (!str_ok(name, APP_NAME_MAX) || !name_app_valid(name)) {
        fail(q, DROVER__ERROR_CODE__ERR_BAD_REQUEST,
             "invalid app name (want [a-z][a-z0-9-], at most 30 characters)");
        return NULL;
    }
    a = ctl_app_find(q->ctl->model, name);
    if (a == NULL)
        fail(q, DROVER__ERROR_CODE__ERR_NOT_FOUND, "no app %s", name);
    return a;
}

static int
oom(struct api_req *q)
{
    return fail(q, DROVER__ERROR_CODE__ERR_INTERNAL, "out of memory");
}

/* ---- reply builders ---- */

static Drover__FormationEntry **
formation_entries(struct api_req *q, const struct ctl_app *a, size_t *n)
{
    const struct ctl_release *rel = ctl_release_current(a);
    Drover__FormationEntry **v;
    size_t i;

    *n = 0;
    if (rel == NULL)
        return NULL;
    v = ctl_arena_alloc(q->ar, (rel->ntypes + 1) * sizeof(*v));
    if (v == NULL)
        return NULL;
    for (i = 0; i < rel->ntypes; i++) {
        const struct ctl_formation *f = ctl_formation_find(a, rel->types[i].name);
        Drover__FormationEntry *e;

        if (strcmp(rel->types[i].name, ctl_release_type_name) == 0)
            continue; /* the release phase: never in the formation */
        if ((e = ctl_arena_alloc(q->ar, sizeof(*e))) == NULL)
            return NULL;
        drover__formation_entry__init(e);
        e->type = (char *)rel->types[i].name;
        e->quantity = f != NULL ? (int32_t)f->quantity : 0;
        e->command = rel->types[i].command;
        v[(*n)++] = e;
    }
    return v;
}

static Drover__AppInfo *
app_info(struct api_req *q, const struct ctl_app *a)
{
    Drover__AppInfo *ai = ctl_arena_alloc(q->ar, sizeof(*ai));

    if (ai == NULL)
        return NULL;
    drover__app_info__init(ai);
    ai->name = (char *)a->name;
    ai->release = a->current;
    ai->created_ms = a->created_ms;
    ai->formation = formation_entries(q, a, &ai->n_formation);
    if (ai->formation == NULL && a->current != 0)
        return NULL;
    return ai;
}

static Drover__KeyValue **
kv_list(struct api_req *q, const struct ctl_kv *kv, size_t n)
{
    Drover__KeyValue **v = ctl_arena_alloc(q->ar, (n + 1) * sizeof(*v));
    Drover__KeyValue *e = ctl_arena_alloc(q->ar, (n + 1) * sizeof(*e));
    size_t i;

    if (v == NULL || e == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        drover__key_value__init(&e[i]);
        e[i].key = kv[i].key;
        e[i].value = kv[i].value;
        v[i] = &e[i];
    }
    return v;
}

static Drover__ReleaseInfo *
release_info(struct api_req *q, const struct ctl_release *r)
{
    Drover__ReleaseInfo *ri = ctl_arena_alloc(q->ar, sizeof(*ri));
    Drover__ProcessType *pt;
    size_t i;

    if (ri == NULL)
        return NULL;
    drover__release_info__init(ri);
    ri->version = r->version;
    ri->slug_sha256 = (char *)r->slug_sha256;
    ri->description = r->description;
    ri->created_ms = r->created_ms;
    ri->status = (char *)r->status;
    ri->reason = (char *)r->reason;
    ri->config = kv_list(q, r->config, r->nconfig);
    ri->n_config = r->nconfig;
    ri->types = ctl_arena_alloc(q->ar, (r->ntypes + 1) * sizeof(*ri->types));
    pt = ctl_arena_alloc(q->ar, (r->ntypes + 1) * sizeof(*pt));
    if (ri->config == NULL || ri->types == NULL || pt == NULL)
        return NULL;
    for (i = 0; i < r->ntypes; i++) {
        drover__process_type__init(&pt[i]);
        pt[i].name = (char *)r->types[i].name;
        pt[i].command = r->types[i].command;
        ri->types[i] = &pt[i];
    }
    ri->n_types = r->ntypes;
    return ri;
}

static int
config_rep(struct api_req *q, const struct ctl_app *a)
{
    Drover__ConfigRep *cr = ctl_arena_alloc(q->ar, sizeof(*cr));

    if (cr == NULL)
        return oom(q);
    drover__config_rep__init(cr);
    cr->app = (char *)a->name;
    cr->vars = kv_list(q, a->config, a->nconfig);
    cr->n_vars = a->nconfig;
    cr->release = a->current;
    if (cr->vars == NULL)
        return oom(q);
    q->rep.body_case = DROVER__MESSAGE__BODY_CONFIG_REP;
    q->rep.config_rep = cr;
    return 0;
}

static int
release_rep(struct api_req *q, const struct ctl_release *rel)
{
    Drover__ReleaseRep *rr = ctl_arena_alloc(q->ar, sizeof(*rr));

    if (rr == NULL)
        return oom(q);
    drover__release_rep__init(rr);
    rr->release = release_info(q, rel);
    if (rr->release == NULL)
        return oom(q);
    q->rep.body_case = DROVER__MESSAGE__BODY_RELEASE_REP;
    q->rep.release_rep = rr;
    return 0;
}

/* ---- releases ---- */

/*
 * Make release vN+1 of a with config[0..nconfig) as its snapshot (and as the
 * app's config), make it current, add formation rows for its new types and
 * start its deploy. types[i].command is copied.
 */
static int
release_make(struct ctl *ctl, struct ctl_app *a, const char *sha, uint64_t size, const char *desc,
             const struct ctl_ptype *types, size_t ntypes, const struct ctl_kv *config,
             size_t nconfig, struct ctl_release **out)
{
    struct ctl_model *m = ctl->model;
    struct ctl_release *r = ctl_release_new();
    bool had_formation = a->nformation > 0;
    size_t i;
    int rc = -ENOMEM;

    if (r == NULL)
        goto fail;
    r->version = (uint32_t)a->nreleases + 1;
    snprintf(r->slug_sha256, sizeof(r->slug_sha256), "%s", sha);
    r->slug_size = size;
    r->created_ms = now_ms();
    strcpy(r->status, "deploying");
    r->description = strdup(desc);
    r->types = calloc(ntypes + 1, sizeof(*r->types));
    if (r->description == NULL || r->types == NULL)
        goto fail;
    for (i = 0; i < ntypes; i++) {
        strcpy(r->types[i].name, types[i].name);
        r->types[i].command = strdup(types[i].command);
        if (r->types[i].command == NULL)
            goto fail;
        r->ntypes++;
    }
    if ((rc = ctl_kv_copy(config, nconfig, &r->config)) < 0)
        goto fail;
    r->nconfig = nconfig;
    if ((rc = ctl_config_replace(m, a, config, nconfig)) < 0)
        goto fail;
    for (i = 0; i < ntypes; i++) {
        if (ctl_formation_find(a, types[i].name) != NULL)
            continue;
        rc = ctl_formation_add(a, types[i].name,
                               !had_formation && strcmp(types[i].name, "web") == 0 ? 1 : 0, NULL);
        if (rc < 0)
            goto fail;
    }
    if ((rc = ctl_release_append(a, r)) < 0)
        goto fail;
    ctl_app_touch(m, a, true, false, true);
    log_info("release_created", "app=%s version=%u slug=%s types=%zu description=%s", a->name,
             r->version, r->slug_sha256, r->ntypes, log_q(r->description));
    ctl_logs_event(ctl->logs, a->name, "release v%u created: %s", r->version, r->description);
    *out = r;
    if (ctl_relphase_wanted(r)) { /* current once its release phase succeeded */
        ctl_relphase_start(m, a, r, now_ms());
        return 0;
    }
    a->current = r->version;
    ctl_deploy_start(m, a, now_ms());
    rc = ctl_reconcile_app(m, a, now_ms());
    if (rc < 0)
        log_error("reconcile_failed", "app=%s err=%d", a->name, rc);
    ctl_slugs_gc(ctl); /* older slugs may go now; failures are only logged */
    return 0;
fail:
    ctl_release_free(r);
    return rc;
}

/* A config change after the first deploy: same slug and types, new config. */
static int
release_for_config(struct api_req *q, struct ctl_app *a, const char *desc)
{
    const struct ctl_release *cur = ctl_release_current(a);
    struct ctl_release *r;

    if (cur == NULL)
        return 0;
    if (release_make(q->ctl, a, cur->slug_sha256, cur->slug_size, desc, cur->types, cur->ntypes,
                     a->config, a->nconfig, &r) < 0)
        return oom(q);
    return 0;
}

/* "Set FOO, BAR config vars", cut short to fit a description. */
static void
config_description(char *out, size_t outsz, const char *verb, char **keys, size_t n)
{
    size_t len, i;

    len = (size_t)snprintf(out, outsz, "%s ", verb);
    for (i = 0; i < n && len < outsz; i++) {
        size_t need = strlen(keys[i]) + (i ? 2 : 0);

        if (len + need + sizeof(" config vars") + 4 > outsz) {
            len += (size_t)snprintf(out + len, outsz - len, "%s...", i ? ", " : "");
            break;
        }
        len += (size_t)snprintf(out + len, outsz - len, "%s%s", i ? ", " : "", keys[i]);
    }
    if (len < outsz)
        snprintf(out + len, outsz - len, " config vars");
}

/* ---- handlers ---- */

static int
api_apps(struct api_req *q, const Drover__AppsReq *r)
{
    Drover__AppsRep *ar = ctl_arena_alloc(q->ar, sizeof(*ar));
    struct ctl_app **apps;
    size_t n = 0, i;
    int rc = 0;

    (void)r;
    if (ar == NULL)
        return oom(q);
    drover__apps_rep__init(ar);
    apps = ctl_apps_sorted(q->ctl->model, &n);
    if (apps == NULL)
        return oom(q);
    ar->apps = ctl_arena_alloc(q->ar, (n + 1) * sizeof(*ar->apps));
    if (ar->apps == NULL)
        rc = oom(q);
    for (i = 0; rc == 0 && i < n; i++) {
        ar->apps[i] = app_info(q, apps[i]);
        if (ar->apps[i] == NULL)
            rc = oom(q);
    }
    free(apps);
    ar->n_apps = n;
    q->rep.body_case = DROVER__MESSAGE__BODY_APPS_REP;
    q->rep.apps_rep = ar;
    return rc;
}

static int
api_app_create(struct api_req *q, const Drover__AppCreateReq *r)
{
    struct ctl_app *a;
    Drover__AppRep *rep;

    if (!str_ok(r->app, APP_NAME_MAX) || !name_app_valid(r->app))
        return fail(q, DROVER__ERROR_CODE__ERR_BAD_REQUEST,
                    "invalid app name (want [a-z][a-z0-9-], at most 30 characters)");
    if ((a = ctl_app_find(q->ctl->model, r->app)) != NULL && a->destroying)
        return fail(q, DROVER__ERROR_CODE__ERR_UNAVAILABLE,
                    "app %s is being destroyed; try again once its processes have stopped", r->app);
    if (a != NULL)
        return fail(q, DROVER__ERROR_CODE__ERR_CONFLICT, "app %s already exists", r->app);
    if (ctl_app_add(q->ctl->model, r->app, now_ms(), &a) < 0)
        return oom(q);
    ctl_destroy_unforget(q->ctl->model, a->name);
    log_info("app_created", "app=%s", a->name);
    rep = ctl_arena_alloc(q->ar, sizeof(*rep));
    if (rep == NULL)
        return oom(q);
    drover__app_rep__init(rep);
    rep->app = app_info(q, a);
    q->rep.body_case = DROVER__MESSAGE__BODY_APP_REP;
    q->rep.app_rep = rep;
    return 0;
}

static int
api_config(struct api_req *q, const Drover__ConfigReq *r)
{
    struct ctl_app *a = find_app(q, r->app);

    return a == NULL ? -1 : config_rep(q, a);
}

static int
api_config_set(struct api_req *q, const Drover__ConfigSetReq *r)
{
    struct ctl_app *a = find_app(q, r->app);
    char desc[CTL_DESCRIPTION_MAX + 1];
    char **keys;
    size_t i, j, added = 0;

    if (a == NULL)
        return -1;
    if (r->n_vars == 0 || r->n_vars > CONFIG_MAX_VARS)
        return fail(q, DROVER__ERROR_CODE__ERR_BAD_REQUEST, "give 1..%d config vars",
                    CONFIG_MAX_VARS);
    for (i = 0; i < r->n_vars; i++) {
        const Drover__KeyValue *kv = r->vars[i];

        if (kv == NULL || !str_ok(kv->key, CONFIG_KEY_MAX) || !name_config_key_valid(kv->key))
            return fail(q, DROVER__ERROR_CODE__ERR_BAD_REQUEST,
                        "invalid config key (want [A-Za-z_][A-Za-z0-9_]*, at most %d)",
                        CONFIG_KEY_MAX);
        if (name_config_key_reserved(kv->key) != NULL)
            return fail(q, DROVER__ERROR_CODE__ERR_BAD_REQUEST, "%s cannot be set: %s", kv->key,
                        name_config_key_reserved(kv->key));
        if (!str_ok(kv->value, CONFIG_VALUE_MAX))
            return fail(q, DROVER__ERROR_CODE__ERR_BAD_REQUEST,
                        "value of %s is longer than %d bytes", kv->key, CONFIG_VALUE_MAX);
        for (j = 0; j < i; j++) {
            if (strcmp(r->vars[j]->key, kv->key) == 0)
                return fail(q, DROVER__ERROR_CODE__ERR_BAD_REQUEST, "%s is given twice", kv->key);
        }
        if (ctl_config_find(a, kv->key) == NULL)
            added++;
    }
    if (a->nconfig + added > CONFIG_MAX_VARS)
        return fail(q, DROVER__ERROR_CODE__ERR_BAD_REQUEST, "an app has at most %d config vars",
                    CONFIG_MAX_VARS);
    keys = ctl_arena_alloc(q->ar, r->n_vars * sizeof(*keys));
    if (keys == NULL)
        return oom(q);
    for (i = 0; i < r->n_vars; i++) {
        if (ctl_config_set(a, r->vars[i]->key, r->vars[i]->value) < 0)
            return oom(q);
        keys[i] = r->vars[i]->key;
    }
    ctl_app_touch(q->ctl->model, a, false, true, false);
    config_description(desc, sizeof(desc), "Set", keys, r->n_vars);
    log_info("config_set", "app=%s count=%zu", a->name, r->n_vars);
    if (release_for_config(q, a, desc) < 0)
        return -1;
    return config_rep(q, a);
}

static int
api_config_unset(struct api_req *q, const Drover__ConfigUnsetReq *r)
{
    struct ctl_app *a = find_app(q, r->app);
    char desc[CTL_DESCRIPTION_MAX + 1];
    char **keys;
    size_t i, removed = 0;

    if (a == NULL)
        return -1;
    if (r->n_keys == 0 || r->n_keys > CONFIG_MAX_VARS)
        return fail(q, DROVER__ERROR_CODE__ERR_BAD_REQUEST, "give 1..%d config keys",
                    CONFIG_MAX_VARS);
    for (i = 0; i < r->n_keys; i++) {
        if (!str_ok(r->keys[i], CONFIG_KEY_MAX) || !name_config_key_valid(r->keys[i]))
            return fail(q, DROVER__ERROR_CODE__ERR_BAD_REQUEST,
                        "invalid config key (want [A-Za-z_][A-Za-z0-9_]*, at most %d)",
                        CONFIG_KEY_MAX);
    }
    /* A key that is not set is a mistake (a typo, most likely): refused
     * with nothing changed, even when others in the request are set. */
    for (i = 0; i < r->n_keys; i++) {
        if (ctl_config_find(a, r->keys[i]) == NULL)
            return fail(q, DROVER__ERROR_CODE__ERR_NOT_FOUND,
                        "%s is not set on %s (nothing was changed)", r->keys[i], a->name);
    }
    keys = ctl_arena_alloc(q->ar, r->n_keys * sizeof(*keys));
    if (keys == NULL)
        return oom(q);
    for (i = 0; i < r->n_keys; i++) {
        if (ctl_config_unset(a, r->keys[i]))
            keys[removed++] = r->keys[i];
    }
    if (removed > 0) {
        ctl_app_touch(q->ctl->model, a, false, true, false);
        config_description(desc, sizeof(desc), "Remove", keys, removed);
        log_info("config_unset", "app=%s count=%zu", a->name, removed);
        if (release_for_config(q, a, desc) < 0)
            return -1;
    }
    return config_rep(q, a);
}

static int
api_releases(struct api_req *q, const Drover__ReleasesReq *r)
{
    struct ctl_app *a = find_app(q, r->app);
    Drover__ReleasesRep *rr;
    size_t i;

    if (a == NULL)
        return -1;
    rr = ctl_arena_alloc(q->ar, sizeof(*rr));
    if (rr == NULL)
        return oom(q);
    drover__releases_rep__init(rr);
    rr->releases = ctl_arena_alloc(q->ar, (a->nreleases + 1) * sizeof(*rr->releases));
    if (rr->releases == NULL)
        return oom(q);
    /* Newest first, as people read them. */
    for (i = 0; i < a->nreleases; i++) {
        rr->releases[i] = release_info(q, a->releases[a->nreleases - 1 - i]);
        if (rr->releases[i] == NULL)
            return oom(q);
    }
    rr->n_releases = a->nreleases;
    rr->current = a->current;
    q->rep.body_case = DROVER__MESSAGE__BODY_RELEASES_REP;
    q->rep.releases_rep = rr;
    return 0;
}

/* "web, worker" into an arena string. */
static const char *
type_list(struct api_req *q, const struct ctl_release *rel)
{
    size_t len = 1, i;
    char *s;

    for (i = 0; i < rel->ntypes; i++)
        len += strlen(rel->types[i].name) + 2;
    s = ctl_arena_alloc(q->ar, len);
    if (s == NULL)
        return "";
    for (i = 0; i < rel->ntypes; i++) {
        if (i)
            strcat(s, ", ");
        strcat(s, rel->types[i].name);
    }
    return s;
}

static int
api_scale(struct api_req *q, const Drover__ScaleReq *r)
{
    struct ctl_model *m = q->ctl->model;
    struct ctl_app *a = find_app(q, r->app);
    const struct ctl_release *rel;
    struct ctl_formation *f;
    Drover__ScaleRep *sr;
    char what[512];
    size_t i, j, len = 0;

    if (a == NULL)
        return -1;
    rel = ctl_release_current(a);
    if (rel == NULL)
        return fail(q, DROVER__ERROR_CODE__ERR_UNAVAILABLE,
                    "app %s has no release yet; deploy first", a->name);
    if (r->n_entries == 0 || r->n_entries > SCALE_ENTRIES_MAX)
        return fail(q, DROVER__ERROR_CODE__ERR_BAD_REQUEST, "give 1..%d TYPE=N", SCALE_ENTRIES_MAX);
    for (i = 0; i < r->n_entries; i++) {
        const Drover__FormationEntry *e = r->entries[i];

        if (e == NULL || !str_ok(e->type, TYPE_NAME_MAX) || !name_type_valid(e->type))
            return fail(q, DROVER__ERROR_CODE__ERR_BAD_REQUEST,
                        "invalid process type (want letters, digits, '-' or '_', at most 30)");
        if (strcmp(e->type, ctl_release_type_name) == 0)
            return fail(q, DROVER__ERROR_CODE__ERR_BAD_REQUEST,
                        "release is not a formation type: its command runs once per new "
                        "release, before the release starts (run it by hand with: drover run "
                        "%s --type release)",
                        a->name);
        if (ctl_release_type(rel, e->type) == NULL)
            return fail(q, DROVER__ERROR_CODE__ERR_NOT_FOUND,
                        "no process type '%s' in v%u (types: %s)", e->type, rel->version,
                        type_list(q, rel));
        if (e->quantity < 0 || e->quantity > CTL_QUANTITY_MAX)
            return fail(q, DROVER__ERROR_CODE__ERR_BAD_REQUEST,
                        "quantity for %s must be 0..%d, not %d", e->type, CTL_QUANTITY_MAX,
                        e->quantity);
        for (j = 0; j < i; j++) {
            if (strcmp(r->entries[j]->type, e->type) == 0)
                return fail(q, DROVER__ERROR_CODE__ERR_BAD_REQUEST, "%s is given twice", e->type);
        }
    }
    /* Reserve first so that applying cannot fail half way. */
    for (i = 0; i < r->n_entries; i++) {
        if (ctl_formation_find(a, r->entries[i]->type) == NULL &&
            ctl_formation_add(a, r->entries[i]->type, 0, NULL) < 0)
            return oom(q);
    }
    what[0] = '\0';
    for (i = 0; i < r->n_entries; i++) {
        f = ctl_formation_find(a, r->entries[i]->type);
        f->quantity = (uint32_t)r->entries[i]->quantity;
        if (len < sizeof(what))
            len += (size_t)snprintf(what + len, sizeof(what) - len, " %s=%u", f->type, f->quantity);
    }
    ctl_app_touch(m, a, false, false, true);
    log_info("scaled", "app=%s%s", a->name, what);
    ctl_logs_event(q->ctl->logs, a->name, "scaled%s", what);
    if (ctl_reconcile_app(m, a, now_ms()) < 0)
        log_error("reconcile_failed", "app=%s", a->name);
    sr = ctl_arena_alloc(q->ar, sizeof(*sr));
    if (sr == NULL)
        return oom(q);
    drover__scale_rep__init(sr);
    sr->formation = formation_entries(q, a, &sr->n_formation);
    q->rep.body_case = DROVER__MESSAGE__BODY_SCALE_REP;
    q->rep.scale_rep = sr;
    return 0;
}

static int
ps_cmp(const void *x, const void *y)
{
    const struct ctl_instance *const *a = x, *const *b = y;
    int c = strcmp((*a)->type, (*b)->type);

    if (c != 0)
        return c;
    if ((*a)->idx != (*b)->idx)
        return (*a)->idx < (*b)->idx ? -1 : 1;
    if ((*a)->release != (*b)->release)
        return (*a)->release < (*b)->release ? -1 : 1;
    return (*a)->id < (*b)->id ? -1 : (*a)->id > (*b)->id;
}

static int
api_ps(struct api_req *q, const Drover__PsReq *r)
{
    struct ctl_app *a = find_app(q, r->app);
    struct ctl_instance **v, *in;
    Drover__InstanceInfo *ii;
    Drover__PsRep *pr;
    size_t n = 0, i;

    if (a == NULL)
        return -1;
    pr = ctl_arena_alloc(q->ar, sizeof(*pr));
    v = ctl_arena_alloc(q->ar, (a->ninstances + 1) * sizeof(*v));
    ii = ctl_arena_alloc(q->ar, (a->ninstances + 1) * sizeof(*ii));
    if (pr == NULL || v == NULL || ii == NULL)
        return oom(q);
    drover__ps_rep__init(pr);
    LIST_FOREACH(in, &a->instances, app_link)
    v[n++] = in;
    qsort(v, n, sizeof(*v), ps_cmp);
    pr->instances = ctl_arena_alloc(q->ar, (n + 1) * sizeof(*pr->instances));
    if (pr->instances == NULL)
        return oom(q);
    for (i = 0; i < n; i++) {
        if (ctl_view_inst(q->ar, v[i], &ii[i]) < 0)
            return oom(q);
        pr->instances[i] = &ii[i];
    }
    pr->n_instances = n;
    q->rep.body_case = DROVER__MESSAGE__BODY_PS_REP;
    q->rep.ps_rep = pr;
    return 0;
}

static int
api_nodes(struct api_req *q, const Drover__NodesReq *r)
{
    Drover__NodesRep *nr = ctl_arena_alloc(q->ar, sizeof(*nr));

    (void)r;
    if (nr == NULL)
        return oom(q);
    drover__nodes_rep__init(nr);
    nr->nodes = ctl_view_nodes(q->ar, q->ctl->model, &nr->n_nodes);
    if (nr->nodes == NULL)
        return oom(q);
    q->rep.body_case = DROVER__MESSAGE__BODY_NODES_REP;
    q->rep.nodes_rep = nr;
    return 0;
}

/*
 * Cordon, uncordon, drain. Draining marks every live instance on the node for
 * eviction: reconcile.c places replacements elsewhere and stops each evicted
 * instance once its replacement is up (ctl_commit runs it before the reply).
 * A node that is down when drained has nothing running to wait for: its lost
 * instances, already replaced, are forgotten.
 */
static int
api_node_state(struct api_req *q, const Drover__NodeStateReq *r)
{
    struct ctl_model *m = q->ctl->model;
    enum ctl_node_state admin;
    struct ctl_node *n;
    Drover__NodeRep *nr;
    Drover__NodeInfo *ni;

    if (!str_ok(r->node, NODE_NAME_MAX) || !name_node_valid(r->node))
        return fail(q, DROVER__ERROR_CODE__ERR_BAD_REQUEST,
                    "invalid node name (want [A-Za-z0-9][A-Za-z0-9._-], at most 63 characters)");
    if (!str_ok(r->state, 16) || ctl_node_state_parse(r->state, &admin) < 0 ||
        admin == CTL_NODE_DOWN)
        return fail(q, DROVER__ERROR_CODE__ERR_BAD_REQUEST,
                    "node state must be ready, cordoned or draining");
    n = ctl_node_find(m, r->node);
    if (n == NULL)
        return fail(q, DROVER__ERROR_CODE__ERR_NOT_FOUND, "no node %s", r->node);
    if (n->admin != admin)
        log_info("node_admin", "node=%s from=%s to=%s", n->name, ctl_node_state_name(n->admin),
                 ctl_node_state_name(admin));
    ctl_node_update(m, n, n->state == CTL_NODE_DOWN, admin, n->leaving);
    ctl_node_forget_lost(m, n);
    nr = ctl_arena_alloc(q->ar, sizeof(*nr));
    ni = ctl_arena_alloc(q->ar, sizeof(*ni));
    if (nr == NULL || ni == NULL)
        return oom(q);
    /* Reconcile now, so that the reply already counts the evictions. */
    if (ctl_settle(m, now_ms()) < 0)
        log_error("settle_failed", "node=%s", n->name);
    drover__node_rep__init(nr);
    ctl_view_node(n, ni);
    nr->node = ni;
    q->rep.body_case = DROVER__MESSAGE__BODY_NODE_REP;
    q->rep.node_rep = nr;
    return 0;
}

static int
api_status(struct api_req *q, const Drover__StatusReq *r)
{
    Drover__StatusRep *sr = ctl_arena_alloc(q->ar, sizeof(*sr));

    (void)r;
    if (sr == NULL || ctl_view_status(q->ar, q->ctl->model, sr) < 0)
        return oom(q);
    if (ctl_status_ha(q->ctl, q->ar, sr) < 0)
        return oom(q);
    q->rep.body_case = DROVER__MESSAGE__BODY_STATUS_REP;
    q->rep.status_rep = sr;
    return 0;
}

/* ---- rolling deploys ---- */

static int
api_rollback(struct api_req *q, const Drover__RollbackReq *r)
{
    struct ctl_app *a = find_app(q, r->app);
    const struct ctl_release *to = NULL;
    struct ctl_release *rel;
    char desc[64];
    uint64_t size;
    uint32_t v;

    if (a == NULL)
        return -1;
    if (a->nreleases == 0)
        return fail(q, DROVER__ERROR_CODE__ERR_UNAVAILABLE, "app %s has no release yet", a->name);
    if (r->version == 0) {
        for (v = a->current > 0 ? a->current - 1 : (uint32_t)a->nreleases; v > 0 && to == NULL;
             v--) {
            const struct ctl_release *x = ctl_release_get(a, v);

            if (strcmp(x->status, "succeeded") == 0)
                to = x;
        }
        if (to == NULL)
            return fail(q, DROVER__ERROR_CODE__ERR_NOT_FOUND,
                        "no succeeded release before v%u to roll back to", a->current);
    } else if ((to = ctl_release_get(a, r->version)) == NULL) {
        return fail(q, DROVER__ERROR_CODE__ERR_NOT_FOUND, "no release v%u (the newest is v%zu)",
                    r->version, a->nreleases);
    } else if (to->version == a->current) {
        return fail(q, DROVER__ERROR_CODE__ERR_CONFLICT, "v%u is the current release already",
                    to->version);
    }
    if (ctl_slug_stat(q->ctl->slugs, to->slug_sha256, &size) < 0)
        return fail(q, DROVER__ERROR_CODE__ERR_NOT_FOUND,
                    "the slug of v%u is gone: the controller keeps the slugs of each app's last "
                    "%llu releases (DROVER_SLUGS_KEEP); deploy that code again instead",
                    to->version, (unsigned long long)q->ctl->cfg.slugs_keep);
    snprintf(desc, sizeof(desc), "Rollback to v%u", to->version);
    if (release_make(q->ctl, a, to->slug_sha256, to->slug_size, desc, to->types, to->ntypes,
                     to->config, to->nconfig, &rel) < 0)
        return oom(q);
    return release_rep(q, rel);
}

static int
api_settings_rep(struct api_req *q, const struct ctl_app *a, const char *only)
{
    Drover__SettingsRep *sr = ctl_arena_alloc(q->ar, sizeof(*sr));
    Drover__TypeSettings *ts = ctl_arena_alloc(q->ar, (a->nformation + 1) * sizeof(*ts));
    size_t i, n = 0;

    if (sr == NULL || ts == NULL)
        return oom(q);
    drover__settings_rep__init(sr);
    sr->app = (char *)a->name;
    sr->types = ctl_arena_alloc(q->ar, (a->nformation + 1) * sizeof(*sr->types));
    if (sr->types == NULL)
        return oom(q);
    for (i = 0; i < a->nformation; i++) {
        if (only != NULL && strcmp(a->formation[i].type, only) != 0)
            continue;
        drover__type_settings__init(&ts[n]);
        ctl_view_settings(&a->formation[i], &ts[n]);
        sr->types[n] = &ts[n];
        n++;
    }
    sr->n_types = n;
    q->rep.body_case = DROVER__MESSAGE__BODY_SETTINGS_REP;
    q->rep.settings_rep = sr;
    return 0;
}

static int
api_settings(struct api_req *q, const Drover__SettingsReq *r)
{
    struct ctl_app *a = find_app(q, r->app);

    return a == NULL ? -1 : api_settings_rep(q, a, NULL);
}

static int
api_settings_set(struct api_req *q, const Drover__SettingsSetReq *r)
{
    struct ctl_app *a = find_app(q, r->app);
    struct ctl_formation *f, next;
    char err[256], what[512];
    size_t i, len = 0;

    if (a == NULL)
        return -1;
    if (!str_ok(r->type, TYPE_NAME_MAX) || !name_type_valid(r->type))
        return fail(q, DROVER__ERROR_CODE__ERR_BAD_REQUEST,
                    "invalid process type (want letters, digits, '-' or '_', at most 30)");
    if ((f = ctl_formation_find(a, r->type)) == NULL)
        return fail(q, DROVER__ERROR_CODE__ERR_NOT_FOUND,
                    "app %s has no process type '%s' (deploy a Procfile with it first)", a->name,
                    r->type);
    if (r->n_vars == 0 || r->n_vars > 16)
        return fail(q, DROVER__ERROR_CODE__ERR_BAD_REQUEST, "give 1..16 KEY=VALUE settings");
    next = *f;
    what[0] = '\0';
    for (i = 0; i < r->n_vars; i++) {
        const Drover__KeyValue *kv = r->vars[i];

        if (kv == NULL || !str_ok(kv->key, 64) || !str_ok(kv->value, CTL_HEALTH_MAX))
            return fail(q, DROVER__ERROR_CODE__ERR_BAD_REQUEST, "a setting is missing or too long");
        if (ctl_settings_set(&next, kv->key, kv->value, err, sizeof(err)) < 0)
            return fail(q, DROVER__ERROR_CODE__ERR_BAD_REQUEST, "%s", err);
        if (len < sizeof(what))
            len += (size_t)snprintf(what + len, sizeof(what) - len, " %s=%s", kv->key, kv->value);
    }
    if (ctl_settings_check(&next, err, sizeof(err)) < 0)
        return fail(q, DROVER__ERROR_CODE__ERR_BAD_REQUEST, "%s", err);
    *f = next;
    ctl_app_touch(q->ctl->model, a, false, false, true);
    ctl_app_want_reconcile(q->ctl->model, a); /* a rollout under way takes new batch sizes */
    log_info("settings_set", "app=%s type=%s%s", a->name, f->type, what);
    ctl_logs_event(q->ctl->logs, a->name, "settings of %s:%s", f->type, what);
    return api_settings_rep(q, a, f->type);
}

static int
api_deploy(struct api_req *q, const Drover__DeployReq *r)
{
    struct ctl_app *a = find_app(q, r->app);
    Drover__DeployRep *dr;
    Drover__DeployInfo *di;

    if (a == NULL)
        return -1;
    dr = ctl_arena_alloc(q->ar, sizeof(*dr));
    di = ctl_arena_alloc(q->ar, sizeof(*di));
    if (dr == NULL || di == NULL)
        return oom(q);
    drover__deploy_rep__init(dr);
    drover__deploy_info__init(di);
    if (ctl_view_deploy(q->ar, a, di) < 0)
        return oom(q);
    dr->deploy = di;
    q->rep.body_case = DROVER__MESSAGE__BODY_DEPLOY_REP;
    q->rep.deploy_rep = dr;
    return 0;
}

/* ---- release creation: the Procfile is read off the loop ---- */

struct rel_work {
    uv_work_t work;
    struct ctl *ctl;
    struct nnuv_msg *req;
    Drover__Message *m;
    char path[4200];
    uint64_t size;
    struct procfile pf;
    int rc;
    char err[256];
};

static void
rel_work(uv_work_t *w)
{
    struct rel_work *rw = w->data;
    char *text = NULL, perr[200];
    size_t len = 0;

    rw->rc = slug_read_member(rw->path, "Procfile", PROCFILE_MAX_SIZE, &text, &len);
    if (rw->rc == -ENOENT) {
        snprintf(rw->err, sizeof(rw->err), "the slug has no Procfile");
    } else if (rw->rc == -EFBIG) {
        snprintf(rw->err, sizeof(rw->err), "the Procfile is larger than %u bytes",
                 PROCFILE_MAX_SIZE);
    } else if (rw->rc == -ELOOP) {
        snprintf(rw->err, sizeof(rw->err),
                 "the Procfile is a symlink that leaves the slug (or a chain of more than 8)");
    } else if (rw->rc < 0) {
        snprintf(rw->err, sizeof(rw->err), "the slug is not a readable tar.gz");
    } else {
        perr[0] = '\0';
        rw->rc = procfile_parse(text, len, &rw->pf, perr, sizeof(perr));
        if (rw->rc < 0)
            snprintf(rw->err, sizeof(rw->err), "Procfile: %s", perr);
    }
    free(text);
}

static void
rel_done(uv_work_t *w, int status)
{
    struct rel_work *rw = w->data;
    struct ctl *ctl = rw->ctl;
    Drover__ReleaseCreateReq *r = rw->m->release_create_req;
    struct api_req q = {.ctl = ctl, .what = "release_create", .rep = DROVER__MESSAGE__INIT};
    struct ctl_ptype *types = NULL;
    struct ctl_release *rel = NULL;
    struct ctl_app *a;
    char desc[CTL_DESCRIPTION_MAX + 1];
    size_t i;

    q.ar = ctl_arena_new();
    if (status < 0 || q.ar == NULL) {
        fail(&q, DROVER__ERROR_CODE__ERR_UNAVAILABLE, "cancelled");
        goto reply;
    }
    if (rw->rc < 0) {
        fail(&q, DROVER__ERROR_CODE__ERR_BAD_REQUEST, "%s", rw->err);
        goto reply;
    }
    a = find_app(&q, r->app); /* looked up again: the loop ran meanwhile */
    if (a == NULL)
        goto reply;
    types = calloc(rw->pf.n + 1, sizeof(*types));
    if (types == NULL) {
        oom(&q);
        goto reply;
    }
    for (i = 0; i < rw->pf.n; i++) {
        snprintf(types[i].name, sizeof(types[i].name), "%s", rw->pf.entries[i].type);
        types[i].command = rw->pf.entries[i].command;
    }
    if (r->description[0] != '\0')
        snprintf(desc, sizeof(desc), "%s", r->description);
    else
        snprintf(desc, sizeof(desc), "Deploy %.12s", r->slug_sha256);
    if (release_make(ctl, a, r->slug_sha256, rw->size, desc, types, rw->pf.n, a->config, a->nconfig,
                     &rel) < 0) {
        oom(&q);
        goto reply;
    }
    release_rep(&q, rel);
reply:
    if (q.code != DROVER__ERROR_CODE__ERR_NONE) {
        log_warn("bad_request", "sock=api msg=release_create reason=%s", log_q(q.err));
        ctl_reply_error(ctl, rw->req, q.code, "%s", q.err);
    } else if (ctl_commit(ctl) < 0) {
        ctl_reply_error(ctl, rw->req, DROVER__ERROR_CODE__ERR_INTERNAL, "store failure");
    } else {
        ctl_reply(ctl, rw->req, &q.rep);
    }
    free(types);
    ctl_arena_free(q.ar);
    procfile_fini(&rw->pf);
    wire_msg_free(rw->m);
    free(rw);
    ctl_work_done(ctl);
}

/* Takes ownership of req and m when it returns API_ASYNC. */
static int
api_release_create(struct api_req *q, struct nnuv_msg *req, Drover__Message *m)
{
    const Drover__ReleaseCreateReq *r = m->release_create_req;
    struct ctl_app *a = find_app(q, r->app);
    struct rel_work *rw;
    uint64_t size = 0;
    int rc;

    if (a == NULL)
        return -1;
    if (!str_ok(r->slug_sha256, 64) || !slug_sha_valid(r->slug_sha256))
        return fail(q, DROVER__ERROR_CODE__ERR_BAD_REQUEST,
                    "slug sha256 must be 64 lowercase hex characters");
    if (!str_ok(r->description, CTL_DESCRIPTION_MAX))
        return fail(q, DROVER__ERROR_CODE__ERR_BAD_REQUEST, "description is longer than %d bytes",
                    CTL_DESCRIPTION_MAX);
    if (ctl_slug_stat(q->ctl->slugs, r->slug_sha256, &size) < 0)
        return fail(q, DROVER__ERROR_CODE__ERR_NOT_FOUND, "no slug %s; upload it first",
                    r->slug_sha256);
    rw = calloc(1, sizeof(*rw));
    if (rw == NULL)
        return oom(q);
    rw->ctl = q->ctl;
    rw->req = req;
    rw->m = m;
    rw->size = size;
    ctl_slug_path(q->ctl->slugs, r->slug_sha256, rw->path, sizeof(rw->path));
    rw->work.data = rw;
    rc = uv_queue_work(q->ctl->loop, &rw->work, rel_work, rel_done);
    if (rc < 0) {
        free(rw);
        return fail(q, DROVER__ERROR_CODE__ERR_INTERNAL, "cannot queue work: %s", uv_strerror(rc));
    }
    q->ctl->inflight++;
    return API_ASYNC;
}

/* ---- dispatch ---- */

void
ctl_api_handle(struct ctl *ctl, struct nnuv_msg *req, Drover__Message *m)
{
    struct api_req q = {.ctl = ctl, .what = "?", .rep = DROVER__MESSAGE__INIT};
    int rc;

    switch (m->body_case) {
    case DROVER__MESSAGE__BODY_SLUG_PUT_REQ:
        ctl_slugs_put(ctl->slugs, req, m); /* each takes req and m */
        return;
    case DROVER__MESSAGE__BODY_LOGS_REQ:
        ctl_logs_request(ctl->logs, req, m);
        return;
    case DROVER__MESSAGE__BODY_RUN_REQ:
        ctl_runs_run(ctl->runs, req, m);
        return;
    case DROVER__MESSAGE__BODY_RUN_IO_REQ:
        ctl_runs_io(ctl->runs, req, m);
        return;
    case DROVER__MESSAGE__BODY_ENDPOINTS_REQ:
        ctl_endpoints_request(ctl->endpoints, req, m);
        return;
    case DROVER__MESSAGE__BODY_DRAINS_REQ:
    case DROVER__MESSAGE__BODY_DRAIN_ADD_REQ:
    case DROVER__MESSAGE__BODY_DRAIN_REMOVE_REQ:
        ctl_drains_request(ctl, req, m);
        return;
    case DROVER__MESSAGE__BODY_RESTART_REQ:
    case DROVER__MESSAGE__BODY_PS_STOP_REQ:
    case DROVER__MESSAGE__BODY_APP_DESTROY_REQ:
    case DROVER__MESSAGE__BODY_NODE_REMOVE_REQ:
        ctl_lifecycle_handle(ctl, req, m);
        return;
    default:
        break;
    }
    q.ar = ctl_arena_new();
    if (q.ar == NULL) {
        ctl_reply_error(ctl, req, DROVER__ERROR_CODE__ERR_INTERNAL, "out of memory");
        wire_msg_free(m);
        return;
    }
    switch (m->body_case) {
    case DROVER__MESSAGE__BODY_APPS_REQ:
        q.what = "apps";
        rc = api_apps(&q, m->apps_req);
        break;
    case DROVER__MESSAGE__BODY_APP_CREATE_REQ:
        q.what = "app_create";
        rc = api_app_create(&q, m->app_create_req);
        break;
    case DROVER__MESSAGE__BODY_CONFIG_REQ:
        q.what = "config";
        rc = api_config(&q, m->config_req);
        break;
    case DROVER__MESSAGE__BODY_CONFIG_SET_REQ:
        q.what = "config_set";
        rc = api_config_set(&q, m->config_set_req);
        break;
    case DROVER__MESSAGE__BODY_CONFIG_UNSET_REQ:
        q.what = "config_unset";
        rc = api_config_unset(&q, m->config_unset_req);
        break;
    case DROVER__MESSAGE__BODY_RELEASE_CREATE_REQ:
        q.what = "release_create";
        rc = api_release_create(&q, req, m);
        break;
    case DROVER__MESSAGE__BODY_RELEASES_REQ:
        q.what = "releases";
        rc = api_releases(&q, m->releases_req);
        break;
    case DROVER__MESSAGE__BODY_SCALE_REQ:
        q.what = "scale";
        rc = api_scale(&q, m->scale_req);
        break;
    case DROVER__MESSAGE__BODY_PS_REQ:
        q.what = "ps";
        rc = api_ps(&q, m->ps_req);
        break;
    case DROVER__MESSAGE__BODY_NODES_REQ:
        q.what = "nodes";
        rc = api_nodes(&q, m->nodes_req);
        break;
    case DROVER__MESSAGE__BODY_NODE_STATE_REQ:
        q.what = "node_state";
        rc = api_node_state(&q, m->node_state_req);
        break;
    case DROVER__MESSAGE__BODY_STATUS_REQ:
        q.what = "status";
        rc = api_status(&q, m->status_req);
        break;
    case DROVER__MESSAGE__BODY_ROLLBACK_REQ:
        q.what = "rollback";
        rc = api_rollback(&q, m->rollback_req);
        break;
    case DROVER__MESSAGE__BODY_SETTINGS_REQ:
        q.what = "settings";
        rc = api_settings(&q, m->settings_req);
        break;
    case DROVER__MESSAGE__BODY_SETTINGS_SET_REQ:
        q.what = "settings_set";
        rc = api_settings_set(&q, m->settings_set_req);
        break;
    case DROVER__MESSAGE__BODY_DEPLOY_REQ:
        q.what = "deploy";
        rc = api_deploy(&q, m->deploy_req);
        break;
    default:
        log_warn("bad_message", "sock=api reason=unexpected_type type=%d", (int)m->body_case);
        rc = fail(&q, DROVER__ERROR_CODE__ERR_BAD_REQUEST,
                  "message type %d is not handled on the API endpoint", (int)m->body_case);
        break;
    }
    if (rc == API_ASYNC) {
        ctl_arena_free(q.ar);
        return;
    }
    if (rc < 0) {
        log_warn("bad_request", "sock=api msg=%s reason=%s", q.what, log_q(q.err));
        ctl_reply_error(ctl, req, q.code, "%s", q.err);
    } else if (ctl_commit(ctl) < 0) {
        ctl_reply_error(ctl, req, DROVER__ERROR_CODE__ERR_INTERNAL, "store failure");
    } else {
        ctl_reply(ctl, req, &q.rep);
    }
    ctl_arena_free(q.ar);
    wire_msg_free(m);
}

static void
api_recv(struct nnuv *s, struct nnuv_msg *req, void *arg)
{
    struct ctl *ctl = arg;
    Drover__Message *m;

    if (ctl->stopping) {
        nnuv_msg_free(req);
        return;
    }
    m = ctl_open(ctl, req, "api");
    if (m == NULL)
        return;
    /* HA (issue 16): a standby answers ERR_NOT_LEADER. To move into the
     * dispatcher (ctl_call) when the one request path lands. */
    if (!ctl_leader_acting(ctl->leader)) {
        wire_msg_free(m);
        ctl_leader_refuse(ctl, req, true);
        return;
    }
    ctl_api_handle(ctl, req, m);
}

int
ctl_api_start(struct ctl *ctl)
{
    int rc = 0;

    ctl->api = nnuv_new(ctl->loop, AF_SP_RAW, NN_REP, api_recv, ctl, &rc);
    if (ctl->api == NULL)
        return rc;
    if ((rc = nnuv_bind(ctl->api, ctl->cfg.api_listen)) < 0) {
        log_error("bind_failed", "endpoint=%s err=%s", ctl->cfg.api_listen, strerror(-rc));
        return rc;
    }
    return nnuv_start(ctl->api);
}

void
ctl_api_stop(struct ctl *ctl)
{
    if (ctl->api != NULL)
        nnuv_stop(ctl->api);
}
