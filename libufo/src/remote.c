/* SPDX-License-Identifier: MIT */
/*
 * The remote backend: chunks of a ufo-server object, fetched and stored
 * through a pipelined client.  Transient failures (connection lost,
 * refused, timed out, checksum mismatch, server busy) are retried with
 * doubling delays until the client's timeout has passed since the first
 * attempt; then the error is final (a fault gets SIGBUS).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "transport.h"

#define RETRY_FIRST_MS 5
#define RETRY_MAX_MS 500

struct remote {
	struct ufo_client *cl;
	uint64_t id;
	char name[WIRE_MAX_NAME + 1];
};

bool remote_transient(int err)
{
	switch (-err) {
	case ECONNRESET: case ECONNREFUSED: case ECONNABORTED:
	case ETIMEDOUT: case EPIPE: case EHOSTUNREACH: case ENETUNREACH:
	case ENETDOWN: case EBADMSG: case EBUSY: case ESHUTDOWN: case EIO:
	case EAGAIN: case EPROTO: case EHOSTDOWN: case ESTALE:
		return true;
	default:
		return false;
	}
}

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

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
			       .tv_nsec = (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

int remote_retry(struct ufo_obj *obj, const struct remote_io *io, bool write,
		 uint64_t off, void *buf, size_t len)
{
	uint64_t deadline = now_ns() + (uint64_t)io->timeout_ms * 1000000u;
	unsigned delay = RETRY_FIRST_MS;

	for (unsigned attempt = 1;; attempt++) {
		uint64_t t0 = now_ns();
		int err = io->fn(io->arg, write, off, buf, len);

		if (!write) {
			STAT_ADD(obj, populate_calls, 1);
			STAT_ADD(obj, populate_ns, now_ns() - t0);
		}
		if (!err)
			return 0;
		STAT_ADD(obj, populate_errors, write ? 0 : 1);
		log_warn(obj->ctx, "%s %s [%llu, +%zu) attempt %u: %s%s%s",
			 io->name, write ? "write" : "read",
			 (unsigned long long)off, len, attempt, strerror(-err),
			 ufo_client_last_error()[0] ? ": " : "",
			 ufo_client_last_error());
		if (!remote_transient(err) ||
		    now_ns() + delay * 1000000ull > deadline)
			return err;
		sleep_ms(delay);
		delay = delay * 2 < RETRY_MAX_MS ? delay * 2 : RETRY_MAX_MS;
	}
}

static int remote_io_fn(void *arg, bool write, uint64_t off, char *buf,
			size_t len)
{
	return remote_io(arg, write, off, buf, len);
}

static int remote_run(struct ufo_obj *obj, bool write, uint64_t off,
		      void *buf, size_t len)
{
	struct remote *r = obj->backend_data;
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
		STAT_ADD(obj, writeback_errors, 1);
	return err;
}

static void remote_close(struct ufo_obj *obj)
{
	struct remote *r = obj->backend_data;

	if (!r)
		return;
	ufo_client_close(r->cl);
	free(r);
}

static const char *remote_name(const struct ufo_obj *obj)
{
	return ((const struct remote *)obj->backend_data)->name;
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
		 : ufo_client_status(((struct remote *)obj->backend_data)->cl,
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

int ufo_remote_open(struct ufo_ctx *ctx, const char *url,
		    const struct ufo_remote_opts *opts, struct ufo_obj **out)
{
	struct ufo_remote_opts defaults;
	struct ufo_params p;
	struct net_addr addr;
	struct remote *r;
	int err;

	if (!ctx || !url || !out)
		return -EINVAL;
	if (!opts) {
		ufo_remote_opts_init(&defaults);
		opts = &defaults;
	}
	{
		char servers[4096], name[WIRE_MAX_NAME + 2];

		if (cluster_url(url, servers, sizeof(servers), name,
				sizeof(name)))
			return cluster_remote_open(ctx, servers, name, opts, out);
	}
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
		remote_close(&(struct ufo_obj){ .backend_data = r });
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
			 (unsigned long long)(*out)->id, r->name, cs.server,
			 cs.transport);
	}
	return err;
}

int ufo_refresh(struct ufo_obj *obj)
{
	return obj ? evict_clean(obj) : -EINVAL;
}

/* Several servers (a replicated object): their counters summed, latency
 * averaged, and "cluster (UP/N up)" as the server. */
static void status_sum(const struct ufo_obj *obj, unsigned n,
		       struct ufo_client_stats *out)
{
	unsigned up = 0, rows = 0;
	uint64_t lat = 0;

	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < n; i++) {
		struct ufo_client_stats s;

		if (obj->backend->server_status(obj, i, &s))
			continue;
		rows++;
		up += s.connected > 0;
		if (!out->transport[0] || s.connected)
			snprintf(out->transport, sizeof(out->transport), "%s",
				 s.transport);
		out->connections += s.connections;
		out->connected += s.connected;
		out->requests += s.requests;
		out->errors += s.errors;
		out->bytes_in += s.bytes_in;
		out->bytes_out += s.bytes_out;
		out->direct_reads += s.direct_reads;
		out->direct_writes += s.direct_writes;
		lat += s.latency_us;
	}
	out->latency_us = rows ? lat / rows : 0;
	snprintf(out->server, sizeof(out->server), "cluster (%u/%u up)", up,
		 rows);
}

int ufo_remote_status(const struct ufo_obj *obj, struct ufo_client_stats *out)
{
	unsigned n;

	if (!obj || !out || !obj->backend->servers)
		return -EINVAL;
	n = obj->backend->servers(obj);
	if (n == 1)
		return obj->backend->server_status(obj, 0, out);
	status_sum(obj, n, out);
	return 0;
}

const char *remote_object_name(const struct ufo_obj *obj)
{
	return obj->backend->remote_name ? obj->backend->remote_name(obj)
					 : NULL;
}
