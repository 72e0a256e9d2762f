/* SPDX-License-Identifier: MIT */
/*
 * probe.h: is anything accepting on 127.0.0.1:PORT, for a range of ports;
 * shared by bench-probe and bench-spawn.
 */
#ifndef DROVER_BENCH_PROBE_H
#define DROVER_BENCH_PROBE_H

#include <stdbool.h>
#include <stdint.h>

/* One connect; the connection is reset at once (no TIME_WAIT left). */
bool probe_accepts(unsigned port);
/* CLOCK_MONOTONIC in ns: comparable across processes. */
uint64_t probe_now_ns(void);
/*
 * Wait until at least want ports of [lo, hi] accept (up) or none does
 * (!up), each port probed until it reached that state. Returns the ns at
 * which it was reached, or 0 after timeout_ms.
 */
uint64_t probe_wait(unsigned lo, unsigned hi, unsigned want, bool up, unsigned timeout_ms);

#endif
