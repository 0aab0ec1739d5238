/* SPDX-License-Identifier: MIT */
/*
 * The ufo-server client: a few connections on which requests from many
 * threads pipeline; answers are matched to requests by req_id.  Requests
 * are asynchronous (client_submit): the submitter sends and returns, and
 * each connection's reader thread reads the answers, straight into the
 * request's buffers, and completes them.  A synchronous call is a submit
 * and a wait.  The reader also enforces the timeout: when the oldest
 * pending request's deadline passes without an answer (checked at most
 * idle_wait_ms late for a request sent while the reader waited idle), the
 * server stopped answering, and the connection is torn down with every
 * request on it.
 * A broken connection fails its pending requests and is reconnected by the
 * next submitter.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/rpc.h"

/* The server's message for this thread's last failed request. */
static __thread char last_error[WIRE_MAX_ERRMSG + 1];

const char *ufo_client_last_error(void)
{
	return last_error;
}

/* ---- the reader side */

/* Unlinks and returns the pending request with id, or NULL.  rc->lock. */
static struct client_req *pending_take(struct rconn *rc, uint64_t id)
{
	struct client_req *prev = NULL;

	for (struct client_req *q = rc->pending; q; prev = q, q = q->next) {
		if (q->id != id)
			continue;
		if (prev)
			prev->next = q->next;
		else
			rc->pending = q->next;
		if (rc->pending_tail == q)
			rc->pending_tail = prev;
		q->next = NULL;
		return q;
	}
	return NULL;
}

