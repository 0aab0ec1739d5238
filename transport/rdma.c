/* SPDX-License-Identifier: MIT */
/*
 * The RDMA transport on rdma-core (see rdma.h for the model).  Every ibv_*
 * and rdma_* call of the project is in this file, converted here to 0 or a
 * negative errno.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <rdma/rdma_cma.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "rdma.h"

#define RDMA_RESOLVE_MS 2000
#define RDMA_READ_WR_ID UINT64_MAX /* the one READ/WRITE a client has in flight */
#define RDMA_CREDIT_WR_ID (UINT64_MAX - 1) /* the one credit-only SEND in flight */
/* Send queue: RDMA_NSEND slots for data (and a client's READ/WRITE), plus
 * one kept for the credit-only SEND, which needs no buffer. */
#define RDMA_SQ_DEPTH (RDMA_NSEND + 1)
/* A client whose credit-only SEND is stuck behind the previous one's
 * completion looks at the send queue this often while it waits to read. */
#define RDMA_CREDIT_POLL_MS 1
#define RDMA_BUF_BYTES ((size_t)(RDMA_NRECV + RDMA_NSEND) * RDMA_MSG_BYTES)

/* The connect/accept private data: what each side offers (rdma.h, "Flow
 * control").  Little-endian.  A peer that sends none, or anything else,
 * is an older one: no credits. */
#define RDMA_HELLO_MAGIC 0x43464f55u /* "UFOC" */
#define RDMA_HELLO_VERSION 1
struct urdma_hello {
	uint32_t magic;
	uint16_t version;
	uint16_t credits; /* receive buffers posted for the peer */
};
_Static_assert(sizeof(struct urdma_hello) == 8, "urdma_hello is 8 bytes");

/* One end of a connection: queue pair, two completion queues each with its
 * own channel (the receive side and the send side may be driven by two
 * threads), one registered region holding every buffer.
 *
 * Locking.  The receive side (ready ring, cur_off, polling the receive
 * CQ) belongs to one thread at a time: the server's loop; on a client,
 * whoever holds rq_lock (the reader in client_recv, or a sender taking
 * credits in while no reader is there, recv_take_in).  The send side's
 * shared state is under sq_lock: send_inflight, rdma_done and the credit
 * fields below, and polling the send CQ (both threads of a client may
 * poll it; whoever does counts the completions for everyone).  send_next
 * and the send buffers belong to the sender.  owed is atomic: the receive
 * side adds to it without sq_lock and senders take it whole. */
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
	pthread_mutex_t rq_lock; /* client: the receive side (above) */
	/* send side */
	pthread_mutex_t sq_lock;
	bool sq_lock_init;
	unsigned send_next;     /* the sender's */
	unsigned send_inflight; /* sq_lock: data SENDs, READs, WRITEs posted */
	bool rdma_done;         /* sq_lock: the READ/WRITE completed */

	/* flow control (rdma.h); credit_on is fixed once connected */
	bool credit_on;
	unsigned credits;     /* sq_lock: peer buffers we may still fill */
	bool credit_busy;     /* sq_lock: a credit-only SEND is in flight */
	bool credit_waiter;   /* sq_lock: a client sender sleeps on wake_fd */
	_Atomic unsigned owed; /* our buffers reposted, not yet told */
	int wake_fd; /* client: eventfd waking its sender; 0 (none) on the server */

	_Atomic bool broken; /* set by whichever thread sees the failure */
};

static void ep_wake(struct urdma_ep *e)
{
	uint64_t one = 1;

	if (e->wake_fd > 0 && write(e->wake_fd, &one, sizeof(one)) < 0)
		(void)0; /* counter full: a wake-up is pending anyway */
}

/* Marks e failed and wakes a client sender asleep on credits (no send
 * completion would wake it: it may have nothing in flight). */
static void ep_break(struct urdma_ep *e)
{
	atomic_store(&e->broken, true);
	ep_wake(e);
}

/* A connection, either side: the client's owns its event channel (ec);
 * the server's belongs to the listener's until established. */
struct urdma_conn {
	struct ufo_conn base; /* first: the transport ops cast back */
	struct urdma_ep ep;
	struct rdma_event_channel *ec; /* client */
	struct urdma_conn *next; /* on the listener's list until established */
	bool established;
	bool reported_closed;
};

static void srv_conn_destroy(struct urdma_conn *c);

