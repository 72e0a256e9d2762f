/* SPDX-License-Identifier: MIT */
/*
 * prom.h: the Prometheus text exposition format (0.0.4), written by hand:
 * it is small, and no C client library is maintained. One family at a time:
 * prom_family writes its HELP and TYPE lines, then its samples follow.
 * Label values are escaped (\\, \", \n); labels are NULL-terminated
 * name, value, name, value ... lists.
 */
#ifndef DROVER_PROM_H
#define DROVER_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct prom {
    char *buf; /* NUL-terminated; the caller frees it */
    size_t len, cap;
    bool failed; /* out of memory: the text is incomplete */
};

void prom_init(struct prom *p);
/* type: "counter", "gauge" or "histogram" */
void prom_family(struct prom *p, const char *name, const char *type, const char *help);
void prom_sample(struct prom *p, const char *name, const char *const *labels, double v);
void prom_sample_u64(struct prom *p, const char *name, const char *const *labels, uint64_t v);

/* A histogram of durations in seconds, cumulative le buckets. */
#define PROM_HIST_MAX 16
struct prom_hist {
    size_t nb;
    double bounds[PROM_HIST_MAX];
    uint64_t counts[PROM_HIST_MAX + 1]; /* per bucket, not cumulative; last: +Inf */
    uint64_t count;
    double sum;
};
void prom_hist_init(struct prom_hist *h, const double *bounds, size_t nb);
void prom_hist_observe(struct prom_hist *h, double v);
/* _bucket{le=...}, _sum and _count samples of name */
void prom_hist_write(struct prom *p, const char *name, const char *const *labels,
                     const struct prom_hist *h);

#endif
