/* SPDX-License-Identifier: MIT */
/*
 * cmd_apps.c: `drover apps` and `drover apps:create APP`.
 */
#include <errno.h>
#include <string.h>

#include "cli.h"
#include "util.h"
#include "wire.h"

static int
apps_human(Drover__AppsRep *r)
{
    static const char *const head[] = {"NAME", "RELEASE", "FORMATION", "CREATED"};
    struct cli_table *t;
    int rc;

    if (r->n_apps == 0) {
        printf("You have no apps. Create one with: drover apps:create APP\n");
        return 0;
    }
    t = cli_table_new(4);
    if (t == NULL)
        return -ENOMEM;
    rc = cli_table_row(t, head);
    for (size_t i = 0; i < r->n_apps && rc == 0; i++) {
        Drover__AppInfo *a = r->apps[i];
        char rel[16] = "-", form[512], created[32];
        const char *row[4] = {cli_str(a->name), rel, form, created};

        if (a->release > 0)
            snprintf(rel, sizeof(rel), "v%u", a->release);
        cli_fmt_formation(a->formation, a->n_formation, form, sizeof(form));
        cli_fmt_time(a->created_ms, created);
        rc = cli_table_row(t, row);
    }
    if (rc == 0) {
        printf("=== Apps\n");
        cli_table_print(t, stdout, NULL);
    }
    cli_table_free(t);
    return rc;
}

int
cli_cmd_apps(int argc, char **argv)
{
    bool json = false;
    struct cli_flag flags[] = {{"json", 0, false, &json, NULL}};
    Drover__Message req = DROVER__MESSAGE__INIT, *rep = NULL;
    Drover__AppsReq body = DROVER__APPS_REQ__INIT;
    struct cli_client *c = NULL;
    char err[256], *pos[1];
    int npos, rc;

    if (cli_args_parse(argc, argv, flags, ARRAY_SIZE(flags), pos, 0, &npos, err, sizeof(err)) < 0)
        return cli_usage("apps", "%s", err);
    if ((rc = cli_connect(&c)) != CLI_OK)
        return rc;
    req.body_case = DROVER__MESSAGE__BODY_APPS_REQ;
    req.apps_req = &body;
    rc = cli_call(c, &req, DROVER__MESSAGE__BODY_APPS_REP, &rep);
    if (rc == 0) {
        if (json)
            cli_json_print(stdout, jout_apps(rep->apps_rep));
        else if (apps_human(rep->apps_rep) < 0)
            rc = cli_fail("out of memory");
    }
    if (rep != NULL)
        wire_msg_free(rep);
    cli_client_free(c);
    return rc == 0 ? CLI_OK : CLI_FAIL;
}

int
cli_cmd_apps_create(int argc, char **argv)
{
    Drover__Message req = DROVER__MESSAGE__INIT, *rep = NULL;
    Drover__AppCreateReq body = DROVER__APP_CREATE_REQ__INIT;
    struct cli_client *c = NULL;
    char err[256], *pos[1];
    int npos, rc;

    if (cli_args_parse(argc, argv, NULL, 0, pos, 1, &npos, err, sizeof(err)) < 0)
        return cli_usage("apps:create", "%s", err);
    if (npos < 1)
        return cli_usage("apps:create", "missing APP");
    if ((rc = cli_app_arg("apps:create", pos[0])) != CLI_OK)
        return rc;
    if ((rc = cli_connect(&c)) != CLI_OK)
        return rc;
    body.app = pos[0];
    req.body_case = DROVER__MESSAGE__BODY_APP_CREATE_REQ;
    req.app_create_req = &body;
    rc = cli_call(c, &req, DROVER__MESSAGE__BODY_APP_REP, &rep);
    if (rc == 0)
        printf("Created %s\n", pos[0]);
    if (rep != NULL)
        wire_msg_free(rep);
    cli_client_free(c);
    return rc == 0 ? CLI_OK : CLI_FAIL;
}

int
cli_app_get(struct cli_client *c, const char *app, Drover__Message **rep, Drover__AppInfo **info)
{
    int rc = cli_app_find(c, app, rep, info);

    if (rc == -ENOENT)
        cli_fail("no such app '%s'", app);
    return rc;
}

int
cli_app_create(struct cli_client *c, const char *app)
{
    Drover__Message req = DROVER__MESSAGE__INIT, *rep = NULL;
    Drover__AppCreateReq body = DROVER__APP_CREATE_REQ__INIT;
    int rc;

    body.app = (char *)app;
    req.body_case = DROVER__MESSAGE__BODY_APP_CREATE_REQ;
    req.app_create_req = &body;
    rc = cli_call(c, &req, DROVER__MESSAGE__BODY_APP_REP, &rep);
    if (rep != NULL)
        wire_msg_free(rep);
    return rc;
}

int
cli_app_find(struct cli_client *c, const char *app, Drover__Message **rep, Drover__AppInfo **info)
{
    Drover__Message req = DROVER__MESSAGE__INIT;
    Drover__AppsReq body = DROVER__APPS_REQ__INIT;
    int rc;

    *info = NULL;
    req.body_case = DROVER__MESSAGE__BODY_APPS_REQ;
    req.apps_req = &body;
    rc = cli_call(c, &req, DROVER__MESSAGE__BODY_APPS_REP, rep);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < (*rep)->apps_rep->n_apps; i++)
        if (strcmp(cli_str((*rep)->apps_rep->apps[i]->name), app) == 0) {
            *info = (*rep)->apps_rep->apps[i];
            return 0;
        }
    wire_msg_free(*rep);
    *rep = NULL;
    return -ENOENT;
}
