/* SPDX-License-Identifier: MIT */
/*
 * ufo-server: the replication ops.  Versioned writes apply only to older
 * blocks, versions survive SIGKILL with their data, DISCARD keeps newer
 * blocks, placements are epoch-fenced, plain writes are refused on a
 * placed object, hints are recorded and dropped, the node id is stable,
 * and malformed replication frames are refused without harm.
 */
#include "t_srv.h"

#define BLOCK 4096u
#define NBLOCKS 16u
#define SIZE (BLOCK * NBLOCKS)

static struct t_srv srv;
static struct ufo_conn *conn;
static uint64_t obj;

static uint32_t vwrite(uint64_t off, uint32_t len, uint64_t version,
		       uint64_t epoch, uint64_t seed, const uint8_t *hint)
{
	struct wire_vio v = { .id = htole64(obj), .offset = htole64(off),
			      .len = htole32(len), .version = htole64(version),
			      .epoch = htole64(epoch) };
	uint8_t *buf = malloc(len ? len : 1);
	uint32_t st;

	t_pattern(buf, len, seed);
	if (hint) {
		v.flags = htole32(WIRE_VIO_HINT);
		memcpy(v.node, hint, WIRE_NODE_ID);
	}
	st = t_call(conn, WIRE_VWRITE, &v, sizeof(v), buf, len, NULL);
	free(buf);
	return st;
}

static uint32_t discard(uint64_t off, uint32_t len, uint64_t max_version,
			uint64_t epoch)
{
	struct wire_vio v = { .id = htole64(obj), .offset = htole64(off),
			      .len = htole32(len),
			      .version = htole64(max_version),
			      .epoch = htole64(epoch) };

	return t_call(conn, WIRE_DISCARD, &v, sizeof(v), NULL, 0, NULL);
}

/* Versions of all blocks into v[NBLOCKS]; returns the object's epoch. */
static uint64_t versions(uint64_t *v)
{
	struct wire_vq q = { .id = htole64(obj), .count = htole32(NBLOCKS + 5) };
	struct wire_vq_reply rep;
	struct t_reply r;

	assert_int_equal(t_call(conn, WIRE_VERSIONS, &q, sizeof(q), NULL, 0,
				&r), WIRE_OK);
	/* Cut at the object's end: NBLOCKS, not the count asked. */
	assert_int_equal(r.h.len, sizeof(rep) + NBLOCKS * 8);
	memcpy(&rep, r.payload, sizeof(rep));
	assert_int_equal(le32toh(rep.count), NBLOCKS);
	assert_int_equal(le32toh(rep.block_size), BLOCK);
	for (unsigned i = 0; i < NBLOCKS; i++) {
		memcpy(&v[i], r.payload + sizeof(rep) + 8 * i, 8);
		v[i] = le64toh(v[i]);
	}
	t_reply_free(&r);
	return le64toh(rep.epoch);
}

/* Block b holds pattern seed (0: zeros). */
static void assert_block(unsigned b, uint64_t seed)
{
	uint8_t got[BLOCK], want[BLOCK] = { 0 };

	if (seed)
		t_pattern(want, BLOCK, seed);
	assert_int_equal(t_read(conn, obj, (uint64_t)b * BLOCK, got, BLOCK),
			 WIRE_OK);
	/* t_pattern depends on the offset within the buffer it filled: the
	 * writes below fill from their own start, one block at a time. */
	assert_memory_equal(got, want, BLOCK);
}

static uint32_t place(uint64_t epoch, unsigned n, uint8_t r, uint8_t w,
		      uint32_t group)
{
	uint8_t buf[8 + sizeof(struct wire_placement) + 4 * WIRE_NODE_ID];
	struct wire_placement p = { .epoch = htole64(epoch),
				    .group_size = htole32(group),
				    .replicas = r, .write_quorum = w,
				    .nmembers = htole16((uint16_t)n) };
	uint64_t id = htole64(obj);

	memcpy(buf, &id, 8);
	memcpy(buf + 8, &p, sizeof(p));
	for (unsigned i = 0; i < n; i++)
		memset(buf + 8 + sizeof(p) + i * WIRE_NODE_ID, 0x10 + i,
		       WIRE_NODE_ID);
	return t_call(conn, WIRE_PLACE, buf, 8 + sizeof(p) + n * WIRE_NODE_ID,
		      NULL, 0, NULL);
}

static void reconnect(void)
{
	conn_close(conn);
	conn = t_login(&srv);
}

