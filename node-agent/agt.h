/* SPDX-License-Identifier: MIT */
/*
 * agt.h: drover-agent's private header, grouped by the file that implements
 * each part; it reads as the agent's table of contents.
 *
 * Most structs are opaque here and defined in the .c that owns them. Two are
 * plain values shared on purpose: struct agt_config (read once from the
 * environment, then read-only) and struct agt_sup (the supervisor's whole
 * memory for one instance, embedded in struct agt_inst and inspected by the
 * unit tests without any process).
 */
#ifndef DROVER_AGT_H
#define DROVER_AGT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "env.h"
#include "logring.h"
#include "wire.h"

struct agt;
struct agt_conn;
struct agt_slugs;
struct agt_inst;
struct agt_health;
struct agt_out;
struct agt_pipe;
struct agt_cgroups;
struct agt_metrics;
struct agt_health_watch;
struct agt_runrecs;

/* config.c */
struct agt_config {
    char joins[ENV_ENDPOINTS_MAX][ENV_ENDPOINT_MAX]; /* DROVER_JOIN: every controller */
    size_t njoin;
    char join[256];   /* joins[0]: agent endpoint: register, sync, slugs */
    char notify[256]; /* join's port + 1 */
    char logs[256];   /* join's port + 2: log lines are pushed there */
    char node[64];
    char advertise[64]; /* an IP literal: reported, and where health checks connect */
    uint16_t port_min, port_max;
    uint32_t capacity;
    char data_dir[1024];
    uint32_t heartbeat_ms;
    uint8_t cluster_key[WIRE_KEY_BYTES];
    bool has_key_next;                        /* DROVER_CLUSTER_KEY_NEXT is set */
    uint8_t cluster_key_next[WIRE_KEY_BYTES]; /* also accepted, never sent (rotation) */
    char run_as[64]; /* DROVER_RUN_AS: who app processes run as when we are root */
    bool drop;       /* we are root: spawn as run_uid:run_gid */
    uint32_t run_uid, run_gid;
    uint32_t leave_timeout_ms;  /* SIGTERM: longest wait for replacements elsewhere */
    bool echo_app_logs;         /* DROVER_ECHO_APP_LOGS: app lines on our stdout too */
    bool per_app;               /* root, DROVER_RUN_AS unset: a uid per app (uids.c) */
    uint32_t uid_min, uid_max;  /* DROVER_UID_RANGE */
    char cgroup_root[PATH_MAX]; /* DROVER_CGROUP_ROOT; "" for the agent's own cgroup */
    bool cgroups_off;           /* DROVER_CGROUPS=off: process groups only, no limits */
    char metrics_listen[256];   /* DROVER_METRICS_LISTEN: HOST:PORT, "" for none */
};
/* Reads every DROVER_* variable the agent uses; on any error logs them all
 * and exits 78. */
void agt_config_load(struct agt_config *cfg);
/* Once data_dir exists: can run_as reach the releases under it? Exits 78
 * with the reason when it cannot. */
void agt_config_check_dirs(const struct agt_config *cfg);

/* agent.c: the instance table, assignments, signals and shutdown. */
struct agt *agt_new(uv_loop_t *loop, const struct agt_config *cfg, int *err);
int agt_start(struct agt *a);
void agt_free(struct agt *a);
uv_loop_t *agt_loop(const struct agt *a);
const struct agt_config *agt_cfg(const struct agt *a);
struct wire_sender *agt_sender(struct agt *a);
const char *agt_boot_id(const struct agt *a);
uint64_t agt_generation(const struct agt *a);
/* The boot_id this data dir last registered with, "" when none. */
const char *agt_previous_boot_id(const struct agt *a);
/* What used to be file-level singletons, held by the agent: the log
 * shipper (NULL once closed), the list of open output streams (output.c)
 * and of attached one-offs' pipes (pipe.c) — their heads, linked by them. */
struct agt_logs *agt_logs(const struct agt *a);
struct agt_out **agt_outs(struct agt *a);
struct agt_pipe **agt_pipes(struct agt *a);
/* The metrics' counters and server (metrics.c), NULL before agt_start. */
struct agt_metrics *agt_metrics(const struct agt *a);
/* The listen watch every health check of this agent shares (health.c). */
struct agt_health_watch *agt_health_watch(const struct agt *a);
/* The run-record slot file (orphans.c). */
struct agt_runrecs *agt_runrecs(const struct agt *a);
/* supervise.c's queue of cgroups to SIGTERM in the next loop turn. */
struct agt_sweep;
struct agt_sweep *agt_sweep(const struct agt *a);
struct agt_sweep *agt_sweep_new(void);
void agt_sweep_free(struct agt_sweep *sw); /* after uv_run */
/* conn.c tells: registered with this boot_id (remembered for the next start). */
void agt_registered(struct agt *a);
/* conn.c tells: the controller refused the node name (another live agent has
 * it). The agent drains what it runs and exits 1. */
void agt_refused(struct agt *a, const char *why);
/* Shutting down on SIGTERM and still waiting for the controller to move its
 * instances (SyncReq.leaving). */
bool agt_leaving(const struct agt *a);
/* conn.c tells, while leaving: a sync that said so was answered (the set,
 * if it changed, has been applied), or the controller cannot be reached. */
void agt_leave_acked(struct agt *a);
void agt_leave_unreachable(struct agt *a);
int agt_exit_code(const struct agt *a);
/* The node's cgroups, or NULL where they are unavailable (then process
 * groups only, and no limits). */
const struct agt_cgroups *agt_cgroups(const struct agt *a);
/* Do instances get a writable view (view.c)? Root: yes; not root: where
 * user namespaces allow it. */
