/* SPDX-License-Identifier: MIT */
/*
 * conn.c: the controller as this node sees it (docs/protocol.md, "Agents
 * pull").
 *
 * The RPC client (common/rpc.c) carries register and sync, one request at
 * a time: a new request cancels the outstanding one, so a sync wanted while
 * one is in flight is remembered (again, dirty) and sent when the reply
 * arrives. A request unanswered for RESEND_BEATS heartbeats comes back as a
 * timeout and is rebuilt from the current state and sent again (never
 * queued as a delta); each further one without a reply waits twice as long
 * (up to 16 times), with jitter (rpc_backoff_ms). With several controllers
 * (DROVER_JOIN=a,b,c) the client follows the leader (a standby's
 * ERR_NOT_LEADER names it; a timeout tries the next), and the log socket
 * follows it (on_move).
 *
 * Watch (issue 15): a quiet sync carries watch_ms (one heartbeat), and the
 * controller holds it until this node's set changes or the time is over
 * (controller/watch.c); its answer says watched, and the next sync goes
 * out at once. So a change reaches this node in one write, to it alone,
 * and syncs keep their heartbeat rate. The watch is the sync: it follows
 * the leader as the sync does, and one lost with a controller (restart,
 * leader change) is sent again by the next heartbeat or resend. A
 * controller that predates watches answers at once without watched: then
 * syncs go at heartbeats, as before (this agent has no notify socket: the
 * controller's PUB fan-out cost O(nodes) writes per change).
 *
 * UDP heartbeats (issue 15): with a controller that says it takes them
 * (RegisterRep/SyncRep.udp_watch_ms), each heartbeat also sends one sealed
 * datagram (common/beat.h: node, boot, generation, digest, counter) to the
 * controller the RPC client follows, and the watch asks for udp_watch_ms
 * (half the controller's node timeout; at most BEAT_UDP_HOLD_BEATS heartbeats):
 * the controller holds it that long only while it hears this node's
 * datagrams, else one heartbeat, as before. The resend wait and
 * watch_lost's silence grow with the watch asked for. An older controller never says so:
 * then nothing changes.
 *
 * Summonses (issue 15; docs/protocol.md, "Summonses"): a controller that
 * says summon_watch_ms holds this node's watch that long (300 s) while it
 * hears its datagrams, which then say takes_summons and go to every
 * controller known, not only the one followed. A controller that hears this
 * node and holds no watch of it (a new leader, a controller back from a
 * restart, a connection lost without a sign) sends a sealed summons back;
 * on_summons follows it (or dials it again) and syncs at once. That, not
 * silence past a short hold, is how this node finds a leader that moved.
 *
 * Quiet heartbeats carry generation and digest only; a full report goes out
 * when the digest differs from the last acknowledged full one, when the
 * controller asked (want_full), or in the last sync of a shutdown. Nothing
 * here ever stops the agent: an unreachable or confused controller only
 * means the processes keep running as they are. The one exception is a
 * register refused because another live agent holds the node's name: then
 * this agent is the impostor, and agt_refused() makes it leave.
 *
 * Silence: when a request goes unanswered past its timeout, both sockets
 * drop their connection and dial again (the RPC client its own). A TCP connection whose
 * peer vanished behind a partition is retransmitted with exponential
 * backoff, and nanomsg would wait for it; a fresh connection makes a healed
 * partition, or a controller back from a restart, heard within a few
 * heartbeats instead of after the next retransmission. (nnuv_connect also
 * dials again whenever a socket finds itself without a connection, and
 * never lets nanomsg abort the agent for want of a port or descriptor.)
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <nanomsg/nn.h>
#include <nanomsg/pubsub.h>

#include "agt.h"
#include "beat.h"
#include "env.h"
#include "listen.h"
#include "log.h"
#include "nnuv.h"
#include "rpc.h"
#include "util.h"

enum req_kind { K_REGISTER, K_SYNC };

#define RESEND_BEATS 3

/* Where heartbeat datagrams go: one controller endpoint's UDP address, at
 * once for a numeric host, else resolved off the loop. */
struct beat_dest {
    struct agt_conn *c;
    char ep[ENV_ENDPOINT_MAX];
    struct sockaddr_storage addr;
    bool ok, resolving;
    uv_getaddrinfo_t gai;
};

