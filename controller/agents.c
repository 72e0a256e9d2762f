/* SPDX-License-Identifier: MIT */
/*
 * agents.c: the agent endpoint (register, sync, slug chunks), the node
 * timeout, and "sync now" notifications.
 *
 * Agents pull (docs/protocol.md). A node's assignment set is its instances
 * that are not stopping; every change to it bumps the node's generation, and
 * a sync whose generation differs gets the whole set back. A full report
 * updates the instances the controller placed on that node: a stopping one
 * that is stopped or absent is deleted; one that is assigned but absent is
 * simply pending again (the agent starts it after this sync). Reports of
 * instances the controller does not hold on that node are ignored: the agent
 * drains whatever it runs that is not assigned.
 *
 * A node silent for longer than DROVER_NODE_TIMEOUT_MS is down: its instances
 * become lost (stopping, so they leave its set: when it comes back its agent
 * drains them) and their apps are reconciled at once, which replaces them on
 * live nodes. Lost instances are deleted when the node's next full report
 * does not have them. The timeout counts from the last message heard in this
 * run of the controller, or from its start (store_sqlite.c gives every stored node a
 * fresh grace period): a controller that was away does not blame the nodes.
 *
 * Names: a register with another boot_id for a node heard from within the
 * timeout is refused (ERR_CONFLICT), unless it names that boot_id as its
 * previous one: that is the same agent (same data dir) restarted, taking its
 * node back, not a second host with the same name.
 *
 * Leaving: a sync with leaving set (the agent got SIGTERM) makes the node
 * draining until the agent is gone; reconcile.c then replaces its instances
 * elsewhere and takes each out of the node's set once its replacement is up.
 * The agent drains what it runs once its set is empty.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <nanomsg/nn.h>
#include <nanomsg/pubsub.h>
#include <nanomsg/reqrep.h>

#include "ctl.h"
#include "log.h"

#define NODE_TICK_MS 250
#define REPORTS_MAX CTL_CAPACITY_MAX
#define LABELS_MAX 256

static bool
str_ok(const char *s, size_t min, size_t max)
{
    size_t n;

    if (s == NULL)
        return false;
    n = strnlen(s, max + 1);
    return n >= min && n <= max;
}

/* NULL when every report is usable, else why not. */
static const char *
reports_invalid(Drover__InstanceReport **v, size_t n)
{
    size_t i;

    if (n > REPORTS_MAX)
        return "too many instance reports";
    for (i = 0; i < n; i++) {
        const Drover__InstanceReport *r = v[i];

        if (r == NULL || !str_ok(r->app, 0, APP_NAME_MAX) || !str_ok(r->name, 0, 64) ||
            !str_ok(r->reason, 0, CTL_REASON_MAX - 1))
            return "bad instance report";
        if ((unsigned)r->state > DROVER__INSTANCE_STATE__ST_FAILED)
            return "bad instance state";
    }
    return NULL;
}

static void
bad_request(struct ctl *ctl, struct nnuv_msg *req, const char *what, const char *why)
{
    log_warn("bad_message", "sock=agent msg=%s reason=%s", what, log_q(why));
    ctl_reply_error(ctl, req, DROVER__ERROR_CODE__ERR_BAD_REQUEST, "%s: %s", what, why);
}

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

