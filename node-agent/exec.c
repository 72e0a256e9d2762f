/* SPDX-License-Identifier: MIT */
/*
 * exec.c: `drover-agent --exec [OPTIONS] -- SCRIPT`, the one helper that
 * every app process passes through on its way to /bin/sh -c SCRIPT.
 *
 * uv_spawn can set a uid, a cwd and a session, but not what an instance
 * needs before its first instruction runs: joining its cgroups (so that not
 * even an early fork escapes), rlimits, a controlling terminal for a `drover
 * run` with a tty, its own filesystem view. The agent therefore spawns
 * itself in this mode, as root when it is root; the helper does each step in
 * order, drops privileges last (agt_drop_privileges, the only place that
 * does), and execs the shell, which keeps its pid: the pid the agent saw is
 * the app's.
 *
 * Options:
 *   --cgroup FILE   write our pid into this cgroup.procs (repeatable)
 *   --uid N --gid N drop to this user and group (supplementary groups cleared)
 *   --nofile N      RLIMIT_NOFILE soft and hard
 *   --tty           stdin is a terminal: make it the controlling one
 *   --env-fd N      the app's environment, "K=V" strings NUL after NUL, on
 *                   descriptor N (read, then closed): never this process's
 *                   own, which a root helper's dynamic loader would obey
 *                   (LD_PRELOAD ...); only /bin/sh gets it, after the drop
 *   --view RELEASE --views DIR [--hide DIR]
 *                   a writable, ephemeral view of RELEASE at DIR/app, in a
 *                   mount namespace of its own (view.c)
 *
 * A script of the form the agent makes for one simple command ("exec CMD
 * ARG...", see agt_shell_command, whose words hold no quote, $, glob,
 * redirection or '=') is run without the shell: split at blanks, CMD
 * looked up in the app's PATH and exec'd with the app's environment plus
 * PWD, as /bin/sh would have done with it. That is one exec (and one
 * dynamic loader run) less per start. Anything else, and any failure to
 * exec directly, goes to /bin/sh -c SCRIPT, which also says the errors the
 * way a shell does.
 *
 * Any failure before the exec is written to stderr (the instance's log) and
 * ends the helper with 127, like a shell that cannot find its command.
 */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "agt.h"

int
agt_drop_privileges(uint32_t uid, uint32_t gid)
{
    if (setgroups(0, NULL) < 0 || setgid((gid_t)gid) < 0 || setuid((uid_t)uid) < 0)
        return -errno;
    /* Make sure every id took and there is no way back. */
    if (getuid() != uid || geteuid() != uid || getgid() != gid || getegid() != gid)
        return -EPERM;
    if (uid != 0 && setuid(0) == 0)
        return -EPERM;
    return 0;
}

