#!/usr/bin/env bash
# Builds libufo and runs every test: the suite in a normal build, then again
# under AddressSanitizer + UndefinedBehaviorSanitizer.
# Usage: scripts/test.sh [--no-sanitizers]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh

run_suite() { # build-dir [meson options...]
	local dir=$1; shift
	if [ ! -d "$dir" ]; then
		meson setup "$dir" "$@" >/dev/null
	fi
	ninja -C "$dir" >/dev/null
	meson test -C "$dir" --print-errorlogs --num-processes 1
}

echo "== test suite (debugoptimized)"
run_suite build

if [ "${1:-}" != "--no-sanitizers" ]; then
	echo "== test suite under ASan + UBSan"
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		run_suite build-asan -Db_sanitize=address,undefined -Db_lundef=false
fi
