/* SPDX-License-Identifier: MIT */
/*
 * spawn_clone_test.c: the spawn path into a cgroup (node-agent/spawn.c):
 * clone3 CLONE_INTO_CGROUP where the kernel allows it, and the program's
 * join form (argv_join) where it refuses, for good (clone3 filtered with
 * ENOSYS by seccomp, as container runtimes do) or for one cgroup (a
 * directory that is no v2 cgroup: EBADF). Real processes in a real cgroup
 * under the machine's cgroup2 mount (the hybrid layout's
 * /sys/fs/cgroup/unified, or /sys/fs/cgroup): needs root and that mount,
 * skipped without them (nsenter --net keeps /sys; ip netns exec does not).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agt.h"

static char v2[PATH_MAX], cg[PATH_MAX + 64], tmp[PATH_MAX], out[PATH_MAX + 16];

static bool
find_v2(void)
{
    char line[1024], dev[256], dir[PATH_MAX], type[64];
    FILE *f = fopen("/proc/self/mounts", "re");
    bool found = false;

    if (!f)
        return false;
    while (!found && fgets(line, sizeof line, f))
        if (sscanf(line, "%255s %4095s %63s", dev, dir, type) == 3 && strcmp(type, "cgroup2") == 0)
            found = snprintf(v2, sizeof v2, "%s", dir) < (int)sizeof v2;
    fclose(f);
    return found;
}

static void
setup(void)
{
    if (geteuid() != 0 || !find_v2())
        cr_skip_test("needs root and a cgroup2 mount");
    snprintf(cg, sizeof cg, "%s/drover-test-clone3-%d", v2, (int)getpid());
    cr_assert(mkdir(cg, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", cg, strerror(errno));
    snprintf(tmp, sizeof tmp, "/tmp/drover-clone3-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
    snprintf(out, sizeof out, "%s/out", tmp);
}

static void
teardown(void)
{
    if (cg[0])
        rmdir(cg);
    if (tmp[0]) {
        unlink(out);
        rmdir(tmp);
    }
}

TestSuite(spawn_clone, .init = setup, .fini = teardown, .timeout = 30);

/* A request run in / with stdio io[0..n-1]. */
static void
req_init(struct agt_spawn_req *r, const char *file, char **argv, char **envp,
         const uv_stdio_container_t *io, int n, const char *cgroup, char **argv_join)
{
    memset(r, 0, sizeof *r);
    r->file = file;
    r->argv = argv;
    r->envp = envp;
    r->cwd = "/";
    r->stdio = io;
    r->nstdio = n;
    r->cgroup = cgroup;
    r->argv_join = argv_join;
}

