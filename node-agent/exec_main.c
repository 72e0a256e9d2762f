/* SPDX-License-Identifier: MIT */
/*
 * exec_main.c: drover-exec, the exec helper (exec.c) as a binary of its own.
 *
 * `drover-agent --exec` does the same, but the agent links twenty shared
 * libraries, and loading them costs more per start (about 11 ms here) than
 * everything the helper does. drover-exec links only libc; the agent uses it
 * when it sits beside the agent's own binary, and itself otherwise.
 */
#include <string.h>

#include "agt.h"

int
main(int argc, char **argv)
{
    /* agt_exec_main reads its options from argv[2]: the agent's own form
     * is `drover-agent --exec OPTIONS`. */
    if (argc < 2 || strcmp(argv[1], "--exec") != 0)
        return 127;
    return agt_exec_main(argc, argv);
}
