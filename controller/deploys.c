/* SPDX-License-Identifier: MIT */
/*
 * deploys.c: each app's latest deploy, from its start to success or revert.
 *
 * A deploy starts whenever an app's current release changes to a new one
 * (a deploy, a config change, a rollback: api.c). It does not move anything
 * itself: the reconciler rolls every type towards the current release in
 * batches (reconcile.c). This file only watches and judges:
 *
 *   - succeeded: every type of the release has its quantity up on it, and no
 *     live instance of another release is left (draining ones may still be
 *     finishing: they are out of the endpoint list already);
 *   - failed: an instance of the release crashed or gave up (a web that never
 *     binds its port within the boot timeout is killed and counts as a
 *     crash), or a type has not finished within its deploy timeout.
 *
 * On failure the release is marked failed with the reason, and the last good
 * release (the newest whose deploy succeeded: a->good) becomes current again,
 * with its config as the app's config: the reconciler then rolls every type
 * back to it at full scale, with the same batches, so that availability never
 * drops on the way back either. With no good release (a first deploy that
 * failed) the app has no current release and its instances stop.
 *
 * A new deploy that starts while one is running supersedes it: the older
 * release is marked superseded and the new one's "last good" is still the
 * last one that succeeded. The deploy is stored with the app, so a restarted
 * controller carries on judging it where it was (its timeout counts from its
 * start: on the monotonic clock while the controller runs, converted from
 * the stored wall-clock start on load).
 *
 * Every `now` here is the monotonic clock (mono_ms()): a step of the wall
 * clock neither fails a deploy early nor keeps one running late.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "http.h"
#include "log.h"
#include "procfile.h"

static const char *const state_names[] = {
    [CTL_DEPLOY_NONE] = "none",           [CTL_DEPLOY_RUNNING] = "running",
    [CTL_DEPLOY_SUCCEEDED] = "succeeded", [CTL_DEPLOY_FAILED] = "failed",
    [CTL_DEPLOY_RELEASING] = "releasing",
};

const char *
ctl_deploy_state_name(enum ctl_deploy_state st)
{
    return (size_t)st < ARRAY_SIZE(state_names) ? state_names[st] : "none";
}

int
ctl_deploy_state_parse(const char *s, enum ctl_deploy_state *st)
{
    size_t i;

    for (i = 0; i < ARRAY_SIZE(state_names); i++) {
        if (strcmp(s, state_names[i]) == 0) {
            *st = (enum ctl_deploy_state)i;
            return 0;
        }
    }
    return -1;
}

void
ctl_deploy_start(struct ctl_model *m, struct ctl_app *a, uint64_t now)
{
    struct ctl_deploy *d = &a->deploy;

    ctl_relphase_abandon(m, a, a->current);
    if (d->state == CTL_DEPLOY_RUNNING && d->release != a->current) {
        ctl_release_set_status(m, a, ctl_release_get(a, d->release), "superseded", "");
        ctl_model_event(m, a->name, "deploy of v%u superseded by v%u", d->release, a->current);
    }
    ctl_deploy_begin(m, a, a->current, a->good, CTL_DEPLOY_RUNNING, now);
    ctl_release_set_status(m, a, ctl_release_current(a), "deploying", "");
    if (d->from != 0)
        ctl_model_event(m, a->name, "deploy of v%u started, replacing v%u", d->release, d->from);
    else
        ctl_model_event(m, a->name, "deploy of v%u started", d->release);
    log_info("deploy_started", "app=%s release=%u from=%u", a->name, d->release, d->from);
    ctl_deploy_check(m, a, now); /* a release with nothing to run is done at once */
}

/* Per type of the deploy's release: how far the rollout is. */
struct progress {
    uint32_t desired, updated, created, old;
};

static void
count_progress(const struct ctl_app *a, const struct ctl_release *rel, struct progress *p)
{
    const struct ctl_instance *in;
    size_t i;

    memset(p, 0, rel->ntypes * sizeof(*p));
    for (i = 0; i < rel->ntypes; i++) {
        const struct ctl_formation *f = ctl_formation_find(a, rel->types[i].name);

        p[i].desired = f != NULL ? f->quantity : 0;
    }
    LIST_FOREACH (in, &a->instances, app_link) {
        if (in->stopping || in->oneoff)
            continue;
        for (i = 0; i < rel->ntypes && strcmp(rel->types[i].name, in->type) != 0; i++)
            ;
        if (i == rel->ntypes)
            continue; /* a type the release does not have: stopped by reconcile */
        if (ctl_inst_outdated(in, rel->version)) {
            p[i].old++;
        } else if (!ctl_inst_evicted(in)) {
            p[i].created++;
            p[i].updated += in->state == DROVER__INSTANCE_STATE__ST_UP;
        }
    }
}

