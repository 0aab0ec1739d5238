/* SPDX-License-Identifier: MIT */
/*
 * ufo-sum-sequence: sum a computed array far larger than RAM.
 *
 * The array a[i] = (double)i, 64 GiB of it by default, is a UFO: no byte of
 * it exists until the scan touches it, when the populate callback computes
 * the chunk.  The context's budget (256 MiB by default) bounds how much of
 * it is resident; chunks behind the scan are evicted.  The sum is checked
 * against the closed form n(n-1)/2.
 *
 *   ufo-sum-sequence [--size BYTES] [--budget BYTES] [--chunk BYTES]
 *
 * BYTES takes a K, M, G or T suffix.  UFO_* environment variables override
 * the configuration (see ufo.h).
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ufo.h"

/* Elements summed in double before the block total moves to an integer:
 * every element is an integer below 2^40 (8 TiB of doubles), so a block sum
 * stays below 2^52 and every addition is exact. */
#define BLOCK_ELEMS 4096
#define PROGRESS_INTERVAL_S 1.0

struct opts {
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

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The populate callback: fill dst with a[start..end). */
static int populate_sequence(void *user, uint64_t start, uint64_t end,
			     void *dst)
{
	double *d = dst;

	for (uint64_t i = start; i < end; i++)
		d[i - start] = (double)i;
	return 0;
}

/* ------------------------------------------------------------- progress */

struct progress {
	const struct ufo_obj *obj;
	uint64_t total;    /* elements */
	uint64_t last_done;
	double start, last;
	bool tty;
};

static void progress_print(struct progress *p, uint64_t done, bool final)
{
	struct ufo_stats st;
	double t = now_sec();

	if (!final && t - p->last < PROGRESS_INTERVAL_S)
		return;
	/* The rate since the last line; the final line gives the average. */
	double since = final ? p->start : p->last;
	uint64_t from = final ? 0 : p->last_done;

	ufo_obj_stats(p->obj, &st);
	fprintf(stderr, "%s%5.1f%%  %6.2f GB/s  resident %6.1f MiB%s",
		p->tty ? "\r" : "", 100.0 * (double)done / (double)p->total,
		(double)(done - from) * sizeof(double) / (t - since) / 1e9,
		(double)st.resident_bytes / (1 << 20),
		p->tty && !final ? "" : "\n");
	p->last = t;
	p->last_done = done;
}

/* ------------------------------------------------------------------ sum */

/* Sums a[0..n) exactly (see BLOCK_ELEMS), reporting progress. */
static unsigned __int128 sum_exact(const double *a, uint64_t n,
				   struct progress *p)
{
	unsigned __int128 total = 0;

