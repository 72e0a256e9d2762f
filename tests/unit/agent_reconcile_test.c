/* SPDX-License-Identifier: MIT */
/*
 * agent_reconcile_test.c: what an agent keeps, stops and starts given what
 * it has (its report: ids, and whether each is already stopping) and what is
 * assigned to it (node-agent/reconcile.c); and how it knows again the
 * process groups a killed predecessor left running (orphans.c). Pure: no
 * process, no loop.
 */
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "agt.h"

#define CAP 100

static bool
plan_starts(const struct agt_plan *p, size_t idx)
{
    for (size_t k = 0; k < p->nstart; k++)
        if (p->start[k] == idx)
            return true;
    return false;
}

static bool
plan_drains(const struct agt_plan *p, uint64_t id)
{
    for (size_t k = 0; k < p->ndrain; k++)
        if (p->drain[k] == id)
            return true;
    return false;
}

Test(agt_reconcile, starts_missing_drains_extra_keeps_matching, .timeout = 2)
{
    const struct agt_have have[] = {{7, false}, {3, false}, {9, false}};
    const uint64_t want[] = {3, 4, 9, 12};
    struct agt_plan p;

    cr_assert_eq(agt_reconcile(have, 3, want, 4, CAP, true, &p), 0);
    cr_assert_eq(p.nstart, 2);
    cr_assert(plan_starts(&p, 1)); /* id 4 */
    cr_assert(plan_starts(&p, 3)); /* id 12 */
    cr_assert_eq(p.ndrain, 1);
    cr_assert(plan_drains(&p, 7));
    cr_assert_eq(p.nwait, 0);
    agt_plan_fini(&p);
}

Test(agt_reconcile, empty_sets, .timeout = 2)
{
    const struct agt_have have[] = {{1, false}, {2, false}};
    const uint64_t ids[] = {1, 2};
    struct agt_plan p;

    cr_assert_eq(agt_reconcile(NULL, 0, NULL, 0, CAP, true, &p), 0);
    cr_assert_eq(p.nstart + p.ndrain + p.nwait, 0);
    agt_plan_fini(&p);
    cr_assert_eq(agt_reconcile(have, 2, NULL, 0, CAP, true, &p), 0);
    cr_assert_eq(p.ndrain, 2);
    cr_assert_eq(p.nstart, 0);
    agt_plan_fini(&p);
    cr_assert_eq(agt_reconcile(NULL, 0, ids, 2, CAP, true, &p), 0);
    cr_assert_eq(p.nstart, 2);
    cr_assert_eq(p.ndrain, 0);
    agt_plan_fini(&p);
}

Test(agt_reconcile, same_set_is_a_no_op, .timeout = 2)
{
    const struct agt_have have[] = {{5, false}, {6, false}, {8, false}};
    const uint64_t want[] = {8, 5, 6};
    struct agt_plan p;

    cr_assert_eq(agt_reconcile(have, 3, want, 3, CAP, true, &p), 0);
    cr_assert_eq(p.nstart + p.ndrain + p.nwait, 0);
    agt_plan_fini(&p);
}

Test(agt_reconcile, repeated_id_starts_once, .timeout = 2)
{
    const uint64_t want[] = {4, 4, 2, 4};
    struct agt_plan p;

    cr_assert_eq(agt_reconcile(NULL, 0, want, 4, CAP, true, &p), 0);
    cr_assert_eq(p.nstart, 2);
    cr_assert(plan_starts(&p, 0));
    cr_assert(plan_starts(&p, 2));
    agt_plan_fini(&p);
}

/* A draining (or stopped, not yet forgotten) instance whose id is assigned
 * again is kept as it is: not started a second time, not drained again. */
Test(agt_reconcile, stopping_instance_is_neither_restarted_nor_drained_again, .timeout = 2)
{
    const struct agt_have have[] = {{3, true}, {4, true}};
    const uint64_t want[] = {3};
    struct agt_plan p;

    cr_assert_eq(agt_reconcile(have, 2, want, 1, CAP, true, &p), 0);
    cr_assert_eq(p.nstart, 0, "id 3 is still draining: it starts again once forgotten");
    cr_assert_eq(p.ndrain, 0, "id 4 is already draining");
    agt_plan_fini(&p);
    /* Once both are forgotten, the one still assigned starts afresh. */
    cr_assert_eq(agt_reconcile(NULL, 0, want, 1, CAP, true, &p), 0);
    cr_assert_eq(p.nstart, 1);
    agt_plan_fini(&p);
}

