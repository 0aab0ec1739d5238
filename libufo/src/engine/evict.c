/* SPDX-License-Identifier: MIT */
/*
 * Eviction: the evictor thread keeps charged bytes under the budget by
 * claiming victims from the policy, writing dirty ones back and dropping
 * them in batches; sweeps (reset, refresh, DONTNEED, free) drop the chunks
 * of a range on the caller's thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "engine.h"

/* Chunks claimed and dropped together: MADV_DONTNEED costs a TLB flush
 * (a hypercall on a VM), so contiguous victims are dropped in one call. */
#define EVICT_BATCH 64

/* ---- eviction. */

struct victim {
	struct ufo_obj *obj;
	struct ufo_chunk *c;
	enum chunk_state was;
};

/* obj->lock held, the chunk resident: takes it out of the policy's queues
 * and moves it to EVICTING, after which only its claimer changes it. */
static void victim_claim_locked(struct victim *v)
{
	v->was = (enum chunk_state)v->c->state;
	policy_remove(v->obj, v->c);
	chunk_set_state(v->obj, v->c, CHUNK_EVICTING);
}

/* The evictor's victims are picked from the queues without obj->lock, so
 * they are claimed here, if still resident.  Returns false when someone
 * else has the chunk (a sweep claimed it, or it is being synced). */
static bool victim_claim(struct victim *v)
{
	struct ufo_obj *obj = v->obj;

	pthread_mutex_lock(&obj->lock);
	if (!chunk_is_resident(v->c)) {
		/* The evictor may have claimed (unqueued) a chunk that sync is
		 * writing back: requeue it, or it would never be evicted.
		 * Unless it is queued again already: between the pick and
		 * this claim (the stores of the batch's earlier victims) a
		 * sweep may have dropped it, a fault reloaded it (fetch_done
		 * queues it) and a sync taken it.  Queued twice, its links
		 * were overwritten: the queue's head was left pointing at a
		 * chunk marked unqueued, which the pick returned forever
		 * without unlinking, so the evictor dropped nothing, never
		 * found the queue empty to call itself stuck, and every load
		 * waited for budget for good (t_dirty_scan's stress test hung). */
		if (v->c->state == CHUNK_WRITEBACK)
			policy_requeue(obj, v->c);
		pthread_mutex_unlock(&obj->lock);
		return false;
	}
	victim_claim_locked(v);
	pthread_mutex_unlock(&obj->lock);
	return true;
}

static void victim_finish(struct victim *v)
{
	struct ufo_obj *obj = v->obj;
	struct ufo_ctx *ctx = obj->ctx;
	uint64_t idx = chunk_index(obj, v->c);
	size_t len = chunk_len(obj, idx);
	bool wake;

	/* The memory is gone (drop_batch), so it stops counting before the
	 * chunk turns ABSENT: a thread that sees it ABSENT (ufo_reset waiting
	 * for it) then reads counters without it.  Uncharged after the
	 * unlock, t_model's check that a reset leaves nothing resident read
	 * one chunk too many under TSan. */
	budget_uncharge(obj, len);
	if (v->was == CHUNK_DIRTY)
		STAT_ADD(obj, dirty_bytes, -(int64_t)len);
	pthread_mutex_lock(&obj->lock);
	chunk_set_state(obj, v->c, CHUNK_ABSENT);
	wake = v->c->flags & CHUNK_F_WAKE_WAITING;
	v->c->flags = CHUNK_F_EVICTED;
	pthread_mutex_lock(&ctx->policy_lock);
	v->c->evicted_at = ++ctx->evict_seq;
	pthread_mutex_unlock(&ctx->policy_lock);
	pthread_cond_broadcast(&obj->cond);
	pthread_mutex_unlock(&obj->lock);

	STAT_ADD(obj, evictions, 1);
	/* Threads that faulted while we were EVICTING refault and reload. */
	if (wake)
		uffd_wake(ctx->uffd.fd, chunk_addr(obj, idx), len);
}

static int victim_cmp(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)chunk_addr(((const struct victim *)a)->obj,
					    chunk_index(((const struct victim *)a)->obj,
							((const struct victim *)a)->c));
	uintptr_t y = (uintptr_t)chunk_addr(((const struct victim *)b)->obj,
					    chunk_index(((const struct victim *)b)->obj,
							((const struct victim *)b)->c));

	return x < y ? -1 : x > y;
}

/* Drops the memory of ready victims: each chunk's pages go to its
 * object's page pool when it has room (pool.c), the rest are dropped with
 * one MADV_DONTNEED per run of adjacent chunks. */
