/* SPDX-License-Identifier: MIT */
/*
 * cmd_releases.c: `drover releases APP` — an app's releases, newest first.
 */
#include <errno.h>
#include <stdlib.h>

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

static void
releases_json(Drover__ReleasesRep *r)
{
    struct cli_json j;

    cli_json_init(&j, stdout);
    cli_json_begin_array(&j);
    for (size_t i = 0; i < r->n_releases; i++) {
        Drover__ReleaseInfo *rel = r->releases[i];

        cli_json_begin_object(&j);
        cli_json_key(&j, "version");
        cli_json_uint(&j, rel->version);
        cli_json_key(&j, "description");
        cli_json_string(&j, cli_str(rel->description));
        cli_json_key(&j, "created");
        cli_json_time(&j, rel->created_ms);
        cli_json_key(&j, "status");
        cli_json_string(&j, cli_str(rel->status));
        cli_json_key(&j, "current");
        cli_json_bool(&j, rel->version == r->current);
        cli_json_key(&j, "slug");
        cli_json_string(&j, cli_str(rel->slug_sha256));
        cli_json_end_object(&j);
    }
    cli_json_end_array(&j);
    cli_json_end(&j);
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
        char ver[16], created[32], slug[13];
        const char *row[6] = {rel->version == r->current ? "*" : "",
                              ver,
                              cli_str(rel->status),
                              created,
                              slug,
                              cli_str(rel->description)};

        snprintf(ver, sizeof(ver), "v%u", rel->version);
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
            releases_json(r);
        else if (releases_human(pos[0], r) < 0)
            rc = cli_fail("out of memory");
    }
    if (rep != NULL)
        wire_msg_free(rep);
    cli_client_free(c);
    return rc == 0 ? CLI_OK : CLI_FAIL;
}
