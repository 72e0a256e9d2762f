/* SPDX-License-Identifier: MIT */
/*
 * The release phase end to end: a real controller and two real agents on
 * loopback, driven through the real CLI, with tests/integration/relapp (a
 * `release:` command that records each run, and a web that refuses to start
 * when its release's phase has not run). Each release's phase runs exactly
 * once and before any of its instances; a failing phase fails the deploy and
 * touches nothing that runs; `release` cannot be scaled; a controller
 * SIGKILLed during a phase neither loses nor repeats it.
 *
 * The marks live in a world-writable directory under /var/tmp, not under the
 * test's /tmp directory: each instance may get a private /tmp.
 * Ports: controllers 7660-7667, apps 10000-10059.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "harness.h"

static struct h_cluster C;
static char marks[128];

static void
fini(void)
{
    h_cleanup(&C);
    h_rm_rf(marks);
}

TestSuite(release_phase, .fini = fini, .timeout = 240);

#define CLI(out, err, ...) h_cli(&C, out, err, (const char *const[]){__VA_ARGS__, NULL})

static const char *app_src = DROVER_SOURCE_DIR "/tests/integration/relapp";

static int
start_cluster(const char *test, int base, int app_port)
{
    char range[32], name[8];
    int ctl, idx;

    h_init(&C, test, base);
    h_shared_dir(marks, sizeof(marks), test);
    ctl = h_start_controller_as(&C, "controller", NULL);
    for (int i = 0; i < 2; i++) {
        snprintf(name, sizeof(name), "n%d", i + 1);
        snprintf(range, sizeof(range), "%d-%d", app_port + i * 20, app_port + i * 20 + 19);
        idx = h_start_agent(&C, name, range, NULL);
        cr_assert(h_wait_log(&C, idx, "event=ready", 10000), "agent %s not ready", name);
    }
    return ctl;
}

/* A copy of relapp; fail: its release phase exits 3. */
static const char *
app_dir(const char *name, bool fail)
{
    static char dir[400];
    char cmd[2048];

    snprintf(dir, sizeof(dir), "%s/src-%s", C.dir, name);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && cp -r '%s' '%s' && echo %s > '%s/name.txt'%s%s%s",
             dir, app_src, dir, name, dir, fail ? " && touch '" : "", fail ? dir : "",
             fail ? "/FAIL'" : "");
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    return dir;
}

#define OK(...) h_cli_ok(&C, (const char *const[]){__VA_ARGS__, NULL})

/* How many times release v ran its release phase (lines in the marks). */
static int
phase_runs(int v)
{
    char path[256], line[64];
    int n = 0;
    FILE *f;

    snprintf(path, sizeof(path), "%s/releases", marks);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        n += atoi(line) == v;
    fclose(f);
    return n;
}

static bool
violations(void)
{
    char path[256];
    struct stat st;

    snprintf(path, sizeof(path), "%s/violations", marks);
    return stat(path, &st) == 0;
}

/* Wait until exactly n web instances are listed, all up on release. */
static bool
wait_web(const char *app, int n, int release, int timeout_ms)
{
    struct h_ps ps;

    for (int waited = 0; waited < timeout_ms; waited += 200) {
        int on = 0, all = 0;

        h_get_ps(&C, app, &ps);
        for (int i = 0; i < ps.n; i++) {
            if (strcmp(j_get(&ps.o[i], "type"), "web") != 0)
                continue;
            all++;
            on += strcmp(j_get(&ps.o[i], "state"), "up") == 0 &&
                  atoi(j_get(&ps.o[i], "release")) == release;
        }
        if (on == n && all == n)
            return true;
        h_msleep(200);
    }
    return false;
}

/* "web.1=PID web.2=PID" of the web instances, sorted by name. */
static void
web_pids(const char *app, char *out, size_t outsz)
{
    struct h_ps ps;
    size_t len = 0;

    h_get_ps(&C, app, &ps);
    out[0] = '\0';
    for (int k = 1; k <= 8; k++) {
        char name[16];
        const struct j_obj *o;

        snprintf(name, sizeof(name), "web.%d", k);
        if ((o = h_ps_find(&ps, name)) != NULL && len < outsz)
            len += (size_t)snprintf(out + len, outsz - len, "%s=%s ", name, j_get(o, "pid"));
    }
}

