#!/bin/sh
# SPDX-License-Identifier: MIT
#
# mkman.sh PAGE OUT.gz DROVER_BIN README VERSION: write one man page, gzipped.
#   PAGE is drover.1, drover-controller.8 or drover-agent.8.
# Run at build time (CMake), from the sources that already hold the facts, so
# that the pages cannot drift from them: drover.1's verbs, their flags, its
# environment and exit statuses are the CLI's own `drover help` and
# `drover VERB --help` (cli/verbs.c's table: a new verb appears here without
# an edit); the daemons' variables are the README's Configuration table.
set -eu
page=$1 out=$2 bin=$3 readme=$4 version=$5
date=$(date -u -d "@${SOURCE_DATE_EPOCH:-$(stat -c %Y "$readme")}" +%Y-%m-%d)

# Plain text into troff: backslashes escaped, no line may start a request.
esc() { sed -e 's/\\/\\e/g' -e "s/^\([.']\)/\\\\\&\1/" -e 's/-/\\-/g'; }

# The README's Configuration rows for one program: VAR<TAB>DEFAULT<TAB>MEANING.
readme_vars() {
    awk -v want="$1" -F' [|] ' '
        /^## Configuration/ { in_conf = 1; next }
        /^## / { in_conf = 0 }
        in_conf && /^\| / && !/^\| program/ && !/^\| ---/ {
            prog = $1; sub(/^\| */, "", prog)
            if (prog != "") { cur = prog; gsub(/`/, "", cur) }
            if (cur != want) next
            var = $2; dflt = $3; mean = $4
            sub(/ *\|$/, "", mean)
            gsub(/`/, "", var); gsub(/`/, "", dflt); gsub(/`/, "", mean)
            print var "\t" dflt "\t" mean
        }' "$readme"
}

env_section() {
    echo ".SH ENVIRONMENT"
    echo "Read once at start; every bad value is reported before the program exits 78."
    readme_vars "$1" | while IFS="$(printf '\t')" read -r var dflt mean; do
        printf '.TP\n.B %s\n' "$var"
        printf '%s (default: %s)\n' "$mean" "$dflt" | esc
    done
    cat <<'EOT'
.TP
.BR NOTIFY_SOCKET ", " WATCHDOG_USEC ", " WATCHDOG_PID
set by systemd for a Type=notify unit: the daemon sends READY=1 once it
serves, STOPPING=1 when it begins to stop, and, when WatchdogSec= is set,
WATCHDOG=1 from its event loop every half interval.
EOT
}

cli_page() {
    cat <<EOT
.TH DROVER 1 "$date" "drover $version" "drover manual"
.SH NAME
drover \\- drive a drover cluster: apps, config, deploys, scaling, processes, nodes
.SH SYNOPSIS
.B drover
.I VERB
.RI [ ARGS ]
.br
.B drover help
.RI [ VERB ]
.br
.B drover
.I VERB
.B \\-\\-help
.br
.B drover \\-\\-version
.SH DESCRIPTION
.B drover
talks to a drover controller's API (\\fBDROVER_CONTROLLER\\fR) with the API
token in \\fBDROVER_API_TOKEN\\fR. Each verb below is one request or a short
sequence of them; machine output (\\fB\\-\\-json\\fR) is available where noted.
.SH VERBS
EOT
    "$bin" help | awk '/^Verbs:/ { v = 1; next } /^$/ { v = 0 } v && /^  [a-z]/ { print $1 }' |
        while read -r verb; do
            [ "$verb" = help ] && continue
            "$bin" "$verb" --help >"$out.verb" || true
            printf '.SS "drover %s"\n' "$verb"
            printf '.B drover %s\n' "$verb"
            sed -n '1s/^Usage: drover [^ ]* *//p' "$out.verb" | esc
            echo ".PP"
            # The summary and the flags: from line 3 up to the environment.
            echo ".nf"
            sed -n '3,/^Environment:/p' "$out.verb" | sed '/^Environment:/d' |
                sed -e '/./,$!d' | esc
            echo ".fi"
        done
    rm -f "$out.verb"
    echo ".SH ENVIRONMENT"
    echo ".nf"
    "$bin" help | sed -n '/^Environment:/,/^$/p' | sed '1d;/^$/d' | esc
    echo ".fi"
    echo ".SH EXIT STATUS"
    "$bin" help | sed -n '/^Exit status:/,$p' | esc
    echo ".PP"
    printf "%s\n" "\\fBdrover run\\fR exits with the one-off process's own status (128+N when signal N killed it)."
    cat <<'EOT'
.SH SEE ALSO
.BR drover-controller (8),
.BR drover-agent (8),
/usr/share/doc/drover/README.md
EOT
}

daemon_page() {
    name=$1
    upper=$(echo "$name" | tr a-z- A-Z-)
    cat <<EOT
.TH $upper 8 "$date" "drover $version" "drover manual"
.SH NAME
EOT
    if [ "$name" = drover-controller ]; then
        cat <<'EOT'
drover-controller \- the drover cluster's controller: state, scheduling, API
.SH SYNOPSIS
.B drover-controller
.RB [ \-\-version ]
.SH DESCRIPTION
Holds every app's releases, config and formation in SQLite under
\fBDROVER_DATA_DIR\fR, places instances on the nodes whose agents joined it,
answers the CLI on \fBDROVER_API_LISTEN\fR and the agents on
\fBDROVER_AGENT_LISTEN\fR (and the two ports after it). Every message to and
from an agent is sealed with the cluster key. Packaged, it runs as the
\fBdrover\fR user from \fBdrover-controller.service\fR with its environment
in \fI/etc/drover/controller.env\fR.
EOT
    else
        cat <<'EOT'
drover-agent \- the drover node agent: runs and supervises a node's processes
.SH SYNOPSIS
.B drover-agent
.RB [ \-\-version ]
.SH DESCRIPTION
Joins the controller at \fBDROVER_JOIN\fR, pulls the instances assigned to
its node, fetches and unpacks their releases under \fBDROVER_DATA_DIR\fR,
starts each in its own session with its port and config (as
\fBDROVER_RUN_AS\fR when run as root), checks their health, restarts crashed
ones with backoff, relays one-off processes' terminals and ships every output
line to the controller. Packaged, it runs as root (it starts processes as
another user) from \fBdrover-agent.service\fR with its environment in
\fI/etc/drover/agent.env\fR.
EOT
    fi
    cat <<'EOT'
.PP
It logs one logfmt event per line on stdout, prints event=ready once it
serves, never daemonizes and writes no PID file.
.SH OPTIONS
.TP
.B \-\-version
print the version and exit 0.
.SH SIGNALS
.TP
.BR SIGTERM ", " SIGINT
EOT
    if [ "$name" = drover-controller ]; then
        echo "stop taking requests, let work in flight finish, close, exit 0."
    else
        cat <<'EOT'
leave the cluster: tell the controller, wait while its instances are replaced
elsewhere (at most DROVER_LEAVE_TIMEOUT_MS), then drain what remains (SIGTERM
to each process group, SIGKILL after its grace period) and exit 0. A second
signal drains at once.
EOT
    fi
    env_section "$name"
    cat <<'EOT'
.SH EXIT STATUS
.TP
.B 0
stopped on a signal, cleanly.
.TP
.B 1
could not start (data directory, store, endpoints), or, for the agent, the
controller refused it (a node name held by another live agent).
.TP
.B 2
bad usage (an unknown argument).
.TP
.B 78
bad configuration: one config_error event per bad variable, then exit.
.SH FILES
EOT
    if [ "$name" = drover-controller ]; then
        cat <<'EOT'
.TP
.I /etc/drover/controller.env
the unit's environment (mode 0600): DROVER_CLUSTER_KEY, DROVER_API_TOKEN, ...
.TP
.I /var/lib/drover
drover.db (SQLite) and slugs/.
EOT
    else
        cat <<'EOT'
.TP
.I /etc/drover/agent.env
the unit's environment (mode 0600): DROVER_CLUSTER_KEY, DROVER_JOIN, ...
.TP
.I /var/lib/drover-agent
slugs/, releases/, run/ (the process groups it runs) and boot_id.
EOT
    fi
    cat <<'EOT'
.SH SEE ALSO
.BR drover (1),
.BR systemctl (1),
/usr/share/doc/drover/README.md
EOT
}

case $page in
drover.1) cli_page ;;
drover-controller.8) daemon_page drover-controller ;;
drover-agent.8) daemon_page drover-agent ;;
*)
    echo "mkman.sh: unknown page $page" >&2
    exit 2
    ;;
esac >"$out.tmp"
gzip -9n <"$out.tmp" >"$out"
rm -f "$out.tmp"
