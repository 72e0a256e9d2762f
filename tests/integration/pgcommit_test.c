/* SPDX-License-Identifier: MIT */
/*
 * Commits to PostgreSQL run off the controller's loop (issue 16: "libpq
 * calls never block the event loop"; commit.c). A psql session of the test
 * holds a lock on the instances table, so the controller's write of a scale
 * waits in the database:
 *
 *   - meanwhile the controller still serves (its HTTP server answers: under
 *     a commit on the loop it could not), and the scale is not acknowledged
 *     until its change set is in the database;
 *   - once the lock is gone the scale is acknowledged and acted on;
 *   - a lock held past the controller's lock_timeout (3 s) makes the store
 *     refuse the change set: the scale is refused with the store's reason,
 *     nothing of it stays (the model is put back), and the next scale works;
 *   - drains:add and drains:remove write their rows in the thread pool, and
 *     a rollback whose slug is only in the database copies it there.
 *
 * Ports: controller 15060-15063, HTTP 15064, a drain 15065 (nothing listens),
 * app ports 15700-15739,
 * PostgreSQL 5452.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../pgtest.h"
#include "harness.h"

static struct h_cluster C;
static struct pgt PG;
static FILE *LOCKER;

static void
fini(void)
{
    if (LOCKER != NULL)
        pclose(LOCKER);
    LOCKER = NULL;
    h_cleanup(&C);
    pgt_stop(&PG);
}

TestSuite(pgcommit, .fini = fini, .timeout = 180);

/* psql's answer to one query, trimmed ("" when it failed). */
static void
psql_query(const char *sql, char *out, size_t outsz)
{
    char cmd[2048];
    FILE *f;

    snprintf(cmd, sizeof(cmd), "psql -X -q -t -A '%s' -c \"%s\" 2>/dev/null", PG.url, sql);
    out[0] = '\0';
    if ((f = popen(cmd, "r")) == NULL)
        return;
    if (fgets(out, (int)outsz, f) == NULL)
        out[0] = '\0';
    out[strcspn(out, "\n")] = '\0';
    pclose(f);
}

/* A session of the test's that holds the instances table until unlock. */
static void
lock_instances(void)
{
    char cmd[2048], n[32];

    snprintf(cmd, sizeof(cmd), "psql -X -q '%s' >/dev/null 2>&1", PG.url);
    LOCKER = popen(cmd, "w");
    cr_assert_not_null(LOCKER);
    fprintf(LOCKER, "BEGIN;\nLOCK TABLE instances IN ACCESS EXCLUSIVE MODE;\n");
    fflush(LOCKER);
    for (int waited = 0; waited < 10000; waited += 50) {
        psql_query("SELECT count(*) FROM pg_locks WHERE relation = 'instances'::regclass AND "
                   "mode = 'AccessExclusiveLock' AND granted",
                   n, sizeof(n));
        if (strcmp(n, "1") == 0)
            return;
        h_msleep(50);
    }
    cr_assert_fail("the test's psql never got its lock");
}

static void
unlock_instances(void)
{
    fprintf(LOCKER, "COMMIT;\n\\q\n");
    fflush(LOCKER);
    pclose(LOCKER);
    LOCKER = NULL;
}

/* The CLI in a child process, its exit status through waitpid. */
static pid_t
cli_async(const char *const *args)
{
    pid_t pid = fork();

    if (pid == 0)
        _exit(h_cli(&C, NULL, NULL, args));
    cr_assert_gt(pid, 0);
    return pid;
}

static int
web_up(void)
{
    struct h_ps ps;

    h_get_ps(&C, "shop", &ps);
    return h_ps_count(&ps, "web", "up", NULL);
}

static bool
wait_web_up(int want)
{
    for (int waited = 0; waited < 30000; waited += 200) {
        if (web_up() == want)
            return true;
        h_msleep(200);
    }
    return false;
}

