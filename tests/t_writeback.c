/* SPDX-License-Identifier: MIT */
/*
 * The writeback callback sees exactly the written chunks: their element
 * ranges (the last chunk clipped to elem_count) with the bytes as written,
 * nothing else; a clean sync calls nothing; free and reset write back; a
 * read-only object never writes back; a failing writeback keeps the chunk
 * dirty and is retried.
 */
#include "t_helpers.h"

#define SEED 31
#define CHUNK (16 * T_KIB)
#define EPC (CHUNK / sizeof(uint32_t))
#define NCHUNKS 10
#define COUNT (NCHUNKS * EPC - 100)

struct wb {
	uint32_t *backing;
	/* Per element: how many writeback calls covered it since the last
	 * wb_reset(), and whether the bytes passed matched expect. */
	unsigned char *seen;
	uint32_t *expect;
	pthread_mutex_t lock;
	unsigned calls;
	unsigned bad;  /* ranges off chunk boundaries, or wrong bytes */
	int fail;      /* writeback returns -EIO while set */
	unsigned failed_calls;
};

static int wb_populate(void *user, uint64_t start, uint64_t end, void *dst)
{
	struct wb *w = user;

	memcpy(dst, w->backing + start, (end - start) * sizeof(uint32_t));
	return 0;
}

static int wb_writeback(void *user, uint64_t start, uint64_t end,
			const void *src)
{
	struct wb *w = user;
	const uint32_t *v = src;

	pthread_mutex_lock(&w->lock);
	if (w->fail) {
		w->failed_calls++;
		pthread_mutex_unlock(&w->lock);
		return -EIO;
	}
	w->calls++;
	if (start >= end || end > COUNT || start % EPC ||
	    (end % EPC && end != COUNT))
		w->bad++;
	for (uint64_t i = start; i < end && i < COUNT; i++) {
		if (w->seen[i] < 255)
			w->seen[i]++;
		if (v[i - start] != w->expect[i])
			w->bad++;
		w->backing[i] = v[i - start];
	}
	pthread_mutex_unlock(&w->lock);
	return 0;
}

static void wb_reset(struct wb *w)
{
	pthread_mutex_lock(&w->lock);
	w->calls = 0;
	w->failed_calls = 0;
	memset(w->seen, 0, COUNT);
	pthread_mutex_unlock(&w->lock);
}

/* Asserts the writeback calls since wb_reset() covered exactly the chunks in
 * mask (bit c: chunk c), each element once, with the expected bytes. */
static void wb_expect(struct wb *w, unsigned mask)
{
	pthread_mutex_lock(&w->lock);
	assert_int_equal(w->bad, 0);
	for (uint64_t i = 0; i < COUNT; i++) {
		unsigned want = (mask >> (i / EPC)) & 1;

		if (w->seen[i] != want)
			fail_msg("element %llu (chunk %llu) written back %u "
				 "times, expected %u",
				 (unsigned long long)i,
				 (unsigned long long)(i / EPC), w->seen[i],
				 want);
	}
	if (mask == 0)
		assert_int_equal(w->calls, 0);
	pthread_mutex_unlock(&w->lock);
}

static void wb_init(struct wb *w)
{
	memset(w, 0, sizeof(*w));
	w->backing = malloc(COUNT * sizeof(uint32_t));
	w->expect = malloc(COUNT * sizeof(uint32_t));
	w->seen = calloc(COUNT, 1);
	assert_non_null(w->backing);
	assert_non_null(w->expect);
	assert_non_null(w->seen);
	for (uint64_t i = 0; i < COUNT; i++)
		w->backing[i] = w->expect[i] = (uint32_t)t_value(SEED, i);
	pthread_mutex_init(&w->lock, NULL);
}

static void wb_fini(struct wb *w)
{
	free(w->backing);
	free(w->expect);
	free(w->seen);
	pthread_mutex_destroy(&w->lock);
}

static struct ufo_obj *wb_obj(struct ufo_ctx *ctx, struct wb *w,
			      unsigned flags)
{
	struct ufo_params p;
	struct ufo_obj *obj;

	ufo_params_init(&p);
	p.elem_size = sizeof(uint32_t);
	p.elem_count = COUNT;
	p.chunk_size = CHUNK;
	p.flags = flags;
	p.populate = wb_populate;
	p.writeback = wb_writeback;
	p.user = w;
	obj = t_obj(ctx, &p);
	assert_int_equal(ufo_chunk_size(obj), CHUNK);
	/* No readahead: a chunk is loaded only when the test touches it. */
	assert_int_equal(ufo_advise(obj, 0, 0, UFO_ADV_RANDOM), 0);
	return obj;
}

