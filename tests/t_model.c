/* SPDX-License-Identifier: MIT */
/*
 * Random reads and writes from several threads against a plain in-memory
 * model, under a budget of a few chunks, so chunks are evicted, written back
 * and repopulated all the time.  Populate reads from a backing array that
 * writeback stores into, so a lost writeback or a stale populate shows up as
 * a value that differs from the model.
 *
 * Element i belongs to thread i % nthreads: threads share chunks (they race
 * on faults, write-protect faults and evictions of the same chunk) but never
 * an element, so the model stays deterministic.
 */
#include "t_helpers.h"

#define SEED 23
#define CHUNK (64 * T_KIB)
#define EPC (CHUNK / sizeof(uint64_t))
#define NCHUNKS 48
#define COUNT (NCHUNKS * EPC - 333) /* the last chunk is partial */
#define MAX_THREADS 8

struct model {
	struct ufo_obj *obj;
	uint64_t *backing; /* what populate reads, writeback writes */
	uint64_t *expect;  /* the model */
	unsigned nthreads;
	unsigned ops;
	atomic_uint wrong_reads;
	atomic_uint bad_ranges;
};

static int model_populate(void *user, uint64_t start, uint64_t end, void *dst)
{
	struct model *m = user;

	if (start >= end || end > COUNT || start % EPC) {
		atomic_fetch_add(&m->bad_ranges, 1);
		return -EINVAL;
	}
	memcpy(dst, m->backing + start, (end - start) * sizeof(uint64_t));
	return 0;
}

static int model_writeback(void *user, uint64_t start, uint64_t end,
			   const void *src)
{
	struct model *m = user;

	if (start >= end || end > COUNT || start % EPC) {
		atomic_fetch_add(&m->bad_ranges, 1);
		return -EINVAL;
	}
	memcpy(m->backing + start, src, (end - start) * sizeof(uint64_t));
	return 0;
}

struct worker {
	struct model *m;
	unsigned id;
	pthread_t thr;
};

static void *model_worker(void *arg)
{
	struct worker *w = arg;
	struct model *m = w->m;
	volatile uint64_t *body = ufo_body(m->obj);
	uint64_t rng = t_value(SEED, w->id) | 1;
	uint64_t owned = (COUNT - w->id + m->nthreads - 1) / m->nthreads;

	for (unsigned n = 0; n < m->ops; n++) {
		uint64_t r = t_rand(&rng);
		uint64_t i = (r >> 8) % owned * m->nthreads + w->id;

		if (r & 1) {
			uint64_t v = t_rand(&rng);

			body[i] = v;
			m->expect[i] = v;
		} else if (body[i] != m->expect[i]) {
			atomic_fetch_add(&m->wrong_reads, 1);
		}
	}
	return NULL;
}

/*
 * Hash mode: dirty data is found by comparing hashes when a chunk is
 * dropped, and a write racing the eviction of its own chunk is documented
 * as unprotected.  So the one thread writes only to the chunk it touched
 * last: it drops chunk c with DONTNEED (synchronous, waits for a busy chunk),
 * faults it back in, which makes it the newest chunk under FIFO, then works
 * inside it.  The evictor, running concurrently, only takes older chunks
 * (the low watermark keeps more than one chunk).
 */
static void *model_worker_hash(void *arg)
{
	struct worker *w = arg;
	struct model *m = w->m;
	volatile uint64_t *body = ufo_body(m->obj);
	uint64_t rng = t_value(SEED, 99) | 1;
	const unsigned per_round = 200;

	for (unsigned n = 0; n < m->ops; n += per_round) {
		uint64_t c = t_rand(&rng) % NCHUNKS;
		uint64_t first = c * EPC;
		uint64_t len = c == NCHUNKS - 1 ? COUNT - first : EPC;

		/* Reads are safe anywhere: they keep the evictor busy with
		 * the chunks written in earlier rounds. */
		for (unsigned k = 0; k < 50; k++) {
			uint64_t i = t_rand(&rng) % COUNT;

			if (body[i] != m->expect[i])
				atomic_fetch_add(&m->wrong_reads, 1);
		}
		if (ufo_advise(m->obj, first, first + 1, UFO_ADV_DONTNEED))
			atomic_fetch_add(&m->wrong_reads, 1);
		for (unsigned k = 0; k < per_round; k++) {
			uint64_t r = t_rand(&rng);
			uint64_t i = first + (r >> 8) % len;

			if (r & 1) {
				uint64_t v = t_rand(&rng);

				body[i] = v;
				m->expect[i] = v;
			} else if (body[i] != m->expect[i]) {
				atomic_fetch_add(&m->wrong_reads, 1);
			}
		}
	}
	return NULL;
}

static uint64_t count_diffs(const volatile uint64_t *a, const uint64_t *b)
{
	uint64_t diffs = 0;

	for (uint64_t i = 0; i < COUNT; i++)
		diffs += a[i] != b[i];
	return diffs;
}

/* A context with a budget of 4 chunks and the model's object in it. */
static struct ufo_ctx *model_ctx(struct model *m, enum ufo_dirty_mode mode,
				 enum ufo_policy policy)
{
	struct ufo_config cfg, got;
	struct ufo_ctx *ctx;
	struct ufo_params p;

