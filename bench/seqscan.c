/* SPDX-License-Identifier: MIT */
/*
 * bench-seqscan: one sequential scan of a generated object much larger than
 * the budget, timed three ways with the same generator and chunk size:
 *
 *   ufo           libufo with default settings (and once more advised
 *                 SEQUENTIAL), budget = high watermark;
 *   uffd-minimal  the smallest correct userfaultfd pager: one mapping
 *                 registered MISSING, one handler thread that reads a
 *                 message, fills a chunk buffer and UFFDIO_COPYs it, and
 *                 drops the oldest chunks with MADV_DONTNEED to stay within
 *                 the same budget (high/low watermarks as libufo's default);
 *   malloc        the same data generated into malloc'd memory on first
 *                 touch, then scanned: a reference only, it ignores the budget.
 *
 * Target: ufo (default) >= 0.9 x uffd-minimal at every chunk size.
 * Every case checks the sum of the scan against the closed form.
 *
 * Then readahead alone, per chunk size, on four patterns with default
 * advice and again advised RANDOM (no readahead: the faults there would be
 * without it): forward, strided (every RA_STRIDE-th chunk), backward, and
 * two forward scans interleaved chunk by chunk (one from the start, one
 * from the middle).  Printed: faults both ways, chunks readahead loaded,
 * its accuracy (used / loaded) and coverage (faults avoided / faults
 * without readahead) from ufo_stats.  Target: accuracy >= 90% on the
 * forward and strided patterns.
 */
#include <fcntl.h>
#include <getopt.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench_mini.h"
#include "ufo.h"

#define MAX_CHUNK_SIZES 8
#define TARGET_RATIO 0.9
#define TARGET_ACCURACY_PM 900
#define RA_STRIDE 4 /* chunks */

struct opts {
	size_t budget;  /* high watermark; low is 3/4 of it, like libufo */
	size_t size;    /* object bytes */
	size_t chunks[MAX_CHUNK_SIZES];
	int nchunks;
	int reps;
};

/* One timed run: seconds for the scan (first touch to last byte), or a
 * negative errno when the case could not run. */
typedef double (*case_fn)(const struct opts *o, size_t chunk);

static bool sum_ok(const char *name, uint64_t got, uint64_t n)
{
	if (got == gen_sum(n))
		return true;
	fprintf(stderr, "%s: WRONG SUM %#llx, expected %#llx\n", name,
		(unsigned long long)got, (unsigned long long)gen_sum(n));
	return false;
}

/* ------------------------------------------------------------------ ufo */

static int ufo_gen_populate(void *user, uint64_t start, uint64_t end,
			    void *dst)
{
	gen_fill(dst, start, end);
	return 0;
}

static double run_ufo(const struct opts *o, size_t chunk, bool sequential)
{
	struct ufo_config cfg;
	struct ufo_params p;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	uint64_t n = o->size / sizeof(uint64_t);
	int err;

	ufo_config_init(&cfg);
	cfg.high_watermark = o->budget;
	err = ufo_ctx_create(&cfg, &ctx);
	if (err) {
		fprintf(stderr, "ufo_ctx_create: %s\n", strerror(-err));
		return err;
	}
	ufo_params_init(&p);
	p.elem_size = sizeof(uint64_t);
	p.elem_count = n;
	p.chunk_size = chunk;
	p.populate = ufo_gen_populate;
	err = ufo_create(ctx, &p, &obj);
	if (err) {
		fprintf(stderr, "ufo_create: %s\n", strerror(-err));
		ufo_ctx_destroy(ctx);
		return err;
	}
	if (sequential)
		ufo_advise(obj, 0, n, UFO_ADV_SEQUENTIAL);

	double t0 = now_sec();
	uint64_t sum = scan_sum(ufo_body(obj), n);
	double t = now_sec() - t0;

	ufo_free(obj);
	ufo_ctx_destroy(ctx);
	return sum_ok("ufo", sum, n) ? t : -EIO;
}

static double case_ufo(const struct opts *o, size_t chunk)
{
	return run_ufo(o, chunk, false);
}

static double case_ufo_seq(const struct opts *o, size_t chunk)
{
	return run_ufo(o, chunk, true);
}

/* --------------------------------------------------------- uffd-minimal */

