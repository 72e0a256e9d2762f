/* SPDX-License-Identifier: MIT */
/*
 * Log drains end to end: a real controller and agent, the real CLI, a real
 * rsyslog (Debian's rsyslogd, imtcp plain and with gtls, started here with
 * its own config, work directory and pid file) and a real HTTPS receiver
 * (Python's http.server with ssl), with a CA and certificates made here
 * with openssl. Controllers on 7700-7715, app ports 10400-10599, receivers
 * on 10600-10619.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "harness.h"
#include "pipes.h"

static struct h_cluster C;

static void
fini(void)
{
    h_cleanup(&C);
}

TestSuite(drains, .fini = fini, .timeout = 240);

#define CLI(out, err, ...) h_cli(&C, out, err, (const char *const[]){__VA_ARGS__, NULL})
#define RSYSLOGD "/usr/sbin/rsyslogd"

static const char *app_dir = DROVER_SOURCE_DIR "/tests/integration/runapp";

static char *
slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *s;
    long n;

    if (f == NULL)
        return strdup("");
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    s = calloc(1, (size_t)n + 1);
    if (fread(s, 1, (size_t)n, f) != (size_t)n)
        s[0] = '\0';
    fclose(f);
    return s;
}

static bool
wait_file_has(const char *path, const char *needle, int timeout_ms)
{
    for (long deadline = p_now_ms() + timeout_ms; p_now_ms() < deadline; h_msleep(100)) {
        char *s = slurp(path);
        bool ok = strstr(s, needle) != NULL;

        free(s);
        if (ok)
            return true;
    }
    return false;
}

static bool
port_open(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0), rc;

    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
    close(fd);
    return rc == 0;
}

static void
need_rsyslog(bool tls)
{
    if (access(RSYSLOGD, X_OK) != 0)
        cr_skip_test("rsyslog is not installed (tests/run installs rsyslog and rsyslog-gnutls)");
    if (tls && system("dpkg-query -W -f='${Status}' rsyslog-gnutls 2>/dev/null | grep -q 'ok "
                      "installed'") != 0)
        cr_skip_test("rsyslog-gnutls is not installed (tests/run installs it)");
    if (system("command -v openssl >/dev/null") != 0)
        cr_skip_test("openssl is not installed");
}

/* A CA (ca.pem), a server certificate it signed for localhost and
 * 127.0.0.1 (srv.pem, srv.key) and one for another name (other.pem,
 * other.key), and a second CA nobody trusts that signed a certificate for
 * localhost and 127.0.0.1 (bad.pem, bad.key). */
static void
make_certs(void)
{
    char cmd[4096];

    snprintf(cmd, sizeof(cmd),
             "cd %s && exec >certs.log 2>&1 && "
             "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext && "
             "printf 'subjectAltName=DNS:elsewhere.example\\n' > other.ext && "
             "for ca in ca evil; do "
             "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj \"/CN=drover test $ca\" "
             "-keyout $ca.key -out $ca.pem || exit 1; done && "
             "for s in srv:ca bad:evil; do n=${s%%:*}; ca=${s#*:}; "
             "openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout $n.key "
             "-out $n.csr && "
             "openssl x509 -req -in $n.csr -CA $ca.pem -CAkey $ca.key -CAcreateserial -days 2 "
             "-extfile san.ext -out $n.pem || exit 1; done && "
             "openssl req -newkey rsa:2048 -nodes -subj /CN=elsewhere.example -keyout other.key "
             "-out other.csr && openssl x509 -req -in other.csr -CA ca.pem -CAkey ca.key "
             "-CAcreateserial -days 2 -extfile other.ext -out other.pem && chmod 644 *.key",
             C.dir);
    cr_assert_eq(system(cmd), 0, "openssl failed: see %s/certs.log", C.dir);
}

/* rsyslogd in the foreground on port (tls: with cert NAME.pem/NAME.key),
 * every message as "HOSTNAME APP-NAME PROCID SEVERITY MSG" into
 * DIR/NAME.out. Returns its proc index once it accepts connections. */
