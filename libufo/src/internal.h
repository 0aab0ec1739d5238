/* SPDX-License-Identifier: MIT */
/*
 * Internal structures of libufo.  Nothing here is exported (libufo.map).
 *
 * Locking, outermost first:
 *   ctx->reg_lock (rwlock)  the ordered object registry
 *   obj->lock               chunk states and flags of one object
 *   ctx->policy_lock        eviction queues (leaf: taken under obj->lock)
 *   ctx->budget_lock        budget waiters (leaf)
 * No lock is held while a backend fetches or stores (DESIGN invariant 4).
 */
#ifndef UFO_INTERNAL_H
#define UFO_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "monitor.h"
#include "ufo.h"

#define UFO_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ufo_container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

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
	/* Has been evicted at least once: evicted_at is meaningful. */
	CHUNK_F_EVICTED = 1 << 2,
};

enum policy_queue { QUEUE_NONE = 0, QUEUE_PROBATION, QUEUE_PROTECTED };

struct ufo_obj;

struct ufo_chunk {
	/* Eviction queue links; protected by ctx->policy_lock. */
	struct ufo_chunk *prev, *next;
	struct ufo_obj *obj;
	uint32_t evicted_at; /* ctx->evict_seq when last evicted */
	uint8_t state;       /* enum chunk_state; obj->lock */
	uint8_t flags;       /* CHUNK_F_*; obj->lock */
	uint8_t queue;       /* enum policy_queue; ctx->policy_lock */
	uint8_t pad;
};

/* ------------------------------------------------------------- statistics */

struct ufo_counters {
	_Atomic uint64_t faults, wp_faults, populate_calls, populate_ns,
		populate_errors, bytes_loaded, prefetches, evictions,
		writebacks, writeback_bytes, writeback_errors, sigbus;
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
uint64_t now_ns(void);

/* --------------------------------------------------------------- backends */

/*
 * A backend moves chunk bytes between the UFO and where they live.  The
 * fault path calls only these ops, never a backend by kind.  Both calls are
 * made with no lock held, may block, and retry transient errors themselves
 * under ctx->cfg.retries; a non-zero return is final.
 */
struct ufo_backend_ops {
	const char *name;
	/* Fill dst with elements [start, end). */
	int (*fetch)(struct ufo_obj *obj, uint64_t start, uint64_t end,
		     void *dst);
	/* Persist elements [start, end) from src; 0 only once durable. */
	int (*store)(struct ufo_obj *obj, uint64_t start, uint64_t end,
		     const void *src);
	/* Releases obj->backend_data (may be NULL: nothing to release). */
	void (*close)(struct ufo_obj *obj);
	/* store may run for several chunks at once (it waits on a server,
	 * and is thread-safe); the application's callbacks are not. */
	bool parallel;
	/* Objects stored on servers (NULL for the callback backend): the
	 * object's name there, how many servers hold it, and the client's
	 * counters for server i (its address as server; connected 0 while
	 * it is known down; -ENOENT: no such server now). */
	const char *(*remote_name)(const struct ufo_obj *obj);
	unsigned (*servers)(const struct ufo_obj *obj);
	int (*server_status)(const struct ufo_obj *obj, unsigned i,
			     struct ufo_client_stats *out);
};

extern const struct ufo_backend_ops callback_backend;

/* Creates an object served by backend (which owns backend_data from the
 * moment this returns 0). */
int obj_create(struct ufo_ctx *ctx, const struct ufo_params *p,
	       const struct ufo_backend_ops *backend, void *backend_data,
	       struct ufo_obj **out);

/* Client internals used by the remote backend (client.c). */
struct ufo_client;
struct ufo_remote_info;
int client_open(struct ufo_client *cl, const char *name,
		struct ufo_remote_info *out);
int client_timeout_ms(const struct ufo_client *cl);
/* Reads by one-sided RDMA READ after a MAP (cached per connection).
 * -EOPNOTSUPP when this client's transport cannot or the server would not
 * map the range: read it with ufo_client_read instead. */
int client_read_direct(struct ufo_client *cl, uint64_t id, uint64_t off,
		       void *buf, size_t len);
/* The same for a write: RDMA WRITE into the mapped range, then COMMIT,
 * answered once durable.  -EOPNOTSUPP: use ufo_client_write. */
int client_write_direct(struct ufo_client *cl, uint64_t id, uint64_t off,
			const void *src, size_t len);
/* One request: p1/p2 are sent after the header; the answer fills fixed
 * (exactly fixed_len bytes) then up to data_cap bytes of data. */
struct client_call {
	uint16_t op;
	const void *p1;
	size_t l1;
	const void *p2;
	size_t l2;
	void *fixed;
	size_t fixed_len;
	void *data;
	size_t data_cap;
	size_t data_len; /* out */
};
/* For the cluster layer: a client whose server may be down now (the
 * first connect's error is *connect_err; later requests reconnect). */
int client_new(const char *url, const struct ufo_remote_opts *opts,
	       struct ufo_client **out, int *connect_err);
int client_call_sync(struct ufo_client *cl, struct client_call *k);
/* Requests to several servers at once: start sends (k must live until
 * finish), finish waits and frees; finish(NULL) is -ENOMEM. */
struct client_op;
struct client_op *client_start(struct ufo_client *cl, struct client_call *k);
int client_finish(struct client_op *o);

/* remote.c: errors worth retrying (connection trouble, a busy or
 * stopping server, a stale placement), and the retry loop of remote and
 * cluster objects: fn runs until it succeeds, fails for good, or
 * timeout_ms has passed since the first attempt (doubling delays). */
bool remote_transient(int err);
struct remote_io {
	const char *name; /* for the log */
	int (*fn)(void *arg, bool write, uint64_t off, char *buf, size_t len);
	void *arg;
	int timeout_ms;
};
int remote_retry(struct ufo_obj *obj, const struct remote_io *io, bool write,
		 uint64_t off, void *buf, size_t len);

/* cluster.c: replicated objects.  cluster_url: whether url names several
 * servers ("a,b" or an empty host for $UFO_SERVERS, or a host name with
 * several addresses of one family), and which. */
bool cluster_url(const char *url, char *servers, size_t cap, char *name,
		 size_t name_cap);
int cluster_remote_open(struct ufo_ctx *ctx, const char *servers,
			const char *name, const struct ufo_remote_opts *opts,
			struct ufo_obj **out);

/* The server's name of a remote or replicated object, NULL for others. */
const char *remote_object_name(const struct ufo_obj *obj);

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
	unsigned flags;     /* UFO_READ_ONLY */
	bool wp;            /* installed write-protected, dirty via WP faults */
	const struct ufo_backend_ops *backend;
	void *backend_data;
	ufo_populate_fn populate;
	ufo_writeback_fn writeback;
	void *user;

