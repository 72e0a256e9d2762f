/* SPDX-License-Identifier: MIT */
/*
 * slugs_gc.c: the slug store does not grow without bound.
 *
 * After every new release, the slugs that only old releases use are deleted:
 * an app keeps the slugs of its last DROVER_SLUGS_KEEP releases, of its
 * current release, of its last good one (where a failed deploy rolls back
 * to) and of every release that still has instances; a slug that any kept
 * release of any app uses stays. A slug no release uses at all (an upload on
 * its way to its release) is never touched here. `rollback` to a release
 * whose slug is gone says so (api.c).
 *
 * The plan is made on the loop thread from the model (a pass over the
 * releases); the unlinks run in the thread pool.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "log.h"

struct gc_work {
    uv_work_t w;
    struct ctl *ctl;
    char (*paths)[4200];
    size_t n, removed;
};

/* A growing array of borrowed sha strings. */
struct shas {
    const char **v;
    size_t n, cap;
};

static int
shas_add(struct shas *s, const char *sha)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        const char **v = realloc(s->v, cap * sizeof(*v));

        if (v == NULL)
            return -ENOMEM;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = sha;
    return 0;
}

static int
sha_cmp(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static bool
shas_has(const struct shas *s, const char *sha)
{
    return s->n > 0 && bsearch(&sha, s->v, s->n, sizeof(*s->v), sha_cmp) != NULL;
}

static bool
release_kept(const struct ctl_app *a, const struct ctl_release *r, uint64_t keep)
{
    return r->version + keep > a->nreleases || r->version == a->current || r->version == a->good ||
           r->version == a->deploy.from;
}

/* Every sha a kept release uses, and every other one a release uses. */
static int
classify(struct ctl_model *m, uint64_t keep, struct shas *kept, struct shas *old)
{
    size_t pos = 0;
    struct ctl_app *a;
    const struct ctl_instance *in;

    while ((a = ctl_map_next(m->apps, &pos)) != NULL) {
        for (size_t i = 0; i < a->nreleases; i++) {
            const struct ctl_release *r = a->releases[i];

            if (r != NULL && shas_add(release_kept(a, r, keep) ? kept : old, r->slug_sha256) < 0)
                return -ENOMEM;
        }
        LIST_FOREACH (in, &a->instances, app_link) {
            const struct ctl_release *r = ctl_release_get(a, in->release);

            if (r != NULL && shas_add(kept, r->slug_sha256) < 0)
                return -ENOMEM;
        }
    }
    return 0;
}

static void
gc_run(uv_work_t *w)
{
    struct gc_work *g = w->data;

    for (size_t i = 0; i < g->n; i++)
        if (unlink(g->paths[i]) == 0)
            g->removed++;
}

static void
gc_done(uv_work_t *w, int status)
{
    struct gc_work *g = w->data;

    if (status == 0 && g->removed > 0)
        log_info("slugs_deleted", "count=%zu keep_releases=%llu", g->removed,
                 (unsigned long long)g->ctl->cfg.slugs_keep);
    ctl_work_done(g->ctl);
    free(g->paths);
    free(g);
}

int
ctl_slugs_gc(struct ctl *ctl)
{
    struct shas kept = {0}, old = {0};
    struct gc_work *g = NULL;
    size_t i, n = 0;
    int rc;

    if (ctl->slugs == NULL || ctl->model == NULL)
        return 0;
    rc = classify(ctl->model, ctl->cfg.slugs_keep, &kept, &old);
    if (rc < 0)
        goto out;
    if (old.n == 0)
        goto out; /* and qsort must not see a NULL array */
    if (kept.n > 0)
        qsort(kept.v, kept.n, sizeof(*kept.v), sha_cmp);
    qsort(old.v, old.n, sizeof(*old.v), sha_cmp);
    for (i = 0; i < old.n; i++) /* unique and not kept, in place */
        if ((i == 0 || strcmp(old.v[i], old.v[i - 1]) != 0) && !shas_has(&kept, old.v[i]))
            old.v[n++] = old.v[i];
    if (n == 0)
        goto out;
    rc = -ENOMEM;
    if ((g = calloc(1, sizeof(*g))) == NULL || (g->paths = calloc(n, sizeof(*g->paths))) == NULL)
        goto out;
    for (i = 0; i < n; i++)
        if (ctl_slug_path(ctl->slugs, old.v[i], g->paths[g->n], sizeof(g->paths[0])) == 0)
            g->n++;
    g->ctl = ctl;
    g->w.data = g;
    if ((rc = uv_queue_work(ctl->loop, &g->w, gc_run, gc_done)) < 0)
        goto out;
    ctl->inflight++;
    g = NULL;
out:
    if (g != NULL)
        free(g->paths);
    free(g);
    free(kept.v);
    free(old.v);
    if (rc < 0)
        log_warn("slugs_gc_failed", "err=%d", rc);
    return rc;
}
