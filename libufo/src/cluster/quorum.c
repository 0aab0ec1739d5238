/* SPDX-License-Identifier: MIT */
/*
 * Quorum reads and writes of replicated objects.
 *
 * Reads: the versions of the chunk's blocks are asked of every live home
 * (of every live member when a home is down) and the data is read from a
 * member holding the newest version of each block.  Writes: one version
 * (hlc_next) per writeback, sent to the live homes plus, for each home
 * that is down, the next live member in rendezvous order carrying a hint;
 * done when every target made it durable and they are at least W.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "cluster/cluster.h"

/* ---- requests */

/* The answer of q: its reply and rep.count versions (the rest of count
 * read as 0), decoded in place.  0 or -EPROTO. */
static int versions_decode(struct vquery *q, uint32_t count)
{
	uint32_t n;
	int rc = wire_get_vq_reply(q->rep_raw, sizeof(q->rep_raw), &q->rep);

	if (rc < 0)
		return rc;
	n = q->rep.count < count ? q->rep.count : count;
	rc = wire_get_u64s(q->v, q->k.data_len, q->v, n);
	if (rc < 0)
		return rc;
	memset(q->v + n, 0, (size_t)(count - n) * 8);
	return 0;
}

int versions_query(struct cobj *o, const int *m, unsigned n, uint64_t first,
		   uint32_t count, struct vquery *q)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t id;

		q[i] = (struct vquery){ .member = m[i] };
		q[i].v = calloc(count, sizeof(uint64_t));
		if (!q[i].v) {
			q[i].err = -ENOMEM;
			continue;
		}
		q[i].err = cobj_id(o, m[i], false, &id);
		if (q[i].err)
			continue;
		wire_put_vq(q[i].q, sizeof(q[i].q), &(struct wire_vq){
			.id = id, .offset = first * o->block, .count = count });
		q[i].k = (struct client_call){
			.op = WIRE_VERSIONS, .p1 = q[i].q, .l1 = sizeof(q[i].q),
			.fixed = q[i].rep_raw, .fixed_len = sizeof(q[i].rep_raw),
			.data = q[i].v, .data_cap = (size_t)count * 8 };
		q[i].op = client_start(o->c->m[m[i]].cl, &q[i].k);
		if (!q[i].op)
			q[i].err = -ENOMEM;
	}
	for (unsigned i = 0; i < n; i++) {
		if (q[i].op) {
			q[i].err = client_finish(q[i].op);
			q[i].op = NULL;
		}
		if (q[i].err == -ENOENT) { /* no copy there: all version 0 */
			memset(q[i].v, 0, (size_t)count * 8);
			q[i].rep.epoch = 0;
			q[i].err = 0;
			continue;
		}
		if (!q[i].err)
			q[i].err = versions_decode(&q[i], count);
	}
	return 0;
}

void versions_free(struct vquery *q, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		free(q[i].v);
}

int member_read(struct cobj *o, int i, uint64_t off, void *buf, size_t len)
{
	struct ufo_client *cl = o->c->m[i].cl;
	char *p = buf;
	uint64_t id;
	int err = cobj_id(o, i, false, &id);

	while (!err && len) {
		size_t n = len < WIRE_MAX_IO ? len : WIRE_MAX_IO;

		err = client_read_direct(cl, id, off, p, n);
		if (err == -EOPNOTSUPP)
			err = ufo_client_read(cl, id, off, p, n);
		off += n;
		p += n;
		len -= n;
	}
	return err;
}

struct vwrite {
	struct client_call k;
	uint8_t v[sizeof(struct wire_vio)];
	struct client_op *op;
};

/* Encodes the fixed part of a VWRITE of len bytes at off of the copy id
 * into out (sizeof(struct wire_vio) bytes). */
static void vio_fill(uint8_t *out, uint64_t id, uint64_t epoch, uint64_t off,
		     size_t len, uint64_t version, const uint8_t *hint_node)
{
	struct wire_vio v = { .id = id, .offset = off, .len = (uint32_t)len,
			      .version = version, .epoch = epoch };

	if (hint_node) {
		v.flags = WIRE_VIO_HINT;
		memcpy(v.node, hint_node, WIRE_NODE_ID);
	}
	wire_put_vio(out, sizeof(v), &v);
}