/* bench_mini.h's pager, filling each chunk with the generator. */
static int mini_gen(void *user, void *buf, size_t off, size_t len)
{
	(void)user;
	gen_fill(buf, off / sizeof(uint64_t), (off + len) / sizeof(uint64_t));
	return 0;
}

static double case_uffd(const struct opts *o, size_t chunk)
{
	struct mini m;
	uint64_t n = o->size / sizeof(uint64_t);
	int err = mini_open(&m, o->size, chunk, o->budget, mini_gen, NULL);

	if (err) {
		fprintf(stderr, "uffd-minimal: setup: %s\n", strerror(-err));
		return err;
	}

	double t0 = now_sec();
	uint64_t sum = scan_sum((const uint64_t *)m.base, n);
	double t = now_sec() - t0;

	mini_close(&m);
	return sum_ok("uffd-minimal", sum, n) ? t : -EIO;
}

/* --------------------------------------------------------------- malloc */

static double case_malloc(const struct opts *o, size_t chunk)
{
	uint64_t n = o->size / sizeof(uint64_t);
	uint64_t per = chunk / sizeof(uint64_t);
	uint64_t *a = malloc(o->size);

	if (!a)
		return -ENOMEM;
	double t0 = now_sec();
	for (uint64_t i = 0; i < n; i += per)
		gen_fill(a + i, i, i + per < n ? i + per : n);
	uint64_t sum = scan_sum(a, n);
	double t = now_sec() - t0;

	free(a);
	return sum_ok("malloc", sum, n) ? t : -EIO;
}

/* ---------------------------------------------------------------- table */

struct bench_case {
	const char *name;
	case_fn run;
	bool ours;
	bool gated;  /* ours, held to TARGET_RATIO of uffd-minimal */
};

