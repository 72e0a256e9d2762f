/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "procfile.h"
#include "util.h"

static int
parse(const char *text, struct procfile *pf, char *err)
{
    return procfile_parse(text, strlen(text), pf, err, 256);
}

Test(procfile, parses_types_and_commands, .timeout = 2)
{
    struct procfile pf;
    char err[256] = "";

    cr_assert_eq(parse("web: ./server --port $PORT\nworker:   ./work  \n", &pf, err), 0, "%s", err);
    cr_assert_eq(pf.n, 2);
    cr_assert_str_eq(pf.entries[0].type, "web");
    cr_assert_str_eq(pf.entries[0].command, "./server --port $PORT");
    cr_assert_str_eq(pf.entries[1].type, "worker");
    cr_assert_str_eq(pf.entries[1].command, "./work");
    cr_assert_not_null(procfile_find(&pf, "worker"));
    cr_assert_null(procfile_find(&pf, "clock"));
    procfile_fini(&pf);
}

Test(procfile, skips_comments_blank_lines_and_crlf, .timeout = 2)
{
    struct procfile pf;
    char err[256] = "";

    cr_assert_eq(parse("# a comment\r\n\r\n  \nweb: python3 web.py\r\n", &pf, err), 0, "%s", err);
    cr_assert_eq(pf.n, 1);
    cr_assert_str_eq(pf.entries[0].command, "python3 web.py");
    procfile_fini(&pf);
}

Test(procfile, keeps_colons_in_commands, .timeout = 2)
{
    struct procfile pf;
    char err[256] = "";

    cr_assert_eq(parse("web: echo a:b http://x\n", &pf, err), 0, "%s", err);
    cr_assert_str_eq(pf.entries[0].command, "echo a:b http://x");
    procfile_fini(&pf);
}

Test(procfile, refuses_missing_command, .timeout = 2)
{
    struct procfile pf;
    char err[256] = "";

    cr_assert_eq(parse("web: ok\nworker:   \n", &pf, err), -EINVAL);
    cr_assert(strstr(err, "line 2") != NULL, "%s", err);
    cr_assert(strstr(err, "missing command") != NULL, "%s", err);
    cr_assert_eq(pf.n, 0);
    cr_assert_null(pf.entries);
}

Test(procfile, refuses_bad_lines, .timeout = 2)
{
    static const char *bad[] = {
        "web ./server\n",                       /* no colon */
        ": x\n",                                /* no type */
        "web: a\nweb: b\n",                     /* duplicate */
        "run: x\n",                             /* reserved */
        "w$b: x\n",                             /* bad character */
        "w.b: x\n",                             /* '.' separates type and number */
        "web 2: x\n",                           /* a space inside */
        "",                                     /* nothing */
        "# only a comment\n",                   /* nothing */
        "averyveryveryverylongtypename12: x\n", /* 31 characters */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct procfile pf;
        char err[256] = "";
        cr_expect_eq(parse(bad[i], &pf, err), -EINVAL, "accepted %s", bad[i]);
        cr_expect(err[0] != '\0', "no reason for %s", bad[i]);
    }
}

Test(procfile, refuses_embedded_nul_and_oversize, .timeout = 2)
{
    struct procfile pf;
    char err[256] = "";
    static const char nul[] = "web: a\0b\n";

    cr_assert_eq(procfile_parse(nul, sizeof(nul) - 1, &pf, err, sizeof(err)), -EINVAL);
    cr_assert_eq(procfile_parse("web: x\n", PROCFILE_MAX_SIZE + 1, &pf, err, sizeof(err)), -EINVAL);
}

/* issue 11 item 20: what Heroku's Procfile parser accepts, [A-Za-z0-9_-]+,
 * with types compared exactly. */
Test(procfile, accepts_what_heroku_accepts, .timeout = 2)
{
    struct procfile pf;
    char err[256] = "";
    static const char text[] = "Web: a\nweb: b\n1st: c\nWORKER_2-x: d\n-dash: e\n_u: f\n";

    cr_assert_eq(parse(text, &pf, err), 0, "%s", err);
    cr_assert_eq(pf.n, 6);
    cr_expect_str_eq(pf.entries[0].type, "Web");
    cr_expect_str_eq(pf.entries[1].type, "web");
    cr_expect_str_eq(pf.entries[2].type, "1st");
    cr_expect_str_eq(pf.entries[3].type, "WORKER_2-x");
    cr_expect_str_eq(procfile_find(&pf, "Web")->command, "a");
    cr_expect_str_eq(procfile_find(&pf, "web")->command, "b");
    cr_expect_null(procfile_find(&pf, "WEB"));
    procfile_fini(&pf);
    cr_expect(name_type_valid("Run")); /* only "run" is reserved */
    cr_expect(name_instance_valid("Web-2.3"));
    cr_expect_not(name_type_valid(""));
    cr_expect_not(name_type_valid("a.b"));
}