static int
start_rsyslog(const char *name, int port, const char *cert)
{
    char conf[512], work[512], pid[512], text[2048], path[512];
    FILE *f;
    int idx;

    snprintf(conf, sizeof(conf), "%s/%s.conf", C.dir, name);
    snprintf(work, sizeof(work), "%s/%s.d", C.dir, name);
    snprintf(pid, sizeof(pid), "%s/%s.d/pid", C.dir, name);
    snprintf(path, sizeof(path), "%s/%s.out", C.dir, name);
    mkdir(work, 0755);
    if (cert != NULL)
        snprintf(text, sizeof(text),
                 "global(workDirectory=\"%s\" maxMessageSize=\"64k\""
                 " DefaultNetstreamDriver=\"gtls\" DefaultNetstreamDriverCAFile=\"%s/ca.pem\""
                 " DefaultNetstreamDriverCertFile=\"%s/%s.pem\""
                 " DefaultNetstreamDriverKeyFile=\"%s/%s.key\")\n"
                 "module(load=\"imtcp\" StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\""
                 " StreamDriver.AuthMode=\"anon\")\n",
                 work, C.dir, C.dir, cert, C.dir, cert);
    else
        snprintf(text, sizeof(text),
                 "global(workDirectory=\"%s\" maxMessageSize=\"64k\")\nmodule(load=\"imtcp\")\n",
                 work);
    f = fopen(conf, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "%sinput(type=\"imtcp\" port=\"%d\" address=\"127.0.0.1\")\n"
            "template(name=\"t\" type=\"string\""
            " string=\"%%hostname%% %%app-name%% %%procid%% %%syslogseverity-text%% %%msg%%\\n\")\n"
            "action(type=\"omfile\" file=\"%s\" template=\"t\")\n",
            text, port, path);
    fclose(f);
    idx = h_start_cmd(&C, name, (const char *const[]){RSYSLOGD, "-n", "-f", conf, "-i", pid, NULL},
                      NULL);
    for (long deadline = p_now_ms() + 10000; !port_open(port); h_msleep(50))
        cr_assert_lt(p_now_ms(), deadline, "rsyslog %s never listened: see %s", name,
                     C.procs[idx].log);
    return idx;
}

static void
out_path(const char *name, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/%s.out", C.dir, name);
}

static char ca_env[512];

/* A controller that trusts the test's CA, its history big enough for every
 * line a test writes; extra (may be NULL) first. Returns its proc index. */
static int
start_controller(const char *name, const char *extra)
{
    static char data[320], api[96], agents[96];
    const char *env[] = {extra ? extra : "DROVER_LOG_LINES=100000",
                         ca_env,
                         "DROVER_LOG_LINES=100000",
                         data,
                         api,
                         agents,
                         NULL};
    int idx;

    snprintf(ca_env, sizeof(ca_env), "DROVER_DRAIN_CA_FILE=%s/ca.pem", C.dir);
    snprintf(data, sizeof(data), "DROVER_DATA_DIR=%s/controller", C.dir);
    snprintf(api, sizeof(api), "DROVER_API_LISTEN=%s", C.api);
    snprintf(agents, sizeof(agents), "DROVER_AGENT_LISTEN=%s", C.join);
    idx = h_start(&C, name, "drover-controller", env, NULL);
    cr_assert(h_wait_log(&C, idx, "event=ready", 10000), "%s not ready", name);
    return idx;
}

/* Certificates, a controller, one agent n1 on range, the app shop. */
static int
start_cluster(const char *test, int base, const char *range, const char *extra)
{
    int ctl, idx;

    h_init(&C, test, base);
    make_certs();
    ctl = start_controller("controller", extra);
    idx = h_start_agent(&C, "n1", range, NULL);
    cr_assert(h_wait_log(&C, idx, "event=ready", 10000), "agent not ready");
    cr_assert_eq(CLI(NULL, NULL, "apps:create", "shop"), 0);
    return ctl;
}

static void
deploy_and_scale(const char *scale)
{
    char *err = NULL;

    cr_assert_eq(CLI(NULL, &err, "deploy", "shop", app_dir), 0, "deploy: %s", err);
    free(err);
    err = NULL;
    cr_assert_eq(CLI(NULL, &err, "scale", "shop", scale), 0, "scale: %s", err);
    free(err);
}

static int
get_drains(struct j_obj *o, int max)
{
    char *out = NULL;
    int n;

    cr_assert_eq(CLI(&out, NULL, "drains", "shop", "--json"), 0);
    n = j_parse_array(out, o, max);
    cr_assert_geq(n, 0, "%s", out);
    free(out);
    return n;
}

static const struct j_obj *
drain_by_url(struct j_obj *o, int n, const char *url)
{
    for (int i = 0; i < n; i++)
        if (strcmp(j_get(&o[i], "url"), url) == 0)
            return &o[i];
    cr_assert_fail("no drain %s", url);
    return NULL;
}