struct agt_conn {
    struct agt *agt; /* borrowed */
    uint64_t term;   /* the highest leader term seen (HA fencing) */
    uv_loop_t *loop;
    const struct agt_config *cfg;
    struct rpc *rpc;
    uint8_t quick;          /* answers in a row that were not held, watched again */
    bool watching;          /* the controller has answered a watch (it holds them) */
    bool sent_watch;        /* the request in flight is a watch */
    uint64_t heard_breaks;  /* conn_breaks() at the last reply */
    bool lost_redialed;     /* watch_lost redialled in this silence */
    uint64_t replied_at;    /* uv_now of the last reply, or of the start */
    bool redialing;         /* silent: logged once until the next reply */
    enum agt_conn_state st; /* states.c's table */
    bool said_leaving;      /* syncs say so (agt_conn_leave) */
    bool sent_leaving;      /* the request in flight said so */
    bool sent_last;         /* the request in flight is the last sync */
    uint64_t leave_at;      /* uv_now of agt_conn_leave */
    uv_timer_t heartbeat;
    uv_timer_t soon; /* 0 ms: coalesces the changes of one loop iteration */
    uint32_t heartbeat_ms;
    bool announced;     /* event=ready printed */
    enum req_kind kind; /* of the request in flight */
    uint64_t seq;       /* of the request in flight */
    bool sent_full;
    uint64_t sent_digest;
    bool again; /* send another request once the reply is in */
    bool dirty; /* local state changed since the last request was built */
    bool have_acked;
    uint64_t acked_digest; /* of the last acknowledged full report */
    bool want_full;
    int nopen; /* handles not yet closed */
    /* UDP heartbeats (docs/protocol.md): the controller takes them */
    uint32_t udp_watch_ms;    /* 0: syncs only */
    uint32_t summon_watch_ms; /* the controller summons: the watch it holds long */
    uv_udp_t beat;
    bool beat_reading;                            /* summonses are read on it */
    uint64_t beat_counter;                        /* per boot (this process) */
    uint64_t summoned_at;                         /* uv_now of the last summons acted on */
    struct beat_dest dest[ENV_ENDPOINTS_MAX + 1]; /* every controller known */
    size_t ndest;
};

static void send_next(struct agt_conn *c);
static uint64_t conn_breaks(const struct agt_conn *c);
static void on_heartbeat(uv_timer_t *t);
static void on_soon(uv_timer_t *t);

/* Shutting down: the last sync is out (or over). */
static bool
is_last(const struct agt_conn *c)
{
    return c->st == AGT_CS_LAST || c->st == AGT_CS_DONE;
}

static bool
is_registered(const struct agt_conn *c)
{
    return c->st == AGT_CS_SYNCING || c->st == AGT_CS_LEAVING || c->st == AGT_CS_LAST;
}

/* Feed ev to the connection's table (states.c) and do what it says. */
static void
conn_apply(struct agt_conn *c, enum agt_conn_event ev)
{
    enum agt_conn_state next;
    enum agt_trans kind;
    unsigned act;

    if (ev == AGT_CE_LEAVE && !c->said_leaving) {
        c->said_leaving = true;
        c->leave_at = uv_now(c->loop);
    }
    next = agt_conn_next(c->st, ev, &act, &kind);
    if (kind == AGT_T_REFUSE) {
        log_warn("conn_event_refused", "node=%s state=%s event=%s", c->cfg->node,
                 agt_conn_state_name(c->st), agt_conn_event_name(ev));
        return;
    }
    if (kind == AGT_T_IGNORE)
        return;
    if (next != c->st)
        log_debug("conn_state", "node=%s from=%s to=%s event=%s", c->cfg->node,
                  agt_conn_state_name(c->st), agt_conn_state_name(next), agt_conn_event_name(ev));
    c->st = next;
    if (act & AGT_CA_FULL)
        c->want_full = true; /* the controller sees every instance at once */
    if (act & AGT_CA_SEND) {
        /* After the request in flight, or at the end of this loop turn. */
        c->again = true;
        uv_timer_start(&c->soon, on_soon, 0, 0);
    }
    if (act & AGT_CA_UNREACHABLE)
        agt_leave_unreachable(c->agt);
    if (act & AGT_CA_LAST_DONE)
        agt_last_sync_done(c->agt);
}

/* The watch this agent asks for: one heartbeat, or, when the controller
 * takes UDP heartbeats, the hold it grants a node it hears by UDP (half its
 * node timeout), within [1, BEAT_UDP_HOLD_BEATS] heartbeats. */
