# On SIGUSR1: 20,000 numbered lines of 1000 bytes as fast as sh can, then
# flood-done. Far more than the agent's log queue and the sockets can hold
# while the controller does not read.
flood() {
    pad=$(printf '%0990d' 0)
    i=0
    while [ $i -lt 20000 ]; do
        echo "n=$i $pad"
        i=$((i + 1))
    done
    echo flood-done
}
trap flood USR1
echo "$DYNO ready"
while :; do
    sleep 0.1
done
