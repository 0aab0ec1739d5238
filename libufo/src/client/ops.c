/* SPDX-License-Identifier: MIT */
/*
 * The client's operations: one encoder per request (OPEN, STAT, DELETE,
 * CREATE, LIST, READ, WRITE, SYNC) over the request core of rpc.c, and the
 * client's counters.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/rpc.h"

void ufo_remote_opts_init(struct ufo_remote_opts *o)
{
	memset(o, 0, sizeof(*o));
}

/* The wire_name before a name (sent after it, as it is). */
static int name_payload(const char *name, uint8_t *raw, size_t cap,
			size_t *len)
{
	*len = name ? strlen(name) : 0;
	if (wire_check_name(name ? name : "", *len))
		return -EINVAL;
	return wire_put_name(raw, cap,
			     &(struct wire_name){ .name_len = (uint16_t)*len });
}

static void info_fill(struct ufo_remote_info *out, const char *name,
		      size_t name_len, const struct wire_objinfo *w)
{
	memset(out, 0, sizeof(*out));
	if (name_len >= sizeof(out->name))
		name_len = sizeof(out->name) - 1;
	memcpy(out->name, name, name_len);
	out->id = w->id;
	out->size = w->size;
	out->chunk_size = w->chunk_size;
	out->allocated = w->allocated;
	out->mtime_ns = w->mtime_ns;
	out->flags = w->flags & WIRE_OBJ_REPLICATED ? UFO_REMOTE_REPLICATED : 0;
}

/* Decodes an objinfo answer (len bytes at raw) for name into out. */
static int info_from_wire(struct ufo_remote_info *out, const char *name,
			  size_t name_len, const void *raw, size_t len)
{
	struct wire_objinfo w;
	int rc = wire_get_objinfo(raw, len, &w);

	if (rc < 0)
		return rc;
	info_fill(out, name, name_len, &w);
	return 0;
}

/* OPEN, STAT or DELETE of a name; info may be NULL for DELETE. */
static int name_call(struct ufo_client *cl, uint16_t op, const char *name,
		     struct ufo_remote_info *info)
{
	uint8_t w[sizeof(struct wire_objinfo)];
	uint8_t n[sizeof(struct wire_name)];
	size_t len;
	struct client_call k = { .op = op, .p1 = n, .l1 = sizeof(n), .p2 = name,
			  .fixed = info ? w : NULL,
			  .fixed_len = info ? sizeof(w) : 0 };
	int err;

	if (!cl || name_payload(name, n, sizeof(n), &len) < 0)
		return -EINVAL;
	k.l2 = len;
	err = client_call(cl, &k);
	if (!err && info)
		err = info_from_wire(info, name, len, w, sizeof(w));
	return err;
}

int client_open(struct ufo_client *cl, const char *name,
		struct ufo_remote_info *out)
{
	return name_call(cl, WIRE_OPEN, name, out);
}

int ufo_client_stat(struct ufo_client *cl, const char *name,
		    struct ufo_remote_info *out)
{
	return out ? name_call(cl, WIRE_STAT, name, out) : -EINVAL;
}

int ufo_client_delete(struct ufo_client *cl, const char *name)
{
	return name_call(cl, WIRE_DELETE, name, NULL);
}

int ufo_client_create(struct ufo_client *cl, const char *name, uint64_t size,
		      uint32_t chunk_size, struct ufo_remote_info *out)
{
	uint8_t cr[sizeof(struct wire_create)];
	uint8_t w[sizeof(struct wire_objinfo)];
	size_t len = name ? strlen(name) : 0;
	struct client_call k = { .op = WIRE_CREATE, .p1 = cr, .l1 = sizeof(cr),
			  .p2 = name, .l2 = len, .fixed = w,
			  .fixed_len = sizeof(w) };
	int err;

	if (!cl || wire_check_name(name ? name : "", len))
		return -EINVAL;
	wire_put_create(cr, sizeof(cr), &(struct wire_create){
		.size = size, .name_len = (uint16_t)len,
		.chunk_size = chunk_size ? chunk_size
					 : (uint32_t)UFO_DEFAULT_CHUNK_SIZE });
	err = client_call(cl, &k);
	if (!err && out)
		err = info_from_wire(out, name, len, w, sizeof(w));
	return err;
}

/* Walks one LIST reply; returns the callback's first non-zero result, or
 * -EPROTO when an entry overruns the reply. */
static int list_walk(const uint8_t *p, size_t len, uint32_t count,
		     int (*fn)(void *, const struct ufo_remote_info *),
		     void *user)
{
	for (uint32_t i = 0; i < count; i++) {
		struct wire_list_entry e;
		struct ufo_remote_info info;
		int off = wire_get_list_entry(p, len, &e);
		int rc;

		if (off < 0 || len - (size_t)off < e.name_len ||
		    e.name_len > WIRE_MAX_NAME)
			return -EPROTO;
		info_fill(&info, (const char *)p + off, e.name_len, &e.info);
		if ((rc = fn(user, &info)))
			return rc;
		p += (size_t)off + e.name_len;
		len -= (size_t)off + e.name_len;
	}
	return 0;
}

