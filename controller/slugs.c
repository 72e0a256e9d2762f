/* SPDX-License-Identifier: MIT */
/*
 * slugs.c: the slug store under DROVER_DATA_DIR/slugs.
 *
 * A slug is slugs/<sha256>.tgz. Uploads arrive in order, chunk by chunk, into
 * slugs/tmp/<sha256>.part; the chunk that completes the total has its file
 * fsynced, hashed and renamed into place, so a slug under its name is always
 * whole and correct. Agents read slugs by chunks.
 *
 * All file I/O runs in the thread pool (uv_queue_work): the request is kept
 * (raw REP) and answered from the after-work callback, which alone touches
 * the upload table. An upload slot is busy while its chunk is being written,
 * so two chunks of one upload never race. At most UPLOAD_SLOTS uploads are
 * open at once; starting another evicts the least recently used idle one.
 *
 * With PostgreSQL (DROVER_DATABASE_URL, issue 16) the database holds every
 * slug too (store_pg.c), so that any controller can serve any slug: an
 * upload is acknowledged complete only once its slug is in the database,
 * and a slug missing here is copied from there on first use. The files
 * stay as the local cache they read from.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"
#include "log.h"
#include "slug.h"

#define UPLOAD_SLOTS 16

struct upload {
    char sha[65];
    uint64_t total, received, last_ms;
    bool used, busy;
};

struct ctl_slugs {
    struct ctl *ctl;
    char dir[4096];
    char tmp[4096];
    struct upload up[UPLOAD_SLOTS];
};

enum slug_job { JOB_PUT, JOB_READ };

struct slug_work {
    uv_work_t work;
    struct ctl_slugs *s;
    enum slug_job job;
    struct ctl_call *c;
    struct upload *up;
    char path[4200], part[4200];
    bool final;
    int rc;
    uint8_t *buf; /* read: the chunk */
    size_t len;
    uint64_t total;
};

int
ctl_slugs_new(struct ctl *ctl, const char *dir, struct ctl_slugs **out)
{
    struct ctl_slugs *s = calloc(1, sizeof(*s));
    int rc = -ENOMEM;

    if (s == NULL)
        goto fail;
    s->ctl = ctl;
    if ((rc = strfmt(s->dir, sizeof(s->dir), "%s/slugs", dir)) < 0 ||
        (rc = strfmt(s->tmp, sizeof(s->tmp), "%s/slugs/tmp", dir)) < 0)
        goto fail;
    /* Parts of uploads cut short by a previous run are worthless. */
    if ((rc = mkdir_p(s->dir, 0750)) < 0 || (rc = rm_rf(s->tmp)) < 0 ||
        (rc = mkdir_p(s->tmp, 0750)) < 0)
        goto fail;
    *out = s;
    return 0;
fail:
    free(s);
    return rc;
}

void
ctl_slugs_free(struct ctl_slugs *s)
{
    free(s);
}

int
ctl_slug_path(const struct ctl_slugs *s, const char *sha, char *out, size_t outsz)
{
    return strfmt(out, outsz, "%s/%s.tgz", s->dir, sha);
}

int
ctl_slug_stat(const struct ctl_slugs *s, const char *sha, uint64_t *size)
{
    char path[4200];
    struct stat sb;

    if (!slug_sha_valid(sha) || ctl_slug_path(s, sha, path, sizeof(path)) < 0)
        return -EINVAL;
    if (stat(path, &sb) < 0)
        return -errno;
    if (!S_ISREG(sb.st_mode))
        return -ENOENT;
    *size = (uint64_t)sb.st_size;
    return 0;
}

/*
 * HA: a slug stored by another controller (a release made before a
 * failover) is copied here from the database. Never on the loop: the
 * thread pool's work functions call it. 0 and its size when it is here.
 */
int
ctl_slug_fetch(const struct ctl_slugs *s, const char *sha, uint64_t *size)
{
    char path[4200];
    int rc = ctl_slug_stat(s, sha, size);

    if (rc != -ENOENT || s->ctl->cfg.database_url[0] == '\0' ||
        ctl_slug_path(s, sha, path, sizeof(path)) < 0)
        return rc;
    if ((rc = ctl_pg_slug_get(s->ctl->cfg.database_url, sha, path)) < 0)
        return rc;
    return ctl_slug_stat(s, sha, size);
}

/* Whether a slug missing here may be in the database (ctl_slug_fetch). */
bool
ctl_slug_maybe_stored(const struct ctl_slugs *s)
{
    return s->ctl->cfg.database_url[0] != '\0';
}