static void pending_push(struct rconn *rc, struct client_req *q)
{
	q->next = NULL;
	if (rc->pending_tail)
		rc->pending_tail->next = q;
	else
		rc->pending = q;
	rc->pending_tail = q;
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

/* Receives the payload of a successful answer into q's buffers.  A payload
 * that does not fit them is read and dropped (-EPROTO): framing holds. */
static int recv_payload(struct ufo_conn *c, const struct wire_hdr *h,
			struct client_req *q, int timeout_ms)
{
	struct client_call *k = &q->k;
	struct iovec got[2];
	int rc;

	if (h->len < k->fixed_len || h->len - k->fixed_len > k->data_cap) {
		rc = discard(c, h->len, timeout_ms);
		return rc ? rc : -EPROTO;
	}
	k->data_len = h->len - k->fixed_len;
	if ((rc = conn_recv(c, k->fixed, k->fixed_len, timeout_ms)) ||
	    (rc = conn_recv(c, k->data, k->data_len, timeout_ms)))
		return rc;
	got[0] = (struct iovec){ k->fixed, k->fixed_len };
	got[1] = (struct iovec){ k->data, k->data_len };
	return wire_csum_iov(got, 2) == h->csum ? 0 : -EBADMSG;
}

/* An error answer: its payload is a message. */
static int recv_error(struct ufo_conn *c, const struct wire_hdr *h,
		      struct client_req *q, int timeout_ms)
{
	size_t keep = h->len < WIRE_MAX_ERRMSG ? h->len : WIRE_MAX_ERRMSG;
	int rc = conn_recv(c, q->errmsg, keep, timeout_ms);

	if (!rc)
		rc = discard(c, h->len - keep, timeout_ms);
	q->errmsg[rc ? 0 : keep] = '\0';
	return rc;
}

/* Latency is an exponentially weighted mean (1/8 per sample): a racy
 * read-modify-write may lose a sample, which only delays the mean. */
static void client_count(struct ufo_client *cl, const struct client_call *k,
			 int err, uint64_t ns)
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

/* Counts q and runs its done; no lock held (done may submit again). */
static void req_done(struct ufo_client *cl, struct client_req *q)
{
	client_count(cl, &q->k, q->status, now_ns() - q->t0);
	atomic_fetch_sub_explicit(&q->rc->inflight, 1, memory_order_relaxed);
	q->done(q, q->status);
}

void reqs_done(struct ufo_client *cl, struct client_req *list)
{
	while (list) {
		struct client_req *q = list;

		list = q->next;
		req_done(cl, q);
	}
}

/* q, off the pending list, is answered or failed: rc->lock held.  Returns
 * true when the caller must run its done (after unlocking); false while its
 * submitter is still sending it, which then runs it.  An answer can come
 * before the sender returns: the server answers once the last byte is in. */
static bool req_end_locked(struct client_req *q, int err)
{
	q->status = err;
	q->finished = true;
	return !q->sending;
}

static void req_end(struct rconn *rc, struct client_req *q, int err)
{
	bool now;

	pthread_mutex_lock(&rc->lock);
	now = req_end_locked(q, err);
	pthread_mutex_unlock(&rc->lock);
	if (now)
		req_done(rc->cl, q);
}

/* Reads one answer, waiting up to wait_ms for it to start, and completes
 * its request.  Returns a transport error that breaks the connection, or
 * 0. */
/*
 * A header, its first byte waited for up to wait_ms and the rest up to the
 * request timeout.  In two steps so that a wait that ends with nothing
 * read (*idle) can be told from a peer that stalled in mid-frame: the
 * reader then just waits again, framing intact.
 */
static int recv_hdr(struct ufo_conn *c, struct wire_hdr *h, int wait_ms,
		    int timeout_ms, bool *idle)
{
	uint8_t raw[sizeof(*h)];
	int err = conn_recv(c, raw, 1, wait_ms);

	*idle = err == -ETIMEDOUT;
	if (!err)
		err = conn_recv(c, raw + 1, sizeof(raw) - 1, timeout_ms);
	if (err)
		return err;
	wire_get_hdr(raw, sizeof(raw), h);
	return wire_check_hdr(h, WIRE_MAX_PAYLOAD);
}

static int read_one(struct rconn *rc, struct ufo_conn *c, int wait_ms,
		    bool *idle)
{
	int tmo = rc->cl->timeout_ms, err;
	struct client_req *q;
	struct wire_hdr h;

	err = recv_hdr(c, &h, wait_ms, tmo, idle);
	if (err)
		return err;
	if (!(h.op & WIRE_RESPONSE))
		return -EPROTO;
	pthread_mutex_lock(&rc->lock);
	q = pending_take(rc, h.req_id);
	pthread_mutex_unlock(&rc->lock);
	if (!q) /* not ours: the server answered an id we never sent */
		return discard(c, h.len, tmo);
	if (h.status) {
		err = recv_error(c, &h, q, tmo);
		req_end(rc, q, wire_status_to_errno(h.status));
		return err;
	}
	err = recv_payload(c, &h, q, tmo);
	/* A short read broke framing; a bad checksum or size did not. */
	req_end(rc, q, err);
	return err == -EPROTO || err == -EBADMSG ? 0 : err;
}

struct client_req *conn_detach_locked(struct rconn *rc, struct ufo_conn *c,
				      int err)
{
	struct client_req *q, *now = NULL;

	if (rc->conn == c) {
		rc->conn = NULL;
		rc->gen++;
	}
	while ((q = rc->pending)) {
		rc->pending = q->next;
		if (req_end_locked(q, err)) {
			q->next = now;
			now = q;
		}
	}
	rc->pending_tail = NULL;
	return now;
}

/* Closes a detached connection once no sender is still using it. */
static void conn_close_unused(struct rconn *rc, struct ufo_conn *c)
{
	pthread_mutex_lock(&rc->send_lock);
	conn_close(c);
	pthread_mutex_unlock(&rc->send_lock);
}

static int ms_until(uint64_t deadline_ns)
{
	uint64_t now = now_ns();

	return now >= deadline_ns ? 0 : (int)((deadline_ns - now + 999999) / 1000000);
}

/* The reader's read of c failed (a timeout: the oldest request's deadline
 * passed unanswered): c goes, with every request on it.  rc->lock held on
 * entry and exit. */
static void reader_failed(struct rconn *rc, struct ufo_conn *c, int err)
{
	struct client_req *failed = conn_detach_locked(rc, c, err);

	pthread_mutex_unlock(&rc->lock);
	reqs_done(rc->cl, failed);
	/* A sender may be blocked on c (a long WRITE into a slow peer):
	 * shut c down so it returns, then close it. */
	conn_shutdown(c);
	conn_close_unused(rc, c);
	pthread_mutex_lock(&rc->lock);
}

/* How long an idle reader waits before it looks again: a request sent
 * meanwhile has its deadline checked at most this late. */
static int idle_wait_ms(const struct rconn *rc)
{
	int ms = rc->cl->timeout_ms / 4;

	return ms > 0 ? ms : 1;
}

/*
 * The reader: it waits in the connection for the next answer, up to the
 * oldest pending request's deadline, or idle_wait_ms with nothing
 * pending.  Waiting in the connection even when idle (rather than on a
 * condition variable a submitter must signal) saves every request on an
 * idle connection a thread wakeup, a futex call on the fault path.  A wait
 * that ends with nothing read (the first byte of a header) is over
 * without harm unless a request is overdue: the server stopped answering,
 * and the connection is torn down with every request on it.  Only while
 * there is no connection does it sleep on reader_cond (conn_ensure wakes
 * it).
 */
static void *reader_main(void *arg)
{
	struct rconn *rc = arg;

	pthread_mutex_lock(&rc->lock);
	while (!rc->stopping) {
		struct ufo_conn *c = rc->conn;
		bool idle = false;
		int wait, err;

		if (!c) {
			pthread_cond_wait(&rc->reader_cond, &rc->lock);
			continue;
		}
		wait = rc->pending ? ms_until(rc->pending->deadline)
				   : idle_wait_ms(rc);
		rc->reading = true;
		pthread_mutex_unlock(&rc->lock);
		err = read_one(rc, c, wait, &idle);
		pthread_mutex_lock(&rc->lock);
		rc->reading = false;
		if (err && idle && rc->conn == c &&
		    !(rc->pending && now_ns() >= rc->pending->deadline))
			continue; /* nothing came, and nothing is late */
		if (err)
			reader_failed(rc, c, err);
	}
	pthread_mutex_unlock(&rc->lock);
	return NULL;
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
		pthread_cond_signal(&rc->reader_cond); /* it reads c now */
		pthread_mutex_unlock(&rc->lock);
	}
	pthread_mutex_unlock(&rc->connect_lock);
	return err;
}

