/* SPDX-License-Identifier: MIT */
/*
 * Eviction policies.  The library sees a chunk only when it faults, never
 * when it is read afterwards, so recency of use is unknown; what is known is
 * the fault history.  2Q turns that into scan resistance: a chunk loaded for
 * the first time waits in a small probation FIFO; a chunk that faults again
 * soon after being evicted (a "ghost" hit, remembered by the eviction
 * sequence number stored in the chunk) has proved it is reused and goes to
 * the protected FIFO, which is evicted only when probation is within its
 * share.  A one-pass scan therefore flushes only probation.
 */
#include <stddef.h>

#include "engine.h"

/* Probation keeps at least this share of resident chunks (in 1/100ths);
 * 2Q's paper suggests 25%. */
#define PROBATION_SHARE 25

static void list_push_tail(struct chunk_list *l, struct ufo_chunk *c)
{
	c->next = NULL;
	c->prev = l->tail;
	if (l->tail)
		l->tail->next = c;
	else
		l->head = c;
	l->tail = c;
	l->count++;
}

static void list_unlink(struct chunk_list *l, struct ufo_chunk *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		l->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		l->tail = c->prev;
	c->prev = c->next = NULL;
	l->count--;
}

static struct chunk_list *queue_list(struct ufo_ctx *ctx, uint8_t q)
{
	return q == QUEUE_PROTECTED ? &ctx->protected_ : &ctx->probation;
}

static void queue_remove(struct ufo_ctx *ctx, struct ufo_chunk *c)
{
	if (c->queue == QUEUE_NONE)
		return;
	list_unlink(queue_list(ctx, c->queue), c);
	c->queue = QUEUE_NONE;
}

static struct ufo_chunk *queue_pop(struct ufo_ctx *ctx, struct chunk_list *l)
{
	struct ufo_chunk *c = l->head;

	if (c)
		queue_remove(ctx, c);
	return c;
}

/* ---- FIFO: one queue, in order of loading. */

static void fifo_insert(struct ufo_ctx *ctx, struct ufo_chunk *c,
			bool refault, bool sequential)
{
	c->queue = QUEUE_PROBATION;
	list_push_tail(&ctx->probation, c);
}

static struct ufo_chunk *fifo_pick(struct ufo_ctx *ctx)
{
	return queue_pop(ctx, &ctx->probation);
}

const struct ufo_policy_ops ufo_policy_fifo = {
	.name = "fifo",
	.insert = fifo_insert,
	.remove = queue_remove,
	.pick = fifo_pick,
};

/* ---- 2Q. */

static void twoq_insert(struct ufo_ctx *ctx, struct ufo_chunk *c,
			bool refault, bool sequential)
{
	/* A sequentially scanned object is not promoted: its chunks are used
	 * once, and a refault there is the next pass of the scan. */
	c->queue = refault && !sequential ? QUEUE_PROTECTED : QUEUE_PROBATION;
	list_push_tail(queue_list(ctx, c->queue), c);
}

static struct ufo_chunk *twoq_pick(struct ufo_ctx *ctx)
{
	uint64_t total = ctx->probation.count + ctx->protected_.count;

	if (ctx->probation.count &&
	    (ctx->probation.count * 100 > total * PROBATION_SHARE ||
	     !ctx->protected_.count))
		return queue_pop(ctx, &ctx->probation);
	return queue_pop(ctx, &ctx->protected_);
}

const struct ufo_policy_ops ufo_policy_2q = {
	.name = "2q",
	.insert = twoq_insert,
	.remove = queue_remove,
	.pick = twoq_pick,
};

/* ---- entry points used by the fault path and eviction. */

static bool recently_evicted(const struct ufo_ctx *ctx,
			     const struct ufo_chunk *c)
{
	/* A refault counts when it comes within as many evictions as there
	 * are chunks resident: the chunk would have been a hit in a cache
	 * twice the size (2Q's "Kout" of one buffer).  Unsigned difference is
	 * correct across the wrap of evict_seq. */
	uint64_t span = ctx->probation.count + ctx->protected_.count;

	return (c->flags & CHUNK_F_EVICTED) &&
	       (uint32_t)(ctx->evict_seq - c->evicted_at) <= span;
}

void policy_insert(struct ufo_obj *obj, struct ufo_chunk *c)
{
	struct ufo_ctx *ctx = obj->ctx;
	bool seq = atomic_load_explicit(&obj->advice, memory_order_relaxed) ==
		   UFO_ADV_SEQUENTIAL;

	pthread_mutex_lock(&ctx->policy_lock);
	ctx->policy->insert(ctx, c, recently_evicted(ctx, c), seq);
	pthread_mutex_unlock(&ctx->policy_lock);
}

void policy_remove(struct ufo_obj *obj, struct ufo_chunk *c)
{
	struct ufo_ctx *ctx = obj->ctx;

	pthread_mutex_lock(&ctx->policy_lock);
	ctx->policy->remove(ctx, c);
	pthread_mutex_unlock(&ctx->policy_lock);
}
