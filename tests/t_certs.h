/* SPDX-License-Identifier: MIT */
/*
 * Test certificates, made at test time with the openssl tool (no private
 * key is committed): a CA, a server certificate it signs for IP 127.0.0.1
 * only, and an unrelated CA.  Shared by the server tests (server/t_tls.h)
 * and the remote and cluster programs over tls:// (remote/t_remote.h).
 */
#ifndef T_CERTS_H
#define T_CERTS_H

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

struct t_certs {
	char ca[PATH_MAX], other_ca[PATH_MAX], cert[PATH_MAX], key[PATH_MAX];
};

/* True when the openssl tool runs (tests skip without it). */
static inline bool t_certs_tool(void)
{
	return system("openssl version >/dev/null 2>&1") == 0;
}

/* Makes them in dir (openssl's output in dir/openssl.log).  0 or -1. */
static inline int t_certs_make(const char *dir, struct t_certs *tc)
{
	const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
	char cmd[8192];

	snprintf(tc->ca, sizeof(tc->ca), "%s/ca.pem", dir);
	snprintf(tc->other_ca, sizeof(tc->other_ca), "%s/other-ca.pem", dir);
	snprintf(tc->cert, sizeof(tc->cert), "%s/server.pem", dir);
	snprintf(tc->key, sizeof(tc->key), "%s/server.key", dir);
	snprintf(cmd, sizeof(cmd),
		 "cd %s && exec >openssl.log 2>&1 && "
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
	return system(cmd) ? -1 : 0;
}

#endif /* T_CERTS_H */
