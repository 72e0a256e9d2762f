/* SPDX-License-Identifier: MIT */
/*
 * ask.h: one request to a drover endpoint from a test, the way an agent or
 * the CLI sends it (a REQ socket), without the CLI in between: for what the
 * CLI would never send (bad input, crafted envelopes) and for the replies'
 * fields the CLI does not print.
 */
#ifndef DROVER_IT_ASK_H
#define DROVER_IT_ASK_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

/* buf on a fresh REQ socket (nanomsg's resend off, so one copy goes): the
 * reply's length, its bytes malloc'd in *reply, or -1 (*reply NULL) when
 * none came within timeout_ms. */
int h_round_trip(const char *endpoint, const void *buf, size_t len, int timeout_ms,
                 uint8_t **reply);

/* m sealed by snd, one round trip, the reply opened with wire_open (the
 * process's keyring): 0 with it in *rep (wire_msg_free it), -ETIMEDOUT when
 * none came, or wire_open's error. */
int h_ask(const char *endpoint, struct wire_sender *snd, const Drover__Message *m, int timeout_ms,
          Drover__Message **rep);

#endif
