/* SPDX-License-Identifier: MIT */
/*
 * release_phase.c: Heroku's release phase. A release whose Procfile has a
 * `release:` line runs that command once, as the one-off `release.N` (N the
 * release's version), before any instance of it starts; only when it exits
 * 0 does the release become current and its deploy begin (deploys.c).
 *
 * While it runs the app's deploy is in state RELEASING with deploy.release
 * the new release, and a->current is still the running release: nothing the
 * reconciler does sees the new release yet, so a failure has nothing to
 * undo but the app's config (a config:set already changed it), which goes
 * back to the current release's snapshot. A non-zero exit, a signal, a lost
 * node, a release that could not be prepared or `release_timeout` (type
 * release's deploy_timeout_ms; default 1 h) mark the release failed with
 * "release phase failed: ..." and start nothing of it.
 *
 * It is built on the one-off machinery (runs.c, agents.c): a detached
 * one-off of type "release" whose settings come from the `release` formation
 * row (quantity always 0: `release` is never scaled). Its outcome survives a
 * controller restart because both halves are stored: the deploy state with
 * the app, the one-off with the instances. The agent keeps reporting a
 * one-off's exit until the controller drops it from the assignment set, so
 * an exit seen while the controller was down is read after it comes back;
 * the phase is never run twice. A phase whose agent no longer knows it (the
 * agent restarted too) fails as lost rather than run again.
 *
 * A newer release made while a phase runs supersedes it: the phase is
 * stopped and its release marked superseded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "log.h"

const char *const ctl_release_type_name = "release";

bool
ctl_relphase_wanted(const struct ctl_release *r)
{
    return r != NULL && ctl_release_type(r, ctl_release_type_name) != NULL;
}

/* The running phase's one-off (stopping ones too, when stopping), or NULL. */
static struct ctl_instance *
phase_inst(const struct ctl_app *a, bool stopping)
{
    struct ctl_instance *in;

    LIST_FOREACH (in, &a->instances, app_link) {
        if (in->oneoff && (stopping || !in->stopping) && in->release == a->deploy.release &&
            strcmp(in->type, ctl_release_type_name) == 0)
            return in;
    }
    return NULL;
}

static void
set_deploy(struct ctl_model *m, struct ctl_app *a, enum ctl_deploy_state st, uint64_t now)
{
    (void)now;
    ctl_deploy_set_state(m, a, st);
}

/* The phase is over without success: the release is failed, and what runs
 * (and `drover config` shows) stays the current release. */
static void
phase_fail(struct ctl_model *m, struct ctl_app *a, uint64_t now, const char *why)
{
    struct ctl_deploy *d = &a->deploy;
    struct ctl_release *cur = ctl_release_current(a);

    ctl_deploy_set_reason(m, a, "release phase failed: %s", why);
    set_deploy(m, a, CTL_DEPLOY_FAILED, now);
    ctl_release_set_status(m, a, ctl_release_get(a, d->release), "failed", d->reason);
    if (cur != NULL && ctl_config_replace(m, a, cur->config, cur->nconfig) < 0)
        log_error("config_restore_failed", "app=%s release=%u err=ENOMEM", a->name, cur->version);
    log_warn("release_phase_failed", "app=%s release=%u current=%u reason=%s", a->name, d->release,
             a->current, log_q(why));
    if (cur != NULL)
        ctl_model_event(m, a->name, "v%u %s; v%u keeps running", d->release, d->reason,
                        cur->version);
    else
        ctl_model_event(m, a->name, "v%u %s", d->release, d->reason);
}

