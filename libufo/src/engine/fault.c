/* SPDX-License-Identifier: MIT */
/*
 * The fault path: a userfaultfd message is read by a handler thread and
 * dispatched, by address, to its object and chunk: a missing page loads
 * the chunk (load.c), a write-protect fault marks it dirty.
 */
#include <errno.h>
#include <linux/userfaultfd.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"

/* ---- message dispatch. */

static void handle_write_fault(struct ufo_obj *obj, uint64_t idx)
{
	struct ufo_chunk *c = &obj->chunks[idx];
	bool wake = false;

	STAT_ADD(obj, wp_faults, 1);
	pthread_mutex_lock(&obj->lock);
	switch ((enum chunk_state)c->state) {
	case CHUNK_CLEAN:
		chunk_set_state(obj, c, CHUNK_DIRTY);
		STAT_ADD(obj, dirty_bytes, (int64_t)chunk_len(obj, idx));
		chunk_unprotect_locked(obj, idx);
		break;
	case CHUNK_DIRTY:
		/* A second writer parked before the first fault was handled:
		 * unprotecting again is harmless and wakes it. */
		chunk_unprotect_locked(obj, idx);
		break;
	case CHUNK_FETCHING:
	case CHUNK_WRITEBACK:
	case CHUNK_EVICTING:
		/* The writer stays parked until the fetch, writeback or
		 * eviction finishes; whoever finishes it acts on the flag. */
		c->flags |= CHUNK_F_WRITE_WAITING | CHUNK_F_WAKE_WAITING;
		break;
	case CHUNK_ABSENT:
	default:
		/* Dropped after the fault was queued: the wake below makes
		 * the writer refault as a missing page. */
		wake = true;
		break;
	}
	pthread_mutex_unlock(&obj->lock);
	if (wake)
		uffd_wake(obj->ctx->uffd.fd, chunk_addr(obj, idx),
			  chunk_len(obj, idx));
}

/* Nothing but a load touches the page pool, and only a slot full of pages
 * (pool.c); a fault there is a bug, answered with a page of zeros so that
 * the thread goes on instead of hanging. */
static void fault_in_pool(struct ufo_obj *obj, uintptr_t addr)
{
	struct ufo_ctx *ctx = obj->ctx;
	void *page = (void *)(addr & ~(uintptr_t)(ctx->page_size - 1));
	int rc = uffd_zero_page(ctx->uffd.fd, page, ctx->page_size, false);

	log_err(ctx, "object %llu: fault in its page pool at %p (a bug): %s",
		(unsigned long long)obj->id, page,
		rc && rc != -EEXIST ? strerror(-rc) : "filled with zeros");
	uffd_wake(ctx->uffd.fd, page, ctx->page_size);
}

static void handle_pagefault(struct ufo_ctx *ctx, const struct uffd_msg *msg)
{
	uintptr_t addr = (uintptr_t)msg->arg.pagefault.address;
	uint64_t t0 = now_ns(), idx;
	struct ufo_obj *obj = registry_find(ctx, addr);

	if (!obj || addr < (uintptr_t)obj->body) {
		log_warn(ctx, "fault at %#lx outside any live UFO", (unsigned long)addr);
		if (obj)
			obj_put(obj);
		return;
	}
	if (addr >= (uintptr_t)obj->body + obj->body_len) {
		fault_in_pool(obj, addr);
		obj_put(obj);
		return;
	}
	idx = (addr - (uintptr_t)obj->body) / obj->chunk_size;
	if (msg->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP) {
		handle_write_fault(obj, idx);
	} else {
		STAT_ADD(obj, faults, 1);
		readahead_on_fault(obj, idx);
		chunk_fetch(obj, idx, addr, (pid_t)msg->arg.pagefault.feat.ptid, 0);
		stats_record_latency(obj, now_ns() - t0);
	}
	obj_put(obj);
}

/* Returns true when a message was read and handled. */
bool fault_handle_message(struct ufo_ctx *ctx)
{
	struct uffd_msg msg;
	ssize_t n = read(ctx->uffd.fd, &msg, sizeof(msg));

	if (n != (ssize_t)sizeof(msg))
		return false; /* EAGAIN: another handler took it */
	if (msg.event == UFFD_EVENT_PAGEFAULT)
		handle_pagefault(ctx, &msg);
	else
		log_debug(ctx, "ignoring userfaultfd event %u", msg.event);
	return true;
}
