#!/usr/bin/env bash
# Builds libufo and runs every test: the whole suite in a normal build (its
# 'deploy' suite holds the install check and the checks of deploy/, man/
# and the docs), then the suite again under ASan+UBSan and with the library
# and ufo-server under ThreadSanitizer, then the fuzz targets for a bounded
# time (FUZZ_SECONDS, 20 here, per target, two at a time: about 80 s for
# the seven).
# Usage: scripts/test.sh [--quick]   (--quick: the normal build only)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh

dirs=()
# run_suite BUILD-DIR [meson setup options...] [-- meson test options...]
run_suite() {
	local dir=$1 setup=() test=(); shift
	while [ $# -gt 0 ] && [ "$1" != "--" ]; do setup+=("$1"); shift; done
	[ $# -gt 0 ] && shift && test=("$@")
	[ -d "$dir" ] || meson setup "$dir" "${setup[@]}" >/dev/null
	ninja -C "$dir" >/dev/null
	dirs+=("$dir")
	meson test -C "$dir" --print-errorlogs --num-processes 1 "${test[@]}"
}

# One closing line over every suite run: "N passed, N failed, N skipped".
summary() {
	python3 - "${dirs[@]}" <<'PY'
import json, os, sys
n = {"OK": 0, "FAIL": 0, "SKIP": 0}
for d in sys.argv[1:]:
    if not os.path.exists(d + "/meson-logs/testlog.json"):
        continue
    for line in open(d + "/meson-logs/testlog.json"):
        r = json.loads(line)["result"]
        n["OK" if r in ("OK", "EXPECTEDFAIL") else "SKIP" if r == "SKIP" else "FAIL"] += 1
print(f"{n['OK']} passed, {n['FAIL']} failed, {n['SKIP']} skipped")
PY
}
trap summary EXIT

# t_huge needs free 2 MiB huge pages (it skips without); 64 = 128 MiB.
if [ -w /proc/sys/vm/nr_hugepages ] &&
	[ "$(cat /proc/sys/vm/nr_hugepages)" -lt 64 ]; then
	echo 64 >/proc/sys/vm/nr_hugepages || true
fi

echo "== test suite (the rdma suite boots a QEMU guest per program)"
# A machine that cannot build or boot the guest fails here instead of
# skipping quietly: the RDMA transport is tested nowhere else.
UFO_RDMA_REQUIRE=${UFO_RDMA_REQUIRE:-1} run_suite build

[ "${1:-}" = "--quick" ] && exit 0

# Without rdma-core, libmicrohttpd and GnuTLS the stubs answer -EOPNOTSUPP and
# everything else must still build and pass (ufo:// then means TCP).
echo "== build without RDMA and monitor (stubs)"
run_suite build-stubs -Drdma=disabled -Dmonitor=disabled -Dtls=disabled -- --suite core --suite server --suite remote --suite security

# The 'tls' suite (the remote, cluster and security programs again over
# tls://, 150 s here) is left to the normal run, to keep CI under 30
# minutes; under ASan the TLS code is still judged by server_tls (1,000
# connections, pipelined records) and sec_tls.
echo "== test suite under ASan + UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	run_suite build-asan -Db_sanitize=address,undefined -Db_lundef=false \
		-- --no-suite rdma --no-suite deploy --no-suite tls

# TSan cannot see the ordering userfaultfd gives to UFO memory, so only the
# library is instrumented: its locks, queues and counters are what is judged.
# The 'tls' suite is left to the normal run and 'e2e' (the k-means testbed
# and the dashboard in a browser, whole programs) to the normal and ASan
# runs, to keep CI under 30 minutes; the server's TLS connection type is
# still judged here by server_tls (1,000 connections).
echo "== test suite with the library under ThreadSanitizer"
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	run_suite build-tsan -Dtsan_library=true -- --no-suite rdma --no-suite deploy \
		--no-suite tls --no-suite e2e

# Any crash, sanitizer report, leak or timeout a fuzzer finds fails the run.
# 20 s per target here (seven targets, two at a time: about 80 s), to
# keep CI well under 30 minutes; the long runs are scripts/fuzz.sh's
# default (60 s) or more, by hand.
echo "== fuzzing (libFuzzer, ASan+UBSan)"
FUZZ_SECONDS=${FUZZ_SECONDS:-20} scripts/fuzz.sh