	pthread_mutex_t lock;
	pthread_cond_t cond; /* broadcast when a chunk leaves a busy state */
	struct ufo_chunk *chunks;
	uint64_t *hashes;    /* hash mode: content hash at install */
	_Atomic int refs;    /* registry + in-progress users (handlers, evictor) */
	bool dying;          /* obj->lock: ufo_free has started */
	_Atomic uint32_t epoch; /* bumped by reset: older background loads
				 * are dropped (claim_load) */

	_Atomic int advice;  /* UFO_ADV_NORMAL / SEQUENTIAL / RANDOM */
	/* Readahead: the chunk a sequential scan will fault next, and the
	 * window (chunks) to load ahead of it.  Racy by design: a stale value
	 * only makes readahead less useful, never incorrect. */
	_Atomic uint64_t ra_next;
	_Atomic unsigned ra_window;
	_Atomic uint64_t ra_pos; /* chunk of the latest demand fault */

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

/*
 * Eviction order.  All ops run under ctx->policy_lock.  insert is told
 * whether the chunk was evicted recently (refault) and whether its object is
 * being scanned sequentially.
 */
struct ufo_policy_ops {
	const char *name;
	void (*insert)(struct ufo_ctx *ctx, struct ufo_chunk *c, bool refault,
		       bool sequential);
	void (*remove)(struct ufo_ctx *ctx, struct ufo_chunk *c);
	/* Unlinks and returns the next victim, or NULL when none is queued. */
	struct ufo_chunk *(*pick)(struct ufo_ctx *ctx);
};

extern const struct ufo_policy_ops ufo_policy_2q, ufo_policy_fifo;

struct chunk_list {
	struct ufo_chunk *head, *tail;
	uint64_t count;
};

/* Under obj->lock: queue a newly resident chunk / unqueue a leaving one. */
void policy_insert(struct ufo_obj *obj, struct ufo_chunk *c);
void policy_remove(struct ufo_obj *obj, struct ufo_chunk *c);

/* ------------------------------------------------------------------- uffd */

struct uffd_info {
	int fd;
	bool wp;          /* write-protect usable on anonymous memory */
};

int uffd_open(struct ufo_ctx *ctx, struct uffd_info *out);
int uffd_register(int fd, void *addr, size_t len, bool wp);
int uffd_unregister(int fd, void *addr, size_t len);
/* Installs len bytes from src at dst and wakes waiters.  Returns 0, or
 * -EEXIST when a page in the range is already present, or another -errno. */
int uffd_copy(int fd, void *dst, const void *src, size_t len, bool wp);
int uffd_write_protect(int fd, void *addr, size_t len, bool protect);
int uffd_wake(int fd, void *addr, size_t len);
/* 1 when the page at addr is present, 0 when not, or -errno. */
int page_present(int pagemap_fd, const void *addr);

/* ---------------------------------------------------------------- context */

struct work_item {
	struct work_item *next;
	struct ufo_obj *obj; /* holds a reference */
	uint64_t first, last; /* chunks to prefetch, inclusive */
	bool readahead;       /* skipped once the scan has passed it */
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
	struct chunk_list probation, protected_;
	uint32_t evict_seq;   /* chunks evicted so far (wraps) */

