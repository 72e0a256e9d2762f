/* SPDX-License-Identifier: MIT */
/*
 * Security end to end, with the real binaries: keys and tokens required and
 * checked, hostile envelopes on every endpoint, hostile slugs, and app
 * processes with least privilege. Each controller binds four ports (API,
 * agents, notify, logs): 7490-7493, 7494-7497 and 7510-7513; 7499 is never
 * bound (the unreachable controller). App ports 8400-8699.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "ask.h"
#include "harness.h"
#include "slug.h"
#include "util.h"
#include "wire.h"

static struct h_cluster C;
static struct wire_sender api_sender, cluster_sender;

static void
fini(void)
{
    h_cleanup(&C);
    unlink("/etc/drover-it-escape");
}

/* This process seals and opens like the CLI (API key) and like an agent
 * (cluster key) would. */
static void
keys_init(void)
{
    uint8_t ck[WIRE_KEY_BYTES], ak[WIRE_KEY_BYTES];

    cr_assert_eq(wire_key_parse_hex(H_CLUSTER_KEY, ck), 0);
    wire_key_from_token(H_API_TOKEN, ak);
    cr_assert_geq(wire_keyring_add("cluster", ck), 0);
    cr_assert_geq(wire_keyring_add("api", ak), 0);
    wire_sender_init(&api_sender, "it-cli");
    wire_sender_set_key(&api_sender, ak);
    wire_sender_init(&cluster_sender, "it-agent");
    wire_sender_set_key(&cluster_sender, ck);
}

TestSuite(security, .init = keys_init, .fini = fini, .timeout = 180);

#define CLI(out, err, ...) h_cli(&C, out, err, (const char *const[]){__VA_ARGS__, NULL})
#define CLI_ENV(env, out, err, ...)                                                                \
    h_cli_env(&C, out, err, (const char *const[]){env, NULL},                                      \
              (const char *const[]){__VA_ARGS__, NULL})

