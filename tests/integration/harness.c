/* SPDX-License-Identifier: MIT */
/*
 * harness.c: see harness.h. Processes are started with fork+exec in their own
 * process group, their output to a log file; readiness is a line in that log
 * (event=ready), polled, never a fixed sleep.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

extern char **environ;

void
h_msleep(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

long
h_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

int
h_count(const char *hay, const char *needle)
{
    int n = 0;

    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* GET /metrics from 127.0.0.1:port; malloc'd response or NULL. */
static char *
metrics(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval tv = {.tv_sec = 3};
    const char req[] = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    ssize_t n;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || buf == NULL)
        goto fail;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1))
        goto fail;
    while (len + 1 < cap && (n = read(fd, buf + len, cap - len - 1)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    close(fd);
    return buf;
fail:
    if (fd >= 0)
        close(fd);
    free(buf);
    return NULL;
}

long
h_metric(int port, const char *name)
{
    char *text = metrics(port), key[128];
    const char *p;
    long v = -1;

    snprintf(key, sizeof key, "\n%s ", name);
    if (text != NULL && (p = strstr(text, key)) != NULL)
        v = strtol(p + strlen(key), NULL, 10);
    free(text);
    return v;
}

const char *
h_bin_dir(void)
{
    const char *d = getenv("DROVER_BIN_DIR");
    return d != NULL && d[0] != '\0' ? d : DROVER_BIN_DIR "/bin";
}

void
h_init(struct h_cluster *c, const char *test, int base_port)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->dir, sizeof(c->dir), "/tmp/drover-it-%s.XXXXXX", test);
    cr_assert_not_null(mkdtemp(c->dir), "mkdtemp: %s", strerror(errno));
    chmod(c->dir, 0755);
    c->base_port = base_port;
    snprintf(c->api, sizeof(c->api), "tcp://127.0.0.1:%d", base_port);
    snprintf(c->join, sizeof(c->join), "tcp://127.0.0.1:%d", base_port + 1);
}

char **
h_env(const char *const *a, const char *const *b)
{
    static char *env[64];
    int n = 0;

    env[n++] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    env[n++] = "LANG=C.UTF-8";
    /* Sanitizer settings reach the daemons, so a leak at exit fails the test. */
    static char asan[512], ubsan[512];
    if (getenv("ASAN_OPTIONS") != NULL) {
        snprintf(asan, sizeof(asan), "ASAN_OPTIONS=%s", getenv("ASAN_OPTIONS"));
        env[n++] = asan;
    }
    static char lsan[512];
    if (getenv("LSAN_OPTIONS") != NULL) {
        snprintf(lsan, sizeof(lsan), "LSAN_OPTIONS=%s", getenv("LSAN_OPTIONS"));
        env[n++] = lsan;
    }
    if (getenv("UBSAN_OPTIONS") != NULL) {
        snprintf(ubsan, sizeof(ubsan), "UBSAN_OPTIONS=%s", getenv("UBSAN_OPTIONS"));
        env[n++] = ubsan;
    }
    for (; a != NULL && *a != NULL && n < 62; a++)
        env[n++] = (char *)*a;
    for (; b != NULL && *b != NULL && n < 62; b++)
        env[n++] = (char *)*b;
    env[n] = NULL;
    return env;
}

