/* SPDX-License-Identifier: MIT */
/*
 * verbs.c: the table of verbs, and every help and usage text.
 *
 * One table drives dispatch, `drover help`, `drover VERB --help` and the usage
 * lines printed on bad input, so they cannot drift apart. Help goes to stdout
 * (it was asked for); usage after a mistake goes to stderr.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "util.h"

static const struct cli_verb verbs[] = {
    {"apps", "[--json]", "list apps with their current release and formation",
     "  --json        machine output: [{name, release, formation, created}]\n", cli_cmd_apps},
    {"apps:create", "APP", "create an app (name: [a-z][a-z0-9-]{0,29})", NULL, cli_cmd_apps_create},
    {"apps:destroy", "APP --confirm APP [--no-wait] [--timeout SECONDS] [--json]",
     "stop everything of an app and delete its releases, config, formation and slugs",
     "  --confirm APP        required (the app's name again); without it, and with no\n"
     "                       terminal to ask on, nothing changes (exit 2)\n"
     "  --no-wait            return once the processes are being stopped\n"
     "  --timeout SECONDS    how long to wait for the app to be gone (default 120)\n"
     "  --json               {app, instances, releases, destroyed}\n"
     "  Every process and one-off is stopped; slugs no other app uses are deleted on\n"
     "  the controller, and the agents delete its unpacked releases and cached slugs.\n"
     "  The name can then be created again, as a new app.\n",
     cli_cmd_apps_destroy},
    {"config", "APP [--json]", "show an app's config vars",
     "  --json        machine output: {\"KEY\": \"value\", ...}\n", cli_cmd_config},
    {"config:set", "APP K=V... [--env-file FILE]",
     "set config vars (makes a new release once the app has one)",
     "  K=V           KEY matches [A-Za-z_][A-Za-z0-9_]*; VALUE is everything after\n"
     "                the first '=' and may be empty or hold more '='\n"
     "  --env-file FILE   every variable of a .env file, in the same release, read\n"
     "                exactly as the npm dotenv package reads it (export, quotes,\n"
     "                \\n in double quotes, comments, multi-line values); K=V given\n"
     "                too wins. A line that is not a variable is an error naming it,\n"
     "                and nothing changes.\n"
     "  PORT, DYNO, PS and DROVER_* are drover's to set for each process: refused.\n"
     "  The new release rolls out as a deploy does, but config:set does not wait for\n"
     "  it: 'drover ps APP' shows progress, 'drover releases APP' the outcome.\n",
     cli_cmd_config_set},
    {"config:unset", "APP K...", "remove config vars (makes a new release once the app has one)",
     "  A K that is not set is refused (exit 1) and nothing changes, whatever the\n"
     "  other keys given.\n",
     cli_cmd_config_unset},
    {"config:get", "APP KEY", "print one config var's value (exit 1 when it is not set)", NULL,
     cli_cmd_config_get},
    {"deploy", "APP DIR [-m TEXT] [--create] [--no-wait] [--timeout SECONDS]",
     "pack DIR (with its Procfile), upload it, release it and wait for the rollout",
     "  -m, --message TEXT   release description (default \"Deploy <sha12>\")\n"
     "  --create             create APP first when it does not exist (without it, a\n"
     "                       missing APP is refused before anything is uploaded)\n"
     "  --no-wait            return once the release is made\n"
     "  --timeout SECONDS    how long to wait for the rollout (default 300); the\n"
     "                       deploy goes on without us after that\n"
     "  DIR must contain a regular file named Procfile that parses, and no link\n"
     "  pointing outside DIR; both are checked before anything is uploaded. Every\n"
     "  .env and .git, and what DIR/.slugignore names (Heroku's syntax), are left\n"
     "  out of the slug, and deploy lists them. A release: line in the Procfile\n"
     "  runs once before the release starts (\"Running release phase (release.N)\n"
     "  ...\"); if it fails, so does the deploy. The controller rolls the release\n"
     "  out type by\n"
     "  type (see 'drover settings'); a line per type shows progress as it changes,\n"
     "  like \"web 2/4 on v7 (1 starting, 1 old)\". Exit 0 once the deploy succeeded;\n"
     "  1 when it failed (the controller put the last good release back), when a\n"
     "  newer release superseded it, or when --timeout ran out.\n",
     cli_cmd_deploy},
    {"releases", "APP [--json]", "list an app's releases, newest first, and how each rollout went",
     "  STATUS is deploying, succeeded, failed or superseded; a failed release's\n"
     "  reason follows its description; * marks the current release.\n"
     "  --json        machine output: [{version, description, created, status,\n"
     "                reason, current, slug}]\n",
     cli_cmd_releases},
    {"rollback", "APP [vN|N] [--no-wait] [--timeout SECONDS]",
     "go back to an earlier release (as a new one) and wait for the rollout",
     "  vN            the release to go back to (default: the newest succeeded\n"
     "                release before the current one)\n"
     "  --no-wait     return once the release is made\n"
     "  --timeout SECONDS    how long to wait for the rollout (default 300)\n"
     "  The rollback is a new release, \"Rollback to vN\", rolled out as deploy does.\n"
     "  The controller keeps the slugs of each app's last DROVER_SLUGS_KEEP releases\n"
     "  (default 50): a rollback to an older one says its slug is gone.\n",
     cli_cmd_rollback},
    {"settings", "APP [--json]",
     "show each process type's health check, timeouts and rollout settings",
     "  --json        machine output: [{type, quantity, health, boot_timeout_ms,\n"
     "                grace_ms, max_surge, max_unavailable, min_healthy_ms,\n"
     "                deploy_timeout_ms, shutdown_delay_ms, memory_bytes, cpu_milli,\n"
     "                pids, nofile}] (a limit of 0 is none)\n",
     cli_cmd_settings},
    {"settings:set", "APP TYPE KEY=VALUE... [--json]", "change a process type's settings",
     "  health=tcp|none|http:/PATH     how an instance is found healthy\n"
     "  boot_timeout=DURATION          time to become healthy, else a crash\n"
     "  grace=DURATION                 SIGTERM to SIGKILL\n"
     "  max_surge=N|P%                 extra instances during a deploy\n"
     "  max_unavailable=N|P%           missing instances during a deploy\n"
     "  min_healthy=DURATION           healthy this long before an instance is up\n"
     "  deploy_timeout=DURATION        a deploy of this type fails after this long\n"
     "  shutdown_delay=DURATION        off the endpoint list this long before SIGTERM\n"
     "  release_timeout=DURATION       type release only: how long the release phase\n"
     "                                 may run before its release fails (default 1h)\n"
     "  memory=SIZE|none               hard memory limit (4M..1T: 512M, 1G); over it the\n"
     "                                 instance is killed (oom) and restarted\n"
     "  cpu=CORES|none                 CPU quota in cores (0.01..1024: 0.5, 2)\n"
     "  pids=N|none                    the most tasks (8..4194304)\n"
     "  nofile=N|none                  the open file descriptor limit (16..1048576)\n"
     "  DURATION is 500ms, 30s, 2m or plain seconds; N|P% a count or a percentage of\n"
     "  the quantity. The controller checks every setting before changing any.\n"
     "  --json         print the type's settings as settings --json does\n",
     cli_cmd_settings_set},
    {"scale", "APP TYPE=N [TYPE=N...]", "set how many processes of each type run",
     "  TYPE=N        N is a decimal from 0 to 100000; TYPE is written as in the\n"
     "                Procfile (letters, digits, '-', '_'; case matters: Web is not web)\n",
     cli_cmd_scale},
    {"ps", "APP [--json] [--watch]", "list an app's processes: state, node, port, release, usage",
     "  Each type's heading has its quantity: \"=== web (2): CMD\", or \"=== web\n"
     "  (1 wanted, 2 running: deploy in progress): CMD\" while they differ.\n"
     "  --json        machine output: [{name, type, state, node, host, port, release,\n"
     "                restarts, pid, exit_code, exit_signal, since, reason, command,\n"
     "                memory_bytes, cpu_percent}]\n"
     "  -w, --watch   refresh every 2 s (in place on a terminal) until Ctrl-C\n"
     "  mem= and cpu= are the instance's cgroup counters: memory (RSS + cache)\n"
     "  and CPU over the last 5 s in percent of one core.\n",
     cli_cmd_ps},
    {"restart", "APP [TYPE|INSTANCE] [--no-wait] [--timeout SECONDS] [--json]",
     "restart an app's processes (alias ps:restart); no new release",
     "  INSTANCE      one instance (web.2): stopped as usual (shutdown delay, SIGTERM,\n"
     "                grace) and started again at once\n"
     "  TYPE          every instance of TYPE; no argument: every type. Rolled exactly\n"
     "                like a deploy (max_surge, max_unavailable): never fewer than the\n"
     "                quantity up with the default settings\n"
     "  --no-wait     return once the restart has begun\n"
     "  --timeout SECONDS    how long to wait (default 300)\n"
     "  --json        {app, release, instances, state} instead of progress lines\n"
     "  Exit 1, with the reason, when an instance does not come back up.\n",
     cli_cmd_restart},
    {"ps:restart", "APP [TYPE|INSTANCE] [--no-wait] [--timeout SECONDS] [--json]",
     "the same as restart", NULL, cli_cmd_restart},
    {"ps:stop", "APP INSTANCE [--json]",
     "stop one process: a one-off for good; a formation one "
     "is started again",
     "  A one-off (run.N) gets SIGTERM, then SIGKILL after its grace period, and is not\n"
     "  restarted. A formation instance (web.2) is stopped the same way and, as on\n"
     "  Heroku, started again: scale the type down to run fewer.\n"
     "  --json        {app, name, restarted}\n",
     cli_cmd_ps_stop},
    {"run", "APP [--node NODE] [--type TYPE] [--detach] -- CMD [ARG...]",
     "run a one-off process (run.N) in the app's current release",
     "  --node NODE   run it on NODE (default: a node with room, spread)\n"
     "  --type TYPE   take TYPE's settings (grace period); with no CMD, its command\n"
     "  -d, --detach  print the instance name and return; its output goes to the logs\n"
     "  One CMD argument is a shell command line as it is ('echo $PORT'); several are\n"
     "  quoted for /bin/sh. stdin, stdout and stderr are relayed; with a terminal on\n"
     "  stdin the process gets a pseudo-terminal. Exit status: the process's own, or\n"
     "  128+N when signal N killed it. Ctrl-C reaches the process as SIGINT;\n"
     "  SIGTERM or SIGHUP to drover stops the process, waits for its end (at most\n"
     "  its grace period + 2 s) and says how (exit 128+N); if\n"
     "  drover goes away, the process is stopped. Shell builtins work as commands\n"
     "  ('exit 4', 'cd /tmp && ls', 'ulimit -n', '. ./script').\n",
     cli_cmd_run},
    {"logs", "APP [-n N] [--tail] [--source SRC | --type TYPE] [--json]",
     "show an app's log: its processes' output and drover's events",
     "  -n, --num N      the last N lines (default 100)\n"
     "  -t, --tail       then follow new lines until interrupted\n"
     "  -s, --source SRC only one instance (web.1), or drover's own events (drover)\n"
     "  --type TYPE      only instances of TYPE (web)\n"
     "  --json           one JSON object per line: ts, app, source, node, text, seq\n",
     cli_cmd_logs},
    {"drains", "APP [--json]", "list an app's log drains with their state and counters",
     "  Each drain: id, URL, state (connected, retrying: REASON, failing: REASON),\n"
     "  lines sent, buffered and dropped, and the last error.\n"
     "  --json        machine output: [{id, url, state, sent, buffered, dropped,\n"
     "                last_error, last_error_at, created}]\n",
     cli_cmd_drains},
    {"drains:add", "APP URL", "send an app's log stream (lines and drover's events) to URL",
     "  syslog://HOST:PORT       RFC 5424 over TCP, octet-counted\n"
     "  syslog+tls://HOST:PORT   the same over TLS (server certificate verified against\n"
     "                           the system's CAs and DROVER_DRAIN_CA_FILE on the controller)\n"
     "  https://HOST[:PORT]/PATH batched POSTs as Logplex sends them (application/logplex-1)\n"
     "  http://...               the same in plain text, loopback hosts only\n"
     "  Takes effect at once (no new release) and survives controller restarts. Each\n"
     "  drain buffers DROVER_DRAIN_BUFFER lines while its destination is down; when\n"
     "  full it drops the oldest and says so: \"drover: N lines dropped (drain buffer\n"
     "  full)\".\n",
     cli_cmd_drains_add},
    {"drains:remove", "APP URL|ID", "stop sending an app's log stream to a drain", NULL,
     cli_cmd_drains_remove},
    {"endpoints", "APP [TYPE] [--json] [--watch]",
     "where an app's up instances listen, for a router to follow",
     "  TYPE          only TYPE's instances, printed as bare host:port lines\n"
     "                (no TYPE: \"NAME host:port\" lines, like \"web.1 10.0.0.5:5000\");\n"
     "                a TYPE the app does not have is an error (exit 1)\n"
     "  --json        one line: {app, version, endpoints: [{id, name, type, host,\n"
     "                port, release}]}; version is below 2^53\n"
     "  -w, --watch   print the list, then the whole list again at every change, until\n"
     "                SIGINT or SIGTERM (exit 0); each list ends with an empty line\n"
     "                (with --json: one line per list). Exit 1 when the controller\n"
     "                stops answering for DROVER_TIMEOUT_MS.\n",
     cli_cmd_endpoints},
    {"nodes", "[--json]", "list the cluster's nodes",
     "  --json        machine output: [{name, address, state, instances, capacity,\n"
     "                port_min, port_max, last_seen, draining, evicting, lost, leaving}]\n",
     cli_cmd_nodes},
    {"nodes:cordon", "NODE", "stop placing new instances on NODE (what runs there stays)", NULL,
     cli_cmd_nodes_cordon},
    {"nodes:uncordon", "NODE", "let NODE take new instances again (also cancels a drain)", NULL,
     cli_cmd_nodes_uncordon},
    {"nodes:remove", "NODE [--json]", "forget a down node (refused for a live one)",
     "  Its lost instances are replaced elsewhere already; an agent that later comes\n"
     "  back with that name registers as a new node.\n"
     "  --json        {node, removed}\n",
     cli_cmd_nodes_remove},
    {"nodes:drain", "NODE [--timeout SECONDS] [--no-wait]",
     "move every instance off NODE, each once its replacement is up elsewhere",
     "  --timeout SECONDS    how long to wait for NODE to be empty (default 300);\n"
     "                       the node stays draining either way\n"
     "  --no-wait            return once the drain has begun\n"
     "  Progress is printed as it changes; a replacement that has nowhere to go\n"
     "  keeps its original running, and is shown as waiting for a place.\n",
     cli_cmd_nodes_drain},
    {"status", "[--json]",
     "the cluster on one screen: nodes, apps, desired vs up, what needs attention",
     "  --json        machine output: {nodes: [as nodes --json], apps: [{name, release,\n"
     "                types: [{type, desired, up, starting, pending, crashed, lost,\n"
     "                draining, evicting}], attention: [{name, type, state, node, port,\n"
     "                release, reason}]}], warnings: [text]}\n"
     "  A \"Controller:\" line comes first when the controller is not well: its\n"
     "  store refuses writes (a full disk), or most nodes went silent at once.\n",
     cli_cmd_status},
    {"dashboard", "[--no-open]",
     "print a one-time sign-in link to the web dashboard (and open it on a desktop)",
     "  The link is http://HOST:7480/login?code=... (HOST from DROVER_CONTROLLER, or\n"
     "  DROVER_DASHBOARD_URL): valid once, for 60 seconds; it signs the browser in\n"
     "  with a session cookie. The code is signed with DROVER_API_TOKEN, which never\n"
     "  appears in a URL. With DISPLAY or WAYLAND_DISPLAY set it is opened with\n"
     "  xdg-open, unless --no-open.\n",
     cli_cmd_dashboard},
};

static const char environment[] =
    "Environment:\n"
    "  DROVER_CONTROLLER   the controller's API endpoint (default tcp://127.0.0.1:7400);\n"
    "                      several controllers: a comma-separated list, the leader is followed\n"
    "  DROVER_TIMEOUT_MS   how long to wait for each reply, in ms (default 10000)\n"
    "  DROVER_API_TOKEN    the controller's API token (required: without it every request\n"
    "                      is refused); requests are sealed with a key derived from it\n"
    "  DROVER_DASHBOARD_URL  the controller's HTTP address for `drover dashboard`\n"
    "                      (default http://HOST:7480, HOST from DROVER_CONTROLLER)\n";

static const char exit_statuses[] =
    "Exit status: 0 success, 1 failure (the reason is printed on stderr), 2 bad usage.\n";

const struct cli_verb *
cli_verb_find(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
        if (strcmp(verbs[i].name, name) == 0)
            return &verbs[i];
    return NULL;
}

/*
 * Optimal string alignment distance (Levenshtein plus the transposition of
 * two neighbours, the commonest typo: "scael"). Words longer than 63
 * characters count as far from everything.
 */
