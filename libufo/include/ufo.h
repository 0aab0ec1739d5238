/* SPDX-License-Identifier: MIT */
/*
 * libufo — userfault objects.
 *
 * A UFO is a region of memory whose contents are produced on demand, chunk by
 * chunk, the first time a thread touches them.  Resident memory is bounded by
 * the context's budget; dirty chunks are handed to the object's writeback
 * callback before their memory is dropped, so no write is lost.
 *
 * Conventions for every call in this header:
 *  - functions returning int return 0 (or a count) on success and a negative
 *    errno on failure; nothing here calls exit() or abort();
 *  - handles are opaque and owned by the caller that created them, until the
 *    matching destroy/free call;
 *  - all calls are thread-safe unless stated otherwise.
 */
#ifndef UFO_H
#define UFO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define UFO_VERSION_MAJOR 0
#define UFO_VERSION_MINOR 1

struct ufo_ctx;
struct ufo_obj;

/* ---------------------------------------------------------------- logging */

enum ufo_log_level {
	UFO_LOG_ERROR = 0,
	UFO_LOG_WARN = 1,
	UFO_LOG_INFO = 2,
	UFO_LOG_DEBUG = 3,
};

/* Called from any library thread, possibly concurrently; msg has no trailing
 * newline and is valid only during the call. */
typedef void (*ufo_log_fn)(void *user, enum ufo_log_level level,
			   const char *msg);

/* ---------------------------------------------------------------- context */

/* How writes are detected. */
enum ufo_dirty_mode {
	UFO_DIRTY_AUTO = 0, /* write-protect if the kernel has it, else hash
			     * (never scan: see UFO_DIRTY_SCAN) */
	UFO_DIRTY_WP = 1,   /* userfaultfd write-protect: a fault on first write */
	UFO_DIRTY_HASH = 2, /* compare a content hash when a chunk is dropped */
	/* Asynchronous write-protect (UFFD_FEATURE_WP_ASYNC, Linux 6.7+): no
	 * fault on any write; sync, eviction and DONTNEED ask the kernel
	 * (PAGEMAP_SCAN) which pages were written, and only those pages,
	 * coalesced into ranges, are written back (see ufo_writeback_fn).
	 * Its evictions cost more (two scans, a hash of every page and an
	 * mremap per chunk, written or not): chosen for sparse writes to
	 * large chunks, never by AUTO. */
	UFO_DIRTY_SCAN = 3,
};

/* Which resident chunk the evictor drops first. */
enum ufo_policy {
	UFO_POLICY_DEFAULT = 0, /* = UFO_POLICY_MQ */
	UFO_POLICY_2Q = 1,      /* scan-resistant: probation FIFO + protected
				 * FIFO, promotion fed by refault history */
	UFO_POLICY_FIFO = 2,    /* plain first-in first-out, for comparison */
	UFO_POLICY_MQ = 3,      /* queues by refault count: scan- and
				 * loop-resistant, frequency-aware */
};

struct ufo_config {
	/* Resident bytes of all UFO bodies.  Above high the evictor runs until
	 * resident is below low.  0 selects the default (1 GiB / 3/4 of high).
	 * Resident bytes stay at most high plus the chunks being loaded
	 * (each reserved before its fetch starts), whatever other calls run
	 * meanwhile, with one exception: when writebacks fail and nothing
	 * else can be dropped, loads go over the budget (logged) rather than
	 * wait forever or lose the unsaved data. */
	size_t high_watermark;
	size_t low_watermark;
	/* Fault-handling threads; 0 selects the default (2).  More are started
	 * on demand while callbacks touch other UFOs, up to UFO_MAX_THREADS. */
	unsigned threads;
	enum ufo_dirty_mode dirty_mode;
	enum ufo_policy policy;
	/* A failing populate or writeback is retried this many times, sleeping
	 * retry_delay_ms, then doubling, between attempts. */
	unsigned retries;
	unsigned retry_delay_ms;
	/* Log sink; NULL logs warnings and errors to stderr. */
	ufo_log_fn log;
	void *log_user;
	enum ufo_log_level log_level;
	/* HTTP monitor (docs/monitor.md): "ADDR:PORT" to serve /metrics,
	 * /api/v1/stats and the dashboard from a thread of the context, e.g.
	 * "127.0.0.1:9100" (port 0: any free port; ufo_ctx_monitor_url tells
	 * which).  NULL: off.  Read-only; binds to the address given, so keep
	 * it on loopback unless the network is trusted.  Copied by
	 * ufo_ctx_create.  A monitor that cannot start is logged and left off:
	 * the context works without it. */
	const char *monitor;
};

