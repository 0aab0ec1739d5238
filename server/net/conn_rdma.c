/* SPDX-License-Identifier: MIT */
/*
 * What the server adds to RDMA connections, and their listener.  The
 * connection manager's descriptor is in the loop's epoll set (data.ptr is
 * srv->rdma); each accepted connection is transport/rdma.c's connection
 * type, the one clients connect with, and the loop drives its
 * non-blocking half like any other (conn_io.c: both completion channels
 * in the epoll set, data.ptr the conn), moving the byte stream straight
 * between the queue pair's buffers and its frames, with no thread and no
 * socket in between.  RDMA listens on the same address and port number as
 * TCP, in rdmacm's own port space.
 *
 * Locking.  The transport's event runs under c->lock, read does not.
 * event touches both sides of the endpoint: its send side (the SENDs in
 * flight, the next send slot) is shared with writev and send_idle, which
 * run under c->lock on whichever thread answers, so the lock orders them;
 * its receive side (the ring of completed receive buffers) is shared with
 * read only, and both run on the loop thread alone.
 *
 * MAP registrations are the one piece workers touch; they have their own
 * lock (map, commit and unmap run on workers while the loop serves the
 * stream).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "rdma.h"
#include "server.h"

/* Registrations (MAP) per connection: at most WIRE_MAX_MAPS of them, and
 * at most --rdma-map-mib of object memory pinned by them (MAP_SHARED
 * pages, counted page-aligned); past either MAP answers EBUSY.  A version
 * 3 client UNMAPs one and asks again, an older one reads two-sided. */
#define RDMA_MAPS WIRE_MAX_MAPS
/* Memory each connection pins for its receive and send buffers. */
#define RDMA_CONN_PINNED ((uint64_t)(RDMA_NRECV + RDMA_NSEND) * RDMA_MSG_BYTES)
/* RLIMIT_MEMLOCK should let at least this many connections register. */
#define RDMA_MEMLOCK_CONNS 16

/* A slot's life: FREE → LIVE (MAP) → FREE (UNMAP, no COMMIT using it) or
 * LIVE → DROPPING (UNMAP while COMMITs copy from it) → FREE (the last of
 * them).  A DROPPING slot is invisible to MAP, COMMIT and UNMAP but still
 * counts against RDMA_MAPS: its memory is still pinned. */
enum rdma_map_state { MAP_FREE, MAP_LIVE, MAP_DROPPING };

/* A registration made for MAP: the object range mapped and registered. */
struct rdma_map {
	enum rdma_map_state state;
	unsigned users; /* COMMITs copying from map (maps_lock) */
	uint64_t obj_id, off;
	uint32_t len;
	void *map; /* mmap of the page-aligned range */
	size_t map_len;
	void *mr;
	uint32_t rkey;
};

struct rdma_conn {
	/* The listener's list of connections the loop holds (added, not yet
	 * reaped), to find one by its transport connection: loop thread only. */
	struct rdma_conn *prev, *next;
	struct conn *conn;
	/* Workers map, commit and unmap while the loop runs: maps_lock.
	 * nmaps counts the slots not FREE. */
	pthread_mutex_t maps_lock;
	struct rdma_map maps[RDMA_MAPS];
	unsigned nmaps;
	uint64_t pinned; /* maps_lock: bytes the slots not FREE hold mapped */
};

struct rdma_server {
	struct ufo_listener *l;
	struct rdma_conn *live; /* loop thread only */
};

static atomic_bool memlock_hinted;

static struct rdma_conn *rdma_of(struct conn *c)
{
	return c->tp;
}

/* ---- pinned memory */

static const char memlock_how[] =
	"raise it with `ulimit -l` (or LimitMEMLOCK= in the systemd unit, "
	"memlock in limits.conf), or grant CAP_IPC_LOCK";

/* A registration failed for lack of pinnable memory: say how to get more,
 * once per process (every refused connection would repeat it). */
static void memlock_hint(int err)
{
	struct rlimit rl;
	char lim[32] = "unlimited";

	if ((err != -ENOMEM && err != -EPERM) || getrlimit(RLIMIT_MEMLOCK, &rl) ||
	    atomic_exchange(&memlock_hinted, true))
		return;
	if (rl.rlim_cur != RLIM_INFINITY)
		snprintf(lim, sizeof(lim), "%" PRIu64 " KiB",
			 (uint64_t)rl.rlim_cur >> 10);
	log_warn("rdma: registering memory failed (%s): RLIMIT_MEMLOCK is %s, "
		 "each connection pins %" PRIu64 " KiB plus its MAP ranges; %s",
		 strerror(-err), lim, RDMA_CONN_PINNED >> 10, memlock_how);
}

