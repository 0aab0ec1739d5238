/* SPDX-License-Identifier: MIT */
/*
 * k-means over shared remote objects (see kmeans.h): options, the dataset,
 * the kernel, the serial reference, and one rank's run.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kmeans.h"

#define MiB (1024.0 * 1024.0)

double km_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------- options */

static const char usage[] =
	"options: [--servers HOST:PORT,...] [--name NAME] [--points N]\n"
	"         [--dims D] [--k K] [--iters N] [--seed S] [--chunk BYTES]\n"
	"         [--budget BYTES] [--replicas R] [--timeout MS]\n"
	"         [--secret-file F] [--generate] [--check] [--quiet]\n"
	"         [--sequential]  (advise the dataset UFO_ADV_SEQUENTIAL)\n"
	"         [--workers N]   (ufo-kmeans, the fork launcher, only)\n"
	"the servers default to $UFO_SERVERS, the secret to $UFO_SECRET_FILE\n";

static int parse_u64(const char *s, uint64_t *out, bool size)
{
	char *end;

	if (size)
		return ufo_parse_size(s, out) ? -EINVAL : 0;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno || end == s || *end || *s == '-' ? -EINVAL : 0;
}

/* One option of km_parse's table into p.  0 or -EINVAL. */
static int parse_one(int c, const char *arg, struct km_params *p)
{
	bool size = c == 'C' || c == 'B', wide = size || c == 'p' || c == 's';
	uint64_t v;

	switch (c) {
	case 'S': p->servers = arg; return 0;
	case 'n': p->name = arg; return 0;
	case 'K': p->secret = arg; return 0;
	case 'g': p->generate = true; return 0;
	case 'c': p->check = true; return 0;
	case 'q': p->quiet = true; return 0;
	case 'a': p->sequential = true; return 0;
	}
	if (parse_u64(arg, &v, size) || (!wide && v > UINT32_MAX) ||
	    (size && v > SIZE_MAX))
		return -EINVAL;
	switch (c) {
	case 'p': p->points = v; break;
	case 'd': p->dims = (unsigned)v; break;
	case 'k': p->k = (unsigned)v; break;
	case 'i': p->iters = (unsigned)v; break;
	case 's': p->seed = v; break;
	case 'r': p->replicas = (unsigned)v; break;
	case 't': p->timeout_ms = (unsigned)v; break;
	case 'w': p->workers = (unsigned)v; break;
	case 'C': p->chunk = (size_t)v; break;
	case 'B': p->budget = (size_t)v; break;
	default: return -EINVAL;
	}
	return 0;
}

/* The limits the kernel and the communicators are sized for. */
static int check_params(const struct km_params *p)
{
	if (!p->dims || p->dims > KM_MAX_DIMS || !p->k || p->k > KM_MAX_K ||
	    p->k > p->points || !p->iters || !p->workers ||
	    p->workers > KM_MAX_RANKS || !p->budget || !p->chunk ||
	    p->chunk % 4096 || p->chunk % km_point_bytes(p))
		return -EINVAL;
	if (p->servers && setenv("UFO_SERVERS", p->servers, 1))
		return -errno;
	if (!getenv("UFO_SERVERS")) {
		fprintf(stderr, "kmeans: no servers: give --servers or set "
			"UFO_SERVERS\n");
		return -EINVAL;
	}
	return 0;
}

