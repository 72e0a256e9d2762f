/* SPDX-License-Identifier: MIT */
/*
 * pipe.c: the stdio of an attached one-off (`drover run`), relayed through
 * the controller.
 *
 * Agents only ever connect to the controller, and the CLI only knows the
 * controller, so the controller is the rendezvous: this side sends
 * RunPipeReq on its own REQ socket to the agent endpoint, carrying output
 * and asking for stdin; the controller answers with stdin, Ctrl-C counts,
 * the window size, and how much output it took. Every field is an offset or
 * a total, never a delta, so a lost, repeated or cancelled request changes
 * nothing. With nothing to send, the request is a poll (`poll = true`) that
 * the controller holds until it has something for us; new output cancels a
 * held poll by sending a new request (the RPC client, common/rpc.c, drops
 * the older one), so both directions move as soon as there is data. A
 * request unanswered past its timeout is rebuilt and sent afresh.
 *
 * Flow control is end to end: output is kept here until the controller has
 * taken it, and reading from the process stops while more than
 * PIPE_OUT_HIGH bytes wait; stdin is taken from the controller only while
 * less than PIPE_IN_MAX bytes wait to be written to the process. stdin is
 * only ever in memory.
 *
 * With a terminal (tty), the process gets the slave side of a
 * pseudo-terminal as stdin, stdout and stderr, and we hold the master: its
 * output comes as stdout, Ctrl-C arrives as a byte for the line discipline,
 * and the window size is set with TIOCSWINSZ. The exec helper (exec.c,
 * `--tty`) makes the terminal the process's controlling one and gives it to
 * the app's user before it drops privileges: the app's user never has to
 * reach the agent's binary (a checkout under /root, a mktemp -d directory).
 *
 * A pipe outlives its instance: it lasts until the controller has recorded
 * the exit (`done`), the controller says nobody is attached (`stop`) and the
 * process is gone, or PIPE_GIVE_UP_MS after the exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "agt.h"
#include "bytewin.h"
#include "log.h"
#include "rpc.h"
#include "util.h"

#define PIPE_CHUNK (64u << 10)     /* most bytes per stream in one request */
#define PIPE_OUT_HIGH (256u << 10) /* stop reading the process above this */
#define PIPE_IN_MAX (256u << 10)   /* stdin waiting to be written */
#define PIPE_TICK_MS 100
#define PIPE_RESEND_MS 3000
#define PIPE_EOF_WAIT_MS 2000  /* after the exit, output still open is abandoned */
#define PIPE_GIVE_UP_MS 120000 /* exited, and no word from the controller */

struct obuf {
    struct bytewin w; /* what the controller has not taken yet */
    bool eof;
};

struct agt_pipe {
    struct agt *agt; /* borrowed */
    uint64_t id;
    char app[32];
    char name[64];
    bool tty;
    int master, slave;
    bool master_owned; /* by io[1], which closes it */
    uv_pipe_t io[3];   /* stdin, stdout, stderr; with a tty io[1] is the master */
    bool io_open[3];
    bool paused[3];
    struct obuf out[2];
    uint64_t stdin_have;
    size_t stdin_queued;
    bool stdin_eof, stdin_done;
    uint32_t interrupts;
    uint16_t rows, cols;
    int pgid;
    bool exited;
    int32_t code, sig;
    uint64_t exited_at;
    struct rpc *rpc;
    bool inflight_poll; /* the request outstanding is a poll */
    bool want_send;
    uint64_t heard_at; /* mono_ms of the last reply */
    bool stop, done, closing;
    uv_timer_t timer;
    int nopen;
    struct agt_pipe *prev, *next;
};

struct wreq {
    uv_write_t req;
    struct agt_pipe *p;
    size_t len;
    char data[];
};

/* Scratch, not state: every read is copied out of it at once (loop
 * thread only). The pipes themselves are listed in the agent (agt_pipes). */
static char rbuf[PIPE_CHUNK];

static void pipe_send(struct agt_pipe *p);
static void pipe_check_end(struct agt_pipe *p);

/* ---- lifetime ---- */

