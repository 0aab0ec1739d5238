/* SPDX-License-Identifier: MIT */
/*
 * Requests after authentication, run on worker threads.  Each handler
 * checks its payload completely before touching the store, and answers
 * exactly once (request_done/request_fail, or via the committer).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"
#include "vstore.h"

/* request_fail, counting the error for the monitor. */
void handler_fail(struct request *r, uint32_t status, const char *fmt, ...)
{
	char msg[WIRE_MAX_ERRMSG + 1];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	server_count(&r->conn->srv->stats.errors, 1);
	request_fail(r, status, "%s", msg);
}

/* Storage errnos that have their own status; the rest are WIRE_EIO. */
uint32_t handler_storage_status(int rc)
{
	if (rc == -EFBIG) /* past the file system's largest file */
		return WIRE_E2BIG;
	return wire_errno_to_status(rc);
}

static void answer_info(struct request *r, struct store_obj *o)
{
	struct outbuf *ob = outbuf_new(sizeof(struct wire_objinfo));
	struct wire_objinfo info;
	int rc;

	if (!ob) {
		handler_fail(r, WIRE_EIO, "out of memory");
		return;
	}
	rc = store_info(o, &info);
	if (!rc)
		wire_put_objinfo(outbuf_payload(ob), sizeof(info), &info);
	if (rc) {
		free(ob);
		handler_fail(r, handler_storage_status(rc), "stat: %s", strerror(-rc));
		return;
	}
	request_done(r, WIRE_OK, ob);
}

static void parse_fail(struct request *r, int rc, const char *what)
{
	handler_fail(r, wire_errno_to_status(rc), "%s", what);
}

static void handle_create(struct server *srv, struct request *r)
{
	struct wire_create cr;
	struct store_obj *o;
	const char *name;
	int rc = wire_parse_create(r->payload, r->hdr.len, &cr, &name);

	if (rc == -EPROTO) {
		parse_fail(r, rc, "CREATE payload size does not match");
		return;
	}
	if (rc == -E2BIG) {
		parse_fail(r, rc, "object size over 1 PiB");
		return;
	}
	if (rc) {
		parse_fail(r, rc, cr.size ? "bad name, chunk size or flags"
					  : "object size 0");
		return;
	}
	rc = store_create(srv->store, name, cr.name_len, cr.size,
			  cr.chunk_size, &o);
	if (rc == -EEXIST) {
		handler_fail(r, WIRE_EEXIST, "object %.*s exists",
			     (int)cr.name_len, name);
		return;
	}
	if (rc) {
		handler_fail(r, handler_storage_status(rc), "create: %s", strerror(-rc));
		return;
	}
	log_info("created %s id %" PRIu64 " size %" PRIu64, o->name, o->id,
		 o->size);
	answer_info(r, o);
	store_put(o);
}

/* The name payload of OPEN, STAT and DELETE; false when r was answered
 * with the error. */
static bool request_name(struct request *r, const char **name, uint16_t *len)
{
	int rc = wire_parse_name(r->payload, r->hdr.len, name, len);

	if (rc)
		parse_fail(r, rc, rc == -EPROTO ? "name payload size"
						: "bad object name");
	return rc == 0;
}

/* OPEN and STAT: the same answer; OPEN is what clients say before I/O. */
static void handle_open(struct server *srv, struct request *r)
{
	struct store_obj *o;
	const char *name;
	uint16_t len;

	if (!request_name(r, &name, &len))
		return;
	if (store_find_name(srv->store, name, len, &o)) {
		handler_fail(r, WIRE_ENOENT, "no object %.*s", (int)len,
			     name);
		return;
	}
	answer_info(r, o);
	store_put(o);
}

static void handle_delete(struct server *srv, struct request *r)
{
	const char *name;
	uint16_t len;
	int rc;

	if (!request_name(r, &name, &len))
		return;
	rc = store_delete(srv->store, name, len);
	if (rc == -ENOENT) {
		handler_fail(r, WIRE_ENOENT, "no object %.*s", (int)len,
			     name);
		return;
	}
	if (rc) {
		handler_fail(r, handler_storage_status(rc), "delete: %s",
			     strerror(-rc));
		return;
	}
	log_info("deleted %.*s", (int)len, name);
	request_done(r, WIRE_OK, NULL);
}

/* Entries are (wire_list_entry, name) back to back after the header; p
 * has room for n of each at their largest. */
