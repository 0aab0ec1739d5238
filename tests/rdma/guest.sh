#!/usr/bin/env bash
# Runs programs inside a QEMU guest that has a Soft-RoCE (rxe) RDMA device,
# so the RDMA transport is tested on machines without RDMA hardware or
# modules.  The guest boots Debian's stock kernel (fetched with
# `apt-get download`, unpacked with `dpkg -x` into a cache, never installed
# on the host) with an initramfs of busybox-static, the RDMA modules, the
# host's rdma-core tools and the shared libraries the programs need.  The
# directories given with --share (the build tree) are mounted over 9p at
# their host paths, so freshly built programs run without rebuilding
# anything.  See tests/rdma/README.md.
#
# Usage:
#   guest.sh run [OPTIONS] -- PROGRAM [ARGS...]   one program, as one test
#   guest.sh job [OPTIONS] JOBFILE                a guest-side job script
#   guest.sh shell [OPTIONS]                      interactive guest shell
#   guest.sh prepare                              fetch and build, no boot
# Options:
#   --share DIR          mount host DIR at the same path in the guest (repeat)
#   --name NAME          test name in result markers (run; default basename)
#   --timeout SECS       outer limit for the whole guest (default 270)
#   --test-timeout SECS  limit per program in the guest (default 240)
#   --bin FILE           also copy FILE and its libraries in (repeat)
#
# Exit status (meson's convention): 0 every program passed (or some passed
# and the rest skipped), 77 skipped (the guest cannot be built or booted
# here, or every program skipped), 1 anything else.
#
# Environment:
#   UFO_RDMA_CACHE       cache directory (default $XDG_CACHE_HOME/ufo-rdma,
#                        else ~/.cache/ufo-rdma)
#   UFO_RDMA_KERNEL_PKG  kernel package (default: what linux-image-amd64
#                        depends on)
#   UFO_RDMA_REFRESH=1   fetch the kernel again even if one is cached
#   UFO_RDMA_REQUIRE=1   turn every skip into a failure (CI with a guest)
#   UFO_RDMA_ACCEL       QEMU accelerator (default tcg)
#   UFO_RDMA_PASS_ENV    extra variable names passed into the guest
#   UFO_*, *SAN_OPTIONS  passed into the guest as they are
set -euo pipefail

readonly SCRIPT=$(readlink -f "${BASH_SOURCE[0]}")
readonly CACHE=${UFO_RDMA_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/ufo-rdma}
readonly REQUIRE=${UFO_RDMA_REQUIRE:-0}
readonly ACCEL=${UFO_RDMA_ACCEL:-tcg}
# Address of the guest's RDMA netdev: rdmacm on rxe over `lo` fails route
# resolution, so rxe sits on a dummy netdev with this address.
readonly GUEST_ADDR=10.0.2.15
# isa-debug-exit turns the byte the guest writes to port 0xf4 into qemu's
# exit status (byte << 1) | 1: /init writes 0x10 for a pass (33), 0x26 for
# a skip (77) and 0x01 for a failure (3).
readonly EXIT_PASS=33 EXIT_SKIP=77
# Modules the guest loads, with their dependencies resolved by modprobe.
readonly MODULES="rdma_rxe ib_uverbs rdma_ucm configfs crc32_generic dummy
	virtio_pci 9pnet_virtio 9p"

log() { echo "ufo-rdma: $*" >&2; }
# An environment that cannot host the guest skips, unless UFO_RDMA_REQUIRE.
skip() {
	log "SKIP: $*"
	[ "$REQUIRE" = 1 ] && { log "UFO_RDMA_REQUIRE=1: failing instead"; exit 1; }
	exit 77
}
fail() { log "FAIL: $*"; exit 1; }

# ---- fetching the kernel ----------------------------------------------------

APT_OPTS=()
# On a fresh machine the host's package lists may be missing or stale: the
# retry refreshes private lists in the cache, leaving the host's apt state
# alone.
apt_private_lists() {
	mkdir -p "$CACHE/apt/lists/partial" "$CACHE/apt/cache/archives/partial"
	APT_OPTS=(-o "Dir::State::Lists=$CACHE/apt/lists"
		-o "Dir::Cache=$CACHE/apt/cache")
	log "refreshing package lists into $CACHE/apt"
	apt-get "${APT_OPTS[@]}" -q update >&2 || return 1
}

