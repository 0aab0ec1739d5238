/* SPDX-License-Identifier: MIT */
/*
 * Sync: every dirty chunk of a range written back, the chunks staying
 * resident (ufo_sync).  Up to store_width() chunks at once.
 */
#include <errno.h>

#include "engine.h"

static bool needs_sync(const struct ufo_obj *obj, const struct ufo_chunk *c)
{
	if (obj->flags & UFO_READ_ONLY)
		return false;
	/* Hash mode cannot tell clean from dirty without hashing. */
	return c->state == CHUNK_DIRTY || (!obj->wp && c->state == CHUNK_CLEAN);
}

static int chunk_sync(struct ufo_obj *obj, uint64_t idx)
{
	struct ufo_chunk *c = &obj->chunks[idx];
	enum chunk_state was;
	int rc;

	pthread_mutex_lock(&obj->lock);
	chunk_wait_idle(obj, c); /* an eviction may be writing it back now */
	if (!needs_sync(obj, c)) {
		pthread_mutex_unlock(&obj->lock);
		return 0;
	}
	was = (enum chunk_state)c->state;
	chunk_set_state(obj, c, CHUNK_WRITEBACK);
	pthread_mutex_unlock(&obj->lock);

	rc = chunk_store(obj, idx, was);

	pthread_mutex_lock(&obj->lock);
	if (rc) {
		chunk_set_state(obj, c, was);
		if (obj->wp)
			chunk_unprotect_locked(obj, idx);
	} else if (c->flags & CHUNK_F_WRITE_WAITING) {
		/* A write arrived during the store: it is a new write. */
		chunk_set_state(obj, c, CHUNK_DIRTY);
		chunk_unprotect_locked(obj, idx);
	} else {
		chunk_set_state(obj, c, CHUNK_CLEAN);
		if (was == CHUNK_DIRTY)
			STAT_ADD(obj, dirty_bytes, -(int64_t)chunk_len(obj, idx));
	}
	c->flags &= (uint8_t)~(CHUNK_F_WRITE_WAITING | CHUNK_F_WAKE_WAITING);
	pthread_cond_broadcast(&obj->cond);
	pthread_mutex_unlock(&obj->lock);
	return rc;
}

struct sync_job {
	struct ufo_obj *obj;
	uint64_t first;
	_Atomic int err; /* the first error */
};

static void sync_one(void *arg, uint64_t i)
{
	struct sync_job *j = arg;
	int rc = chunk_sync(j->obj, j->first + i), none = 0;

	if (rc)
		atomic_compare_exchange_strong(&j->err, &none, rc);
}

int sync_range(struct ufo_obj *obj, uint64_t first, uint64_t last)
{
	struct sync_job j = { .obj = obj, .first = first };

	parallel_each(last - first + 1, store_width(obj), sync_one, &j);
	return atomic_load(&j.err);
}
