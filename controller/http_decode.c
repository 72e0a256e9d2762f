/* SPDX-License-Identifier: MIT */
/*
 * http_decode.c: an HTTP API request (its route's names and its JSON body)
 * into the Drover__Message the CLI would send for the same verb. Pure: no
 * loop, no model; the libFuzzer harness fuzz_http drives it alone.
 *
 * Bodies are parsed by jansson (duplicate keys refused) and every value is
 * checked for its type and range here; names and values are then checked
 * again by the handler, exactly as for the CLI, so the two answer alike. The
 * message is built on the stack, packed and unpacked: what comes back is
 * one heap message that wire_msg_free releases whole.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "http.h"
#include "util.h"
#include "wire.h"

#define DECODE_MAX_VARS 256

static int bad(char *err, size_t errsz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
bad(char *err, size_t errsz, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static Drover__Message *
heap_copy(const Drover__Message *m)
{
    size_t len = drover__message__get_packed_size(m);
    uint8_t *buf = malloc(len > 0 ? len : 1);
    Drover__Message *out;

    if (buf == NULL)
        return NULL;
    drover__message__pack(m, buf);
    out = drover__message__unpack(NULL, len, buf);
    free(buf);
    return out;
}

/* The body as a JSON object (new reference), or NULL with err set. An
 * empty body is an empty object when empty_ok. */
static json_t *
parse_object(const char *body, size_t len, bool empty_ok, char *err, size_t errsz)
{
    json_error_t je;
    json_t *doc;

    if (len == 0 && empty_ok)
        return json_object();
    doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (doc == NULL) {
        bad(err, errsz, "malformed JSON at line %d column %d: %s", je.line, je.column, je.text);
        return NULL;
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        bad(err, errsz, "the body must be a JSON object");
        return NULL;
    }
    return doc;
}

static int
decode_scale(const char *app, json_t *doc, Drover__Message **out, char *err, size_t errsz)
{
    Drover__Message m = DROVER__MESSAGE__INIT;
    Drover__ScaleReq body = DROVER__SCALE_REQ__INIT;
    Drover__FormationEntry ent[DECODE_MAX_VARS], *ptr[DECODE_MAX_VARS];
    const char *key;
    json_t *v;
    size_t n = 0;

    if (json_object_size(doc) == 0)
        return bad(err, errsz, "give at least one TYPE: N, as {\"web\": 3}");
    if (json_object_size(doc) > DECODE_MAX_VARS)
        return bad(err, errsz, "at most %d process types", DECODE_MAX_VARS);
    json_object_foreach(doc, key, v)
    {
        json_int_t q;

        if (!name_type_valid(key))
            return bad(err, errsz, "invalid process type '%.40s'", key);
        if (!json_is_integer(v))
            return bad(err, errsz, "%s: the quantity must be an integer", key);
        q = json_integer_value(v);
        if (q < 0 || q > 10000)
            return bad(err, errsz, "%s: the quantity must be between 0 and 10000", key);
        drover__formation_entry__init(&ent[n]);
        ent[n].type = (char *)key;
        ent[n].quantity = (int32_t)q;
        ptr[n] = &ent[n];
        n++;
    }
    body.app = (char *)app;
    body.n_entries = n;
    body.entries = ptr;
    m.body_case = DROVER__MESSAGE__BODY_SCALE_REQ;
    m.scale_req = &body;
    return (*out = heap_copy(&m)) != NULL ? 0 : -ENOMEM;
}

/* {"K": "V", "K2": null}: set the strings (set) or unset the nulls. */
static int
decode_config(const char *app, json_t *doc, bool set, Drover__Message **out, char *err,
              size_t errsz)
{
    Drover__Message m = DROVER__MESSAGE__INIT;
    Drover__ConfigSetReq sb = DROVER__CONFIG_SET_REQ__INIT;
    Drover__ConfigUnsetReq ub = DROVER__CONFIG_UNSET_REQ__INIT;
    Drover__KeyValue kv[DECODE_MAX_VARS], *ptr[DECODE_MAX_VARS];
    char *keys[DECODE_MAX_VARS];
    const char *key;
    json_t *v;
    size_t n = 0;

    *out = NULL;
    if (json_object_size(doc) == 0)
        return bad(err, errsz, "give at least one variable, as {\"KEY\": \"value\"}");
    if (json_object_size(doc) > DECODE_MAX_VARS)
        return bad(err, errsz, "at most %d variables at once", DECODE_MAX_VARS);
    json_object_foreach(doc, key, v)
    {
        if (!json_is_string(v) && !json_is_null(v))
            return bad(err, errsz, "%.64s: a value must be a string (or null to unset)", key);
        if (set != json_is_string(v))
            continue;
        if (set) {
            drover__key_value__init(&kv[n]);
            kv[n].key = (char *)key;
            kv[n].value = (char *)json_string_value(v);
            ptr[n] = &kv[n];
        } else {
            keys[n] = (char *)key;
        }
        n++;
    }
    if (n == 0)
        return 0; /* nothing of this kind */
    if (set) {
        sb.app = (char *)app;
        sb.n_vars = n;
        sb.vars = ptr;
        m.body_case = DROVER__MESSAGE__BODY_CONFIG_SET_REQ;
        m.config_set_req = &sb;
    } else {
        ub.app = (char *)app;
        ub.n_keys = n;
        ub.keys = keys;
        m.body_case = DROVER__MESSAGE__BODY_CONFIG_UNSET_REQ;
        m.config_unset_req = &ub;
    }
    return (*out = heap_copy(&m)) != NULL ? 0 : -ENOMEM;
}

