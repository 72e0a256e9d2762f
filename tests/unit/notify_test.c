/* SPDX-License-Identifier: MIT */
/* notify_test.c: WATCHDOG_USEC / WATCHDOG_PID parsing (common/notify.c). */
#include <criterion/criterion.h>

#include "notify.h"

Test(notify, watchdog_interval_is_half_the_timeout, .timeout = 2)
{
    cr_assert_eq(notify_parse_watchdog("30000000", NULL, 42), 15000);
    cr_assert_eq(notify_parse_watchdog("200000", "42", 42), 100);
    cr_assert_eq(notify_parse_watchdog("1", NULL, 42), 1);
}

Test(notify, watchdog_for_another_process_or_malformed_is_off, .timeout = 2)
{
    cr_assert_eq(notify_parse_watchdog(NULL, NULL, 42), 0);
    cr_assert_eq(notify_parse_watchdog("200000", "41", 42), 0);
    cr_assert_eq(notify_parse_watchdog("0", NULL, 42), 0);
    cr_assert_eq(notify_parse_watchdog("-5", NULL, 42), 0);
    cr_assert_eq(notify_parse_watchdog("12x", NULL, 42), 0);
    cr_assert_eq(notify_parse_watchdog("200000", "x", 42), 0);
}
