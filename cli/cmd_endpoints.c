/* SPDX-License-Identifier: MIT */
/*
 * cmd_endpoints.c: `drover endpoints APP [TYPE] [--json] [--watch]` — where
 * an app's up instances listen, for a router or load balancer to follow.
 *
 *   $ drover endpoints shop            $ drover endpoints shop web
 *   web.1 10.0.0.5:5000                10.0.0.5:5000
 *   web.2 10.0.0.6:5000                10.0.0.6:5000
 *   worker.1 10.0.0.5:5001
 *
 * With a TYPE the output is bare host:port lines, the form an nginx or
 * HAProxy template script reads without parsing. --json is one line: {app,
 * version, endpoints: [{id, name, type, host, port, release}]}.
 *
 * --watch prints the list, then follows it with long polls (EndpointsReq with
 * the version of the list we have and wait_ms): the controller answers when
 * the list differs, or after wait_ms with the same version, which is simply
 * asked again. Each new list is printed whole — a follower rewrites its
 * config from one list, never patches it — and ends with an empty line in
 * plain mode (so an empty list is just the empty line), or is one JSON line.
 * stdout is flushed after each list, since a follower reads it through a
 * pipe.
 *
 * It runs until SIGINT or SIGTERM (exit 0) or until the controller is
 * unreachable (exit 1, so that a supervisor restarts the follower). The loop
 * is poll(2) over the socket and a self-pipe for signals, as `drover run`
 * does, so a signal ends it at once and cleanly. Unreachable means a request
 * that does not wait went unanswered for DROVER_TIMEOUT_MS: a long poll with
 * no answer past wait_ms + DROVER_TIMEOUT_MS is not yet proof (a restarted
 * controller forgets the requests it had), so it is followed by one request
 * that does not wait, and only that one's silence ends the watch.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "util.h"
#include "wire.h"

#define WATCH_WAIT_MS 25000
#define RETRY_MS 100

void
cli_endpoints_print(FILE *out, const char *app, const Drover__EndpointsRep *r, bool by_type,
                    bool json)
{
    char hp[300];

    if (json) {
        json_t *doc = jout_endpoints(app, r);

        jout_dump(doc, out, false);
        json_decref(doc);
        return;
    }
    for (size_t i = 0; i < r->n_endpoints; i++) {
        const Drover__Endpoint *e = r->endpoints[i];

        cli_fmt_hostport(e->host, e->port, hp, sizeof(hp));
        if (by_type)
            fprintf(out, "%s\n", hp);
        else
            fprintf(out, "%s %s\n", cli_str(e->name), hp);
    }
}

struct watch {
    struct cli_client *c;
    Drover__EndpointsReq body;
    int rcvfd;
    int sigfd; /* cli_signal_pipe */
    bool stop; /* a signal came */
};

/*
 * Send w->body and wait for its answer, at most wait_ms + DROVER_TIMEOUT_MS.
 * 0 with *rep set; 0 with *rep NULL when a signal came; -ETIMEDOUT (not
 * printed) when no answer came; another negative errno (printed).
 */
static int
exchange(struct watch *w, Drover__Message **rep)
{
    Drover__Message req = DROVER__MESSAGE__INIT;
    uint64_t deadline = cli_mono_ms() + w->body.wait_ms + cli_client_timeout(w->c);
    bool sent = false;

    *rep = NULL;
    req.body_case = DROVER__MESSAGE__BODY_ENDPOINTS_REQ;
    req.endpoints_req = &w->body;
    for (;;) {
        struct pollfd p[2] = {{.fd = w->sigfd, .events = POLLIN},
                              {.fd = w->rcvfd, .events = POLLIN}};
        uint64_t now = cli_mono_ms();
        int rc;

        if (now >= deadline)
            return -ETIMEDOUT;
        if (!sent) {
            rc = cli_send(w->c, &req);
            if (rc < 0 && rc != -EAGAIN)
                return cli_fail("cannot send to the controller at %s: %s",
                                cli_client_endpoint(w->c), strerror(-rc)),
                       rc;
            sent = rc == 0;
        }
        now = deadline - now;
        if (poll(p, sent ? 2 : 1, sent && now < INT32_MAX ? (int)now : RETRY_MS) < 0 &&
            errno != EINTR) {
            rc = -errno;
            return cli_fail("poll: %s", strerror(-rc)), rc;
        }
        if (p[0].revents & POLLIN) {
            w->stop = true;
            return 0;
        }
        if (!sent || !(p[1].revents & POLLIN))
            continue;
        rc = cli_recv_nowait(w->c, DROVER__MESSAGE__BODY_ENDPOINTS_REP, rep);
        if (rc != -EAGAIN)
            return rc;
    }
}

