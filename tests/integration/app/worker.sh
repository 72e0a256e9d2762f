trap 'echo "$DYNO got SIGTERM"; exit 0' TERM
i=0
while true; do
    i=$((i + 1))
    echo "$DYNO tick $i"
    sleep 1 &
    wait $!
done
