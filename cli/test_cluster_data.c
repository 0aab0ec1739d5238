/* SPDX-License-Identifier: MIT */
/*
 * test-cluster-data: writes or checks the whole of a replicated object
 * through a UFO, for cli/test_ufoctl_cluster.sh (ufoctl has no command
 * that writes into a replicated object).
 *
 *   test-cluster-data fill|check NAME SEED
 *
 * Opens ufo:///NAME over the servers of $UFO_SERVERS with the secret of
 * $UFO_SECRET_FILE.  fill sets word i of the object to (i + SEED) *
 * 0x9E3779B97F4A7C15 and returns once ufo_sync (and ufo_free) made it
 * durable; check compares every word with that pattern.  A budget of
 * BUDGET bytes makes the evictor write back during a fill too.
 * Exit status: 0, 1 (failure, reported), 2 (usage), 77 (no userfaultfd).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ufo.h"

#define BUDGET ((size_t)2 << 20)
#define PATTERN_MUL UINT64_C(0x9E3779B97F4A7C15)
#define EXIT_SKIP 77

static uint64_t pattern(uint64_t i, uint64_t seed)
{
	return (i + seed) * PATTERN_MUL;
}

static int fill(struct ufo_obj *obj, uint64_t seed)
{
	uint64_t *w = ufo_body(obj), n = ufo_elem_count(obj) / sizeof(*w);

	for (uint64_t i = 0; i < n; i++)
		w[i] = pattern(i, seed);
	return ufo_sync(obj);
}

/* 0, or -EILSEQ after naming the first wrong word. */
static int check(struct ufo_obj *obj, uint64_t seed)
{
	const uint64_t *w = ufo_body(obj);
	uint64_t n = ufo_elem_count(obj) / sizeof(*w);

	for (uint64_t i = 0; i < n; i++)
		if (w[i] != pattern(i, seed)) {
			fprintf(stderr, "test-cluster-data: word %" PRIu64
				" is %#" PRIx64 ", want %#" PRIx64 "\n", i,
				w[i], pattern(i, seed));
			return -EILSEQ;
		}
	return 0;
}

static int run(struct ufo_ctx *ctx, const char *name, bool do_fill,
	       uint64_t seed)
{
	struct ufo_remote_opts o;
	struct ufo_obj *obj;
	char url[300];
	int rc, rc2;

	snprintf(url, sizeof(url), "ufo:///%s", name);
	ufo_remote_opts_init(&o);
	rc = ufo_remote_open(ctx, url, &o, &obj);
	if (rc) {
		fprintf(stderr, "test-cluster-data: open %s over %s: %s\n",
			url, getenv("UFO_SERVERS"), strerror(-rc));
		return rc;
	}
	rc = do_fill ? fill(obj, seed) : check(obj, seed);
	rc2 = ufo_free(obj);
	if (!rc && rc2)
		fprintf(stderr, "test-cluster-data: writeback: %s\n",
			strerror(-rc2));
	return rc ? rc : rc2;
}

int main(int argc, char **argv)
{
	struct ufo_config cfg;
	struct ufo_ctx *ctx;
	char *end;
	uint64_t seed;
	int rc;

	if (argc != 4 || (strcmp(argv[1], "fill") && strcmp(argv[1], "check"))) {
		fputs("usage: test-cluster-data fill|check NAME SEED\n", stderr);
		return 2;
	}
	seed = strtoull(argv[3], &end, 10);
	if (*end || end == argv[3])
		return 2;
	ufo_config_init(&cfg);
	cfg.high_watermark = BUDGET;
	rc = ufo_ctx_create(&cfg, &ctx);
	if (rc == -EPERM || rc == -EACCES || rc == -ENOSYS) {
		fprintf(stderr, "test-cluster-data: no userfaultfd: %s\n",
			strerror(-rc));
		return EXIT_SKIP;
	}
	if (rc) {
		fprintf(stderr, "test-cluster-data: ufo_ctx_create: %s\n",
			strerror(-rc));
		return 1;
	}
	rc = run(ctx, argv[2], !strcmp(argv[1], "fill"), seed);
	ufo_ctx_destroy(ctx);
	return rc ? 1 : 0;
}