/* Apply a complete report of the node's instances. */
static void
apply_report(struct ctl_model *m, struct ctl_node *n, Drover__InstanceReport **v, size_t nv)
{
    uint64_t epoch = ++m->epoch;
    struct ctl_instance *in, *next;
    Drover__InstanceState from;
    uint32_t crashes;
    size_t i;

    for (i = 0; i < nv; i++) {
        const Drover__InstanceReport *r = v[i];

        in = ctl_inst_find(m, r->id);
        if (in == NULL || in->node != n)
            continue;
        in->seen_epoch = epoch;
        if (in->stopping && r->state == DROVER__INSTANCE_STATE__ST_STOPPED) {
            log_info("instance_gone", "app=%s inst=%s.%u id=%llu node=%s", in->app->name, in->type,
                     in->idx, (unsigned long long)in->id, n->name);
            ctl_inst_delete(m, in);
            continue;
        }
        /* Crashes since the last report: restarts only grows while the
         * agent runs the instance (a restarted agent starts again at 0). */
        crashes = !in->oneoff && r->restarts > in->restarts ? r->restarts - in->restarts : 0;
        from = in->state;
        ctl_undo_save_inst(m, in); /* cause is not stored, but a restore puts it back */
        in->cause = (Drover__InstanceCause)r->cause;
        if (in->pid != r->pid || in->restarts != r->restarts || in->exit_code != r->exit_code ||
            in->exit_signal != r->exit_signal || in->since_ms != r->since_ms ||
            strcmp(in->reason, r->reason) != 0) {
            ctl_inst_touch(m, in); /* before the writes: undo.c copies it */
            in->pid = r->pid;
            in->restarts = r->restarts;
            in->exit_code = r->exit_code;
            in->exit_signal = r->exit_signal;
            in->since_ms = r->since_ms;
            snprintf(in->reason, sizeof(in->reason), "%s", r->reason);
        }
        in->memory_bytes = r->memory_bytes; /* live: never stored */
        in->cpu_permille = r->cpu_permille;
        if (in->oneoff && r->state == DROVER__INSTANCE_STATE__ST_STOPPED) {
            ctl_relphase_ended(m, in, true);
            oneoff_done(m, in, in->reason[0] != '\0' ? in->reason : "exited");
            continue;
        }
        /*
         * An assigned instance the agent stopped (it is shutting down, say)
         * is not running but still wanted: pending, like an absent one.
         */
        if (crashes > 0)
            crash_seen(m, n, in, crashes,
                       r->state == DROVER__INSTANCE_STATE__ST_CRASHED &&
                           from != DROVER__INSTANCE_STATE__ST_CRASHED);
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
            ctl_inst_set_state(m, in, DROVER__INSTANCE_STATE__ST_PENDING, now_ms());
            in->pid = 0; /* touched by the line above */
        }
    }
}

static const char *
register_invalid(const Drover__RegisterReq *r)
{
    size_t i;

    if (!str_ok(r->node, 1, NODE_NAME_MAX) || !name_node_valid(r->node))
        return "invalid node name";
    if (!str_ok(r->address, 1, CTL_ADDRESS_MAX))
        return "address must be 1..255 characters";
    if (r->port_min < 1 || r->port_min > r->port_max || r->port_max > 65535)
        return "port range must be 1 <= min <= max <= 65535";
    if (r->capacity < 1 || r->capacity > CTL_CAPACITY_MAX)
        return "capacity must be 1..100000";
    if (!str_ok(r->boot_id, 1, CTL_BOOT_ID_MAX))
        return "boot_id must be 1..63 characters";
    if (!str_ok(r->previous_boot_id, 0, CTL_BOOT_ID_MAX))
        return "previous_boot_id longer than 63 characters";
    if (r->n_labels > LABELS_MAX)
        return "too many labels";
    for (i = 0; i < r->n_labels; i++) {
        if (r->labels[i] == NULL || !str_ok(r->labels[i]->key, 0, 255) ||
            !str_ok(r->labels[i]->value, 0, 1024))
            return "bad label";
    }
    return reports_invalid(r->instances, r->n_instances);
}

