/* SPDX-License-Identifier: MIT */
/* prom_test.c: the Prometheus text format (common/prom.c). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "prom.h"

Test(prom, help_and_type_lines_then_samples, .timeout = 2)
{
    struct prom p;
    const char *l[] = {"state", "ready", NULL};

    prom_init(&p);
    prom_family(&p, "drover_nodes", "gauge", "Nodes by state.");
    prom_sample_u64(&p, "drover_nodes", l, 3);
    prom_sample(&p, "drover_up", NULL, 1);
    cr_assert_not(p.failed);
    cr_expect_str_eq(p.buf, "# HELP drover_nodes Nodes by state.\n"
                            "# TYPE drover_nodes gauge\n"
                            "drover_nodes{state=\"ready\"} 3\n"
                            "drover_up 1\n");
    free(p.buf);
}

Test(prom, label_values_and_help_are_escaped, .timeout = 2)
{
    struct prom p;
    const char *l[] = {"app", "a\"b\\c\nd", "x", "é", NULL};

    prom_init(&p);
    prom_family(&p, "m", "counter", "back\\slash\nnew \"line\"");
    prom_sample_u64(&p, "m", l, 7);
    cr_expect_str_eq(p.buf, "# HELP m back\\\\slash\\nnew \"line\"\n"
                            "# TYPE m counter\n"
                            "m{app=\"a\\\"b\\\\c\\nd\",x=\"é\"} 7\n");
    free(p.buf);
}

Test(prom, numbers_are_exact, .timeout = 2)
{
    struct prom p;

    prom_init(&p);
    prom_sample(&p, "a", NULL, 0.25);
    prom_sample(&p, "b", NULL, 1e20);
    prom_sample(&p, "c", NULL, 1.0 / 0.0);
    prom_sample_u64(&p, "d", NULL, UINT64_MAX);
    cr_expect_str_eq(p.buf, "a 0.25\nb 1e+20\nc +Inf\nd 18446744073709551615\n");
    free(p.buf);
}

Test(prom, histogram_buckets_are_cumulative_with_inf_sum_and_count, .timeout = 2)
{
    static const double bounds[] = {0.01, 0.1, 1};
    struct prom_hist h;
    struct prom p;
    const char *l[] = {"verb", "sync", NULL};

    prom_hist_init(&h, bounds, 3);
    prom_hist_observe(&h, 0.005);
    prom_hist_observe(&h, 0.01); /* le is inclusive */
    prom_hist_observe(&h, 0.5);
    prom_hist_observe(&h, 7);
    prom_init(&p);
    prom_hist_write(&p, "t_seconds", l, &h);
    cr_expect_str_eq(p.buf, "t_seconds_bucket{verb=\"sync\",le=\"0.01\"} 2\n"
                            "t_seconds_bucket{verb=\"sync\",le=\"0.1\"} 2\n"
                            "t_seconds_bucket{verb=\"sync\",le=\"1\"} 3\n"
                            "t_seconds_bucket{verb=\"sync\",le=\"+Inf\"} 4\n"
                            "t_seconds_sum{verb=\"sync\"} 7.5149999999999997\n"
                            "t_seconds_count{verb=\"sync\"} 4\n");
    free(p.buf);
}