static void test_newer_wins(void **state)
{
	uint64_t v[NBLOCKS];

	(void)state;
	assert_int_equal(versions(v), 0);
	for (unsigned i = 0; i < NBLOCKS; i++)
		assert_true(v[i] == 0);
	assert_int_equal(vwrite(0, BLOCK, 50, 0, 1, NULL), WIRE_OK);
	assert_int_equal(vwrite(BLOCK, BLOCK, 70, 0, 2, NULL), WIRE_OK);
	/* Older than block 1's version: block 0 takes it, block 1 keeps
	 * its own (the answer is OK either way). */
	assert_int_equal(vwrite(0, 2 * BLOCK, 60, 0, 3, NULL), WIRE_OK);
	versions(v);
	assert_true(v[0] == 60 && v[1] == 70 && v[2] == 0);
	assert_block(0, 3);
	assert_block(1, 2);
	/* The same version again changes nothing. */
	assert_int_equal(vwrite(BLOCK, BLOCK, 70, 0, 9, NULL), WIRE_OK);
	assert_block(1, 2);
}

static void test_survive_sigkill(void **state)
{
	uint64_t v[NBLOCKS];

	(void)state;
	assert_int_equal(vwrite(4 * BLOCK, 4 * BLOCK, 80, 0, 4, NULL), WIRE_OK);
	t_srv_stop(&srv, SIGKILL);
	t_srv_start(&srv);
	reconnect();
	versions(v);
	for (unsigned i = 4; i < 8; i++)
		assert_true(v[i] == 80);
	assert_true(v[0] == 60 && v[1] == 70);
}

static void test_discard(void **state)
{
	uint64_t v[NBLOCKS];

	(void)state;
	/* Blocks 0 (60) and 1 (70): only those at or below 65 go. */
	assert_int_equal(discard(0, 2 * BLOCK, 65, 0), WIRE_OK);
	versions(v);
	assert_true(v[0] == 0 && v[1] == 70);
	assert_block(0, 0);
	assert_block(1, 2);
	assert_int_equal(discard(0, 100, 65, 0), WIRE_EINVAL); /* not whole */
}

static void test_placement_fences(void **state)
{
	uint64_t v[NBLOCKS];
	uint8_t zero[BLOCK] = { 0 };

	(void)state;
	assert_int_equal(place(0, 3, 2, 2, BLOCK), WIRE_EINVAL);  /* epoch 0 */
	assert_int_equal(place(1, 3, 4, 2, BLOCK), WIRE_EINVAL);  /* R > n */
	assert_int_equal(place(1, 3, 2, 3, BLOCK), WIRE_EINVAL);  /* W > R */
	assert_int_equal(place(1, 3, 2, 2, 1000), WIRE_EINVAL);   /* group */
	assert_int_equal(place(2, 3, 2, 2, 4 * BLOCK), WIRE_OK);
	assert_int_equal(place(2, 3, 2, 2, 4 * BLOCK), WIRE_OK);  /* repeat */
	assert_int_equal(place(2, 3, 2, 1, 4 * BLOCK), WIRE_ESTALE);
	assert_int_equal(place(1, 3, 2, 2, 4 * BLOCK), WIRE_ESTALE);
	assert_int_equal(versions(v), 2);
	/* A writer with another epoch, or a plain WRITE, is refused. */
	assert_int_equal(vwrite(0, BLOCK, 90, 1, 5, NULL), WIRE_ESTALE);
	assert_int_equal(vwrite(0, BLOCK, 90, 3, 5, NULL), WIRE_ESTALE);
	assert_int_equal(t_write(conn, obj, 0, zero, BLOCK), WIRE_EINVAL);
	assert_int_equal(vwrite(0, BLOCK, 90, 2, 5, NULL), WIRE_OK);
	assert_block(0, 5);
	{
		struct wire_objinfo info;
		assert_int_equal(t_named(conn, WIRE_STAT, "v", &info), WIRE_OK);
		assert_int_equal(le32toh(info.flags), WIRE_OBJ_REPLICATED);
	}
	/* The placement survives a restart. */
	t_srv_stop(&srv, SIGKILL);
	t_srv_start(&srv);
	reconnect();
	assert_int_equal(versions(v), 2);
}