static void
agent_register(struct ctl *ctl, struct nnuv_msg *req, const Drover__RegisterReq *r)
{
    struct ctl_model *m = ctl->model;
    struct ctl_node *n;
    Drover__Message rep = DROVER__MESSAGE__INIT;
    Drover__RegisterRep rr = DROVER__REGISTER_REP__INIT;
    const char *why = register_invalid(r);
    uint64_t now = mono_ms();
    bool is_new = false;
    int rc;

    if (why != NULL) {
        bad_request(ctl, req, "register", why);
        return;
    }

    n = ctl_node_find(m, r->node);
    if (n != NULL && strcmp(n->boot_id, r->boot_id) != 0 &&
        strcmp(n->boot_id, r->previous_boot_id) != 0 && n->state != CTL_NODE_DOWN &&
        n->heard_ms != 0 && now - n->heard_ms < ctl->cfg.node_timeout_ms) {
        log_warn("node_conflict", "node=%s address=%s holder=%s", n->name, log_q(r->address),
                 log_q(n->address));
        ctl_reply_error(ctl, req, DROVER__ERROR_CODE__ERR_CONFLICT,
                        "node name %s is already taken by a live agent at %s; give this agent "
                        "another DROVER_NODE_NAME",
                        r->node, n->address);
        return;
    }
    if (n == NULL) {
        rc = ctl_node_add(m, r->node, &n);
        if (rc < 0) {
            ctl_reply_error(ctl, req, DROVER__ERROR_CODE__ERR_INTERNAL, "cannot add node");
            return;
        }
        n->generation = 1;
        is_new = true;
    }
    ctl_node_touch(m, n); /* before any write: a refused commit restores it (undo.c) */
    if (ctl_node_set_range(n, (uint16_t)r->port_min, (uint16_t)r->port_max) < 0) {
        ctl_reply_error(ctl, req, DROVER__ERROR_CODE__ERR_INTERNAL, "out of memory");
        return;
    }
    if (strcmp(n->address, r->address) != 0) {
        struct ctl_instance *in;

        /* Endpoints show the node's address: their lists change. */
        LIST_FOREACH(in, &n->instances, node_link)
        ctl_app_endpoints_changed(m, in->app);
    }
    strcpy(n->address, r->address);
    /* A new boot of the agent is not leaving (the old one may have been). */
    ctl_node_update(m, n, false, n->admin, strcmp(n->boot_id, r->boot_id) == 0 && n->leaving);
    strcpy(n->boot_id, r->boot_id);
    n->capacity = r->capacity;
    n->last_seen_ms = n->heard_ms = now;
    n->unreachable = false;
    n->have_digest = false;
    ctl_node_touch(m, n);
    apply_report(m, n, r->instances, r->n_instances);
    m->capacity_changed = true;
    log_info("node_registered", "node=%s address=%s ports=%u-%u capacity=%u boot_id=%s new=%d",
             n->name, log_q(n->address), n->port_min, n->port_max, n->capacity, log_q(n->boot_id),
             is_new);
    if (ctl_commit(ctl) < 0) {
        ctl_reply_error(ctl, req, DROVER__ERROR_CODE__ERR_INTERNAL, "%s",
                        ctl_store_why(ctl->store));
        return;
    }
    rr.heartbeat_ms = (uint32_t)ctl->cfg.heartbeat_ms;
    rep.body_case = DROVER__MESSAGE__BODY_REGISTER_REP;
    rep.register_rep = &rr;
    ctl_reply(ctl, req, &rep);
}

/* The release's config as protobuf, built once per release and kept. */
static Drover__KeyValue **
release_env(struct ctl_release *rel)
{
    size_t i;

    if (rel->pb_env != NULL || rel->nconfig == 0)
        return rel->pb_env;
    rel->pb_kv = calloc(rel->nconfig, sizeof(*rel->pb_kv));
    rel->pb_env = calloc(rel->nconfig, sizeof(*rel->pb_env));
    if (rel->pb_kv == NULL || rel->pb_env == NULL) {
        free(rel->pb_kv);
        free(rel->pb_env);
        rel->pb_kv = NULL;
        rel->pb_env = NULL;
        return NULL;
    }
    for (i = 0; i < rel->nconfig; i++) {
        drover__key_value__init(&rel->pb_kv[i]);
        rel->pb_kv[i].key = rel->config[i].key;
        rel->pb_kv[i].value = rel->config[i].value;
        rel->pb_env[i] = &rel->pb_kv[i];
    }
    return rel->pb_env;
}

static Drover__Assignment *
oneoff_assignment(struct ctl_arena *ar, struct ctl_instance *in, struct ctl_release *rel)
{
    const struct ctl_formation *f = in->ptype[0] ? ctl_formation_find(in->app, in->ptype) : NULL;
    Drover__Assignment *a = ctl_arena_alloc(ar, sizeof(*a));

    if (a == NULL)
        return NULL;
    drover__assignment__init(a);
    a->id = in->id;
    a->app = in->app->name;
    a->name = ctl_arena_printf(ar, "%s.%u", in->type, in->idx);
    a->type = in->type;
    a->release = in->release;
    a->slug_sha256 = rel->slug_sha256;
    a->slug_size = rel->slug_size;
    a->command = in->command != NULL ? in->command : "";
    a->env = release_env(rel);
    a->n_env = a->env != NULL ? rel->nconfig : 0;
    if ((rel->nconfig > 0 && a->env == NULL) || a->name == NULL)
        return NULL;
    a->port = in->port;
    a->health = "none";
    a->grace_ms = f != NULL ? f->grace_ms : CTL_DEFAULT_GRACE_MS;
    a->boot_timeout_ms = CTL_DEFAULT_BOOT_TIMEOUT_MS;
    a->oneoff = true;
    a->attach = in->attach;
    a->tty = in->tty;
    a->rows = in->rows;
    a->cols = in->cols;
    return a;
}

