/* SPDX-License-Identifier: MIT */
/*
 * cmd_ps.c: `drover ps APP` — an app's processes.
 *
 * Human output is grouped by type like `heroku ps`:
 *
 *   === web (2): python3 web.py
 *   web.1: up 2026-11-24T10:00:00Z (~ 5s ago)  node1  127.0.0.1:5001  v3  restarts=0  pid=1234
 *
 * --json writes every instance with the same keys always (null where a value
 * does not apply), since scripts and the integration tests read it.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "json_out.h"
#include "util.h"
#include "wire.h"

/* The tail of a line: last exit status and reason, when there is one. */
static void
ps_notes(const Drover__InstanceInfo *in, char *out, size_t outsz)
{
    const char *st = cli_str(in->state);
    bool exited = strcmp(st, "crashed") == 0 || strcmp(st, "failed") == 0 ||
                  strcmp(st, "starting") == 0 || in->restarts > 0;
    size_t used = 0;

    out[0] = '\0';
    if (exited && in->exit_signal > 0)
        used = (size_t)snprintf(out, outsz, "last exit: signal %d", in->exit_signal);
    else if (exited && in->exit_code >= 0)
        used = (size_t)snprintf(out, outsz, "last exit: code %d", in->exit_code);
    if (used < outsz) {
        char why[256];

        cli_ps_reason(st, cli_str(in->reason), why, sizeof(why));
        if (why[0] != '\0')
            snprintf(out + used, outsz - used, "%s%s", used > 0 ? ", " : "", why);
    }
}

void
cli_ps_reason(const char *state, const char *reason, char *out, size_t outsz)
{
    const char *sched = strstr(reason, "restart ");
    size_t keep = strlen(reason);

    /* "restart 2 in 0.8 s" is the plan of an instance waiting to restart: once
     * it has restarted (starting, up) it is history and reads as a promise. */
    if (strcmp(state, "crashed") != 0 && sched != NULL &&
        (sched == reason || (sched >= reason + 2 && memcmp(sched - 2, "; ", 2) == 0))) {
        keep = (size_t)(sched - reason);
        if (keep >= 2)
            keep -= 2;
    }
    snprintf(out, outsz, "%.*s", (int)keep, reason);
}

void
cli_ps_heading(const char *type, int32_t wanted, size_t running, size_t listed, bool deploying,
               const char *command, char *out, size_t outsz)
{
    if (wanted < 0) /* not in the formation: one-offs, a type being removed */
        snprintf(out, outsz, "=== %s (%zu): %s", type, listed, command);
    else if ((size_t)wanted == running && running == listed && !deploying)
        snprintf(out, outsz, "=== %s (%d): %s", type, (int)wanted, command);
    else
        snprintf(out, outsz, "=== %s (%d wanted, %zu running%s): %s", type, (int)wanted, running,
                 deploying ? ": deploy in progress" : "", command);
}

static bool
running(const Drover__InstanceInfo *in)
{
    const char *st = cli_str(in->state);

    return strcmp(st, "up") == 0 || strcmp(st, "starting") == 0 || strcmp(st, "draining") == 0;
}

/* What the heading needs besides the instances: the formation, a deploy. */
struct ps_ctx {
    const Drover__AppInfo *app;
    bool deploying;
};

static int32_t
wanted(const struct ps_ctx *x, const char *type)
{
    for (size_t i = 0; x->app != NULL && i < x->app->n_formation; i++)
        if (strcmp(cli_str(x->app->formation[i]->type), type) == 0)
            return x->app->formation[i]->quantity;
    return -1;
}