static void
add_drain(const char *url)
{
    char *out = NULL, *err = NULL;

    cr_assert_eq(CLI(&out, &err, "drains:add", "shop", url), 0, "drains:add %s: %s", url, err);
    cr_assert(strstr(out, "Successfully added drain") != NULL, "%s", out);
    free(out);
    free(err);
}

Test(drains, syslog_tcp_and_tls_carry_lines_and_events_and_refuse_untrusted)
{
    char plain[512], tls[512], bad[512], *out = NULL, *err = NULL, *s;
    struct j_obj o[8], o2[8];
    int n;

    need_rsyslog(true);
    int ctl = start_cluster("drains-syslog", 7700, "10400-10449", NULL);
    start_rsyslog("plain", 10600, NULL);
    start_rsyslog("tls", 10601, "srv");
    start_rsyslog("untrusted", 10602, "bad");
    start_rsyslog("misnamed", 10610, "other");
    out_path("plain", plain, sizeof(plain));
    out_path("tls", tls, sizeof(tls));
    out_path("untrusted", bad, sizeof(bad));

    add_drain("syslog://127.0.0.1:10600");
    add_drain("syslog+tls://localhost:10601");
    add_drain("syslog+tls://127.0.0.1:10602");
    add_drain("syslog+tls://127.0.0.1:10610");

    /* Hostile URLs: refused with the reason, nothing added. */
    static const struct {
        const char *url, *why;
    } hostile[] = {
        {"ftp://127.0.0.1:21", "not supported"},
        {"http://logs.example.com/x", "loopback"},
        {"syslog://127.0.0.1", "needs a port"},
        {"syslog://127.0.0.1:99999", "bad port"},
        {"https://logs.example.com/a\nb", "control"},
        {"syslog://127.0.0.1:10600", "already drains"},
    };
    for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
        cr_assert_eq(CLI(NULL, &err, "drains:add", "shop", hostile[i].url), 1, "accepted %s",
                     hostile[i].url);
        cr_assert(strstr(err, hostile[i].why) != NULL, "%s: %s", hostile[i].url, err);
        free(err);
        err = NULL;
    }
    cr_assert_eq(CLI(NULL, &err, "drains:add", "nope", "syslog://127.0.0.1:1"), 1);
    cr_assert(strstr(err, "no app nope") != NULL, "%s", err);
    free(err);
    err = NULL;
    cr_assert_eq(get_drains(o, 8), 4);

    deploy_and_scale("worker=1");
    /* App lines (APP-NAME shop, PROCID worker.1, HOSTNAME the node) and
     * drover's own events (PROCID drover, severity notice), over both. */
    cr_assert(wait_file_has(plain, "n1 shop worker.1 info worker.1 tick 3 ", 30000),
              "plain syslog got no worker lines");
    cr_assert(wait_file_has(tls, "n1 shop worker.1 info worker.1 tick 3 ", 30000),
              "TLS syslog got no worker lines");
    cr_assert(wait_file_has(plain, " shop drover notice worker.1@n1 starting -> up", 20000),
              "no state change event");
    s = slurp(plain);
    cr_assert(strstr(s, " shop drover notice release v1 created") != NULL, "%s", s);
    cr_assert(strstr(s, " shop drover notice scaled worker=1") != NULL, "%s", s);
    cr_assert(strstr(s, " shop drover notice worker.1@n1 starting -> up") != NULL, "%s", s);
    free(s);
    s = slurp(tls);
    cr_assert(strstr(s, " shop drover notice release v1 created") != NULL, "%s", s);
    free(s);
    /* A line on stderr goes with severity err. */
    cr_assert_eq(
        CLI(NULL, NULL, "run", "shop", "--detach", "--", "echo to-stdout; echo to-stderr >&2"), 0);
    cr_assert(wait_file_has(plain, "n1 shop run.1 err to-stderr", 20000), "no stderr line");
    cr_assert(wait_file_has(tls, "n1 shop run.1 info to-stdout", 20000), "no stdout line");
    /* The untrusted server got nothing, and drains says why. */
    s = slurp(bad);
    cr_assert(strstr(s, "shop") == NULL, "the untrusted server received: %s", s);
    free(s);
    n = get_drains(o, 8);
    const struct j_obj *u = drain_by_url(o, n, "syslog+tls://127.0.0.1:10602");
    cr_assert(strncmp(j_get(u, "state"), "failing: TLS: server certificate not trusted", 44) == 0,
              "%s", j_get(u, "state"));
    cr_assert_str_eq(j_get(u, "sent"), "0");
    /* A trusted CA's certificate for another name is refused too. */
    const struct j_obj *mis = drain_by_url(o, n, "syslog+tls://127.0.0.1:10610");
    cr_assert(strstr(j_get(mis, "state"), "failing: TLS: server certificate not trusted: ") !=
                      NULL &&
                  strstr(j_get(mis, "state"), "mismatch") != NULL,
              "%s", j_get(mis, "state"));
    char mispath[512];
    out_path("misnamed", mispath, sizeof(mispath));
    s = slurp(mispath);
    cr_assert(strstr(s, "shop") == NULL, "the misnamed server received: %s", s);
    free(s);
    cr_assert_str_eq(j_get(drain_by_url(o, n, "syslog://127.0.0.1:10600"), "state"), "connected");
    cr_assert_str_eq(j_get(drain_by_url(o, n, "syslog+tls://localhost:10601"), "state"),
                     "connected");
    cr_assert_eq(CLI(&out, NULL, "drains", "shop"), 0);
    cr_assert(strstr(out, "failing: TLS: server certificate not trusted") != NULL, "%s", out);
    cr_assert(strstr(out, "syslog://127.0.0.1:10600") != NULL, "%s", out);
    free(out);

    /* Stored like config: a restarted controller has the same drains and
     * goes on sending. */
    /* It exits 0 (under the sanitizers: no leak, no error) with drains
     * connected, failing and buffering. */
    int st = h_stop(&C, ctl, 10000);
    cr_assert(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "controller exit status %d", st);
    start_controller("controller2", NULL);
    cr_assert_eq(get_drains(o2, 8), 4);
    for (int i = 0; i < 4; i++)
        cr_assert_str_eq(j_get(&o2[i], "id"), j_get(&o[i], "id"));
    s = slurp(plain);
    int before = h_count(s, "shop worker.1 info");
    free(s);
    for (long deadline = p_now_ms() + 20000;; h_msleep(200)) {
        s = slurp(plain);
        int now = h_count(s, "shop worker.1 info");
        free(s);
        if (now >= before + 3)
            break;
        cr_assert_lt(p_now_ms(), deadline, "no lines after the restart");
    }

    /* Remove by URL and by id; an unknown one is refused. */
    cr_assert_eq(CLI(NULL, NULL, "drains:remove", "shop", "syslog://127.0.0.1:10600"), 0);
    cr_assert_eq(CLI(NULL, NULL, "drains:remove", "shop", j_get(u, "id")), 0);
    cr_assert_eq(CLI(NULL, &err, "drains:remove", "shop", "d.000000000000"), 1);
    cr_assert(strstr(err, "no drain") != NULL, "%s", err);
    free(err);
    cr_assert_eq(get_drains(o, 8), 2);
    cr_assert_str_eq(j_get(&o[0], "url"), "syslog+tls://localhost:10601");
}

