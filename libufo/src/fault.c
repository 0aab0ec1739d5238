/* SPDX-License-Identifier: MIT */
/*
 * The fault path: handler threads read userfaultfd messages and resolve them
 * chunk by chunk; background loads (readahead, WILLNEED) run on the same
 * threads when no fault is waiting.
 */
#include <errno.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* Readahead never loads more than this ahead of a sequential scan, nor more
 * than 1/8 of the high watermark. */
#define READAHEAD_MAX_BYTES ((size_t)16 << 20)
#define READAHEAD_MAX_CHUNKS 64

/* ---- staging buffer: one per handler thread, grown on demand.  A handler
 * uses it only for its own fetch; a populate that touches another UFO
 * faults into a different handler thread. */

static __thread void *staging;
static __thread size_t staging_len;

static void *staging_get(size_t len)
{
	void *p;

	if (len <= staging_len)
		return staging;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (staging)
		munmap(staging, staging_len);
	staging = p;
	staging_len = len;
	return p;
}

static void staging_free(void)
{
	if (staging)
		munmap(staging, staging_len);
	staging = NULL;
	staging_len = 0;
}

/* ---- the callback backend: the application's populate and writeback. */

static void retry_sleep(const struct ufo_ctx *ctx, unsigned attempt)
{
	uint64_t ms = (uint64_t)ctx->cfg.retry_delay_ms << (attempt < 10 ? attempt : 10);
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
	struct ufo_ctx *ctx = obj->ctx;

	for (unsigned attempt = 0;; attempt++) {
		uint64_t t0 = now_ns();
		int rc = store ? obj->writeback(obj->user, start, end, buf)
			       : obj->populate(obj->user, start, end, buf);

		if (!store) {
			STAT_ADD(obj, populate_calls, 1);
			STAT_ADD(obj, populate_ns, now_ns() - t0);
		}
		if (!rc)
			return 0;
		rc = callback_rc(rc);
		if (store)
			STAT_ADD(obj, writeback_errors, 1);
		else
			STAT_ADD(obj, populate_errors, 1);
		log_warn(ctx, "object %llu: %s [%llu, %llu) failed (attempt %u of %u): %s",
			 (unsigned long long)obj->id,
			 store ? "writeback" : "populate",
			 (unsigned long long)start, (unsigned long long)end,
			 attempt + 1, ctx->cfg.retries + 1, strerror(-rc));
		if (attempt >= ctx->cfg.retries)
			return rc;
		retry_sleep(ctx, attempt);
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
	/* Without a writeback callback, writes are discarded on drop. */
	return obj->writeback ? cb_call(obj, true, start, end, (void *)src) : 0;
}

const struct ufo_backend_ops callback_backend = {
	.name = "callback",
	.fetch = cb_fetch,
	.store = cb_store,
	.close = NULL,
};

/* ---- installing a chunk. */

/* Copies page by page, leaving pages that are already present alone.  For
 * the rare cases where part of a range may exist (holes, EEXIST). */
static int copy_missing_pages(struct ufo_ctx *ctx, char *dst, const char *src,
			      size_t len, bool wp)
{
	for (size_t off = 0; off < len; off += ctx->page_size) {
		int rc = uffd_copy(ctx->uffd.fd, dst + off, src + off,
				   ctx->page_size, wp);
		if (rc && rc != -EEXIST)
			return rc;
	}
	return 0;
}

static int install(struct ufo_obj *obj, uint64_t idx, const void *buf,
		   size_t len)
{
	struct ufo_ctx *ctx = obj->ctx;
	int rc = uffd_copy(ctx->uffd.fd, chunk_addr(obj, idx), buf, len,
			   obj->wp);

	if (rc == -EEXIST)
		rc = copy_missing_pages(ctx, chunk_addr(obj, idx), buf, len,
					obj->wp);
	return rc;
}

/* Runs backend->fetch into buf with the handler counted busy. */
static int fetch_into(struct ufo_obj *obj, uint64_t idx, void *buf,
		      size_t len)
{
	struct ufo_ctx *ctx = obj->ctx;
	uint64_t start, end;
	size_t bytes;
	int rc;

	chunk_elems(obj, idx, &start, &end);
	bytes = (size_t)(end - start) * obj->elem_size;
	if (atomic_fetch_add(&ctx->busy, 1) + 1 >= atomic_load(&ctx->nthreads))
		watchdog_all_busy(ctx);
	rc = obj->backend->fetch(obj, start, end, buf);
	atomic_fetch_sub(&ctx->busy, 1);
	if (!rc && bytes < len)
		memset((char *)buf + bytes, 0, len - bytes); /* past the end */
	return rc;
}

/* Counts a load (sign +1) before UFFDIO_COPY wakes anyone, so a thread that
 * resumes sees statistics and budget that include its chunk; sign -1 takes
 * it back when the copy fails. */
static void account_load(struct ufo_obj *obj, size_t len, bool prefetch,
			 int sign)
{
	if (sign > 0)
		budget_commit(obj, len);
	else
		budget_uncommit(obj, len);
	STAT_ADD(obj, bytes_loaded, sign * (int64_t)len);
	if (prefetch)
		STAT_ADD(obj, prefetches, sign);
}

static void fetch_done(struct ufo_obj *obj, struct ufo_chunk *c, size_t len,
		       bool prefetch)
{
	pthread_mutex_lock(&obj->lock);
	/* UFFDIO_COPY woke the readers; a writer among them may already have
	 * hit the write protection and been parked while we were FETCHING. */
	if (c->flags & CHUNK_F_WRITE_WAITING) {
		c->flags &= (uint8_t)~(CHUNK_F_WRITE_WAITING | CHUNK_F_WAKE_WAITING);
		chunk_set_state(obj, c, CHUNK_DIRTY);
		STAT_ADD(obj, dirty_bytes, (int64_t)len);
		chunk_unprotect_locked(obj, chunk_index(obj, c));
	} else {
		chunk_set_state(obj, c, CHUNK_CLEAN);
	}
	policy_insert(obj, c);
	pthread_cond_broadcast(&obj->cond);
	pthread_mutex_unlock(&obj->lock);
	/* Loads waiting for budget may be waiting for this chunk to become
	 * evictable. */
	if (atomic_load_explicit(&obj->ctx->budget_waiters, memory_order_relaxed))
		evictor_kick(obj->ctx);
}

static void fetch_failed(struct ufo_obj *obj, struct ufo_chunk *c, size_t len,
			 pid_t tid, int err)
{
	struct ufo_ctx *ctx = obj->ctx;
	uint64_t idx = chunk_index(obj, c);

	budget_release(ctx, len);
	pthread_mutex_lock(&obj->lock);
	c->flags &= (uint8_t)~CHUNK_F_WRITE_WAITING;
	chunk_set_state(obj, c, CHUNK_ABSENT);
	pthread_cond_broadcast(&obj->cond);
	pthread_mutex_unlock(&obj->lock);
	log_err(ctx, "object %llu chunk %llu: load failed: %s%s",
		(unsigned long long)obj->id, (unsigned long long)idx,
		strerror(-err), tid ? "; SIGBUS to the faulting thread" : "");
	/* Signal before waking, so the faulting thread returns to user mode
	 * with SIGBUS pending instead of retrying first.  Any other thread
	 * parked on this chunk refaults and tries a fresh load itself. */
	if (tid) {
		STAT_ADD(obj, sigbus, 1);
		syscall(SYS_tgkill, getpid(), tid, SIGBUS);
	}
	uffd_wake(ctx->uffd.fd, chunk_addr(obj, idx), chunk_len(obj, idx));
}

/*
 * A missing-page fault on a chunk that is resident; obj->lock held, which
 * keeps the evictor from dropping the chunk meanwhile.  Either the message
 * is stale (the chunk was installed, and the thread woken, after the kernel
 * queued it) or the application discarded pages behind our back with
 * madvise.  The pagemap tells which.  A discarded page reads back as zeros,
 * as discarded anonymous memory does; ufo_advise(UFO_ADV_DONTNEED) is the
 * way to drop UFO memory and keep its contents.
 */
static void fault_on_resident(struct ufo_obj *obj, struct ufo_chunk *c,
			      uintptr_t addr)
{
	static const char zero_page[65536] __attribute__((aligned(4096)));
	struct ufo_ctx *ctx = obj->ctx;
	void *page = (void *)(addr & ~(uintptr_t)(ctx->page_size - 1));
	int rc;

	if (page_present(ctx->pagemap_fd, page) == 0 &&
	    ctx->page_size <= sizeof(zero_page)) {
		log_warn(ctx, "object %llu: page %p was discarded outside libufo; it reads as zeros",
			 (unsigned long long)obj->id, page);
		rc = uffd_copy(ctx->uffd.fd, page, zero_page, ctx->page_size,
			       obj->wp && c->state != CHUNK_DIRTY);
		if (rc && rc != -EEXIST)
			log_err(ctx, "refilling a discarded page: %s", strerror(-rc));
	}
	uffd_wake(ctx->uffd.fd, page, ctx->page_size);
}

/* Decides, under obj->lock, what a load request for chunk c does.  Returns
 * true when the caller now owns the load (the chunk went FETCHING).  addr is
 * the faulting address of a demand fault, 0 for a prefetch. */
static bool claim_load(struct ufo_obj *obj, struct ufo_chunk *c, uintptr_t addr,
		       uint32_t epoch)
{
	switch ((enum chunk_state)c->state) {
	case CHUNK_ABSENT:
		/* A background load queued before a reset (or free) started
		 * is dropped: reset promises that nothing stays loaded that
		 * no thread touched since. */
		if (!addr && (obj->dying || epoch != obj->epoch))
			return false;
		return chunk_set_state(obj, c, CHUNK_FETCHING) == 0;
	case CHUNK_FETCHING:
		/* Someone else is loading it.  Its UFFDIO_COPY wakes every
		 * thread parked in the range, including ours: the kernel
		 * queued our thread before rechecking the page under the
		 * same lock the copy takes.  Never load twice. */
		return false;
	case CHUNK_EVICTING:
		/* Being dropped: the evictor wakes the range once it is
		 * ABSENT and our thread's refault loads it again. */
		if (addr)
			c->flags |= CHUNK_F_WAKE_WAITING;
		return false;
	default:
		if (addr)
			fault_on_resident(obj, c, addr);
		return false;
	}
}

int chunk_fetch(struct ufo_obj *obj, uint64_t idx, uintptr_t addr, pid_t tid,
		uint32_t epoch)
{
	struct ufo_chunk *c = &obj->chunks[idx];
	size_t len = chunk_len(obj, idx);
	bool owner, prefetch = !addr;
	void *buf;
	int rc;

	pthread_mutex_lock(&obj->lock);
	owner = claim_load(obj, c, addr, epoch);
	pthread_mutex_unlock(&obj->lock);
	if (!owner)
		return 0;
	rc = budget_reserve(obj->ctx, len, !prefetch);
	if (rc) {
		pthread_mutex_lock(&obj->lock);
		chunk_set_state(obj, c, CHUNK_ABSENT);
		pthread_cond_broadcast(&obj->cond);
		pthread_mutex_unlock(&obj->lock);
		/* A demand fault may have arrived while we held FETCHING. */
		uffd_wake(obj->ctx->uffd.fd, chunk_addr(obj, idx), len);
		return rc;
	}
	buf = staging_get(len);
	rc = buf ? fetch_into(obj, idx, buf, len) : -ENOMEM;
	if (!rc && obj->hashes)
		obj->hashes[idx] = chunk_hash(buf, len);
	if (!rc) {
		account_load(obj, len, prefetch, +1);
		rc = install(obj, idx, buf, len);
		if (rc)
			account_load(obj, len, prefetch, -1);
	}
	if (rc)
		fetch_failed(obj, c, len, prefetch ? 0 : tid, rc);
	else
		fetch_done(obj, c, len, prefetch);
	return rc;
}

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

/* Called for every demand fault.  A fault exactly where the last window
 * ended means a sequential scan: the window doubles; anywhere else it
 * resets.  SEQUENTIAL advice starts at the largest window. */
static void readahead(struct ufo_obj *obj, uint64_t idx)
{
	int adv = atomic_load_explicit(&obj->advice, memory_order_relaxed);
	unsigned w = atomic_load_explicit(&obj->ra_window, memory_order_relaxed);
	uint64_t next = atomic_load_explicit(&obj->ra_next, memory_order_relaxed);
	unsigned max = readahead_max(obj);
	uint64_t first, last;

	atomic_store_explicit(&obj->ra_pos, idx, memory_order_relaxed);
	if (adv == UFO_ADV_RANDOM)
		return;
	if (adv == UFO_ADV_SEQUENTIAL)
		w = max;
	else if (idx == next)
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

static void work_run_one(struct ufo_ctx *ctx)
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
	    !(ra && idx < atomic_load_explicit(&obj->ra_pos, memory_order_relaxed)))
		chunk_fetch(obj, idx, 0, 0, epoch);
	obj_put(obj);
}

