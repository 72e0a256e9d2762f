/* SPDX-License-Identifier: MIT */
/*
 * cmd_node_admin.c: `drover nodes:cordon|uncordon|drain NODE`.
 *
 * Each sends one NodeStateReq ("cordoned", "ready", "draining"); the
 * controller applies it and answers with the node. Cordon stops new
 * placements there; uncordon allows them again (and cancels a drain:
 * instances still running there stay); drain also moves every instance
 * away, each one stopped only once its replacement is up elsewhere.
 *
 * nodes:drain then watches the node (StatusReq every 300 ms) and prints a
 * line whenever the count of what is left changes, plus the replacements of
 * what it still runs that have no place yet (a replacement with nowhere to
 * go holds its original, so a drain that cannot finish says why). It returns
 * when the node holds nothing, or fails at --timeout, leaving the node
 * draining.
 */
#include <errno.h>
#include <string.h>

#include "cli.h"
#include "util.h"
#include "wire.h"

#define POLL_MS 300
#define DRAIN_TIMEOUT_DEFAULT 300
#define WAITING_SHOWN 5

/* Send the new state; on success print the node and return its info in rep. */
static int
node_state(struct cli_client *c, const char *node, const char *state, Drover__Message **rep)
{
    Drover__Message req = DROVER__MESSAGE__INIT;
    Drover__NodeStateReq body = DROVER__NODE_STATE_REQ__INIT;

    body.node = (char *)node;
    body.state = (char *)state;
    req.body_case = DROVER__MESSAGE__BODY_NODE_STATE_REQ;
    req.node_state_req = &body;
    return cli_call(c, &req, DROVER__MESSAGE__BODY_NODE_REP, rep);
}

static int
node_arg(const char *verb, int argc, char **argv, const struct cli_flag *flags, size_t nflags,
         char **node)
{
    char err[256], *pos[1];
    int npos;

    if (cli_args_parse(argc, argv, flags, nflags, pos, 1, &npos, err, sizeof(err)) < 0)
        return cli_usage(verb, "%s", err);
    if (npos < 1)
        return cli_usage(verb, "missing NODE");
    if (!name_node_valid(pos[0]))
        return cli_usage(verb, "invalid node name '%s': must match [A-Za-z0-9][A-Za-z0-9._-]{0,62}",
                         pos[0]);
    *node = pos[0];
    return CLI_OK;
}

static void
print_node(const char *what, const Drover__NodeInfo *n)
{
    char notes[160];

    cli_node_notes(n, notes, sizeof(notes));
    printf("%s %s: now %s, %u instance%s%s%s%s\n", what, cli_str(n->name), cli_str(n->state),
           n->instances, n->instances == 1 ? "" : "s", notes[0] ? " (" : "", notes,
           notes[0] ? ")" : "");
}

static int
simple(const char *verb, const char *state, const char *what, int argc, char **argv)
{
    struct cli_client *c = NULL;
    Drover__Message *rep = NULL;
    char *node = NULL;
    int rc;

    if ((rc = node_arg(verb, argc, argv, NULL, 0, &node)) != CLI_OK)
        return rc;
    if ((rc = cli_connect(&c)) != CLI_OK)
        return rc;
    rc = node_state(c, node, state, &rep);
    if (rc == 0)
        print_node(what, rep->node_rep->node);
    if (rep != NULL)
        wire_msg_free(rep);
    cli_client_free(c);
    return rc == 0 ? CLI_OK : CLI_FAIL;
}

int
cli_cmd_nodes_cordon(int argc, char **argv)
{
    return simple("nodes:cordon", "cordoned", "Cordoned", argc, argv);
}

int
cli_cmd_nodes_uncordon(int argc, char **argv)
{
    return simple("nodes:uncordon", "ready", "Uncordoned", argc, argv);
}

/* ---- drain ---- */

static const Drover__NodeInfo *
find_node(const Drover__StatusRep *s, const char *name)
{
    for (size_t i = 0; i < s->n_nodes; i++)
        if (strcmp(cli_str(s->nodes[i]->name), name) == 0)
            return s->nodes[i];
    return NULL;
}

/* Is name of as still running on node, waiting for its replacement? */
static bool
evicting_on(const Drover__AppStatus *as, const char *name, const char *node)
{
    for (size_t i = 0; i < as->n_attention; i++) {
        const Drover__InstanceInfo *in = as->attention[i];
        const char *st = cli_str(in->state);

        if (strcmp(cli_str(in->name), name) == 0 && strcmp(cli_str(in->node), node) == 0 &&
            strcmp(st, "draining") != 0 && strcmp(st, "lost") != 0)
            return true;
    }
    return false;
}

/* The replacements (same app and name) of what node still runs that have
 * no place yet, as "app web.2 (reason)". */
