/* SPDX-License-Identifier: MIT */
/* Procfile inputs found by tests/fuzz/fuzz_procfile, kept as regressions. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "procfile.h"

Test(procfile_hostile, nul_inside_a_type_name, .timeout = 2)
{
    /* "e777…run77" then NULs before the colon: a name that looked valid up
     * to the NUL overflowed the entry's type buffer. */
    static const char text[] = "bb:w\ne77777777777777777run77\0\0\0\0\0\0\0\0\0\0"
                               "77wMbeb: a\xff\x9a\x88\x9d: b";
    struct procfile pf;
    char err[200] = "";

    cr_assert_eq(procfile_parse(text, sizeof(text) - 1, &pf, err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "line 2") != NULL, "%s", err);
    cr_assert_eq(pf.n, 0);
    procfile_fini(&pf);
}
