/* SPDX-License-Identifier: MIT */
/*
 * runs.c: one-off instances (`drover run`) and, for attached ones, the relay
 * of their stdin, stdout and stderr between the CLI and the agent.
 *
 * A one-off is an instance of type "run" (run.N) in the app's current
 * release, placed like any other (or on the node asked for), in its node's
 * assignment set until it ends; it is never restarted or replaced, and a
 * reconcile leaves it alone. The agent reports it STOPPED when its process
 * has exited (agents.c then deletes it).
 *
 * The relay. The controller is the only address both sides know, so it is
 * the rendezvous, and it never opens a connection: the CLI talks on the API
 * endpoint (RunIoReq) and the agent on the agent endpoint (RunPipeReq),
 * both as long polls on the raw REP sockets. A session (struct ctl_run)
 * holds what is in transit: stdin the agent has not taken yet, output the
 * CLI has not taken yet, each as a window of a byte stream named by its
 * offset. A request carries offsets ("I have stdout up to N"), so a lost,
 * repeated or cancelled request changes nothing; a request with nothing to
 * deliver is held until there is something for it (or a deadline), and a
 * newer request from the same side replaces the held one. Buffers are
 * bounded (RUN_BUF_MAX per direction): what does not fit is simply not
 * acknowledged, which stops the sender, so a slow terminal slows the
 * process instead of growing memory. stdin is never logged or stored.
 *
 * A session ends when the CLI has the exit status (it says goodbye, or
 * RUN_LINGER_MS later), or when the CLI is silent for DROVER_RUN_TIMEOUT_MS
 * (it asks at least every 10 s while it can; a CLI stuck writing to a paused
 * terminal is silent too, hence the generous default): then
 * the instance is stopped like any other (SIGTERM to its group, SIGKILL
 * after the grace period). Sessions live in memory: after a controller
 * restart, attached one-offs are stopped (ctl_runs_orphans).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytewin.h"
#include "ctl.h"
#include "log.h"

#define RUN_COMMAND_MAX 4096
#define RUN_BUF_MAX (1u << 20)
#define RUN_CHUNK (256u << 10)
#define RUN_TICK_MS 100
#define RUN_CLI_WAIT_MAX_MS 10000
#define RUN_AGENT_HOLD_MS 2000
#define RUN_LINGER_MS 30000
#define RUN_LOST_MS 5000

struct ctl_run {
    LIST_ENTRY(ctl_run) link;
    uint64_t id;
    char app[APP_NAME_MAX + 2];
    char name[48];
    char node[NODE_NAME_MAX + 2];
    bool tty;
    struct bytewin in;     /* stdin: from the CLI, for the agent */
    struct bytewin out[2]; /* stdout, stderr: from the agent, for the CLI */
    bool in_eof;
    uint32_t interrupts;
    uint16_t rows, cols;
    bool exited;
    int32_t code, sig;
    char reason[CTL_REASON_MAX];
    struct ctl_call *cli_held; /* pending RunIoReq */
    uint64_t cli_deadline, cli_have[2];
    struct ctl_call *agent_held; /* pending RunPipeReq */
    uint64_t agent_deadline;
    uint64_t agent_stdin_have;
    bool agent_eof_seen;
    uint32_t agent_interrupts;
    uint16_t agent_rows, agent_cols;
    uint64_t cli_seen, exit_told, gone_since;
    bool stop; /* the CLI is gone: tell the agent */
};

struct ctl_runs {
    struct ctl *ctl;
    LIST_HEAD(, ctl_run) runs;
    uv_timer_t tick;
    bool tick_init;
};

struct ctl_runs *
ctl_runs_new(struct ctl *ctl)
{
    struct ctl_runs *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return NULL;
    r->ctl = ctl;
    LIST_INIT(&r->runs);
    return r;
}

/* A held call that will get nothing more: its peer dropped it (a newer
 * request replaced it), or the session or the controller is ending. */
static void
drop_held(struct ctl_call **held, const char *why)
{
    struct ctl_call *c = *held;

    *held = NULL;
    if (c != NULL)
        ctl_call_end_error(c, DROVER__ERROR_CODE__ERR_UNAVAILABLE, "%s", why);
}

