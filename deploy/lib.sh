# SPDX-License-Identifier: MIT
# Shared by deploy/local-cluster and tests/run: install what drover needs on
# Debian 12 (idempotent: apt-get runs only when a package is missing) and
# build it with CMake.

DROVER_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

drover_install_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing: ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then
        echo "error: need root to install ${missing[*]} (run as root or install them first)" >&2
        return 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            "${missing[@]}" >/dev/null
}

DROVER_BUILD_PACKAGES=(build-essential cmake pkg-config libuv1-dev libnanomsg-dev
    libprotobuf-c-dev protobuf-c-compiler libsqlite3-dev libsodium-dev libarchive-dev
    libssl-dev libcurl4-openssl-dev libpq-dev libjansson-dev libmicrohttpd-dev)

# drover_build BUILD_DIR [cmake args...]
drover_build() {
    local dir=$1
    shift
    cmake -S "$DROVER_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null &&
        cmake --build "$dir" -j "$(nproc)" -- --no-print-directory
}
