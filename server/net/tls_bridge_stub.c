/* SPDX-License-Identifier: MIT */
/* ufo-server built without GnuTLS: --tls-cert is refused at startup. */
#include <errno.h>
#include <unistd.h>

#include "log.h"
#include "server.h"

void tls_bridge_accept(struct server *srv, int fd)
{
	close(fd); /* never called: tls_on stays false */
}

int tls_bridge_start(struct server *srv)
{
	if (!srv->cfg.tls_cert[0])
		return 0;
	log_err("--tls-cert: this ufo-server was built without GnuTLS");
	return -EOPNOTSUPP;
}
