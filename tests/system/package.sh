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
cd "$(dirname "$0")/../.."
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

echo "== apt-get install ./$(basename "$DEB") (with man-db and systemd, for the checks)"
in_root "apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends /root/$(basename "$DEB") man-db systemd >/root/apt.log 2>&1" || {
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

echo "== the daemons as the units run them, in a private network namespace"
# Each ExecStart= with its EnvironmentFile= and User= (no systemd here).
unit_cmd() {
    local unit=/lib/systemd/system/$1.service exec envf user
    exec=$(sed -n 's/^ExecStart=//p' "$ROOT$unit")
    envf=$(sed -n 's/^EnvironmentFile=//p' "$ROOT$unit")
    user=$(sed -n 's/^User=//p' "$ROOT$unit")
    local pre=""
    [ -n "$user" ] && pre="setpriv --reuid=$user --regid=$user --clear-groups"
    echo "env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \$(grep -v '^#' $envf) $pre $exec"
}
mkdir -p "$ROOT/root/app"
printf 'web: exec sh -c "echo web \\$PORT; exec sleep 100000"\nworker: exec sleep 100000\n' >"$ROOT/root/app/Procfile"
token=$(sed -n 's/^DROVER_API_TOKEN=//p' "$ROOT/etc/drover/controller.env")
cat >"$ROOT/root/cluster.sh" <<EOS
#!/bin/bash
# Runs in its own network namespace: lo only.
set -u
$(unit_cmd drover-controller) >/root/controller.log 2>&1 &
ctl=\$!
for i in \$(seq 100); do grep -q event=ready /root/controller.log && break; sleep 0.1; done
$(unit_cmd drover-agent) >/root/agent.log 2>&1 &
agt=\$!
export DROVER_API_TOKEN=$token
for i in \$(seq 100); do drover nodes 2>/dev/null | grep -q '^pkg1 .*ready' && break; sleep 0.1; done
drover nodes
drover apps:create pkgapp && drover deploy pkgapp /root/app --timeout 60 && drover scale pkgapp web=2 worker=1 || echo DEPLOY-FAILED
for i in \$(seq 100); do [ "\$(drover ps pkgapp --json | grep -o '"state":"up"' | wc -l)" -ge 3 ] && break; sleep 0.2; done
drover ps pkgapp
for p in /proc/[0-9]*; do [ "\$(cat \$p/comm 2>/dev/null)" = sleep ] && echo "process: \$(stat -c %U \$p) sleep"; done
echo "controller: \$(stat -c %U /proc/\$ctl) \$(cat /proc/\$ctl/comm)"
# Completion, from the CLI and the cluster.
source /usr/share/bash-completion/completions/drover
COMP_WORDS=(drover sca); COMP_CWORD=1; _drover; echo "complete verb: \${COMPREPLY[*]}"
COMP_WORDS=(drover ps pkg); COMP_CWORD=2; _drover; echo "complete app: \${COMPREPLY[*]}"
COMP_WORDS=(drover scale pkgapp w); COMP_CWORD=3; _drover; echo "complete type: \${COMPREPLY[*]}"
kill -TERM \$agt; wait \$agt; echo "agent exit \$?"
kill -TERM \$ctl; wait \$ctl; echo "controller exit \$?"
EOS
out=$(unshare --net bash -c "ip link set lo up && chroot '$ROOT' /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin bash /root/cluster.sh" 2>&1)
echo "$out"
grep -q DEPLOY-FAILED <<<"$out" && fail "the deploy failed"
[ "$(grep -cE '^(web|worker)\.[0-9]+: +up' <<<"$out")" -eq 3 ] || fail "expected 3 instances up"
grep -q '^process: nobody ' <<<"$out" || fail "app processes do not run as nobody"
grep -q '^controller: drover ' <<<"$out" || fail "the controller does not run as drover"
grep -qx 'complete verb: scale' <<<"$out" || fail "verb completion"
grep -qx 'complete app: pkgapp' <<<"$out" || fail "app completion"
grep -qx 'complete type: web= worker=' <<<"$out" || fail "type completion"
grep -qx 'agent exit 0' <<<"$out" && grep -qx 'controller exit 0' <<<"$out" || fail "the daemons did not stop cleanly"

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
