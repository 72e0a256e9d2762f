/* SPDX-License-Identifier: MIT */
/*
 * Hostile slugs beyond slug_test.c's: device files, a decompression bomb
 * (a few KiB of gzip that expand past a lowered limit), too many entries,
 * and a symlink that escapes only through another symlink.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <archive.h>
#include <archive_entry.h>

#include "slug.h"
#include "util.h"

static char tmp[256];

static void
setup(void)
{
    snprintf(tmp, sizeof(tmp), "/tmp/drover-slugh-test.XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
}

static void
teardown(void)
{
    rm_rf(tmp);
}

TestSuite(slug_hostile, .init = setup, .fini = teardown, .timeout = 20);

static struct archive *
tar_open(const char *out)
{
    struct archive *w = archive_write_new();

    archive_write_add_filter_gzip(w);
    archive_write_set_format_pax_restricted(w);
    cr_assert_eq(archive_write_open_filename(w, out), ARCHIVE_OK);
    return w;
}

static void
tar_add(struct archive *w, const char *path, unsigned type, const char *link, size_t zeros)
{
    struct archive_entry *e = archive_entry_new();
    static char buf[65536];

    archive_entry_set_pathname(e, path);
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, type == AE_IFDIR ? 0755 : 0644);
    if (type == AE_IFLNK)
        archive_entry_set_symlink(e, link);
    if (type == AE_IFCHR || type == AE_IFBLK)
        archive_entry_set_rdev(e, 0x0103); /* 1:3, /dev/null */
    if (type == AE_IFREG)
        archive_entry_set_size(e, (la_int64_t)zeros);
    cr_assert_eq(archive_write_header(w, e), ARCHIVE_OK, "%s", archive_error_string(w));
    for (size_t done = 0; done < zeros;) {
        size_t n = zeros - done < sizeof(buf) ? zeros - done : sizeof(buf);
        archive_write_data(w, buf, n);
        done += n;
    }
    archive_entry_free(e);
}

static void
tar_close(struct archive *w)
{
    archive_write_close(w);
    archive_write_free(w);
}

static int
unpack(const char *slug, uint64_t max_unpacked, uint64_t max_entries, char *err, size_t errsz)
{
    struct slug_limits lim = {max_unpacked, max_entries};
    char dest[300];

    snprintf(dest, sizeof(dest), "%s/dest", tmp);
    rm_rf(dest);
    return slug_unpack_limited(slug, dest, &lim, err, errsz);
}

Test(slug_hostile, refuses_device_files)
{
    char slug[300], err[256] = "", probe[300];
    unsigned types[] = {AE_IFCHR, AE_IFBLK};

    snprintf(slug, sizeof(slug), "%s/dev.tgz", tmp);
    for (size_t i = 0; i < 2; i++) {
        struct archive *w = tar_open(slug);
        tar_add(w, "Procfile", AE_IFREG, NULL, 0);
        tar_add(w, "null", types[i], NULL, 0);
        tar_close(w);
        cr_assert_eq(unpack(slug, 1 << 20, 100, err, sizeof(err)), -EPERM, "not refused: %s", err);
        cr_assert(strstr(err, "device") != NULL, "%s", err);
        snprintf(probe, sizeof(probe), "%s/dest/null", tmp);
        struct stat st;
        cr_assert_neq(lstat(probe, &st), 0, "the device node was created");
    }
}

Test(slug_hostile, stops_a_decompression_bomb)
{
    char slug[300], err[256] = "";
    struct stat st;

    /* 8 MiB of zeros gzip to a few KiB: a bomb against a 1 MiB limit. */
    snprintf(slug, sizeof(slug), "%s/bomb.tgz", tmp);
    struct archive *w = tar_open(slug);
    tar_add(w, "Procfile", AE_IFREG, NULL, 0);
    tar_add(w, "a", AE_IFREG, NULL, 600u << 10);
    tar_add(w, "b", AE_IFREG, NULL, 600u << 10); /* together over the limit */
    tar_close(w);
    cr_assert_eq(stat(slug, &st), 0);
    cr_assert_lt(st.st_size, 64 << 10, "not a bomb: %lld bytes", (long long)st.st_size);
    cr_assert_eq(unpack(slug, 1u << 20, 100, err, sizeof(err)), -EFBIG, "%s", err);
    cr_assert(strstr(err, "refused") != NULL, "%s", err);
    /* One file alone past the limit is refused from its header. */
    w = tar_open(slug);
    tar_add(w, "big", AE_IFREG, NULL, 8u << 20);
    tar_close(w);
    cr_assert_eq(unpack(slug, 1u << 20, 100, err, sizeof(err)), -EFBIG, "%s", err);
    /* Under the limit it unpacks. */
    cr_assert_eq(unpack(slug, 9u << 20, 100, err, sizeof(err)), 0, "%s", err);
}