static void test_hints(void **state)
{
	uint8_t a[WIRE_NODE_ID], b[WIRE_NODE_ID];
	struct wire_hint_q q = { .id = htole64(obj) };
	struct wire_hint_reply rep;
	struct wire_hint_drop d = { .id = htole64(obj), .upto = htole64(3) };
	struct t_reply r;

	(void)state;
	memset(a, 0xaa, sizeof(a));
	memset(b, 0xbb, sizeof(b));
	assert_int_equal(vwrite(8 * BLOCK, BLOCK, 100, 2, 6, a), WIRE_OK);
	assert_int_equal(vwrite(9 * BLOCK, BLOCK, 100, 2, 6, b), WIRE_OK);
	assert_int_equal(vwrite(10 * BLOCK, BLOCK, 100, 2, 6, a), WIRE_OK);
	assert_int_equal(t_call(conn, WIRE_HINTS, &q, sizeof(q), NULL, 0, &r),
			 WIRE_OK);
	memcpy(&rep, r.payload, sizeof(rep));
	assert_int_equal(le32toh(rep.count), 3);
	assert_int_equal(r.h.len, sizeof(rep) + 3 * sizeof(struct wire_hint));
	t_reply_free(&r);
	/* Dropping a's hints keeps b's. */
	memcpy(d.node, a, WIRE_NODE_ID);
	assert_int_equal(t_call(conn, WIRE_HINTS_DROP, &d, sizeof(d), NULL, 0,
				NULL), WIRE_OK);
	assert_int_equal(t_call(conn, WIRE_HINTS, &q, sizeof(q), NULL, 0, &r),
			 WIRE_OK);
	memcpy(&rep, r.payload, sizeof(rep));
	assert_int_equal(le32toh(rep.count), 1);
	{
		struct wire_hint h;
		memcpy(&h, r.payload + sizeof(rep), sizeof(h));
		assert_memory_equal(h.node, b, WIRE_NODE_ID);
		assert_true(le64toh(h.offset) == 9 * BLOCK);
	}
	t_reply_free(&r);
	/* A node of all zeros drops every node's records before upto. */
	memset(d.node, 0, WIRE_NODE_ID);
	d.upto = htole64(1);
	assert_int_equal(t_call(conn, WIRE_HINTS_DROP, &d, sizeof(d), NULL, 0,
				NULL), WIRE_OK);
	assert_int_equal(t_call(conn, WIRE_HINTS, &q, sizeof(q), NULL, 0, &r),
			 WIRE_OK);
	memcpy(&rep, r.payload, sizeof(rep));
	assert_int_equal(le32toh(rep.count), 0);
	t_reply_free(&r);
}

static void test_node_id_stable(void **state)
{
	struct wire_node a, b;
	struct t_reply r;

	(void)state;
	assert_int_equal(t_call(conn, WIRE_NODE, NULL, 0, NULL, 0, &r), WIRE_OK);
	assert_int_equal(r.h.len, sizeof(a));
	memcpy(&a, r.payload, sizeof(a));
	t_reply_free(&r);
	assert_int_equal(t_srv_stop(&srv, SIGTERM), 0);
	t_srv_start(&srv);
	reconnect();
	assert_int_equal(t_call(conn, WIRE_NODE, NULL, 0, NULL, 0, &r), WIRE_OK);
	memcpy(&b, r.payload, sizeof(b));
	t_reply_free(&r);
	assert_memory_equal(a.id, b.id, WIRE_NODE_ID);
	assert_true(le64toh(b.objects) == 1);
}

/*
 * Versioned writes racing on the same blocks from several connections
 * (workers apply them, the committer records their versions later, in
 * any order): at the end every block holds the data of the highest
 * version written to it, and that version.  Without the pending versions
 * (vstore.h) a lower version whose data landed after a higher one's would
 * leave old data under the new version.
 */
#define RACE_THREADS 4
#define RACE_WRITES 300
#define RACE_BLOCKS 2 /* blocks 12..13: not used by the tests before */

struct race {
	unsigned t;
	uint64_t top[RACE_BLOCKS]; /* highest version this thread wrote */
};

static void *race_writer(void *arg)
{
	struct race *r = arg;
	struct ufo_conn *c = t_login(&srv);
	uint64_t x = 0x9e3779b97f4a7c15ull * (r->t + 1);
	uint8_t *buf = malloc(BLOCK);

	for (unsigned i = 0; i < RACE_WRITES; i++) {
		unsigned b;
		uint64_t version;
		struct wire_vio v;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b = (unsigned)(x % RACE_BLOCKS);
		/* Mostly falling, so most writes meet a newer version that
		 * may not be recorded yet; distinct across threads (the low
		 * bits name the thread). */
		version = ((RACE_WRITES - i) * 8 + (x >> 8) % 16) *
				  RACE_THREADS + r->t;
		v = (struct wire_vio){ .id = htole64(obj),
				       .offset = htole64((12 + b) * BLOCK),
				       .len = htole32(BLOCK),
				       .version = htole64(version),
				       .epoch = htole64(2) };
		t_pattern(buf, BLOCK, version);
		assert_int_equal(t_call(c, WIRE_VWRITE, &v, sizeof(v), buf,
					BLOCK, NULL), WIRE_OK);
		if (version > r->top[b])
			r->top[b] = version;
	}
	free(buf);
	conn_close(c);
	return NULL;
}

