#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The README's quick start on a machine that never ran the tests: a fresh
# minimal Debian 12 root (tests/system/rootfs.sh), this checkout copied to
# /root/drover as a newcomer's clone is, and ./deploy/local-cluster run there
# as root. It must install what it needs, build, and bring the cluster up:
# every web answers, a one-off runs without and with a terminal, SIGTERM
# stops everything. Then the script's own promises (issue 11 item 9): piped
# to tee and started in the background (SIGINT ignored on entry), SIGINT to
# it and to tee stops everything; an agent restarted by hand from the files
# the script wrote rejoins; a script killed with SIGKILL leaves a cluster
# that the next start refuses, saying how to stop it, and --stop stops.
#
# Exit 0 passed, 1 failed, 77 skipped (the reason on the last line).
# The cluster uses controller ports 7640-7643 and app ports 9800-9979 of the
# host's network namespace (the root shares it, so apt can reach the mirror).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
SRC=$PWD
source tests/system/rootfs.sh

if ! why=$(rootfs_check); then
    echo "skipped: $why"
    exit 77
fi
rootfs_sweep
ROOT=$(mktemp -d "${TMPDIR:-/tmp}/drover-quickstart.XXXXXX")
cleanup() {
    # Whatever is still running inside the root dies with it.
    local p
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/root" 2>/dev/null)" = "$ROOT" ] && kill -KILL "${p#/proc/}" 2>/dev/null
    done
    sleep 0.2
    rootfs_remove "$ROOT"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    exit 1
}
# A failure that does not stop the rest from being checked: reported, and
# the test fails at its end.
FAILED=()
fail_later() {
    echo "FAIL: $*"
    FAILED+=("$*")
}

echo "making the root in $ROOT"
rootfs_make "$ROOT" || fail "could not make the root"
mkdir -p "$ROOT/root/drover"
# The checkout as a clone has it (tracked and new files, no build output).
git -C "$SRC" ls-files -z --cached --others --exclude-standard |
    tar -C "$SRC" --null -T - -cf - | tar -C "$ROOT/root/drover" -xf - || fail "could not copy the checkout"
chmod 700 "$ROOT/root"

# in_root CMD: a bash command line inside the root, in the clone.
in_root() { rootfs_run "$ROOT" bash -c "cd /root/drover && $1"; }

# Processes running inside the root whose command line matches $1.
in_root_pids() {
    local p out=()
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/root" 2>/dev/null)" = "$ROOT" ] || continue
        tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qE "$1" && out+=("${p#/proc/}")
    done
    echo "${out[*]}"
}

# The local-cluster script running inside the root (its pid: setsid may
# fork, so $! would not be it).
script_pid() { in_root_pids '^bash \./deploy/local-cluster' | cut -d' ' -f1; }

# wait_for SECONDS FILE TEXT: until FILE holds TEXT; gives up early when no
# local-cluster script runs any more.
wait_for() {
    local i
    for ((i = 0; i < $1; i++)); do
        grep -q "$3" "$2" 2>/dev/null && return 0
        if [ "$i" -gt 5 ] && [ -z "$(script_pid)" ]; then
            grep -q "$3" "$2" 2>/dev/null
            return
        fi
        sleep 1
    done
    return 1
}

# wait_stopped SECONDS: until no drover daemon, app or script runs inside.
wait_stopped() {
    local i
    for ((i = 0; i < $1; i++)); do
        [ -z "$(in_root_pids 'drover-|web\.py|worker\.sh|local-cluster')" ] && return 0
        sleep 1
    done
    echo "still running inside the root:"
    for p in $(in_root_pids 'drover-|web\.py|worker\.sh|local-cluster'); do
        echo "  $p $(tr '\0' ' ' <"/proc/$p/cmdline")"
    done
    return 1
}

ENV="DROVER_LOCAL_PORT=7640 DROVER_LOCAL_APP_PORTS=9800-9979"
LOG=$ROOT/root/quickstart.log

echo "== 1. ./deploy/local-cluster in a fresh root (installs, builds, starts)"
start=$(date +%s)
in_root "$ENV setsid ./deploy/local-cluster >/root/quickstart.log 2>&1 &"
wait_for 1200 "$LOG" 'The cluster is running' || {
    tail -40 "$LOG"
    fail "the quick start did not bring the cluster up"
}
echo "cluster up after $(($(date +%s) - start)) s"
grep -q 'libcriterion' "$LOG" && fail "the quick start installed Criterion"
in_root 'dpkg -s libcriterion-dev >/dev/null 2>&1' && fail "Criterion is installed"

in_root '. /tmp/drover-local/env && build/bin/drover ps hello --json' >"$ROOT/ps.json" ||
    fail "drover ps failed"
