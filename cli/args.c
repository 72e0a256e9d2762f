/* SPDX-License-Identifier: MIT */
/*
 * args.c: command-line parsing — flags, positionals, TYPE=N and K=V.
 *
 * Our own small parser rather than getopt_long: its rules are few and exact
 * (flags anywhere, "--" ends them, "-m TEXT", "--timeout=30"), its errors are
 * ours to word, and it keeps no global state, so the unit tests can call it
 * freely. Everything is checked strictly here so that bad input is refused
 * with exit 2 before anything reaches the wire.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "util.h"

static const struct cli_flag *
flag_long(const struct cli_flag *flags, size_t nflags, const char *name, size_t len)
{
    for (size_t i = 0; i < nflags; i++)
        if (strlen(flags[i].name) == len && strncmp(flags[i].name, name, len) == 0)
            return &flags[i];
    return NULL;
}

static const struct cli_flag *
flag_short(const struct cli_flag *flags, size_t nflags, char c)
{
    for (size_t i = 0; i < nflags; i++)
        if (flags[i].short_name != 0 && flags[i].short_name == c)
            return &flags[i];
    return NULL;
}

/*
 * Apply flag f, typed as argv[*i], whose inline value ("--x=V", "-mV") is inl,
 * or NULL.
 */
static int
flag_apply(const struct cli_flag *f, const char *inl, int argc, char **argv, int *i, char *err,
           size_t errsz)
{
    if (!f->takes_value) {
        if (inl != NULL) {
            snprintf(err, errsz, "flag --%s takes no value", f->name);
            return -EINVAL;
        }
    } else if (inl == NULL) {
        if (*i + 1 >= argc) {
            snprintf(err, errsz, "flag %s needs a value", argv[*i]);
            return -EINVAL;
        }
        inl = argv[++*i];
    }
    if (f->set != NULL)
        *f->set = true;
    if (f->value != NULL)
        *f->value = inl;
    return 0;
}

int
cli_args_parse(int argc, char **argv, const struct cli_flag *flags, size_t nflags, char **pos,
               int maxpos, int *npos, char *err, size_t errsz)
{
    bool only_pos = false;

    *npos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const struct cli_flag *f = NULL;
        const char *inl = NULL;
        int rc;

        if (!only_pos && strcmp(a, "--") == 0) {
            only_pos = true;
            continue;
        }
        if (only_pos || a[0] != '-' || a[1] == '\0') {
            if (*npos >= maxpos) {
                snprintf(err, errsz, "unexpected argument '%s'", a);
                return -EINVAL;
            }
            pos[(*npos)++] = argv[i];
            continue;
        }
        if (a[1] == '-') {
            const char *eq = strchr(a + 2, '=');
            size_t len = eq != NULL ? (size_t)(eq - (a + 2)) : strlen(a + 2);

            f = flag_long(flags, nflags, a + 2, len);
            inl = eq != NULL ? eq + 1 : NULL;
        } else if (a[2] == '\0') {
            f = flag_short(flags, nflags, a[1]);
        } else {
            /* "-mTEXT" */
            f = flag_short(flags, nflags, a[1]);
            if (f != NULL && !f->takes_value)
                f = NULL;
            inl = a + 2;
        }
        if (f == NULL) {
            snprintf(err, errsz, "unknown flag '%s'", a);
            return -EINVAL;
        }
        rc = flag_apply(f, inl, argc, argv, &i, err, errsz);
        if (rc < 0)
            return rc;
    }
    return 0;
}

bool
cli_args_want_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return false;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return true;
    }
    return false;
}

/* Strict decimal: digits only, no sign, no space, at most max. */
static int
parse_decimal(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (*s == '\0')
        return -EINVAL;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return -EINVAL;
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > max)
            return -ERANGE;
    }
    *out = v;
    return 0;
}

int
cli_parse_scale(const char *arg, char *type, size_t typesz, int32_t *qty, char *err, size_t errsz)
{
    const char *eq = strchr(arg, '=');
    uint64_t v;
    size_t len;
    int rc;

    if (eq == NULL) {
        snprintf(err, errsz, "'%s' is not TYPE=N", arg);
        return -EINVAL;
    }
    len = (size_t)(eq - arg);
    if (len == 0 || len >= typesz || len > TYPE_NAME_MAX) {
        snprintf(err, errsz, "'%s': process type must match [A-Za-z0-9_-]{1,30}", arg);
        return -EINVAL;
    }
    memcpy(type, arg, len);
    type[len] = '\0';
    if (!name_type_valid(type)) {
        snprintf(err, errsz, "'%s': process type must match [A-Za-z0-9_-]{1,30}", arg);
        return -EINVAL;
    }
    rc = parse_decimal(eq + 1, CLI_SCALE_MAX, &v);
    if (rc == -ERANGE) {
        snprintf(err, errsz, "'%s': quantity must be at most %d", arg, CLI_SCALE_MAX);
        return -EINVAL;
    }
    if (rc < 0) {
        snprintf(err, errsz, "'%s': quantity must be a non-negative decimal number", arg);
        return -EINVAL;
    }
    *qty = (int32_t)v;
    return 0;
}

int
cli_parse_kv(const char *arg, char *key, size_t keysz, const char **value, char *err, size_t errsz)
{
    const char *eq = strchr(arg, '=');
    size_t len;

    if (eq == NULL) {
        snprintf(err, errsz, "'%s' is not KEY=VALUE", arg);
        return -EINVAL;
    }
    len = (size_t)(eq - arg);
    if (len == 0 || len >= keysz || len > CONFIG_KEY_MAX) {
        snprintf(err, errsz, "'%.40s': config key must match [A-Za-z_][A-Za-z0-9_]{0,254}", arg);
        return -EINVAL;
    }
    memcpy(key, arg, len);
    key[len] = '\0';
    if (!name_config_key_valid(key)) {
        snprintf(err, errsz, "'%.40s': config key must match [A-Za-z_][A-Za-z0-9_]{0,254}", key);
        return -EINVAL;
    }
    if (strlen(eq + 1) > CONFIG_VALUE_MAX) {
        snprintf(err, errsz, "value of %.40s is longer than %d bytes", key, CONFIG_VALUE_MAX);
        return -EINVAL;
    }
    *value = eq + 1;
    return 0;
}

int
cli_parse_seconds(const char *s, uint32_t max, uint32_t *out)
{
    uint64_t v;

    if (parse_decimal(s, max, &v) < 0 || v == 0)
        return -EINVAL;
    *out = (uint32_t)v;
    return 0;
}

int
cli_app_arg(const char *verb, const char *app)
{
    if (name_app_valid(app))
        return CLI_OK;
    return cli_usage(verb, "invalid app name '%s': must match [a-z][a-z0-9-]{0,29}", app);
}
