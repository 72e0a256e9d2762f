/* SPDX-License-Identifier: MIT */
/* dashcode_test.c: one-time dashboard sign-in codes (common/dashcode.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "dashcode.h"

Test(dashcode, made_and_checked_with_the_same_token, .timeout = 2)
{
    char code[DASHCODE_LEN + 1], code2[DASHCODE_LEN + 1];
    uint8_t nonce[DASHCODE_NONCE], nonce2[DASHCODE_NONCE];
    uint64_t exp = 0;

    cr_assert_eq(dashcode_make("tok", 1000000, code, sizeof(code)), 0);
    cr_assert_eq(strlen(code), DASHCODE_LEN);
    cr_expect_eq(dashcode_check("tok", code, 1000000, nonce, &exp), 0);
    cr_expect_eq(exp, 1000000 + DASHCODE_TTL_MS);
    cr_assert_eq(dashcode_make("tok", 1000000, code2, sizeof(code2)), 0);
    cr_expect_eq(dashcode_check("tok", code2, 1000000, nonce2, &exp), 0);
    cr_expect(memcmp(nonce, nonce2, DASHCODE_NONCE) != 0, "each code has its own nonce");
}

Test(dashcode, refused_when_expired_forged_or_malformed, .timeout = 2)
{
    char code[DASHCODE_LEN + 1];
    uint8_t nonce[DASHCODE_NONCE];
    uint64_t exp;

    cr_assert_eq(dashcode_make("tok", 1000000, code, sizeof(code)), 0);
    cr_expect_eq(dashcode_check("tok", code, 1000000 + DASHCODE_TTL_MS + 1, nonce, &exp), -ETIME);
    cr_expect_eq(dashcode_check("other", code, 1000000, nonce, &exp), -EKEYREJECTED);
    code[20] = code[20] == 'a' ? 'b' : 'a';
    cr_expect_eq(dashcode_check("tok", code, 1000000, nonce, &exp), -EKEYREJECTED);
    cr_expect_eq(dashcode_check("tok", "abc", 1000000, nonce, &exp), -EINVAL);
    code[5] = 'z';
    cr_expect_eq(dashcode_check("tok", code, 1000000, nonce, &exp), -EINVAL);
}
