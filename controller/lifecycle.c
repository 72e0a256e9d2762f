/* SPDX-License-Identifier: MIT */
/*
 * lifecycle.c: the verbs a Heroku user types to handle what runs, without a
 * new release: restart, ps:stop, apps:destroy, and nodes:remove.
 *
 * Each verb is a rule on the model that returns 0 or a negative errno with
 * the reason for a person in err, and changes nothing when it fails; one
 * handler (ctl_lifecycle_handle) decodes the request, applies the rule,
 * commits once and replies, as api.c's dispatcher does.
 *
 * restart. A type or the whole app is rolled exactly as a deploy rolls it:
 * its live instances are marked `restart` (stored, so a controller restart
 * carries on), which makes the reconciler treat them as instances of an
 * older release, and a deploy of the current release starts with from ==
 * release. The batch planner then keeps every type at its quantity up
 * (max_surge / max_unavailable) and the deploy judge says when it is done or
 * why it failed; a failed restart leaves the release alone (it is not at
 * fault) and stops replacing. One instance is simply stopped the usual way
 * (shutdown delay, SIGTERM, grace) and its replacement starts at once.
 *
 * apps:destroy. The app's current release goes away (so nothing of it is
 * started again), every instance and one-off is stopped, and instances on
 * down nodes are forgotten (their agents stop them when they come back).
 * When the last one is gone, ctl_destroy_reap removes the app from the model
 * and the store, deletes the slugs no other app uses from the slug store,
 * and tells every agent (SyncRep.destroyed_apps / forget_slugs) to delete
 * the app's unpacked releases and those cached slugs. `destroying` is
 * stored (table destroying), so a controller restart in between carries on.
 *
 * The request handler and the reaping (which touch the slug store and the
 * agents) are in lifecycle_api.c, so that this file stays pure model rules.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "log.h"

bool
ctl_deploy_is_restart(const struct ctl_deploy *d)
{
    return d->release != 0 && d->from == d->release;
}

/* ---- restart ---- */

static bool
is_live(const struct ctl_instance *in)
{
    return !in->stopping && !in->oneoff;
}

/* A deploy of the current release, from itself: judged by deploys.c. */
static void
restart_start(struct ctl_model *m, struct ctl_app *a, const char *what, uint64_t now)
{
    ctl_deploy_begin(m, a, a->current, a->current, CTL_DEPLOY_RUNNING, now);
    ctl_app_want_reconcile(m, a);
    ctl_model_event(m, a->name, "restart of %s on v%u started", what, a->current);
    log_info("restart_started", "app=%s what=%s release=%u", a->name, what, a->current);
}

void
ctl_restart_failed(struct ctl_model *m, struct ctl_app *a)
{
    struct ctl_instance *in;

    /* What was not replaced yet keeps running as it is. */
    LIST_FOREACH (in, &a->instances, app_link) {
        ctl_inst_set_restart(m, in, false);
    }
    ctl_model_event(m, a->name, "restart of v%u failed: %s", a->current, a->deploy.reason);
    log_warn("restart_failed", "app=%s release=%u reason=%s", a->name, a->current,
             log_q(a->deploy.reason));
}

/* "web.2" into type and idx; false when it is not an instance name. */
static bool
parse_inst_name(const char *s, char *type, size_t typesz, uint32_t *idx)
{
    const char *dot = strrchr(s, '.');
    char *end;
    unsigned long v;

    if (dot == NULL || (size_t)(dot - s) >= typesz || dot[1] < '1' || dot[1] > '9')
        return false;
    v = strtoul(dot + 1, &end, 10);
    if (*end != '\0' || v > 1000000)
        return false;
    memcpy(type, s, (size_t)(dot - s));
    type[dot - s] = '\0';
    *idx = (uint32_t)v;
    return name_type_valid(type);
}

static struct ctl_instance *
find_inst(const struct ctl_app *a, const char *type, uint32_t idx)
{
    struct ctl_instance *in, *found = NULL;

    LIST_FOREACH (in, &a->instances, app_link) {
        if (in->stopping || in->idx != idx || strcmp(in->type, type) != 0)
            continue;
        /* Mid-rollout a slot may be held twice: the current release's wins. */
        if (found == NULL || in->release == a->current)
            found = in;
    }
    return found;
}

