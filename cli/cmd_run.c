/* SPDX-License-Identifier: MIT */
/*
 * cmd_run.c: `drover run APP [--node NODE] [--type TYPE] [--detach] -- CMD
 * [ARG...]`: a one-off process in the app's current release.
 *
 * The controller places run.N and relays its stdio (controller/runs.c);
 * this side is a poll(2) loop over stdin, the controller's socket and a
 * self-pipe for signals. Every request says where each stream stands (the
 * stdin offset it sends from, how much stdout and stderr it has), so
 * nothing is lost or doubled when a request is repeated or cancelled. A
 * request with nothing new waits at the controller for output (a long
 * poll); new input or a signal cancels it by sending a fresh request.
 *
 * Exit status: the process's own, 128+N when a signal N killed it, 1 when
 * it could not be run or was lost. With a terminal on stdin the process
 * gets a pseudo-terminal: the terminal is put in raw mode (restored on
 * every way out), its size is sent at start and on SIGWINCH, and Ctrl-C is
 * a byte for the remote line discipline. Without one, Ctrl-C (SIGINT) is
 * counted and delivered to the process group as SIGINT. SIGTERM or SIGHUP
 * here asks the controller to stop the process (SIGTERM, SIGKILL after its
 * grace period), waits until it has ended (at most its grace period + 2 s),
 * says so ("stopped run.3 (killed by signal 15)") and exits 128+N; if this
 * process dies without a word, the controller stops it after
 * DROVER_RUN_TIMEOUT_MS (its setting, 60 s by default).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "util.h"
#include "wire.h"

#define RUN_COMMAND_MAX 4096
#define RUN_IN_MAX (1u << 20)
#define RUN_CHUNK (256u << 10)
#define RUN_WAIT_MS 5000
#define RUN_TRIES 3
#define RUN_STOP_SLACK_MS 2000 /* past the grace period, for the news of the end */

static int sigfd = -1;
static struct termios saved_tio;
static bool raw_on;

static void
raw_restore(void)
{
    if (raw_on)
        tcsetattr(0, TCSADRAIN, &saved_tio);
    raw_on = false;
}

static int
raw_start(void)
{
    struct termios t;

    if (tcgetattr(0, &saved_tio) < 0)
        return -errno;
    t = saved_tio;
    cfmakeraw(&t);
    if (tcsetattr(0, TCSADRAIN, &t) < 0)
        return -errno;
    raw_on = true;
    atexit(raw_restore);
    return 0;
}

static void
win_size(uint32_t *rows, uint32_t *cols)
{
    struct winsize ws;

    *rows = *cols = 0;
    if (ioctl(0, TIOCGWINSZ, &ws) == 0 || ioctl(1, TIOCGWINSZ, &ws) == 0) {
        *rows = ws.ws_row;
        *cols = ws.ws_col;
    }
}

/* ---- the command line ---- */

int
cli_run_command(char *const *args, int n, char *out, size_t outsz)
{
    size_t len = 0;

    if (n <= 0 || outsz == 0)
        return -EINVAL;
    if (n == 1)
        return strfmt(out, outsz, "%s", args[0]) < 0 ? -E2BIG : 0;
    for (int i = 0; i < n; i++) {
        const char *p = args[i];

        if (i > 0 && len + 1 < outsz)
            out[len++] = ' ';
        if (len + 1 >= outsz)
            return -E2BIG;
        out[len++] = '\'';
        for (; *p; p++) {
            const char *piece = *p == '\'' ? "'\\''" : NULL;
            size_t pl = piece ? 4 : 1;

            if (len + pl + 2 >= outsz)
                return -E2BIG;
            if (piece) {
                memcpy(out + len, piece, pl);
                len += pl;
            } else {
                out[len++] = *p;
            }
        }
        out[len++] = '\'';
    }
    if (len >= outsz)
        return -E2BIG;
    out[len] = '\0';
    return 0;
}

