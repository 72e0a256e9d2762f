/* SPDX-License-Identifier: MIT */
/*
 * uids_test.c: a user per app: the table's parsing, the choice of the next
 * number (never one handed out before), and its persistence.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agt.h"

Test(uids, parse_skips_damaged_lines)
{
    struct agt_uid_entry *v = NULL;
    size_t n = 0;

    cr_assert_eq(agt_uids_parse("shop 61184\n\nBAD! 5\nblog 61190\nx\nnews -3\n", &v, &n), 0);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(v[0].app, "shop");
    cr_assert_eq(v[0].uid, 61184);
    cr_assert_str_eq(v[1].app, "blog");
    cr_assert_eq(v[1].uid, 61190);
    free(v);
}

Test(uids, pick_goes_above_every_number_ever_given)
{
    struct agt_uid_entry v[] = {{"a", 61184}, {"b", 61190}, {"c", 61185}};
    uint32_t uid = 0;

    cr_assert_eq(agt_uids_pick(NULL, 0, 61184, 65519, &uid), 0);
    cr_assert_eq(uid, 61184);
    cr_assert_eq(agt_uids_pick(v, 3, 61184, 65519, &uid), 0);
    cr_assert_eq(uid, 61191, "a gap left by a gone app is never reused");
    cr_assert_eq(agt_uids_pick(v, 3, 61184, 61190, &uid), -ENOSPC);
}

Test(uids, stable_across_a_restart)
{
    char dir[] = "/tmp/drover-uids.XXXXXX", cmd[64];
    struct agt_uids *u;
    uint32_t a, b, a2, c;
    int err;

    cr_assert_not_null(mkdtemp(dir));
    u = agt_uids_new(dir, 61184, 65519, &err);
    cr_assert_not_null(u);
    cr_assert_eq(agt_uids_get(u, "alpha", &a), 0);
    cr_assert_eq(agt_uids_get(u, "beta", &b), 0);
    cr_assert_eq(agt_uids_get(u, "alpha", &a2), 0);
    cr_assert_eq(a, a2);
    cr_assert_neq(a, b);
    agt_uids_free(u);
    u = agt_uids_new(dir, 61184, 65519, &err);
    cr_assert_not_null(u);
    cr_assert_eq(agt_uids_get(u, "beta", &b), 0);
    cr_assert_eq(b, 61185, "beta keeps its number after a restart");
    cr_assert_eq(agt_uids_get(u, "gamma", &c), 0);
    cr_assert_eq(c, 61186);
    agt_uids_free(u);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}
