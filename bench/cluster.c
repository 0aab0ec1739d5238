/* SPDX-License-Identifier: MIT */
/*
 * bench-cluster: replicated objects over several local ufo-servers, against
 * an ordinary object on one server.  The bench starts NSRV servers (temp
 * dirs, ephemeral ports, one secret) and stops them.
 *
 * Part 1, sequential scan (summing u64 words) of a --size object through a
 * UFO, 1 MiB chunks, a BUDGET high watermark, READ_ONLY:
 *   plain          the peer: an object on the first server, opened by
 *                  ufo://host:port/name (no versions, no placement);
 *   cluster N      a replicated object with R = 1 placed over the first N
 *                  servers (N = 1..NSRV), so its groups are spread over
 *                  them and each block has one copy.
 *   Ratios: against the 1-server cluster (what spreading adds) and against
 *   plain (what the cluster layer costs).
 *
 * Part 2, writes: every word of the object rewritten through a UFO, then
 * ufo_sync, timed from the open to the end of the sync, over NSRV servers:
 * R = 1 (the peer) and R = 2, W = 2; a plain object for information.
 * A chunk is fetched before its first write (a UFO populates on touch).
 *
 * Objects are created and filled once, untimed; every case checks what it
 * read or wrote against a closed form.  Figures are medians over --reps
 * rounds, the cases interleaved within a round.  The client and all servers
 * share this machine's CPUs, which bound every figure: more servers add
 * server threads and disks, not cores.
 */
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_proc.h"
#include "bench_util.h"
#include "ufo.h"

#define NSRV 3                   /* servers started */
#define CHUNK MiB                /* chunk = block size on the servers */
#define BUDGET (128 * MiB)       /* the client's high watermark */
#define LIST_MAX (NSRV * 24)     /* "127.0.0.1:PORT," per server */

struct opts {
	const char *server_bin;
	size_t size;
	int reps;
};

struct env {
	char root[PATH_MAX / 2]; /* temp dir: data dirs, secret, logs */
	char secret[PATH_MAX];
	struct child srv[NSRV];
	unsigned port[NSRV];
	char list[NSRV + 1][LIST_MAX]; /* list[n]: the first n servers */
};

/* One row of a table: an object and how it is stored. */
struct bench_case {
	const char *label;
	const char *obj;
	unsigned servers;  /* replicated over the first N; 0: plain on the
			    * first server */
	unsigned replicas; /* R (W = R) */
};

enum { SCAN_PLAIN, SCAN_C1, SCAN_N = SCAN_C1 + NSRV };

static const struct bench_case scan_cases[SCAN_N] = {
	{ "plain object (peer)", "scan-plain", 0, 0 },
	{ "cluster R=1, 1 server", "scan-1", 1, 1 },
	{ "cluster R=1, 2 servers", "scan-2", 2, 1 },
	{ "cluster R=1, 3 servers", "scan-3", 3, 1 },
};

enum { WRITE_R1, WRITE_R2, WRITE_PLAIN, WRITE_N };

static const struct bench_case write_cases[WRITE_N] = {
	{ "cluster R=1 (peer)", "write-r1", NSRV, 1 },
	{ "cluster R=2, W=2", "write-r2", NSRV, 2 },
	{ "plain object (info)", "write-plain", 0, 0 },
};

/* ------------------------------------------------------------- objects */

/* Sum of the words of pattern k: word i is (i + k) * GEN_MUL. */
static uint64_t pattern_sum(uint64_t n, uint64_t k)
{
	return gen_sum(n + k) - gen_sum(k);
}

/* A context with the budget, and c's object in it (created when create).
 * 0 or -errno, reported. */
static int obj_open(const struct env *e, const struct opts *o,
		    const struct bench_case *c, bool create,
		    struct ufo_ctx **ctx, struct ufo_obj **obj)
{
	struct ufo_config cfg;
	struct ufo_remote_opts ro;
	char url[PATH_MAX];
	int err;

