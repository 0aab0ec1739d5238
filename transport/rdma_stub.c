/* SPDX-License-Identifier: MIT */
/* The RDMA transport when rdma-core is not built: every entry answers
 * -EOPNOTSUPP, so ufo:// falls back to TCP through the same code. */
#include <errno.h>

#include "rdma.h"

bool urdma_available(void)
{
	return false;
}

static int stub_connect(const struct net_addr *a, int timeout_ms,
			struct ufo_conn **out)
{
	return -EOPNOTSUPP;
}

static int stub_send(struct ufo_conn *c, struct iovec *iov, int n, int t)
{
	return -EOPNOTSUPP;
}

static int stub_recv(struct ufo_conn *c, void *buf, size_t len, int t)
{
	return -EOPNOTSUPP;
}

static void stub_void(struct ufo_conn *c)
{
}

static int stub_listen(const struct net_addr *a,
		       const struct ufo_listen_opts *o, struct ufo_listener **out)
{
	return -EOPNOTSUPP;
}

const struct ufo_transport_ops ufo_rdma_transport = {
	.name = "rdma",
	.connect = stub_connect,
	.listen = stub_listen,
	.send = stub_send,
	.recv = stub_recv,
	.read_remote = NULL,
	.write_remote = NULL,
	.shutdown = stub_void,
	.close = stub_void,
};
