/* SPDX-License-Identifier: MIT */
/*
 * Connections as seen from any thread: answers, the output queue, and the
 * epoll mask.  Everything here runs under conn->lock, and the epoll mask is
 * recomputed (conn_update_locked) after every change to what it depends on,
 * so a worker that drains the last in-flight request re-enables reading
 * without waking the loop.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "log.h"
#include "server.h"

#define FLUSH_IOV 16

struct conn *conn_new(struct server *srv, const struct conn_type *type,
		      struct ufo_conn *tc, int fd, void *tp)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->srv = srv;
	c->type = type;
	c->t = tc;
	c->fd = fd;
	c->tp = tp;
	atomic_init(&c->refs, 1);
	pthread_mutex_init(&c->lock, NULL);
	c->auth_deadline_ms = now_ms() + srv->cfg.auth_timeout_ms;
	return c;
}

void conn_get(struct conn *c)
{
	atomic_fetch_add(&c->refs, 1);
}

static void drop_output(struct conn *c)
{
	while (c->out_head) {
		struct outbuf *ob = c->out_head;
		c->out_head = ob->next;
		free(ob);
	}
	c->out_tail = NULL;
	c->out_bytes = 0;
}

void conn_close_transport(struct conn *c)
{
	if (c->type->close)
		c->type->close(c); /* RDMA: registrations before the QP */
	c->t->ops->close(c->t);
}

