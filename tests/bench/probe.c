/* SPDX-License-Identifier: MIT */
/*
 * probe.c: bench-probe, the stopwatch of the scale-to-listening figures.
 *
 *   bench-probe now                       CLOCK_MONOTONIC in ns (a start mark)
 *   bench-probe up SINCE LO HI N MS       wait until N ports of LO..HI accept
 *   bench-probe down SINCE LO HI MS       wait until no port of LO..HI accepts
 *   bench-probe watch LO HI               count accepting ports until SIGTERM
 *
 * up and down print ms=ELAPSED since SINCE (a value from `now`, taken just
 * before the command being timed was started) and exit 0, or exit 1 after
 * MS. watch prints min= (the least count seen once the first port accepted),
 * max= and rounds= when told to stop: the capacity during a rolling deploy.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "probe.h"

static volatile sig_atomic_t stop;

static void
on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static int
watch(unsigned lo, unsigned hi)
{
    unsigned min = ~0u, max = 0, rounds = 0;
    struct timespec pause = {.tv_nsec = 5000000};
    struct sigaction sa = {.sa_handler = on_term};

    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    while (!stop) {
        unsigned n = 0;

        for (unsigned p = lo; p <= hi && !stop; p++)
            n += probe_accepts(p);
        if (stop)
            break;
        rounds++;
        if (n > max)
            max = n;
        if (max > 0 && n < min)
            min = n;
        nanosleep(&pause, NULL);
    }
    printf("min=%u max=%u rounds=%u\n", min == ~0u ? 0 : min, max, rounds);
    return 0;
}

int
main(int argc, char **argv)
{
    unsigned long long since;
    uint64_t t;

    if (argc == 2 && strcmp(argv[1], "now") == 0) {
        printf("%llu\n", (unsigned long long)probe_now_ns());
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "watch") == 0)
        return watch((unsigned)atoi(argv[2]), (unsigned)atoi(argv[3]));
    if (argc == 7 && strcmp(argv[1], "up") == 0) {
        since = strtoull(argv[2], NULL, 10);
        t = probe_wait((unsigned)atoi(argv[3]), (unsigned)atoi(argv[4]), (unsigned)atoi(argv[5]),
                       true, (unsigned)atoi(argv[6]));
    } else if (argc == 6 && strcmp(argv[1], "down") == 0) {
        since = strtoull(argv[2], NULL, 10);
        t = probe_wait((unsigned)atoi(argv[3]), (unsigned)atoi(argv[4]), 0, false,
                       (unsigned)atoi(argv[5]));
    } else {
        fputs("usage: bench-probe now | up SINCE LO HI N MS | down SINCE LO HI MS | watch LO HI\n",
              stderr);
        return 2;
    }
    if (t == 0) {
        printf("ms=timeout\n");
        return 1;
    }
    printf("ms=%.1f\n", (double)(t - since) / 1e6);
    return 0;
}