/* ---- the relay ---- */

struct relay {
    struct cli_client *c;
    uint64_t id;
    bool tty;
    uint8_t *in; /* stdin not yet acknowledged, from in_base */
    size_t inlen;
    uint64_t in_base;
    bool in_open, in_eof;
    uint64_t have[2];
    uint32_t interrupts;
    uint32_t rows, cols;
    bool inflight, inflight_poll, dirty;
    uint64_t sent_at;
    int tries;
    bool done;
    int status;
    int stopped_by;   /* the signal that made us stop the process, or 0 */
    bool stop;        /* ask the controller to stop it (RunIoReq.stop) */
    const char *name; /* "run.3" */
};

static int
send_io(struct relay *r, bool hangup)
{
    Drover__Message m = DROVER__MESSAGE__INIT;
    Drover__RunIoReq q = DROVER__RUN_IO_REQ__INIT;
    size_t n = r->inlen < RUN_CHUNK ? r->inlen : RUN_CHUNK;
    int rc;

    q.id = r->id;
    q.stdin_offset = r->in_base;
    q.stdin.data = r->in;
    q.stdin.len = n;
    q.stdin_eof = r->in_eof && n == r->inlen;
    q.stdout_have = r->have[0];
    q.stderr_have = r->have[1];
    q.interrupts = r->interrupts;
    q.rows = r->rows;
    q.cols = r->cols;
    q.wait_ms = RUN_WAIT_MS;
    q.hangup = hangup;
    q.stop = r->stop && !hangup;
    m.body_case = DROVER__MESSAGE__BODY_RUN_IO_REQ;
    m.run_io_req = &q;
    rc = cli_send(r->c, &m);
    if (rc < 0)
        return rc;
    r->inflight = true;
    r->inflight_poll = n == 0;
    r->dirty = false;
    r->sent_at = mono_ms();
    return 0;
}

static int
write_all(int fd, const uint8_t *d, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, d, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};

            poll(&p, 1, 1000);
            continue;
        }
        if (w < 0)
            return -errno;
        d += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Write the part of [off, off+len) past what we have. */
static void
deliver(struct relay *r, int k, uint64_t off, const ProtobufCBinaryData *b)
{
    size_t skip;

    if (off > r->have[k] || off + b->len <= r->have[k])
        return;
    skip = (size_t)(r->have[k] - off);
    /* A closed stdout or stderr here must not stop the process there. */
    write_all(k == 0 ? 1 : 2, b->data + skip, b->len - skip);
    r->have[k] = off + b->len;
}

static void
on_reply(struct relay *r, const Drover__RunIoRep *p)
{
    if (p->stdin_acked > r->in_base && p->stdin_acked <= r->in_base + r->inlen) {
        size_t n = (size_t)(p->stdin_acked - r->in_base);

        memmove(r->in, r->in + n, r->inlen - n);
        r->inlen -= n;
        r->in_base = p->stdin_acked;
    }
    deliver(r, 0, p->stdout_offset, &p->stdout);
    deliver(r, 1, p->stderr_offset, &p->stderr);
    if (!p->exited)
        return;
    r->done = true;
    if (p->exit_signal > 0) {
        r->status = 128 + p->exit_signal;
    } else if (p->exit_code >= 0) {
        r->status = p->exit_code;
    } else {
        raw_restore();
        cli_fail("the process ended without an exit status: %s", cli_str(p->reason));
        r->status = CLI_FAIL;
    }
}

static void
on_signals(struct relay *r)
{
    unsigned char sigs[32];
    ssize_t n = read(sigfd, sigs, sizeof(sigs));

    for (ssize_t i = 0; i < n; i++) {
        switch (sigs[i]) {
        case SIGINT:
            r->interrupts++;
            r->dirty = true;
            break;
        case SIGWINCH:
            win_size(&r->rows, &r->cols);
            r->dirty = true;
            break;
        default: /* SIGTERM, SIGHUP: stop the process (say_goodbye), then go */
            if (!r->done) {
                r->done = true;
                r->stopped_by = sigs[i];
                r->status = 128 + sigs[i];
            }
            break;
        }
    }
}