static size_t list_fill(uint8_t *p, struct store_obj **objs, uint32_t n)
{
	size_t off = 0;

	for (uint32_t i = 0; i < n; i++) {
		struct wire_list_entry e = { .name_len = objs[i]->name_len };

		if (store_info(objs[i], &e.info))
			memset(&e.info, 0, sizeof(e.info)); /* stat failed: sizes 0 */
		e.info.id = objs[i]->id;
		off += (size_t)wire_put_list_entry(p + off, sizeof(e), &e);
		memcpy(p + off, objs[i]->name, objs[i]->name_len);
		off += objs[i]->name_len;
	}
	return off;
}

static void answer_list(struct request *r, struct store_obj **objs,
			uint32_t n, uint64_t next)
{
	struct wire_list_reply h = { .next_cursor = next, .count = n };
	struct outbuf *ob = outbuf_new(
		sizeof(h) + n * (sizeof(struct wire_list_entry) + WIRE_MAX_NAME));

	if (!ob) {
		handler_fail(r, WIRE_EIO, "out of memory");
		return;
	}
	wire_put_list_reply(outbuf_payload(ob), sizeof(h), &h);
	ob->len = sizeof(struct wire_hdr) + sizeof(h) +
		  list_fill(outbuf_payload(ob) + sizeof(h), objs, n);
	request_done(r, WIRE_OK, ob);
}

static void handle_list(struct server *srv, struct request *r)
{
	struct store_obj *objs[WIRE_LIST_MAX];
	struct wire_list l;
	uint32_t n;
	uint64_t next;

	if (r->hdr.len != sizeof(l)) {
		handler_fail(r, WIRE_EPROTO, "LIST payload is %zu bytes",
			     sizeof(l));
		return;
	}
	wire_get_list(r->payload, r->hdr.len, &l);
	if (!l.max) {
		handler_fail(r, WIRE_EINVAL, "LIST max is 0");
		return;
	}
	if (l.max > WIRE_LIST_MAX) {
		handler_fail(r, WIRE_E2BIG, "LIST max over %d", WIRE_LIST_MAX);
		return;
	}
	store_list(srv->store, l.cursor, l.max, objs, &n, &next);
	answer_list(r, objs, n, next);
	for (uint32_t i = 0; i < n; i++)
		store_put(objs[i]);
}

/* WIRE_IO_HOLES is a READ's, from protocol version 2 on. */
static uint32_t io_flags_allowed(const struct request *r)
{
	return r->hdr.op == WIRE_READ && r->hdr.version >= 2 ? WIRE_IO_HOLES
							     : 0;
}

/* Parses a wire_io and finds its object; on failure answers r and returns
 * NULL.  Checks the range without overflow: off + len may wrap. */
static struct store_obj *io_target(struct server *srv, struct request *r,
				   struct wire_io *io, size_t payload_extra)
{
	struct store_obj *o;

	if (wire_get_io(r->payload, r->hdr.len, io) < 0) {
		handler_fail(r, WIRE_EPROTO, "I/O payload under %zu bytes",
			     sizeof(*io));
		return NULL;
	}
	if (r->hdr.len != sizeof(*io) + (payload_extra ? io->len : 0)) {
		handler_fail(r, WIRE_EPROTO, "payload %u bytes, expected %zu",
			     r->hdr.len,
			     sizeof(*io) + (payload_extra ? io->len : 0));
		return NULL;
	}
	if (io->flags & ~io_flags_allowed(r)) {
		handler_fail(r, WIRE_EINVAL, "I/O flags %#x not allowed here",
			     io->flags);
		return NULL;
	}
	if (io->len > WIRE_MAX_IO) {
		handler_fail(r, WIRE_E2BIG, "I/O of %u bytes, limit %u",
			     io->len, WIRE_MAX_IO);
		return NULL;
	}
	if (store_find_id(srv->store, io->id, &o)) {
		handler_fail(r, WIRE_ENOENT, "no object with id %" PRIu64,
			     io->id);
		return NULL;
	}
	if (io->offset > o->size || io->len > o->size - io->offset) {
		handler_fail(r, WIRE_ERANGE,
			     "[%" PRIu64 ", +%u) outside object of %" PRIu64
			     " bytes", io->offset, io->len, o->size);
		store_put(o);
		return NULL;
	}
	return o;
}

/* A READ that asked for holes: a wire_read_reply, then the data unless
 * the range holds none (never written or discarded: nothing is sent). */
static int read_holes(struct store_obj *o, const struct wire_io *io,
		      struct outbuf **obp, bool nowait)
{
	struct wire_read_reply rr = { 0 };
	bool hole = store_hole(o, io->offset, io->len);
	struct outbuf *ob = outbuf_new(sizeof(rr) + (hole ? 0 : io->len));
	int rc = 0;