static uint64_t
watch_ms(const struct agt_conn *c)
{
    uint64_t ms = c->udp_watch_ms, max = (uint64_t)BEAT_UDP_HOLD_BEATS * c->heartbeat_ms;

    if (c->summon_watch_ms > 0) { /* the controller summons: see the top */
        ms = c->summon_watch_ms;
        max = BEAT_SUMMON_HOLD_MAX_MS;
    }
    return ms < c->heartbeat_ms ? c->heartbeat_ms : ms > max ? max : ms;
}

/* A watch may be held watch_ms: its resend wait is two heartbeats past
 * that, never less than RESEND_BEATS. */
static int
send_msg(struct agt_conn *c, Drover__Message *m, bool watch)
{
    uint64_t wait = (uint64_t)RESEND_BEATS * c->heartbeat_ms;

    if (watch && watch_ms(c) + 2ull * c->heartbeat_ms > wait)
        wait = watch_ms(c) + 2ull * c->heartbeat_ms;
    return rpc_send(c->rpc, m, wait);
}

static int
send_register(struct agt_conn *c)
{
    Drover__RegisterReq r = DROVER__REGISTER_REQ__INIT;
    Drover__Message m = DROVER__MESSAGE__INIT;
    Drover__InstanceReport **reps = NULL;
    size_t n = 0;
    uint64_t digest;
    int rc;

    rc = agt_reports(c->agt, &reps, &n, &digest);
    if (rc < 0)
        return rc;
    r.node = (char *)c->cfg->node;
    r.address = (char *)c->cfg->advertise;
    r.port_min = c->cfg->port_min;
    r.port_max = c->cfg->port_max;
    r.capacity = c->cfg->capacity;
    r.boot_id = (char *)agt_boot_id(c->agt);
    r.previous_boot_id = (char *)agt_previous_boot_id(c->agt);
    r.n_instances = n;
    r.instances = reps;
    m.body_case = DROVER__MESSAGE__BODY_REGISTER_REQ;
    m.register_req = &r;
    rc = send_msg(c, &m, false);
    agt_reports_free(reps, n);
    if (rc == 0) {
        c->kind = K_REGISTER;
        c->sent_watch = false;
        c->sent_last = false;
        c->sent_full = true;
        c->sent_digest = digest;
        agt_reports_sent(c->agt, c->seq);
    }
    return rc;
}

static int
send_sync(struct agt_conn *c)
{
    Drover__SyncReq r = DROVER__SYNC_REQ__INIT;
    Drover__Message m = DROVER__MESSAGE__INIT;
    Drover__InstanceReport **reps = NULL;
    size_t n = 0;
    uint64_t digest;
    int rc;

    rc = agt_reports(c->agt, &reps, &n, &digest);
    if (rc < 0)
        return rc;
    r.node = (char *)c->cfg->node;
    r.boot_id = (char *)agt_boot_id(c->agt);
    r.generation = agt_generation(c->agt);
    r.digest = digest;
    r.full = c->want_full || is_last(c) || !c->have_acked || digest != c->acked_digest;
    r.leaving = c->said_leaving;
    r.env_sets = true; /* each release's config vars once a reply (agent.c) */
    /* A quiet sync waits at the controller for a change (watch.c). */
    r.watch_ms = r.full || r.leaving ? 0 : (uint32_t)watch_ms(c);
    if (r.full) {
        r.n_instances = n;
        r.instances = reps;
    }
    m.body_case = DROVER__MESSAGE__BODY_SYNC_REQ;
    m.sync_req = &r;
    rc = send_msg(c, &m, r.watch_ms > 0);
    agt_metrics_sync_sent(agt_metrics(c->agt));
    agt_reports_free(reps, n);
    if (rc == 0) {
        c->kind = K_SYNC;
        c->sent_leaving = r.leaving;
        c->sent_last = is_last(c);
        c->sent_full = r.full;
        c->sent_watch = r.watch_ms > 0;
        c->sent_digest = digest;
        if (r.full)
            agt_reports_sent(c->agt, c->seq);
        log_debug("sync_sent", "generation=%" PRIu64 " digest=%016" PRIx64 " full=%d n=%zu",
                  r.generation, digest, (int)r.full, r.full ? n : (size_t)0);
    }
    return rc;
}

/* Nothing in flight, or only a held watch, which a new request replaces
 * (the controller drops the held one when the new one comes). */
