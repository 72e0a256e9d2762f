/* SPDX-License-Identifier: MIT */
/*
 * client.c: the CLI's one connection to the controller — the RPC client
 * (common/rpc.c) on a small private loop, one request and one reply at a
 * time. cli_call runs the loop until its request is answered or timed out;
 * the verbs that poll(2) (run, endpoints --watch) send without waiting and
 * receive with cli_recv_nowait, which turns the loop once.
 *
 * DROVER_TIMEOUT_MS bounds every wait. With one controller a request that
 * times out is not re-sent, so that a slow controller never receives a
 * non-idempotent request (a release) twice. With several
 * (DROVER_CONTROLLER=a,b) the client follows the leader: a standby's
 * ERR_NOT_LEADER sends it to the leader (the request was not applied), and
 * a timeout tries the next controller once each (a dead leader looks like
 * a timeout; a request the slow one did apply may then be applied twice,
 * which for most verbs — scale, config:set — changes nothing).
 *
 * Before the first request a plain TCP connect (probe.c) checks that
 * something listens at the address, so that a stopped controller is said
 * ("connection refused") at once instead of after the whole timeout; with
 * several controllers the first that does not refuse is asked first.
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
#include <sodium.h>
#include <uv.h>

#include "cli.h"
#include "dialcheck.h"
#include "env.h"
#include "log.h"
#include "rpc.h"
#include "wire.h"

#define CLI_CONTROLLER_DEFAULT "tcp://127.0.0.1:7400"
#define CLI_TIMEOUT_DEFAULT 10000
#define CLI_TIMEOUT_MAX 3600000
#define CLI_STREAM_WAIT_MS (24ull * 3600 * 1000) /* cli_send: the verb's own loop decides */

struct cli_client {
    uv_loop_t loop;
    bool loop_open;
    struct rpc *rpc;
    char eps[ENV_ENDPOINTS_MAX][ENV_ENDPOINT_MAX];
    size_t neps;
    uint64_t timeout_ms; /* DROVER_TIMEOUT_MS */
    uint64_t wait_ms;    /* this call's (cli_client_set_timeout) */
    struct wire_sender sender;
    bool have_token;
    /* the answer of the request outstanding */
    bool done;
    enum rpc_result result;
    int err;
    Drover__Message *msg; /* taken from the RPC client */
    void *raw;            /* a copy of what came, for a refusal */
    size_t rawlen;
    struct wire_header hdr;
};