unsigned
cli_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned d[64][64];

    if (la >= 64 || lb >= 64)
        return UINT32_MAX;
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (unsigned)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            unsigned cost = a[i - 1] == b[j - 1] ? 0 : 1, v = d[i - 1][j - 1] + cost;

            if (d[i - 1][j] + 1 < v)
                v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[la][lb];
}

/*
 * The verb nearest to name, when it is near enough to be a typo: at most 2
 * edits, and fewer than half the word (so "ls" suggests nothing, not "ps").
 * Ties go to the earlier verb in the table. "help" is a verb too.
 */
const char *
cli_verb_suggest(const char *name)
{
    const char *best = NULL;
    unsigned bestd = UINT32_MAX;
    size_t len = strlen(name);

    for (size_t i = 0; i <= ARRAY_SIZE(verbs); i++) {
        const char *v = i < ARRAY_SIZE(verbs) ? verbs[i].name : "help";
        unsigned d = cli_edit_distance(name, v);

        if (d < bestd) {
            bestd = d;
            best = v;
        }
    }
    if (best == NULL || bestd == 0 || bestd > 2 || 2 * (size_t)bestd >= len)
        return NULL;
    return best;
}

int
cli_unknown_verb(const char *name)
{
    const char *near = cli_verb_suggest(name);

    if (near != NULL)
        return cli_usage(NULL, "unknown verb '%s': did you mean '%s'?", name, near);
    return cli_usage(NULL, "unknown verb '%s'", name);
}

