/* SPDX-License-Identifier: MIT */
/*
 * probe.c: is anything listening at the controller's address?
 *
 * nanomsg's connect never fails: it retries in the background, and a
 * request to an address where nothing listens simply goes unanswered until
 * DROVER_TIMEOUT_MS (10 s by default) runs out. A stopped controller then
 * cost every command that long, and said "timed out" where the truth is
 * "connection refused". So before its first request the CLI makes one plain
 * non-blocking TCP connect, bounded by CLI_PROBE_MS: a refusal (RST) or an
 * unreachable host is a clear answer within milliseconds and is said at
 * once; a connect that succeeds is closed and the request goes through
 * nanomsg as before, with the whole DROVER_TIMEOUT_MS for a controller that
 * accepts and does not answer. A probe that itself times out (a firewall
 * dropping packets, a slow link) proves nothing and is not reported: the
 * request then waits its normal timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "util.h"

int
cli_probe_host(const char *endpoint_host, char *out, size_t outsz)
{
    const char *h = strrchr(endpoint_host, ';'); /* "eth0;10.0.0.1": the part we reach */
    size_t n;

    h = h != NULL ? h + 1 : endpoint_host;
    n = strlen(h);
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
        h++;
        n -= 2;
    }
    if (n == 0 || n >= outsz || memchr(h, '*', n) != NULL)
        return -EINVAL;
    memcpy(out, h, n);
    out[n] = '\0';
    return 0;
}

/* One address: 0 connected, a negative errno, or -ETIMEDOUT at deadline. */
static int
probe_one(const struct addrinfo *ai, uint64_t deadline)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    int rc, soerr = 0;
    socklen_t len = sizeof(soerr);

    if (fd < 0)
        return -errno;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
        rc = 0;
        goto out;
    }
    if (errno != EINPROGRESS) {
        rc = -errno;
        goto out;
    }
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        uint64_t now = mono_ms();

        if (now >= deadline) {
            rc = -ETIMEDOUT;
            goto out;
        }
        rc = poll(&p, 1, (int)(deadline - now));
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0) {
            rc = -errno;
            goto out;
        }
        if (rc > 0)
            break;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        rc = -errno;
    else
        rc = -soerr;
out:
    close(fd);
    return rc;
}

int
cli_probe_tcp(const char *host, uint16_t port, unsigned timeout_ms)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    uint64_t deadline = mono_ms() + timeout_ms;
    char serv[8];
    int rc = -EHOSTUNREACH;

    snprintf(serv, sizeof(serv), "%u", (unsigned)port);
    if (getaddrinfo(host, serv, &hints, &res) != 0)
        return -EADDRNOTAVAIL; /* not ours to judge: nanomsg resolves it itself */
    /* The first address that answers decides; a refusal from one of several
     * (IPv6 and IPv4 for "localhost") is only the answer if all refuse. */
    for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        rc = probe_one(ai, deadline);
        if (rc == 0 || rc == -ETIMEDOUT)
            break;
    }
    freeaddrinfo(res);
    return rc;
}
