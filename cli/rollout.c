/* SPDX-License-Identifier: MIT */
/*
 * rollout.c: after `drover deploy` or `drover rollback`, wait for the
 * controller's deploy of the new release to finish.
 *
 * The controller runs the deploy (batches, health, its own deploy timeout,
 * putting the last good release back on failure); the CLI only watches it.
 * It polls DeployReq every 200 ms — the API is request/reply, and a poll is
 * cheap — and reads the app's latest deploy: while that is an older release
 * the controller has not started ours yet; when it is ours, its state says
 * running, succeeded or failed; when it is newer, someone released again and
 * ours will never finish. A type's progress line is printed only when it
 * changes, so a quiet rollout prints little.
 *
 * --timeout is the CLI's patience, not the deploy's: when it runs out the
 * deploy keeps going on the controller, and the message says so.
 */
#include <errno.h>
#include <string.h>

#include "cli.h"
#include "util.h"
#include "wire.h"

#define POLL_MS 200
#define MAX_TYPES 64

/* The last line printed for each type. */
struct shown {
    size_t n;
    struct {
        char type[TYPE_NAME_MAX + 2];
        char line[160];
    } t[MAX_TYPES];
};

/* Print t's line unless it is the one shown last for its type. */
static void
show(struct shown *s, const Drover__TypeProgress *t, uint32_t release)
{
    char line[160];
    size_t i;

    /* A type scaled to zero that has nothing left to stop is not news. */
    if (t->desired == 0 && t->created == 0 && t->old == 0)
        return;
    cli_fmt_progress(t, release, line, sizeof(line));
    for (i = 0; i < s->n; i++)
        if (strcmp(s->t[i].type, cli_str(t->type)) == 0)
            break;
    if (i < s->n && strcmp(s->t[i].line, line) == 0)
        return;
    if (i == s->n && s->n < MAX_TYPES) {
        snprintf(s->t[i].type, sizeof(s->t[i].type), "%s", cli_str(t->type));
        s->n++;
    }
    if (i < MAX_TYPES)
        snprintf(s->t[i].line, sizeof(s->t[i].line), "%s", line);
    printf("%s\n", line);
}

static bool
nothing_to_run(const Drover__DeployInfo *d)
{
    for (size_t i = 0; i < d->n_types; i++)
        if (d->types[i]->desired > 0)
            return false;
    return true;
}

/*
 * Our release's deploy: 1 while it runs, 0 when it succeeded, or a negative
 * errno (printed) when it failed.
 */
static int
judge(const char *app, uint32_t release, const Drover__DeployInfo *d, const char *what,
      bool quiet_done)
{
    const char *state = cli_str(d->state), *reason = cli_str(d->reason);
    char now[32] = "nothing running";

    if (strcmp(state, "succeeded") == 0) {
        if (quiet_done)
            return 0;
        if (nothing_to_run(d))
            printf("Done: %s v%u is released; its formation is empty (scale up with: drover "
                   "scale %s TYPE=N)\n",
                   app, release, app);
        else
            printf("Done: %s v%u is up.\n", app, release);
        return 0;
    }
    if (strcmp(state, "failed") != 0)
        return 1;
    if (d->current > 0)
        snprintf(now, sizeof(now), "running v%u", d->current);
    cli_fail("%s of v%u failed: %s; %s", what, release,
             reason[0] != '\0' ? reason : "no reason given", now);
    return -EIO;
}

/* The last lines release.N wrote, on stderr: why its release phase failed.
 * The agent ships output in batches, so wait a little for the first line. */
static void
release_output(struct cli_client *c, const char *app, uint32_t release)
{
    Drover__Message req = DROVER__MESSAGE__INIT;
    Drover__LogsReq body = DROVER__LOGS_REQ__INIT;
    char source[32];

    snprintf(source, sizeof(source), "release.%u", release);
    body.app = (char *)app;
    body.lines = 20;
    body.source = source;
    req.body_case = DROVER__MESSAGE__BODY_LOGS_REQ;
    req.logs_req = &body;
    for (int tries = 0; tries < 10; tries++) {
        Drover__Message *rep = NULL;
        size_t n;

        if (cli_call(c, &req, DROVER__MESSAGE__BODY_LOGS_REP, &rep) < 0)
            return;
        n = rep->logs_rep->n_lines;
        if (n > 0 || tries == 9) {
            fprintf(stderr, n > 0 ? "Last lines of %s:\n" : "%s wrote nothing\n", source);
            for (size_t i = 0; i < n; i++)
                fprintf(stderr, "  %s\n", cli_str(rep->logs_rep->lines[i]->text));
        }
        wire_msg_free(rep);
        if (n > 0)
            return;
        cli_sleep_ms(POLL_MS);
    }
}

static int
ask(struct cli_client *c, const char *app, Drover__Message **rep)
{
    Drover__Message req = DROVER__MESSAGE__INIT;
    Drover__DeployReq body = DROVER__DEPLOY_REQ__INIT;
    int rc;

    body.app = (char *)app;
    req.body_case = DROVER__MESSAGE__BODY_DEPLOY_REQ;
    req.deploy_req = &body;
    rc = cli_call(c, &req, DROVER__MESSAGE__BODY_DEPLOY_REP, rep);
    if (rc == 0 && (*rep)->deploy_rep->deploy == NULL) {
        cli_fail("unexpected reply from the controller: a deploy reply without a deploy");
        wire_msg_free(*rep);
        *rep = NULL;
        rc = -EBADMSG;
    }
    return rc;
}

int
cli_rollout_wait(struct cli_client *c, const char *app, uint32_t release, uint32_t timeout_s)
{
    return cli_rollout_wait_for(c, app, release, timeout_s, "deploy", false);
}

int
cli_rollout_wait_for(struct cli_client *c, const char *app, uint32_t release, uint32_t timeout_s,
                     const char *what, bool quiet)
{
    static struct shown shown; /* large; the CLI is single-threaded */
    uint64_t deadline = cli_mono_ms() + (uint64_t)timeout_s * 1000;
    bool told_phase = false;
    int rc;

    memset(&shown, 0, sizeof(shown));
    for (;;) {
        Drover__Message *rep = NULL;
        const Drover__DeployInfo *d;

        if ((rc = ask(c, app, &rep)) < 0)
            return rc;
        d = rep->deploy_rep->deploy;
        rc = 1;
        if (d->release > release) {
            cli_fail("v%u was superseded by v%u", release, d->release);
            rc = -ECANCELED;
        } else if (d->release == release && strcmp(cli_str(d->state), "releasing") == 0) {
            if (!told_phase)
                printf("Running release phase (release.%u) ...\n", release);
            told_phase = true;
        } else if (d->release == release) {
            if (told_phase && strcmp(cli_str(d->state), "failed") != 0)
                printf("Release phase (release.%u) done.\n", release);
            told_phase = false;
            for (size_t i = 0; i < d->n_types && !quiet; i++)
                show(&shown, d->types[i], release);
            rc = judge(app, release, d, what, quiet);
            if (rc == -EIO && strncmp(cli_str(d->reason), "release phase failed", 20) == 0)
                release_output(c, app, release);
        }
        fflush(stdout);
        wire_msg_free(rep);
        if (rc <= 0)
            return rc;
        if (cli_mono_ms() >= deadline) {
            cli_fail("gave up waiting after %u s: the %s of %s v%u is still running on the "
                     "controller (follow it with: drover ps %s)",
                     timeout_s, what, app, release, app);
            return -ETIMEDOUT;
        }
        cli_sleep_ms(POLL_MS);
    }
}
