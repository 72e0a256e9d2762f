/* SPDX-License-Identifier: MIT */
/*
 * cmd_drains.c: `drover drains`, `drains:add` and `drains:remove`.
 *
 * The controller judges URLs (drain_url.c) and says why it refuses one; the
 * CLI only checks the app name and the argument count. Human output lists
 * one drain per block: its id and URL, then its state and counters, as
 * `heroku drains` lists URLs with their tokens.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util.h"
#include "wire.h"

static void
drains_print(const char *app, const Drover__DrainsRep *r)
{
    char when[32];

    if (r->n_drains == 0) {
        printf("%s has no drains.\n", app);
        return;
    }
    printf("=== %s Drains\n", app);
    for (size_t i = 0; i < r->n_drains; i++) {
        const Drover__DrainInfo *d = r->drains[i];

        printf("%s  %s\n", cli_str(d->id), cli_str(d->url));
        printf("  state: %s\n", cli_str(d->state));
        printf("  sent: %llu  buffered: %llu  dropped: %llu\n", (unsigned long long)d->sent,
               (unsigned long long)d->buffered, (unsigned long long)d->dropped);
        if (d->last_error != NULL && d->last_error[0] != '\0') {
            cli_fmt_time(d->last_error_ms, when);
            printf("  last error: %s (%s)\n", d->last_error, when);
        }
    }
}

static int
drains_call(Drover__Message *req, Drover__Message **rep)
{
    struct cli_client *c = NULL;
    int rc;

    if ((rc = cli_connect(&c)) != CLI_OK)
        return rc;
    rc = cli_call(c, req, DROVER__MESSAGE__BODY_DRAINS_REP, rep);
    cli_client_free(c);
    return rc == 0 ? CLI_OK : CLI_FAIL;
}

int
cli_cmd_drains(int argc, char **argv)
{
    bool json = false;
    struct cli_flag flags[] = {{"json", 0, false, &json, NULL}};
    Drover__Message req = DROVER__MESSAGE__INIT, *rep = NULL;
    Drover__DrainsReq body = DROVER__DRAINS_REQ__INIT;
    char err[256], *pos[2];
    int npos, rc;

    if (cli_args_parse(argc, argv, flags, ARRAY_SIZE(flags), pos, 2, &npos, err, sizeof(err)) < 0)
        return cli_usage("drains", "%s", err);
    if (npos != 1)
        return cli_usage("drains", npos < 1 ? "missing APP" : "too many arguments");
    if ((rc = cli_app_arg("drains", pos[0])) != CLI_OK)
        return rc;
    body.app = pos[0];
    req.body_case = DROVER__MESSAGE__BODY_DRAINS_REQ;
    req.drains_req = &body;
    if ((rc = drains_call(&req, &rep)) != CLI_OK)
        return rc;
    if (json)
        cli_json_print(stdout, jout_drains(rep->drains_rep));
    else
        drains_print(pos[0], rep->drains_rep);
    wire_msg_free(rep);
    return CLI_OK;
}

int
cli_cmd_drains_add(int argc, char **argv)
{
    Drover__Message req = DROVER__MESSAGE__INIT, *rep = NULL;
    Drover__DrainAddReq body = DROVER__DRAIN_ADD_REQ__INIT;
    char err[256], *pos[3];
    int npos, rc;

    if (cli_args_parse(argc, argv, NULL, 0, pos, 3, &npos, err, sizeof(err)) < 0)
        return cli_usage("drains:add", "%s", err);
    if (npos != 2)
        return cli_usage("drains:add", npos < 2 ? "missing APP or URL" : "too many arguments");
    if ((rc = cli_app_arg("drains:add", pos[0])) != CLI_OK)
        return rc;
    body.app = pos[0];
    body.url = pos[1];
    req.body_case = DROVER__MESSAGE__BODY_DRAIN_ADD_REQ;
    req.drain_add_req = &body;
    if ((rc = drains_call(&req, &rep)) != CLI_OK)
        return rc;
    for (size_t i = 0; i < rep->drains_rep->n_drains; i++)
        if (strcmp(cli_str(rep->drains_rep->drains[i]->url), pos[1]) == 0)
            printf("Successfully added drain %s to %s (%s)\n", pos[1], pos[0],
                   cli_str(rep->drains_rep->drains[i]->id));
    wire_msg_free(rep);
    return CLI_OK;
}

int
cli_cmd_drains_remove(int argc, char **argv)
{
    Drover__Message req = DROVER__MESSAGE__INIT, *rep = NULL;
    Drover__DrainRemoveReq body = DROVER__DRAIN_REMOVE_REQ__INIT;
    char err[256], *pos[3];
    int npos, rc;

    if (cli_args_parse(argc, argv, NULL, 0, pos, 3, &npos, err, sizeof(err)) < 0)
        return cli_usage("drains:remove", "%s", err);
    if (npos != 2)
        return cli_usage("drains:remove",
                         npos < 2 ? "missing APP or URL|ID" : "too many arguments");
    if ((rc = cli_app_arg("drains:remove", pos[0])) != CLI_OK)
        return rc;
    body.app = pos[0];
    body.drain = pos[1];
    req.body_case = DROVER__MESSAGE__BODY_DRAIN_REMOVE_REQ;
    req.drain_remove_req = &body;
    if ((rc = drains_call(&req, &rep)) != CLI_OK)
        return rc;
    printf("Successfully removed drain %s from %s\n", pos[1], pos[0]);
    wire_msg_free(rep);
    return CLI_OK;
}
