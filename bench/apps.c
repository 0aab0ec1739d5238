/* SPDX-License-Identifier: MIT */
/*
 * bench-apps: the clustered k-means example (examples/kmeans) with X% of
 * each worker's working set in local memory, as a percentage of the same
 * computation on all-local memory: the far-memory metric of Hydra, Eden,
 * Fastswap and AIFM ("completion time at 50% local memory, normalised to
 * 100% local").
 *
 * The dataset is one replicated object (R = 2) on three ufo-servers, which
 * the bench starts on loopback (or --servers LIST: servers already running,
 * e.g. in scripts/testbed.sh).  --workers forked workers (the example's
 * fork launcher) each own a slice of the points and a labels object.
 * Cases, each timed from the first remote call to the labels being durable
 * (the all-local case: the iterations alone):
 *
 *   all-local (peer)    the slice preloaded from the servers (untimed) into
 *                       malloc'd memory, labels in malloc'd memory: 100%;
 *   download first      each worker downloads the whole dataset into
 *                       malloc'd memory, computes, uploads its labels;
 *   ufo, X% local       the dataset and labels mapped through a budget of
 *                       X% of the worker's working set (its slice of points
 *                       plus its labels), X = 100, 50, 25; at 50 and 25
 *                       also with the dataset advised SEQUENTIAL (the
 *                       example's --sequential).
 *
 * Every case checks its centroids and every worker's labels against a
 * serial reference computed here.  Rounds interleave the cases; the table
 * shows medians, the counters (faults, prefetches, bytes) of the last
 * round, summed over the workers: those hold across machines better than
 * times do.
 */
#include <ftw.h>
#include <stdbool.h>
#include <getopt.h>
#include <sys/mman.h>

#include "bench_proc.h"
#include "bench_util.h"
#include "kmeans.h"

#define NSRV 3            /* servers started when --servers is not given */
#define REPS_MAX 32
#define MiB_F (1024.0 * 1024.0)

enum kind { LOCAL, DOWNLOAD, MAPPED };

struct bench_case {
	const char *label;
	enum kind kind;
	unsigned percent;  /* MAPPED: budget as % of the working set */
	bool sequential;   /* MAPPED: the dataset advised SEQUENTIAL */
};

