/* SPDX-License-Identifier: MIT */
/*
 * A Procfile that is a symlink inside the slug (issue 11 item 20): the
 * controller reads through it as the unpacked tree would, as long as every
 * hop stays inside the slug.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>

#include "slug.h"
#include "util.h"

static char tmp[256], slug[300];

static void
setup(void)
{
    snprintf(tmp, sizeof(tmp), "/tmp/drover-plink-test.XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
    snprintf(slug, sizeof(slug), "%s/slug.tgz", tmp);
}

static void
teardown(void)
{
    rm_rf(tmp);
}

/* Entries: "path=data" a file, "path>target" a symlink. */
static void
make_slug(const char *const *ents)
{
    struct archive *w = archive_write_new();

    archive_write_add_filter_gzip(w);
    archive_write_set_format_pax_restricted(w);
    cr_assert_eq(archive_write_open_filename(w, slug), ARCHIVE_OK);
    for (; *ents != NULL; ents++) {
        struct archive_entry *e = archive_entry_new();
        const char *sep = strpbrk(*ents, "=>");
        char path[128];

        cr_assert_not_null(sep);
        snprintf(path, sizeof(path), "%.*s", (int)(sep - *ents), *ents);
        archive_entry_set_pathname(e, path);
        archive_entry_set_perm(e, 0644);
        if (*sep == '=') {
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_size(e, (la_int64_t)strlen(sep + 1));
        } else {
            archive_entry_set_filetype(e, AE_IFLNK);
            archive_entry_set_symlink(e, sep + 1);
        }
        cr_assert_eq(archive_write_header(w, e), ARCHIVE_OK);
        if (*sep == '=')
            archive_write_data(w, sep + 1, strlen(sep + 1));
        archive_entry_free(e);
    }
    archive_write_close(w);
    archive_write_free(w);
}

static int
read_procfile(char **text)
{
    size_t len;

    *text = NULL;
    return slug_read_member(slug, "Procfile", 4096, text, &len);
}

TestSuite(procfile_link, .init = setup, .fini = teardown, .timeout = 10);

Test(procfile_link, a_link_inside_the_slug_is_followed)
{
    static const char *const cases[][4] = {
        /* the link before its target, and after it */
        {"Procfile>conf/Procfile", "conf/Procfile=web: a\n", NULL},
        {"conf/Procfile=web: a\n", "Procfile>./conf//Procfile", NULL},
        /* a chain, and a ".." that stays inside */
        {"Procfile>conf/link", "conf/link>../real/Procfile", "real/Procfile=web: a\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *text;

        make_slug(cases[i]);
        cr_assert_eq(read_procfile(&text), 0, "case %zu", i);
        cr_expect_str_eq(text, "web: a\n");
        free(text);
    }
}

Test(procfile_link, a_link_that_leaves_the_slug_or_loops_is_refused)
{
    static const char *const cases[][3] = {
        {"Procfile>../etc/Procfile", NULL},
        {"Procfile>/etc/passwd", NULL},
        {"Procfile>a", "a>Procfile", NULL},
        {"Procfile>conf/../../x", "x=web: a\n", NULL},
        {"Procfile>.", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *text;

        make_slug(cases[i]);
        cr_expect_eq(read_procfile(&text), -ELOOP, "case %zu", i);
        cr_expect_null(text);
    }
}

Test(procfile_link, a_link_to_nothing_is_no_procfile)
{
    static const char *const ents[] = {"Procfile>conf/Procfile", "web.py=x", NULL};
    char *text;

    make_slug(ents);
    cr_expect_eq(read_procfile(&text), -ENOENT);
}
