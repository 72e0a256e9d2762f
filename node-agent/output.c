/* SPDX-License-Identifier: MIT */
/*
 * output.c: an instance's stdout or stderr, line by line into the app's
 * log stream (logship.c). The agent's own stdout carries only its own
 * events: under systemd an echo of every app line doubles the journal, and
 * a slow journal would stall the loop. DROVER_ECHO_APP_LOGS=1 echoes them
 * for debugging, without ever blocking (lines stdout cannot take at once
 * are dropped there):
 *
 *   event=output app=shop inst=web.1 stream=stdout line="GET / 200"
 *
 * Each stream is its own heap object with its own lifetime: it keeps reading
 * after the process has exited, until EOF (the last lines of a crash are the
 * most useful ones), then frees itself in the close callback. A line longer
 * than AGT_LINE_MAX is cut into several events rather than buffered without
 * bound. Values are quoted here, not with log_q(), which truncates near
 * 900 bytes.
 *
 * Each line goes to the app's log stream with this stream's own count of
 * lines the shipping queue had to refuse.
 *
 * Memory: reads land in one buffer shared by every stream (the loop thread
 * consumes each read before the next), and a stream holds a buffer of its
 * own only while a line is incomplete. Two 8 KiB buffers per instance were
 * 16 MiB at 1,000 instances, for processes that mostly write nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agt.h"
#include "log.h"
#include "logring.h"

struct agt_out {
    uv_pipe_t pipe;
    struct agt *agt;             /* borrowed: it outlives every stream */
    struct agt_out *prev, *next; /* every open stream (agt_outs), for agt_out_close_all */
    struct agt_spec *spec;       /* shared (agt_spec_ref): its app and name */
    bool err;                    /* stderr, else stdout */
    struct logring_drops drops;
    size_t len; /* of the incomplete line in buf */
    char *buf;  /* AGT_LINE_MAX bytes while a line is incomplete, else NULL */
};

static char rbuf[AGT_LINE_MAX]; /* every read; the loop thread only */

/* logfmt-quote s[0..n) into out (at least 2n + 3 bytes). */
static void
quote(const char *s, size_t n, char *out)
{
    char *p = out;

    *p++ = '"';
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)s[k];

        if (c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = (char)c;
        } else if (c == '\t') {
            *p++ = '\\';
            *p++ = 't';
        } else if (c < 0x20 || c == 0x7f) {
            *p++ = '?';
        } else {
            *p++ = (char)c;
        }
    }
    *p++ = '"';
    *p = '\0';
}

static void
emit(struct agt_out *o, const char *line, size_t n)
{
    static char q[2 * AGT_LINE_MAX + 3]; /* the loop thread only */

    if (n > 0 && line[n - 1] == '\r')
        n--;
    if (agt_cfg(o->agt)->echo_app_logs) {
        /* A debugging aid: never blocks, so a slow stdout costs lines here,
         * not the loop. */
        quote(line, n, q);
        log_event_try(LOG_INFO, "output", "app=%s inst=%s stream=%s line=%s", o->spec->app,
                      o->spec->name, o->err ? "stderr" : "stdout", q);
    }
    agt_logs_line(agt_logs(o->agt), o->spec->app, o->spec->name, o->err, line, n, &o->drops);
}

static void
on_close(uv_handle_t *h)
{
    struct agt_out *o = h->data;

    agt_logs_source_done(agt_logs(o->agt), o->spec->app, o->spec->name, &o->drops);
    if (o->prev)
        o->prev->next = o->next;
    else
        *agt_outs(o->agt) = o->next;
    if (o->next)
        o->next->prev = o->prev;
    free(o->buf);
    agt_spec_free(o->spec);
    free(o);
}

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct agt_out *o = h->data;

    /* Never full here: on_read flushes a full line. At most what the
     * incomplete line has room for, so that a line is cut where it was. */
    buf->base = rbuf;
    buf->len = sizeof rbuf - o->len;
}

static void
on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct agt_out *o = s->data;
    size_t start = 0, len, rest;
    const char *data;

    if (nread < 0) {
        if (o->len > 0)
            emit(o, o->buf, o->len);
        o->len = 0;
        if (!uv_is_closing((uv_handle_t *)s))
            uv_close((uv_handle_t *)s, on_close);
        return;
    }
    if (nread == 0)
        return;
    if (o->len > 0) { /* the incomplete line goes on */
        memcpy(o->buf + o->len, rbuf, (size_t)nread);
        data = o->buf;
    } else
        data = rbuf;
    len = o->len + (size_t)nread;
    for (size_t k = o->len; k < len; k++) {
        if (data[k] == '\n') {
            emit(o, data + start, k - start);
            start = k + 1;
        }
    }
    rest = len - start;
    if (rest == AGT_LINE_MAX) { /* too long: cut here */
        emit(o, data, rest);
        rest = 0;
    }
    if (rest > 0 && !o->buf && (o->buf = malloc(AGT_LINE_MAX)) == NULL) {
        emit(o, data + start, rest); /* no memory to wait for its end */
        rest = 0;
    }
    if (rest > 0)
        memmove(o->buf, data + start, rest);
    o->len = rest;
    if (rest == 0) {
        free(o->buf);
        o->buf = NULL;
    }
}

struct agt_out *
agt_out_new(struct agt *a, struct agt_spec *spec, bool err)
{
    struct agt_out *o = calloc(1, sizeof *o);
    struct agt_out **streams = agt_outs(a);

    if (!o)
        return NULL;
    o->agt = a;
    if (uv_pipe_init(agt_loop(a), &o->pipe, 0) < 0) {
        free(o);
        return NULL;
    }
    o->spec = agt_spec_ref(spec);
    o->err = err;
    o->pipe.data = o;
    o->next = *streams;
    if (*streams)
        (*streams)->prev = o;
    *streams = o;
    return o;
}

uv_pipe_t *
agt_out_pipe(struct agt_out *o)
{
    return &o->pipe;
}

int
agt_out_start(struct agt_out *o)
{
    int rc = uv_read_start((uv_stream_t *)&o->pipe, on_alloc, on_read);

    if (rc < 0)
        agt_out_close(o);
    return rc;
}

void
agt_out_close(struct agt_out *o)
{
    if (!uv_is_closing((uv_handle_t *)&o->pipe))
        uv_close((uv_handle_t *)&o->pipe, on_close);
}

void
agt_out_flush_drops(struct agt *a)
{
    /* The queue has room again: a stream that lost lines says so now, not
     * only with its next line (which may never come). */
    for (struct agt_out *o = *agt_outs(a); o; o = o->next)
        if (o->drops.dropped > 0)
            agt_logs_source_done(agt_logs(a), o->spec->app, o->spec->name, &o->drops);
}

void
agt_out_close_all(struct agt *a)
{
    /* A descendant that left the process group may hold a pipe open for
     * ever; at shutdown its output is abandoned so that uv_run can return. */
    for (struct agt_out *o = *agt_outs(a); o; o = o->next) {
        if (o->len > 0)
            emit(o, o->buf, o->len);
        o->len = 0;
        agt_out_close(o);
    }
}
