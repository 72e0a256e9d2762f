/* SPDX-License-Identifier: MIT */
/*
 * dialcheck.c: ask before nanomsg dials.
 *
 * nanomsg 1.1.5 (Debian 12's) aborts the whole process when a TCP dial
 * fails in bind(). nn_ctcp_start_connecting() opens a socket, binds it to
 * the local interface with port 0 (the kernel picks an ephemeral port) and
 * only then connects. When that bind fails, as it does with EADDRINUSE once
 * every ephemeral port of the address is taken (TIME_WAIT included: bind()
 * never reuses those), it schedules a retry without closing the socket, and
 * the retry's nn_usock_start() finds the socket still STARTING:
 * "Assertion failed: self->state == NN_USOCK_STATE_IDLE || self->state ==
 * NN_USOCK_STATE_BEING_ACCEPTED (src/aio/usock_posix.inc:195)". A failed
 * socket() (EMFILE, ENFILE) and a refused or failed connect() are retried
 * cleanly; the failed bind is the one path that aborts.
 *
 * So a program hands nanomsg a tcp:// URL to dial only after dial_check()
 * did the same socket() and bind() itself and they worked; when they did
 * not, it logs why and tries again later. The check and nanomsg's own bind
 * race with every other process on the machine, so a caller that must not
 * abort also keeps nanomsg from retrying on its own (a long
 * NN_RECONNECT_IVL) and redials itself, checking again (node-agent/conn.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dialcheck.h"

int
dial_check(const char *url)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    char iface[64] = "";
    const char *rest, *semi, *colon;
    socklen_t len;
    int fd, one = 1, rc = 0;

    if (strncmp(url, "tcp://", 6) != 0)
        return 0;
    rest = url + 6;
    colon = strrchr(rest, ':');
    if (colon == NULL)
        return -EINVAL;
    if ((semi = strchr(rest, ';')) != NULL) {
        if ((size_t)(semi - rest) >= sizeof(iface))
            return -EINVAL;
        memcpy(iface, rest, (size_t)(semi - rest));
        iface[semi - rest] = '\0';
        rest = semi + 1;
    }
    /* The family follows the remote host, as nanomsg's does (IPv4 unless
     * the host is a bracketed IPv6 literal). */
    if (rest[0] == '[') {
        in6->sin6_family = AF_INET6;
        in6->sin6_addr = in6addr_any;
        len = sizeof(*in6);
        if (iface[0] != '\0' && strcmp(iface, "*") != 0 &&
            inet_pton(AF_INET6, iface, &in6->sin6_addr) != 1)
            return -EINVAL;
    } else {
        in4->sin_family = AF_INET;
        in4->sin_addr.s_addr = htonl(INADDR_ANY);
        len = sizeof(*in4);
        if (iface[0] != '\0' && strcmp(iface, "*") != 0 &&
            inet_pton(AF_INET, iface, &in4->sin_addr) != 1)
            return -EINVAL;
    }
    if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return -errno;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *)&ss, len) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

bool
fds_low(unsigned headroom)
{
    int fds[256], n = 0, err = 0;

    if (headroom > 256)
        headroom = 256;
    /* Take headroom descriptors, then give them back. */
    while ((unsigned)n < headroom) {
        int fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 0);

        if (fd < 0) {
            err = errno;
            break;
        }
        fds[n++] = fd;
    }
    while (n > 0)
        close(fds[--n]);
    return err == EMFILE || err == ENFILE;
}
