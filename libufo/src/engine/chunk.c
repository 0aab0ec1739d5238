/* SPDX-License-Identifier: MIT */
/* The chunk state machine: the one table of legal transitions. */
#include <errno.h>
#include <string.h>

#include <xxhash.h>

#include "engine.h"

static const char *const state_names[CHUNK_NSTATES] = {
	[CHUNK_ABSENT] = "ABSENT",       [CHUNK_FETCHING] = "FETCHING",
	[CHUNK_CLEAN] = "CLEAN",         [CHUNK_DIRTY] = "DIRTY",
	[CHUNK_WRITEBACK] = "WRITEBACK", [CHUNK_EVICTING] = "EVICTING",
};

#define BIT(s) (1u << (s))

/* allowed[from] is the set of states `from` may move to. */
static const unsigned allowed[CHUNK_NSTATES] = {
	[CHUNK_ABSENT] = BIT(CHUNK_FETCHING),
	/* fetched (clean, or dirty when a write was waiting), or failed */
	[CHUNK_FETCHING] = BIT(CHUNK_CLEAN) | BIT(CHUNK_DIRTY) |
			   BIT(CHUNK_ABSENT),
	/* WRITEBACK from CLEAN: hash and scan modes, where writes leave no
	 * trace in the chunk's state */
	[CHUNK_CLEAN] = BIT(CHUNK_DIRTY) | BIT(CHUNK_EVICTING) |
			BIT(CHUNK_WRITEBACK),
	[CHUNK_DIRTY] = BIT(CHUNK_WRITEBACK) | BIT(CHUNK_EVICTING),
	/* written back (clean, or dirty again for a waiting writer), or the
	 * writeback failed (dirty) */
	[CHUNK_WRITEBACK] = BIT(CHUNK_CLEAN) | BIT(CHUNK_DIRTY),
	/* dropped, or the writeback failed and the chunk stays */
	[CHUNK_EVICTING] = BIT(CHUNK_ABSENT) | BIT(CHUNK_DIRTY) |
			   BIT(CHUNK_CLEAN),
};

const char *chunk_state_name(enum chunk_state s)
{
	return s < CHUNK_NSTATES ? state_names[s] : "?";
}

int chunk_set_state(struct ufo_obj *obj, struct ufo_chunk *c,
		    enum chunk_state next)
{
	if (!(allowed[c->state] & BIT(next))) {
		log_err(obj->ctx, "object %llu chunk %llu: illegal transition %s -> %s",
			(unsigned long long)obj->id,
			(unsigned long long)chunk_index(obj, c),
			chunk_state_name(c->state), chunk_state_name(next));
		return -EINVAL;
	}
	c->state = (uint8_t)next;
	return 0;
}

void chunk_wait_idle(struct ufo_obj *obj, struct ufo_chunk *c)
{
	while (c->state == CHUNK_FETCHING || c->state == CHUNK_WRITEBACK ||
	       c->state == CHUNK_EVICTING)
		pthread_cond_wait(&obj->cond, &obj->lock);
}

/*
 * Write protection is removed only here, under obj->lock, with the chunk
 * DIRTY.  Done after unlocking, it could land after the evictor moved the
 * chunk to EVICTING and protected it: the woken writer would then write into
 * memory that is about to be dropped, and the write would be lost (the race
 * tests/t_model.c caught).  The evictor protects after its own transition,
 * so protection it sets is never undone behind its back.
 */
void chunk_unprotect_locked(struct ufo_obj *obj, uint64_t idx)
{
	int rc = uffd_write_protect(obj->ctx->uffd.fd, chunk_addr(obj, idx),
				    chunk_len(obj, idx), false);

	if (rc)
		log_err(obj->ctx, "object %llu chunk %llu: removing write protection: %s",
			(unsigned long long)obj->id, (unsigned long long)idx,
			strerror(-rc));
}

uint64_t chunk_hash(const void *p, size_t len)
{
	return XXH3_64bits(p, len);
}
