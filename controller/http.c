/* SPDX-License-Identifier: MIT */
/*
 * http.c: the controller's HTTP front end on DROVER_HTTP_LISTEN: the JSON
 * API under /v1/, Prometheus metrics at /metrics, the dashboard at /.
 *
 * Every /v1 route is the CLI's verb: it becomes the Drover__Message request
 * the CLI sends (http_decode.c for bodies), goes through ctl_call() like
 * every other front end's, and its reply becomes the document the CLI's
 * --json prints (common/json_out.c), so the two cannot disagree. Errors are
 * {"error": "..."} with the status their code maps to.
 *
 * Streams (?tail=1 for logs, ?watch=1 for endpoints) are server-sent events
 * fed by the same long-polling requests the CLI repeats: one request in
 * flight per stream, and a stream whose client left ends when its request
 * comes back.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ctl.h"
#include "http.h"
#include "dispatch.h"
#include "httpd.h"
#include "http.h"
#include "json_out.h"
#include "listen.h"
#include "log.h"

#define HTTP_PENDING_MAX 128 /* requests waiting on the controller: more get 429 */
#define SEG_MAX 6
#define STREAM_LOG_WAIT_MS 10000
#define STREAM_EP_WAIT_MS 25000

enum route {
    R_APPS,
    R_APP,
    R_APP_CREATE,
    R_APP_DESTROY,
    R_PS,
    R_SCALE,
    R_CONFIG,
    R_CONFIG_PATCH,
    R_RELEASES,
    R_ROLLBACK,
    R_SETTINGS,
    R_ENDPOINTS,
    R_LOGS,
    R_RESTART,
    R_NODES,
    R_NODE_STATE,
    R_STATUS,
    R_DEPLOY,
};

struct ctl_http {
    struct ctl *ctl;
    struct httpd *srv;
    unsigned pending;
    bool orphan; /* the server stopped with calls in flight: the last frees h */
    uint8_t token_hash[crypto_generichash_BYTES];
};

/* One /v1 request in flight. */
struct hcall {
    struct ctl_http *h;
    struct httpd_req *r;
    enum route route;
    char app[APP_NAME_MAX + 2];
    char type[TYPE_NAME_MAX + 2];
    Drover__Message *next; /* PATCH config: the unset after the set */
    bool stream, left, started;
    uint64_t cursor; /* logs: after_seq; endpoints: version */
    bool sent_once;
    uv_timer_t next_timer; /* streams: the next request, from the loop */
    bool has_timer;
};

/* ---- answers ---- */

static void
respond_json(struct httpd_req *r, unsigned status, json_t *doc)
{
    char *text = doc != NULL ? jout_dumps(doc, true) : NULL;

    json_decref(doc);
    if (text == NULL) {
        httpd_respond(r, 500, "application/json", "{\"error\": \"out of memory\"}\n", 27, NULL);
        return;
    }
    httpd_respond(r, status, "application/json", text, strlen(text), NULL);
    free(text);
}

static void
respond_error(struct httpd_req *r, unsigned status, const char *msg)
{
    json_t *doc = json_object();

    json_object_set_new(doc, "error", jout_str(msg));
    if (status == 401) {
        static const char *const extra[] = {"WWW-Authenticate: Bearer realm=\"drover\"", NULL};
        char *text = jout_dumps(doc, true);

        json_decref(doc);
        httpd_respond(r, status, "application/json", text != NULL ? text : "",
                      text ? strlen(text) : 0, extra);
        free(text);
        return;
    }
    if (status == 429 || status == 503) {
        static const char *const extra[] = {"Retry-After: 1", NULL};
        char *text = jout_dumps(doc, true);

        json_decref(doc);
        httpd_respond(r, status, "application/json", text != NULL ? text : "",
                      text ? strlen(text) : 0, extra);
        free(text);
        return;
    }
    respond_json(r, status, doc);
}

static unsigned
status_of(Drover__ErrorCode code)
{
    switch (code) {
    case DROVER__ERROR_CODE__ERR_NOT_FOUND:
        return 404;
    case DROVER__ERROR_CODE__ERR_BAD_REQUEST:
        return 400;
    case DROVER__ERROR_CODE__ERR_UNAUTHORIZED:
        return 401;
    case DROVER__ERROR_CODE__ERR_CONFLICT:
        return 409;
    case DROVER__ERROR_CODE__ERR_BUSY:
        return 429;
    case DROVER__ERROR_CODE__ERR_UNAVAILABLE:
    case DROVER__ERROR_CODE__ERR_NOT_LEADER:
        return 503;
    default:
        return 500;
    }
}

