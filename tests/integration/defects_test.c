/* SPDX-License-Identifier: MIT */
/*
 * Defects of issue 11 that live in the node agent and the controller's
 * runtime, each met where a user meets it: through the real CLI against a
 * real controller and real agents. Controller ports 7600-7619, app ports
 * 9400-9599.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ask.h"
#include "harness.h"
#include "pipes.h"
#include "slug.h"
#include "wire.h"

static struct h_cluster C;
static char bin_copy[256];

static void
fini(void)
{
    char cmd[400];

    h_cleanup(&C);
    if (bin_copy[0] != '\0') {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", bin_copy);
        (void)!system(cmd);
    }
}

TestSuite(defects, .fini = fini, .timeout = 240);

#define CLI(out, err, ...) h_cli(&C, out, err, (const char *const[]){__VA_ARGS__, NULL})

static const char *run_app = DROVER_SOURCE_DIR "/tests/integration/runapp";

/* How many times needle occurs in the log of procs[idx]. */
static int
log_count(int idx, const char *needle)
{
    char *text = NULL;
    size_t len = 0, n;
    FILE *f = fopen(C.procs[idx].log, "r"), *m = open_memstream(&text, &len);
    char buf[8192];
    int count = 0;

    cr_assert_not_null(f);
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, n, m);
    fclose(f);
    fclose(m);
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p++)
        count++;
    free(text);
    return count;
}

/* One sealed API request, as the CLI sends it; the reply must be want. */
static Drover__Message *
api_call(Drover__Message *req, Drover__Message__BodyCase want)
{
    static struct wire_sender snd;
    static bool keyed;
    uint8_t key[WIRE_KEY_BYTES];
    Drover__Message *rep = NULL;
    int rc;

    if (!keyed) {
        wire_key_from_token(H_API_TOKEN, key);
        cr_assert_geq(wire_keyring_add("api", key), 0);
        wire_sender_init(&snd, "it-defects");
        wire_sender_set_key(&snd, key);
        keyed = true;
    }
    rc = h_ask(C.api, &snd, req, 5000, &rep);
    cr_assert_neq(rc, -ETIMEDOUT, "no answer from the API");
    cr_assert_eq(rc, 0, "the API's answer does not open: %s", wire_strerror(rc));
    cr_assert_eq(rep->body_case, want, "API answered type %d", (int)rep->body_case);
    return rep;
}

/* Pack dir as it is (links and all: what an old CLI, or any client, could
 * send), upload it and make it app's next release; its sha in sha. */
static void
upload_release(const char *app, const char *dir, char sha[65])
{
    char path[512], err[256];
    uint64_t size;
    Drover__Message m = DROVER__MESSAGE__INIT, *rep;
    Drover__SlugPutReq put = DROVER__SLUG_PUT_REQ__INIT;
    Drover__ReleaseCreateReq rel = DROVER__RELEASE_CREATE_REQ__INIT;
    FILE *f;

    snprintf(path, sizeof(path), "%s.tgz", dir);
    cr_assert_eq(slug_pack_dir(dir, path, err, sizeof(err)), 0, "%s", err);
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
    rel.description = "uploaded by the test";
    m.body_case = DROVER__MESSAGE__BODY_RELEASE_CREATE_REQ;
    m.release_create_req = &rel;
    wire_msg_free(api_call(&m, DROVER__MESSAGE__BODY_RELEASE_REP));
}

/* The instance named name in ps --json (the live one, else any): its field
 * key, in buf. */
static const char *
ps_field(const char *app, const char *name, const char *key, char *buf, size_t bufsz)
{
    struct h_ps ps;
    const struct j_obj *o;

    h_get_ps(&C, app, &ps);
    o = h_ps_find(&ps, name);
    for (int i = 0; o == NULL && i < ps.n; i++) /* a lost one is stopping */
        if (strcmp(j_get(&ps.o[i], "name"), name) == 0)
            o = &ps.o[i];
    snprintf(buf, bufsz, "%s", o != NULL ? j_get(o, key) : "");
    return buf;
}

