/* SPDX-License-Identifier: MIT */
/*
 * The callback backend: the application's populate and writeback
 * functions (ufo_create).  They run on the thread that submits the io: a
 * handler for a load, the evictor or the thread in ufo_sync or ufo_reset
 * for a store, the engine's retry thread for a retried attempt.
 */
#include <errno.h>
#include <stdlib.h>

#include "backend/backend.h"

/* What ufo_create was given; the object's backend data. */
struct callback {
	ufo_populate_fn populate;
	ufo_writeback_fn writeback; /* NULL: writes are discarded on drop */
	void *user;
};

/* Application callbacks return 0 or -errno; anything else is -EIO. */
static int callback_rc(int rc)
{
	return rc < 0 && rc > -4096 ? rc : -EIO;
}

/* A store with ranges (scan mode) calls writeback once per range, in
 * order, stopping at the first failure: the application's function keeps
 * its signature, and a range of whole elements is what it already takes
 * (the last chunk's is short).  The engine retries the whole store. */
static int cb_store(struct ufo_obj *obj, const struct callback *cb,
		    const struct ufo_io *io)
{
	size_t es = ufo_elem_size(obj);
	int rc = 0;

	if (!io->nranges)
		return cb->writeback(cb->user, io->start, io->end, io->buf);
	for (unsigned i = 0; i < io->nranges && !rc; i++) {
		const struct ufo_range *r = &io->ranges[i];

		rc = cb->writeback(cb->user, io->start + r->off / es,
				   io->start + (r->off + r->len) / es,
				   (const char *)io->buf + r->off);
	}
	return rc;
}

/* Runs the application's populate (fetch) or writeback (store) right here,
 * on the submitting thread: it may block, and may touch other UFOs (the
 * engine counts the thread busy meanwhile, for its watchdog).  Without a
 * writeback callback, writes are discarded on drop. */
static void cb_submit(struct ufo_obj *obj, struct ufo_io *io)
{
	const struct callback *cb = obj_backend_data(obj);
	int rc = 0;

	if (!io->store)
		rc = cb->populate(cb->user, io->start, io->end, io->buf);
	else if (cb->writeback)
		rc = cb_store(obj, cb, io);
	io_complete(io, rc ? callback_rc(rc) : 0);
}

static bool cb_transient(int err)
{
	(void)err;
	return true;
}

/* Every failure is retried cfg.retries times, after retry_delay_ms and
 * doubling delays. */
static void cb_retry(const struct ufo_obj *obj, struct ufo_retry *out)
{
	const struct ufo_config *cfg = ctx_cfg(obj_ctx(obj));

	*out = (struct ufo_retry){
		.transient = cb_transient,
		.max_attempts = cfg->retries + 1,
		.first_delay_ms = cfg->retry_delay_ms,
		.max_delay_ms = cfg->retry_delay_ms << 10,
	};
}

static void cb_close(struct ufo_obj *obj)
{
	free(obj_backend_data(obj));
}

static const struct ufo_backend_ops callback_backend = {
	.name = "callback",
	.submit = cb_submit,
	.blocking = true,
	.partial_stores = true,
	.retry = cb_retry,
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
