/* SPDX-License-Identifier: MIT */
/*
 * Attack table (docs/security.md): authentication.  A recorded AUTH does
 * not open a second connection (the server's nonce differs each time);
 * no operation runs before AUTH succeeds, and none of them changes the
 * store; a secret given as a flag value is refused at startup.
 */
#include "t_srv.h"

#define OBJ "sec-auth-obj"

static struct t_srv srv;
static uint64_t obj_id;
static uint8_t obj_data[4096];

/* A frame exactly as it goes on the wire, so it can be replayed. */
struct recorded {
	uint8_t bytes[sizeof(struct wire_hdr) + 64];
	size_t len;
};

static void record(struct recorded *r, uint16_t version, uint16_t op,
		   uint64_t req_id, const void *p, uint32_t len)
{
	struct iovec iov = { (void *)p, len };
	struct wire_hdr h;

	assert_true(sizeof(h) + len <= sizeof(r->bytes));
	assert_int_equal(wire_frame_hdr(&h, version, op, req_id, 0, &iov, 1), 0);
	assert_int_equal(wire_put_hdr(r->bytes, sizeof(r->bytes), &h), sizeof(h));
	memcpy(r->bytes + sizeof(h), p, len);
	r->len = sizeof(h) + len;
}

static void send_recorded(struct ufo_conn *c, const struct recorded *r)
{
	struct iovec iov = { (void *)r->bytes, r->len };

	assert_int_equal(conn_send(c, &iov, 1, T_SRV_WAIT_MS), 0);
}

/* Sends hello and returns the server's nonce. */
static void hello_nonce(struct ufo_conn *c, const struct recorded *hello,
			uint8_t nonce[WIRE_NONCE])
{
	struct wire_hello srv_hello;
	struct t_reply r;

	send_recorded(c, hello);
	assert_int_equal(t_recv(c, &r), 0);
	assert_int_equal(r.h.status, WIRE_OK);
	assert_int_equal(r.h.len, sizeof(srv_hello));
	memcpy(&srv_hello, r.payload, sizeof(srv_hello));
	memcpy(nonce, srv_hello.nonce, WIRE_NONCE);
	t_reply_free(&r);
}

/* An eavesdropper records a whole successful handshake and replays the
 * client's frames on a new connection: the server picks a new nonce, so
 * the recorded MAC no longer matches and the connection is refused. */
static void test_replayed_handshake(void **state)
{
	struct wire_hello hello = { .min_version = htole16(1),
				    .max_version = htole16(WIRE_VERSION_MAX) };
	uint8_t ns1[WIRE_NONCE], ns2[WIRE_NONCE];
	struct recorded rec_hello, rec_auth;
	struct wire_mac mac;
	struct ufo_conn *c;
	struct t_reply r;

	wire_random(hello.nonce, sizeof(hello.nonce));
	record(&rec_hello, 0, WIRE_HELLO, 1, &hello, sizeof(hello));

	c = t_connect(&srv); /* the genuine client */
	hello_nonce(c, &rec_hello, ns1);
	wire_auth_mac((const uint8_t *)T_SECRET, strlen(T_SECRET),
		      "ufo1 client", ns1, hello.nonce, mac.mac);
	record(&rec_auth, WIRE_VERSION_MAX, WIRE_AUTH, 2, &mac, sizeof(mac));
	send_recorded(c, &rec_auth);
	assert_int_equal(t_recv(c, &r), 0);
	assert_int_equal(r.h.status, WIRE_OK);
	t_reply_free(&r);
	t_ping_ok(c);
	conn_close(c);

	c = t_connect(&srv); /* the replay, byte for byte */
	hello_nonce(c, &rec_hello, ns2);
	assert_memory_not_equal(ns1, ns2, WIRE_NONCE);
	send_recorded(c, &rec_auth);
	assert_int_equal(t_recv(c, &r), 0);
	assert_int_equal(r.h.status, WIRE_EAUTH);
	t_reply_free(&r);
	assert_true(t_closed(c));
	conn_close(c);
}

