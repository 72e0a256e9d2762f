/* SPDX-License-Identifier: MIT */
/*
 * cgroup.c: a control group per instance, on either cgroup layout.
 *
 * The agent owns one subtree, "drover.NODE" under its root (DROVER_CGROUP_ROOT,
 * or the cgroup the agent was started in), and each instance gets a child
 * "i<ID>" of it, created before the process starts. The process joins it
 * itself before it execs anything (exec.c), so no fork can happen outside.
 *
 * Two layouts exist. Pure v2 (Debian 12): one hierarchy; tracking, kill and
 * limits all go through it, once the controllers are enabled in the
 * subtree's cgroup.subtree_control. Hybrid (these development machines):
 * the controllers are bound to v1 hierarchies and the v2 one at
 * /sys/fs/cgroup/unified has none. Then the v2 hierarchy still tracks and
 * kills (cgroup.events, cgroup.kill, cpu.stat), and limits go to the v1
 * memory, cpu and pids hierarchies, where the process joins as well. With
 * v1 only, the first v1 hierarchy found tracks, and a kill is SIGKILL to
 * each member until none is left.
 *
 * Everything here works on paths taken from the mount table and
 * /proc/self/cgroup as given (text), so the unit tests point it at a fake
 * tree in a temporary directory. Nothing here touches the loop: these are
 * small synchronous writes to a kernel filesystem.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agt.h"
#include "util.h"

static const char *const v1_names[AGT_CG_NCTL] = {"memory", "cpu", "pids"};

static int
write_file(const char *dir, const char *file, const char *text)
{
    char path[PATH_MAX];
    ssize_t len = (ssize_t)strlen(text), w;
    int fd, rc;

    if (strfmt(path, sizeof path, "%s/%s", dir, file) < 0)
        return -ENAMETOOLONG;
    fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    /* v1 memory.limit_in_bytes gives up with EINTR when a signal is pending
     * on this thread (SIGCHLD of any instance, mem_cgroup_resize_max): the
     * value is the same the next time, so write it again. */
    for (int tries = 0; (w = write(fd, text, (size_t)len)) < 0 && errno == EINTR && tries < 100;
         tries++)
        ;
    rc = w == len ? 0 : w < 0 ? -errno : -EIO;
    close(fd);
    return rc;
}

static int
read_file(const char *dir, const char *file, char *buf, size_t bufsz)
{
    char path[PATH_MAX];
    ssize_t n;
    int fd;

    if (strfmt(path, sizeof path, "%s/%s", dir, file) < 0)
        return -ENAMETOOLONG;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    n = read(fd, buf, bufsz - 1);
    close(fd);
    if (n < 0)
        return -errno;
    buf[n] = '\0';
    return 0;
}

/* The value of "KEY N" in a flat keyed file (cgroup.events, cpu.stat). */
static int
read_key(const char *dir, const char *file, const char *key, uint64_t *out)
{
    char buf[4096];
    size_t klen = strlen(key);
    const char *p;
    int rc = read_file(dir, file, buf, sizeof buf);

    if (rc < 0)
        return rc;
    for (p = buf; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, key, klen) == 0 && p[klen] == ' ')
            return sscanf(p + klen + 1, "%" SCNu64, out) == 1 ? 0 : -EINVAL;
    return -ENOENT;
}

static int
read_u64(const char *dir, const char *file, uint64_t *out)
{
    char buf[64];
    int rc = read_file(dir, file, buf, sizeof buf);

    if (rc < 0)
        return rc;
    return sscanf(buf, "%" SCNu64, out) == 1 ? 0 : -EINVAL;
}

