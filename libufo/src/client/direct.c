/* SPDX-License-Identifier: MIT */
/*
 * One-sided reads and writes over RDMA: the server MAPs an object range
 * (cached per connection generation, bounded, LRU: see the MAP cache
 * below) and the client READs or WRITEs it directly; a write is made
 * durable by COMMIT.  -EOPNOTSUPP sends the caller to the two-sided
 * READ/WRITE (TCP, or a range the server will not map).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/rpc.h"

/* ---- the MAP cache (rc->maps, under rc->lock)
 *
 * The server holds at most WIRE_MAX_MAPS registrations per connection and
 * the client caches their keys, so the server cannot drop one on its own:
 * an RDMA READ on a dropped key breaks the queue pair.  The client mirrors
 * them in as many slots and, from protocol version 3 on, UNMAPs the least
 * recently used one that no one-sided operation has pinned to make room.
 * Before version 3 a full cache means two-sided I/O, as the server's
 * EBUSY did.
 */

static bool map_key(const struct map_entry *s, uint64_t id, uint64_t off,
		    uint32_t len)
{
	return s->id == id && s->off == off && s->len == len;
}

/* The slot of [off, off + len) of id: LIVE in rc's generation, or MAPPING
 * or UNMAPPING in any (a request in flight for the key, whatever
 * connection it went on: see map_done).  NULL when none. */
static struct map_entry *cache_find(struct rconn *rc, uint64_t id,
				    uint64_t off, uint32_t len)
{
	for (unsigned i = 0; i < CLIENT_MAP_SLOTS; i++) {
		struct map_entry *s = &rc->maps[i];

		if (s->state != MAP_FREE && map_key(s, id, off, len) &&
		    (s->state != MAP_LIVE || s->gen == rc->gen))
			return s;
	}
	return NULL;
}

/* A slot to claim: FREE, or LIVE of an older generation (its registration
 * went with that connection; pins left on it belong to operations that
 * fail with ECONNRESET, and map_unpin ignores them). */
static struct map_entry *cache_free_slot(struct rconn *rc)
{
	for (unsigned i = 0; i < CLIENT_MAP_SLOTS; i++) {
		struct map_entry *s = &rc->maps[i];

		if (s->state == MAP_FREE ||
		    (s->state == MAP_LIVE && s->gen != rc->gen))
			return s;
	}
	return NULL;
}

/* The least recently used LIVE slot of rc's generation that nothing has
 * pinned, or NULL. */
static struct map_entry *cache_lru(struct rconn *rc)
{
	struct map_entry *lru = NULL;

	for (unsigned i = 0; i < CLIENT_MAP_SLOTS; i++) {
		struct map_entry *s = &rc->maps[i];

		if (s->state == MAP_LIVE && s->gen == rc->gen && !s->pins &&
		    (!lru || s->last_use < lru->last_use))
			lru = s;
	}
	return lru;
}

/* UNMAP of a registration v, made on rc; the answer's status. */
static int send_unmap(struct ufo_client *cl, struct rconn *rc,
		      const struct map_entry *v)
{
	uint8_t raw[sizeof(struct wire_unmap)];
	struct client_call k = { .op = WIRE_UNMAP, .p1 = raw,
				 .l1 = sizeof(raw) };

	wire_put_unmap(raw, sizeof(raw), &(struct wire_unmap){
		.id = v->id, .offset = v->off, .len = v->len, .rkey = v->rkey });
	return client_call_on(cl, rc, &k);
}

/* Drops the least recently used unpinned registration of rc: 0, or
 * -ENOENT when every slot is pinned or busy.  The slot stays UNMAPPING
 * until the answer, so nobody MAPs its range meanwhile: the server might
 * answer that MAP with the registration the UNMAP then drops.  After a
 * reconnect the registration is gone with its connection and no UNMAP is
 * sent (a reconnect between this check and the send only gets ENOENT:
 * the server matches the key too). */
static int map_evict(struct ufo_client *cl, struct rconn *rc)
{
	struct map_entry *v, copy;
	bool current;

	pthread_mutex_lock(&rc->lock);
	if ((v = cache_lru(rc))) {
		v->state = MAP_UNMAPPING;
		copy = *v;
	}
	pthread_mutex_unlock(&rc->lock);
	if (!v)
		return -ENOENT;
	pthread_mutex_lock(&rc->lock);
	current = rc->gen == copy.gen;
	pthread_mutex_unlock(&rc->lock);
	if (current)
		send_unmap(cl, rc, &copy); /* ENOENT or a dead link: gone too */
	pthread_mutex_lock(&rc->lock);
	v->state = MAP_FREE;
	pthread_mutex_unlock(&rc->lock);
	return 0;
}

