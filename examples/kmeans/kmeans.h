/* SPDX-License-Identifier: MIT */
/*
 * k-means over shared remote objects: the part of the clustered example that
 * does not care how its ranks are launched (Open MPI in main_mpi.c, fork in
 * main_fork.c) and the pieces bench/apps.c reuses.
 *
 * The input is one replicated remote object of points (dims int32
 * coordinates each, a deterministic function of (seed, index)), stored once
 * and mapped read-only by every rank through a small budget.  Rank r owns a
 * contiguous slice of the points, cut on chunk boundaries, and a remote
 * object of its own holding one uint32 label per point of the slice, which
 * it rewrites every iteration.  Per-cluster coordinate sums and counts are
 * integers, so the sum over ranks does not depend on their order: every
 * rank, and a serial reference over plain memory, computes bit-identical
 * centroids and labels.
 */
#ifndef KMEANS_H
#define KMEANS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ufo.h"

#define KM_MAX_DIMS 64
#define KM_MAX_K 64
#define KM_MAX_RANKS 64
/* Per cluster: dims coordinate sums and a count; then the changed labels. */
#define KM_ACC_MAX (KM_MAX_K * (KM_MAX_DIMS + 1) + 1)
/* Points assigned between two looks at the budget (peak resident). */
#define KM_BLOCK_POINTS 4096

struct km_params {
	const char *name;     /* object name prefix */
	const char *servers;  /* "host:port,..."; NULL: $UFO_SERVERS */
	const char *secret;   /* NULL: $UFO_SECRET_FILE */
	uint64_t points;
	unsigned dims, k, iters, replicas;
	uint64_t seed;
	size_t chunk;         /* chunk size of both objects */
	size_t budget;        /* high watermark per rank */
	unsigned timeout_ms;  /* per remote request; 0: the library's */
	bool generate;        /* rank 0 stores the dataset first */
	bool check;           /* rank 0 compares with a serial reference */
	bool quiet;           /* no per-iteration progress */
	bool sequential;      /* advise the dataset UFO_ADV_SEQUENTIAL */
	unsigned workers;     /* the fork launcher's ranks (not MPI's) */
};

/* How ranks talk.  Each call is collective: every rank makes it, in the
 * same order.  0 or -errno. */
struct km_comm {
	unsigned rank, size;
	/* v[0..n) becomes the element-wise sum over ranks, the same on all. */
	int (*allreduce)(struct km_comm *c, int64_t *v, size_t n);
	/* Rank 0 gets every rank's len bytes at all + rank * len. */
	int (*gather)(struct km_comm *c, const void *mine, size_t len,
		      void *all);
	void *impl;
};

/* What one rank did, gathered at rank 0 for the summary. */
struct km_rank_stats {
	double secs;               /* open, iterations, final sync */
	uint64_t points;           /* in its slice */
	uint64_t faults, prefetches, evictions;
	uint64_t bytes_loaded, bytes_written;
	uint64_t resident_peak;    /* sampled every KM_BLOCK_POINTS */
	uint64_t labels_hash;      /* of its final labels */
};

/* The model all ranks share: centroids, k x dims, row-major. */
struct km_model {
	unsigned k, dims;
	double c[KM_MAX_K * KM_MAX_DIMS];
};

/* Common options into *p, defaults first.  --servers is exported as
 * $UFO_SERVERS here, before any library thread runs, so that every object
 * is "ufo:///NAME".  Prints the usage and returns -EINVAL on a bad option
 * or when no server list is known. */
int km_parse(int argc, char **argv, struct km_params *p);

size_t km_point_bytes(const struct km_params *p);
/* The dataset object's size in bytes. */
uint64_t km_dataset_bytes(const struct km_params *p);
/* Rank r's points [*first, *first + *count) of the dataset: whole chunks,
 * as even as chunks allow. */
void km_slice(const struct km_params *p, unsigned r, unsigned size,
	      uint64_t *first, uint64_t *count);
/* Bytes rank r maps: its slice of points and its labels (the working set). */
uint64_t km_working_set(const struct km_params *p, unsigned r, unsigned size);

/* Point i's coordinates. */
void km_gen_point(const struct km_params *p, uint64_t i, int32_t *out);
void km_gen_points(const struct km_params *p, uint64_t first, uint64_t n,
		   int32_t *out);

