#!/usr/bin/env bash
# The systemd files of deploy/systemd:
#  1. systemd-analyze verify passes on the unit, with no diagnostic at all
#     (verify exits 0 on unknown keys and bad values, so any output fails);
#     ExecStart points at the built ufo-server and man:ufo-server(8) must
#     resolve in the source man/ directory;
#  2. systemd-analyze security --offline rates it at most MAX_EXPOSURE;
#  3. systemd-sysusers creates the ufo user from the sysusers.d file in a
#     scratch root;
#  4. the unit's ExecStart, with its specifiers filled in, starts the real
#     ufo-server with the example configuration.
# Usage: check_systemd.sh UNIT SYSUSERS EXAMPLE_CONF UFO_SERVER MAN_DIR
set -euo pipefail
unit=$1 sysusers=$2 example=$3 server=$(realpath "$4") mandir=$5
MAX_EXPOSURE=2.5

for tool in systemd-analyze systemd-sysusers; do
	command -v "$tool" >/dev/null || { echo "skip: $tool not installed (apt-get install systemd)"; exit 77; }
done
tmp=$(mktemp -d)
pid=
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# 1. verify.  A template is verified as an instance (ufo-server@i).
bindir=$(sed -n 's|^ExecStart=\(/[^ ]*\)/ufo-server .*|\1|p' "$unit")
[ -n "$bindir" ] || fail "no 'ExecStart=/.../ufo-server ...' line in $unit"
sed "s|^ExecStart=$bindir/ufo-server|ExecStart=$server|" "$unit" > "$tmp/ufo-server@.service"
out=$(cd "$tmp" && MANPATH=$mandir systemd-analyze verify ./ufo-server@.service 2>&1) ||
	fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify printed diagnostics:
$out"
echo "ok: systemd-analyze verify (ExecStart=$server ...)"

# 2. exposure.
score=$(cd "$tmp" && systemd-analyze security --offline=true ./ufo-server@.service 2>&1 |
	sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || fail "systemd-analyze security printed no exposure level"
awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }' ||
	fail "exposure $score is above $MAX_EXPOSURE: a hardening setting was lost"
echo "ok: systemd-analyze security: exposure $score (at most $MAX_EXPOSURE)"

# 3. sysusers.
mkdir -p "$tmp/root/etc"
systemd-sysusers --root="$tmp/root" "$sysusers" >/dev/null 2>&1 ||
	fail "systemd-sysusers rejected $sysusers"
user=$(sed -n 's/^User=//p' "$unit")
group=$(sed -n 's/^Group=//p' "$unit")
grep -q "^$user:" "$tmp/root/etc/passwd" || fail "sysusers.d creates no user '$user' (the unit's User=)"
grep -q "^$group:" "$tmp/root/etc/group" || fail "sysusers.d creates no group '$group' (the unit's Group=)"
echo "ok: systemd-sysusers creates $user:$group"

# 4. ExecStart with %i, %S, %d and /etc/ufo filled in, on free ports.
exec_line=$(sed -n "s|^ExecStart=$bindir/ufo-server ||p" "$unit")
mkdir -p "$tmp/etc" "$tmp/state" "$tmp/cred"
sed -e 's/^listen = .*/listen = 127.0.0.1:0/' -e 's/^monitor = .*/monitor = 127.0.0.1:0/' \
	"$example" > "$tmp/etc/t.conf"
(umask 077; head -c 32 /dev/urandom | base64 > "$tmp/cred/secret")
args=$(printf '%s' "$exec_line" | sed -e "s|/etc/ufo/|$tmp/etc/|g" -e 's|%i|t|g' \
	-e "s|%S|$tmp/state|g" -e "s|%d|$tmp/cred|g")
case $args in *%*) fail "ExecStart has a specifier this test does not fill in: $args";; esac
mkdir -p "$tmp/state/ufo"
# shellcheck disable=SC2086  # the unit's arguments contain no spaces
"$server" $args > "$tmp/out" 2> "$tmp/err" &
pid=$!
for _ in $(seq 100); do
	grep -q '^listening on' "$tmp/out" 2>/dev/null && break
	kill -0 "$pid" 2>/dev/null || fail "ufo-server $args exited: $(cat "$tmp/err")"
	sleep 0.1
done
grep -q '^listening on' "$tmp/out" || fail "ufo-server $args did not start: $(cat "$tmp/err")"
[ -e "$tmp/state/ufo/t/lock" ] || fail "the data directory is not %S/ufo/%i"
if grep -q 'readable by group' "$tmp/err"; then fail "secret warning: $(cat "$tmp/err")"; fi
kill "$pid"; wait "$pid" || fail "ufo-server did not exit 0 on SIGTERM"
pid=
echo "ok: ExecStart with the example configuration starts ufo-server"