/* ---- replies into documents ---- */

static json_t *
one_app(const Drover__AppsRep *r, const char *app)
{
    json_t *all = jout_apps(r), *v;
    size_t i;

    if (all == NULL)
        return NULL;
    json_array_foreach(all, i, v)
    {
        if (strcmp(json_string_value(json_object_get(v, "name")), app) == 0) {
            json_incref(v);
            json_decref(all);
            return v;
        }
    }
    json_decref(all);
    return json_null();
}

static json_t *
scale_doc(const Drover__ScaleRep *r)
{
    json_t *doc = json_object(), *f = json_object();

    for (size_t i = 0; i < r->n_formation; i++)
        json_object_set_new(f, r->formation[i]->type, json_integer(r->formation[i]->quantity));
    json_object_set_new(doc, "formation", f);
    return doc;
}

static json_t *
release_doc(const Drover__ReleaseInfo *rel)
{
    Drover__ReleasesRep rr = DROVER__RELEASES_REP__INIT;
    Drover__ReleaseInfo *v[1] = {(Drover__ReleaseInfo *)rel};
    json_t *all, *one;

    rr.n_releases = 1;
    rr.releases = v;
    rr.current = rel->version;
    all = jout_releases(&rr);
    one = json_array_get(all, 0);
    json_incref(one);
    json_decref(all);
    return one;
}

static json_t *
logs_doc(const Drover__LogsRep *r)
{
    json_t *doc = json_array();

    for (size_t i = 0; i < r->n_lines; i++)
        json_array_append_new(doc, jout_log_line(r->lines[i]));
    return doc;
}

/* The document for a successful reply, or NULL: no reply of that kind. */
static json_t *
reply_doc(struct hcall *k, const Drover__Message *rep, unsigned *status)
{
    *status = 200;
    switch (rep->body_case) {
    case DROVER__MESSAGE__BODY_APPS_REP:
        if (k->route == R_APP)
            return one_app(rep->apps_rep, k->app);
        return jout_apps(rep->apps_rep);
    case DROVER__MESSAGE__BODY_APP_REP: {
        Drover__AppsRep ar = DROVER__APPS_REP__INIT;
        Drover__AppInfo *v[1] = {rep->app_rep->app};

        *status = 201;
        ar.n_apps = rep->app_rep->app != NULL ? 1 : 0;
        ar.apps = v;
        return one_app(&ar, k->app);
    }
    case DROVER__MESSAGE__BODY_PS_REP:
        return jout_ps(rep->ps_rep);
    case DROVER__MESSAGE__BODY_SCALE_REP:
        return scale_doc(rep->scale_rep);
    case DROVER__MESSAGE__BODY_CONFIG_REP:
        return jout_config(rep->config_rep);
    case DROVER__MESSAGE__BODY_RELEASES_REP:
        return jout_releases(rep->releases_rep);
    case DROVER__MESSAGE__BODY_RELEASE_REP:
        return rep->release_rep->release != NULL ? release_doc(rep->release_rep->release)
                                                 : json_null();
    case DROVER__MESSAGE__BODY_SETTINGS_REP:
        return jout_settings(rep->settings_rep->types, rep->settings_rep->n_types, NULL);
    case DROVER__MESSAGE__BODY_ENDPOINTS_REP:
        return jout_endpoints(k->app, rep->endpoints_rep);
    case DROVER__MESSAGE__BODY_LOGS_REP:
        return logs_doc(rep->logs_rep);
    case DROVER__MESSAGE__BODY_RESTART_REP:
        /* not waited for: as `restart --no-wait --json` */
        return jout_restart(k->app, rep->restart_rep, "started");
    case DROVER__MESSAGE__BODY_APP_DESTROY_REP:
        /* as `apps:destroy --no-wait --json`: going, not yet gone */
        return jout_destroy(k->app, rep->app_destroy_rep, false);
    case DROVER__MESSAGE__BODY_NODES_REP:
        return jout_nodes(rep->nodes_rep);
    case DROVER__MESSAGE__BODY_NODE_REP:
        return rep->node_rep->node != NULL ? jout_node(rep->node_rep->node) : json_null();
    case DROVER__MESSAGE__BODY_STATUS_REP:
        return jout_status(rep->status_rep);
    case DROVER__MESSAGE__BODY_DEPLOY_REP: {
        json_t *d = jout_deploy(rep->deploy_rep->deploy);

        if (json_is_null(d)) { /* no deploy yet: an empty answer, not a 404 */
            json_decref(d);
            d = json_object();
        }
        return d;
    }
    default:
        return NULL;
    }
}

