/* SPDX-License-Identifier: MIT */
/*
 * The replication ops (wire.h, docs/cluster.md): versioned writes, version
 * queries, discards, the node id, placements and repair hints.  Like
 * handlers.c, each handler checks its payload completely before touching
 * the store and answers exactly once.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"
#include "vstore.h"

/* Finds the object of a request whose payload starts with its id. */
static struct store_obj *find(struct server *srv, struct request *r,
			      uint64_t id)
{
	struct store_obj *o;

	if (store_find_id(srv->store, id, &o)) {
		handler_fail(r, WIRE_ENOENT, "no object with id %" PRIu64, id);
		return NULL;
	}
	return o;
}

static void answer(struct request *r, const void *fixed, size_t len,
		   const void *data, size_t data_len)
{
	struct outbuf *ob = outbuf_new(len + data_len);

	if (!ob) {
		handler_fail(r, WIRE_EIO, "out of memory");
		return;
	}
	memcpy(outbuf_payload(ob), fixed, len);
	if (data_len)
		memcpy(outbuf_payload(ob) + len, data, data_len);
	request_done(r, WIRE_OK, ob);
}

/* ---- VWRITE / DISCARD */

/* Parses a wire_vio (with_data: len payload bytes follow) and checks it
 * against its object: the range inside it, whole blocks, the epoch. */
static struct store_obj *vio_target(struct server *srv, struct request *r,
				    struct wire_vio *v, bool with_data)
{
	struct store_obj *o;
	uint64_t epoch;

	if (wire_get_vio(r->payload, r->hdr.len, v) < 0) {
		handler_fail(r, WIRE_EPROTO, "payload under %zu bytes",
			     sizeof(*v));
		return NULL;
	}
	if (r->hdr.len != sizeof(*v) + (with_data ? v->len : 0)) {
		handler_fail(r, WIRE_EPROTO, "payload %u bytes, expected %zu",
			     r->hdr.len, sizeof(*v) + (with_data ? v->len : 0));
		return NULL;
	}
	if (v->flags & ~WIRE_VIO_HINT || (!with_data && v->flags)) {
		handler_fail(r, WIRE_EINVAL, "unknown flags %#x", v->flags);
		return NULL;
	}
	if (v->len > WIRE_MAX_IO || !v->len) {
		handler_fail(r, v->len ? WIRE_E2BIG : WIRE_EINVAL,
			     "length %u not in 1..%u", v->len, WIRE_MAX_IO);
		return NULL;
	}
	if (with_data && !v->version) {
		handler_fail(r, WIRE_EINVAL, "version 0 is reserved");
		return NULL;
	}
	if (!(o = find(srv, r, v->id)))
		return NULL;
	if (v->offset > o->size || v->len > o->size - v->offset) {
		handler_fail(r, WIRE_ERANGE,
			     "[%" PRIu64 ", +%u) outside object of %" PRIu64
			     " bytes", v->offset, v->len, o->size);
		goto fail;
	}
	if (v->offset % o->chunk_size ||
	    (v->len % o->chunk_size && v->offset + v->len != o->size)) {
		handler_fail(r, WIRE_EINVAL,
			     "[%" PRIu64 ", +%u) is not whole blocks of %u",
			     v->offset, v->len, o->chunk_size);
		goto fail;
	}
	epoch = vstore_epoch(o);
	if (v->epoch != epoch) {
		handler_fail(r, WIRE_ESTALE,
			     "placement epoch %" PRIu64 ", the object's is %"
			     PRIu64, v->epoch, epoch);
		goto fail;
	}
	return o;
fail:
	store_put(o);
	return NULL;
}

void handle_vwrite(struct server *srv, struct request *r)
{
	struct wire_vio v;
	struct store_obj *o = vio_target(srv, r, &v, true);
	int rc;

	if (!o)
		return;
	if (v.flags & WIRE_VIO_HINT) {
		rc = vstore_hint_add(o, v.offset, v.len, v.node);
		if (rc) {
			store_put(o);
			handler_fail(r, handler_storage_status(rc),
				     "recording a hint: %s", strerror(-rc));
			return;
		}
	}
	rc = vstore_write(o, v.offset, r->payload + sizeof(v), v.len,
			  v.version, &r->vpend);
	if (rc) {
		log_warn("object %s: versioned write: %s", o->name,
			 strerror(-rc));
		store_put(o);
		handler_fail(r, handler_storage_status(rc), "write: %s",
			     strerror(-rc));
		return;
	}
	/* Nothing applied (every block newer already): still answered once
	 * durable, so the writer learns no more than with a WRITE. */
	handler_submit_durable(srv, r, o, v.len);
}

