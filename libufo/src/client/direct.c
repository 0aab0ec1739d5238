/* SPDX-License-Identifier: MIT */
/*
 * One-sided reads and writes over RDMA: the server MAPs an object range
 * (cached per connection generation) and the client READs or WRITEs it
 * directly; a write is made durable by COMMIT.  -EOPNOTSUPP sends the
 * caller to the two-sided READ/WRITE (TCP, or a range the server will not
 * map).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/rpc.h"

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
	uint8_t io[sizeof(struct wire_io)], raw[sizeof(struct wire_map)];
	struct wire_map m;
	struct client_call k = { .op = WIRE_MAP, .p1 = io, .l1 = sizeof(io),
			  .fixed = raw, .fixed_len = sizeof(raw) };
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
	wire_put_io(io, sizeof(io), &(struct wire_io){ .id = id, .offset = off,
						       .len = len });
	err = client_call_on(cl, rc, &k);
	if (!err)
		err = wire_get_map(raw, sizeof(raw), &m);
	if (err < 0)
		return err;
	*e = (struct map_entry){ .id = id, .off = off, .len = len, .gen = gen,
				 .raddr = m.addr, .rkey = m.rkey };
	if (m.len != len)
		return -EPROTO;
	pthread_mutex_lock(&rc->lock);
	if (rc->gen == gen)
		*slot = *e;
	pthread_mutex_unlock(&rc->lock);
	return 0;
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

