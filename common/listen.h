/* SPDX-License-Identifier: MIT */
/*
 * listen.h: HOST:PORT listen addresses of drover's HTTP servers (the
 * controller's API and metrics, the agent's metrics page).
 */
#ifndef DROVER_LISTEN_H
#define DROVER_LISTEN_H

#include <stdbool.h>
#include <sys/socket.h>

/* Is HOST of HOST:PORT a loopback address (127.x, localhost, [::1])? */
bool listen_is_loopback(const char *listen);

/* HOST:PORT (HOST an IPv4 address, [v6] or localhost) into ss; *v6 says
 * which family. 0 or -EINVAL. */
int listen_parse(const char *listen, struct sockaddr_storage *ss, bool *v6);

#endif
