/* SPDX-License-Identifier: MIT */
/*
 * exec.c: `drover-agent --exec [OPTIONS] -- SCRIPT`, the helper whose steps
 * every app process goes through on its way to SCRIPT (in this helper, or
 * in the agent's clone child itself: agt_exec_plan_run, below).
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
 *
 * The steps after the options are agt_exec_plan_run, which the agent's
 * spawner also runs in its clone child instead of exec'ing this helper
 * (spawn.c): so they allocate nothing, take no lock, keep no stdio stream
 * and drop privileges by raw system calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agt.h"

/* Raw system calls, not glibc's wrappers: in a process with threads those
 * make every thread change its ids too (by signals between them), and
 * spawn.c calls this in a clone child that shares the agent's memory, where
 * glibc would take the agent's threads for the child's. In the helper, a
 * process of one thread, the two are the same. */
int
agt_drop_privileges(uint32_t uid, uint32_t gid)
{
    if (syscall(SYS_setgroups, 0, NULL) < 0 || syscall(SYS_setgid, (gid_t)gid) < 0 ||
        syscall(SYS_setuid, (uid_t)uid) < 0)
        return -errno;
    /* Make sure every id took and there is no way back. */
    if (getuid() != uid || geteuid() != uid || getgid() != gid || getegid() != gid)
        return -EPERM;
    if (uid != 0 && syscall(SYS_setuid, 0) == 0)
        return -EPERM;
    return 0;
}

