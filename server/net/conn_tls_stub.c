/* SPDX-License-Identifier: MIT */
/*
 * ufo-server built without GnuTLS: --tls-cert is refused at startup, so
 * srv->tls stays NULL and the TLS type is never used; it answers
 * -EOPNOTSUPP all the same.
 */
#include <errno.h>

#include "log.h"
#include "server.h"

static ssize_t tls_stub_recv(struct conn *c, void *buf, size_t len)
{
	return -EOPNOTSUPP;
}

static ssize_t tls_stub_sendv(struct conn *c, const struct iovec *iov,
			      int iovcnt)
{
	return -EOPNOTSUPP;
}

static int tls_stub_watch(struct conn *c, uint32_t want, bool add)
{
	return -EOPNOTSUPP;
}

const struct conn_type conn_tls = {
	.name = "tls",
	.recv = tls_stub_recv,
	.sendv = tls_stub_sendv,
	.watch = tls_stub_watch,
	.unwatch = conn_sock_unwatch,
	.shutdown = conn_sock_shutdown,
	.close = conn_sock_close,
};

void *conn_tls_new(struct server *srv, int fd)
{
	return NULL;
}

int conn_tls_setup(struct server *srv)
{
	if (!srv->cfg.tls_cert[0])
		return 0;
	log_err("--tls-cert: this ufo-server was built without GnuTLS");
	return -EOPNOTSUPP;
}

void conn_tls_cleanup(struct server *srv)
{
	(void)srv;
}