/* Under rc->lock: 1 and *e for a LIVE hit (pinned), 0 and *claim for a
 * slot claimed for the range (MAPPING, in rc's generation), -EBUSY when
 * the range's MAP or UNMAP is in flight, -ENOSPC when no slot is free. */
static int cache_claim_locked(struct rconn *rc, uint64_t id, uint64_t off,
			      uint32_t len, struct map_entry *e,
			      struct map_entry **claim)
{
	struct map_entry *s = cache_find(rc, id, off, len);

	if (s && s->state != MAP_LIVE)
		return -EBUSY;
	if (s) {
		s->pins++;
		s->last_use = ++rc->map_clock;
		*e = *s;
		return 1;
	}
	if (!(s = cache_free_slot(rc)))
		return -ENOSPC;
	*s = (struct map_entry){ .id = id, .off = off, .len = len,
				 .gen = rc->gen, .state = MAP_MAPPING,
				 .slot = (unsigned)(s - rc->maps) };
	*claim = s;
	return 0;
}

/* Looks [off, off + len) of id up, or claims a slot for it, evicting the
 * LRU registration when the cache is full (version 3 on).  1: a hit,
 * pinned, in *e; 0: *claim is the slot to MAP into; -EBUSY: go two-sided
 * this time.  *version: rc's protocol version, read with the lookup. */
static int cache_claim(struct ufo_client *cl, struct rconn *rc, uint64_t id,
		       uint64_t off, uint32_t len, struct map_entry *e,
		       struct map_entry **claim, uint16_t *version)
{
	int got;

	for (int attempt = 0;; attempt++) {
		pthread_mutex_lock(&rc->lock);
		*version = rc->version;
		got = cache_claim_locked(rc, id, off, len, e, claim);
		pthread_mutex_unlock(&rc->lock);
		/* Another thread may take the slot the eviction freed: one
		 * more look, then two-sided. */
		if (got != -ENOSPC || attempt || *version < 3 ||
		    map_evict(cl, rc))
			return got == -ENOSPC ? -EBUSY : got;
	}
}

/* One MAP request: 0 with *m, or -errno. */
static int map_call(struct ufo_client *cl, struct rconn *rc, uint64_t id,
		    uint64_t off, uint32_t len, struct wire_map *m)
{
	uint8_t io[sizeof(struct wire_io)], raw[sizeof(struct wire_map)];
	struct client_call k = { .op = WIRE_MAP, .p1 = io, .l1 = sizeof(io),
				 .fixed = raw, .fixed_len = sizeof(raw) };
	int err;

	wire_put_io(io, sizeof(io), &(struct wire_io){ .id = id, .offset = off,
						       .len = len });
	err = client_call_on(cl, rc, &k);
	if (!err)
		err = wire_get_map(raw, sizeof(raw), m);
	if (err < 0)
		return err;
	return m->len == len ? 0 : -EPROTO;
}

/* Settles the claimed slot s after its MAP (err, answer m).  The answer
 * counts only if rc is still in the generation s was claimed in: then the
 * MAP went on that connection.  Otherwise it may have gone on a newer one
 * (a reconnect between the claim and the send), where the registration
 * would hold a server slot that no cache entry mirrors: it is UNMAPped
 * there while s still marks the key busy (the server matches the rkey, so
 * this never drops another registration; on the old connection it is
 * gone anyway). */
static int map_done(struct ufo_client *cl, struct rconn *rc,
		    struct map_entry *s, int err, const struct wire_map *m,
		    uint16_t version, struct map_entry *e)
{
	bool stale;

	pthread_mutex_lock(&rc->lock);
	stale = !err && rc->gen != s->gen;
	if (!err && !stale) {
		s->raddr = m->addr;
		s->rkey = m->rkey;
		s->state = MAP_LIVE;
		s->pins = 1;
		s->last_use = ++rc->map_clock;
		*e = *s;
	}
	pthread_mutex_unlock(&rc->lock);
	if (stale && version >= 3) {
		struct map_entry gone = *s;

		gone.rkey = m->rkey;
		send_unmap(cl, rc, &gone);
	}
	if (err || stale) {
		pthread_mutex_lock(&rc->lock);
		s->state = MAP_FREE;
		pthread_mutex_unlock(&rc->lock);
	}
	return stale ? -ECONNRESET : err;
}

