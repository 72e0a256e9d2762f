/* SPDX-License-Identifier: MIT */
/*
 * cli.h: the private header of `drover`, the command-line client. It reads as
 * the table of contents of cli/: one group of prototypes per file.
 *
 * Conventions. Verb handlers (cli_cmd_*) are small main()s: they take the
 * arguments after the verb and return an exit status (enum cli_exit), having
 * printed any reason on stderr themselves. Every other function returns 0 or a
 * negative errno, as the rest of drover does. Input is validated here, before
 * anything is sent, so that bad input never reaches the controller.
 */
#ifndef DROVER_CLI_H
#define DROVER_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "drover.pb-c.h"
#include "json_out.h"

/* Exit statuses: the contract scripts rely on. */
enum cli_exit {
    CLI_OK = 0,    /* success */
    CLI_FAIL = 1,  /* the request failed: controller error, unreachable, ... */
    CLI_USAGE = 2, /* bad usage: unknown verb, missing argument, bad flag or value */
};

#define CLI_SCALE_MAX 100000 /* largest quantity accepted for one type */
#define CLI_DEPLOY_TIMEOUT_DEFAULT 300
#define CLI_DEPLOY_TIMEOUT_MAX 86400

/* verbs.c: the verb table, help and usage texts */
struct cli_verb {
    const char *name;     /* "config:set" */
    const char *synopsis; /* "APP K=V..." */
    const char *summary;  /* one line for `drover help` */
    const char *details;  /* flags and notes for `drover VERB --help`, or NULL */
    int (*run)(int argc, char **argv);
};
const struct cli_verb *cli_verb_find(const char *name);
void cli_help(FILE *out);
void cli_verb_help(FILE *out, const struct cli_verb *v);
/* Edit distance (insert, delete, substitute, swap two neighbours). */
unsigned cli_edit_distance(const char *a, const char *b);
/* The verb name is most likely a typo of, or NULL when none is close. */
const char *cli_verb_suggest(const char *name);
/* "unknown verb 'scael': did you mean 'scale'?" and the usage; CLI_USAGE. */
int cli_unknown_verb(const char *name);
/*
 * Print "drover: REASON" (when fmt is not NULL) and the verb's usage on
 * stderr; returns CLI_USAGE so that handlers can `return cli_usage(...)`.
 */
