/* SPDX-License-Identifier: MIT */
/* The pure parts of the CLI's words (issue 11): suggestions for a mistyped
 * verb, the probe's host, ps headings, endpoint versions. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "cli.h"

Test(cli_words, edit_distance, .timeout = 2)
{
    cr_expect_eq(cli_edit_distance("scale", "scale"), 0);
    cr_expect_eq(cli_edit_distance("scael", "scale"), 1); /* one swap */
    cr_expect_eq(cli_edit_distance("scal", "scale"), 1);
    cr_expect_eq(cli_edit_distance("sxale", "scale"), 1);
    cr_expect_eq(cli_edit_distance("", "ps"), 2);
    cr_expect_eq(cli_edit_distance("kitten", "sitting"), 3);
    char long_word[80];
    memset(long_word, 'a', sizeof(long_word) - 1);
    long_word[79] = '\0';
    cr_expect_eq(cli_edit_distance(long_word, "ps"), UINT32_MAX);
}

Test(cli_words, a_typo_suggests_the_nearest_verb, .timeout = 2)
{
    static const char *const pairs[][2] = {
        {"scael", "scale"},
        {"sclae", "scale"},
        {"pss", "ps"},
        {"apps:craete", "apps:create"},
        {"configset", "config:set"},
        {"lgos", "logs"},
        {"releses", "releases"},
        {"nodes:drian", "nodes:drain"},
        {"hlep", "help"},
        {"deplyo", "deploy"},
        {"endpoint", "endpoints"},
        {"Scale", "scale"},
    };
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        const char *got = cli_verb_suggest(pairs[i][0]);

        cr_expect(got != NULL && strcmp(got, pairs[i][1]) == 0, "%s: got %s", pairs[i][0],
                  got ? got : "nothing");
    }
}

Test(cli_words, nothing_near_suggests_nothing, .timeout = 2)
{
    static const char *const far[] = {"ls", "xyz", "kubectl", "destroy-everything",
                                      "",   "p",   "scale"};
    for (size_t i = 0; i < sizeof(far) / sizeof(far[0]); i++)
        cr_expect_null(cli_verb_suggest(far[i]), "%s", far[i]);
}

Test(cli_words, probe_host_is_the_address_part, .timeout = 2)
{
    char h[64];

    cr_assert_eq(cli_probe_host("127.0.0.1", h, sizeof(h)), 0);
    cr_expect_str_eq(h, "127.0.0.1");
    cr_assert_eq(cli_probe_host("[::1]", h, sizeof(h)), 0);
    cr_expect_str_eq(h, "::1");
    cr_assert_eq(cli_probe_host("eth0;10.0.0.5", h, sizeof(h)), 0);
    cr_expect_str_eq(h, "10.0.0.5");
    cr_assert_eq(cli_probe_host("ctl.example", h, sizeof(h)), 0);
    cr_expect_str_eq(h, "ctl.example");
    cr_expect_eq(cli_probe_host("*", h, sizeof(h)), -EINVAL);
    cr_expect_eq(cli_probe_host("[]", h, sizeof(h)), -EINVAL);
    cr_expect_eq(cli_probe_host("averyveryverylonghostname.example", h, 8), -EINVAL);
}

Test(cli_words, ps_heading_shows_the_quantity, .timeout = 2)
{
    char h[256];

    cli_ps_heading("web", 2, 2, 2, false, "python3 web.py", h, sizeof(h));
    cr_expect_str_eq(h, "=== web (2): python3 web.py");
    cli_ps_heading("web", 1, 2, 2, true, "python3 web.py", h, sizeof(h));
    cr_expect_str_eq(h, "=== web (1 wanted, 2 running: deploy in progress): python3 web.py");
    cli_ps_heading("web", 3, 1, 3, false, "x", h, sizeof(h)); /* two crashed */
    cr_expect_str_eq(h, "=== web (3 wanted, 1 running): x");
    cli_ps_heading("worker", 0, 1, 1, false, "x", h, sizeof(h)); /* scaled down, draining */
    cr_expect_str_eq(h, "=== worker (0 wanted, 1 running): x");
    cli_ps_heading("web", 2, 2, 3, false, "x", h, sizeof(h)); /* one lost beside them */
    cr_expect_str_eq(h, "=== web (2 wanted, 2 running): x");
    cli_ps_heading("run", -1, 1, 2, false, "bash", h, sizeof(h));
    cr_expect_str_eq(h, "=== run (2): bash");
}

Test(cli_words, a_restart_schedule_shows_only_while_crashed, .timeout = 2)
{
    char r[256];

    cli_ps_reason("crashed", "restart 2 in 0.8 s", r, sizeof(r));
    cr_expect_str_eq(r, "restart 2 in 0.8 s");
    cli_ps_reason("starting", "restart 1 in 0.0 s", r, sizeof(r));
    cr_expect_str_eq(r, "");
    cli_ps_reason("up", "not healthy within 8.0 s (killed); restart 1 in 0.0 s", r, sizeof(r));
    cr_expect_str_eq(r, "not healthy within 8.0 s (killed)");
    cli_ps_reason("pending", "no free port in 5000-5099", r, sizeof(r));
    cr_expect_str_eq(r, "no free port in 5000-5099");
    cli_ps_reason("starting", "a reason that mentions norestart 5", r, sizeof(r));
    cr_expect_str_eq(r, "a reason that mentions norestart 5");
    cli_ps_reason("failed", "", r, sizeof(r));
    cr_expect_str_eq(r, "");
}
