/* SPDX-License-Identifier: MIT */
/*
 * logs.c: each app's log stream: the lines its instances write, shipped by
 * the agents, and the controller's own events about the app (source
 * "drover": scaled, release created, state changes, crashes, deploys).
 *
 * Agents PUSH batches (LogBatch) to a PULL socket bound next to the notify
 * endpoint (agent endpoint's port + 2). Each app keeps its last
 * DROVER_LOG_LINES lines in an overwriting ring (common/logring.h) that
 * numbers every line, so `drover logs --tail` follows by sequence number:
 * a LogsReq with after_seq is answered at once when matching lines are
 * there, else held (the API socket is raw REP) until one arrives or
 * wait_ms passes. A reader that fell further behind than the ring reaches
 * is told how many lines it missed; nothing is skipped silently. History
 * lives in memory only: a restarted controller starts every stream empty.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nanomsg/nn.h>
#include <nanomsg/pipeline.h>

#include "ctl.h"
#include "http.h"
#include "log.h"
#include "logring.h"

#define LOGS_TICK_MS 100
#define LOGS_REPLY_BYTES (4u << 20) /* well under WIRE_MAX_SIZE */
#define LOGS_BATCH_MAX 5000
#define LOGS_LINE_MAX 65536
#define LOGS_WAIT_MAX_MS 60000
#define LOGS_LINES_MAX 100000u

struct app_log {
    char name[APP_NAME_MAX + 2];
    struct logring *ring;
};

struct log_waiter {
    LIST_ENTRY(log_waiter) link;
    struct ctl_call *c; /* pending until answered */
    char app[APP_NAME_MAX + 2];
    char source[72];
    char type[TYPE_NAME_MAX + 2];
    uint64_t after;
    uint64_t deadline;
};

struct ctl_logs {
    struct ctl *ctl;
    size_t max_lines;
    struct ctl_map *apps; /* name -> struct app_log */
    struct nnuv *pull;
    LIST_HEAD(, log_waiter) waiters;
    uv_timer_t tick;
    bool tick_init;
    uint64_t dropped_unknown;
};

struct ctl_logs *
ctl_logs_new(struct ctl *ctl, size_t max_lines)
{
    struct ctl_logs *l = calloc(1, sizeof(*l));

    if (l == NULL)
        return NULL;
    l->ctl = ctl;
    l->max_lines = max_lines;
    l->apps = ctl_map_new();
    if (l->apps == NULL) {
        free(l);
        return NULL;
    }
    LIST_INIT(&l->waiters);
    return l;
}

static void
waiter_free(struct log_waiter *w)
{
    LIST_REMOVE(w, link);
    if (w->c != NULL)
        ctl_call_end_error(w->c, DROVER__ERROR_CODE__ERR_UNAVAILABLE, "the controller is stopping");
    free(w);
}

void
ctl_logs_free(struct ctl_logs *l)
{
    size_t pos = 0;
    struct app_log *al;

    if (l == NULL)
        return;
    while (!LIST_EMPTY(&l->waiters))
        waiter_free(LIST_FIRST(&l->waiters));
    while ((al = ctl_map_next(l->apps, &pos)) != NULL) {
        logring_free(al->ring);
        free(al);
    }
    ctl_map_free(l->apps);
    free(l);
}

static struct app_log *
app_log(struct ctl_logs *l, const char *app, bool create)
{
    struct app_log *al = ctl_map_get(l->apps, app);

    if (al != NULL || !create)
        return al;
    al = calloc(1, sizeof(*al));
    if (al == NULL)
        return NULL;
    snprintf(al->name, sizeof(al->name), "%s", app);
    al->ring = logring_new(l->max_lines, 0, true);
    if (al->ring == NULL || ctl_map_put(l->apps, al->name, al) < 0) {
        logring_free(al->ring);
        free(al);
        return NULL;
    }
    return al;
}

static bool
matches(const struct logring_line *x, const char *source, const char *type)
{
    size_t tl;

    if (source[0] != '\0' && strcmp(x->source, source) != 0)
        return false;
    if (type[0] != '\0') {
        tl = strlen(type);
        if (strncmp(x->source, type, tl) != 0 || x->source[tl] != '.')
            return false;
    }
    return true;
}

