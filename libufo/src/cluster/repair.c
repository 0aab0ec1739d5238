/* SPDX-License-Identifier: MIT */
/*
 * Repair and rebalance of replicated objects (docs/cluster.md).
 *
 * A group is repaired when each of its homes holds the newest version of
 * every block: the versions of all live members are compared, the homes
 * missing something get it by a versioned write (which never overwrites a
 * newer block, so a repair racing a client's write is harmless), and only
 * then are copies on members that are not homes discarded, each only up
 * to the version the homes now hold (a newer write that landed there
 * meanwhile stays).  Which groups: those named by hints (missing copies
 * recorded by writers), or all of them.
 *
 * Rebalance first installs a placement over every member of the list
 * (epoch + 1) and then repairs everything.  Between the two steps a
 * group's new home may hold nothing yet; readers then also ask the other
 * members (quorum.c, read_set_rest), and with R >= 2 one old home stays
 * a home when one server is added.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"

struct repair {
	struct ufo_cluster *c;
	unsigned flags;
	struct ufo_repair_stats *st;
	bool named;
	void (*progress)(void *user, const struct ufo_repair_stats *s);
	void *user;
};

/* ---- one group */

struct grange {
	uint64_t first;  /* block */
	uint32_t count;  /* blocks */
	uint64_t off, len; /* bytes */
};

static void group_range(const struct cobj *o, const struct cview *v,
			uint64_t g, struct grange *r)
{
	r->off = g * v->group_size;
	r->len = o->size - r->off < v->group_size ? o->size - r->off
						  : v->group_size;
	r->first = r->off / o->block;
	r->count = (uint32_t)((r->len + o->block - 1) / o->block);
}

/* The first member in q holding version want of block b, or -1. */
static int source_of(const struct vquery *q, unsigned nq, uint32_t b,
		     uint64_t want)
{
	for (unsigned i = 0; i < nq; i++)
		if (q[i].v[b] == want)
			return (int)i;
	return -1;
}

/* Copies to home h (q[hi]) the blocks it lacks, in runs of one version
 * from one source. */
static int fill_home(struct repair *rp, struct cobj *o, const struct cview *v,
		     const struct grange *gr, struct vquery *q, unsigned nq,
		     unsigned hi, const uint64_t *maxv, char *buf)
{
	uint32_t per_io = WIRE_MAX_IO / o->block ? WIRE_MAX_IO / o->block : 1;

	for (uint32_t b = 0; b < gr->count;) {
		uint32_t e = b + 1;
		uint64_t lo, hi_off;
		int src, err;

		if (q[hi].v[b] >= maxv[b]) {
			b++;
			continue;
		}
		src = source_of(q, nq, b, maxv[b]);
		if (src < 0)
			return -EIO;
		while (e < gr->count && e - b < per_io && maxv[e] == maxv[b] &&
		       q[hi].v[e] < maxv[e] && q[src].v[e] == maxv[e])
			e++;
		lo = (gr->first + b) * o->block;
		hi_off = (gr->first + e) * o->block;
		if (hi_off > o->size)
			hi_off = o->size;
		err = rp->flags & UFO_REPAIR_DRY_RUN ? 0 : member_read(o, q[src].member, lo, buf, hi_off - lo);
		if (!err && !(rp->flags & UFO_REPAIR_DRY_RUN))
			err = member_vwrite(o, q[hi].member, v->epoch, lo, buf,
					    hi_off - lo, maxv[b], NULL);
		if (err)
			return err;
		rp->st->blocks_copied += e - b;
		rp->st->bytes_copied += hi_off - lo;
		b = e;
	}
	return 0;
}

static int member_discard(struct cobj *o, int i, uint64_t epoch,
			  uint64_t off, uint64_t len, uint64_t max_version)
{
	uint64_t id;
	int err = cobj_id(o, i, false, &id);

	while (!err && len) {
		uint64_t n = len;
		uint8_t w[sizeof(struct wire_vio)];
		struct client_call k = { .op = WIRE_DISCARD, .p1 = w,
					 .l1 = sizeof(w) };

		if (n > WIRE_MAX_IO)
			n = WIRE_MAX_IO / o->block * o->block;
		wire_put_vio(w, sizeof(w), &(struct wire_vio){
			.id = id, .offset = off, .len = (uint32_t)n,
			.version = max_version, .epoch = epoch });
		err = client_call_sync(o->c->m[i].cl, &k);
		off += n;
		len -= n;
	}
	return err;
}