static void work_drain(struct ufo_ctx *ctx)
{
	struct work_item *w;

	while ((w = ctx->work_head)) {
		ctx->work_head = w->next;
		obj_put(w->obj);
		free(w);
	}
	ctx->work_tail = NULL;
}

/* ---- message dispatch. */

static void handle_write_fault(struct ufo_obj *obj, uint64_t idx)
{
	struct ufo_chunk *c = &obj->chunks[idx];
	bool wake = false;

	STAT_ADD(obj, wp_faults, 1);
	pthread_mutex_lock(&obj->lock);
	switch ((enum chunk_state)c->state) {
	case CHUNK_CLEAN:
		chunk_set_state(obj, c, CHUNK_DIRTY);
		STAT_ADD(obj, dirty_bytes, (int64_t)chunk_len(obj, idx));
		chunk_unprotect_locked(obj, idx);
		break;
	case CHUNK_DIRTY:
		/* A second writer parked before the first fault was handled:
		 * unprotecting again is harmless and wakes it. */
		chunk_unprotect_locked(obj, idx);
		break;
	case CHUNK_FETCHING:
	case CHUNK_WRITEBACK:
	case CHUNK_EVICTING:
		/* The writer stays parked until the fetch, writeback or
		 * eviction finishes; whoever finishes it acts on the flag. */
		c->flags |= CHUNK_F_WRITE_WAITING | CHUNK_F_WAKE_WAITING;
		break;
	case CHUNK_ABSENT:
	default:
		/* Dropped after the fault was queued: the wake below makes
		 * the writer refault as a missing page. */
		wake = true;
		break;
	}
	pthread_mutex_unlock(&obj->lock);
	if (wake)
		uffd_wake(obj->ctx->uffd.fd, chunk_addr(obj, idx),
			  chunk_len(obj, idx));
}

