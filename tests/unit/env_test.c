/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"

Test(env, parses_strict_numbers, .timeout = 2)
{
    uint64_t v = 0;

    cr_assert_eq(env_parse_u64("5000", 1, 10000, &v), 0);
    cr_assert_eq(v, 5000);
    cr_assert_eq(env_parse_u64("-1", 0, 10, &v), -EINVAL);
    cr_assert_eq(env_parse_u64("+1", 0, 10, &v), -EINVAL);
    cr_assert_eq(env_parse_u64("12x", 0, 100, &v), -EINVAL);
    cr_assert_eq(env_parse_u64(" 1", 0, 100, &v), -EINVAL);
    cr_assert_eq(env_parse_u64("", 0, 100, &v), -EINVAL);
    cr_assert_eq(env_parse_u64("101", 0, 100, &v), -ERANGE);
    cr_assert_eq(env_parse_u64("99999999999999999999999", 0, UINT64_MAX, &v), -ERANGE);
}

Test(env, parses_port_ranges, .timeout = 2)
{
    uint16_t lo, hi;

    cr_assert_eq(env_parse_port_range("5000-5999", &lo, &hi), 0);
    cr_assert_eq(lo, 5000);
    cr_assert_eq(hi, 5999);
    cr_assert_eq(env_parse_port_range("7000-7000", &lo, &hi), 0);
    cr_assert_eq(env_parse_port_range("6000-5000", &lo, &hi), -EINVAL);
    cr_assert_eq(env_parse_port_range("0-10", &lo, &hi), -EINVAL);
    cr_assert_eq(env_parse_port_range("1-70000", &lo, &hi), -EINVAL);
    cr_assert_eq(env_parse_port_range("5000", &lo, &hi), -EINVAL);
    cr_assert_eq(env_parse_port_range("a-b", &lo, &hi), -EINVAL);
}

Test(env, parses_endpoints_and_offsets, .timeout = 2)
{
    char host[64], out[128];
    uint16_t port;

    cr_assert_eq(env_parse_endpoint("tcp://127.0.0.1:7400", host, sizeof(host), &port), 0);
    cr_assert_str_eq(host, "127.0.0.1");
    cr_assert_eq(port, 7400);
    cr_assert_eq(env_parse_endpoint("tcp://*:7401", host, sizeof(host), &port), 0);
    cr_assert_eq(env_parse_endpoint("http://x:1", host, sizeof(host), &port), -EINVAL);
    cr_assert_eq(env_parse_endpoint("tcp://x", host, sizeof(host), &port), -EINVAL);
    cr_assert_eq(env_parse_endpoint("tcp://:80", host, sizeof(host), &port), -EINVAL);
    cr_assert_eq(env_parse_endpoint("tcp://x:0", host, sizeof(host), &port), -EINVAL);
    cr_assert_eq(env_parse_endpoint("tcp://a b:1", host, sizeof(host), &port), -EINVAL);
    cr_assert_eq(env_endpoint_offset("tcp://10.0.0.1:7401", 1, out, sizeof(out)), 0);
    cr_assert_str_eq(out, "tcp://10.0.0.1:7402");
    cr_assert_eq(env_endpoint_offset("tcp://h:65535", 1, out, sizeof(out)), -ERANGE);
}

Test(env, collects_every_error, .timeout = 2)
{
    struct env_errs e = {0};
    uint64_t v;
    uint16_t lo, hi;
    char ep[128];

    setenv("DROVER_TEST_A", "abc", 1);
    setenv("DROVER_TEST_B", "9-1", 1);
    setenv("DROVER_TEST_C", "udp://x:1", 1);
    unsetenv("DROVER_TEST_D");
    env_u64(&e, "DROVER_TEST_A", 5, 0, 10, &v);
    env_port_range(&e, "DROVER_TEST_B", 5000, 5999, &lo, &hi);
    env_endpoint(&e, "DROVER_TEST_C", "tcp://127.0.0.1:1", ep, sizeof(ep), NULL);
    env_u64(&e, "DROVER_TEST_D", 7, 0, 10, &v);
    cr_assert_eq(e.n, 3);
    cr_assert(strstr(e.msg[0], "DROVER_TEST_A") != NULL);
    cr_assert(strstr(e.msg[1], "DROVER_TEST_B") != NULL);
    cr_assert(strstr(e.msg[2], "DROVER_TEST_C") != NULL);
    cr_assert_eq(v, 7, "unset variable takes its default");
    cr_assert_eq(lo, 5000, "bad variable keeps its default");
}

Test(env, empty_means_default, .timeout = 2)
{
    struct env_errs e = {0};
    char out[32];

    setenv("DROVER_TEST_E", "", 1);
    env_str(&e, "DROVER_TEST_E", "dflt", out, sizeof(out));
    cr_assert_str_eq(out, "dflt");
    setenv("DROVER_TEST_E", "0123456789012345678901234567890123456789", 1);
    cr_assert_eq(env_str(&e, "DROVER_TEST_E", "dflt", out, sizeof(out)), -EINVAL);
    cr_assert_eq(e.n, 1);
}
