/* SPDX-License-Identifier: MIT */
/*
 * The engine: userfaultfd, objects and their chunks, the budget, eviction,
 * writeback, readahead, statistics and the monitor's view of them.  Files
 * of engine/ include this; nothing outside engine/ does (tests that check
 * internals excepted).  Below the engine the backends are reached only
 * through backend/backend.h.
 *
 * Locking, outermost first:
 *   ctx->reg_lock (rwlock)  the ordered object registry
 *   obj->lock               chunk states and flags of one object
 *   ctx->policy_lock        eviction queues (leaf: taken under obj->lock)
 *   ctx->budget_lock        budget waiters (leaf)
 * No lock is held while a backend fetches or stores (DESIGN invariant 4).
 */
#ifndef UFO_ENGINE_H
#define UFO_ENGINE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "backend/backend.h"
#include "monitor.h"
#include "ufo.h"
#include "util.h"

/* ------------------------------------------------------------ chunk state */

/*
 * ABSENT ─► FETCHING ─► CLEAN ⇄ DIRTY
 *   ▲           │          │  ╲    │ sync: DIRTY ─► WRITEBACK ─► CLEAN | DIRTY
 *   └───────────┘ (fail)   ▼   ╲   ▼
 *   └────────────────── EVICTING ◄─┘ (writeback failure: back to DIRTY/CLEAN)
 * Transitions are made only under obj->lock, through chunk_set_state(),
 * which refuses (and logs) any move not in the table in chunk.c.
 */
enum chunk_state {
	CHUNK_ABSENT = 0,
	CHUNK_FETCHING,
	CHUNK_CLEAN,
	CHUNK_DIRTY,
	CHUNK_WRITEBACK,
	CHUNK_EVICTING,
	CHUNK_NSTATES
};

/* chunk->flags */
enum {
	/* A write fault arrived while the chunk was FETCHING, WRITEBACK or
	 * EVICTING; the writer is parked in the kernel until we act. */
	CHUNK_F_WRITE_WAITING = 1 << 0,
	/* A fault arrived while EVICTING; wake the range once it is ABSENT. */
	CHUNK_F_WAKE_WAITING = 1 << 1,
	/* Dropped and not queued since: evicted_at is meaningful, and the
	 * next policy_insert is a refault (policy.c consumes the flag). */
	CHUNK_F_EVICTED = 1 << 2,
	/* Loaded by readahead and not known to be touched yet: counted used
	 * when its stream's scan passes it (readahead.c); an eviction
	 * clears it, uncounted. */
	CHUNK_F_READAHEAD = 1 << 3,
	/* A demand fault arrived while the chunk was FETCHING: a readahead
	 * load that ends then was used, late (load.c). */
	CHUNK_F_DEMANDED = 1 << 4,
};

struct ufo_obj;

struct ufo_chunk {
	/* Eviction queue links; protected by ctx->policy_lock. */
	struct ufo_chunk *prev, *next;
	struct ufo_obj *obj;
	uint32_t evicted_at; /* ctx->evict_seq when last evicted */
	uint8_t state;       /* enum chunk_state; obj->lock */
	uint8_t flags;       /* CHUNK_F_*; obj->lock */
	uint8_t queue;       /* 0, or 1 + index in ctx->queues; policy_lock */
	uint8_t level;       /* MQ's refault count; ctx->policy_lock */
};

/* ------------------------------------------------------------- statistics */

struct ufo_counters {
	_Atomic uint64_t faults, wp_faults, populate_calls, populate_ns,
		populate_errors, bytes_loaded, bytes_moved, bytes_copied,
		bytes_holes, pages_recycled, prefetches, evictions,
		writebacks, writeback_bytes, writeback_chunk_bytes,
		writeback_errors, sigbus, readahead_chunks, readahead_used,
		readahead_late;
	_Atomic int64_t resident_bytes, dirty_bytes;
	_Atomic uint64_t lat[UFO_HIST_BUCKETS];
	_Atomic uint64_t lat_sum_ns; /* the histogram's sum, for /metrics */
};

