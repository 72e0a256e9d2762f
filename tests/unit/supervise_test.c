/* SPDX-License-Identifier: MIT */
/*
 * supervise_test.c: the agent's supervisor table and instance record
 * (node-agent/supervise.c), assignment checks and process environment
 * (spec.c). No process, no loop. Reconcile is in agent_reconcile_test.c.
 */
#include <string.h>

#include <criterion/criterion.h>

#include "agt.h"

static unsigned
step(enum agt_state st, enum agt_event ev, enum agt_state *next)
{
    unsigned acts;
    bool ignored;

    *next = agt_sup_next(st, ev, &acts, &ignored);
    cr_assert_not(ignored, "%s + %s ignored", agt_state_name(st), agt_event_name(ev));
    return acts;
}

static void
assert_ignored(enum agt_state st, enum agt_event ev)
{
    unsigned acts;
    bool ignored;

    cr_assert_eq(agt_sup_next(st, ev, &acts, &ignored), st);
    cr_assert(ignored, "%s + %s not ignored", agt_state_name(st), agt_event_name(ev));
    cr_assert_eq(acts, 0);
}

Test(supervise, pending_slug_ready_spawns, .timeout = 2)
{
    enum agt_state next;
    unsigned a = step(AGT_PENDING, AGT_EV_SLUG_READY, &next);

    cr_assert_eq(next, AGT_STARTING);
    cr_assert_eq(a, AGT_A_SPAWN);
}

Test(supervise, spawned_starts_health_and_boot_timer, .timeout = 2)
{
    enum agt_state next;
    unsigned a = step(AGT_STARTING, AGT_EV_SPAWNED, &next);

    cr_assert_eq(next, AGT_STARTING);
    cr_assert_eq(a, AGT_A_HEALTH | AGT_A_BOOT);
    cr_assert_eq(step(AGT_STARTING, AGT_EV_HEALTHY, &next), 0);
    cr_assert_eq(next, AGT_UP);
}

Test(supervise, starting_exited_is_crash_with_restart, .timeout = 2)
{
    enum agt_state next;
    unsigned a = step(AGT_STARTING, AGT_EV_EXITED, &next);

    cr_assert_eq(next, AGT_CRASHED);
    cr_assert(a & AGT_A_CRASH);
    cr_assert(a & AGT_A_BACKOFF);
    cr_assert(a & AGT_A_KILL, "the group must be killed when its leader exits");
    cr_assert_eq(step(AGT_CRASHED, AGT_EV_BACKOFF_EXPIRED, &next), AGT_A_SPAWN);
    cr_assert_eq(next, AGT_STARTING);
}

Test(supervise, up_exited_is_crash, .timeout = 2)
{
    enum agt_state next;
    unsigned a = step(AGT_UP, AGT_EV_EXITED, &next);

    cr_assert_eq(next, AGT_CRASHED);
    cr_assert_eq(a, AGT_A_KILL | AGT_A_CRASH | AGT_A_BACKOFF);
}

Test(supervise, up_stop_waits_the_shutdown_delay_then_drains, .timeout = 2)
{
    enum agt_state next;

    cr_assert_eq(step(AGT_UP, AGT_EV_STOP, &next), AGT_A_DELAY, "no signal yet");
    cr_assert_eq(next, AGT_DELAYING);
    cr_assert_eq(agt_state_wire(AGT_DELAYING), DROVER__INSTANCE_STATE__ST_DRAINING,
                 "reported draining from the start of the delay");
    cr_assert_eq(step(AGT_DELAYING, AGT_EV_DELAY_EXPIRED, &next), AGT_A_TERM | AGT_A_GRACE);
    cr_assert_eq(next, AGT_DRAINING);
}

Test(supervise, starting_stop_drains_at_once, .timeout = 2)
{
    enum agt_state next;

    cr_assert_eq(step(AGT_STARTING, AGT_EV_STOP, &next), AGT_A_TERM | AGT_A_GRACE,
                 "not up: nobody routes to it, no delay");
    cr_assert_eq(next, AGT_DRAINING);
}

