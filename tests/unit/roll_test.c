/* SPDX-License-Identifier: MIT */
/*
 * roll_test.c: rolling deploys (controller/reconcile.c, deploys.c). First the
 * batch planner, pure: max_surge and max_unavailable arithmetic for 1..N
 * instances and percentages. Then whole rollouts through the model, with
 * the agents played by the test: batches never go below the formation or
 * above its surge, types roll in parallel, a crash reverts to the last good
 * release, a timeout fails, a newer deploy supersedes.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "log.h"

/* ---- limits ---- */

Test(roll_limits, defaults_are_a_quarter_rounded_up_and_at_least_one, .timeout = 2)
{
    uint32_t s, u;

    for (uint32_t want = 1; want <= 100; want++) {
        ctl_roll_limits("25%", "0", want, &s, &u);
        cr_assert_eq(s, (want + 3) / 4, "want=%u surge=%u", want, s);
        cr_assert_geq(s, 1);
        cr_assert_eq(u, 0);
    }
}

Test(roll_limits, unavailable_rounds_down_surge_rounds_up, .timeout = 2)
{
    uint32_t s, u;

    ctl_roll_limits("10%", "10%", 15, &s, &u);
    cr_assert_eq(s, 2);
    cr_assert_eq(u, 1);
    ctl_roll_limits("0", "50%", 3, &s, &u);
    cr_assert_eq(s, 0);
    cr_assert_eq(u, 1);
    ctl_roll_limits("100%", "100%", 7, &s, &u);
    cr_assert_eq(s, 7);
    cr_assert_eq(u, 7);
}

Test(roll_limits, counts_are_taken_as_they_are, .timeout = 2)
{
    uint32_t s, u;

    ctl_roll_limits("3", "2", 10, &s, &u);
    cr_assert_eq(s, 3);
    cr_assert_eq(u, 2);
}

Test(roll_limits, both_zero_means_one_surge, .timeout = 2)
{
    uint32_t s, u;

    ctl_roll_limits("0", "0", 4, &s, &u);
    cr_assert_eq(s, 1);
    cr_assert_eq(u, 0);
    ctl_roll_limits("10%", "10%", 3, &s, &u); /* 0.3 up is 1; 0.3 down is 0 */
    cr_assert_eq(s, 1);
    cr_assert_eq(u, 0);
    ctl_roll_limits("0%", "10%", 5, &s, &u);
    cr_assert_eq(s, 1);
    cr_assert_eq(u, 0);
}

/* ---- the planner ---- */

/*
 * Play a whole rollout with the planner alone: each round, new instances
 * come up and old ones stop as planned; check the bounds at every step.
 */
static unsigned
play(uint32_t want, const char *surge_s, const char *unavail_s)
{
    struct ctl_roll r = {.want = want, .old_live = want, .old_up = want};
    unsigned rounds = 0;

    ctl_roll_limits(surge_s, unavail_s, want, &r.surge, &r.unavailable);
    while (r.old_live > 0 || r.new_up < want) {
        ctl_roll_plan(&r);
        cr_assert_leq(r.stop_old, r.old_live);
        /* Those not up go first (reconcile.c's order). */
        uint32_t down = r.old_live - r.old_up;
        r.old_up -= r.stop_old > down ? r.stop_old - down : 0;
        r.old_live -= r.stop_old;
        r.new_live += r.create;
        cr_assert_leq(r.new_live + r.old_live, want + r.surge, "want=%u surge=%u: %u new + %u old",
                      want, r.surge, r.new_live, r.old_live);
        cr_assert_geq(r.new_up + r.old_up + r.unavailable, want,
                      "want=%u unavailable=%u: %u + %u up", want, r.unavailable, r.new_up,
                      r.old_up);
        r.new_up = r.new_live; /* the batch comes up */
        cr_assert_lt(++rounds, 4 * want + 4, "no progress: want=%u", want);
    }
    cr_assert_eq(r.new_live, want);
    return rounds;
}