/* ---- requests */

/* Registers q on rc and sends it; q's done runs exactly once from here on
 * (see client.h).  q is never touched after its done ran: a request failed
 * while we send it (the connection broke) is completed here, after the
 * send, not by whoever failed it. */
static void send_request(struct rconn *rc, struct client_req *q)
{
	struct ufo_conn *c;
	uint64_t gen;
	uint16_t v;
	bool fin;
	int err;

	pthread_mutex_lock(&rc->lock);
	c = rc->conn;
	gen = rc->gen;
	v = rc->version;
	if (!c) {
		pthread_mutex_unlock(&rc->lock);
		q->status = -ECONNRESET;
		req_done(rc->cl, q);
		return;
	}
	q->rc = rc;
	q->sending = true;
	pending_push(rc, q);
	pthread_mutex_unlock(&rc->lock);

	pthread_mutex_lock(&rc->send_lock);
	/* The reader may have failed (and failed q) and closed c since:
	 * gen tells, and c must not be touched then. */
	pthread_mutex_lock(&rc->lock);
	err = rc->gen == gen && !q->finished ? 0 : -ECONNRESET;
	pthread_mutex_unlock(&rc->lock);
	if (!err) {
		err = frame_send(c, v, q->k.op, q->id, 0, q->k.p1, q->k.l1,
				 q->k.p2, q->k.l2, rc->cl->timeout_ms);
		if (err) /* framing is lost: the reader fails everything */
			rc->cl->tops->shutdown(c);
	}
	pthread_mutex_unlock(&rc->send_lock);

	pthread_mutex_lock(&rc->lock);
	q->sending = false;
	fin = q->finished;
	pthread_mutex_unlock(&rc->lock);
	if (fin)
		req_done(rc->cl, q);
}

/* The connection with the fewest requests in flight, ties broken round
 * robin: a deep WILLNEED or several objects' readahead on one client
 * spread over its connections instead of queueing behind one another
 * (each connection is one stream: a 1 MiB answer delays every answer
 * queued after it). */
struct rconn *pick_conn(struct ufo_client *cl)
{
	unsigned start = atomic_fetch_add(&cl->rr, 1), best = 0, least = ~0u;

	for (unsigned k = 0; k < cl->nconns; k++) {
		unsigned i = (start + k) % cl->nconns;
		unsigned n = atomic_load_explicit(&cl->conns[i].inflight,
						  memory_order_relaxed);

		if (n < least) {
			least = n;
			best = i;
		}
	}
	return &cl->conns[best];
}

static void submit_on(struct ufo_client *cl, struct rconn *rc,
		      struct client_req *q)
{
	int err;

	q->id = atomic_fetch_add(&cl->next_id, 1);
	q->t0 = now_ns();
	q->deadline = q->t0 + (uint64_t)cl->timeout_ms * 1000000u;
	q->status = 0;
	q->sending = q->finished = false;
	q->errmsg[0] = '\0';
	q->k.data_len = 0;
	q->rc = rc;
	atomic_fetch_add_explicit(&rc->inflight, 1, memory_order_relaxed);
	if (q->no_connect) {
		pthread_mutex_lock(&rc->lock);
		err = rc->conn ? 0 : -ENOTCONN;
		pthread_mutex_unlock(&rc->lock);
	} else {
		err = conn_ensure(rc);
	}
	if (err) {
		q->status = err;
		req_done(cl, q);
		return;
	}
	send_request(rc, q);
}