static void
on_handle_close(uv_handle_t *h)
{
    struct agt_pipe *p = h->data;

    if (--p->nopen > 0)
        return;
    bytewin_fini(&p->out[0].w);
    bytewin_fini(&p->out[1].w);
    free(p);
}

static void
close_io(struct agt_pipe *p, int k)
{
    if (!p->io_open[k])
        return;
    p->io_open[k] = false;
    uv_close((uv_handle_t *)&p->io[k], on_handle_close);
}

static void
pipe_close(struct agt_pipe *p)
{
    if (p->closing)
        return;
    p->closing = true;
    if (p->prev)
        p->prev->next = p->next;
    else
        *agt_pipes(p->agt) = p->next;
    if (p->next)
        p->next->prev = p->prev;
    for (int k = 0; k < 3; k++)
        close_io(p, k);
    if (p->master >= 0 && !p->master_owned)
        close(p->master); /* else io[1] owns it and closed it */
    p->master = -1;
    if (p->slave >= 0)
        close(p->slave);
    p->slave = -1;
    rpc_close(p->rpc);
    p->rpc = NULL;
    uv_close((uv_handle_t *)&p->timer, on_handle_close);
}

static bool
output_complete(const struct agt_pipe *p)
{
    return p->exited && p->out[0].eof && p->out[1].eof;
}

/* ---- output from the process ---- */

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    buf->base = rbuf;
    buf->len = sizeof(rbuf);
}

static int
stream_index(const struct agt_pipe *p, const uv_stream_t *s)
{
    return s == (const uv_stream_t *)&p->io[1] ? 0 : 1;
}

static void
stream_eof(struct agt_pipe *p, int k)
{
    p->out[k].eof = true;
    /* With a tty, io[1] also carries stdin: keep it open for writes until
     * the exit; then it goes with the rest. */
    if (!p->tty)
        close_io(p, k + 1);
    pipe_check_end(p);
}

static void
on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct agt_pipe *p = s->data;
    int k = stream_index(p, s);

    if (nread < 0) {
        /* A pty master reads EIO once the last slave descriptor is gone. */
        uv_read_stop(s);
        stream_eof(p, k);
        return;
    }
    if (nread == 0)
        return;
    if (p->stop)
        return; /* nobody is attached: discard */
    if (bytewin_append(&p->out[k].w, buf->base, (size_t)nread) < 0) {
        log_error("pipe_oom", "app=%s inst=%s", p->app, p->name);
        return;
    }
    if (p->out[k].w.len >= PIPE_OUT_HIGH) {
        uv_read_stop(s);
        p->paused[k + 1] = true;
    }
    pipe_send(p);
}

static void
start_reading(struct agt_pipe *p, int io)
{
    if (p->io_open[io] && uv_read_start((uv_stream_t *)&p->io[io], on_alloc, on_read) == 0)
        p->paused[io] = false;
}

/* ---- stdin to the process ---- */

static uv_stream_t *
stdin_stream(struct agt_pipe *p)
{
    int k = p->tty ? 1 : 0;

    return p->io_open[k] ? (uv_stream_t *)&p->io[k] : NULL;
}

static void
stdin_maybe_close(struct agt_pipe *p)
{
    if (!p->stdin_eof || p->stdin_queued > 0 || p->stdin_done)
        return;
    p->stdin_done = true;
    if (!p->tty)
        close_io(p, 0); /* the process reads EOF */
}

static void
on_write(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct agt_pipe *p = w->p;

    p->stdin_queued -= w->len;
    if (status < 0 && status != UV_ECANCELED)
        p->stdin_done = true; /* EPIPE: the process closed its stdin */
    free(w);
    if (!p->closing)
        stdin_maybe_close(p);
}

static void
write_stdin(struct agt_pipe *p, const uint8_t *d, size_t n)
{
    uv_stream_t *s = stdin_stream(p);
    struct wreq *w;
    uv_buf_t b;

    if (s == NULL || p->stdin_done || n == 0)
        return;
    if ((w = malloc(sizeof(*w) + n)) == NULL)
        return;
    w->p = p;
    w->len = n;
    memcpy(w->data, d, n);
    b = uv_buf_init(w->data, (unsigned)n);
    if (uv_write(&w->req, s, &b, 1, on_write) < 0) {
        free(w);
        p->stdin_done = true;
        return;
    }
    p->stdin_queued += n;
}