static void
waiting(const Drover__StatusRep *s, const char *node, char *out, size_t outsz)
{
    size_t used = 0, shown = 0, more = 0;

    out[0] = '\0';
    for (size_t a = 0; a < s->n_apps; a++) {
        const Drover__AppStatus *as = s->apps[a];

        for (size_t i = 0; i < as->n_attention; i++) {
            const Drover__InstanceInfo *in = as->attention[i];

            if (strcmp(cli_str(in->state), "pending") != 0 || cli_str(in->node)[0] != '\0' ||
                !evicting_on(as, cli_str(in->name), node))
                continue;
            if (shown == WAITING_SHOWN) {
                more++;
                continue;
            }
            if (used < outsz)
                used += (size_t)snprintf(out + used, outsz - used, "%s%s %s (%s)",
                                         shown ? "; " : "", cli_str(as->name), cli_str(in->name),
                                         cli_str(in->reason)[0] ? in->reason : "pending");
            shown++;
        }
    }
    if (more > 0 && used < outsz)
        snprintf(out + used, outsz - used, "; and %zu more", more);
}

static void
progress_line(const Drover__NodeInfo *n, char *out, size_t outsz)
{
    char notes[160];

    cli_node_notes(n, notes, sizeof(notes));
    snprintf(out, outsz, "%s: %u instance%s left%s%s%s", cli_str(n->name), n->instances,
             n->instances == 1 ? "" : "s", notes[0] ? " (" : "", notes, notes[0] ? ")" : "");
}

/* Poll until the node is empty. 0, -ETIMEDOUT, -ECANCELED, or as cli_call. */
static int
drain_wait(struct cli_client *c, const char *node, uint32_t timeout_s)
{
    uint64_t deadline = cli_mono_ms() + (uint64_t)timeout_s * 1000;
    char last[256] = "", last_wait[1024] = "", line[256], wait[1024];

    for (;;) {
        Drover__Message *rep = NULL;
        const Drover__NodeInfo *n;
        int rc = cli_status_get(c, &rep);

        if (rc < 0)
            return rc;
        n = find_node(rep->status_rep, node);
        if (n == NULL) {
            wire_msg_free(rep);
            cli_fail("node %s is gone", node);
            return -ENOENT;
        }
        if (strcmp(cli_str(n->state), "draining") != 0 && strcmp(cli_str(n->state), "down") != 0) {
            cli_fail("%s is %s now, no longer draining; stopped waiting", node, cli_str(n->state));
            wire_msg_free(rep);
            return -ECANCELED;
        }
        if (n->instances == 0) {
            printf("%s is drained: it runs nothing and gets nothing new (drover nodes:uncordon "
                   "%s to use it again)\n",
                   node, node);
            wire_msg_free(rep);
            return 0;
        }
        progress_line(n, line, sizeof(line));
        waiting(rep->status_rep, node, wait, sizeof(wait));
        if (strcmp(line, last) != 0) {
            printf("%s\n", line);
            snprintf(last, sizeof(last), "%s", line);
        }
        if (strcmp(wait, last_wait) != 0) {
            if (wait[0] != '\0')
                printf("  waiting for a place: %s\n", wait);
            snprintf(last_wait, sizeof(last_wait), "%s", wait);
        }
        fflush(stdout);
        wire_msg_free(rep);
        if (cli_mono_ms() >= deadline) {
            cli_fail("%s still holds instances after %u s; it stays draining (drover "
                     "nodes:uncordon %s cancels)",
                     node, timeout_s, node);
            return -ETIMEDOUT;
        }
        cli_sleep_ms(POLL_MS);
    }
}

int
cli_cmd_nodes_drain(int argc, char **argv)
{
    bool no_wait = false;
    const char *timeout_arg = NULL;
    struct cli_flag flags[] = {{"no-wait", 0, false, &no_wait, NULL},
                               {"timeout", 0, true, NULL, &timeout_arg}};
    uint32_t timeout_s = DRAIN_TIMEOUT_DEFAULT;
    struct cli_client *c = NULL;
    Drover__Message *rep = NULL;
    char *node = NULL;
    int rc;

    if ((rc = node_arg("nodes:drain", argc, argv, flags, ARRAY_SIZE(flags), &node)) != CLI_OK)
        return rc;
    if (timeout_arg != NULL && cli_parse_seconds(timeout_arg, 86400, &timeout_s) < 0)
        return cli_usage("nodes:drain", "--timeout wants whole seconds from 1 to 86400, not '%s'",
                         timeout_arg);
    if ((rc = cli_connect(&c)) != CLI_OK)
        return rc;
    rc = node_state(c, node, "draining", &rep);
    if (rc == 0) {
        print_node("Draining", rep->node_rep->node);
        fflush(stdout);
        if (!no_wait)
            rc = drain_wait(c, node, timeout_s);
    }
    if (rep != NULL)
        wire_msg_free(rep);
    cli_client_free(c);
    return rc == 0 ? CLI_OK : CLI_FAIL;
}
