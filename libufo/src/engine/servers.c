/* SPDX-License-Identifier: MIT */
/*
 * What the engine knows of objects stored on servers, all of it through
 * the backend's ops (remote_name, servers, server_status): the name on the
 * server and the client counters, for ufo_remote_status and the monitor.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "engine.h"


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
