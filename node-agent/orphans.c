/* SPDX-License-Identifier: MIT */
/*
 * orphans.c: what a killed agent left running, and how to know it again.
 *
 * Every process group the agent starts is recorded in
 * DROVER_DATA_DIR/run/records (one 256-byte slot per instance, written when
 * it is spawned and zeroed once its group is gone), so that an agent killed with SIGKILL can find,
 * when it starts again, the groups it left behind: they are nobody's children any more and their
 * output pipes have no reader. The agent stops them (it does not adopt them; see the README, "Agent
 * restart") and starts afresh.
 *
 * A pid can be reused, so a record names its group by pgid *and* the start
 * time of the group's leader (/proc/PID/stat field 22, clock ticks since
 * boot). A group is the one we started when it still has a live member
 * whose group and session are the recorded pgid (instances run in their own
 * session), and either its leader is still there with the recorded start
 * time, or — the leader gone, its children left — every live member started
 * no earlier than the leader did. Linux does not hand out a pid that is still
 * some group's id, so a group outlived by its members keeps its number.
 *
 * Zombies do not count as members: they run nothing, and where the init
 * process does not reap orphans promptly they would hold a drain open.
 *
 * Records are written without fsync: they only need to outlive the agent
 * process, not the machine (after a reboot no group is left to find).
 *
 * One file of slots, not a file per instance: creating a file per spawn
 * (and a temporary to rename) was the largest cost of a start in the
 * profile (ext4 inode allocation, about 30 % of the agent's time while it
 * started 1,000 listeners). A slot is one pwrite to a descriptor kept open;
 * a record fits a slot whole, and a write this small to the page cache is
 * not torn by the agent's death. Records in files of their own, from an
 * agent before this one, are still read (and moved into slots). The slot
 * file and its index are struct agt_runrecs, one per agent (agt_runrecs(a)).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agt.h"
#include "log.h"
#include "util.h"

#define RUNREC_VERSION 1
#define SLOT 256 /* bytes: a record, NUL-padded; all zero when free */

/* ---- /proc ---- */

int
agt_proc_parse(const char *stat, struct agt_proc *p)
{
    const char *rp = strrchr(stat, ')');
    unsigned long long start = 0;
    int pid, pgrp, sid, n, field;
    char state;

    /* comm may hold spaces and parentheses: parse from the last ')'. */
    if (sscanf(stat, "%d", &pid) != 1 || rp == NULL)
        return -EINVAL;
    if (sscanf(rp + 1, " %c %*d %d %d%n", &state, &pgrp, &sid, &n) != 3)
        return -EINVAL;
    rp += 1 + n;
    /* Fields 7..21 skipped, field 22 is the start time. */
    for (field = 7; field <= 22; field++) {
        while (*rp == ' ')
            rp++;
        if (*rp == '\0')
            return -EINVAL;
        if (field == 22 && sscanf(rp, "%llu", &start) != 1)
            return -EINVAL;
        while (*rp != ' ' && *rp != '\0')
            rp++;
    }
    p->pid = pid;
    p->pgrp = pgrp;
    p->sid = sid;
    p->state = state;
    p->start = start;
    return 0;
}

int
agt_proc_read(int pid, struct agt_proc *p)
{
    char path[64], buf[1024];
    ssize_t n;
    int fd;

    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return n < 0 ? -errno : -EINVAL;
    buf[n] = '\0';
    return agt_proc_parse(buf, p);
}

static bool
live(const struct agt_proc *p)
{
    return p->state != 'Z' && p->state != 'X' && p->state != 'x';
}

/*
 * Every process of group pgid, or every process when pgid is 0. *v is
 * malloc'd. Processes that vanish meanwhile are skipped.
 */
static int
proc_scan(int pgid, struct agt_proc **v, size_t *n)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    struct agt_proc *out = NULL, p;
    size_t cap = 0;

    *v = NULL;
    *n = 0;
    if (!d)
        return -errno;
    while ((de = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);

        if (*end != '\0' || pid <= 0 || agt_proc_read((int)pid, &p) < 0)
            continue;
        if (pgid != 0 && p.pgrp != pgid)
            continue;
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            struct agt_proc *nv = realloc(out, nc * sizeof *nv);

            if (!nv) {
                free(out);
                closedir(d);
                return -ENOMEM;
            }
            out = nv;
            cap = nc;
        }
        out[(*n)++] = p;
    }
    closedir(d);
    *v = out;
    return 0;
}

bool
agt_group_alive(int pgid)
{
    struct agt_proc *v = NULL;
    size_t n = 0;
    bool alive = false;

    if (pgid <= 1 || (kill(-pgid, 0) < 0 && errno == ESRCH))
        return false;
    if (proc_scan(pgid, &v, &n) < 0)
        return true; /* cannot tell: assume the worst, the caller has a deadline */
    for (size_t k = 0; k < n && !alive; k++)
        alive = live(&v[k]);
    free(v);
    return alive;
}

