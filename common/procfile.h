/* SPDX-License-Identifier: MIT */
/*
 * procfile.h: parse a Procfile.
 *
 *   web: ./server --port $PORT
 *   worker: ./work
 *
 * One "TYPE: COMMAND" per line; blank lines and lines starting with '#' are
 * skipped; CRLF is accepted. TYPE matches [A-Za-z0-9_-]{1,30}, as on Heroku,
 * and is unique; case matters ("Web" and "web" are two types, as on Heroku).
 * "run" is reserved for one-off processes. COMMAND is trimmed and must not be
 * empty; it runs with /bin/sh -c.
 */
#ifndef DROVER_PROCFILE_H
#define DROVER_PROCFILE_H

#include <stddef.h>

#define PROCFILE_MAX_SIZE (64u << 10)
#define PROCFILE_MAX_TYPES 64
#define PROCFILE_MAX_COMMAND 4096

struct procfile_entry {
    char type[32];
    char *command; /* owned */
};

struct procfile {
    size_t n;
    struct procfile_entry *entries; /* owned */
};

/*
 * Parse text[0..len). On error returns -EINVAL with a one-line reason in err
 * ("line 3: missing command for type 'web'") and pf left empty.
 * A Procfile with no types is an error.
 */
int procfile_parse(const char *text, size_t len, struct procfile *pf, char *err, size_t errsz);
void procfile_fini(struct procfile *pf);
const struct procfile_entry *procfile_find(const struct procfile *pf, const char *type);

#endif
