# On SIGUSR1: 20,000 numbered lines of 1000 bytes as fast as sh can. Far more
# than the agent's log queue and the sockets can hold while the controller
# does not read. On SIGUSR2: flood-done, the end the test waits for, written
# once the queue has room again (a line written into a full queue is counted
# as dropped, and that could be this one).
flood() {
    pad=$(printf '%0990d' 0)
    i=0
    while [ $i -lt 20000 ]; do
        echo "n=$i $pad"
        i=$((i + 1))
    done
}
trap flood USR1
trap 'echo flood-done' USR2
echo "$DYNO ready"
while :; do
    sleep 0.1
done
