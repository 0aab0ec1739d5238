/* SPDX-License-Identifier: MIT */
/*
 * Writing back one chunk: write-protect it (or hash it), submit its store,
 * and on success count it.  The evictor and sync start many at once and
 * wait for them (evict.c, sync.c).
 *
 * A dirty chunk leaves memory only after its writeback returned success:
 *   DIRTY ─► EVICTING, write-protect, store (writers now park in the
 *   kernel), MADV_DONTNEED, ABSENT, wake the parked writers, who refault
 *   and reload the chunk with their write applied after the reload.
 * So a write racing with eviction is never lost (DESIGN invariant 1).  In
 * hash mode there is no write protection and that race is not covered.
 * Scan mode finds the written pages and keeps that promise its own way
 * (scan.c).
 */
#include <errno.h>

#include "engine.h"

/* ---- writing back one chunk. */

static void store_done(struct ufo_io *io, int err)
{
	struct chunk_store *st = ufo_container_of(io, struct chunk_store, io);
	struct ufo_obj *obj = io->obj;

	if (!err) {
		size_t sent = io->nranges ? 0 : io->len;

		for (unsigned i = 0; i < io->nranges; i++)
			sent += io->ranges[i].len;
		if (obj->hashes)
			obj->hashes[st->idx] = st->hash;
		STAT_ADD(obj, writebacks, 1);
		STAT_ADD(obj, writeback_bytes, sent);
		STAT_ADD(obj, writeback_chunk_bytes, io->len);
	}
	if (obj->scan)
		scan_store_finish(obj, st, err);
	st->then(st, err);
}

/* Contract in engine.h. */
int chunk_store_start(struct ufo_obj *obj, uint64_t idx,
		      enum chunk_state was, struct chunk_store *st)
{
	struct ufo_ctx *ctx = obj->ctx;
	char *addr = chunk_addr(obj, idx);
	size_t len = chunk_len(obj, idx);
	uint64_t h = 0;
	int rc;

	if (obj->flags & UFO_READ_ONLY)
		return 0;
	st->idx = idx;
	st->was = was;
	st->hash = 0;
	st->io = (struct ufo_io){ .obj = obj, .store = true, .buf = addr,
				  .done = store_done };
	chunk_elems(obj, idx, &st->io.start, &st->io.end);
	st->io.len = (size_t)(st->io.end - st->io.start) * obj->elem_size;
	if (obj->scan) {
		rc = scan_store_prepare(obj, idx,
					obj->chunks[idx].state == CHUNK_EVICTING,
					st);
		if (rc == 1)
			io_submit(&st->io);
		return rc;
	}
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
	st->hash = h;
	io_submit(&st->io);
	return 1;
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