int
h_enter_netns(const char *name)
{
    char path[128];
    int fd, rc;

    snprintf(path, sizeof(path), "/var/run/netns/%s", name);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return -errno;
    rc = setns(fd, CLONE_NEWNET) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

static int
start_argv(struct h_cluster *c, const char *name, const char *path, char *const *argv, char **env,
           const char *netns)
{
    struct h_proc *p;
    pid_t pid;
    int fd;

    cr_assert_lt(c->nprocs, H_MAX_PROCS);
    p = &c->procs[c->nprocs];
    snprintf(p->name, sizeof(p->name), "%s", name);
    char log[sizeof(p->log)];
    snprintf(log, sizeof(log), "%s/%s.log", c->dir, name); /* c->dir and p->log share c */
    memcpy(p->log, log, sizeof(log));
    fd = open(p->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    cr_assert_geq(fd, 0);
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        setpgid(0, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        if (netns != NULL && h_enter_netns(netns) < 0) {
            dprintf(2, "setns %s: %s\n", netns, strerror(errno));
            _exit(127);
        }
        execve(path, argv, env);
        dprintf(2, "exec %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid);
    close(fd);
    p->pid = pid;
    return c->nprocs++;
}

static int
start(struct h_cluster *c, const char *name, const char *prog, char **env, const char *netns)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/%s", h_bin_dir(), prog);
    return start_argv(c, name, path, (char *[]){(char *)prog, NULL}, env, netns);
}

int
h_start_cmd(struct h_cluster *c, const char *name, const char *const *argv, const char *const *env)
{
    return start_argv(c, name, argv[0], (char *const *)argv, h_env(env, NULL), NULL);
}

int
h_start_controller(struct h_cluster *c, const char *const *extra_env)
{
    char data[320], api[96], agents[96];
    snprintf(data, sizeof(data), "DROVER_DATA_DIR=%s/controller", c->dir);
    snprintf(api, sizeof(api), "DROVER_API_LISTEN=%s", c->api);
    snprintf(agents, sizeof(agents), "DROVER_AGENT_LISTEN=%s", c->join);
    /* No HTTP server unless a test asks (extra_env wins): its default port,
     * 7480, is another test's controller port. */
    const char *base[] = {data,
                          api,
                          agents,
                          "DROVER_CLUSTER_KEY=" H_CLUSTER_KEY,
                          "DROVER_API_TOKEN=" H_API_TOKEN,
                          "DROVER_HTTP_LISTEN=",
                          NULL};
    return start(c, "controller", "drover-controller", h_env(extra_env, base), NULL);
}

int
h_start_controller_as(struct h_cluster *c, const char *name, const char *const *extra_env)
{
    char data[320], api[96], agents[96];
    const char *env[64];
    size_t n = 0;
    int idx;

    snprintf(data, sizeof(data), "DROVER_DATA_DIR=%s/controller", c->dir);
    snprintf(api, sizeof(api), "DROVER_API_LISTEN=%s", c->api);
    snprintf(agents, sizeof(agents), "DROVER_AGENT_LISTEN=%s", c->join);
    for (; extra_env != NULL && extra_env[n] != NULL && n < 60; n++)
        env[n] = extra_env[n]; /* first: they override the defaults below */
    env[n++] = data;
    env[n++] = api;
    env[n++] = agents;
    env[n] = NULL;
    idx = h_start(c, name, "drover-controller", env, NULL);
    cr_assert(h_wait_log(c, idx, "event=ready", 10000), "%s not ready", name);
    return idx;
}

void
h_start_cluster(struct h_cluster *c, const char *test, int base, int nagents, int port0, int width,
                const char *const *ctl_env, const char *const *agent_env)
{
    char range[32], name[16];
    int idx;

    h_init(c, test, base);
    h_start_controller_as(c, "controller", ctl_env);
    for (int i = 0; i < nagents; i++) {
        snprintf(name, sizeof(name), "n%d", i + 1);
        snprintf(range, sizeof(range), "%d-%d", port0 + width * i, port0 + width * i + width - 1);
        idx = h_start_agent(c, name, range, agent_env);
        cr_assert(h_wait_log(c, idx, "event=ready", 10000), "agent %s not ready", name);
    }
}

const char *
h_app_dir(struct h_cluster *c, const char *name, const char *procfile)
{
    static char dirs[4][400];
    static int next;
    char *dir = dirs[next++ % 4], path[512];
    FILE *f;

    snprintf(dir, sizeof(dirs[0]), "%s/%s", c->dir, name);
    mkdir(dir, 0755);
    snprintf(path, sizeof(path), "%s/Procfile", dir);
    f = fopen(path, "w");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    fputs(procfile, f);
    fclose(f);
    return dir;
}

bool
h_wait_logs(struct h_cluster *c, const char *app, const char *needle, int timeout_ms, char **out)
{
    for (long deadline = h_mono_ms() + timeout_ms;;) {
        char *text = NULL;
        bool found;

        cr_assert_eq(h_cli(c, &text, NULL, (const char *const[]){"logs", app, "-n", "2000", NULL}),
                     0);
        found = strstr(text, needle) != NULL;
        if (found || h_mono_ms() >= deadline) {
            if (out != NULL)
                *out = text;
            else
                free(text);
            return found;
        }
        free(text);
        h_msleep(200);
    }
}

void
h_cli_ok(struct h_cluster *c, const char *const *args)
{
    char *out = NULL, *err = NULL;
    int rc = h_cli(c, &out, &err, args);

    cr_assert_eq(rc, 0, "drover %s %s: exit %d\n%s%s", args[0], args[1] ? args[1] : "", rc, out,
                 err);
    free(out);
    free(err);
}

void
h_shared_dir(char *dir, size_t dirsz, const char *test)
{
    snprintf(dir, dirsz, "/var/tmp/drover-it-%s.XXXXXX", test);
    cr_assert_not_null(mkdtemp(dir), "mkdtemp %s: %s", dir, strerror(errno));
    cr_assert_eq(chmod(dir, 01777), 0, "chmod %s: %s", dir, strerror(errno));
}

void
h_rm_rf(char *dir)
{
    char cmd[512];

    if (dir[0] == '\0')
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    dir[0] = '\0';
}

/* Any program, in netns when given; the test key and token come after env,
 * so env may override them. */
int
h_start(struct h_cluster *c, const char *name, const char *prog, const char *const *env,
        const char *netns)
{
    static const char *const secrets[] = {
        "DROVER_CLUSTER_KEY=" H_CLUSTER_KEY, "DROVER_API_TOKEN=" H_API_TOKEN,
        "DROVER_HTTP_LISTEN=", "DROVER_METRICS_LISTEN=", NULL}; /* see h_start_controller */
    return start(c, name, prog, h_env(env, secrets), netns);
}

int
h_start_agent(struct h_cluster *c, const char *node, const char *port_range,
              const char *const *extra_env)
{
    char data[320], name[96], join[96], range[64];
    snprintf(data, sizeof(data), "DROVER_DATA_DIR=%s/agent-%s", c->dir, node);
    snprintf(name, sizeof(name), "DROVER_NODE_NAME=%s", node);
    snprintf(join, sizeof(join), "DROVER_JOIN=%s", c->join);
    snprintf(range, sizeof(range), "DROVER_PORT_RANGE=%s", port_range);
    const char *base[] = {
        data, name, join, range, "DROVER_CLUSTER_KEY=" H_CLUSTER_KEY, "DROVER_METRICS_LISTEN=",
        NULL}; /* 7481: see h_start_controller */
    return start(c, node, "drover-agent", h_env(extra_env, base), NULL);
}

static char *
slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t len = 0;

    if (f == NULL)
        return NULL;
    FILE *m = open_memstream(&buf, &len);
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        fwrite(chunk, 1, n, m);
    fclose(f);
    fclose(m);
    return buf;
}

long
h_log_after(struct h_cluster *c, int idx, const char *needle, long from)
{
    char *text = slurp(c->procs[idx].log);
    const char *p = NULL;
    long at;

    if (text != NULL && from >= 0 && (size_t)from <= strlen(text))
        p = strstr(text + from, needle);
    at = p != NULL ? (long)(p - text) : -1;
    free(text);
    return at;
}

long
h_log_at(struct h_cluster *c, int idx, const char *needle)
{
    return h_log_after(c, idx, needle, 0);
}

long
h_log_size(struct h_cluster *c, int idx)
{
    struct stat st;

    return stat(c->procs[idx].log, &st) == 0 ? (long)st.st_size : 0;
}

bool
h_log_has(struct h_cluster *c, int idx, const char *needle)
{
    return h_log_at(c, idx, needle) >= 0;
}

bool
h_wait_log(struct h_cluster *c, int idx, const char *needle, int timeout_ms)
{
    long deadline = h_mono_ms() + timeout_ms;
    do {
        if (h_log_has(c, idx, needle))
            return true;
        h_msleep(20);
    } while (h_mono_ms() < deadline);
    return false;
}

static char *
read_all_fd(int fd)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    char chunk[8192];
    ssize_t n;
    while ((n = read(fd, chunk, sizeof(chunk))) > 0)
        fwrite(chunk, 1, (size_t)n, m);
    fclose(m);
    return buf;
}

int
h_cli(struct h_cluster *c, char **out, char **err, const char *const *args)
{
    return h_cli_env(c, out, err, NULL, args);
}

int
h_cli_env(struct h_cluster *c, char **out, char **err, const char *const *extra,
          const char *const *args)
{
    char path[512], ctl[96];
    const char *argv[32];
    int o[2], e[2], status, n = 0;
    pid_t pid;
    char *obuf, *ebuf;

    snprintf(path, sizeof(path), "%s/drover", h_bin_dir());
    snprintf(ctl, sizeof(ctl), "DROVER_CONTROLLER=%s", c->api);
    const char *env[] = {ctl, "DROVER_TIMEOUT_MS=5000", "DROVER_API_TOKEN=" H_API_TOKEN, NULL};
    argv[n++] = "drover";
    for (; *args != NULL && n < 31; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    cr_assert_eq(pipe(o), 0);
    cr_assert_eq(pipe(e), 0);
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(o[1], 1);
        dup2(e[1], 2);
        close(o[0]);
        close(e[0]);
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        if (c->netns[0] != '\0' && h_enter_netns(c->netns) < 0)
            _exit(127);
        execve(path, (char **)argv, h_env(extra, env));
        _exit(127);
    }
    close(o[1]);
    close(e[1]);
    /* Output is small; read stdout then stderr (the CLI writes little to
     * stderr, so it cannot fill the pipe and stall). */
    obuf = read_all_fd(o[0]);
    ebuf = read_all_fd(e[0]);
    close(o[0]);
    close(e[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (out != NULL)
        *out = obuf;
    else
        free(obuf);
    if (err != NULL)
        *err = ebuf;
    else
        free(ebuf);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int
h_stop(struct h_cluster *c, int idx, int timeout_ms)
{
    struct h_proc *p = &c->procs[idx];
    long deadline = h_mono_ms() + timeout_ms;
    int status;

    if (p->pid <= 0)
        return -1;
    kill(p->pid, SIGTERM);
    while (h_mono_ms() < deadline) {
        pid_t r = waitpid(p->pid, &status, WNOHANG);
        if (r == p->pid) {
            p->pid = 0;
            return status;
        }
        h_msleep(20);
    }
    kill(-p->pid, SIGKILL);
    waitpid(p->pid, &status, 0);
    p->pid = 0;
    return -1;
}

/* Kill the process group of every process whose cwd is under dir. */
static void
kill_by_cwd(const char *dir)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    size_t dlen = strlen(dir);

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        char link[64], target[1024];
        ssize_t n;
        pid_t pid = (pid_t)atoi(de->d_name);
        if (pid <= 1 || pid == getpid())
            continue;
        snprintf(link, sizeof(link), "/proc/%d/cwd", pid);
        if ((n = readlink(link, target, sizeof(target) - 1)) < 0)
            continue;
        target[n] = '\0';
        if (strncmp(target, dir, dlen) == 0) {
            pid_t pg = getpgid(pid);
            if (pg > 1)
                kill(-pg, SIGKILL);
            kill(pid, SIGKILL);
        }
    }
    closedir(d);
}

/*
 * The cgroup subtrees the cluster's agents made (the paths of their
 * event=cgroups lines): kill what is left in each instance's cgroup, then
 * remove them, since agents killed with SIGKILL cannot.
 */
static void
remove_cgroups(struct h_cluster *c)
{
    static char paths[64][1024];
    int n = 0;

    for (int i = 0; i < c->nprocs; i++) {
        char line[4096];
        FILE *f = fopen(c->procs[i].log, "r");

        while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
            char *p = strstr(line, "event=cgroups "), *tok, *save;

            if (p == NULL)
                continue;
            line[strcspn(line, "\n")] = '\0';
            for (tok = strtok_r(p, " ", &save); tok != NULL && n < 64;
                 tok = strtok_r(NULL, " ", &save))
                if (strchr(tok, '=') != NULL && strchr(tok, '=')[1] == '/')
                    snprintf(paths[n++], sizeof(paths[0]), "%s", strchr(tok, '=') + 1);
        }
        if (f != NULL)
            fclose(f);
    }
    for (int tries = 0; tries < 40 && n > 0; tries++) {
        int left = 0;

        for (int k = 0; k < n; k++) {
            DIR *d = opendir(paths[k]);
            struct dirent *de;

            if (d == NULL)
                continue;
            while ((de = readdir(d)) != NULL) {
                char sub[1400];
                int fd;

                if (de->d_name[0] != 'i' || de->d_type != DT_DIR)
                    continue;
                snprintf(sub, sizeof(sub), "%.1000s/%.255s/cgroup.kill", paths[k], de->d_name);
                if ((fd = open(sub, O_WRONLY | O_CLOEXEC)) >= 0) {
                    (void)!write(fd, "1", 1);
                    close(fd);
                }
                snprintf(sub, sizeof(sub), "%.1000s/%.255s", paths[k], de->d_name);
                rmdir(sub);
            }
            closedir(d);
            if (rmdir(paths[k]) < 0 && errno != ENOENT)
                left++;
        }
        if (left == 0)
            break;
        h_msleep(50);
    }
}

void
h_cleanup(struct h_cluster *c)
{
    if (c->dir[0] == '\0')
        return;
    for (int i = 0; i < c->nprocs; i++) {
        if (c->procs[i].pid > 0) {
            kill(-c->procs[i].pid, SIGKILL);
            waitpid(c->procs[i].pid, NULL, 0);
            c->procs[i].pid = 0;
        }
    }
    kill_by_cwd(c->dir);
    remove_cgroups(c);
    if (getenv("DROVER_KEEP_TEST_DIR") == NULL) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", c->dir);
    }
    c->dir[0] = '\0';
}

