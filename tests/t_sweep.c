/* SPDX-License-Identifier: MIT */
/*
 * Caller-driven sweeps against faulting threads (issue 16).  Eight threads
 * fault all over an object 256 times the budget while the main thread runs
 * every kind of sweep in turn: ufo_reset, ufo_refresh, ufo_sync,
 * DONTNEED of the whole object and of a random range, and WILLNEED.  A
 * sampler reads resident_bytes continuously.  The test fails when
 *  - a sweep takes longer than SWEEP_LIMIT_S: sweeps must finish in time
 *    bounded by the object's size and the backend's latency, whatever other
 *    threads do (they starved for tens of seconds, ufo_refresh until the
 *    faulting threads stopped);
 *  - resident_bytes passes the high watermark plus the chunks that can be
 *    in flight, one per handler thread (it reached 470 times the budget:
 *    the evictor, finding every resident chunk claimed by the sweep, called
 *    itself stuck and let every fault in for as long as it ran);
 *  - a write is lost (WP mode: each thread owns one word per page and
 *    checks, at the end, that the last value it wrote is there).
 */
#include "t_helpers.h"

#define CHUNK (64 * T_KIB)
#define HIGH_CHUNKS 4
#define LOW_CHUNKS 2
#define NCHUNKS (64 * HIGH_CHUNKS * 4)
#define WORDS_PER_PAGE 512
#define NFAULTERS 8
/* Rounds of every sweep kind; each round runs all of them once. */
#define ROUNDS 12
/* Generous: a sweep here takes milliseconds.  Only starvation (one took
 * 10-50 s before the fix) crosses it, even under sanitizers. */
#define SWEEP_LIMIT_S 15

enum sweep_kind {
	SWEEP_RESET,
	SWEEP_REFRESH,
	SWEEP_SYNC,
	SWEEP_DONTNEED_ALL,
	SWEEP_DONTNEED_RANGE,
	SWEEP_WILLNEED,
	SWEEP_KINDS
};

static const char *const sweep_names[SWEEP_KINDS] = {
	"reset", "refresh", "sync", "dontneed", "dontneed-range", "willneed",
};

struct sweep_test {
	struct t_backing backing; /* first: the callbacks' user */
	struct ufo_obj *obj;
	uint64_t npages, nwords;
	bool writes;           /* faulters write (WP mode only) */
	atomic_bool stop;
	atomic_ulong max_resident;
	atomic_ulong samples;
	atomic_ulong touches;
};

struct faulter {
	struct sweep_test *t;
	unsigned id;
	uint64_t *last;        /* last value written to this thread's word of
				* each page; 0: never written */
	pthread_t thr;
};

static void *sampler(void *arg)
{
	struct sweep_test *t = arg;
	struct ufo_stats s;

	while (!atomic_load(&t->stop)) {
		if (ufo_obj_stats(t->obj, &s) == 0) {
			unsigned long old = atomic_load(&t->max_resident);

			while (s.resident_bytes > old &&
			       !atomic_compare_exchange_weak(&t->max_resident,
							     &old,
							     s.resident_bytes))
				;
			atomic_fetch_add(&t->samples, 1);
		}
		t_sleep_us(50);
	}
	return NULL;
}

/* Random pages: reads, and in WP mode a write of this thread's own word in
 * one touch of four. */
static void *fault_loop(void *arg)
{
	struct faulter *f = arg;
	struct sweep_test *t = f->t;
	volatile uint64_t *body = ufo_body(t->obj);
	uint64_t rng = 0x9e37 + f->id, seq = 0, sink = 0;

	while (!atomic_load(&t->stop)) {
		uint64_t r = t_rand(&rng), page = r % t->npages;
		uint64_t word = page * WORDS_PER_PAGE + f->id;

		if (t->writes && (r >> 40) % 4 == 0) {
			body[word] = ++seq;
			f->last[page] = seq;
		} else {
			sink += body[page * WORDS_PER_PAGE + (r >> 32) % WORDS_PER_PAGE];
		}
		atomic_fetch_add_explicit(&t->touches, 1, memory_order_relaxed);
	}
	return (void *)(uintptr_t)sink;
}

