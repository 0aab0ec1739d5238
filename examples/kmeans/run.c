/* SPDX-License-Identifier: MIT */
/*
 * One rank of the k-means example, however it was launched: (rank 0) store
 * the dataset, map it and the rank's labels, iterate, publish the labels,
 * and at rank 0 the summary and the check against a serial reference.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kmeans.h"

#define MiB (1024.0 * 1024.0)

struct rank_run {
	const struct km_params *p;
	struct km_comm *comm;
	struct ufo_ctx *ctx;
	struct ufo_obj *data, *labels;
	uint64_t first, count;     /* the rank's slice of points */
	double t0;
	struct km_rank_stats *st;
};

int km_all_ok(struct km_comm *c, int err)
{
	int64_t failed = err != 0;

	if (c->allreduce(c, &failed, 1))
		return -EIO;
	return failed ? -ECANCELED : 0;
}

static int run_open(struct rank_run *r)
{
	const struct km_params *p = r->p;
	int err;

	km_slice(p, r->comm->rank, r->comm->size, &r->first, &r->count);
	r->st->points = r->count;
	err = km_ctx(p, p->budget, &r->ctx);
	if (!err)
		err = km_open_dataset(p, r->ctx, false, &r->data);
	/* Each rank scans its slice from the start, iteration after
	 * iteration: readahead at its widest from the first fault. */
	if (!err && p->sequential)
		err = ufo_advise(r->data, 0, 0, UFO_ADV_SEQUENTIAL);
	if (!err)
		err = km_open_labels(p, r->ctx, r->comm->rank, r->comm->size,
				     r->count, &r->labels);
	return err;
}

/* Frees what run_open opened: 0 or the first writeback error. */
static int run_close(struct rank_run *r)
{
	int err = 0, e;

	if (r->labels && (e = ufo_free(r->labels)) && !err)
		err = e;
	if (r->data && (e = ufo_free(r->data)) && !err)
		err = e;
	if (r->ctx && (e = ufo_ctx_destroy(r->ctx)) && !err)
		err = e;
	r->labels = r->data = NULL;
	r->ctx = NULL;
	return err;
}

/* km_hooks.block: the peak of resident bytes, looked at between blocks. */
static void sample(void *user)
{
	struct rank_run *r = user;
	struct ufo_stats s;

	if (!ufo_ctx_stats(r->ctx, &s) && s.resident_bytes > r->st->resident_peak)
		r->st->resident_peak = s.resident_bytes;
}

/* km_hooks.iteration: one progress line per rank. */
static void progress(void *user, unsigned it, uint64_t changed)
{
	const struct rank_run *r = user;
	struct ufo_stats s;

	if (r->p->quiet || ufo_ctx_stats(r->ctx, &s))
		return;
	fprintf(stderr, "rank %u: iteration %u/%u, %llu labels changed, "
		"faults %llu, fetched %.1f MiB, resident %.1f MiB, %.2f s\n",
		r->comm->rank, it + 1, r->p->iters, (unsigned long long)changed,
		(unsigned long long)s.faults, (double)s.bytes_loaded / MiB,
		(double)s.resident_bytes / MiB, km_now() - r->t0);
}

/* The iterations over the mapped objects, then the labels made durable. */
static int run_iterations(struct rank_run *r, struct km_model *m)
{
	const struct km_hooks hooks = { sample, progress, r };
	const int32_t *pts = ufo_body(r->data);
	struct km_rank_stats *st = r->st;
	struct ufo_stats s;
	int err;

	km_model_init(r->p, pts, m);
	err = km_iterate(r->p, r->comm, m, pts + r->first * r->p->dims,
			 ufo_body(r->labels), r->count, &hooks);
	if (!err && (err = ufo_sync(r->labels)))
		fprintf(stderr, "kmeans: rank %u: syncing the labels: %s\n",
			r->comm->rank, strerror(-err));
	st->secs = km_now() - r->t0;
	if (ufo_ctx_stats(r->ctx, &s))
		return err;
	st->faults = s.faults;
	st->prefetches = s.prefetches;
	st->evictions = s.evictions;
	st->bytes_loaded = s.bytes_loaded;
	st->bytes_written = s.writeback_bytes;
	st->labels_hash = km_hash(ufo_body(r->labels), r->count);
	return err;
}

int km_rank_run(const struct km_params *p, struct km_comm *comm,
		struct km_model *m, struct km_rank_stats *st)
{
	struct rank_run r = { .p = p, .comm = comm, .t0 = km_now(), .st = st };
	int err;

	memset(st, 0, sizeof(*st));
	err = km_all_ok(comm, run_open(&r));
	if (!err)
		err = km_all_ok(comm, run_iterations(&r, m));
	if (run_close(&r) && !err)
		err = -EIO;
	return err;
}

/* ------------------------------------------------------ rank 0's report */

