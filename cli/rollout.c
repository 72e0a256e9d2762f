/* SPDX-License-Identifier: MIT */
/*
 * rollout.c: after `drover deploy`, wait until the new release runs.
 *
 * Done means: every instance of the app is on the new release and `up`, and
 * there are as many per type as the formation asks for (so old instances that
 * are still draining keep us waiting). The CLI polls PsReq every 200 ms — the
 * API is request/reply, and a poll is cheap — and re-reads the app (formation
 * and current release) every second: a scale during the rollout changes the
 * target, and a current release that moves off ours means the controller
 * rolled the deploy back, which is a failure to report at once. An instance
 * of the new release that reaches `failed` (its restarts given up) fails the
 * wait too. A progress line is printed only when it changes.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "util.h"
#include "wire.h"

#define POLL_MS 200
#define APP_EVERY 5 /* re-read the app every 5 polls */
#define MAX_TYPES 64

struct type_count {
    char type[TYPE_NAME_MAX + 2];
    int32_t want;
    uint32_t up;
};

struct progress {
    const Drover__ReleaseInfo *rel; /* borrowed */
    size_t ntypes;
    struct type_count types[MAX_TYPES];
    uint32_t release;
    bool seen_current; /* the app's current release was ours at least once */
    uint32_t old;      /* instances of other releases, in any state */
    uint32_t extra;    /* new-release instances of types not in the formation */
    char notes[512];   /* why some new instances are not up */
};

static uint64_t
mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Does the release run this type? (A release that lists no types runs all.) */
static bool
release_has(const Drover__ReleaseInfo *rel, const char *type)
{
    if (rel->n_types == 0)
        return true;
    for (size_t i = 0; i < rel->n_types; i++)
        if (strcmp(cli_str(rel->types[i]->name), type) == 0)
            return true;
    return false;
}

/* The target from the app's formation. 0, or -ECANCELED when not current. */
static int
load_target(struct cli_client *c, const char *app, struct progress *p)
{
    Drover__Message *rep = NULL;
    Drover__AppInfo *info;
    int rc;

    rc = cli_app_get(c, app, &rep, &info);
    if (rc < 0)
        return rc;
    /*
     * Whether the controller makes a release current at once or only once
     * it runs, a current release that was ours and moved, or that is newer,
     * means ours will not finish rolling out.
     */
    if (info->release == p->release)
        p->seen_current = true;
    if ((p->seen_current && info->release != p->release) || info->release > p->release) {
        cli_fail("v%u is no longer the current release of %s (now v%u): the deploy was rolled "
                 "back or replaced",
                 p->release, app, info->release);
        wire_msg_free(rep);
        return -ECANCELED;
    }
    p->ntypes = 0;
    for (size_t i = 0; i < info->n_formation && p->ntypes < MAX_TYPES; i++) {
        Drover__FormationEntry *f = info->formation[i];

        /* A type the new Procfile dropped keeps its formation entry but runs nothing. */
        if (f->quantity <= 0 || !release_has(p->rel, cli_str(f->type)))
            continue;
        snprintf(p->types[p->ntypes].type, sizeof(p->types[0].type), "%s", cli_str(f->type));
        p->types[p->ntypes].want = f->quantity;
        p->ntypes++;
    }
    wire_msg_free(rep);
    return 0;
}

static struct type_count *
find_type(struct progress *p, const char *type)
{
    for (size_t i = 0; i < p->ntypes; i++)
        if (strcmp(p->types[i].type, type) == 0)
            return &p->types[i];
    return NULL;
}

static void
add_note(struct progress *p, const Drover__InstanceInfo *in)
{
    size_t used = strlen(p->notes);
    const char *reason = cli_str(in->reason);

    if (used + 1 >= sizeof(p->notes))
        return;
    snprintf(p->notes + used, sizeof(p->notes) - used, "%s%s %s%s%s", used > 0 ? "; " : "",
             cli_str(in->name), cli_str(in->state), reason[0] != '\0' ? ": " : "", reason);
}