/* ---- upload ---- */

static struct upload *
upload_find(struct ctl_slugs *s, const char *sha)
{
    size_t i;

    for (i = 0; i < UPLOAD_SLOTS; i++) {
        if (s->up[i].used && strcmp(s->up[i].sha, sha) == 0)
            return &s->up[i];
    }
    return NULL;
}

static struct upload *
upload_claim(struct ctl_slugs *s, const char *sha)
{
    struct upload *best = NULL;
    size_t i;

    for (i = 0; i < UPLOAD_SLOTS; i++) {
        struct upload *u = &s->up[i];

        if (!u->used)
            return u;
        if (!u->busy && (best == NULL || u->last_ms < best->last_ms))
            best = u;
    }
    if (best != NULL) {
        char part[4200];

        log_info("slug_upload_evicted", "sha256=%s received=%llu", best->sha,
                 (unsigned long long)best->received);
        if (strfmt(part, sizeof(part), "%s/%s.part", s->tmp, best->sha) == 0)
            unlink(part); /* small, and only on eviction */
    }
    (void)sha;
    return best;
}

static void
put_work(uv_work_t *w)
{
    struct slug_work *sw = w->data;
    Drover__SlugPutReq *p = sw->c->req->slug_put_req;
    int fd = -1, flags = O_WRONLY | O_CREAT | O_CLOEXEC | (p->offset == 0 ? O_TRUNC : 0);
    size_t done = 0;
    char hex[65];
    uint64_t size = 0;

    fd = open(sw->part, flags, 0640);
    if (fd < 0) {
        sw->rc = -errno;
        goto out;
    }
    while (done < p->data.len) {
        ssize_t n = pwrite(fd, p->data.data + done, p->data.len - done, (off_t)(p->offset + done));

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            sw->rc = n < 0 ? -errno : -EIO;
            goto out;
        }
        done += (size_t)n;
    }
    if (!sw->final)
        goto out;
    if (fsync(fd) < 0) {
        sw->rc = -errno;
        goto out;
    }
    sw->rc = slug_sha256_file(sw->part, hex, &size);
    if (sw->rc < 0)
        goto out;
    if (strcmp(hex, p->sha256) != 0 || size != p->total) {
        sw->rc = -EBADMSG;
        goto out;
    }
    if (rename(sw->part, sw->path) < 0)
        sw->rc = -errno;
    else if (sw->s->ctl->cfg.database_url[0] != '\0') /* HA: any controller serves it */
        sw->rc = ctl_pg_slug_put(sw->s->ctl->cfg.database_url, p->sha256, sw->path);
out:
    if (fd >= 0)
        close(fd);
    if (sw->final && sw->rc < 0)
        unlink(sw->part);
}

static void
put_done(struct slug_work *sw)
{
    Drover__SlugPutReq *p = sw->c->req->slug_put_req;
    struct upload *u = sw->up;
    Drover__Message rep = DROVER__MESSAGE__INIT;
    Drover__SlugPutRep pr = DROVER__SLUG_PUT_REP__INIT;

    u->busy = false;
    u->last_ms = mono_ms();
    if (sw->rc < 0) {
        u->used = false;
        if (sw->rc == -EBADMSG) {
            log_warn("slug_rejected", "sha256=%s reason=checksum_mismatch", p->sha256);
            ctl_call_end_error(sw->c, DROVER__ERROR_CODE__ERR_BAD_REQUEST, "checksum mismatch");
        } else {
            log_error("slug_write_failed", "sha256=%s err=%s", p->sha256, strerror(-sw->rc));
            ctl_call_end_error(sw->c, DROVER__ERROR_CODE__ERR_INTERNAL, "cannot store the slug: %s",
                               strerror(-sw->rc));
        }
        return;
    }
    u->received = p->offset + p->data.len;
    pr.received = u->received;
    pr.complete = sw->final;
    if (sw->final) {
        u->used = false;
        log_info("slug_stored", "sha256=%s size=%llu", p->sha256, (unsigned long long)p->total);
    }
    rep.body_case = DROVER__MESSAGE__BODY_SLUG_PUT_REP;
    rep.slug_put_rep = &pr;
    ctl_call_end(sw->c, &rep);
}

