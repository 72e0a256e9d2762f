/* SPDX-License-Identifier: MIT */
/*
 * client.c: the CLI's one connection to the controller — a blocking nanomsg
 * REQ socket, one request and one reply at a time.
 *
 * Blocking is right here: the CLI has nothing else to do while it waits, and
 * NN_SNDTIMEO/NN_RCVTIMEO (DROVER_TIMEOUT_MS) bound every wait. nanomsg's REQ
 * socket re-sends a request that got no reply after NN_REQ_RESEND_IVL; the
 * interval is set past our timeout so that a slow controller never receives
 * a non-idempotent request (a release, a scale) twice.
 *
 * Before the first request a plain TCP connect (probe.c) checks that
 * something listens at the address, so that a stopped controller is said
 * ("connection refused") at once instead of after the whole timeout.
 *
 * Every failure is printed here, as the one line a person sees, so the verbs
 * only decide the exit status.
 *
 * Requests are sealed with the key derived from DROVER_API_TOKEN (wire.h),
 * and only replies sealed with that key are believed. Without a token the
 * request goes out unsealed, so that the controller itself says it wants
 * one. A refusal comes back unsealed (the controller cannot seal for a peer
 * whose key it does not know): it is shown as "the controller refused the
 * API token", distinct from "cannot reach the controller", and never taken
 * for an answer. Each run has its own sender id, "cli.RANDOM", so that runs
 * in parallel do not trip over each other's counters.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>
#include <sodium.h>

#include "cli.h"
#include "dialcheck.h"
#include "env.h"
#include "wire.h"

#define CLI_CONTROLLER_DEFAULT "tcp://127.0.0.1:7400"
#define CLI_TIMEOUT_DEFAULT 10000
#define CLI_TIMEOUT_MAX 3600000

struct cli_client {
    int sock;
    char endpoint[256];
    uint64_t timeout_ms;
    struct wire_sender sender;
    bool have_token;
};

/* The settings, read once; errors are reported together as bad usage. */
static int
read_env(struct cli_client *c)
{
    struct env_errs errs = {0};

    env_endpoint(&errs, "DROVER_CONTROLLER", CLI_CONTROLLER_DEFAULT, c->endpoint,
                 sizeof(c->endpoint), NULL);
    env_u64(&errs, "DROVER_TIMEOUT_MS", CLI_TIMEOUT_DEFAULT, 1, CLI_TIMEOUT_MAX, &c->timeout_ms);
    for (int i = 0; i < errs.n && i < ENV_MAX_ERRS; i++)
        fprintf(stderr, "drover: %s\n", errs.msg[i]);
    return errs.n > 0 ? -EINVAL : 0;
}

/* The API key from DROVER_API_TOKEN, into the sender and the keyring. */
static int
read_token(struct cli_client *c)
{
    struct env_errs errs = {0};
    char token[4097];
    uint8_t key[WIRE_KEY_BYTES];
    int rc;

    env_token(&errs, "DROVER_API_TOKEN", false, token, sizeof(token));
    if (errs.n > 0) {
        fprintf(stderr, "drover: %s\n", errs.msg[0]);
        return -EINVAL;
    }
    if (token[0] == '\0')
        return 0; /* unsealed: the controller will say it wants a token */
    wire_key_from_token(token, key);
    sodium_memzero(token, sizeof(token));
    wire_sender_set_key(&c->sender, key);
    rc = wire_keyring_add("api", key);
    sodium_memzero(key, sizeof(key));
    if (rc < 0)
        return rc;
    c->have_token = true;
    return 0;
}

/*
 * Fail at once when nothing listens at the controller's address (probe.c);
 * anything else, including a probe that proves nothing, goes on.
 */
static int
probe(struct cli_client *c)
{
    char host[256], addr[256];
    uint16_t port;
    int rc;

    if (env_parse_endpoint(c->endpoint, host, sizeof(host), &port) < 0 ||
        cli_probe_host(host, addr, sizeof(addr)) < 0)
        return 0;
    rc = cli_probe_tcp(addr, port, CLI_PROBE_MS);
    if (rc == -ECONNREFUSED || rc == -EHOSTUNREACH || rc == -ENETUNREACH) {
        cli_fail("cannot reach the controller at %s: %s", c->endpoint,
                 rc == -ECONNREFUSED ? "connection refused (is drover-controller running?)"
                                     : strerror(-rc));
        return rc;
    }
    return 0;
}

static int
set_int(int sock, int level, int opt, int v)
{
    return nn_setsockopt(sock, level, opt, &v, sizeof(v)) < 0 ? -nn_errno() : 0;
}

