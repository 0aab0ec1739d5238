#!/bin/bash
# The container's HEALTHCHECK: ufo-server's monitor answers GET /metrics
# with status 200 and the ufo_server_info metric.  It uses bash's /dev/tcp,
# so the image needs no HTTP client.  The monitor is served by its own
# thread: this tells that the process runs and has finished starting up
# (the monitor starts after the listening socket), not that every request
# is answered.
# UFO_MONITOR_PORT: the port of --monitor (default 9170).
set -euo pipefail
port=${UFO_MONITOR_PORT:-9170}

if ! { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
	echo "unhealthy: nothing listens on 127.0.0.1:$port (--monitor)"
	exit 1
fi
printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
reply=$(timeout 5 cat <&3) || { echo "unhealthy: no answer from the monitor within 5 s"; exit 1; }
status=${reply%%$'\r'*}
case $status in
"HTTP/1."?" 200 "*) ;;
*) echo "unhealthy: monitor answered '$status'"; exit 1 ;;
esac
if ! grep -q '^ufo_server_info' <<<"$reply"; then
	echo "unhealthy: /metrics has no ufo_server_info (not a ufo-server monitor?)"
	exit 1
fi
echo "healthy"
