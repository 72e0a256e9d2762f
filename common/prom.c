/* SPDX-License-Identifier: MIT */
/*
 * prom.c: the Prometheus text format (prom.h). Numbers are written so that
 * promtool reads them back exactly: integers as integers, others with %.17g,
 * +Inf as "+Inf".
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom.h"

void
prom_init(struct prom *p)
{
    memset(p, 0, sizeof(*p));
}

static void
put(struct prom *p, const char *s, size_t n)
{
    if (p->failed)
        return;
    if (p->len + n + 1 > p->cap) {
        size_t cap = p->cap == 0 ? 4096 : p->cap;
        char *b;

        while (cap < p->len + n + 1)
            cap *= 2;
        if ((b = realloc(p->buf, cap)) == NULL) {
            p->failed = true;
            return;
        }
        p->buf = b;
        p->cap = cap;
    }
    memcpy(p->buf + p->len, s, n);
    p->len += n;
    p->buf[p->len] = '\0';
}

static void
puts_(struct prom *p, const char *s)
{
    put(p, s, strlen(s));
}

/* s escaped: \\ and \n always, \" in label values. */
static void
escaped(struct prom *p, const char *s, bool quote)
{
    size_t plain = strcspn(s, quote ? "\\\n\"" : "\\\n");

    put(p, s, plain); /* the usual case: nothing to escape */
    for (s += plain; *s != '\0'; s++) {
        if (*s == '\\')
            puts_(p, "\\\\");
        else if (*s == '\n')
            puts_(p, "\\n");
        else if (*s == '"' && quote)
            puts_(p, "\\\"");
        else
            put(p, s, 1);
    }
}

void
prom_family(struct prom *p, const char *name, const char *type, const char *help)
{
    puts_(p, "# HELP ");
    puts_(p, name);
    puts_(p, " ");
    escaped(p, help, false);
    puts_(p, "\n# TYPE ");
    puts_(p, name);
    puts_(p, " ");
    puts_(p, type);
    puts_(p, "\n");
}

static void
labels_(struct prom *p, const char *const *labels, const char *le)
{
    bool any = false;

    for (size_t i = 0; labels != NULL && labels[i] != NULL && labels[i + 1] != NULL; i += 2) {
        puts_(p, any ? "," : "{");
        puts_(p, labels[i]);
        puts_(p, "=\"");
        escaped(p, labels[i + 1], true);
        puts_(p, "\"");
        any = true;
    }
    if (le != NULL) {
        puts_(p, any ? ",le=\"" : "{le=\"");
        puts_(p, le);
        puts_(p, "\"");
        any = true;
    }
    if (any)
        puts_(p, "}");
}

static void
number(struct prom *p, double v)
{
    char b[40];

    if (isinf(v))
        snprintf(b, sizeof(b), "%s", v > 0 ? "+Inf" : "-Inf");
    else if (isnan(v))
        snprintf(b, sizeof(b), "NaN");
    else if (v == floor(v) && fabs(v) < 9e15)
        snprintf(b, sizeof(b), "%.0f", v);
    else
        snprintf(b, sizeof(b), "%.17g", v);
    puts_(p, b);
}

void
prom_sample(struct prom *p, const char *name, const char *const *labels, double v)
{
    puts_(p, name);
    labels_(p, labels, NULL);
    puts_(p, " ");
    number(p, v);
    puts_(p, "\n");
}

void
prom_sample_u64(struct prom *p, const char *name, const char *const *labels, uint64_t v)
{
    char b[24];

    puts_(p, name);
    labels_(p, labels, NULL);
    snprintf(b, sizeof(b), " %" PRIu64 "\n", v);
    puts_(p, b);
}

void
prom_hist_init(struct prom_hist *h, const double *bounds, size_t nb)
{
    memset(h, 0, sizeof(*h));
    h->nb = nb < PROM_HIST_MAX ? nb : PROM_HIST_MAX;
    memcpy(h->bounds, bounds, h->nb * sizeof(*bounds));
}

void
prom_hist_observe(struct prom_hist *h, double v)
{
    size_t i = 0;

    while (i < h->nb && v > h->bounds[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum += v;
}

void
prom_hist_write(struct prom *p, const char *name, const char *const *labels,
                const struct prom_hist *h)
{
    char n[128], le[40];
    uint64_t cum = 0;

    snprintf(n, sizeof(n), "%s_bucket", name);
    for (size_t i = 0; i <= h->nb; i++) {
        cum += h->counts[i];
        if (i < h->nb)
            snprintf(le, sizeof(le), "%g", h->bounds[i]);
        else
            snprintf(le, sizeof(le), "+Inf");
        puts_(p, n);
        labels_(p, labels, le);
        snprintf(le, sizeof(le), " %" PRIu64 "\n", cum);
        puts_(p, le);
    }
    snprintf(n, sizeof(n), "%s_sum", name);
    prom_sample(p, n, labels, h->sum);
    snprintf(n, sizeof(n), "%s_count", name);
    prom_sample_u64(p, n, labels, h->count);
}
