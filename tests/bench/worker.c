/* SPDX-License-Identifier: MIT */
/*
 * worker.c: simulated agents, a few hundred per process.
 *
 * Each simulated agent is a distinct node as the controller sees it: its own
 * name, boot id, REQ socket (its own TCP connection, speaking SP itself:
 * sp.c), and wire_sender (so its counter and the controller's replay
 * window for it are its own). It speaks
 * the protocol of node-agent/conn.c: register, then sync at least every
 * heartbeat (spread over the heartbeat so that agents do not beat in step),
 * at once on a notification, and with a full report whenever its state
 * changed. It spawns nothing: an assignment is "run" by reporting it ST_UP
 * in the next full sync, and it counts as acknowledged when the controller
 * answers that sync. Like the real agent (nanomsg's resend is off on its
 * REQ socket) it re-seals a request left unanswered for three heartbeats, backing off
 * (rpc_backoff_ms: doubling, with jitter) while re-sends go unanswered; and
 * like common/rpc.c it holds a request answered Error{ERR_BUSY} for
 * rpc_hold_ms(retry_after_ms) and sends it again (at most RPC_MAX_HOLDS
 * times in a row; then the answer counts as a reply and the next heartbeat
 * goes out as usual).
 *
 * Notifications as the real agent has them (issue 15): a quiet sync
 * carries watch_ms (one heartbeat) and the controller holds it until the
 * node's set changes (controller/watch.c); an answer with watched set is
 * followed at once by the next sync, and a sync with something to report
 * replaces a held one. One REQ socket, one connection per simulated agent,
 * as in a real cluster: the controller's cost per change is counted whole.
 *
 * UDP heartbeats as the real agent sends them (issue 15): when the
 * controller says it takes them (udp_watch_ms in RegisterRep/SyncRep), each
 * registered agent sends one sealed datagram (common/beat.h) per heartbeat
 * to the agent endpoint's address over UDP (one UDP socket per worker
 * process), and its watch asks for udp_watch_ms (at most four heartbeats),
 * or summon_watch_ms when the controller sends summonses (its datagrams say
 * it takes them), with the resend wait and the lost-watch silence grown to
 * match, as node-agent/conn.c does. A summons (controller/beat.c: a node
 * heard that holds no watch) would come back to the worker's shared socket
 * and is not read: in a quiet window none is sent (the controller's
 * drover_summonses_total says so).
 *
 * Events to the parent, one line each on ev_fd:
 *   READY                        every agent here registered and synced once
 *   A ID AGENT T_NS APP NAME     an instance acknowledged up on AGENT at T_NS
 *   D ID AGENT                   an instance left AGENT's assignment set
 *   H COUNT UDP                  answer to COUNT: sync replies so far, and
 *                                UDP heartbeat datagrams sent so far
 *   S T_NS                       answer to SILENCE: when the agent's last request
 *                                or UDP heartbeat went out (it sends nothing from
 *                                now on)
 * Commands from the parent on cmd_fd: COUNT, SILENCE AGENT, QUIT.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "beat.h"
#include "bench.h"
#include "rpc.h"
#include "util.h"

#define RESEND_BEATS 3
#define MAX_HOLDS 8       /* as RPC_MAX_HOLDS in common/rpc.c */
#define START_PER_TURN 10 /* agents started per loop turn: no connect storm */

enum kind { K_NONE, K_REGISTER, K_SYNC };

struct inst {
    uint64_t id;
    char *app, *name;
    uint32_t release, port;
    uint64_t since_ms; /* up since (its first report), as an agent keeps it */
    bool reported;     /* in the full report in flight */
    bool acked;        /* the controller acknowledged it up */
};

struct sim {
    unsigned index;
    struct bench_sp sp; /* its REQ socket (sp.c) */
    uint64_t down_ms;   /* since when it cannot connect; 0: it can */
    struct wire_sender snd;
    char name[32], boot[40];
    bool started, registered, synced, silent;
    enum kind inflight;
    bool sent_full;
    uint64_t sent_at_ms, next_beat_ms;
    uint64_t sent_ns;       /* when its last request went out */
    uint64_t resend_ms;     /* how long it may go unanswered (resend_wait_ms) */
    uint32_t resends;       /* re-sends in a row without a reply */
    uint32_t holds;         /* ERR_BUSY answers to the request in flight */
    uint64_t hold_until_ms; /* held (ERR_BUSY): send again at this time */
    bool need_full, again;
    bool sent_watch; /* the request in flight is a watch (held) */
    uint8_t quick;   /* watched answers in a row that were not held */
    uint64_t generation;
    uint64_t next_udp_ms; /* its next UDP heartbeat; 0: none planned */
    uint64_t udp_ns;      /* when its last UDP heartbeat went out; 0: none */
    uint64_t udp_counter;
    struct inst *v;
    size_t n;
};