/* Wait until name's state in ps is state. */
static bool
wait_state(const char *app, const char *name, const char *state, int timeout_ms)
{
    char buf[64];

    for (long deadline = p_now_ms() + timeout_ms; p_now_ms() < deadline; h_msleep(200))
        if (strcmp(ps_field(app, name, "state", buf, sizeof(buf)), state) == 0)
            return true;
    return false;
}

/* ---- item 2: the pty helper and a directory the app's user cannot enter ---- */

/* drover's programs and the agent's helpers copied into a fresh mkdtemp
 * directory (mode 0700, as a checkout under /root or a mktemp -d clone is). */
static void
private_binaries(void)
{
    static const char *const progs[] = {"drover", "drover-agent", "drover-controller",
                                        "drover-exec", "drover-unpack"};
    char cmd[1024];
    struct stat st;

    snprintf(bin_copy, sizeof(bin_copy), "/tmp/drover-it-bin.XXXXXX");
    cr_assert_not_null(mkdtemp(bin_copy), "mkdtemp: %s", strerror(errno));
    for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
        snprintf(cmd, sizeof(cmd), "cp '%s/%s' '%s/'", h_bin_dir(), progs[i], bin_copy);
        cr_assert_eq(system(cmd), 0, "%s", cmd);
    }
    cr_assert_eq(stat(bin_copy, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0700);
    setenv("DROVER_BIN_DIR", bin_copy, 1);
}

Test(defects, pty_one_off_with_binaries_in_a_private_directory)
{
    char script_cmd[1024], *err = NULL;
    static char ctl[96];
    struct p_child ch;
    int rc;

    if (geteuid() != 0)
        cr_skip_test("needs root: app processes run as DROVER_RUN_AS only then");
    private_binaries();
    h_start_cluster(&C, "pty-private", 7600, 1, 9400, 20, NULL, NULL);
    cr_assert_eq(CLI(NULL, NULL, "apps:create", "shop"), 0);
    cr_assert_eq(CLI(NULL, NULL, "config:set", "shop", "GREETING=howdy"), 0);
    cr_assert_eq(CLI(NULL, &err, "deploy", "shop", run_app), 0, "deploy: %s", err);
    free(err);

    /* The suite's pty case (run_test.c), with the copied CLI; the app's
     * environment reaches the shell (the root helper itself starts with
     * none, so that the app's config cannot preload code into it). */
    snprintf(ctl, sizeof(ctl), "DROVER_CONTROLLER=%s", C.api);
    snprintf(script_cmd, sizeof(script_cmd),
             "stty rows 31 cols 101; exec %s/drover run shop -- "
             "'tty; stty size; echo uid=$(id -u) G=$GREETING D=$DYNO; printf ready; read x; echo "
             "got:$x; "
             "exit 3'",
             bin_copy);
    const char *argv[] = {"/usr/bin/script", "-eqfc", script_cmd, "/dev/null", NULL};
    const char *env[] = {"PATH=/usr/bin:/bin", ctl, "DROVER_TIMEOUT_MS=5000",
                         "DROVER_API_TOKEN=" H_API_TOKEN, NULL};
    p_spawn(&C, &ch, argv, env, true);
    cr_assert(p_wait_out(&ch, "ready", 20000), "no prompt: %s", ch.obuf ? ch.obuf : "");
    cr_assert(strstr(ch.obuf, "could not start") == NULL, "%s", ch.obuf);
    cr_assert(strstr(ch.obuf, "/dev/pts/") != NULL, "no pseudo-terminal: %s", ch.obuf);
    cr_assert(strstr(ch.obuf, "31 101") != NULL, "window size not passed: %s", ch.obuf);
    /* It runs as its app's own user (DROVER_UID_RANGE), not as the root
     * helper, and with its environment. */
    const char *u = strstr(ch.obuf, "uid=");
    cr_assert(u != NULL && atoi(u + 4) >= 61184 && atoi(u + 4) <= 65519 &&
                  strstr(u, " G=howdy D=run.") != NULL,
              "not the app's user, or no env: %s", ch.obuf);
    p_write(&ch, "abc\r", 4);
    cr_assert(p_wait_out(&ch, "got:abc", 20000), "no answer: %s", ch.obuf);
    rc = p_wait_exit(&ch, 20000);
    cr_assert_eq(rc, 3, "exit code through the pty: %d (%s)", rc, ch.obuf);
    p_free(&ch);
}

