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

const struct ufo_transport_ops ufo_rdma_transport = {
	.name = "rdma",
	.connect = stub_connect,
	.send = stub_send,
	.recv = stub_recv,
	.read_remote = NULL,
	.write_remote = NULL,
	.shutdown = stub_void,
	.close = stub_void,
};

int urdma_listen(const struct net_addr *addr, struct urdma_listener **out)
{
	return -EOPNOTSUPP;
}

void urdma_listener_close(struct urdma_listener *l)
{
}

int urdma_listener_fd(const struct urdma_listener *l)
{
	return -1;
}

int urdma_listener_event(struct urdma_listener *l, enum urdma_event *kind,
			struct ufo_conn **conn)
{
	*kind = URDMA_EV_NONE;
	return -EOPNOTSUPP;
}