/* Count one event on the object and its context (relaxed atomics: the fault
 * path takes no lock for statistics). */
#define STAT_ADD(obj, field, n)                                              \
	do {                                                                 \
		atomic_fetch_add_explicit(&(obj)->stats.field, (n),          \
					  memory_order_relaxed);             \
		atomic_fetch_add_explicit(&(obj)->ctx->stats.field, (n),     \
					  memory_order_relaxed);             \
	} while (0)

void stats_record_latency(struct ufo_obj *obj, uint64_t ns);
void stats_snapshot(const struct ufo_counters *c, struct ufo_stats *out);

/* -------------------------------------------------------------- readahead */

/* Streams of faults readahead follows per object, and the deltas between
 * a stream's faults its trend is voted from (readahead.c). */
#define RA_STREAMS 4
#define RA_HISTORY 8

struct ra_stream {
	uint64_t last;    /* chunk of the stream's latest demand fault */
	uint64_t next;    /* first chunk along the trend not queued yet */
	int64_t delta[RA_HISTORY]; /* latest deltas between its faults (ring) */
	unsigned ndelta, head;
	int64_t trend;    /* the majority delta, 0 while there is none */
	unsigned window;  /* chunks queued ahead of a fault on the trend */
	uint64_t stamp;   /* ra_state.clock at its latest fault */
	bool live;
};

struct ra_state {
	struct ra_stream s[RA_STREAMS];
	uint64_t clock;   /* faults seen: the stream idle longest is reused */
};

/* ----------------------------------------------------------------- object */

struct ufo_obj {
	struct ufo_ctx *ctx;
	uint64_t id;
	char *map;          /* header pages + body, one mapping */
	size_t map_len;
	char *header;       /* body - header_size */
	char *body;         /* page aligned */
	size_t header_size;
	size_t elem_size;
	uint64_t elem_count;
	size_t body_len;    /* registered bytes: body rounded up to a page */
	size_t chunk_size;
	uint64_t elems_per_chunk;
	uint64_t nchunks;
	unsigned flags;     /* UFO_READ_ONLY, UFO_HUGE */
	size_t page;        /* the body's page size: installs are whole pages */
	bool wp;            /* installed write-protected: dirty found by WP
			     * faults, or by scans when scan is set */
	bool scan;          /* scan mode: writes make no fault (WP_ASYNC);
			     * chunks stay CLEAN and PAGEMAP_SCAN tells
			     * which pages were written (scan.c) */
	const struct ufo_backend_ops *backend;
	void *backend_data;

	pthread_mutex_t lock;
	pthread_cond_t cond; /* broadcast when a chunk leaves a busy state */
	struct ufo_chunk *chunks;
	uint64_t *hashes;    /* hash mode: content hash at install */
	/* pool.c: chunk-sized slots of pages after the body, for installs by
	 * UFFDIO_MOVE (nslots 0: none). */
	struct obj_pool {
		char *base;
		unsigned nslots;
		pthread_mutex_t lock;
		uint8_t *state;
		unsigned nfull, nempty;
	} pool;
	_Atomic int refs;    /* registry + in-progress users (handlers, evictor) */
	bool dying;          /* obj->lock: ufo_free has started */
	_Atomic uint32_t epoch; /* bumped by reset: older background loads
				 * are dropped (claim_load) */

	_Atomic int advice;  /* UFO_ADV_NORMAL / SEQUENTIAL / RANDOM */
	struct ra_state ra;  /* readahead streams; obj->lock */

	struct ufo_counters stats;
};

static inline uint64_t chunk_index(const struct ufo_obj *obj,
				   const struct ufo_chunk *c)
{
	return (uint64_t)(c - obj->chunks);
}

