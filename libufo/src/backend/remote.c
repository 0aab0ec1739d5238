/* SPDX-License-Identifier: MIT */
/*
 * The remote backend: chunks of an object on one ufo-server, fetched and
 * stored through a pipelined client (client/), retried by retry.c.
 */
#include <errno.h>
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

/* One pass over [off, off + len) in pieces the protocol allows. */
static int remote_io(struct remote *r, bool write, uint64_t off, char *buf,
		     size_t len)
{
	while (len) {
		size_t n = len < WIRE_MAX_IO ? len : WIRE_MAX_IO;
		int err = write ? client_write_direct(r->cl, r->id, off, buf, n)
				: client_read_direct(r->cl, r->id, off, buf, n);

		/* Over RDMA a fetch (writeback) is a one-sided READ (WRITE +
		 * COMMIT) of a range the server mapped; TCP, or a range it
		 * would not map, goes two-sided. */
		if (err == -EOPNOTSUPP)
			err = write ? ufo_client_write(r->cl, r->id, off, buf, n)
				    : ufo_client_read(r->cl, r->id, off, buf, n);
		if (err)
			return err;
		off += n;
		buf += n;
		len -= n;
	}
	return 0;
}

static int remote_io_fn(void *arg, bool write, uint64_t off, char *buf,
			size_t len)
{
	return remote_io(arg, write, off, buf, len);
}

static int remote_run(struct ufo_obj *obj, bool write, uint64_t off,
		      void *buf, size_t len)
{
	struct remote *r = obj_backend_data(obj);
	struct remote_io io = { .name = r->name, .fn = remote_io_fn, .arg = r,
				.timeout_ms = client_timeout_ms(r->cl) };

	return remote_retry(obj, &io, write, off, buf, len);
}

static int remote_fetch(struct ufo_obj *obj, uint64_t start, uint64_t end,
			void *dst)
{
	return remote_run(obj, false, start, dst, (size_t)(end - start));
}

static int remote_store(struct ufo_obj *obj, uint64_t start, uint64_t end,
			const void *src)
{
	int err = remote_run(obj, true, start, (void *)src,
			       (size_t)(end - start));

	if (err)
		obj_count_store_error(obj);
	return err;
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
	.fetch = remote_fetch,
	.store = remote_store,
	.close = remote_close,
	.parallel = true,
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
	p->flags = o->flags & UFO_READ_ONLY;
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
