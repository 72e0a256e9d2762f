/* SPDX-License-Identifier: MIT */
/*
 * slugs.c: the slug cache (DATA/slugs/SHA.tar.gz) and the unpacked releases
 * (DATA/releases/APP/vN-SHA12/).
 *
 * A release is wanted by one or more instances; a slug by one or more
 * releases. Each SHA is fetched once, however many instances wait for it:
 * SlugReq chunks of WIRE_SLUG_CHUNK, one at a time on this module's own REQ
 * socket, appended to SHA.part with uv_fs_write. Hashing the whole file and
 * unpacking it are slow and block, so they run in uv_queue_work; the
 * after-work callbacks, on the loop thread, are the only ones to touch the
 * state here. Only a slug whose SHA-256 matched is renamed into the cache,
 * and only a completely unpacked release is renamed into place, so whatever
 * is found on disk at start can be trusted.
 *
 * Failures (a bad checksum, an Error reply, a refused unpack) are reported
 * to the agent, which marks the waiting instances failed, and retried with
 * the restart backoff schedule for as long as an instance still wants them.
 * Entries are never freed before agt_slugs_close: one per SHA and release
 * seen since start, a few hundred bytes each.
 *
 * The SlugReq goes through the agent's RPC client (common/rpc.c): one
 * outstanding, re-sealed and re-sent when unanswered for two heartbeats
 * (then longer, with jitter), following the leading controller. One
 * answered with something that does not open is asked again at once.
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agt.h"
#include "log.h"
#include "rpc.h"
#include "slug.h"
#include "util.h"

#define TICK_MS 1000

enum fetch_st { F_QUEUED, F_FETCHING, F_VERIFYING, F_READY, F_FAILED };
enum rel_st { R_WAIT, R_UNPACKING, R_READY, R_FAILED };

struct fetch {
    struct fetch *next;
    char sha[65];
    uint64_t size; /* expected, 0 when unknown */
    enum fetch_st st;
    int fd;
    uint64_t offset, total;
    uint32_t failures;
    uint64_t retry_at;
};

struct rel {
    struct rel *next;
    char app[32];
    uint32_t release;
    char sha[65];
    enum rel_st st;
    char dir[PATH_MAX];
    uint32_t failures;
    uint64_t retry_at;
    int64_t gid; /* the app's group, which alone may read it; -1: world-readable */
};

struct agt_slugs {
    struct agt *agt; /* borrowed */
    uv_loop_t *loop;
    const struct agt_config *cfg;
    struct rpc *rpc;
    struct fetch *fetches;
    struct rel *rels;
    struct fetch *active; /* the one on the socket */
    bool writing;         /* a chunk write is in flight */
    uv_timer_t tick;
    int pending; /* work and fs requests in flight, plus the tick timer */
    bool closing;
    bool gc_wanted, gc_running; /* see gc_start */
};

struct verify_job {
    uv_work_t w;
    struct agt_slugs *s;
    struct fetch *f;
    char part[PATH_MAX], path[PATH_MAX];
    int rc;
    char err[256];
};

struct unpack_job {
    uv_work_t w;
    struct agt_slugs *s;
    struct rel *r;
    char slug[PATH_MAX], tmp[PATH_MAX + 8];
    int rc;
    char err[256];
};

struct write_job {
    uv_fs_t req;
    struct agt_slugs *s;
    struct fetch *f;
    uint8_t *buf;
    size_t len;
};

static void kick(struct agt_slugs *s);
static void unpack_start(struct agt_slugs *s, struct rel *r);

static uint32_t
rnd32(void)
{
    uint32_t r = 0;

    if (uv_random(NULL, NULL, &r, sizeof r, 0, NULL) < 0)
        r = (uint32_t)uv_hrtime();
    return r;
}

static void
maybe_free(struct agt_slugs *s)
{
    if (!s->closing || s->pending > 0)
        return;
    while (s->fetches) {
        struct fetch *f = s->fetches;

        s->fetches = f->next;
        free(f);
    }
    while (s->rels) {
        struct rel *r = s->rels;

        s->rels = r->next;
        free(r);
    }
    free(s);
}

static int
slug_path(const struct agt_slugs *s, const char *sha, const char *ext, char *out, size_t outsz)
{
    return strfmt(out, outsz, "%s/slugs/%s.%s", s->cfg->data_dir, sha, ext);
}

static uint64_t
retry_delay(uint32_t failures)
{
    /* failures >= 1: at least about a second, doubling, capped. */
    return agt_backoff_ms(failures + 1, rnd32());
}

/* ---- telling the agent ---- */

static void
rel_done(struct agt_slugs *s, struct rel *r, int err, Drover__InstanceCause cause,
         const char *reason)
{
    if (err < 0) {
        r->st = R_FAILED;
        r->failures++;
        r->retry_at = mono_ms() + retry_delay(r->failures);
    } else {
        r->st = R_READY;
        r->failures = 0;
        s->gc_wanted = true; /* an older release may be garbage now */
    }
    agt_release_ready(s->agt, r->app, r->release, r->sha, r->dir, err, cause, reason);
}