void
ctl_relphase_start(struct ctl_model *m, struct ctl_app *a, struct ctl_release *r, uint64_t now)
{
    const struct ctl_ptype *pt = ctl_release_type(r, ctl_release_type_name);
    struct ctl_deploy *d = &a->deploy;
    struct ctl_instance *in = NULL;

    ctl_relphase_abandon(m, a, r->version);
    if (d->state == CTL_DEPLOY_RUNNING && d->release != a->current) {
        ctl_release_set_status(m, a, ctl_release_get(a, d->release), "superseded", "");
        ctl_model_event(m, a->name, "deploy of v%u superseded by v%u", d->release, r->version);
    }
    ctl_deploy_begin(m, a, r->version, a->good, CTL_DEPLOY_RELEASING, now);
    ctl_release_set_status(m, a, r, "deploying", "");
    if (ctl_inst_new(m, a, ctl_release_type_name, r->version, r->version, 0, &in) < 0 ||
        ctl_inst_make_oneoff(m, in, pt->command, ctl_release_type_name) < 0) {
        if (in != NULL)
            ctl_inst_delete(m, in);
        phase_fail(m, a, now, "out of memory");
        return;
    }
    m->capacity_changed = true; /* placed by the next settle, like any new instance */
    log_info("release_phase_started", "app=%s release=%u id=%llu", a->name, r->version,
             (unsigned long long)in->id);
    ctl_model_event(m, a->name, "release phase of v%u started (release.%u): %s", r->version,
                    r->version, pt->command);
}

void
ctl_relphase_abandon(struct ctl_model *m, struct ctl_app *a, uint32_t newer)
{
    struct ctl_instance *in;

    if (a->deploy.state != CTL_DEPLOY_RELEASING || a->deploy.release == newer)
        return;
    if ((in = phase_inst(a, false)) != NULL)
        ctl_inst_stop(m, in);
    ctl_release_set_status(m, a, ctl_release_get(a, a->deploy.release), "superseded", "");
    ctl_model_event(m, a->name, "release phase of v%u superseded by v%u", a->deploy.release, newer);
    set_deploy(m, a, CTL_DEPLOY_NONE, mono_ms());
}

static void
phase_succeed(struct ctl_model *m, struct ctl_app *a, uint64_t now)
{
    uint32_t v = a->deploy.release;

    log_info("release_phase_succeeded", "app=%s release=%u ms=%llu", a->name, v,
             (unsigned long long)(now - a->deploy.started_mono));
    ctl_model_event(m, a->name, "release phase of v%u succeeded", v);
    set_deploy(m, a, CTL_DEPLOY_NONE, now);
    ctl_app_set_current(m, a, v);
    ctl_deploy_start(m, a, now);
    ctl_app_want_reconcile(m, a);
}

void
ctl_relphase_ended(struct ctl_model *m, struct ctl_instance *in, bool exited)
{
    struct ctl_app *a = in->app;
    char why[96];

    if (!in->oneoff || strcmp(in->type, ctl_release_type_name) != 0 ||
        a->deploy.state != CTL_DEPLOY_RELEASING || in->release != a->deploy.release)
        return;
    if (!exited)
        snprintf(why, sizeof(why), "lost: its agent no longer runs it");
    else if (in->exit_signal > 0)
        snprintf(why, sizeof(why), "killed by signal %d", (int)in->exit_signal);
    else if (in->exit_code != 0)
        snprintf(why, sizeof(why), "exit code %d", (int)in->exit_code);
    else {
        phase_succeed(m, a, mono_ms());
        return;
    }
    phase_fail(m, a, mono_ms(), why);
}

bool
ctl_relphase_tick(struct ctl_model *m, struct ctl_app *a, uint64_t now)
{
    const struct ctl_formation *f = ctl_formation_find(a, ctl_release_type_name);
    uint64_t limit = f != NULL ? f->deploy_timeout_ms : CTL_DEFAULT_RELEASE_TIMEOUT_MS;
    struct ctl_instance *in = phase_inst(a, true);
    char why[CTL_REASON_MAX + 32];

    if (a->deploy.state != CTL_DEPLOY_RELEASING)
        return false;
    if (in == NULL)
        snprintf(why, sizeof(why), "it ended without reporting its exit");
    else if (in->stopping)
        snprintf(why, sizeof(why), "it was stopped (drover ps:stop)");
    else if (in->state == DROVER__INSTANCE_STATE__ST_LOST)
        snprintf(why, sizeof(why), "lost: its node went down");
    else if (in->state == DROVER__INSTANCE_STATE__ST_FAILED)
        snprintf(why, sizeof(why), "%s", in->reason[0] ? in->reason : "it could not start");
    else if (now >= a->deploy.started_mono + limit)
        snprintf(why, sizeof(why), "timed out after %llu s (release_timeout)",
                 (unsigned long long)(limit / 1000));
    else
        return false;
    if (in != NULL)
        ctl_inst_stop(m, in);
    phase_fail(m, a, now, why);
    return true;
}
