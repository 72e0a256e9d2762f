/* SPDX-License-Identifier: MIT */
/*
 * High availability (issue 16): two controllers share one private
 * PostgreSQL server (tests/pg.sh); three agents run the apps.
 *
 *   - SIGKILL the leader in the middle of a scale, and in the middle of a
 *     rolling deploy: the standby leads, the next command succeeds, the
 *     deploy finishes or reverts (never half-way), no instance runs twice,
 *     no running instance is restarted; the killed controller restarted
 *     stands by. The failover time (SIGKILL to a scale acknowledged by the
 *     new leader) is printed.
 *   - Fencing: SIGSTOP the leader past its lease; the standby takes over and
 *     changes the formation; SIGCONT the old one: it steps down at once and
 *     nothing it does takes effect.
 *   - A wrong DROVER_DATABASE_URL exits 78; an unreachable database is
 *     retried with backoff, logged, and nothing is served meanwhile.
 *
 * The agents and the CLI are given both controllers (DROVER_JOIN and
 * DROVER_CONTROLLER lists) and follow the leader by themselves: nothing is
 * re-pointed after a failover.
 *
 * Ports: per test a block of 11 from 7760 (A, B, the forwarder), app ports
 * 12000-12459, PostgreSQL 5446-5448.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../pgtest.h"
#include "harness.h"

/* Each test its own block (tests run two at a time): A and B. */
static int API_A, API_B;

static struct h_cluster C;
static struct pgt PG;

/* ---- the cluster ---- */

static void
fini(void)
{
    h_cleanup(&C);
    pgt_stop(&PG);
}

TestSuite(ha, .fini = fini, .timeout = 240);

/* The CLI; what out and err held from an earlier call is freed first. */
static int
cli_fresh(char **out, char **err, const char *const *args)
{
    if (out != NULL) {
        free(*out);
        *out = NULL;
    }
    if (err != NULL) {
        free(*err);
        *err = NULL;
    }
    return h_cli(&C, out, err, args);
}

#define CLI(out, err, ...) cli_fresh(out, err, (const char *const[]){__VA_ARGS__, NULL})

static void
need_pg(int port)
{
    int rc = pgt_start(&PG, port);

    if (rc == 77)
        cr_skip_test("PostgreSQL cannot run here: %s", PG.why);
    cr_assert_eq(rc, 0, "the test's PostgreSQL did not start: %s", PG.why);
}

/* Start controller name with its API on api (agents on api + 1..3). */
static int
start_ctl(const char *name, int api, const char *url)
{
    static char env[4][8][1200];
    static int slot;
    char(*e)[1200] = env[slot++ % 4];
    const char *v[8];
    int n = 0;

    snprintf(e[n], sizeof(e[n]), "DROVER_DATA_DIR=%s/%s", C.dir, name);
    v[n] = e[n], n++;
    snprintf(e[n], sizeof(e[n]), "DROVER_API_LISTEN=tcp://127.0.0.1:%d", api);
    v[n] = e[n], n++;
    snprintf(e[n], sizeof(e[n]), "DROVER_AGENT_LISTEN=tcp://127.0.0.1:%d", api + 1);
    v[n] = e[n], n++;
    snprintf(e[n], sizeof(e[n]), "DROVER_DATABASE_URL=%s", url);
    v[n] = e[n], n++;
    v[n] = "DROVER_NODE_TIMEOUT_MS=5000", n++;
    v[n] = NULL;
    return h_start(&C, name, "drover-controller", v, NULL);
}

static void
use_api(int api)
{
    snprintf(C.api, sizeof(C.api), "tcp://127.0.0.1:%d", api);
}

/* The CLI's DROVER_CONTROLLER: both, as a user of two controllers sets it. */
static void
use_both(void)
{
    snprintf(C.api, sizeof(C.api), "tcp://127.0.0.1:%d,tcp://127.0.0.1:%d", API_A, API_B);
}

