#!/usr/bin/env bash
# Installs a build into a scratch DESTDIR and checks what a user gets:
#  * every file lands where it should: ufo-server, ufoctl, ufo.h, libufo,
#    ufo.pc, every man page of man/ (and `man` finds the API pages, alias
#    pages included), the systemd unit (its ExecStart is the installed
#    ufo-server) and the sysusers.d file;
#  * a program outside the tree compiles with `pkg-config --cflags --libs
#    ufo` against the installed copy only, and runs: the README's example
#    (a computed object through a budget), then a remote object on the
#    installed ufo-server, written, synced, dropped and read back;
#  * the installed ufoctl lists that object.
# Exits 77 when the kernel refuses userfaultfd (the file checks ran).
# Usage: scripts/install-check.sh BUILD_DIR
set -euo pipefail
src=$(realpath "$(dirname "$0")/..")
build=$(realpath "$1")
dest=$(mktemp -d)
server_pid=
trap '[ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null; rm -rf "$dest"' EXIT
fail() { echo "install check FAILED: $*"; exit 1; }

meson install -C "$build" --destdir "$dest" >/dev/null
opt() {
	meson introspect "$build" --buildoptions |
		python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]==sys.argv[1]))' "$1"
}
abs() { case $1 in /*) echo "$1";; *) echo "$prefix/$1";; esac; }
prefix=$(opt prefix)
bindir=$(abs "$(opt bindir)")
libdir=$(abs "$(opt libdir)")
incdir=$(abs "$(opt includedir)")
mandir=$(abs "$(opt mandir)")
unitdir=$(opt systemdunitdir); [ -n "$unitdir" ] || unitdir=$prefix/lib/systemd/system
usersdir=$(opt sysusersdir); [ -n "$usersdir" ] || usersdir=$prefix/lib/sysusers.d

# ---- files
for f in "$bindir/ufo-server" "$bindir/ufoctl"; do
	[ -x "$dest$f" ] || fail "$f is not installed (or not executable)"
done
for f in "$incdir/ufo.h" "$libdir/pkgconfig/ufo.pc" "$libdir/libufo.so" "$libdir/libufo.a"; do
	[ -e "$dest$f" ] || fail "$f is not installed"
done
n=0
for page in "$src"/man/man[0-9]/*.[0-9]; do
	sect=$(basename "$(dirname "$page")")
	cmp -s "$page" "$dest$mandir/$sect/$(basename "$page")" ||
		fail "man page $sect/$(basename "$page") is not installed in $mandir (list it in man/meson.build)"
	n=$((n + 1))
done
# An alias page (.so) must render the page it points at.
MANWIDTH=200 man -M "$dest$mandir" 3 ufo_client_sync 2>/dev/null | grep -q 'int ufo_client_sync(' ||
	fail "man -M $mandir 3 ufo_client_sync does not show its prototype"
MANWIDTH=200 man -M "$dest$mandir" 8 ufo-server 2>/dev/null | grep -q -- '--secret-file' ||
	fail "man 8 ufo-server does not render"
if [ "$unitdir" != no ]; then
	unit=$dest$unitdir/ufo-server@.service
	[ -f "$unit" ] || fail "$unitdir/ufo-server@.service is not installed"
	grep -q "^ExecStart=$bindir/ufo-server " "$unit" ||
		fail "the installed unit does not run $bindir/ufo-server"
fi
if [ "$usersdir" != no ]; then
	[ -f "$dest$usersdir/ufo.conf" ] || fail "$usersdir/ufo.conf (sysusers.d) is not installed"
fi
echo "install check: binaries, header, library, ufo.pc, $n man pages, unit and sysusers.d file are in place under $prefix"

# ---- a program built against the installed copy only
pcdir=$dest$libdir/pkgconfig
export PKG_CONFIG_PATH=$pcdir PKG_CONFIG_SYSROOT_DIR=$dest
cat > "$dest/app.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <ufo.h>

static int populate(void *user, uint64_t start, uint64_t end, void *dst)
{
	double *d = dst;
	for (uint64_t i = start; i < end; i++)
		d[i - start] = (double)i;
	return 0;
}

/* The README's example: 32 MiB of computed doubles through 8 MiB. */
static int computed(struct ufo_ctx *ctx)
{
	struct ufo_params p;
	struct ufo_obj *obj;
	double sum = 0;
	uint64_t n = 1 << 22;

	ufo_params_init(&p);
	p.elem_size = sizeof(double);
	p.elem_count = n;
	p.populate = populate;
	if (ufo_create(ctx, &p, &obj))
		return 1;
	double *a = ufo_body(obj);
	for (uint64_t i = 0; i < n; i++)
		sum += a[i];
	ufo_free(obj);
	printf("computed: sum %.0f expected %.0f\n", sum, (double)n * (n - 1) / 2);
	return sum == (double)n * (n - 1) / 2 ? 0 : 1;
}

/* 16 MiB on a server through the 8 MiB budget: written, synced, dropped,
 * read back. */
static int remote(struct ufo_ctx *ctx, const char *url)
{
	struct ufo_remote_opts ro;
	struct ufo_obj *obj;
	size_t n = 16 << 20, bad = 0;
	int rc;

	ufo_remote_opts_init(&ro);
	ro.flags = UFO_REMOTE_CREATE;
	ro.create_size = n;
	if ((rc = ufo_remote_open(ctx, url, &ro, &obj))) {
		fprintf(stderr, "ufo_remote_open %s: %s\n", url, strerror(-rc));
		return 1;
	}
	unsigned char *b = ufo_body(obj);
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)(i * 31 + 7);
	if (ufo_sync(obj) || ufo_reset(obj))
		return 1;
	for (size_t i = 0; i < n; i++)
		bad += b[i] != (unsigned char)(i * 31 + 7);
	printf("remote: %zu bad bytes of %zu\n", bad, n);
	return ufo_free(obj) || bad;
}