int
ctl_restart(struct ctl_model *m, struct ctl_app *a, const char *target, uint64_t now,
            char names[][48], size_t max, size_t *n, char *err, size_t errsz)
{
    const struct ctl_release *rel = ctl_release_current(a);
    struct ctl_instance *in;
    char type[TYPE_NAME_MAX + 2];
    uint32_t idx;

    *n = 0;
    if (a->destroying) {
        snprintf(err, errsz, "app %s is being destroyed", a->name);
        return -EBUSY;
    }
    if (rel == NULL) {
        snprintf(err, errsz, "app %s has no release yet; deploy first", a->name);
        return -ENOENT;
    }
    if (a->deploy.state == CTL_DEPLOY_RUNNING || a->deploy.state == CTL_DEPLOY_RELEASING) {
        snprintf(err, errsz, "a %s of v%u is under way; wait for it (drover ps %s) and try again",
                 ctl_deploy_is_restart(&a->deploy) ? "restart" : "deploy", a->deploy.release,
                 a->name);
        return -EBUSY;
    }
    if (target[0] != '\0' && strchr(target, '.') != NULL) {
        if (!parse_inst_name(target, type, sizeof(type), &idx)) {
            snprintf(err, errsz, "invalid instance name '%.64s' (want TYPE.N, like web.1)", target);
            return -EINVAL;
        }
        if ((in = find_inst(a, type, idx)) == NULL) {
            snprintf(err, errsz, "app %s has no running instance %s", a->name, target);
            return -ENOENT;
        }
        if (in->oneoff) {
            snprintf(err, errsz,
                     "%s is a one-off: it is never restarted (stop it with: drover ps:stop %s "
                     "%s)",
                     target, a->name, target);
            return -EINVAL;
        }
        snprintf(names[(*n)++], 48, "%s", target);
        log_info("restart_instance", "app=%s inst=%s id=%llu", a->name, target,
                 (unsigned long long)in->id);
        ctl_inst_stop(m, in); /* placed or not, the reconciler makes it again */
        restart_start(m, a, target, now);
        return 0;
    }
    if (target[0] != '\0' &&
        (!name_type_valid(target) || strcmp(target, ctl_release_type_name) == 0 ||
         ctl_release_type(rel, target) == NULL)) {
        snprintf(err, errsz, "no process type '%.40s' to restart in v%u", target, rel->version);
        return -ENOENT;
    }
    LIST_FOREACH (in, &a->instances, app_link) {
        if (!is_live(in) || in->restart || (target[0] != '\0' && strcmp(in->type, target) != 0))
            continue;
        ctl_inst_set_restart(m, in, true);
        if (*n < max)
            ctl_inst_name(in, names[(*n)++], 48);
    }
    if (*n > 0)
        restart_start(m, a, target[0] != '\0' ? target : "every type", now);
    return 0;
}

/* ---- ps:stop ---- */

int
ctl_ps_stop(struct ctl_model *m, struct ctl_app *a, const char *name, bool *restarted, char *err,
            size_t errsz)
{
    struct ctl_instance *in;
    char type[TYPE_NAME_MAX + 2];
    uint32_t idx;

    if (!parse_inst_name(name, type, sizeof(type), &idx)) {
        snprintf(err, errsz, "invalid instance name '%.64s' (want TYPE.N, like run.1 or web.2)",
                 name);
        return -EINVAL;
    }
    if ((in = find_inst(a, type, idx)) == NULL) {
        snprintf(err, errsz, "app %s has no running instance %s", a->name, name);
        return -ENOENT;
    }
    *restarted = !in->oneoff;
    log_info("ps_stop", "app=%s inst=%s id=%llu oneoff=%d", a->name, name,
             (unsigned long long)in->id, (int)in->oneoff);
    ctl_model_event(m, a->name, "%s stopped by ps:stop%s", name,
                    in->oneoff ? "" : "; the formation starts it again");
    ctl_inst_stop(m, in);
    if (*restarted)
        ctl_app_want_reconcile(m, a);
    return 0;
}

/* ---- apps:destroy ---- */

int
ctl_destroy(struct ctl_model *m, struct ctl_app *a, uint32_t *stopped)
{
    struct ctl_instance *in, *next;

    *stopped = 0;
    ctl_app_set_destroying(m, a);
    if (a->deploy.state == CTL_DEPLOY_RUNNING || a->deploy.state == CTL_DEPLOY_RELEASING)
        ctl_deploy_set_state(m, a, CTL_DEPLOY_NONE);
    ctl_app_set_current(m, a, 0);
    for (in = LIST_FIRST(&a->instances); in != NULL; in = next) {
        next = LIST_NEXT(in, app_link);
        if (!in->stopping)
            (*stopped)++;
        /* A down node reports nothing: its agent stops what it no longer
         * owns when it comes back. */
        if (in->node == NULL || in->node->state == CTL_NODE_DOWN)
            ctl_inst_delete(m, in);
        else
            ctl_inst_stop(m, in);
    }
    ctl_app_endpoints_changed(m, a);
    log_info("app_destroying", "app=%s stopped=%u", a->name, *stopped);
    return 0;
}

/* ---- nodes:remove ---- */

int
ctl_node_forget(struct ctl_model *m, struct ctl_node *n, char *err, size_t errsz)
{
    struct ctl_instance *in, *next;

    if (n->state != CTL_NODE_DOWN) {
        snprintf(err, errsz,
                 "node %s is %s: only a down node can be removed (drain it and stop its "
                 "agent first)",
                 n->name, ctl_node_state_name(n->state));
        return -EBUSY;
    }
    /* What it held was lost and is replaced elsewhere; what was stopping
     * there will be stopped by its agent if it ever comes back. */
    for (in = LIST_FIRST(&n->instances); in != NULL; in = next) {
        next = LIST_NEXT(in, node_link);
        ctl_app_want_reconcile(m, in->app);
        ctl_inst_delete(m, in);
    }
    log_info("node_removed", "node=%s", n->name);
    return ctl_node_remove(m, n);
}