	for (uint64_t i = 0; i < n; i += BLOCK_ELEMS) {
		uint64_t end = i + BLOCK_ELEMS < n ? i + BLOCK_ELEMS : n;
		double block = 0;

		for (uint64_t j = i; j < end; j++)
			block += a[j];
		total += (uint64_t)block;
		if ((i / BLOCK_ELEMS) % 64 == 0)
			progress_print(p, i, false);
	}
	progress_print(p, n, true);
	return total;
}

static void print_u128(const char *label, unsigned __int128 v)
{
	char buf[48], *s = buf + sizeof(buf) - 1;

	*s = '\0';
	do {
		*--s = (char)('0' + (int)(v % 10));
		v /= 10;
	} while (v);
	printf("%s%s\n", label, s);
}

static void print_stats(const struct ufo_obj *obj, double secs)
{
	struct ufo_stats st;

	ufo_obj_stats(obj, &st);
	printf("time        %.2f s (%.2f GB/s)\n", secs,
	       (double)ufo_elem_count(obj) * sizeof(double) / secs / 1e9);
	printf("faults      %llu (+%llu chunks prefetched)\n",
	       (unsigned long long)st.faults,
	       (unsigned long long)st.prefetches);
	printf("evictions   %llu\n", (unsigned long long)st.evictions);
	printf("loaded      %.1f MiB\n",
	       (double)st.bytes_loaded / (1 << 20));
	printf("latency     p50 <= %llu us, p99 <= %llu us\n",
	       (unsigned long long)ufo_stats_latency_percentile(&st, 50),
	       (unsigned long long)ufo_stats_latency_percentile(&st, 99));
}

/* ----------------------------------------------------------------- main */

static int create_ctx(const struct opts *o, struct ufo_ctx **ctx)
{
	struct ufo_config cfg;
	int err;

	ufo_config_init(&cfg);
	cfg.high_watermark = o->budget;
	err = ufo_ctx_create(&cfg, ctx);
	if (err == -EPERM || err == -EACCES)
		fprintf(stderr, "ufo-sum-sequence: userfaultfd refused (%s): "
			"run as root, or allow it with "
			"'sysctl vm.unprivileged_userfaultfd=1'\n",
			strerror(-err));
	else if (err)
		fprintf(stderr, "ufo-sum-sequence: cannot create context: "
			"%s\n", strerror(-err));
	return err;
}

static int run(const struct opts *o)
{
	struct ufo_params p;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	int err = create_ctx(o, &ctx);

	if (err)
		return err;
	ufo_params_init(&p);
	p.elem_size = sizeof(double);
	p.elem_count = o->size / sizeof(double);
	p.chunk_size = o->chunk;
	p.populate = populate_sequence;
	err = ufo_create(ctx, &p, &obj);
	if (err) {
		fprintf(stderr, "ufo-sum-sequence: ufo_create: %s\n",
			strerror(-err));
		ufo_ctx_destroy(ctx);
		return err;
	}
	ufo_advise(obj, 0, p.elem_count, UFO_ADV_SEQUENTIAL);

	uint64_t n = p.elem_count;
	struct progress prog = { .obj = obj, .total = n, .start = now_sec(),
				 .tty = isatty(STDERR_FILENO) };
	prog.last = prog.start;
	unsigned __int128 sum = sum_exact(ufo_body(obj), n, &prog);
	unsigned __int128 expect = (unsigned __int128)n * (n - 1) / 2;

	print_u128("sum         ", sum);
	print_u128("expected    ", expect);
	print_stats(obj, now_sec() - prog.start);
	ufo_free(obj);
	ufo_ctx_destroy(ctx);
	if (sum != expect) {
		fprintf(stderr, "ufo-sum-sequence: WRONG SUM\n");
		return -EIO;
	}
	printf("check       ok\n");
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: ufo-sum-sequence [--size BYTES] [--budget BYTES] "
		   "[--chunk BYTES]\n"
		   "  defaults: --size 64G --budget 256M --chunk 1M; "
		   "suffixes K M G T\n");
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "size", required_argument, NULL, 's' },
		{ "budget", required_argument, NULL, 'b' },
		{ "chunk", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	*o = (struct opts){ .size = (size_t)64 << 30, .budget = 256 << 20,
			    .chunk = 1 << 20 };
	while ((c = getopt_long(argc, argv, "s:b:c:h", lo, NULL)) != -1) {
		size_t *dst = c == 's' ? &o->size : c == 'b' ? &o->budget
				: c == 'c' ? &o->chunk : NULL;
		if (c == 'h') {
			usage(stdout);
			exit(0);
		}
		if (!dst || parse_size(optarg, dst)) {
			if (dst)
				fprintf(stderr, "ufo-sum-sequence: bad size "
					"'%s'\n", optarg);
			return -EINVAL;
		}
	}
	if (optind != argc || o->size < sizeof(double) ||
	    o->size / sizeof(double) > ((uint64_t)1 << 40)) {
		fprintf(stderr, "ufo-sum-sequence: --size must hold 1 to "
			"2^40 doubles\n");
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o;

	if (parse_opts(argc, argv, &o)) {
		usage(stderr);
		return 2;
	}
	printf("summing %.3g GiB of doubles, budget %.0f MiB, chunk %zu KiB\n",
	       (double)o.size / (1 << 30), (double)o.budget / (1 << 20),
	       o.chunk >> 10);
	fflush(stdout); /* before the progress lines on stderr */
	return run(&o) ? 1 : 0;
}