Test(roll_plan, every_size_from_1_to_64_finishes_within_bounds, .timeout = 5)
{
    for (uint32_t want = 1; want <= 64; want++) {
        play(want, "25%", "0");
        play(want, "1", "0");
        play(want, "0", "1");
        play(want, "50%", "25%");
        play(want, "100%", "0");
    }
}

Test(roll_plan, batch_size_follows_surge, .timeout = 2)
{
    /* web=4 with 25%: one at a time, so 4 batches (+1 to retire the last old one). */
    cr_assert_eq(play(4, "25%", "0"), 5);
    /* 100% surge: all new at once, then all old go. */
    cr_assert_eq(play(4, "100%", "0"), 2);
    /* max_unavailable=100%, surge 0: all old stop and all new start at once. */
    cr_assert_eq(play(4, "0", "100%"), 1);
}

/*
 * Whole batches (issue 15): the agents report a batch up a few at a time
 * (one per round here); while any of the batch is still starting nothing
 * moves, and once the last is up the next batch is made whole. Bounds hold
 * at every step; 1,000 with 25% surge take 4 batches of 250.
 */
Test(roll_plan, a_batch_coming_up_in_a_trickle_moves_whole, .timeout = 5)
{
    struct ctl_roll r = {.want = 1000, .old_live = 1000, .old_up = 1000};
    unsigned batches = 0, rounds = 0;

    ctl_roll_limits("25%", "0", r.want, &r.surge, &r.unavailable);
    while (r.old_live > 0 || r.new_up < r.want) {
        r.new_starting = r.new_live - r.new_up;
        ctl_roll_plan(&r);
        if (r.new_starting > 0) {
            cr_assert_eq(r.create, 0, "created %u with %u starting", r.create, r.new_starting);
            cr_assert_eq(r.stop_old, 0, "stopped %u with %u starting", r.stop_old, r.new_starting);
        }
        if (r.create > 0) {
            cr_assert(r.create == 250 || r.old_live == r.stop_old, "a batch of %u", r.create);
            batches++;
        }
        r.old_up -= r.stop_old;
        r.old_live -= r.stop_old;
        r.new_live += r.create;
        cr_assert_leq(r.new_live + r.old_live, r.want + r.surge);
        cr_assert_geq(r.new_up + r.old_up, r.want);
        if (r.new_up < r.new_live)
            r.new_up++; /* one more reported up */
        cr_assert_lt(++rounds, 10000u);
    }
    cr_assert_eq(batches, 4);
}

Test(roll_plan, first_batch_of_web4, .timeout = 2)
{
    struct ctl_roll r = {.want = 4, .surge = 1, .old_live = 4, .old_up = 4};

    ctl_roll_plan(&r);
    cr_assert_eq(r.create, 1);
    cr_assert_eq(r.stop_old, 0);
    r.new_live = 1;
    ctl_roll_plan(&r); /* the new one is not up yet: wait */
    cr_assert_eq(r.create, 0);
    cr_assert_eq(r.stop_old, 0);
    r.new_up = 1;
    ctl_roll_plan(&r); /* up: one old goes, and the next new one starts */
    cr_assert_eq(r.stop_old, 1);
    cr_assert_eq(r.create, 1);
}

Test(roll_plan, old_instances_still_starting_are_not_all_killed, .timeout = 2)
{
    struct ctl_roll r = {.want = 4, .surge = 1, .old_live = 4, .old_up = 0};

    ctl_roll_plan(&r);
    cr_assert_eq(r.stop_old, 0, "nothing is up yet: no old one may go");
    cr_assert_eq(r.create, 1);
}

Test(roll_plan, old_instances_not_up_go_first_within_the_budget, .timeout = 2)
{
    /* 2 new up + 2 old up = 4 = want: the 2 old that are down may go. */
    struct ctl_roll r = {
        .want = 4, .surge = 1, .new_live = 2, .new_up = 2, .old_live = 4, .old_up = 2};

    ctl_roll_plan(&r);
    cr_assert_eq(r.stop_old, 2);
    cr_assert_eq(r.create, 1); /* 2 old left + 3 new = 5 */
}