static void
run_free(struct ctl_run *s)
{
    LIST_REMOVE(s, link);
    drop_held(&s->cli_held, "the session ended");
    drop_held(&s->agent_held, "the session ended");
    bytewin_fini(&s->in);
    bytewin_fini(&s->out[0]);
    bytewin_fini(&s->out[1]);
    free(s);
}

void
ctl_runs_free(struct ctl_runs *r)
{
    if (r == NULL)
        return;
    while (!LIST_EMPTY(&r->runs))
        run_free(LIST_FIRST(&r->runs));
    free(r);
}

static struct ctl_run *
run_find(struct ctl_runs *r, uint64_t id)
{
    struct ctl_run *s;

    LIST_FOREACH (s, &r->runs, link) {
        if (s->id == id)
            return s;
    }
    return NULL;
}

/* ---- replies ---- */

static const char *
inst_state(struct ctl_runs *r, const struct ctl_run *s)
{
    const struct ctl_instance *in = ctl_inst_find(r->ctl->model, s->id);

    if (in == NULL)
        return s->exited ? "exited" : "gone";
    return ctl_inst_state_name(in);
}

/* What its agent was told: the grace of its type, or the default. */
static uint32_t
run_grace_ms(struct ctl_runs *r, const struct ctl_run *s)
{
    const struct ctl_instance *in = ctl_inst_find(r->ctl->model, s->id);
    const struct ctl_formation *f =
        in != NULL && in->ptype[0] ? ctl_formation_find(in->app, in->ptype) : NULL;

    return f != NULL ? f->grace_ms : CTL_DEFAULT_GRACE_MS;
}

static void
cli_reply(struct ctl_runs *r, struct ctl_run *s, struct ctl_call *c, const uint64_t have[2])
{
    Drover__Message m = DROVER__MESSAGE__INIT;
    Drover__RunIoRep rep = DROVER__RUN_IO_REP__INIT;
    size_t n0, n1;

    rep.stdin_acked = bytewin_end(&s->in);
    n0 = bytewin_from(&s->out[0], have[0], RUN_CHUNK, &rep.stdout_offset, &rep.stdout.data);
    n1 = bytewin_from(&s->out[1], have[1], RUN_CHUNK, &rep.stderr_offset, &rep.stderr.data);
    rep.stdout.len = n0;
    rep.stderr.len = n1;
    rep.state = (char *)inst_state(r, s);
    rep.grace_ms = run_grace_ms(r, s);
    /* The exit goes only with the last byte of output. */
    if (s->exited && rep.stdout_offset + n0 == bytewin_end(&s->out[0]) &&
        rep.stderr_offset + n1 == bytewin_end(&s->out[1])) {
        rep.exited = true;
        rep.exit_code = s->code;
        rep.exit_signal = s->sig;
        rep.reason = s->reason;
        if (s->exit_told == 0)
            s->exit_told = mono_ms();
    }
    m.body_case = DROVER__MESSAGE__BODY_RUN_IO_REP;
    m.run_io_rep = &rep;
    ctl_call_end(c, &m);
}

static void
agent_reply(struct ctl_run *s, struct ctl_call *c)
{
    Drover__Message m = DROVER__MESSAGE__INIT;
    Drover__RunPipeRep rep = DROVER__RUN_PIPE_REP__INIT;

    rep.stdout_acked = bytewin_end(&s->out[0]);
    rep.stderr_acked = bytewin_end(&s->out[1]);
    rep.stdin.len =
        bytewin_from(&s->in, s->agent_stdin_have, RUN_CHUNK, &rep.stdin_offset, &rep.stdin.data);
    /* The end is only the end with the last byte. */
    rep.stdin_eof = s->in_eof && rep.stdin_offset + rep.stdin.len == bytewin_end(&s->in);
    rep.interrupts = s->interrupts;
    rep.rows = s->rows;
    rep.cols = s->cols;
    rep.stop = s->stop;
    rep.done = s->exited;
    m.body_case = DROVER__MESSAGE__BODY_RUN_PIPE_REP;
    m.run_pipe_rep = &rep;
    ctl_call_end(c, &m);
}

static void
wake_cli(struct ctl_runs *r, struct ctl_run *s)
{
    struct ctl_call *c = s->cli_held;

    if (c == NULL)
        return;
    s->cli_held = NULL;
    cli_reply(r, s, c, s->cli_have);
}

