/* SPDX-License-Identifier: MIT */
/*
 * procfile.c: the Procfile parser, used by the CLI (to refuse a bad directory
 * before uploading) and by the controller (authoritative: it never trusts the
 * CLI's reading). It is fed untrusted bytes, so every limit is checked.
 */
#include "procfile.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static int fail(struct procfile *pf, char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
fail(struct procfile *pf, char *err, size_t errsz, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
    procfile_fini(pf);
    return -EINVAL;
}

static int
is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Parse one line (without its newline); 0 when it was blank or a comment. */
static int
parse_line(struct procfile *pf, const char *s, size_t len, int lineno, char *err, size_t errsz)
{
    char type[64];
    size_t i = 0, tlen, clen;
    const char *colon, *cmd;
    struct procfile_entry *e;

    while (i < len && is_space(s[i]))
        i++;
    if (i == len || s[i] == '#')
        return 0;
    s += i;
    len -= i;
    if ((colon = memchr(s, ':', len)) == NULL)
        return fail(pf, err, errsz, "line %d: expected 'TYPE: COMMAND'", lineno);
    tlen = (size_t)(colon - s);
    while (tlen > 0 && is_space(s[tlen - 1]))
        tlen--;
    if (tlen == 0 || tlen >= sizeof(type))
        return fail(pf, err, errsz, "line %d: bad process type", lineno);
    memcpy(type, s, tlen);
    type[tlen] = '\0';
    /* A NUL inside would hide the rest of the name from the checks below
     * (found by tests/fuzz/fuzz_procfile). */
    if (strlen(type) != tlen || !name_type_valid(type))
        return fail(
            pf, err, errsz,
            "line %d: bad process type '%.40s' (want letters, digits, '-' or '_', at most 30)",
            lineno, type);
    if (strcmp(type, "run") == 0)
        return fail(pf, err, errsz, "line %d: process type '%s' is reserved for one-off processes",
                    lineno, type);
    if (procfile_find(pf, type) != NULL)
        return fail(pf, err, errsz, "line %d: process type '%s' appears twice", lineno, type);
    cmd = colon + 1;
    clen = len - (size_t)(cmd - s);
    while (clen > 0 && is_space(*cmd))
        cmd++, clen--;
    while (clen > 0 && (is_space(cmd[clen - 1]) || cmd[clen - 1] == '\r'))
        clen--;
    if (clen == 0)
        return fail(pf, err, errsz, "line %d: missing command for type '%s'", lineno, type);
    if (clen > PROCFILE_MAX_COMMAND)
        return fail(pf, err, errsz, "line %d: command for type '%s' is too long", lineno, type);
    if (memchr(cmd, '\0', clen) != NULL)
        return fail(pf, err, errsz, "line %d: NUL byte in command for type '%s'", lineno, type);
    if (pf->n >= PROCFILE_MAX_TYPES)
        return fail(pf, err, errsz, "line %d: more than %d process types", lineno,
                    PROCFILE_MAX_TYPES);
    e = realloc(pf->entries, (pf->n + 1) * sizeof(*e));
    if (e == NULL)
        return fail(pf, err, errsz, "line %d: out of memory", lineno);
    pf->entries = e;
    e = &pf->entries[pf->n];
    memcpy(e->type, type, tlen + 1);
    if ((e->command = strndup(cmd, clen)) == NULL)
        return fail(pf, err, errsz, "line %d: out of memory", lineno);
    pf->n++;
    return 0;
}

int
procfile_parse(const char *text, size_t len, struct procfile *pf, char *err, size_t errsz)
{
    size_t start = 0;
    int lineno = 0, rc;

    pf->n = 0;
    pf->entries = NULL;
    if (len > PROCFILE_MAX_SIZE) {
        snprintf(err, errsz, "Procfile is larger than %u bytes", PROCFILE_MAX_SIZE);
        return -EINVAL;
    }
    while (start < len) {
        const char *nl = memchr(text + start, '\n', len - start);
        size_t end = nl != NULL ? (size_t)(nl - text) : len;
        size_t l = end - start;

        lineno++;
        if (l > 0 && text[start + l - 1] == '\r')
            l--;
        if ((rc = parse_line(pf, text + start, l, lineno, err, errsz)) < 0)
            return rc;
        start = end + 1;
    }
    if (pf->n == 0) {
        snprintf(err, errsz, "Procfile declares no process types");
        return -EINVAL;
    }
    return 0;
}

void
procfile_fini(struct procfile *pf)
{
    for (size_t i = 0; i < pf->n; i++)
        free(pf->entries[i].command);
    free(pf->entries);
    pf->entries = NULL;
    pf->n = 0;
}

const struct procfile_entry *
procfile_find(const struct procfile *pf, const char *type)
{
    for (size_t i = 0; i < pf->n; i++)
        if (strcmp(pf->entries[i].type, type) == 0)
            return &pf->entries[i];
    return NULL;
}