#define UFO_MAX_THREADS 64

/* Parses a byte count as the UFO_* variables take it: decimal digits, then
 * an optional binary suffix K, M, G or T (either case), optionally followed
 * by "i" and/or "B" ("64M", "64MiB", "1g").  0 and *out, -EINVAL for
 * anything else (signs, spaces, trailing text), -ERANGE on overflow. */
int ufo_parse_size(const char *s, uint64_t *out);

/* Fills *cfg with the defaults.  Environment variables are applied later, by
 * ufo_ctx_create, and override whatever the struct holds:
 *   UFO_HIGH_WATERMARK, UFO_LOW_WATERMARK  bytes; suffix K/M/G/T (binary
 *                                          multiples, "iB" or "B" may follow)
 *   UFO_THREADS                            number
 *   UFO_DIRTY_MODE                         auto | wp | hash | scan
 *   UFO_POLICY                             mq | 2q | fifo
 *   UFO_RETRIES, UFO_RETRY_DELAY_MS        number
 *   UFO_LOG_LEVEL                          error | warn | info | debug
 *   UFO_MONITOR                            ADDR:PORT, or "off" */
void ufo_config_init(struct ufo_config *cfg);

/* Creates a context: opens userfaultfd and starts the handler and evictor
 * threads.  cfg may be NULL (defaults).  On success *out owns the context.
 * Errors: -EPERM/-EACCES when userfaultfd is refused (the log names
 * vm.unprivileged_userfaultfd), -EINVAL for an invalid configuration
 * (including a malformed UFO_* variable), -ENOSYS without userfaultfd,
 * -ENOTSUP when UFO_DIRTY_WP or UFO_DIRTY_SCAN is forced but unavailable,
 * -ENOMEM. */
int ufo_ctx_create(const struct ufo_config *cfg, struct ufo_ctx **out);

/* Frees every object still alive (writing back dirty chunks), stops the
 * threads and releases the context.  Returns 0 or the first writeback error;
 * the context is released either way.  No other call on ctx or its objects
 * may run concurrently or afterwards. */
int ufo_ctx_destroy(struct ufo_ctx *ctx);

/* The configuration in force, after defaults and environment overrides:
 * dirty_mode and policy are resolved (never AUTO or DEFAULT). */
void ufo_ctx_config(const struct ufo_ctx *ctx, struct ufo_config *out);

/* The monitor's address, "http://HOST:PORT/" with the port bound, into buf
 * (NUL-terminated).  0, -ENOTCONN when the monitor is off or did not
 * start, -ENOSPC when len is too small. */
int ufo_ctx_monitor_url(const struct ufo_ctx *ctx, char *buf, size_t len);

/* The dirty-tracking mode in use (never UFO_DIRTY_AUTO) and its name. */
enum ufo_dirty_mode ufo_ctx_dirty_mode(const struct ufo_ctx *ctx);
const char *ufo_dirty_mode_name(enum ufo_dirty_mode mode);

/* ---------------------------------------------------------------- objects */

/* Fill dst, (end - start) * elem_size bytes, with elements [start, end).
 * Runs on a library thread; may read other UFOs.  Return 0 or a negative
 * errno; a failure is retried, then the faulting thread gets SIGBUS. */
typedef int (*ufo_populate_fn)(void *user, uint64_t start, uint64_t end,
			       void *dst);

/* Persist elements [start, end), whose bytes are at src.  Called for every
 * dirty chunk before its memory is dropped, and by sync, reset and free.
 * Return 0 once the data is safe; on failure the chunk stays dirty and
 * resident.  In UFO_DIRTY_WP and UFO_DIRTY_HASH modes [start, end) is a
 * whole chunk and, while the call runs, the range is write-protected
 * (writers wait).  In UFO_DIRTY_SCAN mode it is called once per run of
 * written pages within a chunk (widened to whole elements, runs in
 * ascending order, never overlapping), src is a private copy, and writers
 * go on meanwhile; a failure makes every run of that chunk be offered
 * again later. */
typedef int (*ufo_writeback_fn)(void *user, uint64_t start, uint64_t end,
				const void *src);