/* The slug of f is in the cache, or could not be had. */
static void
fetch_done(struct agt_slugs *s, struct fetch *f, int err, const char *reason)
{
    if (err < 0) {
        f->st = F_FAILED;
        f->failures++;
        f->retry_at = mono_ms() + retry_delay(f->failures);
        log_error("slug_failed", "sha=%s err=%s retry_in_ms=%" PRIu64, f->sha, log_q(reason),
                  f->retry_at - mono_ms());
    } else {
        f->st = F_READY;
        f->failures = 0;
        log_info("slug_ready", "sha=%s size=%" PRIu64, f->sha, f->total);
    }
    for (struct rel *r = s->rels; r; r = r->next) {
        if (r->st != R_WAIT || strcmp(r->sha, f->sha) != 0)
            continue;
        if (err < 0) {
            char why[200];

            snprintf(why, sizeof why, "cannot fetch its slug: %s", reason);
            rel_done(s, r, err, DROVER__INSTANCE_CAUSE__CAUSE_FETCH_FAILED, why);
        } else
            unpack_start(s, r);
    }
}

/* ---- unpacking, off the loop ---- */

/*
 * A release belongs to root and is readable by its app's group only: the
 * group gets the owner's read and execute bits, others nothing, and no
 * set-id bit survives. Runs in the worker thread: nftw's callback finds
 * the gid in a thread-local.
 */
static _Thread_local gid_t restrict_gid;

static int
restrict_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    if (lchown(path, 0, restrict_gid) < 0)
        return -errno;
    if (flag != FTW_SL && chmod(path, (st->st_mode & 0500) | ((st->st_mode & 0500) >> 3)) < 0)
        return -errno;
    return 0;
}

static int
restrict_tree(const char *dir, const char *parent, gid_t gid)
{
    restrict_gid = gid;
    if (lchown(parent, 0, gid) < 0 || chmod(parent, 0750) < 0)
        return -errno;
    return nftw(dir, restrict_one, 16, FTW_PHYS);
}

/*
 * The unpacking itself is drover-unpack's (unpack_main.c), so that the agent
 * does not carry libarchive and its libraries: found where drover-exec is
 * (../libexec/drover/ from this binary when installed, beside it in a build
 * tree), run with nothing of ours (no environment, descriptors 0-2 only),
 * its one line of verdict read from a pipe. Its exit goes to the reaper
 * like any unknown pid's; the verdict is the line: "ok", or errno and why.
 */
static int
find_unpacker(char *out, size_t outsz)
{
    static const char *const where[] = {"/../libexec/drover/drover-unpack", "/drover-unpack"};
    char exe[PATH_MAX];
    size_t len = sizeof exe;
    char *slash;

    if (uv_exepath(exe, &len) < 0 || (slash = strrchr(exe, '/')) == NULL)
        return -ENOENT;
    *slash = '\0';
    for (size_t k = 0; k < sizeof where / sizeof where[0]; k++)
        if (strfmt(out, outsz, "%s%s", exe, where[k]) == 0 && access(out, X_OK) == 0)
            return 0;
    return -ENOENT;
}

