/* SPDX-License-Identifier: MIT */
#include "ask.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>

int
h_round_trip(const char *endpoint, const void *buf, size_t len, int timeout_ms, uint8_t **reply)
{
    int s = nn_socket(AF_SP, NN_REQ), big = 1 << 30, n = -1;
    void *in = NULL;

    *reply = NULL;
    if (s < 0)
        return -1;
    nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVTIMEO, &timeout_ms, sizeof(timeout_ms));
    nn_setsockopt(s, NN_SOL_SOCKET, NN_SNDTIMEO, &timeout_ms, sizeof(timeout_ms));
    nn_setsockopt(s, NN_REQ, NN_REQ_RESEND_IVL, &big, sizeof(big));
    if (nn_connect(s, endpoint) >= 0 && nn_send(s, buf, len, 0) >= 0)
        n = nn_recv(s, &in, NN_MSG, 0);
    if (n >= 0) {
        if ((*reply = malloc((size_t)n + 1)) != NULL)
            memcpy(*reply, in, (size_t)n);
        else
            n = -1;
        nn_freemsg(in);
    }
    nn_close(s);
    return n;
}

int
h_ask(const char *endpoint, struct wire_sender *snd, const Drover__Message *m, int timeout_ms,
      Drover__Message **rep)
{
    struct wire_header h;
    uint8_t *buf = NULL, *reply = NULL;
    size_t len = 0;
    int n, rc;

    *rep = NULL;
    if ((rc = wire_seal(snd, m, &buf, &len)) < 0)
        return rc;
    n = h_round_trip(endpoint, buf, len, timeout_ms, &reply);
    free(buf);
    if (n < 0)
        return -ETIMEDOUT;
    rc = wire_open(reply, (size_t)n, &h, rep);
    free(reply);
    return rc;
}
