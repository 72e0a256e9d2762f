#!/bin/sh
# SPDX-License-Identifier: MIT
#
# A private PostgreSQL server for drover's tests (issue 16):
#   tests/pg.sh start PORT   initdb into a fresh dir under /tmp, start the
#                            server on PORT (TCP on $PG_LISTEN, 127.0.0.1 by
#                            default, and a unix socket in that dir), print
#                            the dir; exit 77 with the reason when
#                            PostgreSQL is not installed
#   tests/pg.sh stop DIR     stop that server and remove its dir
# Run as root, the server runs as the `postgres` user (initdb refuses root),
# so its dir is made under /tmp and given to that user: it cannot enter
# /root or a mktemp -d dir of root's. Connect with
#   postgresql://postgres@/postgres?host=DIR&port=PORT
# fsync is off: a test server's data is thrown away, and a test must not
# wait on the disk of a machine shared with other tests.
set -eu

bindir() {
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
    done
    return 1
}

as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

case "${1:-}" in
start)
    port=${2:?usage: tests/pg.sh start PORT}
    bin=$(bindir) || { echo "PostgreSQL is not installed (apt-get install postgresql)"; exit 77; }
    if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
        echo "no postgres user to run the server as"
        exit 77
    fi
    dir=$(mktemp -d /tmp/drover-pg-XXXXXX)
    chmod 0755 "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    if ! as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 \
        --locale=C >"$dir/initdb.log" 2>&1; then
        cat "$dir/initdb.log" >&2
        rm -rf "$dir"
        exit 1
    fi
    listen=${PG_LISTEN:-127.0.0.1}
    # Another address (a test's network namespace): trust its clients too.
    [ "$listen" != 127.0.0.1 ] && echo "host all all 0.0.0.0/0 trust" >>"$dir/data/pg_hba.conf"
    if ! as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "-p $port -k $dir -c listen_addresses=$listen -c fsync=off -c max_connections=200" \
        start >/dev/null 2>&1; then
        cat "$dir/server.log" >&2
        rm -rf "$dir"
        exit 1
    fi
    echo "$dir"
    ;;
stop)
    dir=${2:?usage: tests/pg.sh stop DIR}
    case "$dir" in /tmp/drover-pg-*) ;; *) echo "not a test server: $dir" >&2; exit 2 ;; esac
    bin=$(bindir) || exit 0
    [ -d "$dir/data" ] && as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
*)
    echo "usage: tests/pg.sh start PORT | stop DIR" >&2
    exit 2
    ;;
esac
