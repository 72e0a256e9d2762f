/* SPDX-License-Identifier: MIT */
/*
 * notify.h: systemd's service notification protocol (sd_notify(3)), spoken
 * directly: READY=1, STOPPING=1 and watchdog pings, sent as datagrams to
 * $NOTIFY_SOCKET. Without that variable (not under systemd) every call does
 * nothing, so the daemons need no libsystemd.
 */
#ifndef DROVER_NOTIFY_H
#define DROVER_NOTIFY_H

#include <stdint.h>
#include <uv.h>

/*
 * Read NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID once and remove them
 * from the environment (the processes a daemon starts are not the service).
 */
void notify_init(void);

/* Send state ("READY=1", "STOPPING=1", ...). 0, or a negative errno; 0
 * when there is no notify socket. */
int notify_send(const char *state);

/*
 * When systemd asked for a watchdog (WATCHDOG_USEC for this pid), ping it
 * from loop at half the interval, so that a wedged loop is what stops the
 * pings. notify_watchdog_stop() closes the timer (before uv_run can return).
 */
int notify_watchdog_start(uv_loop_t *loop);
void notify_watchdog_stop(void);

/* The ping interval in ms (0: no watchdog). */
uint64_t notify_watchdog_ms(void);

/* Unit tests: parse a WATCHDOG_USEC/WATCHDOG_PID pair for pid; the ping
 * interval in ms, 0 when there is none. */
uint64_t notify_parse_watchdog(const char *usec, const char *pid, long self);

#endif
