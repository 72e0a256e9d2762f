/* SPDX-License-Identifier: MIT */
/*
 * listen.c: HOST:PORT listen addresses, shared by the controller's HTTP
 * server (httpd.c) and the agent's metrics page (node-agent/scrape.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "listen.h"

bool
listen_is_loopback(const char *listen)
{
    return strncmp(listen, "127.", 4) == 0 || strncmp(listen, "localhost:", 10) == 0 ||
           strncmp(listen, "[::1]:", 6) == 0;
}

int
listen_parse(const char *listen, struct sockaddr_storage *ss, bool *v6)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    char *end = NULL;
    unsigned long port;
    size_t n;

    if (colon == NULL || (n = (size_t)(colon - listen)) == 0 || n >= sizeof(host))
        return -EINVAL;
    memcpy(host, listen, n);
    host[n] = '\0';
    port = strtoul(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || port > 65535)
        return -EINVAL;
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    memset(ss, 0, sizeof(*ss));
    *v6 = host[0] == '[';
    if (*v6) {
        if (n < 3 || host[n - 1] != ']')
            return -EINVAL;
        host[n - 1] = '\0';
        return uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)ss) == 0 ? 0 : -EINVAL;
    }
    return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0 ? 0 : -EINVAL;
}
