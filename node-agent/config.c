/* SPDX-License-Identifier: MIT */
/*
 * config.c: the agent's DROVER_* variables, read once at start through
 * common/env.h. Every error is collected and reported together; then the
 * agent exits 78 (EX_CONFIG) before it has touched anything.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agt.h"
#include "env.h"
#include "log.h"
#include "util.h"

/*
 * The user database is asked in a child process, forked at start while the
 * agent is small: glibc loads the NSS modules the machine configures
 * (libnss_systemd, which brings libcap and libm on Debian 12: about 0.6 MiB
 * resident) into whichever process asks, and never unloads them. The
 * child answers in one struct on a pipe.
 */
struct nss_answer {
    int ok;             /* 1: the child answered */
    int found;          /* user was found */
    uint32_t uid, gid;  /* its ids */
    uint32_t clash_uid; /* a user whose uid is in [lo, hi], if clash_user[0] */
    uint32_t clash_gid; /* a group whose gid is in [lo, hi], if clash_group[0] */
    char clash_user[64], clash_group[64];
};

static void
nss_child(const char *user, uint64_t lo, uint64_t hi, struct nss_answer *r)
{
    struct passwd *pw;
    struct group *gr;

    if (user && (pw = getpwnam(user)) != NULL) {
        r->found = 1;
        r->uid = (uint32_t)pw->pw_uid;
        r->gid = (uint32_t)pw->pw_gid;
    }
    if (hi == 0)
        return;
    setpwent();
    while ((pw = getpwent()) != NULL)
        if (pw->pw_uid >= lo && pw->pw_uid <= hi) {
            r->clash_uid = (uint32_t)pw->pw_uid;
            snprintf(r->clash_user, sizeof r->clash_user, "%s", pw->pw_name);
            break;
        }
    endpwent();
    setgrent();
    while ((gr = getgrent()) != NULL)
        if (gr->gr_gid >= lo && gr->gr_gid <= hi) {
            r->clash_gid = (uint32_t)gr->gr_gid;
            snprintf(r->clash_group, sizeof r->clash_group, "%s", gr->gr_name);
            break;
        }
    endgrent();
}

/* user (or NULL) by name, and the first user and group in [lo, hi] when
 * hi > 0. -errno when no child could answer. */
static int
nss_ask(const char *user, uint64_t lo, uint64_t hi, struct nss_answer *r)
{
    size_t got;
    pid_t pid;
    int p[2];

    memset(r, 0, sizeof *r);
    if (pipe2(p, O_CLOEXEC) < 0)
        return -errno;
    if ((pid = fork()) < 0) {
        close(p[0]);
        close(p[1]);
        return -errno;
    }
    if (pid == 0) {
        struct nss_answer a;

        memset(&a, 0, sizeof a);
        close(p[0]);
        nss_child(user, lo, hi, &a);
        a.ok = 1;
        _exit(write(p[1], &a, sizeof a) == (ssize_t)sizeof a ? 0 : 1);
    }
    close(p[1]);
    got = read_full(p[0], r, sizeof *r);
    close(p[0]);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    if (got != sizeof *r || !r->ok)
        return -EIO;
    r->clash_user[sizeof r->clash_user - 1] = r->clash_group[sizeof r->clash_group - 1] = '\0';
    return 0;
}

/*
 * Least privilege: an agent running as root starts app processes as
 * DROVER_RUN_AS (default nobody). The user is looked up once, here, at start
 * (getpwnam may block on NSS: never on the loop). Not root: processes run as
 * the agent's own user and DROVER_RUN_AS is only checked for form.
 */
static void
load_run_as(struct env_errs *e, struct agt_config *cfg)
{
    struct nss_answer pw;
    int rc;

    if (env_str(e, "DROVER_RUN_AS", "nobody", cfg->run_as, sizeof cfg->run_as) < 0)
        return;
    if (geteuid() != 0)
        return;
    /* Root without an explicit DROVER_RUN_AS: a user per app (uids.c). */
    cfg->per_app = env_raw("DROVER_RUN_AS") == NULL;
    if ((rc = nss_ask(cfg->run_as, 0, 0, &pw)) < 0) {
        env_err(e, "DROVER_RUN_AS: cannot look up '%s': %s", cfg->run_as, strerror(-rc));
        return;
    }
    if (!pw.found) {
        env_err(e, "DROVER_RUN_AS: no user '%s' on this machine", cfg->run_as);
        return;
    }
    if (pw.uid == 0) {
        env_err(e, "DROVER_RUN_AS: '%s' is root; app processes must not run as root", cfg->run_as);
        return;
    }
    cfg->drop = true;
    cfg->run_uid = pw.uid;
    cfg->run_gid = pw.gid;
}

