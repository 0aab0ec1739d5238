/* SPDX-License-Identifier: MIT */
/*
 * ufo_remote_open: the one place that knows every kind of object stored
 * on servers.  A URL naming several servers (or a host name with several
 * addresses, or $UFO_SERVERS) opens a replicated object on the cluster;
 * any other opens an object on one server.  It sits above backend/ and
 * cluster/ so that neither needs the other.
 */
#include <errno.h>

#include "backend/backend.h"
#include "cluster/cluster.h"

int ufo_remote_open(struct ufo_ctx *ctx, const char *url,
		    const struct ufo_remote_opts *opts, struct ufo_obj **out)
{
	struct ufo_remote_opts defaults;
	char servers[4096], name[WIRE_MAX_NAME + 2];

	if (!ctx || !url || !out)
		return -EINVAL;
	if (!opts) {
		ufo_remote_opts_init(&defaults);
		opts = &defaults;
	}
	if (cluster_url(url, servers, sizeof(servers), name, sizeof(name)))
		return cluster_remote_open(ctx, servers, name, opts, out);
	return remote_open(ctx, url, opts, out);
}
