/* SPDX-License-Identifier: MIT */
/*
 * cmd_settings.c: `drover settings APP` and `settings:set APP TYPE K=V...` —
 * how each process type is health-checked, stopped and rolled out.
 *
 *   === shop Process Type Settings
 *   TYPE    QTY  HEALTH  BOOT  GRACE  SURGE  UNAVAILABLE  MIN_HEALTHY  ...
 *   web     4    tcp     60s   30s    25%    0            1s           ...
 *
 * settings:set sends the KEY=VALUE strings as they were typed: the controller
 * owns the keys, their syntax and their defaults, and checks them all before
 * changing any, so the CLI only checks the shape (a key, then '=') and a new
 * key or syntax needs no new CLI. Durations print in the short forms settings:set reads
 * back ("500ms", "60s", "5m").
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util.h"
#include "wire.h"

#define SETTINGS_MAX_VARS 32
#define NCOLS 14

/* A limit as it was set: "512M", "0.5", "256"; "-" for none. */
static void
fmt_limit(char kind, uint64_t v, char out[32])
{
    if (v == 0)
        snprintf(out, 32, "-");
    else if (kind == 'm' && v % (1ull << 30) == 0)
        snprintf(out, 32, "%" PRIu64 "G", v >> 30);
    else if (kind == 'm' && v % (1ull << 20) == 0)
        snprintf(out, 32, "%" PRIu64 "M", v >> 20);
    else if (kind == 'm' && v % 1024 == 0)
        snprintf(out, 32, "%" PRIu64 "K", v >> 10);
    else if (kind == 'c')
        snprintf(out, 32, "%" PRIu64 ".%03" PRIu64, v / 1000, v % 1000);
    else
        snprintf(out, 32, "%" PRIu64, v);
    if (kind == 'c' && v != 0) /* 0.500 -> 0.5 */
        for (size_t n = strlen(out); out[n - 1] == '0' || out[n - 1] == '.'; n--) {
            bool dot = out[n - 1] == '.';

            out[n - 1] = '\0';
            if (dot)
                break;
        }
}

static int
settings_row(struct cli_table *tab, const Drover__TypeSettings *t)
{
    char qty[16], boot[32], grace[32], healthy[32], deploy[64], delay[32];
    char mem[32], cpu[32], pids[32], nofile[32];
    const char *row[NCOLS] = {cli_str(t->type),
                              qty,
                              cli_str(t->health),
                              boot,
                              grace,
                              cli_str(t->max_surge),
                              cli_str(t->max_unavailable),
                              healthy,
                              deploy,
                              delay,
                              mem,
                              cpu,
                              pids,
                              nofile};

    snprintf(qty, sizeof(qty), "%u", t->quantity);
    cli_fmt_duration(t->boot_timeout_ms, boot);
    cli_fmt_duration(t->grace_ms, grace);
    cli_fmt_duration(t->min_healthy_ms, healthy);
    cli_fmt_duration(t->deploy_timeout_ms, deploy);
    if (strcmp(cli_str(t->type), "release") == 0) { /* never rolled out: its phase's limit */
        char d[32];

        cli_fmt_duration(t->deploy_timeout_ms, d);
        snprintf(deploy, sizeof(deploy), "release_timeout=%s", d);
    }
    cli_fmt_duration(t->shutdown_delay_ms, delay);
    fmt_limit('m', t->memory_bytes, mem);
    fmt_limit('c', t->cpu_milli, cpu);
    fmt_limit('n', t->pids, pids);
    fmt_limit('n', t->nofile, nofile);
    return cli_table_row(tab, row);
}

int
cli_settings_print(FILE *out, Drover__TypeSettings **types, size_t n, const char *only, bool json)
{
    static const char *const head[NCOLS] = {
        "TYPE",   "QTY",         "HEALTH",      "BOOT",           "GRACE",
        "SURGE",  "UNAVAILABLE", "MIN_HEALTHY", "DEPLOY_TIMEOUT", "SHUTDOWN_DELAY",
        "MEMORY", "CPU",         "PIDS",        "NOFILE"};
    struct cli_table *tab;
    int rc;

    if (json) {
        cli_json_print(out, jout_settings(types, n, only));
        return 0;
    }
    tab = cli_table_new(NCOLS);
    if (tab == NULL)
        return -ENOMEM;
    rc = cli_table_row(tab, head);
    for (size_t i = 0; i < n && rc == 0; i++)
        if (only == NULL || strcmp(cli_str(types[i]->type), only) == 0)
            rc = settings_row(tab, types[i]);
    if (rc == 0)
        cli_table_print(tab, out, NULL);
    cli_table_free(tab);
    return rc;
}