/* ---- calls ---- */

static void call(struct hcall *k, Drover__Message *req);

static void
hcall_free(struct hcall *k)
{
    struct ctl_http *h = k->h;

    wire_msg_free(k->next);
    free(k);
    if (--h->pending == 0 && h->orphan)
        free(h);
}

static void
on_timer_closed(uv_handle_t *t)
{
    hcall_free(t->data);
}

static void
hcall_end(struct hcall *k)
{
    if (k->has_timer)
        uv_close((uv_handle_t *)&k->next_timer, on_timer_closed);
    else
        hcall_free(k);
}

static Drover__Message *
stream_req(struct hcall *k)
{
    Drover__Message m = DROVER__MESSAGE__INIT, *out;
    Drover__LogsReq lr = DROVER__LOGS_REQ__INIT;
    Drover__EndpointsReq er = DROVER__ENDPOINTS_REQ__INIT;
    size_t len;
    uint8_t *buf;

    if (k->route == R_LOGS) {
        lr.app = k->app;
        lr.type = k->type;
        /* First the last lines at once, then a wait for what follows:
         * a request that waits never answers inside ctl_call, so a stream
         * never recurses. */
        lr.after_seq = k->sent_once ? k->cursor : 0;
        lr.lines = k->sent_once ? 0 : 100;
        lr.wait_ms = k->sent_once ? STREAM_LOG_WAIT_MS : 0;
        m.body_case = DROVER__MESSAGE__BODY_LOGS_REQ;
        m.logs_req = &lr;
    } else {
        er.app = k->app;
        er.type = k->type;
        er.version = k->cursor;
        er.wait_ms = k->sent_once ? STREAM_EP_WAIT_MS : 0;
        m.body_case = DROVER__MESSAGE__BODY_ENDPOINTS_REQ;
        m.endpoints_req = &er;
    }
    len = drover__message__get_packed_size(&m);
    if ((buf = malloc(len + 1)) == NULL)
        return NULL;
    drover__message__pack(&m, buf);
    out = drover__message__unpack(NULL, len, buf);
    free(buf);
    return out;
}

static void
stream_closed(void *arg)
{
    struct hcall *k = arg;

    k->left = true;
}

static void
on_next(uv_timer_t *t)
{
    struct hcall *k = t->data;

    if (k->left || k->h->ctl->stopping) {
        httpd_stream_end(k->r);
        hcall_end(k);
        return;
    }
    call(k, stream_req(k));
}

/* A reply on a stream: send it as events, then ask again. */
static void
stream_reply(struct hcall *k, const Drover__Message *rep)
{
    char *text;
    json_t *doc;
    int rc = 0;

    bool news = false;

    if (!k->started) {
        if (httpd_stream_start(k->r, "text/event-stream", stream_closed, k) < 0) {
            httpd_stream_end(k->r);
            hcall_end(k);
            return;
        }
        k->started = true;
        uv_timer_init(k->h->ctl->loop, &k->next_timer);
        k->next_timer.data = k;
        k->has_timer = true;
    }
    if (k->route == R_LOGS) {
        const Drover__LogsRep *lr = rep->logs_rep;

        for (size_t i = 0; i < lr->n_lines && rc == 0; i++) {
            doc = jout_log_line(lr->lines[i]);
            text = jout_dumps(doc, false);
            json_decref(doc);
            if (text == NULL)
                break;
            rc = httpd_stream_send(k->r, "data: ", 6);
            if (rc == 0)
                rc = httpd_stream_send(k->r, text, strlen(text));
            if (rc == 0)
                rc = httpd_stream_send(k->r, "\n", 1);
            free(text);
        }
        if (lr->next_seq > 0)
            k->cursor = lr->next_seq - 1;
        if (lr->n_lines == 0)
            rc = httpd_stream_send(k->r, ": ping\n\n", 8);
        news = lr->n_lines > 0;
        k->sent_once = true;
    } else {
        const Drover__EndpointsRep *er = rep->endpoints_rep;

        news = !k->sent_once || er->version != k->cursor;
        if (news) {
            doc = jout_endpoints(k->app, er);
            text = jout_dumps(doc, false);
            json_decref(doc);
            rc = text == NULL ? -ENOMEM : httpd_stream_send(k->r, "data: ", 6);
            if (rc == 0)
                rc = httpd_stream_send(k->r, text, strlen(text));
            if (rc == 0)
                rc = httpd_stream_send(k->r, "\n", 1);
            free(text);
        } else {
            rc = httpd_stream_send(k->r, ": ping\n\n", 8);
        }
        k->cursor = er->version;
        k->sent_once = true;
    }
    if (rc < 0 || k->left || k->h->ctl->stopping) {
        httpd_stream_end(k->r);
        hcall_end(k);
        return;
    }
    /* Ask again from the loop, never from inside this reply (it may have
     * come back at once, inside ctl_call); after nothing new, a little
     * later, so that a request answered at once cannot spin. */
    uv_timer_start(&k->next_timer, on_next, news ? 0 : 1000, 0);
}

