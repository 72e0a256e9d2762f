/* SPDX-License-Identifier: MIT */
/*
 * unpack_test.c: releases are unpacked by drover-unpack, the agent's helper
 * (node-agent/unpack_main.c; the agent does not link libarchive). An agent
 * whose helper is missing says so, clearly, for the release it could not
 * unpack, and goes on: once the helper is there, the deploy again unpacks
 * and runs. The agent runs from a copy of its binary in a
 * directory of the test's own, without drover-unpack beside it.
 * Controller on 15040-15043, app ports 15500-15509.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

static struct h_cluster C;

static void
fini(void)
{
    h_cleanup(&C);
}

TestSuite(unpack, .fini = fini, .timeout = 120);

#define CLI(out, err, ...) h_cli(&C, out, err, (const char *const[]){__VA_ARGS__, NULL})

static void
copy(const char *from, const char *to)
{
    char buf[65536];
    int in = open(from, O_RDONLY | O_CLOEXEC), out;
    ssize_t n;

    cr_assert_geq(in, 0, "%s", from);
    out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    cr_assert_geq(out, 0, "%s", to);
    while ((n = read(in, buf, sizeof buf)) > 0)
        cr_assert_eq(write(out, buf, (size_t)n), n);
    close(in);
    close(out);
}

static const char *
state_of(const char *app, const char *name)
{
    static char st[32];
    struct h_ps ps;
    const struct j_obj *o;

    h_get_ps(&C, app, &ps);
    o = h_ps_find(&ps, name);
    snprintf(st, sizeof st, "%s", o && j_get(o, "state") ? j_get(o, "state") : "");
    return st;
}

Test(unpack, a_missing_helper_is_a_clear_error_and_the_agent_goes_on)
{
    char bin[320], from[512], to[512], app[320], data[320], join[96], *err = NULL, *out = NULL;
    int ag, waited;

    h_init(&C, "unpackhelper", 15040);
    cr_assert(h_wait_log(&C, h_start_controller(&C, NULL), "event=ready", 10000));
    snprintf(bin, sizeof bin, "%s/bin", C.dir);
    cr_assert_eq(mkdir(bin, 0755), 0);
    snprintf(from, sizeof from, "%s/drover-agent", h_bin_dir());
    snprintf(to, sizeof to, "%s/drover-agent", bin);
    copy(from, to);
    snprintf(from, sizeof from, "%s/drover-exec", h_bin_dir());
    snprintf(to, sizeof to, "%s/drover-exec", bin);
    copy(from, to);
    snprintf(data, sizeof data, "DROVER_DATA_DIR=%s/agent-n1", C.dir);
    snprintf(join, sizeof join, "DROVER_JOIN=%s", C.join);
    snprintf(to, sizeof to, "%s/drover-agent", bin);
    {
        const char *const argv[] = {to, NULL};
        const char *const env[] = {data,
                                   "DROVER_NODE_NAME=n1",
                                   join,
                                   "DROVER_PORT_RANGE=15500-15509",
                                   "DROVER_CLUSTER_KEY=" H_CLUSTER_KEY,
                                   "DROVER_METRICS_LISTEN=",
                                   "DROVER_HEARTBEAT_MS=300",
                                   NULL};

        ag = h_start_cmd(&C, "n1", argv, env);
    }
    cr_assert(h_wait_log(&C, ag, "event=ready", 10000), "agent not ready");

    snprintf(app, sizeof app, "%s/app", C.dir);
    cr_assert_eq(mkdir(app, 0755), 0);
    snprintf(to, sizeof to, "%s/Procfile", app);
    {
        FILE *f = fopen(to, "w");

        cr_assert_not_null(f);
        fputs("web: python3 -m http.server $PORT --bind 127.0.0.1\n", f);
        fclose(f);
    }
    cr_assert_eq(CLI(NULL, &err, "apps:create", "unpackme"), 0, "%s", err);
    free(err);
    cr_assert_eq(CLI(&out, &err, "deploy", "unpackme", app, "--no-wait"), 0, "%s %s", out, err);
    free(out);
    free(err);
    cr_assert(h_wait_log(&C, ag, "event=unpack_failed app=unpackme release=1 sha=", 20000),
              "no unpack_failed event");
    cr_assert(h_log_has(&C, ag,
                        "err=\"no unpack helper: drover-unpack is neither in ../libexec/drover/ "
                        "from the agent's binary nor beside it\""),
              "the failure does not say why");
    cr_assert(!h_log_has(&C, ag, "event=unpacked"), "unpacked without its helper");

    /* The helper arrives (the failed deploy left no release): the same
     * deploy again is unpacked and runs. */
    snprintf(from, sizeof from, "%s/drover-unpack", h_bin_dir());
    snprintf(to, sizeof to, "%s/drover-unpack", bin);
    copy(from, to);
    cr_assert_eq(CLI(&out, &err, "deploy", "unpackme", app, "--timeout", "60"), 0, "%s %s", out,
                 err);
    free(out);
    free(err);
    for (waited = 0; strcmp(state_of("unpackme", "web.1"), "up") != 0; waited += 200) {
        if (waited >= 30000) {
            CLI(&out, &err, "ps", "unpackme");
            cr_assert_fail("web.1 never came up once the helper was there (state %s): %s %s",
                           state_of("unpackme", "web.1"), out, err);
        }
        h_msleep(200);
    }
    cr_assert(h_log_has(&C, ag, "event=unpacked app=unpackme release=2"));
}
