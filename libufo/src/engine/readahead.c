/* SPDX-License-Identifier: MIT */
/*
 * Readahead, and the queue of background loads (readahead windows and
 * WILLNEED) that idle handler threads run.
 *
 * Readahead follows trends, as Leap does: every demand fault joins one of
 * RA_STREAMS streams of its object (the one whose trend it continues, else
 * the one whose latest fault is nearest, within RA_MAX_STRIDE chunks, else
 * it replaces the stream idle longest), and a stream's trend is the
 * majority of the deltas between its latest RA_HISTORY faults.  So a
 * forward scan (+1), a backward one (-1), a strided one (+k) and several
 * of them interleaved in one object each get their own window, and a
 * fault off the trend now and then does not reset it.  Along a trend the
 * window doubles, from 1 chunk up to readahead_max(), as in the sequential
 * readahead this replaced.
 *
 * Accuracy is counted, not guessed: userfaultfd reports no access to a
 * chunk once it is installed, so a readahead chunk counts as used when
 * the stream that asked for it passes it while it is still resident (its
 * next fault lies beyond it along the trend), or when a fault arrives
 * while it loads (load.c).  Chunks evicted first, and those a stream had
 * queued when it stopped, count as unused.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"

/* Readahead never loads more than this ahead of a scan, nor more than 1/8
 * of the high watermark. */
#define READAHEAD_MAX_BYTES ((size_t)16 << 20)
#define READAHEAD_MAX_CHUNKS 64
/* A fault farther than this from every stream (and continuing no trend)
 * starts a stream of its own; so strides up to this many chunks are
 * followed. */
#define RA_MAX_STRIDE 32

static void work_queue(struct ufo_obj *obj, uint64_t first, uint64_t count,
		       int64_t step, int stream);

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

/* A scan along a trend faults again only past what is resident, so it may
 * pass a resident stretch (of an earlier pass, kept by the eviction
 * policy) longer than its window; up to this many steps it still counts as
 * the same scan and keeps its window. */
#define RA_MAX_SKIP 256

/* obj->lock held: whether every chunk strictly between from and to, step
 * apart, is resident (the scan could pass them without faulting). */
static bool resident_between(const struct ufo_obj *obj, uint64_t from,
			     uint64_t to, int64_t step)
{
	for (uint64_t i = from + (uint64_t)step; i != to; i += (uint64_t)step)
		if (!chunk_is_resident(&obj->chunks[i]))
			return false;
	return true;
}

/* Steps of the trend from the stream's latest fault to idx: k >= 1 when
 * idx lies on the trend and no farther than where the queued window ends
 * (s->next, itself included: the fault where the last window ended), or
 * up to RA_MAX_SKIP steps over chunks all resident, so the scan passed
 * every step in between; 0 otherwise.  obj->lock held. */
static int64_t trend_steps(const struct ufo_obj *obj,
			   const struct ra_stream *s, uint64_t idx)
{
	int64_t d = (int64_t)(idx - s->last), k, kmax;

	if (!s->live || !s->trend || d % s->trend)
		return 0;
	k = d / s->trend;
	kmax = (int64_t)(s->next - s->last) / s->trend;
	if (k < 1)
		return 0;
	if (k <= (kmax > 1 ? kmax : 1))
		return k;
	return k <= RA_MAX_SKIP && resident_between(obj, s->last, idx, s->trend)
	       ? k : 0;
}

static uint64_t distance(uint64_t a, uint64_t b)
{
	return a > b ? a - b : b - a;
}

/* The stream fault idx belongs to; a replaced one starts at idx.
 * obj->lock held. */
static struct ra_stream *stream_for(struct ufo_obj *obj, uint64_t idx)
{
	struct ra_state *ra = &obj->ra;
	struct ra_stream *near = NULL, *old = &ra->s[0];
	uint64_t best = RA_MAX_STRIDE + 1;

	for (unsigned i = 0; i < RA_STREAMS; i++) {
		struct ra_stream *s = &ra->s[i];

		if (trend_steps(obj, s, idx))
			return s;
		if (s->live && distance(idx, s->last) < best) {
			best = distance(idx, s->last);
			near = s;
		}
		if (!s->live || (old->live && s->stamp < old->stamp))
			old = s;
	}
	if (near)
		return near;
	*old = (struct ra_stream){ .live = true, .last = idx, .next = idx };
	return old;
}