/* The worker's tick numbers in a receiver's file, for lines of worker.1. */
static int
ticks(const char *text, int *v, int max)
{
    int n = 0;

    for (const char *p = text; (p = strstr(p, "worker.1 tick ")) != NULL && n < max; p++)
        v[n++] = atoi(p + strlen("worker.1 tick "));
    return n;
}

/* The t= stamp (unix ms) of tick i in text, or -1. */
static long
tick_time(const char *text, int i)
{
    char needle[48];
    const char *p;

    snprintf(needle, sizeof(needle), "worker.1 tick %d t=", i);
    p = strstr(text, needle);
    return p ? atol(p + strlen(needle)) : -1;
}

/* The ticks in before + after (one server's files, before and after its
 * restart): none twice, none missing from the first to the last, and how
 * many were written while it was down. */
static void
check_outage(const char *what, const char *before, const char *after, long down, long up)
{
    static int v[4096];
    char *a = slurp(before), *b = slurp(after);
    size_t la = strlen(a);
    char *all = malloc(la + strlen(b) + 1);
    int n, lo = 1 << 30, hi = 0, outage = 0;

    memcpy(all, a, la);
    strcpy(all + la, b);
    n = ticks(all, v, 4096);
    for (int i = 0; i < n; i++) {
        for (int j = i + 1; j < n; j++)
            cr_assert_neq(v[i], v[j], "%s: tick %d arrived twice", what, v[i]);
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] > hi ? v[i] : hi;
        long t = tick_time(all, v[i]);
        outage += t > down + 100 && t < up - 100;
    }
    cr_assert_eq(n, hi - lo + 1, "%s: %d ticks from %d to %d: lines were lost\n%s", what, n, lo, hi,
                 all);
    cr_assert_geq(outage, 8, "%s: only %d lines were written during the outage", what, outage);
    free(a);
    free(b);
    free(all);
}

