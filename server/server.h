/* SPDX-License-Identifier: MIT */
/*
 * ufo-server internals.  Threads:
 *   loop (main thread, net/loop.c, net/session.c): epoll over the
 *     listening socket, the RDMA listener, every connection (through its
 *     connection type: a TCP or TLS socket, an RDMA queue pair's completion
 *     channels), a signalfd and a wake eventfd; accepts, runs TLS
 *     handshakes, reads and checks frames, runs HELLO/AUTH, hands requests
 *     to the workers;
 *   workers (net/workers.c, ops/handlers.c): run requests against the
 *     store;
 *   committer (ops/commit.c): makes WRITEs durable in groups and answers
 *     them.
 * No transport adds a thread.  Any thread may answer a request (conn.c);
 * sending is non-blocking, and what the transport does not take at once
 * is sent by the loop when it reports room (EPOLLOUT, or a SEND
 * completion).
 */
#ifndef UFO_SERVER_H
#define UFO_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "store.h"
#include "transport.h"

/* Per-connection bounds: past either, the loop stops reading the socket
 * until answers drain, so a client cannot make the server buffer more. */
#define CONN_MAX_INFLIGHT 64                  /* requests */
#define CONN_MAX_INFLIGHT_BYTES ((size_t)64 << 20) /* request + answer data */
#define CONN_FRAMES_PER_WAKE 16 /* fairness between connections */
#define SHUTDOWN_DRAIN_MS 30000 /* in-flight answers after SIGTERM */
#define LOOP_TICK_MS 1000
/* A closing connection whose type completes sends later (RDMA) and whose
 * last answers have not left after this long is dropped (loop.c). */
#define CONN_LINGER_MS 5000
#define LISTEN_BACKLOG 512

struct outbuf {
	struct outbuf *next;
	size_t len, off; /* frame bytes, bytes already sent */
	uint8_t data[];  /* header, then payload */
};

struct request;
struct conn;
struct rdma_server;
struct store_obj;

/*
 * What the server adds to a connection's transport type (transport.h):
 * the loop moves bytes through the non-blocking half of c->t's ops
 * (conn_io.c), the same type the client connects with; a conn_type here
 * says how a connection of the server ends and what MAP, COMMIT and UNMAP
 * do on it.
 *
 * Threads: c->t's read and event run on the loop thread (event under
 * c->lock); its writev and send_idle, and conn_watch/conn_unwatch, under
 * c->lock on any thread; map, commit and unmap on workers; close once,
 * from the last conn_put.
 */
struct conn_type {
	/* Begins tearing down as the loop reaps c: the peer sees the end. */
	void (*shutdown)(struct conn *c);
	/* Frees the server's state (tp) before c->t closes.  NULL: none. */
	void (*close)(struct conn *c);
	/* MAP and COMMIT (handlers.c): one-sided access to a range of o for
	 * this connection's peer.  NULL (TCP, TLS): -EINVAL to the client. */
	int (*map)(struct conn *c, struct store_obj *o, uint64_t off,
		   uint32_t len, struct wire_map *out);
	int (*commit)(struct conn *c, struct store_obj *o, uint64_t off,
		      uint32_t len);
	/* UNMAP: drops the registration MAP made of [off, off + len) of
	 * object id with rkey.  0, or -ENOENT when c holds none.  NULL:
	 * -EINVAL to the client. */
	int (*unmap)(struct conn *c, uint64_t id, uint64_t off, uint32_t len,
		     uint32_t rkey);
};

/* conn_io.c: byte streams (TCP, TLS), nothing one-sided. */
extern const struct conn_type conn_stream;
extern const struct conn_type conn_rdma; /* conn_rdma.c */
/* conn_io.c: c->t's non-blocking half as the loop uses it. */
ssize_t conn_read(struct conn *c, void *buf, size_t len);
ssize_t conn_writev(struct conn *c, const struct iovec *iov, int iovcnt);
/* Makes the loop report c when it may read (EPOLLIN in want) or write
 * (EPOLLOUT) and on errors, through every descriptor c->t waits on (a
 * handshake or RDMA may ask for other bits); add is the first call.
 * Unchanged descriptors are left alone.  0/-errno. */
int conn_watch(struct conn *c, uint32_t want, bool add);
/* Out of the loop's epoll set for good. */
void conn_unwatch(struct conn *c);

