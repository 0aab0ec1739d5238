/* SPDX-License-Identifier: MIT */
/*
 * Many threads faulting the same chunk at the same moment populate it
 * exactly once, and all of them see the populated bytes (or, for writers,
 * keep their writes).
 */
#include "t_helpers.h"

#define SEED 11
#define NTHREADS 12
#define NCHUNKS 8
#define CHUNK (64 * T_KIB)
#define EPC (CHUNK / sizeof(uint64_t))
#define POPULATE_SLEEP_US 20000 /* widens the window where faults pile up */

struct once {
	struct ufo_obj *obj;
	atomic_uint calls[NCHUNKS];
	atomic_uint bad_ranges;
	/* Per-round work shared by the threads. */
	pthread_barrier_t start, done;
	uint64_t chunk;
	int write;
	atomic_uint wrong;
	atomic_bool quit;
};

static int once_populate(void *user, uint64_t start, uint64_t end, void *dst)
{
	struct once *o = user;

	if (start % EPC || end != start + EPC || start / EPC >= NCHUNKS) {
		atomic_fetch_add(&o->bad_ranges, 1);
		return -EINVAL;
	}
	atomic_fetch_add(&o->calls[start / EPC], 1);
	t_sleep_us(POPULATE_SLEEP_US);
	t_fill(dst, sizeof(uint64_t), SEED, start, end);
	return 0;
}

struct worker {
	struct once *o;
	unsigned id;
	pthread_t thr;
};

/* Each round every thread touches chunk o->chunk at once: readers read an
 * element of their own (spread over the chunk), writers write it. */
static void *once_worker(void *arg)
{
	struct worker *w = arg;
	struct once *o = w->o;

	for (;;) {
		pthread_barrier_wait(&o->start);
		if (atomic_load(&o->quit))
			break;
		{
			volatile uint64_t *body = ufo_body(o->obj);
			uint64_t i = o->chunk * EPC + w->id * (EPC / NTHREADS);

			if (o->write)
				body[i] = ~t_value(SEED, i);
			else if (body[i] != t_value(SEED, i))
				atomic_fetch_add(&o->wrong, 1);
		}
		pthread_barrier_wait(&o->done);
	}
	return NULL;
}

static void round_on(struct once *o, uint64_t chunk, int write)
{
	o->chunk = chunk;
	o->write = write;
	pthread_barrier_wait(&o->start);
	pthread_barrier_wait(&o->done);
}

static void check_writes(const uint64_t *body, uint64_t chunk)
{
	for (unsigned t = 0; t < NTHREADS; t++) {
		uint64_t i = chunk * EPC + t * (EPC / NTHREADS);

		assert_true(body[i] == ~t_value(SEED, i));
		assert_true(body[i + 1] == t_value(SEED, i + 1));
	}
}

static void test_once(void **state)
{
	struct ufo_config cfg;
	struct ufo_ctx *ctx;
	struct ufo_params p;
	struct once *o = t_zalloc(sizeof(*o));
	struct worker w[NTHREADS];
	uint64_t *body;

	(void)state;
	t_config(&cfg, CHUNK, 0, 0);
	cfg.threads = 4; /* several handlers could race for one chunk */
	ctx = t_ctx(&cfg);
	ufo_params_init(&p);
	p.elem_size = sizeof(uint64_t);
	p.elem_count = NCHUNKS * EPC;
	p.chunk_size = CHUNK;
	p.populate = once_populate;
	p.user = o;
	o->obj = t_obj(ctx, &p);
	assert_int_equal(ufo_chunk_size(o->obj), CHUNK);
	/* No readahead: every load below is caused by the threads. */
	assert_int_equal(ufo_advise(o->obj, 0, 0, UFO_ADV_RANDOM), 0);
	body = ufo_body(o->obj);

	assert_int_equal(pthread_barrier_init(&o->start, NULL, NTHREADS + 1), 0);
	assert_int_equal(pthread_barrier_init(&o->done, NULL, NTHREADS + 1), 0);
	for (unsigned t = 0; t < NTHREADS; t++) {
		w[t].o = o;
		w[t].id = t;
		assert_int_equal(pthread_create(&w[t].thr, NULL, once_worker,
						&w[t]), 0);
	}

	/* Readers on chunks 0..3, writers on the absent chunks 4..7. */
	for (uint64_t c = 0; c < NCHUNKS; c++) {
		round_on(o, c, c >= NCHUNKS / 2);
		assert_int_equal(atomic_load(&o->calls[c]), 1);
	}
	/* Every writer's value is there, next to untouched elements. */
	for (uint64_t c = NCHUNKS / 2; c < NCHUNKS; c++)
		check_writes(body, c);
	/* Again, now that everything is resident: nothing is loaded. */
	for (uint64_t c = 0; c < NCHUNKS / 2; c++)
		round_on(o, c, 0);

	/* After a reset the same race loads each chunk exactly once more. */
	assert_int_equal(ufo_reset(o->obj), 0);
	for (uint64_t c = 0; c < NCHUNKS / 2; c++) {
		round_on(o, c, 0);
		assert_int_equal(atomic_load(&o->calls[c]), 2);
	}
	/* Racing first writes to a resident, clean chunk. */
	round_on(o, 0, 1);
	assert_int_equal(atomic_load(&o->calls[0]), 2);
	check_writes(body, 0);

	atomic_store(&o->quit, true);
	pthread_barrier_wait(&o->start);
	for (unsigned t = 0; t < NTHREADS; t++)
		pthread_join(w[t].thr, NULL);

	assert_int_equal(atomic_load(&o->bad_ranges), 0);
	assert_int_equal(atomic_load(&o->wrong), 0);
	for (uint64_t c = 0; c < NCHUNKS; c++) {
		unsigned expect = c < NCHUNKS / 2 ? 2 : 1;

		assert_int_equal(atomic_load(&o->calls[c]), expect);
	}
	/* Without a writeback the reset discarded the writes to 4..7. */
	assert_true(body[NCHUNKS / 2 * EPC] == t_value(SEED, NCHUNKS / 2 * EPC));
	assert_int_equal(atomic_load(&o->calls[NCHUNKS / 2]), 2);
	assert_int_equal(ufo_free(o->obj), 0);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
	pthread_barrier_destroy(&o->start);
	pthread_barrier_destroy(&o->done);
	free(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_once),
	};

	t_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
