/* SPDX-License-Identifier: MIT */
/*
 * metrics.c: the agent's Prometheus metrics at /metrics on
 * DROVER_METRICS_LISTEN (HOST:PORT, default 127.0.0.1:7481, empty: none).
 *
 * Per-instance values are read from the same reports the agent sends the
 * controller (agt_reports), when scraped; counters are bumped by one call
 * from where each thing happens. drover_agent_restarts_total sums the
 * restart counts of the instances the agent runs now, by app and type: it
 * drops when a restarted instance is replaced, which Prometheus's rate()
 * takes as a counter reset.
 *
 * Everything here is one struct agt_metrics, owned by the agent (made in
 * agt_start, freed in agt_free) and reached through agt_metrics(a): the
 * counters, the sync round trip's histogram and the HTTP server.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agt.h"
#include "listen.h"
#include "log.h"
#include "prom.h"
#include "util.h"
#include "wire.h"

struct agt_metrics {
    struct agt *agt;      /* borrowed: the agent owns us; NULL for render only */
    struct agt_http *srv; /* NULL when not listening (scrape.c) */
    uint64_t spawns;      /* drover_agent_spawns_total */
    uint64_t dropped;     /* drover_agent_log_lines_dropped_total */
    uint64_t sync_t0;     /* uv_hrtime when the sync in flight went out, 0: none */
    struct prom_hist sync_hist;
};

static const double sync_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                     0.05,   0.1,   0.25,   0.5,   1,    2.5};

struct agt_metrics *
agt_metrics_new(struct agt *a)
{
    struct agt_metrics *m = calloc(1, sizeof *m);

    if (m == NULL)
        return NULL;
    m->agt = a;
    prom_hist_init(&m->sync_hist, sync_bounds, sizeof(sync_bounds) / sizeof(sync_bounds[0]));
    return m;
}

void
agt_metrics_free(struct agt_metrics *m)
{
    free(m); /* srv is stopped (agt_metrics_stop) before uv_run returns */
}

/* The hooks take m NULL (no context yet): nothing is counted. */
void
agt_metrics_spawned(struct agt_metrics *m, int rc)
{
    if (m != NULL && rc == 0)
        m->spawns++;
}

void
agt_metrics_log_dropped(struct agt_metrics *m)
{
    if (m != NULL)
        m->dropped++;
}

void
agt_metrics_sync_sent(struct agt_metrics *m)
{
    if (m != NULL)
        m->sync_t0 = uv_hrtime();
}

void
agt_metrics_sync_done(struct agt_metrics *m)
{
    if (m == NULL)
        return;
    if (m->sync_t0 != 0)
        prom_hist_observe(&m->sync_hist, (double)(uv_hrtime() - m->sync_t0) / 1e9);
    m->sync_t0 = 0;
}

struct restarts {
    char app[APP_NAME_MAX + 2], type[TYPE_NAME_MAX + 2];
    uint64_t n;
};

