/* SPDX-License-Identifier: MIT */
/* logring_test.c: the log ring buffer and its overflow accounting (common/logring.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "logring.h"

static int
push_text(struct logring *r, const char *text)
{
    return logring_push(r, 1000, "shop", "web.1", "n1", text, strlen(text));
}

Test(logring, overwrite_keeps_the_last_lines_in_order, .timeout = 2)
{
    struct logring *r = logring_new(4, 0, true);
    char t[16];

    cr_assert_not_null(r);
    cr_assert_eq(logring_first_seq(r), 1);
    for (int i = 1; i <= 10; i++) {
        snprintf(t, sizeof(t), "line %d", i);
        cr_assert_eq(push_text(r, t), 0);
    }
    cr_assert_eq(logring_count(r), 4);
    cr_assert_eq(logring_first_seq(r), 7);
    cr_assert_eq(logring_next_seq(r), 11);
    for (size_t i = 0; i < 4; i++) {
        const struct logring_line *l = logring_at(r, i);

        snprintf(t, sizeof(t), "line %zu", i + 7);
        cr_assert_str_eq(l->text, t);
        cr_assert_eq(l->seq, i + 7);
        cr_assert_str_eq(l->app, "shop");
        cr_assert_str_eq(l->source, "web.1");
        cr_assert_str_eq(l->node, "n1");
    }
    cr_assert_null(logring_at(r, 4));
    logring_free(r);
}

Test(logring, index_after_finds_where_a_reader_left_off, .timeout = 2)
{
    struct logring *r = logring_new(4, 0, true);

    for (int i = 0; i < 10; i++)
        push_text(r, "x");
    /* kept: seq 7..10 */
    cr_assert_eq(logring_index_after(r, 0), 0); /* fell behind: from the oldest */
    cr_assert_eq(logring_index_after(r, 6), 0);
    cr_assert_eq(logring_index_after(r, 7), 1);
    cr_assert_eq(logring_index_after(r, 9), 3);
    cr_assert_eq(logring_index_after(r, 10), 4); /* nothing new */
    cr_assert_eq(logring_index_after(r, 99), 4);
    logring_free(r);
}

Test(logring, overwrite_respects_a_byte_limit, .timeout = 2)
{
    char big[600];
    struct logring *r = logring_new(100, 2000, true);

    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    for (int i = 0; i < 10; i++)
        cr_assert_eq(push_text(r, big), 0);
    cr_assert_leq(logring_bytes(r), 2000);
    cr_assert_eq(logring_count(r), 3);
    cr_assert_eq(logring_first_seq(r), 8);
    /* A line larger than the whole ring is refused, not half kept. */
    struct logring *small = logring_new(10, 100, true);
    cr_assert_eq(push_text(small, big), -EINVAL);
    cr_assert_eq(logring_count(small), 0);
    logring_free(small);
    logring_free(r);
}

Test(logring, a_full_queue_refuses_and_pop_makes_room, .timeout = 2)
{
    struct logring *r = logring_new(3, 0, false);

    for (int i = 0; i < 3; i++)
        cr_assert_eq(push_text(r, "ok"), 0);
    cr_assert_eq(push_text(r, "no room"), -ENOBUFS);
    cr_assert_eq(logring_count(r), 3);
    logring_pop(r, 2);
    cr_assert_eq(logring_count(r), 1);
    cr_assert_eq(logring_at(r, 0)->seq, 3);
    cr_assert_eq(push_text(r, "again"), 0);
    cr_assert_eq(logring_at(r, 1)->seq, 4);
    logring_free(r);
}

