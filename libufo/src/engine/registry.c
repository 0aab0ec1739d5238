/* SPDX-License-Identifier: MIT */
/* Object references, and the registry: live objects sorted by mapping
 * address, found by binary search on every fault. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

void obj_get(struct ufo_obj *obj)
{
	atomic_fetch_add(&obj->refs, 1);
}

/*
 * ufo_free waits on obj->cond, under obj->lock, for the last user to leave
 * (obj_quiesce), then destroys the object.  The count drops under the same
 * lock: dropped before it (and the lock taken after, to broadcast), a
 * quiesce that looked in between saw one reference, returned, and freed
 * the object under the putter, which then locked a destroyed mutex (TSan
 * caught it in t_once once loads completed on other threads).
 */
void obj_put(struct ufo_obj *obj)
{
	pthread_mutex_lock(&obj->lock);
	if (atomic_fetch_sub(&obj->refs, 1) == 2)
		pthread_cond_broadcast(&obj->cond);
	pthread_mutex_unlock(&obj->lock);
}

/* ---- registry: objects sorted by address, binary search. */

/* Index of the first object whose mapping starts above addr. */
static size_t registry_upper(const struct ufo_ctx *ctx, uintptr_t addr)
{
	size_t lo = 0, hi = ctx->nobjs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if ((uintptr_t)ctx->objs[mid]->map <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct ufo_obj *registry_find(struct ufo_ctx *ctx, uintptr_t addr)
{
	struct ufo_obj *obj = NULL;
	size_t i;

	pthread_rwlock_rdlock(&ctx->reg_lock);
	i = registry_upper(ctx, addr);
	if (i > 0) {
		struct ufo_obj *o = ctx->objs[i - 1];
		if (addr < (uintptr_t)o->map + o->map_len) {
			obj = o;
			obj_get(obj);
		}
	}
	pthread_rwlock_unlock(&ctx->reg_lock);
	return obj;
}

int registry_add(struct ufo_ctx *ctx, struct ufo_obj *obj)
{
	size_t i;

	pthread_rwlock_wrlock(&ctx->reg_lock);
	if (ctx->nobjs == ctx->objs_cap) {
		size_t cap = ctx->objs_cap ? ctx->objs_cap * 2 : 16;
		void *n = realloc(ctx->objs, cap * sizeof(*ctx->objs));
		if (!n) {
			pthread_rwlock_unlock(&ctx->reg_lock);
			return -ENOMEM;
		}
		ctx->objs = n;
		ctx->objs_cap = cap;
	}
	i = registry_upper(ctx, (uintptr_t)obj->map);
	memmove(&ctx->objs[i + 1], &ctx->objs[i],
		(ctx->nobjs - i) * sizeof(*ctx->objs));
	ctx->objs[i] = obj;
	ctx->nobjs++;
	pthread_rwlock_unlock(&ctx->reg_lock);
	return 0;
}

void registry_del(struct ufo_ctx *ctx, struct ufo_obj *obj)
{
	pthread_rwlock_wrlock(&ctx->reg_lock);
	for (size_t i = 0; i < ctx->nobjs; i++) {
		if (ctx->objs[i] == obj) {
			memmove(&ctx->objs[i], &ctx->objs[i + 1],
				(ctx->nobjs - i - 1) * sizeof(*ctx->objs));
			ctx->nobjs--;
			break;
		}
	}
	pthread_rwlock_unlock(&ctx->reg_lock);
}

int registry_for_each(struct ufo_ctx *ctx,
		      int (*fn)(void *user, struct ufo_obj *obj), void *user)
{
	int rc = 0;

	pthread_rwlock_rdlock(&ctx->reg_lock);
	for (size_t i = 0; i < ctx->nobjs && !rc; i++)
		rc = fn(user, ctx->objs[i]);
	pthread_rwlock_unlock(&ctx->reg_lock);
	return rc;
}

int ufo_lookup(struct ufo_ctx *ctx, const void *addr, struct ufo_obj **out)
{
	struct ufo_obj *obj;

	if (!ctx || !out)
		return -EINVAL;
	obj = registry_find(ctx, (uintptr_t)addr);
	if (!obj)
		return -ENOENT;
	/* The header page may start before the header itself; the page
	 * pool follows the body. */
	if ((const char *)addr < obj->body - obj->header_size ||
	    (const char *)addr >= obj->body + obj->body_len) {
		obj_put(obj);
		return -ENOENT;
	}
	*out = obj;
	obj_put(obj);
	return 0;
}
