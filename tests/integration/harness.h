/* SPDX-License-Identifier: MIT */
/*
 * harness.h: start drover's real binaries for integration tests, drive them
 * through the real CLI, and clean up every process they started (including
 * app processes, which live in their own sessions) even when an assertion
 * fails: call h_cleanup() from the suite's .fini.
 */
#ifndef DROVER_HARNESS_H
#define DROVER_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define H_MAX_PROCS 16

/* Every daemon the harness starts gets this cluster key and the controller
 * this API token; h_cli presents the token. A test overrides them through
 * extra_env (whose entries come first, so they win) or h_cli_env. */
#define H_CLUSTER_KEY "5eed0f0e0d0c0b0a09080706050403020100f0e0d0c0b0a09080706050403020"
#define H_API_TOKEN "drover-integration-test-token"

struct h_proc {
    pid_t pid; /* also its process group */
    char name[32];
    char log[512]; /* stdout+stderr go here */
};

struct h_cluster {
    char dir[256]; /* everything the test writes lives under here */
    char api[64];  /* tcp://127.0.0.1:PORT */
    char join[64];
    int base_port;  /* API = base, agents = base + 1 (+2 notify) */
    char netns[64]; /* where the CLI runs (h_cli); "" for this namespace */
    struct h_proc procs[H_MAX_PROCS];
    int nprocs;
};

/* Make a fresh temp dir (mode 0755: app processes run as DROVER_RUN_AS, when
 * the tests run as root, and must reach their releases under it) and pick
 * endpoints from base_port. */
void h_init(struct h_cluster *c, const char *test, int base_port);

/* Where drover's programs are: DROVER_BIN_DIR, else this build's bin/. */
const char *h_bin_dir(void);

/* A clean environment for a child: PATH, LANG and the sanitizer settings,
 * then a, then b (on a repeated name the first wins). Static storage, valid
 * until the next call; the strings themselves must outlive the exec. */
char **h_env(const char *const *a, const char *const *b);

/* Start the controller / an agent; returns its index in procs. extra_env:
 * NULL-terminated "K=V" list, may be NULL; it comes before the harness's own
 * settings, so it overrides them ("DROVER_API_TOKEN=" unsets one). */
int h_start_controller(struct h_cluster *c, const char *const *extra_env);
int h_start_agent(struct h_cluster *c, const char *node, const char *port_range,
                  const char *const *extra_env);
/* h_init, then a controller (ctl_env first, may be NULL) and agents n1..nN,
 * each with width ports from port0 (agent_env, may be NULL), every one
 * asserted ready. */
void h_start_cluster(struct h_cluster *c, const char *test, int base, int nagents, int port0,
                     int width, const char *const *ctl_env, const char *const *agent_env);

/* The controller started as name (data in DIR/controller, as above) and
 * asserted ready (event=ready within 10 s); returns its index. */
int h_start_controller_as(struct h_cluster *c, const char *name, const char *const *extra_env);

/* Start build/bin/PROG as procs[idx] named name (its log: DIR/NAME.log;
 * names must be unique per cluster), with env (NULL-terminated K=V; PATH,
 * LANG and the sanitizer settings are added), inside network namespace
 * netns (a name from `ip netns`) or, when NULL, in this one. */
int h_start(struct h_cluster *c, const char *name, const char *prog, const char *const *env,
            const char *netns);

/* Start any program: argv[0] is its absolute path; env as for h_start (no
 * drover key or token unless given). Logged and cleaned up like the rest. */
int h_start_cmd(struct h_cluster *c, const char *name, const char *const *argv,
                const char *const *env);

/* Move the calling process (a forked child) into network namespace name. */
int h_enter_netns(const char *name);

/* As h_http_get, but from inside network namespace netns. */
char *h_http_get_in(const char *netns, const char *host, int port, int timeout_ms);

/* How many live processes whose cwd is under dir have this comm
 * ("python3"): the app processes actually running, wherever they run. */
int h_count_procs(const char *dir, const char *comm);

