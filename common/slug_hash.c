/* SPDX-License-Identifier: MIT */
/*
 * slug_hash.c: a slug's name (its SHA-256) and the check of one, apart from
 * slug.c so that what needs only these (the agent) does not link
 * libarchive: the agent unpacks through its helper, drover-unpack.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <sodium.h>

#include "slug.h"

#define COPY_BUF (64u << 10)

int
slug_sha_valid(const char *s)
{
    size_t i;

    if (s == NULL)
        return 0;
    for (i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return s[64] == '\0';
}

int
slug_sha256_file(const char *path, char hex[65], uint64_t *size)
{
    crypto_hash_sha256_state st;
    unsigned char digest[crypto_hash_sha256_BYTES];
    unsigned char *buf = NULL;
    uint64_t total = 0;
    int fd = -1, rc = 0;
    ssize_t n;

    if (sodium_init() < 0)
        return -EIO;
    if ((buf = malloc(COPY_BUF)) == NULL)
        return -ENOMEM;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        rc = -errno;
        goto out;
    }
    crypto_hash_sha256_init(&st);
    while ((n = read(fd, buf, COPY_BUF)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            goto out;
        }
        crypto_hash_sha256_update(&st, buf, (unsigned long long)n);
        total += (uint64_t)n;
    }
    crypto_hash_sha256_final(&st, digest);
    sodium_bin2hex(hex, 65, digest, sizeof(digest));
    if (size != NULL)
        *size = total;
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}
