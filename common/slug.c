/* SPDX-License-Identifier: MIT */
/*
 * slug.c: pack, inspect, hash and unpack slugs (gzipped tarballs).
 *
 * A slug comes from a person's directory and is unpacked on every node, so
 * unpacking treats it as hostile: each entry's path is checked lexically
 * (relative, no ".."), links must resolve inside the destination, only
 * regular files, directories and links are written, and sizes are bounded.
 * libarchive's own SECURE_* flags are set too, as a second line: they refuse
 * to write through a symlink that an earlier entry planted.
 *
 * Everything here blocks on disk: daemons call it from uv_queue_work.
 */
#include "slug.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <sodium.h>

#include "util.h"

#define COPY_BUF (64u << 10)

static int set_err(char *err, size_t errsz, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Fill err (when given) and return rc, so that failures read as one line. */
static int
set_err(char *err, size_t errsz, int rc, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errsz > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errsz, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* ---- packing ---- */

static int
copy_disk_data(struct archive *disk, struct archive *w)
{
    const void *buf;
    size_t len;
    la_int64_t off;
    int r;

    while ((r = archive_read_data_block(disk, &buf, &len, &off)) == ARCHIVE_OK)
        if (archive_write_data(w, buf, len) < 0)
            return -EIO;
    return r == ARCHIVE_EOF ? 0 : -EIO;
}

int
slug_pack_dir(const char *dir, const char *out_path, char *err, size_t errsz)
{
    return slug_pack_dir_filtered(dir, out_path, NULL, NULL, err, errsz);
}

int
slug_pack_dir_filtered(const char *dir, const char *out_path, slug_filter_fn leave_out, void *arg,
                       char *err, size_t errsz)
{
    struct archive *disk = NULL, *w = NULL;
    struct archive_entry *entry = NULL;
    char root[PATH_MAX], procfile[PATH_MAX];
    struct stat st;
    size_t rlen;
    int rc = 0, r;

    rlen = strlen(dir);
    while (rlen > 1 && dir[rlen - 1] == '/')
        rlen--;
    if (rlen >= sizeof(root))
        return set_err(err, errsz, -ENAMETOOLONG, "%s: path too long", dir);
    memcpy(root, dir, rlen);
    root[rlen] = '\0';
    if (stat(root, &st) < 0 || !S_ISDIR(st.st_mode))
        return set_err(err, errsz, -ENOTDIR, "%s: not a directory", dir);
    if (strfmt(procfile, sizeof(procfile), "%s/Procfile", root) < 0)
        return set_err(err, errsz, -ENAMETOOLONG, "%s: path too long", dir);
    if (stat(procfile, &st) < 0 || !S_ISREG(st.st_mode))
        return set_err(err, errsz, -ENOENT, "%s: no Procfile in this directory", dir);

    disk = archive_read_disk_new();
    w = archive_write_new();
    entry = archive_entry_new();
    if (disk == NULL || w == NULL || entry == NULL) {
        rc = set_err(err, errsz, -ENOMEM, "out of memory");
        goto out;
    }
    archive_read_disk_set_symlink_physical(disk);
    archive_read_disk_set_standard_lookup(disk);
    /* Same tree, same bytes, same SHA: no gzip timestamp, no atime/ctime, so
     * deploying an unchanged directory again uploads nothing. */
    archive_write_add_filter_gzip(w);
    archive_write_set_filter_option(w, "gzip", "timestamp", NULL);
    archive_write_set_format_pax_restricted(w);
    if (archive_write_open_filename(w, out_path) != ARCHIVE_OK) {
        rc = set_err(err, errsz, -EIO, "%s: %s", out_path, archive_error_string(w));
        goto out;
    }
    if (archive_read_disk_open(disk, root) != ARCHIVE_OK) {
        rc = set_err(err, errsz, -EIO, "%s: %s", root, archive_error_string(disk));
        goto out;
    }
    for (;;) {
        const char *path, *rel;

        archive_entry_clear(entry);
        r = archive_read_next_header2(disk, entry);
        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            rc = set_err(err, errsz, -EIO, "%s: %s", root, archive_error_string(disk));
            goto out;
        }
        path = archive_entry_pathname(entry);
        if (strncmp(path, root, rlen) != 0 || (path[rlen] != '/' && path[rlen] != '\0'))
            continue;
        rel = path[rlen] == '/' ? path + rlen + 1 : "";
        /* Left out: a directory is not even entered. */
        if (leave_out != NULL && rel[0] != '\0' &&
            leave_out(arg, rel, archive_entry_filetype(entry) == AE_IFDIR))
            continue;
        /* VCS metadata is not part of a release. */
        if (strcmp(rel, ".git") == 0)
            continue;
        archive_read_disk_descend(disk);
        if (rel[0] == '\0')
            continue; /* the root itself */
        switch (archive_entry_filetype(entry)) {
        case AE_IFREG:
        case AE_IFDIR:
        case AE_IFLNK:
            break;
        default:
            continue; /* sockets, fifos, devices have no place in a slug */
        }
        archive_entry_set_pathname(entry, rel);
        archive_entry_unset_atime(entry);
        archive_entry_unset_ctime(entry);
        archive_entry_unset_birthtime(entry);
        archive_entry_set_uid(entry, 0);
        archive_entry_set_gid(entry, 0);
        archive_entry_set_uname(entry, "root");
        archive_entry_set_gname(entry, "root");
        if (archive_write_header(w, entry) != ARCHIVE_OK) {
            rc = set_err(err, errsz, -EIO, "%s: %s", rel, archive_error_string(w));
            goto out;
        }
        if (archive_entry_filetype(entry) == AE_IFREG && archive_entry_size(entry) > 0 &&
            copy_disk_data(disk, w) < 0) {
            rc = set_err(err, errsz, -EIO, "%s: read failed", rel);
            goto out;
        }
    }
    if (archive_write_close(w) != ARCHIVE_OK) {
        rc = set_err(err, errsz, -EIO, "%s: %s", out_path, archive_error_string(w));
        goto out;
    }
out:
    if (entry != NULL)
        archive_entry_free(entry);
    if (disk != NULL)
        archive_read_free(disk);
    if (w != NULL)
        archive_write_free(w);
    return rc;
}

/* ---- reading ---- */

static struct archive *
open_slug(const char *slug_path)
{
    struct archive *a = archive_read_new();

    if (a == NULL)
        return NULL;
    archive_read_support_filter_gzip(a);
    archive_read_support_format_tar(a);
    if (archive_read_open_filename(a, slug_path, COPY_BUF) != ARCHIVE_OK) {
        archive_read_free(a);
        return NULL;
    }
    return a;
}

/* "./a//b/" -> "a/b"; returns -EPERM for absolute paths and ".." parts. */
static int
clean_path(const char *in, char *out, size_t outsz)
{
    const char *p = in;
    size_t o = 0;

    if (in == NULL || in[0] == '/')
        return -EPERM;
    while (*p) {
        const char *seg = p;
        size_t len;

        while (*p && *p != '/')
            p++;
        len = (size_t)(p - seg);
        while (*p == '/')
            p++;
        if (len == 0 || (len == 1 && seg[0] == '.'))
            continue;
        if (len == 2 && seg[0] == '.' && seg[1] == '.')
            return -EPERM;
        if (o + len + 2 > outsz)
            return -ENAMETOOLONG;
        if (o > 0)
            out[o++] = '/';
        memcpy(out + o, seg, len);
        o += len;
    }
    out[o] = '\0';
    return 0;
}

/*
 * Where a symlink at path with target t points, relative to the root
 * ("conf/Procfile" for "Procfile" -> "conf/Procfile", "a/b" for "a/x" ->
 * "../a/b", "" for the root itself): lexical, -EPERM when t is absolute or
 * the path climbs above the root at any step.
 */
static int
link_walk(const char *path, const char *t, char *out, size_t outsz)
{
    const char *slash = strrchr(path, '/');
    size_t o = slash != NULL ? (size_t)(slash - path) : 0;
    const char *p;

    if (t == NULL || t[0] == '\0' || t[0] == '/')
        return -EPERM;
    if (o + 1 > outsz)
        return -ENAMETOOLONG;
    memcpy(out, path, o);
    out[o] = '\0';
    for (p = t; *p;) {
        const char *seg = p;
        size_t len;

        while (*p && *p != '/')
            p++;
        len = (size_t)(p - seg);
        while (*p == '/')
            p++;
        if (len == 0 || (len == 1 && seg[0] == '.'))
            continue;
        if (len == 2 && seg[0] == '.' && seg[1] == '.') {
            char *up = strrchr(out, '/');

            if (o == 0)
                return -EPERM; /* above the root */
            o = up != NULL ? (size_t)(up - out) : 0;
            out[o] = '\0';
            continue;
        }
        if (o + len + 2 > outsz)
            return -ENAMETOOLONG;
        if (o > 0)
            out[o++] = '/';
        memcpy(out + o, seg, len);
        o += len;
        out[o] = '\0';
    }
    return 0;
}

/* The member a symlink names (link_walk); a link to the root is no file. */
static int
link_target(const char *path, const char *t, char *out, size_t outsz)
{
    int rc = link_walk(path, t, out, outsz);

    return rc == 0 && out[0] == '\0' ? -EPERM : rc;
}

#define SLUG_LINK_HOPS 8

/*
 * One pass over the slug for member want: 0 with the data, 1 with want
 * replaced by the target of a symlink found there, or a negative errno.
 */
static int
read_member_once(const char *slug_path, char *want, size_t wantsz, size_t max, char **buf,
                 size_t *len)
{
    struct archive *a;
    struct archive_entry *e;
    char got[PATH_MAX];
    int rc = -ENOENT, r;

    if ((a = open_slug(slug_path)) == NULL)
        return -EBADMSG;
    while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
        la_int64_t size;
        char *data;
        la_ssize_t n;

        if (clean_path(archive_entry_pathname(e), got, sizeof(got)) < 0 || strcmp(got, want) != 0)
            continue;
        if (archive_entry_filetype(e) == AE_IFLNK) {
            char to[PATH_MAX];

            rc = link_target(got, archive_entry_symlink(e), to, sizeof(to));
            if (rc == 0 && strlen(to) < wantsz) {
                memcpy(want, to, strlen(to) + 1);
                rc = 1;
            } else if (rc == 0) {
                rc = -ENAMETOOLONG;
            }
            goto out;
        }
        if (archive_entry_filetype(e) != AE_IFREG)
            continue;
        size = archive_entry_size(e);
        if (size < 0 || (uint64_t)size > max) {
            rc = -EFBIG;
            goto out;
        }
        if ((data = malloc((size_t)size + 1)) == NULL) {
            rc = -ENOMEM;
            goto out;
        }
        n = archive_read_data(a, data, (size_t)size);
        if (n != size) {
            free(data);
            rc = -EBADMSG;
            goto out;
        }
        data[size] = '\0';
        *buf = data;
        *len = (size_t)size;
        rc = 0;
        goto out;
    }
    if (r != ARCHIVE_EOF)
        rc = -EBADMSG;
out:
    archive_read_free(a);
    return rc;
}

