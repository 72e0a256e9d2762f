/* SPDX-License-Identifier: MIT */
/*
 * oneoffs.c: placing a one-off (`drover run`), over the model alone. A
 * one-off is an instance of type "run" (run.N, the lowest N no live one-off
 * of the app holds) in the app's current release, with the command given
 * or its --type's command, placed by the scheduler or on the node asked
 * for, which must be ready and have room. It is never restarted or
 * replaced, and a reconcile leaves it alone. runs.c's handler calls this and
 * keeps the session of an attached one; unit tests call it directly.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "log.h"

/* The lowest run.N no one-off of the app holds, a stopping one included: a
 * name is never listed twice by ps. */
static uint32_t
next_run_idx(const struct ctl_app *a)
{
    const struct ctl_instance *in;
    uint32_t idx = 1;
    bool taken;

    do {
        taken = false;
        LIST_FOREACH (in, &a->instances, app_link) {
            if (in->oneoff && in->idx == idx) { /* stopping too: ps lists it */
                taken = true;
                idx++;
                break;
            }
        }
    } while (taken);
    return idx;
}

static struct ctl_node *
pick_node(struct ctl_model *m, const struct ctl_app *a, const char *want, char *err, size_t errsz)
{
    struct ctl_node *n = NULL;

    if (want[0] == '\0') {
        if (ctl_sched_choose(m, a, "run", 1, &n) == 1)
            return n;
        snprintf(err, errsz, "no ready node with free capacity");
        return NULL;
    }
    n = ctl_node_find(m, want);
    if (n == NULL)
        snprintf(err, errsz, "no node %s", want);
    else if (n->state != CTL_NODE_READY)
        snprintf(err, errsz, "node %s is %s", want, ctl_node_state_name(n->state));
    else if (n->ports == NULL || n->nlive >= n->capacity ||
             ctl_ports_used(n->ports) >= ctl_ports_size(n->ports))
        snprintf(err, errsz, "node %s is full", want);
    else
        return n;
    return NULL;
}

/* The command to run: the one given, else its type's. */
static const char *
command_for(const struct ctl_release *rel, const struct ctl_oneoff_spec *q, char *err, size_t errsz)
{
    const struct ctl_ptype *pt;

    if (q->type[0] == '\0')
        return q->command;
    if ((pt = ctl_release_type(rel, q->type)) == NULL) {
        snprintf(err, errsz, "no process type '%s' in v%u", q->type, rel->version);
        return NULL;
    }
    return q->command[0] != '\0' ? q->command : pt->command;
}

int
ctl_oneoff_start(struct ctl_model *m, struct ctl_app *a, const struct ctl_oneoff_spec *q,
                 uint64_t now, struct ctl_instance **out, char *err, size_t errsz)
{
    const struct ctl_release *rel = ctl_release_current(a);
    struct ctl_instance *in = NULL;
    const char *command;
    struct ctl_node *n;
    char name[48];

    if (rel == NULL)
        return snprintf(err, errsz, "app %s has no release yet; deploy first", a->name), -EAGAIN;
    if ((command = command_for(rel, q, err, errsz)) == NULL)
        return -ENOENT;
    if ((n = pick_node(m, a, q->node, err, errsz)) == NULL)
        return -EBUSY;
    if (ctl_inst_new(m, a, "run", next_run_idx(a), rel->version, 0, &in) < 0 ||
        ctl_inst_set_oneoff(m, in, q, command, now) < 0) {
        if (in != NULL)
            ctl_inst_delete(m, in);
        return snprintf(err, errsz, "out of memory"), -ENOMEM;
    }
    if (ctl_inst_place(m, in, n, 0) < 0) {
        ctl_inst_delete(m, in);
        return snprintf(err, errsz, "no free port on the node"), -ENOSPC;
    }
    ctl_inst_name(in, name, sizeof(name));
    log_info("run_created", "app=%s inst=%s id=%llu node=%s attach=%d tty=%d", a->name, name,
             (unsigned long long)in->id, n->name, (int)q->attach, (int)in->tty);
    ctl_model_event(m, a->name, "%s starting on %s%s: %s", name, n->name,
                    q->attach ? "" : " (detached)", in->command);
    *out = in;
    return 0;
}
