/* SPDX-License-Identifier: MIT */
/*
 * The RDMA transport on rdma-core (see rdma.h for the model).  Every ibv_*
 * and rdma_* call of the project is in this file, converted here to 0 or a
 * negative errno.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <rdma/rdma_cma.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rdma.h"

#define RDMA_RESOLVE_MS 2000
#define RDMA_READ_WR_ID UINT64_MAX /* the one READ/WRITE a client has in flight */
#define RDMA_BUF_BYTES ((size_t)(RDMA_NRECV + RDMA_NSEND) * RDMA_MSG_BYTES)

/* One end of a connection: queue pair, two completion queues each with its
 * own channel (the receive side and the send side may be driven by two
 * threads), one registered region holding every buffer. */
struct urdma_ep {
	struct rdma_cm_id *id;
	struct rdma_event_channel *cm; /* client: watched while waiting */
	struct ibv_pd *pd;
	struct ibv_comp_channel *rcc, *scc;
	struct ibv_cq *rcq, *scq;
	struct ibv_mr *mr;
	char *buf;
	/* receive side: completed buffers not yet consumed, in order */
	unsigned ready[RDMA_NRECV], ready_len[RDMA_NRECV];
	unsigned ready_head, ready_count, cur_off;
	/* send side */
	unsigned send_next, send_inflight;

	_Atomic bool broken; /* set by whichever thread sees the failure */
};

struct urdma_client { /* client */
	struct ufo_conn base; /* first: the transport ops cast back */
	struct rdma_event_channel *ec;
	struct urdma_ep ep;
};

struct urdma_conn {
	struct urdma_ep ep;
	struct urdma_conn *next; /* on the listener's list until established */
	bool established;
	bool reported_closed;
};

static void srv_conn_destroy(struct urdma_conn *c);

struct urdma_listener {
	struct rdma_event_channel *ec;
	struct rdma_cm_id *id;
	struct urdma_conn *pending; /* accepted, not yet established */
};

/* ---- errors: the three conventions, converted once */

static int err_neg1(int rc) /* -1 + errno */
{
	return rc ? (errno ? -errno : -EIO) : 0;
}

static int err_pos(int rc) /* positive errno (ibv_post_*, req_notify) */
{
	return rc > 0 ? -rc : rc < 0 ? -EIO : 0;
}

static int err_null(const void *p) /* NULL + errno */
{
	return p ? 0 : (errno ? -errno : -ENOMEM);
}

bool urdma_available(void)
{
	int n = 0;
	struct ibv_device **l = ibv_get_device_list(&n);

	if (l)
		ibv_free_device_list(l);
	return l && n > 0;
}

/* ---- endpoint setup and teardown */

static int post_recv(struct urdma_ep *e, unsigned i)
{
	struct ibv_sge sge = { .addr = (uintptr_t)(e->buf + (size_t)i * RDMA_MSG_BYTES),
			       .length = RDMA_MSG_BYTES, .lkey = e->mr->lkey };
	struct ibv_recv_wr wr = { .wr_id = i, .sg_list = &sge, .num_sge = 1 }, *bad;

	return err_pos(ibv_post_recv(e->id->qp, &wr, &bad));
}

static int ep_cqs(struct urdma_ep *e)
{
	struct ibv_context *v = e->id->verbs;
	int rc;

	if ((rc = err_null(e->pd = ibv_alloc_pd(v))) ||
	    (rc = err_null(e->rcc = ibv_create_comp_channel(v))) ||
	    (rc = err_null(e->scc = ibv_create_comp_channel(v))) ||
	    (rc = err_null(e->rcq = ibv_create_cq(v, RDMA_NRECV, NULL, e->rcc, 0))) ||
	    (rc = err_null(e->scq = ibv_create_cq(v, RDMA_NSEND, NULL, e->scc, 0))))
		return rc;
	if ((rc = err_pos(ibv_req_notify_cq(e->rcq, 0))) ||
	    (rc = err_pos(ibv_req_notify_cq(e->scq, 0))))
		return rc;
	/* Non-blocking channels: ibv_get_cq_event must never block us. */
	fcntl(e->rcc->fd, F_SETFL, fcntl(e->rcc->fd, F_GETFL) | O_NONBLOCK);
	fcntl(e->scc->fd, F_SETFL, fcntl(e->scc->fd, F_GETFL) | O_NONBLOCK);
	return 0;
}

