/* SPDX-License-Identifier: MIT */
/*
 * ufo-server: the object store.  Create/open/stat/list/delete, data round
 * trips, sparse 1 TiB objects, SYNC ordering, group commit, and durability
 * across a clean restart and across SIGKILL in the middle of writes.
 */
#include "t_srv.h"

#define KIB ((uint64_t)1 << 10)
#define MIB ((uint64_t)1 << 20)
#define TIB ((uint64_t)1 << 40)
#define WINDOW 8 /* writes a pipelining client keeps in flight */

static uint64_t info_id(const struct wire_objinfo *i)
{
	return le64toh(i->id);
}

static void test_create_open_stat_delete(void **state)
{
	struct t_srv s;
	struct ufo_conn *c;
	struct wire_objinfo a, b;

	t_srv_init(&s);
	t_srv_start(&s);
	c = t_login(&s);
	assert_int_equal(t_create(c, "alpha", MIB, 65536, &a), WIRE_OK);
	assert_true(le64toh(a.size) == MIB);
	assert_int_equal(le32toh(a.chunk_size), 65536);
	assert_int_equal(t_named(c, WIRE_OPEN, "alpha", &b), WIRE_OK);
	assert_true(info_id(&a) == info_id(&b));
	assert_int_equal(t_named(c, WIRE_STAT, "alpha", &b), WIRE_OK);
	assert_true(info_id(&a) == info_id(&b) && le64toh(b.size) == MIB);
	assert_int_equal(t_create(c, "alpha", MIB, 65536, NULL), WIRE_EEXIST);
	assert_int_equal(t_named(c, WIRE_DELETE, "alpha", NULL), WIRE_OK);
	assert_int_equal(t_named(c, WIRE_STAT, "alpha", NULL), WIRE_ENOENT);
	assert_int_equal(t_named(c, WIRE_OPEN, "alpha", NULL), WIRE_ENOENT);
	assert_int_equal(t_named(c, WIRE_DELETE, "alpha", NULL), WIRE_ENOENT);
	assert_int_equal(t_read(c, info_id(&a), 0, &b, 8), WIRE_ENOENT);
	/* A new object under the old name gets a new id. */
	assert_int_equal(t_create(c, "alpha", 2 * MIB, 4096, &b), WIRE_OK);
	assert_true(info_id(&b) > info_id(&a));
	conn_close(c);
	assert_int_equal(t_srv_stop(&s, SIGTERM), 0);
	t_srv_fini(&s);
}

static void test_write_read_roundtrip(void **state)
{
	struct t_srv s;
	struct ufo_conn *c;
	struct wire_objinfo info;
	size_t big = 3 * MIB + 123;
	uint8_t *w = malloc(big), *r = malloc(big), zero[4096] = { 0 };
	uint64_t id;

	t_srv_init(&s);
	t_srv_start(&s);
	c = t_login(&s);
	assert_int_equal(t_create(c, "rt", 64 * MIB, 65536, &info), WIRE_OK);
	id = info_id(&info);
	t_pattern(w, big, 1);
	assert_int_equal(t_write(c, id, 12345, w, (uint32_t)big), WIRE_OK);
	assert_int_equal(t_read(c, id, 12345, r, (uint32_t)big), WIRE_OK);
	assert_memory_equal(w, r, big);
	/* Holes, before and after the data, and past the file's end. */
	assert_int_equal(t_read(c, id, 0, r, 4096), WIRE_OK);
	assert_memory_equal(r, zero, 4096);
	assert_int_equal(t_read(c, id, 40 * MIB, r, 4096), WIRE_OK);
	assert_memory_equal(r, zero, 4096);
	/* Straddling the end of the data: data then zeros. */
	assert_int_equal(t_read(c, id, 12345 + big - 100, r, 200), WIRE_OK);
	assert_memory_equal(r, w + big - 100, 100);
	assert_memory_equal(r + 100, zero, 100);
	/* The last byte of the object. */
	assert_int_equal(t_write(c, id, 64 * MIB - 1, "z", 1), WIRE_OK);
	assert_int_equal(t_read(c, id, 64 * MIB - 1, r, 1), WIRE_OK);
	assert_int_equal(r[0], 'z');
	assert_int_equal(t_read(c, id, 0, r, 0), WIRE_OK); /* empty read */
	conn_close(c);
	assert_int_equal(t_srv_stop(&s, SIGTERM), 0);
	t_srv_fini(&s);
	free(w);
	free(r);
}