static void handle_pagefault(struct ufo_ctx *ctx, const struct uffd_msg *msg)
{
	uintptr_t addr = (uintptr_t)msg->arg.pagefault.address;
	uint64_t t0 = now_ns(), idx;
	struct ufo_obj *obj = registry_find(ctx, addr);

	if (!obj || addr < (uintptr_t)obj->body) {
		log_warn(ctx, "fault at %#lx outside any live UFO", (unsigned long)addr);
		if (obj)
			obj_put(obj);
		return;
	}
	idx = (addr - (uintptr_t)obj->body) / obj->chunk_size;
	if (msg->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP) {
		handle_write_fault(obj, idx);
	} else {
		STAT_ADD(obj, faults, 1);
		readahead(obj, idx);
		chunk_fetch(obj, idx, addr, (pid_t)msg->arg.pagefault.feat.ptid, 0);
		stats_record_latency(obj, now_ns() - t0);
	}
	obj_put(obj);
}

/* Returns true when a message was read and handled. */
static bool handle_one_message(struct ufo_ctx *ctx)
{
	struct uffd_msg msg;
	ssize_t n = read(ctx->uffd.fd, &msg, sizeof(msg));

	if (n != (ssize_t)sizeof(msg))
		return false; /* EAGAIN: another handler took it */
	if (msg.event == UFFD_EVENT_PAGEFAULT)
		handle_pagefault(ctx, &msg);
	else
		log_debug(ctx, "ignoring userfaultfd event %u", msg.event);
	return true;
}

