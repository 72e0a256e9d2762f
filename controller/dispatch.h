/* SPDX-License-Identifier: MIT */
/*
 * dispatch.h: the controller's one request path, as seen by a front end.
 *
 * A front end (the nanomsg API endpoint, the HTTP server) turns what it
 * received into a Drover__Message request and calls ctl_call(). The
 * dispatcher runs the request type's handler over the model, commits the
 * changes the handler made in one store transaction, and only then calls done
 * with the reply: the handler's reply, or an Error message (code, one line
 * for a person) when the handler refused or the commit failed. A front end
 * never touches the model or the store itself.
 *
 * done may run before ctl_call returns (most requests) or later, from the
 * loop (a request that waits: endpoints watch, logs tail, release creation
 * in the thread pool). rep is valid only during done; done must copy what it
 * keeps. done runs exactly once per call, also when the controller stops
 * (then with ERR_UNAVAILABLE).
 */
#ifndef DROVER_CTL_DISPATCH_H
#define DROVER_CTL_DISPATCH_H

#include "drover.pb-c.h"

struct ctl;

typedef void ctl_call_done(void *arg, const Drover__Message *rep);

/* req is consumed (freed with wire_msg_free when the call is over). */
void ctl_call(struct ctl *ctl, Drover__Message *req, ctl_call_done *done, void *arg);

#endif