static struct client_op *vwrite_start(struct cobj *o, int i, uint64_t epoch,
				      uint64_t off, const void *buf,
				      size_t len, uint64_t version,
				      const uint8_t *hint_node,
				      struct vwrite *w, int *err)
{
	uint64_t id;

	*err = cobj_id(o, i, true, &id);
	if (*err)
		return NULL;
	vio_fill(w->v, id, epoch, off, len, version, hint_node);
	w->k = (struct client_call){ .op = WIRE_VWRITE, .p1 = w->v,
				     .l1 = sizeof(w->v), .p2 = buf, .l2 = len };
	w->op = client_start(o->c->m[i].cl, &w->k);
	if (!w->op)
		*err = -ENOMEM;
	return w->op;
}

int member_vwrite(struct cobj *o, int i, uint64_t epoch, uint64_t off,
		  const void *buf, size_t len, uint64_t version,
		  const uint8_t *hint_node)
{
	struct vwrite w;
	int err;

	if (!vwrite_start(o, i, epoch, off, buf, len, version, hint_node, &w,
			  &err))
		return err;
	return client_finish(w.op);
}

/* ---- the backend: reads */

/* Blocks of [off, off + len) (len > 0). */
static uint32_t block_count(const struct cobj *o, uint64_t off, size_t len)
{
	return (uint32_t)((off + len - 1) / o->block - off / o->block + 1);
}

/* Members to ask about group g: the live homes, or every live member of
 * the placement when a home is down.  -EHOSTDOWN when what is up cannot
 * vouch for the newest copy: no home up, or (a home down) W or more
 * members down, so an acknowledged write may sit only on down ones. */
static int read_set(struct cobj *o, const struct cview *v,
		    const struct rank *r, int *q, unsigned *nq, bool *degraded)
{
	unsigned live_homes = 0, down = 0;

	*degraded = false;
	*nq = 0;
	for (unsigned i = 0; i < v->n; i++) {
		bool up = member_up(o->c, r->member[i]);

		down += !up;
		if (i < v->replicas) {
			live_homes += up;
			*degraded |= !up;
		}
	}
	if (!live_homes || (*degraded && down >= v->quorum))
		return -EHOSTDOWN;
	for (unsigned i = 0; i < v->n; i++)
		if (member_up(o->c, r->member[i]) &&
		    (i < v->replicas || *degraded))
			q[(*nq)++] = r->member[i];
	return 0;
}

/* Adds the live non-homes to q (when the homes know nothing of a block:
 * a rebalance may not have moved it yet). */
static void read_set_rest(struct cobj *o, const struct cview *v,
			  const struct rank *r, int *q, unsigned *nq)
{
	for (unsigned i = v->replicas; i < v->n; i++)
		if (member_up(o->c, r->member[i]))
			q[(*nq)++] = r->member[i];
}

struct newest {
	uint64_t *maxv;
	uint32_t count;
};

/* Checks the answers; fills maxv.  An error marks its member down (the
 * caller retries with the others), a foreign epoch reloads the view. */
static int versions_check(struct cobj *o, const struct cview *v,
			  struct vquery *q, unsigned nq, struct newest *nw)
{
	int err = 0;

	for (unsigned i = 0; i < nq; i++) {
		if (q[i].err) {
			member_failed(o->c, q[i].member, q[i].err);
			err = err ? err : q[i].err;
			continue;
		}
		if (q[i].rep.epoch && q[i].rep.epoch != v->epoch)
			err = -ESTALE;
		for (uint32_t b = 0; b < nw->count; b++)
			if (q[i].v[b] > nw->maxv[b])
				nw->maxv[b] = q[i].v[b];
	}
	if (err == -ESTALE)
		cobj_reload(o);
	return err;
}

/* The first member (in q's rank order) holding the newest version of
 * every block in [b0, b1); -1 if none does. */
static int holder(const struct vquery *q, unsigned nq, const struct newest *nw,
		  uint32_t b0, uint32_t b1)
{
	for (unsigned i = 0; i < nq; i++) {
		uint32_t b = b0;

		while (b < b1 && (!nw->maxv[b] || q[i].v[b] == nw->maxv[b]))
			b++;
		if (b == b1)
			return (int)i;
	}
	return -1;
}

