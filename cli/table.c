/* SPDX-License-Identifier: MIT */
/*
 * table.c: aligned columns for human output, like `heroku ps`.
 *
 * Rows are collected first (cells copied), then printed with each column as
 * wide as its widest cell. Width counts UTF-8 code points, not bytes, so a
 * config value with accents does not push its neighbours out of line. Cells
 * hold text from the controller and from other users (config values, release
 * descriptions): control characters are shown as \n, \t or '?' so that none
 * can break a line or send escape sequences to the terminal.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

struct cli_table {
    size_t ncols;
    size_t nrows;
    size_t cap;
    char **cells; /* nrows * ncols, owned */
};

struct cli_table *
cli_table_new(size_t ncols)
{
    struct cli_table *t = calloc(1, sizeof(*t));

    if (t != NULL)
        t->ncols = ncols;
    return t;
}

/* A malloc'd copy of s with control characters made visible. */
static char *
printable(const char *s)
{
    size_t n = 0;
    char *out, *p;

    for (const char *q = s; *q != '\0'; q++)
        n += (*q == '\n' || *q == '\t') ? 2 : 1;
    out = malloc(n + 1);
    if (out == NULL)
        return NULL;
    for (p = out; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;

        if (ch == '\n' || ch == '\t') {
            *p++ = '\\';
            *p++ = ch == '\n' ? 'n' : 't';
        } else {
            *p++ = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
        }
    }
    *p = '\0';
    return out;
}

int
cli_table_row(struct cli_table *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap != 0 ? t->cap * 2 : 16;
        char **n = realloc(t->cells, cap * t->ncols * sizeof(*n));

        if (n == NULL)
            return -ENOMEM;
        t->cells = n;
        t->cap = cap;
    }
    for (size_t c = 0; c < t->ncols; c++) {
        char *s = printable(cells[c] != NULL ? cells[c] : "");

        if (s == NULL) {
            while (c-- > 0)
                free(t->cells[t->nrows * t->ncols + c]);
            return -ENOMEM;
        }
        t->cells[t->nrows * t->ncols + c] = s;
    }
    t->nrows++;
    return 0;
}

static size_t
width(const char *s)
{
    size_t w = 0;

    for (; *s != '\0'; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            w++;
    return w;
}

void
cli_table_print(const struct cli_table *t, FILE *out, const char *indent)
{
    size_t *w = calloc(t->ncols != 0 ? t->ncols : 1, sizeof(*w));

    if (w == NULL)
        return;
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            size_t cw = width(t->cells[r * t->ncols + c]);

            if (cw > w[c])
                w[c] = cw;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        size_t last = t->ncols;

        /* Trailing empty cells print nothing, not a run of spaces. */
        while (last > 0 && t->cells[r * t->ncols + last - 1][0] == '\0')
            last--;
        fputs(indent != NULL ? indent : "", out);
        for (size_t c = 0; c < last; c++) {
            const char *s = t->cells[r * t->ncols + c];

            fputs(s, out);
            if (c + 1 < last)
                fprintf(out, "%*s", (int)(w[c] - width(s) + 2), "");
        }
        fputc('\n', out);
    }
    free(w);
}

void
cli_table_free(struct cli_table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t);
}
