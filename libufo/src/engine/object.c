/* SPDX-License-Identifier: MIT */
/* Objects: creation, free, accessors and whole-object operations. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "engine.h"

void ufo_params_init(struct ufo_params *p)
{
	memset(p, 0, sizeof(*p));
	p->elem_size = 1;
}

/* ---- creation. */

static size_t gcd_size(size_t a, size_t b)
{
	while (b) {
		size_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

/* Chunk size: a multiple of the page size and of elem_size, at least the
 * request.  Returns 0 on overflow. */
static size_t round_chunk(size_t want, size_t elem, size_t page)
{
	size_t unit = page / gcd_size(page, elem), l;

	if (__builtin_mul_overflow(unit, elem, &l))
		return 0;
	if (!want)
		want = UFO_DEFAULT_CHUNK_SIZE;
	if (want > SIZE_MAX - l)
		return 0;
	return (want + l - 1) / l * l;
}

static int obj_layout(struct ufo_obj *obj, const struct ufo_params *p,
		      size_t page)
{
	size_t body, hdr_pages;

	if (!p->elem_size || !p->elem_count ||
	    (p->flags & ~(UFO_READ_ONLY | UFO_HUGE)))
		return -EINVAL;
	if (__builtin_mul_overflow(p->elem_size, p->elem_count, &body) ||
	    body > SIZE_MAX / 2 || p->header_size > SIZE_MAX / 4)
		return -EINVAL;
	obj->chunk_size = round_chunk(p->chunk_size, p->elem_size, page);
	if (!obj->chunk_size)
		return -EINVAL;
	obj->elem_size = p->elem_size;
	obj->elem_count = p->elem_count;
	obj->elems_per_chunk = obj->chunk_size / p->elem_size;
	obj->nchunks = (p->elem_count + obj->elems_per_chunk - 1) /
		       obj->elems_per_chunk;
	obj->body_len = (body + page - 1) / page * page;
	obj->header_size = p->header_size;
	hdr_pages = (p->header_size + page - 1) / page * page;
	obj->map_len = hdr_pages + obj->body_len;
	return (int)(hdr_pages / page); /* ≥ 0: success */
}

/* ---- huge-page objects (UFO_HUGE): 2 MiB hugetlb pages. */

#define HUGE_PAGE ((size_t)2 << 20)
#define HUGE_SYSFS "/sys/kernel/mm/hugepages/hugepages-2048kB/"

/* A number from the huge-page pool's sysfs directory, or -errno. */
static long huge_count(const char *what)
{
	char path[128];
	long n = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), HUGE_SYSFS "%s", what);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	if (fscanf(f, "%ld", &n) != 1)
		n = -EIO;
	fclose(f);
	return n;
}

/* The body's page size; -ENOMEM for a huge-page object when the kernel
 * has no free 2 MiB page (none reserved, or all taken): creating it
 * would only move the failure to its first fault, as a SIGBUS. */
static long obj_page_size(struct ufo_ctx *ctx, const struct ufo_params *p)
{
	long free_pages;

	if (!(p->flags & UFO_HUGE))
		return (long)ctx->page_size;
	free_pages = huge_count("free_hugepages");
	if (free_pages > 0)
		return (long)HUGE_PAGE;
	log_err(ctx, "UFO_HUGE: %s 2 MiB huge pages (%s); reserve some with"
		" sysctl vm.nr_hugepages=N, N at least the high watermark / 2 MiB"
		" plus a few",
		free_pages == 0 ? "no free" : "the kernel offers no",
		free_pages == 0 ? HUGE_SYSFS "free_hugepages is 0"
				: strerror((int)-free_pages));
	return -ENOMEM;
}

/*
 * The page pool goes after the body, in the same mapping.  Only for
 * writable objects whose dirty chunks are found by hashing, in 4 KiB
 * pages (UFFDIO_MOVE does not move hugetlb pages):
 *  - UFFDIO_MOVE moves only between writable mappings alike, and a
 *    read-only object's body is PROT_READ;
 *  - it has no write-protect mode.  A moved page is writable until
 *    UFFDIO_WRITEPROTECT follows, and a thread that touches it in between
 *    (a sequential writer reaching a chunk that readahead is installing)
 *    writes without a fault: the chunk stays clean and the write is lost
 *    at eviction.  t_cluster_failover caught it once; t_install_race
 *    (tests/t_install.c) pins it.  Hash mode sees such a write: the hash is
 *    taken before the move.
 */
static size_t pool_len(struct ufo_obj *obj)
{
	if ((obj->flags & (UFO_READ_ONLY | UFO_HUGE)) ||
	    (obj->wp && !getenv("UFO_MOVE_WP_UNSAFE")))
		return 0;
	obj->pool.nslots = pool_slots(obj->ctx, obj->chunk_size);
	return (size_t)obj->pool.nslots * obj->chunk_size;
}

