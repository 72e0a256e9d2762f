/* SPDX-License-Identifier: MIT */
/*
 * pgtest.h: a private PostgreSQL server for one test (issue 16), through
 * tests/pg.sh: initdb into a fresh dir under /tmp, its own port and unix
 * socket dir; stopped and removed by pgt_stop (call it from the test's
 * .fini, so that it also runs when an assertion fails). Where PostgreSQL
 * cannot run, pgt_start says why and the test skips itself.
 */
#ifndef DROVER_PGTEST_H
#define DROVER_PGTEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

struct pgt {
    char dir[512]; /* "" when no server runs */
    int port;
    char url[1100]; /* postgresql://postgres@/postgres?host=DIR&port=PORT */
    char why[512];  /* why it could not start */
};

/* 0: running; 77: PostgreSQL is not here (why says so); else failed. */
static inline int
pgt_start(struct pgt *p, int port)
{
    char cmd[1200], line[512];
    FILE *f;
    int st;

    memset(p, 0, sizeof(*p));
    p->port = port;
    snprintf(cmd, sizeof(cmd), "%s/tests/pg.sh start %d 2>&1", DROVER_SOURCE_DIR, port);
    if ((f = popen(cmd, "r")) == NULL)
        return snprintf(p->why, sizeof(p->why), "cannot run tests/pg.sh"), 1;
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        snprintf(p->why, sizeof(p->why), "%s", line); /* the last line */
    }
    st = pclose(f);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return WIFEXITED(st) && WEXITSTATUS(st) == 77 ? 77 : 1;
    snprintf(p->dir, sizeof(p->dir), "%s", p->why);
    p->why[0] = '\0';
    snprintf(p->url, sizeof(p->url), "postgresql://postgres@/postgres?host=%s&port=%d", p->dir,
             port);
    return 0;
}

static inline void
pgt_stop(struct pgt *p)
{
    char cmd[1200];

    if (p->dir[0] == '\0')
        return;
    snprintf(cmd, sizeof(cmd), "%s/tests/pg.sh stop %s >/dev/null 2>&1", DROVER_SOURCE_DIR, p->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "pgtest: could not stop the server in %s\n", p->dir);
    p->dir[0] = '\0';
}

#endif
