/* SPDX-License-Identifier: MIT */
/*
 * Scan mode (UFO_DIRTY_SCAN): the body is registered for asynchronous
 * write-protect (UFFD_FEATURE_WP_ASYNC) and installed write-protected, so a
 * write costs no fault: the kernel lifts the protection of the page itself
 * and the page reads as "written" in PAGEMAP_SCAN until protected again.
 * Chunks stay CLEAN; a store asks which pages were written and sends only
 * those, coalesced into ranges of whole elements.
 *
 * Sync (the chunk WRITEBACK, writers going on): one scan that reports and
 * re-protects the written pages atomically (uffd_scan_written), then a
 * copy of those pages into a buffer that the store sends.  A write that
 * lands after the scan leaves its page written, and the next sync or
 * eviction sends it: nothing is lost although writers never wait.  (A
 * scan that read first and protected afterwards would lose a write to an
 * unreported page made in between: t_dirty_scan's stress test catches
 * that variant, UFO_SCAN_UNSAFE_SPLIT=1.)
 *
 * Eviction (the chunk EVICTING) must also drop the memory, and a write may
 * land between any scan and MADV_DONTNEED without a fault to stop it.  So
 * the pages are first moved out of the object in one step,
 * mremap(MREMAP_DONTUNMAP): a writer after that finds the page missing,
 * faults and waits for the reload, and the moved copy is final.  Which of
 * its pages to send?  mremap does not keep the written state (Linux 6.13+
 * clears it), so it is established before the move:
 *   1. scan and re-protect: W1, written since the last store;
 *   2. hash every page not in W1 (the snapshot);
 *   3. scan and re-protect again: W2, written since step 1 (this covers
 *      writes made while the snapshot was taken);
 *   4. move the pages out;
 *   5. a page in neither W1 nor W2 was not written between 1 and 3, so its
 *      snapshot is of what the backend holds; if the moved copy hashes
 *      differently, it was written between 3 and 4.
 * The store sends W1, W2 and the pages of 5 from the moved copy.  A page
 * rewritten with identical bytes in the last window is not sent, and
 * needs not be.  A 64-bit hash (XXH3) stands for the page: a write in
 * that window of microseconds is missed only if it leaves the page with
 * the same hash, which random content does once in 2^64.  A copy and a
 * compare would be exact, and cost 4x the memory traffic of two reads
 * (bench-seqscan reads clean chunks through this path).  Cost: two hashes
 * of the unwritten pages and a move per evicted chunk.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "engine.h"

static size_t chunk_pages(const struct ufo_obj *obj, uint64_t idx)
{
	return chunk_len(obj, idx) / obj->ctx->page_size;
}

/* Test hook: scan, then protect the whole chunk in a second call, as a
 * non-atomic implementation would (see the top of this file). */
static bool unsafe_split(void)
{
	static _Atomic int v = -1;
	int got = atomic_load_explicit(&v, memory_order_relaxed);

	if (got < 0) {
		got = getenv("UFO_SCAN_UNSAFE_SPLIT") != NULL;
		atomic_store_explicit(&v, got, memory_order_relaxed);
	}
	return got;
}

static int scan_pages(struct ufo_obj *obj, char *addr, size_t len,
		      uint64_t *bits)
{
	struct ufo_ctx *ctx = obj->ctx;
	int rc;

	if (!unsafe_split())
		return uffd_scan_written(ctx->pagemap_fd, addr, len,
					 ctx->page_size, true, bits);
	rc = uffd_scan_written(ctx->pagemap_fd, addr, len, ctx->page_size,
			       false, bits);
	return rc ? rc : uffd_write_protect(ctx->uffd.fd, addr, len, true);
}

