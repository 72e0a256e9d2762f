/* SPDX-License-Identifier: MIT */
/*
 * cmd_lifecycle.c: the verbs a Heroku user reaches for to handle what runs,
 * with no new release: `restart` (alias `ps:restart`), `ps:stop`,
 * `apps:destroy`, `config:get` and `nodes:remove`.
 *
 * restart waits like deploy does (the controller rolls a type or the app
 * exactly as a deploy, so the same watcher follows it); apps:destroy waits
 * until the controller has forgotten the app, which happens once its last
 * process is gone. apps:destroy never prompts unless stdin and stderr are
 * terminals: a script must say --confirm APP.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "util.h"
#include "wire.h"

#define DESTROY_WAIT_DEFAULT 120

/* Parse flags and exactly want positionals (want_max with optional ones). */
static int
args(const char *verb, int argc, char **argv, const struct cli_flag *flags, size_t nflags,
     char **pos, int want, int want_max, int *npos)
{
    char err[320];

    if (cli_args_parse(argc, argv, flags, nflags, pos, want_max + 1, npos, err, sizeof(err)) < 0)
        return cli_usage(verb, "%s", err);
    if (*npos < want)
        return cli_usage(verb, "missing %s", *npos == 0 ? "argument" : "argument after it");
    if (*npos > want_max)
        return cli_usage(verb, "too many arguments");
    return CLI_OK;
}

static int
call(Drover__Message *req, Drover__Message__BodyCase want, Drover__Message **rep,
     struct cli_client **cp)
{
    struct cli_client *c = NULL;
    int rc;

    if ((rc = cli_connect(&c)) != CLI_OK)
        return rc;
    if (cli_call(c, req, want, rep) < 0) {
        cli_client_free(c);
        return CLI_FAIL;
    }
    if (cp != NULL)
        *cp = c;
    else
        cli_client_free(c);
    return CLI_OK;
}

/* ---- restart ---- */

int
cli_cmd_restart(int argc, char **argv)
{
    Drover__Message req = DROVER__MESSAGE__INIT, *rep = NULL;
    Drover__RestartReq body = DROVER__RESTART_REQ__INIT;
    bool json = false, no_wait = false;
    const char *timeout = NULL;
    struct cli_flag flags[] = {{"json", 0, false, &json, NULL},
                               {"no-wait", 0, false, &no_wait, NULL},
                               {"timeout", 0, true, NULL, &timeout}};
    uint32_t timeout_s = CLI_DEPLOY_TIMEOUT_DEFAULT;
    struct cli_client *c = NULL;
    char *pos[3];
    int npos, rc, waited = 0;

    if ((rc = args("restart", argc, argv, flags, ARRAY_SIZE(flags), pos, 1, 2, &npos)) != CLI_OK)
        return rc;
    if ((rc = cli_app_arg("restart", pos[0])) != CLI_OK)
        return rc;
    if (timeout != NULL && cli_parse_seconds(timeout, CLI_DEPLOY_TIMEOUT_MAX, &timeout_s) < 0)
        return cli_usage("restart", "--timeout must be whole seconds from 1 to %d",
                         CLI_DEPLOY_TIMEOUT_MAX);
    body.app = pos[0];
    body.target = npos > 1 ? pos[1] : "";
    req.body_case = DROVER__MESSAGE__BODY_RESTART_REQ;
    req.restart_req = &body;
    if ((rc = call(&req, DROVER__MESSAGE__BODY_RESTART_REP, &rep, &c)) != CLI_OK)
        return rc;
    if (!json) {
        if (rep->restart_rep->n_names == 0)
            printf("Nothing of %s%s%s is running: nothing to restart.\n", pos[0],
                   npos > 1 ? " " : "", npos > 1 ? pos[1] : "");
        for (size_t i = 0; i < rep->restart_rep->n_names; i++)
            printf("Restarting %s.%s\n", pos[0], cli_str(rep->restart_rep->names[i]));
        fflush(stdout);
    }
    rc = CLI_OK;
    if (!no_wait && rep->restart_rep->n_names > 0) {
        waited =
            cli_rollout_wait_for(c, pos[0], rep->restart_rep->release, timeout_s, "restart", json);
        rc = waited == 0 ? CLI_OK : CLI_FAIL;
    }
    if (json) {
        cli_json_print(stdout, jout_restart(pos[0], rep->restart_rep,
                                            no_wait || rep->restart_rep->n_names == 0 ? "started"
                                            : waited == 0                             ? "succeeded"
                                                                                      : "failed"));
    } else if (no_wait && rep->restart_rep->n_names > 0) {
        printf("Restart under way (follow it with: drover ps %s)\n", pos[0]);
    }
    wire_msg_free(rep);
    cli_client_free(c);
    return rc;
}

/* ---- ps:stop ---- */