/* Walks the whole listing with pages of max entries; counts how many of
 * the names "obj-%04d" (< n) were seen, each exactly once. */
static void list_all(struct ufo_conn *c, uint32_t max, int n)
{
	uint8_t *seen = calloc((size_t)n, 1);
	uint64_t cursor = 0;
	int pages = 0, total = 0;

	do {
		struct wire_list l = { .cursor = htole64(cursor),
				       .max = htole32(max) };
		struct wire_list_reply h;
		struct t_reply r;
		size_t off = sizeof(h);

		assert_int_equal(t_call(c, WIRE_LIST, &l, sizeof(l), NULL, 0, &r),
				 WIRE_OK);
		memcpy(&h, r.payload, sizeof(h));
		assert_true(le32toh(h.count) <= max);
		for (uint32_t i = 0; i < le32toh(h.count); i++) {
			struct wire_list_entry e;
			int k;
			memcpy(&e, r.payload + off, sizeof(e));
			off += sizeof(e);
			assert_int_equal(sscanf((char *)r.payload + off,
						"obj-%04d", &k), 1);
			assert_true(k >= 0 && k < n && !seen[k]);
			seen[k] = 1;
			off += le16toh(e.name_len);
			total++;
		}
		assert_int_equal(off, r.h.len);
		cursor = le64toh(h.next_cursor);
		t_reply_free(&r);
		assert_true(++pages <= n + 1);
	} while (cursor);
	assert_int_equal(total, n);
	free(seen);
}

static void test_list_pagination(void **state)
{
	const int n = WIRE_LIST_MAX + 44;
	struct t_srv s;
	struct ufo_conn *c;
	char name[32];

	t_srv_init(&s);
	t_srv_start(&s);
	c = t_login(&s);
	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "obj-%04d", i);
		assert_int_equal(t_create(c, name, MIB, 4096, NULL), WIRE_OK);
	}
	list_all(c, WIRE_LIST_MAX, n);
	list_all(c, 7, n);
	/* A deletion in the middle does not disturb paging. */
	assert_int_equal(t_named(c, WIRE_DELETE, "obj-0100", NULL), WIRE_OK);
	assert_int_equal(t_create(c, "obj-0100", MIB, 4096, NULL), WIRE_OK);
	list_all(c, 1, n);
	conn_close(c);
	assert_int_equal(t_srv_stop(&s, SIGTERM), 0);
	t_srv_fini(&s);
}

static uint64_t data_blocks(const struct t_srv *s, uint64_t id)
{
	char path[PATH_MAX + 64];
	struct stat st;

	snprintf(path, sizeof(path), "%s/objects/%016llx.data", s->data,
		 (unsigned long long)id);
	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_blocks * 512;
}

#define SPARSE_WRITES 64

static void test_sparse_1tib(void **state)
{
	struct t_srv s;
	struct ufo_conn *c;
	struct wire_objinfo info;
	uint64_t id, offs[SPARSE_WRITES], rng = 0x1234567;
	uint8_t w[4096], r[4096], zero[4096] = { 0 };

	t_srv_init(&s);
	t_srv_start(&s);
	c = t_login(&s);
	assert_int_equal(t_create(c, "big", TIB, 1 << 20, &info), WIRE_OK);
	id = info_id(&info);
	for (int i = 0; i < SPARSE_WRITES; i++) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		offs[i] = (rng >> 20) % (TIB / 4096) * 4096;
		t_pattern(w, sizeof(w), offs[i]);
		assert_int_equal(t_write(c, id, offs[i], w, sizeof(w)), WIRE_OK);
	}
	assert_int_equal(t_write(c, id, TIB - 4096, zero, 4096), WIRE_OK);
	for (int i = 0; i < SPARSE_WRITES; i++) {
		t_pattern(w, sizeof(w), offs[i]);
		assert_int_equal(t_read(c, id, offs[i], r, sizeof(r)), WIRE_OK);
		assert_memory_equal(r, w, sizeof(r));
		assert_int_equal(t_read(c, id, offs[i] ^ (1ull << 30), r, 512),
				 WIRE_OK); /* 1 GiB away: a hole, almost surely */
	}
	assert_int_equal(t_named(c, WIRE_STAT, "big", &info), WIRE_OK);
	assert_true(le64toh(info.size) == TIB);
	/* 65 blocks written; allow generous file system overhead. */
	assert_true(le64toh(info.allocated) < 16 * MIB);
	assert_true(data_blocks(&s, id) < 16 * MIB);
	conn_close(c);
	assert_int_equal(t_srv_stop(&s, SIGTERM), 0);
	t_srv_fini(&s);
}