enum ufo_obj_flags {
	UFO_READ_ONLY = 1 << 0, /* a write raises SIGSEGV, as on PROT_READ */
	/* The body is made of 2 MiB huge pages (MAP_HUGETLB) installed 2 MiB
	 * at a time: chunks are whole huge pages (chunk_size rounded up to a
	 * multiple of 2 MiB), one fault and one TLB entry per 2 MiB.  Needs
	 * huge pages reserved (sysctl vm.nr_hugepages): the high watermark's
	 * worth plus a few; -ENOMEM at creation when none is free, and a
	 * load that finds none fails as a populate error would.  Dirty
	 * chunks are found by hashing (UFO_DIRTY_HASH), whatever the
	 * context's mode: write protection of hugetlb memory is not probed. */
	UFO_HUGE = 1 << 1,
};

struct ufo_params {
	/* Bytes before the body: zero-filled, always resident, never evicted.
	 * The header ends exactly where the body begins. */
	size_t header_size;
	size_t elem_size;   /* bytes per element, > 0 */
	uint64_t elem_count; /* elements in the body, > 0 */
	/* Minimum load in bytes.  0 selects 1 MiB.  Rounded up to a multiple
	 * of both the page size and elem_size; see ufo_chunk_size(). */
	size_t chunk_size;
	unsigned flags;     /* enum ufo_obj_flags */
	ufo_populate_fn populate;   /* required */
	ufo_writeback_fn writeback; /* optional; NULL discards writes on drop */
	void *user;                 /* passed to both callbacks */
};

#define UFO_DEFAULT_CHUNK_SIZE ((size_t)1 << 20)

void ufo_params_init(struct ufo_params *p);

/* Creates an object in ctx.  On success *out owns it until ufo_free.
 * Errors: -EINVAL (zero sizes, no populate, size overflow), -ENOMEM,
 * or the -errno of mmap/userfaultfd registration. */
int ufo_create(struct ufo_ctx *ctx, const struct ufo_params *p,
	       struct ufo_obj **out);

/* Writes back every dirty chunk, unmaps the object and frees it.  Returns 0
 * or the first writeback error (the object is freed either way, and the
 * error has been logged).  No thread may touch the object concurrently. */
int ufo_free(struct ufo_obj *obj);

void *ufo_header(const struct ufo_obj *obj); /* NULL when header_size is 0 */
void *ufo_body(const struct ufo_obj *obj);
size_t ufo_header_size(const struct ufo_obj *obj);
size_t ufo_elem_size(const struct ufo_obj *obj);
uint64_t ufo_elem_count(const struct ufo_obj *obj);
size_t ufo_chunk_size(const struct ufo_obj *obj); /* after rounding */

/*
 * Sweeps: ufo_sync, ufo_reset, ufo_refresh and ufo_advise DONTNEED visit
 * each chunk of their range once, while other threads may go on faulting.
 * Each finishes in time bounded by the object's size and the backend's
 * latency (the writebacks it makes, the loads in progress it waits for),
 * whatever other threads do; faults meanwhile keep the budget (see
 * high_watermark).  A chunk touched again after the sweep passed it may be
 * resident (and dirty) when the sweep returns.
 */

/* Writes back every dirty chunk now (like msync); chunks stay resident and
 * clean.  Returns 0 or the first writeback error (-EIO class); the failed
 * chunks stay dirty. */
int ufo_sync(struct ufo_obj *obj);

/* Writes back dirty chunks, then drops every chunk: the next touch
 * repopulates.  The header is kept.  Returns 0 or the first writeback error;
 * chunks whose writeback failed stay resident and dirty. */
int ufo_reset(struct ufo_obj *obj);

/* The object whose header or body contains addr: 0 and *out, or -ENOENT. */
int ufo_lookup(struct ufo_ctx *ctx, const void *addr, struct ufo_obj **out);

enum ufo_advice {
	UFO_ADV_NORMAL = 0,     /* default readahead and eviction */
	UFO_ADV_SEQUENTIAL = 1, /* aggressive readahead; evict behind the scan */
	UFO_ADV_RANDOM = 2,     /* no readahead */
	UFO_ADV_WILLNEED = 3,   /* load [start, end) in the background */
	UFO_ADV_DONTNEED = 4,   /* write back and drop [start, end) now */
};

/* Applies a hint.  NORMAL, SEQUENTIAL and RANDOM apply to the whole object
 * (start and end are ignored); WILLNEED and DONTNEED to the chunks that
 * overlap elements [start, end).  Errors: -EINVAL (bad advice or range),
 * and for DONTNEED the first writeback error. */
int ufo_advise(struct ufo_obj *obj, uint64_t start, uint64_t end,
	       enum ufo_advice advice);

/* --------------------------------------------------------- remote objects */

