/* SPDX-License-Identifier: MIT */
/*
 * cmd_deploy.c: `drover deploy APP DIR` — check, pack, upload, release, wait.
 *
 * The Procfile is parsed here first, so a directory that cannot make a release
 * is refused before a byte is uploaded. The slug is packed into a temporary
 * file (under $TMPDIR or /tmp) that is always removed — on every return path
 * and, through a signal handler, when the user interrupts the upload. Chunks
 * go in order, WIRE_SLUG_CHUNK bytes each; the controller says `complete` on
 * the last one, or on the first when it already holds the slug.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "env.h"
#include "procfile.h"
#include "slug.h"
#include "util.h"
#include "wire.h"

/* The temporary slug, for the signal handler; "" when there is none. */
static char tmp_slug[4096];

static void
on_signal(int sig)
{
    if (tmp_slug[0] != '\0')
        unlink(tmp_slug); /* async-signal-safe */
    signal(sig, SIG_DFL);
    raise(sig);
}

static void
trap_signals(void (*handler)(int))
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

/*
 * A Procfile that is a symlink is read through, as the unpacked slug will,
 * if it leads to a file inside dir; *st becomes that file's. Prints why not.
 */
static int
procfile_link_inside(const char *dir, const char *path, struct stat *st)
{
    char root[PATH_MAX], to[PATH_MAX], link[PATH_MAX];
    ssize_t ln = readlink(path, link, sizeof(link) - 1);
    size_t n;
    int rc;

    if (ln > 0 && link[0] == '/') {
        link[ln] = '\0';
        cli_fail("%s is a symlink to the absolute path %s: in the slug it must be relative", path,
                 link);
        return -EPERM;
    }
    if (realpath(dir, root) == NULL || realpath(path, to) == NULL) {
        cli_fail("%s is a symlink to nothing that exists", path);
        return -ENOENT;
    }
    n = strlen(root);
    if (strncmp(to, root, n) != 0 || (to[n] != '/' && strcmp(root, "/") != 0)) {
        cli_fail("%s is a symlink to %s, outside %s: the slug holds only %s", path, to, dir, dir);
        return -EPERM;
    }
    if (stat(to, st) < 0) {
        rc = -errno;
        cli_fail("%s: %s", to, strerror(-rc));
        return rc;
    }
    return 0;
}

/* Read DIR/Procfile (a regular file, or a link to one inside DIR) into a
 * malloc'd buffer. Prints the reason. */