# Prints the real kernel package behind the linux-image-amd64 metapackage.
kernel_package() {
	if [ -n "${UFO_RDMA_KERNEL_PKG:-}" ]; then
		echo "$UFO_RDMA_KERNEL_PKG"
		return
	fi
	apt-cache "${APT_OPTS[@]}" depends linux-image-amd64 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}

# Downloads package $1 into $CACHE/debs; prints the .deb's path.
download_deb() {
	local pkg=$1 deb
	mkdir -p "$CACHE/debs"
	(cd "$CACHE/debs" && apt-get "${APT_OPTS[@]}" -q download "$pkg" >&2) ||
		return 1
	deb=$(ls -t "$CACHE/debs/${pkg}_"*.deb 2>/dev/null | head -n 1)
	[ -n "$deb" ] && echo "$deb"
}

# Unpacks a kernel .deb into $CACHE/kernel/NAME and builds its modules.dep
# (the package ships none); the finished tree is renamed into place, so an
# interrupted run leaves nothing half made.
unpack_kernel() {
	local deb=$1 dir tmp version
	dir=$CACHE/kernel/$(basename "$deb" .deb)
	tmp=$dir.tmp.$$
	rm -rf "$tmp"
	mkdir -p "$tmp"
	dpkg -x "$deb" "$tmp" || { rm -rf "$tmp"; return 1; }
	version=$(ls "$tmp/lib/modules" | head -n 1)
	[ -n "$version" ] && [ -f "$tmp/boot/vmlinuz-$version" ] ||
		{ rm -rf "$tmp"; log "$deb holds no kernel"; return 1; }
	depmod -b "$tmp" "$version" || { rm -rf "$tmp"; return 1; }
	echo "$version" >"$tmp/.version"
	rm -rf "$dir"
	mv "$tmp" "$dir"
	ln -sfn "$(basename "$dir")" "$CACHE/kernel/current"
	# Only the unpacked tree is used from now on; older kernels go.
	find "$CACHE/kernel" -mindepth 1 -maxdepth 1 -type d ! -name "$(basename "$dir")" \
		-exec rm -rf {} +
	rm -f "$deb"
}

# Makes $CACHE/kernel/current a ready kernel tree: the cached one, else a
# fresh download (retried once over refreshed package lists).
fetch_kernel() {
	local pkg deb
	if [ -f "$CACHE/kernel/current/.version" ] && [ "${UFO_RDMA_REFRESH:-0}" != 1 ]; then
		return 0
	fi
	command -v apt-get >/dev/null || skip "no kernel cached in $CACHE and no apt-get to fetch one"
	pkg=$(kernel_package || true)
	if [ -z "$pkg" ] || ! deb=$(download_deb "$pkg"); then
		log "apt-get download ${pkg:-linux-image-amd64} failed; retrying once"
		apt_private_lists || log "apt-get update failed"
		pkg=$(kernel_package || true)
		[ -n "$pkg" ] || skip "cannot resolve linux-image-amd64 to a kernel package (apt-cache depends)"
		deb=$(download_deb "$pkg") || skip "apt-get download $pkg failed twice"
	fi
	log "unpacking $(basename "$deb") into $CACHE/kernel"
	unpack_kernel "$deb" || fail "cannot unpack $deb"
}

# ---- the base initramfs -----------------------------------------------------

# Prints the libraries ELF files "$@" load, as ldd resolves them.
ldd_libs() {
	local f
	for f in "$@"; do
		ldd "$f" 2>/dev/null | awk '
			$2 == "=>" && $3 ~ /^\// { print $3; next }
			$1 ~ /^\// { print $1 }
			$2 == "=>" && $3 == "not" { print "missing " $1 > "/dev/stderr" }'
	done | sort -u
}

is_elf() { [ -f "$1" ] && [ "$(head -c 4 "$1" | od -An -c | tr -d ' ')" = '177ELF' ]; }

