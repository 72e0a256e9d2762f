/* SPDX-License-Identifier: MIT */
/*
 * main.c: drover-agent starts here: configuration, the loop, the agent.
 * Everything else is in the files named in agt.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agt.h"
#include "log.h"

static const char usage[] =
    "usage: drover-agent\n"
    "Configured only by the environment: DROVER_JOIN, DROVER_NODE_NAME, DROVER_ADVERTISE,\n"
    "DROVER_PORT_RANGE, DROVER_CAPACITY, DROVER_DATA_DIR, DROVER_HEARTBEAT_MS (see README).\n";

int
main(int argc, char **argv)
{
    static struct agt_config cfg;
    uv_loop_t loop;
    struct agt *a;
    int rc;

    if (argc == 3 && strcmp(argv[1], "--tty-exec") == 0)
        return agt_pipe_tty_exec(argv[2]); /* internal: see pipe.c */
    if (argc > 1) {
        bool help = strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0;

        fputs(usage, help ? stdout : stderr);
        return help ? EXIT_SUCCESS : 2;
    }
    log_init("agent");
    agt_config_load(&cfg); /* exits 78 on any bad variable */
    rc = uv_loop_init(&loop);
    if (rc < 0)
        log_fatal(1, "loop_failed", "err=%s", log_q(uv_strerror(rc)));
    a = agt_new(&loop, &cfg, &rc);
    if (!a)
        log_fatal(1, "start_failed", "data_dir=%s err=%s", log_q(cfg.data_dir),
                  log_q(uv_strerror(rc)));
    rc = agt_start(a);
    if (rc < 0)
        log_fatal(1, "start_failed", "err=%s", log_q(uv_strerror(rc)));
    uv_run(&loop, UV_RUN_DEFAULT);
    agt_free(a);
    if (uv_loop_close(&loop) < 0)
        log_warn("loop_busy", "err=%s", "handles_left_open");
    return EXIT_SUCCESS;
}