/* ---- items 3, 5, 6: crashes and failed deploys say what happened ---- */

#define WEB "web: exec python3 -m http.server $PORT --bind 127.0.0.1\n"

Test(defects, every_crash_is_seen_and_a_failed_deploy_says_why)
{
    char *out = NULL, *err = NULL, buf[64];
    long t0, took;
    int rc;

    h_start_cluster(&C, "crashes", 7604, 1, 9420, 20, NULL, NULL);
    cr_assert_eq(CLI(NULL, NULL, "apps:create", "shop"), 0);
    rc = CLI(NULL, &err, "deploy", "shop", h_app_dir(&C, "good", WEB));
    cr_assert_eq(rc, 0, "deploy: %s", err);
    free(err);

    /* Item 3: the first crash, restarted at once, is in the logs with its
     * exit status and counts in restarts. */
    cr_assert(wait_state("shop", "web.1", "up", 20000));
    int pid = atoi(ps_field("shop", "web.1", "pid", buf, sizeof(buf)));
    cr_assert_gt(pid, 1);
    cr_assert_eq(kill(pid, SIGKILL), 0);
    cr_assert(h_wait_logs(&C, "shop", "web.1@n1 crashed (signal 9; restarting)", 20000, &out),
              "the first crash is not in the logs:\n%s", out);
    free(out);
    cr_assert(wait_state("shop", "web.1", "up", 20000));
    cr_assert_str_eq(ps_field("shop", "web.1", "restarts", buf, sizeof(buf)), "1");

    /* A release that crashes at boot fails its deploy at its first crash,
     * long before its boot timeout, and its code runs once. */
    cr_assert_eq(CLI(NULL, NULL, "settings:set", "shop", "web", "boot_timeout=8s"), 0);
    t0 = p_now_ms();
    rc = CLI(&out, &err, "deploy", "shop", h_app_dir(&C, "crashy", "web: sleep 1; exit 3\n"));
    took = p_now_ms() - t0;
    cr_assert_eq(rc, 1, "a release that crashes deployed: %s%s", out, err);
    cr_assert(strstr(err, "web.1 crashed (exit code 3)") != NULL, "%s", err);
    cr_log_info("a release crashing 1 s after start failed its deploy in %ld ms (boot timeout 8 s)",
                took);
    cr_assert_lt(took, 6000, "the deploy failed only after %ld ms", took);
    free(out), free(err);
    cr_assert_eq(log_count(1, "code=3 "), 1, "the broken release ran more than once");
    /* The crash that failed the deploy; "web.1@n1 (v2) starting -> crashed
     * (...)", or "pending -> crashed" when it was over before a report. */
    cr_assert(h_wait_logs(&C, "shop", "-> crashed (exit code 3; not restarted: its deploy failed)",
                          5000, NULL));

    /* Item 5: an HTTP health check that fails says what it got. */
    cr_assert_eq(
        CLI(NULL, NULL, "settings:set", "shop", "web", "health=http:/healthz", "boot_timeout=2s"),
        0);
    rc = CLI(&out, &err, "deploy", "shop", h_app_dir(&C, "good", WEB));
    cr_assert_eq(rc, 1, "a web that answers 404 deployed: %s%s", out, err);
    cr_assert(strstr(err, "web.1 was not healthy within 2.0 s: GET /healthz answered 404") != NULL,
              "%s", err);
    free(out), free(err);
    cr_assert_eq(CLI(NULL, NULL, "settings:set", "shop", "web", "health=tcp", "boot_timeout=8s"),
                 0);

    /* Item 5: drover deploy refuses a link leaving the directory, with its
     * path, before uploading; the same slug sent anyway fails its deploy
     * with the agent's reason, in the release, the deploy and the logs. */
    const char *bad = h_app_dir(&C, "badlink", WEB);
    char link[512];
    snprintf(link, sizeof(link), "%s/etc-dir", bad);
    cr_assert_eq(symlink("../../etc", link), 0);
    rc = CLI(&out, &err, "deploy", "shop", bad);
    cr_assert_eq(rc, 1, "a link out of the directory deployed (%d): %s%s", rc, out, err);
    cr_assert(strstr(err, "refused symlink etc-dir -> ../../etc: points outside the slug") != NULL,
              "%s", err);
    cr_assert(strstr(out, "Uploading") == NULL, "it uploaded: %s", out);
    free(out), free(err);
    char sha[65];
    upload_release("shop", bad, sha);
    const char *want = "refused symlink etc-dir -> ../../etc: points outside the slug";
    cr_assert(h_wait_logs(&C, "shop", "deploy of v", 20000, NULL));
    bool failed = false;
    for (long deadline = p_now_ms() + 20000; !failed && p_now_ms() < deadline; h_msleep(200)) {
        cr_assert_eq(CLI(&out, NULL, "releases", "shop"), 0);
        failed = strstr(out, want) != NULL;
        free(out);
    }
    cr_assert(failed, "the release does not say why it failed");
    cr_assert(h_wait_logs(&C, "shop", want, 5000, &out), "%s", out);
    cr_assert(strstr(out, "exit code -1") == NULL, "%s", out);
    free(out);
    cr_assert(wait_state("shop", "web.1", "up", 20000), "v1 is not back");

    /* Item 5: a slug that cannot be fetched (gone from the controller's
     * store) says so in ps and the logs. */
    char path[512];
    cr_assert_eq(CLI(NULL, NULL, "apps:create", "fetchy"), 0);
    upload_release("fetchy", h_app_dir(&C, "fetchy", "worker: exec sleep 600\n"), sha);
    snprintf(path, sizeof(path), "%s/controller/slugs/%s.tgz", C.dir, sha);
    cr_assert_eq(unlink(path), 0, "%s: %s", path, strerror(errno));
    cr_assert_eq(CLI(NULL, NULL, "scale", "fetchy", "worker=1"), 0);
    cr_assert(wait_state("fetchy", "worker.1", "failed", 20000), "the instance did not fail");
    cr_assert(h_wait_logs(&C, "fetchy", "(cannot fetch its slug: no slug ", 5000, &out), "%s", out);
    free(out);

    /* Item 6: a first deploy that fails says no restart that will not
     * happen. */
    cr_assert_eq(CLI(NULL, NULL, "apps:create", "fresh"), 0);
    cr_assert_eq(
        CLI(NULL, NULL, "deploy", "fresh", h_app_dir(&C, "crashy", "web: sleep 1; exit 3\n")), 1);
    cr_assert(h_wait_logs(&C, "fresh", "no earlier release to run", 5000, &out), "%s", out);
    h_msleep(2500); /* a second crash, if the instance were not stopped */
    free(out);
    cr_assert(h_wait_logs(&C, "fresh", "deploy of v1 failed", 1000, &out));
    cr_assert(strstr(out, "restart 2 in") == NULL, "a misleading restart line:\n%s", out);
    free(out);

    /* Item 6: an agent killed with SIGKILL: ps does not show its instances
     * up, it says the node cannot be reached. */
    kill(-C.procs[1].pid, SIGKILL);
    cr_assert(wait_state("shop", "web.1", "unknown", 10000), "ps still believes the dead agent");
    cr_assert(strstr(ps_field("shop", "web.1", "reason", buf, sizeof(buf)),
                     "node n1 unreachable") != NULL,
              "%s", buf);
}