void
ctl_deploy_check(struct ctl_model *m, struct ctl_app *a, uint64_t now)
{
    struct progress p[PROCFILE_MAX_TYPES];
    const struct ctl_release *rel;
    const struct ctl_instance *in;
    char what[512];
    size_t i, len = 0;

    if (a->deploy.state != CTL_DEPLOY_RUNNING)
        return;
    rel = ctl_release_get(a, a->deploy.release);
    if (rel == NULL || a->current != rel->version || rel->ntypes > PROCFILE_MAX_TYPES)
        return;
    LIST_FOREACH (in, &a->instances, app_link) {
        if (!in->stopping && !in->oneoff && ctl_release_type(rel, in->type) == NULL)
            return; /* a removed type still running: it stops at the next reconcile */
    }
    count_progress(a, rel, p);
    what[0] = '\0';
    for (i = 0; i < rel->ntypes; i++) {
        if (p[i].updated < p[i].desired || p[i].old > 0)
            return;
        if (len < sizeof(what))
            len += (size_t)snprintf(what + len, sizeof(what) - len, " %s=%u", rel->types[i].name,
                                    p[i].desired);
    }
    ctl_app_set_good(m, a, rel->version);
    ctl_deploy_set_state(m, a, CTL_DEPLOY_SUCCEEDED);
    ctl_metrics_deploy(a->name, "succeeded");
    ctl_release_set_status(m, a, ctl_release_get(a, rel->version), "succeeded", "");
    ctl_model_event(m, a->name, "%s of v%u finished:%s up",
                    ctl_deploy_is_restart(&a->deploy) ? "restart" : "deploy", rel->version,
                    what[0] ? what : " nothing to run");
    log_info("deploy_succeeded", "app=%s release=%u ms=%llu", a->name, rel->version,
             (unsigned long long)(now - a->deploy.started_mono));
}

void
ctl_deploy_fail(struct ctl_model *m, struct ctl_app *a, uint64_t now, const char *fmt, ...)
{
    struct ctl_deploy *d = &a->deploy;
    struct ctl_release *good;
    char why[CTL_DEPLOY_REASON_MAX];
    va_list ap;

    (void)now;
    if (d->state != CTL_DEPLOY_RUNNING)
        return;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    ctl_deploy_set_reason(m, a, "%s", why);
    ctl_deploy_set_state(m, a, CTL_DEPLOY_FAILED);
    ctl_metrics_deploy(a->name, "failed");
    if (ctl_deploy_is_restart(d)) { /* the release is not at fault: keep it */
        ctl_restart_failed(m, a);
        return;
    }
    ctl_release_set_status(m, a, ctl_release_get(a, d->release), "failed", d->reason);
    good = d->from != 0 ? ctl_release_get(a, d->from) : NULL;
    ctl_app_set_current(m, a, good != NULL ? good->version : 0);
    /* What runs is what `drover config` shows. */
    if (good != NULL && ctl_config_replace(m, a, good->config, good->nconfig) < 0)
        log_error("config_restore_failed", "app=%s release=%u err=ENOMEM", a->name, good->version);
    ctl_app_want_reconcile(m, a);
    log_warn("deploy_failed", "app=%s release=%u back_to=%u reason=%s", a->name, d->release,
             a->current, log_q(d->reason));
    if (good != NULL)
        ctl_model_event(m, a->name, "deploy of v%u failed: %s; rolling back to v%u", d->release,
                        d->reason, good->version);
    else
        ctl_model_event(m, a->name, "deploy of v%u failed: %s; no earlier release to run",
                        d->release, d->reason);
}

/* Fail the deploy of in's release for what in's agent said (its cause). */
static void
judge(struct ctl_model *m, struct ctl_instance *in, uint64_t now)
{
    struct ctl_app *a = in->app;
    char name[48];

    if (a->deploy.state != CTL_DEPLOY_RUNNING || in->oneoff || in->stopping ||
        ctl_inst_outdated(in, a->deploy.release))
        return;
    ctl_inst_name(in, name, sizeof(name));
    switch (in->cause) {
    case DROVER__INSTANCE_CAUSE__CAUSE_BOOT_TIMEOUT:
    case DROVER__INSTANCE_CAUSE__CAUSE_HEALTH_FAILED:
        /* "not healthy within 8.0 s: GET / answered 404 (killed); restarting" */
        ctl_deploy_fail(m, a, now, "%s was %.*s", name, (int)strcspn(in->reason, ";"), in->reason);
        break;
    case DROVER__INSTANCE_CAUSE__CAUSE_UNPACK_FAILED:
    case DROVER__INSTANCE_CAUSE__CAUSE_FETCH_FAILED:
        ctl_deploy_fail(m, a, now, "%s failed: %s", name, in->reason);
        break;
    case DROVER__INSTANCE_CAUSE__CAUSE_SPAWN_FAILED:
        /* "could not start; ..." or the limit it cannot enforce here */
        ctl_deploy_fail(m, a, now, "%s could not be started: %.*s", name,
                        (int)strcspn(in->reason, ";"), in->reason);
        break;
    case DROVER__INSTANCE_CAUSE__CAUSE_MEMORY_LIMIT:
        /* "memory limit 64 MiB exceeded (oom kill); restarting" */
        ctl_deploy_fail(m, a, now, "%s crashed: %.*s", name, (int)strcspn(in->reason, ";"),
                        in->reason);
        break;
    default:
        if (in->exit_signal > 0)
            ctl_deploy_fail(m, a, now, "%s crashed (signal %d)", name, (int)in->exit_signal);
        else
            ctl_deploy_fail(m, a, now, "%s crashed (exit code %d)", name, (int)in->exit_code);
        break;
    }
}