/* The settings, read once; errors are reported together as bad usage. */
static int
read_env(struct cli_client *c)
{
    struct env_errs errs = {0};

    env_endpoints(&errs, "DROVER_CONTROLLER", CLI_CONTROLLER_DEFAULT, c->eps, ENV_ENDPOINTS_MAX,
                  &c->neps);
    env_u64(&errs, "DROVER_TIMEOUT_MS", CLI_TIMEOUT_DEFAULT, 1, CLI_TIMEOUT_MAX, &c->timeout_ms);
    for (int i = 0; i < errs.n && i < ENV_MAX_ERRS; i++)
        fprintf(stderr, "drover: %s\n", errs.msg[i]);
    c->wait_ms = c->timeout_ms;
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

/* Does endpoint refuse a TCP connection (probe.c)? 0 when it does not, or
 * when the probe proves nothing; else the error. */
static int
probe_one(const char *endpoint)
{
    char host[256], addr[256];
    uint16_t port;
    int rc;

    if (env_parse_endpoint(endpoint, host, sizeof(host), &port) < 0 ||
        cli_probe_host(host, addr, sizeof(addr)) < 0)
        return 0;
    rc = cli_probe_tcp(addr, port, CLI_PROBE_MS);
    if (rc == -ECONNREFUSED || rc == -EHOSTUNREACH || rc == -ENETUNREACH)
        return rc;
    return 0;
}

/*
 * The first controller where something listens; fail at once when none
 * does. Anything else, including a probe that proves nothing, goes on.
 */
static int
probe(struct cli_client *c, size_t *first)
{
    int rc = 0;

    for (size_t i = 0; i < c->neps; i++) {
        if ((rc = probe_one(c->eps[i])) == 0) {
            *first = i;
            return 0;
        }
    }
    if (c->neps == 1)
        cli_fail("cannot reach the controller at %s: %s", c->eps[0],
                 rc == -ECONNREFUSED ? "connection refused (is drover-controller running?)"
                                     : strerror(-rc));
    else
        cli_fail("cannot reach any controller (%zu in DROVER_CONTROLLER, the last at %s): %s",
                 c->neps, c->eps[c->neps - 1],
                 rc == -ECONNREFUSED ? "connection refused (is drover-controller running?)"
                                     : strerror(-rc));
    return rc;
}

static int
set_int(int sock, int level, int opt, int v)
{
    return nn_setsockopt(sock, level, opt, &v, sizeof(v)) < 0 ? -nn_errno() : 0;
}

static void
answer_drop(struct cli_client *c)
{
    if (c->msg != NULL)
        wire_msg_free(c->msg);
    free(c->raw);
    c->msg = NULL;
    c->raw = NULL;
    c->rawlen = 0;
    c->done = false;
}

static void
on_answer(struct rpc *r, struct rpc_reply *rep, void *arg)
{
    struct cli_client *c = arg;

    answer_drop(c);
    c->done = true;
    c->result = rep->result;
    c->err = rep->err;
    c->hdr = rep->hdr;
    c->msg = rep->msg;
    rep->msg = NULL;
    if (rep->raw != NULL && (c->raw = malloc(rep->len ? rep->len : 1)) != NULL) {
        memcpy(c->raw, rep->raw, rep->len);
        c->rawlen = rep->len;
    }
}

int
cli_client_new(struct cli_client **out)
{
    struct cli_client *c = calloc(1, sizeof(*c));
    struct rpc_opts o = {0};
    size_t first = 0;
    int rc;

    *out = NULL;
    if (c == NULL)
        return -ENOMEM;
    /* The CLI's stdout is its output: the shared code's events (a redial,
     * a move to the leader) are not for it; failures are said on stderr. */
    log_set_level(LOG_OFF);
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
    if ((rc = probe(c, &first)) < 0)
        goto fail;
    /* nanomsg aborts the process when its dial finds no free local port
     * (common/dialcheck.c): say why instead. */
    if ((rc = dial_check(c->eps[first])) < 0 && rc != -EINVAL) {
        cli_fail("cannot dial %s: %s", c->eps[first],
                 rc == -EADDRINUSE ? "no free local port (net.ipv4.ip_local_port_range; too "
                                     "many connections in TIME_WAIT?)"
                 : rc == -EMFILE || rc == -ENFILE ? "no free file descriptor (ulimit -n)"
                                                  : strerror(-rc));
        goto fail;
    }
    if ((rc = uv_loop_init(&c->loop)) < 0) {
        cli_fail("cannot make an event loop: %s", uv_strerror(rc));
        goto fail;
    }
    c->loop_open = true;
    o.endpoints = (const char(*)[ENV_ENDPOINT_MAX])c->eps;
    o.nendpoints = c->neps;
    o.first = first;
    o.sender = &c->sender;
    o.resends = (uint32_t)(c->neps - 1); /* each other controller once */
    o.name = "cli";
    o.cb = on_answer;
    o.arg = c;
    if ((c->rpc = rpc_new(&c->loop, &o, &rc)) == NULL || (rc = rpc_start(c->rpc)) < 0) {
        cli_fail("cannot connect to %s: %s", c->eps[first], strerror(-rc));
        goto fail;
    }
    /* The verbs that poll(2) (run, endpoints --watch) turn the loop only
     * when the socket is readable, so its redial timer would not run: let
     * nanomsg reconnect by itself, as a lone REQ socket does (a controller
     * restarted under `endpoints --watch` is heard again at once). */
    if ((rc = set_int(rpc_sock(c->rpc), NN_SOL_SOCKET, NN_RECONNECT_IVL, 100)) < 0 ||
        (rc = set_int(rpc_sock(c->rpc), NN_SOL_SOCKET, NN_RECONNECT_IVL_MAX, 0)) < 0 ||
        (rc = rpc_redial(c->rpc)) < 0) {
        cli_fail("cannot connect to %s: %s", c->eps[first], strerror(-rc));
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
    answer_drop(c);
    if (c->rpc != NULL)
        rpc_close(c->rpc);
    if (c->loop_open) {
        uv_run(&c->loop, UV_RUN_NOWAIT);
        uv_run(&c->loop, UV_RUN_DEFAULT); /* the close callbacks */
        uv_loop_close(&c->loop);
    }
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
    cli_fail("unexpected reply from the controller at %s (message type %d)", cli_client_endpoint(c),
             (int)m->body_case);
    return -EBADMSG;
}

/* Is buf an unsealed refusal? Then say why, as one line. */
static bool
refused(struct cli_client *c, const void *buf, size_t len)
{
    const char *ep = cli_client_endpoint(c);
    Drover__ErrorCode code;
    char text[256];

    if (buf == NULL || wire_refusal_open(buf, len, &code, text, sizeof(text)) < 0)
        return false;
    if (code == DROVER__ERROR_CODE__ERR_UNAUTHORIZED && !c->have_token)
        cli_fail("the controller at %s refused the request: it requires an API token (set "
                 "DROVER_API_TOKEN)",
                 ep);
    else if (code == DROVER__ERROR_CODE__ERR_UNAUTHORIZED)
        cli_fail("the controller at %s refused the API token (check DROVER_API_TOKEN)", ep);
    else if (code == DROVER__ERROR_CODE__ERR_VERSION)
        cli_fail("the controller at %s speaks another protocol version (this drover speaks %d)", ep,
                 WIRE_VERSION);
    else
        cli_fail("the controller at %s refused the request (error code %d)", ep, (int)code);
    return true;
}

/* The answer that came (c->done), checked and said: 0 with *rep, or a
 * negative errno (printed). */
static int
take_answer(struct cli_client *c, Drover__Message__BodyCase want, Drover__Message **rep)
{
    const char *ep = cli_client_endpoint(c);
    char t[32];
    int rc;

    if (c->result == RPC_TIMEOUT) {
        cli_fmt_ms(c->wait_ms, t);
        cli_fail("cannot reach the controller at %s: timed out after %s", ep, t);
        return -ETIMEDOUT;
    }
    rc = c->result == RPC_UNOPENED ? c->err : 0;
    if ((rc < 0 || !c->have_token) && refused(c, c->raw, c->rawlen))
        return -EACCES;
    if (rc == 0 && !c->have_token) {
        /* Unsealed on both sides: only a refusal can be believed. */
        cli_fail("unexpected unsealed reply from the controller at %s", ep);
        return -EBADMSG;
    }
    if (rc == -EPROTONOSUPPORT) {
        cli_fail("the controller at %s speaks protocol version %u, this drover speaks %d", ep,
                 c->hdr.version, WIRE_VERSION);
        return rc;
    }
    if (rc < 0) {
        cli_fail("unexpected reply from the controller at %s: %s", ep, wire_strerror(rc));
        return rc;
    }
    if ((rc = check_reply(c, c->msg, want)) < 0)
        return rc;
    *rep = c->msg;
    c->msg = NULL;
    return 0;
}

int
cli_call(struct cli_client *c, Drover__Message *req, Drover__Message__BodyCase want,
         Drover__Message **rep)
{
    int rc;

    *rep = NULL;
    answer_drop(c);
    rc = rpc_send(c->rpc, req, c->wait_ms);
    if (rc < 0) {
        cli_fail("cannot encode the request: %s", strerror(-rc));
        return rc;
    }
    while (!c->done)
        uv_run(&c->loop, UV_RUN_ONCE);
    rc = take_answer(c, want, rep);
    answer_drop(c);
    return rc;
}

void
cli_client_set_timeout(struct cli_client *c, uint64_t ms)
{
    c->wait_ms = ms > INT32_MAX ? INT32_MAX : ms;
}

uint64_t
cli_client_timeout(const struct cli_client *c)
{
    return c->timeout_ms;
}

const char *
cli_client_endpoint(const struct cli_client *c)
{
    return c->rpc != NULL ? rpc_endpoint(c->rpc) : c->eps[0];
}

int
cli_client_rcvfd(struct cli_client *c)
{
    /* The loop's descriptor is readable when the socket is; its watchers
     * are registered at the loop's first turn. */
    uv_run(&c->loop, UV_RUN_NOWAIT);
    return uv_backend_fd(&c->loop);
}

int
cli_send(struct cli_client *c, Drover__Message *req)
{
    answer_drop(c);
    /* The verb's own loop decides when a request is lost. */
    return rpc_send(c->rpc, req, CLI_STREAM_WAIT_MS);
}

int
cli_recv_nowait(struct cli_client *c, Drover__Message__BodyCase want, Drover__Message **rep)
{
    int rc;

    *rep = NULL;
    if (!c->done)
        uv_run(&c->loop, UV_RUN_NOWAIT);
    if (!c->done)
        return -EAGAIN;
    rc = take_answer(c, want, rep);
    answer_drop(c);
    return rc;
}