bool agt_views(const struct agt *a);
/* What spawns run: drover-exec beside the agent, or /proc/self/exe. */
const char *agt_helper(const struct agt *a);
/* Who app's processes run as: 1 with uid and gid filled (root agent), 0 when
 * they run as the agent's own user, negative errno (no uid left). */
int agt_app_ids(struct agt *a, const char *app, uint32_t *uid, uint32_t *gid);
/* Reports of every instance, ascending id, for a register or full sync,
 * and their digest. *reps is malloc'd, its elements too (their strings are
 * borrowed from the instances: pack them before returning to the loop):
 * free with agt_reports_free. Returns 0 or -ENOMEM. */
int agt_reports(struct agt *a, Drover__InstanceReport ***reps, size_t *n, uint64_t *digest);
/* A full report goes out in request seq: an ST_STOPPED instance in it is
 * forgotten once a request with that seq or later is acknowledged. */
void agt_reports_sent(struct agt *a, uint64_t seq);
void agt_reports_free(Drover__InstanceReport **reps, size_t n);
/* conn.c tells: a full report sent with seq was acknowledged. */
void agt_acked(struct agt *a, uint64_t seq);
/* conn.c tells: the whole desired set at generation gen, the config vars
 * an assignment names by env_set in sets (SyncRep.env_sets). Borrowed. */
void agt_assign(struct agt *a, uint64_t gen, Drover__Assignment *const *as, size_t n,
                Drover__EnvSet *const *sets, size_t nsets);
/* as with its config vars: as itself when they are inline, else *one, a
 * copy of it pointing at its env set's; NULL when it names a set not in
 * sets, or names one and has inline ones too. */
const Drover__Assignment *agt_assignment_env(const Drover__Assignment *as,
                                             Drover__EnvSet *const *sets, size_t nsets,
                                             Drover__Assignment *one);
/* conn.c tells: the last sync of a shutdown was answered (or cannot be). */
void agt_last_sync_done(struct agt *a);
/* supervise.c tells: an instance changed state or reported fields. */
void agt_inst_changed(struct agt *a, struct agt_inst *i);
/* slugs.c tells: the release (app, release, sha) is unpacked in dir, or
 * failed (err < 0, reason says why). Does anyone still need it? */
void agt_release_ready(struct agt *a, const char *app, uint32_t release, const char *sha,
                       const char *dir, int err, Drover__InstanceCause cause, const char *reason);
bool agt_release_wanted(struct agt *a, const char *app, uint32_t release, const char *sha);
/* Does any instance here, in any state, run (or wait for) app's release? */
bool agt_release_used(struct agt *a, const char *app, uint32_t release);
/* Pure report digest: FNV-1a 64 over each packed InstanceReport in the given
 * order (ascending id); FNV1A64_INIT for none. */
uint64_t agt_digest(Drover__InstanceReport *const *reps, size_t n);

/* agent.c: apps:destroy: the apps and slugs the controller forgot; what no
 * instance here still uses is deleted from disk. */
void agt_forget_destroyed(struct agt *a, char **apps, size_t napps, char **shas, size_t nshas);

/* conn.c: the controller, from this node's side. */
struct agt_conn *agt_conn_new(struct agt *a, int *err);
int agt_conn_start(struct agt_conn *c);
/* Sync once the current loop iteration is over (coalesces changes). */
void agt_conn_sync_soon(struct agt_conn *c);
/* Shutdown, first phase: syncs say leaving from now on; one goes now. */
void agt_conn_leave(struct agt_conn *c);
/* Shutdown: no more notifications; one last full sync. */
void agt_conn_last_sync(struct agt_conn *c);
/* Close every socket and timer; frees itself in the close callbacks. */
void agt_conn_close(struct agt_conn *c);
/* HA fencing (issue 16): may a reply of a leader's term be applied, given
 * the highest term seen so far (raised to term when it may)? A lower term
 * is a deposed leader's: never applied. */
bool agt_term_accept(uint64_t *seen, uint64_t term);

/* Per-type limits; 0 means none. */
struct agt_limits {
    uint64_t memory;    /* bytes */
    uint32_t cpu_milli; /* thousandths of a core */
    uint32_t pids;
    uint32_t nofile;
};

/* spec.c: an assignment, checked and copied. */
enum agt_health_kind { AGT_HEALTH_NONE, AGT_HEALTH_TCP, AGT_HEALTH_HTTP };
struct agt_spec {
    uint64_t id;
    char app[32];
    char name[64]; /* "web.1" */
    char type[32];
    uint32_t release;
    char sha[65];
    uint64_t size;
    char *command; /* owned */
    char **env;    /* owned: "K=V" config vars, in order */
    size_t nenv;
    uint16_t port;
    enum agt_health_kind health;
    char http_path[256]; /* AGT_HEALTH_HTTP */
    uint32_t grace_ms;
    uint32_t boot_timeout_ms;
    uint32_t min_healthy_ms;    /* health passes this long without a break; 0: once */
    uint32_t shutdown_delay_ms; /* stopping an up instance: draining this long before SIGTERM */
    bool oneoff;                /* `drover run`: runs once, never restarted */
    bool attach;                /* its stdio goes through pipe.c, not to the logs */
    bool tty;
    uint16_t rows, cols;
    struct agt_limits limits; /* per type; 0: none */
    unsigned refs;            /* owners: the assigned set, the instance (agt_spec_ref) */
};
#define AGT_DEFAULT_GRACE_MS 30000u
#define AGT_DEFAULT_BOOT_MS 60000u
#define AGT_MAX_COMMAND 4096
/* Check every field against cfg (port range) and copy. On error returns
 * -EINVAL with a one-line reason in err and *out NULL. */
int agt_spec_new(const Drover__Assignment *as, const struct agt_config *cfg, struct agt_spec **out,
                 char *err, size_t errsz);
