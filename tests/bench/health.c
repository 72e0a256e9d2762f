/* SPDX-License-Identifier: MIT */
/*
 * health.c: bench-health, what the agent's health checks (node-agent/
 * health.c) cost at N instances, with the listen watch (one sock_diag dump
 * per tick, one connect to confirm) and without it (a connect per instance
 * every 100 ms, as before), in the same run.
 *
 *   bench-health LISTENER N BASE MODE     MODE: watch | connect
 *
 * N TCP checks with min_healthy 1 s start against ports BASE..BASE+N-1;
 * 200 ms later N LISTENER processes start listening there (posix_spawn;
 * the spawn's own CPU is left out). Once every check has passed, prints the
 * checker's CPU (this process: user + system) and the listeners' (their
 * accepts), in ms:
 *
 *   checks_ms=...  (wall, from the start to the last pass)
 *   checker_cpu_ms=...
 *   listeners_cpu_ms=...
 */
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agt.h"

static unsigned n, base, passed;
static const char *listener;
static pid_t *pids;
static double spawn_cpu_ms;

static double
cpu_ms(int who)
{
    struct rusage ru;

    getrusage(who, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static void
on_healthy(void *arg)
{
    (void)arg;
    passed++;
}

static void
on_spawn(uv_timer_t *t)
{
    double c0 = cpu_ms(RUSAGE_SELF);

    for (unsigned i = 0; i < n; i++) {
        char port[32], *env[] = {port, NULL}, *av[] = {(char *)listener, NULL};

        snprintf(port, sizeof(port), "PORT=%u", base + i);
        if (posix_spawn(&pids[i], listener, NULL, NULL, av, env) != 0)
            pids[i] = 0;
    }
    spawn_cpu_ms = cpu_ms(RUSAGE_SELF) - c0;
    uv_close((uv_handle_t *)t, NULL);
}

static void
on_check(uv_timer_t *t)
{
    if (passed == n)
        uv_close((uv_handle_t *)t, NULL);
}

int
main(int argc, char **argv)
{
    uv_loop_t loop;
    uv_timer_t spawner, done;
    struct agt_health_watch *hw;
    struct agt_spec *specs;
    uint64_t t0;
    double c0;

    if (argc != 5 || (n = (unsigned)atoi(argv[2])) < 1 || n > 20000 ||
        (base = (unsigned)atoi(argv[3])) < 1 || base + n > 65536 ||
        (strcmp(argv[4], "watch") != 0 && strcmp(argv[4], "connect") != 0)) {
        fputs("usage: bench-health LISTENER N BASE watch|connect\n", stderr);
        return 2;
    }
    listener = argv[1];
    if ((pids = calloc(n, sizeof(*pids))) == NULL || (specs = calloc(n, sizeof(*specs))) == NULL)
        return 2;
    uv_loop_init(&loop);
    if ((hw = agt_health_watch_new(&loop, strcmp(argv[4], "watch") == 0)) == NULL)
        return 2;
    uv_update_time(&loop);
    t0 = uv_hrtime();
    c0 = cpu_ms(RUSAGE_SELF);
    for (unsigned i = 0; i < n; i++) {
        specs[i].health = AGT_HEALTH_TCP;
        specs[i].port = (uint16_t)(base + i);
        specs[i].min_healthy_ms = 1000;
        if (!agt_health_start(hw, &specs[i], "127.0.0.1", on_healthy, NULL)) {
            fputs("bench-health: cannot start a check\n", stderr);
            return 1;
        }
    }
    uv_timer_init(&loop, &spawner);
    uv_timer_start(&spawner, on_spawn, 200, 0);
    uv_timer_init(&loop, &done);
    uv_timer_start(&done, on_check, 50, 50);
    uv_run(&loop, UV_RUN_DEFAULT);
    printf("checks_ms=%.1f\nchecker_cpu_ms=%.1f\n", (double)(uv_hrtime() - t0) / 1e6,
           cpu_ms(RUSAGE_SELF) - c0 - spawn_cpu_ms);
    for (unsigned i = 0; i < n; i++)
        if (pids[i] > 0)
            kill(pids[i], SIGTERM);
    for (unsigned i = 0; i < n; i++)
        if (pids[i] > 0)
            waitpid(pids[i], NULL, 0);
    printf("listeners_cpu_ms=%.1f\n", cpu_ms(RUSAGE_CHILDREN));
    uv_loop_close(&loop);
    agt_health_watch_free(hw);
    free(specs);
    free(pids);
    return 0;
}
