/* SPDX-License-Identifier: MIT */
/*
 * main.c: drover-controller starts here. It reads the environment, opens the
 * store and loads the model, binds the endpoints, runs the loop, and on
 * SIGTERM or SIGINT shuts down gracefully: stop taking requests, let work in
 * the thread pool finish and answer, close every handle, let uv_run return,
 * close the store. Everything else lives in the file named for it (ctl.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "http.h"
#include "env.h"
#include "log.h"
#include "notify.h"
#include "store.h"
#include "version.h"

/*
 * High availability (issue 16): DROVER_DATABASE_URL picks PostgreSQL; the
 * advertised endpoints are what standbys tell the CLI and agents (stored with
 * the term). Default: the listen address, with a wildcard host replaced by
 * this machine's name.
 */
static void
advertise(struct env_errs *e, const char *name, const char *listen, char *out, size_t outsz)
{
    char host[256];
    const char *port;

    if (env_str(e, name, "", out, outsz) < 0 || out[0] != '\0')
        return;
    port = strrchr(listen, ':');
    if ((strncmp(listen, "tcp://0.0.0.0:", 14) == 0 || strncmp(listen, "tcp://*:", 8) == 0 ||
         strncmp(listen, "tcp://[::]:", 11) == 0) &&
        port != NULL && gethostname(host, sizeof(host)) == 0) {
        host[sizeof(host) - 1] = '\0';
        if (strfmt(out, outsz, "tcp://%s%s", host, port) < 0)
            env_err(e, "%s: the host name is too long", name);
    } else {
        snprintf(out, outsz, "%s", listen);
    }
}

static void
read_ha_config(struct env_errs *e, struct ctl_config *cfg)
{
    char why[512];

    if (env_str(e, "DROVER_DATABASE_URL", "", cfg->database_url, sizeof(cfg->database_url)) == 0 &&
        cfg->database_url[0] != '\0' &&
        ctl_store_pg_check_url(cfg->database_url, why, sizeof(why)) < 0)
        env_err(e, "DROVER_DATABASE_URL: %s (expected postgresql://USER@HOST:PORT/DB?...)", why);
    advertise(e, "DROVER_ADVERTISE_API", cfg->api_listen, cfg->advertise_api,
              sizeof(cfg->advertise_api));
    advertise(e, "DROVER_ADVERTISE_AGENT", cfg->agent_listen, cfg->advertise_agent,
              sizeof(cfg->advertise_agent));
}

/* A PEM file's text (malloc'd), or NULL with an error recorded. */
static char *
read_pem(struct env_errs *e, const char *var, const char *path)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = fopen(path, "r");

    if (f != NULL) {
        text = calloc(1, 65537);
        if (text != NULL)
            len = fread(text, 1, 65536, f);
        fclose(f);
    }
    if (text == NULL || len == 0 || len == 65536) {
        env_err(e, "%s: cannot read %s (a PEM file under 64 KiB)", var, path);
        free(text);
        return NULL;
    }
    return text;
}

static void
http_config(struct env_errs *e, struct ctl_config *cfg)
{
    char cert[4096], key[4096], host[256], tcp[270];
    uint16_t port;

    env_str_or_off(e, "DROVER_HTTP_LISTEN", "127.0.0.1:7480", cfg->http_listen,
                   sizeof(cfg->http_listen));
    snprintf(tcp, sizeof(tcp), "tcp://%s", cfg->http_listen);
    if (cfg->http_listen[0] != '\0' && env_parse_endpoint(tcp, host, sizeof(host), &port) < 0)
        env_err(e, "DROVER_HTTP_LISTEN: want HOST:PORT (or empty to disable), got '%s'",
                cfg->http_listen);
    env_str(e, "DROVER_HTTP_TLS_CERT", "", cert, sizeof(cert));
    env_str(e, "DROVER_HTTP_TLS_KEY", "", key, sizeof(key));
    if ((cert[0] == '\0') != (key[0] == '\0'))
        env_err(e, "DROVER_HTTP_TLS_CERT and DROVER_HTTP_TLS_KEY: set both or neither");
    else if (cert[0] != '\0') {
        cfg->http_tls_cert = read_pem(e, "DROVER_HTTP_TLS_CERT", cert);
        cfg->http_tls_key = read_pem(e, "DROVER_HTTP_TLS_KEY", key);
    }
}