/* Copies on non-homes go once every home holds the newest of each block. */
static int drop_strays(struct repair *rp, struct cobj *o,
		       const struct cview *v, const struct grange *gr,
		       struct vquery *q, unsigned nq, const bool *home)
{
	for (unsigned i = 0; i < nq; i++) {
		uint64_t top = 0, held = 0;
		int err;

		if (home[i])
			continue;
		for (uint32_t b = 0; b < gr->count; b++) {
			top = q[i].v[b] > top ? q[i].v[b] : top;
			held += q[i].v[b] != 0;
		}
		if (!held)
			continue;
		err = rp->flags & UFO_REPAIR_DRY_RUN ? 0 : member_discard(o, q[i].member, v->epoch, gr->off, gr->len,
				     top);
		if (err)
			return err;
		rp->st->blocks_discarded += held;
	}
	return 0;
}

static int repair_group(struct repair *rp, struct cobj *o, uint64_t g,
			char *buf)
{
	int m[WIRE_MAX_MEMBERS];
	bool home[WIRE_MAX_MEMBERS];
	struct vquery q[WIRE_MAX_MEMBERS];
	struct grange gr;
	struct rank rank;
	struct cview v;
	uint64_t *maxv;
	unsigned nq = 0;
	int err = 0;

	cobj_view(o, &v);
	cobj_rank(o, &v, g, &rank);
	group_range(o, &v, g, &gr);
	for (unsigned i = 0; i < v.n; i++) {
		if (!member_up(o->c, rank.member[i])) {
			if (i < v.replicas)
				return -EHOSTDOWN; /* a home down: later */
			continue;
		}
		home[nq] = i < v.replicas;
		m[nq++] = rank.member[i];
	}
	maxv = calloc(gr.count, sizeof(*maxv));
	if (!maxv)
		return -ENOMEM;
	versions_query(o, m, nq, gr.first, gr.count, q);
	for (unsigned i = 0; i < nq; i++) {
		if (q[i].err) {
			member_failed(o->c, q[i].member, q[i].err);
			err = err ? err : q[i].err;
		} else if (q[i].rep.epoch && q[i].rep.epoch != v.epoch) {
			err = -ESTALE;
		}
		for (uint32_t b = 0; b < gr.count; b++)
			maxv[b] = q[i].v[b] > maxv[b] ? q[i].v[b] : maxv[b];
	}
	for (unsigned i = 0; !err && i < nq; i++)
		if (home[i])
			err = fill_home(rp, o, &v, &gr, q, nq, i, maxv, buf);
	if (!err)
		err = drop_strays(rp, o, &v, &gr, q, nq, home);
	versions_free(q, nq);
	free(maxv);
	return err;
}

/* ---- hints */

struct hinted {
	uint8_t *groups;  /* one flag per group */
	uint64_t ngroups;
	/* per member: records read (HINTS_DROP upto) */
	uint64_t upto[WIRE_MAX_MEMBERS];
};

/* Flags the groups that n hint records (encoded, len bytes at rec) name;
 * a record past the object's end names none.  0 or -EPROTO. */
static int mark_hinted(const uint8_t *rec, size_t len, uint32_t n,
		       const struct cview *v, struct hinted *h)
{
	if (n > len / sizeof(struct wire_hint))
		return -EPROTO;
	for (uint32_t r = 0; r < n; r++) {
		struct wire_hint hint;
		size_t at = (size_t)r * sizeof(hint);
		uint64_t end;

		wire_get_hint(rec + at, len - at, &hint);
		end = hint.offset + hint.len;
		for (uint64_t g = hint.offset / v->group_size;
		     g < h->ngroups && g * v->group_size < end; g++)
			h->groups[g] = 1;
	}
	return 0;
}

/* Reads member i's hints for object id, page by page, into h. */
static int member_hints(struct repair *rp, int i, uint64_t id,
			const struct cview *v, uint8_t *rec, struct hinted *h)
{
	struct wire_hint_reply rep = { .more = 1 };
	struct wire_hint_q hq = { .id = id };
	uint8_t hq_raw[sizeof(hq)], rep_raw[sizeof(rep)];
	int err = 0;

	while (!err && rep.more) {
		struct client_call k = {
			.op = WIRE_HINTS, .p1 = hq_raw, .l1 = sizeof(hq_raw),
			.fixed = rep_raw, .fixed_len = sizeof(rep_raw),
			.data = rec,
			.data_cap = WIRE_MAX_HINTS * sizeof(struct wire_hint) };

		wire_put_hint_q(hq_raw, sizeof(hq_raw), &hq);
		err = client_call_sync(rp->c->m[i].cl, &k);
		if (!err)
			err = wire_get_hint_reply(rep_raw, sizeof(rep_raw), &rep);
		if (err >= 0)
			err = mark_hinted(rec, k.data_len, rep.count, v, h);
		if (!err) {
			rp->st->hints += rep.count;
			hq.cursor = rep.next_cursor;
		}
	}
	h->upto[i] = hq.cursor;
	return err;
}

