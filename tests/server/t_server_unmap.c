/* SPDX-License-Identifier: MIT */
/*
 * ufo-server: UNMAP (protocol version 3) outside RDMA.  Over TCP there is
 * no registration to drop, so it answers EINVAL as MAP does; a malformed
 * payload is EPROTO with a message that says the size; a connection that
 * agreed on version 2 is told UNMAP needs version 3.  None of them costs
 * the connection.  UNMAP over RDMA is tests/rdma/t_rdma_maps.c.
 */
#include "t_srv.h"

static struct t_srv srv;
static struct ufo_conn *conn;

/* The status of an UNMAP with a payload of len bytes (a well-formed one
 * when len is its size), sent in a header of version; *msg gets the
 * error text. */
static uint32_t unmap_raw(struct ufo_conn *c, uint16_t version, size_t len,
			  char *msg, size_t msg_cap)
{
	uint8_t p[sizeof(struct wire_unmap) + 8] = { 0 };
	struct wire_unmap u = { .id = 1, .offset = 4096, .len = 4096,
				.rkey = 0x1234 };
	uint64_t id = t_next_req();
	struct t_reply r;
	uint32_t st;

	assert_int_equal(wire_put_unmap(p, sizeof(p), &u), sizeof(u));
	assert_int_equal(frame_send(c, version, WIRE_UNMAP, id, 0, p, len,
				    NULL, 0, T_SRV_WAIT_MS), 0);
	assert_int_equal(t_recv(c, &r), 0);
	assert_int_equal(r.h.op, WIRE_UNMAP | WIRE_RESPONSE);
	assert_true(r.h.req_id == id);
	snprintf(msg, msg_cap, "%s", r.payload);
	st = r.h.status;
	t_reply_free(&r);
	return st;
}

static void test_unmap_over_tcp_is_einval(void **state)
{
	char msg[WIRE_MAX_ERRMSG + 1];

	(void)state;
	assert_int_equal(unmap_raw(conn, WIRE_VERSION_MAX,
				   sizeof(struct wire_unmap), msg, sizeof(msg)),
			 WIRE_EINVAL);
	assert_non_null(strstr(msg, "not an RDMA connection"));
	t_ping_ok(conn);
}

static void test_malformed_unmap(void **state)
{
	static const size_t lens[] = { 0, 1, sizeof(struct wire_unmap) - 1,
				       sizeof(struct wire_unmap) + 1,
				       sizeof(struct wire_unmap) + 8 };
	char msg[WIRE_MAX_ERRMSG + 1];

	(void)state;
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		assert_int_equal(unmap_raw(conn, WIRE_VERSION_MAX, lens[i], msg,
					   sizeof(msg)),
				 WIRE_EPROTO);
		assert_string_equal(msg, "UNMAP payload is 24 bytes");
	}
	t_ping_ok(conn); /* still served */
}

/* Logs in by hand offering versions 1..2 only, as a client from before
 * UNMAP does. */
static struct ufo_conn *login_v2(void)
{
	struct wire_hello hello = { .min_version = 1, .max_version = 2 }, got;
	uint8_t raw[sizeof(hello)];
	struct ufo_conn *c = t_connect(&srv);
	struct wire_mac mac;
	struct t_reply r;

	wire_random(hello.nonce, sizeof(hello.nonce));
	wire_put_hello(raw, sizeof(raw), &hello);
	assert_int_equal(t_send_raw(c, t_hdr(0, WIRE_HELLO, sizeof(raw)), raw,
				    sizeof(raw), false), 0);
	assert_int_equal(t_recv(c, &r), 0);
	assert_int_equal(r.h.status, WIRE_OK);
	assert_int_equal(wire_get_hello(r.payload, r.h.len, &got), sizeof(got));
	assert_int_equal(got.max_version, 2);
	t_reply_free(&r);
	wire_auth_mac((const uint8_t *)T_SECRET, strlen(T_SECRET),
		      "ufo1 client", got.nonce, hello.nonce, mac.mac);
	assert_int_equal(t_send_raw(c, t_hdr(2, WIRE_AUTH, sizeof(mac)), &mac,
				    sizeof(mac), false), 0);
	assert_int_equal(t_recv(c, &r), 0);
	assert_int_equal(r.h.status, WIRE_OK);
	t_reply_free(&r);
	return c;
}

/* Version 3 is offered and agreed; a version-2 connection has no UNMAP. */
static void test_unmap_needs_version_3(void **state)
{
	char msg[WIRE_MAX_ERRMSG + 1];
	struct ufo_conn *c;
	uint16_t v = 0;

	(void)state;
	c = t_connect(&srv);
	assert_int_equal(client_handshake(c, (const uint8_t *)T_SECRET,
					  strlen(T_SECRET), T_SRV_WAIT_MS, &v),
			 0);
	assert_int_equal(v, 3);
	conn_close(c);

	c = login_v2();
	assert_int_equal(unmap_raw(c, 2, sizeof(struct wire_unmap), msg,
				   sizeof(msg)),
			 WIRE_EINVAL);
	assert_string_equal(msg, "UNMAP needs protocol version 3");
	conn_close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unmap_over_tcp_is_einval),
		cmocka_unit_test(test_malformed_unmap),
		cmocka_unit_test(test_unmap_needs_version_3),
	};
	int rc;

	t_srv_init(&srv);
	t_srv_start(&srv);
	conn = t_login(&srv);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	conn_close(conn);
	t_srv_stop(&srv, SIGTERM);
	t_srv_fini(&srv);
	return rc;
}