static int
join_cgroup(const char *procs)
{
    FILE *f = fopen(procs, "we");
    int rc = 0;

    if (!f)
        return -errno;
    if (fprintf(f, "%d\n", (int)getpid()) < 0)
        rc = -EIO;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

/* The environment on fd: a NULL-terminated array into one buffer. NULL with
 * errno set on failure. */
static char **
read_env(int fd)
{
    size_t len = 0, cap = 0, n = 0, k;
    char *buf = NULL, **env;
    ssize_t r;

    for (;;) {
        if (len + 1 >= cap) { /* room for a final NUL, below */
            char *nb = realloc(buf, cap = cap ? cap * 2 : 65536);

            if (!nb)
                return free(buf), NULL;
            buf = nb;
        }
        r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return free(buf), NULL;
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0'; /* an unterminated last string ends here */
    for (k = 0; k < len; k++)
        n += buf[k] == '\0';
    if ((env = calloc(n + 1, sizeof *env)) == NULL)
        return free(buf), NULL;
    for (k = 0, n = 0; k < len && memchr(buf + k, '\0', len - k); k += strlen(buf + k) + 1)
        env[n++] = buf + k;
    return env;
}

static int
fail(const char *what, const char *arg, int err)
{
    dprintf(2, "drover: %s %s: %s\n", what, arg ? arg : "", strerror(err < 0 ? -err : err));
    return 127;
}

static bool
plain_word_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("_./+-,:@%", c) != NULL;
}

#define DIRECT_MAX_ARGS 64

/* Exec "exec CMD ARG..." without the shell when it is that plain; returns
 * only when it did not exec (then the shell runs it). */
static void
exec_direct(const char *script, char **env)
{
    char buf[4096], *argv[DIRECT_MAX_ARGS + 1], *p, **e2, cwd[4096], pwd[4200], path[4096];
    const char *paths = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    size_t n = 0, k, ne;

    if (strncmp(script, "exec ", 5) != 0 || strlen(script + 5) >= sizeof buf)
        return;
    strcpy(buf, script + 5);
    for (p = buf; *p; p++)
        if (!plain_word_char(*p) && *p != ' ' && *p != '\t')
            return;
    for (p = strtok(buf, " \t"); p; p = strtok(NULL, " \t")) {
        if (n == DIRECT_MAX_ARGS)
            return;
        argv[n++] = p;
    }
    if (n == 0)
        return;
    argv[n] = NULL;
    if (!getcwd(cwd, sizeof cwd))
        return;
    snprintf(pwd, sizeof pwd, "PWD=%s", cwd);
    for (ne = 0; env[ne]; ne++)
        if (strncmp(env[ne], "PATH=", 5) == 0)
            paths = env[ne] + 5;
    if ((e2 = calloc(ne + 2, sizeof *e2)) == NULL)
        return;
    for (k = 0, n = 0; k < ne; k++)
        if (strncmp(env[k], "PWD=", 4) != 0)
            e2[n++] = env[k];
    e2[n++] = pwd; /* as the shell would set it */
    if (strchr(argv[0], '/')) {
        execve(argv[0], argv, e2);
    } else {
        for (const char *d = paths; *d;) {
            size_t len = strcspn(d, ":");

            if (len > 0 &&
                (size_t)snprintf(path, sizeof path, "%.*s/%s", (int)len, d, argv[0]) < sizeof path)
                execve(path, argv, e2);
            d += len;
            if (*d == ':')
                d++;
        }
    }
    free(e2); /* not found, not executable, not a binary: the shell decides */
}

static bool
parse_u32(const char *s, uint32_t *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || *end || end == s || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

int
agt_exec_main(int argc, char **argv)
{
    char sh[] = "/bin/sh", dash_c[] = "-c";
    uint32_t uid = 0, gid = 0, nofile = 0;
    bool drop = false, tty = false;
    struct agt_view view = {{0}, {0}, {0}};
    char why[256];
    char *args[4], *no_env[] = {NULL}, **env = no_env;
    int k, rc;

    for (k = 2; k < argc && strcmp(argv[k], "--") != 0; k++) {
        const char *opt = argv[k], *val = k + 1 < argc ? argv[k + 1] : NULL;

        if (strcmp(opt, "--tty") == 0) {
            tty = true;
            continue;
        }
        if (!val)
            return fail("missing value for", opt, EINVAL);
        k++;
        if (strcmp(opt, "--cgroup") == 0) {
            if ((rc = join_cgroup(val)) < 0)
                return fail("cannot join cgroup", val, rc);
        } else if (strcmp(opt, "--uid") == 0 && parse_u32(val, &uid))
            drop = true;
        else if (strcmp(opt, "--gid") == 0 && parse_u32(val, &gid))
            drop = true;
        else if (strcmp(opt, "--nofile") == 0 && parse_u32(val, &nofile))
            ;
        else if (strcmp(opt, "--env-fd") == 0) {
            uint32_t fd;

            if (!parse_u32(val, &fd) || fd > 1024 || (env = read_env((int)fd)) == NULL)
                return fail("cannot read the environment from", val, errno ? errno : EINVAL);
        } else if (strcmp(opt, "--view") == 0)
            snprintf(view.release, sizeof view.release, "%s", val);
        else if (strcmp(opt, "--views") == 0)
            snprintf(view.views, sizeof view.views, "%s", val);
        else if (strcmp(opt, "--hide") == 0)
            snprintf(view.hide, sizeof view.hide, "%s", val);
        else
            return fail("bad option", opt, EINVAL);
    }
    if (k + 2 != argc)
        return fail("usage:", "drover-agent --exec [OPTIONS] -- SCRIPT", EINVAL);
    /* The app gets 0, 1 and 2 and nothing else, whatever the agent forgot
     * to mark close-on-exec (the environment's descriptor is closed). */
    if (close_range(3, ~0U, 0) < 0)
        return fail("cannot close descriptors", "", errno);
    if (nofile) {
        struct rlimit rl = {.rlim_cur = nofile, .rlim_max = nofile};

        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            return fail("cannot set", "RLIMIT_NOFILE", errno);
    }
    if (view.release[0] && view.views[0] &&
        (rc = agt_view_enter(&view, drop ? uid : (uint32_t)getuid(),
                             drop ? gid : (uint32_t)getgid(), why, sizeof why)) < 0) {
        dprintf(2, "drover: cannot set up the writable view: %s\n", why);
        return 127;
    }
    /* We are a session leader (detached spawn); stdin is the slave. */
    if (tty && ioctl(0, TIOCSCTTY, 0) < 0)
        dprintf(2, "drover: cannot take the terminal: %s\n", strerror(errno));
    /* The terminal is the app user's, as a login's is. */
    if (tty && drop && fchown(0, (uid_t)uid, (gid_t)-1) < 0)
        dprintf(2, "drover: cannot give the terminal away: %s\n", strerror(errno));
    if (drop && (rc = agt_drop_privileges(uid, gid)) < 0)
        return fail("cannot drop privileges", "", rc);
    if (!tty)
        exec_direct(argv[k + 1], env);
    args[0] = sh;
    args[1] = dash_c;
    args[2] = argv[k + 1];
    args[3] = NULL;
    execve(sh, args, env);
    return fail("cannot run", sh, errno);
}
