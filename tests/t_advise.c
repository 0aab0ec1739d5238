/* SPDX-License-Identifier: MIT */
/*
 * ufo_advise: WILLNEED loads in the background (the chunks become resident
 * without a fault, and touching them then faults nothing); DONTNEED writes
 * back and drops now; SEQUENTIAL reads ahead, RANDOM does not; bad advice
 * and bad ranges are refused.
 */
#include <sys/mman.h>

#include "t_helpers.h"

#define SEED 89
#define CHUNK (64 * T_KIB)
#define EPC (CHUNK / sizeof(uint64_t))
#define NCHUNKS 32
#define COUNT (NCHUNKS * EPC - 5)

struct adv {
	uint64_t *backing;
	atomic_uint calls[NCHUNKS];
	atomic_uint writebacks[NCHUNKS];
	unsigned populate_delay_us;
};

static int adv_populate(void *user, uint64_t start, uint64_t end, void *dst)
{
	struct adv *a = user;

	atomic_fetch_add(&a->calls[start / EPC], 1);
	if (a->populate_delay_us)
		t_sleep_us(a->populate_delay_us);
	memcpy(dst, a->backing + start, (end - start) * sizeof(uint64_t));
	return 0;
}

static int adv_writeback(void *user, uint64_t start, uint64_t end,
			 const void *src)
{
	struct adv *a = user;

	atomic_fetch_add(&a->writebacks[start / EPC], 1);
	memcpy(a->backing + start, src, (end - start) * sizeof(uint64_t));
	return 0;
}

struct fixture {
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	struct adv a;
	uint64_t *body;
};

static void setup_fixture(struct fixture *f, unsigned high_chunks)
{
	struct ufo_config cfg;
	struct ufo_params p;

	memset(f, 0, sizeof(*f));
	f->a.backing = malloc(COUNT * sizeof(uint64_t));
	assert_non_null(f->a.backing);
	t_fill(f->a.backing, sizeof(uint64_t), SEED, 0, COUNT);
	t_config(&cfg, CHUNK, high_chunks, high_chunks * 3 / 4);
	f->ctx = t_ctx(&cfg);
	ufo_params_init(&p);
	p.elem_size = sizeof(uint64_t);
	p.elem_count = COUNT;
	p.chunk_size = CHUNK;
	p.populate = adv_populate;
	p.writeback = adv_writeback;
	p.user = &f->a;
	f->obj = t_obj(f->ctx, &p);
	f->body = ufo_body(f->obj);
}

static void teardown_fixture(struct fixture *f)
{
	assert_int_equal(ufo_free(f->obj), 0);
	assert_int_equal(ufo_ctx_destroy(f->ctx), 0);
	free(f->a.backing);
}

/* Pages of chunk c the kernel has mapped (mincore), 0..CHUNK/page. */
static size_t pages_present(struct fixture *f, uint64_t c)
{
	size_t pg = t_page_size(), n = CHUNK / pg, present = 0;
	unsigned char vec[CHUNK / 4096 + 1];

	assert_true(n <= sizeof(vec));
	assert_int_equal(mincore((char *)f->body + c * CHUNK, CHUNK, vec), 0);
	for (size_t i = 0; i < n; i++)
		present += vec[i] & 1;
	return present;
}

static int chunks_present(struct fixture *f, uint64_t first, uint64_t last)
{
	for (uint64_t c = first; c <= last; c++)
		if (pages_present(f, c) != CHUNK / t_page_size())
			return 0;
	return 1;
}

static void test_willneed(void **state)
{
	struct fixture *f = t_zalloc(sizeof(*f));
	struct ufo_stats s;
	uint64_t faults;

	(void)state;
	setup_fixture(f, 0);
	assert_int_equal(ufo_advise(f->obj, 0, 0, UFO_ADV_RANDOM), 0);
	assert_int_equal(pages_present(f, 3), 0);

	/* Elements inside chunk 2 through inside chunk 5: chunks 2..5. */
	assert_int_equal(ufo_advise(f->obj, 2 * EPC + 100, 5 * EPC + 1,
				    UFO_ADV_WILLNEED), 0);
	T_WAIT_UNTIL(chunks_present(f, 2, 5) &&
		     t_obj_stats(f->obj).prefetches >= 4);
	assert_true(chunks_present(f, 2, 5));
	s = t_obj_stats(f->obj);
	assert_int_equal(s.prefetches, 4);
	assert_int_equal(s.populate_calls, 4);
	assert_true(s.resident_bytes >= 4 * CHUNK);
	for (uint64_t c = 0; c < NCHUNKS; c++)
		assert_int_equal(atomic_load(&f->a.calls[c]),
				 c >= 2 && c <= 5 ? 1 : 0);

	/* Touching them now faults nothing and loads nothing. */
	faults = s.faults;
	for (uint64_t i = 2 * EPC; i < 6 * EPC; i++)
		assert_true(f->body[i] == t_value(SEED, i));
	s = t_obj_stats(f->obj);
	assert_int_equal(s.faults, faults);
	assert_int_equal(s.populate_calls, 4);

	/* Already resident: WILLNEED again loads nothing. */
	assert_int_equal(ufo_advise(f->obj, 2 * EPC, 6 * EPC,
				    UFO_ADV_WILLNEED), 0);
	/* The last, partial chunk too. */
	assert_int_equal(ufo_advise(f->obj, COUNT - 1, COUNT,
				    UFO_ADV_WILLNEED), 0);
	T_WAIT_UNTIL(atomic_load(&f->a.calls[NCHUNKS - 1]) == 1 &&
		     t_obj_stats(f->obj).prefetches >= 5 &&
		     pages_present(f, NCHUNKS - 1) > 0);
	assert_int_equal(atomic_load(&f->a.calls[NCHUNKS - 1]), 1);
	assert_true(f->body[COUNT - 1] == t_value(SEED, COUNT - 1));
	for (uint64_t c = 2; c <= 5; c++)
		assert_int_equal(atomic_load(&f->a.calls[c]), 1);
	teardown_fixture(f);
	free(f);
}

