/* SPDX-License-Identifier: MIT */
/*
 * load.c: drover-bench-load starts here.
 *
 *   drover-bench-load place --agents K --instances N [options]
 *       K simulated agents (worker.c) against a running controller; one
 *       ScaleReq for N instances; figures on stdout as key=value lines.
 *   drover-bench-load echo-server URL
 *   drover-bench-load echo URL SOCKETS MS
 *       the raw nanomsg request rate (echo.c).
 *
 * place, in order: fork the workers (before any nanomsg socket exists in
 * this process: nanomsg's threads do not survive fork), wait until every
 * agent registered and synced and the controller is at rest (settle()),
 * read the controller's RSS, send ScaleReq
 * (types p0..pT-1, N in all) on the API endpoint sealed with the key derived
 * from DROVER_API_TOKEN, as the CLI does, and collect acknowledgements until
 * all N are in. Correctness, checked on every run: every instance id is
 * acknowledged by one agent only, every name TYPE.I for I in 1..quantity
 * exists exactly once, and (for N <= 20,000, where the reply fits) the
 * controller's own `ps` shows N instances up. Then the CPU per heartbeat over
 * a quiet window, the RSS per 10,000 instances, and with --recover one agent
 * falls silent and the time until its instances are acknowledged elsewhere.
 * Exit 0 when every check held, 1 when one failed (a figure may be slow: that
 * is never a failure), 2 on bad usage or setup.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>
#include <sodium.h>

#include "bench.h"
#include "env.h"
#include "util.h"

#define MAX_TYPES 64
#define PS_CHECK_MAX 20000

struct opts {
    unsigned agents, instances, types;
    char app[APP_NAME_MAX + 2];
    pid_t controller;
    unsigned hb_window_ms;
    unsigned timeout_ms;
    bool recover;
};

struct wproc {
    pid_t pid;
    int cmd, ev;
    char buf[65536];
    size_t len;
    bool ready;
    bool have_h;
    unsigned long long h;  /* sync replies so far */
    unsigned long long hu; /* UDP heartbeats sent so far */
    uint64_t silenced_ns;
};

/* id -> (agent, acked): open addressing, ids are never 0. */
struct slot {
    uint64_t id;
    int agent; /* -1: dropped */
};

struct run {
    struct opts o;
    struct bench_cfg cfg;
    struct wproc *w;
    unsigned nw;
    struct slot *tab;
    size_t tabsz;
    uint64_t *lat_ns; /* per acknowledgement during placement */
    size_t nlat;
    unsigned char *seen[MAX_TYPES]; /* names TYPE.I acknowledged */
    unsigned quantity[MAX_TYPES];
    uint64_t t0, t_last;
    size_t live;   /* ids held by a live (not silent) agent and acknowledged */
    int silent;    /* the silenced agent, or -1 */
    size_t errors; /* correctness failures */
    bool placing;  /* acknowledgements count towards placement latency */
};