/* What the child wrote to the test's file, whole. */
static char *
read_out(void)
{
    FILE *f = fopen(out, "re");
    char *text;
    long len;

    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    rewind(f);
    text = calloc(1, (size_t)len + 1);
    cr_assert_not_null(text);
    cr_assert_eq(fread(text, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    return text;
}

/* The script reports which argv ran, its session, its environment and its
 * cgroups. Returns 0 or -errno; *text is the report. */
static int
spawn_into(const char *cgroup, const char *file, char **text)
{
    static char sh[] = "/bin/sh", c[] = "-c",
                report[] = "read -r l < /proc/$$/stat; set -- $l; echo pid=$1 sid=$6 A=$A; "
                           "cat /proc/self/cgroup; printf fds:; "
                           "for f in /proc/$$/fd/*; do printf ' %s' \"${f##*/}\"; done; echo",
                placed[] = "echo placed; . /dev/stdin", joined[] = "echo joined; . /dev/stdin";
    char *argv[] = {sh, c, placed, NULL}, *argv_join[] = {sh, c, joined, NULL};
    char *envp[] = {(char *)"A=1", NULL};
    uv_stdio_container_t io[3];
    struct agt_spawn_req r;
    int in[2], fd, pid = 0, status, rc;

    cr_assert_eq(pipe(in), 0);
    fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    cr_assert_geq(fd, 0);
    io[0].flags = UV_INHERIT_FD;
    io[0].data.fd = in[0];
    io[1].flags = UV_INHERIT_FD;
    io[1].data.fd = fd;
    io[2].flags = UV_INHERIT_FD;
    io[2].data.fd = fd;
    req_init(&r, file, argv, envp, io, 3, cgroup, argv_join);
    rc = agt_spawn_sync(&r, &pid);
    close(in[0]);
    close(fd);
    if (rc == 0)
        cr_assert_eq(write(in[1], report, strlen(report)), (ssize_t)strlen(report));
    close(in[1]);
    if (rc < 0)
        return rc;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
    *text = read_out();
    {
        char want[64];

        snprintf(want, sizeof want, "pid=%d sid=%d A=1\n", pid, pid);
        cr_assert_not_null(strstr(*text, want), "not its own session, or its environment: %s",
                           *text);
    }
    /* 10 and 3 are the shell's own: the script it reads from 0, and the
     * directory its glob is reading */
    cr_assert_not_null(strstr(*text, "\nfds: 0 1 10 2 3\n"), "descriptors other than 0-2: %s",
                       *text);
    return 0;
}

/* Its v2 line names the test's cgroup. */
static bool
in_cgroup(const char *text)
{
    char want[PATH_MAX + 80];

    snprintf(want, sizeof want, "\n0::/drover-test-clone3-%d\n", (int)getpid());
    return strstr(text, want) != NULL;
}

Test(spawn_clone, a_child_starts_in_its_cgroup_without_joining_it)
{
    uint64_t at0, j0, at1, j1;
    int last;
    char *text = NULL;

    agt_spawn_placements(&at0, &j0, &last);
    cr_assert_eq(spawn_into(cg, "/bin/sh", &text), 0);
    agt_spawn_placements(&at1, &j1, &last);
#if defined(__x86_64__)
    cr_assert(strncmp(text, "placed\n", 7) == 0, "the join form ran: %s", text);
    cr_assert_eq(at1, at0 + 1);
    cr_assert_eq(j1, j0);
    cr_assert(in_cgroup(text), "not in %s: %s", cg, text);
#else
    cr_assert(strncmp(text, "joined\n", 7) == 0, "%s", text); /* no clone3 here */
#endif
    free(text);
}

Test(spawn_clone, a_directory_that_is_no_cgroup_is_refused_and_the_join_form_runs)
{
    uint64_t at0, j0, at1, j1;
    int last;
    char *text = NULL;

    agt_spawn_placements(&at0, &j0, &last);
    cr_assert_eq(spawn_into(tmp, "/bin/sh", &text), 0);
    agt_spawn_placements(&at1, &j1, &last);
    cr_assert(strncmp(text, "joined\n", 7) == 0, "%s", text);
    cr_assert_eq(j1, j0 + 1);
    cr_assert_eq(at1, at0);
#if defined(__x86_64__)
    cr_assert_eq(last, EBADF, "refused with %s", strerror(last));
    free(text);
    /* About that directory only: the next one goes into its cgroup again. */
    cr_assert_eq(spawn_into(cg, "/bin/sh", &text), 0);
    cr_assert(strncmp(text, "placed\n", 7) == 0, "%s", text);
    cr_assert(in_cgroup(text), "%s", text);
#endif
    free(text);
}

Test(spawn_clone, a_program_that_cannot_run_is_an_error_and_leaves_nothing)
{
    char *text = NULL;
    int rc = spawn_into(cg, "/nonexistent/drover-exec", &text);

    cr_assert_eq(rc, -ENOENT, "%d", rc);
    cr_assert_eq(waitpid(-1, NULL, WNOHANG), -1, "a child is left");
    cr_assert_eq(errno, ECHILD);
}

/* clone3 filtered as container runtimes do (ENOSYS: glibc's own posix_spawn
 * then uses clone), in a child process of the test. */
static void
refuse_clone3(int err)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)err & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof f / sizeof f[0], f};

    cr_assert_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
    cr_assert_eq(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog), 0, "%s", strerror(errno));
}