static void test_dontneed(void **state)
{
	struct fixture *f = t_zalloc(sizeof(*f));
	struct ufo_stats before, after;

	(void)state;
	setup_fixture(f, 0);
	assert_int_equal(ufo_advise(f->obj, 0, 0, UFO_ADV_RANDOM), 0);
	for (uint64_t c = 0; c < 8; c++)
		assert_true(f->body[c * EPC] == t_value(SEED, c * EPC));
	f->body[1 * EPC + 3] = 111;
	f->body[3 * EPC + 4] = 333;
	assert_true(chunks_present(f, 0, 7));
	/* Counters are bumped after the faulting thread is woken. */
	T_WAIT_UNTIL(t_obj_stats(f->obj).resident_bytes >= 8 * CHUNK);
	before = t_obj_stats(f->obj);
	assert_int_equal(before.resident_bytes, 8 * CHUNK);

	/* Chunks 1..3 go: the dirty ones are written back first. */
	assert_int_equal(ufo_advise(f->obj, EPC + 1, 3 * EPC + 2,
				    UFO_ADV_DONTNEED), 0);
	after = t_obj_stats(f->obj);
	assert_int_equal(before.resident_bytes - after.resident_bytes,
			 3 * CHUNK);
	assert_true(after.evictions >= before.evictions + 3);
	assert_int_equal(atomic_load(&f->a.writebacks[1]), 1);
	assert_int_equal(atomic_load(&f->a.writebacks[2]), 0);
	assert_int_equal(atomic_load(&f->a.writebacks[3]), 1);
	assert_true(f->a.backing[1 * EPC + 3] == 111);
	assert_true(f->a.backing[3 * EPC + 4] == 333);
	for (uint64_t c = 1; c <= 3; c++)
		assert_int_equal(pages_present(f, c), 0);
	assert_true(chunks_present(f, 0, 0));
	assert_true(chunks_present(f, 4, 7));

	/* Re-touching reloads, with the writes in place. */
	assert_true(f->body[1 * EPC + 3] == 111);
	assert_true(f->body[3 * EPC + 4] == 333);
	assert_true(f->body[2 * EPC] == t_value(SEED, 2 * EPC));
	for (uint64_t c = 1; c <= 3; c++)
		assert_int_equal(atomic_load(&f->a.calls[c]), 2);
	assert_int_equal(atomic_load(&f->a.calls[0]), 1);
	assert_int_equal(atomic_load(&f->a.calls[4]), 1);

	/* DONTNEED on chunks never loaded is fine and changes nothing. */
	assert_int_equal(ufo_advise(f->obj, 20 * EPC, 22 * EPC,
				    UFO_ADV_DONTNEED), 0);
	assert_int_equal(atomic_load(&f->a.calls[20]), 0);
	teardown_fixture(f);
	free(f);
}

