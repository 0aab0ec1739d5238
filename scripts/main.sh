#!/usr/bin/env bash
# The main job: start three local ufo-servers on loopback, then run an
# example that maps a replicated object (two copies of every group, over
# the three servers) 16 times larger than its memory budget, writes every
# byte through the budget, reads it all back from the servers and checks
# it.  Prints the dashboards, the result and where the data lives.
#
# Usage: scripts/main.sh [--size BYTES] [--budget BYTES] [--chunk BYTES]
#        scripts/main.sh --compute [...]   the computed-sequence example
#                                          (64 GiB of doubles, 256 MiB budget)
# UFO_DEMO_DIR (default /tmp/ufo-demo) holds the servers' data and secret;
# UFO_DEMO_SERVERS (default 3) sets how many servers (1: not replicated).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null

if [ "${1:-}" = "--compute" ]; then
	shift
	exec build/examples/ufo-sum-sequence "$@"
fi

demo=${UFO_DEMO_DIR:-/tmp/ufo-demo}
nservers=${UFO_DEMO_SERVERS:-3}
mkdir -p "$demo"
if [ ! -s "$demo/secret" ]; then
	(umask 077; head -c 32 /dev/urandom | base64 > "$demo/secret")
fi
chmod 600 "$demo/secret"

# Three storage servers on loopback, each with its own data directory and
# dashboard; the object is replicated on two of them per group.
pids=()
trap 'kill -TERM "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null || true' EXIT
start_server() { # index
	local d=$demo/server$1
	mkdir -p "$d/data"
	build/server/ufo-server --listen 127.0.0.1:0 --data "$d/data" \
		--secret-file "$demo/secret" --monitor 127.0.0.1:0 \
		>"$d/out" 2>"$d/log" &
	pids+=($!)
	for _ in $(seq 100); do
		grep -q '^monitor on' "$d/out" 2>/dev/null && return 0
		kill -0 $! 2>/dev/null || break
		sleep 0.1
	done
	grep -q '^listening on' "$d/out" 2>/dev/null && return 0
	echo "ufo-server $1 did not start; log:"; cat "$d/log"; exit 1
}
servers=
echo "dashboards (Prometheus metrics at /metrics):"
for i in $(seq 0 $((nservers - 1))); do
	start_server "$i"
	port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$demo/server$i/out" | head -n1)
	dash=$(sed -n 's/^monitor on //p' "$demo/server$i/out" | head -n1)
	servers=${servers:+$servers,}127.0.0.1:$port
	echo "  ufo-server $i  ${dash:-(monitor not built)}  (data $demo/server$i/data)"
done
url="ufo://$servers"
# The client's monitor: a free loopback port, picked here so it can be shown.
client_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export UFO_MONITOR=127.0.0.1:$client_port
echo "  client        http://127.0.0.1:$client_port/  (while the example runs)"
echo "cluster: $url (docs/cluster.md)"

export UFO_SECRET_FILE=$demo/secret
build/examples/ufo-remote-roundtrip --server "$url" --name demo \
	--size 1G --budget 64M "$@"

echo
echo "where the data lives:"
build/cli/ufoctl --servers "$servers" cluster status || true
for i in $(seq 0 $((nservers - 1))); do
	echo "  server $i: $(du -sh "$demo/server$i/data" | cut -f1) on disk"
done
echo "the dashboards stop with the servers."
