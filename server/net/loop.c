/* SPDX-License-Identifier: MIT */
/*
 * The event loop (main thread).  epoll's data.ptr tells sources apart: the
 * listening socket, the signalfd and the wake eventfd have sentinels, the
 * RDMA listener is srv->rdma, every other pointer is a struct conn.
 *
 * Why a conn in an epoll batch is never freed under us: only the loop drops
 * the loop's reference, in reap(), which runs before epoll_wait, and a conn
 * is reaped only after it left the epoll set.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "server.h"

#define LOOP_EVENTS 64

static char listen_tag, signal_tag, wake_tag;

static void resume_accept(struct server *srv);

int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void loop_wake(struct server *srv)
{
	uint64_t one = 1;

	if (write(srv->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_err("wake: %s", strerror(errno));
}

void loop_reap_later(struct conn *c)
{
	struct server *srv = c->srv;
	bool ok = true;

	pthread_mutex_lock(&srv->reap_lock);
	if (srv->nreap == srv->reap_cap) {
		size_t cap = srv->reap_cap ? srv->reap_cap * 2 : 64;
		void *p = realloc(srv->reap, cap * sizeof(*srv->reap));
		if (p) {
			srv->reap = p;
			srv->reap_cap = cap;
		}
		ok = p != NULL;
	}
	if (ok)
		srv->reap[srv->nreap++] = c;
	pthread_mutex_unlock(&srv->reap_lock);
	if (!ok) /* cannot happen in practice; the conn leaks, nothing else */
		log_err("fd %d: out of memory queueing a close", c->fd);
	loop_wake(srv);
}

void loop_read_later(struct conn *c)
{
	struct server *srv = c->srv;

	if (c->kicked || c->reaping || c->dead)
		return;
	c->kicked = true;
	conn_get(c); /* the ready list's, dropped by read_ready */
	pthread_mutex_lock(&srv->reap_lock);
	c->ready_next = srv->ready;
	srv->ready = c;
	pthread_mutex_unlock(&srv->reap_lock);
	loop_wake(srv);
}

/* Connections whose type holds bytes epoll cannot report.  A reaped one
 * is still valid here (the list holds a reference) and reads nothing:
 * conn_may_read is false once closing or dead. */
static void read_ready(struct server *srv)
{
	struct conn *list;

	pthread_mutex_lock(&srv->reap_lock);
	list = srv->ready;
	srv->ready = NULL;
	pthread_mutex_unlock(&srv->reap_lock);
	while (list) {
		struct conn *c = list;

		list = c->ready_next;
		pthread_mutex_lock(&c->lock);
		c->kicked = false;
		pthread_mutex_unlock(&c->lock);
		session_readable(c);
		conn_put(c);
	}
}

static void conn_unlink(struct server *srv, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->nconns--;
}

/* conn_update_locked already took each conn out of the epoll set. */
static void reap(struct server *srv)
{
	struct conn **list;
	size_t n;

	pthread_mutex_lock(&srv->reap_lock);
	list = srv->reap;
	n = srv->nreap;
	srv->reap = NULL;
	srv->nreap = srv->reap_cap = 0;
	pthread_mutex_unlock(&srv->reap_lock);
	for (size_t i = 0; i < n; i++) {
		log_debug("fd %d: closed", list[i]->fd);
		conn_unlink(srv, list[i]);
		list[i]->type->shutdown(list[i]);
		conn_put(list[i]);
	}
	free(list);
	if (n)
		resume_accept(srv);
}