/* One owner fewer; freed with the last. A spec never changes once made, so
 * the assigned set and the instance share it. */
void agt_spec_free(struct agt_spec *s);
struct agt_spec *agt_spec_ref(struct agt_spec *s); /* one owner more; returns s */
/* Every field the same (a set that assigns an instance again as it runs). */
bool agt_spec_same(const struct agt_spec *a, const struct agt_spec *b);
/* The script /bin/sh -c runs for cmd: "exec CMD" when prefixing exec cannot
 * change its meaning (agt_shell_execable: one simple command whose first
 * word names a program, not a builtin, reserved word or assignment), so the
 * shell becomes the app; else cmd as it is. malloc'd; NULL when out of
 * memory. */
char *agt_shell_command(const char *cmd);
bool agt_shell_execable(const char *cmd);
/* The process environment: PATH, HOME=home, LANG; the config vars (which may
 * override those); PORT, DYNO, PS, DROVER_APP, DROVER_RELEASE. Later keys
 * replace earlier ones. *envp is a malloc'd NULL-terminated array of
 * malloc'd strings: free with agt_env_free. Returns 0 or -ENOMEM. */
int agt_env_build(const struct agt_spec *s, const char *home, char ***envp);
void agt_env_free(char **envp);
/* "releases/APP/vN-SHA12" under data_dir. 0 or -ENAMETOOLONG. */
int agt_release_dir(const char *data_dir, const char *app, uint32_t release, const char *sha,
                    char *out, size_t outsz);

/* reconcile.c: pure set arithmetic on instance ids. */
struct agt_have {
    uint64_t id;
    bool stopping; /* draining or stopped already */
};
struct agt_plan {
    size_t *start; /* indices into want[] of assignments to start now */
    size_t nstart;
    uint64_t *drain; /* ids in have[] that are not wanted and not yet stopping */
    size_t ndrain;
    size_t nwait; /* wanted, not here, not started now (capacity, or no starts) */
};
/* have: every instance here (any state); want: assignment ids (a repeated id
 * counts once). Starts only when starts is true, and only while the kept and
 * started instances stay below capacity. Fills plan (free with
 * agt_plan_fini). Returns 0 or -ENOMEM. */
int agt_reconcile(const struct agt_have *have, size_t nhave, const uint64_t *want, size_t nwant,
                  uint32_t capacity, bool starts, struct agt_plan *plan);
void agt_plan_fini(struct agt_plan *plan);

/* backoff.c: the restart schedule, pure. */
#define AGT_BACKOFF_BASE_MS 1000u
#define AGT_BACKOFF_CAP_MS (5u * 60 * 1000)
/* An instance that has never been up does not restart at once: its crash
 * reaches the controller first (a deploy of a release that crashes at boot
 * fails there, and its code runs once, not twice). */
#define AGT_NEVER_UP_HOLD_MS 2000u
#define AGT_BACKOFF_RESET_MS (10u * 60 * 1000)
/* Delay before the restart after the n-th consecutive crash: 0 for n <= 1;
 * then base 1 s doubling (n=2 → 1 s, n=3 → 2 s ...) capped at 5 min, with
 * "equal jitter": a value in [base/2, base] chosen by rnd. */
uint64_t agt_backoff_ms(uint32_t consecutive, uint32_t rnd);
/* conn.c: how long a request may go unanswered before it is re-sent (or the
 * controller redialled), after n re-sends in a row went unanswered: base
 * for n = 0 (three heartbeats, as always), then base doubled n times (at
 * most 16 times) plus up to half of that again chosen by rnd, so that the
 * agents of an overloaded controller back off and come back out of step. */
uint64_t agt_resend_wait_ms(uint64_t base, uint32_t n, uint32_t rnd);
/* Consecutive crash count after one more crash, given how long the instance
 * had been up (0 if it never was): a run of 10 min or more resets it. */
uint32_t agt_backoff_next(uint32_t consecutive, uint64_t up_ms);

/* states.c: the connection's and the agent's own state × event tables,
 * pure (the supervisor's is in supervise.c). A cell is a step, an event
 * that means nothing there (ignored), or one that cannot happen there
 * (refused: the driver logs a bug). */
enum agt_trans { AGT_T_GO = 1, AGT_T_IGNORE = 2, AGT_T_REFUSE = 3 };

enum agt_conn_state {
    AGT_CS_REGISTERING,   /* RegisterReq goes out (at start, or when asked again) */
    AGT_CS_SYNCING,       /* registered: syncs */
    AGT_CS_LEAVING,       /* registered; syncs say leaving (SIGTERM) */
    AGT_CS_LEAVING_UNREG, /* leaving, not registered: a register makes it LEAVING */
    AGT_CS_LAST,          /* the last full sync of a shutdown is out */
    AGT_CS_DONE,          /* it was answered, or there is nobody to tell; or closed */
    AGT_CS_N
};
enum agt_conn_event {
    AGT_CE_REGISTERED,    /* a RegisterRep */
    AGT_CE_REREGISTER,    /* a SyncRep asking to register again */
    AGT_CE_LEAVE,         /* agt_conn_leave */
    AGT_CE_LAST_SYNC,     /* agt_conn_last_sync */
    AGT_CE_LAST_ANSWERED, /* any answer (or an unusable one) to the last sync */
    AGT_CE_CLOSE,         /* agt_conn_close */
    AGT_CE_N
};
enum agt_conn_action {
    AGT_CA_SEND = 1u << 0,        /* send the next request (after the one in flight) */
    AGT_CA_FULL = 1u << 1,        /* the next syncs carry full reports */
    AGT_CA_UNREACHABLE = 1u << 2, /* tell the agent: nobody moves the instances */
    AGT_CA_LAST_DONE = 1u << 3,   /* tell the agent: the last sync is over */
    AGT_CA_MUTE = 1u << 4,        /* stop listening to notifications */
};
enum agt_conn_state agt_conn_next(enum agt_conn_state st, enum agt_conn_event ev, unsigned *actions,
                                  enum agt_trans *kind);