/*
 * A member that is a symlink is followed, as the unpacked tree would (a
 * Procfile linked to conf/Procfile), as long as the link stays inside the
 * slug: each hop is a new pass, since the target may come before the link
 * in the archive.
 */
int
slug_read_member(const char *slug_path, const char *name, size_t max, char **buf, size_t *len)
{
    char want[PATH_MAX];
    int rc;

    *buf = NULL;
    *len = 0;
    if (clean_path(name, want, sizeof(want)) < 0)
        return -EINVAL;
    for (int hop = 0; hop <= SLUG_LINK_HOPS; hop++) {
        rc = read_member_once(slug_path, want, sizeof(want), max, buf, len);
        if (rc != 1)
            return rc == -EPERM || rc == -ENAMETOOLONG ? -ELOOP : rc;
    }
    return -ELOOP;
}

/* ---- unpacking ---- */

/*
 * Does link target t, found in the entry at path (both relative to the root),
 * stay inside the root? Lexical: the joined path must never climb above it.
 */
static int
link_inside(const char *path, const char *t)
{
    char where[PATH_MAX * 2];

    return link_walk(path, t, where, sizeof(where)) == 0;
}

static int
copy_data(struct archive *in, struct archive *out, uint64_t *total, uint64_t max)
{
    const void *buf;
    size_t len;
    la_int64_t off;
    int r;

    while ((r = archive_read_data_block(in, &buf, &len, &off)) == ARCHIVE_OK) {
        *total += len;
        if (*total > max)
            return -EFBIG;
        if (archive_write_data_block(out, buf, len, off) != ARCHIVE_OK)
            return -EIO;
    }
    return r == ARCHIVE_EOF ? 0 : -EBADMSG;
}