/*
 * Objects stored on ufo-server (docs/protocol.md).  URLs name a server and,
 * for objects, a name: "ufo://host:port/name" (also tcp://; port defaults
 * to 7070; IPv6 as [addr]:port).  Names are 1-255 bytes of [A-Za-z0-9._-]
 * not starting with '.'.  Every connection authenticates with the shared
 * secret read from opts->secret_file, else $UFO_SECRET_FILE (at least 16
 * bytes; keep the file private: the library does not check its mode).
 */
struct ufo_client;

enum ufo_remote_flags {
	/* UFO_READ_ONLY (1 << 0) and UFO_HUGE (1 << 1) apply too */
	UFO_REMOTE_CREATE = 1 << 8, /* ufo_remote_open: create if missing */
};

struct ufo_remote_opts {
	const char *secret_file; /* NULL: $UFO_SECRET_FILE */
	unsigned timeout_ms;     /* per request; 0: 5000 */
	unsigned connections;    /* connections per client; 0: 2 */
	unsigned flags;          /* UFO_READ_ONLY, UFO_REMOTE_CREATE */
	uint64_t create_size;    /* bytes, with UFO_REMOTE_CREATE */
	size_t chunk_size;       /* 0: the object's chunk size on the server
				  * (when creating: UFO_DEFAULT_CHUNK_SIZE) */
	/* Replicated objects (several servers; docs/cluster.md), used when
	 * creating one; an existing object keeps the values it was created
	 * with. */
	unsigned replicas;       /* R; 0: min(2, servers) */
	unsigned write_quorum;   /* W, 1..R; 0: R */
	uint64_t group_size;     /* bytes per placement group, a multiple of
				  * the chunk size; 0: 4 chunks */
};

void ufo_remote_opts_init(struct ufo_remote_opts *o);

struct ufo_remote_info {
	char name[256];
	uint64_t id;         /* the server's id for the object */
	uint64_t size;       /* bytes */
	uint32_t chunk_size; /* the object's default chunk size */
	uint64_t allocated;  /* bytes used on the server's disk */
	uint64_t mtime_ns;
	unsigned flags;      /* UFO_REMOTE_REPLICATED */
};
/* The server holds part of a replicated object (see clusters below);
 * ufo_remote_open of it through that server alone is -EXDEV. */
#define UFO_REMOTE_REPLICATED 1u

/* Connects and authenticates to the server of url (any name part is
 * ignored).  Errors: -EINVAL (bad url; no secret file given; secret shorter
 * than 16 bytes), the -errno of opening the secret file (-ENOENT, and
 * -EACCES, which is also what a wrong secret gets), -ECONNREFUSED,
 * -ETIMEDOUT, -EHOSTUNREACH (also for a host name that does not resolve),
 * -EPROTONOSUPPORT, -EOPNOTSUPP or -ENODEV (rdma:// without RDMA support
 * in the build, or without a device), -EKEYREJECTED (tls:// and a server
 * certificate that does not verify), other -errno.  The client is
 * thread-safe: requests from several threads are pipelined over its
 * connections, which reconnect (with backoff) after failures. */
int ufo_client_connect(const char *url, const struct ufo_remote_opts *opts,
		       struct ufo_client **out);
void ufo_client_close(struct ufo_client *c);
/* The server's text explaining this thread's last failed client request
 * ("" if it sent none).  Valid until the thread's next request. */
const char *ufo_client_last_error(void);

int ufo_client_create(struct ufo_client *c, const char *name, uint64_t size,
		      uint32_t chunk_size, struct ufo_remote_info *out);
int ufo_client_stat(struct ufo_client *c, const char *name,
		    struct ufo_remote_info *out);
int ufo_client_delete(struct ufo_client *c, const char *name);
/* Calls fn for every object; a non-zero return from fn stops the listing
 * and is returned. */
int ufo_client_list(struct ufo_client *c,
		    int (*fn)(void *user, const struct ufo_remote_info *info),
		    void *user);
/* Byte ranges of object id; len <= 16 MiB per call.  A write returns once
 * the server has made it durable.  -ERANGE past the end. */
int ufo_client_read(struct ufo_client *c, uint64_t id, uint64_t offset,
		    void *buf, size_t len);
int ufo_client_write(struct ufo_client *c, uint64_t id, uint64_t offset,
		     const void *buf, size_t len);
int ufo_client_sync(struct ufo_client *c, uint64_t id);