struct urdma_listener {
	struct ufo_listener base; /* first: the ops cast back */
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
	    (rc = err_null(e->scq = ibv_create_cq(v, RDMA_SQ_DEPTH, NULL, e->scc, 0))))
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
		.cap = { .max_send_wr = RDMA_SQ_DEPTH, .max_recv_wr = RDMA_NRECV,
			 .max_send_sge = 1, .max_recv_sge = 1 } };
	int rc;

	e->id = id;
	if ((rc = -pthread_mutex_init(&e->sq_lock, NULL)))
		return rc;
	if ((rc = -pthread_mutex_init(&e->rq_lock, NULL))) {
		pthread_mutex_destroy(&e->sq_lock);
		return rc;
	}
	e->sq_lock_init = true;
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
	if (e->sq_lock_init) {
		pthread_mutex_destroy(&e->sq_lock);
		pthread_mutex_destroy(&e->rq_lock);
	}
	if (e->wake_fd > 0)
		close(e->wake_fd);
	memset(e, 0, sizeof(*e));
}

/* True unless $UFO_RDMA_NO_CREDITS is set (not "0"): this side then acts
 * as a peer older than flow control, to test the two interoperating. */
static bool credits_offered(void)
{
	const char *v = getenv("UFO_RDMA_NO_CREDITS");

	return !v || !*v || !strcmp(v, "0");
}

/* Our offer, in h (the private data of rdma_connect/rdma_accept). */
static void hello_put(struct urdma_hello *h)
{
	*h = (struct urdma_hello){ .magic = htole32(RDMA_HELLO_MAGIC),
				   .version = htole16(RDMA_HELLO_VERSION),
				   .credits = htole16(RDMA_NRECV) };
}

/* The credits the peer's private data offers, 0 for none (an older peer,
 * which sends none: rdmacm hands us zeros).  Fewer than 2 would never let
 * a data SEND go (the last credit is reserved), so they count as none. */
static unsigned hello_credits(const void *pd, size_t len)
{
	struct urdma_hello h;

	if (!pd || len < sizeof(h))
		return 0;
	memcpy(&h, pd, sizeof(h));
	if (le32toh(h.magic) != RDMA_HELLO_MAGIC ||
	    le16toh(h.version) != RDMA_HELLO_VERSION || le16toh(h.credits) < 2)
		return 0;
	return le16toh(h.credits);
}

/* Connection parameters; hello (when not NULL) is the offer to send.
 * rnr_retry_count is what the *peer's* sends to us get (rdma_connect(3),
 * rdma_accept(3): it travels in the CM request or reply).  7 means
 * "forever": a peer not counting credits is held back by our slow reader
 * that way.  A peer that agreed to credits gets 0: it never sends without
 * a buffer posted, so a receiver-not-ready can only be an accounting bug,
 * and the connection fails loudly at once instead of stalling or hiding
 * it behind retries.  Only the accepting side knows the answer when it
 * sends its parameters, so a client's sends get 0 with credits and a
 * server's always get 7 (the client's request went out before it knew). */
static struct rdma_conn_param conn_param(const struct urdma_hello *hello,
					 bool peer_counts)
{
	return (struct rdma_conn_param){ .retry_count = 7,
					 .rnr_retry_count = peer_counts ? 0 : 7,
					 .responder_resources = 1,
					 .initiator_depth = 1,
					 .private_data = hello,
					 .private_data_len = hello ? sizeof(*hello) : 0 };
}

/* Turns flow control on with the peer's offer (called before any SEND). */
static void credits_start(struct urdma_ep *e, unsigned peer_credits)
{
	e->credit_on = peer_credits > 0;
	e->credits = peer_credits;
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
		ep_break(e);
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
			ep_break(e);
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

/* Waits for the completion channel cc, or the connection manager, or
 * (wake_fd >= 0) a wake-up of a sender out of credits, which it reads, or
 * (rx_fd >= 0) the receive channel of a sender taking credits in. */
static int wait_cq_or_cm(struct urdma_ep *e, int cc_fd, int wake_fd,
			 int rx_fd, int timeout_ms)
{
	struct pollfd p[4] = { { .fd = cc_fd, .events = POLLIN },
			       { .fd = e->cm ? e->cm->fd : -1, .events = POLLIN },
			       { .fd = wake_fd, .events = POLLIN },
			       { .fd = rx_fd, .events = POLLIN } };
	uint64_t n64;
	int n;

	do
		n = poll(p, 4, timeout_ms);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ETIMEDOUT;
	if (p[1].revents & POLLIN)
		cm_drain(e); /* sets broken; the caller drains the CQ first */
	if ((p[2].revents & POLLIN) && read(wake_fd, &n64, sizeof(n64)) < 0)
		(void)0; /* EAGAIN: another wait took it; we re-check anyway */
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
		if ((rc = wait_cq_or_cm(e, cc->fd, -1, -1, timeout_ms)))
			return rc;
	}
}