	*obp = ob;
	if (!ob)
		return -ENOMEM;
	if (hole)
		rr.flags = WIRE_READ_HOLE;
	else
		rc = store_read(o, io->offset, outbuf_payload(ob) + sizeof(rr),
				io->len, nowait);
	wire_put_read_reply(outbuf_payload(ob), sizeof(rr), &rr);
	return rc;
}

/* Reads and answers r; nowait: only if the data is in the page cache,
 * else returns false having done nothing (the request stays the caller's). */
static bool read_answer(struct server *srv, struct request *r, bool nowait)
{
	struct wire_io io;
	struct store_obj *o;
	struct outbuf *ob;
	int rc;

	if (nowait) { /* peek: anything unusual goes to a worker */
		if (r->hdr.len != sizeof(io))
			return false; /* before the copy: the payload is shorter */
		wire_get_io(r->payload, r->hdr.len, &io);
		if (io.len > INLINE_READ_MAX)
			return false;
	}
	o = io_target(srv, r, &io, 0);
	if (!o)
		return true; /* answered with the error */
	if (io.flags & WIRE_IO_HOLES) {
		rc = read_holes(o, &io, &ob, nowait);
	} else {
		ob = outbuf_new(io.len);
		rc = ob ? store_read(o, io.offset, outbuf_payload(ob), io.len,
				     nowait)
			: -ENOMEM;
	}
	store_put(o);
	if (rc == -EAGAIN && nowait) {
		free(ob);
		return false;
	}
	if (rc) {
		free(ob);
		handler_fail(r, handler_storage_status(rc), "read: %s", strerror(-rc));
		return true;
	}
	server_count(&srv->stats.read_bytes, io.len);
	request_done(r, WIRE_OK, ob);
	return true;
}

static void handle_read(struct server *srv, struct request *r)
{
	read_answer(srv, r, false);
}

bool handle_read_inline(struct server *srv, struct request *r)
{
	if (r->hdr.op != WIRE_READ || !read_answer(srv, r, true))
		return false;
	server_count(&srv->stats.ops[WIRE_READ], 1);
	return true;
}

/* The data goes to the page cache here; the committer makes it durable
 * and answers. */
/* The data of r is in the page cache: the committer answers r once it is
 * durable (group commit).  Takes o's reference. */
void handler_submit_durable(struct server *srv, struct request *r,
			   struct store_obj *o, uint32_t len)
{
	server_count(&srv->stats.written_bytes, len);
	free(r->payload); /* the data is written; the answer is empty */
	r->payload = NULL;
	r->obj = o;
	commit_submit(srv, r);
}

/* A replicated object's blocks carry versions that only VWRITE keeps
 * (vstore.h): a plain WRITE would change data under an old version.
 * Takes o's reference when it refuses. */
static bool refuse_replicated(struct request *r, struct store_obj *o)
{
	uint64_t epoch = vstore_epoch(o);

	if (!epoch)
		return false;
	store_put(o);
	handler_fail(r, WIRE_EINVAL,
		     "object is replicated (placement epoch %" PRIu64
		     "): write it through a cluster client", epoch);
	return true;
}

static void handle_write(struct server *srv, struct request *r)
{
	struct wire_io io;
	struct store_obj *o = io_target(srv, r, &io, 1);
	int rc;

	if (!o || refuse_replicated(r, o))
		return;
	rc = store_write(o, io.offset, r->payload + sizeof(io), io.len);
	if (rc) {
		log_warn("object %s: write: %s", o->name, strerror(-rc));
		store_put(o);
		handler_fail(r, handler_storage_status(rc), "write: %s", strerror(-rc));
		return;
	}
	handler_submit_durable(srv, r, o, io.len);
}

/* Runs once every WRITE before it on the connection was answered (see
 * request_after_writes), so those are durable already; the fdatasync
 * covers writes to the object from other connections too. */
static void handle_sync(struct server *srv, struct request *r)
{
	struct wire_id id;

	if (r->hdr.len != sizeof(id)) {
		handler_fail(r, WIRE_EPROTO, "SYNC payload is 8 bytes");
		return;
	}
	wire_get_id(r->payload, r->hdr.len, &id);
	if (!id.id) {
		request_done(r, WIRE_OK, NULL);
		return;
	}
	if (store_find_id(srv->store, id.id, &r->obj)) {
		handler_fail(r, WIRE_ENOENT, "no object with id %" PRIu64, id.id);
		return;
	}
	commit_submit(srv, r);
}