static int
run_unpacker(const char *slug, const char *dest, char *err, size_t errsz)
{
    char helper[PATH_MAX], line[600], *argv[4], *no_env[] = {NULL};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, all;
    size_t got;
    pid_t pid;
    int p[2], rc, code;

    if (find_unpacker(helper, sizeof helper) < 0) {
        snprintf(err, errsz,
                 "no unpack helper: drover-unpack is neither in ../libexec/drover/ "
                 "from the agent's binary nor beside it");
        return -ENOENT;
    }
    if (pipe2(p, O_CLOEXEC) < 0) {
        snprintf(err, errsz, "cannot run drover-unpack: %s", strerror(errno));
        return -errno;
    }
    argv[0] = helper;
    argv[1] = (char *)slug;
    argv[2] = (char *)dest;
    argv[3] = NULL;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(&fa, p[1], 2);
    if (rc == 0)
        rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    if (rc == 0)
        rc = posix_spawnattr_setsigmask(&at, &none);
    if (rc == 0)
        rc = posix_spawnattr_setsigdefault(&at, &all);
    if (rc == 0)
        rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (rc == 0)
        rc = posix_spawn(&pid, helper, &fa, &at, argv, no_env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(p[1]);
    if (rc != 0) {
        close(p[0]);
        snprintf(err, errsz, "cannot run %.200s: %s", helper, strerror(rc));
        return -rc;
    }
    got = read_full(p[0], line, sizeof line - 1);
    close(p[0]);
    line[got] = '\0';
    line[strcspn(line, "\n")] = '\0';
    if (strcmp(line, "ok") == 0)
        return 0;
    if (sscanf(line, "%d ", &code) == 1 && code > 0 && strchr(line, ' ')) {
        snprintf(err, errsz, "%s", strchr(line, ' ') + 1);
        return -code;
    }
    snprintf(err, errsz, "drover-unpack ended without a verdict%s%.200s", got ? ": " : "", line);
    return -EIO;
}

static void
unpack_work(uv_work_t *w)
{
    struct unpack_job *j = w->data;
    char parent[PATH_MAX];
    char *slash;

    snprintf(parent, sizeof parent, "%s", j->r->dir);
    slash = strrchr(parent, '/');
    if (slash)
        *slash = '\0';
    j->rc = mkdir_p(parent, 0755);
    if (j->rc < 0) {
        snprintf(j->err, sizeof j->err, "mkdir %.180s: %s", parent, strerror(-j->rc));
        return;
    }
    rm_rf(j->tmp);
    j->rc = run_unpacker(j->slug, j->tmp, j->err, sizeof j->err);
    if (j->rc == 0 && j->r->gid >= 0 &&
        (j->rc = restrict_tree(j->tmp, parent, (gid_t)j->r->gid)) != 0) {
        snprintf(j->err, sizeof j->err, "cannot restrict the release to its app's group: %s",
                 strerror(j->rc < 0 ? -j->rc : errno));
        j->rc = j->rc < 0 ? j->rc : -EIO;
    }
    if (j->rc < 0) {
        rm_rf(j->tmp);
        return;
    }
    if (rename(j->tmp, j->r->dir) < 0) {
        j->rc = -errno;
        if (j->rc == -EEXIST || j->rc == -ENOTEMPTY) /* already there: fine */
            j->rc = 0;
        else
            snprintf(j->err, sizeof j->err, "rename: %s", strerror(errno));
        rm_rf(j->tmp);
    }
}

static void
unpack_after(uv_work_t *w, int status)
{
    struct unpack_job *j = w->data;
    struct agt_slugs *s = j->s;

    s->pending--;
    if (!s->closing) {
        if (status < 0 && j->rc == 0) {
            j->rc = status;
            snprintf(j->err, sizeof j->err, "%s", uv_strerror(status));
        }
        if (j->rc < 0)
            log_error("unpack_failed", "app=%s release=%u sha=%s err=%s", j->r->app,
                      (unsigned)j->r->release, j->r->sha, log_q(j->err));
        else
            log_info("unpacked", "app=%s release=%u dir=%s", j->r->app, (unsigned)j->r->release,
                     log_q(j->r->dir));
        rel_done(s, j->r, j->rc, DROVER__INSTANCE_CAUSE__CAUSE_UNPACK_FAILED, j->err);
    }
    free(j);
    maybe_free(s);
}

static void
unpack_start(struct agt_slugs *s, struct rel *r)
{
    struct unpack_job *j = calloc(1, sizeof *j);
    int rc = -ENOMEM;

    if (!j)
        goto out;
    j->s = s;
    j->r = r;
    j->w.data = j;
    rc = slug_path(s, r->sha, "tar.gz", j->slug, sizeof j->slug);
    if (rc == 0)
        rc = strfmt(j->tmp, sizeof j->tmp, "%s.tmp", r->dir);
    if (rc == 0)
        rc = uv_queue_work(s->loop, &j->w, unpack_work, unpack_after);
    if (rc < 0)
        goto out;
    r->st = R_UNPACKING;
    s->pending++;
    j = NULL;
out:
    free(j);
    if (rc < 0)
        rel_done(s, r, rc, DROVER__INSTANCE_CAUSE__CAUSE_UNPACK_FAILED, "cannot start unpacking");
}

/* ---- verifying, off the loop ---- */

static void
verify_work(uv_work_t *w)
{
    struct verify_job *j = w->data;
    char hex[65];
    uint64_t size = 0;

    j->rc = slug_sha256_file(j->part, hex, &size);
    if (j->rc < 0) {
        snprintf(j->err, sizeof j->err, "hash: %s", strerror(-j->rc));
    } else if (strcmp(hex, j->f->sha) != 0 || size != j->f->total) {
        j->rc = -EBADMSG;
        snprintf(j->err, sizeof j->err, "checksum mismatch: got %s", hex);
    } else if (rename(j->part, j->path) < 0) {
        j->rc = -errno;
        snprintf(j->err, sizeof j->err, "rename: %s", strerror(errno));
    }
    if (j->rc < 0)
        unlink(j->part);
}

static void
verify_after(uv_work_t *w, int status)
{
    struct verify_job *j = w->data;
    struct agt_slugs *s = j->s;

    s->pending--;
    if (!s->closing) {
        if (status < 0 && j->rc == 0) {
            j->rc = status;
            snprintf(j->err, sizeof j->err, "%s", uv_strerror(status));
        }
        fetch_done(s, j->f, j->rc, j->err);
    }
    free(j);
    maybe_free(s);
}

static void
verify_start(struct agt_slugs *s, struct fetch *f)
{
    struct verify_job *j = calloc(1, sizeof *j);
    int rc = -ENOMEM;

    if (!j)
        goto out;
    j->s = s;
    j->f = f;
    j->w.data = j;
    rc = slug_path(s, f->sha, "part", j->part, sizeof j->part);
    if (rc == 0)
        rc = slug_path(s, f->sha, "tar.gz", j->path, sizeof j->path);
    if (rc == 0)
        rc = uv_queue_work(s->loop, &j->w, verify_work, verify_after);
    if (rc < 0)
        goto out;
    f->st = F_VERIFYING;
    s->pending++;
    j = NULL;
out:
    free(j);
    if (rc < 0)
        fetch_done(s, f, rc, "cannot start verifying");
}

/* ---- fetching, on the slug socket ---- */

static void
fetch_stop(struct agt_slugs *s, struct fetch *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    if (s->active == f)
        s->active = NULL;
}

static void
fetch_fail(struct agt_slugs *s, struct fetch *f, int err, const char *reason)
{
    char part[PATH_MAX];

    fetch_stop(s, f);
    if (slug_path(s, f->sha, "part", part, sizeof part) == 0)
        unlink(part);
    fetch_done(s, f, err, reason);
    kick(s);
}

static int
send_req(struct agt_slugs *s, struct fetch *f)
{
    Drover__SlugReq req = DROVER__SLUG_REQ__INIT;
    Drover__Message m = DROVER__MESSAGE__INIT;

    req.sha256 = f->sha;
    req.offset = f->offset;
    req.length = WIRE_SLUG_CHUNK;
    m.body_case = DROVER__MESSAGE__BODY_SLUG_REQ;
    m.slug_req = &req;
    return rpc_send(s->rpc, &m, 2ull * s->cfg->heartbeat_ms);
}

static void
on_write(uv_fs_t *req)
{
    struct write_job *j = req->data;
    struct agt_slugs *s = j->s;
    struct fetch *f = j->f;
    ssize_t res = req->result;

    uv_fs_req_cleanup(req);
    free(j->buf);
    s->pending--;
    s->writing = false;
    if (s->closing) {
        fetch_stop(s, f);
        goto out;
    }
    if (res < 0 || (size_t)res != j->len) {
        fetch_fail(s, f, res < 0 ? (int)res : -EIO, "cannot write the slug");
        goto out;
    }
    f->offset += j->len;
    if (f->offset < f->total) {
        if (send_req(s, f) < 0)
            fetch_fail(s, f, -EIO, "cannot send SlugReq");
        goto out;
    }
    fetch_stop(s, f);
    verify_start(s, f);
    kick(s);
out:
    free(j);
    maybe_free(s);
}

/* NULL when the chunk is the one asked for, else why not. */
static const char *
check_chunk(const struct fetch *f, const Drover__SlugChunk *c)
{
    if (strcmp(c->sha256, f->sha) != 0)
        return "chunk of another slug";
    if (c->offset != f->offset)
        return "chunk at the wrong offset";
    if (c->total == 0 || c->total > SLUG_MAX_SIZE || (f->size && c->total != f->size) ||
        (f->total && c->total != f->total))
        return "bad slug size";
    if (c->data.len == 0 || c->data.len > WIRE_SLUG_CHUNK || c->offset + c->data.len > c->total)
        return "bad chunk length";
    return NULL;
}

static void
on_chunk(struct agt_slugs *s, const Drover__SlugChunk *c)
{
    struct fetch *f = s->active;
    struct write_job *j = NULL;
    const char *why;
    int rc;

    if (!f || s->writing) {
        log_warn("bad_message", "sock=slug err=unexpected_chunk");
        return;
    }
    why = check_chunk(f, c);
    if (why) {
        log_warn("bad_message", "sock=slug sha=%s err=%s", f->sha, log_q(why));
        fetch_fail(s, f, -EBADMSG, why);
        return;
    }
    f->total = c->total;
    rc = -ENOMEM;
    j = calloc(1, sizeof *j);
    if (j)
        j->buf = malloc(c->data.len);
    if (!j || !j->buf)
        goto fail;
    memcpy(j->buf, c->data.data, c->data.len);
    j->len = c->data.len;
    j->s = s;
    j->f = f;
    j->req.data = j;
    uv_buf_t b = uv_buf_init((char *)j->buf, (unsigned)j->len);
    rc = uv_fs_write(s->loop, &j->req, f->fd, &b, 1, (int64_t)c->offset, on_write);
    if (rc < 0)
        goto fail;
    s->writing = true;
    s->pending++;
    return;
fail:
    if (j)
        free(j->buf);
    free(j);
    fetch_fail(s, f, rc, "cannot write the slug");
}

static void
on_reply(struct rpc *r, struct rpc_reply *rep, void *arg)
{
    struct agt_slugs *s = arg;
    Drover__Message *m = rep->msg;

    if (s->closing)
        return;
    if (rep->result != RPC_REPLY) {
        /* Asked again at once (the client waits longer on a timeout). */
        if (rep->result == RPC_UNOPENED)
            log_warn("bad_message", "sock=slug err=%s version=%u", log_q(wire_strerror(rep->err)),
                     (unsigned)rep->hdr.version);
        if (s->active && !s->writing && send_req(s, s->active) < 0)
            fetch_fail(s, s->active, -EIO, "cannot send SlugReq");
        return;
    }
    switch (m->body_case) {
    case DROVER__MESSAGE__BODY_SLUG_CHUNK:
        on_chunk(s, m->slug_chunk);
        break;
    case DROVER__MESSAGE__BODY_ERROR:
        if (s->active) {
            log_warn("slug_refused", "sha=%s code=%d err=%s", s->active->sha, (int)m->error->code,
                     log_q(m->error->message));
            fetch_fail(s, s->active, -ENOENT, m->error->message);
        }
        break;
    default:
        log_warn("bad_message", "sock=slug err=unexpected_type type=%d", (int)m->body_case);
        break;
    }
}

static void
fetch_start(struct agt_slugs *s, struct fetch *f)
{
    char part[PATH_MAX];
    int rc;

    rc = slug_path(s, f->sha, "part", part, sizeof part);
    if (rc == 0) {
        f->fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (f->fd < 0)
            rc = -errno;
    }
    if (rc < 0) {
        fetch_done(s, f, rc, "cannot create the .part file");
        return;
    }
    f->st = F_FETCHING;
    f->offset = 0;
    f->total = f->size;
    s->active = f;
    log_info("slug_fetch", "sha=%s size=%" PRIu64, f->sha, f->size);
    if (send_req(s, f) < 0)
        fetch_fail(s, f, -EIO, "cannot send SlugReq");
}

/* Start the next queued fetch when the socket is free. */
static void
kick(struct agt_slugs *s)
{
    if (s->closing || s->active)
        return;
    for (struct fetch *f = s->fetches; f; f = f->next) {
        if (f->st == F_QUEUED) {
            fetch_start(s, f);
            return;
        }
    }
}

/* ---- retries ---- */

static bool
sha_wanted(struct agt_slugs *s, const char *sha)
{
    for (struct rel *r = s->rels; r; r = r->next) {
        if (strcmp(r->sha, sha) == 0 && r->st != R_READY &&
            agt_release_wanted(s->agt, r->app, r->release, r->sha))
            return true;
    }
    return false;
}

/* ---- garbage: releases and slugs that no instance uses ---- */

/*
 * Every deploy leaves an unpacked release and a cached slug behind; without
 * this a node's disk fills. After a release is unpacked, and after an
 * instance is forgotten, each app keeps its GC_KEEP newest unpacked releases
 * (a rollback to the last one starts at once) and every release an instance
 * here still uses; a slug stays while a kept release was unpacked from it,
 * or while a release waits for it. The rest is renamed to a ".gc-" name on
 * the loop thread (so that nothing here can hand it out again: its entries
 * are dropped at the same time, and a later want fetches and unpacks it
 * afresh) and removed in the thread pool. It waits while anything is being
 * fetched, verified or unpacked.
 */
#define GC_KEEP 2

struct gc_job {
    uv_work_t w;
    struct agt_slugs *s;
    char (*paths)[PATH_MAX];
    size_t n, cap, removed;
};

struct vdir {
    uint32_t v;
    char name[NAME_MAX + 1];
};

static int
gc_add(struct gc_job *g, const char *dir, const char *name)
{
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 16;
        char(*p)[PATH_MAX] = realloc(g->paths, cap * sizeof(*p));

        if (!p)
            return -ENOMEM;
        g->paths = p;
        g->cap = cap;
    }
    return strfmt(g->paths[g->n], sizeof g->paths[0], "%s/%s", dir, name) < 0 ? -ENAMETOOLONG
                                                                              : (g->n++, 0);
}

