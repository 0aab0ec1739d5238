/* SPDX-License-Identifier: MIT */
/*
 * The callback backend: the application's populate and writeback
 * functions (ufo_create).  They may block and need not be thread-safe:
 * stores run one at a time (ops.parallel false).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"

/* What ufo_create was given; the object's backend data. */
struct callback {
	ufo_populate_fn populate;
	ufo_writeback_fn writeback; /* NULL: writes are discarded on drop */
	void *user;
};

static void retry_sleep(const struct ufo_config *cfg, unsigned attempt)
{
	uint64_t ms = (uint64_t)cfg->retry_delay_ms << (attempt < 10 ? attempt : 10);
	struct timespec ts = { .tv_sec = (time_t)(ms / 1000),
			       .tv_nsec = (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* Application callbacks return 0 or -errno; anything else is -EIO. */
static int callback_rc(int rc)
{
	return rc < 0 && rc > -4096 ? rc : -EIO;
}

/* Runs the application's populate (store false) or writeback on elements
 * [start, end), retrying a failure cfg.retries times with doubling delays.
 * Returns 0 or the last failure. */
static int cb_call(struct ufo_obj *obj, bool store, uint64_t start,
		   uint64_t end, void *buf)
{
	struct ufo_ctx *ctx = obj_ctx(obj);
	const struct ufo_config *cfg = ctx_cfg(ctx);
	const struct callback *cb = obj_backend_data(obj);

	for (unsigned attempt = 0;; attempt++) {
		uint64_t t0 = now_ns();
		int rc = store ? cb->writeback(cb->user, start, end, buf)
			       : cb->populate(cb->user, start, end, buf);

		if (!store)
			obj_count_fetch(obj, now_ns() - t0);
		if (!rc)
			return 0;
		rc = callback_rc(rc);
		if (store)
			obj_count_store_error(obj);
		else
			obj_count_fetch_error(obj);
		log_warn(ctx, "object %llu: %s [%llu, %llu) failed (attempt %u of %u): %s",
			 (unsigned long long)obj_id(obj),
			 store ? "writeback" : "populate",
			 (unsigned long long)start, (unsigned long long)end,
			 attempt + 1, cfg->retries + 1, strerror(-rc));
		if (attempt >= cfg->retries)
			return rc;
		retry_sleep(cfg, attempt);
	}
}

static int cb_fetch(struct ufo_obj *obj, uint64_t start, uint64_t end,
		    void *dst)
{
	return cb_call(obj, false, start, end, dst);
}

static int cb_store(struct ufo_obj *obj, uint64_t start, uint64_t end,
		    const void *src)
{
	const struct callback *cb = obj_backend_data(obj);

	/* Without a writeback callback, writes are discarded on drop. */
	return cb->writeback ? cb_call(obj, true, start, end, (void *)src) : 0;
}

static void cb_close(struct ufo_obj *obj)
{
	free(obj_backend_data(obj));
}

static const struct ufo_backend_ops callback_backend = {
	.name = "callback",
	.fetch = cb_fetch,
	.store = cb_store,
	.close = cb_close,
};

int ufo_create(struct ufo_ctx *ctx, const struct ufo_params *p,
	       struct ufo_obj **out)
{
	struct callback *cb;

	if (!ctx || !p || !out || !p->populate)
		return -EINVAL;
	cb = malloc(sizeof(*cb));
	if (!cb)
		return -ENOMEM;
	*cb = (struct callback){ .populate = p->populate,
				 .writeback = p->writeback, .user = p->user };
	return obj_create(ctx, p, &callback_backend, cb, out);
}