static void
on_done(void *arg, const Drover__Message *rep)
{
    struct hcall *k = arg;
    unsigned status = 200;
    json_t *doc;

    if (rep->body_case == DROVER__MESSAGE__BODY_ERROR) {
        status = status_of(rep->error->code);
        if (k->started)
            httpd_stream_end(k->r);
        else
            respond_error(k->r, status, rep->error->message);
        hcall_end(k);
        return;
    }
    if (k->stream) {
        stream_reply(k, rep);
        return;
    }
    if (k->next != NULL) { /* PATCH config: now the unset */
        Drover__Message *next = k->next;

        k->next = NULL;
        call(k, next);
        return;
    }
    doc = reply_doc(k, rep, &status);
    if (doc == NULL)
        respond_error(k->r, 500, "unexpected reply");
    else if (json_is_null(doc)) {
        json_decref(doc);
        respond_error(k->r, 404, k->route == R_APP ? "no such app" : "not found");
    } else
        respond_json(k->r, status, doc);
    hcall_end(k);
}

/* Takes req (NULL: out of memory). */
static void
call(struct hcall *k, Drover__Message *req)
{
    if (req == NULL) {
        if (k->started)
            httpd_stream_end(k->r);
        else
            respond_error(k->r, 500, "out of memory");
        hcall_end(k);
        return;
    }
    ctl_call(k->h->ctl, req, on_done, k);
}

/* ---- routing ---- */

/* A request message built on the stack, copied to the heap. */
static Drover__Message *
heap_msg(const Drover__Message *m)
{
    size_t len = drover__message__get_packed_size(m);
    uint8_t *buf = malloc(len + 1);
    Drover__Message *out;

    if (buf == NULL)
        return NULL;
    drover__message__pack(m, buf);
    out = drover__message__unpack(NULL, len, buf);
    free(buf);
    return out;
}

