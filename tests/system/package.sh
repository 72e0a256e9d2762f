#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The Debian package, installed as an operator would: `cpack -G DEB` in the
# build directory, lintian (only the tags explained in the README may
# remain), then `apt-get install ./drover_*.deb` into a fresh minimal Debian
# 12 root (tests/system/rootfs.sh), so its dependencies must resolve from
# Debian alone. There: the binaries run (--version), the man pages open and
# name every verb `drover help` lists, `systemd-analyze verify` passes on the
# installed units, the files in /etc/drover have mode 0600 and survive a
# reinstall once edited, the state directories have their owners and modes;
# the daemons run as the units run them (ExecStart, EnvironmentFile, User=)
# in a private network namespace, an app is deployed and runs, the bash
# completion completes verbs, apps and types from them; purge removes
# everything the package made.
#
#   tests/system/package.sh [BUILD_DIR]     (default build; it must be built)
# Exit 0 passed, 1 failed, 77 skipped (the reason on the last line).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
BUILD=${1:-build}
source tests/system/rootfs.sh

# lintian tags the README's Packaging section explains.
LINTIAN_OK='bogus-mail-host|bogus-mail-host-in-debian-changelog'

if ! why=$(rootfs_check); then
    echo "skipped: $why"
    exit 77
fi
fail() {
    echo "FAIL: $*"
    exit 1
}

echo "== cpack -G DEB"
rm -f "$BUILD"/drover_*.deb
(cd "$BUILD" && cpack -G DEB >cpack.log 2>&1) || {
    tail -20 "$BUILD/cpack.log"
    fail "cpack failed"
}
DEB=$(ls "$BUILD"/drover_*.deb)
echo "$DEB: $(stat -c %s "$DEB") bytes"
dpkg-deb -f "$DEB" Depends | tee /dev/stderr | grep -q -- '-dev' && fail "a -dev package in Depends"

if command -v lintian >/dev/null; then
    echo "== lintian"
    tags=$(lintian --tag-display-limit 0 "$DEB" 2>/dev/null | grep -E '^[EW]:' || true)
    echo "${tags:-no errors or warnings}"
    bad=$(grep -vE ": ($LINTIAN_OK) " <<<"$tags" | grep . || true)
    [ -z "$bad" ] || fail "lintian tags not explained in the README: $bad"
else
    echo "lintian is not installed: not run"
fi

rootfs_sweep
ROOT=$(mktemp -d "${TMPDIR:-/tmp}/drover-package.XXXXXX")
cleanup() {
    local p
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/root" 2>/dev/null)" = "$ROOT" ] && kill -KILL "${p#/proc/}" 2>/dev/null
    done
    sleep 0.2
    rootfs_remove "$ROOT"
}
trap cleanup EXIT
echo "== a fresh root in $ROOT"
rootfs_make "$ROOT" || fail "could not make the root"
cp "$DEB" "$ROOT/root/"
in_root() { rootfs_run "$ROOT" bash -c "$1"; }

echo "== apt-get install ./$(basename "$DEB") (with man-db, systemd and zsh, for the checks)"
in_root "apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends /root/$(basename "$DEB") man-db systemd zsh >/root/apt.log 2>&1" || {
    tail -30 "$ROOT/root/apt.log"
    fail "apt-get install failed"
}

