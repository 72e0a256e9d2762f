/* SPDX-License-Identifier: MIT */
/*
 * backoff.c: when to restart an instance that crashed.
 *
 * The first crash restarts at once (a one-off fault should cost nothing);
 * after that the delay doubles from 1 s up to 5 min, so that a process that
 * cannot start does not eat the node. "Equal jitter" (half fixed, half
 * random) keeps instances that crashed together from restarting together
 * while still guaranteeing a minimum wait. A run of 10 min or more counts as
 * recovered and resets the count. Pure functions: the caller supplies the
 * randomness and the clock, so the unit tests see the exact schedule.
 */
#include "agt.h"

uint64_t
agt_backoff_ms(uint32_t consecutive, uint32_t rnd)
{
    uint64_t base = AGT_BACKOFF_BASE_MS;
    uint64_t half;

    if (consecutive <= 1)
        return 0;
    for (uint32_t k = 2; k < consecutive && base < AGT_BACKOFF_CAP_MS; k++)
        base *= 2;
    if (base > AGT_BACKOFF_CAP_MS)
        base = AGT_BACKOFF_CAP_MS;
    half = base / 2;
    return base - half + rnd % (half + 1);
}

uint32_t
agt_backoff_next(uint32_t consecutive, uint64_t up_ms)
{
    if (up_ms >= AGT_BACKOFF_RESET_MS)
        return 1;
    if (consecutive == UINT32_MAX)
        return consecutive;
    return consecutive + 1;
}