int km_parse(int argc, char **argv, struct km_params *p)
{
	static const struct option longs[] = {
		{ "servers", 1, 0, 'S' }, { "name", 1, 0, 'n' },
		{ "points", 1, 0, 'p' }, { "dims", 1, 0, 'd' },
		{ "k", 1, 0, 'k' }, { "iters", 1, 0, 'i' },
		{ "seed", 1, 0, 's' }, { "chunk", 1, 0, 'C' },
		{ "budget", 1, 0, 'B' }, { "replicas", 1, 0, 'r' },
		{ "timeout", 1, 0, 't' }, { "secret-file", 1, 0, 'K' },
		{ "workers", 1, 0, 'w' }, { "generate", 0, 0, 'g' },
		{ "check", 0, 0, 'c' }, { "quiet", 0, 0, 'q' },
		{ "sequential", 0, 0, 'a' },
		{ 0, 0, 0, 0 },
	};
	int c;

	*p = (struct km_params){ .name = "kmeans", .points = 1u << 18,
				 .dims = 16, .k = 16, .iters = 8, .seed = 1,
				 .chunk = 64 << 10, .budget = 4 << 20,
				 .workers = 4 };
	while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1)
		if (c == '?' || parse_one(c, optarg, p))
			goto bad;
	if (optind == argc && !check_params(p))
		return 0;
bad:
	fprintf(stderr, "usage: %s %s", argv[0], usage);
	return -EINVAL;
}

/* ------------------------------------------------------------- dataset */

size_t km_point_bytes(const struct km_params *p)
{
	return (size_t)p->dims * sizeof(int32_t);
}

uint64_t km_dataset_bytes(const struct km_params *p)
{
	return p->points * km_point_bytes(p);
}

void km_slice(const struct km_params *p, unsigned r, unsigned size,
	      uint64_t *first, uint64_t *count)
{
	uint64_t per_chunk = p->chunk / km_point_bytes(p);
	uint64_t chunks = (p->points + per_chunk - 1) / per_chunk;
	uint64_t lo = chunks * r / size * per_chunk;
	uint64_t hi = chunks * (r + 1) / size * per_chunk;

	*first = lo < p->points ? lo : p->points;
	*count = (hi < p->points ? hi : p->points) - *first;
}

static uint64_t labels_bytes(uint64_t count)
{
	return (count * sizeof(uint32_t) + 4095) / 4096 * 4096;
}

uint64_t km_working_set(const struct km_params *p, unsigned r, unsigned size)
{
	uint64_t first, count;

	km_slice(p, r, size, &first, &count);
	return count * km_point_bytes(p) + labels_bytes(count);
}

/* splitmix64 */
static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Points gather around k centres in [-1e6, 1e6]^dims, each coordinate off
 * its centre by a sum of four uniform draws in [-25000, 25000]: clusters
 * that overlap a little, so k-means has work to do for a few iterations. */
void km_gen_point(const struct km_params *p, uint64_t i, int32_t *out)
{
	uint64_t h = mix(p->seed ^ mix(i));
	uint64_t cluster = h % p->k;

	for (unsigned d = 0; d < p->dims; d++) {
		uint64_t centre = mix(~p->seed ^ (cluster * KM_MAX_DIMS + d));
		int64_t x = (int64_t)(centre % 2000001) - 1000000;

		for (unsigned j = 0; j < 4; j++) {
			h = mix(h);
			x += (int64_t)(h % 50001) - 25000;
		}
		out[d] = (int32_t)x;
	}
}

void km_gen_points(const struct km_params *p, uint64_t first, uint64_t n,
		   int32_t *out)
{
	for (uint64_t i = 0; i < n; i++)
		km_gen_point(p, first + i, out + i * p->dims);
}

/* -------------------------------------------------------------- kernel */

void km_model_init(const struct km_params *p, const int32_t *first_points,
		   struct km_model *m)
{
	m->k = p->k;
	m->dims = p->dims;
	for (size_t i = 0; i < (size_t)p->k * p->dims; i++)
		m->c[i] = first_points[i];
}

size_t km_acc_len(const struct km_params *p)
{
	return (size_t)p->k * (p->dims + 1) + 1;
}

static unsigned nearest(const struct km_model *m, const int32_t *x)
{
	unsigned best = 0;
	double best_d = INFINITY;

	for (unsigned c = 0; c < m->k; c++) {
		const double *cc = m->c + (size_t)c * m->dims;
		double d = 0;

		for (unsigned j = 0; j < m->dims; j++) {
			double diff = (double)x[j] - cc[j];

			d += diff * diff;
		}
		if (d < best_d) {
			best_d = d;
			best = c;
		}
	}
	return best;
}

