/* SPDX-License-Identifier: MIT */
/*
 * bench-zipf: eviction policies against FIFO under a budget of 10% of a
 * generated object, on three access patterns, each run with the default
 * policy (UFO_POLICY_MQ), UFO_POLICY_2Q and UFO_POLICY_FIFO:
 *  - zipf: Zipf-skewed random reads of single elements (same seed for
 *    every policy); target: the default takes at most 0.70x FIFO's faults;
 *  - scan: two sequential passes over the whole object; target: no more
 *    faults than FIFO (nothing can be reused: the object is 10x the budget);
 *  - loop: passes over the first 1.1x budget of the object, one more chunk
 *    than fits; target: no more faults than FIFO (FIFO reloads every chunk
 *    of every pass);
 *  - loop+ra: the same loop with default advice, readahead on (for
 *    information: faults then depend on timing, loads less so).
 * The figure is the number of missing-page faults (ufo_ctx_stats), beside
 * the chunks loaded (faults plus readahead).
 *
 * Element ranks are drawn by rejection-inversion (Hörmann & Derflinger,
 * 1996), exact for any exponent and O(1) per draw.  Rank r lives in element
 * r of a chunk chosen by a fixed permutation of chunk numbers, so hot
 * chunks are spread over the object instead of sitting at its start (which
 * readahead could otherwise mistake for a scan).  The gated patterns
 * advise the object RANDOM: readahead is off, so only the policy decides
 * the faults, and they are the same from run to run up to the evictor's
 * timing.
 */
#include <getopt.h>
#include <math.h>
#include <stdbool.h>

#include "bench_util.h"
#include "ufo.h"

struct opts {
	size_t size;      /* object bytes */
	size_t chunk;
	double budget_frac;
	double exponent;
	uint64_t accesses;
	uint64_t seed;
	unsigned passes;  /* loop pattern */
};

/* ------------------------------------------------------------- sampling */

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

static double uniform01(uint64_t *state)
{
	return (double)(splitmix64(state) >> 11) * 0x1p-53;
}

struct zipf {
	double e;               /* exponent s */
	uint64_t n;
	double h_x1, h_n, skip; /* precomputed, see zipf_init */
	uint64_t rng;
};

/* log1p(x)/x and expm1(x)/x, with their series near 0. */
static double helper1(double x)
{
	return fabs(x) > 1e-8 ? log1p(x) / x
			      : 1 - x * (0.5 - x * (1 / 3.0 - 0.25 * x));
}

static double helper2(double x)
{
	return fabs(x) > 1e-8 ? expm1(x) / x
			      : 1 + x * 0.5 * (1 + x / 3.0 * (1 + 0.25 * x));
}

static double zipf_h(const struct zipf *z, double x)
{
	return exp(-z->e * log(x));
}

static double zipf_hint(const struct zipf *z, double x)
{
	double lx = log(x);

	return helper2((1 - z->e) * lx) * lx;
}

static double zipf_hint_inv(const struct zipf *z, double x)
{
	double t = x * (1 - z->e);

	return exp(helper1(t < -1 ? -1 : t) * x);
}

static void zipf_init(struct zipf *z, uint64_t n, double e, uint64_t seed)
{
	z->e = e;
	z->n = n;
	z->rng = seed;
	z->h_x1 = zipf_hint(z, 1.5) - 1;
	z->h_n = zipf_hint(z, (double)n + 0.5);
	z->skip = 2 - zipf_hint_inv(z, zipf_hint(z, 2.5) - zipf_h(z, 2));
}

/* A rank in [0, n), rank 0 the most frequent. */
static uint64_t zipf_next(struct zipf *z)
{
	for (;;) {
		double u = z->h_n + uniform01(&z->rng) * (z->h_x1 - z->h_n);
		double x = zipf_hint_inv(z, u);
		uint64_t k = (uint64_t)(x + 0.5);

		if (k < 1)
			k = 1;
		else if (k > z->n)
			k = z->n;
		if ((double)k - x <= z->skip ||
		    u >= zipf_hint(z, (double)k + 0.5) - zipf_h(z, (double)k))
			return k - 1;
	}
}