/* The same replay, but the attacker also tries the AUTH first (no
 * HELLO): refused before any MAC is even looked at. */
static void test_auth_without_hello(void **state)
{
	struct wire_mac mac = { { 0 } };
	struct ufo_conn *c = t_connect(&srv);
	struct t_reply r;

	assert_int_equal(t_send_raw(c, t_hdr(0, WIRE_AUTH, sizeof(mac)), &mac,
				    sizeof(mac), false), 0);
	assert_int_equal(t_recv(c, &r), 0);
	assert_int_equal(r.h.status, WIRE_ENOTAUTH);
	t_reply_free(&r);
	assert_true(t_closed(c));
	conn_close(c);
}

/* A valid payload for each op that the workers would run. */
static size_t op_payload(uint16_t op, uint8_t *p)
{
	struct wire_io io = { .id = htole64(obj_id), .len = htole32(16) };
	struct wire_name n = { .name_len = htole16(sizeof(OBJ) - 1) };
	struct wire_create cr = { .size = htole64(1 << 20),
				  .chunk_size = htole32(65536),
				  .name_len = htole16(3) };
	struct wire_list l = { .max = htole32(16) };
	uint64_t id = htole64(obj_id);

	switch (op) {
	case WIRE_CREATE:
		memcpy(p, &cr, sizeof(cr));
		memcpy(p + sizeof(cr), "new", 3);
		return sizeof(cr) + 3;
	case WIRE_OPEN: case WIRE_STAT: case WIRE_DELETE:
		memcpy(p, &n, sizeof(n));
		memcpy(p + sizeof(n), OBJ, sizeof(OBJ) - 1);
		return sizeof(n) + sizeof(OBJ) - 1;
	case WIRE_LIST:
		memcpy(p, &l, sizeof(l));
		return sizeof(l);
	case WIRE_WRITE:
		memcpy(p, &io, sizeof(io));
		memset(p + sizeof(io), 0xee, 16);
		return sizeof(io) + 16;
	case WIRE_READ: case WIRE_MAP: case WIRE_COMMIT:
		memcpy(p, &io, sizeof(io));
		return sizeof(io);
	case WIRE_SYNC:
		memcpy(p, &id, sizeof(id));
		return sizeof(id);
	default:
		return 0;
	}
}

/* Every op, sent before HELLO and between HELLO and AUTH: ENOTAUTH and
 * closed, and the store is untouched (checked at the end). */
static void unauth_op(uint16_t op, bool after_hello)
{
	struct wire_hello hello = { .min_version = htole16(1),
				    .max_version = htole16(WIRE_VERSION_MAX) };
	struct ufo_conn *c = t_connect(&srv);
	uint8_t p[128];
	size_t len = op_payload(op, p);
	struct t_reply r;

	if (after_hello) {
		assert_int_equal(t_send_raw(c, t_hdr(0, WIRE_HELLO, sizeof(hello)),
					    &hello, sizeof(hello), false), 0);
		assert_int_equal(t_recv(c, &r), 0);
		assert_int_equal(r.h.status, WIRE_OK);
		t_reply_free(&r);
	}
	/* len may exceed WIRE_MAX_PREAUTH for no op here: 40 bytes at most */
	assert_int_equal(t_send_raw(c, t_hdr(after_hello ? 1 : 0, op,
					     (uint32_t)len), p, len, false), 0);
	assert_int_equal(t_recv(c, &r), 0);
	if (r.h.status != WIRE_ENOTAUTH)
		fail_msg("%s %s auth: status %u", wire_op_name(op),
			 after_hello ? "between HELLO and" : "before",
			 r.h.status);
	t_reply_free(&r);
	assert_true(t_closed(c));
	conn_close(c);
}