/* Boyer-Moore majority of the stream's deltas: a delta held by more than
 * half of them, and by two at least, or by the only one when it is +-1 (a
 * scan's second fault starts readahead, as it always has); 0 if none. */
static int64_t majority(const struct ra_stream *s)
{
	int64_t cand = 0;
	unsigned votes = 0, count = 0;

	for (unsigned i = 0; i < s->ndelta; i++) {
		if (!votes)
			cand = s->delta[i];
		votes += s->delta[i] == cand ? 1 : -1u;
	}
	for (unsigned i = 0; i < s->ndelta; i++)
		count += s->delta[i] == cand;
	if (count * 2 <= s->ndelta)
		return 0;
	if (count >= 2 || cand == 1 || cand == -1)
		return cand;
	return 0;
}

static void push_delta(struct ra_stream *s, int64_t d)
{
	s->delta[s->head] = d;
	s->head = (s->head + 1) % RA_HISTORY;
	if (s->ndelta < RA_HISTORY)
		s->ndelta++;
}

/* obj->lock held: the scan went from `from` to `to` along step, passing
 * the chunks in between; readahead chunks among them still resident were
 * used. */
static void count_passed(struct ufo_obj *obj, uint64_t from, uint64_t to,
			 int64_t step)
{
	for (uint64_t i = from + (uint64_t)step; i != to; i += (uint64_t)step) {
		struct ufo_chunk *c = &obj->chunks[i];

		if ((c->flags & CHUNK_F_READAHEAD) && chunk_is_resident(c)) {
			c->flags &= (uint8_t)~CHUNK_F_READAHEAD;
			STAT_ADD(obj, readahead_used, 1);
			policy_used(obj, c);
		}
	}
}

/* What a fault queues: count chunks from first, step apart. */
struct ra_plan {
	uint64_t first, count;
	int64_t step;
	int stream;
};

/* The chunks of the window ahead of idx not queued yet; moves s->next. */
static void plan_window(const struct ufo_obj *obj, struct ra_stream *s,
			uint64_t idx, struct ra_plan *p)
{
	int64_t t = s->trend, ahead = (int64_t)(s->next - idx);
	/* Steps from idx: the first not queued yet (the scan may have caught
	 * up with loads in progress), and the last that fits the window
	 * and the object. */
	int64_t k0 = ahead / t >= 1 && ahead % t == 0 ? ahead / t : 1;
	int64_t k1 = t > 0 ? (int64_t)(obj->nchunks - 1 - idx) / t
			   : (int64_t)idx / -t;

	if (k1 > (int64_t)s->window)
		k1 = (int64_t)s->window;
	if (k1 < k0)
		return;
	p->first = idx + (uint64_t)(k0 * t);
	p->count = (uint64_t)(k1 - k0 + 1);
	p->step = t;
	s->next = idx + (uint64_t)((k1 + 1) * t);
}

/*
 * obj->lock held.  Adds fault idx to stream s and plans its readahead.  A
 * fault on the trend, within or right at the end of the queued window,
 * counts as one step of the trend (the scan passed the chunks in between
 * without faulting: they were loaded) and doubles the window; a new trend
 * starts at one chunk; a fault off the trend queues nothing, and without
 * a majority the window closes.  SEQUENTIAL advice assumes a forward trend
 * and takes the largest window.
 */
static void stream_advance(struct ufo_obj *obj, struct ra_stream *s,
			   uint64_t idx, bool sequential, struct ra_plan *p)
{
	int64_t steps = trend_steps(obj, s, idx), trend;
	unsigned max = readahead_max(obj);

	if (steps) {
		count_passed(obj, s->last, idx, s->trend);
		push_delta(s, s->trend);
	} else if (idx != s->last) {
		push_delta(s, (int64_t)(idx - s->last));
	}
	s->last = idx;
	trend = majority(s);
	if (!trend && sequential)
		trend = 1;
	if (!trend) {
		s->trend = 0;
		s->window = 0;
		s->next = idx;
		return;
	}
	if (trend != s->trend) {
		s->trend = trend;
		s->window = 0;
		s->next = idx;
	} else if (!steps) {
		return;
	}
	s->window = sequential ? max : s->window ? (s->window * 2 < max ?
				 s->window * 2 : max) : 1;
	plan_window(obj, s, idx, p);
}