static void test_racing_versions(void **state)
{
	struct race r[RACE_THREADS] = { 0 };
	pthread_t t[RACE_THREADS];
	uint64_t v[NBLOCKS];

	(void)state;
	for (unsigned i = 0; i < RACE_THREADS; i++) {
		r[i].t = i;
		assert_int_equal(pthread_create(&t[i], NULL, race_writer, &r[i]),
				 0);
	}
	for (unsigned i = 0; i < RACE_THREADS; i++)
		pthread_join(t[i], NULL);
	versions(v);
	for (unsigned b = 0; b < RACE_BLOCKS; b++) {
		uint64_t top = 0;

		for (unsigned i = 0; i < RACE_THREADS; i++)
			top = r[i].top[b] > top ? r[i].top[b] : top;
		assert_true(v[12 + b] == top);
		assert_block(12 + b, top);
	}
}

static void test_malformed(void **state)
{
	struct wire_vq q = { .id = htole64(obj) };
	struct wire_vio v = { .id = htole64(obj), .len = htole32(BLOCK),
			      .version = htole64(5), .epoch = htole64(2) };
	uint8_t buf[BLOCK] = { 0 };

	(void)state;
	assert_int_equal(vwrite(100, BLOCK, 200, 2, 1, NULL), WIRE_EINVAL);
	assert_int_equal(vwrite(0, 100, 200, 2, 1, NULL), WIRE_EINVAL);
	assert_int_equal(vwrite(0, BLOCK, 0, 2, 1, NULL), WIRE_EINVAL);
	assert_int_equal(vwrite(SIZE, BLOCK, 200, 2, 1, NULL), WIRE_ERANGE);
	assert_int_equal(vwrite(UINT64_MAX - 10, BLOCK, 200, 2, 1, NULL),
			 WIRE_ERANGE);
	/* Payload shorter than its len. */
	assert_int_equal(t_call(conn, WIRE_VWRITE, &v, sizeof(v), buf, 10,
				NULL), WIRE_EPROTO);
	v.flags = htole32(8);
	assert_int_equal(t_call(conn, WIRE_VWRITE, &v, sizeof(v), buf, BLOCK,
				NULL), WIRE_EINVAL);
	assert_int_equal(t_call(conn, WIRE_VERSIONS, &q, sizeof(q), NULL, 0,
				NULL), WIRE_EINVAL); /* count 0 */
	q.count = htole32(WIRE_MAX_VERSIONS + 1);
	assert_int_equal(t_call(conn, WIRE_VERSIONS, &q, sizeof(q), NULL, 0,
				NULL), WIRE_E2BIG);
	q.count = htole32(1);
	q.offset = htole64(100);
	assert_int_equal(t_call(conn, WIRE_VERSIONS, &q, sizeof(q), NULL, 0,
				NULL), WIRE_EINVAL);
	assert_int_equal(t_call(conn, WIRE_VERSIONS, &q, 7, NULL, 0, NULL),
			 WIRE_EPROTO);
	assert_int_equal(t_call(conn, WIRE_PLACE, &q, 12, NULL, 0, NULL),
			 WIRE_EPROTO);
	assert_int_equal(t_call(conn, WIRE_HINTS, &q, 3, NULL, 0, NULL),
			 WIRE_EPROTO);
	assert_int_equal(t_call(conn, WIRE_NODE, &q, 3, NULL, 0, NULL),
			 WIRE_EPROTO);
	t_ping_ok(conn); /* still served */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_newer_wins),
		cmocka_unit_test(test_survive_sigkill),
		cmocka_unit_test(test_discard),
		cmocka_unit_test(test_placement_fences),
		cmocka_unit_test(test_hints),
		cmocka_unit_test(test_node_id_stable),
		cmocka_unit_test(test_racing_versions),
		cmocka_unit_test(test_malformed),
	};
	struct wire_objinfo info;
	int rc;

	t_srv_init(&srv);
	t_srv_start(&srv);
	conn = t_login(&srv);
	assert_int_equal(t_create(conn, "v", SIZE, BLOCK, &info), WIRE_OK);
	obj = le64toh(info.id);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	conn_close(conn);
	t_srv_stop(&srv, SIGTERM);
	t_srv_fini(&srv);
	return rc;
}