/* The newest tick's t= in path, or -1. */
static long
newest_tick(const char *path)
{
    static int v[4096];
    char *s = slurp(path);
    int n = ticks(s, v, 4096);
    long t = n > 0 ? tick_time(s, v[n - 1]) : -1;

    free(s);
    return t;
}

Test(drains, syslog_outage_every_line_written_meanwhile_arrives_once)
{
    char p1[512], p2[512], t1[512], t2[512];
    int rs, ts;

    need_rsyslog(true);
    start_cluster("drains-outage", 7704, "10450-10499", NULL);
    rs = start_rsyslog("rs1", 10603, NULL);
    ts = start_rsyslog("tls1", 10611, "srv");
    out_path("rs1", p1, sizeof(p1));
    out_path("tls1", t1, sizeof(t1));
    add_drain("syslog://127.0.0.1:10603");
    add_drain("syslog+tls://localhost:10611");
    deploy_and_scale("worker=1");
    cr_assert(wait_file_has(p1, "worker.1 tick 5 ", 30000), "no lines before the outage");
    cr_assert(wait_file_has(t1, "worker.1 tick 5 ", 30000), "no TLS lines before the outage");

    /* Stop both servers; the worker goes on writing (a line every 300 ms). */
    cr_assert_geq(h_stop(&C, rs, 10000), 0, "rsyslog did not stop");
    cr_assert_geq(h_stop(&C, ts, 10000), 0, "rsyslog (TLS) did not stop");
    long down = p_now_ms();
    h_msleep(4000);
    long up = p_now_ms();
    start_rsyslog("rs2", 10603, NULL);
    start_rsyslog("tls2", 10611, "srv");
    out_path("rs2", p2, sizeof(p2));
    out_path("tls2", t2, sizeof(t2));

    /* Wait for lines written well after the restart. */
    for (long deadline = p_now_ms() + 60000;
         newest_tick(p2) < up + 1500 || newest_tick(t2) < up + 1500; h_msleep(200))
        cr_assert_lt(p_now_ms(), deadline, "no lines after the restart");
    check_outage("syslog", p1, p2, down, up);
    check_outage("syslog+tls", t1, t2, down, up);

    struct j_obj o[2];
    cr_assert_eq(get_drains(o, 2), 2);
    for (int i = 0; i < 2; i++) {
        cr_assert_str_eq(j_get(&o[i], "state"), "connected");
        cr_assert_str_eq(j_get(&o[i], "dropped"), "0");
        cr_assert(strstr(j_get(&o[i], "last_error"), "closed") != NULL ||
                      strstr(j_get(&o[i], "last_error"), "refused") != NULL,
                  "%s", j_get(&o[i], "last_error"));
    }
}

struct req {
    int status, count, framed;
    char id[64], ctype[64], token[64], path[64];
    char *msgs; /* the request's "msg ..." lines */
};

/* Parse logplex_recv.py's output. */
static int
parse_requests(char *text, struct req *r, int max)
{
    int n = 0;
    char *line = text, *nl;

    for (; line != NULL && *line != '\0'; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        if (strncmp(line, "req ", 4) == 0 && n < max) {
            struct req *q = &r[n++];
            int num;

            memset(q, 0, sizeof(*q));
            cr_assert_eq(sscanf(line,
                                "req %d status=%d id=%63s count=%d framed=%d ctype=%63s "
                                "token=%63s path=%63s",
                                &num, &q->status, q->id, &q->count, &q->framed, q->ctype, q->token,
                                q->path),
                         8, "%s", line);
            q->msgs = strdup("");
        } else if (strncmp(line, "msg ", 4) == 0 && n > 0) {
            struct req *q = &r[n - 1];
            size_t l = strlen(q->msgs);

            q->msgs = realloc(q->msgs, l + strlen(line) + 2);
            sprintf(q->msgs + l, "%s\n", line);
        }
    }
    return n;
}