/* Writes one element at offset off of chunk c, recording it in expect. */
static void put(struct wb *w, struct ufo_obj *obj, uint64_t c, uint64_t off,
		uint32_t v)
{
	uint32_t *body = ufo_body(obj);
	uint64_t i = c * EPC + off;

	assert_true(i < COUNT);
	pthread_mutex_lock(&w->lock);
	w->expect[i] = v;
	pthread_mutex_unlock(&w->lock);
	body[i] = v;
}

static void read_all(struct ufo_obj *obj, struct wb *w)
{
	const volatile uint32_t *body = ufo_body(obj);

	for (uint64_t i = 0; i < COUNT; i++)
		if (body[i] != w->expect[i])
			fail_msg("element %llu differs", (unsigned long long)i);
}

static void run_ranges(enum ufo_dirty_mode mode)
{
	struct ufo_config cfg;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	struct wb *w = t_zalloc(sizeof(*w));

	wb_init(w);
	t_config(&cfg, 0, 0, 0); /* default budget: nothing is evicted */
	cfg.dirty_mode = mode;
	ctx = t_ctx(&cfg);
	obj = wb_obj(ctx, w, 0);

	/* Everything but chunk 6 is loaded, and nothing is dirty. */
	for (uint64_t c = 0; c < NCHUNKS; c++)
		if (c != 6)
			(void)*(volatile uint32_t *)((uint32_t *)ufo_body(obj) +
						     c * EPC);
	assert_int_equal(ufo_sync(obj), 0);
	wb_expect(w, 0);

	/* Chunk 1 (first element), 4 (middle, twice), 6 (never loaded
	 * before: a write to a missing page), 9 (the partial last one). */
	put(w, obj, 1, 0, 0xa1);
	put(w, obj, 4, EPC / 2, 0xa4);
	put(w, obj, 4, EPC / 2 + 1, 0xb4);
	put(w, obj, 6, 7, 0xa6);
	put(w, obj, 9, COUNT - 9 * EPC - 1, 0xa9);
	if (mode == UFO_DIRTY_WP)
		assert_true(t_obj_stats(obj).dirty_bytes >= 4 * sizeof(uint32_t));
	assert_int_equal(ufo_sync(obj), 0);
	wb_expect(w, 1u << 1 | 1u << 4 | 1u << 6 | 1u << 9);
	assert_int_equal(t_obj_stats(obj).dirty_bytes, 0);
	assert_true(t_obj_stats(obj).writebacks >= 4);

	/* Nothing written since: a sync calls nothing. */
	wb_reset(w);
	assert_int_equal(ufo_sync(obj), 0);
	wb_expect(w, 0);

	/* Written again after a sync: written back again. */
	put(w, obj, 4, 3, 0xc4);
	assert_int_equal(ufo_sync(obj), 0);
	wb_expect(w, 1u << 4);

	/* Reset writes back, then data comes back through populate. */
	wb_reset(w);
	put(w, obj, 2, 5, 0xa2);
	assert_int_equal(ufo_reset(obj), 0);
	wb_expect(w, 1u << 2);
	wb_reset(w);
	read_all(obj, w);
	assert_int_equal(ufo_sync(obj), 0);
	wb_expect(w, 0);

	/* Free writes back. */
	put(w, obj, 0, 1, 0xa0);
	put(w, obj, 8, 2, 0xa8);
	assert_int_equal(ufo_free(obj), 0);
	wb_expect(w, 1u << 0 | 1u << 8);
	for (uint64_t i = 0; i < COUNT; i++)
		assert_true(w->backing[i] == w->expect[i]);

	assert_int_equal(ufo_ctx_destroy(ctx), 0);
	wb_fini(w);
	free(w);
}

static void test_ranges_wp(void **state)
{
	(void)state;
	if (!t_have_wp())
		skip();
	run_ranges(UFO_DIRTY_WP);
}

static void test_ranges_hash(void **state)
{
	(void)state;
	run_ranges(UFO_DIRTY_HASH);
}

static void test_read_only(void **state)
{
	struct ufo_config cfg;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	struct wb *w = t_zalloc(sizeof(*w));

	(void)state;
	wb_init(w);
	t_config(&cfg, CHUNK, 3, 2); /* small budget: evictions happen */
	ctx = t_ctx(&cfg);
	obj = wb_obj(ctx, w, UFO_READ_ONLY);
	read_all(obj, w);
	read_all(obj, w);
	assert_true(t_obj_stats(obj).evictions > 0);
	assert_int_equal(ufo_sync(obj), 0);
	assert_int_equal(ufo_advise(obj, 0, EPC, UFO_ADV_DONTNEED), 0);
	assert_int_equal(ufo_reset(obj), 0);
	read_all(obj, w);
	assert_int_equal(ufo_free(obj), 0);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
	wb_expect(w, 0);
	assert_int_equal(w->calls, 0);
	wb_fini(w);
	free(w);
}