/* Wait for a proc to exit on its own; its exit code, or -1 on timeout. */
static int
wait_exit(int idx, int timeout_ms)
{
    int status;

    for (int waited = 0; waited < timeout_ms; waited += 20) {
        if (waitpid(C.procs[idx].pid, &status, WNOHANG) == C.procs[idx].pid) {
            C.procs[idx].pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        h_msleep(20);
    }
    return -1;
}

/* The reply must be an unsealed refusal whose text holds want. */
static void
expect_refusal(const char *endpoint, const void *buf, size_t len, const char *want,
               const char *what)
{
    uint8_t *reply;
    Drover__ErrorCode code;
    char text[256];
    int n = h_round_trip(endpoint, buf, len, 5000, &reply);

    cr_assert_geq(n, 0, "%s: no answer to %s", endpoint, what);
    cr_assert_eq(wire_refusal_open(reply, (size_t)n, &code, text, sizeof(text)), 0,
                 "%s: %s was not refused", endpoint, what);
    cr_assert(strstr(text, want) != NULL, "%s: %s: refusal '%s' lacks '%s'", endpoint, what, text,
              want);
    free(reply);
}

/* The reply must open (sealed, this process's keys) and be of kind want. */
static Drover__Message *
expect_sealed(const char *endpoint, const void *buf, size_t len, Drover__Message__BodyCase want,
              const char *what)
{
    uint8_t *reply;
    struct wire_header h;
    Drover__Message *m = NULL;
    int n = h_round_trip(endpoint, buf, len, 5000, &reply);

    cr_assert_geq(n, 0, "%s: no answer to %s", endpoint, what);
    int rc = wire_open(reply, (size_t)n, &h, &m);
    cr_assert_eq(rc, 0, "%s: the answer to %s does not open: %s", endpoint, what,
                 wire_strerror(rc));
    cr_assert_eq(m->body_case, want, "%s: %s answered with type %d", endpoint, what,
                 (int)m->body_case);
    free(reply);
    return m;
}

static void
seal(struct wire_sender *s, Drover__Message *m, uint8_t **buf, size_t *len)
{
    cr_assert_eq(wire_seal(s, m, buf, len), 0);
}

static bool
nodes_has(const char *name)
{
    char *out = NULL;
    struct j_obj o[16];
    bool found = false;

    cr_assert_eq(CLI(&out, NULL, "nodes", "--json"), 0);
    int n = j_parse_array(out, o, 16);
    for (int i = 0; i < n; i++)
        found |= strcmp(j_get(&o[i], "name"), name) == 0;
    free(out);
    return found;
}

Test(security, keys_and_tokens_are_required_and_checked)
{
    char *out = NULL, *err = NULL;
    int idx;

    h_init(&C, "keys", 7490);

    /* Daemons refuse to start without well-formed secrets: exit 78, why. */
    idx = h_start_controller(
        &C, (const char *const[]){"DROVER_API_TOKEN=", "DROVER_CLUSTER_KEY=abc", NULL});
    cr_assert_eq(wait_exit(idx, 10000), 78);
    cr_assert(h_log_has(&C, idx, "DROVER_API_TOKEN is not set"));
    cr_assert(h_log_has(&C, idx, "DROVER_CLUSTER_KEY is malformed"));
    idx =
        h_start_agent(&C, "nokey", "8400-8409", (const char *const[]){"DROVER_CLUSTER_KEY=", NULL});
    cr_assert_eq(wait_exit(idx, 10000), 78);
    cr_assert(h_log_has(&C, idx, "DROVER_CLUSTER_KEY is not set"));

    idx = h_start_controller(&C, NULL);
    cr_assert(h_wait_log(&C, idx, "event=ready", 10000), "controller not ready");
    int good = h_start_agent(&C, "good", "8410-8419", NULL);
    cr_assert(h_wait_log(&C, good, "event=ready", 10000), "agent not ready");

    /* An agent with another key is refused, logged, and never listed. */
    int evil = h_start_agent(
        &C, "evil", "8420-8429",
        (const char *const[]){
            "DROVER_CLUSTER_KEY=0000000000000000000000000000000000000000000000000000000000000bad",
            NULL});
    cr_assert(h_wait_log(&C, evil, "event=refused_by_controller", 10000),
              "the agent with a wrong key was not told");
    cr_assert(h_log_has(&C, evil, "cluster key was refused"));
    cr_assert(h_wait_log(&C, 2, "sender=evil", 5000), "the refusal was not logged with the sender");
    cr_assert(h_log_has(&C, 2, "event=refused sock=agent reason=\"sealed with an unknown key\""));
    /* And where it came from (common/sprep.c knows the connection). */
    cr_assert(h_log_has(&C, 2, "sender=evil key_id="));
    cr_assert(h_log_has(&C, 2, "peer=127.0.0.1:"), "the refusal does not name the peer's address");
    cr_assert_not(h_log_has(&C, evil, "event=ready"));
    cr_assert(nodes_has("good"));
    cr_assert_not(nodes_has("evil"), "an agent with a wrong key is listed");

    /* The CLI: no token, a wrong token, an unreachable controller. */
    cr_assert_eq(CLI_ENV("DROVER_API_TOKEN=", &out, &err, "apps"), 1);
    cr_assert(strstr(err, "requires an API token") != NULL, "%s", err);
    cr_assert_eq(out[0], '\0', "output without a token: %s", out);
    free(out);
    free(err);
    cr_assert_eq(CLI_ENV("DROVER_API_TOKEN=not-the-token-at-all", &out, &err, "apps:create", "x"),
                 1);
    cr_assert(strstr(err, "refused the API token") != NULL, "%s", err);
    free(out);
    free(err);
    cr_assert_eq(CLI_ENV("DROVER_API_TOKEN=short", NULL, &err, "apps"), 2);
    cr_assert(strstr(err, "DROVER_API_TOKEN") != NULL, "%s", err);
    free(err);
    cr_assert_eq(h_cli_env(&C, NULL, &err,
                           (const char *const[]){"DROVER_CONTROLLER=tcp://127.0.0.1:7499",
                                                 "DROVER_TIMEOUT_MS=300", NULL},
                           (const char *const[]){"apps", NULL}),
                 1);
    cr_assert(strstr(err, "cannot reach the controller") != NULL, "%s", err);
    free(err);
    cr_assert(h_log_has(&C, 2, "event=refused sock=api reason=\"not sealed\""));
    cr_assert(h_log_has(&C, 2, "event=refused sock=api reason=\"sealed with an unknown key\""));
    /* Nothing the refused requests asked for happened; the right token works. */
    cr_assert_eq(CLI(&out, NULL, "apps", "--json"), 0);
    cr_assert(strstr(out, "\"x\"") == NULL, "a refused apps:create made an app: %s", out);
    free(out);
}

/* Does process p ignore signal sig (its SigIgn mask)? */
static bool
sig_ignored(pid_t p, int sig)
{
    char path[64], line[256];
    unsigned long long mask = 0;
    bool found = false;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)p);
    cr_assert_not_null(f = fopen(path, "r"), "%s: %s", path, strerror(errno));
    while (!found && fgets(line, sizeof(line), f) != NULL)
        found = sscanf(line, "SigIgn: %llx", &mask) == 1;
    fclose(f);
    cr_assert(found, "no SigIgn in %s", path);
    return (mask >> (sig - 1)) & 1;
}