Test(slug_hostile, stops_too_many_entries)
{
    char slug[300], err[256] = "", name[32];

    snprintf(slug, sizeof(slug), "%s/many.tgz", tmp);
    struct archive *w = tar_open(slug);
    for (int i = 0; i < 50; i++) {
        snprintf(name, sizeof(name), "f%d", i);
        tar_add(w, name, AE_IFREG, NULL, 1);
    }
    tar_close(w);
    cr_assert_eq(unpack(slug, 1u << 20, 20, err, sizeof(err)), -EFBIG, "%s", err);
    cr_assert(strstr(err, "entries") != NULL, "%s", err);
    cr_assert_eq(unpack(slug, 1u << 20, 50, err, sizeof(err)), 0, "%s", err);
}

Test(slug_hostile, refuses_a_link_escaping_through_a_link)
{
    char slug[300], err[256] = "";

    /* "b -> a/.." looks inside, but a is ".": b is the parent of the slug.
     * Both orders: the second link may come first. */
    snprintf(slug, sizeof(slug), "%s/chain.tgz", tmp);
    struct archive *w = tar_open(slug);
    tar_add(w, "a", AE_IFLNK, ".", 0);
    tar_add(w, "b", AE_IFLNK, "a/..", 0);
    tar_close(w);
    cr_assert_eq(unpack(slug, 1u << 20, 100, err, sizeof(err)), -EPERM, "not refused: %s", err);
    w = tar_open(slug);
    tar_add(w, "b", AE_IFLNK, "a/..", 0);
    tar_add(w, "a", AE_IFLNK, ".", 0);
    tar_close(w);
    cr_assert_eq(unpack(slug, 1u << 20, 100, err, sizeof(err)), -EPERM, "not refused: %s", err);
    /* A dangling link whose existing part leads out. */
    w = tar_open(slug);
    tar_add(w, "a", AE_IFLNK, ".", 0);
    tar_add(w, "c", AE_IFLNK, "a/../nothing-here", 0);
    tar_close(w);
    cr_assert_eq(unpack(slug, 1u << 20, 100, err, sizeof(err)), -EPERM, "not refused: %s", err);
    /* Links that stay inside are fine, dangling or not. */
    w = tar_open(slug);
    tar_add(w, "d", AE_IFDIR, NULL, 0);
    tar_add(w, "d/f", AE_IFREG, NULL, 3);
    tar_add(w, "l1", AE_IFLNK, "d/f", 0);
    tar_add(w, "l2", AE_IFLNK, "d/../d/f", 0);
    tar_add(w, "l3", AE_IFLNK, "d/later.log", 0);
    tar_close(w);
    cr_assert_eq(unpack(slug, 1u << 20, 100, err, sizeof(err)), 0, "%s", err);
}

Test(slug_hostile, unpacked_files_are_readable_by_others)
{
    char slug[300], err[256] = "", path[320];
    struct stat st;

    snprintf(slug, sizeof(slug), "%s/perm.tgz", tmp);
    struct archive *w = tar_open(slug);
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, "secret");
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 04700); /* setuid and owner-only */
    archive_entry_set_size(e, 0);
    cr_assert_eq(archive_write_header(w, e), ARCHIVE_OK);
    archive_entry_free(e);
    tar_close(w);
    cr_assert_eq(unpack(slug, 1u << 20, 100, err, sizeof(err)), 0, "%s", err);
    snprintf(path, sizeof(path), "%s/dest/secret", tmp);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0755, "mode %o", st.st_mode & 07777);
}