static void test_sequential_random(void **state)
{
	struct fixture *f = t_zalloc(sizeof(*f));
	struct ufo_stats s;
	uint64_t wrong = 0;

	(void)state;
	setup_fixture(f, 0);
	/* A slow populate lets readahead get ahead of the scan. */
	f->a.populate_delay_us = 2000;

	assert_int_equal(ufo_advise(f->obj, 0, 0, UFO_ADV_RANDOM), 0);
	for (uint64_t i = 0; i < COUNT / 2; i += 256)
		wrong += f->body[i] != t_value(SEED, i);
	s = t_obj_stats(f->obj);
	assert_int_equal(s.prefetches, 0);
	assert_int_equal(s.populate_calls, NCHUNKS / 2);

	assert_int_equal(ufo_advise(f->obj, 0, 0, UFO_ADV_SEQUENTIAL), 0);
	for (uint64_t i = COUNT / 2; i < COUNT; i += 256)
		wrong += f->body[i] != t_value(SEED, i);
	/* Counted once the load is installed, maybe just after the scan. */
	T_WAIT_UNTIL(t_obj_stats(f->obj).prefetches > 0);
	s = t_obj_stats(f->obj);
	assert_true(s.prefetches > 0);
	assert_int_equal(wrong, 0);
	/* Readahead never loads a resident chunk again. */
	for (uint64_t c = 0; c < NCHUNKS; c++)
		assert_int_equal(atomic_load(&f->a.calls[c]), 1);

	assert_int_equal(ufo_advise(f->obj, 0, 0, UFO_ADV_NORMAL), 0);
	teardown_fixture(f);
	free(f);
}

/* A scan that starts in the middle of an object reads ahead as well: two
 * faults in a row are a scan (readahead used to wait for a fault at the
 * end of a window that a scan not starting at chunk 0 never had). */
static void test_scan_from_the_middle(void **state)
{
	struct fixture *f = t_zalloc(sizeof(*f));
	uint64_t wrong = 0;

	(void)state;
	setup_fixture(f, 0);
	f->a.populate_delay_us = 2000;
	for (uint64_t i = COUNT / 2; i < COUNT; i += 256)
		wrong += f->body[i] != t_value(SEED, i);
	T_WAIT_UNTIL(t_obj_stats(f->obj).prefetches > 0);
	assert_true(t_obj_stats(f->obj).prefetches > 0);
	assert_int_equal(wrong, 0);
	teardown_fixture(f);
	free(f);
}

static void test_bad_advice(void **state)
{
	struct fixture *f = t_zalloc(sizeof(*f));

	(void)state;
	setup_fixture(f, 0);
	assert_int_equal(ufo_advise(f->obj, 0, 1, (enum ufo_advice)5), -EINVAL);
	assert_int_equal(ufo_advise(f->obj, 0, 1, (enum ufo_advice)-1),
			 -EINVAL);
	assert_int_equal(ufo_advise(f->obj, 0, 1, (enum ufo_advice)1000),
			 -EINVAL);
	/* Ranges past the end or reversed. */
	assert_int_equal(ufo_advise(f->obj, 0, COUNT + 1, UFO_ADV_WILLNEED),
			 -EINVAL);
	assert_int_equal(ufo_advise(f->obj, COUNT, COUNT + 5, UFO_ADV_DONTNEED),
			 -EINVAL);
	assert_int_equal(ufo_advise(f->obj, 10, 5, UFO_ADV_WILLNEED), -EINVAL);
	assert_int_equal(ufo_advise(f->obj, 10, 5, UFO_ADV_DONTNEED), -EINVAL);
	/* Whole-object advice ignores the range. */
	assert_int_equal(ufo_advise(f->obj, 10, 5, UFO_ADV_SEQUENTIAL), 0);
	assert_int_equal(ufo_advise(f->obj, COUNT + 9, 0, UFO_ADV_RANDOM), 0);
	/* Nothing was loaded by any of it. */
	assert_int_equal(t_obj_stats(f->obj).populate_calls, 0);
	teardown_fixture(f);
	free(f);
}

/* Regression: ufo_reset must also drop background loads queued before it
 * (t_model found a chunk resident after a reset: a readahead item queued
 * earlier loaded it afterwards).  Each round queues WILLNEED for every
 * chunk with a slow populate, resets at once, gives the handlers time to
 * run whatever is still queued, and requires that nothing got loaded. */
static void test_reset_drops_queued_loads(void **state)
{
	struct fixture f;

	(void)state;
	setup_fixture(&f, 2 * NCHUNKS); /* room for everything: no eviction */
	f.a.populate_delay_us = 300;
	for (int round = 0; round < 10; round++) {
		assert_int_equal(ufo_advise(f.obj, 0, COUNT, UFO_ADV_WILLNEED), 0);
		assert_int_equal(ufo_reset(f.obj), 0);
		t_sleep_us(2 * NCHUNKS * 300); /* every queued load has had its turn */
		assert_int_equal(t_obj_stats(f.obj).resident_bytes, 0);
	}
	/* The object still works: a touch loads. */
	assert_int_equal(f.body[EPC + 1], t_value(SEED, EPC + 1));
	teardown_fixture(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_willneed),
		cmocka_unit_test(test_dontneed),
		cmocka_unit_test(test_sequential_random),
		cmocka_unit_test(test_scan_from_the_middle),
		cmocka_unit_test(test_bad_advice),
		cmocka_unit_test(test_reset_drops_queued_loads),
	};

	t_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