/* ---- flow control (rdma.h, "Flow control") */

/* Posts a SEND of len bytes at addr (len 0: a credit-only message, which
 * needs no buffer) as wr_id.  With credits on it carries every credit owed
 * as its immediate: taken whole here, given back if the post fails (the
 * immediates only ever add up, so their order does not matter).  sq_lock
 * held. */
static int post_send(struct urdma_ep *e, uint64_t wr_id, char *addr,
		     size_t len)
{
	struct ibv_sge sge = { .addr = (uintptr_t)addr, .length = (uint32_t)len,
			       .lkey = e->mr->lkey };
	struct ibv_send_wr wr = { .wr_id = wr_id, .sg_list = &sge,
				  .num_sge = len ? 1 : 0, .opcode = IBV_WR_SEND,
				  .send_flags = IBV_SEND_SIGNALED }, *bad;
	unsigned owed = 0;
	int rc;

	if (e->credit_on) {
		owed = atomic_exchange(&e->owed, 0);
		wr.opcode = IBV_WR_SEND_WITH_IMM;
		wr.imm_data = htonl(owed);
	}
	rc = err_pos(ibv_post_send(e->id->qp, &wr, &bad));
	if (rc && owed)
		atomic_fetch_add(&e->owed, owed);
	return rc;
}

/* A send slot is free (data SENDs and a client's READ/WRITE share them).
 * sq_lock held. */
static bool slot_free(const struct urdma_ep *e)
{
	return e->send_inflight < RDMA_NSEND;
}

/* Room for one data SEND: a free slot and, with credits on, two credits,
 * as the peer's last one is kept for a credit-only SEND.  sq_lock held. */
static bool send_room(const struct urdma_ep *e)
{
	return slot_free(e) && (!e->credit_on || e->credits >= 2);
}

/* Returns the credits owed in a credit-only SEND once there are
 * RDMA_CREDIT_BATCH of them and one can go: it needs a credit (the
 * reserved last one will do) and the previous one completed (one send
 * queue entry is kept for it).  Otherwise the credits wait for the next
 * data SEND, or the next call: when credits arrive (credit_add), when the
 * previous credit-only SEND completes (sq_reap), or when more are owed
 * (credit_maybe_flush).  sq_lock held. */
static void credit_flush(struct urdma_ep *e)
{
	if (!e->credit_on || e->credit_busy || !e->credits ||
	    atomic_load(&e->owed) < RDMA_CREDIT_BATCH)
		return;
	if (post_send(e, RDMA_CREDIT_WR_ID, NULL, 0)) {
		ep_break(e);
		return;
	}
	e->credit_busy = true;
	e->credits--;
}

/* One send completion counted off.  sq_lock held. */
static void send_done(struct urdma_ep *e, const struct ibv_wc *wc)
{
	if (wc->wr_id == RDMA_CREDIT_WR_ID) {
		e->credit_busy = false;
		return;
	}
	if (wc->wr_id == RDMA_READ_WR_ID)
		e->rdma_done = true;
	e->send_inflight--;
}

/* Collects every send completion (whichever thread polls, it counts them
 * for all), then sends the credits owed if that was waiting for the
 * previous credit-only SEND.  0 or -ECONNRESET.  sq_lock held. */
static int sq_reap(struct urdma_ep *e)
{
	struct ibv_wc wc;
	int rc;

	while ((rc = cq_poll1(e, e->scq, &wc)) > 0)
		send_done(e, &wc);
	if (!rc)
		credit_flush(e);
	return rc;
}

/* n credits came back.  Race: a client sender that found too few set
 * credit_waiter under sq_lock before it sleeps on wake_fd; both are read
 * and written here under the same lock, so the wake-up is never lost (an
 * eventfd keeps it until the sender polls).  Takes sq_lock. */
static void credit_add(struct urdma_ep *e, unsigned n)
{
	pthread_mutex_lock(&e->sq_lock);
	e->credits += n;
	if (e->credit_waiter && n) {
		e->credit_waiter = false;
		ep_wake(e);
	}
	credit_flush(e);
	pthread_mutex_unlock(&e->sq_lock);
}

/* Sends the credits owed when there are enough; the receive side calls it
 * after reposting, without sq_lock (owed is atomic).  Takes sq_lock. */
static void credit_maybe_flush(struct urdma_ep *e)
{
	if (!e->credit_on || atomic_load(&e->owed) < RDMA_CREDIT_BATCH)
		return;
	pthread_mutex_lock(&e->sq_lock);
	credit_flush(e);
	pthread_mutex_unlock(&e->sq_lock);
}