static uint64_t
ms_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Two controllers (A leads), the forwarder on A, three agents. */
static void
start_ha(const char *test, int base, int pgport, int *a, int *b)
{
    char range[32], name[8], join[96], leader[64];
    const char *aenv[] = {join, NULL};
    int idx;

    API_A = base;
    API_B = base + 4;
    h_init(&C, test, API_A);
    need_pg(pgport);
    *a = start_ctl("ctl-a", API_A, PG.url);
    cr_assert(h_wait_log(&C, *a, "event=leader term=1", 20000), "A did not lead");
    *b = start_ctl("ctl-b", API_B, PG.url);
    cr_assert(h_wait_log(&C, *b, "event=standby", 20000), "B did not stand by");
    snprintf(leader, sizeof(leader), "leader=tcp://127.0.0.1:%d", API_A);
    cr_assert(h_log_has(&C, *b, leader), "B does not name the leader");
    snprintf(join, sizeof(join), "DROVER_JOIN=tcp://127.0.0.1:%d,tcp://127.0.0.1:%d", API_A + 1,
             API_B + 1);
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "n%d", i + 1);
        snprintf(range, sizeof(range), "%d-%d", 12000 + 160 * ((base - 7760) / 12) + 50 * i,
                 12000 + 160 * ((base - 7760) / 12) + 50 * i + 39);
        idx = h_start_agent(&C, name, range, aenv);
        cr_assert(h_wait_log(&C, idx, "event=ready", 20000), "agent %s not ready", name);
    }
    use_both();
}

/* Wait until ps shows exactly want web instances up and nothing else
 * live; returns false on timeout. */
static bool
wait_web_up(int want, int timeout_ms, struct h_ps *ps)
{
    for (int waited = 0; waited < timeout_ms; waited += 250) {
        h_get_ps(&C, "shop", ps);
        if (h_ps_count(ps, "web", "up", NULL) == want && ps->n == want)
            return true;
        h_msleep(250);
    }
    return false;
}

static void
kill_ctl(int idx, int sig)
{
    cr_assert_eq(kill(C.procs[idx].pid, sig), 0);
}

/* Every web pid in before is still there, the same instance, not restarted. */
static void
assert_untouched(const struct h_ps *before, const struct h_ps *after)
{
    for (int i = 0; i < before->n; i++) {
        const char *name = j_get(&before->o[i], "name");
        const struct j_obj *o = h_ps_find(after, name);

        cr_assert_not_null(o, "%s is gone after the failover", name);
        cr_assert_str_eq(j_get(o, "pid"), j_get(&before->o[i], "pid"), "%s was restarted", name);
        cr_assert_str_eq(j_get(o, "restarts"), "0", "%s restarted", name);
        cr_assert_str_eq(j_get(o, "node"), j_get(&before->o[i], "node"), "%s moved", name);
    }
}

/* The CLI in a child process (a command in flight when the leader dies),
 * pointed at A alone: with both it would send the command again to B once
 * A is gone, and land after the test's own next command. */
static pid_t
cli_async(const char *const *args)
{
    pid_t pid = fork();

    if (pid == 0) {
        int rc;

        use_api(API_A);
        rc = h_cli(&C, NULL, NULL, args);

        _exit(rc);
    }
    cr_assert_gt(pid, 0);
    return pid;
}

