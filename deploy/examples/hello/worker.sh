#!/bin/sh
# SPDX-License-Identifier: MIT
# drover's example worker: a line every 2 s with DYNO and a counter; exits
# cleanly on SIGTERM. The sleep runs in the background and is waited for, so
# that the trap fires at once instead of after the sleep.
dyno="${DYNO:-worker.?}"
running=1
pid=
on_term() {
    running=0
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
}
trap on_term TERM INT
n=0
echo "$dyno starting release=v${DROVER_RELEASE:-?}"
while [ "$running" = 1 ]; do
    n=$((n + 1))
    echo "$dyno tick $n"
    sleep 2 &
    pid=$!
    wait "$pid" 2>/dev/null
    pid=
done
echo "$dyno shutting down after $n ticks"
exit 0