static int epoll_add(struct server *srv, int fd, void *tag, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = tag };

	return epoll_ctl(srv->epoll_fd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

/* Over the limit a connection that can take a frame at once still gets a
 * reason: one small frame, which an empty socket buffer always takes, so
 * it costs us nothing to hold.  Closes tc. */
static void refuse_now(struct ufo_conn *tc, unsigned limit)
{
	uint8_t f[sizeof(struct wire_hdr) + 64];
	char *msg = (char *)f + sizeof(struct wire_hdr);
	int n = snprintf(msg, 64, "over %u connections", limit);
	struct iovec iov = { msg, n < 64 ? (size_t)n : 63 };
	struct wire_hdr h;
	ssize_t sent;

	wire_frame_hdr(&h, 0, WIRE_HELLO | WIRE_RESPONSE, 0, WIRE_EBUSY, &iov, 1);
	wire_put_hdr(f, sizeof(h), &h);
	iov = (struct iovec){ f, sizeof(h) + iov.iov_len };
	if ((sent = tc->ops->writev(tc, &iov, 1)) < 0)
		log_debug("refusing a %s connection: %s", tc->ops->name,
			  strerror((int)-sent));
	tc->ops->close(tc);
}

struct conn *loop_join(struct server *srv, const struct conn_type *type,
		       struct ufo_conn *tc, void *tp, enum loop_admit admit)
{
	struct conn tmp = { .srv = srv, .type = type, .t = tc, .tp = tp };
	struct pollfd p[UFO_CONN_MAX_FDS];
	struct conn *c = NULL;
	int rc;

	/* Its first descriptor names it in logs (RDMA: the receive channel;
	 * data that came with the connection is not missed, its channel is
	 * readable already and epoll reports it once added). */
	tc->ops->wait_fds(tc, EPOLLIN, p);
	if (admit != LOOP_DROP && !srv->stopping &&
	    !(c = conn_new(srv, type, tc, p[0].fd, tp)))
		log_err("accept: out of memory for a connection");
	if (!c) {
		conn_close_transport(&tmp);
		return NULL;
	}
	if ((rc = conn_watch(c, EPOLLIN, true))) {
		log_err("accept: cannot watch a connection: %s", strerror(-rc));
		conn_put(c);
		return NULL;
	}
	c->events = EPOLLIN;
	c->registered = true;
	c->refused = admit == LOOP_REFUSE;
	session_start(c);
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	srv->nconns++;
	log_debug("fd %d: %s connection (%u open)", c->fd, tc->ops->name,
		  srv->nconns);
	return c;
}

/* Out of file descriptors: the pending connection stays readable on the
 * listening socket, so keep listening for it would spin.  Accepting
 * resumes when a connection closes (reap). */
static void pause_accept(struct server *srv)
{
	log_warn("accept: out of file descriptors; paused until a "
		 "connection closes");
	epoll_ctl(srv->epoll_fd, EPOLL_CTL_DEL,
		  srv->listener->ops->listener_fd(srv->listener), NULL);
	srv->accept_paused = true;
}

static void resume_accept(struct server *srv)
{
	if (!srv->accept_paused || srv->stopping)
		return;
	srv->accept_paused = false;
	if (epoll_add(srv, srv->listener->ops->listener_fd(srv->listener),
		      &listen_tag, EPOLLIN))
		log_err("resuming accept: %s", strerror(errno));
}

enum loop_admit loop_admit(const struct server *srv)
{
	unsigned n = srv->nconns, max = srv->cfg.max_connections;

	if (n < max)
		return LOOP_ROOM;
	/* Refused connections count in nconns until they close: bounding
	 * them bounds what a flood of connections can make us hold (each a
	 * TLS session or a queue pair with its buffers). */
	return n - max < LOOP_REFUSING_MAX ? LOOP_REFUSE : LOOP_DROP;
}

/* A connection --listen accepted (TCP, or TLS with --tls-cert) joins the
 * loop.  Over the limit a type without a handshake, whose written bytes
 * the kernel sends even after close (TCP: no event, no send_idle), is
 * told at once; a TLS client gets its reason inside TLS (LOOP_REFUSE), as
 * a plaintext frame would read as a broken handshake (-EPROTO) to it. */
static void add_stream(struct server *srv, struct ufo_conn *tc)
{
	enum loop_admit admit = loop_admit(srv);
	bool at_once = !tc->ops->event && !tc->ops->send_idle;

	if (at_once && admit != LOOP_ROOM)
		refuse_now(tc, srv->cfg.max_connections);
	else
		loop_join(srv, &conn_stream, tc, NULL, admit);
}

static void on_accept(struct server *srv)
{
	struct ufo_listener *l = srv->listener;

	if (!l) /* stopping closed it, maybe earlier in this batch */
		return;
	for (;;) {
		struct ufo_conn *tc;
		int rc = l->ops->accept(l, &tc);

		if (rc == -EMFILE || rc == -ENFILE) {
			pause_accept(srv);
			return;
		}
		if (rc < 0) /* that one is gone; the rest on the next wake */
			log_warn("accept: %s", strerror(-rc));
		if (rc != UFO_ACCEPT_NEW)
			return; /* NONE; GONE is only ever RDMA's */
		add_stream(srv, tc);
	}
}

/* SIGTERM/SIGINT: stop accepting; requests sent but not yet read are
 * answered ESHUTDOWN, then every connection closes once its in-flight
 * requests are answered (WRITEs included, once durable). */
static void begin_stop(struct server *srv, int sig)
{
	log_info("signal %d: stopping; %u connections to drain", sig,
		 srv->nconns);
	srv->stopping = true;
	if (!srv->accept_paused)
		epoll_ctl(srv->epoll_fd, EPOLL_CTL_DEL,
			  srv->listener->ops->listener_fd(srv->listener), NULL);
	srv->listener->ops->listener_close(srv->listener);
	srv->listener = NULL;
	for (struct conn *c = srv->conns; c; c = c->next) {
		session_refuse_rest(c);
		conn_close_soon(c);
	}
}

static void on_signal(struct server *srv)
{
	struct signalfd_siginfo si;

	while (read(srv->signal_fd, &si, sizeof(si)) == sizeof(si))
		if (!srv->stopping)
			begin_stop(srv, (int)si.ssi_signo);
}

static void on_wake(struct server *srv)
{
	uint64_t n;

	if (read(srv->wake_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_err("wake: %s", strerror(errno));
	read_ready(srv);
}

/* A connection that has not authenticated in time holds a slot for
 * nothing. */
static void expire_handshakes(struct server *srv)
{
	int64_t now = now_ms();

	for (struct conn *c = srv->conns; c; c = c->next)
		if (c->hs.state != WIRE_HS_DONE && now > c->auth_deadline_ms) {
			log_info("fd %d: no authentication within %u ms",
				 c->fd, srv->cfg.auth_timeout_ms);
			c->auth_deadline_ms = INT64_MAX;
			conn_close_soon(c);
		}
}

/* A closing connection of a type whose sends complete later (RDMA: its
 * last SENDs wait for a client that may have stopped reading, and the
 * hardware retries them forever) is dropped CONN_LINGER_MS after its last
 * request was answered.  TCP's kernel owns a closed socket's linger. */
static void expire_lingering(struct server *srv)
{
	int64_t now = now_ms();

	for (struct conn *c = srv->conns; c; c = c->next) {
		bool drop;

		if (!c->t->ops->send_idle)
			continue;
		pthread_mutex_lock(&c->lock);
		if (!c->closing || c->dead || c->reaping || c->inflight)
			c->linger_deadline_ms = 0;
		else if (!c->linger_deadline_ms)
			c->linger_deadline_ms = now + CONN_LINGER_MS;
		drop = c->linger_deadline_ms && now > c->linger_deadline_ms;
		if (drop)
			c->dead = true;
		pthread_mutex_unlock(&c->lock);
		if (drop) {
			log_warn("fd %d: %s: a closing connection's last answers "
				 "were not taken in %d ms: dropping it",
				 c->fd, c->t->ops->name, CONN_LINGER_MS);
			conn_flush(c); /* out of the epoll set, reaped */
		}
	}
}

/* A type with an event hook (RDMA completions, a TLS handshake) runs it
 * first, under the lock its sends take; when it reports room to send, the
 * answers queued meanwhile go in the same critical section (conn_event). */
static void on_conn_event(struct conn *c, uint32_t events)
{
	if (c->t->ops->event) {
		int rc = conn_event(c);

		if (rc < 0)
			return;
		if (rc > 0)
			events &= ~(uint32_t)EPOLLOUT; /* just flushed */
	}
	if (events & (EPOLLERR | EPOLLHUP) && !(events & EPOLLIN)) {
		pthread_mutex_lock(&c->lock);
		c->dead = true;
		pthread_mutex_unlock(&c->lock);
		conn_flush(c); /* recomputes the mask: out of the epoll set */
		return;
	}
	if (events & EPOLLOUT)
		conn_flush(c);
	if (events & EPOLLIN)
		session_readable(c);
}

static void dispatch_events(struct server *srv, struct epoll_event *ev,
			    int n)
{
	for (int i = 0; i < n; i++) {
		void *tag = ev[i].data.ptr;

		if (tag == &listen_tag)
			on_accept(srv);
		else if (tag == &signal_tag)
			on_signal(srv);
		else if (tag == &wake_tag)
			on_wake(srv);
		else if (tag == srv->rdma)
			rdma_listener_events(srv);
		else
			on_conn_event(tag, ev[i].events);
	}
}

static int loop_setup(struct server *srv)
{
	sigset_t set;
	int rc;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	srv->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	srv->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	srv->signal_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (srv->epoll_fd < 0 || srv->wake_fd < 0 || srv->signal_fd < 0)
		return -errno;
	if ((rc = epoll_add(srv, srv->listener->ops->listener_fd(srv->listener),
			    &listen_tag, EPOLLIN)) ||
	    (rc = epoll_add(srv, srv->wake_fd, &wake_tag, EPOLLIN)) ||
	    (rc = epoll_add(srv, srv->signal_fd, &signal_tag, EPOLLIN)))
		return rc;
	return 0;
}

/* Returns once stopped and drained (or the drain timed out). */
int loop_run(struct server *srv)
{
	struct epoll_event ev[LOOP_EVENTS];
	int64_t deadline = 0;
	int rc = loop_setup(srv);
	struct net_addr rdma_addr = srv->cfg.listen;

	if (rc)
		return rc;
	/* RDMA on the same address and port number (the actual one when the
	 * TCP port was 0), once the loop's epoll set exists. */
	rdma_addr.port = (uint16_t)srv->port;
	rdma_listener_start(srv, &rdma_addr);
	for (;;) {
		int n;

		reap(srv);
		if (srv->stopping && !deadline)
			deadline = now_ms() + SHUTDOWN_DRAIN_MS;
		if (srv->stopping && (!srv->nconns || now_ms() > deadline))
			break;
		n = epoll_wait(srv->epoll_fd, ev, LOOP_EVENTS, LOOP_TICK_MS);
		if (n < 0 && errno != EINTR) {
			rc = -errno;
			rdma_listener_stop(srv);
			return rc;
		}
		dispatch_events(srv, ev, n > 0 ? n : 0);
		expire_handshakes(srv);
		expire_lingering(srv);
	}
	if (srv->nconns)
		log_warn("stopping with %u connections not drained",
			 srv->nconns);
	rdma_listener_stop(srv);
	return 0;
}
