/* SPDX-License-Identifier: MIT */
/*
 * The RDMA listener.  One thread accepts RDMA connections on the same
 * address and port number as TCP and bridges each to the event loop
 * through a socketpair: the loop serves it like any TCP connection (same
 * protocol, same authentication, same limits), and this thread moves bytes
 * between the queue pair and its end of the pair.  One epoll set holds the
 * connection manager's descriptor and, per connection, its two completion
 * channels and its socket: no thread per connection.
 *
 * The bridge copies once more than a native path would; the one-sided
 * RDMA READ/WRITE data path is the next step (see docs/rdma.md).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "rdma.h"
#include "server.h"

#define BRIDGE_EVENTS 64
#define BRIDGE_BUF (4 * RDMA_MSG_BYTES)
/* A closing connection whose last SENDs do not complete (a client that
 * stopped reading: RNR retries forever) is destroyed after this long. */
#define BRIDGE_CLOSE_MS 5000
#define BRIDGE_TICK_MS 200
/* Registrations (MAP) per connection: pinned object memory is bounded by
 * BRIDGE_MAPS x the largest MAP (WIRE_MAX_IO); past it MAP answers EBUSY
 * and the client reads two-sided. */
#define BRIDGE_MAPS 64

/* A registration made for MAP: the object range mapped and registered. */
struct bridge_map {
	uint64_t obj_id, off;
	uint32_t len;
	void *map;        /* mmap of the page-aligned range */
	size_t map_len;
	void *mr;
	uint32_t rkey;
};

struct bridge_conn {
	struct bridge_conn *next;
	struct urdma_conn *rc;
	int sock;         /* our end of the socketpair */
	ino_t loop_ino;   /* the loop's end, to find us for MAP */
	struct bridge_map maps[BRIDGE_MAPS];
	unsigned nmaps;
	int fds[2];       /* completion channels */
	char to_sock[BRIDGE_BUF];      /* received over RDMA, not yet written */
	size_t to_len, to_off;
	char from_sock[RDMA_MSG_BYTES]; /* read from the socket, not yet sent */
	size_t from_len, from_off;
	uint32_t sock_events;
	bool closing;     /* the loop closed its end: flush, then go */
	int64_t close_deadline;
	bool dead;
};

struct bridge {
	struct server *srv;
	bool stopping;
	/* conns is changed by the bridge thread under lock; workers (MAP)
	 * look connections up and register under it too. */
	pthread_mutex_t lock;
	struct urdma_listener *l;
	int epfd, stop_fd;
	pthread_t thread;
	struct bridge_conn *conns;
};

static char listener_tag, stop_tag;

static struct bridge bridge = { .epfd = -1, .stop_fd = -1,
				 .lock = PTHREAD_MUTEX_INITIALIZER };

/* ---- moving bytes */

/* The loop closed its end (EOF, or EPIPE while writing to it): what it
 * sent is still to be flushed over RDMA, then the connection goes.  The
 * socket now reports EPOLLHUP whatever the interest, so it leaves the epoll
 * set; the completion channels drive the rest. */
static void start_closing(struct bridge_conn *b)
{
	if (b->closing)
		return;
	b->closing = true;
	b->close_deadline = now_ms() + BRIDGE_CLOSE_MS;
	epoll_ctl(bridge.epfd, EPOLL_CTL_DEL, b->sock, NULL);
	b->sock_events = 0;
}

/* RDMA → socket.  Returns false when the connection is finished. */
static bool pump_in(struct bridge_conn *b)
{
	for (;;) {
		ssize_t n;

		if (b->to_off == b->to_len) {
			b->to_off = b->to_len = 0;
			n = urdma_srv_recv(b->rc, b->to_sock, sizeof(b->to_sock));
			if (n == -EAGAIN)
				return true;
			if (n < 0)
				return false;
			b->to_len = (size_t)n;
		}
		if (b->closing) { /* the loop has gone: nobody to read it */
			b->to_off = b->to_len;
			continue;
		}
		n = write(b->sock, b->to_sock + b->to_off, b->to_len - b->to_off);
		if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
			start_closing(b);
			continue;
		}
		if (n < 0)
			return errno == EAGAIN || errno == EINTR;
		b->to_off += (size_t)n;
	}
}

