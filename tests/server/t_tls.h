/* SPDX-License-Identifier: MIT */
/*
 * TLS helpers for the ufo-server tests (after t_srv.h): certificates made
 * at test time with the openssl tool (no private key is committed), and a
 * skip when GnuTLS is not built or openssl is missing.
 */
#ifndef T_TLS_H
#define T_TLS_H

#include "t_srv.h"
#include "../t_certs.h"

/* Exits 77 unless the transport has TLS and openssl can make certs. */
static inline void t_tls_require(void)
{
	struct net_addr a = { .host = "127.0.0.1", .port = 1 };
	struct ufo_conn *c;

	if (ufo_tls_transport.connect(&a, 1000, &c) == -EOPNOTSUPP) {
		fprintf(stderr, "built without GnuTLS: skipping\n");
		exit(T_EXIT_SKIP);
	}
	if (!t_certs_tool()) {
		fprintf(stderr, "no openssl tool to make certificates: skipping\n");
		exit(T_EXIT_SKIP);
	}
}

/* t_certs_make, failing the test when openssl fails. */
static inline void t_make_certs(const char *dir, struct t_certs *tc)
{
	if (t_certs_make(dir, tc))
		fail_msg("openssl failed making certificates: see %s/openssl.log",
			 dir);
}

/* A TLS connection to 127.0.0.1:port (trusting $UFO_TLS_CA_FILE),
 * authenticated with secret: 0 or the -errno. */
static inline int t_tls_login_to(const char *host, uint16_t port,
				 const char *secret, struct ufo_conn **out)
{
	struct net_addr a = { .port = port };
	int rc;

	snprintf(a.host, sizeof(a.host), "%s", host);
	rc = ufo_tls_transport.connect(&a, T_SRV_WAIT_MS, out);
	if (!rc && (rc = t_handshake(*out, secret))) {
		conn_close(*out);
		*out = NULL;
	}
	return rc;
}

#endif /* T_TLS_H */
