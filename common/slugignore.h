/* SPDX-License-Identifier: MIT */
/*
 * slugignore.h: Heroku's .slugignore, the paths `drover deploy` leaves out of
 * a slug. One pattern per line, gitignore's syntax without negation (as on
 * Heroku): blank lines and lines starting with '#' are skipped, trailing
 * spaces dropped; `*` and `?` match within one path component, `[a-z]` a
 * class, `**` any number of components; a pattern with a '/' (other than a
 * trailing one) is relative to the app root ("/tmp", or "doc/" then "*.pdf"), one
 * without matches a name at any depth ("*.psd"); a trailing '/' matches
 * directories only. A matching directory is left out with all it holds.
 */
#ifndef DROVER_SLUGIGNORE_H
#define DROVER_SLUGIGNORE_H

#include <stdbool.h>
#include <stddef.h>

#define SLUGIGNORE_MAX_SIZE (64u << 10)

struct slugignore;

/* Parse text[0..len): *out (free with slugignore_free). 0 or -ENOMEM/-EINVAL. */
int slugignore_parse(const char *text, size_t len, struct slugignore **out);
void slugignore_free(struct slugignore *si);
size_t slugignore_count(const struct slugignore *si);
/* rel: a path relative to the app root ("doc/a.pdf", no leading '/'). */
bool slugignore_match(const struct slugignore *si, const char *rel, bool is_dir);

#endif