/* Copies blocks [b0, b1) of the chunk at off into dst from member src;
 * blocks nobody holds are zeros (a version-0 copy is never trusted). */
static int read_blocks(struct cobj *o, uint64_t off, size_t len, char *dst,
		       const struct vquery *q, unsigned nq,
		       const struct newest *nw)
{
	uint64_t base = off / o->block * o->block;
	int src = holder(q, nq, nw, 0, nw->count), err = 0;

	if (src >= 0)
		err = member_read(o, q[src].member, off, dst, len);
	for (uint32_t b = 0; !err && b < nw->count; b++) {
		uint64_t lo = base + (uint64_t)b * o->block, hi = lo + o->block;
		int h;

		lo = lo < off ? off : lo;
		hi = hi > off + len ? off + len : hi;
		if (!nw->maxv[b]) {
			memset(dst + (lo - off), 0, hi - lo);
			continue;
		}
		if (src >= 0)
			continue;
		h = holder(q, nq, nw, b, b + 1);
		err = h < 0 ? -EIO
			    : member_read(o, q[h].member, lo, dst + (lo - off),
					  hi - lo);
	}
	return err;
}

/* The data of the first live home, read while the versions are asked
 * (one round trip instead of two when that home is up to date, as it is
 * unless it missed writes). */
struct spec {
	struct client_call k;
	uint8_t io[sizeof(struct wire_io)];
	struct client_op *op;
	int err;
};

static void spec_start(struct cobj *o, int member, uint64_t off, size_t len,
		       char *dst, struct spec *sp)
{
	uint64_t id;

	sp->op = NULL;
	sp->err = len > WIRE_MAX_IO ? -E2BIG : cobj_id(o, member, false, &id);
	if (sp->err)
		return;
	wire_put_io(sp->io, sizeof(sp->io), &(struct wire_io){
		.id = id, .offset = off, .len = (uint32_t)len });
	sp->k = (struct client_call){ .op = WIRE_READ, .p1 = sp->io,
				      .l1 = sizeof(sp->io), .data = dst,
				      .data_cap = len };
	sp->op = client_start(o->c->m[member].cl, &sp->k);
	sp->err = sp->op ? 0 : -ENOMEM;
}

static int spec_finish(struct spec *sp, size_t len)
{
	if (sp->op) {
		sp->err = client_finish(sp->op);
		sp->op = NULL;
		if (!sp->err && sp->k.data_len != len)
			sp->err = -EPROTO;
	}
	return sp->err;
}

/* The speculative read is good when its member (q[0]) holds the newest
 * version of every block; blocks nobody holds become zeros. */
static bool spec_usable(struct cobj *o, uint64_t off, size_t len, char *dst,
			const struct vquery *q, const struct newest *nw)
{
	uint64_t base = off / o->block * o->block;

	if (holder(q, 1, nw, 0, nw->count) != 0)
		return false;
	for (uint32_t b = 0; b < nw->count; b++) {
		uint64_t lo = base + (uint64_t)b * o->block, hi = lo + o->block;

		if (nw->maxv[b])
			continue;
		lo = lo < off ? off : lo;
		hi = hi > off + len ? off + len : hi;
		memset(dst + (lo - off), 0, hi - lo);
	}
	return true;
}

int cluster_read_once(struct cobj *o, uint64_t off, size_t len, char *dst)
{
	int qm[WIRE_MAX_MEMBERS];
	struct vquery q[WIRE_MAX_MEMBERS];
	struct rank rank;
	struct newest nw = { .count = block_count(o, off, len) };
	struct spec sp = { .err = -ENODATA };
	unsigned nq, asked;
	bool degraded, unknown = false;
	struct cview v;
	int err;

	cobj_view(o, &v);
	cobj_rank(o, &v, off / v.group_size, &rank);
	if ((err = read_set(o, &v, &rank, qm, &nq, &degraded)))
		return err;
	nw.maxv = calloc(nw.count, sizeof(uint64_t));
	if (!nw.maxv)
		return -ENOMEM;
	if (!degraded)
		spec_start(o, qm[0], off, len, dst, &sp);
	versions_query(o, qm, nq, off / o->block, nw.count, q);
	err = versions_check(o, &v, q, nq, &nw);
	spec_finish(&sp, len);
	for (uint32_t b = 0; b < nw.count; b++)
		unknown |= !nw.maxv[b];
	asked = nq;
	if (!err && !degraded && unknown) {
		read_set_rest(o, &v, &rank, qm, &nq);
		versions_query(o, qm + asked, nq - asked, off / o->block,
			       nw.count, q + asked);
		err = versions_check(o, &v, q + asked, nq - asked, &nw);
	}
	if (!err && (sp.err || !spec_usable(o, off, len, dst, q, &nw)))
		err = read_blocks(o, off, len, dst, q, nq, &nw);
	for (uint32_t b = 0; b < nw.count; b++)
		hlc_observe(nw.maxv[b]);
	versions_free(q, nq);
	free(nw.maxv);
	return err;
}

