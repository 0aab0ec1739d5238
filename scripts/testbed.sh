#!/usr/bin/env bash
# A multi-host testbed on one machine: a network namespace per ufo-server
# and per client "host", each with its own address on one LAN (a veth pair
# per host into a bridge, the bridge in a switch namespace of its own, so
# the machine's own network is never touched).  The servers run inside
# their namespaces; clients run commands in theirs.  Links are shaped with
# netem (delay and rate) where the kernel has it, else with tbf (rate
# only), else not at all; `up` says which, and why.  Needs root.
#
# Usage: scripts/testbed.sh up [--servers N] [--clients N] [--delay-us US]
#                               [--rate RATE] [--server-bin PATH]
#        scripts/testbed.sh exec HOST COMMAND...   HOST: srv0.. or cli0..;
#                               the command gets UFO_SERVERS, UFO_SECRET_FILE
#        scripts/testbed.sh link HOST down|up      the host loses its link
#        scripts/testbed.sh env                    export lines for a shell
#        scripts/testbed.sh status | down
# Every command takes --name NAME first (default tb) for several testbeds
# side by side.  State (secret, server data and logs, pids) lives in
# ${UFO_TESTBED_DIR:-/tmp/ufo-testbed}/NAME; `down` stops the servers,
# deletes the namespaces and the state.
# Hosts: servers at 10.77.0.10+i:7070, clients at 10.77.0.100+i; every
# host's eth0 is shaped on egress, so a round trip crosses two delays.
set -euo pipefail

src=$(realpath "$(dirname "$0")/..")
name=tb
if [ "${1:-}" = "--name" ]; then name=$2; shift 2; fi
state=${UFO_TESTBED_DIR:-/tmp/ufo-testbed}/$name
ns_prefix=ufo-$name
subnet=10.77.0
port=7070

die() { echo "testbed: $*" >&2; exit 1; }
ns() { echo "$ns_prefix-$1"; }
host_ip() { # HOST
	case $1 in
	srv*) echo "$subnet.$((10 + ${1#srv}))" ;;
	cli*) echo "$subnet.$((100 + ${1#cli}))" ;;
	*) die "no host $1 (srv0.., cli0..)" ;;
	esac
}
setting() { sed -n "s/^$1=//p" "$state/testbed.conf" 2>/dev/null; }

# ---------------------------------------------------------------- network

add_host() { # HOST: its namespace, eth0 with its address, a switch port
	local n; n=$(ns "$1")
	ip netns add "$n"
	ip -n "$n" link set lo up
	ip -n "$(ns sw)" link add "p-$1" type veth peer name eth0 netns "$n"
	ip -n "$(ns sw)" link set "p-$1" master br0 up
	ip -n "$n" addr add "$(host_ip "$1")/24" dev eth0
	ip -n "$n" link set eth0 up
}

# Shapes HOST's egress.  netem gives delay and rate; without it (a kernel
# built without CONFIG_NET_SCH_NETEM, or no module) tbf gives the rate
# alone.  Prints what was applied.
shape() { # HOST DELAY_US RATE
	local n err; n=$(ns "$1")
	[ "$3" = none ] && [ "$2" = 0 ] && { echo "none (asked for none)"; return; }
	if err=$(tc -n "$n" qdisc replace dev eth0 root netem \
		${2:+delay "$2"us} ${3:+rate "$3"} 2>&1); then
		echo "netem delay ${2}us rate $3 on every host's egress"
	elif [ "$3" != none ] && tc -n "$n" qdisc replace dev eth0 root tbf \
		rate "$3" burst 1mb latency 10ms 2>/dev/null; then
		echo "tbf rate $3 only: no netem here (${err//$'\n'/ }), so no delay"
	else
		echo "none: no netem (${err//$'\n'/ }) and no tbf"
	fi
}

# ---------------------------------------------------------------- servers

server_bin() { # FLAG
	local b=${1:-${UFO_SERVER:-$src/build/server/ufo-server}}
	[ -x "$b" ] || die "no ufo-server at $b (--server-bin, or \$UFO_SERVER)"
	realpath "$b"
}

start_server() { # INDEX BIN
	local h=srv$1 d=$state/srv$1
	mkdir -p "$d/data"
	ip netns exec "$(ns "$h")" "$2" --listen "$(host_ip "$h"):$port" \
		--data "$d/data" --secret-file "$state/secret" \
		>"$d/out" 2>"$d/log" &
	echo $! >"$d/pid"
	for _ in $(seq 100); do
		grep -q '^listening on' "$d/out" 2>/dev/null && return 0
		kill -0 "$(cat "$d/pid")" 2>/dev/null || break
		sleep 0.1
	done
	cat "$d/log" >&2
	die "ufo-server in $h did not start"
}

