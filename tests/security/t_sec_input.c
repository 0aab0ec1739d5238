/* SPDX-License-Identifier: MIT */
/*
 * Attack table (docs/security.md): hostile numbers and names after
 * authentication.  Offsets whose offset + length wraps past UINT64_MAX,
 * ranges straddling the end, sizes at and over the limits; object names
 * with path separators, "..", NUL bytes, control characters and non-ASCII
 * bytes.  Each gets its error on a connection that goes on working, and
 * nothing appears on disk outside the store's own files.
 */
#include <dirent.h>

#include "t_srv.h"

#define OBJ "sec-input-obj"
#define OBJ_SIZE ((uint64_t)1 << 20)

static struct t_srv srv;
static struct ufo_conn *c;
static uint64_t obj_id;
static uint8_t obj_data[8192];

static uint32_t io_op(uint16_t op, uint64_t off, uint32_t len)
{
	static uint8_t data[4096];
	struct wire_io io = { .id = htole64(obj_id), .offset = htole64(off),
			      .len = htole32(len) };
	size_t extra = op == WIRE_WRITE ? len : 0;

	assert_true(extra <= sizeof(data));
	return t_call(c, op, &io, sizeof(io), data, extra, NULL);
}

static const struct {
	uint64_t off;
	uint32_t len;
} bad_ranges[] = {
	{ UINT64_MAX, 1 },
	{ UINT64_MAX, 4096 },
	{ UINT64_MAX - 4095, 4096 },     /* off + len == 2^64: wraps to 0 */
	{ UINT64_MAX - 4094, 4096 },     /* wraps to 1 */
	{ UINT64_MAX - OBJ_SIZE + 1, 4096 },
	{ (uint64_t)1 << 63, 4096 },
	{ OBJ_SIZE, 1 },
	{ OBJ_SIZE - 1, 2 },
	{ OBJ_SIZE - 4095, 4096 },
	{ OBJ_SIZE + 1, 0 },
	{ 0, (uint32_t)OBJ_SIZE + 1 },
};

/* READ, WRITE, MAP and COMMIT share the range check; each is asked. */
static void test_offset_plus_length_overflow(void **state)
{
	static const uint16_t ops[] = { WIRE_READ, WIRE_WRITE, WIRE_MAP,
					WIRE_COMMIT };
	uint8_t back[sizeof(obj_data)];

	for (size_t o = 0; o < sizeof(ops) / sizeof(ops[0]); o++) {
		for (size_t i = 0; i < sizeof(bad_ranges) / sizeof(bad_ranges[0]); i++) {
			uint32_t len = bad_ranges[i].len;
			uint32_t st;

			if (ops[o] == WIRE_WRITE && len > 4096)
				continue; /* the payload would be that big */
			st = io_op(ops[o], bad_ranges[i].off, len);
			if (st != WIRE_ERANGE)
				fail_msg("%s [%llu, +%u): status %u, want ERANGE",
					 wire_op_name(ops[o]),
					 (unsigned long long)bad_ranges[i].off,
					 len, st);
		}
	}
	/* The edges that are inside: the last byte, an empty range at the
	 * end. */
	assert_int_equal(io_op(WIRE_READ, OBJ_SIZE - 1, 1), WIRE_OK);
	assert_int_equal(io_op(WIRE_READ, OBJ_SIZE, 0), WIRE_OK);
	assert_int_equal(io_op(WIRE_WRITE, OBJ_SIZE - 4096, 4096), WIRE_OK);
	assert_int_equal(t_read(c, obj_id, 0, back, sizeof(back)), WIRE_OK);
	assert_memory_equal(back, obj_data, sizeof(back));
}

/* CREATE sizes and LIST counts around their limits. */
static void test_size_limits(void **state)
{
	struct wire_list l = { .max = htole32(UINT32_MAX) };

	assert_int_equal(t_create(c, "huge1", UINT64_MAX, 65536, NULL), WIRE_E2BIG);
	assert_int_equal(t_create(c, "huge2", WIRE_MAX_OBJECT_SIZE + 1, 65536,
				  NULL), WIRE_E2BIG);
	assert_int_equal(t_create(c, "huge3", 1, UINT32_MAX & ~4095u, NULL),
			 WIRE_EINVAL);
	assert_int_equal(t_create(c, "max-size", WIRE_MAX_OBJECT_SIZE, 65536,
				  NULL), WIRE_OK);
	assert_int_equal(t_named(c, WIRE_DELETE, "max-size", NULL), WIRE_OK);
	assert_int_equal(t_call(c, WIRE_LIST, &l, sizeof(l), NULL, 0, NULL),
			 WIRE_E2BIG);
	assert_int_equal(io_op(WIRE_READ, 0, UINT32_MAX), WIRE_E2BIG);
}