/* A failing writeback: sync returns the error after 1 + retries attempts,
 * the chunk stays dirty and resident, and the next sync succeeds. */
/* The tests below pin whole-chunk writeback: write-protect where the
 * kernel has it, else hash.  Scan mode's page ranges are t_dirty_scan's. */
static enum ufo_dirty_mode chunk_mode(void)
{
	return t_have_wp() ? UFO_DIRTY_WP : UFO_DIRTY_HASH;
}

static void test_writeback_error(void **state)
{
	struct ufo_config cfg;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	struct ufo_stats s;
	struct wb *w = t_zalloc(sizeof(*w));

	(void)state;
	wb_init(w);
	t_config(&cfg, 0, 0, 0);
	cfg.dirty_mode = chunk_mode();
	cfg.retries = 2;
	cfg.retry_delay_ms = 1;
	ctx = t_ctx(&cfg);
	obj = wb_obj(ctx, w, 0);

	put(w, obj, 3, 0, 0xe3);
	w->fail = 1;
	assert_int_equal(ufo_sync(obj), -EIO);
	assert_int_equal(w->failed_calls, 1 + 2);
	s = t_obj_stats(obj);
	assert_true(s.writeback_errors >= 1);
	if (ufo_ctx_dirty_mode(ctx) == UFO_DIRTY_WP)
		assert_true(s.dirty_bytes > 0);
	/* Dropping is refused too, and the data stays. */
	assert_int_equal(ufo_reset(obj), -EIO);
	assert_true(((uint32_t *)ufo_body(obj))[3 * EPC] == 0xe3);

	pthread_mutex_lock(&w->lock);
	w->fail = 0;
	pthread_mutex_unlock(&w->lock);
	wb_reset(w);
	assert_int_equal(ufo_sync(obj), 0);
	wb_expect(w, 1u << 3);
	assert_true(w->backing[3 * EPC] == 0xe3);
	assert_int_equal(ufo_free(obj), 0);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
	wb_fini(w);
	free(w);
}

/* Evicting a chunk whose writeback fails keeps it: no write is lost, the
 * budget gives way instead of deadlocking, and once writeback works again a
 * sync saves everything. */
static void test_evict_writeback_failure(void **state)
{
	struct ufo_config cfg;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	struct wb *w = t_zalloc(sizeof(*w));

	(void)state;
	wb_init(w);
	t_config(&cfg, CHUNK, 3, 2);
	cfg.dirty_mode = chunk_mode();
	cfg.log = NULL; /* the failures are logged, as warnings */
	cfg.log_level = UFO_LOG_ERROR;
	ctx = t_ctx(&cfg);
	obj = wb_obj(ctx, w, 0);
	w->fail = 1;
	for (uint64_t c = 0; c < NCHUNKS; c++)
		put(w, obj, c, 1, 0xf0 + (uint32_t)c);
	read_all(obj, w);
	assert_true(t_obj_stats(obj).writeback_errors > 0);
	assert_true(w->failed_calls > 0);

	pthread_mutex_lock(&w->lock);
	w->fail = 0;
	pthread_mutex_unlock(&w->lock);
	assert_int_equal(ufo_sync(obj), 0);
	read_all(obj, w);
	for (uint64_t i = 0; i < COUNT; i++)
		if (w->backing[i] != w->expect[i])
			fail_msg("element %llu not saved", (unsigned long long)i);
	assert_int_equal(ufo_free(obj), 0);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
	wb_fini(w);
	free(w);
}

/* Destroying the context frees the objects still alive, writing back. */
static void test_ctx_destroy_writes_back(void **state)
{
	struct ufo_config cfg;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	struct wb *w = t_zalloc(sizeof(*w));

	(void)state;
	wb_init(w);
	t_config(&cfg, 0, 0, 0);
	cfg.dirty_mode = chunk_mode();
	ctx = t_ctx(&cfg);
	obj = wb_obj(ctx, w, 0);
	put(w, obj, 5, 9, 0xd5);
	put(w, obj, 9, 0, 0xd9);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
	wb_expect(w, 1u << 5 | 1u << 9);
	assert_true(w->backing[5 * EPC + 9] == 0xd5);
	assert_true(w->backing[9 * EPC] == 0xd9);
	wb_fini(w);
	free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ranges_wp),
		cmocka_unit_test(test_ranges_hash),
		cmocka_unit_test(test_read_only),
		cmocka_unit_test(test_writeback_error),
		cmocka_unit_test(test_evict_writeback_failure),
		cmocka_unit_test(test_ctx_destroy_writes_back),
	};

	t_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
