/* SPDX-License-Identifier: MIT */
/*
 * leftout.c: what `drover deploy` leaves out of a slug, and saying so.
 *
 * Always: every `.env` (secrets belong in config vars: `drover config:set
 * --env-file .env`) and every `.git`. Then whatever DIR/.slugignore names
 * (Heroku's syntax: common/slugignore.c). The packer asks about each path
 * and does not enter a directory left out, so each line of the report is
 * one top-most path.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "slugignore.h"
#include "util.h"

#define SHOW_MAX 10

struct list {
    char *v[SHOW_MAX];
    size_t n, total;
};

struct cli_leftout {
    struct slugignore *si;
    struct list always, ignored;
};

struct cli_leftout *
cli_leftout_new(const char *dir, char *err, size_t errsz)
{
    struct cli_leftout *lo = calloc(1, sizeof(*lo));
    char path[4200], *text = NULL;
    size_t len = 0;
    struct stat st;
    FILE *f = NULL;
    int rc;

    if (lo == NULL) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    if (strfmt(path, sizeof(path), "%s/.slugignore", dir) < 0 || stat(path, &st) < 0)
        return lo; /* none: only the defaults */
    if (!S_ISREG(st.st_mode) || st.st_size > SLUGIGNORE_MAX_SIZE) {
        snprintf(err, errsz, "%s: not a regular file of at most %u bytes", path,
                 SLUGIGNORE_MAX_SIZE);
        goto fail;
    }
    if ((f = fopen(path, "rb")) == NULL || (text = malloc((size_t)st.st_size + 1)) == NULL) {
        snprintf(err, errsz, "%s: %s", path, strerror(errno));
        goto fail;
    }
    len = fread(text, 1, (size_t)st.st_size, f);
    if ((rc = slugignore_parse(text, len, &lo->si)) < 0) {
        snprintf(err, errsz, "%s: %s", path, rc == -EINVAL ? "not a text file" : "out of memory");
        goto fail;
    }
    fclose(f);
    free(text);
    return lo;
fail:
    if (f != NULL)
        fclose(f);
    free(text);
    cli_leftout_free(lo);
    return NULL;
}

static void
note(struct list *l, const char *rel, bool is_dir)
{
    if (l->n < SHOW_MAX) {
        size_t len = strlen(rel);

        if ((l->v[l->n] = malloc(len + 2)) != NULL) {
            memcpy(l->v[l->n], rel, len);
            strcpy(l->v[l->n] + len, is_dir ? "/" : "");
            l->n++;
        }
    }
    l->total++;
}

bool
cli_leftout_filter(void *arg, const char *rel, bool is_dir)
{
    struct cli_leftout *lo = arg;
    const char *base = strrchr(rel, '/');

    base = base != NULL ? base + 1 : rel;
    if (strcmp(base, ".env") == 0 || strcmp(base, ".git") == 0) {
        note(&lo->always, rel, is_dir);
        return true;
    }
    if (slugignore_match(lo->si, rel, is_dir)) {
        note(&lo->ignored, rel, is_dir);
        return true;
    }
    return false;
}

static void
print_list(FILE *out, const struct list *l, const char *why)
{
    if (l->total == 0)
        return;
    fprintf(out, "Left out of the slug (%s):", why);
    for (size_t i = 0; i < l->n; i++)
        fprintf(out, " %s", l->v[i]);
    if (l->total > l->n)
        fprintf(out, " and %zu more", l->total - l->n);
    fputc('\n', out);
}

void
cli_leftout_report(const struct cli_leftout *lo, FILE *out)
{
    print_list(out, &lo->always, "never packed");
    print_list(out, &lo->ignored, ".slugignore");
}

void
cli_leftout_free(struct cli_leftout *lo)
{
    if (lo == NULL)
        return;
    for (size_t i = 0; i < lo->always.n; i++)
        free(lo->always.v[i]);
    for (size_t i = 0; i < lo->ignored.n; i++)
        free(lo->ignored.v[i]);
    slugignore_free(lo->si);
    free(lo);
}