static int obj_map(struct ufo_obj *obj, size_t hdr_len)
{
	struct ufo_ctx *ctx = obj->ctx;
	int prot = PROT_READ | (obj->flags & UFO_READ_ONLY ? 0 : PROT_WRITE);
	int rc;

	size_t plen = pool_len(obj);
	/* Huge pages are not reserved at mmap (MAP_NORESERVE): the budget,
	 * not the object's size, bounds how many are in use. */
	int huge = obj->flags & UFO_HUGE ? MAP_HUGETLB | (21 << MAP_HUGE_SHIFT)
					 : 0;

	obj->map_len += plen;
	obj->map = mmap(NULL, obj->map_len, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | huge, -1,
			0);
	if (obj->map == MAP_FAILED)
		return -errno;
	obj->body = obj->map + hdr_len;
	obj->header = obj->body - obj->header_size;
	/* The body is installed 4 KiB at a time by UFFDIO_COPY: keep
	 * khugepaged away from it. */
	if (!huge)
		madvise(obj->body, obj->body_len + plen, MADV_NOHUGEPAGE);
	if (!(prot & PROT_WRITE) &&
	    mprotect(obj->body, obj->body_len, prot))
		return -errno;
	rc = uffd_register(ctx->uffd.fd, obj->body, obj->body_len, obj->wp);
	if (!rc && plen) {
		obj->pool.base = obj->body + obj->body_len;
		rc = uffd_register(ctx->uffd.fd, obj->pool.base, plen, false);
		if (!rc)
			rc = pool_init(obj);
	}
	if (rc)
		log_err(ctx, "registering %zu bytes with userfaultfd: %s",
			obj->body_len + plen, strerror(-rc));
	return rc;
}

static void obj_destroy(struct ufo_obj *obj)
{
	if (obj->backend && obj->backend->close)
		obj->backend->close(obj);
	if (obj->map && obj->map != MAP_FAILED)
		munmap(obj->map, obj->map_len);
	pool_fini(obj);
	free(obj->chunks);
	free(obj->hashes);
	pthread_mutex_destroy(&obj->lock);
	pthread_cond_destroy(&obj->cond);
	free(obj);
}

static int obj_init(struct ufo_ctx *ctx, const struct ufo_params *p,
		    struct ufo_obj *obj)
{
	long page = obj_page_size(ctx, p);
	int hdr_pages, rc;
	bool hash;

	if (page < 0)
		return (int)page;
	hdr_pages = obj_layout(obj, p, (size_t)page);
	if (hdr_pages < 0)
		return hdr_pages;
	obj->page = (size_t)page;
	obj->flags = p->flags;
	/* Huge pages: dirty chunks by hash (see UFO_HUGE in ufo.h). */
	hash = !(p->flags & UFO_READ_ONLY) &&
	       (ctx->cfg.dirty_mode == UFO_DIRTY_HASH || (p->flags & UFO_HUGE));
	obj->scan = ctx->cfg.dirty_mode == UFO_DIRTY_SCAN && !hash &&
		    !(p->flags & UFO_READ_ONLY);
	obj->wp = (ctx->cfg.dirty_mode == UFO_DIRTY_WP || obj->scan) && !hash &&
		  !(p->flags & UFO_READ_ONLY);
	obj->chunks = calloc(obj->nchunks, sizeof(*obj->chunks));
	if (!obj->chunks)
		return -ENOMEM;
	for (uint64_t i = 0; i < obj->nchunks; i++)
		obj->chunks[i].obj = obj;
	if (hash) {
		obj->hashes = calloc(obj->nchunks, sizeof(*obj->hashes));
		if (!obj->hashes)
			return -ENOMEM;
	}
	rc = obj_map(obj, (size_t)hdr_pages * obj->page);
	if (rc)
		return rc;
	return registry_add(ctx, obj);
}

int obj_create(struct ufo_ctx *ctx, const struct ufo_params *p,
	       const struct ufo_backend_ops *backend, void *backend_data,
	       struct ufo_obj **out)
{
	struct ufo_obj *obj = calloc(1, sizeof(*obj));
	int rc;

	if (!obj) {
		if (backend->close)
			backend->close(&(struct ufo_obj){ .backend_data = backend_data });
		return -ENOMEM;
	}
	obj->backend = backend;
	obj->backend_data = backend_data;
	obj->ctx = ctx;
	obj->id = atomic_fetch_add(&ctx->next_obj_id, 1);
	obj->refs = 1; /* the registry's */
	pthread_mutex_init(&obj->lock, NULL);
	pthread_cond_init(&obj->cond, NULL);
	rc = obj_init(ctx, p, obj);
	if (rc) {
		obj_destroy(obj);
		return rc;
	}
	log_debug(ctx, "object %llu: %llu x %zu bytes, chunk %zu, header %zu%s",
		  (unsigned long long)obj->id,
		  (unsigned long long)obj->elem_count, obj->elem_size,
		  obj->chunk_size, obj->header_size,
		  obj->flags & UFO_READ_ONLY ? ", read-only" : "");
	*out = obj;
	return 0;
}