static void
read_config(struct ctl_config *cfg)
{
    struct env_errs e;

    memset(&e, 0, sizeof(e));
    env_str(&e, "DROVER_DATA_DIR", "/var/lib/drover", cfg->data_dir, sizeof(cfg->data_dir));
    env_endpoint(&e, "DROVER_API_LISTEN", "tcp://127.0.0.1:7400", cfg->api_listen,
                 sizeof(cfg->api_listen), NULL);
    if (env_endpoint(&e, "DROVER_AGENT_LISTEN", "tcp://0.0.0.0:7401", cfg->agent_listen,
                     sizeof(cfg->agent_listen), NULL) == 0 &&
        env_endpoint_offset(cfg->agent_listen, 1, cfg->notify_listen, sizeof(cfg->notify_listen)) <
            0)
        env_err(&e, "DROVER_AGENT_LISTEN: the notify endpoint (port + 1) is not a valid port");
    if (cfg->agent_listen[0] != '\0' &&
        env_endpoint_offset(cfg->agent_listen, 2, cfg->logs_listen, sizeof(cfg->logs_listen)) < 0)
        env_err(&e, "DROVER_AGENT_LISTEN: the log endpoint (port + 2) is not a valid port");
    env_u64(&e, "DROVER_LOG_LINES", 1500, 10, 1000000, &cfg->log_lines);
    env_u64(&e, "DROVER_RUN_TIMEOUT_MS", 60000, 1000, 86400000, &cfg->run_timeout_ms);
    env_u64(&e, "DROVER_NODE_TIMEOUT_MS", 5000, 100, 86400000, &cfg->node_timeout_ms);
    env_u64(&e, "DROVER_HEARTBEAT_MS", 1000, 10, 3600000, &cfg->heartbeat_ms);
    if (e.n == 0 && cfg->heartbeat_ms >= cfg->node_timeout_ms)
        env_err(&e, "DROVER_HEARTBEAT_MS (%llu) must be below DROVER_NODE_TIMEOUT_MS (%llu)",
                (unsigned long long)cfg->heartbeat_ms, (unsigned long long)cfg->node_timeout_ms);
    env_u64(&e, "DROVER_BUSY_MS", 100, 0, 60000, &cfg->busy_ms);
    env_u64(&e, "DROVER_DRAIN_BUFFER", 10000, 10, 1000000, &cfg->drain_buffer);
    if (env_str(&e, "DROVER_DRAIN_CA_FILE", "", cfg->drain_ca_file, sizeof(cfg->drain_ca_file)) ==
            0 &&
        cfg->drain_ca_file[0] != '\0' && access(cfg->drain_ca_file, R_OK) != 0)
        env_err(&e, "DROVER_DRAIN_CA_FILE: cannot read %s: %s", cfg->drain_ca_file,
                strerror(errno));
    env_u64(&e, "DROVER_SLUGS_KEEP", 50, 1, 1000000, &cfg->slugs_keep);
    env_key(&e, "DROVER_CLUSTER_KEY", cfg->cluster_key);
    /* A key rotation: accepted from agents as well, never used to seal. */
    cfg->has_key_next = env_raw("DROVER_CLUSTER_KEY_NEXT") != NULL;
    if (cfg->has_key_next)
        env_key(&e, "DROVER_CLUSTER_KEY_NEXT", cfg->cluster_key_next);
    env_token(&e, "DROVER_API_TOKEN", true, cfg->api_token, sizeof(cfg->api_token));
    read_ha_config(&e, cfg);
    http_config(&e, cfg);
    env_check(&e);
}

