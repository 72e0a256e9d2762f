/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "agt.h"

static void
expect(const char *cmd, const char *want)
{
    char *got = agt_shell_command(cmd);

    cr_assert_not_null(got);
    cr_expect_str_eq(got, want, "for %s", cmd);
    free(got);
}

Test(shell_command, a_simple_command_is_execed, .timeout = 2)
{
    expect("python3 web.py", "exec python3 web.py");
    expect("./server --port $PORT", "exec ./server --port $PORT");
    expect("  bin/worker -v", "exec   bin/worker -v");
    expect("./server > /tmp/log", "exec ./server > /tmp/log");
}

Test(shell_command, anything_else_runs_as_written, .timeout = 2)
{
    static const char *const as_is[] = {
        "cd app && ./server",        /* list */
        "a; b",                      /* sequence */
        "./gen | ./consume",         /* pipe */
        "./server &",                /* background */
        "(cd app; ./x)",             /* subshell */
        "{ ./x; }",                  /* group */
        "FOO=1 ./server",            /* assignment first */
        "if true; then x; fi",       /* reserved word */
        "while sleep 1; do x; done", /* loop */
        "exec ./server",             /* already */
        "./server 2>&1",             /* '&' in a redirection: not worth parsing */
        "echo 'a;b'",                /* a quoted ';' also counts */
        "line1\nline2",              /* several lines */
        "",
    };
    for (size_t k = 0; k < sizeof(as_is) / sizeof(as_is[0]); k++)
        expect(as_is[k], as_is[k]);
}

/* issue 11 item 1: "exec exit 4" looks for a program called exit. */
Test(shell_command, builtins_and_shell_syntax_are_never_execed, .timeout = 2)
{
    static const char *const as_is[] = {
        "exit 4",        "cd /tmp && ls", "cd /tmp",  "ulimit -n",  "umask",
        "umask 077",     "export X=1",    "read x",   ". ./script", "source ./script",
        "set -e",        "trap 'x' TERM", "eval ./x", "echo hi",    "printf '%s' x",
        "test -f x",     "[ -f x ]",      "true",     ": nothing",  "wait",
        "kill -0 1",     "shift",         "unset X",  "alias a=b",  "command -v x",
        "time ./x",      "coproc ./x",    "X=1",      "'./server'", "\"./server\"",
        "$CMD --flag",   "${CMD}",        "~/bin/x",  "*.sh",       "./x?",
        ">out ./server", "2>err ./x",     "<in ./x",  "\\ls",       "./x `date`",
        "  exit 4",      "\texit",        "ls\\\n-l",
    };
    for (size_t k = 0; k < sizeof(as_is) / sizeof(as_is[0]); k++) {
        cr_expect_not(agt_shell_execable(as_is[k]), "%s", as_is[k]);
        expect(as_is[k], as_is[k]);
    }
}

Test(shell_command, programs_by_name_or_path_are_execed, .timeout = 2)
{
    static const char *const execed[] = {
        "python3 -m http.server $PORT",
        "bin/x --a=b 'c d'",
        "/usr/bin/env FOO=1 x",
        "sleep 300",
        "node-18 server.js",
        "x.sh",
        "exit4",
        "cdx",
        "./exit 4",
        "gunicorn app:wsgi",
        "_bin/x",
    };
    for (size_t k = 0; k < sizeof(execed) / sizeof(execed[0]); k++)
        cr_expect(agt_shell_execable(execed[k]), "%s", execed[k]);
}