Test(spawn_clone, where_clone3_is_filtered_the_join_form_runs_and_clone3_is_not_tried_again)
{
    uint64_t at0, j0, at1, j1;
    int last;
    char *text = NULL;

    refuse_clone3(ENOSYS);
    agt_spawn_placements(&at0, &j0, &last);
    cr_assert_eq(spawn_into(cg, "/bin/sh", &text), 0);
    cr_assert(strncmp(text, "joined\n", 7) == 0, "%s", text);
    free(text);
    cr_assert_eq(spawn_into(cg, "/bin/sh", &text), 0);
    cr_assert(strncmp(text, "joined\n", 7) == 0, "%s", text);
    free(text);
    agt_spawn_placements(&at1, &j1, &last);
    cr_assert_eq(at1, at0);
    cr_assert_eq(j1, j0 + 2);
#if defined(__x86_64__)
    cr_assert_eq(last, ENOSYS, "refused with %s", strerror(last));
#endif
}

/* The request's prep (agt_cg_prepare) makes the instance's cgroup on the
 * spawning side first: the child starts in the cgroup it just made, and a
 * cgroup that cannot be made is the spawn's error, with nothing started. */
static int
spawn_prepared(struct agt_cgroups *cgs, uint64_t id, struct agt_cg_prep *prep, int *pid)
{
    static char sh[] = "/bin/sh", c[] = "-c", script[] = "exit 0";
    char *argv[] = {sh, c, script, NULL}, *envp[] = {NULL};
    static char dir[PATH_MAX + 96];
    uv_stdio_container_t io[1];
    struct agt_spawn_req r;

    memset(prep, 0, sizeof *prep);
    prep->cg = cgs;
    prep->id = id;
    prep->rc = -EINPROGRESS;
    snprintf(dir, sizeof dir, "%s/i%llu", cgs->v2, (unsigned long long)id);
    io[0].flags = UV_IGNORE;
    memset(&r, 0, sizeof r);
    r.file = "/bin/sh";
    r.argv = argv;
    r.envp = envp;
    r.stdio = io;
    r.nstdio = 1;
    r.cgroup = dir;
    r.argv_join = argv;
    r.prep = prep;
    return agt_spawn_sync(&r, pid);
}

Test(spawn_clone, the_cgroup_is_made_before_the_spawn_and_a_refusal_starts_nothing)
{
    struct agt_cgroups cgs;
    struct agt_cg_prep prep;
    char dir[PATH_MAX + 96], procs[PATH_MAX + 128], line[32] = "";
    int pid = 0, status, rc;
    FILE *f;

    memset(&cgs, 0, sizeof cgs);
    cgs.ok = true;
    cr_assert_lt(strlen(cg), sizeof cgs.v2);
    memcpy(cgs.v2, cg, strlen(cg) + 1);
    memcpy(cgs.track, cg, strlen(cg) + 1);
    snprintf(dir, sizeof dir, "%s/i77", cg);
    cr_assert(access(dir, F_OK) < 0, "made already");
    rc = spawn_prepared(&cgs, 77, &prep, &pid);
    cr_assert_eq(rc, 0, "%d: %s", rc, prep.err);
    cr_assert_eq(prep.rc, 0, "the outcome came back: %d", prep.rc);
    cr_assert_gt(pid, 0);
    snprintf(procs, sizeof procs, "%s/cgroup.procs", dir);
    f = fopen(procs, "re");
    cr_assert_not_null(f, "%s: %s", procs, strerror(errno));
    if (!fgets(line, sizeof line, f))
        line[0] = '\0';
    fclose(f);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(line[0] == '\0' || atoi(line) == pid, "someone else in it: %s", line);
    cr_assert_eq(rmdir(dir), 0, "%s: %s", dir, strerror(errno));

    /* A subtree that cannot be made: the error, and no child. */
    snprintf(cgs.v2, sizeof cgs.v2, "/proc/self/drover-no-such");
    snprintf(cgs.track, sizeof cgs.track, "%s", cgs.v2);
    pid = 0;
    rc = spawn_prepared(&cgs, 78, &prep, &pid);
    cr_assert_lt(rc, 0);
    cr_assert_eq(rc, prep.rc);
    cr_assert(strstr(prep.err, "cannot create cgroup") != NULL, "%s", prep.err);
    cr_assert_eq(pid, 0);
    cr_assert_eq(waitpid(-1, NULL, WNOHANG), -1, "a child is left");
}

/*
 * The helper's steps in the clone child (agt_spawn_req.plan): the request's
 * file does not exist, so anything that ran went the plan's way. Output and
 * errors go to the test's file; descriptor 3 stands for the environment's
 * descriptor the agent passes to the helper, which the app must not get.
 */
