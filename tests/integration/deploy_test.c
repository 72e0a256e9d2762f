/* SPDX-License-Identifier: MIT */
/*
 * Rolling deploys end to end: a real controller and three real agents on
 * loopback, driven through the real CLI, with tests/integration/rollapp (a
 * web that says which code and config it runs, and drains gracefully).
 * web=4 rolls one batch at a time and never has fewer than 4 up; a release
 * that crashes at boot is reverted by itself; rollback brings back older
 * code and config; a deploy cut by a controller SIGKILL ends whole after the
 * restart. Ports: controllers 7530-7541, apps 8700-8999 and 9000-9149.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static struct h_cluster C;

static void
fini(void)
{
    h_cleanup(&C);
}

TestSuite(deploy, .fini = fini, .timeout = 240);

#define CLI(out, err, ...) h_cli(&C, out, err, (const char *const[]){__VA_ARGS__, NULL})

static const char *app_src = DROVER_SOURCE_DIR "/tests/integration/rollapp";

static int
start_cluster(const char *test, int base, int app_port)
{
    char range[32], name[8];
    int ctl, idx;

    h_init(&C, test, base);
    ctl = h_start_controller_as(&C, "controller", NULL);
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "n%d", i + 1);
        snprintf(range, sizeof(range), "%d-%d", app_port + i * 50, app_port + i * 50 + 49);
        idx = h_start_agent(&C, name, range, NULL);
        cr_assert(h_wait_log(&C, idx, "event=ready", 10000), "agent %s not ready", name);
    }
    return ctl;
}

/* A copy of rollapp under the test's dir, with version.txt = version. */
static const char *
app_dir(const char *version)
{
    static char dir[400];
    char cmd[1200];
    FILE *f;

    snprintf(dir, sizeof(dir), "%s/src-%s", C.dir, version);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && cp -r '%s' '%s'", dir, app_src, dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    snprintf(cmd, sizeof(cmd), "%s/version.txt", dir);
    f = fopen(cmd, "w");
    cr_assert_not_null(f);
    fprintf(f, "%s\n", version);
    fclose(f);
    return dir;
}

#define OK(...) h_cli_ok(&C, (const char *const[]){__VA_ARGS__, NULL})

/* web instances up (not draining), and how many of them on release. */
static int
web_up(const struct h_ps *ps, int release, int *on_release)
{
    int up = 0;

    *on_release = 0;
    for (int i = 0; i < ps->n; i++) {
        const struct j_obj *o = &ps->o[i];

        if (strcmp(j_get(o, "type"), "web") != 0 || strcmp(j_get(o, "state"), "up") != 0)
            continue;
        up++;
        *on_release += atoi(j_get(o, "release")) == release;
    }
    return up;
}

/* Wait until exactly n web instances are listed, all up on release. */
static bool
wait_web(const char *app, int n, int release, int timeout_ms)
{
    struct h_ps ps;
    int on;

    for (int waited = 0; waited < timeout_ms; waited += 200) {
        h_get_ps(&C, app, &ps);
        if (web_up(&ps, release, &on) == n && on == n && ps.n == n)
            return true;
        h_msleep(200);
    }
    return false;
}

/* Every web instance answers with want in its body. */
static void
all_serve(const char *app, const char *want)
{
    struct h_ps ps;
    int served = 0;

    h_get_ps(&C, app, &ps);
    for (int i = 0; i < ps.n; i++) {
        const struct j_obj *o = &ps.o[i];
        char *body;

        if (strcmp(j_get(o, "type"), "web") != 0)
            continue;
        body = h_http_get(j_get(o, "host"), atoi(j_get(o, "port")), 3000);
        cr_assert_not_null(body, "%s does not answer", j_get(o, "name"));
        cr_assert(strstr(body, want) != NULL, "%s answered %s, want %s", j_get(o, "name"), body,
                  want);
        free(body);
        served++;
    }
    cr_assert_gt(served, 0);
}

