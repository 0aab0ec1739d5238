/* SPDX-License-Identifier: MIT */
/*
 * The budget: charged = resident + reserved (loads in flight).  A demand
 * load reserves its chunk before it fetches and waits for room; a prefetch
 * is refused instead.  The evictor (evict.c) makes the room.
 */
#include <errno.h>
#include <time.h>

#include "engine.h"

int64_t budget_charged(struct ufo_ctx *ctx)
{
	return atomic_load(&ctx->stats.resident_bytes) +
	       atomic_load(&ctx->inflight);
}

/* Wakes loads waiting for budget: memory was dropped (by the evictor or by
 * a sweep, which must not leave them to their 100 ms timeout). */
void budget_room_made(struct ufo_ctx *ctx)
{
	if (!atomic_load_explicit(&ctx->budget_waiters, memory_order_relaxed))
		return;
	pthread_mutex_lock(&ctx->budget_lock);
	pthread_cond_broadcast(&ctx->budget_cond);
	pthread_mutex_unlock(&ctx->budget_lock);
}

void evictor_kick(struct ufo_ctx *ctx)
{
	pthread_mutex_lock(&ctx->budget_lock);
	pthread_cond_signal(&ctx->evict_cond);
	pthread_mutex_unlock(&ctx->budget_lock);
}

/* Admits len bytes if they fit under the high watermark.  Add-then-check:
 * two racing callers may both be refused, never both wrongly admitted. */
static bool budget_try_admit(struct ufo_ctx *ctx, size_t len)
{
	int64_t high = (int64_t)ctx->cfg.high_watermark;
	int64_t prev = atomic_fetch_add(&ctx->inflight, (int64_t)len);

	if (atomic_load(&ctx->stats.resident_bytes) + prev + (int64_t)len <= high)
		return true;
	atomic_fetch_sub(&ctx->inflight, (int64_t)len);
	return false;
}

/*
 * Whether a load waiting since verdict `gen` may go over budget: the evictor
 * has since found nothing it can drop (writebacks failing, or loads that
 * never land: a populate reading another UFO), or nothing is resident or on
 * its way (a chunk larger than the budget).  A verdict lets in the loads
 * that were waiting when it was given, not the ones that come after: a
 * standing "stuck" flag, cleared only when the evictor finished its next
 * pass, let every fault in while that pass ran, and the faults outran it
 * to 470 times the budget (issue 16).  budget_lock held.
 */
static bool budget_hopeless(struct ufo_ctx *ctx, uint64_t gen)
{
	return ctx->stuck_gen != gen ||
	       (atomic_load(&ctx->stats.resident_bytes) <= 0 &&
		atomic_load(&ctx->inflight) <= 0);
}

int budget_reserve(struct ufo_ctx *ctx, size_t len, bool wait, bool busy)
{
	struct timespec ts;
	uint64_t gen;

	if (budget_try_admit(ctx, len))
		return 0;
	if (!wait) {
		/* The evictor makes room down to the low watermark, as for a
		 * waiting load: a prefetch refused at the high watermark would
		 * otherwise be refused until a demand fault passed it. */
		atomic_store(&ctx->room_wanted, true);
		evictor_kick(ctx);
		return -ENOSPC;
	}
	/* Waiting counts as busy for the starvation watchdog when the load's
	 * backend is blocking: if a writeback the evictor runs touches a UFO,
	 * some handler must be free for it.  A remote object's load waits
	 * for the evictor alone, which no new handler would help. */
	if (busy)
		busy_enter(ctx);
	pthread_mutex_lock(&ctx->budget_lock);
	gen = ctx->stuck_gen;
	ctx->budget_waiters++;
	while (!budget_try_admit(ctx, len)) {
		/* Losing no data comes before the bound: when the evictor can
		 * drop nothing (writebacks failing), go over budget rather
		 * than wait forever. */
		if (budget_hopeless(ctx, gen) || atomic_load(&ctx->stopping)) {
			atomic_fetch_add(&ctx->inflight, (int64_t)len);
			break;
		}
		pthread_cond_signal(&ctx->evict_cond);
		deadline_in(&ts, 100);
		pthread_cond_timedwait(&ctx->budget_cond, &ctx->budget_lock, &ts);
	}
	ctx->budget_waiters--;
	pthread_mutex_unlock(&ctx->budget_lock);
	if (busy)
		busy_exit(ctx);
	return 0;
}

void budget_release(struct ufo_ctx *ctx, size_t len)
{
	atomic_fetch_sub(&ctx->inflight, (int64_t)len);
}

void budget_commit(struct ufo_obj *obj, size_t len)
{
	/* Resident first, then inflight down: charged() may briefly count the
	 * chunk twice, never zero times, so the bound is never undercounted. */
	STAT_ADD(obj, resident_bytes, (int64_t)len);
	atomic_fetch_sub(&obj->ctx->inflight, (int64_t)len);
}

void budget_uncommit(struct ufo_obj *obj, size_t len)
{
	atomic_fetch_add(&obj->ctx->inflight, (int64_t)len);
	STAT_ADD(obj, resident_bytes, -(int64_t)len);
}

void budget_uncharge(struct ufo_obj *obj, size_t len)
{
	STAT_ADD(obj, resident_bytes, -(int64_t)len);
}