/* ---- Also: app lines stay off the agent's stdout; the agent reaps orphans ---- */

/* The parent pid and state of pid, from /proc; false when it is gone. */
static bool
proc_stat(int pid, int *ppid, char *state)
{
    char path[64], buf[512], *rp;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    if ((f = fopen(path, "r")) == NULL)
        return false;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    rp = strrchr(buf, ')');
    return rp != NULL && sscanf(rp + 2, "%c %d", state, ppid) == 2;
}

/* Children of parent (by /proc scan); zombies counted apart. */
static int
children_of(int parent, int *zombies, const char *comm, int *found)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    int n = 0;

    *zombies = 0;
    cr_assert_not_null(d);
    while ((de = readdir(d)) != NULL) {
        int pid = atoi(de->d_name), ppid;
        char state, path[64], name[64] = "";

        if (pid <= 0 || !proc_stat(pid, &ppid, &state) || ppid != parent)
            continue;
        n++;
        *zombies += state == 'Z';
        snprintf(path, sizeof(path), "/proc/%d/comm", pid);
        FILE *f = fopen(path, "r");
        if (f != NULL) {
            if (fgets(name, sizeof(name), f) == NULL)
                name[0] = '\0';
            fclose(f);
        }
        name[strcspn(name, "\n")] = '\0';
        if (comm != NULL && strcmp(name, comm) == 0)
            *found = pid;
    }
    closedir(d);
    return n;
}