/* Print a list and flush it to the reader. 0, or -EPIPE when it went away. */
static int
emit(const char *app, const Drover__EndpointsRep *r, bool by_type, bool json, bool watch)
{
    cli_endpoints_print(stdout, app, r, by_type, json);
    if (watch && !json)
        putchar('\n');
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_fail("cannot write the endpoints: %s", strerror(errno));
        return -EPIPE;
    }
    return 0;
}

static int
watch_loop(struct watch *w, const char *app, bool by_type, bool json)
{
    bool have = false;

    for (;;) {
        Drover__Message *rep = NULL;
        const Drover__EndpointsRep *r;
        int rc = exchange(w, &rep);

        if (w->stop)
            return CLI_OK;
        if (rc == -ETIMEDOUT && w->body.wait_ms > 0) {
            w->body.wait_ms = 0; /* the controller may have restarted: ask plainly */
            continue;
        }
        if (rc == -ETIMEDOUT) {
            char t[32];

            cli_fmt_ms(cli_client_timeout(w->c), t);
            return cli_fail("lost the controller at %s: no answer for %s",
                            cli_client_endpoint(w->c), t);
        }
        if (rc < 0)
            return CLI_FAIL; /* printed */
        r = rep->endpoints_rep;
        if (!have || r->version != w->body.version)
            rc = emit(app, r, by_type, json, true);
        have = true;
        w->body.version = r->version;
        w->body.wait_ms = WATCH_WAIT_MS;
        wire_msg_free(rep);
        if (rc < 0)
            return CLI_FAIL;
    }
}

static int
watch(struct cli_client *c, const char *app, const char *type, bool json)
{
    struct watch w = {.c = c, .body = DROVER__ENDPOINTS_REQ__INIT};
    static const int sigs[] = {SIGINT, SIGTERM};

    w.body.app = (char *)app;
    w.body.type = type != NULL ? (char *)type : "";
    w.rcvfd = cli_client_rcvfd(c);
    if (w.rcvfd < 0)
        return cli_fail("cannot poll the controller's socket");
    w.sigfd = cli_signal_pipe(sigs, ARRAY_SIZE(sigs));
    if (w.sigfd < 0)
        return cli_fail("pipe: %s", strerror(-w.sigfd));
    return watch_loop(&w, app, type != NULL, json);
}

int
cli_cmd_endpoints(int argc, char **argv)
{
    bool json = false, follow = false;
    struct cli_flag flags[] = {
        {"json", 0, false, &json, NULL},
        {"watch", 'w', false, &follow, NULL},
    };
    Drover__Message req = DROVER__MESSAGE__INIT, *rep = NULL;
    Drover__EndpointsReq body = DROVER__ENDPOINTS_REQ__INIT;
    struct cli_client *c = NULL;
    const char *type;
    char err[256], *pos[2];
    int npos, rc;

    if (cli_args_parse(argc, argv, flags, ARRAY_SIZE(flags), pos, 2, &npos, err, sizeof(err)) < 0)
        return cli_usage("endpoints", "%s", err);
    if (npos < 1)
        return cli_usage("endpoints", "missing APP");
    if ((rc = cli_app_arg("endpoints", pos[0])) != CLI_OK)
        return rc;
    type = npos > 1 ? pos[1] : NULL;
    if (type != NULL && !name_type_valid(type))
        return cli_usage("endpoints", "'%.40s' is not a process type (like web or worker)", type);
    if ((rc = cli_connect(&c)) != CLI_OK)
        return rc;
    if (follow) {
        rc = watch(c, pos[0], type, json);
        cli_client_free(c);
        return rc;
    }
    body.app = pos[0];
    body.type = type != NULL ? (char *)type : "";
    req.body_case = DROVER__MESSAGE__BODY_ENDPOINTS_REQ;
    req.endpoints_req = &body;
    rc = cli_call(c, &req, DROVER__MESSAGE__BODY_ENDPOINTS_REP, &rep) == 0 ? CLI_OK : CLI_FAIL;
    if (rc == CLI_OK && emit(pos[0], rep->endpoints_rep, type != NULL, json, false) < 0)
        rc = CLI_FAIL;
    if (rep != NULL)
        wire_msg_free(rep);
    cli_client_free(c);
    return rc;
}