int
cli_client_new(struct cli_client **out)
{
    struct cli_client *c = calloc(1, sizeof(*c));
    int rc;

    *out = NULL;
    if (c == NULL)
        return -ENOMEM;
    c->sock = -1;
    if (sodium_init() < 0) {
        rc = -ENOMEM;
        cli_fail("cannot initialise libsodium");
        goto fail;
    }
    {
        uint8_t r[4];
        char id[32];

        randombytes_buf(r, sizeof(r));
        snprintf(id, sizeof(id), "cli.%02x%02x%02x%02x", r[0], r[1], r[2], r[3]);
        wire_sender_init(&c->sender, id);
    }
    rc = read_env(c);
    if (rc == 0)
        rc = read_token(c);
    if (rc < 0)
        goto fail;
    c->sock = nn_socket(AF_SP, NN_REQ);
    if (c->sock < 0) {
        rc = -nn_errno();
        cli_fail("cannot open a socket: %s", nn_strerror(-rc));
        goto fail;
    }
    if ((rc = set_int(c->sock, NN_SOL_SOCKET, NN_SNDTIMEO, (int)c->timeout_ms)) < 0 ||
        (rc = set_int(c->sock, NN_SOL_SOCKET, NN_RCVTIMEO, (int)c->timeout_ms)) < 0 ||
        (rc = set_int(c->sock, NN_SOL_SOCKET, NN_RCVMAXSIZE, (int)WIRE_MAX_SIZE)) < 0 ||
        (rc = set_int(c->sock, NN_REQ, NN_REQ_RESEND_IVL, (int)c->timeout_ms + 60000)) < 0) {
        cli_fail("cannot set socket options: %s", nn_strerror(-rc));
        goto fail;
    }
    if ((rc = probe(c)) < 0)
        goto fail;
    /* nanomsg aborts the process when its dial finds no free local port
     * (common/dialcheck.c): say why instead. */
    if ((rc = dial_check(c->endpoint)) < 0 && rc != -EINVAL) {
        cli_fail("cannot dial %s: %s", c->endpoint,
                 rc == -EADDRINUSE ? "no free local port (net.ipv4.ip_local_port_range; too "
                                     "many connections in TIME_WAIT?)"
                 : rc == -EMFILE || rc == -ENFILE ? "no free file descriptor (ulimit -n)"
                                                  : strerror(-rc));
        goto fail;
    }
    if (nn_connect(c->sock, c->endpoint) < 0) {
        rc = -nn_errno();
        cli_fail("cannot connect to %s: %s", c->endpoint, nn_strerror(-rc));
        goto fail;
    }
    *out = c;
    return 0;
fail:
    cli_client_free(c);
    return rc;
}

void
cli_client_free(struct cli_client *c)
{
    if (c == NULL)
        return;
    if (c->sock >= 0)
        nn_close(c->sock);
    free(c);
}

int
cli_connect(struct cli_client **out)
{
    int rc = cli_client_new(out);

    if (rc == -EINVAL)
        return CLI_USAGE;
    return rc < 0 ? CLI_FAIL : CLI_OK;
}

static int
transport_error(struct cli_client *c, int err)
{
    char t[32];

    if (err == ETIMEDOUT || err == EAGAIN) {
        cli_fmt_ms(c->timeout_ms, t);
        cli_fail("cannot reach the controller at %s: timed out after %s", c->endpoint, t);
        return -ETIMEDOUT;
    }
    cli_fail("cannot talk to the controller at %s: %s", c->endpoint, nn_strerror(err));
    return -err;
}

static int
check_reply(struct cli_client *c, Drover__Message *m, Drover__Message__BodyCase want)
{
    /*
     * The oneof's members share one pointer: a body that is set but holds no
     * message would be a NULL we must not follow.
     */
    if (m->body_case == want && m->ok != NULL)
        return 0;
    if (m->body_case == DROVER__MESSAGE__BODY_ERROR && m->error != NULL) {
        const char *text = cli_str(m->error->message);

        if (text[0] != '\0')
            cli_fail("%s", text);
        else
            cli_fail("the controller refused the request (error code %d)", (int)m->error->code);
        return -EREMOTEIO;
    }
    cli_fail("unexpected reply from the controller at %s (message type %d)", c->endpoint,
             (int)m->body_case);
    return -EBADMSG;
}