static int
decode_rollback(const char *app, json_t *doc, Drover__Message **out, char *err, size_t errsz)
{
    Drover__Message m = DROVER__MESSAGE__INIT;
    Drover__RollbackReq body = DROVER__ROLLBACK_REQ__INIT;
    json_t *v = json_object_get(doc, "version");

    if (json_object_size(doc) > (v != NULL ? 1u : 0u))
        return bad(err, errsz, "unknown field: only \"version\" is allowed");
    if (v != NULL &&
        (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > UINT32_MAX))
        return bad(err, errsz, "version: a release number (1, 2, ...)");
    body.app = (char *)app;
    body.version = v != NULL ? (uint32_t)json_integer_value(v) : 0;
    m.body_case = DROVER__MESSAGE__BODY_ROLLBACK_REQ;
    m.rollback_req = &body;
    return (*out = heap_copy(&m)) != NULL ? 0 : -ENOMEM;
}

static int
decode_restart(const char *app, json_t *doc, Drover__Message **out, char *err, size_t errsz)
{
    Drover__Message m = DROVER__MESSAGE__INIT;
    Drover__RestartReq body = DROVER__RESTART_REQ__INIT;
    json_t *v = json_object_get(doc, "target");

    if (json_object_size(doc) > (v != NULL ? 1u : 0u))
        return bad(err, errsz, "unknown field: only \"target\" is allowed");
    if (v != NULL && (!json_is_string(v) || json_string_length(v) > 64))
        return bad(err, errsz, "target: a process type or an instance name");
    body.app = (char *)app;
    body.target = v != NULL ? (char *)json_string_value(v) : "";
    m.body_case = DROVER__MESSAGE__BODY_RESTART_REQ;
    m.restart_req = &body;
    return (*out = heap_copy(&m)) != NULL ? 0 : -ENOMEM;
}

static int
decode_create(json_t *doc, Drover__Message **out, char *err, size_t errsz)
{
    Drover__Message m = DROVER__MESSAGE__INIT;
    Drover__AppCreateReq body = DROVER__APP_CREATE_REQ__INIT;
    json_t *v = json_object_get(doc, "name");

    if (v == NULL || !json_is_string(v) || json_object_size(doc) != 1)
        return bad(err, errsz, "give the app's name, as {\"name\": \"shop\"}");
    if (!name_app_valid(json_string_value(v)))
        return bad(err, errsz,
                   "name: invalid app name (want [a-z][a-z0-9-], at most 30 characters)");
    body.app = (char *)json_string_value(v);
    m.body_case = DROVER__MESSAGE__BODY_APP_CREATE_REQ;
    m.app_create_req = &body;
    return (*out = heap_copy(&m)) != NULL ? 0 : -ENOMEM;
}

int
ctl_http_decode(enum ctl_http_verb verb, const char *app, const char *body, size_t len,
                Drover__Message **out, char *err, size_t errsz)
{
    json_t *doc;
    int rc;

    *out = NULL;
    doc = parse_object(body, len, verb == HTTP_ROLLBACK || verb == HTTP_RESTART, err, errsz);
    if (doc == NULL)
        return -EINVAL;
    switch (verb) {
    case HTTP_SCALE:
        rc = decode_scale(app, doc, out, err, errsz);
        break;
    case HTTP_CONFIG_SET:
        rc = decode_config(app, doc, true, out, err, errsz);
        break;
    case HTTP_CONFIG_UNSET:
        rc = decode_config(app, doc, false, out, err, errsz);
        break;
    case HTTP_ROLLBACK:
        rc = decode_rollback(app, doc, out, err, errsz);
        break;
    case HTTP_RESTART:
        rc = decode_restart(app, doc, out, err, errsz);
        break;
    case HTTP_CREATE:
        rc = decode_create(doc, out, err, errsz);
        break;
    default:
        rc = bad(err, errsz, "this request takes no body");
        break;
    }
    json_decref(doc);
    return rc;
}