void conn_put(struct conn *c)
{
	if (atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	drop_output(c);
	free(c->payload);
	conn_close_transport(c);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static bool may_read_locked(struct conn *c)
{
	return !c->closing && !c->dead && !c->barrier &&
	       c->inflight < CONN_MAX_INFLIGHT &&
	       c->inflight_bytes + c->out_bytes < CONN_MAX_INFLIGHT_BYTES;
}

static bool send_idle_locked(struct conn *c)
{
	return !c->out_head &&
	       (!c->t->ops->send_idle || c->t->ops->send_idle(c->t));
}

bool conn_may_read(struct conn *c)
{
	bool ok;

	pthread_mutex_lock(&c->lock);
	ok = may_read_locked(c);
	pthread_mutex_unlock(&c->lock);
	return ok;
}

/* A dead socket leaves the epoll set at once: epoll reports EPOLLHUP and
 * EPOLLERR whatever the mask, and the loop would spin on them while the
 * connection waits for its in-flight requests before it can be reaped. */
static void conn_update_locked(struct conn *c)
{
	uint32_t want = 0;
	bool done = !c->inflight &&
		    (c->dead || (c->closing && send_idle_locked(c)));
	bool reap_now = done && !c->reaping;
	bool rd;

	if (reap_now)
		c->reaping = true;
	if (c->dead || c->reaping) {
		if (c->registered)
			conn_unwatch(c);
		c->registered = false;
		/* Queued for reaping only after the DEL: the loop may drop its
		 * reference (at the top of its next iteration) as soon as c is
		 * queued, and must by then get no more epoll events naming c.
		 * Queued before the DEL, a worker preempted in between let the
		 * loop reap c and then receive an event for it (use after
		 * free, seen under ASan during the SIGTERM drain). */
		if (reap_now)
			loop_reap_later(c);
		return;
	}
	rd = may_read_locked(c);
	if (rd)
		want |= EPOLLIN;
	if (c->out_head)
		want |= EPOLLOUT;
	/* Bytes a buffering type already holds raise no epoll event: when
	 * reading resumes (a worker answered the request that held it back),
	 * the loop must look at c by itself. */
	if (rd && !c->read_on && c->t->ops->buffers)
		loop_read_later(c);
	c->read_on = rd;
	if (want != c->events && c->registered &&
	    !conn_watch(c, want, false))
		c->events = want;
}

/* Frees the fully sent buffers at the head after n bytes went out. */
static void consume_output(struct conn *c, size_t n)
{
	c->out_bytes -= n;
	while (n) {
		struct outbuf *ob = c->out_head;
		size_t left = ob->len - ob->off, k = n < left ? n : left;

		ob->off += k;
		n -= k;
		if (ob->off < ob->len)
			break;
		c->out_head = ob->next;
		free(ob);
	}
	if (!c->out_head)
		c->out_tail = NULL;
}

static void flush_locked(struct conn *c)
{
	while (c->out_head && !c->dead) {
		struct iovec iov[FLUSH_IOV];
		struct outbuf *ob = c->out_head;
		int niov = 0;
		ssize_t n;

		for (; ob && niov < FLUSH_IOV; ob = ob->next)
			iov[niov++] = (struct iovec){ ob->data + ob->off,
						      ob->len - ob->off };
		n = conn_writev(c, iov, niov);
		if (n == -EAGAIN)
			break;
		if (n < 0) {
			log_debug("fd %d: send: %s", c->fd, strerror((int)-n));
			c->dead = true;
			break;
		}
		consume_output(c, (size_t)n);
	}
	if (c->dead)
		drop_output(c);
}

void conn_flush(struct conn *c)
{
	pthread_mutex_lock(&c->lock);
	flush_locked(c);
	conn_update_locked(c);
	pthread_mutex_unlock(&c->lock);
}

/* Why c's transport failed: at info level when the transport has words
 * for it (a TLS handshake that failed), else at debug (peers leave). */
static void conn_log_failure(struct conn *c, int rc)
{
	const char *why = c->t->ops->last_error ?
			  c->t->ops->last_error(c->t) : NULL;

	if (why)
		log_info("fd %d: %s", c->fd, why);
	else
		log_debug("fd %d: %s: %s", c->fd, c->t->ops->name,
			  strerror(-rc));
}

int conn_event(struct conn *c)
{
	int rc, rc2;

	pthread_mutex_lock(&c->lock);
	rc = c->t->ops->event(c->t);
	if (rc < 0) {
		conn_log_failure(c, rc);
		c->dead = true;
	} else if (c->registered) {
		/* A handshake step may wait for the other direction, and
		 * one that finished for what c wants again. */
		if ((rc2 = conn_watch(c, c->events, false))) {
			conn_log_failure(c, rc2);
			c->dead = true;
			rc = rc2;
		}
	}
	if (rc > 0 && (rc & UFO_EV_READABLE))
		loop_read_later(c); /* records that came with the handshake */
	if (rc) {
		flush_locked(c);
		conn_update_locked(c);
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

void conn_close_soon(struct conn *c)
{
	pthread_mutex_lock(&c->lock);
	c->closing = true;
	conn_update_locked(c);
	pthread_mutex_unlock(&c->lock);
}

struct outbuf *outbuf_new(size_t payload_len)
{
	struct outbuf *ob =
		malloc(sizeof(*ob) + sizeof(struct wire_hdr) + payload_len);

	if (!ob)
		return NULL;
	ob->next = NULL;
	ob->len = sizeof(struct wire_hdr) + payload_len;
	ob->off = 0;
	return ob;
}

/* The answer carries the request's op, so the peer can match it; a request
 * whose op is not one (garbage, or an op this version lacks) is answered
 * as HELLO, the op every peer parses. */
static uint16_t answer_op(uint16_t op)
{
	uint16_t base = op & (uint16_t)~WIRE_RESPONSE;

	return (base >= WIRE_HELLO && base <= WIRE_OP_MAX ? base : WIRE_HELLO) |
	       WIRE_RESPONSE;
}

static void frame_fill(struct conn *c, struct outbuf *ob,
		       const struct wire_hdr *req, uint32_t status)
{
	struct iovec payload = { outbuf_payload(ob),
				 ob->len - sizeof(struct wire_hdr) };
	struct wire_hdr h;

	/* Cannot fail: no handler builds an answer over WIRE_MAX_PAYLOAD. */
	wire_frame_hdr(&h, c->version, answer_op(req->op), req->req_id,
		      status, &payload, 1);
	wire_put_hdr(ob->data, sizeof(h), &h);
}

static void enqueue_locked(struct conn *c, struct outbuf *ob)
{
	if (c->dead) {
		free(ob);
		return;
	}
	if (c->out_tail)
		c->out_tail->next = ob;
	else
		c->out_head = ob;
	c->out_tail = ob;
	c->out_bytes += ob->len;
	flush_locked(c);
}

/* An empty answer when ob is NULL; when memory is short even for that,
 * the connection is closed: the peer must not wait for a lost answer. */
static struct outbuf *frame_for(struct conn *c, const struct wire_hdr *req,
				uint32_t status, struct outbuf *ob)
{
	if (!ob)
		ob = outbuf_new(0);
	if (ob)
		frame_fill(c, ob, req, status);
	return ob;
}

void conn_answer(struct conn *c, const struct wire_hdr *hdr, uint32_t status,
		 struct outbuf *ob)
{
	ob = frame_for(c, hdr, status, ob);
	pthread_mutex_lock(&c->lock);
	if (ob)
		enqueue_locked(c, ob);
	else
		c->dead = true;
	conn_update_locked(c);
	pthread_mutex_unlock(&c->lock);
}

void conn_answer_copy(struct conn *c, const struct wire_hdr *hdr,
		      const void *payload, size_t len)
{
	struct outbuf *ob = outbuf_new(len);

	if (!ob) {
		conn_answer(c, hdr, WIRE_EIO, NULL);
		return;
	}
	memcpy(outbuf_payload(ob), payload, len);
	conn_answer(c, hdr, WIRE_OK, ob);
}

static struct outbuf *error_buf(const char *fmt, va_list ap)
{
	char msg[WIRE_MAX_ERRMSG + 1];
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t len = n < 0 ? 0 : (size_t)n > WIRE_MAX_ERRMSG ? WIRE_MAX_ERRMSG
							     : (size_t)n;
	struct outbuf *ob = outbuf_new(len);

	if (ob)
		memcpy(outbuf_payload(ob), msg, len);
	return ob;
}

void conn_error(struct conn *c, const struct wire_hdr *hdr, uint32_t status,
		const char *fmt, ...)
{
	struct outbuf *ob;
	va_list ap;

	va_start(ap, fmt);
	ob = error_buf(fmt, ap);
	va_end(ap);
	log_debug("fd %d: %s: %.*s", c->fd, wire_status_name(status),
		  ob ? (int)(ob->len - sizeof(struct wire_hdr)) : 0,
		  ob ? (char *)outbuf_payload(ob) : "");
	conn_answer(c, hdr, status, ob);
}

/* ---- requests */

struct request *request_new(struct conn *c, const struct wire_hdr *hdr,
			    uint8_t *payload)
{
	struct request *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->conn = c;
	r->hdr = *hdr;
	r->payload = payload;
	conn_get(c);
	return r;
}

void request_free(struct request *r)
{
	struct conn *c = r->conn;

	store_put(r->obj);
	free(r->payload);
	free(r);
	conn_put(c);
}

void request_start(struct request *r, size_t cost)
{
	struct conn *c = r->conn;

	r->cost = cost;
	pthread_mutex_lock(&c->lock);
	c->inflight++;
	c->inflight_bytes += cost;
	/* A COMMIT is a write made durable: SYNC waits for it too. */
	if (request_is_write(r))
		c->writes_inflight++;
	conn_update_locked(c);
	pthread_mutex_unlock(&c->lock);
}

/* The last WRITE before a waiting SYNC releases it to the workers: the
 * SYNC answers "everything before me is durable", and WRITEs are answered
 * only once durable. */
void request_done(struct request *r, uint32_t status, struct outbuf *ob)
{
	struct conn *c = r->conn;
	struct request *barrier = NULL;

	ob = frame_for(c, &r->hdr, status, ob);
	atomic_fetch_add(&c->srv->stats.requests, 1);
	pthread_mutex_lock(&c->lock);
	c->inflight--;
	c->inflight_bytes -= r->cost;
	if ((request_is_write(r)) &&
	    !--c->writes_inflight && c->barrier) {
		barrier = c->barrier;
		c->barrier = NULL;
	}
	if (ob)
		enqueue_locked(c, ob);
	else
		c->dead = true;
	conn_update_locked(c);
	pthread_mutex_unlock(&c->lock);
	if (barrier)
		queue_push(&c->srv->work, barrier);
	request_free(r);
}

void request_fail(struct request *r, uint32_t status, const char *fmt, ...)
{
	struct outbuf *ob;
	va_list ap;

	va_start(ap, fmt);
	ob = error_buf(fmt, ap);
	va_end(ap);
	log_debug("fd %d: %s #%llu: %s: %.*s", r->conn->fd,
		  wire_op_name(r->hdr.op), (unsigned long long)r->hdr.req_id,
		  wire_status_name(status),
		  ob ? (int)(ob->len - sizeof(struct wire_hdr)) : 0,
		  ob ? (char *)outbuf_payload(ob) : "");
	request_done(r, status, ob);
}

void request_after_writes(struct request *r)
{
	struct conn *c = r->conn;
	bool now;

	pthread_mutex_lock(&c->lock);
	now = !c->writes_inflight;
	if (!now)
		c->barrier = r;
	conn_update_locked(c);
	pthread_mutex_unlock(&c->lock);
	if (now)
		queue_push(&c->srv->work, r);
}