/* CAP_IPC_LOCK (bit 14 of CapEff) exempts a process from RLIMIT_MEMLOCK
 * for registrations. */
static bool may_pin_unlimited(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	unsigned long long caps = 0;
	char line[256];

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &caps) == 1)
			break;
	fclose(f);
	return caps & (1ull << 14);
}

/* Warns at startup, rather than at the first refused connection, when the
 * limit cannot hold RDMA_MEMLOCK_CONNS connections' buffers. */
static void memlock_check(void)
{
	uint64_t need = RDMA_CONN_PINNED * RDMA_MEMLOCK_CONNS;
	struct rlimit rl;

	if (getrlimit(RLIMIT_MEMLOCK, &rl) || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur >= need || may_pin_unlimited())
		return;
	log_warn("rdma: RLIMIT_MEMLOCK is %" PRIu64 " KiB; %d connections need "
		 "%" PRIu64 " KiB of pinned buffers (%" PRIu64 " KiB each, plus "
		 "MAP ranges), so connections past %" PRIu64 " will be refused; %s",
		 (uint64_t)rl.rlim_cur >> 10, RDMA_MEMLOCK_CONNS, need >> 10,
		 RDMA_CONN_PINNED >> 10, (uint64_t)rl.rlim_cur / RDMA_CONN_PINNED,
		 memlock_how);
}

/* ---- MAP, COMMIT and UNMAP (workers) */

/* The LIVE registration of exactly [off, off + len) of id, or NULL.
 * maps_lock held. */
static struct rdma_map *map_find(struct rdma_conn *r, uint64_t id,
				 uint64_t off, uint32_t len)
{
	for (unsigned i = 0; i < RDMA_MAPS; i++)
		if (r->maps[i].state == MAP_LIVE && r->maps[i].obj_id == id &&
		    r->maps[i].off == off && r->maps[i].len == len)
			return &r->maps[i];
	return NULL;
}

static struct rdma_map *map_free_slot(struct rdma_conn *r)
{
	for (unsigned i = 0; i < RDMA_MAPS; i++)
		if (r->maps[i].state == MAP_FREE)
			return &r->maps[i];
	return NULL;
}

/* Deregisters and unmaps m, c's, whose slot becomes FREE.  maps_lock
 * held (or close, with no request left). */
static void map_release(struct conn *c, struct rdma_map *m)
{
	struct rdma_conn *r = rdma_of(c);

	c->t->ops->deregister_mem(c->t, m->mr);
	munmap(m->map, m->map_len);
	r->pinned -= m->map_len;
	*m = (struct rdma_map){ .state = MAP_FREE };
	r->nmaps--;
}

/* Maps and registers a new range of o for c's peer.  maps_lock held. */
static int map_new(struct conn *c, struct store_obj *o, uint64_t off,
		   uint32_t len, struct rdma_map **out)
{
	struct rdma_conn *r = rdma_of(c);
	long page = sysconf(_SC_PAGESIZE);
	uint64_t start = off & ~(uint64_t)(page - 1);
	struct rdma_map *m = map_free_slot(r);
	struct stat st;
	int rc;

	if (!m)
		return -EBUSY;
	/* Never-written tails are not in the file: mapping them would fault.
	 * READ serves them (as zeros); extending the file here could race a
	 * concurrent write that extends it further. */
	if (fstat(o->fd, &st))
		return -errno;
	if (off + len > (uint64_t)st.st_size)
		return -ERANGE;
	if (r->pinned + (off + len - start) >
	    (uint64_t)c->srv->cfg.rdma_map_mib << 20)
		return -EBUSY;
	m->map_len = (size_t)(off + len - start);
	/* Writable although only read: rxe (and other drivers) pin user
	 * memory for writing whatever the access asked, which fails with
	 * EFAULT on a read-only mapping.  Nothing writes through it. */
	m->map = mmap(NULL, m->map_len, PROT_READ | PROT_WRITE, MAP_SHARED,
		      o->fd, (off_t)start);
	if (m->map == MAP_FAILED)
		return -errno;
	rc = c->t->ops->register_mem(c->t, m->map, m->map_len, &m->rkey,
				     &m->mr);
	if (rc) {
		memlock_hint(rc);
		munmap(m->map, m->map_len);
		return rc;
	}
	m->obj_id = o->id;
	m->off = off;
	m->len = len;
	m->users = 0;
	m->state = MAP_LIVE;
	r->nmaps++;
	r->pinned += m->map_len;
	*out = m;
	return 0;
}