struct conn {
	struct server *srv;
	const struct conn_type *type;
	struct ufo_conn *t; /* the transport's connection */
	int fd;   /* a name for logs: the socket, or RDMA's receive channel */
	void *tp; /* the server type's state (RDMA: its MAP registrations) */
	/* What conn_watch registered (under lock). */
	int wfd[UFO_CONN_MAX_FDS];
	uint32_t wev[UFO_CONN_MAX_FDS];
	int nwfd;
	atomic_uint refs; /* the loop's, one per request in flight */
	/* Loop thread only. */
	struct conn *prev, *next;
	struct wire_hs hs;  /* HELLO + AUTH; DONE once authenticated */
	uint16_t version;   /* of our answers: hs.version as it goes */
	int64_t auth_deadline_ms;
	uint8_t hdr_raw[sizeof(struct wire_hdr)]; /* header being received */
	struct wire_hdr hdr; /* decoded once hdr_raw is whole */
	size_t hdr_got, payload_got;
	uint8_t *payload;
	/* Under lock. */
	pthread_mutex_t lock;
	struct outbuf *out_head, *out_tail;
	unsigned inflight;
	size_t inflight_bytes;
	unsigned writes_inflight;
	struct request *barrier; /* a SYNC waiting for earlier WRITEs */
	bool closing; /* read no more; close once answers are out */
	bool dead;    /* the socket failed: drop answers */
	/* Over --max-connections (loop_join, LOOP_REFUSE): the first frame,
	 * a HELLO, is answered EBUSY and the connection closes.  Loop thread
	 * only. */
	bool refused;
	bool reaping; /* handed to the loop to close */
	bool registered; /* in the epoll set */
	bool read_on;    /* may_read when last looked at (buffering types) */
	bool kicked;     /* on the server's ready list */
	struct conn *ready_next;
	size_t out_bytes; /* queued, unsent */
	uint32_t events; /* epoll mask registered */
	int64_t linger_deadline_ms; /* closing, answers not out: 0 or when */
};

struct request {
	struct request *next;
	struct conn *conn; /* holds a reference */
	struct wire_hdr hdr;
	uint8_t *payload;
	size_t cost; /* bytes counted in conn->inflight_bytes */
	struct store_obj *obj; /* WRITE/SYNC on their way to the committer */
	struct vpend *vpend;   /* VWRITE: versions to record once durable */
	int rc;
};

/* Requests answered by the committer once durable; a SYNC waits for them. */
static inline bool request_is_write(const struct request *r)
{
	return r->hdr.op == WIRE_WRITE || r->hdr.op == WIRE_COMMIT ||
	       r->hdr.op == WIRE_VWRITE;
}

struct work_queue {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct request *head, *tail;
	bool stop;
};

/* Relaxed atomic counters, read by the HTTP monitor's thread (monitor.c).
 * ops counts requests run by the workers (and READs answered inline) by
 * enum wire_op; errors the error answers of handlers.c and commit.c;
 * read_bytes/written_bytes the data of successful READs and WRITEs. */
#define SERVER_STATS_OPS 32
struct server_stats {
	atomic_uint_fast64_t writes, fdatasyncs, batches, requests;
	atomic_uint_fast64_t ops[SERVER_STATS_OPS], errors;
	atomic_uint_fast64_t read_bytes, written_bytes;
};

static inline void server_count(atomic_uint_fast64_t *counter, uint64_t n)
{
	atomic_fetch_add_explicit(counter, n, memory_order_relaxed);
}

/* What the network layer (loop, session, workers) hands requests to: the
 * ops layer's handlers (handlers.c), set by main.  The network layer
 * never calls a handler by name, so the two have no call circle. */
struct server_handlers {
	/* Runs r on a worker thread and answers it. */
	void (*run)(struct server *srv, struct request *r);
	/* On the loop thread: answers r now and returns true, or false (it
	 * goes to the workers); NULL: always the workers. */
	bool (*run_inline)(struct server *srv, struct request *r);
};
extern const struct server_handlers server_handlers;