int cli_usage(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print "drover: REASON" on stderr; returns CLI_FAIL. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* args.c: flags, positional arguments, TYPE=N and K=V */
struct cli_flag {
    const char *name;   /* long name without "--": "json" */
    char short_name;    /* 'm', or 0 */
    bool takes_value;   /* "-m TEXT", "--timeout 30", "--timeout=30" */
    bool *set;          /* set to true when seen (may be NULL) */
    const char **value; /* the value when takes_value (borrowed from argv) */
};
/*
 * Split argv[0..argc) into flags and positionals (flags may come anywhere;
 * "--" ends them). pos receives at most maxpos borrowed pointers. Returns 0,
 * or -EINVAL with a one-line reason in err (unknown flag, missing value).
 */
int cli_args_parse(int argc, char **argv, const struct cli_flag *flags, size_t nflags, char **pos,
                   int maxpos, int *npos, char *err, size_t errsz);
/* Is any argument before "--" "-h" or "--help"? */
bool cli_args_want_help(int argc, char **argv);
/*
 * "web=3": a valid process type, '=', a decimal in [0, CLI_SCALE_MAX] with no
 * sign, space or suffix. Returns 0 or -EINVAL with the reason in err.
 */
int cli_parse_scale(const char *arg, char *type, size_t typesz, int32_t *qty, char *err,
                    size_t errsz);
/*
 * "KEY=VALUE": split at the first '=' (the value may hold more), KEY a valid
 * config key, VALUE at most CONFIG_VALUE_MAX bytes (may be empty). *value
 * points into arg. Returns 0 or -EINVAL with the reason in err.
 */
int cli_parse_kv(const char *arg, char *key, size_t keysz, const char **value, char *err,
                 size_t errsz);
/*
 * Check an APP argument: CLI_OK, or CLI_USAGE with the rule printed along with
 * verb's usage.
 */
int cli_app_arg(const char *verb, const char *app);
/* Whole seconds in [1, max] for flags like --timeout. 0 or -EINVAL. */
int cli_parse_seconds(const char *s, uint32_t max, uint32_t *out);

/* json.c: --json output, built with jansson through common/json_out.c (the
 * documents of replies come from its jout_* builders, shared with the
 * controller's HTTP API); cli_json_* is its streaming builder, for the few
 * documents that are the CLI's own. */
struct cli_json {
    FILE *out;
    struct jout j;
};
void cli_json_init(struct cli_json *j, FILE *out);
void cli_json_begin_object(struct cli_json *j);
void cli_json_end_object(struct cli_json *j);
void cli_json_begin_array(struct cli_json *j);
void cli_json_end_array(struct cli_json *j);
void cli_json_key(struct cli_json *j, const char *key);
void cli_json_string(struct cli_json *j, const char *s); /* NULL writes null */
void cli_json_int(struct cli_json *j, int64_t v);
void cli_json_uint(struct cli_json *j, uint64_t v);
void cli_json_tenths(struct cli_json *j, uint64_t v); /* 255 -> 25.5 */
void cli_json_bool(struct cli_json *j, bool v);
void cli_json_null(struct cli_json *j);
/* A unix-ms time as an RFC 3339 string, or null when 0. */
void cli_json_time(struct cli_json *j, uint64_t ms);
/* Write the document, pretty, with a newline. */
void cli_json_end(struct cli_json *j);
/* Print doc (takes ownership; NULL: out of memory, said on stderr). */
void cli_json_print(FILE *out, json_t *doc);
/*
 * Write s as a JSON string literal with its quotes: '"' '\\' and control
 * characters escaped, valid UTF-8 passed through, each invalid byte replaced
 * by U+FFFD so the output is always valid JSON.
 */
void cli_json_write_string(FILE *out, const char *s);

/* table.c: aligned columns for human output */
struct cli_table;
struct cli_table *cli_table_new(size_t ncols);
/* Add a row of ncols cells (copied; NULL is an empty cell). 0 or -ENOMEM. */
int cli_table_row(struct cli_table *t, const char *const *cells);
/* Print with two spaces between columns; the last column is not padded. */
void cli_table_print(const struct cli_table *t, FILE *out, const char *indent);
void cli_table_free(struct cli_table *t);

/* fmt.c: times and small things for human output */
/* "2026-11-24T10:00:00Z" (seconds), or "-" when ms is 0. */
void cli_fmt_time(uint64_t ms, char out[32]);
/* "~ 5s ago", "~ 3m ago", "~ 2h ago", "~ 4d ago"; "" when ms is 0. */
void cli_fmt_ago(uint64_t ms, uint64_t now, char out[32]);
/* "10 s", "0.5 s" */
void cli_fmt_ms(uint64_t ms, char out[32]);
/* "500ms", "60s", "90s", "5m": short, and what settings:set reads back. */
void cli_fmt_duration(uint64_t ms, char out[32]);
/*
 * One type's rollout: "web 2/4 on v7 (1 starting, 1 old)", "worker 1/1 on v7"
 * (updated/desired; starting = created but not up yet; old = other releases).
 */
void cli_fmt_progress(const Drover__TypeProgress *t, uint32_t release, char *out, size_t outsz);
/* "10.0.0.5:5000"; an IPv6 host in brackets: "[fd00::5]:5000". */
void cli_fmt_hostport(const char *host, uint32_t port, char *out, size_t outsz);
/* "web=3 worker=1" for a formation, "(none)" when empty. */
void cli_fmt_formation(Drover__FormationEntry **f, size_t n, char *out, size_t outsz);
/* A protobuf string field: NULL becomes "". */
const char *cli_str(const char *s);
/* For polling verbs: a monotonic clock, and a sleep that resumes after signals. */
uint64_t cli_mono_ms(void);
void cli_sleep_ms(unsigned ms);

/* signals.c: a self-pipe for verbs that poll */
/* Deliver sigs[0..n) as one byte each (the signal number) on the returned
 * non-blocking fd; SIGPIPE is ignored. Negative errno on failure. */
int cli_signal_pipe(const int *sigs, size_t n);

/* client.c: one REQ socket to the controller */
struct cli_client;
/*
 * Read DROVER_CONTROLLER, DROVER_TIMEOUT_MS (and accept DROVER_API_TOKEN),
 * open the socket and connect. Prints the reason on failure. Returns 0,
 * -EINVAL for a bad variable (exit 2), or another negative errno.
 */
int cli_client_new(struct cli_client **out);
void cli_client_free(struct cli_client *c);
/*
 * Send req, wait for the reply. On success *rep is the reply (free with
 * wire_msg_free) and its body is `want`. On failure prints one line on
 * stderr (the controller's Error message, a timeout, "unexpected reply") and
 * returns a negative errno: -ETIMEDOUT, -EREMOTEIO (Error reply), -EBADMSG.
 */
int cli_call(struct cli_client *c, Drover__Message *req, Drover__Message__BodyCase want,
             Drover__Message **rep);
/* Open a client; on failure return the exit status to use, else CLI_OK. */
int cli_connect(struct cli_client **out);
/* Change how long cli_call waits for a reply (long polls wait longer). */
void cli_client_set_timeout(struct cli_client *c, uint64_t ms);
uint64_t cli_client_timeout(const struct cli_client *c); /* DROVER_TIMEOUT_MS */
const char *cli_client_endpoint(const struct cli_client *c);
/* For a poll(2) loop: readable when a reply can be received. */
int cli_client_rcvfd(struct cli_client *c);
/* Send without waiting (a newer request cancels an unanswered one). */
int cli_send(struct cli_client *c, Drover__Message *req);
/* Receive a reply if one is there: 0, -EAGAIN, or as cli_call (printed). */
int cli_recv_nowait(struct cli_client *c, Drover__Message__BodyCase want, Drover__Message **rep);

/* probe.c: a quick TCP connect before the first request */
#define CLI_PROBE_MS 1000
/* The host part of an endpoint's "HOST" to connect to: "[::1]" -> "::1",
 * "eth0;10.0.0.1" -> "10.0.0.1". -EINVAL for a wildcard or an empty one. */
int cli_probe_host(const char *endpoint_host, char *out, size_t outsz);
/* Connect to host:port within timeout_ms: 0 when something accepted,
 * -ECONNREFUSED / -EHOSTUNREACH / -ENETUNREACH when nothing can, -ETIMEDOUT
 * when no answer came (proves nothing), -EADDRNOTAVAIL when host does not
 * resolve. */
int cli_probe_tcp(const char *host, uint16_t port, unsigned timeout_ms);

/* cmd_apps.c */
int cli_cmd_apps(int argc, char **argv);
int cli_cmd_apps_create(int argc, char **argv);
/* Fetch one app (AppsReq, then find it). 0, -ENOENT (printed), or as cli_call. */
int cli_app_get(struct cli_client *c, const char *app, Drover__Message **rep,
                Drover__AppInfo **info);
/* The same, but -ENOENT is not printed (the caller says what to do). */
int cli_app_find(struct cli_client *c, const char *app, Drover__Message **rep,
                 Drover__AppInfo **info);
/* Create app (AppCreateReq). 0 or as cli_call (printed). */
int cli_app_create(struct cli_client *c, const char *app);

/* cmd_lifecycle.c: restart, ps:stop, apps:destroy, config:get, nodes:remove */
int cli_cmd_restart(int argc, char **argv);
int cli_cmd_ps_stop(int argc, char **argv);
int cli_cmd_apps_destroy(int argc, char **argv);
int cli_cmd_config_get(int argc, char **argv);
int cli_cmd_nodes_remove(int argc, char **argv);

/* cmd_config.c */
int cli_cmd_config(int argc, char **argv);
int cli_cmd_config_set(int argc, char **argv);
int cli_cmd_config_unset(int argc, char **argv);

/* cmd_drains.c: drains, drains:add, drains:remove */
int cli_cmd_drains(int argc, char **argv);
int cli_cmd_drains_add(int argc, char **argv);
int cli_cmd_drains_remove(int argc, char **argv);
/* leftout.c: what deploy leaves out of a slug (.env, .git, .slugignore) */
struct cli_leftout;
/* Reads DIR/.slugignore when there is one; NULL with the reason in err. */
struct cli_leftout *cli_leftout_new(const char *dir, char *err, size_t errsz);
bool cli_leftout_filter(void *arg, const char *rel, bool is_dir); /* a slug_filter_fn */
void cli_leftout_report(const struct cli_leftout *lo, FILE *out);
void cli_leftout_free(struct cli_leftout *lo);

/* cmd_deploy.c */
int cli_cmd_deploy(int argc, char **argv);

/* rollout.c: waiting for a release's deploy to finish */
/*
 * Poll the app's deploy (DeployReq) until the deploy of release succeeds,
 * fails, is superseded by a newer release, or timeout_s passes (the deploy
 * goes on without us). Prints per-type progress on stdout as it changes.
 * Returns 0, -EIO (failed), -ECANCELED (superseded), -ETIMEDOUT or as
 * cli_call; every failure printed.
 */
int cli_rollout_wait(struct cli_client *c, const char *app, uint32_t release, uint32_t timeout_s);
/* The same, naming it what ("restart") in messages; quiet: no progress. */
int cli_rollout_wait_for(struct cli_client *c, const char *app, uint32_t release,
                         uint32_t timeout_s, const char *what, bool quiet);

/* cmd_releases.c: releases, rollback */
int cli_cmd_releases(int argc, char **argv);
int cli_cmd_rollback(int argc, char **argv);
/* "v7" or "7", from 1: 0 or -EINVAL. */
int cli_parse_version(const char *s, uint32_t *out);

/* cmd_settings.c: settings, settings:set */
int cli_cmd_settings(int argc, char **argv);
int cli_cmd_settings_set(int argc, char **argv);
/*
 * The settings of each type (only the one named `only`, when not NULL) as a
 * table, or with json as a JSON array of objects named as TypeSettings'
 * fields. 0 or -ENOMEM.
 */
int cli_settings_print(FILE *out, Drover__TypeSettings **types, size_t n, const char *only,
                       bool json);

/* cmd_endpoints.c */
int cli_cmd_endpoints(int argc, char **argv);
/*
 * One endpoint list on out. Plain: "NAME host:port" lines, or only
 * "host:port" when by_type (the list of one type, as a router reads it).
 * JSON: one line, {"app", "version", "endpoints": [{id, name, type, host,
 * port, release}]}.
 */
void cli_endpoints_print(FILE *out, const char *app, const Drover__EndpointsRep *r, bool by_type,
                         bool json);

/* cmd_scale.c */
int cli_cmd_scale(int argc, char **argv);

/* cmd_ps.c */
int cli_cmd_ps(int argc, char **argv);
/*
 * A type's heading: "=== web (2): CMD" when as many run as are wanted and
 * all listed run; else "=== web (1 wanted, 2 running: deploy in progress):
 * CMD". wanted < 0: not in the formation (one-offs): "=== run (N): CMD".
 */
void cli_ps_heading(const char *type, int32_t wanted, size_t running, size_t listed, bool deploying,
                    const char *command, char *out, size_t outsz);
/* An instance's reason as ps shows it: a restart's schedule ("restart 2 in
 * 0.8 s") only while it is crashed, waiting for that restart. */
void cli_ps_reason(const char *state, const char *reason, char *out, size_t outsz);

/* cmd_nodes.c */
int cli_cmd_nodes(int argc, char **argv);
/* One node as a JSON object (nodes --json, status --json, nodes:* --json). */
/* "agent leaving, 2 running until replaced, 1 stopping, 3 lost", or "". */
void cli_node_notes(const Drover__NodeInfo *n, char *out, size_t outsz);
/* The nodes as a table on stdout, each line after indent (may be NULL). */
int cli_nodes_table(Drover__NodeInfo **nodes, size_t n, const char *indent);

/* cmd_node_admin.c: nodes:cordon, nodes:uncordon, nodes:drain */
int cli_cmd_nodes_cordon(int argc, char **argv);
int cli_cmd_nodes_uncordon(int argc, char **argv);
int cli_cmd_nodes_drain(int argc, char **argv);

/* cmd_status.c */
int cli_cmd_status(int argc, char **argv);
int cli_cmd_dashboard(int argc, char **argv);
/* Fetch the cluster's status (StatusReq). 0 or as cli_call. */
int cli_status_get(struct cli_client *c, Drover__Message **rep);

/* cmd_logs.c */
int cli_cmd_logs(int argc, char **argv);

/* cmd_run.c */
#define CLI_RUN_ARGS_MAX 256
int cli_cmd_run(int argc, char **argv);
/*
 * The command line for `drover run APP -- CMD [ARG...]`: one argument is
 * taken as a shell command as it is ("echo $PORT"); several are each quoted
 * for /bin/sh so that they arrive as they were given. 0, or -E2BIG past
 * 4096 bytes.
 */
int cli_run_command(char *const *args, int n, char *out, size_t outsz);

#endif