# Copies host file $2 into tree $1 at the same path (dereferenced, below the
# real directory, so /lib/x/libc.so.6 lands in usr/lib/x beside the
# lib -> usr/lib symlink the tree mirrors).
copy_at_host_path() {
	local tree=$1 file=$2 dir
	dir=$(readlink -f "$(dirname "$file")")
	mkdir -p "$tree$dir"
	cp -L "$file" "$tree$dir/$(basename "$file")"
}

# Copies ELF files "$@" and their libraries into tree $1, skipping what lies
# below the shared directories in SHARES (mounted over 9p instead).
copy_with_libs() {
	local tree=$1 f s under
	shift
	for f in "$@" $(ldd_libs "$@"); do
		under=
		for s in "${SHARES[@]}"; do
			case $(readlink -f "$f") in "$s"/*) under=1 ;; esac
		done
		[ -n "$under" ] || copy_at_host_path "$tree" "$f"
	done
}

# Host programs the guest needs: iproute2's rdma for `rdma link add`, and
# rdma-core's tools for the smoke test.
host_tools() {
	local t
	for t in rdma ibv_devices ibv_devinfo ibv_rc_pingpong rping; do
		command -v "$t" || skip "host program $t not found (packages iproute2, ibverbs-utils, rdmacm-utils)"
	done
}

# The rxe provider and what ldd cannot see: libibverbs dlopens the provider
# named in /etc/libibverbs.d, and glibc dlopens libgcc_s for pthread_exit.
host_dlopened() {
	local rxe gcc_s
	rxe=$(ls /usr/lib/*/libibverbs/librxe-rdmav*.so 2>/dev/null | head -n 1)
	[ -n "$rxe" ] || skip "rxe provider librxe-rdmav*.so not found (package ibverbs-providers)"
	[ -f /etc/libibverbs.d/rxe.driver ] || skip "/etc/libibverbs.d/rxe.driver not found (package ibverbs-providers)"
	gcc_s=$(ldconfig -p | awk '/libgcc_s\.so\.1 .*x86-64/ { print $NF; exit }')
	[ -n "$gcc_s" ] || skip "libgcc_s.so.1 not found"
	echo "$rxe"
	echo "$gcc_s"
}

# Prints "path args" lines: the modules to insmod, in load order.
module_order() {
	local kdir=$1 version=$2 noconf m
	noconf=$(mktemp -d)
	# -C: the host's /etc/modprobe.d must not add options (numdummies=0).
	for m in $MODULES; do
		modprobe -C "$noconf" -d "$kdir" -S "$version" --show-depends "$m"
	done | awk -v root="$kdir/lib/modules/$version/" '
			$1 == "insmod" && !seen[$2]++ {
				sub(root, "", $2); print $2 }'
	rmdir "$noconf"
}

# Writes the guest's /init into $1.
write_init() {
	cat >"$1" <<'INIT'
#!/bin/sh
# PID 1 of the RDMA test guest (written by tests/rdma/guest.sh).  Sets up
# rxe0 on dummy0, sources /job.sh, reports through marker lines and powers
# off through isa-debug-exit.
export PATH=/usr/sbin:/usr/bin:/bb HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /tmp /run /root
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
echo 4 >/proc/sys/kernel/printk
ulimit -l unlimited
ulimit -c 0
echo
echo "UFO-RDMA-BOOT $(uname -r)"

ufo_npass=0 ufo_nskip=0 ufo_nfail=0

# ufo_exit pass|skip|fail: the summary marker, then power off.
ufo_exit() {
	echo
	echo "UFO-RDMA-SUMMARY $1 pass=$ufo_npass skip=$ufo_nskip fail=$ufo_nfail"
	sync
	case $1 in
	pass) b='\020' ;;
	skip) b='\046' ;;
	*) b='\001' ;;
	esac
	printf "$b" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
	poweroff -f
}
ufo_setup_fail() {
	echo
	echo "UFO-RDMA-SETUP-FAIL $*"
	dmesg | tail -n 30
	ufo_nfail=1
	ufo_exit fail
}

