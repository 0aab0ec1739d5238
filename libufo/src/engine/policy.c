/* SPDX-License-Identifier: MIT */
/*
 * Eviction policies.  The library sees a chunk only when it faults, never
 * when it is read afterwards: there is no reference bit, so recency of use
 * is unknown and policies that rank resident chunks by hits (LRU, CLOCK,
 * ARC's T2, S3-FIFO's and CLOCK-Pro's reference counts) have nothing to
 * rank them by.  What is known is the fault history: each chunk records the
 * eviction sequence number at which it was last dropped, so a refault
 * tells how many evictions the chunk stayed away ("refault distance").
 * A short distance means the chunk was wanted again soon: it is hot.
 *
 * Policies:
 *  - fifo: one queue in order of loading, for comparison;
 *  - 2q:   a refault within as many evictions as there are chunks queued
 *          promotes to a protected FIFO;
 *  - mq:   the default; queues by refault count, see below.
 */
#include <stddef.h>

#include "engine.h"

/* 2Q's probation keeps at least this share of queued chunks (in 1/100ths);
 * 2Q's paper suggests 25%. */
#define PROBATION_SHARE 25

/* MQ: a refault counts as a hit of the "ghost" history when the chunk was
 * away for at most this many times the chunks queued now.  Measured on
 * bench-zipf's trace in a simulation of the watermarks: 1.5x to 3x are
 * level (0.704-0.707 of FIFO's faults), 1x loses 0.004 and drops the
 * frequency of chunks that are warm but not hot. */
#define MQ_GHOST_FACTOR 2

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