/* A type with no formation row (not expected: every release type gets one)
 * runs with the default settings, in arena memory. */
static const struct ctl_formation *
default_settings(struct ctl_arena *ar, const char *type)
{
    struct ctl_formation *f = ctl_arena_alloc(ar, sizeof(*f));

    if (f == NULL)
        return NULL;
    snprintf(f->type, sizeof(f->type), "%s", type);
    ctl_settings_defaults(f);
    return f;
}

/* The node's whole assignment set, in arena memory: O(instances on it). */
static int
build_assignments(struct ctl_node *n, struct ctl_arena *ar, Drover__SyncRep *sr)
{
    struct ctl_instance *in;
    size_t k = 0;

    sr->assignments = ctl_arena_alloc(ar, (n->nlive + 1) * sizeof(*sr->assignments));
    if (sr->assignments == NULL)
        return -ENOMEM;
    LIST_FOREACH(in, &n->instances, node_link)
    {
        struct ctl_release *rel = ctl_release_get(in->app, in->release);
        const struct ctl_ptype *pt = rel != NULL ? ctl_release_type(rel, in->type) : NULL;
        const struct ctl_formation *f = ctl_formation_find(in->app, in->type);
        Drover__Assignment *a;

        if (in->stopping)
            continue;
        if (in->oneoff && rel != NULL && k < n->nlive) {
            if ((a = oneoff_assignment(ar, in, rel)) == NULL)
                return -ENOMEM;
            sr->assignments[k++] = a;
            continue;
        }
        if (pt == NULL || k >= n->nlive) {
            log_error("assignment_skipped", "app=%s inst=%s.%u release=%u", in->app->name, in->type,
                      in->idx, in->release);
            continue;
        }
        a = ctl_arena_alloc(ar, sizeof(*a));
        if (a == NULL)
            return -ENOMEM;
        drover__assignment__init(a);
        a->id = in->id;
        a->app = in->app->name;
        a->name = ctl_arena_printf(ar, "%s.%u", in->type, in->idx);
        a->type = in->type;
        a->release = in->release;
        a->slug_sha256 = rel->slug_sha256;
        a->slug_size = rel->slug_size;
        a->command = pt->command;
        a->env = release_env(rel);
        a->n_env = a->env != NULL ? rel->nconfig : 0;
        if (rel->nconfig > 0 && a->env == NULL)
            return -ENOMEM;
        a->port = in->port;
        if (f == NULL && (f = default_settings(ar, in->type)) == NULL)
            return -ENOMEM;
        a->health = (char *)f->health;
        a->grace_ms = f->grace_ms;
        a->boot_timeout_ms = f->boot_timeout_ms;
        a->min_healthy_ms = f->min_healthy_ms;
        a->shutdown_delay_ms = f->shutdown_delay_ms;
        a->memory_bytes = f->memory_bytes;
        a->cpu_milli = f->cpu_milli;
        a->pids = f->pids;
        a->nofile = f->nofile;
        if (a->name == NULL)
            return -ENOMEM;
        sr->assignments[k++] = a;
    }
    sr->n_assignments = k;
    sr->has_assignments = true;
    return 0;
}