/* The starting centroids: the first k points. */
void km_model_init(const struct km_params *p, const int32_t *first_points,
		   struct km_model *m);
/* Labels points [0, n) at pts with their nearest centroid (the lowest index
 * on a tie), adds each point into acc (km_acc_len longs, zeroed by the
 * caller) and counts changed labels there too. */
void km_assign(const struct km_model *m, const int32_t *pts, uint32_t *labels,
	       uint64_t n, int64_t *acc);
size_t km_acc_len(const struct km_params *p);
/* New centroids from summed acc; an empty cluster keeps its centroid.
 * Returns the changed labels acc holds. */
uint64_t km_update(struct km_model *m, const int64_t *acc);
/* Called by km_iterate: block after each KM_BLOCK_POINTS points (a place
 * to look at the budget), iteration after each iteration with the changed
 * labels over all ranks.  Either may be NULL. */
struct km_hooks {
	void (*block)(void *user);
	void (*iteration)(void *user, unsigned it, uint64_t changed);
	void *user;
};

/* p->iters iterations of this rank's count points at pts and their labels,
 * the partial sums meeting in c->allreduce; m holds the starting centroids
 * and gets the final ones, the same on every rank.  0 or -errno. */
int km_iterate(const struct km_params *p, struct km_comm *c,
	       struct km_model *m, const int32_t *pts, uint32_t *labels,
	       uint64_t count, const struct km_hooks *h);
/* FNV-1a of labels, for comparing whole slices cheaply. */
uint64_t km_hash(const uint32_t *labels, uint64_t n);

/* The serial reference over plain memory: points generated here, iters
 * iterations.  *labels (malloc'd, caller frees) gets every label.  0 or
 * -ENOMEM. */
int km_reference(const struct km_params *p, struct km_model *m,
		 uint32_t **labels);

/* A context with the rank's budget; then the dataset (read-only, or
 * created) and the labels object of rank of size (created when missing).
 * 0 or -errno, reported; *obj is left NULL on failure. */
int km_ctx(const struct km_params *p, size_t budget, struct ufo_ctx **ctx);
int km_open_dataset(const struct km_params *p, struct ufo_ctx *ctx,
		    bool create, struct ufo_obj **obj);
int km_open_labels(const struct km_params *p, struct ufo_ctx *ctx,
		   unsigned rank, unsigned size, uint64_t count,
		   struct ufo_obj **obj);

/* Rank 0 alone: stores the dataset (created when missing).  0 or -errno. */
int km_store_dataset(const struct km_params *p);

/* Every rank learns whether any failed (err != 0), so that none is left
 * waiting at a collective the others never reach.  0 when all succeeded,
 * -ECANCELED when one failed, -EIO when the allreduce did. */
int km_all_ok(struct km_comm *c, int err);

/* One rank's run over the mapped objects, in a context with p->budget:
 * open the dataset and its labels, km_iterate, sync the labels, close.
 * Fills *st (time, counters, labels hash) and *m.  Collective; 0 or
 * -errno, the same on every rank. */
int km_rank_run(const struct km_params *p, struct km_comm *comm,
		struct km_model *m, struct km_rank_stats *st);

/* Everything one rank does: (rank 0) store the dataset, iterate, sync the
 * labels, (rank 0) print the summary and check it.  Returns the process
 * exit status: 0, or 1 after reporting what failed. */
int km_rank_main(const struct km_params *p, struct km_comm *comm);

/* The fork launcher's communicator: shared memory and a process-shared
 * barrier, set up before the fork.  comm_fork_init returns 0 or -errno;
 * after fork, each worker calls comm_fork_rank with its index. */
struct km_comm_fork;
int comm_fork_init(unsigned size, struct km_comm_fork **out);
void comm_fork_rank(struct km_comm_fork *f, unsigned rank, struct km_comm *c);
void comm_fork_free(struct km_comm_fork *f);
/* Forks size workers, each running fn(comm, user) and exiting with its
 * return value, and waits for them; a worker that fails or dies takes the
 * others down (they would wait forever at the next collective).  Returns
 * 0 when every worker exited 0, else 1 after saying which did not. */
int comm_fork_run(unsigned size, int (*fn)(struct km_comm *c, void *user),
		  void *user);

double km_now(void);

#endif /* KMEANS_H */