Test(supervise, exit_during_the_delay_ends_the_drain, .timeout = 2)
{
    enum agt_state next;
    unsigned a = step(AGT_DELAYING, AGT_EV_EXITED, &next);

    cr_assert_eq(next, AGT_DRAINING, "the rest of the group may still be running");
    cr_assert_eq(a, AGT_A_TERM | AGT_A_GRACE | AGT_A_WATCH, "no crash, no restart");
    cr_assert_eq(step(AGT_DELAYING, AGT_EV_DONE, &next), AGT_A_TERM | AGT_A_GRACE | AGT_A_WATCH);
    cr_assert_eq(next, AGT_DRAINING);
}

Test(supervise, delaying_second_signal_kills, .timeout = 2)
{
    enum agt_state next;

    cr_assert_eq(step(AGT_DELAYING, AGT_EV_KILL, &next), AGT_A_KILL);
    cr_assert_eq(next, AGT_DRAINING, "its exit then ends the drain");
}

Test(supervise, delaying_ignores_what_does_not_concern_it, .timeout = 2)
{
    assert_ignored(AGT_DELAYING, AGT_EV_STOP);
    assert_ignored(AGT_DELAYING, AGT_EV_HEALTHY);
    assert_ignored(AGT_DELAYING, AGT_EV_BOOT_TIMEOUT);
    assert_ignored(AGT_DELAYING, AGT_EV_GRACE_EXPIRED);
    assert_ignored(AGT_DELAYING, AGT_EV_GROUP_GONE);
    assert_ignored(AGT_DELAYING, AGT_EV_BACKOFF_EXPIRED);
    /* A delay timer that lost a race with a state change. */
    assert_ignored(AGT_DRAINING, AGT_EV_DELAY_EXPIRED);
    assert_ignored(AGT_UP, AGT_EV_DELAY_EXPIRED);
    assert_ignored(AGT_STOPPED, AGT_EV_DELAY_EXPIRED);
}

Test(supervise, draining_exit_waits_for_the_group_and_is_not_a_crash, .timeout = 2)
{
    enum agt_state next;
    unsigned a = step(AGT_DRAINING, AGT_EV_EXITED, &next);

    cr_assert_eq(next, AGT_DRAINING, "the rest of the group may still be shutting down");
    cr_assert_eq(a, AGT_A_WATCH, "no SIGKILL before the grace period, no crash, no restart");
    cr_assert_eq(step(AGT_DRAINING, AGT_EV_GROUP_GONE, &next), 0);
    cr_assert_eq(next, AGT_STOPPED);
    assert_ignored(AGT_UP, AGT_EV_GROUP_GONE);
}

Test(supervise, grace_expired_kills_group, .timeout = 2)
{
    enum agt_state next;

    cr_assert_eq(step(AGT_DRAINING, AGT_EV_GRACE_EXPIRED, &next), AGT_A_KILL);
    cr_assert_eq(next, AGT_DRAINING, "still draining until the exit is seen");
    assert_ignored(AGT_DRAINING, AGT_EV_STOP);
    assert_ignored(AGT_DRAINING, AGT_EV_HEALTHY);
}

Test(supervise, stop_without_process_stops_at_once, .timeout = 2)
{
    enum agt_state next;

    cr_assert_eq(step(AGT_CRASHED, AGT_EV_STOP, &next), 0);
    cr_assert_eq(next, AGT_STOPPED);
    cr_assert_eq(step(AGT_PENDING, AGT_EV_STOP, &next), 0);
    cr_assert_eq(next, AGT_STOPPED);
    cr_assert_eq(step(AGT_FAILED, AGT_EV_STOP, &next), 0);
    cr_assert_eq(next, AGT_STOPPED);
}

Test(supervise, boot_timeout_kills_and_exit_counts_as_crash, .timeout = 2)
{
    enum agt_state next;

    cr_assert_eq(step(AGT_STARTING, AGT_EV_BOOT_TIMEOUT, &next), AGT_A_KILL);
    cr_assert_eq(next, AGT_STARTING);
    cr_assert(step(AGT_STARTING, AGT_EV_EXITED, &next) & AGT_A_CRASH);
}