enum agt_life_state {
    AGT_LS_RUNNING,
    AGT_LS_LEAVING,   /* SIGTERM: no starts; waiting for the controller to move them */
    AGT_LS_DRAINING,  /* every instance is being stopped */
    AGT_LS_LAST_SYNC, /* all stopped: the last sync is out */
    AGT_LS_CLOSING,   /* it is over: every handle closes at the next check */
    AGT_LS_DONE,
    AGT_LS_N
};
enum agt_life_event {
    AGT_LE_SIGNAL,        /* the first SIGTERM or SIGINT */
    AGT_LE_SIGNAL_AGAIN,  /* a later one */
    AGT_LE_LEAVE_TIMEOUT, /* DROVER_LEAVE_TIMEOUT_MS passed (or is 0) */
    AGT_LE_MOVED,         /* leaving was answered and nothing is assigned here */
    AGT_LE_UNREACHABLE,   /* the controller cannot be reached while leaving */
    AGT_LE_REFUSED,       /* the node name is another live agent's */
    AGT_LE_CHECK,         /* the deferred check found every instance stopped */
    AGT_LE_LAST_DONE,     /* the last sync was answered, or cannot be */
    AGT_LE_N
};
enum agt_life_action {
    AGT_LA_LEAVE = 1u << 0, /* arm the leave timeout, tell the connection (timeout 0:
                               the driver feeds LEAVE_TIMEOUT at once) */
    AGT_LA_DRAIN = 1u << 1, /* STOP every instance; arm the check */
    AGT_LA_KILL = 1u << 2,  /* KILL every instance */
    AGT_LA_LAST = 1u << 3,  /* the last sync, its answer bounded by a timer */
    AGT_LA_CHECK = 1u << 4, /* arm the deferred check */
    AGT_LA_CLOSE = 1u << 5, /* close every handle: uv_run returns */
};
enum agt_life_state agt_life_next(enum agt_life_state st, enum agt_life_event ev, unsigned *actions,
                                  enum agt_trans *kind);
/* Is the cell written down (tests: no cell is left out)? */
bool agt_conn_cell_written(unsigned st, unsigned ev);
bool agt_life_cell_written(unsigned st, unsigned ev);
const char *agt_conn_state_name(enum agt_conn_state st);
const char *agt_conn_event_name(enum agt_conn_event ev);
const char *agt_life_state_name(enum agt_life_state st);
const char *agt_life_event_name(enum agt_life_event ev);

/* supervise.c: the state × event table and the instance it drives. */
enum agt_state {
    AGT_PENDING,  /* waiting for its release (slug fetch, unpack) */
    AGT_STARTING, /* spawned or about to be; health not passing yet */
    AGT_UP,
    AGT_DELAYING, /* stopping an up instance: reported draining, SIGTERM at shutdown_delay */
    AGT_DRAINING, /* SIGTERM sent; SIGKILL at grace */
    AGT_STOPPED,  /* exited after a stop: reported once, then forgotten */
    AGT_CRASHED,  /* exited on its own: waiting for its restart */
    AGT_FAILED,   /* its release could not be prepared; a later slug_ready revives it */
    AGT_NSTATES
};
enum agt_event {
    AGT_EV_SLUG_READY,
    AGT_EV_SLUG_FAILED,
    AGT_EV_SPAWNED,
    AGT_EV_SPAWN_FAILED,
    AGT_EV_HEALTHY,
    AGT_EV_EXITED,
    AGT_EV_STOP,
    AGT_EV_GRACE_EXPIRED,
    AGT_EV_BACKOFF_EXPIRED,
    AGT_EV_BOOT_TIMEOUT,
    AGT_EV_KILL,          /* second SIGTERM during shutdown */
    AGT_EV_GROUP_GONE,    /* draining: no process of its group is left */
    AGT_EV_DONE,          /* a one-off's process exited (or never started): it is over */
    AGT_EV_DELAY_EXPIRED, /* the shutdown delay is over: SIGTERM */
    AGT_NEVENTS
};
/* What a transition asks the driver to do, in this order. */
enum agt_action {
    AGT_A_SPAWN = 1u << 0,   /* spawn; the driver then feeds SPAWNED or SPAWN_FAILED */
    AGT_A_HEALTH = 1u << 1,  /* start the health check */
    AGT_A_BOOT = 1u << 2,    /* arm the boot timeout */
    AGT_A_TERM = 1u << 3,    /* SIGTERM the group */
    AGT_A_GRACE = 1u << 4,   /* arm the grace timer */
    AGT_A_KILL = 1u << 5,    /* SIGKILL the group */
    AGT_A_CRASH = 1u << 6,   /* count a crash: restarts++, consecutive crashes */
    AGT_A_BACKOFF = 1u << 7, /* arm the restart timer (agt_backoff_ms) */
    AGT_A_WATCH = 1u << 8,   /* watch the group until it is empty: GROUP_GONE */
    AGT_A_DELAY = 1u << 9,   /* arm the shutdown delay; when it is 0 the driver feeds
                                DELAY_EXPIRED at once */
};
struct agt_sup {
    enum agt_state state;
    uint32_t restarts;    /* crashes over the instance's life */
    uint32_t consecutive; /* crashes since the last long healthy run */
    int32_t exit_code;    /* last; -1 when none */
    int32_t exit_signal;  /* last; 0 when none */
    uint64_t since_ms;    /* monotonic ms when it entered state */
    uint64_t up_since_ms; /* monotonic ms it became UP; 0 when not UP */
    uint64_t backoff_ms;  /* the restart delay chosen by the last CRASH */
    bool been_up;         /* it was UP at least once */
};
/* The table itself: next state and actions; *ignored when the event means
 * nothing in that state (then next == st and no actions). */
