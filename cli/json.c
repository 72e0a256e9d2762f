/* SPDX-License-Identifier: MIT */
/*
 * json.c: a tiny streaming JSON writer for --json output.
 *
 * Scripts parse what this writes, so the one thing it must get right is
 * strings: quotes, backslashes and control characters are escaped, valid
 * UTF-8 passes through untouched, and any byte that is not part of a valid
 * UTF-8 sequence becomes U+FFFD — config values are arbitrary bytes, and
 * invalid UTF-8 would make the whole document unparseable. The writer keeps
 * just enough state (a "first item" flag per level) to place commas; nesting
 * deeper than CLI_JSON_DEPTH is a programming error and is clamped.
 */
#include <inttypes.h>
#include <stdio.h>

#include "cli.h"
#include "util.h"

void
cli_json_init(struct cli_json *j, FILE *out)
{
    j->out = out;
    j->depth = 0;
    j->first[0] = true;
    j->after_key = false;
}

static void
indent(struct cli_json *j)
{
    fputc('\n', j->out);
    for (int i = 0; i < j->depth; i++)
        fputs("  ", j->out);
}

/* Before any value or key: the comma and the line break. */
static void
before_item(struct cli_json *j)
{
    if (j->after_key) {
        j->after_key = false;
        return;
    }
    if (j->depth > 0) {
        if (!j->first[j->depth])
            fputc(',', j->out);
        indent(j);
    }
    j->first[j->depth] = false;
}

static void
open_level(struct cli_json *j, char c)
{
    before_item(j);
    fputc(c, j->out);
    if (j->depth < CLI_JSON_DEPTH - 1)
        j->depth++;
    j->first[j->depth] = true;
}

static void
close_level(struct cli_json *j, char c)
{
    bool empty = j->first[j->depth];

    if (j->depth > 0)
        j->depth--;
    if (!empty)
        indent(j);
    fputc(c, j->out);
}

void
cli_json_begin_object(struct cli_json *j)
{
    open_level(j, '{');
}

void
cli_json_end_object(struct cli_json *j)
{
    close_level(j, '}');
}

void
cli_json_begin_array(struct cli_json *j)
{
    open_level(j, '[');
}

void
cli_json_end_array(struct cli_json *j)
{
    close_level(j, ']');
}

void
cli_json_key(struct cli_json *j, const char *key)
{
    before_item(j);
    cli_json_write_string(j->out, key);
    fputs(": ", j->out);
    j->after_key = true;
}

void
cli_json_string(struct cli_json *j, const char *s)
{
    before_item(j);
    if (s == NULL)
        fputs("null", j->out);
    else
        cli_json_write_string(j->out, s);
}

void
cli_json_int(struct cli_json *j, int64_t v)
{
    before_item(j);
    fprintf(j->out, "%" PRId64, v);
}

void
cli_json_uint(struct cli_json *j, uint64_t v)
{
    before_item(j);
    fprintf(j->out, "%" PRIu64, v);
}

void
cli_json_tenths(struct cli_json *j, uint64_t v)
{
    before_item(j);
    fprintf(j->out, "%" PRIu64 ".%u", v / 10, (unsigned)(v % 10));
}

void
cli_json_bool(struct cli_json *j, bool v)
{
    before_item(j);
    fputs(v ? "true" : "false", j->out);
}

void
cli_json_null(struct cli_json *j)
{
    before_item(j);
    fputs("null", j->out);
}

void
cli_json_time(struct cli_json *j, uint64_t ms)
{
    char buf[32];

    if (ms == 0) {
        cli_json_null(j);
        return;
    }
    fmt_time_ms(ms, buf);
    cli_json_string(j, buf);
}

void
cli_json_end(struct cli_json *j)
{
    fputc('\n', j->out);
}

/*
 * Length of the valid UTF-8 sequence at s (1-4), or 0 when invalid: overlong
 * forms, surrogates and code points past U+10FFFF are invalid (RFC 3629).
 */
static int
utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];
    int n;
    uint32_t cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) /* also stops at the NUL */
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

void
cli_json_write_string(FILE *out, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;

    fputc('"', out);
    while (*s != '\0') {
        int n;

        switch (*s) {
        case '"':
            fputs("\\\"", out);
            break;
        case '\\':
            fputs("\\\\", out);
            break;
        case '\b':
            fputs("\\b", out);
            break;
        case '\f':
            fputs("\\f", out);
            break;
        case '\n':
            fputs("\\n", out);
            break;
        case '\r':
            fputs("\\r", out);
            break;
        case '\t':
            fputs("\\t", out);
            break;
        default:
            if (*s < 0x20 || *s == 0x7f) {
                fprintf(out, "\\u%04x", *s);
                break;
            }
            n = utf8_len(s);
            if (n == 0) {
                fputs("\\ufffd", out);
                break;
            }
            fwrite(s, 1, (size_t)n, out);
            s += n;
            continue;
        }
        s++;
    }
    fputc('"', out);
}