Test(supervise, spawn_failed_is_crash, .timeout = 2)
{
    enum agt_state next;

    cr_assert_eq(step(AGT_STARTING, AGT_EV_SPAWN_FAILED, &next), AGT_A_CRASH | AGT_A_BACKOFF);
    cr_assert_eq(next, AGT_CRASHED);
}

Test(supervise, slug_failure_and_recovery, .timeout = 2)
{
    enum agt_state next;

    cr_assert_eq(step(AGT_PENDING, AGT_EV_SLUG_FAILED, &next), 0);
    cr_assert_eq(next, AGT_FAILED);
    cr_assert_eq(step(AGT_FAILED, AGT_EV_SLUG_READY, &next), AGT_A_SPAWN);
    cr_assert_eq(next, AGT_STARTING);
}

Test(supervise, stopped_is_final, .timeout = 2)
{
    for (int ev = 0; ev < AGT_NEVENTS; ev++)
        assert_ignored(AGT_STOPPED, (enum agt_event)ev);
}

Test(supervise, late_events_are_ignored, .timeout = 2)
{
    /* A timer or health result that lost a race with a state change. */
    assert_ignored(AGT_UP, AGT_EV_HEALTHY);
    assert_ignored(AGT_UP, AGT_EV_BOOT_TIMEOUT);
    assert_ignored(AGT_CRASHED, AGT_EV_GRACE_EXPIRED);
    assert_ignored(AGT_CRASHED, AGT_EV_EXITED);
    assert_ignored(AGT_PENDING, AGT_EV_EXITED);
    assert_ignored(AGT_STARTING, AGT_EV_SLUG_READY);
}

Test(supervise, every_state_has_a_way_to_stop, .timeout = 2)
{
    for (int st = 0; st < AGT_NSTATES; st++) {
        unsigned acts;
        bool ignored;
        enum agt_state next = agt_sup_next((enum agt_state)st, AGT_EV_STOP, &acts, &ignored);

        if (st == AGT_STOPPED || st == AGT_DRAINING || st == AGT_DELAYING)
            continue;
        if (next == AGT_DELAYING) /* its timer, or at once when the delay is 0 */
            next = agt_sup_next(next, AGT_EV_DELAY_EXPIRED, &acts, &ignored);
        cr_assert(next == AGT_STOPPED || next == AGT_DRAINING, "state %s",
                  agt_state_name((enum agt_state)st));
    }
}

Test(supervise, out_of_range_is_ignored, .timeout = 2)
{
    assert_ignored(AGT_UP, AGT_NEVENTS);
    assert_ignored(AGT_NSTATES, AGT_EV_STOP);
}

/* ---- agt_sup_apply: the record ---- */

Test(supervise, crash_then_backoff, .timeout = 2)
{
    struct agt_sup s;
    unsigned a;

    agt_sup_init(&s, 1000);
    cr_assert_eq(s.state, AGT_PENDING);
    cr_assert_eq(s.exit_code, -1);
    cr_assert_eq(agt_sup_apply(&s, AGT_EV_SLUG_READY, 2000, 0), AGT_A_SPAWN);
    agt_sup_apply(&s, AGT_EV_SPAWNED, 2000, 0);
    cr_assert_eq(s.since_ms, 2000);

    s.exit_code = 3;
    a = agt_sup_apply(&s, AGT_EV_EXITED, 2500, 0);
    cr_assert(a & AGT_A_BACKOFF);
    cr_assert_eq(s.state, AGT_CRASHED);
    cr_assert_eq(s.restarts, 1);
    cr_assert_eq(s.backoff_ms, AGT_NEVER_UP_HOLD_MS, "never up: its crash is heard first");
    cr_assert_eq(s.exit_code, 3);
    cr_assert_eq(s.since_ms, 2500);

    agt_sup_apply(&s, AGT_EV_BACKOFF_EXPIRED, 2500, 0);
    agt_sup_apply(&s, AGT_EV_SPAWNED, 2500, 0);
    agt_sup_apply(&s, AGT_EV_HEALTHY, 2500, 0); /* up once: the usual schedule from now on */
    agt_sup_apply(&s, AGT_EV_EXITED, 2600, UINT32_MAX);
    cr_assert_eq(s.restarts, 2);
    cr_assert(s.backoff_ms >= 500 && s.backoff_ms <= 1000, "second: %llu",
              (unsigned long long)s.backoff_ms);

    agt_sup_apply(&s, AGT_EV_BACKOFF_EXPIRED, 3600, 0);
    agt_sup_apply(&s, AGT_EV_SPAWNED, 3600, 0);
    agt_sup_apply(&s, AGT_EV_EXITED, 3700, 1000);
    cr_assert_eq(s.restarts, 3);
    cr_assert_eq(s.backoff_ms, 2000, "third: 1000 + 1000 %% 1001");
}

