/* SPDX-License-Identifier: MIT */
/*
 * agents.c: the agents' register and sync handlers (the rules they apply
 * are nodes.c's), their assignment sets, the node timeout, and "sync now"
 * notifications.
 *
 * Agents pull (docs/protocol.md). A node's assignment set is its instances
 * that are not stopping; every change to it bumps the node's generation, and
 * a sync whose generation differs gets the whole set back, built after the
 * commit so that it has what the commit's settle placed.
 *
 * A node silent for longer than DROVER_NODE_TIMEOUT_MS is down: its instances
 * become lost (stopping, so they leave its set: when it comes back its agent
 * drains them) and their apps are reconciled at once, which replaces them on
 * live nodes. Lost instances are deleted when the node's next full report
 * does not have them. The timeout counts from the last message heard in this
 * run of the controller, or from its start (store_sqlite.c gives every stored node a
 * fresh grace period): a controller that was away does not blame the nodes.
 *
 * Names: a register that breaks nodes.c's name rule is refused
 * (ERR_CONFLICT).
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

#include "ctl.h"
#include "http.h"
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

int
ctl_h_register(struct ctl_call *c)
{
    const Drover__RegisterReq *r = c->req->register_req;
    struct ctl_model *m = c->ctl->model;
    struct ctl_node *n = ctl_node_find(m, r->node);
    Drover__RegisterRep *rr = ctl_arena_alloc(c->ar, sizeof(*rr));
    const char *why = register_invalid(r);
    struct ctl_node_reg g;

    if (why != NULL)
        return ctl_fail(c, DROVER__ERROR_CODE__ERR_BAD_REQUEST, "register: %s", why);
    if (rr == NULL)
        return ctl_oom(c);
    if (ctl_node_name_taken(n, r->boot_id, r->previous_boot_id, mono_ms(),
                            c->ctl->cfg.node_timeout_ms)) {
        log_warn("node_conflict", "node=%s address=%s holder=%s", n->name, log_q(r->address),
                 log_q(n->address));
        return ctl_fail(c, DROVER__ERROR_CODE__ERR_CONFLICT,
                        "node name %s is already taken by a live agent at %s; give this agent "
                        "another DROVER_NODE_NAME",
                        r->node, n->address);
    }
    g = (struct ctl_node_reg){
        r->node,     r->address,   r->boot_id,    (uint16_t)r->port_min, (uint16_t)r->port_max,
        r->capacity, r->instances, r->n_instances};
    if (ctl_node_register(m, &g, now_ms(), mono_ms(), &n) < 0)
        return ctl_fail(c, DROVER__ERROR_CODE__ERR_INTERNAL, "cannot add node");
    n->sync_ms = mono_ms(); /* beat.c: its first sync follows */
    drover__register_rep__init(rr);
    rr->heartbeat_ms = (uint32_t)c->ctl->cfg.heartbeat_ms;
    rr->term = ctl_leader_term(c->ctl->leader);        /* agents refuse older terms */
    rr->udp_watch_ms = ctl_beat_watch_ms(c->ctl);      /* beat.c */
    rr->summon_watch_ms = ctl_summon_watch_ms(c->ctl); /* beat.c */
    c->rep.body_case = DROVER__MESSAGE__BODY_REGISTER_REP;
    c->rep.register_rep = rr;
    return 0;
}

/* What every assignment of in has: who it is, its release, its command. */
static Drover__Assignment *
assignment_new(struct ctl_arena *ar, struct ctl_instance *in, struct ctl_release *rel,
               const char *command)
{
    Drover__Assignment *a = ctl_arena_alloc(ar, sizeof(*a));

    if (a == NULL)
        return NULL;
    drover__assignment__init(a);
    a->id = in->id;
    a->app = in->app->name;
    a->name = ctl_arena_inst_name(ar, in->type, in->idx);
    a->type = in->type;
    a->release = in->release;
    a->slug_sha256 = rel->slug_sha256;
    a->slug_size = rel->slug_size;
    a->command = (char *)command;
    a->env = ctl_release_env(rel);
    a->n_env = a->env != NULL ? rel->nconfig : 0;
    a->port = in->port;
    if ((rel->nconfig > 0 && a->env == NULL) || a->name == NULL)
        return NULL;
    return a;
}