Test(roll_plan, crashing_old_ones_are_replaced_one_batch_at_a_time, .timeout = 2)
{
    /* A revert: the failed release's 4 crash; the good one has none yet. */
    struct ctl_roll r = {.want = 4, .surge = 1, .old_live = 4, .old_up = 0};
    int rounds = 0;

    while (r.old_live > 0 || r.new_up < r.want) {
        ctl_roll_plan(&r);
        r.old_live -= r.stop_old;
        r.new_live += r.create;
        r.new_up = r.new_live;
        cr_assert_lt(++rounds, 12);
    }
    cr_assert_eq(r.new_live, 4);
}

Test(roll_plan, no_old_is_plain_scaling, .timeout = 2)
{
    struct ctl_roll r = {.want = 6, .surge = 2, .new_live = 2, .new_up = 2};

    ctl_roll_plan(&r);
    cr_assert_eq(r.create, 4);
    cr_assert_eq(r.stop_old, 0);
}

Test(roll_plan, scaled_to_zero_mid_rollout_stops_every_old_one, .timeout = 2)
{
    struct ctl_roll r = {.want = 0, .surge = 1, .new_live = 1, .old_live = 3, .old_up = 3};

    ctl_roll_plan(&r);
    cr_assert_eq(r.stop_old, 3);
    cr_assert_eq(r.create, 0);
}

Test(roll_plan, scaled_up_mid_rollout_keeps_the_old_until_new_ones_are_up, .timeout = 2)
{
    struct ctl_roll r = {
        .want = 8, .surge = 2, .new_live = 1, .new_up = 1, .old_live = 3, .old_up = 3};

    ctl_roll_plan(&r);
    cr_assert_eq(r.stop_old, 0);
    cr_assert_eq(r.create, 6); /* 8 + 2 - 3 old = 7 new in all */
}

/* ---- through the model ---- */

static struct ctl_model *m;
static struct ctl_app *app;
static char events[8192];

static void
on_event(void *arg, const char *a, const char *text)
{
    (void)arg;
    (void)a;
    strncat(events, text, sizeof(events) - strlen(events) - 2);
    strcat(events, "\n");
}

static struct ctl_release *
release(uint32_t version, const char *const *types, size_t n)
{
    struct ctl_release *r = ctl_release_new();

    r->version = version;
    memset(r->slug_sha256, 'a' + (int)version, 64);
    r->description = strdup("test");
    r->types = calloc(n + 1, sizeof(*r->types));
    for (size_t i = 0; i < n; i++) {
        strcpy(r->types[i].name, types[i]);
        r->types[i].command = strdup("./run");
        if (ctl_formation_find(app, types[i]) == NULL)
            cr_assert_eq(ctl_formation_add(app, types[i], 0, NULL), 0);
    }
    r->ntypes = n;
    cr_assert_eq(ctl_release_append(app, r), 0);
    return r;
}

static void
setup(void)
{
    log_set_level(LOG_ERROR);
    events[0] = '\0';
    m = ctl_model_new();
    cr_assert_not_null(m);
    m->event = on_event;
    cr_assert_eq(ctl_app_add(m, "shop", 1, &app), 0);
    for (int i = 0; i < 3; i++) {
        struct ctl_node *n = NULL;
        char name[8];

        snprintf(name, sizeof(name), "n%d", i + 1);
        cr_assert_eq(ctl_node_add(m, name, &n), 0);
        cr_assert_eq(ctl_node_set_range(n, 5000, 5099), 0);
        n->capacity = 100;
        ctl_node_update(m, n, false, CTL_NODE_READY, false);
    }
}

static void
teardown(void)
{
    ctl_model_free(m);
}

TestSuite(roll, .init = setup, .fini = teardown);

/* Make version current, as api.c does for a new release. */
static void
deploy(uint32_t version, uint64_t now)
{
    app->current = version;
    ctl_deploy_start(m, app, now);
    cr_assert_eq(ctl_reconcile_app(m, app, now), 0);
    cr_assert_eq(ctl_settle(m, now), 0);
}

