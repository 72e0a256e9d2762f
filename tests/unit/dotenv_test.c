/* SPDX-License-Identifier: MIT */
/*
 * The dotenv parser: drover must read a .env exactly as the npm `dotenv`
 * package does. The reference test runs dotenv itself (installed by
 * tests/run with npm into BUILD/npm; skipped, saying why, when it is not)
 * on tests/unit/fixtures/dotenv_cases.env, which covers each rule, and
 * compares every key and value byte for byte; the others pin the cases down
 * without node, and our own rule: a line that is not a variable is an error
 * naming its line.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dotenv.h"

#define FIXTURE DROVER_SOURCE_DIR "/tests/unit/fixtures/dotenv_cases.env"
#define DOTENV_PKG DROVER_BUILD_DIR "/npm/node_modules/dotenv"

static char *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    buf = malloc((size_t)n + 1);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

/* "KEY=hex(value)\n" per variable, in order, as the node script prints. */
static char *
render(const struct dotenv_var *v, size_t n)
{
    size_t cap = 64, len = 0;
    char *out = malloc(cap);

    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t need = strlen(v[i].key) + 2 * strlen(v[i].value) + 3;

        while (len + need >= cap)
            out = realloc(out, cap *= 2);
        len += (size_t)sprintf(out + len, "%s=", v[i].key);
        for (const unsigned char *p = (const unsigned char *)v[i].value; *p; p++)
            len += (size_t)sprintf(out + len, "%02x", *p);
        out[len++] = '\n';
        out[len] = '\0';
    }
    return out;
}

static struct dotenv_var *
parse_ok(const char *text, size_t *n)
{
    struct dotenv_var *v = NULL;
    char err[200];
    int rc = dotenv_parse(text, strlen(text), &v, n, err, sizeof(err));

    cr_assert_eq(rc, 0, "parse failed: %s\n%s", err, text);
    return v;
}

static const char *
get(const struct dotenv_var *v, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].key, key) == 0)
            return v[i].value;
    return NULL;
}

Test(dotenv, matches_the_npm_dotenv_package_on_the_fixture, .timeout = 30)
{
    struct stat st;
    struct dotenv_var *v = NULL;
    size_t len, n, cap = 1 << 16, got = 0;
    char err[200], *text, *ours, *theirs = malloc(cap), cmd[1024];
    FILE *p;

    if (stat(DOTENV_PKG, &st) != 0)
        cr_skip_test("the dotenv npm package is not in " DOTENV_PKG
                     " (tests/run installs it: npm install --prefix BUILD/npm dotenv)");
    if (system("command -v node >/dev/null 2>&1") != 0)
        cr_skip_test("node is not installed: cannot run the dotenv package");
    snprintf(cmd, sizeof(cmd),
             "node -e 'const d = require(\"%s\"); const fs = require(\"fs\");"
             " const o = d.parse(fs.readFileSync(\"%s\"));"
             " for (const k of Object.keys(o))"
             " process.stdout.write(k + \"=\" + Buffer.from(o[k]).toString(\"hex\") + \"\\n\");'",
             DOTENV_PKG, FIXTURE);
    p = popen(cmd, "r");
    cr_assert_not_null(p);
    while ((len = fread(theirs + got, 1, cap - got - 1, p)) > 0)
        got += len;
    theirs[got] = '\0';
    cr_assert_eq(pclose(p), 0, "node failed: %s", theirs);
    cr_assert_gt(got, 100, "node printed too little: %s", theirs);

    text = slurp(FIXTURE, &len);
    cr_assert_eq(dotenv_parse(text, len, &v, &n, err, sizeof(err)), 0, "%s", err);
    ours = render(v, n);
    cr_assert_str_eq(ours, theirs, "drover's parse differs from dotenv's:\nours:\n%s\ntheirs:\n%s",
                     ours, theirs);
    dotenv_free(v, n);
    free(ours);
    free(theirs);
    free(text);
}

Test(dotenv, quotes_export_comments_and_trimming)
{
    size_t n;
    struct dotenv_var *v = parse_ok("export A = one two  # c\n"
                                    "B='x\\ny' # c\n"
                                    "C=\"x\\ny\"\n"
                                    "D=`q 'a' \"b\"`\n"
                                    "E=a#b\n"
                                    "F=\"a # b\"\n"
                                    "G=\n"
                                    "H: colon\n",
                                    &n);

    cr_assert_eq(n, 8);
    cr_assert_str_eq(get(v, n, "A"), "one two");
    cr_assert_str_eq(get(v, n, "B"), "x\\ny");
    cr_assert_str_eq(get(v, n, "C"), "x\ny");
    cr_assert_str_eq(get(v, n, "D"), "q 'a' \"b\"");
    cr_assert_str_eq(get(v, n, "E"), "a");
    cr_assert_str_eq(get(v, n, "F"), "a # b");
    cr_assert_str_eq(get(v, n, "G"), "");
    cr_assert_str_eq(get(v, n, "H"), "colon");
    cr_assert_eq(v[7].line, 8);
    dotenv_free(v, n);
}

Test(dotenv, multi_line_values_crlf_and_later_duplicates_win)
{
    size_t n;
    struct dotenv_var *v = parse_ok("M=\"one\r\ntwo\"\r\nX=1\r\nX=2\r\nS='a\nb'", &n);

    cr_assert_eq(n, 3);
    cr_assert_str_eq(get(v, n, "M"), "one\ntwo");
    cr_assert_str_eq(get(v, n, "X"), "2");
    cr_assert_str_eq(get(v, n, "S"), "a\nb");
    cr_assert_eq(v[2].line, 5);
    dotenv_free(v, n);
}

Test(dotenv, a_line_that_is_not_a_variable_is_an_error_naming_it)
{
    static const struct {
        const char *text;
        const char *want;
    } cases[] = {
        {"A=1\nthis is not a variable\nB=2\n", "line 2:"},
        {"A=1\n\n# fine\n  \nexport\n", "line 5:"},
        {"=value\n", "line 1:"},
        {"A=\"x\"\nB 2\n", "line 2:"},
        {"A=1\0B=2", "line 1: a NUL"},
    };
    char err[200];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct dotenv_var *v = (void *)1;
        size_t n = 99, len = i == 4 ? 7 : strlen(cases[i].text);
        int rc = dotenv_parse(cases[i].text, len, &v, &n, err, sizeof(err));

        cr_assert_eq(rc, -EINVAL, "case %zu accepted", i);
        cr_assert(strncmp(err, cases[i].want, strlen(cases[i].want)) == 0, "case %zu: %s", i, err);
        cr_assert_null(v);
        cr_assert_eq(n, 0);
    }
}

Test(dotenv, blank_and_comment_only_files_are_empty)
{
    size_t n = 9;
    struct dotenv_var *v = parse_ok("\n# only a comment\n   \n", &n);

    cr_assert_eq(n, 0);
    dotenv_free(v, n);
}
