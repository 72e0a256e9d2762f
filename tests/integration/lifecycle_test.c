/* SPDX-License-Identifier: MIT */
/*
 * The lifecycle verbs end to end, through the real CLI on a real cluster
 * (a controller and two or three agents on loopback) with
 * tests/integration/lifeapp: restart of one instance replaces exactly that
 * one; restart of the app replaces every instance while a watcher never sees
 * fewer than the quantity up; a restart whose instance does not come back
 * exits 1 with the reason; ps:stop; config:get; --version; apps:destroy
 * refuses without --confirm and, with it, leaves no process, no release
 * files and no slug behind, and the name can be used again; nodes:remove.
 *
 * The crash switch lives in a world-writable directory under /var/tmp, not
 * under the test's /tmp directory: each instance may get a private /tmp.
 * Ports: controllers 7668-7671 and 7676-7679, apps 10060-10079 and 10100-10139.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "harness.h"

static struct h_cluster C;
static char shared[128];

static void
fini(void)
{
    h_cleanup(&C);
    h_rm_rf(shared);
}

TestSuite(lifecycle, .fini = fini, .timeout = 240);

#define CLI(out, err, ...) h_cli(&C, out, err, (const char *const[]){__VA_ARGS__, NULL})

static void
start_cluster(const char *test, int base, int app_port, int agents)
{
    char range[32], name[8], timeout[] = "DROVER_NODE_TIMEOUT_MS=2000";
    const char *ctl_env[] = {timeout, NULL};
    int idx;

    h_init(&C, test, base);
    h_shared_dir(shared, sizeof(shared), test);
    h_start_controller_as(&C, "controller", ctl_env);
    for (int i = 0; i < agents; i++) {
        snprintf(name, sizeof(name), "n%d", i + 1);
        snprintf(range, sizeof(range), "%d-%d", app_port + i * 10, app_port + i * 10 + 9);
        idx = h_start_agent(&C, name, range, NULL);
        cr_assert(h_wait_log(&C, idx, "event=ready", 10000), "agent %s not ready", name);
    }
}

#define OK(...) h_cli_ok(&C, (const char *const[]){__VA_ARGS__, NULL})

/* web instances: how many listed, how many up (not draining). */
static void
web_counts(const struct h_ps *ps, int *listed, int *up)
{
    *listed = *up = 0;
    for (int i = 0; i < ps->n; i++) {
        if (strcmp(j_get(&ps->o[i], "type"), "web") != 0)
            continue;
        (*listed)++;
        *up += strcmp(j_get(&ps->o[i], "state"), "up") == 0;
    }
}

static bool
wait_web(const char *app, int n, int timeout_ms)
{
    struct h_ps ps;
    int listed, up;

    for (int waited = 0; waited < timeout_ms; waited += 200) {
        h_get_ps(&C, app, &ps);
        web_counts(&ps, &listed, &up);
        if (listed == n && up == n)
            return true;
        h_msleep(200);
    }
    return false;
}

/* The pid of each web.K (K = 1..n) that is up, 0 when none is. */
static void
web_pids(const char *app, int n, long *pids)
{
    struct h_ps ps;

    h_get_ps(&C, app, &ps);
    for (int k = 1; k <= n; k++) {
        pids[k] = 0;
        for (int i = 0; i < ps.n; i++) {
            char name[16];

            snprintf(name, sizeof(name), "web.%d", k);
            if (strcmp(j_get(&ps.o[i], "name"), name) == 0 &&
                strcmp(j_get(&ps.o[i], "state"), "up") == 0)
                pids[k] = atol(j_get(&ps.o[i], "pid"));
        }
    }
}

static const char *
app_src(void)
{
    return DROVER_SOURCE_DIR "/tests/integration/lifeapp";
}

/* A copy of lifeapp with a file that makes its slug its own. */
static const char *
own_src(const char *app)
{
    static char dir[400];
    char cmd[2048];

    snprintf(dir, sizeof(dir), "%s/src-%s", C.dir, app);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && cp -r '%s' '%s' && echo %s > '%s/own.txt'", dir,
             app_src(), dir, app, dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    return dir;
}

static void
deploy_src(const char *app, const char *n, const char *src)
{
    char crash[200], scale[16];

    snprintf(crash, sizeof(crash), "CRASH_FILE=%s/crash-%s", shared, app);
    snprintf(scale, sizeof(scale), "web=%s", n);
    OK("apps:create", app);
    OK("config:set", app, crash);
    OK("deploy", app, src);
    OK("scale", app, scale);
    cr_assert(wait_web(app, atoi(n), 60000), "%s never came up", scale);
}

