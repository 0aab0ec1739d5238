#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang under ASan+UBSan and
# runs each for a bounded time, starting from its seed corpus in
# tests/fuzz/<target>/.  Fails on any finding: a crash, an ASan or UBSan
# report, a leak, a timeout (one input over FUZZ_TIMEOUT s), or an input
# over FUZZ_RSS_MB of memory.  The input that did it is kept in
# build-fuzz/findings/, with the command that replays it.
#
# Usage: scripts/fuzz.sh [TARGET...]          (default: every target)
#   FUZZ_SECONDS   run time per target (default 60)
#   FUZZ_JOBS      targets run at the same time (default 2)
#   FUZZ_BUILD     build directory (default build-fuzz)
# Inputs a run finds are kept in $FUZZ_BUILD/corpus/<target>/ (not in the
# tree); the seeds are never modified.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-2}
build=${FUZZ_BUILD:-build-fuzz}
timeout_s=${FUZZ_TIMEOUT:-25}
rss_mb=${FUZZ_RSS_MB:-2048}
all=(fuzz_frame fuzz_codec fuzz_hs fuzz_handshake fuzz_request fuzz_config
	fuzz_monitor)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

command -v clang >/dev/null || { echo "fuzz: clang not installed (scripts/deps.sh installs it)"; exit 1; }
if [ ! -d "$build" ]; then
	CC=clang meson setup "$build" -Dfuzz=true -Dtests=false \
		-Db_sanitize=address,undefined -Db_lundef=false \
		-Drdma=disabled >/dev/null
fi
built=()
for t in "${targets[@]}"; do
	[ -f "tests/fuzz/$t.c" ] || [ "$t" = fuzz_handshake ] || [ "$t" = fuzz_request ] ||
		{ echo "fuzz: no target $t"; exit 1; }
	built+=("tests/fuzz/$t")
done
ninja -C "$build" "${built[@]}" >/dev/null 2>"$build/ninja.err" ||
	{ cat "$build/ninja.err"; exit 1; }

# The server targets keep their stores here (tmpfs when there is one); a
# crash skips their own cleanup, so the whole directory goes at exit.
shm=/dev/shm
[ -w "$shm" ] || shm=${TMPDIR:-/tmp}
UFO_FUZZ_TMPDIR=$(mktemp -d "$shm/ufo-fuzz.XXXXXX")
export UFO_FUZZ_TMPDIR
trap 'rm -rf "$UFO_FUZZ_TMPDIR"' EXIT

# halt_on_error: UBSan reports are findings, not warnings.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
mkdir -p "$build/findings"

# run_one TARGET: one bounded run; its log in $build/fuzz-TARGET.log.
run_one() {
	local t=$1 exe=$build/tests/fuzz/$1 log=$build/fuzz-$1.log
	local corpus=$build/corpus/$t max_len=65536
	mkdir -p "$corpus"
	# A versioned write of one whole 64 KiB block of the seed object is
	# a frame over 64 KiB (tests/fuzz/fuzz_request/vwrite_*).
	[ "$t" = fuzz_request ] && max_len=200000
	# -close_fd_mask=1: the targets' stdout (config usage text) is noise;
	# libFuzzer and the sanitizers report on stderr.
	"$exe" -max_total_time="$seconds" -timeout="$timeout_s" \
		-rss_limit_mb="$rss_mb" -malloc_limit_mb="$rss_mb" \
		-max_len="$max_len" -print_final_stats=1 -close_fd_mask=1 \
		-artifact_prefix="$build/findings/$t-" \
		"$corpus" "tests/fuzz/$t" >"$log" 2>&1
}

pids=() names=()
for t in "${targets[@]}"; do
	while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 1; done
	echo "fuzz: $t for ${seconds}s"
	run_one "$t" &
	pids+=($!) names+=("$t")
done

failed=0
printf '%-16s %8s %12s %10s %8s  %s\n' target seconds executions exec/s corpus result
for i in "${!pids[@]}"; do
	t=${names[$i]} log=$build/fuzz-${names[$i]}.log rc=0
	wait "${pids[$i]}" || rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
	corp=$(ls "$build/corpus/$t" | wc -l)
	if [ "$rc" -eq 0 ]; then
		res=ok
	else
		res="FINDING (exit $rc, log $log)"
		failed=1
	fi
	printf '%-16s %8s %12s %10s %8s  %s\n' "$t" "$seconds" "${execs:-?}" \
		"${rate:-?}" "$corp" "$res"
done
if [ "$failed" -ne 0 ]; then
	for t in "${names[@]}"; do
		grep -q -E "^(==[0-9]+==ERROR|SUMMARY|.*runtime error)" "$build/fuzz-$t.log" 2>/dev/null &&
			{ echo "---- $t"; grep -E -A30 "ERROR|runtime error" "$build/fuzz-$t.log" | head -60; }
	done
	echo "fuzz: findings in $build/findings/; replay one with"
	echo "  $build/tests/fuzz/TARGET $build/findings/TARGET-crash-..."
	exit 1
fi