/* SYNC answers after every WRITE sent before it on the connection. */
static void test_sync_after_writes(void **state)
{
	struct t_srv s;
	struct ufo_conn *c;
	struct wire_objinfo info;
	uint8_t buf[64 * 1024];
	uint64_t id, base = atomic_fetch_add(&t_req_ids, 16), sync_req;
	int answered = 0;

	t_srv_init(&s);
	t_srv_start(&s);
	c = t_login(&s);
	assert_int_equal(t_create(c, "sync", 64 * MIB, 65536, &info), WIRE_OK);
	id = info_id(&info);
	for (int i = 0; i < 16; i++) {
		struct wire_io io = { .id = htole64(id),
				      .offset = htole64((uint64_t)i * sizeof(buf)),
				      .len = htole32(sizeof(buf)) };
		t_pattern(buf, sizeof(buf), (uint64_t)i);
		assert_int_equal(frame_send(c, WIRE_VERSION_MAX, WIRE_WRITE, base + (uint64_t)i,
					    0, &io, sizeof(io), buf, sizeof(buf),
					    T_SRV_WAIT_MS), 0);
	}
	sync_req = t_next_req();
	id = htole64(id);
	assert_int_equal(frame_send(c, WIRE_VERSION_MAX, WIRE_SYNC, sync_req, 0, &id,
				    sizeof(id), NULL, 0, T_SRV_WAIT_MS), 0);
	for (int i = 0; i < 17; i++) {
		struct t_reply r;
		assert_int_equal(t_recv(c, &r), 0);
		assert_int_equal(r.h.status, WIRE_OK);
		if (r.h.req_id == sync_req)
			assert_int_equal(answered, 16);
		else
			answered++;
		t_reply_free(&r);
	}
	conn_close(c);
	assert_int_equal(t_srv_stop(&s, SIGTERM), 0);
	t_srv_fini(&s);
}

/* ---- a pipelining writer: write i puts pattern i at offset i * BLOCK */

#define BLOCK 4096
#define MAX_WRITES 16384 /* 64 MiB object */

struct writer {
	struct ufo_conn *c;
	uint64_t id, seed;
	unsigned first, count; /* writes first .. first+count-1 */
	uint8_t acked[MAX_WRITES];
	atomic_uint nacked;
	int rc; /* why it stopped: 0 done, else the transport error */
};

static int writer_send(struct writer *w, unsigned i, uint64_t base)
{
	uint8_t buf[BLOCK];
	struct wire_io io = { .id = htole64(w->id),
			      .offset = htole64((uint64_t)i * BLOCK),
			      .len = htole32(BLOCK) };

	t_pattern(buf, sizeof(buf), w->seed + i);
	return frame_send(w->c, WIRE_VERSION_MAX, WIRE_WRITE, base + i, 0, &io, sizeof(io),
			  buf, sizeof(buf), T_SRV_WAIT_MS);
}

/* Records a write as acknowledged only on its OK answer; stops at the
 * first transport error (the server was killed). */