/* ---- the conversation with the controller ---- */

static void
pipe_send(struct agt_pipe *p)
{
    Drover__Message m = DROVER__MESSAGE__INIT;
    Drover__RunPipeReq r = DROVER__RUN_PIPE_REQ__INIT;
    size_t n0, n1;
    bool complete, inflight = rpc_busy(p->rpc);
    int rc;

    if (p->closing || p->done || p->stop)
        return;
    if (inflight && !p->inflight_poll) {
        p->want_send = true; /* after its reply */
        return;
    }
    n0 = bytewin_from(&p->out[0].w, 0, PIPE_CHUNK, &r.stdout_offset, &r.stdout.data);
    n1 = bytewin_from(&p->out[1].w, 0, PIPE_CHUNK, &r.stderr_offset, &r.stderr.data);
    complete = output_complete(p) && n0 == p->out[0].w.len && n1 == p->out[1].w.len;
    r.poll = n0 == 0 && n1 == 0 && !complete;
    if (r.poll && inflight)
        return; /* a poll is already waiting */
    r.node = (char *)agt_cfg(p->agt)->node;
    r.id = p->id;
    r.stdout.len = n0;
    r.stderr.len = n1;
    r.stdin_have = p->stdin_have;
    r.stdin_eof_seen = p->stdin_eof;
    r.interrupts = p->interrupts;
    r.rows = p->rows;
    r.cols = p->cols;
    r.exited = complete;
    r.exit_code = p->code;
    r.exit_signal = p->sig;
    m.body_case = DROVER__MESSAGE__BODY_RUN_PIPE_REQ;
    m.run_pipe_req = &r;
    /* A poll waits at the controller: it may go unanswered longer. */
    rc = rpc_send(p->rpc, &m, r.poll ? 4 * PIPE_RESEND_MS : PIPE_RESEND_MS);
    if (rc < 0) {
        p->want_send = true; /* the tick tries again */
        return;
    }
    p->want_send = false;
    p->inflight_poll = r.poll;
}

static void
apply_stdin(struct agt_pipe *p, const Drover__RunPipeRep *r)
{
    uint64_t end = r->stdin_offset + r->stdin.len;

    if (r->stdin_offset <= p->stdin_have && end > p->stdin_have && !p->stdin_eof) {
        size_t skip = (size_t)(p->stdin_have - r->stdin_offset);
        size_t n = r->stdin.len - skip;

        if (p->stdin_queued >= PIPE_IN_MAX)
            n = 0;
        else if (n > PIPE_IN_MAX - p->stdin_queued)
            n = PIPE_IN_MAX - p->stdin_queued;
        write_stdin(p, r->stdin.data + skip, n);
        p->stdin_have += n;
    }
    if (r->stdin_eof && end == p->stdin_have)
        p->stdin_eof = true;
    stdin_maybe_close(p);
}

static void
apply_control(struct agt_pipe *p, const Drover__RunPipeRep *r)
{
    if (r->interrupts > p->interrupts) {
        /* Ctrl-C from a CLI without a terminal: SIGINT to the group (with
         * a tty the byte goes through the line discipline instead). */
        if (p->pgid > 1 && !p->exited)
            kill(-p->pgid, SIGINT);
        p->interrupts = r->interrupts;
    }
    if (p->tty && r->rows > 0 && r->cols > 0 && r->rows <= 10000 && r->cols <= 10000 &&
        (r->rows != p->rows || r->cols != p->cols)) {
        struct winsize ws = {.ws_row = (unsigned short)r->rows, .ws_col = (unsigned short)r->cols};

        if (p->master >= 0 && !p->exited)
            ioctl(p->master, TIOCSWINSZ, &ws);
        p->rows = (uint16_t)r->rows;
        p->cols = (uint16_t)r->cols;
    }
}

