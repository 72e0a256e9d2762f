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

#include "harness.h"
#include "pipes.h"

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

/* A controller at base and agents n1..nN with ranges of width ports from
 * port0; extra: more agent settings (may be NULL). */
static void
start_cluster(const char *test, int base, int nagents, int port0, int width,
              const char *const *extra)
{
    char range[32], name[8];
    int idx;

    h_init(&C, test, base);
    idx = h_start_controller(&C, NULL);
    cr_assert(h_wait_log(&C, idx, "event=ready", 10000), "controller not ready");
    for (int i = 0; i < nagents; i++) {
        snprintf(name, sizeof(name), "n%d", i + 1);
        snprintf(range, sizeof(range), "%d-%d", port0 + width * i, port0 + width * i + width - 1);
        idx = h_start_agent(&C, name, range, extra);
        cr_assert(h_wait_log(&C, idx, "event=ready", 10000), "agent %s not ready", name);
    }
}

/* ---- item 2: the pty helper and a directory the app's user cannot enter ---- */

/* drover's three programs copied into a fresh mkdtemp directory (mode 0700,
 * as a checkout under /root or a mktemp -d clone is). */
static void
private_binaries(void)
{
    static const char *const progs[] = {"drover", "drover-agent", "drover-controller"};
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
    start_cluster("pty-private", 7600, 1, 9400, 20, NULL);
    cr_assert_eq(CLI(NULL, NULL, "apps:create", "shop"), 0);
    cr_assert_eq(CLI(NULL, &err, "deploy", "shop", run_app), 0, "deploy: %s", err);
    free(err);

    /* The suite's pty case (run_test.c), with the copied CLI. */
    snprintf(ctl, sizeof(ctl), "DROVER_CONTROLLER=%s", C.api);
    snprintf(script_cmd, sizeof(script_cmd),
             "stty rows 31 cols 101; exec %s/drover run shop -- "
             "'tty; stty size; echo uid=$(id -u); printf ready; read x; echo got:$x; exit 3'",
             bin_copy);
    const char *argv[] = {"/usr/bin/script", "-eqfc", script_cmd, "/dev/null", NULL};
    const char *env[] = {"PATH=/usr/bin:/bin", ctl, "DROVER_TIMEOUT_MS=5000",
                         "DROVER_API_TOKEN=" H_API_TOKEN, NULL};
    p_spawn(&C, &ch, argv, env, true);
    cr_assert(p_wait_out(&ch, "ready", 20000), "no prompt: %s", ch.obuf ? ch.obuf : "");
    cr_assert(strstr(ch.obuf, "could not start") == NULL, "%s", ch.obuf);
    cr_assert(strstr(ch.obuf, "/dev/pts/") != NULL, "no pseudo-terminal: %s", ch.obuf);
    cr_assert(strstr(ch.obuf, "31 101") != NULL, "window size not passed: %s", ch.obuf);
    /* It runs as DROVER_RUN_AS (nobody), not as the root helper. */
    cr_assert(strstr(ch.obuf, "uid=65534") != NULL, "not nobody: %s", ch.obuf);
    p_write(&ch, "abc\r", 4);
    cr_assert(p_wait_out(&ch, "got:abc", 20000), "no answer: %s", ch.obuf);
    rc = p_wait_exit(&ch, 20000);
    cr_assert_eq(rc, 3, "exit code through the pty: %d (%s)", rc, ch.obuf);
    p_free(&ch);
}