static void *writer_main(void *arg)
{
	struct writer *w = arg;
	uint64_t base = t_next_req();
	unsigned sent = w->first, got = 0, end = w->first + w->count;

	atomic_fetch_add(&t_req_ids, MAX_WRITES);
	while (got < w->count) {
		struct t_reply r;
		while (sent < end && sent - w->first - got < WINDOW)
			if ((w->rc = writer_send(w, sent++, base)))
				return NULL;
		if ((w->rc = t_recv(w->c, &r)))
			return NULL;
		if (r.h.status == WIRE_OK && r.h.req_id >= base + w->first &&
		    r.h.req_id < base + end) {
			w->acked[r.h.req_id - base] = 1;
			atomic_fetch_add(&w->nacked, 1);
		}
		t_reply_free(&r);
		got++;
	}
	return NULL;
}

/* Every acknowledged write of w reads back exactly. */
static void verify_acked(struct ufo_conn *c, const struct writer *w)
{
	uint8_t want[BLOCK], got[BLOCK];

	for (unsigned i = w->first; i < w->first + w->count; i++) {
		if (!w->acked[i])
			continue;
		t_pattern(want, sizeof(want), w->seed + i);
		assert_int_equal(t_read(c, w->id, (uint64_t)i * BLOCK, got,
					sizeof(got)), WIRE_OK);
		if (memcmp(want, got, sizeof(got)))
			fail_msg("acknowledged write %u lost", i);
	}
}

static void test_restart_clean(void **state)
{
	static struct writer w;
	struct t_srv s;
	struct ufo_conn *c;
	struct wire_objinfo a, b, d;

	t_srv_init(&s);
	t_srv_start(&s);
	c = t_login(&s);
	assert_int_equal(t_create(c, "keep", 64 * MIB, 65536, &a), WIRE_OK);
	assert_int_equal(t_create(c, "gone", MIB, 65536, &d), WIRE_OK);
	w = (struct writer){ .c = c, .id = info_id(&a), .seed = 99,
			     .count = 500 };
	writer_main(&w);
	assert_int_equal(w.rc, 0);
	assert_int_equal(atomic_load(&w.nacked), 500);
	assert_int_equal(t_named(c, WIRE_DELETE, "gone", NULL), WIRE_OK);
	conn_close(c);
	assert_int_equal(t_srv_stop(&s, SIGTERM), 0);

	t_srv_start(&s);
	c = t_login(&s);
	assert_int_equal(t_named(c, WIRE_STAT, "keep", &b), WIRE_OK);
	assert_true(info_id(&a) == info_id(&b));
	assert_true(le64toh(b.size) == 64 * MIB);
	assert_int_equal(t_named(c, WIRE_STAT, "gone", NULL), WIRE_ENOENT);
	verify_acked(c, &w);
	/* Ids are never reused, even the deleted highest one. */
	assert_int_equal(t_create(c, "new", MIB, 65536, &b), WIRE_OK);
	assert_true(info_id(&b) > info_id(&d));
	conn_close(c);
	assert_int_equal(t_srv_stop(&s, SIGTERM), 0);
	t_srv_fini(&s);
}

static unsigned random_below(unsigned n)
{
	static unsigned seed;

	if (!seed)
		seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	return (unsigned)rand_r(&seed) % n;
}

/* SIGKILL at a random point of a write stream: every write the server
 * acknowledged is there after the restart, and so is the metadata. */
static void test_sigkill_during_writes(void **state)
{
	static struct writer w;
	struct t_srv s;
	struct ufo_conn *c;
	struct wire_objinfo a, b;
	pthread_t th;
	unsigned target = 20 + random_below(400);

	t_srv_init(&s);
	t_srv_start(&s);
	c = t_login(&s);
	assert_int_equal(t_create(c, "crash", 64 * MIB, 65536, &a), WIRE_OK);
	w = (struct writer){ .c = c, .id = info_id(&a), .seed = 7,
			     .count = MAX_WRITES };
	assert_int_equal(pthread_create(&th, NULL, writer_main, &w), 0);
	for (int i = 0; i < T_SRV_WAIT_MS && atomic_load(&w.nacked) < target; i++)
		t_sleep_ms(1);
	assert_true(atomic_load(&w.nacked) >= target);
	t_srv_stop(&s, SIGKILL);
	pthread_join(th, NULL);
	assert_true(w.rc != 0); /* it saw the server die */
	conn_close(c);
	print_message("killed after %u acknowledged writes\n",
		      atomic_load(&w.nacked));

	t_srv_start(&s);
	c = t_login(&s);
	assert_int_equal(t_named(c, WIRE_STAT, "crash", &b), WIRE_OK);
	assert_true(info_id(&a) == info_id(&b));
	verify_acked(c, &w);
	conn_close(c);
	assert_int_equal(t_srv_stop(&s, SIGTERM), 0);
	t_srv_fini(&s);
}

