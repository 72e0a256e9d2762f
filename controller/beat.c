/* SPDX-License-Identifier: MIT */
/*
 * beat.c: sealed UDP heartbeats (issue 15; docs/protocol.md, "UDP
 * heartbeats").
 *
 * A quiet heartbeat over nanomsg REQ/REP costs the controller a TCP round
 * trip (kernel TCP, nanomsg, libc: ~90 % of 80-165 us). Here an agent's
 * heartbeat is one sealed datagram (common/beat.h) to the agent endpoint's
 * address and port over UDP, read in batches (recvmmsg, every READ_MS on
 * the loop's timer: see below); nothing answers it. An accepted one marks its node heard (as a sync
 * does for liveness) and, when the node's generation or digest differ from the agent's, answers the
 * node's held watch at once, so that the agent's TCP sync brings the report or fetches the new set.
 * Anything else (not sealed with the cluster key, replayed, a counter not above the last accepted
 * for that node and boot, an unknown node or boot, garbage) is counted as refused, never logged per
 * datagram.
 *
 * With UDP heartbeats heard, the controller holds that node's watch longer
 * (watch.c: up to udp_watch_ms, half the node timeout, which it tells the
 * agents in RegisterRep and SyncRep), so TCP syncs are rarer; a node whose datagrams do not arrive
 * (UDP filtered) gets the one-heartbeat hold of before, and its syncs prove
 * it alive as they always did.
 *
 * Summonses: a node whose datagrams say it takes them gets a watch held up
 * to CTL_WATCH_HOLD_MAX_MS while its datagrams come (watch.c; node_tick
 * answers it as soon as they stop), so a quiet node costs a TCP sync every
 * minute instead of every half node timeout. What made the shorter hold
 * necessary was the agent's only sign of a controller that vanished
 * without closing its connections (its host cut off, or a leader replaced
 * by its standby elsewhere): silence past the hold. Instead, a controller
 * that hears a node holding no watch of it (none held, and no TCP sync from
 * it for two heartbeats: a new leader, a controller back from a restart, a
 * node that is down, or a connection lost without a sign) sends a sealed
 * Summon back to the datagram's source address, at most once a heartbeat
 * per node; the agent, which sends its heartbeat datagrams to every
 * controller it was given, then syncs with the one that summoned it at
 * once. A datagram from a node or boot this controller does not know (a
 * leader that has not seen the register) is summoned as well, unless it
 * fails to open: the agent then registers.
 *
 * Only with a tcp:// agent endpoint (an ipc:// one has no UDP); a standby
 * refuses them all (it judges no node).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "beat.h"
#include "ctl.h"
#include "listen.h"
#include "log.h"

/* The socket is read on a timer, not on readiness: at thousands of
 * datagrams a second spread evenly, a wakeup per datagram (epoll, a context
 * switch, a recvmmsg for one) costs more than the datagram itself; every
 * READ_MS one recvmmsg takes up to BATCH of them at a time. A heartbeat
 * waits at most READ_MS, nothing next to the node timeout; the receive
 * buffer holds far more than READ_MS of them (RCVBUF_BYTES: about 8,000 at
 * 10,000 agents, 0.8 s of them). Fewer, longer reads cost less a datagram
 * (bench, CPU per quiet heartbeat at 1,000 agents: 21-22 us at 20 ms,
 * 18.4 at 50, 16.5 at 100; at 10,000: 11.9 at 20, 10.6 at 100). */
#define READ_MS 100
#define BATCH 64u
#define SLOT (BEAT_DATAGRAM_MAX + 1) /* a longer datagram is truncated: refused */
#define RCVBUF_BYTES (4 << 20)

struct ctl_beats {
    struct ctl *ctl;
    uv_udp_t udp; /* made and bound by libuv, read here (recvmmsg) */
    uv_timer_t timer;
    int nopen;
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    struct sockaddr_storage from[BATCH];
    uint8_t buf[BATCH][SLOT];
    uint64_t accepted, refused, summoned;
};

uint32_t
ctl_beat_watch_ms(const struct ctl *ctl)
{
    uint64_t ms = ctl->cfg.node_timeout_ms / 2;

    if (ctl->beats == NULL)
        return 0;
    ms = ms < ctl->cfg.heartbeat_ms ? ctl->cfg.heartbeat_ms : ms;
    return ms > CTL_BEAT_HOLD_MAX_MS ? CTL_BEAT_HOLD_MAX_MS : (uint32_t)ms;
}

uint32_t
ctl_summon_watch_ms(const struct ctl *ctl)
{
    return ctl->beats != NULL ? CTL_WATCH_HOLD_MAX_MS : 0;
}