static int ep_setup(struct urdma_ep *e, struct rdma_cm_id *id)
{
	struct ibv_qp_init_attr qa = { .qp_type = IBV_QPT_RC, .sq_sig_all = 1,
		.cap = { .max_send_wr = RDMA_NSEND, .max_recv_wr = RDMA_NRECV,
			 .max_send_sge = 1, .max_recv_sge = 1 } };
	int rc;

	e->id = id;
	if ((rc = ep_cqs(e)))
		return rc;
	qa.send_cq = e->scq;
	qa.recv_cq = e->rcq;
	if ((rc = err_neg1(rdma_create_qp(id, e->pd, &qa))))
		return rc;
	e->buf = aligned_alloc(4096, RDMA_BUF_BYTES);
	if ((rc = err_null(e->buf)) ||
	    (rc = err_null(e->mr = ibv_reg_mr(e->pd, e->buf, RDMA_BUF_BYTES,
					      IBV_ACCESS_LOCAL_WRITE))))
		return rc;
	for (unsigned i = 0; i < RDMA_NRECV && !rc; i++)
		rc = post_recv(e, i);
	return rc;
}

static void ep_destroy(struct urdma_ep *e)
{

	if (e->id && e->id->qp)
		rdma_destroy_qp(e->id);
	if (e->mr)
		ibv_dereg_mr(e->mr);
	if (e->rcq)
		ibv_destroy_cq(e->rcq);
	if (e->scq)
		ibv_destroy_cq(e->scq);
	if (e->rcc)
		ibv_destroy_comp_channel(e->rcc);
	if (e->scc)
		ibv_destroy_comp_channel(e->scc);
	if (e->pd)
		ibv_dealloc_pd(e->pd);
	free(e->buf);
	if (e->id)
		rdma_destroy_id(e->id);
	memset(e, 0, sizeof(*e));
}

static struct rdma_conn_param conn_param(void)
{
	/* rnr_retry_count 7: retry forever while the peer has no receive
	 * posted (its reader is behind), instead of failing the QP. */
	return (struct rdma_conn_param){ .retry_count = 7,
					 .rnr_retry_count = 7,
					 .responder_resources = 1,
					 .initiator_depth = 1 };
}

/* ---- completions */

/* Re-arms cq and drains its channel's events; never blocks. */
static int cq_rearm(struct ibv_comp_channel *cc, struct ibv_cq *cq)
{
	struct ibv_cq *ev_cq;
	void *ctx;

	while (ibv_get_cq_event(cc, &ev_cq, &ctx) == 0)
		ibv_ack_cq_events(ev_cq, 1);
	return err_pos(ibv_req_notify_cq(cq, 0));
}

/* Polls one completion: 1 with *wc, 0 when none, -ECONNRESET on a failed
 * one (the QP is in error: flushed by a disconnect, or the peer died). */
static int cq_poll1(struct urdma_ep *e, struct ibv_cq *cq, struct ibv_wc *wc)
{
	int n = ibv_poll_cq(cq, 1, wc);

	if (n < 0)
		return -EIO;
	if (n && wc->status != IBV_WC_SUCCESS) {
		e->broken = true;
		return -ECONNRESET;
	}
	return n;
}

/* Reads the client's pending connection-manager events.  A peer that
 * disconnected, or died (its kernel sends the disconnect), shows up here
 * and not on the completion queues: librdmacm moves the QP to the error
 * state when the event is read, which flushes every posted request, so
 * the waiters see failed completions.  Returns -ECONNRESET then. */
static int cm_drain(struct urdma_ep *e)
{
	struct rdma_cm_event *ev;
	int rc = 0;

	while (e->cm && rdma_get_cm_event(e->cm, &ev) == 0) {
		if (ev->event == RDMA_CM_EVENT_DISCONNECTED ||
		    ev->event == RDMA_CM_EVENT_DEVICE_REMOVAL ||
		    ev->event == RDMA_CM_EVENT_TIMEWAIT_EXIT) {
			atomic_store(&e->broken, true);
			rc = -ECONNRESET;
		}
		rdma_ack_cm_event(ev);
	}
	/* Reading DISCONNECTED does not move the QP to the error state;
	 * rdma_disconnect does, which flushes both CQs and so wakes a sender
	 * blocked on the send channel as well as this reader. */
	if (rc)
		rdma_disconnect(e->id);
	return rc;
}

