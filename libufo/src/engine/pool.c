/* SPDX-License-Identifier: MIT */
/*
 * The page pool of an object: installs without a copy (UFFDIO_MOVE).
 *
 * Slots of chunk_size bytes in a stretch of the object's mapping after the
 * body, registered with the context's userfaultfd (UFFDIO_MOVE wants both
 * ends registered).  A slot is
 *   EMPTY  holes: it can take the pages of an evicted chunk,
 *   FULL   present pages: a load can receive into it,
 *   BUSY   a load is receiving into it.
 * A load takes a FULL slot when there is one: the answer lands in its pages
 * (TCP: recv straight into them) and UFFDIO_MOVE puts those very pages in
 * the object, leaving the slot EMPTY.  An evicted chunk's pages are moved
 * into an EMPTY slot instead of being dropped (MADV_DONTNEED frees them,
 * and the next load's UFFDIO_COPY allocates, zeroes and fills new ones).
 * Pages thus go round between object and pool: no allocation, zeroing or
 * second copy per load.  Without a FULL slot (at the start, or for a chunk
 * shorter than a slot) a load uses a plain buffer and UFFDIO_COPY.
 *
 * The pool's pages are outside the budget, and bounded: at most
 * POOL_BYTES (and 1/8 of the high watermark) per object.  Nothing but a
 * load touches a slot, and only a FULL one; a fault in the pool all the
 * same (a bug) is answered with a zero page rather than left hanging
 * (fault.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "engine.h"

#define POOL_BYTES ((size_t)32 << 20)
#define POOL_MAX_SLOTS 256

enum { SLOT_EMPTY, SLOT_FULL, SLOT_BUSY };

/* Slots for obj, or 0 when the kernel has no UFFDIO_MOVE or a chunk is
 * too large for one. */
unsigned pool_slots(const struct ufo_ctx *ctx, size_t chunk_size)
{
	size_t bytes = ctx->cfg.high_watermark / 8;
	size_t n;

	if (!ctx->uffd.move)
		return 0;
	if (bytes > POOL_BYTES)
		bytes = POOL_BYTES;
	n = bytes / chunk_size;
	return n > POOL_MAX_SLOTS ? POOL_MAX_SLOTS : (unsigned)n;
}

/* obj->pool.base and nslots are set (the mapping is the object's). */
int pool_init(struct ufo_obj *obj)
{
	struct obj_pool *p = &obj->pool;

	if (!p->nslots)
		return 0;
	p->state = calloc(p->nslots, sizeof(*p->state));
	if (!p->state)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	p->nempty = p->nslots;
	return 0;
}

void pool_fini(struct ufo_obj *obj)
{
	struct obj_pool *p = &obj->pool;

	if (!p->state)
		return;
	pthread_mutex_destroy(&p->lock);
	free(p->state);
	p->state = NULL;
}

static char *slot_addr(const struct ufo_obj *obj, int slot)
{
	return obj->pool.base + (size_t)slot * obj->chunk_size;
}

/* The first slot in state from, moved to state to, or -1. */
static int slot_take(struct ufo_obj *obj, uint8_t from, uint8_t to)
{
	struct obj_pool *p = &obj->pool;
	int slot = -1;

	if (!p->state)
		return -1;
	pthread_mutex_lock(&p->lock);
	if (from == SLOT_FULL ? p->nfull : p->nempty) {
		for (unsigned i = 0; i < p->nslots; i++) {
			if (p->state[i] == from) {
				slot = (int)i;
				break;
			}
		}
	}
	if (slot >= 0) {
		p->state[slot] = to;
		if (from == SLOT_FULL)
			p->nfull--;
		else if (from == SLOT_EMPTY)
			p->nempty--;
		if (to == SLOT_FULL)
			p->nfull++;
		else if (to == SLOT_EMPTY)
			p->nempty++;
	}
	pthread_mutex_unlock(&p->lock);
	return slot;
}

static void slot_set(struct ufo_obj *obj, int slot, uint8_t to)
{
	struct obj_pool *p = &obj->pool;

	pthread_mutex_lock(&p->lock);
	if (p->state[slot] == SLOT_FULL)
		p->nfull--;
	else if (p->state[slot] == SLOT_EMPTY)
		p->nempty--;
	p->state[slot] = to;
	if (to == SLOT_FULL)
		p->nfull++;
	else if (to == SLOT_EMPTY)
		p->nempty++;
	pthread_mutex_unlock(&p->lock);
}

/* A FULL slot for a load of a whole chunk, now BUSY: its address and
 * number, or NULL. */
void *pool_take(struct ufo_obj *obj, size_t len, int *slot)
{
	if (len != obj->chunk_size)
		return NULL;
	*slot = slot_take(obj, SLOT_FULL, SLOT_BUSY);
	return *slot >= 0 ? slot_addr(obj, *slot) : NULL;
}

/* Drops whatever pages slot still has: it is EMPTY again. */
static void slot_clear(struct ufo_obj *obj, int slot)
{
	if (madvise(slot_addr(obj, slot), obj->chunk_size, MADV_DONTNEED))
		log_err(obj->ctx, "madvise(DONTNEED) of a pool slot: %s",
			strerror(errno));
	slot_set(obj, slot, SLOT_EMPTY);
}

/* A load that took a slot is over without a move: the slot is FULL. */
void pool_give_back(struct ufo_obj *obj, int slot)
{
	slot_set(obj, slot, SLOT_FULL);
}

/* Moves the pages of the BUSY slot into chunk idx (missing), waking its
 * waiters if wake: the bytes moved, from the start (all of len unless the
 * kernel would not move a page; the caller copies the rest). */
size_t pool_move_in(struct ufo_obj *obj, uint64_t idx, int slot, size_t len,
		    bool wake)
{
	size_t moved = 0;
	int rc = uffd_move(obj->ctx->uffd.fd, chunk_addr(obj, idx),
			   slot_addr(obj, slot), len, wake, &moved);

	if (rc)
		log_debug(obj->ctx, "object %llu chunk %llu: UFFDIO_MOVE moved %zu of %zu bytes: %s",
			  (unsigned long long)obj->id, (unsigned long long)idx,
			  moved, len, strerror(-rc));
	return moved;
}

/* The load that took slot is over: its pages went into the object (or
 * are dropped now), and the slot is EMPTY. */
void pool_release(struct ufo_obj *obj, int slot)
{
	slot_clear(obj, slot);
}

void *pool_slot_addr(const struct ufo_obj *obj, int slot)
{
	return slot_addr(obj, slot);
}

/*
 * Keeps the pages of chunk idx, being evicted, in an EMPTY slot, which
 * becomes FULL: true when all of them moved.  false leaves the chunk for
 * MADV_DONTNEED (no EMPTY slot, a short chunk, or a page that would not
 * move: one the application discarded, or one shared after a fork).
 */
bool pool_recycle(struct ufo_obj *obj, uint64_t idx)
{
	size_t len = chunk_len(obj, idx), moved = 0;
	int slot, rc;

	if (len != obj->chunk_size)
		return false;
	slot = slot_take(obj, SLOT_EMPTY, SLOT_BUSY);
	if (slot < 0)
		return false;
	rc = uffd_move(obj->ctx->uffd.fd, slot_addr(obj, slot),
		       chunk_addr(obj, idx), len, false, &moved);
	if (rc) {
		/* Some pages may have moved: give them back to the kernel;
		 * the caller drops the rest of the chunk. */
		slot_clear(obj, slot);
		return false;
	}
	slot_set(obj, slot, SLOT_FULL);
	return true;
}
