/* SPDX-License-Identifier: MIT */
/*
 * HA fencing on the agent (issue 16): a reply from a lower leader term than
 * the highest seen is never applied; an equal or higher one is, and raises
 * the mark. Term 0 (a SQLite controller, no election) is always equal.
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
    cr_assert_not(agt_term_accept(&seen, 0));
    cr_assert_eq(seen, 3);
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