static inline char *chunk_addr(const struct ufo_obj *obj, uint64_t idx)
{
	return obj->body + idx * obj->chunk_size;
}

/* Bytes of the mapping the chunk covers (the last one may be shorter). */
static inline size_t chunk_len(const struct ufo_obj *obj, uint64_t idx)
{
	size_t off = idx * obj->chunk_size;
	size_t rest = obj->body_len - off;
	return rest < obj->chunk_size ? rest : obj->chunk_size;
}

/* Elements [start, end) held by chunk idx. */
static inline void chunk_elems(const struct ufo_obj *obj, uint64_t idx,
			       uint64_t *start, uint64_t *end)
{
	*start = idx * obj->elems_per_chunk;
	*end = *start + obj->elems_per_chunk;
	if (*end > obj->elem_count)
		*end = obj->elem_count;
}

void obj_get(struct ufo_obj *obj);
void obj_put(struct ufo_obj *obj);
/* Registry lookup by address; on success the object carries a reference
 * the caller drops with obj_put(). */
struct ufo_obj *registry_find(struct ufo_ctx *ctx, uintptr_t addr);
/* Calls fn for every live object in address order, with the registry
 * read-locked: fn must not create or free objects.  Stops at and returns
 * fn's first non-zero result. */
int registry_for_each(struct ufo_ctx *ctx,
		      int (*fn)(void *user, struct ufo_obj *obj), void *user);

/* ------------------------------------------------------------------ chunk */

const char *chunk_state_name(enum chunk_state s);
/* Moves c to state next; obj->lock held.  Returns 0, or -EINVAL (logged)
 * when the transition is not in the table; the state is then unchanged. */
int chunk_set_state(struct ufo_obj *obj, struct ufo_chunk *c,
		    enum chunk_state next);
/* Waits on obj->cond until c is in none of the busy states (FETCHING,
 * WRITEBACK, EVICTING); obj->lock held. */
void chunk_wait_idle(struct ufo_obj *obj, struct ufo_chunk *c);
/* Lets writers in (and wakes parked ones); obj->lock held, chunk DIRTY. */
void chunk_unprotect_locked(struct ufo_obj *obj, uint64_t idx);
static inline bool chunk_is_resident(const struct ufo_chunk *c)
{
	return c->state == CHUNK_CLEAN || c->state == CHUNK_DIRTY;
}

/* ----------------------------------------------------------------- policy */

/* Queues a policy may use (MQ uses all, one per refault level). */
#define POLICY_QUEUES 32
/* insert's distance for a chunk not dropped since it was last queued. */
#define POLICY_NOT_EVICTED UINT32_MAX

/*
 * Eviction order.  All ops run under ctx->policy_lock.  insert is told the
 * refault distance (evictions since the chunk was dropped, or
 * POLICY_NOT_EVICTED) and whether its object is being scanned sequentially.
 */
struct ufo_policy_ops {
	const char *name;
	void (*insert)(struct ufo_ctx *ctx, struct ufo_chunk *c,
		       uint32_t distance, bool sequential);
	void (*remove)(struct ufo_ctx *ctx, struct ufo_chunk *c);
	/* Unlinks and returns the next victim, or NULL when none is queued. */
	struct ufo_chunk *(*pick)(struct ufo_ctx *ctx);
	/* Optional: readahead saw queued chunk c used (its scan passed it). */
	void (*used)(struct ufo_ctx *ctx, struct ufo_chunk *c);
};

extern const struct ufo_policy_ops ufo_policy_mq, ufo_policy_2q,
	ufo_policy_fifo;

struct chunk_list {
	struct ufo_chunk *head, *tail;
	uint64_t count;
};