Test(security, hostile_envelopes_leave_the_daemons_serving)
{
    Drover__Message m = DROVER__MESSAGE__INIT, *rep;
    Drover__NodesReq nodes = DROVER__NODES_REQ__INIT;
    Drover__SlugReq slug = DROVER__SLUG_REQ__INIT;
    uint8_t *buf, *reply;
    size_t len;

    h_init(&C, "hostile", 7494);
    int ctl = h_start_controller(&C, NULL);
    cr_assert(h_wait_log(&C, ctl, "event=ready", 10000), "controller not ready");
    /* A peer that resets while it is being answered costs an EPIPE, never
     * the controller (SIGPIPE's default kills). */
    cr_assert(sig_ignored(C.procs[ctl].pid, SIGPIPE), "the controller does not ignore SIGPIPE");
    int agent = h_start_agent(&C, "n1", "8430-8439", NULL);
    cr_assert(h_wait_log(&C, agent, "event=ready", 10000), "agent not ready");

    /* One harmless request per endpoint, sealed with its key. */
    struct {
        const char *endpoint;
        struct wire_sender *right, *wrong;
        Drover__Message__BodyCase rep;
    } ep[2] = {{C.api, &api_sender, &cluster_sender, DROVER__MESSAGE__BODY_NODES_REP},
               {C.join, &cluster_sender, &api_sender, DROVER__MESSAGE__BODY_ERROR}};
    for (int e = 0; e < 2; e++) {
        if (e == 0) {
            m.body_case = DROVER__MESSAGE__BODY_NODES_REQ;
            m.nodes_req = &nodes;
        } else {
            slug.sha256 = "0000000000000000000000000000000000000000000000000000000000000000";
            slug.length = 1024;
            m.body_case = DROVER__MESSAGE__BODY_SLUG_REQ;
            m.slug_req = &slug;
        }
        /* Sealed right: answered, sealed. Replayed: refused. */
        seal(ep[e].right, &m, &buf, &len);
        rep = expect_sealed(ep[e].endpoint, buf, len, ep[e].rep, "a sealed request");
        wire_msg_free(rep);
        expect_refusal(ep[e].endpoint, buf, len, "replayed", "a replayed envelope");
        expect_refusal(ep[e].endpoint, buf, len, "replayed", "a replayed envelope, again");
        /* Truncated, forged (one bit of the ciphertext), random. */
        expect_refusal(ep[e].endpoint, buf, len / 2, "malformed", "a truncated envelope");
        expect_refusal(ep[e].endpoint, buf, 1, "malformed", "one byte");
        free(buf);
        seal(ep[e].right, &m, &buf, &len);
        buf[len - 3] ^= 0x10;
        expect_refusal(ep[e].endpoint, buf, len, e == 0 ? "token" : "cluster key",
                       "a forged envelope");
        free(buf);
        uint8_t junk[3000];
        srand(11 + e);
        for (size_t i = 0; i < sizeof(junk); i++)
            junk[i] = (uint8_t)rand();
        expect_refusal(ep[e].endpoint, junk, sizeof(junk), "malformed", "random bytes");
        /* The other endpoint's key, and no key at all. */
        seal(ep[e].wrong, &m, &buf, &len);
        expect_refusal(ep[e].endpoint, buf, len, e == 0 ? "token" : "cluster key",
                       "the other endpoint's key");
        free(buf);
        struct wire_sender plain;
        wire_sender_init(&plain, "plain");
        seal(&plain, &m, &buf, &len);
        expect_refusal(ep[e].endpoint, buf, len, "requires", "an unsealed envelope");
        free(buf);
        /* Oversized: nanomsg drops the connection (NN_RCVMAXSIZE), no answer. */
        len = WIRE_MAX_SIZE + 4096;
        buf = calloc(1, len);
        cr_assert_lt(h_round_trip(ep[e].endpoint, buf, len, 1000, &reply), 0,
                     "an oversized envelope was answered");
        free(buf);
    }
    for (int port = 7494; port <= 7497; port++) {
        char cmd[200];
        snprintf(cmd, sizeof(cmd),
                 "bash -c 'head -c 20000 /dev/urandom > /dev/tcp/127.0.0.1/%d' 2>/dev/null", port);
        (void)!system(cmd);
    }
    cr_assert(h_log_has(&C, ctl, "event=refused sock=api reason=replayed"));
    cr_assert(h_log_has(&C, ctl, "event=refused sock=agent reason=replayed"));
    cr_assert(h_log_has(&C, ctl, "event=bad_message sock=agent reason=\"malformed message\""));

    /* Both daemons still serve: the CLI works, the agent still syncs. */
    char *out = NULL;
    cr_assert_eq(CLI(&out, NULL, "apps:create", "after"), 0);
    free(out);
    cr_assert(nodes_has("n1"));
    struct j_obj o[4];
    cr_assert_eq(CLI(&out, NULL, "nodes", "--json"), 0);
    cr_assert_eq(j_parse_array(out, o, 4), 1);
    cr_assert_str_eq(j_get(&o[0], "state"), "ready");
    free(out);
    cr_assert(h_pid_alive(C.procs[ctl].pid) && h_pid_alive(C.procs[agent].pid));
    cr_assert_not(h_log_has(&C, agent, "refused_by_controller"),
                  "the real agent was refused along the way");
}

