/* SPDX-License-Identifier: MIT */
/*
 * The ufo-server client: a few connections on which requests from many
 * threads pipeline; responses are matched to waiting requests by req_id.
 * There is no reader thread: a waiting caller that finds nobody reading a
 * connection reads it (leader/follower) until its own response has come,
 * completing others' requests on the way, then hands the role on.  A lone
 * request is thus answered without a thread hand-off (one wakeup saved per
 * fault on a VM where a wakeup costs 5-25 us).  A broken connection fails
 * its pending requests and is reconnected by the next request.
 */
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "internal.h"
#include "transport.h"

#define CLIENT_DEFAULT_TIMEOUT_MS 5000
#define CLIENT_DEFAULT_CONNECTIONS 2
#define CLIENT_MAX_CONNECTIONS 16
#define CLIENT_MAP_SLOTS 256 /* direct-mapped cache of MAP answers */

/* A request waiting for its response; lives on the caller's stack. */
struct rreq {
	struct rreq *next;
	uint64_t id;
	void *fixed;        /* response struct, fixed_len bytes */
	size_t fixed_len;
	void *data;         /* variable response bytes, up to data_cap */
	size_t data_cap;
	size_t data_len;    /* received */
	int status;         /* 0 or -errno */
	char errmsg[WIRE_MAX_ERRMSG + 1];
	bool receiving;     /* a reader is filling our buffers */
	bool done;
};

struct rconn {
	struct ufo_client *cl;
	pthread_mutex_t lock;   /* conn, gen, pending, the fields below */
	pthread_cond_t cond;    /* a request completed */
	pthread_mutex_t send_lock;
	pthread_mutex_t connect_lock;
	struct ufo_conn *conn;  /* NULL while down */
	uint64_t gen;           /* bumped by every (re)connect */
	uint16_t version;
	struct rreq *pending;
	bool reading;           /* a waiter is reading responses */
	/* Where MAP put object ranges for this connection (one-sided reads);
	 * valid for the connection generation it was made in. */
	struct map_entry {
		uint64_t id, off, gen, raddr;
		uint32_t len, rkey;
	} maps[CLIENT_MAP_SLOTS];
	bool timed_out;         /* torn down because a request timed out */
};

struct ufo_client {
	struct net_addr addr;
	const struct ufo_transport_ops *tops;
	bool fallback;          /* ufo://: TCP when RDMA cannot connect */
	uint8_t secret[WIRE_MAX_SECRET];
	size_t secret_len;
	int timeout_ms;
	unsigned nconns;
	_Atomic uint64_t next_id;
	_Atomic unsigned rr;
	/* Counters for ufo_client_status; relaxed atomics, no lock. */
	_Atomic uint64_t requests, errors, bytes_in, bytes_out, latency_ns_sum;
	_Atomic uint64_t direct_reads, direct_writes; /* one-sided */
	_Atomic int64_t latency_ewma_ns;
	struct rconn conns[CLIENT_MAX_CONNECTIONS];
};

void ufo_remote_opts_init(struct ufo_remote_opts *o)
{
	memset(o, 0, sizeof(*o));
}

/* The server's message for this thread's last failed request. */
static __thread char last_error[WIRE_MAX_ERRMSG + 1];

const char *ufo_client_last_error(void)
{
	return last_error;
}

/* ---- the reader side */

/* Unlinks and returns the pending request with id, or NULL.  rc->lock. */
static struct rreq *pending_take(struct rconn *rc, uint64_t id)
{
	for (struct rreq **p = &rc->pending; *p; p = &(*p)->next) {
		if ((*p)->id == id) {
			struct rreq *r = *p;
			*p = r->next;
			return r;
		}
	}
	return NULL;
}

static int discard(struct ufo_conn *c, size_t len, int timeout_ms)
{
	char scratch[4096];

	while (len) {
		size_t n = len < sizeof(scratch) ? len : sizeof(scratch);
		int rc = conn_recv(c, scratch, n, timeout_ms);
		if (rc)
			return rc;
		len -= n;
	}
	return 0;
}

/* Receives the payload of a successful response into r.  A payload that
 * does not fit r's buffers is read and dropped (-EPROTO): framing holds. */
static int recv_payload(struct ufo_conn *c, const struct wire_hdr *h,
			struct rreq *r, int timeout_ms)
{
	XXH3_state_t st;
	int rc;

