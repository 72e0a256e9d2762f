/* SPDX-License-Identifier: MIT */
/*
 * cmd_scale.c: `drover scale APP TYPE=N [TYPE=N...]`.
 *
 * Every TYPE=N is checked (type rule, N a plain decimal in range, no type
 * twice) before the request goes out; the reply is the whole formation,
 * printed as "Scaled shop: web=3 worker=2".
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util.h"
#include "wire.h"

int
cli_cmd_scale(int argc, char **argv)
{
    Drover__Message req = DROVER__MESSAGE__INIT, *rep = NULL;
    Drover__ScaleReq body = DROVER__SCALE_REQ__INIT;
    Drover__FormationEntry *fe = NULL, **fep = NULL;
    struct cli_client *c = NULL;
    char **pos = NULL, (*types)[TYPE_NAME_MAX + 1] = NULL, err[320], form[2048];
    int npos, rc = CLI_FAIL;
    size_t n = 0;

    pos = calloc((size_t)argc + 1, sizeof(*pos));
    if (pos == NULL)
        return cli_fail("out of memory");
    if (cli_args_parse(argc, argv, NULL, 0, pos, argc, &npos, err, sizeof(err)) < 0) {
        rc = cli_usage("scale", "%s", err);
        goto out;
    }
    if (npos < 2) {
        rc = cli_usage("scale", "%s", npos < 1 ? "missing APP" : "missing TYPE=N");
        goto out;
    }
    if ((rc = cli_app_arg("scale", pos[0])) != CLI_OK)
        goto out;
    n = (size_t)npos - 1;
    if (n > 64) {
        rc = cli_usage("scale", "at most 64 process types at once");
        goto out;
    }
    fe = calloc(n, sizeof(*fe));
    fep = calloc(n, sizeof(*fep));
    types = calloc(n, sizeof(*types));
    if (fe == NULL || fep == NULL || types == NULL) {
        rc = cli_fail("out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        drover__formation_entry__init(&fe[i]);
        if (cli_parse_scale(pos[i + 1], types[i], sizeof(types[i]), &fe[i].quantity, err,
                            sizeof(err)) < 0) {
            rc = cli_usage("scale", "%s", err);
            goto out;
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(types[k], types[i]) == 0) {
                rc = cli_usage("scale", "%s given twice", types[i]);
                goto out;
            }
        fe[i].type = types[i];
        fep[i] = &fe[i];
    }
    if ((rc = cli_connect(&c)) != CLI_OK)
        goto out;
    body.app = pos[0];
    body.n_entries = n;
    body.entries = fep;
    req.body_case = DROVER__MESSAGE__BODY_SCALE_REQ;
    req.scale_req = &body;
    if (cli_call(c, &req, DROVER__MESSAGE__BODY_SCALE_REP, &rep) < 0) {
        rc = CLI_FAIL;
        goto out;
    }
    cli_fmt_formation(rep->scale_rep->formation, rep->scale_rep->n_formation, form, sizeof(form));
    printf("Scaled %s: %s\n", pos[0], form);
    rc = CLI_OK;
out:
    if (rep != NULL)
        wire_msg_free(rep);
    cli_client_free(c);
    free(types);
    free(fep);
    free(fe);
    free(pos);
    return rc;
}