/* Socket → RDMA.  Returns false when the connection is finished. */
static bool pump_out(struct bridge_conn *b)
{
	for (;;) {
		ssize_t n;

		if (b->from_off == b->from_len) {
			b->from_off = b->from_len = 0;
			if (b->closing)
				return !urdma_srv_send_idle(b->rc);
			n = read(b->sock, b->from_sock, sizeof(b->from_sock));
			if (n == 0 || (n < 0 && errno == ECONNRESET)) {
				/* The loop closed its end, maybe right after an
				 * error reply: disconnect only once every SEND
				 * completed, or the reply could be lost. */
				start_closing(b);
				return !urdma_srv_send_idle(b->rc);
			}
			if (n < 0)
				return errno == EAGAIN || errno == EINTR;
			b->from_len = (size_t)n;
		}
		n = urdma_srv_send(b->rc, b->from_sock + b->from_off,
				   b->from_len - b->from_off);
		if (n == -EAGAIN) /* no send buffer: the send channel wakes us */
			return true;
		if (n < 0)
			return false;
		b->from_off += (size_t)n;
	}
}

/* Watch the socket for reading only while nothing waits to go out over
 * RDMA, and for writing only while RDMA bytes wait for it; level-triggered
 * interest in anything else would spin. */
static void sock_interest(struct bridge *br, struct bridge_conn *b)
{
	if (b->closing)
		return; /* out of the epoll set */
	{
	uint32_t want = (b->from_off == b->from_len && !b->closing ? EPOLLIN : 0) |
			(b->to_off < b->to_len ? EPOLLOUT : 0);
	struct epoll_event ev = { .events = want, .data.ptr = b };

	if (want != b->sock_events &&
	    epoll_ctl(br->epfd, EPOLL_CTL_MOD, b->sock, &ev) == 0)
		b->sock_events = want;
	}
}

/* Both directions run every time: an error on one side must not cut off
 * replies still flowing on the other.  The connection is finished on an
 * RDMA error, or once it is closing and its last SEND completed. */
static void pump(struct bridge *br, struct bridge_conn *b)
{
	bool in_ok, out_ok;

	if (b->dead)
		return;
	if (urdma_srv_conn_poll(b->rc)) {
		b->dead = true;
		return;
	}
	in_ok = pump_in(b);
	out_ok = pump_out(b);
	if (!in_ok && !b->closing) /* RDMA side failed */
		b->dead = true;
	if (!out_ok)
		b->dead = true;
	if (!b->dead)
		sock_interest(br, b);
}

/* ---- connections */

static void maps_release(struct bridge_conn *b)
{
	for (unsigned i = 0; i < b->nmaps; i++) {
		urdma_srv_deregister(b->maps[i].mr);
		munmap(b->maps[i].map, b->maps[i].map_len);
	}
	b->nmaps = 0;
}

static void conn_free(struct bridge *br, struct bridge_conn *b)
{
	maps_release(b); /* registrations go before the connection's PD */
	epoll_ctl(br->epfd, EPOLL_CTL_DEL, b->fds[0], NULL);
	epoll_ctl(br->epfd, EPOLL_CTL_DEL, b->fds[1], NULL);
	if (!b->closing)
		epoll_ctl(br->epfd, EPOLL_CTL_DEL, b->sock, NULL);
	close(b->sock); /* the loop sees EOF and closes its side */
	urdma_srv_conn_close(b->rc);
	free(b);
}

static void reap_dead(struct bridge *br)
{
	int64_t now = now_ms();

	for (struct bridge_conn **p = &br->conns; *p;) {
		struct bridge_conn *b = *p;
		if (b->closing && now > b->close_deadline && !b->dead) {
			log_warn("rdma: a closing connection's last replies were not taken in %d ms: dropping it",
				 BRIDGE_CLOSE_MS);
			b->dead = true;
		}
		if (b->dead) {
			pthread_mutex_lock(&br->lock);
			*p = b->next;
			pthread_mutex_unlock(&br->lock);
			log_debug("rdma: connection closed");
			conn_free(br, b);
		} else {
			p = &b->next;
		}
	}
}

