#!/bin/sh
# SPDX-License-Identifier: MIT
#
# End-to-end test of ufoctl's cluster commands against ufo-servers on
# loopback.
#
#   test_ufoctl_cluster.sh UFOCTL UFO_SERVER TEST_CLUSTER_DATA
#
# Starts 3 servers sharing one secret, each with its own data directory,
# creates a replicated object (ufoctl create --replicas 2: R = W = 2, 32
# groups) and fills it with test-cluster-data.  Then: one server killed,
# status degraded, the object rewritten, a repair that cannot finish
# (exit 3); the server restarted, status shows the backlog, repair, status
# healthy, the data readable with another server down.  Then a 4th server:
# rebalance --dry-run, rebalance, status healthy with the new server
# holding the object, the data intact.  Exits 0 on success, 1 with the
# failing step and the server logs on failure, 77 (skip) when the server
# binary is missing or userfaultfd is refused.
set -u

UFOCTL=${1:?usage: test_ufoctl_cluster.sh UFOCTL UFO_SERVER TEST_CLUSTER_DATA}
SERVER=${2:?usage: test_ufoctl_cluster.sh UFOCTL UFO_SERVER TEST_CLUSTER_DATA}
DATA=${3:?usage: test_ufoctl_cluster.sh UFOCTL UFO_SERVER TEST_CLUSTER_DATA}
START_TIMEOUT_S=10
NGROUPS=32  # 8M object / 256K groups