/* Can (uid, gid) search directory st? Root's view does not count. */
static bool
searchable(const struct stat *st, uint32_t uid, uint32_t gid)
{
    if (st->st_uid == uid)
        return st->st_mode & S_IXUSR;
    if (st->st_gid == gid)
        return st->st_mode & S_IXGRP;
    return st->st_mode & S_IXOTH;
}

void
agt_config_check_dirs(const struct agt_config *cfg)
{
    char path[PATH_MAX];
    struct stat st;
    size_t n;

    if (!cfg->drop)
        return;
    if (strfmt(path, sizeof path, "%s/releases", cfg->data_dir) < 0)
        return;
    /* Every ancestor, from the full path up to "/". */
    for (n = strlen(path); n > 0;) {
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode) &&
            !searchable(&st, cfg->run_uid, cfg->run_gid))
            log_fatal(ENV_EX_CONFIG, "exit", "code=%d reason=%s path=%s mode=%04o run_as=%s",
                      ENV_EX_CONFIG,
                      log_q("DROVER_DATA_DIR: app processes (DROVER_RUN_AS) cannot reach their "
                            "releases through this directory; make it searchable (chmod o+x) or "
                            "choose another data dir"),
                      log_q(path), (unsigned)(st.st_mode & 07777), log_q(cfg->run_as));
        while (n > 1 && path[n - 1] != '/')
            n--;
        if (n <= 1)
            break;
        path[--n] = '\0';
    }
}

/*
 * DROVER_UID_RANGE: the uids (and gids, the same numbers) drover hands to
 * apps; by default systemd's range for dynamic users. No account or group
 * of this machine may have one of them: an app would share its files.
 */
static void
load_uid_range(struct env_errs *e, struct agt_config *cfg)
{
    const char *raw = env_raw("DROVER_UID_RANGE");
    char lo[32] = "", hi[32] = "";
    uint64_t a = 61184, b = 65519;
    struct nss_answer r;
    int rc;

    if (raw && (sscanf(raw, "%31[0-9]-%31[0-9]", lo, hi) != 2 ||
                env_parse_u64(lo, 1000, 4294967294u, &a) < 0 ||
                env_parse_u64(hi, 1000, 4294967294u, &b) < 0 || b < a || b - a > 10000000)) {
        env_err(e, "DROVER_UID_RANGE: '%s' is not LOW-HIGH with 1000 <= LOW <= HIGH", raw);
        return;
    }
    cfg->uid_min = (uint32_t)a;
    cfg->uid_max = (uint32_t)b;
    if (!cfg->per_app)
        return;
    if ((rc = nss_ask(NULL, a, b, &r)) < 0) {
        env_err(e, "DROVER_UID_RANGE: cannot read the user database: %s", strerror(-rc));
        return;
    }
    if (r.clash_user[0])
        env_err(e, "DROVER_UID_RANGE: %" PRIu64 "-%" PRIu64 " holds uid %u of user '%s'", a, b,
                (unsigned)r.clash_uid, r.clash_user);
    if (r.clash_group[0])
        env_err(e, "DROVER_UID_RANGE: %" PRIu64 "-%" PRIu64 " holds gid %u of group '%s'", a, b,
                (unsigned)r.clash_gid, r.clash_group);
}

static void
load_node(struct env_errs *e, struct agt_config *cfg)
{
    char host[256] = "";

    if (gethostname(host, sizeof host - 1) < 0)
        strcpy(host, "localhost");
    if (env_str(e, "DROVER_NODE_NAME", host, cfg->node, sizeof cfg->node) < 0)
        return;
    if (!name_node_valid(cfg->node))
        env_err(e,
                "DROVER_NODE_NAME: '%s' is not a valid node name "
                "([A-Za-z0-9][A-Za-z0-9._-]{0,62}); set it explicitly",
                cfg->node);
}