void client_submit(struct ufo_client *cl, struct client_req *q)
{
	submit_on(cl, pick_conn(cl), q);
}

/* ---- waiting for a request: synchronous calls and client_start/finish */

struct client_op {
	struct client_req q;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
};

static void op_done(struct client_req *q, int err)
{
	struct client_op *o = ufo_container_of(q, struct client_op, q);

	(void)err;
	pthread_mutex_lock(&o->lock);
	o->done = true;
	pthread_cond_signal(&o->cond);
	pthread_mutex_unlock(&o->lock);
}

static void op_start(struct ufo_client *cl, struct rconn *rc,
		     struct client_call *k, struct client_op *o)
{
	o->q = (struct client_req){ .k = *k, .done = op_done };
	o->done = false;
	pthread_mutex_init(&o->lock, NULL);
	pthread_cond_init(&o->cond, NULL);
	submit_on(cl, rc, &o->q);
}

/* Waits for o (the reader bounds the wait by the request's timeout);
 * copies the answer's length back to k and the server's message to this
 * thread's ufo_client_last_error. */
static int op_finish(struct client_op *o, struct client_call *k)
{
	pthread_mutex_lock(&o->lock);
	while (!o->done)
		pthread_cond_wait(&o->cond, &o->lock);
	pthread_mutex_unlock(&o->lock);
	pthread_mutex_destroy(&o->lock);
	pthread_cond_destroy(&o->cond);
	k->data_len = o->q.k.data_len;
	snprintf(last_error, sizeof(last_error), "%s",
		 o->q.status ? o->q.errmsg : "");
	return o->q.status;
}

int client_call_on(struct ufo_client *cl, struct rconn *rc,
		   struct client_call *k)
{
	struct client_op o;

	op_start(cl, rc, k, &o);
	return op_finish(&o, k);
}

/* A request in flight for the cluster layer (client_start/finish): k must
 * live until finish. */
struct client_op_ext {
	struct client_op o;
	struct client_call *k;
};

struct client_op *client_start(struct ufo_client *cl, struct client_call *k)
{
	struct client_op_ext *e = malloc(sizeof(*e));

	if (!e)
		return NULL;
	e->k = k;
	op_start(cl, pick_conn(cl), k, &e->o);
	return &e->o;
}

int client_finish(struct client_op *o)
{
	struct client_op_ext *e;
	int err;

	if (!o)
		return -ENOMEM;
	e = ufo_container_of(o, struct client_op_ext, o);
	err = op_finish(o, e->k);
	free(e);
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
		pthread_cond_destroy(&rc->reader_cond);
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
		pthread_cond_init(&rc->reader_cond, NULL);
		pthread_mutex_init(&rc->send_lock, NULL);
		pthread_mutex_init(&rc->connect_lock, NULL);
	}
	if (wire_crypto_init())
		return -EIO;
	if ((err = client_secret(cl, o)))
		return err;
	for (unsigned i = 0; i < cl->nconns && !err; i++) {
		struct rconn *rc = &cl->conns[i];

		err = spawn_masked(&rc->reader, reader_main, rc);
		rc->reader_started = !err;
	}
	return err;
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
	/* The others now too, while the caller expects to wait: a request
	 * that finds its connection down later has it connected by an I/O
	 * worker (client_req.no_connect), which a fresh client should not
	 * need.  Their errors wait for their first request. */
	for (unsigned i = 1; i < cl->nconns && !err; i++)
		conn_ensure(&cl->conns[i]);
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

/* Connects now, so a bad address or secret shows here. */
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
	/* No request may be in progress (the caller's contract), so the
	 * readers are asleep or about to be: wake them to end. */
	for (unsigned i = 0; i < cl->nconns; i++) {
		struct rconn *rc = &cl->conns[i];

		pthread_mutex_lock(&rc->lock);
		rc->stopping = true;
		pthread_cond_signal(&rc->reader_cond);
		if (rc->conn) /* the reader waits in it: make it return */
			conn_shutdown(rc->conn);
		pthread_mutex_unlock(&rc->lock);
		if (rc->reader_started)
			pthread_join(rc->reader, NULL);
		conn_close(rc->conn);
	}
	client_free(cl);
}