enum agt_state agt_sup_next(enum agt_state st, enum agt_event ev, unsigned *actions, bool *ignored);
void agt_sup_init(struct agt_sup *s, uint64_t now);
/* Apply ev to s at wall time now: state, since, up time, crash counters and
 * backoff (rnd gives its jitter). For EXITED set exit_code/exit_signal first.
 * Returns the actions for the driver. */
unsigned agt_sup_apply(struct agt_sup *s, enum agt_event ev, uint64_t now, uint32_t rnd);
const char *agt_state_name(enum agt_state st);
const char *agt_event_name(enum agt_event ev);
Drover__InstanceState agt_state_wire(enum agt_state st);

/* spec: owned by the instance from here on. */
struct agt_inst *agt_inst_new(struct agt *a, struct agt_spec *spec);
/* An instance for a group a killed agent left running (orphans.c): it
 * starts DRAINING (SIGTERM sent, SIGKILL at grace) and is STOPPED once the
 * group is gone. spec: owned from here on. */
struct agt_inst *agt_inst_orphan(struct agt *a, struct agt_spec *spec, int pgid);
/* Close its timer; freed in the close callback. Only when no process runs
 * (STOPPED, or never spawned). */
void agt_inst_free(struct agt_inst *i);
void agt_inst_event(struct agt_inst *i, enum agt_event ev);
/* Its release cannot be had (cause: fetch or unpack), why: for people
 * ("refused symlink etc -> ../../etc: points outside the slug"): FAILED. */
void agt_inst_release_failed(struct agt_inst *i, Drover__InstanceCause cause, const char *why);
/* The release is unpacked in dir (copied): SLUG_READY. */
void agt_inst_release_ready(struct agt_inst *i, const char *dir);
/* The pump's step: start i if its release is ready; true if it did. */
bool agt_inst_start_ready(struct agt_inst *i);
const struct agt_spec *agt_inst_spec(const struct agt_inst *i);
struct agt_spec *agt_inst_spec_ref(struct agt_inst *i); /* shares it: agt_spec_ref */
const struct agt_sup *agt_inst_sup(const struct agt_inst *i);
bool agt_inst_running(const struct agt_inst *i); /* a process is alive */
/* Fill r (initialised by the caller) with the instance's report. */
void agt_inst_report(const struct agt_inst *i, Drover__InstanceReport *r);
uint64_t agt_inst_stop_seq(const struct agt_inst *i);
void agt_inst_set_stop_seq(struct agt_inst *i, uint64_t seq);

/* orphans.c: what a killed agent left running (see the file's comment). */
struct agt_proc {
    int pid, pgrp, sid;
    char state;     /* R, S, Z ... */
    uint64_t start; /* clock ticks after boot */
};
struct agt_runrec {
    uint64_t id;
    int pgid;
    uint64_t start; /* of the group's leader */
    uint32_t grace_ms;
    uint16_t port;
    uint32_t release;
    char app[32];
    char name[64];
    char sha[65];
};
/* One /proc/PID/stat line. 0 or -EINVAL. */
int agt_proc_parse(const char *stat, struct agt_proc *p);
int agt_proc_read(int pid, struct agt_proc *p);
/* Does group pgid have a member that is not a zombie? */
bool agt_group_alive(int pgid);
/* Pure: is r's group among procs, alive, and the one r recorded? */
bool agt_orphan_match(const struct agt_runrec *r, const struct agt_proc *procs, size_t n);
int agt_runrec_format(const struct agt_runrec *r, char *buf, size_t bufsz);
int agt_runrec_parse(const char *text, struct agt_runrec *r);
/* The records of data_dir (borrowed: outlives them): a slot each in
 * DATA_DIR/run/records, opened at the first use. NULL when out of memory. */
struct agt_runrecs *agt_runrecs_new(const char *data_dir);
void agt_runrecs_free(struct agt_runrecs *rr); /* closes the slot file: after uv_run */
/* Written when the group is spawned; removed once the group is gone. */
int agt_runrec_save(struct agt_runrecs *rr, const struct agt_runrec *r);
void agt_runrec_remove(struct agt_runrecs *rr, uint64_t id);
int agt_runrec_start_time(int pid, uint64_t *start);
/* The records whose groups are still alive and ours; the others are
 * removed. *out is malloc'd. */
int agt_orphans_find(struct agt_runrecs *rr, const struct agt_cgroups *cg, struct agt_runrec **out,
                     size_t *n);

/* Read its cgroup's counters (usage.c's timer): memory now, CPU since the
 * last sample. True when what it reports changed. */
bool agt_inst_sample(struct agt_inst *i, uint64_t now_ns);
/* Why it last crashed, failed or exited: "" when it has not. */
const char *agt_inst_reason(const struct agt_inst *i);

/* cgroup.c: a control group per instance, on the v2 or hybrid layout. */
enum agt_cg_ctl { AGT_CG_MEMORY, AGT_CG_CPU, AGT_CG_PIDS, AGT_CG_NCTL };
struct agt_cgroups {
    bool ok;
    char v2[PATH_MAX];              /* the node's v2 subtree, "" when none */
    bool v2ctl[AGT_CG_NCTL];        /* controller enabled there */
    bool has_kill;                  /* cgroup.kill exists */
    char v1[AGT_CG_NCTL][PATH_MAX]; /* v1 subtrees for controllers v2 lacks */
    char cpuacct[PATH_MAX];         /* v1 usage when there is no v2 */
    char track[PATH_MAX];           /* where membership is read: v2, else one v1 */
};
/* Find the hierarchies from a /proc/self/mounts text and a /proc/self/cgroup
 * text, make the node's subtree "drover.NODE" under root (or under our own
 * cgroup when root is empty) and enable what v2 offers. -ENOTSUP with why
 * filled when no hierarchy can be used. */