Test(ha, sigkill_the_leader_during_a_scale)
{
    static const char *app = DROVER_SOURCE_DIR "/tests/integration/rollapp";
    struct h_ps before, after;
    char *err = NULL, *out = NULL, want[96];
    uint64_t t0, t1;
    int a, b, a2, st, rc;
    pid_t bg;

    start_ha("ha-scale", 7760, 5446, &a, &b);
    cr_assert_eq(CLI(NULL, &err, "apps:create", "shop"), 0, "%s", err);
    cr_assert_eq(CLI(NULL, &err, "deploy", "shop", app), 0, "deploy: %s", err);
    cr_assert_eq(CLI(NULL, &err, "scale", "shop", "web=3"), 0, "%s", err);
    cr_assert(wait_web_up(3, 30000, &before), "web=3 never came up");
    cr_assert_eq(h_count_procs(C.dir, "python3"), 3);

    /* A scale in flight, and the leader dies under it. */
    bg = cli_async((const char *const[]){"scale", "shop", "web=5", NULL});
    h_msleep(20);
    t0 = ms_now();
    kill_ctl(a, SIGKILL);
    cr_assert(h_wait_log(&C, b, "event=leading", 20000), "B did not take the lead");
    cr_assert(h_log_has(&C, b, "event=leader term=2"));
    printf("ha failover: B leads %llu ms after the SIGKILL\n", (unsigned long long)(ms_now() - t0));
    if (getenv("HA_KEEP") != NULL) {
        char cp[1200];
        snprintf(cp, sizeof(cp), "cp %s /tmp/i16m/b-last.log; cp %s /tmp/i16m/a-last.log",
                 C.procs[b].log, C.procs[a].log);
        if (system(cp) != 0) {
        }
    }
    /* The first scale acknowledged by the new leader: the failover time. */
    do {
        rc = CLI(NULL, &err, "scale", "shop", "web=4");
        if (rc != 0)
            h_msleep(50);
    } while (rc != 0 && ms_now() - t0 < 30000);
    t1 = ms_now();
    cr_assert_eq(rc, 0, "the new leader never took a scale: %s", err);
    printf("ha failover: SIGKILL to a scale acknowledged by the new leader: %llu ms\n",
           (unsigned long long)(t1 - t0));
    fflush(stdout);
    cr_assert_lt(t1 - t0, 5000, "failover took %llu ms (goal: under 5 s)",
                 (unsigned long long)(t1 - t0));

    waitpid(bg, &st, 0); /* its controller died under it: it says so and fails */
    cr_assert(wait_web_up(4, 30000, &after), "web=4 never converged under the new leader");
    assert_untouched(&before, &after);
    for (int waited = 0; waited < 5000 && h_count_procs(C.dir, "python3") != 4; waited += 100)
        h_msleep(100);
    cr_assert_eq(h_count_procs(C.dir, "python3"), 4, "an instance runs twice, or one is missing");

    /* The killed controller, restarted, stands by and names the leader. */
    a2 = start_ctl("ctl-a2", API_A, PG.url);
    cr_assert(h_wait_log(&C, a2, "event=standby", 20000), "the restarted A did not stand by");
    snprintf(want, sizeof(want), "leader=tcp://127.0.0.1:%d", API_B);
    cr_assert(h_log_has(&C, a2, want));
    /* A CLI pointed at the standby is told where the leader is and follows
     * it (common/rpc.c): the scale is the leader's, never the standby's. */
    use_api(API_A);
    rc = CLI(&out, &err, "scale", "shop", "web=2");
    cr_assert_eq(rc, 0, "the CLI did not follow the standby to the leader: %s", err);
    use_both();
    cr_assert(wait_web_up(2, 30000, &after), "the leader never took the scale sent to the standby");
    /* status names the leader, its term and the standby. */
    snprintf(want, sizeof(want),
             "Controllers: tcp://127.0.0.1:%d leads (term 2, PostgreSQL); standing by: "
             "tcp://127.0.0.1:%d",
             API_B, API_A);
    for (int w = 0; w < 5000; w += 250) {
        cr_assert_eq(CLI(&out, &err, "status"), 0, "%s", err);
        if (strstr(out, want) != NULL)
            break;
        h_msleep(250);
    }
    cr_assert(strstr(out, want) != NULL, "status: %s", out);
    free(out);
    free(err);
}

/* web instances of release rel (one-offs are not counted) */
static int
count_release(const struct h_ps *ps, const char *rel)
{
    int n = 0;

    for (int i = 0; i < ps->n; i++)
        n += strcmp(j_get(&ps->o[i], "type"), "web") == 0 &&
             strcmp(j_get(&ps->o[i], "release"), rel) == 0;
    return n;
}