/* ---- the backend: writes */

struct target {
	int member;
	const uint8_t *hint; /* the home this copy stands in for */
};

/* The live homes, and for each home that is down the next live member in
 * rank order, carrying a hint naming it; with no stand-in left, the hint
 * rides on a live home.  -EHOSTDOWN: no live home, or fewer than W
 * distinct targets. */
static int write_set(struct cobj *o, const struct cview *v,
		     const struct rank *r, struct target *t, unsigned *nt)
{
	const uint8_t *missing[WIRE_MAX_MEMBERS];
	unsigned nmiss = 0, next = v->replicas, distinct;

	*nt = 0;
	for (unsigned i = 0; i < v->replicas; i++) {
		if (member_up(o->c, r->member[i]))
			t[(*nt)++] = (struct target){ r->member[i], NULL };
		else
			missing[nmiss++] = v->nodes[r->node[i]];
	}
	if (!*nt)
		return -EHOSTDOWN;
	distinct = *nt;
	for (unsigned k = 0; k < nmiss; k++) {
		while (next < v->n && !member_up(o->c, r->member[next]))
			next++;
		if (next < v->n) {
			t[(*nt)++] = (struct target){ r->member[next++],
						      missing[k] };
			distinct++;
		} else {
			t[(*nt)++] = (struct target){ t[0].member, missing[k] };
		}
	}
	return distinct < v->quorum ? -EHOSTDOWN : 0;
}

int cluster_write_once(struct cobj *o, uint64_t off, size_t len,
		       const char *src, uint64_t version)
{
	struct target t[2 * WIRE_MAX_MEMBERS];
	struct vwrite w[2 * WIRE_MAX_MEMBERS];
	int errs[2 * WIRE_MAX_MEMBERS];
	struct rank rank;
	struct cview v;
	unsigned nt;
	int err;

	cobj_view(o, &v);
	cobj_rank(o, &v, off / v.group_size, &rank);
	if ((err = write_set(o, &v, &rank, t, &nt)))
		return err;
	for (unsigned i = 0; i < nt; i++)
		vwrite_start(o, t[i].member, v.epoch, off, src, len, version,
			     t[i].hint, &w[i], &errs[i]);
	/* Every target answers before we judge: a failed one is marked
	 * down, and the retry re-plans with a stand-in and a hint for it
	 * (the same version again is a no-op where it landed). */
	for (unsigned i = 0; i < nt; i++) {
		if (w[i].op)
			errs[i] = client_finish(w[i].op);
		if (errs[i]) {
			member_failed(o->c, t[i].member, errs[i]);
			err = err ? err : errs[i];
		}
	}
	if (err == -ESTALE)
		cobj_reload(o);
	return err;
}


/* ---- the backend: writes without waiting */

/*
 * One attempt at a store, sent to every target at once as asynchronous
 * requests; the last answer (on whichever reader thread brings it)
 * judges the attempt as cluster_write_once does: every target answers
 * first, a failed one is marked down, and the engine's retry re-plans.
 * No thread waits on the network meanwhile.  Work that may block is
 * handed to an I/O worker: connecting a target whose connection is down,
 * and re-reading the placement after -ESTALE.
 */
struct wtarget {
	struct client_req q;
	uint8_t v[sizeof(struct wire_vio)];
	struct ufo_job job;   /* the connect, on an I/O worker */
	struct qwrite *w;
	int member;
};

