/* SPDX-License-Identifier: MIT */
/*
 * nodes.c: the rules about nodes, over the model alone: what an agent's
 * report of its instances means (apply a full report), who may register
 * under a node's name, and what the operator's cordon, uncordon and drain
 * do. Handlers (agents.c, api.c) validate requests and call these; unit
 * tests call them directly.
 *
 * A full report updates the instances the controller placed on that node:
 * a stopping one that is stopped or absent is deleted; one that is assigned
 * but absent is simply pending again (the agent starts it after this sync).
 * Reports of instances the controller does not hold on that node are
 * ignored: the agent drains whatever it runs that is not assigned.
 *
 * Names: a register with another boot_id for a node heard from within the
 * node timeout is refused, unless it names that boot_id as its previous
 * one: that is the same agent (same data dir) restarted, taking its node
 * back, not a second host with the same name. "Heard" is on the monotonic
 * clock: a step of the wall clock neither frees nor holds a name.
 *
 * Draining marks every live instance on the node for eviction: reconcile.c
 * places replacements elsewhere and stops each evicted instance once its
 * replacement is up (the settle before the commit runs it). A node that is
 * down when drained has nothing running to wait for: its lost instances,
 * already replaced, are forgotten. So are those of a node whose agent said
 * it was leaving and then went silent: it stops everything before it exits
 * (or when it cannot reach this controller), so its last report lost on the
 * way leaves nothing listed.
 */
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "log.h"

/* A one-off ended: say how in its app's log, and forget it. */
static void
oneoff_done(struct ctl_model *m, struct ctl_instance *in, const char *how)
{
    char name[48], label[TYPE_NAME_MAX + NODE_NAME_MAX + 32];

    ctl_inst_name(in, name, sizeof(name));
    ctl_inst_label(in, label, sizeof(label));
    log_info("oneoff_done", "app=%s inst=%s id=%llu how=%s", in->app->name, name,
             (unsigned long long)in->id, log_q(how));
    ctl_model_event(m, in->app->name, "%s %s", label, how);
    ctl_inst_delete(m, in);
}

/*
 * A report's restarts grew by crashes: each crash reaches the app's log
 * with its exit status, also one the agent restarted at once (its report
 * then says starting or up, and the crash would be invisible). shown: the
 * last crash is also this report's move to crashed, which
 * ctl_inst_set_state says itself.
 */
static void
crash_seen(struct ctl_model *m, struct ctl_node *n, struct ctl_instance *in, uint32_t crashes,
           bool shown)
{
    char name[48], label[TYPE_NAME_MAX + NODE_NAME_MAX + 32], how[48];
    const char *next;

    if (shown)
        crashes--;
    if (crashes == 0)
        return;
    ctl_inst_name(in, name, sizeof(name));
    ctl_inst_label(in, label, sizeof(label));
    /* Being stopped (a failed deploy, a scale down): whatever the agent
     * planned, it does not come back. */
    next = in->stopping    ? "not restarted: it is being stopped"
           : in->reason[0] ? in->reason
                           : "restarting";
    if (in->exit_signal > 0)
        snprintf(how, sizeof(how), "signal %d", (int)in->exit_signal);
    else
        snprintf(how, sizeof(how), "exit code %d", (int)in->exit_code);
    log_info("instance_crashed", "app=%s inst=%s id=%llu node=%s crashes=%u last=%s", in->app->name,
             name, (unsigned long long)in->id, n->name, crashes, log_q(how));
    if (shown)
        ctl_model_event(m, in->app->name, "%s crashed %u more time%s before that (restarted)",
                        label, crashes, crashes > 1 ? "s" : "");
    else if (crashes > 1)
        ctl_model_event(m, in->app->name,
                        "%s crashed %u times since its last report (last: %s; %s)", label, crashes,
                        how, next);
    else
        ctl_model_event(m, in->app->name, "%s crashed (%s; %s)", label, how, next);
}

/* One report of an instance the controller holds on n. */
static void
apply_one(struct ctl_model *m, struct ctl_node *n, struct ctl_instance *in,
          const Drover__InstanceReport *r, uint64_t now)
{
    Drover__InstanceState from = in->state;
    uint32_t crashes;

    if (in->stopping && r->state == DROVER__INSTANCE_STATE__ST_STOPPED) {
        log_info("instance_gone", "app=%s inst=%s.%u id=%llu node=%s", in->app->name, in->type,
                 in->idx, (unsigned long long)in->id, n->name);
        ctl_inst_delete(m, in);
        return;
    }
    /* Crashes since the last report: restarts only grows while the agent
     * runs the instance (a restarted agent starts again at 0). */
    crashes = !in->oneoff && r->restarts > in->restarts ? r->restarts - in->restarts : 0;
    ctl_inst_set_report(m, in, r);
    if (in->oneoff && r->state == DROVER__INSTANCE_STATE__ST_STOPPED) {
        ctl_relphase_ended(m, in, true);
        oneoff_done(m, in, in->reason[0] != '\0' ? in->reason : "exited");
        return;
    }
    /* An assigned instance the agent stopped (it is shutting down, say) is
     * not running but still wanted: pending, like an absent one. */
    if (crashes > 0)
        crash_seen(m, n, in, crashes,
                   r->state == DROVER__INSTANCE_STATE__ST_CRASHED &&
                       from != DROVER__INSTANCE_STATE__ST_CRASHED);
    /* Deploys judge crashes on the monotonic clock; now is the wall clock. */
    if (r->state == DROVER__INSTANCE_STATE__ST_STOPPED)
        ctl_inst_report(m, in, DROVER__INSTANCE_STATE__ST_PENDING, r->since_ms, mono_ms());
    else if (r->state != DROVER__INSTANCE_STATE__ST_UNKNOWN)
        ctl_inst_report(m, in, r->state, r->since_ms, mono_ms());
    if (crashes > 0)
        ctl_deploy_crashed(m, in, mono_ms());
    /* A replacement came up: an evicted instance may stop now. */
    if (in->state == DROVER__INSTANCE_STATE__ST_UP && m->ndraining > 0 && !in->stopping)
        ctl_app_want_reconcile(m, in->app);
}

