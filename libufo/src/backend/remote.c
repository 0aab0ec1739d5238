/* SPDX-License-Identifier: MIT */
/*
 * The remote backend: chunks of an object on one ufo-server, fetched and
 * stored through the pipelined client (client/).  Over TCP and TLS an io
 * is one asynchronous request, completed by the client's reader; over
 * RDMA (one-sided READ, or WRITE + COMMIT, which block) it runs on one of
 * the context's I/O workers.  The engine retries (retry.c's policy).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "client/client.h"
#include "transport.h"

struct remote {
	struct ufo_client *cl;
	uint64_t id;
	char name[WIRE_MAX_NAME + 1];
};

/* A two-sided READ of [off, off + n) into buf, waited for; from protocol
 * version 2 on it asks for holes, and *hole tells whether the range held
 * no data (buf is then zeroed). */
static int remote_read_two_sided(struct remote *r, uint64_t off, char *buf,
				 size_t n, bool *hole)
{
	uint8_t raw[sizeof(struct wire_read_reply)];
	uint8_t w[sizeof(struct wire_io)];
	struct wire_read_reply rr;
	struct client_call k;
	int err;

	*hole = false;
	if (client_version(r->cl) < 2)
		return ufo_client_read(r->cl, r->id, off, buf, n);
	client_io_prepare(&k, w, false, r->id, off, buf, n, WIRE_IO_HOLES);
	k.fixed = raw;
	k.fixed_len = sizeof(raw);
	err = client_call_sync(r->cl, &k);
	if (!err)
		err = wire_get_read_reply(raw, sizeof(raw), &rr);
	if (err < 0)
		return err;
	if (rr.flags & WIRE_READ_HOLE) {
		*hole = true;
		memset(buf, 0, n);
		return k.data_len ? -EPROTO : 0;
	}
	return k.data_len == n ? 0 : -EPROTO;
}

/* One pass over [off, off + len) in pieces the protocol allows, waited
 * for; *hole (reads) when no piece held data. */
static int remote_io(struct remote *r, bool write, uint64_t off, char *buf,
		     size_t len, bool *hole)
{
	*hole = !write;
	while (len) {
		size_t n = len < WIRE_MAX_IO ? len : WIRE_MAX_IO;
		bool piece_hole = false;
		int err = write ? client_write_direct(r->cl, r->id, off, buf, n)
				: client_read_direct(r->cl, r->id, off, buf, n);

		/* Over RDMA a fetch (writeback) is a one-sided READ (WRITE +
		 * COMMIT) of a range the server mapped; TCP, or a range it
		 * would not map (a never-written tail), goes two-sided. */
		if (err == -EOPNOTSUPP)
			err = write ? ufo_client_write(r->cl, r->id, off, buf, n)
				    : remote_read_two_sided(r, off, buf, n,
							    &piece_hole);
		if (err)
			return err;
		*hole &= piece_hole;
		off += n;
		buf += n;
		len -= n;
	}
	return 0;
}

/* ---- two-sided, asynchronous (TCP, TLS): one request, answered into the
 * io's buffer by the client's reader, which completes the io. */

struct remote_req {
	struct client_req q;
	uint8_t w[sizeof(struct wire_io)];
	uint8_t rr[sizeof(struct wire_read_reply)]; /* READ asking for holes */
	struct ufo_io *io;
	struct remote_multi *multi; /* a piece of a ranged store, or NULL */
};

/* A ranged store (scan mode): one WRITE per range, all in flight at once,
 * the same requests as any write, so every server version takes them.
 * The io completes when the last piece is answered, with the first
 * error. */
struct remote_multi {
	_Atomic unsigned left;
	_Atomic int err;
	struct ufo_io *io;
	struct remote_req rq[];
};

/* The answer of a READ that asked for holes: a hole (no data after the
 * reply) or all the data. */
static int remote_read_holes(struct remote_req *rq)
{
	struct ufo_io *io = rq->io;
	struct wire_read_reply rr;

	if (wire_get_read_reply(rq->rr, sizeof(rq->rr), &rr) < 0)
		return -EPROTO;
	if (rr.flags & WIRE_READ_HOLE) {
		io->hole = true;
		return rq->q.k.data_len ? -EPROTO : 0;
	}
	return rq->q.k.data_len == io->len ? 0 : -EPROTO;
}

static void remote_submit_blocking(struct remote *r, struct ufo_io *io);

static void remote_log_refusal(struct ufo_io *io, struct client_req *q, int err)
{
	if (err && q->errmsg[0])
		log_warn(obj_ctx(io->obj), "%s: the server says: %s",
			 ((struct remote *)obj_backend_data(io->obj))->name,
			 q->errmsg);
}