static void fail_check(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
fail_check(struct run *r, const char *fmt, ...)
{
    va_list ap;

    if (r->errors++ >= 20)
        return;
    fputs("bench: FAILED: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static struct slot *
slot_for(struct run *r, uint64_t id)
{
    size_t i = (size_t)(id * 0x9e3779b97f4a7c15ull) & (r->tabsz - 1);

    while (r->tab[i].id != 0 && r->tab[i].id != id)
        i = (i + 1) & (r->tabsz - 1);
    return &r->tab[i];
}

/* ---- events from the workers ---- */

static void
on_ack(struct run *r, uint64_t id, int agent, uint64_t t, const char *app, const char *name)
{
    struct slot *s = slot_for(r, id);
    unsigned type, idx;

    if (s->id == id && s->agent >= 0 && s->agent != agent) {
        fail_check(r, "instance %llu acknowledged by agents %d and %d at once",
                   (unsigned long long)id, s->agent, agent);
        return;
    }
    if (s->id == id && s->agent == agent)
        return;
    s->id = id;
    s->agent = agent;
    if (agent != r->silent)
        r->live++;
    r->t_last = t;
    if (r->placing && r->nlat < r->o.instances)
        r->lat_ns[r->nlat++] = t - r->t0;
    if (strcmp(app, r->o.app) != 0 || sscanf(name, "p%u.%u", &type, &idx) != 2 ||
        type >= r->o.types || idx < 1) {
        fail_check(r, "unexpected instance %s %s", app, name);
        return;
    }
    if (idx > r->quantity[type]) {
        fail_check(r, "instance %s beyond the formation (%u)", name, r->quantity[type]);
        return;
    }
    if (r->seen[type][idx] && r->silent < 0)
        fail_check(r, "instance name %s placed twice", name);
    r->seen[type][idx] = 1;
}

static void
on_drop(struct run *r, uint64_t id, int agent)
{
    struct slot *s = slot_for(r, id);

    if (s->id == id && s->agent == agent) {
        s->agent = -1;
        if (agent != r->silent)
            r->live--;
    }
}

static void
on_line(struct run *r, struct wproc *w, char *line)
{
    unsigned long long id, t;
    int agent;
    char app[64], name[64];

    if (strcmp(line, "READY") == 0)
        w->ready = true;
    else if (sscanf(line, "A %llu %d %llu %63s %63s", &id, &agent, &t, app, name) == 5)
        on_ack(r, id, agent, t, app, name);
    else if (sscanf(line, "D %llu %d", &id, &agent) == 2)
        on_drop(r, id, agent);
    else if (sscanf(line, "H %llu %llu", &id, &t) == 2) {
        w->h = id;
        w->hu = t;
        w->have_h = true;
    } else if (sscanf(line, "S %llu", &t) == 1)
        w->silenced_ns = t;
}

/* Read whatever the workers said, for up to ms. -EPIPE when one died. */
static int
pump(struct run *r, int ms)
{
    struct pollfd pfd[64];
    unsigned i;
    int n;

    for (i = 0; i < r->nw; i++)
        pfd[i] = (struct pollfd){.fd = r->w[i].ev, .events = POLLIN};
    n = poll(pfd, r->nw, ms);
    for (i = 0; n > 0 && i < r->nw; i++) {
        struct wproc *w = &r->w[i];
        ssize_t k;
        char *nl, *p;

        if (!(pfd[i].revents & (POLLIN | POLLHUP)))
            continue;
        k = read(w->ev, w->buf + w->len, sizeof(w->buf) - 1 - w->len);
        if (k <= 0) {
            fprintf(stderr, "bench: worker %u exited\n", i);
            return -EPIPE;
        }
        w->len += (size_t)k;
        w->buf[w->len] = '\0';
        for (p = w->buf; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
            *nl = '\0';
            on_line(r, w, p);
        }
        w->len -= (size_t)(p - w->buf);
        memmove(w->buf, p, w->len);
    }
    return 0;
}

static void
tell(struct run *r, unsigned i, const char *line)
{
    size_t n = strlen(line);

    if (write(r->w[i].cmd, line, n) != (ssize_t)n)
        fprintf(stderr, "bench: worker %u does not listen\n", i);
}

/* Pump until done(r) or timeout; false on timeout or a dead worker. */
static bool
wait_for(struct run *r, bool (*done)(struct run *), unsigned timeout_ms)
{
    uint64_t end = bench_now_ns() + (uint64_t)timeout_ms * 1000000;

    while (!done(r)) {
        if (bench_now_ns() > end || pump(r, 20) < 0)
            return false;
    }
    return true;
}

static bool
all_ready(struct run *r)
{
    for (unsigned i = 0; i < r->nw; i++)
        if (!r->w[i].ready)
            return false;
    return true;
}

static bool
all_placed(struct run *r)
{
    return r->live >= r->o.instances;
}

static bool
all_counted(struct run *r)
{
    for (unsigned i = 0; i < r->nw; i++)
        if (!r->w[i].have_h)
            return false;
    return true;
}

static bool
silenced(struct run *r)
{
    return r->w[(unsigned)r->silent / BENCH_PER_WORKER].silenced_ns != 0;
}

/* ---- workers ---- */

static int
start_workers(struct run *r)
{
    r->nw = (r->o.agents + BENCH_PER_WORKER - 1) / BENCH_PER_WORKER;
    if (r->nw > 64)
        return -E2BIG;
    r->w = calloc(r->nw, sizeof(*r->w));
    if (r->w == NULL)
        return -ENOMEM;
    for (unsigned i = 0; i < r->nw; i++) {
        int cmd[2], ev[2];
        pid_t pid;

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, cmd) < 0 ||
            socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ev) < 0)
            return -errno;
        r->cfg.first = i * BENCH_PER_WORKER;
        r->cfg.count = r->o.agents - r->cfg.first < BENCH_PER_WORKER ? r->o.agents - r->cfg.first
                                                                     : BENCH_PER_WORKER;
        if ((pid = fork()) < 0)
            return -errno;
        if (pid == 0) {
            close(cmd[0]);
            close(ev[0]);
            bench_worker_main(&r->cfg, cmd[1], ev[1]);
        }
        close(cmd[1]);
        close(ev[1]);
        r->w[i] = (struct wproc){.pid = pid, .cmd = cmd[0], .ev = ev[0]};
    }
    return 0;
}

