/* SPDX-License-Identifier: MIT */
/*
 * cmd_config.c: `drover config`, `config:set` and `config:unset`.
 *
 * Keys and values are checked here (key rule, value size, no key twice) so
 * that a bad one is refused with exit 2 and nothing is sent. Human output
 * follows heroku: "KEY: value" with the values aligned.
 *
 * A change to an app that has a release makes a new release, which the
 * controller rolls out like a deploy. config:set and config:unset do not wait
 * for it (deploy and rollback do): they say the rollout began, and that
 * `drover ps` shows it. Whether a release was made is seen by comparing the
 * reply's release with the app's before the change.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "dotenv.h"
#include "util.h"
#include "wire.h"

static int
print_vars(Drover__KeyValue **vars, size_t n)
{
    struct cli_table *t = cli_table_new(2);
    int rc = 0;

    if (t == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char key[CONFIG_KEY_MAX + 2];
        const char *row[2] = {key, cli_str(vars[i]->value)};

        snprintf(key, sizeof(key), "%s:", cli_str(vars[i]->key));
        rc = cli_table_row(t, row);
    }
    if (rc == 0)
        cli_table_print(t, stdout, NULL);
    cli_table_free(t);
    return rc;
}

/*
 * Send req about app expecting a ConfigRep; the caller frees *rep. With
 * before, first read the app's release into it. Returns an exit status.
 */
static int
config_call(const char *app, Drover__Message *req, Drover__Message **rep, uint32_t *before)
{
    struct cli_client *c = NULL;
    int rc;

    if ((rc = cli_connect(&c)) != CLI_OK)
        return rc;
    if (before != NULL) {
        Drover__Message *arep = NULL;
        Drover__AppInfo *info;

        rc = cli_app_get(c, app, &arep, &info);
        if (rc == 0) {
            *before = info->release;
            wire_msg_free(arep);
        }
    }
    if (rc == 0)
        rc = cli_call(c, req, DROVER__MESSAGE__BODY_CONFIG_REP, rep);
    cli_client_free(c);
    return rc == 0 ? CLI_OK : CLI_FAIL;
}

static void
print_done(const char *what, const char *app, Drover__ConfigRep *r, uint32_t before)
{
    if (r->release > 0)
        printf("%s on %s... done, v%u\n", what, app, r->release);
    else
        printf("%s on %s... done (no release yet: applies from the first deploy)\n", what, app);
    if (r->release > 0 && r->release != before)
        printf("Releasing v%u: rolling out (not waited for, as drover deploy would; drover ps %s "
               "shows progress)\n",
               r->release, app);
}

int
cli_cmd_config(int argc, char **argv)
{
    bool json = false;
    struct cli_flag flags[] = {{"json", 0, false, &json, NULL}};
    Drover__Message req = DROVER__MESSAGE__INIT, *rep = NULL;
    Drover__ConfigReq body = DROVER__CONFIG_REQ__INIT;
    char err[256], *pos[1];
    int npos, rc;

    if (cli_args_parse(argc, argv, flags, ARRAY_SIZE(flags), pos, 1, &npos, err, sizeof(err)) < 0)
        return cli_usage("config", "%s", err);
    if (npos < 1)
        return cli_usage("config", "missing APP");
    if ((rc = cli_app_arg("config", pos[0])) != CLI_OK)
        return rc;
    body.app = pos[0];
    req.body_case = DROVER__MESSAGE__BODY_CONFIG_REQ;
    req.config_req = &body;
    if ((rc = config_call(pos[0], &req, &rep, NULL)) != CLI_OK)
        return rc;
    if (json) {
        cli_json_print(stdout, jout_config(rep->config_rep));
    } else if (rep->config_rep->n_vars == 0) {
        printf("%s has no config vars.\n", pos[0]);
    } else {
        printf("=== %s Config Vars\n", pos[0]);
        if (print_vars(rep->config_rep->vars, rep->config_rep->n_vars) < 0)
            rc = cli_fail("out of memory");
    }
    wire_msg_free(rep);
    return rc;
}

/* "A, B and C" into out */
static void
join_keys(char **keys, size_t n, char *out, size_t outsz)
{
    size_t used = 0;

    out[0] = '\0';
    for (size_t i = 0; i < n && used < outsz; i++) {
        const char *sep = i == 0 ? "" : i + 1 == n ? " and " : ", ";
        int w = snprintf(out + used, outsz - used, "%s%s", sep, keys[i]);

        if (w < 0)
            break;
        used += (size_t)w;
    }
}