Test(supervise, never_up_holds_every_restart, .timeout = 2)
{
    struct agt_sup s;

    agt_sup_init(&s, 0);
    agt_sup_apply(&s, AGT_EV_SLUG_READY, 0, 0);
    for (uint32_t n = 1; n <= 3; n++) {
        agt_sup_apply(&s, AGT_EV_SPAWNED, n * 10000, 0);
        agt_sup_apply(&s, AGT_EV_EXITED, n * 10000 + 5, 0);
        cr_assert_eq(s.state, AGT_CRASHED);
        /* rnd 0: 0, 0.5 s, 1 s, each raised to the hold */
        cr_assert_eq(s.backoff_ms, AGT_NEVER_UP_HOLD_MS, "n=%u", n);
        agt_sup_apply(&s, AGT_EV_BACKOFF_EXPIRED, n * 10000 + 10, 0);
    }
    agt_sup_apply(&s, AGT_EV_SPAWNED, 50000, 0);
    agt_sup_apply(&s, AGT_EV_HEALTHY, 50000, 0);
    cr_assert(s.been_up);
    agt_sup_apply(&s, AGT_EV_EXITED, 50000 + AGT_BACKOFF_RESET_MS, 0);
    cr_assert_eq(s.backoff_ms, 0, "up once, a crash after a long run restarts at once");
}

Test(supervise, long_up_run_resets_backoff, .timeout = 2)
{
    struct agt_sup s;
    const uint64_t t0 = 1000000;

    agt_sup_init(&s, t0);
    s.consecutive = 6;
    s.restarts = 6;
    s.state = AGT_STARTING;
    agt_sup_apply(&s, AGT_EV_HEALTHY, t0, 0);
    cr_assert_eq(s.state, AGT_UP);
    cr_assert_eq(s.up_since_ms, t0);
    agt_sup_apply(&s, AGT_EV_EXITED, t0 + AGT_BACKOFF_RESET_MS, 77);
    cr_assert_eq(s.restarts, 7);
    cr_assert_eq(s.consecutive, 1);
    cr_assert_eq(s.backoff_ms, 0);
}

Test(supervise, short_up_run_keeps_backing_off, .timeout = 2)
{
    struct agt_sup s;

    agt_sup_init(&s, 0);
    s.consecutive = 3;
    s.state = AGT_STARTING;
    agt_sup_apply(&s, AGT_EV_HEALTHY, 1000, 0);
    agt_sup_apply(&s, AGT_EV_EXITED, 5000, 0);
    cr_assert_eq(s.consecutive, 4);
    cr_assert_eq(s.backoff_ms, 2000, "n=4: base 4 s, rnd 0 gives half");
}