static void
read_stdin(struct relay *r)
{
    uint8_t *nb;
    ssize_t n;
    size_t room = RUN_IN_MAX - r->inlen;

    if (room > 65536)
        room = 65536;
    nb = realloc(r->in, r->inlen + room);
    if (nb == NULL)
        return;
    r->in = nb;
    n = read(0, r->in + r->inlen, room);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        /* EOF (or an error, taken as one): the process reads EOF too. A
         * terminal in raw mode has no EOF: ^D is a byte like any other. */
        r->in_open = false;
        r->in_eof = true;
    } else {
        r->inlen += (size_t)n;
    }
    r->dirty = true;
}

static int
relay_loop(struct relay *r)
{
    int rcvfd = cli_client_rcvfd(r->c);
    uint64_t limit = RUN_WAIT_MS + cli_client_timeout(r->c);

    if (rcvfd < 0)
        return cli_fail("cannot poll the controller's socket");
    while (!r->done) {
        struct pollfd p[3] = {{.fd = rcvfd, .events = POLLIN},
                              {.fd = sigfd, .events = POLLIN},
                              {.fd = 0, .events = POLLIN}};
        nfds_t np = r->in_open && r->inlen < RUN_IN_MAX ? 3 : 2;
        Drover__Message *rep = NULL;
        int rc;

        /* A poll in flight is replaced when there is something new. */
        if (!r->inflight || (r->inflight_poll && r->dirty)) {
            if (send_io(r, false) < 0)
                r->inflight = false; /* try again shortly */
        }
        if (r->inflight && mono_ms() - r->sent_at > limit) {
            if (++r->tries >= RUN_TRIES) {
                raw_restore();
                return cli_fail("lost the controller at %s", cli_client_endpoint(r->c));
            }
            r->inflight = false;
            continue;
        }
        if (poll(p, np, r->inflight ? 200 : 20) < 0 && errno != EINTR)
            return cli_fail("poll: %s", strerror(errno));
        if (p[1].revents & POLLIN)
            on_signals(r);
        if (r->done)
            break;
        if (np == 3 && (p[2].revents & (POLLIN | POLLHUP | POLLERR)))
            read_stdin(r);
        if (!(p[0].revents & POLLIN))
            continue;
        rc = cli_recv_nowait(r->c, DROVER__MESSAGE__BODY_RUN_IO_REP, &rep);
        if (rc == -EAGAIN)
            continue;
        r->inflight = false;
        if (rc < 0) {
            raw_restore();
            return CLI_FAIL; /* printed */
        }
        r->tries = 0;
        on_reply(r, rep->run_io_rep);
        wire_msg_free(rep);
    }
    return r->status;
}

static const char *
sig_name(int sig)
{
    return sig == SIGTERM ? "got SIGTERM" : sig == SIGHUP ? "got SIGHUP" : "got a signal";
}

/*
 * After SIGTERM or SIGHUP: have the controller stop the process, relay what
 * it still writes, and wait until it has really ended: at most its grace
 * period (SIGKILL comes then) + 2 s. Its end, in how; false when it did not
 * end in time or the controller did not answer.
 */