/* Send req expecting a SettingsRep; the caller frees *rep. Returns an exit status. */
static int
settings_call(Drover__Message *req, Drover__Message **rep)
{
    struct cli_client *c = NULL;
    int rc;

    if ((rc = cli_connect(&c)) != CLI_OK)
        return rc;
    rc = cli_call(c, req, DROVER__MESSAGE__BODY_SETTINGS_REP, rep);
    cli_client_free(c);
    return rc == 0 ? CLI_OK : CLI_FAIL;
}

int
cli_cmd_settings(int argc, char **argv)
{
    bool json = false;
    struct cli_flag flags[] = {{"json", 0, false, &json, NULL}};
    Drover__Message req = DROVER__MESSAGE__INIT, *rep = NULL;
    Drover__SettingsReq body = DROVER__SETTINGS_REQ__INIT;
    Drover__SettingsRep *r;
    char err[256], *pos[1];
    int npos, rc;

    if (cli_args_parse(argc, argv, flags, ARRAY_SIZE(flags), pos, 1, &npos, err, sizeof(err)) < 0)
        return cli_usage("settings", "%s", err);
    if (npos < 1)
        return cli_usage("settings", "missing APP");
    if ((rc = cli_app_arg("settings", pos[0])) != CLI_OK)
        return rc;
    body.app = pos[0];
    req.body_case = DROVER__MESSAGE__BODY_SETTINGS_REQ;
    req.settings_req = &body;
    if ((rc = settings_call(&req, &rep)) != CLI_OK)
        return rc;
    r = rep->settings_rep;
    if (!json && r->n_types == 0) {
        printf("%s has no process types yet. Deploy with: drover deploy %s DIR\n", pos[0], pos[0]);
    } else {
        if (!json)
            printf("=== %s Process Type Settings\n", pos[0]);
        if (cli_settings_print(stdout, r->types, r->n_types, NULL, json) < 0)
            rc = cli_fail("out of memory");
    }
    wire_msg_free(rep);
    return rc;
}

/* "KEY=VALUE" as typed: only the shape is ours to check. */
static int
check_setting(const char *arg, char *err, size_t errsz)
{
    const char *eq = strchr(arg, '=');

    if (eq == NULL || eq == arg) {
        snprintf(err, errsz, "'%.40s': settings are KEY=VALUE, like boot_timeout=30s", arg);
        return -EINVAL;
    }
    return 0;
}

int
cli_cmd_settings_set(int argc, char **argv)
{
    bool json = false;
    struct cli_flag flags[] = {{"json", 0, false, &json, NULL}};
    Drover__Message req = DROVER__MESSAGE__INIT, *rep = NULL;
    Drover__SettingsSetReq body = DROVER__SETTINGS_SET_REQ__INIT;
    Drover__KeyValue kv[SETTINGS_MAX_VARS], *kvp[SETTINGS_MAX_VARS];
    char err[320], *pos[SETTINGS_MAX_VARS + 3];
    int npos, rc;
    size_t n;

    if (cli_args_parse(argc, argv, flags, ARRAY_SIZE(flags), pos, SETTINGS_MAX_VARS + 3, &npos, err,
                       sizeof(err)) < 0)
        return cli_usage("settings:set", "%s", err);
    if (npos < 3)
        return cli_usage("settings:set", "%s",
                         npos < 1   ? "missing APP"
                         : npos < 2 ? "missing TYPE"
                                    : "missing KEY=VALUE");
    if ((rc = cli_app_arg("settings:set", pos[0])) != CLI_OK)
        return rc;
    if (!name_type_valid(pos[1]))
        return cli_usage("settings:set", "'%.40s' is not a process type (like web or worker)",
                         pos[1]);
    n = (size_t)npos - 2;
    if (n > SETTINGS_MAX_VARS)
        return cli_usage("settings:set", "at most %d settings at once", SETTINGS_MAX_VARS);
    for (size_t i = 0; i < n; i++) {
        char *arg = pos[i + 2], *eq;

        if (check_setting(arg, err, sizeof(err)) < 0)
            return cli_usage("settings:set", "%s", err);
        eq = strchr(arg, '=');
        *eq = '\0'; /* argv is ours to edit */
        drover__key_value__init(&kv[i]);
        kv[i].key = arg;
        kv[i].value = eq + 1;
        kvp[i] = &kv[i];
    }
    body.app = pos[0];
    body.type = pos[1];
    body.n_vars = n;
    body.vars = kvp;
    req.body_case = DROVER__MESSAGE__BODY_SETTINGS_SET_REQ;
    req.settings_set_req = &body;
    if ((rc = settings_call(&req, &rep)) != CLI_OK)
        return rc;
    if (!json)
        printf("Updated the settings of %s %s:\n", pos[0], pos[1]);
    if (cli_settings_print(stdout, rep->settings_rep->types, rep->settings_rep->n_types, pos[1],
                           json) < 0)
        rc = cli_fail("out of memory");
    wire_msg_free(rep);
    return rc;
}