struct server {
	struct server_config cfg;
	const struct server_handlers *handlers;
	uint8_t secret[WIRE_MAX_SECRET];
	size_t secret_len;
	struct store *store;
	/* --listen: TCP, or TLS with --tls-cert; NULL once stopping.  port
	 * is the one it got (for --listen port 0). */
	struct ufo_listener *listener;
	int port;
	int epoll_fd, wake_fd, signal_fd;
	struct conn *conns; /* loop thread only */
	atomic_uint nconns; /* changed by the loop only; atomic for the monitor */
	bool stopping;
	bool accept_paused; /* out of fds: listening socket left the epoll set */
	struct rdma_server *rdma; /* the RDMA listener (conn_rdma.c) or NULL */
	/* With --tls-cert: the certificate and priorities (conn_tls.c);
	 * accepted sockets are then TLS connections. */
	struct tls_server *tls;
	pthread_mutex_t reap_lock;
	struct conn **reap; /* connections to close, from any thread */
	size_t nreap, reap_cap;
	struct conn *ready; /* to read again (buffering types), reap_lock */
	struct work_queue work, commit;
	pthread_t *workers, committer;
	unsigned nworkers;
	struct server_stats stats;
	struct server_monitor *monitor; /* monitor.c, with --monitor */
};

/* conn_rdma.c: the RDMA listener, on the loop's epoll set with data.ptr
 * srv->rdma (TCP only when no device or no rdma-core: 0 or -errno, logged;
 * the server runs on).  rdma_listener_events handles its events. */
int rdma_listener_start(struct server *srv, const struct net_addr *addr);
void rdma_listener_events(struct server *srv);
void rdma_listener_stop(struct server *srv);
/* conn_tls.c: with --tls-cert, loads the certificate and key into
 * srv->tls (0, or -errno after logging why); cleanup frees them. */
int conn_tls_setup(struct server *srv);
void conn_tls_cleanup(struct server *srv);
/* loop.c, --max-connections for a new connection (loop thread):
 * LOOP_ROOM, LOOP_REFUSE (over the limit: answer EBUSY in the
 * connection's own protocol), or LOOP_DROP (so far over that even a
 * refusal would cost too much: close without a word). */
enum loop_admit { LOOP_ROOM, LOOP_REFUSE, LOOP_DROP };
enum loop_admit loop_admit(const struct server *srv);
/* A connection a listener handed out (the transport's tc, with the server
 * type's state tp) joins the loop as admit says (loop thread): the conn,
 * or NULL when it was dropped (LOOP_DROP, or stopping) or could not join;
 * tp is then freed by type->close and tc closed.  LOOP_REFUSE: the peer
 * (TLS, RDMA) can read a refusal only after that transport's own setup,
 * so c joins the loop, and its HELLO is answered EBUSY (session.c), then
 * c closes.  Answering the HELLO rather than sending at once matters:
 * closing with the HELLO unread would reset the connection, and the
 * client could see the reset before the answer.  A peer that stalls is
 * closed at the auth deadline like any other. */
struct conn *loop_join(struct server *srv, const struct conn_type *type,
		       struct ufo_conn *tc, void *tp, enum loop_admit admit);
/* Refused connections the loop keeps open at once, past the limit. */
#define LOOP_REFUSING_MAX 64

/* monitor.c: the HTTP monitor, when cfg.monitor is set.  start prints
 * "monitor on URL" on stdout; 0 or -errno (logged). */
int server_monitor_start(struct server *srv);
void server_monitor_stop(struct server *srv);

/* conn.c */
/* A connection of the server's type over the transport's tc (owned from
 * here on), named fd in logs, with state tp.  NULL when out of memory
 * (nothing closed). */
struct conn *conn_new(struct server *srv, const struct conn_type *type,
		      struct ufo_conn *tc, int fd, void *tp);
void conn_get(struct conn *c);
void conn_put(struct conn *c);
/* Frees the server type's state (tp), then closes c->t: what the last
 * conn_put does, and what a conn that never was made needs. */
void conn_close_transport(struct conn *c);
struct outbuf *outbuf_new(size_t payload_len);
static inline uint8_t *outbuf_payload(struct outbuf *ob)
{
	return ob->data + sizeof(struct wire_hdr);
}
/* Frames and queues an answer to hdr (ob may be NULL: empty payload; it
 * is consumed).  For the loop's own answers, which are not requests. */
void conn_answer(struct conn *c, const struct wire_hdr *hdr, uint32_t status,
		 struct outbuf *ob);