struct worker {
    const struct bench_cfg *cfg;
    struct sim *sims;
    unsigned started, synced;
    bool ready_sent;
    int ep, ev_fd, cmd_fd;
    uint32_t heartbeat_ms;
    bool watching; /* the controller holds watches */
    uint64_t replies;
    uint32_t udp_watch_ms;    /* 0: the controller takes no UDP heartbeats */
    uint32_t summon_watch_ms; /* 0: the controller sends no summonses */
    int udp;                  /* this worker's UDP socket, -1: none */
    struct sockaddr_in udp_to;
    uint64_t udp_sent;
    char cmdbuf[512];
    size_t cmdlen;
    char join[300];  /* the URL dialled, with this worker's source */
    char out[16384]; /* events not yet written to ev_fd */
    size_t outlen;
};

static void emit(struct worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Write the events gathered so far (once per turn of the worker's loop:
 * an acknowledgement's time is taken when its reply is read, not here). */
static void
flush_events(struct worker *w)
{
    size_t off = 0;

    while (off < w->outlen) {
        ssize_t k = write(w->ev_fd, w->out + off, w->outlen - off);

        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            _exit(3); /* the parent is gone */
        off += (size_t)k;
    }
    w->outlen = 0;
}

/* One event line, written with the others of this turn (a write of its
 * own was 100,000 system calls in a placement of 100,000 instances). */
static void
emit(struct worker *w, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line))
        return;
    if (w->outlen + (size_t)n > sizeof(w->out))
        flush_events(w);
    memcpy(w->out + w->outlen, line, (size_t)n);
    w->outlen += (size_t)n;
}

static void
insts_free(struct inst *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].app);
        free(v[i].name);
    }
    free(v);
}

static uint64_t
digest(const struct sim *s)
{
    uint64_t h = FNV1A64_INIT;

    for (size_t i = 0; i < s->n; i++)
        h = fnv1a64(h, &s->v[i].id, sizeof(s->v[i].id));
    return h;
}

/* The watch asked for, as node-agent/conn.c's watch_ms(). */
static uint32_t
watch_ms(const struct worker *w)
{
    uint32_t ms = w->udp_watch_ms, max = BEAT_UDP_HOLD_BEATS * w->heartbeat_ms;

    if (w->summon_watch_ms > 0) {
        ms = w->summon_watch_ms;
        max = BEAT_SUMMON_HOLD_MAX_MS;
    }
    return ms < w->heartbeat_ms ? w->heartbeat_ms : ms > max ? max : ms;
}

/* One sealed UDP heartbeat of s (node-agent/conn.c's send_beat). */
static void
send_beat(struct worker *w, struct sim *s)
{
    struct beat b = {0};
    uint8_t *buf;
    size_t len;

    snprintf(b.node, sizeof(b.node), "%s", s->name);
    snprintf(b.boot_id, sizeof(b.boot_id), "%s", s->boot);
    b.generation = s->generation;
    b.digest = digest(s);
    b.counter = ++s->udp_counter;
    b.takes_summons = w->summon_watch_ms > 0;
    if (beat_seal(&s->snd, &b, &buf, &len) < 0)
        return;
    if (sendto(w->udp, buf, len, MSG_DONTWAIT, (const struct sockaddr *)&w->udp_to,
               sizeof(w->udp_to)) == (ssize_t)len) {
        w->udp_sent++;
        s->udp_ns = bench_now_ns();
    }
    free(buf);
}

static int
send_msg(struct sim *s, Drover__Message *m)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = wire_seal(&s->snd, m, &buf, &len);

    if (rc == 0)
        rc = bench_sp_send(&s->sp, buf, len);
    free(buf);
    return rc;
}

