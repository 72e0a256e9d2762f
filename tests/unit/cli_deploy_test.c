/* SPDX-License-Identifier: MIT */
/*
 * cli_deploy_test.c: the CLI's output for rolling deploys — durations as
 * settings shows them, progress lines as deploy prints them, and endpoint
 * lists as routers read them. Scripts and integration tests parse these, so
 * the exact text is the contract.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void
expect_duration(uint64_t ms, const char *want)
{
    char out[32];

    cli_fmt_duration(ms, out);
    cr_expect_str_eq(out, want, "%llu ms", (unsigned long long)ms);
}

Test(cli_deploy, duration_is_short_and_reads_back, .timeout = 2)
{
    expect_duration(0, "0s");
    expect_duration(500, "500ms");
    expect_duration(1500, "1500ms");
    expect_duration(1000, "1s");
    expect_duration(30000, "30s");
    expect_duration(60000, "60s"); /* not "1m": boot_timeout's default reads as 60s */
    expect_duration(90000, "90s");
    expect_duration(120000, "2m");
    expect_duration(150000, "150s");
    expect_duration(300000, "5m");
    expect_duration(3600000, "60m");
    expect_duration(4294967295u, "4294967295ms");
}

static void
expect_progress(const char *type, uint32_t desired, uint32_t updated, uint32_t created,
                uint32_t old, const char *want)
{
    Drover__TypeProgress t = DROVER__TYPE_PROGRESS__INIT;
    char out[160];

    t.type = (char *)type;
    t.desired = desired;
    t.updated = updated;
    t.created = created;
    t.old = old;
    cli_fmt_progress(&t, 7, out, sizeof(out));
    cr_expect_str_eq(out, want);
}

Test(cli_deploy, progress_line_per_type, .timeout = 2)
{
    expect_progress("web", 4, 2, 2, 1, "web 2/4 on v7 (1 old)");
    expect_progress("worker", 1, 1, 1, 0, "worker 1/1 on v7");
    expect_progress("web", 4, 2, 3, 2, "web 2/4 on v7 (1 starting, 2 old)");
    expect_progress("web", 4, 0, 1, 0, "web 0/4 on v7 (1 starting)");
    expect_progress("web", 0, 0, 0, 3, "web 0/0 on v7 (3 old)");
    /* created below updated would be a controller bug; never a huge count */
    expect_progress("web", 2, 2, 0, 0, "web 2/2 on v7");
}

Test(cli_deploy, progress_line_truncates_safely, .timeout = 2)
{
    Drover__TypeProgress t = DROVER__TYPE_PROGRESS__INIT;
    char out[12];

    t.type = "web";
    t.desired = 4;
    t.created = 3;
    t.old = 1;
    cli_fmt_progress(&t, 7, out, sizeof(out));
    cr_expect_str_eq(out, "web 0/4 on ");
}

Test(cli_deploy, hostport_brackets_ipv6, .timeout = 2)
{
    char out[64];

    cli_fmt_hostport("10.0.0.5", 5000, out, sizeof(out));
    cr_expect_str_eq(out, "10.0.0.5:5000");
    cli_fmt_hostport("fd00::5", 5000, out, sizeof(out));
    cr_expect_str_eq(out, "[fd00::5]:5000");
    cli_fmt_hostport("node-1.example", 80, out, sizeof(out));
    cr_expect_str_eq(out, "node-1.example:80");
}

Test(cli_deploy, version_argument, .timeout = 2)
{
    static const char *const bad[] = {"",    "v",  "v0",  "0",  "-1",         "+1",
                                      "v 1", "1x", "vv1", "V1", "4294967296", "01"};
    uint32_t v = 0;

    cr_assert_eq(cli_parse_version("v7", &v), 0);
    cr_expect_eq(v, 7);
    cr_assert_eq(cli_parse_version("12", &v), 0);
    cr_expect_eq(v, 12);
    cr_assert_eq(cli_parse_version("4294967295", &v), 0);
    cr_expect_eq(v, 4294967295u);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_lt(cli_parse_version(bad[i], &v), 0, "accepted '%s'", bad[i]);
}

/* ---- endpoint lists ---- */

struct eps {
    Drover__Endpoint e[3];
    Drover__Endpoint *p[3];
    Drover__EndpointsRep rep;
};