void handle_discard(struct server *srv, struct request *r)
{
	struct wire_vio v;
	struct store_obj *o = vio_target(srv, r, &v, false);
	uint64_t dropped;
	int rc;

	if (!o)
		return;
	rc = vstore_discard(o, v.offset, v.len, v.version, &dropped);
	store_put(o);
	if (rc) {
		handler_fail(r, handler_storage_status(rc), "discard: %s",
			     strerror(-rc));
		return;
	}
	log_debug("object %" PRIu64 ": discarded %" PRIu64 " blocks", v.id,
		  dropped);
	request_done(r, WIRE_OK, NULL);
}

/* ---- VERSIONS */

void handle_versions(struct server *srv, struct request *r)
{
	struct wire_vq q;
	struct wire_vq_reply rep;
	struct store_obj *o;
	struct outbuf *ob;
	uint32_t got;
	int rc;

	if (r->hdr.len != sizeof(q)) {
		handler_fail(r, WIRE_EPROTO, "VERSIONS payload is %zu bytes",
			     sizeof(q));
		return;
	}
	wire_get_vq(r->payload, r->hdr.len, &q);
	if (q.flags || !q.count || q.count > WIRE_MAX_VERSIONS) {
		handler_fail(r, q.count > WIRE_MAX_VERSIONS ? WIRE_E2BIG
							    : WIRE_EINVAL,
			     "count %u not in 1..%u, or flags set", q.count,
			     WIRE_MAX_VERSIONS);
		return;
	}
	if (!(o = find(srv, r, q.id)))
		return;
	if (q.offset % o->chunk_size || q.offset > o->size) {
		store_put(o);
		handler_fail(r, WIRE_EINVAL, "offset %" PRIu64
			     " not a block boundary inside the object", q.offset);
		return;
	}
	ob = outbuf_new(sizeof(rep) + (size_t)q.count * 8);
	if (!ob) {
		store_put(o);
		handler_fail(r, WIRE_EIO, "out of memory");
		return;
	}
	rc = vstore_versions(o, q.offset / o->chunk_size, q.count,
			     (uint64_t *)(outbuf_payload(ob) + sizeof(rep)),
			     &got);
	rep = (struct wire_vq_reply){ .epoch = vstore_epoch(o), .count = got,
				      .block_size = o->chunk_size };
	store_put(o);
	if (rc) {
		free(ob);
		handler_fail(r, handler_storage_status(rc), "versions: %s",
			     strerror(-rc));
		return;
	}
	/* In place: the versions are encoded where vstore put them. */
	wire_put_u64s(outbuf_payload(ob) + sizeof(rep), (size_t)got * 8,
		      (uint64_t *)(outbuf_payload(ob) + sizeof(rep)), got);
	wire_put_vq_reply(outbuf_payload(ob), sizeof(rep), &rep);
	/* Fewer versions than asked (the object's end): a shorter frame. */
	ob->len = sizeof(struct wire_hdr) + sizeof(rep) + (size_t)got * 8;
	request_done(r, WIRE_OK, ob);
}

/* ---- NODE */

void handle_node(struct server *srv, struct request *r)
{
	struct wire_node n = { .objects = store_count(srv->store) };
	uint8_t raw[sizeof(n)];

	if (r->hdr.len) {
		handler_fail(r, WIRE_EPROTO, "NODE takes no payload");
		return;
	}
	memcpy(n.id, store_node_id(srv->store), WIRE_NODE_ID);
	wire_put_node(raw, sizeof(raw), &n);
	answer(r, raw, sizeof(raw), NULL, 0);
}

/* ---- PLACE / PLACEMENT */

static int parse_placement(const uint8_t *p, size_t len, struct placement *out)
{
	struct wire_placement w;

	if (wire_get_placement(p, len, &w) < 0)
		return -EPROTO;
	memset(out, 0, sizeof(*out));
	out->epoch = w.epoch;
	out->group_size = w.group_size;
	out->replicas = w.replicas;
	out->write_quorum = w.write_quorum;
	out->nmembers = w.nmembers;
	if (out->nmembers > WIRE_MAX_MEMBERS)
		return -E2BIG;
	if (len != sizeof(w) + (size_t)out->nmembers * WIRE_NODE_ID)
		return -EPROTO;
	memcpy(out->members, p + sizeof(w), (size_t)out->nmembers * WIRE_NODE_ID);
	if (!out->epoch || !out->nmembers || !out->replicas ||
	    out->replicas > out->nmembers || !out->write_quorum ||
	    out->write_quorum > out->replicas || !out->group_size)
		return -EINVAL;
	return 0;
}