static void list_push_head(struct chunk_list *l, struct ufo_chunk *c)
{
	c->prev = NULL;
	c->next = l->head;
	if (l->head)
		l->head->prev = c;
	else
		l->tail = c;
	l->head = c;
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

/* c->queue is 0 when the chunk is not queued, else 1 + its queue's index
 * in ctx->queues. */
static void queue_add(struct ufo_ctx *ctx, struct ufo_chunk *c, unsigned q)
{
	c->queue = (uint8_t)(q + 1);
	list_push_tail(&ctx->queues[q], c);
	ctx->queued++;
}

/* Queues c where it goes last under a newest-first pick. */
static void queue_add_oldest(struct ufo_ctx *ctx, struct ufo_chunk *c,
			     unsigned q)
{
	c->queue = (uint8_t)(q + 1);
	list_push_head(&ctx->queues[q], c);
	ctx->queued++;
}

static void queue_remove(struct ufo_ctx *ctx, struct ufo_chunk *c)
{
	if (!c->queue)
		return;
	list_unlink(&ctx->queues[c->queue - 1], c);
	c->queue = 0;
	ctx->queued--;
}

static struct ufo_chunk *queue_pop(struct ufo_ctx *ctx, unsigned q)
{
	struct ufo_chunk *c = ctx->queues[q].head;

	if (c)
		queue_remove(ctx, c);
	return c;
}

static struct ufo_chunk *queue_pop_newest(struct ufo_ctx *ctx, unsigned q)
{
	struct ufo_chunk *c = ctx->queues[q].tail;

	if (c)
		queue_remove(ctx, c);
	return c;
}

/* ---- FIFO: one queue, in order of loading. */

static void fifo_insert(struct ufo_ctx *ctx, struct ufo_chunk *c,
			uint32_t distance, bool sequential)
{
	queue_add(ctx, c, 0);
}

static struct ufo_chunk *fifo_pick(struct ufo_ctx *ctx)
{
	return queue_pop(ctx, 0);
}

const struct ufo_policy_ops ufo_policy_fifo = {
	.name = "fifo",
	.insert = fifo_insert,
	.remove = queue_remove,
	.pick = fifo_pick,
};

/* ---- 2Q: probation (queue 0), protected (queue 1). */

enum { TWOQ_PROBATION = 0, TWOQ_PROTECTED = 1 };

static void twoq_insert(struct ufo_ctx *ctx, struct ufo_chunk *c,
			uint32_t distance, bool sequential)
{
	/* A refault within as many evictions as there are chunks queued
	 * would have been a hit in a cache twice the size (2Q's "Kout" of
	 * one buffer).  A sequentially scanned object is not promoted: its
	 * chunks are used once, and a refault there is the next pass. */
	bool refault = distance <= ctx->queued;

	queue_add(ctx, c, refault && !sequential ? TWOQ_PROTECTED
						 : TWOQ_PROBATION);
}

static struct ufo_chunk *twoq_pick(struct ufo_ctx *ctx)
{
	uint64_t prob = ctx->queues[TWOQ_PROBATION].count;

	if (prob && (prob * 100 > ctx->queued * PROBATION_SHARE ||
		     !ctx->queues[TWOQ_PROTECTED].count))
		return queue_pop(ctx, TWOQ_PROBATION);
	return queue_pop(ctx, TWOQ_PROTECTED);
}

const struct ufo_policy_ops ufo_policy_2q = {
	.name = "2q",
	.insert = twoq_insert,
	.remove = queue_remove,
	.pick = twoq_pick,
};

/*
 * ---- MQ: multi-queue by refault count (after Zhou, Philbin and Li's MQ,
 * with S3-FIFO's small FIFO for chunks seen once).
 *
 * c->level counts the chunk's refaults from the ghost history (away for at
 * most MQ_GHOST_FACTOR x queued evictions), up to POLICY_QUEUES - 1, and
 * survives eviction; a refault from beyond the ghost history halves it, so
 * a chunk that cooled loses its rank in a few loads.  A resident chunk
 * waits in queue[level]; victims come from the lowest non-empty level.
 *  - Level 0 (loaded once, or cooled) goes oldest first, as S3-FIFO's small
 *    FIFO: a one-pass scan flushes only level 0, and a scan's chunks leave
 *    behind it.
 *  - Levels in between go newest first.  Their chunks are equally proven,
 *    and a resident one gives no news, so keeping the ones that stayed
 *    longest is as good a guess as any, and it is what a loop larger than
 *    the budget needs: a FIFO order reloads every chunk of every pass,
 *    newest first keeps a fixed part of the loop resident.
 *    A chunk readahead just loaded is queued as the oldest there, and
 *    moves to the newest end once its scan passed it (mq_used): the scan
 *    has not reached it yet, and dropping it first turned readahead into
 *    a demand fault on most chunks of a loop (twice FIFO's faults,
 *    measured with readahead on); once passed, it is the chunk the loop
 *    needs last.
 *  - The top level goes oldest first again: nothing outranks it, so
 *    newest first would keep its oldest chunks forever, long after the
 *    workload moved on.
 * Why not S3-FIFO, CLOCK-Pro or ARC as published: their main queues are
 * ordered by hits to resident pages, which a userfault library never sees;
 * fed by refaults only, measured in the same simulation, S3-FIFO's CLOCK
 * main queue gave 0.73-0.77x FIFO's faults, ARC 0.86x, 2Q 0.86x, this 0.70x
 * (docs/architecture.md has the figures).
 */
static void mq_insert(struct ufo_ctx *ctx, struct ufo_chunk *c,
		      uint32_t distance, bool sequential)
{
	unsigned level = c->level;

	if (sequential)
		level = 0;
	else if (distance <= MQ_GHOST_FACTOR * ctx->queued)
		level = level + 1 < POLICY_QUEUES ? level + 1 : level;
	else if (distance != POLICY_NOT_EVICTED)
		level /= 2;
	c->level = (uint8_t)level;
	/* CHUNK_F_READAHEAD is read under obj->lock, which policy_insert's
	 * callers hold. */
	if (level && level < POLICY_QUEUES - 1 && (c->flags & CHUNK_F_READAHEAD))
		queue_add_oldest(ctx, c, level);
	else
		queue_add(ctx, c, level);
}

static void mq_used(struct ufo_ctx *ctx, struct ufo_chunk *c)
{
	unsigned q = c->queue;

	if (q > 1 && q < POLICY_QUEUES) {
		queue_remove(ctx, c);
		queue_add(ctx, c, q - 1);
	}
}

static struct ufo_chunk *mq_pick(struct ufo_ctx *ctx)
{
	for (unsigned q = 0; q < POLICY_QUEUES; q++) {
		if (!ctx->queues[q].count)
			continue;
		if (q == 0 || q == POLICY_QUEUES - 1)
			return queue_pop(ctx, q);
		return queue_pop_newest(ctx, q);
	}
	return NULL;
}

const struct ufo_policy_ops ufo_policy_mq = {
	.name = "mq",
	.insert = mq_insert,
	.remove = queue_remove,
	.pick = mq_pick,
	.used = mq_used,
};

/* ---- entry points used by the fault path and eviction. */

/*
 * Evictions since c was last dropped, or POLICY_NOT_EVICTED when it has not
 * been dropped since it was last queued: a requeue (a writeback that
 * failed, or a claim that lost to sync) is not a refault.  The flag is
 * consumed here, so that only the first insert after a drop counts.
 * Unsigned difference is correct across the wrap of evict_seq.
 */
static uint32_t refault_distance(struct ufo_ctx *ctx, struct ufo_chunk *c)
{
	uint32_t d;

	if (!(c->flags & CHUNK_F_EVICTED))
		return POLICY_NOT_EVICTED;
	c->flags &= (uint8_t)~CHUNK_F_EVICTED;
	d = (uint32_t)(ctx->evict_seq - c->evicted_at);
	return d < POLICY_NOT_EVICTED ? d : POLICY_NOT_EVICTED - 1;
}

/* policy_lock held. */
static void insert_locked(struct ufo_obj *obj, struct ufo_chunk *c)
{
	struct ufo_ctx *ctx = obj->ctx;
	bool seq = atomic_load_explicit(&obj->advice, memory_order_relaxed) ==
		   UFO_ADV_SEQUENTIAL;

	ctx->policy->insert(ctx, c, refault_distance(ctx, c), seq);
}

void policy_insert(struct ufo_obj *obj, struct ufo_chunk *c)
{
	pthread_mutex_lock(&obj->ctx->policy_lock);
	insert_locked(obj, c);
	pthread_mutex_unlock(&obj->ctx->policy_lock);
}

/* A chunk queued twice has its links overwritten and corrupts its queue
 * (see victim_claim, evict.c). */
void policy_requeue(struct ufo_obj *obj, struct ufo_chunk *c)
{
	pthread_mutex_lock(&obj->ctx->policy_lock);
	if (!c->queue)
		insert_locked(obj, c);
	pthread_mutex_unlock(&obj->ctx->policy_lock);
}

void policy_used(struct ufo_obj *obj, struct ufo_chunk *c)
{
	struct ufo_ctx *ctx = obj->ctx;

	if (!ctx->policy->used)
		return;
	pthread_mutex_lock(&ctx->policy_lock);
	ctx->policy->used(ctx, c);
	pthread_mutex_unlock(&ctx->policy_lock);
}

void policy_remove(struct ufo_obj *obj, struct ufo_chunk *c)
{
	struct ufo_ctx *ctx = obj->ctx;

	pthread_mutex_lock(&ctx->policy_lock);
	ctx->policy->remove(ctx, c);
	pthread_mutex_unlock(&ctx->policy_lock);
}