int
agt_metrics_render(const struct agt_metrics *m, Drover__InstanceReport *const *reps,
                   const uint64_t *cpu_usec, size_t n, char **text, size_t *len)
{
    static const Drover__InstanceState states[] = {
        DROVER__INSTANCE_STATE__ST_PENDING, DROVER__INSTANCE_STATE__ST_STARTING,
        DROVER__INSTANCE_STATE__ST_UP,      DROVER__INSTANCE_STATE__ST_DRAINING,
        DROVER__INSTANCE_STATE__ST_STOPPED, DROVER__INSTANCE_STATE__ST_CRASHED,
        DROVER__INSTANCE_STATE__ST_FAILED};
    struct restarts *rs = calloc(n + 1, sizeof(*rs));
    size_t nrs = 0;
    struct prom p;

    if (rs == NULL)
        return -ENOMEM;
    prom_init(&p);
    prom_family(&p, "drover_agent_instances", "gauge", "Instances on this node by state.");
    for (size_t s = 0; s < sizeof(states) / sizeof(states[0]); s++) {
        const char *l[] = {"state", wire_state_name(states[s]), NULL};
        uint64_t c = 0;

        for (size_t k = 0; k < n; k++)
            c += reps[k]->state == states[s];
        prom_sample_u64(&p, "drover_agent_instances", l, c);
    }
    prom_family(&p, "drover_agent_instance_memory_bytes", "gauge",
                "Memory in use by each instance (its cgroup), at the last sample.");
    for (size_t k = 0; k < n; k++) {
        const char *l[] = {"app", reps[k]->app, "instance", reps[k]->name, NULL};

        prom_sample_u64(&p, "drover_agent_instance_memory_bytes", l, reps[k]->memory_bytes);
    }
    prom_family(&p, "drover_agent_instance_cpu_seconds_total", "counter",
                "CPU time used by each instance (its cgroup) since it started.");
    for (size_t k = 0; k < n; k++) {
        const char *l[] = {"app", reps[k]->app, "instance", reps[k]->name, NULL};

        prom_sample(&p, "drover_agent_instance_cpu_seconds_total", l,
                    cpu_usec != NULL ? (double)cpu_usec[k] / 1e6 : 0.0);
    }
    for (size_t k = 0; k < n; k++) {
        const char *name = reps[k]->name, *dot = strrchr(name, '.');
        size_t tl = dot != NULL ? (size_t)(dot - name) : strlen(name), i;
        char type[TYPE_NAME_MAX + 2];

        snprintf(type, sizeof(type), "%.*s", (int)(tl < sizeof(type) ? tl : sizeof(type) - 1),
                 name);
        for (i = 0; i < nrs; i++)
            if (strcmp(rs[i].app, reps[k]->app) == 0 && strcmp(rs[i].type, type) == 0)
                break;
        if (i == nrs) {
            snprintf(rs[i].app, sizeof(rs[i].app), "%s", reps[k]->app);
            snprintf(rs[i].type, sizeof(rs[i].type), "%s", type);
            nrs++;
        }
        rs[i].n += reps[k]->restarts;
    }
    prom_family(&p, "drover_agent_restarts_total", "counter",
                "Restarts of the instances this node runs, by app and process type.");
    for (size_t i = 0; i < nrs; i++) {
        const char *l[] = {"app", rs[i].app, "type", rs[i].type, NULL};

        prom_sample_u64(&p, "drover_agent_restarts_total", l, rs[i].n);
    }
    free(rs);
    prom_family(&p, "drover_agent_spawns_total", "counter", "Processes spawned.");
    prom_sample_u64(&p, "drover_agent_spawns_total", NULL, m->spawns);
    prom_family(&p, "drover_agent_log_lines_dropped_total", "counter",
                "App log lines dropped because the queue to the controller was full.");
    prom_sample_u64(&p, "drover_agent_log_lines_dropped_total", NULL, m->dropped);
    prom_family(&p, "drover_agent_sync_seconds", "histogram",
                "Round trip of a sync with the controller.");
    prom_hist_write(&p, "drover_agent_sync_seconds", NULL, &m->sync_hist);
    if (p.failed) {
        free(p.buf);
        return -ENOMEM;
    }
    *text = p.buf;
    *len = p.len;
    return 0;
}

static void
on_request(void *arg, const char *method, const char *path, struct agt_http_answer *a)
{
    struct agt_metrics *m = arg;
    struct agt *agent = m->agt;
    Drover__InstanceReport **reps = NULL;
    size_t n = 0, len = 0;
    uint64_t digest, *cpu = NULL;
    char *text = NULL;
    int rc;

    a->type = "text/plain";
    if (strcmp(path, "/metrics") != 0) {
        a->status = 404;
        a->body = (char *)"not found: try /metrics\n";
        a->len = strlen(a->body);
        return;
    }
    if (strcmp(method, "GET") != 0) {
        a->status = 405;
        a->body = (char *)"method not allowed\n";
        a->len = strlen(a->body);
        a->extra = "Allow: GET";
        return;
    }
    a->status = 500;
    a->body = (char *)"out of memory\n";
    a->len = strlen(a->body);
    if (agt_reports(agent, &reps, &n, &digest) < 0 || (cpu = calloc(n + 1, sizeof(*cpu))) == NULL) {
        agt_reports_free(reps, n);
        return;
    }
    for (size_t k = 0; k < n; k++) {
        const struct agt_inst *i = agt_inst_by_id(agent, reps[k]->id);

        cpu[k] = i != NULL ? agt_inst_cpu_usec(i) : 0;
    }
    rc = agt_metrics_render(m, reps, cpu, n, &text, &len);
    agt_reports_free(reps, n);
    free(cpu);
    if (rc < 0)
        return;
    a->status = 200;
    a->type = "text/plain; version=0.0.4; charset=utf-8";
    a->body = a->owned = text;
    a->len = len;
}

int
agt_metrics_start(struct agt_metrics *m, const char *listen)
{
    int rc = 0;

    if (listen[0] == '\0')
        return 0;
    if (!listen_is_loopback(listen))
        log_warn("metrics_exposed", "metrics=%s", listen);
    m->srv = agt_http_start(agt_loop(m->agt), listen, on_request, m, &rc);
    if (m->srv == NULL) {
        log_error("metrics_failed", "metrics=%s err=%s", listen,
                  log_q(rc == -EINVAL ? "want HOST:PORT" : strerror(-rc)));
        return 0; /* not fatal: the agent runs its instances without it */
    }
    log_info("metrics_listening", "metrics=%s", listen);
    return 0;
}

void
agt_metrics_stop(struct agt_metrics *m)
{
    agt_http_stop(m->srv);
    m->srv = NULL;
}