bool
ctl_beat_recent(const struct ctl_node *n, uint64_t mono_now, uint64_t ms)
{
    return n->udp_ms != 0 && strcmp(n->udp_boot, n->boot_id) == 0 && mono_now - n->udp_ms <= ms;
}

int
ctl_beat_apply(struct ctl_model *m, const struct beat *b, uint64_t mono_now, struct ctl_node **out,
               bool *wake)
{
    struct ctl_node *n = ctl_node_find(m, b->node);

    *out = NULL;
    *wake = false;
    if (n == NULL || strcmp(n->boot_id, b->boot_id) != 0)
        return -ENOENT;
    if (strcmp(n->udp_boot, b->boot_id) != 0) {
        snprintf(n->udp_boot, sizeof(n->udp_boot), "%s", b->boot_id);
        n->udp_counter = 0;
    }
    if (b->counter <= n->udp_counter)
        return -EALREADY;
    n->udp_counter = b->counter;
    n->udp_ms = mono_now;
    n->takes_summons = b->takes_summons;
    *out = n;
    /* A node that is down comes back with its sync (which brings its
     * report); its heartbeat only asks for that sync. */
    if (n->state != CTL_NODE_DOWN)
        ctl_node_heard(n, mono_now);
    /* A difference is normal for a moment (a datagram sent before the
     * sync that carries the change, or before the agent applied its new
     * set: measured at 10,000 agents, waking on every one of those doubled
     * the syncs during a placement); one that lasts two datagrams is not. */
    if (n->state == CTL_NODE_DOWN || n->generation != b->generation || !n->have_digest ||
        n->digest != b->digest)
        n->udp_differ = n->udp_differ < UINT8_MAX ? n->udp_differ + 1 : UINT8_MAX;
    else
        n->udp_differ = 0;
    *wake = n->udp_differ >= 2;
    if (*wake)
        n->udp_differ = 0;
    return 0;
}

/* "Sync with me now", to the source of a heartbeat of node (its agent's
 * socket); lost or refused, the next heartbeat summons again. */
static void
summon(struct ctl_beats *bs, const char *node, const struct sockaddr_storage *to, socklen_t tolen)
{
    struct ctl *ctl = bs->ctl;
    struct summons sm = {.term = ctl_leader_term(ctl->leader)};
    uv_os_fd_t fd;
    uint8_t *buf;
    size_t len;

    snprintf(sm.node, sizeof(sm.node), "%s", node);
    if (uv_fileno((uv_handle_t *)&bs->udp, &fd) < 0 ||
        summons_seal(&ctl->sender, &sm, &buf, &len) < 0)
        return;
    if (sendto(fd, buf, len, MSG_DONTWAIT, (const struct sockaddr *)to, tolen) == (ssize_t)len)
        bs->summoned++;
    free(buf);
}

/* Does node n, just heard by UDP, hold no watch here and need a summons?
 * Not when a TCP sync came or was answered within two heartbeats (an agent
 * between the answer to one watch and the next), nor more than once a
 * heartbeat, nor while its agent waits out an ERR_BUSY (front.c). */
bool
ctl_beat_wants_summons(struct ctl *ctl, struct ctl_node *n, uint64_t now)
{
    uint64_t hb = ctl->cfg.heartbeat_ms;

    /* Nor while the agent endpoint is a heartbeat behind (front.c): the
     * node's sync may be waiting in this controller's own queue, and a
     * summons would make its agent send it again. */
    if (!n->takes_summons || (ctl->agents != NULL && nnuv_backlog_ms(ctl->agents) >= hb) ||
        (n->sync_ms != 0 && now - n->sync_ms < 2 * hb) ||
        (n->summoned_ms != 0 && now - n->summoned_ms < hb) || now < n->quiet_until_ms ||
        (n->state != CTL_NODE_DOWN && n->watch_held))
        return false;
    n->summoned_ms = now;
    return true;
}

static void
one(struct ctl_beats *bs, const uint8_t *buf, size_t len, const struct sockaddr_storage *from,
    socklen_t fromlen)
{
    struct ctl *ctl = bs->ctl;
    uint64_t now = mono_ms();
    struct ctl_node *n;
    struct beat b;
    bool wake;
    int rc;

    if (ctl->stopping || !ctl_leader_acting(ctl->leader) ||
        beat_open(buf, len, ctl->key_cluster, ctl->key_cluster_next, &b) < 0) {
        bs->refused++;
        return;
    }
    if ((rc = ctl_beat_apply(ctl->model, &b, now, &n, &wake)) < 0) {
        bs->refused++;
        /* Unknown here (a leader that has not seen its register): its
         * sync will be told to register. */
        if (rc == -ENOENT && b.takes_summons)
            summon(bs, b.node, from, fromlen);
        return;
    }
    bs->accepted++;
    if (wake)
        ctl_watch_poke(ctl->watches, n);
    if (ctl_beat_wants_summons(ctl, n, now))
        summon(bs, n->name, from, fromlen);
}

