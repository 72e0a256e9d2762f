/* SPDX-License-Identifier: MIT */
/*
 * signals.c: signals as bytes on a pipe, for verbs that poll (run, endpoints
 * --watch): the handler only writes the signal number, and the poll loop reads
 * it with everything else.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static int sigfd[2] = {-1, -1};

static void
on_signal(int sig)
{
    unsigned char b = (unsigned char)sig;
    int e = errno;

    (void)!write(sigfd[1], &b, 1);
    errno = e;
}

int
cli_signal_pipe(const int *sigs, size_t n)
{
    struct sigaction sa;
    size_t i;

    if (sigfd[0] < 0) {
        if (pipe(sigfd) < 0)
            return -errno;
        fcntl(sigfd[0], F_SETFL, O_NONBLOCK);
        fcntl(sigfd[1], F_SETFL, O_NONBLOCK);
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (i = 0; i < n; i++)
        sigaction(sigs[i], &sa, NULL);
    signal(SIGPIPE, SIG_IGN); /* a reader that went away is seen as EPIPE */
    return sigfd[0];
}