static int
send_register(struct worker *w, struct sim *s)
{
    Drover__RegisterReq r = DROVER__REGISTER_REQ__INIT;
    Drover__Message m = DROVER__MESSAGE__INIT;

    r.node = s->name;
    r.address = "127.0.0.1";
    r.port_min = 10000;
    r.port_max = 11999;
    r.capacity = w->cfg->capacity;
    r.boot_id = s->boot;
    m.body_case = DROVER__MESSAGE__BODY_REGISTER_REQ;
    m.register_req = &r;
    return send_msg(s, &m);
}

static int
send_sync(struct sim *s, uint32_t watch)
{
    Drover__SyncReq r = DROVER__SYNC_REQ__INIT;
    Drover__Message m = DROVER__MESSAGE__INIT;
    Drover__InstanceReport *reps = NULL, **pv = NULL;
    uint64_t now = now_ms();
    int rc;

    r.node = s->name;
    r.boot_id = s->boot;
    r.generation = s->generation;
    r.digest = digest(s);
    r.full = s->need_full;
    r.env_sets = true;               /* as node-agent/conn.c: config vars once a reply */
    r.watch_ms = r.full ? 0 : watch; /* as node-agent/conn.c */
    if (r.full && s->n > 0) {
        reps = calloc(s->n, sizeof(*reps));
        pv = calloc(s->n, sizeof(*pv));
        if (reps == NULL || pv == NULL) {
            free(reps);
            free(pv);
            return -ENOMEM;
        }
        for (size_t i = 0; i < s->n; i++) {
            drover__instance_report__init(&reps[i]);
            reps[i].id = s->v[i].id;
            reps[i].app = s->v[i].app;
            reps[i].name = s->v[i].name;
            reps[i].release = s->v[i].release;
            reps[i].state = DROVER__INSTANCE_STATE__ST_UP;
            reps[i].pid = 1; /* nothing runs: a placeholder, never signalled */
            reps[i].port = s->v[i].port;
            reps[i].exit_code = -1;
            if (s->v[i].since_ms == 0)
                s->v[i].since_ms = now;
            reps[i].since_ms = s->v[i].since_ms;
            pv[i] = &reps[i];
        }
        r.n_instances = s->n;
        r.instances = pv;
    }
    m.body_case = DROVER__MESSAGE__BODY_SYNC_REQ;
    m.sync_req = &r;
    rc = send_msg(s, &m);
    if (rc == 0 && r.full)
        for (size_t i = 0; i < s->n; i++)
            s->v[i].reported = true;
    free(reps);
    free(pv);
    return rc;
}

/* As the real agent (agt_resend_wait_ms, node-agent/conn.c). */
static uint64_t
resend_wait_ms(uint64_t base, uint32_t n)
{
    return rpc_backoff_ms(base, n, randombytes_random(), 0);
}

static void
send_next(struct worker *w, struct sim *s)
{
    int rc;

    if (s->silent)
        return;
    if (s->inflight != K_NONE && !s->sent_watch) {
        s->again = true;
        return;
    }
    s->again = false;
    s->hold_until_ms = 0;
    /* A held watch is replaced: the REQ socket drops it. */
    rc = s->registered ? send_sync(s, watch_ms(w)) : send_register(w, s);
    if (rc < 0)
        return; /* the next heartbeat tries again */
    s->inflight = s->registered ? K_SYNC : K_REGISTER;
    s->sent_full = s->registered && s->need_full;
    s->sent_watch = s->registered && !s->need_full;
    s->sent_ns = bench_now_ns();
    s->sent_at_ms = s->sent_ns / 1000000;
    s->resend_ms = resend_wait_ms((uint64_t)RESEND_BEATS * w->heartbeat_ms, s->resends);
    if (s->sent_watch && s->resend_ms < watch_ms(w) + 2ull * w->heartbeat_ms)
        s->resend_ms = watch_ms(w) + 2ull * w->heartbeat_ms; /* conn.c's send_msg */
    s->next_beat_ms = s->sent_at_ms + w->heartbeat_ms;
}

/* The controller's whole assignment set for s: keep what we had (and its
 * acknowledgement), drop what left, take what is new. */
