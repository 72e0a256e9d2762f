/* SPDX-License-Identifier: MIT */
/*
 * reconcile.c: which instances to start, keep and drain.
 *
 * The controller sends the node's whole desired set; the agent compares ids
 * only. An id is never reused and an assignment never changes, so "same id"
 * means "same instance". The rules, given what the agent has (each id, and
 * whether it is already stopping: draining or stopped) and what is assigned:
 *
 *   - assigned and here, in any state: kept as it is. A stopping one is not
 *     started twice: it is started again, if still assigned, once it has
 *     been forgotten (the agent reconciles again then);
 *   - here, not assigned, not yet stopping: drained;
 *   - assigned, not here: started, in the set's order, while the instances
 *     that are kept or started stay below the node's capacity, and only when
 *     starts are allowed at all (not while the agent is leaving). What is not
 *     started now waits for the next reconcile (counted in nwait).
 *
 * Pure set arithmetic so that it is tested without processes; the sets are
 * small (one node's instances) and sorted copies keep it O(n log n).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agt.h"

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static bool
has_id(const uint64_t *sorted, size_t n, uint64_t id)
{
    return n > 0 && bsearch(&id, sorted, n, sizeof *sorted, cmp_u64) != NULL;
}

int
agt_reconcile(const struct agt_have *have, size_t nhave, const uint64_t *want, size_t nwant,
              uint32_t capacity, bool starts, struct agt_plan *plan)
{
    uint64_t *h = NULL, *w = NULL, *seen = NULL;
    size_t nseen = 0, active = 0;
    int rc = -ENOMEM;

    memset(plan, 0, sizeof *plan);
    h = malloc((nhave + 1) * sizeof *h);
    w = malloc((nwant + 1) * sizeof *w);
    seen = malloc((nwant + 1) * sizeof *seen);
    plan->start = malloc((nwant + 1) * sizeof *plan->start);
    plan->drain = malloc((nhave + 1) * sizeof *plan->drain);
    if (!h || !w || !seen || !plan->start || !plan->drain)
        goto out;
    for (size_t k = 0; k < nhave; k++)
        h[k] = have[k].id;
    if (nwant)
        memcpy(w, want, nwant * sizeof *w);
    qsort(h, nhave, sizeof *h, cmp_u64);
    qsort(w, nwant, sizeof *w, cmp_u64);

    for (size_t k = 0; k < nhave; k++) {
        if (have[k].stopping)
            continue;
        if (has_id(w, nwant, have[k].id))
            active++;
        else
            plan->drain[plan->ndrain++] = have[k].id;
    }
    for (size_t k = 0; k < nwant; k++) {
        /* seen is kept sorted by insertion so a repeated id counts once. */
        size_t pos = 0;

        if (has_id(h, nhave, want[k]))
            continue;
        while (pos < nseen && seen[pos] < want[k])
            pos++;
        if (pos < nseen && seen[pos] == want[k])
            continue;
        memmove(&seen[pos + 1], &seen[pos], (nseen - pos) * sizeof *seen);
        seen[pos] = want[k];
        nseen++;
        if (!starts || active >= capacity) {
            plan->nwait++;
            continue;
        }
        plan->start[plan->nstart++] = k;
        active++;
    }
    rc = 0;
out:
    free(h);
    free(w);
    free(seen);
    if (rc < 0)
        agt_plan_fini(plan);
    return rc;
}

void
agt_plan_fini(struct agt_plan *plan)
{
    free(plan->start);
    free(plan->drain);
    memset(plan, 0, sizeof *plan);
}