# ufo_record NAME RC [required]: the result marker; 77 is a skip unless the
# test is required.
ufo_record() {
	echo
	echo "UFO-RDMA-RESULT $1 $2"
	case $2 in
	0) ufo_npass=$((ufo_npass + 1)) ;;
	77) if [ -n "$3" ]; then ufo_nfail=$((ufo_nfail + 1)); else ufo_nskip=$((ufo_nskip + 1)); fi ;;
	*) ufo_nfail=$((ufo_nfail + 1)) ;;
	esac
}

# ufo_test [-r] NAME SECS PROGRAM [ARGS...]: runs one program with its own
# time limit; -r: a skip (77) counts as a failure.
ufo_test() {
	local req= name secs rc
	[ "$1" = -r ] && { req=1; shift; }
	name=$1 secs=$2
	shift 2
	echo "UFO-RDMA-START $name: $*"
	timeout -s KILL "$secs" "$@" </dev/null
	rc=$?
	ufo_record "$name" "$rc" "$req"
}

# ufo_bg NAME SECS PROGRAM [ARGS...]: starts a program in the background;
# ufo_wait NAME collects its result.  NAME must be a shell identifier.
ufo_bg() {
	local name=$1 secs=$2
	shift 2
	echo "UFO-RDMA-START $name (background): $*"
	timeout -s KILL "$secs" "$@" </dev/null &
	eval "ufo_pid_$name=$!"
}
ufo_wait() {
	local pid
	eval "pid=\$ufo_pid_$1"
	wait "$pid"
	ufo_record "$1" $? "$2"
}

# ufo_wait_port PORT SECS: waits until a TCP port listens.
ufo_wait_port() {
	local i=0
	while ! netstat -ltn 2>/dev/null | grep -q ":$1 "; do
		i=$((i + 1))
		[ "$i" -gt $(($2 * 5)) ] && return 1
		usleep 200000
	done
}

# ufo_share TAG PATH: mounts a host directory shared with -virtfs.
ufo_share() {
	mkdir -p "$2"
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 "$1" "$2" ||
		ufo_setup_fail "mount 9p $1 on $2"
}

ufo_done() {
	if [ "$ufo_nfail" -gt 0 ]; then
		ufo_exit fail
	elif [ "$ufo_npass" -gt 0 ]; then
		ufo_exit pass
	else
		ufo_exit skip
	fi
}

while read -r mod args; do
	insmod "/usr/lib/modules/$(cat /etc/ufo-rdma/kernel)/$mod" $args ||
		ufo_setup_fail "insmod $mod"
done </etc/ufo-rdma/modules
mount -t configfs configfs /sys/kernel/config
ip link set lo up || ufo_setup_fail "lo up"
ip link add dummy0 type dummy 2>/dev/null || true
ip link set dummy0 up || ufo_setup_fail "dummy0 up"
ip addr add "$(cat /etc/ufo-rdma/addr)/24" dev dummy0 || ufo_setup_fail "address on dummy0"
rdma link add rxe0 type rxe netdev dummy0 || ufo_setup_fail "rdma link add rxe0"
export UFO_RDMA_ADDR=$(cat /etc/ufo-rdma/addr)
echo "UFO-RDMA-READY rxe0 on dummy0 $UFO_RDMA_ADDR, up $(cut -d' ' -f1 /proc/uptime) s"

. /job.sh
ufo_done
INIT
	chmod 755 "$1"
}

