/* SPDX-License-Identifier: MIT */
/*
 * dash.c: the web dashboard's pages and its sign-in.
 *
 * The page (dash/index.html, dash.css, dash.js, embedded at build time) is
 * static; it reads the /v1 API like any client, signed in by a session
 * cookie (HttpOnly, SameSite=Strict: scripts cannot read it and other sites
 * cannot send it). A session comes from a one-time link made by `drover
 * dashboard` (common/dashcode.c: valid once, for 60 s) or from the API token
 * typed into the page's form; the token never travels in a URL.
 *
 * Sessions and spent codes are a few dozen small entries, kept in arrays:
 * the oldest session gives way when the table is full.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ctl.h"
#include "dash_assets.h"
#include "dashcode.h"
#include "http.h"
#include "httpd.h"
#include "log.h"

#define SESSIONS_MAX 64
#define SPENT_MAX 256
#define SESSION_MS (12ull * 3600 * 1000)
#define SESSION_HEX 64

struct session {
    char id[SESSION_HEX + 1];
    uint64_t expires; /* monotonic ms; 0: free */
};

struct spent {
    uint8_t nonce[DASHCODE_NONCE];
    uint64_t expires; /* unix ms, the code's own */
};

static struct session sessions[SESSIONS_MAX];
static struct spent spent[SPENT_MAX];

static const char *
ctype_of(const char *path)
{
    const char *dot = strrchr(path, '.');

    if (dot != NULL && strcmp(dot, ".css") == 0)
        return "text/css; charset=utf-8";
    if (dot != NULL && strcmp(dot, ".js") == 0)
        return "text/javascript; charset=utf-8";
    return "text/html; charset=utf-8";
}

