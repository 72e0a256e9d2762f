/* SPDX-License-Identifier: MIT */
/* pipes.c: see pipes.h. */
#include "pipes.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

long
p_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

void
p_spawn(struct h_cluster *c, struct p_child *ch, const char *const *argv, const char *const *env,
        bool merge)
{
    int i[2], o[2], e[2] = {-1, -1};

    memset(ch, 0, sizeof(*ch));
    cr_assert_eq(pipe2(i, O_CLOEXEC), 0);
    cr_assert_eq(pipe2(o, O_CLOEXEC), 0);
    if (!merge)
        cr_assert_eq(pipe2(e, O_CLOEXEC), 0);
    ch->pid = fork();
    cr_assert_geq(ch->pid, 0);
    if (ch->pid == 0) {
        setpgid(0, 0);
        if (chdir(c->dir) < 0)
            _exit(126);
        dup2(i[0], 0);
        dup2(o[1], 1);
        dup2(merge ? o[1] : e[1], 2);
        execve(argv[0], (char *const *)argv, (char *const *)env);
        _exit(127);
    }
    setpgid(ch->pid, ch->pid);
    close(i[0]);
    close(o[1]);
    if (!merge)
        close(e[1]);
    ch->in = i[1];
    ch->out = o[0];
    ch->err = merge ? -1 : e[0];
    fcntl(ch->out, F_SETFL, O_NONBLOCK);
    if (ch->err >= 0)
        fcntl(ch->err, F_SETFL, O_NONBLOCK);
    signal(SIGPIPE, SIG_IGN);
}

/* The environment the CLI gets: the harness's, plus the controller and the
 * API token. */
static const char *const *
cli_env(struct h_cluster *c)
{
    static char ctl[96];
    const char *vars[] = {ctl, "DROVER_TIMEOUT_MS=5000", "DROVER_API_TOKEN=" H_API_TOKEN, NULL};

    snprintf(ctl, sizeof(ctl), "DROVER_CONTROLLER=%s", c->api);
    return (const char *const *)h_env(vars, NULL);
}

void
p_spawn_cli(struct h_cluster *c, struct p_child *ch, const char *const *args)
{
    static char path[512];
    const char *argv[40];
    int n = 0;

    snprintf(path, sizeof(path), "%s/drover", h_bin_dir());
    argv[n++] = path;
    for (; *args != NULL && n < 39; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    p_spawn(c, ch, argv, cli_env(c), false);
}

void
p_write(struct p_child *ch, const char *s, size_t len)
{
    while (len > 0 && ch->in >= 0) {
        struct pollfd p = {.fd = ch->in, .events = POLLOUT};
        ssize_t w;

        /* Keep reading while writing, or a chatty child could block us. */
        p_pump(ch, 0);
        if (poll(&p, 1, 100) <= 0)
            continue;
        w = write(ch->in, s, len);
        if (w < 0 && errno == EINTR)
            continue;
        cr_assert_geq(w, 0, "write to child: %s", strerror(errno));
        s += w;
        len -= (size_t)w;
    }
}

void
p_close_stdin(struct p_child *ch)
{
    if (ch->in >= 0)
        close(ch->in);
    ch->in = -1;
}

static void
append(char **buf, size_t *len, size_t *cap, const char *d, size_t n)
{
    if (*len + n + 1 > *cap) {
        *cap = *cap ? *cap : 65536;
        while (*cap < *len + n + 1)
            *cap *= 2;
        *buf = realloc(*buf, *cap);
        cr_assert_not_null(*buf);
    }
    memcpy(*buf + *len, d, n);
    *len += n;
    (*buf)[*len] = '\0';
}

void
p_pump(struct p_child *ch, int ms)
{
    struct pollfd p[2];
    int np = 0;
    char chunk[65536];

    if (ch->out >= 0)
        p[np++] = (struct pollfd){.fd = ch->out, .events = POLLIN};
    if (ch->err >= 0)
        p[np++] = (struct pollfd){.fd = ch->err, .events = POLLIN};
    if (np == 0) {
        if (ms > 0)
            h_msleep(ms);
        return;
    }
    if (poll(p, (nfds_t)np, ms) <= 0)
        return;
    for (int k = 0; k < np; k++) {
        bool is_out = p[k].fd == ch->out;
        ssize_t n;

        if (!(p[k].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        while ((n = read(p[k].fd, chunk, sizeof(chunk))) > 0) {
            if (is_out)
                append(&ch->obuf, &ch->olen, &ch->ocap, chunk, (size_t)n);
            else
                append(&ch->ebuf, &ch->elen, &ch->ecap, chunk, (size_t)n);
        }
        if (n == 0) {
            close(p[k].fd);
            if (is_out)
                ch->out = -1;
            else
                ch->err = -1;
        }
    }
}

bool
p_wait_out(struct p_child *ch, const char *needle, int timeout_ms)
{
    long deadline = p_now_ms() + timeout_ms;
    size_t from = 0, keep = needle[0] != '\0' ? strlen(needle) - 1 : 0;

    /* Only what came since the last look (and the needle's length before
     * it) is searched again: a tail of many megabytes stays linear. */
    for (;;) {
        if (ch->obuf != NULL && strstr(ch->obuf + from, needle) != NULL)
            return true;
        if (ch->olen > keep)
            from = ch->olen - keep;
        if (p_now_ms() >= deadline)
            return false;
        p_pump(ch, 50);
    }
}

int
p_wait_exit(struct p_child *ch, int timeout_ms)
{
    long deadline = p_now_ms() + timeout_ms;
    int status;

    while (ch->pid > 0) {
        pid_t r = waitpid(ch->pid, &status, WNOHANG);

        if (r == ch->pid) {
            ch->pid = 0;
            while (ch->out >= 0 || ch->err >= 0)
                p_pump(ch, 50); /* the rest of the output */
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        if (p_now_ms() >= deadline) {
            p_kill(ch, SIGKILL);
            return -1;
        }
        p_pump(ch, 20);
    }
    return -1;
}

void
p_kill(struct p_child *ch, int sig)
{
    if (ch->pid <= 0)
        return;
    kill(-ch->pid, sig);
    if (sig == SIGKILL) {
        waitpid(ch->pid, NULL, 0);
        ch->pid = 0;
    }
}

void
p_free(struct p_child *ch)
{
    p_kill(ch, SIGKILL);
    p_close_stdin(ch);
    if (ch->out >= 0)
        close(ch->out);
    if (ch->err >= 0)
        close(ch->err);
    free(ch->obuf);
    free(ch->ebuf);
    memset(ch, 0, sizeof(*ch));
}

int
p_cli(struct h_cluster *c, const char *input, size_t len, char **out, char **err, int timeout_ms,
      const char *const *args)
{
    struct p_child ch;
    int rc;

    p_spawn_cli(c, &ch, args);
    if (input != NULL)
        p_write(&ch, input, len);
    p_close_stdin(&ch);
    rc = p_wait_exit(&ch, timeout_ms);
    if (out != NULL)
        *out = strdup(ch.obuf != NULL ? ch.obuf : "");
    if (err != NULL)
        *err = strdup(ch.ebuf != NULL ? ch.ebuf : "");
    p_free(&ch);
    return rc;
}