/* Waits for the completion channel cc, or the connection manager. */
static int wait_cq_or_cm(struct urdma_ep *e, int cc_fd, int timeout_ms)
{
	struct pollfd p[2] = { { .fd = cc_fd, .events = POLLIN },
			       { .fd = e->cm ? e->cm->fd : -1, .events = POLLIN } };
	int n;

	do
		n = poll(p, 2, timeout_ms);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ETIMEDOUT;
	if (p[1].revents & POLLIN)
		cm_drain(e); /* sets broken; the caller drains the CQ first */
	return 0;
}

/* Waits for one completion on cq (blocking up to timeout_ms). */
static int cq_wait1(struct urdma_ep *e, struct ibv_comp_channel *cc,
		    struct ibv_cq *cq, struct ibv_wc *wc, int timeout_ms)
{
	for (;;) {
		int rc = cq_poll1(e, cq, wc);

		if (rc)
			return rc < 0 ? rc : 0;
		/* Arm, then poll again: a completion that landed between the
		 * empty poll and the arm raises no event. */
		if ((rc = cq_rearm(cc, cq)) || (rc = cq_poll1(e, cq, wc)))
			return rc < 0 ? rc : 0;
		/* Disconnected and nothing left that arrived before: done.
		 * (Completions that landed before the disconnect are still
		 * delivered: an error reply sent just before a close.) */
		if (e->broken)
			return -ECONNRESET;
		if ((rc = wait_cq_or_cm(e, cc->fd, timeout_ms)))
			return rc;
	}
}

/* A receive completion: its buffer joins the ready ring. */
static void recv_ready(struct urdma_ep *e, const struct ibv_wc *wc)
{
	unsigned slot = (e->ready_head + e->ready_count) % RDMA_NRECV;

	e->ready[slot] = (unsigned)wc->wr_id;
	e->ready_len[slot] = wc->byte_len;
	e->ready_count++;
}

/* Copies up to len ready bytes out; reposts consumed buffers. */
static ssize_t recv_copy(struct urdma_ep *e, char *dst, size_t len)
{
	size_t got = 0;

	while (got < len && e->ready_count) {
		unsigned b = e->ready[e->ready_head];
		size_t left = e->ready_len[e->ready_head] - e->cur_off;
		size_t n = left < len - got ? left : len - got;

		memcpy(dst + got, e->buf + (size_t)b * RDMA_MSG_BYTES + e->cur_off, n);
		got += n;
		e->cur_off += (unsigned)n;
		if (e->cur_off == e->ready_len[e->ready_head]) {
			e->cur_off = 0;
			e->ready_head = (e->ready_head + 1) % RDMA_NRECV;
			e->ready_count--;
			if (post_recv(e, b))
				e->broken = true;
		}
	}
	return (ssize_t)got;
}

/* Posts one SEND of len bytes from send buffer slot. */
static int post_send(struct urdma_ep *e, unsigned slot, size_t len)
{
	char *p = e->buf + (size_t)(RDMA_NRECV + slot) * RDMA_MSG_BYTES;
	struct ibv_sge sge = { .addr = (uintptr_t)p, .length = (uint32_t)len,
			       .lkey = e->mr->lkey };
	struct ibv_send_wr wr = { .wr_id = slot, .sg_list = &sge, .num_sge = 1,
				  .opcode = IBV_WR_SEND,
				  .send_flags = IBV_SEND_SIGNALED }, *bad;

	return err_pos(ibv_post_send(e->id->qp, &wr, &bad));
}

static char *send_slot(struct urdma_ep *e)
{
	return e->buf + (size_t)(RDMA_NRECV + e->send_next) * RDMA_MSG_BYTES;
}

static int send_one(struct urdma_ep *e, size_t len)
{
	int rc = post_send(e, e->send_next, len);

	if (!rc) {
		e->send_next = (e->send_next + 1) % RDMA_NSEND;
		e->send_inflight++;
	}
	return rc;
}

/* ---- client transport ops (blocking with timeouts) */

static struct urdma_client *rc_of(struct ufo_conn *c)
{
	return (struct urdma_client *)c;
}