	if (h->len < r->fixed_len || h->len - r->fixed_len > r->data_cap) {
		rc = discard(c, h->len, timeout_ms);
		return rc ? rc : -EPROTO;
	}
	r->data_len = h->len - r->fixed_len;
	if ((rc = conn_recv(c, r->fixed, r->fixed_len, timeout_ms)) ||
	    (rc = conn_recv(c, r->data, r->data_len, timeout_ms)))
		return rc;
	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, r->fixed, r->fixed_len);
	XXH3_64bits_update(&st, r->data, r->data_len);
	return XXH3_64bits_digest(&st) == h->csum ? 0 : -EBADMSG;
}

/* An error response: its payload is a message. */
static int recv_error(struct ufo_conn *c, const struct wire_hdr *h,
		      struct rreq *r, int timeout_ms)
{
	size_t keep = h->len < WIRE_MAX_ERRMSG ? h->len : WIRE_MAX_ERRMSG;
	int rc = conn_recv(c, r->errmsg, keep, timeout_ms);

	if (!rc)
		rc = discard(c, h->len - keep, timeout_ms);
	r->errmsg[rc ? 0 : keep] = '\0';
	return rc;
}

static void complete(struct rconn *rc, struct rreq *r, int status)
{
	pthread_mutex_lock(&rc->lock);
	r->status = status;
	r->done = true;
	pthread_cond_broadcast(&rc->cond);
	pthread_mutex_unlock(&rc->lock);
}

/* Reads one response, waiting up to wait_ms for it to start, and completes
 * its request.  Returns a transport error that breaks the connection, or
 * 0. */
static int read_one(struct rconn *rc, struct ufo_conn *c, int wait_ms)
{
	int tmo = rc->cl->timeout_ms, err;
	struct wire_hdr h;
	struct rreq *r;

	err = frame_recv_hdr(c, &h, WIRE_MAX_PAYLOAD, wait_ms);
	if (err)
		return err;
	if (!(h.op & WIRE_RESPONSE))
		return -EPROTO;
	pthread_mutex_lock(&rc->lock);
	r = pending_take(rc, h.req_id);
	if (r)
		r->receiving = true;
	pthread_mutex_unlock(&rc->lock);
	if (!r) /* its requester timed out and left */
		return discard(c, h.len, tmo);
	if (h.status) {
		err = recv_error(c, &h, r, tmo);
		complete(rc, r, wire_status_to_errno(h.status));
		return err;
	}
	err = recv_payload(c, &h, r, tmo);
	/* A short read broke framing; a bad checksum or size did not. */
	complete(rc, r, err);
	return err == -EPROTO || err == -EBADMSG ? 0 : err;
}

/* Detaches c from rc and fails every pending request with err; rc->lock
 * held.  Once detached nobody starts to read or send on c, so the caller
 * may close it (conn_close_unused) after unlocking. */
static void conn_detach_locked(struct rconn *rc, struct ufo_conn *c, int err)
{
	struct rreq *r;

	if (rc->conn == c) {
		rc->conn = NULL;
		rc->gen++;
	}
	/* Requests caught by another request's timeout timed out too: say so
	 * rather than "reset", which would blame the network. */
	if (rc->timed_out)
		err = -ETIMEDOUT;
	rc->timed_out = false;
	while ((r = rc->pending)) {
		rc->pending = r->next;
		r->status = err;
		r->done = true;
	}
	pthread_cond_broadcast(&rc->cond);
}

/* Closes a detached connection once no sender is still using it. */
static void conn_close_unused(struct rconn *rc, struct ufo_conn *c)
{
	pthread_mutex_lock(&rc->send_lock);
	conn_close(c);
	pthread_mutex_unlock(&rc->send_lock);
}

/* ---- connecting */

/* ufo:// gives RDMA this long to connect before it falls back to TCP (a
 * server host without an RDMA stack never answers the request). */
#define FALLBACK_CONNECT_MS 2000

static int conn_open(struct ufo_client *cl, struct ufo_conn **out,
		     uint16_t *version)
{
	int tmo = cl->fallback && cl->tops != &ufo_tcp_transport &&
			  cl->timeout_ms > FALLBACK_CONNECT_MS
		  ? FALLBACK_CONNECT_MS : cl->timeout_ms;
	int rc = cl->tops->connect(&cl->addr, tmo, out);

	if (rc)
		return rc;
	rc = client_handshake(*out, cl->secret, cl->secret_len, cl->timeout_ms,
			      version);
	if (rc) {
		conn_close(*out);
		*out = NULL;
	}
	return rc;
}

/* Makes sure rc is connected.  Only one thread connects a given slot at a
 * time; the others find it up when they get the lock. */