/* Under obj->lock: queue a newly resident chunk / unqueue a leaving one. */
void policy_insert(struct ufo_obj *obj, struct ufo_chunk *c);
void policy_remove(struct ufo_obj *obj, struct ufo_chunk *c);
/* Under obj->lock: queues c unless it is queued already. */
void policy_requeue(struct ufo_obj *obj, struct ufo_chunk *c);
/* Under obj->lock: readahead saw resident chunk c used. */
void policy_used(struct ufo_obj *obj, struct ufo_chunk *c);

/* ------------------------------------------------------------------- uffd */

struct uffd_info {
	int fd;
	bool wp;          /* write-protect usable on anonymous memory */
	bool move;        /* UFFDIO_MOVE (Linux 6.8); UFO_NO_MOVE=1 turns
			   * it off, for comparison */
	bool scan;        /* WP_ASYNC granted and PAGEMAP_SCAN answers */
};

int uffd_open(struct ufo_ctx *ctx, struct uffd_info *out);
int uffd_register(int fd, void *addr, size_t len, bool wp);
int uffd_unregister(int fd, void *addr, size_t len);
/* Installs len bytes from src at dst and wakes waiters.  Returns 0, or
 * -EEXIST when a page in the range is already present, or another -errno. */
int uffd_copy(int fd, void *dst, const void *src, size_t len, bool wp);
int uffd_write_protect(int fd, void *addr, size_t len, bool protect);
/* Installs one page of zeros (write-protected if wp) at page: 0, -EEXIST
 * when present, or -errno. */
int uffd_zero_page(int fd, void *page, size_t page_size, bool wp);
/* Maps the shared zero page over [addr, addr + len) (UFFDIO_ZEROPAGE),
 * skipping pages already present, and wakes the waiters.  0 or -errno. */
int uffd_zero_range(int fd, void *addr, size_t len, size_t page_size);
/* Moves len bytes of pages from src to dst (both in registered ranges of
 * fd, dst missing, src all present), waking dst's waiters if wake.
 * *moved tells how far it got.  0 or -errno (-EEXIST: a dst page exists;
 * -ENOENT: a src page is missing; -EBUSY: a src page is pinned or
 * shared). */
int uffd_move(int fd, void *dst, void *src, size_t len, bool wake,
	      size_t *moved);
int uffd_wake(int fd, void *addr, size_t len);
/* 1 when the page at addr is present, 0 when not, or -errno. */
int page_present(int pagemap_fd, const void *addr);
int uffd_scan_written(int pagemap_fd, char *addr, size_t len,
		      size_t page_size, bool protect, uint64_t *bits);

/* Bitmaps of pages within a chunk (scan mode). */
static inline void bits_set(uint64_t *bits, size_t i)
{
	bits[i / 64] |= (uint64_t)1 << (i % 64);
}

static inline bool bits_test(const uint64_t *bits, size_t i)
{
	return bits[i / 64] >> (i % 64) & 1;
}

/* ---------------------------------------------------------------- context */

/* I/O workers per context: the depth of backends that block (a cluster's
 * quorum reads and writes, one-sided RDMA); asynchronous ones need none. */
#define UFO_IO_WORKERS 8
/* Load buffers a context keeps for reuse. */
#define UFO_LOAD_BUFS 16

struct work_item {
	struct work_item *next;
	struct ufo_obj *obj; /* holds a reference */
	uint64_t first;       /* the next chunk to prefetch */
	uint64_t left;        /* chunks still to prefetch, > 0 */
	int64_t step;         /* chunks from one to the next: 1, or a trend */
	int stream;           /* the readahead stream, or -1 (WILLNEED);
			       * readahead is skipped once its scan passed */
	uint32_t epoch;       /* obj->epoch when queued */
};

struct ufo_ctx {
	struct ufo_config cfg;
	struct uffd_info uffd;
	size_t page_size;
	int pagemap_fd;
	_Atomic bool stopping;
	_Atomic uint64_t next_obj_id;

	/* Registry: objects sorted by mapping address. */
	pthread_rwlock_t reg_lock;
	struct ufo_obj **objs;
	size_t nobjs, objs_cap;

