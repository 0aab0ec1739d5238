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

#include "client/rpc.h"

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

/* Contract in rpc.h; closing: conn_close_unused. */
void conn_detach_locked(struct rconn *rc, struct ufo_conn *c, int err)
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
int conn_ensure(struct rconn *rc)
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

	deadline_in(&ts, rc->cl->timeout_ms);
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

struct rconn *pick_conn(struct ufo_client *cl)
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

int client_call_on(struct ufo_client *cl, struct rconn *rc,
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

int client_call(struct ufo_client *cl, struct client_call *k)
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