static bool
can_send(const struct agt_conn *c)
{
    return !rpc_busy(c->rpc) || c->sent_watch;
}

static void
send_next(struct agt_conn *c)
{
    int rc;

    if (!c->rpc || c->st == AGT_CS_DONE)
        return;
    if (!can_send(c)) {
        c->again = true;
        return;
    }
    c->again = false;
    c->dirty = false;
    c->seq++;
    rc = is_registered(c) ? send_sync(c) : send_register(c);
    if (rc < 0) {
        /* The next heartbeat tries again. */
        log_debug("send_failed", "err=%s", log_q(uv_strerror(rc)));
        return;
    }
}

uint64_t
agt_resend_wait_ms(uint64_t base, uint32_t n, uint32_t rnd)
{
    return rpc_backoff_ms(base, n, rnd, 0);
}

/* The request in flight carried a full report and it was answered. */
static void
acked(struct agt_conn *c)
{
    if (!c->sent_full)
        return;
    c->have_acked = true;
    c->acked_digest = c->sent_digest;
    agt_acked(c->agt, c->seq);
}

bool
agt_term_accept(uint64_t *seen, uint64_t term)
{
    /* 0: a SQLite controller, which has no election and no rival (a
     * controller on PostgreSQL answers only while it leads, with its term,
     * never 0): accepted, so that going back to SQLite needs no agent
     * restart. */
    if (term == 0)
        return true;
    if (term < *seen)
        return false;
    *seen = term;
    return true;
}

/* A reply from a deposed leader: logged and dropped, as if lost (the
 * request is re-sent, and reaches the leader). */
static bool
stale(struct agt_conn *c, const char *what, uint64_t term)
{
    if (agt_term_accept(&c->term, term))
        return false;
    log_warn("stale_term", "node=%s msg=%s term=%" PRIu64 " seen=%" PRIu64, c->cfg->node, what,
             term, c->term);
    return true;
}

static void
on_register_rep(struct agt_conn *c, const Drover__RegisterRep *r)
{
    if (stale(c, "register_rep", r->term))
        return;
    c->udp_watch_ms = r->udp_watch_ms;
    c->summon_watch_ms = r->summon_watch_ms;
    acked(c);
    /* RegisterReq carries no digest, so the controller holds none yet: the
     * first sync must be full. */
    c->have_acked = false;
    if (r->heartbeat_ms >= 50 && r->heartbeat_ms <= 600000 && r->heartbeat_ms != c->heartbeat_ms) {
        c->heartbeat_ms = r->heartbeat_ms;
        uv_timer_start(&c->heartbeat, on_heartbeat, c->heartbeat_ms, c->heartbeat_ms);
    }
    log_info("registered", "node=%s heartbeat_ms=%u", c->cfg->node, (unsigned)c->heartbeat_ms);
    agt_registered(c->agt);
    if (!c->announced) {
        c->announced = true;
        log_info("ready", "node=%s join=%s", c->cfg->node, log_q(rpc_endpoint(c->rpc)));
    }
    conn_apply(c, AGT_CE_REGISTERED); /* sync now, for the assignments */
}

/* After a sync reply, with a controller that holds watches: watch again at
 * once (a held one ended: nothing happened meanwhile, or the set changed
 * and the reply has it; a full report was answered). Answers that were not
 * held and brought no progress may come back at once a few times, never in
 * a loop: after three in a row, the heartbeat sends. Progress is a full
 * report taken (not answered want_full) or a new set applied (this agent
 * now runs its generation: a set it could not take is no progress). Counting
 * progress too stopped the watch during a busy start or deploy, so a change
 * then waited up to a heartbeat to reach this node. */
static void
watch_again(struct agt_conn *c, const Drover__SyncRep *r)
{
    bool held = uv_now(c->loop) - rpc_sent_at(c->rpc) >= c->heartbeat_ms / 2;
    bool progress = (!c->sent_watch && !r->want_full) ||
                    (r->has_assignments && agt_generation(c->agt) == r->generation);

    if (r->watched)
        c->watching = true;
    else if (c->sent_watch)
        c->watching = false; /* a controller without watches: the heartbeat syncs */
    if (!c->watching)
        return;
    c->quick = held || progress ? 0 : c->quick + 1;
    if (c->quick <= 3)
        c->again = true;
}

