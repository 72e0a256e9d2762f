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
