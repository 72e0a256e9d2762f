/* SPDX-License-Identifier: MIT */
/*
 * ctl.h: the controller's private header, grouped by file; it reads as the
 * table of contents of controller/.
 *
 * The model's objects (app, release, formation, node, instance) are defined
 * here rather than in model.c: they are the controller's shared vocabulary,
 * read by the scheduler, the reconciler, the store and both endpoints, and
 * accessors for every field would hide nothing (tmux.h does the same for its
 * sessions and windows). model.c alone creates, links and frees them; every
 * other struct (the store's statements, upload slots, hash tables, the
 * port bitmap, the reply arena) stays opaque in the .c that owns it.
 */
#ifndef DROVER_CTL_H
#define DROVER_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <uv.h>

#include "nnuv.h"
#include "util.h"
#include "wire.h"
#include "dispatch.h"

struct ctl;
struct ctl_arena;
struct ctl_map;
struct ctl_ports;
struct ctl_store;
struct ctl_db;
struct ctl_slugs;
struct ctl_leader;
struct ctl_store_ops;
struct pg_conn; /* libpq's PGconn */
struct ctl_logs;
struct ctl_runs;
struct ctl_endpoints;
struct ctl_drains;

#define CTL_DEFAULT_GRACE_MS 30000u
#define CTL_DEFAULT_BOOT_TIMEOUT_MS 60000u
#define CTL_DEFAULT_MIN_HEALTHY_MS 1000u
#define CTL_DEFAULT_DEPLOY_TIMEOUT_MS 300000u
#define CTL_DEFAULT_SHUTDOWN_DELAY_MS 1000u     /* web; other types 0 */
#define CTL_DEFAULT_RELEASE_TIMEOUT_MS 3600000u /* type release's deploy_timeout_ms */
#define CTL_DEFAULT_MAX_SURGE "25%"
#define CTL_DEFAULT_MAX_UNAVAILABLE "0"
#define CTL_HEALTH_MAX 128
#define CTL_ROLL_MAX 8 /* "10000", "100%" */
#define CTL_DEPLOY_REASON_MAX 256
#define CTL_QUANTITY_MAX 10000
#define CTL_DESCRIPTION_MAX 1024
#define CTL_REASON_MAX 128
#define CTL_BOOT_ID_MAX 63
#define CTL_ADDRESS_MAX 255
#define CTL_CAPACITY_MAX 100000u

/* ---- model objects (owned by model.c) ---- */

struct ctl_kv {
    char *key;
    char *value;
};

struct ctl_ptype {
    char name[TYPE_NAME_MAX + 2];
    char *command;
};

/* Immutable once created. */
struct ctl_release {
    uint32_t version;
    char slug_sha256[65];
    uint64_t slug_size;
    char *description;
    uint64_t created_ms;
    char status[16];                    /* deploying|succeeded|failed|superseded */
    char reason[CTL_DEPLOY_REASON_MAX]; /* why it failed */
    bool status_dirty;                  /* status or reason to write */
    size_t nconfig;
    struct ctl_kv *config; /* sorted by key */
    size_t ntypes;
    struct ctl_ptype *types; /* Procfile order */
    bool stored;             /* written to the store */
    /* Lazily built protobuf view of config, shared by every assignment. */
    Drover__KeyValue *pb_kv;
    Drover__KeyValue **pb_env;
    /* agents.c: its env set in the reply being built (env_stamp its serial). */
    uint64_t env_stamp;
    uint32_t env_set;
};

/* A type's quantity and its settings (settings.c). */
struct ctl_formation {
    char type[TYPE_NAME_MAX + 2];
    uint32_t quantity;
    char health[CTL_HEALTH_MAX]; /* "tcp", "none", "http:/PATH" */
    uint32_t grace_ms;
    uint32_t boot_timeout_ms;
    char max_surge[CTL_ROLL_MAX]; /* "N" or "P%" */
    char max_unavailable[CTL_ROLL_MAX];
    uint32_t min_healthy_ms;
    uint32_t deploy_timeout_ms;
    uint32_t shutdown_delay_ms;
    /* Limits (settings.c); 0: none. */
    uint64_t memory_bytes;
    uint32_t cpu_milli; /* thousandths of a core */
    uint32_t pids;
    uint32_t nofile;
};

enum ctl_deploy_state {
    CTL_DEPLOY_NONE,
    CTL_DEPLOY_RUNNING,
    CTL_DEPLOY_SUCCEEDED,
    CTL_DEPLOY_FAILED,
    CTL_DEPLOY_RELEASING /* its release phase runs (release_phase.c) */
};

/* An app's latest deploy: the rollout of a new current release (deploys.c). */
struct ctl_deploy {
    uint32_t release; /* 0: none yet */
    uint32_t from;    /* the last good release it replaces; 0: none */
    enum ctl_deploy_state state;
    char reason[CTL_DEPLOY_REASON_MAX];
    uint64_t started_ms, finished_ms; /* wall clock: for people, and stored */
    /* Monotonic (the `now` of the functions below): its timeout counts from
     * here. Not stored: derived from started_ms on load. */
    uint64_t started_mono;
};

struct ctl_instance;
LIST_HEAD(ctl_inst_list, ctl_instance);

struct ctl_app {
    char name[APP_NAME_MAX + 2];
    uint64_t created_ms;
    uint32_t current; /* 0 before the first release */
    size_t nconfig;
    struct ctl_kv *config; /* sorted by key */
    size_t nreleases;
    struct ctl_release **releases; /* releases[i]->version == i + 1 */
    size_t nformation;
    struct ctl_formation *formation;
    struct ctl_inst_list instances;
    size_t ninstances;
    uint64_t label_stamp; /* ctl_inst_label's scratch: the scan it was seen in, */
    uint32_t label_rel;   /* and the release of its first instance there */
    /* Write-through: which parts differ from the store. */
    bool dirty_row, dirty_config, dirty_formation;
    bool queued;     /* on model->dirty_apps */
    bool reconcile;  /* on model->reconcile: reconcile before the next commit */
    uint32_t good;   /* the newest release whose deploy succeeded; 0: none */
    bool rolling;    /* the last reconcile left instances of other releases */
    bool destroying; /* apps:destroy: gone once its last instance is (lifecycle.c) */
    struct ctl_deploy deploy;
    uint64_t ep_gen; /* bumped when its endpoint list may have changed */
    TAILQ_ENTRY(ctl_app) dirty_link;
    TAILQ_ENTRY(ctl_app) reconcile_link;
    uint32_t undo_ix; /* its record in the change set's undo journal, + 1; 0: none */
};

enum ctl_node_state { CTL_NODE_READY, CTL_NODE_CORDONED, CTL_NODE_DRAINING, CTL_NODE_DOWN };

/*
 * A node's state is what `drover nodes` shows, derived by ctl_node_update()
 * from three things kept apart: whether it is down (silent for the node
 * timeout), what the operator chose (admin: READY, CORDONED or DRAINING,
 * which survives the node going down and coming back), and whether its agent
 * is leaving (shutting down on SIGTERM: DRAINING until it is gone). Only a
 * READY node gets new instances; the live instances of a DRAINING node are
 * evicted (reconcile.c).
 */