/* One group: the heading and its instances first..last-1 as a table. */
static int
ps_group(Drover__InstanceInfo **in, size_t n, uint64_t now, const struct ps_ctx *ctx)
{
    struct cli_table *t = cli_table_new(10);
    char head[512];
    size_t nrun = 0;
    int rc = 0;

    if (t == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        nrun += running(in[i]);
    cli_ps_heading(cli_str(in[0]->type), wanted(ctx, cli_str(in[0]->type)), nrun, n, ctx->deploying,
                   cli_str(in[0]->command), head, sizeof(head));
    printf("%s\n", head);
    for (size_t i = 0; i < n && rc == 0; i++) {
        const Drover__InstanceInfo *x = in[i];
        char name[48], since[80], t1[32], t2[32], addr[96], rel[16], restarts[32], pid[32],
            usage[64], notes[512];
        bool placed = cli_str(x->node)[0] != '\0';
        const char *row[10] = {
            name, cli_str(x->state), since, placed ? x->node : "-", addr, rel, restarts, pid, usage,
            notes};

        snprintf(name, sizeof(name), "%s:", cli_str(x->name));
        cli_fmt_time(x->since_ms, t1);
        cli_fmt_ago(x->since_ms, now, t2);
        snprintf(since, sizeof(since), "%s%s%s%s", t1, t2[0] ? " (" : "", t2, t2[0] ? ")" : "");
        if (placed && x->port != 0)
            snprintf(addr, sizeof(addr), "%s:%u", cli_str(x->host), x->port);
        else
            snprintf(addr, sizeof(addr), "-");
        snprintf(rel, sizeof(rel), "v%u", x->release);
        snprintf(restarts, sizeof(restarts), "restarts=%u", x->restarts);
        if (x->pid > 0)
            snprintf(pid, sizeof(pid), "pid=%d", x->pid);
        else
            snprintf(pid, sizeof(pid), "pid=-");
        if (x->pid > 0 && (x->memory_bytes > 0 || x->cpu_permille > 0))
            snprintf(usage, sizeof(usage), "mem=%.1fM cpu=%u.%u%%",
                     (double)x->memory_bytes / 1048576.0, x->cpu_permille / 10,
                     x->cpu_permille % 10);
        else
            snprintf(usage, sizeof(usage), "-");
        ps_notes(x, notes, sizeof(notes));
        rc = cli_table_row(t, row);
    }
    if (rc == 0)
        cli_table_print(t, stdout, NULL);
    cli_table_free(t);
    return rc;
}

static int
ps_human(const char *app, Drover__PsRep *r, const struct ps_ctx *x)
{
    uint64_t now = now_ms();
    size_t start = 0;

    if (r->n_instances == 0 && x->app != NULL && x->app->release == 0) {
        printf("%s has no release yet: deploy first (drover deploy %s DIR)\n", app, app);
        return 0;
    }
    if (r->n_instances == 0) {
        const char *type = x->app != NULL && x->app->n_formation > 0
                               ? cli_str(x->app->formation[0]->type)
                               : "TYPE";

        printf("%s has no processes. Scale up with: drover scale %s %s=1\n", app, app, type);
        return 0;
    }
    for (size_t i = 1; i <= r->n_instances; i++) {
        int rc;

        if (i < r->n_instances &&
            strcmp(cli_str(r->instances[i]->type), cli_str(r->instances[start]->type)) == 0)
            continue;
        if (start > 0)
            putchar('\n');
        rc = ps_group(r->instances + start, i - start, now, x);
        if (rc < 0)
            return rc;
        start = i;
    }
    return 0;
}

/*
 * The app (its formation and release) and whether a deploy runs: two more
 * requests, for the headings only. Each reply is a separate moment, which
 * is fine for a picture a person reads; --json does without them.
 */
static int
ps_context(struct cli_client *c, const char *app, struct ps_ctx *x, Drover__Message **arep,
           Drover__Message **drep)
{
    Drover__Message req = DROVER__MESSAGE__INIT;
    Drover__DeployReq body = DROVER__DEPLOY_REQ__INIT;
    Drover__AppInfo *info = NULL;
    int rc = cli_app_get(c, app, arep, &info);

    if (rc < 0)
        return rc;
    x->app = info;
    if (info->release == 0)
        return 0;
    body.app = (char *)app;
    req.body_case = DROVER__MESSAGE__BODY_DEPLOY_REQ;
    req.deploy_req = &body;
    rc = cli_call(c, &req, DROVER__MESSAGE__BODY_DEPLOY_REP, drep);
    if (rc == 0 && (*drep)->deploy_rep->deploy != NULL)
        x->deploying = strcmp(cli_str((*drep)->deploy_rep->deploy->state), "running") == 0;
    return rc;
}

/* One ps request, printed. CLI_OK or CLI_FAIL (printed). */
static int
ps_once(struct cli_client *c, const char *app, bool json)
{
    Drover__Message req = DROVER__MESSAGE__INIT, *rep = NULL, *arep = NULL, *drep = NULL;
    Drover__PsReq body = DROVER__PS_REQ__INIT;
    struct ps_ctx x = {0};
    int rc;

    body.app = (char *)app;
    req.body_case = DROVER__MESSAGE__BODY_PS_REQ;
    req.ps_req = &body;
    rc = cli_call(c, &req, DROVER__MESSAGE__BODY_PS_REP, &rep);
    if (rc == 0 && !json)
        rc = ps_context(c, app, &x, &arep, &drep);
    if (rc == 0) {
        Drover__PsRep *r = rep->ps_rep;

        if (r->n_instances > 1)
            qsort(r->instances, r->n_instances, sizeof(*r->instances), jout_instance_order);
        if (json)
            cli_json_print(stdout, jout_ps(r));
        else if (ps_human(app, r, &x) < 0)
            rc = cli_fail("out of memory");
    }
    if (rep != NULL)
        wire_msg_free(rep);
    if (arep != NULL)
        wire_msg_free(arep);
    if (drep != NULL)
        wire_msg_free(drep);
    return rc == 0 ? CLI_OK : CLI_FAIL;
}

/*
 * --watch: ps again every PS_WATCH_MS, in place on a terminal (the screen
 * cleared first), one after the other otherwise; until SIGINT or SIGTERM.
 */
#define PS_WATCH_MS 2000

static int
ps_watch(struct cli_client *c, const char *app, bool json)
{
    static const int sigs[] = {SIGINT, SIGTERM};
    int sigfd = cli_signal_pipe(sigs, ARRAY_SIZE(sigs));
    bool tty = isatty(STDOUT_FILENO);

    if (sigfd < 0)
        return cli_fail("pipe: %s", strerror(-sigfd));
    for (;;) {
        struct pollfd p = {.fd = sigfd, .events = POLLIN};
        int rc;

        if (tty && !json)
            fputs("\033[H\033[2J", stdout);
        rc = ps_once(c, app, json);
        if (rc != CLI_OK)
            return rc;
        if (!tty || json)
            putchar('\n');
        if (fflush(stdout) != 0)
            return CLI_FAIL;
        if (poll(&p, 1, PS_WATCH_MS) > 0 && (p.revents & POLLIN))
            return CLI_OK;
    }
}

int
cli_cmd_ps(int argc, char **argv)
{
    bool json = false, watch = false;
    struct cli_flag flags[] = {{"json", 0, false, &json, NULL},
                               {"watch", 'w', false, &watch, NULL}};
    struct cli_client *c = NULL;
    char err[256], *pos[1];
    int npos, rc;

    if (cli_args_parse(argc, argv, flags, ARRAY_SIZE(flags), pos, 1, &npos, err, sizeof(err)) < 0)
        return cli_usage("ps", "%s", err);
    if (npos < 1)
        return cli_usage("ps", "missing APP");
    if ((rc = cli_app_arg("ps", pos[0])) != CLI_OK)
        return rc;
    if ((rc = cli_connect(&c)) != CLI_OK)
        return rc;
    rc = watch ? ps_watch(c, pos[0], json) : ps_once(c, pos[0], json);
    cli_client_free(c);
    return rc;
}
