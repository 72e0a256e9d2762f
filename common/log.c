/* SPDX-License-Identifier: MIT */
/*
 * log.c: logfmt events on stdout, one write(2) per line.
 *
 * drover never writes log files: the platform collects stdout (twelve-factor
 * XI). Each line is built in a stack buffer and written whole, so events from
 * the loop thread and from uv_queue_work threads never interleave.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define LOG_LINE_MAX 16384

static const char *log_proc = "drover";
static enum log_level log_min = LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void
log_init(const char *proc)
{
    log_proc = proc;
}

void
log_set_level(enum log_level min)
{
    log_min = min;
}

static void
write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* stdout gone: nothing better to do */
        buf += n;
        len -= (size_t)n;
    }
}

/* One event line in line[LOG_LINE_MAX], newline included; its length. */
static size_t format_event(char *line, enum log_level lvl, const char *event, const char *fmt,
                           va_list ap) __attribute__((format(printf, 4, 0)));

static size_t
format_event(char *line, enum log_level lvl, const char *event, const char *fmt, va_list ap)
{
    char ts[32];
    size_t len;
    int n;

    fmt_time_ms(now_ms(), ts);
    n = snprintf(line, LOG_LINE_MAX, "ts=%s level=%s proc=%s event=%s", ts, level_names[lvl],
                 log_proc, event);
    len = n < 0 ? 0 : (size_t)n;
    if (fmt != NULL && fmt[0] != '\0' && len + 2 < LOG_LINE_MAX) {
        line[len++] = ' ';
        n = vsnprintf(line + len, LOG_LINE_MAX - len, fmt, ap);
        if (n > 0)
            len += (size_t)n;
    }
    if (len > LOG_LINE_MAX - 2)
        len = LOG_LINE_MAX - 2; /* truncated: still one line */
    line[len++] = '\n';
    return len;
}

void
log_eventv(enum log_level lvl, const char *event, const char *fmt, va_list ap)
{
    char line[LOG_LINE_MAX];
    size_t len;

    if (lvl < log_min)
        return;
    len = format_event(line, lvl, event, fmt, ap);
    write_all(STDOUT_FILENO, line, len);
}

/* A pipe already half full: what is left is kept for the blocking events
 * of log_event, so that a reader that stalls is not made to stall them
 * sooner by lines that could have been dropped. */
static bool
pipe_half_full(size_t len)
{
    struct stat st;
    int queued = 0, size;

    if (fstat(STDOUT_FILENO, &st) < 0 || !S_ISFIFO(st.st_mode))
        return false;
    size = fcntl(STDOUT_FILENO, F_GETPIPE_SZ);
    if (size <= 0 || ioctl(STDOUT_FILENO, FIONREAD, &queued) < 0)
        return false;
    return (size_t)queued + len > (size_t)size / 2;
}

/*
 * Never blocks: the line is cut to PIPE_BUF (a write that size into a pipe
 * that polls writable goes in whole and at once) and written only when
 * stdout polls writable now and, for a pipe, fits in its first half;
 * otherwise it is dropped.
 */
int
log_event_try(enum log_level lvl, const char *event, const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    struct pollfd pfd = {.fd = STDOUT_FILENO, .events = POLLOUT};
    va_list ap;
    size_t len;
    ssize_t n;

    if (lvl < log_min)
        return 0;
    if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLOUT))
        return -EAGAIN;
    va_start(ap, fmt);
    len = format_event(line, lvl, event, fmt, ap);
    va_end(ap);
    if (len > 4096) {
        len = 4096;
        line[len - 1] = '\n';
    }
    if (pipe_half_full(len))
        return -EAGAIN;
    n = write(STDOUT_FILENO, line, len);
    return n == (ssize_t)len ? 0 : -EAGAIN;
}

void
log_event(enum log_level lvl, const char *event, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_eventv(lvl, event, fmt, ap);
    va_end(ap);
}

void
log_fatal(int code, const char *event, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_eventv(LOG_ERROR, event, fmt, ap);
    va_end(ap);
    exit(code);
}

static int
needs_quote(const char *s)
{
    if (*s == '\0')
        return 1;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f)
            return 1;
    }
    return 0;
}

const char *
log_q(const char *s)
{
    static _Thread_local char bufs[8][1024];
    static _Thread_local unsigned next;
    char *out, *p, *end;

    if (s == NULL)
        s = "";
    if (!needs_quote(s) && strlen(s) < 900)
        return s;
    out = bufs[next++ % 8];
    p = out;
    end = out + 1024 - 8; /* room for an escape, "...", the quote, NUL */
    *p++ = '"';
    for (; *s && p < end; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '"':
            *p++ = '\\', *p++ = '"';
            break;
        case '\\':
            *p++ = '\\', *p++ = '\\';
            break;
        case '\n':
            *p++ = '\\', *p++ = 'n';
            break;
        case '\t':
            *p++ = '\\', *p++ = 't';
            break;
        case '\r':
            *p++ = '\\', *p++ = 'r';
            break;
        default:
            *p++ = (c < ' ' || c == 0x7f) ? '?' : (char)c;
        }
    }
    if (*s) {
        memcpy(p, "...", 3);
        p += 3;
    }
    *p++ = '"';
    *p = '\0';
    return out;
}