/* The request for a route that takes no body. */
static Drover__Message *
simple_req(struct hcall *k, const char *node, const char *state, uint32_t lines)
{
    Drover__Message m = DROVER__MESSAGE__INIT;
    Drover__AppsReq apps = DROVER__APPS_REQ__INIT;
    Drover__PsReq ps = DROVER__PS_REQ__INIT;
    Drover__ConfigReq cfg = DROVER__CONFIG_REQ__INIT;
    Drover__ReleasesReq rel = DROVER__RELEASES_REQ__INIT;
    Drover__SettingsReq set = DROVER__SETTINGS_REQ__INIT;
    Drover__EndpointsReq ep = DROVER__ENDPOINTS_REQ__INIT;
    Drover__LogsReq logs = DROVER__LOGS_REQ__INIT;
    Drover__NodesReq nodes = DROVER__NODES_REQ__INIT;
    Drover__NodeStateReq ns = DROVER__NODE_STATE_REQ__INIT;
    Drover__StatusReq st = DROVER__STATUS_REQ__INIT;
    Drover__AppDestroyReq ad = DROVER__APP_DESTROY_REQ__INIT;
    Drover__DeployReq dep = DROVER__DEPLOY_REQ__INIT;

    switch (k->route) {
    case R_APPS:
    case R_APP:
        m.body_case = DROVER__MESSAGE__BODY_APPS_REQ;
        m.apps_req = &apps;
        break;
    case R_APP_DESTROY:
        ad.app = k->app;
        ad.confirm = k->app;
        m.body_case = DROVER__MESSAGE__BODY_APP_DESTROY_REQ;
        m.app_destroy_req = &ad;
        break;
    case R_PS:
        ps.app = k->app;
        m.body_case = DROVER__MESSAGE__BODY_PS_REQ;
        m.ps_req = &ps;
        break;
    case R_CONFIG:
        cfg.app = k->app;
        m.body_case = DROVER__MESSAGE__BODY_CONFIG_REQ;
        m.config_req = &cfg;
        break;
    case R_RELEASES:
        rel.app = k->app;
        m.body_case = DROVER__MESSAGE__BODY_RELEASES_REQ;
        m.releases_req = &rel;
        break;
    case R_SETTINGS:
        set.app = k->app;
        m.body_case = DROVER__MESSAGE__BODY_SETTINGS_REQ;
        m.settings_req = &set;
        break;
    case R_ENDPOINTS:
        ep.app = k->app;
        ep.type = k->type;
        m.body_case = DROVER__MESSAGE__BODY_ENDPOINTS_REQ;
        m.endpoints_req = &ep;
        break;
    case R_LOGS:
        logs.app = k->app;
        logs.type = k->type;
        logs.lines = lines;
        m.body_case = DROVER__MESSAGE__BODY_LOGS_REQ;
        m.logs_req = &logs;
        break;
    case R_NODES:
        m.body_case = DROVER__MESSAGE__BODY_NODES_REQ;
        m.nodes_req = &nodes;
        break;
    case R_NODE_STATE:
        ns.node = (char *)node;
        ns.state = (char *)state;
        m.body_case = DROVER__MESSAGE__BODY_NODE_STATE_REQ;
        m.node_state_req = &ns;
        break;
    case R_STATUS:
        m.body_case = DROVER__MESSAGE__BODY_STATUS_REQ;
        m.status_req = &st;
        break;
    case R_DEPLOY:
        dep.app = k->app;
        m.body_case = DROVER__MESSAGE__BODY_DEPLOY_REQ;
        m.deploy_req = &dep;
        break;
    default:
        return NULL;
    }
    return heap_msg(&m);
}

/* Split "/v1/apps/shop/ps" into its segments (in buf). Count or -1. */
static int
split(const char *path, char *buf, size_t bufsz, char **seg)
{
    int n = 0;
    char *p, *save = NULL;

    if (strlen(path) >= bufsz)
        return -1;
    snprintf(buf, bufsz, "%s", path);
    for (p = strtok_r(buf, "/", &save); p != NULL; p = strtok_r(NULL, "/", &save)) {
        if (n == SEG_MAX || strcmp(p, "..") == 0 || strcmp(p, ".") == 0)
            return -1;
        seg[n++] = p;
    }
    return n;
}

static bool
authorized(struct ctl_http *h, struct httpd_req *r)
{
    const char *auth = httpd_header(r, "Authorization");
    uint8_t got[crypto_generichash_BYTES];

    if (auth == NULL)
        return ctl_dash_session_ok(r); /* the dashboard, signed in */
    if (strncmp(auth, "Bearer ", 7) != 0)
        return false;
    auth += 7;
    /* Hashes of equal length compare in constant time whatever was sent. */
    crypto_generichash(got, sizeof(got), (const uint8_t *)auth, strlen(auth), NULL, 0);
    return sodium_memcmp(got, h->token_hash, sizeof(got)) == 0;
}

/* 405 unless method is want. */
static bool
method_is(struct httpd_req *r, const char *want)
{
    if (strcmp(httpd_method(r), want) == 0)
        return true;
    respond_error(r, 405, "method not allowed here");
    return false;
}

/* Parse a whole decimal in [0, max]; -1 when not one. */
static long long
num(const char *s, long long max)
{
    char *end = NULL;
    long long v;

    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    v = strtoll(s, &end, 10);
    return *end != '\0' || v > max ? -1 : v;
}