/* The release's status per `releases --json`, in buf. */
static const char *
release_status(const char *app, int version, char *buf, size_t bufsz, char *reason, size_t rsz)
{
    static struct j_obj o[64];
    char *out = NULL, *err = NULL;
    int n;

    cr_assert_eq(CLI(&out, &err, "releases", app, "--json"), 0, "%s", err);
    n = j_parse_array(out, o, 64);
    cr_assert_geq(n, 0, "releases --json: %s", out);
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (atoi(j_get(&o[i], "version")) != version)
            continue;
        snprintf(buf, bufsz, "%s", j_get(&o[i], "status"));
        if (reason != NULL)
            snprintf(reason, rsz, "%s", j_get(&o[i], "reason") ? j_get(&o[i], "reason") : "");
    }
    free(out);
    free(err);
    return buf;
}

/* Deploy v1 of rollapp as web=4 and wait for it. */
static void
web4(const char *app)
{
    OK("apps:create", app);
    OK("config:set", app, "GREETING=hello");
    OK("deploy", app, app_dir("1"));
    OK("scale", app, "web=4");
    cr_assert(wait_web(app, 4, 1, 60000), "web=4 on v1 never came up");
}

Test(deploy, config_set_rolls_out_never_below_4_up_then_rollback_restores_code_and_config)
{
    struct h_ps ps;
    char st[32];
    int min_up = 99, max_live = 0, on = 0, polls = 0;

    start_cluster("rolling", 7530, 8700);
    web4("shop");
    all_serve("shop", "version=1 greeting=hello");

    /* v2: a config change rolls out; watch every step of it. */
    OK("config:set", "shop", "GREETING=howdy");
    for (int waited = 0; waited < 60000; waited += 100, polls++) {
        int live = 0, up;

        h_get_ps(&C, "shop", &ps);
        for (int i = 0; i < ps.n; i++)
            live += strcmp(j_get(&ps.o[i], "state"), "draining") != 0;
        up = web_up(&ps, 2, &on);
        min_up = up < min_up ? up : min_up;
        max_live = live > max_live ? live : max_live;
        if (on == 4 && ps.n == 4)
            break;
        h_msleep(100);
    }
    cr_assert_eq(on, 4, "v2 never rolled out");
    cr_assert_geq(min_up, 4, "only %d web up during the rollout", min_up);
    cr_assert_leq(max_live, 5, "%d live during the rollout (max_surge 25%% of 4 is 1)", max_live);
    cr_assert_gt(polls, 3, "the rollout was not seen in steps");
    all_serve("shop", "version=1 greeting=howdy");
    cr_assert_str_eq(release_status("shop", 2, st, sizeof(st), NULL, 0), "succeeded");

    /* v3: new code; v4: new config again. */
    OK("deploy", "shop", app_dir("2"));
    OK("config:set", "shop", "GREETING=bye");
    cr_assert(wait_web("shop", 4, 4, 60000), "v4 never rolled out");
    all_serve("shop", "version=2 greeting=bye");

    /* Rollback to v2: its code (version 1) and config come back as v5. */
    OK("rollback", "shop", "v2");
    cr_assert(wait_web("shop", 4, 5, 60000), "the rollback never rolled out");
    all_serve("shop", "version=1 greeting=howdy");
    char *out = NULL, *err = NULL;
    cr_assert_eq(CLI(&out, &err, "config", "shop"), 0, "%s", err);
    cr_assert(strstr(out, "howdy") != NULL, "config after rollback:\n%s", out);
    free(out);
    free(err);

    /* Rollback with no version: the newest succeeded release before v5. */
    OK("rollback", "shop");
    cr_assert(wait_web("shop", 4, 6, 60000), "the second rollback never rolled out");
    all_serve("shop", "version=2 greeting=bye");
}