static void print_row(const char *label, const struct km_rank_stats *s)
{
	printf("%4s %9llu %7.2f %9llu %11llu %12.1f %12.1f %10llu %18.1f\n",
	       label, (unsigned long long)s->points, s->secs,
	       (unsigned long long)s->faults, (unsigned long long)s->prefetches,
	       (double)s->bytes_loaded / MiB, (double)s->bytes_written / MiB,
	       (unsigned long long)s->evictions,
	       (double)s->resident_peak / MiB);
}

/* The "all" row: the slowest rank's time, everything else summed. */
static void add_row(struct km_rank_stats *t, const struct km_rank_stats *s)
{
	t->points += s->points;
	t->secs = s->secs > t->secs ? s->secs : t->secs;
	t->faults += s->faults;
	t->prefetches += s->prefetches;
	t->evictions += s->evictions;
	t->bytes_loaded += s->bytes_loaded;
	t->bytes_written += s->bytes_written;
	t->resident_peak += s->resident_peak;
}

static void summary(const struct km_params *p, unsigned size,
		    const struct km_rank_stats *all)
{
	struct km_rank_stats t = { 0 };
	char label[16];

	printf("k-means: %llu points x %u dims (%.1f MiB), k %u, %u iterations, "
	       "%u ranks, servers %s\n", (unsigned long long)p->points, p->dims,
	       (double)km_dataset_bytes(p) / MiB, p->k, p->iters, size,
	       getenv("UFO_SERVERS"));
	printf("budget %.1f MiB per rank; working set (points + labels) %.1f "
	       "MiB on rank 0\n", (double)p->budget / MiB,
	       (double)km_working_set(p, 0, size) / MiB);
	printf("rank    points    secs    faults  prefetched  fetched MiB  "
	       "written MiB  evictions  peak resident MiB\n");
	for (unsigned r = 0; r < size; r++) {
		snprintf(label, sizeof(label), "%u", r);
		print_row(label, &all[r]);
		add_row(&t, &all[r]);
	}
	print_row("all", &t);
	printf("(all: secs of the slowest rank, the rest summed)\n");
}

/* The hash of rank r's labels as the servers hold them, read through a
 * fresh mapping of its object.  0 or -errno. */
static int stored_labels_hash(const struct km_params *p, struct ufo_ctx *ctx,
			      unsigned r, unsigned size, uint64_t count,
			      uint64_t *hash)
{
	struct ufo_obj *obj;
	int err = km_open_labels(p, ctx, r, size, count, &obj);

	if (err)
		return err;
	*hash = km_hash(ufo_body(obj), count);
	return ufo_free(obj);
}

/* Rank 0: the centroids and every rank's stored labels against a serial
 * computation over points generated here.  0, or 1 after saying what
 * differs. */
static int check(const struct km_params *p, unsigned size,
		 const struct km_model *m, const struct km_rank_stats *all)
{
	struct km_model ref;
	struct ufo_ctx *ctx;
	uint32_t *labels;
	unsigned bad = 0;

	if (km_reference(p, &ref, &labels) || km_ctx(p, p->budget, &ctx))
		return 1;
	if (memcmp(ref.c, m->c, sizeof(double) * p->k * p->dims)) {
		printf("check: centroids DIFFER from the serial reference\n");
		bad++;
	}
	for (unsigned r = 0; r < size; r++) {
		uint64_t first, count, h = 0;
		int err;

		km_slice(p, r, size, &first, &count);
		err = stored_labels_hash(p, ctx, r, size, count, &h);
		if (err || h != km_hash(labels + first, count) ||
		    h != all[r].labels_hash) {
			printf("check: rank %u's labels DIFFER from the "
			       "reference%s\n", r, err ? " (unreadable)" : "");
			bad++;
		}
	}
	ufo_ctx_destroy(ctx);
	free(labels);
	if (!bad)
		printf("check: centroids and all %llu labels (re-read from the "
		       "servers) equal the serial reference\n",
		       (unsigned long long)p->points);
	return bad ? 1 : 0;
}

int km_rank_main(const struct km_params *p, struct km_comm *comm)
{
	struct km_rank_stats st, *all = calloc(comm->size, sizeof(*all));
	struct km_model *m = malloc(sizeof(*m));
	int err = !m || !all ? -ENOMEM : 0;

	if (!err && comm->rank == 0 && p->generate)
		err = km_store_dataset(p);
	err = km_all_ok(comm, err);
	if (!err)
		err = km_rank_run(p, comm, m, &st);
	if (!err)
		err = comm->gather(comm, &st, sizeof(st), all);
	if (!err && comm->rank == 0) {
		summary(p, comm->size, all);
		if (p->check)
			err = check(p, comm->size, m, all);
	}
	free(m);
	free(all);
	return err ? 1 : 0;
}
