/* SPDX-License-Identifier: MIT */
/*
 * drain_http.c: HTTPS drains as Heroku's Logplex sends them, with libcurl
 * on the drain's own thread. One POST per batch:
 *
 *   Content-Type: application/logplex-1
 *   Logplex-Msg-Count: N
 *   Logplex-Frame-Id: 32 hex digits, the same on every retry of a batch
 *   Logplex-Drain-Token: the drain's id
 *
 * and a body of N octet-counted RFC 5424 messages. A 2xx delivers the
 * batch; anything else (or no answer) is retried with the same bytes and
 * the same frame id, so a receiver can drop a duplicate. The server's
 * certificate is checked against the system's CAs plus
 * DROVER_DRAIN_CA_FILE (added to OpenSSL's store in the SSL_CTX callback:
 * CURLOPT_CAINFO would replace the system's CAs). No redirects are
 * followed; http:// reaches loopback hosts only (drain_url.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "drain.h"

#define HTTP_CONNECT_MS 10000L
#define HTTP_TIMEOUT_MS 30000L

struct drain_http {
    CURL *curl;
    const struct drain_ctx *c;
    char token[64];
};

static CURLcode
add_ca(CURL *curl, void *sslctx, void *arg)
{
    struct drain_http *h = arg;
    X509_STORE *store = SSL_CTX_get_cert_store(sslctx);

    (void)curl;
    if (h->c->ca_file[0] != '\0' && X509_STORE_load_locations(store, h->c->ca_file, NULL) != 1)
        return CURLE_SSL_CACERT_BADFILE;
    return CURLE_OK;
}

static int
on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    struct drain_http *h = arg;

    (void)dt, (void)dn, (void)ut, (void)un;
    return *h->c->stop ? 1 : 0;
}

static size_t
discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p, (void)arg;
    return size * n;
}

struct drain_http *
drain_http_new(const struct drain_ctx *c, const char *drain_id)
{
    struct drain_http *h = calloc(1, sizeof(*h));

    if (h == NULL)
        return NULL;
    h->c = c;
    snprintf(h->token, sizeof(h->token), "%s", drain_id);
    h->curl = curl_easy_init();
    if (h->curl == NULL) {
        free(h);
        return NULL;
    }
    return h;
}

void
drain_http_free(struct drain_http *h)
{
    if (h == NULL)
        return;
    curl_easy_cleanup(h->curl);
    free(h);
}

int
drain_http_post(struct drain_http *h, const struct drain_batch *bt, char *err, size_t errsz,
                bool *permanent)
{
    char count[64], frame[64], token[96];
    struct curl_slist *hdr = NULL;
    char ebuf[CURL_ERROR_SIZE] = "";
    long status = 0;
    CURLcode rc;
    CURL *c = h->curl;

    *permanent = false;
    snprintf(count, sizeof(count), "Logplex-Msg-Count: %zu", bt->n);
    snprintf(frame, sizeof(frame), "Logplex-Frame-Id: %s", bt->frame_id);
    snprintf(token, sizeof(token), "Logplex-Drain-Token: %s", h->token);
    hdr = curl_slist_append(hdr, "Content-Type: application/logplex-1");
    hdr = curl_slist_append(hdr, count);
    hdr = curl_slist_append(hdr, frame);
    hdr = curl_slist_append(hdr, token);
    hdr = curl_slist_append(hdr, "Expect:");
    if (hdr == NULL) {
        snprintf(err, errsz, "out of memory");
        return -ENOMEM;
    }
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, h->c->url_text);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, HTTP_CONNECT_MS);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, HTTP_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "drover");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, bt->bytes.p);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)bt->bytes.len);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, h);
    curl_easy_setopt(c, CURLOPT_SSL_CTX_FUNCTION, add_ca);
    curl_easy_setopt(c, CURLOPT_SSL_CTX_DATA, h);
    rc = curl_easy_perform(c);
    curl_slist_free_all(hdr);
    if (rc != CURLE_OK) {
        *permanent = rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE;
        snprintf(err, errsz, "%s%s%s",
                 rc == CURLE_PEER_FAILED_VERIFICATION ? "TLS: server certificate not trusted: "
                                                      : "",
                 ebuf[0] != '\0' ? ebuf : curl_easy_strerror(rc), "");
        return -EIO;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300)
        return 0;
    *permanent = status >= 400 && status < 500 && status != 408 && status != 429;
    snprintf(err, errsz, "HTTP %ld from the server", status);
    return -EIO;
}
