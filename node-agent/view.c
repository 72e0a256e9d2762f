/* SPDX-License-Identifier: MIT */
/*
 * view.c: a writable, ephemeral filesystem per instance, like a dyno's.
 *
 * Run by the exec helper (exec.c) as root, before it drops privileges: the
 * process gets a mount namespace of its own, and in it
 *
 *   - a tmpfs over VIEWS (DATA_DIR/views), holding upper/, work/, tmp/
 *     and empty/ (the instance's one filesystem of its own);
 *   - an overlay at VIEWS/app: the unpacked release below, upper/ (owned by
 *     the app's user) above. This is the instance's cwd and HOME: it can
 *     create, change and delete files there, and every change lands in
 *     upper/, never in the release;
 *   - VIEWS/empty bound read-only over DATA_DIR/releases, so no release can
 *     be reached by its real path from inside (the overlay keeps its own
 *     reference to the lower directory);
 *   - VIEWS/tmp bound on /tmp (mode 1777), private to the instance.
 *
 * Nothing needs cleaning up: the namespace, and with it every mount and the
 * files written there, goes when the instance's last process does, even if
 * the agent was killed (an instance the agent stops goes a moment later:
 * the agent holds its namespace through the stop, so that the exit does not
 * wait for the teardown, and then drops it: viewhold.c). Writes live in
 * memory (tmpfs) and are charged to the instance's memory cgroup, so its
 * memory limit bounds them too.
 *
 * Why overlayfs and not a copy: its cost does not depend on the slug's size
 * (see the README for the figures); a copy of a 300 MiB slug costs far more
 * per start. Without root, the same is done inside a user namespace of the
 * instance's own (where the kernel allows unprivileged ones: the agent
 * probes at start, agt_view_probe); where it does not, instances run in the
 * release itself, as before.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agt.h"

/* snprintf that fails on truncation (util.c's strfmt; this file is also
 * linked into the small drover-exec binary, which has no common library). */