static int
read_procfile(const char *dir, char **text, size_t *len)
{
    char path[4096];
    struct stat st;
    ssize_t n = -1;
    int fd = -1, rc;

    *text = NULL;
    if (stat(dir, &st) < 0) {
        rc = -errno;
        cli_fail("%s: %s", dir, strerror(-rc));
        return rc;
    }
    if (!S_ISDIR(st.st_mode)) {
        cli_fail("%s is not a directory", dir);
        return -ENOTDIR;
    }
    if (strfmt(path, sizeof(path), "%s/Procfile", dir) < 0) {
        cli_fail("%s: path too long", dir);
        return -ENAMETOOLONG;
    }
    if (lstat(path, &st) < 0) {
        rc = -errno;
        if (rc == -ENOENT)
            cli_fail("%s has no Procfile (one line per process type, like "
                     "\"web: python3 web.py\")",
                     dir);
        else
            cli_fail("%s: %s", path, strerror(-rc));
        return rc;
    }
    if (S_ISLNK(st.st_mode) && (rc = procfile_link_inside(dir, path, &st)) < 0)
        return rc;
    if (!S_ISREG(st.st_mode)) {
        cli_fail("%s is not a regular file", path);
        return -EINVAL;
    }
    if (st.st_size > (off_t)PROCFILE_MAX_SIZE) {
        cli_fail("%s is larger than %u bytes", path, PROCFILE_MAX_SIZE);
        return -EFBIG;
    }
    *text = malloc((size_t)st.st_size + 1);
    if (*text == NULL) {
        cli_fail("out of memory");
        return -ENOMEM;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0)
        n = read(fd, *text, (size_t)st.st_size);
    if (n >= 0) {
        (*text)[n] = '\0';
        *len = (size_t)n;
        rc = 0;
    } else {
        rc = -errno;
        cli_fail("%s: %s", path, strerror(-rc));
        free(*text);
        *text = NULL;
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

/* DIR/Procfile must be a regular file that parses. Prints the reason. */
static int
check_procfile(const char *dir, struct procfile *pf)
{
    char err[256], *text;
    size_t len = 0;
    int rc;

    rc = read_procfile(dir, &text, &len);
    if (rc < 0)
        return rc;
    rc = procfile_parse(text, len, pf, err, sizeof(err));
    if (rc < 0)
        cli_fail("%s/Procfile: %s", dir, err);
    free(text);
    return rc;
}

static int
make_tmp_slug(void)
{
    const char *dir = env_raw("TMPDIR");
    int fd;

    if (strfmt(tmp_slug, sizeof(tmp_slug), "%s/drover-slug-XXXXXX.tar.gz",
               dir != NULL ? dir : "/tmp") < 0) {
        tmp_slug[0] = '\0';
        return cli_fail("TMPDIR is too long"), -ENAMETOOLONG;
    }
    fd = mkstemps(tmp_slug, 7);
    if (fd < 0) {
        int rc = -errno;

        cli_fail("cannot create a temporary file in %s: %s", dir != NULL ? dir : "/tmp",
                 strerror(-rc));
        tmp_slug[0] = '\0';
        return rc;
    }
    close(fd);
    return 0;
}

/* Upload the slug at path in order; prints progress and any failure. */
static int
upload(struct cli_client *c, const char *path, const char *sha, uint64_t total)
{
    Drover__Message req = DROVER__MESSAGE__INIT, *rep = NULL;
    Drover__SlugPutReq body = DROVER__SLUG_PUT_REQ__INIT;
    uint8_t *chunk = malloc(WIRE_SLUG_CHUNK);
    uint64_t off = 0;
    int fd = -1, rc = 0;
    bool complete = false;

    if (chunk == NULL)
        return cli_fail("out of memory"), -ENOMEM;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        cli_fail("%s: %s", path, strerror(-rc));
        goto out;
    }
    req.body_case = DROVER__MESSAGE__BODY_SLUG_PUT_REQ;
    req.slug_put_req = &body;
    body.sha256 = (char *)sha;
    body.total = total;
    while (!complete && off < total) {
        size_t want = total - off < WIRE_SLUG_CHUNK ? (size_t)(total - off) : WIRE_SLUG_CHUNK;
        ssize_t n = pread(fd, chunk, want, (off_t)off);

        if (n <= 0) {
            rc = n < 0 ? -errno : -EIO;
            cli_fail("%s: %s", path, n < 0 ? strerror(errno) : "file shrank while uploading");
            goto out;
        }
        body.offset = off;
        body.data.data = chunk;
        body.data.len = (size_t)n;
        rc = cli_call(c, &req, DROVER__MESSAGE__BODY_SLUG_PUT_REP, &rep);
        if (rc < 0)
            goto out;
        off += (uint64_t)n;
        complete = rep->slug_put_rep->complete;
        if (!complete && rep->slug_put_rep->received != off) {
            cli_fail("slug upload out of step: the controller has %llu bytes, %llu were sent",
                     (unsigned long long)rep->slug_put_rep->received, (unsigned long long)off);
            rc = -EPROTO;
            goto out;
        }
        wire_msg_free(rep);
        rep = NULL;
    }
    if (!complete) {
        cli_fail("the controller did not accept the slug after all %llu bytes",
                 (unsigned long long)total);
        rc = -EPROTO;
    }
out:
    if (rep != NULL)
        wire_msg_free(rep);
    if (fd >= 0)
        close(fd);
    free(chunk);
    return rc;
}

static void
print_released(Drover__ReleaseInfo *rel, const struct procfile *pf)
{
    printf("Released v%u (types: ", rel->version);
    if (rel->n_types > 0)
        for (size_t i = 0; i < rel->n_types; i++)
            printf("%s%s", i > 0 ? ", " : "", cli_str(rel->types[i]->name));
    else
        for (size_t i = 0; i < pf->n; i++)
            printf("%s%s", i > 0 ? ", " : "", pf->entries[i].type);
    printf(")\n");
    fflush(stdout);
}

struct deploy_opts {
    const char *app;
    const char *dir;
    const char *message;
    bool no_wait;
    bool create; /* --create: make the app when it does not exist */
    uint32_t timeout_s;
};

static int
deploy(const struct deploy_opts *o)
{
    Drover__Message req = DROVER__MESSAGE__INIT, *rep = NULL;
    Drover__ReleaseCreateReq body = DROVER__RELEASE_CREATE_REQ__INIT;
    struct procfile pf = {0};
    struct cli_client *c = NULL;
    struct cli_leftout *lo = NULL;
    Drover__AppInfo *app;
    char err[256], sha[65], desc[64];
    uint64_t size;
    int rc, found;

    if (check_procfile(o->dir, &pf) < 0)
        return CLI_FAIL;
    rc = CLI_FAIL;
    if (slug_check_links(o->dir, err, sizeof(err)) < 0) {
        cli_fail("%s: %s", o->dir, err);
        goto out;
    }
    if ((rc = cli_connect(&c)) != CLI_OK)
        goto out;
    /* An unknown app fails now, not after the upload, or is made. */
    found = cli_app_find(c, o->app, &rep, &app);
    rc = CLI_FAIL;
    if (found == -ENOENT && o->create) {
        if (cli_app_create(c, o->app) < 0)
            goto out;
        printf("Created %s\n", o->app);
    } else if (found == -ENOENT) {
        cli_fail("no app %s: run drover apps:create %s first (or deploy with --create)", o->app,
                 o->app);
        goto out;
    } else if (found < 0) {
        goto out;
    }
    wire_msg_free(rep);
    rep = NULL;
    trap_signals(on_signal);
    if (make_tmp_slug() < 0)
        goto out;
    if ((lo = cli_leftout_new(o->dir, err, sizeof(err))) == NULL) {
        cli_fail("%s", err);
        goto out;
    }
    if (slug_pack_dir_filtered(o->dir, tmp_slug, cli_leftout_filter, lo, err, sizeof(err)) < 0) {
        cli_fail("cannot pack %s: %s", o->dir, err);
        goto out;
    }
    cli_leftout_report(lo, stdout);
    if (slug_sha256_file(tmp_slug, sha, &size) < 0) {
        cli_fail("cannot hash the slug %s", tmp_slug);
        goto out;
    }
    if (size > SLUG_MAX_SIZE) {
        cli_fail("the slug is %llu MiB, more than the %llu MiB allowed",
                 (unsigned long long)(size >> 20), (unsigned long long)(SLUG_MAX_SIZE >> 20));
        goto out;
    }
    printf("Uploading %s (%llu KiB, sha256 %.12s)\n", o->dir,
           (unsigned long long)((size + 1023) / 1024), sha);
    fflush(stdout);
    if (upload(c, tmp_slug, sha, size) < 0)
        goto out;
    snprintf(desc, sizeof(desc), "Deploy %.12s", sha);
    body.app = (char *)o->app;
    body.slug_sha256 = sha;
    body.description = (char *)(o->message != NULL ? o->message : desc);
    req.body_case = DROVER__MESSAGE__BODY_RELEASE_CREATE_REQ;
    req.release_create_req = &body;
    if (cli_call(c, &req, DROVER__MESSAGE__BODY_RELEASE_REP, &rep) < 0)
        goto out;
    if (rep->release_rep->release == NULL) {
        cli_fail("unexpected reply from the controller: a release reply without a release");
        goto out;
    }
    print_released(rep->release_rep->release, &pf);
    if (o->no_wait ||
        cli_rollout_wait(c, o->app, rep->release_rep->release->version, o->timeout_s) == 0)
        rc = CLI_OK;
out:
    cli_leftout_free(lo);
    if (tmp_slug[0] != '\0') {
        unlink(tmp_slug);
        tmp_slug[0] = '\0';
    }
    trap_signals(SIG_DFL);
    if (rep != NULL)
        wire_msg_free(rep);
    cli_client_free(c);
    procfile_fini(&pf);
    return rc;
}

int
cli_cmd_deploy(int argc, char **argv)
{
    struct deploy_opts o = {.timeout_s = CLI_DEPLOY_TIMEOUT_DEFAULT};
    const char *timeout = NULL;
    struct cli_flag flags[] = {
        {"message", 'm', true, NULL, &o.message},
        {"no-wait", 0, false, &o.no_wait, NULL},
        {"create", 0, false, &o.create, NULL},
        {"timeout", 0, true, NULL, &timeout},
    };
    char err[256], *pos[2];
    int npos, rc;

    if (cli_args_parse(argc, argv, flags, ARRAY_SIZE(flags), pos, 2, &npos, err, sizeof(err)) < 0)
        return cli_usage("deploy", "%s", err);
    if (npos < 2)
        return cli_usage("deploy", "%s", npos < 1 ? "missing APP" : "missing DIR");
    if ((rc = cli_app_arg("deploy", pos[0])) != CLI_OK)
        return rc;
    if (timeout != NULL && cli_parse_seconds(timeout, CLI_DEPLOY_TIMEOUT_MAX, &o.timeout_s) < 0)
        return cli_usage("deploy", "--timeout must be whole seconds from 1 to %d",
                         CLI_DEPLOY_TIMEOUT_MAX);
    if (o.message != NULL && (o.message[0] == '\0' || strlen(o.message) > 1024))
        return cli_usage("deploy", "-m TEXT must be 1 to 1024 bytes");
    o.app = pos[0];
    o.dir = pos[1];
    return deploy(&o);
}