Test(logring, overflow_is_counted_and_replaced_by_one_marker, .timeout = 2)
{
    struct logring *r = logring_new(4, 0, false);
    struct logring_drops d = {0};
    char t[16];
    int refused = 0;

    for (int i = 1; i <= 10; i++) {
        snprintf(t, sizeof(t), "line %d", i);
        if (logring_push_counted(r, &d, 1, "shop", "worker.1", "n1", t, strlen(t)) == -ENOBUFS)
            refused++;
    }
    cr_assert_eq(refused, 6);
    cr_assert_eq(d.dropped, 6);
    cr_assert_eq(logring_count(r), 4);
    /* The sender ships two lines: room again. The next line is preceded by
     * the marker, which takes the place of the six refused lines. */
    logring_pop(r, 2);
    cr_assert_eq(logring_push_counted(r, &d, 2, "shop", "worker.1", "n1", "line 11", 7), 0);
    cr_assert_eq(d.dropped, 0);
    cr_assert_eq(logring_count(r), 4);
    cr_assert_str_eq(logring_at(r, 2)->text, "drover: 6 lines dropped (log buffer full)");
    cr_assert_str_eq(logring_at(r, 2)->source, "worker.1");
    cr_assert_str_eq(logring_at(r, 3)->text, "line 11");
    /* Every line is accounted for: 4 kept of 1-4, 6 dropped, line 11. */
    cr_assert_str_eq(logring_at(r, 1)->text, "line 4");
    logring_free(r);
}

Test(logring, marker_waits_until_the_line_after_it_fits, .timeout = 2)
{
    struct logring *r = logring_new(2, 0, false);
    struct logring_drops d = {0};

    logring_push_counted(r, &d, 1, "a", "web.1", NULL, "1", 1);
    logring_push_counted(r, &d, 1, "a", "web.1", NULL, "2", 1);
    cr_assert_eq(logring_push_counted(r, &d, 1, "a", "web.1", NULL, "3", 1), -ENOBUFS);
    /* Still full: the marker is not pushed into the reserve for a line
     * that cannot follow it; the count keeps growing. */
    cr_assert_eq(logring_push_counted(r, &d, 1, "a", "web.1", NULL, "4", 1), -ENOBUFS);
    cr_assert_eq(logring_count(r), 2);
    cr_assert_eq(d.dropped, 2);
    cr_assert_str_eq(logring_at(r, 0)->node, "");
    logring_free(r);
}

Test(logring, a_source_that_ends_flushes_its_marker_into_the_reserve, .timeout = 2)
{
    struct logring *r = logring_new(2, 0, false);
    struct logring_drops d = {0};

    logring_push_counted(r, &d, 1, "a", "web.1", "n", "1", 1);
    logring_push_counted(r, &d, 1, "a", "web.1", "n", "2", 1);
    logring_push_counted(r, &d, 1, "a", "web.1", "n", "3", 1);
    cr_assert_eq(d.dropped, 1);
    cr_assert_eq(logring_flush_drops(r, &d, 2, "a", "web.1", "n"), 0);
    cr_assert_eq(d.dropped, 0);
    cr_assert_eq(logring_count(r), 3);
    cr_assert_str_eq(logring_at(r, 2)->text, "drover: 1 line dropped (log buffer full)");
    /* Nothing pending: flushing adds nothing. */
    cr_assert_eq(logring_flush_drops(r, &d, 2, "a", "web.1", "n"), 0);
    cr_assert_eq(logring_count(r), 3);
    cr_assert_eq(logring_lost_markers(r), 0);
    logring_free(r);
}

Test(logring, a_full_reserve_counts_lost_markers, .timeout = 2)
{
    struct logring *r = logring_new(1, 0, false); /* reserve: 8 */
    struct logring_drops d = {0};
    int ok = 0;

    push_text(r, "1");
    for (int i = 0; i < 20; i++) {
        d.dropped = 1;
        ok += logring_flush_drops(r, &d, 1, "a", "web.1", "n") == 0;
    }
    cr_assert_eq(ok, 8);
    cr_assert_eq(logring_lost_markers(r), 12);
    logring_free(r);
}

Test(logring, a_queue_byte_limit_refuses_lines, .timeout = 2)
{
    struct logring *r = logring_new(1000, 300, false);
    struct logring_drops d = {0};
    char line[100];
    int kept = 0;

    memset(line, 'x', sizeof(line));
    for (int i = 0; i < 10; i++)
        kept += logring_push_counted(r, &d, 1, "a", "web.1", "n", line, sizeof(line)) == 0;
    cr_assert_eq(kept, 2);
    cr_assert_eq(d.dropped, 8);
    cr_assert_leq(logring_bytes(r), 300);
    logring_free(r);
}
