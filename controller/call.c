/* SPDX-License-Identifier: MIT */
/*
 * call.c: what a handler may do with its call (struct ctl_call, ctl.h):
 * refuse it with a code and one line for a person, look up the app it
 * names, and, for a call that finishes later (a long poll, work in the
 * thread pool), end it.
 *
 * A call ends through its own continuation (c->finish, set by dispatch.c):
 * the same commit-then-reply code as a call that ends at once. Going
 * through the pointer keeps the files that hold pending calls (logs.c,
 * endpoints.c, runs.c, slugs.c) from calling back into the dispatcher,
 * which calls them: the request path has no circle.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"

static void vfail(struct ctl_call *c, Drover__ErrorCode code, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void
vfail(struct ctl_call *c, Drover__ErrorCode code, const char *fmt, va_list ap)
{
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    c->code = code;
}

int
ctl_fail(struct ctl_call *c, Drover__ErrorCode code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfail(c, code, fmt, ap);
    va_end(ap);
    return -1;
}

int
ctl_oom(struct ctl_call *c)
{
    return ctl_fail(c, DROVER__ERROR_CODE__ERR_INTERNAL, "out of memory");
}

bool
ctl_str_ok(const char *s, size_t max)
{
    return s != NULL && strnlen(s, max + 1) <= max;
}

struct ctl_app *
ctl_call_app(struct ctl_call *c, const char *name)
{
    struct ctl_app *a;

    if (!ctl_str_ok(name, APP_NAME_MAX) || !name_app_valid(name)) {
        ctl_fail(c, DROVER__ERROR_CODE__ERR_BAD_REQUEST,
                 "invalid app name (want [a-z][a-z0-9-], at most 30 characters)");
        return NULL;
    }
    a = ctl_app_find(c->ctl->model, name);
    if (a == NULL)
        ctl_fail(c, DROVER__ERROR_CODE__ERR_NOT_FOUND, "no app %s", name);
    return a;
}

void
ctl_call_end(struct ctl_call *c, const Drover__Message *rep)
{
    c->finish(c, rep);
}

void
ctl_call_end_error(struct ctl_call *c, Drover__ErrorCode code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfail(c, code, fmt, ap);
    va_end(ap);
    c->finish(c, NULL);
}