static void
stop_workers(struct run *r)
{
    for (unsigned i = 0; i < r->nw; i++)
        tell(r, i, "QUIT\n");
    for (unsigned i = 0; i < r->nw; i++) {
        close(r->w[i].cmd);
        waitpid(r->w[i].pid, NULL, 0);
    }
}

/* ---- the API, as the CLI speaks it ---- */

struct api {
    int sock;
    bool inflight; /* a request went unanswered (NN_RCVTIMEO) */
    struct wire_sender snd;
    const uint8_t *key;
};

static int
api_open(struct api *a, const struct bench_cfg *cfg, unsigned timeout_ms)
{
    int ivl = (int)timeout_ms + 60000, t = (int)timeout_ms, max = (int)WIRE_MAX_SIZE;
    char id[32];

    snprintf(id, sizeof(id), "bench.%08x", cfg->run_id);
    wire_sender_init(&a->snd, id);
    wire_sender_set_key(&a->snd, cfg->api_key);
    a->key = cfg->api_key;
    if ((a->sock = nn_socket(AF_SP, NN_REQ)) < 0 ||
        nn_setsockopt(a->sock, NN_REQ, NN_REQ_RESEND_IVL, &ivl, sizeof(ivl)) < 0 ||
        nn_setsockopt(a->sock, NN_SOL_SOCKET, NN_RCVTIMEO, &t, sizeof(t)) < 0 ||
        nn_setsockopt(a->sock, NN_SOL_SOCKET, NN_RCVMAXSIZE, &max, sizeof(max)) < 0 ||
        nn_connect(a->sock, cfg->api) < 0)
        return -nn_errno();
    return 0;
}

/* One request, one reply of type want; *rep to free with wire_msg_free. */
static int
api_call(struct api *a, const Drover__Message *req, Drover__Message__BodyCase want,
         Drover__Message **rep)
{
    uint8_t *buf = NULL;
    void *in = NULL;
    size_t len = 0;
    int rc, n;

    *rep = NULL;
    if ((rc = wire_seal(&a->snd, req, &buf, &len)) < 0)
        return rc;
    n = nn_send(a->sock, buf, len, 0);
    free(buf);
    if (n < 0)
        return -nn_errno();
    a->inflight = true;
    if ((n = nn_recv(a->sock, &in, NN_MSG, 0)) < 0)
        return -nn_errno();
    a->inflight = false;
    rc = wire_open_key(in, (size_t)n, a->key, rep);
    nn_freemsg(in);
    if (rc < 0)
        return rc;
    if ((*rep)->body_case == DROVER__MESSAGE__BODY_ERROR && (*rep)->error != NULL) {
        fprintf(stderr, "bench: the controller answered: %s\n", (*rep)->error->message);
        return -EREMOTEIO;
    }
    if ((*rep)->body_case != want)
        return -EBADMSG;
    return 0;
}