int agt_cg_probe(struct agt_cgroups *cg, const char *mounts, const char *self, const char *root,
                 const char *node, char *why, size_t whysz);
bool agt_cg_can_limit(const struct agt_cgroups *cg, enum agt_cg_ctl k);
/* Make (or reuse) instance id's cgroups and write its limits (none: reset). */
int agt_cg_create(const struct agt_cgroups *cg, uint64_t id, const struct agt_limits *l, char *err,
                  size_t errsz);
/* The cgroup.procs files the process must join once agt_cg_create made
 * them for these limits; returns how many. */
int agt_cg_procs(const struct agt_cgroups *cg, uint64_t id, const struct agt_limits *l,
                 char out[][PATH_MAX], size_t max);
/* Everything before a start, off the loop (the spawner thread runs it,
 * spawn.c): agt_cg_create, then kill what a last run left in it, and read
 * its oom count. cg, id and limits in; rc (0 or -errno, err saying why)
 * and oom_base out. */
struct agt_cg_prep {
    const struct agt_cgroups *cg;
    uint64_t id;
    struct agt_limits limits;
    int rc;
    uint64_t oom_base;
    char err[256];
};
void agt_cg_prepare(struct agt_cg_prep *p);
/* sig to every member; returns how many were sent it, or a negative errno. */
int agt_cg_signal(const struct agt_cgroups *cg, uint64_t id, int sig);
/* Kill the cgroup whole: cgroup.kill, or SIGKILL each until none is left. */
int agt_cg_kill(const struct agt_cgroups *cg, uint64_t id);
/* 1 when a process is in it, 0 when none (or it is gone), negative errno. */
int agt_cg_populated(const struct agt_cgroups *cg, uint64_t id);
int agt_cg_remove(const struct agt_cgroups *cg, uint64_t id);
/* Memory as the cgroup counts it (RSS + cache) and CPU time used. */
int agt_cg_usage(const struct agt_cgroups *cg, uint64_t id, uint64_t *mem, uint64_t *cpu_usec);
/* OOM kills so far in the instance's memory cgroup. */
int agt_cg_oom_kills(const struct agt_cgroups *cg, uint64_t id, uint64_t *n);
/* The instance ids that have a cgroup under the node's subtree. */
int agt_cg_list(const struct agt_cgroups *cg, uint64_t **ids, size_t *n);

/* uids.c: a user per app on this node. */
struct agt_uids;
struct agt_uid_entry {
    char app[32];
    uint32_t uid;
};
/* Pure: "APP UID" lines (damaged ones skipped). *out malloc'd. */
int agt_uids_parse(const char *text, struct agt_uid_entry **out, size_t *n);
/* Pure: the next number in [lo, hi] above every one ever given; -ENOSPC. */
int agt_uids_pick(const struct agt_uid_entry *v, size_t n, uint32_t lo, uint32_t hi, uint32_t *uid);
struct agt_uids *agt_uids_new(const char *data_dir, uint32_t lo, uint32_t hi, int *err);
void agt_uids_free(struct agt_uids *u);
/* app's uid (= its gid), handed out and saved the first time. */
int agt_uids_get(struct agt_uids *u, const char *app, uint32_t *uid);

/* view.c: a writable, ephemeral view of the release per instance. */
struct agt_view {
    const char *release; /* the unpacked release: the overlay's lower dir */
    const char *views;   /* DATA_DIR/views: the view is views/app */
    const char *hide;    /* DATA_DIR/releases, covered inside; "" for none */
};
/* In the helper, as root: a mount namespace with the view, the releases
 * hidden and a private /tmp; cwd is the view. 0, or a negative errno with
 * err saying which step failed. */
int agt_view_enter(const struct agt_view *v, uint32_t uid, uint32_t gid, char *err, size_t errsz);
/* Can a mount namespace of ours (a user namespace too when not root) make /
 * private and mount a tmpfs on views? Run it in a child
 * (it changes namespaces). 0, or a negative errno with err filled. */
int agt_view_probe(const char *views, char *err, size_t errsz);

/* viewhold.c: a reference to the view of the live process pid (its mount
 * namespace), taken as it is stopped so that its exit does not wait for the
 * view's teardown; -1 when it has no view of its own. Given back once it
 * has exited: a thread of the agent's, at nice 19, drops it. */
int agt_viewhold_take(int pid);
void agt_viewhold_give(int fd);

/* exec.c: `drover-agent --exec`, the helper every app process goes through. */
int agt_exec_main(int argc, char **argv);
/* The one place privileges are dropped: no supplementary groups, gid, uid
 * (raw system calls: see agt_exec_plan_run). */
int agt_drop_privileges(uint32_t uid, uint32_t gid);
/* What the helper does for a process, once it is in its session with its
 * descriptors 0-2 in place and its cwd set: the helper's options, parsed. */
struct agt_exec_plan {
    const char *script;          /* run directly when plain (exec.c), else by /bin/sh -c */
    char **env;                  /* the app's environment: only the final exec gets it */
    char **join;                 /* cgroup.procs files to write our pid into; NULL-ended */
    uint32_t uid, gid, nofile;   /* nofile: RLIMIT_NOFILE, 0 leaves it */
    bool drop, tty;              /* drop to uid/gid; stdin is a terminal to take */
    const struct agt_view *view; /* NULL: none */
};
/* Carry out plan and exec; returns only on failure, having said why on
 * stderr (the caller exits 127, as a shell that cannot run its command).
 * e2: room for the environment's pointers plus two. Allocates nothing,
 * takes no lock and uses no stdio stream: spawn.c runs it in a clone child
 * that shares the agent's memory (and the helper runs it too). */