bool
agt_orphan_match(const struct agt_runrec *r, const struct agt_proc *v, size_t n)
{
    bool leader = false, member = false;

    for (size_t k = 0; k < n; k++) {
        if (v[k].pid == r->pgid) {
            leader = true;
            if (v[k].start != r->start || v[k].pgrp != r->pgid)
                return false; /* the pid is someone else's now */
        }
    }
    for (size_t k = 0; k < n; k++) {
        if (v[k].pgrp != r->pgid || v[k].sid != r->pgid || !live(&v[k]))
            continue;
        if (!leader && v[k].start < r->start)
            return false; /* older than our leader: not from our group */
        member = true;
    }
    return member;
}

/* ---- records ---- */

int
agt_runrec_format(const struct agt_runrec *r, char *buf, size_t bufsz)
{
    return strfmt(buf, bufsz, "%d %" PRIu64 " %d %" PRIu64 " %u %u %u %s %s %s\n", RUNREC_VERSION,
                  r->id, r->pgid, r->start, (unsigned)r->grace_ms, (unsigned)r->port,
                  (unsigned)r->release, r->app, r->name, r->sha);
}

int
agt_runrec_parse(const char *text, struct agt_runrec *r)
{
    char app[64], name[96], sha[96];
    unsigned grace, port, release;
    int version, pgid, n = 0;
    uint64_t id, start;

    memset(r, 0, sizeof *r);
    if (sscanf(text, "%d %" SCNu64 " %d %" SCNu64 " %u %u %u %63s %95s %95s%n", &version, &id,
               &pgid, &start, &grace, &port, &release, app, name, sha, &n) != 10 ||
        version != RUNREC_VERSION)
        return -EINVAL;
    if (id == 0 || pgid <= 1 || port == 0 || port > 65535 || !name_app_valid(app) ||
        !name_instance_valid(name) || strlen(sha) != 64)
        return -EINVAL;
    r->id = id;
    r->pgid = pgid;
    r->start = start;
    r->grace_ms = grace;
    r->port = (uint16_t)port;
    r->release = release;
    if (strfmt(r->app, sizeof r->app, "%s", app) < 0 ||
        strfmt(r->name, sizeof r->name, "%s", name) < 0 ||
        strfmt(r->sha, sizeof r->sha, "%s", sha) < 0)
        return -EINVAL;
    return 0;
}

/* The slot file: open, and which slot holds which id (0: free). Loop
 * thread only; lookups are linear, a few microseconds at 1,000. */
struct agt_runrecs {
    const char *data_dir; /* borrowed: the agent's config outlives it */
    int fd;               /* -1 until the first use opens it */
    uint64_t *slot_id;
    size_t nslots;
};

struct agt_runrecs *
agt_runrecs_new(const char *data_dir)
{
    struct agt_runrecs *rr = calloc(1, sizeof *rr);

    if (!rr)
        return NULL;
    rr->data_dir = data_dir;
    rr->fd = -1;
    return rr;
}

void
agt_runrecs_free(struct agt_runrecs *rr)
{
    if (!rr)
        return;
    if (rr->fd >= 0)
        close(rr->fd);
    free(rr->slot_id);
    free(rr);
}

static int
slots_open(struct agt_runrecs *rr)
{
    char path[PATH_MAX], buf[SLOT];
    struct agt_runrec r;
    size_t k;
    int rc;

    if (rr->fd >= 0)
        return 0;
    if ((rc = strfmt(path, sizeof path, "%s/run", rr->data_dir)) < 0 ||
        (rc = mkdir_p(path, 0700)) < 0)
        return rc;
    if ((rc = strfmt(path, sizeof path, "%s/run/records", rr->data_dir)) < 0)
        return rc;
    rr->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (rr->fd < 0)
        return -errno;
    /* What the file holds now: a predecessor's records, till they are read. */
    for (k = 0; pread(rr->fd, buf, SLOT, (off_t)(k * SLOT)) == SLOT; k++) {
        uint64_t *nv = realloc(rr->slot_id, (k + 1) * sizeof *nv);

        if (!nv)
            return -ENOMEM;
        rr->slot_id = nv;
        buf[SLOT - 1] = '\0';
        rr->slot_id[k] = buf[0] && agt_runrec_parse(buf, &r) == 0 ? r.id : 0;
        rr->nslots = k + 1;
    }
    return 0;
}

static int
slot_write(struct agt_runrecs *rr, size_t k, const char *text)
{
    char buf[SLOT] = {0};

    if (text)
        snprintf(buf, sizeof buf, "%s", text);
    return pwrite(rr->fd, buf, SLOT, (off_t)(k * SLOT)) == SLOT ? 0 : -EIO;
}