/* Our receive buffer b is free again: posted back, and owed to the peer. */
static void recv_repost(struct urdma_ep *e, unsigned b)
{
	if (post_recv(e, b))
		ep_break(e);
	else if (e->credit_on)
		atomic_fetch_add(&e->owed, 1);
}

/* ---- the byte stream */

/* A receive completion.  A data message's buffer joins the ready ring.  A
 * credit-only one (zero bytes, only ever sent with credits on) is no
 * stream byte: its buffer is reposted at once, whoever reads the stream,
 * since the peer may be waiting for that very credit (rdma.h).  The
 * immediate's credits are counted after the repost, so that a send they
 * allow carries the credit for it. */
static void recv_done(struct urdma_ep *e, const struct ibv_wc *wc)
{
	if (e->credit_on && wc->byte_len == 0) {
		recv_repost(e, (unsigned)wc->wr_id);
	} else {
		unsigned slot = (e->ready_head + e->ready_count) % RDMA_NRECV;

		e->ready[slot] = (unsigned)wc->wr_id;
		e->ready_len[slot] = wc->byte_len;
		e->ready_count++;
	}
	if (e->credit_on && (wc->wc_flags & IBV_WC_WITH_IMM))
		credit_add(e, ntohl(wc->imm_data));
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
			recv_repost(e, b);
		}
	}
	credit_maybe_flush(e);
	return (ssize_t)got;
}

static char *send_slot(struct urdma_ep *e)
{
	return e->buf + (size_t)(RDMA_NRECV + e->send_next) * RDMA_MSG_BYTES;
}

/* Posts the next send slot's len bytes, spending a credit.  The caller
 * checked send_room under the same hold of sq_lock. */
static int send_one(struct urdma_ep *e, size_t len)
{
	int rc = post_send(e, e->send_next, send_slot(e), len);

	if (!rc) {
		e->send_next = (e->send_next + 1) % RDMA_NSEND;
		e->send_inflight++;
		if (e->credit_on)
			e->credits--;
	}
	return rc;
}

/* ---- client transport ops (blocking with timeouts) */

static struct urdma_conn *rc_of(struct ufo_conn *c)
{
	return (struct urdma_conn *)c;
}

/* Reaps the send queue and checks ok: 1 when it holds, 0 when not (and
 * then the sender is recorded as waiting for credits, see credit_add),
 * or -ECONNRESET. */
static int sq_check(struct urdma_ep *e, bool (*ok)(const struct urdma_ep *))
{
	int rc;

	pthread_mutex_lock(&e->sq_lock);
	rc = sq_reap(e);
	if (!rc && !(rc = ok(e)))
		e->credit_waiter = true;
	pthread_mutex_unlock(&e->sq_lock);
	return rc;
}

/* Takes in what the peer sent, for a client sender out of credits while
 * no reader is in client_recv: a single-threaded caller (the handshake, a
 * test) sends a frame larger than the peer's window before it reads, and
 * the credits would otherwise wait for a reader that never comes.  The
 * bytes join the ready ring for the next client_recv.  Returns the
 * receive channel's descriptor to wait on as well, or -1 when a reader
 * holds the receive side (it passes credits on through wake_fd).
 * Race: a reader that comes in after the unlock may take the channel's
 * event this sender waits for; it then takes the credits in itself and
 * wakes the sender through wake_fd (credit_waiter is set by then). */
static int recv_take_in(struct urdma_ep *e)
{
	struct ibv_wc wc;
	int rc = 0;

	if (!e->credit_on || pthread_mutex_trylock(&e->rq_lock))
		return -1;
	/* Armed before the poll: what lands after it raises an event. */
	if (!cq_rearm(e->rcc, e->rcq))
		while (e->ready_count < RDMA_NRECV &&
		       (rc = cq_poll1(e, e->rcq, &wc)) > 0)
			recv_done(e, &wc);
	pthread_mutex_unlock(&e->rq_lock);
	return rc < 0 ? -1 : e->rcc->fd;
}

/* Waits until ok(e) holds: send completions (on the send channel) or
 * credits (credit_add, through wake_fd, or taken in by recv_take_in)
 * make it so.  The reader may reap
 * the send queue too; ok is only ever read after a reap under sq_lock, so
 * a completion it took is counted before we look.  -ETIMEDOUT after
 * timeout_ms without either, -ECONNRESET. */