	t_config(&cfg, CHUNK, 4, mode == UFO_DIRTY_HASH ? 3 : 2);
	cfg.dirty_mode = mode;
	cfg.policy = policy;
	ctx = t_ctx(&cfg);
	assert_int_equal(ufo_ctx_dirty_mode(ctx), mode);
	ufo_ctx_config(ctx, &got);
	assert_int_equal(got.high_watermark, 4 * CHUNK);

	ufo_params_init(&p);
	p.elem_size = sizeof(uint64_t);
	p.elem_count = COUNT;
	p.chunk_size = CHUNK;
	p.populate = model_populate;
	p.writeback = model_writeback;
	p.user = m;
	m->obj = t_obj(ctx, &p);
	assert_int_equal(ufo_chunk_size(m->obj), CHUNK);
	if (mode == UFO_DIRTY_HASH)
		assert_int_equal(ufo_advise(m->obj, 0, 0, UFO_ADV_RANDOM), 0);
	return ctx;
}

/* After the workers: the object, then the backing store after sync, reset
 * and free, all equal the model. */
static void model_verify(struct model *m)
{
	struct ufo_stats s;

	assert_int_equal(atomic_load(&m->wrong_reads), 0);
	/* Through the UFO (repopulating what was evicted)... */
	assert_int_equal(count_diffs(ufo_body(m->obj), m->expect), 0);
	s = t_obj_stats(m->obj);
	fprintf(stderr, "faults %llu wp_faults %llu populates %llu "
		"evictions %llu writebacks %llu\n",
		(unsigned long long)s.faults, (unsigned long long)s.wp_faults,
		(unsigned long long)s.populate_calls,
		(unsigned long long)s.evictions,
		(unsigned long long)s.writebacks);
	/* The budget is a twelfth of the object: every chunk cycled. */
	assert_true(s.evictions >= NCHUNKS);
	assert_true(s.writebacks > 0);
	assert_int_equal(s.writeback_errors, 0);
	assert_int_equal(s.populate_errors, 0);
	assert_int_equal(s.sigbus, 0);
	/* ...then in the backing store once synced... */
	assert_int_equal(ufo_sync(m->obj), 0);
	assert_int_equal(count_diffs(m->backing, m->expect), 0);
	/* ...and after dropping everything. */
	assert_int_equal(ufo_reset(m->obj), 0);
	s = t_obj_stats(m->obj);
	assert_int_equal(s.resident_bytes, 0);
	assert_int_equal(s.dirty_bytes, 0);
	assert_int_equal(count_diffs(m->backing, m->expect), 0);
	assert_int_equal(count_diffs(ufo_body(m->obj), m->expect), 0);
	assert_int_equal(atomic_load(&m->bad_ranges), 0);

	assert_int_equal(ufo_free(m->obj), 0);
	assert_int_equal(count_diffs(m->backing, m->expect), 0);
}

static void run_model(enum ufo_dirty_mode mode, enum ufo_policy policy,
		      unsigned nthreads, unsigned ops)
{
	struct model *m = t_zalloc(sizeof(*m));
	struct worker w[MAX_THREADS];
	struct ufo_ctx *ctx;

	assert_true(nthreads <= MAX_THREADS);
	m->nthreads = nthreads;
	m->ops = ops;
	m->backing = malloc(COUNT * sizeof(uint64_t));
	m->expect = malloc(COUNT * sizeof(uint64_t));
	assert_non_null(m->backing);
	assert_non_null(m->expect);
	t_fill(m->backing, sizeof(uint64_t), SEED, 0, COUNT);
	memcpy(m->expect, m->backing, COUNT * sizeof(uint64_t));
	ctx = model_ctx(m, mode, policy);

	for (unsigned t = 0; t < nthreads; t++) {
		w[t].m = m;
		w[t].id = t;
		assert_int_equal(pthread_create(&w[t].thr, NULL,
						mode == UFO_DIRTY_HASH ?
						model_worker_hash : model_worker,
						&w[t]), 0);
	}
	for (unsigned t = 0; t < nthreads; t++)
		pthread_join(w[t].thr, NULL);
	model_verify(m);

	assert_int_equal(ufo_ctx_destroy(ctx), 0);
	free(m->backing);
	free(m->expect);
	free(m);
}

static void test_model_wp(void **state)
{
	(void)state;
	if (!t_have_wp())
		skip();
	run_model(UFO_DIRTY_WP, UFO_POLICY_2Q, 4, 8000);
}

static void test_model_wp_fifo(void **state)
{
	(void)state;
	if (!t_have_wp())
		skip();
	run_model(UFO_DIRTY_WP, UFO_POLICY_FIFO, 6, 4000);
}

/* One thread, writing only its newest chunk: see model_worker_hash(). */
static void test_model_hash(void **state)
{
	(void)state;
	run_model(UFO_DIRTY_HASH, UFO_POLICY_FIFO, 1, 40000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model_wp),
		cmocka_unit_test(test_model_wp_fifo),
		cmocka_unit_test(test_model_hash),
	};

	t_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