/* Peers first: our rows print their ratios against them. */
enum { PEER_UFFD, PEER_MALLOC };
static const struct bench_case cases[] = {
	[PEER_UFFD] = { "uffd-minimal", case_uffd, false, false },
	[PEER_MALLOC] = { "malloc first-touch", case_malloc, false, false },
	{ "ufo (default)", case_ufo, true, true },
	{ "ufo (SEQUENTIAL)", case_ufo_seq, true, false },
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

/* Median GB/s of each case over o->reps rounds, or a negative errno.  The
 * cases alternate within a round so that drift on a shared machine hits
 * them all alike. */
static void measure_all(const struct opts *o, size_t chunk, double *gbs)
{
	double runs[NCASES][o->reps];

	for (size_t i = 0; i < NCASES; i++)
		gbs[i] = 0;
	for (int r = 0; r < o->reps; r++) {
		for (size_t i = 0; i < NCASES; i++) {
			if (gbs[i] < 0)
				continue;
			double t = cases[i].run(o, chunk);
			if (t < 0)
				gbs[i] = t;
			else
				runs[i][r] = (double)o->size / t / 1e9;
		}
	}
	for (size_t i = 0; i < NCASES; i++)
		if (gbs[i] == 0)
			gbs[i] = median(runs[i], o->reps);
}

static void print_ratio(double ours, double peer, int width)
{
	if (ours > 0 && peer > 0)
		printf(" %*.2f", width, ours / peer);
	else
		printf(" %*s", width, "-");
}

/* Prints one chunk size's rows; returns false when a case failed or the
 * target was missed. */
static bool run_chunk(const struct opts *o, size_t chunk)
{
	double gbs[NCASES];
	char cbuf[32];
	bool ok = true;

	measure_all(o, chunk, gbs);
	for (size_t i = 0; i < NCASES; i++) {
		const struct bench_case *c = &cases[i];

		printf("%-6s %-20s", fmt_size(chunk, cbuf), c->name);
		if (gbs[i] < 0) {
			printf(" %8s\n", "FAILED");
			ok = false;
			continue;
		}
		printf(" %8.3f", gbs[i]);
		if (!c->ours) {
			printf(" %10s %11s  %s\n", "", "",
			       i == PEER_MALLOC ? "(peer; ignores the budget)"
						: "(peer)");
			continue;
		}
		print_ratio(gbs[i], gbs[PEER_UFFD], 10);
		print_ratio(gbs[i], gbs[PEER_MALLOC], 11);
		if (c->gated && gbs[PEER_UFFD] > 0) {
			bool met = gbs[i] >= TARGET_RATIO * gbs[PEER_UFFD];
			printf("  >= %.2f x uffd-minimal: %s\n", TARGET_RATIO,
			       met ? "met" : "MISSED");
			ok &= met;
		} else {
			printf("  (info)\n");
		}
		fflush(stdout);
	}
	return ok;
}

/* ------------------------------------------------------------ readahead */

/* A pattern reads whole chunks of a (n elements, per chunk elements) and
 * returns their sum; *want gets the closed form of that sum. */
typedef uint64_t (*pattern_fn)(const uint64_t *a, uint64_t n, uint64_t per,
			       uint64_t *want);

static uint64_t chunk_sum(const uint64_t *a, uint64_t c, uint64_t per,
			  uint64_t n, uint64_t *want)
{
	uint64_t start = c * per, end = start + per < n ? start + per : n;

	*want += gen_sum(end) - gen_sum(start);
	return scan_sum(a + start, end - start);
}

static uint64_t pat_forward(const uint64_t *a, uint64_t n, uint64_t per,
			    uint64_t *want)
{
	*want = gen_sum(n);
	return scan_sum(a, n);
}

static uint64_t pat_strided(const uint64_t *a, uint64_t n, uint64_t per,
			    uint64_t *want)
{
	uint64_t s = 0;

	*want = 0;
	for (uint64_t c = 0; c * per < n; c += RA_STRIDE)
		s += chunk_sum(a, c, per, n, want);
	return s;
}

static uint64_t pat_backward(const uint64_t *a, uint64_t n, uint64_t per,
			     uint64_t *want)
{
	uint64_t s = 0;

	*want = gen_sum(n);
	for (uint64_t i = n; i-- > 0;)
		s += a[i];
	return s;
}

static uint64_t pat_interleaved(const uint64_t *a, uint64_t n, uint64_t per,
				uint64_t *want)
{
	uint64_t nc = (n + per - 1) / per, half = nc / 2, s = 0;

	*want = 0;
	for (uint64_t c = 0; c < half; c++) {
		s += chunk_sum(a, c, per, n, want);
		s += chunk_sum(a, half + c, per, n, want);
	}
	if (nc % 2)
		s += chunk_sum(a, nc - 1, per, n, want);
	return s;
}

static const struct ra_pattern {
	const char *name;
	pattern_fn run;
	bool gated; /* held to TARGET_ACCURACY_PM */
} patterns[] = {
	{ "forward", pat_forward, true },
	{ "strided", pat_strided, true },
	{ "backward", pat_backward, false },
	{ "interleaved x2", pat_interleaved, false },
};

/* One pattern on a fresh object; 0 and *st, or -errno. */
static int ra_run(const struct opts *o, size_t chunk,
		  const struct ra_pattern *pat, bool random,
		  struct ufo_stats *st)
{
	struct ufo_config cfg;
	struct ufo_params p;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	uint64_t n = o->size / sizeof(uint64_t), want, got;
	int err;

	ufo_config_init(&cfg);
	cfg.high_watermark = o->budget;
	err = ufo_ctx_create(&cfg, &ctx);
	if (err)
		return err;
	ufo_params_init(&p);
	p.elem_size = sizeof(uint64_t);
	p.elem_count = n;
	p.chunk_size = chunk;
	p.populate = ufo_gen_populate;
	err = ufo_create(ctx, &p, &obj);
	if (err) {
		ufo_ctx_destroy(ctx);
		return err;
	}
	if (random)
		ufo_advise(obj, 0, n, UFO_ADV_RANDOM);
	got = pat->run(ufo_body(obj), n, chunk / sizeof(uint64_t), &want);
	ufo_obj_stats(obj, st);
	ufo_free(obj);
	ufo_ctx_destroy(ctx);
	if (got != want) {
		fprintf(stderr, "readahead %s: WRONG SUM %#llx, expected %#llx\n",
			pat->name, (unsigned long long)got,
			(unsigned long long)want);
		return -EIO;
	}
	return 0;
}

/* Prints the readahead rows of one chunk size; false when a run failed or
 * an accuracy target was missed. */
static bool run_readahead(const struct opts *o, size_t chunk)
{
	char cbuf[32];
	bool ok = true;

	for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
		const struct ra_pattern *pat = &patterns[i];
		struct ufo_stats st, rnd;
		bool met;

		printf("%-6s %-16s", fmt_size(chunk, cbuf), pat->name);
		if (ra_run(o, chunk, pat, false, &st) ||
		    ra_run(o, chunk, pat, true, &rnd)) {
			printf(" FAILED\n");
			ok = false;
			continue;
		}
		met = st.readahead_accuracy_pm >= TARGET_ACCURACY_PM;
		printf(" %8llu %8llu %9llu %8llu %7.1f%% %7.1f%%",
		       (unsigned long long)st.faults,
		       (unsigned long long)rnd.faults,
		       (unsigned long long)st.readahead_chunks,
		       (unsigned long long)st.readahead_late,
		       st.readahead_accuracy_pm / 10.0,
		       st.readahead_coverage_pm / 10.0);
		if (pat->gated)
			printf("  accuracy >= %d%%: %s\n",
			       TARGET_ACCURACY_PM / 10, met ? "met" : "MISSED");
		else
			printf("  (info)\n");
		ok &= met || !pat->gated;
		fflush(stdout);
	}
	return ok;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench-seqscan [--budget BYTES] [--size BYTES] "
		"[--chunk BYTES]... [--reps N]\n"
		"  --budget  high watermark for ufo and uffd-minimal "
		"(default 64M)\n"
		"  --size    object size (default 16 x budget)\n"
		"  --chunk   chunk size, repeatable (default 64K and 1M)\n"
		"  --reps    runs per case, the median is shown (default 5)\n");
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "budget", required_argument, NULL, 'b' },
		{ "size", required_argument, NULL, 's' },
		{ "chunk", required_argument, NULL, 'c' },
		{ "reps", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	*o = (struct opts){ .budget = 64 * MiB, .reps = 5 };
	while ((c = getopt_long(argc, argv, "b:s:c:r:h", lo, NULL)) != -1) {
		int err = 0;
		switch (c) {
		case 'b': err = parse_size(optarg, &o->budget); break;
		case 's': err = parse_size(optarg, &o->size); break;
		case 'c':
			if (o->nchunks == MAX_CHUNK_SIZES)
				err = -EINVAL;
			else
				err = parse_size(optarg,
						 &o->chunks[o->nchunks++]);
			break;
		case 'r': o->reps = atoi(optarg); err = o->reps > 0 ? 0 : -EINVAL; break;
		case 'h': usage(stdout); exit(0);
		default: return -EINVAL;
		}
		if (err) {
			fprintf(stderr, "bench-seqscan: bad value '%s'\n",
				optarg);
			return err;
		}
	}
	if (!o->size)
		o->size = 16 * o->budget;
	if (!o->nchunks) {
		o->chunks[o->nchunks++] = 64 * KiB;
		o->chunks[o->nchunks++] = 1 * MiB;
	}
	for (int i = 0; i < o->nchunks; i++) {
		if (o->chunks[i] % 4096 || o->size % o->chunks[i] ||
		    o->chunks[i] * 4 > o->budget) {
			fprintf(stderr, "bench-seqscan: chunk %zu must be a "
				"multiple of 4K dividing --size and at most "
				"budget/4\n", o->chunks[i]);
			return -EINVAL;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	char b1[32], b2[32];
	bool ok = true;

	if (parse_opts(argc, argv, &o)) {
		usage(stderr);
		return 2;
	}
	printf("bench-seqscan: object %s, budget %s (low 3/4), %d rep(s), "
	       "median GB/s\n", fmt_size(o.size, b1), fmt_size(o.budget, b2),
	       o.reps);
	printf("%-6s %-20s %8s %10s %11s  %s\n", "chunk", "case", "GB/s",
	       "ours/uffd", "ours/malloc", "target");
	for (int i = 0; i < o.nchunks; i++)
		ok &= run_chunk(&o, o.chunks[i]);
	printf("\nreadahead (default advice; \"random\": the same advised "
	       "RANDOM, no readahead)\n");
	printf("%-6s %-16s %8s %8s %9s %8s %8s %8s  %s\n", "chunk", "pattern",
	       "faults", "random", "prefetch", "late", "accuracy", "coverage",
	       "target");
	for (int i = 0; i < o.nchunks; i++)
		ok &= run_readahead(&o, o.chunks[i]);
	return ok ? 0 : 1;
}
