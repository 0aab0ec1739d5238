/* SPDX-License-Identifier: MIT */
/*
 * Faults the library cannot satisfy become signals in the faulting thread:
 * SIGSEGV for a write to a read-only object, SIGBUS when populate keeps
 * failing.  Other threads are not disturbed, and the process survives.
 */
#include "t_helpers.h"

#define SEED 43
#define CHUNK (64 * T_KIB)
#define EPC (CHUNK / sizeof(uint64_t))
#define NCHUNKS 16
#define BAD_CHUNK 5
#define RETRIES 2
#define READERS 3

struct sig {
	struct ufo_obj *obj;
	atomic_uint bad_calls; /* populate calls for BAD_CHUNK */
	atomic_bool bad_fails; /* BAD_CHUNK fails while set */
	atomic_bool stop;
	atomic_uint reader_errors;
	atomic_ullong reader_reads;
};

static int sig_populate(void *user, uint64_t start, uint64_t end, void *dst)
{
	struct sig *s = user;

	if (start / EPC == BAD_CHUNK) {
		atomic_fetch_add(&s->bad_calls, 1);
		if (atomic_load(&s->bad_fails))
			return -EIO;
	}
	t_fill(dst, sizeof(uint64_t), SEED, start, end);
	return 0;
}

static struct ufo_obj *sig_obj(struct ufo_ctx *ctx, struct sig *s,
			       unsigned flags)
{
	struct ufo_params p;
	struct ufo_obj *obj;

	ufo_params_init(&p);
	p.elem_size = sizeof(uint64_t);
	p.elem_count = NCHUNKS * EPC;
	p.chunk_size = CHUNK;
	p.flags = flags;
	p.populate = sig_populate;
	p.user = s;
	obj = t_obj(ctx, &p);
	/* No readahead: only the faulting thread loads BAD_CHUNK. */
	assert_int_equal(ufo_advise(obj, 0, 0, UFO_ADV_RANDOM), 0);
	return obj;
}

static void test_read_only_write(void **state)
{
	struct ufo_config cfg;
	struct ufo_ctx *ctx;
	struct ufo_obj *obj;
	struct sig *s = t_zalloc(sizeof(*s));
	uint64_t *body, v = 0;

	(void)state;
	t_catch_install();
	t_config(&cfg, 0, 0, 0);
	ctx = t_ctx(&cfg);
	obj = sig_obj(ctx, s, UFO_READ_ONLY);
	body = ufo_body(obj);

	/* A loaded chunk: the read works, the write is refused. */
	assert_int_equal(t_try_read(&body[3], &v), 0);
	assert_true(v == t_value(SEED, 3));
	assert_int_equal(t_try_write(&body[3], 1), SIGSEGV);
	assert_int_equal(t_try_read(&body[3], &v), 0);
	assert_true(v == t_value(SEED, 3));
	/* A write to a chunk never loaded is refused as well. */
	assert_int_equal(t_try_write(&body[2 * EPC + 1], 1), SIGSEGV);
	assert_int_equal(t_try_read(&body[2 * EPC + 1], &v), 0);
	assert_true(v == t_value(SEED, 2 * EPC + 1));
	/* And after a reset, on the repopulated chunk. */
	assert_int_equal(ufo_reset(obj), 0);
	assert_int_equal(t_try_write(&body[3], 1), SIGSEGV);
	assert_int_equal(t_try_read(&body[3], &v), 0);
	assert_true(v == t_value(SEED, 3));

	assert_int_equal(ufo_free(obj), 0);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
	free(s);
}

/* Reads every chunk but BAD_CHUNK in a loop, checking values; any signal is
 * an error. */
static void *reader(void *arg)
{
	struct sig *s = arg;
	volatile uint64_t *body = ufo_body(s->obj);
	uint64_t rng = (uint64_t)pthread_self() | 1;

	while (!atomic_load(&s->stop)) {
		uint64_t c = t_rand(&rng) % NCHUNKS;
		uint64_t i, v = 0;

		if (c == BAD_CHUNK)
			continue;
		i = c * EPC + t_rand(&rng) % EPC;
		if (t_try_read(&body[i], &v) != 0 || v != t_value(SEED, i)) {
			atomic_fetch_add(&s->reader_errors, 1);
			break;
		}
		atomic_fetch_add(&s->reader_reads, 1);
	}
	return NULL;
}

struct victim {
	struct sig *s;
	int sig;
	uint64_t value;
};

static void *victim(void *arg)
{
	struct victim *v = arg;
	volatile uint64_t *body = ufo_body(v->s->obj);

	v->sig = t_try_read(&body[BAD_CHUNK * EPC + 10], &v->value);
	return NULL;
}