static void
on_sync_rep(struct agt_conn *c, const Drover__SyncRep *r)
{
    bool was_full = c->sent_full;

    if (stale(c, "sync_rep", r->term))
        return;
    c->udp_watch_ms = r->udp_watch_ms;
    c->summon_watch_ms = r->summon_watch_ms;
    agt_metrics_sync_done(agt_metrics(c->agt));
    if (r->reregister) {
        log_info("reregister", "node=%s", c->cfg->node);
        c->have_acked = false;
        conn_apply(c, AGT_CE_REREGISTER);
        return;
    }
    /* The new set first, then the acknowledgement: acknowledging forgets
     * stopped instances and reconciles again, which must see the set this
     * reply carries, not the one before (where a one-off that has just
     * ended is still assigned). */
    if (r->has_assignments && !is_last(c))
        agt_assign(c->agt, r->generation, r->assignments, r->n_assignments, r->env_sets,
                   r->n_env_sets);
    acked(c);
    /* After the acknowledgement: the destroyed apps' stopped instances are
     * forgotten by then. */
    if (r->has_assignments && !is_last(c))
        agt_forget_destroyed(c->agt, r->destroyed_apps, r->n_destroyed_apps, r->forget_slugs,
                             r->n_forget_slugs);
    if (r->want_full) {
        c->want_full = true;
        if (!was_full) /* a full one was just refused: wait for the heartbeat */
            c->again = true;
    } else if (was_full) {
        c->want_full = false;
    }
    /* A reply to a request sent before the last sync (which then waits
     * for it, again) answers nothing about the last report. */
    if (is_last(c)) {
        if (c->sent_last)
            conn_apply(c, AGT_CE_LAST_ANSWERED);
    } else if (c->sent_leaving) {
        agt_leave_acked(c->agt);
    } else {
        watch_again(c, r);
    }
}

static void on_silent(struct agt_conn *c);

static void
on_reply(struct rpc *rpc, struct rpc_reply *rep, void *arg)
{
    struct agt_conn *c = arg;
    Drover__Message *m = rep->msg;

    if (rep->result == RPC_TIMEOUT) {
        on_silent(c);
        return;
    }
    c->replied_at = uv_now(c->loop);
    c->lost_redialed = false;
    c->heard_breaks = conn_breaks(c);
    if (c->redialing) {
        c->redialing = false;
        log_info("controller_heard", "node=%s", c->cfg->node);
    }
    if (rep->result == RPC_UNOPENED) {
        Drover__ErrorCode code;
        char text[256];

        /* An unsealed refusal says why we were refused (a wrong cluster
         * key, most likely); it is only logged: anyone could forge one. */
        if (wire_refusal_open(rep->raw, rep->len, &code, text, sizeof text) == 0)
            log_error("refused_by_controller", "request=%s code=%d reason=%s",
                      c->kind == K_REGISTER ? "register" : "sync", (int)code, log_q(text));
        else
            log_warn("bad_message", "sock=agent err=%s version=%u sender=%s",
                     log_q(wire_strerror(rep->err)), (unsigned)rep->hdr.version,
                     log_q(rep->hdr.sender));
        if (c->sent_last)
            conn_apply(c, AGT_CE_LAST_ANSWERED);
        else if (is_last(c))
            send_next(c); /* the last sync waited for this one */
        return;
    }
    switch (m->body_case) {
    case DROVER__MESSAGE__BODY_REGISTER_REP:
        if (c->kind == K_REGISTER)
            on_register_rep(c, m->register_rep);
        else
            log_warn("bad_message", "sock=agent err=unexpected_register_rep");
        break;
    case DROVER__MESSAGE__BODY_SYNC_REP:
        if (c->kind == K_SYNC)
            on_sync_rep(c, m->sync_rep);
        else
            log_warn("bad_message", "sock=agent err=unexpected_sync_rep");
        break;
    case DROVER__MESSAGE__BODY_ERROR:
        log_warn("controller_error", "request=%s code=%d err=%s",
                 c->kind == K_REGISTER ? "register" : "sync", (int)m->error->code,
                 log_q(m->error->message));
        if (c->kind == K_REGISTER && m->error->code == DROVER__ERROR_CODE__ERR_CONFLICT)
            agt_refused(c->agt, m->error->message);
        if (c->sent_last)
            conn_apply(c, AGT_CE_LAST_ANSWERED);
        break;
    default:
        log_warn("bad_message", "sock=agent err=unexpected_type type=%d", (int)m->body_case);
        break;
    }
    if (c->again || c->dirty)
        send_next(c);
}

