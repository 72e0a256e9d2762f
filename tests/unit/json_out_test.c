/* SPDX-License-Identifier: MIT */
/* json_out_test.c: jansson-built documents (common/json_out.c, json_verbs.c). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "json_out.h"

Test(json_out, strings_keep_the_old_escapes, .timeout = 2)
{
    json_t *doc =
        json_pack("{s:o, s:o}", "a", jout_str("x\x01\x1f\x7fy"), "b", jout_str("ok\xff\"é"));
    char *text = jout_dumps(doc, false);

    cr_expect_str_eq(text, "{\"a\": \"x\\u0001\\u001f\\u007fy\", \"b\": \"ok\\ufffd\\\"é\"}\n");
    free(text);
    json_decref(doc);
}

Test(json_out, builder_pretty_prints_like_the_cli_did, .timeout = 2)
{
    struct jout j;
    json_t *doc;
    char *text;

    jout_init(&j);
    jout_begin_object(&j);
    jout_key(&j, "n");
    jout_uint(&j, UINT64_MAX);
    jout_key(&j, "cpu");
    jout_tenths(&j, 255);
    jout_key(&j, "empty");
    jout_begin_array(&j);
    jout_end_array(&j);
    jout_key(&j, "none");
    jout_string(&j, NULL);
    jout_end_object(&j);
    doc = jout_finish(&j);
    cr_assert_not_null(doc);
    text = jout_dumps(doc, true);
    cr_expect_str_eq(text, "{\n  \"n\": 18446744073709551615,\n  \"cpu\": 25.5,\n"
                           "  \"empty\": [],\n  \"none\": null\n}\n");
    free(text);
    json_decref(doc);
}

Test(json_out, ps_is_sorted_by_type_then_number, .timeout = 2)
{
    Drover__InstanceInfo a = DROVER__INSTANCE_INFO__INIT, b = DROVER__INSTANCE_INFO__INIT;
    Drover__InstanceInfo *v[2] = {&a, &b};
    Drover__PsRep r = DROVER__PS_REP__INIT;
    json_t *doc;

    a.name = "web.10";
    a.type = "web";
    b.name = "web.2";
    b.type = "web";
    r.n_instances = 2;
    r.instances = v;
    doc = jout_ps(&r);
    cr_assert_not_null(doc);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(doc, 0), "name")), "web.2");
    cr_expect(v[0] == &a, "the reply is borrowed: not reordered");
    json_decref(doc);
}
