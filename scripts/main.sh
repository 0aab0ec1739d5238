#!/usr/bin/env bash
# The main job: start a local ufo-server on loopback, then run an example
# that maps a remote object 16 times larger than its memory budget, writes
# every byte through the budget, reads it all back from the server and
# checks it.  Prints the result and where the data lives.
#
# Usage: scripts/main.sh [--size BYTES] [--budget BYTES] [--chunk BYTES]
#        scripts/main.sh --compute [...]   the computed-sequence example
#                                          (64 GiB of doubles, 256 MiB budget)
# UFO_DEMO_DIR (default /tmp/ufo-demo) holds the server's data and secret.
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
mkdir -p "$demo/data"
if [ ! -s "$demo/secret" ]; then
	(umask 077; head -c 32 /dev/urandom | base64 > "$demo/secret")
fi
chmod 600 "$demo/secret"

build/server/ufo-server --listen 127.0.0.1:0 --data "$demo/data" \
	--secret-file "$demo/secret" --monitor 127.0.0.1:0 \
	>"$demo/server.out" 2>"$demo/server.log" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do
	grep -q '^monitor on' "$demo/server.out" 2>/dev/null && break
	kill -0 $server 2>/dev/null || { cat "$demo/server.log"; exit 1; }
	sleep 0.1
done
port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$demo/server.out" | head -n1)
[ -n "$port" ] || { echo "ufo-server did not start; log:"; cat "$demo/server.log"; exit 1; }
url="ufo://127.0.0.1:$port"
echo "ufo-server on $url, data in $demo/data (log: $demo/server.log)"
server_dash=$(sed -n 's/^monitor on //p' "$demo/server.out" | head -n1)
# The client's monitor: a free loopback port, picked here so it can be shown.
client_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export UFO_MONITOR=127.0.0.1:$client_port
echo "dashboards (Prometheus metrics at /metrics):"
echo "  ufo-server  ${server_dash:-(monitor not built)}"
echo "  client      http://127.0.0.1:$client_port/  (while the example runs)"

export UFO_SECRET_FILE=$demo/secret
build/examples/ufo-remote-roundtrip --server "$url" --name demo \
	--size 1G --budget 64M "$@"

echo
echo "where the data lives:"
build/cli/ufoctl --server "$url" list 2>/dev/null || true
echo "server data directory $demo/data: $(du -sh --apparent-size "$demo/data" | cut -f1) apparent, $(du -sh "$demo/data" | cut -f1) on disk"
echo "server dashboard was at ${server_dash:-(monitor not built)}; it stops with the server."