static int
scale(struct run *r, struct api *a, bool zero)
{
    Drover__Message req = DROVER__MESSAGE__INIT, *rep = NULL;
    Drover__ScaleReq sr = DROVER__SCALE_REQ__INIT;
    Drover__FormationEntry fe[MAX_TYPES], *fp[MAX_TYPES];
    char names[MAX_TYPES][16];
    int rc;

    for (unsigned i = 0; i < r->o.types; i++) {
        drover__formation_entry__init(&fe[i]);
        snprintf(names[i], sizeof(names[i]), "p%u", i);
        fe[i].type = names[i];
        fe[i].quantity = zero ? 0 : (int32_t)r->quantity[i];
        fp[i] = &fe[i];
    }
    sr.app = r->o.app;
    sr.n_entries = r->o.types;
    sr.entries = fp;
    req.body_case = DROVER__MESSAGE__BODY_SCALE_REQ;
    req.scale_req = &sr;
    rc = api_call(a, &req, DROVER__MESSAGE__BODY_SCALE_REP, &rep);
    wire_msg_free(rep);
    return rc;
}

/* The controller's own view: N instances up, each name once. */
static void
check_ps(struct run *r, struct api *a)
{
    Drover__Message req = DROVER__MESSAGE__INIT, *rep = NULL;
    Drover__PsReq pr = DROVER__PS_REQ__INIT;
    size_t up = 0;
    int rc;

    pr.app = r->o.app;
    req.body_case = DROVER__MESSAGE__BODY_PS_REQ;
    req.ps_req = &pr;
    if ((rc = api_call(a, &req, DROVER__MESSAGE__BODY_PS_REP, &rep)) < 0) {
        fail_check(r, "ps: %s", rc == -EREMOTEIO ? "refused" : wire_strerror(rc));
        return;
    }
    for (size_t i = 0; i < rep->ps_rep->n_instances; i++) {
        const Drover__InstanceInfo *in = rep->ps_rep->instances[i];

        if (in->state != NULL && strcmp(in->state, "up") == 0 && in->node != NULL &&
            in->node[0] != '\0')
            up++;
    }
    if (rep->ps_rep->n_instances != r->o.instances || up != r->o.instances)
        fail_check(r, "ps shows %zu instances, %zu up; expected %u up", rep->ps_rep->n_instances,
                   up, r->o.instances);
    printf("ps_checked=%zu\n", up);
    wire_msg_free(rep);
}

static int
cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

    return a < b ? -1 : a > b;
}

/* UDP datagrams this network namespace dropped for a full receive buffer
 * (/proc/net/snmp, Udp: RcvbufErrors), or 0 when unreadable. */
static unsigned long long
udp_rcvbuf_errors(void)
{
    FILE *f = fopen("/proc/net/snmp", "r");
    char names[1024], vals[1024];
    unsigned long long v = 0;

    if (f == NULL)
        return 0;
    while (fgets(names, sizeof names, f) != NULL && fgets(vals, sizeof vals, f) != NULL) {
        char *np, *vp, *ns = NULL, *vs = NULL;

        if (strncmp(names, "Udp:", 4) != 0)
            continue;
        np = strtok_r(names, " \n", &ns);
        vp = strtok_r(vals, " \n", &vs);
        while (np != NULL && vp != NULL) {
            if (strcmp(np, "RcvbufErrors") == 0)
                v = strtoull(vp, NULL, 10);
            np = strtok_r(NULL, " \n", &ns);
            vp = strtok_r(NULL, " \n", &vs);
        }
        break;
    }
    fclose(f);
    return v;
}

/*
 * Wait until the controller has used less than SETTLE_PCT of a core in each
 * of two seconds in a row (at most SETTLE_MAX_MS; figure says how long it
 * took: the tail comes in bursts, and one quiet second was not its end).
 *
 * Before the scale (rest_ms): the registrations' tail (first syncs, the
 * watches they take, busy answers while the agent endpoint was behind) is
 * over, so the placement is measured on a cluster at rest. Scaled the moment
 * the last of 10,000 agents had synced once, the controller was still behind
 * on that tail (its agent endpoint answering busy, and those agents coming
 * back 1.1-2.4 s later), and placement ran at 20,000-25,000 a second against
 * 28,000-35,000 at rest (runs of 2026-12-01).
 *
 * After the placement (settle_ms): its tail (the last commits, the queued
 * requests it shed) is not a quiet heartbeat's. The watches the placement's
 * syncs took (held 225-300 s: controller/ctl.h, CTL_WATCH_HOLD_MAX_MS) still
 * all end inside the window, 301 s long by default and opened at most 15 s
 * after them.
 */
