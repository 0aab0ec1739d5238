/* SPDX-License-Identifier: MIT */
/*
 * Optional TLS (docs/security.md): ufo-server with --tls-cert/--tls-key
 * and clients with tls:// URLs.  A round trip through libufo's client; the
 * shared-secret handshake still runs inside TLS; a client refuses a server
 * whose certificate does not chain to its CA or does not name the host;
 * plaintext against TLS fails quickly and cleanly both ways, and the
 * server goes on serving.  Certificates are made at test time with the
 * openssl tool (no private key is committed); without it, or without
 * GnuTLS in the build, the test skips.
 */
#include <ufo.h>

#include "t_tls.h"

#define QUICK_MS 5000 /* a refusal, not a timeout */

static struct t_srv tls_srv, plain_srv;
static struct t_certs certs;
static const char *ca = certs.ca, *other_ca = certs.other_ca;

/* A TLS connection, authenticated with the secret: 0 or the -errno. */
static int tls_login(const char *host, uint16_t port, const char *secret,
		     struct ufo_conn **out)
{
	return t_tls_login_to(host, port, secret, out);
}

static void test_tls_roundtrip(void **state)
{
	struct ufo_remote_opts ro;
	struct ufo_remote_info info;
	struct ufo_client *cl;
	struct ufo_conn *c;
	char url[64];
	size_t len = 1 << 20;
	uint8_t *out = malloc(len), *in = malloc(len);

	setenv("UFO_TLS_CA_FILE", ca, 1);
	ufo_remote_opts_init(&ro);
	ro.secret_file = tls_srv.secret_file;
	snprintf(url, sizeof(url), "tls://127.0.0.1:%u", tls_srv.port);
	assert_int_equal(ufo_client_connect(url, &ro, &cl), 0);
	assert_int_equal(ufo_client_create(cl, "over-tls", 4 << 20, 65536,
					   &info), 0);
	t_pattern(out, len, 21);
	assert_int_equal(ufo_client_write(cl, info.id, len, out, len), 0);
	assert_int_equal(ufo_client_read(cl, info.id, len, in, len), 0);
	assert_memory_equal(in, out, len);
	ufo_client_close(cl);

	/* The shared secret is still checked inside TLS. */
	assert_int_equal(tls_login("127.0.0.1", tls_srv.port,
				   "a wrong secret of some length", &c),
			 -EACCES);
	assert_int_equal(tls_login("127.0.0.1", tls_srv.port, T_SECRET, &c), 0);
	t_ping_ok(c);
	conn_close(c);
	free(out);
	free(in);
}

static void test_tls_untrusted_server(void **state)
{
	struct ufo_remote_opts ro;
	struct ufo_client *cl;
	struct ufo_conn *c = NULL;
	char url[64];

	/* A CA that did not sign the server's certificate. */
	setenv("UFO_TLS_CA_FILE", other_ca, 1);
	assert_int_equal(tls_login("127.0.0.1", tls_srv.port, T_SECRET, &c),
			 -EKEYREJECTED);
	ufo_remote_opts_init(&ro);
	ro.secret_file = tls_srv.secret_file;
	snprintf(url, sizeof(url), "tls://127.0.0.1:%u", tls_srv.port);
	assert_int_equal(ufo_client_connect(url, &ro, &cl), -EKEYREJECTED);

	/* The right CA, but a name the certificate does not carry. */
	setenv("UFO_TLS_CA_FILE", ca, 1);
	assert_int_equal(tls_login("localhost", tls_srv.port, T_SECRET, &c),
			 -EKEYREJECTED);

	/* A CA file that is not there: nothing to verify with. */
	setenv("UFO_TLS_CA_FILE", "/nonexistent/ca.pem", 1);
	assert_int_equal(tls_login("127.0.0.1", tls_srv.port, T_SECRET, &c),
			 -ENOENT);

	/* None of it disturbed the server. */
	setenv("UFO_TLS_CA_FILE", ca, 1);
	assert_int_equal(tls_login("127.0.0.1", tls_srv.port, T_SECRET, &c), 0);
	t_ping_ok(c);
	conn_close(c);
}

static void test_plaintext_mismatch(void **state)
{
	struct ufo_conn *c;
	int64_t t0 = t_now_ms();
	int rc;

	/* A plaintext client at the TLS server: refused, not left hanging. */
	c = t_connect(&tls_srv);
	rc = t_handshake(c, T_SECRET);
	conn_close(c);
	assert_true(rc < 0);
	assert_true(t_now_ms() - t0 < QUICK_MS);
	assert_true(t_log_count(&tls_srv, "TLS handshake failed") >= 1);

	/* A TLS client at a plaintext server. */
	setenv("UFO_TLS_CA_FILE", ca, 1);
	t0 = t_now_ms();
	rc = tls_login("127.0.0.1", plain_srv.port, T_SECRET, &c);
	assert_true(rc < 0);
	assert_true(t_now_ms() - t0 < QUICK_MS);

	/* Both servers serve on. */
	assert_int_equal(tls_login("127.0.0.1", tls_srv.port, T_SECRET, &c), 0);
	t_ping_ok(c);
	conn_close(c);
	c = t_login(&plain_srv);
	t_ping_ok(c);
	conn_close(c);
}

static void test_tls_flags_checked(void **state)
{
	char cmd[PATH_MAX * 4];
	int st;

	/* --tls-cert without --tls-key, and a key that does not load: exit 2 */
	snprintf(cmd, sizeof(cmd), "%s --listen 127.0.0.1:0 --data %s "
		 "--secret-file %s --tls-cert %s >/dev/null 2>&1",
		 t_server_bin(), plain_srv.data, plain_srv.secret_file, certs.cert);
	st = system(cmd);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 2);
	snprintf(cmd, sizeof(cmd), "%s --listen 127.0.0.1:0 --data %s/d2 "
		 "--secret-file %s --tls-cert %s --tls-key %s >/dev/null 2>&1",
		 t_server_bin(), plain_srv.dir, plain_srv.secret_file, certs.cert, ca);
	st = system(cmd);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 2);
}

static int setup(void **state)
{
	char *extra[] = { "--tls-cert", certs.cert, "--tls-key", certs.key,
			  NULL };

	t_tls_require();
	assert_int_equal(wire_crypto_init(), 0);
	t_srv_init(&tls_srv);
	t_make_certs(tls_srv.dir, &certs);
	t_srv_start_args(&tls_srv, extra);
	t_srv_init(&plain_srv);
	t_srv_start(&plain_srv);
	return 0;
}

static int teardown(void **state)
{
	assert_int_equal(t_srv_stop(&tls_srv, SIGTERM), 0);
	assert_int_equal(t_srv_stop(&plain_srv, SIGTERM), 0);
	t_srv_fini(&tls_srv);
	t_srv_fini(&plain_srv);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tls_roundtrip),
		cmocka_unit_test(test_tls_untrusted_server),
		cmocka_unit_test(test_plaintext_mismatch),
		cmocka_unit_test(test_tls_flags_checked),
	};

	t_server_bin();
	return cmocka_run_group_tests(tests, setup, teardown);
}