/* How long without a reply before redialling, or before a leaving agent
 * gives up on the controller: three heartbeats, within [1 s, 10 s]. */
static uint64_t
silence_ms(const struct agt_conn *c)
{
    uint64_t ms = 3ull * c->heartbeat_ms;

    return ms < 1000 ? 1000 : ms > 10000 ? 10000 : ms;
}

/* The log lines follow the controller the RPC client talks to (port + 2). */
static void
follow(struct agt_conn *c, const char *endpoint, bool moved)
{
    (void)endpoint;
    if (moved)
        agt_logs_follow(agt_logs(c->agt), endpoint);
}

static void
on_move(struct rpc *rpc, const char *endpoint, void *arg)
{
    struct agt_conn *c = arg;

    follow(c, endpoint, true);
}

/* A request went unanswered past its wait (the RPC client has redialled
 * its own socket): replace the request
 * with a fresh one, built from the state as it is now. */
static void
on_silent(struct agt_conn *c)
{
    if (!c->redialing)
        log_warn("controller_silent", "node=%s silent_ms=%" PRIu64 " action=redial", c->cfg->node,
                 uv_now(c->loop) - c->replied_at);
    c->redialing = true;
    follow(c, rpc_endpoint(c->rpc), false);
    send_next(c);
}

/* Connections the RPC socket has lost so far. */
static uint64_t
conn_breaks(const struct agt_conn *c)
{
    int s = rpc_sock(c->rpc);

    return nn_get_statistic(s, NN_STAT_BROKEN_CONNECTIONS) +
           nn_get_statistic(s, NN_STAT_DROPPED_CONNECTIONS);
}

/*
 * With a controller that holds watches, a live one answers this node at
 * least once a heartbeat (a held watch ends by then). Two heartbeats of
 * silence, or a connection broken since the last reply (a controller
 * killed, a leader gone: nanomsg does not send it again), mean the request went
 * nowhere: redial and send afresh once, at once, rather than at the resend
 * wait of three heartbeats counted from the newest request (a report that
 * replaced a held watch starts that count again), which can outlast the
 * node timeout and make a new leader call this node down. Once per silence:
 * after that the ordinary resend and backoff apply.
 */
static bool
watch_lost(const struct agt_conn *c, uint64_t now)
{
    if (!c->watching || !rpc_busy(c->rpc) || c->lost_redialed)
        return false;
    if (conn_breaks(c) != c->heard_breaks)
        return true;
    return now - c->replied_at >= watch_ms(c) + c->heartbeat_ms &&
           now - rpc_sent_at(c->rpc) >= c->heartbeat_ms;
}

/* ---- UDP heartbeats and summonses ---- */

static void
on_resolved(uv_getaddrinfo_t *g, int status, struct addrinfo *res)
{
    struct beat_dest *d = g->data;
    struct agt_conn *c = d->c;

    d->resolving = false;
    if (status == 0 && res != NULL && res->ai_addrlen <= sizeof(d->addr) && c->rpc != NULL) {
        memcpy(&d->addr, res->ai_addr, res->ai_addrlen);
        d->ok = true;
    }
    uv_freeaddrinfo(res);
    if (--c->nopen == 0) /* closed meanwhile (agt_conn_close) */
        free(c);
}

/* d's UDP address for ep (tcp://HOST:PORT): at once for a numeric HOST,
 * else resolved off the loop (no datagram to it until then: the syncs carry
 * on). */
static void
dest_set(struct agt_conn *c, struct beat_dest *d, const char *ep)
{
    char host[ENV_ENDPOINT_MAX], *colon;
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM};
    bool v6;
    size_t n;

    if (strcmp(ep, d->ep) == 0 || d->resolving)
        return;
    d->c = c;
    snprintf(d->ep, sizeof(d->ep), "%s", ep);
    d->ok = false;
    if (strncmp(ep, "tcp://", 6) != 0 || (colon = strrchr(ep + 6, ':')) == NULL)
        return;
    if (listen_parse(ep + 6, &d->addr, &v6) == 0) { /* an address, or [v6] */
        d->ok = true;
        return;
    }
    n = (size_t)(colon - (ep + 6));
    if (n == 0 || n >= sizeof(host))
        return;
    memcpy(host, ep + 6, n);
    host[n] = '\0';
    d->gai.data = d;
    if (uv_getaddrinfo(c->loop, &d->gai, on_resolved, host, colon + 1, &hints) == 0) {
        d->resolving = true;
        c->nopen++; /* until on_resolved */
    }
}