static int client_send(struct ufo_conn *c, struct iovec *iov, int iovcnt,
		       int timeout_ms)
{
	struct urdma_ep *e = &rc_of(c)->ep;
	size_t fill = 0;
	struct ibv_wc wc;
	int rc;

	for (int i = 0; i < iovcnt; i++) {
		const char *p = iov[i].iov_base;
		size_t left = iov[i].iov_len;

		while (left) {
			size_t n = RDMA_MSG_BYTES - fill;
			if (!fill && e->send_inflight == RDMA_NSEND) {
				if ((rc = cq_wait1(e, e->scc, e->scq, &wc, timeout_ms)))
					return rc;
				e->send_inflight--;
			}
			n = n < left ? n : left;
			memcpy(send_slot(e) + fill, p, n);
			fill += n;
			p += n;
			left -= n;
			if (fill == RDMA_MSG_BYTES) {
				if ((rc = send_one(e, fill)))
					return rc;
				fill = 0;
			}
		}
	}
	return fill ? send_one(e, fill) : 0;
}

static int client_recv(struct ufo_conn *c, void *buf, size_t len,
		       int timeout_ms)
{
	struct urdma_ep *e = &rc_of(c)->ep;
	size_t got = 0;

	while (got < len) {
		struct ibv_wc wc;
		int rc;

		got += (size_t)recv_copy(e, (char *)buf + got, len - got);
		if (got == len)
			break;
		if ((rc = cq_wait1(e, e->rcc, e->rcq, &wc, timeout_ms)))
			return rc;
		recv_ready(e, &wc);
	}
	return 0;
}

static int rdma_posted(struct urdma_ep *e, enum ibv_wr_opcode op,
		       struct ibv_mr *mr, void *buf, size_t len, uint64_t raddr,
		       uint32_t rkey, int timeout_ms);

/* One RDMA READ or WRITE between buf and (raddr, rkey), waited for on the
 * send queue's completions (SENDs completing meanwhile are counted off as
 * client_send would).  The caller holds the connection's send exclusion,
 * so nobody else polls that CQ.  buf is registered for this operation
 * only: a cached registration could pin pages of a buffer since unmapped,
 * and a new buffer at the same address would silently miss the data. */
static int client_rdma_one(struct ufo_conn *c, enum ibv_wr_opcode op, void *buf,
			   size_t len, uint64_t raddr, uint32_t rkey,
			   int timeout_ms)
{
	struct urdma_ep *e = &rc_of(c)->ep;
	struct ibv_mr *mr;
	int rc;

	if (len > UINT32_MAX)
		return -EINVAL;
	if ((rc = err_null(mr = ibv_reg_mr(e->pd, buf, len,
					   IBV_ACCESS_LOCAL_WRITE))))
		return rc;
	rc = rdma_posted(e, op, mr, buf, len, raddr, rkey, timeout_ms);
	ibv_dereg_mr(mr);
	return rc;
}

static int client_read_remote(struct ufo_conn *c, void *dst, size_t len,
			      uint64_t raddr, uint32_t rkey, int timeout_ms)
{
	return client_rdma_one(c, IBV_WR_RDMA_READ, dst, len, raddr, rkey,
			       timeout_ms);
}

static int client_write_remote(struct ufo_conn *c, const void *src, size_t len,
			       uint64_t raddr, uint32_t rkey, int timeout_ms)
{
	return client_rdma_one(c, IBV_WR_RDMA_WRITE, (void *)src, len, raddr,
			       rkey, timeout_ms);
}

/* Posts one RDMA READ or WRITE and waits for its completion. */
static int rdma_posted(struct urdma_ep *e, enum ibv_wr_opcode op,
		       struct ibv_mr *mr, void *buf, size_t len, uint64_t raddr,
		       uint32_t rkey, int timeout_ms)
{
	struct ibv_wc wc;
	int rc;

	if (e->send_inflight == RDMA_NSEND) {
		if ((rc = cq_wait1(e, e->scc, e->scq, &wc, timeout_ms)))
			return rc;
		e->send_inflight--;
	}
	{
		struct ibv_sge sge = { .addr = (uintptr_t)buf,
				       .length = (uint32_t)len,
				       .lkey = mr->lkey };
		struct ibv_send_wr wr = { .wr_id = RDMA_READ_WR_ID,
					  .sg_list = &sge, .num_sge = 1,
					  .opcode = op,
					  .send_flags = IBV_SEND_SIGNALED }, *bad;

		wr.wr.rdma.remote_addr = raddr;
		wr.wr.rdma.rkey = rkey;
		if ((rc = err_pos(ibv_post_send(e->id->qp, &wr, &bad))))
			return rc;
	}
	e->send_inflight++;
	do {
		if ((rc = cq_wait1(e, e->scc, e->scq, &wc, timeout_ms)))
			return rc;
		e->send_inflight--;
	} while (wc.wr_id != RDMA_READ_WR_ID);
	return 0;
}

