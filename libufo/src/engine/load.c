/* SPDX-License-Identifier: MIT */
/*
 * Loading a chunk: claim it, reserve budget and submit its fetch to the
 * backend, on the handler thread; when the fetch completes (on whichever
 * thread learns it: the client's reader for a remote object), install it
 * with UFFDIO_COPY and wake the waiters.  A handler never waits for a
 * remote fetch.
 */
#include <errno.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine.h"

/* ---- load buffers.  An io fetches into its own buffer (page aligned, as
 * UFFDIO_COPY wants), taken from the context's cache of a few and given
 * back once the chunk is installed.  The cache holds at most
 * UFO_LOAD_BUFS buffers; others are unmapped. */

void *load_buf_get(struct ufo_ctx *ctx, size_t len)
{
	void *p = NULL;

	pthread_mutex_lock(&ctx->buf_lock);
	for (unsigned i = 0; i < ctx->nbufs; i++) {
		if (ctx->bufs[i].len == len) {
			p = ctx->bufs[i].p;
			ctx->bufs[i] = ctx->bufs[--ctx->nbufs];
			break;
		}
	}
	pthread_mutex_unlock(&ctx->buf_lock);
	if (p)
		return p;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void load_buf_put(struct ufo_ctx *ctx, void *p, size_t len)
{
	pthread_mutex_lock(&ctx->buf_lock);
	if (ctx->nbufs < UFO_LOAD_BUFS) {
		ctx->bufs[ctx->nbufs++] = (struct load_buf){ p, len };
		p = NULL;
	}
	pthread_mutex_unlock(&ctx->buf_lock);
	if (p)
		munmap(p, len);
}

void load_bufs_free(struct ufo_ctx *ctx)
{
	while (ctx->nbufs) {
		ctx->nbufs--;
		munmap(ctx->bufs[ctx->nbufs].p, ctx->bufs[ctx->nbufs].len);
	}
}

/* ---- installing a chunk. */

/* Copies page by page, leaving pages that are already present alone.  For
 * the rare cases where part of a range may exist (holes, EEXIST). */
static int copy_missing_pages(struct ufo_obj *obj, char *dst, const char *src,
			      size_t len, bool wp)
{
	for (size_t off = 0; off < len; off += obj->page) {
		int rc = uffd_copy(obj->ctx->uffd.fd, dst + off, src + off,
				   obj->page, wp);
		if (rc && rc != -EEXIST)
			return rc;
	}
	return 0;
}

/* Copies len bytes from buf to dst in the object, write-protected in WP
 * mode, waking the waiters. */
static int install_copy(struct ufo_obj *obj, char *dst, const void *buf,
			size_t len)
{
	struct ufo_ctx *ctx = obj->ctx;
	int rc = uffd_copy(ctx->uffd.fd, dst, buf, len, obj->wp);

	if (rc == -EEXIST)
		rc = copy_missing_pages(obj, dst, buf, len, obj->wp);
	return rc;
}

/*
 * Installs chunk idx from a pool slot by moving its pages (no copy); what
 * the kernel would not move is copied.  In WP mode the moved pages are
 * write-protected before anyone is woken (UFFDIO_MOVE has no WP mode): a
 * writer woken first would write without a fault, and the write would be
 * missed by the dirty tracking and lost at eviction.  Returns 0 or -errno
 * and counts the bytes moved and copied.
 */
static int install_moved(struct ufo_obj *obj, uint64_t idx, int slot,
			 size_t len)
{
	struct ufo_ctx *ctx = obj->ctx;
	char *dst = chunk_addr(obj, idx), *src = pool_slot_addr(obj, slot);
	size_t moved = pool_move_in(obj, idx, slot, len, !obj->wp);
	int rc = 0;

	if (obj->wp && moved)
		rc = uffd_write_protect(ctx->uffd.fd, dst, moved, true);
	if (!rc && moved < len)
		rc = install_copy(obj, dst + moved, src + moved, len - moved);
	if (obj->wp && moved)
		uffd_wake(ctx->uffd.fd, dst, moved);
	pool_release(obj, slot);
	if (moved < len) { /* counted as moved (account_load) */
		STAT_ADD(obj, bytes_moved, -(int64_t)(len - moved));
		STAT_ADD(obj, bytes_copied, len - moved);
	}
	return rc;
}

/* Installs chunk idx from buf (a plain buffer, slot -1, or a pool slot). */
static int install(struct ufo_obj *obj, uint64_t idx, const void *buf,
		   size_t len, int slot)
{
	if (slot >= 0)
		return install_moved(obj, idx, slot, len);
	return install_copy(obj, chunk_addr(obj, idx), buf, len);
}

/* How a chunk is installed, for the statistics. */
enum install_how { HOW_COPY, HOW_MOVE, HOW_HOLE };

/* Counts a load (sign +1) before the install wakes anyone, so a thread
 * that resumes sees statistics and budget that include its chunk; sign -1
 * takes it back when the install fails.  A move that falls back to a copy
 * for part of the chunk corrects the split afterwards (install_moved). */
static void account_load(struct ufo_obj *obj, size_t len, bool prefetch,
			 enum install_how how, int sign)
{
	int64_t n = sign * (int64_t)len;

	if (sign > 0)
		budget_commit(obj, len);
	else
		budget_uncommit(obj, len);
	STAT_ADD(obj, bytes_loaded, n);
	if (prefetch)
		STAT_ADD(obj, prefetches, sign);
	if (how == HOW_HOLE)
		STAT_ADD(obj, bytes_holes, n);
	else if (how == HOW_MOVE)
		STAT_ADD(obj, bytes_moved, n);
	else
		STAT_ADD(obj, bytes_copied, n);
}

/* obj->lock held: readahead's accuracy counts for a landed load.  A
 * readahead chunk a fault waited for is used now; any other waits for its
 * stream to pass it (readahead.c). */
static void count_readahead(struct ufo_obj *obj, struct ufo_chunk *c,
			    bool readahead)
{
	bool demanded = c->flags & CHUNK_F_DEMANDED;

	c->flags &= (uint8_t)~(CHUNK_F_DEMANDED | CHUNK_F_READAHEAD);
	if (!readahead)
		return;
	STAT_ADD(obj, readahead_chunks, 1);
	if (demanded) {
		STAT_ADD(obj, readahead_used, 1);
		STAT_ADD(obj, readahead_late, 1);
	} else {
		c->flags |= CHUNK_F_READAHEAD;
	}
}

static void fetch_done(struct ufo_obj *obj, struct ufo_chunk *c, size_t len,
		       bool readahead)
{
	pthread_mutex_lock(&obj->lock);
	count_readahead(obj, c, readahead);
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
	struct ufo_ctx *ctx = obj->ctx;
	void *page = (void *)(addr & ~(uintptr_t)(obj->page - 1));
	int rc;

	if (page_present(ctx->pagemap_fd, page) == 0) {
		log_warn(ctx, "object %llu: page %p was discarded outside libufo; it reads as zeros",
			 (unsigned long long)obj->id, page);
		rc = uffd_zero_page(ctx->uffd.fd, page, obj->page,
				    obj->wp && c->state != CHUNK_DIRTY);
		if (rc && rc != -EEXIST)
			log_err(ctx, "refilling a discarded page: %s", strerror(-rc));
	}
	uffd_wake(ctx->uffd.fd, page, obj->page);
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
		 * same lock the copy takes.  Never load twice.  If that is
		 * readahead, it was used, late (fetch_done counts it). */
		if (addr)
			c->flags |= CHUNK_F_DEMANDED;
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

/* A load in flight: the io, and who gets SIGBUS if it fails. */
struct load {
	struct ufo_io io;
	uint64_t idx;
	pid_t tid;      /* the faulting thread; 0 for a background load */
	bool prefetch;
	bool readahead; /* a prefetch readahead asked for */
	int slot;       /* the pool slot io->buf is, or -1: a plain buffer */
};

/*
 * A hole: the backend holds no data for the chunk, and sent none.  A
 * read-only or hash-mode chunk gets the shared zero page (no memory until
 * a write copies it; hash mode then sees the write at eviction).  A
 * write-protected chunk cannot: a write to the zero page is a copy on
 * write that userfaultfd does not report, so the write would be missed;
 * load_done copies zeros for it, protected (nothing crossed the network
 * all the same).  Huge pages have no zero page (UFFDIO_ZEROPAGE refuses
 * hugetlb memory): zeros are copied.
 */
static int install_hole(struct ufo_obj *obj, struct load *ld, size_t len)
{
	int rc;

	if (ld->slot >= 0)
		pool_give_back(obj, ld->slot); /* its pages are still full */
	if (obj->hashes) {
		memset(ld->io.buf, 0, len);
		obj->hashes[ld->idx] = chunk_hash(ld->io.buf, len);
	}
	if (obj->flags & UFO_HUGE) {
		memset(ld->io.buf, 0, len);
		return install_copy(obj, chunk_addr(obj, ld->idx), ld->io.buf,
				    len);
	}
	rc = uffd_zero_range(obj->ctx->uffd.fd, chunk_addr(obj, ld->idx), len,
			     obj->ctx->page_size);
	return rc;
}


/* The io of a load completed (any thread: the client's reader, or the
 * handler that submitted it): install the chunk, or fail it. */
static void load_done(struct ufo_io *io, int err)
{
	struct load *ld = ufo_container_of(io, struct load, io);
	struct ufo_obj *obj = io->obj;
	size_t len = chunk_len(obj, ld->idx);

	if (!err && io->hole && !obj->wp) {
		account_load(obj, len, ld->prefetch, HOW_HOLE, +1);
		err = install_hole(obj, ld, len);
		if (err)
			account_load(obj, len, ld->prefetch, HOW_HOLE, -1);
		goto done;
	}
	if (!err && io->hole) /* write-protected: see install_hole */
		memset(io->buf, 0, len);
	if (!err && io->len < len) /* past the end of the object */
		memset((char *)io->buf + io->len, 0, len - io->len);
	if (!err && obj->hashes)
		obj->hashes[ld->idx] = chunk_hash(io->buf, len);
	if (!err) {
		enum install_how how = io->hole ? HOW_HOLE
				       : ld->slot >= 0 ? HOW_MOVE : HOW_COPY;

		account_load(obj, len, ld->prefetch, how, +1);
		err = install(obj, ld->idx, io->buf, len, ld->slot);
		if (err)
			account_load(obj, len, ld->prefetch, how, -1);
	} else if (ld->slot >= 0) {
		pool_give_back(obj, ld->slot);
	}
done:
	if (err)
		fetch_failed(obj, &obj->chunks[ld->idx], len, ld->tid, err);
	else
		fetch_done(obj, &obj->chunks[ld->idx], len, ld->readahead);
	if (ld->slot < 0)
		load_buf_put(obj->ctx, io->buf, len);
	free(ld);
	obj_put(obj);
}

/* Gives a claimed chunk back (ABSENT) when its load cannot start. */
static void load_abandon(struct ufo_obj *obj, uint64_t idx, size_t len)
{
	struct ufo_chunk *c = &obj->chunks[idx];

	pthread_mutex_lock(&obj->lock);
	chunk_set_state(obj, c, CHUNK_ABSENT);
	pthread_cond_broadcast(&obj->cond);
	pthread_mutex_unlock(&obj->lock);
	/* A demand fault may have arrived while we held FETCHING. */
	uffd_wake(obj->ctx->uffd.fd, chunk_addr(obj, idx), len);
}

/* Starts the load of a claimed chunk whose budget is reserved: its own
 * buffer and io, and a reference on obj until load_done. */
static void load_start(struct ufo_obj *obj, uint64_t idx, pid_t tid,
		       bool prefetch, bool readahead)
{
	size_t len = chunk_len(obj, idx);
	struct load *ld = calloc(1, sizeof(*ld));
	int slot = -1;
	void *buf = ld ? pool_take(obj, len, &slot) : NULL;

	if (ld && !buf)
		buf = load_buf_get(obj->ctx, len);
	if (!buf) {
		free(ld);
		fetch_failed(obj, &obj->chunks[idx], len, tid, -ENOMEM);
		return;
	}
	*ld = (struct load){ .idx = idx, .tid = tid, .prefetch = prefetch,
			     .readahead = readahead, .slot = slot };
	ld->io.obj = obj;
	ld->io.store = false;
	chunk_elems(obj, idx, &ld->io.start, &ld->io.end);
	ld->io.len = (size_t)(ld->io.end - ld->io.start) * obj->elem_size;
	ld->io.buf = buf;
	ld->io.done = load_done;
	obj_get(obj);
	io_submit(&ld->io);
}

static int fetch(struct ufo_obj *obj, uint64_t idx, uintptr_t addr,
		 pid_t tid, uint32_t epoch, bool readahead)
{
	struct ufo_chunk *c = &obj->chunks[idx];
	size_t len = chunk_len(obj, idx);
	bool owner, prefetch = !addr;
	int rc;

	pthread_mutex_lock(&obj->lock);
	owner = claim_load(obj, c, addr, epoch);
	pthread_mutex_unlock(&obj->lock);
	if (!owner)
		return 0;
	rc = budget_reserve(obj->ctx, len, !prefetch, obj->backend->blocking);
	if (rc) {
		load_abandon(obj, idx, len);
		return rc;
	}
	load_start(obj, idx, prefetch ? 0 : tid, prefetch, readahead);
	return 0;
}

int chunk_fetch(struct ufo_obj *obj, uint64_t idx, uintptr_t addr, pid_t tid,
		uint32_t epoch)
{
	return fetch(obj, idx, addr, tid, epoch, false);
}

int chunk_fetch_readahead(struct ufo_obj *obj, uint64_t idx, uint32_t epoch)
{
	return fetch(obj, idx, 0, 0, epoch, true);
}
