/* SPDX-License-Identifier: MIT */
/*
 * spawn.c: bench-spawn, the limit beside scale-to-listening: a bare
 * posix_spawn loop, nothing but the kernel between the command and the
 * listening processes.
 *
 *   bench-spawn LISTENER N BASE
 *
 * Starts N copies of LISTENER with PORT=BASE+i (in one new process group),
 * waits until all N accept, then sends each SIGTERM and waits until every
 * port refuses and every child is reaped. Prints start_ms= and stop_ms=;
 * exits 1 if they do not all come up or go down within 60 s (the group is
 * killed either way).
 */
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "probe.h"

#define TIMEOUT_MS 60000

int
main(int argc, char **argv)
{
    unsigned n, base, started = 0;
    pid_t *pids, pgid = 0;
    uint64_t t0, tup, t1, tdown;
    int rc = 1;

    if (argc != 4 || (n = (unsigned)atoi(argv[2])) < 1 || n > 20000 ||
        (base = (unsigned)atoi(argv[3])) < 1 || base + n > 65536) {
        fputs("usage: bench-spawn LISTENER N BASE\n", stderr);
        return 2;
    }
    if ((pids = calloc(n, sizeof(*pids))) == NULL)
        return 2;
    t0 = probe_now_ns();
    for (unsigned i = 0; i < n; i++) {
        char port[32], *env[] = {port, NULL}, *av[] = {argv[1], NULL};
        posix_spawnattr_t at;

        snprintf(port, sizeof(port), "PORT=%u", base + i);
        posix_spawnattr_init(&at);
        posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
        posix_spawnattr_setpgroup(&at, pgid);
        if (posix_spawn(&pids[i], argv[1], NULL, &at, av, env) != 0) {
            perror("bench-spawn: posix_spawn");
            posix_spawnattr_destroy(&at);
            goto out;
        }
        posix_spawnattr_destroy(&at);
        if (pgid == 0)
            pgid = pids[i];
        started++;
    }
    if ((tup = probe_wait(base, base + n - 1, n, true, TIMEOUT_MS)) == 0) {
        fputs("bench-spawn: not every listener came up\n", stderr);
        goto out;
    }
    t1 = probe_now_ns();
    for (unsigned i = 0; i < n; i++)
        kill(pids[i], SIGTERM);
    for (unsigned i = 0; i < n; i++)
        waitpid(pids[i], NULL, 0);
    if ((tdown = probe_wait(base, base + n - 1, 0, false, TIMEOUT_MS)) == 0) {
        fputs("bench-spawn: some port still accepts\n", stderr);
        goto out;
    }
    started = 0;
    printf("start_ms=%.1f\nstop_ms=%.1f\n", (double)(tup - t0) / 1e6, (double)(tdown - t1) / 1e6);
    rc = 0;
out:
    if (started > 0 && pgid > 0) {
        kill(-pgid, SIGKILL);
        while (wait(NULL) > 0)
            ;
    }
    free(pids);
    return rc;
}