Test(supervise, drain_exit_is_not_counted, .timeout = 2)
{
    struct agt_sup s;

    agt_sup_init(&s, 0);
    s.state = AGT_UP;
    cr_assert_eq(agt_sup_apply(&s, AGT_EV_STOP, 5, 0), AGT_A_DELAY);
    cr_assert_eq(agt_sup_apply(&s, AGT_EV_DELAY_EXPIRED, 10, 0), AGT_A_TERM | AGT_A_GRACE);
    cr_assert_eq(s.state, AGT_DRAINING);
    s.exit_signal = 15;
    agt_sup_apply(&s, AGT_EV_EXITED, 20, 0);
    cr_assert_eq(s.state, AGT_DRAINING);
    agt_sup_apply(&s, AGT_EV_GROUP_GONE, 30, 0);
    cr_assert_eq(s.state, AGT_STOPPED);
    cr_assert_eq(s.restarts, 0);
    cr_assert_eq(s.consecutive, 0);
    cr_assert_eq(s.since_ms, 30);
}

Test(supervise, shutdown_delay_record, .timeout = 2)
{
    struct agt_sup s;

    agt_sup_init(&s, 0);
    s.state = AGT_STARTING;
    agt_sup_apply(&s, AGT_EV_HEALTHY, 100, 0);
    cr_assert_eq(agt_sup_apply(&s, AGT_EV_STOP, 200, 0), AGT_A_DELAY);
    cr_assert_eq(s.state, AGT_DELAYING);
    cr_assert_eq(s.since_ms, 200, "draining, as reported, since the stop");
    cr_assert_eq(s.up_since_ms, 0);
    cr_assert_eq(agt_sup_apply(&s, AGT_EV_STOP, 250, 0), 0, "a second stop changes nothing");
    s.exit_code = 0;
    cr_assert_eq(agt_sup_apply(&s, AGT_EV_EXITED, 300, 0), AGT_A_TERM | AGT_A_GRACE | AGT_A_WATCH);
    cr_assert_eq(s.state, AGT_DRAINING);
    cr_assert_eq(s.since_ms, 300, "the grace period counts from here");
    cr_assert_eq(agt_sup_apply(&s, AGT_EV_DELAY_EXPIRED, 400, 0), 0, "late timer");
    agt_sup_apply(&s, AGT_EV_GROUP_GONE, 500, 0);
    cr_assert_eq(s.state, AGT_STOPPED);
    cr_assert_eq(s.restarts, 0);
    cr_assert_eq(s.consecutive, 0);
}

Test(supervise, ignored_event_changes_nothing, .timeout = 2)
{
    struct agt_sup s, before;

    agt_sup_init(&s, 5);
    s.state = AGT_UP;
    before = s;
    cr_assert_eq(agt_sup_apply(&s, AGT_EV_BACKOFF_EXPIRED, 99, 0), 0);
    cr_assert_eq(memcmp(&s, &before, sizeof s), 0);
}

Test(supervise, wire_states, .timeout = 2)
{
    cr_assert_eq(agt_state_wire(AGT_PENDING), DROVER__INSTANCE_STATE__ST_PENDING);
    cr_assert_eq(agt_state_wire(AGT_UP), DROVER__INSTANCE_STATE__ST_UP);
    cr_assert_eq(agt_state_wire(AGT_DRAINING), DROVER__INSTANCE_STATE__ST_DRAINING);
    cr_assert_eq(agt_state_wire(AGT_STOPPED), DROVER__INSTANCE_STATE__ST_STOPPED);
    cr_assert_eq(agt_state_wire(AGT_CRASHED), DROVER__INSTANCE_STATE__ST_CRASHED);
    cr_assert_eq(agt_state_wire(AGT_FAILED), DROVER__INSTANCE_STATE__ST_FAILED);
    cr_assert_str_eq(agt_state_name(AGT_DRAINING), "draining");
    cr_assert_str_eq(agt_state_name(AGT_DELAYING), "delaying");
    cr_assert_str_eq(agt_event_name(AGT_EV_DELAY_EXPIRED), "delay_expired");
    cr_assert_str_eq(agt_event_name(AGT_EV_GRACE_EXPIRED), "grace_expired");
}

/* ---- reconcile ---- */

/* ---- spec: assignment checks and the process environment ---- */

static struct agt_config cfg = {.port_min = 5900, .port_max = 5999, .data_dir = "/d"};