static int sq_wait(struct urdma_ep *e, bool (*ok)(const struct urdma_ep *),
		   int timeout_ms)
{
	for (;;) {
		int rc = sq_check(e, ok);

		if (rc)
			return rc < 0 ? rc : 0;
		/* Arm, then check again: a completion that landed between
		 * the check and the arm raises no event. */
		if ((rc = cq_rearm(e->scc, e->scq)) || (rc = sq_check(e, ok)))
			return rc < 0 ? rc : 0;
		if (e->broken)
			return -ECONNRESET;
		if ((rc = wait_cq_or_cm(e, e->scc->fd, e->wake_fd,
					recv_take_in(e), timeout_ms)))
			return rc;
	}
}

/* Posts the filled send slot, once there is room.  Race: the reader may
 * spend a credit on a credit-only SEND between the caller's wait and
 * this post, so room is checked again under sq_lock and waited for once
 * more if it went. */
static int client_post(struct urdma_ep *e, size_t len, int timeout_ms)
{
	for (;;) {
		bool room;
		int rc = 0;

		pthread_mutex_lock(&e->sq_lock);
		if ((room = send_room(e)))
			rc = send_one(e, len);
		pthread_mutex_unlock(&e->sq_lock);
		if (room)
			return rc;
		if ((rc = sq_wait(e, send_room, timeout_ms)))
			return rc;
	}
}

static int client_send(struct ufo_conn *c, struct iovec *iov, int iovcnt,
		       int timeout_ms)
{
	struct urdma_ep *e = &rc_of(c)->ep;
	size_t fill = 0;
	int rc;

	for (int i = 0; i < iovcnt; i++) {
		const char *p = iov[i].iov_base;
		size_t left = iov[i].iov_len;

		while (left) {
			size_t n = RDMA_MSG_BYTES - fill;
			/* The slot must be free before it is filled. */
			if (!fill && (rc = sq_wait(e, send_room, timeout_ms)))
				return rc;
			n = n < left ? n : left;
			memcpy(send_slot(e) + fill, p, n);
			fill += n;
			p += n;
			left -= n;
			if (fill == RDMA_MSG_BYTES) {
				if ((rc = client_post(e, fill, timeout_ms)))
					return rc;
				fill = 0;
			}
		}
	}
	return fill ? client_post(e, fill, timeout_ms) : 0;
}

/* True when credits we owe wait only for the previous credit-only SEND to
 * complete (reaping it first, which sends them when it has).  sq_lock is
 * taken. */
static bool credit_stuck(struct urdma_ep *e)
{
	bool stuck;

	if (!e->credit_on || atomic_load(&e->owed) < RDMA_CREDIT_BATCH)
		return false;
	pthread_mutex_lock(&e->sq_lock);
	stuck = !sq_reap(e) && e->credit_busy &&
		atomic_load(&e->owed) >= RDMA_CREDIT_BATCH;
	pthread_mutex_unlock(&e->sq_lock);
	return stuck;
}

/* Waits for one receive completion.  While the credits we owe are stuck
 * behind the previous credit-only SEND's completion, the sender may be
 * idle (nobody polls the send queue) and the peer may be stalled on just
 * those credits: the wait is then cut into RDMA_CREDIT_POLL_MS slices,
 * each followed by a look at the send queue (credit_stuck).  Rare and
 * short: a zero-byte SEND into a posted buffer completes at once. */
static int recv_wait1(struct urdma_ep *e, struct ibv_wc *wc, int timeout_ms)
{
	int waited = 0;

	for (;;) {
		bool sliced = credit_stuck(e) &&
			      (timeout_ms < 0 ||
			       timeout_ms - waited > RDMA_CREDIT_POLL_MS);
		int slice = sliced ? RDMA_CREDIT_POLL_MS :
			    timeout_ms < 0 ? -1 : timeout_ms - waited;
		int rc = cq_wait1(e, e->rcc, e->rcq, wc, slice);

		if (rc != -ETIMEDOUT || !sliced)
			return rc;
		waited += RDMA_CREDIT_POLL_MS;
	}
}