/* ---- slugs and processes ---- */

static Drover__Message *
api_call(Drover__Message *req, Drover__Message__BodyCase want)
{
    uint8_t *buf;
    size_t len;
    Drover__Message *rep;

    seal(&api_sender, req, &buf, &len);
    rep = expect_sealed(C.api, buf, len, want, "an API request");
    free(buf);
    return rep;
}

/* Upload the slug at path and make it release v1 of app. */
static void
upload_release(const char *app, const char *path)
{
    char sha[65];
    uint64_t size;
    Drover__Message m = DROVER__MESSAGE__INIT, *rep;
    Drover__SlugPutReq put = DROVER__SLUG_PUT_REQ__INIT;
    Drover__ReleaseCreateReq rel = DROVER__RELEASE_CREATE_REQ__INIT;
    FILE *f;

    cr_assert_eq(slug_sha256_file(path, sha, &size), 0);
    cr_assert_lt(size, WIRE_SLUG_CHUNK);
    put.data.data = malloc(size);
    f = fopen(path, "rb");
    cr_assert_eq(fread(put.data.data, 1, size, f), size);
    fclose(f);
    put.data.len = size;
    put.sha256 = sha;
    put.total = size;
    m.body_case = DROVER__MESSAGE__BODY_SLUG_PUT_REQ;
    m.slug_put_req = &put;
    rep = api_call(&m, DROVER__MESSAGE__BODY_SLUG_PUT_REP);
    cr_assert(rep->slug_put_rep->complete);
    wire_msg_free(rep);
    free(put.data.data);
    rel.app = (char *)app;
    rel.slug_sha256 = sha;
    rel.description = "hostile";
    m.body_case = DROVER__MESSAGE__BODY_RELEASE_CREATE_REQ;
    m.release_create_req = &rel;
    rep = api_call(&m, DROVER__MESSAGE__BODY_RELEASE_REP);
    wire_msg_free(rep);
}

