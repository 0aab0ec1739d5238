/* SPDX-License-Identifier: MIT */
/*
 * Sync: every dirty chunk of a range written back, the chunks staying
 * resident (ufo_sync).  Stores are submitted as the walk finds dirty
 * chunks, up to SYNC_WINDOW in flight.
 */
#include <errno.h>
#include <stdlib.h>

#include "engine.h"

static bool needs_sync(const struct ufo_obj *obj, const struct ufo_chunk *c)
{
	if (obj->flags & UFO_READ_ONLY)
		return false;
	/* Hash and scan modes tell clean from dirty only by looking. */
	return c->state == CHUNK_DIRTY ||
	       ((!obj->wp || obj->scan) && c->state == CHUNK_CLEAN);
}

/* Stores of one sync in flight at most: enough to keep a server's group
 * commit busy, few enough that the chunks held in WRITEBACK stay a small
 * part of the budget. */
#define SYNC_WINDOW 64

struct sync_job {
	pthread_mutex_t lock;
	pthread_cond_t cond;  /* a store is over */
	unsigned inflight;
	int err;              /* the first error */
};

struct sync_store {
	struct chunk_store st;
	struct sync_job *j;
};

/* The chunk's store is over (any thread): it is clean, or dirty again if
 * a write arrived meanwhile, or back to what it was if the store failed. */
static void chunk_sync_end(struct ufo_obj *obj, uint64_t idx,
			   enum chunk_state was, int rc)
{
	struct ufo_chunk *c = &obj->chunks[idx];

	pthread_mutex_lock(&obj->lock);
	if (rc) {
		chunk_set_state(obj, c, was);
		if (obj->wp && was == CHUNK_DIRTY)
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
}

static void sync_job_end(struct sync_job *j, int rc)
{
	pthread_mutex_lock(&j->lock);
	if (rc && !j->err)
		j->err = rc;
	j->inflight--;
	pthread_cond_signal(&j->cond);
	pthread_mutex_unlock(&j->lock);
}

static void sync_store_done(struct chunk_store *st, int err)
{
	struct sync_store *ss = ufo_container_of(st, struct sync_store, st);
	struct sync_job *j = ss->j;

	chunk_sync_end(st->io.obj, st->idx, st->was, err);
	free(ss);
	sync_job_end(j, err);
}

/* Starts the store of chunk idx if it needs one; counted in j->inflight
 * until it is over. */
static void chunk_sync_start(struct ufo_obj *obj, uint64_t idx,
			     struct sync_job *j)
{
	struct ufo_chunk *c = &obj->chunks[idx];
	struct sync_store *ss;
	enum chunk_state was;
	int rc;

	pthread_mutex_lock(&obj->lock);
	chunk_wait_idle(obj, c); /* an eviction may be writing it back now */
	if (!needs_sync(obj, c)) {
		pthread_mutex_unlock(&obj->lock);
		return;
	}
	was = (enum chunk_state)c->state;
	chunk_set_state(obj, c, CHUNK_WRITEBACK);
	pthread_mutex_unlock(&obj->lock);

	pthread_mutex_lock(&j->lock);
	j->inflight++;
	pthread_mutex_unlock(&j->lock);
	ss = malloc(sizeof(*ss));
	rc = ss ? 0 : -ENOMEM;
	if (ss) {
		ss->j = j;
		ss->st.then = sync_store_done;
		rc = chunk_store_start(obj, idx, was, &ss->st);
		if (rc == 1)
			return;
		free(ss);
	}
	chunk_sync_end(obj, idx, was, rc);
	sync_job_end(j, rc);
}

/* Walks [first, last] starting the stores of dirty chunks, up to
 * SYNC_WINDOW in flight, then waits for the last. */
int sync_range(struct ufo_obj *obj, uint64_t first, uint64_t last)
{
	struct sync_job j = { .inflight = 0, .err = 0 };

	pthread_mutex_init(&j.lock, NULL);
	pthread_cond_init(&j.cond, NULL);
	for (uint64_t idx = first; idx <= last; idx++) {
		pthread_mutex_lock(&j.lock);
		while (j.inflight >= SYNC_WINDOW)
			pthread_cond_wait(&j.cond, &j.lock);
		pthread_mutex_unlock(&j.lock);
		chunk_sync_start(obj, idx, &j);
	}
	pthread_mutex_lock(&j.lock);
	while (j.inflight)
		pthread_cond_wait(&j.cond, &j.lock);
	pthread_mutex_unlock(&j.lock);
	pthread_mutex_destroy(&j.lock);
	pthread_cond_destroy(&j.cond);
	return j.err;
}