/* Rename dir/name to dir/.gc-name and queue it for removal. */
static int
gc_doom(struct gc_job *g, const char *dir, const char *name)
{
    char from[PATH_MAX], to[PATH_MAX];
    char gcname[NAME_MAX + 8];

    snprintf(gcname, sizeof gcname, ".gc-%s", name);
    if (strfmt(from, sizeof from, "%s/%s", dir, name) < 0 ||
        strfmt(to, sizeof to, "%s/%s", dir, gcname) < 0 || rename(from, to) < 0)
        return -errno;
    return gc_add(g, dir, gcname);
}

static int
vdir_newest_first(const void *x, const void *y)
{
    const struct vdir *a = x, *b = y;

    return a->v > b->v ? -1 : a->v < b->v;
}

static void
rel_drop(struct agt_slugs *s, const char *app, uint32_t release)
{
    for (struct rel **pp = &s->rels; *pp;) {
        struct rel *r = *pp;

        if (r->st == R_READY && r->release == release && strcmp(r->app, app) == 0) {
            *pp = r->next;
            free(r);
        } else {
            pp = &r->next;
        }
    }
}

/* One app's releases: keep the newest GC_KEEP and the used ones; their
 * 12-digit sha prefixes go to kept (count in *nkept, at most maxkept). */