static void
read_work(uv_work_t *w)
{
    struct slug_work *sw = w->data;
    Drover__SlugReq *r = sw->c->req->slug_req;
    struct stat sb;
    int fd = open(sw->path, O_RDONLY | O_CLOEXEC);
    size_t want;

    if (fd < 0 && errno == ENOENT && sw->s->ctl->cfg.database_url[0] != '\0' &&
        ctl_pg_slug_get(sw->s->ctl->cfg.database_url, r->sha256, sw->path) == 0)
        fd = open(sw->path, O_RDONLY | O_CLOEXEC); /* HA: uploaded to another controller */
    if (fd < 0) {
        sw->rc = -errno;
        return;
    }
    if (fstat(fd, &sb) < 0) {
        sw->rc = -errno;
        goto out;
    }
    sw->total = (uint64_t)sb.st_size;
    if (r->offset > sw->total) {
        sw->rc = -ERANGE;
        goto out;
    }
    want = (size_t)(sw->total - r->offset < r->length ? sw->total - r->offset : r->length);
    sw->buf = malloc(want ? want : 1);
    if (sw->buf == NULL) {
        sw->rc = -ENOMEM;
        goto out;
    }
    while (sw->len < want) {
        ssize_t n = pread(fd, sw->buf + sw->len, want - sw->len, (off_t)(r->offset + sw->len));

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            sw->rc = n < 0 ? -errno : -EIO;
            goto out;
        }
        sw->len += (size_t)n;
    }
out:
    close(fd);
}

static void
read_done(struct slug_work *sw)
{
    Drover__SlugReq *r = sw->c->req->slug_req;
    Drover__Message rep = DROVER__MESSAGE__INIT;
    Drover__SlugChunk c = DROVER__SLUG_CHUNK__INIT;

    if (sw->rc == -ENOENT) {
        ctl_call_end_error(sw->c, DROVER__ERROR_CODE__ERR_NOT_FOUND, "no slug %s", r->sha256);
        return;
    }
    if (sw->rc == -ERANGE) {
        ctl_call_end_error(sw->c, DROVER__ERROR_CODE__ERR_BAD_REQUEST,
                           "offset %llu past the end of slug %s (%llu bytes)",
                           (unsigned long long)r->offset, r->sha256, (unsigned long long)sw->total);
        return;
    }
    if (sw->rc < 0) {
        log_error("slug_read_failed", "sha256=%s err=%s", r->sha256, strerror(-sw->rc));
        ctl_call_end_error(sw->c, DROVER__ERROR_CODE__ERR_INTERNAL, "cannot read slug: %s",
                           strerror(-sw->rc));
        return;
    }
    c.sha256 = r->sha256;
    c.offset = r->offset;
    c.total = sw->total;
    c.data.data = sw->buf;
    c.data.len = sw->len;
    rep.body_case = DROVER__MESSAGE__BODY_SLUG_CHUNK;
    rep.slug_chunk = &c;
    ctl_call_end(sw->c, &rep);
}

static void
after_work(uv_work_t *w, int status)
{
    struct slug_work *sw = w->data;
    struct ctl *ctl = sw->s->ctl;

    if (status < 0) {
        if (sw->up != NULL)
            sw->up->busy = sw->up->used = false;
        ctl_call_end_error(sw->c, DROVER__ERROR_CODE__ERR_UNAVAILABLE, "cancelled");
    } else if (sw->job == JOB_PUT) {
        put_done(sw);
    } else {
        read_done(sw);
    }
    free(sw->buf);
    free(sw);
    ctl_work_done(ctl);
}

static int
queue(struct ctl_slugs *s, struct slug_work *sw, uv_work_cb fn)
{
    int rc;

    sw->work.data = sw;
    rc = uv_queue_work(s->ctl->loop, &sw->work, fn, after_work);
    if (rc == 0)
        s->ctl->inflight++;
    return rc;
}

/* The upload slot of a chunk: -1 with why when the chunk does not fit it. */
static struct upload *
put_slot(struct ctl_call *c, struct ctl_slugs *s, const Drover__SlugPutReq *p)
{
    struct upload *u = upload_find(s, p->sha256);

    if (u != NULL && u->busy) {
        ctl_fail(c, DROVER__ERROR_CODE__ERR_UNAVAILABLE, "an upload of this slug is in progress");
        return NULL;
    }
    if (p->offset == 0) {
        if (u == NULL && (u = upload_claim(s, p->sha256)) == NULL) {
            ctl_fail(c, DROVER__ERROR_CODE__ERR_UNAVAILABLE, "too many slug uploads in progress");
            return NULL;
        }
        memset(u, 0, sizeof(*u));
        u->used = true;
        strcpy(u->sha, p->sha256);
        u->total = p->total;
    } else if (u == NULL || u->received != p->offset || u->total != p->total) {
        ctl_fail(c, DROVER__ERROR_CODE__ERR_BAD_REQUEST,
                 "chunk at offset %llu, expected offset %llu%s", (unsigned long long)p->offset,
                 (unsigned long long)(u ? u->received : 0),
                 u && u->total != p->total ? " (total changed)" : "");
        return NULL;
    }
    return u;
}

