/* SPDX-License-Identifier: MIT */
/*
 * Populate correctness: every element reads what populate wrote, including
 * the last, partial chunk; populate is asked only for whole chunks; the
 * header is zero-filled, writable and ends where the body begins; chunk-size
 * rounding; lookups; parameter validation.
 */
#include "t_helpers.h"

#define SEED 7

struct pop_state {
	size_t elem_size;
	uint64_t elem_count;
	uint64_t epc; /* elements per chunk, set once the object exists */
	atomic_uint calls;
	atomic_uint bad_ranges;
};

static int pop_fill(void *user, uint64_t start, uint64_t end, void *dst)
{
	struct pop_state *st = user;

	atomic_fetch_add(&st->calls, 1);
	/* Chunk granularity: starts on a chunk boundary, ends on one or at the
	 * end of the body. */
	if (start >= end || end > st->elem_count ||
	    (st->epc && start % st->epc) ||
	    (st->epc && end % st->epc && end != st->elem_count))
		atomic_fetch_add(&st->bad_ranges, 1);
	t_fill(dst, st->elem_size, SEED, start, end);
	return 0;
}

static int pop_zero(void *user, uint64_t start, uint64_t end, void *dst)
{
	(void)user;
	(void)start;
	(void)end;
	(void)dst;
	return 0;
}

static struct pop_state *new_state(uint64_t elem_count)
{
	struct pop_state *st = t_zalloc(sizeof(*st));

	st->elem_size = 8;
	st->elem_count = elem_count;
	return st;
}

static void params(struct ufo_params *p, struct pop_state *st)
{
	ufo_params_init(p);
	p->elem_size = st->elem_size;
	p->elem_count = st->elem_count;
	p->chunk_size = 64 * T_KIB;
	p->populate = pop_fill;
	p->user = st;
}

/* Reads every element of obj in order and compares with t_fill(). */
static void check_body(struct ufo_obj *obj, size_t elem_size, uint64_t count)
{
	unsigned char *expect = malloc(elem_size);
	const unsigned char *body = ufo_body(obj);

	assert_non_null(expect);
	for (uint64_t i = 0; i < count; i++) {
		t_fill(expect, elem_size, SEED, i, i + 1);
		if (memcmp(body + i * elem_size, expect, elem_size) != 0)
			fail_msg("element %llu differs",
				 (unsigned long long)i);
	}
	free(expect);
}

static void run_populate(size_t elem_size, uint64_t elem_count)
{
	struct ufo_config cfg;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	struct ufo_params p;
	struct pop_state *st = t_zalloc(sizeof(*st));
	uint64_t nchunks;

	st->elem_size = elem_size;
	st->elem_count = elem_count;
	t_config(&cfg, 0, 0, 0);
	ctx = t_ctx(&cfg);
	params(&p, st);
	obj = t_obj(ctx, &p);
	st->epc = ufo_chunk_size(obj) / elem_size;
	assert_int_equal(ufo_chunk_size(obj) % elem_size, 0);
	/* The test must cover a partial last chunk. */
	assert_int_not_equal(elem_count % st->epc, 0);
	nchunks = (elem_count + st->epc - 1) / st->epc;

	check_body(obj, elem_size, elem_count);
	assert_int_equal(atomic_load(&st->bad_ranges), 0);
	/* Each chunk at least once; readahead may load no chunk twice
	 * without an eviction, and there was none (default budget). */
	assert_int_equal(atomic_load(&st->calls), nchunks);
	/* Counters are bumped after the faulting thread is woken: let the
	 * last load land before reading them. */
	T_WAIT_UNTIL(t_obj_stats(obj).bytes_loaded >= elem_count * elem_size &&
		     t_obj_stats(obj).resident_bytes >= elem_count * elem_size);
	{
		struct ufo_stats s = t_obj_stats(obj);

		assert_int_equal(s.populate_calls, nchunks);
		/* Loaded bytes: the elements, at most rounded up to whole
		 * chunks. */
		assert_true(s.bytes_loaded >= elem_count * elem_size);
		assert_true(s.bytes_loaded <= nchunks * ufo_chunk_size(obj));
		assert_int_equal(s.evictions, 0);
		assert_true(s.faults >= 1);
		assert_true(s.resident_bytes >= elem_count * elem_size);
		assert_true(s.resident_bytes <= nchunks * ufo_chunk_size(obj));
	}
	/* A second pass faults nothing in. */
	check_body(obj, elem_size, elem_count);
	assert_int_equal(atomic_load(&st->calls), nchunks);

	assert_int_equal(ufo_free(obj), 0);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
	free(st);
}