char *
h_http_get(const char *host, int port, int timeout_ms)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct pollfd pfd;
    const char req[] = "GET / HTTP/1.0\r\nHost: test\r\n\r\n";
    char *buf = NULL, *body;
    size_t len = 0;
    int fd;

    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return NULL;
    if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return NULL;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) {
        close(fd);
        return NULL;
    }
    pfd.fd = fd;
    pfd.events = POLLIN;
    FILE *m = open_memstream(&buf, &len);
    char chunk[4096];
    ssize_t n;
    while (poll(&pfd, 1, timeout_ms) > 0 && (n = read(fd, chunk, sizeof(chunk))) > 0)
        fwrite(chunk, 1, (size_t)n, m);
    fclose(m);
    close(fd);
    if ((body = strstr(buf, "\r\n\r\n")) == NULL) {
        free(buf);
        return NULL;
    }
    body = strdup(body + 4);
    free(buf);
    return body;
}

char *
h_http_get_in(const char *netns, const char *host, int port, int timeout_ms)
{
    int fd[2], status;
    char *body, *out;
    pid_t pid;

    if (netns == NULL || netns[0] == '\0')
        return h_http_get(host, port, timeout_ms);
    if (pipe(fd) < 0)
        return NULL;
    pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return NULL;
    }
    if (pid == 0) {
        close(fd[0]);
        if (h_enter_netns(netns) < 0)
            _exit(1);
        body = h_http_get(host, port, timeout_ms);
        /* "+" then the body: an empty pipe means no answer. */
        if (body != NULL && write(fd[1], "+", 1) == 1)
            (void)!write(fd[1], body, strlen(body));
        _exit(0);
    }
    close(fd[1]);
    out = read_all_fd(fd[0]);
    close(fd[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (out == NULL || out[0] != '+') {
        free(out);
        return NULL;
    }
    body = strdup(out + 1);
    free(out);
    return body;
}

int
h_count_procs(const char *dir, const char *comm)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    size_t dlen = strlen(dir);
    int n = 0;

    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL) {
        char link[64], target[1024], path[64], name[64];
        pid_t pid = (pid_t)atoi(de->d_name);
        ssize_t len;
        FILE *f;

        if (pid <= 1)
            continue;
        snprintf(link, sizeof(link), "/proc/%d/cwd", pid);
        if ((len = readlink(link, target, sizeof(target) - 1)) < 0)
            continue;
        target[len] = '\0';
        if (strncmp(target, dir, dlen) != 0 || !h_pid_alive(pid))
            continue;
        snprintf(path, sizeof(path), "/proc/%d/comm", pid);
        if ((f = fopen(path, "r")) == NULL)
            continue;
        if (fgets(name, sizeof(name), f) != NULL) {
            name[strcspn(name, "\n")] = '\0';
            n += strcmp(name, comm) == 0;
        }
        fclose(f);
    }
    closedir(d);
    return n;
}