static void client_shutdown(struct ufo_conn *c)
{
	/* Flushes every posted work request: blocked waits see errors. */
	rdma_disconnect(rc_of(c)->ep.id);
}

static void client_close(struct ufo_conn *c)
{
	struct urdma_client *r = rc_of(c);

	if (r->ep.id)
		rdma_disconnect(r->ep.id);
	ep_destroy(&r->ep);
	if (r->ec)
		rdma_destroy_event_channel(r->ec);
	free(r);
}

/* Waits for the next connection-manager event on ec and checks it is
 * `want`.  -ETIMEDOUT, -ECONNREFUSED (rejected), -EHOSTUNREACH. */
static int cm_expect(struct rdma_event_channel *ec, enum rdma_cm_event_type want,
		     int timeout_ms)
{
	struct rdma_cm_event *ev;
	enum rdma_cm_event_type got;
	int rc = net_wait_fd(ec->fd, POLLIN, timeout_ms);

	if (rc)
		return rc;
	if ((rc = err_neg1(rdma_get_cm_event(ec, &ev))))
		return rc;
	got = ev->event;
	rc = ev->status;
	rdma_ack_cm_event(ev);
	if (got == want)
		return 0;
	if (got == RDMA_CM_EVENT_REJECTED)
		return -ECONNREFUSED;
	if (got == RDMA_CM_EVENT_ADDR_ERROR || got == RDMA_CM_EVENT_ROUTE_ERROR ||
	    got == RDMA_CM_EVENT_UNREACHABLE)
		return -EHOSTUNREACH;
	return rc < 0 ? rc : -ECONNREFUSED;
}

static int resolve_sockaddr(const struct net_addr *a, struct sockaddr_storage *ss)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
	char port[8];

	snprintf(port, sizeof(port), "%u", a->port);
	if (getaddrinfo(a->host, port, &hints, &res))
		return -EHOSTUNREACH;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return 0;
}

static int client_connect_ep(struct urdma_client *r, const struct net_addr *a,
			     int timeout_ms)
{
	struct sockaddr_storage ss;
	struct rdma_conn_param p = conn_param();
	int rc, tmo = timeout_ms < RDMA_RESOLVE_MS ? timeout_ms : RDMA_RESOLVE_MS;

	if ((rc = resolve_sockaddr(a, &ss)) ||
	    (rc = err_neg1(rdma_resolve_addr(r->ep.id, NULL, (struct sockaddr *)&ss, tmo))) ||
	    (rc = cm_expect(r->ec, RDMA_CM_EVENT_ADDR_RESOLVED, timeout_ms)) ||
	    (rc = err_neg1(rdma_resolve_route(r->ep.id, tmo))) ||
	    (rc = cm_expect(r->ec, RDMA_CM_EVENT_ROUTE_RESOLVED, timeout_ms)))
		return rc;
	if ((rc = ep_setup(&r->ep, r->ep.id)) ||
	    (rc = err_neg1(rdma_connect(r->ep.id, &p))) ||
	    (rc = cm_expect(r->ec, RDMA_CM_EVENT_ESTABLISHED, timeout_ms)))
		return rc;
	/* From now on the channel is only drained, never waited on alone. */
	fcntl(r->ec->fd, F_SETFL, fcntl(r->ec->fd, F_GETFL) | O_NONBLOCK);
	r->ep.cm = r->ec;
	return 0;
}

static int client_connect(const struct net_addr *a, int timeout_ms,
			  struct ufo_conn **out)
{
	struct urdma_client *r;
	int rc;

	if (!urdma_available())
		return -ENODEV;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->base.ops = &ufo_rdma_transport;
	rc = err_null(r->ec = rdma_create_event_channel());
	if (!rc)
		rc = err_neg1(rdma_create_id(r->ec, &r->ep.id, NULL, RDMA_PS_TCP));
	if (!rc)
		rc = client_connect_ep(r, a, timeout_ms);
	if (rc) {
		client_close(&r->base);
		return rc;
	}
	*out = &r->base;
	return 0;
}

const struct ufo_transport_ops ufo_rdma_transport = {
	.name = "rdma",
	.connect = client_connect,
	.send = client_send,
	.recv = client_recv,
	.read_remote = client_read_remote,
	.write_remote = client_write_remote,
	.shutdown = client_shutdown,
	.close = client_close,
};

