/* SPDX-License-Identifier: MIT */
/*
 * High availability across hosts (issue 16), with network namespaces
 * (hosts.h): controller A on host 0, controller B and the PostgreSQL server
 * on host 1, agents on hosts 2-4. The agents join both controllers
 * (DROVER_JOIN=A,B) and the CLI, on host 2, is given both
 * (DROVER_CONTROLLER=A,B): they follow the leader by themselves.
 *
 * Host 0 is cut off (its link down): from the database and from the agents.
 * A stops acting (its lease runs out: it steps down and exits 75); B ends
 * A's session and leads; the agents move to B without restarting anything,
 * and the same CLI command line takes a scale from B. When the partition
 * heals, nothing doubles: the same instances run, once each, and B still
 * leads.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "../pgtest.h"
#include "hosts.h"

static struct hn_cluster H;
static char pgdir[512];

static void
fini(void)
{
    char cmd[1200];

    hn_cleanup(&H);
    if (pgdir[0] != '\0') {
        snprintf(cmd, sizeof(cmd), "%s/tests/pg.sh stop %s >/dev/null 2>&1", DROVER_SOURCE_DIR,
                 pgdir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not stop the server in %s\n", pgdir);
    }
}

TestSuite(ha_hosts, .fini = fini, .timeout = 240);

/* A shell command; its status, and its last output line in out. */
static int sh(char *out, size_t outsz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
sh(char *out, size_t outsz, const char *fmt, ...)
{
    char cmd[2048], line[512];
    va_list ap;
    FILE *f;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    strncat(cmd, " 2>&1", sizeof(cmd) - strlen(cmd) - 1);
    if ((f = popen(cmd, "r")) == NULL)
        return -1;
    if (out != NULL)
        out[0] = '\0';
    while (fgets(line, sizeof(line), f) != NULL)
        if (out != NULL)
            snprintf(out, outsz, "%.*s", (int)strcspn(line, "\n"), line);
    return pclose(f);
}

/* The CLI; what err held from an earlier call is freed first. */
static int
cli(char **err, const char *const *args)
{
    free(*err);
    *err = NULL;
    return hn_cli(&H, NULL, err, args);
}

static int
count_web(void)
{
    struct h_ps ps;

    h_get_ps(&H.h, "shop", &ps);
    return ps.n == h_ps_count(&ps, "web", "up", NULL) ? ps.n : -1;
}

Test(ha_hosts, the_leaders_host_cut_off_the_other_leads_and_nothing_doubles)
{
    static const char *app = DROVER_SOURCE_DIR "/tests/integration/rollapp";
    char out[512], url[256], *err = NULL;
    const char *env[3];
    struct h_ps before, after;
    int a, b, st = 0, rc;

    hn_init(&H, "ha-hosts", 4);
    /* The database on host 1, reachable over the bridge. */
    rc = sh(out, sizeof(out), "ip netns exec %s env PG_LISTEN=%s %s/tests/pg.sh start 5451",
            H.hosts[1].ns, H.hosts[1].addr, DROVER_SOURCE_DIR);
    if (WIFEXITED(rc) && WEXITSTATUS(rc) == 77)
        cr_skip_test("PostgreSQL cannot run here: %s", out);
    cr_assert_eq(rc, 0, "PostgreSQL on host 1: %s", out);
    snprintf(pgdir, sizeof(pgdir), "%s", out);
    snprintf(url, sizeof(url), "DROVER_DATABASE_URL=postgresql://postgres@%s:5451/postgres",
             H.hosts[1].addr);

    /* A on host 0 leads, its API on every address so that the CLI on
     * another host reaches it. */
    env[0] = url;
    env[1] = "DROVER_API_LISTEN=tcp://0.0.0.0:7400";
    env[2] = NULL;
    a = hn_start_controller(&H, env);
    cr_assert(h_wait_log(&H.h, a, "event=leader term=1", 20000), "A did not lead");
    /* B on host 1. */
    {
        char data[320];
        const char *benv[] = {data, url, "DROVER_API_LISTEN=tcp://0.0.0.0:7400",
                              "DROVER_AGENT_LISTEN=tcp://0.0.0.0:7401", NULL};

        snprintf(data, sizeof(data), "DROVER_DATA_DIR=%s/controller-b", H.h.dir);
        b = h_start(&H.h, "controller-b", "drover-controller", benv, H.hosts[1].ns);
        cr_assert(h_wait_log(&H.h, b, "event=standby", 20000), "B did not stand by");
    }
    cr_assert_lt(snprintf(H.h.join, sizeof(H.h.join), "tcp://%s:7401,tcp://%s:7401",
                          H.hosts[0].addr, H.hosts[1].addr),
                 (int)sizeof(H.h.join));
    for (int i = 2; i <= 4; i++)
        hn_start_agent(&H, i, NULL);
    /* The CLI on host 2, given both controllers, for the whole test. */
    snprintf(H.h.netns, sizeof(H.h.netns), "%s", H.hosts[2].ns);
    cr_assert_lt(snprintf(H.h.api, sizeof(H.h.api), "tcp://%s:7400,tcp://%s:7400", H.hosts[0].addr,
                          H.hosts[1].addr),
                 (int)sizeof(H.h.api));

    cr_assert_eq(cli(&err, (const char *const[]){"apps:create", "shop", NULL}), 0, "%s", err);
    cr_assert_eq(cli(&err, (const char *const[]){"deploy", "shop", app, NULL}), 0, "%s", err);
    cr_assert_eq(cli(&err, (const char *const[]){"scale", "shop", "web=3", NULL}), 0, "%s", err);
    for (int w = 0; w < 30000 && count_web() != 3; w += 250)
        h_msleep(250);
    cr_assert_eq(count_web(), 3, "web=3 never came up");
    h_get_ps(&H.h, "shop", &before);

    /* Cut A's host off from the database and the agents. */
    hn_cut(&H, 0);
    cr_assert(h_wait_log(&H.h, a, "event=step_down", 10000), "the cut-off A kept acting");
    cr_assert(h_wait_log(&H.h, b, "event=leading", 20000), "B never took over");
    for (int w = 0; w < 5000 && waitpid(H.h.procs[a].pid, &st, WNOHANG) == 0; w += 50)
        h_msleep(50);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 75, "A did not exit 75 (status %d)", st);
    /* The same CLI command line: it finds the leader. */
    cr_assert_eq(cli(&err, (const char *const[]){"scale", "shop", "web=4", NULL}), 0,
                 "B does not take a scale: %s", err);
    for (int w = 0; w < 30000 && count_web() != 4; w += 250)
        h_msleep(250);
    cr_assert_eq(count_web(), 4, "web=4 never converged under B");
    h_get_ps(&H.h, "shop", &after);
    for (int i = 0; i < before.n; i++) {
        const struct j_obj *o = h_ps_find(&after, j_get(&before.o[i], "name"));

        cr_assert_not_null(o);
        cr_assert_str_eq(j_get(o, "pid"), j_get(&before.o[i], "pid"), "restarted by the failover");
    }

    /* Heal. */
    hn_heal(&H, 0);
    h_msleep(3000);
    cr_assert_eq(count_web(), 4, "something doubled or went after the heal");
    h_get_ps(&H.h, "shop", &before);
    for (int i = 0; i < after.n; i++) {
        const struct j_obj *o = h_ps_find(&before, j_get(&after.o[i], "name"));

        cr_assert_not_null(o);
        cr_assert_str_eq(j_get(o, "pid"), j_get(&after.o[i], "pid"), "restarted by the heal");
    }
    cr_assert_eq(h_count_procs(H.h.dir, "python3"), 4, "an instance runs twice");
    cr_assert_eq(cli(&err, (const char *const[]){"scale", "shop", "web=3", NULL}), 0,
                 "B stopped leading after the heal: %s", err);
    free(err);
}
