/* SPDX-License-Identifier: MIT */
/*
 * pipes.h: drive the CLI with a stdin of our own and read its output while
 * it runs (harness.h's h_cli gives it /dev/null and reads only at the end).
 * Children run in their own process group with their cwd in the cluster's
 * directory, so h_cleanup() kills whatever a failed test leaves.
 */
#ifndef DROVER_PIPES_H
#define DROVER_PIPES_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "harness.h"

struct p_child {
    pid_t pid;
    int in;  /* its stdin, or -1 once closed */
    int out; /* its stdout */
    int err; /* its stderr, or -1 when merged into out */
    char *obuf, *ebuf;
    size_t olen, elen, ocap, ecap;
};

/* Start argv[0] (a path) with env; stderr separate unless merge. */
void p_spawn(struct h_cluster *c, struct p_child *ch, const char *const *argv,
             const char *const *env, bool merge);
/* The drover CLI with DROVER_CONTROLLER set for c; args NULL-terminated. */
void p_spawn_cli(struct h_cluster *c, struct p_child *ch, const char *const *args);
/* Write all of s to its stdin. */
void p_write(struct p_child *ch, const char *s, size_t len);
void p_close_stdin(struct p_child *ch);
/* Read what is there for up to ms (0: only what is ready). */
void p_pump(struct p_child *ch, int ms);
/* Pump until stdout holds needle; false on timeout. */
bool p_wait_out(struct p_child *ch, const char *needle, int timeout_ms);
/* Pump until it exits; its status as a shell reports it (code, or 128+signal);
 * -1 on timeout (then it is killed). */
int p_wait_exit(struct p_child *ch, int timeout_ms);
void p_kill(struct p_child *ch, int sig);
void p_free(struct p_child *ch);

/* One CLI call with stdin from input (len bytes); captures both outputs. */
int p_cli(struct h_cluster *c, const char *input, size_t len, char **out, char **err,
          int timeout_ms, const char *const *args);

long p_now_ms(void);

#endif