static void
assign(struct worker *w, struct sim *s, const Drover__SyncRep *r)
{
    struct inst *nv = calloc(r->n_assignments + 1, sizeof(*nv));
    size_t i, j;

    if (nv == NULL)
        return;
    for (i = 0; i < r->n_assignments; i++) {
        const Drover__Assignment *a = r->assignments[i];

        nv[i].id = a->id;
        nv[i].release = a->release;
        nv[i].port = a->port;
        for (j = 0; j < s->n; j++) {
            if (s->v[j].id == a->id) {
                nv[i] = s->v[j];
                s->v[j].app = s->v[j].name = NULL;
                s->v[j].id = 0;
                break;
            }
        }
        if (nv[i].app == NULL) {
            nv[i].app = strdup(a->app ? a->app : "");
            nv[i].name = strdup(a->name ? a->name : "");
        }
    }
    for (j = 0; j < s->n; j++)
        if (s->v[j].id != 0)
            emit(w, "D %llu %u\n", (unsigned long long)s->v[j].id, s->index);
    insts_free(s->v, s->n);
    s->v = nv;
    s->n = r->n_assignments;
    s->generation = r->generation;
    s->need_full = true;
    s->again = true;
}

static void
acked(struct worker *w, struct sim *s)
{
    uint64_t t = bench_now_ns();

    for (size_t i = 0; i < s->n; i++) {
        struct inst *in = &s->v[i];

        if (in->reported && !in->acked) {
            in->acked = true;
            emit(w, "A %llu %u %llu %s %s\n", (unsigned long long)in->id, s->index,
                 (unsigned long long)t, in->app, in->name);
        }
    }
}

/* ERR_BUSY: hold the request in flight and send it again later, as
 * common/rpc.c does (true), or let it count as answered (false). */
static bool
held(struct sim *s, const Drover__Message *m)
{
    if (m->body_case != DROVER__MESSAGE__BODY_ERROR || m->error == NULL ||
        m->error->code != DROVER__ERROR_CODE__ERR_BUSY || s->holds >= MAX_HOLDS)
        return false;
    s->holds++;
    s->resends = 0;
    s->hold_until_ms = mono_ms() + rpc_hold_ms(m->error->retry_after_ms, randombytes_random());
    return true;
}

static void
on_reply(struct worker *w, struct sim *s, Drover__Message *m)
{
    enum kind k = s->inflight;

    w->replies++;
    if (held(s, m))
        return;
    s->inflight = K_NONE;
    s->resends = 0;
    s->holds = 0;
    if (k == K_REGISTER && m->body_case == DROVER__MESSAGE__BODY_REGISTER_REP) {
        s->registered = true;
        s->need_full = true;
        if (m->register_rep->heartbeat_ms >= 50)
            w->heartbeat_ms = m->register_rep->heartbeat_ms;
        w->udp_watch_ms = m->register_rep->udp_watch_ms;
        w->summon_watch_ms = m->register_rep->summon_watch_ms;
        s->again = true;
    } else if (k == K_SYNC && m->body_case == DROVER__MESSAGE__BODY_SYNC_REP) {
        const Drover__SyncRep *r = m->sync_rep;

        w->udp_watch_ms = r->udp_watch_ms;
        w->summon_watch_ms = r->summon_watch_ms;
        if (r->reregister) {
            s->registered = false;
            s->again = true;
        } else {
            if (s->sent_full) {
                acked(w, s);
                s->need_full = false;
            }
            if (r->want_full) {
                /* A quiet sync was refused: send the full one at once. */
                s->again = s->again || !s->sent_full;
                s->need_full = true;
            }
            if (r->has_assignments)
                assign(w, s, r);
            if (r->watched)
                w->watching = true;
            else if (s->sent_watch)
                w->watching = false; /* a controller without watches */
            if (w->watching) {       /* watch again at once (conn.c's watch_again) */
                bool held = mono_ms() - s->sent_at_ms >= w->heartbeat_ms / 2;

                s->quick = held ? 0 : s->quick + 1;
                s->again = s->again || s->quick <= 3;
            }
            if (!s->synced) {
                s->synced = true;
                w->synced++;
            }
        }
    }
    if (s->again)
        send_next(w, s);
}

static void
drain_sim(struct worker *w, struct sim *s)
{
    const uint8_t *buf;
    size_t n;

    while (bench_sp_next(&s->sp, mono_ms(), &buf, &n) > 0) {
        Drover__Message *m = NULL;

        if (!s->silent && wire_open_key(buf, n, w->cfg->cluster_key, &m) == 0)
            on_reply(w, s, m);
        else if (!s->silent)
            s->inflight = K_NONE; /* an error or refusal still answered it */
        wire_msg_free(m);
    }
}