static int conn_watch(struct bridge *br, struct bridge_conn *b)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = b };

	b->sock_events = EPOLLIN;
	if (urdma_srv_conn_fds(b->rc, b->fds) ||
	    epoll_ctl(br->epfd, EPOLL_CTL_ADD, b->fds[0], &ev) ||
	    epoll_ctl(br->epfd, EPOLL_CTL_ADD, b->fds[1], &ev) ||
	    epoll_ctl(br->epfd, EPOLL_CTL_ADD, b->sock, &ev))
		return -errno;
	return 0;
}

static void conn_added(struct bridge *br, struct urdma_conn *rc)
{
	struct bridge_conn *b = calloc(1, sizeof(*b));
	int sv[2] = { -1, -1 };

	if (!b || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
			     0, sv)) {
		log_err("rdma: cannot bridge a connection: %s", strerror(errno));
		free(b);
		urdma_srv_conn_close(rc);
		return;
	}
	b->rc = rc;
	b->sock = sv[0];
	{
		struct stat st;
		b->loop_ino = fstat(sv[1], &st) ? 0 : st.st_ino;
	}
	pthread_mutex_lock(&br->lock);
	b->next = br->conns;
	br->conns = b;
	pthread_mutex_unlock(&br->lock);
	if (conn_watch(br, b)) {
		log_err("rdma: epoll: %s", strerror(errno));
		close(sv[1]);
		b->dead = true;
		return;
	}
	log_debug("rdma: connection established");
	loop_adopt(br->srv, sv[1]);
	pump(br, b); /* data may have arrived with the connection */
}