static bool take_work_token(struct ufo_ctx *ctx)
{
	uint64_t v;

	return read(ctx->event_fd, &v, sizeof(v)) == sizeof(v);
}

/* Background loads leave one handler free for faults, unless there is only
 * one handler. */
static bool work_allowed(struct ufo_ctx *ctx)
{
	unsigned busy = atomic_load(&ctx->busy);

	return busy == 0 || busy + 1 < atomic_load(&ctx->nthreads);
}

static void *handler_main(void *arg)
{
	struct ufo_ctx *ctx = arg;
	struct pollfd pfd[2] = {
		{ .fd = ctx->uffd.fd, .events = POLLIN },
		{ .fd = ctx->event_fd, .events = POLLIN },
	};

	/* Faults first: a parked application thread waits on each. */
	while (!atomic_load(&ctx->stopping)) {
		bool work_ok;

		if (handle_one_message(ctx))
			continue;
		work_ok = work_allowed(ctx);
		if (work_ok && take_work_token(ctx)) {
			work_run_one(ctx);
			continue;
		}
		/* While background work is held back, watch only the
		 * userfaultfd and look again shortly. */
		if (poll(pfd, work_ok ? 2 : 1, work_ok ? -1 : 5) < 0 &&
		    errno != EINTR)
			log_err(ctx, "poll: %s", strerror(errno));
	}
	staging_free();
	return NULL;
}