/* Its socket's events, in the worker's epoll set (edge-triggered: sp.c
 * reads and writes until the socket says EAGAIN). */
static int
sim_watch(struct worker *w, struct sim *s)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET};

    ev.data.u32 = s->index - w->cfg->first;
    return epoll_ctl(w->ep, EPOLL_CTL_ADD, s->sp.fd, &ev) < 0 ? -errno : 0;
}

/* Connect again when its connection dropped (sp.c waits a moment first);
 * one that cannot for a minute ends the worker, saying why. */
static void
sim_reconnect(struct worker *w, struct sim *s, uint64_t now)
{
    int rc = bench_sp_tick(&s->sp, now);

    if (rc > 0) {
        if ((rc = sim_watch(w, s)) < 0) {
            fprintf(stderr, "bench: agent %u: epoll_ctl: %s\n", s->index, strerror(-rc));
            _exit(4);
        }
        s->down_ms = 0;
        return;
    }
    if (rc == 0)
        return;
    if (s->down_ms == 0)
        s->down_ms = now;
    if (now - s->down_ms < 60000)
        return;
    fprintf(stderr, "bench: agent %u cannot connect to %s: %s (%s)\n", s->index, w->join,
            strerror(-rc), bench_dial_why(rc));
    _exit(4);
}

static int
sim_start(struct worker *w, struct sim *s)
{
    int rc;

    if ((rc = bench_sp_init(&s->sp, w->join)) < 0)
        return rc;
    s->started = true;
    /* Not connected now (no port free yet, say): tried again every 100 ms
     * (sim_reconnect); the request waits for the connection. */
    sim_reconnect(w, s, mono_ms());
    send_next(w, s);
    return 0;
}

/* A UDP socket and the address of the agent endpoint (tcp://IPV4:PORT); -1
 * for any other endpoint (no UDP heartbeats). */
static int
udp_target(const char *join, struct sockaddr_in *to)
{
    char host[64];
    unsigned port;
    int fd;

    memset(to, 0, sizeof(*to));
    to->sin_family = AF_INET;
    if (sscanf(join, "tcp://%63[0-9.]:%u", host, &port) != 2 || port > 65535 ||
        inet_pton(AF_INET, host, &to->sin_addr) != 1)
        return -1;
    to->sin_port = htons((uint16_t)port);
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    return fd;
}

static void
command(struct worker *w, const char *line)
{
    unsigned idx;

    if (strcmp(line, "COUNT") == 0) {
        emit(w, "H %llu %llu\n", (unsigned long long)w->replies, (unsigned long long)w->udp_sent);
    } else if (sscanf(line, "SILENCE %u", &idx) == 1 && idx >= w->cfg->first &&
               idx < w->cfg->first + w->cfg->count) {
        struct sim *s = &w->sims[idx - w->cfg->first];

        /* The controller's node timeout runs from the last message it
         * heard: a request, or (a watch held up to 300 s) a UDP heartbeat. */
        uint64_t last = s->sent_ns > s->udp_ns ? s->sent_ns : s->udp_ns;

        s->silent = true;
        emit(w, "S %llu\n", (unsigned long long)(last ? last : bench_now_ns()));
    } else if (strcmp(line, "QUIT") == 0) {
        flush_events(w);
        /* The process exit closes every connection. */
        _exit(0);
    }
}

static void
read_commands(struct worker *w)
{
    ssize_t k = read(w->cmd_fd, w->cmdbuf + w->cmdlen, sizeof(w->cmdbuf) - 1 - w->cmdlen);
    char *nl;

    if (k <= 0)
        _exit(k == 0 ? 0 : 3); /* the parent is gone */
    w->cmdlen += (size_t)k;
    w->cmdbuf[w->cmdlen] = '\0';
    while ((nl = strchr(w->cmdbuf, '\n')) != NULL) {
        *nl = '\0';
        command(w, w->cmdbuf);
        w->cmdlen -= (size_t)(nl + 1 - w->cmdbuf);
        memmove(w->cmdbuf, nl + 1, w->cmdlen + 1);
    }
}