void agt_exec_plan_run(const struct agt_exec_plan *plan, char **e2);

/* health.c: is the process serving? */
typedef void (*agt_health_cb)(void *arg);
/* The checks on loop share one watch: they wait for their ports in
 * sock_diag dumps (dumps true, the agent's way) or connect every 100 ms
 * (false: what checks did before; for the benchmark). NULL when out of
 * memory. Free it once every check on it is over and the loop has run
 * their handles' close callbacks (after uv_run). */
struct agt_health_watch *agt_health_watch_new(uv_loop_t *loop, bool dumps);
void agt_health_watch_free(struct agt_health_watch *hw);
/* cb is called once (never from agt_health_start itself), when the check
 * has passed without a break for spec->min_healthy_ms; the check then frees
 * itself. Stop it before that with agt_health_stop (cb is then never
 * called). hw: borrowed, outlives the check. */
struct agt_health *agt_health_start(struct agt_health_watch *hw, const struct agt_spec *spec,
                                    const char *addr, agt_health_cb cb, void *arg);
void agt_health_stop(struct agt_health *h);
/* Why the last attempt failed ("GET /healthz answered 404", "port 5001:
 * connection refused"), "" when none did; *answered: an HTTP status came
 * back (the process serves, wrongly). */
const char *agt_health_why(const struct agt_health *h, bool *answered);

/* output.c: a process's stdout or stderr, line by line into the log. */
#define AGT_LINE_MAX 8192
/* The pipe to hand to uv_spawn; reads start with agt_out_start. Frees
 * itself after EOF (or agt_out_close, for a spawn that failed). Lines go to
 * the logs as spec's (app, name): it shares spec until then. */
struct agt_out *agt_out_new(struct agt *a, struct agt_spec *spec, bool err);
uv_pipe_t *agt_out_pipe(struct agt_out *o);
int agt_out_start(struct agt_out *o);
void agt_out_close(struct agt_out *o);
/* Shutdown: close every stream still open. */
void agt_out_close_all(struct agt *a);
/* logship.c tells: there is room: queue every pending "lines dropped". */
void agt_out_flush_drops(struct agt *a);

/* logship.c: output lines, batched, to the controller (join port + 2). */
#define AGT_LOG_QUEUE_LINES 10000
#define AGT_LOG_QUEUE_BYTES (4u << 20)
#define AGT_LOG_FLUSH_MS 50
struct agt_logs;
struct agt_logs *agt_logs_new(struct agt *a, int *err);
/* The agent talks to another controller now (endpoint: its agent
 * endpoint): lines go to its port + 2. l may be NULL (closed): then these
 * do nothing. */
void agt_logs_follow(struct agt_logs *l, const char *endpoint);
/* Queue one line of source (an instance name) of app, from its stderr when
 * err; a line the queue must refuse is counted in d and replaced by a
 * marker later. */
void agt_logs_line(struct agt_logs *l, const char *app, const char *source, bool err,
                   const char *text, size_t len, struct logring_drops *d);
/* The source ends: queue its pending "N lines dropped" marker. */
void agt_logs_source_done(struct agt_logs *l, const char *app, const char *source,
                          struct logring_drops *d);
/* Shutdown: one last flush, then close (frees itself). */
void agt_logs_close(struct agt_logs *l);

/* pipe.c: an attached one-off's stdio, relayed through the controller. */
struct agt_pipe *agt_pipe_new(struct agt *a, const struct agt_spec *spec, int *err);
bool agt_pipe_tty(const struct agt_pipe *p);
/* Fill the three stdio containers for uv_spawn. */
int agt_pipe_stdio(struct agt_pipe *p, uv_stdio_container_t io[3]);
/* After uv_spawn: pgid of the process, or err < 0 when it did not start
 * (reported as exit code 127). From here the pipe frees itself. */
void agt_pipe_spawned(struct agt_pipe *p, int pgid, int err);
void agt_pipe_exited(struct agt_pipe *p, int64_t code, int sig);
/* Shutdown: close every pipe at once. */
void agt_pipe_close_all(struct agt *a);

/* spawn.c: posix_spawn (no fork of the agent) in a session of its own. */
struct agt_spawn_req {
    const char *file; /* the program: a path, not searched */
    char **argv, **envp;
    const char *cwd;                   /* NULL: ours */
    const uv_stdio_container_t *stdio; /* descriptors 0..nstdio-1; nothing else */
    int nstdio;                        /* at most 8 */
    /* A cgroup v2 directory the child starts in (clone3 CLONE_INTO_CGROUP),
     * or NULL. Where the kernel refuses that, argv_join runs instead (the
     * same program told to join it itself). */
    const char *cgroup;
    char **argv_join;
    /* The instance's cgroups to make before the spawn (NULL: none), on the
     * spawner thread. agt_spawn_sync writes the outcome back here; the
     * async spawn gives it to its callback (a failure is the spawn's
     * error, nothing started). */
    struct agt_cg_prep *prep;
    /* The helper's steps, done by the clone child itself instead of by
     * exec'ing file (one exec less per start), where clone3 works; file
     * and argv (or argv_join) stay the way for a kernel that refuses. NULL:
     * always file. Not with a terminal, nor where a view needs a user
     * namespace (not root): those go through the helper. */
    const struct agt_exec_plan *plan;
};
struct agt_spawn_job;
/* On the calling thread: 0 with *pid, or -errno; UV_CREATE_PIPE streams
 * are open on success. */
int agt_spawn_sync(const struct agt_spawn_req *r, int *pid);
/* pid > 0, or err < 0 and nothing started; prep: the request's cgroups
 * made (its outcome, borrowed for the call), or NULL when it had none.
 * From the loop, never from agt_spawn_async itself. */
