/* SPDX-License-Identifier: MIT */
/*
 * fdwatch.c: say so when the controller runs out of file descriptors.
 *
 * Every agent holds one connection to the controller (two with its
 * notifications), so a cluster outgrows a low RLIMIT_NOFILE quietly:
 * nanomsg keeps retrying accept() and new agents simply never register.
 * Once a second (from the node tick) the controller asks whether it could
 * still open FD_HEADROOM descriptors (fds_low: that many dup()s and closes),
 * and logs event=descriptors_low once when they are, event=descriptors_ok
 * once they are free again. It never stops serving either way.
 */
#include <sys/resource.h>

#include "ctl.h"
#include "dialcheck.h"
#include "log.h"

#define FD_HEADROOM 16
#define FD_CHECK_MS 1000

void
ctl_fdwatch_tick(uint64_t now)
{
    static bool low;
    static uint64_t next;
    struct rlimit rl = {0};
    bool l;

    if (now < next)
        return;
    next = now + FD_CHECK_MS;
    l = fds_low(FD_HEADROOM);
    if (l == low)
        return;
    low = l;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (l)
        log_error("descriptors_low", "limit=%llu free_below=%d hint=%s",
                  (unsigned long long)rl.rlim_cur, FD_HEADROOM,
                  log_q("agents and clients cannot connect: raise RLIMIT_NOFILE (systemd: "
                        "LimitNOFILE=; shell: ulimit -n)"));
    else
        log_info("descriptors_ok", "limit=%llu", (unsigned long long)rl.rlim_cur);
}