/* No setuid, no group or other write; readable by all, and executable by
 * all when executable by anyone: app processes run as another user. */
static mode_t
readable(mode_t perm)
{
    perm = (perm & 0755) | 0444;
    return perm & 0111 ? perm | 0111 : perm;
}

/* Is path (absolute, resolved) root itself or under it? */
static bool
under(const char *path, const char *root)
{
    size_t n = strlen(root);

    return strncmp(path, root, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/*
 * Does the symlink at full (under root) point inside root, following the
 * links actually on disk? A dangling target is followed as far as it exists;
 * what is left must not climb with "..".
 */
static bool
link_resolves_inside(const char *full, const char *root)
{
    char target[PATH_MAX], joined[PATH_MAX * 2], res[PATH_MAX];
    const char *slash;
    ssize_t n;
    size_t cut;

    if (realpath(full, res) != NULL)
        return under(res, root);
    if (errno != ENOENT)
        return false; /* ELOOP and the like */
    if ((n = readlink(full, target, sizeof(target) - 1)) < 0)
        return false;
    target[n] = '\0';
    if (target[0] == '/')
        return false;
    slash = strrchr(full, '/');
    snprintf(joined, sizeof(joined), "%.*s/%s", (int)(slash - full), full, target);
    /* The longest existing prefix must resolve inside, the rest not climb. */
    for (cut = strlen(joined); cut > 0; cut--) {
        if (joined[cut] != '/' && joined[cut] != '\0')
            continue;
        char save = joined[cut];

        joined[cut] = '\0';
        if (realpath(joined, res) != NULL) {
            joined[cut] = save;
            return under(res, root) && strstr(joined + cut, "/..") == NULL;
        }
        joined[cut] = save;
    }
    return false;
}

static int
check_links_at(const char *dir, const char *root, int depth, char *err, size_t errsz)
{
    DIR *d;
    struct dirent *de;
    char full[PATH_MAX];
    struct stat st;
    int rc = 0;

    if (depth > 256)
        return set_err(err, errsz, -EPERM, "refused: directories nested too deep");
    if ((d = opendir(dir)) == NULL)
        return set_err(err, errsz, -errno, "%s: cannot read", dir);
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (strfmt(full, sizeof(full), "%s/%s", dir, de->d_name) < 0 || lstat(full, &st) < 0)
            continue;
        if (S_ISLNK(st.st_mode) && !link_resolves_inside(full, root))
            rc = set_err(err, errsz, -EPERM, "refused symlink %s: resolves outside the slug",
                         full + strlen(root) + 1);
        else if (S_ISDIR(st.st_mode))
            rc = check_links_at(full, root, depth + 1, err, errsz);
    }
    closedir(d);
    return rc;
}

/* Every symlink under dir (rel: its path in the slug), as unpacking will
 * judge it: lexically, then as it resolves on disk. */
static int
pack_links_at(const char *dir, const char *root, const char *rel, int depth, char *err,
              size_t errsz)
{
    char full[PATH_MAX], sub[PATH_MAX], target[PATH_MAX];
    struct dirent *de;
    struct stat st;
    DIR *d;
    ssize_t n;
    int rc = 0;

    if (depth > 256)
        return set_err(err, errsz, -EPERM, "refused: directories nested too deep");
    if ((d = opendir(dir)) == NULL)
        return set_err(err, errsz, -errno, "%s: cannot read", dir);
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (strfmt(full, sizeof(full), "%s/%s", dir, de->d_name) < 0 ||
            strfmt(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "", de->d_name) < 0 ||
            lstat(full, &st) < 0)
            continue;
        if (S_ISLNK(st.st_mode)) {
            n = readlink(full, target, sizeof(target) - 1);
            target[n > 0 ? n : 0] = '\0';
            if (!link_inside(sub, target))
                rc = set_err(err, errsz, -EPERM,
                             "refused symlink %s -> %s: points outside the slug", sub, target);
            else if (!link_resolves_inside(full, root))
                rc = set_err(err, errsz, -EPERM, "refused symlink %s: resolves outside the slug",
                             sub);
        } else if (S_ISDIR(st.st_mode)) {
            rc = pack_links_at(full, root, sub, depth + 1, err, errsz);
        }
    }
    closedir(d);
    return rc;
}