static void drop_batch(struct victim *v, unsigned n)
{
	char *run = NULL;
	size_t run_len = 0;

	qsort(v, n, sizeof(*v), victim_cmp);
	for (unsigned i = 0; i <= n; i++) {
		char *a = NULL;
		size_t len = 0;

		if (i < n) {
			uint64_t idx = chunk_index(v[i].obj, v[i].c);

			if (pool_recycle(v[i].obj, idx)) {
				STAT_ADD(v[i].obj, pages_recycled,
					 chunk_len(v[i].obj, idx) /
					 v[i].obj->ctx->page_size);
				continue;
			}
			a = chunk_addr(v[i].obj, idx);
			len = chunk_len(v[i].obj, idx);
		}
		if (run && a == run + run_len) {
			run_len += len;
			continue;
		}
		if (run && madvise(run, run_len, MADV_DONTNEED))
			log_err(v[0].obj->ctx, "madvise(DONTNEED): %s",
				strerror(errno));
		run = a;
		run_len = len;
	}
	for (unsigned i = 0; i < n; i++)
		victim_finish(&v[i]);
	budget_room_made(v[0].obj->ctx);
}

/*
 * Writing a batch back: every claimed victim's store is submitted at once
 * (a remote backend then has them all in flight; the callback backend runs
 * them one by one as they are submitted) and the batch waits on a counter
 * for the last one.  No thread per writeback.
 */
struct batch {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned pending;  /* stores submitted and not yet over */
	struct victim *v;
	int rc[EVICT_BATCH];
	struct chunk_store st[EVICT_BATCH];
};

/* A victim's store is over; a failed one goes back to its old state,
 * queued and resident.  Any thread. */
static void batch_store_done(struct chunk_store *st, int err)
{
	struct batch *b = st->arg;
	unsigned i = (unsigned)(st - b->st);

	if (err) {
		struct victim *v = &b->v[i];

		pthread_mutex_lock(&v->obj->lock);
		chunk_store_failed(v->obj, v->c, v->was);
		pthread_mutex_unlock(&v->obj->lock);
	}
	pthread_mutex_lock(&b->lock);
	b->rc[i] = err;
	if (!--b->pending)
		pthread_cond_signal(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

/* Starts victim i's store; rc[i] is 0 once it is ready to drop (nothing to
 * save, or saved), 1 while not claimed, or the store error. */
static void batch_start(struct batch *b, unsigned i)
{
	struct victim *v = &b->v[i];
	struct chunk_store *st = &b->st[i];
	int rc;

	st->then = batch_store_done;
	st->arg = b;
	pthread_mutex_lock(&b->lock);
	b->pending++;
	pthread_mutex_unlock(&b->lock);
	rc = chunk_store_start(v->obj, chunk_index(v->obj, v->c), v->was, st);
	if (rc == 1)
		return;
	if (rc < 0)
		batch_store_done(st, rc);
	else
		batch_store_done(st, 0);
}

/* Writes back and drops the victims, claimed already (a sweep's) or not
 * yet (the evictor's); returns how many were dropped and stores the first
 * store error in *err. */
static unsigned evict_batch(struct victim *v, unsigned n, bool claimed,
			    int *err)
{
	struct batch *b = malloc(sizeof(*b));
	unsigned ready = 0;

	if (!b) {
		if (!*err)
			*err = -ENOMEM;
		return 0;
	}
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->cond, NULL);
	b->pending = 0;
	b->v = v;
	for (unsigned i = 0; i < n; i++) {
		b->rc[i] = 1;
		if (claimed || victim_claim(&v[i]))
			batch_start(b, i);
	}
	pthread_mutex_lock(&b->lock);
	while (b->pending)
		pthread_cond_wait(&b->cond, &b->lock);
	pthread_mutex_unlock(&b->lock);
	for (unsigned i = 0; i < n; i++) {
		if (!b->rc[i])
			v[ready++] = v[i];
		else if (b->rc[i] < 0 && !*err)
			*err = b->rc[i];
	}
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->cond);
	free(b);
	if (ready)
		drop_batch(v, ready);
	return ready;
}

/* ---- sweeps: reset, refresh, DONTNEED and free. */