static void
api(struct ctl_http *h, struct httpd_req *r)
{
    char buf[512], err[256], *seg[SEG_MAX];
    const char *m = httpd_method(r), *body;
    Drover__Message *req = NULL;
    struct hcall *k;
    size_t len;
    int n = split(httpd_path(r), buf, sizeof(buf), seg), rc;
    enum ctl_http_verb verb = HTTP_NONE;
    long long lines = 100;
    const char *node = NULL, *state = NULL, *q;

    if (!authorized(h, r)) {
        respond_error(r, 401, "missing or wrong API token (Authorization: Bearer TOKEN)");
        return;
    }
    if (h->pending >= HTTP_PENDING_MAX) {
        respond_error(r, 429, "too many requests in flight; retry");
        return;
    }
    if ((k = calloc(1, sizeof(*k))) == NULL) {
        respond_error(r, 500, "out of memory");
        return;
    }
    k->h = h;
    k->r = r;
    if (n < 2)
        goto notfound;
    if (n >= 3 && strcmp(seg[1], "apps") == 0) {
        if (!name_app_valid(seg[2])) {
            respond_error(r, 404, "no such app (invalid app name)");
            free(k);
            return;
        }
        snprintf(k->app, sizeof(k->app), "%s", seg[2]);
    }
    if (n == 2 && strcmp(seg[1], "apps") == 0) {
        k->route = strcmp(m, "POST") == 0 ? R_APP_CREATE : R_APPS;
        if (k->route == R_APPS && !method_is(r, "GET"))
            goto done405;
        verb = k->route == R_APP_CREATE ? HTTP_CREATE : HTTP_NONE;
    } else if (n == 3 && strcmp(seg[1], "apps") == 0) {
        k->route = strcmp(m, "DELETE") == 0 ? R_APP_DESTROY : R_APP;
        if (k->route == R_APP && !method_is(r, "GET"))
            goto done405;
    } else if (n == 4 && strcmp(seg[1], "apps") == 0) {
        const char *what = seg[3];

        if (strcmp(what, "ps") == 0 && method_is(r, "GET"))
            k->route = R_PS;
        else if (strcmp(what, "scale") == 0 && method_is(r, "POST"))
            k->route = R_SCALE, verb = HTTP_SCALE;
        else if (strcmp(what, "config") == 0 && strcmp(m, "PATCH") == 0)
            k->route = R_CONFIG_PATCH, verb = HTTP_CONFIG_SET;
        else if (strcmp(what, "config") == 0 && method_is(r, "GET"))
            k->route = R_CONFIG;
        else if (strcmp(what, "releases") == 0 && method_is(r, "GET"))
            k->route = R_RELEASES;
        else if (strcmp(what, "rollback") == 0 && method_is(r, "POST"))
            k->route = R_ROLLBACK, verb = HTTP_ROLLBACK;
        else if (strcmp(what, "restart") == 0 && method_is(r, "POST"))
            k->route = R_RESTART, verb = HTTP_RESTART;
        else if (strcmp(what, "settings") == 0 && method_is(r, "GET"))
            k->route = R_SETTINGS;
        else if (strcmp(what, "endpoints") == 0 && method_is(r, "GET"))
            k->route = R_ENDPOINTS;
        else if (strcmp(what, "logs") == 0 && method_is(r, "GET"))
            k->route = R_LOGS;
        else if (strcmp(what, "deploy") == 0 && method_is(r, "GET"))
            k->route = R_DEPLOY;
        else if (strcmp(what, "ps") != 0 && strcmp(what, "scale") != 0 &&
                 strcmp(what, "config") != 0 && strcmp(what, "releases") != 0 &&
                 strcmp(what, "rollback") != 0 && strcmp(what, "restart") != 0 &&
                 strcmp(what, "settings") != 0 && strcmp(what, "endpoints") != 0 &&
                 strcmp(what, "logs") != 0 && strcmp(what, "deploy") != 0)
            goto notfound;
        else
            goto done405;
    } else if (n == 2 && strcmp(seg[1], "nodes") == 0) {
        if (!method_is(r, "GET"))
            goto done405;
        k->route = R_NODES;
    } else if (n == 4 && strcmp(seg[1], "nodes") == 0) {
        static const char *const verbs[][2] = {
            {"cordon", "cordoned"}, {"uncordon", "ready"}, {"drain", "draining"}};

        for (size_t i = 0; i < 3 && state == NULL; i++)
            if (strcmp(seg[3], verbs[i][0]) == 0)
                state = verbs[i][1];
        if (state == NULL || !name_node_valid(seg[2]))
            goto notfound;
        if (!method_is(r, "POST"))
            goto done405;
        node = seg[2];
        k->route = R_NODE_STATE;
    } else if (n == 2 && strcmp(seg[1], "status") == 0) {
        if (!method_is(r, "GET"))
            goto done405;
        k->route = R_STATUS;
    } else {
        goto notfound;
    }
    if ((q = httpd_query(r, "type")) != NULL) {
        if (!name_type_valid(q)) {
            respond_error(r, 400, "type: invalid process type");
            free(k);
            return;
        }
        snprintf(k->type, sizeof(k->type), "%s", q);
    }
    if (k->route == R_LOGS && (q = httpd_query(r, "n")) != NULL && (lines = num(q, 100000)) < 1) {
        respond_error(r, 400, "n: a number of lines from 1 to 100000");
        free(k);
        return;
    }
    q = httpd_query(r, k->route == R_LOGS ? "tail" : "watch");
    k->stream = (k->route == R_LOGS || k->route == R_ENDPOINTS) && q != NULL && strcmp(q, "0") != 0;
    if (verb != HTTP_NONE) {
        body = httpd_body(r, &len);
        rc = ctl_http_decode(verb, k->app, body, len, &req, err, sizeof(err));
        if (rc == 0 && verb == HTTP_CONFIG_SET) {
            rc = ctl_http_decode(HTTP_CONFIG_UNSET, k->app, body, len, &k->next, err, sizeof(err));
            if (req == NULL) {
                req = k->next;
                k->next = NULL;
            }
        }
        if (rc < 0) {
            wire_msg_free(req);
            respond_error(r, rc == -ENOMEM ? 500 : 400, rc == -ENOMEM ? "out of memory" : err);
            wire_msg_free(k->next);
            free(k);
            return;
        }
        if (k->route == R_APP_CREATE && req != NULL)
            snprintf(k->app, sizeof(k->app), "%s", req->app_create_req->app);
    } else if (k->stream) {
        req = stream_req(k);
    } else {
        req = simple_req(k, node, state, (uint32_t)lines);
    }
    h->pending++;
    call(k, req);
    return;
notfound:
    respond_error(r, 404, "no such path (see docs/openapi.yaml)");
    free(k);
    return;
done405:
    free(k);
}

