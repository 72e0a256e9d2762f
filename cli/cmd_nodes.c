/* SPDX-License-Identifier: MIT */
/*
 * cmd_nodes.c: `drover nodes` — the cluster's machines. The JSON object and
 * the notes column of one node are shared with `drover status` and the
 * nodes:* verbs.
 */
#include <errno.h>
#include <string.h>

#include "cli.h"
#include "util.h"
#include "wire.h"

void
cli_node_notes(const Drover__NodeInfo *n, char *out, size_t outsz)
{
    size_t used = 0;

    out[0] = '\0';
#define NOTE(...)                                                                                  \
    do {                                                                                           \
        if (used < outsz)                                                                          \
            used += (size_t)snprintf(out + used, outsz - used, "%s", used ? ", " : "");            \
        if (used < outsz)                                                                          \
            used += (size_t)snprintf(out + used, outsz - used, __VA_ARGS__);                       \
    } while (0)
    if (n->leaving)
        NOTE("agent leaving");
    if (n->evicting > 0)
        NOTE("%u running until replaced", n->evicting);
    if (n->draining > 0)
        NOTE("%u stopping", n->draining);
    if (n->oneoffs_stopping > 0)
        NOTE("%u one-off%s stopping (never replaced)", n->oneoffs_stopping,
             n->oneoffs_stopping > 1 ? "s" : "");
    if (n->lost > 0)
        NOTE("%u lost", n->lost);
#undef NOTE
}

int
cli_nodes_table(Drover__NodeInfo **nodes, size_t n, const char *indent)
{
    static const char *const head[] = {"NAME",  "ADDRESS",   "STATE", "INSTANCES",
                                       "PORTS", "LAST SEEN", "NOTES"};
    uint64_t now = now_ms();
    struct cli_table *t;
    int rc;

    t = cli_table_new(7);
    if (t == NULL)
        return -ENOMEM;
    rc = cli_table_row(t, head);
    for (size_t i = 0; i < n && rc == 0; i++) {
        Drover__NodeInfo *x = nodes[i];
        char inst[32], ports[32], seen[32], notes[160], state[64];
        const char *row[7] = {
            cli_str(x->name), cli_str(x->address), state, inst, ports, seen, notes};

        /* Silent past 3 heartbeats, not yet down: what it last said may be
         * stale (ps says the same of its instances). */
        if (x->unreachable_ms > 0)
            snprintf(state, sizeof(state), "%s (unreachable %.0f s)", cli_str(x->state),
                     (double)x->unreachable_ms / 1000.0);
        else
            snprintf(state, sizeof(state), "%s", cli_str(x->state));

        /* Every instance takes a port: the smaller of the two is the limit. */
        snprintf(inst, sizeof(inst), "%u/%u", x->instances,
                 x->limit > 0 && x->limit < x->capacity ? x->limit : x->capacity);
        snprintf(ports, sizeof(ports), "%u-%u", x->port_min, x->port_max);
        cli_fmt_ago(x->last_seen_ms, now, seen);
        if (seen[0] == '\0')
            seen[0] = '-', seen[1] = '\0';
        cli_node_notes(x, notes, sizeof(notes));
        if (x->limit > 0 && x->limit < x->capacity) {
            size_t used = strlen(notes);

            snprintf(notes + used, sizeof(notes) - used, "%s%u ports limit it (capacity %u)",
                     used ? ", " : "", x->limit, x->capacity);
        }
        rc = cli_table_row(t, row);
    }
    if (rc == 0)
        cli_table_print(t, stdout, indent);
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
            cli_json_print(stdout, jout_nodes(rep->nodes_rep));
        else if (rep->nodes_rep->n_nodes == 0)
            printf("No nodes have joined yet. Start drover-agent with DROVER_JOIN set.\n");
        else if (cli_nodes_table(rep->nodes_rep->nodes, rep->nodes_rep->n_nodes, NULL) < 0)
            rc = cli_fail("out of memory");
    }
    if (rep != NULL)
        wire_msg_free(rep);
    cli_client_free(c);
    return rc == 0 ? CLI_OK : CLI_FAIL;
}
