/* SPDX-License-Identifier: MIT */
/*
 * config.c: the agent's DROVER_* variables, read once at start through
 * common/env.h. Every error is collected and reported together; then the
 * agent exits 78 (EX_CONFIG) before it has touched anything.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "agt.h"
#include "env.h"
#include "util.h"

static void
load_node(struct env_errs *e, struct agt_config *cfg)
{
    char host[256] = "";

    if (gethostname(host, sizeof host - 1) < 0)
        strcpy(host, "localhost");
    if (env_str(e, "DROVER_NODE_NAME", host, cfg->node, sizeof cfg->node) < 0)
        return;
    if (!name_node_valid(cfg->node))
        env_err(e,
                "DROVER_NODE_NAME: '%s' is not a valid node name "
                "([A-Za-z0-9][A-Za-z0-9._-]{0,62}); set it explicitly",
                cfg->node);
}

static void
load_advertise(struct env_errs *e, struct agt_config *cfg)
{
    unsigned char buf[16];

    if (env_str(e, "DROVER_ADVERTISE", "127.0.0.1", cfg->advertise, sizeof cfg->advertise) < 0)
        return;
    /* Health checks connect here without a (blocking) name lookup. */
    if (uv_inet_pton(AF_INET, cfg->advertise, buf) < 0 &&
        uv_inet_pton(AF_INET6, cfg->advertise, buf) < 0)
        env_err(e, "DROVER_ADVERTISE: '%s' is not an IPv4 or IPv6 address", cfg->advertise);
}

void
agt_config_load(struct agt_config *cfg)
{
    struct env_errs e = {0};
    uint64_t v;

    memset(cfg, 0, sizeof *cfg);
    if (env_endpoint(&e, "DROVER_JOIN", "tcp://127.0.0.1:7401", cfg->join, sizeof cfg->join,
                     NULL) == 0 &&
        env_endpoint_offset(cfg->join, 1, cfg->notify, sizeof cfg->notify) < 0)
        env_err(&e, "DROVER_JOIN: no notify endpoint at port + 1 of '%s'", cfg->join);
    if (cfg->join[0] && env_endpoint_offset(cfg->join, 2, cfg->logs, sizeof cfg->logs) < 0)
        env_err(&e, "DROVER_JOIN: no log endpoint at port + 2 of '%s'", cfg->join);
    load_node(&e, cfg);
    load_advertise(&e, cfg);
    env_port_range(&e, "DROVER_PORT_RANGE", 5000, 5999, &cfg->port_min, &cfg->port_max);
    if (env_u64(&e, "DROVER_CAPACITY", 256, 1, 100000, &v) == 0)
        cfg->capacity = (uint32_t)v;
    env_str(&e, "DROVER_DATA_DIR", "/var/lib/drover-agent", cfg->data_dir, sizeof cfg->data_dir);
    if (cfg->data_dir[0] && cfg->data_dir[0] != '/')
        env_err(&e, "DROVER_DATA_DIR: '%s' must be an absolute path", cfg->data_dir);
    if (env_u64(&e, "DROVER_HEARTBEAT_MS", 1000, 50, 600000, &v) == 0)
        cfg->heartbeat_ms = (uint32_t)v;
    env_reserved(&e, "DROVER_CLUSTER_KEY");
    env_reserved(&e, "DROVER_API_TOKEN");
    env_check(&e);
}
