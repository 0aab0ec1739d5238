/* SPDX-License-Identifier: MIT */
/*
 * The client's operations: one encoder per request (OPEN, STAT, DELETE,
 * CREATE, LIST, READ, WRITE, SYNC) over the request core of rpc.c, and the
 * client's counters.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/rpc.h"

void ufo_remote_opts_init(struct ufo_remote_opts *o)
{
	memset(o, 0, sizeof(*o));
}

static int name_payload(const char *name, struct wire_name *n, size_t *len)
{
	*len = name ? strlen(name) : 0;
	if (wire_check_name(name ? name : "", *len))
		return -EINVAL;
	memset(n, 0, sizeof(*n));
	n->name_len = htole16((uint16_t)*len);
	return 0;
}

static void info_from_wire(struct ufo_remote_info *out, const char *name,
			   size_t name_len, const struct wire_objinfo *w)
{
	memset(out, 0, sizeof(*out));
	if (name_len >= sizeof(out->name))
		name_len = sizeof(out->name) - 1;
	memcpy(out->name, name, name_len);
	out->id = le64toh(w->id);
	out->size = le64toh(w->size);
	out->chunk_size = le32toh(w->chunk_size);
	out->allocated = le64toh(w->allocated);
	out->mtime_ns = le64toh(w->mtime_ns);
	out->flags = le32toh(w->flags) & WIRE_OBJ_REPLICATED
			     ? UFO_REMOTE_REPLICATED : 0;
}

/* OPEN, STAT or DELETE of a name; info may be NULL for DELETE. */
static int name_call(struct ufo_client *cl, uint16_t op, const char *name,
		     struct ufo_remote_info *info)
{
	struct wire_objinfo w;
	struct wire_name n;
	size_t len;
	struct client_call k = { .op = op, .p1 = &n, .l1 = sizeof(n), .p2 = name,
			  .fixed = info ? &w : NULL,
			  .fixed_len = info ? sizeof(w) : 0 };
	int err;

	if (!cl || (err = name_payload(name, &n, &len)))
		return -EINVAL;
	k.l2 = len;
	err = client_call(cl, &k);
	if (!err && info)
		info_from_wire(info, name, len, &w);
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
	struct wire_create cr = { 0 };
	struct wire_objinfo w;
	size_t len = name ? strlen(name) : 0;
	struct client_call k = { .op = WIRE_CREATE, .p1 = &cr, .l1 = sizeof(cr),
			  .p2 = name, .l2 = len, .fixed = &w,
			  .fixed_len = sizeof(w) };
	int err;

	if (!cl || wire_check_name(name ? name : "", len))
		return -EINVAL;
	cr.size = htole64(size);
	cr.chunk_size = htole32(chunk_size ? chunk_size
					   : (uint32_t)UFO_DEFAULT_CHUNK_SIZE);
	cr.name_len = htole16((uint16_t)len);
	err = client_call(cl, &k);
	if (!err && out)
		info_from_wire(out, name, len, &w);
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
		uint16_t nl;
		int rc;

		if (len < sizeof(e))
			return -EPROTO;
		memcpy(&e, p, sizeof(e));
		nl = le16toh(e.name_len);
		if (len - sizeof(e) < nl || nl > WIRE_MAX_NAME)
			return -EPROTO;
		info_from_wire(&info, (const char *)p + sizeof(e), nl, &e.info);
		if ((rc = fn(user, &info)))
			return rc;
		p += sizeof(e) + nl;
		len -= sizeof(e) + nl;
	}
	return 0;
}

#define LIST_REPLY_MAX (WIRE_LIST_MAX * (sizeof(struct wire_list_entry) + WIRE_MAX_NAME))

int ufo_client_list(struct ufo_client *cl,
		    int (*fn)(void *user, const struct ufo_remote_info *info),
		    void *user)
{
	struct wire_list req = { .max = htole32(WIRE_LIST_MAX) };
	struct wire_list_reply rep;
	uint8_t *buf;
	int err;

	if (!cl || !fn)
		return -EINVAL;
	buf = malloc(LIST_REPLY_MAX);
	if (!buf)
		return -ENOMEM;
	do {
		struct client_call k = { .op = WIRE_LIST, .p1 = &req, .l1 = sizeof(req),
				  .fixed = &rep, .fixed_len = sizeof(rep),
				  .data = buf, .data_cap = LIST_REPLY_MAX };
		err = client_call(cl, &k);
		if (!err)
			err = list_walk(buf, k.data_len, le32toh(rep.count), fn,
					user);
		req.cursor = rep.next_cursor;
	} while (!err && req.cursor);
	free(buf);
	return err;
}

void client_io_prepare(struct client_call *k, struct wire_io *w, bool write,
		       uint64_t id, uint64_t off, void *buf, size_t len)
{
	*w = (struct wire_io){ .id = htole64(id), .offset = htole64(off),
			       .len = htole32((uint32_t)len) };
	*k = (struct client_call){ .op = write ? WIRE_WRITE : WIRE_READ,
				   .p1 = w, .l1 = sizeof(*w) };
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
	struct wire_io w;
	struct client_call k;
	int err;

	if (!cl || len > WIRE_MAX_IO || (len && !buf))
		return -EINVAL;
	client_io_prepare(&k, &w, op == WIRE_WRITE, id, off, buf, len);
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
	struct wire_id w = { .id = htole64(id) };
	struct client_call k = { .op = WIRE_SYNC, .p1 = &w, .l1 = sizeof(w) };

	return cl ? client_call(cl, &k) : -EINVAL;
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