static int read_hints(struct repair *rp, struct cobj *o, const struct cview *v,
		      struct hinted *h)
{
	uint8_t *rec = malloc(WIRE_MAX_HINTS * sizeof(struct wire_hint));
	int err = rec ? 0 : -ENOMEM;

	for (unsigned i = 0; !err && i < o->c->n; i++) {
		uint64_t id;

		if (!member_up(o->c, (int)i) || cobj_id(o, (int)i, false, &id))
			continue;
		err = member_hints(rp, (int)i, id, v, rec, h);
	}
	free(rec);
	return err;
}

/* Every hinted group was repaired: forget the hints read (one drop per
 * server, for every node: the server compacts the file on each drop, so
 * a second drop with the same bound would reach hints written since). */
static void drop_hints(struct repair *rp, struct cobj *o, const struct hinted *h)
{
	for (unsigned i = 0; i < o->c->n; i++) {
		/* node all zeros: every node */
		struct wire_hint_drop d = { .upto = h->upto[i] };
		uint8_t raw[sizeof(d)];
		struct client_call k = { .op = WIRE_HINTS_DROP, .p1 = raw,
					 .l1 = sizeof(raw) };

		if (!h->upto[i] || cobj_id(o, (int)i, false, &d.id))
			continue;
		wire_put_hint_drop(raw, sizeof(raw), &d);
		if (!client_call_sync(o->c->m[i].cl, &k))
			rp->st->hints_dropped += h->upto[i];
	}
}

/* ---- rebalance */

/* The placement over every member of the list; -EHOSTDOWN unless all are
 * up (a member down now would be left out of it). */
static int full_view(struct cobj *o, const struct cview *old, struct cview *nv)
{
	struct ufo_cluster *c = o->c;
	int err = 0;

	*nv = *old;
	nv->n = 0;
	pthread_mutex_lock(&c->lock);
	for (unsigned i = 0; i < c->n; i++) {
		if (c->m[i].dup)
			continue;
		if (!c->m[i].known || !member_up(c, (int)i))
			err = -EHOSTDOWN;
		else
			memcpy(nv->nodes[nv->n++], c->m[i].node, WIRE_NODE_ID);
	}
	pthread_mutex_unlock(&c->lock);
	nv->epoch = old->epoch + 1;
	return err;
}

static bool same_nodes(const struct cview *a, const struct cview *b)
{
	if (a->n != b->n)
		return false;
	for (unsigned i = 0; i < a->n; i++) {
		unsigned j = 0;
		while (j < b->n && memcmp(a->nodes[i], b->nodes[j], WIRE_NODE_ID))
			j++;
		if (j == b->n)
			return false;
	}
	return true;
}

/* Groups whose homes change, and how many new homes they get. */
static void count_moves(struct repair *rp, struct cobj *o,
			const struct cview *old, const struct cview *nv,
			uint64_t groups)
{
	for (uint64_t g = 0; g < groups; g++) {
		struct rank a, b;
		unsigned fresh = 0;

		cobj_rank(o, old, g, &a);
		cobj_rank(o, nv, g, &b);
		for (unsigned i = 0; i < nv->replicas; i++) {
			bool was = false;
			for (unsigned j = 0; j < old->replicas; j++)
				was |= !memcmp(nv->nodes[b.node[i]],
					       old->nodes[a.node[j]],
					       WIRE_NODE_ID);
			fresh += !was;
		}
		rp->st->groups_moved += fresh != 0;
		rp->st->replicas_moved += fresh;
	}
}

static int rebalance(struct repair *rp, struct cobj *o, uint64_t groups)
{
	struct cview old, nv;
	uint64_t id;
	int err;

	cobj_view(o, &old);
	if ((err = full_view(o, &old, &nv)))
		return err;
	if (same_nodes(&old, &nv))
		return 0;
	count_moves(rp, o, &old, &nv, groups);
	if (rp->flags & UFO_REPAIR_DRY_RUN)
		return 0;
	pthread_mutex_lock(&o->lock);
	o->view = nv;
	pthread_mutex_unlock(&o->lock);
	for (unsigned i = 0; !err && i < o->c->n; i++) {
		if (o->c->m[i].dup)
			continue;
		err = cobj_id(o, (int)i, true, &id); /* places new copies */
		if (!err)
			err = member_place(o, (int)i, id, &nv);
	}
	return err;
}

