/* SPDX-License-Identifier: MIT */
/*
 * logship.c: every line an instance writes, on its way to the controller.
 *
 * Lines go into one bounded queue (common/logring.h, refusing when full)
 * and leave in batches (LogBatch) on a PUSH socket connected to the agent
 * endpoint's port + 2, every AGT_LOG_FLUSH_MS or as soon as a batch is full.
 * A send that nanomsg cannot take now (no controller, its buffers full)
 * leaves the lines queued for the next tick. So an app that writes faster
 * than the lines can leave, or a controller that is away, never blocks the
 * app or the agent: the queue fills, further lines are refused and counted
 * per stream, and a line "N lines dropped" takes their place once there is
 * room again. Nothing is dropped without such a line (or, if even the
 * marker reserve is full, an event in the agent's own log).
 *
 * Lines are removed from the queue only once nanomsg has accepted their
 * batch. A batch lost in flight (the controller dies with it in its socket
 * buffer) is lost; that is the one gap, and it is documented.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <nanomsg/nn.h>
#include <nanomsg/pipeline.h>

#include "agt.h"
#include "env.h"
#include "log.h"
#include "logring.h"
#include "nnuv.h"
#include "util.h"

#define BATCH_LINES 500
#define BATCH_BYTES (256u << 10)

struct agt_logs {
    struct agt *agt; /* borrowed */
    struct nnuv *push;
    struct logring *q;
    uv_timer_t timer;
    uint64_t lost_reported;
    bool blocked; /* the last send could not go: wait for the tick */
    bool closing;
};

static void
flush(struct agt_logs *l)
{
    Drover__Message m = DROVER__MESSAGE__INIT;
    Drover__LogBatch b = DROVER__LOG_BATCH__INIT;
    Drover__LogLine lines[BATCH_LINES], *ptrs[BATCH_LINES];
    size_t n, bytes = 0;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc;

    while (logring_count(l->q) > 0) {
        for (n = 0; n < BATCH_LINES && n < logring_count(l->q) && bytes < BATCH_BYTES; n++) {
            const struct logring_line *x = logring_at(l->q, n);

            drover__log_line__init(&lines[n]);
            lines[n].ts_ms = x->ts_ms;
            lines[n].app = (char *)x->app;
            lines[n].source = (char *)x->source;
            lines[n].text = (char *)x->text;
            lines[n].is_stderr = x->node[0] != '\0';
            ptrs[n] = &lines[n];
            bytes += x->size;
        }
        b.node = (char *)agt_cfg(l->agt)->node;
        b.n_lines = n;
        b.lines = ptrs;
        m.body_case = DROVER__MESSAGE__BODY_LOG_BATCH;
        m.log_batch = &b;
        rc = wire_seal(agt_sender(l->agt), &m, &buf, &len);
        if (rc == 0)
            rc = nnuv_send(l->push, buf, len);
        free(buf);
        buf = NULL;
        if (rc < 0) {
            if (rc != -EAGAIN)
                log_warn("log_ship_failed", "err=%s lines=%zu", log_q(uv_strerror(rc)), n);
            /* Kept: the next tick tries again. Until then, lines only
             * queue (or are counted as dropped): building a batch per
             * line to fail again would slow the agent to a crawl. */
            l->blocked = true;
            break;
        }
        l->blocked = false;
        logring_pop(l->q, n);
        bytes = 0;
        if (logring_count(l->q) < AGT_LOG_QUEUE_LINES / 2)
            agt_out_flush_drops(l->agt);
    }
    if (logring_lost_markers(l->q) != l->lost_reported) {
        log_warn("log_markers_lost", "count=%" PRIu64,
                 logring_lost_markers(l->q) - l->lost_reported);
        l->lost_reported = logring_lost_markers(l->q);
    }
}

static void
on_timer(uv_timer_t *t)
{
    struct agt_logs *l = t->data;

    l->blocked = false;
    flush(l);
}

struct agt_logs *
agt_logs_new(struct agt *a, int *err)
{
    struct agt_logs *l = calloc(1, sizeof(*l));
    int rc = -ENOMEM, sndbuf = 1 << 20;

    *err = rc;
    if (l == NULL)
        return NULL;
    l->agt = a;
    l->q = logring_new(AGT_LOG_QUEUE_LINES, AGT_LOG_QUEUE_BYTES, false);
    if (l->q == NULL)
        goto fail;
    l->push = nnuv_new(agt_loop(a), AF_SP, NN_PUSH, NULL, NULL, &rc);
    if (l->push == NULL)
        goto fail;
    nn_setsockopt(nnuv_sock(l->push), NN_SOL_SOCKET, NN_SNDBUF, &sndbuf, sizeof(sndbuf));
    if ((rc = nnuv_connect(l->push, agt_cfg(a)->logs)) < 0)
        goto fail;
    uv_timer_init(agt_loop(a), &l->timer);
    l->timer.data = l;
    uv_timer_start(&l->timer, on_timer, AGT_LOG_FLUSH_MS, AGT_LOG_FLUSH_MS);
    *err = 0;
    return l;
fail:
    if (l->push != NULL)
        nnuv_close(l->push);
    logring_free(l->q);
    free(l);
    *err = rc;
    return NULL;
}

void
agt_logs_follow(struct agt_logs *l, const char *endpoint)
{
    char ep[256];
    int rc;

    if (l == NULL || l->closing)
        return;
    if ((rc = env_endpoint_offset(endpoint, 2, ep, sizeof(ep))) == 0)
        rc = nnuv_retarget(l->push, ep);
    if (rc < 0)
        log_warn("redial_failed", "sock=logs err=%s", log_q(strerror(-rc)));
}

void
agt_logs_line(struct agt_logs *l, const char *app, const char *source, bool err, const char *text,
              size_t len, struct logring_drops *d)
{
    if (l == NULL || l->closing)
        return;
    /* The queue's node slot is free (the batch names the node): it tags a
     * stderr line, for the drains' severity. */
    if (logring_push_counted(l->q, d, now_ms(), app, source, err ? "stderr" : NULL, text, len) < 0)
        agt_metrics_log_dropped(agt_metrics(l->agt));
    if (logring_count(l->q) >= BATCH_LINES && !l->blocked)
        flush(l);
}

void
agt_logs_source_done(struct agt_logs *l, const char *app, const char *source,
                     struct logring_drops *d)
{
    if (l != NULL && !l->closing)
        logring_flush_drops(l->q, d, now_ms(), app, source, NULL);
}

static void
on_close(uv_handle_t *h)
{
    struct agt_logs *l = h->data;

    logring_free(l->q);
    free(l);
}

void
agt_logs_close(struct agt_logs *l)
{
    if (l == NULL || l->closing)
        return;
    /* One last try, so that the final lines of a shutdown get out. */
    flush(l);
    if (logring_count(l->q) > 0)
        log_warn("log_lines_unsent", "count=%zu", logring_count(l->q));
    l->closing = true;
    nnuv_close(l->push);
    uv_close((uv_handle_t *)&l->timer, on_close);
}