/* ---- server side */

int urdma_listen(const struct net_addr *addr, struct urdma_listener **out)
{
	struct sockaddr_storage ss;
	struct urdma_listener *l;
	int rc;

	if (!urdma_available())
		return -ENODEV;
	if ((rc = resolve_sockaddr(addr, &ss)))
		return rc;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	rc = err_null(l->ec = rdma_create_event_channel());
	if (!rc)
		rc = err_neg1(rdma_create_id(l->ec, &l->id, NULL, RDMA_PS_TCP));
	if (!rc)
		rc = err_neg1(rdma_bind_addr(l->id, (struct sockaddr *)&ss));
	if (!rc)
		rc = err_neg1(rdma_listen(l->id, 64));
	if (!rc)
		fcntl(l->ec->fd, F_SETFL, fcntl(l->ec->fd, F_GETFL) | O_NONBLOCK);
	if (rc) {
		urdma_listener_close(l);
		return rc;
	}
	*out = l;
	return 0;
}

void urdma_listener_close(struct urdma_listener *l)
{
	if (!l)
		return;
	while (l->pending) {
		struct urdma_conn *c = l->pending;
		l->pending = c->next;
		srv_conn_destroy(c);
	}
	if (l->id)
		rdma_destroy_id(l->id);
	if (l->ec)
		rdma_destroy_event_channel(l->ec);
	free(l);
}

int urdma_listener_fd(const struct urdma_listener *l)
{
	return l->ec->fd;
}

static void pending_unlink(struct urdma_listener *l, struct urdma_conn *c)
{
	for (struct urdma_conn **p = &l->pending; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			return;
		}
}

/* Frees a connection and its id.  Its own id must have no unacked event
 * (a CONNECT_REQUEST is counted on the listening id, so the new id may be
 * destroyed while handling it). */
static void srv_conn_destroy(struct urdma_conn *c)
{
	ep_destroy(&c->ep); /* QP, MR, CQs, channels, PD, then the id */
	free(c);
}

static int accept_request(struct urdma_listener *l, struct rdma_cm_id *id)
{
	struct urdma_conn *c = calloc(1, sizeof(*c));
	struct rdma_conn_param p = conn_param();
	int rc;

	if (!c) {
		rdma_reject(id, NULL, 0);
		rdma_destroy_id(id);
		return -ENOMEM;
	}
	id->context = c;
	rc = ep_setup(&c->ep, id); /* sets c->ep.id first: destroy owns it */
	if (!rc)
		rc = err_neg1(rdma_accept(id, &p));
	if (rc) {
		rdma_reject(id, NULL, 0);
		srv_conn_destroy(c);
		return rc;
	}
	c->next = l->pending;
	l->pending = c;
	return 0;
}

/* Terminal events of a connection that never got established (rejected,
 * unreachable, failed, gone before ESTABLISHED): nobody else knows it, so
 * it is destroyed here, after the event is acked. */
static bool kills_pending(enum rdma_cm_event_type t)
{
	return t == RDMA_CM_EVENT_REJECTED || t == RDMA_CM_EVENT_UNREACHABLE ||
	       t == RDMA_CM_EVENT_CONNECT_ERROR ||
	       t == RDMA_CM_EVENT_DISCONNECTED ||
	       t == RDMA_CM_EVENT_TIMEWAIT_EXIT ||
	       t == RDMA_CM_EVENT_DEVICE_REMOVAL;
}

int urdma_listener_event(struct urdma_listener *l, enum urdma_event *kind,
			 struct urdma_conn **conn)
{
	struct rdma_cm_event *ev;
	struct urdma_conn *c, *doomed = NULL;
	enum rdma_cm_event_type t;
	int rc = 0;

	*kind = URDMA_EV_NONE;
	if (rdma_get_cm_event(l->ec, &ev))
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
	c = ev->id == l->id ? NULL : ev->id->context;
	t = ev->event;
	if (t == RDMA_CM_EVENT_CONNECT_REQUEST) {
		rc = accept_request(l, ev->id);
	} else if (c && !c->established && t == RDMA_CM_EVENT_ESTABLISHED) {
		pending_unlink(l, c);
		c->established = true;
		*kind = URDMA_EV_CONNECTED;
		*conn = c;
	} else if (c && !c->established && kills_pending(t)) {
		pending_unlink(l, c);
		doomed = c;
	} else if (c && c->established && kills_pending(t) &&
		   !c->reported_closed) {
		c->reported_closed = true;
		atomic_store(&c->ep.broken, true);
		*kind = URDMA_EV_CLOSED; /* the owner closes it */
		*conn = c;
	}
	rdma_ack_cm_event(ev);
	if (doomed)
		srv_conn_destroy(doomed);
	return rc ? rc : 1;
}