static void test_populate_failure(void **state)
{
	struct ufo_config cfg;
	struct ufo_ctx *ctx;
	struct ufo_stats st;
	struct sig *s = t_zalloc(sizeof(*s));
	pthread_t readers[READERS];
	uint64_t *body, v = 0, reads;

	(void)state;
	t_catch_install();
	atomic_store(&s->bad_fails, true);
	t_config(&cfg, CHUNK, 6, 4); /* evictions keep the readers faulting */
	cfg.threads = 2;
	cfg.retries = RETRIES;
	cfg.retry_delay_ms = 1;
	cfg.log = NULL; /* the populate errors are logged; keep the default */
	ctx = t_ctx(&cfg);
	s->obj = sig_obj(ctx, s, 0);
	body = ufo_body(s->obj);

	for (int t = 0; t < READERS; t++)
		assert_int_equal(pthread_create(&readers[t], NULL, reader, s),
				 0);
	/* Let the readers get going, without timing anything. */
	T_WAIT_UNTIL(atomic_load(&s->reader_reads) >= 1000 ||
		     atomic_load(&s->reader_errors));
	assert_true(atomic_load(&s->reader_reads) >= 1000);

	/* Three faults, each from its own thread: each gets SIGBUS after
	 * 1 + RETRIES attempts, while the readers keep going. */
	for (unsigned n = 1; n <= 3; n++) {
		struct victim vi = { .s = s };
		pthread_t thr;

		reads = atomic_load(&s->reader_reads);
		assert_int_equal(pthread_create(&thr, NULL, victim, &vi), 0);
		pthread_join(thr, NULL);
		assert_int_equal(vi.sig, SIGBUS);
		assert_int_equal(atomic_load(&s->bad_calls), n * (1 + RETRIES));
		/* Readers progressed past the failure. */
		T_WAIT_UNTIL(atomic_load(&s->reader_reads) >= reads + 100 ||
			     atomic_load(&s->reader_errors));
		assert_true(atomic_load(&s->reader_reads) >= reads + 100);
	}
	/* The main thread itself, too. */
	assert_int_equal(t_try_read(&body[BAD_CHUNK * EPC], &v), SIGBUS);
	assert_int_equal(atomic_load(&s->bad_calls), 4 * (1 + RETRIES));

	atomic_store(&s->stop, true);
	for (int t = 0; t < READERS; t++)
		pthread_join(readers[t], NULL);
	assert_int_equal(atomic_load(&s->reader_errors), 0);

	/* The counter is bumped after the signal is sent. */
	T_WAIT_UNTIL(t_ctx_stats(ctx).sigbus >= 4);
	st = t_ctx_stats(ctx);
	assert_true(st.sigbus >= 4);
	assert_true(st.populate_errors >= 4);
	assert_true(st.populate_errors <= 4 * (1 + RETRIES));
	st = t_obj_stats(s->obj);
	assert_true(st.sigbus >= 4);

	/* Once populate works again, the chunk loads normally. */
	atomic_store(&s->bad_fails, false);
	assert_int_equal(t_try_read(&body[BAD_CHUNK * EPC + 10], &v), 0);
	assert_true(v == t_value(SEED, BAD_CHUNK * EPC + 10));
	/* One load, normally.  A failed load wakes the range after sending
	 * SIGBUS; a victim woken before the signal lands refaults, and that
	 * fault's message may be served later, when populate works again:
	 * its load (an attempt failed while bad_fails was still set, then
	 * one that worked) may be the one the read finds done.  Seen once in
	 * a debug build: 4 * 3 + 2 calls. */
	assert_true(atomic_load(&s->bad_calls) >= 4 * (1 + RETRIES) + 1);
	assert_true(atomic_load(&s->bad_calls) <= 5 * (1 + RETRIES));

	assert_int_equal(ufo_free(s->obj), 0);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
	free(s);
}

/* Background loads of a failing chunk signal nobody. */
static void test_prefetch_failure_silent(void **state)
{
	struct ufo_config cfg;
	struct ufo_ctx *ctx;
	struct sig *s = t_zalloc(sizeof(*s));
	unsigned before;

	(void)state;
	t_catch_install();
	atomic_store(&s->bad_fails, true);
	t_config(&cfg, 0, 0, 0);
	cfg.retries = RETRIES;
	cfg.log = NULL;
	ctx = t_ctx(&cfg);
	s->obj = sig_obj(ctx, s, 0);
	before = atomic_load(&t_signals_total);
	assert_int_equal(ufo_advise(s->obj, BAD_CHUNK * EPC,
				    (BAD_CHUNK + 1) * EPC, UFO_ADV_WILLNEED),
			 0);
	T_WAIT_UNTIL(atomic_load(&s->bad_calls) >= 1);
	assert_true(atomic_load(&s->bad_calls) >= 1);
	/* Give the failed load time to finish its retries; not a timing
	 * check, only a settle before looking for a stray signal. */
	t_sleep_us(200000);
	assert_true(atomic_load(&s->bad_calls) <= 1 + RETRIES);
	assert_int_equal(atomic_load(&t_signals_total), before);
	assert_int_equal(t_ctx_stats(ctx).sigbus, 0);
	/* The chunk is still absent: a demand read fails as usual. */
	{
		uint64_t v = 0;

		assert_int_equal(t_try_read((uint64_t *)ufo_body(s->obj) +
					    BAD_CHUNK * EPC, &v), SIGBUS);
	}
	assert_int_equal(ufo_free(s->obj), 0);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_only_write),
		cmocka_unit_test(test_populate_failure),
		cmocka_unit_test(test_prefetch_failure_silent),
	};

	t_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
