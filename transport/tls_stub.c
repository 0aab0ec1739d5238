/* SPDX-License-Identifier: MIT */
/* The TLS transport when GnuTLS is not built: tls:// answers -EOPNOTSUPP. */
#include <errno.h>

#include "transport.h"

static int stub_connect(const struct net_addr *a, int timeout_ms,
			struct ufo_conn **out)
{
	return -EOPNOTSUPP;
}

const struct ufo_transport_ops ufo_tls_transport = {
	.name = "tls",
	.connect = stub_connect,
};