struct ctl_node {
    char name[NODE_NAME_MAX + 2];
    char address[CTL_ADDRESS_MAX + 1];
    uint16_t port_min, port_max;
    uint32_t capacity;
    enum ctl_node_state state; /* as shown: see above */
    enum ctl_node_state admin; /* READY, CORDONED or DRAINING */
    bool leaving;              /* its agent is shutting down; not stored */
    uint64_t generation;       /* of its assignment set; bumped on every change */
    char boot_id[CTL_BOOT_ID_MAX + 1];
    uint64_t last_seen_ms; /* monotonic (views.c converts for people) */
    uint64_t heard_ms;     /* last message from boot_id in this run; 0: none */
    uint64_t digest;       /* of the last full report */
    bool have_digest;
    struct ctl_ports *ports; /* held by every instance on it, stopping too */
    struct ctl_inst_list instances;
    /* ctl_inst_label's cache: list_gen moves with every change of
     * instances; mixed (known as of mixed_gen) says whether some app has
     * instances of two releases here, without which no name has a twin. */
    uint32_t list_gen, mixed_gen;
    bool mixed, mixed_known;
    uint32_t ninst; /* on it, stopping included */
    uint32_t nlive; /* on it and not stopping: counts against capacity */
    /* Its place in name order and in node_v (scheduler.c), as of m->ranked_gen. */
    uint32_t sched_rank, sched_ix;
    bool dirty, queued, notify;
    TAILQ_ENTRY(ctl_node) dirty_link;
    TAILQ_ENTRY(ctl_node) notify_link;
    /* Silent for three heartbeats (not yet down): views say its instances'
     * states are not known; not stored. */
    bool unreachable;
    uint32_t undo_ix; /* as the app's */
    /* UDP heartbeats (beat.c): the boot the counter belongs to, the last
     * counter accepted, when (monotonic; 0: never); not stored. */
    char udp_boot[CTL_BOOT_ID_MAX + 1];
    uint64_t udp_counter;
    uint64_t udp_ms;
    uint8_t udp_differ; /* datagrams in a row whose generation or digest differ */
    /* Summonses (beat.c): its datagrams say it takes them; the last TCP
     * sync heard from it or answered (monotonic; 0: none in this run); the
     * last summons sent; none before quiet_until_ms (told ERR_BUSY: its
     * agent waits that long, front.c); it has a held watch, a long one
     * (watch.c). */
    bool takes_summons;
    bool watch_held, watch_long;
    uint64_t sync_ms;
    uint64_t summoned_ms;
    uint64_t quiet_until_ms;
};

struct ctl_instance {
    uint64_t id;
    struct ctl_app *app;
    char type[TYPE_NAME_MAX + 2];
    uint32_t idx;
    uint32_t release;
    struct ctl_node *node; /* NULL while unplaced */
    uint16_t port;
    Drover__InstanceState state;
    bool stopping; /* not in its node's assignment set any more */
    uint32_t restarts;
    int32_t pid, exit_code, exit_signal;
    uint64_t since_ms;
    char reason[CTL_REASON_MAX];
    uint64_t memory_bytes; /* usage as last reported (not stored: it is live) */
    uint32_t cpu_permille;
    uint64_t seen_epoch; /* full-report bookkeeping */
    /* One-offs (`drover run`): type "run", never restarted, never replaced. */
    bool oneoff;
    bool attach, tty;
    uint16_t rows, cols;
    char *command;                 /* owned; the one-off's command */
    char ptype[TYPE_NAME_MAX + 2]; /* --type: settings taken from this type */
    bool restart;                  /* `drover restart`: replaced like one of an older release */
    bool dirty, unplaced;
    bool stored; /* its row was written by a commit (or loaded): SQLite updates it in place */
    LIST_ENTRY(ctl_instance) app_link;
    LIST_ENTRY(ctl_instance) node_link;
    TAILQ_ENTRY(ctl_instance) dirty_link;
    TAILQ_ENTRY(ctl_instance) unplaced_link;
    Drover__InstanceCause cause; /* the agent's, with reason; not stored */
    uint32_t undo_ix;            /* as the app's */
};

TAILQ_HEAD(ctl_app_q, ctl_app);
TAILQ_HEAD(ctl_node_q, ctl_node);
TAILQ_HEAD(ctl_inst_q, ctl_instance);

struct ctl_model {
    struct ctl_map *apps;     /* name -> app */
    struct ctl_map *nodes;    /* name -> node */
    struct ctl_map *insts;    /* id -> instance */
    struct ctl_node **node_v; /* every node, registration order */
    size_t nnodes, node_cap;
    uint64_t nodes_gen;  /* moves whenever node_v gains or loses a node */
    uint64_t ranked_gen; /* the nodes_gen of the nodes' sched_rank; 0: never (a node makes 1) */
    uint64_t next_id;
    bool next_id_dirty;
    bool capacity_changed; /* try placing unplaced instances */
    bool loading;          /* the store is filling the model: no generation bumps */
    uint32_t ndraining;    /* nodes in state DRAINING: evictions may be waiting */
    uint32_t ndeploying;   /* apps whose deploy is running */
    bool ep_changed;       /* some app's ep_gen moved since the last check */
    struct ctl_app_q dirty_apps;
    struct ctl_app_q reconcile; /* apps to reconcile before the next commit */
    struct ctl_node_q dirty_nodes;
    struct ctl_inst_q dirty_insts;
    uint64_t *deleted; /* instance ids to delete from the store */
    size_t ndeleted, deleted_cap;
    char **gone_apps, **gone_nodes; /* destroyed / removed: rows to delete */
    size_t ngone_apps, ngone_nodes;
    uint32_t ndestroying;               /* apps being destroyed (lifecycle.c) */
    char **forget_apps, **forget_slugs; /* recent destroys, for the agents */
    size_t nforget_apps, nforget_slugs;
    uint64_t forget_until;
    struct ctl_inst_q unplaced; /* pending with no node, by creation */
    struct ctl_node_q notify;   /* nodes whose set changed: wake them */
    uint64_t epoch;
    struct ctl_undo *undo; /* what a failed apply restores (undo.c) */
    /* Per-instance log lines (placed, instance_state) of the commit under
     * way, and those past CTL_INST_LINES_MAX, counted (model.c). */
    unsigned inst_lines;
    unsigned quiet_placed;
    unsigned quiet_woken; /* watch.c's node_woken */
    unsigned quiet_states[DROVER__INSTANCE_STATE__ST_FAILED + 1];
    /* How the controller itself is doing, for status (not stored): the
     * store failing (store_front.c), nodes silent at once (liveness.c). */
    char store_health[256];
    char nodes_health[256];
    /* Where model events go (logs.c's ctl_logs_text); NULL in unit tests. */
    void (*event)(void *arg, const char *app, const char *text);
    void *event_arg;
};

/* ---- the controller ---- */

/* Node liveness across ticks (liveness.c). */
#define CTL_SUSPECT_MIN_NODES 3        /* fewer live nodes: never suspect ourselves */
#define CTL_SUSPECT_INTERVAL_MS 30000u /* one node down per this, when suspecting */
struct ctl_liveness {
    uint64_t last_tick; /* monotonic; 0 before the first */
    bool suspect;       /* most nodes went silent at once */
    uint32_t total;     /* live nodes when the suspicion began */
    uint32_t downed;    /* declared down since */
    uint64_t last_down; /* monotonic */
    uint64_t refused;   /* the last try (agents.c): retried slowly while the store fails */
};

struct ctl_config {
    char data_dir[4096];
    char api_listen[256];
    char agent_listen[256];
    char notify_listen[256];
    char logs_listen[256];   /* agent port + 2: agents PUSH log batches */
    uint64_t log_lines;      /* lines kept per app */
    uint64_t run_timeout_ms; /* an attached CLI silent this long is gone */
    uint64_t node_timeout_ms;
    uint64_t heartbeat_ms;
    uint64_t busy_ms; /* DROVER_BUSY_MS: agent backlog age that answers ERR_BUSY; 0: never */
    uint8_t cluster_key[WIRE_KEY_BYTES];      /* DROVER_CLUSTER_KEY */
    char api_token[4097];                     /* DROVER_API_TOKEN */
    bool has_key_next;                        /* DROVER_CLUSTER_KEY_NEXT is set */
    uint8_t cluster_key_next[WIRE_KEY_BYTES]; /* also accepted, never sent (rotation) */
    uint64_t drain_buffer;                    /* DROVER_DRAIN_BUFFER: lines per drain */
    char drain_ca_file[4096];                 /* DROVER_DRAIN_CA_FILE; "" for none */
    uint64_t slugs_keep;       /* DROVER_SLUGS_KEEP: releases per app whose slug stays */
    char database_url[4096];   /* DROVER_DATABASE_URL; "" for SQLite */
    char advertise_api[256];   /* DROVER_ADVERTISE_API (HA: standbys point here) */
    char advertise_agent[256]; /* DROVER_ADVERTISE_AGENT */
    char http_listen[256];     /* DROVER_HTTP_LISTEN: HOST:PORT, "" for none (http.c) */
    char *http_tls_cert;       /* PEM text of DROVER_HTTP_TLS_CERT's file, or NULL */
    char *http_tls_key;
};