static int client_recv(struct ufo_conn *c, void *buf, size_t len,
		       int timeout_ms)
{
	struct urdma_ep *e = &rc_of(c)->ep;
	size_t got = 0;
	int rc = 0;

	pthread_mutex_lock(&e->rq_lock); /* the receive side: recv_take_in */
	while (got < len) {
		struct ibv_wc wc;

		got += (size_t)recv_copy(e, (char *)buf + got, len - got);
		if (got == len)
			break;
		if ((rc = recv_wait1(e, &wc, timeout_ms)))
			break;
		recv_done(e, &wc);
	}
	pthread_mutex_unlock(&e->rq_lock);
	return rc;
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

static bool rdma_completed(const struct urdma_ep *e)
{
	return e->rdma_done;
}

/* Posts one RDMA READ or WRITE and waits for its completion.  It takes a
 * send slot but no credit: it consumes no receive buffer of the peer.
 * The reader may reap its completion: rdma_done says so. */
static int rdma_posted(struct urdma_ep *e, enum ibv_wr_opcode op,
		       struct ibv_mr *mr, void *buf, size_t len, uint64_t raddr,
		       uint32_t rkey, int timeout_ms)
{
	struct ibv_sge sge = { .addr = (uintptr_t)buf, .length = (uint32_t)len,
			       .lkey = mr->lkey };
	struct ibv_send_wr wr = { .wr_id = RDMA_READ_WR_ID, .sg_list = &sge,
				  .num_sge = 1, .opcode = op,
				  .send_flags = IBV_SEND_SIGNALED }, *bad;
	int rc;

	wr.wr.rdma.remote_addr = raddr;
	wr.wr.rdma.rkey = rkey;
	if ((rc = sq_wait(e, slot_free, timeout_ms)))
		return rc;
	pthread_mutex_lock(&e->sq_lock); /* only this sender takes slots */
	e->rdma_done = false;
	if (!(rc = err_pos(ibv_post_send(e->id->qp, &wr, &bad))))
		e->send_inflight++;
	pthread_mutex_unlock(&e->sq_lock);
	return rc ? rc : sq_wait(e, rdma_completed, timeout_ms);
}

static void rdma_shutdown(struct ufo_conn *c)
{
	/* Flushes every posted work request: blocked waits see errors.  A
	 * sender waiting for credits may have none posted: woken apart. */
	rdma_disconnect(rc_of(c)->ep.id);
	ep_break(&rc_of(c)->ep);
}

/* Either side: the peer sees the end, then everything goes (the
 * server's id with its QP; the client's event channel after its id). */
static void rdma_close(struct ufo_conn *c)
{
	struct urdma_conn *r = rc_of(c);

	if (r->ep.id)
		rdma_disconnect(r->ep.id);
	ep_destroy(&r->ep);
	if (r->ec)
		rdma_destroy_event_channel(r->ec);
	free(r);
}

/* Waits for the next connection-manager event on ec and checks it is
 * `want`; *offer (when not NULL) gets the credits its private data offers.
 * -ETIMEDOUT, -ECONNREFUSED (rejected), -EHOSTUNREACH. */
static int cm_expect(struct rdma_event_channel *ec, enum rdma_cm_event_type want,
		     int timeout_ms, unsigned *offer)
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
	if (offer)
		*offer = hello_credits(ev->param.conn.private_data,
				       ev->param.conn.private_data_len);
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

static int client_connect_ep(struct urdma_conn *r, const struct net_addr *a,
			     int timeout_ms)
{
	struct sockaddr_storage ss;
	struct urdma_hello h;
	bool offered = credits_offered();
	/* The server's sends get 7 whatever it answers (see conn_param). */
	struct rdma_conn_param p = conn_param(offered ? &h : NULL, false);
	unsigned offer = 0;
	int rc, tmo = timeout_ms < RDMA_RESOLVE_MS ? timeout_ms : RDMA_RESOLVE_MS;

	hello_put(&h);

	if ((rc = resolve_sockaddr(a, &ss)) ||
	    (rc = err_neg1(rdma_resolve_addr(r->ep.id, NULL, (struct sockaddr *)&ss, tmo))) ||
	    (rc = cm_expect(r->ec, RDMA_CM_EVENT_ADDR_RESOLVED, timeout_ms, NULL)) ||
	    (rc = err_neg1(rdma_resolve_route(r->ep.id, tmo))) ||
	    (rc = cm_expect(r->ec, RDMA_CM_EVENT_ROUTE_RESOLVED, timeout_ms, NULL)))
		return rc;
	if ((rc = ep_setup(&r->ep, r->ep.id)) ||
	    (rc = err_neg1(rdma_connect(r->ep.id, &p))) ||
	    (rc = cm_expect(r->ec, RDMA_CM_EVENT_ESTABLISHED, timeout_ms, &offer)))
		return rc;
	/* The server answers with an offer only to one: none means it is
	 * older, or was told not to (it then counts nothing either). */
	credits_start(&r->ep, offered ? offer : 0);
	/* From now on the channel is only drained, never waited on alone. */
	fcntl(r->ec->fd, F_SETFL, fcntl(r->ec->fd, F_GETFL) | O_NONBLOCK);
	r->ep.cm = r->ec;
	return 0;
}

static int client_connect(const struct net_addr *a, int timeout_ms,
			  struct ufo_conn **out)
{
	struct urdma_conn *r;
	int rc;

	if (!urdma_available())
		return -ENODEV;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->base.ops = &ufo_rdma_transport;
	r->ep.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	rc = r->ep.wake_fd < 0 ? -errno : 0;
	if (!rc)
		rc = err_null(r->ec = rdma_create_event_channel());
	if (!rc)
		rc = err_neg1(rdma_create_id(r->ec, &r->ep.id, NULL, RDMA_PS_TCP));
	if (!rc)
		rc = client_connect_ep(r, a, timeout_ms);
	if (rc) {
		rdma_close(&r->base);
		return rc;
	}
	*out = &r->base;
	return 0;
}

/* ---- server side */

static struct urdma_listener *ul_of(const struct ufo_listener *l)
{
	return (struct urdma_listener *)l;
}

static void listener_close(struct ufo_listener *base);

/* The same host and port numbers as TCP, in rdmacm's own port space. */
static int listener_open(const struct net_addr *addr,
		       const struct ufo_listen_opts *o,
		       struct ufo_listener **out)
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
		rc = err_neg1(rdma_listen(l->id, o && o->backlog > 0 ?
						  o->backlog : 64));
	if (!rc)
		fcntl(l->ec->fd, F_SETFL, fcntl(l->ec->fd, F_GETFL) | O_NONBLOCK);
	l->base.ops = &ufo_rdma_transport;
	if (rc) {
		listener_close(&l->base);
		return rc;
	}
	*out = &l->base;
	return 0;
}