static void
on_request(void *arg, struct httpd_req *r)
{
    struct ctl_http *h = arg;
    const char *path = httpd_path(r);

    if (strcmp(path, "/metrics") == 0) {
        char *text = NULL;
        size_t len = 0;

        if (!method_is(r, "GET"))
            return;
        if (ctl_metrics_render(h->ctl, &text, &len) < 0) {
            respond_error(r, 500, "out of memory");
            return;
        }
        httpd_respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len, NULL);
        free(text);
        return;
    }
    if (strncmp(path, "/v1/", 4) == 0 || strcmp(path, "/v1") == 0) {
        api(h, r);
        return;
    }
    if (ctl_dash_handle(h->ctl, r))
        return;
    respond_error(r, 404, "no such path");
}

int
ctl_http_start(struct ctl *ctl)
{
    struct httpd_opts o = {.listen = ctl->cfg.http_listen, .name = "http"};
    struct ctl_http *h;
    int rc = 0;

    if (ctl->cfg.http_listen[0] == '\0')
        return 0;
    if ((h = calloc(1, sizeof(*h))) == NULL)
        return -ENOMEM;
    h->ctl = ctl;
    crypto_generichash(h->token_hash, sizeof(h->token_hash), (const uint8_t *)ctl->cfg.api_token,
                       strlen(ctl->cfg.api_token), NULL, 0);
    o.tls_cert = ctl->cfg.http_tls_cert;
    o.tls_key = ctl->cfg.http_tls_key;
    if (!listen_is_loopback(o.listen))
        log_warn("http_exposed", "http=%s reason=%s", o.listen,
                 log_q("DROVER_HTTP_LISTEN is not a loopback address: the API (token-protected), "
                       "metrics and dashboard are reachable from the network"));
    h->srv = httpd_start(ctl->loop, &o, on_request, h, &rc);
    if (h->srv == NULL) {
        free(h);
        return rc;
    }
    ctl->http = h;
    log_info("http_listening", "http=%s tls=%s", o.listen, o.tls_cert != NULL ? "on" : "off");
    return 0;
}

void
ctl_http_stop(struct ctl *ctl)
{
    if (ctl->http == NULL)
        return;
    httpd_stop(ctl->http->srv);
    /* Calls still in flight answer into requests the server let go. */
    if (ctl->http->pending == 0)
        free(ctl->http);
    else
        ctl->http->orphan = true;
    ctl->http = NULL;
}
