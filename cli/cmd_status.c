/* SPDX-License-Identifier: MIT */
/*
 * cmd_status.c: `drover status` — the cluster on one screen.
 *
 *   Nodes: 2 ready, 1 down
 *     NAME  ADDRESS      STATE  INSTANCES  PORTS      LAST SEEN   NOTES
 *     n1    198.18.0.11  ready  3/256      5000-5099  ~ 0s ago
 *     n3    198.18.0.13  down   2/256      5000-5099  ~ 9s ago    2 lost
 *
 *   Apps:
 *     APP   RELEASE  TYPE    DESIRED  UP  NOTES
 *     shop  v1       web     3        3
 *                    worker  2        1   1 pending
 *
 *   Needs attention:
 *     shop  web.2     lost     n3  node n3 is down: replaced elsewhere
 *     shop  67 web    pending  -   no free port in 5000-5099
 *
 * Instances waiting for a place are one row per type and reason.
 *
 * One StatusReq; --json writes the same as {"nodes": [...], "apps": [...]}.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util.h"
#include "wire.h"

int
cli_status_get(struct cli_client *c, Drover__Message **rep)
{
    Drover__Message req = DROVER__MESSAGE__INIT;
    Drover__StatusReq body = DROVER__STATUS_REQ__INIT;

    req.body_case = DROVER__MESSAGE__BODY_STATUS_REQ;
    req.status_req = &body;
    return cli_call(c, &req, DROVER__MESSAGE__BODY_STATUS_REP, rep);
}

/* "2 ready, 1 cordoned, 1 down" in the order of the states. */
static void
node_summary(const Drover__StatusRep *s, char *out, size_t outsz)
{
    static const char *const states[] = {"ready", "cordoned", "draining", "down"};
    size_t used = 0;

    out[0] = '\0';
    for (size_t k = 0; k < ARRAY_SIZE(states); k++) {
        unsigned n = 0;

        for (size_t i = 0; i < s->n_nodes; i++)
            n += strcmp(cli_str(s->nodes[i]->state), states[k]) == 0;
        if (n > 0 && used < outsz)
            used += (size_t)snprintf(out + used, outsz - used, "%s%u %s", used ? ", " : "", n,
                                     states[k]);
    }
    /* Silent, not yet down: counted above by their last state too. */
    unsigned silent = 0;
    for (size_t i = 0; i < s->n_nodes; i++)
        silent += s->nodes[i]->unreachable_ms > 0;
    if (silent > 0 && used < outsz)
        snprintf(out + used, outsz - used, " (%u unreachable)", silent);
}

static void
type_notes(const Drover__TypeStatus *t, char *out, size_t outsz)
{
    const struct {
        uint32_t n;
        const char *what;
    } parts[] = {{t->starting, "starting"}, {t->pending, "pending"},   {t->crashed, "crashed"},
                 {t->lost, "lost"},         {t->draining, "draining"}, {t->evicting, "evicting"}};
    size_t used = 0;

    out[0] = '\0';
    for (size_t k = 0; k < ARRAY_SIZE(parts); k++)
        if (parts[k].n > 0 && used < outsz)
            used += (size_t)snprintf(out + used, outsz - used, "%s%u %s", used ? ", " : "",
                                     parts[k].n, parts[k].what);
}

static int
apps_table(const Drover__StatusRep *s)
{
    static const char *const head[] = {"APP", "RELEASE", "TYPE", "DESIRED", "UP", "NOTES"};
    struct cli_table *t = cli_table_new(6);
    int rc;

    if (t == NULL)
        return -ENOMEM;
    rc = cli_table_row(t, head);
    for (size_t a = 0; a < s->n_apps && rc == 0; a++) {
        const Drover__AppStatus *as = s->apps[a];
        char rel[16], desired[16], up[16], notes[160];

        snprintf(rel, sizeof(rel), as->release ? "v%u" : "-", as->release);
        if (as->n_types == 0) {
            const char *row[6] = {cli_str(as->name), rel, "-", "", "", "no processes"};

            rc = cli_table_row(t, row);
            continue;
        }
        for (size_t k = 0; k < as->n_types && rc == 0; k++) {
            const Drover__TypeStatus *ts = as->types[k];
            const char *row[6] = {k == 0 ? cli_str(as->name) : "",
                                  k == 0 ? rel : "",
                                  cli_str(ts->type),
                                  desired,
                                  up,
                                  notes};

            snprintf(desired, sizeof(desired), "%u", ts->desired);
            snprintf(up, sizeof(up), "%u", ts->up);
            type_notes(ts, notes, sizeof(notes));
            rc = cli_table_row(t, row);
        }
    }
    if (rc == 0)
        cli_table_print(t, stdout, "  ");
    cli_table_free(t);
    return rc;
}

/* Pending and unplaced: grouped by type and reason. */
static bool
groupable(const Drover__InstanceInfo *in)
{
    return strcmp(cli_str(in->state), "pending") == 0 && cli_str(in->node)[0] == '\0';
}

static int
group_cmp(const void *x, const void *y)
{
    const Drover__InstanceInfo *a = *(const Drover__InstanceInfo *const *)x;
    const Drover__InstanceInfo *b = *(const Drover__InstanceInfo *const *)y;
    int c = strcmp(cli_str(a->type), cli_str(b->type));

    return c != 0 ? c : strcmp(cli_str(a->reason), cli_str(b->reason));
}

