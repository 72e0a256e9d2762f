/* SPDX-License-Identifier: MIT */
/*
 * api.c: the handlers of the CLI's requests about apps, config, releases,
 * formation, processes, nodes and status (dispatch.c's table names each).
 *
 * A handler validates every field first and either fills the reply or
 * refuses with ctl_fail (a code and one line for a person); the rules it
 * applies are the core files' (releases.c, nodes.c). The dispatcher then
 * commits the model's changes to the store and only then replies, so an
 * acknowledged change is never lost. Replies are built in the call's arena
 * (arena.c) and borrow strings from the model.
 *
 * Release creation reads and parses the slug's Procfile in the thread pool:
 * it is pending meanwhile, and ends through ctl_call_end.
 *
 * An unset of a config key that is not set is refused (ERR_NOT_FOUND) and
 * makes no release; releases.c says the rest of what config changes do.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "log.h"
#include "procfile.h"
#include "slug.h"

#define SCALE_ENTRIES_MAX PROCFILE_MAX_TYPES

/* ---- reply builders ---- */

static Drover__FormationEntry **
formation_entries(struct ctl_call *c, const struct ctl_app *a, size_t *n)
{
    const struct ctl_release *rel = ctl_release_current(a);
    Drover__FormationEntry **v;
    size_t i;

    *n = 0;
    if (rel == NULL)
        return NULL;
    v = ctl_arena_alloc(c->ar, (rel->ntypes + 1) * sizeof(*v));
    if (v == NULL)
        return NULL;
    for (i = 0; i < rel->ntypes; i++) {
        const struct ctl_formation *f = ctl_formation_find(a, rel->types[i].name);
        Drover__FormationEntry *e;

        if (strcmp(rel->types[i].name, ctl_release_type_name) == 0)
            continue; /* the release phase: never in the formation */
        if ((e = ctl_arena_alloc(c->ar, sizeof(*e))) == NULL)
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
app_info(struct ctl_call *c, const struct ctl_app *a)
{
    Drover__AppInfo *ai = ctl_arena_alloc(c->ar, sizeof(*ai));

    if (ai == NULL)
        return NULL;
    drover__app_info__init(ai);
    ai->name = (char *)a->name;
    ai->release = a->current;
    ai->created_ms = a->created_ms;
    ai->formation = formation_entries(c, a, &ai->n_formation);
    if (ai->formation == NULL && a->current != 0)
        return NULL;
    return ai;
}

static Drover__KeyValue **
kv_list(struct ctl_call *c, const struct ctl_kv *kv, size_t n)
{
    Drover__KeyValue **v = ctl_arena_alloc(c->ar, (n + 1) * sizeof(*v));
    Drover__KeyValue *e = ctl_arena_alloc(c->ar, (n + 1) * sizeof(*e));
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
release_info(struct ctl_call *c, const struct ctl_release *r)
{
    Drover__ReleaseInfo *ri = ctl_arena_alloc(c->ar, sizeof(*ri));
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
    ri->config = kv_list(c, r->config, r->nconfig);
    ri->n_config = r->nconfig;
    ri->types = ctl_arena_alloc(c->ar, (r->ntypes + 1) * sizeof(*ri->types));
    pt = ctl_arena_alloc(c->ar, (r->ntypes + 1) * sizeof(*pt));
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
config_rep(struct ctl_call *c, const struct ctl_app *a)
{
    Drover__ConfigRep *cr = ctl_arena_alloc(c->ar, sizeof(*cr));

    if (cr == NULL)
        return ctl_oom(c);
    drover__config_rep__init(cr);
    cr->app = (char *)a->name;
    cr->vars = kv_list(c, a->config, a->nconfig);
    cr->n_vars = a->nconfig;
    cr->release = a->current;
    if (cr->vars == NULL)
        return ctl_oom(c);
    c->rep.body_case = DROVER__MESSAGE__BODY_CONFIG_REP;
    c->rep.config_rep = cr;
    return 0;
}

static int
release_rep(struct ctl_call *c, const struct ctl_release *rel)
{
    Drover__ReleaseRep *rr = ctl_arena_alloc(c->ar, sizeof(*rr));

    if (rr == NULL)
        return ctl_oom(c);
    drover__release_rep__init(rr);
    rr->release = release_info(c, rel);
    if (rr->release == NULL)
        return ctl_oom(c);
    c->rep.body_case = DROVER__MESSAGE__BODY_RELEASE_REP;
    c->rep.release_rep = rr;
    return 0;
}

/* A new release was made (or is waiting for its release phase): older
 * slugs may go now, if it is current; failures are only logged. */
static void
released(struct ctl_call *c, struct ctl_app *a, const struct ctl_release *rel)
{
    if (rel != NULL && a->current == rel->version)
        ctl_slugs_gc(c->ctl);
}

/* A config change after the first deploy: same slug and types, new config. */
static int
release_for_config(struct ctl_call *c, struct ctl_app *a, const char *desc)
{
    struct ctl_release *rel;

    if (ctl_release_for_config(c->ctl->model, a, desc, now_ms(), &rel) < 0)
        return ctl_oom(c);
    released(c, a, rel);
    return 0;
}

/* ---- handlers ---- */

int
ctl_h_apps(struct ctl_call *c)
{
    const Drover__AppsReq *r = c->req->apps_req;
    Drover__AppsRep *ar = ctl_arena_alloc(c->ar, sizeof(*ar));
    struct ctl_app **apps;
    size_t n = 0, i;
    int rc = 0;

    (void)r;
    if (ar == NULL)
        return ctl_oom(c);
    drover__apps_rep__init(ar);
    apps = ctl_apps_sorted(c->ctl->model, &n);
    if (apps == NULL)
        return ctl_oom(c);
    ar->apps = ctl_arena_alloc(c->ar, (n + 1) * sizeof(*ar->apps));
    if (ar->apps == NULL)
        rc = ctl_oom(c);
    for (i = 0; rc == 0 && i < n; i++) {
        ar->apps[i] = app_info(c, apps[i]);
        if (ar->apps[i] == NULL)
            rc = ctl_oom(c);
    }
    free(apps);
    ar->n_apps = n;
    c->rep.body_case = DROVER__MESSAGE__BODY_APPS_REP;
    c->rep.apps_rep = ar;
    return rc;
}

int
ctl_h_app_create(struct ctl_call *c)
{
    const Drover__AppCreateReq *r = c->req->app_create_req;
    struct ctl_app *a;
    Drover__AppRep *rep;

    if (!ctl_str_ok(r->app, APP_NAME_MAX) || !name_app_valid(r->app))
        return ctl_fail(c, DROVER__ERROR_CODE__ERR_BAD_REQUEST,
                        "invalid app name (want [a-z][a-z0-9-], at most 30 characters)");
    if ((a = ctl_app_find(c->ctl->model, r->app)) != NULL && a->destroying)
        return ctl_fail(c, DROVER__ERROR_CODE__ERR_UNAVAILABLE,
                        "app %s is being destroyed; try again once its processes have stopped",
                        r->app);
    if (a != NULL)
        return ctl_fail(c, DROVER__ERROR_CODE__ERR_CONFLICT, "app %s already exists", r->app);
    if (ctl_app_add(c->ctl->model, r->app, now_ms(), &a) < 0)
        return ctl_oom(c);
    ctl_destroy_unforget(c->ctl->model, a->name);
    log_info("app_created", "app=%s", a->name);
    rep = ctl_arena_alloc(c->ar, sizeof(*rep));
    if (rep == NULL)
        return ctl_oom(c);
    drover__app_rep__init(rep);
    rep->app = app_info(c, a);
    c->rep.body_case = DROVER__MESSAGE__BODY_APP_REP;
    c->rep.app_rep = rep;
    return 0;
}

int
ctl_h_config(struct ctl_call *c)
{
    const Drover__ConfigReq *r = c->req->config_req;
    struct ctl_app *a = ctl_call_app(c, r->app);

    return a == NULL ? -1 : config_rep(c, a);
}

int
ctl_h_config_set(struct ctl_call *c)
{
    const Drover__ConfigSetReq *r = c->req->config_set_req;
    struct ctl_app *a = ctl_call_app(c, r->app);
    char desc[CTL_DESCRIPTION_MAX + 1];
    char **keys;
    size_t i, j, added = 0;

    if (a == NULL)
        return -1;
    if (r->n_vars == 0 || r->n_vars > CONFIG_MAX_VARS)
        return ctl_fail(c, DROVER__ERROR_CODE__ERR_BAD_REQUEST, "give 1..%d config vars",
                        CONFIG_MAX_VARS);
    for (i = 0; i < r->n_vars; i++) {
        const Drover__KeyValue *kv = r->vars[i];

        if (kv == NULL || !ctl_str_ok(kv->key, CONFIG_KEY_MAX) || !name_config_key_valid(kv->key))
            return ctl_fail(c, DROVER__ERROR_CODE__ERR_BAD_REQUEST,
                            "invalid config key (want [A-Za-z_][A-Za-z0-9_]*, at most %d)",
                            CONFIG_KEY_MAX);
        if (name_config_key_reserved(kv->key) != NULL)
            return ctl_fail(c, DROVER__ERROR_CODE__ERR_BAD_REQUEST, "%s cannot be set: %s", kv->key,
                            name_config_key_reserved(kv->key));
        if (!ctl_str_ok(kv->value, CONFIG_VALUE_MAX))
            return ctl_fail(c, DROVER__ERROR_CODE__ERR_BAD_REQUEST,
                            "value of %s is longer than %d bytes", kv->key, CONFIG_VALUE_MAX);
        for (j = 0; j < i; j++) {
            if (strcmp(r->vars[j]->key, kv->key) == 0)
                return ctl_fail(c, DROVER__ERROR_CODE__ERR_BAD_REQUEST, "%s is given twice",
                                kv->key);
        }
        if (ctl_config_find(a, kv->key) == NULL)
            added++;
    }
    if (a->nconfig + added > CONFIG_MAX_VARS)
        return ctl_fail(c, DROVER__ERROR_CODE__ERR_BAD_REQUEST, "an app has at most %d config vars",
                        CONFIG_MAX_VARS);
    keys = ctl_arena_alloc(c->ar, r->n_vars * sizeof(*keys));
    if (keys == NULL)
        return ctl_oom(c);
    ctl_app_touch(c->ctl->model, a, false, true, false); /* before any write (undo.c) */
    for (i = 0; i < r->n_vars; i++) {
        if (ctl_config_set(a, r->vars[i]->key, r->vars[i]->value) < 0)
            return ctl_oom(c);
        keys[i] = r->vars[i]->key;
    }
    ctl_config_description(desc, sizeof(desc), "Set", keys, r->n_vars);
    log_info("config_set", "app=%s count=%zu", a->name, r->n_vars);
    if (release_for_config(c, a, desc) < 0)
        return -1;
    return config_rep(c, a);
}

int
ctl_h_config_unset(struct ctl_call *c)
{
    const Drover__ConfigUnsetReq *r = c->req->config_unset_req;
    struct ctl_app *a = ctl_call_app(c, r->app);
    char desc[CTL_DESCRIPTION_MAX + 1];
    char **keys;
    size_t i, removed = 0;

    if (a == NULL)
        return -1;
    if (r->n_keys == 0 || r->n_keys > CONFIG_MAX_VARS)
        return ctl_fail(c, DROVER__ERROR_CODE__ERR_BAD_REQUEST, "give 1..%d config keys",
                        CONFIG_MAX_VARS);
    for (i = 0; i < r->n_keys; i++) {
        if (!ctl_str_ok(r->keys[i], CONFIG_KEY_MAX) || !name_config_key_valid(r->keys[i]))
            return ctl_fail(c, DROVER__ERROR_CODE__ERR_BAD_REQUEST,
                            "invalid config key (want [A-Za-z_][A-Za-z0-9_]*, at most %d)",
                            CONFIG_KEY_MAX);
    }
    /* A key that is not set is a mistake (a typo, most likely): refused
     * with nothing changed, even when others in the request are set. */
    for (i = 0; i < r->n_keys; i++) {
        if (ctl_config_find(a, r->keys[i]) == NULL)
            return ctl_fail(c, DROVER__ERROR_CODE__ERR_NOT_FOUND,
                            "%s is not set on %s (nothing was changed)", r->keys[i], a->name);
    }
    keys = ctl_arena_alloc(c->ar, r->n_keys * sizeof(*keys));
    if (keys == NULL)
        return ctl_oom(c);
    ctl_app_touch(c->ctl->model, a, false, true, false); /* before any write (undo.c) */
    for (i = 0; i < r->n_keys; i++) {
        if (ctl_config_unset(a, r->keys[i]))
            keys[removed++] = r->keys[i];
    }
    if (removed > 0) {
        ctl_config_description(desc, sizeof(desc), "Remove", keys, removed);
        log_info("config_unset", "app=%s count=%zu", a->name, removed);
        if (release_for_config(c, a, desc) < 0)
            return -1;
    }
    return config_rep(c, a);
}

int
ctl_h_releases(struct ctl_call *c)
{
    const Drover__ReleasesReq *r = c->req->releases_req;
    struct ctl_app *a = ctl_call_app(c, r->app);
    Drover__ReleasesRep *rr;
    size_t i;

    if (a == NULL)
        return -1;
    rr = ctl_arena_alloc(c->ar, sizeof(*rr));
    if (rr == NULL)
        return ctl_oom(c);
    drover__releases_rep__init(rr);
    rr->releases = ctl_arena_alloc(c->ar, (a->nreleases + 1) * sizeof(*rr->releases));
    if (rr->releases == NULL)
        return ctl_oom(c);
    /* Newest first, as people read them. */
    for (i = 0; i < a->nreleases; i++) {
        rr->releases[i] = release_info(c, a->releases[a->nreleases - 1 - i]);
        if (rr->releases[i] == NULL)
            return ctl_oom(c);
    }
    rr->n_releases = a->nreleases;
    rr->current = a->current;
    c->rep.body_case = DROVER__MESSAGE__BODY_RELEASES_REP;
    c->rep.releases_rep = rr;
    return 0;
}

/* "web, worker" into an arena string. */
static const char *
type_list(struct ctl_call *c, const struct ctl_release *rel)
{
    size_t len = 1, i;
    char *s;

    for (i = 0; i < rel->ntypes; i++)
        len += strlen(rel->types[i].name) + 2;
    s = ctl_arena_alloc(c->ar, len);
    if (s == NULL)
        return "";
    for (i = 0; i < rel->ntypes; i++) {
        if (i)
            strcat(s, ", ");
        strcat(s, rel->types[i].name);
    }
    return s;
}

/* Every entry of a scale request is usable, else -1 with why. */
static int
scale_check(struct ctl_call *c, const struct ctl_app *a, const struct ctl_release *rel,
            const Drover__ScaleReq *r)
{
    size_t i, j;

    if (r->n_entries == 0 || r->n_entries > SCALE_ENTRIES_MAX)
        return ctl_fail(c, DROVER__ERROR_CODE__ERR_BAD_REQUEST, "give 1..%d TYPE=N",
                        SCALE_ENTRIES_MAX);
    for (i = 0; i < r->n_entries; i++) {
        const Drover__FormationEntry *e = r->entries[i];

        if (e == NULL || !ctl_str_ok(e->type, TYPE_NAME_MAX) || !name_type_valid(e->type))
            return ctl_fail(c, DROVER__ERROR_CODE__ERR_BAD_REQUEST,
                            "invalid process type (want letters, digits, '-' or '_', at most 30)");
        if (strcmp(e->type, ctl_release_type_name) == 0)
            return ctl_fail(c, DROVER__ERROR_CODE__ERR_BAD_REQUEST,
                            "release is not a formation type: its command runs once per new "
                            "release, before the release starts (run it by hand with: drover run "
                            "%s --type release)",
                            a->name);
        if (ctl_release_type(rel, e->type) == NULL)
            return ctl_fail(c, DROVER__ERROR_CODE__ERR_NOT_FOUND,
                            "no process type '%s' in v%u (types: %s)", e->type, rel->version,
                            type_list(c, rel));
        if (e->quantity < 0 || e->quantity > CTL_QUANTITY_MAX)
            return ctl_fail(c, DROVER__ERROR_CODE__ERR_BAD_REQUEST,
                            "quantity for %s must be 0..%d, not %d", e->type, CTL_QUANTITY_MAX,
                            e->quantity);
        for (j = 0; j < i; j++) {
            if (strcmp(r->entries[j]->type, e->type) == 0)
                return ctl_fail(c, DROVER__ERROR_CODE__ERR_BAD_REQUEST, "%s is given twice",
                                e->type);
        }
    }
    return 0;
}

int
ctl_h_scale(struct ctl_call *c)
{
    const Drover__ScaleReq *r = c->req->scale_req;
    struct ctl_app *a = ctl_call_app(c, r->app);
    const struct ctl_release *rel;
    struct ctl_scale *v;
    Drover__ScaleRep *sr;
    char what[512];

    if (a == NULL)
        return -1;
    if ((rel = ctl_release_current(a)) == NULL)
        return ctl_fail(c, DROVER__ERROR_CODE__ERR_UNAVAILABLE,
                        "app %s has no release yet; deploy first", a->name);
    if (scale_check(c, a, rel, r) < 0)
        return -1;
    if ((v = ctl_arena_alloc(c->ar, r->n_entries * sizeof(*v))) == NULL)
        return ctl_oom(c);
    for (size_t i = 0; i < r->n_entries; i++) {
        v[i].type = r->entries[i]->type;
        v[i].quantity = (uint32_t)r->entries[i]->quantity;
    }
    if (ctl_app_scale(c->ctl->model, a, v, r->n_entries, what, sizeof(what)) < 0)
        return ctl_oom(c);
    if ((sr = ctl_arena_alloc(c->ar, sizeof(*sr))) == NULL)
        return ctl_oom(c);
    drover__scale_rep__init(sr);
    sr->formation = formation_entries(c, a, &sr->n_formation);
    c->rep.body_case = DROVER__MESSAGE__BODY_SCALE_REP;
    c->rep.scale_rep = sr;
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

int
ctl_h_ps(struct ctl_call *c)
{
    const Drover__PsReq *r = c->req->ps_req;
    struct ctl_app *a = ctl_call_app(c, r->app);
    struct ctl_instance **v, *in;
    Drover__InstanceInfo *ii;
    Drover__PsRep *pr;
    size_t n = 0, i;

    if (a == NULL)
        return -1;
    pr = ctl_arena_alloc(c->ar, sizeof(*pr));
    v = ctl_arena_alloc(c->ar, (a->ninstances + 1) * sizeof(*v));
    ii = ctl_arena_alloc(c->ar, (a->ninstances + 1) * sizeof(*ii));
    if (pr == NULL || v == NULL || ii == NULL)
        return ctl_oom(c);
    drover__ps_rep__init(pr);
    LIST_FOREACH (in, &a->instances, app_link)
        v[n++] = in;
    qsort(v, n, sizeof(*v), ps_cmp);
    pr->instances = ctl_arena_alloc(c->ar, (n + 1) * sizeof(*pr->instances));
    if (pr->instances == NULL)
        return ctl_oom(c);
    for (i = 0; i < n; i++) {
        if (ctl_view_inst(c->ar, v[i], &ii[i]) < 0)
            return ctl_oom(c);
        pr->instances[i] = &ii[i];
    }
    pr->n_instances = n;
    c->rep.body_case = DROVER__MESSAGE__BODY_PS_REP;
    c->rep.ps_rep = pr;
    return 0;
}

int
ctl_h_nodes(struct ctl_call *c)
{
    const Drover__NodesReq *r = c->req->nodes_req;
    Drover__NodesRep *nr = ctl_arena_alloc(c->ar, sizeof(*nr));

    (void)r;
    if (nr == NULL)
        return ctl_oom(c);
    drover__nodes_rep__init(nr);
    nr->nodes = ctl_view_nodes(c->ar, c->ctl->model, &nr->n_nodes);
    if (nr->nodes == NULL)
        return ctl_oom(c);
    c->rep.body_case = DROVER__MESSAGE__BODY_NODES_REP;
    c->rep.nodes_rep = nr;
    return 0;
}

/*
 * Cordon, uncordon, drain. Draining marks every live instance on the node for
 * eviction: reconcile.c places replacements elsewhere and stops each evicted
 * instance once its replacement is up (ctl_commit runs it before the reply).
 * A node that is down when drained has nothing running to wait for: its lost
 * instances, already replaced, are forgotten.
 */
/* After the commit, whose settle placed the evictions' replacements: the
 * reply counts them. */
static int
node_state_view(struct ctl_call *c)
{
    const struct ctl_node *n = ctl_node_find(c->ctl->model, c->data);
    Drover__NodeRep *nr = ctl_arena_alloc(c->ar, sizeof(*nr));
    Drover__NodeInfo *ni = ctl_arena_alloc(c->ar, sizeof(*ni));

    if (n == NULL)
        return ctl_fail(c, DROVER__ERROR_CODE__ERR_NOT_FOUND, "no node %s", (char *)c->data);
    if (nr == NULL || ni == NULL)
        return ctl_oom(c);
    drover__node_rep__init(nr);
    ctl_view_node(n, ni);
    nr->node = ni;
    c->rep.body_case = DROVER__MESSAGE__BODY_NODE_REP;
    c->rep.node_rep = nr;
    return 0;
}

/* Cordon, uncordon, drain (nodes.c says what each does). */
int
ctl_h_node_state(struct ctl_call *c)
{
    const Drover__NodeStateReq *r = c->req->node_state_req;
    enum ctl_node_state admin;
    struct ctl_node *n;

    if (!ctl_str_ok(r->node, NODE_NAME_MAX) || !name_node_valid(r->node))
        return ctl_fail(
            c, DROVER__ERROR_CODE__ERR_BAD_REQUEST,
            "invalid node name (want [A-Za-z0-9][A-Za-z0-9._-], at most 63 characters)");
    if (!ctl_str_ok(r->state, 16) || ctl_node_state_parse(r->state, &admin) < 0 ||
        admin == CTL_NODE_DOWN)
        return ctl_fail(c, DROVER__ERROR_CODE__ERR_BAD_REQUEST,
                        "node state must be ready, cordoned or draining");
    if ((n = ctl_node_find(c->ctl->model, r->node)) == NULL)
        return ctl_fail(c, DROVER__ERROR_CODE__ERR_NOT_FOUND, "no node %s", r->node);
    ctl_node_set_admin(c->ctl->model, n, admin);
    c->data = r->node;
    c->view = node_state_view;
    return 0;
}

int
ctl_h_status(struct ctl_call *c)
{
    const Drover__StatusReq *r = c->req->status_req;
    Drover__StatusRep *sr = ctl_arena_alloc(c->ar, sizeof(*sr));

    (void)r;
    if (sr == NULL || ctl_view_status(c->ar, c->ctl->model, sr) < 0)
        return ctl_oom(c);
    if (ctl_status_ha(c->ctl, c->ar, sr) < 0)
        return ctl_oom(c);
    c->rep.body_case = DROVER__MESSAGE__BODY_STATUS_REP;
    c->rep.status_rep = sr;
    return 0;
}

/* ---- rolling deploys ---- */

static int
slug_gone(struct ctl_call *c, uint32_t version)
{
    return ctl_fail(c, DROVER__ERROR_CODE__ERR_NOT_FOUND,
                    "the slug of v%u is gone: the controller keeps the slugs of each app's "
                    "last %llu releases (DROVER_SLUGS_KEEP); deploy that code again instead",
                    version, (unsigned long long)c->ctl->cfg.slugs_keep);
}

/* HA: the slug of the release rolled back to is copied from the database in
 * the thread pool; then the rollback is handled again (the loop ran
 * meanwhile), with the slug here. */
struct rb_fetch {
    uv_work_t work;
    struct ctl_call *c;
    char sha[65];
    uint32_t version;
    int rc;
};

static void
rb_fetch_work(uv_work_t *w)
{
    struct rb_fetch *f = w->data;
    uint64_t size;

    f->rc = ctl_slug_fetch(f->c->ctl->slugs, f->sha, &size);
}

static void
rb_fetch_done(uv_work_t *w, int status)
{
    struct rb_fetch *f = w->data;
    struct ctl_call *c = f->c;
    struct ctl *ctl = c->ctl;
    uint32_t version = f->version;
    int rc = f->rc;

    (void)status;
    free(f);
    ctl_work_done(ctl);
    rc = rc < 0 ? slug_gone(c, version) : ctl_h_rollback(c);
    if (rc != CTL_PENDING)
        ctl_call_end(c, rc < 0 ? NULL : &c->rep);
}

static int
rollback_fetch(struct ctl_call *c, const struct ctl_release *to)
{
    struct rb_fetch *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return ctl_oom(c);
    f->c = c;
    f->version = to->version;
    snprintf(f->sha, sizeof(f->sha), "%s", to->slug_sha256);
    f->work.data = f;
    if (uv_queue_work(c->ctl->loop, &f->work, rb_fetch_work, rb_fetch_done) < 0) {
        free(f);
        return ctl_fail(c, DROVER__ERROR_CODE__ERR_INTERNAL, "cannot queue work");
    }
    c->ctl->inflight++;
    return CTL_PENDING;
}

int
ctl_h_rollback(struct ctl_call *c)
{
    const Drover__RollbackReq *r = c->req->rollback_req;
    struct ctl_app *a = ctl_call_app(c, r->app);
    const struct ctl_release *to = NULL;
    struct ctl_release *rel;
    char err[160];
    uint64_t size;
    int rc;

    if (a == NULL)
        return -1;
    rc = ctl_rollback_target(a, r->version, &to, err, sizeof(err));
    if (rc < 0)
        return ctl_fail(c,
                        rc == -EAGAIN   ? DROVER__ERROR_CODE__ERR_UNAVAILABLE
                        : rc == -EEXIST ? DROVER__ERROR_CODE__ERR_CONFLICT
                                        : DROVER__ERROR_CODE__ERR_NOT_FOUND,
                        "%s", err);
    if (ctl_slug_stat(c->ctl->slugs, to->slug_sha256, &size) < 0) {
        if (ctl_slug_maybe_stored(c->ctl->slugs))
            return rollback_fetch(c, to);
        return slug_gone(c, to->version);
    }
    if (ctl_release_rollback(c->ctl->model, a, to, now_ms(), &rel) < 0)
        return ctl_oom(c);
    released(c, a, rel);
    return release_rep(c, rel);
}

static int
api_settings_rep(struct ctl_call *c, const struct ctl_app *a, const char *only)
{
    Drover__SettingsRep *sr = ctl_arena_alloc(c->ar, sizeof(*sr));
    Drover__TypeSettings *ts = ctl_arena_alloc(c->ar, (a->nformation + 1) * sizeof(*ts));
    size_t i, n = 0;

    if (sr == NULL || ts == NULL)
        return ctl_oom(c);
    drover__settings_rep__init(sr);
    sr->app = (char *)a->name;
    sr->types = ctl_arena_alloc(c->ar, (a->nformation + 1) * sizeof(*sr->types));
    if (sr->types == NULL)
        return ctl_oom(c);
    for (i = 0; i < a->nformation; i++) {
        if (only != NULL && strcmp(a->formation[i].type, only) != 0)
            continue;
        drover__type_settings__init(&ts[n]);
        ctl_view_settings(&a->formation[i], &ts[n]);
        sr->types[n] = &ts[n];
        n++;
    }
    sr->n_types = n;
    c->rep.body_case = DROVER__MESSAGE__BODY_SETTINGS_REP;
    c->rep.settings_rep = sr;
    return 0;
}

int
ctl_h_settings(struct ctl_call *c)
{
    const Drover__SettingsReq *r = c->req->settings_req;
    struct ctl_app *a = ctl_call_app(c, r->app);

    return a == NULL ? -1 : api_settings_rep(c, a, NULL);
}

int
ctl_h_settings_set(struct ctl_call *c)
{
    const Drover__SettingsSetReq *r = c->req->settings_set_req;
    struct ctl_app *a = ctl_call_app(c, r->app);
    struct ctl_formation *f, next;
    char err[256], what[512];
    size_t i, len = 0;

    if (a == NULL)
        return -1;
    if (!ctl_str_ok(r->type, TYPE_NAME_MAX) || !name_type_valid(r->type))
        return ctl_fail(c, DROVER__ERROR_CODE__ERR_BAD_REQUEST,
                        "invalid process type (want letters, digits, '-' or '_', at most 30)");
    if ((f = ctl_formation_find(a, r->type)) == NULL)
        return ctl_fail(c, DROVER__ERROR_CODE__ERR_NOT_FOUND,
                        "app %s has no process type '%s' (deploy a Procfile with it first)",
                        a->name, r->type);
    if (r->n_vars == 0 || r->n_vars > 16)
        return ctl_fail(c, DROVER__ERROR_CODE__ERR_BAD_REQUEST, "give 1..16 KEY=VALUE settings");
    next = *f;
    what[0] = '\0';
    for (i = 0; i < r->n_vars; i++) {
        const Drover__KeyValue *kv = r->vars[i];

        if (kv == NULL || !ctl_str_ok(kv->key, 64) || !ctl_str_ok(kv->value, CTL_HEALTH_MAX))
            return ctl_fail(c, DROVER__ERROR_CODE__ERR_BAD_REQUEST,
                            "a setting is missing or too long");
        if (ctl_settings_set(&next, kv->key, kv->value, err, sizeof(err)) < 0)
            return ctl_fail(c, DROVER__ERROR_CODE__ERR_BAD_REQUEST, "%s", err);
        if (len < sizeof(what))
            len += (size_t)snprintf(what + len, sizeof(what) - len, " %s=%s", kv->key, kv->value);
    }
    if (ctl_settings_check(&next, err, sizeof(err)) < 0)
        return ctl_fail(c, DROVER__ERROR_CODE__ERR_BAD_REQUEST, "%s", err);
    ctl_formation_set(c->ctl->model, a, f, &next);
    ctl_app_want_reconcile(c->ctl->model, a); /* a rollout under way takes new batch sizes */
    log_info("settings_set", "app=%s type=%s%s", a->name, f->type, what);
    ctl_model_event(c->ctl->model, a->name, "settings of %s:%s", f->type, what);
    return api_settings_rep(c, a, f->type);
}

int
ctl_h_deploy(struct ctl_call *c)
{
    const Drover__DeployReq *r = c->req->deploy_req;
    struct ctl_app *a = ctl_call_app(c, r->app);
    Drover__DeployRep *dr;
    Drover__DeployInfo *di;

    if (a == NULL)
        return -1;
    dr = ctl_arena_alloc(c->ar, sizeof(*dr));
    di = ctl_arena_alloc(c->ar, sizeof(*di));
    if (dr == NULL || di == NULL)
        return ctl_oom(c);
    drover__deploy_rep__init(dr);
    drover__deploy_info__init(di);
    if (ctl_view_deploy(c->ar, a, di) < 0)
        return ctl_oom(c);
    dr->deploy = di;
    c->rep.body_case = DROVER__MESSAGE__BODY_DEPLOY_REP;
    c->rep.deploy_rep = dr;
    return 0;
}

/* ---- release creation: the Procfile is read off the loop ---- */

struct rel_work {
    uv_work_t work;
    struct ctl_call *c;
    char path[4200];
    char sha[65];
    uint64_t size;
    struct procfile pf;
    int rc;
    bool missing; /* no such slug, here or in the database */
    char err[256];
};

static void
rel_work(uv_work_t *w)
{
    struct rel_work *rw = w->data;
    char *text = NULL, perr[200];
    size_t len = 0;

    if (ctl_slug_fetch(rw->c->ctl->slugs, rw->sha, &rw->size) < 0) {
        rw->rc = -ENOENT;
        rw->missing = true;
        snprintf(rw->err, sizeof(rw->err), "no slug %s; upload it first", rw->sha);
        return;
    }
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

/* Back on the loop: make the release from the parsed Procfile. */
static int
rel_make(struct ctl_call *c, struct rel_work *rw)
{
    const Drover__ReleaseCreateReq *r = c->req->release_create_req;
    struct ctl_release_spec spec;
    struct ctl_release *rel = NULL;
    struct ctl_ptype *types;
    struct ctl_app *a;
    char desc[CTL_DESCRIPTION_MAX + 1];

    if (rw->rc < 0)
        return ctl_fail(c,
                        rw->missing ? DROVER__ERROR_CODE__ERR_NOT_FOUND
                                    : DROVER__ERROR_CODE__ERR_BAD_REQUEST,
                        "%s", rw->err);
    if ((a = ctl_call_app(c, r->app)) == NULL) /* looked up again: the loop ran meanwhile */
        return -1;
    if ((types = ctl_arena_alloc(c->ar, (rw->pf.n + 1) * sizeof(*types))) == NULL)
        return ctl_oom(c);
    for (size_t i = 0; i < rw->pf.n; i++) {
        snprintf(types[i].name, sizeof(types[i].name), "%s", rw->pf.entries[i].type);
        types[i].command = rw->pf.entries[i].command;
    }
    if (r->description[0] != '\0')
        snprintf(desc, sizeof(desc), "%s", r->description);
    else
        snprintf(desc, sizeof(desc), "Deploy %.12s", r->slug_sha256);
    spec = (struct ctl_release_spec){r->slug_sha256, rw->size,  desc,      types,
                                     rw->pf.n,       a->config, a->nconfig};
    if (ctl_release_make(c->ctl->model, a, &spec, now_ms(), &rel) < 0)
        return ctl_oom(c);
    released(c, a, rel);
    return release_rep(c, rel);
}

static void
rel_done(uv_work_t *w, int status)
{
    struct rel_work *rw = w->data;
    struct ctl_call *c = rw->c;
    struct ctl *ctl = c->ctl;

    if (status < 0)
        ctl_call_end_error(c, DROVER__ERROR_CODE__ERR_UNAVAILABLE, "cancelled");
    else
        ctl_call_end(c, rel_make(c, rw) < 0 ? NULL : &c->rep);
    procfile_fini(&rw->pf);
    free(rw);
    ctl_work_done(ctl);
}

int
ctl_h_release_create(struct ctl_call *c)
{
    const Drover__ReleaseCreateReq *r = c->req->release_create_req;
    struct ctl_app *a = ctl_call_app(c, r->app);
    struct rel_work *rw;
    uint64_t size = 0;
    int rc;

    if (a == NULL)
        return -1;
    if (!ctl_str_ok(r->slug_sha256, 64) || !slug_sha_valid(r->slug_sha256))
        return ctl_fail(c, DROVER__ERROR_CODE__ERR_BAD_REQUEST,
                        "slug sha256 must be 64 lowercase hex characters");
    if (!ctl_str_ok(r->description, CTL_DESCRIPTION_MAX))
        return ctl_fail(c, DROVER__ERROR_CODE__ERR_BAD_REQUEST,
                        "description is longer than %d bytes", CTL_DESCRIPTION_MAX);
    /* Not here: with PostgreSQL, maybe in the database (rel_work). */
    if (ctl_slug_stat(c->ctl->slugs, r->slug_sha256, &size) < 0 &&
        !ctl_slug_maybe_stored(c->ctl->slugs))
        return ctl_fail(c, DROVER__ERROR_CODE__ERR_NOT_FOUND, "no slug %s; upload it first",
                        r->slug_sha256);
    if ((rw = calloc(1, sizeof(*rw))) == NULL)
        return ctl_oom(c);
    rw->c = c;
    rw->size = size;
    snprintf(rw->sha, sizeof(rw->sha), "%s", r->slug_sha256);
    ctl_slug_path(c->ctl->slugs, r->slug_sha256, rw->path, sizeof(rw->path));
    rw->work.data = rw;
    rc = uv_queue_work(c->ctl->loop, &rw->work, rel_work, rel_done);
    if (rc < 0) {
        free(rw);
        return ctl_fail(c, DROVER__ERROR_CODE__ERR_INTERNAL, "cannot queue work: %s",
                        uv_strerror(rc));
    }
    c->ctl->inflight++;
    return CTL_PENDING;
}