/* One piece of a ranged store answered.  A connection that was down
 * (-ENOTCONN) sends the whole store again from an I/O worker, which
 * connects; the pieces already written are written again, unchanged. */
static void remote_piece_done(struct remote_req *rq, int err)
{
	struct remote_multi *m = rq->multi;
	struct ufo_io *io = m->io;
	int none = 0;

	remote_log_refusal(io, &rq->q, err);
	if (err)
		atomic_compare_exchange_strong(&m->err, &none, err);
	if (atomic_fetch_sub(&m->left, 1) != 1)
		return;
	err = atomic_load(&m->err);
	free(m);
	if (err == -ENOTCONN)
		remote_submit_blocking(obj_backend_data(io->obj), io);
	else
		io_complete(io, err);
}

static void remote_req_done(struct client_req *q, int err)
{
	struct remote_req *rq = ufo_container_of(q, struct remote_req, q);
	struct ufo_io *io = rq->io;

	if (rq->multi) {
		remote_piece_done(rq, err);
		return;
	}

	if (err == -ENOTCONN) {
		/* The connection is down: connecting may take the whole
		 * timeout, so an I/O worker does it (and this attempt). */
		free(rq);
		remote_submit_blocking(obj_backend_data(io->obj), io);
		return;
	}
	if (!err && !io->store)
		err = q->k.fixed_len ? remote_read_holes(rq)
				     : q->k.data_len == io->len ? 0 : -EPROTO;
	remote_log_refusal(io, q, err);
	free(rq);
	io_complete(io, err);
}

static void remote_submit_async(struct remote *r, struct ufo_io *io)
{
	struct remote_req *rq = malloc(sizeof(*rq));
	/* A never-written range then costs no transfer: a new object's first
	 * writes fetch nothing. */
	bool holes = !io->store && client_version(r->cl) >= 2;

	if (!rq) {
		io_complete(io, -ENOMEM);
		return;
	}
	rq->io = io;
	rq->multi = NULL;
	rq->q = (struct client_req){ .done = remote_req_done,
				     .no_connect = true };

	client_io_prepare(&rq->q.k, rq->w, io->store, r->id, io->start,
			  io->buf, io->len, holes ? WIRE_IO_HOLES : 0);
	if (holes) {
		rq->q.k.fixed = rq->rr;
		rq->q.k.fixed_len = sizeof(rq->rr);
	}
	client_submit(r->cl, &rq->q);
}

static void remote_submit_ranges(struct remote *r, struct ufo_io *io)
{
	unsigned n = io->nranges;
	struct remote_multi *m = calloc(1, sizeof(*m) + n * sizeof(m->rq[0]));

	if (!m) {
		io_complete(io, -ENOMEM);
		return;
	}
	m->io = io;
	atomic_init(&m->err, 0);
	atomic_init(&m->left, n);
	/* Once the last piece is sent m may be gone: nothing reads it after. */
	for (unsigned i = 0; i < n; i++) {
		struct remote_req *rq = &m->rq[i];
		const struct ufo_range *g = &io->ranges[i];

		rq->io = io;
		rq->multi = m;
		rq->q = (struct client_req){ .done = remote_req_done,
					     .no_connect = true };
		client_io_prepare(&rq->q.k, rq->w, true, r->id,
				  io->start + g->off, (char *)io->buf + g->off,
				  g->len, 0);
		client_submit(r->cl, &rq->q);
	}
}

/* Whether every range of a ranged store fits one request. */
static bool ranges_fit(const struct ufo_io *io)
{
	for (unsigned i = 0; i < io->nranges; i++)
		if (io->ranges[i].len > WIRE_MAX_IO)
			return false;
	return true;
}

/* ---- one-sided (RDMA), larger than one request, or needing a connect:
 * blocking, on an I/O worker, never on a handler. */

struct remote_job {
	struct ufo_job job;
	struct remote *r;
	struct ufo_io *io;
};

/* A store of some ranges of a chunk (scan mode): one WRITE at its offset
 * per range (or per WIRE_MAX_IO piece), the same requests as any write,
 * so servers of every protocol version take them. */
static int remote_store_ranges(struct remote *r, const struct ufo_io *io)
{
	bool hole;
	int err = 0;

	for (unsigned i = 0; i < io->nranges && !err; i++)
		err = remote_io(r, true, io->start + io->ranges[i].off,
				(char *)io->buf + io->ranges[i].off,
				io->ranges[i].len, &hole);
	return err;
}