/* Entries of dir whose name starts with prefix (NULL: any but dot files
 * and the controller's tmp/). */
static int
count_entries(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || strcmp(de->d_name, "tmp") == 0)
            continue;
        if (prefix == NULL || strncmp(de->d_name, prefix, strlen(prefix)) == 0)
            n++;
    }
    closedir(d);
    return n;
}

Test(defects, the_agent_reaps_orphans_keeps_app_lines_off_its_stdout_and_its_disk_bounded)
{
    char *out = NULL, *err = NULL;
    int zombies = 0, orphan = 0, agent;

    h_start_cluster(&C, "reaper", 7608, 1, 9460, 20,
                    (const char *const[]){"DROVER_SLUGS_KEEP=3", NULL}, NULL);
    agent = C.procs[1].pid;
    cr_assert_eq(CLI(NULL, NULL, "apps:create", "shop"), 0);
    /* The inner shell leaves a sleep behind and exits: an orphan. */
    const char *dir = h_app_dir(
        &C, "orphans", "worker: sh -c 'sleep 3 & exit 0'; echo orphan-made-7q; exec sleep 600\n");
    cr_assert_eq(CLI(NULL, &err, "deploy", "shop", dir), 0, "%s", err);
    free(err);
    cr_assert_eq(CLI(NULL, NULL, "scale", "shop", "worker=1"), 0);
    cr_assert(h_wait_logs(&C, "shop", "orphan-made-7q", 20000, &out), "%s", out);
    free(out);
    /* The orphan's new parent is the agent, not init. */
    for (long deadline = p_now_ms() + 5000; orphan == 0 && p_now_ms() < deadline; h_msleep(100))
        children_of(agent, &zombies, "sleep", &orphan);
    cr_assert_gt(orphan, 0, "no orphan sleep was adopted by the agent (pid %d)", agent);
    /* Once it exits, the agent reaps it: no zombie is left behind. */
    int ppid;
    char state = '?';
    for (long deadline = p_now_ms() + 10000;
         proc_stat(orphan, &ppid, &state) && ppid == agent && p_now_ms() < deadline; h_msleep(100))
        ;
    cr_assert(!proc_stat(orphan, &ppid, &state) || ppid != agent,
              "the orphan %d is still the agent's child (state %c)", orphan, state);
    children_of(agent, &zombies, NULL, &orphan);
    cr_assert_eq(zombies, 0, "the agent leaves zombies");
    cr_assert(wait_state("shop", "worker.1", "up", 10000), "the worker itself went down");

    /* App lines reach drover logs, not the agent's own stdout. */
    cr_assert_not(h_log_has(&C, 1, "orphan-made-7q"), "the agent echoed an app line");
    cr_assert(h_log_has(&C, 1, "event=spawned"), "the agent's own events are missing");

    /* Item 10 (one cluster per test: the ports are few): eight deploys of
     * distinct code leave the agent two unpacked releases and two cached
     * slugs, and the controller the slugs of its last three releases. */
    for (int v = 2; v <= 9; v++) {
        char path[512];
        const char *d = h_app_dir(&C, "versions", "worker: exec sleep 600\n");
        snprintf(path, sizeof(path), "%s/VERSION", d);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fprintf(f, "%d\n", v);
        fclose(f);
        cr_assert_eq(CLI(NULL, &err, "deploy", "shop", d), 0, "deploy %d: %s", v, err);
        free(err);
    }
    char rels[400], slugs[400], cslugs[400];
    int nrels = -1, nslugs = -1, ncslugs = -1;
    snprintf(rels, sizeof(rels), "%s/agent-n1/releases/shop", C.dir);
    snprintf(slugs, sizeof(slugs), "%s/agent-n1/slugs", C.dir);
    snprintf(cslugs, sizeof(cslugs), "%s/controller/slugs", C.dir);
    for (long deadline = p_now_ms() + 15000; p_now_ms() < deadline; h_msleep(200)) {
        nrels = count_entries(rels, "v");
        nslugs = count_entries(slugs, NULL);
        ncslugs = count_entries(cslugs, NULL);
        if (nrels == 2 && nslugs == 2 && ncslugs == 3)
            break;
    }
    cr_log_info("after 9 releases: agent %d releases, %d slugs; controller %d slugs", nrels, nslugs,
                ncslugs);
    cr_assert_eq(nrels, 2, "unpacked releases left on the agent");
    cr_assert_eq(nslugs, 2, "cached slugs left on the agent");
    cr_assert_eq(ncslugs, 3, "slugs left on the controller");
    cr_assert(wait_state("shop", "worker.1", "up", 10000), "the worker is not up on v9");
    /* A rollback to a release whose slug is gone says so; one to a kept
     * release works, and v8's unpacked release starts it at once. */
    cr_assert_eq(CLI(&out, &err, "rollback", "shop", "v2"), 1);
    cr_assert(strstr(err, "the slug of v2 is gone") != NULL, "%s", err);
    free(out), free(err);
    cr_assert_eq(CLI(&out, &err, "rollback", "shop", "v8"), 0, "%s", err);
    free(out), free(err);
}