	/* Fault handlers.  busy counts handlers inside a backend call: when
	 * every handler stays busy the watchdog starts another (up to
	 * UFO_MAX_THREADS), so a populate that reads another UFO always finds
	 * a handler. */
	pthread_mutex_t thr_lock;
	pthread_cond_t watch_cond;
	pthread_t threads[UFO_MAX_THREADS];
	pthread_t watchdog;
	bool watchdog_started;
	_Atomic unsigned nthreads, busy;
	int event_fd; /* wakes handlers: work queued, or stopping */

	/* Background loads (readahead, WILLNEED). */
	pthread_mutex_t work_lock;
	struct work_item *work_head, *work_tail;

	/* Budget: stats.resident_bytes counts installed chunks, inflight the
	 * chunks reserved and being fetched. */
	_Atomic int64_t inflight;
	pthread_mutex_t budget_lock;
	pthread_cond_t budget_cond;  /* room was made */
	pthread_cond_t evict_cond;   /* the evictor has work */
	_Atomic unsigned budget_waiters; /* changed under budget_lock */
	_Atomic bool room_wanted;    /* a prefetch was refused: evict to low */
	bool evictor_stuck;          /* the last pass found nothing evictable
				      * (for logging once per episode) */
	uint64_t stuck_gen;          /* verdicts "nothing evictable": each
				      * lets the loads then waiting go over
				      * budget (budget_hopeless) */
	uint64_t queues_empty_since; /* evictor only: ns, 0 when not empty */
	pthread_t evictor;
	bool evictor_started;

	/* Eviction policy. */
	pthread_mutex_t policy_lock;
	const struct ufo_policy_ops *policy;
	struct chunk_list queues[POLICY_QUEUES];
	uint64_t queued;      /* chunks in all queues */
	uint32_t evict_seq;   /* chunks evicted so far (wraps) */

	struct ufo_counters stats;

	/* io.c: in-flight ios (and the most seen at once), failed attempts
	 * waiting for their retry (soonest first) and the thread that makes
	 * them, and the I/O workers of backends that block. */
	_Atomic unsigned io_inflight, io_inflight_max;
	pthread_mutex_t io_lock;
	pthread_cond_t io_cond;      /* the retry queue changed, or stop */
	pthread_cond_t job_cond;     /* a job is queued, or stop */
	struct ufo_io *retry_head;
	pthread_t retry_thread;
	bool retry_started, io_stopping;
	struct ufo_job *job_head, *job_tail;
	pthread_t workers[UFO_IO_WORKERS];
	unsigned nworkers;

	/* load.c: load buffers kept for reuse (a few, by length). */
	pthread_mutex_t buf_lock;
	struct load_buf { void *p; size_t len; } bufs[UFO_LOAD_BUFS];
	unsigned nbufs;

	/* The HTTP monitor (monitor.c), NULL when off; its thread reads the
	 * counters above and walks the registry read-locked. */
	struct mon_server *monitor;
	char *monitor_addr;   /* cfg.monitor points here */
	uint64_t started_ns;  /* now_ns() at creation */
};

/* ------------------------------------------------------------ entry points */

int config_apply_env(struct ufo_config *cfg, const struct ufo_ctx *ctx);
int config_finish(struct ufo_config *cfg);

/* Starts the HTTP monitor when cfg.monitor is set; a failure is logged
 * and leaves it off.  Stopped before objects are freed. */
void ctx_monitor_start(struct ufo_ctx *ctx);
void ctx_monitor_stop(struct ufo_ctx *ctx);
/* The mon_render_fn of a context (user is the ctx): its metrics in format. */
int ctx_monitor_render(void *user, enum mon_format format, struct mon_buf *out);

/* handlers.c: the fault-handling threads and the starvation watchdog. */
int handlers_start(struct ufo_ctx *ctx);
void handlers_stop(struct ufo_ctx *ctx);