static int pathfmt(char *out, size_t outsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
pathfmt(char *out, size_t outsz, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(out, outsz, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= outsz ? -ENAMETOOLONG : 0;
}

static int
mkdirs(const char *path)
{
    char tmp[PATH_MAX];

    if (pathfmt(tmp, sizeof tmp, "%s", path) < 0)
        return -ENAMETOOLONG;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    return mkdir(tmp, 0755) < 0 && errno != EEXIST ? -errno : 0;
}

static int
write_proc(const char *file, const char *text)
{
    int fd = open(file, O_WRONLY | O_CLOEXEC), rc = 0;
    ssize_t len = (ssize_t)strlen(text);

    if (fd < 0)
        return -errno;
    if (write(fd, text, (size_t)len) != len)
        rc = -errno;
    close(fd);
    return rc;
}

/*
 * Not root: a user namespace of our own, mapping only our uid and gid to
 * themselves, gives the capabilities to mount inside it and nowhere else
 * (they are gone at the exec: the app is an ordinary user in it).
 */
static int
enter_userns(uint32_t uid, uint32_t gid)
{
    char map[64];
    int rc;

    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
        return -errno;
    if ((rc = write_proc("/proc/self/setgroups", "deny")) < 0)
        return rc;
    snprintf(map, sizeof map, "%u %u 1\n", (unsigned)uid, (unsigned)uid);
    if ((rc = write_proc("/proc/self/uid_map", map)) < 0)
        return rc;
    snprintf(map, sizeof map, "%u %u 1\n", (unsigned)gid, (unsigned)gid);
    return write_proc("/proc/self/gid_map", map);
}

int
agt_view_probe(const char *views, char *err, size_t errsz)
{
    int rc;

    /* The same steps agt_view_enter takes first (we are a child of the
     * agent, so nothing here reaches it). Root can still fail them: in a
     * chroot whose root is not a mount point, / cannot be made private. */
    if (geteuid() == 0) {
        if (unshare(CLONE_NEWNS) < 0) {
            rc = -errno;
            snprintf(err, errsz, "no mount namespace: %s", strerror(errno));
            return rc;
        }
    } else if ((rc = enter_userns((uint32_t)getuid(), (uint32_t)getgid())) < 0) {
        snprintf(err, errsz, "no user namespace: %s", strerror(-rc));
        return rc;
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
        rc = -errno;
        snprintf(err, errsz, "cannot make / private (a chroot whose / is not a mount point?): %s",
                 strerror(errno));
        return rc;
    }
    if (mount("tmpfs", views, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0) {
        rc = -errno;
        snprintf(err, errsz, "cannot mount in a mount namespace: %s", strerror(errno));
        return rc;
    }
    return 0;
}

int
agt_view_enter(const struct agt_view *v, uint32_t uid, uint32_t gid, char *err, size_t errsz)
{
    char upper[PATH_MAX], work[PATH_MAX], app[PATH_MAX], tmp[PATH_MAX], empty[PATH_MAX],
        opts[3 * PATH_MAX + 64];
    struct stat st;
    int fd;

    /* strerrordesc_np: strerror's text without its locale, which may
     * allocate (spawn.c runs this in a child sharing the agent's memory). */
#define FAIL(what)                                                                                 \
    do {                                                                                           \
        int e_ = errno;                                                                            \
        const char *d_ = strerrordesc_np(e_);                                                      \
        snprintf(err, errsz, "%s: %s", what, d_ ? d_ : "unknown error");                           \
        return -e_;                                                                                \
    } while (0)

    if (pathfmt(upper, sizeof upper, "%s/upper", v->views) < 0 ||
        pathfmt(work, sizeof work, "%s/work", v->views) < 0 ||
        pathfmt(app, sizeof app, "%s/app", v->views) < 0 ||
        pathfmt(tmp, sizeof tmp, "%s/tmp", v->views) < 0 ||
        pathfmt(empty, sizeof empty, "%s/empty", v->views) < 0 ||
        pathfmt(opts, sizeof opts, "lowerdir=%s,upperdir=%s,workdir=%s", v->release, upper, work) <
            0) {
        snprintf(err, errsz, "path too long");
        return -ENAMETOOLONG;
    }
    if (geteuid() != 0) {
        int rc = enter_userns(uid, gid);

        if (rc < 0) {
            errno = -rc;
            FAIL("a user namespace");
        }
    } else if (unshare(CLONE_NEWNS) < 0)
        FAIL("unshare(CLONE_NEWNS)");
    /* Nothing done here may reach the host's mount table. */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        FAIL("make / private");
    if (mount("tmpfs", v->views, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
        FAIL("tmpfs on the views dir");
    if (mkdir(upper, 0755) < 0 || mkdir(work, 0700) < 0 || mkdir(app, 0755) < 0 ||
        mkdir(tmp, 0700) < 0 || chmod(tmp, 01777) < 0 || mkdir(empty, 0755) < 0)
        FAIL("mkdir in the view");
    if (chown(upper, uid, gid) < 0)
        FAIL("chown the view");
    if (mount("overlay", app, "overlay", MS_NOSUID | MS_NODEV, opts) < 0)
        FAIL("overlay mount");
    /* Held across the covering mounts below, which may hide its path. */
    fd = open(app, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        FAIL("open the view");
    /* The cover of the releases and the private /tmp are directories of
     * the view's tmpfs, bound: a bind mount costs no filesystem of its own
     * to make at the start and to take down at the exit. */
    if (v->hide[0] && (mount(empty, v->hide, NULL, MS_BIND, NULL) < 0 ||
                       mount(NULL, v->hide, NULL,
                             MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0))
        FAIL("hide the releases");
    if (mount(tmp, "/tmp", NULL, MS_BIND, NULL) < 0)
        FAIL("a private /tmp");
    /* A data dir under /tmp (tests do that) is now out of sight: put the
     * view back at its path, which is HOME, in the new /tmp. */
    if (stat(app, &st) < 0) {
        char self[64];

        snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
        if (mkdirs(app) < 0 || mount(self, app, NULL, MS_BIND, NULL) < 0)
            FAIL("the view under the private /tmp");
    }
    if (fchdir(fd) < 0 || chdir(app) < 0)
        FAIL("chdir to the view");
    close(fd);
    return 0;
#undef FAIL
}