ssize_t urdma_srv_recv(struct urdma_conn *c, void *buf, size_t len)
{
	ssize_t n = recv_copy(&c->ep, buf, len);

	if (n > 0)
		return n;
	return c->ep.broken ? -ECONNRESET : -EAGAIN;
}

/* Copies up to one message from iov into the next send slot, starting at
 * iovec *i, byte *off, which it advances.  Returns the bytes copied. */
static size_t gather_msg(struct urdma_ep *e, const struct iovec *iov,
			 int iovcnt, int *i, size_t *off)
{
	char *dst = send_slot(e);
	size_t fill = 0;

	while (*i < iovcnt && fill < RDMA_MSG_BYTES) {
		size_t left = iov[*i].iov_len - *off;
		size_t n = left < RDMA_MSG_BYTES - fill ? left : RDMA_MSG_BYTES - fill;

		memcpy(dst + fill, (const char *)iov[*i].iov_base + *off, n);
		fill += n;
		*off += n;
		if (*off == iov[*i].iov_len) {
			++*i;
			*off = 0;
		}
	}
	return fill;
}

/* Messages are filled across iovec boundaries: a frame's header and its
 * payload, and several small answers, share one SEND. */
ssize_t urdma_srv_sendv(struct urdma_conn *c, const struct iovec *iov,
			int iovcnt)
{
	struct urdma_ep *e = &c->ep;
	size_t sent = 0, off = 0;
	int i = 0;

	if (e->broken)
		return -ECONNRESET;
	while (e->send_inflight < RDMA_NSEND) {
		size_t n = gather_msg(e, iov, iovcnt, &i, &off);
		int rc;

		if (!n)
			break;
		if ((rc = send_one(e, n)))
			return sent ? (ssize_t)sent : rc;
		sent += n;
	}
	return sent || i == iovcnt ? (ssize_t)sent : -EAGAIN;
}

ssize_t urdma_srv_send(struct urdma_conn *c, const void *buf, size_t len)
{
	struct iovec v = { (void *)buf, len };

	return urdma_srv_sendv(c, &v, 1);
}

int urdma_srv_register(struct urdma_conn *c, void *addr, size_t len,
		       uint32_t *rkey, void **handle)
{
	struct ibv_mr *mr = ibv_reg_mr(c->ep.pd, addr, len,
				       IBV_ACCESS_LOCAL_WRITE |
				       IBV_ACCESS_REMOTE_READ |
				       IBV_ACCESS_REMOTE_WRITE);
	int rc = err_null(mr);

	if (rc)
		return rc;
	*rkey = mr->rkey;
	*handle = mr;
	return 0;
}

void urdma_srv_deregister(void *handle)
{
	if (handle)
		ibv_dereg_mr(handle);
}

bool urdma_srv_send_idle(const struct urdma_conn *c)
{
	return c->ep.send_inflight == 0;
}

int urdma_srv_conn_fds(const struct urdma_conn *c, int fds[2])
{
	fds[0] = c->ep.rcc->fd;
	fds[1] = c->ep.scc->fd;
	return 0;
}

int urdma_srv_conn_poll(struct urdma_conn *c)
{
	struct urdma_ep *e = &c->ep;
	struct ibv_wc wc;
	int rc;

	if ((rc = cq_rearm(e->rcc, e->rcq)) || (rc = cq_rearm(e->scc, e->scq)))
		return rc;
	while (e->ready_count < RDMA_NRECV && (rc = cq_poll1(e, e->rcq, &wc)) > 0)
		recv_ready(e, &wc);
	if (rc < 0)
		return rc;
	while ((rc = cq_poll1(e, e->scq, &wc)) > 0)
		e->send_inflight--;
	return rc < 0 ? rc : 0;
}

void urdma_srv_conn_close(struct urdma_conn *c)
{
	if (!c)
		return;
	rdma_disconnect(c->ep.id);
	srv_conn_destroy(c);
}