static void
deploy_web(const char *app, const char *n)
{
    deploy_src(app, n, app_src());
}

/* On the restart test's cluster: shop with web=3 up. */
static void
ps_stop_config_get_and_version(void)
{
    char *out = NULL, *err = NULL;
    long before[4], after[4];
    struct h_ps ps;
    int rc, gone = 0;

    /* A one-off is stopped for good. */
    rc = CLI(&out, &err, "run", "shop", "--detach", "--", "sleep 300");
    cr_assert_eq(rc, 0, "%s", err);
    free(out);
    free(err);
    rc = CLI(&out, &err, "ps:stop", "shop", "run.1");
    cr_assert_eq(rc, 0, "ps:stop run.1: %d %s", rc, err);
    cr_assert(strstr(out, "not restarted") != NULL, "%s", out);
    free(out);
    free(err);
    for (int waited = 0; waited < 20000 && !gone; waited += 200) {
        h_get_ps(&C, "shop", &ps);
        gone = h_ps_find(&ps, "run.1") == NULL && h_count_procs(C.dir, "sleep") == 0;
        h_msleep(200);
    }
    cr_assert(gone, "run.1 is still there");

    /* A formation instance comes back, and the command says so. */
    web_pids("shop", 3, before);
    rc = CLI(&out, &err, "ps:stop", "shop", "web.1", "--json");
    cr_assert_eq(rc, 0, "ps:stop web.1: %d %s", rc, err);
    cr_assert(strstr(out, "\"restarted\": true") != NULL, "%s", out);
    free(out);
    free(err);
    for (int waited = 0; waited < 30000; waited += 200) {
        web_pids("shop", 3, after);
        if (after[1] != 0 && after[1] != before[1])
            break;
        h_msleep(200);
    }
    cr_assert(after[1] != 0 && after[1] != before[1], "web.1 did not come back");

    /* config:get */
    OK("config:set", "shop", "GREETING=hello world");
    rc = CLI(&out, &err, "config:get", "shop", "GREETING");
    cr_assert(rc == 0 && strcmp(out, "hello world\n") == 0, "%d [%s] %s", rc, out, err);
    free(out);
    free(err);
    rc = CLI(&out, &err, "config:get", "shop", "NOPE");
    cr_assert(rc == 1 && out[0] == '\0', "%d [%s] %s", rc, out, err);
    free(out);
    free(err);

    /* --version, for the three programs. */
    rc = CLI(&out, &err, "--version");
    cr_assert(rc == 0 && strncmp(out, "drover ", 7) == 0, "%d %s", rc, out);
    free(out);
    free(err);
    {
        char cmd[600], line[128];
        const char *progs[] = {"drover-controller", "drover-agent"};

        for (int i = 0; i < 2; i++) {
            FILE *p;

            snprintf(cmd, sizeof(cmd), "%s/%s --version", h_bin_dir(), progs[i]);
            p = popen(cmd, "r");
            cr_assert_not_null(p);
            cr_assert_not_null(fgets(line, sizeof(line), p));
            cr_assert_eq(pclose(p), 0);
            cr_assert(strncmp(line, progs[i], strlen(progs[i])) == 0, "%s", line);
        }
    }
}