bool
h_pid_alive(pid_t pid)
{
    char path[64], buf[512];
    FILE *f;
    bool alive = false;

    if (pid <= 0)
        return false;
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    if ((f = fopen(path, "r")) == NULL)
        return false;
    if (fgets(buf, sizeof(buf), f) != NULL) {
        char *rp = strrchr(buf, ')');
        alive = rp != NULL && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
    }
    fclose(f);
    return alive;
}

/* ---- JSON ---- */

static const char *
skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
        p++;
    return p;
}

static const char *
parse_string(const char *p, char *out, size_t outsz)
{
    size_t o = 0;
    if (*p != '"')
        return NULL;
    p++;
    while (*p && *p != '"') {
        char ch = *p++;
        if (ch == '\\') {
            char esc = *p++;
            switch (esc) {
            case 'n':
                ch = '\n';
                break;
            case 't':
                ch = '\t';
                break;
            case 'r':
                ch = '\r';
                break;
            case 'b':
                ch = '\b';
                break;
            case 'f':
                ch = '\f';
                break;
            case 'u':
                ch = '?';
                p += 4;
                break;
            case '\0':
                return NULL;
            default:
                ch = esc;
            }
        }
        if (o + 1 < outsz)
            out[o++] = ch;
    }
    if (*p != '"')
        return NULL;
    out[o] = '\0';
    return p + 1;
}

