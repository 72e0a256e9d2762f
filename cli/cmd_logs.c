/* SPDX-License-Identifier: MIT */
/*
 * cmd_logs.c: `drover logs APP [-n N] [--tail] [--source SRC | --type TYPE]`.
 *
 *   2026-11-24T10:00:00.123Z web.1@n2: GET / 200
 *   2026-11-24T10:00:01.001Z drover: web.2 starting -> up
 *
 * --tail follows the stream with long polls (LogsReq with after_seq and
 * wait_ms): the controller answers as soon as a matching line arrives, so
 * a new line shows within the agents' batching delay (50 ms). It runs
 * until interrupted. A reader that fell behind the controller's history is
 * told on stderr how many lines it missed. --json writes one compact JSON
 * object per line (ts, app, source, node, text, seq), also while tailing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util.h"
#include "wire.h"

#define LOGS_DEFAULT_LINES 100
#define LOGS_MAX_LINES 100000
#define LOGS_WAIT_MS 10000

static void
print_line(const Drover__LogLine *l, bool json)
{
    char ts[32];

    fmt_time_ms(l->ts_ms, ts);
    if (json) {
        json_t *doc = jout_log_line(l);

        jout_dump(doc, stdout, false);
        json_decref(doc);
    } else if (cli_str(l->node)[0] != '\0') {
        printf("%s %s@%s: %s\n", ts, cli_str(l->source), l->node, cli_str(l->text));
    } else {
        printf("%s %s: %s\n", ts, cli_str(l->source), cli_str(l->text));
    }
}

static int
parse_lines(const char *s, uint32_t *n)
{
    char *end;
    unsigned long v;

    if (s == NULL || *s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > LOGS_MAX_LINES)
        return -EINVAL;
    *n = (uint32_t)v;
    return 0;
}

int
cli_cmd_logs(int argc, char **argv)
{
    bool tail = false, json = false;
    const char *nval = NULL, *source = NULL, *type = NULL;
    struct cli_flag flags[] = {
        {"num", 'n', true, NULL, &nval},      {"tail", 't', false, &tail, NULL},
        {"source", 's', true, NULL, &source}, {"type", 0, true, NULL, &type},
        {"json", 0, false, &json, NULL},
    };
    Drover__Message req = DROVER__MESSAGE__INIT, *rep = NULL;
    Drover__LogsReq body = DROVER__LOGS_REQ__INIT;
    struct cli_client *c = NULL;
    uint32_t lines = LOGS_DEFAULT_LINES;
    char err[256], *pos[1];
    int npos, rc;

    if (cli_args_parse(argc, argv, flags, ARRAY_SIZE(flags), pos, 1, &npos, err, sizeof(err)) < 0)
        return cli_usage("logs", "%s", err);
    if (npos < 1)
        return cli_usage("logs", "missing APP");
    if ((rc = cli_app_arg("logs", pos[0])) != CLI_OK)
        return rc;
    if (nval != NULL && parse_lines(nval, &lines) < 0)
        return cli_usage("logs", "-n wants a number of lines from 0 to %d", LOGS_MAX_LINES);
    if (source != NULL && type != NULL)
        return cli_usage("logs", "give --source or --type, not both");
    if (source != NULL && strcmp(source, "drover") != 0 && !name_instance_valid(source))
        return cli_usage("logs", "--source wants an instance like web.1, or drover");
    if (type != NULL && !name_type_valid(type))
        return cli_usage("logs", "--type wants a process type like web");
    if ((rc = cli_connect(&c)) != CLI_OK)
        return rc;
    body.app = pos[0];
    body.lines = lines;
    body.source = source != NULL ? (char *)source : "";
    body.type = type != NULL ? (char *)type : "";
    req.body_case = DROVER__MESSAGE__BODY_LOGS_REQ;
    req.logs_req = &body;
    for (;;) {
        rc = cli_call(c, &req, DROVER__MESSAGE__BODY_LOGS_REP, &rep);
        if (rc < 0)
            break;
        if (rep->logs_rep->missed > 0)
            fprintf(stderr, "drover: %llu lines missed (the controller no longer has them)\n",
                    (unsigned long long)rep->logs_rep->missed);
        for (size_t i = 0; i < rep->logs_rep->n_lines; i++)
            print_line(rep->logs_rep->lines[i], json);
        fflush(stdout);
        if (!tail)
            break;
        /* Follow: everything after the last line this stream numbered. */
        body.after_seq = rep->logs_rep->next_seq > 0 ? rep->logs_rep->next_seq - 1 : 0;
        body.wait_ms = LOGS_WAIT_MS;
        body.lines = 0;
        cli_client_set_timeout(c, cli_client_timeout(c) + LOGS_WAIT_MS);
        wire_msg_free(rep);
        rep = NULL;
    }
    if (rep != NULL)
        wire_msg_free(rep);
    cli_client_free(c);
    return rc == 0 ? CLI_OK : CLI_FAIL;
}
