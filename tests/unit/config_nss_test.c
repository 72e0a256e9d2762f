/* SPDX-License-Identifier: MIT */
/*
 * config_nss_test.c: the agent's look-ups of users and groups at start
 * (node-agent/config.c) happen in a child process, so the NSS modules
 * glibc loads for them (libnss_systemd and its libraries) are never mapped
 * into the agent; the answers are the same as asking in the process.
 * Needs root (only then does the agent look users up).
 */
#include <criterion/criterion.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agt.h"

static bool
mapped(const char *what)
{
    char line[1024];
    FILE *f = fopen("/proc/self/maps", "re");
    bool found = false;

    cr_assert_not_null(f);
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, what) != NULL;
    fclose(f);
    return found;
}

Test(config_nss, users_are_looked_up_without_loading_nss_into_the_agent)
{
    struct agt_config cfg;

    if (geteuid() != 0)
        cr_skip_test("needs root: only then does the agent look users up");
    cr_assert(!mapped("libnss_"), "NSS already loaded before the test");
    unsetenv("DROVER_RUN_AS"); /* a user per app: the range is checked against every user */
    setenv("DROVER_DATA_DIR", "/tmp", 1);
    setenv("DROVER_METRICS_LISTEN", "", 1);
    setenv("DROVER_UID_RANGE", "61184-65519", 1);
    setenv("DROVER_CLUSTER_KEY", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
           1);
    setenv("DROVER_JOIN", "tcp://127.0.0.1:15045", 1);
    memset(&cfg, 0, sizeof cfg);
    agt_config_load(&cfg); /* exits 78 on an error: the test would crash */
    cr_assert(cfg.drop && cfg.per_app);
    cr_assert(!mapped("libnss_"), "the look-up loaded NSS modules into this process");
    {
        struct passwd *pw = getpwnam("nobody"); /* now here, to compare */

        cr_assert_not_null(pw);
        cr_assert_eq(cfg.run_uid, (uint32_t)pw->pw_uid);
        cr_assert_eq(cfg.run_gid, (uint32_t)pw->pw_gid);
    }
}
