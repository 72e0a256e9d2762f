/* SPDX-License-Identifier: MIT */
/*
 * unpack_main.c: drover-unpack SLUG DEST, the agent's slug unpacker as a
 * process of its own.
 *
 * Unpacking needs libarchive, and libarchive on Debian 12 loads a dozen
 * more libraries (libxml2, ICU, libstdc++, nettle, zstd, lzma ...): about
 * 3 MiB of resident pages in an agent that unpacks a release now and then
 * and otherwise only supervises. So the agent does not link it; it runs this
 * helper (slugs.c) for each release, which does exactly what the agent did
 * in its thread (common/slug.c's slug_unpack, with every check of paths,
 * links, types and sizes) and says how it went on stdout, one line: "ok",
 * or the errno and the reason ("13 entry ../x: path escapes"). Exit 0 or 1.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "slug.h"

int
main(int argc, char **argv)
{
    char err[512] = "";
    int rc;

    if (argc != 3) {
        printf("%d usage: drover-unpack SLUG DEST\n", EINVAL);
        return 1;
    }
    rc = slug_unpack(argv[1], argv[2], err, sizeof err);
    if (rc < 0) {
        printf("%d %s\n", -rc, err[0] ? err : strerror(-rc));
        return 1;
    }
    printf("ok\n");
    return fflush(stdout) == 0 ? 0 : 1;
}