/* After a rejoin the controller's set no longer has what was replaced
 * elsewhere: the agent drains exactly those and keeps the rest running. */
Test(agt_reconcile, rejoin_drains_what_was_replaced_elsewhere, .timeout = 2)
{
    const struct agt_have have[] = {{10, false}, {11, false}, {12, false}, {13, false}};
    const uint64_t want[] = {11, 13};
    struct agt_plan p;

    cr_assert_eq(agt_reconcile(have, 4, want, 2, CAP, true, &p), 0);
    cr_assert_eq(p.ndrain, 2);
    cr_assert(plan_drains(&p, 10));
    cr_assert(plan_drains(&p, 12));
    cr_assert_eq(p.nstart, 0);
    agt_plan_fini(&p);
}

Test(agt_reconcile, capacity_bounds_starts_and_the_rest_waits, .timeout = 2)
{
    const struct agt_have have[] = {{1, false}, {2, true}, {3, false}};
    const uint64_t want[] = {1, 5, 6, 7};
    struct agt_plan p;

    /* Capacity 3: id 1 runs (3 is drained, 2 is stopping: neither counts),
     * so two of the three new ones start, in the set's order. */
    cr_assert_eq(agt_reconcile(have, 3, want, 4, 3, true, &p), 0);
    cr_assert(plan_drains(&p, 3));
    cr_assert_eq(p.nstart, 2);
    cr_assert(plan_starts(&p, 1));
    cr_assert(plan_starts(&p, 2));
    cr_assert_eq(p.nwait, 1);
    agt_plan_fini(&p);
}

/* Leaving (SIGTERM): nothing new starts, but what is no longer assigned is
 * still drained and what is assigned keeps running. */
Test(agt_reconcile, leaving_starts_nothing_and_still_drains, .timeout = 2)
{
    const struct agt_have have[] = {{1, false}, {2, false}};
    const uint64_t want[] = {2, 9};
    struct agt_plan p;

    cr_assert_eq(agt_reconcile(have, 2, want, 2, CAP, false, &p), 0);
    cr_assert_eq(p.nstart, 0);
    cr_assert_eq(p.nwait, 1);
    cr_assert_eq(p.ndrain, 1);
    cr_assert(plan_drains(&p, 1));
    agt_plan_fini(&p);
}

/* ---- orphans: knowing a group again after a SIGKILL ---- */

static struct agt_runrec
rec(int pgid, uint64_t start)
{
    struct agt_runrec r = {
        .id = 42, .pgid = pgid, .start = start, .grace_ms = 1000, .port = 5001, .release = 3};

    strcpy(r.app, "shop");
    strcpy(r.name, "web.2");
    memset(r.sha, 'a', 64);
    return r;
}

Test(agt_orphans, leader_alive_with_the_recorded_start_is_ours, .timeout = 2)
{
    struct agt_runrec r = rec(500, 1234);
    struct agt_proc procs[] = {
        {1, 1, 1, 'S', 1}, {500, 500, 500, 'S', 1234}, {501, 500, 500, 'S', 1240}};

    cr_assert(agt_orphan_match(&r, procs, 3));
}

Test(agt_orphans, reused_pid_is_not_ours, .timeout = 2)
{
    struct agt_runrec r = rec(500, 1234);
    struct agt_proc other_start[] = {{500, 500, 500, 'S', 9999}};
    struct agt_proc not_a_leader[] = {{500, 77, 77, 'S', 1234}};

    cr_assert_not(agt_orphan_match(&r, other_start, 1));
    cr_assert_not(agt_orphan_match(&r, not_a_leader, 1));
}

Test(agt_orphans, members_left_by_a_dead_leader_are_ours, .timeout = 2)
{
    struct agt_runrec r = rec(500, 1234);
    struct agt_proc grandchild[] = {{1, 1, 1, 'S', 1}, {612, 500, 500, 'S', 1300}};
    struct agt_proc older[] = {{612, 500, 500, 'S', 1000}};

    cr_assert(agt_orphan_match(&r, grandchild, 2));
    cr_assert_not(agt_orphan_match(&r, older, 1), "started before our leader: not from it");
}