static bool
stop_and_wait(struct relay *r, char *how, size_t howsz)
{
    struct pollfd p = {.fd = cli_client_rcvfd(r->c), .events = POLLIN};
    uint64_t until = mono_ms() + RUN_STOP_SLACK_MS;
    bool exited = false, grace_known = false;

    r->stop = true;
    r->inflight = false; /* a new request replaces a poll in flight */
    while (p.fd >= 0 && !exited && mono_ms() < until) {
        Drover__Message *rep = NULL;
        const Drover__RunIoRep *q;

        if (!r->inflight && send_io(r, false) < 0)
            return false;
        if (poll(&p, 1, 200) <= 0)
            continue;
        if (cli_recv_nowait(r->c, DROVER__MESSAGE__BODY_RUN_IO_REP, &rep) < 0)
            continue; /* not yet, or refused: the deadline decides */
        r->inflight = false;
        q = rep->run_io_rep;
        deliver(r, 0, q->stdout_offset, &q->stdout);
        deliver(r, 1, q->stderr_offset, &q->stderr);
        if (!grace_known) { /* now we know how long a stop may take */
            grace_known = true;
            until = mono_ms() + q->grace_ms + RUN_STOP_SLACK_MS;
        }
        if (q->exited) {
            exited = true;
            if (q->exit_signal > 0)
                snprintf(how, howsz, "killed by signal %d", (int)q->exit_signal);
            else if (q->exit_code >= 0)
                snprintf(how, howsz, "exit code %d", (int)q->exit_code);
            else
                snprintf(how, howsz, "%s", q->reason[0] ? q->reason : "no exit status");
        }
        wire_msg_free(rep);
    }
    r->stop = false;
    return exited;
}

/*
 * Goodbye: the controller may forget the session now, and stops the process
 * if it still runs. One hangup only: a second would find the session gone
 * and be answered "no attached session". After a signal, what became of the
 * process is said (it is why we exit 128+N); otherwise best effort.
 */
static void
say_goodbye(struct relay *r)
{
    Drover__Message *rep = NULL;
    struct pollfd p = {.fd = cli_client_rcvfd(r->c), .events = POLLIN};
    int wait_ms = r->stopped_by ? 2000 : 500;
    uint64_t until;
    int rc = -EAGAIN;
    char how[96];

    if (r->stopped_by && stop_and_wait(r, how, sizeof(how))) {
        fprintf(stderr, "drover: %s: stopped %s (%s)\n", sig_name(r->stopped_by), r->name, how);
        wait_ms = 500;
        r->stopped_by = 0; /* said: the hangup below only ends the session */
    }
    until = mono_ms() + (uint64_t)wait_ms;
    r->inflight = false;
    if (send_io(r, true) < 0) {
        if (r->stopped_by)
            cli_fail("%s: could not tell the controller to stop %s; it stops it when it "
                     "misses us (DROVER_RUN_TIMEOUT_MS)",
                     sig_name(r->stopped_by), r->name);
        return;
    }
    while (p.fd >= 0 && rc == -EAGAIN && mono_ms() < until) {
        if (poll(&p, 1, (int)(until - mono_ms())) <= 0)
            break;
        rc = cli_recv_nowait(r->c, DROVER__MESSAGE__BODY_RUN_IO_REP, &rep);
    }
    if (r->stopped_by && rc == 0 && rep->run_io_rep->exited)
        fprintf(stderr, "drover: %s: %s had already ended\n", sig_name(r->stopped_by), r->name);
    else if (r->stopped_by && rc == 0)
        fprintf(stderr,
                "drover: %s: asked to stop %s; it had not ended in time (SIGKILL follows its "
                "grace period)\n",
                sig_name(r->stopped_by), r->name);
    else if (r->stopped_by && rc == -EAGAIN)
        cli_fail("%s: no answer from the controller about stopping %s; it stops it when it "
                 "misses us (DROVER_RUN_TIMEOUT_MS)",
                 sig_name(r->stopped_by), r->name);
    if (rep != NULL)
        wire_msg_free(rep);
}