echo "== --version"
for b in drover drover-controller drover-agent; do
    out=$(in_root "$b --version") || fail "$b --version failed"
    echo "$out"
    [[ $out =~ ^$b\ [0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "$b --version said: $out"
done

echo "== man pages"
man1=$(in_root 'MANWIDTH=100 man -P cat drover 2>/dev/null') || fail "man drover does not open"
for v in $(in_root 'drover help' | awk '/^Verbs:/ { v = 1; next } /^$/ { v = 0 } v && /^  [a-z]/ { print $1 }'); do
    [ "$v" = help ] && continue
    grep -q "drover $v" <<<"$man1" || fail "man drover does not describe the verb $v"
done
for s in ENVIRONMENT "EXIT STATUS" DROVER_CONTROLLER DROVER_API_TOKEN DROVER_TIMEOUT_MS; do
    grep -q "$s" <<<"$man1" || fail "man drover lacks $s"
done
for d in drover-controller drover-agent; do
    page=$(in_root "MANWIDTH=100 man -P cat 8 $d 2>/dev/null") || fail "man 8 $d does not open"
    for var in $(sed -n "/^## Configuration/,/^## /p" README.md | awk -F'|' -v want="\`$d\`" '
            /^\| / { p = $2; gsub(/ /, "", p); if (p != "") cur = p; if (cur == want) { v = $3; gsub(/[ `]/, "", v); print v } }'); do
        grep -q "$var" <<<"$page" || fail "man 8 $d lacks $var"
    done
    grep -q "EXIT STATUS" <<<"$page" && grep -q 78 <<<"$page" || fail "man 8 $d lacks its exit statuses"
done
echo "man drover, man 8 drover-controller, man 8 drover-agent: every verb and variable"

echo "== systemd-analyze verify"
out=$(in_root 'systemd-analyze verify /lib/systemd/system/drover-controller.service /lib/systemd/system/drover-agent.service 2>&1')
rc=$?
echo "${out:-clean}"
[ "$rc" -eq 0 ] && [ -z "$out" ] || fail "systemd-analyze verify: exit $rc"

echo "== files, owners, modes"
check_stat() {
    local got
    got=$(in_root "stat -c '%a %U %G' $1") || fail "$1 is missing"
    [ "$got" = "$2" ] || fail "$1: $got, expected $2"
    echo "$1: $got"
}
check_stat /etc/drover/controller.env "600 root root"
check_stat /etc/drover/agent.env "600 root root"
check_stat /var/lib/drover "750 drover drover"
check_stat /var/lib/drover-agent "755 root root"
in_root 'getent passwd drover' | grep -q ':/usr/sbin/nologin$' || fail "no drover system user"
key=$(sed -n 's/^DROVER_CLUSTER_KEY=//p' "$ROOT/etc/drover/controller.env")
[[ $key =~ ^[0-9a-f]{64}$ ]] || fail "controller.env has no cluster key"
grep -qx "DROVER_CLUSTER_KEY=$key" "$ROOT/etc/drover/agent.env" || fail "agent.env does not share the key"

echo "== an edited configuration survives a reinstall"
echo "DROVER_PORT_RANGE=9800-9899" >>"$ROOT/etc/drover/agent.env"
echo "DROVER_NODE_NAME=pkg1" >>"$ROOT/etc/drover/agent.env"
sum=$(md5sum <"$ROOT/etc/drover/agent.env")
in_root "dpkg -i /root/$(basename "$DEB") >/dev/null" || fail "reinstall failed"
[ "$(md5sum <"$ROOT/etc/drover/agent.env")" = "$sum" ] || fail "the reinstall changed agent.env"
check_stat /etc/drover/agent.env "600 root root"

echo "== three hosts (network namespaces): the controller and two agents, as the guide sets them up"
# Host c runs the controller with the installed /etc/drover/controller.env;
# hosts a1 and a2 run an agent each with their own agent.env, made from the
# installed one as the README's guide says (the controller's key, DROVER_JOIN
# at the controller, the host's own address), and their own state directory:
# each agent sees its own /etc/drover and /var/lib/drover-agent through a
# private mount namespace. Every daemon is started from its installed unit's
# ExecStart=, EnvironmentFile= and User= (no systemd here). Addresses in
# 198.19.N.0/24 (198.18.0.0/15, apart from tests/integration/hosts.c's
# 198.18.*); names carry our pid.
NET=198.19.$(($$ % 250 + 1))
BR=drpkg$$br
HOSTS=(c a1 a2)
ns() { echo "drpkg$$$1"; }
net_cleanup() {
    local h
    for h in "${HOSTS[@]}"; do ip netns del "$(ns "$h")" 2>/dev/null; done
    ip link del "$BR" 2>/dev/null
    return 0
}
trap 'net_cleanup; cleanup' EXIT
ip link add "$BR" type bridge && ip link set "$BR" up || fail "cannot make a bridge"
i=0
for h in "${HOSTS[@]}"; do
    i=$((i + 1))
    ip netns add "$(ns "$h")" &&
        ip -n "$(ns "$h")" link set lo up &&
        ip link add "drpkg$$$h" type veth peer name eth0 netns "$(ns "$h")" &&
        ip link set "drpkg$$$h" master "$BR" up &&
        ip -n "$(ns "$h")" addr add "$NET.$i/24" dev eth0 &&
        ip -n "$(ns "$h")" link set eth0 up || fail "cannot make host $h"
done

# unit_cmd UNIT: the unit's ExecStart= with its EnvironmentFile= and User=.
unit_cmd() {
    local unit=/lib/systemd/system/$1.service exec envf user pre=""
    exec=$(sed -n 's/^ExecStart=//p' "$ROOT$unit")
    envf=$(sed -n 's/^EnvironmentFile=//p' "$ROOT$unit")
    user=$(sed -n 's/^User=//p' "$ROOT$unit")
    [ -n "$user" ] && pre="setpriv --reuid=$user --regid=$user --clear-groups"
    echo "exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \$(grep -v '^#' $envf) $pre $exec"
}
key=$(sed -n 's/^DROVER_CLUSTER_KEY=//p' "$ROOT/etc/drover/controller.env")
token=$(sed -n 's/^DROVER_API_TOKEN=//p' "$ROOT/etc/drover/controller.env")
for n in 1 2; do
    d=$ROOT/hosts/a$n
    mkdir -p "$d/etc" "$d/state"
    chmod 755 "$d/state"
    install -m 0600 "$ROOT/etc/drover/agent.env" "$d/etc/agent.env"
    # The guide's step: the same key, DROVER_JOIN at the controller, this host's address.
    sed -i -e "s/^DROVER_CLUSTER_KEY=.*/DROVER_CLUSTER_KEY=$key/" \
        -e "s|^DROVER_JOIN=.*|DROVER_JOIN=tcp://$NET.1:7401|" "$d/etc/agent.env"
    sed -i '/^DROVER_NODE_NAME=\|^DROVER_PORT_RANGE=/d' "$d/etc/agent.env"
    printf 'DROVER_NODE_NAME=host%s\nDROVER_ADVERTISE=%s\nDROVER_PORT_RANGE=9900-9949\n' \
        "$n" "$NET.$((n + 1))" >>"$d/etc/agent.env"
done
echo "DROVER_API_LISTEN=tcp://127.0.0.1:7400" >>"$ROOT/etc/drover/controller.env"

# start_in HOST LOG CMD: CMD in the root, on HOST's network, in the background.
PIDS=()
start_in() {
    ip netns exec "$(ns "$1")" chroot "$ROOT" /bin/bash -c "$3" >"$ROOT/root/$2" 2>&1 &
    PIDS+=($!)
}
unit_cmd drover-controller >"$ROOT/root/start-controller.sh"
unit_cmd drover-agent >"$ROOT/root/start-agent.sh"
start_in c controller.log "exec bash /root/start-controller.sh"
for n in 1 2; do
    # Its own /etc/drover and state, in a mount namespace of its own.
    ip netns exec "$(ns a$n)" unshare --mount --propagation private bash -c "
        mount --bind '$ROOT/hosts/a$n/etc' '$ROOT/etc/drover' &&
        mount --bind '$ROOT/hosts/a$n/state' '$ROOT/var/lib/drover-agent' &&
        exec chroot '$ROOT' /bin/bash /root/start-agent.sh" >"$ROOT/root/agent$n.log" 2>&1 &
    PIDS+=($!)
done
cli() { ip netns exec "$(ns c)" chroot "$ROOT" /usr/bin/env -i PATH=/usr/bin:/bin DROVER_API_TOKEN="$token" drover "$@"; }
for i in $(seq 1 100); do
    [ "$(cli nodes 2>/dev/null | grep -cE '^host[12] .* ready')" -eq 2 ] && break
    sleep 0.2
done
cli nodes
[ "$(cli nodes | grep -cE '^host[12] .* ready')" -eq 2 ] || {
    for f in "$ROOT"/root/*.log; do
        echo "--- $f"
        tail -n 8 "$f"
    done
    fail "the agents did not join"
}

echo "== an app deployed across the hosts"
mkdir -p "$ROOT/root/app"
# perl-base is in every Debian root: a web answering HTTP on $PORT.
cat >"$ROOT/root/app/Procfile" <<'EOP'
web: exec perl -MIO::Socket::INET -e '$s = IO::Socket::INET->new(LocalPort => $ENV{PORT}, Listen => 8, ReuseAddr => 1) or die "listen: $!"; while ($c = $s->accept) { <$c>; print $c "HTTP/1.0 200 OK\r\n\r\nhello from $ENV{PORT}\n"; close $c }'
worker: exec sleep 100000
EOP
if ! { cli apps:create pkgapp && cli deploy pkgapp /root/app --timeout 60 &&
    cli scale pkgapp web=2 worker=2; }; then
    cli logs pkgapp -n 30
    for f in "$ROOT"/root/agent*.log; do
        echo "--- $f"
        tail -n 15 "$f"
    done
    fail "the deploy failed"
fi
for i in $(seq 1 150); do
    python3 -c 'import json, sys; sys.exit(sum(p["state"] == "up" for p in json.load(sys.stdin)) < 4)' \
        < <(cli ps pkgapp --json) 2>/dev/null && break
    sleep 0.2
done
cli ps pkgapp
ps_json=$(cli ps pkgapp --json)
# (parsed here, on the test's machine: the root has no python)
for n in 1 2; do
    python3 -c 'import json, sys; sys.exit(not any(p["node"] == sys.argv[1] and p["state"] == "up" for p in json.loads(sys.argv[2])))' \
        "host$n" "$ps_json" || fail "nothing runs on host$n"
done
webs=$(python3 -c 'import json, sys; print(" ".join("%s:%d" % (p["host"], p["port"]) for p in json.loads(sys.argv[1]) if p["type"] == "web" and p["state"] == "up"))' "$ps_json")
served=0
for w in $webs; do
    out=$(ip netns exec "$(ns c)" bash -c "exec 3<>/dev/tcp/${w%:*}/${w#*:}; printf 'GET / HTTP/1.0\r\n\r\n' >&3; cat <&3" 2>/dev/null)
    grep -q 'hello from' <<<"$out" && served=$((served + 1)) && echo "web at $w: $(tail -1 <<<"$out")"
done
[ "$served" -eq 2 ] || fail "expected 2 webs answering across the hosts, got $served"

# Who runs what: the controller as drover, app processes as their app's own
# user (DROVER_UID_RANGE, 61184-65519 by default), never root.
ctl_pid=$(ip netns pids "$(ns c)" | while read -r p; do [ "$(cat /proc/$p/comm 2>/dev/null)" = drover-controll ] && echo "$p"; done | head -1)
[ -n "$ctl_pid" ] && [ "$(stat -c %u "/proc/$ctl_pid")" = "$(stat -c %u "$ROOT/var/lib/drover")" ] ||
    fail "the controller does not run as drover"
for p in $(ip netns pids "$(ns a1)"); do
    [ "$(cat /proc/$p/comm 2>/dev/null)" = sleep ] || continue
    u=$(stat -c %u "/proc/$p")
    [ "$u" -ge 61184 ] && [ "$u" -le 65519 ] || fail "an app process runs as uid $u, not its app's user"
done
echo "controller as drover, app processes as their app's user"

echo "== completion (bash): verbs from the CLI, apps and types from the cluster"
comp() {
    ip netns exec "$(ns c)" chroot "$ROOT" /usr/bin/env -i PATH=/usr/bin:/bin DROVER_API_TOKEN="$token" \
        bash -c "source /usr/share/bash-completion/completions/drover; COMP_WORDS=($1); COMP_CWORD=$2; _drover; echo \"\${COMPREPLY[*]}\""
}
[ "$(comp 'drover sca' 1)" = scale ] || fail "verb completion: $(comp 'drover sca' 1)"
[ "$(comp 'drover ps pkg' 2)" = pkgapp ] || fail "app completion: $(comp 'drover ps pkg' 2)"
[ "$(comp 'drover scale pkgapp w' 3)" = "web= worker=" ] || fail "type completion: $(comp 'drover scale pkgapp w' 3)"
[ "$(comp 'drover nodes:drain ho' 2)" = "host1 host2" ] || fail "node completion: $(comp 'drover nodes:drain ho' 2)"
echo "drover sca -> scale; ps pkg -> pkgapp; scale pkgapp w -> web= worker=; nodes:drain ho -> host1 host2"

echo "== completion (zsh): the same, through a compadd that prints what it is given"
cat >"$ROOT/root/zcomp.zsh" <<'EOZ'
compadd() { local -a a; a=("$@"); local i=${a[(i)--]}; print -r -- "${(j: :)a[i+1,-1]}"; }
_directories() { print -r -- "(directories)"; }
source /usr/share/zsh/vendor-completions/_drover >/dev/null 2>&1
words=(${=1}); CURRENT=$2; PREFIX=${words[CURRENT]}
_drover
EOZ
zcomp() {
    ip netns exec "$(ns c)" chroot "$ROOT" /usr/bin/env -i PATH=/usr/bin:/bin DROVER_API_TOKEN="$token" \
        zsh -f /root/zcomp.zsh "$1" "$2"
}
zcomp 'drover sca' 2 | grep -qw scale || fail "zsh verb completion: $(zcomp 'drover sca' 2)"
[ "$(zcomp 'drover ps pkg' 3)" = pkgapp ] || fail "zsh app completion: $(zcomp 'drover ps pkg' 3)"
[ "$(zcomp 'drover scale pkgapp w' 4)" = "web worker" ] || fail "zsh type completion: $(zcomp 'drover scale pkgapp w' 4)"
[ "$(zcomp 'drover nodes:drain ho' 3)" = "host1 host2" ] || fail "zsh node completion: $(zcomp 'drover nodes:drain ho' 3)"
echo "zsh: verbs, apps, types (with '=' as suffix), nodes"

echo "== SIGTERM, as systemctl stop sends it: agents leave and drain, then the controller"
for n in 1 2; do
    for p in $(ip netns pids "$(ns a$n)"); do
        [ "$(cat /proc/$p/comm 2>/dev/null)" = drover-agent ] && kill -TERM "$p"
    done
done
wait "${PIDS[1]}" "${PIDS[2]}"
kill -TERM "$ctl_pid"
wait "${PIDS[0]}"
grep -q 'event=stopped exit_code=0' "$ROOT/root/controller.log" || fail "the controller did not stop cleanly"
for n in 1 2; do
    grep -q 'event=shutdown_done.*exit_code=0' "$ROOT/root/agent$n.log" || fail "agent $n did not stop cleanly"
done
[ -z "$(ip netns pids "$(ns a1)")$(ip netns pids "$(ns a2)")" ] || fail "processes left on the agents' hosts"
net_cleanup
sed -i '/^DROVER_API_LISTEN=tcp:\/\/127.0.0.1:7400$/d' "$ROOT/etc/drover/controller.env"

echo "== purge"
in_root 'apt-get purge -y -q drover >/root/purge.log 2>&1' || {
    tail "$ROOT/root/purge.log"
    fail "purge failed"
}
for f in /etc/drover /var/lib/drover /var/lib/drover-agent /usr/bin/drover /lib/systemd/system/drover-agent.service \
    /usr/share/man/man1/drover.1.gz; do
    [ -e "$ROOT$f" ] && fail "purge left $f"
done
in_root 'getent passwd drover' && fail "purge left the drover user"
echo "purge removed everything"
echo "passed"