static int conn_ensure(struct rconn *rc)
{
	struct ufo_conn *c;
	uint16_t v;
	int err = 0;

	pthread_mutex_lock(&rc->lock); /* fast path: already up */
	c = rc->conn;
	pthread_mutex_unlock(&rc->lock);
	if (c)
		return 0;
	pthread_mutex_lock(&rc->connect_lock);
	pthread_mutex_lock(&rc->lock);
	c = rc->conn;
	pthread_mutex_unlock(&rc->lock);
	if (!c && !(err = conn_open(rc->cl, &c, &v))) {
		pthread_mutex_lock(&rc->lock);
		rc->conn = c;
		rc->version = v;
		rc->gen++;
		pthread_mutex_unlock(&rc->lock);
	}
	pthread_mutex_unlock(&rc->connect_lock);
	return err;
}

/* ---- requests */

static void deadline_after(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Registers r on rc and sends the request.  *registered tells whether r
 * went on the pending list: then it will be completed (by the response,
 * or with the connection's error), and the caller must wait for it. */
static int send_request(struct rconn *rc, struct rreq *r, const struct client_call *k,
			bool *registered, uint64_t *gen_out)
{
	struct ufo_conn *c;
	uint64_t gen;
	uint16_t v;
	int err;

	pthread_mutex_lock(&rc->lock);
	c = rc->conn;
	gen = rc->gen;
	v = rc->version;
	if (c) {
		r->next = rc->pending;
		rc->pending = r;
	}
	pthread_mutex_unlock(&rc->lock);
	*registered = c != NULL;
	*gen_out = gen;
	if (!c)
		return -ECONNRESET;
	pthread_mutex_lock(&rc->send_lock);
	/* The reader may have failed (and failed r) and closed c since:
	 * gen tells, and c must not be touched then. */
	pthread_mutex_lock(&rc->lock);
	err = rc->gen == gen ? 0 : -ECONNRESET;
	pthread_mutex_unlock(&rc->lock);
	if (!err) {
		err = frame_send(c, v, k->op, r->id, 0, k->p1, k->l1, k->p2,
				 k->l2, rc->cl->timeout_ms);
		if (err) /* framing is lost: the next read fails everything */
			rc->cl->tops->shutdown(c);
	}
	pthread_mutex_unlock(&rc->send_lock);
	return err;
}

static int ms_until(uint64_t deadline_ns)
{
	uint64_t now = now_ns();

	return now >= deadline_ns ? 0 : (int)((deadline_ns - now + 999999) / 1000000);
}

/* Leads: reads responses on c until r is done, or fails c.  rc->lock held
 * on entry and exit. */
static void lead(struct rconn *rc, struct ufo_conn *c, struct rreq *r,
		 uint64_t deadline)
{
	int err = 0;

	rc->reading = true;
	while (!r->done && !err) {
		pthread_mutex_unlock(&rc->lock);
		err = read_one(rc, c, ms_until(deadline));
		pthread_mutex_lock(&rc->lock);
	}
	/* Detach before giving up the role: a follower that found nobody
	 * reading and c still attached would lead on c while we close it. */
	if (err) {
		/* No response in time: the server stopped answering. */
		if (err == -ETIMEDOUT)
			rc->timed_out = true;
		conn_detach_locked(rc, c, err);
	}
	rc->reading = false;
	pthread_cond_broadcast(&rc->cond); /* a follower may lead now */
	if (err) {
		pthread_mutex_unlock(&rc->lock);
		/* A sender may be blocked on c (a long WRITE into a slow
		 * peer): shut c down so it returns, then close it. */
		conn_shutdown(c);
		conn_close_unused(rc, c);
		pthread_mutex_lock(&rc->lock);
	}
}

/* A follower timed out: the server stopped answering.  With a leader
 * reading, shutting the connection down makes its read fail and it detaches
 * the connection; with none, nobody would, so the follower detaches it and
 * closes it itself (else the next request would find a dead connection
 * still attached).  rc->lock held. */
static void abandon_conn_locked(struct rconn *rc)
{
	struct ufo_conn *c = rc->conn;

	rc->timed_out = true;
	conn_shutdown(c);
	if (rc->reading)
		return;
	conn_detach_locked(rc, c, -ETIMEDOUT);
	pthread_mutex_unlock(&rc->lock);
	conn_close_unused(rc, c);
	pthread_mutex_lock(&rc->lock);
}

/* Waits for r, leading the connection whenever nobody else reads it.  A
 * follower whose deadline passes gives up (and breaks the connection, a
 * server that stopped answering) unless a reader is filling its buffers;
 * then the reader's own receive timeout bounds the wait. */
static int wait_request(struct rconn *rc, struct rreq *r, uint64_t gen)
{
	uint64_t deadline = now_ns() + (uint64_t)rc->cl->timeout_ms * 1000000u;
	struct timespec ts;

	deadline_after(&ts, rc->cl->timeout_ms);
	pthread_mutex_lock(&rc->lock);
	while (!r->done) {
		if (!rc->reading && rc->conn && rc->gen == gen) {
			lead(rc, rc->conn, r, deadline);
			continue;
		}
		if (now_ns() >= deadline && !r->receiving) {
			pending_take(rc, r->id);
			r->status = -ETIMEDOUT;
			r->done = true;
			if (rc->conn && rc->gen == gen)
				abandon_conn_locked(rc);
			break;
		}
		pthread_cond_timedwait(&rc->cond, &rc->lock, &ts);
	}
	pthread_mutex_unlock(&rc->lock);
	return r->status;
}

/* Latency is an exponentially weighted mean (1/8 per sample): a racy
 * read-modify-write may lose a sample, which only delays the mean. */
static void client_count(struct ufo_client *cl, const struct client_call *k, int err,
			 uint64_t ns)
{
	int64_t ewma = atomic_load_explicit(&cl->latency_ewma_ns,
					    memory_order_relaxed);

	atomic_fetch_add_explicit(&cl->requests, 1, memory_order_relaxed);
	if (err) {
		atomic_fetch_add_explicit(&cl->errors, 1, memory_order_relaxed);
		return;
	}
	atomic_fetch_add_explicit(&cl->bytes_out, k->l1 + k->l2,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&cl->bytes_in, k->fixed_len + k->data_len,
				  memory_order_relaxed);
	atomic_store_explicit(&cl->latency_ewma_ns,
			      ewma ? ewma + ((int64_t)ns - ewma) / 8 : (int64_t)ns,
			      memory_order_relaxed);
}

static struct rconn *pick_conn(struct ufo_client *cl)
{
	return &cl->conns[atomic_fetch_add(&cl->rr, 1) % cl->nconns];
}

/* A request in flight for the cluster layer (client_start/finish). */
struct client_op {
	struct ufo_client *cl;
	struct rconn *rc;
	struct client_call *k;
	struct rreq r;
	bool registered;
	uint64_t gen, t0;
	int err;
};

static void op_start(struct ufo_client *cl, struct rconn *rc,
		     struct client_call *k, struct client_op *o)
{
	*o = (struct client_op){
		.cl = cl, .rc = rc, .k = k, .t0 = now_ns(),
		.r = { .id = atomic_fetch_add(&cl->next_id, 1),
		       .fixed = k->fixed, .fixed_len = k->fixed_len,
		       .data = k->data, .data_cap = k->data_cap },
	};
	o->err = conn_ensure(rc);
	if (!o->err)
		o->err = send_request(rc, &o->r, k, &o->registered, &o->gen);
}

static int op_finish(struct client_op *o)
{
	int err = o->err;

	if (o->registered)
		err = wait_request(o->rc, &o->r, o->gen);
	o->k->data_len = o->r.data_len;
	snprintf(last_error, sizeof(last_error), "%s", err ? o->r.errmsg : "");
	client_count(o->cl, o->k, err, now_ns() - o->t0);
	return err;
}

static int client_call_on(struct ufo_client *cl, struct rconn *rc,
			  struct client_call *k)
{
	struct client_op o;

	op_start(cl, rc, k, &o);
	return op_finish(&o);
}

struct client_op *client_start(struct ufo_client *cl, struct client_call *k)
{
	struct client_op *o = malloc(sizeof(*o));

	if (o)
		op_start(cl, pick_conn(cl), k, o);
	return o;
}

int client_finish(struct client_op *o)
{
	int err;

	if (!o)
		return -ENOMEM;
	err = op_finish(o);
	free(o);
	return err;
}

static int client_call(struct ufo_client *cl, struct client_call *k)
{
	return client_call_on(cl, pick_conn(cl), k);
}

int client_call_sync(struct ufo_client *cl, struct client_call *k)
{
	return client_call(cl, k);
}

/* ---- connect / close */

static int client_secret(struct ufo_client *cl, const struct ufo_remote_opts *o)
{
	const char *path = o && o->secret_file ? o->secret_file
					       : getenv("UFO_SECRET_FILE");
	bool loose = false;
	int n;

	if (!path)
		return -EINVAL;
	n = wire_read_secret(path, cl->secret, sizeof(cl->secret), &loose);
	if (n < 0)
		return n;
	cl->secret_len = (size_t)n;
	return 0;
}

static void client_free(struct ufo_client *cl)
{
	for (unsigned i = 0; i < cl->nconns; i++) {
		struct rconn *rc = &cl->conns[i];
		pthread_mutex_destroy(&rc->lock);
		pthread_cond_destroy(&rc->cond);
		pthread_mutex_destroy(&rc->send_lock);
		pthread_mutex_destroy(&rc->connect_lock);
	}
	memset(cl->secret, 0, sizeof(cl->secret));
	free(cl);
}

static int client_init(struct ufo_client *cl, const char *url,
		       const struct ufo_remote_opts *o)
{
	char scheme[16];
	int err = net_parse_url(url, scheme, sizeof(scheme), &cl->addr, NULL, 0);

	if (err)
		return err;
	/* ufo:// tries RDMA first (see ufo_client_connect); tcp://, rdma://
	 * and tls:// (TCP inside TLS) force their transport. */
	if (!strcmp(scheme, "ufo")) {
		cl->fallback = true;
		scheme[0] = '\0';
	} else if (strcmp(scheme, "tcp") && strcmp(scheme, "rdma") &&
		   strcmp(scheme, "tls")) {
		return -EINVAL;
	}
	cl->tops = transport_find(cl->fallback ? "rdma" : scheme);
	cl->timeout_ms = o && o->timeout_ms ? (int)o->timeout_ms
					    : CLIENT_DEFAULT_TIMEOUT_MS;
	cl->nconns = o && o->connections ? o->connections
					 : CLIENT_DEFAULT_CONNECTIONS;
	if (cl->nconns > CLIENT_MAX_CONNECTIONS)
		cl->nconns = CLIENT_MAX_CONNECTIONS;
	cl->next_id = 1;
	for (unsigned i = 0; i < cl->nconns; i++) {
		struct rconn *rc = &cl->conns[i];
		rc->cl = cl;
		pthread_mutex_init(&rc->lock, NULL);
		pthread_cond_init(&rc->cond, NULL);
		pthread_mutex_init(&rc->send_lock, NULL);
		pthread_mutex_init(&rc->connect_lock, NULL);
	}
	if (wire_crypto_init())
		return -EIO;
	return client_secret(cl, o);
}

/* ufo://: no RDMA device, no route, or no RDMA listener: use TCP.  The
 * transport is then fixed for the client's life (ufo_client_status reports
 * it), so reconnects never flip between the two. */
static int client_first_connect(struct ufo_client *cl)
{
	int err = conn_ensure(&cl->conns[0]);

	if (cl->fallback && err && err != -EACCES && err != -EPROTONOSUPPORT) {
		cl->tops = transport_find("tcp");
		err = conn_ensure(&cl->conns[0]);
	}
	return err;
}

int client_new(const char *url, const struct ufo_remote_opts *opts,
	       struct ufo_client **out, int *connect_err)
{
	struct ufo_client *cl;
	int err;

	if (!url || !out)
		return -EINVAL;
	cl = calloc(1, sizeof(*cl));
	if (!cl)
		return -ENOMEM;
	err = client_init(cl, url, opts);
	if (err) {
		ufo_client_close(cl);
		return err;
	}
	*connect_err = client_first_connect(cl);
	*out = cl;
	return 0;
}

/* Connects one connection now, so a bad address or secret shows here. */
int ufo_client_connect(const char *url, const struct ufo_remote_opts *opts,
		       struct ufo_client **out)
{
	struct ufo_client *cl;
	int connect_err, err = client_new(url, opts, &cl, &connect_err);

	if (err)
		return err;
	if (connect_err) {
		ufo_client_close(cl);
		return connect_err;
	}
	*out = cl;
	return 0;
}

void ufo_client_close(struct ufo_client *cl)
{
	if (!cl)
		return;
	/* No request may be in progress (the caller's contract), so nobody
	 * reads or sends on the connections. */
	for (unsigned i = 0; i < cl->nconns; i++)
		conn_close(cl->conns[i].conn);
	client_free(cl);
}

/* ---- operations */

static int name_payload(const char *name, struct wire_name *n, size_t *len)
{
	*len = name ? strlen(name) : 0;
	if (wire_check_name(name ? name : "", *len))
		return -EINVAL;
	memset(n, 0, sizeof(*n));
	n->name_len = htole16((uint16_t)*len);
	return 0;
}

static void info_from_wire(struct ufo_remote_info *out, const char *name,
			   size_t name_len, const struct wire_objinfo *w)
{
	memset(out, 0, sizeof(*out));
	if (name_len >= sizeof(out->name))
		name_len = sizeof(out->name) - 1;
	memcpy(out->name, name, name_len);
	out->id = le64toh(w->id);
	out->size = le64toh(w->size);
	out->chunk_size = le32toh(w->chunk_size);
	out->allocated = le64toh(w->allocated);
	out->mtime_ns = le64toh(w->mtime_ns);
	out->flags = le32toh(w->flags) & WIRE_OBJ_REPLICATED
			     ? UFO_REMOTE_REPLICATED : 0;
}

/* OPEN, STAT or DELETE of a name; info may be NULL for DELETE. */
static int name_call(struct ufo_client *cl, uint16_t op, const char *name,
		     struct ufo_remote_info *info)
{
	struct wire_objinfo w;
	struct wire_name n;
	size_t len;
	struct client_call k = { .op = op, .p1 = &n, .l1 = sizeof(n), .p2 = name,
			  .fixed = info ? &w : NULL,
			  .fixed_len = info ? sizeof(w) : 0 };
	int err;

	if (!cl || (err = name_payload(name, &n, &len)))
		return -EINVAL;
	k.l2 = len;
	err = client_call(cl, &k);
	if (!err && info)
		info_from_wire(info, name, len, &w);
	return err;
}

int client_open(struct ufo_client *cl, const char *name,
		struct ufo_remote_info *out)
{
	return name_call(cl, WIRE_OPEN, name, out);
}

int ufo_client_stat(struct ufo_client *cl, const char *name,
		    struct ufo_remote_info *out)
{
	return out ? name_call(cl, WIRE_STAT, name, out) : -EINVAL;
}

int ufo_client_delete(struct ufo_client *cl, const char *name)
{
	return name_call(cl, WIRE_DELETE, name, NULL);
}

int ufo_client_create(struct ufo_client *cl, const char *name, uint64_t size,
		      uint32_t chunk_size, struct ufo_remote_info *out)
{
	struct wire_create cr = { 0 };
	struct wire_objinfo w;
	size_t len = name ? strlen(name) : 0;
	struct client_call k = { .op = WIRE_CREATE, .p1 = &cr, .l1 = sizeof(cr),
			  .p2 = name, .l2 = len, .fixed = &w,
			  .fixed_len = sizeof(w) };
	int err;

	if (!cl || wire_check_name(name ? name : "", len))
		return -EINVAL;
	cr.size = htole64(size);
	cr.chunk_size = htole32(chunk_size ? chunk_size
					   : (uint32_t)UFO_DEFAULT_CHUNK_SIZE);
	cr.name_len = htole16((uint16_t)len);
	err = client_call(cl, &k);
	if (!err && out)
		info_from_wire(out, name, len, &w);
	return err;
}

/* Walks one LIST reply; returns the callback's first non-zero result, or
 * -EPROTO when an entry overruns the reply. */
static int list_walk(const uint8_t *p, size_t len, uint32_t count,
		     int (*fn)(void *, const struct ufo_remote_info *),
		     void *user)
{
	for (uint32_t i = 0; i < count; i++) {
		struct wire_list_entry e;
		struct ufo_remote_info info;
		uint16_t nl;
		int rc;

		if (len < sizeof(e))
			return -EPROTO;
		memcpy(&e, p, sizeof(e));
		nl = le16toh(e.name_len);
		if (len - sizeof(e) < nl || nl > WIRE_MAX_NAME)
			return -EPROTO;
		info_from_wire(&info, (const char *)p + sizeof(e), nl, &e.info);
		if ((rc = fn(user, &info)))
			return rc;
		p += sizeof(e) + nl;
		len -= sizeof(e) + nl;
	}
	return 0;
}

#define LIST_REPLY_MAX (WIRE_LIST_MAX * (sizeof(struct wire_list_entry) + WIRE_MAX_NAME))

int ufo_client_list(struct ufo_client *cl,
		    int (*fn)(void *user, const struct ufo_remote_info *info),
		    void *user)
{
	struct wire_list req = { .max = htole32(WIRE_LIST_MAX) };
	struct wire_list_reply rep;
	uint8_t *buf;
	int err;

	if (!cl || !fn)
		return -EINVAL;
	buf = malloc(LIST_REPLY_MAX);
	if (!buf)
		return -ENOMEM;
	do {
		struct client_call k = { .op = WIRE_LIST, .p1 = &req, .l1 = sizeof(req),
				  .fixed = &rep, .fixed_len = sizeof(rep),
				  .data = buf, .data_cap = LIST_REPLY_MAX };
		err = client_call(cl, &k);
		if (!err)
			err = list_walk(buf, k.data_len, le32toh(rep.count), fn,
					user);
		req.cursor = rep.next_cursor;
	} while (!err && req.cursor);
	free(buf);
	return err;
}

static int io_call(struct ufo_client *cl, uint16_t op, uint64_t id,
		   uint64_t off, void *buf, size_t len)
{
	struct wire_io io = { .id = htole64(id), .offset = htole64(off),
			      .len = htole32((uint32_t)len) };
	struct client_call k = { .op = op, .p1 = &io, .l1 = sizeof(io) };
	int err;

	if (!cl || len > WIRE_MAX_IO || (len && !buf))
		return -EINVAL;
	if (op == WIRE_WRITE) {
		k.p2 = buf;
		k.l2 = len;
	} else {
		k.data = buf;
		k.data_cap = len;
	}
	err = client_call(cl, &k);
	if (!err && op == WIRE_READ && k.data_len != len)
		err = -EPROTO;
	return err;
}

int ufo_client_read(struct ufo_client *cl, uint64_t id, uint64_t offset,
		    void *buf, size_t len)
{
	return io_call(cl, WIRE_READ, id, offset, buf, len);
}

int ufo_client_write(struct ufo_client *cl, uint64_t id, uint64_t offset,
		     const void *buf, size_t len)
{
	return io_call(cl, WIRE_WRITE, id, offset, (void *)buf, len);
}

int ufo_client_sync(struct ufo_client *cl, uint64_t id)
{
	struct wire_id w = { .id = htole64(id) };
	struct client_call k = { .op = WIRE_SYNC, .p1 = &w, .l1 = sizeof(w) };

	return cl ? client_call(cl, &k) : -EINVAL;
}

int client_timeout_ms(const struct ufo_client *cl)
{
	return cl->timeout_ms;
}

int ufo_client_status(struct ufo_client *cl, struct ufo_client_stats *out)
{
	if (!cl || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	snprintf(out->server, sizeof(out->server),
		 strchr(cl->addr.host, ':') ? "[%s]:%u" : "%s:%u",
		 cl->addr.host, cl->addr.port);
	snprintf(out->transport, sizeof(out->transport), "%s", cl->tops->name);
	out->connections = cl->nconns;
	for (unsigned i = 0; i < cl->nconns; i++) {
		struct rconn *rc = &cl->conns[i];
		pthread_mutex_lock(&rc->lock);
		out->connected += rc->conn != NULL;
		pthread_mutex_unlock(&rc->lock);
	}
	out->requests = atomic_load(&cl->requests);
	out->errors = atomic_load(&cl->errors);
	out->bytes_in = atomic_load(&cl->bytes_in);
	out->bytes_out = atomic_load(&cl->bytes_out);
	out->latency_us = (uint64_t)atomic_load(&cl->latency_ewma_ns) / 1000;
	out->direct_reads = atomic_load(&cl->direct_reads);
	out->direct_writes = atomic_load(&cl->direct_writes);
	return 0;
}

/* ---- one-sided reads (RDMA) */

static struct map_entry *map_slot(struct rconn *rc, uint64_t id, uint64_t off)
{
	uint64_t h = (id * 0x9E3779B97F4A7C15ull) ^ (off >> 12);

	return &rc->maps[(h ^ (h >> 29)) % CLIENT_MAP_SLOTS];
}

/* MAPs [off, off + len) of id on rc unless cached for its generation.
 * 0 with *e filled, or -errno (the server could not map: fall back). */
static int map_range(struct ufo_client *cl, struct rconn *rc, uint64_t id,
		     uint64_t off, uint32_t len, struct map_entry *e)
{
	struct wire_io io = { .id = htole64(id), .offset = htole64(off),
			      .len = htole32(len) };
	struct wire_map m;
	struct client_call k = { .op = WIRE_MAP, .p1 = &io, .l1 = sizeof(io),
			  .fixed = &m, .fixed_len = sizeof(m) };
	struct map_entry *slot;
	uint64_t gen;
	int err;

	pthread_mutex_lock(&rc->lock);
	slot = map_slot(rc, id, off);
	gen = rc->gen;
	if (slot->gen == gen && slot->id == id && slot->off == off &&
	    slot->len == len && slot->raddr) {
		*e = *slot;
		pthread_mutex_unlock(&rc->lock);
		return 0;
	}
	pthread_mutex_unlock(&rc->lock);
	err = client_call_on(cl, rc, &k);
	if (err)
		return err;
	*e = (struct map_entry){ .id = id, .off = off, .len = len, .gen = gen,
				 .raddr = le64toh(m.addr),
				 .rkey = le32toh(m.rkey) };
	if (le32toh(m.len) != len)
		return -EPROTO;
	pthread_mutex_lock(&rc->lock);
	if (rc->gen == gen)
		*slot = *e;
	pthread_mutex_unlock(&rc->lock);
	return 0;
}

/* The READ or WRITE itself, on the connection MAP was answered on (the
 * key belongs to it), under its send exclusion. */
/* A one-sided operation failed: the QP is in error.  Its waiters must
 * fail too (shutdown), and the connection must go, or the next one-sided
 * operation would find it attached (its MAPs cached for this generation)
 * and fail again without ever reconnecting.  With a leader reading, its
 * read fails on the shutdown and it detaches; else we do.  send_lock
 * held, so nobody sends on c while we close it. */
static void direct_failed(struct rconn *rc, struct ufo_conn *c, int err)
{
	bool close = false;

	pthread_mutex_lock(&rc->lock);
	if (rc->conn == c) {
		conn_shutdown(c);
		if (!rc->reading) {
			conn_detach_locked(rc, c, err);
			close = true;
		}
	}
	pthread_mutex_unlock(&rc->lock);
	if (close)
		conn_close(c);
}

static int rdma_mapped(struct ufo_client *cl, struct rconn *rc,
		       const struct map_entry *e, void *buf, bool write)
{
	struct ufo_conn *c;
	int err;

	pthread_mutex_lock(&rc->send_lock);
	pthread_mutex_lock(&rc->lock);
	c = rc->gen == e->gen ? rc->conn : NULL;
	pthread_mutex_unlock(&rc->lock);
	if (!c)
		err = -ECONNRESET;
	else if (write)
		err = c->ops->write_remote(c, buf, e->len, e->raddr, e->rkey,
					   cl->timeout_ms);
	else
		err = c->ops->read_remote(c, buf, e->len, e->raddr, e->rkey,
					  cl->timeout_ms);
	if (err && c)
		direct_failed(rc, c, err);
	pthread_mutex_unlock(&rc->send_lock);
	return err;
}

/* Picks a connection and MAPs [off, off + len) of id on it.  0 with *rcp
 * and *e, -EOPNOTSUPP when the server will not map it (the caller goes
 * two-sided), or a connection error. */
static int direct_begin(struct ufo_client *cl, uint64_t id, uint64_t off,
			size_t len, struct rconn **rcp, struct map_entry *e)
{
	struct rconn *rc = pick_conn(cl);
	int err;

	if (!len || len > WIRE_MAX_IO)
		return -EOPNOTSUPP;
	if ((err = conn_ensure(rc)))
		return err;
	err = map_range(cl, rc, id, off, (uint32_t)len, e);
	if (err == -EINVAL || err == -ERANGE || err == -EBUSY ||
	    err == -EPROTO)
		return -EOPNOTSUPP;
	*rcp = rc;
	return err;
}

int client_read_direct(struct ufo_client *cl, uint64_t id, uint64_t off,
		       void *buf, size_t len)
{
	struct rconn *rc = NULL;
	struct map_entry e;
	int err;

	if (!cl->tops->read_remote)
		return -EOPNOTSUPP;
	err = direct_begin(cl, id, off, len, &rc, &e);
	if (!err)
		err = rdma_mapped(cl, rc, &e, buf, false);
	atomic_fetch_add_explicit(&cl->direct_reads, !err, memory_order_relaxed);
	if (!err)
		atomic_fetch_add_explicit(&cl->bytes_in, len, memory_order_relaxed);
	return err;
}

int client_write_direct(struct ufo_client *cl, uint64_t id, uint64_t off,
			const void *src, size_t len)
{
	struct wire_io io = { .id = htole64(id), .offset = htole64(off),
			      .len = htole32((uint32_t)len) };
	struct client_call k = { .op = WIRE_COMMIT, .p1 = &io, .l1 = sizeof(io) };
	struct map_entry e;
	struct rconn *rc = NULL;
	void *bounce;
	int err;

	if (!cl->tops->write_remote)
		return -EOPNOTSUPP;
	if ((err = direct_begin(cl, id, off, len, &rc, &e)))
		return err;
	/* A private copy: src is the UFO's chunk, write-protected while it
	 * is written back, and pinning it for RDMA could fault into our own
	 * fault handler. */
	bounce = malloc(len);
	if (!bounce)
		return -ENOMEM;
	memcpy(bounce, src, len);
	err = rdma_mapped(cl, rc, &e, bounce, true);
	free(bounce);
	/* Placed in the server's memory; COMMIT, on the same connection
	 * (the mapping is its), answers once it is durable. */
	if (!err)
		err = client_call_on(cl, rc, &k);
	if (!err)
		atomic_fetch_add_explicit(&cl->direct_writes, 1,
					  memory_order_relaxed);
	return err;
}
