#!/usr/bin/env bash
# The main job: build libufo and run the flagship example, a computed
# sequence of 64 GiB of doubles summed through a 256 MiB memory budget.
# Usage: scripts/main.sh [example flags, e.g. --size 8G]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null
exec build/examples/ufo-sum-sequence "$@"
