/* SPDX-License-Identifier: MIT */
/*
 * cmd_releases.c: `drover releases APP` — an app's releases, newest first,
 * with how each one's rollout went — and `drover rollback APP [vN]`.
 *
 *   === shop Releases (* current)
 *       VERSION  STATUS      CREATED               SLUG          DESCRIPTION
 *   *   v3       succeeded   2026-11-24T10:00:00Z  5d41402abc4b  Rollback to v1
 *       v2       failed      2026-11-24T09:58:00Z  7c211433f022  Deploy 7c211433f022: web.2
 * crashed: exit code 1
 *
 * A failed release's reason follows its description: it is what a person
 * reads next, and a separate column would be empty on most rows.
 *
 * A rollback is a new release (its description "Rollback to vN") rolled out
 * like a deploy, so it is waited for the same way (rollout.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util.h"
#include "wire.h"

static int
newest_first(const void *a, const void *b)
{
    const Drover__ReleaseInfo *x = *(Drover__ReleaseInfo *const *)a;
    const Drover__ReleaseInfo *y = *(Drover__ReleaseInfo *const *)b;

    return x->version < y->version ? 1 : x->version > y->version ? -1 : 0;
}

static int
releases_human(const char *app, Drover__ReleasesRep *r)
{
    static const char *const head[] = {"", "VERSION", "STATUS", "CREATED", "SLUG", "DESCRIPTION"};
    struct cli_table *t;
    int rc;

    if (r->n_releases == 0) {
        printf("%s has no releases yet. Deploy with: drover deploy %s DIR\n", app, app);
        return 0;
    }
    t = cli_table_new(6);
    if (t == NULL)
        return -ENOMEM;
    rc = cli_table_row(t, head);
    for (size_t i = 0; i < r->n_releases && rc == 0; i++) {
        Drover__ReleaseInfo *rel = r->releases[i];
        char ver[16], created[32], slug[13], desc[2048];
        const char *row[6] = {
            rel->version == r->current ? "*" : "", ver, cli_str(rel->status), created, slug, desc};

        snprintf(ver, sizeof(ver), "v%u", rel->version);
        if (cli_str(rel->reason)[0] != '\0')
            snprintf(desc, sizeof(desc), "%s: %s", cli_str(rel->description), rel->reason);
        else
            snprintf(desc, sizeof(desc), "%s", cli_str(rel->description));
        snprintf(slug, sizeof(slug), "%.12s", cli_str(rel->slug_sha256));
        cli_fmt_time(rel->created_ms, created);
        rc = cli_table_row(t, row);
    }
    if (rc == 0) {
        printf("=== %s Releases (* current)\n", app);
        cli_table_print(t, stdout, NULL);
    }
    cli_table_free(t);
    return rc;
}

int
cli_cmd_releases(int argc, char **argv)
{
    bool json = false;
    struct cli_flag flags[] = {{"json", 0, false, &json, NULL}};
    Drover__Message req = DROVER__MESSAGE__INIT, *rep = NULL;
    Drover__ReleasesReq body = DROVER__RELEASES_REQ__INIT;
    struct cli_client *c = NULL;
    char err[256], *pos[1];
    int npos, rc;

    if (cli_args_parse(argc, argv, flags, ARRAY_SIZE(flags), pos, 1, &npos, err, sizeof(err)) < 0)
        return cli_usage("releases", "%s", err);
    if (npos < 1)
        return cli_usage("releases", "missing APP");
    if ((rc = cli_app_arg("releases", pos[0])) != CLI_OK)
        return rc;
    if ((rc = cli_connect(&c)) != CLI_OK)
        return rc;
    body.app = pos[0];
    req.body_case = DROVER__MESSAGE__BODY_RELEASES_REQ;
    req.releases_req = &body;
    rc = cli_call(c, &req, DROVER__MESSAGE__BODY_RELEASES_REP, &rep);
    if (rc == 0) {
        Drover__ReleasesRep *r = rep->releases_rep;

        if (r->n_releases > 1)
            qsort(r->releases, r->n_releases, sizeof(*r->releases), newest_first);
        if (json)
            cli_json_print(stdout, jout_releases(r));
        else if (releases_human(pos[0], r) < 0)
            rc = cli_fail("out of memory");
    }
    if (rep != NULL)
        wire_msg_free(rep);
    cli_client_free(c);
    return rc == 0 ? CLI_OK : CLI_FAIL;
}

int
cli_parse_version(const char *s, uint32_t *out)
{
    char *end;
    unsigned long v;

    if (s[0] == 'v')
        s++;
    if (*s < '1' || *s > '9')
        return -EINVAL;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > UINT32_MAX)
        return -EINVAL;
    *out = (uint32_t)v;
    return 0;
}

/* "Rolled back shop to v5 as v8", the version taken from the description. */
static void
print_rolled_back(const char *app, uint32_t asked, const Drover__ReleaseInfo *rel)
{
    unsigned to = 0;

    if (sscanf(cli_str(rel->description), "Rollback to v%u", &to) != 1)
        to = asked;
    if (to > 0)
        printf("Rolled back %s to v%u as v%u\n", app, to, rel->version);
    else
        printf("Rolled back %s as v%u (%s)\n", app, rel->version, cli_str(rel->description));
    fflush(stdout);
}

int
cli_cmd_rollback(int argc, char **argv)
{
    bool no_wait = false;
    const char *timeout = NULL;
    struct cli_flag flags[] = {
        {"no-wait", 0, false, &no_wait, NULL},
        {"timeout", 0, true, NULL, &timeout},
    };
    Drover__Message req = DROVER__MESSAGE__INIT, *rep = NULL;
    Drover__RollbackReq body = DROVER__ROLLBACK_REQ__INIT;
    struct cli_client *c = NULL;
    uint32_t version = 0, timeout_s = CLI_DEPLOY_TIMEOUT_DEFAULT;
    char err[256], *pos[2];
    int npos, rc;

    if (cli_args_parse(argc, argv, flags, ARRAY_SIZE(flags), pos, 2, &npos, err, sizeof(err)) < 0)
        return cli_usage("rollback", "%s", err);
    if (npos < 1)
        return cli_usage("rollback", "missing APP");
    if ((rc = cli_app_arg("rollback", pos[0])) != CLI_OK)
        return rc;
    if (npos > 1 && cli_parse_version(pos[1], &version) < 0)
        return cli_usage("rollback", "'%.40s' is not a release: give vN or N, like v3", pos[1]);
    if (timeout != NULL && cli_parse_seconds(timeout, CLI_DEPLOY_TIMEOUT_MAX, &timeout_s) < 0)
        return cli_usage("rollback", "--timeout must be whole seconds from 1 to %d",
                         CLI_DEPLOY_TIMEOUT_MAX);
    if ((rc = cli_connect(&c)) != CLI_OK)
        return rc;
    rc = CLI_FAIL;
    body.app = pos[0];
    body.version = version;
    req.body_case = DROVER__MESSAGE__BODY_ROLLBACK_REQ;
    req.rollback_req = &body;
    if (cli_call(c, &req, DROVER__MESSAGE__BODY_RELEASE_REP, &rep) < 0)
        goto out;
    if (rep->release_rep->release == NULL) {
        cli_fail("unexpected reply from the controller: a release reply without a release");
        goto out;
    }
    print_rolled_back(pos[0], version, rep->release_rep->release);
    if (no_wait || cli_rollout_wait(c, pos[0], rep->release_rep->release->version, timeout_s) == 0)
        rc = CLI_OK;
out:
    if (rep != NULL)
        wire_msg_free(rep);
    cli_client_free(c);
    return rc;
}
