/* SPDX-License-Identifier: MIT */
/*
 * Slug packing and, above all, safe unpacking: hostile archives are built
 * here entry by entry with libarchive and must be refused before anything is
 * written outside the destination.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "slug.h"
#include "util.h"

static char tmp[256];

static void
setup(void)
{
    snprintf(tmp, sizeof(tmp), "/tmp/drover-slug-test.XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
}

static void
teardown(void)
{
    rm_rf(tmp);
}

static void
write_file(const char *path, const char *text, int mode)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
    chmod(path, (mode_t)mode);
}

enum kind { K_FILE, K_SYMLINK, K_HARDLINK, K_FIFO, K_DIR };

struct ent {
    enum kind kind;
    const char *path;
    const char *data; /* file content or link target */
};

static void
make_tar(const char *out, const struct ent *ents, size_t n)
{
    struct archive *w = archive_write_new();
    archive_write_add_filter_gzip(w);
    archive_write_set_format_pax_restricted(w);
    cr_assert_eq(archive_write_open_filename(w, out), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, ents[i].path);
        archive_entry_set_perm(e, 0644);
        switch (ents[i].kind) {
        case K_FILE:
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_size(e, (la_int64_t)strlen(ents[i].data));
            break;
        case K_DIR:
            archive_entry_set_filetype(e, AE_IFDIR);
            archive_entry_set_perm(e, 0755);
            break;
        case K_SYMLINK:
            archive_entry_set_filetype(e, AE_IFLNK);
            archive_entry_set_symlink(e, ents[i].data);
            break;
        case K_HARDLINK:
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_hardlink(e, ents[i].data);
            break;
        case K_FIFO:
            archive_entry_set_filetype(e, AE_IFIFO);
            break;
        }
        cr_assert_eq(archive_write_header(w, e), ARCHIVE_OK, "%s", archive_error_string(w));
        if (ents[i].kind == K_FILE)
            archive_write_data(w, ents[i].data, strlen(ents[i].data));
        archive_entry_free(e);
    }
    archive_write_close(w);
    archive_write_free(w);
}

static int
exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

TestSuite(slug, .init = setup, .fini = teardown, .timeout = 10);