int main(int argc, char **argv)
{
	struct ufo_config cfg;
	struct ufo_ctx *ctx;
	int rc;

	ufo_config_init(&cfg);
	cfg.high_watermark = 8 << 20;
	if ((rc = ufo_ctx_create(&cfg, &ctx)))
		return rc == -1 || rc == -13 ? 77 : 1;
	rc = computed(ctx) || (argc > 1 && remote(ctx, argv[1]));
	ufo_ctx_destroy(ctx);
	return rc;
}
C
rel_libdir=$(pkg-config --variable=libdir ufo | sed "s|^$dest||")
# shellcheck disable=SC2046  # pkg-config output is meant to split
cc -o "$dest/app" "$dest/app.c" $(pkg-config --cflags --libs ufo) -Wl,-rpath,"$dest$rel_libdir"
ldd "$dest/app" | grep -q "$dest.*libufo" || fail "app does not link the installed libufo"

# The installed server, on a free loopback port.
mkdir -p "$dest/srv"
(umask 077; head -c 32 /dev/urandom | base64 > "$dest/srv/secret")
"$dest$bindir/ufo-server" --listen 127.0.0.1:0 --data "$dest/srv/data" \
	--secret-file "$dest/srv/secret" >"$dest/srv/out" 2>"$dest/srv/log" &
server_pid=$!
for _ in $(seq 100); do
	grep -q '^listening on' "$dest/srv/out" && break
	kill -0 "$server_pid" 2>/dev/null || fail "installed ufo-server exited: $(cat "$dest/srv/log")"
	sleep 0.1
done
addr=$(sed -n 's/^listening on //p' "$dest/srv/out")
[ -n "$addr" ] || fail "installed ufo-server did not start: $(cat "$dest/srv/log")"

rc=0
UFO_SECRET_FILE=$dest/srv/secret "$dest/app" "tcp://$addr/installcheck" || rc=$?
[ $rc -eq 77 ] && { echo "install check: userfaultfd refused; program not run (skip)"; exit 77; }
[ $rc -eq 0 ] || fail "the program built against the installed libufo failed (exit $rc)"
LD_LIBRARY_PATH=$dest$rel_libdir "$dest$bindir/ufoctl" --server "tcp://$addr" \
	--secret-file "$dest/srv/secret" list | grep -q '^installcheck ' ||
	fail "the installed ufoctl does not list the object the program created"
echo "install check: a program built with pkg-config against $prefix runs, locally and against the installed ufo-server; ufoctl lists its object"
