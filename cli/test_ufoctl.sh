#!/bin/sh
# SPDX-License-Identifier: MIT
#
# End-to-end test of ufoctl against a real ufo-server on loopback.
#
#   test_ufoctl.sh UFOCTL UFO_SERVER
#
# Starts the server on 127.0.0.1:0 with a temporary data directory and
# secret, then runs every command, the error paths (wrong secret, unknown
# object, bad arguments) and checks exit statuses (0 ok, 1 failed, 2 usage)
# and messages.  Exits 0 on success, 1 with the failing step and the server
# log on failure, 77 (skip) when the server binary is missing.
set -u

UFOCTL=${1:?usage: test_ufoctl.sh UFOCTL UFO_SERVER}
SERVER=${2:?usage: test_ufoctl.sh UFOCTL UFO_SERVER}
START_TIMEOUT_S=10

if [ ! -x "$SERVER" ]; then
	echo "SKIP: no ufo-server at $SERVER"
	exit 77
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/test_ufoctl.XXXXXX") || exit 1
SERVER_PID=
cleanup() {
	if [ -n "$SERVER_PID" ]; then
		kill "$SERVER_PID" 2>/dev/null
		wait "$SERVER_PID" 2>/dev/null
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# fail, run, expect
. "$(dirname "$0")/test_lib.sh"

# ---------------------------------------------------------------- setup

mkdir "$TMP/data"
(umask 077 && head -c 48 /dev/urandom | od -An -tx1 | tr -d ' \n' \
	>"$TMP/secret") || fail "cannot write the secret"
(umask 077 && echo "not-the-right-secret-at-all" >"$TMP/wrong-secret")

"$SERVER" --listen 127.0.0.1:0 --data "$TMP/data" \
	--secret-file "$TMP/secret" >"$TMP/server.log" 2>&1 &
SERVER_PID=$!

ADDR=
i=0
while [ $i -lt $((START_TIMEOUT_S * 10)) ]; do
	ADDR=$(sed -n 's/.*listening on \([^ ]*:[0-9][0-9]*\).*/\1/p' \
		"$TMP/server.log" | head -n 1)
	[ -n "$ADDR" ] && break
	kill -0 "$SERVER_PID" 2>/dev/null || fail "ufo-server exited"
	sleep 0.1
	i=$((i + 1))
done
[ -n "$ADDR" ] || fail "ufo-server did not say 'listening on' within" \
	"${START_TIMEOUT_S}s"
echo "server at $ADDR"

export UFO_SERVER="ufo://$ADDR"
export UFO_SECRET_FILE="$TMP/secret"

# ---------------------------------------------------------------- usage

run 0 --help
expect out "Usage: ufoctl"
run 0 put --help
expect out "put LOCALFILE NAME"
run 0 help get
expect out "get NAME LOCALFILE"
run 2
run 2 frobnicate
expect err "unknown command"
run 2 create alpha 12Q
expect err "bad size '12Q'"
run 2 create alpha 0
run 2 create alpha
run 2 create 'bad/name' 1M
expect err "bad object name"
run 2 create alpha 1M --chunk
run 2 list --no-such-option
run 2 --timeout soon list

# ------------------------------------------------------ create/list/stat

run 0 create alpha 8M --chunk 256K
run 1 create alpha 8M
expect err "create 'alpha'.*File exists"
run 0 stat alpha
expect out "^name: +alpha$"
expect out "^size: +8388608 \(8\.0M\)$"
expect out "^chunk: +262144 "
run 0 list
expect out "^NAME +SIZE +CHUNK +ALLOCATED +MTIME$"
expect out "^alpha +8\.0M +256\.0K "
run 0 list --bytes
expect out "^alpha +8388608 +262144 "

# ------------------------------------------------------- put/get round trip

head -c $((20 << 20)) /dev/urandom >"$TMP/random" || fail "no random file"
run 0 put "$TMP/random" beta
expect err "put beta: 20\.0M in"
run 0 stat beta
expect out "^size: +20971520 "
run 0 get beta "$TMP/random.back"
cmp "$TMP/random" "$TMP/random.back" || fail "get beta differs from put"
run 0 -q get beta -
cmp "$TMP/random" "$TMP/out" || fail "get beta - (to a file) differs"
"$UFOCTL" -q get beta - | cmp - "$TMP/random" || fail "get beta - | differs"

# quiet, and a size that is no multiple of the 4 MiB piece
head -c 777 /dev/urandom >"$TMP/odd"
run 0 --quiet put "$TMP/odd" odd
[ -s "$TMP/err" ] && fail "--quiet put wrote to stderr"
run 0 -q get odd "$TMP/odd.back"
cmp "$TMP/odd" "$TMP/odd.back" || fail "get odd differs from put"

# an object that is mostly zeros comes back whole, and sparse
{ head -c 65536 /dev/urandom; head -c $((12 << 20)) /dev/zero;
  head -c 4096 /dev/urandom; } >"$TMP/holey"
run 0 put "$TMP/holey" holey
run 0 get holey "$TMP/holey.back"
cmp "$TMP/holey" "$TMP/holey.back" || fail "get holey differs from put"
used=$(($(stat -c %b "$TMP/holey.back") * $(stat -c %B "$TMP/holey.back")))
[ "$used" -lt $((4 << 20)) ] ||
	echo "note: $TMP/holey.back uses $used bytes; no holes here?"
run 0 --quiet get holey "$TMP/holey.full" --no-sparse
cmp "$TMP/holey" "$TMP/holey.full" || fail "get --no-sparse differs"

# ------------------------------------------------------ put into existing

run 1 put --create "$TMP/random" beta
expect err "File exists"
run 1 put "$TMP/random" alpha
expect err "larger than object 'alpha'"
run 0 put "$TMP/odd" beta
expect err "warning: .*smaller than object 'beta'"
run 0 get beta "$TMP/beta.back"
cmp -n 777 "$TMP/odd" "$TMP/beta.back" || fail "beta does not start with odd"
cmp -i 777 "$TMP/random" "$TMP/beta.back" || fail "rest of beta changed"
run 0 put --create --chunk 64K "$TMP/odd" gamma
run 0 stat gamma
expect out "^chunk: +65536 "
run 0 sync gamma
run 1 put "$TMP/no-such-file" delta
expect err "open .*no-such-file: No such file or directory"

# ------------------------------------------------------- unknown objects

run 1 stat nosuch
expect err "no object 'nosuch'.*No such file or directory"
run 1 get nosuch "$TMP/nosuch"
[ -e "$TMP/nosuch" ] && fail "get of an unknown object left a file"
run 1 delete nosuch
expect err "nosuch.*No such file or directory"
run 1 sync nosuch

# ----------------------------------------------------- connection errors

run 1 --secret-file "$TMP/wrong-secret" list
expect err "authentication failed.*secret-file"
run 1 --secret-file "$TMP/no-such-secret" list
expect err "secret file"
run 1 --server "ufo://127.0.0.1:1" --timeout 2000 list
expect err "cannot reach server.*Connection refused"

# ---------------------------------------------------------------- delete

for name in alpha beta odd holey gamma; do
	run 0 delete "$name"
done
run 0 list
grep -Eq '^(alpha|beta|odd|holey|gamma) ' "$TMP/out" &&
	fail "deleted objects still listed"
run 1 stat alpha

echo "ok: every ufoctl command passed"
exit 0
