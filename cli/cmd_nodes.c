/* SPDX-License-Identifier: MIT */
/*
 * cmd_nodes.c: `drover nodes` — the cluster's machines.
 */
#include <errno.h>

#include "cli.h"
#include "util.h"
#include "wire.h"

static void
nodes_json(Drover__NodesRep *r)
{
    struct cli_json j;

    cli_json_init(&j, stdout);
    cli_json_begin_array(&j);
    for (size_t i = 0; i < r->n_nodes; i++) {
        Drover__NodeInfo *n = r->nodes[i];

        cli_json_begin_object(&j);
        cli_json_key(&j, "name");
        cli_json_string(&j, cli_str(n->name));
        cli_json_key(&j, "address");
        cli_json_string(&j, cli_str(n->address));
        cli_json_key(&j, "state");
        cli_json_string(&j, cli_str(n->state));
        cli_json_key(&j, "instances");
        cli_json_uint(&j, n->instances);
        cli_json_key(&j, "capacity");
        cli_json_uint(&j, n->capacity);
        cli_json_key(&j, "port_min");
        cli_json_uint(&j, n->port_min);
        cli_json_key(&j, "port_max");
        cli_json_uint(&j, n->port_max);
        cli_json_key(&j, "last_seen");
        cli_json_time(&j, n->last_seen_ms);
        cli_json_end_object(&j);
    }
    cli_json_end_array(&j);
    cli_json_end(&j);
}

static int
nodes_human(Drover__NodesRep *r)
{
    static const char *const head[] = {"NAME",      "ADDRESS", "STATE",
                                       "INSTANCES", "PORTS",   "LAST SEEN"};
    uint64_t now = now_ms();
    struct cli_table *t;
    int rc;

    if (r->n_nodes == 0) {
        printf("No nodes have joined yet. Start drover-agent with DROVER_JOIN set.\n");
        return 0;
    }
    t = cli_table_new(6);
    if (t == NULL)
        return -ENOMEM;
    rc = cli_table_row(t, head);
    for (size_t i = 0; i < r->n_nodes && rc == 0; i++) {
        Drover__NodeInfo *n = r->nodes[i];
        char inst[32], ports[32], seen[32];
        const char *row[6] = {
            cli_str(n->name), cli_str(n->address), cli_str(n->state), inst, ports, seen};

        snprintf(inst, sizeof(inst), "%u/%u", n->instances, n->capacity);
        snprintf(ports, sizeof(ports), "%u-%u", n->port_min, n->port_max);
        cli_fmt_ago(n->last_seen_ms, now, seen);
        if (seen[0] == '\0')
            seen[0] = '-', seen[1] = '\0';
        rc = cli_table_row(t, row);
    }
    if (rc == 0)
        cli_table_print(t, stdout, NULL);
    cli_table_free(t);
    return rc;
}

int
cli_cmd_nodes(int argc, char **argv)
{
    bool json = false;
    struct cli_flag flags[] = {{"json", 0, false, &json, NULL}};
    Drover__Message req = DROVER__MESSAGE__INIT, *rep = NULL;
    Drover__NodesReq body = DROVER__NODES_REQ__INIT;
    struct cli_client *c = NULL;
    char err[256], *pos[1];
    int npos, rc;

    if (cli_args_parse(argc, argv, flags, ARRAY_SIZE(flags), pos, 0, &npos, err, sizeof(err)) < 0)
        return cli_usage("nodes", "%s", err);
    if ((rc = cli_connect(&c)) != CLI_OK)
        return rc;
    req.body_case = DROVER__MESSAGE__BODY_NODES_REQ;
    req.nodes_req = &body;
    rc = cli_call(c, &req, DROVER__MESSAGE__BODY_NODES_REP, &rep);
    if (rc == 0) {
        if (json)
            nodes_json(rep->nodes_rep);
        else if (nodes_human(rep->nodes_rep) < 0)
            rc = cli_fail("out of memory");
    }
    if (rep != NULL)
        wire_msg_free(rep);
    cli_client_free(c);
    return rc == 0 ? CLI_OK : CLI_FAIL;
}
