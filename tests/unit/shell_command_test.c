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