	/* "ufo:///name" takes the servers from $UFO_SERVERS, for any number
	 * of them ("ufo://a,b/name" needs two); set while no library thread
	 * runs. */
	if (c->servers) {
		setenv("UFO_SERVERS", e->list[c->servers], 1);
		snprintf(url, sizeof(url), "ufo:///%s", c->obj);
	} else {
		snprintf(url, sizeof(url), "ufo://127.0.0.1:%u/%s", e->port[0],
			 c->obj);
	}
	ufo_config_init(&cfg);
	cfg.high_watermark = BUDGET;
	if ((err = ufo_ctx_create(&cfg, ctx))) {
		fprintf(stderr, "bench-cluster: ufo_ctx_create: %s\n",
			strerror(-err));
		return err;
	}
	ufo_remote_opts_init(&ro);
	ro.secret_file = e->secret;
	ro.chunk_size = CHUNK;
	ro.flags = create ? UFO_REMOTE_CREATE : 0;
	ro.create_size = o->size;
	ro.replicas = c->replicas;
	if ((err = ufo_remote_open(*ctx, url, &ro, obj))) {
		fprintf(stderr, "bench-cluster: opening %s: %s\n", url,
			strerror(-err));
		ufo_ctx_destroy(*ctx);
	}
	return err;
}

static int obj_close(struct ufo_ctx *ctx, struct ufo_obj *obj)
{
	int err = ufo_free(obj);

	ufo_ctx_destroy(ctx);
	return err;
}

/* Writes pattern k into every word, then ufo_sync. */
static int obj_fill(struct ufo_obj *obj, uint64_t k)
{
	uint64_t *a = ufo_body(obj), n = ufo_elem_count(obj) / 8;
	uint64_t per = CHUNK / 8;

	for (uint64_t i = 0; i < n; i += per)
		gen_fill(a + i, i + k, i + k + (n - i < per ? n - i : per));
	return ufo_sync(obj);
}

/* 0, or -EIO after reporting a sum that is not pattern k's, with the
 * chunks that differ. */
static int obj_check(const struct bench_case *c, struct ufo_obj *obj,
		     uint64_t k)
{
	const uint64_t *a = ufo_body(obj);
	uint64_t n = ufo_elem_count(obj) / 8, per = CHUNK / 8, bad = 0;
	uint64_t sum = scan_sum(a, n);

	if (sum == pattern_sum(n, k))
		return 0;
	fprintf(stderr, "bench-cluster: %s: WRONG DATA: sum %#llx, expected "
		"%#llx\n", c->obj, (unsigned long long)sum,
		(unsigned long long)pattern_sum(n, k));
	for (uint64_t i = 0; i < n; i += per) {
		uint64_t end = n - i < per ? n - i : per;

		if (scan_sum(a + i, end) == pattern_sum(i + end, k) -
					      pattern_sum(i, k))
			continue;
		if (bad++ < 8)
			fprintf(stderr, "  chunk %llu: word 0 is %#llx, "
				"expected %#llx\n",
				(unsigned long long)(i / per),
				(unsigned long long)a[i],
				(unsigned long long)((i + k) * GEN_MUL));
	}
	fprintf(stderr, "  %llu of %llu chunks differ\n",
		(unsigned long long)bad, (unsigned long long)((n + per - 1) / per));
	return -EIO;
}

/* ----------------------------------------------------------------- runs */

/* Times open + scan, checking pattern k. */
static int scan_check(const struct env *e, const struct opts *o,
		      const struct bench_case *c, uint64_t k, double *secs)
{
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	double t0 = now_sec();
	int err = obj_open(e, o, c, false, &ctx, &obj);

	if (err)
		return err;
	err = obj_check(c, obj, k);
	*secs = now_sec() - t0;
	return obj_close(ctx, obj) ? -EIO : err;
}

/* Part 1's objects hold pattern 0, written by setup_obj. */
static int run_scan(const struct env *e, const struct opts *o,
		    const struct bench_case *c, unsigned round, double *secs)
{
	return scan_check(e, o, c, 0, secs);
}

/* Times open + writing pattern round + 1 + ufo_sync: a new pattern each
 * round, so that every chunk changes (hash mode would skip the rest). */