/* Heartbeats go to every controller known (the joined list and a leader
 * learned from a standby), not only the one followed: a standby that takes
 * the lead hears this node at once and summons it (beat.c), instead of the
 * node finding out only when its watch at the old leader runs out. */
static void
dests_update(struct agt_conn *c)
{
    const char *ep;
    size_t i;

    for (i = 0; i < ENV_ENDPOINTS_MAX + 1 && (ep = rpc_endpoint_at(c->rpc, i)) != NULL; i++)
        dest_set(c, &c->dest[i], ep);
    c->ndest = i;
}

static bool
same_addr(const struct sockaddr_storage *a, const struct sockaddr *b)
{
    if (a->ss_family != b->sa_family)
        return false;
    if (b->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (b->sa_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return false;
}

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char slot[BEAT_DATAGRAM_MAX + 1]; /* the loop thread only */

    (void)h;
    (void)suggested;
    *buf = uv_buf_init(slot, sizeof(slot));
}

/*
 * A summons (beat.c): a controller this node sends heartbeats to holds no
 * watch of it and leads. Sync with it now: follow it (a new leader), or
 * dial it again (the connection to it was lost without a sign), and send a
 * fresh sync in place of the watch in flight. Anything that does not open
 * with the cluster key, names another node, carries an older term than
 * seen, or comes from an address no controller of the list has, is
 * dropped; at most one is acted on per heartbeat.
 */
static void
on_summons(uv_udp_t *u, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *from,
           unsigned flags)
{
    struct agt_conn *c = u->data;
    struct summons sm;
    uint64_t now = uv_now(c->loop);
    const char *ep = NULL;

    if (nread <= 0 || from == NULL || (flags & UV_UDP_PARTIAL) || c->rpc == NULL ||
        !is_registered(c) || is_last(c) || c->said_leaving)
        return;
    if (summons_open((const uint8_t *)buf->base, (size_t)nread, &sm) < 0 ||
        strcmp(sm.node, c->cfg->node) != 0)
        return;
    for (size_t i = 0; i < c->ndest && ep == NULL; i++)
        if (c->dest[i].ok && same_addr(&c->dest[i].addr, from))
            ep = c->dest[i].ep;
    if (ep == NULL || (c->summoned_at != 0 && now - c->summoned_at < c->heartbeat_ms) ||
        stale(c, "summons", sm.term))
        return;
    c->summoned_at = now;
    log_info("summoned", "node=%s endpoint=%s term=%" PRIu64, c->cfg->node, log_q(ep), sm.term);
    if (rpc_follow(c->rpc, ep) == 0)
        send_next(c); /* in place of a watch; after a report in flight */
}

/* One sealed heartbeat datagram to every controller known. */
static void
send_beat(struct agt_conn *c)
{
    struct beat b = {0};
    uint8_t *buf;
    size_t len;
    uv_buf_t ub;
    bool sent = false;

    if (c->udp_watch_ms == 0 || c->beat.data == NULL || !is_registered(c) || is_last(c) ||
        c->said_leaving)
        return;
    dests_update(c);
    snprintf(b.node, sizeof(b.node), "%s", c->cfg->node);
    snprintf(b.boot_id, sizeof(b.boot_id), "%s", agt_boot_id(c->agt));
    b.generation = agt_generation(c->agt);
    b.digest = c->sent_digest;
    b.counter = ++c->beat_counter;
    b.takes_summons = c->summon_watch_ms > 0;
    if (beat_seal(agt_sender(c->agt), &b, &buf, &len) < 0)
        return;
    ub = uv_buf_init((char *)buf, (unsigned)len);
    /* Lost or refused (no route, buffer full): the watch's sync still
     * proves this node alive in time (a long watch only lasts while the
     * controller hears these). */
    for (size_t i = 0; i < c->ndest; i++)
        if (c->dest[i].ok &&
            uv_udp_try_send(&c->beat, &ub, 1, (const struct sockaddr *)&c->dest[i].addr) >= 0)
            sent = true;
    free(buf);
    /* The socket exists (bound by the first send): summonses come back to
     * it. */
    if (sent && !c->beat_reading && b.takes_summons &&
        uv_udp_recv_start(&c->beat, on_alloc, on_summons) == 0)
        c->beat_reading = true;
}

static void
on_heartbeat(uv_timer_t *t)
{
    struct agt_conn *c = t->data;
    uint64_t now = uv_now(c->loop), quiet = now - c->replied_at;

    if (c->said_leaving && now - c->leave_at >= silence_ms(c) && quiet >= silence_ms(c))
        agt_leave_unreachable(c->agt);
    send_beat(c);
    if (watch_lost(c, now)) {
        /* A connection that broke under the watch: with several
         * controllers, the next one (a leader that died is not redialled
         * in vain; a standby names the new leader). A silence: the same
         * one again (a slow leader is not left for its standby). */
        bool broke = conn_breaks(c) != c->heard_breaks;

        log_info("watch_lost", "node=%s action=%s", c->cfg->node,
                 broke && c->cfg->njoin > 1 ? "next" : "redial");
        c->lost_redialed = true;
        if (broke)
            rpc_next(c->rpc);
        else
            rpc_redial(c->rpc);
        send_next(c);
    } else if (!rpc_busy(c->rpc)) {
        send_next(c);
    }
}

static void
on_soon(uv_timer_t *t)
{
    struct agt_conn *c = t->data;

    if ((c->dirty || c->again) && can_send(c))
        send_next(c);
}

struct agt_conn *
agt_conn_new(struct agt *a, int *err)
{
    struct agt_conn *c = calloc(1, sizeof *c);
    struct rpc_opts o = {0};
    int rc = -ENOMEM;

    if (!c)
        goto out;
    c->agt = a;
    c->loop = agt_loop(a);
    c->cfg = agt_cfg(a);
    c->heartbeat_ms = c->cfg->heartbeat_ms;
    c->watching = true; /* until a controller answers a watch without watched */
    o.endpoints = (const char(*)[ENV_ENDPOINT_MAX])c->cfg->joins;
    o.nendpoints = c->cfg->njoin;
    o.sender = agt_sender(a);
    o.name = "agent";
    o.redial_ms = silence_ms(c);
    o.cb = on_reply;
    o.on_move = on_move;
    o.arg = c;
    c->rpc = rpc_new(c->loop, &o, &rc);
    if (!c->rpc)
        goto out;
    uv_timer_init(c->loop, &c->heartbeat);
    uv_timer_init(c->loop, &c->soon);
    c->heartbeat.data = c;
    c->soon.data = c;
    c->nopen = 2;
    if (uv_udp_init(c->loop, &c->beat) == 0) {
        c->beat.data = c;
        c->nopen++;
    } else {
        c->beat.data = NULL; /* no UDP heartbeats: syncs only */
    }
out:
    if (rc < 0 && c) {
        rpc_close(c->rpc);
        free(c);
        c = NULL;
    }
    *err = rc;
    return c;
}

int
agt_conn_start(struct agt_conn *c)
{
    int rc = rpc_start(c->rpc);

    c->replied_at = uv_now(c->loop);
    if (rc == 0)
        rc = uv_timer_start(&c->heartbeat, on_heartbeat, c->heartbeat_ms, c->heartbeat_ms);
    if (rc == 0)
        send_next(c);
    return rc;
}

void
agt_conn_sync_soon(struct agt_conn *c)
{
    if (!c->rpc)
        return;
    c->dirty = true;
    if (can_send(c)) /* else the reply sends it */
        uv_timer_start(&c->soon, on_soon, 0, 0);
}

void
agt_conn_leave(struct agt_conn *c)
{
    conn_apply(c, AGT_CE_LEAVE);
}

void
agt_conn_last_sync(struct agt_conn *c)
{
    conn_apply(c, AGT_CE_LAST_SYNC);
}

static void
on_timer_close(uv_handle_t *h)
{
    struct agt_conn *c = h->data;

    if (--c->nopen == 0)
        free(c);
}

void
agt_conn_close(struct agt_conn *c)
{
    conn_apply(c, AGT_CE_CLOSE);
    rpc_close(c->rpc);
    c->rpc = NULL;
    uv_close((uv_handle_t *)&c->heartbeat, on_timer_close);
    uv_close((uv_handle_t *)&c->soon, on_timer_close);
    if (c->beat.data != NULL)
        uv_close((uv_handle_t *)&c->beat, on_timer_close);
    for (size_t i = 0; i < c->ndest; i++)
        if (c->dest[i].resolving)
            uv_cancel((uv_req_t *)&c->dest[i].gai); /* on_resolved still comes */
}