static void
on_reply(struct rpc *rpc, struct rpc_reply *rep, void *arg)
{
    struct agt_pipe *p = arg;
    Drover__Message *m = rep->msg;

    if (p->closing)
        return;
    if (rep->result == RPC_TIMEOUT) {
        pipe_send(p); /* rebuilt and re-sealed */
        return;
    }
    p->heard_at = mono_ms();
    if (rep->result == RPC_UNOPENED) {
        log_warn("bad_message", "sock=pipe err=%s", log_q(wire_strerror(rep->err)));
        p->want_send = true;
        return;
    }
    if (m->body_case == DROVER__MESSAGE__BODY_RUN_PIPE_REP && m->run_pipe_rep != NULL) {
        const Drover__RunPipeRep *r = m->run_pipe_rep;

        /* An acknowledgement past what was sent is junk: ignored. */
        for (int k = 0; k < 2; k++) {
            uint64_t acked = k == 0 ? r->stdout_acked : r->stderr_acked;

            if (acked <= bytewin_end(&p->out[k].w))
                bytewin_ack(&p->out[k].w, acked);
        }
        for (int k = 0; k < 2; k++) {
            if (p->paused[k + 1] && p->out[k].w.len < PIPE_OUT_HIGH / 2)
                start_reading(p, k + 1);
        }
        apply_stdin(p, r);
        apply_control(p, r);
        if (r->stop && !p->stop) {
            log_info("pipe_detached", "app=%s inst=%s", p->app, p->name);
            p->stop = true;
            bytewin_discard(&p->out[0].w);
            bytewin_discard(&p->out[1].w);
            for (int k = 1; k < 3; k++)
                if (p->paused[k])
                    start_reading(p, k);
        }
        p->done = r->done;
    } else if (m->body_case == DROVER__MESSAGE__BODY_ERROR && m->error != NULL) {
        log_warn("pipe_refused", "app=%s inst=%s code=%d err=%s", p->app, p->name,
                 (int)m->error->code, log_q(m->error->message));
        if (m->error->code == DROVER__ERROR_CODE__ERR_NOT_FOUND)
            p->stop = true;
    }
    pipe_check_end(p);
    if (!p->closing)
        pipe_send(p);
}

static void
pipe_check_end(struct agt_pipe *p)
{
    if (p->closing)
        return;
    if (p->done || (p->stop && output_complete(p))) {
        log_info("pipe_closed", "app=%s inst=%s done=%d", p->app, p->name, (int)p->done);
        pipe_close(p);
        return;
    }
    if (output_complete(p))
        pipe_send(p);
}

static void
on_tick(uv_timer_t *t)
{
    struct agt_pipe *p = t->data;
    uint64_t now = mono_ms();

    if (p->exited && !output_complete(p) && now - p->exited_at >= PIPE_EOF_WAIT_MS) {
        /* A descendant that left the group holds the output open. */
        for (int k = 0; k < 2; k++)
            if (!p->out[k].eof)
                stream_eof(p, k);
        if (p->closing)
            return;
    }
    if (p->exited && now - p->exited_at >= PIPE_GIVE_UP_MS &&
        now - p->heard_at >= PIPE_GIVE_UP_MS) {
        log_warn("pipe_abandoned", "app=%s inst=%s", p->app, p->name);
        pipe_close(p);
        return;
    }
    if (!rpc_busy(p->rpc))
        pipe_send(p);
}

/* ---- the interface ---- */