static int
join_cgroup(const char *procs)
{
    char pid[24];
    int fd, n = snprintf(pid, sizeof pid, "%d\n", (int)getpid()), rc = 0;

    if ((fd = open(procs, O_WRONLY | O_CLOEXEC)) < 0)
        return -errno;
    errno = 0;
    if (write(fd, pid, (size_t)n) != n)
        rc = errno ? -errno : -EIO;
    if (close(fd) < 0 && rc == 0)
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

/* strerror's text without its locale (which may allocate). */
static const char *
errtext(int err)
{
    const char *d = strerrordesc_np(err < 0 ? -err : err);

    return d ? d : "unknown error";
}

/* One write, from a buffer on the stack (dprintf keeps no stream). */
static int
fail(const char *what, const char *arg, int err)
{
    dprintf(2, "drover: %s %s: %s\n", what, arg ? arg : "", errtext(err));
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
 * only when it did not exec (then the shell runs it). e2: room for env's
 * pointers plus two. strtok_r: a clone child of another spawner thread may
 * be splitting its own script at the same time, in the same memory. */
static void
exec_direct(const char *script, char **env, char **e2)
{
    char buf[4096], *argv[DIRECT_MAX_ARGS + 1], *p, *save, cwd[4096], pwd[4200], path[4096];
    const char *paths = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    size_t n = 0, k, ne;

    if (strncmp(script, "exec ", 5) != 0 || strlen(script + 5) >= sizeof buf)
        return;
    strcpy(buf, script + 5);
    for (p = buf; *p; p++)
        if (!plain_word_char(*p) && *p != ' ' && *p != '\t')
            return;
    for (p = strtok_r(buf, " \t", &save); p; p = strtok_r(NULL, " \t", &save)) {
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
    for (k = 0, n = 0; k < ne; k++)
        if (strncmp(env[k], "PWD=", 4) != 0)
            e2[n++] = env[k];
    e2[n++] = pwd; /* as the shell would set it */
    e2[n] = NULL;
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
    /* Not found, not executable, not a binary: the shell decides. */
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

void
agt_exec_plan_run(const struct agt_exec_plan *p, char **e2)
{
    char sh[] = "/bin/sh", dash_c[] = "-c", why[256], *args[4];
    int rc;

    for (char **c = p->join; c && *c; c++)
        if ((rc = join_cgroup(*c)) < 0) {
            fail("cannot join cgroup", *c, rc);
            return;
        }
    /* The app gets 0, 1 and 2 and nothing else, whatever the agent forgot
     * to mark close-on-exec (the environment's descriptor is closed). */
    if (close_range(3, ~0U, 0) < 0) {
        fail("cannot close descriptors", "", errno);
        return;
    }
    if (p->nofile) {
        struct rlimit rl = {.rlim_cur = p->nofile, .rlim_max = p->nofile};

        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
            fail("cannot set", "RLIMIT_NOFILE", errno);
            return;
        }
    }
    if (p->view &&
        (rc = agt_view_enter(p->view, p->drop ? p->uid : (uint32_t)getuid(),
                             p->drop ? p->gid : (uint32_t)getgid(), why, sizeof why)) < 0) {
        dprintf(2, "drover: cannot set up the writable view: %s\n", why);
        return;
    }
    /* We are a session leader (detached spawn); stdin is the slave. */
    if (p->tty && ioctl(0, TIOCSCTTY, 0) < 0)
        dprintf(2, "drover: cannot take the terminal: %s\n", errtext(errno));
    /* The terminal is the app user's, as a login's is. */
    if (p->tty && p->drop && fchown(0, (uid_t)p->uid, (gid_t)-1) < 0)
        dprintf(2, "drover: cannot give the terminal away: %s\n", errtext(errno));
    if (p->drop && (rc = agt_drop_privileges(p->uid, p->gid)) < 0) {
        fail("cannot drop privileges", "", rc);
        return;
    }
    if (!p->tty)
        exec_direct(p->script, p->env, e2);
    args[0] = sh;
    args[1] = dash_c;
    args[2] = (char *)p->script;
    args[3] = NULL;
    execve(sh, args, p->env);
    fail("cannot run", sh, errno);
}

int
agt_exec_main(int argc, char **argv)
{
    struct agt_exec_plan plan = {0};
    struct agt_view view = {"", "", ""};
    char *no_env[] = {NULL}, *join[16], **e2;
    size_t njoin = 0, ne;
    int k;

    plan.env = no_env;
    for (k = 2; k < argc && strcmp(argv[k], "--") != 0; k++) {
        const char *opt = argv[k], *val = k + 1 < argc ? argv[k + 1] : NULL;

        if (strcmp(opt, "--tty") == 0) {
            plan.tty = true;
            continue;
        }
        if (!val)
            return fail("missing value for", opt, EINVAL);
        k++;
        if (strcmp(opt, "--cgroup") == 0) {
            if (njoin + 1 == sizeof join / sizeof join[0])
                return fail("too many", opt, E2BIG);
            join[njoin++] = argv[k];
        } else if (strcmp(opt, "--uid") == 0 && parse_u32(val, &plan.uid))
            plan.drop = true;
        else if (strcmp(opt, "--gid") == 0 && parse_u32(val, &plan.gid))
            plan.drop = true;
        else if (strcmp(opt, "--nofile") == 0 && parse_u32(val, &plan.nofile))
            ;
        else if (strcmp(opt, "--env-fd") == 0) {
            uint32_t fd;

            if (!parse_u32(val, &fd) || fd > 1024 || (plan.env = read_env((int)fd)) == NULL)
                return fail("cannot read the environment from", val, errno ? errno : EINVAL);
        } else if (strcmp(opt, "--view") == 0)
            view.release = val;
        else if (strcmp(opt, "--views") == 0)
            view.views = val;
        else if (strcmp(opt, "--hide") == 0)
            view.hide = val;
        else
            return fail("bad option", opt, EINVAL);
    }
    if (k + 2 != argc)
        return fail("usage:", "drover-agent --exec [OPTIONS] -- SCRIPT", EINVAL);
    join[njoin] = NULL;
    plan.join = join;
    plan.script = argv[k + 1];
    if (view.release[0] && view.views[0])
        plan.view = &view;
    for (ne = 0; plan.env[ne]; ne++)
        ;
    if ((e2 = calloc(ne + 2, sizeof *e2)) == NULL)
        return fail("cannot run", plan.script, ENOMEM);
    agt_exec_plan_run(&plan, e2);
    return 127;
}