static void
wake_agent(struct ctl_run *s)
{
    struct ctl_call *c = s->agent_held;

    if (c == NULL)
        return;
    s->agent_held = NULL;
    agent_reply(s, c);
}

/* Something for the agent beyond what its last request said it has? */
static bool
agent_pending(const struct ctl_run *s)
{
    return bytewin_end(&s->in) > s->agent_stdin_have || (s->in_eof && !s->agent_eof_seen) ||
           s->interrupts != s->agent_interrupts ||
           (s->tty && s->rows != 0 && (s->rows != s->agent_rows || s->cols != s->agent_cols)) ||
           s->stop || s->exited;
}

/* ---- ending ---- */

static void
record_exit(struct ctl_runs *r, struct ctl_run *s, int32_t code, int32_t sig, const char *reason)
{
    if (s->exited)
        return;
    s->exited = true;
    s->code = code;
    s->sig = sig;
    snprintf(s->reason, sizeof(s->reason), "%s", reason);
    log_info("run_exited", "app=%s inst=%s id=%llu code=%d signal=%d", s->app, s->name,
             (unsigned long long)s->id, code, sig);
    wake_cli(r, s);
}

/* The CLI got SIGTERM or SIGHUP: stop the instance, keep the session so
 * that its exit still reaches the CLI, which waits for it. */
static void
stop_asked(struct ctl_runs *r, struct ctl_run *s)
{
    struct ctl_instance *in = ctl_inst_find(r->ctl->model, s->id);
    char label[TYPE_NAME_MAX + NODE_NAME_MAX + 32];

    if (s->exited || in == NULL || in->stopping)
        return;
    log_info("run_stop", "app=%s inst=%s id=%llu", s->app, s->name, (unsigned long long)s->id);
    ctl_inst_label(in, label, sizeof(label));
    ctl_model_event(r->ctl->model, s->app, "%s stopped: its CLI got a signal", label);
    ctl_inst_stop(r->ctl->model, in); /* committed by the request's commit */
}

/* Nobody is attached any more: stop the instance and tell the agent; the
 * caller frees the session and commits (the request's commit, or the
 * tick's). True when it stopped the instance. */
static bool
hang_up(struct ctl_runs *r, struct ctl_run *s, const char *why)
{
    struct ctl_instance *in = ctl_inst_find(r->ctl->model, s->id);
    char label[TYPE_NAME_MAX + NODE_NAME_MAX + 32];
    bool stopped = false;

    if (!s->exited && in != NULL && !in->stopping) {
        log_info("run_hangup", "app=%s inst=%s id=%llu why=%s", s->app, s->name,
                 (unsigned long long)s->id, log_q(why));
        ctl_inst_label(in, label, sizeof(label));
        ctl_model_event(r->ctl->model, s->app, "%s stopped: %s", label, why);
        ctl_inst_stop(r->ctl->model, in);
        stopped = true;
    }
    s->stop = true;
    wake_agent(s);
    return stopped;
}

/* ---- RunReq: make a one-off (oneoffs.c places it) ---- */

static const char *
run_invalid(const Drover__RunReq *q)
{
    if (q->command == NULL || strnlen(q->command, RUN_COMMAND_MAX + 1) > RUN_COMMAND_MAX)
        return "command longer than 4096 bytes";
    if (q->node == NULL || (q->node[0] != '\0' && !name_node_valid(q->node)))
        return "invalid node name";
    if (q->type == NULL || (q->type[0] != '\0' && !name_type_valid(q->type)))
        return "invalid process type";
    if (q->type[0] == '\0' && q->command[0] == '\0')
        return "give a command (or --type TYPE to run the type's command)";
    if (q->rows > 10000 || q->cols > 10000)
        return "window size out of range";
    return NULL;
}

static Drover__ErrorCode
start_code(int rc)
{
    return rc == -ENOENT   ? DROVER__ERROR_CODE__ERR_NOT_FOUND
           : rc == -ENOMEM ? DROVER__ERROR_CODE__ERR_INTERNAL
                           : DROVER__ERROR_CODE__ERR_UNAVAILABLE;
}