static int run_sweep(struct sweep_test *t, enum sweep_kind k, uint64_t *rng)
{
	uint64_t n = t->nwords, a, b;

	switch (k) {
	case SWEEP_RESET:
		return ufo_reset(t->obj);
	case SWEEP_REFRESH:
		return ufo_refresh(t->obj);
	case SWEEP_SYNC:
		return ufo_sync(t->obj);
	case SWEEP_DONTNEED_ALL:
		return ufo_advise(t->obj, 0, n, UFO_ADV_DONTNEED);
	case SWEEP_DONTNEED_RANGE:
		a = t_rand(rng) % n;
		b = a + 1 + t_rand(rng) % (n - a);
		return ufo_advise(t->obj, a, b, UFO_ADV_DONTNEED);
	case SWEEP_WILLNEED:
		return ufo_advise(t->obj, 0, n, UFO_ADV_WILLNEED);
	default:
		return -EINVAL;
	}
}

static double elapsed_s(const struct timespec *a)
{
	struct timespec b;

	clock_gettime(CLOCK_MONOTONIC, &b);
	return (double)(b.tv_sec - a->tv_sec) +
	       (double)(b.tv_nsec - a->tv_nsec) / 1e9;
}

/* Runs ROUNDS rounds of every sweep kind and fails on the first that
 * errs or starves; prints the slowest of each kind. */
static void sweep_rounds(struct sweep_test *t)
{
	double slowest[SWEEP_KINDS] = { 0 };
	uint64_t rng = 77;

	for (unsigned r = 0; r < ROUNDS; r++) {
		for (int k = 0; k < SWEEP_KINDS; k++) {
			struct timespec t0;
			double s;
			int rc;

			clock_gettime(CLOCK_MONOTONIC, &t0);
			rc = run_sweep(t, (enum sweep_kind)k, &rng);
			s = elapsed_s(&t0);
			if (rc)
				fail_msg("%s: %s", sweep_names[k], strerror(-rc));
			if (s > SWEEP_LIMIT_S)
				fail_msg("%s took %.1f s (limit %d s) against %d faulting threads",
					 sweep_names[k], s, SWEEP_LIMIT_S, NFAULTERS);
			if (s > slowest[k])
				slowest[k] = s;
			/* Let the faulters fill the budget again. */
			t_sleep_us(2000);
		}
	}
	for (int k = 0; k < SWEEP_KINDS; k++)
		fprintf(stderr, "  slowest %-14s %.3f s\n", sweep_names[k],
			slowest[k]);
}

/* After the faulters stopped: every word a thread wrote holds the last
 * value it wrote there, read through the object. */
static void check_writes(struct sweep_test *t, struct faulter *f)
{
	volatile uint64_t *body = ufo_body(t->obj);

	for (unsigned i = 0; i < NFAULTERS; i++)
		for (uint64_t p = 0; p < t->npages; p++) {
			uint64_t w = p * WORDS_PER_PAGE + f[i].id;

			if (body[w] != f[i].last[p])
				fail_msg("thread %u page %llu: %llu, last written %llu",
					 i, (unsigned long long)p,
					 (unsigned long long)body[w],
					 (unsigned long long)f[i].last[p]);
		}
}

