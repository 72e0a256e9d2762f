/* SPDX-License-Identifier: MIT */
/*
 * cli_test.c: the CLI's local checks — TYPE=N and K=V parsing, flag parsing —
 * and the JSON writer's string escaping, which scripts depend on.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util.h"

static int
scale(const char *arg, char *type, int32_t *qty)
{
    char err[256];

    return cli_parse_scale(arg, type, 32, qty, err, sizeof(err));
}

Test(cli, scale_args_accepts_plain_decimal, .timeout = 2)
{
    char type[32];
    int32_t q = -7;

    cr_assert_eq(scale("web=3", type, &q), 0);
    cr_assert_str_eq(type, "web");
    cr_assert_eq(q, 3);
    cr_assert_eq(scale("my_worker-2=0", type, &q), 0);
    cr_assert_str_eq(type, "my_worker-2");
    cr_assert_eq(q, 0);
    cr_assert_eq(scale("web=100000", type, &q), 0);
    cr_assert_eq(q, 100000);
    /* Heroku's type names: any case, a leading digit (issue 11 item 20) */
    cr_assert_eq(scale("Web-2_X=1", type, &q), 0);
    cr_assert_str_eq(type, "Web-2_X");
    cr_assert_eq(scale("1st=2", type, &q), 0);
    cr_assert_str_eq(type, "1st");
}

Test(cli, scale_args_rejects_negative, .timeout = 2)
{
    char type[32];
    int32_t q;

    cr_assert_eq(scale("web=-1", type, &q), -EINVAL);
    cr_assert_eq(scale("web=+1", type, &q), -EINVAL);
}

Test(cli, scale_args_rejects_malformed, .timeout = 2)
{
    static const char *const bad[] = {
        "web=abc",
        "web=",
        "=3",
        "web=1x",
        "web",
        "web=1 ",
        "web= 1",
        "web.1=1",
        "w b=1",
        "web=1=2",
        "web==1",
        "",
        "web=0x10",
        "web=100001",
        "web=4294967297",
        "web=99999999999999999999999",
        "a234567890123456789012345678901=1", /* 31 characters */
    };
    char type[32];
    int32_t q;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(scale(bad[i], type, &q), -EINVAL, "accepted '%s'", bad[i]);
}

Test(cli, kv_splits_at_first_equals, .timeout = 2)
{
    char key[256], err[256];
    const char *v;

    cr_assert_eq(cli_parse_kv("DATABASE_URL=postgres://u:p@h/db?a=b&c=d", key, sizeof(key), &v, err,
                              sizeof(err)),
                 0);
    cr_assert_str_eq(key, "DATABASE_URL");
    cr_assert_str_eq(v, "postgres://u:p@h/db?a=b&c=d");
    cr_assert_eq(cli_parse_kv("X==", key, sizeof(key), &v, err, sizeof(err)), 0);
    cr_assert_str_eq(key, "X");
    cr_assert_str_eq(v, "=");
    cr_assert_eq(cli_parse_kv("_EMPTY=", key, sizeof(key), &v, err, sizeof(err)), 0);
    cr_assert_str_eq(key, "_EMPTY");
    cr_assert_str_eq(v, "");
}

Test(cli, kv_rejects_bad_keys, .timeout = 2)
{
    static const char *const bad[] = {"NOEQUALS", "=value",  "1KEY=v",
                                      "KEY-X=v",  "KEY X=v", "K.Y=v"};
    char key[256], err[256];
    const char *v;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(cli_parse_kv(bad[i], key, sizeof(key), &v, err, sizeof(err)), -EINVAL,
                     "accepted '%s'", bad[i]);
}

Test(cli, kv_rejects_oversized_value, .timeout = 2)
{
    size_t n = CONFIG_VALUE_MAX + 3;
    char *arg = malloc(n + 1), key[256], err[256];
    const char *v;

    cr_assert_not_null(arg);
    memset(arg, 'a', n);
    memcpy(arg, "K=", 2);
    arg[n] = '\0'; /* value of CONFIG_VALUE_MAX + 1 bytes */
    cr_assert_eq(cli_parse_kv(arg, key, sizeof(key), &v, err, sizeof(err)), -EINVAL);
    arg[n - 1] = '\0';
    cr_assert_eq(cli_parse_kv(arg, key, sizeof(key), &v, err, sizeof(err)), 0);
    free(arg);
}