void handle_place(struct server *srv, struct request *r)
{
	struct placement *p = malloc(sizeof(*p));
	struct wire_id id;
	struct store_obj *o;
	int rc = -EPROTO;

	if (!p) {
		handler_fail(r, WIRE_EIO, "out of memory");
		return;
	}
	if (r->hdr.len >= sizeof(id))
		rc = parse_placement(r->payload + sizeof(id),
				     r->hdr.len - sizeof(id), p);
	if (rc) {
		free(p);
		handler_fail(r, wire_errno_to_status(rc),
			     "bad placement (epoch, members, R, W, group)");
		return;
	}
	wire_get_id(r->payload, r->hdr.len, &id);
	if (!(o = find(srv, r, id.id))) {
		free(p);
		return;
	}
	if (p->group_size % o->chunk_size)
		rc = -EINVAL;
	else
		rc = vstore_place(o, p);
	store_put(o);
	free(p);
	if (rc)
		handler_fail(r, wire_errno_to_status(rc),
			     rc == -ESTALE ? "a newer placement is installed"
					   : "placement: %s",
			     strerror(-rc));
	else
		request_done(r, WIRE_OK, NULL);
}

void handle_placement(struct server *srv, struct request *r)
{
	struct placement *p = malloc(sizeof(*p));
	struct wire_placement w;
	uint8_t raw[sizeof(w)];
	struct wire_id id;
	struct store_obj *o;

	if (!p || r->hdr.len != sizeof(id)) {
		free(p);
		handler_fail(r, p ? WIRE_EPROTO : WIRE_EIO,
			     p ? "PLACEMENT payload is 8 bytes" : "out of memory");
		return;
	}
	wire_get_id(r->payload, r->hdr.len, &id);
	if (!(o = find(srv, r, id.id))) {
		free(p);
		return;
	}
	vstore_placement(o, p);
	store_put(o);
	w = (struct wire_placement){
		.epoch = p->epoch, .group_size = p->group_size,
		.replicas = p->replicas, .write_quorum = p->write_quorum,
		.nmembers = p->nmembers,
	};
	wire_put_placement(raw, sizeof(raw), &w);
	answer(r, raw, sizeof(raw), p->members, (size_t)p->nmembers * WIRE_NODE_ID);
	free(p);
}

/* ---- HINTS / HINTS_DROP */

void handle_hints(struct server *srv, struct request *r)
{
	struct wire_hint_reply rep = { 0 };
	uint8_t raw[sizeof(rep)];
	struct wire_hint_q q;
	uint8_t *h; /* encoded records */
	struct store_obj *o;
	uint32_t n;
	bool more;
	int rc;

	if (r->hdr.len != sizeof(q)) {
		handler_fail(r, WIRE_EPROTO, "HINTS payload is %zu bytes",
			     sizeof(q));
		return;
	}
	wire_get_hint_q(r->payload, r->hdr.len, &q);
	if (!(o = find(srv, r, q.id)))
		return;
	h = malloc(WIRE_MAX_HINTS * sizeof(struct wire_hint));
	rc = h ? vstore_hints(o, q.cursor, h, WIRE_MAX_HINTS, &n, &more)
	       : -ENOMEM;
	store_put(o);
	if (rc) {
		free(h);
		handler_fail(r, handler_storage_status(rc), "hints: %s",
			     strerror(-rc));
		return;
	}
	rep = (struct wire_hint_reply){ .next_cursor = q.cursor + n,
					.count = n, .more = more };
	wire_put_hint_reply(raw, sizeof(raw), &rep);
	answer(r, raw, sizeof(raw), h, (size_t)n * sizeof(struct wire_hint));
	free(h);
}

void handle_hints_drop(struct server *srv, struct request *r)
{
	struct wire_hint_drop d;
	struct store_obj *o;
	int rc;

	if (r->hdr.len != sizeof(d)) {
		handler_fail(r, WIRE_EPROTO, "HINTS_DROP payload is %zu bytes",
			     sizeof(d));
		return;
	}
	wire_get_hint_drop(r->payload, r->hdr.len, &d);
	if (!(o = find(srv, r, d.id)))
		return;
	rc = vstore_hints_drop(o, d.upto, d.node);
	store_put(o);
	if (rc)
		handler_fail(r, handler_storage_status(rc), "dropping hints: %s",
			     strerror(-rc));
	else
		request_done(r, WIRE_OK, NULL);
}