void
cli_help(FILE *out)
{
    fprintf(out,
            "Usage: drover VERB [ARGS]\n\n"
            "drover drives a drover cluster: apps, config, deploys, scaling, processes, nodes.\n\n"
            "Verbs:\n");
    for (size_t i = 0; i < ARRAY_SIZE(verbs); i++) {
        char head[96];

        snprintf(head, sizeof(head), "%s %s", verbs[i].name, verbs[i].synopsis);
        fprintf(out, "  %s\n      %s\n", head, verbs[i].summary);
    }
    fprintf(out, "  help [VERB]\n      this text, or one verb's (also: drover VERB --help)\n");
    fprintf(out, "  --version\n      drover's version\n\n");
    fprintf(out, "Flags:\n");
    for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
        if (verbs[i].details != NULL)
            fprintf(out, " %s:\n%s", verbs[i].name, verbs[i].details);
    fprintf(out, " every verb:\n  -h, --help    show the verb's help\n\n%s\n%s", environment,
            exit_statuses);
}

void
cli_verb_help(FILE *out, const struct cli_verb *v)
{
    fprintf(out, "Usage: drover %s %s\n\n%s\n", v->name, v->synopsis, v->summary);
    if (v->details != NULL)
        fprintf(out, "\n%s", v->details);
    fprintf(out, "\n%s\n%s", environment, exit_statuses);
}

int
cli_usage(const char *verb, const char *fmt, ...)
{
    const struct cli_verb *v = verb != NULL ? cli_verb_find(verb) : NULL;
    va_list ap;

    if (fmt != NULL) {
        fputs("drover: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
    if (v != NULL)
        fprintf(stderr, "Usage: drover %s %s\nSee 'drover %s --help'.\n", v->name, v->synopsis,
                v->name);
    else
        fprintf(stderr, "Usage: drover VERB [ARGS]\nSee 'drover help' for the verbs.\n");
    return CLI_USAGE;
}

int
cli_fail(const char *fmt, ...)
{
    va_list ap;

    fputs("drover: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return CLI_FAIL;
}
