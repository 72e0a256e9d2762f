/* SPDX-License-Identifier: MIT */
/*
 * .slugignore matching (common/slugignore.c): Heroku's syntax, which is
 * gitignore's without negation.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "slugignore.h"

static struct slugignore *
parse(const char *text)
{
    struct slugignore *si = NULL;

    cr_assert_eq(slugignore_parse(text, strlen(text), &si), 0);
    return si;
}

Test(slugignore, comments_blanks_and_negations_are_not_patterns)
{
    struct slugignore *si = parse("# a comment\n\n   \n!keep.txt\n*.psd   \r\n");

    cr_assert_eq(slugignore_count(si), 1);
    cr_assert(slugignore_match(si, "art/logo.psd", false));
    cr_assert(!slugignore_match(si, "keep.txt", false));
    slugignore_free(si);
}

Test(slugignore, a_name_without_a_slash_matches_at_any_depth)
{
    struct slugignore *si = parse("*.log\ntmp\nfile?.txt\n");

    cr_assert(slugignore_match(si, "a.log", false));
    cr_assert(slugignore_match(si, "deep/down/b.log", false));
    cr_assert(slugignore_match(si, "tmp", true));
    cr_assert(slugignore_match(si, "x/tmp", true));
    cr_assert(slugignore_match(si, "x/tmp/anything/inside.c", false), "inside a left-out dir");
    cr_assert(slugignore_match(si, "file1.txt", false));
    cr_assert(!slugignore_match(si, "file10.txt", false));
    cr_assert(!slugignore_match(si, "logs/a.txt", false));
    cr_assert(!slugignore_match(si, "tmpfile", false));
    slugignore_free(si);
}

Test(slugignore, a_slash_anchors_to_the_app_root)
{
    struct slugignore *si = parse("/spec\ndoc/*.pdf\n./vendor/cache\n");

    cr_assert(slugignore_match(si, "spec", true));
    cr_assert(slugignore_match(si, "spec/a_spec.rb", false));
    cr_assert(!slugignore_match(si, "lib/spec", true));
    cr_assert(slugignore_match(si, "doc/a.pdf", false));
    cr_assert(!slugignore_match(si, "doc/sub/a.pdf", false), "* does not cross '/'");
    cr_assert(!slugignore_match(si, "other/doc/a.pdf", false));
    cr_assert(slugignore_match(si, "vendor/cache/x.gem", false));
    cr_assert(!slugignore_match(si, "vendor/other", true));
    slugignore_free(si);
}

Test(slugignore, a_trailing_slash_matches_directories_only)
{
    struct slugignore *si = parse("build/\n");

    cr_assert(slugignore_match(si, "build", true));
    cr_assert(slugignore_match(si, "build/out.o", false));
    cr_assert(!slugignore_match(si, "build", false), "a file named build stays");
    cr_assert(slugignore_match(si, "sub/build", true));
    slugignore_free(si);
}

Test(slugignore, double_star_spans_components)
{
    struct slugignore *si = parse("**/fixtures\nassets/**/*.map\nlogs/**\n");

    cr_assert(slugignore_match(si, "fixtures", true));
    cr_assert(slugignore_match(si, "test/unit/fixtures", true));
    cr_assert(slugignore_match(si, "assets/app.map", false));
    cr_assert(slugignore_match(si, "assets/js/vendor/app.map", false));
    cr_assert(!slugignore_match(si, "assets/js/app.js", false));
    cr_assert(slugignore_match(si, "logs/a/b.txt", false));
    cr_assert(!slugignore_match(si, "logs", false), "logs/** matches what is inside");
    slugignore_free(si);
}

Test(slugignore, classes_and_escapes)
{
    struct slugignore *si = parse("[abc].txt\n[!0-9]*.bak\n\\#literal\n");

    cr_assert(slugignore_match(si, "a.txt", false));
    cr_assert(!slugignore_match(si, "d.txt", false));
    cr_assert(slugignore_match(si, "x1.bak", false));
    cr_assert(!slugignore_match(si, "1x.bak", false));
    cr_assert(slugignore_match(si, "#literal", false));
    slugignore_free(si);
}

Test(slugignore, an_empty_file_leaves_nothing_out)
{
    struct slugignore *si = parse("");

    cr_assert_eq(slugignore_count(si), 0);
    cr_assert(!slugignore_match(si, "anything", false));
    cr_assert(!slugignore_match(NULL, "anything", false));
    slugignore_free(si);
}