static int
spawn_plan(const struct agt_exec_plan *plan, const char *cgroup, int *status, char **text)
{
    static char file[] = "/nonexistent/drover-exec";
    char *argv[] = {file, NULL}, *envp[] = {NULL};
    uv_stdio_container_t io[4];
    struct agt_spawn_req r;
    int fd, extra, pid = 0, rc;

    fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    cr_assert_geq(fd, 0);
    extra = open("/dev/null", O_RDONLY | O_CLOEXEC);
    cr_assert_geq(extra, 0);
    io[0].flags = UV_IGNORE;
    io[1].flags = UV_INHERIT_FD;
    io[1].data.fd = fd;
    io[2].flags = UV_INHERIT_FD;
    io[2].data.fd = fd;
    io[3].flags = UV_INHERIT_FD;
    io[3].data.fd = extra;
    req_init(&r, file, argv, envp, io, 4, cgroup, argv);
    r.plan = plan;
    rc = agt_spawn_sync(&r, &pid);
    close(fd);
    close(extra);
    if (rc < 0)
        return rc;
    cr_assert_eq(waitpid(pid, status, 0), pid);
    *text = read_out();
    return pid;
}

#if defined(__x86_64__)
Test(spawn_clone, the_child_does_the_helpers_steps_itself)
{
    static char report[] =
        "read -r l < /proc/$$/stat; set -- $l; echo pid=$1 pgid=$5 sid=$6 A=$A; "
        "echo ids=$(id -u):$(id -g):$(id -G) nofile=$(ulimit -n); cat /proc/self/cgroup; "
        "printf fds:; for f in /proc/$$/fd/*; do printf ' %s' \"${f##*/}\"; done; echo";
    char *env[] = {(char *)"A=1", (char *)"PATH=/usr/bin:/bin", NULL}, *join[] = {NULL};
    struct agt_exec_plan plan = {.script = report,
                                 .env = env,
                                 .join = join,
                                 .uid = 65534,
                                 .gid = 65534,
                                 .nofile = 123,
                                 .drop = true};
    char want[128], *text = NULL;
    int status = -1, pid;

    pid = spawn_plan(&plan, cg, &status, &text);
    cr_assert_gt(pid, 0, "%d", pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d: %s", status, text);
    snprintf(want, sizeof want, "pid=%d pgid=%d sid=%d A=1\n", pid, pid, pid);
    cr_assert_not_null(strstr(text, want), "session, group or environment: %s", text);
    cr_assert_not_null(strstr(text, "ids=65534:65534:65534 nofile=123\n"), "%s", text);
    cr_assert(in_cgroup(text), "not in %s: %s", cg, text);
    /* 0-2, and the shell's own 3 (the directory its glob is reading): not
     * the descriptor 3 it was given. */
    cr_assert_not_null(strstr(text, "\nfds: 0 1 2 3\n"), "descriptors: %s", text);
    free(text);
}

Test(spawn_clone, a_plain_command_is_exec_d_directly_with_exactly_its_environment)
{
    char *env[] = {(char *)"A=1", (char *)"PATH=/usr/bin:/bin", (char *)"PWD=/elsewhere", NULL};
    char *join[] = {NULL}, *text = NULL;
    struct agt_exec_plan plan = {.script = "exec env", .env = env, .join = join};
    int status = -1;

    cr_assert_gt(spawn_plan(&plan, NULL, &status, &text), 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d: %s", status, text);
    /* env found on PATH, run without a shell; PWD is the cwd, as a shell
     * would say it. */
    cr_assert_str_eq(text, "A=1\nPATH=/usr/bin:/bin\nPWD=/\n");
    free(text);
}

Test(spawn_clone, a_step_that_fails_is_said_and_the_child_exits_127)
{
    char *env[] = {NULL}, *join[] = {(char *)"/nonexistent/cgroup.procs", NULL}, *text = NULL;
    struct agt_exec_plan plan = {.script = "exec true", .env = env, .join = join};
    int status = -1;

    cr_assert_gt(spawn_plan(&plan, cg, &status, &text), 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 127, "status %d", status);
    cr_assert_str_eq(text, "drover: cannot join cgroup /nonexistent/cgroup.procs: No such file "
                           "or directory\n");
    free(text);
}
#endif