static int
relay(struct cli_client *c, uint64_t id, const char *name, bool tty)
{
    struct relay r = {.c = c, .id = id, .name = name, .tty = tty, .in_open = true};
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGWINCH};
    int status;

    sigfd = cli_signal_pipe(sigs, ARRAY_SIZE(sigs));
    if (sigfd < 0)
        return cli_fail("pipe: %s", strerror(-sigfd));
    if (tty) {
        win_size(&r.rows, &r.cols);
        if (raw_start() < 0)
            return cli_fail("cannot put the terminal in raw mode: %s", strerror(errno));
    }
    status = relay_loop(&r);
    raw_restore();
    if (r.done)
        say_goodbye(&r);
    free(r.in);
    return status;
}

/* ---- the verb ---- */

int
cli_cmd_run(int argc, char **argv)
{
    bool detach = false;
    const char *node = NULL, *type = NULL;
    struct cli_flag flags[] = {
        {"node", 0, true, NULL, &node},
        {"type", 0, true, NULL, &type},
        {"detach", 'd', false, &detach, NULL},
    };
    Drover__Message req = DROVER__MESSAGE__INIT, *rep = NULL;
    Drover__RunReq body = DROVER__RUN_REQ__INIT;
    struct cli_client *c = NULL;
    char err[256], *pos[CLI_RUN_ARGS_MAX], command[RUN_COMMAND_MAX + 1];
    int dash = argc, npos, rc, ncmd;
    uint32_t rows = 0, cols = 0;
    bool tty;

    /* Flags belong to drover only before "--"; after it, to the command. */
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            dash = i;
            break;
        }
    }
    if (cli_args_parse(dash, argv, flags, ARRAY_SIZE(flags), pos, CLI_RUN_ARGS_MAX, &npos, err,
                       sizeof(err)) < 0)
        return cli_usage("run", "%s", err);
    if (npos < 1)
        return cli_usage("run", "missing APP");
    if ((rc = cli_app_arg("run", pos[0])) != CLI_OK)
        return rc;
    if (node != NULL && !name_node_valid(node))
        return cli_usage("run", "invalid node name '%s'", node);
    if (type != NULL && !name_type_valid(type))
        return cli_usage("run", "invalid process type '%s'", type);
    command[0] = '\0';
    if (dash < argc) {
        if (npos > 1)
            return cli_usage("run", "put the command after --");
        ncmd = argc - dash - 1;
        if (ncmd > 0 && cli_run_command(argv + dash + 1, ncmd, command, sizeof(command)) < 0)
            return cli_usage("run", "the command is longer than %d bytes", RUN_COMMAND_MAX);
    } else if (npos > 1 && cli_run_command(pos + 1, npos - 1, command, sizeof(command)) < 0) {
        return cli_usage("run", "the command is longer than %d bytes", RUN_COMMAND_MAX);
    }
    if (command[0] == '\0' && type == NULL)
        return cli_usage("run", "missing CMD");
    tty = !detach && isatty(0);
    if (tty)
        win_size(&rows, &cols);
    if ((rc = cli_connect(&c)) != CLI_OK)
        return rc;
    body.app = pos[0];
    body.command = command;
    body.node = node != NULL ? (char *)node : "";
    body.type = type != NULL ? (char *)type : "";
    body.attach = !detach;
    body.tty = tty;
    body.rows = rows;
    body.cols = cols;
    req.body_case = DROVER__MESSAGE__BODY_RUN_REQ;
    req.run_req = &body;
    rc = cli_call(c, &req, DROVER__MESSAGE__BODY_RUN_REP, &rep);
    if (rc < 0) {
        cli_client_free(c);
        return CLI_FAIL;
    }
    if (detach) {
        printf("%s\n", cli_str(rep->run_rep->name));
        rc = CLI_OK;
    } else {
        if (isatty(2))
            fprintf(stderr, "drover: running %s on %s (v%u)\n", cli_str(rep->run_rep->name),
                    cli_str(rep->run_rep->node), rep->run_rep->release);
        rc = relay(c, rep->run_rep->id, cli_str(rep->run_rep->name), tty);
    }
    wire_msg_free(rep);
    cli_client_free(c);
    return rc;
}