/*
 * A handler (or a load waiting for budget) counts itself busy while it
 * cannot take faults.  When that makes every handler busy the watchdog is
 * told; it starts another handler if they stay busy (handlers.c).
 */
static inline void busy_enter(struct ufo_ctx *ctx)
{
	if (atomic_fetch_add(&ctx->busy, 1) + 1 >= atomic_load(&ctx->nthreads)) {
		pthread_mutex_lock(&ctx->thr_lock);
		pthread_cond_signal(&ctx->watch_cond);
		pthread_mutex_unlock(&ctx->thr_lock);
	}
}

static inline void busy_exit(struct ufo_ctx *ctx)
{
	atomic_fetch_sub(&ctx->busy, 1);
}

/* fault.c: reads one userfaultfd message and handles it; false when there
 * was none (another handler took it). */
bool fault_handle_message(struct ufo_ctx *ctx);

/* readahead.c: readahead on a demand fault, and the background work queue
 * that idle handlers run (readahead, WILLNEED). */
void readahead_on_fault(struct ufo_obj *obj, uint64_t idx);
/* Forgets every stream (advice changed); obj->lock held. */
void readahead_reset_locked(struct ufo_obj *obj);
/* Runs one queued background load; drains the queue at stop. */
void work_run_one(struct ufo_ctx *ctx);
void work_drain(struct ufo_ctx *ctx);

/* Queues a background load (WILLNEED) of chunks [first, last] of obj. */
void prefetch_queue(struct ufo_obj *obj, uint64_t first, uint64_t last);
/* Loads chunk idx if ABSENT, on the calling thread.  addr is the faulting
 * address and tid the thread to send SIGBUS on failure; both 0 for a
 * background load, which readahead tells (for its accuracy counts).
 * Returns 0 when loaded or already present, or -errno. */
int chunk_fetch(struct ufo_obj *obj, uint64_t idx, uintptr_t addr, pid_t tid,
		uint32_t epoch);
int chunk_fetch_readahead(struct ufo_obj *obj, uint64_t idx, uint32_t epoch);

/* evict.c */
int evictor_start(struct ufo_ctx *ctx);
void evictor_stop(struct ufo_ctx *ctx);
/* budget.c.  Reserves room for len bytes about to be fetched.  A demand fetch (wait)
 * blocks until the budget has room or the evictor finds nothing it can
 * drop (then it goes over budget by len), counting the thread busy for
 * the watchdog when busy; a prefetch
 * returns -ENOSPC instead.  Release with budget_release(len) on failure. */
int budget_reserve(struct ufo_ctx *ctx, size_t len, bool wait, bool busy);
void budget_release(struct ufo_ctx *ctx, size_t len);
void evictor_kick(struct ufo_ctx *ctx);
/* A reserved fetch of obj became resident / is taken back (copy failed). */
void budget_commit(struct ufo_obj *obj, size_t len);
void budget_uncommit(struct ufo_obj *obj, size_t len);
/* Resident bytes of obj dropped. */
void budget_uncharge(struct ufo_obj *obj, size_t len);
/* Resident plus reserved bytes: what the watermarks are compared with. */
int64_t budget_charged(struct ufo_ctx *ctx);
/* Wakes loads waiting for budget: memory was dropped. */
void budget_room_made(struct ufo_ctx *ctx);

/* Writes back (if dirty) and drops every chunk of obj overlapping chunks
 * [first, last]; waits for busy chunks.  Returns 0 or the first error. */
int evict_range(struct ufo_obj *obj, uint64_t first, uint64_t last);
/* Drops every clean resident chunk of obj (ufo_refresh). */
int evict_clean(struct ufo_obj *obj);
/* sync.c: writes back every dirty chunk in [first, last], keeping them
 * resident. */
int sync_range(struct ufo_obj *obj, uint64_t first, uint64_t last);