static int rdma_map(struct conn *c, struct store_obj *o, uint64_t off,
		    uint32_t len, struct wire_map *out)
{
	struct rdma_conn *r = rdma_of(c);
	uint64_t in_page = off & (uint64_t)(sysconf(_SC_PAGESIZE) - 1);
	struct rdma_map *m;
	int rc = 0;

	pthread_mutex_lock(&r->maps_lock);
	if (!(m = map_find(r, o->id, off, len)))
		rc = map_new(c, o, off, len, &m);
	if (!rc) { /* the page-aligned mapping starts before off */
		out->addr = (uint64_t)(uintptr_t)m->map + in_page;
		out->rkey = m->rkey;
		out->len = len;
	}
	pthread_mutex_unlock(&r->maps_lock);
	return rc;
}

/* Copies len bytes from src to o at off through the page cache. */
static int commit_copy(struct store_obj *o, const char *src, uint64_t off,
		       uint32_t len)
{
	while (len) {
		ssize_t n = pwrite(o->fd, src, len, (off_t)off);

		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0) {
			src += n;
			off += (uint64_t)n;
			len -= (uint32_t)n;
		}
	}
	return 0;
}

/* The pwrite runs outside maps_lock, the entry held by its use count:
 * an UNMAP of it meanwhile (a client that does not wait for its COMMIT's
 * answer, or a hostile one) only marks it DROPPING, and the last user
 * frees it here, so the copy never reads an unmapped range.  close cannot
 * run meanwhile: this request holds its reference to c.  The kernel
 * copies each page onto itself and marks it dirty, so the committer's
 * fdatasync sees the RDMA writes. */
static int rdma_commit(struct conn *c, struct store_obj *o, uint64_t off,
		       uint32_t len)
{
	struct rdma_conn *r = rdma_of(c);
	long page = sysconf(_SC_PAGESIZE);
	struct rdma_map *m;
	int rc;

	pthread_mutex_lock(&r->maps_lock);
	if ((m = map_find(r, o->id, off, len)))
		m->users++;
	pthread_mutex_unlock(&r->maps_lock);
	if (!m)
		return -EINVAL;
	rc = commit_copy(o, (const char *)m->map + (off & (uint64_t)(page - 1)),
			 off, len);
	pthread_mutex_lock(&r->maps_lock);
	if (!--m->users && m->state == MAP_DROPPING)
		map_release(c, m);
	pthread_mutex_unlock(&r->maps_lock);
	return rc;
}

/* The rkey must match too: a stale UNMAP (one sent for a registration
 * already dropped and made again for the same range) must not drop the
 * new one, whose key the client may be using. */
static int rdma_unmap(struct conn *c, uint64_t id, uint64_t off, uint32_t len,
		      uint32_t rkey)
{
	struct rdma_conn *r = rdma_of(c);
	struct rdma_map *m;

	pthread_mutex_lock(&r->maps_lock);
	m = map_find(r, id, off, len);
	if (m && m->rkey != rkey)
		m = NULL;
	if (m && m->users)
		m->state = MAP_DROPPING; /* the last COMMIT frees it */
	else if (m)
		map_release(c, m);
	pthread_mutex_unlock(&r->maps_lock);
	return m ? 0 : -ENOENT;
}

/* ---- the connection type */

/* Called by the loop as it drops its reference (reap): the connection
 * leaves the listener's list, so a late CLOSED finds nothing.  The peer
 * sees the end when close disconnects, once the last request is freed. */
static void live_unlink(struct conn *c)
{
	struct rdma_conn *r = rdma_of(c);
	struct rdma_server *rs = c->srv->rdma;

	if (r->prev)
		r->prev->next = r->next;
	else if (rs && rs->live == r)
		rs->live = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
}

/* Registrations go before the connection's protection domain: conn.c
 * closes the transport's connection after this. */