/* Every datagram waiting, BATCH per recvmmsg. */
static void
on_read(uv_timer_t *t)
{
    struct ctl_beats *bs = t->data;
    uv_os_fd_t fd;
    int n;

    if (uv_fileno((uv_handle_t *)&bs->udp, &fd) < 0)
        return;
    do {
        for (unsigned i = 0; i < BATCH; i++) {
            bs->iov[i] = (struct iovec){bs->buf[i], SLOT};
            bs->msgs[i].msg_hdr = (struct msghdr){.msg_name = &bs->from[i],
                                                  .msg_namelen = sizeof(bs->from[i]),
                                                  .msg_iov = &bs->iov[i],
                                                  .msg_iovlen = 1};
        }
        n = recvmmsg(fd, bs->msgs, BATCH, MSG_DONTWAIT, NULL);
        for (int i = 0; i < n; i++) {
            if (bs->msgs[i].msg_hdr.msg_flags & MSG_TRUNC)
                bs->refused++;
            else
                one(bs, bs->buf[i], bs->msgs[i].msg_len, &bs->from[i],
                    bs->msgs[i].msg_hdr.msg_namelen);
        }
    } while (n == (int)BATCH);
}

/* tcp://HOST:PORT (HOST "*" for every address) into ss; -EINVAL else. */
static int
endpoint_addr(const char *ep, struct sockaddr_storage *ss, bool *v6)
{
    char hp[300];

    if (strncmp(ep, "tcp://", 6) != 0)
        return -EINVAL;
    ep += 6;
    if (ep[0] == '*')
        snprintf(hp, sizeof(hp), "0.0.0.0%s", ep + 1);
    else
        snprintf(hp, sizeof(hp), "%s", ep);
    return listen_parse(hp, ss, v6);
}

int
ctl_beats_start(struct ctl *ctl)
{
    struct sockaddr_storage ss;
    struct ctl_beats *bs;
    bool v6 = false;
    int rc;

    if (endpoint_addr(ctl->cfg.agent_listen, &ss, &v6) < 0) {
        log_info("udp_heartbeats", "enabled=0 endpoint=%s reason=%s", ctl->cfg.agent_listen,
                 log_q("not a tcp://ADDRESS:PORT endpoint"));
        return 0;
    }
    if ((bs = calloc(1, sizeof(*bs))) == NULL)
        return -ENOMEM;
    bs->ctl = ctl;
    bs->udp.data = bs;
    bs->timer.data = bs;
    if ((rc = uv_udp_init_ex(ctl->loop, &bs->udp, v6 ? AF_INET6 : AF_INET)) < 0) {
        free(bs);
        return rc;
    }
    uv_timer_init(ctl->loop, &bs->timer);
    bs->nopen = 2;
    ctl->beats = bs; /* closed by ctl_beats_close from here on */
    if ((rc = uv_udp_bind(&bs->udp, (const struct sockaddr *)&ss, 0)) == 0) {
        int sz = RCVBUF_BYTES;
        uv_os_fd_t fd;

        /* Past rmem_max as root (SO_RCVBUFFORCE), else as far as allowed. */
        if (uv_fileno((uv_handle_t *)&bs->udp, &fd) == 0 &&
            setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
            (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
        rc = uv_timer_start(&bs->timer, on_read, READ_MS, READ_MS);
    }
    if (rc < 0) {
        log_error("bind_failed", "endpoint=udp:%s err=%s", ctl->cfg.agent_listen + 6,
                  uv_strerror(rc));
        return rc;
    }
    log_info("udp_heartbeats", "enabled=1 endpoint=%s", ctl->cfg.agent_listen);
    return 0;
}

static void
on_close(uv_handle_t *h)
{
    struct ctl_beats *bs = h->data;

    if (--bs->nopen == 0)
        free(bs);
}

void
ctl_beats_close(struct ctl *ctl)
{
    if (ctl->beats == NULL)
        return;
    uv_timer_stop(&ctl->beats->timer);
    uv_close((uv_handle_t *)&ctl->beats->timer, on_close);
    uv_close((uv_handle_t *)&ctl->beats->udp, on_close);
    ctl->beats = NULL;
}

uint64_t
ctl_beats_count(const struct ctl *ctl, bool accepted)
{
    if (ctl->beats == NULL)
        return 0;
    return accepted ? ctl->beats->accepted : ctl->beats->refused;
}

uint64_t
ctl_summonses_sent(const struct ctl *ctl)
{
    return ctl->beats != NULL ? ctl->beats->summoned : 0;
}
