# SPDX-License-Identifier: MIT
# A fresh minimal Debian 12 root for the system tests (the quick start on a
# machine that never ran the tests, the package installed from scratch).
# Sourced by tests/system/*.sh. The root comes from one debootstrap base
# tarball (`--variant=minbase --make-tarball`), made on first use and cached
# in the build directory, so that later runs only unpack it
# (`--unpack-tarball`; the unpacked root is cached too, as a plain tar); the packages apt fetches inside the root are cached
# beside it (bind-mounted on the root's /var/cache/apt/archives) for the
# same reason. The mirror is the first Debian one of this machine's apt
# sources: it is the one known to be reachable.
#
#   rootfs_check             prints why a root cannot be made here; 1 then
#   rootfs_make DIR          DIR becomes a fresh root, /proc /sys /dev mounted
#   rootfs_run DIR CMD...    CMD as root inside, with a clean environment
#   rootfs_remove DIR        unmounts everything under DIR, then removes it
#   rootfs_sweep             removes the roots of earlier runs that were killed

ROOTFS_SUITE=bookworm
ROOTFS_CACHE=${DROVER_ROOTFS_CACHE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/rootfs}

# The first http(s) Debian mirror of this machine's apt sources.
rootfs_mirror() {
    local m
    m=$(
        {
            awk '$1 == "URIs:" { for (i = 2; i <= NF; i++) print $i }' \
                /etc/apt/sources.list.d/*.sources 2>/dev/null
            awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; break } }' \
                /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null
        } | grep -E '/debian/?$' | head -1
    )
    echo "${m:-http://deb.debian.org/debian}"
}

rootfs_check() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "not root (debootstrap, chroot and mount need root)"
        return 1
    fi
    if ! command -v debootstrap >/dev/null; then
        echo "debootstrap is not installed"
        return 1
    fi
    if ! command -v chroot >/dev/null || ! command -v mount >/dev/null; then
        echo "chroot or mount is missing"
        return 1
    fi
    # A root that cannot mount /proc cannot run a chroot with one (e.g. an
    # unprivileged container).
    local probe
    probe=$(mktemp -d)
    if ! mount -t tmpfs tmpfs "$probe" 2>/dev/null; then
        rmdir "$probe"
        echo "cannot mount here (unprivileged container?)"
        return 1
    fi
    umount "$probe"
    rmdir "$probe"
    # apt inside the root needs the mirror.
    local mirror host port
    mirror=$(rootfs_mirror)
    host=${mirror#*://}
    host=${host%%/*}
    port=80
    [[ $mirror == https:* ]] && port=443
    if ! timeout 10 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null; then
        echo "the Debian mirror $mirror is not reachable"
        return 1
    fi
    return 0
}

# The base tarball: made once (it downloads ~40 MB from the mirror).
rootfs_tarball() {
    local tgz=$ROOTFS_CACHE/$ROOTFS_SUITE-minbase.tgz work
    if [ ! -s "$tgz" ]; then
        mkdir -p "$ROOTFS_CACHE"
        work=$(mktemp -d "$ROOTFS_CACHE/make.XXXXXX")
        echo "rootfs: making $tgz from $(rootfs_mirror) (once; later runs reuse it)" >&2
        if ! debootstrap --variant=minbase --make-tarball="$tgz.part" "$ROOTFS_SUITE" \
            "$work" "$(rootfs_mirror)" >"$ROOTFS_CACHE/make.log" 2>&1; then
            tail -20 "$ROOTFS_CACHE/make.log" >&2
            rm -rf "$work" "$tgz.part"
            return 1
        fi
        rm -rf "$work"
        mv "$tgz.part" "$tgz"
    fi
    echo "$tgz"
}

rootfs_make() {
    local dir=$1 tgz root_tar=$ROOTFS_CACHE/$ROOTFS_SUITE-minbase-root.tar
    tgz=$(rootfs_tarball) || return 1
    mkdir -p "$dir"
    chmod 755 "$dir" # its / : everyone must reach it (mktemp -d makes 0700)
    # debootstrap's second stage (unpack and configure ~90 packages) takes
    # minutes; its result is kept as a plain tar next to the base tarball
    # (rebuilt whenever that is newer) and later roots are extracted from it.
    if [ -s "$root_tar" ] && [ "$root_tar" -nt "$tgz" ]; then
        tar -C "$dir" --numeric-owner -xpf "$root_tar" || return 1
    else
        if ! debootstrap --variant=minbase --unpack-tarball="$tgz" "$ROOTFS_SUITE" "$dir" \
            "$(rootfs_mirror)" >"$dir.debootstrap.log" 2>&1; then
            echo "rootfs: debootstrap failed; its log:" >&2
            tail -20 "$dir.debootstrap.log" >&2
            return 1
        fi
        rm -f "$dir.debootstrap.log"
        tar -C "$dir" --numeric-owner -cpf "$root_tar.part" . && mv "$root_tar.part" "$root_tar"
    fi
    # The mirror the machine uses, and resolv.conf so that apt reaches it.
    echo "deb $(rootfs_mirror) $ROOTFS_SUITE main" >"$dir/etc/apt/sources.list"
    cp /etc/resolv.conf "$dir/etc/resolv.conf" 2>/dev/null || true
    mkdir -p "$ROOTFS_CACHE/apt-archives/partial"
    mount -t proc proc "$dir/proc" &&
        mount -t sysfs sysfs "$dir/sys" &&
        mount --rbind /dev "$dir/dev" &&
        mount --make-rslave "$dir/dev" &&
        mount --bind "$ROOTFS_CACHE/apt-archives" "$dir/var/cache/apt/archives" ||
        {
            rootfs_umount "$dir"
            return 1
        }
}

rootfs_run() {
    local dir=$1
    shift
    chroot "$dir" /usr/bin/env -i HOME=/root TERM="${TERM:-dumb}" LANG=C.UTF-8 \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}

# Every mount under DIR, deepest first (lazy, so a process left inside
# cannot keep the host's /dev mounted there).
rootfs_umount() {
    local dir m
    dir=$(realpath "$1" 2>/dev/null) || return 0
    awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts |
        sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done
}

rootfs_remove() {
    local dir=$1
    [ -d "$dir" ] || return 0
    rootfs_umount "$dir"
    # Never follow into a mount that is still there.
    if awk -v d="$(realpath "$dir")" 'index($2, d "/") == 1 { f = 1 } END { exit !f }' /proc/self/mounts; then
        echo "rootfs: $dir still has mounts; not removing it" >&2
        return 1
    fi
    rm -rf --one-file-system "$dir"
}

# A run killed with SIGKILL (a CI timeout, say) never ran its cleanup: its
# root stays, with the host's /dev, /proc and /sys still mounted inside, and
# an `rm -rf` of the temp directory then goes through those mounts and
# empties the host's /dev. So each run first removes the roots that no run
# uses: untouched for two hours, and no process has its root there.
rootfs_sweep() {
    local d p
    for d in "${TMPDIR:-/tmp}"/drover-quickstart.* "${TMPDIR:-/tmp}"/drover-package.*; do
        [ -d "$d" ] && [ -n "$(find "$d" -maxdepth 0 -mmin +120)" ] || continue
        for p in /proc/[0-9]*; do
            [ "$(readlink "$p/root" 2>/dev/null)" = "$d" ] && continue 2
        done
        echo "rootfs: removing $d, left by an earlier run that was killed" >&2
        rootfs_remove "$d" || true
    done
}