/* An attached one-off's session: its stdio goes through the controller. */
static int
session_new(struct ctl_runs *r, const struct ctl_instance *in)
{
    struct ctl_run *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return -ENOMEM;
    s->id = in->id;
    snprintf(s->app, sizeof(s->app), "%s", in->app->name);
    ctl_inst_name(in, s->name, sizeof(s->name));
    snprintf(s->node, sizeof(s->node), "%s", in->node->name);
    s->tty = in->tty;
    s->rows = in->rows;
    s->cols = in->cols;
    s->cli_seen = mono_ms();
    LIST_INSERT_HEAD(&r->runs, s, link);
    return 0;
}

int
ctl_h_run(struct ctl_call *c)
{
    const Drover__RunReq *q = c->req->run_req;
    struct ctl_model *m = c->ctl->model;
    Drover__RunRep *rep = ctl_arena_alloc(c->ar, sizeof(*rep));
    struct ctl_oneoff_spec spec;
    struct ctl_instance *in;
    struct ctl_app *a;
    const char *why;
    char err[160];
    int rc;

    if ((a = ctl_call_app(c, q->app)) == NULL)
        return -1;
    if ((why = run_invalid(q)) != NULL)
        return ctl_fail(c, DROVER__ERROR_CODE__ERR_BAD_REQUEST, "%s", why);
    if (rep == NULL)
        return ctl_oom(c);
    spec = (struct ctl_oneoff_spec){
        q->command,          q->type,           q->node,          q->attach,
        q->attach && q->tty, (uint16_t)q->rows, (uint16_t)q->cols};
    if ((rc = ctl_oneoff_start(m, a, &spec, now_ms(), &in, err, sizeof(err))) < 0)
        return ctl_fail(c, start_code(rc), "%s", err);
    if (q->attach && session_new(c->ctl->runs, in) < 0) {
        ctl_inst_delete(m, in);
        return ctl_oom(c);
    }
    drover__run_rep__init(rep);
    rep->id = in->id;
    rep->name = ctl_arena_inst_name(c->ar, in->type, in->idx);
    rep->node = in->node->name;
    rep->release = in->release;
    c->rep.body_case = DROVER__MESSAGE__BODY_RUN_REP;
    c->rep.run_rep = rep;
    return rep->name != NULL ? 0 : ctl_oom(c);
}

/* ---- RunIoReq: the CLI's side ---- */

/* Take what the CLI sent (stdin, interrupts, window size); true when
 * some of its stdin was taken. */
static bool
cli_input(struct ctl_run *s, const Drover__RunIoReq *q)
{
    bool changed = false, took = false;

    if (q->stdin.len > 0 || (q->stdin_eof && !s->in_eof)) {
        uint64_t before = bytewin_end(&s->in);

        bytewin_take(&s->in, q->stdin_offset, q->stdin.data, q->stdin.len);
        if (q->stdin_eof && !s->in_eof && q->stdin_offset + q->stdin.len == bytewin_end(&s->in)) {
            s->in_eof = true;
            took = true;
        }
        took = took || bytewin_end(&s->in) != before;
        changed = took;
    }
    if (q->interrupts > s->interrupts) {
        s->interrupts = q->interrupts;
        changed = true;
    }
    if (q->rows > 0 && q->cols > 0 && q->rows <= 10000 && q->cols <= 10000 &&
        (q->rows != s->rows || q->cols != s->cols)) {
        s->rows = (uint16_t)q->rows;
        s->cols = (uint16_t)q->cols;
        changed = true;
    }
    if (changed)
        wake_agent(s);
    return took;
}

