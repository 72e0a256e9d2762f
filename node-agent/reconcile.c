/* SPDX-License-Identifier: MIT */
/*
 * reconcile.c: which instances to start and which to drain.
 *
 * The controller sends the node's whole desired set; the agent compares ids
 * only. An id is never reused and an assignment never changes, so "same id"
 * means "same instance": a running one is kept as it is, whatever state it
 * is in (a draining instance whose id comes back is not started twice; it
 * is started again, if still wanted, after it has been forgotten). Pure set
 * arithmetic so that it is tested without processes; the sets are small
 * (one node's instances) and sorted copies keep it O(n log n).
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
agt_reconcile(const uint64_t *have, size_t nhave, const uint64_t *want, size_t nwant,
              struct agt_plan *plan)
{
    uint64_t *h = NULL, *w = NULL, *seen = NULL;
    size_t nseen = 0;
    int rc = -ENOMEM;

    memset(plan, 0, sizeof *plan);
    h = malloc((nhave + 1) * sizeof *h);
    w = malloc((nwant + 1) * sizeof *w);
    seen = malloc((nwant + 1) * sizeof *seen);
    plan->start = malloc((nwant + 1) * sizeof *plan->start);
    plan->drain = malloc((nhave + 1) * sizeof *plan->drain);
    if (!h || !w || !seen || !plan->start || !plan->drain)
        goto out;
    if (nhave)
        memcpy(h, have, nhave * sizeof *h);
    if (nwant)
        memcpy(w, want, nwant * sizeof *w);
    qsort(h, nhave, sizeof *h, cmp_u64);
    qsort(w, nwant, sizeof *w, cmp_u64);

    for (size_t k = 0; k < nwant; k++) {
        /* seen is kept sorted by insertion so a repeated id starts once. */
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
        plan->start[plan->nstart++] = k;
    }
    for (size_t k = 0; k < nhave; k++) {
        if (!has_id(w, nwant, have[k]))
            plan->drain[plan->ndrain++] = have[k];
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