#define SHA "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void
assignment(Drover__Assignment *as, Drover__KeyValue **env, size_t nenv)
{
    drover__assignment__init(as);
    as->id = 42;
    as->app = "shop";
    as->name = "web.1";
    as->type = "web";
    as->release = 3;
    as->slug_sha256 = SHA;
    as->command = "./server";
    as->port = 5901;
    as->health = "tcp";
    as->env = env;
    as->n_env = nenv;
}

Test(agt_spec, accepts_a_good_assignment, .timeout = 2)
{
    Drover__Assignment as;
    struct agt_spec *s;
    char err[128] = "";

    assignment(&as, NULL, 0);
    as.health = "http:/healthz";
    cr_assert_eq(agt_spec_new(&as, &cfg, &s, err, sizeof err), 0, "%s", err);
    cr_assert_eq(s->id, 42);
    cr_assert_eq(s->port, 5901);
    cr_assert_eq(s->health, AGT_HEALTH_HTTP);
    cr_assert_str_eq(s->http_path, "/healthz");
    cr_assert_eq(s->grace_ms, AGT_DEFAULT_GRACE_MS);
    cr_assert_eq(s->boot_timeout_ms, AGT_DEFAULT_BOOT_MS);
    cr_assert_eq(s->min_healthy_ms, 0, "0 means up at the first pass: no default");
    cr_assert_eq(s->shutdown_delay_ms, 0, "0 means SIGTERM at once: no default");
    agt_spec_free(s);
}

/* The set and the instance share one spec while the set assigns it as it
 * runs; anything different in a new set is a spec of its own. */
Test(agt_spec, same_and_shared_by_reference, .timeout = 2)
{
    Drover__KeyValue kv = DROVER__KEY_VALUE__INIT, *envp[] = {&kv};
    Drover__Assignment as;
    struct agt_spec *a, *b, *c;
    char err[128] = "";

    kv.key = "DATABASE_URL";
    kv.value = "postgres://db/shop";
    assignment(&as, envp, 1);
    cr_assert_eq(agt_spec_new(&as, &cfg, &a, err, sizeof err), 0, "%s", err);
    cr_assert_eq(agt_spec_new(&as, &cfg, &b, err, sizeof err), 0, "%s", err);
    cr_assert(agt_spec_same(a, b));
    kv.value = "postgres://db2/shop";
    cr_assert_eq(agt_spec_new(&as, &cfg, &c, err, sizeof err), 0, "%s", err);
    cr_assert_not(agt_spec_same(a, c), "a config var differs");
    agt_spec_free(c);
    kv.value = "postgres://db/shop";
    as.shutdown_delay_ms = 1000;
    cr_assert_eq(agt_spec_new(&as, &cfg, &c, err, sizeof err), 0, "%s", err);
    cr_assert_not(agt_spec_same(a, c), "the shutdown delay differs");
    agt_spec_free(c);
    cr_assert_eq(agt_spec_ref(a), a);
    agt_spec_free(a); /* one owner left: still there (ASan would see a use after free) */
    cr_assert_str_eq(a->env[0], "DATABASE_URL=postgres://db/shop");
    agt_spec_free(a);
    agt_spec_free(b);
}

Test(agt_spec, carries_min_healthy_and_shutdown_delay, .timeout = 2)
{
    Drover__Assignment as;
    struct agt_spec *s, *d;
    char err[128] = "";

    assignment(&as, NULL, 0);
    as.min_healthy_ms = 1500;
    as.shutdown_delay_ms = 2500;
    cr_assert_eq(agt_spec_new(&as, &cfg, &s, err, sizeof err), 0, "%s", err);
    cr_assert_eq(s->min_healthy_ms, 1500);
    cr_assert_eq(s->shutdown_delay_ms, 2500);
    d = agt_spec_ref(s); /* the instance's, as apply() shares it */
    cr_assert_not_null(d);
    cr_assert_eq(d->min_healthy_ms, 1500);
    cr_assert_eq(d->shutdown_delay_ms, 2500);
    agt_spec_free(d);
    agt_spec_free(s);
}

