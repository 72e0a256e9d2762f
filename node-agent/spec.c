/* SPDX-License-Identifier: MIT */
/*
 * spec.c: an Assignment from the wire, checked field by field and copied
 * into a struct agt_spec that the instance owns.
 *
 * Nothing from the network is trusted: a controller bug or a forged message
 * must not make the agent run a command in the wrong directory, bind outside
 * its port range, or pass a malformed variable to execve. A bad assignment
 * is refused with a reason and the rest of the set still runs. The process
 * environment is built here too, so that its exact contents (protocol.md,
 * "Instances") are unit-testable.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agt.h"
#include "slug.h"
#include "util.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static int
check_health(const char *h, const char *type, struct agt_spec *s, char *err, size_t errsz)
{
    if (!h || !*h) /* the controller's default applies; mirror it */
        s->health = strcmp(type, "web") == 0 ? AGT_HEALTH_TCP : AGT_HEALTH_NONE;
    else if (strcmp(h, "tcp") == 0)
        s->health = AGT_HEALTH_TCP;
    else if (strcmp(h, "none") == 0)
        s->health = AGT_HEALTH_NONE;
    else if (strncmp(h, "http:/", 6) == 0) {
        const char *path = h + 5;

        if (strlen(path) >= sizeof s->http_path || strpbrk(path, " \r\n\t")) {
            snprintf(err, errsz, "bad health path");
            return -EINVAL;
        }
        s->health = AGT_HEALTH_HTTP;
        strcpy(s->http_path, path);
    } else {
        snprintf(err, errsz, "health must be tcp, none or http:/PATH");
        return -EINVAL;
    }
    return 0;
}

/* NULL when every field is fine, else why not (possibly in buf). */
static const char *
check_fields(const Drover__Assignment *as, const struct agt_config *cfg, char *buf, size_t bufsz)
{
    const char *dot = strchr(as->name, '.');
    size_t tlen = strlen(as->type);

    if (as->id == 0)
        return "id 0";
    if (!name_app_valid(as->app))
        return "bad app name";
    if (!name_instance_valid(as->name))
        return "bad instance name";
    if (!name_type_valid(as->type) || !dot || (size_t)(dot - as->name) != tlen ||
        strncmp(as->name, as->type, tlen) != 0)
        return "type does not match the instance name";
    if (as->release == 0)
        return "release 0";
    if (!slug_sha_valid(as->slug_sha256))
        return "bad slug sha256";
    if (as->slug_size > SLUG_MAX_SIZE)
        return "slug too large";
    if (!as->command[0] || strlen(as->command) > AGT_MAX_COMMAND)
        return "command empty or longer than 4096 bytes";
    if (as->port < cfg->port_min || as->port > cfg->port_max) {
        snprintf(buf, bufsz, "port %u outside %u-%u", as->port, cfg->port_min, cfg->port_max);
        return buf;
    }
    if (as->n_env > CONFIG_MAX_VARS)
        return "too many config vars";
    for (size_t k = 0; k < as->n_env; k++) {
        if (!name_config_key_valid(as->env[k]->key))
            return "bad config key";
        if (strlen(as->env[k]->value) > CONFIG_VALUE_MAX)
            return "config value too long";
    }
    return NULL;
}

static char *
kv_join(const char *k, const char *v)
{
    size_t kl = strlen(k), vl = strlen(v);
    char *s = malloc(kl + vl + 2);

    if (!s)
        return NULL;
    memcpy(s, k, kl);
    s[kl] = '=';
    memcpy(s + kl + 1, v, vl + 1);
    return s;
}

