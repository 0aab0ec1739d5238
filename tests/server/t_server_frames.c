/* SPDX-License-Identifier: MIT */
/*
 * ufo-server: malformed, truncated, oversized and garbage frames.  Each case
 * runs on a fresh connection and gets its documented error (or, where
 * framing is lost, the connection is closed), while an observer client that
 * connected first keeps getting right answers after every case, and the
 * data written before the cases reads back unchanged at the end.
 */
#include "t_srv.h"

#define OBJ_NAME "frames-obj"
#define OBJ_SIZE ((uint64_t)1 << 20)
#define NO_REPLY UINT32_MAX /* the case expects no answer, only a close */

struct frame {
	struct wire_hdr h;
	uint8_t p[512];
	size_t len; /* payload bytes actually sent (h.len may lie) */
	bool bad_csum;
	bool raw;   /* send p as raw bytes, no header */
};

struct frame_case {
	const char *what;
	bool preauth; /* sent before HELLO instead of after AUTH */
	void (*build)(struct frame *f);
	uint32_t status;
	bool closes;
};

static struct t_srv srv;
static struct ufo_conn *observer;
static uint64_t obj_id;
static uint8_t obj_data[4096];

/* ---- builders */

static void put_name(struct frame *f, uint16_t op, const char *name,
		     uint16_t claimed)
{
	struct wire_name n = { .name_len = htole16(claimed) };
	size_t len = strlen(name);

	f->h = t_hdr(WIRE_VERSION_MAX, op, (uint32_t)(sizeof(n) + len));
	memcpy(f->p, &n, sizeof(n));
	memcpy(f->p + sizeof(n), name, len);
	f->len = f->h.len;
}

static void put_create(struct frame *f, uint64_t size, uint32_t chunk,
		       uint16_t flags, const char *name)
{
	struct wire_create cr = { .size = htole64(size),
				  .chunk_size = htole32(chunk),
				  .name_len = htole16((uint16_t)strlen(name)),
				  .flags = htole16(flags) };

	f->h = t_hdr(WIRE_VERSION_MAX, WIRE_CREATE, (uint32_t)(sizeof(cr) + strlen(name)));
	memcpy(f->p, &cr, sizeof(cr));
	memcpy(f->p + sizeof(cr), name, strlen(name));
	f->len = f->h.len;
}

static void put_io(struct frame *f, uint16_t op, uint64_t id, uint64_t off,
		   uint32_t len, uint32_t flags, size_t data)
{
	struct wire_io io = { .id = htole64(id), .offset = htole64(off),
			      .len = htole32(len), .flags = htole32(flags) };

	f->h = t_hdr(WIRE_VERSION_MAX, op, (uint32_t)(sizeof(io) + data));
	memcpy(f->p, &io, sizeof(io));
	memset(f->p + sizeof(io), 0xab, data);
	f->len = f->h.len;
}

static void put_list(struct frame *f, uint32_t max, uint32_t len)
{
	struct wire_list l = { .max = htole32(max) };

	f->h = t_hdr(WIRE_VERSION_MAX, WIRE_LIST, len);
	memcpy(f->p, &l, sizeof(l));
	f->len = len;
}