/*
 * Fill rep with the matching lines of al: after `after` (follow), or the
 * last `want` (after == UINT64_MAX). Lines are borrowed from the ring: send
 * before the loop runs again. Returns how many lines it holds, or -ENOMEM.
 */
static long
collect(struct ctl_arena *ar, struct app_log *al, const char *source, const char *type,
        uint64_t after, uint32_t want, Drover__LogsRep *rep)
{
    size_t count = al ? logring_count(al->ring) : 0, start, i, n = 0, bytes = 0;
    Drover__LogLine *lines;

    rep->next_seq = al ? logring_next_seq(al->ring) : 1;
    if (count == 0)
        return 0;
    if (after != UINT64_MAX) {
        uint64_t first = logring_first_seq(al->ring);

        if (after + 1 < first)
            rep->missed = first - (after + 1);
        start = logring_index_after(al->ring, after);
    } else {
        /* Walk back to the want-th matching line from the end. */
        size_t found = 0;

        start = count;
        while (start > 0 && found < want) {
            const struct logring_line *x = logring_at(al->ring, start - 1);

            bytes += x->size + 32;
            if (bytes > LOGS_REPLY_BYTES)
                break;
            start--;
            found += matches(x, source, type);
        }
        bytes = 0;
    }
    rep->lines = ctl_arena_alloc(ar, (count - start + 1) * sizeof(*rep->lines));
    lines = ctl_arena_alloc(ar, (count - start + 1) * sizeof(*lines));
    if (rep->lines == NULL || lines == NULL)
        return -ENOMEM;
    for (i = start; i < count; i++) {
        const struct logring_line *x = logring_at(al->ring, i);

        if (!matches(x, source, type))
            continue;
        if (bytes + x->size + 32 > LOGS_REPLY_BYTES) {
            /* The rest comes with the next request. */
            rep->next_seq = x->seq;
            break;
        }
        bytes += x->size + 32;
        drover__log_line__init(&lines[n]);
        lines[n].ts_ms = x->ts_ms;
        lines[n].app = (char *)x->app;
        lines[n].source = (char *)x->source;
        lines[n].node = (char *)x->node;
        lines[n].text = (char *)x->text;
        lines[n].seq = x->seq;
        rep->lines[n] = &lines[n];
        n++;
    }
    rep->n_lines = n;
    return (long)n;
}

/* The reply of c: the lines of al after `after`. */
static int
fill_lines(struct ctl_call *c, struct app_log *al, const char *source, const char *type,
           uint64_t after, uint32_t want)
{
    Drover__LogsRep *rep = ctl_arena_alloc(c->ar, sizeof(*rep));

    if (rep == NULL)
        return ctl_oom(c);
    drover__logs_rep__init(rep);
    if (collect(c->ar, al, source, type, after, want, rep) < 0)
        return ctl_oom(c);
    c->rep.body_case = DROVER__MESSAGE__BODY_LOGS_REP;
    c->rep.logs_rep = rep;
    return 0;
}

/* Answer every waiter of app that now has lines (all of them if force). */
static void
wake(struct ctl_logs *l, const char *app, bool force)
{
    struct log_waiter *w, *next;
    struct ctl_call *c;
    uint64_t now = mono_ms();
    int rc;

    for (w = LIST_FIRST(&l->waiters); w != NULL; w = next) {
        struct app_log *al;
        size_t i, count;
        bool any = false;

        next = LIST_NEXT(w, link);
        if (app != NULL && strcmp(w->app, app) != 0)
            continue;
        al = app_log(l, w->app, false);
        count = al ? logring_count(al->ring) : 0;
        i = al ? logring_index_after(al->ring, w->after) : 0;
        for (; i < count && !any; i++)
            any = matches(logring_at(al->ring, i), w->source, w->type);
        if (al != NULL && w->after + 1 < logring_first_seq(al->ring))
            any = true; /* tell it what it missed */
        if (!any && !force && now < w->deadline)
            continue;
        c = w->c;
        w->c = NULL;
        rc = fill_lines(c, al, w->source, w->type, w->after, 0);
        waiter_free(w);
        ctl_call_end(c, rc == 0 ? &c->rep : NULL);
        next = LIST_FIRST(&l->waiters); /* answering may have answered others */
    }
}