static const char *
web_release(const struct h_ps *ps)
{
    for (int i = 0; i < ps->n; i++)
        if (strcmp(j_get(&ps->o[i], "type"), "web") == 0)
            return j_get(&ps->o[i], "release");
    return "";
}

/* Wait until ps shows want web instances up, all of one release (kept in
 * rel); false on timeout. */
static bool
wait_one_release(int want, int timeout_ms, struct h_ps *ps, char *rel, size_t relsz)
{
    for (int waited = 0; waited < timeout_ms; waited += 250) {
        h_get_ps(&C, "shop", ps);
        if (h_ps_count(ps, "web", NULL, NULL) == want &&
            h_ps_count(ps, "web", "up", NULL) == want &&
            count_release(ps, web_release(ps)) == want) {
            snprintf(rel, relsz, "%s", web_release(ps));
            return true;
        }
        h_msleep(250);
    }
    return false;
}

/* `drover run` attached, its stderr in DIR/attached.err, the CLI's
 * request timeout short (2 s) so that losing the controller shows soon. */
static pid_t
attached_run(void)
{
    pid_t pid = fork();

    if (pid == 0) {
        char *err = NULL, path[400];
        FILE *f;
        int rc = h_cli_env(&C, NULL, &err, (const char *const[]){"DROVER_TIMEOUT_MS=2000", NULL},
                           (const char *const[]){"run", "shop", "--", "sleep 300", NULL});

        snprintf(path, sizeof(path), "%s/attached.err", C.dir);
        if ((f = fopen(path, "w")) != NULL) {
            fputs(err != NULL ? err : "", f);
            fclose(f);
        }
        _exit(rc);
    }
    cr_assert_gt(pid, 0);
    return pid;
}