static const struct bench_case cases[] = {
	{ "all-local (peer)", LOCAL, 0, false },
	{ "download first (peer)", DOWNLOAD, 0, false },
	{ "ufo, 100% local", MAPPED, 100, false },
	{ "ufo, 50% local", MAPPED, 50, false },
	{ "ufo, 25% local", MAPPED, 25, false },
	{ "ufo, 50%, SEQUENTIAL", MAPPED, 50, true },
	{ "ufo, 25%, SEQUENTIAL", MAPPED, 25, true },
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

/* What worker 0 leaves for the parent, in memory shared across the fork. */
struct result {
	struct km_rank_stats total;   /* secs: slowest worker; others summed */
	uint64_t memory_max;          /* bytes of the most a worker held */
	uint64_t hash[KM_MAX_RANKS];  /* each worker's labels */
	struct km_model model;
};

struct job {
	const struct km_params *p;
	const struct bench_case *c;
	struct result *res;
};

struct opts {
	const char *servers, *secret, *server_bin;
	unsigned reps;
};

struct env {
	char root[PATH_MAX / 2];
	char secret[PATH_MAX];
	struct child srv[NSRV];
	unsigned started;
};

/* ------------------------------------------------------------- workers */

static uint64_t labels_bytes(uint64_t count)
{
	return count * sizeof(uint32_t);
}

/* A context whose budget holds bytes without evicting. */
static int roomy_ctx(const struct km_params *p, uint64_t bytes,
		     struct ufo_ctx **ctx)
{
	return km_ctx(p, (size_t)bytes + 8 * p->chunk, ctx);
}

/* Copies points [first, first + n) of the dataset to dst through a
 * mapping. 0 or -errno. */
static int copy_points(const struct km_params *p, struct ufo_ctx *ctx,
		       uint64_t first, uint64_t n, int32_t *dst)
{
	struct ufo_obj *obj;
	int err = km_open_dataset(p, ctx, false, &obj);

	if (err)
		return err;
	ufo_advise(obj, first * km_point_bytes(p),
		   (first + n) * km_point_bytes(p), UFO_ADV_WILLNEED);
	memcpy(dst, (int32_t *)ufo_body(obj) + first * p->dims,
	       n * km_point_bytes(p));
	return ufo_free(obj);
}

/* Preloads the starting centroids' points and the slice (untimed). */
static int preload(const struct km_params *p, uint64_t first, uint64_t n,
		   int32_t *start, int32_t *pts)
{
	struct ufo_ctx *ctx;
	int err = roomy_ctx(p, n * km_point_bytes(p), &ctx);

	if (err)
		return err;
	err = copy_points(p, ctx, 0, p->k, start);
	if (!err)
		err = copy_points(p, ctx, first, n, pts);
	ufo_ctx_destroy(ctx);
	return err;
}

/* The all-local peer: only the iterations are timed. */
static int run_local(const struct km_params *p, struct km_comm *c,
		     struct km_model *m, struct km_rank_stats *st)
{
	uint64_t first, n;
	int32_t *start = malloc(km_point_bytes(p) * p->k), *pts;
	uint32_t *labels;
	int err;

	km_slice(p, c->rank, c->size, &first, &n);
	pts = malloc(n * km_point_bytes(p));
	labels = calloc(n, sizeof(*labels));
	err = start && pts && labels ? preload(p, first, n, start, pts) : -ENOMEM;
	if (!(err = km_all_ok(c, err))) {
		double t0 = now_sec();

		km_model_init(p, start, m);
		err = km_iterate(p, c, m, pts, labels, n, NULL);
		st->secs = now_sec() - t0;
		st->points = n;
		st->resident_peak = n * km_point_bytes(p) + labels_bytes(n);
		st->labels_hash = km_hash(labels, n);
	}
	free(start);
	free(pts);
	free(labels);
	return err;
}

/* Writes the labels to the worker's labels object, durably. */
static int upload_labels(const struct km_params *p, struct km_comm *c,
			 struct ufo_ctx *ctx, const uint32_t *labels,
			 uint64_t n)
{
	struct ufo_obj *obj;
	int err = km_open_labels(p, ctx, c->rank, c->size, n, &obj);

	if (err)
		return err;
	memcpy(ufo_body(obj), labels, labels_bytes(n));
	err = ufo_sync(obj);
	return ufo_free(obj) ? -EIO : err;
}

static void copy_counters(struct ufo_ctx *ctx, struct km_rank_stats *st)
{
	struct ufo_stats s;

	if (ufo_ctx_stats(ctx, &s))
		return;
	st->faults = s.faults;
	st->prefetches = s.prefetches;
	st->evictions = s.evictions;
	st->bytes_loaded = s.bytes_loaded;
	st->bytes_written = s.writeback_bytes;
}

/* The download-first peer: the whole dataset to every worker, then the
 * computation on it, then the labels up. */
static int run_download(const struct km_params *p, struct km_comm *c,
			struct km_model *m, struct km_rank_stats *st)
{
	uint64_t first, n, size = km_dataset_bytes(p);
	int32_t *all = malloc(size);
	uint32_t *labels;
	struct ufo_ctx *ctx;
	double t0 = now_sec();
	int err;

	km_slice(p, c->rank, c->size, &first, &n);
	labels = calloc(n, sizeof(*labels));
	err = all && labels ? roomy_ctx(p, size, &ctx) : -ENOMEM;
	if (!err) {
		err = copy_points(p, ctx, 0, p->points, all);
		if (!(err = km_all_ok(c, err))) {
			km_model_init(p, all, m);
			err = km_iterate(p, c, m, all + first * p->dims, labels,
					 n, NULL);
		}
		if (!err)
			err = upload_labels(p, c, ctx, labels, n);
		st->secs = now_sec() - t0;
		copy_counters(ctx, st);
		ufo_ctx_destroy(ctx);
	}
	st->points = n;
	st->resident_peak = size + labels_bytes(n);
	st->labels_hash = km_hash(labels, n);
	free(all);
	free(labels);
	return err;
}

/* One worker of one case; worker 0 gathers everyone's figures into the
 * shared result. */
static int worker(struct km_comm *c, void *user)
{
	const struct job *j = user;
	struct km_params p = *j->p;
	struct km_rank_stats st = { 0 }, *all = calloc(c->size, sizeof(*all));
	struct km_model m;
	int err = all ? 0 : -ENOMEM;

	p.budget = (size_t)(km_working_set(&p, c->rank, c->size) *
			    j->c->percent / 100);
	p.sequential = j->c->sequential;
	if (!err && j->c->kind == LOCAL)
		err = run_local(&p, c, &m, &st);
	else if (!err && j->c->kind == DOWNLOAD)
		err = run_download(&p, c, &m, &st);
	else if (!err)
		err = km_rank_run(&p, c, &m, &st);
	err = km_all_ok(c, err);
	if (!err)
		err = c->gather(c, &st, sizeof(st), all);
	if (!err && c->rank == 0) {
		struct result *r = j->res;

		memset(r, 0, sizeof(*r));
		r->model = m;
		for (unsigned i = 0; i < c->size; i++) {
			r->hash[i] = all[i].labels_hash;
			if (all[i].resident_peak > r->memory_max)
				r->memory_max = all[i].resident_peak;
			r->total.secs = all[i].secs > r->total.secs ?
					all[i].secs : r->total.secs;
			r->total.faults += all[i].faults;
			r->total.prefetches += all[i].prefetches;
			r->total.bytes_loaded += all[i].bytes_loaded;
			r->total.bytes_written += all[i].bytes_written;
		}
	}
	free(all);
	return err ? 1 : 0;
}

/* Stores the dataset from a child: the parent never creates a context,
 * so that it forks workers with no library thread or mapping of its own. */
static int store_worker(struct km_comm *c, void *user)
{
	return km_store_dataset(user) ? 1 : 0;
}

/* --------------------------------------------------------------- checks */

struct reference {
	struct km_model model;
	uint64_t hash[KM_MAX_RANKS];  /* each worker's slice of the labels */
};

static int reference(const struct km_params *p, struct reference *ref)
{
	uint32_t *labels;
	int err = km_reference(p, &ref->model, &labels);

	for (unsigned r = 0; !err && r < p->workers; r++) {
		uint64_t first, n;

		km_slice(p, r, p->workers, &first, &n);
		ref->hash[r] = km_hash(labels + first, n);
	}
	if (!err)
		free(labels);
	return err;
}

/* 0 when r's centroids and every worker's labels are the reference's. */
static int check(const struct km_params *p, const struct reference *ref,
		 const struct result *r)
{
	if (memcmp(ref->model.c, r->model.c, sizeof(double) * p->k * p->dims))
		return -EILSEQ;
	for (unsigned i = 0; i < p->workers; i++)
		if (r->hash[i] != ref->hash[i])
			return -EILSEQ;
	return 0;
}

/* --------------------------------------------------------------- tables */

struct figures {
	double secs[REPS_MAX];  /* sorted by median() */
	struct result last;     /* the last round's counters */
	int failed;             /* a round failed or its result was wrong */
};

/* Runs one round of case i; 0, or -errno after saying why. */
static int round_once(const struct km_params *p, const struct reference *ref,
		      size_t i, struct result *shared, struct figures *f,
		      unsigned rep)
{
	struct job j = { p, &cases[i], shared };

	if (comm_fork_run(p->workers, worker, &j)) {
		fprintf(stderr, "bench-apps: %s: a worker failed\n",
			cases[i].label);
		return -EIO;
	}
	if (check(p, ref, shared)) {
		fprintf(stderr, "bench-apps: %s: WRONG RESULT: the centroids or "
			"labels differ from the serial reference\n",
			cases[i].label);
		return -EILSEQ;
	}
	f->secs[rep] = shared->total.secs;
	f->last = *shared;
	return 0;
}

static void measure(const struct km_params *p, const struct opts *o,
		    const struct reference *ref, struct result *shared,
		    struct figures *f)
{
	for (unsigned rep = 0; rep < o->reps; rep++)
		for (size_t i = 0; i < NCASES; i++)
			if (!f[i].failed && round_once(p, ref, i, shared, &f[i], rep))
				f[i].failed = 1;
}

static void print_row(const struct km_params *p, size_t i,
		      const struct figures *f, double med, double local,
		      double download)
{
	const struct result *r = &f[i].last;
	char budget[32] = "-";

	if (cases[i].kind == MAPPED)
		snprintf(budget, sizeof(budget), "%.1f",
			 (double)km_working_set(p, 0, p->workers) *
			 cases[i].percent / 100 / MiB_F);
	if (f[i].failed) {
		printf("%-22s %9s   FAILED (see above)\n", cases[i].label, budget);
		return;
	}
	printf("%-22s %9s %7.2f %8.0f%% %9.2f %9llu %10llu %11.1f %11.1f "
	       "%13.1f\n", cases[i].label, budget, med, 100 * med / local,
	       med / download, (unsigned long long)r->total.faults,
	       (unsigned long long)r->total.prefetches,
	       (double)r->total.bytes_loaded / MiB_F,
	       (double)r->total.bytes_written / MiB_F,
	       (double)r->memory_max / MiB_F);
}

static void print_table(const struct km_params *p, const struct opts *o,
			struct figures *f)
{
	double med[NCASES], spread[NCASES];

	for (size_t i = 0; i < NCASES; i++) {
		med[i] = f[i].failed ? 0 : median(f[i].secs, (int)o->reps);
		spread[i] = f[i].failed ? 0 : f[i].secs[o->reps - 1] / f[i].secs[0];
	}
	printf("%-22s %9s %7s %9s %9s %9s %10s %11s %11s %13s\n", "case",
	       "budget", "secs", "% local", "/download", "faults",
	       "prefetched", "fetched MiB", "written MiB", "memory MiB");
	for (size_t i = 0; i < NCASES; i++)
		print_row(p, i, f, med[i], med[0], med[1]);
	printf("spread (slowest/fastest round):");
	for (size_t i = 0; i < NCASES; i++)
		printf("%s %s %.2f", i ? "," : "", cases[i].label, spread[i]);
	printf("\nbudget and memory per worker (memory: the most a worker held:"
	       " malloc'd data for the peers, peak resident for ufo); counters"
	       " of the last round, summed over the workers\n");
}

/* ------------------------------------------------------------------ setup */

static void print_loadavg(const char *when)
{
	double l[3] = { 0 };
	FILE *f = fopen("/proc/loadavg", "r");

	if (!f || fscanf(f, "%lf %lf %lf", &l[0], &l[1], &l[2]) != 3)
		printf("load average %s: unknown\n", when);
	else
		printf("load average %s: %.2f %.2f %.2f\n", when, l[0], l[1], l[2]);
	if (f)
		fclose(f);
}

/* Starts NSRV servers on loopback and exports their list and secret.
 * 0 or -errno, reported. */
static int env_start(struct env *e, const struct opts *o)
{
	char data[PATH_MAX], list[NSRV * 24] = "";
	size_t len = 0;
	int err;

	if ((err = bench_tmpdir(e->root, sizeof(e->root), "bench-apps")))
		return err;
	snprintf(e->secret, sizeof(e->secret), "%s/secret", e->root);
	if ((err = write_secret(e->secret)))
		return err;
	for (unsigned i = 0; i < NSRV; i++, e->started++) {
		unsigned port = 0;

		snprintf(data, sizeof(data), "%s/data%u", e->root, i);
		snprintf(e->srv[i].out, sizeof(e->srv[i].out),
			 "%s/server%u.out", e->root, i);
		if ((err = ufo_server_spawn(&e->srv[i], server_bin(o->server_bin),
					    data, e->secret, &port))) {
			fprintf(stderr, "bench-apps: starting ufo-server: %s\n",
				strerror(-err));
			return err;
		}
		len += (size_t)snprintf(list + len, sizeof(list) - len,
					"%s127.0.0.1:%u", i ? "," : "", port);
	}
	setenv("UFO_SECRET_FILE", e->secret, 1);
	return setenv("UFO_SERVERS", list, 1) ? -errno : 0;
}

static void env_stop(struct env *e)
{
	for (unsigned i = 0; i < e->started; i++)
		child_stop(&e->srv[i]);
	if (e->root[0])
		nftw(e->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static const char usage_text[] =
	"usage: bench-apps [options]\n"
	"  --servers LIST     use these running servers (host:port,...; the\n"
	"                     secret from --secret-file or $UFO_SECRET_FILE)\n"
	"                     instead of starting 3 on loopback\n"
	"  --secret-file F    the servers' secret, with --servers\n"
	"  --server-bin PATH  ufo-server to start (default $UFO_SERVER_BIN,\n"
	"                     else ../server/ufo-server next to this binary)\n"
	"  --workers N        forked workers (default 2)\n"
	"  --points N         (default 2097152: 128 MiB at 16 dims)\n"
	"  --dims D, --k K    (default 16, 16)\n"
	"  --iters N          k-means iterations (default 5)\n"
	"  --chunk BYTES      chunk of the dataset and labels (default 256K)\n"
	"  --reps N           rounds, medians shown (default 3)\n";

static int parse_opts(int argc, char **argv, struct opts *o,
		      struct km_params *p)
{
	static const struct option lo[] = {
		{ "servers", 1, 0, 'S' }, { "secret-file", 1, 0, 'K' },
		{ "server-bin", 1, 0, 'b' }, { "workers", 1, 0, 'w' },
		{ "points", 1, 0, 'p' }, { "dims", 1, 0, 'd' },
		{ "k", 1, 0, 'k' }, { "iters", 1, 0, 'i' },
		{ "chunk", 1, 0, 'c' }, { "reps", 1, 0, 'r' },
		{ "help", 0, 0, 'h' }, { 0, 0, 0, 0 },
	};
	size_t v;
	int c;

	*o = (struct opts){ .reps = 3 };
	*p = (struct km_params){ .name = "bench-apps", .points = 1u << 21,
				 .dims = 16, .k = 16, .iters = 5, .seed = 1,
				 .chunk = 256 * KiB, .workers = 2,
				 .quiet = true };
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (c == 'S') o->servers = optarg;
		else if (c == 'K') o->secret = optarg;
		else if (c == 'b') o->server_bin = optarg;
		else if (c == 'h') { fputs(usage_text, stdout); exit(0); }
		else if (c == '?' || parse_size(optarg, &v)) return -EINVAL;
		else if (c == 'w') p->workers = (unsigned)v;
		else if (c == 'p') p->points = v;
		else if (c == 'd') p->dims = (unsigned)v;
		else if (c == 'k') p->k = (unsigned)v;
		else if (c == 'i') p->iters = (unsigned)v;
		else if (c == 'c') p->chunk = v;
		else if (c == 'r') o->reps = (unsigned)v;
	}
	if (optind < argc || !o->reps || o->reps > REPS_MAX || !p->workers ||
	    p->workers > KM_MAX_RANKS || p->dims > KM_MAX_DIMS ||
	    p->k > KM_MAX_K || p->k > p->points || p->chunk % 4096 ||
	    p->chunk % km_point_bytes(p))
		return -EINVAL;
	p->secret = o->secret;
	return o->servers && setenv("UFO_SERVERS", o->servers, 1) ? -errno : 0;
}

static void print_setup(const struct km_params *p, const struct opts *o)
{
	uint64_t first, n;
	char b[32];

	km_slice(p, 0, p->workers, &first, &n);
	printf("bench-apps: k-means with X%% of each worker's working set in "
	       "local memory, as %% of the all-local time\n");
	printf("dataset %.1f MiB (%llu points x %u dims), replicated (R = 2) "
	       "on %s%s; chunk %s\n", (double)km_dataset_bytes(p) / MiB_F,
	       (unsigned long long)p->points, p->dims, getenv("UFO_SERVERS"),
	       o->servers ? "" : " (started here, loopback)",
	       fmt_size(p->chunk, b));
	printf("%u forked workers, k %u, %u iterations, %u round(s), medians; "
	       "working set per worker %.1f MiB (%.1f MiB of points, %.1f MiB "
	       "of labels)\n", p->workers, p->k, p->iters, o->reps,
	       (double)km_working_set(p, 0, p->workers) / MiB_F,
	       (double)(n * km_point_bytes(p)) / MiB_F,
	       (double)labels_bytes(n) / MiB_F);
}

int main(int argc, char **argv)
{
	struct figures f[NCASES] = { 0 };
	struct reference ref;
	struct result *shared;
	struct km_params p;
	struct opts o;
	struct env e = { 0 };
	int err, failed = 0;

	if (parse_opts(argc, argv, &o, &p)) {
		fputs(usage_text, stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	shared = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	err = shared == MAP_FAILED ? -errno : 0;
	if (!err && !o.servers)
		err = env_start(&e, &o);
	if (!err) {
		print_setup(&p, &o);
		print_loadavg("before");
		fflush(stdout);
		err = comm_fork_run(1, store_worker, &p) ? -EIO : reference(&p, &ref);
	}
	if (!err) {
		measure(&p, &o, &ref, shared, f);
		print_table(&p, &o, f);
		print_loadavg("after");
		for (size_t i = 0; i < NCASES; i++)
			failed += f[i].failed;
		printf("check: %s\n", failed ? "FAILED (a case failed or "
		       "computed a wrong result)" : "every case's centroids and "
		       "labels equal the serial reference");
	}
	env_stop(&e);
	if (err)
		fprintf(stderr, "bench-apps: %s\n", strerror(-err));
	return err || failed ? 1 : 0;
}