static int
append(struct ctl_logs *l, uint64_t ts, const char *app, const char *source, const char *node,
       bool err, const char *text, size_t len)
{
    struct app_log *al = app_log(l, app, true);

    if (al == NULL)
        return -ENOMEM;
    ctl_drains_line(l->ctl->drains, app, ts, source, node, err, text, len);
    return logring_push(al->ring, ts, app, source, node, text, len);
}

void
ctl_logs_event(struct ctl_logs *l, const char *app, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    int n;

    if (l == NULL)
        return;
    va_start(ap, fmt);
    n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(text))
        n = sizeof(text) - 1;
    if (append(l, now_ms(), app, "drover", "", false, text, (size_t)n) == 0)
        wake(l, app, false);
}

void
ctl_logs_text(void *arg, const char *app, const char *text)
{
    struct ctl_logs *l = arg;
    size_t n = strnlen(text, 1023);

    /* Written as it is (ctl_logs_event would format it again: a state
     * change of every instance of a placement comes here). */
    if (l != NULL && append(l, now_ms(), app, "drover", "", false, text, n) == 0)
        wake(l, app, false);
}

/* ---- agents' batches ---- */

static const char *
line_invalid(const Drover__LogLine *x)
{
    if (x == NULL || x->app == NULL || !name_app_valid(x->app))
        return "bad app name";
    if (x->source == NULL || !name_instance_valid(x->source))
        return "bad source";
    if (x->text == NULL || strnlen(x->text, LOGS_LINE_MAX + 1) > LOGS_LINE_MAX)
        return "line too long";
    return NULL;
}

static void
on_batch(struct ctl_logs *l, const Drover__LogBatch *b)
{
    const char *node = b->node != NULL ? b->node : "";
    const char *last_app = NULL;
    size_t i, bad = 0, unknown = 0;

    if (!name_node_valid(node) || b->n_lines > LOGS_BATCH_MAX) {
        log_warn("bad_message", "sock=logs reason=%s",
                 b->n_lines > LOGS_BATCH_MAX ? "too_many_lines" : "bad_node");
        return;
    }
    ctl_metrics_log_lines(b->n_lines);
    for (i = 0; i < b->n_lines; i++) {
        const Drover__LogLine *x = b->lines[i];

        if (line_invalid(x) != NULL) {
            bad++;
            continue;
        }
        /* Lines of an app the controller does not have go nowhere. */
        if (ctl_app_find(l->ctl->model, x->app) == NULL) {
            unknown++;
            continue;
        }
        append(l, x->ts_ms, x->app, x->source, node, x->is_stderr, x->text, strlen(x->text));
        if (last_app == NULL || strcmp(last_app, x->app) != 0) {
            if (last_app != NULL)
                wake(l, last_app, false);
            last_app = x->app;
        }
    }
    if (last_app != NULL)
        wake(l, last_app, false);
    if (bad > 0 || unknown > 0)
        log_warn("log_lines_refused", "node=%s bad=%zu unknown_app=%zu", node, bad, unknown);
}

static void
on_pull(struct nnuv *s, struct nnuv_msg *msg, void *arg)
{
    struct ctl_logs *l = arg;
    struct wire_header hdr;
    Drover__Message *m = NULL;
    int rc = wire_open(msg->body, msg->len, &hdr, &m);

    nnuv_msg_free(msg);
    if (rc == 0 && hdr.key != l->ctl->key_cluster && hdr.key != l->ctl->key_cluster_next) {
        /* Sealed, but with the API key: only agents ship logs. */
        wire_msg_free(m);
        rc = -EKEYREJECTED;
    }
    if (rc < 0) {
        /* PUSH/PULL has no reply: a refusal is only logged. */
        log_warn(wire_err_auth(rc) ? "refused" : "bad_message",
                 "sock=logs reason=%s sender=%s key_id=%08x", log_q(wire_strerror(rc)),
                 log_q(hdr.sender), (unsigned)hdr.key_id);
        return;
    }
    if (m->body_case == DROVER__MESSAGE__BODY_LOG_BATCH && m->log_batch != NULL)
        on_batch(l, m->log_batch);
    else
        log_warn("bad_message", "sock=logs reason=unexpected_type type=%d", (int)m->body_case);
    wire_msg_free(m);
}

