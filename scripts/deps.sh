#!/usr/bin/env bash
# Installs the Debian 12 packages libufo needs to build and test.
# Idempotent; skips apt when everything is already there.
set -euo pipefail

PKGS=(build-essential meson ninja-build pkg-config python3 libcmocka-dev libxxhash-dev libsodium-dev)
# The HTTP monitor (libmicrohttpd, Chart.js embedded at build time) and its
# tests: Prometheus scrapes it, headless Chromium loads the dashboard.
PKGS+=(libmicrohttpd-dev libjs-chart.js prometheus chromium)
# Deployment files and docs (suite 'deploy'): systemd-analyze and
# systemd-sysusers for the unit, yamllint, shellcheck, groff and man for
# the man pages, promtool (prometheus, above) for the dashboard queries.
PKGS+=(systemd yamllint python3-yaml shellcheck groff-base man-db)
# The RDMA transport (rdma-core) and its suite: a QEMU guest (TCG) with
# Soft-RoCE, built from busybox-static and Debian's kernel package, which
# tests/rdma/guest.sh downloads into a cache, never installs.
PKGS+=(libibverbs-dev librdmacm-dev ibverbs-providers rdmacm-utils ibverbs-utils
       qemu-system-x86 busybox-static kmod cpio iproute2)

# Fuzzing (scripts/fuzz.sh): clang and its libFuzzer runtime
# (libclang_rt.fuzzer ships in libclang-rt-14-dev on Debian 12).
PKGS+=(clang libclang-rt-14-dev)
# Optional TLS (GnuTLS) and the tool its test makes certificates with.
PKGS+=(libgnutls28-dev openssl)
# bench-remote's redis peer (GET/SET per chunk with hiredis against a
# redis-server it starts): without them its redis rows print "skipped".
PKGS+=(redis-server libhiredis-dev)
# The clustered k-means example under Open MPI (ufo-kmeans-mpi; suite
# 'apps' runs it with mpirun) and the Python binding's test and example
# (python/ufo.py maps remote objects as numpy arrays; ctypes is in python3).
PKGS+=(openmpi-bin libopenmpi-dev python3-numpy)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
