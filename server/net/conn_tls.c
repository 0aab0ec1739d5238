/* SPDX-License-Identifier: MIT */
/*
 * TLS for the listening port (--tls-cert, --tls-key): the certificate and
 * key are loaded once, and --listen listens with TLS's ops (main.c): each
 * connection it accepts is a TLS connection (transport/tls.c), served by
 * the loop as a byte stream (conn_stream) with no thread of its own.  Its
 * handshake is advanced by the loop one step per readiness (conn_event).
 *
 * The handshake is bounded like the shared-secret one that follows inside
 * it: hs.state is not DONE until AUTH, so the loop's auth deadline
 * (--auth-timeout-ms, expire_handshakes) closes a client that stalls in
 * either, and --max-connections counts it from accept.
 */
#include <errno.h>

#include "log.h"
#include "server.h"

int conn_tls_setup(struct server *srv)
{
	const struct server_config *cfg = &srv->cfg;
	char why[256];
	int rc;

	if (!cfg->tls_cert[0])
		return 0;
	rc = tls_server_new(cfg->tls_cert, cfg->tls_key, &srv->tls, why,
			    sizeof(why));
	if (rc) {
		log_err("--tls-cert %s / --tls-key %s: %s", cfg->tls_cert,
			cfg->tls_key, why);
		return rc;
	}
	log_info("TLS on: connections to the listening port must use tls://");
	return 0;
}

void conn_tls_cleanup(struct server *srv)
{
	tls_server_free(srv->tls);
	srv->tls = NULL;
}