/* ---- item 4: one-offs do not hold drains and shutdowns; a lost one is lost ---- */

/* The name of a detached one-off started on node. */
static void
run_detached(const char *node, char *name, size_t namesz)
{
    char *out = NULL, *err = NULL;

    cr_assert_eq(CLI(&out, &err, "run", "shop", "--detach", "--node", node, "--", "sleep 300"), 0,
                 "%s", err);
    cr_assert_eq(sscanf(out, "%31s", name), 1);
    cr_assert(strncmp(name, "run.", 4) == 0, "%s", out);
    (void)namesz;
    free(out), free(err);
    cr_assert(wait_state("shop", name, "up", 20000), "%s never ran", name);
}

Test(defects, one_offs_are_stopped_by_drains_and_shutdowns_and_a_lost_one_is_lost)
{
    char *out = NULL, *err = NULL, name[32], want[96];
    long t0;
    int rc;

    h_start_cluster(&C, "oneoffs", 7612, 3, 9480, 20, NULL, NULL);
    cr_assert_eq(CLI(NULL, NULL, "apps:create", "shop"), 0);
    cr_assert_eq(CLI(NULL, &err, "deploy", "shop", run_app), 0, "%s", err);
    free(err);

    /* nodes:drain stops the one-off (never replaced) and finishes. */
    run_detached("n3", name, sizeof(name));
    t0 = p_now_ms();
    rc = CLI(&out, &err, "nodes:drain", "n3", "--timeout", "30");
    cr_assert_eq(rc, 0, "drain: %s%s", out, err);
    cr_assert_lt(p_now_ms() - t0, 15000, "the drain waited for the one-off");
    cr_assert(strstr(out, "until replaced") == NULL, "%s", out);
    free(out), free(err);
    snprintf(want, sizeof(want), "%s stopped: n3 drained", name);
    cr_assert(h_wait_logs(&C, "shop", want, 5000, &out), "%s", out);
    free(out);

    /* status lists no row for one-offs. */
    run_detached("n1", name, sizeof(name));
    cr_assert_eq(CLI(&out, NULL, "status"), 0);
    char *apps = strstr(out, "Apps:"), *att = strstr(out, "Needs attention");
    cr_assert(apps != NULL && att != NULL, "%s", out);
    *att = '\0';
    cr_assert(strstr(apps, " run ") == NULL, "a run row in status:\n%s", out);
    free(out);

    /* An agent's SIGTERM stops its one-off rather than wait its whole
     * DROVER_LEAVE_TIMEOUT_MS (60 s) for a replacement that never comes. */
    t0 = p_now_ms();
    int status = h_stop(&C, 1, 30000);
    cr_assert_neq(status, -1, "the agent did not stop");
    cr_assert_lt(p_now_ms() - t0, 20000, "the agent waited for its one-off");
    snprintf(want, sizeof(want), "%s stopped: n1 is shutting down", name);
    cr_assert(h_wait_logs(&C, "shop", want, 5000, &out), "%s", out);
    free(out);

    /* A one-off whose node goes down is lost, not replaced. */
    run_detached("n2", name, sizeof(name));
    kill(-C.procs[2].pid, SIGKILL);
    cr_assert(wait_state("shop", name, "lost", 20000), "the one-off is not lost");
    char reason[64];
    ps_field("shop", name, "reason", reason, sizeof(reason));
    cr_assert_str_eq(reason, "node n2 is down");
}