static void run(enum ufo_dirty_mode mode, enum ufo_policy policy)
{
	struct sweep_test *t = t_zalloc(sizeof(*t));
	struct faulter *f = t_zalloc(NFAULTERS * sizeof(*f));
	struct ufo_config cfg;
	struct ufo_ctx *ctx;
	struct ufo_params p;
	pthread_t smp;
	size_t bound;

	t_config(&cfg, CHUNK, HIGH_CHUNKS, LOW_CHUNKS);
	cfg.dirty_mode = mode;
	cfg.policy = policy;
	ctx = t_ctx(&cfg);
	t->nwords = (uint64_t)NCHUNKS * CHUNK / sizeof(uint64_t);
	t->npages = t->nwords / WORDS_PER_PAGE;
	/* Hash mode cannot see a write racing an eviction (ufo.h), so its
	 * faulters only read. */
	t->writes = mode == UFO_DIRTY_WP;
	t->backing.words = t_zalloc(t->nwords * sizeof(uint64_t));

	ufo_params_init(&p);
	p.elem_size = sizeof(uint64_t);
	p.elem_count = t->nwords;
	p.chunk_size = CHUNK;
	p.populate = t_backing_populate;
	p.writeback = t_backing_writeback;
	p.user = t;
	t->obj = t_obj(ctx, &p);
	/* A load reserves its chunk before it fetches: resident + in flight
	 * stays under high, in flight being at most one chunk per handler
	 * thread (the watchdog may start up to UFO_MAX_THREADS). */
	bound = cfg.high_watermark + (size_t)UFO_MAX_THREADS * CHUNK;

	assert_int_equal(pthread_create(&smp, NULL, sampler, t), 0);
	for (unsigned i = 0; i < NFAULTERS; i++) {
		f[i] = (struct faulter){ .t = t, .id = i };
		f[i].last = t_zalloc(t->npages * sizeof(uint64_t));
		assert_int_equal(pthread_create(&f[i].thr, NULL, fault_loop,
						&f[i]), 0);
	}
	/* The faulters are running before the first sweep. */
	T_WAIT_UNTIL(atomic_load(&t->touches) >= 1000);
	assert_true(atomic_load(&t->touches) >= 1000);

	sweep_rounds(t);

	atomic_store(&t->stop, true);
	for (unsigned i = 0; i < NFAULTERS; i++)
		pthread_join(f[i].thr, NULL);
	pthread_join(smp, NULL);
	fprintf(stderr, "%s/%s: %lu touches, peak resident %lu KiB, bound %zu KiB (high %zu KiB), %lu samples\n",
		ufo_dirty_mode_name(mode), policy == UFO_POLICY_FIFO ? "fifo" :
		policy == UFO_POLICY_MQ ? "mq" : "2q",
		atomic_load(&t->touches), atomic_load(&t->max_resident) / 1024,
		bound / 1024, cfg.high_watermark / 1024, atomic_load(&t->samples));
	assert_true(atomic_load(&t->samples) > 0);
	assert_true(atomic_load(&t->max_resident) >= CHUNK);
	if (atomic_load(&t->max_resident) > bound)
		fail_msg("resident %lu KiB passed high + in flight = %zu KiB",
			 atomic_load(&t->max_resident) / 1024, bound / 1024);
	if (t->writes)
		check_writes(t, f);

	assert_int_equal(ufo_free(t->obj), 0);
	assert_int_equal(ufo_ctx_destroy(ctx), 0);
	for (unsigned i = 0; i < NFAULTERS; i++)
		free(f[i].last);
	free(f);
	free(t->backing.words);
	free(t);
}

static void test_sweeps_wp(void **state)
{
	(void)state;
	if (!t_have_wp())
		skip();
	run(UFO_DIRTY_WP, UFO_POLICY_2Q);
}

static void test_sweeps_wp_fifo(void **state)
{
	(void)state;
	if (!t_have_wp())
		skip();
	run(UFO_DIRTY_WP, UFO_POLICY_FIFO);
}

static void test_sweeps_wp_mq(void **state)
{
	(void)state;
	if (!t_have_wp())
		skip();
	run(UFO_DIRTY_WP, UFO_POLICY_MQ);
}

static void test_sweeps_hash(void **state)
{
	(void)state;
	run(UFO_DIRTY_HASH, UFO_POLICY_2Q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sweeps_wp),
		cmocka_unit_test(test_sweeps_wp_fifo),
		cmocka_unit_test(test_sweeps_wp_mq),
		cmocka_unit_test(test_sweeps_hash),
	};

	t_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
