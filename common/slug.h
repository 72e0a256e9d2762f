/* SPDX-License-Identifier: MIT */
/*
 * slug.h: an app's built code as a gzipped tarball, named by its SHA-256.
 *
 * The CLI packs a directory; the controller reads the Procfile out of it; the
 * agent unpacks it. Unpacking refuses absolute paths, "..", links whose target
 * leaves the destination, device files and FIFOs, and stops past size limits
 * (a decompression bomb). These calls block: daemons run them through
 * uv_queue_work.
 */
#ifndef DROVER_SLUG_H
#define DROVER_SLUG_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#define SLUG_MAX_SIZE (512ull << 20)   /* compressed */
#define SLUG_MAX_UNPACKED (2ull << 30) /* sum of file sizes */
#define SLUG_MAX_ENTRIES 100000

/*
 * Pack dir into a tar.gz at out_path. dir must hold a regular file named
 * Procfile. Paths in the archive are relative ("Procfile", "bin/server").
 * Symlinks are stored as links. Returns 0 or negative errno with err set.
 */
int slug_pack_dir(const char *dir, const char *out_path, char *err, size_t errsz);
/* The same, leaving out each path (relative, like "doc/a.pdf") for which
 * leave_out returns true; a directory left out is not entered. */
typedef bool (*slug_filter_fn)(void *arg, const char *rel, bool is_dir);
int slug_pack_dir_filtered(const char *dir, const char *out_path, slug_filter_fn leave_out,
                           void *arg, char *err, size_t errsz);

/*
 * Would every symlink under dir survive slug_unpack? -EPERM with err naming
 * the first that would not ("refused symlink etc-dir -> ../../etc: points
 * outside the slug"), so that `drover deploy` refuses before uploading.
 */
int slug_check_links(const char *dir, char *err, size_t errsz);

/* SHA-256 of a file as lowercase hex (65 bytes with NUL) and its size. */
int slug_sha256_file(const char *path, char hex[65], uint64_t *size);

/* Is s 64 lowercase hex characters? */
int slug_sha_valid(const char *s);

/*
 * Read member name (e.g. "Procfile" or "./Procfile") from a slug into a
 * malloc'd NUL-terminated buffer of at most max bytes. A symlink is followed
 * inside the slug. -ENOENT when absent, -EFBIG when larger than max,
 * -EBADMSG when not a readable tar.gz, -ELOOP for a link that leaves the
 * slug or a chain of more than 8.
 */
int slug_read_member(const char *slug_path, const char *name, size_t max, char **buf, size_t *len);

/*
 * Unpack slug_path into dest_dir (created, must not exist yet or be empty).
 * Refuses (-EPERM, err says which entry and why): absolute paths, any ".."
 * component, hard or symbolic links whose target resolves outside dest_dir
 * (checked lexically per entry, and once more on the finished tree with the
 * links as written, so that a link through another link is caught too),
 * device files, FIFOs, sockets; -EFBIG past SLUG_MAX_UNPACKED bytes (counted
 * as they are decompressed: a decompression bomb stops there) or
 * SLUG_MAX_ENTRIES entries. Nothing is ever written outside dest_dir; after
 * a refusal dest_dir holds a partial tree the caller removes. Files are made
 * readable by all, and executable by all when executable by anyone,
 * directories 0755: app processes run
 * as another user than the one who unpacks.
 */
int slug_unpack(const char *slug_path, const char *dest_dir, char *err, size_t errsz);

/* The limits slug_unpack applies, as parameters (tests lower them). */
struct slug_limits {
    uint64_t max_unpacked; /* sum of regular files' sizes */
    uint64_t max_entries;
};
int slug_unpack_limited(const char *slug_path, const char *dest_dir, const struct slug_limits *lim,
                        char *err, size_t errsz);

#endif
