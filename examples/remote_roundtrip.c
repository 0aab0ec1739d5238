/* SPDX-License-Identifier: MIT */
/*
 * ufo-remote-roundtrip: write and read back a ufo-server object larger than
 * the client's memory budget, through ordinary memory accesses.
 *
 *   ufo-remote-roundtrip --server ufo://127.0.0.1:7070 [--name NAME]
 *                        [--size BYTES] [--budget BYTES] [--chunk BYTES]
 *
 * The secret comes from $UFO_SECRET_FILE (or --secret-file).  The object is
 * created if missing.  Pass 1 writes a pattern into every 8-byte word: dirty
 * chunks are written back to the server as the budget forces evictions.
 * ufo_sync publishes the rest, ufo_reset drops everything, and pass 2 reads
 * every word back from the server through faults and checks it.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ufo.h"

#define PROGRESS_EVERY ((uint64_t)64 << 20)

struct opts {
	const char *server, *name, *secret;
	size_t size, budget, chunk;
};

/* A non-zero byte count, "64M" or "1G" style (ufo_parse_size). */
static int parse_size(const char *s, size_t *out)
{
	uint64_t v;

	if (ufo_parse_size(s, &v) || !v || v > SIZE_MAX)
		return -EINVAL;
	*out = (size_t)v;
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t pattern(uint64_t i)
{
	return i * 0x9E3779B97F4A7C15ull ^ 0x5DEECE66Dull;
}

static void progress(const char *what, uint64_t done, uint64_t total,
		     double t0, struct ufo_obj *obj)
{
	struct ufo_stats s;
	double dt = now_s() - t0;

	ufo_obj_stats(obj, &s);
	fprintf(stderr, "%s%s %5.1f%%  %6.0f MiB/s  resident %4llu MiB\n",
		isatty(2) ? "\r\033[K" : "", what, 100.0 * (double)done / (double)total,
		dt > 0 ? (double)done / dt / (1 << 20) : 0.0,
		(unsigned long long)(s.resident_bytes >> 20));
}

/* Pass 1: write every word.  Pass 2: check every word. */
static uint64_t pass(struct ufo_obj *obj, uint64_t words, int write)
{
	volatile uint64_t *a = ufo_body(obj);
	uint64_t bad = 0;
	double t0 = now_s();

	for (uint64_t i = 0; i < words; i++) {
		if (write)
			a[i] = pattern(i);
		else if (a[i] != pattern(i) && bad++ < 5)
			fprintf(stderr, "word %llu: %#llx, expected %#llx\n",
				(unsigned long long)i, (unsigned long long)a[i],
				(unsigned long long)pattern(i));
		if ((i * 8) % PROGRESS_EVERY == 0 && i)
			progress(write ? "write" : "verify", i * 8, words * 8, t0, obj);
	}
	progress(write ? "write" : "verify", words * 8, words * 8, t0, obj);
	return bad;
}

static void usage(void)
{
	fprintf(stderr, "usage: ufo-remote-roundtrip --server URL [--name NAME] "
		"[--size BYTES] [--budget BYTES] [--chunk BYTES] [--secret-file F]\n");
	exit(2);
}

static void parse(int argc, char **argv, struct opts *o)
{
	static const struct option longs[] = {
		{ "server", 1, 0, 's' }, { "name", 1, 0, 'n' },
		{ "size", 1, 0, 'z' }, { "budget", 1, 0, 'b' },
		{ "chunk", 1, 0, 'c' }, { "secret-file", 1, 0, 'k' },
		{ 0, 0, 0, 0 },
	};
	int c;

	*o = (struct opts){ .name = "roundtrip", .size = (size_t)1 << 30,
			    .budget = (size_t)64 << 20, .chunk = (size_t)1 << 20 };
	while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		if (c == 's') o->server = optarg;
		else if (c == 'n') o->name = optarg;
		else if (c == 'k') o->secret = optarg;
		else if ((c == 'z' && !parse_size(optarg, &o->size)) ||
			 (c == 'b' && !parse_size(optarg, &o->budget)) ||
			 (c == 'c' && !parse_size(optarg, &o->chunk)))
			continue;
		else
			usage();
	}
	if (!o->server || o->size % 8)
		usage();
}