/*
 * One app's rows. Instances waiting for a place are grouped by type and
 * reason ("shop  67 web  pending  -  no free port in 5000-5099"): a scale
 * beyond what the nodes hold would otherwise print one line each.
 */
static int
app_attention(struct cli_table *t, const Drover__AppStatus *as, size_t *shown)
{
    const Drover__InstanceInfo **wait = calloc(as->n_attention + 1, sizeof(*wait));
    size_t nwait = 0, i, j;
    int rc = 0;

    if (wait == NULL)
        return -ENOMEM;
    for (i = 0; i < as->n_attention && rc == 0; i++) {
        const Drover__InstanceInfo *in = as->attention[i];
        const char *row[5] = {cli_str(as->name), cli_str(in->name), cli_str(in->state),
                              cli_str(in->node)[0] ? in->node : "-", cli_str(in->reason)};

        if (groupable(in)) {
            wait[nwait++] = in;
            continue;
        }
        rc = cli_table_row(t, row);
        (*shown)++;
    }
    qsort(wait, nwait, sizeof(*wait), group_cmp);
    for (i = 0; i < nwait && rc == 0; i = j) {
        char what[96];
        const char *row[5] = {cli_str(as->name), what, "pending", "-", cli_str(wait[i]->reason)};

        for (j = i + 1; j < nwait && group_cmp(&wait[i], &wait[j]) == 0; j++)
            ;
        if (j - i == 1)
            snprintf(what, sizeof(what), "%s", cli_str(wait[i]->name));
        else
            snprintf(what, sizeof(what), "%zu %s", j - i, cli_str(wait[i]->type));
        rc = cli_table_row(t, row);
        (*shown)++;
    }
    free(wait);
    return rc;
}

static int
attention_table(const Drover__StatusRep *s, size_t *shown)
{
    struct cli_table *t = cli_table_new(5);
    int rc = 0;

    *shown = 0;
    if (t == NULL)
        return -ENOMEM;
    for (size_t a = 0; a < s->n_apps && rc == 0; a++)
        rc = app_attention(t, s->apps[a], shown);
    if (rc == 0 && *shown > 0)
        cli_table_print(t, stdout, "  ");
    cli_table_free(t);
    return rc;
}

/* HA (issue 16): who leads, in which term, and who stands by. */
static void
controllers_human(const Drover__StatusRep *s)
{
    size_t i, standby = 0;

    if (s->store == NULL || strcmp(s->store, "postgresql") != 0)
        return;
    printf("Controllers: %s leads (term %llu, PostgreSQL)", cli_str(s->leader),
           (unsigned long long)s->term);
    for (i = 0; i < s->n_controllers; i++) {
        if (strcmp(s->controllers[i], cli_str(s->leader)) == 0)
            continue;
        printf("%s%s", standby++ == 0 ? "; standing by: " : ", ", s->controllers[i]);
    }
    printf("%s\n\n", standby == 0 ? "; no standby" : "");
}

static int
status_human(const Drover__StatusRep *s)
{
    char summary[128];
    size_t shown = 0;
    int rc;

    for (size_t i = 0; i < s->n_warnings; i++)
        printf("Controller: %s\n", cli_str(s->warnings[i]));
    if (s->n_warnings > 0)
        printf("\n");
    controllers_human(s);
    node_summary(s, summary, sizeof(summary));
    if (s->n_nodes == 0) {
        printf("Nodes: none yet. Start drover-agent with DROVER_JOIN set.\n");
    } else {
        printf("Nodes: %s\n", summary);
        if ((rc = cli_nodes_table(s->nodes, s->n_nodes, "  ")) < 0)
            return rc;
    }
    printf("\n");
    if (s->n_apps == 0) {
        printf("Apps: none yet. Create one with: drover apps:create APP\n");
        return 0;
    }
    printf("Apps:\n");
    if ((rc = apps_table(s)) < 0)
        return rc;
    printf("\nNeeds attention:\n");
    if ((rc = attention_table(s, &shown)) < 0)
        return rc;
    if (shown == 0)
        printf("  nothing: no instance is pending, crashed, lost or being moved\n");
    return 0;
}

int
cli_cmd_status(int argc, char **argv)
{
    bool json = false;
    struct cli_flag flags[] = {{"json", 0, false, &json, NULL}};
    struct cli_client *c = NULL;
    Drover__Message *rep = NULL;
    char err[256], *pos[1];
    int npos, rc;

    if (cli_args_parse(argc, argv, flags, ARRAY_SIZE(flags), pos, 0, &npos, err, sizeof(err)) < 0)
        return cli_usage("status", "%s", err);
    if ((rc = cli_connect(&c)) != CLI_OK)
        return rc;
    rc = cli_status_get(c, &rep);
    if (rc == 0) {
        if (json)
            cli_json_print(stdout, jout_status(rep->status_rep));
        else if (status_human(rep->status_rep) < 0)
            rc = cli_fail("out of memory");
    }
    if (rep != NULL)
        wire_msg_free(rep);
    cli_client_free(c);
    return rc == 0 ? CLI_OK : CLI_FAIL;
}
