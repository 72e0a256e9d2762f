/* SPDX-License-Identifier: MIT */
/*
 * releases.c: the rules that make releases, over the model alone: a new
 * release from a slug and its Procfile's types, a config change after the
 * first deploy, a rollback, and a scale of the formation. Handlers
 * (api.c) validate a request and call these; unit tests call them directly.
 * Nothing here does I/O: events go through the model's hook, and the apps
 * changed are flagged for the settle before the next commit (the one way
 * reconciliation is triggered).
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
 *     vN+1 with the same slug and types.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "log.h"

/* A release object not yet in the model, from spec (copied). */
static struct ctl_release *
release_build(const struct ctl_app *a, const struct ctl_release_spec *spec, uint64_t now)
{
    struct ctl_release *r = ctl_release_new();
    size_t i;

    if (r == NULL)
        return NULL;
    r->version = (uint32_t)a->nreleases + 1;
    snprintf(r->slug_sha256, sizeof(r->slug_sha256), "%s", spec->slug_sha256);
    r->slug_size = spec->slug_size;
    r->created_ms = now;
    strcpy(r->status, "deploying");
    r->description = strdup(spec->description);
    r->types = calloc(spec->ntypes + 1, sizeof(*r->types));
    if (r->description == NULL || r->types == NULL)
        goto fail;
    for (i = 0; i < spec->ntypes; i++) {
        strcpy(r->types[i].name, spec->types[i].name);
        r->types[i].command = strdup(spec->types[i].command);
        if (r->types[i].command == NULL)
            goto fail;
        r->ntypes++;
    }
    if (ctl_kv_copy(spec->config, spec->nconfig, &r->config) < 0)
        goto fail;
    r->nconfig = spec->nconfig;
    return r;
fail:
    ctl_release_free(r);
    return NULL;
}

/* Formation rows for the release's new types: web=1 on an app's first. */
static int
formation_for(struct ctl_app *a, const struct ctl_release *r)
{
    bool had_formation = a->nformation > 0;
    int rc;

    for (size_t i = 0; i < r->ntypes; i++) {
        const char *type = r->types[i].name;

        if (ctl_formation_find(a, type) != NULL)
            continue;
        rc = ctl_formation_add(a, type, !had_formation && strcmp(type, "web") == 0 ? 1 : 0, NULL);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int
ctl_release_make(struct ctl_model *m, struct ctl_app *a, const struct ctl_release_spec *spec,
                 uint64_t now, struct ctl_release **out)
{
    struct ctl_release *r = release_build(a, spec, now);
    int rc = -ENOMEM;

    if (r == NULL)
        return -ENOMEM;
    ctl_app_touch(m, a, true, false, true); /* before any write (undo.c) */
    if ((rc = ctl_config_replace(m, a, spec->config, spec->nconfig)) < 0 ||
        (rc = formation_for(a, r)) < 0 || (rc = ctl_release_append(a, r)) < 0) {
        ctl_release_free(r);
        return rc;
    }
    log_info("release_created", "app=%s version=%u slug=%s types=%zu description=%s", a->name,
             r->version, r->slug_sha256, r->ntypes, log_q(r->description));
    ctl_model_event(m, a->name, "release v%u created: %s", r->version, r->description);
    *out = r;
    if (ctl_relphase_wanted(r)) {               /* current once its release phase succeeded */
        ctl_relphase_start(m, a, r, mono_ms()); /* deadlines: monotonic */
        return 0;
    }
    ctl_app_set_current(m, a, r->version);
    ctl_deploy_start(m, a, mono_ms());
    ctl_app_want_reconcile(m, a); /* rolled out by the settle before the commit */
    return 0;
}

int
ctl_release_for_config(struct ctl_model *m, struct ctl_app *a, const char *desc, uint64_t now,
                       struct ctl_release **out)
{
    const struct ctl_release *cur = ctl_release_current(a);
    struct ctl_release_spec spec;

    *out = NULL;
    if (cur == NULL)
        return 0;
    spec = (struct ctl_release_spec){cur->slug_sha256, cur->slug_size, desc,      cur->types,
                                     cur->ntypes,      a->config,      a->nconfig};
    return ctl_release_make(m, a, &spec, now, out);
}

void
ctl_config_description(char *out, size_t outsz, const char *verb, char *const *keys, size_t n)
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

int
ctl_rollback_target(const struct ctl_app *a, uint32_t version, const struct ctl_release **to,
                    char *err, size_t errsz)
{
    *to = NULL;
    if (a->nreleases == 0)
        return snprintf(err, errsz, "app %s has no release yet", a->name), -EAGAIN;
    if (version == 0) {
        for (uint32_t v = a->current > 0 ? a->current - 1 : (uint32_t)a->nreleases;
             v > 0 && *to == NULL; v--) {
            const struct ctl_release *x = ctl_release_get(a, v);

            if (strcmp(x->status, "succeeded") == 0)
                *to = x;
        }
        if (*to == NULL)
            return snprintf(err, errsz, "no succeeded release before v%u to roll back to",
                            a->current),
                   -ENOENT;
        return 0;
    }
    if ((*to = ctl_release_get(a, version)) == NULL)
        return snprintf(err, errsz, "no release v%u (the newest is v%zu)", version, a->nreleases),
               -ENOENT;
    if ((*to)->version == a->current)
        return snprintf(err, errsz, "v%u is the current release already", version), -EEXIST;
    return 0;
}

int
ctl_release_rollback(struct ctl_model *m, struct ctl_app *a, const struct ctl_release *to,
                     uint64_t now, struct ctl_release **out)
{
    char desc[64];
    struct ctl_release_spec spec = {to->slug_sha256, to->slug_size, desc,       to->types,
                                    to->ntypes,      to->config,    to->nconfig};

    snprintf(desc, sizeof(desc), "Rollback to v%u", to->version);
    return ctl_release_make(m, a, &spec, now, out);
}

int
ctl_app_scale(struct ctl_model *m, struct ctl_app *a, const struct ctl_scale *v, size_t n,
              char *what, size_t whatsz)
{
    struct ctl_formation *f;
    size_t i, len = 0;

    ctl_app_touch(m, a, false, false, true); /* before any write (undo.c) */
    /* Reserve first so that applying cannot fail half way. */
    for (i = 0; i < n; i++) {
        if (ctl_formation_find(a, v[i].type) == NULL &&
            ctl_formation_add(a, v[i].type, 0, NULL) < 0)
            return -ENOMEM;
    }
    what[0] = '\0';
    for (i = 0; i < n; i++) {
        f = ctl_formation_find(a, v[i].type);
        ctl_formation_set_quantity(m, a, f, v[i].quantity);
        if (len < whatsz)
            len += (size_t)snprintf(what + len, whatsz - len, " %s=%u", f->type, f->quantity);
    }
    log_info("scaled", "app=%s%s", a->name, what);
    ctl_model_event(m, a->name, "scaled%s", what);
    ctl_app_want_reconcile(m, a);
    return 0;
}
