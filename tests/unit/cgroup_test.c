/* SPDX-License-Identifier: MIT */
/*
 * cgroup_test.c: the cgroup layer against fake trees in a temporary
 * directory: a pure v2 layout (which these machines do not have) and a
 * hybrid one (v1 controllers beside an empty v2).
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agt.h"

static char root[PATH_MAX];

static void
put(const char *rel, const char *text)
{
    char path[PATH_MAX + 256];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", root, rel);
    f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

static void
get(const char *rel, char *buf, size_t bufsz)
{
    char path[PATH_MAX + 256];
    FILE *f;
    size_t n;

    snprintf(path, sizeof path, "%s/%s", root, rel);
    f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    n = fread(buf, 1, bufsz - 1, f);
    buf[n] = '\0';
    fclose(f);
}

static void
dir(const char *rel)
{
    char path[PATH_MAX + 256];

    snprintf(path, sizeof path, "%s/%s", root, rel);
    cr_assert(mkdir(path, 0755) == 0 || errno == EEXIST, "%s", path);
}

static void
setup(void)
{
    strcpy(root, "/tmp/drover-cgtest.XXXXXX");
    cr_assert_not_null(mkdtemp(root));
}

static void
teardown(void)
{
    char cmd[PATH_MAX + 16];

    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0)
        cr_log_warn("cannot remove %s", root);
}

/* A pure v2 tree: the agent in /svc, memory cpu pids offered. */
static void
fake_v2(struct agt_cgroups *cg)
{
    char mounts[PATH_MAX + 64], why[256] = "";

    dir("v2");
    dir("v2/svc");
    put("v2/svc/cgroup.controllers", "cpuset cpu io memory pids\n");
    put("v2/svc/cgroup.subtree_control", "");
    dir("v2/svc/drover.n1");
    put("v2/svc/drover.n1/cgroup.controllers", "cpu memory pids\n");
    put("v2/svc/drover.n1/cgroup.subtree_control", "");
    put("v2/svc/drover.n1/cgroup.kill", "");
    snprintf(mounts, sizeof mounts, "cgroup2 %s/v2 cgroup2 rw,nosuid 0 0\n", root);
    cr_assert_eq(agt_cg_probe(cg, mounts, "0::/svc\n", "", "n1", why, sizeof why), 0, "%s", why);
}

static void
inst_files_v2(const char *id)
{
    char rel[128];
    static const char *const files[] = {"cgroup.procs", "memory.max", "memory.swap.max",
                                        "cpu.max",      "pids.max",   "cgroup.kill"};
    size_t k;

    snprintf(rel, sizeof rel, "v2/svc/drover.n1/i%s", id);
    dir(rel);
    for (k = 0; k < sizeof files / sizeof files[0]; k++) {
        char f[256];

        snprintf(f, sizeof f, "%s/%s", rel, files[k]);
        put(f, "");
    }
}

TestSuite(cgroup, .init = setup, .fini = teardown, .timeout = 5);

Test(cgroup, v2_probe_enables_controllers_and_finds_kill)
{
    struct agt_cgroups cg;
    char buf[256];

    fake_v2(&cg);
    cr_assert(cg.ok);
    cr_assert(cg.v2ctl[AGT_CG_MEMORY] && cg.v2ctl[AGT_CG_CPU] && cg.v2ctl[AGT_CG_PIDS]);
    cr_assert(cg.has_kill);
    cr_assert_str_eq(cg.track, cg.v2);
    cr_assert(strstr(cg.v2, "/v2/svc/drover.n1") != NULL, "%s", cg.v2);
    cr_assert_eq(cg.v1[AGT_CG_MEMORY][0], '\0', "v2 has memory: no v1 path");
    get("v2/svc/drover.n1/cgroup.subtree_control", buf, sizeof buf);
    cr_assert(strstr(buf, "+pids") != NULL, "%s", buf); /* the last write stays */
    cr_assert(agt_cg_can_limit(&cg, AGT_CG_MEMORY));
}