/* commit.c: the change sets written off the loop (PostgreSQL) */
TAILQ_HEAD(ctl_call_q, ctl_call);
struct ctl_commits {
    struct ctl_store_job *job; /* the change set in flight, NULL: none */
    uv_work_t work;
    uint64_t epoch;            /* the one in flight's number */
    uint64_t open;             /* the number of the change set accumulating now */
    uint64_t stored;           /* the last number in the store */
    uint64_t t0;               /* uv_hrtime() when the one in flight started */
    bool starting;             /* in start (settle may end calls: they wait for open) */
    struct ctl_call_q waiting; /* calls whose replies wait for an epoch */
    /* SQLite: calls wait for the end of the loop turn (ctl_commits_turn). */
    uv_idle_t idle; /* active while calls wait */
    bool turns;     /* idle is made (ctl_commits_start) */
};

struct ctl {
    uv_loop_t *loop;
    struct ctl_config cfg;
    struct ctl_model *model;
    struct ctl_db *store;      /* the store front (store_front.c) */
    struct ctl_leader *leader; /* PostgreSQL: the election; NULL for SQLite */
    struct ctl_slugs *slugs;
    struct wire_sender sender;     /* sealed with the cluster key: agents, notify */
    struct wire_sender api_sender; /* sealed with the API key: replies to the CLI */
    int key_cluster, key_api;      /* keyring slots */
    int key_cluster_next;          /* DROVER_CLUSTER_KEY_NEXT's slot, or -1 */
    struct ctl_logs *logs;
    struct ctl_runs *runs;
    struct ctl_endpoints *endpoints;
    struct nnuv *api;
    struct nnuv *agents;
    struct nnuv *pub;
    struct ctl_watches *watches; /* watch.c */
    uv_timer_t node_timer;
    struct ctl_liveness liveness;
    uv_check_t notify_check;
    uv_signal_t sigterm, sigint;
    unsigned inflight; /* uv_queue_work requests not yet done */
    bool stopping;     /* SIGTERM seen: finish in-flight work, then close */
    bool closed;       /* every handle has been asked to close */
    int exit_code;
    struct ctl_drains *drains;
    LIST_HEAD(ctl_call_list, ctl_call) calls; /* handed over, not yet ended (dispatch.c) */
    unsigned ncalls;
    struct ctl_commits cm;   /* commit.c */
    bool running;            /* main.c made the loop handles below */
    uv_check_t close_check;  /* while stopping: close once nothing is in flight */
    struct ctl_http *http;   /* NULL when DROVER_HTTP_LISTEN is empty */
    struct ctl_beats *beats; /* beat.c: UDP heartbeats; NULL when not tcp:// */
};

/* Replaced by a rollout to version: of another release, or being restarted. */
static inline bool
ctl_inst_outdated(const struct ctl_instance *in, uint32_t version)
{
    return in->release != version || in->restart;
}

/* ---- by file ---- */

/* arena.c: bump allocator for building one reply */
struct ctl_arena *ctl_arena_new(void);
void ctl_arena_free(struct ctl_arena *a);
void *ctl_arena_alloc(struct ctl_arena *a, size_t size); /* zeroed; NULL on ENOMEM */
/* protobuf-c's allocator over a (its frees do nothing: the arena's free
 * gives everything back): to unpack a request into its call's arena. */
ProtobufCAllocator ctl_arena_allocator(struct ctl_arena *a);
/* "TYPE.IDX", an instance's name ("web.1"), without printf's cost (it is
 * written once per assignment and per listed instance). */