/* A label is written only when it changes, so a converged slice leaves its
 * chunks of the labels object clean: nothing to write back. */
void km_assign(const struct km_model *m, const int32_t *pts, uint32_t *labels,
	       uint64_t n, int64_t *acc)
{
	size_t row = m->dims + 1;

	for (uint64_t i = 0; i < n; i++) {
		const int32_t *x = pts + i * m->dims;
		unsigned c = nearest(m, x);
		int64_t *a = acc + c * row;

		if (labels[i] != c) {
			labels[i] = c;
			acc[m->k * row]++;
		}
		for (unsigned j = 0; j < m->dims; j++)
			a[j] += x[j];
		a[m->dims]++;
	}
}

uint64_t km_update(struct km_model *m, const int64_t *acc)
{
	size_t row = m->dims + 1;

	for (unsigned c = 0; c < m->k; c++) {
		const int64_t *a = acc + c * row;

		if (!a[m->dims])
			continue;
		for (unsigned j = 0; j < m->dims; j++)
			m->c[c * m->dims + j] = (double)a[j] / (double)a[m->dims];
	}
	return (uint64_t)acc[m->k * row];
}

int km_iterate(const struct km_params *p, struct km_comm *c,
	       struct km_model *m, const int32_t *pts, uint32_t *labels,
	       uint64_t count, const struct km_hooks *h)
{
	int64_t *acc = malloc(km_acc_len(p) * sizeof(*acc));
	int err = acc ? 0 : -ENOMEM;
	uint64_t changed;

	for (unsigned it = 0; it < p->iters && !err; it++) {
		memset(acc, 0, km_acc_len(p) * sizeof(*acc));
		for (uint64_t i = 0; i < count; i += KM_BLOCK_POINTS) {
			uint64_t n = count - i < KM_BLOCK_POINTS ? count - i
							       : KM_BLOCK_POINTS;

			km_assign(m, pts + i * p->dims, labels + i, n, acc);
			if (h && h->block)
				h->block(h->user);
		}
		if ((err = c->allreduce(c, acc, km_acc_len(p))))
			break;
		changed = km_update(m, acc);
		if (h && h->iteration)
			h->iteration(h->user, it, changed);
	}
	free(acc);
	return err;
}