/* Names a path-joining store would turn into a file outside its
 * directory, or that a C string would cut short. */
static const struct {
	const char *bytes;
	uint16_t len; /* bytes may hold NULs */
} bad_names[] = {
	{ "../evil", 7 },
	{ "..", 2 },
	{ ".", 1 },
	{ "/etc/passwd", 11 },
	{ "a/b", 3 },
	{ "objects/../../evil", 18 },
	{ "a\\b", 3 },
	{ "evil\0.meta", 10 },
	{ "\0evil", 5 },
	{ "evil\0", 5 },
	{ "a\nb", 3 },
	{ "a b", 3 },
	{ "\xc3\xa9t\xc3\xa9", 6 },
	{ "%2e%2e%2fevil", 13 },
	{ "evil\xff", 5 },
};

static uint32_t named(uint16_t op, const char *name, uint16_t len)
{
	struct wire_name n = { .name_len = htole16(len) };
	struct wire_create cr = { .size = htole64(1 << 20),
				  .chunk_size = htole32(65536),
				  .name_len = htole16(len) };

	if (op == WIRE_CREATE)
		return t_call(c, op, &cr, sizeof(cr), name, len, NULL);
	return t_call(c, op, &n, sizeof(n), name, len, NULL);
}

/* Entries of dir, recursively, counted; fails on any name containing
 * "evil". */
static int count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		char path[PATH_MAX];

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (strstr(e->d_name, "evil"))
			fail_msg("%s/%s exists", dir, e->d_name);
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		n += 1 + (e->d_type == DT_DIR ? count_files(path) : 0);
	}
	closedir(d);
	return n;
}

static void test_hostile_names(void **state)
{
	static const uint16_t ops[] = { WIRE_CREATE, WIRE_OPEN, WIRE_STAT,
					WIRE_DELETE };
	char outside[PATH_MAX];
	int files = count_files(srv.dir);

	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		for (size_t o = 0; o < sizeof(ops) / sizeof(ops[0]); o++) {
			uint32_t st = named(ops[o], bad_names[i].bytes,
					    bad_names[i].len);
			if (st != WIRE_EINVAL)
				fail_msg("%s of name %zu: status %u, want EINVAL",
					 wire_op_name(ops[o]), i, st);
		}
	}
	/* Names are stored by id, never as paths: a legal name with dots
	 * inside is just a name. */
	assert_int_equal(t_create(c, "a..b", 1 << 20, 65536, NULL), WIRE_OK);
	assert_int_equal(t_named(c, WIRE_DELETE, "a..b", NULL), WIRE_OK);
	assert_int_equal(count_files(srv.dir), files);
	snprintf(outside, sizeof(outside), "%s/../evil", srv.dir);
	assert_int_equal(access(outside, F_OK), -1); /* next to the temp dir */
	snprintf(outside, sizeof(outside), "%s/evil", srv.dir);
	assert_int_equal(access(outside, F_OK), -1);
	t_ping_ok(c);
}

static int setup(void **state)
{
	struct wire_objinfo info;

	t_srv_init(&srv);
	t_srv_start(&srv);
	c = t_login(&srv);
	assert_int_equal(t_create(c, OBJ, OBJ_SIZE, 65536, &info), 0);
	obj_id = le64toh(info.id);
	t_pattern(obj_data, sizeof(obj_data), 11);
	assert_int_equal(t_write(c, obj_id, 0, obj_data, sizeof(obj_data)), 0);
	return 0;
}

static int teardown(void **state)
{
	conn_close(c);
	assert_int_equal(t_srv_stop(&srv, SIGTERM), 0);
	t_srv_fini(&srv);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_offset_plus_length_overflow),
		cmocka_unit_test(test_size_limits),
		cmocka_unit_test(test_hostile_names),
	};

	t_server_bin();
	return cmocka_run_group_tests(tests, setup, teardown);
}
