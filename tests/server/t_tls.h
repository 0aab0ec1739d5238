/* SPDX-License-Identifier: MIT */
/*
 * TLS helpers for the ufo-server tests (after t_srv.h): certificates made
 * at test time with the openssl tool (no private key is committed), and a
 * skip when GnuTLS is not built or openssl is missing.
 */
#ifndef T_TLS_H
#define T_TLS_H

#include "t_srv.h"

struct t_certs {
	char ca[PATH_MAX], other_ca[PATH_MAX], cert[PATH_MAX], key[PATH_MAX];
};

static void t_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void t_sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd))
		fail_msg("failed: %s", cmd);
}

/* Exits 77 unless the transport has TLS and openssl can make certs. */
static inline void t_tls_require(void)
{
	struct net_addr a = { .host = "127.0.0.1", .port = 1 };
	struct ufo_conn *c;

	if (ufo_tls_transport.connect(&a, 1000, &c) == -EOPNOTSUPP) {
		fprintf(stderr, "built without GnuTLS: skipping\n");
		exit(T_EXIT_SKIP);
	}
	if (system("openssl version >/dev/null 2>&1")) {
		fprintf(stderr, "no openssl tool to make certificates: skipping\n");
		exit(T_EXIT_SKIP);
	}
}

/* In dir: a CA, a server certificate it signs for IP 127.0.0.1 only, and
 * an unrelated CA. */
static inline void t_make_certs(const char *dir, struct t_certs *tc)
{
	const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

	snprintf(tc->ca, sizeof(tc->ca), "%s/ca.pem", dir);
	snprintf(tc->other_ca, sizeof(tc->other_ca), "%s/other-ca.pem", dir);
	snprintf(tc->cert, sizeof(tc->cert), "%s/server.pem", dir);
	snprintf(tc->key, sizeof(tc->key), "%s/server.key", dir);
	t_sh("cd %s && exec >openssl.log 2>&1 && "
	     "openssl req -x509 %s -keyout ca.key -out ca.pem -days 2 "
	     "-subj /CN=ufo-test-ca && "
	     "openssl req -x509 %s -keyout other-ca.key -out other-ca.pem -days 2 "
	     "-subj /CN=ufo-other-ca && "
	     "openssl req %s -keyout server.key -out server.csr "
	     "-subj /CN=ufo-test-server && "
	     "printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n"
	     "extendedKeyUsage=serverAuth\\n' > ext.cnf && "
	     "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key "
	     "-CAcreateserial -out server.pem -days 2 -extfile ext.cnf && "
	     "chmod 600 server.key",
	     dir, ec, ec, ec);
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
