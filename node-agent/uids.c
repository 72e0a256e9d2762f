/* SPDX-License-Identifier: MIT */
/*
 * uids.c: a user per app, stable on this node for the app's life.
 *
 * When the agent runs as root and DROVER_RUN_AS is not set, each app gets a
 * uid from DROVER_UID_RANGE (config.c refuses a range holding an existing
 * account or group), and the gid with the same number. The first time an
 * app is seen on this node it takes the lowest number never handed out
 * before; the table lives in DATA_DIR/uids ("APP UID" per line, rewritten
 * whole and renamed into place), so an agent restart keeps every app's
 * numbers. A number is never handed out twice, not even after its app is
 * gone: files or processes of the old owner could still hold it, and a
 * range of 4,336 numbers per node outlasts any plausible churn of apps
 * (a full range is an error said in the spawn failure).
 *
 * The parsing and choosing are pure (agt_uids_parse, agt_uids_pick) for
 * the unit tests; the file is small, so it is read and written on the loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agt.h"
#include "log.h"
#include "util.h"

struct agt_uids {
    char path[PATH_MAX];
    uint32_t lo, hi;
    struct agt_uid_entry *v;
    size_t n, cap;
};

static int
add(struct agt_uids *u, const char *app, uint32_t uid)
{
    if (u->n == u->cap) {
        size_t nc = u->cap ? u->cap * 2 : 16;
        struct agt_uid_entry *nv = realloc(u->v, nc * sizeof *nv);

        if (!nv)
            return -ENOMEM;
        u->v = nv;
        u->cap = nc;
    }
    snprintf(u->v[u->n].app, sizeof u->v[u->n].app, "%s", app);
    u->v[u->n].uid = uid;
    u->n++;
    return 0;
}

int
agt_uids_parse(const char *text, struct agt_uid_entry **out, size_t *n)
{
    struct agt_uids u = {0};
    const char *line = text;
    int rc = 0;

    while (line && *line && rc == 0) {
        char app[64];
        unsigned long uid;
        int used = 0;

        if (sscanf(line, "%63s %lu%n", app, &uid, &used) == 2 && name_app_valid(app) && uid > 0 &&
            uid < UINT32_MAX)
            rc = add(&u, app, (uint32_t)uid);
        else if (line[0] != '\n') /* a damaged line: the rest still counts */
            rc = 0;
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    if (rc < 0) {
        free(u.v);
        return rc;
    }
    *out = u.v;
    *n = u.n;
    return 0;
}

int
agt_uids_pick(const struct agt_uid_entry *v, size_t n, uint32_t lo, uint32_t hi, uint32_t *uid)
{
    uint32_t next = lo;

    /* Above every number ever given: never one that was. */
    for (size_t k = 0; k < n; k++)
        if (v[k].uid >= next && v[k].uid >= lo && v[k].uid <= hi)
            next = v[k].uid + 1;
    if (next > hi || next < lo)
        return -ENOSPC;
    *uid = next;
    return 0;
}

struct agt_uids *
agt_uids_new(const char *data_dir, uint32_t lo, uint32_t hi, int *err)
{
    struct agt_uids *u = calloc(1, sizeof *u);
    char buf[1 << 16];
    ssize_t len;
    int fd, rc = -ENOMEM;

    if (!u)
        goto out;
    u->lo = lo;
    u->hi = hi;
    rc = strfmt(u->path, sizeof u->path, "%s/uids", data_dir);
    if (rc < 0)
        goto out;
    fd = open(u->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = errno == ENOENT ? 0 : -errno;
        goto out;
    }
    len = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (len < 0) {
        rc = -EIO;
        goto out;
    }
    buf[len] = '\0';
    rc = agt_uids_parse(buf, &u->v, &u->n);
    u->cap = u->n;
out:
    if (rc < 0 && u) {
        free(u->v);
        free(u);
        u = NULL;
    }
    *err = rc;
    return u;
}

void
agt_uids_free(struct agt_uids *u)
{
    if (!u)
        return;
    free(u->v);
    free(u);
}

static int
save(const struct agt_uids *u)
{
    char tmp[PATH_MAX + 8];
    FILE *f;
    int rc = 0;

    if (strfmt(tmp, sizeof tmp, "%s.tmp", u->path) < 0)
        return -ENAMETOOLONG;
    f = fopen(tmp, "we");
    if (!f)
        return -errno;
    for (size_t k = 0; k < u->n; k++)
        fprintf(f, "%s %" PRIu32 "\n", u->v[k].app, u->v[k].uid);
    if (fclose(f) != 0)
        rc = -EIO;
    if (rc == 0 && rename(tmp, u->path) < 0)
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
    return rc;
}

int
agt_uids_get(struct agt_uids *u, const char *app, uint32_t *uid)
{
    int rc;

    for (size_t k = 0; k < u->n; k++)
        if (strcmp(u->v[k].app, app) == 0) {
            *uid = u->v[k].uid;
            return 0;
        }
    if ((rc = agt_uids_pick(u->v, u->n, u->lo, u->hi, uid)) < 0)
        return rc;
    if ((rc = add(u, app, *uid)) < 0)
        return rc;
    if ((rc = save(u)) < 0) { /* unsaved, it could change after a restart: refuse */
        u->n--;
        return rc;
    }
    log_info("app_user", "app=%s uid=%" PRIu32 " gid=%" PRIu32, app, *uid, *uid);
    return 0;
}