if [ ! -x "$SERVER" ]; then
	echo "SKIP: no ufo-server at $SERVER"
	exit 77
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/test_ufoctl_cluster.XXXXXX") || exit 1
cleanup() {
	for i in 1 2 3 4; do
		eval "pid=\${PID_$i:-}"
		if [ -n "$pid" ]; then
			kill "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
		fi
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# fail, run, expect
. "$(dirname "$0")/test_lib.sh"

# data fill|check SEED [SERVERS]: test-cluster-data on the object.
data() {
	UFO_SERVERS=${3:-$UFO_SERVERS} "$DATA" "$1" obj "$2" \
		>"$TMP/out" 2>"$TMP/err"
	got=$?
	[ "$got" -eq 77 ] && { echo "SKIP: no userfaultfd"; exit 77; }
	[ "$got" -eq 0 ] || fail "test-cluster-data $1 obj $2 exited $got"
}

# start_server I [PORT]: starts server I (data dir $TMP/dataI) on PORT, or
# any free port the first time, and sets PORT_I and PID_I.
start_server() {
	log="$TMP/server$1.log"
	[ -e "$log" ] && mv "$log" "$log.$(date +%s%N)"
	mkdir -p "$TMP/data$1"
	: >"$log"
	"$SERVER" --listen "127.0.0.1:${2:-0}" --data "$TMP/data$1" \
		--secret-file "$TMP/secret" >>"$log" 2>&1 &
	eval "PID_$1=$!"
	addr=
	n=0
	while [ $n -lt $((START_TIMEOUT_S * 10)) ]; do
		addr=$(sed -n 's/.*listening on \([^ ]*:[0-9][0-9]*\).*/\1/p' \
			"$log" | head -n 1)
		[ -n "$addr" ] && break
		eval "kill -0 \$PID_$1" 2>/dev/null ||
			fail "ufo-server $1 exited"
		sleep 0.1
		n=$((n + 1))
	done
	[ -n "$addr" ] || fail "ufo-server $1 did not say 'listening on'"
	eval "PORT_$1=${addr##*:}"
}

# kill_server I: SIGKILL, as a crash.
kill_server() {
	eval "pid=\$PID_$1"
	kill -KILL "$pid" && wait "$pid" 2>/dev/null
	eval "PID_$1="
}

# status_line I STATE: the pattern of server I's line in cluster status
# (a server down since the command started has no node id yet).
status_line() {
	eval "echo \"^127\\.0\\.0\\.1:\$PORT_$1 +([0-9a-f]{32}|-) +$2 \""
}

# ---------------------------------------------------------------- setup

(umask 077 && head -c 48 /dev/urandom | od -An -tx1 | tr -d ' \n' \
	>"$TMP/secret") || fail "cannot write the secret"
for i in 1 2 3; do
	start_server $i
done
SERVERS3="127.0.0.1:$PORT_1,127.0.0.1:$PORT_2,127.0.0.1:$PORT_3"
echo "servers at $SERVERS3"
unset UFO_SERVER
export UFO_SERVERS="$SERVERS3"
export UFO_SECRET_FILE="$TMP/secret"

# ---------------------------------------------------------------- usage

UFO_SERVERS= "$UFOCTL" cluster status >"$TMP/out" 2>"$TMP/err"
[ $? -eq 2 ] || fail "cluster status without a list did not exit 2"
expect err "no server list"
run 0 cluster --help
expect out "cluster status \| repair"
run 0 cluster rebalance --help
expect out "rebalance \[--dry-run\] \[NAME\]"
run 2 cluster
expect err "missing command"
run 2 cluster frobnicate
expect err "unknown command 'frobnicate'"
run 2 cluster repair a b
expect err "too many operands"
run 2 cluster status --full
run 2 create obj 8M --write-quorum 2
expect err "need --replicas"
run 2 create obj 8M --replicas 1 --write-quorum 2
expect err "more than --replicas"
run 2 create obj 8M --replicas 0
run 1 --servers 127.0.0.1:1 cluster status
expect err "cannot reach any server of 127.0.0.1:1"

# ------------------------------------------------------- create, status

run 0 cluster status
expect out "^SERVER +NODE ID +STATE +OBJECTS +FAILURES$"
for i in 1 2 3; do
	expect out "$(status_line $i up)"
done
expect out "^replicated objects: +0$"
expect out "^health: +healthy$"

run 0 create obj 8M --chunk 64K --group 256K --replicas 2
run 1 create obj 8M --replicas 2
expect err "create 'obj'.*File exists"
run 1 create other 8M --replicas 4
expect err "--replicas 4, but 3 of the 3 servers"
data fill 1
run 0 cluster status
expect out "^replicated objects: +1$"
expect out "^groups: +$NGROUPS$"
expect out "^missing copies: +0 blocks"
expect out "^health: +healthy$"

# ------------------------------------------- a server down, then back

kill_server 2
run 3 cluster status
expect out "$(status_line 2 down)"
expect out "^health: +degraded \(1 of 3 servers down"
data fill 2  # one home of most groups is down: stand-ins get hints
run 3 cluster repair
expect out "^repair: 1 object, "
expect err "groups could not be repaired.*down now: 127\.0\.0\.1:$PORT_2"
run 3 cluster rebalance
expect err "needs every server of the list up; down: 127\.0\.0\.1:$PORT_2"

start_server 2 "$PORT_2"
run 3 cluster status
expect out "$(status_line 2 up)"
expect out "^missing copies: +[1-9][0-9]* blocks"
expect out "^stray copies: +[1-9][0-9]* blocks"
expect out "^recorded hints: +[1-9]"
expect out "^health: +degraded \(repair backlog\)$"
run 0 cluster repair
expect out "^repair: 1 object, ([0-9]+)/\1 groups repaired, [1-9][0-9]* blocks copied"
expect err "^repair: [0-9]+ groups in "
run 0 cluster status
expect out "^missing copies: +0 blocks"
expect out "^stray copies: +0 blocks"
expect out "^recorded hints: +0$"
expect out "^health: +healthy$"
run 0 cluster repair --full obj
expect out "^repair: 1 object, $NGROUPS/$NGROUPS groups repaired, 0 blocks"
run 1 cluster repair nosuch
expect err "no replicated object 'nosuch'"

# Every group has two good copies: the data reads back without server 1.
kill_server 1
data check 2
start_server 1 "$PORT_1"

# ------------------------------------------------- a 4th server: rebalance

start_server 4
SERVERS4="$SERVERS3,127.0.0.1:$PORT_4"
run 0 --servers "$SERVERS4" cluster status
expect out "$(status_line 4 up) +0 "
expect out "^health: +healthy$"
run 0 --servers "$SERVERS4" cluster rebalance --dry-run
expect out "^rebalance: would move [1-9][0-9]* of $NGROUPS groups \([1-9][0-9]* new replicas\); dry run"
run 0 --servers "$SERVERS4" cluster status
expect out "$(status_line 4 up) +0 "
run 0 --servers "$SERVERS4" cluster rebalance
expect out "^rebalance: moved [1-9][0-9]* of $NGROUPS groups \([1-9][0-9]* new replicas\)$"
expect out "^rebalance: 1 object, $NGROUPS/$NGROUPS groups repaired, [1-9][0-9]* blocks copied .*, [1-9][0-9]* stray copies dropped"
run 0 --servers "$SERVERS4" cluster status
expect out "$(status_line 4 up) +1 "
expect out "^missing copies: +0 blocks"
expect out "^stray copies: +0 blocks"
expect out "^health: +healthy$"
data check 2 "$SERVERS4"
run 0 --servers "$SERVERS4" cluster rebalance obj
expect out "^rebalance: moved 0 of $NGROUPS groups"

echo "ok: ufoctl cluster status, repair and rebalance passed"
exit 0