/* The agents: placed instances come up, stopped ones go. */
static void
agents_step(uint64_t now)
{
    struct ctl_instance *in, *next;

    for (in = LIST_FIRST(&app->instances); in != NULL; in = next) {
        next = LIST_NEXT(in, app_link);
        if (in->stopping)
            ctl_inst_delete(m, in);
        else if (in->node != NULL && in->state != DROVER__INSTANCE_STATE__ST_UP)
            ctl_inst_set_state(m, in, DROVER__INSTANCE_STATE__ST_UP, now);
    }
    cr_assert_eq(ctl_settle(m, now), 0);
}

struct tally {
    uint32_t up, live, on_release;
};

static struct tally
tally(const char *type, uint32_t release)
{
    struct tally t = {0};
    struct ctl_instance *in;

    LIST_FOREACH (in, &app->instances, app_link) {
        if (in->stopping || strcmp(in->type, type) != 0)
            continue;
        t.live++;
        t.up += in->state == DROVER__INSTANCE_STATE__ST_UP;
        t.on_release += in->release == release && in->state == DROVER__INSTANCE_STATE__ST_UP;
    }
    return t;
}

static void
run_v1_web(uint32_t web)
{
    static const char *const types[] = {"web"};

    release(1, types, 1);
    ctl_formation_find(app, "web")->quantity = web;
    deploy(1, 1000);
    agents_step(1001);
    cr_assert_eq(app->deploy.state, CTL_DEPLOY_SUCCEEDED);
    cr_assert_eq(app->good, 1);
    cr_assert_eq(tally("web", 1).on_release, web);
}

Test(roll, web4_never_below_4_up_nor_above_5_live, .timeout = 2)
{
    static const char *const types[] = {"web"};
    int steps = 0;

    run_v1_web(4);
    release(2, types, 1);
    deploy(2, 2000);
    while (app->deploy.state == CTL_DEPLOY_RUNNING) {
        struct tally t = tally("web", 2);

        cr_assert_geq(t.up, 4, "step %d: %u up", steps, t.up);
        cr_assert_leq(t.live, 5, "step %d: %u live", steps, t.live);
        agents_step(2001 + (uint64_t)steps);
        cr_assert_lt(++steps, 20);
    }
    cr_assert_eq(app->deploy.state, CTL_DEPLOY_SUCCEEDED);
    cr_assert_eq(tally("web", 2).on_release, 4);
    cr_assert_eq(tally("web", 2).live, 4);
    cr_assert_str_eq(ctl_release_get(app, 2)->status, "succeeded");
    cr_assert_eq(app->good, 2);
    cr_assert_geq(steps, 4, "one at a time: %d steps", steps);
}

Test(roll, types_roll_in_parallel, .timeout = 2)
{
    static const char *const types[] = {"web", "worker"};
    struct ctl_instance *in;
    bool web_new = false, worker_new = false;

    release(1, types, 2);
    ctl_formation_find(app, "web")->quantity = 4;
    ctl_formation_find(app, "worker")->quantity = 2;
    deploy(1, 1000);
    agents_step(1001);
    release(2, types, 2);
    deploy(2, 2000);
    /* The first batch already has a new instance of each type. */
    LIST_FOREACH (in, &app->instances, app_link) {
        web_new |= in->release == 2 && strcmp(in->type, "web") == 0;
        worker_new |= in->release == 2 && strcmp(in->type, "worker") == 0;
    }
    cr_assert(web_new && worker_new);
    for (int i = 0; i < 20 && app->deploy.state == CTL_DEPLOY_RUNNING; i++)
        agents_step(2001 + (uint64_t)i);
    cr_assert_eq(app->deploy.state, CTL_DEPLOY_SUCCEEDED);
    cr_assert_eq(tally("worker", 2).on_release, 2);
}