static void
gc_app(struct agt_slugs *s, struct gc_job *g, const char *app, const char *dir, char (*kept)[13],
       size_t *nkept, size_t maxkept)
{
    struct vdir *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    DIR *d = opendir(dir);

    if (!d)
        return;
    while ((de = readdir(d)) != NULL) {
        unsigned ver;
        char sha[13];
        int end = 0;

        if (strncmp(de->d_name, ".gc-", 4) == 0) {
            gc_add(g, dir, de->d_name); /* left by an earlier run */
            continue;
        }
        if (sscanf(de->d_name, "v%u-%12[0-9a-f]%n", &ver, sha, &end) != 2 ||
            de->d_name[end] != '\0')
            continue; /* ".", "..", "vN-SHA.tmp" being unpacked */
        if (n == cap) {
            struct vdir *p = realloc(v, (cap = cap ? cap * 2 : 8) * sizeof *p);

            if (!p)
                break;
            v = p;
        }
        v[n].v = ver;
        snprintf(v[n].name, sizeof v[n].name, "%s", de->d_name);
        n++;
    }
    closedir(d);
    if (n > 1)
        qsort(v, n, sizeof *v, vdir_newest_first);
    for (size_t k = 0; k < n; k++) {
        if (k < GC_KEEP || agt_release_used(s->agt, app, v[k].v)) {
            if (*nkept < maxkept)
                snprintf(kept[(*nkept)++], 13, "%.12s", strchr(v[k].name, '-') + 1);
            continue;
        }
        rel_drop(s, app, v[k].v);
        if (gc_doom(g, dir, v[k].name) == 0)
            log_info("release_removed", "app=%s dir=%s", app, v[k].name);
    }
    free(v);
}