#define SETTLE_PCT 20
#define SETTLE_MAX_MS 15000

static void
settle(struct run *r, const char *figure)
{
    uint64_t t0 = bench_now_ns(), t;
    unsigned quiet = 0;
    int64_t c0, c1;

    while (quiet < 2 && bench_now_ns() < t0 + SETTLE_MAX_MS * 1000000ull) {
        t = bench_now_ns();
        c0 = bench_cpu_ms(r->o.controller);
        while (bench_now_ns() < t + 1000000000ull)
            if (pump(r, 50) < 0)
                return;
        c1 = bench_cpu_ms(r->o.controller);
        if (c0 < 0 || c1 < 0)
            break;
        quiet = c1 - c0 < 10 * SETTLE_PCT ? quiet + 1 : 0;
    }
    printf("%s=%.0f\n", figure, (double)(bench_now_ns() - t0) / 1e6);
}

/*
 * Controller CPU per heartbeat over a quiet window. A heartbeat is either a
 * sync answered (a watch ended, TCP) or a UDP heartbeat datagram that
 * reached the controller's socket (issue 15: sent by the workers, less those
 * this namespace dropped for a full receive buffer); both count, as both are
 * what keeps a node alive. Their rates are printed apart as well.
 */
static void
heartbeat_cpu(struct run *r)
{
    unsigned long long h0 = 0, h1 = 0, u0 = 0, u1 = 0, d0, d1;
    int64_t c0, c1;
    uint64_t t0, t1;
    double secs;

    settle(r, "settle_ms");
    for (unsigned i = 0; i < r->nw; i++) {
        r->w[i].have_h = false;
        tell(r, i, "COUNT\n");
    }
    c0 = bench_cpu_ms(r->o.controller);
    t0 = bench_now_ns();
    d0 = udp_rcvbuf_errors();
    if (!wait_for(r, all_counted, 5000))
        return;
    for (unsigned i = 0; i < r->nw; i++) {
        h0 += r->w[i].h;
        u0 += r->w[i].hu;
    }
    while (bench_now_ns() < t0 + (uint64_t)r->o.hb_window_ms * 1000000)
        if (pump(r, 50) < 0)
            return;
    for (unsigned i = 0; i < r->nw; i++) {
        r->w[i].have_h = false;
        tell(r, i, "COUNT\n");
    }
    c1 = bench_cpu_ms(r->o.controller);
    t1 = bench_now_ns();
    d1 = udp_rcvbuf_errors();
    if (!wait_for(r, all_counted, 5000))
        return;
    for (unsigned i = 0; i < r->nw; i++) {
        h1 += r->w[i].h;
        u1 += r->w[i].hu;
    }
    /* Dropped datagrams never reached the controller: not counted. */
    u1 -= d1 - d0 < u1 - u0 ? d1 - d0 : u1 - u0;
    if (c0 < 0 || c1 < 0 || h1 + u1 <= h0 + u0)
        return;
    secs = (double)(t1 - t0) / 1e9;
    printf("syncs_per_s=%.0f\n", (double)(h1 - h0) / secs);
    printf("udp_heartbeats_per_s=%.0f\n", (double)(u1 - u0) / secs);
    printf("udp_dropped=%llu\n", d1 - d0);
    printf("heartbeats_per_s=%.0f\n", (double)(h1 - h0 + u1 - u0) / secs);
    printf("heartbeat_cpu_us=%.1f\n", (double)(c1 - c0) * 1000.0 / (double)(h1 - h0 + u1 - u0));
    printf("controller_cpu_pct=%.1f\n", (double)(c1 - c0) * 1e8 / (double)(t1 - t0));
}

