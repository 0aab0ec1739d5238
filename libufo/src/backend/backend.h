/* SPDX-License-Identifier: MIT */
/*
 * The contract between the engine and the backends: the callback backend
 * (the application's populate and writeback), remote objects on one
 * ufo-server, and replicated objects on a cluster.  The engine sees only
 * this header of everything below it; a backend sees only this header of
 * the engine.
 *
 * Both directions are here:
 *  - the ops a backend implements, which the engine calls (it never
 *    branches on the kind of backend);
 *  - the few engine services a backend may call: create the object it
 *    serves, reach its own data, log, complete an io, and run blocking
 *    work off the handler threads.
 *
 * I/O is asynchronous: the engine submits a struct ufo_io and the backend
 * calls io_complete once, from whatever thread learns the outcome (the
 * client's reader for a remote object, the submitting thread itself for
 * the callback backend).  Retries are the engine's: a failed attempt that
 * the backend's retry policy calls transient is submitted again after a
 * delay, and every attempt is counted once, by the engine.  Backends keep
 * no engine counters.
 */
#ifndef UFO_BACKEND_H
#define UFO_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "ufo.h"
#include "util.h"

struct ufo_obj;
struct ufo_ctx;

/* Bytes [off, off + len) of an io's buffer, whole elements. */
struct ufo_range {
	size_t off, len;
};

/*
 * One fetch or store of elements [start, end) of obj: len bytes at buf.
 * The engine fills the first part and owns the io; a backend may use
 * `tag` (kept across the attempts of one io: the cluster's write version)
 * and must not touch the io after io_complete.
 */
struct ufo_io {
	struct ufo_obj *obj;
	bool store;
	uint64_t start, end;  /* elements */
	void *buf;            /* fetch: filled; store: read, unchanged until
			       * the io completes (write-protected) */
	size_t len;           /* (end - start) * elem_size bytes */
	/* A store of only some bytes (scan mode, to a backend with
	 * partial_stores): nranges ranges, ascending and disjoint, and only
	 * they are to be written (the rest of buf is undefined).  nranges 0:
	 * all of [start, end). */
	const struct ufo_range *ranges;
	unsigned nranges;
	unsigned attempt;     /* 0 for the first submission */
	uint64_t tag;         /* the backend's, across attempts (0 at first) */
	/* Set by a fetch's backend when the range holds no data where it
	 * lives (never written): buf is then untouched and the engine
	 * installs zeros, nothing having been transferred. */
	bool hole;
	/* the engine's */
	void (*done)(struct ufo_io *io, int err);
	uint64_t t_first, t_attempt, due;
	struct ufo_io *next;  /* the retry queue */
	void *ctx_data;       /* the engine's continuation */
};

/* How the engine retries a failed attempt: again after first_delay_ms,
 * doubling up to max_delay_ms, while transient(err) and neither
 * max_attempts (when not 0) attempts were made nor deadline_ms (when not
 * 0) have passed since the first. */
struct ufo_retry {
	bool (*transient)(int err);
	unsigned max_attempts;
	unsigned deadline_ms;
	unsigned first_delay_ms, max_delay_ms;
};

struct ufo_backend_ops {
	const char *name;
	/* Starts io; io_complete(io, err) follows exactly once, on any
	 * thread, possibly before submit returns.  Called with no lock held.
	 * A backend that must block to do it (the application's callbacks,
	 * a quorum read) does so on the submitting thread only when that is
	 * the callback backend: others use obj_run_blocking, so that handler
	 * threads never wait on the network. */
	void (*submit)(struct ufo_obj *obj, struct ufo_io *io);
	/* submit may block for long on the submitting thread: it runs the
	 * application's function, which may touch other UFOs.  The engine
	 * then counts a handler busy meanwhile, and its starvation watchdog
	 * starts another when all stay busy.  Backends that only queue work
	 * (remote, cluster) leave it false: their loads never make a handler
	 * busy, so no handler is ever started for them. */
	bool blocking;
	/* Stores may carry ranges (ufo_io.ranges): only written pages are
	 * sent.  Without it a store is always the whole [start, end). */
	bool partial_stores;
	/* The retry policy of obj's failed attempts. */
	void (*retry)(const struct ufo_obj *obj, struct ufo_retry *out);
	/* Releases obj->backend_data (may be NULL: nothing to release). */
	void (*close)(struct ufo_obj *obj);
	/* Objects stored on servers (NULL for the callback backend): the
	 * object's name there, how many servers hold it, and the client's
	 * counters for server i (its address as server; connected 0 while
	 * it is known down; -ENOENT: no such server now). */
	const char *(*remote_name)(const struct ufo_obj *obj);
	unsigned (*servers)(const struct ufo_obj *obj);
	int (*server_status)(const struct ufo_obj *obj, unsigned i,
			     struct ufo_client_stats *out);
};

/* ---- what the engine offers a backend */

/* Creates an object served by backend (which owns backend_data from the
 * moment this is called: on failure its close has run). */
int obj_create(struct ufo_ctx *ctx, const struct ufo_params *p,
	       const struct ufo_backend_ops *backend, void *backend_data,
	       struct ufo_obj **out);
void *obj_backend_data(const struct ufo_obj *obj);
struct ufo_ctx *obj_ctx(const struct ufo_obj *obj);
uint64_t obj_id(const struct ufo_obj *obj);
/* The context's configuration in force (retries, retry delay). */
const struct ufo_config *ctx_cfg(const struct ufo_ctx *ctx);

void logf_ctx(const struct ufo_ctx *ctx, enum ufo_log_level lvl,
	      const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define log_err(ctx, ...) logf_ctx(ctx, UFO_LOG_ERROR, __VA_ARGS__)
#define log_warn(ctx, ...) logf_ctx(ctx, UFO_LOG_WARN, __VA_ARGS__)
#define log_info(ctx, ...) logf_ctx(ctx, UFO_LOG_INFO, __VA_ARGS__)
#define log_debug(ctx, ...) logf_ctx(ctx, UFO_LOG_DEBUG, __VA_ARGS__)

/* The outcome of an attempt (0 or -errno); see struct ufo_io. */
void io_complete(struct ufo_io *io, int err);

/* Work that blocks (a quorum read, a one-sided RDMA READ): fn(job) runs on
 * one of the context's I/O workers, a bounded pool started on first use,
 * in submission order.  The job lives until fn returns.  Work run there
 * must not touch UFO memory: a full pool would wait on itself. */
struct ufo_job {
	struct ufo_job *next;
	void (*fn)(struct ufo_job *job);
};
void obj_run_blocking(struct ufo_obj *obj, struct ufo_job *job);

/* ---- objects on servers (retry.c) */

/* Errors worth retrying: connection trouble, a busy or stopping server, a
 * stale placement. */
bool remote_transient(int err);
/* Their policy: transient errors retried with delays from 5 to 500 ms
 * until timeout_ms has passed since the first attempt. */
void remote_retry_policy(unsigned timeout_ms, struct ufo_retry *out);

/* ---- the backends' entry points (open.c dispatches between them) */

/* An object on one server, url "scheme://host:port/name". */
int remote_open(struct ufo_ctx *ctx, const char *url,
		const struct ufo_remote_opts *opts, struct ufo_obj **out);

#endif /* UFO_BACKEND_H */
