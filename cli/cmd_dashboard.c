/* SPDX-License-Identifier: MIT */
/*
 * cmd_dashboard.c: `drover dashboard`: print (and, on a desktop, open) a
 * one-time sign-in link to the controller's web dashboard. The link's code
 * is made here from DROVER_API_TOKEN (common/dashcode.c): valid once, for
 * 60 seconds; the token itself never goes into a URL.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "dashcode.h"
#include "env.h"
#include "util.h"

#define DASHBOARD_URL_DEFAULT_PORT 7480

/* http://HOST:7480 from DROVER_CONTROLLER (tcp://HOST:PORT). */
static void
default_url(char *out, size_t outsz)
{
    const char *c = env_raw("DROVER_CONTROLLER");
    char host[256];
    uint16_t port;

    if (c == NULL || env_parse_endpoint(c, host, sizeof(host), &port) < 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "*") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    snprintf(out, outsz, "http://%s:%d", host, DASHBOARD_URL_DEFAULT_PORT);
}

/* xdg-open url when there is a desktop to open it on; never waits for it. */
static void
open_browser(const char *url)
{
    pid_t pid;

    if ((env_raw("DISPLAY") == NULL && env_raw("WAYLAND_DISPLAY") == NULL) ||
        access("/usr/bin/xdg-open", X_OK) != 0)
        return;
    pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);

        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        if (fork() == 0)
            execl("/usr/bin/xdg-open", "xdg-open", url, (char *)NULL);
        _exit(0);
    }
    if (pid > 0)
        waitpid(pid, NULL, 0);
}

int
cli_cmd_dashboard(int argc, char **argv)
{
    bool no_open = false;
    struct cli_flag flags[] = {{"no-open", 0, false, &no_open, NULL}};
    char err[256], *pos[1], base[512], code[DASHCODE_LEN + 1], url[1200];
    const char *token = env_raw("DROVER_API_TOKEN"), *u = env_raw("DROVER_DASHBOARD_URL");
    int npos;

    if (cli_args_parse(argc, argv, flags, ARRAY_SIZE(flags), pos, 0, &npos, err, sizeof(err)) < 0)
        return cli_usage("dashboard", "%s", err);
    if (token == NULL || token[0] == '\0')
        return cli_fail("DROVER_API_TOKEN is not set: the link is signed with it");
    if (u != NULL && u[0] != '\0')
        snprintf(base, sizeof(base), "%s", u);
    else
        default_url(base, sizeof(base));
    while (strlen(base) > 0 && base[strlen(base) - 1] == '/')
        base[strlen(base) - 1] = '\0';
    if (dashcode_make(token, now_ms(), code, sizeof(code)) < 0)
        return cli_fail("cannot make a sign-in code");
    snprintf(url, sizeof(url), "%s/login?code=%s", base, code);
    printf("%s\n", url);
    fprintf(stderr, "(valid once, for 60 seconds)\n");
    fflush(stdout);
    if (!no_open)
        open_browser(url);
    return CLI_OK;
}