static const char *
parse_scalar(const char *p, char *out, size_t outsz)
{
    size_t o = 0;
    if (*p == '"')
        return parse_string(p, out, outsz);
    if (*p == '{' || *p == '[') { /* nested: skip, keep as "{}" */
        int depth = 0;
        bool in_str = false;
        for (; *p; p++) {
            if (in_str) {
                if (*p == '\\' && p[1])
                    p++;
                else if (*p == '"')
                    in_str = false;
                continue;
            }
            if (*p == '"')
                in_str = true;
            else if (*p == '{' || *p == '[')
                depth++;
            else if ((*p == '}' || *p == ']') && --depth == 0) {
                snprintf(out, outsz, "{}");
                return p + 1;
            }
        }
        return NULL;
    }
    while (*p && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n') {
        if (o + 1 < outsz)
            out[o++] = *p;
        p++;
    }
    out[o] = '\0';
    return o > 0 ? p : NULL;
}

int
j_parse_array(const char *text, struct j_obj *objs, int max)
{
    const char *p = skip_ws(text);
    int n = 0;

    if (*p++ != '[')
        return -1;
    p = skip_ws(p);
    if (*p == ']')
        return 0;
    for (;;) {
        struct j_obj tmp;
        struct j_obj *o = n < max ? &objs[n] : &tmp;
        o->n = 0;
        p = skip_ws(p);
        if (*p++ != '{')
            return -1;
        p = skip_ws(p);
        while (*p != '}') {
            char key[32], val[256];
            if ((p = parse_string(p, key, sizeof(key))) == NULL)
                return -1;
            p = skip_ws(p);
            if (*p++ != ':')
                return -1;
            p = skip_ws(p);
            if ((p = parse_scalar(p, val, sizeof(val))) == NULL)
                return -1;
            if (o->n < J_MAX_KEYS) {
                snprintf(o->key[o->n], sizeof(o->key[0]), "%s", key);
                snprintf(o->val[o->n], sizeof(o->val[0]), "%s", val);
                o->n++;
            }
            p = skip_ws(p);
            if (*p == ',')
                p = skip_ws(p + 1);
            else if (*p != '}')
                return -1;
        }
        p = skip_ws(p + 1);
        n++;
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p == ']')
            break;
        return -1;
    }
    return n < max ? n : max;
}