int
agt_spec_new(const Drover__Assignment *as, const struct agt_config *cfg, struct agt_spec **out,
             char *err, size_t errsz)
{
    struct agt_spec *s = NULL;
    const char *why;
    int rc;

    *out = NULL;
    why = check_fields(as, cfg, err, errsz);
    if (why) {
        if (why != err)
            snprintf(err, errsz, "%s", why);
        rc = -EINVAL;
        goto out;
    }
    rc = -ENOMEM;
    s = calloc(1, sizeof *s);
    if (!s)
        goto out;
    s->refs = 1;
    rc = check_health(as->health, as->type, s, err, errsz);
    if (rc < 0)
        goto out;
    rc = -ENOMEM;
    s->id = as->id;
    snprintf(s->app, sizeof s->app, "%s", as->app);
    snprintf(s->name, sizeof s->name, "%s", as->name);
    snprintf(s->type, sizeof s->type, "%s", as->type);
    s->release = as->release;
    snprintf(s->sha, sizeof s->sha, "%s", as->slug_sha256);
    s->size = as->slug_size;
    s->port = (uint16_t)as->port;
    s->grace_ms = as->grace_ms ? as->grace_ms : AGT_DEFAULT_GRACE_MS;
    s->boot_timeout_ms = as->boot_timeout_ms ? as->boot_timeout_ms : AGT_DEFAULT_BOOT_MS;
    /* 0 is meant for these two (up at the first pass; SIGTERM at once): no default. */
    s->min_healthy_ms = as->min_healthy_ms;
    s->shutdown_delay_ms = as->shutdown_delay_ms;
    s->limits.memory = as->memory_bytes;
    s->limits.cpu_milli = as->cpu_milli;
    s->limits.pids = as->pids;
    s->limits.nofile = as->nofile;
    s->oneoff = as->oneoff;
    s->attach = as->oneoff && as->attach;
    s->tty = s->attach && as->tty;
    s->rows = as->rows <= 10000 ? (uint16_t)as->rows : 0;
    s->cols = as->cols <= 10000 ? (uint16_t)as->cols : 0;
    s->command = strdup(as->command);
    s->env = calloc(as->n_env + 1, sizeof *s->env);
    if (!s->command || !s->env)
        goto out;
    for (size_t k = 0; k < as->n_env; k++, s->nenv++) {
        s->env[k] = kv_join(as->env[k]->key, as->env[k]->value);
        if (!s->env[k])
            goto out;
    }
    *out = s;
    s = NULL;
    rc = 0;
out:
    if (rc == -ENOMEM)
        snprintf(err, errsz, "out of memory");
    agt_spec_free(s);
    return rc;
}

struct agt_spec *
agt_spec_ref(struct agt_spec *s)
{
    s->refs++;
    return s;
}

bool
agt_spec_same(const struct agt_spec *a, const struct agt_spec *b)
{
    if (a->id != b->id || strcmp(a->app, b->app) != 0 || strcmp(a->name, b->name) != 0 ||
        strcmp(a->type, b->type) != 0 || a->release != b->release || strcmp(a->sha, b->sha) != 0 ||
        a->size != b->size || a->port != b->port || a->health != b->health ||
        strcmp(a->http_path, b->http_path) != 0 || a->grace_ms != b->grace_ms ||
        a->boot_timeout_ms != b->boot_timeout_ms || a->min_healthy_ms != b->min_healthy_ms ||
        a->shutdown_delay_ms != b->shutdown_delay_ms || a->oneoff != b->oneoff ||
        a->attach != b->attach || a->tty != b->tty || a->rows != b->rows || a->cols != b->cols ||
        a->limits.memory != b->limits.memory || a->limits.cpu_milli != b->limits.cpu_milli ||
        a->limits.pids != b->limits.pids || a->limits.nofile != b->limits.nofile ||
        a->nenv != b->nenv || strcmp(a->command, b->command) != 0)
        return false;
    for (size_t k = 0; k < a->nenv; k++)
        if (strcmp(a->env[k], b->env[k]) != 0)
            return false;
    return true;
}

void
agt_spec_free(struct agt_spec *s)
{
    if (!s || --s->refs > 0)
        return;
    for (size_t k = 0; k < s->nenv; k++)
        free(s->env[k]);
    free(s->env);
    free(s->command);
    free(s);
}

/* Put "K=V" (taking ownership) into envp, replacing an earlier K. */
static void
env_put(char **envp, size_t *n, char *kv)
{
    size_t kl = strcspn(kv, "=");

    for (size_t k = 0; k < *n; k++) {
        if (strncmp(envp[k], kv, kl + 1) == 0) {
            free(envp[k]);
            envp[k] = kv;
            return;
        }
    }
    envp[(*n)++] = kv;
}

int
agt_env_build(const struct agt_spec *s, const char *home, char ***envp)
{
    char num[32], rel[16];
    const char *fixed[][2] = {{"PATH", DEFAULT_PATH}, {"HOME", home}, {"LANG", "C.UTF-8"}};
    const char *last[][2] = {{"PORT", num},          {"DYNO", s->name},       {"PS", s->name},
                             {"DROVER_APP", s->app}, {"DROVER_RELEASE", rel}, {"TERM", "xterm"}};
    size_t n = 0, cap = ARRAY_SIZE(fixed) + s->nenv + ARRAY_SIZE(last) + 1;
    char **e = calloc(cap, sizeof *e);
    char *kv;
    int rc = -ENOMEM;

    *envp = NULL;
    if (!e)
        goto out;
    snprintf(num, sizeof num, "%u", (unsigned)s->port);
    snprintf(rel, sizeof rel, "%u", (unsigned)s->release);
    for (size_t k = 0; k < ARRAY_SIZE(fixed); k++) {
        if (!(kv = kv_join(fixed[k][0], fixed[k][1])))
            goto out;
        env_put(e, &n, kv);
    }
    for (size_t k = 0; k < s->nenv; k++) {
        if (!(kv = strdup(s->env[k])))
            goto out;
        env_put(e, &n, kv);
    }
    for (size_t k = 0; k < ARRAY_SIZE(last); k++) {
        if (strcmp(last[k][0], "TERM") == 0 && !s->tty)
            continue; /* only a terminal session says what terminal it is */
        if (!(kv = kv_join(last[k][0], last[k][1])))
            goto out;
        env_put(e, &n, kv);
    }
    *envp = e;
    e = NULL;
    rc = 0;
out:
    agt_env_free(e);
    return rc;
}