/*
 * A sweep walks its range once and claims each resident chunk (EVICTING)
 * the moment it sees it, dropping them EVICT_BATCH at a time.  Two rules
 * make it finish, and keep the budget, whatever faulting threads do
 * (issue 16):
 *  - Claim while walking, never "collect now, claim later".  Collected
 *    chunks stayed queued, so the evictor took some of them meanwhile; the
 *    sweep then lost its claim (-EBUSY) and walked the whole range again,
 *    and against steady faults some chunk was always lost: reset and
 *    refresh ran for tens of seconds, or until the faults stopped.  Once
 *    claimed, a chunk is the sweep's, so one pass is enough.
 *  - Never sleep while holding claims.  A sweep waiting for a busy chunk
 *    (a load that waits for budget, a sync's writeback) first drops what
 *    it holds.  Held claims are memory the evictor cannot free; a load
 *    waiting for room while the sweep waited for that load was the
 *    evictor's "nothing evictable" from which every fault went over
 *    budget.
 * A chunk touched again after the sweep passed it stays resident: that
 * touch came after the sweep, as far as the caller can tell.
 */
struct sweep {
	struct victim v[EVICT_BATCH];
	unsigned n;
	int err; /* the first writeback error */
};

static void sweep_flush(struct sweep *s)
{
	if (s->n)
		evict_batch(s->v, s->n, true, &s->err);
	s->n = 0;
}

static bool chunk_is_busy(const struct ufo_chunk *c)
{
	return c->state == CHUNK_FETCHING || c->state == CHUNK_WRITEBACK ||
	       c->state == CHUNK_EVICTING;
}

/* Claims chunk c for the sweep if it is resident (and dirty chunks are
 * wanted), waiting first for whoever is busy with it. */
static void sweep_visit(struct sweep *s, struct ufo_obj *obj,
			struct ufo_chunk *c, bool clean_only)
{
	pthread_mutex_lock(&obj->lock);
	if (chunk_is_busy(c) && s->n) {
		pthread_mutex_unlock(&obj->lock);
		sweep_flush(s);
		pthread_mutex_lock(&obj->lock);
	}
	chunk_wait_idle(obj, c);
	if (chunk_is_resident(c) && !(clean_only && c->state == CHUNK_DIRTY)) {
		s->v[s->n] = (struct victim){ .obj = obj, .c = c };
		victim_claim_locked(&s->v[s->n++]);
	}
	pthread_mutex_unlock(&obj->lock);
	if (s->n == EVICT_BATCH)
		sweep_flush(s);
}

static int sweep_range(struct ufo_obj *obj, uint64_t first, uint64_t last,
		       bool clean_only)
{
	struct sweep s = { .n = 0 };

	for (uint64_t idx = first; idx <= last; idx++)
		sweep_visit(&s, obj, &obj->chunks[idx], clean_only);
	sweep_flush(&s);
	return s.err;
}

int evict_range(struct ufo_obj *obj, uint64_t first, uint64_t last)
{
	return sweep_range(obj, first, last, false);
}

int evict_clean(struct ufo_obj *obj)
{
	/* In hash and scan modes "clean" is unknown until hashed or scanned:
	 * a changed chunk is written back before it is dropped, as on any
	 * eviction. */
	return sweep_range(obj, 0, obj->nchunks - 1, true);
}

/* ---- the evictor thread. */

/* Claims up to EVICT_BATCH victims, enough to bring charged() to low. */
static unsigned claim_victims(struct ufo_ctx *ctx, struct victim *v)
{
	int64_t excess = budget_charged(ctx) - (int64_t)ctx->cfg.low_watermark;
	unsigned n = 0;

	pthread_mutex_lock(&ctx->policy_lock);
	while (n < EVICT_BATCH && excess > 0) {
		struct ufo_chunk *c = ctx->policy->pick(ctx);
		if (!c)
			break;
		/* Queued chunks keep their object alive (ufo_free unqueues
		 * before its last wait), so taking a reference is safe. */
		obj_get(c->obj);
		v[n++] = (struct victim){ .obj = c->obj, .c = c };
		excess -= (int64_t)chunk_len(c->obj, chunk_index(c->obj, c));
	}
	pthread_mutex_unlock(&ctx->policy_lock);
	return n;
}

/* One pass down to the low watermark.  Returns chunks dropped; *failed
 * tells whether a writeback failed. */
static unsigned evict_to_low(struct ufo_ctx *ctx, bool *failed)
{
	struct victim v[EVICT_BATCH], held[EVICT_BATCH];
	unsigned total = 0, n;

	*failed = false;
	while (!atomic_load(&ctx->stopping) &&
	       budget_charged(ctx) > (int64_t)ctx->cfg.low_watermark &&
	       (n = claim_victims(ctx, v)) > 0) {
		int err = 0;
		unsigned dropped;

		memcpy(held, v, n * sizeof(*v));
		dropped = evict_batch(v, n, false, &err);
		for (unsigned i = 0; i < n; i++)
			obj_put(held[i].obj);
		total += dropped;
		*failed |= err != 0;
		if (!dropped)
			break;
	}
	return total;
}

