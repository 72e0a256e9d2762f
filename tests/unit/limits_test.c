/* SPDX-License-Identifier: MIT */
/*
 * limits_test.c: the per-type limits as settings:set parses them; hostile
 * values (out of range, unknown units, negative, garbage) are refused with
 * the reason and change nothing.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "ctl.h"

static struct ctl_formation
fresh(void)
{
    struct ctl_formation f;

    memset(&f, 0, sizeof f);
    strcpy(f.type, "worker");
    ctl_settings_defaults(&f);
    return f;
}

Test(limits, defaults_are_none)
{
    struct ctl_formation f = fresh();

    cr_assert_eq(f.memory_bytes, 0);
    cr_assert_eq(f.cpu_milli, 0);
    cr_assert_eq(f.pids, 0);
    cr_assert_eq(f.nofile, 0);
}

Test(limits, good_values)
{
    static const struct {
        const char *key, *val;
        uint64_t want;
    } good[] = {
        {"memory", "512M", 512ull << 20},
        {"memory", "1G", 1ull << 30},
        {"memory", "64Mi", 64ull << 20},
        {"memory", "4194304", 4ull << 20},
        {"memory", "2gb", 2ull << 30},
        {"memory", "1T", 1ull << 40},
        {"memory", "none", 0},
        {"cpu", "0.5", 500},
        {"cpu", "2", 2000},
        {"cpu", "0.01", 10},
        {"cpu", "0.125", 125},
        {"cpu", "1024", 1024000},
        {"pids", "256", 256},
        {"pids", "8", 8},
        {"nofile", "4096", 4096},
        {"nofile", "none", 0},
    };
    char err[256];

    for (size_t k = 0; k < sizeof good / sizeof good[0]; k++) {
        struct ctl_formation f = fresh();
        uint64_t got;

        err[0] = '\0';
        cr_assert_eq(ctl_settings_set(&f, good[k].key, good[k].val, err, sizeof err), 0,
                     "%s=%s: %s", good[k].key, good[k].val, err);
        got = strcmp(good[k].key, "memory") == 0 ? f.memory_bytes
              : strcmp(good[k].key, "cpu") == 0  ? f.cpu_milli
              : strcmp(good[k].key, "pids") == 0 ? f.pids
                                                 : f.nofile;
        cr_assert_eq(got, good[k].want, "%s=%s gave %llu", good[k].key, good[k].val,
                     (unsigned long long)got);
    }
}

Test(limits, hostile_values_are_refused_with_the_reason)
{
    static const struct {
        const char *key, *val, *says;
    } bad[] = {
        {"memory", "-512M", "memory: want a size"},
        {"memory", "512X", "memory: want a size"},
        {"memory", "3M", "from 4M to 1T"},
        {"memory", "2T", "from 4M to 1T"},
        {"memory", "1.5G", "memory: want"},
        {"memory", "", "memory: want"},
        {"memory", "99999999999999999999G", "memory: want"},
        {"memory", "512 M", "memory: want"},
        {"memory", "512Mx", "memory: want"},
        {"cpu", "-1", "cpu: want cores"},
        {"cpu", "0", "from 0.01 to 1024"},
        {"cpu", "0.001", "cpu: want"},
        {"cpu", "1025", "cpu: want"},
        {"cpu", "0.5c", "cpu: want"},
        {"cpu", ".5", "cpu: want"},
        {"cpu", "1.", "cpu: want"},
        {"pids", "-5", "pids: want a count"},
        {"pids", "7", "from 8 to 4194304"},
        {"pids", "4194305", "pids: want"},
        {"pids", "1e3", "pids: want"},
        {"nofile", "15", "from 16 to 1048576"},
        {"nofile", "-1", "nofile: want"},
        {"nofile", "lots", "nofile: want"},
        {"disk", "1G", "unknown setting"},
    };
    char err[256];

    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        struct ctl_formation f = fresh(), before = f;

        err[0] = '\0';
        cr_assert_lt(ctl_settings_set(&f, bad[k].key, bad[k].val, err, sizeof err), 0, "%s=%s",
                     bad[k].key, bad[k].val);
        cr_assert(strstr(err, bad[k].says) != NULL, "%s=%s: \"%s\"", bad[k].key, bad[k].val, err);
        cr_assert(memcmp(&f, &before, sizeof f) == 0, "%s=%s changed the settings", bad[k].key,
                  bad[k].val);
    }
}