void
ctl_node_apply_report(struct ctl_model *m, struct ctl_node *n, Drover__InstanceReport **v,
                      size_t nv, uint64_t now)
{
    uint64_t epoch = ctl_model_next_epoch(m);
    struct ctl_instance *in, *next;

    for (size_t i = 0; i < nv; i++) {
        in = ctl_inst_find(m, v[i]->id);
        if (in == NULL || in->node != n)
            continue;
        ctl_inst_seen(in, epoch);
        apply_one(m, n, in, v[i], now);
    }
    for (in = LIST_FIRST(&n->instances); in != NULL; in = next) {
        next = LIST_NEXT(in, node_link);
        if (in->seen_epoch == epoch)
            continue;
        if (in->stopping) {
            log_info("instance_gone", "app=%s inst=%s.%u id=%llu node=%s", in->app->name, in->type,
                     in->idx, (unsigned long long)in->id, n->name);
            ctl_inst_delete(m, in);
        } else if (in->oneoff && in->state != DROVER__INSTANCE_STATE__ST_PENDING) {
            /* It ran and the agent no longer has it (it restarted): a
             * one-off is never started twice. */
            ctl_relphase_ended(m, in, false);
            oneoff_done(m, in, "gone: its agent no longer runs it");
        } else if (in->state != DROVER__INSTANCE_STATE__ST_PENDING) {
            ctl_inst_set_state(m, in, DROVER__INSTANCE_STATE__ST_PENDING, now);
            ctl_inst_set_pid(m, in, 0);
        }
    }
}

bool
ctl_node_name_taken(const struct ctl_node *n, const char *boot_id, const char *previous_boot_id,
                    uint64_t mono_now, uint64_t timeout_ms)
{
    return n != NULL && strcmp(n->boot_id, boot_id) != 0 &&
           strcmp(n->boot_id, previous_boot_id) != 0 && n->state != CTL_NODE_DOWN &&
           n->heard_ms != 0 && mono_now - n->heard_ms < timeout_ms;
}

int
ctl_node_register(struct ctl_model *m, const struct ctl_node_reg *g, uint64_t now,
                  uint64_t mono_now, struct ctl_node **out)
{
    struct ctl_node *n = ctl_node_find(m, g->name);
    struct ctl_instance *in;
    bool is_new = n == NULL;
    int rc;

    if (n == NULL && (rc = ctl_node_add(m, g->name, &n)) < 0)
        return rc;
    ctl_node_touch(m, n); /* before any write: a refused commit restores it (undo.c) */
    if ((rc = ctl_node_set_range(n, g->port_min, g->port_max)) < 0)
        return rc;
    if (strcmp(n->address, g->address) != 0) {
        /* Endpoints show the node's address: their lists change. */
        LIST_FOREACH (in, &n->instances, node_link)
            ctl_app_endpoints_changed(m, in->app);
    }
    /* A new boot of the agent is not leaving (the old one may have been). */
    ctl_node_update(m, n, false, n->admin, strcmp(n->boot_id, g->boot_id) == 0 && n->leaving);
    ctl_node_set_identity(m, n, g->address, g->boot_id, g->capacity);
    ctl_node_heard(n, mono_now);
    ctl_node_set_digest(n, false, 0);
    ctl_node_apply_report(m, n, g->reports, g->nreports, now);
    ctl_model_capacity_changed(m);
    log_info("node_registered", "node=%s address=%s ports=%u-%u capacity=%u boot_id=%s new=%d",
             n->name, log_q(n->address), n->port_min, n->port_max, n->capacity, log_q(n->boot_id),
             is_new);
    *out = n;
    return 0;
}

void
ctl_node_sync(struct ctl_model *m, struct ctl_node *n, bool leaving, uint64_t now,
              uint64_t mono_now)
{
    ctl_node_heard(n, mono_now);
    if (n->state == CTL_NODE_DOWN)
        log_info("node_up", "node=%s", n->name);
    if (n->state == CTL_NODE_DOWN || n->leaving != leaving) {
        if (leaving && !n->leaving)
            log_info("node_leaving", "node=%s instances=%u", n->name, n->nlive);
        ctl_node_update(m, n, false, n->admin, leaving);
    }
}

void
ctl_node_set_admin(struct ctl_model *m, struct ctl_node *n, enum ctl_node_state admin)
{
    if (n->admin != admin)
        log_info("node_admin", "node=%s from=%s to=%s", n->name, ctl_node_state_name(n->admin),
                 ctl_node_state_name(admin));
    ctl_node_update(m, n, n->state == CTL_NODE_DOWN, admin, n->leaving);
    ctl_node_forget_lost(m, n);
}