Test(cli, flags_anywhere_and_double_dash, .timeout = 2)
{
    char a0[] = "shop", a1[] = "-m", a2[] = "hello there", a3[] = "dir", a4[] = "--no-wait",
         a5[] = "--timeout=30", a6[] = "--", a7[] = "--json";
    char *argv[] = {a0, a1, a2, a3, a4, a5, a6, a7};
    const char *msg = NULL, *timeout = NULL;
    bool nowait = false;
    struct cli_flag flags[] = {
        {"message", 'm', true, NULL, &msg},
        {"no-wait", 0, false, &nowait, NULL},
        {"timeout", 0, true, NULL, &timeout},
    };
    char *pos[3], err[256];
    int npos;

    cr_assert_eq(cli_args_parse(8, argv, flags, 3, pos, 3, &npos, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(npos, 3);
    cr_assert_str_eq(pos[0], "shop");
    cr_assert_str_eq(pos[1], "dir");
    cr_assert_str_eq(pos[2], "--json");
    cr_assert_str_eq(msg, "hello there");
    cr_assert_str_eq(timeout, "30");
    cr_assert(nowait);
}

Test(cli, flags_rejects_unknown_missing_value_and_extra, .timeout = 2)
{
    char a0[] = "shop", a1[] = "--jsn", a2[] = "-m", a3[] = "--json=1", a4[] = "x";
    bool json = false;
    const char *msg = NULL;
    struct cli_flag flags[] = {{"json", 0, false, &json, NULL}, {"message", 'm', true, NULL, &msg}};
    char *pos[1], err[256];
    int npos;

    char *unknown[] = {a0, a1};
    cr_assert_eq(cli_args_parse(2, unknown, flags, 2, pos, 1, &npos, err, sizeof(err)), -EINVAL);
    char *novalue[] = {a0, a2};
    cr_assert_eq(cli_args_parse(2, novalue, flags, 2, pos, 1, &npos, err, sizeof(err)), -EINVAL);
    char *valued_bool[] = {a0, a3};
    cr_assert_eq(cli_args_parse(2, valued_bool, flags, 2, pos, 1, &npos, err, sizeof(err)),
                 -EINVAL);
    char *extra[] = {a0, a4};
    cr_assert_eq(cli_args_parse(2, extra, flags, 2, pos, 1, &npos, err, sizeof(err)), -EINVAL);
}

Test(cli, seconds_flag_is_strict, .timeout = 2)
{
    uint32_t s;

    cr_assert_eq(cli_parse_seconds("300", 86400, &s), 0);
    cr_assert_eq(s, 300);
    cr_assert_eq(cli_parse_seconds("0", 86400, &s), -EINVAL);
    cr_assert_eq(cli_parse_seconds("-5", 86400, &s), -EINVAL);
    cr_assert_eq(cli_parse_seconds("86401", 86400, &s), -EINVAL);
    cr_assert_eq(cli_parse_seconds("5s", 86400, &s), -EINVAL);
}

/* cli_json_write_string(s) as a malloc'd string. */
static char *
json_str(const char *s)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    cr_assert_not_null(f);
    cli_json_write_string(f, s);
    fclose(f);
    return buf;
}

static void
expect_json(const char *in, const char *want)
{
    char *got = json_str(in);

    cr_expect_str_eq(got, want);
    free(got);
}

Test(cli, json_escapes_quotes_and_backslash, .timeout = 2)
{
    expect_json("plain", "\"plain\"");
    expect_json("", "\"\"");
    expect_json("say \"hi\"", "\"say \\\"hi\\\"\"");
    expect_json("C:\\path\\", "\"C:\\\\path\\\\\"");
    expect_json("a/b", "\"a/b\"");
}

Test(cli, json_escapes_control_chars, .timeout = 2)
{
    expect_json("a\nb\tc\rd", "\"a\\nb\\tc\\rd\"");
    expect_json("\b\f", "\"\\b\\f\"");
    expect_json("\x01\x1f", "\"\\u0001\\u001f\"");
    expect_json("\x7f", "\"\\u007f\"");
}

Test(cli, json_passes_utf8_through, .timeout = 2)
{
    expect_json("héllo wörld", "\"héllo wörld\"");
    expect_json("日本語", "\"日本語\"");
    expect_json("\xf0\x9f\x9a\x80", "\"\xf0\x9f\x9a\x80\""); /* U+1F680 */
}

Test(cli, json_replaces_invalid_utf8, .timeout = 2)
{
    expect_json("a\xff"
                "b",
                "\"a\\ufffdb\"");
    expect_json("\xc3", "\"\\ufffd\"");                                  /* truncated */
    expect_json("\xc0\xaf", "\"\\ufffd\\ufffd\"");                       /* overlong '/' */
    expect_json("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");            /* surrogate */
    expect_json("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* > U+10FFFF */
}

Test(cli, json_document_structure, .timeout = 2)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    struct cli_json j;

    cr_assert_not_null(f);
    cli_json_init(&j, f);
    cli_json_begin_array(&j);
    cli_json_begin_object(&j);
    cli_json_key(&j, "name");
    cli_json_string(&j, "web.1");
    cli_json_key(&j, "port");
    cli_json_uint(&j, 5001);
    cli_json_key(&j, "node");
    cli_json_string(&j, NULL);
    cli_json_key(&j, "formation");
    cli_json_begin_object(&j);
    cli_json_end_object(&j);
    cli_json_key(&j, "current");
    cli_json_bool(&j, true);
    cli_json_key(&j, "exit");
    cli_json_int(&j, -1);
    cli_json_end_object(&j);
    cli_json_end_array(&j);
    cli_json_end(&j);
    fclose(f);
    cr_expect_str_eq(buf, "[\n"
                          "  {\n"
                          "    \"name\": \"web.1\",\n"
                          "    \"port\": 5001,\n"
                          "    \"node\": null,\n"
                          "    \"formation\": {},\n"
                          "    \"current\": true,\n"
                          "    \"exit\": -1\n"
                          "  }\n"
                          "]\n");
    free(buf);
}
