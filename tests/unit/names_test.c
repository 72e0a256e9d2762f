/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>

#include "util.h"

Test(names, app_names, .timeout = 2)
{
    cr_assert(name_app_valid("shop"));
    cr_assert(name_app_valid("a"));
    cr_assert(name_app_valid("my-app-2"));
    cr_assert(name_app_valid("abcdefghijklmnopqrstuvwxyz0123"));      /* 30 */
    cr_assert_not(name_app_valid("abcdefghijklmnopqrstuvwxyz01234")); /* 31 */
    cr_assert_not(name_app_valid(""));
    cr_assert_not(name_app_valid("Shop"));
    cr_assert_not(name_app_valid("1shop"));
    cr_assert_not(name_app_valid("-shop"));
    cr_assert_not(name_app_valid("sh_op"));
    cr_assert_not(name_app_valid("sh op"));
    cr_assert_not(name_app_valid("../x"));
    cr_assert_not(name_app_valid(NULL));
}

Test(names, instance_and_config_names, .timeout = 2)
{
    cr_assert(name_instance_valid("web.1"));
    cr_assert(name_instance_valid("worker_2.17"));
    cr_assert_not(name_instance_valid("web.0"));
    cr_assert_not(name_instance_valid("web.01"));
    cr_assert_not(name_instance_valid("web."));
    cr_assert_not(name_instance_valid(".1"));
    cr_assert_not(name_instance_valid("web.1x"));
    cr_assert(name_config_key_valid("DATABASE_URL"));
    cr_assert(name_config_key_valid("_x1"));
    cr_assert_not(name_config_key_valid("1X"));
    cr_assert_not(name_config_key_valid("A-B"));
    cr_assert_not(name_config_key_valid("A=B"));
    cr_assert(name_node_valid("node-1.example"));
    cr_assert_not(name_node_valid("-n"));
    cr_assert_not(name_node_valid("a b"));
}

Test(names, time_format, .timeout = 2)
{
    char out[32];

    fmt_time_ms(1795514400123ull, out);
    cr_assert_str_eq(out, "2026-11-24T10:00:00.123Z");
}