static const char *const page_headers[] = {
    "Content-Security-Policy: default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "Cache-Control: no-store", "Referrer-Policy: no-referrer", NULL};

bool
ctl_dash_session_ok(const struct httpd_req *r)
{
    const char *id = httpd_cookie(r, "drover_session");
    uint64_t now = mono_ms();

    if (id == NULL || strlen(id) != SESSION_HEX)
        return false;
    for (size_t i = 0; i < SESSIONS_MAX; i++)
        if (sessions[i].expires > now && sodium_memcmp(sessions[i].id, id, SESSION_HEX) == 0)
            return true;
    return false;
}

/* A new session's cookie and the redirect to the page. */
static void
sign_in(struct ctl *ctl, struct httpd_req *r, const char *how)
{
    uint8_t raw[SESSION_HEX / 2];
    struct session *s = &sessions[0];
    char cookie[200];
    const char *hdr[] = {cookie, "Location: /", "Cache-Control: no-store", NULL};

    for (size_t i = 1; i < SESSIONS_MAX && s->expires != 0; i++)
        if (sessions[i].expires < s->expires)
            s = &sessions[i];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2hex(s->id, sizeof(s->id), raw, sizeof(raw));
    s->expires = mono_ms() + SESSION_MS;
    snprintf(cookie, sizeof(cookie),
             "Set-Cookie: drover_session=%s; HttpOnly; SameSite=Strict; Path=/; Max-Age=%llu%s",
             s->id, (unsigned long long)(SESSION_MS / 1000),
             ctl->cfg.http_tls_cert != NULL ? "; Secure" : "");
    log_info("dashboard_signin", "how=%s", how);
    httpd_respond(r, 303, "text/plain", "signed in\n", 10, hdr);
}

static void
refuse(struct httpd_req *r, unsigned status, const char *why)
{
    char page[600];
    int n = snprintf(page, sizeof(page),
                     "<!doctype html><meta charset=utf-8><title>drover</title>"
                     "<link rel=stylesheet href=/dash.css><main><section><h2>Not signed in</h2>"
                     "<p>%s</p><p><a href=/>Sign in with the API token</a>, or run "
                     "<code>drover dashboard</code> for a new link.</p></section></main>",
                     why);

    httpd_respond(r, status, "text/html; charset=utf-8", page, (size_t)n, page_headers);
}

/* GET /login?code=...: the one-time link. */
static void
login_code(struct ctl *ctl, struct httpd_req *r)
{
    const char *code = httpd_query(r, "code");
    uint8_t nonce[DASHCODE_NONCE];
    uint64_t exp = 0, now = now_ms();
    struct spent *slot = NULL;
    int rc;

    rc = code != NULL ? dashcode_check(ctl->cfg.api_token, code, now, nonce, &exp) : -EINVAL;
    if (rc < 0) {
        log_warn("dashboard_refused", "reason=%s",
                 rc == -ETIME          ? "expired"
                 : rc == -EKEYREJECTED ? "bad_signature"
                                       : "malformed");
        refuse(r, 403,
               rc == -ETIME ? "This sign-in link has expired (links last 60 seconds)."
                            : "This is not a valid sign-in link.");
        return;
    }
    for (size_t i = 0; i < SPENT_MAX; i++) {
        if (spent[i].expires >= now && memcmp(spent[i].nonce, nonce, DASHCODE_NONCE) == 0) {
            log_warn("dashboard_refused", "reason=used");
            refuse(r, 403, "This sign-in link has been used already: each works once.");
            return;
        }
        if (slot == NULL && spent[i].expires < now)
            slot = &spent[i];
    }
    if (slot == NULL) { /* every slot holds a live code: refuse rather than forget one */
        refuse(r, 503, "Too many sign-ins at once; try again in a minute.");
        return;
    }
    memcpy(slot->nonce, nonce, DASHCODE_NONCE);
    slot->expires = exp;
    sign_in(ctl, r, "link");
}

/* The value of name in an application/x-www-form-urlencoded body (decoded in out). */
static bool
form_value(const char *body, const char *name, char *out, size_t outsz)
{
    size_t nl = strlen(name), o = 0;
    const char *p = body;

    while (p != NULL && *p != '\0') {
        if (strncmp(p, name, nl) == 0 && p[nl] == '=') {
            for (p += nl + 1; *p != '\0' && *p != '&' && o + 1 < outsz; p++) {
                unsigned v;

                if (*p == '+')
                    out[o++] = ' ';
                else if (*p == '%' && sscanf(p + 1, "%2x", &v) == 1 && v != 0) {
                    out[o++] = (char)v;
                    p += 2;
                } else
                    out[o++] = *p;
            }
            out[o] = '\0';
            return true;
        }
        p = strchr(p, '&');
        if (p != NULL)
            p++;
    }
    return false;
}

/* POST /login with token=...: the form. */
static void
login_form(struct ctl *ctl, struct httpd_req *r)
{
    uint8_t a[crypto_generichash_BYTES], b[crypto_generichash_BYTES];
    char token[4200];
    size_t len;
    const char *body = httpd_body(r, &len);

    if (!form_value(body, "token", token, sizeof(token))) {
        refuse(r, 400, "Type the API token into the form.");
        return;
    }
    crypto_generichash(a, sizeof(a), (const uint8_t *)token, strlen(token), NULL, 0);
    crypto_generichash(b, sizeof(b), (const uint8_t *)ctl->cfg.api_token,
                       strlen(ctl->cfg.api_token), NULL, 0);
    sodium_memzero(token, sizeof(token));
    if (sodium_memcmp(a, b, sizeof(a)) != 0) {
        log_warn("dashboard_refused", "reason=wrong_token");
        refuse(r, 401, "That is not the API token.");
        return;
    }
    sign_in(ctl, r, "token");
}

bool
ctl_dash_handle(struct ctl *ctl, struct httpd_req *r)
{
    const char *path = httpd_path(r), *m = httpd_method(r);

    if (strcmp(path, "/login") == 0) {
        if (strcmp(m, "POST") == 0)
            login_form(ctl, r);
        else
            login_code(ctl, r);
        return true;
    }
    if (strcmp(path, "/") == 0)
        path = "/index.html";
    for (const struct dash_asset *a = dash_assets; a->path != NULL; a++) {
        if (strcmp(a->path, path) != 0)
            continue;
        if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0)
            return false;
        httpd_respond(r, 200, ctype_of(path), (const char *)a->data, a->len, page_headers);
        return true;
    }
    return false;
}