static void test_unauthenticated_access(void **state)
{
	uint8_t back[sizeof(obj_data)];
	struct wire_objinfo info;
	struct ufo_conn *c;

	for (uint16_t op = WIRE_CREATE; op <= WIRE_OP_MAX; op++) {
		unauth_op(op, false);
		unauth_op(op, true);
	}
	c = t_login(&srv);
	assert_int_equal(t_named(c, WIRE_STAT, "new", NULL), WIRE_ENOENT);
	assert_int_equal(t_named(c, WIRE_STAT, OBJ, &info), WIRE_OK);
	assert_int_equal(t_read(c, obj_id, 0, back, sizeof(back)), WIRE_OK);
	assert_memory_equal(back, obj_data, sizeof(back));
	conn_close(c);
}

/* Runs the server with args; returns its exit status and leaves its
 * stderr in s->log. */
static int run_server(struct t_srv *s, const char *const *args)
{
	char *argv[16] = { (char *)t_server_bin() };
	int n = 1, status;
	pid_t pid;

	for (; *args && n < 15; args++)
		argv[n++] = (char *)*args;
	argv[n] = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int log = open(s->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int null = open("/dev/null", O_WRONLY);
		dup2(log, STDERR_FILENO);
		dup2(null, STDOUT_FILENO);
		execv(argv[0], argv);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

#define SECRET_VALUE "hunter2-but-sixteen-bytes-long"

/* The refusal names --secret-file and never echoes the value. */
static void expect_refused(struct t_srv *s, const char *const *args)
{
	int st = run_server(s, args);

	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 2);
	assert_int_equal(t_log_count(s, "--secret-file FILE"), 1);
	assert_int_equal(t_log_count(s, SECRET_VALUE), 0);
	assert_int_equal(t_log_count(s, "listening"), 0);
}

static void test_secret_on_command_line(void **state)
{
	char conf[PATH_MAX + 16];
	struct t_srv s;

	t_srv_init(&s);
	{
		const char *a[] = { "--listen", "127.0.0.1:0", "--data", s.data,
				    "--secret", SECRET_VALUE, NULL };
		expect_refused(&s, a);
	}
	{	/* even with a valid --secret-file next to it */
		const char *a[] = { "--listen", "127.0.0.1:0", "--data", s.data,
				    "--secret-file", s.secret_file,
				    "--secret=" SECRET_VALUE, NULL };
		expect_refused(&s, a);
	}
	{
		const char *a[] = { "--data", s.data, "--password",
				    SECRET_VALUE, NULL };
		expect_refused(&s, a);
	}
	{	/* last argument, no value */
		const char *a[] = { "--data", s.data, "--secret", NULL };
		int st = run_server(&s, a);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 2);
		assert_int_equal(t_log_count(&s, "--secret-file FILE"), 1);
	}
	{	/* nor as a config file key */
		const char *a[] = { "--listen", "127.0.0.1:0", "--config", conf,
				    "--secret-file", s.secret_file, NULL };
		snprintf(conf, sizeof(conf), "%s/server.conf", s.dir);
		t_write_file(conf, "data = /nonexistent\nsecret = "
			     SECRET_VALUE "\n", 0600);
		expect_refused(&s, a);
	}
	t_srv_fini(&s);
}

static int setup(void **state)
{
	struct wire_objinfo info;
	struct ufo_conn *c;

	t_srv_init(&srv);
	t_srv_start(&srv);
	c = t_login(&srv);
	assert_int_equal(t_create(c, OBJ, 1 << 20, 65536, &info), 0);
	obj_id = le64toh(info.id);
	t_pattern(obj_data, sizeof(obj_data), 3);
	assert_int_equal(t_write(c, obj_id, 0, obj_data, sizeof(obj_data)), 0);
	conn_close(c);
	return 0;
}

static int teardown(void **state)
{
	assert_int_equal(t_srv_stop(&srv, SIGTERM), 0);
	t_srv_fini(&srv);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replayed_handshake),
		cmocka_unit_test(test_auth_without_hello),
		cmocka_unit_test(test_unauthenticated_access),
		cmocka_unit_test(test_secret_on_command_line),
	};

	t_server_bin();
	return cmocka_run_group_tests(tests, setup, teardown);
}