static void test_populate_u64(void **state)
{
	(void)state;
	/* 64 KiB chunks of 8192 elements; 5 full chunks and 1000 more. */
	run_populate(8, 5 * 8192 + 1000);
}

static void test_populate_odd_elem(void **state)
{
	(void)state;
	/* 12-byte elements: the chunk is rounded to a multiple of 12 and of
	 * the page (lcm 12288), so chunks and pages do not line up. */
	run_populate(12, 3 * (64 * T_KIB + 8 * T_KIB) / 12 + 77);
}

static void test_populate_last_chunk_only(void **state)
{
	struct ufo_config cfg;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	struct ufo_params p;
	struct pop_state *st = new_state(3 * 8192 + 5);
	const uint64_t *body;

	(void)state;
	t_config(&cfg, 0, 0, 0);
	ctx = t_ctx(&cfg);
	params(&p, st);
	obj = t_obj(ctx, &p);
	assert_int_equal(ufo_advise(obj, 0, 0, UFO_ADV_RANDOM), 0);
	st->epc = ufo_chunk_size(obj) / 8;
	body = ufo_body(obj);

	/* Touch the very last element first: only the short chunk loads. */
	assert_true(body[st->elem_count - 1] ==
		    t_value(SEED, st->elem_count - 1));
	assert_int_equal(atomic_load(&st->calls), 1);
	assert_int_equal(atomic_load(&st->bad_ranges), 0);
	for (uint64_t i = 3 * 8192; i < st->elem_count; i++)
		assert_true(body[i] == t_value(SEED, i));
	assert_int_equal(atomic_load(&st->calls), 1);

	assert_int_equal(ufo_free(obj), 0);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
	free(st);
}

static void test_header(void **state)
{
	struct ufo_config cfg;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	struct ufo_params p;
	struct pop_state *st = new_state(3 * 8192 + 9);
	const size_t hsize = 5000; /* more than a page, not a multiple */
	unsigned char *hdr;
	uint64_t *body;

	(void)state;
	t_config(&cfg, 0, 0, 0);
	ctx = t_ctx(&cfg);
	params(&p, st);
	p.header_size = hsize;
	obj = t_obj(ctx, &p);

	hdr = ufo_header(obj);
	body = ufo_body(obj);
	assert_non_null(hdr);
	assert_ptr_equal(hdr + hsize, (unsigned char *)body);
	assert_int_equal((uintptr_t)body % t_page_size(), 0);
	assert_int_equal(ufo_header_size(obj), hsize);
	assert_int_equal(ufo_elem_size(obj), 8);
	assert_int_equal(ufo_elem_count(obj), st->elem_count);

	for (size_t i = 0; i < hsize; i++)
		if (hdr[i] != 0)
			fail_msg("header byte %zu is %u", i, hdr[i]);
	/* The header is not part of the body: no populate for it. */
	for (size_t i = 0; i < hsize; i++)
		hdr[i] = (unsigned char)(i * 31 + 1);
	assert_int_equal(atomic_load(&st->calls), 0);

	/* Body and header do not overlap. */
	assert_true(body[0] == t_value(SEED, 0));
	assert_int_equal(hdr[hsize - 1], (unsigned char)((hsize - 1) * 31 + 1));
	body[0] = 42;
	assert_int_equal(hdr[hsize - 1], (unsigned char)((hsize - 1) * 31 + 1));

	/* The header survives a reset; the body is repopulated. */
	assert_int_equal(ufo_reset(obj), 0);
	assert_true(body[0] == t_value(SEED, 0));
	for (size_t i = 0; i < hsize; i++)
		if (hdr[i] != (unsigned char)(i * 31 + 1))
			fail_msg("header byte %zu lost by reset", i);

	assert_int_equal(ufo_free(obj), 0);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
	free(st);
}