/* Calls fn(obj, base, first, n) for each run of n set bits from first. */
static void for_each_run(struct ufo_obj *obj, const uint64_t *bits,
			 size_t npages, char *base,
			 void (*fn)(struct ufo_obj *, char *, size_t, size_t))
{
	for (size_t i = 0; i < npages;) {
		size_t j = i;

		if (!bits_test(bits, i)) {
			i++;
			continue;
		}
		while (j < npages && bits_test(bits, j))
			j++;
		fn(obj, base, i, j - i);
		i = j;
	}
}

/* Lifting the protection of a page marks it written (WP_ASYNC). */
static void mark_run_written(struct ufo_obj *obj, char *base, size_t first,
			     size_t n)
{
	size_t ps = obj->ctx->page_size;
	int rc = uffd_write_protect(obj->ctx->uffd.fd, base + first * ps,
				    n * ps, false);

	if (rc)
		log_err(obj->ctx, "object %llu: marking pages written again: %s",
			(unsigned long long)obj->id, strerror(-rc));
}

/* The written pages as ranges of whole elements within the io's bytes,
 * widened and merged: a page boundary may cut an element. */
static unsigned build_ranges(struct ufo_obj *obj, struct chunk_store *st,
			     size_t npages)
{
	size_t ps = obj->ctx->page_size, es = obj->elem_size;
	unsigned n = 0;

	for (size_t i = 0; i < npages;) {
		size_t j = i, lo, hi;

		if (!bits_test(st->written, i)) {
			i++;
			continue;
		}
		while (j < npages && bits_test(st->written, j))
			j++;
		lo = i * ps / es * es;
		hi = (j * ps + es - 1) / es * es;
		if (hi > st->io.len)
			hi = st->io.len;
		i = j;
		if (lo >= hi)
			continue; /* the page padding after the last element */
		if (n && lo <= st->ranges[n - 1].off + st->ranges[n - 1].len)
			st->ranges[n - 1].len = hi - st->ranges[n - 1].off;
		else
			st->ranges[n++] = (struct ufo_range){ lo, hi - lo };
	}
	return n;
}

/* Eviction steps 1-3 (top of file): W1 | W2 in st->written, the hashes
 * of the other pages in snap. */
static int evict_scan(struct ufo_obj *obj, char *addr, size_t npages,
		      uint64_t *written, uint64_t *snap)
{
	size_t ps = obj->ctx->page_size;
	int rc = scan_pages(obj, addr, npages * ps, written);

	if (rc)
		return rc;
	for (size_t i = 0; i < npages; i++)
		if (!bits_test(written, i))
			snap[i] = chunk_hash(addr + i * ps, ps);
	return scan_pages(obj, addr, npages * ps, written);
}

/* Eviction steps 4-5: moves the pages out; adds those changed since the
 * snapshot to written. */
static int evict_detach(struct ufo_obj *obj, char *addr, size_t npages,
			uint64_t *written, const uint64_t *snap, char **out)
{
	size_t ps = obj->ctx->page_size, len = npages * ps;
	char *d = mremap(addr, len, len, MREMAP_MAYMOVE | MREMAP_DONTUNMAP,
			 NULL);

	if (d == MAP_FAILED)
		return -errno;
	for (size_t i = 0; i < npages; i++)
		if (!bits_test(written, i) && chunk_hash(d + i * ps, ps) != snap[i])
			bits_set(written, i);
	*out = d;
	return 0;
}

static int prepare_evict(struct ufo_obj *obj, uint64_t idx,
			 struct chunk_store *st)
{
	size_t npages = chunk_pages(obj, idx);
	char *addr = chunk_addr(obj, idx);
	uint64_t *snap = malloc(npages * sizeof(*snap));
	int rc;

	if (!snap)
		return -ENOMEM;
	rc = evict_scan(obj, addr, npages, st->written, snap);
	if (!rc)
		rc = evict_detach(obj, addr, npages, st->written, snap,
				  &st->detached);
	free(snap);
	if (rc)
		for_each_run(obj, st->written, npages, addr, mark_run_written);
	st->io.buf = st->detached;
	return rc;
}