static int run_write(const struct env *e, const struct opts *o,
		     const struct bench_case *c, unsigned round, double *secs)
{
	uint64_t k = (uint64_t)round + 1;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	double t0 = now_sec();
	int err = obj_open(e, o, c, false, &ctx, &obj);

	if (err)
		return err;
	err = obj_fill(obj, k);
	*secs = now_sec() - t0;
	if (err)
		fprintf(stderr, "bench-cluster: %s: ufo_sync: %s\n", c->obj,
			strerror(-err));
	return obj_close(ctx, obj) ? -EIO : err;
}

/* Creates c's object and writes pattern 0 into it (untimed). */
static int setup_obj(const struct env *e, const struct opts *o,
		     const struct bench_case *c)
{
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	int err = obj_open(e, o, c, true, &ctx, &obj);

	if (err)
		return err;
	err = obj_fill(obj, 0);
	if (err)
		fprintf(stderr, "bench-cluster: filling %s: %s\n", c->obj,
			strerror(-err));
	return obj_close(ctx, obj) ? -EIO : err;
}

/* --------------------------------------------------------------- tables */

struct figures {
	double gbs;    /* from the median time */
	double spread; /* slowest / fastest round */
};

/* Runs every case reps times, the rounds interleaved. */
static int measure(const struct env *e, const struct opts *o,
		   const struct bench_case *cases, size_t n,
		   int (*run)(const struct env *, const struct opts *,
			      const struct bench_case *, unsigned, double *),
		   struct figures *f)
{
	double *secs = calloc(n * (size_t)o->reps, sizeof(*secs));
	int err = secs ? 0 : -ENOMEM;

	for (int r = 0; !err && r < o->reps; r++)
		for (size_t i = 0; !err && i < n; i++)
			err = run(e, o, &cases[i], (unsigned)r,
				  &secs[i * (size_t)o->reps + (size_t)r]);
	for (size_t i = 0; !err && i < n; i++) {
		double *v = &secs[i * (size_t)o->reps];

		f[i].gbs = (double)o->size / median(v, o->reps) / 1e9;
		f[i].spread = v[o->reps - 1] / v[0]; /* median() sorted v */
	}
	free(secs);
	return err;
}

static void print_spread(const struct bench_case *cases, size_t n,
			 const struct figures *f)
{
	printf("spread (slowest/fastest round):");
	for (size_t i = 0; i < n; i++)
		printf("%s %s %.2f", i ? "," : "", cases[i].obj, f[i].spread);
	printf("\n");
}

static int part_scan(const struct env *e, const struct opts *o)
{
	const struct figures *one, *plain;
	struct figures f[SCAN_N];
	char b[32];
	int err;

	if ((err = measure(e, o, scan_cases, SCAN_N, run_scan, f)))
		return err;
	one = &f[SCAN_C1];
	plain = &f[SCAN_PLAIN];
	printf("\npart 1: sequential scan through a UFO, object %s, R=1, %d "
	       "round(s), medians\n", fmt_size(o->size, b), o->reps);
	printf("%-24s %8s %12s %9s\n", "case", "GB/s", "vs 1 server",
	       "ours/peer");
	for (size_t i = 0; i < SCAN_N; i++) {
		const struct bench_case *c = &scan_cases[i];

		printf("%-24s %8.3f ", c->label, f[i].gbs);
		if (c->servers)
			printf("%12.2f %9.2f\n", f[i].gbs / one->gbs,
			       f[i].gbs / plain->gbs);
		else
			printf("%12s %9s\n", "", "(peer)");
	}
	print_spread(scan_cases, SCAN_N, f);
	return 0;
}

static int part_write(const struct env *e, const struct opts *o)
{
	struct figures f[WRITE_N];
	char b[32];
	int err;

	if ((err = measure(e, o, write_cases, WRITE_N, run_write, f)))
		return err;
	/* The last round's pattern must be what the servers hold now. */
	for (size_t i = 0; !err && i < WRITE_N; i++) {
		double unused;

		err = scan_check(e, o, &write_cases[i], (uint64_t)o->reps,
				 &unused);
	}
	if (err)
		return err;
	printf("\npart 2: rewrite every word + ufo_sync through a UFO, object "
	       "%s over %d servers, %d round(s), medians; each chunk is "
	       "fetched before its first write\n", fmt_size(o->size, b), NSRV,
	       o->reps);
	printf("%-24s %8s %9s\n", "case", "GB/s", "ours/peer");
	for (size_t i = 0; i < WRITE_N; i++) {
		printf("%-24s %8.3f ", write_cases[i].label, f[i].gbs);
		if (i == WRITE_R1)
			printf("%9s\n", "(peer)");
		else
			printf("%9.2f\n", f[i].gbs / f[WRITE_R1].gbs);
	}
	print_spread(write_cases, WRITE_N, f);
	return 0;
}