static void remote_job_run(struct ufo_job *job)
{
	struct remote_job *rj = ufo_container_of(job, struct remote_job, job);
	struct ufo_io *io = rj->io;
	bool hole;
	int err = io->nranges ? remote_store_ranges(rj->r, io)
		  : remote_io(rj->r, io->store, io->start, io->buf, io->len,
			      &hole);

	if (!err && !io->nranges && hole)
		io->hole = true;
	free(rj);
	io_complete(io, err);
}

static void remote_submit_blocking(struct remote *r, struct ufo_io *io)
{
	struct remote_job *rj = malloc(sizeof(*rj));

	if (!rj) {
		io_complete(io, -ENOMEM);
		return;
	}
	*rj = (struct remote_job){ .job.fn = remote_job_run, .r = r, .io = io };
	obj_run_blocking(io->obj, &rj->job);
}

static void remote_submit(struct ufo_obj *obj, struct ufo_io *io)
{
	struct remote *r = obj_backend_data(obj);

	if (client_one_sided(r->cl))
		remote_submit_blocking(r, io);
	else if (io->nranges && ranges_fit(io))
		remote_submit_ranges(r, io);
	else if (!io->nranges && io->len <= WIRE_MAX_IO)
		remote_submit_async(r, io);
	else
		remote_submit_blocking(r, io);
}

static void remote_retry(const struct ufo_obj *obj, struct ufo_retry *out)
{
	const struct remote *r = obj_backend_data(obj);

	remote_retry_policy((unsigned)client_timeout_ms(r->cl), out);
}

static void remote_free(struct remote *r)
{
	if (!r)
		return;
	ufo_client_close(r->cl);
	free(r);
}

static void remote_close(struct ufo_obj *obj)
{
	remote_free(obj_backend_data(obj));
}

static const char *remote_name(const struct ufo_obj *obj)
{
	return ((const struct remote *)obj_backend_data(obj))->name;
}

static unsigned remote_servers(const struct ufo_obj *obj)
{
	(void)obj;
	return 1;
}

static int remote_server_status(const struct ufo_obj *obj, unsigned i,
				struct ufo_client_stats *out)
{
	return i ? -ENOENT
		 : ufo_client_status(((struct remote *)obj_backend_data(obj))->cl,
				     out);
}

static const struct ufo_backend_ops remote_backend = {
	.name = "remote",
	.submit = remote_submit,
	.partial_stores = true,
	.retry = remote_retry,
	.close = remote_close,
	.remote_name = remote_name,
	.servers = remote_servers,
	.server_status = remote_server_status,
};

/* Opens (or creates) the named object and fills the UFO parameters. */
static int remote_lookup(struct remote *r, const struct ufo_remote_opts *o,
			 struct ufo_params *p)
{
	struct ufo_remote_info info;
	int err = client_open(r->cl, r->name, &info);

	if (err == -ENOENT && o->flags & UFO_REMOTE_CREATE)
		err = ufo_client_create(r->cl, r->name, o->create_size,
					(uint32_t)o->chunk_size, &info);
	if (err)
		return err;
	if (info.flags & UFO_REMOTE_REPLICATED)
		return -EXDEV; /* a part of it only: open it on the cluster */
	r->id = info.id;
	ufo_params_init(p);
	p->elem_size = 1;
	p->elem_count = info.size;
	p->chunk_size = o->chunk_size ? o->chunk_size : info.chunk_size;
	p->flags = o->flags & (UFO_READ_ONLY | UFO_HUGE);
	return 0;
}

int remote_open(struct ufo_ctx *ctx, const char *url,
		const struct ufo_remote_opts *opts, struct ufo_obj **out)
{
	struct ufo_params p;
	struct net_addr addr;
	struct remote *r;
	int err;

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	err = net_parse_url(url, NULL, 0, &addr, r->name, sizeof(r->name));
	if (!err && wire_check_name(r->name, strlen(r->name)))
		err = -EINVAL;
	if (!err)
		err = ufo_client_connect(url, opts, &r->cl);
	if (!err)
		err = remote_lookup(r, opts, &p);
	if (err) {
		remote_free(r);
		log_err(ctx, "opening %s: %s", url,
			err == -EXDEV ? "the object is replicated over several "
					"servers: give them all in the URL"
				      : strerror(-err));
		return err;
	}
	err = obj_create(ctx, &p, &remote_backend, r, out);
	if (!err) {
		struct ufo_client_stats cs;

		ufo_client_status(r->cl, &cs);
		log_info(ctx, "object %llu: %s on %s over %s",
			 (unsigned long long)obj_id(*out), r->name, cs.server,
			 cs.transport);
	}
	return err;
}
