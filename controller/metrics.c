/* SPDX-License-Identifier: MIT */
/*
 * metrics.c: the controller's Prometheus metrics at /metrics.
 *
 * Gauges are read from the model when scraped (nodes by state, instances by
 * app, type and state, desired quantities), so they cannot drift from what
 * `drover ps` and `drover nodes` show. Counters live here and are bumped by
 * one call from where each thing happens; labelled counters keep a small
 * table (apps x results, verbs x results: a few dozen rows).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "http.h"
#include "prom.h"

#define LABELLED_MAX 4096

struct labelled {
    char a[64], b[32];
    uint64_t n;
};

struct table {
    struct labelled *v;
    size_t n, cap;
};

static struct table api_requests, deploys;
static uint64_t agent_syncs, agent_watches, placements, log_lines;
static struct prom_hist sync_hist, commit_hist;
static bool hist_ready;
static uint64_t commits_ok, commits_refused;

static const double sync_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                     0.01,   0.025,   0.05,   0.1,   0.25,   1};

static void
bump(struct table *t, const char *a, const char *b)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i].a, a) == 0 && strcmp(t->v[i].b, b) == 0) {
            t->v[i].n++;
            return;
        }
    if (t->n == t->cap) {
        size_t cap = t->cap == 0 ? 16 : t->cap * 2;
        struct labelled *v;

        if (cap > LABELLED_MAX || (v = realloc(t->v, cap * sizeof(*v))) == NULL)
            return;
        t->v = v;
        t->cap = cap;
    }
    snprintf(t->v[t->n].a, sizeof(t->v[t->n].a), "%s", a);
    snprintf(t->v[t->n].b, sizeof(t->v[t->n].b), "%s", b);
    t->v[t->n].n = 1;
    t->n++;
}

static void
hist_init(void)
{
    if (hist_ready)
        return;
    prom_hist_init(&sync_hist, sync_bounds, sizeof(sync_bounds) / sizeof(sync_bounds[0]));
    prom_hist_init(&commit_hist, sync_bounds, sizeof(sync_bounds) / sizeof(sync_bounds[0]));
    hist_ready = true;
}

/* A change set written (rc 0) or refused by the store, and how long it
 * took from its start to its end (commit.c). */
void
ctl_metrics_commit(int rc, uint64_t ns)
{
    hist_init();
    if (rc < 0)
        commits_refused++;
    else
        commits_ok++;
    prom_hist_observe(&commit_hist, (double)ns / 1e9);
}

static void
sync_observe(uint64_t ns)
{
    hist_init();
    agent_syncs++;
    prom_hist_observe(&sync_hist, (double)ns / 1e9);
}

/* "not_found" for ERR_NOT_FOUND: a metric's label value. */
static const char *
code_name(Drover__ErrorCode code)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&drover__error_code__descriptor, (int)code);
    static char buf[32];
    size_t i;

    if (v == NULL || strncmp(v->name, "ERR_", 4) != 0)
        return "error";
    for (i = 0; v->name[4 + i] != '\0' && i + 1 < sizeof(buf); i++)
        buf[i] = (char)(v->name[4 + i] >= 'A' && v->name[4 + i] <= 'Z' ? v->name[4 + i] + 32
                                                                       : v->name[4 + i]);
    buf[i] = '\0';
    return buf;
}

/* Every call the dispatcher ends (dispatch.c): the API's by verb and result,
 * and the agents' syncs with their handling time (commit included). */
void
ctl_metrics_call(const char *verb, bool api, Drover__ErrorCode code, uint64_t ns)
{
    if (api)
        bump(&api_requests, verb, code == DROVER__ERROR_CODE__ERR_NONE ? "ok" : code_name(code));
    else if (strcmp(verb, "sync") == 0)
        sync_observe(ns);
    else if (strcmp(verb, "watch") == 0)
        agent_watches++; /* held: its time is the hold, not the handling */
}

void
ctl_metrics_deploy(const char *app, const char *result)
{
    bump(&deploys, app, result);
}

void
ctl_metrics_placement(void)
{
    placements++;
}

void
ctl_metrics_log_lines(uint64_t n)
{
    log_lines += n;
}

static const char *const node_states[] = {"ready", "cordoned", "draining", "down"};

static void
write_nodes(struct prom *p, const struct ctl_model *m)
{
    uint64_t count[4] = {0};

    for (size_t i = 0; i < m->nnodes; i++)
        if ((unsigned)m->node_v[i]->state < 4)
            count[m->node_v[i]->state]++;
    prom_family(p, "drover_nodes", "gauge", "Nodes by state.");
    for (size_t s = 0; s < 4; s++) {
        const char *l[] = {"state", node_states[s], NULL};

        prom_sample_u64(p, "drover_nodes", l, count[s]);
    }
}