/* ------------------------------------------------------------------ main */

static int env_setup(struct env *e, const struct opts *o)
{
	char data[PATH_MAX];
	size_t len = 0;
	int err;

	if ((err = bench_tmpdir(e->root, sizeof(e->root), "bench-cluster")))
		return err;
	snprintf(e->secret, sizeof(e->secret), "%s/secret", e->root);
	if ((err = write_secret(e->secret)))
		return err;
	for (unsigned i = 0; i < NSRV; i++) {
		snprintf(data, sizeof(data), "%s/data%u", e->root, i);
		snprintf(e->srv[i].out, sizeof(e->srv[i].out),
			 "%s/server%u.out", e->root, i);
		if ((err = ufo_server_spawn(&e->srv[i], o->server_bin, data,
					    e->secret, &e->port[i]))) {
			fprintf(stderr, "bench-cluster: starting %s: %s\n",
				o->server_bin, strerror(-err));
			return err;
		}
		len += (size_t)snprintf(e->list[NSRV] + len, LIST_MAX - len,
					"%s127.0.0.1:%u", i ? "," : "",
					e->port[i]);
		memcpy(e->list[i + 1], e->list[NSRV], len + 1);
	}
	for (size_t i = 0; !err && i < SCAN_N; i++)
		err = setup_obj(e, o, &scan_cases[i]);
	for (size_t i = 0; !err && i < WRITE_N; i++)
		err = setup_obj(e, o, &write_cases[i]);
	return err;
}

static void env_cleanup(struct env *e)
{
	for (unsigned i = 0; i < NSRV; i++)
		child_stop(&e->srv[i]);
	if (e->root[0])
		nftw(e->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench-cluster [options]\n"
		"  --size BYTES       object size, a multiple of 1M (default "
		"512M)\n"
		"  --reps N           rounds, medians shown (default 3)\n"
		"  --server-bin PATH  ufo-server (default $UFO_SERVER_BIN, else\n"
		"                     ../server/ufo-server next to this "
		"binary)\n");
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "size", required_argument, NULL, 's' },
		{ "reps", required_argument, NULL, 'r' },
		{ "server-bin", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	char *end;
	int c;

	*o = (struct opts){ .size = 512 * MiB, .reps = 3 };
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			exit(0);
		case 's':
			if (parse_size(optarg, &o->size) || o->size % CHUNK)
				return -EINVAL;
			break;
		case 'r':
			o->reps = (int)strtol(optarg, &end, 10);
			if (*end || o->reps < 1 || o->reps > 100)
				return -EINVAL;
			break;
		case 'S':
			o->server_bin = optarg;
			break;
		default:
			return -EINVAL;
		}
	}
	o->server_bin = server_bin(o->server_bin);
	return optind < argc ? -EINVAL : 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct env e = { .root = "" };
	char b1[32], b2[32];
	int err;

	if (parse_opts(argc, argv, &o)) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	err = env_setup(&e, &o);
	if (!err) {
		printf("bench-cluster: object %s, chunk 1M, groups of 4 chunks "
		       "(the default), budget %s (high watermark), %d "
		       "ufo-servers on loopback TCP (default workers)\n",
		       fmt_size(o.size, b1), fmt_size(BUDGET, b2), NSRV);
		printf("the client and all servers share %ld CPUs, which bound "
		       "every figure: more servers add server threads and "
		       "disks, not cores\n", sysconf(_SC_NPROCESSORS_ONLN));
		fflush(stdout);
		err = part_scan(&e, &o);
		fflush(stdout);
	}
	if (!err)
		err = part_write(&e, &o);
	if (err)
		fprintf(stderr, "bench-cluster: %s\n", strerror(-err));
	env_cleanup(&e);
	return err ? 1 : 0;
}