/* ---- objects */

static int repair_object(struct repair *rp, const char *name)
{
	struct cobj *o = calloc(1, sizeof(*o));
	struct hinted h = { 0 };
	uint64_t groups, errors = rp->st->errors;
	struct cview v;
	char *buf = NULL;
	int err;

	if (!o)
		return -ENOMEM;
	err = cobj_init(o, rp->c, name);
	if (!err)
		err = cobj_reload(o);
	cobj_view(o, &v);
	if (err || !v.epoch) { /* gone meanwhile, or not replicated */
		cobj_fini(o);
		free(o);
		if (rp->named) /* asked for by name: say it is not there */
			return err ? err : -ENOENT;
		return err == -ENOENT ? 0 : err;
	}
	rp->st->objects++;
	groups = (o->size + v.group_size - 1) / v.group_size;
	if (rp->flags & UFO_REPAIR_REBALANCE)
		err = rebalance(rp, o, groups);
	h.groups = calloc(groups, 1);
	h.ngroups = groups;
	buf = malloc(WIRE_MAX_IO);
	if (!err && (!h.groups || !buf))
		err = -ENOMEM;
	if (!err)
		err = read_hints(rp, o, &v, &h);
	if (!err && rp->flags & (UFO_REPAIR_FULL | UFO_REPAIR_REBALANCE))
		memset(h.groups, 1, groups);
	for (uint64_t g = 0; !err && g < groups; g++)
		rp->st->groups += h.groups[g];
	if (rp->progress)
		rp->progress(rp->user, rp->st);
	for (uint64_t g = 0; !err && g < groups; g++) {
		int gerr;

		if (!h.groups[g])
			continue;
		gerr = repair_group(rp, o, g, buf);
		if (gerr && gerr != -EHOSTDOWN && !remote_transient(gerr))
			err = gerr;
		else if (gerr)
			rp->st->errors++;
		else
			rp->st->groups_done++;
		if (rp->progress)
			rp->progress(rp->user, rp->st);
	}
	if (!err && groups && rp->st->errors == errors &&
	    !(rp->flags & UFO_REPAIR_DRY_RUN))
		drop_hints(rp, o, &h);
	free(buf);
	free(h.groups);
	cobj_fini(o);
	free(o);
	return err;
}

struct names {
	char (*v)[WIRE_MAX_NAME + 1];
	size_t n, cap;
};

static int add_name(void *user, const struct ufo_remote_info *info)
{
	struct names *ns = user;

	for (size_t i = 0; i < ns->n; i++)
		if (!strcmp(ns->v[i], info->name))
			return 0;
	if (ns->n == ns->cap) {
		size_t cap = ns->cap ? ns->cap * 2 : 16;
		void *p = realloc(ns->v, cap * sizeof(*ns->v));
		if (!p)
			return -ENOMEM;
		ns->v = p;
		ns->cap = cap;
	}
	snprintf(ns->v[ns->n++], WIRE_MAX_NAME + 1, "%s", info->name);
	return 0;
}

int ufo_cluster_repair(struct ufo_cluster *c, const char *name, unsigned flags,
		       void (*progress)(void *user,
					const struct ufo_repair_stats *s),
		       void *user, struct ufo_repair_stats *out)
{
	struct ufo_repair_stats st = { 0 };
	struct repair rp = { .c = c, .flags = flags, .st = &st, .named = name,
			     .progress = progress, .user = user };
	struct names ns = { 0 };
	int err = 0;

	if (!c)
		return -EINVAL;
	if (name) {
		err = add_name(&ns, &(struct ufo_remote_info){ 0 });
		if (!err)
			snprintf(ns.v[0], WIRE_MAX_NAME + 1, "%s", name);
	}
	for (unsigned i = 0; !err && !name && i < c->n; i++)
		if (member_up(c, (int)i) && !c->m[i].dup) {
			int e = ufo_client_list(c->m[i].cl, add_name, &ns);
			if (e == -ENOMEM)
				err = e;
		}
	for (size_t i = 0; !err && i < ns.n; i++)
		err = repair_object(&rp, ns.v[i]);
	free(ns.v);
	if (out)
		*out = st;
	if (!err && st.errors)
		err = -EAGAIN;
	return err;
}
