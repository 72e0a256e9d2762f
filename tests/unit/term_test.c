/* SPDX-License-Identifier: MIT */
/*
 * HA fencing on the agent (issue 16): a reply from a lower leader term than
 * the highest seen is never applied; an equal or higher one is, and raises
 * the mark. Term 0 (a SQLite controller, no election) is always applied.
 */
#include <criterion/criterion.h>

#include "agt.h"

Test(term, a_lower_term_is_refused_and_changes_nothing, .timeout = 2)
{
    uint64_t seen = 0;

    cr_assert(agt_term_accept(&seen, 3));
    cr_assert_eq(seen, 3);
    cr_assert_not(agt_term_accept(&seen, 2));
    cr_assert_eq(seen, 3);
    cr_assert_not(agt_term_accept(&seen, 1));
    cr_assert_eq(seen, 3);
}

/* A controller on PostgreSQL never sends 0 (it answers only while it leads);
 * 0 is SQLite's: accepted, and it leaves the mark alone. */
Test(term, term_0_is_sqlite_and_always_applied, .timeout = 2)
{
    uint64_t seen = 5;

    cr_assert(agt_term_accept(&seen, 0));
    cr_assert_eq(seen, 5);
    cr_assert_not(agt_term_accept(&seen, 4));
}

Test(term, the_same_and_higher_terms_are_applied, .timeout = 2)
{
    uint64_t seen = 0;

    cr_assert(agt_term_accept(&seen, 0)); /* SQLite: term 0 forever */
    cr_assert(agt_term_accept(&seen, 0));
    cr_assert(agt_term_accept(&seen, 7));
    cr_assert(agt_term_accept(&seen, 7));
    cr_assert(agt_term_accept(&seen, 9));
    cr_assert_eq(seen, 9);
    cr_assert_not(agt_term_accept(&seen, 8));
}