static void b_bad_magic(struct frame *f) { f->h = t_hdr(WIRE_VERSION_MAX, WIRE_PING, 0); f->h.magic = 0x12345678; }
static void b_unknown_op(struct frame *f) { f->h = t_hdr(WIRE_VERSION_MAX, 99, 0); }
static void b_op_zero(struct frame *f) { f->h = t_hdr(WIRE_VERSION_MAX, 0, 0); }
static void b_status(struct frame *f) { f->h = t_hdr(WIRE_VERSION_MAX, WIRE_PING, 0); f->h.status = WIRE_EIO; }
static void b_response_bit(struct frame *f) { f->h = t_hdr(WIRE_VERSION_MAX, WIRE_PING | WIRE_RESPONSE, 0); }
static void b_bad_version(struct frame *f) { f->h = t_hdr(7, WIRE_PING, 0); }
static void b_big_preauth(struct frame *f) { f->h = t_hdr(0, WIRE_HELLO, WIRE_MAX_PREAUTH + 1); }
static void b_big_postauth(struct frame *f) { f->h = t_hdr(WIRE_VERSION_MAX, WIRE_WRITE, WIRE_MAX_PAYLOAD + 1); }
static void b_huge_len(struct frame *f) { f->h = t_hdr(WIRE_VERSION_MAX, WIRE_READ, UINT32_MAX); }
static void b_bad_csum(struct frame *f) { put_name(f, WIRE_STAT, OBJ_NAME, sizeof(OBJ_NAME) - 1); f->bad_csum = true; }
static void b_bad_csum_hello(struct frame *f)
{
	f->h = t_hdr(0, WIRE_HELLO, sizeof(struct wire_hello));
	f->len = sizeof(struct wire_hello);
	f->bad_csum = true;
}
static void b_short_hello(struct frame *f) { f->h = t_hdr(0, WIRE_HELLO, 8); f->len = 8; }
static void b_name_long(struct frame *f)
{
	char name[WIRE_MAX_NAME + 2];

	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	put_name(f, WIRE_STAT, name, (uint16_t)strlen(name));
}
static void b_name_empty(struct frame *f) { put_name(f, WIRE_OPEN, "", 0); }
static void b_name_chars(struct frame *f) { put_name(f, WIRE_OPEN, "../etc/passwd", 13); }
static void b_name_dot(struct frame *f) { put_name(f, WIRE_DELETE, ".hidden", 7); }
static void b_name_len_lie(struct frame *f) { put_name(f, WIRE_STAT, OBJ_NAME, 200); }
static void b_create_zero(struct frame *f) { put_create(f, 0, 65536, 0, "zero"); }
static void b_create_huge(struct frame *f) { put_create(f, WIRE_MAX_OBJECT_SIZE + 1, 65536, 0, "huge"); }
static void b_create_chunk(struct frame *f) { put_create(f, 1 << 20, 1000, 0, "chunk"); }
static void b_create_chunk_big(struct frame *f) { put_create(f, 1 << 20, WIRE_MAX_CHUNK * 2, 0, "chunk2"); }
static void b_create_flags(struct frame *f) { put_create(f, 1 << 20, 65536, 1, "flags"); }
static void b_create_exists(struct frame *f) { put_create(f, 1 << 20, 65536, 0, OBJ_NAME); }
static void b_create_short(struct frame *f) { put_create(f, 1 << 20, 65536, 0, "x"); f->h.len = f->len = 10; }
static void b_read_past(struct frame *f) { put_io(f, WIRE_READ, obj_id, OBJ_SIZE - 10, 4096, 0, 0); }
static void b_read_wrap(struct frame *f) { put_io(f, WIRE_READ, obj_id, UINT64_MAX - 10, 4096, 0, 0); }
static void b_read_big(struct frame *f) { put_io(f, WIRE_READ, obj_id, 0, WIRE_MAX_IO + 1, 0, 0); }
static void b_read_noent(struct frame *f) { put_io(f, WIRE_READ, 999999, 0, 16, 0, 0); }
static void b_read_flags(struct frame *f) { put_io(f, WIRE_READ, obj_id, 0, 16, 4, 0); }
static void b_write_past(struct frame *f) { put_io(f, WIRE_WRITE, obj_id, OBJ_SIZE, 16, 0, 16); }
static void b_write_mismatch(struct frame *f) { put_io(f, WIRE_WRITE, obj_id, 0, 100, 0, 50); }
static void b_write_short(struct frame *f) { put_io(f, WIRE_WRITE, obj_id, 0, 0, 0, 0); f->h.len = f->len = 10; }
/* Regression (found by fuzz_request): the inline READ path copied 24
 * bytes of wire_io before checking the payload was that long. */
