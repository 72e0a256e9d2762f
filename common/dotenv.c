/* SPDX-License-Identifier: MIT */
/*
 * dotenv.c: the npm `dotenv` package's parse(), byte for byte.
 *
 * dotenv (lib/main.js, unchanged from 15.x to 18.x) runs one global,
 * multi-line regular expression over the text, with \r\n and \r first made
 * \n:
 *
 *   /(?:^|^)\s*(?:export\s+)?([\w.-]+)(?:\s*=\s*?|:\s+?)
 *    (\s*'(?:\\'|[^'])*'|\s*"(?:\\"|[^"])*"|\s*`(?:\\`|[^`])*`|[^#\r\n]+)?
 *    \s*(?:#.*)?(?:$|$)/mg
 *
 * then trims each value, strips one pair of matching outer quotes, and in a
 * double-quoted value turns the two-character sequences \n and \r into the
 * characters. This file is that regular expression written out as code,
 * with the same backtracking order, so that odd input gives dotenv's own
 * answer: `\s` crosses newlines (a value may start on the next line), a
 * quoted value ends at the last closing quote after which only spaces and a
 * comment are left on the line (an escaped quote \' is kept as it is), and a
 * quoted value whose closing quote is followed by more text is read as an
 * unquoted one. Matches start only at the start of a line, and a match ends
 * at the end of a line. Lines no match covers must be blank or comments;
 * anything else is reported with its line number (dotenv skips them).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dotenv.h"

struct scan {
    const char *s; /* normalized text */
    size_t n;
};

static bool
is_ws(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static bool
is_key(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

static size_t
skip_ws(const struct scan *sc, size_t p)
{
    while (p < sc->n && is_ws(sc->s[p]))
        p++;
    return p;
}

/* \s*(?:#.*)?$ from p: where the match ends, or -1. */
static long
tail(const struct scan *sc, size_t p)
{
    size_t w = skip_ws(sc, p), x, y;

    for (x = w + 1; x-- > p;) { /* \s* gives back one character at a time */
        if (x < sc->n && sc->s[x] == '#') {
            for (y = x; y < sc->n && sc->s[y] != '\n'; y++)
                ;
            return (long)y;
        }
        if (x == sc->n || sc->s[x] == '\n')
            return (long)x;
    }
    return -1;
}

/* \s*Q(?:\\Q|[^Q])*Q then the tail, from v: *vend past the closing quote. */
static long
quoted(const struct scan *sc, size_t v, char q, size_t *vend)
{
    size_t p = skip_ws(sc, v), i, ncand = 0, cap = 0;
    size_t *cand = NULL;
    long end = -1;

    if (p >= sc->n || sc->s[p] != q)
        return -1;
    /* The closing quote: the first unescaped one, else (backtracking) an
     * escaped one before it, the nearest to it first. */
    for (i = p + 1; i < sc->n; i++) {
        if (sc->s[i] != q)
            continue;
        if (ncand == cap) {
            size_t *nc = realloc(cand, (cap = cap ? cap * 2 : 8) * sizeof(*cand));

            if (nc == NULL) {
                free(cand);
                return -2;
            }
            cand = nc;
        }
        cand[ncand++] = i;
        if (sc->s[i - 1] != '\\' || i - 1 == p)
            break;
    }
    while (ncand > 0 && end < 0) {
        i = cand[--ncand];
        if ((end = tail(sc, i + 1)) >= 0)
            *vend = i + 1;
    }
    free(cand);
    return end;
}

struct match {
    size_t key, keylen, val, vallen, end;
};

/* The whole expression at line start L. 1 matched, 0 not, -ENOMEM. */
static int
match_rest(const struct scan *sc, size_t p, struct match *m)
{
    static const char quotes[] = {'\'', '"', '`'};
    size_t s, t, v, e, vend;
    long end;

    m->key = p;
    while (p < sc->n && is_key(sc->s[p]))
        p++;
    if ((m->keylen = p - m->key) == 0)
        return 0;
    s = p;
    t = skip_ws(sc, s);
    if (t < sc->n && sc->s[t] == '=')
        v = t + 1;
    else if (s + 1 < sc->n && sc->s[s] == ':' && is_ws(sc->s[s + 1]))
        v = s + 2;
    else
        return 0;
    for (size_t k = 0; k < sizeof(quotes); k++) {
        end = quoted(sc, v, quotes[k], &vend);
        if (end == -2)
            return -ENOMEM;
        if (end >= 0) {
            m->val = v;
            m->vallen = vend - v;
            m->end = (size_t)end;
            return 1;
        }
    }
    for (e = v; e < sc->n && sc->s[e] != '#' && sc->s[e] != '\n'; e++)
        ;
    m->val = v;
    m->vallen = e - v; /* [^#\r\n]+, or no value at all when empty */
    end = tail(sc, e);
    if (end < 0)
        return 0;
    m->end = (size_t)end;
    return 1;
}

static int
match_at(const struct scan *sc, size_t L, struct match *m)
{
    size_t p = skip_ws(sc, L), q;
    int rc;

    if (sc->n - p > 6 && memcmp(sc->s + p, "export", 6) == 0 && is_ws(sc->s[p + 6])) {
        q = skip_ws(sc, p + 6);
        if ((rc = match_rest(sc, q, m)) != 0)
            return rc;
    }
    return match_rest(sc, p, m);
}

/* The value as dotenv keeps it: trimmed, unquoted, \n \r expanded in "...". */
static char *
value_of(const char *v, size_t len)
{
    char *out, q;
    size_t i, o = 0;

    while (len > 0 && is_ws(*v)) {
        v++;
        len--;
    }
    while (len > 0 && is_ws(v[len - 1]))
        len--;
    q = len > 0 ? v[0] : '\0';
    if (len >= 2 && (q == '\'' || q == '"' || q == '`') && v[len - 1] == q) {
        v++;
        len -= 2;
    }
    if ((out = malloc(len + 1)) == NULL)
        return NULL;
    if (q != '"') {
        memcpy(out, v, len);
        out[len] = '\0';
        return out;
    }
    /* Two passes, as dotenv's two replace() calls. */
    for (i = 0; i < len; i++) {
        if (v[i] == '\\' && i + 1 < len && v[i + 1] == 'n') {
            out[o++] = '\n';
            i++;
        } else {
            out[o++] = v[i];
        }
    }
    len = o;
    for (i = 0, o = 0; i < len; i++) {
        if (out[i] == '\\' && i + 1 < len && out[i + 1] == 'r') {
            out[o++] = '\r';
            i++;
        } else {
            out[o++] = out[i];
        }
    }
    out[o] = '\0';
    return out;
}

void
dotenv_free(struct dotenv_var *vars, size_t n)
{
    for (size_t i = 0; vars != NULL && i < n; i++) {
        free(vars[i].key);
        free(vars[i].value);
    }
    free(vars);
}

/* The line (from 1) of pos, by binary search in the line starts. */
static unsigned
line_of(const size_t *starts, size_t nlines, size_t pos)
{
    size_t lo = 0, hi = nlines;

    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;

        if (starts[mid] <= pos)
            lo = mid;
        else
            hi = mid;
    }
    return (unsigned)lo + 1;
}

/* Add or replace key (takes key and value). */
static int
put(struct dotenv_var **vars, size_t *n, size_t *cap, char *key, char *value, unsigned line)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*vars)[i].key, key) == 0) {
            free(key);
            free((*vars)[i].value);
            (*vars)[i].value = value;
            (*vars)[i].line = line;
            return 0;
        }
    }
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        struct dotenv_var *nv = realloc(*vars, nc * sizeof(**vars));

        if (nv == NULL) {
            free(key);
            free(value);
            return -ENOMEM;
        }
        *vars = nv;
        *cap = nc;
    }
    (*vars)[*n].key = key;
    (*vars)[*n].value = value;
    (*vars)[*n].line = line;
    (*n)++;
    return 0;
}