static void maps_close(struct conn *c)
{
	struct rdma_conn *r = rdma_of(c);

	for (unsigned i = 0; i < RDMA_MAPS; i++)
		if (r->maps[i].state != MAP_FREE)
			map_release(c, &r->maps[i]);
	pthread_mutex_destroy(&r->maps_lock);
	free(r);
}

const struct conn_type conn_rdma = {
	.shutdown = live_unlink,
	.close = maps_close,
	.map = rdma_map,
	.commit = rdma_commit,
	.unmap = rdma_unmap,
};

/* ---- the listener (loop thread) */

static void conn_added(struct server *srv, struct ufo_conn *uc)
{
	struct rdma_server *rs = srv->rdma;
	struct rdma_conn *r = calloc(1, sizeof(*r));
	struct conn *c;

	if (!r) {
		log_err("rdma: out of memory for a connection");
		uc->ops->close(uc);
		return;
	}
	pthread_mutex_init(&r->maps_lock, NULL);
	c = loop_join(srv, &conn_rdma, uc, r, loop_admit(srv));
	if (!c)
		return; /* r freed (maps_close), uc closed */
	r->conn = c;
	r->next = rs->live;
	if (rs->live)
		rs->live->prev = r;
	rs->live = r;
}

/* The peer left or the device went: a connection still held by the loop
 * is dead (its answers are dropped); conn_flush takes it out of the epoll
 * set and reaps it once its requests are done. */
static void conn_closed(struct server *srv, struct ufo_conn *uc)
{
	struct rdma_conn *r = srv->rdma->live;

	while (r && r->conn->t != uc)
		r = r->next;
	if (!r)
		return;
	pthread_mutex_lock(&r->conn->lock);
	r->conn->dead = true;
	pthread_mutex_unlock(&r->conn->lock);
	conn_flush(r->conn);
}

void rdma_listener_events(struct server *srv)
{
	struct ufo_listener *l = srv->rdma->l;
	struct ufo_conn *uc = NULL;
	int err;

	/* Everything pending, up to UFO_ACCEPT_NONE. */
	while ((err = l->ops->accept(l, &uc)) > 0) {
		if (err == UFO_ACCEPT_NEW)
			conn_added(srv, uc);
		else if (err == UFO_ACCEPT_GONE)
			conn_closed(srv, uc);
	}
	if (err < 0) {
		log_warn("rdma: connection manager: %s", strerror(-err));
		memlock_hint(err);
	}
}

int rdma_listener_start(struct server *srv, const struct net_addr *addr)
{
	struct rdma_server *rs = calloc(1, sizeof(*rs));
	struct epoll_event ev = { .events = EPOLLIN };
	struct ufo_listen_opts o = { .backlog = LISTEN_BACKLOG };
	int port, rc = rs ? ufo_rdma_transport.listen(addr, &o, &rs->l)
			  : -ENOMEM;

	if (!rc) {
		ev.data.ptr = rs;
		if (epoll_ctl(srv->epoll_fd, EPOLL_CTL_ADD,
			      rs->l->ops->listener_fd(rs->l), &ev))
			rc = -errno;
	}
	if (rc == -ENODEV || rc == -EOPNOTSUPP)
		log_info("rdma: %s; serving TCP only",
			 rc == -ENODEV ? "no RDMA device" : "not built");
	else if (rc)
		log_warn("rdma: cannot listen on %s:%u: %s; serving TCP only",
			 addr->host, addr->port, strerror(-rc));
	if (rc) {
		if (rs && rs->l)
			rs->l->ops->listener_close(rs->l);
		free(rs);
		return rc;
	}
	srv->rdma = rs;
	memlock_check();
	port = rs->l->ops->listener_port(rs->l);
	/* Tests wait for this line before they force rdma://. */
	printf("rdma listening on %s:%d\n", addr->host, port);
	fflush(stdout);
	log_info("rdma: listening on %s:%d", addr->host, port);
	return 0;
}

/* After the loop's last iteration.  Connections it did not drain keep
 * their identifiers, which belong to the listener's event channel: the
 * listener is then left open for the process's exit to release. */
void rdma_listener_stop(struct server *srv)
{
	struct rdma_server *rs = srv->rdma;

	if (!rs)
		return;
	epoll_ctl(srv->epoll_fd, EPOLL_CTL_DEL, rs->l->ops->listener_fd(rs->l),
		  NULL);
	if (!rs->live)
		rs->l->ops->listener_close(rs->l);
	srv->rdma = NULL;
	free(rs);
}
