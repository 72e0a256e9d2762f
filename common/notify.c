/* SPDX-License-Identifier: MIT */
/*
 * notify.c: the sd_notify protocol without libsystemd.
 *
 * systemd gives a Type=notify service the path of a datagram socket in
 * NOTIFY_SOCKET (a file path, or an abstract name when it starts with '@')
 * and reads newline-separated VAR=VALUE states from it: READY=1 when the
 * service serves, STOPPING=1 when it begins to stop, WATCHDOG=1 at least
 * every WATCHDOG_USEC when WatchdogSec= is set (and WATCHDOG_PID, when set,
 * names the process meant). That is the whole protocol a daemon needs, so it
 * is spoken here in a few lines rather than linking libsystemd, which would
 * pull systemd into every build and every package.
 *
 * The pings come from a uv_timer on the daemon's own loop: if the loop
 * wedges, the pings stop and systemd restarts the service. A send never
 * blocks (SOCK_NONBLOCK): a full socket loses a ping, not the loop.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "env.h"
#include "log.h"
#include "notify.h"

static struct sockaddr_un notify_addr;
static socklen_t notify_addrlen; /* 0: no socket */
static uint64_t watchdog_ms;
static uv_timer_t watchdog_timer;
static int watchdog_on;

uint64_t
notify_parse_watchdog(const char *usec, const char *pid, long self)
{
    uint64_t us, p;

    if (usec == NULL || env_parse_u64(usec, 1, UINT64_MAX / 2, &us) < 0)
        return 0;
    if (pid != NULL && (env_parse_u64(pid, 1, UINT32_MAX, &p) < 0 || (long)p != self))
        return 0;
    /* Half the interval, at least 1 ms. */
    return us / 2000 > 0 ? us / 2000 : 1;
}

void
notify_init(void)
{
    const char *path = env_raw("NOTIFY_SOCKET");
    size_t len = path ? strlen(path) : 0;

    watchdog_ms =
        notify_parse_watchdog(env_raw("WATCHDOG_USEC"), env_raw("WATCHDOG_PID"), (long)getpid());
    if (len > 1 && len < sizeof(notify_addr.sun_path) && (path[0] == '/' || path[0] == '@')) {
        memset(&notify_addr, 0, sizeof notify_addr);
        notify_addr.sun_family = AF_UNIX;
        memcpy(notify_addr.sun_path, path, len);
        if (path[0] == '@')
            notify_addr.sun_path[0] = '\0'; /* abstract namespace */
        notify_addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    } else if (len > 0) {
        log_warn("notify_socket", "reason=%s", log_q("NOTIFY_SOCKET is not a usable path"));
    }
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
}

int
notify_send(const char *state)
{
    int fd, rc = 0;

    if (notify_addrlen == 0)
        return 0;
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&notify_addr,
               notify_addrlen) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

static void
on_watchdog(uv_timer_t *t)
{
    notify_send("WATCHDOG=1");
}

int
notify_watchdog_start(uv_loop_t *loop)
{
    int rc;

    if (watchdog_ms == 0 || notify_addrlen == 0 || watchdog_on)
        return 0;
    if ((rc = uv_timer_init(loop, &watchdog_timer)) < 0)
        return rc;
    watchdog_on = 1;
    notify_send("WATCHDOG=1");
    log_info("watchdog", "interval_ms=%llu", (unsigned long long)watchdog_ms);
    return uv_timer_start(&watchdog_timer, on_watchdog, watchdog_ms, watchdog_ms);
}

void
notify_watchdog_stop(void)
{
    if (!watchdog_on)
        return;
    watchdog_on = 0;
    uv_close((uv_handle_t *)&watchdog_timer, NULL);
}

uint64_t
notify_watchdog_ms(void)
{
    return notify_addrlen ? watchdog_ms : 0;
}