/* Heartbeats, resends and the gradual start of the agents. */
static void
tick(struct worker *w)
{
    uint64_t now = mono_ms();
    unsigned i, started = 0;

    for (i = 0; i < w->cfg->count; i++) {
        struct sim *s = &w->sims[i];

        if (!s->started) {
            if (started++ < START_PER_TURN && sim_start(w, s) < 0) {
                fprintf(stderr, "bench: agent %u cannot start: %s is not tcp://[SRC;]IPV4:PORT\n",
                        s->index, w->join);
                _exit(4);
            }
            continue;
        }
        if (s->silent)
            continue;
        if (s->sp.state == BENCH_SP_DOWN)
            sim_reconnect(w, s, now);
        if (s->hold_until_ms != 0 && now >= s->hold_until_ms) {
            s->inflight = K_NONE; /* held: re-seal and send afresh */
            send_next(w, s);
            continue;
        }
        /* UDP heartbeats, once registered, spread as the syncs are. */
        if (s->registered && w->udp_watch_ms > 0 && w->udp >= 0) {
            if (s->next_udp_ms == 0)
                s->next_udp_ms = now + randombytes_uniform(w->heartbeat_ms);
            else if (now >= s->next_udp_ms) {
                send_beat(w, s);
                s->next_udp_ms += w->heartbeat_ms;
                if (s->next_udp_ms < now)
                    s->next_udp_ms = now + w->heartbeat_ms; /* fell behind: no burst */
            }
        }
        /* A held watch unanswered for its hold and a heartbeat is lost: sent
         * again (node-agent/conn.c's watch_lost). */
        if (s->hold_until_ms == 0 && s->inflight != K_NONE && s->sent_watch &&
            now - s->sent_at_ms >= (uint64_t)watch_ms(w) + w->heartbeat_ms)
            s->inflight = K_NONE;
        if (s->hold_until_ms == 0 && s->inflight != K_NONE && now - s->sent_at_ms >= s->resend_ms) {
            s->inflight = K_NONE; /* lost: re-seal and send afresh */
            s->resends++;
        }
        if (s->inflight == K_NONE && now >= s->next_beat_ms)
            send_next(w, s);
    }
    if (!w->ready_sent && w->synced == w->cfg->count) {
        w->ready_sent = true;
        emit(w, "READY\n");
    }
}

void
bench_worker_main(const struct bench_cfg *cfg, int cmd_fd, int ev_fd)
{
    struct worker w = {
        .cfg = cfg, .ev_fd = ev_fd, .cmd_fd = cmd_fd, .heartbeat_ms = 1000, .watching = true};
    struct epoll_event ev = {.events = EPOLLIN}, evs[256];
    int rc;
    uint64_t now = mono_ms();

    /* This worker's own loopback source address (bench_source_url). */
    bench_source_url(cfg->join, cfg->first / BENCH_PER_WORKER, w.join, sizeof(w.join));
    w.udp = udp_target(cfg->join, &w.udp_to);
    if (sodium_init() < 0 || (w.sims = calloc(cfg->count, sizeof(*w.sims))) == NULL ||
        (w.ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        _exit(4);
    ev.data.u32 = cfg->count + 1;
    epoll_ctl(w.ep, EPOLL_CTL_ADD, cmd_fd, &ev);
    for (unsigned i = 0; i < cfg->count; i++) {
        struct sim *s = &w.sims[i];
        uint8_t r[8];

        s->index = cfg->first + i;
        snprintf(s->name, sizeof(s->name), "sim%05u", s->index);
        randombytes_buf(r, sizeof(r));
        snprintf(s->boot, sizeof(s->boot), "%08x-%02x%02x%02x%02x%02x%02x%02x%02x", cfg->run_id,
                 r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
        wire_sender_init(&s->snd, s->name);
        wire_sender_set_key(&s->snd, cfg->cluster_key);
        /* Spread the heartbeats over one interval. */
        s->next_beat_ms = now + (uint64_t)randombytes_uniform(1000);
    }
    for (uint64_t last = 0;;) {
        rc = epoll_wait(w.ep, evs, (int)ARRAY_SIZE(evs), 5);
        for (int i = 0; i < rc; i++) {
            uint32_t k = evs[i].data.u32;

            if (k < cfg->count)
                drain_sim(&w, &w.sims[k]);
            else
                read_commands(&w);
        }
        /* Scanning every agent is O(agents): not more often than every 2 ms. */
        if ((now = mono_ms()) - last >= 2) {
            last = now;
            tick(&w);
        }
        flush_events(&w);
    }
}