static void begin_bridge_stop(struct bridge *br)
{
	uint64_t v;

	if (read(br->stop_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_err("rdma: stop: %s", strerror(errno));
	br->stopping = true;
	epoll_ctl(br->epfd, EPOLL_CTL_DEL, br->stop_fd, NULL);
	epoll_ctl(br->epfd, EPOLL_CTL_DEL, urdma_listener_fd(br->l), NULL);
	for (struct bridge_conn *b = br->conns; b; b = b->next)
		start_closing(b);
}

static void conn_closed(struct bridge *br, struct urdma_conn *rc)
{
	for (struct bridge_conn *b = br->conns; b; b = b->next)
		if (b->rc == rc)
			b->dead = true;
}

static void on_listener(struct bridge *br)
{
	enum urdma_event kind;
	struct urdma_conn *rc = NULL;
	int err;

	/* Drain every pending event (1 per event, 0 when none is left). */
	while ((err = urdma_listener_event(br->l, &kind, &rc)) > 0) {
		if (kind == URDMA_EV_CONNECTED)
			conn_added(br, rc);
		else if (kind == URDMA_EV_CLOSED)
			conn_closed(br, rc);
	}
	if (err < 0)
		log_warn("rdma: connection manager: %s", strerror(-err));
}

/* On stop, connections whose loop side already closed still flush their
 * last replies (acknowledged writes among them), bounded by
 * BRIDGE_CLOSE_MS; the loop drains before it stops the bridge. */
static void *bridge_main(void *arg)
{
	struct bridge *br = arg;
	struct epoll_event ev[BRIDGE_EVENTS];

	while (!br->stopping || br->conns) {
		int n = epoll_wait(br->epfd, ev, BRIDGE_EVENTS, BRIDGE_TICK_MS);

		for (int i = 0; i < n; i++) {
			void *tag = ev[i].data.ptr;
			if (tag == &stop_tag)
				begin_bridge_stop(br);
			else if (tag == &listener_tag)
				on_listener(br);
			else
				pump(br, tag);
		}
		reap_dead(br);
	}
	return NULL;
}

static int bridge_setup(struct bridge *br, const struct net_addr *addr)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int rc = urdma_listen(addr, &br->l);

	if (rc)
		return rc;
	br->epfd = epoll_create1(EPOLL_CLOEXEC);
	br->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (br->epfd < 0 || br->stop_fd < 0)
		return -errno;
	ev.data.ptr = &listener_tag;
	if (epoll_ctl(br->epfd, EPOLL_CTL_ADD, urdma_listener_fd(br->l), &ev))
		return -errno;
	ev.data.ptr = &stop_tag;
	if (epoll_ctl(br->epfd, EPOLL_CTL_ADD, br->stop_fd, &ev))
		return -errno;
	return -pthread_create(&br->thread, NULL, bridge_main, br);
}

static void bridge_release(struct bridge *br)
{
	for (;;) { /* workers may still look connections up (MAP) */
		struct bridge_conn *b;

		pthread_mutex_lock(&br->lock);
		b = br->conns;
		if (b)
			br->conns = b->next;
		pthread_mutex_unlock(&br->lock);
		if (!b)
			break;
		conn_free(br, b);
	}
	urdma_listener_close(br->l);
	if (br->epfd >= 0)
		close(br->epfd);
	if (br->stop_fd >= 0)
		close(br->stop_fd);
	br->l = NULL;
	br->epfd = br->stop_fd = -1;
	br->stopping = false;
}

int rdma_bridge_start(struct server *srv, const struct net_addr *addr)
{
	int rc;

	bridge.srv = srv;
	rc = bridge_setup(&bridge, addr);
	if (rc == -ENODEV || rc == -EOPNOTSUPP) {
		log_info("rdma: %s; serving TCP only",
			 rc == -ENODEV ? "no RDMA device" : "not built");
		bridge_release(&bridge);
		return 0;
	}
	if (rc) {
		log_warn("rdma: cannot listen on %s:%u: %s; serving TCP only",
			 addr->host, addr->port, strerror(-rc));
		bridge_release(&bridge);
		return 0;
	}
	bridge.srv->rdma_on = true;
	/* Tests wait for this line before they force rdma://. */
	printf("rdma listening on %s:%u\n", addr->host, addr->port);
	fflush(stdout);
	log_info("rdma: listening on %s:%u", addr->host, addr->port);
	return 0;
}

void rdma_bridge_stop(struct server *srv)
{
	uint64_t one = 1;

	if (!srv->rdma_on)
		return;
	if (write(bridge.stop_fd, &one, sizeof(one)) < 0)
		log_err("rdma: stop: %s", strerror(errno));
	pthread_join(bridge.thread, NULL);
	bridge_release(&bridge);
	srv->rdma_on = false;
}

/* ---- MAP (called by workers) */

/* The live bridge connection whose loop end is the socket loop_fd.  The
 * socket's inode names it: a descriptor number can be reused by another
 * connection once the loop closed this one.  bridge.lock held. */
static struct bridge_conn *find_by_loop_fd(int loop_fd)
{
	struct stat st;

	if (fstat(loop_fd, &st))
		return NULL;
	for (struct bridge_conn *b = bridge.conns; b; b = b->next)
		if (b->loop_ino == st.st_ino && !b->dead && !b->closing)
			return b;
	return NULL;
}

static struct bridge_map *map_find(struct bridge_conn *b, uint64_t id,
				   uint64_t off, uint32_t len)
{
	for (unsigned i = 0; i < b->nmaps; i++)
		if (b->maps[i].obj_id == id && b->maps[i].off == off &&
		    b->maps[i].len == len)
			return &b->maps[i];
	return NULL;
}

/* Maps and registers a new range of o for b.  bridge.lock held. */
static int map_new(struct bridge_conn *b, struct store_obj *o, uint64_t off,
		   uint32_t len, struct bridge_map **out)
{
	long page = sysconf(_SC_PAGESIZE);
	uint64_t start = off & ~(uint64_t)(page - 1);
	struct bridge_map *m = &b->maps[b->nmaps];
	struct stat st;
	int rc;

	if (b->nmaps == BRIDGE_MAPS)
		return -EBUSY;
	/* Never-written tails are not in the file: mapping them would fault.
	 * READ serves them (as zeros); extending the file here could race a
	 * concurrent write that extends it further. */
	if (fstat(o->fd, &st))
		return -errno;
	if (off + len > (uint64_t)st.st_size)
		return -ERANGE;
	m->map_len = (size_t)(off + len - start);
	/* Writable although only read: rxe (and other drivers) pin user
	 * memory for writing whatever the access asked, which fails with
	 * EFAULT on a read-only mapping.  Nothing writes through it. */
	m->map = mmap(NULL, m->map_len, PROT_READ | PROT_WRITE, MAP_SHARED,
		      o->fd, (off_t)start);
	if (m->map == MAP_FAILED)
		return -errno;
	rc = urdma_srv_register(b->rc, m->map, m->map_len, &m->rkey, &m->mr);
	if (rc) {
		munmap(m->map, m->map_len);
		return rc;
	}
	m->obj_id = o->id;
	m->off = off;
	m->len = len;
	b->nmaps++;
	*out = m;
	return 0;
}

int rdma_bridge_map(struct server *srv, int loop_fd, struct store_obj *o,
		    uint64_t off, uint32_t len, struct wire_map *out)
{
	struct bridge_conn *b;
	struct bridge_map *m;
	int rc = 0;

	if (!srv->rdma_on || !len)
		return -EINVAL;
	pthread_mutex_lock(&bridge.lock);
	b = find_by_loop_fd(loop_fd);
	if (!b)
		rc = -EINVAL;
	else if (!(m = map_find(b, o->id, off, len)))
		rc = map_new(b, o, off, len, &m);
	if (!rc) {
		/* The page-aligned mapping starts before off. */
		out->addr = (uint64_t)(uintptr_t)m->map + (off & (uint64_t)(sysconf(_SC_PAGESIZE) - 1));
		out->rkey = m->rkey;
		out->len = len;
	}
	pthread_mutex_unlock(&bridge.lock);
	return rc;
}

int rdma_bridge_commit(struct server *srv, int loop_fd, struct store_obj *o,
		       uint64_t off, uint32_t len)
{
	long page = sysconf(_SC_PAGESIZE);
	struct bridge_conn *b;
	struct bridge_map *m = NULL;
	const char *src;
	int rc = 0;

	if (!srv->rdma_on || !len)
		return -EINVAL;
	pthread_mutex_lock(&bridge.lock);
	b = find_by_loop_fd(loop_fd);
	if (b)
		m = map_find(b, o->id, off, len);
	if (!m) {
		pthread_mutex_unlock(&bridge.lock);
		return -EINVAL;
	}
	src = (const char *)m->map + (off & (uint64_t)(page - 1));
	/* Under the lock: the bridge cannot unmap it meanwhile.  The kernel
	 * copies each page onto itself and marks it dirty. */
	while (len && !rc) {
		ssize_t n = pwrite(o->fd, src, len, (off_t)off);
		if (n < 0 && errno != EINTR)
			rc = -errno;
		else if (n > 0) {
			src += n;
			off += (uint64_t)n;
			len -= (uint32_t)n;
		}
	}
	pthread_mutex_unlock(&bridge.lock);
	return rc;
}

/* Bridged sockets (RDMA and TLS) are TCP to the loop; MAP and COMMIT
 * find their queue pair through the socket. */
static int bridged_map(struct conn *c, struct store_obj *o, uint64_t off,
		       uint32_t len, struct wire_map *out)
{
	return rdma_bridge_map(c->srv, c->fd, o, off, len, out);
}

static int bridged_commit(struct conn *c, struct store_obj *o, uint64_t off,
			  uint32_t len)
{
	return rdma_bridge_commit(c->srv, c->fd, o, off, len);
}

const struct conn_type conn_bridged = {
	.name = "bridged",
	.recv = conn_sock_recv,
	.sendv = conn_sock_sendv,
	.watch = conn_sock_watch,
	.unwatch = conn_sock_unwatch,
	.shutdown = conn_sock_shutdown,
	.close = conn_sock_close,
	.map = bridged_map,
	.commit = bridged_commit,
};
