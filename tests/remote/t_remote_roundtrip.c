/* SPDX-License-Identifier: MIT */
/*
 * Data written through a remote UFO survives eviction: with a budget of a
 * few chunks, an object 32 times larger is written in full (every dirty
 * chunk goes to the server before its memory is dropped), reset, and read
 * back from the server through faults; then again from a fresh context
 * after ufo_free, and byte for byte with ufo_client_read.
 */
#include "t_remote.h"

#define CHUNK (64 * T_KIB)
#define HIGH_CHUNKS 4
#define LOW_CHUNKS 2
#define OBJ_SIZE (32 * HIGH_CHUNKS * CHUNK) /* 8 MiB: 32 budgets */
#define WORDS (OBJ_SIZE / sizeof(uint64_t))

static struct ufo_ctx *roundtrip_ctx(enum ufo_dirty_mode mode)
{
	struct ufo_config cfg;

	t_config(&cfg, CHUNK, HIGH_CHUNKS, LOW_CHUNKS);
	cfg.dirty_mode = mode;
	return t_ctx(&cfg);
}

static void write_all(struct ufo_obj *obj, uint64_t seed)
{
	uint64_t *w = ufo_body(obj);

	for (uint64_t i = 0; i < WORDS; i++)
		w[i] = t_value(seed, i);
}

/* The raw bytes on the server, read in pieces of a few chunks. */
static void check_server_copy(const char *name, uint64_t seed)
{
	struct ufo_client *cl = t_client();
	struct ufo_remote_info info;
	size_t piece = 3 * CHUNK + 8; /* not chunk-aligned on purpose */
	char *buf = t_zalloc(piece);

	assert_int_equal(ufo_client_stat(cl, name, &info), 0);
	assert_int_equal(info.size, OBJ_SIZE);
	for (uint64_t off = 0; off < OBJ_SIZE; off += piece) {
		size_t n = OBJ_SIZE - off < piece ? OBJ_SIZE - off : piece;

		assert_int_equal(ufo_client_read(cl, info.id, off, buf, n), 0);
		assert_int_equal(t_check_words(buf, n, seed, off), -1);
	}
	free(buf);
	ufo_client_close(cl);
}

static void roundtrip(const char *name, enum ufo_dirty_mode mode,
		      uint64_t seed)
{
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	struct ufo_stats s;

	t_remote_begin();
	ctx = roundtrip_ctx(mode);
	obj = t_remote_obj(ctx, name, OBJ_SIZE, CHUNK, 0);
	assert_int_equal(ufo_chunk_size(obj), CHUNK);
	assert_int_equal(ufo_elem_count(obj), OBJ_SIZE);

	write_all(obj, seed);
	assert_int_equal(ufo_sync(obj), 0);
	assert_int_equal(ufo_reset(obj), 0);
	s = t_obj_stats(obj);
	assert_true(s.evictions > 0);
	assert_true(s.writebacks > 0);
	assert_int_equal(s.writeback_errors, 0);
	assert_int_equal(t_first_bad_word(ufo_body(obj), WORDS, seed), -1);
	/* Every chunk was loaded at least once more after the reset. */
	assert_true(t_obj_stats(obj).bytes_loaded >= 2 * (uint64_t)OBJ_SIZE);
	assert_int_equal(t_obj_stats(obj).sigbus, 0);
	assert_int_equal(ufo_free(obj), 0);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);

	check_server_copy(name, seed);

	/* A new context knows nothing but what the server has. */
	ctx = roundtrip_ctx(mode);
	obj = t_remote_obj(ctx, name, 0, 0, 0);
	assert_int_equal(ufo_elem_count(obj), OBJ_SIZE);
	assert_int_equal(ufo_chunk_size(obj), CHUNK); /* the server's */
	assert_int_equal(t_first_bad_word(ufo_body(obj), WORDS, seed), -1);
	s = t_obj_stats(obj);
	assert_true(s.bytes_loaded >= OBJ_SIZE);
	assert_true(s.evictions > 0);
	/* Nothing was written, so nothing is written back. */
	assert_int_equal(s.writebacks, 0);
	/* Over RDMA the fetches were one-sided READs of mapped ranges; over
	 * TCP there are none. */
	{
		struct ufo_client_stats cs;

		assert_int_equal(ufo_remote_status(obj, &cs), 0);
		assert_string_equal(cs.transport,
				    t_rdma_expected() ? "rdma"
				    : t_tls()	      ? "tls"
						      : "tcp");
		if (t_rdma_expected())
			assert_true(cs.direct_reads > 0);
		else
			assert_int_equal(cs.direct_reads, 0);
	}
	assert_int_equal(ufo_free(obj), 0);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
}