static int
put_check(struct ctl_call *c, const Drover__SlugPutReq *p)
{
    Drover__ErrorCode bad = DROVER__ERROR_CODE__ERR_BAD_REQUEST;

    if (!slug_sha_valid(p->sha256))
        return ctl_fail(c, bad, "sha256 must be 64 lowercase hex characters");
    if (p->total == 0 || p->total > SLUG_MAX_SIZE)
        return ctl_fail(c, bad, "slug size %llu out of range (1..%llu)",
                        (unsigned long long)p->total, (unsigned long long)SLUG_MAX_SIZE);
    if (p->data.len == 0 || p->data.len > WIRE_SLUG_CHUNK)
        return ctl_fail(c, bad, "chunk of %zu bytes (1..%u allowed)", p->data.len, WIRE_SLUG_CHUNK);
    if (p->offset > p->total || p->data.len > p->total - p->offset)
        return ctl_fail(c, bad, "chunk at %llu+%zu goes past the total %llu",
                        (unsigned long long)p->offset, p->data.len, (unsigned long long)p->total);
    return 0;
}

/* SlugPutReq: pending while the chunk is written in the thread pool. */
int
ctl_h_slug_put(struct ctl_call *c)
{
    struct ctl_slugs *s = c->ctl->slugs;
    const Drover__SlugPutReq *p = c->req->slug_put_req;
    struct slug_work *sw;
    struct upload *u;
    uint64_t size;
    int rc;

    if (put_check(c, p) < 0)
        return -1;
    if (ctl_slug_stat(s, p->sha256, &size) == 0) {
        Drover__SlugPutRep *pr = ctl_arena_alloc(c->ar, sizeof(*pr));

        if (pr == NULL)
            return ctl_oom(c);
        drover__slug_put_rep__init(pr);
        pr->received = size;
        pr->complete = true;
        c->rep.body_case = DROVER__MESSAGE__BODY_SLUG_PUT_REP;
        c->rep.slug_put_rep = pr;
        return 0;
    }
    if ((u = put_slot(c, s, p)) == NULL)
        return -1;
    if ((sw = calloc(1, sizeof(*sw))) == NULL)
        return ctl_oom(c);
    sw->s = s;
    sw->job = JOB_PUT;
    sw->c = c;
    sw->up = u;
    sw->final = p->offset + p->data.len == p->total;
    strfmt(sw->part, sizeof(sw->part), "%s/%s.part", s->tmp, p->sha256);
    ctl_slug_path(s, p->sha256, sw->path, sizeof(sw->path));
    u->busy = true;
    u->last_ms = mono_ms();
    if ((rc = queue(s, sw, put_work)) < 0) {
        u->busy = u->used = false;
        free(sw);
        return ctl_fail(c, DROVER__ERROR_CODE__ERR_INTERNAL, "cannot queue work: %s",
                        uv_strerror(rc));
    }
    return CTL_PENDING;
}

/* SlugReq from an agent: pending while the chunk is read. */
int
ctl_h_slug_read(struct ctl_call *c)
{
    struct ctl_slugs *s = c->ctl->slugs;
    const Drover__SlugReq *r = c->req->slug_req;
    struct slug_work *sw;

    if (!slug_sha_valid(r->sha256))
        return ctl_fail(c, DROVER__ERROR_CODE__ERR_BAD_REQUEST,
                        "sha256 must be 64 lowercase hex characters");
    if (r->length == 0 || r->length > WIRE_SLUG_CHUNK)
        return ctl_fail(c, DROVER__ERROR_CODE__ERR_BAD_REQUEST, "length must be 1..%u",
                        WIRE_SLUG_CHUNK);
    if ((sw = calloc(1, sizeof(*sw))) == NULL)
        return ctl_oom(c);
    sw->s = s;
    sw->job = JOB_READ;
    sw->c = c;
    ctl_slug_path(s, r->sha256, sw->path, sizeof(sw->path));
    if (queue(s, sw, read_work) == 0)
        return CTL_PENDING;
    free(sw);
    return ctl_fail(c, DROVER__ERROR_CODE__ERR_INTERNAL, "cannot queue the read");
}
