/* SPDX-License-Identifier: MIT */
/*
 * main.c: drover-agent starts here: configuration, the loop, the agent.
 * Everything else is in the files named in agt.h.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agt.h"
#include "log.h"
#include "notify.h"
#include "version.h"

/*
 * Whatever descriptors we inherited beyond stdin, stdout and stderr (a
 * careless parent, a supervisor's socket) must not reach app processes:
 * mark them close-on-exec before anything else opens. libuv, nanomsg and
 * libarchive open their own with O_CLOEXEC.
 */
static void
cloexec_inherited(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        int fd = atoi(de->d_name);

        if (fd > 2 && fd != dirfd(d))
            fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
    }
    closedir(d);
}

static const char usage[] =
    "usage: drover-agent [--version]\n"
    "Configured only by the environment: DROVER_CLUSTER_KEY (required), DROVER_JOIN (one\n"
    "controller, or a comma-separated list of them),\n"
    "DROVER_NODE_NAME, DROVER_ADVERTISE, DROVER_PORT_RANGE, DROVER_CAPACITY, DROVER_DATA_DIR,\n"
    "DROVER_HEARTBEAT_MS, DROVER_LEAVE_TIMEOUT_MS, DROVER_RUN_AS, DROVER_UID_RANGE,\n"
    "DROVER_CGROUP_ROOT, DROVER_CGROUPS, DROVER_CLUSTER_KEY_NEXT, DROVER_ECHO_APP_LOGS\n"
    "(see drover-agent(8) and the README).\n";

int
main(int argc, char **argv)
{
    static struct agt_config cfg;
    uv_loop_t loop;
    struct agt *a;
    int rc;

    if (argc >= 2 && strcmp(argv[1], "--exec") == 0)
        return agt_exec_main(argc, argv); /* internal: see exec.c */
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("drover-agent %s\n", DROVER_VERSION);
        return EXIT_SUCCESS;
    }
    if (argc > 1) {
        bool help = strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0;

        fputs(usage, help ? stdout : stderr);
        return help ? EXIT_SUCCESS : 2;
    }
    cloexec_inherited();
    umask(022); /* releases must be readable by DROVER_RUN_AS */
    log_init("agent");
    notify_init();
    agt_config_load(&cfg); /* exits 78 on any bad variable */
    rc = uv_loop_init(&loop);
    if (rc < 0)
        log_fatal(1, "loop_failed", "err=%s", log_q(uv_strerror(rc)));
    a = agt_new(&loop, &cfg, &rc);
    if (!a)
        log_fatal(1, "start_failed", "data_dir=%s err=%s", log_q(cfg.data_dir),
                  log_q(uv_strerror(rc)));
    agt_config_check_dirs(&cfg);
    rc = agt_start(a);
    if (rc < 0)
        log_fatal(1, "start_failed", "err=%s", log_q(uv_strerror(rc)));
    /* Running (its instances are supervised even before the controller
     * answers): tell systemd, and ping its watchdog from the loop. */
    notify_send("READY=1");
    if ((rc = notify_watchdog_start(&loop)) < 0)
        log_warn("watchdog", "err=%s", log_q(uv_strerror(rc)));
    uv_run(&loop, UV_RUN_DEFAULT);
    rc = agt_exit_code(a);
    agt_free(a);
    if (uv_loop_close(&loop) < 0)
        log_warn("loop_busy", "err=%s", "handles_left_open");
    return rc;
}