static void copy_range(struct chunk_store *st, const char *addr,
		       const struct ufo_range *r)
{
	memcpy((char *)st->bounce + r->off, addr + r->off, r->len);
}

/* Sync: one atomic scan, then the written ranges copied to a buffer. */
static int prepare_sync(struct ufo_obj *obj, uint64_t idx,
			struct chunk_store *st)
{
	size_t len = chunk_len(obj, idx);
	char *addr = chunk_addr(obj, idx);
	int rc = scan_pages(obj, addr, len, st->written);

	if (rc)
		return rc;
	st->bounce = load_buf_get(obj->ctx, len);
	if (!st->bounce) {
		for_each_run(obj, st->written, chunk_pages(obj, idx), addr,
			     mark_run_written);
		return -ENOMEM;
	}
	st->io.buf = st->bounce;
	return 0;
}

static void release(struct ufo_obj *obj, struct chunk_store *st)
{
	size_t len = chunk_len(obj, st->idx);

	if (st->detached)
		munmap(st->detached, len);
	if (st->bounce)
		load_buf_put(obj->ctx, st->bounce, len);
	free(st->written);
	free(st->ranges);
	st->detached = NULL;
	st->bounce = NULL;
	st->written = NULL;
	st->ranges = NULL;
}

/* Fills the io's ranges from st->written (whole io for a backend without
 * partial stores) and, for a sync, copies them.  0 when nothing was
 * written. */
static unsigned fill_ranges(struct ufo_obj *obj, struct chunk_store *st)
{
	const char *addr = chunk_addr(obj, st->idx);
	unsigned n = build_ranges(obj, st, chunk_pages(obj, st->idx));

	if (!n)
		return 0;
	if (!obj->backend->partial_stores) {
		st->ranges[0] = (struct ufo_range){ 0, st->io.len };
		n = 1;
	}
	if (st->bounce)
		for (unsigned i = 0; i < n; i++)
			copy_range(st, addr, &st->ranges[i]);
	st->io.ranges = st->ranges;
	st->io.nranges = obj->backend->partial_stores ? n : 0;
	return n;
}

/* Contract in engine.h. */
int scan_store_prepare(struct ufo_obj *obj, uint64_t idx, bool evicting,
		       struct chunk_store *st)
{
	size_t npages = chunk_pages(obj, idx);
	int rc;

	st->idx = idx;
	st->detached = NULL;
	st->bounce = NULL;
	st->written = calloc((npages + 63) / 64, sizeof(uint64_t));
	st->ranges = calloc(npages / 2 + 1, sizeof(*st->ranges));
	if (!st->written || !st->ranges) {
		release(obj, st);
		return -ENOMEM;
	}
	rc = evicting ? prepare_evict(obj, idx, st) : prepare_sync(obj, idx, st);
	if (!rc && fill_ranges(obj, st))
		return 1;
	release(obj, st);
	return rc;
}

/* A failed eviction's pages go back in, protected, and the unsaved ones
 * are marked written; the copy wakes writers parked meanwhile. */
static void put_back(struct ufo_obj *obj, struct chunk_store *st)
{
	struct ufo_ctx *ctx = obj->ctx;
	char *addr = chunk_addr(obj, st->idx);
	int rc = uffd_copy(ctx->uffd.fd, addr, st->detached,
			   chunk_len(obj, st->idx), true);

	if (rc)
		log_err(ctx, "object %llu chunk %llu: putting back pages after a failed writeback: %s",
			(unsigned long long)obj->id,
			(unsigned long long)st->idx, strerror(-rc));
}

void scan_store_finish(struct ufo_obj *obj, struct chunk_store *st, int err)
{
	if (err) {
		if (st->detached)
			put_back(obj, st);
		for_each_run(obj, st->written, chunk_pages(obj, st->idx),
			     chunk_addr(obj, st->idx), mark_run_written);
	}
	release(obj, st);
}