Test(agt_spec, refuses_bad_fields, .timeout = 2)
{
    Drover__KeyValue bad = DROVER__KEY_VALUE__INIT, *envp[] = {&bad};
    Drover__Assignment as;
    struct agt_spec *s = (void *)1;
    char err[128];
    char longcmd[AGT_MAX_COMMAND + 2];

    memset(longcmd, 'x', sizeof longcmd - 1);
    longcmd[sizeof longcmd - 1] = '\0';
#define REFUSE(field, value)                                                                       \
    do {                                                                                           \
        assignment(&as, NULL, 0);                                                                  \
        as.field = value;                                                                          \
        cr_assert_eq(agt_spec_new(&as, &cfg, &s, err, sizeof err), -EINVAL, #field);               \
        cr_assert_null(s);                                                                         \
    } while (0)
    REFUSE(app, "Shop");
    REFUSE(app, "../x");
    REFUSE(name, "web");
    REFUSE(name, "worker.1"); /* type is web */
    REFUSE(port, 5000);
    REFUSE(port, 6000);
    REFUSE(slug_sha256, "ABC");
    REFUSE(command, "");
    REFUSE(command, longcmd);
    REFUSE(health, "http");
    REFUSE(health, "udp");
    REFUSE(id, 0);
    REFUSE(release, 0);
    bad.key = "1BAD";
    bad.value = "v";
    assignment(&as, envp, 1);
    cr_assert_eq(agt_spec_new(&as, &cfg, &s, err, sizeof err), -EINVAL);
#undef REFUSE
}

static const char *
env_get(char **envp, const char *key)
{
    size_t kl = strlen(key);

    for (char **p = envp; *p; p++)
        if (strncmp(*p, key, kl) == 0 && (*p)[kl] == '=')
            return *p + kl + 1;
    return NULL;
}

Test(agt_spec, environment_is_exactly_the_documented_one, .timeout = 2)
{
    Drover__KeyValue a = DROVER__KEY_VALUE__INIT, b = DROVER__KEY_VALUE__INIT,
                     c = DROVER__KEY_VALUE__INIT, *env[] = {&a, &b, &c};
    Drover__Assignment as;
    struct agt_spec *s;
    char err[128], **envp;
    size_t n = 0;

    a.key = "LANG";
    a.value = "fr_FR.UTF-8";
    b.key = "DATABASE_URL";
    b.value = "postgres://x";
    c.key = "PORT"; /* the agent's own PORT wins */
    c.value = "1";
    assignment(&as, env, 3);
    cr_assert_eq(agt_spec_new(&as, &cfg, &s, err, sizeof err), 0, "%s", err);
    cr_assert_eq(agt_env_build(s, "/d/releases/shop/v3-0123456789ab", &envp), 0);
    for (char **p = envp; *p; p++)
        n++;
    cr_assert_eq(n, 9, "PATH HOME LANG DATABASE_URL PORT DYNO PS DROVER_APP DROVER_RELEASE");
    cr_assert_str_eq(env_get(envp, "PATH"),
                     "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    cr_assert_str_eq(env_get(envp, "HOME"), "/d/releases/shop/v3-0123456789ab");
    cr_assert_str_eq(env_get(envp, "LANG"), "fr_FR.UTF-8");
    cr_assert_str_eq(env_get(envp, "DATABASE_URL"), "postgres://x");
    cr_assert_str_eq(env_get(envp, "PORT"), "5901");
    cr_assert_str_eq(env_get(envp, "DYNO"), "web.1");
    cr_assert_str_eq(env_get(envp, "PS"), "web.1");
    cr_assert_str_eq(env_get(envp, "DROVER_APP"), "shop");
    cr_assert_str_eq(env_get(envp, "DROVER_RELEASE"), "3");
    agt_env_free(envp);
    agt_spec_free(s);
}

Test(agt_spec, release_dir, .timeout = 2)
{
    char dir[256];

    cr_assert_eq(agt_release_dir("/var/lib/x", "shop", 12, SHA, dir, sizeof dir), 0);
    cr_assert_str_eq(dir, "/var/lib/x/releases/shop/v12-0123456789ab");
}
