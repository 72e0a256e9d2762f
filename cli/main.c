/* SPDX-License-Identifier: MIT */
/*
 * main.c: `drover VERB [ARGS]` — find the verb and hand it the rest.
 *
 * Nothing else lives here: the verb table and help texts are in verbs.c, each
 * verb in its cmd_*.c. Exit statuses: 0 success, 1 failure, 2 bad usage.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "version.h"

static int
help(int argc, char **argv)
{
    const struct cli_verb *v;

    if (argc == 0) {
        cli_help(stdout);
        return CLI_OK;
    }
    if (argc > 1)
        return cli_usage(NULL, "help takes at most one verb");
    v = cli_verb_find(argv[0]);
    if (v == NULL)
        return cli_usage(NULL, "unknown verb '%s'", argv[0]);
    cli_verb_help(stdout, v);
    return CLI_OK;
}

int
main(int argc, char **argv)
{
    const struct cli_verb *v;

    if (argc < 2)
        return cli_usage(NULL, "no verb given");
    if (strcmp(argv[1], "--version") == 0) {
        puts("drover " DROVER_VERSION);
        return CLI_OK;
    }
    if (strcmp(argv[1], "help") == 0)
        return help(argc - 2, argv + 2);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
        return help(0, NULL);
    v = cli_verb_find(argv[1]);
    if (v == NULL)
        return cli_usage(NULL, "unknown verb '%s'", argv[1]);
    if (cli_args_want_help(argc - 2, argv + 2)) {
        cli_verb_help(stdout, v);
        return CLI_OK;
    }
    return v->run(argc - 2, argv + 2);
}
