/* SPDX-License-Identifier: MIT */
/*
 * Loading a chunk: claim it, reserve budget, fetch it from the backend into
 * a staging buffer, install it with UFFDIO_COPY and wake the waiters.  Runs
 * on handler threads, for demand faults and background loads alike.
 */
#include <errno.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine.h"

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

void load_thread_exit(void)
{
	if (staging)
		munmap(staging, staging_len);
	staging = NULL;
	staging_len = 0;
}

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
	busy_enter(ctx);
	rc = obj->backend->fetch(obj, start, end, buf);
	busy_exit(ctx);
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