/* On the restart test's cluster: --env-file, reserved names, .slugignore. */
static void
env_file_reserved_names_and_slugignore(void)
{
    char *out = NULL, *err = NULL, path[512], dir[512], cmd[2048];
    FILE *f;
    int rc;

    /* A .env with quotes, export, comments and a multi-line value. */
    snprintf(path, sizeof(path), "%s/app.env", C.dir);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("# settings\nexport DB_URL = postgres://db/x   # inline\nQUOTED='a # b'\n"
          "MULTI=\"one\ntwo\"\nESCAPED=\"x\\ny\"\n",
          f);
    fclose(f);
    rc = CLI(&out, &err, "config:set", "shop", "--env-file", path);
    cr_assert_eq(rc, 0, "config:set --env-file: %d\n%s%s", rc, out, err);
    free(out);
    free(err);
    rc = CLI(&out, &err, "config:get", "shop", "DB_URL");
    cr_assert(rc == 0 && strcmp(out, "postgres://db/x\n") == 0, "[%s]", out);
    free(out);
    free(err);
    rc = CLI(&out, &err, "config:get", "shop", "QUOTED");
    cr_assert(rc == 0 && strcmp(out, "a # b\n") == 0, "[%s]", out);
    free(out);
    free(err);
    rc = CLI(&out, &err, "config:get", "shop", "MULTI");
    cr_assert(rc == 0 && strcmp(out, "one\ntwo\n") == 0, "[%s]", out);
    free(out);
    free(err);
    rc = CLI(&out, &err, "config:get", "shop", "ESCAPED");
    cr_assert(rc == 0 && strcmp(out, "x\ny\n") == 0, "[%s]", out);
    free(out);
    free(err);

    /* A line that is not a variable: named, and nothing changes. */
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("GOOD=1\n\nthis line is wrong\n", f);
    fclose(f);
    rc = CLI(&out, &err, "config:set", "shop", "--env-file", path);
    cr_assert(rc == 2 && strstr(err, "line 3") != NULL, "%d %s", rc, err);
    free(out);
    free(err);
    rc = CLI(&out, &err, "config:get", "shop", "GOOD");
    cr_assert_eq(rc, 1, "GOOD was set from a bad file");
    free(out);
    free(err);

    /* Reserved names, on the command line and in a file. */
    rc = CLI(&out, &err, "config:set", "shop", "PORT=80");
    cr_assert(rc == 2 && strstr(err, "PORT cannot be set") != NULL, "%d %s", rc, err);
    free(out);
    free(err);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("A=1\nDROVER_APP=x\n", f);
    fclose(f);
    rc = CLI(&out, &err, "config:set", "shop", "--env-file", path);
    cr_assert(rc == 2 && strstr(err, "line 2: DROVER_APP") != NULL, "%d %s", rc, err);
    free(out);
    free(err);

    /* .slugignore, .env and .git are left out, and deploy says so. */
    snprintf(dir, sizeof(dir), "%s/src-ignore", C.dir);
    snprintf(cmd, sizeof(cmd),
             "rm -rf '%s' && cp -r '%s' '%s' && cd '%s' && echo SECRET=1 > .env && "
             "mkdir -p .git tmp/cache docs && echo x > .git/HEAD && echo x > tmp/cache/a && "
             "echo x > art.psd && echo x > docs/keep.txt && "
             "printf '# big things\\ntmp/\\n*.psd\\n' > .slugignore",
             dir, app_src(), dir, dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    rc = CLI(&out, &err, "deploy", "shop", dir);
    cr_assert_eq(rc, 0, "deploy: %d\n%s%s", rc, out, err);
    cr_assert(strstr(out, "Left out of the slug (never packed):") != NULL &&
                  strstr(out, ".env") != NULL && strstr(out, ".git/") != NULL,
              "%s", out);
    cr_assert(strstr(out, "Left out of the slug (.slugignore):") != NULL &&
                  strstr(out, "tmp/") != NULL && strstr(out, "art.psd") != NULL,
              "%s", out);
    free(out);
    free(err);
    rc = CLI(&out, &err, "run", "shop", "--", "ls -a; ls docs");
    cr_assert_eq(rc, 0, "run ls: %d %s", rc, err);
    cr_assert(strstr(out, "web.py") != NULL && strstr(out, "keep.txt") != NULL, "%s", out);
    cr_assert(strstr(out, ".env") == NULL && strstr(out, ".git") == NULL &&
                  strstr(out, "tmp") == NULL && strstr(out, "art.psd") == NULL,
              "left-out files are in the slug:\n%s", out);
    free(out);
    free(err);
}

Test(lifecycle, restart_replaces_one_instance_or_all_without_dropping_below_the_quantity)
{
    char *out = NULL, *err = NULL, path[256];
    long before[4], after[4];
    struct h_ps ps;
    int rc, min_up = 99, listed, up;
    FILE *f;

    start_cluster("restart", 7668, 10060, 2);
    deploy_web("shop", "3");

    /* One instance: exactly that one is replaced. */
    web_pids("shop", 3, before);
    rc = CLI(&out, &err, "restart", "shop", "web.2");
    cr_assert_eq(rc, 0, "restart web.2: %d\n%s%s", rc, out, err);
    cr_assert(strstr(out, "Restarting shop.web.2") != NULL, "%s", out);
    free(out);
    free(err);
    cr_assert(wait_web("shop", 3, 30000));
    web_pids("shop", 3, after);
    cr_assert_eq(before[1], after[1], "web.1 was touched");
    cr_assert_eq(before[3], after[3], "web.3 was touched");
    cr_assert(after[2] != 0 && after[2] != before[2], "web.2 was not replaced");

    /* The whole app, watched: never fewer than 3 up. */
    web_pids("shop", 3, before);
    OK("restart", "shop", "--no-wait");
    for (int waited = 0; waited < 60000; waited += 100) {
        h_get_ps(&C, "shop", &ps);
        web_counts(&ps, &listed, &up);
        min_up = up < min_up ? up : min_up;
        web_pids("shop", 3, after);
        if (after[1] != before[1] && after[2] != before[2] && after[3] != before[3] && after[1] &&
            after[2] && after[3] && listed == 3)
            break;
        h_msleep(100);
    }
    for (int k = 1; k <= 3; k++)
        cr_assert(after[k] != 0 && after[k] != before[k], "web.%d was not replaced", k);
    cr_assert_geq(min_up, 3, "only %d web up during the restart", min_up);

    /* Waiting, with --json. */
    rc = CLI(&out, &err, "restart", "shop", "web", "--json");
    cr_assert_eq(rc, 0, "restart web: %d\n%s%s", rc, out, err);
    cr_assert(strstr(out, "\"state\": \"succeeded\"") != NULL, "%s", out);
    free(out);
    free(err);

    /* An instance that does not come back: exit 1 with the reason. */
    snprintf(path, sizeof(path), "%s/crash-shop", shared);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fclose(f);
    rc = CLI(&out, &err, "restart", "shop", "--timeout", "60");
    cr_assert_eq(rc, 1, "a restart that cannot come back must exit 1: %d\n%s%s", rc, out, err);
    cr_assert(strstr(err, "restart of v1 failed") != NULL && strstr(err, "exit code 3") != NULL,
              "%s", err);
    free(out);
    free(err);
    unlink(path);
    h_get_ps(&C, "shop", &ps);
    web_counts(&ps, &listed, &up);
    cr_assert_geq(up, 3, "the failed restart took instances down (%d up)", up);

    /* Bad targets. */
    rc = CLI(&out, &err, "restart", "shop", "web.9");
    cr_assert(rc == 1 && strstr(err, "no running instance web.9") != NULL, "%d %s", rc, err);
    free(out);
    free(err);
    rc = CLI(&out, &err, "ps:restart", "shop", "worker");
    cr_assert(rc == 1 && strstr(err, "no process type 'worker'") != NULL, "%d %s", rc, err);
    free(out);
    free(err);
    cr_assert(wait_web("shop", 3, 30000));
    ps_stop_config_get_and_version();
    env_file_reserved_names_and_slugignore();
}

/* Does anything named like the app live under an agent's releases dir, and
 * how many cached slugs does each agent hold? */
static bool
agent_has_releases(const char *node, const char *app)
{
    char path[512];
    struct stat st;

    snprintf(path, sizeof(path), "%s/agent-%s/releases/%s", C.dir, node, app);
    return stat(path, &st) == 0;
}

static int
count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name), s = strlen(suffix);

        n += l > s && strcmp(e->d_name + l - s, suffix) == 0;
    }
    closedir(d);
    return n;
}