void
agt_env_free(char **envp)
{
    if (!envp)
        return;
    for (char **p = envp; *p; p++)
        free(*p);
    free(envp);
}

int
agt_release_dir(const char *data_dir, const char *app, uint32_t release, const char *sha, char *out,
                size_t outsz)
{
    return strfmt(out, outsz, "%s/releases/%s/v%u-%.12s", data_dir, app, (unsigned)release, sha);
}

/*
 * Why "exec": dash, Debian's /bin/sh, forks for the last command of `sh -c`
 * instead of replacing itself. The shell then leads the process group, dies
 * at once on the drain's SIGTERM, and leaves the app orphaned (reaped by
 * init, late on some machines) while it shuts down; and every spawn costs a
 * second fork and exec. Prefixing "exec" to a simple command makes the app
 * itself the group leader and our child: it gets SIGTERM directly and its
 * exit is seen at once.
 *
 * The prefix must never change what the line means, since a command (a
 * Procfile line, a one-off's single argument) is a shell command line as it
 * is. So it is added only when the first word plainly names a program: made
 * of characters that are never shell syntax, no '=' (an assignment), and not
 * a builtin or reserved word of dash or bash (`exec exit 4` looks for a
 * program called exit; `exec cd /tmp` for one called cd; `exec echo` would
 * run /bin/echo, which reads backslashes differently). Anything that is not
 * plainly one command (lists, pipes, subshells, braces, several lines) runs
 * as written; a quoted ';' also counts, which only costs the optimisation.
 */
static const char *const sh_builtins[] = {
    /* reserved words */
    "!", "[[", "]]", "{", "}", "case", "coproc", "do", "done", "elif", "else", "esac", "fi", "for",
    "function", "if", "in", "select", "then", "time", "until", "while",
    /* builtins of dash and bash, POSIX special builtins included */
    ".", ":", "[", "alias", "bg", "break", "builtin", "caller", "cd", "chdir", "command", "compgen",
    "complete", "compopt", "continue", "declare", "dirs", "disown", "echo", "enable", "eval",
    "exec", "exit", "export", "false", "fc", "fg", "getopts", "hash", "help", "history", "jobs",
    "kill", "let", "local", "logout", "mapfile", "popd", "printf", "pushd", "pwd", "read",
    "readarray", "readonly", "return", "set", "shift", "shopt", "source", "suspend", "test",
    "times", "trap", "true", "type", "typeset", "ulimit", "umask", "unalias", "unset", "wait"};

/* A character that is never shell syntax in a word. */
static bool
plain_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("_./+-,:@%", c) != NULL;
}

bool
agt_shell_execable(const char *cmd)
{
    const char *p = cmd, *w;
    size_t wlen;

    if (strpbrk(cmd, ";&|\n(){}`") != NULL)
        return false;
    while (*p == ' ' || *p == '\t')
        p++;
    for (w = p; *p != '\0' && *p != ' ' && *p != '\t'; p++)
        if (!plain_char(*p))
            return false; /* quotes, $, globs, redirections, '=' ... */
    wlen = (size_t)(p - w);
    if (wlen == 0)
        return false;
    for (size_t k = 0; k < ARRAY_SIZE(sh_builtins); k++)
        if (strlen(sh_builtins[k]) == wlen && memcmp(sh_builtins[k], w, wlen) == 0)
            return false;
    return true;
}

char *
agt_shell_command(const char *cmd)
{
    char *out;

    if (!agt_shell_execable(cmd))
        return strdup(cmd);
    out = malloc(strlen(cmd) + sizeof("exec "));
    if (out != NULL) {
        memcpy(out, "exec ", 5);
        memcpy(out + 5, cmd, strlen(cmd) + 1);
    }
    return out;
}