/* RunIoReq: answered now, or pending until there is output (long poll). */
int
ctl_h_run_io(struct ctl_call *c)
{
    struct ctl_runs *r = c->ctl->runs;
    const Drover__RunIoReq *q = c->req->run_io_req;
    struct ctl_run *s = run_find(r, q->id);
    const uint64_t have[2] = {q->stdout_have, q->stderr_have};
    bool took;

    if (s == NULL)
        return ctl_fail(c, DROVER__ERROR_CODE__ERR_NOT_FOUND,
                        "no attached session for instance %llu (it ended, or the controller "
                        "restarted)",
                        (unsigned long long)q->id);
    s->cli_seen = mono_ms();
    if (q->hangup) {
        hang_up(r, s, "the CLI went away");
        cli_reply(r, s, c, have); /* its commit has the stop */
        run_free(s);
        return CTL_PENDING;
    }
    if (q->stop)
        stop_asked(r, s);
    took = cli_input(s, q);
    bytewin_ack(&s->out[0], q->stdout_have);
    bytewin_ack(&s->out[1], q->stderr_have);
    drop_held(&s->cli_held, "replaced by a newer request"); /* the CLI dropped it already */
    /* Input that did not fit waits with the request: a reply now would
     * only have the CLI send it again at once. */
    if (q->wait_ms == 0 || took || s->exited || bytewin_end(&s->out[0]) > q->stdout_have ||
        bytewin_end(&s->out[1]) > q->stderr_have) {
        cli_reply(r, s, c, have);
        return CTL_PENDING; /* ended by cli_reply */
    }
    s->cli_held = c;
    s->cli_have[0] = q->stdout_have;
    s->cli_have[1] = q->stderr_have;
    s->cli_deadline =
        mono_ms() + (q->wait_ms < RUN_CLI_WAIT_MAX_MS ? q->wait_ms : RUN_CLI_WAIT_MAX_MS);
    return CTL_PENDING;
}

/* ---- RunPipeReq: the agent's side ---- */

/* Nobody attached (any more): the agent discards the output. */
static int
pipe_orphan(struct ctl_call *c, const Drover__RunPipeReq *q)
{
    Drover__RunPipeRep *rep = ctl_arena_alloc(c->ar, sizeof(*rep));

    if (rep == NULL)
        return ctl_oom(c);
    drover__run_pipe_rep__init(rep);
    rep->stop = true;
    rep->done = q->exited;
    rep->stdout_acked = q->stdout_offset + q->stdout.len;
    rep->stderr_acked = q->stderr_offset + q->stderr.len;
    c->rep.body_case = DROVER__MESSAGE__BODY_RUN_PIPE_REP;
    c->rep.run_pipe_rep = rep;
    return 0;
}

/* Take what the agent sent: the stdin it has, its output, its exit. */
static void
agent_input(struct ctl_runs *r, struct ctl_run *s, const Drover__RunPipeReq *q)
{
    uint64_t e0 = bytewin_end(&s->out[0]), e1 = bytewin_end(&s->out[1]);
    char how[64];

    if (q->stdin_have > s->agent_stdin_have && bytewin_end(&s->in) > s->in.base) {
        /* Room for more input: let a CLI waiting to send it know. */
        s->agent_stdin_have = q->stdin_have;
        bytewin_ack(&s->in, q->stdin_have);
        wake_cli(r, s);
    }
    s->agent_stdin_have = q->stdin_have;
    s->agent_eof_seen = q->stdin_eof_seen;
    s->agent_interrupts = q->interrupts;
    s->agent_rows = (uint16_t)(q->rows <= 10000 ? q->rows : 0);
    s->agent_cols = (uint16_t)(q->cols <= 10000 ? q->cols : 0);
    bytewin_ack(&s->in, q->stdin_have);
    bytewin_take(&s->out[0], q->stdout_offset, q->stdout.data, q->stdout.len);
    bytewin_take(&s->out[1], q->stderr_offset, q->stderr.data, q->stderr.len);
    if (bytewin_end(&s->out[0]) != e0 || bytewin_end(&s->out[1]) != e1)
        wake_cli(r, s);
    if (q->exited && bytewin_end(&s->out[0]) == q->stdout_offset + q->stdout.len &&
        bytewin_end(&s->out[1]) == q->stderr_offset + q->stderr.len) {
        if (q->exit_signal > 0)
            snprintf(how, sizeof(how), "killed by signal %d", (int)q->exit_signal);
        else
            snprintf(how, sizeof(how), "exit code %d", (int)q->exit_code);
        record_exit(r, s, q->exit_code, q->exit_signal, how);
    }
}

/* RunPipeReq: answered now, or pending until there is something for the
 * agent (long poll). */
int
ctl_h_run_pipe(struct ctl_call *c)
{
    struct ctl_runs *r = c->ctl->runs;
    const Drover__RunPipeReq *q = c->req->run_pipe_req;
    struct ctl_run *s = run_find(r, q->id);

    if (s == NULL || q->node == NULL || strcmp(q->node, s->node) != 0)
        return pipe_orphan(c, q);
    agent_input(r, s, q);
    drop_held(&s->agent_held, "replaced by a newer request");
    if (!q->poll || agent_pending(s)) {
        agent_reply(s, c);
        return CTL_PENDING; /* ended by agent_reply */
    }
    s->agent_held = c;
    s->agent_deadline = mono_ms() + RUN_AGENT_HOLD_MS;
    return CTL_PENDING;
}