Test(pgcommit, a_slow_database_does_not_stop_the_controller_and_a_refusal_changes_nothing)
{
    static const char *app = DROVER_SOURCE_DIR "/tests/integration/rollapp";
    const char *env[] = {NULL, "DROVER_HTTP_LISTEN=127.0.0.1:15064", NULL};
    char url[1200], n[32], *err = NULL, *out = NULL, *body;
    int ctl, agent, st, rc;
    pid_t bg;

    rc = pgt_start(&PG, 5452);
    if (rc == 77)
        cr_skip_test("PostgreSQL cannot run here: %s", PG.why);
    cr_assert_eq(rc, 0, "the test's PostgreSQL did not start: %s", PG.why);
    h_init(&C, "pgcommit", 15060);
    snprintf(url, sizeof(url), "DROVER_DATABASE_URL=%s", PG.url);
    env[0] = url;
    ctl = h_start_controller(&C, env);
    cr_assert(h_wait_log(&C, ctl, "event=leader term=1", 20000), "the controller did not lead");
    agent = h_start_agent(&C, "n1", "15700-15739", NULL);
    cr_assert(h_wait_log(&C, agent, "event=ready", 20000), "the agent is not ready");
    h_cli_ok(&C, (const char *const[]){"apps:create", "shop", NULL});
    h_cli_ok(&C, (const char *const[]){"deploy", "shop", app, NULL});
    h_cli_ok(&C, (const char *const[]){"scale", "shop", "web=1", NULL});
    cr_assert(wait_web_up(1), "web=1 never came up");

    /* The write waits in the database; the controller does not. */
    lock_instances();
    bg = cli_async((const char *const[]){"scale", "shop", "web=2", NULL});
    h_msleep(500);
    body = h_http_get("127.0.0.1", 15064, 3000);
    cr_assert_not_null(body, "the controller did not answer HTTP while a commit waited");
    free(body);
    cr_assert_eq(waitpid(bg, &st, WNOHANG), 0,
                 "the scale was acknowledged before its change set was stored");
    unlock_instances();
    cr_assert_eq(waitpid(bg, &st, 0), bg);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the scale failed once the lock was gone");
    cr_assert(wait_web_up(2), "web=2 never came up");

    /* Held past the controller's lock_timeout: refused, and nothing stays. */
    lock_instances();
    rc = h_cli(&C, NULL, &err, (const char *const[]){"scale", "shop", "web=3", NULL});
    unlock_instances();
    cr_assert_neq(rc, 0, "a scale the store refused was acknowledged");
    cr_assert_not_null(strstr(err, "cannot write its store"), "unclear refusal: %s", err);
    free(err);
    h_msleep(1500);
    cr_assert_eq(web_up(), 2, "the refused scale left something behind");
    cr_assert(h_wait_log(&C, ctl, "event=store_failed", 1000));
    h_cli_ok(&C, (const char *const[]){"scale", "shop", "web=3", NULL});
    cr_assert(wait_web_up(3), "web=3 never came up after the refusal");
    cr_assert(h_wait_log(&C, ctl, "event=store_recovered", 5000));

    /* Drains are written in the thread pool too: stored, listed, removed,
     * and a duplicate is refused. */
    h_cli_ok(&C, (const char *const[]){"drains:add", "shop", "syslog://127.0.0.1:15065", NULL});
    rc = h_cli(&C, &out, &err, (const char *const[]){"drains", "shop", NULL});
    cr_assert_eq(rc, 0, "drains: %s", err);
    cr_assert_not_null(strstr(out, "syslog://127.0.0.1:15065"), "drains lists: %s", out);
    free(out), free(err), out = err = NULL;
    psql_query("SELECT count(*) FROM drains WHERE url = 'syslog://127.0.0.1:15065'", n, sizeof(n));
    cr_assert_str_eq(n, "1", "the drain is not in the database");
    rc = h_cli(&C, NULL, &err,
               (const char *const[]){"drains:add", "shop", "syslog://127.0.0.1:15065", NULL});
    cr_assert_neq(rc, 0, "a duplicate drain was accepted");
    free(err), err = NULL;
    h_cli_ok(&C, (const char *const[]){"drains:remove", "shop", "syslog://127.0.0.1:15065", NULL});
    psql_query("SELECT count(*) FROM drains", n, sizeof(n));
    cr_assert_str_eq(n, "0", "the removed drain is still in the database");

    /* A slug this controller does not have (as after a failover) comes
     * from the database, in the thread pool, for a rollback. */
    h_cli_ok(&C, (const char *const[]){"config:set", "shop", "COLOUR=blue", NULL});
    snprintf(url, sizeof(url), "rm -f %s/controller/slugs/*.tgz", C.dir);
    cr_assert_eq(system(url), 0);
    rc = h_cli(&C, NULL, &err, (const char *const[]){"rollback", "shop", "v1", NULL});
    cr_assert_eq(rc, 0, "rollback with the slug only in the database: %s", err);
    free(err), err = NULL;
    snprintf(url, sizeof(url), "ls %s/controller/slugs/*.tgz >/dev/null 2>&1", C.dir);
    cr_assert_eq(system(url), 0, "the slug was not copied back from the database");
}