/* A slug: a Procfile, then the hostile entry (and a file through it). */
static void
hostile_slug(const char *out, const char *path, const char *symlink_target, const char *through)
{
    struct archive *w = archive_write_new();
    struct archive_entry *e;
    const char procfile[] = "bad: sleep 1000\n";

    archive_write_add_filter_gzip(w);
    archive_write_set_format_pax_restricted(w);
    cr_assert_eq(archive_write_open_filename(w, out), ARCHIVE_OK);
    for (int i = 0; i < 3; i++) {
        const char *p = i == 0 ? "Procfile" : i == 1 ? path : through;
        if (p == NULL)
            break;
        e = archive_entry_new();
        archive_entry_set_pathname(e, p);
        archive_entry_set_perm(e, 0644);
        if (i == 1 && symlink_target != NULL) {
            archive_entry_set_filetype(e, AE_IFLNK);
            archive_entry_set_symlink(e, symlink_target);
        } else {
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_size(e, i == 0 ? (la_int64_t)strlen(procfile) : 6);
        }
        cr_assert_eq(archive_write_header(w, e), ARCHIVE_OK, "%s", archive_error_string(w));
        if (archive_entry_filetype(e) == AE_IFREG)
            archive_write_data(w, i == 0 ? procfile : "pwned\n", i == 0 ? strlen(procfile) : 6);
        archive_entry_free(e);
    }
    archive_write_close(w);
    archive_write_free(w);
}

static const char *
wait_state(const char *app, const char *state, int timeout_ms, char *pid, size_t pidsz)
{
    for (int waited = 0; waited < timeout_ms; waited += 200) {
        char *out = NULL;
        struct j_obj o[4];
        cr_assert_eq(CLI(&out, NULL, "ps", app, "--json"), 0);
        int n = j_parse_array(out, o, 4);
        free(out);
        if (n == 1 && strcmp(j_get(&o[0], "state"), state) == 0) {
            snprintf(pid, pidsz, "%s", j_get(&o[0], "pid"));
            return state;
        }
        h_msleep(200);
    }
    return NULL;
}