int spawn_masked(pthread_t *t, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int rc;

	/* Library threads never take the application's signals. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = -pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

/* thr_lock held. */
static int handler_spawn(struct ufo_ctx *ctx)
{
	unsigned n = atomic_load(&ctx->nthreads);
	int rc;

	if (n >= UFO_MAX_THREADS)
		return -EAGAIN;
	rc = spawn_masked(&ctx->threads[n], handler_main, ctx);
	if (!rc)
		atomic_store(&ctx->nthreads, n + 1);
	return rc;
}

/*
 * Starvation watchdog.  A populate that reads another UFO faults, and that
 * fault needs a free handler; if every handler is inside such a callback
 * nobody is left to serve it.  When all handlers have been busy for
 * STARVED_MS the watchdog starts one more (up to UFO_MAX_THREADS), so nested
 * populates cannot deadlock, while ordinary bursts of faults start nothing.
 */
#define STARVED_MS 10

static bool all_busy(struct ufo_ctx *ctx)
{
	return atomic_load(&ctx->busy) >= atomic_load(&ctx->nthreads);
}

void watchdog_all_busy(struct ufo_ctx *ctx)
{
	pthread_mutex_lock(&ctx->thr_lock);
	pthread_cond_signal(&ctx->watch_cond);
	pthread_mutex_unlock(&ctx->thr_lock);
}

static void *watchdog_main(void *arg)
{
	struct ufo_ctx *ctx = arg;
	struct timespec ts;

	pthread_mutex_lock(&ctx->thr_lock);
	while (!atomic_load(&ctx->stopping)) {
		if (!all_busy(ctx)) {
			pthread_cond_wait(&ctx->watch_cond, &ctx->thr_lock);
			continue;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += STARVED_MS * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&ctx->watch_cond, &ctx->thr_lock, &ts);
		/* Still all busy a while later (not just a burst): grow. */
		if (!atomic_load(&ctx->stopping) && all_busy(ctx) &&
		    handler_spawn(ctx) == 0)
			log_info(ctx, "all fault handlers busy for %d ms: started handler %u",
				 STARVED_MS, atomic_load(&ctx->nthreads));
	}
	pthread_mutex_unlock(&ctx->thr_lock);
	return NULL;
}

int handlers_start(struct ufo_ctx *ctx)
{
	int rc = 0;

	ctx->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE);
	if (ctx->event_fd < 0)
		return -errno;
	pthread_mutex_lock(&ctx->thr_lock);
	for (unsigned i = 0; i < ctx->cfg.threads && !rc; i++)
		rc = handler_spawn(ctx);
	pthread_mutex_unlock(&ctx->thr_lock);
	if (!rc)
		rc = spawn_masked(&ctx->watchdog, watchdog_main, ctx);
	ctx->watchdog_started = rc == 0;
	return rc;
}

void handlers_stop(struct ufo_ctx *ctx)
{
	uint64_t many = UFO_MAX_THREADS * 2;
	unsigned n;

	atomic_store(&ctx->stopping, true);
	if (ctx->event_fd < 0)
		return;
	if (write(ctx->event_fd, &many, sizeof(many)) < 0)
		log_err(ctx, "eventfd write: %s", strerror(errno));
	pthread_mutex_lock(&ctx->thr_lock);
	pthread_cond_signal(&ctx->watch_cond);
	pthread_mutex_unlock(&ctx->thr_lock);
	if (ctx->watchdog_started)
		pthread_join(ctx->watchdog, NULL);
	ctx->watchdog_started = false;
	n = atomic_load(&ctx->nthreads); /* fixed now: the watchdog is gone */
	for (unsigned i = 0; i < n; i++)
		pthread_join(ctx->threads[i], NULL);
	pthread_mutex_lock(&ctx->work_lock);
	work_drain(ctx);
	pthread_mutex_unlock(&ctx->work_lock);
	close(ctx->event_fd);
	ctx->event_fd = -1;
}
