/* SPDX-License-Identifier: MIT */
/*
 * open.c: what every part of the load program needs: the clock, and reading
 * a process's CPU time and memory from /proc.
 *
 * Replies are opened with wire_open_key() (common/wire.c): the same
 * authentication as wire_open(), without replay state, since one process
 * hosting hundreds of agents sees the controller's counter reordered across
 * their sockets far past the replay window. Replies come over loopback from
 * the controller this run started, so nothing is lost by not checking their
 * freshness.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <time.h>

#include <nanomsg/nn.h>

#include "bench.h"
#include "dialcheck.h"

uint64_t
bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int64_t
bench_cpu_ms(pid_t pid)
{
    char path[64], buf[2048], *p;
    unsigned long long ut = 0, st = 0;
    long hz = sysconf(_SC_CLK_TCK);
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command may hold spaces and parentheses: fields start after the
     * last ')'. utime and stime are fields 14 and 15. */
    if ((p = strrchr(buf, ')')) == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (int64_t)((ut + st) * 1000 / (unsigned long long)(hz > 0 ? hz : 100));
}

int64_t
bench_rss_kib(pid_t pid)
{
    char path[64], line[256];
    long long kib = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %lld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

void
bench_raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

void
bench_source_url(const char *url, unsigned host, char *out, size_t outsz)
{
    if (strncmp(url, "tcp://127.", 10) == 0 && strchr(url, ';') == NULL)
        snprintf(out, outsz, "tcp://127.0.0.%u;%s", 2 + host % 250, url + 6);
    else
        snprintf(out, outsz, "%s", url);
}

const char *
bench_dial_why(int rc)
{
    if (rc == -EADDRINUSE || rc == -EADDRNOTAVAIL)
        return "no free ephemeral port: net.ipv4.ip_local_port_range, TIME_WAIT of earlier runs";
    if (rc == -EMFILE || rc == -ENFILE)
        return "no free descriptor: RLIMIT_NOFILE";
    return "local address";
}

int
bench_dial(int s, const char *url, unsigned wait_ms)
{
    uint64_t end = bench_now_ns() + (uint64_t)wait_ms * 1000000;
    unsigned delay_ms = 10;
    int rc, eid;

    while ((rc = dial_check(url)) < 0) {
        if (bench_now_ns() > end) {
            fprintf(stderr, "bench: cannot dial %s: %s (%s)\n", url, strerror(-rc),
                    bench_dial_why(rc));
            return rc;
        }
        usleep(delay_ms * 1000);
        delay_ms = delay_ms < 1000 ? delay_ms * 2 : 1000;
    }
    if ((eid = nn_connect(s, url)) < 0)
        return -nn_errno();
    return eid;
}
