# One line every 300 ms with the unix time in ms at which it was written.
i=0
while true; do
    i=$((i + 1))
    echo "$DYNO tick $i t=$(date +%s%3N)"
    sleep 0.3
done