static void
load_advertise(struct env_errs *e, struct agt_config *cfg)
{
    unsigned char buf[16];

    if (env_str(e, "DROVER_ADVERTISE", "127.0.0.1", cfg->advertise, sizeof cfg->advertise) < 0)
        return;
    /* Health checks connect here without a (blocking) name lookup. */
    if (uv_inet_pton(AF_INET, cfg->advertise, buf) < 0 &&
        uv_inet_pton(AF_INET6, cfg->advertise, buf) < 0)
        env_err(e, "DROVER_ADVERTISE: '%s' is not an IPv4 or IPv6 address", cfg->advertise);
}

void
agt_config_load(struct agt_config *cfg)
{
    struct env_errs e = {0};
    uint64_t v;

    memset(cfg, 0, sizeof *cfg);
    /* Every controller of the cluster; the first is tried first. The
     * notify and log endpoints follow whichever one leads (conn.c). */
    if (env_endpoints(&e, "DROVER_JOIN", "tcp://127.0.0.1:7401", cfg->joins, ENV_ENDPOINTS_MAX,
                      &cfg->njoin) == 0)
        snprintf(cfg->join, sizeof cfg->join, "%s", cfg->joins[0]);
    for (size_t i = 0; i < cfg->njoin; i++) {
        char ep[256];

        if (env_endpoint_offset(cfg->joins[i], 2, ep, sizeof ep) < 0)
            env_err(&e, "DROVER_JOIN: no notify and log endpoints at port + 1 and + 2 of '%s'",
                    cfg->joins[i]);
    }
    if (cfg->join[0] && env_endpoint_offset(cfg->join, 1, cfg->notify, sizeof cfg->notify) < 0)
        env_err(&e, "DROVER_JOIN: no notify endpoint at port + 1 of '%s'", cfg->join);
    if (cfg->join[0] && env_endpoint_offset(cfg->join, 2, cfg->logs, sizeof cfg->logs) < 0)
        env_err(&e, "DROVER_JOIN: no log endpoint at port + 2 of '%s'", cfg->join);
    env_str_or_off(&e, "DROVER_METRICS_LISTEN", "127.0.0.1:7481", cfg->metrics_listen,
                   sizeof cfg->metrics_listen);
    load_node(&e, cfg);
    load_advertise(&e, cfg);
    env_port_range(&e, "DROVER_PORT_RANGE", 5000, 5999, &cfg->port_min, &cfg->port_max);
    if (env_u64(&e, "DROVER_CAPACITY", 256, 1, 100000, &v) == 0)
        cfg->capacity = (uint32_t)v;
    env_str(&e, "DROVER_DATA_DIR", "/var/lib/drover-agent", cfg->data_dir, sizeof cfg->data_dir);
    if (cfg->data_dir[0] && cfg->data_dir[0] != '/')
        env_err(&e, "DROVER_DATA_DIR: '%s' must be an absolute path", cfg->data_dir);
    if (env_u64(&e, "DROVER_HEARTBEAT_MS", 1000, 50, 600000, &v) == 0)
        cfg->heartbeat_ms = (uint32_t)v;
    if (env_u64(&e, "DROVER_LEAVE_TIMEOUT_MS", 60000, 0, 3600000, &v) == 0)
        cfg->leave_timeout_ms = (uint32_t)v;
    if (env_u64(&e, "DROVER_ECHO_APP_LOGS", 0, 0, 1, &v) == 0)
        cfg->echo_app_logs = v == 1;
    env_key(&e, "DROVER_CLUSTER_KEY", cfg->cluster_key);
    cfg->has_key_next = env_raw("DROVER_CLUSTER_KEY_NEXT") != NULL;
    if (cfg->has_key_next)
        env_key(&e, "DROVER_CLUSTER_KEY_NEXT", cfg->cluster_key_next);
    load_run_as(&e, cfg);
    load_uid_range(&e, cfg);
    env_str(&e, "DROVER_CGROUP_ROOT", "", cfg->cgroup_root, sizeof cfg->cgroup_root);
    {
        char mode[16];

        if (env_str(&e, "DROVER_CGROUPS", "auto", mode, sizeof mode) == 0) {
            if (strcmp(mode, "off") == 0)
                cfg->cgroups_off = true;
            else if (strcmp(mode, "auto") != 0)
                env_err(&e, "DROVER_CGROUPS: want auto or off, not '%s'", mode);
        }
    }
    if (cfg->cgroup_root[0] && cfg->cgroup_root[0] != '/')
        env_err(&e, "DROVER_CGROUP_ROOT: '%s' must be an absolute path", cfg->cgroup_root);
    env_check(&e);
}
