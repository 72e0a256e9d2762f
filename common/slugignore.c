/* SPDX-License-Identifier: MIT */
/*
 * slugignore.c: .slugignore patterns and their matching (see slugignore.h).
 *
 * A path is left out when it, or any directory above it, matches a pattern:
 * the packer does not descend into a directory left out, and this rule gives
 * the same answer to a caller asking about a file deep inside one. The glob
 * matcher is written here rather than taken from fnmatch(3) because `**`
 * (any number of whole components) is not in POSIX.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "slugignore.h"

struct pattern {
    char *glob;    /* without the leading and trailing '/' */
    bool anchored; /* relative to the root, else any depth */
    bool dir_only;
};

struct slugignore {
    struct pattern *v;
    size_t n;
};

/* [...] at *pp against c; advances *pp past the class. */
static bool
class_match(const char **pp, char c, bool *ok)
{
    const char *p = *pp + 1;
    bool neg = false, hit = false;

    if (*p == '!' || *p == '^') {
        neg = true;
        p++;
    }
    if (*p == ']') { /* a ']' first is a member */
        hit |= c == ']';
        p++;
    }
    while (*p != '\0' && *p != ']') {
        char lo = *p, hi;

        if (lo == '\\' && p[1] != '\0')
            lo = *++p;
        hi = lo;
        if (p[1] == '-' && p[2] != '\0' && p[2] != ']') {
            hi = p[2] == '\\' && p[3] != '\0' ? p[3] : p[2];
            p += p[2] == '\\' ? 3 : 2;
        }
        hit |= c >= lo && c <= hi;
        p++;
    }
    if (*p != ']') { /* no closing ']': a literal '[' */
        *ok = c == '[';
        *pp += 1;
        return true;
    }
    *pp = p + 1;
    *ok = hit != neg && c != '/';
    return true;
}

static bool
glob(const char *start, const char *p, const char *s)
{
    for (;;) {
        if (*p == '\0')
            return *s == '\0';
        if (p[0] == '*' && p[1] == '*' && (p == start || p[-1] == '/') &&
            (p[2] == '/' || p[2] == '\0')) {
            if (p[2] == '\0')
                return true;            /* "dir" then "/" and "**": everything below */
            for (const char *t = s;;) { /* "**" + "/": zero or more components */
                if (glob(start, p + 3, t))
                    return true;
                if ((t = strchr(t, '/')) == NULL)
                    return false;
                t++;
            }
        }
        if (*p == '*') {
            while (*p == '*')
                p++;
            for (const char *t = s;; t++) {
                if (glob(start, p, t))
                    return true;
                if (*t == '\0' || *t == '/')
                    return false;
            }
        }
        if (*s == '\0')
            return false;
        if (*p == '?') {
            if (*s == '/')
                return false;
        } else if (*p == '[') {
            bool ok;

            class_match(&p, *s, &ok);
            if (!ok)
                return false;
            s++;
            continue;
        } else {
            if (*p == '\\' && p[1] != '\0')
                p++;
            if (*p != *s)
                return false;
        }
        p++;
        s++;
    }
}

static bool
one(const struct pattern *pt, const char *rel, bool is_dir)
{
    const char *base;

    if (pt->dir_only && !is_dir)
        return false;
    if (pt->anchored)
        return glob(pt->glob, pt->glob, rel);
    base = strrchr(rel, '/');
    return glob(pt->glob, pt->glob, base != NULL ? base + 1 : rel);
}

bool
slugignore_match(const struct slugignore *si, const char *rel, bool is_dir)
{
    char path[4096];
    size_t len = strlen(rel), i, k;

    if (si == NULL || len == 0 || len >= sizeof(path))
        return false;
    memcpy(path, rel, len + 1);
    /* The path itself, then each directory above it. */
    for (i = len + 1; i-- > 0;) {
        if (i < len && path[i] != '/')
            continue;
        path[i] = '\0';
        if (path[0] == '\0')
            break;
        for (k = 0; k < si->n; k++)
            if (one(&si->v[k], path, i == len ? is_dir : true))
                return true;
    }
    return false;
}

static int
add(struct slugignore *si, const char *line, size_t len)
{
    struct pattern pt = {0}, *nv;

    while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t') &&
           !(len > 1 && line[len - 2] == '\\'))
        len--;
    while (len > 0 && (line[0] == ' ' || line[0] == '\t')) {
        line++;
        len--;
    }
    if (len == 0 || line[0] == '#' || line[0] == '!')
        return 0; /* blank, a comment, or a negation (not in Heroku's syntax) */
    if (len > 1 && line[len - 1] == '/') {
        pt.dir_only = true;
        len--;
    }
    if (line[0] == '/') {
        pt.anchored = true;
        line++;
        len--;
    }
    while (len > 2 && memcmp(line, "./", 2) == 0) { /* "./tmp" is "/tmp" */
        pt.anchored = true;
        line += 2;
        len -= 2;
    }
    if (len == 0)
        return 0;
    if (memchr(line, '/', len) != NULL)
        pt.anchored = true;
    if ((pt.glob = strndup(line, len)) == NULL)
        return -ENOMEM;
    if ((nv = realloc(si->v, (si->n + 1) * sizeof(*nv))) == NULL) {
        free(pt.glob);
        return -ENOMEM;
    }
    si->v = nv;
    si->v[si->n++] = pt;
    return 0;
}

int
slugignore_parse(const char *text, size_t len, struct slugignore **out)
{
    struct slugignore *si = calloc(1, sizeof(*si));
    size_t i = 0, j;
    int rc = 0;

    *out = NULL;
    if (si == NULL)
        return -ENOMEM;
    if (len > SLUGIGNORE_MAX_SIZE || memchr(text, '\0', len) != NULL) {
        slugignore_free(si);
        return -EINVAL;
    }
    while (i < len && rc == 0) {
        for (j = i; j < len && text[j] != '\n'; j++)
            ;
        rc = add(si, text + i, j > i && text[j - 1] == '\r' ? j - i - 1 : j - i);
        i = j + 1;
    }
    if (rc < 0) {
        slugignore_free(si);
        return rc;
    }
    *out = si;
    return 0;
}

void
slugignore_free(struct slugignore *si)
{
    if (si == NULL)
        return;
    for (size_t i = 0; i < si->n; i++)
        free(si->v[i].glob);
    free(si->v);
    free(si);
}

size_t
slugignore_count(const struct slugignore *si)
{
    return si != NULL ? si->n : 0;
}