Test(deploy, a_release_that_crashes_at_boot_is_reverted_and_the_deploy_fails)
{
    char *out = NULL, *err = NULL, st[32], reason[300];
    struct h_ps ps;
    int on, rc;

    start_cluster("revert", 7534, 8850);
    web4("shop");

    rc = CLI(&out, &err, "deploy", "shop", app_dir("crash"));
    cr_assert_eq(rc, 1, "a deploy that crashes must exit 1, not %d:\n%s%s", rc, out, err);
    cr_assert(strstr(err, "crashed") != NULL, "the reason is not said:\n%s", err);
    free(out);
    free(err);
    cr_assert_str_eq(release_status("shop", 2, st, sizeof(st), reason, sizeof(reason)), "failed");
    cr_assert(strstr(reason, "crashed (exit code 3)") != NULL, "reason: %s", reason);

    cr_assert(wait_web("shop", 4, 1, 60000), "web=4 is not back on v1");
    h_get_ps(&C, "shop", &ps);
    cr_assert_eq(web_up(&ps, 1, &on), 4);
    all_serve("shop", "version=1 greeting=hello");
    out = err = NULL;
    cr_assert_eq(CLI(&out, &err, "apps", "--json"), 0, "%s", err);
    cr_assert(strstr(out, "\"release\":1") != NULL || strstr(out, "\"release\": 1") != NULL,
              "the current release is not v1 again: %s", out);
    free(out);
    free(err);

    /* A bad config fails the same way, and its release is marked failed. */
    OK("config:set", "shop", "CRASH_AT_BOOT=1");
    for (int waited = 0; waited < 30000; waited += 200) {
        if (strcmp(release_status("shop", 3, st, sizeof(st), NULL, 0), "failed") == 0)
            break;
        h_msleep(200);
    }
    cr_assert_str_eq(st, "failed");
    cr_assert(wait_web("shop", 4, 1, 60000), "web=4 is not back on v1 after the bad config");
    out = err = NULL;
    cr_assert_eq(CLI(&out, &err, "config", "shop"), 0, "%s", err);
    cr_assert(strstr(out, "CRASH_AT_BOOT") == NULL, "the failed config is still shown:\n%s", out);
    free(out);
    free(err);
}

Test(deploy, a_deploy_cut_by_a_controller_restart_ends_whole)
{
    char *out = NULL, *err = NULL, st[32];
    struct h_ps ps;
    int ctl, on = 0, up, old;

    ctl = start_cluster("restart", 7538, 9000);
    OK("apps:create", "shop");
    OK("config:set", "shop", "BOOT_SLEEP=1.5");
    OK("deploy", "shop", app_dir("1"));
    OK("scale", "shop", "web=4");
    cr_assert(wait_web("shop", 4, 1, 60000), "web=4 on v1 never came up");

    OK("deploy", "shop", app_dir("2"), "--no-wait");
    /* Half-way: some web on v2 up, some still on v1. */
    for (int waited = 0; waited < 60000; waited += 100) {
        h_get_ps(&C, "shop", &ps);
        up = web_up(&ps, 2, &on);
        old = up - on;
        if (on >= 1 && old >= 1)
            break;
        h_msleep(100);
    }
    cr_assert(on >= 1, "the rollout never got half-way");
    kill(C.procs[ctl].pid, SIGKILL);
    h_msleep(300);
    h_start_controller_as(&C, "controller-2", NULL);

    /* It carries on and ends whole: all 4 on one release, and it succeeded. */
    for (int waited = 0; waited < 90000; waited += 200) {
        if (strcmp(release_status("shop", 2, st, sizeof(st), NULL, 0), "deploying") != 0)
            break;
        h_msleep(200);
    }
    cr_assert_str_eq(st, "succeeded", "after the restart the deploy is %s", st);
    cr_assert(wait_web("shop", 4, 2, 30000), "not all 4 on v2 after the restart");
    all_serve("shop", "version=2");
    cr_assert_eq(CLI(&out, &err, "ps", "shop"), 0, "%s", err);
    free(out);
    free(err);
}