/* Wait until the proc's log holds needle; false on timeout. */
bool h_wait_log(struct h_cluster *c, int idx, const char *needle, int timeout_ms);
/* Does the proc's log contain needle? */
bool h_log_has(struct h_cluster *c, int idx, const char *needle);
/* Where needle first appears in the proc's log (a byte offset), or -1. */
long h_log_at(struct h_cluster *c, int idx, const char *needle);
/* The same at or after byte offset from (what the proc logged since then). */
long h_log_after(struct h_cluster *c, int idx, const char *needle, long from);
/* The proc's log's size in bytes now: a mark for h_log_after. */
long h_log_size(struct h_cluster *c, int idx);

/*
 * Run the CLI with args (NULL-terminated) against the cluster; returns its
 * exit code. out/err (may be NULL) get malloc'd stdout/stderr text.
 */
int h_cli(struct h_cluster *c, char **out, char **err, const char *const *args);
/* The same with extra environment first (overriding DROVER_API_TOKEN, say). */
int h_cli_env(struct h_cluster *c, char **out, char **err, const char *const *env,
              const char *const *args);

/* SIGTERM a proc and wait (up to timeout) for it to exit; returns its
 * status as from waitpid, or -1 if it had to be killed. */
int h_stop(struct h_cluster *c, int idx, int timeout_ms);

/* Kill everything: every started process group, then every process whose
 * cwd is under c->dir (app processes), then remove c->dir. Idempotent. */
void h_cleanup(struct h_cluster *c);

/* DIR/NAME holding a Procfile with procfile; returns the path (static
 * storage, one of four in turn). */
const char *h_app_dir(struct h_cluster *c, const char *name, const char *procfile);

/* Wait until `drover logs APP -n 2000` holds needle; the whole log in *out
 * when out is given (malloc'd), whether found or not. */
bool h_wait_logs(struct h_cluster *c, const char *app, const char *needle, int timeout_ms,
                 char **out);

/* `drover ARGS...` must exit 0; its output and errors are in the failure. */
void h_cli_ok(struct h_cluster *c, const char *const *args);

/* A fresh world-writable (sticky) directory /var/tmp/drover-it-TEST.XXXXXX
 * into dir: outside /tmp and /root, so apps running as another user can
 * leave marks there. h_rm_rf removes one (and empties dir); idempotent. */
void h_shared_dir(char *dir, size_t dirsz, const char *test);
void h_rm_rf(char *dir);

/* Sleep a little (polling helpers only; never used to wait for readiness). */
void h_msleep(int ms);
/* CLOCK_MONOTONIC in ms. */
long h_mono_ms(void);
/* How many times needle occurs in hay (not overlapping). */
int h_count(const char *hay, const char *needle);
/* A sample's value from GET http://127.0.0.1:port/metrics ("name value" at
 * a line start), or -1 when it is not there or the page cannot be had. */
long h_metric(int port, const char *name);

/* HTTP GET / on host:port; returns malloc'd body or NULL. */
char *h_http_get(const char *host, int port, int timeout_ms);

/* Is a process alive (and not a zombie)? */
bool h_pid_alive(pid_t pid);

/* ---- a tiny JSON reader for the CLI's --json arrays of flat objects ---- */

#define J_MAX_KEYS 32

struct j_obj {
    int n;
    char key[J_MAX_KEYS][32];
    char val[J_MAX_KEYS][256]; /* strings unescaped; numbers, true, false, null as text */
};

/* Parse "[{...},{...}]"; returns the count (<= max) or -1 when malformed. */
int j_parse_array(const char *text, struct j_obj *objs, int max);
const char *j_get(const struct j_obj *o, const char *key);

/* ---- `drover ps APP --json` and `drover nodes --json`, parsed ---- */

#define H_PS_MAX 48

struct h_ps {
    int n;
    struct j_obj o[H_PS_MAX];
};

/* Run ps (asserts that it works). */
void h_get_ps(struct h_cluster *c, const char *app, struct h_ps *ps);
/* Instances of type (NULL: any) in state (NULL: any) on node (NULL: any). */
int h_ps_count(const struct h_ps *ps, const char *type, const char *state, const char *node);
/* The instance named name ("web.1") that is not stopping, or NULL. */
const struct j_obj *h_ps_find(const struct h_ps *ps, const char *name);
/* Run nodes --json into objs (asserts); returns the count. */
int h_get_nodes(struct h_cluster *c, struct j_obj *objs, int max);
/* The state of node name per nodes --json, in buf; "" when absent. */
const char *h_node_state(struct h_cluster *c, const char *name, char *buf, size_t bufsz);

#endif