static bool
key_seen(char **keys, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i], key) == 0)
            return true;
    return false;
}

/* Read FILE as the npm dotenv package does; every key must suit drover.
 * Prints the reason (with the line) and returns CLI_USAGE on bad input. */
static int
read_env_file(const char *path, struct dotenv_var **vars, size_t *n)
{
    char err[320], *text = NULL;
    struct stat st;
    size_t len;
    FILE *f;
    int rc = CLI_USAGE;

    *vars = NULL;
    *n = 0;
    if ((f = fopen(path, "rb")) == NULL || fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
        cli_fail("--env-file %s: %s", path, f == NULL ? strerror(errno) : "not a regular file");
        goto out;
    }
    if (st.st_size > DOTENV_MAX_SIZE) {
        cli_fail("--env-file %s: larger than %u bytes", path, DOTENV_MAX_SIZE);
        goto out;
    }
    if ((text = malloc((size_t)st.st_size + 1)) == NULL) {
        rc = cli_fail("out of memory");
        goto out;
    }
    len = fread(text, 1, (size_t)st.st_size, f);
    if (dotenv_parse(text, len, vars, n, err, sizeof(err)) < 0) {
        cli_fail("%s: %s; nothing was changed", path, err);
        goto out;
    }
    for (size_t i = 0; i < *n; i++) {
        const struct dotenv_var *v = &(*vars)[i];
        const char *why = NULL;

        if (!name_config_key_valid(v->key))
            why = "not a config key (want [A-Za-z_][A-Za-z0-9_]*)";
        else if (name_config_key_reserved(v->key) != NULL)
            why = name_config_key_reserved(v->key);
        else if (strlen(v->value) > CONFIG_VALUE_MAX)
            why = "its value is too long";
        if (why != NULL) {
            cli_fail("%s: line %u: %s: %s; nothing was changed", path, v->line, v->key, why);
            dotenv_free(*vars, *n);
            *vars = NULL;
            *n = 0;
            goto out;
        }
    }
    rc = CLI_OK;
out:
    if (f != NULL)
        fclose(f);
    free(text);
    return rc;
}

int
cli_cmd_config_set(int argc, char **argv)
{
    Drover__Message req = DROVER__MESSAGE__INIT, *rep = NULL;
    Drover__ConfigSetReq body = DROVER__CONFIG_SET_REQ__INIT;
    Drover__KeyValue *kv = NULL, **kvp = NULL;
    char **keys = NULL, **pos = NULL, err[320], what[1024];
    const char *env_file = NULL;
    struct cli_flag flags[] = {{"env-file", 0, true, NULL, &env_file}};
    struct dotenv_var *fv = NULL;
    size_t nfv = 0, nargs;
    uint32_t before = 0;
    int npos, rc = CLI_FAIL;
    size_t n = 0;

    pos = calloc((size_t)argc + 1, sizeof(*pos));
    if (pos == NULL)
        return cli_fail("out of memory");
    if (cli_args_parse(argc, argv, flags, ARRAY_SIZE(flags), pos, argc, &npos, err, sizeof(err)) <
        0) {
        rc = cli_usage("config:set", "%s", err);
        goto out;
    }
    if (npos < 1 || (npos < 2 && env_file == NULL)) {
        rc = cli_usage("config:set", "%s", npos < 1 ? "missing APP" : "missing K=V");
        goto out;
    }
    if ((rc = cli_app_arg("config:set", pos[0])) != CLI_OK)
        goto out;
    if (env_file != NULL && (rc = read_env_file(env_file, &fv, &nfv)) != CLI_OK)
        goto out;
    nargs = (size_t)npos - 1;
    if (nargs + nfv > CONFIG_MAX_VARS) {
        rc = cli_usage("config:set", "at most %d vars at once", CONFIG_MAX_VARS);
        goto out;
    }
    if (nargs + nfv == 0) {
        rc = cli_fail("%s has no variables: nothing to set", env_file);
        goto out;
    }
    kv = calloc(nargs + nfv, sizeof(*kv));
    kvp = calloc(nargs + nfv, sizeof(*kvp));
    keys = calloc(nargs + nfv, sizeof(*keys));
    if (kv == NULL || kvp == NULL || keys == NULL) {
        rc = cli_fail("out of memory");
        goto out;
    }
    for (size_t i = 0; i < nargs; i++) {
        const char *arg = pos[i + 1], *value;
        char key[CONFIG_KEY_MAX + 1];

        if (cli_parse_kv(arg, key, sizeof(key), &value, err, sizeof(err)) < 0) {
            rc = cli_usage("config:set", "%s", err);
            goto out;
        }
        if (key_seen(keys, i, key)) {
            rc = cli_usage("config:set", "%s given twice", key);
            goto out;
        }
        if (name_config_key_reserved(key) != NULL) {
            rc =
                cli_usage("config:set", "%s cannot be set: %s", key, name_config_key_reserved(key));
            goto out;
        }
        /* The key is the start of arg: cut it there (argv is ours to edit). */
        pos[i + 1][strlen(key)] = '\0';
        keys[i] = pos[i + 1];
        drover__key_value__init(&kv[i]);
        kv[i].key = keys[i];
        kv[i].value = (char *)value;
        kvp[i] = &kv[i];
    }
    n = nargs;
    /* The file's variables, unless K=V on the command line sets them too. */
    for (size_t i = 0; i < nfv; i++) {
        if (key_seen(keys, nargs, fv[i].key))
            continue;
        keys[n] = fv[i].key;
        drover__key_value__init(&kv[n]);
        kv[n].key = fv[i].key;
        kv[n].value = fv[i].value;
        kvp[n] = &kv[n];
        n++;
    }
    body.app = pos[0];
    body.n_vars = n;
    body.vars = kvp;
    req.body_case = DROVER__MESSAGE__BODY_CONFIG_SET_REQ;
    req.config_set_req = &body;
    if ((rc = config_call(pos[0], &req, &rep, &before)) != CLI_OK)
        goto out;
    join_keys(keys, n, what, sizeof(what));
    {
        char line[1100];

        snprintf(line, sizeof(line), "Setting %s", what);
        print_done(line, pos[0], rep->config_rep, before);
    }
    if (print_vars(kvp, n) < 0)
        rc = cli_fail("out of memory");
out:
    if (rep != NULL)
        wire_msg_free(rep);
    dotenv_free(fv, nfv);
    free(keys);
    free(kvp);
    free(kv);
    free(pos);
    return rc;
}

