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
 *    serves, reach its own data, log, and report its statistics.
 *
 * Retries (backend/retry.c): a backend's fetch and store retry transient
 * errors themselves (remote_retry: doubling delays until the client's
 * timeout has passed since the first attempt); a non-zero return is final.
 * Statistics: each fetch attempt is counted once with obj_count_fetch
 * (populate_calls, populate_ns), each failed attempt with
 * obj_count_fetch_error, each failed store (after its retries) with
 * obj_count_store_error; the engine counts the rest (bytes, writebacks).
 */
#ifndef UFO_BACKEND_H
#define UFO_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "ufo.h"
#include "util.h"

struct ufo_obj;
struct ufo_ctx;

/*
 * A backend moves chunk bytes between the UFO and where they live.  The
 * fault path calls only these ops, never a backend by kind.  Both calls are
 * made with no lock held, may block, and retry transient errors themselves
 * under ctx->cfg.retries; a non-zero return is final.
 */
struct ufo_backend_ops {
	const char *name;
	/* Fill dst with elements [start, end). */
	int (*fetch)(struct ufo_obj *obj, uint64_t start, uint64_t end,
		     void *dst);
	/* Persist elements [start, end) from src; 0 only once durable. */
	int (*store)(struct ufo_obj *obj, uint64_t start, uint64_t end,
		     const void *src);
	/* Releases obj->backend_data (may be NULL: nothing to release). */
	void (*close)(struct ufo_obj *obj);
	/* store may run for several chunks at once (it waits on a server,
	 * and is thread-safe); the application's callbacks are not. */
	bool parallel;
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

/* Statistics a backend reports (see the rules at the top). */
void obj_count_fetch(struct ufo_obj *obj, uint64_t ns);
void obj_count_fetch_error(struct ufo_obj *obj);
void obj_count_store_error(struct ufo_obj *obj);

/* ---- retries of objects on servers (retry.c) */

/* Errors worth retrying: connection trouble, a busy or stopping server, a
 * stale placement. */
bool remote_transient(int err);
struct remote_io {
	const char *name; /* for the log */
	int (*fn)(void *arg, bool write, uint64_t off, char *buf, size_t len);
	void *arg;
	int timeout_ms;
};
/* fn runs until it succeeds, fails for good, or timeout_ms has passed
 * since the first attempt (doubling delays). */
int remote_retry(struct ufo_obj *obj, const struct remote_io *io, bool write,
		 uint64_t off, void *buf, size_t len);

/* ---- the backends' entry points (open.c dispatches between them) */

/* An object on one server, url "scheme://host:port/name". */
int remote_open(struct ufo_ctx *ctx, const char *url,
		const struct ufo_remote_opts *opts, struct ufo_obj **out);

#endif /* UFO_BACKEND_H */