void conn_answer_copy(struct conn *c, const struct wire_hdr *hdr,
		      const void *payload, size_t len);
/* An error answer whose payload is a printf-formatted message. */
void conn_error(struct conn *c, const struct wire_hdr *hdr, uint32_t status,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Stops reading c; it closes once its answers are out. */
void conn_close_soon(struct conn *c);
bool conn_may_read(struct conn *c);
/* Sends what the socket takes; called by the loop on EPOLLOUT. */
void conn_flush(struct conn *c);
/* Runs c->t's event under c->lock: its UFO_EV_* bits, or -errno (c is
 * then dead).  Watches what the transport now waits for; when the result
 * is not 0, flushes in the same critical section (UFO_EV_WRITABLE: room
 * may have appeared; an error: the output is dropped), and on
 * UFO_EV_READABLE has the loop read c again. */
int conn_event(struct conn *c);

/* Requests in flight: request_start counts one on its connection;
 * request_done / request_fail answer it and free it. */
struct request *request_new(struct conn *c, const struct wire_hdr *hdr,
			    uint8_t *payload);
void request_start(struct request *r, size_t cost);
void request_done(struct request *r, uint32_t status, struct outbuf *ob);
void request_fail(struct request *r, uint32_t status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void request_free(struct request *r);
/* Hands r to the workers once every WRITE started before it on its
 * connection is answered; until then the connection is not read. */
void request_after_writes(struct request *r);

/* workers.c */
void queue_init(struct work_queue *q);
void queue_push(struct work_queue *q, struct request *r);
/* Waits for requests; NULL once stopped and empty.  all: take the whole
 * queue as a list (the committer's batches), else one. */
struct request *queue_pop(struct work_queue *q, bool all);
void queue_stop(struct work_queue *q);
int workers_start(struct server *srv);
void workers_stop(struct server *srv);

/* handlers.c: runs a request on a worker; answers it. */
void handle_request(struct server *srv, struct request *r);
/* Answers a READ of at most INLINE_READ_MAX bytes on the calling (event
 * loop) thread when its data is in the page cache; false: queue it. */
bool handle_read_inline(struct server *srv, struct request *r);
#define INLINE_READ_MAX (64u << 10)

/* Shared by the handler files: request_fail counting the error; the
 * status of a storage errno; handing a written request to the committer
 * (takes o's reference). */
void handler_fail(struct request *r, uint32_t status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
uint32_t handler_storage_status(int rc);
void handler_submit_durable(struct server *srv, struct request *r,
			    struct store_obj *o, uint32_t len);

/* handlers_cluster.c: the replication ops (docs/cluster.md). */
void handle_vwrite(struct server *srv, struct request *r);
void handle_versions(struct server *srv, struct request *r);
void handle_discard(struct server *srv, struct request *r);
void handle_node(struct server *srv, struct request *r);
void handle_place(struct server *srv, struct request *r);
void handle_placement(struct server *srv, struct request *r);
void handle_hints(struct server *srv, struct request *r);
void handle_hints_drop(struct server *srv, struct request *r);

/* commit.c */
int committer_start(struct server *srv);
void committer_stop(struct server *srv);
/* Takes r (r->obj referenced); answers it once r->obj is durable. */
void commit_submit(struct server *srv, struct request *r);
/* Syncs and answers one batch (a list through ->next) on the calling
 * thread; batch_no must grow by one per call.  The committer's loop body,
 * and what the fuzz targets (tests/fuzz) run instead of the thread. */
void commit_run(struct server *srv, struct request *batch, uint64_t batch_no);

/* session.c: the loop's side of a connection. */
void session_readable(struct conn *c);
void session_start(struct conn *c);
/* On SIGTERM, before c closes: answers ESHUTDOWN to the requests c holds
 * unread (loop thread). */
void session_refuse_rest(struct conn *c);
#define SESSION_REFUSE_MAX 1024

/* loop.c */
int loop_run(struct server *srv);
void loop_wake(struct server *srv);
void loop_reap_later(struct conn *c);
/* Has the loop read c again soon (a buffering type whose reading resumed
 * or stopped with bytes left); any thread, c->lock held. */
void loop_read_later(struct conn *c);
int64_t now_ms(void);

#endif /* UFO_SERVER_H */