char *ctl_arena_inst_name(struct ctl_arena *a, const char *type, uint32_t idx);
char *ctl_arena_printf(struct ctl_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* map.c: open-addressing hash tables keyed by a borrowed string or by a u64 */
struct ctl_map *ctl_map_new(void);
void ctl_map_free(struct ctl_map *m);
size_t ctl_map_count(const struct ctl_map *m);
void *ctl_map_get(const struct ctl_map *m, const char *key);
int ctl_map_put(struct ctl_map *m, const char *key, void *val); /* key borrowed */
void *ctl_map_del(struct ctl_map *m, const char *key);
void *ctl_map_geti(const struct ctl_map *m, uint64_t key);
int ctl_map_puti(struct ctl_map *m, uint64_t key, void *val);
int ctl_map_addi(struct ctl_map *m, uint64_t key, void *val); /* -EEXIST when present */
/* Room for n entries in all, without growing on the way. */
int ctl_map_reserve(struct ctl_map *m, size_t n);
void *ctl_map_deli(struct ctl_map *m, uint64_t key);
/* Iterate: *pos starts at 0; returns NULL at the end. No changes meanwhile. */
void *ctl_map_next(const struct ctl_map *m, size_t *pos);

/* ports.c: the port bitmap of one node */
struct ctl_ports *ctl_ports_new(uint16_t lo, uint16_t hi);
void ctl_ports_free(struct ctl_ports *p);
int ctl_ports_take(struct ctl_ports *p, uint16_t *port);   /* lowest free; -ENOSPC */
int ctl_ports_take_at(struct ctl_ports *p, uint16_t port); /* -EEXIST, -ERANGE */
void ctl_ports_release(struct ctl_ports *p, uint16_t port);
bool ctl_ports_held(const struct ctl_ports *p, uint16_t port);
uint32_t ctl_ports_used(const struct ctl_ports *p);
uint32_t ctl_ports_size(const struct ctl_ports *p);

/* model.c: in-memory objects, lookups, and their dirty tracking */
struct ctl_model *ctl_model_new(void);
void ctl_model_free(struct ctl_model *m);
struct ctl_app *ctl_app_find(const struct ctl_model *m, const char *name);
int ctl_app_add(struct ctl_model *m, const char *name, uint64_t created_ms, struct ctl_app **out);
void ctl_app_touch(struct ctl_model *m, struct ctl_app *a, bool row, bool config, bool formation);
struct ctl_app **ctl_apps_sorted(const struct ctl_model *m, size_t *n); /* malloc'd */
const struct ctl_kv *ctl_config_find(const struct ctl_app *a, const char *key);
int ctl_config_set(struct ctl_app *a, const char *key, const char *value);
bool ctl_config_unset(struct ctl_app *a, const char *key);
/* The app's config becomes a copy of src[0..n) (a release's snapshot). */
int ctl_config_replace(struct ctl_model *m, struct ctl_app *a, const struct ctl_kv *src, size_t n);
struct ctl_release *ctl_release_get(const struct ctl_app *a, uint32_t version);
struct ctl_release *ctl_release_current(const struct ctl_app *a);
const struct ctl_ptype *ctl_release_type(const struct ctl_release *r, const char *type);
struct ctl_release *ctl_release_new(void);
void ctl_release_free(struct ctl_release *r);
int ctl_release_append(struct ctl_app *a, struct ctl_release *r); /* takes ownership */
int ctl_kv_copy(const struct ctl_kv *src, size_t n, struct ctl_kv **out);
struct ctl_formation *ctl_formation_find(const struct ctl_app *a, const char *type);
int ctl_formation_add(struct ctl_app *a, const char *type, uint32_t quantity,
                      struct ctl_formation **out);
struct ctl_node *ctl_node_find(const struct ctl_model *m, const char *name);
int ctl_node_add(struct ctl_model *m, const char *name, struct ctl_node **out);
int ctl_node_set_range(struct ctl_node *n, uint16_t lo, uint16_t hi);
void ctl_node_touch(struct ctl_model *m, struct ctl_node *n);
/* Setters (model.c): each touches what it writes first. */
void ctl_app_set_current(struct ctl_model *m, struct ctl_app *a, uint32_t version);
void ctl_app_set_good(struct ctl_model *m, struct ctl_app *a, uint32_t version);
void ctl_app_set_rolling(struct ctl_model *m, struct ctl_app *a, bool rolling);
void ctl_app_set_destroying(struct ctl_model *m, struct ctl_app *a);
void ctl_app_reconcile_taken(struct ctl_model *m, struct ctl_app *a);
void ctl_release_set_status(struct ctl_model *m, struct ctl_app *a, struct ctl_release *r,
                            const char *status, const char *reason);
void ctl_deploy_set_state(struct ctl_model *m, struct ctl_app *a, enum ctl_deploy_state st);
void ctl_deploy_begin(struct ctl_model *m, struct ctl_app *a, uint32_t release, uint32_t from,
                      enum ctl_deploy_state st, uint64_t now);
void ctl_deploy_set_reason(struct ctl_model *m, struct ctl_app *a, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ctl_inst_set_restart(struct ctl_model *m, struct ctl_instance *in, bool restart);
int ctl_inst_make_oneoff(struct ctl_model *m, struct ctl_instance *in, const char *command,
                         const char *ptype);
void ctl_node_changed(struct ctl_model *m, struct ctl_node *n); /* set changed: gen++ */
/* Set liveness, admin state and leaving; derive state; flag what it affects. */
void ctl_node_update(struct ctl_model *m, struct ctl_node *n, bool down, enum ctl_node_state admin,
                     bool leaving);
/* A down node that is being drained, or whose agent said it was leaving
 * (it stops everything before it exits), holds nothing: forget its
 * stopping and lost instances. */
void ctl_node_forget_lost(struct ctl_model *m, struct ctl_node *n);
const char *ctl_node_state_name(enum ctl_node_state st);
int ctl_node_state_parse(const char *s, enum ctl_node_state *st);
void ctl_app_want_reconcile(struct ctl_model *m, struct ctl_app *a);
struct ctl_instance *ctl_inst_find(const struct ctl_model *m, uint64_t id);
int ctl_inst_new(struct ctl_model *m, struct ctl_app *a, const char *type, uint32_t idx,
                 uint32_t release, uint64_t id, struct ctl_instance **out);
int ctl_inst_place(struct ctl_model *m, struct ctl_instance *in, struct ctl_node *n,
                   uint16_t port); /* port 0: lowest free */
void ctl_inst_stop(struct ctl_model *m, struct ctl_instance *in);
void ctl_inst_delete(struct ctl_model *m, struct ctl_instance *in);
void ctl_inst_touch(struct ctl_model *m, struct ctl_instance *in);
/* What a state change means beyond the instance (ctl_inst_set_state's
 * result), for its caller to act on in one place. */
#define CTL_SAW_ENDPOINTS 1u /* the app's endpoint list changed (marked already) */
#define CTL_SAW_CRASH 2u     /* crashed or failed while its app rolls out: judge its deploy */
unsigned ctl_inst_set_state(struct ctl_model *m, struct ctl_instance *in, Drover__InstanceState st,
                            uint64_t since_ms);
/* May one more routine per-instance line go out at info in this commit? */
bool ctl_inst_line(struct ctl_model *m);
/* One line for the routine per-instance lines the commit left out. */
void ctl_inst_lines_end(struct ctl_model *m);
void ctl_inst_say_state(struct ctl_model *m, struct ctl_instance *in, Drover__InstanceState from);
const char *ctl_inst_state_name(const struct ctl_instance *in); /* as ps shows it */
/* Its endpoint list may have changed: wake `endpoints --watch`. */
void ctl_app_endpoints_changed(struct ctl_model *m, struct ctl_app *a);
/* Live, on a draining node: runs until its replacement is up (reconcile.c). */
bool ctl_inst_evicted(const struct ctl_instance *in);
/* An event for app's log stream, through m->event when set. */
void ctl_model_event(struct ctl_model *m, const char *app, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "web.1", "run.3" into out. */
void ctl_inst_name(const struct ctl_instance *in, char *out, size_t outsz);
/* "web.5@node2" (just "web.5" while unplaced): how events name an instance,
 * so that a replacement and its original are not read as one; "web.1@n1
 * (v3)" while an instance of another release has the same name there. */
void ctl_inst_label(const struct ctl_instance *in, char *out, size_t outsz);
void ctl_model_clean(struct ctl_model *m);   /* after a successful commit */
void ctl_model_restore(struct ctl_model *m); /* after a failed one (undo.c) */
/* An asynchronous commit (store_front.c): the marks are forgotten as if
 * stored and the journal goes with the change set; unwind restores the
 * model from both journals when the store refused it. */
struct ctl_undo *ctl_model_detach(struct ctl_model *m);
void ctl_model_unwind(struct ctl_model *m, struct ctl_undo *u);
bool ctl_model_dirty(const struct ctl_model *m); /* a change set to apply */
/* Free one object, already out of the model (undo.c keeps deleted ones). */
void ctl_app_free(struct ctl_app *a);
void ctl_node_free(struct ctl_node *n);
void ctl_inst_free(struct ctl_instance *in);
void ctl_app_unlink(struct ctl_model *m, struct ctl_app *a, bool in_map);
void ctl_node_unlink(struct ctl_model *m, struct ctl_node *n, bool in_map);
void ctl_node_relink(struct ctl_model *m, struct ctl_node *n);
/* Forget an app with no instance left / a node with none on it (-EBUSY
 * otherwise): freed now, its rows deleted at the next commit. */
int ctl_app_remove(struct ctl_model *m, struct ctl_app *a);
int ctl_node_remove(struct ctl_model *m, struct ctl_node *n);

/* model.c setters used by the core files (each touches before it writes) */
void ctl_formation_set_quantity(struct ctl_model *m, struct ctl_app *a, struct ctl_formation *f,
                                uint32_t quantity);
void ctl_formation_set(struct ctl_model *m, struct ctl_app *a, struct ctl_formation *f,
                       const struct ctl_formation *next);
void ctl_inst_set_report(struct ctl_model *m, struct ctl_instance *in,
                         const Drover__InstanceReport *r);
void ctl_inst_set_pid(struct ctl_model *m, struct ctl_instance *in, int32_t pid);
uint64_t ctl_model_next_epoch(struct ctl_model *m);
void ctl_inst_seen(struct ctl_instance *in, uint64_t epoch);
/* The release's config as protobuf, built once per release and kept (a
 * cache, not stored): the env of every assignment of it. */
Drover__KeyValue **ctl_release_env(struct ctl_release *rel);
struct ctl_oneoff_spec;
/* A new one-off's settings and command (copied); -ENOMEM. */
int ctl_inst_set_oneoff(struct ctl_model *m, struct ctl_instance *in,
                        const struct ctl_oneoff_spec *q, const char *command, uint64_t now);
void ctl_model_capacity_changed(struct ctl_model *m);
void ctl_node_set_identity(struct ctl_model *m, struct ctl_node *n, const char *address,
                           const char *boot_id, uint32_t capacity);
/* Live fields, never stored (no touch): when it was last heard, its digest. */
void ctl_node_heard(struct ctl_node *n, uint64_t mono_now);
void ctl_node_set_digest(struct ctl_node *n, bool have, uint64_t digest);
/* undo.c: the change set's undo journal (see the top of undo.c). Writers
 * reach it through the touches; born/gone from model.c only. */
void ctl_undo_save_app(struct ctl_model *m, struct ctl_app *a);
void ctl_undo_save_node(struct ctl_model *m, struct ctl_node *n);
void ctl_undo_save_inst(struct ctl_model *m, struct ctl_instance *in);
void ctl_undo_born_app(struct ctl_model *m, struct ctl_app *a);
void ctl_undo_born_node(struct ctl_model *m, struct ctl_node *n);
void ctl_undo_born_inst(struct ctl_model *m, struct ctl_instance *in);
/* true: the journal keeps the unlinked object (freed at commit). */
bool ctl_undo_gone_app(struct ctl_model *m, struct ctl_app *a);
bool ctl_undo_gone_node(struct ctl_model *m, struct ctl_node *n);
bool ctl_undo_gone_inst(struct ctl_model *m, struct ctl_instance *in);
void ctl_undo_commit(struct ctl_model *m);
void ctl_undo_restore(struct ctl_model *m);
void ctl_undo_free(struct ctl_model *m);
/* An asynchronous commit's journal (commit.c): taken with the change set,
 * freed once it is stored, or restored after the newer journal. */
struct ctl_undo *ctl_undo_detach(struct ctl_model *m);
void ctl_undo_settle(struct ctl_undo *u);
void ctl_undo_unwind(struct ctl_model *m, struct ctl_undo *u);

/* scheduler.c: pure placement, no I/O */
/* min(capacity, ports in its range): how many instances it can hold. */
uint32_t ctl_node_limit(const struct ctl_node *n);
#define CTL_REASON_NO_NODE "no ready node with free capacity"
/* Why nothing fits now: "no free port in 5000-5099" when every ready node
 * has room but no port, else CTL_REASON_NO_NODE. */
void ctl_sched_why(const struct ctl_model *m, char *out, size_t outsz);
size_t ctl_sched_choose(struct ctl_model *m, const struct ctl_app *a, const char *type, size_t n,
                        struct ctl_node **out);

/* reconcile.c: formation against instances */
/* One evicted instance, as the eviction rule sees it. */
struct ctl_evictee {
    size_t pos; /* the caller's own index, carried through the sort */
    uint32_t idx;
    bool slot_up; /* a live, not evicted instance with the same idx is up */
    bool leaving; /* its node's agent is shutting down */
    bool stop;    /* out: stop it now */
};
/*
 * The eviction rule, pure: of n evicted instances of one type, which to stop
 * now, given the formation's quantity (want), how many live instances that
 * are not evicted are up, and how many more are placed and on their way
 * (coming). Sets stop on each; returns how many are stopped.
 */
size_t ctl_evict_choose(struct ctl_evictee *v, size_t n, size_t want, size_t up, size_t coming);
/* One type's rollout, as the batch planner sees it. */
struct ctl_roll {
    uint32_t want;             /* the formation's quantity */
    uint32_t surge;            /* at most this many above want (ctl_roll_limits) */
    uint32_t unavailable;      /* at most this many of want not up */
    uint32_t new_live, new_up; /* of the current release, not stopping, not evicted */
    uint32_t old_live, old_up; /* of other releases, not stopping */
    uint32_t new_starting;     /* of new_live: placed, pending or starting (a batch in flight) */
    uint32_t create;           /* out: new instances to make now */
    uint32_t stop_old;         /* out: old instances to stop now, those not up first */
};
/* max_surge / max_unavailable ("N" or "P%") as counts for want instances:
 * percentages round up for surge and down for unavailable; when both come
 * to 0, surge is 1. */
void ctl_roll_limits(const char *max_surge, const char *max_unavailable, uint32_t want,
                     uint32_t *surge, uint32_t *unavailable);
/* The batch planner, pure: sets create and stop_old. */
void ctl_roll_plan(struct ctl_roll *r);
int ctl_reconcile_app(struct ctl_model *m, struct ctl_app *a, uint64_t now);
int ctl_place_unplaced(struct ctl_model *m);
int ctl_settle(struct ctl_model *m, uint64_t now); /* reconcile flagged apps, place */

/* nodes.c: reports, registration, the name rule, cordon and drain (no I/O) */
/* Apply a complete report of the node's instances (wall-clock now). */
void ctl_node_apply_report(struct ctl_model *m, struct ctl_node *n, Drover__InstanceReport **v,
                           size_t nv, uint64_t now);
/* The node-name rule: does a live agent with another boot hold n's name? */
bool ctl_node_name_taken(const struct ctl_node *n, const char *boot_id,
                         const char *previous_boot_id, uint64_t mono_now, uint64_t timeout_ms);
struct ctl_node_reg {
    const char *name, *address, *boot_id;
    uint16_t port_min, port_max;
    uint32_t capacity;
    Drover__InstanceReport **reports; /* checked by the caller */
    size_t nreports;
};
/* Add or take back the node (the caller checked the name rule). */
int ctl_node_register(struct ctl_model *m, const struct ctl_node_reg *g, uint64_t now,
                      uint64_t mono_now, struct ctl_node **out);
/* A sync from its current boot: heard, up again, leaving or not. */
void ctl_node_sync(struct ctl_model *m, struct ctl_node *n, bool leaving, uint64_t now,
                   uint64_t mono_now);
/* Cordon (CORDONED), uncordon (READY), drain (DRAINING). */
void ctl_node_set_admin(struct ctl_model *m, struct ctl_node *n, enum ctl_node_state admin);

/* oneoffs.c: placing a one-off (no I/O) */
struct ctl_oneoff_spec {
    const char *command; /* "" with type: the type's command */
    const char *type;    /* "" or a type of the current release: its settings */
    const char *node;    /* "" or the node to run on */
    bool attach, tty;
    uint16_t rows, cols;
};
/* Make and place run.N. -EAGAIN no release, -ENOENT no such type, -EBUSY
 * no node (or not that one), -ENOSPC no port, -ENOMEM; why in err. */
int ctl_oneoff_start(struct ctl_model *m, struct ctl_app *a, const struct ctl_oneoff_spec *q,
                     uint64_t now, struct ctl_instance **out, char *err, size_t errsz);

/* releases.c: making releases, rollback, scale: rules over the model, no I/O */
struct ctl_release_spec {
    const char *slug_sha256;
    uint64_t slug_size;
    const char *description;
    const struct ctl_ptype *types; /* commands copied */
    size_t ntypes;
    const struct ctl_kv *config; /* the snapshot, and the app's config from now */
    size_t nconfig;
};
/* Release vN+1 of a: made current (or its release phase started), its new
 * types added to the formation, its deploy started. 0 or -ENOMEM. */
int ctl_release_make(struct ctl_model *m, struct ctl_app *a, const struct ctl_release_spec *spec,
                     uint64_t now, struct ctl_release **out);
/* After a config change: vN+1 with the same slug and types (*out NULL
 * before the first release: the first deploy snapshots the config). */
int ctl_release_for_config(struct ctl_model *m, struct ctl_app *a, const char *desc, uint64_t now,
                           struct ctl_release **out);
/* "Set FOO, BAR config vars", cut short to fit a description. */
void ctl_config_description(char *out, size_t outsz, const char *verb, char *const *keys, size_t n);
/* Which release `rollback [vN]` goes to (0: the newest succeeded before the
 * current). -EAGAIN no release, -ENOENT none such, -EEXIST the current. */
int ctl_rollback_target(const struct ctl_app *a, uint32_t version, const struct ctl_release **to,
                        char *err, size_t errsz);
int ctl_release_rollback(struct ctl_model *m, struct ctl_app *a, const struct ctl_release *to,
                         uint64_t now, struct ctl_release **out);
struct ctl_scale {
    const char *type;
    uint32_t quantity;
};
/* Set each type's quantity (types checked by the caller); " web=2" in what. */
int ctl_app_scale(struct ctl_model *m, struct ctl_app *a, const struct ctl_scale *v, size_t n,
                  char *what, size_t whatsz);

/* deploys.c: each app's latest deploy, from start to success or revert */
const char *ctl_deploy_state_name(enum ctl_deploy_state st);
int ctl_deploy_state_parse(const char *s, enum ctl_deploy_state *st);
/* a->current just became a new release: roll it out. */
void ctl_deploy_start(struct ctl_model *m, struct ctl_app *a, uint64_t now);
/* Done when every type of the release has its quantity up and nothing older
 * is live: mark it succeeded. Cheap; called after every reconcile. */
void ctl_deploy_check(struct ctl_model *m, struct ctl_app *a, uint64_t now);
/* Stop the deploy, mark its release failed, make the last good release
 * current again (it rolls back like any deploy). */
void ctl_deploy_fail(struct ctl_model *m, struct ctl_app *a, uint64_t now, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* An instance changed state: a new one that crashed fails its deploy. */
void ctl_deploy_saw(struct ctl_model *m, struct ctl_instance *in, uint64_t now);
/* An agent reported in's state: set it and act on what it means (the deploy
 * judged, then the app's log line), in this one place. now: monotonic. */
unsigned ctl_inst_report(struct ctl_model *m, struct ctl_instance *in, Drover__InstanceState st,
                         uint64_t since_ms, uint64_t now);
/* A report says in crashed (its restarts grew), whatever its state now: an
 * instance restarted at once fails its deploy as one left crashed does. */
void ctl_deploy_crashed(struct ctl_model *m, struct ctl_instance *in, uint64_t now);
/* Deploy timeouts; returns true when something changed. */
bool ctl_deploys_tick(struct ctl_model *m, uint64_t now);
int ctl_view_deploy(struct ctl_arena *ar, const struct ctl_app *a, Drover__DeployInfo *di);

/* release_phase.c: a release's `release:` command, run once before it starts */
extern const char *const ctl_release_type_name; /* "release": never a formation type */
bool ctl_relphase_wanted(const struct ctl_release *r);
/* r was just made: run its release phase; a->current stays until it succeeds. */
void ctl_relphase_start(struct ctl_model *m, struct ctl_app *a, struct ctl_release *r,
                        uint64_t now);
/* Release newer was made: a phase of another release stops, superseded. */
void ctl_relphase_abandon(struct ctl_model *m, struct ctl_app *a, uint32_t newer);
/* A one-off ended (exited: it reported its exit; else the agent forgot it). */
void ctl_relphase_ended(struct ctl_model *m, struct ctl_instance *in, bool exited);
/* Lost, failed or timed out: fail it. True when something changed. */
bool ctl_relphase_tick(struct ctl_model *m, struct ctl_app *a, uint64_t now);

/* lifecycle.c: restart, ps:stop, apps:destroy, nodes:remove (no new release) */
bool ctl_deploy_is_restart(const struct ctl_deploy *d); /* a deploy from itself */
/* Restart target ("" every type, a type, or an instance like "web.2"):
 * names[0..*n) the instances replaced. 0 or -EINVAL/-ENOENT/-EBUSY with err. */
int ctl_restart(struct ctl_model *m, struct ctl_app *a, const char *target, uint64_t now,
                char names[][48], size_t max, size_t *n, char *err, size_t errsz);
void ctl_restart_failed(struct ctl_model *m, struct ctl_app *a); /* from ctl_deploy_fail */
int ctl_ps_stop(struct ctl_model *m, struct ctl_app *a, const char *name, bool *restarted,
                char *err, size_t errsz);
int ctl_destroy(struct ctl_model *m, struct ctl_app *a, uint32_t *stopped);
/* Destroyed apps with nothing left: forget them (from ctl_commit). */
void ctl_destroy_reap(struct ctl *ctl);
/* Recent destroys, for the agents' assignment sets (borrowed). */
void ctl_destroy_view(struct ctl_model *m, Drover__SyncRep *sr);
/* An app of that name is created again: agents must not delete its files. */
void ctl_destroy_unforget(struct ctl_model *m, const char *app);
int ctl_node_forget(struct ctl_model *m, struct ctl_node *n, char *err, size_t errsz);

/* settings.c: per-type settings */
void ctl_settings_defaults(struct ctl_formation *f);
/* Parse one KEY=VALUE into f; on error, -EINVAL and why in err. */
int ctl_settings_set(struct ctl_formation *f, const char *key, const char *value, char *err,
                     size_t errsz);
/* Whole-settings checks (max_surge and max_unavailable not both 0). */
int ctl_settings_check(const struct ctl_formation *f, char *err, size_t errsz);
void ctl_view_settings(const struct ctl_formation *f, Drover__TypeSettings *ts);

/* endpoints.c: the up instances of an app, and `endpoints --watch` */
struct ctl_endpoints *ctl_endpoints_new(struct ctl *ctl);
void ctl_endpoints_free(struct ctl_endpoints *e);
/* Answer the waiters whose list changed or whose wait is over (all if force). */
void ctl_endpoints_wake(struct ctl_endpoints *e, bool force);

/* store_front.c: the store front (a backend behind store.h; commits change sets) */
struct ctl_store_ops;
int ctl_store_open_with(const struct ctl_store_ops *ops, const char *where, struct ctl_db **out);
int ctl_store_open(const char *path, struct ctl_db **out); /* SQLite at path */
/* The backend behind the front (for its own extras, as store_pg.c's fencing
 * term), and its name: "sqlite" or "postgresql". */
struct ctl_store *ctl_store_backend(struct ctl_db *db);
const char *ctl_store_backend_name(const struct ctl_db *db);
/* The backend the config asks for: SQLite under data_dir, or database_url. */
int ctl_store_open_cfg(const struct ctl_config *cfg, struct ctl_db **out);
void ctl_store_close(struct ctl_db *db);
int ctl_store_load(struct ctl_db *db, struct ctl_model *m, uint64_t now);
/* Apply m's change set in one transaction; on failure m is restored. */
int ctl_store_flush(struct ctl_db *db, struct ctl_model *m);
/*
 * The same in two halves, for a backend that writes off the loop (store.h's
 * record/exec/done: PostgreSQL); commit.c drives them. begin (loop) records
 * the change set, forgets the marks and takes the undo journal: 0 with *job
 * NULL when there is nothing to write. work runs in a worker thread. end
 * (loop) frees the journal, or restores the model (the changes made since
 * begin as well) and returns the error as ctl_store_flush does.
 */
struct ctl_store_job;
bool ctl_store_async(const struct ctl_db *db);
int ctl_store_flush_begin(struct ctl_db *db, struct ctl_model *m, struct ctl_store_job **job);
void ctl_store_flush_work(struct ctl_store_job *job);
int ctl_store_flush_end(struct ctl_db *db, struct ctl_model *m, struct ctl_store_job *job);
/* Why the last flush failed, for the request it refused. */
const char *ctl_store_why(const struct ctl_db *db);
bool ctl_store_failing(const struct ctl_db *db);
int ctl_store_start(struct ctl_db *db, uv_loop_t *loop); /* periodic checkpoints */
void ctl_store_stop(struct ctl_db *db);
const char *ctl_store_errmsg(const struct ctl_db *db);
/* Log drains (drains.c), written at once, outside the model's commits. */
int ctl_store_drain_put(struct ctl_db *db, const char *id, const char *app, const char *url,
                        uint64_t created_ms);
int ctl_store_drain_del(struct ctl_db *db, const char *id);
/* fn for each stored drain, oldest first; fn returns false to stop. */
int ctl_store_drains_each(struct ctl_db *db,
                          bool (*fn)(void *arg, const char *id, const char *app, const char *url,
                                     uint64_t created_ms),
                          void *arg);

/* store_pg.c: PostgreSQL (ctl_store_pg_ops in store.h) */
int ctl_store_pg_check_url(const char *url, char *err, size_t errsz);
/* A session with drover's timeouts; app: its application_name (NULL:
 * drover-controller). NULL and err on failure. */
struct pg_conn *ctl_pg_connect(const char *url, const char *app, char *err, size_t errsz);
void ctl_store_pg_set_term(struct ctl_store *st, uint64_t term); /* fence writes with it */
/* Slugs in the database, on a session of their own (thread pool). */
int ctl_pg_slug_put(const char *url, const char *sha, const char *path);
int ctl_pg_slug_get(const char *url, const char *sha, const char *path);

/* leader.c: leader election, lease and step-down (PostgreSQL only) */
/* Load the state and start acting on it: at start with SQLite, on winning
 * the election with PostgreSQL. */
int ctl_take_lead(struct ctl *ctl);
struct ctl_drain_rows;
/* What follows the load: start the drains (rows read with the model, or
 * NULL: read them here), stop orphaned one-offs, commit. */
int ctl_take_lead_loaded(struct ctl *ctl, struct ctl_drain_rows *rows);
int ctl_leader_start(struct ctl *ctl, const char *url, struct ctl_leader **out);
void ctl_leader_stop(struct ctl_leader *l);
void ctl_leader_free(struct ctl_leader *l);
void ctl_leader_lost(struct ctl_leader *l, const char *why); /* steps down: exits */
/* True while this controller may act; NULL (SQLite) always may. A leader
 * whose lease ran out steps down (exits) inside this call. */
bool ctl_leader_acting(struct ctl_leader *l);
uint64_t ctl_leader_term(const struct ctl_leader *l); /* 0 unless leading */
/* A standby's answer: the leader's endpoint for the API or the agents ("" when
 * none is known yet, or the stored one is ours), and how long to wait then. */
uint32_t ctl_leader_where(struct ctl_leader *l, bool api, char *where, size_t wheresz);
/* For `drover status`: the controllers with a live leader session (API
 * endpoints, comma-separated, in buf), as of the last renewal. */
void ctl_leader_controllers(struct ctl_leader *l, char *buf, size_t bufsz);
const char *ctl_leader_api(const struct ctl_leader *l); /* ours, advertised */
int ctl_status_ha(struct ctl *ctl, struct ctl_arena *ar, Drover__StatusRep *sr);

/* slugs.c: the slug store */
int ctl_slugs_new(struct ctl *ctl, const char *dir, struct ctl_slugs **out);
void ctl_slugs_free(struct ctl_slugs *s);
/* The slug's file here: 0 and its size, or -errno (-ENOENT: not here). */
int ctl_slug_stat(const struct ctl_slugs *s, const char *sha, uint64_t *size);
/* The same, copying it from the database first when another controller
 * stored it (HA): in the thread pool only. */
int ctl_slug_fetch(const struct ctl_slugs *s, const char *sha, uint64_t *size);
bool ctl_slug_maybe_stored(const struct ctl_slugs *s);
int ctl_slug_path(const struct ctl_slugs *s, const char *sha, char *out, size_t outsz);

/* slugs_gc.c: delete the slugs only releases past DROVER_SLUGS_KEEP use
 * (in the thread pool). 0 or -errno. */
int ctl_slugs_gc(struct ctl *ctl);

/* commit.c: the model's changes into the store before they are acknowledged */
void ctl_commits_init(struct ctl *ctl);
/* With the loop's handles (main.c); closed with ctl_commits_close. */
void ctl_commits_start(struct ctl *ctl);
void ctl_commits_close(struct ctl *ctl);
/* The loop turn's end: write and answer the calls waiting for it. */
void ctl_commits_turn(struct ctl *ctl);
/* Write what is marked, nobody waiting: 0, or < 0 when refused here. */
int ctl_commit(struct ctl *ctl);
struct ctl_call;
/* 0: answer c now; 1: c->committed runs later; < 0: the store refused. */
int ctl_commit_wait(struct ctl *ctl, struct ctl_call *c);

/* reply.c: sealing replies and errors */
void ctl_reply(struct ctl *ctl, struct nnuv_msg *req, const Drover__Message *rep);
void ctl_reply_error(struct ctl *ctl, struct nnuv_msg *req, Drover__ErrorCode code, const char *fmt,
                     ...) __attribute__((format(printf, 4, 5)));
/* Keys from cfg into the senders and the keyring; 0 or negative errno. */
int ctl_keys_init(struct ctl *ctl);
/* The request's memory comes from ar (the caller frees ar, never the
 * message). */
Drover__Message *ctl_open(struct ctl *ctl, struct nnuv_msg *req, const char *sock,
                          struct ctl_arena *ar);
/* Work in the thread pool is over (shutdown.c's check then closes). */
static inline void
ctl_work_done(struct ctl *ctl)
{
    ctl->inflight--;
}

/* agents.c: the agent endpoint, node timeouts, notifications */
int ctl_agents_start(struct ctl *ctl);
void ctl_agents_stop(struct ctl *ctl);
void ctl_notify_flush(struct ctl *ctl);

/* watch.c: agents' quiet syncs held until their node's set changes */
struct ctl_watches *ctl_watches_new(struct ctl *ctl);
int ctl_sync_hold(struct ctl_call *c, struct ctl_node *n); /* 0 or CTL_PENDING */
/* May a watch of n be held longer than a heartbeat (its UDP heartbeats were
 * heard within two)? Else its syncs are its heartbeats. */
bool ctl_watch_held_long(const struct ctl *ctl, const struct ctl_node *n);
bool ctl_watch_wake(struct ctl_watches *ws, const struct ctl_node *n);
/* n's UDP heartbeats stopped: a long watch it holds is answered now, so
 * that its syncs prove it alive again (node_tick). */
void ctl_watch_cut(struct ctl_watches *ws, struct ctl_node *n);
size_t ctl_watches_held(const struct ctl_watches *ws);
uint64_t ctl_watches_woken(const struct ctl_watches *ws);
void ctl_watches_stop(struct ctl_watches *ws);
void ctl_watches_close(struct ctl_watches *ws);

/* The longest watch held (watch.c): a node that takes summonses, while its
 * datagrams come. Its length is not what finds a lost connection: an answer
 * that no sync follows within two heartbeats is (the node is summoned). So
 * it is long, and its agent's syncs are few: 300 s, the default wait of
 * Nomad's blocking queries (bench, 1,000 agents: 30 s -> 60 s took the TCP
 * syncs of a quiet cluster from 32 to 16 a second and the CPU per quiet
 * heartbeat from 11-12 to 9.4-9.7 us; a window without them measures 3.7
 * us, so each ended watch, an answer and the next sync, cost 130-330 us;
 * 60 s -> 300 s: 16 -> 3 a second). The agent endpoint keeps its idle
 * connections alive with TCP keepalives (sprep.c), so a NAT or load
 * balancer that forgets idle flows after a few minutes does not lose a held
 * watch. A node heard by UDP that takes none: at most CTL_BEAT_HOLD_MAX_MS
 * (ctl_beat_watch_ms). */
#define CTL_WATCH_HOLD_MAX_MS 300000u
#define CTL_BEAT_HOLD_MAX_MS 30000u

/* beat.c: sealed UDP heartbeats on the agent endpoint's address and port */
struct beat;
int ctl_beats_start(struct ctl *ctl); /* 0 also when the endpoint is not tcp:// */
void ctl_beats_close(struct ctl *ctl);
/* An opened heartbeat against the model: 0 accepted (n heard; *wake when
 * its generation or digest differ from n's two datagrams in a row), -ENOENT unknown node or boot,
 * -EALREADY counter not above the last accepted for that boot. */
int ctl_beat_apply(struct ctl_model *m, const struct beat *b, uint64_t mono_now,
                   struct ctl_node **out, bool *wake);
/* Has n's current boot been heard over UDP within ms? */
bool ctl_beat_recent(const struct ctl_node *n, uint64_t mono_now, uint64_t ms);
/* The watch held for a node heard by UDP (half the node timeout, at least a
 * heartbeat, at most CTL_BEAT_HOLD_MAX_MS); 0 without UDP heartbeats. */
uint32_t ctl_beat_watch_ms(const struct ctl *ctl);
/* The watch held for a node that takes summonses while it is heard by UDP
 * (CTL_WATCH_HOLD_MAX_MS); 0 without UDP heartbeats. */
uint32_t ctl_summon_watch_ms(const struct ctl *ctl);
/* Does n, just heard by UDP at now, need a summons (beat.c)? True marks it
 * summoned. */
bool ctl_beat_wants_summons(struct ctl *ctl, struct ctl_node *n, uint64_t now);
uint64_t ctl_beats_count(const struct ctl *ctl, bool accepted);
uint64_t ctl_summonses_sent(const struct ctl *ctl);
/* watch.c: answer n's held watch now (its agent has something to sync). */
void ctl_watch_poke(struct ctl_watches *ws, const struct ctl_node *n);

/* liveness.c: which silent nodes are down (see its opening comment) */
/* Up to max nodes to declare down now, into down; now is monotonic. */
size_t ctl_liveness_tick(struct ctl_liveness *lv, struct ctl_model *m, uint64_t now,
                         uint64_t timeout, struct ctl_node **down, size_t max);

/* views.c: the model as the API shows it, in a reply's arena */
void ctl_view_node(const struct ctl_node *n, Drover__NodeInfo *ni);
Drover__NodeInfo **ctl_view_nodes(struct ctl_arena *ar, const struct ctl_model *m,
                                  size_t *n); /* sorted by name */
int ctl_view_inst(struct ctl_arena *ar, const struct ctl_instance *in, Drover__InstanceInfo *ii);
int ctl_view_status(struct ctl_arena *ar, const struct ctl_model *m, Drover__StatusRep *sr);

/* logs.c: each app's log stream, agents' batches, `drover logs` */
struct ctl_logs *ctl_logs_new(struct ctl *ctl, size_t max_lines);
void ctl_logs_free(struct ctl_logs *l);
int ctl_logs_start(struct ctl_logs *l, uv_loop_t *loop, const char *listen);
void ctl_logs_stop(struct ctl_logs *l);
void ctl_logs_close(struct ctl_logs *l);
/* One line from source "drover" into app's stream (l may be NULL). */
void ctl_logs_event(struct ctl_logs *l, const char *app, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same, as the model's event hook (arg: the struct ctl_logs). */
void ctl_logs_text(void *arg, const char *app, const char *text);
/* apps:destroy: drop app's stream (its waiters are answered first). */
void ctl_logs_forget(struct ctl_logs *l, const char *app);

/* drains.c: each app's log drains, fed from the collated stream */
struct ctl_drains *ctl_drains_new(struct ctl *ctl, size_t max_lines, const char *ca_file);
/* Start the stored drains (after the store is loaded). */
int ctl_drains_start(struct ctl_drains *ds);
/* The same in two steps: read the stored drains (any thread), start them
 * on the loop (takes r). */
struct ctl_drain_rows;
int ctl_drains_read(struct ctl_db *db, struct ctl_drain_rows **out);
void ctl_drains_start_rows(struct ctl_drains *ds, struct ctl_drain_rows *r);
void ctl_drain_rows_free(struct ctl_drain_rows *r);
/* One line of app's stream (logs.c); never blocks: copies it to each drain. */
void ctl_drains_line(struct ctl_drains *ds, const char *app, uint64_t ts_ms, const char *source,
                     const char *node, bool err, const char *text, size_t len);
/* Lines a busy drain's lock made wait go to its buffer (logs.c's tick). */
void ctl_drains_tick(struct ctl_drains *ds);
/* apps:destroy: stop every drain of app (its rows go with the app's). */
void ctl_drains_forget_app(struct ctl_drains *ds, const char *app);
/* After the loop: up to 2 s to send what is buffered, then stop every drain. */
void ctl_drains_free(struct ctl_drains *ds);

/* runs.c: one-off instances and the relay of attached ones' stdio */
struct ctl_runs *ctl_runs_new(struct ctl *ctl);
void ctl_runs_free(struct ctl_runs *r);
/* Stops attached one-offs left from before a restart (their sessions are
 * gone) and starts the session timer. */
int ctl_runs_start(struct ctl_runs *r, uv_loop_t *loop);
void ctl_runs_orphans(struct ctl_runs *r); /* after the model is loaded */
void ctl_runs_stop(struct ctl_runs *r);
void ctl_runs_close(struct ctl_runs *r);

/* ---- the request path (call.c, dispatch.c; front ends: front.c, dispatch.h) ---- */

/* The endpoint a request came in on: the table says where each type is taken. */
enum ctl_ep { CTL_EP_API = 1, CTL_EP_AGENT = 2 };

/*
 * One request from the moment a front end hands it over to the moment its
 * reply goes back through done. A handler reads req, builds its reply in rep
 * with memory from ar, or refuses with ctl_fail(); it never touches a socket
 * or the store: dispatch.c commits what it changed in the model, then calls
 * done. Defined here, like the model's objects, because every handler reads
 * and fills it.
 */
struct ctl_call {
    struct ctl *ctl;
    enum ctl_ep ep;
    const char *what;     /* the request's name in logs ("scale") */
    Drover__Message *req; /* owned by the call */
    bool req_in_ar;       /* req lives in ar (ctl_call_ep), not in malloc's memory */
    struct ctl_arena *ar; /* the reply's memory, freed with the call */
    Drover__Message rep;  /* the handler's reply */
    Drover__ErrorCode code;
    char err[512];
    char leader[256];        /* ERR_NOT_LEADER: where the leader is ("" unknown) */
    uint32_t retry_after_ms; /* ERR_NOT_LEADER with no leader known yet */
    bool logged;             /* the refusal is logged already */
    uint64_t t0;             /* uv_hrtime() when it came in (metrics.c) */
    /* Optional: builds the reply after the commit, for replies that must
     * show what the commit's settle did (a sync's assignment set). */
    int (*view)(struct ctl_call *c);
    void *data; /* for view */
    /* The continuation (dispatch.c): commit, then done, then free. */
    void (*finish)(struct ctl_call *c, const Drover__Message *rep);
    /* While its reply waits for a commit (commit.c): the change set it
     * waits for, and the continuation that answers it (rc < 0: refused). */
    uint64_t epoch;
    TAILQ_ENTRY(ctl_call) wait_link;
    void (*committed)(struct ctl_call *c, int rc);
    Drover__Message *held; /* a copy of a borrowed reply, or NULL */
    ctl_call_done *done;
    void *arg;
    LIST_ENTRY(ctl_call) link; /* pending calls (dispatch.c) */
};

/* A handler returns 0 (rep is the reply), -1 (ctl_fail said why) or
 * CTL_PENDING: it keeps the call and ends it later with ctl_call_end. */
#define CTL_PENDING 1
typedef int ctl_handler(struct ctl_call *c);

/* call.c: what handlers use */
int ctl_fail(struct ctl_call *c, Drover__ErrorCode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4))); /* returns -1 */
int ctl_oom(struct ctl_call *c);
bool ctl_str_ok(const char *s, size_t max);
/* A valid app name that exists, else NULL with the error set. */
struct ctl_app *ctl_call_app(struct ctl_call *c, const char *name);
/* End a pending call: with rep (borrowed), or with the error of ctl_fail
 * when rep is NULL. Commits, replies, frees c: never touch c after. */
void ctl_call_end(struct ctl_call *c, const Drover__Message *rep);
void ctl_call_end_error(struct ctl_call *c, Drover__ErrorCode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* dispatch.c: the table and the dispatcher */
/* ctl_call (dispatch.h) for a given endpoint: the type must be one it takes.
 * ar: the arena req was unpacked into (the call answers from it and frees
 * it with req), or NULL for a req from malloc. */
void ctl_call_ep(struct ctl *ctl, enum ctl_ep ep, Drover__Message *req, struct ctl_arena *ar,
                 ctl_call_done *done, void *arg);
/* Calls handed over and not yet ended. */
unsigned ctl_calls_pending(const struct ctl *ctl);

/* front.c: the nanomsg front ends (API and agent REP sockets) */
int ctl_front_start(struct ctl *ctl);

/* The handlers, by file (dispatch.c's table names each). */
/* api.c */
int ctl_h_apps(struct ctl_call *c);
int ctl_h_app_create(struct ctl_call *c);
int ctl_h_config(struct ctl_call *c);
int ctl_h_config_set(struct ctl_call *c);
int ctl_h_config_unset(struct ctl_call *c);
int ctl_h_release_create(struct ctl_call *c); /* pending: reads the Procfile off the loop */
int ctl_h_releases(struct ctl_call *c);
int ctl_h_rollback(struct ctl_call *c);
int ctl_h_scale(struct ctl_call *c);
int ctl_h_ps(struct ctl_call *c);
int ctl_h_nodes(struct ctl_call *c);
int ctl_h_node_state(struct ctl_call *c);
int ctl_h_status(struct ctl_call *c);
int ctl_h_settings(struct ctl_call *c);
int ctl_h_settings_set(struct ctl_call *c);
int ctl_h_deploy(struct ctl_call *c);
/* lifecycle_api.c */
int ctl_h_restart(struct ctl_call *c);
int ctl_h_ps_stop(struct ctl_call *c);
int ctl_h_app_destroy(struct ctl_call *c);
int ctl_h_node_remove(struct ctl_call *c);
/* agents.c */
int ctl_h_register(struct ctl_call *c);
int ctl_h_sync(struct ctl_call *c);
/* front.c's overload rule: a heartbeat that may be answered ERR_BUSY (it
 * is heard all the same). */
struct ctl_node *ctl_agent_may_wait(struct ctl *ctl, const Drover__Message *m);
/* front.c, pure: a busy heartbeat's retry_after_ms, one heartbeat plus the
 * backlog's age, at most 2/5 of (node timeout - heartbeat): with the
 * agent's jitter (rpc_hold_ms: up to half again) a held agent is heard
 * again within node timeout - heartbeat. */
uint64_t ctl_busy_retry_ms(const struct ctl_config *cfg, uint64_t backlog_ms);
/* slugs.c: pending (the thread pool) */
int ctl_h_slug_put(struct ctl_call *c);
int ctl_h_slug_read(struct ctl_call *c);
/* logs.c, endpoints.c: pending while they wait for lines or a change */
int ctl_h_logs(struct ctl_call *c);
int ctl_h_endpoints(struct ctl_call *c);
/* drains.c */
int ctl_h_drains(struct ctl_call *c);
/* runs.c: run is immediate; io and pipe wait (long polls) */
int ctl_h_run(struct ctl_call *c);
int ctl_h_run_io(struct ctl_call *c);
int ctl_h_run_pipe(struct ctl_call *c);

/* shutdown.c */
void ctl_shutdown(struct ctl *ctl, int code);
void ctl_maybe_close(struct ctl *ctl);

/* fdwatch.c: log descriptors_low / descriptors_ok as they come and go */
void ctl_fdwatch_tick(uint64_t now);

#endif
