/* SPDX-License-Identifier: MIT */
/*
 * dotenv.h: parse a .env file exactly as the npm `dotenv` package's parse()
 * does (the reference most tools follow), plus one rule of ours: a line that
 * is neither a variable, blank, a comment nor part of a multi-line value is
 * an error naming its line, where dotenv would skip it silently.
 *
 *   export KEY=value          "export " is dropped
 *   KEY = value  # comment    spaces trimmed around unquoted values and keys
 *   KEY='a # b'  KEY="a\nb"   '...', "..." and `...` quotes; \n and \r are
 *                             expanded in double quotes only
 *   KEY="two                  quoted values may span lines
 *   lines"
 *   KEY: value                a colon and a space also separate
 *
 * Keys are [A-Za-z0-9_.-]+ as dotenv reads them; whether a key suits the
 * caller (drover's config keys are narrower) is the caller's to check, with
 * the variable's line to name.
 */
#ifndef DROVER_DOTENV_H
#define DROVER_DOTENV_H

#include <stddef.h>

#define DOTENV_MAX_SIZE (1u << 20)

struct dotenv_var {
    char *key;     /* owned */
    char *value;   /* owned; may hold newlines */
    unsigned line; /* where its key is, from 1 */
};

/*
 * Parse text[0..len) into *vars (*n of them, in first-seen order; a key
 * seen again takes the later value, as in dotenv). Returns 0, or -EINVAL
 * with "line N: ..." in err (a line that is not a variable, a NUL byte, a
 * file over DOTENV_MAX_SIZE), or -ENOMEM; *vars is NULL on error.
 */
int dotenv_parse(const char *text, size_t len, struct dotenv_var **vars, size_t *n, char *err,
                 size_t errsz);
void dotenv_free(struct dotenv_var *vars, size_t n);

#endif