	struct ufo_counters stats;

	/* The HTTP monitor (monitor.c), NULL when off; its thread reads the
	 * counters above and walks the registry read-locked. */
	struct mon_server *monitor;
	char *monitor_addr;   /* cfg.monitor points here */
	uint64_t started_ns;  /* now_ns() at creation */
};

/* ------------------------------------------------------------ entry points */

void logf_ctx(const struct ufo_ctx *ctx, enum ufo_log_level lvl,
	      const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define log_err(ctx, ...) logf_ctx(ctx, UFO_LOG_ERROR, __VA_ARGS__)
#define log_warn(ctx, ...) logf_ctx(ctx, UFO_LOG_WARN, __VA_ARGS__)
#define log_info(ctx, ...) logf_ctx(ctx, UFO_LOG_INFO, __VA_ARGS__)
#define log_debug(ctx, ...) logf_ctx(ctx, UFO_LOG_DEBUG, __VA_ARGS__)

int config_apply_env(struct ufo_config *cfg, const struct ufo_ctx *ctx);
int config_finish(struct ufo_config *cfg);

/* Starts the HTTP monitor when cfg.monitor is set; a failure is logged
 * and leaves it off.  Stopped before objects are freed. */
void ctx_monitor_start(struct ufo_ctx *ctx);
void ctx_monitor_stop(struct ufo_ctx *ctx);
/* The mon_render_fn of a context (user is the ctx): its metrics in format. */
int ctx_monitor_render(void *user, enum mon_format format, struct mon_buf *out);

int handlers_start(struct ufo_ctx *ctx);
void handlers_stop(struct ufo_ctx *ctx);
/* A handler entered a callback and every handler is now busy. */
void watchdog_all_busy(struct ufo_ctx *ctx);
/* pthread_create with every signal blocked in the new thread. */
int spawn_masked(pthread_t *t, void *(*fn)(void *), void *arg);
/* Queues a background load of chunks [first, last] of obj. */
void prefetch_queue(struct ufo_obj *obj, uint64_t first, uint64_t last,
		    bool readahead);
/* Loads chunk idx if ABSENT, on the calling thread.  addr is the faulting
 * address and tid the thread to send SIGBUS on failure; both 0 for a
 * background load.  Returns 0 when loaded or already present, or -errno. */
int chunk_fetch(struct ufo_obj *obj, uint64_t idx, uintptr_t addr, pid_t tid,
		uint32_t epoch);

int evictor_start(struct ufo_ctx *ctx);
void evictor_stop(struct ufo_ctx *ctx);
/* Reserves room for len bytes about to be fetched.  A demand fetch (wait)
 * blocks until the budget has room or the evictor finds nothing it can
 * drop (then it goes over budget by len); a prefetch
 * returns -ENOSPC instead.  Release with budget_release(len) on failure. */
int budget_reserve(struct ufo_ctx *ctx, size_t len, bool wait);
void budget_release(struct ufo_ctx *ctx, size_t len);
void evictor_kick(struct ufo_ctx *ctx);
/* A reserved fetch of obj became resident / is taken back (copy failed). */
void budget_commit(struct ufo_obj *obj, size_t len);
void budget_uncommit(struct ufo_obj *obj, size_t len);
/* Resident bytes of obj dropped. */
void budget_uncharge(struct ufo_obj *obj, size_t len);

/* Writes back (if dirty) and drops every chunk of obj overlapping chunks
 * [first, last]; waits for busy chunks.  Returns 0 or the first error. */
int evict_range(struct ufo_obj *obj, uint64_t first, uint64_t last);
/* Drops every clean resident chunk of obj (ufo_refresh). */
int evict_clean(struct ufo_obj *obj);
/* Writes back every dirty chunk in [first, last], keeping them resident. */
int sync_range(struct ufo_obj *obj, uint64_t first, uint64_t last);

uint64_t chunk_hash(const void *p, size_t len);

#endif /* UFO_INTERNAL_H */