/* MAP: registration by the connection that asked (RDMA's type). */
static void handle_map(struct server *srv, struct request *r)
{
	struct wire_io io;
	struct store_obj *o = io_target(srv, r, &io, 0);
	struct outbuf *ob;
	struct wire_map m;
	int rc;

	if (!o)
		return;
	rc = r->conn->type->map && io.len
		     ? r->conn->type->map(r->conn, o, io.offset, io.len, &m)
		     : -EINVAL;
	store_put(o);
	if (rc) {
		handler_fail(r, wire_errno_to_status(rc), "map: %s", strerror(-rc));
		return;
	}
	ob = outbuf_new(sizeof(m));
	if (!ob) {
		handler_fail(r, WIRE_EIO, "out of memory");
		return;
	}
	wire_put_map(outbuf_payload(ob), sizeof(m), &m);
	request_done(r, WIRE_OK, ob);
}

/* COMMIT: the client RDMA-wrote [off, off + len) into a range it MAPped
 * on this connection; make it durable like a WRITE.  RDMA writes into
 * pinned page-cache pages leave no dirty mark on them, so fdatasync alone
 * could skip them: the connection type (conn_rdma.c) first writes the
 * range through the page cache from the mapping itself (a copy onto itself
 * that marks it dirty), then the committer's group fdatasync answers. */
static void handle_commit(struct server *srv, struct request *r)
{
	struct wire_io io;
	struct store_obj *o = io_target(srv, r, &io, 0);
	int rc;

	if (!o || refuse_replicated(r, o))
		return;
	rc = r->conn->type->commit && io.len
		     ? r->conn->type->commit(r->conn, o, io.offset, io.len)
		     : -EINVAL;
	if (rc) {
		store_put(o);
		handler_fail(r, wire_errno_to_status(rc), "commit: %s", strerror(-rc));
		return;
	}
	handler_submit_durable(srv, r, o, io.len);
}

/* UNMAP: the connection's registration goes (conn_rdma.c frees it once no
 * COMMIT in flight copies from it).  No object lookup: a registration of
 * an object deleted since is still the connection's to drop. */
static void handle_unmap(struct server *srv, struct request *r)
{
	struct wire_unmap u;
	int rc;

	(void)srv;
	if (r->hdr.len != sizeof(u)) {
		handler_fail(r, WIRE_EPROTO, "UNMAP payload is %zu bytes",
			     sizeof(u));
		return;
	}
	if (r->hdr.version < 3) {
		handler_fail(r, WIRE_EINVAL, "UNMAP needs protocol version 3");
		return;
	}
	wire_get_unmap(r->payload, r->hdr.len, &u);
	rc = r->conn->type->unmap
		     ? r->conn->type->unmap(r->conn, u.id, u.offset, u.len,
					    u.rkey)
		     : -EINVAL;
	if (rc) {
		handler_fail(r, wire_errno_to_status(rc), "unmap: %s",
			     rc == -EINVAL ? "not an RDMA connection"
					   : strerror(-rc));
		return;
	}
	request_done(r, WIRE_OK, NULL);
}

typedef void handler_fn(struct server *srv, struct request *r);

/* The ops the loop hands to workers (HELLO, AUTH and PING it answers). */
static handler_fn *const handlers[WIRE_OP_MAX + 1] = {
	[WIRE_CREATE] = handle_create, [WIRE_OPEN] = handle_open,
	[WIRE_STAT] = handle_open,     [WIRE_LIST] = handle_list,
	[WIRE_DELETE] = handle_delete, [WIRE_READ] = handle_read,
	[WIRE_WRITE] = handle_write,   [WIRE_SYNC] = handle_sync,
	[WIRE_MAP] = handle_map,       [WIRE_COMMIT] = handle_commit,
	[WIRE_VWRITE] = handle_vwrite, [WIRE_VERSIONS] = handle_versions,
	[WIRE_DISCARD] = handle_discard, [WIRE_NODE] = handle_node,
	[WIRE_PLACE] = handle_place,   [WIRE_PLACEMENT] = handle_placement,
	[WIRE_HINTS] = handle_hints,   [WIRE_HINTS_DROP] = handle_hints_drop,
	[WIRE_UNMAP] = handle_unmap,
};

void handle_request(struct server *srv, struct request *r)
{
	uint16_t op = r->hdr.op;

	if (op < SERVER_STATS_OPS)
		server_count(&srv->stats.ops[op], 1);
	if (op <= WIRE_OP_MAX && handlers[op])
		handlers[op](srv, r);
	else
		handler_fail(r, WIRE_EINVAL, "op %u not served by workers", op);
}

const struct server_handlers server_handlers = {
	.run = handle_request,
	.run_inline = handle_read_inline,
};
