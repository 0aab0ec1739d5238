/* SPDX-License-Identifier: MIT */
/*
 * Readahead, and the queue of background loads (readahead windows and
 * WILLNEED) that idle handler threads run.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"

/* Readahead never loads more than this ahead of a sequential scan, nor more
 * than 1/8 of the high watermark. */
#define READAHEAD_MAX_BYTES ((size_t)16 << 20)
#define READAHEAD_MAX_CHUNKS 64

/* ---- readahead. */

static unsigned readahead_max(const struct ufo_obj *obj)
{
	size_t bytes = obj->ctx->cfg.high_watermark / 8;
	size_t n;

	if (bytes > READAHEAD_MAX_BYTES)
		bytes = READAHEAD_MAX_BYTES;
	n = bytes / obj->chunk_size;
	if (n > READAHEAD_MAX_CHUNKS)
		n = READAHEAD_MAX_CHUNKS;
	return n ? (unsigned)n : 1;
}

/*
 * Called for every demand fault.  A fault where the last window ended, or
 * inside it ahead of the previous fault (the scan caught up with a load in
 * flight, or with a chunk whose prefetch found no room), or right after
 * the previous fault (a scan starting anywhere but chunk 0, where there is
 * no window yet), is a sequential scan: the window doubles and what lies
 * beyond the queued part is queued.
 * Anywhere else it resets.  SEQUENTIAL advice starts at the largest
 * window.  With loads asynchronous a scan often faults on a chunk still in
 * flight; counting only "exactly at the end" a hit reset the window there
 * and half the chunks of a scan were demand faults.
 */
void readahead_on_fault(struct ufo_obj *obj, uint64_t idx)
{
	int adv = atomic_load_explicit(&obj->advice, memory_order_relaxed);
	unsigned w = atomic_load_explicit(&obj->ra_window, memory_order_relaxed);
	uint64_t next = atomic_load_explicit(&obj->ra_next, memory_order_relaxed);
	uint64_t pos = atomic_exchange_explicit(&obj->ra_pos, idx,
						memory_order_relaxed);
	unsigned max = readahead_max(obj);
	uint64_t first, last;

	if (adv == UFO_ADV_RANDOM)
		return;
	if (adv == UFO_ADV_SEQUENTIAL)
		w = max;
	else if (idx == next || (idx > pos && idx < next) || idx == pos + 1)
		w = w ? (w * 2 < max ? w * 2 : max) : 1;
	else
		w = 0;
	atomic_store_explicit(&obj->ra_window, w, memory_order_relaxed);
	last = idx + w < obj->nchunks ? idx + w : obj->nchunks - 1;
	/* A fault inside the window already queued (the scan caught up with
	 * loads in progress) queues only what lies beyond it. */
	first = next > idx && next <= idx + w ? next : idx + 1;
	if (!w || first > last)
		return;
	atomic_store_explicit(&obj->ra_next, last + 1, memory_order_relaxed);
	prefetch_queue(obj, first, last, true);
}

/* ---- background work queue. */

void prefetch_queue(struct ufo_obj *obj, uint64_t first, uint64_t last,
		    bool readahead)
{
	struct ufo_ctx *ctx = obj->ctx;
	struct work_item *w = malloc(sizeof(*w));
	uint64_t one = 1;

	if (!w)
		return; /* only a hint */
	obj_get(obj);
	w->obj = obj;
	w->first = first;
	w->last = last;
	w->readahead = readahead;
	w->epoch = atomic_load(&obj->epoch);
	w->next = NULL;
	pthread_mutex_lock(&ctx->work_lock);
	if (ctx->work_tail)
		ctx->work_tail->next = w;
	else
		ctx->work_head = w;
	ctx->work_tail = w;
	pthread_mutex_unlock(&ctx->work_lock);
	if (write(ctx->event_fd, &one, sizeof(one)) < 0)
		log_debug(ctx, "eventfd write: %s", strerror(errno));
}

/* Takes the first chunk of the head item; the rest stays queued at the
 * head so that several handlers load one window in parallel, in order. */
static bool work_take(struct ufo_ctx *ctx, struct ufo_obj **obj,
		      uint64_t *idx, bool *readahead, uint32_t *epoch)
{
	struct work_item *w;
	uint64_t one = 1;
	bool more = false;

	pthread_mutex_lock(&ctx->work_lock);
	w = ctx->work_head;
	if (w) {
		*obj = w->obj;
		*idx = w->first++;
		*readahead = w->readahead;
		*epoch = w->epoch;
		if (w->first > w->last) {
			ctx->work_head = w->next;
			if (!ctx->work_head)
				ctx->work_tail = NULL;
		} else {
			obj_get(w->obj);
			w = NULL;
			more = true;
		}
	}
	pthread_mutex_unlock(&ctx->work_lock);
	if (more && write(ctx->event_fd, &one, sizeof(one)) < 0)
		log_debug(ctx, "eventfd write: %s", strerror(errno));
	free(w);
	return *obj != NULL;
}

/* A readahead load found no room in the budget (the evictor was told to
 * make some): the window's end comes back to it, so that the scan's next
 * fault queues it again instead of leaving it to a demand fault. */
static void readahead_refused(struct ufo_obj *obj, uint64_t idx)
{
	uint64_t next = atomic_load_explicit(&obj->ra_next, memory_order_relaxed);

	while (idx < next &&
	       !atomic_compare_exchange_weak_explicit(&obj->ra_next, &next, idx,
						      memory_order_relaxed,
						      memory_order_relaxed))
		;
}

void work_run_one(struct ufo_ctx *ctx)
{
	struct ufo_obj *obj = NULL;
	uint64_t idx;
	uint32_t epoch;
	bool ra;

	if (!work_take(ctx, &obj, &idx, &ra, &epoch))
		return;
	/* Readahead the scan has already passed (it faulted beyond) would
	 * only reload evicted chunks: skip it. */
	if (!atomic_load(&ctx->stopping) &&
	    !(ra && idx < atomic_load_explicit(&obj->ra_pos, memory_order_relaxed)) &&
	    chunk_fetch(obj, idx, 0, 0, epoch) == -ENOSPC && ra)
		readahead_refused(obj, idx);
	obj_put(obj);
}

void work_drain(struct ufo_ctx *ctx)
{
	struct work_item *w;

	while ((w = ctx->work_head)) {
		ctx->work_head = w->next;
		obj_put(w->obj);
		free(w);
	}
	ctx->work_tail = NULL;
}
