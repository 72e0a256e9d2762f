/* SPDX-License-Identifier: MIT */
/*
 * json_out.h: every JSON document drover writes, built with jansson.
 *
 * The CLI's --json and the controller's HTTP API turn the same reply
 * messages into the same documents through the jout_* builders below, so the
 * two can never disagree. A builder takes a reply (borrowed) and returns a
 * new json_t the caller owns (NULL only when out of memory).
 *
 * Strings are arbitrary bytes on the wire (config values, log lines):
 * jout_str() keeps valid UTF-8 and replaces each byte that is not part of a
 * valid sequence by U+FFFD, so every document is valid JSON.
 *
 * struct jout is a small streaming front end over a jansson tree (begin an
 * object, a key, a value ...), kept so that the emitters read top to bottom
 * in the order of their output.
 */
#ifndef DROVER_JSON_OUT_H
#define DROVER_JSON_OUT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "drover.pb-c.h"

#define JOUT_DEPTH 16
struct jout {
    json_t *stack[JOUT_DEPTH];
    int depth;
    char *key; /* the pending key of the innermost object, or NULL */
    json_t *root;
    bool failed; /* out of memory somewhere: jout_finish returns NULL */
};
void jout_init(struct jout *j);
void jout_begin_object(struct jout *j);
void jout_end_object(struct jout *j);
void jout_begin_array(struct jout *j);
void jout_end_array(struct jout *j);
void jout_key(struct jout *j, const char *key);
void jout_string(struct jout *j, const char *s); /* NULL writes null */
void jout_int(struct jout *j, int64_t v);
void jout_uint(struct jout *j, uint64_t v);
void jout_tenths(struct jout *j, uint64_t v); /* 255 -> 25.5 */
void jout_bool(struct jout *j, bool v);
void jout_null(struct jout *j);
void jout_time(struct jout *j, uint64_t ms); /* RFC 3339, or null when 0 */
void jout_value(struct jout *j, json_t *v);  /* takes ownership of v */
/* The document (owned by the caller), or NULL when out of memory. */
json_t *jout_finish(struct jout *j);

/* A JSON string of s (NULL: null), invalid UTF-8 bytes as U+FFFD. */
json_t *jout_str(const char *s);
/* A copy of s[0..len) with invalid UTF-8 replaced; NULL on ENOMEM. */
char *jout_utf8_clean(const char *s, size_t len, size_t *outlen);

/*
 * Write doc: pretty (2-space indent, as `--json` prints documents) or on one
 * line with ", " and ": " (as `--json` prints streamed lines), plus a
 * newline. Control characters are written as lowercase \u00xx, DEL as
 * \u007f. jout_dumps returns a malloc'd string (free()) or NULL.
 */
int jout_dump(const json_t *doc, FILE *out, bool pretty);
char *jout_dumps(const json_t *doc, bool pretty);
/* A string literal with its quotes, escaped as above. */
void jout_write_string(FILE *out, const char *s);

/* ---- one builder per reply, shared by `drover VERB --json` and /v1 ---- */
/* qsort order of Drover__InstanceInfo pointers, as ps shows them: by type,
 * then by number (web.2 before web.10), then by id. */
int jout_instance_order(const void *a, const void *b);
json_t *jout_apps(const Drover__AppsRep *r);
json_t *jout_config(const Drover__ConfigRep *r);
json_t *jout_drains(const Drover__DrainsRep *r);
json_t *jout_endpoints(const char *app, const Drover__EndpointsRep *r);
json_t *jout_log_line(const Drover__LogLine *l);
json_t *jout_node(const Drover__NodeInfo *n);
json_t *jout_nodes(const Drover__NodesRep *r);
json_t *jout_ps(const Drover__PsRep *r);
json_t *jout_releases(const Drover__ReleasesRep *r);
/* only: one type's settings, or NULL for all */
json_t *jout_settings(Drover__TypeSettings **types, size_t n, const char *only);
json_t *jout_status(const Drover__StatusRep *s);
/* An app's latest deploy and its progress per type (null: none yet). */
json_t *jout_deploy(const Drover__DeployInfo *d);
/* restart --json: state "started" (not waited for), "succeeded" or "failed" */
json_t *jout_restart(const char *app, const Drover__RestartRep *r, const char *state);
/* apps:destroy --json: destroyed once the app is gone (waited for) */
json_t *jout_destroy(const char *app, const Drover__AppDestroyRep *r, bool destroyed);

#endif