static void
recovery(struct run *r)
{
    uint64_t ts;

    /* Agent 0 holds instances: the spread placed some on every node. */
    r->silent = 0;
    for (size_t i = 0; i < r->tabsz; i++)
        if (r->tab[i].id != 0 && r->tab[i].agent == 0)
            r->live--;
    tell(r, 0, "SILENCE 0\n");
    if (!wait_for(r, silenced, 5000)) {
        fail_check(r, "the agent to silence did not answer");
        return;
    }
    ts = r->w[0].silenced_ns;
    if (!wait_for(r, all_placed, r->o.timeout_ms)) {
        fail_check(r, "recovery: %zu of %u instances up after %u ms", r->live, r->o.instances,
                   r->o.timeout_ms);
        return;
    }
    printf("recovery_ms=%.1f\n", (double)(r->t_last - ts) / 1e6);
}

static int
place(struct run *r)
{
    struct api a = {.sock = -1};
    int64_t rss0, rss1, cpu0, cpu1;
    uint64_t treg = bench_now_ns();
    int rc;

    if ((rc = start_workers(r)) < 0) {
        fprintf(stderr, "bench: cannot start workers: %s\n", strerror(-rc));
        return 2;
    }
    if (api_open(&a, &r->cfg, r->o.timeout_ms) < 0) {
        fprintf(stderr, "bench: cannot open the API socket\n");
        return 2;
    }
    if (!wait_for(r, all_ready, r->o.timeout_ms)) {
        fail_check(r, "not every agent registered within %u ms", r->o.timeout_ms);
        return 1;
    }
    printf("agents=%u\nworkers=%u\nregister_ms=%.0f\n", r->o.agents, r->nw,
           (double)(bench_now_ns() - treg) / 1e6);
    /* A scale on a cluster at rest: the registrations' tail (their first
     * syncs, the watches they take, busy answers while the agent endpoint
     * was behind) is over before it, as settle() waits for it after. */
    settle(r, "rest_ms");
    rss0 = bench_rss_kib(r->o.controller);
    cpu0 = bench_cpu_ms(r->o.controller);
    r->placing = true;
    r->t0 = bench_now_ns();
    if ((rc = scale(r, &a, false)) < 0) {
        fail_check(r, "scale: %s", rc == -EREMOTEIO ? "refused" : wire_strerror(rc));
        return 1;
    }
    printf("scale_call_ms=%.1f\n", (double)(bench_now_ns() - r->t0) / 1e6);
    if (!wait_for(r, all_placed, r->o.timeout_ms))
        fail_check(r, "%zu of %u instances acknowledged after %u ms", r->live, r->o.instances,
                   r->o.timeout_ms);
    r->placing = false;
    cpu1 = bench_cpu_ms(r->o.controller);
    if (r->errors == 0) {
        double secs = (double)(r->t_last - r->t0) / 1e9;

        qsort(r->lat_ns, r->nlat, sizeof(*r->lat_ns), cmp_u64);
        printf("instances=%u\nplace_s=%.3f\nplacements_per_s=%.0f\n", r->o.instances, secs,
               r->o.instances / secs);
        printf("ack_p50_ms=%.1f\nack_p99_ms=%.1f\n", r->lat_ns[r->nlat / 2] / 1e6,
               r->lat_ns[r->nlat * 99 / 100] / 1e6);
        /* The controller's own CPU from the scale to the last
         * acknowledgement: steadier than the rate on a shared machine. */
        if (cpu0 >= 0 && cpu1 >= cpu0)
            printf("place_cpu_us=%.1f\n", (double)(cpu1 - cpu0) * 1000.0 / r->o.instances);
        for (unsigned t = 0; t < r->o.types; t++)
            for (unsigned i = 1; i <= r->quantity[t]; i++)
                if (!r->seen[t][i])
                    fail_check(r, "instance p%u.%u never acknowledged", t, i);
    }
    if (r->errors == 0 && r->o.instances <= PS_CHECK_MAX)
        check_ps(r, &a);
    rss1 = bench_rss_kib(r->o.controller);
    if (rss0 > 0 && rss1 > 0) {
        printf("controller_rss_kib=%lld\n", (long long)rss1);
        printf("controller_rss_idle_kib=%lld\n", (long long)rss0);
        printf("controller_kib_per_10k=%.0f\n", (double)(rss1 - rss0) * 10000.0 / r->o.instances);
    }
    if (r->errors == 0 && r->o.hb_window_ms > 0)
        heartbeat_cpu(r);
    if (r->errors == 0 && r->o.recover && r->o.agents > 1)
        recovery(r);
    if (!a.inflight) /* closing a REQ mid-request can abort in nanomsg 1.1.5 */
        nn_close(a.sock);
    printf("correctness=%s\n", r->errors == 0 ? "ok" : "FAILED");
    return r->errors == 0 ? 0 : 1;
}