int
dotenv_parse(const char *text, size_t len, struct dotenv_var **vars, size_t *n, char *err,
             size_t errsz)
{
    struct scan sc = {0};
    char *buf = NULL, *covered = NULL;
    size_t *starts = NULL, i, o = 0, cap = 0, pos = 0, nlines = 1;
    int rc = -ENOMEM;

    *vars = NULL;
    *n = 0;
    err[0] = '\0';
    if (len > DOTENV_MAX_SIZE) {
        snprintf(err, errsz, "larger than %u bytes", DOTENV_MAX_SIZE);
        return -EINVAL;
    }
    if ((buf = malloc(len + 1)) == NULL)
        return -ENOMEM;
    i = len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0 ? 3 : 0; /* a BOM is \s to dotenv */
    for (; i < len; i++) {                                        /* \r\n and a lone \r become \n */
        if (text[i] == '\0') {
            snprintf(err, errsz, "line %zu: a NUL byte (not a text file)", nlines);
            rc = -EINVAL;
            goto fail;
        }
        if (text[i] == '\r' && i + 1 < len && text[i + 1] == '\n')
            i++;
        buf[o] = text[i] == '\r' ? '\n' : text[i];
        nlines += buf[o++] == '\n';
    }
    sc.s = buf;
    sc.n = o;
    covered = calloc(nlines + 1, 1);
    starts = malloc(nlines * sizeof(*starts));
    if (covered == NULL || starts == NULL)
        goto fail;
    starts[0] = 0;
    for (i = 0, o = 1; i < sc.n; i++)
        if (sc.s[i] == '\n')
            starts[o++] = i + 1;
    while (pos <= sc.n) {
        struct match m;
        unsigned first, last, l;
        char *key, *value;
        int r;

        /* Only a line start can begin a match. */
        if (pos > 0 && sc.s[pos - 1] != '\n') {
            while (pos < sc.n && sc.s[pos] != '\n')
                pos++;
            pos++;
            continue;
        }
        if ((r = match_at(&sc, pos, &m)) < 0)
            goto fail;
        if (r == 0) {
            pos++;
            continue;
        }
        first = line_of(starts, nlines, pos);
        last = line_of(starts, nlines, m.end);
        for (l = first; l <= last && l <= nlines; l++)
            covered[l] = 1;
        key = strndup(sc.s + m.key, m.keylen);
        value = key != NULL ? value_of(sc.s + m.val, m.vallen) : NULL;
        if (key == NULL || value == NULL) {
            free(key);
            goto fail;
        }
        if (put(vars, n, &cap, key, value, line_of(starts, nlines, m.key)) < 0)
            goto fail;
        pos = m.end > pos ? m.end : pos + 1;
    }
    /* What no match covered must be blank or a comment. */
    for (i = 0; i < nlines; i++) {
        size_t p = starts[i];

        while (p < sc.n && sc.s[p] != '\n' && is_ws(sc.s[p]))
            p++;
        if (!covered[i + 1] && p < sc.n && sc.s[p] != '\n' && sc.s[p] != '#') {
            snprintf(err, errsz, "line %zu: not a variable (want KEY=value)", i + 1);
            rc = -EINVAL;
            goto fail;
        }
    }
    free(starts);
    free(covered);
    free(buf);
    return 0;
fail:
    if (rc == -ENOMEM && err[0] == '\0')
        snprintf(err, errsz, "out of memory");
    dotenv_free(*vars, *n);
    *vars = NULL;
    *n = 0;
    free(starts);
    free(covered);
    free(buf);
    return rc;
}