/* ---- item 7: a node holds min(capacity, ports) and pending says which ran out ---- */

Test(defects, ports_limit_a_node_and_pending_says_so)
{
    char *out = NULL, *err = NULL;
    struct j_obj nodes[4];
    struct h_ps ps;

    h_start_cluster(&C, "ports", 7616, 1, 9520, 10, NULL,
                    (const char *const[]){"DROVER_CAPACITY=20", NULL});
    cr_assert(h_log_has(&C, 1, "event=capacity_over_ports"), "the agent does not warn");
    cr_assert_eq(h_get_nodes(&C, nodes, 4), 1);
    cr_assert_str_eq(j_get(&nodes[0], "limit"), "10");
    cr_assert_eq(CLI(&out, NULL, "nodes"), 0);
    cr_assert(strstr(out, "0/10") != NULL && strstr(out, "10 ports limit it (capacity 20)"), "%s",
              out);
    free(out);

    cr_assert_eq(CLI(NULL, NULL, "apps:create", "shop"), 0);
    cr_assert_eq(
        CLI(NULL, &err, "deploy", "shop", h_app_dir(&C, "sleeper", "worker: exec sleep 600\n")), 0,
        "%s", err);
    free(err);
    cr_assert_eq(CLI(NULL, NULL, "scale", "shop", "worker=14"), 0);
    int pending = 0;
    for (long deadline = p_now_ms() + 20000; p_now_ms() < deadline; h_msleep(200)) {
        h_get_ps(&C, "shop", &ps);
        if (h_ps_count(&ps, "worker", "up", NULL) == 10)
            break;
    }
    cr_assert_eq(h_ps_count(&ps, "worker", "up", NULL), 10);
    for (int i = 0; i < ps.n; i++) {
        if (strcmp(j_get(&ps.o[i], "state"), "pending") != 0)
            continue;
        pending++;
        cr_assert_str_eq(j_get(&ps.o[i], "reason"), "no free port in 9520-9529");
    }
    cr_assert_eq(pending, 4);
    cr_assert_eq(CLI(&out, NULL, "status"), 0);
    cr_assert(strstr(out, "4 worker") != NULL && strstr(out, "no free port in 9520-9529"),
              "status does not group them:\n%s", out);
    cr_assert(strstr(out, "worker.11") == NULL, "one line each:\n%s", out);
    free(out);
}