/* ---- what a backend may see of its object (backend.h). */

void *obj_backend_data(const struct ufo_obj *obj)
{
	return obj->backend_data;
}

struct ufo_ctx *obj_ctx(const struct ufo_obj *obj)
{
	return obj->ctx;
}

uint64_t obj_id(const struct ufo_obj *obj)
{
	return obj->id;
}

static void obj_quiesce(struct ufo_obj *obj)
{
	pthread_mutex_lock(&obj->lock);
	obj->dying = true;
	while (atomic_load(&obj->refs) > 1)
		pthread_cond_wait(&obj->cond, &obj->lock);
	pthread_mutex_unlock(&obj->lock);
}

int ufo_free(struct ufo_obj *obj)
{
	struct ufo_ctx *ctx;
	int rc;

	if (!obj)
		return -EINVAL;
	ctx = obj->ctx;
	obj_quiesce(obj);
	rc = evict_range(obj, 0, obj->nchunks - 1);
	if (rc)
		log_err(ctx, "object %llu freed with unsaved writes: %s",
			(unsigned long long)obj->id, strerror(-rc));
	registry_del(ctx, obj);
	/* Chunks whose writeback failed are still queued: unqueue them before
	 * the last wait, so the evictor cannot claim one afterwards. */
	for (uint64_t i = 0; i < obj->nchunks; i++)
		policy_remove(obj, &obj->chunks[i]);
	obj_quiesce(obj);
	uffd_unregister(ctx->uffd.fd, obj->body, obj->body_len +
		(size_t)obj->pool.nslots * obj->chunk_size);
	/* Chunks whose writeback failed are still charged to the budget. */
	budget_uncharge(obj, (size_t)atomic_load(&obj->stats.resident_bytes));
	STAT_ADD(obj, dirty_bytes, -atomic_load(&obj->stats.dirty_bytes));
	obj_destroy(obj);
	return rc;
}

/* ---- accessors. */

void *ufo_header(const struct ufo_obj *obj)
{
	return obj && obj->header_size ? obj->header : NULL;
}

void *ufo_body(const struct ufo_obj *obj)
{
	return obj ? obj->body : NULL;
}

size_t ufo_header_size(const struct ufo_obj *obj)
{
	return obj ? obj->header_size : 0;
}

size_t ufo_elem_size(const struct ufo_obj *obj)
{
	return obj ? obj->elem_size : 0;
}

uint64_t ufo_elem_count(const struct ufo_obj *obj)
{
	return obj ? obj->elem_count : 0;
}

size_t ufo_chunk_size(const struct ufo_obj *obj)
{
	return obj ? obj->chunk_size : 0;
}

/* ---- whole-object operations. */

int ufo_sync(struct ufo_obj *obj)
{
	return obj ? sync_range(obj, 0, obj->nchunks - 1) : -EINVAL;
}

int ufo_reset(struct ufo_obj *obj)
{
	if (!obj)
		return -EINVAL;
	/* Under obj->lock: a background load claims its chunk under it too,
	 * so it either sees the new epoch or is FETCHING and evicted below. */
	pthread_mutex_lock(&obj->lock);
	atomic_fetch_add(&obj->epoch, 1);
	pthread_mutex_unlock(&obj->lock);
	return evict_range(obj, 0, obj->nchunks - 1);
}

/* Chunks overlapping elements [start, end), or -EINVAL. */
static int elem_chunks(const struct ufo_obj *obj, uint64_t start,
		       uint64_t end, uint64_t *first, uint64_t *last)
{
	if (start >= end || end > obj->elem_count)
		return -EINVAL;
	*first = start / obj->elems_per_chunk;
	*last = (end - 1) / obj->elems_per_chunk;
	return 0;
}

int ufo_advise(struct ufo_obj *obj, uint64_t start, uint64_t end,
	       enum ufo_advice advice)
{
	uint64_t first, last;
	int rc;

	if (!obj)
		return -EINVAL;
	switch (advice) {
	case UFO_ADV_NORMAL:
	case UFO_ADV_SEQUENTIAL:
	case UFO_ADV_RANDOM:
		pthread_mutex_lock(&obj->lock);
		atomic_store(&obj->advice, (int)advice);
		readahead_reset_locked(obj);
		pthread_mutex_unlock(&obj->lock);
		return 0;
	case UFO_ADV_WILLNEED:
		rc = elem_chunks(obj, start, end, &first, &last);
		if (!rc)
			prefetch_queue(obj, first, last);
		return rc;
	case UFO_ADV_DONTNEED:
		rc = elem_chunks(obj, start, end, &first, &last);
		return rc ? rc : evict_range(obj, first, last);
	}
	return -EINVAL;
}

int ufo_refresh(struct ufo_obj *obj)
{
	return obj ? evict_clean(obj) : -EINVAL;
}

