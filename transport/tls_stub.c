/* SPDX-License-Identifier: MIT */
/* The TLS transport when GnuTLS is not built: tls:// answers -EOPNOTSUPP,
 * and so does the server's side (ufo-server refuses --tls-cert). */
#include <errno.h>
#include <stdio.h>

#include "transport.h"

static int stub_connect(const struct net_addr *a, int timeout_ms,
			struct ufo_conn **out)
{
	return -EOPNOTSUPP;
}

static int stub_listen(const struct net_addr *a,
		       const struct ufo_listen_opts *o, struct ufo_listener **out)
{
	return -EOPNOTSUPP;
}

const struct ufo_transport_ops ufo_tls_transport = {
	.name = "tls",
	.connect = stub_connect,
	.listen = stub_listen,
};

int tls_server_new(const char *cert, const char *key, struct tls_server **out,
		   char *err, size_t err_cap)
{
	snprintf(err, err_cap, "this build has no GnuTLS");
	return -EOPNOTSUPP;
}

void tls_server_free(struct tls_server *ts)
{
	(void)ts;
}