static void
eps_init(struct eps *s, size_t n)
{
    static const struct {
        const char *name, *type, *host;
        uint32_t port;
    } rows[] = {
        {"web.1", "web", "127.0.0.1", 5000},
        {"web.2", "web", "fd00::2", 5001},
        {"worker.1", "worker", "127.0.0.1", 5002},
    };

    drover__endpoints_rep__init(&s->rep);
    for (size_t i = 0; i < n; i++) {
        drover__endpoint__init(&s->e[i]);
        s->e[i].id = 100 + i;
        s->e[i].name = (char *)rows[i].name;
        s->e[i].type = (char *)rows[i].type;
        s->e[i].host = (char *)rows[i].host;
        s->e[i].port = rows[i].port;
        s->e[i].release = 7;
        s->p[i] = &s->e[i];
    }
    s->rep.version = 18446744073709551615ull;
    s->rep.n_endpoints = n;
    s->rep.endpoints = n > 0 ? s->p : NULL;
}

static char *
print_eps(const struct eps *s, bool by_type, bool json)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    cr_assert_not_null(f);
    cli_endpoints_print(f, "shop", &s->rep, by_type, json);
    fclose(f);
    return buf;
}

Test(cli_deploy, endpoints_plain_with_names, .timeout = 2)
{
    struct eps s;
    char *out;

    eps_init(&s, 3);
    out = print_eps(&s, false, false);
    cr_expect_str_eq(out, "web.1 127.0.0.1:5000\n"
                          "web.2 [fd00::2]:5001\n"
                          "worker.1 127.0.0.1:5002\n");
    free(out);
}

Test(cli_deploy, endpoints_plain_of_one_type_is_bare, .timeout = 2)
{
    struct eps s;
    char *out;

    eps_init(&s, 2);
    out = print_eps(&s, true, false);
    cr_expect_str_eq(out, "127.0.0.1:5000\n[fd00::2]:5001\n");
    free(out);
}

Test(cli_deploy, endpoints_empty_list_prints_nothing, .timeout = 2)
{
    struct eps s;
    char *out;

    eps_init(&s, 0);
    out = print_eps(&s, false, false);
    cr_expect_str_eq(out, "");
    free(out);
}

Test(cli_deploy, endpoints_json_is_one_line, .timeout = 2)
{
    struct eps s;
    char *out;

    eps_init(&s, 1);
    s.e[0].name = "web.\"1\"";
    out = print_eps(&s, false, true);
    cr_expect_str_eq(out, "{\"app\": \"shop\", \"version\": 18446744073709551615, \"endpoints\": "
                          "[{\"id\": 100, \"name\": \"web.\\\"1\\\"\", \"type\": \"web\", "
                          "\"host\": \"127.0.0.1\", \"port\": 5000, \"release\": 7}]}\n");
    free(out);
    eps_init(&s, 0);
    out = print_eps(&s, true, true);
    cr_expect_str_eq(out, "{\"app\": \"shop\", \"version\": 18446744073709551615, "
                          "\"endpoints\": []}\n");
    free(out);
}

/* ---- settings ---- */

Test(cli_deploy, settings_table_and_json, .timeout = 2)
{
    Drover__TypeSettings web = DROVER__TYPE_SETTINGS__INIT, worker = DROVER__TYPE_SETTINGS__INIT;
    Drover__TypeSettings *types[2] = {&web, &worker};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    web.type = "web";
    web.quantity = 4;
    web.health = "http:/healthz";
    web.boot_timeout_ms = 60000;
    web.grace_ms = 30000;
    web.max_surge = "25%";
    web.max_unavailable = "0";
    web.min_healthy_ms = 1000;
    web.deploy_timeout_ms = 300000;
    web.shutdown_delay_ms = 500;
    web.memory_bytes = 512u << 20;
    web.cpu_milli = 500;
    web.pids = 256;
    web.nofile = 4096;
    worker.type = "worker";
    worker.health = "none";
    cr_assert_not_null(f);
    cr_assert_eq(cli_settings_print(f, types, 2, NULL, false), 0);
    fclose(f);
    cr_expect_str_eq(buf, "TYPE    QTY  HEALTH         BOOT  GRACE  SURGE  UNAVAILABLE  "
                          "MIN_HEALTHY  DEPLOY_TIMEOUT  SHUTDOWN_DELAY  MEMORY  CPU  PIDS  NOFILE\n"
                          "web     4    http:/healthz  60s   30s    25%    0            "
                          "1s           5m              500ms           512M    0.5  256   4096\n"
                          "worker  0    none           0s    0s                         "
                          "0s           0s              0s              -       -    -     -\n");
    free(buf);
    f = open_memstream(&buf, &len);
    cr_assert_eq(cli_settings_print(f, types, 2, "worker", true), 0);
    fclose(f);
    cr_expect_not_null(strstr(buf, "\"type\": \"worker\""), "%s", buf);
    cr_expect_null(strstr(buf, "\"web\""), "%s", buf);
    cr_expect_not_null(strstr(buf, "\"shutdown_delay_ms\": 0"), "%s", buf);
    cr_expect_not_null(strstr(buf, "\"memory_bytes\": 0"), "%s", buf);
    free(buf);
}