Test(drains, https_batches_headers_frame_ids_and_retry_after_503)
{
    char script[512], cert[512], key[512], out[512], *s;
    static struct req r[512];
    static int v[4096];
    int n, nv = 0;

    need_rsyslog(false); /* for openssl */
    start_cluster("drains-https", 7708, "10500-10549", NULL);
    snprintf(script, sizeof(script), "%s/tests/integration/logplex_recv.py", DROVER_SOURCE_DIR);
    snprintf(cert, sizeof(cert), "%s/srv.pem", C.dir);
    snprintf(key, sizeof(key), "%s/srv.key", C.dir);
    snprintf(out, sizeof(out), "%s/recv.out", C.dir);
    int rx = h_start_cmd(
        &C, "recv",
        (const char *const[]){"/usr/bin/python3", script, "10604", cert, key, out, "2,3", NULL},
        NULL);
    cr_assert(h_wait_log(&C, rx, "ready", 10000), "the receiver did not start");
    /* A second receiver whose certificate no trusted CA signed. */
    char badcert[512], badkey[512], badout[512];
    snprintf(badcert, sizeof(badcert), "%s/bad.pem", C.dir);
    snprintf(badkey, sizeof(badkey), "%s/bad.key", C.dir);
    snprintf(badout, sizeof(badout), "%s/recv-bad.out", C.dir);
    int rb = h_start_cmd(&C, "recv-bad",
                         (const char *const[]){"/usr/bin/python3", script, "10612", badcert, badkey,
                                               badout, "", NULL},
                         NULL);
    cr_assert(h_wait_log(&C, rb, "ready", 10000), "the second receiver did not start");
    add_drain("https://localhost:10604/logs?x=1");
    add_drain("https://localhost:10612/logs");
    deploy_and_scale("worker=1");
    cr_assert(wait_file_has(out, "worker.1 tick 12 ", 40000), "no worker lines over HTTPS");

    s = slurp(out);
    n = parse_requests(s, r, 512);
    cr_assert_geq(n, 5);
    bool batch = false;
    for (int i = 0; i < n; i++) {
        cr_assert_str_eq(r[i].ctype, "application/logplex-1");
        cr_assert_str_eq(r[i].path, "/logs?x=1");
        cr_assert(strncmp(r[i].token, "d.", 2) == 0, "%s", r[i].token);
        cr_assert_eq(strlen(r[i].id), 32, "%s", r[i].id);
        cr_assert_gt(r[i].count, 0);
        cr_assert_eq(r[i].count, r[i].framed, "request %d: Logplex-Msg-Count %d, %d messages",
                     i + 1, r[i].count, r[i].framed);
        batch |= r[i].status == 200 && r[i].count >= 2;
    }
    cr_assert(batch, "no request carried more than one message");
    /* 2 and 3 got 503: the same batch came again, same frame id, until 4
     * took it. */
    cr_assert_eq(r[1].status, 503);
    cr_assert_eq(r[2].status, 503);
    cr_assert_eq(r[3].status, 200);
    cr_assert_str_eq(r[2].id, r[1].id);
    cr_assert_str_eq(r[3].id, r[1].id);
    cr_assert_str_eq(r[2].msgs, r[1].msgs);
    cr_assert_str_eq(r[3].msgs, r[1].msgs);
    /* Delivered batches have distinct ids and carry every tick once, in
     * order; drover's events are notice (<13>), app lines info (<14>). */
    for (int i = 0; i < n; i++) {
        if (r[i].status != 200)
            continue;
        for (int j = i + 1; j < n; j++)
            cr_assert(r[j].status != 200 || strcmp(r[i].id, r[j].id) != 0,
                      "frame id %s delivered twice", r[i].id);
        nv += ticks(r[i].msgs, v + nv, 4096 - nv);
    }
    cr_assert_geq(nv, 12);
    for (int i = 0; i < nv; i++)
        cr_assert_eq(v[i], i + 1, "tick %d where %d belongs", v[i], i + 1);
    for (int i = 0; i < n; i++)
        free(r[i].msgs);
    free(s);
    s = slurp(out); /* parse_requests cut the first copy into lines */
    cr_assert(strstr(s, "msg <14>1 worker.1 worker.1 tick 1 ") != NULL, "%s", s);
    cr_assert(strstr(s, "msg <13>1 drover release v1 created") != NULL, "%s", s);
    free(s);
    struct j_obj o[2];
    cr_assert_eq(get_drains(o, 2), 2);
    const struct j_obj *good = drain_by_url(o, 2, "https://localhost:10604/logs?x=1");
    cr_assert_str_eq(j_get(good, "state"), "connected");
    cr_assert(strstr(j_get(good, "last_error"), "HTTP 503") != NULL, "%s",
              j_get(good, "last_error"));
    /* The untrusted receiver got nothing, and drains says why. */
    const struct j_obj *bad = drain_by_url(o, 2, "https://localhost:10612/logs");
    cr_assert(strncmp(j_get(bad, "state"), "failing: TLS: server certificate not trusted", 44) == 0,
              "%s", j_get(bad, "state"));
    cr_assert_str_eq(j_get(bad, "sent"), "0");
    s = slurp(badout);
    cr_assert_str_eq(s, "", "the untrusted receiver got: %s", s);
    free(s);
}