/* Called for every demand fault, before the chunk is loaded. */
void readahead_on_fault(struct ufo_obj *obj, uint64_t idx)
{
	int adv = atomic_load_explicit(&obj->advice, memory_order_relaxed);
	struct ra_plan p = { .count = 0 };
	struct ra_stream *s;

	if (adv == UFO_ADV_RANDOM)
		return;
	pthread_mutex_lock(&obj->lock);
	s = stream_for(obj, idx);
	s->stamp = ++obj->ra.clock;
	stream_advance(obj, s, idx, adv == UFO_ADV_SEQUENTIAL, &p);
	p.stream = (int)(s - obj->ra.s);
	pthread_mutex_unlock(&obj->lock);
	if (p.count)
		work_queue(obj, p.first, p.count, p.step, p.stream);
}

void readahead_reset_locked(struct ufo_obj *obj)
{
	memset(&obj->ra, 0, sizeof(obj->ra));
}

/* obj->lock held: whether stream's scan has passed chunk idx (it faulted
 * beyond), which makes loading idx for it pointless. */
static bool stream_passed(const struct ufo_obj *obj, int stream, uint64_t idx)
{
	const struct ra_stream *s = &obj->ra.s[stream];

	if (!s->live || !s->trend)
		return false;
	return s->trend > 0 ? idx < s->last : idx > s->last;
}

/* A readahead load found no room in the budget (the evictor was told to
 * make some): the window's end comes back to it, so that the scan's next
 * fault queues it again instead of leaving it to a demand fault.
 * obj->lock held. */
static void readahead_refused(struct ufo_obj *obj, int stream, uint64_t idx)
{
	struct ra_stream *s = &obj->ra.s[stream];
	int64_t back = (int64_t)(s->next - idx);

	if (s->live && s->trend && back % s->trend == 0 && back / s->trend > 0)
		s->next = idx;
}

/* ---- background work queue. */

static void work_queue(struct ufo_obj *obj, uint64_t first, uint64_t count,
		       int64_t step, int stream)
{
	struct ufo_ctx *ctx = obj->ctx;
	struct work_item *w = malloc(sizeof(*w));
	uint64_t one = 1;

	if (!w)
		return; /* only a hint */
	obj_get(obj);
	*w = (struct work_item){ .obj = obj, .first = first, .left = count,
				 .step = step, .stream = stream,
				 .epoch = atomic_load(&obj->epoch) };
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

void prefetch_queue(struct ufo_obj *obj, uint64_t first, uint64_t last)
{
	work_queue(obj, first, last - first + 1, 1, -1);
}

/* Takes the first chunk of the head item; the rest stays queued at the
 * head so that several handlers load one window in parallel, in order. */
static bool work_take(struct ufo_ctx *ctx, struct ufo_obj **obj,
		      uint64_t *idx, int *stream, uint32_t *epoch)
{
	struct work_item *w;
	uint64_t one = 1;
	bool more = false;

	pthread_mutex_lock(&ctx->work_lock);
	w = ctx->work_head;
	if (w) {
		*obj = w->obj;
		*idx = w->first;
		w->first += (uint64_t)w->step;
		*stream = w->stream;
		*epoch = w->epoch;
		if (!--w->left) {
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

/* Runs one readahead load for stream: skipped when its scan has already
 * passed the chunk (it would only reload an evicted chunk). */
static void readahead_run(struct ufo_obj *obj, int stream, uint64_t idx,
			  uint32_t epoch)
{
	bool passed;

	pthread_mutex_lock(&obj->lock);
	passed = stream_passed(obj, stream, idx);
	pthread_mutex_unlock(&obj->lock);
	if (passed || chunk_fetch_readahead(obj, idx, epoch) != -ENOSPC)
		return;
	pthread_mutex_lock(&obj->lock);
	readahead_refused(obj, stream, idx);
	pthread_mutex_unlock(&obj->lock);
}

void work_run_one(struct ufo_ctx *ctx)
{
	struct ufo_obj *obj = NULL;
	uint64_t idx;
	uint32_t epoch;
	int stream;

	if (!work_take(ctx, &obj, &idx, &stream, &epoch))
		return;
	if (!atomic_load(&ctx->stopping)) {
		if (stream >= 0)
			readahead_run(obj, stream, idx, epoch);
		else
			chunk_fetch(obj, idx, 0, 0, epoch);
	}
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