Test(roll, a_crash_reverts_to_the_last_good_release, .timeout = 2)
{
    static const char *const types[] = {"web"};
    struct ctl_instance *in;

    run_v1_web(4);
    cr_assert_eq(ctl_config_set(app, "V", "1"), 0);
    release(2, types, 1);
    deploy(2, 2000);
    LIST_FOREACH (in, &app->instances, app_link) {
        if (in->release == 2)
            break;
    }
    cr_assert_not_null(in);
    in->exit_code = 3;
    ctl_inst_report(m, in, DROVER__INSTANCE_STATE__ST_CRASHED, 2001, 2001);
    cr_assert_eq(app->deploy.state, CTL_DEPLOY_FAILED);
    cr_assert_eq(app->current, 1);
    cr_assert_str_eq(ctl_release_get(app, 2)->status, "failed");
    cr_assert(strstr(ctl_release_get(app, 2)->reason, "web.1 crashed (exit code 3)") != NULL, "%s",
              ctl_release_get(app, 2)->reason);
    cr_assert_eq(app->nconfig, 0, "the config of v1 is back");
    cr_assert(strstr(events, "failed") != NULL);
    cr_assert_eq(ctl_settle(m, 2002), 0);
    agents_step(2003);
    cr_assert_eq(tally("web", 1).on_release, 4);
    cr_assert_eq(tally("web", 1).live, 4);
}

Test(roll, a_failed_first_deploy_leaves_nothing_running, .timeout = 2)
{
    static const char *const types[] = {"web"};
    struct ctl_instance *in;

    release(1, types, 1);
    ctl_formation_find(app, "web")->quantity = 2;
    deploy(1, 1000);
    in = LIST_FIRST(&app->instances);
    ctl_inst_report(m, in, DROVER__INSTANCE_STATE__ST_FAILED, 1001, 1001);
    cr_assert_eq(app->deploy.state, CTL_DEPLOY_FAILED);
    cr_assert_eq(app->current, 0);
    cr_assert_eq(ctl_settle(m, 1002), 0);
    cr_assert_eq(tally("web", 1).live, 0);
}

Test(roll, a_deploy_that_takes_too_long_times_out, .timeout = 2)
{
    static const char *const types[] = {"web"};

    run_v1_web(2);
    ctl_formation_find(app, "web")->deploy_timeout_ms = 5000;
    release(2, types, 1);
    deploy(2, 10000);
    cr_assert_not(ctl_deploys_tick(m, 14999));
    cr_assert(ctl_deploys_tick(m, 15000));
    cr_assert_eq(app->deploy.state, CTL_DEPLOY_FAILED);
    cr_assert(strstr(app->deploy.reason, "timed out after 5 s with web 0/2 up on v2") != NULL, "%s",
              app->deploy.reason);
    cr_assert_eq(app->current, 1);
}

Test(roll, a_newer_deploy_supersedes_and_keeps_the_last_good_one, .timeout = 2)
{
    static const char *const types[] = {"web"};

    run_v1_web(2);
    release(2, types, 1);
    deploy(2, 2000);
    release(3, types, 1);
    deploy(3, 2001);
    cr_assert_str_eq(ctl_release_get(app, 2)->status, "superseded");
    cr_assert_eq(app->deploy.release, 3);
    cr_assert_eq(app->deploy.from, 1);
    for (int i = 0; i < 20 && app->deploy.state == CTL_DEPLOY_RUNNING; i++)
        agents_step(2002 + (uint64_t)i);
    cr_assert_eq(app->deploy.state, CTL_DEPLOY_SUCCEEDED);
    cr_assert_eq(tally("web", 3).on_release, 2);
    cr_assert_eq(tally("web", 3).live, 2);
}

Test(roll, a_boot_timeout_is_said_as_such, .timeout = 2)
{
    static const char *const types[] = {"web"};
    struct ctl_instance *in;

    run_v1_web(1);
    release(2, types, 1);
    deploy(2, 2000);
    LIST_FOREACH (in, &app->instances, app_link) {
        if (in->release == 2)
            break;
    }
    cr_assert_not_null(in);
    in->exit_signal = 9;
    strcpy(in->reason, "not healthy within 60.0 s (killed); restarting");
    in->cause = DROVER__INSTANCE_CAUSE__CAUSE_BOOT_TIMEOUT;
    ctl_inst_report(m, in, DROVER__INSTANCE_STATE__ST_CRASHED, 2001, 2001);
    cr_assert_str_eq(app->deploy.reason, "web.1 was not healthy within 60.0 s (killed)");
}
