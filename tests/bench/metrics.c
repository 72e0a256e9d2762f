/* SPDX-License-Identifier: MIT */
/*
 * bench-metrics: what one scrape of an agent's /metrics costs with 1,000
 * instances (the limit: 10 ms). Each round does what the agent's
 * handler does: build the instance reports (malloc'd, as agt_reports makes
 * them) and write the exposition text (agt_metrics_render); the HTTP
 * server's part is one buffer handed to libmicrohttpd. Prints the median,
 * the 99th percentile and the worst round (wall clock), the mean CPU time
 * of a round, and the text's size.
 *
 *   build/bin/bench-metrics [INSTANCES] [ROUNDS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agt.h"

static double
now_ms_f(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double
cpu_ms_f(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int
cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000;
    int rounds = argc > 2 ? atoi(argv[2]) : 300;
    double *t = calloc((size_t)rounds, sizeof(*t));
    char(*names)[32] = calloc(n, 32), (*apps)[32] = calloc(n, 32);
    uint64_t *cpu = calloc(n, sizeof(*cpu));
    struct agt_metrics *m = agt_metrics_new(NULL); /* counters only: no agent, no server */
    size_t bytes = 0;
    double cpu0 = cpu_ms_f();

    if (t == NULL || names == NULL || apps == NULL || cpu == NULL || m == NULL || rounds < 1)
        return 1;
    for (size_t k = 0; k < n; k++) {
        snprintf(apps[k], 32, "app-%zu", k % 40);
        snprintf(names[k], 32, "%s.%zu", k % 3 ? "web" : "worker", k / 40 + 1);
        cpu[k] = 1234567 * (k + 1);
    }
    for (int r = 0; r < rounds; r++) {
        Drover__InstanceReport **reps;
        double t0 = now_ms_f();
        char *text = NULL;
        size_t len = 0;

        reps = calloc(n + 1, sizeof(*reps));
        for (size_t k = 0; k < n; k++) {
            reps[k] = malloc(sizeof(*reps[k]));
            drover__instance_report__init(reps[k]);
            reps[k]->id = k + 1;
            reps[k]->app = apps[k];
            reps[k]->name = names[k];
            reps[k]->state =
                k % 50 ? DROVER__INSTANCE_STATE__ST_UP : DROVER__INSTANCE_STATE__ST_STARTING;
            reps[k]->memory_bytes = 50000000 + k * 4096;
            reps[k]->restarts = (uint32_t)(k % 7);
        }
        if (agt_metrics_render(m, reps, cpu, n, &text, &len) < 0)
            return 1;
        agt_reports_free(reps, n);
        t[r] = now_ms_f() - t0;
        bytes = len;
        free(text);
    }
    cpu0 = (cpu_ms_f() - cpu0) / rounds;
    qsort(t, (size_t)rounds, sizeof(*t), cmp);
    /* Wall time includes waiting for a CPU on a busy machine; CPU time not. */
    printf("agent /metrics with %zu instances: median %.3f ms, p99 %.3f ms, worst %.3f ms wall; "
           "%.3f ms CPU per scrape (limit 10 ms); %zu bytes, %d rounds\n",
           n, t[rounds / 2], t[(rounds * 99) / 100], t[rounds - 1], cpu0, bytes, rounds);
    free(t);
    free(names);
    free(apps);
    free(cpu);
    agt_metrics_free(m);
    return 0;
}