int
cli_cmd_ps_stop(int argc, char **argv)
{
    Drover__Message req = DROVER__MESSAGE__INIT, *rep = NULL;
    Drover__PsStopReq body = DROVER__PS_STOP_REQ__INIT;
    bool json = false;
    struct cli_flag flags[] = {{"json", 0, false, &json, NULL}};
    char *pos[3];
    int npos, rc;

    if ((rc = args("ps:stop", argc, argv, flags, ARRAY_SIZE(flags), pos, 2, 2, &npos)) != CLI_OK)
        return rc;
    if ((rc = cli_app_arg("ps:stop", pos[0])) != CLI_OK)
        return rc;
    body.app = pos[0];
    body.name = pos[1];
    req.body_case = DROVER__MESSAGE__BODY_PS_STOP_REQ;
    req.ps_stop_req = &body;
    if ((rc = call(&req, DROVER__MESSAGE__BODY_PS_STOP_REP, &rep, NULL)) != CLI_OK)
        return rc;
    if (json) {
        struct cli_json j;

        cli_json_init(&j, stdout);
        cli_json_begin_object(&j);
        cli_json_key(&j, "app");
        cli_json_string(&j, pos[0]);
        cli_json_key(&j, "name");
        cli_json_string(&j, pos[1]);
        cli_json_key(&j, "restarted");
        cli_json_bool(&j, rep->ps_stop_rep->restarted);
        cli_json_end_object(&j);
        cli_json_end(&j);
    } else if (rep->ps_stop_rep->restarted) {
        printf("Stopping %s.%s; it is part of the formation, so it is started again (to run "
               "fewer, scale down: drover scale %s TYPE=N)\n",
               pos[0], pos[1], pos[0]);
    } else {
        printf("Stopping %s.%s (SIGTERM, then SIGKILL after its grace period); it is not "
               "restarted\n",
               pos[0], pos[1]);
    }
    wire_msg_free(rep);
    return CLI_OK;
}

/* ---- apps:destroy ---- */

/* Ask on the terminal; true when the answer is the app's name. */
static bool
confirmed_on_tty(const char *app)
{
    char line[128];

    fprintf(stderr,
            "This destroys %s: every process, release, config var and slug of it.\n"
            "Type the app's name to confirm: ",
            app);
    if (fgets(line, sizeof(line), stdin) == NULL)
        return false;
    line[strcspn(line, "\r\n")] = '\0';
    return strcmp(line, app) == 0;
}

/* 1 while the controller still lists app, 0 once it does not, or < 0. */
static int
app_listed(struct cli_client *c, const char *app)
{
    Drover__Message req = DROVER__MESSAGE__INIT, *rep = NULL;
    Drover__AppsReq body = DROVER__APPS_REQ__INIT;
    int listed = 0;

    req.body_case = DROVER__MESSAGE__BODY_APPS_REQ;
    req.apps_req = &body;
    if (cli_call(c, &req, DROVER__MESSAGE__BODY_APPS_REP, &rep) < 0)
        return -EIO;
    for (size_t i = 0; i < rep->apps_rep->n_apps; i++)
        listed |= strcmp(cli_str(rep->apps_rep->apps[i]->name), app) == 0;
    wire_msg_free(rep);
    return listed;
}