static void
agent_sync(struct ctl *ctl, struct nnuv_msg *req, const Drover__SyncReq *r)
{
    struct ctl_model *m = ctl->model;
    struct ctl_node *n;
    Drover__Message rep = DROVER__MESSAGE__INIT;
    Drover__SyncRep sr = DROVER__SYNC_REP__INIT;
    struct ctl_arena *ar = NULL;
    const char *why;
    uint64_t now = mono_ms();

    if (!str_ok(r->node, 1, NODE_NAME_MAX) || !name_node_valid(r->node))
        why = "invalid node name";
    else if (!str_ok(r->boot_id, 0, CTL_BOOT_ID_MAX))
        why = "boot_id longer than 63 characters";
    else
        why = reports_invalid(r->instances, r->n_instances);
    if (why != NULL) {
        bad_request(ctl, req, "sync", why);
        return;
    }
    rep.body_case = DROVER__MESSAGE__BODY_SYNC_REP;
    rep.sync_rep = &sr;
    n = ctl_node_find(m, r->node);
    if (n == NULL || strcmp(n->boot_id, r->boot_id) != 0) {
        sr.reregister = true;
        ctl_reply(ctl, req, &rep);
        return;
    }
    n->last_seen_ms = n->heard_ms = now;
    n->unreachable = false;
    if (n->state == CTL_NODE_DOWN)
        log_info("node_up", "node=%s", n->name);
    if (n->state == CTL_NODE_DOWN || n->leaving != r->leaving) {
        if (r->leaving && !n->leaving)
            log_info("node_leaving", "node=%s instances=%u", n->name, n->nlive);
        ctl_node_update(m, n, false, n->admin, r->leaving);
    }
    if (r->full) {
        apply_report(m, n, r->instances, r->n_instances);
        n->digest = r->digest;
        n->have_digest = true;
    } else if (!n->have_digest || n->digest != r->digest) {
        sr.want_full = true;
    }
    if (ctl_commit(ctl) < 0) {
        ctl_reply_error(ctl, req, DROVER__ERROR_CODE__ERR_INTERNAL, "%s",
                        ctl_store_why(ctl->store));
        return;
    }
    sr.generation = n->generation;
    if (r->generation != n->generation) {
        ar = ctl_arena_new();
        if (ar == NULL || build_assignments(n, ar, &sr) < 0) {
            ctl_arena_free(ar);
            ctl_reply_error(ctl, req, DROVER__ERROR_CODE__ERR_INTERNAL, "out of memory");
            return;
        }
        ctl_destroy_view(ctl->model, &sr); /* apps:destroy: what to delete on disk */
    }
    ctl_reply(ctl, req, &rep);
    ctl_arena_free(ar);
}

void
ctl_agents_handle(struct ctl *ctl, struct nnuv_msg *req, Drover__Message *m)
{
    switch (m->body_case) {
    case DROVER__MESSAGE__BODY_REGISTER_REQ:
        agent_register(ctl, req, m->register_req);
        break;
    case DROVER__MESSAGE__BODY_SYNC_REQ:
        agent_sync(ctl, req, m->sync_req);
        break;
    case DROVER__MESSAGE__BODY_SLUG_REQ:
        ctl_slugs_read(ctl->slugs, req, m); /* takes m */
        return;
    case DROVER__MESSAGE__BODY_RUN_PIPE_REQ:
        ctl_runs_pipe(ctl->runs, req, m); /* takes m */
        return;
    default:
        log_warn("bad_message", "sock=agent reason=unexpected_type type=%d", (int)m->body_case);
        ctl_reply_error(ctl, req, DROVER__ERROR_CODE__ERR_BAD_REQUEST,
                        "message type %d is not handled on the agent endpoint", (int)m->body_case);
        break;
    }
    wire_msg_free(m);
}

static void
agents_recv(struct nnuv *s, struct nnuv_msg *req, void *arg)
{
    struct ctl *ctl = arg;
    Drover__Message *m;

    if (ctl->stopping) {
        nnuv_msg_free(req);
        return;
    }
    m = ctl_open(ctl, req, "agent");
    if (m != NULL)
        ctl_agents_handle(ctl, req, m);
}

/* ---- node timeout ---- */

static void
node_down(struct ctl *ctl, struct ctl_node *n, uint64_t now)
{
    struct ctl_model *m = ctl->model;
    struct ctl_instance *in;

    log_warn("node_down", "node=%s silent_ms=%llu instances=%u", n->name,
             (unsigned long long)(now - n->last_seen_ms), n->nlive);
    ctl_node_update(m, n, true, n->admin, n->leaving);
    LIST_FOREACH(in, &n->instances, node_link)
    {
        if (in->stopping)
            continue;
        ctl_inst_stop(m, in); /* placed: never frees in */
        ctl_inst_set_state(m, in, DROVER__INSTANCE_STATE__ST_LOST, now_ms());
        ctl_app_want_reconcile(m, in->app); /* replaced by ctl_commit's settle */
    }
    ctl_node_forget_lost(m, n);
}

