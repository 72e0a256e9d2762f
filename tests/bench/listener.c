/* SPDX-License-Identifier: MIT */
/*
 * listener.c: the app every scale-to-listening figure starts: it binds
 * 127.0.0.1:PORT, accepts connections and closes them, and dies on SIGTERM
 * (the default action), like the simplest web process. Built static, so that
 * starting it costs an exec and no dynamic loading, whoever starts it.
 *
 *   bench-listener            PORT from the environment (drover, foreman)
 *   bench-listener BASE [I]   port BASE + I (supervisord's %(process_num)d)
 *
 * It is an app, not part of drover: it reads PORT straight from environ.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

extern char **environ;

static long
env_port(void)
{
    for (char **e = environ; *e != NULL; e++)
        if (strncmp(*e, "PORT=", 5) == 0)
            return strtol(*e + 5, NULL, 10);
    return -1;
}

int
main(int argc, char **argv)
{
    long port = argc > 1 ? strtol(argv[1], NULL, 10) + (argc > 2 ? strtol(argv[2], NULL, 10) : 0)
                         : env_port();
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int s, one = 1;

    if (port < 1 || port > 65535) {
        fprintf(stderr, "bench-listener: no valid PORT\n");
        return 2;
    }
    sa.sin_port = htons((unsigned short)port);
    s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 64) < 0) {
        perror("bench-listener");
        return 1;
    }
    for (;;) {
        int c = accept(s, NULL, NULL);

        if (c >= 0)
            close(c);
    }
}