typedef void (*agt_spawned_cb)(void *arg, int pid, int err, const struct agt_cg_prep *prep);
/* On the spawner thread: 0 (cb comes later; the streams are open now and
 * r may go), or -errno; -ENOSYS when there is no spawner (use _sync). */
int agt_spawn_async(uv_loop_t *loop, const struct agt_spawn_req *r, agt_spawned_cb cb, void *arg,
                    struct agt_spawn_job **job);
/* The owner is going: cb never comes; what the job starts is killed. */
void agt_spawn_forget(struct agt_spawn_job *job);
/* Shutdown: close the spawner's socket and handle. */
void agt_spawn_stop(void);
/* How children were placed in their cgroups so far: at creation (clone3),
 * or by the helper's write after a refusal (the last refusal's errno). */
void agt_spawn_placements(uint64_t *at_clone, uint64_t *joined, int *last_refusal);

/* scrape.c: the agent's small HTTP server (GET /metrics), without
 * libmicrohttpd. The handler fills the answer; owned, if set, is freed after
 * the body (which may point into it) is copied. */
struct agt_http_answer {
    int status;
    const char *type;
    char *body;
    size_t len;
    const char *extra; /* one more header line without CRLF, or NULL */
    char *owned;
};
typedef void agt_http_fn(void *arg, const char *method, const char *path,
                         struct agt_http_answer *a);
struct agt_http;
/* NULL with *err (negative errno) when it cannot listen on HOST:PORT. */
struct agt_http *agt_http_start(uv_loop_t *loop, const char *listen, agt_http_fn *fn, void *arg,
                                int *err);
void agt_http_stop(struct agt_http *s);

/* clone3.c: clone3(2) running fn(arg) in the child on the stack the
 * arguments give; the child's pid or -errno. -ENOSYS where not built. */
struct agt_clone_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
        set_tid_size, cgroup;
};
long agt_clone3_run(struct agt_clone_args *args, size_t size, int (*fn)(void *), void *arg);

/* reaper.c: every child reaped by one waitpid(-1) loop; a subreaper. */
/* pid exited: code (0..255, 0 when killed) or the signal that killed it. */
typedef void (*agt_exit_cb)(void *arg, int pid, int code, int sig);
/* PR_SET_CHILD_SUBREAPER, and reap on SIGCHLD. 0 or -errno (a kernel that
 * refuses the prctl is only warned about). */
int agt_reaper_start(uv_loop_t *loop);
/* Call cb once when pid exits (loop thread, after the reap). 0 or -ENOMEM. */
int agt_reaper_watch(int pid, agt_exit_cb cb, void *arg);
/* Forget pid: its exit is then reaped as any orphan's. */
void agt_reaper_unwatch(int pid);
/* pid's exit if it was reaped unwatched lately (a child that ended before
 * its spawn reported it): 1 with code and sig, removed; else 0. */
int agt_reaper_claim(int pid, int *code, int *sig);
size_t agt_reaper_watched(void);
/* Reap every exited child now (also on SIGCHLD). Returns how many. */
int agt_reaper_sweep(void);
void agt_reaper_stop(void); /* closes the handle: shutdown */
void agt_reaper_free(void); /* after uv_run */

/* slugs.c: the slug cache and unpacked releases. */
struct agt_slugs *agt_slugs_new(struct agt *a, int *err);
int agt_slugs_start(struct agt_slugs *s);
/* Make release (app, release, sha) ready. Returns 1 with dir filled when it
 * already is; 0 when agt_release_ready will be called later; negative errno. */
int agt_slugs_want(struct agt_slugs *s, const struct agt_spec *spec, char *dir, size_t dirsz);
/* Stop fetching; frees itself once no work is outstanding. */
void agt_slugs_close(struct agt_slugs *s);
/* An instance was forgotten: look for unused releases and slugs at the
 * next tick (slugs.c keeps the newest two per app and what is used). */
void agt_slugs_gc_soon(struct agt_slugs *s);
/* apps:destroy: delete app's unpacked releases / a cached slug that no known
 * release uses, off the loop. True when there was something to delete. */
bool agt_slugs_forget_app(struct agt_slugs *s, const char *app);
bool agt_slugs_forget_slug(struct agt_slugs *s, const char *sha);

/* metrics.c: Prometheus /metrics on DROVER_METRICS_LISTEN; the counters
 * are bumped by one call each from where things happen (agt_metrics(a); m
 * NULL: nothing is counted). a is borrowed, and may be NULL for a context
 * that only renders (the benchmark). NULL when out of memory. */
struct agt_metrics *agt_metrics_new(struct agt *a);
int agt_metrics_start(struct agt_metrics *m, const char *listen);
void agt_metrics_stop(struct agt_metrics *m);
void agt_metrics_free(struct agt_metrics *m); /* after uv_run */
/* cpu_usec: each report's CPU time in µs, or NULL (all 0). 0 or -ENOMEM. */
int agt_metrics_render(const struct agt_metrics *m, Drover__InstanceReport *const *reps,
                       const uint64_t *cpu_usec, size_t n, char **text, size_t *len);
void agt_metrics_spawned(struct agt_metrics *m, int rc);
void agt_metrics_log_dropped(struct agt_metrics *m);
void agt_metrics_sync_sent(struct agt_metrics *m);
void agt_metrics_sync_done(struct agt_metrics *m);
/* agent.c: the instance with this id, or NULL (for metrics.c) */
struct agt_inst *agt_inst_by_id(struct agt *a, uint64_t id);
/* supervise.c: its CPU time (µs) at the last sample, 0 before one */
uint64_t agt_inst_cpu_usec(const struct agt_inst *i);

#endif