int
agt_runrec_save(struct agt_runrecs *rr, const struct agt_runrec *r)
{
    char line[SLOT];
    size_t k, free_k;
    int rc;

    if ((rc = slots_open(rr)) < 0 || (rc = agt_runrec_format(r, line, sizeof line)) < 0)
        return rc;
    free_k = rr->nslots;
    for (k = 0; k < rr->nslots; k++) {
        if (rr->slot_id[k] == r->id)
            break;
        if (rr->slot_id[k] == 0 && free_k == rr->nslots)
            free_k = k;
    }
    if (k == rr->nslots)
        k = free_k;
    if (k == rr->nslots) {
        uint64_t *nv = realloc(rr->slot_id, (rr->nslots + 1) * sizeof *nv);

        if (!nv)
            return -ENOMEM;
        rr->slot_id = nv;
        rr->slot_id[rr->nslots++] = 0;
    }
    if ((rc = slot_write(rr, k, line)) < 0)
        return rc;
    rr->slot_id[k] = r->id;
    return 0;
}

static void
legacy_remove(const char *data_dir, uint64_t id)
{
    char path[PATH_MAX];

    if (strfmt(path, sizeof path, "%s/run/%" PRIu64, data_dir, id) == 0 && unlink(path) < 0 &&
        errno != ENOENT)
        log_warn("runrec_remove_failed", "path=%s err=%s", log_q(path), log_q(strerror(errno)));
}

void
agt_runrec_remove(struct agt_runrecs *rr, uint64_t id)
{
    if (slots_open(rr) < 0)
        return;
    for (size_t k = 0; k < rr->nslots; k++)
        if (rr->slot_id[k] == id) {
            if (slot_write(rr, k, NULL) < 0)
                log_warn("runrec_remove_failed", "id=%" PRIu64 " err=%s", id,
                         log_q(strerror(errno)));
            rr->slot_id[k] = 0;
            return;
        }
}

int
agt_runrec_start_time(int pid, uint64_t *start)
{
    struct agt_proc p;
    int rc = agt_proc_read(pid, &p);

    if (rc == 0)
        *start = p.start;
    return rc;
}

static int
read_text(const char *path, char *buf, size_t bufsz)
{
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return -errno;
    n = read(fd, buf, bufsz - 1);
    close(fd);
    if (n < 0)
        return -errno;
    buf[n] = '\0';
    return 0;
}

/* Keep r in *v when its group is still there; else forget it. */
static int
consider(struct agt_runrecs *rr, const struct agt_runrec *r, const struct agt_cgroups *cg,
         const struct agt_proc *procs, size_t nprocs, struct agt_runrec **v, size_t *n, size_t *cap)
{
    /* With cgroups, a member that left the group (setsid) still counts. */
    if (!agt_orphan_match(r, procs, nprocs) && !(cg && agt_cg_populated(cg, r->id) > 0)) {
        agt_runrec_remove(rr, r->id); /* gone, or its pid is someone else's now */
        return 0;
    }
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        struct agt_runrec *nv = realloc(*v, nc * sizeof *nv);

        if (!nv)
            return -ENOMEM;
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = *r;
    return 0;
}

int
agt_orphans_find(struct agt_runrecs *rr, const struct agt_cgroups *cg, struct agt_runrec **out,
                 size_t *nout)
{
    const char *data_dir = rr->data_dir;
    char dir[PATH_MAX], path[PATH_MAX], text[512];
    struct agt_runrec *v = NULL, r;
    struct agt_proc *procs = NULL;
    size_t n = 0, cap = 0, nprocs = 0, k;
    struct dirent *de;
    DIR *d = NULL;
    int rc;

    *out = NULL;
    *nout = 0;
    if ((rc = strfmt(dir, sizeof dir, "%s/run", data_dir)) < 0 || (rc = mkdir_p(dir, 0700)) < 0)
        return rc;
    if ((rc = slots_open(rr)) < 0)
        return rc;
    if ((rc = proc_scan(0, &procs, &nprocs)) < 0)
        return rc;
    for (k = 0; k < rr->nslots; k++) {
        char buf[SLOT];

        if (rr->slot_id[k] == 0)
            continue;
        if (pread(rr->fd, buf, SLOT, (off_t)(k * SLOT)) != SLOT)
            continue;
        buf[SLOT - 1] = '\0';
        if (agt_runrec_parse(buf, &r) < 0)
            continue;
        if ((rc = consider(rr, &r, cg, procs, nprocs, &v, &n, &cap)) < 0)
            goto out;
    }
    /* Records of an agent from before the slots: one file each. */
    d = opendir(dir);
    if (!d) {
        rc = -errno;
        goto out;
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || strcmp(de->d_name, "records") == 0)
            continue;
        if (strfmt(path, sizeof path, "%s/%s", dir, de->d_name) < 0)
            continue;
        if (read_text(path, text, sizeof text) < 0 || agt_runrec_parse(text, &r) < 0) {
            log_warn("runrec_bad", "path=%s", log_q(path));
            unlink(path);
            continue;
        }
        legacy_remove(data_dir, r.id);
        if (agt_orphan_match(&r, procs, nprocs) || (cg && agt_cg_populated(cg, r.id) > 0))
            agt_runrec_save(rr, &r); /* now in a slot */
        if ((rc = consider(rr, &r, cg, procs, nprocs, &v, &n, &cap)) < 0)
            goto out;
    }
    *out = v;
    *nout = n;
    v = NULL;
    rc = 0;
out:
    if (d)
        closedir(d);
    free(v);
    free(procs);
    return rc;
}