/* ---- the CLI's requests ---- */

static int
logs_check(struct ctl_call *c, const Drover__LogsReq *r, const char *source, const char *type)
{
    Drover__ErrorCode bad = DROVER__ERROR_CODE__ERR_BAD_REQUEST;

    if (ctl_call_app(c, r->app) == NULL)
        return -1;
    if (source[0] != '\0' && strcmp(source, "drover") != 0 && !name_instance_valid(source))
        return ctl_fail(c, bad, "invalid source (want an instance like web.1, or drover)");
    if (type[0] != '\0' && !name_type_valid(type))
        return ctl_fail(c, bad, "invalid process type");
    if (r->lines > LOGS_LINES_MAX)
        return ctl_fail(c, bad, "at most 100000 lines");
    if (r->wait_ms > LOGS_WAIT_MAX_MS)
        return ctl_fail(c, bad, "wait at most 60000 ms");
    return 0;
}

/* LogsReq: answered now, or pending until there are lines (a tail). */
int
ctl_h_logs(struct ctl_call *c)
{
    struct ctl_logs *l = c->ctl->logs;
    const Drover__LogsReq *r = c->req->logs_req;
    const char *source = r->source != NULL ? r->source : "";
    const char *type = r->type != NULL ? r->type : "";
    struct log_waiter *w;

    if (logs_check(c, r, source, type) < 0)
        return -1;
    if (r->after_seq == 0 && r->wait_ms == 0)
        return fill_lines(c, app_log(l, r->app, false), source, type, UINT64_MAX, r->lines);
    if ((w = calloc(1, sizeof(*w))) == NULL)
        return ctl_oom(c);
    w->c = c;
    snprintf(w->app, sizeof(w->app), "%s", r->app);
    snprintf(w->source, sizeof(w->source), "%s", source);
    snprintf(w->type, sizeof(w->type), "%s", type);
    w->after = r->after_seq;
    w->deadline = mono_ms() + r->wait_ms;
    LIST_INSERT_HEAD(&l->waiters, w, link);
    wake(l, r->app, false); /* answers at once when lines are there */
    return CTL_PENDING;
}

static void
on_tick(uv_timer_t *t)
{
    struct ctl_logs *l = t->data;

    ctl_drains_tick(l->ctl->drains);
    if (!LIST_EMPTY(&l->waiters))
        wake(l, NULL, false);
}

int
ctl_logs_start(struct ctl_logs *l, uv_loop_t *loop, const char *listen)
{
    int rc = 0, rcvbuf = 4 << 20;

    l->pull = nnuv_new(loop, AF_SP, NN_PULL, on_pull, l, &rc);
    if (l->pull == NULL)
        return rc;
    nn_setsockopt(nnuv_sock(l->pull), NN_SOL_SOCKET, NN_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    if ((rc = nnuv_bind(l->pull, listen)) < 0) {
        log_error("bind_failed", "endpoint=%s err=%s", listen, strerror(-rc));
        return rc;
    }
    if ((rc = nnuv_start(l->pull)) < 0)
        return rc;
    uv_timer_init(loop, &l->tick);
    l->tick_init = true;
    l->tick.data = l;
    return uv_timer_start(&l->tick, on_tick, LOGS_TICK_MS, LOGS_TICK_MS);
}

/* Stop taking lines; answer every held request with what there is. */
void
ctl_logs_stop(struct ctl_logs *l)
{
    if (l->pull != NULL)
        nnuv_stop(l->pull);
    wake(l, NULL, true);
}

/* Close the socket and the timer (main.c, once the loop winds down). */
void
ctl_logs_close(struct ctl_logs *l)
{
    if (l->pull != NULL)
        nnuv_close(l->pull);
    l->pull = NULL;
    if (l->tick_init)
        uv_close((uv_handle_t *)&l->tick, NULL);
    l->tick_init = false;
}

/* apps:destroy: the app's stream goes with it; whoever waits gets what
 * there is now. A new app of that name starts with an empty stream. */
void
ctl_logs_forget(struct ctl_logs *l, const char *app)
{
    struct app_log *al;

    if (l == NULL)
        return;
    wake(l, app, true);
    if ((al = ctl_map_del(l->apps, app)) != NULL) {
        logring_free(al->ring);
        free(al);
    }
}