/* --------------------------------------------------------------- layout */

struct layout {
	uint64_t nchunks, per_chunk; /* elements per chunk */
	uint64_t mul;                /* coprime to nchunks */
};

static uint64_t gcd(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

static void layout_init(struct layout *l, uint64_t n, uint64_t per_chunk)
{
	l->per_chunk = per_chunk;
	l->nchunks = (n + per_chunk - 1) / per_chunk;
	l->mul = UINT64_C(2654435761) % l->nchunks;
	while (l->nchunks > 1 && (l->mul < 2 || gcd(l->mul, l->nchunks) != 1))
		l->mul++;
}

/* Element index for a rank: rank's chunk permuted, offset kept.  The last
 * chunk may be short; ranks that land past the end wrap to the start. */
static uint64_t layout_elem(const struct layout *l, uint64_t rank,
			    uint64_t n)
{
	uint64_t c = (rank / l->per_chunk * l->mul) % l->nchunks;
	uint64_t i = c * l->per_chunk + rank % l->per_chunk;

	return i < n ? i : i - n;
}

/* ------------------------------------------------------------------ run */

struct result {
	struct ufo_stats st;
	enum ufo_policy policy; /* in force, after UFO_POLICY */
	double secs;
	uint64_t distinct;      /* chunks touched at least once */
	uint64_t loads;         /* chunks loaded */
};

static int gen_populate(void *user, uint64_t start, uint64_t end, void *dst)
{
	gen_fill(dst, start, end);
	return 0;
}

static int check_elem(const uint64_t *a, uint64_t i)
{
	if (a[i] == i * GEN_MUL)
		return 0;
	fprintf(stderr, "bench-zipf: element %llu holds %#llx, expected %#llx\n",
		(unsigned long long)i, (unsigned long long)a[i],
		(unsigned long long)(i * GEN_MUL));
	return -EIO;
}

static int access_zipf(const struct opts *o, struct ufo_obj *obj,
		       struct result *r)
{
	const uint64_t *a = ufo_body(obj);
	uint64_t n = ufo_elem_count(obj);
	struct layout l;
	struct zipf z;
	uint8_t *seen;
	int err = 0;

	layout_init(&l, n, ufo_chunk_size(obj) / sizeof(uint64_t));
	zipf_init(&z, n, o->exponent, o->seed);
	seen = calloc(l.nchunks, 1);
	if (!seen)
		return -ENOMEM;
	for (uint64_t k = 0; k < o->accesses && !err; k++) {
		uint64_t i = layout_elem(&l, zipf_next(&z), n);

		err = check_elem(a, i);
		r->distinct += !seen[i / l.per_chunk];
		seen[i / l.per_chunk] = 1;
	}
	free(seen);
	return err;
}

/* Reads one element per page of elements [0, n), passes times. */
static int sweep_pages(struct ufo_obj *obj, uint64_t n, unsigned passes)
{
	const uint64_t *a = ufo_body(obj);
	uint64_t step = 4096 / sizeof(uint64_t);
	int err = 0;

	for (unsigned p = 0; p < passes && !err; p++)
		for (uint64_t i = 0; i < n && !err; i += step)
			err = check_elem(a, i);
	return err;
}

static int access_scan(const struct opts *o, struct ufo_obj *obj,
		       struct result *r)
{
	r->distinct = (ufo_elem_count(obj) * sizeof(uint64_t) +
		       ufo_chunk_size(obj) - 1) / ufo_chunk_size(obj);
	return sweep_pages(obj, ufo_elem_count(obj), 2);
}

/* The loop: the budget's chunks and 10% more. */
static uint64_t loop_chunks(const struct opts *o)
{
	uint64_t budget = (uint64_t)((double)o->size * o->budget_frac) / o->chunk;

	return budget + budget / 10 + 1;
}

static int access_loop(const struct opts *o, struct ufo_obj *obj,
		       struct result *r)
{
	uint64_t n = loop_chunks(o) * (ufo_chunk_size(obj) / sizeof(uint64_t));

	r->distinct = loop_chunks(o);
	return sweep_pages(obj, n, o->passes);
}

typedef int (*access_fn)(const struct opts *o, struct ufo_obj *obj,
			 struct result *r);

static int run_policy(const struct opts *o, access_fn access,
		      enum ufo_advice advice, enum ufo_policy policy,
		      struct result *r)
{
	struct ufo_config cfg;
	struct ufo_params p;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	int err;

	*r = (struct result){ 0 };
	ufo_config_init(&cfg);
	cfg.high_watermark = (size_t)((double)o->size * o->budget_frac);
	cfg.policy = policy;
	err = ufo_ctx_create(&cfg, &ctx);
	if (err) {
		fprintf(stderr, "bench-zipf: ufo_ctx_create: %s%s\n",
			strerror(-err), err == -EPERM || err == -EACCES ?
			" (run as root or set vm.unprivileged_userfaultfd=1)"
			: "");
		return err;
	}
	ufo_ctx_config(ctx, &cfg);
	r->policy = cfg.policy;

	ufo_params_init(&p);
	p.elem_size = sizeof(uint64_t);
	p.elem_count = o->size / sizeof(uint64_t);
	p.chunk_size = o->chunk;
	p.populate = gen_populate;
	err = ufo_create(ctx, &p, &obj);
	if (!err) {
		double t0 = now_sec();

		ufo_advise(obj, 0, p.elem_count, advice);
		err = access(o, obj, r);
		r->secs = now_sec() - t0;
		ufo_ctx_stats(ctx, &r->st);
		r->loads = r->st.bytes_loaded / ufo_chunk_size(obj);
		ufo_free(obj);
	} else {
		fprintf(stderr, "bench-zipf: ufo_create: %s\n",
			strerror(-err));
	}
	ufo_ctx_destroy(ctx);
	return err;
}

static const char *policy_name(enum ufo_policy p)
{
	switch (p) {
	case UFO_POLICY_DEFAULT: return "default";
	case UFO_POLICY_2Q: return "2q";
	case UFO_POLICY_FIFO: return "fifo";
	case UFO_POLICY_MQ: return "mq";
	}
	return "?";
}

static void print_row(const char *label, const struct result *r,
		      const struct result *fifo)
{
	printf("%-7s %-15s %-6s %9llu %9llu %9llu %9llu %8.2f %7.3f\n", label,
	       r == fifo ? "FIFO (peer)" : r->policy == UFO_POLICY_2Q ?
	       "2Q" : "ufo (default)", policy_name(r->policy),
	       (unsigned long long)r->st.faults,
	       (unsigned long long)r->loads,
	       (unsigned long long)r->distinct,
	       (unsigned long long)r->st.evictions, r->secs,
	       fifo->st.faults ? (double)r->st.faults /
				 (double)fifo->st.faults : 0);
}

/* Runs one pattern under the three policies and prints them; returns 0
 * when the default's faults are at most target x FIFO's (or target is 0:
 * information only), 1 when not, or -errno. */
static int run_pattern(const struct opts *o, const char *label,
		       access_fn access, enum ufo_advice advice, double target)
{
	struct result def, q2, fifo;
	double ratio;
	int err;

	if ((err = run_policy(o, access, advice, UFO_POLICY_DEFAULT, &def)) ||
	    (err = run_policy(o, access, advice, UFO_POLICY_2Q, &q2)) ||
	    (err = run_policy(o, access, advice, UFO_POLICY_FIFO, &fifo)))
		return err;
	print_row(label, &def, &fifo);
	print_row(label, &q2, &fifo);
	print_row(label, &fifo, &fifo);
	ratio = fifo.st.faults ? (double)def.st.faults /
				 (double)fifo.st.faults : 0;
	if (!target) {
		printf("%-7s faults ours/peer = %.3f, loads %.3f  (info)\n",
		       label, ratio, fifo.loads ? (double)def.loads /
						  (double)fifo.loads : 0);
		return 0;
	}
	printf("%-7s faults ours/peer = %.3f  target <= %.2f  %s\n", label,
	       ratio, target, ratio <= target ? "met" : "MISSED");
	return ratio <= target ? 0 : 1;
}

/* ---------------------------------------------------------------- main */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench-zipf [--size BYTES] [--chunk BYTES] "
		"[--accesses N] [--exponent S] [--budget-frac F] [--seed N] "
		"[--passes N]\n"
		"  defaults: --size 256M --chunk 64K --accesses 500000 "
		"--exponent 0.99 --budget-frac 0.10 --seed 42 --passes 10\n");
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "size", required_argument, NULL, 's' },
		{ "chunk", required_argument, NULL, 'c' },
		{ "accesses", required_argument, NULL, 'n' },
		{ "exponent", required_argument, NULL, 'e' },
		{ "budget-frac", required_argument, NULL, 'b' },
		{ "seed", required_argument, NULL, 'r' },
		{ "passes", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	*o = (struct opts){ .size = 256 * MiB, .chunk = 64 * KiB,
			    .budget_frac = 0.10, .exponent = 0.99,
			    .accesses = 500000, .seed = 42, .passes = 10 };
	while ((c = getopt_long(argc, argv, "s:c:n:e:b:r:p:h", lo, NULL)) != -1) {
		int err = 0;
		switch (c) {
		case 's': err = parse_size(optarg, &o->size); break;
		case 'c': err = parse_size(optarg, &o->chunk); break;
		case 'n': o->accesses = strtoull(optarg, NULL, 0); break;
		case 'e': o->exponent = atof(optarg); break;
		case 'b': o->budget_frac = atof(optarg); break;
		case 'r': o->seed = strtoull(optarg, NULL, 0); break;
		case 'p': o->passes = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'h': usage(stdout); exit(0);
		default: return -EINVAL;
		}
		if (err)
			return err;
	}
	if (!o->accesses || !o->passes || o->exponent <= 0 || o->budget_frac <= 0 ||
	    o->budget_frac >= 1 || o->size < o->chunk * 16)
		return -EINVAL;
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	char b1[32], b2[32], b3[32];
	int missed = 0, rc;

	if (parse_opts(argc, argv, &o)) {
		usage(stderr);
		return 2;
	}
	if (getenv("UFO_POLICY"))
		fprintf(stderr, "bench-zipf: warning: UFO_POLICY is set and "
			"overrides every run\n");
	printf("bench-zipf: object %s, chunk %s, budget %s (%.0f%%), "
	       "zipf s=%.2f, %llu accesses, seed %llu; loop %llu chunks x %u\n",
	       fmt_size(o.size, b1), fmt_size(o.chunk, b2),
	       fmt_size((size_t)((double)o.size * o.budget_frac), b3),
	       100 * o.budget_frac, o.exponent,
	       (unsigned long long)o.accesses, (unsigned long long)o.seed,
	       (unsigned long long)loop_chunks(&o), o.passes);
	printf("%-7s %-15s %-6s %9s %9s %9s %9s %8s %7s\n", "case", "run",
	       "policy", "faults", "loads", "chunks", "evictions", "secs",
	       "/fifo");
	if ((rc = run_pattern(&o, "zipf", access_zipf, UFO_ADV_RANDOM,
			      0.70)) < 0 ||
	    (missed += rc, rc = run_pattern(&o, "scan", access_scan,
					    UFO_ADV_RANDOM, 1.00)) < 0 ||
	    (missed += rc, rc = run_pattern(&o, "loop", access_loop,
					    UFO_ADV_RANDOM, 1.00)) < 0 ||
	    (missed += rc, rc = run_pattern(&o, "loop+ra", access_loop,
					    UFO_ADV_NORMAL, 0)) < 0)
		return 1;
	missed += rc;
	printf("loads: chunks loaded (faults + readahead); chunks: distinct "
	       "chunks touched (the compulsory faults)\n");
	return missed ? 1 : 0;
}