static void b_read_short(struct frame *f) { put_io(f, WIRE_READ, obj_id, 0, 16, 0, 0); f->h.len = f->len = 1; }
static void b_read_empty(struct frame *f) { put_io(f, WIRE_READ, obj_id, 0, 16, 0, 0); f->h.len = f->len = 0; }
static void b_stat_noent(struct frame *f) { put_name(f, WIRE_STAT, "no-such-object", 14); }
static void b_delete_noent(struct frame *f) { put_name(f, WIRE_DELETE, "no-such-object", 14); }
static void b_sync_noent(struct frame *f)
{
	uint64_t id = htole64(999999);

	f->h = t_hdr(WIRE_VERSION_MAX, WIRE_SYNC, sizeof(id));
	memcpy(f->p, &id, sizeof(id));
	f->len = sizeof(id);
}
static void b_list_zero(struct frame *f) { put_list(f, 0, sizeof(struct wire_list)); }
static void b_list_big(struct frame *f) { put_list(f, WIRE_LIST_MAX + 1, sizeof(struct wire_list)); }
static void b_list_short(struct frame *f) { put_list(f, 10, 4); }
static void b_hello_again(struct frame *f) { f->h = t_hdr(WIRE_VERSION_MAX, WIRE_HELLO, sizeof(struct wire_hello)); f->len = f->h.len; }
static void b_ping_payload(struct frame *f) { f->h = t_hdr(WIRE_VERSION_MAX, WIRE_PING, 4); f->len = 4; }
/* The header says 64 bytes, 10 arrive, then the client goes away. */
static void b_trunc_payload(struct frame *f) { put_name(f, WIRE_STAT, OBJ_NAME, 10); f->h.len = 64; f->len = 10; }
static void b_trunc_hdr(struct frame *f) { f->raw = true; f->len = 17; memset(f->p, 0x55, 17); }
static void b_garbage(struct frame *f)
{
	f->raw = true;
	f->len = 256;
	t_pattern(f->p, f->len, 42);
	f->p[0] = 'G'; /* never the magic */
}
static void b_http(struct frame *f)
{
	static const char req[] =
		"GET / HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n";

	f->raw = true;
	f->len = sizeof(req) - 1;
	memcpy(f->p, req, f->len);
}

static const struct frame_case cases[] = {
	{ "bad magic", false, b_bad_magic, WIRE_EPROTO, true },
	{ "unknown op", false, b_unknown_op, WIRE_EPROTO, true },
	{ "op 0", false, b_op_zero, WIRE_EPROTO, true },
	{ "status in request", false, b_status, WIRE_EPROTO, true },
	{ "response bit in request", false, b_response_bit, WIRE_EPROTO, true },
	{ "wrong header version", false, b_bad_version, WIRE_EPROTO, true },
	{ "len over limit pre-auth", true, b_big_preauth, WIRE_E2BIG, true },
	{ "len over limit post-auth", false, b_big_postauth, WIRE_E2BIG, true },
	{ "len 4 GiB", false, b_huge_len, WIRE_E2BIG, true },
	{ "bad checksum", false, b_bad_csum, WIRE_ECSUM, false },
	{ "bad checksum pre-auth", true, b_bad_csum_hello, WIRE_ECSUM, true },
	{ "short HELLO", true, b_short_hello, WIRE_EPROTO, true },
	{ "bad magic pre-auth", true, b_bad_magic, WIRE_EPROTO, true },
	{ "name too long", false, b_name_long, WIRE_EINVAL, false },
	{ "empty name", false, b_name_empty, WIRE_EINVAL, false },
	{ "name with bad chars", false, b_name_chars, WIRE_EINVAL, false },
	{ "name starting with a dot", false, b_name_dot, WIRE_EINVAL, false },
	{ "name_len != payload", false, b_name_len_lie, WIRE_EPROTO, false },
	{ "CREATE size 0", false, b_create_zero, WIRE_EINVAL, false },
	{ "CREATE over 1 PiB", false, b_create_huge, WIRE_E2BIG, false },
	{ "CREATE chunk not 4K multiple", false, b_create_chunk, WIRE_EINVAL, false },
	{ "CREATE chunk over limit", false, b_create_chunk_big, WIRE_EINVAL, false },
	{ "CREATE flags", false, b_create_flags, WIRE_EINVAL, false },
	{ "CREATE existing", false, b_create_exists, WIRE_EEXIST, false },
	{ "CREATE truncated struct", false, b_create_short, WIRE_EPROTO, false },
	{ "READ past end", false, b_read_past, WIRE_ERANGE, false },
	{ "READ offset wraps", false, b_read_wrap, WIRE_ERANGE, false },
	{ "READ over WIRE_MAX_IO", false, b_read_big, WIRE_E2BIG, false },
	{ "READ unknown id", false, b_read_noent, WIRE_ENOENT, false },
	{ "READ flags", false, b_read_flags, WIRE_EINVAL, false },
	{ "WRITE past end", false, b_write_past, WIRE_ERANGE, false },
	{ "WRITE len mismatch", false, b_write_mismatch, WIRE_EPROTO, false },
	{ "WRITE truncated struct", false, b_write_short, WIRE_EPROTO, false },
	{ "READ truncated struct", false, b_read_short, WIRE_EPROTO, false },
	{ "READ without payload", false, b_read_empty, WIRE_EPROTO, false },
	{ "STAT unknown", false, b_stat_noent, WIRE_ENOENT, false },
	{ "DELETE unknown", false, b_delete_noent, WIRE_ENOENT, false },
	{ "SYNC unknown", false, b_sync_noent, WIRE_ENOENT, false },
	{ "LIST max 0", false, b_list_zero, WIRE_EINVAL, false },
	{ "LIST max over limit", false, b_list_big, WIRE_E2BIG, false },
	{ "LIST short payload", false, b_list_short, WIRE_EPROTO, false },
	{ "HELLO after auth", false, b_hello_again, WIRE_EPROTO, false },
	{ "PING with payload", false, b_ping_payload, WIRE_EPROTO, false },
	{ "truncated payload, then close", false, b_trunc_payload, NO_REPLY, true },
	{ "truncated header, then close", false, b_trunc_hdr, NO_REPLY, true },
	{ "truncated header pre-auth", true, b_trunc_hdr, NO_REPLY, true },
	{ "random garbage", false, b_garbage, WIRE_EPROTO, true },
	{ "random garbage pre-auth", true, b_garbage, WIRE_EPROTO, true },
	{ "an HTTP request", true, b_http, WIRE_EPROTO, true },
};