# Builds (or reuses) the base initramfs for the cached kernel; prints its
# path.  Its name hashes everything that goes in, so a changed host library,
# tool or this script builds a new one.
base_initramfs() {
	local kdir version files key out tree
	kdir=$(readlink -f "$CACHE/kernel/current")
	version=$(cat "$kdir/.version")
	command -v busybox >/dev/null || skip "busybox not found (package busybox-static)"
	# grep -q would stop at the first match and, under pipefail, the writer's
	# SIGPIPE would fail the pipeline: let grep read everything.
	busybox --list | grep -x insmod >/dev/null || skip "busybox has no insmod"
	is_elf "$(command -v busybox)" && ldd "$(command -v busybox)" >/dev/null 2>&1 &&
		skip "busybox is not static (package busybox-static)"
	command -v cpio >/dev/null || skip "cpio not found"
	files=$(host_tools; host_dlopened)
	key=$( { sha256sum "$SCRIPT"; echo "$kdir"; stat -c '%n %s %Y' \
		$(command -v busybox) $files $(ldd_libs $files) /etc/libibverbs.d/rxe.driver; } |
		sha256sum | cut -c1-16)
	out=$CACHE/initramfs/base-$key.cpio
	if [ -f "$out" ]; then
		echo "$out"
		return
	fi
	log "building the base initramfs $out"
	tree=$(mktemp -d)
	local d m
	for d in bin sbin lib lib64 lib32 libx32; do
		[ -L "/$d" ] && ln -s "$(readlink "/$d")" "$tree/$d"
	done
	mkdir -p "$tree"/{proc,sys,dev,tmp,run,root,bb,etc/ufo-rdma,etc/libibverbs.d,usr/bin,usr/sbin}
	cp "$(command -v busybox)" "$tree/bb/busybox"
	for m in $(busybox --list); do
		[ "$m" = busybox ] || ln -s busybox "$tree/bb/$m"
	done
	[ -e "$tree/usr/bin/sh" ] || ln -s /bb/busybox "$tree/usr/bin/sh"
	[ -e "$tree/bin" ] || ln -s usr/bin "$tree/bin"
	SHARES=()
	copy_with_libs "$tree" $files
	cp /etc/libibverbs.d/rxe.driver "$tree/etc/libibverbs.d/"
	module_order "$kdir" "$version" >"$tree/etc/ufo-rdma/modules"
	[ -s "$tree/etc/ufo-rdma/modules" ] || fail "modprobe resolved no modules in $kdir"
	while read -r m; do
		mkdir -p "$(dirname "$tree/usr/lib/modules/$version/$m")"
		cp "$kdir/lib/modules/$version/$m" "$tree/usr/lib/modules/$version/$m"
	done <"$tree/etc/ufo-rdma/modules"
	echo "$version" >"$tree/etc/ufo-rdma/kernel"
	echo "$GUEST_ADDR" >"$tree/etc/ufo-rdma/addr"
	# Enough of /etc for getaddrinfo("localhost") and getpwuid(0).
	printf '127.0.0.1 localhost\n::1 localhost\n%s guest\n' "$GUEST_ADDR" >"$tree/etc/hosts"
	printf 'passwd: files\ngroup: files\nhosts: files\n' >"$tree/etc/nsswitch.conf"
	echo 'root:x:0:0:root:/root:/bin/sh' >"$tree/etc/passwd"
	echo 'root:x:0:' >"$tree/etc/group"
	write_init "$tree/init"
	mkdir -p "$CACHE/initramfs"
	rm -f "$CACHE"/initramfs/base-*.cpio
	(cd "$tree" && find . -mindepth 1 | cpio -o -H newc -R 0:0 --quiet) >"$out.tmp.$$"
	mv "$out.tmp.$$" "$out"
	rm -rf "$tree"
	echo "$out"
}

# Fetches the kernel and builds the base initramfs under a lock, so parallel
# runs on a fresh cache fetch once.  Sets KERNEL and BASE_CPIO.
prepare() {
	mkdir -p "$CACHE" || skip "cannot create cache directory $CACHE"
	exec 9>"$CACHE/lock"
	flock 9
	fetch_kernel
	BASE_CPIO=$(base_initramfs)
	KERNEL=$(readlink -f "$CACHE/kernel/current")/boot/vmlinuz-$(cat "$CACHE/kernel/current/.version")
	exec 9>&-
}

# ---- one guest run ----------------------------------------------------------

# Quotes $1 for the guest's sh.
shq() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

# Writes the env exports and share mounts that start every job into $1.
write_job_head() {
	local job=$1 v i
	{
		echo "# generated by guest.sh"
		for v in $(compgen -e); do
			case $v in
			UFO_* | *SAN_OPTIONS) ;;
			*) case " ${UFO_RDMA_PASS_ENV:-} " in *" $v "*) ;; *) continue ;; esac ;;
			esac
			echo "export $v=$(shq "${!v}")"
		done
		for i in "${!SHARES[@]}"; do
			echo "ufo_share hostshare$i $(shq "${SHARES[$i]}")"
		done
		echo "cd $(shq "$PWD") 2>/dev/null || cd /tmp"
	} >"$job"
}