/* ---- time ---- */

/* True when it stopped the instance. */
static bool
check_instance(struct ctl_runs *r, struct ctl_run *s, uint64_t now)
{
    struct ctl_instance *in = ctl_inst_find(r->ctl->model, s->id);
    const char *why = NULL;

    if (s->exited)
        return false;
    if (in == NULL)
        why = "it ended without reporting its exit";
    else if (in->state == DROVER__INSTANCE_STATE__ST_LOST)
        why = "lost: its node went down";
    else if (in->state == DROVER__INSTANCE_STATE__ST_FAILED)
        why = in->reason[0] ? in->reason : "its release could not be prepared";
    if (why == NULL) {
        s->gone_since = 0;
        return false;
    }
    if (s->gone_since == 0)
        s->gone_since = now;
    /* The exit may still be on its way through the pipe. */
    if (now - s->gone_since < RUN_LOST_MS)
        return false;
    record_exit(r, s, -1, 0, why);
    if (in == NULL || in->stopping)
        return false;
    ctl_inst_stop(r->ctl->model, in); /* committed by the tick */
    return true;
}

static void
on_tick(uv_timer_t *t)
{
    struct ctl_runs *r = t->data;
    struct ctl_run *s, *next;
    uint64_t now = mono_ms();
    bool stopped = false;

    for (s = LIST_FIRST(&r->runs); s != NULL; s = next) {
        next = LIST_NEXT(s, link);
        if (s->cli_held != NULL && now >= s->cli_deadline)
            wake_cli(r, s);
        if (s->agent_held != NULL && now >= s->agent_deadline)
            wake_agent(s);
        stopped |= check_instance(r, s, now);
        if (s->exit_told != 0 && now - s->exit_told >= RUN_LINGER_MS)
            run_free(s);
        else if (now - s->cli_seen >= r->ctl->cfg.run_timeout_ms) {
            stopped |= hang_up(r, s, "the CLI went away");
            run_free(s);
        }
    }
    if (stopped)
        ctl_commit(r->ctl);
}

/* Attached one-offs from before a restart (or a previous leader) have lost
 * their terminal: stop them. Once the model is loaded (ctl_take_lead). */
void
ctl_runs_orphans(struct ctl_runs *r)
{
    struct ctl_model *m = r->ctl->model;
    struct ctl_instance *in;
    size_t pos = 0;

    while ((in = ctl_map_next(m->insts, &pos)) != NULL) {
        if (in->oneoff && in->attach && !in->stopping) {
            char name[48];

            ctl_inst_name(in, name, sizeof(name));
            log_info("run_orphaned", "app=%s inst=%s id=%llu", in->app->name, name,
                     (unsigned long long)in->id);
            ctl_inst_touch(m, in); /* before any write (undo.c) */
            in->stopping = true;   /* as ctl_inst_stop, which cannot run mid-iteration */
            if (in->node != NULL) {
                in->node->nlive--;
                ctl_node_changed(m, in->node);
            }
            ctl_model_capacity_changed(m);
        }
    }
}

int
ctl_runs_start(struct ctl_runs *r, uv_loop_t *loop)
{
    uv_timer_init(loop, &r->tick);
    r->tick_init = true;
    r->tick.data = r;
    return uv_timer_start(&r->tick, on_tick, RUN_TICK_MS, RUN_TICK_MS);
}

/* Shutting down: held requests are answered ERR_UNAVAILABLE (the peers
 * retry, with this controller or another). */
void
ctl_runs_stop(struct ctl_runs *r)
{
    struct ctl_run *s;

    if (r->tick_init)
        uv_timer_stop(&r->tick);
    LIST_FOREACH (s, &r->runs, link) {
        drop_held(&s->cli_held, "the controller is stopping");
        drop_held(&s->agent_held, "the controller is stopping");
    }
}

void
ctl_runs_close(struct ctl_runs *r)
{
    if (r->tick_init)
        uv_close((uv_handle_t *)&r->tick, NULL);
    r->tick_init = false;
}