static void
node_tick(uv_timer_t *t)
{
    struct ctl *ctl = t->data;
    struct ctl_model *m = ctl->model;
    uint64_t now = mono_ms();
    struct ctl_node **down = calloc(m->nnodes + 1, sizeof(*down));
    bool changed = false;
    size_t i, ndown;

    /* Who is down: liveness.c (stalls and mass silences are not deaths). */
    ndown = down == NULL ? 0
                         : ctl_liveness_tick(&ctl->liveness, m, now, ctl->cfg.node_timeout_ms, down,
                                             m->nnodes);
    /* The store refuses writes: a node_down it refused (and undid) is
     * tried again once per node timeout, not at every tick. */
    if (ndown > 0 && ctl_store_failing(ctl->store) &&
        now - ctl->liveness.refused < ctl->cfg.node_timeout_ms)
        ndown = 0;
    else if (ndown > 0)
        ctl->liveness.refused = now;
    for (i = 0; i < ndown; i++)
        node_down(ctl, down[i], now);
    changed = ndown > 0;
    free(down);
    for (i = 0; i < m->nnodes; i++) {
        struct ctl_node *n = m->node_v[i];

        n->unreachable = n->state != CTL_NODE_DOWN && now > n->last_seen_ms &&
                         now - n->last_seen_ms > 3 * ctl->cfg.heartbeat_ms;
    }
    changed |= ctl_deploys_tick(m, now);
    ctl_fdwatch_tick(now);
    if (changed)
        ctl_commit(ctl);
    else
        ctl_endpoints_wake(ctl->endpoints, false); /* waits that are over */
}

/* ---- notifications ---- */

/*
 * Runs once per loop turn (uv_check): at most one notification per changed
 * node however many requests changed it during the turn.
 */
void
ctl_notify_flush(struct ctl *ctl)
{
    struct ctl_model *m = ctl->model;
    struct ctl_node *n;
    Drover__Message msg = DROVER__MESSAGE__INIT;
    Drover__Notify no = DROVER__NOTIFY__INIT;
    char topic[NODE_NAME_MAX + 3];
    uint8_t *buf;
    size_t len;
    int rc;

    msg.body_case = DROVER__MESSAGE__BODY_NOTIFY;
    msg.notify = &no;
    while ((n = TAILQ_FIRST(&m->notify)) != NULL) {
        TAILQ_REMOVE(&m->notify, n, notify_link);
        n->notify = false;
        if (n->state == CTL_NODE_DOWN || ctl->pub == NULL)
            continue;
        no.generation = n->generation;
        if (wire_seal(&ctl->sender, &msg, &buf, &len) < 0)
            continue;
        snprintf(topic, sizeof(topic), "%s\n", n->name);
        rc = nnuv_send2(ctl->pub, topic, strlen(topic), buf, len);
        if (rc < 0 && rc != -EAGAIN)
            log_warn("notify_failed", "node=%s err=%d", n->name, rc);
        free(buf);
    }
}

static void
notify_check(uv_check_t *c)
{
    ctl_notify_flush(c->data);
}

int
ctl_agents_start(struct ctl *ctl)
{
    int rc = 0;

    ctl->agents = nnuv_new(ctl->loop, AF_SP_RAW, NN_REP, agents_recv, ctl, &rc);
    if (ctl->agents == NULL)
        return rc;
    if ((rc = nnuv_bind(ctl->agents, ctl->cfg.agent_listen)) < 0) {
        log_error("bind_failed", "endpoint=%s err=%s", ctl->cfg.agent_listen, strerror(-rc));
        return rc;
    }
    ctl->pub = nnuv_new(ctl->loop, AF_SP, NN_PUB, NULL, NULL, &rc);
    if (ctl->pub == NULL)
        return rc;
    if ((rc = nnuv_bind(ctl->pub, ctl->cfg.notify_listen)) < 0) {
        log_error("bind_failed", "endpoint=%s err=%s", ctl->cfg.notify_listen, strerror(-rc));
        return rc;
    }
    if ((rc = nnuv_start(ctl->agents)) < 0)
        return rc;
    ctl->node_timer.data = ctl;
    ctl->notify_check.data = ctl;
    if ((rc = uv_timer_start(&ctl->node_timer, node_tick, NODE_TICK_MS, NODE_TICK_MS)) < 0)
        return rc;
    return uv_check_start(&ctl->notify_check, notify_check);
}

/* Stop taking agent requests and declaring nodes down; main.c closes. */
void
ctl_agents_stop(struct ctl *ctl)
{
    if (ctl->agents != NULL)
        nnuv_stop(ctl->agents);
    uv_timer_stop(&ctl->node_timer);
}
