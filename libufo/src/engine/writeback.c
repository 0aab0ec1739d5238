/* SPDX-License-Identifier: MIT */
/*
 * Writing back: one chunk (chunk_store), and several at once for the
 * evictor and sync (parallel_each).
 *
 * A dirty chunk leaves memory only after its writeback returned success:
 *   DIRTY ─► EVICTING, write-protect, store (writers now park in the
 *   kernel), MADV_DONTNEED, ABSENT, wake the parked writers, who refault
 *   and reload the chunk with their write applied after the reload.
 * So a write racing with eviction is never lost (DESIGN invariant 1).  In
 * hash mode there is no write protection and that race is not covered.
 */
#include <errno.h>

#include "engine.h"

/* ---- writing back one chunk. */

/* Contract in engine.h. */
int chunk_store(struct ufo_obj *obj, uint64_t idx, enum chunk_state was)
{
	struct ufo_ctx *ctx = obj->ctx;
	char *addr = chunk_addr(obj, idx);
	size_t len = chunk_len(obj, idx);
	uint64_t start, end, h = 0;
	int rc;

	if (obj->flags & UFO_READ_ONLY)
		return 0;
	if (obj->wp) {
		if (was != CHUNK_DIRTY)
			return 0;
		rc = uffd_write_protect(ctx->uffd.fd, addr, len, true);
		if (rc)
			return rc;
	} else {
		h = chunk_hash(addr, len);
		if (h == obj->hashes[idx])
			return 0;
	}
	chunk_elems(obj, idx, &start, &end);
	rc = obj->backend->store(obj, start, end, addr);
	if (rc)
		return rc;
	if (!obj->wp)
		obj->hashes[idx] = h;
	STAT_ADD(obj, writebacks, 1);
	STAT_ADD(obj, writeback_bytes, (end - start) * obj->elem_size);
	return 0;
}

void chunk_store_failed(struct ufo_obj *obj, struct ufo_chunk *c,
			       enum chunk_state was)
{
	chunk_set_state(obj, c, was);
	c->flags &= (uint8_t)~(CHUNK_F_WRITE_WAITING | CHUNK_F_WAKE_WAITING);
	if (obj->wp && was == CHUNK_DIRTY)
		chunk_unprotect_locked(obj, chunk_index(obj, c));
	policy_insert(obj, c);
	pthread_cond_broadcast(&obj->cond);
}

/* ---- writing back several chunks at once. */

/*
 * A remote store waits for a round trip and the server's flush; several in
 * flight let the server's group commit make them durable with one flush
 * (backend ops.parallel).  Callback backends run the application's
 * writeback, which need not be thread-safe: one at a time.
 */
#define WRITEBACK_WIDTH 8

struct par {
	void (*fn)(void *arg, uint64_t i);
	void *arg;
	uint64_t n;
	_Atomic uint64_t next;
};

static void *par_worker(void *p)
{
	struct par *q = p;
	uint64_t i;

	while ((i = atomic_fetch_add(&q->next, 1)) < q->n)
		q->fn(q->arg, i);
	return NULL;
}

void parallel_each(uint64_t n, unsigned width,
			  void (*fn)(void *arg, uint64_t i), void *arg)
{
	struct par q = { .fn = fn, .arg = arg, .n = n };
	pthread_t t[WRITEBACK_WIDTH];
	unsigned nt = 0;

	while (nt + 1 < width && nt + 1 < WRITEBACK_WIDTH && nt + 1 < n &&
	       !spawn_masked(&t[nt], par_worker, &q))
		nt++;
	par_worker(&q);
	for (unsigned i = 0; i < nt; i++)
		pthread_join(t[i], NULL);
}

unsigned store_width(const struct ufo_obj *obj)
{
	return obj->backend->parallel ? WRITEBACK_WIDTH : 1;
}