/* Maps a server object as a UFO of bytes (elem_size 1, no header): faults
 * read chunks from the server, evicted dirty chunks are written back and
 * dropped only after the server acknowledged them durable.  Consistency is
 * close-to-open: ufo_sync publishes this client's writes; ufo_refresh drops
 * clean chunks so the next touch sees other clients' synced writes.
 * Transient failures are retried with doubling delays until opts->timeout_ms
 * has passed (the context's retries/retry_delay_ms apply to callbacks
 * only); a fetch that still fails raises SIGBUS in the faulting thread.
 * Free with ufo_free. */
int ufo_remote_open(struct ufo_ctx *ctx, const char *url,
		    const struct ufo_remote_opts *opts, struct ufo_obj **out);

struct ufo_client_stats {
	char server[280];     /* host:port ([v6]:port) */
	char transport[8];    /* "tcp", "rdma" or "tls" */
	unsigned connections; /* in the pool */
	unsigned connected;   /* of those, up now */
	uint64_t requests;    /* completed, successful or not */
	uint64_t errors;
	uint64_t bytes_in, bytes_out; /* payload bytes */
	uint64_t latency_us;  /* recent request latency (moving mean) */
	uint64_t direct_reads; /* chunks fetched by one-sided RDMA READ */
	uint64_t direct_writes; /* chunks written back by RDMA WRITE + COMMIT */
};

/* Counters of a client / of the client behind a remote object (-EINVAL
 * for an object that is not remote). */
int ufo_client_status(struct ufo_client *c, struct ufo_client_stats *out);
int ufo_remote_status(const struct ufo_obj *obj, struct ufo_client_stats *out);

/* ------------------------------------------------------------- clusters */

/*
 * Several ufo-servers form a cluster with no coordinator (docs/cluster.md).
 * An object is cut into placement groups; rendezvous hashing over the
 * servers' node ids picks R of them ("homes") for each group.  Every block
 * on a server carries a version; reads take the newest copy among the
 * homes, writes go to R live servers (a stand-in records a hint when a
 * home is down) and succeed once W have made them durable.
 *
 * ufo_remote_open accepts a server list in the URL,
 * "ufo://host1:7070,host2:7070,host3:7070/name", or an empty host,
 * "ufo:///name", for the list in $UFO_SERVERS ("host:port,host:port").  A
 * host name that resolves to several addresses (a Kubernetes headless
 * Service) is one server per address.
 */
struct ufo_cluster;

/* Connects to every server of the list ("host:port,..." with an optional
 * scheme prefix, as in URLs; NULL: $UFO_SERVERS).  Servers down now are
 * tried again in the background.  -EINVAL (bad list), -EHOSTDOWN (none
 * reachable), the secret errors of ufo_client_connect. */
int ufo_cluster_connect(const char *servers, const struct ufo_remote_opts *opts,
			struct ufo_cluster **out);
void ufo_cluster_close(struct ufo_cluster *c);

struct ufo_cluster_member {
	char server[280];      /* host:port */
	char node_id[33];      /* hex; "" until the server was reached once */
	int up;
	uint64_t objects;      /* on the server, at the last health check */
	uint64_t failures;     /* requests that failed over it */
};

/* Fills up to max members; returns how many there are, or -errno. */
int ufo_cluster_members(struct ufo_cluster *c, struct ufo_cluster_member *out,
			unsigned max);

struct ufo_repair_stats {
	uint64_t objects;         /* objects visited */
	uint64_t groups;          /* groups to visit */
	uint64_t groups_done;
	uint64_t groups_moved;    /* rebalance: groups whose homes changed */
	uint64_t replicas_moved;  /* rebalance: (group, new home) pairs */
	uint64_t blocks_copied;
	uint64_t bytes_copied;
	uint64_t blocks_discarded; /* copies removed from non-homes */
	uint64_t hints;           /* missing copies recorded (repair backlog) */
	uint64_t hints_dropped;   /* of those, forgotten after the repair */
	uint64_t errors;          /* groups left unrepaired (a home down) */
};

enum ufo_repair_flags {
	UFO_REPAIR_FULL = 1 << 0,      /* every group, not just hinted ones */
	UFO_REPAIR_REBALANCE = 1 << 1, /* place objects over all servers of
					* the list first (implies FULL) */
	UFO_REPAIR_DRY_RUN = 1 << 2,   /* change nothing: count what would be
					* copied and discarded (the backlog) */
};

/* Repairs one object (name) or all (NULL): every home of every visited
 * group gets the newest version of each block, then copies on servers
 * that are not homes are dropped.  progress (may be NULL) is called after
 * each group.  Returns 0 when everything visited is repaired, -EAGAIN when
 * some groups could not be (a home down: see stats.errors), -ENOENT when
 * name is not a replicated object, or -errno. */
