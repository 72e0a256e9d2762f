/* SPDX-License-Identifier: MIT */
/*
 * dialcheck.h: can nanomsg dial a tcp:// URL right now without aborting?
 * (dialcheck.c says why this is needed.)
 */
#ifndef DROVER_DIALCHECK_H
#define DROVER_DIALCHECK_H

#include <stdbool.h>

/* Do what nanomsg's TCP dialer does before connect(): a socket of the
 * URL's family, SO_REUSEADDR, bind() to the URL's local interface (the part
 * before ';', else any) with port 0, then close it. 0 when that works, or
 * when the URL is not tcp:// (nothing to check); else -errno: -EMFILE or
 * -ENFILE (no descriptor), -EADDRINUSE (no free local port), -EADDRNOTAVAIL
 * (no such local address), -EINVAL (not a URL this can read). */
int dial_check(const char *url);

/* Are fewer than headroom (at most 256) descriptors left below
 * RLIMIT_NOFILE (or the system's limit)? Takes that many and gives them
 * back. False when it cannot tell (no descriptor 2 to copy). */
bool fds_low(unsigned headroom);

#endif