/* budget_lock held. */
static bool evictor_has_work(struct ufo_ctx *ctx)
{
	return budget_charged(ctx) > (int64_t)ctx->cfg.high_watermark ||
	       ((ctx->budget_waiters || atomic_load(&ctx->room_wanted)) &&
		budget_charged(ctx) > (int64_t)ctx->cfg.low_watermark);
}

static bool queues_empty(struct ufo_ctx *ctx)
{
	bool empty;

	pthread_mutex_lock(&ctx->policy_lock);
	empty = !ctx->queued;
	pthread_mutex_unlock(&ctx->policy_lock);
	return empty;
}

/*
 * After a pass that dropped nothing: stuck (the loads waiting now may
 * exceed the budget) only if nothing will become evictable soon.  Victims
 * someone else was busy with are transient, and with an empty queue every
 * resident chunk is on its way into it or out of memory: loads in flight
 * land and are queued, a landed chunk is counted resident a moment before
 * it is queued (budget_commit), and chunks a sweep has claimed are freed
 * when it drops them.  So an empty queue is given STUCK_GRACE_MS, measured
 * from the first pass that found it empty and reset by any pass that drops
 * a chunk.  The wait may never end: a
 * populate that reads another UFO holds its reservation while the inner
 * load waits for budget, and a sweep's writeback may do the same.  Past the
 * grace period the inner load goes over budget by that chunk, within
 * "high + chunks in flight".  Writebacks that keep failing make the
 * evictor stuck at once.
 */
#define STUCK_GRACE_MS 20

static bool evictor_is_stuck(struct ufo_ctx *ctx, bool failed)
{
	uint64_t now = now_ns();

	if (failed)
		return true;
	if (!queues_empty(ctx)) {
		ctx->queues_empty_since = 0;
		return false;
	}
	if (!ctx->queues_empty_since)
		ctx->queues_empty_since = now;
	return now - ctx->queues_empty_since >= STUCK_GRACE_MS * 1000000ull;
}

static void *evictor_main(void *arg)
{
	struct ufo_ctx *ctx = arg;
	struct timespec ts;

	pthread_mutex_lock(&ctx->budget_lock);
	while (!atomic_load(&ctx->stopping)) {
		bool stuck = false, failed;

		if (!evictor_has_work(ctx)) {
			ctx->evictor_stuck = false;
			atomic_store(&ctx->room_wanted, false);
			deadline_in(&ts, 200);
			pthread_cond_timedwait(&ctx->evict_cond, &ctx->budget_lock, &ts);
			continue;
		}
		pthread_mutex_unlock(&ctx->budget_lock);
		if (evict_to_low(ctx, &failed) == 0)
			stuck = evictor_is_stuck(ctx, failed);
		else
			ctx->queues_empty_since = 0;
		pthread_mutex_lock(&ctx->budget_lock);
		if (stuck && !ctx->evictor_stuck)
			log_warn(ctx, "over budget with nothing evictable (writebacks failing or chunks held): exceeding the budget");
		/* The verdict: loads waiting now may go over budget. */
		if (stuck)
			ctx->stuck_gen++;
		ctx->evictor_stuck = stuck;
		pthread_cond_broadcast(&ctx->budget_cond);
		if (!stuck && evictor_has_work(ctx) && budget_charged(ctx) >
		    (int64_t)ctx->cfg.low_watermark) {
			/* Waiting for loads in flight to land: don't spin. */
			deadline_in(&ts, 1);
			pthread_cond_timedwait(&ctx->evict_cond, &ctx->budget_lock, &ts);
		} else if (stuck) {
			deadline_in(&ts, 10);
			pthread_cond_timedwait(&ctx->evict_cond, &ctx->budget_lock, &ts);
		}
	}
	pthread_mutex_unlock(&ctx->budget_lock);
	return NULL;
}

int evictor_start(struct ufo_ctx *ctx)
{
	int rc = spawn_masked(&ctx->evictor, evictor_main, ctx);

	ctx->evictor_started = rc == 0;
	return rc;
}

void evictor_stop(struct ufo_ctx *ctx)
{
	if (!ctx->evictor_started)
		return;
	atomic_store(&ctx->stopping, true);
	evictor_kick(ctx);
	pthread_join(ctx->evictor, NULL);
	ctx->evictor_started = false;
}