# Host files the job runs: ELF files named by path on the command line or
# by passed-through variables (UFO_SERVER), plus --bin files.  A bare name
# (ibv_devices, sleep) runs what the guest has: the base initramfs's tools
# or busybox.
job_binaries() {
	local a v
	for a in "$@" ${BINS[@]+"${BINS[@]}"}; do
		[[ $a == */* ]] && is_elf "$a" && echo "$a"
	done
	for v in $(compgen -e); do
		case $v in UFO_*) ! is_elf "${!v}" || echo "${!v}" ;; esac
	done
	return 0
}

# Boots the guest on job file $1 (guest-side sh, sourced by /init) with
# binaries "$@" copied in; sets GUEST_RC to 0, 77 or 1.
boot() {
	local job=$1 tmp run_cpio log rc interactive=${INTERACTIVE:-0} i
	shift
	tmp=$(mktemp -d)
	BOOT_TMP=$tmp
	trap 'rm -rf "$BOOT_TMP"' EXIT
	mkdir "$tmp/tree"
	cp "$job" "$tmp/tree/job.sh"
	[ $# -eq 0 ] || copy_with_libs "$tmp/tree" "$@"
	(cd "$tmp/tree" && find . -mindepth 1 | cpio -o -H newc -R 0:0 --quiet) >"$tmp/extra.cpio"
	run_cpio=$tmp/initrd.cpio
	# The kernel unpacks concatenated cpio archives in order.
	cat "$BASE_CPIO" "$tmp/extra.cpio" >"$run_cpio"
	local qemu=(qemu-system-x86_64 -accel "$ACCEL" -smp 2 -m 1024
		-nographic -no-reboot -nic none
		-kernel "$KERNEL" -initrd "$run_cpio"
		-append "console=ttyS0 quiet panic=-1"
		-device isa-debug-exit,iobase=0xf4,iosize=0x04)
	for i in "${!SHARES[@]}"; do
		qemu+=(-virtfs "local,path=${SHARES[$i]},mount_tag=hostshare$i,security_model=none")
	done
	if [ "$interactive" = 1 ]; then
		"${qemu[@]}" || true
		GUEST_RC=0
		return
	fi
	log "booting: ${qemu[*]}"
	log="$tmp/console.log"
	local t0=$SECONDS
	set +e
	timeout -k 10 "$TIMEOUT" "${qemu[@]}" </dev/null 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	set -e
	log "guest ran $((SECONDS - t0)) s, qemu exit status $rc"
	judge "$log" "$rc"
}

# Turns the console log $1 and qemu's exit status $2 into GUEST_RC.  Every
# result marker is judged, never only the last line: a pass needs the
# summary marker, the matching isa-debug-exit status and no failed marker.
judge() {
	local log=$1 rc=$2 summary results failed
	tr -d '\r' <"$log" >"$log.clean"
	results=$(grep -a '^UFO-RDMA-RESULT ' "$log.clean" | cut -d' ' -f2- || true)
	summary=$(grep -a '^UFO-RDMA-SUMMARY ' "$log.clean" | tail -n 1 | cut -d' ' -f2 || true)
	failed=$(echo "$results" | awk 'NF == 2 && $2 != 0 && $2 != 77 { print $1 }')
	echo "---- ufo-rdma results"
	[ -z "$results" ] || echo "$results" | sed 's/^/  /'
	GUEST_RC=1
	if grep -aq '^UFO-RDMA-SETUP-FAIL' "$log.clean"; then
		log "guest setup failed: $(grep -a '^UFO-RDMA-SETUP-FAIL' "$log.clean" | head -n 1)"
	elif ! grep -aq '^UFO-RDMA-BOOT' "$log.clean"; then
		if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
			log "guest timed out after $TIMEOUT s before /init ran"
		elif ! grep -aq 'SeaBIOS\|Booting from' "$log.clean"; then
			# The firmware never ran: qemu itself cannot work here.
			GUEST_RC=77
			[ "$REQUIRE" = 1 ] && GUEST_RC=1
			log "qemu could not start a $ACCEL guest (status $rc)"
		else
			log "the guest kernel never reached /init"
		fi
	elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		log "guest timed out after $TIMEOUT s (last test: $(grep -a '^UFO-RDMA-START' "$log.clean" | tail -n 1))"
	elif [ -n "$failed" ]; then
		log "failed in the guest: $(echo $failed)"
	elif [ "$summary" = pass ] && [ "$rc" = "$EXIT_PASS" ]; then
		GUEST_RC=0
	elif [ "$summary" = skip ] && [ "$rc" = "$EXIT_SKIP" ]; then
		GUEST_RC=77
		log "every program in the guest skipped"
	else
		log "inconsistent end: summary '${summary:-none}', qemu status $rc"
	fi
	return 0
}

# ---- command line -------------------------------------------------------------

SHARES=() BINS=() NAME= TIMEOUT=270 TEST_TIMEOUT=240
parse_options() {
	while [ $# -gt 0 ]; do
		case $1 in
		--share) [ -d "$2" ] || fail "--share $2: no such directory"
			SHARES+=("$(readlink -f "$2")"); shift 2 ;;
		--name) NAME=$2; shift 2 ;;
		--timeout) TIMEOUT=$2; shift 2 ;;
		--test-timeout) TEST_TIMEOUT=$2; shift 2 ;;
		--bin) BINS+=("$(readlink -f "$2")"); shift 2 ;;
		--) shift; break ;;
		-*) fail "unknown option $1" ;;
		*) break ;;
		esac
	done
	REST=("$@")
}

check_host() {
	command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not found (package qemu-system-x86)"
	qemu-system-x86_64 -accel help 2>/dev/null | grep -x "$ACCEL" >/dev/null ||
		skip "qemu-system-x86_64 has no $ACCEL accelerator"
	local t
	for t in dpkg depmod modprobe ldd flock timeout; do
		command -v "$t" >/dev/null || skip "host program $t not found"
	done
}

main() {
	local cmd=${1:-} job bins a
	[ $# -gt 0 ] && shift
	parse_options "$@"
	set -- ${REST[@]+"${REST[@]}"}
	case $cmd in
	prepare)
		check_host
		prepare
		echo "kernel:    $KERNEL"
		echo "initramfs: $BASE_CPIO"
		;;
	run)
		[ $# -gt 0 ] || fail "run: no program given"
		check_host
		prepare
		job=$(mktemp)
		write_job_head "$job"
		{
			printf 'ufo_test %s %s' "$(shq "${NAME:-$(basename "$1")}")" "$TEST_TIMEOUT"
			for a in "$@"; do printf ' %s' "$(shq "$a")"; done
			echo
		} >>"$job"
		mapfile -t bins < <(job_binaries "$@")
		boot "$job" ${bins[@]+"${bins[@]}"}
		rm -f "$job"
		exit "$GUEST_RC"
		;;
	job)
		[ $# -eq 1 ] && [ -f "$1" ] || fail "job: give one job file"
		check_host
		prepare
		job=$(mktemp)
		write_job_head "$job"
		echo "UFO_TEST_TIMEOUT=$TEST_TIMEOUT" >>"$job"
		cat "$1" >>"$job"
		mapfile -t bins < <(job_binaries)
		boot "$job" ${bins[@]+"${bins[@]}"}
		rm -f "$job"
		exit "$GUEST_RC"
		;;
	shell)
		check_host
		prepare
		job=$(mktemp)
		write_job_head "$job"
		echo 'setsid cttyhack sh; ufo_done' >>"$job"
		mapfile -t bins < <(job_binaries)
		INTERACTIVE=1 boot "$job" ${bins[@]+"${bins[@]}"}
		rm -f "$job"
		;;
	*)
		sed -n '2,/^set -euo/p' "$SCRIPT" | sed '$d; s/^# \{0,1\}//' >&2
		exit 2
		;;
	esac
}

main "$@"