static void send_case(struct ufo_conn *c, struct frame *f)
{
	struct iovec iov = { f->p, f->len };

	if (f->raw)
		assert_int_equal(conn_send(c, &iov, 1, T_SRV_WAIT_MS), 0);
	else /* a frame over the limit may be refused before it all went */
		t_send_raw(c, f->h, f->p, f->len, f->bad_csum);
}

static void expect_answer(struct ufo_conn *c, const struct frame_case *k,
			  const struct frame *f)
{
	struct t_reply r;

	assert_int_equal(t_recv(c, &r), 0);
	if (r.h.status != k->status)
		fail_msg("%s: status %u (%s), want %u", k->what, r.h.status,
			 r.payload, k->status);
	assert_true(r.h.len > 0 && r.h.len <= WIRE_MAX_ERRMSG);
	if (!f->raw)
		assert_true(r.h.req_id == f->h.req_id);
	t_reply_free(&r);
}

static void run_case(const struct frame_case *k)
{
	struct ufo_conn *c = k->preauth ? t_connect(&srv) : t_login(&srv);
	struct frame f = { 0 };

	k->build(&f);
	send_case(c, &f);
	if (k->status == NO_REPLY)
		conn_shutdown(c); /* the client goes away mid-frame */
	else
		expect_answer(c, k, &f);
	if (k->closes && k->status != NO_REPLY)
		assert_true(t_closed(c));
	else if (!k->closes)
		t_ping_ok(c); /* the same connection goes on */
	conn_close(c);
	t_ping_ok(observer);
}

static void test_frame_table(void **state)
{
	size_t n = sizeof(cases) / sizeof(cases[0]);

	assert_true(n >= 20);
	for (size_t i = 0; i < n; i++) {
		print_message("case %zu: %s\n", i, cases[i].what);
		run_case(&cases[i]);
	}
}

/* Nothing on disk was damaged, and the server never stopped. */
static void test_data_intact(void **state)
{
	uint8_t back[sizeof(obj_data)];
	struct wire_objinfo info;

	assert_int_equal(t_read(observer, obj_id, 0, back, sizeof(back)), 0);
	assert_memory_equal(back, obj_data, sizeof(back));
	assert_int_equal(t_named(observer, WIRE_STAT, OBJ_NAME, &info), 0);
	assert_true(le64toh(info.size) == OBJ_SIZE);
	assert_int_equal(waitpid(srv.pid, NULL, WNOHANG), 0);
}

static int setup(void **state)
{
	struct wire_objinfo info;

	t_srv_init(&srv);
	t_srv_start(&srv);
	observer = t_login(&srv);
	assert_int_equal(t_create(observer, OBJ_NAME, OBJ_SIZE, 65536, &info), 0);
	obj_id = le64toh(info.id);
	t_pattern(obj_data, sizeof(obj_data), 7);
	assert_int_equal(t_write(observer, obj_id, 0, obj_data,
				 sizeof(obj_data)), 0);
	return 0;
}

static int teardown(void **state)
{
	conn_close(observer);
	assert_int_equal(t_srv_stop(&srv, SIGTERM), 0);
	t_srv_fini(&srv);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_table),
		cmocka_unit_test(test_data_intact),
	};

	t_server_bin();
	return cmocka_run_group_tests(tests, setup, teardown);
}