/* Asserts ufo_lookup(addr) resolves to want (NULL: -ENOENT). */
static void expect_lookup(struct ufo_ctx *ctx, const void *addr,
			  struct ufo_obj *want)
{
	struct ufo_obj *found = NULL;

	if (!want) {
		assert_int_equal(ufo_lookup(ctx, addr, &found), -ENOENT);
		return;
	}
	assert_int_equal(ufo_lookup(ctx, addr, &found), 0);
	assert_ptr_equal(found, want);
}

static void test_lookup(void **state)
{
	struct ufo_config cfg;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj, *bare;
	struct ufo_params p;
	const size_t hsize = 100;
	unsigned char *hdr, *body;
	uint64_t outside = 0;

	(void)state;
	t_config(&cfg, 0, 0, 0);
	ctx = t_ctx(&cfg);
	ufo_params_init(&p);
	p.header_size = hsize;
	p.elem_size = 8;
	p.elem_count = 3 * 8192 + 9;
	p.populate = pop_zero;
	obj = t_obj(ctx, &p);
	/* Without a header: NULL. */
	p.header_size = 0;
	p.elem_count = 100;
	bare = t_obj(ctx, &p);
	assert_null(ufo_header(bare));
	assert_int_equal(ufo_header_size(bare), 0);

	/* Any address in header or body, and only those. */
	hdr = ufo_header(obj);
	body = ufo_body(obj);
	expect_lookup(ctx, hdr, obj);
	expect_lookup(ctx, hdr + hsize - 1, obj);
	expect_lookup(ctx, body, obj);
	expect_lookup(ctx, body + (3 * 8192 + 9) * 8 - 1, obj);
	expect_lookup(ctx, ufo_body(bare), bare);
	expect_lookup(ctx, (char *)ufo_body(bare) + 799, bare);
	expect_lookup(ctx, &outside, NULL);
	expect_lookup(ctx, NULL, NULL);

	/* Freed objects are gone from the registry. */
	assert_int_equal(ufo_free(obj), 0);
	expect_lookup(ctx, body, NULL);
	expect_lookup(ctx, hdr, NULL);
	expect_lookup(ctx, ufo_body(bare), bare);
	assert_int_equal(ufo_free(bare), 0);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
}

static size_t chunk_for(struct ufo_ctx *ctx, size_t elem_size, size_t req)
{
	struct ufo_params p;
	struct ufo_obj *obj;
	size_t cs;

	ufo_params_init(&p);
	p.elem_size = elem_size;
	p.elem_count = 10;
	p.chunk_size = req;
	p.populate = pop_zero;
	obj = t_obj(ctx, &p);
	cs = ufo_chunk_size(obj);
	assert_int_equal(ufo_free(obj), 0);
	return cs;
}