/* ---- main ---- */

static int
usage(void)
{
    fputs("usage: drover-bench-load place --agents K --instances N [--types T] [--app APP]\n"
          "         [--join URL] [--api URL] [--controller-pid PID] [--hb-window-ms MS]\n"
          "         [--timeout-ms MS] [--recover]\n"
          "       drover-bench-load echo-server URL\n"
          "       drover-bench-load echo URL SOCKETS MS\n"
          "place reads DROVER_CLUSTER_KEY and DROVER_API_TOKEN.\n",
          stderr);
    return 2;
}

static int
parse(int argc, char **argv, struct run *r)
{
    static const struct option lo[] = {{"agents", required_argument, NULL, 'k'},
                                       {"instances", required_argument, NULL, 'n'},
                                       {"types", required_argument, NULL, 't'},
                                       {"app", required_argument, NULL, 'a'},
                                       {"join", required_argument, NULL, 'j'},
                                       {"api", required_argument, NULL, 'p'},
                                       {"controller-pid", required_argument, NULL, 'c'},
                                       {"hb-window-ms", required_argument, NULL, 'w'},
                                       {"timeout-ms", required_argument, NULL, 'T'},
                                       {"recover", no_argument, NULL, 'r'},
                                       {NULL, 0, NULL, 0}};
    uint64_t v;
    int c;

    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (c == 'r') {
            r->o.recover = true;
            continue;
        }
        if (c == '?')
            return -EINVAL;
        if (c == 'a') {
            if (!name_app_valid(optarg))
                return -EINVAL;
            snprintf(r->o.app, sizeof(r->o.app), "%s", optarg);
        } else if (c == 'j' || c == 'p') {
            if (env_parse_endpoint(optarg, (char[256]){0}, 256, &(uint16_t){0}) < 0)
                return -EINVAL;
            snprintf(c == 'j' ? r->cfg.join : r->cfg.api, sizeof(r->cfg.join), "%s", optarg);
        } else {
            if (env_parse_u64(optarg, 0, 100000000, &v) < 0)
                return -EINVAL;
            if (c == 'k')
                r->o.agents = (unsigned)v;
            else if (c == 'n')
                r->o.instances = (unsigned)v;
            else if (c == 't')
                r->o.types = (unsigned)v;
            else if (c == 'c')
                r->o.controller = (pid_t)v;
            else if (c == 'w')
                r->o.hb_window_ms = (unsigned)v;
            else if (c == 'T')
                r->o.timeout_ms = (unsigned)v;
        }
    }
    if (r->o.agents < 1 || r->o.agents > 64 * BENCH_PER_WORKER || r->o.instances < 1 ||
        r->o.types < 1 || r->o.types > MAX_TYPES ||
        (r->o.instances + r->o.types - 1) / r->o.types > 10000)
        return -EINVAL;
    return 0;
}