Test(agt_orphans, zombies_and_other_sessions_do_not_count, .timeout = 2)
{
    struct agt_runrec r = rec(500, 1234);
    struct agt_proc zombies[] = {{500, 500, 500, 'Z', 1234}, {501, 500, 500, 'Z', 1240}};
    struct agt_proc other_session[] = {{700, 500, 700, 'S', 1300}};

    cr_assert_not(agt_orphan_match(&r, zombies, 2), "nothing runs");
    cr_assert_not(agt_orphan_match(&r, other_session, 1));
    cr_assert_not(agt_orphan_match(&r, NULL, 0));
}

Test(agt_orphans, record_round_trip_and_bad_records, .timeout = 2)
{
    struct agt_runrec r = rec(4242, 987654321), back;
    char line[256];

    cr_assert_eq(agt_runrec_format(&r, line, sizeof line), 0);
    cr_assert_eq(agt_runrec_parse(line, &back), 0, "%s", line);
    cr_assert_eq(back.id, 42);
    cr_assert_eq(back.pgid, 4242);
    cr_assert_eq(back.start, 987654321);
    cr_assert_eq(back.grace_ms, 1000);
    cr_assert_eq(back.port, 5001);
    cr_assert_eq(back.release, 3);
    cr_assert_str_eq(back.app, "shop");
    cr_assert_str_eq(back.name, "web.2");
    cr_assert_str_eq(back.sha, r.sha);
    cr_assert_lt(agt_runrec_parse("", &back), 0);
    cr_assert_lt(agt_runrec_parse("2 42 4242 1 1 5001 3 shop web.2 x", &back), 0);
    cr_assert_lt(agt_runrec_parse("1 42 1 1 1 5001 3 shop web.2 x", &back), 0, "pgid 1");
    r.pgid = 0;
    cr_assert_eq(agt_runrec_format(&r, line, sizeof line), 0);
    cr_assert_lt(agt_runrec_parse(line, &back), 0);
}

Test(agt_orphans, proc_stat_parsing, .timeout = 2)
{
    /* comm with a space and a parenthesis, as the kernel writes it. */
    const char *stat = "4242 (py (web) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 1 0 0 20 0 1 0 "
                       "123456 1000 200 18446744073709551615";
    struct agt_proc p;

    cr_assert_eq(agt_proc_parse(stat, &p), 0);
    cr_assert_eq(p.pid, 4242);
    cr_assert_eq(p.state, 'S');
    cr_assert_eq(p.pgrp, 4242);
    cr_assert_eq(p.sid, 4242);
    cr_assert_eq(p.start, 123456);
    cr_assert_lt(agt_proc_parse("12 (x) S 1", &p), 0);
    /* This very process reads back. */
    cr_assert_eq(agt_proc_read(getpid(), &p), 0);
    cr_assert_eq(p.pid, getpid());
    cr_assert_gt(p.start, 0);
}

/* An assignment's config vars: inline (an older controller), or the env set
 * it names in the reply; naming one the reply does not hold is refused. */
Test(agt_env_sets, an_assignment_gets_the_config_vars_its_set_holds, .timeout = 2)
{
    Drover__KeyValue kv[2] = {DROVER__KEY_VALUE__INIT, DROVER__KEY_VALUE__INIT};
    Drover__KeyValue *env[2] = {&kv[0], &kv[1]}, *inline_env[1] = {&kv[1]};
    Drover__EnvSet set = DROVER__ENV_SET__INIT, *sets[1] = {&set};
    Drover__Assignment as = DROVER__ASSIGNMENT__INIT, one;
    const Drover__Assignment *got;

    kv[0].key = "DATABASE_URL";
    kv[0].value = "postgres://db/shop";
    kv[1].key = "SECRET";
    kv[1].value = "s";
    set.env = env;
    set.n_env = 2;
    as.env = inline_env;
    as.n_env = 1;
    cr_assert_eq(agt_assignment_env(&as, sets, 1, &one), &as, "inline: itself");
    as.env = NULL;
    as.n_env = 0;
    as.env_set = 1;
    got = agt_assignment_env(&as, sets, 1, &one);
    cr_assert_eq(got, &one);
    cr_assert_eq(got->n_env, 2);
    cr_assert_str_eq(got->env[0]->key, "DATABASE_URL");
    cr_assert_eq(as.n_env, 0, "the reply's own assignment is untouched");
    as.env_set = 2;
    cr_assert_null(agt_assignment_env(&as, sets, 1, &one), "no such set");
    cr_assert_null(agt_assignment_env(&as, NULL, 0, &one), "no sets at all");
    as.env_set = 1;
    as.env = inline_env;
    as.n_env = 1;
    cr_assert_null(agt_assignment_env(&as, sets, 1, &one), "both: refused");
}
