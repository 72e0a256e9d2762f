/* SPDX-License-Identifier: MIT */
/*
 * oneoff_test.c: what makes a one-off different, without processes: the
 * supervisor's DONE event (never a crash, never a restart), the command
 * line `drover run` builds, and the crash schedule it must not follow.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "agt.h"
#include "cli.h"

Test(oneoff, done_stops_instead_of_crashing, .timeout = 2)
{
    struct agt_sup s;
    unsigned a;

    agt_sup_init(&s, 1000);
    agt_sup_apply(&s, AGT_EV_SLUG_READY, 1000, 0);
    agt_sup_apply(&s, AGT_EV_SPAWNED, 1000, 0);
    cr_assert_eq(s.state, AGT_STARTING);
    a = agt_sup_apply(&s, AGT_EV_DONE, 1200, 0);
    cr_assert_eq(s.state, AGT_STOPPED);
    cr_assert(a & AGT_A_KILL, "what is left of its group must go");
    cr_assert_not(a & (AGT_A_CRASH | AGT_A_BACKOFF | AGT_A_SPAWN));
    cr_assert_eq(s.restarts, 0);
    /* Stopped is final: nothing revives it. */
    cr_assert_eq(agt_sup_apply(&s, AGT_EV_BACKOFF_EXPIRED, 5000, 0), 0);
    cr_assert_eq(agt_sup_apply(&s, AGT_EV_SLUG_READY, 5000, 0), 0);
    cr_assert_eq(s.state, AGT_STOPPED);
}

Test(oneoff, done_when_up_or_draining, .timeout = 2)
{
    struct agt_sup s;

    agt_sup_init(&s, 0);
    s.state = AGT_UP;
    cr_assert(agt_sup_apply(&s, AGT_EV_DONE, 10, 0) & AGT_A_KILL);
    cr_assert_eq(s.state, AGT_STOPPED);
    /* Asked to stop, then it exits: the drain goes on as for any other. */
    agt_sup_init(&s, 0);
    s.state = AGT_DRAINING;
    cr_assert_eq(agt_sup_apply(&s, AGT_EV_DONE, 10, 0), AGT_A_WATCH);
    cr_assert_eq(s.state, AGT_DRAINING);
    cr_assert_eq(s.restarts, 0);
}

Test(oneoff, formation_exits_still_crash_and_back_off, .timeout = 2)
{
    struct agt_sup s;
    uint64_t t = 0;

    agt_sup_init(&s, t);
    s.state = AGT_UP;
    s.up_since_ms = t;
    for (uint32_t n = 1; n <= 4; n++) {
        unsigned a = agt_sup_apply(&s, AGT_EV_EXITED, t += 100, 0);

        cr_assert_eq(s.state, AGT_CRASHED);
        cr_assert(a & AGT_A_CRASH && a & AGT_A_BACKOFF);
        cr_assert_eq(s.restarts, n);
        /* rnd 0: the bottom of [base/2, base]: 0, 0.5 s, 1 s, 2 s */
        cr_assert_eq(s.backoff_ms, n == 1 ? 0 : (1000ull << (n - 2)) / 2, "n=%u", n);
        agt_sup_apply(&s, AGT_EV_BACKOFF_EXPIRED, t, 0);
        agt_sup_apply(&s, AGT_EV_SPAWNED, t, 0);
        agt_sup_apply(&s, AGT_EV_HEALTHY, t, 0);
    }
    /* Ten minutes up, then a crash: at once again. */
    agt_sup_apply(&s, AGT_EV_EXITED, t + AGT_BACKOFF_RESET_MS, 0);
    cr_assert_eq(s.backoff_ms, 0);
    cr_assert_eq(s.restarts, 5);
}

Test(oneoff, one_argument_is_a_shell_command_line, .timeout = 2)
{
    char out[64];
    char *one[] = {"echo $PORT | wc -c"};

    cr_assert_eq(cli_run_command(one, 1, out, sizeof(out)), 0);
    cr_assert_str_eq(out, "echo $PORT | wc -c");
}

Test(oneoff, several_arguments_are_quoted, .timeout = 2)
{
    char out[128];
    char *args[] = {"sh", "-c", "echo 'a b'; exit 7", ""};

    cr_assert_eq(cli_run_command(args, 4, out, sizeof(out)), 0);
    cr_assert_str_eq(out, "'sh' '-c' 'echo '\\''a b'\\''; exit 7' ''");
}

Test(oneoff, too_long_a_command_is_refused, .timeout = 2)
{
    char out[16];
    char *args[] = {"abcdef", "ghijkl", "mnop"};
    char *one[] = {"0123456789abcdef"};

    cr_assert_eq(cli_run_command(args, 3, out, sizeof(out)), -E2BIG);
    cr_assert_eq(cli_run_command(one, 1, out, sizeof(out)), -E2BIG);
    cr_assert_eq(cli_run_command(args, 0, out, sizeof(out)), -EINVAL);
}