static int
current_release(const char *app)
{
    static struct j_obj o[16];
    char *out = NULL, *err = NULL;
    int n, v = -1;

    cr_assert_eq(CLI(&out, &err, "apps", "--json"), 0, "%s", err);
    n = j_parse_array(out, o, 16);
    for (int i = 0; i < n; i++)
        if (strcmp(j_get(&o[i], "name"), app) == 0)
            v = atoi(j_get(&o[i], "release"));
    free(out);
    free(err);
    return v;
}

static const char *
release_status(const char *app, int version, char *buf, size_t bufsz)
{
    static struct j_obj o[64];
    char *out = NULL, *err = NULL;
    int n;

    cr_assert_eq(CLI(&out, &err, "releases", app, "--json"), 0, "%s", err);
    n = j_parse_array(out, o, 64);
    buf[0] = '\0';
    for (int i = 0; i < n; i++)
        if (atoi(j_get(&o[i], "version")) == version)
            snprintf(buf, bufsz, "%s", j_get(&o[i], "status"));
    free(out);
    free(err);
    return buf;
}

Test(release_phase, runs_once_per_release_before_its_instances_and_a_failure_touches_nothing)
{
    char *out = NULL, *err = NULL, md[160], before[256], after[256], st[32];
    int rc;

    start_cluster("relphase", 7660, 10000);
    snprintf(md, sizeof(md), "MARK_DIR=%s", marks);
    OK("apps:create", "shop");
    OK("config:set", "shop", md);

    /* v1: the phase runs, then web starts. */
    rc = CLI(&out, &err, "deploy", "shop", app_dir("one", false));
    cr_assert_eq(rc, 0, "deploy: %d\n%s%s", rc, out, err);
    cr_assert(strstr(out, "Running release phase (release.1) ...") != NULL, "%s", out);
    free(out);
    free(err);
    OK("scale", "shop", "web=2");
    cr_assert(wait_web("shop", 2, 1, 60000), "web=2 on v1 never came up");
    cr_assert_eq(phase_runs(1), 1);

    /* A config change is a release: its phase runs once, before its web. */
    OK("config:set", "shop", "GREETING=hi");
    cr_assert(wait_web("shop", 2, 2, 60000), "web=2 on v2 never came up");
    cr_assert_eq(phase_runs(2), 1);
    rc = CLI(&out, &err, "logs", "shop", "--source", "release.2");
    cr_assert(rc == 0 && strstr(out, "release 2 migrated") != NULL, "logs:\n%s%s", out, err);
    free(out);
    free(err);

    /* `release` is not a formation type. */
    rc = CLI(&out, &err, "scale", "shop", "release=1");
    cr_assert_eq(rc, 1, "scale release=1 exit %d\n%s%s", rc, out, err);
    cr_assert(strstr(err, "not a formation type") != NULL, "%s", err);
    free(out);
    free(err);
    rc = CLI(&out, &err, "apps", "--json");
    cr_assert(rc == 0 && strstr(out, "release=") == NULL && strstr(out, "\"release\":0") == NULL,
              "%s", out);
    free(out);
    free(err);

    /* A failing phase: exit 1 with the reason and its output; nothing moves. */
    web_pids("shop", before, sizeof(before));
    rc = CLI(&out, &err, "deploy", "shop", app_dir("bad", true));
    cr_assert_eq(rc, 1, "a failing release phase must fail the deploy: %d\n%s%s", rc, out, err);
    cr_assert(strstr(out, "Running release phase (release.3) ...") != NULL, "%s", out);
    cr_assert(strstr(err, "release phase failed: exit code 3") != NULL, "%s", err);
    cr_assert(strstr(err, "migration broke: table exists") != NULL, "output not shown:\n%s", err);
    free(out);
    free(err);
    cr_assert_str_eq(release_status("shop", 3, st, sizeof(st)), "failed");
    cr_assert_eq(current_release("shop"), 2);
    web_pids("shop", after, sizeof(after));
    cr_assert_str_eq(before, after, "the running web changed: %s -> %s", before, after);
    cr_assert(wait_web("shop", 2, 2, 5000));

    /* `run --type release` still runs the command by hand (v2's slug). */
    rc = CLI(&out, &err, "run", "shop", "--type", "release");
    cr_assert_eq(rc, 0, "run --type release: %d\n%s%s", rc, out, err);
    cr_assert(strstr(out, "migrated") != NULL, "%s", out);
    free(out);
    free(err);

    /* A rollback is a release too. */
    rc = CLI(&out, &err, "rollback", "shop", "v1");
    cr_assert_eq(rc, 0, "rollback: %d\n%s%s", rc, out, err);
    cr_assert(strstr(out, "Running release phase (release.4) ...") != NULL, "%s", out);
    free(out);
    free(err);
    cr_assert(wait_web("shop", 2, 4, 60000), "web=2 on v4 never came up");
    cr_assert_eq(phase_runs(4), 1);
    cr_assert_eq(phase_runs(1), 1);
    cr_assert_eq(phase_runs(2), 2, "v2's phase ran once, plus once by hand");
    cr_assert(!violations(), "an instance started before its release phase");

    /* release_timeout: a phase that runs too long fails its release. */
    OK("settings:set", "shop", "release", "release_timeout=2s");
    rc = CLI(&out, &err, "settings:set", "shop", "web", "release_timeout=2s");
    cr_assert_eq(rc, 1, "release_timeout on web: %d %s", rc, err);
    free(out);
    free(err);
    OK("config:set", "shop", "RELEASE_SLEEP=30");
    for (int waited = 0; waited < 20000; waited += 200) {
        if (strcmp(release_status("shop", 5, st, sizeof(st)), "failed") == 0)
            break;
        h_msleep(200);
    }
    cr_assert_str_eq(st, "failed", "v5 with a 30 s phase and a 2 s release_timeout is %s", st);
    rc = CLI(&out, &err, "releases", "shop");
    cr_assert(strstr(out, "release phase failed: timed out after 2 s") != NULL, "%s", out);
    free(out);
    free(err);
    cr_assert_eq(current_release("shop"), 4);
    rc = CLI(&out, &err, "config:get", "shop", "RELEASE_SLEEP");
    cr_assert_eq(rc, 1, "the failed release's config is still the app's: %s", out);
    free(out);
    free(err);
}

