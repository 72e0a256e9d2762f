/* SPDX-License-Identifier: MIT */
/*
 * json_out.c: the jansson side of every JSON document drover writes (see
 * json_out.h): the streaming builder, UTF-8 cleaning and the writer.
 *
 * jansson escapes a control character as \u001F and leaves DEL as it is;
 * drover's documents have always said \u001f and \u007f, and scripts may
 * compare them byte for byte, so the writer passes jansson's output through
 * a small filter. jansson hands every escape sequence to the callback as one
 * chunk of its own, and DEL can only appear inside a string, so the filter
 * never has to parse the document. A byte that is not valid UTF-8 has
 * always been written as the escape \ufffd: the cleaner marks it with the
 * noncharacter U+FDD0 (never kept from input: it is cleaned like an invalid
 * byte), which the writer turns into that escape; in a json_t handed to
 * another writer it reads as U+FDD0, so jout_str() is for our writer only.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "json_out.h"
#include "util.h"

#define MARK "\xef\xb7\x90" /* U+FDD0: an invalid byte, written \ufffd */
#define BIG "\xef\xb7\x91"  /* U+FDD1 + digits: a number past INT64_MAX */

/*
 * Length of the valid UTF-8 sequence at s (1-4, at most n bytes), or 0 when
 * invalid: overlong forms, surrogates and code points past U+10FFFF are
 * invalid (RFC 3629).
 */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t k;
    uint32_t cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        k = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        k = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        k = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (k > n)
        return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((k == 3 && cp < 0x800) || (k == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return k;
}

char *
jout_utf8_clean(const char *str, size_t len, size_t *outlen)
{
    const unsigned char *s = (const unsigned char *)str;
    char *out, *p;
    size_t i = 0;

    if (len > (SIZE_MAX - 1) / 3)
        return NULL;
    out = malloc(len * 3 + 1); /* each bad byte grows to 3 */
    if (out == NULL)
        return NULL;
    p = out;
    while (i < len) {
        size_t k = s[i] == 0 ? 0 : utf8_len(s + i, len - i);

        if (k == 3 && (memcmp(s + i, MARK, 3) == 0 || memcmp(s + i, BIG, 3) == 0))
            k = 0;
        if (k == 0) {
            memcpy(p, MARK, 3);
            p += 3;
            i++;
            continue;
        }
        memcpy(p, s + i, k);
        p += k;
        i += k;
    }
    *p = '\0';
    *outlen = (size_t)(p - out);
    return out;
}

json_t *
jout_str(const char *s)
{
    json_t *v;
    char *c;
    size_t n;

    if (s == NULL)
        return json_null();
    c = jout_utf8_clean(s, strlen(s), &n);
    if (c == NULL)
        return NULL;
    v = json_stringn_nocheck(c, n);
    free(c);
    return v;
}

/* ---- the builder ---- */

void
jout_init(struct jout *j)
{
    memset(j, 0, sizeof(*j));
}

/* Place v (owned) in the innermost container, or make it the root. */
static void
put(struct jout *j, json_t *v)
{
    json_t *top;
    int rc = 0;

    if (v == NULL) {
        j->failed = true;
        return;
    }
    if (j->depth == 0) {
        if (j->root != NULL)
            json_decref(j->root);
        j->root = v;
        return;
    }
    top = j->stack[j->depth - 1];
    if (json_is_object(top)) {
        rc = json_object_set_new_nocheck(top, j->key != NULL ? j->key : "", v);
        free(j->key);
        j->key = NULL;
    } else {
        rc = json_array_append_new(top, v);
    }
    if (rc < 0)
        j->failed = true;
}

static void
open_level(struct jout *j, json_t *v)
{
    if (v == NULL) {
        j->failed = true;
        return;
    }
    json_incref(v);
    put(j, v);
    if (j->depth < JOUT_DEPTH)
        j->stack[j->depth++] = v;
    else
        j->failed = true;
    json_decref(v); /* the container holds it now */
}

static void
close_level(struct jout *j)
{
    if (j->depth > 0)
        j->depth--;
}

void
jout_begin_object(struct jout *j)
{
    open_level(j, json_object());
}

void
jout_end_object(struct jout *j)
{
    close_level(j);
}

void
jout_begin_array(struct jout *j)
{
    open_level(j, json_array());
}

void
jout_end_array(struct jout *j)
{
    close_level(j);
}

void
jout_key(struct jout *j, const char *key)
{
    size_t n;

    free(j->key);
    j->key = jout_utf8_clean(key, strlen(key), &n);
    if (j->key == NULL)
        j->failed = true;
}

void
jout_string(struct jout *j, const char *s)
{
    put(j, jout_str(s));
}

void
jout_int(struct jout *j, int64_t v)
{
    put(j, json_integer((json_int_t)v));
}

/* jansson's integers are signed: a larger one travels as a marked string
 * that the writer prints bare (see filter). */
void
jout_uint(struct jout *j, uint64_t v)
{
    char big[32];

    if (v <= INT64_MAX) {
        put(j, json_integer((json_int_t)v));
        return;
    }
    snprintf(big, sizeof(big), BIG "%" PRIu64, v);
    put(j, json_string_nocheck(big));
}

void
jout_tenths(struct jout *j, uint64_t v)
{
    put(j, json_real((double)v / 10.0));
}

void
jout_bool(struct jout *j, bool v)
{
    put(j, json_boolean(v));
}

void
jout_null(struct jout *j)
{
    put(j, json_null());
}

void
jout_time(struct jout *j, uint64_t ms)
{
    char buf[32];

    if (ms == 0) {
        jout_null(j);
        return;
    }
    fmt_time_ms(ms, buf);
    jout_string(j, buf);
}

void
jout_value(struct jout *j, json_t *v)
{
    put(j, v);
}

json_t *
jout_finish(struct jout *j)
{
    json_t *root = j->root;

    free(j->key);
    j->key = NULL;
    j->root = NULL;
    j->depth = 0;
    if (j->failed) {
        json_decref(root);
        return NULL;
    }
    return root;
}

/* ---- the writer ---- */

struct sink {
    FILE *out; /* or */
    char *buf; /* a growing string */
    size_t len, cap;
    bool quote;   /* a '"' held back: it may open a BIG number */
    bool unquote; /* drop the next '"': it closes a BIG number */
};

static int
sink_put(struct sink *k, const char *s, size_t n)
{
    if (k->out != NULL)
        return fwrite(s, 1, n, k->out) == n ? 0 : -1;
    if (k->len + n + 1 > k->cap) {
        size_t cap = k->cap == 0 ? 256 : k->cap;
        char *b;

        while (cap < k->len + n + 1)
            cap *= 2;
        if ((b = realloc(k->buf, cap)) == NULL)
            return -1;
        k->buf = b;
        k->cap = cap;
    }
    memcpy(k->buf + k->len, s, n);
    k->len += n;
    k->buf[k->len] = '\0';
    return 0;
}

/* jansson's dump callback: lowercase \u00XX, DEL as \u007f (see the top). */
static int
filter(const char *s, size_t n, void *arg)
{
    struct sink *k = arg;
    size_t i, from = 0;

    /* jansson writes a string's quotes as chunks of their own. */
    if (k->unquote && n == 1 && s[0] == '"') {
        k->unquote = false;
        return 0;
    }
    if (k->quote) {
        k->quote = false;
        if (n > 3 && memcmp(s, BIG, 3) == 0) {
            k->unquote = true;
            return sink_put(k, s + 3, n - 3);
        }
        if (sink_put(k, "\"", 1) < 0)
            return -1;
    }
    if (n == 1 && s[0] == '"') {
        k->quote = true;
        return 0;
    }
    if (n == 6 && s[0] == '\\' && s[1] == 'u') {
        char seq[6];

        memcpy(seq, s, 6);
        for (i = 2; i < 6; i++)
            if (seq[i] >= 'A' && seq[i] <= 'F')
                seq[i] = (char)(seq[i] - 'A' + 'a');
        return sink_put(k, seq, 6);
    }
    for (i = 0; i < n; i++) {
        if (s[i] == 0x7f) {
            if (sink_put(k, s + from, i - from) < 0 || sink_put(k, "\\u007f", 6) < 0)
                return -1;
            from = i + 1;
        } else if (s[i] == MARK[0] && i + 2 < n && memcmp(s + i, MARK, 3) == 0) {
            if (sink_put(k, s + from, i - from) < 0 || sink_put(k, "\\ufffd", 6) < 0)
                return -1;
            from = i + 3;
            i += 2;
        }
    }
    return sink_put(k, s + from, n - from);
}

static int
dump(const json_t *doc, struct sink *k, bool pretty)
{
    size_t flags = JSON_ENCODE_ANY | JSON_REAL_PRECISION(15);

    if (pretty)
        flags |= JSON_INDENT(2);
    if (json_dump_callback(doc, filter, k, flags) < 0)
        return -ENOMEM;
    if (k->quote && sink_put(k, "\"", 1) < 0)
        return -EIO;
    return sink_put(k, "\n", 1) < 0 ? -EIO : 0;
}

int
jout_dump(const json_t *doc, FILE *out, bool pretty)
{
    struct sink k = {.out = out};

    return doc == NULL ? -ENOMEM : dump(doc, &k, pretty);
}

char *
jout_dumps(const json_t *doc, bool pretty)
{
    struct sink k = {0};

    if (doc == NULL || dump(doc, &k, pretty) < 0) {
        free(k.buf);
        return NULL;
    }
    return k.buf;
}

void
jout_write_string(FILE *out, const char *s)
{
    struct sink k = {.out = out};
    json_t *v = jout_str(s);

    if (v != NULL && json_dump_callback(v, filter, &k, JSON_ENCODE_ANY) == 0 && k.quote)
        sink_put(&k, "\"", 1);
    json_decref(v);
}