static void test_roundtrip_auto(void **state)
{
	(void)state;
	roundtrip("roundtrip-auto", UFO_DIRTY_AUTO, 11);
}

/* Hash mode finds dirty chunks only when they are dropped or synced: the
 * same data must come back. */
static void test_roundtrip_hash(void **state)
{
	(void)state;
	roundtrip("roundtrip-hash", UFO_DIRTY_HASH, 12);
}

/* Overwriting part of an existing object keeps the rest: chunks written
 * back are whole chunks, read from the server before being modified. */
/* The server's copy (read two-sided) has the overwrites: what was committed
 * one-sided is what a plain READ returns. */
static void check_overwrite_on_server(void)
{
	const uint64_t step = 3 * CHUNK / sizeof(uint64_t) + 5;
	struct ufo_client *c = t_client();
	struct ufo_remote_info info;
	static uint64_t buf[WORDS];

	assert_int_equal(ufo_client_stat(c, "roundtrip-partial", &info), 0);
	for (uint64_t off = 0; off < OBJ_SIZE; off += CHUNK)
		assert_int_equal(ufo_client_read(c, info.id, off,
						 (char *)buf + off, CHUNK), 0);
	for (uint64_t i = 0; i < WORDS; i++)
		assert_int_equal(buf[i], i % step ? t_value(21, i)
						  : ~t_value(21, i));
	ufo_client_close(c);
}

static void test_partial_overwrite(void **state)
{
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	uint64_t *w;
	const uint64_t step = 3 * CHUNK / sizeof(uint64_t) + 5;

	(void)state;
	t_remote_begin();
	ctx = roundtrip_ctx(UFO_DIRTY_AUTO);
	obj = t_remote_obj(ctx, "roundtrip-partial", OBJ_SIZE, CHUNK, 0);
	write_all(obj, 21);
	assert_int_equal(ufo_free(obj), 0); /* free writes back, too */

	obj = t_remote_obj(ctx, "roundtrip-partial", 0, 0, 0);
	w = ufo_body(obj);
	for (uint64_t i = 0; i < WORDS; i += step)
		w[i] = ~t_value(21, i);
	assert_int_equal(ufo_reset(obj), 0);
	for (uint64_t i = 0; i < WORDS; i++) {
		uint64_t want = i % step ? t_value(21, i) : ~t_value(21, i);

		if (w[i] != want)
			fail_msg("word %llu: %#llx, want %#llx",
				 (unsigned long long)i,
				 (unsigned long long)w[i],
				 (unsigned long long)want);
	}
	/* The overwrites hit data the server holds: over RDMA they went back
	 * one-sided (RDMA WRITE + COMMIT), over TCP as WRITEs. */
	{
		struct ufo_client_stats cs;

		assert_int_equal(ufo_remote_status(obj, &cs), 0);
		if (t_rdma_expected())
			assert_true(cs.direct_writes > 0);
		else
			assert_int_equal(cs.direct_writes, 0);
	}
	assert_int_equal(ufo_free(obj), 0);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
	check_overwrite_on_server();
}

/* Scan mode sends only written pages: one 8-byte write in each of three
 * chunks crosses as three pages (plus request headers), not three chunks,
 * and the server holds the writes and the old data around them. */
static void test_scan_pages_only(void **state)
{
	struct ufo_client_stats before, after;
	struct ufo_client *c;
	struct ufo_remote_info info;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	struct ufo_stats s;
	static uint64_t buf[CHUNK / sizeof(uint64_t)];
	uint64_t *w;

	(void)state;
	t_remote_begin();
	ctx = roundtrip_ctx(UFO_DIRTY_SCAN); /* skips without scan mode */
	obj = t_remote_obj(ctx, "scan-pages", 4 * CHUNK, CHUNK, 0);
	w = ufo_body(obj);
	for (uint64_t i = 0; i < 4 * CHUNK / 8; i++)
		w[i] = t_value(31, i);
	assert_int_equal(ufo_sync(obj), 0);
	assert_int_equal(ufo_remote_status(obj, &before), 0);
	for (uint64_t k = 1; k < 4; k++)
		w[k * CHUNK / 8 + k * 700] = ~t_value(31, k * CHUNK / 8 + k * 700);
	assert_int_equal(ufo_sync(obj), 0);
	assert_int_equal(ufo_remote_status(obj, &after), 0);
	s = t_obj_stats(obj);
	assert_int_equal(s.writeback_bytes, 4 * CHUNK + 3 * 4096);
	assert_true(after.bytes_out - before.bytes_out < 4 * 4096);
	assert_int_equal(ufo_free(obj), 0);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);

	c = t_client();
	assert_int_equal(ufo_client_stat(c, "scan-pages", &info), 0);
	for (uint64_t k = 0; k < 4; k++) {
		assert_int_equal(ufo_client_read(c, info.id, k * CHUNK, buf,
						 CHUNK), 0);
		for (uint64_t i = 0; i < CHUNK / 8; i++) {
			uint64_t g = k * CHUNK / 8 + i;
			uint64_t want = k && i == k * 700 ? ~t_value(31, g)
							  : t_value(31, g);

			if (buf[i] != want)
				fail_msg("word %llu: %#llx, want %#llx",
					 (unsigned long long)g,
					 (unsigned long long)buf[i],
					 (unsigned long long)want);
		}
	}
	ufo_client_close(c);
}