/* Lines in `drover logs shop` from the one holding from on (included). */
static int
stream_lines_from(const char *from)
{
    char *out = NULL;
    const char *p;
    int n = 0;

    cr_assert_eq(CLI(&out, NULL, "logs", "shop", "-n", "100000"), 0);
    p = strstr(out, from);
    cr_assert_not_null(p, "no \"%s\" in the stream", from);
    while (p > out && p[-1] != '\n')
        p--;
    for (; (p = strchr(p, '\n')) != NULL; p++)
        n++;
    free(out);
    return n;
}

Test(drains, drop_marker_counts_exactly_under_a_flood)
{
    char path[512], added[64], *s, *err = NULL;
    struct j_obj o[2];
    int total = -1;

    need_rsyslog(false);
    start_cluster("drains-flood", 7712, "10550-10574", "DROVER_DRAIN_BUFFER=100");
    out_path("rs", path, sizeof(path));
    /* The destination is down from the start. */
    add_drain("syslog://127.0.0.1:10605");
    cr_assert_eq(get_drains(o, 2), 1);
    snprintf(added, sizeof(added), "drain %s added", j_get(&o[0], "id"));
    cr_assert_eq(CLI(NULL, &err, "deploy", "shop", app_dir), 0, "deploy: %s", err);
    free(err);
    err = NULL;
    cr_assert_eq(CLI(NULL, &err, "run", "shop", "--detach", "--",
                     "i=0; while [ $i -lt 3000 ]; do echo \"flood $i\"; i=$((i + 1)); done"),
                 0, "run: %s", err);
    free(err);

    /* `drover logs` gets every line while the drain cannot send (never
     * blocked by it); wait until the stream is quiet. */
    for (long deadline = p_now_ms() + 60000;; h_msleep(500)) {
        char *out = NULL;
        int n;

        cr_assert_eq(CLI(&out, NULL, "logs", "shop", "-n", "100000"), 0);
        bool all = strstr(out, "flood 2999") != NULL;
        free(out);
        n = all ? stream_lines_from(added) : -1;
        if (all && n == total)
            break;
        total = n;
        cr_assert_lt(p_now_ms(), deadline, "the flood never reached the controller");
    }
    h_msleep(1000);
    cr_assert_eq(stream_lines_from(added), total, "the stream was not quiet");
    cr_assert_eq(get_drains(o, 2), 1);
    cr_assert_str_eq(j_get(&o[0], "buffered"), "100");
    cr_assert_eq(atoi(j_get(&o[0], "dropped")), total - 100);
    cr_assert(strncmp(j_get(&o[0], "state"), "retrying: ", 10) == 0 ||
                  strncmp(j_get(&o[0], "state"), "failing: ", 9) == 0,
              "%s", j_get(&o[0], "state"));
    cr_assert(strstr(j_get(&o[0], "state"), "refused") != NULL, "%s", j_get(&o[0], "state"));

    /* The destination comes up: the marker, then the last 100 lines. */
    start_rsyslog("rs", 10605, NULL);
    for (long deadline = p_now_ms() + 60000;; h_msleep(200)) {
        cr_assert_eq(get_drains(o, 2), 1);
        if (strcmp(j_get(&o[0], "buffered"), "0") == 0)
            break;
        cr_assert_lt(p_now_ms(), deadline, "the drain never caught up: %s", j_get(&o[0], "state"));
    }
    cr_assert(wait_file_has(path, "flood 2999", 10000), "the last line never arrived");
    s = slurp(path);
    long long marked = 0, m;
    int lines = 0, markers = 0;
    for (char *p = s; p != NULL && *p != '\0';) {
        char *nl = strchr(p, '\n'), *t;

        if (nl != NULL)
            *nl = '\0';
        cr_assert(strncmp(strchr(p, ' ') ? strchr(p, ' ') + 1 : p, "shop ", 5) == 0, "%s", p);
        if ((t = strstr(p, " drover: ")) != NULL &&
            sscanf(t, " drover: %lld lines dropped (drain buffer full)", &m) == 1) {
            cr_assert(strstr(p, "shop drover notice drover: ") != NULL, "%s", p);
            cr_assert_eq(lines, 0, "the marker came after %d lines", lines);
            marked += m;
            markers++;
        } else {
            lines++;
        }
        p = nl ? nl + 1 : NULL;
    }
    free(s);
    cr_assert_eq(markers, 1);
    cr_assert_eq(lines, 100);
    cr_assert_eq(marked + lines, total, "%lld marked + %d lines != %d in the stream", marked, lines,
                 total);
    cr_assert_eq(atoll(j_get(&o[0], "dropped")), marked);
    cr_assert_eq(atoi(j_get(&o[0], "sent")), 100);
    cr_assert_str_eq(j_get(&o[0], "state"), "connected");
}

