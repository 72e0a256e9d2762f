/* SPDX-License-Identifier: MIT */
/*
 * drain_syslog.c: one syslog connection, TCP or TLS, on the drain's own
 * thread. Everything here blocks, with bounds: connect waits at most
 * CONNECT_MS, a write that the server does not take within SEND_MS fails
 * (a server that never reads cannot hold the drain forever), and another
 * thread can cut a blocked call short with drain_syslog_abort (shutdown(2)
 * on the socket).
 *
 * TLS is OpenSSL: the server's chain is verified against the system's CAs
 * plus DROVER_DRAIN_CA_FILE, and its name (SNI and the certificate's names)
 * or IP address is checked.
 *
 * A syslog server never speaks. Before each write drain_syslog_dead looks
 * whether the socket became readable: a FIN (the server stopped), a TLS
 * close_notify or any bytes at all mean the connection is over, and the
 * batch waits for the next one instead of being written into a dead socket
 * and lost. That is what lets lines written during an outage arrive.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "drain.h"

#define CONNECT_MS 10000
#define SEND_MS 10000
#define TLS_CHUNK 16384

struct drain_conn {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
};

static void
ssl_reason(char *err, size_t errsz, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256];

    if (e == 0) {
        snprintf(err, errsz, "%s failed", what);
        return;
    }
    ERR_error_string_n(e, buf, sizeof(buf));
    snprintf(err, errsz, "%s: %s", what, buf);
    ERR_clear_error();
}

static int
connect_one(const struct addrinfo *ai, char *err, size_t errsz)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    struct pollfd pfd;
    int soerr = 0, flags;
    socklen_t sl = sizeof(soerr);
    struct timeval tv = {.tv_sec = SEND_MS / 1000};

    if (fd < 0) {
        snprintf(err, errsz, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
        snprintf(err, errsz, "connect: %s", strerror(errno));
        goto fail;
    }
    pfd.fd = fd;
    pfd.events = POLLOUT;
    if (poll(&pfd, 1, CONNECT_MS) <= 0) {
        snprintf(err, errsz, "connect: timed out after %d ms", CONNECT_MS);
        goto fail;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr != 0) {
        snprintf(err, errsz, "connect: %s", strerror(soerr ? soerr : errno));
        goto fail;
    }
    flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
fail:
    close(fd);
    return -1;
}

static int
tcp_connect(const struct drain_url *u, char *err, size_t errsz)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL, *ai;
    char port[8];
    int rc, fd = -1;

    snprintf(port, sizeof(port), "%u", u->port);
    rc = getaddrinfo(u->host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errsz, "resolving %s: %s", u->host, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next)
        fd = connect_one(ai, err, errsz);
    freeaddrinfo(res);
    return fd;
}

static int
tls_start(struct drain_conn *k, const struct drain_ctx *c, char *err, size_t errsz, bool *permanent)
{
    const struct drain_url *u = c->url;
    long vr;

    k->ctx = SSL_CTX_new(TLS_client_method());
    if (k->ctx == NULL) {
        ssl_reason(err, errsz, "TLS setup");
        return -1;
    }
    SSL_CTX_set_min_proto_version(k->ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(k->ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_default_verify_paths(k->ctx);
    if (c->ca_file[0] != '\0' && SSL_CTX_load_verify_locations(k->ctx, c->ca_file, NULL) != 1) {
        ssl_reason(err, errsz, "loading DROVER_DRAIN_CA_FILE");
        *permanent = true;
        return -1;
    }
    k->ssl = SSL_new(k->ctx);
    if (k->ssl == NULL || SSL_set_fd(k->ssl, k->fd) != 1) {
        ssl_reason(err, errsz, "TLS setup");
        return -1;
    }
    if (u->host_is_ip) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(k->ssl), u->host);
    } else {
        SSL_set_tlsext_host_name(k->ssl, u->host);
        SSL_set1_host(k->ssl, u->host);
    }
    if (SSL_connect(k->ssl) != 1) {
        vr = SSL_get_verify_result(k->ssl);
        if (vr != X509_V_OK) {
            snprintf(err, errsz, "TLS: server certificate not trusted: %s",
                     X509_verify_cert_error_string(vr));
            *permanent = true;
            ERR_clear_error();
        } else {
            ssl_reason(err, errsz, "TLS handshake");
        }
        return -1;
    }
    return 0;
}

int
drain_syslog_open(const struct drain_ctx *c, struct drain_conn **out, char *err, size_t errsz,
                  bool *permanent)
{
    struct drain_conn *k = calloc(1, sizeof(*k));

    *permanent = false;
    if (k == NULL) {
        snprintf(err, errsz, "out of memory");
        return -ENOMEM;
    }
    k->fd = tcp_connect(c->url, err, errsz);
    if (k->fd < 0)
        goto fail;
    if (c->url->kind == DRAIN_SYSLOG_TLS && tls_start(k, c, err, errsz, permanent) < 0)
        goto fail;
    *out = k;
    return 0;
fail:
    drain_syslog_close(k);
    return -EIO;
}

bool
drain_syslog_dead(struct drain_conn *k)
{
    struct pollfd pfd = {.fd = k->fd, .events = POLLIN | POLLRDHUP};
    char buf[512];
    int flags, n, e;

    if (poll(&pfd, 1, 0) == 0)
        return false;
    if (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))
        return true; /* the server closed or reset */
    if (k->ssl == NULL)
        return true; /* bytes a syslog server never sends */
    /* TLS 1.3 servers send session tickets after the handshake: read
     * without blocking; only a close_notify, an error or data end it. */
    flags = fcntl(k->fd, F_GETFL);
    fcntl(k->fd, F_SETFL, flags | O_NONBLOCK);
    n = SSL_read(k->ssl, buf, sizeof(buf));
    e = n > 0 ? SSL_ERROR_NONE : SSL_get_error(k->ssl, n);
    fcntl(k->fd, F_SETFL, flags);
    ERR_clear_error();
    return !(n <= 0 && e == SSL_ERROR_WANT_READ);
}

size_t
drain_syslog_write(struct drain_conn *k, const char *p, size_t len, char *err, size_t errsz)
{
    size_t done = 0;

    while (done < len) {
        if (k->ssl != NULL) {
            int chunk = (int)(len - done > TLS_CHUNK ? TLS_CHUNK : len - done);
            int n = SSL_write(k->ssl, p + done, chunk);

            if (n <= 0) {
                ssl_reason(err, errsz, "TLS write");
                return done;
            }
            done += (size_t)n;
        } else {
            ssize_t n = send(k->fd, p + done, len - done, MSG_NOSIGNAL);

            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                snprintf(err, errsz, "write: %s",
                         n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)
                             ? "the server took nothing for 10 s"
                             : strerror(n < 0 ? errno : EPIPE));
                return done;
            }
            done += (size_t)n;
        }
    }
    return done;
}

void
drain_syslog_abort(struct drain_conn *k)
{
    if (k != NULL && k->fd >= 0)
        shutdown(k->fd, SHUT_RDWR);
}

void
drain_syslog_close(struct drain_conn *k)
{
    if (k == NULL)
        return;
    if (k->ssl != NULL)
        SSL_free(k->ssl);
    if (k->ctx != NULL)
        SSL_CTX_free(k->ctx);
    if (k->fd >= 0)
        close(k->fd);
    free(k);
}