struct qwrite {
	struct cobj *o;
	struct ufo_io *io;
	struct ufo_job job;   /* the reload after -ESTALE */
	/* Answers still to come.  w is freed by the last: answers to the
	 * first targets can come while the submitter still sends to the
	 * others, but the last cannot come before its own send. */
	atomic_uint left;
	atomic_int err;       /* the first failure */
	unsigned nt;
	struct wtarget t[];
};

static void qwrite_reload(struct ufo_job *job)
{
	struct qwrite *w = ufo_container_of(job, struct qwrite, job);
	struct ufo_io *io = w->io;

	cobj_reload(w->o);
	free(w);
	io_complete(io, -ESTALE);
}

static void qwrite_put(struct qwrite *w)
{
	struct ufo_io *io = w->io;
	int err;

	if (atomic_fetch_sub(&w->left, 1) != 1)
		return;
	err = atomic_load(&w->err);
	if (err == -ESTALE) { /* a server has a newer placement */
		w->job.fn = qwrite_reload;
		obj_run_blocking(io->obj, &w->job);
		return;
	}
	free(w);
	io_complete(io, err);
}

static void wtarget_connect(struct ufo_job *job)
{
	struct wtarget *t = ufo_container_of(job, struct wtarget, job);

	client_submit(t->w->o->c->m[t->member].cl, &t->q);
}

static void wtarget_done(struct client_req *q, int err)
{
	struct wtarget *t = ufo_container_of(q, struct wtarget, q);
	struct qwrite *w = t->w;
	int none = 0;

	if (err == -ENOTCONN && q->no_connect) {
		/* Its connection is down: connecting may take the whole
		 * timeout, so an I/O worker connects and sends it. */
		q->no_connect = false;
		t->job.fn = wtarget_connect;
		obj_run_blocking(w->io->obj, &t->job);
		return;
	}
	if (err) {
		member_failed(w->o->c, t->member, err);
		atomic_compare_exchange_strong(&w->err, &none, err);
	}
	qwrite_put(w);
}

/* The targets' ids on their members, when all are known (looking one up
 * is a request that waits: the caller then writes on a worker). */
static bool ids_known(struct cobj *o, const struct target *t, unsigned nt,
		      uint64_t *ids)
{
	bool all = true;

	pthread_mutex_lock(&o->lock);
	for (unsigned i = 0; i < nt; i++) {
		ids[i] = o->ids[t[i].member];
		all &= ids[i] != 0;
	}
	pthread_mutex_unlock(&o->lock);
	return all;
}

int cluster_write_submit(struct cobj *o, struct ufo_io *io)
{
	struct target t[2 * WIRE_MAX_MEMBERS];
	uint64_t ids[2 * WIRE_MAX_MEMBERS];
	struct qwrite *w;
	struct rank rank;
	struct cview v;
	unsigned nt;
	int err;

	cobj_view(o, &v);
	cobj_rank(o, &v, io->start / v.group_size, &rank);
	if ((err = write_set(o, &v, &rank, t, &nt))) {
		io_complete(io, err);
		return 0;
	}
	if (!ids_known(o, t, nt, ids))
		return -EAGAIN;
	w = calloc(1, sizeof(*w) + nt * sizeof(w->t[0]));
	if (!w) {
		io_complete(io, -ENOMEM);
		return 0;
	}
	w->o = o;
	w->io = io;
	w->nt = nt;
	atomic_init(&w->left, nt);
	atomic_init(&w->err, 0);
	for (unsigned i = 0; i < nt; i++) {
		struct wtarget *wt = &w->t[i];

		wt->w = w;
		wt->member = t[i].member;
		vio_fill(wt->v, ids[i], v.epoch, io->start, io->len, io->tag,
			 t[i].hint);
		wt->q = (struct client_req){
			.k = { .op = WIRE_VWRITE, .p1 = wt->v,
			       .l1 = sizeof(wt->v), .p2 = io->buf,
			       .l2 = io->len },
			.done = wtarget_done, .no_connect = true };
	}
	for (unsigned i = 0; i < nt; i++)
		client_submit(o->c->m[w->t[i].member].cl, &w->t[i].q);
	return 0;
}