Test(ha, sigkill_the_leader_during_a_rolling_deploy)
{
    static const char *app = DROVER_SOURCE_DIR "/tests/integration/rollapp";
    char v2[600], cmd[1400], old[32], end[32], detached[32], *out = NULL, *err = NULL;
    const struct j_obj *o;
    struct h_ps ps;
    char pid[32];
    int a, b, st, ast = 0;
    pid_t bg, attached;

    start_ha("ha-deploy", 7772, 5447, &a, &b);
    cr_assert_eq(CLI(NULL, &err, "apps:create", "shop"), 0, "%s", err);
    cr_assert_eq(CLI(NULL, &err, "deploy", "shop", app), 0, "deploy: %s", err);
    cr_assert_eq(CLI(NULL, &err, "scale", "shop", "web=3"), 0, "%s", err);
    /* A slow boot, so that the next rollout is long enough to be cut. */
    cr_assert_eq(CLI(NULL, &err, "config:set", "shop", "BOOT_SLEEP=1.5"), 0, "%s", err);
    h_msleep(500);
    cr_assert(wait_one_release(3, 60000, &ps, old, sizeof(old)), "web=3 never settled");
    /* One-offs: a detached one, and an attached one whose CLI talks to A. */
    cr_assert_eq(CLI(&out, &err, "run", "shop", "--detach", "--", "sleep 300"), 0, "%s", err);
    cr_assert_eq(sscanf(out, "%31s", detached), 1);
    attached = attached_run();
    for (int w = 0; w < 20000 && h_ps_count(&ps, "run", "up", NULL) < 2; w += 250) {
        h_msleep(250);
        h_get_ps(&C, "shop", &ps);
    }
    cr_assert_eq(h_ps_count(&ps, "run", "up", NULL), 2, "the one-offs never ran");
    /* Its pid once the agent has reported the process itself (a spawn's
     * pid reaches the controller a report after the state): the sleep. */
    pid[0] = '\0';
    for (int w = 0; w < 10000 && pid[0] == '\0'; w += 250) {
        char path[64], comm[32] = "";
        FILE *f;

        h_get_ps(&C, "shop", &ps);
        cr_assert_not_null(o = h_ps_find(&ps, detached));
        snprintf(path, sizeof(path), "/proc/%s/comm", j_get(o, "pid"));
        if ((f = fopen(path, "r")) != NULL) {
            if (fgets(comm, sizeof(comm), f) != NULL && strncmp(comm, "sleep", 5) == 0)
                snprintf(pid, sizeof(pid), "%s", j_get(o, "pid"));
            fclose(f);
        }
        if (pid[0] == '\0')
            h_msleep(250);
    }
    cr_assert_neq(pid[0], '\0', "ps never showed the detached one-off's sleep as its pid");

    snprintf(v2, sizeof(v2), "%s/rollapp-v2", C.dir);
    snprintf(cmd, sizeof(cmd), "cp -r '%s' '%s' && echo 2 > '%s/version.txt'", app, v2, v2);
    cr_assert_eq(system(cmd), 0);
    bg = cli_async((const char *const[]){"deploy", "shop", v2, NULL});
    /* Into the rollout: the first new instance is there. */
    for (int w = 0; w < 20000; w += 100) {
        h_get_ps(&C, "shop", &ps);
        if (count_release(&ps, old) < h_ps_count(&ps, "web", NULL, NULL))
            break;
        h_msleep(100);
    }
    cr_assert_lt(count_release(&ps, old), h_ps_count(&ps, "web", NULL, NULL),
                 "the rollout never started");
    kill_ctl(a, SIGKILL);
    cr_assert(h_wait_log(&C, b, "event=leading", 20000), "B did not take the lead");

    /* The deploy goes on under B: all new (finished) or all old (reverted). */
    cr_assert(wait_one_release(3, 90000, &ps, end, sizeof(end)),
              "the deploy stopped half-way: %d instances, %d of %s", ps.n, count_release(&ps, old),
              old);
    printf("ha deploy across a failover: ended on %s (%s)\n", end,
           strcmp(end, old) == 0 ? "reverted" : "finished");
    for (int w = 0; w < 10000 && h_count_procs(C.dir, "python3") != 3; w += 100)
        h_msleep(100);
    cr_assert_eq(h_count_procs(C.dir, "python3"), 3, "an instance runs twice");

    /* The detached one-off runs on, the same process; the attached
     * session ended with a clear message, it did not hang. */
    h_get_ps(&C, "shop", &ps);
    cr_assert_not_null(o = h_ps_find(&ps, detached), "%s is gone", detached);
    cr_assert_str_eq(j_get(o, "pid"), pid, "%s was restarted", detached);
    for (int w = 0; w < 60000 && waitpid(attached, &ast, WNOHANG) == 0; w += 250)
        h_msleep(250);
    cr_assert(WIFEXITED(ast) && WEXITSTATUS(ast) != 0, "the attached run hangs (status %d)", ast);
    snprintf(cmd, sizeof(cmd), "grep -q 'lost the controller at' '%s/attached.err'", C.dir);
    cr_assert_eq(system(cmd), 0, "the attached run did not say it lost the controller");
    waitpid(bg, &st, 0);
    free(out);
    free(err);
}

/* Has agent idx synced with B since byte `from` of its log (summoned by
 * it, or heard from it after a silence), within timeout_ms? Only B can
 * cause either while A is frozen. */
static bool
wait_followed_b(int idx, long from, int timeout_ms)
{
    long deadline = h_mono_ms() + timeout_ms;

    do {
        if (h_log_after(&C, idx, "event=summoned", from) >= 0 ||
            h_log_after(&C, idx, "event=controller_heard", from) >= 0)
            return true;
        h_msleep(20);
    } while (h_mono_ms() < deadline);
    return false;
}

