/* SPDX-License-Identifier: MIT */
/*
 * cgspawn.c: what placing a process in its cgroups costs per start, the
 * agent's way (node-agent/spawn.c and drover-exec), both ways in one run:
 *   at_clone  clone3 CLONE_INTO_CGROUP into the v2 cgroup, drover-exec
 *             joins only the v1 memory one (what the agent does now)
 *   joined    posix_spawn, drover-exec writes both cgroup.procs (before)
 * Usage: bench-cgspawn N HELPER V2DIR [V1MEMDIR]. Each start is drover-exec
 * running "exec /bin/true" in a fresh cgroup of its own (made, joined,
 * waited for, removed), alternating the two ways in rounds of 50 so a load
 * change on the machine hits both alike. Prints the mean per start of each,
 * in microseconds. Needs root.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

static double
one(const char *helper, const char *v2, const char *v1, int k, int at_clone)
{
    char d2[PATH_MAX], d1[PATH_MAX], p2[PATH_MAX + 16], p1[PATH_MAX + 16];
    char *argv[12], *join[12], *no_env[] = {NULL};
    char o_exec[] = "--exec", o_cg[] = "--cgroup", o_end[] = "--", script[] = "exec /bin/true";
    uv_stdio_container_t io[3];
    struct agt_spawn_req r;
    int n = 0, m = 0, pid = 0, status = -1;
    double t0, t;

    snprintf(d2, sizeof d2, "%s/i%d", v2, k);
    snprintf(p2, sizeof p2, "%s/cgroup.procs", d2);
    snprintf(d1, sizeof d1, "%s/i%d", v1 ? v1 : "", k);
    snprintf(p1, sizeof p1, "%s/cgroup.procs", d1);
    t0 = now_us();
    if (mkdir(d2, 0755) < 0 || (v1 && mkdir(d1, 0755) < 0)) {
        perror("mkdir");
        exit(1);
    }
    argv[n++] = join[m++] = (char *)helper;
    argv[n++] = join[m++] = o_exec;
    join[m++] = o_cg;
    join[m++] = p2;
    if (v1) {
        argv[n++] = join[m++] = o_cg;
        argv[n++] = join[m++] = p1;
    }
    argv[n++] = join[m++] = o_end;
    argv[n++] = join[m++] = script;
    argv[n] = join[m] = NULL;
    for (int s = 0; s < 3; s++)
        io[s].flags = UV_IGNORE;
    memset(&r, 0, sizeof r);
    r.file = helper;
    r.argv = at_clone ? argv : join;
    r.envp = no_env;
    r.cwd = "/";
    r.stdio = io;
    r.nstdio = 3;
    r.cgroup = at_clone ? d2 : NULL;
    r.argv_join = join;
    if (agt_spawn_sync(&r, &pid) < 0 || waitpid(pid, &status, 0) != pid || status != 0) {
        fprintf(stderr, "bench-cgspawn: a start failed (status %d)\n", status);
        exit(1);
    }
    if (rmdir(d2) < 0 || (v1 && rmdir(d1) < 0)) {
        perror("rmdir");
        exit(1);
    }
    t = now_us() - t0;
    return t;
}

int
main(int argc, char **argv)
{
    double sum[2] = {0, 0};
    uint64_t placed, joined;
    int n, last;

    if (argc < 4 || (n = atoi(argv[1])) <= 0) {
        fprintf(stderr, "usage: bench-cgspawn N HELPER V2DIR [V1MEMDIR]\n");
        return 2;
    }
    for (int k = 0; k < n; k += 50)
        for (int way = 0; way < 2; way++)
            for (int i = k; i < k + 50 && i < n; i++)
                sum[way] += one(argv[2], argv[3], argc > 4 ? argv[4] : NULL, i, way == 0);
    agt_spawn_placements(&placed, &joined, &last);
    printf("at_clone_us=%.0f joined_us=%.0f placed_at_clone=%llu refused=%llu\n", sum[0] / n,
           sum[1] / n, (unsigned long long)placed, (unsigned long long)joined);
    return placed == (uint64_t)n ? 0 : 1;
}