Test(slug, pack_hash_read_unpack_round_trip)
{
    char dir[300], bin[300], path[400], out[300], dest[300], sha[65], sha2[65];
    char *buf;
    size_t len;
    uint64_t size;
    struct stat st;

    snprintf(dir, sizeof(dir), "%s/app", tmp);
    snprintf(bin, sizeof(bin), "%s/app/bin", tmp);
    mkdir_p(bin, 0755);
    snprintf(path, sizeof(path), "%s/Procfile", dir);
    write_file(path, "web: bin/server\n", 0644);
    snprintf(path, sizeof(path), "%s/server", bin);
    write_file(path, "#!/bin/sh\necho hi\n", 0755);
    snprintf(path, sizeof(path), "%s/link", dir);
    cr_assert_eq(symlink("bin/server", path), 0);

    snprintf(out, sizeof(out), "%s/slug.tgz", tmp);
    char err[256] = "";
    cr_assert_eq(slug_pack_dir(dir, out, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(slug_sha256_file(out, sha, &size), 0);
    cr_assert(slug_sha_valid(sha));
    cr_assert_gt(size, 0);
    cr_assert_eq(slug_sha256_file(out, sha2, NULL), 0);
    cr_assert_str_eq(sha, sha2, "hashing is deterministic");
    /* Packing the same tree again gives the same slug. */
    char out2[300];
    snprintf(out2, sizeof(out2), "%s/slug2.tgz", tmp);
    sleep(1);
    cr_assert_eq(slug_pack_dir(dir, out2, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(slug_sha256_file(out2, sha2, NULL), 0);
    cr_assert_str_eq(sha, sha2, "packing an unchanged directory twice changed the slug");

    cr_assert_eq(slug_read_member(out, "Procfile", 1024, &buf, &len), 0);
    cr_assert_str_eq(buf, "web: bin/server\n");
    free(buf);
    cr_assert_eq(slug_read_member(out, "Procfile", 4, &buf, &len), -EFBIG);
    cr_assert_eq(slug_read_member(out, "nope", 1024, &buf, &len), -ENOENT);

    snprintf(dest, sizeof(dest), "%s/dest", tmp);
    cr_assert_eq(slug_unpack(out, dest, err, sizeof(err)), 0, "%s", err);
    snprintf(path, sizeof(path), "%s/bin/server", dest);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert(st.st_mode & S_IXUSR, "executable bit kept");
    snprintf(path, sizeof(path), "%s/link", dest);
    cr_assert_eq(lstat(path, &st), 0);
    cr_assert(S_ISLNK(st.st_mode));
}

Test(slug, pack_requires_a_procfile)
{
    char dir[300], out[300], err[256] = "";

    snprintf(dir, sizeof(dir), "%s/empty", tmp);
    mkdir_p(dir, 0755);
    snprintf(out, sizeof(out), "%s/x.tgz", tmp);
    cr_assert_lt(slug_pack_dir(dir, out, err, sizeof(err)), 0);
    cr_assert(strstr(err, "Procfile") != NULL, "%s", err);
    cr_assert_lt(slug_pack_dir("/nonexistent/dir", out, err, sizeof(err)), 0);
}

static void
expect_refused(const struct ent *ents, size_t n, const char *outside_probe)
{
    char out[300], dest[300], err[256] = "";

    snprintf(out, sizeof(out), "%s/evil.tgz", tmp);
    snprintf(dest, sizeof(dest), "%s/deep/er/dest", tmp);
    make_tar(out, ents, n);
    cr_assert_eq(slug_unpack(out, dest, err, sizeof(err)), -EPERM, "not refused: %s", err);
    cr_assert(strstr(err, "refused") != NULL, "%s", err);
    if (outside_probe != NULL) {
        char probe[400];
        snprintf(probe, sizeof(probe), "%s/%s", tmp, outside_probe);
        cr_assert_not(exists(probe), "%s was written outside the destination", probe);
    }
}

Test(slug, refuses_dotdot)
{
    struct ent e[] = {{K_FILE, "Procfile", "web: x\n"}, {K_FILE, "../../../x", "pwned"}};
    expect_refused(e, 2, "deep/x");
    struct ent e2[] = {{K_FILE, "a/../../b", "pwned"}};
    expect_refused(e2, 1, NULL);
}

Test(slug, refuses_absolute_paths)
{
    char abs[400];
    snprintf(abs, sizeof(abs), "%s/abs-x", tmp);
    struct ent e[] = {{K_FILE, abs, "pwned"}};
    expect_refused(e, 1, "abs-x");
}

Test(slug, refuses_escaping_symlinks)
{
    struct ent e[] = {{K_SYMLINK, "evil", "../../.."}, {K_FILE, "evil/esc", "pwned"}};
    expect_refused(e, 2, "esc");
    struct ent e2[] = {{K_SYMLINK, "etc", "/etc"}};
    expect_refused(e2, 1, NULL);
    struct ent e3[] = {{K_DIR, "a", NULL}, {K_SYMLINK, "a/up", "../../x"}};
    expect_refused(e3, 2, NULL);
}

Test(slug, refuses_hardlinks_outside_and_fifos)
{
    struct ent e[] = {{K_HARDLINK, "h", "../../../etc/passwd"}};
    expect_refused(e, 1, NULL);
    struct ent e2[] = {{K_FIFO, "fifo", NULL}};
    expect_refused(e2, 1, NULL);
}

Test(slug, refuses_garbage)
{
    char out[300], dest[300], err[256] = "";
    snprintf(out, sizeof(out), "%s/garbage.tgz", tmp);
    write_file(out, "this is not a tarball at all", 0644);
    snprintf(dest, sizeof(dest), "%s/dest3", tmp);
    cr_assert_lt(slug_unpack(out, dest, err, sizeof(err)), 0);
    char *buf;
    size_t len;
    cr_assert_lt(slug_read_member(out, "Procfile", 100, &buf, &len), 0);
}