/* Count one PsRep. Returns 0, or -EIO when a new instance failed for good. */
static int
count(struct progress *p, const char *app, Drover__PsRep *r)
{
    p->old = p->extra = 0;
    p->notes[0] = '\0';
    for (size_t i = 0; i < p->ntypes; i++)
        p->types[i].up = 0;
    for (size_t i = 0; i < r->n_instances; i++) {
        const Drover__InstanceInfo *in = r->instances[i];
        const char *st = cli_str(in->state);
        struct type_count *t;

        if (in->release != p->release) {
            p->old++;
            continue;
        }
        t = find_type(p, cli_str(in->type));
        if (t == NULL) {
            p->extra++;
            continue;
        }
        if (strcmp(st, "up") == 0) {
            t->up++;
            continue;
        }
        add_note(p, in);
        if (strcmp(st, "failed") == 0) {
            cli_fail("%s of %s v%u failed: %s", cli_str(in->name), app, p->release,
                     cli_str(in->reason)[0] != '\0' ? in->reason : "gave up restarting");
            return -EIO;
        }
    }
    return 0;
}

static bool
done(const struct progress *p)
{
    for (size_t i = 0; i < p->ntypes; i++)
        if (p->types[i].up != (uint32_t)p->types[i].want)
            return false;
    return p->old == 0 && p->extra == 0;
}

static void
describe(const struct progress *p, char *out, size_t outsz)
{
    size_t used = 0;

    out[0] = '\0';
    for (size_t i = 0; i < p->ntypes && used < outsz; i++) {
        int w = snprintf(out + used, outsz - used, "%s%s %u/%d up", i > 0 ? ", " : "",
                         p->types[i].type, p->types[i].up, p->types[i].want);

        used += w > 0 ? (size_t)w : 0;
    }
    if (used < outsz)
        used += (size_t)snprintf(out + used, outsz - used, " on v%u", p->release);
    if (p->old > 0 && used < outsz)
        used += (size_t)snprintf(out + used, outsz - used, ", %u old still running", p->old);
    if (p->extra > 0 && used < outsz)
        snprintf(out + used, outsz - used, ", %u to stop", p->extra);
}

static int
poll_once(struct cli_client *c, const char *app, struct progress *p)
{
    Drover__Message req = DROVER__MESSAGE__INIT, *rep = NULL;
    Drover__PsReq body = DROVER__PS_REQ__INIT;
    int rc;

    body.app = (char *)app;
    req.body_case = DROVER__MESSAGE__BODY_PS_REQ;
    req.ps_req = &body;
    rc = cli_call(c, &req, DROVER__MESSAGE__BODY_PS_REP, &rep);
    if (rc < 0)
        return rc;
    rc = count(p, app, rep->ps_rep);
    wire_msg_free(rep);
    return rc;
}

int
cli_rollout_wait(struct cli_client *c, const char *app, const Drover__ReleaseInfo *rel,
                 uint32_t timeout_s)
{
    uint32_t release = rel->version;
    static struct progress p; /* large; the CLI is single-threaded */
    uint64_t deadline = mono_ms() + (uint64_t)timeout_s * 1000;
    char line[1024], last[1024] = "";
    int rc;

    memset(&p, 0, sizeof(p));
    p.release = release;
    p.rel = rel;
    for (unsigned n = 0;; n++) {
        if (n % APP_EVERY == 0) {
            rc = load_target(c, app, &p);
            if (rc < 0)
                return rc;
            if (p.ntypes == 0) {
                printf("The formation of %s is empty: nothing to start. Scale up with: "
                       "drover scale %s TYPE=N\n",
                       app, app);
                return 0;
            }
        }
        rc = poll_once(c, app, &p);
        if (rc < 0)
            return rc;
        describe(&p, line, sizeof(line));
        if (strcmp(line, last) != 0) {
            printf("%s\n", line);
            fflush(stdout);
            snprintf(last, sizeof(last), "%s", line);
        }
        if (done(&p)) {
            printf("Done: %s v%u is up.\n", app, release);
            return 0;
        }
        if (mono_ms() >= deadline) {
            bool why = p.notes[0] != '\0';

            cli_fail("timed out after %u s waiting for %s v%u: %s%s%s%s", timeout_s, app, release,
                     line, why ? " (" : "", p.notes, why ? ")" : "");
            return -ETIMEDOUT;
        }
        sleep_ms(POLL_MS);
    }
}