Test(cgroup, v2_limits_written_and_reset)
{
    struct agt_cgroups cg;
    struct agt_limits l = {.memory = 512u << 20, .cpu_milli = 500, .pids = 256};
    char buf[128], err[256];

    fake_v2(&cg);
    inst_files_v2("42");
    cr_assert_eq(agt_cg_create(&cg, 42, &l, err, sizeof err), 0, "%s", err);
    get("v2/svc/drover.n1/i42/memory.max", buf, sizeof buf);
    cr_assert_str_eq(buf, "536870912");
    get("v2/svc/drover.n1/i42/memory.swap.max", buf, sizeof buf);
    cr_assert_str_eq(buf, "0");
    get("v2/svc/drover.n1/i42/cpu.max", buf, sizeof buf);
    cr_assert_str_eq(buf, "50000 100000");
    get("v2/svc/drover.n1/i42/pids.max", buf, sizeof buf);
    cr_assert_str_eq(buf, "256");
    memset(&l, 0, sizeof l);
    inst_files_v2("42"); /* a regular file is not truncated by a write, a cgroup file is */
    cr_assert_eq(agt_cg_create(&cg, 42, &l, err, sizeof err), 0, "%s", err);
    get("v2/svc/drover.n1/i42/memory.max", buf, sizeof buf);
    cr_assert_str_eq(buf, "max");
    get("v2/svc/drover.n1/i42/cpu.max", buf, sizeof buf);
    cr_assert_str_eq(buf, "max 100000");
}

Test(cgroup, v2_procs_populated_kill_usage_oom)
{
    struct agt_cgroups cg;
    struct agt_limits l = {0};
    char paths[4][PATH_MAX], buf[32], err[256];
    uint64_t mem, cpu, oom, *ids;
    size_t n;

    fake_v2(&cg);
    inst_files_v2("7");
    cr_assert_eq(agt_cg_create(&cg, 7, &l, err, sizeof err), 0, "%s", err);
    cr_assert_eq(agt_cg_procs(&cg, 7, &l, paths, 4), 1);
    cr_assert(strstr(paths[0], "drover.n1/i7/cgroup.procs") != NULL, "%s", paths[0]);

    put("v2/svc/drover.n1/i7/cgroup.events", "populated 1\nfrozen 0\n");
    cr_assert_eq(agt_cg_populated(&cg, 7), 1);
    put("v2/svc/drover.n1/i7/cgroup.events", "populated 0\nfrozen 0\n");
    cr_assert_eq(agt_cg_populated(&cg, 7), 0);
    cr_assert_eq(agt_cg_populated(&cg, 99), 0, "no cgroup: nothing in it");

    cr_assert_eq(agt_cg_kill(&cg, 7), 0);
    get("v2/svc/drover.n1/i7/cgroup.kill", buf, sizeof buf);
    cr_assert_str_eq(buf, "1");

    put("v2/svc/drover.n1/i7/memory.current", "1048576\n");
    put("v2/svc/drover.n1/i7/cpu.stat", "usage_usec 2500000\nuser_usec 2000000\n");
    cr_assert_eq(agt_cg_usage(&cg, 7, &mem, &cpu), 0);
    cr_assert_eq(mem, 1048576u);
    cr_assert_eq(cpu, 2500000u);
    put("v2/svc/drover.n1/i7/memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n");
    cr_assert_eq(agt_cg_oom_kills(&cg, 7, &oom), 0);
    cr_assert_eq(oom, 1u);

    dir("v2/svc/drover.n1/i12");
    dir("v2/svc/drover.n1/agent");
    dir("v2/svc/drover.n1/i0x");
    cr_assert_eq(agt_cg_list(&cg, &ids, &n), 0);
    cr_assert_eq(n, 2);
    cr_assert((ids[0] == 7 && ids[1] == 12) || (ids[0] == 12 && ids[1] == 7));
    free(ids);
}

