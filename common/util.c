/* SPDX-License-Identifier: MIT */
/*
 * util.c: name rules shared by every program (the controller checks what the
 * CLI already checked: input from the wire is never trusted), time, and a few
 * file-system helpers.
 */
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static bool
is_lower(char c)
{
    return c >= 'a' && c <= 'z';
}

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool
is_alpha(char c)
{
    return is_lower(c) || (c >= 'A' && c <= 'Z');
}

bool
name_app_valid(const char *s)
{
    size_t i;

    if (s == NULL || !is_lower(s[0]))
        return false;
    for (i = 1; s[i]; i++)
        if (i >= APP_NAME_MAX || !(is_lower(s[i]) || is_digit(s[i]) || s[i] == '-'))
            return false;
    return true;
}

/* What Heroku accepts in a Procfile (its parser's [A-Za-z0-9_-]+), so that
 * a Heroku app's Procfile runs unchanged; types compare exactly, as there. */
bool
name_type_valid(const char *s)
{
    size_t i;

    if (s == NULL || s[0] == '\0')
        return false;
    for (i = 0; s[i]; i++)
        if (i >= TYPE_NAME_MAX || !(is_alpha(s[i]) || is_digit(s[i]) || s[i] == '-' || s[i] == '_'))
            return false;
    return true;
}

const char *
name_config_key_reserved(const char *s)
{
    if (strcmp(s, "PORT") == 0)
        return "PORT is set by drover for each process (the port it must listen on)";
    if (strcmp(s, "DYNO") == 0 || strcmp(s, "PS") == 0)
        return "DYNO and PS are set by drover for each process (its name, like web.1)";
    if (strncmp(s, "DROVER_", 7) == 0)
        return "DROVER_* names are drover's own (DROVER_APP, DROVER_RELEASE, ...)";
    return NULL;
}

bool
name_config_key_valid(const char *s)
{
    size_t i;

    if (s == NULL || !(is_alpha(s[0]) || s[0] == '_'))
        return false;
    for (i = 1; s[i]; i++)
        if (i >= CONFIG_KEY_MAX || !(is_alpha(s[i]) || is_digit(s[i]) || s[i] == '_'))
            return false;
    return true;
}

bool
name_node_valid(const char *s)
{
    size_t i;

    if (s == NULL || !(is_alpha(s[0]) || is_digit(s[0])))
        return false;
    for (i = 1; s[i]; i++)
        if (i >= NODE_NAME_MAX ||
            !(is_alpha(s[i]) || is_digit(s[i]) || s[i] == '.' || s[i] == '_' || s[i] == '-'))
            return false;
    return true;
}

bool
name_instance_valid(const char *s)
{
    char type[TYPE_NAME_MAX + 1];
    const char *dot, *p;
    size_t tlen;

    if (s == NULL || (dot = strchr(s, '.')) == NULL)
        return false;
    tlen = (size_t)(dot - s);
    if (tlen == 0 || tlen > TYPE_NAME_MAX)
        return false;
    memcpy(type, s, tlen);
    type[tlen] = '\0';
    if (!name_type_valid(type))
        return false;
    p = dot + 1;
    if (*p < '1' || *p > '9' || strlen(p) > 9)
        return false;
    for (; *p; p++)
        if (!is_digit(*p))
            return false;
    return true;
}

uint64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t
mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void
str_copy(char *out, size_t outsz, const char *s)
{
    size_t n = strnlen(s, outsz - 1);

    memcpy(out, s, n);
    out[n] = '\0';
}

size_t
u32_dec(uint32_t v, char out[11])
{
    char rev[10];
    size_t n = 0;

    do
        rev[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    for (size_t i = 0; i < n; i++)
        out[i] = rev[n - 1 - i];
    out[n] = '\0';
    return n;
}

void
fmt_time_ms(uint64_t ms, char out[32])
{
    time_t secs = (time_t)(ms / 1000u);
    struct tm tm;

    gmtime_r(&secs, &tm);
    /* The moduli bound every field, so the compiler can see 32 bytes suffice. */
    snprintf(out, 32, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ", (unsigned)(tm.tm_year + 1900) % 10000u,
             (unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u,
             (unsigned)tm.tm_hour % 100u, (unsigned)tm.tm_min % 100u, (unsigned)tm.tm_sec % 100u,
             (unsigned)(ms % 1000u));
}

int
strfmt(char *out, size_t outsz, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(out, outsz, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= outsz)
        return -ENAMETOOLONG;
    return 0;
}

int
mkdir_p(const char *path, unsigned mode)
{
    char buf[4096];
    size_t len = strlen(path);
    char *p;

    if (len == 0 || len >= sizeof(buf))
        return -ENAMETOOLONG;
    memcpy(buf, path, len + 1);
    for (p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, (mode_t)mode) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, (mode_t)mode) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

int
rm_rf(const char *path)
{
    struct stat st;
    DIR *d;
    struct dirent *de;
    char child[4096];
    int rc = 0;

    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode))
        return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
    if ((d = opendir(path)) == NULL)
        return -errno;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (strfmt(child, sizeof(child), "%s/%s", path, de->d_name) < 0) {
            rc = -ENAMETOOLONG;
            continue;
        }
        int r = rm_rf(child);
        if (r < 0)
            rc = r;
    }
    closedir(d);
    if (rmdir(path) < 0 && errno != ENOENT)
        rc = -errno;
    return rc;
}

uint64_t
fnv1a64(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;

    while (len--) {
        h ^= *p++;
        h *= 0x100000001b3ull;
    }
    return h;
}

size_t
read_full(int fd, void *buf, size_t len)
{
    size_t got = 0;
    ssize_t n;

    while (got < len && (n = read(fd, (char *)buf + got, len - got)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        got += (size_t)n;
    }
    return got;
}