/* SIGTERM while writes are in flight: each one is either acknowledged
 * (and then durable) or never answered; the server exits 0. */
static void test_sigterm_with_writes_in_flight(void **state)
{
	static struct writer w;
	struct t_srv s;
	struct ufo_conn *c;
	struct wire_objinfo a;
	pthread_t th;

	t_srv_init(&s);
	t_srv_start(&s);
	c = t_login(&s);
	assert_int_equal(t_create(c, "term", 64 * MIB, 65536, &a), WIRE_OK);
	w = (struct writer){ .c = c, .id = info_id(&a), .seed = 3,
			     .count = MAX_WRITES };
	assert_int_equal(pthread_create(&th, NULL, writer_main, &w), 0);
	for (int i = 0; i < T_SRV_WAIT_MS && atomic_load(&w.nacked) < 50; i++)
		t_sleep_ms(1);
	assert_int_equal(t_srv_stop(&s, SIGTERM), 0);
	pthread_join(th, NULL);
	conn_close(c);
	t_srv_start(&s);
	c = t_login(&s);
	verify_acked(c, &w);
	conn_close(c);
	assert_int_equal(t_srv_stop(&s, SIGTERM), 0);
	t_srv_fini(&s);
}

#define GC_CLIENTS 8
#define GC_WRITES 64

/* Many clients writing at once all get their acknowledgements, and they
 * share fdatasyncs: the server's closing stats line counts fewer syncs
 * than writes. */
static void test_group_commit(void **state)
{
	static struct writer w[GC_CLIENTS];
	pthread_t th[GC_CLIENTS];
	struct t_srv s;
	struct ufo_conn *c;
	struct wire_objinfo a;
	unsigned long long writes = 0, syncs = 0;
	char line[512];
	FILE *f;

	t_srv_init(&s);
	t_srv_start(&s);
	c = t_login(&s);
	assert_int_equal(t_create(c, "gc", 64 * MIB, 65536, &a), WIRE_OK);
	for (int i = 0; i < GC_CLIENTS; i++) {
		w[i] = (struct writer){ .c = t_login(&s), .id = info_id(&a),
					.seed = 5, .first = (unsigned)i * GC_WRITES,
					.count = GC_WRITES };
		assert_int_equal(pthread_create(&th[i], NULL, writer_main,
						&w[i]), 0);
	}
	for (int i = 0; i < GC_CLIENTS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].rc, 0);
		assert_int_equal(atomic_load(&w[i].nacked), GC_WRITES);
		verify_acked(c, &w[i]);
		conn_close(w[i].c);
	}
	conn_close(c);
	assert_int_equal(t_srv_stop(&s, SIGTERM), 0);
	f = fopen(s.log, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "stopped:"))
			sscanf(strstr(line, "writes="), "writes=%llu fdatasyncs=%llu",
			       &writes, &syncs);
	fclose(f);
	print_message("%llu writes, %llu fdatasyncs\n", writes, syncs);
	assert_true(writes == GC_CLIENTS * GC_WRITES);
	assert_true(syncs > 0 && syncs < writes);
	t_srv_fini(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_open_stat_delete),
		cmocka_unit_test(test_write_read_roundtrip),
		cmocka_unit_test(test_list_pagination),
		cmocka_unit_test(test_sparse_1tib),
		cmocka_unit_test(test_sync_after_writes),
		cmocka_unit_test(test_restart_clean),
		cmocka_unit_test(test_sigkill_during_writes),
		cmocka_unit_test(test_sigterm_with_writes_in_flight),
		cmocka_unit_test(test_group_commit),
	};

	t_server_bin();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
