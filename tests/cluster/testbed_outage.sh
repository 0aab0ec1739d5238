#!/usr/bin/env bash
# The k-means application in the multi-host testbed (scripts/testbed.sh:
# three ufo-servers and a client, each in its own network namespace) while
# one server's namespace loses its link and gets it back.  Passes when the
# application finishes and its --check (centroids and every label re-read
# from the servers, against a serial reference) holds.
#
#   testbed_outage.sh flap|failover TESTBED_SH UFO_KMEANS   ($UFO_SERVER set)
#
# flap:     the link is down 4 s, the client timeout is 20 s: requests to
#           the lost server wait and resume when it is back.
# failover: the link is down 6 s, three times the 2 s client timeout.  The
#           dataset has R = 2, so every group keeps a live home and, by
#           docs/cluster.md, reads carry on during the outage: a request to
#           the lost server times out after a third of the timeout, the
#           server is marked down, and the next attempt reads the other
#           copy.  (Before that fix the first try spent the whole timeout
#           on the lost server and the fetch got SIGBUS.)  This script
#           exits 1 for that failure (the library logs a load that failed
#           with SIGBUS to the faulting thread) and 99 for anything else
#           that goes wrong.
# Skips (77) without root or network namespaces.  The testbed is torn
# down on every exit; the application gets APP_LIMIT seconds, below meson's
# timeout (whose SIGKILL no trap sees), and testbeds left by runs that were
# killed anyway are removed first.
set -uo pipefail
mode=$1 testbed=$2 app=$3
case $mode in
flap) outage=4 timeout=20000 ;;
failover) outage=6 timeout=2000 ;;
*) echo "usage: $0 flap|failover TESTBED_SH UFO_KMEANS"; exit 99 ;;
esac
[ "$(id -u)" -eq 0 ] || { echo "skip: network namespaces need root"; exit 77; }
probe=ufo-probe-$$
if ! ip netns add "$probe" 2>/dev/null; then
	echo "skip: cannot create network namespaces (ip netns add)"; exit 77
fi
ip netns del "$probe"

APP_LIMIT=120
name=t$$
log=$(mktemp)
app_pid=
tb() { "$testbed" --name "$name" "$@"; }
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
	[ -z "$app_pid" ] || kill -KILL "$app_pid" 2>/dev/null
	tb down >/dev/null 2>&1
	rm -f "$log"
}
trap cleanup EXIT
error() { echo "ERROR: $*"; echo "--- application output"; cat "$log"; exit 99; }

# Testbeds of earlier runs whose script is gone (named t<its pid>).
for n in $(ip netns list | sed -n 's/^ufo-t\([0-9]*\)-sw\b.*/\1/p'); do
	kill -0 "$n" 2>/dev/null || "$testbed" --name "t$n" down
done
tb up --servers 3 --clients 1 || error "testbed up failed"
# Each worker's budget (2 MiB) is a quarter of its working set, so every
# iteration fetches its whole slice again: every home, the lost one too.
tb exec cli0 "$app" --workers 2 --name outage --generate --check \
	--points 262144 --iters 40 --budget 2M --chunk 64K \
	--timeout "$timeout" >"$log" 2>&1 &
app_pid=$!
for _ in $(seq 600); do
	grep -q "^rank 0: iteration 3/" "$log" && break
	kill -0 "$app_pid" 2>/dev/null || error "the application ended before its third iteration"
	sleep 0.1
done
kill -0 "$app_pid" 2>/dev/null || error "the application ended before the outage"
before=$(grep -c "^rank 0: iteration" "$log")
tb link srv1 down
sleep "$outage"
alive=no; kill -0 "$app_pid" 2>/dev/null && alive=yes
tb link srv1 up
for _ in $(seq $((APP_LIMIT * 10))); do
	kill -0 "$app_pid" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$app_pid" 2>/dev/null && error "the application did not finish in ${APP_LIMIT}s"
wait "$app_pid"; status=$?
app_pid=
cat "$log"
after=$(grep -c "^rank 0: iteration" "$log")
echo "outage of ${outage}s at iteration $before, client timeout ${timeout} ms;" \
	"application still running when the link came back: $alive;" \
	"iterations done: $after; exit status $status"
if [ "$status" -eq 0 ] && grep -q "^check: centroids and all" "$log"; then
	[ "$after" -gt "$before" ] || error "no iteration ran after the link went down"
	echo "PASS: the application finished with correct results"
	exit 0
fi
if [ "$mode" = failover ] && grep -q "load failed: .*; SIGBUS to the faulting thread" "$log"; then
	echo "FAIL: a fetch got SIGBUS while a replica was up"
	exit 1
fi
error "the application failed (status $status)"