static void print_stats(struct ufo_obj *obj)
{
	struct ufo_client_stats cs;
	struct ufo_stats s;

	ufo_obj_stats(obj, &s);
	printf("faults %llu (+%llu prefetched), loaded %llu MiB, written back %llu MiB in %llu chunks, evictions %llu\n",
	       (unsigned long long)s.faults, (unsigned long long)s.prefetches,
	       (unsigned long long)(s.bytes_loaded >> 20),
	       (unsigned long long)(s.writeback_bytes >> 20),
	       (unsigned long long)s.writebacks,
	       (unsigned long long)s.evictions);
	printf("fault latency p50 <= %llu us, p99 <= %llu us\n",
	       (unsigned long long)ufo_stats_latency_percentile(&s, 50),
	       (unsigned long long)ufo_stats_latency_percentile(&s, 99));
	/* Over rdma:// a chunk goes one-sided unless the server would not
	 * map it; MAP and UNMAP are requests too, so requests per chunk show
	 * how often the client's MAP cache missed.  failed: answered with
	 * an error (an OPEN before CREATE, a MAP over the server's limit). */
	if (!ufo_remote_status(obj, &cs))
		printf("remote %s: %llu requests (%llu failed), one-sided %llu reads, %llu writes\n",
		       cs.transport, (unsigned long long)cs.requests,
		       (unsigned long long)cs.errors,
		       (unsigned long long)cs.direct_reads,
		       (unsigned long long)cs.direct_writes);
}

static int open_object(const struct opts *o, struct ufo_ctx **ctx,
		       struct ufo_obj **obj)
{
	struct ufo_config cfg;
	struct ufo_remote_opts ro;
	char url[512];
	int rc;

	ufo_config_init(&cfg);
	cfg.high_watermark = o->budget;
	rc = ufo_ctx_create(&cfg, ctx);
	if (rc) {
		fprintf(stderr, "ufo_ctx_create: %s%s\n", strerror(-rc),
			rc == -EPERM ? " (run as root or set vm.unprivileged_userfaultfd=1)" : "");
		return rc;
	}
	ufo_remote_opts_init(&ro);
	ro.secret_file = o->secret;
	ro.flags = UFO_REMOTE_CREATE;
	ro.create_size = o->size;
	ro.chunk_size = o->chunk;
	snprintf(url, sizeof(url), "%s/%s", o->server, o->name);
	rc = ufo_remote_open(*ctx, url, &ro, obj);
	if (rc)
		fprintf(stderr, "ufo_remote_open %s: %s%s\n", url, strerror(-rc),
			rc == -EACCES ? " (wrong secret?)" : "");
	return rc;
}

int main(int argc, char **argv)
{
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	struct opts o;
	uint64_t bad;
	int rc;

	parse(argc, argv, &o);
	if (open_object(&o, &ctx, &obj))
		return 1;
	printf("object %s/%s: %zu MiB through a %zu MiB budget, chunk %zu KiB\n",
	       o.server, o.name, ufo_elem_count(obj) >> 20, o.budget >> 20,
	       ufo_chunk_size(obj) >> 10);
	fflush(stdout);
	pass(obj, ufo_elem_count(obj) / 8, 1);
	if ((rc = ufo_sync(obj)) || (rc = ufo_reset(obj))) {
		fprintf(stderr, "sync/reset: %s\n", strerror(-rc));
		return 1;
	}
	bad = pass(obj, ufo_elem_count(obj) / 8, 0);
	print_stats(obj);
	printf("%s: %llu bad words\n", bad ? "FAILED" : "verified",
	       (unsigned long long)bad);
	rc = ufo_free(obj);
	ufo_ctx_destroy(ctx);
	return bad || rc ? 1 : 0;
}