static int
mkdirs(const char *path)
{
    char tmp[PATH_MAX];
    char *p;

    if (strfmt(tmp, sizeof tmp, "%s", path) < 0)
        return -ENAMETOOLONG;
    for (p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* This process's path in the hierarchy whose /proc/self/cgroup line has
 * controller list ctl ("" for v2's "0::"). */
static int
own_path(const char *self, const char *ctl, bool v2, char *out, size_t outsz)
{
    const char *line = self;

    while (line && *line) {
        const char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        const char *end = strchr(line, '\n');
        size_t plen;

        if (!end)
            end = line + strlen(line);
        if (c1 && c2 && c2 < end) {
            bool match = false;

            if (v2)
                match = strncmp(line, "0::", 3) == 0;
            else {
                char list[256];
                size_t llen = (size_t)(c2 - c1 - 1);
                char *tok, *save;

                if (llen < sizeof list) {
                    memcpy(list, c1 + 1, llen);
                    list[llen] = '\0';
                    for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
                        if (strcmp(tok, ctl) == 0)
                            match = true;
                }
            }
            if (match) {
                plen = (size_t)(end - c2 - 1);
                if (plen >= outsz)
                    return -ENAMETOOLONG;
                memcpy(out, c2 + 1, plen);
                out[plen] = '\0';
                if (strcmp(out, "/") == 0)
                    out[0] = '\0';
                return 0;
            }
        }
        line = *end ? end + 1 : NULL;
    }
    return -ENOENT;
}

/* Mount points from a /proc/self/mounts text: the cgroup2 one, and the v1
 * one carrying option opt. */
static int
mount_point(const char *mounts, bool v2, const char *opt, char *out, size_t outsz)
{
    const char *line = mounts;

    while (line && *line) {
        char dev[256], dir[PATH_MAX], type[64], opts[1024];
        const char *end = strchr(line, '\n');

        if (sscanf(line, "%255s %4095s %63s %1023s", dev, dir, type, opts) == 4) {
            if (v2 && strcmp(type, "cgroup2") == 0)
                return strfmt(out, outsz, "%s", dir);
            if (!v2 && strcmp(type, "cgroup") == 0) {
                char *tok, *save;

                for (tok = strtok_r(opts, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
                    if (strcmp(tok, opt) == 0)
                        return strfmt(out, outsz, "%s", dir);
            }
        }
        line = end ? end + 1 : NULL;
    }
    return -ENOENT;
}

static bool
has_word(const char *text, const char *word)
{
    size_t n = strlen(word);
    const char *p = text;

    while ((p = strstr(p, word)) != NULL) {
        if ((p == text || p[-1] == ' ' || p[-1] == '+') &&
            (p[n] == '\0' || p[n] == ' ' || p[n] == '\n'))
            return true;
        p += n;
    }
    return false;
}

/*
 * v2: enable the controllers the root offers in dir's subtree_control.
 * A cgroup with processes of its own cannot hand controllers to children
 * (EBUSY): the agent itself then moves into a leaf "agent" beside its
 * instances, as systemd's Delegate=yes expects.
 */
static void
enable_v2(struct agt_cgroups *cg, const char *dir, bool may_move)
{
    static const char *const v2_names[AGT_CG_NCTL] = {"memory", "cpu", "pids"};
    char avail[1024];
    int k;

    if (read_file(dir, "cgroup.controllers", avail, sizeof avail) < 0)
        return;
    for (k = 0; k < AGT_CG_NCTL; k++) {
        char word[32];
        int rc;

        if (!has_word(avail, v2_names[k]))
            continue;
        snprintf(word, sizeof word, "+%s", v2_names[k]);
        rc = write_file(dir, "cgroup.subtree_control", word);
        if (rc == -EBUSY && may_move) {
            char leaf[PATH_MAX], pid[32];

            if (strfmt(leaf, sizeof leaf, "%s/agent", dir) == 0 && mkdirs(leaf) == 0) {
                snprintf(pid, sizeof pid, "%d", (int)getpid());
                if (write_file(leaf, "cgroup.procs", pid) == 0)
                    rc = write_file(dir, "cgroup.subtree_control", word);
            }
        }
        if (rc == 0)
            cg->v2ctl[k] = true;
    }
}

int
agt_cg_probe(struct agt_cgroups *cg, const char *mounts, const char *self, const char *root,
             const char *node, char *why, size_t whysz)
{
    char mnt[PATH_MAX], own[PATH_MAX], base[PATH_MAX], probe[PATH_MAX];
    int k, rc;

    memset(cg, 0, sizeof *cg);
    /* v2, where a cgroup2 hierarchy is mounted. */
    if (mount_point(mounts, true, NULL, mnt, sizeof mnt) == 0) {
        if (root && root[0])
            rc = strfmt(base, sizeof base, "%s", root);
        else if (own_path(self, "", true, own, sizeof own) == 0)
            rc = strfmt(base, sizeof base, "%s%s", mnt, own);
        else
            rc = -ENOENT;
        if (rc == 0 && (rc = mkdirs(base)) == 0) {
            enable_v2(cg, base, true);
            if (strfmt(cg->v2, sizeof cg->v2, "%s/drover.%s", base, node) < 0 ||
                (rc = mkdirs(cg->v2)) < 0) {
                snprintf(why, whysz, "cannot create %s: %s", cg->v2, strerror(-rc));
                cg->v2[0] = '\0';
            } else {
                bool any = false;

                for (k = 0; k < AGT_CG_NCTL; k++)
                    any |= cg->v2ctl[k];
                if (any) { /* the node's subtree hands them on to each instance */
                    bool keep[AGT_CG_NCTL];

                    memcpy(keep, cg->v2ctl, sizeof keep);
                    enable_v2(cg, cg->v2, false);
                    for (k = 0; k < AGT_CG_NCTL; k++)
                        cg->v2ctl[k] = keep[k] && cg->v2ctl[k];
                }
                if (strfmt(probe, sizeof probe, "%s/cgroup.kill", cg->v2) == 0)
                    cg->has_kill = access(probe, F_OK) == 0;
            }
        } else if (rc < 0)
            snprintf(why, whysz, "cannot create %s: %s", base, strerror(-rc));
    }
    /* v1, for each controller v2 does not have. */
    for (k = 0; k < AGT_CG_NCTL; k++) {
        if (cg->v2ctl[k] || mount_point(mounts, false, v1_names[k], mnt, sizeof mnt) < 0 ||
            own_path(self, v1_names[k], false, own, sizeof own) < 0)
            continue;
        if (strfmt(cg->v1[k], sizeof cg->v1[k], "%s%s/drover.%s", mnt, own, node) < 0 ||
            mkdirs(cg->v1[k]) < 0)
            cg->v1[k][0] = '\0';
    }
    if (!cg->v2[0] && mount_point(mounts, false, "cpuacct", mnt, sizeof mnt) == 0 &&
        own_path(self, "cpuacct", false, own, sizeof own) == 0) {
        if (strfmt(cg->cpuacct, sizeof cg->cpuacct, "%s%s/drover.%s", mnt, own, node) < 0 ||
            mkdirs(cg->cpuacct) < 0)
            cg->cpuacct[0] = '\0';
    }
    if (cg->v2[0])
        snprintf(cg->track, sizeof cg->track, "%s", cg->v2);
    else
        for (k = AGT_CG_NCTL - 1; k >= 0 && !cg->track[0]; k--)
            snprintf(cg->track, sizeof cg->track, "%s", cg->v1[k]);
    if (!cg->track[0]) {
        if (!why[0])
            snprintf(why, whysz, "no writable cgroup hierarchy");
        return -ENOTSUP;
    }
    cg->ok = true;
    return 0;
}

bool
agt_cg_can_limit(const struct agt_cgroups *cg, enum agt_cg_ctl k)
{
    return cg->ok && (cg->v2ctl[k] || cg->v1[k][0]);
}

static int
inst_dir(const char *sub, uint64_t id, char *out, size_t outsz)
{
    return strfmt(out, outsz, "%s/i%" PRIu64, sub, id);
}

/* Every directory an instance has: the tracking one first. */
static size_t
inst_dirs(const struct agt_cgroups *cg, uint64_t id, char out[][PATH_MAX])
{
    size_t n = 0;
    int k;

    if (cg->v2[0] && inst_dir(cg->v2, id, out[n], PATH_MAX) == 0)
        n++;
    /* A v1 one other than the tracker is made only for an instance with
     * that limit. */
    for (k = AGT_CG_NCTL - 1; k >= 0; k--)
        if (cg->v1[k][0] && inst_dir(cg->v1[k], id, out[n], PATH_MAX) == 0 &&
            (strcmp(cg->v1[k], cg->track) == 0 || access(out[n], F_OK) == 0))
            n++;
    if (cg->cpuacct[0] && inst_dir(cg->cpuacct, id, out[n], PATH_MAX) == 0)
        n++;
    return n;
}

static void
limit_v2(const char *dir, const struct agt_limits *l, enum agt_cg_ctl k, char *err, size_t errsz,
         int *rc)
{
    char v[64];
    int r = 0;

    switch (k) {
    case AGT_CG_MEMORY:
        snprintf(v, sizeof v, l->memory ? "%" PRIu64 : "max", l->memory);
        r = write_file(dir, "memory.max", v);
        if (r == 0 && l->memory) /* no swap to hide in; absent without swap */
            (void)write_file(dir, "memory.swap.max", "0");
        break;
    case AGT_CG_CPU:
        if (l->cpu_milli)
            snprintf(v, sizeof v, "%u 100000", (unsigned)l->cpu_milli * 100u);
        else
            snprintf(v, sizeof v, "max 100000");
        r = write_file(dir, "cpu.max", v);
        break;
    case AGT_CG_PIDS:
        snprintf(v, sizeof v, l->pids ? "%u" : "max", (unsigned)l->pids);
        r = write_file(dir, "pids.max", v);
        break;
    default:
        break;
    }
    if (r < 0 && *rc == 0) {
        *rc = r;
        snprintf(err, errsz, "cannot set the %s limit: %s", v1_names[k], strerror(-r));
    }
}

static void
limit_v1(const char *dir, const struct agt_limits *l, enum agt_cg_ctl k, char *err, size_t errsz,
         int *rc)
{
    char v[64];
    int r = 0;

    switch (k) {
    case AGT_CG_MEMORY:
        snprintf(v, sizeof v, l->memory ? "%" PRIu64 : "-1", l->memory);
        if (!l->memory) /* memsw must stay >= the limit: raise it first */
            (void)write_file(dir, "memory.memsw.limit_in_bytes", "-1");
        r = write_file(dir, "memory.limit_in_bytes", v);
        if (r == 0 && l->memory)
            (void)write_file(dir, "memory.memsw.limit_in_bytes", v);
        break;
    case AGT_CG_CPU:
        r = write_file(dir, "cpu.cfs_period_us", "100000");
        snprintf(v, sizeof v, "%d", l->cpu_milli ? (int)l->cpu_milli * 100 : -1);
        if (r == 0)
            r = write_file(dir, "cpu.cfs_quota_us", v);
        break;
    case AGT_CG_PIDS:
        snprintf(v, sizeof v, l->pids ? "%u" : "max", (unsigned)l->pids);
        r = write_file(dir, "pids.max", v);
        break;
    default:
        break;
    }
    if (r < 0 && *rc == 0) {
        *rc = r;
        snprintf(err, errsz, "cannot set the %s limit: %s", v1_names[k], strerror(-r));
    }
}

int
agt_cg_create(const struct agt_cgroups *cg, uint64_t id, const struct agt_limits *l, char *err,
              size_t errsz)
{
    char dir[PATH_MAX];
    int k, rc = 0;

    err[0] = '\0';
    if (cg->v2[0]) {
        if (inst_dir(cg->v2, id, dir, sizeof dir) < 0 || (rc = mkdirs(dir)) < 0) {
            snprintf(err, errsz, "cannot create cgroup %s: %s", dir, strerror(-rc));
            return rc ? rc : -ENAMETOOLONG;
        }
        for (k = 0; k < AGT_CG_NCTL; k++)
            if (cg->v2ctl[k])
                limit_v2(dir, l, (enum agt_cg_ctl)k, err, errsz, &rc);
    }
    for (k = 0; k < AGT_CG_NCTL && rc == 0; k++) {
        int r;

        if (!cg->v1[k][0])
            continue;
        /*
         * A v1 hierarchy costs a mkdir, a join and an rmdir per start, and the
         * join (a cgroup.procs write) takes a machine-wide lock with an RCU
         * grace period: 1.7 ms each here, and at a start of 1,000 it was
         * 1.3 s of the 3.9 s (the start without it: 2.6 s, the same as with
         * no cgroups at all). So each only where the instance has that
         * limit (usage comes from v2's cpu.stat or cpuacct, and memory from
         * its members' RSS, v1_rss), and whichever tracks membership when
         * there is no v2.
         */
        if (strcmp(cg->v1[k], cg->track) != 0 &&
            ((k == AGT_CG_CPU && !l->cpu_milli) || (k == AGT_CG_PIDS && !l->pids) ||
             (k == AGT_CG_MEMORY && !l->memory))) {
            if (inst_dir(cg->v1[k], id, dir, sizeof dir) == 0)
                rmdir(dir); /* an earlier run's, if empty */
            continue;
        }
        if (inst_dir(cg->v1[k], id, dir, sizeof dir) < 0 || (r = mkdirs(dir)) < 0) {
            snprintf(err, errsz, "cannot create cgroup %s", dir);
            return -EIO;
        }
        limit_v1(dir, l, (enum agt_cg_ctl)k, err, errsz, &rc);
    }
    if (rc == 0 && cg->cpuacct[0]) {
        if (inst_dir(cg->cpuacct, id, dir, sizeof dir) < 0 || mkdirs(dir) < 0) {
            snprintf(err, errsz, "cannot create cgroup %s", dir);
            return -EIO;
        }
    }
    return rc;
}

/*
 * Which of the directories agt_cg_create makes, said from the limits alone
 * (nothing on the disk is asked): the procs paths are wanted on the loop
 * before the spawner thread makes them (agt_cg_prepare).
 */
int
agt_cg_procs(const struct agt_cgroups *cg, uint64_t id, const struct agt_limits *l,
             char out[][PATH_MAX], size_t max)
{
    char dirs[AGT_CG_NCTL + 2][PATH_MAX];
    size_t n = 0, k;
    int c;

    if (cg->v2[0] && inst_dir(cg->v2, id, dirs[n], PATH_MAX) == 0)
        n++;
    for (c = AGT_CG_NCTL - 1; c >= 0; c--) {
        bool made = strcmp(cg->v1[c], cg->track) == 0 || (c == AGT_CG_MEMORY && l->memory) ||
                    (c == AGT_CG_CPU && l->cpu_milli) || (c == AGT_CG_PIDS && l->pids);

        if (cg->v1[c][0] && made && inst_dir(cg->v1[c], id, dirs[n], PATH_MAX) == 0)
            n++;
    }
    if (cg->cpuacct[0] && inst_dir(cg->cpuacct, id, dirs[n], PATH_MAX) == 0)
        n++;
    if (n > max)
        return -ENOSPC;
    for (k = 0; k < n; k++)
        if (strfmt(out[k], PATH_MAX, "%s/cgroup.procs", dirs[k]) < 0)
            return -ENAMETOOLONG;
    return (int)n;
}

void
agt_cg_prepare(struct agt_cg_prep *p)
{
    p->err[0] = '\0';
    p->oom_base = 0;
    p->rc = agt_cg_create(p->cg, p->id, &p->limits, p->err, sizeof p->err);
    if (p->rc < 0)
        return;
    if (agt_cg_populated(p->cg, p->id) > 0) /* what the last run left */
        agt_cg_kill(p->cg, p->id);
    if (agt_cg_oom_kills(p->cg, p->id, &p->oom_base) < 0)
        p->oom_base = 0;
}

int
agt_cg_signal(const struct agt_cgroups *cg, uint64_t id, int sig)
{
    char dir[PATH_MAX], path[PATH_MAX], line[32];
    int sent = 0;
    FILE *f;

    if (inst_dir(cg->track, id, dir, sizeof dir) < 0 ||
        strfmt(path, sizeof path, "%s/cgroup.procs", dir) < 0)
        return -ENAMETOOLONG;
    f = fopen(path, "re");
    if (!f)
        return -errno;
    while (fgets(line, sizeof line, f)) {
        int pid = atoi(line);

        if (pid > 1 && kill(pid, sig) == 0)
            sent++;
    }
    fclose(f);
    return sent;
}

int
agt_cg_kill(const struct agt_cgroups *cg, uint64_t id)
{
    char dir[PATH_MAX];
    int round, rc;

    if (inst_dir(cg->track, id, dir, sizeof dir) < 0)
        return -ENAMETOOLONG;
    if (cg->v2[0] && cg->has_kill && (rc = write_file(dir, "cgroup.kill", "1")) == 0)
        return 0;
    /* No cgroup.kill: SIGKILL each member until a pass finds none (a fork
     * racing the first pass is caught by the next). */
    for (round = 0; round < 16; round++) {
        rc = agt_cg_signal(cg, id, SIGKILL);
        if (rc <= 0)
            return rc < 0 && rc != -ENOENT ? rc : 0;
    }
    return 0;
}

int
agt_cg_populated(const struct agt_cgroups *cg, uint64_t id)
{
    char dir[PATH_MAX], buf[64];
    uint64_t v;
    int rc;

    if (inst_dir(cg->track, id, dir, sizeof dir) < 0)
        return -ENAMETOOLONG;
    if (cg->v2[0]) {
        rc = read_key(dir, "cgroup.events", "populated", &v);
        if (rc == -ENOENT && access(dir, F_OK) < 0)
            return 0;
        return rc < 0 ? rc : v != 0;
    }
    rc = read_file(dir, "cgroup.procs", buf, sizeof buf);
    if (rc == -ENOENT)
        return 0;
    return rc < 0 ? rc : buf[0] != '\0';
}

int
agt_cg_remove(const struct agt_cgroups *cg, uint64_t id)
{
    char dirs[AGT_CG_NCTL + 2][PATH_MAX];
    size_t n = inst_dirs(cg, id, dirs), k;
    int rc = 0;

    for (k = 0; k < n; k++)
        if (rmdir(dirs[k]) < 0 && errno != ENOENT && rc == 0)
            rc = -errno;
    return rc;
}

/* The resident memory of the members of the tracking cgroup, summed (pages
 * shared between them are counted in each): the memory of an instance that
 * has no v1 memory cgroup. */
static int
members_rss(const struct agt_cgroups *cg, uint64_t id, uint64_t *mem)
{
    char dir[PATH_MAX], path[PATH_MAX], line[32], statm[128];
    long page = sysconf(_SC_PAGESIZE);
    FILE *f;

    *mem = 0;
    if (inst_dir(cg->track, id, dir, sizeof dir) < 0 ||
        strfmt(path, sizeof path, "%s/cgroup.procs", dir) < 0)
        return -ENAMETOOLONG;
    if ((f = fopen(path, "re")) == NULL)
        return -errno;
    while (fgets(line, sizeof line, f)) {
        unsigned long long size, resident;
        char proc[32];

        snprintf(proc, sizeof proc, "/proc/%d", atoi(line));
        if (read_file(proc, "statm", statm, sizeof statm) == 0 &&
            sscanf(statm, "%llu %llu", &size, &resident) == 2)
            *mem += (uint64_t)resident * (uint64_t)(page > 0 ? page : 4096);
    }
    fclose(f);
    return 0;
}

int
agt_cg_usage(const struct agt_cgroups *cg, uint64_t id, uint64_t *mem, uint64_t *cpu_usec)
{
    char dir[PATH_MAX];
    int rc = 0;

    *mem = *cpu_usec = 0;
    if (cg->v2[0] && inst_dir(cg->v2, id, dir, sizeof dir) == 0) {
        if (cg->v2ctl[AGT_CG_MEMORY])
            rc = read_u64(dir, "memory.current", mem);
        if (rc == 0)
            rc = read_key(dir, "cpu.stat", "usage_usec", cpu_usec);
    } else if (cg->cpuacct[0] && inst_dir(cg->cpuacct, id, dir, sizeof dir) == 0) {
        uint64_t ns = 0;

        rc = read_u64(dir, "cpuacct.usage", &ns);
        *cpu_usec = ns / 1000;
    }
    if (rc == 0 && !cg->v2ctl[AGT_CG_MEMORY] && cg->v1[AGT_CG_MEMORY][0] &&
        inst_dir(cg->v1[AGT_CG_MEMORY], id, dir, sizeof dir) == 0) {
        rc = read_u64(dir, "memory.usage_in_bytes", mem);
        if (rc == -ENOENT) /* no memory limit, so no v1 memory cgroup */
            rc = members_rss(cg, id, mem);
    }
    return rc;
}

int
agt_cg_oom_kills(const struct agt_cgroups *cg, uint64_t id, uint64_t *n)
{
    char dir[PATH_MAX];

    *n = 0;
    if (cg->v2ctl[AGT_CG_MEMORY] && inst_dir(cg->v2, id, dir, sizeof dir) == 0)
        return read_key(dir, "memory.events", "oom_kill", n);
    if (cg->v1[AGT_CG_MEMORY][0] && inst_dir(cg->v1[AGT_CG_MEMORY], id, dir, sizeof dir) == 0)
        return read_key(dir, "memory.oom_control", "oom_kill", n);
    return -ENOTSUP;
}

int
agt_cg_list(const struct agt_cgroups *cg, uint64_t **ids, size_t *n)
{
    DIR *d = opendir(cg->track);
    struct dirent *de;
    uint64_t *v = NULL;
    size_t cap = 0;

    *ids = NULL;
    *n = 0;
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    while ((de = readdir(d)) != NULL) {
        char *end;
        uint64_t id;

        if (de->d_name[0] != 'i' || de->d_name[1] < '1' || de->d_name[1] > '9')
            continue;
        id = strtoull(de->d_name + 1, &end, 10);
        if (*end != '\0')
            continue;
        if (*n == cap) {
            uint64_t *nv = realloc(v, (cap ? cap * 2 : 16) * sizeof *v);

            if (!nv) {
                free(v);
                closedir(d);
                return -ENOMEM;
            }
            v = nv;
            cap = cap ? cap * 2 : 16;
        }
        v[(*n)++] = id;
    }
    closedir(d);
    *ids = v;
    return 0;
}