uint64_t km_hash(const uint32_t *labels, uint64_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (uint64_t i = 0; i < n; i++) {
		h ^= labels[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* The communicator of a single rank: the sum over ranks is its own. */
static int solo_allreduce(struct km_comm *c, int64_t *v, size_t n)
{
	return 0;
}

int km_reference(const struct km_params *p, struct km_model *m,
		 uint32_t **labels)
{
	struct km_comm solo = { .rank = 0, .size = 1,
				.allreduce = solo_allreduce };
	int32_t *pts = malloc(km_dataset_bytes(p));
	int err = -ENOMEM;

	*labels = calloc(p->points, sizeof(**labels));
	if (pts && *labels) {
		km_gen_points(p, 0, p->points, pts);
		km_model_init(p, pts, m);
		err = km_iterate(p, &solo, m, pts, *labels, p->points, NULL);
	}
	free(pts);
	if (err) {
		free(*labels);
		*labels = NULL;
	}
	return err;
}

/* ------------------------------------------------------------- objects */

int km_ctx(const struct km_params *p, size_t budget, struct ufo_ctx **ctx)
{
	struct ufo_config cfg;
	int err;

	ufo_config_init(&cfg);
	cfg.high_watermark = budget;
	err = ufo_ctx_create(&cfg, ctx);
	if (err)
		fprintf(stderr, "kmeans: ufo_ctx_create: %s%s\n", strerror(-err),
			err == -EPERM ? " (run as root or set "
			"vm.unprivileged_userfaultfd=1)" : "");
	return err;
}

/* Opens (creating when size is not 0) "ufo:///NAME" over $UFO_SERVERS. */
static int open_object(const struct km_params *p, struct ufo_ctx *ctx,
		       const char *name, uint64_t size, unsigned flags,
		       struct ufo_obj **obj)
{
	struct ufo_remote_opts ro;
	char url[300];
	int err;

	ufo_remote_opts_init(&ro);
	ro.secret_file = p->secret;
	ro.timeout_ms = p->timeout_ms;
	ro.chunk_size = p->chunk;
	ro.replicas = p->replicas;
	ro.flags = flags | (size ? UFO_REMOTE_CREATE : 0);
	ro.create_size = size;
	snprintf(url, sizeof(url), "ufo:///%s", name);
	err = ufo_remote_open(ctx, url, &ro, obj);
	if (err)
		fprintf(stderr, "kmeans: opening %s over %s: %s%s\n", url,
			getenv("UFO_SERVERS"), strerror(-err),
			err == -ENOENT ? " (store it first: --generate)" :
			err == -EACCES ? " (wrong secret?)" : "");
	return err;
}

int km_open_dataset(const struct km_params *p, struct ufo_ctx *ctx,
		    bool create, struct ufo_obj **obj)
{
	uint64_t size = km_dataset_bytes(p);
	int err = open_object(p, ctx, p->name, create ? size : 0,
			      create ? 0 : UFO_READ_ONLY, obj);

	if (err || ufo_elem_count(*obj) == size)
		return err;
	fprintf(stderr, "kmeans: %s holds %llu bytes, not the %llu of --points "
		"%llu --dims %u: another --name, or --generate after deleting "
		"it\n", p->name, (unsigned long long)ufo_elem_count(*obj),
		(unsigned long long)size, (unsigned long long)p->points, p->dims);
	ufo_free(*obj);
	*obj = NULL;
	return -EINVAL;
}

/* Rank r of size has object NAME.labels.r-of-size, so that runs with
 * another number of ranks do not find objects of another size. */
int km_open_labels(const struct km_params *p, struct ufo_ctx *ctx,
		   unsigned rank, unsigned size, uint64_t count,
		   struct ufo_obj **obj)
{
	char name[280];
	int err;

	snprintf(name, sizeof(name), "%s.labels.%u-of-%u", p->name, rank, size);
	err = open_object(p, ctx, name, labels_bytes(count), 0, obj);
	if (err || ufo_elem_count(*obj) >= count * sizeof(uint32_t))
		return err;
	fprintf(stderr, "kmeans: %s is too small for %llu labels (left by a "
		"run with other options?)\n", name, (unsigned long long)count);
	ufo_free(*obj);
	*obj = NULL;
	return -EINVAL;
}

/* Writes the points chunk by chunk through the mapping: each chunk is
 * fetched, filled, and written back as the budget evicts it. */
int km_store_dataset(const struct km_params *p)
{
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	uint64_t per = p->chunk / km_point_bytes(p);
	double t0 = km_now();
	int err = km_ctx(p, p->budget, &ctx);

	if (err)
		return err;
	if (!(err = km_open_dataset(p, ctx, true, &obj))) {
		int32_t *pts = ufo_body(obj);

		for (uint64_t i = 0; i < p->points; i += per)
			km_gen_points(p, i, p->points - i < per ? p->points - i : per,
				      pts + i * p->dims);
		err = ufo_sync(obj);
		if (err)
			fprintf(stderr, "kmeans: storing %s: %s\n", p->name,
				strerror(-err));
		ufo_free(obj);
	}
	ufo_ctx_destroy(ctx);
	if (!err)
		printf("stored %s: %llu points x %u dims (%.1f MiB) in %.2f s\n",
		       p->name, (unsigned long long)p->points, p->dims,
		       (double)km_dataset_bytes(p) / MiB, km_now() - t0);
	return err;
}