void
ctl_deploy_saw(struct ctl_model *m, struct ctl_instance *in, uint64_t now)
{
    if (in->state == DROVER__INSTANCE_STATE__ST_CRASHED ||
        in->state == DROVER__INSTANCE_STATE__ST_FAILED)
        judge(m, in, now);
}

unsigned
ctl_inst_report(struct ctl_model *m, struct ctl_instance *in, Drover__InstanceState st,
                uint64_t since_ms, uint64_t now)
{
    Drover__InstanceState from = in->state;
    unsigned saw = ctl_inst_set_state(m, in, st, since_ms);

    if (saw & CTL_SAW_CRASH) {
        ctl_deploy_saw(m, in, now);
        ctl_inst_say_state(m, in, from);
    }
    return saw;
}

void
ctl_deploy_crashed(struct ctl_model *m, struct ctl_instance *in, uint64_t now)
{
    judge(m, in, now);
}

static void
check_timeout(struct ctl_model *m, struct ctl_app *a, uint64_t now)
{
    struct progress p[PROCFILE_MAX_TYPES];
    const struct ctl_release *rel = ctl_release_get(a, a->deploy.release);
    size_t i;

    if (rel == NULL || rel->ntypes > PROCFILE_MAX_TYPES)
        return;
    count_progress(a, rel, p);
    for (i = 0; i < rel->ntypes; i++) {
        const struct ctl_formation *f = ctl_formation_find(a, rel->types[i].name);
        uint64_t limit = f != NULL ? f->deploy_timeout_ms : CTL_DEFAULT_DEPLOY_TIMEOUT_MS;

        if (p[i].updated >= p[i].desired && p[i].old == 0)
            continue;
        if (now < a->deploy.started_mono + limit)
            continue;
        ctl_deploy_fail(m, a, now, "timed out after %llu s with %s %u/%u up on v%u (%u old)",
                        (unsigned long long)(limit / 1000), rel->types[i].name, p[i].updated,
                        p[i].desired, rel->version, p[i].old);
        return;
    }
}

bool
ctl_deploys_tick(struct ctl_model *m, uint64_t now)
{
    size_t pos = 0;
    struct ctl_app *a;
    bool changed = false;

    if (m->ndeploying == 0)
        return false;
    while ((a = ctl_map_next(m->apps, &pos)) != NULL) {
        if (a->deploy.state == CTL_DEPLOY_RELEASING)
            changed |= ctl_relphase_tick(m, a, now);
        if (a->deploy.state != CTL_DEPLOY_RUNNING)
            continue;
        check_timeout(m, a, now);
        changed |= a->deploy.state != CTL_DEPLOY_RUNNING;
    }
    return changed;
}

int
ctl_view_deploy(struct ctl_arena *ar, const struct ctl_app *a, Drover__DeployInfo *di)
{
    struct progress p[PROCFILE_MAX_TYPES];
    const struct ctl_release *rel = ctl_release_get(a, a->deploy.release);
    Drover__TypeProgress *tp;
    size_t i, n;

    di->app = (char *)a->name;
    di->release = a->deploy.release;
    di->from = a->deploy.from;
    di->state = (char *)ctl_deploy_state_name(a->deploy.state);
    di->reason = (char *)a->deploy.reason;
    di->started_ms = a->deploy.started_ms;
    di->finished_ms = a->deploy.finished_ms;
    di->current = a->current;
    if (rel == NULL || rel->ntypes > PROCFILE_MAX_TYPES)
        return 0;
    n = rel->ntypes;
    count_progress(a, rel, p);
    di->types = ctl_arena_alloc(ar, (n + 1) * sizeof(*di->types));
    tp = ctl_arena_alloc(ar, (n + 1) * sizeof(*tp));
    if (di->types == NULL || tp == NULL)
        return -1;
    for (i = 0; i < n; i++) {
        drover__type_progress__init(&tp[i]);
        tp[i].type = (char *)rel->types[i].name;
        tp[i].desired = p[i].desired;
        tp[i].updated = p[i].updated;
        tp[i].created = p[i].created;
        tp[i].old = p[i].old;
        di->types[i] = &tp[i];
    }
    di->n_types = n;
    return 0;
}