Test(cgroup, hybrid_tracks_in_v2_limits_in_v1)
{
    struct agt_cgroups cg;
    char mounts[6 * PATH_MAX], why[256] = "", buf[64], err[256];
    struct agt_limits l = {.memory = 64u << 20, .cpu_milli = 200, .pids = 32};
    char paths[6][PATH_MAX];

    dir("unified");
    put("unified/cgroup.controllers", "\n");
    dir("memory");
    dir("cpu");
    dir("pids");
    snprintf(mounts, sizeof mounts,
             "cgroup %s/memory cgroup rw,memory 0 0\n"
             "cgroup %s/cpu cgroup rw,cpu 0 0\n"
             "cgroup %s/pids cgroup rw,pids 0 0\n"
             "cgroup2 %s/unified cgroup2 rw 0 0\n",
             root, root, root, root);
    cr_assert_eq(agt_cg_probe(&cg, mounts, "4:memory:/box\n3:pids:/\n1:cpu:/\n0::/\n", "", "n2",
                              why, sizeof why),
                 0, "%s", why);
    cr_assert(!cg.v2ctl[AGT_CG_MEMORY]);
    cr_assert(strstr(cg.v1[AGT_CG_MEMORY], "/memory/box/drover.n2") != NULL, "%s",
              cg.v1[AGT_CG_MEMORY]);
    cr_assert(strstr(cg.track, "/unified/drover.n2") != NULL, "%s", cg.track);
    dir("memory/box/drover.n2/i5");
    put("memory/box/drover.n2/i5/memory.limit_in_bytes", "");
    put("memory/box/drover.n2/i5/memory.memsw.limit_in_bytes", "");
    dir("cpu/drover.n2/i5");
    put("cpu/drover.n2/i5/cpu.cfs_period_us", "");
    put("cpu/drover.n2/i5/cpu.cfs_quota_us", "");
    dir("pids/drover.n2/i5");
    put("pids/drover.n2/i5/pids.max", "");
    cr_assert_eq(agt_cg_create(&cg, 5, &l, err, sizeof err), 0, "%s", err);
    get("memory/box/drover.n2/i5/memory.limit_in_bytes", buf, sizeof buf);
    cr_assert_str_eq(buf, "67108864");
    get("cpu/drover.n2/i5/cpu.cfs_quota_us", buf, sizeof buf);
    cr_assert_str_eq(buf, "20000");
    get("pids/drover.n2/i5/pids.max", buf, sizeof buf);
    cr_assert_str_eq(buf, "32");
    cr_assert_eq(agt_cg_procs(&cg, 5, &l, paths, 6), 4, "v2 plus three v1 hierarchies");
    /* Without limits no v1 cgroup is made (nor joined): each join takes a
     * machine-wide lock. Memory usage is then its members' RSS. */
    {
        struct agt_limits none = {.memory = 0}, mem_only = {.memory = 32u << 20};
        char line[32], path[PATH_MAX + 64];
        uint64_t mem, cpu;

        cr_assert_eq(agt_cg_create(&cg, 6, &none, err, sizeof err), 0, "%s", err);
        cr_assert_eq(agt_cg_procs(&cg, 6, &none, paths, 6), 1, "v2 only");
        cr_assert(strstr(paths[0], "/unified/drover.n2/i6/") != NULL, "%s", paths[0]);
        snprintf(path, sizeof path, "%s/memory/box/drover.n2/i6", root);
        cr_assert(access(path, F_OK) < 0, "no v1 memory cgroup for an unlimited instance");
        snprintf(line, sizeof line, "%d\n", (int)getpid());
        put("unified/drover.n2/i6/cgroup.procs", line);
        put("unified/drover.n2/i6/cpu.stat", "usage_usec 1500\n");
        cr_assert_eq(agt_cg_usage(&cg, 6, &mem, &cpu), 0);
        cr_assert_gt(mem, 0u, "our own RSS, summed from the members");
        cr_assert_eq(cpu, 1500u);

        dir("memory/box/drover.n2/i8");
        put("memory/box/drover.n2/i8/memory.limit_in_bytes", "");
        put("memory/box/drover.n2/i8/memory.memsw.limit_in_bytes", "");
        cr_assert_eq(agt_cg_create(&cg, 8, &mem_only, err, sizeof err), 0, "%s", err);
        cr_assert_eq(agt_cg_procs(&cg, 8, &mem_only, paths, 6), 2, "v2 and v1 memory");
        cr_assert(strstr(paths[1], "/memory/box/drover.n2/i8/") != NULL, "%s", paths[1]);
    }
    put("memory/box/drover.n2/i5/memory.oom_control",
        "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
    uint64_t oom;
    cr_assert_eq(agt_cg_oom_kills(&cg, 5, &oom), 0);
    cr_assert_eq(oom, 2u);
}

Test(cgroup, none_mounted_is_unavailable_with_reason)
{
    struct agt_cgroups cg;
    char why[256] = "";

    cr_assert_lt(agt_cg_probe(&cg, "proc /proc proc rw 0 0\n", "0::/\n", "", "n3", why, sizeof why),
                 0);
    cr_assert(!cg.ok);
    cr_assert_str_eq(why, "no writable cgroup hierarchy");
}