const char *
j_get(const struct j_obj *o, const char *key)
{
    for (int i = 0; i < o->n; i++)
        if (strcmp(o->key[i], key) == 0)
            return o->val[i];
    return NULL;
}

/* ---- ps and nodes ---- */

void
h_get_ps(struct h_cluster *c, const char *app, struct h_ps *ps)
{
    char *out = NULL, *err = NULL;
    int rc = h_cli(c, &out, &err, (const char *const[]){"ps", app, "--json", NULL});

    cr_assert_eq(rc, 0, "ps failed: %s", err);
    ps->n = j_parse_array(out, ps->o, H_PS_MAX);
    cr_assert_geq(ps->n, 0, "ps --json is not a JSON array: %s", out);
    free(out);
    free(err);
}

static bool
matches(const struct j_obj *o, const char *key, const char *want)
{
    const char *v = j_get(o, key);

    return want == NULL || (v != NULL && strcmp(v, want) == 0);
}

int
h_ps_count(const struct h_ps *ps, const char *type, const char *state, const char *node)
{
    int n = 0;

    for (int i = 0; i < ps->n; i++)
        n += matches(&ps->o[i], "type", type) && matches(&ps->o[i], "state", state) &&
             matches(&ps->o[i], "node", node);
    return n;
}

const struct j_obj *
h_ps_find(const struct h_ps *ps, const char *name)
{
    for (int i = 0; i < ps->n; i++) {
        const char *st = j_get(&ps->o[i], "state");

        if (matches(&ps->o[i], "name", name) && st != NULL && strcmp(st, "draining") != 0 &&
            strcmp(st, "lost") != 0)
            return &ps->o[i];
    }
    return NULL;
}

int
h_get_nodes(struct h_cluster *c, struct j_obj *objs, int max)
{
    char *out = NULL, *err = NULL;
    int rc = h_cli(c, &out, &err, (const char *const[]){"nodes", "--json", NULL}), n;

    cr_assert_eq(rc, 0, "nodes failed: %s", err);
    n = j_parse_array(out, objs, max);
    cr_assert_geq(n, 0, "nodes --json is not a JSON array: %s", out);
    free(out);
    free(err);
    return n;
}

const char *
h_node_state(struct h_cluster *c, const char *name, char *buf, size_t bufsz)
{
    struct j_obj nodes[16];
    int n = h_get_nodes(c, nodes, 16);

    buf[0] = '\0';
    for (int i = 0; i < n; i++)
        if (matches(&nodes[i], "name", name))
            snprintf(buf, bufsz, "%s", j_get(&nodes[i], "state"));
    return buf;
}