/* MAPs [off, off + len) of id on rc unless cached for its generation.
 * 0 with *e filled and pinned (map_unpin when the one-sided operation
 * is over), or -errno (the server could not map: fall back). */
static int map_range(struct ufo_client *cl, struct rconn *rc, uint64_t id,
		     uint64_t off, uint32_t len, struct map_entry *e)
{
	struct map_entry *s = NULL;
	struct wire_map m;
	uint16_t version;
	int err = cache_claim(cl, rc, id, off, len, e, &s, &version);

	if (err)
		return err > 0 ? 0 : err;
	err = map_call(cl, rc, id, off, len, &m);
	/* EBUSY with a slot free here: the server's memory bound for
	 * registrations (--rdma-map-mib) is met before its count, or it holds
	 * a registration the cache lost track of (an UNMAP that failed on a
	 * live connection).  Room for one more, once. */
	if (err == -EBUSY && version >= 3 && !map_evict(cl, rc))
		err = map_call(cl, rc, id, off, len, &m);
	return map_done(cl, rc, s, err, &m, version, e);
}

/* The one-sided operation on e is over: its slot may be evicted again.
 * A slot reused since (a reconnect made e stale) is not e's to unpin. */
static void map_unpin(struct rconn *rc, const struct map_entry *e)
{
	struct map_entry *s = &rc->maps[e->slot];

	pthread_mutex_lock(&rc->lock);
	if (s->state == MAP_LIVE && s->gen == e->gen && s->pins &&
	    map_key(s, e->id, e->off, e->len))
		s->pins--;
	pthread_mutex_unlock(&rc->lock);
}

/* A one-sided operation failed: the QP is in error.  Its pending requests
 * must fail too (shutdown), and the connection must go, or the next
 * one-sided operation would find it attached (its MAPs cached for this
 * generation) and fail again without ever reconnecting.  With the reader
 * reading, its read fails on the shutdown and it detaches; else we do.
 * send_lock held, so nobody sends on c while we close it. */
static void direct_failed(struct rconn *rc, struct ufo_conn *c, int err)
{
	struct client_req *failed = NULL;
	bool close = false;

	pthread_mutex_lock(&rc->lock);
	if (rc->conn == c) {
		conn_shutdown(c);
		if (!rc->reading) {
			failed = conn_detach_locked(rc, c, err);
			close = true;
		}
	}
	pthread_mutex_unlock(&rc->lock);
	reqs_done(rc->cl, failed);
	if (close)
		conn_close(c);
}

/* The READ or WRITE itself, on the connection MAP was answered on (the
 * key belongs to it), under its send exclusion. */
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
	if (!err) {
		err = rdma_mapped(cl, rc, &e, buf, false);
		map_unpin(rc, &e);
	}
	atomic_fetch_add_explicit(&cl->direct_reads, !err, memory_order_relaxed);
	if (!err)
		atomic_fetch_add_explicit(&cl->bytes_in, len, memory_order_relaxed);
	return err;
}

int client_write_direct(struct ufo_client *cl, uint64_t id, uint64_t off,
			const void *src, size_t len)
{
	uint8_t io[sizeof(struct wire_io)];
	struct client_call k = { .op = WIRE_COMMIT, .p1 = io, .l1 = sizeof(io) };
	struct map_entry e;
	struct rconn *rc = NULL;
	void *bounce;
	int err;

	if (!cl->tops->write_remote)
		return -EOPNOTSUPP;
	wire_put_io(io, sizeof(io), &(struct wire_io){
		.id = id, .offset = off, .len = (uint32_t)len });
	if ((err = direct_begin(cl, id, off, len, &rc, &e)))
		return err;
	/* A private copy: src is the UFO's chunk, write-protected while it
	 * is written back, and pinning it for RDMA could fault into our own
	 * fault handler. */
	bounce = malloc(len);
	if (!bounce) {
		map_unpin(rc, &e);
		return -ENOMEM;
	}
	memcpy(bounce, src, len);
	err = rdma_mapped(cl, rc, &e, bounce, true);
	free(bounce);
	/* Placed in the server's memory; COMMIT, on the same connection
	 * (the mapping is its), answers once it is durable.  The pin holds
	 * until then: COMMIT copies from the registration. */
	if (!err)
		err = client_call_on(cl, rc, &k);
	map_unpin(rc, &e);
	if (!err)
		atomic_fetch_add_explicit(&cl->direct_writes, 1,
					  memory_order_relaxed);
	return err;
}