/* Is sha still needed: a kept release's, or one a release waits for? */
static bool
slug_needed(const struct agt_slugs *s, const char *sha, char (*kept)[13], size_t nkept)
{
    for (size_t k = 0; k < nkept; k++)
        if (strncmp(kept[k], sha, 12) == 0)
            return true;
    for (const struct rel *r = s->rels; r; r = r->next)
        if (r->st != R_READY && strcmp(r->sha, sha) == 0)
            return true;
    for (const struct fetch *f = s->fetches; f; f = f->next)
        if (strcmp(f->sha, sha) == 0 && f->st != F_READY && f->st != F_FAILED)
            return true;
    return false;
}

static void
fetch_drop(struct agt_slugs *s, const char *sha)
{
    for (struct fetch **pp = &s->fetches; *pp;) {
        struct fetch *f = *pp;

        if (f != s->active && (f->st == F_READY || f->st == F_FAILED) && strcmp(f->sha, sha) == 0) {
            *pp = f->next;
            free(f);
        } else {
            pp = &f->next;
        }
    }
}

static void
gc_slugs(struct agt_slugs *s, struct gc_job *g, char (*kept)[13], size_t nkept)
{
    char dir[PATH_MAX], sha[65];
    struct dirent *de;
    DIR *d;

    if (strfmt(dir, sizeof dir, "%s/slugs", s->cfg->data_dir) < 0 || !(d = opendir(dir)))
        return;
    while ((de = readdir(d)) != NULL) {
        int end = 0;

        if (strncmp(de->d_name, ".gc-", 4) == 0) {
            gc_add(g, dir, de->d_name);
            continue;
        }
        if (sscanf(de->d_name, "%64[0-9a-f].tar.gz%n", sha, &end) != 1 || end == 0 ||
            de->d_name[end] != '\0' || strlen(sha) != 64 || slug_needed(s, sha, kept, nkept))
            continue;
        fetch_drop(s, sha);
        if (gc_doom(g, dir, de->d_name) == 0)
            log_info("slug_removed", "sha=%s", sha);
    }
    closedir(d);
}

static void
gc_work(uv_work_t *w)
{
    struct gc_job *g = w->data;

    for (size_t k = 0; k < g->n; k++)
        if (rm_rf(g->paths[k]) == 0)
            g->removed++;
}

static void
gc_after(uv_work_t *w, int status)
{
    struct gc_job *g = w->data;
    struct agt_slugs *s = g->s;

    s->pending--;
    s->gc_running = false;
    free(g->paths);
    free(g);
    maybe_free(s);
}

static bool
busy(const struct agt_slugs *s)
{
    if (s->active)
        return true;
    for (const struct fetch *f = s->fetches; f; f = f->next)
        if (f->st == F_VERIFYING || f->st == F_FETCHING)
            return true;
    for (const struct rel *r = s->rels; r; r = r->next)
        if (r->st == R_UNPACKING)
            return true;
    return false;
}

static void
gc_start(struct agt_slugs *s)
{
    char root[PATH_MAX], dir[PATH_MAX], kept[256][13];
    size_t nkept = 0;
    struct gc_job *g;
    struct dirent *de;
    DIR *d;

    if (busy(s))
        return; /* the next tick tries again */
    s->gc_wanted = false;
    if (!(g = calloc(1, sizeof *g)))
        return;
    g->s = s;
    g->w.data = g;
    if (strfmt(root, sizeof root, "%s/releases", s->cfg->data_dir) == 0 && (d = opendir(root))) {
        while ((de = readdir(d)) != NULL) {
            if (de->d_name[0] == '.' || strfmt(dir, sizeof dir, "%s/%s", root, de->d_name) < 0)
                continue;
            gc_app(s, g, de->d_name, dir, kept, &nkept, sizeof kept / sizeof kept[0]);
        }
        closedir(d);
    }
    /* Past 256 kept releases, keep every slug rather than guess. */
    if (nkept < sizeof kept / sizeof kept[0])
        gc_slugs(s, g, kept, nkept);
    if (g->n == 0 || uv_queue_work(s->loop, &g->w, gc_work, gc_after) < 0) {
        /* Nothing to remove (or no thread: the .gc- names go next time). */
        free(g->paths);
        free(g);
        return;
    }
    s->gc_running = true;
    s->pending++;
}