static void
on_signal(uv_signal_t *sig, int signum)
{
    log_info("signal", "signal=%s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    notify_send("STOPPING=1");
    ctl_shutdown(sig->data, 0);
}

/*
 * PostgreSQL: an unreachable database is retried with backoff, saying why,
 * and nothing is served meanwhile (never from an empty state).
 */
static void
open_pg(struct ctl *ctl)
{
    uint64_t backoff = 200;
    unsigned attempt;
    int rc;

    for (attempt = 1;; attempt++) {
        rc = ctl_store_open_with(&ctl_store_pg_ops, ctl->cfg.database_url, &ctl->store);
        if (rc == 0)
            return;
        if (rc != -ENOTCONN) /* reached, but refused (schema, permissions) */
            log_fatal(1, "start_failed", "what=store backend=postgresql err=%d", rc);
        log_warn("store_unreachable", "backend=postgresql attempt=%u retry_ms=%llu", attempt,
                 (unsigned long long)backoff);
        usleep((useconds_t)(backoff * 1000)); /* before the loop runs: nothing to block */
        backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
    }
}

static void
open_state(struct ctl *ctl)
{
    int rc;

    rc = mkdir_p(ctl->cfg.data_dir, 0750);
    if (rc < 0)
        log_fatal(1, "start_failed", "what=data_dir path=%s err=%s", log_q(ctl->cfg.data_dir),
                  log_q(strerror(-rc)));
    if (ctl->cfg.database_url[0] != '\0') {
        open_pg(ctl);
    } else {
        rc = ctl_store_open_cfg(&ctl->cfg, &ctl->store);
        if (rc == -ENAMETOOLONG)
            log_fatal(ENV_EX_CONFIG, "start_failed", "what=store err=%s", log_q(strerror(-rc)));
        if (rc < 0)
            log_fatal(1, "start_failed", "what=store data_dir=%s err=%d", log_q(ctl->cfg.data_dir),
                      rc);
    }
    ctl->model = ctl_model_new();
    if (ctl->model == NULL)
        log_fatal(1, "start_failed", "what=model err=ENOMEM");
    rc = ctl_slugs_new(ctl, ctl->cfg.data_dir, &ctl->slugs);
    if (rc < 0)
        log_fatal(1, "start_failed", "what=slugs err=%s", log_q(strerror(-rc)));
    ctl->logs = ctl_logs_new(ctl, (size_t)ctl->cfg.log_lines);
    ctl->runs = ctl_runs_new(ctl);
    ctl->endpoints = ctl_endpoints_new(ctl);
    ctl->drains = ctl_drains_new(ctl, (size_t)ctl->cfg.drain_buffer, ctl->cfg.drain_ca_file);
    if (ctl->logs == NULL || ctl->runs == NULL || ctl->endpoints == NULL || ctl->drains == NULL)
        log_fatal(1, "start_failed", "what=logs err=ENOMEM");
    ctl->model->event = ctl_logs_text;
    ctl->model->event_arg = ctl->logs;
}

int
main(int argc, char **argv)
{
    static struct ctl ctl; /* handles inside must outlive uv_run */
    uv_loop_t loop;
    int rc;

    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        puts("drover-controller " DROVER_VERSION);
        return 0;
    }
    if (argc > 1) {
        bool help = strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0;

        fputs("usage: drover-controller [--version]\n"
              "Configured only by the environment: DROVER_CLUSTER_KEY and DROVER_API_TOKEN\n"
              "(required), DROVER_DATA_DIR, DROVER_API_LISTEN, DROVER_AGENT_LISTEN,\n"
              "DROVER_LOG_LINES, DROVER_RUN_TIMEOUT_MS, DROVER_NODE_TIMEOUT_MS,\n"
              "DROVER_HEARTBEAT_MS, DROVER_BUSY_MS, DROVER_CLUSTER_KEY_NEXT,\n"
              "DROVER_DATABASE_URL, DROVER_ADVERTISE_API, DROVER_ADVERTISE_AGENT,\n"
              "DROVER_HTTP_LISTEN, DROVER_HTTP_TLS_CERT, DROVER_HTTP_TLS_KEY (see\n"
              "drover-controller(8) and the README).\n",
              help ? stdout : stderr);
        return help ? 0 : 2;
    }
    log_init("controller");
    notify_init();
    /* A peer gone while an answer is written to it (libuv writes without
     * MSG_NOSIGNAL) is an EPIPE for that connection, never the end of the
     * controller. It execs nothing, so the disposition leaks nowhere. */
    signal(SIGPIPE, SIG_IGN);
    read_config(&ctl.cfg);
    if ((rc = uv_loop_init(&loop)) < 0)
        log_fatal(1, "start_failed", "what=loop err=%s", uv_strerror(rc));
    ctl.loop = &loop;
    if ((rc = ctl_keys_init(&ctl)) < 0)
        log_fatal(ENV_EX_CONFIG, "exit", "code=%d reason=%s", ENV_EX_CONFIG,
                  log_q("DROVER_API_TOKEN and DROVER_CLUSTER_KEY yield the same key"));
    if (strncmp(ctl.cfg.api_listen, "tcp://127.", 10) != 0 &&
        strncmp(ctl.cfg.api_listen, "tcp://localhost:", 16) != 0 &&
        strncmp(ctl.cfg.api_listen, "tcp://[::1]:", 12) != 0)
        log_warn("api_exposed", "api=%s reason=%s", ctl.cfg.api_listen,
                 log_q("the API listens beyond loopback: anyone who can reach it and holds the "
                       "token drives the cluster"));
    open_state(&ctl);
    /* Initialise every handle first: ctl_maybe_close() closes them all. */
    uv_timer_init(&loop, &ctl.node_timer);
    uv_check_init(&loop, &ctl.notify_check);
    uv_check_init(&loop, &ctl.close_check);
    ctl.close_check.data = &ctl;
    ctl.running = true;
    ctl_commits_init(&ctl);
    ctl_commits_start(&ctl);
    uv_signal_init(&loop, &ctl.sigterm);
    uv_signal_init(&loop, &ctl.sigint);
    ctl.sigterm.data = ctl.sigint.data = &ctl;
    if ((rc = ctl_front_start(&ctl)) < 0 || (rc = ctl_agents_start(&ctl)) < 0 ||
        (rc = ctl_logs_start(ctl.logs, &loop, ctl.cfg.logs_listen)) < 0 ||
        (rc = ctl_runs_start(ctl.runs, &loop)) < 0)
        log_fatal(1, "start_failed", "what=endpoints err=%d", rc);
    /* Not fatal: the controller serves its CLI and agents without it. */
    if ((rc = ctl_http_start(&ctl)) < 0)
        log_error("http_failed", "http=%s err=%s", ctl.cfg.http_listen, log_q(strerror(-rc)));
    if ((rc = ctl_store_start(ctl.store, &loop)) < 0)
        log_fatal(1, "start_failed", "what=checkpoints err=%s", uv_strerror(rc));
    uv_signal_start(&ctl.sigterm, on_signal, SIGTERM);
    uv_signal_start(&ctl.sigint, on_signal, SIGINT);
    if (ctl.cfg.database_url[0] == '\0') {
        if (ctl_take_lead(&ctl) < 0)
            log_fatal(1, "start_failed", "what=store_load");
    } else if ((rc = ctl_leader_start(&ctl, ctl.cfg.database_url, &ctl.leader)) < 0) {
        log_fatal(1, "start_failed", "what=leader err=%s", uv_strerror(rc));
    }
    log_info("ready",
             "api=%s agent=%s notify=%s logs=%s store=%s data_dir=%s apps=%zu nodes=%zu "
             "instances=%zu",
             ctl.cfg.api_listen, ctl.cfg.agent_listen, ctl.cfg.notify_listen, ctl.cfg.logs_listen,
             ctl_store_backend_name(ctl.store), log_q(ctl.cfg.data_dir),
             ctl_map_count(ctl.model->apps), ctl.model->nnodes, ctl_map_count(ctl.model->insts));
    /* Serving: tell systemd (Type=notify), and ping its watchdog from now. */
    notify_send("READY=1");
    if ((rc = notify_watchdog_start(&loop)) < 0)
        log_warn("watchdog", "err=%s", uv_strerror(rc));
    uv_run(&loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&loop);
    if (rc < 0)
        log_warn("loop_close", "err=%s", uv_strerror(rc));
    ctl_runs_free(ctl.runs);
    ctl_endpoints_free(ctl.endpoints);
    ctl.model->event = NULL;
    ctl_drains_free(ctl.drains);
    ctl.drains = NULL;
    ctl_logs_free(ctl.logs);
    ctl_slugs_free(ctl.slugs);
    ctl_store_close(ctl.store);
    ctl_leader_free(ctl.leader);
    ctl_model_free(ctl.model);
    log_info("stopped", "exit_code=%d", ctl.exit_code);
    return ctl.exit_code;
}
