/* SPDX-License-Identifier: MIT */
/* ufo-server: the handshake, authentication and admission. */
#include "t_srv.h"

static struct t_srv srv;

static int setup(void **state)
{
	t_srv_init(&srv);
	t_srv_start(&srv);
	return 0;
}

static int teardown(void **state)
{
	t_srv_fini(&srv);
	return 0;
}

static void test_right_secret(void **state)
{
	struct ufo_conn *c = t_login(&srv);

	t_ping_ok(c);
	conn_close(c);
}

static void test_wrong_secret(void **state)
{
	struct ufo_conn *c = t_connect(&srv);

	assert_int_equal(t_handshake(c, "not the secret, but long enough"),
			 -EACCES);
	assert_true(t_closed(c));
	conn_close(c);
	assert_true(t_log_count(&srv, "authentication failed") >= 1);
}

/* A request instead of HELLO, then instead of AUTH: ENOTAUTH, closed. */
static void test_ops_before_auth(void **state)
{
	struct wire_hello hello = { .min_version = htole16(1),
				    .max_version = htole16(1) };
	struct ufo_conn *c = t_connect(&srv);
	struct t_reply r;

	assert_int_equal(t_send_raw(c, t_hdr(0, WIRE_PING, 0), NULL, 0, false), 0);
	assert_int_equal(t_recv(c, &r), 0);
	assert_int_equal(r.h.status, WIRE_ENOTAUTH);
	assert_true(r.h.len > 0 && r.h.len <= WIRE_MAX_ERRMSG);
	t_reply_free(&r);
	assert_true(t_closed(c));
	conn_close(c);

	c = t_connect(&srv);
	assert_int_equal(t_send_raw(c, t_hdr(0, WIRE_HELLO, sizeof(hello)),
				    &hello, sizeof(hello), false), 0);
	assert_int_equal(t_recv(c, &r), 0);
	assert_int_equal(r.h.status, WIRE_OK);
	t_reply_free(&r);
	assert_int_equal(t_send_raw(c, t_hdr(1, WIRE_STAT, 0), NULL, 0, false), 0);
	assert_int_equal(t_recv(c, &r), 0);
	assert_int_equal(r.h.status, WIRE_ENOTAUTH);
	t_reply_free(&r);
	assert_true(t_closed(c));
	conn_close(c);
}

/* want: the status; agreed: the version picked when it is OK. */
static void hello_versions(uint16_t lo, uint16_t hi, uint32_t want,
			   uint16_t agreed)
{
	struct wire_hello hello = { .min_version = htole16(lo),
				    .max_version = htole16(hi) };
	struct ufo_conn *c = t_connect(&srv);
	struct t_reply r;

	assert_int_equal(t_send_raw(c, t_hdr(0, WIRE_HELLO, sizeof(hello)),
				    &hello, sizeof(hello), false), 0);
	assert_int_equal(t_recv(c, &r), 0);
	assert_int_equal(r.h.op, WIRE_HELLO | WIRE_RESPONSE);
	assert_int_equal(r.h.status, want);
	if (!want) { /* the highest common version, and a nonce */
		struct wire_hello got;
		assert_int_equal(r.h.len, sizeof(got));
		memcpy(&got, r.payload, sizeof(got));
		assert_int_equal(le16toh(got.min_version), agreed);
		assert_int_equal(le16toh(got.max_version), agreed);
	}
	t_reply_free(&r);
	if (want)
		assert_true(t_closed(c));
	conn_close(c);
}

static void test_version_negotiation(void **state)
{
	/* client newer: the server's highest */
	hello_versions(1, 7, WIRE_OK, WIRE_VERSION_MAX);
	hello_versions(1, 1, WIRE_OK, 1);      /* a version-1 client */
	hello_versions(1, 2, WIRE_OK, 2);      /* a version-2 client: no UNMAP */
	hello_versions(WIRE_VERSION_MAX + 1, WIRE_VERSION_MAX + 2,
		       WIRE_EVERSION, 0);      /* no overlap */
	hello_versions(0, 0, WIRE_EVERSION, 0);
	hello_versions(3, 2, WIRE_EVERSION, 0); /* empty range */
}

/* Over --max-connections: EBUSY and closed; a slot freed is reusable. */
static void test_max_connections(void **state)
{
	char *extra[] = { "--max-connections", "2", NULL };
	struct t_srv small;
	struct ufo_conn *a, *b, *c;
	struct t_reply r;

	t_srv_init(&small);
	t_srv_start_args(&small, extra);
	a = t_login(&small);
	b = t_login(&small);
	c = t_connect(&small);
	assert_int_equal(t_recv(c, &r), 0);
	assert_int_equal(r.h.status, WIRE_EBUSY);
	t_reply_free(&r);
	assert_true(t_closed(c));
	conn_close(c);
	t_ping_ok(a);
	conn_close(b);
	/* The server notices b's close asynchronously: retry, bounded. */
	for (int i = 0; i < 200; i++) {
		uint16_t v;
		c = t_connect(&small);
		if (!client_handshake(c, (const uint8_t *)T_SECRET,
				      strlen(T_SECRET), T_SRV_WAIT_MS, &v))
			break;
		conn_close(c);
		c = NULL;
		t_sleep_ms(50);
	}
	assert_non_null(c);
	t_ping_ok(c);
	conn_close(c);
	conn_close(a);
	t_srv_fini(&small);
}

/* No secret file, or a secret too short: refuse to start (exit 2). */
static void test_refuses_without_secret(void **state)
{
	char cmd[PATH_MAX * 3];
	struct t_srv s;
	int st;

	t_srv_init(&s);
	snprintf(cmd, sizeof(cmd), "%s --listen 127.0.0.1:0 --data %s "
		 "2>/dev/null >/dev/null", t_server_bin(), s.data);
	st = system(cmd);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 2);
	t_write_file(s.secret_file, "short\n", 0600);
	snprintf(cmd, sizeof(cmd), "%s --listen 127.0.0.1:0 --data %s "
		 "--secret-file %s 2>/dev/null >/dev/null", t_server_bin(),
		 s.data, s.secret_file);
	st = system(cmd);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 2);
	t_srv_fini(&s);
}

/* A secret readable by others works, with a warning in the log. */
static void test_loose_secret_warns(void **state)
{
	struct t_srv s;
	struct ufo_conn *c;

	t_srv_init(&s);
	t_write_file(s.secret_file, T_SECRET "\n", 0644);
	t_srv_start(&s);
	c = t_login(&s);
	conn_close(c);
	assert_int_equal(t_srv_stop(&s, SIGTERM), 0);
	assert_int_equal(t_log_count(&s, "readable by group or others"), 1);
	t_srv_fini(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_right_secret),
		cmocka_unit_test(test_wrong_secret),
		cmocka_unit_test(test_ops_before_auth),
		cmocka_unit_test(test_version_negotiation),
		cmocka_unit_test(test_max_connections),
		cmocka_unit_test(test_refuses_without_secret),
		cmocka_unit_test(test_loose_secret_warns),
	};

	t_server_bin();
	return cmocka_run_group_tests(tests, setup, teardown);
}
