#!/usr/bin/env bash
# Installs a build into a scratch prefix and compiles the README's API
# example against it through pkg-config: checks that ufo.h, the library and
# ufo.pc are installed and that the documented example builds and runs.
# Usage: scripts/install-check.sh BUILD_DIR
set -euo pipefail
build=$(realpath "$1")
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT

meson install -C "$build" --destdir "$dest" >/dev/null
prefix=$(meson introspect "$build" --buildoptions | python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"))')
pcdir=$(dirname "$(find "$dest" -name ufo.pc | head -n1)")
export PKG_CONFIG_PATH=$pcdir PKG_CONFIG_SYSROOT_DIR=$dest

cat > "$dest/app.c" <<'C'
#include <stdio.h>
#include <ufo.h>

static int populate(void *user, uint64_t start, uint64_t end, void *dst)
{
	double *d = dst;
	for (uint64_t i = start; i < end; i++)
		d[i - start] = (double)i;
	return 0;
}

int main(void)
{
	struct ufo_config cfg;
	struct ufo_params p;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	double sum = 0;
	uint64_t n = 1 << 22; /* 32 MiB of doubles through an 8 MiB budget */
	int rc;

	ufo_config_init(&cfg);
	cfg.high_watermark = 8 << 20;
	if ((rc = ufo_ctx_create(&cfg, &ctx)))
		return rc == -1 || rc == -13 ? 77 : 1;
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
	ufo_ctx_destroy(ctx);
	printf("sum %.0f expected %.0f\n", sum, (double)n * (n - 1) / 2);
	return sum == (double)n * (n - 1) / 2 ? 0 : 1;
}
C
# Link against the installed copy only, and run with it.
cc -o "$dest/app" "$dest/app.c" $(pkg-config --cflags --libs ufo) \
	-Wl,-rpath,"$dest$(pkg-config --variable=libdir ufo | sed "s|^$dest||")"
"$dest/app"
echo "install check: header, library and ufo.pc from $prefix work"