void
agt_slugs_gc_soon(struct agt_slugs *s)
{
    if (s)
        s->gc_wanted = true;
}

static void
on_tick(uv_timer_t *t)
{
    struct agt_slugs *s = t->data;
    uint64_t now = mono_ms();

    if (s->gc_wanted && !s->gc_running && !s->closing)
        gc_start(s);

    for (struct fetch *f = s->fetches; f; f = f->next) {
        if (f->st != F_FAILED || f->retry_at > now || !sha_wanted(s, f->sha))
            continue;
        f->st = F_QUEUED;
        for (struct rel *r = s->rels; r; r = r->next) {
            if (r->st == R_FAILED && strcmp(r->sha, f->sha) == 0)
                r->st = R_WAIT;
        }
    }
    for (struct rel *r = s->rels; r; r = r->next) {
        if (r->st != R_FAILED || r->retry_at > now ||
            !agt_release_wanted(s->agt, r->app, r->release, r->sha))
            continue;
        for (struct fetch *f = s->fetches; f; f = f->next) {
            if (f->st == F_READY && strcmp(f->sha, r->sha) == 0)
                unpack_start(s, r);
        }
    }
    kick(s);
}

/* ---- the interface ---- */

static struct fetch *
fetch_get(struct agt_slugs *s, const struct agt_spec *spec)
{
    char path[PATH_MAX];
    struct stat st;
    struct fetch *f;

    for (f = s->fetches; f; f = f->next) {
        if (strcmp(f->sha, spec->sha) == 0)
            return f;
    }
    f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    snprintf(f->sha, sizeof f->sha, "%s", spec->sha);
    f->size = spec->size;
    f->fd = -1;
    f->st = F_QUEUED;
    /* Only a verified slug is ever renamed to this name. */
    if (slug_path(s, f->sha, "tar.gz", path, sizeof path) == 0 && stat(path, &st) == 0 &&
        S_ISREG(st.st_mode)) {
        f->st = F_READY;
        f->total = (uint64_t)st.st_size;
    }
    f->next = s->fetches;
    s->fetches = f;
    return f;
}

int
agt_slugs_want(struct agt_slugs *s, const struct agt_spec *spec, char *dir, size_t dirsz)
{
    struct rel *r;
    struct fetch *f;
    struct stat st;
    int rc;

    for (r = s->rels; r; r = r->next) {
        if (r->release == spec->release && strcmp(r->app, spec->app) == 0 &&
            strcmp(r->sha, spec->sha) == 0)
            break;
    }
    if (r && r->st == R_READY)
        return strfmt(dir, dirsz, "%s", r->dir) < 0 ? -ENAMETOOLONG : 1;
    if (r)
        return 0; /* on its way, or waiting for a retry */
    r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    snprintf(r->app, sizeof r->app, "%s", spec->app);
    r->release = spec->release;
    r->gid = -1;
    {
        uint32_t uid, gid;

        rc = agt_app_ids(s->agt, spec->app, &uid, &gid);
        if (rc < 0) {
            free(r);
            return rc;
        }
        if (rc == 1)
            r->gid = gid;
    }
    snprintf(r->sha, sizeof r->sha, "%s", spec->sha);
    rc = agt_release_dir(s->cfg->data_dir, spec->app, spec->release, spec->sha, r->dir,
                         sizeof r->dir);
    if (rc < 0) {
        free(r);
        return rc;
    }
    r->next = s->rels;
    s->rels = r;
    /* Only a completely unpacked release is ever renamed to this name. */
    if (stat(r->dir, &st) == 0 && S_ISDIR(st.st_mode)) {
        r->st = R_READY;
        return strfmt(dir, dirsz, "%s", r->dir) < 0 ? -ENAMETOOLONG : 1;
    }
    r->st = R_WAIT;
    f = fetch_get(s, spec);
    if (!f)
        return -ENOMEM;
    if (f->st == F_READY)
        unpack_start(s, r);
    else if (f->st == F_FAILED)
        r->st = R_FAILED; /* the tick brings both back */
    kick(s);
    return 0;
}

