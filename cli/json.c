/* SPDX-License-Identifier: MIT */
/*
 * json.c: the CLI's --json output on jansson.
 *
 * The documents of replies are built by common/json_out.c's jout_*
 * builders (shared with the controller's HTTP API, so both say the same);
 * here is only the CLI's end of it: its own small documents through the
 * streaming builder, and printing.
 */
#include <stdio.h>

#include "cli.h"

void
cli_json_init(struct cli_json *j, FILE *out)
{
    j->out = out;
    jout_init(&j->j);
}

void
cli_json_begin_object(struct cli_json *j)
{
    jout_begin_object(&j->j);
}

void
cli_json_end_object(struct cli_json *j)
{
    jout_end_object(&j->j);
}

void
cli_json_begin_array(struct cli_json *j)
{
    jout_begin_array(&j->j);
}

void
cli_json_end_array(struct cli_json *j)
{
    jout_end_array(&j->j);
}

void
cli_json_key(struct cli_json *j, const char *key)
{
    jout_key(&j->j, key);
}

void
cli_json_string(struct cli_json *j, const char *s)
{
    jout_string(&j->j, s);
}

void
cli_json_int(struct cli_json *j, int64_t v)
{
    jout_int(&j->j, v);
}

void
cli_json_uint(struct cli_json *j, uint64_t v)
{
    jout_uint(&j->j, v);
}

void
cli_json_tenths(struct cli_json *j, uint64_t v)
{
    jout_tenths(&j->j, v);
}

void
cli_json_bool(struct cli_json *j, bool v)
{
    jout_bool(&j->j, v);
}

void
cli_json_null(struct cli_json *j)
{
    jout_null(&j->j);
}

void
cli_json_time(struct cli_json *j, uint64_t ms)
{
    jout_time(&j->j, ms);
}

void
cli_json_end(struct cli_json *j)
{
    cli_json_print(j->out, jout_finish(&j->j));
}

void
cli_json_print(FILE *out, json_t *doc)
{
    if (doc == NULL || jout_dump(doc, out, true) < 0)
        fprintf(stderr, "error: out of memory writing JSON\n");
    json_decref(doc);
}

void
cli_json_write_string(FILE *out, const char *s)
{
    jout_write_string(out, s);
}