stop_servers() {
	local pids=() p
	for f in "$state"/srv*/pid; do
		[ -f "$f" ] && p=$(cat "$f") && kill -TERM "$p" 2>/dev/null && pids+=("$p")
	done
	for _ in $(seq 50); do
		for i in "${!pids[@]}"; do
			kill -0 "${pids[$i]}" 2>/dev/null || unset "pids[$i]"
		done
		[ ${#pids[@]} -eq 0 ] && return 0
		sleep 0.1
	done
	kill -KILL "${pids[@]}" 2>/dev/null || true
}

# ---------------------------------------------------------------- commands

cmd_up() {
	local nsrv=3 ncli=2 delay=25 rate=10gbit bin='' servers='' shaping
	while [ $# -gt 0 ]; do
		case $1 in
		--servers) nsrv=$2 ;; --clients) ncli=$2 ;;
		--delay-us) delay=$2 ;; --rate) rate=$2 ;;
		--server-bin) bin=$2 ;;
		*) die "up: unknown option $1" ;;
		esac
		shift 2
	done
	[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces)"
	ip netns list | grep -q "^$ns_prefix-" && die "testbed $name is up already (down first)"
	bin=$(server_bin "$bin")
	trap 'echo "testbed: up failed; tearing down" >&2; cmd_down' ERR
	mkdir -p "$state"
	(umask 077; head -c 32 /dev/urandom | base64 >"$state/secret")
	ip netns add "$(ns sw)"
	ip -n "$(ns sw)" link add br0 type bridge
	ip -n "$(ns sw)" link set br0 up
	for i in $(seq 0 $((nsrv - 1))); do add_host "srv$i"; done
	for i in $(seq 0 $((ncli - 1))); do add_host "cli$i"; done
	for h in $(hosts); do shaping=$(shape "$h" "$delay" "$rate"); done
	for i in $(seq 0 $((nsrv - 1))); do
		start_server "$i" "$bin"
		servers=${servers:+$servers,}$(host_ip "srv$i"):$port
	done
	trap - ERR
	printf 'servers=%s\nclients=%s\nshaping=%s\nUFO_SERVERS=%s\n' \
		"$nsrv" "$ncli" "$shaping" "$servers" >"$state/testbed.conf"
	cmd_status
}

hosts() {
	ip netns list | sed -n "s/^$ns_prefix-\(srv[0-9]*\|cli[0-9]*\)\b.*/\1/p" | sort
}

cmd_status() {
	[ -f "$state/testbed.conf" ] || die "testbed $name is not up"
	echo "testbed $name: $(setting servers) servers, $(setting clients) clients"
	echo "shaping: $(setting shaping)"
	for h in $(hosts); do
		printf '  %-5s %-12s netns %-16s link %s\n' "$h" "$(host_ip "$h")" \
			"$(ns "$h")" "$(ip -n "$(ns "$h")" -br link show eth0 | awk '{print $2}')"
	done
	echo "UFO_SERVERS=$(setting UFO_SERVERS)"
	echo "UFO_SECRET_FILE=$state/secret"
}

cmd_env() {
	echo "export UFO_SERVERS=$(setting UFO_SERVERS)"
	echo "export UFO_SECRET_FILE=$state/secret"
}

cmd_exec() { # HOST COMMAND...
	local h=$1; shift
	ip netns list | grep -q "^$(ns "$h")\b" || die "no host $h in testbed $name"
	exec ip netns exec "$(ns "$h")" env UFO_SERVERS="$(setting UFO_SERVERS)" \
		UFO_SECRET_FILE="$state/secret" "$@"
}

cmd_link() { # HOST up|down
	[ "$2" = up ] || [ "$2" = down ] || die "link: up or down"
	ip -n "$(ns "$1")" link set eth0 "$2"
	echo "testbed $name: $1 ($(host_ip "$1")) link $2"
}

cmd_down() {
	stop_servers
	for n in $(ip netns list | awk -v p="$ns_prefix-" 'index($1, p) == 1 {print $1}'); do
		ip netns del "$n"
	done
	rm -rf "$state"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
up) cmd_up "$@" ;;
down) cmd_down ;;
status) cmd_status ;;
env) cmd_env ;;
exec) [ $# -ge 2 ] || die "exec HOST COMMAND..."; cmd_exec "$@" ;;
link) [ $# -eq 2 ] || die "link HOST up|down"; cmd_link "$@" ;;
*) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
esac