#define LIST_REPLY_MAX (WIRE_LIST_MAX * (sizeof(struct wire_list_entry) + WIRE_MAX_NAME))

int ufo_client_list(struct ufo_client *cl,
		    int (*fn)(void *user, const struct ufo_remote_info *info),
		    void *user)
{
	struct wire_list req = { .max = WIRE_LIST_MAX };
	struct wire_list_reply rep = { 0 };
	uint8_t req_raw[sizeof(req)], rep_raw[sizeof(rep)];
	uint8_t *buf;
	int err;

	if (!cl || !fn)
		return -EINVAL;
	buf = malloc(LIST_REPLY_MAX);
	if (!buf)
		return -ENOMEM;
	do {
		struct client_call k = { .op = WIRE_LIST, .p1 = req_raw,
				  .l1 = sizeof(req_raw), .fixed = rep_raw,
				  .fixed_len = sizeof(rep_raw),
				  .data = buf, .data_cap = LIST_REPLY_MAX };
		wire_put_list(req_raw, sizeof(req_raw), &req);
		err = client_call(cl, &k);
		if (!err)
			err = wire_get_list_reply(rep_raw, sizeof(rep_raw), &rep);
		if (err >= 0)
			err = list_walk(buf, k.data_len, rep.count, fn, user);
		req.cursor = rep.next_cursor;
	} while (!err && req.cursor);
	free(buf);
	return err;
}

void client_io_prepare(struct client_call *k, uint8_t *w, bool write,
		       uint64_t id, uint64_t off, void *buf, size_t len,
		       uint32_t flags)
{
	struct wire_io io = { .id = id, .offset = off, .len = (uint32_t)len,
			      .flags = flags };

	wire_put_io(w, sizeof(struct wire_io), &io);
	*k = (struct client_call){ .op = write ? WIRE_WRITE : WIRE_READ,
				   .p1 = w, .l1 = sizeof(struct wire_io) };
	if (write) {
		k->p2 = buf;
		k->l2 = len;
	} else {
		k->data = buf;
		k->data_cap = len;
	}
}

static int io_call(struct ufo_client *cl, uint16_t op, uint64_t id,
		   uint64_t off, void *buf, size_t len)
{
	uint8_t w[sizeof(struct wire_io)];
	struct client_call k;
	int err;

	if (!cl || len > WIRE_MAX_IO || (len && !buf))
		return -EINVAL;
	client_io_prepare(&k, w, op == WIRE_WRITE, id, off, buf, len, 0);
	err = client_call(cl, &k);
	if (!err && op == WIRE_READ && k.data_len != len)
		err = -EPROTO;
	return err;
}

int ufo_client_read(struct ufo_client *cl, uint64_t id, uint64_t offset,
		    void *buf, size_t len)
{
	return io_call(cl, WIRE_READ, id, offset, buf, len);
}

int ufo_client_write(struct ufo_client *cl, uint64_t id, uint64_t offset,
		     const void *buf, size_t len)
{
	return io_call(cl, WIRE_WRITE, id, offset, (void *)buf, len);
}

int ufo_client_sync(struct ufo_client *cl, uint64_t id)
{
	uint8_t w[sizeof(struct wire_id)];
	struct client_call k = { .op = WIRE_SYNC, .p1 = w, .l1 = sizeof(w) };

	if (!cl)
		return -EINVAL;
	wire_put_id(w, sizeof(w), &(struct wire_id){ .id = id });
	return client_call(cl, &k);
}

int client_timeout_ms(const struct ufo_client *cl)
{
	return cl->timeout_ms;
}

bool client_one_sided(const struct ufo_client *cl)
{
	return cl->tops->read_remote != NULL;
}

unsigned client_version(const struct ufo_client *cl)
{
	/* Every connection talks to the same server: the first's is it.
	 * Set under its lock at each (re)connect. */
	struct rconn *rc = (struct rconn *)&cl->conns[0];
	unsigned v;

	pthread_mutex_lock(&rc->lock);
	v = rc->version;
	pthread_mutex_unlock(&rc->lock);
	return v;
}

int ufo_client_status(struct ufo_client *cl, struct ufo_client_stats *out)
{
	if (!cl || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	snprintf(out->server, sizeof(out->server),
		 strchr(cl->addr.host, ':') ? "[%s]:%u" : "%s:%u",
		 cl->addr.host, cl->addr.port);
	snprintf(out->transport, sizeof(out->transport), "%s", cl->tops->name);
	out->connections = cl->nconns;
	for (unsigned i = 0; i < cl->nconns; i++) {
		struct rconn *rc = &cl->conns[i];
		pthread_mutex_lock(&rc->lock);
		out->connected += rc->conn != NULL;
		pthread_mutex_unlock(&rc->lock);
	}
	out->requests = atomic_load(&cl->requests);
	out->errors = atomic_load(&cl->errors);
	out->bytes_in = atomic_load(&cl->bytes_in);
	out->bytes_out = atomic_load(&cl->bytes_out);
	out->latency_us = (uint64_t)atomic_load(&cl->latency_ewma_ns) / 1000;
	out->direct_reads = atomic_load(&cl->direct_reads);
	out->direct_writes = atomic_load(&cl->direct_writes);
	return 0;
}