Test(lifecycle, apps_destroy_needs_confirm_then_leaves_nothing_and_nodes_remove)
{
    char *out = NULL, *err = NULL, dir[512], st[32];
    int rc, agent3, ok = 0;

    start_cluster("destroy", 7676, 10100, 2);
    deploy_src("shop", "2", own_src("shop"));
    deploy_web("keep", "1");
    rc = CLI(&out, &err, "run", "shop", "--detach", "--", "sleep 300");
    cr_assert_eq(rc, 0, "%s", err);
    free(out);
    free(err);
    for (int waited = 0; waited < 20000 && h_count_procs(C.dir, "sleep") == 0; waited += 200)
        h_msleep(200);
    cr_assert_eq(h_count_procs(C.dir, "sleep"), 1);
    cr_assert_eq(h_count_procs(C.dir, "python3"), 3);

    snprintf(dir, sizeof(dir), "%s/controller/slugs", C.dir);
    cr_assert_eq(count_files(dir, ".tgz"), 2);

    /* Without --confirm (no terminal here): refused, nothing changes. */
    rc = CLI(&out, &err, "apps:destroy", "shop");
    cr_assert_eq(rc, 2, "apps:destroy without --confirm: %d\n%s%s", rc, out, err);
    cr_assert(strstr(err, "--confirm shop") != NULL, "%s", err);
    free(out);
    free(err);
    rc = CLI(&out, &err, "apps:destroy", "shop", "--confirm", "keep");
    cr_assert_eq(rc, 2, "%d %s", rc, err);
    free(out);
    free(err);
    h_msleep(500);
    cr_assert_eq(h_count_procs(C.dir, "python3"), 3);
    cr_assert_eq(h_count_procs(C.dir, "sleep"), 1);

    /* With it: nothing of shop is left anywhere; keep is untouched. */
    rc = CLI(&out, &err, "apps:destroy", "shop", "--confirm", "shop");
    cr_assert_eq(rc, 0, "apps:destroy: %d\n%s%s", rc, out, err);
    cr_assert(strstr(out, "Destroyed shop") != NULL, "%s", out);
    free(out);
    free(err);
    cr_assert_eq(h_count_procs(C.dir, "sleep"), 0, "the one-off still runs");
    cr_assert_eq(h_count_procs(C.dir, "python3"), 1, "a web of shop still runs");
    rc = CLI(&out, &err, "apps");
    cr_assert(rc == 0 && strstr(out, "shop") == NULL && strstr(out, "keep") != NULL, "%s", out);
    free(out);
    free(err);
    rc = CLI(&out, &err, "ps", "shop");
    cr_assert_eq(rc, 1, "ps of a destroyed app: %d %s", rc, out);
    free(out);
    free(err);
    for (int waited = 0; waited < 10000 && !ok; waited += 200) {
        ok = !agent_has_releases("n1", "shop") && !agent_has_releases("n2", "shop");
        h_msleep(200);
    }
    cr_assert(ok, "an agent still has shop's unpacked releases");
    cr_assert(agent_has_releases("n1", "keep") || agent_has_releases("n2", "keep"),
              "keep's releases went too");
    cr_assert_eq(count_files(dir, ".tgz"), 1, "%d slugs on the controller, want keep's only",
                 count_files(dir, ".tgz"));
    for (int i = 1; i <= 2; i++) {
        char adir[512];

        snprintf(adir, sizeof(adir), "%s/agent-n%d/slugs", C.dir, i);
        for (int waited = 0; waited < 10000 && count_files(adir, ".tar.gz") > 1; waited += 200)
            h_msleep(200);
        cr_assert_leq(count_files(adir, ".tar.gz"), 1, "n%d still caches shop's slug", i);
    }

    /* The name is free again: a new app, starting at v1. */
    deploy_web("shop", "1");
    rc = CLI(&out, &err, "releases", "shop", "--json");
    cr_assert(rc == 0 && strstr(out, "\"version\": 2") == NULL, "%s", out);
    free(out);
    free(err);
    rc = CLI(&out, &err, "logs", "shop", "-n", "1000");
    cr_assert(rc == 0 && strstr(out, "sleep 300") == NULL, "the old app's log is shown:\n%s", out);
    free(out);
    free(err);

    /* nodes:remove: refused for a live node; a down one is forgotten. */
    agent3 = h_start_agent(&C, "n3", "10130-10139", NULL);
    cr_assert(h_wait_log(&C, agent3, "event=ready", 10000));
    rc = CLI(&out, &err, "nodes:remove", "n3");
    cr_assert(rc == 1 && strstr(err, "only a down node") != NULL, "%d %s", rc, err);
    free(out);
    free(err);
    kill(-C.procs[agent3].pid, SIGKILL);
    for (int waited = 0; waited < 20000; waited += 200) {
        if (strcmp(h_node_state(&C, "n3", st, sizeof(st)), "down") == 0)
            break;
        h_msleep(200);
    }
    cr_assert_str_eq(st, "down");
    OK("nodes:remove", "n3");
    cr_assert_str_eq(h_node_state(&C, "n3", st, sizeof(st)), "");
    cr_assert_str_eq(h_node_state(&C, "n1", st, sizeof(st)), "ready");

    /* Everything exits cleanly (under the sanitizers: with no leak). */
    for (int i = 2; i >= 1; i--) {
        int status = h_stop(&C, i, 40000);

        cr_assert(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "agent %d exit %d",
                  i, status);
    }
    rc = h_stop(&C, 0, 10000);
    cr_assert(rc >= 0 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "controller exit %d", rc);
}
