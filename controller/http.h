/* SPDX-License-Identifier: MIT */
/*
 * http.h: the controller's HTTP front end (http.c), its JSON request
 * decoding (http_decode.c, pure, fuzzed) and its metrics (metrics.c).
 */
#ifndef DROVER_CTL_HTTP_H
#define DROVER_CTL_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drover.pb-c.h"

struct ctl;

/* The /v1 verbs that carry a JSON body. */
enum ctl_http_verb {
    HTTP_NONE,
    HTTP_SCALE,
    HTTP_CONFIG_SET,
    HTTP_CONFIG_UNSET,
    HTTP_ROLLBACK,
    HTTP_RESTART,
    HTTP_CREATE,
};

/* http_decode.c: body (len bytes, not necessarily NUL-terminated) into the
 * request message (*out, NULL when the body holds nothing of that kind).
 * 0, -EINVAL with err saying what is wrong, or -ENOMEM. */
int ctl_http_decode(enum ctl_http_verb verb, const char *app, const char *body, size_t len,
                    Drover__Message **out, char *err, size_t errsz);

/* http.c */
int ctl_http_start(struct ctl *ctl);
void ctl_http_stop(struct ctl *ctl);

/* dash.c: the dashboard's pages; false when path is not one of them */
struct httpd_req;
bool ctl_dash_handle(struct ctl *ctl, struct httpd_req *r);
/* Does r carry a live dashboard session cookie? */
bool ctl_dash_session_ok(const struct httpd_req *r);

/* metrics.c: counters (one call from where each thing happens) and the
 * /metrics page. */
void ctl_metrics_call(const char *verb, bool api, Drover__ErrorCode code, uint64_t ns);
/* A change set written (rc 0) or refused, and how long it took. */
void ctl_metrics_commit(int rc, uint64_t ns);
void ctl_metrics_deploy(const char *app, const char *result);
void ctl_metrics_placement(void);
void ctl_metrics_log_lines(uint64_t n);
/* The exposition text (malloc'd) of the model and counters. 0 or -ENOMEM. */
int ctl_metrics_render(struct ctl *ctl, char **text, size_t *len);

#endif