webs=$(python3 -c '
import json, sys
ps = json.load(open(sys.argv[1]))
print(" ".join("%s:%d" % (p["host"], p["port"]) for p in ps if p["type"] == "web" and p["state"] == "up"))' "$ROOT/ps.json")
[ "$(wc -w <<<"$webs")" -eq 3 ] || fail "3 webs up expected, got: $webs"
for w in $webs; do
    out=$(in_root "curl -s --max-time 3 http://$w/") || fail "web at $w does not answer"
    grep -q 'hello-from-drover' <<<"$out" || fail "web at $w answered: $out"
    echo "web $w: $out"
done

out=$(in_root '. /tmp/drover-local/env && build/bin/drover run hello -- sh -c "test -t 0 || echo no-tty; echo one-off-ok"' 2>&1) ||
    fail "one-off without a terminal failed: $out"
grep -q one-off-ok <<<"$out" && grep -q no-tty <<<"$out" || fail "one-off without a terminal said: $out"
echo "one-off without a terminal: ok"

# `script` gives the CLI a terminal (bsdutils, in every Debian root).
out=$(in_root '. /tmp/drover-local/env && script -qec "build/bin/drover run hello -- sh -c \"test -t 0 && echo tty-ok\"" /dev/null' 2>&1)
if grep -q tty-ok <<<"$out"; then
    echo "one-off with a terminal: ok"
else
    fail_later "one-off with a terminal said: $out"
fi

kill -TERM "$(script_pid)"
wait_stopped 120 || fail "SIGTERM did not stop everything"
grep -q '^stopped; logs are in' "$LOG" || fail "no 'stopped' line in the output"
echo "SIGTERM stopped everything"

echo "== 2. piped to tee, in the background of a script; an agent restarted by hand; SIGINT"
cat >"$ROOT/root/bg.sh" <<EOS
#!/bin/bash
cd /root/drover
$ENV ./deploy/local-cluster 2>&1 | tee /root/bg.log >/root/bg.tee &
EOS
in_root 'bash /root/bg.sh'
wait_for 300 "$ROOT/root/bg.log" 'The cluster is running' || {
    tail -20 "$ROOT/root/bg.log"
    fail "the background cluster did not come up"
}
# The README's hand restart of one agent.
# (the README's lines, word for word)
in_root 'B=$PWD/build/bin; cd /tmp/drover-local
kill -TERM "$(cat node2.pid)"
while kill -0 "$(cat node2.pid)" 2>/dev/null; do sleep 0.2; done
setsid sh -c '"'"'echo $$ >node2.pid; exec env -i $(cat node2.env) "$0"'"'"' "$B/drover-agent" >>node2.log 2>&1 &'
in_root 'tr "\0" " " </proc/"$(cat /tmp/drover-local/node2.pid)"/cmdline' | grep -q drover-agent ||
    fail "node2.pid does not name the agent restarted by hand"
for i in $(seq 1 50); do
    in_root '. /tmp/drover-local/env && build/bin/drover nodes' | grep -qE '^node2 .* ready' && break
    sleep 0.2
done
in_root '. /tmp/drover-local/env && build/bin/drover nodes' | grep -qE '^node2 .* ready' ||
    fail "node2 restarted by hand did not rejoin"
echo "node2 restarted by hand: ready"
# Ctrl-C at a terminal reaches the script and tee at once.
kill -INT $(in_root_pids 'local-cluster|^tee ')
wait_stopped 120 || fail "SIGINT (piped, in the background) did not stop everything"
echo "SIGINT piped to tee, in the background: everything stopped"

echo "== 3. a script killed with SIGKILL: the next start refuses, --stop stops"
in_root "$ENV setsid ./deploy/local-cluster >/root/k.log 2>&1 &"
wait_for 300 "$ROOT/root/k.log" 'The cluster is running' || fail "the third cluster did not come up"
kill -KILL "$(script_pid)"
sleep 0.5
[ -n "$(in_root_pids 'drover-agent')" ] || fail "expected the agents to survive the script's SIGKILL"
out=$(in_root "$ENV ./deploy/local-cluster" 2>&1) && fail "a second start over a running cluster succeeded"
echo "$out"
grep -q 'still running' <<<"$out" && grep -q -- '--stop' <<<"$out" || fail "the refusal does not say how to stop: $out"
in_root "$ENV ./deploy/local-cluster --stop" || fail "--stop failed"
wait_stopped 120 || fail "--stop did not stop everything"
echo "--stop: everything stopped"
if [ ${#FAILED[@]} -gt 0 ]; then
    echo "failed: ${FAILED[*]}"
    exit 1
fi
echo "passed"
