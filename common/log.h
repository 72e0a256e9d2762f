/* SPDX-License-Identifier: MIT */
/*
 * log.h: one logfmt event per line on stdout, the only log drover writes.
 *
 *   ts=2026-11-24T10:00:00.123Z level=info proc=agent event=spawned app=shop ...
 *
 * Each event is assembled in a local buffer and written with one write(2), so
 * lines from several threads never interleave. Values that may hold spaces,
 * quotes or '=' go through log_q(), which quotes and escapes them.
 */
#ifndef DROVER_LOG_H
#define DROVER_LOG_H

#include <stdarg.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF /* log_set_level only */ };

/* proc: "controller", "agent" or "cli"; borrowed, must outlive logging. */
void log_init(const char *proc);
void log_set_level(enum log_level min);

/*
 * event: a short snake_case word ("spawned", "sync_failed").
 * fmt: the rest of the line as key=value pairs, or NULL/"" for none.
 */
void log_event(enum log_level lvl, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_eventv(enum log_level lvl, const char *event, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* As log_event, but never blocks: cut to 4096 bytes, and dropped
 * (-EAGAIN) when stdout cannot take it now. For echoes that must not stall
 * the caller (the agent's DROVER_ECHO_APP_LOGS). */
int log_event_try(enum log_level lvl, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define log_debug(ev, ...) log_event(LOG_DEBUG, ev, __VA_ARGS__)
#define log_info(ev, ...) log_event(LOG_INFO, ev, __VA_ARGS__)
#define log_warn(ev, ...) log_event(LOG_WARN, ev, __VA_ARGS__)
#define log_error(ev, ...) log_event(LOG_ERROR, ev, __VA_ARGS__)

/*
 * A logfmt value: s unchanged when it needs no quoting, else "..." with \" \\
 * \n \t escaped, truncated to about 900 bytes. Returns one of 8 thread-local
 * buffers used in turn, so up to 8 log_q() results may appear in one call.
 */
const char *log_q(const char *s);

/* Print a fatal start-up error event and exit(code). */
void log_fatal(int code, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

#endif