/* Is buf an unsealed refusal? Then say why, as one line. */
static bool
refused(struct cli_client *c, const void *buf, size_t len)
{
    Drover__ErrorCode code;
    char text[256];

    if (wire_refusal_open(buf, len, &code, text, sizeof(text)) < 0)
        return false;
    if (code == DROVER__ERROR_CODE__ERR_UNAUTHORIZED && !c->have_token)
        cli_fail("the controller at %s refused the request: it requires an API token (set "
                 "DROVER_API_TOKEN)",
                 c->endpoint);
    else if (code == DROVER__ERROR_CODE__ERR_UNAUTHORIZED)
        cli_fail("the controller at %s refused the API token (check DROVER_API_TOKEN)",
                 c->endpoint);
    else if (code == DROVER__ERROR_CODE__ERR_VERSION)
        cli_fail("the controller at %s speaks another protocol version (this drover speaks %d)",
                 c->endpoint, WIRE_VERSION);
    else
        cli_fail("the controller at %s refused the request (error code %d)", c->endpoint,
                 (int)code);
    return true;
}

int
cli_call(struct cli_client *c, Drover__Message *req, Drover__Message__BodyCase want,
         Drover__Message **rep)
{
    struct wire_header hdr;
    Drover__Message *m = NULL;
    uint8_t *buf = NULL;
    void *in = NULL;
    size_t len;
    int n, rc;

    *rep = NULL;
    rc = wire_seal(&c->sender, req, &buf, &len);
    if (rc < 0) {
        cli_fail("cannot encode the request: %s", strerror(-rc));
        goto out;
    }
    if (nn_send(c->sock, buf, len, 0) < 0) {
        rc = transport_error(c, nn_errno());
        goto out;
    }
    n = nn_recv(c->sock, &in, NN_MSG, 0);
    if (n < 0) {
        rc = transport_error(c, nn_errno());
        goto out;
    }
    rc = wire_open(in, (size_t)n, &hdr, &m);
    if ((rc < 0 || !c->have_token) && refused(c, in, (size_t)n)) {
        rc = -EACCES;
        goto out;
    }
    if (rc == 0 && !c->have_token) {
        /* Unsealed on both sides: only a refusal can be believed. */
        cli_fail("unexpected unsealed reply from the controller at %s", c->endpoint);
        rc = -EBADMSG;
        goto out;
    }
    if (rc == -EPROTONOSUPPORT) {
        cli_fail("the controller at %s speaks protocol version %u, this drover speaks %d",
                 c->endpoint, hdr.version, WIRE_VERSION);
        goto out;
    }
    if (rc < 0) {
        cli_fail("unexpected reply from the controller at %s: %s", c->endpoint, wire_strerror(rc));
        goto out;
    }
    rc = check_reply(c, m, want);
    if (rc < 0)
        goto out;
    *rep = m;
    m = NULL;
out:
    if (m != NULL)
        wire_msg_free(m);
    if (in != NULL)
        nn_freemsg(in);
    free(buf);
    return rc;
}

void
cli_client_set_timeout(struct cli_client *c, uint64_t ms)
{
    if (ms > INT32_MAX)
        ms = INT32_MAX;
    set_int(c->sock, NN_SOL_SOCKET, NN_RCVTIMEO, (int)ms);
}

uint64_t
cli_client_timeout(const struct cli_client *c)
{
    return c->timeout_ms;
}

const char *
cli_client_endpoint(const struct cli_client *c)
{
    return c->endpoint;
}

int
cli_client_rcvfd(struct cli_client *c)
{
    int fd = -1;
    size_t sz = sizeof(fd);

    if (nn_getsockopt(c->sock, NN_SOL_SOCKET, NN_RCVFD, &fd, &sz) < 0)
        return -nn_errno();
    return fd;
}

int
cli_send(struct cli_client *c, Drover__Message *req)
{
    uint8_t *buf = NULL;
    size_t len;
    int rc = wire_seal(&c->sender, req, &buf, &len);

    if (rc == 0 && nn_send(c->sock, buf, len, NN_DONTWAIT) < 0)
        rc = -nn_errno();
    free(buf);
    return rc;
}

int
cli_recv_nowait(struct cli_client *c, Drover__Message__BodyCase want, Drover__Message **rep)
{
    struct wire_header hdr;
    Drover__Message *m = NULL;
    void *in = NULL;
    int n, rc;

    *rep = NULL;
    n = nn_recv(c->sock, &in, NN_MSG, NN_DONTWAIT);
    if (n < 0)
        return nn_errno() == EAGAIN ? -EAGAIN : transport_error(c, nn_errno());
    rc = wire_open(in, (size_t)n, &hdr, &m);
    nn_freemsg(in);
    if (rc < 0) {
        cli_fail("unexpected reply from the controller at %s: %s", c->endpoint, wire_strerror(rc));
        return rc;
    }
    if ((rc = check_reply(c, m, want)) < 0) {
        wire_msg_free(m);
        return rc;
    }
    *rep = m;
    return 0;
}