Test(release_phase, a_controller_killed_during_the_phase_neither_loses_nor_repeats_it)
{
    char md[160], st[32];
    int ctl;

    ctl = start_cluster("relphase-restart", 7664, 10040);
    snprintf(md, sizeof(md), "MARK_DIR=%s", marks);
    OK("apps:create", "shop");
    OK("config:set", "shop", md, "RELEASE_SLEEP=3");
    OK("deploy", "shop", app_dir("slow", false), "--no-wait");

    /* The phase runs (ps shows it); kill the controller under it. */
    for (int waited = 0; waited < 20000; waited += 100) {
        struct h_ps ps;
        const struct j_obj *o;

        h_get_ps(&C, "shop", &ps);
        o = h_ps_find(&ps, "release.1");
        if (o != NULL)
            break;
        h_msleep(100);
    }
    kill(C.procs[ctl].pid, SIGKILL);
    h_msleep(300);
    h_start_controller_as(&C, "controller-2", NULL);

    for (int waited = 0; waited < 30000; waited += 200) {
        if (strcmp(release_status("shop", 1, st, sizeof(st)), "deploying") != 0)
            break;
        h_msleep(200);
    }
    cr_assert_str_eq(st, "succeeded", "after the restart the release is %s", st);
    cr_assert(wait_web("shop", 1, 1, 30000), "web.1 on v1 never came up");
    cr_assert_eq(phase_runs(1), 1, "the release phase ran %d times", phase_runs(1));
    cr_assert(!violations(), "an instance started before its release phase");
    {
        struct h_ps ps;

        h_get_ps(&C, "shop", &ps);
        cr_assert_null(h_ps_find(&ps, "release.1"), "ps still shows the finished phase");
    }
    /* The restarted controller exits cleanly (under the sanitizers: no leak). */
    {
        int st2 = h_stop(&C, C.nprocs - 1, 10000);

        cr_assert(st2 >= 0 && WIFEXITED(st2) && WEXITSTATUS(st2) == 0, "controller exit %d", st2);
    }
}