/* io.c: submitting ios (the first attempt; io_complete in backend.h
 * does the rest), and the context's I/O threads. */
void io_submit(struct ufo_io *io);
void io_init(struct ufo_ctx *ctx);
void io_stop(struct ufo_ctx *ctx);

/* writeback.c: persisting one chunk. */
struct chunk_store {
	struct ufo_io io;
	uint64_t idx;
	enum chunk_state was;
	uint64_t hash;    /* hash mode: the content being saved */
	/* Scan mode (scan.c): the written pages (a bitmap), the byte ranges
	 * stored (io.ranges), and the copy io.buf points to: the chunk's
	 * own pages moved out of the object (eviction) or a buffer of the
	 * written ranges (sync). */
	uint64_t *written;
	struct ufo_range *ranges;
	char *detached;
	void *bounce;
	/* Runs once the store is over (err 0: durable), on any thread. */
	void (*then)(struct chunk_store *st, int err);
	void *arg;
};
/* Starts persisting chunk idx if it holds unsaved writes; the chunk is in
 * WRITEBACK or EVICTING and `was` is its state before.  In WP mode the
 * range is write-protected first, so the bytes handed to the backend
 * cannot change while the store runs; scan mode hands over a copy of the
 * written pages instead (scan.c).  Returns 1 when started (st->then
 * follows), 0 when there is nothing to save, or -errno. */
int chunk_store_start(struct ufo_obj *obj, uint64_t idx,
		      enum chunk_state was, struct chunk_store *st);
/* scan.c: the store of chunk idx in scan mode, for chunk_store_start:
 * 1 when written pages were found and st->io is ready to submit, 0 when
 * none, or -errno (the written pages are marked written again).  The
 * chunk is EVICTING (its pages are moved out first) or WRITEBACK. */
int scan_store_prepare(struct ufo_obj *obj, uint64_t idx, bool evicting,
		       struct chunk_store *st);
/* After the store: releases what prepare took; a failed store (err) puts
 * the pages back and marks the unsaved ones written again.  Any thread,
 * before st->then. */
void scan_store_finish(struct ufo_obj *obj, struct chunk_store *st, int err);

/* After a failed store the chunk goes back to `was`, writable again if it
 * was dirty (which also wakes writers parked meanwhile).  obj->lock held. */
void chunk_store_failed(struct ufo_obj *obj, struct ufo_chunk *c,
			enum chunk_state was);

/* pool.c: the page pool of an object (see there). */
unsigned pool_slots(const struct ufo_ctx *ctx, size_t chunk_size);
int pool_init(struct ufo_obj *obj);
void pool_fini(struct ufo_obj *obj);
void *pool_take(struct ufo_obj *obj, size_t len, int *slot);
void pool_give_back(struct ufo_obj *obj, int slot);
size_t pool_move_in(struct ufo_obj *obj, uint64_t idx, int slot, size_t len,
		    bool wake);
void pool_release(struct ufo_obj *obj, int slot);
void *pool_slot_addr(const struct ufo_obj *obj, int slot);
bool pool_recycle(struct ufo_obj *obj, uint64_t idx);

/* load.c: buffers that ios fetch into, and the context's cache of them. */
void *load_buf_get(struct ufo_ctx *ctx, size_t len);
void load_buf_put(struct ufo_ctx *ctx, void *p, size_t len);
void load_bufs_free(struct ufo_ctx *ctx);

/* chunk.c: the content hash of hash mode. */
uint64_t chunk_hash(const void *p, size_t len);

/* registry.c: objects are added at creation, removed at free. */
int registry_add(struct ufo_ctx *ctx, struct ufo_obj *obj);
void registry_del(struct ufo_ctx *ctx, struct ufo_obj *obj);

/* servers.c: the server's name of a remote or replicated object, NULL for
 * others. */
const char *remote_object_name(const struct ufo_obj *obj);

#endif /* UFO_ENGINE_H */