/*
 * Remote writebacks run several at once (engine/writeback.c, WRITEBACK_WIDTH) while
 * threads keep writing: each thread owns the words i % WRITERS == t and
 * keeps a shadow of them; under a budget of 4 chunks of 16 KiB every
 * eviction batch writes back in parallel with stores into other chunks
 * and with refaults of the chunks being written back.  A write lost to a
 * writeback race shows as a word that differs from its shadow.
 */
#define PW_CHUNK (16 * T_KIB)
#define PW_SIZE (2 * T_MIB)
#define PW_WORDS (PW_SIZE / sizeof(uint64_t))
#define PW_WRITERS 4
#define PW_STORES 12000
/* In the RDMA suite's emulated guest (TCG) each writeback is ~50x slower:
 * fewer stores keep the program under its watchdog. */
#define PW_STORES_GUEST 250

struct pw {
	uint64_t *w;
	uint64_t *shadow;
	unsigned t;
};

static void *pw_writer(void *arg)
{
	struct pw *p = arg;
	uint64_t r = 0x9e3779b97f4a7c15ull * (p->t + 1);
	unsigned stores = t_rdma_expected() ? PW_STORES_GUEST : PW_STORES;

	for (unsigned k = 0; k < stores; k++) {
		uint64_t i = t_rand(&r) % (PW_WORDS / PW_WRITERS) * PW_WRITERS +
			     p->t;
		uint64_t v = t_rand(&r);

		p->w[i] = v;
		p->shadow[i] = v;
	}
	return NULL;
}

static void test_parallel_writeback(void **state)
{
	struct ufo_config cfg;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	uint64_t *shadow = t_zalloc(PW_SIZE);
	struct pw p[PW_WRITERS];
	pthread_t t[PW_WRITERS];
	struct ufo_stats s;

	(void)state;
	t_remote_begin();
	t_config(&cfg, PW_CHUNK, 4, 2);
	cfg.threads = 4;
	ctx = t_ctx(&cfg);
	obj = t_remote_obj(ctx, "parallel-wb", PW_SIZE, PW_CHUNK, 0);
	for (unsigned i = 0; i < PW_WRITERS; i++) {
		p[i] = (struct pw){ ufo_body(obj), shadow, i };
		assert_int_equal(pthread_create(&t[i], NULL, pw_writer, &p[i]),
				 0);
	}
	for (unsigned i = 0; i < PW_WRITERS; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(ufo_sync(obj), 0);
	assert_int_equal(ufo_reset(obj), 0);
	for (uint64_t i = 0; i < PW_WORDS; i++)
		if (((uint64_t *)ufo_body(obj))[i] != shadow[i])
			fail_msg("word %llu lost: %#llx, want %#llx",
				 (unsigned long long)i,
				 (unsigned long long)((uint64_t *)ufo_body(obj))[i],
				 (unsigned long long)shadow[i]);
	s = t_obj_stats(obj);
	fprintf(stderr, "parallel writeback: %llu writebacks, %llu evictions\n",
		(unsigned long long)s.writebacks,
		(unsigned long long)s.evictions);
	assert_true(s.writebacks > (t_rdma_expected() ? 20 : 100));
	assert_int_equal(ufo_free(obj), 0);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
	free(shadow);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_auto),
		cmocka_unit_test(test_roundtrip_hash),
		cmocka_unit_test(test_partial_overwrite),
		cmocka_unit_test(test_scan_pages_only),
		cmocka_unit_test(test_parallel_writeback),
	};

	t_remote_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