int
slug_check_links(const char *dir, char *err, size_t errsz)
{
    char root[PATH_MAX];

    if (realpath(dir, root) == NULL)
        return set_err(err, errsz, -errno, "%s: %s", dir, strerror(errno));
    return pack_links_at(root, root, "", 0, err, errsz);
}

int
slug_unpack(const char *slug_path, const char *dest_dir, char *err, size_t errsz)
{
    static const struct slug_limits lim = {SLUG_MAX_UNPACKED, SLUG_MAX_ENTRIES};

    return slug_unpack_limited(slug_path, dest_dir, &lim, err, errsz);
}

int
slug_unpack_limited(const char *slug_path, const char *dest_dir, const struct slug_limits *lim,
                    char *err, size_t errsz)
{
    struct archive *a = NULL, *w = NULL;
    struct archive_entry *e;
    char root[PATH_MAX], rel[PATH_MAX], full[PATH_MAX * 2];
    uint64_t total = 0, entries = 0;
    int rc = 0, r;

    if ((rc = mkdir_p(dest_dir, 0755)) < 0)
        return set_err(err, errsz, rc, "%s: cannot create directory", dest_dir);
    /* A prefix without symlinks, so that SECURE_SYMLINKS checks only what the
     * archive itself creates. */
    if (realpath(dest_dir, root) == NULL)
        return set_err(err, errsz, -errno, "%s: cannot resolve", dest_dir);
    if ((a = open_slug(slug_path)) == NULL)
        return set_err(err, errsz, -EBADMSG, "%s: not a readable slug", slug_path);
    if ((w = archive_write_disk_new()) == NULL) {
        rc = set_err(err, errsz, -ENOMEM, "out of memory");
        goto out;
    }
    archive_write_disk_set_options(w, ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                          ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                          ARCHIVE_EXTRACT_NO_OVERWRITE_NEWER);
    while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
        const char *path = archive_entry_pathname(e);
        const char *hard = archive_entry_hardlink(e);
        unsigned type = archive_entry_filetype(e);

        if (++entries > lim->max_entries) {
            rc = set_err(err, errsz, -EFBIG, "refused: more than %llu entries",
                         (unsigned long long)lim->max_entries);
            goto out;
        }
        if (path == NULL || clean_path(path, rel, sizeof(rel)) < 0) {
            rc = set_err(err, errsz, -EPERM, "refused entry %s: absolute path or '..'",
                         path ? path : "(none)");
            goto out;
        }
        if (rel[0] == '\0')
            continue; /* "./" itself */
        if (hard != NULL) {
            char hrel[PATH_MAX];
            if (clean_path(hard, hrel, sizeof(hrel)) < 0 || hrel[0] == '\0') {
                rc = set_err(err, errsz, -EPERM, "refused hard link %s -> %s: outside the slug",
                             rel, hard);
                goto out;
            }
            snprintf(full, sizeof(full), "%s/%s", root, hrel);
            archive_entry_set_hardlink(e, full);
        } else if (type == AE_IFLNK) {
            if (!link_inside(rel, archive_entry_symlink(e))) {
                rc =
                    set_err(err, errsz, -EPERM, "refused symlink %s -> %s: points outside the slug",
                            rel, archive_entry_symlink(e) ? archive_entry_symlink(e) : "");
                goto out;
            }
        } else if (type != AE_IFREG && type != AE_IFDIR) {
            rc = set_err(err, errsz, -EPERM, "refused %s: %s", rel,
                         "device files, FIFOs and sockets are not allowed");
            goto out;
        }
        if (archive_entry_size(e) > 0 && (uint64_t)archive_entry_size(e) > lim->max_unpacked) {
            rc = set_err(err, errsz, -EFBIG, "refused %s: larger than the unpacked limit", rel);
            goto out;
        }
        snprintf(full, sizeof(full), "%s/%s", root, rel);
        archive_entry_set_pathname(e, full);
        archive_entry_set_perm(e, type == AE_IFDIR ? 0755 : readable(archive_entry_perm(e)));
        if (archive_write_header(w, e) != ARCHIVE_OK) {
            rc = set_err(err, errsz, -EPERM, "refused %s: %s", rel, archive_error_string(w));
            goto out;
        }
        if (type == AE_IFREG && hard == NULL) {
            if ((rc = copy_data(a, w, &total, lim->max_unpacked)) < 0) {
                if (rc == -EFBIG)
                    set_err(err, errsz, rc, "refused %s: unpacked size over the limit", rel);
                else
                    set_err(err, errsz, rc, "%s: cannot unpack", rel);
                goto out;
            }
        }
        if (archive_write_finish_entry(w) != ARCHIVE_OK) {
            rc = set_err(err, errsz, -EIO, "%s: %s", rel, archive_error_string(w));
            goto out;
        }
    }
    if (r != ARCHIVE_EOF) {
        rc = set_err(err, errsz, -EBADMSG, "corrupt slug: %s", archive_error_string(a));
        goto out;
    }
    rc = check_links_at(root, root, 0, err, errsz);
out:
    if (w != NULL) {
        archive_write_close(w);
        archive_write_free(w);
    }
    archive_read_free(a);
    return rc;
}