/* Instances of one app by type and state: counted per (type, state). */
static void
write_app_instances(struct prom *p, const struct ctl_app *a)
{
    struct {
        const char *type;
        Drover__InstanceState st;
        uint64_t n;
    } rows[256];
    size_t nrows = 0;
    const struct ctl_instance *in;

    LIST_FOREACH (in, &a->instances, app_link) {
        size_t i;

        for (i = 0; i < nrows; i++)
            if (rows[i].st == in->state && strcmp(rows[i].type, in->type) == 0)
                break;
        if (i == nrows) {
            if (nrows == 256)
                continue;
            rows[nrows].type = in->type;
            rows[nrows].st = in->state;
            rows[nrows].n = 0;
            nrows++;
        }
        rows[i].n++;
    }
    for (size_t i = 0; i < nrows; i++) {
        const char *l[] = {
            "app", a->name, "type", rows[i].type, "state", wire_state_name(rows[i].st), NULL};

        prom_sample_u64(p, "drover_instances", l, rows[i].n);
    }
}

static void
write_apps(struct prom *p, const struct ctl_model *m)
{
    struct ctl_app *a;
    size_t pos = 0;

    prom_family(p, "drover_instances", "gauge",
                "Instances by app, process type and state (as drover ps shows them).");
    pos = 0;
    while ((a = ctl_map_next(m->apps, &pos)) != NULL)
        write_app_instances(p, a);
    prom_family(p, "drover_desired_instances", "gauge",
                "The formation: desired instances by app and process type.");
    pos = 0;
    while ((a = ctl_map_next(m->apps, &pos)) != NULL) {
        for (size_t i = 0; i < a->nformation; i++) {
            const char *l[] = {"app", a->name, "type", a->formation[i].type, NULL};

            prom_sample_u64(p, "drover_desired_instances", l, a->formation[i].quantity);
        }
    }
}

static void
write_table(struct prom *p, const char *name, const char *help, const struct table *t,
            const char *la, const char *lb)
{
    prom_family(p, name, "counter", help);
    for (size_t i = 0; i < t->n; i++) {
        const char *l[] = {la, t->v[i].a, lb, t->v[i].b, NULL};

        prom_sample_u64(p, name, l, t->v[i].n);
    }
}

int
ctl_metrics_render(struct ctl *ctl, char **text, size_t *len)
{
    struct prom p;

    hist_init();
    prom_init(&p);
    write_nodes(&p, ctl->model);
    write_apps(&p, ctl->model);
    write_table(&p, "drover_deploys_total", "Deploys finished, by app and result.", &deploys, "app",
                "result");
    write_table(&p, "drover_api_requests_total", "HTTP API requests, by verb and result.",
                &api_requests, "verb", "result");
    prom_family(&p, "drover_agent_syncs_total", "counter", "Agent sync requests handled.");
    prom_sample_u64(&p, "drover_agent_syncs_total", NULL, agent_syncs);
    prom_family(
        &p, "drover_agent_watches_total", "counter",
        "Agent syncs held as watches (watch.c) and answered; not in drover_agent_syncs_total.");
    prom_sample_u64(&p, "drover_agent_watches_total", NULL, agent_watches);
    prom_family(&p, "drover_sync_seconds", "histogram", "Time to handle one agent sync.");
    prom_hist_write(&p, "drover_sync_seconds", NULL, &sync_hist);
    prom_family(&p, "drover_placements_total", "counter", "Instances placed on a node.");
    prom_sample_u64(&p, "drover_placements_total", NULL, placements);
    prom_family(&p, "drover_log_lines_total", "counter", "Log lines received from agents.");
    prom_sample_u64(&p, "drover_log_lines_total", NULL, log_lines);
    /* watch.c: quiet syncs held until their node's set changes */
    prom_family(&p, "drover_watches_held", "gauge", "Agent syncs held until their node changes.");
    prom_sample_u64(&p, "drover_watches_held", NULL, ctl_watches_held(ctl->watches));
    prom_family(&p, "drover_watch_wakes_total", "counter",
                "Held syncs answered because their node's assignment set changed.");
    prom_sample_u64(&p, "drover_watch_wakes_total", NULL, ctl_watches_woken(ctl->watches));
    /* beat.c: sealed UDP heartbeats */
    prom_family(&p, "drover_heartbeats_udp_total", "counter",
                "UDP heartbeats accepted, or refused (not sealed right, replayed, unknown node).");
    prom_sample_u64(&p, "drover_heartbeats_udp_total",
                    (const char *const[]){"result", "accepted", NULL}, ctl_beats_count(ctl, true));
    prom_sample_u64(&p, "drover_heartbeats_udp_total",
                    (const char *const[]){"result", "refused", NULL}, ctl_beats_count(ctl, false));
    prom_family(&p, "drover_summonses_total", "counter",
                "Summonses sent: nodes heard by UDP that held no watch here, asked to sync now.");
    prom_sample_u64(&p, "drover_summonses_total", NULL, ctl_summonses_sent(ctl));
    prom_family(&p, "drover_store_commits_total", "counter",
                "Change sets written to the store (ok) or refused by it (refused).");
    prom_sample_u64(&p, "drover_store_commits_total", (const char *const[]){"result", "ok", NULL},
                    commits_ok);
    prom_sample_u64(&p, "drover_store_commits_total",
                    (const char *const[]){"result", "refused", NULL}, commits_refused);
    prom_family(&p, "drover_store_commit_seconds", "histogram",
                "Time to write one change set (in flight off the loop with PostgreSQL).");
    prom_hist_write(&p, "drover_store_commit_seconds", NULL, &commit_hist);
    if (p.failed) {
        free(p.buf);
        return -ENOMEM;
    }
    *text = p.buf;
    *len = p.len;
    return 0;
}