Test(security, hostile_slugs_are_refused_and_apps_run_unprivileged)
{
    char path[512], dir[400], pid[32], probe[400];
    char *err = NULL;

    h_init(&C, "slugpriv", 7510);
    int ctl = h_start_controller(&C, NULL);
    cr_assert(h_wait_log(&C, ctl, "event=ready", 10000), "controller not ready");
    /* The agent inherits a descriptor without close-on-exec: its app
     * processes must not. */
    snprintf(path, sizeof(path), "%s/inherited", C.dir);
    int leak = open(path, O_CREAT | O_WRONLY, 0600);
    cr_assert_geq(leak, 0);
    int agent = h_start_agent(&C, "n1", "8450-8499", NULL);
    close(leak);
    cr_assert(h_wait_log(&C, agent, "event=ready", 10000), "agent not ready");

    /* Three hostile slugs, each refused before anything lands outside. */
    struct {
        const char *app, *path, *link, *through, *probe;
    } bad[3] = {
        {"dotdot", "../../../../escape-dotdot", NULL, NULL, "escape-dotdot"},
        {"absolute", "/etc/drover-it-escape", NULL, NULL, "/etc/drover-it-escape"},
        {"symlink", "evil", "../../../..", "evil/escape-link", "escape-link"},
    };
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(CLI(NULL, &err, "apps:create", bad[i].app), 0, "%s", err);
        free(err);
        snprintf(path, sizeof(path), "%s/%s.tgz", C.dir, bad[i].app);
        hostile_slug(path, bad[i].path, bad[i].link, bad[i].through);
        upload_release(bad[i].app, path);
        cr_assert_eq(CLI(NULL, &err, "scale", bad[i].app, "bad=1"), 0, "%s", err);
        free(err);
    }
    for (int i = 0; i < 3; i++) {
        cr_assert(wait_state(bad[i].app, "failed", 20000, pid, sizeof(pid)),
                  "%s: the instance did not fail", bad[i].app);
        char needle[128];
        snprintf(needle, sizeof(needle), "event=unpack_failed app=%s", bad[i].app);
        cr_assert(h_log_has(&C, agent, needle), "%s: no unpack_failed event", bad[i].app);
        if (bad[i].probe[0] == '/')
            snprintf(probe, sizeof(probe), "%s", bad[i].probe);
        else
            snprintf(probe, sizeof(probe), "%s/%s", C.dir, bad[i].probe);
        struct stat st;
        cr_assert_neq(lstat(probe, &st), 0, "%s: %s was written", bad[i].app, probe);
        snprintf(probe, sizeof(probe), "%s/agent-n1/releases/%s", C.dir, bad[i].app);
        DIR *d = opendir(probe);
        if (d != NULL) {
            /* No refused release was put in place. A "vN-SHA.tmp" may come
             * and go: the agent retries with backoff, unpacking into a fresh
             * temp dir under its own releases/ that it removes on refusal. */
            struct dirent *de;
            char placed[256] = "";
            while ((de = readdir(d)) != NULL) {
                size_t len = strlen(de->d_name);
                if (de->d_name[0] != '.' && (len < 4 || strcmp(de->d_name + len - 4, ".tmp")))
                    snprintf(placed, sizeof(placed), "%s", de->d_name);
            }
            closedir(d);
            cr_assert(placed[0] == '\0', "%s: release %s was put in place", bad[i].app, placed);
        }
    }
    cr_assert(h_log_has(&C, agent, "refused entry ../../../../escape-dotdot"));
    cr_assert(h_log_has(&C, agent, "refused entry /etc/drover-it-escape"));
    cr_assert(h_log_has(&C, agent, "refused symlink evil"));

    /* A good app runs as DROVER_RUN_AS (when we are root), in its own
     * session and process group, with stdin, stdout and stderr only. */
    snprintf(dir, sizeof(dir), "%s/sleeper", C.dir);
    mkdir(dir, 0755);
    snprintf(path, sizeof(path), "%s/Procfile", dir);
    FILE *f = fopen(path, "w");
    fputs("sleeper: sleep 1000\n", f);
    fclose(f);
    cr_assert_eq(CLI(NULL, &err, "apps:create", "priv"), 0, "%s", err);
    free(err);
    cr_assert_eq(CLI(NULL, &err, "deploy", "priv", dir), 0, "%s", err);
    free(err);
    cr_assert_eq(CLI(NULL, &err, "scale", "priv", "sleeper=1"), 0, "%s", err);
    free(err);
    cr_assert(wait_state("priv", "up", 20000, pid, sizeof(pid)), "the sleeper never came up");
    pid_t p = (pid_t)atoi(pid);
    cr_assert_gt(p, 1);
    cr_assert_eq(getpgid(p), p, "not its own process group");
    cr_assert_eq(getsid(p), p, "not its own session");
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)p);
    DIR *d = opendir(path);
    cr_assert_not_null(d);
    struct dirent *de;
    int nfd = 0;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        int fd = atoi(de->d_name);
        char link[1024] = "", target[300] = "";
        snprintf(link, sizeof(link), "%s/%s", path, de->d_name);
        (void)!readlink(link, target, sizeof(target) - 1);
        cr_assert(fd <= 2, "the app process holds descriptor %d (%s)", fd, target);
        nfd++;
    }
    closedir(d);
    cr_assert_eq(nfd, 3);
    snprintf(path, sizeof(path), "/proc/%d/status", (int)p);
    f = fopen(path, "r");
    cr_assert_not_null(f);
    char line[256];
    unsigned ruid = 0, euid = 0, suid = 0, fsuid = 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "Uid: %u %u %u %u", &ruid, &euid, &suid, &fsuid) == 4)
            break;
    fclose(f);
    if (geteuid() == 0) {
        /* Root agent without DROVER_RUN_AS: the app's own user (uids.c). */
        cr_assert(ruid >= 61184 && ruid <= 65519 && euid == ruid && suid == ruid,
                  "the app runs as uid %u/%u/%u, not a uid of its own", ruid, euid, suid);
        cr_assert(h_log_has(&C, agent, "event=app_user app=priv"));
    } else {
        cr_assert_eq(ruid, geteuid());
    }
}