struct agt_pipe *
agt_pipe_new(struct agt *a, const struct agt_spec *spec, int *err)
{
    uv_loop_t *loop = agt_loop(a);
    struct agt_pipe *p = calloc(1, sizeof(*p));
    const struct agt_config *cfg = agt_cfg(a);
    struct rpc_opts o = {0};
    int rc = -ENOMEM;

    if (p == NULL)
        goto fail;
    p->agt = a;
    p->id = spec->id;
    snprintf(p->app, sizeof(p->app), "%s", spec->app);
    snprintf(p->name, sizeof(p->name), "%s", spec->name);
    p->tty = spec->tty;
    p->master = p->slave = -1;
    p->code = -1;
    p->heard_at = mono_ms();
    p->rows = spec->rows ? spec->rows : 24;
    p->cols = spec->cols ? spec->cols : 80;
    o.endpoints = (const char(*)[ENV_ENDPOINT_MAX])cfg->joins;
    o.nendpoints = cfg->njoin;
    o.sender = agt_sender(a);
    o.cap_ms = 30000;
    o.name = "pipe";
    o.redial_ms = 10000; /* silent this long: redial, or the next controller */
    o.cb = on_reply;
    o.arg = p;
    if ((p->rpc = rpc_new(loop, &o, &rc)) == NULL || (rc = rpc_start(p->rpc)) < 0)
        goto fail;
    if (p->tty) {
        struct winsize ws = {.ws_row = p->rows, .ws_col = p->cols};

        if (openpty(&p->master, &p->slave, NULL, NULL, &ws) < 0) {
            rc = -errno;
            goto fail;
        }
        /* Only the spawned process gets the slave (as its stdio). */
        fcntl(p->master, F_SETFD, FD_CLOEXEC);
        fcntl(p->slave, F_SETFD, FD_CLOEXEC);
        p->out[1].eof = true;
    }
    uv_timer_init(loop, &p->timer);
    p->timer.data = p;
    p->nopen = 1;
    {
        struct agt_pipe **pipes = agt_pipes(a);

        p->next = *pipes;
        if (*pipes)
            (*pipes)->prev = p;
        *pipes = p;
    }
    *err = 0;
    return p;
fail:
    if (p != NULL) {
        rpc_close(p->rpc);
        if (p->master >= 0)
            close(p->master);
        if (p->slave >= 0)
            close(p->slave);
        free(p);
    }
    *err = rc;
    return NULL;
}

bool
agt_pipe_tty(const struct agt_pipe *p)
{
    return p->tty;
}

int
agt_pipe_stdio(struct agt_pipe *p, uv_stdio_container_t io[3])
{
    uv_loop_t *loop = agt_loop(p->agt);

    if (p->tty) {
        for (int k = 0; k < 3; k++) {
            io[k].flags = UV_INHERIT_FD;
            io[k].data.fd = p->slave;
        }
        return 0;
    }
    for (int k = 0; k < 3; k++) {
        uv_pipe_init(loop, &p->io[k], 0);
        p->io[k].data = p;
        p->io_open[k] = true;
        p->nopen++;
        io[k].data.stream = (uv_stream_t *)&p->io[k];
    }
    io[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
    io[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    io[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    return 0;
}

void
agt_pipe_spawned(struct agt_pipe *p, int pgid, int err)
{
    uv_loop_t *loop = agt_loop(p->agt);

    if (p->slave >= 0) {
        close(p->slave);
        p->slave = -1;
    }
    if (err < 0) {
        static const char msg[] = "drover: could not start the process\n";

        bytewin_append(&p->out[1].w, msg, sizeof(msg) - 1);
        if (p->tty)
            close(p->master);
        p->master = -1;
        for (int k = 0; k < 3; k++)
            close_io(p, k);
        p->out[0].eof = p->out[1].eof = true;
        p->exited = true;
        p->code = 127;
        p->exited_at = mono_ms();
    } else {
        p->pgid = pgid;
        if (p->tty) {
            if (uv_pipe_init(loop, &p->io[1], 0) == 0) {
                p->io[1].data = p;
                p->io_open[1] = true;
                p->nopen++;
                p->master_owned = true;
                if (uv_pipe_open(&p->io[1], p->master) < 0) {
                    p->master_owned = false;
                    log_error("pty_open_failed", "app=%s inst=%s", p->app, p->name);
                    p->out[0].eof = true;
                }
            }
        }
        start_reading(p, 1);
        if (!p->tty)
            start_reading(p, 2);
    }
    uv_timer_start(&p->timer, on_tick, PIPE_TICK_MS, PIPE_TICK_MS);
    pipe_send(p);
}

void
agt_pipe_exited(struct agt_pipe *p, int64_t code, int sig)
{
    if (p->closing)
        return;
    p->exited = true;
    p->exited_at = mono_ms();
    p->code = sig ? -1 : (int32_t)code;
    p->sig = sig;
    /* With a tty, the group was killed on exit: the slave closes and the
     * master reads EIO; stdin writes stop mattering. */
    pipe_check_end(p);
}

void
agt_pipe_close_all(struct agt *a)
{
    while (*agt_pipes(a) != NULL)
        pipe_close(*agt_pipes(a));
}