Test(ha, a_frozen_leader_is_fenced_off)
{
    static const char *app = DROVER_SOURCE_DIR "/tests/integration/rollapp";
    struct h_ps before, after;
    char *err = NULL;
    int a, b, st = 0;
    long mark[5];

    start_ha("ha-fence", 7784, 5448, &a, &b);
    cr_assert_eq(CLI(NULL, &err, "apps:create", "shop"), 0, "%s", err);
    cr_assert_eq(CLI(NULL, &err, "deploy", "shop", app), 0, "deploy: %s", err);
    cr_assert_eq(CLI(NULL, &err, "scale", "shop", "web=3"), 0, "%s", err);
    cr_assert(wait_web_up(3, 30000, &before), "web=3 never came up");

    for (int i = 2; i < 5; i++)
        mark[i] = h_log_size(&C, i);
    kill_ctl(a, SIGSTOP);
    /* B waits out A's lease (renewed older than 4 s on the database's
     * clock), ends A's session, and leads. */
    cr_assert(h_wait_log(&C, b, "event=leading", 20000), "B never took over from a frozen A");
    cr_assert(h_log_has(&C, b, "event=leader_expired"));
    /* The agents' watches at the frozen A are held long (60 s), and A
     * closed no connection: B, hearing their UDP heartbeats and holding no
     * watch of them, summons each (controller/beat.c), so they follow it
     * at once rather than when their watch at A runs out. An agent whose
     * request was in flight at A when it froze (the report of an instance
     * just started) finds B on its own as well: its silence check dials the
     * next controller, and B's answer ends the silence (controller_heard,
     * which the frozen A cannot cause). Either way, within seconds. */
    for (int i = 2; i < 5; i++)
        cr_assert(wait_followed_b(i, mark[i], 5000), "agent %s did not follow B", C.procs[i].name);
    cr_assert_eq(CLI(NULL, &err, "scale", "shop", "web=2"), 0, "%s", err);
    cr_assert(wait_web_up(2, 10000, &after), "web=2 never converged under B");

    /* A wakes up: it must step down before doing anything. */
    kill_ctl(a, SIGCONT);
    cr_assert(h_wait_log(&C, a, "event=step_down", 10000), "A did not step down");
    for (int w = 0; w < 5000 && waitpid(C.procs[a].pid, &st, WNOHANG) == 0; w += 50)
        h_msleep(50);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 75, "A did not exit 75 (status %d)", st);
    cr_assert_not(h_log_has(&C, a, "event=store_error"),
                  "A tried to write after resuming (it should stop before that)");
    /* Nothing A did took effect: B still leads term 2, the formation is
     * B's, the same two instances run. */
    h_msleep(2000);
    h_get_ps(&C, "shop", &before);
    cr_assert_eq(before.n, 2);
    assert_untouched(&after, &before);
    cr_assert_eq(h_count_procs(C.dir, "python3"), 2);
    cr_assert_eq(CLI(NULL, &err, "scale", "shop", "web=3"), 0, "B stopped leading: %s", err);
    free(err);
}

Test(ha, a_wrong_database_url_exits_78)
{
    const char *env[] = {"DROVER_DATABASE_URL=mysql://root@localhost/drover", NULL};
    int idx, st = 0;

    h_init(&C, "ha-url", 7796); /* exits before binding */
    idx = h_start_controller(&C, env);
    for (int w = 0; w < 10000 && waitpid(C.procs[idx].pid, &st, WNOHANG) == 0; w += 50)
        h_msleep(50);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 78, "status %d", st);
    cr_assert(h_log_has(&C, idx, "DROVER_DATABASE_URL: not a postgresql:// URL"));
}

Test(ha, an_unreachable_database_is_retried_and_nothing_is_served)
{
    const char *env[] = {"DROVER_DATABASE_URL=postgresql://postgres@/postgres?host=/tmp/"
                         "drover-no-such-pg&port=5459",
                         NULL};
    char *err = NULL;
    int idx;

    h_init(&C, "ha-down", 7796); /* binds nothing while it retries */
    idx = h_start_controller(&C, env);
    cr_assert(h_wait_log(&C, idx, "event=store_unreachable backend=postgresql attempt=3", 15000),
              "no retries logged");
    cr_assert(h_log_has(&C, idx, "No such file or directory"), "the reason is not logged");
    cr_assert_not(h_log_has(&C, idx, "event=ready"), "it serves without its state");
    cr_assert_neq(CLI(NULL, &err, "apps"), 0, "it answered without its state");
    free(err);
}