static int
setup(struct run *r)
{
    struct env_errs e = {0};
    char token[4097];
    unsigned per;

    env_key(&e, "DROVER_CLUSTER_KEY", r->cfg.cluster_key);
    env_token(&e, "DROVER_API_TOKEN", true, token, sizeof(token));
    env_check(&e);
    wire_key_from_token(token, r->cfg.api_key);
    if (env_endpoint_offset(r->cfg.join, 1, r->cfg.notify, sizeof(r->cfg.notify)) < 0)
        return -EINVAL;
    r->cfg.agents = r->o.agents;
    per = (r->o.instances + r->o.agents - 1) / r->o.agents;
    r->cfg.capacity = per * 2 + 4; /* room for a silent agent's share */
    r->cfg.run_id = randombytes_random();
    for (unsigned t = 0; t < r->o.types; t++) {
        r->quantity[t] = r->o.instances / r->o.types + (t < r->o.instances % r->o.types);
        if ((r->seen[t] = calloc(r->quantity[t] + 1, 1)) == NULL)
            return -ENOMEM;
    }
    for (r->tabsz = 1024; r->tabsz < 4 * (size_t)r->o.instances;)
        r->tabsz *= 2;
    r->tab = calloc(r->tabsz, sizeof(*r->tab));
    r->lat_ns = calloc(r->o.instances, sizeof(*r->lat_ns));
    r->silent = -1;
    return r->tab != NULL && r->lat_ns != NULL ? 0 : -ENOMEM;
}

static int
echo(int argc, char **argv)
{
    uint64_t socks, ms;
    unsigned nw, i;
    unsigned long long total = 0, n, took, maxtook = 0;
    int *evs;

    if (argc != 5 || env_parse_u64(argv[3], 1, 64 * BENCH_PER_WORKER, &socks) < 0 ||
        env_parse_u64(argv[4], 100, 600000, &ms) < 0)
        return usage();
    nw = (unsigned)((socks + BENCH_PER_WORKER - 1) / BENCH_PER_WORKER);
    evs = calloc(nw, sizeof(*evs));
    for (i = 0; i < nw; i++) {
        int ev[2];
        unsigned count = (unsigned)(socks - i * BENCH_PER_WORKER < BENCH_PER_WORKER
                                        ? socks - i * BENCH_PER_WORKER
                                        : BENCH_PER_WORKER);

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ev) < 0)
            return 2;
        if (fork() == 0) {
            close(ev[0]);
            bench_echo_worker(argv[2], count, (unsigned)ms, i, ev[1]);
        }
        close(ev[1]);
        evs[i] = ev[0];
    }
    for (i = 0; i < nw; i++) {
        char line[64] = {0};

        if (read(evs[i], line, sizeof(line) - 1) <= 0 ||
            sscanf(line, "E %llu %llu", &n, &took) != 2) {
            fprintf(stderr, "bench: echo worker %u failed\n", i);
            return 1;
        }
        total += n;
        if (took > maxtook)
            maxtook = took;
    }
    while (wait(NULL) > 0)
        ;
    printf("echo_sockets=%llu\necho_requests_per_s=%.0f\n", (unsigned long long)socks,
           maxtook > 0 ? (double)total * 1000.0 / (double)maxtook : 0.0);
    return 0;
}

int
main(int argc, char **argv)
{
    struct run r = {.o = {.types = 10, .hb_window_ms = 3000, .timeout_ms = 120000}};
    int rc;

    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    bench_raise_nofile();
    if (sodium_init() < 0)
        return 2;
    if (argc >= 2 && strcmp(argv[1], "echo-server") == 0)
        return argc == 3 ? bench_echo_server(argv[2]) : usage();
    if (argc >= 2 && strcmp(argv[1], "echo") == 0)
        return echo(argc, argv);
    if (argc < 2 || strcmp(argv[1], "place") != 0)
        return usage();
    snprintf(r.o.app, sizeof(r.o.app), "bench");
    snprintf(r.cfg.join, sizeof(r.cfg.join), "tcp://127.0.0.1:7501");
    snprintf(r.cfg.api, sizeof(r.cfg.api), "tcp://127.0.0.1:7500");
    if (parse(argc - 1, argv + 1, &r) < 0)
        return usage();
    if ((rc = setup(&r)) < 0) {
        fprintf(stderr, "bench: %s\n", strerror(-rc));
        return 2;
    }
    rc = place(&r);
    stop_workers(&r);
    return rc;
}