struct agt_slugs *
agt_slugs_new(struct agt *a, int *err)
{
    struct agt_slugs *s = calloc(1, sizeof *s);
    const struct agt_config *cfg = agt_cfg(a);
    char dir[PATH_MAX];
    struct rpc_opts o = {0};
    int rc = -ENOMEM;

    if (!s)
        goto out;
    s->agt = a;
    s->loop = agt_loop(a);
    s->cfg = cfg;
    rc = strfmt(dir, sizeof dir, "%s/slugs", cfg->data_dir);
    if (rc == 0)
        rc = mkdir_p(dir, 0700);
    if (rc == 0 && cfg->drop && chmod(dir, 0700) < 0) /* apps never read a slug */
        rc = -errno;
    if (rc < 0)
        goto out;
    o.endpoints = (const char(*)[ENV_ENDPOINT_MAX])cfg->joins;
    o.nendpoints = cfg->njoin;
    o.sender = agt_sender(a);
    o.cap_ms = 60000;
    o.resends = UINT32_MAX; /* for as long as the fetch lasts */
    o.name = "slug";
    o.redial_ms = 10000; /* silent this long: redial, or the next controller */
    o.cb = on_reply;
    o.arg = s;
    s->rpc = rpc_new(s->loop, &o, &rc);
    if (!s->rpc)
        goto out;
    uv_timer_init(s->loop, &s->tick);
    s->tick.data = s;
    s->pending = 1;      /* the tick timer */
    s->gc_wanted = true; /* what an earlier run left */
out:
    if (rc < 0 && s) {
        free(s);
        s = NULL;
    }
    *err = rc;
    return s;
}

int
agt_slugs_start(struct agt_slugs *s)
{
    int rc = rpc_start(s->rpc);

    if (rc == 0)
        rc = uv_timer_start(&s->tick, on_tick, TICK_MS, TICK_MS);
    return rc;
}

static void
on_tick_close(uv_handle_t *h)
{
    struct agt_slugs *s = h->data;

    s->pending--;
    maybe_free(s);
}

void
agt_slugs_close(struct agt_slugs *s)
{
    s->closing = true;
    rpc_close(s->rpc);
    s->rpc = NULL;
    if (s->active && !s->writing)
        fetch_stop(s, s->active);
    uv_close((uv_handle_t *)&s->tick, on_tick_close);
}

/* ---- apps:destroy (issue 12): forget an app's releases, a cached slug ---- */

struct forget_job {
    uv_work_t w;
    struct agt_slugs *s;
    char path[PATH_MAX];
};

static void
forget_work(uv_work_t *w)
{
    struct forget_job *j = w->data;
    int rc = rm_rf(j->path);

    if (rc < 0 && rc != -ENOENT)
        log_warn("forget_failed", "path=%s err=%s", log_q(j->path), log_q(strerror(-rc)));
}

static void
forget_after(uv_work_t *w, int status)
{
    struct forget_job *j = w->data;
    struct agt_slugs *s = j->s;

    (void)status;
    s->pending--;
    free(j);
    maybe_free(s);
}

/* Remove path (a file or a tree) off the loop. */
static void
forget_path(struct agt_slugs *s, const char *path)
{
    struct forget_job *j = calloc(1, sizeof *j);

    if (!j || strfmt(j->path, sizeof j->path, "%s", path) < 0) {
        free(j);
        return;
    }
    j->s = s;
    j->w.data = j;
    if (uv_queue_work(s->loop, &j->w, forget_work, forget_after) < 0) {
        free(j);
        return;
    }
    s->pending++;
}

bool
agt_slugs_forget_app(struct agt_slugs *s, const char *app)
{
    struct rel **rp = &s->rels, *r;
    char dir[PATH_MAX];
    struct stat st;

    for (r = *rp; r; r = *rp) {
        if (strcmp(r->app, app) == 0 && r->st == R_UNPACKING)
            return false; /* busy: the next assignment set says it again */
        rp = &r->next;
    }
    for (rp = &s->rels; (r = *rp) != NULL;) {
        if (strcmp(r->app, app) == 0) {
            *rp = r->next;
            free(r);
        } else {
            rp = &r->next;
        }
    }
    if (strfmt(dir, sizeof dir, "%s/releases/%s", s->cfg->data_dir, app) < 0 || stat(dir, &st) < 0)
        return false;
    log_info("app_forgotten", "app=%s dir=%s", app, log_q(dir));
    forget_path(s, dir);
    return true;
}

bool
agt_slugs_forget_slug(struct agt_slugs *s, const char *sha)
{
    struct fetch **fp, *f;
    struct rel *r;
    char path[PATH_MAX];
    struct stat st;

    for (r = s->rels; r; r = r->next)
        if (strcmp(r->sha, sha) == 0)
            return false; /* a release of a live app still has it */
    for (fp = &s->fetches; (f = *fp) != NULL; fp = &f->next) {
        if (strcmp(f->sha, sha) != 0)
            continue;
        if (f->st != F_READY && f->st != F_FAILED)
            return false; /* on its way: someone wants it */
        *fp = f->next;
        free(f);
        break;
    }
    if (slug_path(s, sha, "tar.gz", path, sizeof path) < 0 || stat(path, &st) < 0)
        return false;
    log_info("slug_forgotten", "sha=%s", sha);
    forget_path(s, path);
    return true;
}