int
cli_cmd_config_unset(int argc, char **argv)
{
    Drover__Message req = DROVER__MESSAGE__INIT, *rep = NULL;
    Drover__ConfigUnsetReq body = DROVER__CONFIG_UNSET_REQ__INIT;
    char **pos = NULL, err[320], what[1024], line[1100];
    uint32_t before = 0;
    int npos, rc = CLI_FAIL;
    size_t n;

    pos = calloc((size_t)argc + 1, sizeof(*pos));
    if (pos == NULL)
        return cli_fail("out of memory");
    if (cli_args_parse(argc, argv, NULL, 0, pos, argc, &npos, err, sizeof(err)) < 0) {
        rc = cli_usage("config:unset", "%s", err);
        goto out;
    }
    if (npos < 2) {
        rc = cli_usage("config:unset", "%s", npos < 1 ? "missing APP" : "missing K");
        goto out;
    }
    if ((rc = cli_app_arg("config:unset", pos[0])) != CLI_OK)
        goto out;
    n = (size_t)npos - 1;
    if (n > CONFIG_MAX_VARS) {
        rc = cli_usage("config:unset", "at most %d keys at once", CONFIG_MAX_VARS);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (!name_config_key_valid(pos[i + 1])) {
            rc = cli_usage("config:unset",
                           "'%.40s': config key must match [A-Za-z_][A-Za-z0-9_]{0,254}",
                           pos[i + 1]);
            goto out;
        }
        if (key_seen(pos + 1, i, pos[i + 1])) {
            rc = cli_usage("config:unset", "%s given twice", pos[i + 1]);
            goto out;
        }
    }
    body.app = pos[0];
    body.n_keys = n;
    body.keys = pos + 1;
    req.body_case = DROVER__MESSAGE__BODY_CONFIG_UNSET_REQ;
    req.config_unset_req = &body;
    if ((rc = config_call(pos[0], &req, &rep, &before)) != CLI_OK)
        goto out;
    join_keys(pos + 1, n, what, sizeof(what));
    snprintf(line, sizeof(line), "Unsetting %s", what);
    print_done(line, pos[0], rep->config_rep, before);
out:
    if (rep != NULL)
        wire_msg_free(rep);
    free(pos);
    return rc;
}