static void test_chunk_rounding(void **state)
{
	struct ufo_config cfg;
	struct ufo_ctx *ctx;
	size_t pg = t_page_size();

	(void)state;
	t_config(&cfg, 0, 0, 0);
	ctx = t_ctx(&cfg);

	assert_int_equal(chunk_for(ctx, 8, 0), UFO_DEFAULT_CHUNK_SIZE);
	assert_int_equal(chunk_for(ctx, 8, 1), pg);
	assert_int_equal(chunk_for(ctx, 8, pg), pg);
	assert_int_equal(chunk_for(ctx, 8, pg + 1), 2 * pg);
	assert_int_equal(chunk_for(ctx, 8, 64 * T_KIB), 64 * T_KIB);
	/* Smallest multiple of lcm(page, elem_size) not below the request. */
	assert_int_equal(chunk_for(ctx, 3, 1), 3 * pg);
	assert_int_equal(chunk_for(ctx, 3, 3 * pg + 1), 6 * pg);
	assert_int_equal(chunk_for(ctx, 24, 5000), 3 * pg);
	assert_int_equal(chunk_for(ctx, 2 * pg, pg), 2 * pg);
	assert_int_equal(chunk_for(ctx, 4096 + 8, 1), (4096 + 8) * pg / 8);

	assert_int_equal(ufo_ctx_destroy(ctx), 0);
}

static void test_params_invalid(void **state)
{
	struct ufo_config cfg;
	struct ufo_ctx *ctx;
	struct ufo_params p, good;
	struct ufo_obj *obj = NULL;

	(void)state;
	t_config(&cfg, 0, 0, 0);
	ctx = t_ctx(&cfg);

	ufo_params_init(&good);
	assert_null(good.populate);
	assert_null(good.writeback);
	good.elem_size = 8;
	good.elem_count = 1000;
	good.populate = pop_zero;

	p = good;
	p.elem_size = 0;
	assert_int_equal(ufo_create(ctx, &p, &obj), -EINVAL);
	p = good;
	p.elem_count = 0;
	assert_int_equal(ufo_create(ctx, &p, &obj), -EINVAL);
	p = good;
	p.populate = NULL;
	assert_int_equal(ufo_create(ctx, &p, &obj), -EINVAL);
	/* elem_size * elem_count overflows. */
	p = good;
	p.elem_size = 1 << 16;
	p.elem_count = UINT64_MAX / 2;
	assert_int_equal(ufo_create(ctx, &p, &obj), -EINVAL);
	p = good;
	p.elem_size = SIZE_MAX;
	p.elem_count = 2;
	assert_int_equal(ufo_create(ctx, &p, &obj), -EINVAL);
	/* Header plus body overflows. */
	p = good;
	p.header_size = SIZE_MAX - 100;
	assert_int_equal(ufo_create(ctx, &p, &obj), -EINVAL);
	/* The failures left nothing behind: the good params still work. */
	obj = NULL;
	assert_int_equal(ufo_create(ctx, &good, &obj), 0);
	assert_non_null(obj);
	assert_int_equal(ufo_free(obj), 0);

	assert_int_equal(ufo_ctx_destroy(ctx), 0);
}

static void test_latency_stats(void **state)
{
	struct ufo_config cfg;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	struct ufo_params p;
	struct ufo_stats s;
	struct pop_state *st = new_state(4 * 8192);
	uint64_t sum = 0;

	(void)state;
	memset(&s, 0, sizeof(s));
	assert_int_equal(ufo_stats_latency_percentile(&s, 50), 0);

	t_config(&cfg, 0, 0, 0);
	ctx = t_ctx(&cfg);
	params(&p, st);
	obj = t_obj(ctx, &p);
	check_body(obj, 8, st->elem_count);
	s = t_ctx_stats(ctx);
	assert_true(s.faults >= 1);
	for (int i = 0; i < UFO_HIST_BUCKETS; i++)
		sum += s.fault_latency_us[i];
	assert_true(sum >= 1);
	assert_true(sum <= s.faults + s.wp_faults);
	assert_true(ufo_stats_latency_percentile(&s, 50) > 0);
	assert_true(ufo_stats_latency_percentile(&s, 100) >=
		    ufo_stats_latency_percentile(&s, 50));
	assert_int_equal(ufo_free(obj), 0);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
	free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_params_invalid),
		cmocka_unit_test(test_chunk_rounding),
		cmocka_unit_test(test_populate_u64),
		cmocka_unit_test(test_populate_odd_elem),
		cmocka_unit_test(test_populate_last_chunk_only),
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_latency_stats),
	};

	t_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