/* Connections not yet established go with it; established ones are the
 * owner's, and their ids belong to its event channel: the owner closes
 * them first. */
static void listener_close(struct ufo_listener *base)
{
	struct urdma_listener *l = ul_of(base);

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

static int listener_fd(const struct ufo_listener *l)
{
	return ul_of(l)->ec->fd;
}

static int listener_port(const struct ufo_listener *l)
{
	return ntohs(rdma_get_src_port(ul_of(l)->id));
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

/* Accepts the request on id; req is its parameters (the client's offer
 * in the private data).  Credits are on when the client offered and we
 * may: we then answer with our offer, and the client's sends to us get
 * no RNR retry (conn_param). */
static int accept_request(struct urdma_listener *l, struct rdma_cm_id *id,
			  const struct rdma_conn_param *req)
{
	struct urdma_conn *c = calloc(1, sizeof(*c));
	unsigned offer = credits_offered() ?
		hello_credits(req->private_data, req->private_data_len) : 0;
	struct urdma_hello h;
	struct rdma_conn_param p = conn_param(offer ? &h : NULL, offer > 0);
	int rc;

	hello_put(&h);

	if (!c) {
		rdma_reject(id, NULL, 0);
		rdma_destroy_id(id);
		return -ENOMEM;
	}
	c->base.ops = &ufo_rdma_transport;
	id->context = c;
	rc = ep_setup(&c->ep, id); /* sets c->ep.id first: destroy owns it */
	credits_start(&c->ep, offer);
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

/* One pending event: 1 when one was handled (*kind says if it hands
 * something out), 0 when none was pending, -errno. */
static int listener_event(struct urdma_listener *l, enum ufo_accepted *kind,
			  struct ufo_conn **conn)
{
	struct rdma_cm_event *ev;
	struct urdma_conn *c, *doomed = NULL;
	enum rdma_cm_event_type t;
	int rc = 0;

	if (rdma_get_cm_event(l->ec, &ev))
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
	c = ev->id == l->id ? NULL : ev->id->context;
	t = ev->event;
	if (t == RDMA_CM_EVENT_CONNECT_REQUEST) {
		rc = accept_request(l, ev->id, &ev->param.conn);
	} else if (c && !c->established && t == RDMA_CM_EVENT_ESTABLISHED) {
		pending_unlink(l, c);
		c->established = true;
		*kind = UFO_ACCEPT_NEW;
		*conn = &c->base;
	} else if (c && !c->established && kills_pending(t)) {
		pending_unlink(l, c);
		doomed = c;
	} else if (c && c->established && kills_pending(t) &&
		   !c->reported_closed) {
		c->reported_closed = true;
		atomic_store(&c->ep.broken, true);
		*kind = UFO_ACCEPT_GONE; /* the owner closes it */
		*conn = &c->base;
	}
	rdma_ack_cm_event(ev);
	if (doomed)
		srv_conn_destroy(doomed);
	return rc ? rc : 1;
}

/* Handles the connection-manager events pending, up to the first one
 * that hands something out.  A request is accepted here (its connection
 * joins the pending list) and handed out once ESTABLISHED; a connection
 * that dies before that is destroyed here. */
static int listener_accept(struct ufo_listener *base, struct ufo_conn **conn)
{
	int rc;

	for (;;) {
		enum ufo_accepted kind = UFO_ACCEPT_NONE;

		rc = listener_event(ul_of(base), &kind, conn);
		if (rc <= 0)
			return rc;
		if (kind != UFO_ACCEPT_NONE)
			return (int)kind;
	}
}

/* ---- the non-blocking half (the server's loop; rdma.h) */

static ssize_t rdma_read(struct ufo_conn *c, void *buf, size_t len)
{
	struct urdma_ep *e = &rc_of(c)->ep;
	ssize_t n = recv_copy(e, buf, len);

	if (n > 0)
		return n;
	return e->broken ? -ECONNRESET : -EAGAIN;
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
static ssize_t rdma_writev(struct ufo_conn *c, const struct iovec *iov,
			   int iovcnt)
{
	struct urdma_ep *e = &rc_of(c)->ep;
	size_t sent = 0, off = 0;
	int i = 0;

	int rc = 0;

	if (e->broken)
		return -ECONNRESET;
	/* Out of slots or credits: -EAGAIN.  A send completion or credits
	 * arriving (a receive completion) wake the loop, and event says
	 * "room". */
	pthread_mutex_lock(&e->sq_lock);
	while (send_room(e)) {
		size_t n = gather_msg(e, iov, iovcnt, &i, &off);

		if (!n || (rc = send_one(e, n)))
			break;
		sent += n;
	}
	pthread_mutex_unlock(&e->sq_lock);
	if (rc)
		return sent ? (ssize_t)sent : rc;
	return sent || i == iovcnt ? (ssize_t)sent : -EAGAIN;
}

static int rdma_register(struct ufo_conn *c, void *addr, size_t len,
			 uint32_t *rkey, void **handle)
{
	struct ibv_mr *mr = ibv_reg_mr(rc_of(c)->ep.pd, addr, len,
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

static void rdma_deregister(struct ufo_conn *c, void *handle)
{
	(void)c;
	if (handle)
		ibv_dereg_mr(handle);
}

static bool rdma_send_idle(struct ufo_conn *c)
{
	return rc_of(c)->ep.send_inflight == 0;
}

/* Both channels, readable, whatever the caller wants: they must always be
 * drained (a send completion frees a buffer; a receive completion must
 * be collected even while reading is paused, and may bring credits). */
static int rdma_wait_fds(struct ufo_conn *c, uint32_t want,
			 struct pollfd fds[UFO_CONN_MAX_FDS])
{
	struct urdma_ep *e = &rc_of(c)->ep;

	(void)want;
	fds[0] = (struct pollfd){ .fd = e->rcc->fd, .events = POLLIN };
	fds[1] = (struct pollfd){ .fd = e->scc->fd, .events = POLLIN };
	return 2;
}

/* Collects completions.  Freed send buffers or credits brought back:
 * always "room to send" (the reader's POLLIN reads the bytes). */
static int rdma_event(struct ufo_conn *c)
{
	struct urdma_ep *e = &rc_of(c)->ep;
	struct ibv_wc wc;
	int rc;

	if ((rc = cq_rearm(e->rcc, e->rcq)) || (rc = cq_rearm(e->scc, e->scq)))
		return rc;
	while (e->ready_count < RDMA_NRECV && (rc = cq_poll1(e, e->rcq, &wc)) > 0)
		recv_done(e, &wc);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&e->sq_lock);
	rc = sq_reap(e);
	pthread_mutex_unlock(&e->sq_lock);
	return rc < 0 ? rc : (int)UFO_EV_WRITABLE;
}

const struct ufo_transport_ops ufo_rdma_transport = {
	.name = "rdma",
	.connect = client_connect,
	.listen = listener_open,
	.listener_fd = listener_fd,
	.listener_port = listener_port,
	.accept = listener_accept,
	.listener_close = listener_close,
	.read = rdma_read,
	.writev = rdma_writev,
	.wait_fds = rdma_wait_fds,
	.event = rdma_event,
	.buffers = true, /* receive buffers poll cannot see */
	.send_idle = rdma_send_idle,
	/* The client's own blocking half: its reader collects the credits
	 * its sender waits for (rdma.h).  It needs the client's event
	 * channel and wake_fd, which an accepted connection has not: the
	 * server uses the non-blocking half only. */
	.send = client_send,
	.recv = client_recv,
	.read_remote = client_read_remote,
	.write_remote = client_write_remote,
	.register_mem = rdma_register,
	.deregister_mem = rdma_deregister,
	.shutdown = rdma_shutdown,
	.close = rdma_close,
};