Test(drains, hostile_destinations_harm_nothing_else)
{
    char script[512], path[512], *out = NULL, *err = NULL, *s;
    struct j_obj o[8];
    int n;

    need_rsyslog(false);
    start_cluster("drains-hostile", 7716, "10575-10599", NULL);
    snprintf(script, sizeof(script), "%s/tests/integration/hostile_recv.py", DROVER_SOURCE_DIR);
    int hx = h_start_cmd(
        &C, "hostile",
        (const char *const[]){"/usr/bin/python3", script, "10606", "10607", "10608", NULL}, NULL);
    cr_assert(h_wait_log(&C, hx, "ready", 10000), "the hostile servers did not start");
    start_rsyslog("good", 10609, NULL);
    out_path("good", path, sizeof(path));
    add_drain("syslog://127.0.0.1:10606"); /* sends garbage */
    add_drain("syslog://127.0.0.1:10607"); /* never reads */
    add_drain("syslog://127.0.0.1:10608"); /* closes at once */
    add_drain("syslog://127.0.0.1:10609"); /* rsyslog */
    cr_assert_eq(CLI(NULL, &err, "deploy", "shop", app_dir), 0, "deploy: %s", err);
    free(err);
    err = NULL;
    /* 20,000 lines of 100 bytes: more than the never-reading server's
     * socket buffers hold. */
    long t0 = p_now_ms();
    cr_assert_eq(CLI(NULL, &err, "run", "shop", "--detach", "--",
                     "pad=$(printf '%080d' 0); i=0; while [ $i -lt 20000 ]; do "
                     "echo \"flood $i $pad\"; i=$((i + 1)); done"),
                 0, "run: %s", err);
    free(err);
    cr_assert(wait_file_has(path, "flood 19999 ", 60000), "the good drain never got the flood");
    long took = p_now_ms() - t0;

    /* Every line, once, in order, at the good drain. */
    s = slurp(path);
    int next = 0;
    for (char *p = s; (p = strstr(p, " flood ")) != NULL; p++) {
        cr_assert_eq(atoi(p + 7), next, "flood %d where %d belongs", atoi(p + 7), next);
        next++;
    }
    cr_assert_eq(next, 20000);
    free(s);
    /* drover logs and the API answer; the bad drains say what is wrong. */
    cr_assert_eq(CLI(&out, NULL, "logs", "shop", "-n", "5"), 0);
    free(out);
    n = get_drains(o, 8);
    cr_assert_eq(n, 4);
    cr_assert_str_eq(j_get(drain_by_url(o, n, "syslog://127.0.0.1:10609"), "state"), "connected");
    cr_assert_str_eq(j_get(drain_by_url(o, n, "syslog://127.0.0.1:10609"), "dropped"), "0");
    for (int port = 10606; port <= 10608; port++) {
        char url[64];

        snprintf(url, sizeof(url), "syslog://127.0.0.1:%d", port);
        const struct j_obj *d = drain_by_url(o, n, url);
        for (long deadline = p_now_ms() + 30000;
             port != 10607 && strcmp(j_get(d, "state"), "connected") == 0; h_msleep(200)) {
            cr_assert_lt(p_now_ms(), deadline, "%s stays connected", url);
            n = get_drains(o, 8);
            d = drain_by_url(o, n, url);
        }
        cr_assert(port == 10607 || strstr(j_get(d, "last_error"), "closed") != NULL, "%s: %s", url,
                  j_get(d, "last_error"));
    }
    cr_log_info("the good drain had all 20,000 lines %ld ms after the flood began", took);
    /* The controller stops promptly even with a drain stuck in a write. */
    long t1 = p_now_ms();
    int st = h_stop(&C, 0, 10000);
    cr_assert(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "controller exit status %d", st);
    cr_assert_lt(p_now_ms() - t1, 6000, "the controller took %ld ms to stop", p_now_ms() - t1);
}