int
cli_cmd_apps_destroy(int argc, char **argv)
{
    Drover__Message req = DROVER__MESSAGE__INIT, *rep = NULL;
    Drover__AppDestroyReq body = DROVER__APP_DESTROY_REQ__INIT;
    bool json = false, no_wait = false;
    const char *confirm = NULL, *timeout = NULL;
    struct cli_flag flags[] = {{"json", 0, false, &json, NULL},
                               {"no-wait", 0, false, &no_wait, NULL},
                               {"confirm", 0, true, NULL, &confirm},
                               {"timeout", 0, true, NULL, &timeout}};
    uint32_t timeout_s = DESTROY_WAIT_DEFAULT;
    struct cli_client *c = NULL;
    char *pos[2];
    int npos, rc, listed = 1;

    if ((rc = args("apps:destroy", argc, argv, flags, ARRAY_SIZE(flags), pos, 1, 1, &npos)) !=
        CLI_OK)
        return rc;
    if ((rc = cli_app_arg("apps:destroy", pos[0])) != CLI_OK)
        return rc;
    if (timeout != NULL && cli_parse_seconds(timeout, CLI_DEPLOY_TIMEOUT_MAX, &timeout_s) < 0)
        return cli_usage("apps:destroy", "--timeout must be whole seconds from 1 to %d",
                         CLI_DEPLOY_TIMEOUT_MAX);
    if (confirm == NULL && isatty(0) && isatty(2)) {
        if (!confirmed_on_tty(pos[0]))
            return cli_fail("not confirmed: %s is left as it is", pos[0]);
        confirm = pos[0];
    }
    if (confirm == NULL)
        return cli_usage("apps:destroy",
                         "destroying %s deletes everything of it: confirm with --confirm %s",
                         pos[0], pos[0]);
    if (strcmp(confirm, pos[0]) != 0)
        return cli_usage("apps:destroy", "--confirm %s does not match the app %s; nothing changed",
                         confirm, pos[0]);
    body.app = pos[0];
    body.confirm = (char *)confirm;
    req.body_case = DROVER__MESSAGE__BODY_APP_DESTROY_REQ;
    req.app_destroy_req = &body;
    if ((rc = call(&req, DROVER__MESSAGE__BODY_APP_DESTROY_REP, &rep, &c)) != CLI_OK)
        return rc;
    if (!json)
        printf("Destroying %s: stopping %u processes, deleting %u releases ...\n", pos[0],
               rep->app_destroy_rep->instances, rep->app_destroy_rep->releases);
    fflush(stdout);
    rc = CLI_OK;
    if (!no_wait) {
        uint64_t deadline = cli_mono_ms() + (uint64_t)timeout_s * 1000;

        while ((listed = app_listed(c, pos[0])) > 0 && cli_mono_ms() < deadline)
            cli_sleep_ms(200);
        if (listed != 0)
            rc = listed < 0 ? CLI_FAIL
                            : cli_fail("gave up waiting after %u s: %s is still stopping its "
                                       "processes (see: drover ps %s)",
                                       timeout_s, pos[0], pos[0]);
    }
    if (json) {
        cli_json_print(stdout, jout_destroy(pos[0], rep->app_destroy_rep, listed == 0));
    } else if (rc == CLI_OK) {
        printf(no_wait ? "%s is being destroyed\n" : "Destroyed %s\n", pos[0]);
    }
    wire_msg_free(rep);
    cli_client_free(c);
    return rc;
}

/* ---- config:get ---- */

int
cli_cmd_config_get(int argc, char **argv)
{
    Drover__Message req = DROVER__MESSAGE__INIT, *rep = NULL;
    Drover__ConfigReq body = DROVER__CONFIG_REQ__INIT;
    char *pos[3];
    int npos, rc;

    if ((rc = args("config:get", argc, argv, NULL, 0, pos, 2, 2, &npos)) != CLI_OK)
        return rc;
    if ((rc = cli_app_arg("config:get", pos[0])) != CLI_OK)
        return rc;
    if (!name_config_key_valid(pos[1]))
        return cli_usage("config:get", "invalid config key '%s' (want [A-Za-z_][A-Za-z0-9_]*)",
                         pos[1]);
    body.app = pos[0];
    req.body_case = DROVER__MESSAGE__BODY_CONFIG_REQ;
    req.config_req = &body;
    if ((rc = call(&req, DROVER__MESSAGE__BODY_CONFIG_REP, &rep, NULL)) != CLI_OK)
        return rc;
    rc = CLI_FAIL;
    for (size_t i = 0; i < rep->config_rep->n_vars; i++) {
        if (strcmp(cli_str(rep->config_rep->vars[i]->key), pos[1]) == 0) {
            printf("%s\n", cli_str(rep->config_rep->vars[i]->value));
            rc = CLI_OK;
        }
    }
    if (rc != CLI_OK)
        cli_fail("%s is not set for %s", pos[1], pos[0]);
    wire_msg_free(rep);
    return rc;
}

/* ---- nodes:remove ---- */

int
cli_cmd_nodes_remove(int argc, char **argv)
{
    Drover__Message req = DROVER__MESSAGE__INIT, *rep = NULL;
    Drover__NodeRemoveReq body = DROVER__NODE_REMOVE_REQ__INIT;
    bool json = false;
    struct cli_flag flags[] = {{"json", 0, false, &json, NULL}};
    char *pos[2];
    int npos, rc;

    if ((rc = args("nodes:remove", argc, argv, flags, ARRAY_SIZE(flags), pos, 1, 1, &npos)) !=
        CLI_OK)
        return rc;
    if (!name_node_valid(pos[0]))
        return cli_usage("nodes:remove", "invalid node name '%s'", pos[0]);
    body.node = pos[0];
    req.body_case = DROVER__MESSAGE__BODY_NODE_REMOVE_REQ;
    req.node_remove_req = &body;
    if ((rc = call(&req, DROVER__MESSAGE__BODY_NODE_REMOVE_REP, &rep, NULL)) != CLI_OK)
        return rc;
    if (json)
        printf("{\"node\": \"%s\", \"removed\": true}\n",
               pos[0]); /* a valid name needs no escape */
    else
        printf("Removed node %s (a new agent with its name registers afresh)\n", pos[0]);
    wire_msg_free(rep);
    return CLI_OK;
}
