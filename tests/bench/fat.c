/* SPDX-License-Identifier: MIT */
/*
 * fat.c: bench-fat, whether a spawn's cost grows with the spawner's memory.
 *
 *   bench-fat PROGRAM N MIB...
 *
 * For each size, the process first grows by MIB mebibytes of touched
 * memory (as an agent does with its instances, buffers and caches), then
 * starts PROGRAM (say /bin/true) N times and waits for each: with the
 * agent's own spawn (agt_spawn_sync, node-agent/spawn.c: posix_spawn,
 * clone(CLONE_VM | CLONE_VFORK)) and with fork() + execve (what libuv's
 * uv_spawn does). Prints the mean time per start, in microseconds, until
 * the child has exec'd and exited:
 *
 *   mib=64 spawn_us=... fork_us=...
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agt.h"

static double
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

int
main(int argc, char **argv)
{
    char *no_env[] = {NULL}, *av[2];
    uv_stdio_container_t io[3];
    struct agt_spawn_req r;
    int n;

    if (argc < 4 || (n = atoi(argv[2])) < 1) {
        fputs("usage: bench-fat PROGRAM N MIB...\n", stderr);
        return 2;
    }
    av[0] = argv[1];
    av[1] = NULL;
    memset(&r, 0, sizeof r);
    memset(io, 0, sizeof io);
    for (int k = 0; k < 3; k++)
        io[k].flags = UV_IGNORE;
    r.file = argv[1];
    r.argv = av;
    r.envp = no_env;
    r.stdio = io;
    r.nstdio = 3;
    for (int a = 3; a < argc; a++) {
        size_t mib = (size_t)atol(argv[a]);
        char *fat = mib ? malloc(mib << 20) : NULL;
        double t, spawn_us = 0, fork_us = 0;

        if (mib && !fat)
            return 1;
        if (fat)
            memset(fat, 1, mib << 20); /* touched: resident, and copy-on-write for fork */
        for (int k = 0; k < n; k++) {
            int pid = 0;

            t = now_us();
            if (agt_spawn_sync(&r, &pid) < 0)
                return 1;
            waitpid(pid, NULL, 0);
            spawn_us += now_us() - t;
            t = now_us();
            if ((pid = fork()) == 0) {
                execve(argv[1], av, no_env);
                _exit(127);
            }
            waitpid(pid, NULL, 0);
            fork_us += now_us() - t;
        }
        printf("mib=%zu spawn_us=%.0f fork_us=%.0f\n", mib, spawn_us / n, fork_us / n);
        fflush(stdout);
        free(fat);
    }
    return 0;
}