int ufo_cluster_repair(struct ufo_cluster *c, const char *name, unsigned flags,
		       void (*progress)(void *user,
					const struct ufo_repair_stats *s),
		       void *user, struct ufo_repair_stats *out);

/* Drops every clean resident chunk of obj (dirty ones stay), so that later
 * touches reload them.  In hash and scan modes, where clean and dirty are
 * told apart only when a chunk is dropped, changed chunks are written back
 * and dropped too.  0 or
 * -errno. */
int ufo_refresh(struct ufo_obj *obj);

/* ------------------------------------------------------------- statistics */

#define UFO_HIST_BUCKETS 24

struct ufo_stats {
	uint64_t faults;          /* missing-page faults handled */
	uint64_t wp_faults;       /* first writes to clean chunks */
	uint64_t populate_calls;
	uint64_t populate_ns;     /* total time inside populate */
	uint64_t populate_errors; /* failed attempts, before retries */
	uint64_t bytes_loaded;
	uint64_t prefetches;      /* chunks loaded by readahead or WILLNEED */
	uint64_t evictions;       /* chunks dropped */
	uint64_t writebacks;      /* writeback calls that succeeded */
	uint64_t writeback_bytes;
	uint64_t writeback_errors;
	uint64_t sigbus;          /* faulting threads sent SIGBUS */
	uint64_t resident_bytes;  /* now */
	uint64_t dirty_bytes;     /* now; 0 in hash and scan modes (unknown
				   * until a sync or drop) */
	uint64_t high_watermark;  /* context values, repeated for objects */
	uint64_t low_watermark;
	/* Time from reading a fault to waking the thread.  Bucket 0 counts
	 * faults under 1 µs, bucket i >= 1 those in [2^(i-1), 2^i) µs; the
	 * last bucket also holds everything slower. */
	uint64_t fault_latency_us[UFO_HIST_BUCKETS];
	/* How loaded bytes were installed: pages moved in from the object's
	 * page pool (UFFDIO_MOVE, no copy) or copied (UFFDIO_COPY), and the
	 * pages of evicted chunks kept in the pool for the next loads
	 * instead of being dropped.  bytes_moved + bytes_copied + bytes_holes
	 * (below) is bytes_loaded. */
	uint64_t bytes_moved;
	uint64_t bytes_copied;
	uint64_t pages_recycled;
	/* Bytes the backend reported never written (a sparse hole on the
	 * server): installed as zeros, nothing transferred. */
	uint64_t bytes_holes;
	/* Context values, repeated for objects: backend ios (fetches and
	 * stores) in flight now and the most ever at once, and the
	 * fault-handling threads alive. */
	uint64_t ios_in_flight;
	uint64_t ios_in_flight_max;
	uint64_t handler_threads;
	/* Bytes of the chunks that successful writebacks covered.  Outside
	 * scan mode a writeback sends its whole chunk and this equals
	 * writeback_bytes; in scan mode writeback_bytes counts only the
	 * written pages sent, so writeback_bytes / writeback_chunk_bytes is
	 * the share of chunk bytes that had to cross to the backend. */
	uint64_t writeback_chunk_bytes;
	/* Readahead (part of prefetches): chunks it loaded, and of those the
	 * ones used later: passed by the scan that asked for them while
	 * still resident, or faulted on while loading ("late", a fault that
	 * waited less).  Accuracy is used / chunks, coverage the faults
	 * avoided (used - late) over the faults there would have been
	 * without readahead (avoided + faults), both in parts per thousand
	 * (0 when nothing was loaded). */
	uint64_t readahead_chunks;
	uint64_t readahead_used;
	uint64_t readahead_late;
	uint64_t readahead_accuracy_pm;
	uint64_t readahead_coverage_pm;
};

/* Snapshot of one object's counters (resident/dirty are the object's). */
int ufo_obj_stats(const struct ufo_obj *obj, struct ufo_stats *out);
/* Snapshot of the whole context: every object ever created in it. */
int ufo_ctx_stats(const struct ufo_ctx *ctx, struct ufo_stats *out);
/* Upper bound in µs of the bucket holding the p-th percentile (0 < p <= 100)
 * of fault latency; 0 when no fault was recorded. */
uint64_t ufo_stats_latency_percentile(const struct ufo_stats *s, double p);

#ifdef __cplusplus
}
#endif
#endif /* UFO_H */