static Drover__Assignment *
oneoff_assignment(struct ctl_arena *ar, struct ctl_instance *in, struct ctl_release *rel)
{
    const struct ctl_formation *f = in->ptype[0] ? ctl_formation_find(in->app, in->ptype) : NULL;
    Drover__Assignment *a = assignment_new(ar, in, rel, in->command != NULL ? in->command : "");

    if (a == NULL)
        return NULL;
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

/* An instance of a process type, as its agent runs it. */
static Drover__Assignment *
type_assignment(struct ctl_arena *ar, struct ctl_instance *in, struct ctl_release *rel,
                const struct ctl_ptype *pt)
{
    const struct ctl_formation *f = ctl_formation_find(in->app, in->type);
    Drover__Assignment *a = assignment_new(ar, in, rel, pt->command);

    if (f == NULL)
        f = default_settings(ar, in->type);
    if (a == NULL || f == NULL)
        return NULL;
    a->health = (char *)f->health;
    a->grace_ms = f->grace_ms;
    a->boot_timeout_ms = f->boot_timeout_ms;
    a->min_healthy_ms = f->min_healthy_ms;
    a->shutdown_delay_ms = f->shutdown_delay_ms;
    a->memory_bytes = f->memory_bytes;
    a->cpu_milli = f->cpu_milli;
    a->pids = f->pids;
    a->nofile = f->nofile;
    return a;
}

/*
 * For an agent that reads env sets (SyncReq.env_sets): a's config vars
 * replaced by a reference to rel's env set in sr, added at its first use.
 * Every instance of a release has the same ones: with 20 of a Heroku app's
 * size, sending them inline doubled the controller's CPU per placement
 * (sealing them for every assignment), and the agent's unpacking.
 */
static int
share_env(struct ctl_arena *ar, Drover__SyncRep *sr, uint64_t stamp, struct ctl_release *rel,
          Drover__Assignment *a)
{
    Drover__EnvSet *es;

    if (a->n_env == 0)
        return 0;
    if (rel->env_stamp != stamp) {
        if ((es = ctl_arena_alloc(ar, sizeof(*es))) == NULL)
            return -ENOMEM;
        drover__env_set__init(es);
        es->env = a->env;
        es->n_env = a->n_env;
        sr->env_sets[sr->n_env_sets++] = es;
        rel->env_stamp = stamp;
        rel->env_set = (uint32_t)sr->n_env_sets;
    }
    a->env_set = rel->env_set;
    a->env = NULL;
    a->n_env = 0;
    return 0;
}

/* The node's whole assignment set, in arena memory: O(instances on it);
 * the config vars as env sets when the agent reads them. */
static int
build_assignments(struct ctl_node *n, struct ctl_arena *ar, Drover__SyncRep *sr, bool env_sets)
{
    static uint64_t stamps; /* one per set built: the releases' env_stamp */
    uint64_t stamp = ++stamps;
    struct ctl_instance *in;
    size_t k = 0;

    sr->assignments = ctl_arena_alloc(ar, (n->nlive + 1) * sizeof(*sr->assignments));
    if (sr->assignments == NULL)
        return -ENOMEM;
    if (env_sets &&
        (sr->env_sets = ctl_arena_alloc(ar, (n->nlive + 1) * sizeof(*sr->env_sets))) == NULL)
        return -ENOMEM;
    LIST_FOREACH (in, &n->instances, node_link) {
        struct ctl_release *rel = ctl_release_get(in->app, in->release);
        const struct ctl_ptype *pt = rel != NULL ? ctl_release_type(rel, in->type) : NULL;
        Drover__Assignment *a;

        if (in->stopping)
            continue;
        if (in->oneoff && rel != NULL && k < n->nlive) {
            if ((a = oneoff_assignment(ar, in, rel)) == NULL ||
                (env_sets && share_env(ar, sr, stamp, rel, a) < 0))
                return -ENOMEM;
            sr->assignments[k++] = a;
            continue;
        }
        if (pt == NULL || k >= n->nlive) {
            log_error("assignment_skipped", "app=%s inst=%s.%u release=%u", in->app->name, in->type,
                      in->idx, in->release);
            continue;
        }
        if ((a = type_assignment(ar, in, rel, pt)) == NULL ||
            (env_sets && share_env(ar, sr, stamp, rel, a) < 0))
            return -ENOMEM;
        sr->assignments[k++] = a;
    }
    sr->n_assignments = k;
    sr->has_assignments = true;
    return 0;
}

static const char *
sync_invalid(const Drover__SyncReq *r)
{
    if (!str_ok(r->node, 1, NODE_NAME_MAX) || !name_node_valid(r->node))
        return "invalid node name";
    if (!str_ok(r->boot_id, 0, CTL_BOOT_ID_MAX))
        return "boot_id longer than 63 characters";
    return reports_invalid(r->instances, r->n_instances);
}

/* After the commit, whose settle may have placed instances on the node:
 * its generation and, when the agent's differs, its whole set. */
static int
sync_view(struct ctl_call *c)
{
    const Drover__SyncReq *r = c->req->sync_req;
    struct ctl_node *n = ctl_node_find(c->ctl->model, r->node);
    Drover__SyncRep *sr = c->rep.sync_rep;

    if (n == NULL) { /* removed meanwhile: register again */
        sr->reregister = true;
        return 0;
    }
    n->sync_ms = mono_ms();
    sr->generation = n->generation;
    sr->term = ctl_leader_term(c->ctl->leader);
    if (r->generation == n->generation)
        return 0;
    if (build_assignments(n, c->ar, sr, r->env_sets) < 0)
        return ctl_oom(c);
    ctl_destroy_view(c->ctl->model, sr); /* apps:destroy: what to delete on disk */
    return 0;
}

int
ctl_h_sync(struct ctl_call *c)
{
    const Drover__SyncReq *r = c->req->sync_req;
    Drover__SyncRep *sr = ctl_arena_alloc(c->ar, sizeof(*sr));
    const char *why = sync_invalid(r);
    struct ctl_node *n;

    if (why != NULL)
        return ctl_fail(c, DROVER__ERROR_CODE__ERR_BAD_REQUEST, "sync: %s", why);
    if (sr == NULL)
        return ctl_oom(c);
    drover__sync_rep__init(sr);
    c->rep.body_case = DROVER__MESSAGE__BODY_SYNC_REP;
    c->rep.sync_rep = sr;
    sr->udp_watch_ms = ctl_beat_watch_ms(c->ctl);      /* beat.c */
    sr->summon_watch_ms = ctl_summon_watch_ms(c->ctl); /* beat.c */
    n = ctl_node_find(c->ctl->model, r->node);
    if (n == NULL || strcmp(n->boot_id, r->boot_id) != 0) {
        sr->reregister = true;
        return 0;
    }
    ctl_node_sync(c->ctl->model, n, r->leaving, now_ms(), mono_ms());
    n->sync_ms = mono_ms(); /* beat.c: no summons while it syncs */
    if (r->full) {
        ctl_node_apply_report(c->ctl->model, n, r->instances, r->n_instances, now_ms());
        ctl_node_set_digest(n, true, r->digest);
    } else if (!n->have_digest || n->digest != r->digest) {
        sr->want_full = true;
    }
    c->view = sync_view;
    return ctl_sync_hold(c, n); /* a quiet watch waits for a change (watch.c) */
}

/*
 * Overload (front.c): may this agent request wait? Only a heartbeat: a
 * sync with no report, nothing to say about leaving, and the node's
 * current generation and digest, which would change nothing and get
 * nothing back. A waiting heartbeat still proves the node alive: it is
 * heard here. Returns its node, or NULL when it may not wait. Registers,
 * syncs that carry reports (acknowledgements) and syncs that fetch a new
 * assignment set are the progress and are always served (measured:
 * answering registers ERR_BUSY during the start-up storm of 10,000 agents
 * kept the backlog as long and took registration from 4 s to 108 s).
 */
struct ctl_node *
ctl_agent_may_wait(struct ctl *ctl, const Drover__Message *m)
{
    const Drover__SyncReq *r = m->sync_req;
    struct ctl_node *n;

    if (m->body_case != DROVER__MESSAGE__BODY_SYNC_REQ || r == NULL || r->full || r->node == NULL ||
        r->boot_id == NULL)
        return NULL;
    n = ctl_node_find(ctl->model, r->node);
    if (n == NULL || n->state == CTL_NODE_DOWN || n->leaving != r->leaving ||
        strcmp(n->boot_id, r->boot_id) != 0 || n->generation != r->generation || !n->have_digest ||
        n->digest != r->digest)
        return NULL;
    ctl_node_heard(n, mono_ms());
    return n;
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
    LIST_FOREACH (in, &n->instances, node_link) {
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

    if (!ctl_leader_acting(ctl->leader)) { /* a standby judges no node */
        free(down);
        return;
    }
    /* Who is down: liveness.c (stalls and mass silences are not deaths).
     * Nobody while the agent endpoint is a heartbeat or more behind
     * (nnuv_backlog_ms, front.c's busy signal): a node's silence may be its
     * heartbeats waiting in this controller's own queue (measured on a loaded machine
     * without this: 3,088 node_down events among 1,000 agents);
     * once the queue is drained they have been heard. */
    if (ctl->agents != NULL && nnuv_backlog_ms(ctl->agents) >= ctl->cfg.heartbeat_ms)
        ndown = 0;
    /* Nor while a change set has been in flight for a heartbeat or more
     * (commit.c, PostgreSQL): the replies the agents wait for are held by
     * this controller's store, and their re-sends space out meanwhile. */
    else if (ctl->cm.job != NULL &&
             uv_hrtime() - ctl->cm.t0 >= ctl->cfg.heartbeat_ms * UINT64_C(1000000))
        ndown = 0;
    else
        ndown = down == NULL ? 0
                             : ctl_liveness_tick(&ctl->liveness, m, now, ctl->cfg.node_timeout_ms,
                                                 down, m->nnodes);
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
        /* A long watch lasts only while its node's datagrams come. */
        if (n->watch_long && !ctl_beat_recent(n, now, 2 * ctl->cfg.heartbeat_ms))
            ctl_watch_cut(ctl->watches, n);
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
 * node however many requests changed it during the turn. A node whose
 * agent holds a watch gets the watch's answer (watch.c: one write, to it
 * alone); the PUB socket serves only agents that predate watches.
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
    no.term = ctl_leader_term(ctl->leader);
    if (!TAILQ_EMPTY(&m->notify) && !ctl_leader_acting(ctl->leader))
        return;
    while ((n = TAILQ_FIRST(&m->notify)) != NULL) {
        TAILQ_REMOVE(&m->notify, n, notify_link);
        n->notify = false;
        if (n->state == CTL_NODE_DOWN || ctl_watch_wake(ctl->watches, n) || ctl->pub == NULL)
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

/* After the sockets were read: the turn's calls are written and answered,
 * then the nodes they changed are told (the watches it answers wait for the
 * next turn's idle handle). */
static void
notify_check(uv_check_t *c)
{
    ctl_commits_turn(c->data);
    ctl_notify_flush(c->data);
}

int
ctl_agents_start(struct ctl *ctl)
{
    int rc = 0;

    ctl->pub = nnuv_new(ctl->loop, AF_SP, NN_PUB, NULL, NULL, &rc);
    if (ctl->pub == NULL)
        return rc;
    if ((rc = nnuv_bind(ctl->pub, ctl->cfg.notify_listen)) < 0) {
        log_error("bind_failed", "endpoint=%s err=%s", ctl->cfg.notify_listen, strerror(-rc));
        return rc;
    }
    if ((ctl->watches = ctl_watches_new(ctl)) == NULL)
        return -ENOMEM;
    if ((rc = ctl_beats_start(ctl)) < 0)
        return rc;
    ctl->node_timer.data = ctl;
    ctl->notify_check.data = ctl;
    if ((rc = uv_timer_start(&ctl->node_timer, node_tick, NODE_TICK_MS, NODE_TICK_MS)) < 0)
        return rc;
    return uv_check_start(&ctl->notify_check, notify_check);
}

/* Stop declaring nodes down; main.c closes. */
void
ctl_agents_stop(struct ctl *ctl)
{
    uv_timer_stop(&ctl->node_timer);
    ctl_watches_stop(ctl->watches);
}
